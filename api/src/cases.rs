//! Cases: open (step 1), list, metadata, the school's identity page, end (step 11).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use fiktiv_policies::{Action, Resource};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::problem::{ApiError, ApiJson, Problem};
use super::{AppState, Caller, Permits};
use fiktiv_delivery::checks::{self, AlertView};
use fiktiv_routine::access_report::{self, AccessReport};
use fiktiv_routine::cases::{self, CaseOpened, CaseSummary, CaseView, IdentityView, OpenCase};
use fiktiv_routine::corrections::{self, IdentityCorrected, IdentityCorrection};
use fiktiv_routine::end::{self, EndInput, Ended};
use fiktiv_routine::labels::{self, LabelInput};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(open_case, list_unit_cases))
        .routes(routes!(list_all_cases))
        .routes(routes!(read_case))
        .routes(routes!(read_identity))
        .routes(routes!(case_alerts))
        .routes(routes!(set_label))
        .routes(routes!(access_report))
        .routes(routes!(end_case))
        .routes(routes!(correct_identity))
        .routes(routes!(close_old_identity))
}

/// Correct the pupil's real identity (a name change, a new personal number). The old
/// identity is kept for the leak scan until it is closed. Nothing is echoed back.
#[utoipa::path(
    post, path = "/api/v1/cases/{case_id}/identity-correction", tag = "cases",
    params(("case_id" = String, Path, description = "Case id")),
    request_body = IdentityCorrection,
    responses(
        (status = 200, body = IdentityCorrected),
        (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 404, description = "No such case, or not yours", body = Problem),
        (status = 409, description = "Unchanged, another case's identity, or the case ended", body = Problem),
        (status = 422, body = Problem),
    ),
    security(("bearer" = []))
)]
async fn correct_identity(
    State(st): State<AppState>,
    caller: Caller,
    Path(case_id): Path<String>,
    ApiJson(body): ApiJson<IdentityCorrection>,
) -> Result<Json<IdentityCorrected>, ApiError> {
    let (case, permit) = st
        .case_permit(&caller, &case_id, Action::CaseCorrectIdentity)
        .await?;
    Ok(Json(
        corrections::correct_identity(&st.ctx.vault, &permit, &case, body).await?,
    ))
}

/// Stop looking for an old identity of the case: its sealed record and blind indexes
/// are deleted (once the leak scan no longer finds it downstream).
#[utoipa::path(
    post, path = "/api/v1/cases/{case_id}/old-identities/{old_id}/close", tag = "cases",
    params(
        ("case_id" = String, Path, description = "Case id"),
        ("old_id" = u32, Path, description = "The old identity's number (`old_identities` of the case)"),
    ),
    responses(
        (status = 204, description = "Closed; nothing of it is left"),
        (status = 401, body = Problem),
        (status = 404, description = "No such case or old identity, or not yours", body = Problem),
    ),
    security(("bearer" = []))
)]
async fn close_old_identity(
    State(st): State<AppState>,
    caller: Caller,
    Path((case_id, old_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let (case, permit) = st
        .case_permit(&caller, &case_id, Action::CaseCloseOldIdentity)
        .await?;
    let old_id: u32 = old_id.parse().map_err(|_| ApiError::not_found())?;
    corrections::close_old_identity(&st.ctx.vault, &permit, &case, old_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Open a case with the pupil's real identity (step 1).
#[utoipa::path(
    post, path = "/api/v1/units/{unit}/cases", tag = "cases",
    params(("unit" = String, Path, description = "School unit code")),
    request_body = OpenCase,
    responses(
        (status = 201, description = "Opened; nothing of the identity is echoed", body = CaseOpened),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 409, description = "The real identity already has a case", body = Problem),
        (status = 422, body = Problem),
    ),
    security(("bearer" = []))
)]
async fn open_case(
    State(st): State<AppState>,
    caller: Caller,
    Path(unit): Path<String>,
    ApiJson(body): ApiJson<OpenCase>,
) -> Result<(StatusCode, Json<CaseOpened>), ApiError> {
    let permit = st.unit_permit(&caller, &unit, Action::CaseOpen)?;
    let out = cases::open(&st.ctx.vault, &permit, &unit, body).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// Cases of one school unit.
#[utoipa::path(
    get, path = "/api/v1/units/{unit}/cases", tag = "cases",
    params(("unit" = String, Path, description = "School unit code")),
    responses((status = 200, body = Vec<CaseSummary>), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = []))
)]
async fn list_unit_cases(
    State(st): State<AppState>,
    caller: Caller,
    Path(unit): Path<String>,
) -> Result<Json<Vec<CaseSummary>>, ApiError> {
    let permit = st.unit_permit(&caller, &unit, Action::CaseList)?;
    // The school's own labels, for those who may read them (the unit, not the central
    // administrator).
    let labels = st
        .ctx
        .authz
        .authorize(
            &caller.0,
            Action::CaseLabel,
            &Resource::Case { unit: unit.clone() },
        )
        .ok();
    Ok(Json(
        cases::list_labelled(&st.ctx.vault, &permit, &unit, labels.as_ref()).await?,
    ))
}

/// Set or remove the school's own label of a case (shown to the unit only).
#[utoipa::path(
    put, path = "/api/v1/cases/{case_id}/label", tag = "cases",
    params(("case_id" = String, Path, description = "Case id")),
    request_body = LabelInput,
    responses(
        (status = 204, description = "Saved"), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)
    ),
    security(("bearer" = []))
)]
async fn set_label(
    State(st): State<AppState>,
    caller: Caller,
    Path(case): Path<String>,
    ApiJson(body): ApiJson<LabelInput>,
) -> Result<StatusCode, ApiError> {
    let (case, permit) = st.case_permit(&caller, &case, Action::CaseLabel).await?;
    labels::set(&st.ctx.vault, &permit, &case, body).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Cases of the whole municipality (metadata only).
#[utoipa::path(
    get, path = "/api/v1/cases", tag = "cases",
    responses((status = 200, body = Vec<CaseSummary>), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = []))
)]
async fn list_all_cases(
    State(st): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<CaseSummary>>, ApiError> {
    let permit = st.municipality_permit(&caller, Action::CaseList)?;
    Ok(Json(cases::list(&st.ctx.vault, &permit, None).await?))
}

/// Case metadata: no real identity, no plan.
#[utoipa::path(
    get, path = "/api/v1/cases/{case_id}", tag = "cases",
    params(("case_id" = String, Path, description = "Case id")),
    responses((status = 200, body = CaseView), (status = 401, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = []))
)]
async fn read_case(
    State(st): State<AppState>,
    caller: Caller,
    Path(case): Path<String>,
) -> Result<Json<CaseView>, ApiError> {
    let (case, permit) = st.case_permit(&caller, &case, Action::CaseRead).await?;
    Ok(Json(cases::read(&st.ctx.vault, &permit, &case).await?))
}

/// The case's open alerts: a leak found, a write stopped, a job that gave up. The case
/// page shows the same to whoever may read the case.
#[utoipa::path(
    get, path = "/api/v1/cases/{case_id}/alerts", tag = "cases",
    params(("case_id" = String, Path, description = "Case id")),
    responses((status = 200, body = Vec<AlertView>), (status = 401, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = []))
)]
async fn case_alerts(
    State(st): State<AppState>,
    caller: Caller,
    Path(case): Path<String>,
) -> Result<Json<Vec<AlertView>>, ApiError> {
    let (case, permit) = st.case_permit(&caller, &case, Action::CaseRead).await?;
    Ok(Json(
        checks::case_alerts(&st.ctx.delivery, &permit, &case).await?,
    ))
}

/// The right-of-access report of a case: what Fiktiv holds about the pupil, which
/// targets received the fictitious pupil, and every read of the real identity (this one
/// included: producing it is such a read, audited as `case.access-report`).
#[utoipa::path(
    get, path = "/api/v1/cases/{case_id}/access-report", tag = "cases",
    params(("case_id" = String, Path, description = "Case id")),
    responses((status = 200, body = AccessReport), (status = 401, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = []))
)]
async fn access_report(
    State(st): State<AppState>,
    caller: Caller,
    Path(case): Path<String>,
) -> Result<Json<AccessReport>, ApiError> {
    let (case, permit) = st
        .case_permit(&caller, &case, Action::CaseAccessReport)
        .await?;
    Ok(Json(
        access_report::produce(&st.ctx.vault, &permit, &case).await?,
    ))
}

/// The school's own case page: the real identity (audited before it is decrypted).
#[utoipa::path(
    get, path = "/api/v1/cases/{case_id}/identity", tag = "cases",
    params(("case_id" = String, Path, description = "Case id")),
    responses(
        (status = 200, body = IdentityView), (status = 401, body = Problem),
        (status = 404, body = Problem), (status = 410, description = "Shredded", body = Problem)
    ),
    security(("bearer" = []))
)]
async fn read_identity(
    State(st): State<AppState>,
    caller: Caller,
    Path(case): Path<String>,
) -> Result<Json<IdentityView>, ApiError> {
    let (case, permit) = st
        .case_permit(&caller, &case, Action::CaseReadIdentity)
        .await?;
    Ok(Json(
        cases::read_identity(&st.ctx.vault, &permit, &case).await?,
    ))
}

/// End the case: the pupil left or the protection was lifted (step 11).
#[utoipa::path(
    post, path = "/api/v1/cases/{case_id}/end", tag = "cases",
    params(("case_id" = String, Path, description = "Case id")),
    request_body = EndInput,
    responses(
        (status = 200, body = Ended), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)
    ),
    security(("bearer" = []))
)]
async fn end_case(
    State(st): State<AppState>,
    caller: Caller,
    Path(case): Path<String>,
    ApiJson(body): ApiJson<EndInput>,
) -> Result<Json<Ended>, ApiError> {
    let (case, permit) = st.case_permit(&caller, &case, Action::CaseEnd).await?;
    Ok(Json(
        end::end(&st.ctx.vault, &st.ctx.rules, &permit, &case, body).await?,
    ))
}
