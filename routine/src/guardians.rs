//! Step 5: guardian links. Per guardian: linked with a fictitious guardian identity of
//! their own (checked like the pupil's, against the guardian's real identity, which is
//! sealed in the vault with its blind indexes), or not linked.

use fiktiv_policies::{Action, Permit};
use fiktiv_vault::audit::fmt_time;
use fiktiv_vault::{CaseId, Vault};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::ToSchema;
use zeroize::Zeroizing;

use super::cases::{self, parse_real_identity, CaseState};
use super::fictitious::{
    check_against_real, check_refused_names, matches_a_real_identity, refuse_real_identity,
    FictitiousInput,
};
use super::{audit_ok, fmt_date, today, DomainError, DomainResult, FieldProblem, Rules};

/// The most guardians a case records.
pub const MAX_GUARDIANS: i64 = 4;

/// A guardian's real identity (sealed, never echoed).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GuardianReal {
    #[schema(value_type = String)]
    pub personal_number: Zeroizing<String>,
    #[schema(value_type = String)]
    pub first_name: Zeroizing<String>,
    #[schema(value_type = String)]
    pub last_name: Zeroizing<String>,
    #[schema(value_type = String)]
    pub birth_date: Zeroizing<String>,
}

impl std::fmt::Debug for GuardianReal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GuardianReal([redacted])")
    }
}

/// Record one guardian.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GuardianInput {
    /// Whether the guardian is linked to the pupil in the platforms.
    pub linked: bool,
    /// Required when linked: the guardian's real identity, to check the fictitious one.
    pub real: Option<GuardianReal>,
    /// Required when linked: the guardian's fictitious identity.
    pub fictitious: Option<FictitiousInput>,
}

/// What was recorded.
#[derive(Debug, Serialize, ToSchema)]
pub struct GuardianRecorded {
    pub guardian_no: i64,
    pub linked: bool,
    pub fictitious: Option<FictitiousInput>,
}

pub(crate) fn subject(n: i64) -> String {
    format!("guardian-{n}")
}

/// Record guardian `n` (1..=4). Permit: `guardian.write`. Before the order; after it
/// (a registered case), only a guardian who has no accounts yet: a new guardian, whose
/// fictitious number the central administrator then registers ([`register`]).
pub async fn write(
    vault: &Vault,
    rules: &Rules,
    permit: &Permit,
    case: &CaseId,
    n: i64,
    input: GuardianInput,
) -> DomainResult<GuardianRecorded> {
    permit.require(Action::GuardianWrite)?;
    if !(1..=MAX_GUARDIANS).contains(&n) {
        return Err(DomainError::NotFound);
    }
    let row = {
        let mut conn = vault.db().pool().acquire().await?;
        cases::load(&mut conn, case).await?
    };
    if !matches!(row.state, CaseState::Open | CaseState::Registered) {
        return Err(DomainError::wrong_state());
    }
    let today = today(vault, row.country);
    if input.linked {
        let mut conn = vault.db().pool().acquire().await?;
        check_refused_names(vault, &mut conn, permit).await?;
    }
    let mut problems = Vec::new();
    let linked = match (input.linked, &input.real, &input.fictitious) {
        (false, None, None) => None,
        (false, _, _) => {
            return Err(DomainError::invalid(
                "linked",
                "guardian.not-linked-has-identity",
                "A guardian who is not linked has no identities recorded.",
            ))
        }
        (true, Some(real), Some(fict)) => {
            let identity = parse_real_identity(
                "real.",
                row.country,
                &real.personal_number,
                &real.first_name,
                &real.last_name,
                &real.birth_date,
                today,
                &mut problems,
            );
            let birth = identity.as_ref().and_then(|id| {
                check_against_real(
                    rules,
                    row.country,
                    id,
                    fict,
                    today,
                    "fictitious.",
                    &mut problems,
                )
            });
            match (identity, birth) {
                (Some(id), Some(b)) if problems.is_empty() => Some((id, fict.clone(), b)),
                _ => return Err(DomainError::Invalid(problems)),
            }
        }
        (true, _, _) => {
            return Err(DomainError::Invalid(vec![FieldProblem::new(
                "linked",
                "guardian.linked-needs-identities",
                "A linked guardian needs both the real and the fictitious identity.",
            )]))
        }
    };
    drop(input);

    let mut tx = vault.db().begin_write().await?;
    let row = cases::load(&mut tx, case).await?;
    if !matches!(row.state, CaseState::Open | CaseState::Registered) {
        return Err(DomainError::wrong_state());
    }
    if row.state == CaseState::Registered && has_number(&mut tx, case, n).await? {
        return Err(DomainError::conflict(
            "guardian-registered",
            "This guardian has accounts already. If they are no longer a guardian, remove \
             them first; a new guardian then gets accounts of their own.",
        ));
    }
    if let Some((_, fict, birth)) = &linked {
        if matches_a_real_identity(
            vault,
            &mut tx,
            fict.first_name.trim(),
            fict.last_name.trim(),
            *birth,
        )
        .await?
        {
            drop(tx);
            return Err(refuse_real_identity(vault, permit, case, "fictitious.").await?);
        }
    }
    if let Some((identity, _, _)) = &linked {
        vault
            .store_identity(&mut tx, case, &subject(n), identity)
            .await?;
    }
    sqlx::query("DELETE FROM guardians WHERE case_id = $1 AND guardian_no = $2")
        .bind(case.to_string())
        .bind(n)
        .execute(&mut *tx)
        .await?;
    let fict = linked.as_ref().map(|(_, f, b)| {
        (
            f.first_name.trim().to_owned(),
            f.last_name.trim().to_owned(),
            fmt_date(*b),
        )
    });
    sqlx::query(
        "INSERT INTO guardians (case_id, guardian_no, linked, fict_first, fict_last, fict_birth, \
         recorded_by, recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(case.to_string())
    .bind(n)
    .bind(i64::from(linked.is_some()))
    .bind(fict.as_ref().map(|f| f.0.clone()))
    .bind(fict.as_ref().map(|f| f.1.clone()))
    .bind(fict.as_ref().map(|f| f.2.clone()))
    .bind(permit.principal_id())
    .bind(fmt_time(vault.now()))
    .execute(&mut *tx)
    .await?;
    audit_ok(vault, &mut tx, permit, Some(*case), None).await?;
    tx.commit().await?;
    Ok(GuardianRecorded {
        guardian_no: n,
        linked: fict.is_some(),
        fictitious: fict.map(|(first_name, last_name, birth_date)| FictitiousInput {
            first_name,
            last_name,
            birth_date,
        }),
    })
}

/// A linked guardian's fictitious identity, as carried by the order.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GuardianFictitious {
    pub guardian_no: i64,
    pub first_name: String,
    pub last_name: String,
    pub birth_date: String,
    /// Set at registration.
    pub number: Option<String>,
}

/// The linked guardians of a case, with their fictitious identities.
pub(crate) async fn linked(
    conn: &mut sqlx::AnyConnection,
    case: &CaseId,
) -> DomainResult<Vec<GuardianFictitious>> {
    let rows = sqlx::query(
        "SELECT guardian_no, fict_first, fict_last, fict_birth, fict_number FROM guardians \
         WHERE case_id = $1 AND linked = 1 ORDER BY guardian_no",
    )
    .bind(case.to_string())
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(GuardianFictitious {
                guardian_no: r.try_get("guardian_no")?,
                first_name: r
                    .try_get::<Option<String>, _>("fict_first")?
                    .unwrap_or_default(),
                last_name: r
                    .try_get::<Option<String>, _>("fict_last")?
                    .unwrap_or_default(),
                birth_date: r
                    .try_get::<Option<String>, _>("fict_birth")?
                    .unwrap_or_default(),
                number: r.try_get("fict_number")?,
            })
        })
        .collect()
}

/// A recorded guardian as the case page shows it: linked or not, and a linked
/// guardian's fictitious identity (never the real one).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GuardianSummary {
    pub guardian_no: i64,
    pub linked: bool,
    pub fictitious: Option<GuardianFictitious>,
    pub recorded_by: String,
    pub recorded_at: String,
}

/// Every recorded guardian of a case, by number. Permit: `case.read` (fictitious data
/// and metadata only).
pub async fn list(
    vault: &Vault,
    permit: &Permit,
    case: &CaseId,
) -> DomainResult<Vec<GuardianSummary>> {
    permit.require(Action::CaseRead)?;
    summaries(vault, case).await
}

/// [`list`] without its permit, for a caller that holds a stronger one (the access
/// report).
pub(crate) async fn summaries(vault: &Vault, case: &CaseId) -> DomainResult<Vec<GuardianSummary>> {
    let mut conn = vault.db().pool().acquire().await?;
    cases::load(&mut conn, case).await?;
    let rows = sqlx::query(
        "SELECT guardian_no, linked, fict_first, fict_last, fict_birth, fict_number, \
         recorded_by, recorded_at FROM guardians WHERE case_id = $1 ORDER BY guardian_no",
    )
    .bind(case.to_string())
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            let guardian_no: i64 = r.try_get("guardian_no")?;
            let linked = r.try_get::<i64, _>("linked")? != 0;
            let first: Option<String> = r.try_get("fict_first")?;
            let fictitious = match (linked, first) {
                (true, Some(first_name)) => Some(GuardianFictitious {
                    guardian_no,
                    first_name,
                    last_name: r
                        .try_get::<Option<String>, _>("fict_last")?
                        .unwrap_or_default(),
                    birth_date: r
                        .try_get::<Option<String>, _>("fict_birth")?
                        .unwrap_or_default(),
                    number: r.try_get("fict_number")?,
                }),
                _ => None,
            };
            Ok(GuardianSummary {
                guardian_no,
                linked,
                fictitious,
                recorded_by: r.try_get("recorded_by")?,
                recorded_at: r.try_get("recorded_at")?,
            })
        })
        .collect()
}

/// Why a guardian is no longer the pupil's guardian.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GuardianRemoval {
    /// Why (kept in the audit trail): no personal number.
    pub reason: String,
}

/// The subject a removed guardian's provisioned person takes: never `guardian-N` again,
/// so that a new guardian N gets an account of their own, never the removed one's.
fn former_subject(n: i64) -> String {
    let tag = uuid::Uuid::new_v4().simple().to_string();
    format!("former-guardian-{n}-{}", &tag[..8])
}

/// A guardian is no longer the pupil's guardian after the order (custody changed):
/// the guardian's record and real identity go at once (sealed record and blind indexes
/// deleted), and the guardian's accounts are disabled in every target now and deleted
/// after the grace period, like an ended case's. The pupil's accounts are rewritten in
/// place, so that no roster still relates the pupil to them. A new guardian with the
/// same number later is a new person with new accounts. Permit: `guardian.write`.
/// Registered cases only (before the order, record the guardian as not linked).
pub async fn remove(
    vault: &Vault,
    permit: &Permit,
    case: &CaseId,
    n: i64,
    input: GuardianRemoval,
) -> DomainResult<()> {
    permit.require(Action::GuardianWrite)?;
    if !(1..=MAX_GUARDIANS).contains(&n) {
        return Err(DomainError::NotFound);
    }
    let reason =
        super::correction_reason(&input.reason).map_err(|p| DomainError::Invalid(vec![p]))?;
    let mut tx = vault.db().begin_write().await?;
    let row = cases::load(&mut tx, case).await?;
    if row.state != CaseState::Registered {
        return Err(DomainError::wrong_state());
    }
    let deleted = sqlx::query("DELETE FROM guardians WHERE case_id = $1 AND guardian_no = $2")
        .bind(case.to_string())
        .bind(n)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if deleted == 0 {
        return Err(DomainError::NotFound);
    }
    vault.forget_subject(&mut tx, case, &subject(n)).await?;
    let now = fmt_time(vault.now());
    sqlx::query(
        "UPDATE prov_persons SET subject = $1, \
         desired = CASE WHEN desired = 'present' THEN 'disabled' ELSE desired END, \
         desired_since = CASE WHEN desired = 'present' THEN $2 ELSE desired_since END, \
         revision = revision + 1 WHERE case_id = $3 AND subject = $4",
    )
    .bind(former_subject(n))
    .bind(&now)
    .bind(case.to_string())
    .bind(subject(n))
    .execute(&mut *tx)
    .await?;
    crate::desired::touch_case(&mut tx, case).await?;
    audit_ok(vault, &mut tx, permit, Some(*case), Some(&reason)).await?;
    tx.commit().await?;
    vault.db().checkpoint().await?;
    Ok(())
}

/// Whether guardian `n` of the case has a fictitious number (and so accounts).
async fn has_number(conn: &mut sqlx::AnyConnection, case: &CaseId, n: i64) -> DomainResult<bool> {
    Ok(sqlx::query_scalar::<_, Option<String>>(
        "SELECT fict_number FROM guardians WHERE case_id = $1 AND guardian_no = $2",
    )
    .bind(case.to_string())
    .bind(n)
    .fetch_optional(&mut *conn)
    .await?
    .flatten()
    .is_some())
}

/// A guardian recorded after the order, waiting for the central administrator to
/// register a fictitious number (fictitious data only).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GuardianWaiting {
    pub case_id: String,
    pub unit: String,
    pub guardian_no: i64,
    pub first_name: String,
    pub last_name: String,
    pub birth_date: String,
    pub recorded_by: String,
    pub recorded_at: String,
}

/// The new guardians of registered cases waiting for a number, oldest first. Permit:
/// `order-queue.read`.
pub async fn waiting(vault: &Vault, permit: &Permit) -> DomainResult<Vec<GuardianWaiting>> {
    permit.require(Action::OrderQueueRead)?;
    let rows = sqlx::query(
        "SELECT g.case_id, c.unit, g.guardian_no, g.fict_first, g.fict_last, g.fict_birth, \
         g.recorded_by, g.recorded_at FROM guardians g JOIN cases c ON c.case_id = g.case_id \
         WHERE c.state = 'registered' AND g.linked = 1 AND g.fict_number IS NULL \
         ORDER BY g.recorded_at LIMIT 500",
    )
    .fetch_all(vault.db().pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(GuardianWaiting {
                case_id: r.try_get("case_id")?,
                unit: r.try_get("unit")?,
                guardian_no: r.try_get("guardian_no")?,
                first_name: r
                    .try_get::<Option<String>, _>("fict_first")?
                    .unwrap_or_default(),
                last_name: r
                    .try_get::<Option<String>, _>("fict_last")?
                    .unwrap_or_default(),
                birth_date: r
                    .try_get::<Option<String>, _>("fict_birth")?
                    .unwrap_or_default(),
                recorded_by: r.try_get("recorded_by")?,
                recorded_at: r.try_get("recorded_at")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

/// Register a new guardian of a registered case: Fiktiv picks a fictitious number for
/// the guardian's fictitious birth date, and provisioning creates the guardian's
/// accounts (a new person, never a removed guardian's) and relates the pupil to them.
/// Permit: `order.register` on the case. One transaction.
pub async fn register(
    vault: &Vault,
    rules: &Rules,
    permit: &Permit,
    case: &CaseId,
    n: i64,
) -> DomainResult<GuardianFictitious> {
    permit.require(Action::OrderRegister)?;
    if !(1..=MAX_GUARDIANS).contains(&n) {
        return Err(DomainError::NotFound);
    }
    let mut tx = vault.db().begin_write().await?;
    let row = cases::load(&mut tx, case).await?;
    if row.state != CaseState::Registered {
        return Err(DomainError::wrong_state());
    }
    let mut g = linked(&mut tx, case)
        .await?
        .into_iter()
        .find(|g| g.guardian_no == n)
        .ok_or(DomainError::NotFound)?;
    if g.number.is_some() {
        return Err(DomainError::conflict(
            "guardian-registered",
            "This guardian has been registered already.",
        ));
    }
    let birth = super::parse_date(&g.birth_date)?;
    let number =
        super::registration::pick(vault, &mut tx, &rules.numbers, row.country, birth, &[]).await?;
    super::registration::reserve(vault, &mut tx, &number, case, &subject(n)).await?;
    sqlx::query("UPDATE guardians SET fict_number = $1 WHERE case_id = $2 AND guardian_no = $3")
        .bind(&number)
        .bind(case.to_string())
        .bind(n)
        .execute(&mut *tx)
        .await?;
    // The new guardian's person first, then a new revision of every present person, so
    // that the pupil's roster row relates the new guardian.
    crate::desired::sync_case(vault, &mut tx, case).await?;
    crate::desired::touch_case(&mut tx, case).await?;
    audit_ok(
        vault,
        &mut tx,
        permit,
        Some(*case),
        Some("guardian registered"),
    )
    .await?;
    match tx.commit().await {
        Err(e) if super::is_unique_violation(&e) => {
            return Err(DomainError::conflict(
                "number-unavailable",
                "That number cannot be given out. Try again.",
            ))
        }
        r => r?,
    }
    g.number = Some(number);
    Ok(g)
}
