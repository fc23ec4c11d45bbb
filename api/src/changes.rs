//! Changing a registered pupil's fictitious identity: the school asks, the central
//! administrator registers, provisioning rewrites the accounts in place.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use fiktiv_policies::{Action, Resource};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::problem::{ApiError, ApiJson, Problem};
use super::{AppState, Caller, Permits};
use fiktiv_routine::fictitious_changes::{self, FictitiousChange, FictitiousChangeInput};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(request_change))
        .routes(routes!(request_guardian_change))
        .routes(routes!(change_queue))
        .routes(routes!(register_change))
}

/// Ask to change the fictitious identity of a registered pupil (a wrong name, a birth
/// date to correct). Checked as the first decision was.
#[utoipa::path(
    post, path = "/api/v1/cases/{case_id}/fictitious-change", tag = "routine",
    params(("case_id" = String, Path, description = "Case id")),
    request_body = FictitiousChangeInput,
    responses(
        (status = 201, body = FictitiousChange),
        (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 404, description = "No such case, or not yours", body = Problem),
        (status = 409, description = "Not registered, unchanged, or a change is waiting", body = Problem),
        (status = 422, body = Problem),
    ),
    security(("bearer" = []))
)]
async fn request_change(
    State(st): State<AppState>,
    caller: Caller,
    Path(case_id): Path<String>,
    ApiJson(body): ApiJson<FictitiousChangeInput>,
) -> Result<(StatusCode, Json<FictitiousChange>), ApiError> {
    let (case, permit) = st
        .case_permit(&caller, &case_id, Action::FictitiousIdentityWrite)
        .await?;
    let out =
        fictitious_changes::request(&st.ctx.vault, &st.ctx.rules, &permit, &case, body).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// Ask to change the fictitious identity of a registered pupil's linked guardian (one
/// with accounts). Checked against that guardian's real identity; registered like the
/// pupil's; the guardian's accounts are rewritten in place.
#[utoipa::path(
    post, path = "/api/v1/cases/{case_id}/guardians/{guardian_no}/fictitious-change", tag = "routine",
    params(
        ("case_id" = String, Path, description = "Case id"),
        ("guardian_no" = i64, Path, description = "1 to 4"),
    ),
    request_body = FictitiousChangeInput,
    responses(
        (status = 201, body = FictitiousChange),
        (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 404, description = "No such case or guardian with accounts, or not yours", body = Problem),
        (status = 409, description = "Not registered, unchanged, or a change is waiting", body = Problem),
        (status = 422, body = Problem),
    ),
    security(("bearer" = []))
)]
async fn request_guardian_change(
    State(st): State<AppState>,
    caller: Caller,
    Path((case_id, n)): Path<(String, String)>,
    ApiJson(body): ApiJson<FictitiousChangeInput>,
) -> Result<(StatusCode, Json<FictitiousChange>), ApiError> {
    let (case, permit) = st
        .case_permit(&caller, &case_id, Action::GuardianWrite)
        .await?;
    let n: i64 = n.parse().map_err(|_| ApiError::not_found())?;
    let out =
        fictitious_changes::request_guardian(&st.ctx.vault, &st.ctx.rules, &permit, &case, n, body)
            .await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// Changes of fictitious identities waiting for registration, oldest first.
#[utoipa::path(
    get, path = "/api/v1/fictitious-changes", tag = "orders",
    responses((status = 200, body = Vec<FictitiousChange>), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = []))
)]
async fn change_queue(
    State(st): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<FictitiousChange>>, ApiError> {
    let permit = st.municipality_permit(&caller, Action::OrderQueueRead)?;
    Ok(Json(
        fictitious_changes::queue(&st.ctx.vault, &permit).await?,
    ))
}

/// Register a change: the new fictitious identity (a new number for a new birth date);
/// every account of the pupil is then rewritten in place.
#[utoipa::path(
    post, path = "/api/v1/fictitious-changes/{change_id}/registration", tag = "orders",
    params(("change_id" = String, Path, description = "Change id")),
    responses(
        (status = 200, body = FictitiousChange),
        (status = 401, body = Problem),
        (status = 404, body = Problem),
        (status = 409, description = "Already registered, or the case is not registered", body = Problem),
    ),
    security(("bearer" = []))
)]
async fn register_change(
    State(st): State<AppState>,
    caller: Caller,
    Path(change_id): Path<String>,
) -> Result<Json<FictitiousChange>, ApiError> {
    let (_, unit) = fictitious_changes::case_of(&st.ctx.vault, &change_id).await?;
    let permit = st
        .ctx
        .authz
        .authorize(&caller.0, Action::OrderRegister, &Resource::Case { unit })
        .map_err(|_| ApiError::not_found())?;
    Ok(Json(
        fictitious_changes::register(&st.ctx.vault, &st.ctx.rules, &permit, &change_id).await?,
    ))
}
