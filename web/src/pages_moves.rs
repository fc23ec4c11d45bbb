//! Moving a case to another unit and reopening an ended one, in the web UI: the
//! receiving unit asks (`GET|POST /case-requests/new`), the case's unit or an approver
//! decides (`POST /case-requests/{id}/accept|refuse`), everyone involved follows the
//! requests on `GET /case-requests`. The same domain functions as the API
//! (`/api/v1/units/{unit}/case-requests`, `/api/v1/case-requests/{id}/decision`).

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
use super::pages_cases::ctx;
use super::ui::{choices, posted, see_other, signed_in, Choice, Ctx, FormErrors};
use super::views::Base;
use super::Web;
use fiktiv_app::AppState;
use fiktiv_routine::case_requests::{
    self, CaseRequestDecision, CaseRequestId, CaseRequestInput, CaseRequestKind, CaseRequestState,
    CaseRequestView,
};
use fiktiv_routine::cases::CountryCode;

/// One unit's requests (or, for an approver, all pending ones).
pub struct UnitRequests {
    /// `None`: every pending request of the municipality (an approver's list).
    pub unit: Option<String>,
    pub requests: Vec<CaseRequestView>,
}

#[derive(Template)]
#[template(path = "case_requests.html")]
pub struct RequestsPage {
    pub base: Base,
    pub lists: Vec<UnitRequests>,
    /// Whether this person may ask for a case in some unit.
    pub may_ask: bool,
    /// Whether this person may import a transfer package into some unit.
    pub may_import: bool,
    pub notice: Option<&'static str>,
}

impl RequestsPage {
    pub fn kind_text(&self, k: &CaseRequestKind) -> &str {
        match k {
            CaseRequestKind::Move => self.base.t("case-requests.kind-move"),
            CaseRequestKind::Reopen => self.base.t("case-requests.kind-reopen"),
        }
    }

    pub fn state_text(&self, s: &CaseRequestState) -> &str {
        match s {
            CaseRequestState::Pending => self.base.t("case-requests.state-pending"),
            CaseRequestState::Accepted => self.base.t("case-requests.state-accepted"),
            CaseRequestState::Refused => self.base.t("case-requests.state-refused"),
            CaseRequestState::Expired => self.base.t("case-requests.state-expired"),
        }
    }

    pub fn groups_text(&self, r: &CaseRequestView) -> String {
        if r.groups.is_empty() {
            self.base.t("case-requests.no-groups").to_owned()
        } else {
            r.groups.join(", ")
        }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct RequestsQuery {
    done: String,
}

fn request_units(c: &Ctx, st: &AppState, action: Action) -> Vec<String> {
    c.principal
        .units
        .iter()
        .filter(|u| c.may(st, action, &Resource::Unit((*u).clone())))
        .cloned()
        .collect()
}

pub async fn list(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Query(q): Query<RequestsQuery>,
    headers: HeaderMap,
) -> Response {
    let c = ctx!(signed_in(&st, &web, &headers).await);
    let vault = &st.ctx.vault;
    let mut lists = Vec::new();
    if let Ok(p) = c.municipality_permit(&st, Action::CaseRequestList) {
        match case_requests::list_pending(vault, &p).await {
            Ok(requests) => lists.push(UnitRequests {
                unit: None,
                requests,
            }),
            Err(e) => return c.fail(&st, e, "/"),
        }
    } else {
        for unit in request_units(&c, &st, Action::CaseRequestList) {
            let p = ctx!(c.unit_permit(&st, &unit, Action::CaseRequestList));
            match case_requests::list_for_unit(vault, &p, &unit).await {
                Ok(requests) => lists.push(UnitRequests {
                    unit: Some(unit),
                    requests,
                }),
                Err(e) => return c.fail(&st, e, "/"),
            }
        }
    }
    if lists.is_empty() {
        return c.not_allowed(&st);
    }
    let notice = match q.done.as_str() {
        "asked" => Some("case-requests.done-asked"),
        "accepted" => Some("case-requests.done-accepted"),
        "refused" => Some("case-requests.done-refused"),
        _ => None,
    };
    let page = RequestsPage {
        base: c.base(&st, "case-requests.title", "/case-requests"),
        may_ask: !request_units(&c, &st, Action::CaseRequest).is_empty(),
        may_import: !request_units(&c, &st, Action::CaseTransferIn).is_empty(),
        lists,
        notice,
    };
    html(StatusCode::OK, &page)
}

#[derive(Template)]
#[template(path = "case_request_new.html")]
pub struct NewRequestPage {
    pub base: Base,
    pub units: Vec<String>,
    pub unit: String,
    pub country: String,
    pub groups: String,
    pub errors: FormErrors,
}

impl NewRequestPage {
    pub fn countries(&self) -> Vec<Choice> {
        choices(
            "country",
            &[("se", "country.se", ""), ("no", "country.no", "")],
        )
    }
}

pub async fn new_form(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    headers: HeaderMap,
) -> Response {
    let c = ctx!(signed_in(&st, &web, &headers).await);
    let units = request_units(&c, &st, Action::CaseRequest);
    if units.is_empty() {
        return c.not_allowed(&st);
    }
    let page = NewRequestPage {
        base: c.base(&st, "case-request-new.title", "/case-requests/new"),
        unit: units.first().cloned().unwrap_or_default(),
        units,
        country: "se".into(),
        groups: String::new(),
        errors: FormErrors::default(),
    };
    html(StatusCode::OK, &page)
}

/// The form as posted. The personal number is never logged and never shown again.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct NewRequestForm {
    csrf: String,
    unit: String,
    country: String,
    personal_number: Zeroizing<String>,
    groups: String,
}

impl std::fmt::Debug for NewRequestForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewRequestForm([redacted])")
    }
}

const FIELDS: &[&str] = &["unit", "country-se", "personal_number", "groups"];

/// The groups typed as one line: commas or semicolons between them.
fn split_groups(s: &str) -> Vec<String> {
    s.split([',', ';'])
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(str::to_owned)
        .collect()
}

pub async fn ask(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    parts: Parts,
    Form(form): Form<NewRequestForm>,
) -> Response {
    let c = ctx!(posted(&st, &web, &parts, &form.csrf).await);
    let units = request_units(&c, &st, Action::CaseRequest);
    let unit = form.unit.trim().to_owned();
    let groups_typed = form.groups.clone();
    // The form comes back without the personal number: a real identity is never echoed.
    let again = |errors: FormErrors, status: StatusCode, country: &str| {
        let page = NewRequestPage {
            base: c.base(&st, "case-request-new.title", "/case-requests/new"),
            units: units.clone(),
            unit: unit.clone(),
            country: country.to_owned(),
            groups: groups_typed.clone(),
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
    let permit = ctx!(c.unit_permit(&st, &unit, Action::CaseRequest));
    let input = CaseRequestInput {
        country,
        personal_number: form.personal_number,
        groups: split_groups(&form.groups),
    };
    match case_requests::request(&st.ctx.vault, &st.ctx.rules, &permit, &unit, input).await {
        Ok(_) => see_other("/case-requests?done=asked"),
        Err(e) => match FormErrors::from_domain(e, FIELDS, &[]) {
            Ok((status, errors)) => again(errors, status, &country_code),
            Err(e) => c.fail(&st, e, "/case-requests"),
        },
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct DecideForm {
    csrf: String,
    reason: String,
}

async fn decide(
    st: AppState,
    web: Arc<Web>,
    id: String,
    parts: Parts,
    form: DecideForm,
    accept: bool,
) -> Response {
    let c = ctx!(posted(&st, &web, &parts, &form.csrf).await);
    let Ok(id) = id.parse::<CaseRequestId>() else {
        return c.not_found(&st);
    };
    let (unit, requested_by) = match case_requests::lookup(&st.ctx.vault, &id).await {
        Ok(x) => x,
        Err(e) => return c.fail(&st, e, "/case-requests"),
    };
    let Ok(permit) = st.ctx.authz.authorize(
        &c.principal,
        Action::CaseRequestDecide,
        &Resource::CaseRequest { unit, requested_by },
    ) else {
        return c.not_found(&st);
    };
    let input = CaseRequestDecision {
        accept,
        reason: Some(form.reason).filter(|r| !r.trim().is_empty()),
    };
    match case_requests::decide(&st.ctx.vault, &permit, &id, input).await {
        Ok(_) if accept => see_other("/case-requests?done=accepted"),
        Ok(_) => see_other("/case-requests?done=refused"),
        Err(fiktiv_routine::DomainError::Invalid(_)) => c.problem(
            &st,
            StatusCode::UNPROCESSABLE_ENTITY,
            "error.conflict-title",
            "problem.reason-invalid",
            "/case-requests",
        ),
        Err(e) => c.fail(&st, e, "/case-requests"),
    }
}

pub async fn accept(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Path(id): Path<String>,
    parts: Parts,
    Form(form): Form<DecideForm>,
) -> Response {
    decide(st, web, id, parts, form, true).await
}

pub async fn refuse(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Path(id): Path<String>,
    parts: Parts,
    Form(form): Form<DecideForm>,
) -> Response {
    decide(st, web, id, parts, form, false).await
}
