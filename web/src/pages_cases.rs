//! The school's cases: the list (own units only; the whole municipality for whom the
//! policies allow it), opening a case with the real identity, the case page (the real
//! identity only on request, through the audited read), and the account check and leak
//! check of the case with their progress.
//!
//! Routes: `GET /cases`, `GET /cases/new`, `POST /cases`, `GET /cases/{id}`,
//! `POST /cases/{id}/account-check`, `GET /cases/{id}/account-check/{run}`,
//! `POST /cases/{id}/leak-scan`, `GET /cases/{id}/leak-scan/{run}`.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::{Extension, Form};
use fiktiv_policies::{Action, Resource};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::pages::html;
use super::pages_runs::{run_page, RunKind};
use super::ui::{choices, posted, see_other, signed_in, Choice, CsrfForm, FormErrors};
use super::views::Base;
use super::Web;
use fiktiv_app::AppState;
use fiktiv_delivery::checks;
use fiktiv_routine::cases::{
    self, CaseState, CaseSummary, CaseView, CountryCode, IdentityView, OpenCase,
};
use fiktiv_routine::guardians::{self, GuardianSummary};
use fiktiv_routine::labels;

macro_rules! ctx {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(r) => return r,
        }
    };
}
pub(super) use ctx;

// ---------------------------------------------------------------------------
// The list
// ---------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "cases.html")]
pub struct CasesPage {
    pub base: Base,
    pub rows: Vec<CaseSummary>,
    /// Units where this person may open a case.
    pub open_units: Vec<String>,
}

pub async fn list(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    headers: HeaderMap,
) -> Response {
    let c = ctx!(signed_in(&st, &web, &headers).await);
    let vault = &st.ctx.vault;
    let mut rows = Vec::new();
    let mut allowed = false;
    if let Ok(permit) = c.municipality_permit(&st, Action::CaseList) {
        allowed = true;
        match cases::list(vault, &permit, None).await {
            Ok(r) => rows = r,
            Err(e) => return c.fail(&st, e, "/"),
        }
    } else {
        for unit in &c.principal.units {
            let Ok(permit) = c.unit_permit(&st, unit, Action::CaseList) else {
                continue;
            };
            allowed = true;
            // The school's own labels, where this person may read them.
            let labels = st
                .ctx
                .authz
                .authorize(
                    &c.principal,
                    Action::CaseLabel,
                    &Resource::Case { unit: unit.clone() },
                )
                .ok();
            match cases::list_labelled(vault, &permit, unit, labels.as_ref()).await {
                Ok(r) => rows.extend(r),
                Err(e) => return c.fail(&st, e, "/"),
            }
        }
    }
    if !allowed {
        return c.not_allowed(&st);
    }
    let open_units = c
        .principal
        .units
        .iter()
        .filter(|u| c.may(&st, Action::CaseOpen, &Resource::Unit((*u).clone())))
        .cloned()
        .collect();
    let page = CasesPage {
        base: c.base(&st, "cases.title", "/cases"),
        rows,
        open_units,
    };
    html(StatusCode::OK, &page)
}

// ---------------------------------------------------------------------------
// Opening a case
// ---------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "case_new.html")]
pub struct CaseNewPage {
    pub base: Base,
    pub units: Vec<String>,
    pub unit: String,
    pub country: String,
    pub errors: FormErrors,
}

impl CaseNewPage {
    pub fn countries(&self) -> Vec<Choice> {
        choices(
            "country",
            &[("se", "country.se", ""), ("no", "country.no", "")],
        )
    }
}

fn open_units(c: &super::ui::Ctx, st: &AppState) -> Vec<String> {
    c.principal
        .units
        .iter()
        .filter(|u| c.may(st, Action::CaseOpen, &Resource::Unit((*u).clone())))
        .cloned()
        .collect()
}

pub async fn new_form(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    headers: HeaderMap,
) -> Response {
    let c = ctx!(signed_in(&st, &web, &headers).await);
    let units = open_units(&c, &st);
    if units.is_empty() {
        return c.not_allowed(&st);
    }
    let page = CaseNewPage {
        base: c.base(&st, "case-new.title", "/cases/new"),
        unit: units.first().cloned().unwrap_or_default(),
        units,
        country: "se".into(),
        errors: FormErrors::default(),
    };
    html(StatusCode::OK, &page)
}

/// The real identity as typed. Never logged, never shown again.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct OpenForm {
    csrf: String,
    unit: String,
    country: String,
    personal_number: Zeroizing<String>,
    first_name: Zeroizing<String>,
    last_name: Zeroizing<String>,
    birth_date: Zeroizing<String>,
}

impl std::fmt::Debug for OpenForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OpenForm([redacted])")
    }
}

const OPEN_FIELDS: &[&str] = &[
    "unit",
    "country-se",
    "personal_number",
    "first_name",
    "last_name",
    "birth_date",
];

pub async fn open(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    parts: Parts,
    Form(form): Form<OpenForm>,
) -> Response {
    let c = ctx!(posted(&st, &web, &parts, &form.csrf).await);
    let units = open_units(&c, &st);
    let unit = form.unit.trim().to_owned();
    // The form is shown again empty: a real identity is never echoed.
    let again = |errors: FormErrors, status: StatusCode, country: &str| {
        let page = CaseNewPage {
            base: c.base(&st, "case-new.title", "/cases/new"),
            units: units.clone(),
            unit: unit.clone(),
            country: country.to_owned(),
            errors,
        };
        html(status, &page)
    };
    let country = match form.country.as_str() {
        "se" => CountryCode::Se,
        "no" => CountryCode::No,
        _ => {
            return again(
                FormErrors::general_on("country-se", "problem.country-required"),
                StatusCode::UNPROCESSABLE_ENTITY,
                "se",
            )
        }
    };
    let country_code = form.country.clone();
    let permit = ctx!(c.unit_permit(&st, &unit, Action::CaseOpen));
    let input = OpenCase {
        country,
        personal_number: form.personal_number,
        first_name: form.first_name,
        last_name: form.last_name,
        birth_date: form.birth_date,
    };
    match cases::open(&st.ctx.vault, &permit, &unit, input).await {
        Ok(opened) => see_other(&format!("/cases/{}", opened.case_id)),
        Err(e) => match FormErrors::from_domain(e, OPEN_FIELDS, &[]) {
            Ok((status, errors)) => again(errors, status, &country_code),
            Err(e) => c.fail(&st, e, "/cases"),
        },
    }
}

// ---------------------------------------------------------------------------
// The case page
// ---------------------------------------------------------------------------

/// What this person may do on the case (links and buttons only; every page
/// authorizes again).
#[derive(Debug, Default)]
pub struct CaseLinks {
    pub identity: bool,
    pub plan: bool,
    pub decision: bool,
    pub fictitious: bool,
    pub guardians: bool,
    pub order: bool,
    pub staff: bool,
    pub reviews: bool,
    pub account_check: bool,
    pub leak_scan: bool,
    pub label: bool,
    pub end: bool,
    pub access_report: bool,
    pub correct_identity: bool,
    pub transfer_out: bool,
    pub close_old_identity: bool,
    /// The fictitious identity of a registered pupil can be changed (a new order).
    pub change_fictitious: bool,
}

#[derive(Template)]
#[template(path = "case.html")]
pub struct CasePage {
    pub base: Base,
    pub case: CaseView,
    pub identity: Option<IdentityView>,
    pub guardians: Vec<GuardianSummary>,
    pub can: CaseLinks,
    pub notice: Option<&'static str>,
    /// The school's own label (for those who may read it).
    pub label: Option<String>,
    /// The case's open alerts (a leak found, a write stopped, a job that gave up).
    pub alerts: Vec<checks::AlertView>,
}

impl CasePage {
    pub fn is_open(&self) -> bool {
        self.case.state == CaseState::Open
    }

    pub fn is_ended(&self) -> bool {
        self.case.state == CaseState::Ended
    }

    pub fn is_registered(&self) -> bool {
        self.case.state == CaseState::Registered
    }

    pub fn decided_fictitious(&self) -> bool {
        self.case.login_decision.as_deref() == Some("fictitious-user")
    }

    pub fn guardian_numbers(&self) -> Vec<i64> {
        (1..=guardians::MAX_GUARDIANS).collect()
    }

    pub fn guardian(&self, n: &i64) -> Option<&GuardianSummary> {
        self.guardians.iter().find(|g| g.guardian_no == *n)
    }

    /// Whether guardian `n` has a fictitious number (and so accounts).
    pub fn has_number(&self, n: &i64) -> bool {
        self.guardian(n)
            .and_then(|g| g.fictitious.as_ref())
            .is_some_and(|f| f.number.is_some())
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct CaseQuery {
    show: String,
    done: String,
}

fn notice_key(done: &str) -> Option<&'static str> {
    Some(match done {
        "decision" => "case.notice-decision",
        "fictitious" => "case.notice-fictitious",
        "guardian" => "case.notice-guardian",
        "order" => "case.notice-order",
        "label" => "case.notice-label",
        "label-invalid" => "case.notice-label-invalid",
        "ended" => "case.notice-ended",
        "corrected" => "case.notice-corrected",
        "change-asked" => "case.notice-change-asked",
        "guardian-removed" => "case.notice-guardian-removed",
        "imported" => "case.notice-imported",
        "old-closed" => "case.notice-old-closed",
        _ => return None,
    })
}

pub async fn page(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Path(id): Path<String>,
    Query(q): Query<CaseQuery>,
    headers: HeaderMap,
) -> Response {
    let c = ctx!(signed_in(&st, &web, &headers).await);
    let (case, unit, permit) = ctx!(c.case_permit(&st, &id, Action::CaseRead).await);
    let vault = &st.ctx.vault;
    let view = match cases::read(vault, &permit, &case).await {
        Ok(v) => v,
        Err(e) => return c.fail(&st, e, "/cases"),
    };
    let guardians = match guardians::list(vault, &permit, &case).await {
        Ok(g) => g,
        Err(e) => return c.fail(&st, e, "/cases"),
    };
    let alerts = match checks::case_alerts(&st.ctx.delivery, &permit, &case).await {
        Ok(a) => a,
        Err(e) => return c.fail(&st, e, "/cases"),
    };
    let allowed = c.allowed(&st, &Resource::Case { unit });
    let can = |a: Action| allowed.contains(&a);
    let links = CaseLinks {
        identity: can(Action::CaseReadIdentity),
        plan: can(Action::PlanRead),
        decision: can(Action::LoginDecisionWrite),
        fictitious: can(Action::FictitiousIdentityWrite),
        guardians: can(Action::GuardianWrite),
        order: can(Action::OrderSend),
        staff: can(Action::StaffToldRead),
        reviews: can(Action::ReviewRead),
        account_check: can(Action::AccountCheck),
        leak_scan: can(Action::LeakScan),
        label: can(Action::CaseLabel),
        end: can(Action::CaseEnd),
        access_report: can(Action::CaseAccessReport),
        correct_identity: can(Action::CaseCorrectIdentity),
        transfer_out: can(Action::CaseTransferOut),
        close_old_identity: can(Action::CaseCloseOldIdentity),
        change_fictitious: can(Action::FictitiousIdentityWrite)
            && view.state == cases::CaseState::Registered,
    };
    let label = if links.label {
        let (_, _, p) = ctx!(c.case_permit(&st, &id, Action::CaseLabel).await);
        match labels::of_case(vault, &p, &case).await {
            Ok(l) => l,
            Err(e) => return c.fail(&st, e, "/cases"),
        }
    } else {
        None
    };
    // The real identity only when asked for, and only through the audited read.
    let identity = if q.show == "identity" && links.identity {
        let (_, _, p) = ctx!(c.case_permit(&st, &id, Action::CaseReadIdentity).await);
        match cases::read_identity(vault, &p, &case).await {
            Ok(i) => Some(i),
            Err(e) => return c.fail(&st, e, &format!("/cases/{case}")),
        }
    } else {
        None
    };
    let page = CasePage {
        base: c.base(&st, "case.title", &format!("/cases/{case}")),
        case: view,
        identity,
        guardians,
        can: links,
        notice: notice_key(&q.done),
        label,
        alerts,
    };
    html(StatusCode::OK, &page)
}

// ---------------------------------------------------------------------------
// The account check and the leak check of a case
// ---------------------------------------------------------------------------

pub async fn start_account_check(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Path(id): Path<String>,
    parts: Parts,
    Form(form): Form<CsrfForm>,
) -> Response {
    let c = ctx!(posted(&st, &web, &parts, &form.csrf).await);
    let (case, _, permit) = ctx!(c.case_permit(&st, &id, Action::AccountCheck).await);
    match checks::start_account_check_case(&st.ctx.delivery, &permit, &case).await {
        Ok(run) => see_other(&format!("/cases/{case}/account-check/{}", run.run_id)),
        Err(e) => c.fail(&st, e, &format!("/cases/{case}")),
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct LabelForm {
    csrf: String,
    label: String,
}

/// The school's own label of a case: saved, or removed when empty. A refused label is
/// not shown again (it might hold a number); the page says what a label may hold.
pub async fn set_label(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Path(id): Path<String>,
    parts: Parts,
    Form(form): Form<LabelForm>,
) -> Response {
    let c = ctx!(posted(&st, &web, &parts, &form.csrf).await);
    let (case, _, permit) = ctx!(c.case_permit(&st, &id, Action::CaseLabel).await);
    let input = labels::LabelInput {
        label: Some(form.label),
    };
    match labels::set(&st.ctx.vault, &permit, &case, input).await {
        Ok(()) => see_other(&format!("/cases/{case}?done=label")),
        Err(fiktiv_routine::DomainError::Invalid(_)) => {
            see_other(&format!("/cases/{case}?done=label-invalid"))
        }
        Err(e) => c.fail(&st, e, &format!("/cases/{case}")),
    }
}

pub async fn start_leak_scan(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Path(id): Path<String>,
    parts: Parts,
    Form(form): Form<CsrfForm>,
) -> Response {
    let c = ctx!(posted(&st, &web, &parts, &form.csrf).await);
    let (case, _, permit) = ctx!(c.case_permit(&st, &id, Action::LeakScan).await);
    match checks::start_leak_scan(&st.ctx.delivery, &permit, Some(&case)).await {
        Ok(run) => see_other(&format!("/cases/{case}/leak-scan/{}", run.run_id)),
        Err(e) => c.fail(&st, e, &format!("/cases/{case}")),
    }
}

async fn case_run(
    st: AppState,
    web: Arc<Web>,
    headers: HeaderMap,
    id: String,
    run_id: String,
    kind: RunKind,
) -> Response {
    let c = ctx!(signed_in(&st, &web, &headers).await);
    let action = match kind {
        RunKind::AccountCheck => Action::AccountCheck,
        RunKind::LeakScan => Action::LeakScan,
    };
    let (case, _, permit) = ctx!(c.case_permit(&st, &id, action).await);
    let back = format!("/cases/{case}");
    match checks::case_run(&st.ctx.delivery, &permit, &case, &run_id).await {
        Ok(run) => {
            let again = match kind {
                RunKind::AccountCheck => format!("/cases/{case}/account-check"),
                RunKind::LeakScan => format!("/cases/{case}/leak-scan"),
            };
            let here = format!("{again}/{run_id}");
            run_page(&c, &st, run, &here, back, Some(again))
        }
        Err(e) => c.fail(&st, e, &back),
    }
}

pub async fn account_check_run(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Path((id, run)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    case_run(st, web, headers, id, run, RunKind::AccountCheck).await
}

pub async fn leak_scan_run(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Path((id, run)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    case_run(st, web, headers, id, run, RunKind::LeakScan).await
}
