-- Provisioning: targets managed through the API (their credential sealed), the
-- fictitious persons Fiktiv provisions (an opaque id per case and subject, and the
-- desired state), the outbox of jobs per (person, target), check and scan runs with
-- their progress, and alerts.
--
-- Nothing here holds a real identity, and no fictitious name either: the persons are
-- derived from the routine's tables when a job runs. last_error, error and detail are
-- fixed text with target names, codes and opaque ids only. Times are RFC 3339 UTC text
-- (fmt_time), so they compare as text. Keep equal to the PostgreSQL migration of the
-- same number (BLOB there is BYTEA).

CREATE TABLE prov_targets (
    name           TEXT   PRIMARY KEY,
    kind           TEXT   NOT NULL CHECK (kind IN ('ldap', 'scim', 'oneroster')),
    settings_json  TEXT   NOT NULL,
    secret_sealed  BLOB,
    updated_by     TEXT   NOT NULL,
    updated_at     TEXT   NOT NULL
);

-- One row per fictitious person (the pupil, each linked guardian). person_id is what
-- the targets see (externalId, the LDAP id attribute, the OneRoster sourcedId).
CREATE TABLE prov_persons (
    person_id      TEXT   PRIMARY KEY,
    case_id        TEXT   NOT NULL,
    subject        TEXT   NOT NULL,
    desired        TEXT   NOT NULL CHECK (desired IN ('present', 'disabled', 'absent')),
    desired_since  TEXT   NOT NULL,
    revision       BIGINT NOT NULL,
    created_at     TEXT   NOT NULL,
    UNIQUE (case_id, subject)
);

-- The outbox: one row per (person, target). A change of the desired state re-arms the
-- row (new op, generation + 1, attempts 0); a worker claims it (claim_token, lease
-- until claimed_until), and its result counts only while the claim is still its own.
CREATE TABLE prov_jobs (
    job_id          TEXT   PRIMARY KEY,
    person_id       TEXT   NOT NULL,
    target          TEXT   NOT NULL,
    op              TEXT   NOT NULL CHECK (op IN ('upsert', 'disable', 'delete')),
    state           TEXT   NOT NULL CHECK (state IN ('pending', 'running', 'done', 'failed')),
    revision        BIGINT NOT NULL,
    generation      BIGINT NOT NULL,
    attempts        BIGINT NOT NULL,
    next_attempt_at TEXT   NOT NULL,
    claim_token     TEXT,
    claimed_until   TEXT,
    last_error      TEXT,
    created_at      TEXT   NOT NULL,
    updated_at      TEXT   NOT NULL,
    UNIQUE (person_id, target)
);
CREATE INDEX prov_jobs_due ON prov_jobs(state, next_attempt_at);

-- Account checks, leak scans and reconciliations, with progress counters.
CREATE TABLE prov_runs (
    run_id         TEXT   PRIMARY KEY,
    kind           TEXT   NOT NULL CHECK (kind IN ('account-check', 'leak-scan', 'reconcile')),
    case_id        TEXT,
    unit           TEXT,
    target         TEXT,
    state          TEXT   NOT NULL CHECK (state IN ('running', 'done', 'failed')),
    started_by     TEXT   NOT NULL,
    started_at     TEXT   NOT NULL,
    finished_at    TEXT,
    targets_total  BIGINT NOT NULL,
    targets_done   BIGINT NOT NULL,
    items_done     BIGINT NOT NULL,
    findings       BIGINT NOT NULL,
    result_json    TEXT,
    error          TEXT
);
CREATE INDEX prov_runs_case ON prov_runs(case_id);

CREATE TABLE prov_alerts (
    alert_id        TEXT   PRIMARY KEY,
    kind            TEXT   NOT NULL CHECK (kind IN ('egress-blocked', 'leak-found', 'job-failed')),
    target          TEXT,
    case_id         TEXT,
    person_id       TEXT,
    detail          TEXT   NOT NULL,
    raised_at       TEXT   NOT NULL,
    acknowledged_by TEXT,
    acknowledged_at TEXT
);
