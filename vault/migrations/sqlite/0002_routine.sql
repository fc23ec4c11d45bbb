-- The protected-pupil routine: API tokens, cases, sealed action-plan versions, the
-- digital-login decision, fictitious identities, guardian links, orders, fictitious
-- numbers, staff told, reviews, reveal requests and deprovisioning requests.
--
-- Nothing here holds a real identity in the clear: the real identity is sealed in
-- sealed_records (0001), action-plan versions are sealed under the case's separate plan
-- key, and cases.pnr_index is the blind index of the pupil's real number (UNIQUE, so two
-- cases can never hold the same real pupil, also under concurrent requests).
-- Times are RFC 3339 UTC text, dates are YYYY-MM-DD text. Keep equal to the PostgreSQL
-- migration of the same number (BLOB there is BYTEA).

CREATE TABLE api_tokens (
    token_id     TEXT   PRIMARY KEY,
    name         TEXT   NOT NULL,
    roles        TEXT   NOT NULL,
    units        TEXT   NOT NULL,
    secret_hash  TEXT   NOT NULL UNIQUE,
    created_at   TEXT   NOT NULL,
    expires_at   TEXT   NOT NULL,
    revoked_at   TEXT
);

CREATE TABLE cases (
    case_id                  TEXT   PRIMARY KEY,
    unit                     TEXT   NOT NULL,
    country                  TEXT   NOT NULL CHECK (country IN ('se', 'no')),
    state                    TEXT   NOT NULL CHECK (state IN ('open', 'ordered', 'registered', 'ended')),
    opened_by                TEXT   NOT NULL,
    opened_at                TEXT   NOT NULL,
    last_review_on           TEXT   NOT NULL,
    plan_key                 TEXT   NOT NULL,
    pnr_index                TEXT   UNIQUE,
    login_decision           TEXT   CHECK (login_decision IN ('fictitious-user', 'no-digital-login')),
    guardians_informed_on    TEXT,
    decision_by              TEXT,
    decision_at              TEXT,
    fict_first               TEXT,
    fict_last                TEXT,
    fict_birth               TEXT,
    fict_by                  TEXT,
    fict_at                  TEXT,
    fict_number              TEXT,
    ended_on                 TEXT,
    end_reason               TEXT,
    ended_by                 TEXT,
    identity_shred_on        TEXT,
    plan_shred_on            TEXT,
    records_shred_on         TEXT,
    identity_shredded_at     TEXT,
    plan_shredded_at         TEXT,
    records_shredded_at      TEXT
);
CREATE INDEX cases_unit ON cases(unit);

CREATE TABLE plan_versions (
    case_id      TEXT   NOT NULL,
    version      BIGINT NOT NULL,
    dk_version   BIGINT NOT NULL,
    sealed       BLOB   NOT NULL,
    written_by   TEXT   NOT NULL,
    written_at   TEXT   NOT NULL,
    PRIMARY KEY (case_id, version)
);

CREATE TABLE guardians (
    case_id      TEXT   NOT NULL,
    guardian_no  BIGINT NOT NULL,
    linked       BIGINT NOT NULL CHECK (linked IN (0, 1)),
    fict_first   TEXT,
    fict_last    TEXT,
    fict_birth   TEXT,
    fict_number  TEXT,
    recorded_by  TEXT   NOT NULL,
    recorded_at  TEXT   NOT NULL,
    PRIMARY KEY (case_id, guardian_no)
);

-- Every fictitious number ever given out. A number is never given out twice, also
-- after its case was shredded (case_id is then cleared, the number stays reserved).
CREATE TABLE fictitious_numbers (
    number       TEXT   PRIMARY KEY,
    case_id      TEXT,
    subject      TEXT,
    assigned_at  TEXT   NOT NULL
);

CREATE TABLE orders (
    order_id       TEXT   PRIMARY KEY,
    case_id        TEXT   NOT NULL UNIQUE,
    unit           TEXT   NOT NULL,
    groups_json    TEXT   NOT NULL,
    platforms_json TEXT   NOT NULL,
    sent_by        TEXT   NOT NULL,
    sent_at        TEXT   NOT NULL,
    registered_by  TEXT,
    registered_at  TEXT
);

CREATE TABLE staff_told (
    case_id      TEXT   NOT NULL,
    seq          BIGINT NOT NULL,
    staff_json   TEXT   NOT NULL,
    told_on      TEXT   NOT NULL,
    recorded_by  TEXT   NOT NULL,
    recorded_at  TEXT   NOT NULL,
    PRIMARY KEY (case_id, seq)
);

CREATE TABLE reviews (
    case_id      TEXT   NOT NULL,
    seq          BIGINT NOT NULL,
    reviewed_on  TEXT   NOT NULL,
    outcome      TEXT   NOT NULL CHECK (outcome IN ('continue', 'plan-changed', 'end-protection')),
    recorded_by  TEXT   NOT NULL,
    recorded_at  TEXT   NOT NULL,
    PRIMARY KEY (case_id, seq)
);

CREATE TABLE reveal_requests (
    reveal_id    TEXT   PRIMARY KEY,
    case_id      TEXT   NOT NULL,
    subject      TEXT   NOT NULL,
    unit         TEXT   NOT NULL,
    requested_by TEXT   NOT NULL,
    purpose      TEXT   NOT NULL,
    requested_at TEXT   NOT NULL,
    state        TEXT   NOT NULL CHECK (state IN ('pending', 'approved', 'refused', 'read')),
    decided_by   TEXT,
    decided_at   TEXT,
    expires_at   TEXT,
    read_at      TEXT
);
CREATE INDEX reveal_requests_case ON reveal_requests(case_id);

-- Deprovisioning asked for when a case ends; the provisioning layer marks it done.
CREATE TABLE deprovision_requests (
    case_id      TEXT   PRIMARY KEY,
    requested_by TEXT   NOT NULL,
    requested_at TEXT   NOT NULL,
    done_at      TEXT
);
