//! Step 3: the digital-login decision. Either a fictitious user, or no digital login
//! with a recorded confirmation that the guardians were told the consequences.

use fiktiv_policies::{Action, Permit};
use fiktiv_vault::audit::fmt_time;
use fiktiv_vault::{CaseId, Vault};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::cases::{self, CaseState};
use super::{audit_ok, check_date, fmt_date, today, DomainError, DomainResult};

/// The decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum LoginDecision {
    /// The pupil gets a fictitious user in the school's platforms.
    FictitiousUser,
    /// No digital login at all.
    NoDigitalLogin,
}

impl LoginDecision {
    pub fn as_str(self) -> &'static str {
        match self {
            LoginDecision::FictitiousUser => "fictitious-user",
            LoginDecision::NoDigitalLogin => "no-digital-login",
        }
    }
}

/// Record the decision.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionInput {
    pub decision: LoginDecision,
    /// Required for `no-digital-login`: the day the guardians were told what having no
    /// digital login means (`YYYY-MM-DD`, not in the future). Refused otherwise.
    pub guardians_informed_on: Option<String>,
}

/// The recorded decision.
#[derive(Debug, Serialize, ToSchema)]
pub struct DecisionRecorded {
    pub decision: LoginDecision,
    pub guardians_informed_on: Option<String>,
}

/// Record the decision. Permit: `login-decision.write`. Only before the order is sent.
pub async fn write(
    vault: &Vault,
    permit: &Permit,
    case: &CaseId,
    input: DecisionInput,
) -> DomainResult<DecisionRecorded> {
    permit.require(Action::LoginDecisionWrite)?;
    let mut problems = Vec::new();
    let informed = match (input.decision, input.guardians_informed_on.as_deref()) {
        (LoginDecision::NoDigitalLogin, Some(s)) => {
            check_date("guardians_informed_on", s, &mut problems)
        }
        (LoginDecision::NoDigitalLogin, None) => {
            return Err(DomainError::invalid(
                "guardians_informed_on",
                "decision.guardians-not-informed",
                "With no digital login, record the day the guardians were told what it means.",
            ))
        }
        (LoginDecision::FictitiousUser, Some(_)) => {
            return Err(DomainError::invalid(
                "guardians_informed_on",
                "decision.not-applicable",
                "Only a decision of no digital login records when the guardians were told.",
            ))
        }
        (LoginDecision::FictitiousUser, None) => None,
    };
    if !problems.is_empty() {
        return Err(DomainError::Invalid(problems));
    }
    let mut tx = vault.db().begin_write().await?;
    let row = cases::load(&mut tx, case).await?;
    if row.state != CaseState::Open {
        return Err(DomainError::wrong_state());
    }
    // "Not in the future" is decided on the case's local date.
    if informed.is_some_and(|d| d > today(vault, row.country)) {
        return Err(DomainError::invalid(
            "guardians_informed_on",
            "date.in-future",
            "The date lies in the future.",
        ));
    }
    sqlx::query(
        "UPDATE cases SET login_decision = $1, guardians_informed_on = $2, decision_by = $3, \
         decision_at = $4 WHERE case_id = $5",
    )
    .bind(input.decision.as_str())
    .bind(informed.map(fmt_date))
    .bind(permit.principal_id())
    .bind(fmt_time(vault.now()))
    .bind(case.to_string())
    .execute(&mut *tx)
    .await?;
    audit_ok(vault, &mut tx, permit, Some(*case), None).await?;
    tx.commit().await?;
    Ok(DecisionRecorded {
        decision: input.decision,
        guardians_informed_on: informed.map(fmt_date),
    })
}
