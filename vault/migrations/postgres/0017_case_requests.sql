-- A unit's request to take over a protected pupil's case (the pupil moves to it within
-- the municipality: kind 'move') or to reopen an ended case (the pupil comes back:
-- kind 'reopen'). Made by the receiving unit from the pupil's personal number (found by
-- blind index, never stored here), decided by the case's unit or an approver, never by
-- the person who asked. Nothing of the case changes until it is accepted; a refused or
-- expired request changes nothing.
CREATE TABLE case_requests (
    request_id     TEXT   PRIMARY KEY,
    kind           TEXT   NOT NULL CHECK (kind IN ('move', 'reopen')),
    case_id        TEXT   NOT NULL,
    from_unit      TEXT   NOT NULL,
    to_unit        TEXT   NOT NULL,
    groups_json    TEXT   NOT NULL,
    requested_by   TEXT   NOT NULL,
    requested_at   TEXT   NOT NULL,
    expires_at     TEXT   NOT NULL,
    state          TEXT   NOT NULL CHECK (state IN ('pending', 'accepted', 'refused', 'expired')),
    decided_by     TEXT,
    decided_at     TEXT,
    decision_reason TEXT
);
CREATE INDEX case_requests_case ON case_requests(case_id);
CREATE INDEX case_requests_to_unit ON case_requests(to_unit);
-- At most one pending request per case.
CREATE UNIQUE INDEX case_requests_one_pending ON case_requests(case_id) WHERE state = 'pending';

-- A reopened case provisions nothing until the unit writes a new plan version: set when
-- the case is reopened, cleared by the next plan version.
ALTER TABLE cases ADD COLUMN plan_required_since TEXT;

-- A change of a registered pupil's fictitious identity (a wrong name, a birth date to
-- correct): asked by the school like an order, registered by the central administrator,
-- then provisioned in place (same person, same accounts). Holds only the fictitious
-- identity. At most one pending change per case.
CREATE TABLE fict_changes (
    change_id      TEXT   PRIMARY KEY,
    case_id        TEXT   NOT NULL,
    fict_first     TEXT   NOT NULL,
    fict_last      TEXT   NOT NULL,
    fict_birth     TEXT   NOT NULL,
    reason         TEXT   NOT NULL,
    requested_by   TEXT   NOT NULL,
    requested_at   TEXT   NOT NULL,
    state          TEXT   NOT NULL CHECK (state IN ('pending', 'registered')),
    registered_by  TEXT,
    registered_at  TEXT,
    number         TEXT
);
CREATE INDEX fict_changes_case ON fict_changes(case_id);
CREATE UNIQUE INDEX fict_changes_one_pending ON fict_changes(case_id) WHERE state = 'pending';

-- This instance's key pair for case transfer packages between municipalities (HPKE,
-- X25519): the public key is given to other municipalities; the secret is sealed under
-- a key derived from the root key (label `fiktiv/transfer-secrets`). One row.
CREATE TABLE transfer_keys (
    id             BIGINT PRIMARY KEY CHECK (id = 1),
    public_key     TEXT   NOT NULL,
    sealed_secret  BYTEA  NOT NULL,
    created_at     TEXT   NOT NULL
);

-- Packages imported (a package is imported once: a replay is refused).
CREATE TABLE transfer_imports (
    package_id     TEXT   PRIMARY KEY,
    sender         TEXT   NOT NULL,
    case_id        TEXT   NOT NULL,
    imported_at    TEXT   NOT NULL
);
