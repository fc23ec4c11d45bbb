//! Changing a registered pupil's fictitious identity: a wrong fictitious name, or a
//! fictitious birth date to correct.
//!
//! The school asks, like an order ([`request`]): the new fictitious identity is checked
//! exactly as the first decision was (the identity policy against the real identity, an
//! audited read, and every real identity in the vault). The central administrator, who
//! sees only fictitious identities, registers it ([`register`]): the case's fictitious
//! columns take the new identity; a new birth date gets a new fictitious number picked
//! by Fiktiv (the old one stays reserved and is never given out again). Every
//! provisioned person of the case gets a new revision, so that the worker rewrites each
//! account in place: the same person id, the same account, no second one.
//!
//! A linked guardian's fictitious identity is changed the same way
//! ([`request_guardian`]): checked against that guardian's real identity, registered
//! into the guardian's record, the guardian's accounts rewritten in place.

use chrono::DateTime;
use fiktiv_policies::{Action, Permit};
use fiktiv_vault::audit::fmt_time;
use fiktiv_vault::{CaseId, Vault};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::ToSchema;

use super::cases::{self, CaseState};
use super::fictitious::{self, FictitiousInput};
use super::{
    audit_ok, fmt_date, is_unique_violation, parse_date, DomainError, DomainResult, Rules,
};

/// The fictitious identity the pupil should have, and why.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FictitiousChangeInput {
    pub first_name: String,
    pub last_name: String,
    /// `YYYY-MM-DD`.
    pub birth_date: String,
    /// Why (kept with the change and in the audit trail): no personal number.
    pub reason: String,
}

/// A change, as the school and the central administrator see it (fictitious only).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FictitiousChange {
    pub change_id: String,
    pub case_id: String,
    pub unit: String,
    /// Whose fictitious identity: `pupil`, or `guardian-N`.
    pub subject: String,
    pub first_name: String,
    pub last_name: String,
    pub birth_date: String,
    pub reason: String,
    pub requested_by: String,
    pub requested_at: String,
    /// Whole hours since it was asked for.
    pub waiting_hours: i64,
    /// `pending` or `registered`.
    pub state: String,
    /// The fictitious number after registration (a new one when the birth date changed).
    pub number: Option<String>,
}

const COLUMNS: &str = "f.change_id, f.case_id, c.unit, f.subject, f.fict_first, f.fict_last, \
     f.fict_birth, f.reason, f.requested_by, f.requested_at, f.state, f.number";

fn view(r: &sqlx::any::AnyRow, now: DateTime<chrono::Utc>) -> DomainResult<FictitiousChange> {
    let at: String = r.try_get("requested_at")?;
    let waiting = DateTime::parse_from_rfc3339(&at)
        .map(|t| (now - t.with_timezone(&chrono::Utc)).num_hours().max(0))
        .unwrap_or(0);
    Ok(FictitiousChange {
        change_id: r.try_get("change_id")?,
        case_id: r.try_get("case_id")?,
        unit: r.try_get("unit")?,
        subject: r.try_get("subject")?,
        first_name: r.try_get("fict_first")?,
        last_name: r.try_get("fict_last")?,
        birth_date: r.try_get("fict_birth")?,
        reason: r.try_get("reason")?,
        requested_by: r.try_get("requested_by")?,
        requested_at: at,
        waiting_hours: waiting,
        state: r.try_get("state")?,
        number: r.try_get("number")?,
    })
}

/// Ask for a change of the fictitious identity of a registered case. Permit:
/// `fictitious-identity.write` (the school's decision, checked as the first one was).
pub async fn request(
    vault: &Vault,
    rules: &Rules,
    permit: &Permit,
    case: &CaseId,
    input: FictitiousChangeInput,
) -> DomainResult<FictitiousChange> {
    permit.require(Action::FictitiousIdentityWrite)?;
    let row = {
        let mut conn = vault.db().pool().acquire().await?;
        cases::load(&mut conn, case).await?
    };
    if row.state != CaseState::Registered {
        return Err(DomainError::wrong_state());
    }
    let held = (
        row.fict_first.clone().unwrap_or_default(),
        row.fict_last.clone().unwrap_or_default(),
        row.fict_birth.clone().unwrap_or_default(),
    );
    ask(vault, rules, permit, case, &row, PUPIL, held, input).await
}

const PUPIL: &str = "pupil";

/// Ask for a change of the fictitious identity of linked guardian `n` of a registered
/// case (a guardian with accounts). Permit: `guardian.write`.
pub async fn request_guardian(
    vault: &Vault,
    rules: &Rules,
    permit: &Permit,
    case: &CaseId,
    n: i64,
    input: FictitiousChangeInput,
) -> DomainResult<FictitiousChange> {
    permit.require(Action::GuardianWrite)?;
    let mut conn = vault.db().pool().acquire().await?;
    let row = cases::load(&mut conn, case).await?;
    if row.state != CaseState::Registered {
        return Err(DomainError::wrong_state());
    }
    let g = super::guardians::linked(&mut conn, case)
        .await?
        .into_iter()
        .find(|g| g.guardian_no == n && g.number.is_some())
        .ok_or(DomainError::NotFound)?;
    drop(conn);
    let held = (g.first_name, g.last_name, g.birth_date);
    let subject = super::guardians::subject(n);
    ask(vault, rules, permit, case, &row, &subject, held, input).await
}

/// The change for `subject`, checked against its real identity, stored as pending.
#[allow(clippy::too_many_arguments)] // one call per subject kind, all of it needed
async fn ask(
    vault: &Vault,
    rules: &Rules,
    permit: &Permit,
    case: &CaseId,
    row: &cases::CaseRow,
    subject: &str,
    held: (String, String, String),
    input: FictitiousChangeInput,
) -> DomainResult<FictitiousChange> {
    let reason =
        super::correction_reason(&input.reason).map_err(|p| DomainError::Invalid(vec![p]))?;
    let proposed = FictitiousInput {
        first_name: input.first_name,
        last_name: input.last_name,
        birth_date: input.birth_date,
    };
    let (first, last, birth) =
        fictitious::checked(vault, rules, permit, case, row, subject, &proposed).await?;
    if held.0 == first && held.1 == last && held.2 == fmt_date(birth) {
        return Err(DomainError::conflict(
            "fictitious-unchanged",
            "This is the fictitious identity the pupil already has.",
        ));
    }
    let mut tx = vault.db().begin_write().await?;
    if fictitious::matches_a_real_identity(vault, &mut tx, &first, &last, birth).await? {
        drop(tx);
        return Err(fictitious::refuse_real_identity(vault, permit, case, "").await?);
    }
    let id = uuid::Uuid::new_v4().to_string();
    let now = vault.now();
    let inserted = sqlx::query(
        "INSERT INTO fict_changes (change_id, case_id, subject, fict_first, fict_last, fict_birth, \
         reason, requested_by, requested_at, state) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending')",
    )
    .bind(&id)
    .bind(case.to_string())
    .bind(subject)
    .bind(&first)
    .bind(&last)
    .bind(fmt_date(birth))
    .bind(&reason)
    .bind(permit.principal_id())
    .bind(fmt_time(now))
    .execute(&mut *tx)
    .await;
    match inserted {
        Err(e) if is_unique_violation(&e) => return Err(change_pending()),
        r => {
            r?;
        }
    }
    audit_ok(
        vault,
        &mut tx,
        permit,
        Some(*case),
        Some("fictitious change asked"),
    )
    .await?;
    match tx.commit().await {
        Err(e) if is_unique_violation(&e) => return Err(change_pending()),
        r => r?,
    }
    Ok(FictitiousChange {
        change_id: id,
        case_id: case.to_string(),
        unit: row.unit.clone(),
        subject: subject.to_owned(),
        first_name: first,
        last_name: last,
        birth_date: fmt_date(birth),
        reason,
        requested_by: permit.principal_id().to_owned(),
        requested_at: fmt_time(now),
        waiting_hours: 0,
        state: "pending".into(),
        number: None,
    })
}

fn change_pending() -> DomainError {
    DomainError::conflict(
        "change-pending",
        "A change of a fictitious identity of this case is already waiting for registration.",
    )
}

/// The changes waiting for registration, oldest first. Permit: `order-queue.read`.
pub async fn queue(vault: &Vault, permit: &Permit) -> DomainResult<Vec<FictitiousChange>> {
    permit.require(Action::OrderQueueRead)?;
    let sql = format!(
        "SELECT {COLUMNS} FROM fict_changes f JOIN cases c ON c.case_id = f.case_id \
         WHERE f.state = 'pending' ORDER BY f.requested_at LIMIT 500"
    );
    let rows = sqlx::query(&sql).fetch_all(vault.db().pool()).await?;
    let now = vault.now();
    rows.iter().map(|r| view(r, now)).collect()
}

/// The case a change belongs to, with its unit: what the handler needs for the permit.
pub async fn case_of(vault: &Vault, change: &str) -> DomainResult<(CaseId, String)> {
    if uuid::Uuid::parse_str(change).is_err() {
        return Err(DomainError::NotFound);
    }
    let r = sqlx::query(
        "SELECT f.case_id, c.unit FROM fict_changes f JOIN cases c ON c.case_id = f.case_id \
         WHERE f.change_id = $1",
    )
    .bind(change)
    .fetch_optional(vault.db().pool())
    .await?
    .ok_or(DomainError::NotFound)?;
    Ok((
        cases::parse_case_id(&r.try_get::<String, _>("case_id")?)?,
        r.try_get("unit")?,
    ))
}

/// Register a change. Permit: `order.register` on the case. One transaction: the new
/// fictitious identity (and number, for a new birth date), and a new revision of every
/// provisioned person of the case so that the accounts are rewritten in place.
pub async fn register(
    vault: &Vault,
    rules: &Rules,
    permit: &Permit,
    change: &str,
) -> DomainResult<FictitiousChange> {
    permit.require(Action::OrderRegister)?;
    let mut tx = vault.db().begin_write().await?;
    let sql = format!(
        "SELECT {COLUMNS} FROM fict_changes f JOIN cases c ON c.case_id = f.case_id \
         WHERE f.change_id = $1"
    );
    let r = sqlx::query(&sql)
        .bind(change)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(DomainError::NotFound)?;
    let mut v = view(&r, vault.now())?;
    if v.state != "pending" {
        return Err(DomainError::conflict(
            "change-registered",
            "This change has already been registered.",
        ));
    }
    let case = cases::parse_case_id(&v.case_id)?;
    let row = cases::load(&mut tx, &case).await?;
    if row.state != CaseState::Registered {
        return Err(DomainError::wrong_state());
    }
    let birth = parse_date(&v.birth_date)?;
    // The identity held now: the pupil's, or the guardian's (who must still have one).
    let guardian = match v.subject.strip_prefix("guardian-") {
        None => None,
        Some(n) => {
            let n: i64 = n
                .parse()
                .map_err(|_| DomainError::Internal("stored subject is malformed".into()))?;
            let g = super::guardians::linked(&mut tx, &case)
                .await?
                .into_iter()
                .find(|g| g.guardian_no == n && g.number.is_some())
                .ok_or_else(|| {
                    DomainError::conflict(
                        "request-stale",
                        "The guardian of this change is no longer recorded.",
                    )
                })?;
            Some((n, g))
        }
    };
    let (held_birth, held_number) = match &guardian {
        None => (row.fict_birth.clone(), row.fict_number.clone()),
        Some((_, g)) => (Some(g.birth_date.clone()), g.number.clone()),
    };
    let number = if held_birth.as_deref() == Some(v.birth_date.as_str()) {
        held_number.unwrap_or_default()
    } else {
        let n = super::registration::pick(vault, &mut tx, &rules.numbers, row.country, birth, &[])
            .await?;
        super::registration::reserve(vault, &mut tx, &n, &case, &v.subject).await?;
        n
    };
    let now = fmt_time(vault.now());
    match &guardian {
        None => {
            sqlx::query(
                "UPDATE cases SET fict_first = $1, fict_last = $2, fict_birth = $3, \
                 fict_number = $4 WHERE case_id = $5",
            )
            .bind(&v.first_name)
            .bind(&v.last_name)
            .bind(&v.birth_date)
            .bind(&number)
            .bind(case.to_string())
            .execute(&mut *tx)
            .await?;
        }
        Some((n, _)) => {
            sqlx::query(
                "UPDATE guardians SET fict_first = $1, fict_last = $2, fict_birth = $3, \
                 fict_number = $4 WHERE case_id = $5 AND guardian_no = $6",
            )
            .bind(&v.first_name)
            .bind(&v.last_name)
            .bind(&v.birth_date)
            .bind(&number)
            .bind(case.to_string())
            .bind(n)
            .execute(&mut *tx)
            .await?;
        }
    }
    sqlx::query(
        "UPDATE fict_changes SET state = 'registered', registered_by = $1, registered_at = $2, \
         number = $3 WHERE change_id = $4 AND state = 'pending'",
    )
    .bind(permit.principal_id())
    .bind(&now)
    .bind(&number)
    .bind(change)
    .execute(&mut *tx)
    .await?;
    crate::desired::touch_case(&mut tx, &case).await?;
    audit_ok(
        vault,
        &mut tx,
        permit,
        Some(case),
        Some("fictitious change registered"),
    )
    .await?;
    match tx.commit().await {
        Err(e) if is_unique_violation(&e) => {
            return Err(DomainError::conflict(
                "number-unavailable",
                "That number cannot be given out. Try again.",
            ))
        }
        r => r?,
    }
    v.state = "registered".into();
    v.number = Some(number);
    Ok(v)
}
