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

/// Reminders given by one [`remind`] run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Reminded {
    pub due_soon: usize,
    pub overdue: usize,
}

/// Gives a reminder for every open case whose review is due soon or overdue and has
/// not had one for that due date and status: a `review_reminders` row (shown with
/// [`list`] as `reminded_at`) and a `review.reminder` audit event, in one transaction.
/// Run by the housekeeping schedule (once across the cluster); running it again gives
/// no second reminder. The log gets counts per unit, never a name.
pub async fn remind(vault: &Vault, rules: &Rules) -> DomainResult<Reminded> {
    let rows = sqlx::query(
        "SELECT case_id, unit, country, last_review_on FROM cases WHERE state <> 'ended' \
         ORDER BY case_id",
    )
    .fetch_all(vault.db().pool())
    .await?;
    let mut done = Reminded::default();
    let mut tx = vault.db().begin_write().await?;
    for r in rows {
        let country = parse_country(&r.try_get::<String, _>("country")?)?;
        let last = parse_date(&r.try_get::<String, _>("last_review_on")?)?;
        let a = rules
            .review_policy(country)
            .assess(last, today(vault, country));
        let status = match a.status {
            ReviewStatus::Ok => continue,
            ReviewStatus::DueSoon => "due-soon",
            ReviewStatus::Overdue => "overdue",
        };
        let case_id: String = r.try_get("case_id")?;
        let unit: String = r.try_get("unit")?;
        let inserted = sqlx::query(
            "INSERT INTO review_reminders (case_id, unit, due_on, status, reminded_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (case_id, due_on, status) DO NOTHING",
        )
        .bind(&case_id)
        .bind(&unit)
        .bind(fmt_date(a.next_due))
        .bind(status)
        .bind(fmt_time(vault.now()))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            continue;
        }
        let case = case_id
            .parse::<CaseId>()
            .map_err(|_| DomainError::Internal("stored case id is malformed".into()))?;
        vault
            .audit(
                &mut tx,
                &fiktiv_vault::audit::NewEvent {
                    actor: "system",
                    action: "review.reminder",
                    case_id: Some(case),
                    purpose: Some(status),
                    outcome: fiktiv_vault::audit::Outcome::Ok,
                },
            )
            .await?;
        tracing::info!(unit = %unit, status, "review reminder");
        if a.status == ReviewStatus::Overdue {
            done.overdue += 1;
        } else {
            done.due_soon += 1;
        }
    }
    tx.commit().await?;
    Ok(done)
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
    /// When the hourly housekeeping last gave a reminder for this due date (`null`: none
    /// yet).
    pub reminded_at: Option<String>,
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
        let case_id: String = r.try_get("case_id")?;
        let reminded_at = sqlx::query(
            "SELECT MAX(reminded_at) AS at FROM review_reminders WHERE case_id = $1 AND due_on = $2",
        )
        .bind(&case_id)
        .bind(fmt_date(a.next_due))
        .fetch_one(vault.db().pool())
        .await?
        .try_get::<Option<String>, _>("at")?;
        out.push(ReviewItem {
            case_id,
            unit: r.try_get("unit")?,
            country: country.into(),
            last_review_on: fmt_date(last),
            next_due: fmt_date(a.next_due),
            status: a.status.into(),
            days_until_due: a.days_until_due,
            reminded_at,
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
    if input.outcome == ReviewOutcome::PlanChanged {
        // "The plan was changed" needs the new version: one written since the last
        // review was recorded (before the first review: after the day the case was
        // opened, when its first plan is written).
        let since: Option<String> =
            sqlx::query("SELECT MAX(recorded_at) AS at FROM reviews WHERE case_id = $1")
                .bind(case.to_string())
                .fetch_one(&mut *tx)
                .await?
                .try_get("at")?;
        let since =
            since.unwrap_or_else(|| format!("{}T23:59:59.999999Z", fmt_date(row.last_review_on)));
        let newer: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM plan_versions WHERE case_id = $1 AND written_at > $2",
        )
        .bind(case.to_string())
        .bind(since)
        .fetch_one(&mut *tx)
        .await?
        .try_get("n")?;
        if newer == 0 {
            return Err(DomainError::conflict(
                "plan-not-changed",
                "Save the new version of the action plan first: no version was written \
                 since the last review.",
            ));
        }
    }
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
            None,
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

pub(crate) fn parse_outcome(s: &str) -> DomainResult<ReviewOutcome> {
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
