//! Correcting a pupil's real identity after the case was opened: a name change, or a
//! new personal number (people with *skyddad folkbokföring* in Sweden can be given a
//! new one).
//!
//! The new identity is sealed anew and its blind indexes replace the old ones in one
//! transaction ([`fiktiv_vault::Vault::correct_identity`]); the earlier versions of the
//! sealed record are deleted. The old identity is not simply dropped: a pupil's old
//! name is exactly what a directory or a platform may still hold. It is kept as an
//! explicit **old identity** of the case (subject `pupil-old-N`, sealed and indexed
//! like any real identity), so that the leak scan and the egress guard go on looking
//! for it, and so that nobody opens a second case for the pupil under the old number.
//! Once the leak scan no longer finds it downstream, the school or the central
//! administrator closes it ([`close_old_identity`]): its sealed record and indexes are
//! deleted, and nothing of it is left.

use fiktiv_policies::{Action, Permit};
use fiktiv_vault::{CaseId, IndexKind, ReadContext, Vault};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zeroize::Zeroizing;

use super::cases::{self, parse_real_identity, CaseState};
use super::{audit_ok, audit_refused, today, DomainError, DomainResult};

/// The pupil's subject in the vault.
const PUPIL: &str = "pupil";
/// Old identities of the pupil: `pupil-old-1`, `pupil-old-2`, ...
const OLD_PREFIX: &str = "pupil-old-";
/// The purpose of the audited read that keeps the identity being replaced.
pub const OLD_IDENTITY_PURPOSE: &str = "keep the old identity for the leak scan";

/// The corrected real identity, and why. Nothing of it is ever echoed back.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentityCorrection {
    /// The pupil's personal number now (the same one for a name change).
    #[schema(value_type = String)]
    pub personal_number: Zeroizing<String>,
    #[schema(value_type = String)]
    pub first_name: Zeroizing<String>,
    #[schema(value_type = String)]
    pub last_name: Zeroizing<String>,
    /// `YYYY-MM-DD`; must be the birth date the personal number encodes.
    #[schema(value_type = String)]
    pub birth_date: Zeroizing<String>,
    /// Why (kept in the audit trail): no personal number, no control characters.
    pub reason: String,
}

impl std::fmt::Debug for IdentityCorrection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdentityCorrection([redacted])")
    }
}

/// An old identity of a case that the leak scan still looks for. No identity: its
/// number among the case's old identities, and since when it is old.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OldIdentity {
    /// `1`, `2`, ...: what to close.
    pub old_id: u32,
    /// When the correction replaced it.
    pub since: String,
}

/// The correction was made.
#[derive(Debug, Serialize, ToSchema)]
pub struct IdentityCorrected {
    /// The old identity, now looked for by the leak scan until it is closed.
    pub old_identity: OldIdentity,
}

pub(crate) fn old_subject(n: u32) -> String {
    format!("{OLD_PREFIX}{n}")
}

/// The case's old identities, from the vault's subjects.
pub(crate) async fn old_identities_in(
    vault: &Vault,
    conn: &mut sqlx::AnyConnection,
    case: &CaseId,
) -> DomainResult<Vec<OldIdentity>> {
    Ok(vault
        .identity_subjects(conn, case)
        .await?
        .into_iter()
        .filter_map(|(subject, since)| {
            let n = subject.strip_prefix(OLD_PREFIX)?.parse().ok()?;
            Some(OldIdentity { old_id: n, since })
        })
        .collect())
}

/// Correct the pupil's real identity. Permit: `case.correct-identity`. The current
/// identity is read through the audited read first (to keep it as the old identity);
/// a new personal number that another case has is refused like a duplicate, without
/// naming the other case.
pub async fn correct_identity(
    vault: &Vault,
    permit: &Permit,
    case: &CaseId,
    input: IdentityCorrection,
) -> DomainResult<IdentityCorrected> {
    permit.require(Action::CaseCorrectIdentity)?;
    let row = {
        let mut conn = vault.db().pool().acquire().await?;
        cases::load(&mut conn, case).await?
    };
    if row.state == CaseState::Ended || row.identity_shredded_at.is_some() {
        return Err(DomainError::wrong_state());
    }
    let mut problems = Vec::new();
    let reason = match super::correction_reason(&input.reason) {
        Ok(r) => r,
        Err(p) => {
            problems.push(p);
            String::new()
        }
    };
    let identity = parse_real_identity(
        "",
        row.country,
        &input.personal_number,
        &input.first_name,
        &input.last_name,
        &input.birth_date,
        today(vault, row.country),
        &mut problems,
    );
    drop(input);
    let identity = match identity {
        Some(i) if problems.is_empty() => i,
        _ => return Err(DomainError::Invalid(problems)),
    };
    let index = vault
        .keys()
        .blind()
        .index(IndexKind::PersonalNumber, identity.number.canonical());
    {
        // Another case's number: refused as at opening, audited, before anything of
        // this case's identity is read.
        let mut tx = vault.db().begin_write().await?;
        let others: Vec<CaseId> = vault
            .cases_with_index(&mut tx, IndexKind::PersonalNumber, &index)
            .await?
            .into_iter()
            .filter(|c| c != case)
            .collect();
        if let Some(other) = others.first() {
            audit_refused(vault, &mut tx, permit, Some(*other), "duplicate-identity").await?;
            tx.commit().await?;
            return Err(DomainError::conflict(
                "duplicate-identity",
                "This real identity already has a case in Fiktiv. The other case is not \
                 named here.",
            ));
        }
    }
    let old = vault
        .read_identity(
            ReadContext {
                actor: permit.principal_id(),
                action: Action::CaseCorrectIdentity.as_str(),
                purpose: OLD_IDENTITY_PURPOSE,
            },
            case,
            PUPIL,
        )
        .await
        .map_err(cases::shredded)?;
    if old.number.canonical() == identity.number.canonical()
        && old.first_name.expose() == identity.first_name.expose()
        && old.last_name.expose() == identity.last_name.expose()
    {
        return Err(DomainError::conflict(
            "identity-unchanged",
            "The corrected identity is the one already held.",
        ));
    }
    let mut tx = vault.db().begin_write().await?;
    let row = cases::load(&mut tx, case).await?;
    if row.state == CaseState::Ended || row.identity_shredded_at.is_some() {
        return Err(DomainError::wrong_state());
    }
    let next = old_identities_in(vault, &mut tx, case)
        .await?
        .iter()
        .map(|o| o.old_id)
        .max()
        .unwrap_or(0)
        + 1;
    let subject = old_subject(next);
    vault
        .correct_identity(&mut tx, case, PUPIL, &identity, Some((&subject, &old)))
        .await?;
    drop(old);
    let updated = sqlx::query("UPDATE cases SET pnr_index = $1 WHERE case_id = $2")
        .bind(index.to_hex())
        .bind(case.to_string())
        .execute(&mut *tx)
        .await;
    if let Err(e) = updated {
        if super::is_unique_violation(&e) {
            return Err(DomainError::conflict(
                "duplicate-identity",
                "This real identity already has a case in Fiktiv. The other case is not \
                 named here.",
            ));
        }
        return Err(e.into());
    }
    audit_ok(vault, &mut tx, permit, Some(*case), Some(&reason)).await?;
    let since = fiktiv_vault::audit::fmt_time(vault.now());
    tx.commit().await?;
    vault.db().checkpoint().await?;
    Ok(IdentityCorrected {
        old_identity: OldIdentity {
            old_id: next,
            since,
        },
    })
}

/// The case's old identities (metadata only). Permit: `case.read`.
pub async fn old_identities(
    vault: &Vault,
    permit: &Permit,
    case: &CaseId,
) -> DomainResult<Vec<OldIdentity>> {
    permit.require(Action::CaseRead)?;
    let mut conn = vault.db().pool().acquire().await?;
    old_identities_in(vault, &mut conn, case).await
}

/// Stop looking for an old identity: its sealed record and blind indexes are deleted.
/// Permit: `case.close-old-identity`. Audited.
pub async fn close_old_identity(
    vault: &Vault,
    permit: &Permit,
    case: &CaseId,
    old_id: u32,
) -> DomainResult<()> {
    permit.require(Action::CaseCloseOldIdentity)?;
    let mut tx = vault.db().begin_write().await?;
    if !vault
        .forget_subject(&mut tx, case, &old_subject(old_id))
        .await?
    {
        return Err(DomainError::NotFound);
    }
    audit_ok(vault, &mut tx, permit, Some(*case), None).await?;
    tx.commit().await?;
    vault.db().checkpoint().await?;
    Ok(())
}
