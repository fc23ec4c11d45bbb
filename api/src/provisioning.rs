//! Provisioning over HTTP: targets, plan/apply, jobs, reconciliation, status, alerts,
//! and the two checks (account check, leak scan) as runs with progress. Thin handlers:
//! authorize with the one `Authorizer`, call one function of `fiktiv_delivery`,
//! map the error. Unknown targets, jobs, alerts and runs answer 404 with their own
//! problem type, after authorization (municipality-wide ids are not secret).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use fiktiv_policies::Action;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::problem::{ApiError, ApiJson, ApiQuery, Problem};
use super::{AppState, Caller, Permits};
use fiktiv_delivery::checks::{self, AlertFilter, AlertView, RunView, StatusView};
use fiktiv_delivery::config::TargetSpec;
use fiktiv_delivery::jobs::{self, JobFilter, JobView};
use fiktiv_delivery::sync::{self, ApplyResult, SyncPlan};
use fiktiv_delivery::targets::{self, TargetView, TestReport};
use fiktiv_routine::DomainError;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_targets))
        .routes(routes!(put_target, delete_target))
        .routes(routes!(test_target))
        .routes(routes!(account_check_target))
        .routes(routes!(sync_plan))
        .routes(routes!(sync_apply))
        .routes(routes!(sync_reconcile))
        .routes(routes!(list_jobs))
        .routes(routes!(retry_job))
        .routes(routes!(provisioning_status))
        .routes(routes!(list_alerts))
        .routes(routes!(acknowledge_alert))
        .routes(routes!(get_run))
        .routes(routes!(leak_scan_all))
        .routes(routes!(account_check_case))
        .routes(routes!(account_check_case_run))
        .routes(routes!(leak_scan_case))
        .routes(routes!(leak_scan_case_run))
}

/// A 404 with its own type for an unknown municipality-wide id.
fn no_such(slug: &'static str, detail: &'static str) -> impl Fn(DomainError) -> ApiError {
    move |e| match e {
        DomainError::NotFound => ApiError::new(StatusCode::NOT_FOUND, slug, "Not found", detail),
        other => other.into(),
    }
}

fn no_such_target() -> impl Fn(DomainError) -> ApiError {
    no_such("no-such-target", "There is no target with this name.")
}

// ---------------------------------------------------------------------------
// Targets
// ---------------------------------------------------------------------------

/// Every target in force: from the configuration file, made through the API, or the
/// embedded default. Credentials are never shown.
#[utoipa::path(
    get, path = "/api/v1/targets", tag = "provisioning",
    responses((status = 200, body = Vec<TargetView>), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = []))
)]
async fn list_targets(
    State(st): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<TargetView>>, ApiError> {
    let permit = st.municipality_permit(&caller, Action::TargetsManage)?;
    Ok(Json(
        targets::list_permitted(&st.ctx.delivery, &permit).await?,
    ))
}

/// Create or replace a target made through the API. The credential (`bind_password`
/// or `token`) is write-only and sealed at rest; leave it out to keep the stored one.
/// A target configured in the file cannot be changed here (409 `target-in-file`).
#[utoipa::path(
    put, path = "/api/v1/targets/{target}", tag = "provisioning",
    params(("target" = String, Path, description = "Target name")),
    request_body = TargetSpec,
    responses(
        (status = 200, body = TargetView), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)
    ),
    security(("bearer" = []))
)]
async fn put_target(
    State(st): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<TargetSpec>,
) -> Result<Json<TargetView>, ApiError> {
    let permit = st.municipality_permit(&caller, Action::TargetsManage)?;
    Ok(Json(
        targets::put(&st.ctx.delivery, &permit, &name, body).await?,
    ))
}

/// Remove a target made through the API; its open jobs fail with a clear reason.
#[utoipa::path(
    delete, path = "/api/v1/targets/{target}", tag = "provisioning",
    params(("target" = String, Path, description = "Target name")),
    responses(
        (status = 204, description = "Removed"), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)
    ),
    security(("bearer" = []))
)]
async fn delete_target(
    State(st): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let permit = st.municipality_permit(&caller, Action::TargetsManage)?;
    targets::delete(&st.ctx.delivery, &permit, &name)
        .await
        .map_err(no_such_target())?;
    Ok(StatusCode::NO_CONTENT)
}

/// Test a target: connectivity, TLS, credentials, bases, schema (and, for LDAP, write
/// permission with a probe entry that is removed again), with a diagnosis per failure.
#[utoipa::path(
    post, path = "/api/v1/targets/{target}/test", tag = "provisioning",
    params(("target" = String, Path, description = "Target name")),
    responses(
        (status = 200, body = TestReport), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)
    ),
    security(("bearer" = []))
)]
async fn test_target(
    State(st): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<TestReport>, ApiError> {
    let permit = st.municipality_permit(&caller, Action::TargetsManage)?;
    match targets::test_permitted(&st.ctx.delivery, &permit, &name).await? {
        Some(d) => Ok(Json(d.into())),
        None => Err(no_such_target()(DomainError::NotFound)),
    }
}

/// Start the account check of every account on one target (read back from the
/// target). Returns the run; poll `GET /api/v1/provisioning/runs/{run_id}`.
#[utoipa::path(
    post, path = "/api/v1/targets/{target}/account-check", tag = "checks",
    params(("target" = String, Path, description = "Target name")),
    responses(
        (status = 202, body = RunView), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 429, body = Problem)
    ),
    security(("bearer" = []))
)]
async fn account_check_target(
    State(st): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<RunView>), ApiError> {
    let permit = st.municipality_permit(&caller, Action::ProvisioningStatusRead)?;
    let run = checks::start_account_check_target(&st.ctx.delivery, &permit, &name)
        .await
        .map_err(no_such_target())?;
    Ok((StatusCode::ACCEPTED, Json(run)))
}

// ---------------------------------------------------------------------------
// Plan, apply, jobs, reconciliation
// ---------------------------------------------------------------------------

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct PlanQuery {
    /// Plan as `apply` with `force` would (removals beyond the share are not held back).
    force: Option<bool>,
}

/// What an apply would do, per target: create, update, disable, delete, waiting out
/// the grace period, and removals held back by the safety check. Changes nothing.
#[utoipa::path(
    get, path = "/api/v1/sync/plan", tag = "provisioning",
    params(PlanQuery),
    responses((status = 200, body = SyncPlan), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = []))
)]
async fn sync_plan(
    State(st): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<PlanQuery>,
) -> Result<Json<SyncPlan>, ApiError> {
    let permit = st.municipality_permit(&caller, Action::SyncPlan)?;
    Ok(Json(
        sync::plan_permitted(&st.ctx.delivery, &permit, q.force.unwrap_or(false)).await?,
    ))
}

/// Apply input.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplyInput {
    /// Remove even beyond the configured share of a target's managed accounts.
    #[serde(default)]
    pub force: bool,
}

/// Plan and queue the jobs that carry the plan out. Removals beyond the configured
/// share are refused unless `force`.
#[utoipa::path(
    post, path = "/api/v1/sync/apply", tag = "provisioning",
    request_body = ApplyInput,
    responses((status = 200, body = ApplyResult), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = []))
)]
async fn sync_apply(
    State(st): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<ApplyInput>,
) -> Result<Json<ApplyResult>, ApiError> {
    let permit = st.municipality_permit(&caller, Action::SyncApply)?;
    Ok(Json(
        sync::apply(&st.ctx.delivery, &permit, body.force).await?,
    ))
}

/// Start a reconciliation now: read every managed account back, repair drift, report
/// it. Poll `GET /api/v1/provisioning/runs/{run_id}`.
#[utoipa::path(
    post, path = "/api/v1/sync/reconcile", tag = "provisioning",
    responses((status = 202, body = RunView), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = []))
)]
async fn sync_reconcile(
    State(st): State<AppState>,
    caller: Caller,
) -> Result<(StatusCode, Json<RunView>), ApiError> {
    let permit = st.municipality_permit(&caller, Action::SyncApply)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(sync::start_reconcile(&st.ctx.delivery, &permit).await?),
    ))
}

/// The outbox jobs (newest change first), e.g. `?state=failed`.
#[utoipa::path(
    get, path = "/api/v1/sync/jobs", tag = "provisioning",
    params(JobFilter),
    responses((status = 200, body = Vec<JobView>), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []))
)]
async fn list_jobs(
    State(st): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<JobFilter>,
) -> Result<Json<Vec<JobView>>, ApiError> {
    let permit = st.municipality_permit(&caller, Action::ProvisioningStatusRead)?;
    Ok(Json(
        jobs::list_permitted(&st.ctx.delivery, &permit, &q).await?,
    ))
}

/// Retry a job now (a failed one, typically), with its attempts reset.
#[utoipa::path(
    post, path = "/api/v1/sync/jobs/{job_id}/retry", tag = "provisioning",
    params(("job_id" = String, Path, description = "Job id")),
    responses((status = 200, body = JobView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = []))
)]
async fn retry_job(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    let permit = st.municipality_permit(&caller, Action::SyncApply)?;
    Ok(Json(
        jobs::retry(&st.ctx.delivery, &permit, &id)
            .await
            .map_err(no_such("no-such-job", "There is no job with this id."))?,
    ))
}

// ---------------------------------------------------------------------------
// Status, alerts, runs
// ---------------------------------------------------------------------------

/// Provisioning at a glance: targets and their jobs by state, open alerts, the last
/// reconciliation and leak scan.
#[utoipa::path(
    get, path = "/api/v1/provisioning/status", tag = "provisioning",
    responses((status = 200, body = StatusView), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = []))
)]
async fn provisioning_status(
    State(st): State<AppState>,
    caller: Caller,
) -> Result<Json<StatusView>, ApiError> {
    let permit = st.municipality_permit(&caller, Action::ProvisioningStatusRead)?;
    Ok(Json(checks::status(&st.ctx.delivery, &permit).await?))
}

/// Alerts: egress-guard blocks, leak-scan findings, jobs that gave up.
#[utoipa::path(
    get, path = "/api/v1/provisioning/alerts", tag = "provisioning",
    params(AlertFilter),
    responses((status = 200, body = Vec<AlertView>), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = []))
)]
async fn list_alerts(
    State(st): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AlertFilter>,
) -> Result<Json<Vec<AlertView>>, ApiError> {
    let permit = st.municipality_permit(&caller, Action::ProvisioningStatusRead)?;
    Ok(Json(
        checks::alerts_permitted(&st.ctx.delivery, &permit, &q).await?,
    ))
}

/// Acknowledge an alert (audited).
#[utoipa::path(
    post, path = "/api/v1/provisioning/alerts/{alert_id}/acknowledge", tag = "provisioning",
    params(("alert_id" = String, Path, description = "Alert id")),
    responses((status = 200, body = AlertView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = []))
)]
async fn acknowledge_alert(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<AlertView>, ApiError> {
    let permit = st.municipality_permit(&caller, Action::SyncApply)?;
    Ok(Json(
        checks::acknowledge(&st.ctx.delivery, &permit, &id)
            .await
            .map_err(no_such("no-such-alert", "There is no alert with this id."))?,
    ))
}

/// A run (account check, leak scan, reconciliation): state, progress and, when done,
/// its result.
#[utoipa::path(
    get, path = "/api/v1/provisioning/runs/{run_id}", tag = "checks",
    params(("run_id" = String, Path, description = "Run id")),
    responses((status = 200, body = RunView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = []))
)]
async fn get_run(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<RunView>, ApiError> {
    let permit = st.municipality_permit(&caller, Action::ProvisioningStatusRead)?;
    Ok(Json(
        checks::run_permitted(&st.ctx.delivery, &permit, &id)
            .await
            .map_err(no_such("no-such-run", "There is no run with this id."))?,
    ))
}

/// Start a leak scan of every target for every case. Reads every entry, compares
/// locally, never sends a real identifier. Poll `GET /api/v1/provisioning/runs/{run_id}`.
#[utoipa::path(
    post, path = "/api/v1/leak-scan", tag = "checks",
    responses(
        (status = 202, body = RunView), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 429, body = Problem)
    ),
    security(("bearer" = []))
)]
async fn leak_scan_all(
    State(st): State<AppState>,
    caller: Caller,
) -> Result<(StatusCode, Json<RunView>), ApiError> {
    let permit = st.municipality_permit(&caller, Action::LeakScan)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(checks::start_leak_scan(&st.ctx.delivery, &permit, None).await?),
    ))
}

// ---------------------------------------------------------------------------
// Per case (the school)
// ---------------------------------------------------------------------------

/// Start the account check of a case: each fictitious person's account on each target,
/// read back from the target. Poll `GET /api/v1/cases/{case_id}/account-check/{run_id}`.
#[utoipa::path(
    post, path = "/api/v1/cases/{case_id}/account-check", tag = "checks",
    params(("case_id" = String, Path, description = "Case id")),
    responses(
        (status = 202, body = RunView), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 429, body = Problem)
    ),
    security(("bearer" = []))
)]
async fn account_check_case(
    State(st): State<AppState>,
    caller: Caller,
    Path(case): Path<String>,
) -> Result<(StatusCode, Json<RunView>), ApiError> {
    let (case, permit) = st.case_permit(&caller, &case, Action::AccountCheck).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(checks::start_account_check_case(&st.ctx.delivery, &permit, &case).await?),
    ))
}

/// An account check of the case: progress and, when done, the accounts.
#[utoipa::path(
    get, path = "/api/v1/cases/{case_id}/account-check/{run_id}", tag = "checks",
    params(("case_id" = String, Path, description = "Case id"), ("run_id" = String, Path, description = "Run id")),
    responses((status = 200, body = RunView), (status = 401, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = []))
)]
async fn account_check_case_run(
    State(st): State<AppState>,
    caller: Caller,
    Path((case, run)): Path<(String, String)>,
) -> Result<Json<RunView>, ApiError> {
    let (case, permit) = st.case_permit(&caller, &case, Action::AccountCheck).await?;
    Ok(Json(
        checks::case_run(&st.ctx.delivery, &permit, &case, &run)
            .await
            .map_err(no_such(
                "no-such-run",
                "There is no such run for this case.",
            ))?,
    ))
}

/// Start a leak scan for the case: is the real pupil anywhere downstream? Every target
/// is read whole and compared locally; the answer is clean or found at (target,
/// entry), never the value. Poll `GET /api/v1/cases/{case_id}/leak-scan/{run_id}`.
#[utoipa::path(
    post, path = "/api/v1/cases/{case_id}/leak-scan", tag = "checks",
    params(("case_id" = String, Path, description = "Case id")),
    responses(
        (status = 202, body = RunView), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 429, body = Problem)
    ),
    security(("bearer" = []))
)]
async fn leak_scan_case(
    State(st): State<AppState>,
    caller: Caller,
    Path(case): Path<String>,
) -> Result<(StatusCode, Json<RunView>), ApiError> {
    let (case, permit) = st.case_permit(&caller, &case, Action::LeakScan).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(checks::start_leak_scan(&st.ctx.delivery, &permit, Some(&case)).await?),
    ))
}

/// A leak scan of the case: progress and, when done, the result.
#[utoipa::path(
    get, path = "/api/v1/cases/{case_id}/leak-scan/{run_id}", tag = "checks",
    params(("case_id" = String, Path, description = "Case id"), ("run_id" = String, Path, description = "Run id")),
    responses((status = 200, body = RunView), (status = 401, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = []))
)]
async fn leak_scan_case_run(
    State(st): State<AppState>,
    caller: Caller,
    Path((case, run)): Path<(String, String)>,
) -> Result<Json<RunView>, ApiError> {
    let (case, permit) = st.case_permit(&caller, &case, Action::LeakScan).await?;
    Ok(Json(
        checks::case_run(&st.ctx.delivery, &permit, &case, &run)
            .await
            .map_err(no_such(
                "no-such-run",
                "There is no such run for this case.",
            ))?,
    ))
}
