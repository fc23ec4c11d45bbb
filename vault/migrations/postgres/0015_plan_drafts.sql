-- A plan being written when its author's session ended (idle or absolute timeout):
-- kept sealed under the case's plan key (field "plan-draft"), offered back to the same
-- person after they sign in again, deleted when they save or discard it. One per
-- person and case.
CREATE TABLE plan_drafts (
    case_id TEXT NOT NULL,
    principal TEXT NOT NULL,
    dk_version BIGINT NOT NULL,
    sealed BYTEA NOT NULL,
    saved_at TEXT NOT NULL,
    PRIMARY KEY (case_id, principal)
);
