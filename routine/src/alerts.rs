//! The store of the alerts (`prov_alerts`): egress-guard blocks, leak-scan findings and
//! jobs that gave up. Delivery (`fiktiv-delivery`) raises them and renders their facts;
//! the rows are read and written here. An alert holds targets, rules, attribute names,
//! locators and counts, never a value.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use fiktiv_provisioning::PersonId;
use fiktiv_vault::audit::fmt_time;
use fiktiv_vault::{CaseId, Vault};
use sqlx::AnyConnection;

use crate::DomainResult;

/// An alert to record: its kind, where, and its facts (a JSON text the pages render in
/// the reader's language) with their English line for logs and the CLI.
#[derive(Debug, Clone, Copy)]
pub struct NewAlert<'a> {
    pub kind: &'a str,
    pub target: Option<&'a str>,
    pub case: Option<&'a CaseId>,
    pub person: Option<&'a PersonId>,
    pub detail: &'a str,
    pub facts_json: &'a str,
}

/// Records an alert in the caller's transaction.
pub async fn insert(
    conn: &mut AnyConnection,
    now: DateTime<Utc>,
    alert: &NewAlert<'_>,
) -> DomainResult<()> {
    sqlx::query(
        "INSERT INTO prov_alerts (alert_id, kind, target, case_id, person_id, detail, facts, \
         raised_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(alert.kind)
    .bind(alert.target)
    .bind(alert.case.map(ToString::to_string))
    .bind(alert.person.map(ToString::to_string))
    .bind(alert.detail)
    .bind(alert.facts_json)
    .bind(fmt_time(now))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// An alert as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredAlert {
    pub alert_id: String,
    pub kind: String,
    pub target: Option<String>,
    pub case_id: Option<String>,
    pub person_id: Option<String>,
    pub detail: String,
    /// The facts as JSON; absent on alerts raised before they were stored.
    pub facts: Option<String>,
    pub raised_at: String,
    pub acknowledged_by: Option<String>,
    pub acknowledged_at: Option<String>,
}

const COLUMNS: &str = "a.alert_id, a.kind, a.target, a.case_id, a.person_id, a.detail, \
     a.facts, a.raised_at, a.acknowledged_by, a.acknowledged_at";

/// The alerts, newest first (at most 1000): only the open ones with `open_only`, only
/// one case's with `case_id`.
pub async fn list(
    vault: &Vault,
    open_only: bool,
    case_id: Option<&str>,
) -> DomainResult<Vec<StoredAlert>> {
    Ok(sqlx::query_as::<_, StoredAlert>(&format!(
        "SELECT {COLUMNS} FROM prov_alerts a WHERE ($1 = 0 OR a.acknowledged_at IS NULL) \
         AND ($2 = '' OR a.case_id = $2) ORDER BY a.raised_at DESC, a.alert_id LIMIT 1000"
    ))
    .bind(i64::from(open_only))
    .bind(case_id.unwrap_or_default())
    .fetch_all(vault.db().pool())
    .await?)
}

/// The open alerts of the cases of one unit, newest first (at most 1000).
pub async fn open_of_unit(vault: &Vault, unit: &str) -> DomainResult<Vec<StoredAlert>> {
    Ok(sqlx::query_as::<_, StoredAlert>(&format!(
        "SELECT {COLUMNS} FROM prov_alerts a JOIN cases c ON c.case_id = a.case_id \
         WHERE c.unit = $1 AND a.acknowledged_at IS NULL ORDER BY a.raised_at DESC, a.alert_id \
         LIMIT 1000"
    ))
    .bind(unit)
    .fetch_all(vault.db().pool())
    .await?)
}

/// Acknowledges an alert, in the caller's transaction. `None` when there is no such
/// alert; otherwise the case it is about (if any). An alert acknowledged already keeps
/// who acknowledged it first.
pub async fn acknowledge(
    conn: &mut AnyConnection,
    alert_id: &str,
    by: &str,
    now: DateTime<Utc>,
) -> DomainResult<Option<Option<String>>> {
    let Some(case) = sqlx::query_scalar::<_, Option<String>>(
        "SELECT case_id FROM prov_alerts WHERE alert_id = $1",
    )
    .bind(alert_id)
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    sqlx::query(
        "UPDATE prov_alerts SET acknowledged_by = $1, acknowledged_at = $2 \
         WHERE alert_id = $3 AND acknowledged_at IS NULL",
    )
    .bind(by)
    .bind(fmt_time(now))
    .bind(alert_id)
    .execute(&mut *conn)
    .await?;
    Ok(Some(case))
}

/// The cases with an open leak alert.
pub async fn cases_with_open_leak(conn: &mut AnyConnection) -> DomainResult<BTreeSet<String>> {
    Ok(sqlx::query_scalar(
        "SELECT DISTINCT case_id FROM prov_alerts \
         WHERE kind = 'leak-found' AND acknowledged_at IS NULL AND case_id IS NOT NULL",
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .collect())
}

/// Closes a case's open leak alerts as acknowledged by `by`, in the caller's
/// transaction. Returns how many were closed.
pub async fn close_leak_alerts(
    conn: &mut AnyConnection,
    case: &CaseId,
    by: &str,
    now: DateTime<Utc>,
) -> DomainResult<u64> {
    Ok(sqlx::query(
        "UPDATE prov_alerts SET acknowledged_by = $1, acknowledged_at = $2 \
         WHERE kind = 'leak-found' AND case_id = $3 AND acknowledged_at IS NULL",
    )
    .bind(by)
    .bind(fmt_time(now))
    .bind(case.to_string())
    .execute(&mut *conn)
    .await?
    .rows_affected())
}

/// Open alerts per kind.
pub async fn open_counts(vault: &Vault) -> DomainResult<BTreeMap<String, i64>> {
    Ok(sqlx::query_as::<_, (String, i64)>(
        "SELECT kind, COUNT(*) AS n FROM prov_alerts WHERE acknowledged_at IS NULL GROUP BY kind",
    )
    .fetch_all(vault.db().pool())
    .await?
    .into_iter()
    .collect())
}
