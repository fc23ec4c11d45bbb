//! Step 9: the annual review. A review is due before each school year starts (the
//! start is configured per country) and at least once per school year; opening the case
//! counts as the first. Everything is computed from the vault's clock.

use fiktiv_policies::review::ReviewStatus;
use fiktiv_policies::{Action, Permit};
use fiktiv_vault::audit::fmt_time;
use fiktiv_vault::{CaseId, Vault};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::ToSchema;

use super::cases::{self, CaseState, CountryCode};
use super::end::{self, EndReason};
use super::{
    audit_ok, fmt_date, parse_country, parse_date, today, DomainError, DomainResult, Rules,
};

/// What the review decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ReviewOutcome {
    /// The protection and the plan continue unchanged.
    Continue,
    /// The plan was changed (write the new plan version too).
    PlanChanged,
    /// The protection ends: the case is ended in the same transaction.
    EndProtection,
}

impl ReviewOutcome {
    fn as_str(self) -> &'static str {
        match self {
            ReviewOutcome::Continue => "continue",
            ReviewOutcome::PlanChanged => "plan-changed",
            ReviewOutcome::EndProtection => "end-protection",
        }
    }
}

/// Record a review held today.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewInput {
    pub outcome: ReviewOutcome,
}

/// Review status of a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DueStatus {
    Ok,
    DueSoon,
    Overdue,
}

impl From<ReviewStatus> for DueStatus {
    fn from(s: ReviewStatus) -> Self {
        match s {
            ReviewStatus::Ok => DueStatus::Ok,
            ReviewStatus::DueSoon => DueStatus::DueSoon,
            ReviewStatus::Overdue => DueStatus::Overdue,
        }
    }
}

/// A case's review position.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewItem {
    pub case_id: String,
    pub unit: String,
    pub country: CountryCode,
    pub last_review_on: String,
    pub next_due: String,
    pub status: DueStatus,
    pub days_until_due: i64,
}

/// The review was recorded.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewRecorded {
    pub seq: i64,
    pub outcome: ReviewOutcome,
    pub reviewed_on: String,
    pub recorded_by: String,
    pub next_due: String,
}

/// Reviews due soon or overdue, in one unit or (`unit` = None) the whole
/// municipality; with `all`, every open case. Permit: `reviews.list` on the unit or
/// `reviews.list-all` on the municipality.
pub async fn list(
    vault: &Vault,
    rules: &Rules,
    permit: &Permit,
    unit: Option<&str>,
    all: bool,
) -> DomainResult<Vec<ReviewItem>> {
    match unit {
        Some(_) => permit.require(Action::ReviewsList)?,
        None => permit.require(Action::ReviewsListAll)?,
    }
    let rows = sqlx::query(
        "SELECT case_id, unit, country, last_review_on FROM cases \
         WHERE state <> 'ended' AND ($1 IS NULL OR unit = $1) ORDER BY unit, case_id",
    )
    .bind(unit.map(str::to_owned))
    .fetch_all(vault.db().pool())
    .await?;
    let mut out = Vec::new();
    for r in rows {
        let country = parse_country(&r.try_get::<String, _>("country")?)?;
        let last = parse_date(&r.try_get::<String, _>("last_review_on")?)?;
        let a = rules
            .review_policy(country)
            .assess(last, today(vault, country));
        if !all && a.status == ReviewStatus::Ok {
            continue;
        }
        out.push(ReviewItem {
            case_id: r.try_get("case_id")?,
            unit: r.try_get("unit")?,
            country: country.into(),
            last_review_on: fmt_date(last),
            next_due: fmt_date(a.next_due),
            status: a.status.into(),
            days_until_due: a.days_until_due,
        });
    }
    out.sort_by_key(|i| i.days_until_due);
    Ok(out)
}

/// Record a review held today. Permit: `review.record`. "End protection" ends the case
/// (and asks for deprovisioning) in the same transaction.
pub async fn record(
    vault: &Vault,
    rules: &Rules,
    permit: &Permit,
    case: &CaseId,
    input: ReviewInput,
) -> DomainResult<ReviewRecorded> {
    permit.require(Action::ReviewRecord)?;
    let mut tx = vault.db().begin_write().await?;
    let row = cases::load(&mut tx, case).await?;
    if row.state == CaseState::Ended {
        return Err(DomainError::wrong_state());
    }
    let today = today(vault, row.country);
    let max: Option<i64> = sqlx::query("SELECT MAX(seq) AS m FROM reviews WHERE case_id = $1")
        .bind(case.to_string())
        .fetch_one(&mut *tx)
        .await?
        .try_get("m")?;
    let seq = max.unwrap_or(0) + 1;
    sqlx::query(
        "INSERT INTO reviews (case_id, seq, reviewed_on, outcome, recorded_by, recorded_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(case.to_string())
    .bind(seq)
    .bind(fmt_date(today))
    .bind(input.outcome.as_str())
    .bind(permit.principal_id())
    .bind(fmt_time(vault.now()))
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE cases SET last_review_on = $1 WHERE case_id = $2")
        .bind(fmt_date(today))
        .bind(case.to_string())
        .execute(&mut *tx)
        .await?;
    audit_ok(vault, &mut tx, permit, Some(*case), None).await?;
    if input.outcome == ReviewOutcome::EndProtection {
        end::end_in_tx(
            vault,
            rules,
            &mut tx,
            permit.principal_id(),
            case,
            EndReason::ProtectionLifted,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(ReviewRecorded {
        seq,
        outcome: input.outcome,
        reviewed_on: fmt_date(today),
        recorded_by: permit.principal_id().to_owned(),
        next_due: fmt_date(rules.review_policy(row.country).next_due(today)),
    })
}

/// One recorded review.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewEntry {
    pub seq: i64,
    pub outcome: ReviewOutcome,
    pub reviewed_on: String,
    pub recorded_by: String,
    pub recorded_at: String,
}

/// A case's reviews and where it stands now.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewHistory {
    pub case_id: String,
    /// The last review, or the day the case was opened.
    pub last_review_on: String,
    /// `None` once the case has ended.
    pub next_due: Option<String>,
    pub status: Option<DueStatus>,
    /// Every recorded review, oldest first.
    pub reviews: Vec<ReviewEntry>,
}

fn parse_outcome(s: &str) -> DomainResult<ReviewOutcome> {
    Ok(match s {
        "continue" => ReviewOutcome::Continue,
        "plan-changed" => ReviewOutcome::PlanChanged,
        "end-protection" => ReviewOutcome::EndProtection,
        _ => {
            return Err(DomainError::Internal(
                "stored review outcome is malformed".into(),
            ))
        }
    })
}

/// A case's review history (outcome, who, when) and its due date. Permit:
/// `review.read`.
pub async fn history(
    vault: &Vault,
    rules: &Rules,
    permit: &Permit,
    case: &CaseId,
) -> DomainResult<ReviewHistory> {
    permit.require(Action::ReviewRead)?;
    let mut conn = vault.db().pool().acquire().await?;
    let row = cases::load(&mut conn, case).await?;
    let rows = sqlx::query(
        "SELECT seq, reviewed_on, outcome, recorded_by, recorded_at FROM reviews \
         WHERE case_id = $1 ORDER BY seq",
    )
    .bind(case.to_string())
    .fetch_all(&mut *conn)
    .await?;
    let reviews = rows
        .iter()
        .map(|r| {
            Ok(ReviewEntry {
                seq: r.try_get("seq")?,
                outcome: parse_outcome(&r.try_get::<String, _>("outcome")?)?,
                reviewed_on: r.try_get("reviewed_on")?,
                recorded_by: r.try_get("recorded_by")?,
                recorded_at: r.try_get("recorded_at")?,
            })
        })
        .collect::<DomainResult<Vec<_>>>()?;
    let assessment = (row.state != CaseState::Ended).then(|| {
        rules
            .review_policy(row.country)
            .assess(row.last_review_on, today(vault, row.country))
    });
    Ok(ReviewHistory {
        case_id: case.to_string(),
        last_review_on: fmt_date(row.last_review_on),
        next_due: assessment.map(|a| fmt_date(a.next_due)),
        status: assessment.map(|a| a.status.into()),
        reviews,
    })
}
