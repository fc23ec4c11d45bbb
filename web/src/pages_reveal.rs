//! Reveal with four eyes: ask to see a real identity (with a purpose), the requests
//! waiting for a decision (never one's own: the domain leaves them out and the
//! policies forbid deciding them), approve or refuse, and read an approved reveal
//! once, after re-entering the second factor. The identity is shown only in the
//! answer to that POST: never in a title, a URL, or a page that can be reloaded.
//!
//! Routes: `GET|POST /reveals`, `GET /reveals/{id}`, `POST /reveals/{id}/approve`,
//! `POST /reveals/{id}/refuse`, `POST /reveals/{id}/read`.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::{Extension, Form};
use fiktiv_policies::{Action, Resource};
use serde::Deserialize;

use super::pages::html;
use super::pages_cases::ctx;
use super::ui::{posted, see_other, signed_in, CsrfForm, Ctx, FormErrors};
use super::views::Base;
use super::Web;
use fiktiv_app::AppState;
use fiktiv_routine::cases::IdentityView;
use fiktiv_routine::reveal::{
    self, RevealDecisionInput, RevealListItem, RevealRequestInput, RevealState,
};
use fiktiv_routine::DomainError;
use fiktiv_staff::session::require_fresh_second_factor;

#[derive(Template)]
#[template(path = "reveals.html")]
pub struct RevealsPage {
    pub base: Base,
    /// `None`: this person does not decide requests.
    pub pending: Option<Vec<RevealListItem>>,
    /// `None`: this person makes no requests.
    pub mine: Option<Vec<RevealListItem>>,
    pub case_id: String,
    pub fictitious_number: String,
    pub purpose: String,
    pub errors: FormErrors,
    pub notice: Option<&'static str>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct RevealsQuery {
    done: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct RequestForm {
    csrf: String,
    case_id: String,
    fictitious_number: String,
    purpose: String,
}

async fn reveals_page(
    c: &Ctx,
    st: &AppState,
    form: RequestForm,
    errors: FormErrors,
    status: StatusCode,
    notice: Option<&'static str>,
) -> Response {
    let vault = &st.ctx.vault;
    let pending = match c.municipality_permit(st, Action::RevealListPending) {
        Ok(p) => match reveal::list_pending(vault, &p).await {
            Ok(l) => Some(l),
            Err(e) => return c.fail(st, e, "/"),
        },
        Err(_) => None,
    };
    let mine = match c.municipality_permit(st, Action::RevealListOwn) {
        Ok(p) => match reveal::list_own(vault, &p).await {
            Ok(l) => Some(l),
            Err(e) => return c.fail(st, e, "/"),
        },
        Err(_) => None,
    };
    if pending.is_none() && mine.is_none() {
        return c.not_allowed(st);
    }
    let page = RevealsPage {
        base: c.base(st, "reveals.title", "/reveals"),
        pending,
        mine,
        case_id: form.case_id,
        fictitious_number: form.fictitious_number,
        purpose: form.purpose,
        errors,
        notice,
    };
    html(status, &page)
}

pub async fn list(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Query(q): Query<RevealsQuery>,
    headers: HeaderMap,
) -> Response {
    let c = ctx!(signed_in(&st, &web, &headers).await);
    let notice = match q.done.as_str() {
        "approved" => Some("reveals.notice-approved"),
        "refused" => Some("reveals.notice-refused"),
        _ => None,
    };
    reveals_page(
        &c,
        &st,
        RequestForm::default(),
        FormErrors::default(),
        StatusCode::OK,
        notice,
    )
    .await
}

const REQUEST_FIELDS: &[&str] = &["fictitious_number", "case_id", "purpose"];

pub async fn request(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    parts: Parts,
    Form(form): Form<RequestForm>,
) -> Response {
    let c = ctx!(posted(&st, &web, &parts, &form.csrf).await);
    let blank = |s: &str| {
        let t = s.trim();
        (!t.is_empty()).then(|| t.to_owned())
    };
    let input = RevealRequestInput {
        case_id: blank(&form.case_id),
        fictitious_number: blank(&form.fictitious_number),
        purpose: form.purpose.clone(),
    };
    let vault = &st.ctx.vault;
    // Who the request is about decides who may ask: the authorizer on the case's unit.
    // An unknown target and a denial are answered alike.
    let unknown = || FormErrors::general_on("fictitious_number", "problem.reveal-target-unknown");
    let result = match reveal::resolve(vault, &input).await {
        Ok(target) => match st.ctx.authz.authorize(
            &c.principal,
            Action::RevealRequest,
            &Resource::Case {
                unit: target.unit.clone(),
            },
        ) {
            Ok(permit) => match reveal::request(
                vault,
                &permit,
                &target,
                &input.purpose,
                st.ctx.reveal_limit(),
            )
            .await
            {
                Ok(v) => return see_other(&format!("/reveals/{}", v.reveal_id)),
                Err(e) => FormErrors::from_domain(e, REQUEST_FIELDS, &[]),
            },
            Err(_) => Ok((StatusCode::NOT_FOUND, unknown())),
        },
        Err(DomainError::NotFound) => Ok((StatusCode::NOT_FOUND, unknown())),
        Err(e) => FormErrors::from_domain(e, REQUEST_FIELDS, &[]),
    };
    match result {
        Ok((status, errors)) => reveals_page(&c, &st, form, errors, status, None).await,
        Err(e) => c.fail(&st, e, "/reveals"),
    }
}

async fn decide(
    st: AppState,
    web: Arc<Web>,
    id: String,
    parts: Parts,
    csrf: String,
    approve: bool,
    reason: Option<String>,
) -> Response {
    let c = ctx!(posted(&st, &web, &parts, &csrf).await);
    let (id, permit) = ctx!(c.reveal_permit(&st, &id, Action::RevealApprove).await);
    // Deciding needs the second factor entered again, as reading does: one click of a
    // session left open must not let a real identity out.
    if require_fresh_second_factor(&c.session, web.timeouts, c.now(&st)).is_err() {
        return see_other("/step-up?next=/reveals");
    }
    let input = RevealDecisionInput { approve, reason };
    match reveal::decide(&st.ctx.vault, &st.ctx.rules, &permit, &id, input).await {
        Ok(_) if approve => see_other("/reveals?done=approved"),
        Ok(_) => see_other("/reveals?done=refused"),
        Err(e) => c.fail(&st, e, "/reveals"),
    }
}

pub async fn approve(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Path(id): Path<String>,
    parts: Parts,
    Form(form): Form<CsrfForm>,
) -> Response {
    decide(st, web, id, parts, form.csrf, true, None).await
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct RefuseForm {
    csrf: String,
    reason: String,
}

pub async fn refuse(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Path(id): Path<String>,
    parts: Parts,
    Form(form): Form<RefuseForm>,
) -> Response {
    decide(st, web, id, parts, form.csrf, false, Some(form.reason)).await
}

/// One's own request, and the button that reads it.
#[derive(Template)]
#[template(path = "reveal.html")]
pub struct RevealPage {
    pub base: Base,
    pub item: RevealListItem,
    /// The second factor was re-entered recently enough: reading needs no code now.
    pub fresh: bool,
}

impl RevealPage {
    pub fn readable(&self) -> bool {
        self.item.state == RevealState::Approved
    }
}

pub async fn page(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let c = ctx!(signed_in(&st, &web, &headers).await);
    let permit = ctx!(c.municipality_permit(&st, Action::RevealListOwn));
    let item = match reveal::list_own(&st.ctx.vault, &permit).await {
        Ok(l) => l.into_iter().find(|r| r.reveal_id == id),
        Err(e) => return c.fail(&st, e, "/reveals"),
    };
    let Some(item) = item else {
        return c.not_found(&st);
    };
    let page = RevealPage {
        base: c.base(&st, "reveal.title", &format!("/reveals/{}", item.reveal_id)),
        fresh: require_fresh_second_factor(&c.session, web.timeouts, c.now(&st)).is_ok(),
        item,
    };
    html(StatusCode::OK, &page)
}

/// The revealed identity: the answer to the POST that read it, once.
#[derive(Template)]
#[template(path = "reveal_identity.html")]
pub struct RevealIdentityPage {
    pub base: Base,
    pub identity: IdentityView,
}

pub async fn read(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Path(id): Path<String>,
    parts: Parts,
    Form(form): Form<CsrfForm>,
) -> Response {
    let c = ctx!(posted(&st, &web, &parts, &form.csrf).await);
    let (id, permit) = ctx!(c.reveal_permit(&st, &id, Action::RevealRead).await);
    // Revealing needs the second factor re-entered first.
    if require_fresh_second_factor(&c.session, web.timeouts, c.now(&st)).is_err() {
        return see_other(&format!("/step-up?next=/reveals/{id}"));
    }
    match reveal::read(&st.ctx.vault, &permit, &id).await {
        Ok(identity) => {
            let page = RevealIdentityPage {
                // `here` is the list: switching language must not read again.
                base: c.base(&st, "reveal.identity-title", "/reveals"),
                identity,
            };
            html(StatusCode::OK, &page)
        }
        Err(e) => c.fail(&st, e, "/reveals"),
    }
}
