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
/// event each, with its purpose).
const IDENTITY_READS: &[&str] = &[
    "case.read-identity",
    "case.access-report",
    "reveal.read",
    "fictitious-identity.write",
    "keys.reindex",
];

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

/// The answer to a right-of-access request for one case.
#[derive(Serialize, ToSchema)]
pub struct AccessReport {
    pub produced_at: String,
    pub produced_by: String,
    pub case: CaseView,
    /// `null` once shredded.
    pub identity: Option<IdentityView>,
    pub guardians: Vec<GuardianSummary>,
    /// Who wrote each version of the plan and when (the text is on the plan's page).
    pub plan_versions: Vec<super::plans::PlanVersionInfo>,
    pub reviews: Vec<ReviewEntry>,
    pub deliveries: Vec<Delivery>,
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
                purpose: "right of access report",
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
    let mut accesses: Vec<(i64, IdentityAccess)> = Vec::new();
    for action in IDENTITY_READS {
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
        guardians,
        plan_versions,
        reviews,
        deliveries,
        accesses,
    })
}
