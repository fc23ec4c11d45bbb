//! Plan drafts: what a person was writing when their session ended.
//!
//! A plan form sent after its session ended (the idle or the absolute timeout) cannot
//! be saved as a version: nobody is signed in. If the form carries the ended session's
//! own CSRF token (so it was that session's page, in that browser), its text is kept as
//! a draft for the same person and case, sealed under the case's plan key like the plan
//! itself (field `plan-draft`, so a draft never opens as a version or the other way
//! round). After signing in again the person finds it on the start page and goes on
//! writing; saving needs a live session and the `plan.write` permit as always. Saving
//! or discarding deletes the draft; so does shredding the case's plan.

use fiktiv_policies::{Action, Permit};
use fiktiv_vault::audit::{NewEvent, Outcome};
use fiktiv_vault::{CaseId, Sealed, Vault};
use serde::Serialize;
use sqlx::Row;
use zeroize::Zeroizing;

use super::cases::{self, CaseState};
use super::plans::Plan;
use fiktiv_vault::audit::fmt_time;

use super::{DomainError, DomainResult};

const DRAFT_FIELD: &str = "plan-draft";

/// A draft of one's own, as the start page lists it (no text).
#[derive(Debug, Clone, Serialize)]
pub struct DraftInfo {
    pub case_id: CaseId,
    pub saved_at: String,
}

/// Keep `plan` as the permit holder's draft of `case` (replacing an older one). Permit:
/// `plan.write`, decided for the person whose session has just ended (the caller has
/// checked that session's CSRF token). Nothing is kept for a case that is not open.
pub async fn keep(vault: &Vault, permit: &Permit, case: &CaseId, plan: &Plan) -> DomainResult<()> {
    permit.require(Action::PlanWrite)?;
    let principal = permit.principal_id();
    let bytes =
        Zeroizing::new(serde_json::to_vec(plan).map_err(|e| DomainError::Internal(e.to_string()))?);
    let mut tx = vault.db().begin_write().await?;
    let row = cases::load(&mut tx, case).await?;
    if row.state != CaseState::Open {
        return Err(DomainError::wrong_state());
    }
    let sealed = vault
        .seal(&mut tx, &row.plan_key, DRAFT_FIELD, &bytes)
        .await?;
    sqlx::query("DELETE FROM plan_drafts WHERE case_id = $1 AND principal = $2")
        .bind(case.to_string())
        .bind(principal)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO plan_drafts (case_id, principal, dk_version, sealed, saved_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(case.to_string())
    .bind(principal)
    .bind(i64::from(sealed.dk_version))
    .bind(sealed.bytes)
    .bind(fmt_time(vault.now()))
    .execute(&mut *tx)
    .await?;
    vault
        .audit(
            &mut tx,
            &NewEvent {
                actor: principal,
                action: "plan.draft-kept",
                case_id: Some(*case),
                purpose: None,
                outcome: Outcome::Ok,
            },
        )
        .await?;
    tx.commit().await?;
    Ok(())
}

/// The person's own drafts, newest first.
pub async fn list_own(vault: &Vault, principal: &str) -> DomainResult<Vec<DraftInfo>> {
    let rows = sqlx::query(
        "SELECT case_id, saved_at FROM plan_drafts WHERE principal = $1 ORDER BY saved_at DESC",
    )
    .bind(principal)
    .fetch_all(vault.db().pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(DraftInfo {
                case_id: cases::parse_case_id(&r.try_get::<String, _>("case_id")?)?,
                saved_at: r.try_get("saved_at")?,
            })
        })
        .collect()
}

/// Open the person's draft of `case` to go on writing it. Permit: `plan.write` (only
/// someone who may write the plan gets its draft back).
pub async fn open_own(vault: &Vault, permit: &Permit, case: &CaseId) -> DomainResult<Option<Plan>> {
    permit.require(Action::PlanWrite)?;
    let mut tx = vault.db().begin_write().await?;
    let row = cases::load(&mut tx, case).await?;
    let Some(r) = sqlx::query(
        "SELECT dk_version, sealed FROM plan_drafts WHERE case_id = $1 AND principal = $2",
    )
    .bind(case.to_string())
    .bind(permit.principal_id())
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Ok(None);
    };
    let sealed = Sealed {
        dk_version: u32::try_from(r.try_get::<i64, _>("dk_version")?)
            .map_err(|_| DomainError::Internal("bad dk_version".into()))?,
        bytes: r.try_get("sealed")?,
    };
    let Ok(plain) = vault
        .open(&mut tx, &row.plan_key, DRAFT_FIELD, &sealed)
        .await
    else {
        // The plan key was shredded: the draft is gone with it.
        return Ok(None);
    };
    tx.commit().await?;
    let plan: Plan =
        serde_json::from_slice(&plain).map_err(|e| DomainError::Internal(e.to_string()))?;
    Ok(Some(plan))
}

/// Delete the person's draft of `case` (saved as a version, or discarded).
pub async fn discard_own(vault: &Vault, principal: &str, case: &CaseId) -> DomainResult<()> {
    sqlx::query("DELETE FROM plan_drafts WHERE case_id = $1 AND principal = $2")
        .bind(case.to_string())
        .bind(principal)
        .execute(vault.db().pool())
        .await?;
    Ok(())
}
