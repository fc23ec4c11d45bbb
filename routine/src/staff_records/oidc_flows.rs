//! OpenID Connect flows in progress (`web_oidc_flows`): kept server-side between the
//! redirect to the provider and its answer, found by the SHA-256 of the `state`, bound
//! to the browser by the SHA-256 of its cookie, taken out once.

use chrono::{DateTime, Utc};
use fiktiv_vault::audit::fmt_time;
use fiktiv_vault::Vault;

use crate::DomainResult;

/// A flow to store.
#[derive(Clone, Copy)]
pub struct NewFlow<'a> {
    pub state_hash: &'a str,
    pub browser_hash: &'a str,
    pub nonce: &'a str,
    pub pkce_verifier: &'a str,
    /// `sign-in` or `step-up`.
    pub purpose: &'a str,
    pub session_hash: Option<&'a str>,
    pub next_path: &'a str,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A flow as stored (its nonce and PKCE verifier are secrets of the flow).
#[derive(sqlx::FromRow)]
pub struct FlowRow {
    pub browser_hash: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub purpose: String,
    pub session_hash: Option<String>,
    pub next_path: String,
    pub created_at: String,
    pub expires_at: String,
}

impl std::fmt::Debug for FlowRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FlowRow({}, [secrets])", self.purpose)
    }
}

/// Stores a flow, and drops the flows that expired before `f.created_at`.
pub async fn insert(vault: &Vault, f: &NewFlow<'_>) -> DomainResult<()> {
    let mut tx = vault.db().begin_write().await?;
    sqlx::query("DELETE FROM web_oidc_flows WHERE expires_at < $1")
        .bind(fmt_time(f.created_at))
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO web_oidc_flows (state_hash, browser_hash, nonce, pkce_verifier, purpose, \
         session_hash, next_path, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(f.state_hash)
    .bind(f.browser_hash)
    .bind(f.nonce)
    .bind(f.pkce_verifier)
    .bind(f.purpose)
    .bind(f.session_hash)
    .bind(f.next_path)
    .bind(fmt_time(f.created_at))
    .bind(fmt_time(f.expires_at))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Takes the flow of this state hash out of the store: it is deleted whatever the
/// caller finds in it.
pub async fn take(vault: &Vault, state_hash: &str) -> DomainResult<Option<FlowRow>> {
    let mut tx = vault.db().begin_write().await?;
    let row = sqlx::query_as::<_, FlowRow>(
        "SELECT browser_hash, nonce, pkce_verifier, purpose, session_hash, next_path, \
         created_at, expires_at FROM web_oidc_flows WHERE state_hash = $1",
    )
    .bind(state_hash)
    .fetch_optional(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM web_oidc_flows WHERE state_hash = $1")
        .bind(state_hash)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(row)
}
