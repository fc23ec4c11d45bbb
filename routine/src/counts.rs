//! What `/metrics` counts, read from the store: counts and times only, never a value of
//! a person. The service's `metrics` module turns these into the exposition format.

use fiktiv_vault::Vault;
use sqlx::Row;

use crate::DomainResult;

/// When each target was last read completely by a reconciliation (RFC 3339).
pub async fn reconciled(vault: &Vault) -> DomainResult<Vec<(String, String)>> {
    let mut out = Vec::new();
    for r in sqlx::query("SELECT target, last_ok_at FROM prov_target_reconciled")
        .fetch_all(vault.db().pool())
        .await?
    {
        out.push((r.try_get("target")?, r.try_get("last_ok_at")?));
    }
    Ok(out)
}

/// Alerts not acknowledged, by kind.
pub async fn open_alerts(vault: &Vault) -> DomainResult<Vec<(String, i64)>> {
    let mut out = Vec::new();
    for r in sqlx::query(
        "SELECT kind, COUNT(*) AS n FROM prov_alerts WHERE acknowledged_at IS NULL GROUP BY kind",
    )
    .fetch_all(vault.db().pool())
    .await?
    {
        out.push((r.try_get("kind")?, r.try_get("n")?));
    }
    Ok(out)
}

/// The last finished leak scan: its findings and when it finished (RFC 3339).
pub async fn last_leak_scan(vault: &Vault) -> DomainResult<Option<(i64, Option<String>)>> {
    let row = sqlx::query(
        "SELECT findings, finished_at FROM prov_runs WHERE kind = 'leak-scan' AND state = 'done' \
         ORDER BY finished_at DESC, run_id LIMIT 1",
    )
    .fetch_optional(vault.db().pool())
    .await?;
    Ok(match row {
        Some(r) => Some((r.try_get("findings")?, r.try_get("finished_at")?)),
        None => None,
    })
}

/// Every case not ended: its country code and last review date, as stored.
pub async fn open_case_reviews(vault: &Vault) -> DomainResult<Vec<(String, String)>> {
    let mut out = Vec::new();
    for r in sqlx::query("SELECT country, last_review_on FROM cases WHERE state <> 'ended'")
        .fetch_all(vault.db().pool())
        .await?
    {
        out.push((r.try_get("country")?, r.try_get("last_review_on")?));
    }
    Ok(out)
}

/// The number of audit events (the chain's head).
pub async fn audit_events(vault: &Vault) -> DomainResult<i64> {
    Ok(sqlx::query("SELECT seq FROM audit_head WHERE id = 1")
        .fetch_optional(vault.db().pool())
        .await?
        .map(|r| r.try_get::<i64, _>("seq"))
        .transpose()?
        .unwrap_or(0))
}
