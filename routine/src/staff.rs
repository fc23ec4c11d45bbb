//! Step 8: the school records who on the staff was told of the plan, and when.

use fiktiv_policies::{Action, Permit};
use fiktiv_vault::audit::fmt_time;
use fiktiv_vault::{CaseId, Vault};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::ToSchema;

use super::cases::{self, CaseState};
use super::{
    audit_ok, check_date, check_labels, fmt_date, today, DomainError, DomainResult, FieldProblem,
};

/// Who was told, and when.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StaffToldInput {
    /// Staff references (names, roles or staff ids), at least one.
    pub staff: Vec<String>,
    /// `YYYY-MM-DD`, not in the future.
    pub told_on: String,
}

/// The record.
#[derive(Debug, Serialize, ToSchema)]
pub struct StaffToldRecorded {
    pub seq: i64,
    pub staff: Vec<String>,
    pub told_on: String,
    pub recorded_by: String,
    pub recorded_at: String,
}

/// Record that staff were told. Permit: `staff-told.write`.
pub async fn record(
    vault: &Vault,
    permit: &Permit,
    case: &CaseId,
    input: StaffToldInput,
) -> DomainResult<StaffToldRecorded> {
    permit.require(Action::StaffToldWrite)?;
    let mut problems = Vec::new();
    check_labels("staff", &input.staff, &mut problems);
    if input.staff.is_empty() {
        problems.push(FieldProblem::new(
            "staff",
            "staff.empty",
            "Name at least one member of staff.",
        ));
    }
    let told_on = check_date("told_on", &input.told_on, &mut problems);
    let told_on = match told_on {
        Some(d) if problems.is_empty() => d,
        _ => return Err(DomainError::Invalid(problems)),
    };
    let staff: Vec<String> = input.staff.iter().map(|s| s.trim().to_owned()).collect();
    let mut tx = vault.db().begin_write().await?;
    let row = cases::load(&mut tx, case).await?;
    if row.state == CaseState::Ended {
        return Err(DomainError::wrong_state());
    }
    // "Not in the future" is decided on the case's local date.
    if told_on > today(vault, row.country) {
        return Err(DomainError::invalid(
            "told_on",
            "date.in-future",
            "The date lies in the future.",
        ));
    }
    let max: Option<i64> = sqlx::query("SELECT MAX(seq) AS m FROM staff_told WHERE case_id = $1")
        .bind(case.to_string())
        .fetch_one(&mut *tx)
        .await?
        .try_get("m")?;
    let seq = max.unwrap_or(0) + 1;
    let now = fmt_time(vault.now());
    sqlx::query(
        "INSERT INTO staff_told (case_id, seq, staff_json, told_on, recorded_by, recorded_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(case.to_string())
    .bind(seq)
    .bind(serde_json::to_string(&staff).map_err(|e| DomainError::Internal(e.to_string()))?)
    .bind(fmt_date(told_on))
    .bind(permit.principal_id())
    .bind(&now)
    .execute(&mut *tx)
    .await?;
    audit_ok(vault, &mut tx, permit, Some(*case), None).await?;
    tx.commit().await?;
    Ok(StaffToldRecorded {
        seq,
        staff,
        told_on: fmt_date(told_on),
        recorded_by: permit.principal_id().to_owned(),
        recorded_at: now,
    })
}

/// Every record of who was told, oldest first. Permit: `staff-told.read`. The records
/// are kept until the case's records are shredded after it ends.
pub async fn list(
    vault: &Vault,
    permit: &Permit,
    case: &CaseId,
) -> DomainResult<Vec<StaffToldRecorded>> {
    permit.require(Action::StaffToldRead)?;
    let mut conn = vault.db().pool().acquire().await?;
    cases::load(&mut conn, case).await?;
    let rows = sqlx::query(
        "SELECT seq, staff_json, told_on, recorded_by, recorded_at FROM staff_told \
         WHERE case_id = $1 ORDER BY seq",
    )
    .bind(case.to_string())
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            let staff: String = r.try_get("staff_json")?;
            Ok(StaffToldRecorded {
                seq: r.try_get("seq")?,
                staff: serde_json::from_str(&staff)
                    .map_err(|e| DomainError::Internal(e.to_string()))?,
                told_on: r.try_get("told_on")?,
                recorded_by: r.try_get("recorded_by")?,
                recorded_at: r.try_get("recorded_at")?,
            })
        })
        .collect()
}

/// Who the plan says must be told (`plan`, its `staff_to_inform`) and no record names
/// yet: compared without regard to case and surrounding spaces, in the plan's order.
pub fn still_to_tell(plan: &[String], told: &[StaffToldRecorded]) -> Vec<String> {
    let key = |s: &str| s.trim().to_lowercase();
    let done: std::collections::HashSet<String> = told
        .iter()
        .flat_map(|r| r.staff.iter().map(|s| key(s)))
        .collect();
    plan.iter()
        .filter(|p| !done.contains(&key(p)))
        .cloned()
        .collect()
}

#[cfg(test)]
mod still_to_tell_tests {
    use super::*;

    fn told(staff: &[&str]) -> StaffToldRecorded {
        StaffToldRecorded {
            seq: 1,
            staff: staff.iter().map(|s| (*s).to_owned()).collect(),
            told_on: "2026-03-01".into(),
            recorded_by: "staff:x".into(),
            recorded_at: "2026-03-01T09:00:00Z".into(),
        }
    }

    #[test]
    fn the_plan_minus_everyone_recorded_in_any_record() {
        let plan: Vec<String> = ["Klassföreståndare 4B", "Skolsköterska", "Rektor"]
            .map(String::from)
            .to_vec();
        assert_eq!(still_to_tell(&plan, &[]), plan);
        let records = [told(&["skolsköterska "]), told(&["Vaktmästare", "rektor"])];
        assert_eq!(still_to_tell(&plan, &records), vec!["Klassföreståndare 4B"]);
        assert!(still_to_tell(&[], &records).is_empty());
    }
}
