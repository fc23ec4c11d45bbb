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
use fiktiv_vault::audit::{NewEvent, Outcome};
use fiktiv_vault::{CaseId, Vault};
use serde::Serialize;

use crate::Delivery;
use fiktiv_routine::runs;
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

pub use fiktiv_routine::runs::{Progress, RunView};

/// Updates a run's progress counters.
pub struct RunProgress {
    vault: Vault,
    run_id: String,
}

impl RunProgress {
    pub async fn update(&self, targets_done: i64, items_done: i64, findings: i64) {
        let r = runs::record_progress(
            &self.vault,
            &self.run_id,
            targets_done,
            items_done,
            findings,
        )
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
    // way in (API, web UI, CLI), counted and claimed in the transaction that records the
    // run. Reconciliation is not a check: it is not counted against it.
    let cap = match scope {
        RunScope::Reconcile => None,
        _ => Some(ctx.runtime.concurrent_runs()),
    };
    let run = runs::NewRun {
        run_id: &run_id,
        kind: scope.kind(),
        case: scope.case(),
        target: scope.target(),
        started_by: actor,
        targets_total: total,
        holder: ctx.runtime.instance(),
        lease_until: vault.now() + RUN_LEASE,
    };
    runs::open(vault, &mut tx, &run, cap).await?;
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
                let r = runs::renew_lease(&vault, &run_id, vault.now() + RUN_LEASE).await;
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
    let end = match &result {
        Ok((v, findings)) => Ok((v, *findings)),
        Err(e) => {
            tracing::error!(run = %run_id, error = %e, "run failed");
            Err("the run failed inside Fiktiv; see the log")
        }
    };
    if let Err(e) = runs::finish(&ctx.vault, run_id, end).await {
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
    runs::recover(vault).await
}

/// One run as it stands, without a permit: for this crate and the command line (whose
/// user runs the data directory's own process); the API and web UI use [`run_permitted`].
pub async fn load_run(vault: &Vault, run_id: &str) -> DomainResult<Option<RunView>> {
    runs::load(vault, run_id).await
}

/// The latest run of a kind (for the status page and the reconciliation schedule).
pub async fn latest_run(vault: &Vault, kind: &str) -> DomainResult<Option<RunView>> {
    runs::latest(vault, kind).await
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
