//! The right-of-access answer for one case (seeds 001 and 002: guardians, and the pupil
//! after 18, may ask in writing what is held about the pupil and who has looked at it).
//!
//! One document: what Fiktiv holds (the real identity, the fictitious identity, the
//! decisions, the guardians as linked, the action plan's versions, the reviews), which
//! targets received the fictitious pupil and when, and every read of the real identity
//! in the audit trail (who, when, why). Producing it reads the real identity through the
//! vault's audited read with the action `case.access-report`, so every report is itself
//! listed in the next one. The guardians' own real identities are not in it: a report
//! one guardian asked for must not give them the other's (a protection is often against
//! a parent); each guardian can ask for their own.

use fiktiv_policies::{Action, Permit};
use fiktiv_vault::audit::{self, fmt_time};
use fiktiv_vault::{CaseId, ReadContext, Vault};
use serde::Serialize;
use sqlx::Row;
use utoipa::ToSchema;

use super::cases::{self, CaseView, IdentityView};
use super::guardians::{self, GuardianSummary};
use super::DomainResult;

/// The audit actions that read a real identity (`Vault::read_identity` records one
/// event each, with its purpose). Where the same action also records the write it
/// reads for, the read's purpose tells the two apart.
const IDENTITY_READS: &[(&str, Option<&str>)] = &[
    ("case.read-identity", None),
    ("case.access-report", None),
    ("reveal.read", None),
    ("fictitious-identity.write", None),
    ("keys.reindex", None),
    (
        "case.correct-identity",
        Some(super::corrections::OLD_IDENTITY_PURPOSE),
    ),
    ("case.transfer-out", Some(super::transfer::EXPORT_PURPOSE)),
];

/// The purpose of the report's audited reads of the real identities.
pub const REPORT_PURPOSE: &str = "right of access report";

/// One read of the real identity.
#[derive(Debug, Serialize, ToSchema)]
pub struct IdentityAccess {
    pub at: String,
    /// Who read it (`staff:<name>`, or `cli` for an operator's command).
    pub actor: String,
    pub action: String,
    /// Why, as recorded with the read.
    pub purpose: Option<String>,
    pub outcome: String,
}

/// A target that received the fictitious pupil (or a guardian's fictitious identity).
#[derive(Debug, Serialize, ToSchema)]
pub struct Delivery {
    pub target: String,
    /// `pupil` or `guardian-N`.
    pub subject: String,
    /// The last operation written: `upsert`, `disable` or `delete`.
    pub operation: String,
    pub at: String,
}

/// A review: when, the outcome, who recorded it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewEntry {
    pub reviewed_on: String,
    pub outcome: super::reviews::ReviewOutcome,
    pub recorded_by: String,
}

/// An earlier real identity of the pupil (before a correction), kept while the leak
/// scan still looks for it.
#[derive(Serialize, ToSchema)]
pub struct OldIdentityHeld {
    /// When the correction replaced it.
    pub since: String,
    pub identity: IdentityView,
}

/// The case moved to another unit of the municipality, or was reopened there.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaseMove {
    /// `move` or `reopen`.
    pub kind: String,
    pub from_unit: String,
    pub to_unit: String,
    /// When the request was accepted.
    pub at: String,
}

/// The case went to, or came from, another municipality's Fiktiv.
#[derive(Debug, Serialize, ToSchema)]
pub struct MunicipalityTransfer {
    /// `out` (sent from here) or `in` (imported here).
    pub direction: String,
    pub package_id: String,
    /// The sending municipality, for `in`.
    pub sender: Option<String>,
    pub at: String,
    /// Who made or imported the package.
    pub by: Option<String>,
}

/// The answer to a right-of-access request for one case.
#[derive(Serialize, ToSchema)]
pub struct AccessReport {
    pub produced_at: String,
    pub produced_by: String,
    pub case: CaseView,
    /// `null` once shredded.
    pub identity: Option<IdentityView>,
    /// Earlier real identities still held (after a correction), with when they were
    /// replaced.
    pub old_identities: Vec<OldIdentityHeld>,
    pub guardians: Vec<GuardianSummary>,
    /// Who wrote each version of the plan and when (the text is on the plan's page).
    pub plan_versions: Vec<super::plans::PlanVersionInfo>,
    pub reviews: Vec<ReviewEntry>,
    pub deliveries: Vec<Delivery>,
    /// Moves between the municipality's units, and reopenings.
    pub moves: Vec<CaseMove>,
    /// Transfer packages to or from another municipality.
    pub transfers: Vec<MunicipalityTransfer>,
    /// Every read of the real identity, oldest first (this report's own read last).
    pub accesses: Vec<IdentityAccess>,
}

impl std::fmt::Debug for AccessReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessReport([redacted])")
    }
}

/// Produce the report. Permit: `case.access-report` on the case. The real identity is
/// read through the audited read first; a shredded identity leaves it out.
pub async fn produce(vault: &Vault, permit: &Permit, case: &CaseId) -> DomainResult<AccessReport> {
    permit.require(Action::CaseAccessReport)?;
    let mut conn = vault.db().pool().acquire().await?;
    let row = cases::load(&mut conn, case).await?;
    drop(conn);
    let identity = match vault
        .read_identity(
            ReadContext {
                actor: permit.principal_id(),
                action: Action::CaseAccessReport.as_str(),
                purpose: REPORT_PURPOSE,
            },
            case,
            "pupil",
        )
        .await
    {
        Ok(id) => Some(IdentityView::from_identity(case, row.country, &id)),
        Err(e) => match cases::shredded(e) {
            super::DomainError::Gone { .. } => None,
            e => return Err(e),
        },
    };
    let pool = vault.db().pool();
    let old_identities = old_identities(vault, permit, case, row.country).await?;
    let guardians = guardians::summaries(vault, case).await?;
    let mut conn = pool.acquire().await?;
    let plan_versions = super::plans::history(&mut conn, case).await?;
    drop(conn);
    let reviews = sqlx::query(
        "SELECT reviewed_on, outcome, recorded_by FROM reviews WHERE case_id = $1 ORDER BY seq",
    )
    .bind(case.to_string())
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| {
        Ok(ReviewEntry {
            reviewed_on: r.try_get("reviewed_on")?,
            outcome: super::reviews::parse_outcome(&r.try_get::<String, _>("outcome")?)?,
            recorded_by: r.try_get("recorded_by")?,
        })
    })
    .collect::<DomainResult<Vec<_>>>()?;
    let deliveries = sqlx::query(
        "SELECT j.target, p.subject, j.op, j.updated_at FROM prov_jobs j \
         JOIN prov_persons p ON p.person_id = j.person_id \
         WHERE p.case_id = $1 AND j.state = 'done' ORDER BY p.subject, j.target",
    )
    .bind(case.to_string())
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| {
        Ok(Delivery {
            target: r.try_get("target")?,
            subject: r.try_get("subject")?,
            operation: r.try_get("op")?,
            at: r.try_get("updated_at")?,
        })
    })
    .collect::<Result<Vec<_>, sqlx::Error>>()?;
    let moves = sqlx::query(
        "SELECT kind, from_unit, to_unit, decided_at FROM case_requests \
         WHERE case_id = $1 AND state = 'accepted' ORDER BY decided_at",
    )
    .bind(case.to_string())
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| {
        Ok(CaseMove {
            kind: r.try_get("kind")?,
            from_unit: r.try_get("from_unit")?,
            to_unit: r.try_get("to_unit")?,
            at: r
                .try_get::<Option<String>, _>("decided_at")?
                .unwrap_or_default(),
        })
    })
    .collect::<Result<Vec<_>, sqlx::Error>>()?;
    let transfers = transfers(vault, case).await?;
    let mut accesses: Vec<(i64, IdentityAccess)> = Vec::new();
    for (action, read_purpose) in IDENTITY_READS {
        let events = audit::list(
            pool,
            &audit::Filter {
                case_id: Some(*case),
                action: Some((*action).to_owned()),
                limit: Some(1000),
                ..Default::default()
            },
        )
        .await?;
        accesses.extend(
            events
                .into_iter()
                // A fictitious identity written is audited too: only its read, which
                // has a purpose.
                .filter(|e| e.action != "fictitious-identity.write" || e.purpose.is_some())
                // The read, not the write it was for.
                .filter(|e| read_purpose.is_none_or(|p| e.purpose.as_deref() == Some(p)))
                .map(|e| {
                    (
                        e.seq,
                        IdentityAccess {
                            at: e.at,
                            actor: e.actor,
                            action: e.action,
                            purpose: e.purpose,
                            outcome: e.outcome,
                        },
                    )
                }),
        );
    }
    // In the order of the audit trail (equal times keep their order).
    accesses.sort_by_key(|(seq, _)| *seq);
    let accesses = accesses.into_iter().map(|(_, a)| a).collect();
    Ok(AccessReport {
        produced_at: fmt_time(vault.now()),
        produced_by: permit.principal_id().to_owned(),
        case: row.view(),
        identity,
        old_identities,
        guardians,
        plan_versions,
        reviews,
        deliveries,
        moves,
        transfers,
        accesses,
    })
}

/// The earlier identities, each read through the audited read (so the report lists it).
async fn old_identities(
    vault: &Vault,
    permit: &Permit,
    case: &CaseId,
    country: fiktiv_policies::Country,
) -> DomainResult<Vec<OldIdentityHeld>> {
    let held = {
        let mut conn = vault.db().pool().acquire().await?;
        super::corrections::old_identities_in(vault, &mut conn, case).await?
    };
    let mut out = Vec::new();
    for old in held {
        let id = vault
            .read_identity(
                ReadContext {
                    actor: permit.principal_id(),
                    action: Action::CaseAccessReport.as_str(),
                    purpose: REPORT_PURPOSE,
                },
                case,
                &super::corrections::old_subject(old.old_id),
            )
            .await?;
        out.push(OldIdentityHeld {
            since: old.since,
            identity: IdentityView::from_identity(case, country, &id),
        });
    }
    Ok(out)
}

/// Packages made from this case (from the audit trail: nothing else of them is kept
/// here) and the package it was imported from.
async fn transfers(vault: &Vault, case: &CaseId) -> DomainResult<Vec<MunicipalityTransfer>> {
    let pool = vault.db().pool();
    let mut out: Vec<MunicipalityTransfer> = sqlx::query(
        "SELECT package_id, sender, imported_at FROM transfer_imports WHERE case_id = $1",
    )
    .bind(case.to_string())
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| {
        Ok(MunicipalityTransfer {
            direction: "in".into(),
            package_id: r.try_get("package_id")?,
            sender: Some(r.try_get("sender")?),
            at: r.try_get("imported_at")?,
            by: None,
        })
    })
    .collect::<Result<Vec<_>, sqlx::Error>>()?;
    let sent = audit::list(
        pool,
        &audit::Filter {
            case_id: Some(*case),
            action: Some(Action::CaseTransferOut.as_str().to_owned()),
            limit: Some(100),
            ..Default::default()
        },
    )
    .await?;
    out.extend(sent.into_iter().filter_map(|e| {
        // The package made (its id after the prefix), not the read for it.
        let id = e
            .purpose
            .as_deref()?
            .strip_prefix(super::transfer::PACKAGE_PURPOSE_PREFIX)
            .filter(|id| uuid::Uuid::parse_str(id).is_ok())?
            .to_owned();
        (e.outcome == "ok").then_some(MunicipalityTransfer {
            direction: "out".into(),
            package_id: id,
            sender: None,
            at: e.at,
            by: Some(e.actor),
        })
    }));
    Ok(out)
}
