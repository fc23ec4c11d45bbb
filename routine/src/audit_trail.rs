//! The audit trail for auditors: events (staff ids, case ids, actions, times; never a
//! real identity) and verification of the hash chain.

use fiktiv_policies::{Action, Permit};
use fiktiv_vault::audit::{self, AuditEvent, VerifyReport};
use fiktiv_vault::{CaseId, Vault};

use super::DomainResult;

/// List events, newest first. Permit: `audit.read`.
pub async fn list(
    vault: &Vault,
    permit: &Permit,
    case: Option<CaseId>,
    action: Option<String>,
    limit: Option<i64>,
) -> DomainResult<Vec<AuditEvent>> {
    permit.require(Action::AuditRead)?;
    Ok(audit::list(
        vault.db().pool(),
        &audit::Filter {
            case_id: case,
            action,
            limit,
            ..Default::default()
        },
    )
    .await?)
}

/// Verify the chain. Permit: `audit.verify`.
pub async fn verify(vault: &Vault, permit: &Permit) -> DomainResult<VerifyReport> {
    permit.require(Action::AuditVerify)?;
    Ok(audit::verify(vault.db().pool(), vault.keys().audit()).await?)
}

/// List events, newest first, filtered by case, actor and action (each optional).
/// Permit: `audit.read`.
pub async fn search(
    vault: &Vault,
    permit: &Permit,
    case: Option<CaseId>,
    actor: Option<String>,
    action: Option<String>,
    limit: Option<i64>,
) -> DomainResult<Vec<AuditEvent>> {
    permit.require(Action::AuditRead)?;
    Ok(audit::list(
        vault.db().pool(),
        &audit::Filter {
            case_id: case,
            actor,
            action,
            limit,
            ..Default::default()
        },
    )
    .await?)
}

/// Is the audit trail there to be written to (its head row exists)? For readiness:
/// a service whose trail cannot be appended to must not take requests.
pub async fn head_present(vault: &Vault) -> bool {
    sqlx::query("SELECT seq FROM audit_head WHERE id = 1")
        .fetch_optional(vault.db().pool())
        .await
        .map(|r| r.is_some())
        .unwrap_or(false)
}
