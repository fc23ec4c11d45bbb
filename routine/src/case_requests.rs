//! A pupil's protected life goes on: moving to another unit of the municipality, and
//! coming back after the case ended.
//!
//! The receiving unit asks for the case with the pupil's personal number ([`request`]):
//! it knows the pupil is protected (the administration told it so), but Fiktiv does not
//! say where the pupil is now. The personal number is turned into its blind index and
//! dropped; the request names the case, never the number. An open case gives a request
//! to **move**; an ended case whose real identity is still held gives a request to
//! **reopen** (once the identity is shredded the pupil simply gets a new case).
//!
//! The case's unit, or an approver, decides ([`decide`]); nobody decides their own
//! request (Cedar guard `no-self-decided-case-request`, and this module). Nothing of
//! the case changes before it is accepted; a refused or expired request changes nothing.
//! On acceptance, in one transaction:
//! - the case, its plan versions, decisions, reviews and history move to the receiving
//!   unit (they hang off the case, so one `UPDATE` moves them); the sending unit loses
//!   access at once: its label of the case, its unsaved plan drafts and its open reveal
//!   requests for the case are dropped;
//! - the order takes the receiving unit and the groups the request named, and every
//!   fictitious person who is provisioned gets a new revision: the worker writes each
//!   target once, in place (same person id, same account; groups left and joined);
//! - a reopened case gets back the state it reached before it ended, with a new plan
//!   version required before anything is provisioned again (`plan_required_since`).

use chrono::{DateTime, Utc};
use fiktiv_policies::{Action, Country, Permit};
use fiktiv_vault::audit::{check_purpose, fmt_time};
use fiktiv_vault::ids::PersonalNumber;
use fiktiv_vault::{CaseId, IndexKind, Vault};
use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Row};
use utoipa::ToSchema;
use zeroize::Zeroizing;

use super::cases::{self, id_problem, CaseState, CountryCode};
use super::{
    audit_ok, audit_refused, check_labels, check_unit_code, fmt_date, is_unique_violation, today,
    vault_country, DomainError, DomainResult, FieldProblem, Rules,
};

/// A new request id (random, opaque).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaseRequestId(uuid::Uuid);

impl CaseRequestId {
    fn new() -> Self {
        Self(uuid::Uuid::new_v4())
    }
}

impl std::fmt::Display for CaseRequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::str::FromStr for CaseRequestId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        uuid::Uuid::parse_str(s).map(Self)
    }
}

/// What the request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CaseRequestKind {
    /// The pupil moves to the receiving unit: the open case goes with them.
    Move,
    /// The pupil comes back: the ended case is opened again in the receiving unit.
    Reopen,
}

impl CaseRequestKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CaseRequestKind::Move => "move",
            CaseRequestKind::Reopen => "reopen",
        }
    }

    fn parse(s: &str) -> DomainResult<Self> {
        match s {
            "move" => Ok(CaseRequestKind::Move),
            "reopen" => Ok(CaseRequestKind::Reopen),
            _ => Err(DomainError::Internal(
                "stored request kind is malformed".into(),
            )),
        }
    }
}

/// Where a request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CaseRequestState {
    Pending,
    Accepted,
    Refused,
    /// Nobody decided it in time (`[cases] request_valid_days`).
    Expired,
}

impl CaseRequestState {
    pub fn as_str(self) -> &'static str {
        match self {
            CaseRequestState::Pending => "pending",
            CaseRequestState::Accepted => "accepted",
            CaseRequestState::Refused => "refused",
            CaseRequestState::Expired => "expired",
        }
    }
}

/// Ask for a case: the pupil's personal number (to find the case, never stored) and
/// the pupil's groups (class) at the receiving unit.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaseRequestInput {
    pub country: CountryCode,
    /// The pupil's real personal number, in any usual written form.
    #[schema(value_type = String)]
    pub personal_number: Zeroizing<String>,
    /// The pupil's groups (class, teaching groups) at the receiving unit: provisioning
    /// puts the fictitious pupil in these once the request is accepted.
    #[serde(default)]
    pub groups: Vec<String>,
}

impl std::fmt::Debug for CaseRequestInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CaseRequestInput([redacted])")
    }
}

/// Accept or refuse.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaseRequestDecision {
    pub accept: bool,
    /// Why (shown to the requesting unit); no personal number, no control characters.
    #[serde(default)]
    pub reason: Option<String>,
}

/// A request as one viewer may see it. The requesting unit does not learn where the
/// case is (`from_unit` and `decided_by` are `null` for it) nor the case id before it
/// is accepted.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CaseRequestView {
    pub request_id: String,
    pub kind: CaseRequestKind,
    pub state: CaseRequestState,
    /// Shown to the case's unit and to approvers; to the requesting unit once accepted.
    pub case_id: Option<String>,
    /// Shown to the case's unit and to approvers only.
    pub from_unit: Option<String>,
    pub to_unit: String,
    pub groups: Vec<String>,
    pub requested_by: String,
    pub requested_at: String,
    pub expires_at: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    pub decision_reason: Option<String>,
    /// Whether the viewer's unit is the one that decides (the case is there).
    pub to_decide: bool,
}

struct Stored {
    id: String,
    kind: CaseRequestKind,
    state: String,
    case: CaseId,
    from_unit: String,
    to_unit: String,
    groups: Vec<String>,
    requested_by: String,
    requested_at: String,
    expires_at: String,
    decided_by: Option<String>,
    decided_at: Option<String>,
    decision_reason: Option<String>,
}

const COLUMNS: &str = "request_id, kind, case_id, from_unit, to_unit, groups_json, requested_by, \
     requested_at, expires_at, state, decided_by, decided_at, decision_reason";

fn stored(r: &sqlx::any::AnyRow) -> DomainResult<Stored> {
    let groups: String = r.try_get("groups_json")?;
    Ok(Stored {
        id: r.try_get("request_id")?,
        kind: CaseRequestKind::parse(&r.try_get::<String, _>("kind")?)?,
        state: r.try_get("state")?,
        case: cases::parse_case_id(&r.try_get::<String, _>("case_id")?)?,
        from_unit: r.try_get("from_unit")?,
        to_unit: r.try_get("to_unit")?,
        groups: serde_json::from_str(&groups)
            .map_err(|_| DomainError::Internal("stored request groups are malformed".into()))?,
        requested_by: r.try_get("requested_by")?,
        requested_at: r.try_get("requested_at")?,
        expires_at: r.try_get("expires_at")?,
        decided_by: r.try_get("decided_by")?,
        decided_at: r.try_get("decided_at")?,
        decision_reason: r.try_get("decision_reason")?,
    })
}

impl Stored {
    fn state(&self, now: DateTime<Utc>) -> CaseRequestState {
        match self.state.as_str() {
            "accepted" => CaseRequestState::Accepted,
            "refused" => CaseRequestState::Refused,
            "pending" if self.expires_at.as_str() > fmt_time(now).as_str() => {
                CaseRequestState::Pending
            }
            _ => CaseRequestState::Expired,
        }
    }

    /// The view for a viewer who decides (`true`: the case's unit or an approver) or
    /// who asked (`false`).
    fn view(&self, now: DateTime<Utc>, decider: bool) -> CaseRequestView {
        let state = self.state(now);
        CaseRequestView {
            request_id: self.id.clone(),
            kind: self.kind,
            state,
            case_id: (decider || state == CaseRequestState::Accepted)
                .then(|| self.case.to_string()),
            from_unit: decider.then(|| self.from_unit.clone()),
            to_unit: self.to_unit.clone(),
            groups: self.groups.clone(),
            requested_by: self.requested_by.clone(),
            requested_at: self.requested_at.clone(),
            expires_at: self.expires_at.clone(),
            // Who decided would name a person of the unit that has the case: the asking
            // side is not told.
            decided_by: if decider {
                self.decided_by.clone()
            } else {
                None
            },
            decided_at: self.decided_at.clone(),
            decision_reason: self.decision_reason.clone(),
            to_decide: decider && state == CaseRequestState::Pending,
        }
    }
}

async fn load(conn: &mut AnyConnection, id: &CaseRequestId) -> DomainResult<Stored> {
    let sql = format!("SELECT {COLUMNS} FROM case_requests WHERE request_id = $1");
    let r = sqlx::query(&sql)
        .bind(id.to_string())
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(DomainError::NotFound)?;
    stored(&r)
}

/// The case's unit now and who asked: what the handler needs to ask the authorizer
/// (`Resource::CaseRequest`). Not found for unknown ids.
pub async fn lookup(vault: &Vault, id: &CaseRequestId) -> DomainResult<(String, String)> {
    let r = sqlx::query(
        "SELECT c.unit, r.requested_by FROM case_requests r JOIN cases c ON c.case_id = r.case_id \
         WHERE r.request_id = $1",
    )
    .bind(id.to_string())
    .fetch_optional(vault.db().pool())
    .await?
    .ok_or(DomainError::NotFound)?;
    Ok((r.try_get("unit")?, r.try_get("requested_by")?))
}

fn no_case() -> DomainError {
    DomainError::conflict(
        "no-case",
        "No case in Fiktiv has this personal number. Open a new case for the pupil.",
    )
}

/// Ask for a case (move or reopen) for `to_unit`. Permit: `case.request` on that unit.
/// Refusals (no case, already here, a request waiting) are audited with the case they
/// concern, and say nothing of where the case is.
pub async fn request(
    vault: &Vault,
    rules: &Rules,
    permit: &Permit,
    to_unit: &str,
    input: CaseRequestInput,
) -> DomainResult<CaseRequestView> {
    permit.require(Action::CaseRequest)?;
    let mut problems = Vec::new();
    check_unit_code("unit", to_unit, &mut problems);
    let groups: Vec<String> = input.groups.iter().map(|g| g.trim().to_owned()).collect();
    check_labels("groups", &groups, &mut problems);
    let country: Country = input.country.into();
    let number = match PersonalNumber::parse_country(
        vault_country(country),
        &input.personal_number,
        today(vault, country),
    ) {
        Ok(n) => Some(n),
        Err(e) => {
            problems.push(id_problem("personal_number", &e));
            None
        }
    };
    drop(input);
    let number = match number {
        Some(n) if problems.is_empty() => n,
        _ => return Err(DomainError::Invalid(problems)),
    };
    let index = vault
        .keys()
        .blind()
        .index(IndexKind::PersonalNumber, number.canonical());
    drop(number);

    let mut tx = vault.db().begin_write().await?;
    // Each answer says whether a number has a case here: one person may ask only so
    // often (`[cases] requests_per_person_per_day`), counted from the audit trail (every
    // request, answered or refused, is audited) in the same serialized transaction, so
    // that the API and the web UI share it and a restart does not reset it.
    super::lock_limit(vault, &mut tx, super::LIMIT_LOCK_CASE_REQUESTS).await?;
    let since = fmt_time(vault.now() - chrono::TimeDelta::hours(24));
    let asked: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_events WHERE actor = $1 AND action = $2 AND at > $3",
    )
    .bind(permit.principal_id())
    .bind(Action::CaseRequest.as_str())
    .bind(&since)
    .fetch_one(&mut *tx)
    .await?;
    if asked >= i64::from(rules.case_requests_per_day.max(1)) {
        tracing::warn!("case request refused: rate-limited");
        // Audited (an auditor sees who tried many numbers); not counted twice, since
        // the limit is already reached.
        audit_refused(vault, &mut tx, permit, None, "requests-rate-limited").await?;
        tx.commit().await?;
        return Err(DomainError::Busy {
            code: "requests-rate-limited",
            message: "Too many requests for cases from one person today; try again tomorrow \
                      or ask the central administrator.",
        });
    }
    let found = vault
        .cases_with_index(&mut tx, IndexKind::PersonalNumber, &index)
        .await?;
    let Some(case) = found.first().copied() else {
        audit_refused(vault, &mut tx, permit, None, "no-case").await?;
        tx.commit().await?;
        return Err(no_case());
    };
    let row = cases::load(&mut tx, &case).await?;
    let kind = if row.state == CaseState::Ended {
        CaseRequestKind::Reopen
    } else {
        CaseRequestKind::Move
    };
    if row.identity_shredded_at.is_some() {
        // Cannot happen: shredding removes the blind index. Say "no case" all the same.
        audit_refused(vault, &mut tx, permit, Some(case), "no-case").await?;
        tx.commit().await?;
        return Err(no_case());
    }
    if kind == CaseRequestKind::Move && row.unit == to_unit {
        audit_refused(vault, &mut tx, permit, Some(case), "case-already-here").await?;
        tx.commit().await?;
        return Err(DomainError::conflict(
            "case-already-here",
            "This unit already has the pupil's case; find it in the unit's list of cases.",
        ));
    }
    let now = vault.now();
    let now_s = fmt_time(now);
    // A request nobody decided in time no longer blocks a new one.
    sqlx::query(
        "UPDATE case_requests SET state = 'expired' WHERE case_id = $1 AND state = 'pending' \
         AND expires_at <= $2",
    )
    .bind(case.to_string())
    .bind(&now_s)
    .execute(&mut *tx)
    .await?;
    let waiting = sqlx::query(
        "SELECT request_id FROM case_requests WHERE case_id = $1 AND state = 'pending'",
    )
    .bind(case.to_string())
    .fetch_optional(&mut *tx)
    .await?;
    if waiting.is_some() {
        audit_refused(vault, &mut tx, permit, Some(case), "request-pending").await?;
        tx.commit().await?;
        return Err(request_pending());
    }
    let id = CaseRequestId::new();
    let expires = fmt_time(now + rules.case_request_valid);
    let groups_json =
        serde_json::to_string(&groups).map_err(|e| DomainError::Internal(e.to_string()))?;
    let inserted = sqlx::query(
        "INSERT INTO case_requests (request_id, kind, case_id, from_unit, to_unit, groups_json, \
         requested_by, requested_at, expires_at, state) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending')",
    )
    .bind(id.to_string())
    .bind(kind.as_str())
    .bind(case.to_string())
    .bind(&row.unit)
    .bind(to_unit)
    .bind(&groups_json)
    .bind(permit.principal_id())
    .bind(&now_s)
    .bind(&expires)
    .execute(&mut *tx)
    .await;
    match inserted {
        // Two requests at once on PostgreSQL: the unique index holds the line.
        Err(e) if is_unique_violation(&e) => return Err(request_pending()),
        r => {
            r?;
        }
    }
    audit_ok(vault, &mut tx, permit, Some(case), Some(kind.as_str())).await?;
    match tx.commit().await {
        Err(e) if is_unique_violation(&e) => return Err(request_pending()),
        r => r?,
    }
    let s = Stored {
        id: id.to_string(),
        kind,
        state: "pending".into(),
        case,
        from_unit: row.unit,
        to_unit: to_unit.to_owned(),
        groups,
        requested_by: permit.principal_id().to_owned(),
        requested_at: now_s,
        expires_at: expires,
        decided_by: None,
        decided_at: None,
        decision_reason: None,
    };
    Ok(s.view(now, false))
}

fn request_pending() -> DomainError {
    DomainError::conflict(
        "request-pending",
        "A request for this pupil's case is already waiting for a decision.",
    )
}

/// Accept or refuse a pending request. Permit: `case.request-decide` on the request
/// (the case's unit, or an approver; never the person who asked).
pub async fn decide(
    vault: &Vault,
    permit: &Permit,
    id: &CaseRequestId,
    input: CaseRequestDecision,
) -> DomainResult<CaseRequestView> {
    permit.require(Action::CaseRequestDecide)?;
    let reason = input
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_owned);
    if let Some(r) = &reason {
        if let Err(e) = check_purpose(r) {
            return Err(DomainError::Invalid(vec![FieldProblem::new(
                "reason",
                "case-request.reason-invalid",
                match e {
                    fiktiv_vault::audit::AuditError::Invalid { why, .. } => why,
                    _ => "The reason is not valid.",
                },
            )]));
        }
    }
    let mut tx = vault.db().begin_write().await?;
    let s = load(&mut tx, id).await?;
    if s.requested_by == permit.principal_id() {
        // The policies forbid this already; the domain holds the line too.
        return Err(DomainError::NotFound);
    }
    let now = vault.now();
    match s.state(now) {
        CaseRequestState::Pending => {}
        CaseRequestState::Expired => {
            return Err(DomainError::Gone {
                code: "request-expired",
                message: "Nobody decided this request in time. The requesting unit may ask again.",
            })
        }
        _ => {
            return Err(DomainError::conflict(
                "request-decided",
                "This request has already been decided.",
            ))
        }
    }
    let row = cases::load(&mut tx, &s.case).await?;
    let still = row.unit == s.from_unit
        && row.identity_shredded_at.is_none()
        && match s.kind {
            CaseRequestKind::Move => row.state != CaseState::Ended,
            CaseRequestKind::Reopen => row.state == CaseState::Ended,
        };
    if !still {
        return Err(DomainError::conflict(
            "request-stale",
            "The case changed since the request was made (it ended, moved or was reopened). \
             Refuse this request; the requesting unit may ask again.",
        ));
    }
    let now_s = fmt_time(now);
    let new_state = if input.accept { "accepted" } else { "refused" };
    sqlx::query(
        "UPDATE case_requests SET state = $1, decided_by = $2, decided_at = $3, \
         decision_reason = $4 WHERE request_id = $5 AND state = 'pending'",
    )
    .bind(new_state)
    .bind(permit.principal_id())
    .bind(&now_s)
    .bind(reason.clone())
    .bind(&s.id)
    .execute(&mut *tx)
    .await?;
    if input.accept {
        move_case(&mut tx, &row.id, &s.to_unit, &s.groups, &now_s).await?;
        if s.kind == CaseRequestKind::Reopen {
            reopen_case(vault, &mut tx, &row, &now_s).await?;
        }
        // Persons already provisioned get a new revision: one job per target moves
        // them in place (reopened ones wait for the new plan version).
        crate::desired::touch_case(&mut tx, &s.case).await?;
    }
    audit_ok(vault, &mut tx, permit, Some(s.case), Some(new_state)).await?;
    tx.commit().await?;
    let decided = Stored {
        state: new_state.to_owned(),
        decided_by: Some(permit.principal_id().to_owned()),
        decided_at: Some(now_s),
        decision_reason: reason,
        ..s
    };
    Ok(decided.view(now, true))
}

/// The case goes to `to_unit`: the sending unit's own traces of it (its label, its
/// unsaved drafts, its open reveal requests) are dropped, the order names the new unit
/// and groups. Also how a case linked to the SS 12000 hub follows the pupil's
/// enrolment (`hub::follow_unit`).
pub(crate) async fn move_case(
    conn: &mut AnyConnection,
    case: &CaseId,
    to_unit: &str,
    groups: &[String],
    now: &str,
) -> DomainResult<()> {
    let case = case.to_string();
    sqlx::query(
        "UPDATE cases SET unit = $1, label_dk = NULL, label_sealed = NULL WHERE case_id = $2",
    )
    .bind(to_unit)
    .bind(&case)
    .execute(&mut *conn)
    .await?;
    let groups_json =
        serde_json::to_string(groups).map_err(|e| DomainError::Internal(e.to_string()))?;
    sqlx::query("UPDATE orders SET unit = $1, groups_json = $2 WHERE case_id = $3")
        .bind(to_unit)
        .bind(&groups_json)
        .bind(&case)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM plan_drafts WHERE case_id = $1")
        .bind(&case)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "UPDATE reveal_requests SET state = 'refused', decided_by = 'system', decided_at = $1, \
         decision_reason = $2 WHERE case_id = $3 AND state IN ('pending', 'approved')",
    )
    .bind(now)
    .bind("The case moved to another unit.")
    .bind(&case)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// An ended case opens again: the state it had reached, the end and its shred dates
/// cleared, a new plan version required before anything is provisioned. A plan already
/// shredded gets a new data key (its old versions stay unreadable).
async fn reopen_case(
    vault: &Vault,
    conn: &mut AnyConnection,
    row: &cases::CaseRow,
    now: &str,
) -> DomainResult<()> {
    let case = row.id.to_string();
    let ordered: Option<String> = sqlx::query("SELECT order_id FROM orders WHERE case_id = $1")
        .bind(&case)
        .fetch_optional(&mut *conn)
        .await?
        .map(|r| r.try_get("order_id"))
        .transpose()?;
    let state = if row.fict_number.is_some() {
        CaseState::Registered
    } else if ordered.is_some() {
        CaseState::Ordered
    } else {
        CaseState::Open
    };
    let plan_shredded: Option<String> =
        sqlx::query("SELECT plan_shredded_at FROM cases WHERE case_id = $1")
            .bind(&case)
            .fetch_one(&mut *conn)
            .await?
            .try_get("plan_shredded_at")?;
    if plan_shredded.is_some() {
        let key = CaseId::new();
        vault.create_case_key(conn, &key).await?;
        sqlx::query("UPDATE cases SET plan_key = $1, plan_shredded_at = NULL WHERE case_id = $2")
            .bind(key.to_string())
            .bind(&case)
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query(
        "UPDATE cases SET state = $1, ended_on = NULL, end_reason = NULL, ended_by = NULL, \
         left_on = NULL, identity_shred_on = NULL, plan_shred_on = NULL, records_shred_on = NULL, \
         plan_required_since = $2, last_review_on = $3 WHERE case_id = $4",
    )
    .bind(state.as_str())
    .bind(now)
    .bind(fmt_date(today(vault, row.country)))
    .bind(&case)
    .execute(&mut *conn)
    .await?;
    // The end asked for deprovisioning; a later end asks again.
    sqlx::query("DELETE FROM deprovision_requests WHERE case_id = $1")
        .bind(&case)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Requests a unit sees: those for its cases (to decide) and those it made. Permit:
/// `case.request-list` on the unit.
pub async fn list_for_unit(
    vault: &Vault,
    permit: &Permit,
    unit: &str,
) -> DomainResult<Vec<CaseRequestView>> {
    permit.require(Action::CaseRequestList)?;
    let sql = format!(
        "SELECT {COLUMNS}, (SELECT c.unit FROM cases c WHERE c.case_id = case_requests.case_id) \
         AS case_unit FROM case_requests WHERE from_unit = $1 OR to_unit = $1 \
         ORDER BY requested_at DESC LIMIT 200"
    );
    let rows = sqlx::query(&sql)
        .bind(unit)
        .fetch_all(vault.db().pool())
        .await?;
    let now = vault.now();
    let mut out = Vec::new();
    for r in &rows {
        let s = stored(r)?;
        let case_unit: Option<String> = r.try_get("case_unit")?;
        let here = case_unit.as_deref() == Some(unit);
        let v = if s.to_unit == unit && s.from_unit != unit {
            // Asked by this unit: where the case is stays unsaid.
            s.view(now, false)
        } else {
            // The case is (or was) here: this unit decides (or decided) it. Once the
            // case has left, the old unit keeps only the fact, not the case id.
            let mut v = s.view(now, true);
            if !here {
                v.case_id = None;
            }
            v.to_decide = v.to_decide && here && s.requested_by != permit.principal_id();
            v
        };
        out.push(v);
    }
    Ok(out)
}

/// Every pending request in the municipality, for approvers (leaving out their own).
/// Permit: `case.request-list` on the municipality.
pub async fn list_pending(vault: &Vault, permit: &Permit) -> DomainResult<Vec<CaseRequestView>> {
    permit.require(Action::CaseRequestList)?;
    let sql = format!(
        "SELECT {COLUMNS} FROM case_requests WHERE state = 'pending' AND requested_by <> $1 \
         AND expires_at > $2 ORDER BY requested_at LIMIT 200"
    );
    let now = vault.now();
    let rows = sqlx::query(&sql)
        .bind(permit.principal_id())
        .bind(fmt_time(now))
        .fetch_all(vault.db().pool())
        .await?;
    rows.iter()
        .map(|r| Ok(stored(r)?.view(now, true)))
        .collect()
}
