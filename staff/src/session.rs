//! Server-side sessions.
//!
//! The cookie `__Host-fiktiv` holds 32 random bytes (base64url); the database holds
//! only their SHA-256, so a copy of the database opens no session. Each session has
//! its own CSRF token (required on every POST form), an idle timeout and an absolute
//! lifetime (`[web]`), and ends when its account is disabled or reset. All times come
//! from the vault's clock.

use base64::Engine as _;
use chrono::{DateTime, TimeDelta, Utc};
use fiktiv_vault::audit::fmt_time;
use fiktiv_vault::db::Conn;
use fiktiv_vault::Vault;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::accounts::{account_of, Account};
use fiktiv_routine::staff_records::sessions as store;
use fiktiv_routine::{DomainError, DomainResult};

/// The session cookie. `__Host-`: Secure, no Domain, Path=/ (the browser enforces it).
pub const COOKIE: &str = "__Host-fiktiv";

/// A session just made: the cookie value exists only here.
pub struct NewSession {
    pub cookie_value: Zeroizing<String>,
}

impl std::fmt::Debug for NewSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewSession([secret])")
    }
}

/// A live session with its account.
#[derive(Debug, Clone)]
pub struct Session {
    hash: String,
    pub account: Account,
    pub csrf: String,
    pub stepped_up_at: Option<DateTime<Utc>>,
    /// When the sign-in that opened this session happened (kept across a [`rotate`]).
    pub created_at: DateTime<Utc>,
}

/// Session timing (from `[web]`).
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub idle: TimeDelta,
    pub absolute: TimeDelta,
    pub step_up_valid: TimeDelta,
}

/// 32 random bytes, base64url without padding.
pub fn random_token() -> Zeroizing<String> {
    let mut raw = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(raw.as_mut());
    Zeroizing::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw.as_ref()))
}

fn hash(cookie_value: &str) -> String {
    hex::encode(Sha256::digest(cookie_value.as_bytes()))
}

/// Constant-time equality of two tokens (lengths are not secret).
pub fn tokens_equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

fn parse_time(s: &str) -> DomainResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| DomainError::Internal("stored time is malformed".into()))
}

/// Create a session for `user_id` in the caller's transaction.
pub(super) async fn insert(
    conn: &mut Conn,
    user_id: &str,
    now: DateTime<Utc>,
) -> DomainResult<NewSession> {
    let now = fmt_time(now);
    insert_row(conn, user_id, &now, &now, None).await
}

/// A new row with fresh cookie and CSRF values.
async fn insert_row(
    conn: &mut Conn,
    user_id: &str,
    created_at: &str,
    last_seen_at: &str,
    stepped_up_at: Option<String>,
) -> DomainResult<NewSession> {
    let cookie_value = random_token();
    let csrf = random_token();
    let row = store::NewSessionRow {
        session_hash: &hash(&cookie_value),
        user_id,
        csrf_token: csrf.as_str(),
        created_at,
        last_seen_at,
        stepped_up_at: stepped_up_at.as_deref(),
    };
    store::insert(conn, &row).await?;
    Ok(NewSession { cookie_value })
}

/// After a password change, in the caller's transaction: end every session of
/// `user_id`, and let the one with `session_hash` go on under a new cookie value and a
/// new CSRF token (its sign-in time, and so its absolute lifetime, and its step-up
/// stay). `None` when that session is gone meanwhile (then nothing is deleted).
pub(super) async fn rotate(
    conn: &mut Conn,
    user_id: &str,
    session_hash: &str,
    now: DateTime<Utc>,
) -> DomainResult<Option<NewSession>> {
    let Some((created_at, stepped_up_at)) = store::times_of(conn, session_hash, user_id).await?
    else {
        return Ok(None);
    };
    delete_all_of(conn, user_id).await?;
    insert_row(conn, user_id, &created_at, &fmt_time(now), stepped_up_at)
        .await
        .map(Some)
}

/// The user id and account name of a live session, by the SHA-256 of its cookie value
/// (a step-up through the identity provider coming back). Timeouts are not checked
/// here: the session is looked up again, with them, on the next page.
pub(super) async fn owner_of(
    conn: &mut Conn,
    session_hash: &str,
) -> DomainResult<Option<(String, String)>> {
    store::owner_of(conn, session_hash).await
}

/// Record a step-up on the session with this hash, in the caller's transaction.
pub(super) async fn mark_stepped_up_by_hash(
    conn: &mut Conn,
    session_hash: &str,
    now: DateTime<Utc>,
) -> DomainResult<()> {
    store::mark_stepped_up(conn, session_hash, now).await
}

/// End every session of an account (disable, reset, lockout, password change).
pub(super) async fn delete_all_of(conn: &mut Conn, user_id: &str) -> DomainResult<()> {
    store::delete_all_of(conn, user_id).await
}

/// The live session of a cookie value, touching its last use; `None` when unknown,
/// expired (the row is deleted then) or its account is disabled.
pub async fn lookup(
    vault: &Vault,
    t: Timeouts,
    cookie_value: &str,
) -> DomainResult<Option<Session>> {
    if cookie_value.is_empty() || cookie_value.len() > 64 {
        return Ok(None);
    }
    let h = hash(cookie_value);
    let Some(stored) = stored(vault, t, &h).await? else {
        return Ok(None);
    };
    if stored.disabled || stored.ended {
        delete(vault, &h).await?;
        return Ok(None);
    }
    let (row, now, created) = (stored.row, stored.now, stored.created);
    store::touch(vault, &h, now).await?;
    let stepped_up_at = match &row.stepped_up_at {
        Some(s) => Some(parse_time(s)?),
        None => None,
    };
    Ok(Some(Session {
        hash: h,
        account: account_of_row(&row),
        csrf: row.csrf_token,
        stepped_up_at,
        created_at: created,
    }))
}

/// The owner of a session that has just ended by a timeout, if `csrf` is that
/// session's own token: the form came from one of its pages, in its browser. Read
/// before [`lookup`] deletes the row. `None` for a live session, an unknown cookie, a
/// wrong token or a disabled account (a signed-out session's row is gone already).
pub async fn ended_owner(
    vault: &Vault,
    t: Timeouts,
    cookie_value: &str,
    csrf: &str,
) -> DomainResult<Option<fiktiv_policies::Principal>> {
    if cookie_value.is_empty() || cookie_value.len() > 64 || csrf.is_empty() {
        return Ok(None);
    }
    let Some(stored) = stored(vault, t, &hash(cookie_value)).await? else {
        return Ok(None);
    };
    if stored.disabled || !stored.ended || !tokens_equal(&stored.row.csrf_token, csrf) {
        return Ok(None);
    }
    let account = account_of_row(&stored.row);
    if account.must_change_password {
        return Ok(None);
    }
    Ok(Some(account.principal()))
}

fn account_of_row(r: &store::SessionRow) -> Account {
    account_of(
        &r.user_id,
        &r.name,
        &r.roles,
        &r.units,
        r.must_change_password,
        &r.auth,
    )
}

/// A session's stored row, and whether it has ended (a timeout) or its account is
/// disabled: read once, for [`lookup`] and [`ended_owner`] alike.
struct Stored {
    row: store::SessionRow,
    now: chrono::DateTime<chrono::Utc>,
    created: chrono::DateTime<chrono::Utc>,
    disabled: bool,
    ended: bool,
}

async fn stored(vault: &Vault, t: Timeouts, h: &str) -> DomainResult<Option<Stored>> {
    let Some(row) = store::with_account(vault, h).await? else {
        return Ok(None);
    };
    let now = vault.now();
    let created = parse_time(&row.created_at)?;
    let last_seen = parse_time(&row.last_seen_at)?;
    let disabled = row.disabled_at.is_some();
    let ended = now - last_seen >= t.idle || now - created >= t.absolute;
    Ok(Some(Stored {
        row,
        now,
        created,
        disabled,
        ended,
    }))
}

async fn delete(vault: &Vault, h: &str) -> DomainResult<()> {
    store::delete(vault, h).await
}

impl Session {
    /// Sign out: the row is deleted, so the cookie opens nothing any more.
    pub async fn end(&self, vault: &Vault) -> DomainResult<()> {
        delete(vault, &self.hash).await
    }

    /// Record a successful re-entry of the second factor.
    pub async fn mark_stepped_up(&self, vault: &Vault) -> DomainResult<()> {
        store::mark_stepped_up(
            &mut *vault.db().pool().acquire().await?,
            &self.hash,
            vault.now(),
        )
        .await
    }

    /// The SHA-256 of the cookie value: how a step-up through the identity provider
    /// finds this session again when the browser comes back (`crate::oidc`).
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// Was this session's sign-in less than `window` ago? The forced change of a
    /// one-time password needs no re-authentication only then (`pages::password`).
    pub fn signed_in_within(&self, window: TimeDelta, now: DateTime<Utc>) -> bool {
        self.created_at <= now && now - self.created_at < window
    }

    /// Does `token` (from a form) match this session's CSRF token? Constant time.
    pub fn csrf_ok(&self, token: &str) -> bool {
        tokens_equal(&self.csrf, token)
    }
}

/// The second factor was re-entered recently enough to reveal a real identity.
#[derive(Debug, Clone, Copy)]
pub struct FreshSecondFactor(());

/// Step-up is needed: send the person to `/step-up` first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepUpRequired;

/// Revealing a real identity requires the TOTP code re-entered within
/// `[web] step_up_valid_secs`. A reveal handler calls this and passes the proof on;
/// on `Err`, it redirects to `/step-up?next=<its own path>`.
pub fn require_fresh_second_factor(
    session: &Session,
    t: Timeouts,
    now: DateTime<Utc>,
) -> Result<FreshSecondFactor, StepUpRequired> {
    match session.stepped_up_at {
        Some(at) if at <= now && now - at < t.step_up_valid => Ok(FreshSecondFactor(())),
        _ => Err(StepUpRequired),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::TimeZone;

    fn session(stepped: Option<DateTime<Utc>>) -> Session {
        session_at(stepped, Utc.with_ymd_and_hms(2025, 1, 1, 8, 0, 0).unwrap())
    }

    fn session_at(stepped: Option<DateTime<Utc>>, created_at: DateTime<Utc>) -> Session {
        Session {
            hash: String::new(),
            account: Account {
                user_id: "u".into(),
                name: "n".into(),
                roles: vec![],
                units: vec![],
                must_change_password: false,
                oidc: false,
            },
            csrf: "abc".into(),
            stepped_up_at: stepped,
            created_at,
        }
    }

    #[test]
    fn a_sign_in_is_recent_for_its_window_only() {
        let at = Utc.with_ymd_and_hms(2025, 1, 1, 9, 0, 0).unwrap();
        let s = session_at(None, at);
        let w = TimeDelta::minutes(5);
        assert!(s.signed_in_within(w, at));
        assert!(s.signed_in_within(w, at + TimeDelta::seconds(299)));
        assert!(!s.signed_in_within(w, at + TimeDelta::minutes(5)));
        // A clock that went back does not make an old sign-in recent.
        assert!(!s.signed_in_within(w, at - TimeDelta::seconds(1)));
    }

    #[test]
    fn step_up_is_fresh_for_its_window_only() {
        let t = Timeouts {
            idle: TimeDelta::minutes(15),
            absolute: TimeDelta::hours(8),
            step_up_valid: TimeDelta::minutes(5),
        };
        let at = Utc.with_ymd_and_hms(2025, 1, 1, 9, 0, 0).unwrap();
        assert!(require_fresh_second_factor(&session(None), t, at).is_err());
        let s = session(Some(at));
        assert!(require_fresh_second_factor(&s, t, at + TimeDelta::minutes(4)).is_ok());
        assert!(require_fresh_second_factor(&s, t, at + TimeDelta::minutes(5)).is_err());
    }

    #[test]
    fn csrf_compare() {
        let s = session(None);
        assert!(s.csrf_ok("abc"));
        assert!(!s.csrf_ok("abd"));
        assert!(!s.csrf_ok(""));
        assert_ne!(random_token().as_str(), random_token().as_str());
        assert_eq!(random_token().len(), 43);
    }
}
