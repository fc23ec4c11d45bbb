//! The audit trail for auditors.

use axum::extract::State;
use axum::Json;
use fiktiv_policies::Action;
use fiktiv_vault::CaseId;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::problem::{ApiError, ApiQuery, Problem};
use super::{AppState, Caller, Permits};
use fiktiv_routine::audit_trail;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(audit_events))
        .routes(routes!(audit_verify))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    case_id: Option<String>,
    action: Option<String>,
    /// 1..=1000, default 200.
    limit: Option<i64>,
}

/// One audit event: staff ids, case ids, actions and times, never a real identity.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEventView {
    pub seq: i64,
    pub event_id: String,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub case_id: Option<String>,
    pub purpose: Option<String>,
    pub outcome: String,
}

/// Result of a verification of the hash chain.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditVerifyView {
    pub ok: bool,
    pub events: u64,
    /// The first problem found, in words.
    pub first_problem: Option<String>,
}

/// Audit events, newest first.
#[utoipa::path(
    get, path = "/api/v1/audit/events", tag = "audit",
    params(AuditQuery),
    responses((status = 200, body = Vec<AuditEventView>), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = []))
)]
async fn audit_events(
    State(st): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<Vec<AuditEventView>>, ApiError> {
    let permit = st.municipality_permit(&caller, Action::AuditRead)?;
    let case = match q.case_id.as_deref() {
        Some(c) => Some(c.parse::<CaseId>().map_err(|_| ApiError::not_found())?),
        None => None,
    };
    let events = audit_trail::list(&st.ctx.vault, &permit, case, q.action, q.limit).await?;
    Ok(Json(
        events
            .into_iter()
            .map(|e| AuditEventView {
                seq: e.seq,
                event_id: e.event_id,
                at: e.at,
                actor: e.actor,
                action: e.action,
                case_id: e.case_id,
                purpose: e.purpose,
                outcome: e.outcome,
            })
            .collect(),
    ))
}

/// Verify the audit trail's hash chain.
#[utoipa::path(
    get, path = "/api/v1/audit/verify", tag = "audit",
    responses((status = 200, body = AuditVerifyView), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = []))
)]
async fn audit_verify(
    State(st): State<AppState>,
    caller: Caller,
) -> Result<Json<AuditVerifyView>, ApiError> {
    let permit = st.municipality_permit(&caller, Action::AuditVerify)?;
    let r = audit_trail::verify(&st.ctx.vault, &permit).await?;
    Ok(Json(AuditVerifyView {
        ok: r.ok(),
        events: r.events,
        first_problem: r.first_problem.map(|f| f.to_string()),
    }))
}
