//! What the routine's pages share: the signed-in request, permits from the one
//! [`fiktiv_policies::Authorizer`] (a denial becomes a page, never a decision made
//! here), domain errors mapped to pages with stable message keys, form errors tied to
//! their fields, and display helpers.
//!
//! Nothing here echoes an input value: errors are message keys, and a form that may
//! hold a real identity is shown again empty.

use std::sync::Arc;

use askama::Template;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use fiktiv_policies::{Action, Permit, Principal, Resource};
use fiktiv_vault::CaseId;
use serde::Deserialize;

use super::i18n::Tr;
use super::pages::{begin, forbidden, html, internal, require_session};
use super::security::cross_site;
use super::views::Base;
use super::Web;
use fiktiv_app::AppState;
use fiktiv_routine::ids::{OrderId, RevealId};
use fiktiv_routine::{self as domain, DomainError, FieldProblem};
use fiktiv_staff::session::Session;

/// A signed-in request: the translator, the session and its principal.
pub(super) struct Ctx {
    pub tr: Tr,
    pub session: Session,
    pub principal: Principal,
    pub web: Arc<Web>,
}

impl Ctx {
    /// The page shell for this person: their name, roles and the navigation the
    /// authorizer allows them.
    pub fn base(&self, st: &AppState, title: &'static str, here: &str) -> Base {
        Base::new(self.tr.clone(), title, self.session.csrf.clone(), here)
            .signed_in(&self.session.account, &st.ctx.authz)
            .idle_warning(self.web.timeouts.idle)
    }

    /// What the authorizer allows this person on `resource` (to show links and
    /// buttons; every page and form authorizes again).
    pub fn allowed(&self, st: &AppState, resource: &Resource) -> Vec<Action> {
        st.ctx.authz.allowed_actions(&self.principal, resource)
    }

    pub fn may(&self, st: &AppState, action: Action, resource: &Resource) -> bool {
        st.ctx
            .authz
            .authorize(&self.principal, action, resource)
            .is_ok()
    }

    /// A page that says why something failed, with a link back.
    pub fn problem(
        &self,
        st: &AppState,
        status: StatusCode,
        heading: &'static str,
        text: &'static str,
        back: &str,
    ) -> Response {
        let page = ProblemPage {
            base: self.base(st, heading, back),
            heading,
            text,
            back: back.to_owned(),
        };
        html(status, &page)
    }

    pub fn not_found(&self, st: &AppState) -> Response {
        self.problem(
            st,
            StatusCode::NOT_FOUND,
            "error.not-found-title",
            "error.not-found-text",
            "/",
        )
    }

    pub fn not_allowed(&self, st: &AppState) -> Response {
        self.problem(
            st,
            StatusCode::FORBIDDEN,
            "error.not-allowed-title",
            "error.not-allowed-text",
            "/",
        )
    }

    /// A domain error as a page. Validation errors belong on their form; here they
    /// get a general page.
    pub fn fail(&self, st: &AppState, e: DomainError, back: &str) -> Response {
        match e {
            DomainError::NotFound | DomainError::Denied(_) => self.not_found(st),
            DomainError::Conflict { code, .. } => self.problem(
                st,
                StatusCode::CONFLICT,
                "error.conflict-title",
                conflict_key(code),
                back,
            ),
            DomainError::Gone { code, .. } => self.problem(
                st,
                StatusCode::GONE,
                "error.gone-title",
                conflict_key(code),
                back,
            ),
            DomainError::Busy { code, .. } => self.problem(
                st,
                StatusCode::TOO_MANY_REQUESTS,
                "error.conflict-title",
                conflict_key(code),
                back,
            ),
            DomainError::Invalid(_) => self.problem(
                st,
                StatusCode::UNPROCESSABLE_ENTITY,
                "error.conflict-title",
                "problem.invalid",
                back,
            ),
            e @ DomainError::Internal(_) => internal(&self.web, &self.tr, e),
        }
    }

    pub fn internal(&self, e: DomainError) -> Response {
        internal(&self.web, &self.tr, e)
    }

    /// A permit on a case, or "not found" for an unknown case and a denial alike (as
    /// the API answers), so nobody learns that a case exists.
    pub async fn case_permit(
        &self,
        st: &AppState,
        case: &str,
        action: Action,
    ) -> Result<(CaseId, String, Permit), Response> {
        let id: CaseId = case.parse().map_err(|_| self.not_found(st))?;
        let unit = match domain::cases::unit_of(&st.ctx.vault, &id).await {
            Ok(u) => u,
            Err(DomainError::NotFound) => return Err(self.not_found(st)),
            Err(e) => return Err(self.internal(e)),
        };
        let permit = st
            .ctx
            .authz
            .authorize(
                &self.principal,
                action,
                &Resource::Case { unit: unit.clone() },
            )
            .map_err(|_| self.not_found(st))?;
        Ok((id, unit, permit))
    }

    /// A permit on an order's case ("not found" alike).
    pub async fn order_permit(
        &self,
        st: &AppState,
        order: &str,
        action: Action,
    ) -> Result<(OrderId, Permit), Response> {
        let id: OrderId = order.parse().map_err(|_| self.not_found(st))?;
        let unit = match domain::orders::case_of(&st.ctx.vault, &id).await {
            Ok((_, u)) => u,
            Err(DomainError::NotFound) => return Err(self.not_found(st)),
            Err(e) => return Err(self.internal(e)),
        };
        let permit = st
            .ctx
            .authz
            .authorize(&self.principal, action, &Resource::Case { unit })
            .map_err(|_| self.not_found(st))?;
        Ok((id, permit))
    }

    /// A permit on a reveal request ("not found" alike).
    pub async fn reveal_permit(
        &self,
        st: &AppState,
        reveal: &str,
        action: Action,
    ) -> Result<(RevealId, Permit), Response> {
        let id: RevealId = reveal.parse().map_err(|_| self.not_found(st))?;
        let (unit, requested_by) = match domain::reveal::lookup(&st.ctx.vault, &id).await {
            Ok(x) => x,
            Err(DomainError::NotFound) => return Err(self.not_found(st)),
            Err(e) => return Err(self.internal(e)),
        };
        let permit = st
            .ctx
            .authz
            .authorize(
                &self.principal,
                action,
                &Resource::RevealRequest { unit, requested_by },
            )
            .map_err(|_| self.not_found(st))?;
        Ok((id, permit))
    }

    /// A permit on the whole municipality ("not allowed" when denied).
    // The refusal is the page itself, returned at once by the handler (`ctx!`);
    // boxing it would only move the allocation.
    #[allow(clippy::result_large_err)]
    pub fn municipality_permit(&self, st: &AppState, action: Action) -> Result<Permit, Response> {
        st.ctx
            .authz
            .authorize(&self.principal, action, &Resource::Municipality)
            .map_err(|_| self.not_allowed(st))
    }

    /// A permit on a school unit ("not allowed" when denied: unit codes are not
    /// secret).
    // The refusal is the page itself, returned at once by the handler (`ctx!`);
    // boxing it would only move the allocation.
    #[allow(clippy::result_large_err)]
    pub fn unit_permit(
        &self,
        st: &AppState,
        unit: &str,
        action: Action,
    ) -> Result<Permit, Response> {
        if unit.is_empty() || unit.len() > domain::MAX_LABEL_CHARS {
            return Err(self.not_allowed(st));
        }
        st.ctx
            .authz
            .authorize(&self.principal, action, &Resource::Unit(unit.to_owned()))
            .map_err(|_| self.not_allowed(st))
    }

    pub fn now(&self, st: &AppState) -> DateTime<Utc> {
        st.ctx.vault.now()
    }
}

/// The signed-in person of a page request, or where to send them instead.
pub(super) async fn signed_in(
    st: &AppState,
    web: &Arc<Web>,
    headers: &HeaderMap,
) -> Result<Ctx, Response> {
    let req = begin(st, web, headers).await?;
    let session = require_session(&req, false)
        .map_err(IntoResponse::into_response)?
        .clone();
    let principal = session.account.principal();
    Ok(Ctx {
        tr: req.tr,
        session,
        principal,
        web: web.clone(),
    })
}

/// The signed-in person of a form post, after the CSRF token and the origin were
/// checked (403 otherwise).
pub(super) async fn posted(
    st: &AppState,
    web: &Arc<Web>,
    parts: &Parts,
    csrf: &str,
) -> Result<Ctx, Response> {
    let c = signed_in(st, web, &parts.headers).await?;
    if cross_site(&parts.method, &parts.headers) || csrf.is_empty() || !c.session.csrf_ok(csrf) {
        return Err(forbidden(&c.tr));
    }
    Ok(c)
}

/// After a form: to a page by its path (the path holds only opaque ids).
pub(super) fn see_other(path: &str) -> Response {
    Redirect::to(path).into_response()
}

/// A form with only the CSRF token.
#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct CsrfForm {
    pub csrf: String,
}

// ---------------------------------------------------------------------------
// Form errors
// ---------------------------------------------------------------------------

/// One error on a form: the field's element id ("" for the form as a whole) and the
/// message key.
#[derive(Debug, Clone)]
pub struct FormError {
    pub field: String,
    pub key: &'static str,
}

/// The errors of a form, shown in a summary at the top (linking to each field) and
/// next to each field (`aria-describedby`, `aria-invalid`).
#[derive(Debug, Clone, Default)]
pub struct FormErrors {
    pub items: Vec<FormError>,
}

impl FormErrors {
    pub fn add(&mut self, field: &str, key: &'static str) {
        if !self.items.iter().any(|e| e.field == field && e.key == key) {
            self.items.push(FormError {
                field: field.to_owned(),
                key,
            });
        }
    }

    pub fn general(key: &'static str) -> Self {
        let mut e = Self::default();
        e.add("", key);
        e
    }

    /// One error on one field.
    pub fn general_on(field: &str, key: &'static str) -> Self {
        let mut e = Self::default();
        e.add(field, key);
        e
    }

    /// Domain field problems, on the form's fields: `fields` are the element ids of
    /// the form, `aliases` map a domain field name (after `.` became `_` and an index
    /// `[n]` was cut) to one of them. Anything else goes to the summary only.
    pub fn from_problems(
        problems: &[FieldProblem],
        fields: &[&str],
        aliases: &[(&str, &str)],
    ) -> Self {
        let mut out = Self::default();
        for p in problems {
            let name = p
                .field
                .split('[')
                .next()
                .unwrap_or_default()
                .replace('.', "_");
            let name = aliases
                .iter()
                .find(|(from, _)| *from == name)
                .map(|(_, to)| (*to).to_owned())
                .unwrap_or(name);
            let field = if fields.contains(&name.as_str()) {
                name
            } else {
                String::new()
            };
            out.add(&field, problem_key(&p.code));
        }
        out
    }

    /// A domain error on a form: validation problems on their fields, a conflict in
    /// the summary. Anything else is not a form error (`Err`).
    pub fn from_domain(
        e: DomainError,
        fields: &[&str],
        aliases: &[(&str, &str)],
    ) -> Result<(StatusCode, Self), DomainError> {
        match e {
            DomainError::Invalid(p) => Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                Self::from_problems(&p, fields, aliases),
            )),
            DomainError::Conflict { code, .. } => {
                Ok((StatusCode::CONFLICT, Self::general(conflict_key(code))))
            }
            e => Err(e),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The first error of a field.
    pub fn get(&self, field: &str) -> Option<&'static str> {
        self.items.iter().find(|e| e.field == field).map(|e| e.key)
    }

    pub fn has(&self, field: &str) -> bool {
        self.get(field).is_some()
    }

    /// The `aria-describedby` attribute (hint and error) of a group of fields
    /// (a fieldset of radio buttons).
    pub fn describedby(&self, field: &str, hint: &str) -> String {
        let mut ids = Vec::new();
        if !hint.is_empty() {
            ids.push(format!("{field}-hint"));
        }
        if self.has(field) {
            ids.push(format!("{field}-error"));
        }
        if ids.is_empty() {
            String::new()
        } else {
            format!(" aria-describedby=\"{}\"", ids.join(" "))
        }
    }

    /// The `aria-describedby` (hint and error) and `aria-invalid` attributes of a
    /// field. Built from element ids only, so it is safe to emit unescaped.
    pub fn aria(&self, field: &str, hint: &str) -> String {
        let mut ids = Vec::new();
        if !hint.is_empty() {
            ids.push(format!("{field}-hint"));
        }
        if self.has(field) {
            ids.push(format!("{field}-error"));
        }
        let mut out = String::new();
        if !ids.is_empty() {
            out.push_str(&format!(" aria-describedby=\"{}\"", ids.join(" ")));
        }
        if self.has(field) {
            out.push_str(" aria-invalid=\"true\"");
        }
        out
    }
}

/// One radio button of a group: its element id (`name-value`), the form field name,
/// the value (a code) and the message keys of its label and hint ("" for none).
#[derive(Debug, Clone)]
pub struct Choice {
    pub id: String,
    pub name: &'static str,
    pub value: &'static str,
    pub label: &'static str,
    pub hint: &'static str,
}

impl Choice {
    pub fn is(&self, current: &str) -> bool {
        self.value == current
    }
}

/// A group of radio buttons: (value, label key, hint key). The first one's id is where
/// the group's error is shown (`name-firstvalue`).
pub fn choices(
    name: &'static str,
    list: &[(&'static str, &'static str, &'static str)],
) -> Vec<Choice> {
    list.iter()
        .map(|(value, label, hint)| Choice {
            id: format!("{name}-{value}"),
            name,
            value,
            label,
            hint,
        })
        .collect()
}

/// The page of a failure: heading, text and a link back.
#[derive(Template)]
#[template(path = "problem.html")]
pub struct ProblemPage {
    pub base: Base,
    pub heading: &'static str,
    pub text: &'static str,
    pub back: String,
}

// ---------------------------------------------------------------------------
// Message keys of domain codes
// ---------------------------------------------------------------------------

/// The message key of a conflict or gone code.
pub fn conflict_key(code: &str) -> &'static str {
    match code {
        "wrong-state" => "conflict.wrong-state",
        "intake-no-number" => "conflict.intake-no-number",
        "hub-not-configured" => "conflict.hub-not-configured",
        "plan-required" => "conflict.plan-required",
        "plan-not-changed" => "conflict.plan-not-changed",
        "decision-required" => "conflict.decision-required",
        "too-many-refused-names" => "conflict.too-many-refused-names",
        "runs-busy" => "conflict.runs-busy",
        "rate-limited" => "conflict.reveal-rate-limited",
        "requests-rate-limited" => "conflict.requests-rate-limited",
        "fictitious-identity-required" => "conflict.fictitious-identity-required",
        "duplicate-identity" => "conflict.duplicate-identity",
        "earlier-case-ended" => "conflict.earlier-case-ended",
        "no-case" => "conflict.no-case",
        "case-already-here" => "conflict.case-already-here",
        "request-pending" => "conflict.request-pending",
        "request-decided" => "conflict.request-decided",
        "request-expired" => "conflict.request-expired",
        "request-stale" => "conflict.request-stale",
        "identity-unchanged" => "conflict.identity-unchanged",
        "fictitious-unchanged" => "conflict.fictitious-unchanged",
        "change-pending" => "conflict.change-pending",
        "change-registered" => "conflict.change-registered",
        "guardian-registered" => "conflict.guardian-registered",
        "transfer-not-configured" => "conflict.transfer-not-configured",
        "transfer-format" => "conflict.transfer-format",
        "transfer-not-for-us" => "conflict.transfer-not-for-us",
        "transfer-sender-unknown" => "conflict.transfer-sender-unknown",
        "transfer-tampered" => "conflict.transfer-tampered",
        "transfer-malformed" => "conflict.transfer-malformed",
        "transfer-replayed" => "conflict.transfer-replayed",
        "transfer-consent-scope" => "conflict.transfer-consent-scope",
        "number-unavailable" => "conflict.number-unavailable",
        "chosen-digits-locked" => "conflict.chosen-digits-locked",
        "no-number-free" => "conflict.no-number-free",
        "reveal-already-decided" => "conflict.reveal-already-decided",
        "reveal-not-approved" => "conflict.reveal-not-approved",
        "reveal-used" => "conflict.reveal-used",
        "reveal-expired" => "conflict.reveal-expired",
        "identity-shredded" => "conflict.identity-shredded",
        "plan-shredded" => "conflict.plan-shredded",
        "no-plan" => "conflict.no-plan",
        "target-in-file" => "conflict.target-in-file",
        _ => "conflict.other",
    }
}

/// The message key of a field problem code (`area.problem`; matched in two parts).
pub fn problem_key(code: &str) -> &'static str {
    match code.split_once('.').unwrap_or_default() {
        ("personal-number", "empty") => "problem.personal-number-empty",
        ("personal-number", "too-long") => "problem.personal-number-too-long",
        ("personal-number", "bad-characters") => "problem.personal-number-bad-characters",
        ("personal-number", "bad-format") => "problem.personal-number-bad-format",
        ("personal-number", "bad-checksum") => "problem.personal-number-bad-checksum",
        ("personal-number", "impossible-date") => "problem.personal-number-impossible-date",
        ("personal-number", "in-future") => "problem.personal-number-in-future",
        ("personal-number", "unknown-century") => "problem.personal-number-unknown-century",
        ("personal-number", "out-of-range") => "problem.personal-number-out-of-range",
        ("personal-number", "no-checksum-possible") => "problem.personal-number-no-checksum",
        ("birth-date", "does-not-match-number") => "problem.birth-date-not-number",
        ("name", "empty") => "problem.name-empty",
        ("name", "too-long") => "problem.name-too-long",
        ("name", "control-character")
        | ("label", "control-character")
        | ("text", "control-character") => "problem.control-character",
        ("name", "disallowed-character") => "problem.name-disallowed-character",
        ("name", "no-letter") => "problem.name-no-letter",
        ("date", "invalid") => "problem.date-invalid",
        ("date", "in-future") => "problem.date-in-future",
        ("unit", "invalid") => "problem.unit-invalid",
        ("label", "length") => "problem.label-length",
        ("label", "personal-number") => "problem.label-personal-number",
        ("list", "too-long") => "problem.list-too-long",
        ("list", "duplicate") => "problem.list-duplicate",
        ("text", "too-long") => "problem.text-too-long",
        ("decision", "guardians-not-informed") => "problem.guardians-not-informed",
        ("decision", "not-applicable") => "problem.decision-not-applicable",
        ("fictitious", "first-name-empty") | ("fictitious", "last-name-empty") => {
            "problem.name-empty"
        }
        ("fictitious", "name-not-allowed") => "problem.fictitious-name-not-allowed",
        ("fictitious", "birth-date-in-future") => "problem.date-in-future",
        ("fictitious", "birth-date-equals-real") => "problem.fictitious-birth-date-equals-real",
        ("fictitious", "birth-year-differs") => "problem.fictitious-birth-year-differs",
        ("fictitious", "birth-school-year-differs") => {
            "problem.fictitious-birth-school-year-differs"
        }
        ("guardian", "not-linked-has-identity") => "problem.guardian-not-linked-has-identity",
        ("guardian", "linked-needs-identities") => "problem.guardian-linked-needs-identities",
        ("guardian", "not-linked") => "problem.guardian-not-linked",
        ("number", "not-digits") => "problem.number-not-digits",
        ("number", "not-allowed") => "problem.number-not-allowed",
        ("number", "chosen-twice") => "problem.number-chosen-twice",
        ("order", "no-platforms") => "problem.order-no-platforms",
        ("staff", "empty") => "problem.staff-empty",
        ("reveal", "one-target") => "problem.reveal-one-target",
        ("reveal", "purpose-invalid") => "problem.reveal-purpose-invalid",
        ("case-request", "reason-invalid") => "problem.reason-invalid",
        ("correction", "reason-invalid") => "problem.correction-reason-invalid",
        ("transfer", "key-invalid") => "problem.transfer-key-invalid",
        ("transfer", "consent-by-invalid") => "problem.transfer-consent-by-invalid",
        ("end", "leaving-date") => "problem.end-leaving-date",
        ("plan", "empty") => "problem.plan-empty",
        _ => "problem.invalid",
    }
}

// ---------------------------------------------------------------------------
// Small input helpers
// ---------------------------------------------------------------------------

/// The lines of a text area, trimmed, without empty ones.
pub fn lines(s: &str) -> Vec<String> {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A whole form field of the given name that was ticked (a checkbox or radio value).
pub fn ticked(v: &str) -> bool {
    matches!(v, "on" | "yes" | "1" | "true")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn problems_land_on_their_fields() {
        let e = FormErrors::from_problems(
            &[
                // Codes are spelled in two parts: the i18n test reads dotted literals
                // in this folder as message keys.
                FieldProblem::new("platforms[2]", concat!("label", ".length"), "x"),
                FieldProblem::new(
                    concat!("fictitious", ".name"),
                    concat!("fictitious", ".name-not-allowed"),
                    "x",
                ),
                FieldProblem::new("unknown", "whatever", "x"),
            ],
            &["platforms", "fictitious_first_name"],
            &[("fictitious_name", "fictitious_first_name")],
        );
        assert_eq!(e.get("platforms"), Some("problem.label-length"));
        assert_eq!(
            e.get("fictitious_first_name"),
            Some("problem.fictitious-name-not-allowed")
        );
        assert_eq!(e.get(""), Some("problem.invalid"));
        assert_eq!(
            e.aria("platforms", "x"),
            " aria-describedby=\"platforms-hint platforms-error\" aria-invalid=\"true\""
        );
        assert_eq!(e.aria("other", ""), "");
        assert_eq!(lines(" a \n\n b\r\n"), vec!["a", "b"]);
    }
}
