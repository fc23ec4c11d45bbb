//! The HTTP surface. Handlers are thin: parse, authenticate the bearer token, authorize
//! with the one authorizer (`fiktiv_policies::Authorizer`), call one domain function
//! with the permit, map the error to problem+json. `routes()` gives the API's routes;
//! the binary joins them with the web UI's in one router (`fiktiv::router::app`), which
//! tests call directly.
//! The handlers share one state with the web UI ([`AppState`], `fiktiv-app`), and every
//! limit and authorization decision is the domain's or the authorizer's, so that the
//! API and the web UI cannot differ. No SQL here (tests/tests/suite/layers.rs).
//!
//! Every API route is registered through `utoipa_axum::routes!`, which adds the route
//! and its OpenAPI path from the same handler, so `/api/openapi.json` cannot miss one.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use axum::routing::get;
use axum::{Json, Router};
use fiktiv_policies::{Action, Permit, Principal, Resource};
use fiktiv_vault::CaseId;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use fiktiv_app::AppState;
use fiktiv_routine::{self as domain, ids::OrderId, ids::RevealId};

mod audit;
mod case_requests;
mod cases;
mod changes;
mod feed;
mod health;
mod hub;
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

/// The client's address as the server saw it (`None` when the router is called
/// in-process): the key of the limit on bad tokens.
#[derive(Debug, Clone)]
pub struct ClientAddr(pub Option<String>);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Self(client_addr(parts)))
    }
}

/// The TCP peer's address, when the server saw one.
fn client_addr(parts: &Parts) -> Option<String> {
    parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip().to_string())
}

/// The authenticated caller of an API request.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, ApiError> {
        // A client address that sent too many bad tokens is refused before its token is
        // looked at (see `limits`).
        let addr = client_addr(parts);
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

/// The permits an API handler asks for, each answering as the API answers a denial.
pub(crate) trait Permits {
    /// A permit on a case, or "not found" for an unknown case and for a denial alike.
    async fn case_permit(
        &self,
        caller: &Caller,
        case: &str,
        action: Action,
    ) -> Result<(CaseId, Permit), ApiError>;
    /// A permit on an order's case ("not found" alike).
    async fn order_permit(
        &self,
        caller: &Caller,
        order: &str,
        action: Action,
    ) -> Result<(OrderId, Permit), ApiError>;
    /// A permit on a reveal request ("not found" alike).
    async fn reveal_permit(
        &self,
        caller: &Caller,
        reveal: &str,
        action: Action,
    ) -> Result<(RevealId, Permit), ApiError>;
    /// A permit on a school unit (403 when denied: unit codes are not secret).
    fn unit_permit(&self, caller: &Caller, unit: &str, action: Action) -> Result<Permit, ApiError>;
    /// A permit on the whole municipality (403 when denied).
    fn municipality_permit(&self, caller: &Caller, action: Action) -> Result<Permit, ApiError>;
}

impl Permits for AppState {
    async fn case_permit(
        &self,
        caller: &Caller,
        case: &str,
        action: Action,
    ) -> Result<(CaseId, Permit), ApiError> {
        let case: CaseId = case.parse().map_err(|_| ApiError::not_found())?;
        let unit = domain::cases::unit_of(&self.ctx.vault, &case).await?;
        let permit = self
            .ctx
            .authz
            .authorize(&caller.0, action, &Resource::Case { unit })
            .map_err(|_| ApiError::not_found())?;
        Ok((case, permit))
    }

    async fn order_permit(
        &self,
        caller: &Caller,
        order: &str,
        action: Action,
    ) -> Result<(OrderId, Permit), ApiError> {
        let order: OrderId = order.parse().map_err(|_| ApiError::not_found())?;
        let (_, unit) = domain::orders::case_of(&self.ctx.vault, &order).await?;
        let permit = self
            .ctx
            .authz
            .authorize(&caller.0, action, &Resource::Case { unit })
            .map_err(|_| ApiError::not_found())?;
        Ok((order, permit))
    }

    async fn reveal_permit(
        &self,
        caller: &Caller,
        reveal: &str,
        action: Action,
    ) -> Result<(RevealId, Permit), ApiError> {
        let reveal: RevealId = reveal.parse().map_err(|_| ApiError::not_found())?;
        let (unit, requested_by) = domain::reveal::lookup(&self.ctx.vault, &reveal).await?;
        let permit = self
            .ctx
            .authz
            .authorize(
                &caller.0,
                action,
                &Resource::RevealRequest { unit, requested_by },
            )
            .map_err(|_| ApiError::not_found())?;
        Ok((reveal, permit))
    }

    fn unit_permit(&self, caller: &Caller, unit: &str, action: Action) -> Result<Permit, ApiError> {
        if unit.is_empty() || unit.len() > domain::MAX_LABEL_CHARS {
            return Err(ApiError::not_found());
        }
        self.ctx
            .authz
            .authorize(&caller.0, action, &Resource::Unit(unit.to_owned()))
            .map_err(|_| ApiError::forbidden())
    }

    fn municipality_permit(&self, caller: &Caller, action: Action) -> Result<Permit, ApiError> {
        self.ctx
            .authz
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

/// The API's routes: the health probes, `/metrics`, every `/api` route with its
/// OpenAPI document at `/api/openapi.json`, and the SS 12000 feed. The binary merges
/// them with the web UI's into one router (`fiktiv::router::app`).
pub fn routes() -> Router<AppState> {
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
        .merge(feed::routes())
}
