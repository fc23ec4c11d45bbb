//! The school's steps on a case: plan (2), login decision (3), fictitious identity and
//! name suggestions (4), guardians (5), order (6), staff told (8).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use fiktiv_policies::Action;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::problem::{ApiError, ApiJson, ApiQuery, Problem};
use super::{AppState, Caller, Permits};
use fiktiv_routine::decisions::{self, DecisionInput, DecisionRecorded};
use fiktiv_routine::fictitious::{self, FictitiousAccepted, FictitiousInput, Suggestions};
use fiktiv_routine::guardians::{
    self, GuardianFictitious, GuardianInput, GuardianRecorded, GuardianRemoval, GuardianWaiting,
};
use fiktiv_routine::orders::{self, OrderInput, OrderSent};
use fiktiv_routine::plans::{self, Plan, PlanView, PlanWritten};
use fiktiv_routine::staff::{self, StaffToldInput, StaffToldRecorded};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(write_plan, read_plan))
        .routes(routes!(write_decision))
        .routes(routes!(write_fictitious))
        .routes(routes!(name_suggestions))
        .routes(routes!(write_guardian))
        .routes(routes!(remove_guardian))
        .routes(routes!(register_guardian))
        .routes(routes!(guardians_waiting))
        .routes(routes!(send_order))
        .routes(routes!(record_staff_told, list_staff_told))
}

/// Write a new version of the action plan (sealed; every version is kept).
#[utoipa::path(
    put, path = "/api/v1/cases/{case_id}/plan", tag = "routine",
    params(("case_id" = String, Path, description = "Case id")),
    request_body = Plan,
    responses(
        (status = 200, body = PlanWritten), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)
    ),
    security(("bearer" = []))
)]
async fn write_plan(
    State(st): State<AppState>,
    caller: Caller,
    Path(case): Path<String>,
    ApiJson(body): ApiJson<Plan>,
) -> Result<Json<PlanWritten>, ApiError> {
    let (case, permit) = st.case_permit(&caller, &case, Action::PlanWrite).await?;
    Ok(Json(
        plans::write(&st.ctx.vault, &permit, &case, body).await?,
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct PlanQuery {
    /// A version number; the newest when left out.
    version: Option<i64>,
}

/// Read the action plan (newest version or a given one) with its history.
#[utoipa::path(
    get, path = "/api/v1/cases/{case_id}/plan", tag = "routine",
    params(("case_id" = String, Path, description = "Case id"), PlanQuery),
    responses(
        (status = 200, body = PlanView), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 409, description = "No plan yet", body = Problem), (status = 410, body = Problem)
    ),
    security(("bearer" = []))
)]
async fn read_plan(
    State(st): State<AppState>,
    caller: Caller,
    Path(case): Path<String>,
    ApiQuery(q): ApiQuery<PlanQuery>,
) -> Result<Json<PlanView>, ApiError> {
    let (case, permit) = st.case_permit(&caller, &case, Action::PlanRead).await?;
    Ok(Json(
        plans::read(&st.ctx.vault, &permit, &case, q.version).await?,
    ))
}

/// Record the digital-login decision.
#[utoipa::path(
    put, path = "/api/v1/cases/{case_id}/login-decision", tag = "routine",
    params(("case_id" = String, Path, description = "Case id")),
    request_body = DecisionInput,
    responses(
        (status = 200, body = DecisionRecorded), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)
    ),
    security(("bearer" = []))
)]
async fn write_decision(
    State(st): State<AppState>,
    caller: Caller,
    Path(case): Path<String>,
    ApiJson(body): ApiJson<DecisionInput>,
) -> Result<Json<DecisionRecorded>, ApiError> {
    let (case, permit) = st
        .case_permit(&caller, &case, Action::LoginDecisionWrite)
        .await?;
    Ok(Json(
        decisions::write(&st.ctx.vault, &permit, &case, body).await?,
    ))
}

/// Decide the pupil's fictitious identity (checked against the real one under policy).
#[utoipa::path(
    put, path = "/api/v1/cases/{case_id}/fictitious-identity", tag = "routine",
    params(("case_id" = String, Path, description = "Case id")),
    request_body = FictitiousInput,
    responses(
        (status = 200, body = FictitiousAccepted), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)
    ),
    security(("bearer" = []))
)]
async fn write_fictitious(
    State(st): State<AppState>,
    caller: Caller,
    Path(case): Path<String>,
    ApiJson(body): ApiJson<FictitiousInput>,
) -> Result<Json<FictitiousAccepted>, ApiError> {
    let (case, permit) = st
        .case_permit(&caller, &case, Action::FictitiousIdentityWrite)
        .await?;
    Ok(Json(
        fictitious::write(&st.ctx.vault, &st.ctx.rules, &permit, &case, body).await?,
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct SuggestionQuery {
    /// How many names of each kind (1..=20, default 5).
    count: Option<usize>,
}

/// Name suggestions from the bundled name statistics of the case's country.
#[utoipa::path(
    get, path = "/api/v1/cases/{case_id}/name-suggestions", tag = "routine",
    params(("case_id" = String, Path, description = "Case id"), SuggestionQuery),
    responses((status = 200, body = Suggestions), (status = 401, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = []))
)]
async fn name_suggestions(
    State(st): State<AppState>,
    caller: Caller,
    Path(case): Path<String>,
    ApiQuery(q): ApiQuery<SuggestionQuery>,
) -> Result<Json<Suggestions>, ApiError> {
    let (case, permit) = st
        .case_permit(&caller, &case, Action::FictitiousIdentityWrite)
        .await?;
    Ok(Json(
        fictitious::suggestions(&st.ctx.vault, &permit, &case, q.count.unwrap_or(5)).await?,
    ))
}

/// Record guardian 1..=4: linked with a fictitious identity of their own, or not linked.
#[utoipa::path(
    put, path = "/api/v1/cases/{case_id}/guardians/{guardian_no}", tag = "routine",
    params(
        ("case_id" = String, Path, description = "Case id"),
        ("guardian_no" = i64, Path, description = "1 to 4"),
    ),
    request_body = GuardianInput,
    responses(
        (status = 200, body = GuardianRecorded), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)
    ),
    security(("bearer" = []))
)]
async fn write_guardian(
    State(st): State<AppState>,
    caller: Caller,
    Path((case, n)): Path<(String, String)>,
    ApiJson(body): ApiJson<GuardianInput>,
) -> Result<Json<GuardianRecorded>, ApiError> {
    let (case, permit) = st
        .case_permit(&caller, &case, Action::GuardianWrite)
        .await?;
    let n: i64 = n.parse().map_err(|_| ApiError::not_found())?;
    Ok(Json(
        guardians::write(&st.ctx.vault, &st.ctx.rules, &permit, &case, n, body).await?,
    ))
}

/// After the order: guardian 1..=4 is no longer the pupil's guardian. Their record and
/// real identity go at once; their accounts are disabled in every target and deleted
/// after the grace period. A new guardian later gets new accounts.
#[utoipa::path(
    post, path = "/api/v1/cases/{case_id}/guardians/{guardian_no}/removal", tag = "routine",
    params(
        ("case_id" = String, Path, description = "Case id"),
        ("guardian_no" = i64, Path, description = "1 to 4"),
    ),
    request_body = GuardianRemoval,
    responses(
        (status = 204), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)
    ),
    security(("bearer" = []))
)]
async fn remove_guardian(
    State(st): State<AppState>,
    caller: Caller,
    Path((case, n)): Path<(String, String)>,
    ApiJson(body): ApiJson<GuardianRemoval>,
) -> Result<StatusCode, ApiError> {
    let (case, permit) = st
        .case_permit(&caller, &case, Action::GuardianWrite)
        .await?;
    let n: i64 = n.parse().map_err(|_| ApiError::not_found())?;
    guardians::remove(&st.ctx.vault, &permit, &case, n, body).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// After the order: register a new guardian the school recorded (a guardian with no
/// accounts yet). Fiktiv picks the guardian's fictitious number; provisioning creates
/// their accounts and relates the pupil to them.
#[utoipa::path(
    post, path = "/api/v1/cases/{case_id}/guardians/{guardian_no}/registration", tag = "routine",
    params(
        ("case_id" = String, Path, description = "Case id"),
        ("guardian_no" = i64, Path, description = "1 to 4"),
    ),
    responses(
        (status = 200, body = GuardianFictitious), (status = 401, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)
    ),
    security(("bearer" = []))
)]
async fn register_guardian(
    State(st): State<AppState>,
    caller: Caller,
    Path((case, n)): Path<(String, String)>,
) -> Result<Json<GuardianFictitious>, ApiError> {
    let (case, permit) = st
        .case_permit(&caller, &case, Action::OrderRegister)
        .await?;
    let n: i64 = n.parse().map_err(|_| ApiError::not_found())?;
    Ok(Json(
        guardians::register(&st.ctx.vault, &st.ctx.rules, &permit, &case, n).await?,
    ))
}

/// New guardians of registered pupils waiting for the central administrator to register
/// them (fictitious data only), oldest first.
#[utoipa::path(
    get, path = "/api/v1/guardian-registrations", tag = "routine",
    responses(
        (status = 200, body = Vec<GuardianWaiting>), (status = 401, body = Problem),
        (status = 403, body = Problem)
    ),
    security(("bearer" = []))
)]
async fn guardians_waiting(
    State(st): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<GuardianWaiting>>, ApiError> {
    let permit = st.municipality_permit(&caller, Action::OrderQueueRead)?;
    Ok(Json(guardians::waiting(&st.ctx.vault, &permit).await?))
}

/// Send the order to the central administrator (fictitious data only).
#[utoipa::path(
    post, path = "/api/v1/cases/{case_id}/order", tag = "routine",
    params(("case_id" = String, Path, description = "Case id")),
    request_body = OrderInput,
    responses(
        (status = 201, body = OrderSent), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)
    ),
    security(("bearer" = []))
)]
async fn send_order(
    State(st): State<AppState>,
    caller: Caller,
    Path(case): Path<String>,
    ApiJson(body): ApiJson<OrderInput>,
) -> Result<(StatusCode, Json<OrderSent>), ApiError> {
    let (case, permit) = st.case_permit(&caller, &case, Action::OrderSend).await?;
    let out = orders::send(&st.ctx.vault, &permit, &case, body).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// Record who on the staff was told of the plan, and when.
#[utoipa::path(
    post, path = "/api/v1/cases/{case_id}/staff-told", tag = "routine",
    params(("case_id" = String, Path, description = "Case id")),
    request_body = StaffToldInput,
    responses(
        (status = 201, body = StaffToldRecorded), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)
    ),
    security(("bearer" = []))
)]
async fn record_staff_told(
    State(st): State<AppState>,
    caller: Caller,
    Path(case): Path<String>,
    ApiJson(body): ApiJson<StaffToldInput>,
) -> Result<(StatusCode, Json<StaffToldRecorded>), ApiError> {
    let (case, permit) = st
        .case_permit(&caller, &case, Action::StaffToldWrite)
        .await?;
    let out = staff::record(&st.ctx.vault, &permit, &case, body).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// Read back who on the staff was told of the plan, and when (every record, oldest first).
#[utoipa::path(
    get, path = "/api/v1/cases/{case_id}/staff-told", tag = "routine",
    params(("case_id" = String, Path, description = "Case id")),
    responses(
        (status = 200, body = Vec<StaffToldRecorded>), (status = 401, body = Problem),
        (status = 404, body = Problem)
    ),
    security(("bearer" = []))
)]
async fn list_staff_told(
    State(st): State<AppState>,
    caller: Caller,
    Path(case): Path<String>,
) -> Result<Json<Vec<StaffToldRecorded>>, ApiError> {
    let (case, permit) = st
        .case_permit(&caller, &case, Action::StaffToldRead)
        .await?;
    Ok(Json(staff::list(&st.ctx.vault, &permit, &case).await?))
}
