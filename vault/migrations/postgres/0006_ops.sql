-- Operations: several `fiktiv serve` instances on one database, no leader.
--
-- schedules: one row per scheduled task (the reconciliation). An instance runs it only
--   if it moves next_due_at forward in one UPDATE (`... WHERE next_due_at <= now`), so
--   a task runs once across the cluster per interval.
-- target_leases: jobs on one target run one at a time across every instance (group
--   memberships are read-modify-write). A worker holds the target's lease while it runs
--   a job there; a lease that ran out (its instance died) can be taken over.
-- prov_attempts: one row per job attempt, with the instance that ran it and when, for
--   the operator ("what ran where") and for the cluster test. Pruned after 30 days.
-- prov_target_reconciled: when a reconciliation last read each target completely
--   (the metric fiktiv_reconcile_last_success_age_seconds).
-- prov_runs.holder / lease_until: the instance running a run, renewed while it runs,
--   so that recovery marks failed only the runs whose instance is gone.
--
-- Times are RFC 3339 UTC text (fmt_time). Nothing here holds personal data. Keep equal
-- to the SQLite migration of the same number.

CREATE TABLE schedules (
    name         TEXT   PRIMARY KEY,
    next_due_at  TEXT   NOT NULL,
    holder       TEXT,
    claimed_at   TEXT
);

CREATE TABLE target_leases (
    target       TEXT   PRIMARY KEY,
    holder       TEXT,
    lease_until  TEXT
);

CREATE TABLE prov_attempts (
    attempt_id   TEXT   PRIMARY KEY,
    job_id       TEXT   NOT NULL,
    target       TEXT   NOT NULL,
    op           TEXT   NOT NULL,
    holder       TEXT   NOT NULL,
    started_at   TEXT   NOT NULL,
    finished_at  TEXT,
    result       TEXT
);
CREATE INDEX prov_attempts_job ON prov_attempts(job_id);
CREATE INDEX prov_attempts_started ON prov_attempts(started_at);

CREATE TABLE prov_target_reconciled (
    target       TEXT   PRIMARY KEY,
    last_ok_at   TEXT   NOT NULL
);

ALTER TABLE prov_runs ADD COLUMN holder TEXT;
ALTER TABLE prov_runs ADD COLUMN lease_until TEXT;
