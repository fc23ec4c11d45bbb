//! Leaving the municipality: the case transfer package (docs/LIFECYCLE.md). The
//! sending school makes it for the receiving Fiktiv's public key, with the written
//! consent; the receiving school imports it into a unit of its own.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use fiktiv_policies::Action;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::problem::{ApiError, ApiJson, Problem};
use super::{AppState, Caller, Permits};
use fiktiv_routine::transfer::{self, ExportInput, Imported, Package};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(make_package))
        .routes(routes!(import_package))
}

/// Seal the case for another municipality's Fiktiv, with the written consent (the plan
/// only with consent to it). The case then ends here ("left the municipality"). The
/// answer is the package, to be handed to the receiving municipality.
#[utoipa::path(
    post, path = "/api/v1/cases/{case_id}/transfer-package", tag = "cases",
    params(("case_id" = String, Path, description = "Case id")),
    request_body = ExportInput,
    responses(
        (status = 200, description = "The package; nothing in it is readable without the receiver's key", body = Package),
        (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 404, description = "No such case, or not yours", body = Problem),
        (status = 409, description = "The case ended, or [transfer] municipality is not set", body = Problem),
        (status = 422, body = Problem),
    ),
    security(("bearer" = []))
)]
async fn make_package(
    State(st): State<AppState>,
    caller: Caller,
    Path(case_id): Path<String>,
    ApiJson(body): ApiJson<ExportInput>,
) -> Result<Json<Package>, ApiError> {
    let (case, permit) = st
        .case_permit(&caller, &case_id, Action::CaseTransferOut)
        .await?;
    Ok(Json(
        transfer::export(
            &st.ctx.vault,
            &st.ctx.rules,
            &st.ctx.config.transfer,
            &permit,
            &case,
            body,
        )
        .await?,
    ))
}

/// Import a package from another municipality as a new case in the unit. Refused, and
/// nothing written, when it is for another Fiktiv, from a sender not configured, changed,
/// imported before, or beyond its consent.
#[utoipa::path(
    post, path = "/api/v1/units/{unit}/transfer-imports", tag = "cases",
    params(("unit" = String, Path, description = "The receiving school unit's code")),
    request_body = Package,
    responses(
        (status = 201, body = Imported),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 409, description = "transfer-not-for-us, transfer-sender-unknown, transfer-tampered, transfer-malformed, transfer-replayed, transfer-consent-scope, duplicate-identity", body = Problem),
        (status = 422, body = Problem),
    ),
    security(("bearer" = []))
)]
async fn import_package(
    State(st): State<AppState>,
    caller: Caller,
    Path(unit): Path<String>,
    ApiJson(body): ApiJson<Package>,
) -> Result<(StatusCode, Json<Imported>), ApiError> {
    let permit = st.unit_permit(&caller, &unit, Action::CaseTransferIn)?;
    let out =
        transfer::import(&st.ctx.vault, &st.ctx.config.transfer, &permit, &unit, body).await?;
    Ok((StatusCode::CREATED, Json(out)))
}
