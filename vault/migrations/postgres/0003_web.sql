-- The web UI: local staff accounts and server-side sessions.
--
-- A staff account signs in with a password (Argon2id PHC string, never the password)
-- and a TOTP code (RFC 6238). The TOTP secret is sealed with the staff-secrets key
-- (vault/src/secrets.rs), bound to the account id; it is never stored in the clear.
-- A session row holds only the SHA-256 of the cookie's random id, never the id.
-- Times are RFC 3339 UTC text. Keep equal to the PostgreSQL migration of the same
-- number (BLOB there is BYTEA).

CREATE TABLE staff_users (
    user_id          TEXT   PRIMARY KEY,
    name             TEXT   NOT NULL UNIQUE,
    roles            TEXT   NOT NULL,
    units            TEXT   NOT NULL,
    password_hash    TEXT   NOT NULL,
    must_change_password BIGINT NOT NULL CHECK (must_change_password IN (0, 1)),
    totp_sealed      BYTEA  NOT NULL,
    totp_last_step   BIGINT NOT NULL DEFAULT 0,
    failed_count     BIGINT NOT NULL DEFAULT 0,
    locked_until     TEXT,
    disabled_at      TEXT,
    created_at       TEXT   NOT NULL,
    updated_at       TEXT   NOT NULL
);

CREATE TABLE web_sessions (
    session_hash     TEXT   PRIMARY KEY,
    user_id          TEXT   NOT NULL REFERENCES staff_users(user_id),
    csrf_token       TEXT   NOT NULL,
    created_at       TEXT   NOT NULL,
    last_seen_at     TEXT   NOT NULL,
    stepped_up_at    TEXT
);
CREATE INDEX web_sessions_user ON web_sessions(user_id);
