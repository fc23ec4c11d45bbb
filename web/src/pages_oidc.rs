//! The pages of OpenID Connect sign-in (`[web.oidc]`, see `oidc`): starting a sign-in
//! or a step-up at the identity provider, and the callback the provider sends the
//! browser back to. Thin: the flow, the token checks and the accounts are in `oidc`.
//!
//! The starts are links (GET), not forms: a form's redirect to another site would be
//! blocked by the CSP's `form-action 'self'`, and a start changes nothing but a
//! short-lived, single-use flow bound to this browser. They are rate-limited per
//! client address like the password sign-in.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use serde::Deserialize;

use super::i18n::Tr;
use super::pages::{
    begin, html, internal, message_with_link, next_or_home, require_session, NextQuery,
    ANON_CSRF_COOKIE,
};
use super::security::{clear_cookie, client_addr, cookie, local_path, set_cookie, set_cookie_lax};
use super::views::{Base, ContinuePage};
use super::Web;
use fiktiv_app::AppState;
use fiktiv_staff::accounts::UNKNOWN_ACTOR;
use fiktiv_staff::oidc::{self, Oidc, Purpose, Refusal, FLOW_COOKIE, FLOW_TTL_SECS};
use fiktiv_staff::principal::principal_id;
use fiktiv_staff::session::COOKIE;

fn not_configured(tr: &Tr) -> Response {
    message_with_link(
        tr,
        StatusCode::NOT_FOUND,
        "error.not-found-title",
        "error.not-found-text",
        "/signin",
        "oidc.to-signin",
    )
}

/// The page a refusal shows. Every refusal has been audited before this.
fn refused_page(tr: &Tr, purpose: Purpose, why: Refusal) -> Response {
    let (status, heading, text) = match why {
        Refusal::NoRole => (
            StatusCode::FORBIDDEN,
            "oidc.no-role-title",
            "oidc.no-role-text",
        ),
        Refusal::Disabled => (
            StatusCode::FORBIDDEN,
            "oidc.refused-title",
            "oidc.disabled-text",
        ),
        Refusal::LocalAccount => (
            StatusCode::FORBIDDEN,
            "oidc.refused-title",
            "oidc.local-account-text",
        ),
        Refusal::Unavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            "oidc.unavailable-title",
            "oidc.unavailable-text",
        ),
        Refusal::RateLimited => (
            StatusCode::TOO_MANY_REQUESTS,
            "signin.error-heading",
            "signin.error-rate-limited",
        ),
        Refusal::NotFresh | Refusal::OtherPerson => (
            StatusCode::UNAUTHORIZED,
            "oidc.failed-title",
            "oidc.step-up-failed-text",
        ),
        Refusal::State
        | Refusal::ProviderError
        | Refusal::Token
        | Refusal::Subject
        | Refusal::Acr => (
            StatusCode::BAD_REQUEST,
            "oidc.failed-title",
            "oidc.failed-text",
        ),
    };
    let mut r = match purpose {
        Purpose::SignIn => {
            message_with_link(tr, status, heading, text, "/signin", "oidc.to-signin")
        }
        Purpose::StepUp => message_with_link(tr, status, heading, text, "/", "error.to-start"),
    };
    if let Ok(v) = clear_cookie(FLOW_COOKIE).parse() {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

/// Audit a refusal and show its page.
async fn refuse(
    st: &AppState,
    web: &Web,
    tr: &Tr,
    actor: &str,
    purpose: Purpose,
    why: Refusal,
) -> Response {
    tracing::info!(reason = why.code(), "OIDC {} refused", purpose.action());
    match oidc::audit_refusal(&st.ctx.vault, actor, purpose, why).await {
        Ok(()) => refused_page(tr, purpose, why),
        Err(e) => internal(web, tr, e),
    }
}

/// Start a flow and send the browser to the provider (303), with the flow cookie.
#[allow(clippy::too_many_arguments)] // the request's parts, and the flow's own values
async fn start(
    st: &AppState,
    web: &Web,
    tr: &Tr,
    parts: &Parts,
    o: &Oidc,
    purpose: Purpose,
    session_hash: Option<&str>,
    next: &str,
    actor: &str,
) -> Response {
    let vault = &st.ctx.vault;
    let ip = format!("ip:{}", client_addr(&parts.extensions));
    if !web.limiter.allow(&[&ip], vault.now()) {
        return refuse(st, web, tr, actor, purpose, Refusal::RateLimited).await;
    }
    let browser = cookie(&parts.headers, FLOW_COOKIE);
    match o.begin(vault, purpose, session_hash, next, browser).await {
        Err(problem) => {
            tracing::warn!(error = %problem, "OIDC provider unavailable");
            refuse(st, web, tr, actor, purpose, Refusal::Unavailable).await
        }
        Ok(Err(e)) => internal(web, tr, e),
        Ok(Ok(started)) => {
            let mut r = Redirect::to(started.authorize_url.as_str()).into_response();
            let c = set_cookie_lax(FLOW_COOKIE, &started.browser_token, FLOW_TTL_SECS);
            if let Ok(v) = c.parse() {
                r.headers_mut().append(header::SET_COOKIE, v);
            }
            r
        }
    }
}

/// `GET /signin/oidc`: sign in at the identity provider.
pub async fn signin_start(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    parts: Parts,
) -> Response {
    let req = match begin(&st, &web, &parts.headers).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let Some(o) = web.oidc.clone() else {
        return not_configured(&req.tr);
    };
    if req.session.is_some() {
        return Redirect::to("/").into_response();
    }
    start(
        &st,
        &web,
        &req.tr,
        &parts,
        &o,
        Purpose::SignIn,
        None,
        "/",
        UNKNOWN_ACTOR,
    )
    .await
}

/// `GET /step-up/oidc?next=…`: an OIDC account re-authenticates at the provider
/// (`prompt=login`, `max_age=0`) before revealing a real identity.
pub async fn step_up_start(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Query(q): Query<NextQuery>,
    parts: Parts,
) -> Response {
    let req = match begin(&st, &web, &parts.headers).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let s = match require_session(&req, false) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    if !s.account.oidc {
        return Redirect::to("/step-up").into_response();
    }
    let Some(o) = web.oidc.clone() else {
        return not_configured(&req.tr);
    };
    let actor = principal_id(&s.account.name);
    start(
        &st,
        &web,
        &req.tr,
        &parts,
        &o,
        Purpose::StepUp,
        Some(s.hash()),
        &next_or_home(&q.next),
        &actor,
    )
    .await
}

/// What the provider sends back (RFC 6749 4.1.2, RFC 9207 `iss`). Other parameters
/// (`session_state`, `error_description`, …) are ignored.
#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    iss: Option<String>,
}

/// The page that moves on to `next` after a sign-in or step-up, with the cookies.
fn continue_to(tr: &Tr, next: &str, set: &[String]) -> Response {
    let next = local_path(next).unwrap_or("/").to_owned();
    let page = ContinuePage {
        base: Base::new(tr.clone(), "oidc.continue-title", String::new(), "/"),
        next,
    };
    let mut r = html(StatusCode::OK, &page);
    for c in set {
        if let Ok(v) = c.parse() {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    r
}

/// `GET /signin/oidc/callback`: the provider sends the browser back here.
pub async fn callback(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    query: Result<Query<CallbackQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Response {
    let req = match begin(&st, &web, &headers).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let tr = &req.tr;
    let Some(o) = web.oidc.clone() else {
        return not_configured(tr);
    };
    let unknown = UNKNOWN_ACTOR;
    let vault = &st.ctx.vault;
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let flow = match q.state.as_deref() {
        Some(state) => match oidc::take_flow(vault, state, cookie(&headers, FLOW_COOKIE)).await {
            Ok(f) => f,
            Err(e) => return internal(&web, tr, e),
        },
        None => None,
    };
    let Some(flow) = flow else {
        return refuse(&st, &web, tr, unknown, Purpose::SignIn, Refusal::State).await;
    };
    let purpose = flow.purpose;
    // The actor of a step-up's refusals is the session's person, if it is still live.
    let session_actor = match purpose {
        Purpose::StepUp => match oidc::step_up_actor(vault, flow.session_hash.as_deref()).await {
            Ok(a) => a,
            Err(e) => return internal(&web, tr, e),
        },
        Purpose::SignIn => unknown.to_owned(),
    };
    if q.error.is_some() {
        return refuse(
            &st,
            &web,
            tr,
            &session_actor,
            purpose,
            Refusal::ProviderError,
        )
        .await;
    }
    // RFC 9207: a response that names another issuer is a mix-up.
    if q.iss
        .as_deref()
        .is_some_and(|iss| iss != o.settings.issuer_str())
    {
        return refuse(&st, &web, tr, &session_actor, purpose, Refusal::Token).await;
    }
    let claims = match o
        .finish(vault, &flow, q.code.as_deref().unwrap_or_default())
        .await
    {
        Ok(c) => c,
        Err(why) => return refuse(&st, &web, tr, &session_actor, purpose, why).await,
    };
    let mapped = match o.settings.map_claims(&claims) {
        Ok(m) => m,
        Err(Refusal::NoRole) if purpose == Purpose::SignIn => {
            // The name is valid here (the subject was checked first).
            let name = o.settings.subject(&claims).unwrap_or_default();
            tracing::info!(reason = Refusal::NoRole.code(), "OIDC web.signin refused");
            return match oidc::refuse_no_role(vault, &name).await {
                Ok(()) => refused_page(tr, purpose, Refusal::NoRole),
                Err(e) => internal(&web, tr, e),
            };
        }
        Err(why) => return refuse(&st, &web, tr, &session_actor, purpose, why).await,
    };
    match purpose {
        Purpose::SignIn => match oidc::sign_in(vault, &mapped).await {
            Err(e) => internal(&web, tr, e),
            Ok(Err(why)) => {
                tracing::info!(reason = why.code(), "OIDC web.signin refused");
                refused_page(tr, purpose, why)
            }
            Ok(Ok((_, new))) => continue_to(
                tr,
                &flow.next,
                &[
                    set_cookie(COOKIE, &new.cookie_value, None),
                    clear_cookie(FLOW_COOKIE),
                    clear_cookie(ANON_CSRF_COOKIE),
                ],
            ),
        },
        Purpose::StepUp => {
            let Some(hash) = flow.session_hash.as_deref() else {
                return refuse(&st, &web, tr, &session_actor, purpose, Refusal::State).await;
            };
            match oidc::step_up(vault, hash, &mapped.name).await {
                Err(e) => internal(&web, tr, e),
                Ok(Err(why)) => {
                    tracing::info!(reason = why.code(), "OIDC web.step-up refused");
                    refused_page(tr, purpose, why)
                }
                Ok(Ok(())) => continue_to(tr, &flow.next, &[clear_cookie(FLOW_COOKIE)]),
            }
        }
    }
}
