//! The two checks of the routine, reconciliation runs, and alerts.
//!
//! - **Account check** (step 5): for each fictitious person and target, the account is
//!   read back from the target itself, with the time of reading: does it exist, is it
//!   enabled, are the attributes and groups the expected ones. Per case (the school) or
//!   per target (the central administrator).
//! - **Leak scan** (step 6): every entry of every target is read whole (no filter that
//!   holds a value) and compared locally with the blind indexes of every real identity
//!   in the vault. The result per case is `clean`, `unverified` (a target could not be
//!   read completely), `suspect` (the real full name, may be a namesake) or `found`
//!   (the real number, or the name with the birth date), with where: (target, entry
//!   locator). Never the value. A finding raises an alert and an audit event.
//!
//! Each runs as a **run** (`prov_runs`): starting one returns at once with its id; the
//! run's progress counters (targets done, entries read, findings) and, at the end, its
//! result are read with the run id. Starting a run is audited.

use fiktiv_policies::{Action, Permit};
use fiktiv_vault::audit::{fmt_time, NewEvent, Outcome};
use fiktiv_vault::{CaseId, Vault};
use serde::Serialize;
use sqlx::Row;
use utoipa::ToSchema;

use crate::Delivery;
use fiktiv_routine::{DomainError, DomainResult};

/// What a run does and for whom.
#[derive(Debug, Clone)]
pub enum RunScope {
    AccountCheckCase { case: CaseId, unit: String },
    AccountCheckTarget { target: String },
    LeakScanCase { case: CaseId, unit: String },
    LeakScanAll,
    Reconcile,
}

impl RunScope {
    fn kind(&self) -> &'static str {
        match self {
            RunScope::AccountCheckCase { .. } | RunScope::AccountCheckTarget { .. } => {
                "account-check"
            }
            RunScope::LeakScanCase { .. } | RunScope::LeakScanAll => "leak-scan",
            RunScope::Reconcile => "reconcile",
        }
    }

    fn audit_action(&self) -> &'static str {
        match self {
            RunScope::AccountCheckCase { .. } | RunScope::AccountCheckTarget { .. } => {
                Action::AccountCheck.as_str()
            }
            RunScope::LeakScanCase { .. } | RunScope::LeakScanAll => Action::LeakScan.as_str(),
            RunScope::Reconcile => "provisioning.reconcile",
        }
    }

    fn case(&self) -> Option<(&CaseId, &str)> {
        match self {
            RunScope::AccountCheckCase { case, unit } | RunScope::LeakScanCase { case, unit } => {
                Some((case, unit))
            }
            _ => None,
        }
    }

    fn target(&self) -> Option<&str> {
        match self {
            RunScope::AccountCheckTarget { target } => Some(target),
            _ => None,
        }
    }
}

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

/// Updates a run's progress counters.
pub struct RunProgress {
    vault: Vault,
    run_id: String,
}

impl RunProgress {
    pub async fn update(&self, targets_done: i64, items_done: i64, findings: i64) {
        let r = sqlx::query(
            "UPDATE prov_runs SET targets_done = $1, items_done = $2, findings = $3 WHERE run_id = $4",
        )
        .bind(targets_done)
        .bind(items_done)
        .bind(findings)
        .bind(&self.run_id)
        .execute(self.vault.db().pool())
        .await;
        if let Err(e) = r {
            tracing::warn!(run = %self.run_id, error = %e, "run progress not recorded");
        }
    }
}

/// Starts a run: records it with its audit event in one transaction, then runs it in
/// the background (`spawn`) or to the end (the CLI).
pub async fn start(
    ctx: &Delivery,
    actor: &str,
    scope: RunScope,
    spawn: bool,
) -> DomainResult<RunView> {
    let vault = &ctx.vault;
    let set = ctx.runtime.targets(vault).await?;
    if let Some(t) = scope.target() {
        if set.get(t).is_none() {
            return Err(DomainError::NotFound);
        }
    }
    let total = match scope.target() {
        Some(_) => 1,
        None => i64::try_from(set.entries.len()).unwrap_or(0),
    };
    let run_id = uuid::Uuid::new_v4().to_string();
    let mut tx = vault.db().begin_write().await?;
    // At most `[limits] concurrent_runs` account checks and leak scans at once, for every
    // way in (API, web UI, CLI), counted and claimed in one serialized transaction.
    // Reconciliation is not a check: it is not counted against it.
    fiktiv_routine::lock_limit(vault, &mut tx, fiktiv_routine::LIMIT_LOCK_RUNS).await?;
    let running: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM prov_runs WHERE state = 'running' AND kind <> 'reconcile'",
    )
    .fetch_one(&mut *tx)
    .await?;
    if !matches!(scope, RunScope::Reconcile) && running >= i64::from(ctx.runtime.concurrent_runs())
    {
        return Err(DomainError::Busy {
            code: "runs-busy",
            message: "Too many account checks and leak scans are running; start this one \
                      when one has finished.",
        });
    }
    sqlx::query(
        "INSERT INTO prov_runs (run_id, kind, case_id, unit, target, state, started_by, started_at, \
         targets_total, targets_done, items_done, findings, holder, lease_until) \
         VALUES ($1, $2, $3, $4, $5, 'running', $6, $7, $8, 0, 0, 0, $9, $10)",
    )
    .bind(&run_id)
    .bind(scope.kind())
    .bind(scope.case().map(|(c, _)| c.to_string()))
    .bind(scope.case().map(|(_, u)| u.to_owned()))
    .bind(scope.target())
    .bind(actor)
    .bind(fmt_time(vault.now()))
    .bind(total)
    .bind(ctx.runtime.instance())
    .bind(fmt_time(vault.now() + RUN_LEASE))
    .execute(&mut *tx)
    .await?;
    vault
        .audit(
            &mut tx,
            &NewEvent {
                actor,
                action: scope.audit_action(),
                case_id: scope.case().map(|(c, _)| *c),
                purpose: None,
                outcome: Outcome::Ok,
            },
        )
        .await?;
    tx.commit().await?;
    if spawn {
        let c = ctx.clone();
        let id = run_id.clone();
        let who = actor.to_owned();
        tokio::spawn(async move { execute(&c, &id, &who, scope).await });
    } else {
        execute(ctx, &run_id, actor, scope).await;
    }
    load_run(vault, &run_id).await?.ok_or(DomainError::NotFound)
}

/// A run's lease: renewed every [`RUN_HEARTBEAT`] while it runs. Recovery marks a run
/// failed only when its lease ran out, so a live run of another instance is left alone.
pub const RUN_LEASE: chrono::TimeDelta = chrono::TimeDelta::minutes(2);
const RUN_HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(30);

/// Renews the run's lease until dropped.
struct Heartbeat(tokio::task::JoinHandle<()>);

impl Heartbeat {
    fn start(vault: Vault, run_id: String) -> Self {
        Self(tokio::spawn(async move {
            loop {
                tokio::time::sleep(RUN_HEARTBEAT).await;
                let r = sqlx::query(
                    "UPDATE prov_runs SET lease_until = $1 WHERE run_id = $2 AND state = 'running'",
                )
                .bind(fmt_time(vault.now() + RUN_LEASE))
                .bind(&run_id)
                .execute(vault.db().pool())
                .await;
                if let Err(e) = r {
                    tracing::warn!(run = %run_id, error = %e, "run lease not renewed");
                }
            }
        }))
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn execute(ctx: &Delivery, run_id: &str, actor: &str, scope: RunScope) {
    let _heartbeat = Heartbeat::start(ctx.vault.clone(), run_id.to_owned());
    let progress = RunProgress {
        vault: ctx.vault.clone(),
        run_id: run_id.to_owned(),
    };
    // Targets a reconciliation read completely (for the metric of its age).
    let mut reconciled: Vec<String> = Vec::new();
    let result: DomainResult<(serde_json::Value, i64)> = match &scope {
        RunScope::AccountCheckCase { case, .. } => account_check(ctx, Some(case), None, &progress)
            .await
            .and_then(to_json),
        RunScope::AccountCheckTarget { target } => {
            account_check(ctx, None, Some(target), &progress)
                .await
                .and_then(to_json)
        }
        RunScope::LeakScanCase { case, .. } => leak_scan(ctx, Some(case), &progress)
            .await
            .and_then(to_json),
        RunScope::LeakScanAll => leak_scan(ctx, None, &progress).await.and_then(to_json),
        RunScope::Reconcile => super::sync::reconcile_body(ctx, actor, Some(&progress))
            .await
            .map(|r| {
                let readable: Vec<String> = r
                    .plan
                    .targets
                    .iter()
                    .filter(|t| t.readable)
                    .map(|t| t.target.clone())
                    .collect();
                (r, readable)
            })
            .and_then(|(r, readable)| {
                reconciled = readable;
                let n = i64::try_from(r.plan.changes()).unwrap_or(0);
                serde_json::to_value(&r)
                    .map(|v| (v, n))
                    .map_err(|e| DomainError::Internal(e.to_string()))
            }),
    };
    if result.is_ok() {
        let at = ctx.vault.now();
        for t in &reconciled {
            if let Err(e) = fiktiv_routine::cluster::target_reconciled(&ctx.vault, t, at).await {
                tracing::warn!(target_name = %t, error = %e, "reconciliation time not recorded");
            }
        }
    }
    let now = fmt_time(ctx.vault.now());
    let q = match &result {
        Ok((v, findings)) => sqlx::query(
            "UPDATE prov_runs SET state = 'done', finished_at = $1, result_json = $2, findings = $3, \
             targets_done = targets_total WHERE run_id = $4",
        )
        .bind(now)
        .bind(v.to_string())
        .bind(*findings)
        .bind(run_id),
        Err(e) => {
            tracing::error!(run = %run_id, error = %e, "run failed");
            sqlx::query(
                "UPDATE prov_runs SET state = 'failed', finished_at = $1, error = $2 WHERE run_id = $3",
            )
            .bind(now)
            .bind("the run failed inside Fiktiv; see the log")
            .bind(run_id)
        }
    };
    if let Err(e) = q.execute(ctx.vault.db().pool()).await {
        tracing::error!(run = %run_id, error = %e, "run result not recorded");
    }
}

trait Findings {
    fn findings(&self) -> i64;
}

fn to_json<T: Serialize + Findings>(r: T) -> DomainResult<(serde_json::Value, i64)> {
    let n = r.findings();
    serde_json::to_value(&r)
        .map(|v| (v, n))
        .map_err(|e| DomainError::Internal(e.to_string()))
}

/// Runs whose instance stopped while they ran (their lease ran out, or they are from
/// before leases) are marked failed. A live run of another instance keeps running.
pub async fn recover_runs(vault: &Vault) -> DomainResult<u64> {
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

/// One run as it stands, without a permit: for this crate and the command line (whose
/// user runs the data directory's own process); the API and web UI use [`run_permitted`].
pub async fn load_run(vault: &Vault, run_id: &str) -> DomainResult<Option<RunView>> {
    let Some(r) = sqlx::query(
        "SELECT run_id, kind, state, case_id, target, started_by, started_at, finished_at, \
         targets_total, targets_done, items_done, findings, result_json, error \
         FROM prov_runs WHERE run_id = $1",
    )
    .bind(run_id)
    .fetch_optional(vault.db().pool())
    .await?
    else {
        return Ok(None);
    };
    let result: Option<String> = r.try_get("result_json")?;
    Ok(Some(RunView {
        run_id: r.try_get("run_id")?,
        kind: r.try_get("kind")?,
        state: r.try_get("state")?,
        case_id: r.try_get("case_id")?,
        target: r.try_get("target")?,
        started_by: r.try_get("started_by")?,
        started_at: r.try_get("started_at")?,
        finished_at: r.try_get("finished_at")?,
        progress: Progress {
            targets_total: r.try_get("targets_total")?,
            targets_done: r.try_get("targets_done")?,
            items_done: r.try_get("items_done")?,
            findings: r.try_get("findings")?,
        },
        result: result.and_then(|s| serde_json::from_str(&s).ok()),
        error: r.try_get("error")?,
    }))
}

/// The latest run of a kind (for the status page and the reconciliation schedule).
pub async fn latest_run(vault: &Vault, kind: &str) -> DomainResult<Option<RunView>> {
    let id: Option<String> = sqlx::query(
        "SELECT run_id FROM prov_runs WHERE kind = $1 ORDER BY started_at DESC, run_id LIMIT 1",
    )
    .bind(kind)
    .fetch_optional(vault.db().pool())
    .await?
    .map(|r| r.try_get("run_id"))
    .transpose()?;
    match id {
        Some(id) => load_run(vault, &id).await,
        None => Ok(None),
    }
}

/// A run by id, for the central administrator. Permit: `provisioning-status.read`.
pub async fn run_permitted(ctx: &Delivery, permit: &Permit, run_id: &str) -> DomainResult<RunView> {
    permit.require(Action::ProvisioningStatusRead)?;
    load_run(&ctx.vault, run_id)
        .await?
        .ok_or(DomainError::NotFound)
}

/// A run of one case, of the kind the permit is for (`account.check` or `leak.scan`).
pub async fn case_run(
    ctx: &Delivery,
    permit: &Permit,
    case: &CaseId,
    run_id: &str,
) -> DomainResult<RunView> {
    let kind = match permit.action() {
        Action::AccountCheck => "account-check",
        Action::LeakScan => "leak-scan",
        _ => {
            permit.require(Action::AccountCheck)?;
            return Err(DomainError::NotFound);
        }
    };
    let run = load_run(&ctx.vault, run_id)
        .await?
        .ok_or(DomainError::NotFound)?;
    if run.case_id.as_deref() != Some(case.to_string().as_str()) || run.kind != kind {
        return Err(DomainError::NotFound);
    }
    Ok(run)
}

/// Start the account check of a case. Permit: `account.check` on the case.
pub async fn start_account_check_case(
    ctx: &Delivery,
    permit: &Permit,
    case: &CaseId,
) -> DomainResult<RunView> {
    permit.require(Action::AccountCheck)?;
    let unit = fiktiv_routine::cases::unit_of(&ctx.vault, case).await?;
    start(
        ctx,
        permit.principal_id(),
        RunScope::AccountCheckCase { case: *case, unit },
        true,
    )
    .await
}

/// Start the account check of a target. Permit: `provisioning-status.read`.
pub async fn start_account_check_target(
    ctx: &Delivery,
    permit: &Permit,
    target: &str,
) -> DomainResult<RunView> {
    permit.require(Action::ProvisioningStatusRead)?;
    start(
        ctx,
        permit.principal_id(),
        RunScope::AccountCheckTarget {
            target: target.to_owned(),
        },
        true,
    )
    .await
}

/// Start a leak scan for one case (`leak.scan` on the case) or for all (`leak.scan` on
/// the municipality).
pub async fn start_leak_scan(
    ctx: &Delivery,
    permit: &Permit,
    case: Option<&CaseId>,
) -> DomainResult<RunView> {
    permit.require(Action::LeakScan)?;
    let scope = match case {
        Some(c) => RunScope::LeakScanCase {
            case: *c,
            unit: fiktiv_routine::cases::unit_of(&ctx.vault, c).await?,
        },
        None => RunScope::LeakScanAll,
    };
    start(ctx, permit.principal_id(), scope, true).await
}

mod account;
mod alerts;
mod leak;

pub use account::*;
pub use alerts::*;
pub use leak::*;
