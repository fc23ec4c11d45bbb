-- Vault tables: key versions, wrapped per-case data keys, sealed identities, blind
-- indexes, and the audit trail. Times are RFC 3339 UTC text.

CREATE TABLE key_versions (
    version      BIGINT PRIMARY KEY,
    state        TEXT   NOT NULL CHECK (state IN ('active', 'retiring', 'retired')),
    created_at   TEXT   NOT NULL,
    retired_at   TEXT,
    encryptions  BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE case_keys (
    case_id      TEXT   PRIMARY KEY,
    kek_version  BIGINT NOT NULL REFERENCES key_versions(version),
    dk_version   BIGINT NOT NULL,
    wrapped      BYTEA  NOT NULL,
    encryptions  BIGINT NOT NULL DEFAULT 0,
    created_at   TEXT   NOT NULL
);
CREATE INDEX case_keys_kek ON case_keys(kek_version);

-- A case's sealed records: the real identity of the pupil, and whatever else the
-- workflow seals (action plan versions). Opening needs the case's data key.
CREATE TABLE sealed_records (
    case_id      TEXT   NOT NULL,
    field        TEXT   NOT NULL,
    version      BIGINT NOT NULL,
    dk_version   BIGINT NOT NULL,
    sealed       BYTEA  NOT NULL,
    created_at   TEXT   NOT NULL,
    PRIMARY KEY (case_id, field, version)
);

CREATE TABLE blind_indexes (
    kind         TEXT   NOT NULL,
    idx          TEXT   NOT NULL,
    case_id      TEXT   NOT NULL,
    subject      TEXT   NOT NULL,
    PRIMARY KEY (kind, idx, case_id, subject)
);
CREATE INDEX blind_indexes_case ON blind_indexes(case_id);

-- Shredded cases: only the fact and the time, never what was shredded.
CREATE TABLE shredded_cases (
    case_id      TEXT   PRIMARY KEY,
    shredded_at  TEXT   NOT NULL
);

CREATE TABLE audit_events (
    seq          BIGINT PRIMARY KEY,
    event_id     TEXT   NOT NULL,
    at           TEXT   NOT NULL,
    actor        TEXT   NOT NULL,
    action       TEXT   NOT NULL,
    case_id      TEXT,
    purpose      TEXT,
    outcome      TEXT   NOT NULL,
    prev_hash    TEXT   NOT NULL,
    mac          TEXT   NOT NULL
);

CREATE TABLE audit_head (
    id           BIGINT PRIMARY KEY CHECK (id = 1),
    seq          BIGINT NOT NULL,
    hash         TEXT   NOT NULL,
    mac          TEXT   NOT NULL
);

INSERT INTO audit_head (id, seq, hash, mac) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000', '');
