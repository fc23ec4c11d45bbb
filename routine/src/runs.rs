//! The store of the runs (`prov_runs`): account checks, leak scans and
//! reconciliations, with their progress counters, their lease and, at the end, their
//! result. Delivery (`fiktiv-delivery`) runs them; every row goes through here.
//!
//! The cap on account checks and leak scans running at once (`[limits]
//! concurrent_runs`) is counted and claimed in [`open`], inside the transaction that
//! records the run, serialized by [`crate::lock_limit`]: two requests at once cannot
//! both pass it, whichever way they came in (API, web UI, CLI).

use chrono::{DateTime, Utc};
use fiktiv_vault::audit::fmt_time;
use fiktiv_vault::{CaseId, Vault};
use serde::Serialize;
use sqlx::AnyConnection;
use utoipa::ToSchema;

use crate::{DomainError, DomainResult};

/// Progress counters of a run.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Progress {
    pub targets_total: i64,
    pub targets_done: i64,
    /// Accounts or entries read so far.
    pub items_done: i64,
    /// Problems found so far (accounts not as expected, leak findings, drift).
    pub findings: i64,
}

/// A run and, when it is done, its result.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RunView {
    pub run_id: String,
    /// `account-check`, `leak-scan` or `reconcile`.
    pub kind: String,
    /// `running`, `done` or `failed`.
    pub state: String,
    pub case_id: Option<String>,
    pub target: Option<String>,
    pub started_by: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub progress: Progress,
    /// `AccountCheckResult`, `LeakScanResult` or `ApplyResult` (reconcile), when done.
    #[schema(value_type = Option<Object>)]
    pub result: Option<serde_json::Value>,
    /// Why the run failed (fixed text).
    pub error: Option<String>,
}

/// A run's row as stored.
#[derive(Debug, sqlx::FromRow)]
struct RunRow {
    run_id: String,
    kind: String,
    state: String,
    case_id: Option<String>,
    target: Option<String>,
    started_by: String,
    started_at: String,
    finished_at: Option<String>,
    targets_total: i64,
    targets_done: i64,
    items_done: i64,
    findings: i64,
    result_json: Option<String>,
    error: Option<String>,
}

impl From<RunRow> for RunView {
    fn from(r: RunRow) -> Self {
        RunView {
            run_id: r.run_id,
            kind: r.kind,
            state: r.state,
            case_id: r.case_id,
            target: r.target,
            started_by: r.started_by,
            started_at: r.started_at,
            finished_at: r.finished_at,
            progress: Progress {
                targets_total: r.targets_total,
                targets_done: r.targets_done,
                items_done: r.items_done,
                findings: r.findings,
            },
            result: r.result_json.and_then(|s| serde_json::from_str(&s).ok()),
            error: r.error,
        }
    }
}

/// A run to record.
#[derive(Debug, Clone, Copy)]
pub struct NewRun<'a> {
    pub run_id: &'a str,
    /// `account-check`, `leak-scan` or `reconcile`.
    pub kind: &'a str,
    pub case: Option<(&'a CaseId, &'a str)>,
    pub target: Option<&'a str>,
    pub started_by: &'a str,
    pub targets_total: i64,
    /// The instance that runs it, and until when its lease holds.
    pub holder: &'a str,
    pub lease_until: DateTime<Utc>,
}

/// Records a run as running, in the caller's transaction. With `cap`, refuses it
/// (`runs-busy`) when `cap` account checks and leak scans are running already: counted
/// and claimed under one advisory lock (PostgreSQL) or the writer's lock (SQLite), so
/// two at once cannot both pass. Reconciliations are not counted.
pub async fn open(
    vault: &Vault,
    conn: &mut AnyConnection,
    run: &NewRun<'_>,
    cap: Option<u32>,
) -> DomainResult<()> {
    if let Some(cap) = cap {
        crate::lock_limit(vault, conn, crate::LIMIT_LOCK_RUNS).await?;
        let running: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM prov_runs WHERE state = 'running' AND kind <> 'reconcile'",
        )
        .fetch_one(&mut *conn)
        .await?;
        if running >= i64::from(cap.max(1)) {
            return Err(DomainError::Busy {
                code: "runs-busy",
                message: "Too many account checks and leak scans are running; start this one \
                          when one has finished.",
            });
        }
    }
    sqlx::query(
        "INSERT INTO prov_runs (run_id, kind, case_id, unit, target, state, started_by, started_at, \
         targets_total, targets_done, items_done, findings, holder, lease_until) \
         VALUES ($1, $2, $3, $4, $5, 'running', $6, $7, $8, 0, 0, 0, $9, $10)",
    )
    .bind(run.run_id)
    .bind(run.kind)
    .bind(run.case.map(|(c, _)| c.to_string()))
    .bind(run.case.map(|(_, u)| u.to_owned()))
    .bind(run.target)
    .bind(run.started_by)
    .bind(fmt_time(vault.now()))
    .bind(run.targets_total)
    .bind(run.holder)
    .bind(fmt_time(run.lease_until))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Records a run's progress counters.
pub async fn record_progress(
    vault: &Vault,
    run_id: &str,
    targets_done: i64,
    items_done: i64,
    findings: i64,
) -> DomainResult<()> {
    sqlx::query(
        "UPDATE prov_runs SET targets_done = $1, items_done = $2, findings = $3 WHERE run_id = $4",
    )
    .bind(targets_done)
    .bind(items_done)
    .bind(findings)
    .bind(run_id)
    .execute(vault.db().pool())
    .await?;
    Ok(())
}

/// Renews a running run's lease.
pub async fn renew_lease(vault: &Vault, run_id: &str, until: DateTime<Utc>) -> DomainResult<()> {
    sqlx::query("UPDATE prov_runs SET lease_until = $1 WHERE run_id = $2 AND state = 'running'")
        .bind(fmt_time(until))
        .bind(run_id)
        .execute(vault.db().pool())
        .await?;
    Ok(())
}

/// Records a run's end: its result (as JSON) and findings, or that it failed with a
/// fixed reason.
pub async fn finish(
    vault: &Vault,
    run_id: &str,
    result: Result<(&serde_json::Value, i64), &'static str>,
) -> DomainResult<()> {
    let now = fmt_time(vault.now());
    let q = match result {
        Ok((v, findings)) => sqlx::query(
            "UPDATE prov_runs SET state = 'done', finished_at = $1, result_json = $2, findings = $3, \
             targets_done = targets_total WHERE run_id = $4",
        )
        .bind(now)
        .bind(v.to_string())
        .bind(findings)
        .bind(run_id),
        Err(reason) => sqlx::query(
            "UPDATE prov_runs SET state = 'failed', finished_at = $1, error = $2 WHERE run_id = $3",
        )
        .bind(now)
        .bind(reason)
        .bind(run_id),
    };
    q.execute(vault.db().pool()).await?;
    Ok(())
}

/// Marks failed every run whose lease ran out (its instance stopped). Returns how many.
pub async fn recover(vault: &Vault) -> DomainResult<u64> {
    let now = fmt_time(vault.now());
    Ok(sqlx::query(
        "UPDATE prov_runs SET state = 'failed', finished_at = $1, error = $2 \
         WHERE state = 'running' AND (lease_until IS NULL OR lease_until < $1)",
    )
    .bind(now)
    .bind("interrupted: the service stopped while the run was going")
    .execute(vault.db().pool())
    .await?
    .rows_affected())
}

/// One run as it stands.
pub async fn load(vault: &Vault, run_id: &str) -> DomainResult<Option<RunView>> {
    Ok(sqlx::query_as::<_, RunRow>(
        "SELECT run_id, kind, state, case_id, target, started_by, started_at, finished_at, \
         targets_total, targets_done, items_done, findings, result_json, error \
         FROM prov_runs WHERE run_id = $1",
    )
    .bind(run_id)
    .fetch_optional(vault.db().pool())
    .await?
    .map(RunView::from))
}

/// The latest run of a kind.
pub async fn latest(vault: &Vault, kind: &str) -> DomainResult<Option<RunView>> {
    Ok(sqlx::query_as::<_, RunRow>(
        "SELECT run_id, kind, state, case_id, target, started_by, started_at, finished_at, \
         targets_total, targets_done, items_done, findings, result_json, error \
         FROM prov_runs WHERE kind = $1 ORDER BY started_at DESC, run_id LIMIT 1",
    )
    .bind(kind)
    .fetch_optional(vault.db().pool())
    .await?
    .map(RunView::from))
}

/// The registered cases of one unit whose fictitious persons' accounts have all been
/// written (no job pending, running or failed) and that have had no account check
/// since, each with the time its last job finished (at most 1000, by case id).
pub async fn cases_awaiting_check(
    vault: &Vault,
    unit: &str,
) -> DomainResult<Vec<(String, String)>> {
    Ok(sqlx::query_as::<_, (String, String)>(
        "SELECT x.case_id, x.last_done FROM ( \
           SELECT c.case_id AS case_id, MAX(j.updated_at) AS last_done, \
             SUM(CASE WHEN j.state = 'done' THEN 0 ELSE 1 END) AS unfinished \
           FROM cases c JOIN prov_persons p ON p.case_id = c.case_id \
           JOIN prov_jobs j ON j.person_id = p.person_id \
           WHERE c.unit = $1 AND c.state = 'registered' AND p.desired = 'present' \
           GROUP BY c.case_id) x \
         WHERE x.unfinished = 0 AND NOT EXISTS (SELECT 1 FROM prov_runs r \
           WHERE r.kind = 'account-check' AND r.case_id = x.case_id AND r.state = 'done' \
           AND r.finished_at >= x.last_done) \
         ORDER BY x.case_id LIMIT 1000",
    )
    .bind(unit)
    .fetch_all(vault.db().pool())
    .await?)
}
