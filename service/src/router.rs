//! The one router of `fiktiv serve`: the API's routes (`fiktiv-api`) and the web UI's
//! (`fiktiv-web`) over one [`AppState`], with the layers every request passes: the body
//! limit, the request timeout, errors as problems, the request's span, log line and
//! latency, and its id. Tests call [`app`] directly (`tower::ServiceExt::oneshot`).

use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::header;
use axum::Router;
use fiktiv_api::problem::{self, ApiError};
use fiktiv_app::context::Context;
use fiktiv_app::AppState;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;

/// The whole router.
pub fn app(ctx: Context) -> Router {
    let limit = ctx.config.server.body_limit_bytes;
    let timeout = Duration::from_secs(ctx.config.server.request_timeout_secs);
    let state = AppState::new(ctx);
    let metrics = state.metrics.clone();
    Router::new()
        .merge(fiktiv_api::routes())
        .merge(fiktiv_web::routes(&state.ctx.config))
        .fallback(|| async { ApiError::not_found() })
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(limit, body_limit))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        // Also the 413/408 answered by the layers above become problems.
        .layer(axum::middleware::from_fn(problem::problems_only))
        // One span and one log line per request, and its latency for /metrics, with the
        // final status.
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            crate::telemetry::track_request,
        ))
        // The request id: a caller's id only if it is harmless, else a new UUID; it is
        // returned in the response.
        .layer(PropagateRequestIdLayer::new(request_id_header()))
        .layer(SetRequestIdLayer::new(request_id_header(), MakeRequestUuid))
        .layer(axum::middleware::from_fn(
            crate::telemetry::sanitize_request_id,
        ))
        .with_state(state)
}

/// The body limit of every request: `[server] body_limit_bytes`, except the web UI's
/// plan form, which takes more so that a text far over the plan's own limit reaches
/// the form's check (which keeps the text) instead of a bare 413. A declared length over
/// the limit is refused at once; a body that grows over it fails when read (413).
async fn body_limit(
    axum::extract::State(limit): axum::extract::State<usize>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let n = if req.method() == axum::http::Method::POST && is_plan_form(req.uri().path()) {
        limit.max(fiktiv_web::PLAN_FORM_BODY_LIMIT)
    } else {
        limit
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|d| d > n as u64) {
        return axum::response::IntoResponse::into_response(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
        );
    }
    let (parts, body) = req.into_parts();
    let body = axum::body::Body::new(http_body_util::Limited::new(body, n));
    next.run(axum::extract::Request::from_parts(parts, body))
        .await
}

/// `/cases/{id}/plan`, the web UI's plan form.
fn is_plan_form(path: &str) -> bool {
    let mut parts = path.trim_start_matches('/').split('/');
    matches!(
        (parts.next(), parts.next(), parts.next(), parts.next()),
        (Some("cases"), Some(id), Some("plan"), None) if !id.is_empty()
    )
}

fn request_id_header() -> header::HeaderName {
    header::HeaderName::from_static(crate::telemetry::REQUEST_ID)
}
