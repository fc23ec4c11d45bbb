//! Moving a case to another unit and reopening an ended one: the receiving unit asks,
//! the case's unit or an approver decides (docs/LIFECYCLE.md).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use fiktiv_policies::{Action, Resource};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::problem::{ApiError, ApiJson, Problem};
use super::{AppState, Caller, Permits};
use fiktiv_routine::case_requests::{
    self, CaseRequestDecision, CaseRequestId, CaseRequestInput, CaseRequestView,
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(make_request, list_unit_requests))
        .routes(routes!(list_pending_requests))
        .routes(routes!(decide_request))
}

/// Ask for a pupil's case: to take it over (the pupil moves to this unit) or to reopen
/// it (the pupil comes back after it ended). The case is found by the personal number,
/// which is not stored; where the case is now is not said.
#[utoipa::path(
    post, path = "/api/v1/units/{unit}/case-requests", tag = "cases",
    params(("unit" = String, Path, description = "The receiving school unit's code")),
    request_body = CaseRequestInput,
    responses(
        (status = 201, description = "Asked; the case's unit or an approver decides", body = CaseRequestView),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 409, description = "No case has this number, the case is already here, or a request is waiting", body = Problem),
        (status = 422, body = Problem),
    ),
    security(("bearer" = []))
)]
async fn make_request(
    State(st): State<AppState>,
    caller: Caller,
    Path(unit): Path<String>,
    ApiJson(body): ApiJson<CaseRequestInput>,
) -> Result<(StatusCode, Json<CaseRequestView>), ApiError> {
    let permit = st.unit_permit(&caller, &unit, Action::CaseRequest)?;
    let out = case_requests::request(&st.ctx.vault, &st.ctx.rules, &permit, &unit, body).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// A unit's case requests: those for its cases (to decide) and those it made.
#[utoipa::path(
    get, path = "/api/v1/units/{unit}/case-requests", tag = "cases",
    params(("unit" = String, Path, description = "School unit code")),
    responses((status = 200, body = Vec<CaseRequestView>), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = []))
)]
async fn list_unit_requests(
    State(st): State<AppState>,
    caller: Caller,
    Path(unit): Path<String>,
) -> Result<Json<Vec<CaseRequestView>>, ApiError> {
    let permit = st.unit_permit(&caller, &unit, Action::CaseRequestList)?;
    Ok(Json(
        case_requests::list_for_unit(&st.ctx.vault, &permit, &unit).await?,
    ))
}

/// Every case request waiting for a decision (approvers; their own left out).
#[utoipa::path(
    get, path = "/api/v1/case-requests", tag = "cases",
    responses((status = 200, body = Vec<CaseRequestView>), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = []))
)]
async fn list_pending_requests(
    State(st): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<CaseRequestView>>, ApiError> {
    let permit = st.municipality_permit(&caller, Action::CaseRequestList)?;
    Ok(Json(
        case_requests::list_pending(&st.ctx.vault, &permit).await?,
    ))
}

/// Accept or refuse a case request. Accepting moves the case (and reopens an ended
/// one) in one step; provisioning then moves the accounts in place.
#[utoipa::path(
    post, path = "/api/v1/case-requests/{request_id}/decision", tag = "cases",
    params(("request_id" = String, Path, description = "Request id")),
    request_body = CaseRequestDecision,
    responses(
        (status = 200, body = CaseRequestView),
        (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 404, description = "No such request, or not yours to decide", body = Problem),
        (status = 409, description = "Already decided, or the case changed since", body = Problem),
        (status = 410, description = "Expired", body = Problem),
        (status = 422, body = Problem),
    ),
    security(("bearer" = []))
)]
async fn decide_request(
    State(st): State<AppState>,
    caller: Caller,
    Path(request): Path<String>,
    ApiJson(body): ApiJson<CaseRequestDecision>,
) -> Result<Json<CaseRequestView>, ApiError> {
    let id: CaseRequestId = request.parse().map_err(|_| ApiError::not_found())?;
    let (unit, requested_by) = case_requests::lookup(&st.ctx.vault, &id).await?;
    let permit = st
        .ctx
        .authz
        .authorize(
            &caller.0,
            Action::CaseRequestDecide,
            &Resource::CaseRequest { unit, requested_by },
        )
        .map_err(|_| ApiError::not_found())?;
    Ok(Json(
        case_requests::decide(&st.ctx.vault, &permit, &id, body).await?,
    ))
}
