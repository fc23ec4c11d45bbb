//! The auditor's audit trail: events filtered by case, actor and action (never a real
//! identity: the trail holds staff ids, case ids, actions and times), and "verify
//! chain", which checks the whole hash chain and shows the result.
//!
//! Routes: `GET /audit`, `GET /audit/verify`.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Extension;
use fiktiv_policies::Action;
use fiktiv_vault::audit::AuditEvent;
use fiktiv_vault::CaseId;
use serde::Deserialize;

use super::pages::html;
use super::pages_cases::ctx;
use super::ui::{signed_in, Ctx, FormErrors};
use super::views::Base;
use super::Web;
use fiktiv_app::AppState;
use fiktiv_routine::audit_trail;

/// The result of verifying the chain.
#[derive(Debug)]
pub struct Verified {
    pub ok: bool,
    pub events: u64,
    /// The first problem (event sequence numbers and what is wrong; no value).
    pub problem: Option<String>,
}

#[derive(Template)]
#[template(path = "audit.html")]
pub struct AuditPage {
    pub base: Base,
    pub case: String,
    pub actor: String,
    pub action: String,
    pub events: Vec<AuditEvent>,
    pub errors: FormErrors,
    pub verified: Option<Verified>,
    pub can_verify: bool,
}

impl AuditPage {
    pub fn filtered(&self) -> bool {
        !(self.case.is_empty() && self.actor.is_empty() && self.action.is_empty())
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct AuditQuery {
    case: String,
    actor: String,
    action: String,
}

/// How many events a page shows (newest first).
const PAGE_EVENTS: i64 = 200;

async fn audit_page(c: &Ctx, st: &AppState, q: AuditQuery, verified: Option<Verified>) -> Response {
    let permit = ctx!(c.municipality_permit(st, Action::AuditRead));
    let mut errors = FormErrors::default();
    let case = q.case.trim();
    let case_id = if case.is_empty() {
        None
    } else {
        match case.parse::<CaseId>() {
            Ok(id) => Some(id),
            Err(_) => {
                errors.add("case", "problem.case-id-invalid");
                None
            }
        }
    };
    let opt = |s: &str| {
        let t = s.trim();
        (!t.is_empty()).then(|| t.to_owned())
    };
    // An actor is written as shown (`anna.svensson`) or as stored (`staff:…`, `cli`).
    let actor = opt(&q.actor).map(|a| {
        if a.contains(':') || a == "cli" {
            a
        } else {
            format!("staff:{a}")
        }
    });
    let events = if errors.is_empty() {
        match audit_trail::search(
            &st.ctx.vault,
            &permit,
            case_id,
            actor,
            opt(&q.action),
            Some(PAGE_EVENTS),
        )
        .await
        {
            Ok(e) => e,
            Err(e) => return c.fail(st, e, "/audit"),
        }
    } else {
        Vec::new()
    };
    let page = AuditPage {
        base: c.base(st, "audit.title", "/audit"),
        case: q.case,
        actor: q.actor,
        action: q.action,
        events,
        errors,
        verified,
        can_verify: c.may(
            st,
            Action::AuditVerify,
            &fiktiv_policies::Resource::Municipality,
        ),
    };
    let status = if page.errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    html(status, &page)
}

pub async fn trail(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Query(q): Query<AuditQuery>,
    headers: HeaderMap,
) -> Response {
    let c = ctx!(signed_in(&st, &web, &headers).await);
    audit_page(&c, &st, q, None).await
}

pub async fn verify(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    headers: HeaderMap,
) -> Response {
    let c = ctx!(signed_in(&st, &web, &headers).await);
    let permit = ctx!(c.municipality_permit(&st, Action::AuditVerify));
    let verified = match audit_trail::verify(&st.ctx.vault, &permit).await {
        Ok(r) => Verified {
            ok: r.ok(),
            events: r.events,
            problem: r.first_problem.map(|f| f.to_string()),
        },
        Err(e) => return c.fail(&st, e, "/audit"),
    };
    audit_page(&c, &st, AuditQuery::default(), Some(verified)).await
}
