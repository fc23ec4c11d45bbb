//! The store of the targets made through the API (`prov_targets`): their settings as
//! JSON without the credential, and the credential sealed by the vault's target-secret
//! key. Delivery (`fiktiv-delivery`) validates, seals and builds the targets; it reads
//! and writes the rows through here.

use fiktiv_vault::audit::fmt_time;
use fiktiv_vault::Vault;
use sqlx::AnyConnection;

use crate::DomainResult;

/// A stored target.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredTarget {
    pub name: String,
    /// The target's settings without its credential (`TargetSpec` as JSON).
    pub settings_json: String,
    /// The credential, sealed; `None` when the target has none stored.
    pub secret_sealed: Option<Vec<u8>>,
}

/// Every stored target, by name.
pub async fn all(vault: &Vault) -> DomainResult<Vec<StoredTarget>> {
    Ok(sqlx::query_as::<_, StoredTarget>(
        "SELECT name, settings_json, secret_sealed FROM prov_targets ORDER BY name",
    )
    .fetch_all(vault.db().pool())
    .await?)
}

/// The stored credential of a target: `None` when there is no such target,
/// `Some(None)` when it has no credential stored.
pub async fn sealed_secret(
    conn: &mut AnyConnection,
    name: &str,
) -> DomainResult<Option<Option<Vec<u8>>>> {
    Ok(sqlx::query_scalar::<_, Option<Vec<u8>>>(
        "SELECT secret_sealed FROM prov_targets WHERE name = $1",
    )
    .bind(name)
    .fetch_optional(&mut *conn)
    .await?)
}

/// Writes a target (a new one, or replacing the one of that name), in the caller's
/// transaction.
pub async fn write(
    conn: &mut AnyConnection,
    kind: &str,
    target: &StoredTarget,
    actor: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> DomainResult<()> {
    let now = fmt_time(now);
    let updated = sqlx::query(
        "UPDATE prov_targets SET kind = $1, settings_json = $2, secret_sealed = $3, \
         updated_by = $4, updated_at = $5 WHERE name = $6",
    )
    .bind(kind)
    .bind(&target.settings_json)
    .bind(target.secret_sealed.clone())
    .bind(actor)
    .bind(&now)
    .bind(&target.name)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if updated == 0 {
        sqlx::query(
            "INSERT INTO prov_targets (name, kind, settings_json, secret_sealed, updated_by, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&target.name)
        .bind(kind)
        .bind(&target.settings_json)
        .bind(target.secret_sealed.clone())
        .bind(actor)
        .bind(&now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Removes a stored target, in the caller's transaction; its open jobs fail with the
/// reason "the target was removed". Returns false when there was no such target.
pub async fn remove(
    conn: &mut AnyConnection,
    name: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> DomainResult<bool> {
    let n = sqlx::query("DELETE FROM prov_targets WHERE name = $1")
        .bind(name)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    if n == 0 {
        return Ok(false);
    }
    sqlx::query(
        "UPDATE prov_jobs SET state = 'failed', last_error = $1, claim_token = NULL, \
         claimed_until = NULL, updated_at = $2 WHERE target = $3 AND state IN ('pending', 'running')",
    )
    .bind("the target was removed")
    .bind(fmt_time(now))
    .bind(name)
    .execute(&mut *conn)
    .await?;
    Ok(true)
}
