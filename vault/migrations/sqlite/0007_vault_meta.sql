-- The key-check value: a non-secret HMAC of a fixed label under the audit key, so a
-- wrong root key is refused at startup instead of silently writing a second chain.
CREATE TABLE vault_meta (
    id          BIGINT PRIMARY KEY CHECK (id = 1),
    key_check   TEXT   NOT NULL,
    created_at  TEXT   NOT NULL
);
