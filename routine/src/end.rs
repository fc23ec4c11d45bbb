//! Step 11: the end of a case, and shredding after the retention period.
//!
//! When the pupil leaves or the protection is lifted, the case ends and deprovisioning
//! is requested. The shred dates are computed from the retention policy (per record
//! class, configured) on that day and stored with the case. [`run_retention`] then
//! shreds what is due:
//! - the real identities (pupil and guardians): the case's data key, sealed records and
//!   blind indexes (crypto-shredding in the vault);
//! - the action plan: its own data key and sealed versions;
//! - the routine's other records (fictitious identity, login decision, staff told,
//!   reviews, order): on the latest of those classes' dates, never early. The
//!   fictitious numbers stay reserved, without their case, so none is given out again.
//!
//! Reveal requests and audit events are kept as their classes say (permanent by
//! default) and hold no real identity.

use chrono::NaiveDate;
use fiktiv_policies::retention::RecordClass;
use fiktiv_policies::{Action, Country, Permit};
use fiktiv_vault::audit::{fmt_time, NewEvent, Outcome};
use fiktiv_vault::{CaseId, Vault};
use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Row};
use utoipa::ToSchema;

use super::cases::{self, CaseState};
use super::{country_str, fmt_date, today, DomainError, DomainResult, FieldProblem, Rules};

/// Why the case ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum EndReason {
    /// The pupil left the municipality.
    LeftMunicipality,
    /// The pupil left the school (and no other unit of the municipality takes the case).
    LeftSchool,
    /// The protection (sekretessmarkering / fortrolig adresse) was lifted.
    ProtectionLifted,
    /// The pupil left (school or municipality, not said): what earlier releases
    /// recorded; still accepted.
    PupilLeft,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::LeftMunicipality => "left-municipality",
            EndReason::LeftSchool => "left-school",
            EndReason::ProtectionLifted => "protection-lifted",
            EndReason::PupilLeft => "pupil-left",
        }
    }

    /// The reason of a form field, the same codes as the API.
    pub fn parse(s: &str) -> Option<Self> {
        [
            EndReason::LeftMunicipality,
            EndReason::LeftSchool,
            EndReason::ProtectionLifted,
            EndReason::PupilLeft,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

/// End a case.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndInput {
    pub reason: EndReason,
    /// The day the pupil left, `YYYY-MM-DD` (default: today). Not in the future, not
    /// before the case was opened. The retention periods count from the day the case
    /// ends (today).
    #[serde(default)]
    pub leaving_date: Option<String>,
}

/// The case ended.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ended {
    pub ended_on: String,
    pub deprovisioning_requested: bool,
    /// When the real identities will be shredded (`null`: kept permanently by policy).
    pub identity_shred_on: Option<String>,
    /// When the action plan will be shredded.
    pub plan_shred_on: Option<String>,
    /// When the routine's other records will be shredded.
    pub records_shred_on: Option<String>,
    /// The day the pupil left, when given.
    pub left_on: Option<String>,
}

/// How long each class of a case's records is kept after the case ends, under the
/// retention policy in force: what the case page shows before the end.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct RetentionSchedule {
    /// Days after the end until the real identities are shredded (`null`: kept).
    pub identity_days: Option<i64>,
    /// Days until the action plan (and the school's label) is shredded.
    pub plan_days: Option<i64>,
    /// Days until the routine's other records are shredded.
    pub records_days: Option<i64>,
}

/// The retention schedule of a case ending on `day`.
pub fn retention_schedule(rules: &Rules, day: NaiveDate) -> RetentionSchedule {
    let days = |d: Option<NaiveDate>| d.map(|d| (d - day).num_days());
    RetentionSchedule {
        identity_days: days(rules.retention.shred_after(RecordClass::RealIdentity, day)),
        plan_days: days(rules.retention.shred_after(RecordClass::ActionPlan, day)),
        records_days: days(latest(rules, OTHER_RECORDS, day)),
    }
}

/// The latest shred date of some classes; `None` if any of them is permanent.
fn latest(rules: &Rules, classes: &[RecordClass], ended: NaiveDate) -> Option<NaiveDate> {
    let mut out: Option<NaiveDate> = None;
    for &c in classes {
        let d = rules.retention.shred_after(c, ended)?;
        out = Some(out.map_or(d, |o| o.max(d)));
    }
    out
}

const OTHER_RECORDS: &[RecordClass] = &[
    RecordClass::FictitiousIdentity,
    RecordClass::LoginDecision,
    RecordClass::StaffTold,
    RecordClass::Review,
    RecordClass::Order,
];

/// End the case inside the caller's transaction and append the `case.end` event.
pub(crate) async fn end_in_tx(
    vault: &Vault,
    rules: &Rules,
    conn: &mut AnyConnection,
    actor: &str,
    case: &CaseId,
    reason: EndReason,
    leaving_date: Option<&str>,
) -> DomainResult<Ended> {
    let row = cases::load(conn, case).await?;
    if row.state == CaseState::Ended {
        return Err(DomainError::wrong_state());
    }
    let today = today(vault, row.country);
    let left_on = match leaving_date.map(str::trim).filter(|d| !d.is_empty()) {
        None => None,
        Some(d) => {
            let opened = row.opened_at.get(..10).unwrap_or("");
            match NaiveDate::parse_from_str(d, "%Y-%m-%d") {
                Ok(day) if day <= today && fmt_date(day).as_str() >= opened => Some(day),
                _ => {
                    return Err(DomainError::Invalid(vec![FieldProblem::new(
                        "leaving_date",
                        "end.leaving-date",
                        "The leaving date is a date (YYYY-MM-DD) from the day the case was \
                         opened up to today.",
                    )]))
                }
            }
        }
    };
    let identity = rules
        .retention
        .shred_after(RecordClass::RealIdentity, today);
    let plan = rules.retention.shred_after(RecordClass::ActionPlan, today);
    let records = latest(rules, OTHER_RECORDS, today);
    sqlx::query(
        "UPDATE cases SET state = 'ended', ended_on = $1, end_reason = $2, ended_by = $3, \
         identity_shred_on = $4, plan_shred_on = $5, records_shred_on = $6, left_on = $7 \
         WHERE case_id = $8",
    )
    .bind(fmt_date(today))
    .bind(reason.as_str())
    .bind(actor)
    .bind(identity.map(fmt_date))
    .bind(plan.map(fmt_date))
    .bind(records.map(fmt_date))
    .bind(left_on.map(fmt_date))
    .bind(case.to_string())
    .execute(&mut *conn)
    .await?;
    // Only a case that reached registration has anything to deprovision, but asking
    // costs nothing and covers accounts made by hand.
    sqlx::query(
        "INSERT INTO deprovision_requests (case_id, requested_by, requested_at) VALUES ($1, $2, $3)",
    )
    .bind(case.to_string())
    .bind(actor)
    .bind(fmt_time(vault.now()))
    .execute(&mut *conn)
    .await?;
    crate::desired::sync_case(vault, conn, case).await?; // accounts: disable, later delete
    vault
        .audit(
            conn,
            &NewEvent {
                actor,
                action: Action::CaseEnd.as_str(),
                case_id: Some(*case),
                purpose: None,
                outcome: Outcome::Ok,
            },
        )
        .await?;
    Ok(Ended {
        ended_on: fmt_date(today),
        deprovisioning_requested: true,
        identity_shred_on: identity.map(fmt_date),
        plan_shred_on: plan.map(fmt_date),
        records_shred_on: records.map(fmt_date),
        left_on: left_on.map(fmt_date),
    })
}

/// End a case (pupil left or protection lifted). Permit: `case.end`.
pub async fn end(
    vault: &Vault,
    rules: &Rules,
    permit: &Permit,
    case: &CaseId,
    input: EndInput,
) -> DomainResult<Ended> {
    permit.require(Action::CaseEnd)?;
    let mut tx = vault.db().begin_write().await?;
    let out = end_in_tx(
        vault,
        rules,
        &mut tx,
        permit.principal_id(),
        case,
        input.reason,
        input.leaving_date.as_deref(),
    )
    .await?;
    tx.commit().await?;
    Ok(out)
}

/// What a retention run shredded.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct RetentionReport {
    pub identities: u64,
    pub plans: u64,
    pub records: u64,
}

/// Ended cases whose `date_col` has come (on the case country's local date) and whose
/// `done_col` is not set yet.
async fn due(vault: &Vault, date_col: &str, done_col: &str) -> DomainResult<Vec<CaseId>> {
    let sql = format!(
        "SELECT case_id FROM cases WHERE state = 'ended' AND country = $1 \
         AND {date_col} IS NOT NULL AND {date_col} <= $2 AND {done_col} IS NULL ORDER BY case_id"
    );
    let mut out = Vec::new();
    for country in [Country::Se, Country::No] {
        let rows = sqlx::query(&sql)
            .bind(country_str(country))
            .bind(fmt_date(today(vault, country)))
            .fetch_all(vault.db().pool())
            .await?;
        for r in rows {
            out.push(
                r.try_get::<String, _>("case_id")?
                    .parse()
                    .map_err(|_| DomainError::Internal("stored case id is malformed".into()))?,
            );
        }
    }
    Ok(out)
}

async fn system_event(
    vault: &Vault,
    conn: &mut AnyConnection,
    actor: &str,
    action: &str,
    case: &CaseId,
) -> DomainResult<()> {
    vault
        .audit(
            conn,
            &NewEvent {
                actor,
                action,
                case_id: Some(*case),
                purpose: None,
                outcome: Outcome::Ok,
            },
        )
        .await?;
    Ok(())
}

/// Shred everything whose retention period has passed, one case and class per
/// transaction, each with its audit event. Run by `fiktiv retention run` (and by a
/// scheduler when there is one). `actor` is who runs it (`system`, `cli`).
pub async fn run_retention(vault: &Vault, actor: &str) -> DomainResult<RetentionReport> {
    let mut report = RetentionReport::default();
    let now = || fmt_time(vault.now());
    for case in due(vault, "identity_shred_on", "identity_shredded_at").await? {
        let mut tx = vault.db().begin_write().await?;
        vault.shred(&mut tx, &case).await?;
        sqlx::query(
            "UPDATE cases SET identity_shredded_at = $1, pnr_index = NULL WHERE case_id = $2",
        )
        .bind(now())
        .bind(case.to_string())
        .execute(&mut *tx)
        .await?;
        system_event(vault, &mut tx, actor, "retention.shred-identity", &case).await?;
        tx.commit().await?;
        report.identities += 1;
    }
    for case in due(vault, "plan_shred_on", "plan_shredded_at").await? {
        let mut tx = vault.db().begin_write().await?;
        let row = cases::load(&mut tx, &case).await?;
        vault.shred(&mut tx, &row.plan_key).await?;
        sqlx::query("DELETE FROM plan_versions WHERE case_id = $1")
            .bind(case.to_string())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM plan_drafts WHERE case_id = $1")
            .bind(case.to_string())
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE cases SET plan_shredded_at = $1 WHERE case_id = $2")
            .bind(now())
            .bind(case.to_string())
            .execute(&mut *tx)
            .await?;
        system_event(vault, &mut tx, actor, "retention.shred-plan", &case).await?;
        tx.commit().await?;
        report.plans += 1;
    }
    for case in due(vault, "records_shred_on", "records_shredded_at").await? {
        let mut tx = vault.db().begin_write().await?;
        let id = case.to_string();
        for sql in [
            "DELETE FROM guardians WHERE case_id = $1",
            "DELETE FROM staff_told WHERE case_id = $1",
            "DELETE FROM reviews WHERE case_id = $1",
            "DELETE FROM orders WHERE case_id = $1",
            "UPDATE fictitious_numbers SET case_id = NULL, subject = NULL WHERE case_id = $1",
            "UPDATE cases SET fict_first = NULL, fict_last = NULL, fict_birth = NULL, \
             fict_number = NULL, fict_by = NULL, fict_at = NULL, login_decision = NULL, \
             guardians_informed_on = NULL, decision_by = NULL, decision_at = NULL \
             WHERE case_id = $1",
        ] {
            sqlx::query(sql).bind(&id).execute(&mut *tx).await?;
        }
        sqlx::query("UPDATE cases SET records_shredded_at = $1 WHERE case_id = $2")
            .bind(now())
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        system_event(vault, &mut tx, actor, "retention.shred-records", &case).await?;
        tx.commit().await?;
        report.records += 1;
    }
    vault.db().checkpoint().await?;
    Ok(report)
}
