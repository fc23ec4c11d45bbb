//! Ending a case as its own step (`GET/POST /cases/{id}/end`): the reason, the day the
//! pupil left, and what happens next (the accounts, the retention schedule), before
//! anything is done. The same domain function as `POST /api/v1/cases/{id}/end`.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::{Extension, Form};
use fiktiv_policies::{Action, Country};
use serde::Deserialize;

use super::pages::html;
use super::pages_cases::ctx;
use super::pages_plan::case_view;
use super::ui::{choices, posted, see_other, signed_in, Choice, Ctx, FormErrors};
use super::views::Base;
use super::Web;
use fiktiv_app::AppState;
use fiktiv_routine::cases::CaseView;
use fiktiv_routine::end::{self, EndInput, EndReason, RetentionSchedule};
use fiktiv_routine::local_date;

#[derive(Template)]
#[template(path = "end.html")]
pub struct EndPage {
    pub base: Base,
    pub case: CaseView,
    pub reason: String,
    pub leaving_date: String,
    /// How long each class is kept after an end today.
    pub schedule: RetentionSchedule,
    /// Days from the disabling of the accounts to their deletion.
    pub grace_days: u32,
    pub errors: FormErrors,
}

impl EndPage {
    /// What happens to the accounts, with the grace period in force.
    pub fn accounts_text(&self) -> String {
        super::labels::fill(
            self.base.t("end.accounts"),
            &[("days", &self.grace_days.to_string())],
        )
    }

    /// How long one class is kept after the end (or that it is kept).
    pub fn kept_text(&self, key: &str, days: &Option<i64>) -> String {
        let text = self.base.t(key);
        match days {
            Some(d) => super::labels::fill(
                &format!("{text} {}", self.base.t("end.kept-days")),
                &[("days", &d.to_string())],
            ),
            None => format!("{text} {}", self.base.t("end.kept-permanently")),
        }
    }

    pub fn reasons(&self) -> Vec<Choice> {
        choices(
            "reason",
            &[
                (
                    "left-municipality",
                    "end.left-municipality",
                    "end.left-municipality-hint",
                ),
                ("left-school", "end.left-school", "end.left-school-hint"),
                (
                    "protection-lifted",
                    "end.protection-lifted",
                    "end.protection-lifted-hint",
                ),
            ],
        )
    }
}

fn page(
    st: &AppState,
    c: &Ctx,
    case: CaseView,
    reason: String,
    leaving_date: String,
    errors: FormErrors,
) -> EndPage {
    let country: Country = case.country.into();
    let today = local_date(st.ctx.vault.now(), country);
    EndPage {
        base: c.base(st, "end.title", &format!("/cases/{}/end", case.case_id)),
        schedule: end::retention_schedule(&st.ctx.rules, today),
        grace_days: st.ctx.delivery.runtime.settings().grace_days,
        case,
        reason,
        leaving_date,
        errors,
    }
}

pub async fn end_form(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let c = ctx!(signed_in(&st, &web, &headers).await);
    let _ = ctx!(c.case_permit(&st, &id, Action::CaseEnd).await);
    let case = ctx!(case_view(&c, &st, &id).await);
    let p = page(
        &st,
        &c,
        case,
        String::new(),
        String::new(),
        FormErrors::default(),
    );
    html(StatusCode::OK, &p)
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct EndForm {
    csrf: String,
    reason: String,
    leaving_date: String,
}

pub async fn end_write(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Path(id): Path<String>,
    parts: Parts,
    Form(form): Form<EndForm>,
) -> Response {
    let c = ctx!(posted(&st, &web, &parts, &form.csrf).await);
    let (case, _, permit) = ctx!(c.case_permit(&st, &id, Action::CaseEnd).await);
    // Only the three reasons the page offers (the API also takes the older one).
    let reason = EndReason::parse(&form.reason).filter(|r| *r != EndReason::PupilLeft);
    let result = match reason {
        Some(reason) => {
            let input = EndInput {
                reason,
                leaving_date: Some(form.leaving_date.clone()),
            };
            match end::end(&st.ctx.vault, &st.ctx.rules, &permit, &case, input).await {
                Ok(_) => return see_other(&format!("/cases/{case}?done=ended")),
                Err(e) => FormErrors::from_domain(e, &["leaving_date"], &[]),
            }
        }
        None => {
            let mut errors = FormErrors::default();
            errors.add("reason-left-municipality", "problem.end-reason-required");
            Ok((StatusCode::UNPROCESSABLE_ENTITY, errors))
        }
    };
    match result {
        Ok((status, errors)) => {
            let view = ctx!(case_view(&c, &st, &id).await);
            let p = page(&st, &c, view, form.reason, form.leaving_date, errors);
            html(status, &p)
        }
        Err(e) => c.fail(&st, e, &format!("/cases/{case}")),
    }
}

// ---------------------------------------------------------------------------
// The right-of-access report
// ---------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "access_report.html")]
pub struct AccessReportPage {
    pub base: Base,
    pub report: fiktiv_routine::access_report::AccessReport,
}

/// The right-of-access report, styled for print (`GET /cases/{id}/access-report`). It
/// shows the real identity: the second factor is asked for again first, as for a
/// reveal, and producing it is audited.
pub async fn access_report(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let c = ctx!(signed_in(&st, &web, &headers).await);
    let (case, _, permit) = ctx!(c.case_permit(&st, &id, Action::CaseAccessReport).await);
    if fiktiv_staff::session::require_fresh_second_factor(&c.session, web.timeouts, c.now(&st))
        .is_err()
    {
        return see_other(&format!("/step-up?next=/cases/{case}/access-report"));
    }
    match fiktiv_routine::access_report::produce(&st.ctx.vault, &permit, &case).await {
        Ok(report) => {
            let page = AccessReportPage {
                // `here` is the case: switching language must not produce it again.
                base: c.base(&st, "access.title", &format!("/cases/{case}")),
                report,
            };
            html(StatusCode::OK, &page)
        }
        Err(e) => c.fail(&st, e, &format!("/cases/{case}")),
    }
}
