//! Corrections after the order.
//!
//! Correcting the pupil's real identity (`GET/POST /cases/{id}/identity-correction`),
//! and closing an old identity once the leak scan no longer finds it
//! (`POST /cases/{id}/old-identities/{n}/close`): the same domain functions as
//! `POST /api/v1/cases/{id}/identity-correction` and
//! `POST /api/v1/cases/{id}/old-identities/{n}/close`. The form asks for the second
//! factor again first: the correction reads the current identity (audited) to keep it
//! for the leak scan.
//!
//! Changing a registered pupil's fictitious identity
//! (`GET/POST /cases/{id}/fictitious-change`): as `POST
//! /api/v1/cases/{id}/fictitious-change`; the central administrator registers it on the
//! orders page.
//!
//! A guardian who is no longer the pupil's guardian after the order
//! (`GET/POST /cases/{id}/guardians/{n}/removal`): as `POST
//! /api/v1/cases/{id}/guardians/{n}/removal`.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::{Extension, Form};
use fiktiv_policies::Action;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::pages::html;
use super::pages_cases::ctx;
use super::pages_plan::case_view;
use super::ui::{posted, see_other, signed_in, Ctx, FormErrors};
use super::views::Base;
use super::Web;
use fiktiv_app::AppState;
use fiktiv_routine::cases::CaseView;
use fiktiv_routine::corrections::{self, IdentityCorrection};
use fiktiv_routine::fictitious_changes::{self, FictitiousChangeInput};
use fiktiv_routine::guardians::{self, GuardianRemoval};
use fiktiv_routine::DomainError;
use fiktiv_staff::session::require_fresh_second_factor;
use fiktiv_vault::CaseId;

#[derive(Template)]
#[template(path = "identity_correction.html")]
pub struct CorrectionPage {
    pub base: Base,
    pub case: CaseView,
    pub reason: String,
    pub errors: FormErrors,
}

fn page(
    st: &AppState,
    c: &Ctx,
    case: CaseView,
    reason: String,
    errors: FormErrors,
) -> CorrectionPage {
    CorrectionPage {
        base: c.base(
            st,
            "correction.title",
            &format!("/cases/{}/identity-correction", case.case_id),
        ),
        case,
        reason,
        errors,
    }
}

pub async fn form(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let c = ctx!(signed_in(&st, &web, &headers).await);
    let (case, _, _) = ctx!(c.case_permit(&st, &id, Action::CaseCorrectIdentity).await);
    if require_fresh_second_factor(&c.session, web.timeouts, c.now(&st)).is_err() {
        return see_other(&format!("/step-up?next=/cases/{case}/identity-correction"));
    }
    let view = ctx!(case_view(&c, &st, &id).await);
    html(
        StatusCode::OK,
        &page(&st, &c, view, String::new(), FormErrors::default()),
    )
}

/// The corrected identity as typed. Never logged, never shown again.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct CorrectionForm {
    csrf: String,
    personal_number: Zeroizing<String>,
    first_name: Zeroizing<String>,
    last_name: Zeroizing<String>,
    birth_date: Zeroizing<String>,
    reason: String,
}

impl std::fmt::Debug for CorrectionForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CorrectionForm([redacted])")
    }
}

const FIELDS: &[&str] = &[
    "personal_number",
    "first_name",
    "last_name",
    "birth_date",
    "reason",
];

pub async fn write(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Path(id): Path<String>,
    parts: Parts,
    Form(form): Form<CorrectionForm>,
) -> Response {
    let c = ctx!(posted(&st, &web, &parts, &form.csrf).await);
    let (case, _, permit) = ctx!(c.case_permit(&st, &id, Action::CaseCorrectIdentity).await);
    if require_fresh_second_factor(&c.session, web.timeouts, c.now(&st)).is_err() {
        return see_other(&format!("/step-up?next=/cases/{case}/identity-correction"));
    }
    let reason = form.reason.clone();
    let input = IdentityCorrection {
        personal_number: form.personal_number,
        first_name: form.first_name,
        last_name: form.last_name,
        birth_date: form.birth_date,
        reason: form.reason,
    };
    match corrections::correct_identity(&st.ctx.vault, &permit, &case, input).await {
        Ok(_) => see_other(&format!("/cases/{case}?done=corrected")),
        // The form comes back empty but for the reason: a real identity is never echoed.
        Err(e) => match FormErrors::from_domain(e, FIELDS, &[]) {
            Ok((status, errors)) => {
                let view = ctx!(case_view(&c, &st, &id).await);
                html(status, &page(&st, &c, view, reason, errors))
            }
            Err(e) => c.fail(&st, e, &format!("/cases/{case}")),
        },
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct CloseForm {
    csrf: String,
}

pub async fn close_old(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Path((id, old)): Path<(String, String)>,
    parts: Parts,
    Form(form): Form<CloseForm>,
) -> Response {
    let c = ctx!(posted(&st, &web, &parts, &form.csrf).await);
    let (case, _, permit) = ctx!(c.case_permit(&st, &id, Action::CaseCloseOldIdentity).await);
    let Ok(old) = old.parse::<u32>() else {
        return c.not_found(&st);
    };
    match corrections::close_old_identity(&st.ctx.vault, &permit, &case, old).await {
        Ok(()) => see_other(&format!("/cases/{case}?done=old-closed")),
        Err(e) => c.fail(&st, e, &format!("/cases/{case}")),
    }
}

#[derive(Template)]
#[template(path = "fictitious_change.html")]
pub struct ChangePage {
    pub base: Base,
    pub case: CaseView,
    /// Whose: `None` for the pupil, the guardian's number for a guardian.
    pub guardian_no: Option<i64>,
    pub first_name: String,
    pub last_name: String,
    pub birth_date: String,
    pub reason: String,
    pub errors: FormErrors,
}

pub async fn change_form(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let c = ctx!(signed_in(&st, &web, &headers).await);
    let _ = ctx!(
        c.case_permit(&st, &id, Action::FictitiousIdentityWrite)
            .await
    );
    let view = ctx!(case_view(&c, &st, &id).await);
    let held = view.fictitious.as_ref().map(|f| ChangeForm {
        first_name: f.first_name.clone(),
        last_name: f.last_name.clone(),
        birth_date: f.birth_date.clone(),
        ..ChangeForm::default()
    });
    let page = change_page(
        &c,
        &st,
        view,
        None,
        held.unwrap_or_default(),
        FormErrors::default(),
    );
    html(StatusCode::OK, &page)
}

/// The change form, for the pupil (`guardian_no` is `None`) or a guardian.
fn change_page(
    c: &Ctx,
    st: &AppState,
    case: CaseView,
    guardian_no: Option<i64>,
    form: ChangeForm,
    errors: FormErrors,
) -> ChangePage {
    let (title, path) = match guardian_no {
        None => (
            "change.title",
            format!("/cases/{}/fictitious-change", case.case_id),
        ),
        Some(n) => (
            "change.title-guardian",
            format!("/cases/{}/guardians/{n}/fictitious-change", case.case_id),
        ),
    };
    ChangePage {
        base: c.base(st, title, &path),
        case,
        guardian_no,
        first_name: form.first_name,
        last_name: form.last_name,
        birth_date: form.birth_date,
        reason: form.reason,
        errors,
    }
}

/// The answer to a posted change: back to the case, or the form again with what was
/// typed (a fictitious identity is no secret) and the problems.
async fn change_answer(
    c: &Ctx,
    st: &AppState,
    case: &CaseId,
    guardian_no: Option<i64>,
    form: ChangeForm,
    asked: Result<fictitious_changes::FictitiousChange, DomainError>,
) -> Response {
    match asked {
        Ok(_) => see_other(&format!("/cases/{case}?done=change-asked")),
        Err(e) => match FormErrors::from_domain(e, CHANGE_FIELDS, &[("name", "first_name")]) {
            Ok((status, errors)) => {
                let view = ctx!(case_view(c, st, &case.to_string()).await);
                html(status, &change_page(c, st, view, guardian_no, form, errors))
            }
            Err(e) => c.fail(st, e, &format!("/cases/{case}")),
        },
    }
}

fn change_input(form: &ChangeForm) -> FictitiousChangeInput {
    FictitiousChangeInput {
        first_name: form.first_name.clone(),
        last_name: form.last_name.clone(),
        birth_date: form.birth_date.clone(),
        reason: form.reason.clone(),
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct ChangeForm {
    csrf: String,
    first_name: String,
    last_name: String,
    birth_date: String,
    reason: String,
}

const CHANGE_FIELDS: &[&str] = &["first_name", "last_name", "birth_date", "reason"];

pub async fn change_write(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Path(id): Path<String>,
    parts: Parts,
    Form(form): Form<ChangeForm>,
) -> Response {
    let c = ctx!(posted(&st, &web, &parts, &form.csrf).await);
    let (case, _, permit) = ctx!(
        c.case_permit(&st, &id, Action::FictitiousIdentityWrite)
            .await
    );
    let asked = fictitious_changes::request(
        &st.ctx.vault,
        &st.ctx.rules,
        &permit,
        &case,
        change_input(&form),
    )
    .await;
    change_answer(&c, &st, &case, None, form, asked).await
}

#[derive(Template)]
#[template(path = "guardian_removal.html")]
pub struct RemovalPage {
    pub base: Base,
    pub case: CaseView,
    pub guardian_no: i64,
    pub reason: String,
    pub errors: FormErrors,
}

fn guardian_no(n: &str) -> Result<i64, fiktiv_routine::DomainError> {
    n.parse::<i64>()
        .ok()
        .filter(|n| (1..=fiktiv_routine::guardians::MAX_GUARDIANS).contains(n))
        .ok_or(fiktiv_routine::DomainError::NotFound)
}

/// `GET /cases/{id}/guardians/{n}/removal`: a guardian is no longer the pupil's
/// guardian (after the order); as `POST /api/v1/cases/{id}/guardians/{n}/removal`.
pub async fn removal_form(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Path((id, n)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let c = ctx!(signed_in(&st, &web, &headers).await);
    let _ = ctx!(c.case_permit(&st, &id, Action::GuardianWrite).await);
    let n = ctx!(guardian_no(&n).map_err(|e| c.fail(&st, e, "/")));
    let view = ctx!(case_view(&c, &st, &id).await);
    let page = RemovalPage {
        base: c.base(
            &st,
            "guardian-removal.title",
            &format!("/cases/{}/guardians/{n}/removal", view.case_id),
        ),
        case: view,
        guardian_no: n,
        reason: String::new(),
        errors: FormErrors::default(),
    };
    html(StatusCode::OK, &page)
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct RemovalForm {
    csrf: String,
    reason: String,
}

pub async fn removal_write(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Path((id, n)): Path<(String, String)>,
    parts: Parts,
    Form(form): Form<RemovalForm>,
) -> Response {
    let c = ctx!(posted(&st, &web, &parts, &form.csrf).await);
    let (case, _, permit) = ctx!(c.case_permit(&st, &id, Action::GuardianWrite).await);
    let n = ctx!(guardian_no(&n).map_err(|e| c.fail(&st, e, &format!("/cases/{case}"))));
    let input = GuardianRemoval {
        reason: form.reason.clone(),
    };
    match guardians::remove(&st.ctx.vault, &permit, &case, n, input).await {
        Ok(()) => see_other(&format!("/cases/{case}?done=guardian-removed")),
        Err(e) => match FormErrors::from_domain(e, &["reason"], &[]) {
            Ok((status, errors)) => {
                let view = ctx!(case_view(&c, &st, &id).await);
                let page = RemovalPage {
                    base: c.base(
                        &st,
                        "guardian-removal.title",
                        &format!("/cases/{case}/guardians/{n}/removal"),
                    ),
                    case: view,
                    guardian_no: n,
                    reason: form.reason,
                    errors,
                };
                html(status, &page)
            }
            Err(e) => c.fail(&st, e, &format!("/cases/{case}")),
        },
    }
}

/// `GET /cases/{id}/guardians/{n}/fictitious-change`: a linked guardian's fictitious
/// identity, as `POST /api/v1/cases/{id}/guardians/{n}/fictitious-change`.
pub async fn guardian_change_form(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Path((id, n)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let c = ctx!(signed_in(&st, &web, &headers).await);
    let (case, _, _) = ctx!(c.case_permit(&st, &id, Action::GuardianWrite).await);
    let (_, _, read) = ctx!(c.case_permit(&st, &id, Action::CaseRead).await);
    let n = ctx!(guardian_no(&n).map_err(|e| c.fail(&st, e, "/")));
    let held = match guardians::list(&st.ctx.vault, &read, &case).await {
        Ok(all) => all
            .into_iter()
            .find(|g| g.guardian_no == n)
            .and_then(|g| g.fictitious)
            .filter(|f| f.number.is_some()),
        Err(e) => return c.fail(&st, e, &format!("/cases/{case}")),
    };
    let Some(held) = held else {
        return c.not_found(&st);
    };
    let view = ctx!(case_view(&c, &st, &id).await);
    let held = ChangeForm {
        first_name: held.first_name,
        last_name: held.last_name,
        birth_date: held.birth_date,
        ..ChangeForm::default()
    };
    let page = change_page(&c, &st, view, Some(n), held, FormErrors::default());
    html(StatusCode::OK, &page)
}

pub async fn guardian_change_write(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Path((id, n)): Path<(String, String)>,
    parts: Parts,
    Form(form): Form<ChangeForm>,
) -> Response {
    let c = ctx!(posted(&st, &web, &parts, &form.csrf).await);
    let (case, _, permit) = ctx!(c.case_permit(&st, &id, Action::GuardianWrite).await);
    let n = ctx!(guardian_no(&n).map_err(|e| c.fail(&st, e, &format!("/cases/{case}"))));
    let asked = fictitious_changes::request_guardian(
        &st.ctx.vault,
        &st.ctx.rules,
        &permit,
        &case,
        n,
        change_input(&form),
    )
    .await;
    change_answer(&c, &st, &case, Some(n), form, asked).await
}
