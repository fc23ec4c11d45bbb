//! A school's own label of a case, so that a principal with several protected pupils
//! can tell them apart without revealing a real identity ("3B, starts in August").
//!
//! The label is the school's note: sealed with the case's plan key like the plan (and
//! shredded with it), shown to the case's unit only (never to the central
//! administrator, who sees the fictitious name and the unit). It is checked like every
//! short label: 1 to 64 characters, no control or invisible characters, no personal
//! number. Writing it is audited (`case.label`).

use std::collections::HashMap;

use fiktiv_policies::{Action, Permit};
use fiktiv_vault::{CaseId, Sealed, Vault};
use serde::Deserialize;
use sqlx::Row;
use utoipa::ToSchema;

use super::{audit_ok, cases, check_label, DomainError, DomainResult};

/// The field name the label is sealed under.
const LABEL_FIELD: &str = "case-label";

/// A new label, or `null` to remove it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LabelInput {
    pub label: Option<String>,
}

/// Set or remove the label of a case. Permit: `case.label` on the case.
pub async fn set(
    vault: &Vault,
    permit: &Permit,
    case: &CaseId,
    input: LabelInput,
) -> DomainResult<()> {
    permit.require(Action::CaseLabel)?;
    let label = input
        .label
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty());
    if let Some(l) = &label {
        let mut problems = Vec::new();
        check_label("label", l, &mut problems);
        if !problems.is_empty() {
            return Err(DomainError::Invalid(problems));
        }
    }
    let mut tx = vault.db().begin_write().await?;
    let row = cases::load(&mut tx, case).await?;
    let (dk, sealed) = match &label {
        Some(l) => {
            let s = vault
                .seal(&mut tx, &row.plan_key, LABEL_FIELD, l.as_bytes())
                .await?;
            (Some(i64::from(s.dk_version)), Some(s.bytes))
        }
        None => (None, None),
    };
    sqlx::query("UPDATE cases SET label_dk = $1, label_sealed = $2 WHERE case_id = $3")
        .bind(dk)
        .bind(sealed)
        .bind(case.to_string())
        .execute(&mut *tx)
        .await?;
    audit_ok(vault, &mut tx, permit, Some(*case), None).await?;
    tx.commit().await?;
    Ok(())
}

/// The labels of a unit's cases, by case id (a label that no longer opens, its plan
/// key shredded, is left out). Permit: `case.label` on the unit's cases.
pub async fn of_unit(
    vault: &Vault,
    permit: &Permit,
    unit: &str,
) -> DomainResult<HashMap<String, String>> {
    permit.require(Action::CaseLabel)?;
    labels_where(vault, "unit = $1", unit).await
}

/// The label of one case, if it has one that opens. Permit: `case.label` on the case.
pub async fn of_case(
    vault: &Vault,
    permit: &Permit,
    case: &CaseId,
) -> DomainResult<Option<String>> {
    permit.require(Action::CaseLabel)?;
    let id = case.to_string();
    Ok(labels_where(vault, "case_id = $1", &id).await?.remove(&id))
}

/// The labels of the cases matching `condition` (on `$1`), opened with their plan keys.
async fn labels_where(
    vault: &Vault,
    condition: &str,
    value: &str,
) -> DomainResult<HashMap<String, String>> {
    let mut conn = vault.db().pool().acquire().await?;
    let rows = sqlx::query(&format!(
        "SELECT case_id, plan_key, label_dk, label_sealed FROM cases \
         WHERE {condition} AND label_sealed IS NOT NULL"
    ))
    .bind(value)
    .fetch_all(&mut *conn)
    .await?;
    let mut out = HashMap::new();
    for r in rows {
        let case_id: String = r.try_get("case_id")?;
        let Ok(plan_key) = r.try_get::<String, _>("plan_key")?.parse::<CaseId>() else {
            continue;
        };
        let sealed = Sealed {
            dk_version: u32::try_from(r.try_get::<i64, _>("label_dk")?)
                .map_err(|_| DomainError::Internal("bad dk_version".into()))?,
            bytes: r.try_get("label_sealed")?,
        };
        if let Ok(plain) = vault.open(&mut conn, &plan_key, LABEL_FIELD, &sealed).await {
            if let Ok(text) = String::from_utf8(plain.to_vec()) {
                out.insert(case_id, text);
            }
        }
    }
    Ok(out)
}
