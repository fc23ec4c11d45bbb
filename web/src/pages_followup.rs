//! The school's order and follow-up: sending the order (fictitious data only),
//! recording who on the staff was told (and the list), and the yearly review: the
//! reviews due and overdue, a case's review history and recording a review.
//!
//! Routes: `GET|POST /cases/{id}/order`, `GET|POST /cases/{id}/staff-told`,
//! `GET|POST /cases/{id}/reviews`, `GET /reviews`.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::{Extension, Form};
use fiktiv_policies::{Action, Country, Resource};
use serde::Deserialize;

use super::pages::html;
use super::pages_cases::ctx;
use super::ui::{choices, lines, posted, see_other, signed_in, ticked, Choice, Ctx, FormErrors};
use super::views::Base;
use super::Web;
use fiktiv_app::AppState;
use fiktiv_routine::cases::{self, CaseView};
use fiktiv_routine::orders::{self, OrderInput};
use fiktiv_routine::plans;
use fiktiv_routine::reviews::{self, ReviewHistory, ReviewInput, ReviewItem, ReviewOutcome};
use fiktiv_routine::staff::{self, StaffToldInput, StaffToldRecorded};
use fiktiv_routine::{fmt_date, local_date};

// ---------------------------------------------------------------------------
// The order
// ---------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "order_form.html")]
pub struct OrderFormPage {
    pub base: Base,
    pub case: CaseView,
    pub groups: String,
    pub platforms: String,
    pub errors: FormErrors,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct OrderForm {
    csrf: String,
    groups: String,
    platforms: String,
}

async fn order_page(
    c: &Ctx,
    st: &AppState,
    id: &str,
    form: OrderForm,
    errors: FormErrors,
    status: StatusCode,
) -> Response {
    let (case, _, permit) = ctx!(c.case_permit(st, id, Action::CaseRead).await);
    let view = match cases::read(&st.ctx.vault, &permit, &case).await {
        Ok(v) => v,
        Err(e) => return c.fail(st, e, &format!("/cases/{case}")),
    };
    let page = OrderFormPage {
        base: c.base(st, "order.title", &format!("/cases/{case}/order")),
        case: view,
        groups: form.groups,
        platforms: form.platforms,
        errors,
    };
    html(status, &page)
}

pub async fn order_form(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let c = ctx!(signed_in(&st, &web, &headers).await);
    let (case, _, _) = ctx!(c.case_permit(&st, &id, Action::OrderSend).await);
    // The platforms come from the plan (read as the plan page reads it, audited), not
    // typed again; the school can still change them here.
    let mut form = OrderForm::default();
    if let Ok((_, _, plan_permit)) = c.case_permit(&st, &id, Action::PlanRead).await {
        if let Ok(plan) = plans::read(&st.ctx.vault, &plan_permit, &case, None).await {
            form.platforms = plan.plan.platforms.join("\n");
        }
    }
    order_page(&c, &st, &id, form, FormErrors::default(), StatusCode::OK).await
}

pub async fn order_send(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Path(id): Path<String>,
    parts: Parts,
    Form(form): Form<OrderForm>,
) -> Response {
    let c = ctx!(posted(&st, &web, &parts, &form.csrf).await);
    let (case, _, permit) = ctx!(c.case_permit(&st, &id, Action::OrderSend).await);
    let input = OrderInput {
        groups: lines(&form.groups),
        platforms: lines(&form.platforms),
    };
    match orders::send(&st.ctx.vault, &permit, &case, input).await {
        Ok(_) => see_other(&format!("/cases/{case}?done=order")),
        Err(e) => match FormErrors::from_domain(e, &["groups", "platforms"], &[]) {
            Ok((status, errors)) => order_page(&c, &st, &id, form, errors, status).await,
            Err(e) => c.fail(&st, e, &format!("/cases/{case}")),
        },
    }
}

// ---------------------------------------------------------------------------
// Staff told
// ---------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "staff_told.html")]
pub struct StaffToldPage {
    pub base: Base,
    pub case_id: String,
    pub records: Vec<StaffToldRecorded>,
    pub can_record: bool,
    pub staff: String,
    pub told_on: String,
    pub errors: FormErrors,
    pub saved: bool,
    /// Who the plan names and no record does yet (`None`: no plan to compare with).
    pub to_tell: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct SavedQuery {
    saved: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct StaffForm {
    csrf: String,
    staff: String,
    told_on: String,
}

/// Today in Sweden and Norway (they share the date), `YYYY-MM-DD`.
fn today(st: &AppState) -> String {
    fmt_date(local_date(st.ctx.vault.now(), Country::Se))
}

async fn staff_page(
    c: &Ctx,
    st: &AppState,
    id: &str,
    form: StaffForm,
    errors: FormErrors,
    status: StatusCode,
    saved: bool,
) -> Response {
    let (case, unit, permit) = ctx!(c.case_permit(st, id, Action::StaffToldRead).await);
    let records = match staff::list(&st.ctx.vault, &permit, &case).await {
        Ok(r) => r,
        Err(e) => return c.fail(st, e, &format!("/cases/{case}")),
    };
    let told_on = if form.told_on.is_empty() {
        today(st)
    } else {
        form.told_on
    };
    // Compared with the plan's list of staff to tell (the plan read as the plan page
    // reads it, audited), for those who may read the plan and when there is one.
    let to_tell = match c.case_permit(st, id, Action::PlanRead).await {
        Ok((_, _, plan_permit)) => plans::read(&st.ctx.vault, &plan_permit, &case, None)
            .await
            .ok()
            .map(|p| staff::still_to_tell(&p.plan.staff_to_inform, &records)),
        Err(_) => None,
    };
    let page = StaffToldPage {
        to_tell,
        base: c.base(st, "staff.title", &format!("/cases/{case}/staff-told")),
        case_id: case.to_string(),
        records,
        can_record: c.may(st, Action::StaffToldWrite, &Resource::Case { unit }),
        staff: form.staff,
        told_on,
        errors,
        saved,
    };
    html(status, &page)
}

pub async fn staff_told(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Path(id): Path<String>,
    Query(q): Query<SavedQuery>,
    headers: HeaderMap,
) -> Response {
    let c = ctx!(signed_in(&st, &web, &headers).await);
    staff_page(
        &c,
        &st,
        &id,
        StaffForm::default(),
        FormErrors::default(),
        StatusCode::OK,
        q.saved.is_some(),
    )
    .await
}

pub async fn staff_record(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Path(id): Path<String>,
    parts: Parts,
    Form(form): Form<StaffForm>,
) -> Response {
    let c = ctx!(posted(&st, &web, &parts, &form.csrf).await);
    let (case, _, permit) = ctx!(c.case_permit(&st, &id, Action::StaffToldWrite).await);
    let input = StaffToldInput {
        staff: lines(&form.staff),
        told_on: form.told_on.trim().to_owned(),
    };
    match staff::record(&st.ctx.vault, &permit, &case, input).await {
        Ok(_) => see_other(&format!("/cases/{case}/staff-told?saved=1")),
        Err(e) => match FormErrors::from_domain(e, &["staff", "told_on"], &[]) {
            Ok((status, errors)) => staff_page(&c, &st, &id, form, errors, status, false).await,
            Err(e) => c.fail(&st, e, &format!("/cases/{case}")),
        },
    }
}

// ---------------------------------------------------------------------------
// A case's reviews
// ---------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "case_reviews.html")]
pub struct CaseReviewsPage {
    pub base: Base,
    pub history: ReviewHistory,
    pub can_record: bool,
    pub outcome: String,
    pub confirm_end: bool,
    pub errors: FormErrors,
    pub saved: bool,
}

impl CaseReviewsPage {
    pub fn outcomes(&self) -> Vec<Choice> {
        choices(
            "outcome",
            &[
                (
                    "continue",
                    "review.outcome-continue",
                    "review.outcome-continue-hint",
                ),
                (
                    "plan-changed",
                    "review.outcome-plan-changed",
                    "review.outcome-plan-changed-hint",
                ),
                (
                    "end-protection",
                    "review.outcome-end-protection",
                    "review.outcome-end-protection-hint",
                ),
            ],
        )
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct ReviewForm {
    csrf: String,
    outcome: String,
    confirm_end: String,
}

async fn reviews_page(
    c: &Ctx,
    st: &AppState,
    id: &str,
    form: ReviewForm,
    errors: FormErrors,
    status: StatusCode,
    saved: bool,
) -> Response {
    let (case, unit, permit) = ctx!(c.case_permit(st, id, Action::ReviewRead).await);
    let history = match reviews::history(&st.ctx.vault, &st.ctx.rules, &permit, &case).await {
        Ok(h) => h,
        Err(e) => return c.fail(st, e, &format!("/cases/{case}")),
    };
    let page = CaseReviewsPage {
        base: c.base(st, "case-reviews.title", &format!("/cases/{case}/reviews")),
        can_record: history.next_due.is_some()
            && c.may(st, Action::ReviewRecord, &Resource::Case { unit }),
        history,
        outcome: form.outcome,
        confirm_end: ticked(&form.confirm_end),
        errors,
        saved,
    };
    html(status, &page)
}

pub async fn case_reviews(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Path(id): Path<String>,
    Query(q): Query<SavedQuery>,
    headers: HeaderMap,
) -> Response {
    let c = ctx!(signed_in(&st, &web, &headers).await);
    reviews_page(
        &c,
        &st,
        &id,
        ReviewForm::default(),
        FormErrors::default(),
        StatusCode::OK,
        q.saved.is_some(),
    )
    .await
}

pub async fn review_record(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Path(id): Path<String>,
    parts: Parts,
    Form(form): Form<ReviewForm>,
) -> Response {
    let c = ctx!(posted(&st, &web, &parts, &form.csrf).await);
    let (case, _, permit) = ctx!(c.case_permit(&st, &id, Action::ReviewRecord).await);
    let outcome = match form.outcome.as_str() {
        "continue" => Some(ReviewOutcome::Continue),
        "plan-changed" => Some(ReviewOutcome::PlanChanged),
        "end-protection" => Some(ReviewOutcome::EndProtection),
        _ => None,
    };
    let errors = match outcome {
        None => FormErrors::general_on("outcome-continue", "problem.outcome-required"),
        // Ending the protection ends the case: it must be confirmed.
        Some(ReviewOutcome::EndProtection) if !ticked(&form.confirm_end) => {
            FormErrors::general_on("confirm_end", "problem.confirm-end-required")
        }
        Some(outcome) => {
            let input = ReviewInput { outcome };
            match reviews::record(&st.ctx.vault, &st.ctx.rules, &permit, &case, input).await {
                Ok(_) => return see_other(&format!("/cases/{case}/reviews?saved=1")),
                Err(e) => match FormErrors::from_domain(e, &[], &[]) {
                    Ok((_, errors)) => errors,
                    Err(e) => return c.fail(&st, e, &format!("/cases/{case}")),
                },
            }
        }
    };
    reviews_page(
        &c,
        &st,
        &id,
        form,
        errors,
        StatusCode::UNPROCESSABLE_ENTITY,
        false,
    )
    .await
}

// ---------------------------------------------------------------------------
// Reviews due and overdue
// ---------------------------------------------------------------------------

/// A line of the list, and whether this person may open the case.
pub struct ReviewRow {
    pub item: ReviewItem,
    pub link: bool,
}

impl ReviewRow {
    /// The day of the last reminder for this due date (`reminded_at` is an RFC 3339
    /// time); `None` when there was none.
    pub fn reminded_on(&self) -> Option<&str> {
        reminded_on(self.item.reminded_at.as_deref())
    }
}

fn reminded_on(at: Option<&str>) -> Option<&str> {
    at.and_then(|t| t.split('T').next())
        .map(str::trim)
        .filter(|d| !d.is_empty())
}

#[derive(Template)]
#[template(path = "reviews.html")]
pub struct ReviewsPage {
    pub base: Base,
    pub rows: Vec<ReviewRow>,
    pub all: bool,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct AllQuery {
    all: Option<String>,
}

pub async fn reviews_list(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Query(q): Query<AllQuery>,
    headers: HeaderMap,
) -> Response {
    let c = ctx!(signed_in(&st, &web, &headers).await);
    let all = q.all.is_some();
    let (vault, rules) = (&st.ctx.vault, &st.ctx.rules);
    let mut items = Vec::new();
    if let Ok(permit) = c.municipality_permit(&st, Action::ReviewsListAll) {
        match reviews::list(vault, rules, &permit, None, all).await {
            Ok(r) => items = r,
            Err(e) => return c.fail(&st, e, "/"),
        }
    } else {
        let mut allowed = false;
        for unit in &c.principal.units {
            let Ok(permit) = c.unit_permit(&st, unit, Action::ReviewsList) else {
                continue;
            };
            allowed = true;
            match reviews::list(vault, rules, &permit, Some(unit), all).await {
                Ok(r) => items.extend(r),
                Err(e) => return c.fail(&st, e, "/"),
            }
        }
        if !allowed {
            return c.not_allowed(&st);
        }
        items.sort_by_key(|i| i.days_until_due);
    }
    let rows = items
        .into_iter()
        .map(|item| ReviewRow {
            link: c.may(
                &st,
                Action::ReviewRead,
                &Resource::Case {
                    unit: item.unit.clone(),
                },
            ),
            item,
        })
        .collect();
    let page = ReviewsPage {
        base: c.base(&st, "reviews.title", "/reviews"),
        rows,
        all,
    };
    html(StatusCode::OK, &page)
}

#[cfg(test)]
mod tests {
    use super::reminded_on;

    #[test]
    fn a_reminder_shows_its_day() {
        assert_eq!(
            reminded_on(Some("2025-08-01T06:00:00.123456Z")),
            Some("2025-08-01")
        );
        assert_eq!(reminded_on(Some("2025-08-01")), Some("2025-08-01"));
        assert_eq!(reminded_on(Some("")), None);
        assert_eq!(reminded_on(None), None);
    }
}
