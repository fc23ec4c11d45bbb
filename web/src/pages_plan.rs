//! The school's steps before the order: the action plan (versioned, with who and
//! when), the digital-login decision, the fictitious identity with name suggestions,
//! and the guardians.
//!
//! Routes: `GET|POST /cases/{id}/plan`, `GET|POST /cases/{id}/decision`,
//! `GET|POST /cases/{id}/fictitious`, `GET|POST /cases/{id}/guardians/{n}`.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::{Extension, Form};
use fiktiv_policies::{Action, Country};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::pages::html;
use super::pages_cases::ctx;
use super::security::cookie;
use super::ui::{choices, lines, posted, see_other, signed_in, ticked, Choice, Ctx, FormErrors};
use super::views::Base;
use super::Web;
use fiktiv_app::AppState;
use fiktiv_routine::cases::{self, CaseView, CountryCode};
use fiktiv_routine::decisions::{self, DecisionInput, LoginDecision};
use fiktiv_routine::drafts;
use fiktiv_routine::fictitious::{self, FictitiousInput, Suggestions};
use fiktiv_routine::guardians::{self, GuardianInput, GuardianReal, GuardianSummary};
use fiktiv_routine::plans::{self, Plan, PlanVersionInfo};
use fiktiv_routine::{fmt_date, local_date, DomainError};
use fiktiv_staff::session;

/// The largest plan form accepted (4 MiB): seven text fields at their 4,000-character
/// limit fit many times over, and so does a pasted text of 200,000 characters
/// URL-encoded (up to 12 bytes a character), so that a text far over the limit reaches
/// the form's own check, which keeps it, rather than the general body limit's bare 413.
pub const PLAN_FORM_BODY_LIMIT: usize = 4 << 20;

/// Today's date where the case is, as `YYYY-MM-DD` (the default of date fields).
fn today_in(st: &AppState, country: &CountryCode) -> String {
    let c: Country = (*country).into();
    fmt_date(local_date(st.ctx.vault.now(), c))
}

// ---------------------------------------------------------------------------
// The action plan
// ---------------------------------------------------------------------------

/// The plan's fields as the form holds them (lists one per line).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PlanForm {
    csrf: String,
    pub information_handling: String,
    pub platforms: String,
    pub guardian_contact_routes: String,
    pub staff_to_inform: String,
    pub free_text: String,
    pub meeting_date: String,
    pub attendees: String,
}

impl PlanForm {
    fn of(p: &Plan) -> Self {
        Self {
            csrf: String::new(),
            information_handling: p.information_handling.clone(),
            platforms: p.platforms.join("\n"),
            guardian_contact_routes: p.guardian_contact_routes.join("\n"),
            staff_to_inform: p.staff_to_inform.join("\n"),
            free_text: p.free_text.clone(),
            meeting_date: p.meeting_date.clone(),
            attendees: p.attendees.join("\n"),
        }
    }
}

#[derive(Template)]
#[template(path = "plan.html")]
pub struct PlanPage {
    pub base: Base,
    pub case_id: String,
    /// The version shown in the form (the newest, or one asked for).
    pub shown: Option<i64>,
    pub newest: Option<i64>,
    pub history: Vec<PlanVersionInfo>,
    pub form: PlanForm,
    pub errors: FormErrors,
    pub editable: bool,
    pub saved: bool,
    /// The form holds the person's draft, kept when their session ended.
    pub draft: bool,
}

impl PlanPage {
    pub fn is_old(&self) -> bool {
        self.shown.is_some() && self.shown != self.newest
    }

    pub fn is_shown(&self, v: &i64) -> bool {
        self.shown == Some(*v)
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct PlanQuery {
    version: Option<i64>,
    saved: Option<String>,
    draft: Option<String>,
}

pub async fn plan_form(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Path(id): Path<String>,
    Query(q): Query<PlanQuery>,
    headers: HeaderMap,
) -> Response {
    let c = ctx!(signed_in(&st, &web, &headers).await);
    let (case, _, permit) = ctx!(c.case_permit(&st, &id, Action::PlanRead).await);
    let editable = c.case_permit(&st, &id, Action::PlanWrite).await.is_ok();
    let (shown, history, mut form) =
        match plans::read(&st.ctx.vault, &permit, &case, q.version).await {
            Ok(v) => (Some(v.version), v.history, PlanForm::of(&v.plan)),
            Err(DomainError::Conflict {
                code: "no-plan", ..
            }) if q.version.is_none() => (None, Vec::new(), PlanForm::default()),
            Err(e) => return c.fail(&st, e, &format!("/cases/{case}/plan")),
        };
    // The person's own draft, kept when their session ended, in place of the newest.
    let mut draft = false;
    if q.draft.is_some() && q.version.is_none() {
        if let Ok((_, _, write)) = c.case_permit(&st, &id, Action::PlanWrite).await {
            match drafts::open_own(&st.ctx.vault, &write, &case).await {
                Ok(Some(plan)) => {
                    form = PlanForm::of(&plan);
                    draft = true;
                }
                Ok(None) => {}
                Err(e) => return c.fail(&st, e, &format!("/cases/{case}/plan")),
            }
        }
    }
    let page = PlanPage {
        base: c.base(&st, "plan.title", &format!("/cases/{case}/plan")),
        case_id: case.to_string(),
        shown,
        newest: history.last().map(|h| h.version),
        history,
        form,
        errors: FormErrors::default(),
        editable,
        saved: q.saved.is_some(),
        draft,
    };
    html(StatusCode::OK, &page)
}

const PLAN_FIELDS: &[&str] = &[
    "meeting_date",
    "attendees",
    "information_handling",
    "platforms",
    "guardian_contact_routes",
    "staff_to_inform",
    "free_text",
];

/// Keep the form as the ended session's owner's draft, if the one authorizer lets that
/// person write this case's plan. Whether it was kept says nothing more than the
/// owner's own permit does.
async fn keep_draft(
    st: &AppState,
    owner: &fiktiv_policies::Principal,
    id: &str,
    form: &PlanForm,
) -> bool {
    let Ok(case) = id.parse::<fiktiv_vault::CaseId>() else {
        return false;
    };
    let Ok(unit) = cases::unit_of(&st.ctx.vault, &case).await else {
        return false;
    };
    let Ok(permit) = st.ctx.authz.authorize(
        owner,
        Action::PlanWrite,
        &fiktiv_policies::Resource::Case { unit },
    ) else {
        return false;
    };
    drafts::keep(&st.ctx.vault, &permit, &case, &plan_of(form))
        .await
        .is_ok()
}

fn plan_of(form: &PlanForm) -> Plan {
    Plan {
        information_handling: form.information_handling.trim().to_owned(),
        platforms: lines(&form.platforms),
        guardian_contact_routes: lines(&form.guardian_contact_routes),
        staff_to_inform: lines(&form.staff_to_inform),
        free_text: form.free_text.trim().to_owned(),
        meeting_date: form.meeting_date.trim().to_owned(),
        attendees: lines(&form.attendees),
    }
}

pub async fn plan_write(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Path(id): Path<String>,
    parts: Parts,
    Form(form): Form<PlanForm>,
) -> Response {
    // A plan sent after its session ended (often written during the meeting with the
    // guardians, longer than the idle timeout) is kept as a draft, sealed, for the same
    // person: read before the session's row is removed.
    let ended = match cookie(&parts.headers, session::COOKIE) {
        Some(v) => session::ended_owner(&st.ctx.vault, web.timeouts, v, &form.csrf)
            .await
            .ok()
            .flatten(),
        None => None,
    };
    let c = match posted(&st, &web, &parts, &form.csrf).await {
        Ok(c) => c,
        Err(response) => {
            if let Some(owner) = ended {
                if keep_draft(&st, &owner, &id, &form).await {
                    return see_other("/signin?ended=1&draft=1");
                }
            }
            return response;
        }
    };
    let (case, _, permit) = ctx!(c.case_permit(&st, &id, Action::PlanWrite).await);
    match plans::write(&st.ctx.vault, &permit, &case, plan_of(&form)).await {
        Ok(w) => {
            // A draft of one's own is done with once a version is saved.
            if let Err(e) = drafts::discard_own(&st.ctx.vault, permit.principal_id(), &case).await {
                tracing::warn!(error = %e, "a saved plan's draft was not removed");
            }
            see_other(&format!("/cases/{case}/plan?saved={}", w.version))
        }
        Err(e) => match FormErrors::from_domain(e, PLAN_FIELDS, &[]) {
            // The person's own text is kept in the form so that nothing is lost.
            Ok((status, errors)) => {
                let page = PlanPage {
                    base: c.base(&st, "plan.title", &format!("/cases/{case}/plan")),
                    case_id: case.to_string(),
                    shown: None,
                    newest: None,
                    history: Vec::new(),
                    form,
                    errors,
                    editable: true,
                    saved: false,
                    draft: false,
                };
                html(status, &page)
            }
            Err(e) => c.fail(&st, e, &format!("/cases/{case}/plan")),
        },
    }
}

// ---------------------------------------------------------------------------
// A form page that needs the case's metadata
// ---------------------------------------------------------------------------

/// The case's metadata for a step's page (its own `case.read` permit).
pub(super) async fn case_view(c: &Ctx, st: &AppState, id: &str) -> Result<CaseView, Response> {
    let (case, _, permit) = c.case_permit(st, id, Action::CaseRead).await?;
    cases::read(&st.ctx.vault, &permit, &case)
        .await
        .map_err(|e| c.fail(st, e, &format!("/cases/{case}")))
}

// ---------------------------------------------------------------------------
// The digital-login decision
// ---------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "decision.html")]
pub struct DecisionPage {
    pub base: Base,
    pub case: CaseView,
    pub decision: String,
    pub told: bool,
    pub informed_on: String,
    pub errors: FormErrors,
}

impl DecisionPage {
    pub fn decisions(&self) -> Vec<Choice> {
        choices(
            "decision",
            &[
                (
                    "fictitious-user",
                    "decision.fictitious-user",
                    "decision.fictitious-user-hint",
                ),
                (
                    "no-digital-login",
                    "decision.no-digital-login",
                    "decision.no-digital-login-hint",
                ),
            ],
        )
    }
}

pub async fn decision_form(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let c = ctx!(signed_in(&st, &web, &headers).await);
    let _ = ctx!(c.case_permit(&st, &id, Action::LoginDecisionWrite).await);
    let case = ctx!(case_view(&c, &st, &id).await);
    let page = DecisionPage {
        base: c.base(&st, "decision.title", &format!("/cases/{id}/decision")),
        decision: case.login_decision.clone().unwrap_or_default(),
        told: case.guardians_informed_on.is_some(),
        informed_on: case
            .guardians_informed_on
            .clone()
            .unwrap_or_else(|| today_in(&st, &case.country)),
        case,
        errors: FormErrors::default(),
    };
    html(StatusCode::OK, &page)
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct DecisionForm {
    csrf: String,
    decision: String,
    guardians_told: String,
    guardians_informed_on: String,
}

pub async fn decision_write(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Path(id): Path<String>,
    parts: Parts,
    Form(form): Form<DecisionForm>,
) -> Response {
    let c = ctx!(posted(&st, &web, &parts, &form.csrf).await);
    let (case, _, permit) = ctx!(c.case_permit(&st, &id, Action::LoginDecisionWrite).await);
    let told = ticked(&form.guardians_told);
    let mut errors = FormErrors::default();
    let decision = match form.decision.as_str() {
        "fictitious-user" => Some(LoginDecision::FictitiousUser),
        "no-digital-login" => {
            if !told {
                errors.add("guardians_told", "problem.guardians-told-required");
            }
            Some(LoginDecision::NoDigitalLogin)
        }
        _ => {
            errors.add("decision-fictitious-user", "problem.decision-required");
            None
        }
    };
    let result = match decision {
        Some(d) if errors.is_empty() => {
            let input = DecisionInput {
                decision: d,
                guardians_informed_on: (d == LoginDecision::NoDigitalLogin)
                    .then(|| form.guardians_informed_on.trim().to_owned()),
            };
            match decisions::write(&st.ctx.vault, &permit, &case, input).await {
                Ok(_) => return see_other(&format!("/cases/{case}?done=decision")),
                Err(e) => FormErrors::from_domain(
                    e,
                    &["guardians_informed_on", "decision-fictitious-user"],
                    &[("decision", "decision-fictitious-user")],
                ),
            }
        }
        _ => Ok((StatusCode::UNPROCESSABLE_ENTITY, errors)),
    };
    match result {
        Ok((status, errors)) => {
            let view = ctx!(case_view(&c, &st, &id).await);
            let page = DecisionPage {
                base: c.base(&st, "decision.title", &format!("/cases/{case}/decision")),
                case: view,
                decision: form.decision,
                told,
                informed_on: form.guardians_informed_on,
                errors,
            };
            html(status, &page)
        }
        Err(e) => c.fail(&st, e, &format!("/cases/{case}")),
    }
}

// ---------------------------------------------------------------------------
// The fictitious identity
// ---------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "fictitious.html")]
pub struct FictitiousPage {
    pub base: Base,
    pub case: CaseView,
    pub suggestions: Suggestions,
    pub first_name: String,
    pub last_name: String,
    pub birth_date: String,
    pub errors: FormErrors,
}

async fn fictitious_page(
    c: &Ctx,
    st: &AppState,
    id: &str,
    values: Option<(String, String, String)>,
    errors: FormErrors,
    status: StatusCode,
) -> Response {
    let (case, _, permit) = ctx!(c.case_permit(st, id, Action::FictitiousIdentityWrite).await);
    let view = ctx!(case_view(c, st, id).await);
    let suggestions = match fictitious::suggestions(&st.ctx.vault, &permit, &case, 6).await {
        Ok(s) => s,
        Err(e) => return c.fail(st, e, &format!("/cases/{case}")),
    };
    let (first_name, last_name, birth_date) = values.unwrap_or_else(|| match &view.fictitious {
        Some(f) => (
            f.first_name.clone(),
            f.last_name.clone(),
            f.birth_date.clone(),
        ),
        None => Default::default(),
    });
    let page = FictitiousPage {
        base: c.base(st, "fictitious.title", &format!("/cases/{case}/fictitious")),
        case: view,
        suggestions,
        first_name,
        last_name,
        birth_date,
        errors,
    };
    html(status, &page)
}

pub async fn fictitious_form(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let c = ctx!(signed_in(&st, &web, &headers).await);
    fictitious_page(&c, &st, &id, None, FormErrors::default(), StatusCode::OK).await
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct FictitiousForm {
    csrf: String,
    first_name: String,
    last_name: String,
    birth_date: String,
}

pub async fn fictitious_write(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Path(id): Path<String>,
    parts: Parts,
    Form(form): Form<FictitiousForm>,
) -> Response {
    let c = ctx!(posted(&st, &web, &parts, &form.csrf).await);
    let (case, _, permit) = ctx!(
        c.case_permit(&st, &id, Action::FictitiousIdentityWrite)
            .await
    );
    let input = FictitiousInput {
        first_name: form.first_name.clone(),
        last_name: form.last_name.clone(),
        birth_date: form.birth_date.trim().to_owned(),
    };
    match fictitious::write(&st.ctx.vault, &st.ctx.rules, &permit, &case, input).await {
        Ok(_) => see_other(&format!("/cases/{case}?done=fictitious")),
        Err(e) => match FormErrors::from_domain(
            e,
            &["first_name", "last_name", "birth_date"],
            &[("name", "first_name")],
        ) {
            // Fictitious values only: they may be shown again.
            Ok((status, errors)) => {
                let values = (form.first_name, form.last_name, form.birth_date);
                fictitious_page(&c, &st, &id, Some(values), errors, status).await
            }
            Err(e) => c.fail(&st, e, &format!("/cases/{case}")),
        },
    }
}

// ---------------------------------------------------------------------------
// Guardians
// ---------------------------------------------------------------------------

impl GuardianPage {
    pub fn link_choices(&self) -> Vec<Choice> {
        choices(
            "linked",
            &[
                (
                    "yes",
                    "guardian.choice-linked",
                    "guardian.choice-linked-hint",
                ),
                ("no", "guardian.choice-not-linked", ""),
            ],
        )
    }
}

#[derive(Template)]
#[template(path = "guardian.html")]
pub struct GuardianPage {
    pub base: Base,
    pub case_id: String,
    pub n: i64,
    pub current: Option<GuardianSummary>,
    pub linked: String,
    pub fictitious_first_name: String,
    pub fictitious_last_name: String,
    pub fictitious_birth_date: String,
    pub errors: FormErrors,
}

fn guardian_no(s: &str) -> Option<i64> {
    s.parse::<i64>()
        .ok()
        .filter(|n| (1..=guardians::MAX_GUARDIANS).contains(n))
}

async fn guardian_page(
    c: &Ctx,
    st: &AppState,
    id: &str,
    n: i64,
    form: Option<&GuardianForm>,
    errors: FormErrors,
    status: StatusCode,
) -> Response {
    let (case, _, permit) = ctx!(c.case_permit(st, id, Action::CaseRead).await);
    let current = match guardians::list(&st.ctx.vault, &permit, &case).await {
        Ok(all) => all.into_iter().find(|g| g.guardian_no == n),
        Err(e) => return c.fail(st, e, &format!("/cases/{case}")),
    };
    let fict = current.as_ref().and_then(|g| g.fictitious.clone());
    let page = GuardianPage {
        base: c.base(
            st,
            "guardian.title",
            &format!("/cases/{case}/guardians/{n}"),
        ),
        case_id: case.to_string(),
        n,
        linked: match (form, &current) {
            (Some(f), _) => f.linked.clone(),
            (None, Some(g)) if g.linked => "yes".into(),
            (None, Some(_)) => "no".into(),
            (None, None) => String::new(),
        },
        // The fictitious identity may be shown again; the real one never.
        fictitious_first_name: form.map_or_else(
            || {
                fict.as_ref()
                    .map(|f| f.first_name.clone())
                    .unwrap_or_default()
            },
            |f| f.fictitious_first_name.clone(),
        ),
        fictitious_last_name: form.map_or_else(
            || {
                fict.as_ref()
                    .map(|f| f.last_name.clone())
                    .unwrap_or_default()
            },
            |f| f.fictitious_last_name.clone(),
        ),
        fictitious_birth_date: form.map_or_else(
            || {
                fict.as_ref()
                    .map(|f| f.birth_date.clone())
                    .unwrap_or_default()
            },
            |f| f.fictitious_birth_date.clone(),
        ),
        current,
        errors,
    };
    html(status, &page)
}

pub async fn guardian_form(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Path((id, n)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let c = ctx!(signed_in(&st, &web, &headers).await);
    let Some(n) = guardian_no(&n) else {
        return c.not_found(&st);
    };
    let _ = ctx!(c.case_permit(&st, &id, Action::GuardianWrite).await);
    guardian_page(&c, &st, &id, n, None, FormErrors::default(), StatusCode::OK).await
}

/// A guardian as typed: the real identity is never logged or shown again.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct GuardianForm {
    csrf: String,
    linked: String,
    real_personal_number: Zeroizing<String>,
    real_first_name: Zeroizing<String>,
    real_last_name: Zeroizing<String>,
    real_birth_date: Zeroizing<String>,
    fictitious_first_name: String,
    fictitious_last_name: String,
    fictitious_birth_date: String,
}

impl std::fmt::Debug for GuardianForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GuardianForm([redacted])")
    }
}

const GUARDIAN_FIELDS: &[&str] = &[
    "linked-yes",
    "real_personal_number",
    "real_first_name",
    "real_last_name",
    "real_birth_date",
    "fictitious_first_name",
    "fictitious_last_name",
    "fictitious_birth_date",
];

pub async fn guardian_write(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Path((id, n)): Path<(String, String)>,
    parts: Parts,
    Form(form): Form<GuardianForm>,
) -> Response {
    let c = ctx!(posted(&st, &web, &parts, &form.csrf).await);
    let Some(n) = guardian_no(&n) else {
        return c.not_found(&st);
    };
    let (case, _, permit) = ctx!(c.case_permit(&st, &id, Action::GuardianWrite).await);
    let input = match form.linked.as_str() {
        "no" => GuardianInput {
            linked: false,
            real: None,
            fictitious: None,
        },
        "yes" => GuardianInput {
            linked: true,
            real: Some(GuardianReal {
                personal_number: form.real_personal_number.clone(),
                first_name: form.real_first_name.clone(),
                last_name: form.real_last_name.clone(),
                birth_date: Zeroizing::new(form.real_birth_date.trim().to_owned()),
            }),
            fictitious: Some(FictitiousInput {
                first_name: form.fictitious_first_name.clone(),
                last_name: form.fictitious_last_name.clone(),
                birth_date: form.fictitious_birth_date.trim().to_owned(),
            }),
        },
        _ => {
            let errors = FormErrors::general_on("linked-yes", "problem.linked-required");
            return guardian_page(
                &c,
                &st,
                &id,
                n,
                Some(&form),
                errors,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
    };
    match guardians::write(&st.ctx.vault, &st.ctx.rules, &permit, &case, n, input).await {
        Ok(_) => see_other(&format!("/cases/{case}?done=guardian")),
        Err(e) => match FormErrors::from_domain(
            e,
            GUARDIAN_FIELDS,
            &[
                ("linked", "linked-yes"),
                ("fictitious_name", "fictitious_first_name"),
            ],
        ) {
            Ok((status, errors)) => {
                guardian_page(&c, &st, &id, n, Some(&form), errors, status).await
            }
            Err(e) => c.fail(&st, e, &format!("/cases/{case}")),
        },
    }
}

// ---------------------------------------------------------------------------
// The plan for print
// ---------------------------------------------------------------------------

/// One version as printed: who wrote it and when, its fields, and which fields differ
/// from the version before it.
pub struct PrintedVersion {
    pub version: i64,
    pub written_by: String,
    pub written_at: String,
    pub plan: Plan,
    /// Per field (information handling, platforms, contact routes, staff, free text,
    /// meeting date, attendees): changed since the version before.
    pub changed: [bool; 7],
}

#[derive(Template)]
#[template(path = "plan_print.html")]
pub struct PlanPrintPage {
    pub base: Base,
    pub case_id: String,
    pub versions: Vec<PrintedVersion>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct PlanPrintQuery {
    version: Option<i64>,
    all: Option<String>,
}

fn fields_of(p: &Plan) -> [String; 7] {
    [
        p.information_handling.clone(),
        p.platforms.join("\n"),
        p.guardian_contact_routes.join("\n"),
        p.staff_to_inform.join("\n"),
        p.free_text.clone(),
        p.meeting_date.clone(),
        p.attendees.join("\n"),
    ]
}

/// The action plan without the form, styled for print: the newest version, one version
/// (`?version=N`), or every version with who wrote it, when, and what changed
/// (`?all=1`). Each version shown is one audited plan read, as on the plan page.
pub async fn plan_print(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Path(id): Path<String>,
    Query(q): Query<PlanPrintQuery>,
    headers: HeaderMap,
) -> Response {
    let c = ctx!(signed_in(&st, &web, &headers).await);
    let (case, _, permit) = ctx!(c.case_permit(&st, &id, Action::PlanRead).await);
    let vault = &st.ctx.vault;
    let first = match plans::read(vault, &permit, &case, q.version).await {
        Ok(v) => v,
        Err(e) => return c.fail(&st, e, &format!("/cases/{case}/plan")),
    };
    let all = q.all.is_some();
    let mut views = Vec::new();
    if all {
        for h in &first.history {
            if h.version == first.version {
                continue;
            }
            match plans::read(vault, &permit, &case, Some(h.version)).await {
                Ok(v) => views.push(v),
                Err(e) => return c.fail(&st, e, &format!("/cases/{case}/plan")),
            }
        }
    }
    views.push(first);
    views.sort_by_key(|v| v.version);
    let mut versions = Vec::with_capacity(views.len());
    let mut before: Option<[String; 7]> = None;
    for v in views {
        let now = fields_of(&v.plan);
        let changed = match &before {
            Some(b) => std::array::from_fn(|i| b.get(i) != now.get(i)),
            None => [false; 7],
        };
        before = Some(now);
        versions.push(PrintedVersion {
            version: v.version,
            written_by: v.written_by,
            written_at: v.written_at,
            plan: v.plan,
            changed,
        });
    }
    let page = PlanPrintPage {
        base: c.base(&st, "plan.print-title", &format!("/cases/{case}/plan")),
        case_id: case.to_string(),
        versions,
    };
    html(StatusCode::OK, &page)
}
