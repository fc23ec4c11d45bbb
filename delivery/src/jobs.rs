//! The outbox: one job row per (person, target), in `prov_jobs`.
//!
//! - **Arming.** A change of the desired state (or an apply, a reconciliation, a retry)
//!   sets the row's operation (`upsert`, `disable`, `delete`), bumps its generation,
//!   resets its attempts and makes it due now. A row that is running keeps running; its
//!   worker sees the new generation when it finishes and leaves the row pending.
//! - **Claiming.** A worker claims due rows in one write transaction: `FOR UPDATE SKIP
//!   LOCKED` on PostgreSQL (several instances never claim the same row), `BEGIN
//!   IMMEDIATE` on SQLite. A claim counts an attempt and takes a lease (job timeout +
//!   a minute, on the vault clock) and a random claim token; a row whose lease ran out
//!   (its worker died) is claimed again, so nothing is lost across a restart. Jobs on a
//!   target whose lease another worker holds (`fiktiv_routine::cluster`) are left for later.
//! - **Finishing.** Only the holder of the current claim token may finish a row.
//!   Success → `done`; a transient failure → `pending` again after exponential backoff
//!   with jitter, until `max_attempts`, then `failed`; an egress-guard block → `failed`
//!   at once, audited as `provisioning.blocked`, with an alert. `last_error` is a clear
//!   reason with target, operation and codes, never a value.

use chrono::{DateTime, TimeDelta, Utc};
use fiktiv_policies::{Action, Permit};
use fiktiv_provisioning::{Blocked, PersonId, TargetName};
use fiktiv_vault::audit::{fmt_time, NewEvent, Outcome};
use fiktiv_vault::{Backend, CaseId, Vault};
use rand::Rng;
use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Row};
use utoipa::{IntoParams, ToSchema};

use super::config::ProvisioningConfig;
use super::targets::TargetSet;
use crate::checks::AlertFacts;
use crate::Delivery;
use fiktiv_routine::desired::Desired;
use fiktiv_routine::{DomainError, DomainResult};

/// What a job does on its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// Create the account or bring it to the record (idempotent, by person id).
    Upsert,
    /// First stage of removal.
    Disable,
    /// Second stage of removal, after the grace period.
    Delete,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Upsert => "upsert",
            Op::Disable => "disable",
            Op::Delete => "delete",
        }
    }

    fn parse(s: &str) -> DomainResult<Self> {
        match s {
            "upsert" => Ok(Op::Upsert),
            "disable" => Ok(Op::Disable),
            "delete" => Ok(Op::Delete),
            _ => Err(DomainError::Internal("stored job op is malformed".into())),
        }
    }

    pub fn for_desired(d: Desired) -> Self {
        match d {
            Desired::Present => Op::Upsert,
            Desired::Disabled => Op::Disable,
            Desired::Absent => Op::Delete,
        }
    }
}

/// How arming treats a row that exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arm {
    /// The desired state changed to this revision: re-arm unless the row already has it.
    Revision(i64),
    /// An operator asked (apply, retry): re-arm unless work is already queued.
    Operator,
    /// Reconciliation: like `Operator`, but a failed job stays failed (it needs an
    /// operator, or it would be retried and re-alerted every interval).
    Reconcile,
}

/// Arms the job of (person, target) with `op`. Returns whether it was (re)armed.
pub async fn arm(
    conn: &mut AnyConnection,
    now: DateTime<Utc>,
    person: &PersonId,
    target: &TargetName,
    op: Op,
    how: Arm,
) -> DomainResult<bool> {
    let now_s = fmt_time(now);
    let row = sqlx::query(
        "SELECT job_id, op, state, revision FROM prov_jobs WHERE person_id = $1 AND target = $2",
    )
    .bind(person.to_string())
    .bind(target.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        let revision = match how {
            Arm::Revision(r) => r,
            _ => 0,
        };
        sqlx::query(
            "INSERT INTO prov_jobs (job_id, person_id, target, op, state, revision, generation, \
             attempts, next_attempt_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, 'pending', $5, 1, 0, $6, $6, $6)",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(person.to_string())
        .bind(target.as_str())
        .bind(op.as_str())
        .bind(revision)
        .bind(&now_s)
        .execute(&mut *conn)
        .await?;
        return Ok(true);
    };
    let state: String = row.try_get("state")?;
    let revision: i64 = row.try_get("revision")?;
    let current = Op::parse(&row.try_get::<String, _>("op")?)?;
    let queued = state == "pending" || state == "running";
    let go = match how {
        Arm::Revision(r) => r > revision,
        Arm::Operator => !(queued && current == op),
        Arm::Reconcile => !(queued && current == op) && state != "failed",
    };
    if !go {
        return Ok(false);
    }
    let new_rev = match how {
        Arm::Revision(r) => r,
        _ => revision,
    };
    sqlx::query(
        "UPDATE prov_jobs SET op = $1, revision = $2, generation = generation + 1, attempts = 0, \
         next_attempt_at = $3, last_error = NULL, updated_at = $3, \
         state = CASE WHEN state = 'running' THEN 'running' ELSE 'pending' END \
         WHERE job_id = $4",
    )
    .bind(op.as_str())
    .bind(new_rev)
    .bind(&now_s)
    .bind(row.try_get::<String, _>("job_id")?)
    .execute(&mut *conn)
    .await?;
    Ok(true)
}

/// Creates or re-arms the jobs that the persons' desired state calls for, on every
/// target that receives them. A person who is not present and never had a job on a
/// target gets none there. One transaction. Returns the number of jobs armed.
pub async fn fan_out(vault: &Vault, set: &TargetSet) -> DomainResult<usize> {
    let mut tx = vault.db().begin_write().await?;
    let persons = fiktiv_routine::desired::load_persons(&mut tx, None).await?;
    let existing: std::collections::HashSet<(String, String)> =
        sqlx::query("SELECT person_id, target FROM prov_jobs")
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| Ok((r.try_get("person_id")?, r.try_get("target")?)))
            .collect::<Result<_, sqlx::Error>>()?;
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

/// A job a worker holds.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub job_id: String,
    pub person: PersonId,
    pub target: String,
    pub op: Op,
    pub generation: i64,
    pub attempts: i64,
    pub token: String,
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
    let now = vault.now();
    let now_s = fmt_time(now);
    let lease = fmt_time(
        now + TimeDelta::seconds(i64::try_from(settings.job_timeout_secs).unwrap_or(3600) + 60),
    );
    let lock = match vault.db().backend() {
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    // Targets to leave out, as bind parameters $3, $4, ...
    let busy_sql: String = (0..busy.len())
        .map(|i| format!(" AND target <> ${}", i + 3))
        .collect();
    let mut tx = vault.db().begin_write().await?;
    // A few more rows than needed, so that jobs on one target do not crowd out others.
    let candidates = limit.saturating_mul(4).max(4);
    let sql = format!(
        "SELECT job_id, person_id, target, op, generation, attempts FROM prov_jobs \
         WHERE ((state = 'pending' AND next_attempt_at <= $1) \
            OR (state = 'running' AND claimed_until < $1)) \
           AND target NOT IN (SELECT target FROM target_leases \
                              WHERE holder IS NOT NULL AND lease_until >= $1){busy_sql} \
         ORDER BY next_attempt_at, job_id LIMIT $2{lock}"
    );
    let mut q = sqlx::query(&sql)
        .bind(&now_s)
        .bind(i64::try_from(candidates).unwrap_or(4));
    for t in busy {
        q = q.bind(t.as_str());
    }
    let rows = q.fetch_all(&mut *tx).await?;
    let mut out: Vec<Claimed> = Vec::with_capacity(limit);
    for r in rows {
        if out.len() >= limit {
            break;
        }
        let target: String = r.try_get("target")?;
        if out.iter().any(|c| c.target == target) {
            continue;
        }
        let token = uuid::Uuid::new_v4().to_string();
        let job_id: String = r.try_get("job_id")?;
        sqlx::query(
            "UPDATE prov_jobs SET state = 'running', claim_token = $1, claimed_until = $2, \
             attempts = attempts + 1, updated_at = $3 WHERE job_id = $4",
        )
        .bind(&token)
        .bind(&lease)
        .bind(&now_s)
        .bind(&job_id)
        .execute(&mut *tx)
        .await?;
        out.push(Claimed {
            person: r
                .try_get::<String, _>("person_id")?
                .parse()
                .map_err(|_| DomainError::Internal("stored person id is malformed".into()))?,
            target,
            op: Op::parse(&r.try_get::<String, _>("op")?)?,
            generation: r.try_get("generation")?,
            attempts: r.try_get::<i64, _>("attempts")? + 1,
            token,
            job_id,
        });
    }
    tx.commit().await?;
    Ok(out)
}

/// Gives a claimed job back untouched (its target was busy on another instance): due
/// again at once, the attempt not counted. Only while the claim is still the caller's.
pub async fn unclaim(vault: &Vault, job: &Claimed) -> DomainResult<()> {
    sqlx::query(
        "UPDATE prov_jobs SET state = 'pending', claim_token = NULL, claimed_until = NULL, \
         attempts = attempts - 1 WHERE job_id = $1 AND claim_token = $2",
    )
    .bind(&job.job_id)
    .bind(&job.token)
    .execute(vault.db().pool())
    .await?;
    Ok(())
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

async fn case_of(conn: &mut AnyConnection, person: &PersonId) -> DomainResult<Option<CaseId>> {
    Ok(
        sqlx::query("SELECT case_id FROM prov_persons WHERE person_id = $1")
            .bind(person.to_string())
            .fetch_optional(&mut *conn)
            .await?
            .map(|r| r.try_get::<String, _>("case_id"))
            .transpose()?
            .and_then(|s| s.parse().ok()),
    )
}

pub(crate) async fn raise_alert(
    vault: &Vault,
    conn: &mut AnyConnection,
    kind: &str,
    target: Option<&str>,
    case: Option<&CaseId>,
    person: Option<&PersonId>,
    facts: &AlertFacts,
) -> DomainResult<()> {
    let detail = facts.english();
    let facts = serde_json::to_string(facts).map_err(|e| DomainError::Internal(e.to_string()))?;
    sqlx::query(
        "INSERT INTO prov_alerts (alert_id, kind, target, case_id, person_id, detail, facts, \
         raised_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(kind)
    .bind(target)
    .bind(case.map(ToString::to_string))
    .bind(person.map(ToString::to_string))
    .bind(detail)
    .bind(facts)
    .bind(fmt_time(vault.now()))
    .execute(&mut *conn)
    .await?;
    Ok(())
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

/// What else ends with a job's attempt (`fiktiv_routine::cluster`): its `prov_attempts` row and
/// the target's lease, recorded in the same transaction as the job's result.
#[derive(Debug, Clone, Copy)]
pub struct AttemptEnd<'a> {
    pub attempt_id: &'a str,
    /// The holder of the target's lease (this instance).
    pub holder: &'a str,
}

/// Like [`finish`], also ending the attempt and giving the target's lease back.
pub async fn finish_attempt(
    vault: &Vault,
    settings: &ProvisioningConfig,
    job: &Claimed,
    result: JobResult,
    end: Option<AttemptEnd<'_>>,
) -> DomainResult<()> {
    let mut tx = vault.db().begin_write().await?;
    if let Some(e) = end {
        let name = match &result {
            JobResult::Done => "done",
            JobResult::Blocked(_) => "blocked",
            JobResult::Retry(_) => "retry",
            JobResult::Fail(_) => "failed",
        };
        sqlx::query("UPDATE prov_attempts SET finished_at = $1, result = $2 WHERE attempt_id = $3")
            .bind(fmt_time(vault.now()))
            .bind(name)
            .bind(e.attempt_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE target_leases SET holder = NULL, lease_until = NULL \
             WHERE target = $1 AND holder = $2",
        )
        .bind(&job.target)
        .bind(e.holder)
        .execute(&mut *tx)
        .await?;
    }
    let Some(row) = sqlx::query("SELECT generation, claim_token FROM prov_jobs WHERE job_id = $1")
        .bind(&job.job_id)
        .fetch_optional(&mut *tx)
        .await?
    else {
        tx.commit().await?;
        return Ok(());
    };
    let token: Option<String> = row.try_get("claim_token")?;
    if token.as_deref() != Some(job.token.as_str()) {
        // Our lease ran out and another worker holds the job now.
        tx.commit().await?;
        tracing::warn!(job = %job.job_id, "job finished after its lease; result dropped");
        return Ok(());
    }
    let now = vault.now();
    let now_s = fmt_time(now);
    let generation: i64 = row.try_get("generation")?;
    if generation != job.generation {
        // Re-armed while running: run it again with the new operation.
        sqlx::query(
            "UPDATE prov_jobs SET state = 'pending', claim_token = NULL, claimed_until = NULL, \
             next_attempt_at = $1, updated_at = $1 WHERE job_id = $2",
        )
        .bind(&now_s)
        .bind(&job.job_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        return Ok(());
    }
    let case = case_of(&mut tx, &job.person).await?;
    let (state, error, next, action, outcome): (&str, Option<String>, String, String, Outcome) =
        match &result {
            JobResult::Done => (
                "done",
                None,
                now_s.clone(),
                format!("provisioning.{}", job.op.as_str()),
                Outcome::Ok,
            ),
            JobResult::Blocked(b) => {
                let facts = AlertFacts::EgressBlocked {
                    rule: b.rule.as_str().to_string(),
                    attributes: b.attributes.clone(),
                };
                let reason = facts.english();
                raise_alert(
                    vault,
                    &mut tx,
                    "egress-blocked",
                    Some(&job.target),
                    case.as_ref(),
                    Some(&job.person),
                    &facts,
                )
                .await?;
                (
                    "failed",
                    Some(reason),
                    now_s.clone(),
                    "provisioning.blocked".to_string(),
                    Outcome::Denied,
                )
            }
            JobResult::Retry(e) if job.attempts < i64::from(settings.max_attempts) => {
                let next = fmt_time(now + backoff(settings, job.attempts));
                sqlx::query(
                    "UPDATE prov_jobs SET state = 'pending', last_error = $1, next_attempt_at = $2, \
                     claim_token = NULL, claimed_until = NULL, updated_at = $3 WHERE job_id = $4",
                )
                .bind(e)
                .bind(&next)
                .bind(&now_s)
                .bind(&job.job_id)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                tracing::info!(job = %job.job_id, person = %job.person, target_name = %job.target,
                    attempt = job.attempts, "job will be retried");
                return Ok(());
            }
            JobResult::Retry(e) | JobResult::Fail(e) => {
                let facts = AlertFacts::JobFailed {
                    attempts: matches!(result, JobResult::Retry(_)).then_some(job.attempts),
                    error: e.clone(),
                };
                let reason = facts.english();
                raise_alert(
                    vault,
                    &mut tx,
                    "job-failed",
                    Some(&job.target),
                    case.as_ref(),
                    Some(&job.person),
                    &facts,
                )
                .await?;
                (
                    "failed",
                    Some(reason),
                    now_s.clone(),
                    "provisioning.job-failed".to_string(),
                    Outcome::Failed,
                )
            }
        };
    sqlx::query(
        "UPDATE prov_jobs SET state = $1, last_error = $2, next_attempt_at = $3, \
         claim_token = NULL, claimed_until = NULL, updated_at = $4 WHERE job_id = $5",
    )
    .bind(state)
    .bind(error.clone())
    .bind(&next)
    .bind(&now_s)
    .bind(&job.job_id)
    .execute(&mut *tx)
    .await?;
    vault
        .audit(
            &mut tx,
            &NewEvent {
                actor: "system",
                action: &action,
                case_id: case,
                purpose: None,
                outcome,
            },
        )
        .await?;
    tx.commit().await?;
    match state {
        "done" => {
            tracing::info!(job = %job.job_id, person = %job.person, target_name = %job.target, op = job.op.as_str(), "job done")
        }
        _ => {
            tracing::warn!(job = %job.job_id, person = %job.person, target_name = %job.target, op = job.op.as_str(), "job failed")
        }
    }
    Ok(())
}

/// A job as listed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobView {
    pub job_id: String,
    pub person_id: String,
    pub case_id: Option<String>,
    /// `pupil` or `guardian-N`.
    pub subject: Option<String>,
    pub target: String,
    pub op: Op,
    /// `pending`, `running`, `done` or `failed`.
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: String,
    /// Why the last attempt failed: target, operation, codes; never a value.
    pub last_error: Option<String>,
    pub updated_at: String,
}

/// Which jobs to list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct JobFilter {
    /// `pending`, `running`, `done` or `failed`.
    pub state: Option<String>,
    pub target: Option<String>,
    pub case_id: Option<String>,
}

/// The jobs, newest change first (at most 1000).
pub async fn list(vault: &Vault, filter: &JobFilter) -> DomainResult<Vec<JobView>> {
    if let Some(s) = &filter.state {
        if !["pending", "running", "done", "failed"].contains(&s.as_str()) {
            return Err(DomainError::invalid(
                "state",
                "job.state-unknown",
                "A job state is pending, running, done or failed.",
            ));
        }
    }
    let rows = sqlx::query(
        "SELECT j.job_id, j.person_id, p.case_id, p.subject, j.target, j.op, j.state, j.attempts, \
         j.next_attempt_at, j.last_error, j.updated_at FROM prov_jobs j \
         LEFT JOIN prov_persons p ON p.person_id = j.person_id \
         WHERE ($1 = '' OR j.state = $1) AND ($2 = '' OR j.target = $2) \
         AND ($3 = '' OR p.case_id = $3) \
         ORDER BY j.updated_at DESC, j.job_id LIMIT 1000",
    )
    .bind(filter.state.clone().unwrap_or_default())
    .bind(filter.target.clone().unwrap_or_default())
    .bind(filter.case_id.clone().unwrap_or_default())
    .fetch_all(vault.db().pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(JobView {
                job_id: r.try_get("job_id")?,
                person_id: r.try_get("person_id")?,
                case_id: r.try_get("case_id")?,
                subject: r.try_get("subject")?,
                target: r.try_get("target")?,
                op: Op::parse(&r.try_get::<String, _>("op")?)?,
                state: r.try_get("state")?,
                attempts: r.try_get("attempts")?,
                next_attempt_at: r.try_get("next_attempt_at")?,
                last_error: r.try_get("last_error")?,
                updated_at: r.try_get("updated_at")?,
            })
        })
        .collect()
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
    let vault = &ctx.vault;
    let mut tx = vault.db().begin_write().await?;
    let row = sqlx::query("SELECT person_id, target, op FROM prov_jobs WHERE job_id = $1")
        .bind(job_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(DomainError::NotFound)?;
    let person: PersonId = row
        .try_get::<String, _>("person_id")?
        .parse()
        .map_err(|_| DomainError::Internal("stored person id is malformed".into()))?;
    let target = TargetName::new(&row.try_get::<String, _>("target")?)
        .map_err(|_| DomainError::Internal("stored target name is malformed".into()))?;
    let op = Op::parse(&row.try_get::<String, _>("op")?)?;
    arm(&mut tx, vault.now(), &person, &target, op, Arm::Operator).await?;
    let case = case_of(&mut tx, &person).await?;
    vault
        .audit(
            &mut tx,
            &NewEvent {
                actor,
                action: Action::SyncApply.as_str(),
                case_id: case,
                purpose: None,
                outcome: Outcome::Ok,
            },
        )
        .await?;
    tx.commit().await?;
    ctx.runtime.wake();
    list(vault, &JobFilter::default())
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

/// Job counts per target and state.
pub async fn counts(vault: &Vault) -> DomainResult<Vec<(String, String, i64)>> {
    let rows = sqlx::query(
        "SELECT target, state, COUNT(*) AS n FROM prov_jobs GROUP BY target, state ORDER BY target, state",
    )
    .fetch_all(vault.db().pool())
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("target")?, r.try_get("state")?, r.try_get("n")?)))
        .collect()
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
