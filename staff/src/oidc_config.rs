//! `[web.oidc]` in the configuration file: sign-in through one OpenID provider. The
//! service's configuration (`fiktiv::config`) holds it as `web.oidc`; the flow that
//! uses it is [`crate::oidc`].

use std::path::PathBuf;

use serde::Deserialize;

/// The environment variable that holds the OpenID Connect client secret (wins over
/// `[web.oidc] client_secret_file`).
pub const OIDC_CLIENT_SECRET_ENV: &str = "FIKTIV_OIDC_CLIENT_SECRET";

/// `[web.oidc]`: sign-in with the authorization code flow (PKCE, state, nonce) against
/// one OpenID provider. Checked at start (`crate::oidc::Settings::from_config`);
/// see docs/WEB.md and docs/CONFIGURATION.md. The client secret is never in this file:
/// it comes from `FIKTIV_OIDC_CLIENT_SECRET` or from `client_secret_file`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The name on the sign-in button: "Sign in with <provider_name>".
    pub provider_name: String,
    /// The issuer URL (`https://…`); discovery reads
    /// `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    /// The client id Fiktiv has at the provider.
    pub client_id: String,
    /// A file that holds the client secret (mode 0600 or stricter).
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// Where the provider sends the browser back: `https://<host>/signin/oidc/callback`.
    pub redirect_url: String,
    /// Scopes to ask for; `openid` is always asked for.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// The ID-token claim whose value becomes the account name (principal
    /// `staff:<value>`).
    #[serde(default = "default_subject_claim")]
    pub subject_claim: String,
    /// Claim values that give a role (`[[web.oidc.roles]]`). A person none of them
    /// matches is refused.
    #[serde(default)]
    pub roles: Vec<OidcRoleRule>,
    /// The ID-token claim that holds the school unit codes (a string or a list).
    #[serde(default)]
    pub unit_claim: Option<String>,
    /// Only values of `unit_claim` that start with this prefix are unit codes (the
    /// prefix is removed), for example `"fiktiv-unit-"` in a groups claim.
    #[serde(default)]
    pub unit_prefix: Option<String>,
    /// Ask the provider to authenticate the person at every sign-in (`prompt=login`),
    /// so a provider session left open on a shared computer does not open Fiktiv.
    #[serde(default = "default_true")]
    pub prompt_login: bool,
    /// Authentication context classes to ask for (`acr_values`); when set, the ID
    /// token's `acr` must be one of them, at sign-in and at step-up.
    #[serde(default)]
    pub acr_values: Vec<String>,
    /// TEST ONLY: allow `http://` for the issuer, its endpoints and the redirect URL,
    /// and only on a loopback address (127.0.0.0/8, ::1, localhost). Never in production.
    #[serde(default)]
    pub allow_insecure_http_for_tests: bool,
}

fn default_subject_claim() -> String {
    "sub".to_owned()
}

fn default_true() -> bool {
    true
}

/// One `[[web.oidc.roles]]` rule: when the claim (a string or a list of strings) holds
/// `value`, the person has `role` (`central-admin`, `school`, `approver`, `auditor`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcRoleRule {
    pub claim: String,
    pub value: String,
    pub role: String,
}
