//! OpenID Connect sign-in through the municipality's identity provider (`[web.oidc]`).
//!
//! The authorization code flow with PKCE (S256), `state` and `nonce`, using the
//! `openidconnect` crate over reqwest with rustls:
//!
//! 1. `GET /signin/oidc` (or `GET /step-up/oidc` for a signed-in OIDC account) makes a
//!    flow: a random state, nonce and PKCE verifier, stored server-side in
//!    `web_oidc_flows` (the state only as its SHA-256) for [`FLOW_TTL_SECS`], bound to
//!    this browser by the SHA-256 of the `__Host-fiktiv-oidc` cookie. The browser is
//!    sent to the provider's authorization endpoint.
//! 2. `GET /signin/oidc/callback` takes the flow (single use: the row is deleted at
//!    once), checks the browser cookie, exchanges the code with the PKCE verifier, and
//!    verifies the ID token: signature against the provider's JWKS (from discovery;
//!    asymmetric algorithms only), issuer, audience, expiry and nonce, with the vault's
//!    clock. Claims are read from the verified ID token only, never from userinfo.
//! 3. The claims are mapped to an account: the name from `subject_claim`, roles from
//!    `[[web.oidc.roles]]`, units from `unit_claim`. No role: refused. The account is a
//!    `staff_users` row with `auth = 'oidc'`, made at the first sign-in and updated at
//!    every one; its principal is `staff:<name>` like a local account's, so the one
//!    [`fiktiv_policies::Authorizer`] decides for it exactly as for anybody else.
//!
//! Every outcome is audited (`web.signin` or `web.step-up`, purpose `oidc` when it
//! succeeds, `refused: oidc-…` when it does not). Neither tokens, codes, the client
//! secret nor claim values are ever logged.
//!
//! **Step-up.** Revealing a real identity needs the second factor again. For an OIDC
//! account that is a fresh authentication at the provider: the step-up flow sends
//! `prompt=login` and `max_age=0`, and the ID token that comes back must carry an
//! `auth_time` no earlier than the start of the flow (less [`AUTH_TIME_SKEW_SECS`]),
//! and name the same person as the session. The provider is trusted to ask for its
//! second factor at every interactive sign-in (or set `acr_values`).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, TimeDelta, Utc};
use fiktiv_policies::Role;
use fiktiv_vault::Vault;
use openidconnect::core::{
    CoreAuthPrompt, CoreAuthenticationFlow, CoreClient, CoreJwsSigningAlgorithm,
    CoreProviderMetadata,
};
use openidconnect::url::Url;
use openidconnect::{
    AuthenticationContextClass, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl,
    Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::oidc_config::{OidcConfig, OIDC_CLIENT_SECRET_ENV};
use crate::session::{self, tokens_equal};
use fiktiv_routine::staff_records::oidc_flows as flows;
use fiktiv_routine::{check_unit_code, one_line, DomainError, DomainResult};

pub use crate::oidc_accounts::{
    actor_for, audit_refusal, refuse_no_role, sign_in, step_up, step_up_actor,
};

/// The cookie that binds a flow to the browser that started it. `SameSite=Lax`: the
/// provider sends the browser back with a top-level GET from its own site.
pub const FLOW_COOKIE: &str = "__Host-fiktiv-oidc";
/// The path the provider sends the browser back to; `redirect_url` must end in it.
pub const CALLBACK_PATH: &str = "/signin/oidc/callback";
/// How long a flow may take at the provider.
pub const FLOW_TTL_SECS: i64 = 600;
/// How far the provider's clock may be behind ours when `auth_time` is checked.
pub const AUTH_TIME_SKEW_SECS: i64 = 15;
/// How long discovery (metadata and JWKS) is cached.
const METADATA_TTL_SECS: i64 = 300;
/// The time limit of one request to the provider.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest `state` and `code` accepted from the callback.
const MAX_STATE_LEN: usize = 128;
const MAX_CODE_LEN: usize = 4096;

/// Why an OpenID Connect sign-in or step-up was refused. The audit trail records the
/// code; the person sees a page for the kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No flow for this state, another browser's flow, or an expired one.
    State,
    /// The provider answered with an error (for example the person cancelled).
    ProviderError,
    /// The provider could not be reached, or its discovery document is unusable.
    Unavailable,
    /// The code exchange failed, or the ID token did not verify.
    Token,
    /// The subject claim is missing or not a valid account name.
    Subject,
    /// The claims map to no role.
    NoRole,
    /// A local account already has the name.
    LocalAccount,
    /// The account is disabled.
    Disabled,
    /// The `acr` is not one of `acr_values`.
    Acr,
    /// Step-up: the authentication is not fresh (`auth_time` missing or too old).
    NotFresh,
    /// Step-up: the provider signed in somebody else than the session's person.
    OtherPerson,
    /// Too many attempts from this address.
    RateLimited,
}

impl Refusal {
    /// The audit purpose.
    pub fn code(self) -> &'static str {
        match self {
            Refusal::State => "refused: oidc-state",
            Refusal::ProviderError => "refused: oidc-provider-error",
            Refusal::Unavailable => "refused: oidc-unavailable",
            Refusal::Token => "refused: oidc-token",
            Refusal::Subject => "refused: oidc-subject",
            Refusal::NoRole => "refused: oidc-no-role",
            Refusal::LocalAccount => "refused: oidc-local-account",
            Refusal::Disabled => "refused: disabled",
            Refusal::Acr => "refused: oidc-acr",
            Refusal::NotFresh => "refused: oidc-not-fresh",
            Refusal::OtherPerson => "refused: oidc-other-person",
            Refusal::RateLimited => "refused: rate-limited",
        }
    }
}

/// The audit purpose of a sign-in or step-up that succeeded through the provider.
pub const OK_PURPOSE: &str = "oidc";

/// What a flow is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    SignIn,
    StepUp,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::SignIn => "signin",
            Purpose::StepUp => "step-up",
        }
    }

    /// The audit action.
    pub fn action(self) -> &'static str {
        match self {
            Purpose::SignIn => "web.signin",
            Purpose::StepUp => "web.step-up",
        }
    }
}

/// One role rule, checked.
#[derive(Debug, Clone)]
struct RoleRule {
    claim: String,
    value: String,
    role: Role,
}

/// `[web.oidc]`, checked: URLs parsed and of an allowed scheme, the secret loaded.
pub struct Settings {
    pub provider_name: String,
    issuer: IssuerUrl,
    client_id: ClientId,
    client_secret: SecretString,
    redirect_url: RedirectUrl,
    scopes: Vec<String>,
    subject_claim: String,
    roles: Vec<RoleRule>,
    unit_claim: Option<String>,
    unit_prefix: Option<String>,
    prompt_login: bool,
    acr_values: Vec<String>,
    insecure_loopback_http: bool,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("provider_name", &self.provider_name)
            .field("issuer", &self.issuer.as_str())
            .field("client_id", &self.client_id.as_str())
            .field("client_secret", &"[redacted]")
            .field("redirect_url", &self.redirect_url.as_str())
            .field("scopes", &self.scopes)
            .field("subject_claim", &self.subject_claim)
            .field("roles", &self.roles)
            .field("unit_claim", &self.unit_claim)
            .field("unit_prefix", &self.unit_prefix)
            .field("prompt_login", &self.prompt_login)
            .field("acr_values", &self.acr_values)
            .field("insecure_loopback_http", &self.insecure_loopback_http)
            .finish()
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host_str() {
        Some("localhost") => true,
        Some(h) => h
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

/// `https://`, or `http://` on a loopback address when the test-only switch is on.
fn scheme_allowed(url: &Url, insecure_loopback_http: bool) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => insecure_loopback_http && is_loopback(url),
        _ => false,
    }
}

/// A token of `scope` or `acr_values`: printable ASCII without space, `"` or `\`.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 256
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
}

/// The client secret: `env` (the value of `FIKTIV_OIDC_CLIENT_SECRET`) if set, else
/// the file.
fn read_secret(
    env: Option<Zeroizing<String>>,
    file: Option<&std::path::Path>,
) -> Result<SecretString, String> {
    if let Some(v) = env {
        if !v.trim().is_empty() {
            return Ok(SecretString::from(v.trim().to_owned()));
        }
    }
    let Some(path) = file else {
        return Err(format!(
            "[web.oidc] needs the client secret: set {OIDC_CLIENT_SECRET_ENV} or client_secret_file"
        ));
    };
    let shown = path.display();
    let meta = std::fs::metadata(path)
        .map_err(|e| format!("[web.oidc] client_secret_file {shown}: {e}"))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(format!(
                "[web.oidc] client_secret_file {shown} can be read by group or others; \
                 chmod 600 it"
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| format!("[web.oidc] client_secret_file {shown}: {e}"))?,
    );
    let secret = text.trim();
    if secret.is_empty() {
        return Err(format!("[web.oidc] client_secret_file {shown} is empty"));
    }
    Ok(SecretString::from(secret.to_owned()))
}

impl Settings {
    /// Check `[web.oidc]` and load the client secret (`FIKTIV_OIDC_CLIENT_SECRET`, else
    /// `client_secret_file`). One line per problem; the secret is never in a message.
    pub fn from_config(c: &OidcConfig) -> Result<Settings, String> {
        let env = std::env::var(OIDC_CLIENT_SECRET_ENV)
            .ok()
            .map(Zeroizing::new);
        Self::from_config_with(c, env)
    }

    /// [`Settings::from_config`] with the environment's secret passed in.
    fn from_config_with(
        c: &OidcConfig,
        env_secret: Option<Zeroizing<String>>,
    ) -> Result<Settings, String> {
        let name = c.provider_name.trim();
        if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
            return Err("[web.oidc] provider_name must be 1 to 64 characters".into());
        }
        let insecure = c.allow_insecure_http_for_tests;
        let issuer_url = Url::parse(&c.issuer)
            .map_err(|e| format!("[web.oidc] issuer {:?} is not a URL: {e}", c.issuer))?;
        if insecure && !is_loopback(&issuer_url) {
            return Err(
                "[web.oidc] allow_insecure_http_for_tests is for tests against a provider on \
                 a loopback address (127.0.0.1, ::1, localhost) only"
                    .into(),
            );
        }
        if !scheme_allowed(&issuer_url, insecure) {
            return Err(format!(
                "[web.oidc] issuer {:?} must be an https:// URL",
                c.issuer
            ));
        }
        if issuer_url.query().is_some() || issuer_url.fragment().is_some() {
            return Err("[web.oidc] issuer must not have a query or a fragment".into());
        }
        let issuer = IssuerUrl::new(c.issuer.clone())
            .map_err(|e| format!("[web.oidc] issuer {:?}: {e}", c.issuer))?;
        let redirect = Url::parse(&c.redirect_url).map_err(|e| {
            format!(
                "[web.oidc] redirect_url {:?} is not a URL: {e}",
                c.redirect_url
            )
        })?;
        if !scheme_allowed(&redirect, insecure) {
            return Err(format!(
                "[web.oidc] redirect_url {:?} must be an https:// URL",
                c.redirect_url
            ));
        }
        if redirect.path() != CALLBACK_PATH
            || redirect.query().is_some()
            || redirect.fragment().is_some()
        {
            return Err(format!(
                "[web.oidc] redirect_url must be Fiktiv's own address with the path \
                 {CALLBACK_PATH} (for example https://fiktiv.example{CALLBACK_PATH})"
            ));
        }
        let redirect_url = RedirectUrl::new(c.redirect_url.clone())
            .map_err(|e| format!("[web.oidc] redirect_url: {e}"))?;
        let client_id = c.client_id.trim();
        if client_id.is_empty() || client_id.len() > 256 || client_id.chars().any(char::is_control)
        {
            return Err("[web.oidc] client_id must be 1 to 256 characters".into());
        }
        let mut scopes = vec!["openid".to_owned()];
        for s in &c.scopes {
            if !is_token(s) {
                return Err(format!("[web.oidc] scopes: {s:?} is not a scope"));
            }
            if !scopes.contains(s) {
                scopes.push(s.clone());
            }
        }
        if c.subject_claim.trim().is_empty() {
            return Err("[web.oidc] subject_claim must name a claim".into());
        }
        if c.roles.is_empty() {
            return Err(
                "[web.oidc] needs at least one [[web.oidc.roles]] rule (claim, value, role); \
                 without one nobody could sign in"
                    .into(),
            );
        }
        let mut roles = Vec::new();
        for (i, r) in c.roles.iter().enumerate() {
            let n = i + 1;
            if r.claim.trim().is_empty() || r.value.is_empty() {
                return Err(format!(
                    "[[web.oidc.roles]] rule {n}: claim and value must not be empty"
                ));
            }
            let role = r.role.parse::<Role>().map_err(|_| {
                format!(
                    "[[web.oidc.roles]] rule {n}: role {:?} is not one of central-admin, \
                     school, approver, auditor",
                    r.role
                )
            })?;
            roles.push(RoleRule {
                claim: r.claim.trim().to_owned(),
                value: r.value.clone(),
                role,
            });
        }
        if c.unit_prefix.is_some() && c.unit_claim.is_none() {
            return Err("[web.oidc] unit_prefix needs unit_claim".into());
        }
        if c.unit_claim.as_deref().is_some_and(|u| u.trim().is_empty()) {
            return Err("[web.oidc] unit_claim must name a claim".into());
        }
        if let Some(a) = c.acr_values.iter().find(|a| !is_token(a)) {
            return Err(format!("[web.oidc] acr_values: {a:?} is not a value"));
        }
        let client_secret = read_secret(env_secret, c.client_secret_file.as_deref())?;
        Ok(Settings {
            provider_name: name.to_owned(),
            issuer,
            client_id: ClientId::new(client_id.to_owned()),
            client_secret,
            redirect_url,
            scopes,
            subject_claim: c.subject_claim.trim().to_owned(),
            roles,
            unit_claim: c.unit_claim.as_ref().map(|u| u.trim().to_owned()),
            unit_prefix: c.unit_prefix.clone(),
            prompt_login: c.prompt_login,
            acr_values: c.acr_values.clone(),
            insecure_loopback_http: insecure,
        })
    }
}

/// A problem talking to the provider. Logged with its kind only.
#[derive(Debug, thiserror::Error)]
pub enum ProviderProblem {
    #[error("discovery failed: {0}")]
    Discovery(String),
    #[error("the provider's {0} is not an allowed URL (https only)")]
    Endpoint(&'static str),
    #[error("the provider has no token endpoint")]
    NoTokenEndpoint,
}

/// The running OpenID Connect client: settings, its HTTP client, cached discovery.
pub struct Oidc {
    pub settings: Settings,
    http: openidconnect::reqwest::Client,
    cache: tokio::sync::Mutex<Option<(CoreProviderMetadata, DateTime<Utc>)>>,
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// A flow taken back from the store at the callback.
#[derive(Debug)]
pub struct Flow {
    pub purpose: Purpose,
    nonce: Zeroizing<String>,
    pkce_verifier: Zeroizing<String>,
    pub session_hash: Option<String>,
    pub next: String,
    pub created_at: DateTime<Utc>,
}

/// A flow just started: where to send the browser, and the cookie value that binds
/// the flow to it.
pub struct Started {
    pub authorize_url: Url,
    pub browser_token: Zeroizing<String>,
}

impl std::fmt::Debug for Started {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Started([secret])")
    }
}

/// The person the verified ID token names, mapped to Fiktiv.
#[derive(Debug, Clone)]
pub struct Mapped {
    pub name: String,
    pub roles: Vec<Role>,
    pub units: Vec<String>,
}

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

fn parse_time(s: &str) -> DomainResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| DomainError::Internal("stored time is malformed".into()))
}

/// A claim by name: the top-level claim of that name, else a dotted path into nested
/// objects (`realm_access.roles`).
fn claim<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    if let Some(v) = claims.get(name) {
        return Some(v);
    }
    let mut parts = name.split('.');
    let mut v = claims.get(parts.next()?)?;
    for p in parts {
        v = v.as_object()?.get(p)?;
    }
    Some(v)
}

/// The strings of a claim value: a string, or the strings of a list.
fn strings(v: Option<&Value>) -> Vec<&str> {
    match v {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

impl Settings {
    /// The configured issuer, as in the discovery document and the `iss` claim.
    pub fn issuer_str(&self) -> &str {
        self.issuer.as_str()
    }

    /// The account name the claims give: the value of `subject_claim`, if it is a valid
    /// account name (`accounts::check_name`).
    pub fn subject(&self, claims: &Map<String, Value>) -> Option<String> {
        match claim(claims, &self.subject_claim) {
            Some(Value::String(s))
                if crate::principal::check_name(s, crate::principal::NameOf::Account).is_ok() =>
            {
                Some(s.clone())
            }
            _ => None,
        }
    }

    /// Map verified claims to an account: name, roles, units. A school role without a
    /// unit gives nothing and is dropped. Claim values are never logged.
    pub fn map_claims(&self, claims: &Map<String, Value>) -> Result<Mapped, Refusal> {
        let name = self.subject(claims).ok_or(Refusal::Subject)?;
        let mut roles: Vec<Role> = Vec::new();
        for rule in &self.roles {
            if strings(claim(claims, &rule.claim)).contains(&rule.value.as_str())
                && !roles.contains(&rule.role)
            {
                roles.push(rule.role);
            }
        }
        let mut units: Vec<String> = Vec::new();
        if let Some(unit_claim) = &self.unit_claim {
            let mut ignored = 0usize;
            for v in strings(claim(claims, unit_claim)) {
                let code = match &self.unit_prefix {
                    Some(p) => match v.strip_prefix(p.as_str()) {
                        Some(code) => code,
                        None => continue,
                    },
                    None => v,
                };
                let mut problems = Vec::new();
                check_unit_code("unit", code, &mut problems);
                if problems.is_empty() {
                    if !units.iter().any(|u| u == code) {
                        units.push(code.to_owned());
                    }
                } else {
                    ignored += 1;
                }
            }
            if ignored > 0 {
                tracing::warn!(ignored, "OIDC unit claim values that are not unit codes");
            }
        }
        units.sort_unstable();
        if roles.contains(&Role::School) && units.is_empty() {
            tracing::warn!("OIDC school role without a unit claim value; the role is dropped");
            roles.retain(|r| *r != Role::School);
        }
        if roles.is_empty() {
            return Err(Refusal::NoRole);
        }
        roles.sort_unstable_by_key(|r| r.as_str());
        Ok(Mapped { name, roles, units })
    }
}

impl Oidc {
    /// The client for checked settings (see [`Settings::from_config`]).
    pub fn new(settings: Settings) -> Result<Oidc, String> {
        let http = openidconnect::reqwest::Client::builder()
            // Following redirects would open the client to SSRF (the crate's advice).
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(HTTP_TIMEOUT)
            .https_only(!settings.insecure_loopback_http)
            .build()
            .map_err(|e| format!("[web.oidc] HTTP client: {e}"))?;
        Ok(Oidc {
            settings,
            http,
            cache: tokio::sync::Mutex::new(None),
        })
    }

    /// The provider's metadata and keys, from the cache or fresh from discovery.
    async fn metadata(&self, now: DateTime<Utc>) -> Result<CoreProviderMetadata, ProviderProblem> {
        let mut cache = self.cache.lock().await;
        if let Some((m, at)) = cache.as_ref() {
            if now >= *at && now - *at < TimeDelta::seconds(METADATA_TTL_SECS) {
                return Ok(m.clone());
            }
        }
        // discover_async checks that the document's issuer is the configured one.
        let m = CoreProviderMetadata::discover_async(self.settings.issuer.clone(), &self.http)
            .await
            .map_err(|e| ProviderProblem::Discovery(one_line(&e.to_string())))?;
        let insecure = self.settings.insecure_loopback_http;
        if !scheme_allowed(m.authorization_endpoint().url(), insecure) {
            return Err(ProviderProblem::Endpoint("authorization_endpoint"));
        }
        match m.token_endpoint() {
            Some(t) if scheme_allowed(t.url(), insecure) => {}
            Some(_) => return Err(ProviderProblem::Endpoint("token_endpoint")),
            None => return Err(ProviderProblem::NoTokenEndpoint),
        }
        if !scheme_allowed(m.jwks_uri().url(), insecure) {
            return Err(ProviderProblem::Endpoint("jwks_uri"));
        }
        *cache = Some((m.clone(), now));
        Ok(m)
    }

    /// Start a flow: store it and return where to send the browser. `browser` is the
    /// flow cookie the browser already has (reused so two tabs can sign in at once).
    pub async fn begin(
        &self,
        vault: &Vault,
        purpose: Purpose,
        session_hash: Option<&str>,
        next: &str,
        browser: Option<&str>,
    ) -> Result<DomainResult<Started>, ProviderProblem> {
        let now = vault.now();
        let meta = self.metadata(now).await?;
        let client = CoreClient::from_provider_metadata(
            meta,
            self.settings.client_id.clone(),
            Some(ClientSecret::new(
                self.settings.client_secret.expose_secret().to_owned(),
            )),
        )
        .set_redirect_uri(self.settings.redirect_url.clone());
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut req = client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for s in self.settings.scopes.iter().filter(|s| *s != "openid") {
            req = req.add_scope(Scope::new(s.clone()));
        }
        for a in &self.settings.acr_values {
            req = req.add_auth_context_value(AuthenticationContextClass::new(a.clone()));
        }
        match purpose {
            Purpose::StepUp => {
                req = req
                    .add_prompt(CoreAuthPrompt::Login)
                    .set_max_age(Duration::from_secs(0));
            }
            Purpose::SignIn if self.settings.prompt_login => {
                req = req.add_prompt(CoreAuthPrompt::Login);
            }
            Purpose::SignIn => {}
        }
        let (authorize_url, state, nonce) = req.set_pkce_challenge(challenge).url();
        let browser_token = match browser.filter(|b| b.len() == 43) {
            Some(b) => Zeroizing::new(b.to_owned()),
            None => session::random_token(),
        };
        let stored = store_flow(
            vault,
            &sha256_hex(state.secret()),
            &sha256_hex(&browser_token),
            nonce.secret(),
            verifier.secret(),
            purpose,
            session_hash,
            next,
            now,
        )
        .await;
        Ok(stored.map(|()| Started {
            authorize_url,
            browser_token,
        }))
    }

    /// Exchange the code of a taken flow and verify the ID token. Returns the verified
    /// claims, or why not.
    pub async fn finish(
        &self,
        vault: &Vault,
        flow: &Flow,
        code: &str,
    ) -> Result<Map<String, Value>, Refusal> {
        if code.is_empty() || code.len() > MAX_CODE_LEN {
            return Err(Refusal::Token);
        }
        let now = vault.now();
        let meta = match self.metadata(now).await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "OIDC provider unavailable");
                return Err(Refusal::Unavailable);
            }
        };
        let client = CoreClient::from_provider_metadata(
            meta,
            self.settings.client_id.clone(),
            Some(ClientSecret::new(
                self.settings.client_secret.expose_secret().to_owned(),
            )),
        )
        .set_redirect_uri(self.settings.redirect_url.clone());
        let request = match client.exchange_code(AuthorizationCode::new(code.to_owned())) {
            Ok(r) => r,
            Err(_) => return Err(Refusal::Unavailable),
        };
        let token = request
            .set_pkce_verifier(PkceCodeVerifier::new(flow.pkce_verifier.to_string()))
            .request_async(&self.http)
            .await
            .map_err(|e| {
                // The error names the kind (HTTP, parse, server error code), never a token.
                tracing::warn!(error = %one_line_kind(&e), "OIDC code exchange failed");
                Refusal::Token
            })?;
        let Some(id_token) = token.id_token() else {
            tracing::warn!("OIDC token response without an ID token");
            return Err(Refusal::Token);
        };
        let verifier = client
            .id_token_verifier()
            .set_allowed_algs([
                CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
                CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
                CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
                CoreJwsSigningAlgorithm::RsaSsaPssSha256,
                CoreJwsSigningAlgorithm::RsaSsaPssSha384,
                CoreJwsSigningAlgorithm::RsaSsaPssSha512,
                CoreJwsSigningAlgorithm::EcdsaP256Sha256,
                CoreJwsSigningAlgorithm::EcdsaP384Sha384,
                CoreJwsSigningAlgorithm::EdDsa,
            ])
            .set_time_fn(move || now);
        let nonce = Nonce::new(flow.nonce.to_string());
        let verified = id_token.claims(&verifier, &nonce).map_err(|e| {
            tracing::warn!(error = %verification_kind(&e), "OIDC ID token refused");
            Refusal::Token
        })?;
        if !self.settings.acr_values.is_empty() {
            let acr_ok = verified
                .auth_context_ref()
                .is_some_and(|acr| self.settings.acr_values.iter().any(|a| a == acr.as_str()));
            if !acr_ok {
                return Err(Refusal::Acr);
            }
        }
        if flow.purpose == Purpose::StepUp {
            let skew = TimeDelta::seconds(AUTH_TIME_SKEW_SECS);
            let fresh = verified
                .auth_time()
                .is_some_and(|t| t >= flow.created_at - skew && t <= now + skew);
            if !fresh {
                return Err(Refusal::NotFresh);
            }
        }
        // The signature, issuer, audience, expiry and nonce are verified over exactly
        // these bytes; every claim the mapping reads is taken from them.
        raw_claims(&id_token.to_string()).ok_or(Refusal::Token)
    }
}

/// The payload of a compact JWS, as a JSON object.
fn raw_claims(jwt: &str) -> Option<Map<String, Value>> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    match serde_json::from_slice::<Value>(&bytes).ok()? {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

/// The kind of a token-request error, without any token or body.
fn one_line_kind<RE: std::error::Error + 'static, T: openidconnect::ErrorResponse + 'static>(
    e: &openidconnect::RequestTokenError<RE, T>,
) -> String {
    use openidconnect::RequestTokenError as E;
    match e {
        E::ServerResponse(r) => format!("server error response: {}", r),
        E::Request(_) => "request failed".into(),
        E::Parse(_, _) => "response did not parse".into(),
        E::Other(_) => "other".into(),
    }
}

/// The kind of an ID-token verification error, without the token.
fn verification_kind(e: &openidconnect::ClaimsVerificationError) -> &'static str {
    use openidconnect::ClaimsVerificationError as E;
    match e {
        E::Expired(_) => "expired",
        E::InvalidAudience(_) => "audience",
        E::InvalidAuthContext(_) => "acr",
        E::InvalidAuthTime(_) => "auth_time",
        E::InvalidIssuer(_) => "issuer",
        E::InvalidNonce(_) => "nonce",
        E::InvalidSubject(_) => "subject",
        E::SignatureVerification(_) => "signature",
        E::Unsupported(_) => "unsupported",
        E::Other(_) => "other",
        _ => "other",
    }
}

// ---------------------------------------------------------------------------
// The flow store (web_oidc_flows)
// ---------------------------------------------------------------------------

#[allow(clippy::too_many_arguments)] // one row's columns
async fn store_flow(
    vault: &Vault,
    state_hash: &str,
    browser_hash: &str,
    nonce: &str,
    pkce_verifier: &str,
    purpose: Purpose,
    session_hash: Option<&str>,
    next: &str,
    now: DateTime<Utc>,
) -> DomainResult<()> {
    // Expired flows go whenever a new one comes.
    let flow = flows::NewFlow {
        state_hash,
        browser_hash,
        nonce,
        pkce_verifier,
        purpose: purpose.as_str(),
        session_hash,
        next_path: next,
        created_at: now,
        expires_at: now + TimeDelta::seconds(FLOW_TTL_SECS),
    };
    flows::insert(vault, &flow).await
}

/// Take the flow of `state` out of the store (it is deleted whatever happens next).
/// `None` when there is none, it has expired, or `browser` (the flow cookie) is not
/// the one that started it.
pub async fn take_flow(
    vault: &Vault,
    state: &str,
    browser: Option<&str>,
) -> DomainResult<Option<Flow>> {
    if state.is_empty() || state.len() > MAX_STATE_LEN {
        return Ok(None);
    }
    let h = sha256_hex(state);
    let Some(row) = flows::take(vault, &h).await? else {
        return Ok(None);
    };
    let same_browser = browser.is_some_and(|b| tokens_equal(&sha256_hex(b), &row.browser_hash));
    let expires = parse_time(&row.expires_at)?;
    if !same_browser || vault.now() >= expires {
        return Ok(None);
    }
    let purpose = match row.purpose.as_str() {
        "step-up" => Purpose::StepUp,
        _ => Purpose::SignIn,
    };
    Ok(Some(Flow {
        purpose,
        created_at: parse_time(&row.created_at)?,
        nonce: Zeroizing::new(row.nonce),
        pkce_verifier: Zeroizing::new(row.pkce_verifier),
        session_hash: row.session_hash,
        next: row.next_path,
    }))
}

/// The OIDC client of a configuration, if `[web.oidc]` is set and valid (it was
/// checked at start; a problem here is logged and the button is not shown).
pub fn from_config(c: Option<&OidcConfig>) -> Option<Arc<Oidc>> {
    let c = c?;
    match Settings::from_config(c).and_then(Oidc::new) {
        Ok(o) => Some(Arc::new(o)),
        Err(e) => {
            tracing::error!(error = %e, "OpenID Connect sign-in is off");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::oidc_config::OidcRoleRule;
    use serde_json::json;

    fn config(issuer: &str, redirect: &str, insecure: bool) -> OidcConfig {
        OidcConfig {
            provider_name: "Kommunen".into(),
            issuer: issuer.into(),
            client_id: "fiktiv".into(),
            client_secret_file: None,
            redirect_url: redirect.into(),
            scopes: vec!["groups".into()],
            subject_claim: "preferred_username".into(),
            roles: vec![
                OidcRoleRule {
                    claim: "groups".into(),
                    value: "fiktiv-central".into(),
                    role: "central-admin".into(),
                },
                OidcRoleRule {
                    claim: "groups".into(),
                    value: "fiktiv-school".into(),
                    role: "school".into(),
                },
            ],
            unit_claim: Some("groups".into()),
            unit_prefix: Some("unit-".into()),
            prompt_login: true,
            acr_values: vec![],
            allow_insecure_http_for_tests: insecure,
        }
    }

    fn settings(c: &OidcConfig) -> Result<Settings, String> {
        // The secret as if from the environment (the process's is left alone).
        Settings::from_config_with(c, Some(Zeroizing::new("s3cret-for-unit-tests".into())))
    }

    #[test]
    fn only_https_or_loopback_http_for_tests() {
        let cb = "https://fiktiv.example/signin/oidc/callback";
        assert!(settings(&config("https://idp.example/realm", cb, false)).is_ok());
        let e = settings(&config("http://idp.example", cb, false)).unwrap_err();
        assert!(e.contains("https://"), "{e}");
        let e = settings(&config("http://idp.example", cb, true)).unwrap_err();
        assert!(e.contains("loopback"), "{e}");
        let local = "http://127.0.0.1:9/signin/oidc/callback";
        assert!(settings(&config("http://127.0.0.1:8", local, true)).is_ok());
        assert!(settings(&config("http://127.0.0.1:8", local, false)).is_err());
        assert!(settings(&config("http://[::1]:8", local, true)).is_ok());
        let e = settings(&config(
            "https://idp.example",
            "https://f.example/cb",
            false,
        ))
        .unwrap_err();
        assert!(e.contains(CALLBACK_PATH), "{e}");
    }

    #[test]
    fn bad_rules_are_named_and_the_secret_never_shows() {
        let cb = "https://fiktiv.example/signin/oidc/callback";
        let mut c = config("https://idp.example", cb, false);
        c.roles[1].role = "rektor".into();
        let e = settings(&c).unwrap_err();
        assert!(e.contains("rule 2") && e.contains("rektor"), "{e}");
        c.roles.clear();
        assert!(settings(&c).unwrap_err().contains("[[web.oidc.roles]]"));
        let ok = settings(&config("https://idp.example", cb, false)).unwrap();
        let shown = format!("{ok:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("[redacted]"));
    }

    #[test]
    fn claims_map_to_roles_and_units() {
        let cb = "https://fiktiv.example/signin/oidc/callback";
        let s = settings(&config("https://idp.example", cb, false)).unwrap();
        let m = |v: Value| s.map_claims(v.as_object().unwrap());
        let got = m(json!({"preferred_username": "anna.s", "groups": ["fiktiv-central"]})).unwrap();
        assert_eq!(got.name, "anna.s");
        assert_eq!(got.roles, vec![Role::CentralAdmin]);
        let got = m(json!({"preferred_username": "rektor.b",
            "groups": ["fiktiv-school", "unit-SE123", "unit-bad value", "other"]}))
        .unwrap();
        assert_eq!(got.roles, vec![Role::School]);
        assert_eq!(got.units, vec!["SE123".to_owned()]);
        // A school role without a unit gives nothing.
        assert_eq!(
            m(json!({"preferred_username": "x", "groups": ["fiktiv-school"]})).unwrap_err(),
            Refusal::NoRole
        );
        assert_eq!(
            m(json!({"preferred_username": "pupil", "groups": ["pupils"]})).unwrap_err(),
            Refusal::NoRole
        );
        assert_eq!(
            m(json!({"preferred_username": "has space", "groups": ["fiktiv-central"]}))
                .unwrap_err(),
            Refusal::Subject
        );
        assert_eq!(
            m(json!({"groups": ["fiktiv-central"]})).unwrap_err(),
            Refusal::Subject
        );
        // A single string works like a list; nested claims by a dotted path.
        let mut c = config("https://idp.example", cb, false);
        c.roles[0].claim = "realm_access.roles".into();
        let s2 = settings(&c).unwrap();
        let got = s2
            .map_claims(
                json!({"preferred_username": "a", "realm_access": {"roles": "fiktiv-central"}})
                    .as_object()
                    .unwrap(),
            )
            .unwrap();
        assert_eq!(got.roles, vec![Role::CentralAdmin]);
    }

    #[test]
    fn raw_claims_of_a_compact_jws() {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"sub":"a","groups":["g"]}"#);
        let m = raw_claims(&format!("e30.{payload}.sig")).unwrap();
        assert_eq!(m["sub"], json!("a"));
        assert!(raw_claims("nodots").is_none());
    }
}
