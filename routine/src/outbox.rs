//! The outbox's store: one job row per (person, target), in `prov_jobs`, and the alerts
//! a job raises (`prov_alerts`). Delivery (`fiktiv-delivery`) decides what a job does
//! and how it ended; every row it reads or writes goes through here.
//!
//! - **Arming.** A change of the desired state (or an apply, a reconciliation, a retry)
//!   sets the row's operation (`upsert`, `disable`, `delete`), bumps its generation,
//!   resets its attempts and makes it due now. A row that is running keeps running; its
//!   worker sees the new generation when it finishes and leaves the row pending.
//! - **Claiming.** A worker claims due rows in one write transaction: `FOR UPDATE SKIP
//!   LOCKED` on PostgreSQL (several instances never claim the same row), `BEGIN
//!   IMMEDIATE` on SQLite. A claim counts an attempt and takes a lease (on the vault
//!   clock) and a random claim token; a row whose lease ran out (its worker died) is
//!   claimed again, so nothing is lost across a restart. Jobs on a target whose lease
//!   another worker holds ([`crate::cluster`]) are left for later.
//! - **Finishing.** Only the holder of the current claim token may finish a row; a row
//!   re-armed while it ran is left pending to run again. The job's end, its alert and
//!   its audit event are one transaction. `last_error` is a clear reason with target,
//!   operation and codes, never a value.

use std::collections::HashSet;

use chrono::{DateTime, TimeDelta, Utc};
use fiktiv_policies::Action;
use fiktiv_provisioning::{PersonId, TargetName};
use fiktiv_vault::audit::{fmt_time, NewEvent, Outcome};
use fiktiv_vault::{Backend, CaseId, Vault};
use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Row};
use utoipa::{IntoParams, ToSchema};

use crate::desired::Desired;
use crate::{DomainError, DomainResult};

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

/// Every (person id, target) that has a job row, in any state.
pub async fn job_keys(conn: &mut AnyConnection) -> DomainResult<HashSet<(String, String)>> {
    Ok(sqlx::query("SELECT person_id, target FROM prov_jobs")
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("person_id")?, r.try_get("target")?)))
        .collect::<Result<_, sqlx::Error>>()?)
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

/// Claims up to `limit` due jobs (and jobs whose lease ran out), at most one per
/// target, leaving out the targets in `busy` (the caller runs a job there) and the
/// targets whose lease another worker holds ([`crate::cluster`]). Each claim holds the
/// job for `lease`.
pub async fn claim(
    vault: &Vault,
    lease: TimeDelta,
    limit: usize,
    busy: &[String],
) -> DomainResult<Vec<Claimed>> {
    let now = vault.now();
    let now_s = fmt_time(now);
    let lease = fmt_time(now + lease);
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

/// The case a provisioned person belongs to.
pub async fn case_of(conn: &mut AnyConnection, person: &PersonId) -> DomainResult<Option<CaseId>> {
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

/// What else ends with a job's attempt ([`crate::cluster`]): its `prov_attempts` row and
/// the target's lease, recorded in the same transaction as the job's result.
#[derive(Debug, Clone, Copy)]
pub struct AttemptEnd<'a> {
    pub attempt_id: &'a str,
    /// The holder of the target's lease (this instance).
    pub holder: &'a str,
}

/// Why a job failed for good: its reason, its alert, and its audit action and outcome.
#[derive(Debug, Clone)]
pub struct Failure {
    pub reason: String,
    pub alert_kind: &'static str,
    pub alert_facts_json: String,
    pub action: &'static str,
    pub outcome: Outcome,
}

/// How a claimed job ended, as delivery decided it.
#[derive(Debug, Clone)]
pub enum Ending {
    /// Done on the target.
    Done,
    /// A transient failure, tried again at `next`.
    RetryAt { error: String, next: DateTime<Utc> },
    /// The egress guard refused the record.
    Blocked(Failure),
    /// Out of attempts, or not fixable by retrying.
    Failed(Failure),
}

impl Ending {
    /// The attempt's result as `prov_attempts` records it.
    fn attempt_result(&self) -> &'static str {
        match self {
            Ending::Done => "done",
            Ending::RetryAt { .. } => "retry",
            Ending::Blocked(_) => "blocked",
            Ending::Failed(_) => "failed",
        }
    }
}

/// Records how a claimed job ended, with its alert and audit event, in one transaction;
/// with `end`, also ends the attempt and gives the target's lease back. A claim that is
/// no longer the caller's (its lease ran out) records nothing of the job; a job
/// re-armed while it ran is left pending, to run again with its new operation.
pub async fn finish(
    vault: &Vault,
    job: &Claimed,
    ending: Ending,
    end: Option<AttemptEnd<'_>>,
) -> DomainResult<()> {
    let mut tx = vault.db().begin_write().await?;
    if let Some(e) = end {
        sqlx::query("UPDATE prov_attempts SET finished_at = $1, result = $2 WHERE attempt_id = $3")
            .bind(fmt_time(vault.now()))
            .bind(ending.attempt_result())
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
    let (state, error, action, outcome): (&str, Option<String>, String, Outcome) = match ending {
        Ending::Done => (
            "done",
            None,
            format!("provisioning.{}", job.op.as_str()),
            Outcome::Ok,
        ),
        Ending::RetryAt { error, next } => {
            sqlx::query(
                "UPDATE prov_jobs SET state = 'pending', last_error = $1, next_attempt_at = $2, \
                 claim_token = NULL, claimed_until = NULL, updated_at = $3 WHERE job_id = $4",
            )
            .bind(error)
            .bind(fmt_time(next))
            .bind(&now_s)
            .bind(&job.job_id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            tracing::info!(job = %job.job_id, person = %job.person, target_name = %job.target,
                attempt = job.attempts, "job will be retried");
            return Ok(());
        }
        Ending::Blocked(f) | Ending::Failed(f) => {
            crate::alerts::insert(
                &mut tx,
                now,
                &crate::alerts::NewAlert {
                    kind: f.alert_kind,
                    target: Some(&job.target),
                    case: case.as_ref(),
                    person: Some(&job.person),
                    detail: &f.reason,
                    facts_json: &f.alert_facts_json,
                },
            )
            .await?;
            ("failed", Some(f.reason), f.action.to_string(), f.outcome)
        }
    };
    sqlx::query(
        "UPDATE prov_jobs SET state = $1, last_error = $2, next_attempt_at = $3, \
         claim_token = NULL, claimed_until = NULL, updated_at = $3 WHERE job_id = $4",
    )
    .bind(state)
    .bind(error)
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

/// Re-arms a job (a failed one, typically) with its current operation, audited as
/// `actor`'s `sync.apply`, in one transaction. `NotFound` for an unknown job.
pub async fn rearm(vault: &Vault, actor: &str, job_id: &str) -> DomainResult<()> {
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
    Ok(())
}

/// Marks deprovisioning requests done when every person of the case is absent and
/// every job of theirs is done. One transaction and audit event per case.
pub async fn mark_deprovisioned(vault: &Vault) -> DomainResult<usize> {
    let due: Vec<String> = sqlx::query(
        "SELECT d.case_id FROM deprovision_requests d WHERE d.done_at IS NULL \
         AND NOT EXISTS (SELECT 1 FROM prov_persons p WHERE p.case_id = d.case_id AND p.desired <> 'absent') \
         AND NOT EXISTS (SELECT 1 FROM prov_jobs j JOIN prov_persons p ON p.person_id = j.person_id \
                         WHERE p.case_id = d.case_id AND j.state <> 'done')",
    )
    .fetch_all(vault.db().pool())
    .await?
    .iter()
    .map(|r| r.try_get("case_id"))
    .collect::<Result<_, _>>()?;
    let mut n = 0;
    for c in due {
        let Ok(case) = c.parse() else { continue };
        let mut tx = vault.db().begin_write().await?;
        sqlx::query(
            "UPDATE deprovision_requests SET done_at = $1 WHERE case_id = $2 AND done_at IS NULL",
        )
        .bind(fmt_time(vault.now()))
        .bind(&c)
        .execute(&mut *tx)
        .await?;
        vault
            .audit(
                &mut tx,
                &NewEvent {
                    actor: "system",
                    action: "provisioning.deprovisioned",
                    case_id: Some(case),
                    purpose: None,
                    outcome: Outcome::Ok,
                },
            )
            .await?;
        tx.commit().await?;
        n += 1;
    }
    Ok(n)
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
