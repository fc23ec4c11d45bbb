//! Leaving the municipality in the web UI: the transfer package (`docs/LIFECYCLE.md`).
//!
//! The sending school makes the package (`GET/POST /cases/{id}/transfer`): after the
//! second factor (the package carries the real identity, read through the audited read),
//! with the written consent and the receiving Fiktiv's public key. The page then shows
//! the package to copy or save; nothing in it is readable without the receiver's key.
//! The receiving school imports it (`GET/POST /transfer-imports`) into a unit of its
//! own. The same domain functions as `POST /api/v1/cases/{id}/transfer-package` and
//! `POST /api/v1/units/{unit}/transfer-imports`.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::{Extension, Form};
use fiktiv_policies::{Action, Resource};
use serde::Deserialize;

use super::pages::html;
use super::pages_cases::ctx;
use super::pages_plan::case_view;
use super::ui::{posted, see_other, signed_in, Ctx, FormErrors};
use super::views::Base;
use super::Web;
use fiktiv_app::AppState;
use fiktiv_routine::cases::CaseView;
use fiktiv_routine::transfer::{self, Consent, ExportInput, Package};
use fiktiv_staff::session::require_fresh_second_factor;

#[derive(Template)]
#[template(path = "transfer.html")]
pub struct TransferPage {
    pub base: Base,
    pub case: CaseView,
    pub form: TransferForm,
    pub errors: FormErrors,
}

#[derive(Template)]
#[template(path = "transfer_done.html")]
pub struct TransferDonePage {
    pub base: Base,
    pub case_id: String,
    /// The package as JSON (sealed: nothing of the pupil is readable in it).
    pub package: String,
    pub package_id: String,
}

/// The form as typed (no real identity in it: the consent names who gave it).
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(default)]
pub struct TransferForm {
    csrf: String,
    pub recipient_key: String,
    pub consent_given_by: String,
    pub consent_given_on: String,
    pub consent_plan: Option<String>,
    pub consent_disciplinary: Option<String>,
}

const FIELDS: &[&str] = &[
    "recipient_key",
    "consent_given_by",
    "consent_given_on",
    "consent_plan",
];

fn step_up(c: &Ctx, web: &Web, st: &AppState, case: &str) -> Option<Response> {
    require_fresh_second_factor(&c.session, web.timeouts, c.now(st))
        .is_err()
        .then(|| see_other(&format!("/step-up?next=/cases/{case}/transfer")))
}

pub async fn form(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let c = ctx!(signed_in(&st, &web, &headers).await);
    let (case, _, _) = ctx!(c.case_permit(&st, &id, Action::CaseTransferOut).await);
    if let Some(r) = step_up(&c, &web, &st, &case.to_string()) {
        return r;
    }
    let view = ctx!(case_view(&c, &st, &id).await);
    let page = TransferPage {
        base: c.base(&st, "transfer.title", &format!("/cases/{case}/transfer")),
        case: view,
        form: TransferForm::default(),
        errors: FormErrors::default(),
    };
    html(StatusCode::OK, &page)
}

pub async fn write(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Path(id): Path<String>,
    parts: Parts,
    Form(form): Form<TransferForm>,
) -> Response {
    let c = ctx!(posted(&st, &web, &parts, &form.csrf).await);
    let (case, _, permit) = ctx!(c.case_permit(&st, &id, Action::CaseTransferOut).await);
    if let Some(r) = step_up(&c, &web, &st, &case.to_string()) {
        return r;
    }
    let input = ExportInput {
        recipient_key: form.recipient_key.clone(),
        consent: Consent {
            given_by: form.consent_given_by.clone(),
            given_on: form.consent_given_on.clone(),
            plan: form.consent_plan.is_some(),
            disciplinary: form.consent_disciplinary.is_some(),
        },
    };
    match transfer::export(
        &st.ctx.vault,
        &st.ctx.rules,
        &st.ctx.config.transfer,
        &permit,
        &case,
        input,
    )
    .await
    {
        Ok(package) => {
            let json = match serde_json::to_string_pretty(&package) {
                Ok(j) => j,
                Err(e) => {
                    return c.fail(
                        &st,
                        fiktiv_routine::DomainError::Internal(e.to_string()),
                        "/",
                    )
                }
            };
            let page = TransferDonePage {
                base: c.base(&st, "transfer.done-title", &format!("/cases/{case}")),
                case_id: case.to_string(),
                package: json,
                package_id: package.package_id,
            };
            html(StatusCode::OK, &page)
        }
        Err(e) => match FormErrors::from_domain(e, FIELDS, &[]) {
            Ok((status, errors)) => {
                let view = ctx!(case_view(&c, &st, &id).await);
                let page = TransferPage {
                    base: c.base(&st, "transfer.title", &format!("/cases/{case}/transfer")),
                    case: view,
                    form,
                    errors,
                };
                html(status, &page)
            }
            Err(e) => c.fail(&st, e, &format!("/cases/{case}")),
        },
    }
}

#[derive(Template)]
#[template(path = "transfer_import.html")]
pub struct ImportPage {
    pub base: Base,
    pub units: Vec<String>,
    pub unit: String,
    pub package: String,
    pub errors: FormErrors,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct ImportForm {
    csrf: String,
    unit: String,
    package: String,
}

fn import_units(c: &Ctx, st: &AppState) -> Vec<String> {
    c.principal
        .units
        .iter()
        .filter(|u| c.may(st, Action::CaseTransferIn, &Resource::Unit((*u).clone())))
        .cloned()
        .collect()
}

pub async fn import_form(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    headers: HeaderMap,
) -> Response {
    let c = ctx!(signed_in(&st, &web, &headers).await);
    let units = import_units(&c, &st);
    if units.is_empty() {
        return c.not_found(&st);
    }
    let page = ImportPage {
        base: c.base(&st, "transfer-import.title", "/transfer-imports"),
        unit: units.first().cloned().unwrap_or_default(),
        units,
        package: String::new(),
        errors: FormErrors::default(),
    };
    html(StatusCode::OK, &page)
}

pub async fn import_write(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    parts: Parts,
    Form(form): Form<ImportForm>,
) -> Response {
    let c = ctx!(posted(&st, &web, &parts, &form.csrf).await);
    let permit = ctx!(c.unit_permit(&st, &form.unit, Action::CaseTransferIn));
    let again = |errors: FormErrors, status: StatusCode, package: String| {
        let units = import_units(&c, &st);
        let page = ImportPage {
            base: c.base(&st, "transfer-import.title", "/transfer-imports"),
            unit: form.unit.clone(),
            units,
            package,
            errors,
        };
        html(status, &page)
    };
    let Ok(package) = serde_json::from_str::<Package>(form.package.trim()) else {
        return again(
            FormErrors::general_on("package", "problem.transfer-package-invalid"),
            StatusCode::UNPROCESSABLE_ENTITY,
            form.package.clone(),
        );
    };
    match transfer::import(
        &st.ctx.vault,
        &st.ctx.config.transfer,
        &permit,
        &form.unit,
        package,
    )
    .await
    {
        Ok(imported) => see_other(&format!("/cases/{}?done=imported", imported.case_id)),
        Err(e) => match FormErrors::from_domain(e, &["package"], &[]) {
            Ok((status, errors)) => again(errors, status, form.package.clone()),
            Err(e) => c.fail(&st, e, "/transfer-imports"),
        },
    }
}
