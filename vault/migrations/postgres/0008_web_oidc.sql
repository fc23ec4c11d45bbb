-- The web UI: OpenID Connect sign-in (docs/WEB.md, service/src/web/oidc.rs).
--
-- `auth` says how an account signs in: 'local' (password and TOTP, made with
-- `fiktiv users add`) or 'oidc' (made at its first sign-in through the municipality's
-- identity provider; its roles and units are taken from the ID token at every sign-in).
-- An 'oidc' account has no usable password hash and no TOTP secret.
--
-- web_oidc_flows holds the sign-ins and step-ups that were sent to the identity
-- provider and have not come back yet: single use, deleted when they come back and
-- after `expires_at`. The state is stored only as its SHA-256, and the flow is bound
-- to the browser that started it by the SHA-256 of a cookie value. The nonce and the
-- PKCE verifier are useless without the authorization code, which only the browser
-- gets. Keep equal to the migration of the same number for the other backend.

ALTER TABLE staff_users ADD COLUMN auth TEXT NOT NULL DEFAULT 'local'
    CHECK (auth IN ('local', 'oidc'));

CREATE TABLE web_oidc_flows (
    state_hash    TEXT   PRIMARY KEY,
    browser_hash  TEXT   NOT NULL,
    nonce         TEXT   NOT NULL,
    pkce_verifier TEXT   NOT NULL,
    purpose       TEXT   NOT NULL CHECK (purpose IN ('signin', 'step-up')),
    session_hash  TEXT,
    next_path     TEXT   NOT NULL,
    created_at    TEXT   NOT NULL,
    expires_at    TEXT   NOT NULL
);
CREATE INDEX web_oidc_flows_expiry ON web_oidc_flows(expires_at);
