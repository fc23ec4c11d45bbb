//! `GET /metrics` on the service's own listener.
//!
//! Access (`[metrics]`, docs/CONFIGURATION.md): a client whose TCP peer address is in
//! `allow_from`, or one that sends `Authorization: Bearer <token>` with the configured
//! token (compared in constant time). Without a token and without addresses the route
//! answers 404, as if it did not exist. A denied scrape gets 401 when a token is
//! configured (send it), otherwise 403.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use subtle::ConstantTimeEq;

use super::problem::ApiError;
use fiktiv_app::config::MetricsAccess;
use fiktiv_app::metrics::MetricsState;
use fiktiv_app::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

enum Decision {
    Disabled,
    Allowed,
    NeedsToken,
    Denied,
}

fn decide(access: &MetricsAccess, req: &Request) -> Decision {
    if !access.enabled() {
        return Decision::Disabled;
    }
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if let Some(ip) = peer {
        if access.allow_from.iter().any(|b| b.contains(ip)) {
            return Decision::Allowed;
        }
    }
    let Some(want) = &access.token else {
        return Decision::Denied;
    };
    let sent = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim());
    match sent {
        Some(t) if t.len() == want.len() && bool::from(t.as_bytes().ct_eq(want.as_bytes())) => {
            Decision::Allowed
        }
        _ => Decision::NeedsToken,
    }
}

async fn metrics(State(st): State<AppState>, req: Request) -> Response {
    let m: &Arc<MetricsState> = &st.metrics;
    match decide(&m.access, &req) {
        Decision::Disabled => return ApiError::not_found().into_response(),
        Decision::Denied => return ApiError::forbidden().into_response(),
        Decision::NeedsToken => return ApiError::unauthenticated().into_response(),
        Decision::Allowed => {}
    }
    let text = match fiktiv_app::metrics::snapshot(&st.ctx).await {
        Ok(snap) => fiktiv_app::metrics::render(&snap, &m.http),
        Err(e) => {
            tracing::error!(error = %e, "metrics could not be read from the database");
            return ApiError::internal().into_response();
        }
    };
    match text {
        Ok(body) => {
            let mut resp = body.into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            resp.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        Err(_) => ApiError::internal().into_response(),
    }
}
