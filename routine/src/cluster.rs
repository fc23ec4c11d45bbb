//! Several `fiktiv serve` instances on one PostgreSQL database, with no leader.
//!
//! Everything that must happen once, or one at a time, is decided by the database, with
//! leases on the vault clock, so an instance that dies holds nothing for long:
//!
//! | what | how |
//! |---|---|
//! | a job runs on one instance | `prov_jobs` claimed with `FOR UPDATE SKIP LOCKED` (PostgreSQL) / `BEGIN IMMEDIATE` (SQLite), with a lease (the service's `provisioning::jobs::claim`) |
//! | jobs on one target run one at a time | a lease per target in `target_leases` ([`acquire_target`]) |
//! | a schedule (the reconciliation) runs once per interval | one `UPDATE schedules ... WHERE next_due_at <= now` moves the due time forward; only the instance whose update took effect runs it ([`claim_schedule`]) |
//! | an interrupted run is recovered | runs carry a lease renewed while they run; recovery marks failed only runs whose lease ran out (the service's `provisioning::checks::recover_runs`) |
//!
//! Each instance has a random id (the service's `provisioning::Runtime::instance`),
//! written as `holder`; it says nothing about the host. The store of these tables
//! (`schedules`, `target_leases`, `prov_attempts`, `prov_target_reconciled`) is here, in
//! the routine, with the rest of the SQL; the service's runtime calls it.
//!
//! Every function here is a single statement (or an insert-if-missing and one
//! statement), so it is atomic on both backends: on PostgreSQL, concurrent `UPDATE`s of
//! one row wait for each other and re-check their `WHERE` against the committed row; on
//! SQLite there is one writer at a time.

use chrono::{DateTime, TimeDelta, Utc};
use fiktiv_vault::audit::fmt_time;
use fiktiv_vault::Vault;

use crate::DomainResult;

/// The reconciliation's schedule.
pub const RECONCILE: &str = "reconcile";

/// How long job attempts are kept in `prov_attempts`.
pub const ATTEMPTS_KEPT_DAYS: i64 = 30;

/// Claims the next run of the schedule `name` for `holder`, if it is due at `now`.
/// Returns true for exactly one caller per due time, across every instance; the next
/// due time becomes `now + interval`.
pub async fn claim_schedule(
    vault: &Vault,
    name: &str,
    holder: &str,
    interval: TimeDelta,
) -> DomainResult<bool> {
    let pool = vault.db().pool();
    let now = vault.now();
    // '' sorts before every time: a new schedule is due at once.
    sqlx::query(
        "INSERT INTO schedules (name, next_due_at) VALUES ($1, '') ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .execute(pool)
    .await?;
    let n = sqlx::query(
        "UPDATE schedules SET next_due_at = $1, holder = $2, claimed_at = $3 \
         WHERE name = $4 AND next_due_at <= $3",
    )
    .bind(fmt_time(now + interval))
    .bind(holder)
    .bind(fmt_time(now))
    .bind(name)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Makes the schedule `name` due now (a run asked for on demand); the next
/// [`claim_schedule`] of any instance takes it.
pub async fn make_due(vault: &Vault, name: &str) -> DomainResult<()> {
    sqlx::query(
        "INSERT INTO schedules (name, next_due_at) VALUES ($1, '') \
         ON CONFLICT (name) DO UPDATE SET next_due_at = ''",
    )
    .bind(name)
    .execute(vault.db().pool())
    .await?;
    Ok(())
}

/// Takes the lease of `target` for `holder` until `now + lease`, if nobody else holds
/// it (or their lease ran out). Returns whether `holder` holds it now.
pub async fn acquire_target(
    vault: &Vault,
    target: &str,
    holder: &str,
    lease: TimeDelta,
) -> DomainResult<bool> {
    let pool = vault.db().pool();
    let now = vault.now();
    sqlx::query(
        "INSERT INTO target_leases (target, holder, lease_until) VALUES ($1, NULL, NULL) \
         ON CONFLICT (target) DO NOTHING",
    )
    .bind(target)
    .execute(pool)
    .await?;
    let n = sqlx::query(
        "UPDATE target_leases SET holder = $1, lease_until = $2 WHERE target = $3 \
         AND (holder IS NULL OR lease_until IS NULL OR lease_until < $4 OR holder = $1)",
    )
    .bind(holder)
    .bind(fmt_time(now + lease))
    .bind(target)
    .bind(fmt_time(now))
    .execute(pool)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Gives the lease of `target` back (only if `holder` still holds it).
pub async fn release_target(vault: &Vault, target: &str, holder: &str) -> DomainResult<()> {
    sqlx::query(
        "UPDATE target_leases SET holder = NULL, lease_until = NULL \
         WHERE target = $1 AND holder = $2",
    )
    .bind(target)
    .bind(holder)
    .execute(vault.db().pool())
    .await?;
    Ok(())
}

/// Takes the lease of `target` for `holder` (as [`acquire_target`]) and, if that
/// worked, records the start of an attempt of the job, in one transaction. Returns the
/// attempt's id, or None when another holder has the target.
pub async fn begin_attempt(
    vault: &Vault,
    job_id: &str,
    target: &str,
    op: &str,
    holder: &str,
    lease: TimeDelta,
) -> DomainResult<Option<String>> {
    let now = vault.now();
    let mut tx = vault.db().begin_write().await?;
    sqlx::query(
        "INSERT INTO target_leases (target, holder, lease_until) VALUES ($1, NULL, NULL) \
         ON CONFLICT (target) DO NOTHING",
    )
    .bind(target)
    .execute(&mut *tx)
    .await?;
    let n = sqlx::query(
        "UPDATE target_leases SET holder = $1, lease_until = $2 WHERE target = $3 \
         AND (holder IS NULL OR lease_until IS NULL OR lease_until < $4 OR holder = $1)",
    )
    .bind(holder)
    .bind(fmt_time(now + lease))
    .bind(target)
    .bind(fmt_time(now))
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if n != 1 {
        tx.commit().await?;
        return Ok(None);
    }
    let id = uuid::Uuid::new_v4().to_string();
    sqlx::query(
        "INSERT INTO prov_attempts (attempt_id, job_id, target, op, holder, started_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&id)
    .bind(job_id)
    .bind(target)
    .bind(op)
    .bind(holder)
    .bind(fmt_time(now))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(id))
}

/// Records that `holder` starts an attempt of a job. Returns the attempt's id.
pub async fn attempt_started(
    vault: &Vault,
    job_id: &str,
    target: &str,
    op: &str,
    holder: &str,
) -> DomainResult<String> {
    let id = uuid::Uuid::new_v4().to_string();
    sqlx::query(
        "INSERT INTO prov_attempts (attempt_id, job_id, target, op, holder, started_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&id)
    .bind(job_id)
    .bind(target)
    .bind(op)
    .bind(holder)
    .bind(fmt_time(vault.now()))
    .execute(vault.db().pool())
    .await?;
    Ok(id)
}

/// Records how an attempt ended (`done`, `retry`, `failed`, `blocked`).
pub async fn attempt_finished(vault: &Vault, attempt_id: &str, result: &str) -> DomainResult<()> {
    sqlx::query("UPDATE prov_attempts SET finished_at = $1, result = $2 WHERE attempt_id = $3")
        .bind(fmt_time(vault.now()))
        .bind(result)
        .bind(attempt_id)
        .execute(vault.db().pool())
        .await?;
    Ok(())
}

/// Deletes attempts that started before `now - ATTEMPTS_KEPT_DAYS`.
pub async fn prune_attempts(vault: &Vault, now: DateTime<Utc>) -> DomainResult<u64> {
    Ok(
        sqlx::query("DELETE FROM prov_attempts WHERE started_at < $1")
            .bind(fmt_time(now - TimeDelta::days(ATTEMPTS_KEPT_DAYS)))
            .execute(vault.db().pool())
            .await?
            .rows_affected(),
    )
}

/// Records that a reconciliation read `target` completely at `at`.
pub async fn target_reconciled(vault: &Vault, target: &str, at: DateTime<Utc>) -> DomainResult<()> {
    sqlx::query(
        "INSERT INTO prov_target_reconciled (target, last_ok_at) VALUES ($1, $2) \
         ON CONFLICT (target) DO UPDATE SET last_ok_at = excluded.last_ok_at",
    )
    .bind(target)
    .bind(fmt_time(at))
    .execute(vault.db().pool())
    .await?;
    Ok(())
}
