//! The HTTP surface. Handlers are thin: parse, authenticate the bearer token, authorize
//! with the one [`Authorizer`], call one domain function with the permit, map the
//! error to problem+json. `app()` builds the router so tests can call it directly.
//!
//! Every API route is registered through `utoipa_axum::routes!`, which adds the route
//! and its OpenAPI path from the same handler, so `/api/openapi.json` cannot miss one.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use axum::routing::get;
use axum::{Json, Router};
use fiktiv_policies::{Action, Authorizer, Permit, Principal, Resource};
use fiktiv_vault::CaseId;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::context::Context;
use fiktiv_routine::{self as domain, ids::OrderId, ids::RevealId, SharedRules};

mod audit;
mod case_requests;
mod cases;
mod changes;
mod feed;
mod health;
mod hub;
pub mod limits;
pub mod metrics;
mod orders;
pub mod problem;
mod provisioning;
mod reveal;
mod reviews;
mod routine;
mod tasks;
mod transfer;

use problem::ApiError;

/// Shared state of every handler.
#[derive(Clone, Debug)]
pub struct AppState {
    pub ctx: Arc<Context>,
    pub authz: Arc<Authorizer>,
    pub rules: SharedRules,
    /// `/metrics`: its access rules and this process's request latencies.
    pub metrics: Arc<metrics::MetricsState>,
    /// Rate limits on bad bearer tokens and on reveal requests (`[limits]`).
    pub limits: Arc<limits::ApiLimits>,
}

/// The client's address as the server saw it (`None` when the router is called
/// in-process): the key of the limit on bad tokens.
#[derive(Debug, Clone)]
pub struct ClientAddr(pub Option<String>);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip().to_string()),
        ))
    }
}

/// The authenticated caller of an API request.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, ApiError> {
        // A client address that sent too many bad tokens is refused before its token is
        // looked at (see `limits`).
        let addr = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip().to_string());
        let now = st.ctx.vault.now();
        let window = &st.limits.failed_tokens;
        if addr.as_deref().is_some_and(|a| window.exhausted(a, now)) {
            return Err(ApiError::rate_limited().retry_after(window.seconds()));
        }
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|value| match value.split_once(' ') {
                Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") => Some(t.trim()),
                _ => None,
            });
        let principal = match token {
            Some(t) => fiktiv_staff::tokens::authenticate(&st.ctx.vault, t).await?,
            None => None,
        };
        match principal {
            Some(p) => Ok(Caller(p)),
            None => {
                if let Some(a) = &addr {
                    window.record(a, now);
                }
                Err(ApiError::unauthenticated())
            }
        }
    }
}

impl AppState {
    /// A permit on a case, or "not found" for an unknown case and for a denial alike.
    pub async fn case_permit(
        &self,
        caller: &Caller,
        case: &str,
        action: Action,
    ) -> Result<(CaseId, Permit), ApiError> {
        let case: CaseId = case.parse().map_err(|_| ApiError::not_found())?;
        let unit = domain::cases::unit_of(&self.ctx.vault, &case).await?;
        let permit = self
            .authz
            .authorize(&caller.0, action, &Resource::Case { unit })
            .map_err(|_| ApiError::not_found())?;
        Ok((case, permit))
    }

    /// A permit on an order's case ("not found" alike).
    pub async fn order_permit(
        &self,
        caller: &Caller,
        order: &str,
        action: Action,
    ) -> Result<(OrderId, Permit), ApiError> {
        let order: OrderId = order.parse().map_err(|_| ApiError::not_found())?;
        let (_, unit) = domain::orders::case_of(&self.ctx.vault, &order).await?;
        let permit = self
            .authz
            .authorize(&caller.0, action, &Resource::Case { unit })
            .map_err(|_| ApiError::not_found())?;
        Ok((order, permit))
    }

    /// A permit on a reveal request ("not found" alike).
    pub async fn reveal_permit(
        &self,
        caller: &Caller,
        reveal: &str,
        action: Action,
    ) -> Result<(RevealId, Permit), ApiError> {
        let reveal: RevealId = reveal.parse().map_err(|_| ApiError::not_found())?;
        let (unit, requested_by) = domain::reveal::lookup(&self.ctx.vault, &reveal).await?;
        let permit = self
            .authz
            .authorize(
                &caller.0,
                action,
                &Resource::RevealRequest { unit, requested_by },
            )
            .map_err(|_| ApiError::not_found())?;
        Ok((reveal, permit))
    }

    /// A permit on a school unit (403 when denied: unit codes are not secret).
    pub fn unit_permit(
        &self,
        caller: &Caller,
        unit: &str,
        action: Action,
    ) -> Result<Permit, ApiError> {
        if unit.is_empty() || unit.len() > domain::MAX_LABEL_CHARS {
            return Err(ApiError::not_found());
        }
        self.authz
            .authorize(&caller.0, action, &Resource::Unit(unit.to_owned()))
            .map_err(|_| ApiError::forbidden())
    }

    /// A permit on the whole municipality (403 when denied).
    pub fn municipality_permit(&self, caller: &Caller, action: Action) -> Result<Permit, ApiError> {
        self.authz
            .authorize(&caller.0, action, &Resource::Municipality)
            .map_err(|_| ApiError::forbidden())
    }
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Fiktiv API",
        description = "Fictitious identities for pupils with protected personal data. \
                       Errors are RFC 9457 problem+json. Every route needs a bearer token.",
        license(name = "EUPL-1.2")
    ),
    modifiers(&BearerAuth),
    components(schemas(problem::Problem))
)]
struct ApiDoc;

/// Every API route, with its OpenAPI description.
fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(cases::routes())
        .merge(case_requests::routes())
        .merge(changes::routes())
        .merge(transfer::routes())
        .merge(routine::routes())
        .merge(orders::routes())
        .merge(reviews::routes())
        .merge(reveal::routes())
        .merge(audit::routes())
        .merge(provisioning::routes())
        .merge(tasks::routes())
        .merge(hub::routes())
}

/// The OpenAPI document, generated from the handlers. `docs/openapi.json` is this,
/// pretty-printed; a test fails when they differ.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_router().into_openapi()
}

/// The OpenAPI document as checked in: pretty JSON with a final newline.
pub fn openapi_json() -> String {
    let mut s = openapi().to_pretty_json().unwrap_or_default();
    s.push('\n');
    s
}

/// The whole router.
pub fn app(ctx: Context) -> Router {
    let limit = ctx.config.server.body_limit_bytes;
    let timeout = Duration::from_secs(ctx.config.server.request_timeout_secs);
    let metrics = Arc::new(metrics::MetricsState {
        http: crate::metrics::HttpMetrics::default(),
        // Checked at startup (Context); a problem here disables /metrics.
        access: ctx.config.metrics.access().unwrap_or_default(),
    });
    let state = AppState {
        authz: ctx.authz.clone(),
        rules: ctx.rules.clone(),
        metrics: metrics.clone(),
        limits: Arc::new(limits::ApiLimits::new(&ctx.config.limits)),
        ctx: Arc::new(ctx),
    };
    let (api, doc) = api_router().split_for_parts();
    let doc = Arc::new(doc);
    Router::new()
        .merge(health::routes())
        .merge(metrics::routes())
        .merge(api)
        .route(
            "/api/openapi.json",
            get(move || {
                let doc = doc.clone();
                async move { Json(doc.as_ref().clone()) }
            }),
        )
        .merge(crate::web::routes(&state.ctx.config))
        .merge(feed::routes())
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
        limit.max(crate::web::PLAN_FORM_BODY_LIMIT)
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
