//! Local staff accounts: name, roles, units, an Argon2id password hash and a sealed
//! TOTP secret (RFC 6238: SHA-1, 30 s, 6 digits).
//!
//! The principal of an account is `staff:<name>`, the same id an API token of that
//! person has (see `crate::tokens`): a person is one person to the authorizer whether
//! they come through the UI or the API, so nobody approves their own reveal request by
//! switching channel. Every change is audited in the transaction that makes it; the
//! audit actor of a sign-in attempt is the account's principal id, or `web:unknown`
//! when no account has the typed name (the typed text is never written anywhere).

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use chrono::{DateTime, TimeDelta, Utc};
use fiktiv_policies::{Principal, Role};
use fiktiv_vault::audit::{NewEvent, Outcome};
use fiktiv_vault::db::Conn;
use fiktiv_vault::Vault;
use rand::Rng;
use zeroize::Zeroizing;

use crate::principal::{check_name, principal_id, NameOf};
use crate::totp;
use fiktiv_routine::staff_records::accounts as store;
use fiktiv_routine::{DomainError, DomainResult};

/// Sealing purpose of the TOTP secret (bound into the sealed value).
const TOTP_PURPOSE: &str = "totp";
/// Audit actor of an attempt on a name no account has.
pub const UNKNOWN_ACTOR: &str = "web:unknown";
/// Shortest password a person may choose.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest password accepted (Argon2 is costly; bound the input).
pub const MAX_PASSWORD_CHARS: usize = 256;

/// A signed-in (or signing-in) account, without secrets.
#[derive(Debug, Clone)]
pub struct Account {
    pub user_id: String,
    pub name: String,
    pub roles: Vec<Role>,
    pub units: Vec<String>,
    pub must_change_password: bool,
    /// Signs in through OpenID Connect (`[web.oidc]`): no password, no TOTP secret;
    /// the second factor and step-up are the identity provider's.
    pub oidc: bool,
}

/// `staff_users.auth` of an account made by an OpenID Connect sign-in.
pub const AUTH_OIDC: &str = "oidc";

impl Account {
    /// The principal the one [`fiktiv_policies::Authorizer`] decides for.
    pub fn principal(&self) -> Principal {
        crate::principal::principal(&self.name, self.roles.clone(), self.units.clone())
    }
}

/// A new account or a reset: the credentials exist only here and are shown once.
pub struct Credentials {
    pub name: String,
    pub password: Zeroizing<String>,
    pub totp_secret: Zeroizing<String>,
    pub otpauth_uri: Zeroizing<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, [secrets])", self.name)
    }
}

/// An account as `fiktiv users list` shows it.
#[derive(Debug, Clone)]
pub struct AccountInfo {
    pub name: String,
    pub roles: Vec<String>,
    pub units: Vec<String>,
    pub created_at: String,
    pub disabled_at: Option<String>,
    pub locked_until: Option<String>,
    pub must_change_password: bool,
    /// Signs in through OpenID Connect (`staff_users.auth` = `oidc`), not with a
    /// password and TOTP.
    pub oidc: bool,
}

fn split(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

fn parse_time(s: &str) -> DomainResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| DomainError::Internal("stored time is malformed".into()))
}

/// A one-time password: 20 characters from 31 unambiguous ones (about 99 bits),
/// grouped by four for reading aloud.
fn generate_password() -> Zeroizing<String> {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut rng = rand::rngs::OsRng;
    let mut out = Zeroizing::new(String::with_capacity(24));
    for i in 0..20 {
        if i > 0 && i % 4 == 0 {
            out.push('-');
        }
        let c = ALPHABET[rng.gen_range(0..ALPHABET.len())];
        out.push(char::from(c));
    }
    out
}

/// Argon2id (the crate's defaults: m = 19 MiB, t = 2, p = 1), off the async threads.
async fn hash_password(password: Zeroizing<String>) -> DomainResult<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|_| DomainError::Internal("password hashing failed".into()))
    })
    .await
    .map_err(|_| DomainError::Internal("password hashing task failed".into()))?
}

/// A hash of a random password, verified against when there is no account, so an
/// unknown name takes as long as a wrong password.
fn dummy_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        Argon2::default()
            .hash_password(generate_password().as_bytes(), &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

async fn verify_password(password: Zeroizing<String>, stored: String) -> bool {
    tokio::task::spawn_blocking(move || {
        let stored = if stored.is_empty() {
            dummy_hash().to_owned()
        } else {
            stored
        };
        match PasswordHash::new(&stored) {
            Ok(h) => Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok(),
            Err(_) => false,
        }
    })
    .await
    .unwrap_or(false)
}

pub(super) async fn audit(
    vault: &Vault,
    conn: &mut Conn,
    actor: &str,
    action: &str,
    outcome: Outcome,
    purpose: Option<&str>,
) -> DomainResult<()> {
    vault
        .audit(
            conn,
            &NewEvent {
                actor,
                action,
                case_id: None,
                purpose,
                outcome,
            },
        )
        .await?;
    Ok(())
}

/// A fresh TOTP secret, sealed for `user_id`, with its display forms.
fn new_totp(
    vault: &Vault,
    user_id: &str,
    name: &str,
) -> DomainResult<(Vec<u8>, Zeroizing<String>, Zeroizing<String>)> {
    let secret = totp::generate_secret();
    let key = vault
        .keys()
        .staff_secrets()
        .map_err(|e| DomainError::Internal(e.to_string()))?;
    let sealed = key
        .seal(TOTP_PURPOSE, user_id, secret.as_slice())
        .map_err(|e| DomainError::Internal(e.to_string()))?;
    let (b32, uri) = totp::display(&secret, name)?;
    Ok((sealed, b32, uri))
}

fn validate(name: &str, roles: &[Role], units: &[String]) -> DomainResult<()> {
    let problems = crate::principal::check(name, NameOf::Account, roles, units);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(DomainError::Invalid(problems))
    }
}

/// Create an account. `actor` is who does it (`cli`). Works on an empty system: that
/// is how the first central administrator is made.
pub async fn add(
    vault: &Vault,
    actor: &str,
    name: &str,
    roles: &[Role],
    units: &[String],
) -> DomainResult<Credentials> {
    validate(name, roles, units)?;
    let user_id = uuid::Uuid::new_v4().to_string();
    let password = generate_password();
    let hash = hash_password(password.clone()).await?;
    let (sealed, totp_secret, otpauth_uri) = new_totp(vault, &user_id, name)?;
    let mut role_names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
    role_names.sort_unstable();
    role_names.dedup();
    let mut units: Vec<String> = units.to_vec();
    units.sort_unstable();
    units.dedup();
    let mut tx = vault.db().begin_write().await?;
    let user = store::NewUser {
        user_id: &user_id,
        name,
        roles: &role_names.join(","),
        units: &units.join(","),
        password_hash: &hash,
        totp_sealed: &sealed,
        now: vault.now(),
    };
    if !store::insert(&mut tx, &user).await? {
        return Err(DomainError::conflict(
            "user.exists",
            "An account with that name exists.",
        ));
    }
    audit(vault, &mut tx, actor, "users.add", Outcome::Ok, None).await?;
    tx.commit().await?;
    Ok(Credentials {
        name: name.to_owned(),
        password,
        totp_secret,
        otpauth_uri,
    })
}

async fn is_oidc(conn: &mut Conn, user_id: &str) -> DomainResult<bool> {
    Ok(store::by_id(conn, user_id)
        .await?
        .is_some_and(|u| u.auth == AUTH_OIDC))
}

async fn user_id_of(conn: &mut Conn, name: &str) -> DomainResult<Option<String>> {
    store::id_of(conn, name).await
}

/// Disable an account and end its sessions at once. `Ok(false)`: no such active account.
pub async fn disable(vault: &Vault, actor: &str, name: &str) -> DomainResult<bool> {
    let mut tx = vault.db().begin_write().await?;
    let Some(user_id) = user_id_of(&mut tx, name).await? else {
        return Ok(false);
    };
    if !store::disable(&mut tx, &user_id, vault.now()).await? {
        return Ok(false);
    }
    crate::session::delete_all_of(&mut tx, &user_id).await?;
    // A disabled person is told nothing more, and their work address is not kept.
    fiktiv_routine::notices::forget(&mut tx, &user_id).await?;
    audit(vault, &mut tx, actor, "users.disable", Outcome::Ok, None).await?;
    tx.commit().await?;
    Ok(true)
}

/// Enable a disabled account. `Ok(false)`: no such disabled account.
pub async fn enable(vault: &Vault, actor: &str, name: &str) -> DomainResult<bool> {
    let mut tx = vault.db().begin_write().await?;
    if !store::enable(&mut tx, name, vault.now()).await? {
        return Ok(false);
    }
    audit(vault, &mut tx, actor, "users.enable", Outcome::Ok, None).await?;
    tx.commit().await?;
    Ok(true)
}

/// New one-time password and new TOTP secret; clears a lockout and ends every session
/// of the account. A disabled account stays disabled. `Ok(None)`: no such account.
pub async fn reset(vault: &Vault, actor: &str, name: &str) -> DomainResult<Option<Credentials>> {
    let Some(user_id) = user_id_of(&mut *vault.db().pool().acquire().await?, name).await? else {
        return Ok(None);
    };
    if is_oidc(&mut *vault.db().pool().acquire().await?, &user_id).await? {
        return Err(DomainError::conflict(
            "user.oidc",
            "The account signs in through the identity provider ([web.oidc]); it has no \
             password or authenticator to reset. Disable it, or change it at the provider.",
        ));
    }
    let password = generate_password();
    let hash = hash_password(password.clone()).await?;
    let (sealed, totp_secret, otpauth_uri) = new_totp(vault, &user_id, name)?;
    let mut tx = vault.db().begin_write().await?;
    if !store::reset_credentials(&mut tx, &user_id, &hash, &sealed, vault.now()).await? {
        return Ok(None);
    }
    crate::session::delete_all_of(&mut tx, &user_id).await?;
    audit(vault, &mut tx, actor, "users.reset", Outcome::Ok, None).await?;
    tx.commit().await?;
    Ok(Some(Credentials {
        name: name.to_owned(),
        password,
        totp_secret,
        otpauth_uri,
    }))
}

/// Every account (no secrets), by name.
/// Is there no account at all yet (a first run)? The sign-in page then names the
/// command that makes the first one.
pub async fn none_yet(vault: &Vault) -> DomainResult<bool> {
    Ok(store::count(vault).await? == 0)
}

pub async fn list(vault: &Vault) -> DomainResult<Vec<AccountInfo>> {
    let now = vault.now();
    store::all(vault, false)
        .await?
        .into_iter()
        .map(|r| {
            let locked = match r.locked_until {
                Some(t) if parse_time(&t)? > now => Some(t),
                _ => None,
            };
            Ok(AccountInfo {
                roles: split(&r.roles),
                units: split(&r.units),
                must_change_password: r.must_change_password != 0,
                oidc: r.auth == AUTH_OIDC,
                name: r.name,
                created_at: r.created_at,
                disabled_at: r.disabled_at,
                locked_until: locked,
            })
        })
        .collect()
}

/// Every account that is not disabled (the notifier asks each what it has to do).
pub async fn active(vault: &Vault) -> DomainResult<Vec<Account>> {
    Ok(store::all(vault, true)
        .await?
        .iter()
        .map(account_from_user)
        .collect())
}

/// Build an [`Account`] from its stored columns.
pub(super) fn account_of(
    user_id: &str,
    name: &str,
    roles: &str,
    units: &str,
    must_change_password: i64,
    auth: &str,
) -> Account {
    let mut parsed = Vec::new();
    for name in split(roles) {
        // An unknown stored role gives no rights; never an error for the caller.
        if let Ok(role) = name.parse::<Role>() {
            parsed.push(role);
        }
    }
    Account {
        user_id: user_id.to_owned(),
        name: name.to_owned(),
        roles: parsed,
        units: split(units),
        must_change_password: must_change_password != 0,
        oidc: auth == AUTH_OIDC,
    }
}

fn account_from_user(u: &store::UserRow) -> Account {
    account_of(
        &u.user_id,
        &u.name,
        &u.roles,
        &u.units,
        u.must_change_password,
        &u.auth,
    )
}

/// Why a sign-in was refused. The person sees one message for all of them; the audit
/// trail records which (as the event's purpose, a fixed code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    UnknownName,
    Password,
    SecondFactor,
    Locked,
    Disabled,
    RateLimited,
    /// A password sign-in on an account that signs in through OpenID Connect.
    OidcAccount,
}

impl Refusal {
    pub fn code(self) -> &'static str {
        match self {
            Refusal::UnknownName => "refused: unknown-name",
            Refusal::Password => "refused: password",
            Refusal::SecondFactor => "refused: second-factor",
            Refusal::Locked => "refused: locked",
            Refusal::Disabled => "refused: disabled",
            Refusal::RateLimited => "refused: rate-limited",
            Refusal::OidcAccount => "refused: oidc-account",
        }
    }
}

/// Limits a sign-in runs under (from `[web]`).
#[derive(Debug, Clone, Copy)]
pub struct SignInLimits {
    pub lockout_after_failures: u32,
    pub lockout: TimeDelta,
}

/// Audit a refused attempt that never reached the account (rate limit, unknown name).
pub async fn audit_refusal(vault: &Vault, actor: &str, why: Refusal) -> DomainResult<()> {
    audit_refused(vault, actor, "web.signin", why).await
}

/// The audit actor for an attempt on `name`: the principal id if such an account
/// exists, else [`UNKNOWN_ACTOR`]. The typed name is not echoed when unknown.
pub async fn actor_for(vault: &Vault, name: &str) -> DomainResult<String> {
    if check_name(name, NameOf::Account).is_err() {
        return Ok(UNKNOWN_ACTOR.to_owned());
    }
    let mut conn = vault.db().pool().acquire().await?;
    Ok(match user_id_of(&mut conn, name).await? {
        Some(_) => principal_id(name),
        None => UNKNOWN_ACTOR.to_owned(),
    })
}

/// Check password and TOTP code. On success a session is created in the same
/// transaction as the audit event; its cookie value is returned.
pub async fn sign_in(
    vault: &Vault,
    limits: SignInLimits,
    name: &str,
    password: Zeroizing<String>,
    code: &str,
) -> DomainResult<Result<(Account, crate::session::NewSession), Refusal>> {
    let row = if check_name(name, NameOf::Account).is_ok()
        && password.chars().count() <= MAX_PASSWORD_CHARS
    {
        store::by_name(&mut *vault.db().pool().acquire().await?, name).await?
    } else {
        None
    };
    let Some(row) = row else {
        // Same work as a wrong password, so timing does not tell names apart.
        let _ = verify_password(password, String::new()).await;
        audit_refusal(vault, UNKNOWN_ACTOR, Refusal::UnknownName).await?;
        return Ok(Err(Refusal::UnknownName));
    };
    let account = account_from_user(&row);
    let actor = principal_id(&account.name);
    if account.oidc {
        // No password to check and no failure to count: this person signs in at the
        // identity provider. Same work as a wrong password all the same.
        let _ = verify_password(password, String::new()).await;
        audit_refusal(vault, &actor, Refusal::OidcAccount).await?;
        return Ok(Err(Refusal::OidcAccount));
    }
    let now = vault.now();
    let locked = match &row.locked_until {
        Some(t) => parse_time(t)? > now,
        None => false,
    };
    let disabled = row.disabled_at.is_some();
    let stored = row.password_hash.clone();
    let password_ok = verify_password(password, if locked { String::new() } else { stored }).await;
    if disabled || locked {
        let why = if disabled {
            Refusal::Disabled
        } else {
            Refusal::Locked
        };
        audit_refusal(vault, &actor, why).await?;
        return Ok(Err(why));
    }
    let step = if password_ok {
        totp_step(vault, &account.user_id, &row.totp_sealed, code, now)?
    } else {
        None
    };
    let mut tx = vault.db().begin_write().await?;
    let replay_free = match step {
        Some(step) => claim_step(&mut tx, &account.user_id, step).await?,
        None => false,
    };
    if password_ok && replay_free {
        store::clear_failures(&mut tx, &account.user_id, true).await?;
        let session = crate::session::insert(&mut tx, &account.user_id, now).await?;
        audit(vault, &mut tx, &actor, "web.signin", Outcome::Ok, None).await?;
        tx.commit().await?;
        return Ok(Ok((account, session)));
    }
    let why = if password_ok {
        Refusal::SecondFactor
    } else {
        Refusal::Password
    };
    let failed = store::count_failure(&mut tx, &account.user_id).await?;
    audit(
        vault,
        &mut tx,
        &actor,
        "web.signin",
        Outcome::Denied,
        Some(why.code()),
    )
    .await?;
    if failed >= i64::from(limits.lockout_after_failures.max(1)) {
        store::lock(&mut tx, &account.user_id, now + limits.lockout).await?;
        audit(vault, &mut tx, &actor, "web.lockout", Outcome::Ok, None).await?;
    }
    tx.commit().await?;
    Ok(Err(why))
}

/// The time step `code` is valid for (now, or one step either side), if any.
fn totp_step(
    vault: &Vault,
    user_id: &str,
    sealed: &[u8],
    code: &str,
    now: DateTime<Utc>,
) -> DomainResult<Option<u64>> {
    let key = vault
        .keys()
        .staff_secrets()
        .map_err(|e| DomainError::Internal(e.to_string()))?;
    let secret = key
        .open(TOTP_PURPOSE, user_id, sealed)
        .map_err(|e| DomainError::Internal(e.to_string()))?;
    totp::matching_step(&secret, code, now)
}

/// Record `step` as used; false when it (or a later one) was used before (a replay).
async fn claim_step(conn: &mut Conn, user_id: &str, step: u64) -> DomainResult<bool> {
    store::claim_step(conn, user_id, step).await
}

/// Re-enter the second factor (step-up before revealing a real identity). Audited as
/// `web.step-up`, ok or denied. Failures count towards the lockout like sign-in ones.
pub async fn verify_step_up(
    vault: &Vault,
    limits: SignInLimits,
    account: &Account,
    code: &str,
) -> DomainResult<bool> {
    let sealed = store::by_id(&mut *vault.db().pool().acquire().await?, &account.user_id)
        .await?
        .ok_or(DomainError::NotFound)?
        .totp_sealed;
    let now = vault.now();
    let step = totp_step(vault, &account.user_id, &sealed, code, now)?;
    let actor = principal_id(&account.name);
    let mut tx = vault.db().begin_write().await?;
    let ok = match step {
        Some(s) => claim_step(&mut tx, &account.user_id, s).await?,
        None => false,
    };
    if ok {
        store::clear_failures(&mut tx, &account.user_id, false).await?;
        audit(vault, &mut tx, &actor, "web.step-up", Outcome::Ok, None).await?;
    } else {
        let failed = store::count_failure(&mut tx, &account.user_id).await?;
        audit(
            vault,
            &mut tx,
            &actor,
            "web.step-up",
            Outcome::Denied,
            Some(Refusal::SecondFactor.code()),
        )
        .await?;
        if failed >= i64::from(limits.lockout_after_failures.max(1)) {
            store::lock(&mut tx, &account.user_id, now + limits.lockout).await?;
            crate::session::delete_all_of(&mut tx, &account.user_id).await?;
            audit(vault, &mut tx, &actor, "web.lockout", Outcome::Ok, None).await?;
        }
    }
    tx.commit().await?;
    Ok(ok)
}

/// Problems with a chosen password, as message keys of the UI.
pub fn check_new_password(password: &str, confirm: &str) -> Vec<(&'static str, &'static str)> {
    let n = password.chars().count();
    let mut out = Vec::new();
    if n < MIN_PASSWORD_CHARS {
        out.push(("new_password", "password.error-too-short"));
    } else if n > MAX_PASSWORD_CHARS {
        out.push(("new_password", "password.error-too-long"));
    }
    if password != confirm {
        out.push(("confirm", "password.error-mismatch"));
    }
    out
}

/// What a password change proves besides the live session it is made in.
pub enum Reauth {
    /// The current password and a TOTP code, checked as at sign-in: a failure counts
    /// towards the lockout, and the code is used up (no replay).
    Credentials {
        current: Zeroizing<String>,
        code: String,
    },
    /// The forced change of a one-time password, right after the sign-in with it: that
    /// sign-in checked the one-time password and a code. The caller decides "right
    /// after" (`Session::signed_in_within`); here the account must still have to
    /// change its one-time password.
    FirstChange,
}

impl std::fmt::Debug for Reauth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Reauth::Credentials { .. } => "Reauth::Credentials([secrets])",
            Reauth::FirstChange => "Reauth::FirstChange",
        })
    }
}

/// How a password change ended.
#[derive(Debug)]
pub enum PasswordChange {
    /// The new password is set. Every other session of the account has ended; the one
    /// the change was made in goes on under this new cookie value.
    Changed(crate::session::NewSession),
    /// Refused and audited; nothing changed.
    Refused(Refusal),
    /// Refused, and this failure locked the account (or the session ended meanwhile):
    /// every session of the account has ended.
    SessionsEnded,
}

/// Audit the refusal of `action` (`web.signin`, `web.password-change`) with its reason.
pub async fn audit_refused(
    vault: &Vault,
    actor: &str,
    action: &str,
    why: Refusal,
) -> DomainResult<()> {
    let mut tx = vault.db().begin_write().await?;
    audit(
        vault,
        &mut tx,
        actor,
        action,
        Outcome::Denied,
        Some(why.code()),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Change the password of the account signed in with `session` (after
/// [`check_new_password`]). With [`Reauth::Credentials`], the current password and a
/// code are checked first, like a sign-in: a wrong one changes nothing, counts towards
/// the lockout (which, when reached, ends every session of the account, as failed
/// step-ups do), and a locked account is refused without checking. On success, in one
/// transaction: the new hash, the failure count cleared, every other session ended and
/// this one rotated ([`crate::session::rotate`]). Audited as `web.password-change`,
/// `ok` (purpose `first-change` for the forced change) or `denied` with the reason.
pub async fn change_password(
    vault: &Vault,
    limits: SignInLimits,
    session: &crate::session::Session,
    reauth: Reauth,
    new_password: Zeroizing<String>,
) -> DomainResult<PasswordChange> {
    const ACTION: &str = "web.password-change";
    let account = &session.account;
    let actor = principal_id(&account.name);
    let row = store::by_id(&mut *vault.db().pool().acquire().await?, &account.user_id).await?;
    let Some(row) = row else {
        return Ok(PasswordChange::SessionsEnded);
    };
    if row.auth == AUTH_OIDC {
        return refused(vault, &actor, Refusal::OidcAccount).await;
    }
    if row.disabled_at.is_some() {
        return refused(vault, &actor, Refusal::Disabled).await;
    }
    let now = vault.now();
    let locked = match &row.locked_until {
        Some(t) => parse_time(t)? > now,
        None => false,
    };
    let first_change = matches!(reauth, Reauth::FirstChange);
    // Whether the password (or the forced change's sign-in) is proven, and the time
    // step of the code when one is needed and right.
    let (password_ok, step) = match reauth {
        Reauth::FirstChange => {
            // Nothing typed to check: the session's sign-in proved the one-time
            // password and a code. Only while that password is still to be changed.
            if row.must_change_password == 0 {
                return refused(vault, &actor, Refusal::Password).await;
            }
            (true, None)
        }
        Reauth::Credentials { current, code } => {
            let stored = row.password_hash.clone();
            let too_long = current.chars().count() > MAX_PASSWORD_CHARS;
            // The same work whether locked or not, so timing does not tell.
            let checked = if locked || too_long {
                String::new()
            } else {
                stored
            };
            let password_ok = verify_password(current, checked).await;
            if locked {
                return refused(vault, &actor, Refusal::Locked).await;
            }
            let step = if password_ok {
                totp_step(vault, &account.user_id, &row.totp_sealed, &code, now)?
            } else {
                None
            };
            (password_ok, step)
        }
    };
    let proven = password_ok && (first_change || step.is_some());
    // Hash before the transaction (it is slow), and only when it may be stored.
    let hash = if proven {
        Some(hash_password(new_password).await?)
    } else {
        None
    };
    let mut tx = vault.db().begin_write().await?;
    let code_ok = match step {
        Some(s) => claim_step(&mut tx, &account.user_id, s).await?,
        None => first_change,
    };
    if let (true, Some(hash)) = (password_ok && code_ok, hash) {
        // Dropping `tx` without a commit (the early returns) rolls everything back.
        let Some(new) =
            crate::session::rotate(&mut tx, &account.user_id, session.hash(), now).await?
        else {
            return Ok(PasswordChange::SessionsEnded);
        };
        if !store::set_password(&mut tx, &account.user_id, &hash, now).await? {
            return Ok(PasswordChange::SessionsEnded);
        }
        let purpose = first_change.then_some("first-change");
        audit(vault, &mut tx, &actor, ACTION, Outcome::Ok, purpose).await?;
        tx.commit().await?;
        return Ok(PasswordChange::Changed(new));
    }
    let why = if password_ok {
        Refusal::SecondFactor
    } else {
        Refusal::Password
    };
    audit(
        vault,
        &mut tx,
        &actor,
        ACTION,
        Outcome::Denied,
        Some(why.code()),
    )
    .await?;
    let locked_now = count_failure(vault, &mut tx, limits, &account.user_id, &actor, now).await?;
    tx.commit().await?;
    Ok(if locked_now {
        PasswordChange::SessionsEnded
    } else {
        PasswordChange::Refused(why)
    })
}

/// Audit a refused password change; nothing else is touched.
async fn refused(vault: &Vault, actor: &str, why: Refusal) -> DomainResult<PasswordChange> {
    audit_refused(vault, actor, "web.password-change", why).await?;
    Ok(PasswordChange::Refused(why))
}

/// Count a failed re-authentication in the caller's transaction. When that reaches
/// the limit, lock the account and end all its sessions (audited as `web.lockout`);
/// `true` then.
async fn count_failure(
    vault: &Vault,
    conn: &mut Conn,
    limits: SignInLimits,
    user_id: &str,
    actor: &str,
    now: DateTime<Utc>,
) -> DomainResult<bool> {
    let failed = store::count_failure(conn, user_id).await?;
    if failed < i64::from(limits.lockout_after_failures.max(1)) {
        return Ok(false);
    }
    store::lock(conn, user_id, now + limits.lockout).await?;
    crate::session::delete_all_of(conn, user_id).await?;
    audit(vault, conn, actor, "web.lockout", Outcome::Ok, None).await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn generated_passwords_are_long_and_distinct() {
        let a = generate_password();
        let b = generate_password();
        assert_eq!(a.len(), 24);
        assert_ne!(a.as_str(), b.as_str());
        assert!(a.chars().all(|c| c == '-' || c.is_ascii_alphanumeric()));
    }

    #[test]
    fn new_password_rules() {
        assert!(check_new_password("long enough pw", "long enough pw").is_empty());
        assert_eq!(
            check_new_password("short", "short"),
            vec![("new_password", "password.error-too-short")]
        );
        assert_eq!(
            check_new_password("long enough pw", "other"),
            vec![("confirm", "password.error-mismatch")]
        );
    }
}
