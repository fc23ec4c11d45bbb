//! The worker `fiktiv serve` starts: a cycle task and a bounded pool of job tasks.
//!
//! - The **cycle** task, every `poll_interval_ms` (or when woken): brings the desired
//!   state up to date ([`desired::sync_all`]), arms the jobs it calls for
//!   ([`jobs::fan_out`]), marks the deprovisioning of ended cases done when every
//!   account is gone, and runs a reconciliation when `reconcile_interval_secs` has
//!   passed since the last one (by the vault clock).
//! - Each of the `workers` **job** tasks claims one due job at a time and carries it
//!   out: renders the person, clears every value with the egress guard (built from the
//!   vault's blind-index set at that moment), and writes it, disables or deletes on the
//!   target, within `job_timeout_secs`. All operations are idempotent by person id, so
//!   a job repeated after a crash or a lost answer does no harm.
//!
//! [`run_until_idle`] does the same in the caller's task, for the CLI and tests.

use std::sync::Arc;
use std::time::Duration;

use fiktiv_provisioning::{push, TargetError};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::checks;
use super::jobs::{self, Claimed, JobResult, Op};
use super::targets::{egress_guard, TargetSet};
use crate::Delivery;
use fiktiv_routine::desired;
use fiktiv_routine::DomainResult;

/// Carries out one claimed job. Never panics; every failure is a [`JobResult`].
pub async fn execute(ctx: &Delivery, set: &TargetSet, job: &Claimed) -> JobResult {
    let Some(entry) = set.get(&job.target) else {
        return JobResult::Fail(format!("target {}: no longer configured", job.target));
    };
    let target = match &entry.target {
        Ok(t) => t.clone(),
        Err(p) => return JobResult::Retry(format!("target {}: cannot be used: {p}", job.target)),
    };
    let vault = &ctx.vault;
    let guard = match egress_guard(vault).await {
        Ok(g) => g,
        Err(_) => return JobResult::Retry("the vault's blind indexes cannot be read".into()),
    };
    let limit = ctx.runtime.settings().job_timeout();
    let now = vault.now();
    let work = async {
        match job.op {
            Op::Upsert => {
                let row = match vault.db().pool().acquire().await {
                    Ok(mut conn) => desired::load_person(&mut conn, &job.person).await,
                    Err(e) => Err(e.into()),
                };
                let person = match row {
                    Ok(Some(r)) => r.person,
                    Ok(None) => None,
                    Err(_) => return JobResult::Retry("the database cannot be read".into()),
                };
                let Some(person) = person else {
                    return JobResult::Fail(format!(
                        "person {}: the fictitious record is not available (the case ended or was shredded)",
                        job.person
                    ));
                };
                match push(target.as_ref(), &guard, &person, now).await {
                    Ok(_) => JobResult::Done,
                    Err(TargetError::Blocked(b)) => JobResult::Blocked(b),
                    Err(e) => JobResult::Retry(e.to_string()),
                }
            }
            Op::Disable => match target.disable(&guard, &job.person, now).await {
                Ok(()) | Err(TargetError::NotFound { .. }) => JobResult::Done,
                Err(TargetError::Blocked(b)) => JobResult::Blocked(b),
                Err(e) => JobResult::Retry(e.to_string()),
            },
            Op::Delete => match target.delete(&guard, &job.person, now).await {
                Ok(()) | Err(TargetError::NotFound { .. }) => JobResult::Done,
                Err(TargetError::Blocked(b)) => JobResult::Blocked(b),
                Err(e) => JobResult::Retry(e.to_string()),
            },
        }
    };
    match tokio::time::timeout(limit, work).await {
        Ok(r) => r,
        Err(_) => JobResult::Retry(format!(
            "target {}: {}: no result within {} s",
            job.target,
            job.op.as_str(),
            limit.as_secs()
        )),
    }
}

/// A job's lease, and so the lease of its target: the job timeout plus a minute.
fn lease_of_a_job(ctx: &Delivery) -> chrono::TimeDelta {
    chrono::TimeDelta::seconds(
        i64::try_from(ctx.runtime.settings().job_timeout_secs).unwrap_or(3600) + 60,
    )
}

/// Runs a claimed job: one at a time per target, in this process (a mutex) and across
/// instances (the target's lease in the database, `fiktiv_routine::cluster`). When another
/// instance holds the target, the job is given back untouched, to be claimed again. The
/// attempt is recorded in `prov_attempts` with this instance's id.
async fn run_claimed(ctx: &Delivery, job: Claimed) -> DomainResult<()> {
    let set = ctx.runtime.targets(&ctx.vault).await?;
    let lock = ctx.runtime.target_lock(&job.target);
    let limit = ctx.runtime.settings().job_timeout();
    let me = ctx.runtime.instance();
    let Ok(_guard) = tokio::time::timeout(limit, lock.lock()).await else {
        let r = JobResult::Retry(format!(
            "target {}: other jobs on the target took longer than {} s",
            job.target,
            limit.as_secs()
        ));
        return jobs::finish(&ctx.vault, ctx.runtime.settings(), &job, r).await;
    };
    let lease = lease_of_a_job(ctx);
    let op = job.op.as_str();
    let Some(attempt) =
        fiktiv_routine::cluster::begin_attempt(&ctx.vault, &job.job_id, &job.target, op, me, lease)
            .await?
    else {
        tracing::debug!(job = %job.job_id, target_name = %job.target, "target busy on another instance; job given back");
        return jobs::unclaim(&ctx.vault, &job).await;
    };
    let result = execute(ctx, &set, &job).await;
    // The result, the attempt's end and the target's lease given back: one transaction.
    let end = jobs::AttemptEnd {
        attempt_id: &attempt,
        holder: me,
    };
    let finished =
        jobs::finish_attempt(&ctx.vault, ctx.runtime.settings(), &job, result, Some(end)).await;
    if finished.is_err() {
        // Not recorded: at least free the target (otherwise its lease runs out).
        let _ = fiktiv_routine::cluster::release_target(&ctx.vault, &job.target, me).await;
    }
    // The target is free again: idle workers of this process may take its next job.
    ctx.runtime.target_freed();
    finished
}

/// One cycle: desired state, jobs, deprovisioning, recovery of runs whose instance is
/// gone, and a reconciliation when due (claimed through the `schedules` table, so it
/// runs once across the cluster).
pub async fn cycle(ctx: &Delivery, reconcile_when_due: bool) -> DomainResult<()> {
    let vault = &ctx.vault;
    let settings = ctx.runtime.settings();
    desired::sync_all(vault, settings.grace()).await?;
    let set = ctx.runtime.targets(vault).await?;
    jobs::fan_out(vault, &set).await?;
    fiktiv_routine::outbox::mark_deprovisioned(vault).await?;
    let recovered = checks::recover_runs(vault).await?;
    if recovered > 0 {
        tracing::warn!(
            runs = recovered,
            "runs whose instance stopped marked failed"
        );
    }
    fiktiv_routine::cluster::prune_attempts(vault, vault.now()).await?;
    if reconcile_when_due && settings.reconcile_interval_secs > 0 {
        let interval = chrono::TimeDelta::seconds(
            i64::try_from(settings.reconcile_interval_secs).unwrap_or(0), // validated: at most a year
        );
        let last = checks::latest_run(vault, "reconcile").await?;
        let due = match last {
            None => true,
            Some(r) => chrono::DateTime::parse_from_rfc3339(&r.started_at)
                .map(|t| t.with_timezone(&chrono::Utc) + interval <= vault.now())
                .unwrap_or(true),
        };
        if due
            && fiktiv_routine::cluster::claim_schedule(
                vault,
                fiktiv_routine::cluster::RECONCILE,
                ctx.runtime.instance(),
                interval,
            )
            .await?
        {
            checks::start(ctx, "system", checks::RunScope::Reconcile, false).await?;
        }
    }
    Ok(())
}

/// Runs cycles and due jobs in the caller's task until no job is due (at most
/// `max_rounds` rounds of up to `workers` jobs at a time). Returns the jobs run.
pub async fn run_until_idle(ctx: &Delivery, max_rounds: usize) -> DomainResult<usize> {
    cycle(ctx, false).await?;
    let settings = ctx.runtime.settings();
    let mut ran = 0;
    for _ in 0..max_rounds {
        let claimed = jobs::claim(&ctx.vault, settings, settings.workers).await?;
        if claimed.is_empty() {
            break;
        }
        let mut set = JoinSet::new();
        for job in claimed {
            let c = ctx.clone();
            set.spawn(async move { run_claimed(&c, job).await });
        }
        while let Some(r) = set.join_next().await {
            ran += 1;
            match r {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "job bookkeeping failed"),
                Err(_) => tracing::error!("a job task ended abnormally"),
            }
        }
        cycle(ctx, false).await?;
    }
    Ok(ran)
}

/// The running worker.
pub struct WorkerHandle {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl WorkerHandle {
    /// Stops the worker; a job in flight gets a few seconds to finish (a job cut off is
    /// claimed again when its lease runs out).
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        let wait = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(Duration::from_secs(5), wait)
            .await
            .is_err()
        {
            self.tasks.abort_all();
        }
    }
}

async fn pause(ctx: &Delivery, stop: &mut watch::Receiver<bool>, poll: Duration) {
    tokio::select! {
        _ = stop.changed() => {}
        _ = ctx.runtime.notified() => {}
        _ = tokio::time::sleep(poll) => {}
    }
}

/// A job worker's pause: also ends when a job of this process freed its target.
async fn pause_worker(ctx: &Delivery, stop: &mut watch::Receiver<bool>, poll: Duration) {
    tokio::select! {
        _ = stop.changed() => {}
        _ = ctx.runtime.notified() => {}
        _ = ctx.runtime.freed() => {}
        _ = tokio::time::sleep(poll) => {}
    }
}

/// Starts the worker (`fiktiv serve`). Runs left running by a stopped instance (their
/// lease ran out) are marked failed first; a live run of another instance is left alone.
pub async fn start(ctx: Delivery) -> WorkerHandle {
    match checks::recover_runs(&ctx.vault).await {
        Ok(n) if n > 0 => {
            tracing::warn!(runs = n, "runs interrupted by a stop marked failed")
        }
        Ok(_) => {}
        Err(e) => tracing::error!(error = %e, "cannot recover interrupted runs"),
    }
    let ctx = Arc::new(ctx);
    let (tx, rx) = watch::channel(false);
    let poll = Duration::from_millis(ctx.runtime.settings().poll_interval_ms);
    let mut tasks = JoinSet::new();
    {
        let ctx = ctx.clone();
        let mut stop = rx.clone();
        tasks.spawn(async move {
            loop {
                if *stop.borrow() {
                    break;
                }
                if let Err(e) = cycle(&ctx, true).await {
                    tracing::error!(error = %e, "provisioning cycle failed");
                }
                pause(&ctx, &mut stop, poll).await;
            }
        });
    }
    for _ in 0..ctx.runtime.settings().workers {
        let ctx = ctx.clone();
        let mut stop = rx.clone();
        tasks.spawn(async move {
            loop {
                if *stop.borrow() {
                    break;
                }
                let settings = ctx.runtime.settings();
                let busy = ctx.runtime.busy_targets();
                match jobs::claim_excluding(&ctx.vault, settings, 1, &busy).await {
                    Ok(mut claimed) => match claimed.pop() {
                        Some(job) => {
                            if let Err(e) = run_claimed(&ctx, job).await {
                                tracing::error!(error = %e, "job bookkeeping failed");
                            }
                        }
                        None => pause_worker(&ctx, &mut stop, poll).await,
                    },
                    Err(e) => {
                        tracing::error!(error = %e, "claiming jobs failed");
                        pause_worker(&ctx, &mut stop, poll).await;
                    }
                }
            }
        });
    }
    tracing::info!(
        workers = ctx.runtime.settings().workers,
        "provisioning worker started"
    );
    WorkerHandle { stop: tx, tasks }
}
