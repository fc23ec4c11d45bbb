//! Reveal with four eyes (step 10): request, decide, read once.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use fiktiv_policies::{Action, Resource};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::problem::{ApiError, ApiJson, Problem};
use super::{AppState, Caller, Permits};
use fiktiv_routine::cases::IdentityView;
use fiktiv_routine::reveal::{
    self, RevealDecisionInput, RevealListItem, RevealRequestInput, RevealView,
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(request_reveal))
        .routes(routes!(decide_reveal))
        .routes(routes!(open_reveal))
        .routes(routes!(read_reveal))
        .routes(routes!(pending_reveals))
        .routes(routes!(my_reveals))
}

/// Ask to see the real identity behind a case or a fictitious number, with a purpose.
#[utoipa::path(
    post, path = "/api/v1/reveals", tag = "reveal",
    request_body = RevealRequestInput,
    responses(
        (status = 201, body = RevealView), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 404, body = Problem), (status = 410, body = Problem), (status = 422, body = Problem),
        (status = 429, body = Problem)
    ),
    security(("bearer" = []))
)]
async fn request_reveal(
    State(st): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<RevealRequestInput>,
) -> Result<(StatusCode, Json<RevealView>), ApiError> {
    let target = reveal::resolve(&st.ctx.vault, &body).await?;
    let permit = st
        .ctx
        .authz
        .authorize(
            &caller.0,
            Action::RevealRequest,
            &Resource::Case {
                unit: target.unit.clone(),
            },
        )
        .map_err(|_| ApiError::not_found())?;
    let out = reveal::request(
        &st.ctx.vault,
        &permit,
        &target,
        &body.purpose,
        st.ctx.reveal_limit(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// Approve or refuse another person's reveal request (approver role).
#[utoipa::path(
    post, path = "/api/v1/reveals/{reveal_id}/decision", tag = "reveal",
    params(("reveal_id" = String, Path, description = "Reveal request id")),
    request_body = RevealDecisionInput,
    responses(
        (status = 200, body = RevealView), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)
    ),
    security(("bearer" = []))
)]
async fn decide_reveal(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RevealDecisionInput>,
) -> Result<Json<RevealView>, ApiError> {
    let (id, permit) = st
        .reveal_permit(&caller, &id, Action::RevealApprove)
        .await?;
    Ok(Json(
        reveal::decide(&st.ctx.vault, &st.ctx.rules, &permit, &id, body).await?,
    ))
}

/// Open an approved reveal (the requester): the read window (`[reveal] ttl_minutes`)
/// starts now. Until opened, an approved reveal waits `[reveal] open_within_hours`.
/// Opening again changes nothing.
#[utoipa::path(
    post, path = "/api/v1/reveals/{reveal_id}/open", tag = "reveal",
    params(("reveal_id" = String, Path, description = "Reveal request id")),
    responses(
        (status = 200, body = RevealView), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 409, description = "Not approved", body = Problem),
        (status = 410, description = "Expired or already read", body = Problem)
    ),
    security(("bearer" = []))
)]
async fn open_reveal(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<RevealView>, ApiError> {
    let (id, permit) = st.reveal_permit(&caller, &id, Action::RevealRead).await?;
    Ok(Json(
        reveal::open(&st.ctx.vault, &st.ctx.rules, &permit, &id).await?,
    ))
}

/// Read an approved reveal: once, by the requester, within the time limit.
#[utoipa::path(
    get, path = "/api/v1/reveals/{reveal_id}/identity", tag = "reveal",
    params(("reveal_id" = String, Path, description = "Reveal request id")),
    responses(
        (status = 200, body = IdentityView), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 409, description = "Not approved", body = Problem),
        (status = 410, description = "Expired or already read", body = Problem)
    ),
    security(("bearer" = []))
)]
async fn read_reveal(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<IdentityView>, ApiError> {
    let (id, permit) = st.reveal_permit(&caller, &id, Action::RevealRead).await?;
    Ok(Json(reveal::read(&st.ctx.vault, &permit, &id).await?))
}

/// Reveal requests waiting for a decision, oldest first; never the caller's own.
#[utoipa::path(
    get, path = "/api/v1/reveals/pending", tag = "reveal",
    responses(
        (status = 200, body = Vec<RevealListItem>), (status = 401, body = Problem),
        (status = 403, body = Problem)
    ),
    security(("bearer" = []))
)]
async fn pending_reveals(
    State(st): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<RevealListItem>>, ApiError> {
    let permit = st.municipality_permit(&caller, Action::RevealListPending)?;
    Ok(Json(reveal::list_pending(&st.ctx.vault, &permit).await?))
}

/// The caller's own reveal requests and their state (pending, approved, refused, read,
/// expired).
#[utoipa::path(
    get, path = "/api/v1/reveals/mine", tag = "reveal",
    responses(
        (status = 200, body = Vec<RevealListItem>), (status = 401, body = Problem),
        (status = 403, body = Problem)
    ),
    security(("bearer" = []))
)]
async fn my_reveals(
    State(st): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<RevealListItem>>, ApiError> {
    let permit = st.municipality_permit(&caller, Action::RevealListOwn)?;
    Ok(Json(reveal::list_own(&st.ctx.vault, &permit).await?))
}
