//! API bearer tokens (`api_tokens`): the holder's name, roles, units, expiry and
//! revocation, and the SHA-256 of the secret (never the secret).

use chrono::{DateTime, Utc};
use fiktiv_vault::audit::fmt_time;
use fiktiv_vault::Vault;
use sqlx::AnyConnection;

use crate::DomainResult;

/// A token as stored, without its hash.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TokenRow {
    pub token_id: String,
    pub name: String,
    /// Role names, comma-separated.
    pub roles: String,
    /// Unit codes, comma-separated.
    pub units: String,
    pub created_at: String,
    pub expires_at: String,
    pub revoked_at: Option<String>,
}

/// A token to store.
#[derive(Debug, Clone, Copy)]
pub struct NewTokenRow<'a> {
    pub token_id: &'a str,
    pub name: &'a str,
    pub roles: &'a str,
    pub units: &'a str,
    pub secret_hash: &'a str,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Stores a new token, in the caller's transaction.
pub async fn insert(conn: &mut AnyConnection, t: &NewTokenRow<'_>) -> DomainResult<()> {
    sqlx::query(
        "INSERT INTO api_tokens (token_id, name, roles, units, secret_hash, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(t.token_id)
    .bind(t.name)
    .bind(t.roles)
    .bind(t.units)
    .bind(t.secret_hash)
    .bind(fmt_time(t.created_at))
    .bind(fmt_time(t.expires_at))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

const COLUMNS: &str = "token_id, name, roles, units, created_at, expires_at, revoked_at";

/// Every token, oldest first.
pub async fn all(vault: &Vault) -> DomainResult<Vec<TokenRow>> {
    Ok(sqlx::query_as::<_, TokenRow>(&format!(
        "SELECT {COLUMNS} FROM api_tokens ORDER BY created_at, token_id"
    ))
    .fetch_all(vault.db().pool())
    .await?)
}

/// Revokes a token, in the caller's transaction. False when there is no such
/// unrevoked token.
pub async fn revoke(
    conn: &mut AnyConnection,
    token_id: &str,
    now: DateTime<Utc>,
) -> DomainResult<bool> {
    let done = sqlx::query(
        "UPDATE api_tokens SET revoked_at = $1 WHERE token_id = $2 AND revoked_at IS NULL",
    )
    .bind(fmt_time(now))
    .bind(token_id)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The token with this secret hash.
pub async fn by_hash(vault: &Vault, secret_hash: &str) -> DomainResult<Option<TokenRow>> {
    Ok(sqlx::query_as::<_, TokenRow>(&format!(
        "SELECT {COLUMNS} FROM api_tokens WHERE secret_hash = $1"
    ))
    .bind(secret_hash)
    .fetch_optional(vault.db().pool())
    .await?)
}
