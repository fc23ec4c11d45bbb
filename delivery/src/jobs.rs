//! The outbox, as delivery drives it: which jobs the desired state calls for on which
//! target ([`fan_out`]), claiming with a lease as long as a job may take, how a job's
//! result ends it (retry with backoff, or failure with an alert), and the permitted
//! list and retry. The rows themselves are the routine's store
//! ([`fiktiv_routine::outbox`]: arming, claiming with `FOR UPDATE SKIP LOCKED` /
//! `BEGIN IMMEDIATE`, finishing only by the holder of the claim).
//!
//! Success → `done`; a transient failure → `pending` again after exponential backoff
//! with jitter, until `max_attempts`, then `failed`; an egress-guard block → `failed`
//! at once, audited as `provisioning.blocked`, with an alert. `last_error` is a clear
//! reason with target, operation and codes, never a value.

use chrono::TimeDelta;
use fiktiv_policies::{Action, Permit};
use fiktiv_provisioning::{Blocked, PersonId};
use fiktiv_vault::audit::Outcome;
use fiktiv_vault::db::Tx;
use fiktiv_vault::{CaseId, Vault};
use rand::Rng;

use super::config::ProvisioningConfig;
use super::targets::TargetSet;
use crate::checks::AlertFacts;
use crate::Delivery;
use fiktiv_routine::alerts::{self, NewAlert};
use fiktiv_routine::desired::Desired;
use fiktiv_routine::outbox::{self, Ending, Failure};
use fiktiv_routine::{DomainError, DomainResult};

pub use fiktiv_routine::outbox::{
    arm, counts, list, unclaim, Arm, AttemptEnd, Claimed, JobFilter, JobView, Op,
};

/// Creates or re-arms the jobs that the persons' desired state calls for, on every
/// target that receives them. A person who is not present and never had a job on a
/// target gets none there. One transaction. Returns the number of jobs armed.
pub async fn fan_out(vault: &Vault, set: &TargetSet) -> DomainResult<usize> {
    let mut tx = vault.db().begin_write().await?;
    let persons = fiktiv_routine::desired::load_persons(&mut tx, None).await?;
    let existing = outbox::job_keys(&mut tx).await?;
    let now = vault.now();
    let mut armed = 0;
    for p in &persons {
        for e in set.entries.values() {
            if !e.receives(&p.platforms) {
                continue;
            }
            let has = existing.contains(&(p.id.to_string(), e.name.to_string()));
            if p.desired != Desired::Present && !has {
                continue;
            }
            if arm(
                &mut tx,
                now,
                &p.id,
                &e.name,
                Op::for_desired(p.desired),
                Arm::Revision(p.revision),
            )
            .await?
            {
                armed += 1;
            }
        }
    }
    tx.commit().await?;
    Ok(armed)
}

/// How long a claim holds a job: the job's timeout and a minute.
fn claim_lease(settings: &ProvisioningConfig) -> TimeDelta {
    TimeDelta::seconds(i64::try_from(settings.job_timeout_secs).unwrap_or(3600) + 60)
}

/// Claims up to `limit` due jobs (and jobs whose lease ran out).
pub async fn claim(
    vault: &Vault,
    settings: &ProvisioningConfig,
    limit: usize,
) -> DomainResult<Vec<Claimed>> {
    claim_excluding(vault, settings, limit, &[]).await
}

/// Claims up to `limit` due jobs, at most one per target, leaving out the targets in
/// `busy` (this process runs a job there) and the targets whose lease another worker
/// holds (`fiktiv_routine::cluster`).
pub async fn claim_excluding(
    vault: &Vault,
    settings: &ProvisioningConfig,
    limit: usize,
    busy: &[String],
) -> DomainResult<Vec<Claimed>> {
    outbox::claim(vault, claim_lease(settings), limit, busy).await
}

/// How a job ended.
#[derive(Debug)]
pub enum JobResult {
    Done,
    /// The egress guard refused the record.
    Blocked(Blocked),
    /// Worth trying again (transport, 5xx, rate limit, timeout).
    Retry(String),
    /// Will not get better by retrying (no record, no target).
    Fail(String),
}

/// Exponential backoff with jitter: `base * 2^(attempt-1)` capped at `max`, then a
/// uniformly random point in its upper half.
pub fn backoff(settings: &ProvisioningConfig, attempt: i64) -> TimeDelta {
    let exp = u32::try_from(attempt.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    let full = settings
        .backoff_base_secs
        .saturating_mul(1u64 << exp)
        .min(settings.backoff_max_secs);
    let full_ms = full.saturating_mul(1000);
    let ms = rand::thread_rng().gen_range(full_ms / 2..=full_ms.max(1));
    TimeDelta::milliseconds(i64::try_from(ms).unwrap_or(i64::MAX / 2))
}

fn facts_json(facts: &AlertFacts) -> DomainResult<String> {
    serde_json::to_string(facts).map_err(|e| DomainError::Internal(e.to_string()))
}

/// Records an alert in the caller's transaction.
pub(crate) async fn raise_alert(
    vault: &Vault,
    tx: &mut Tx,
    kind: &str,
    target: Option<&str>,
    case: Option<&CaseId>,
    person: Option<&PersonId>,
    facts: &AlertFacts,
) -> DomainResult<()> {
    let alert = NewAlert {
        kind,
        target,
        case,
        person,
        detail: &facts.english(),
        facts_json: &facts_json(facts)?,
    };
    alerts::insert(tx, vault.now(), &alert).await
}

/// What a job's result means for its row: the ending the store records.
fn ending(
    vault: &Vault,
    settings: &ProvisioningConfig,
    job: &Claimed,
    result: JobResult,
) -> DomainResult<Ending> {
    let failure = |facts: AlertFacts, kind, action, outcome| -> DomainResult<Failure> {
        Ok(Failure {
            reason: facts.english(),
            alert_kind: kind,
            alert_facts_json: facts_json(&facts)?,
            action,
            outcome,
        })
    };
    // Out of attempts (`attempts`), or not fixable by retrying (`None`).
    let job_failed = |attempts: Option<i64>, error: String| -> DomainResult<Ending> {
        Ok(Ending::Failed(failure(
            AlertFacts::JobFailed { attempts, error },
            "job-failed",
            "provisioning.job-failed",
            Outcome::Failed,
        )?))
    };
    Ok(match result {
        JobResult::Done => Ending::Done,
        JobResult::Blocked(b) => Ending::Blocked(failure(
            AlertFacts::EgressBlocked {
                rule: b.rule.as_str().to_string(),
                attributes: b.attributes,
            },
            "egress-blocked",
            "provisioning.blocked",
            Outcome::Denied,
        )?),
        JobResult::Retry(error) if job.attempts < i64::from(settings.max_attempts) => {
            Ending::RetryAt {
                error,
                next: vault.now() + backoff(settings, job.attempts),
            }
        }
        JobResult::Retry(error) => job_failed(Some(job.attempts), error)?,
        JobResult::Fail(error) => job_failed(None, error)?,
    })
}

/// Records how a claimed job ended, with its audit event, in one transaction.
pub async fn finish(
    vault: &Vault,
    settings: &ProvisioningConfig,
    job: &Claimed,
    result: JobResult,
) -> DomainResult<()> {
    finish_attempt(vault, settings, job, result, None).await
}

/// Like [`finish`], also ending the attempt and giving the target's lease back.
pub async fn finish_attempt(
    vault: &Vault,
    settings: &ProvisioningConfig,
    job: &Claimed,
    result: JobResult,
    end: Option<AttemptEnd<'_>>,
) -> DomainResult<()> {
    let ending = ending(vault, settings, job, result)?;
    outbox::finish(vault, job, ending, end).await
}

/// List jobs. Permit: `provisioning-status.read`.
pub async fn list_permitted(
    ctx: &Delivery,
    permit: &Permit,
    filter: &JobFilter,
) -> DomainResult<Vec<JobView>> {
    permit.require(Action::ProvisioningStatusRead)?;
    list(&ctx.vault, filter).await
}

/// Re-arms a job (a failed one, typically) with its current operation, audited.
pub async fn retry_as(ctx: &Delivery, actor: &str, job_id: &str) -> DomainResult<JobView> {
    outbox::rearm(&ctx.vault, actor, job_id).await?;
    ctx.runtime.wake();
    list(&ctx.vault, &JobFilter::default())
        .await?
        .into_iter()
        .find(|j| j.job_id == job_id)
        .ok_or(DomainError::NotFound)
}

/// Retry a job. Permit: `sync.apply`.
pub async fn retry(ctx: &Delivery, permit: &Permit, job_id: &str) -> DomainResult<JobView> {
    permit.require(Action::SyncApply)?;
    retry_as(ctx, permit.principal_id(), job_id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        let s = ProvisioningConfig {
            backoff_base_secs: 10,
            backoff_max_secs: 300,
            ..ProvisioningConfig::default()
        };
        for _ in 0..50 {
            let b1 = backoff(&s, 1).num_milliseconds();
            assert!((5_000..=10_000).contains(&b1), "{b1}");
            let b3 = backoff(&s, 3).num_milliseconds();
            assert!((20_000..=40_000).contains(&b3), "{b3}");
            let b20 = backoff(&s, 20).num_milliseconds();
            assert!((150_000..=300_000).contains(&b20), "{b20}");
        }
    }
}
