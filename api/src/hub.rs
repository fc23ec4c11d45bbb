//! The SS 12000 hub: a unit's intake items (marked pupils enrolled there with no case),
//! an item's pupil opened to open the case (audited), counts per unit for the central
//! administrator, and how the reads stand.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use fiktiv_policies::Action;
use fiktiv_routine::cases::CaseOpened;
use fiktiv_routine::hub::{self, HubStatus, IntakeItem, IntakePupil, UnitCount};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::problem::{ApiError, Problem};
use super::{AppState, Caller, Permits};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(intake_list))
        .routes(routes!(intake_pupil))
        .routes(routes!(intake_open_case))
        .routes(routes!(intake_counts))
        .routes(routes!(hub_status))
        .routes(routes!(hub_read))
}

/// The unit's intake items: pupils with protected personal data the school
/// administration system has enrolled here, with no case yet. No identity.
#[utoipa::path(
    get, path = "/api/v1/units/{unit}/intake", tag = "hub",
    params(("unit" = String, Path, description = "School unit code")),
    responses((status = 200, body = Vec<IntakeItem>), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = []))
)]
async fn intake_list(
    State(st): State<AppState>,
    caller: Caller,
    Path(unit): Path<String>,
) -> Result<Json<Vec<IntakeItem>>, ApiError> {
    let permit = st.unit_permit(&caller, &unit, Action::IntakeList)?;
    Ok(Json(hub::intake_list(&st.ctx.vault, &permit, &unit).await?))
}

/// An intake item's pupil (name, birth date, number, groups), to open the case. The
/// read is written to the audit trail before the item is opened.
#[utoipa::path(
    get, path = "/api/v1/units/{unit}/intake/{intake_id}", tag = "hub",
    params(
        ("unit" = String, Path, description = "School unit code"),
        ("intake_id" = String, Path, description = "Intake item id")
    ),
    responses(
        (status = 200, body = IntakePupil), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)
    ),
    security(("bearer" = []))
)]
async fn intake_pupil(
    State(st): State<AppState>,
    caller: Caller,
    Path((unit, intake_id)): Path<(String, String)>,
) -> Result<Json<IntakePupil>, ApiError> {
    let permit = st.unit_permit(&caller, &unit, Action::IntakeReadIdentity)?;
    Ok(Json(
        hub::intake_identity(&st.ctx.vault, &permit, &unit, &intake_id).await?,
    ))
}

/// Opens the case of an intake item's pupil from what the school administration
/// system gave (nothing is typed), linked to the hub at once; the item is closed.
/// `409 intake-no-number` when the hub has no valid personal number for the pupil;
/// the refusals of opening a case otherwise (`duplicate-identity`, ...).
#[utoipa::path(
    post, path = "/api/v1/units/{unit}/intake/{intake_id}/case", tag = "hub",
    params(
        ("unit" = String, Path, description = "School unit code"),
        ("intake_id" = String, Path, description = "Intake item id")
    ),
    responses(
        (status = 201, body = CaseOpened), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)
    ),
    security(("bearer" = []))
)]
async fn intake_open_case(
    State(st): State<AppState>,
    caller: Caller,
    Path((unit, intake_id)): Path<(String, String)>,
) -> Result<(StatusCode, Json<CaseOpened>), ApiError> {
    let open = st.unit_permit(&caller, &unit, Action::CaseOpen)?;
    let read = st.unit_permit(&caller, &unit, Action::IntakeReadIdentity)?;
    let opened = hub::open_case_from_intake(&st.ctx.vault, &open, &read, &unit, &intake_id).await?;
    Ok((StatusCode::CREATED, Json(opened)))
}

/// Intake items per unit, counts only: never a pupil.
#[utoipa::path(
    get, path = "/api/v1/intake/counts", tag = "hub",
    responses((status = 200, body = Vec<UnitCount>), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = []))
)]
async fn intake_counts(
    State(st): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<UnitCount>>, ApiError> {
    let permit = st.municipality_permit(&caller, Action::IntakeCounts)?;
    Ok(Json(
        hub::intake_counts_permitted(&st.ctx.vault, &permit).await?,
    ))
}

/// How the reads of the school administration system stand: when the last good read
/// finished, the last try and its error code, the counts.
#[utoipa::path(
    get, path = "/api/v1/hub/status", tag = "hub",
    responses((status = 200, body = HubStatus), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = []))
)]
async fn hub_status(
    State(st): State<AppState>,
    caller: Caller,
) -> Result<Json<HubStatus>, ApiError> {
    let permit = st.municipality_permit(&caller, Action::HubStatusRead)?;
    Ok(Json(hub::status_permitted(&st.ctx.vault, &permit).await?))
}

/// Asks for a full read of the school administration system now. `202`: it runs in the
/// background on one instance; `GET /api/v1/hub/status` shows when it finished and how.
/// `409 hub-not-configured` without `[ss12000]`.
#[utoipa::path(
    post, path = "/api/v1/hub/read", tag = "hub",
    responses(
        (status = 202, body = HubStatus), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 409, body = Problem)
    ),
    security(("bearer" = []))
)]
async fn hub_read(
    State(st): State<AppState>,
    caller: Caller,
) -> Result<(StatusCode, Json<HubStatus>), ApiError> {
    let permit = st.municipality_permit(&caller, Action::HubReadRequest)?;
    if st.ctx.config.ss12000.is_none() {
        return Err(fiktiv_routine::DomainError::Conflict {
            code: "hub-not-configured",
            message: "No school administration system is configured ([ss12000]).",
        }
        .into());
    }
    hub::read_requested(&st.ctx.vault, &permit).await?;
    fiktiv_app::hub::request_full_read(st.ctx.clone())
        .await
        .map_err(|e| fiktiv_routine::DomainError::Internal(e.to_string()))?;
    Ok((
        StatusCode::ACCEPTED,
        Json(hub::status(&st.ctx.vault).await?),
    ))
}
