//! Web sessions (`web_sessions`): the SHA-256 of the cookie value (never the value),
//! the account, the CSRF token, and the times of the sign-in, the last use and the last
//! step-up.

use chrono::{DateTime, Utc};
use fiktiv_vault::audit::fmt_time;
use fiktiv_vault::Vault;
use sqlx::AnyConnection;

use crate::DomainResult;

/// A session to store.
#[derive(Clone, Copy)]
pub struct NewSessionRow<'a> {
    pub session_hash: &'a str,
    pub user_id: &'a str,
    pub csrf_token: &'a str,
    pub created_at: &'a str,
    pub last_seen_at: &'a str,
    pub stepped_up_at: Option<&'a str>,
}

/// Stores a session, in the caller's transaction.
pub async fn insert(conn: &mut AnyConnection, s: &NewSessionRow<'_>) -> DomainResult<()> {
    sqlx::query(
        "INSERT INTO web_sessions (session_hash, user_id, csrf_token, created_at, last_seen_at, \
         stepped_up_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(s.session_hash)
    .bind(s.user_id)
    .bind(s.csrf_token)
    .bind(s.created_at)
    .bind(s.last_seen_at)
    .bind(s.stepped_up_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A session's sign-in and step-up times, if it is `user_id`'s.
pub async fn times_of(
    conn: &mut AnyConnection,
    session_hash: &str,
    user_id: &str,
) -> DomainResult<Option<(String, Option<String>)>> {
    Ok(sqlx::query_as::<_, (String, Option<String>)>(
        "SELECT created_at, stepped_up_at FROM web_sessions \
         WHERE session_hash = $1 AND user_id = $2",
    )
    .bind(session_hash)
    .bind(user_id)
    .fetch_optional(&mut *conn)
    .await?)
}

/// The user id and name of a session's account, unless it is disabled.
pub async fn owner_of(
    conn: &mut AnyConnection,
    session_hash: &str,
) -> DomainResult<Option<(String, String)>> {
    Ok(sqlx::query_as::<_, (String, String)>(
        "SELECT u.user_id, u.name FROM web_sessions s JOIN staff_users u ON u.user_id = s.user_id \
         WHERE s.session_hash = $1 AND u.disabled_at IS NULL",
    )
    .bind(session_hash)
    .fetch_optional(&mut *conn)
    .await?)
}

/// Records a step-up on a session.
pub async fn mark_stepped_up(
    conn: &mut AnyConnection,
    session_hash: &str,
    now: DateTime<Utc>,
) -> DomainResult<()> {
    sqlx::query("UPDATE web_sessions SET stepped_up_at = $1 WHERE session_hash = $2")
        .bind(fmt_time(now))
        .bind(session_hash)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Records a session's last use.
pub async fn touch(vault: &Vault, session_hash: &str, now: DateTime<Utc>) -> DomainResult<()> {
    sqlx::query("UPDATE web_sessions SET last_seen_at = $1 WHERE session_hash = $2")
        .bind(fmt_time(now))
        .bind(session_hash)
        .execute(vault.db().pool())
        .await?;
    Ok(())
}

/// Ends every session of an account.
pub async fn delete_all_of(conn: &mut AnyConnection, user_id: &str) -> DomainResult<()> {
    sqlx::query("DELETE FROM web_sessions WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Ends one session.
pub async fn delete(vault: &Vault, session_hash: &str) -> DomainResult<()> {
    sqlx::query("DELETE FROM web_sessions WHERE session_hash = $1")
        .bind(session_hash)
        .execute(vault.db().pool())
        .await?;
    Ok(())
}

/// A session with its account, as stored.
#[derive(Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub csrf_token: String,
    pub created_at: String,
    pub last_seen_at: String,
    pub stepped_up_at: Option<String>,
    pub user_id: String,
    pub name: String,
    pub roles: String,
    pub units: String,
    pub must_change_password: i64,
    pub auth: String,
    pub disabled_at: Option<String>,
}

impl std::fmt::Debug for SessionRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SessionRow({}, [csrf])", self.user_id)
    }
}

/// The session with this hash, with its account.
pub async fn with_account(vault: &Vault, session_hash: &str) -> DomainResult<Option<SessionRow>> {
    Ok(sqlx::query_as::<_, SessionRow>(
        "SELECT s.csrf_token, s.created_at, s.last_seen_at, s.stepped_up_at, u.user_id, u.name, \
         u.roles, u.units, u.must_change_password, u.auth, u.disabled_at \
         FROM web_sessions s JOIN staff_users u ON u.user_id = s.user_id \
         WHERE s.session_hash = $1",
    )
    .bind(session_hash)
    .fetch_optional(vault.db().pool())
    .await?)
}
