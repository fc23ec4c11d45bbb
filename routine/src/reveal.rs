//! Step 10: reveal, with four eyes. Anyone entitled asks to see the real identity
//! behind a fictitious one, stating a purpose; a different person with the approver
//! role decides; an approved reveal is readable once, within a time limit: it waits
//! `[reveal] open_within_hours` for the requester (who is notified), and once they
//! open it the read window of `[reveal] ttl_minutes` starts. Requests,
//! approvals, refusals and reads (also refused reads) are audited.

use fiktiv_policies::{Action, Permit};
use fiktiv_vault::audit::{check_purpose, fmt_time, NewEvent, Outcome};
use fiktiv_vault::{CaseId, ReadContext, Vault};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::ToSchema;

use super::cases::{self, IdentityView};
use super::ids::RevealId;
use super::orders::parse_time;
use super::{audit_ok, DomainError, DomainResult, FieldProblem, Rules};

/// Ask to see a real identity.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevealRequestInput {
    /// The case, if known.
    pub case_id: Option<String>,
    /// Or the fictitious number (pupil's or linked guardian's) seen in a platform.
    pub fictitious_number: Option<String>,
    /// Why (1..=500 characters, no personal number). Written to the audit trail.
    pub purpose: String,
}

impl std::fmt::Debug for RevealRequestInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RevealRequestInput(..)")
    }
}

/// Whose identity a request is about.
#[derive(Debug, Clone)]
pub struct RevealTarget {
    pub case: CaseId,
    pub subject: String,
    pub unit: String,
}

/// Find the case (and person) a request is about, for authorization. `NotFound` for
/// anything unknown, also for a malformed input.
pub async fn resolve(vault: &Vault, input: &RevealRequestInput) -> DomainResult<RevealTarget> {
    let (case, subject) = match (&input.case_id, &input.fictitious_number) {
        (Some(c), None) => (
            c.parse::<CaseId>().map_err(|_| DomainError::NotFound)?,
            "pupil".to_owned(),
        ),
        (None, Some(n)) => {
            // Any usual written form (`YYMMDD-NNNC`, with or without the century) finds
            // the stored canonical number, whether its check digit is valid or, as the
            // default number policy makes it, deliberately not.
            let [a, b] = fictitious_number_forms(n, vault.now().date_naive());
            let r = sqlx::query(
                "SELECT case_id, subject FROM fictitious_numbers WHERE number IN ($1, $2) \
                 AND case_id IS NOT NULL ORDER BY number DESC",
            )
            .bind(a)
            .bind(b)
            .fetch_optional(vault.db().pool())
            .await?
            .ok_or(DomainError::NotFound)?;
            (
                r.try_get::<String, _>("case_id")?
                    .parse()
                    .map_err(|_| DomainError::Internal("stored case id is malformed".into()))?,
                r.try_get::<Option<String>, _>("subject")?
                    .unwrap_or_else(|| "pupil".into()),
            )
        }
        _ => {
            return Err(DomainError::invalid(
                "case_id",
                "reveal.one-target",
                "Give either the case id or the fictitious number, not both.",
            ))
        }
    };
    let unit = cases::unit_of(vault, &case).await?;
    Ok(RevealTarget {
        case,
        subject,
        unit,
    })
}

/// State of a reveal request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RevealState {
    Pending,
    Approved,
    Refused,
    Read,
    /// Approved, but the time to read it ran out (shown in lists; stored as approved).
    Expired,
}

/// A reveal request (never the identity).
#[derive(Debug, Serialize, ToSchema)]
pub struct RevealView {
    pub reveal_id: String,
    pub case_id: String,
    pub state: RevealState,
    pub requested_by: String,
    pub requested_at: String,
    pub decided_by: Option<String>,
    /// Until when an approved reveal can be read.
    pub expires_at: Option<String>,
}

/// Ask for a reveal. Permit: `reveal.request` on the case.
/// How many reveal requests one person may make within a window (`[limits]`).
#[derive(Debug, Clone, Copy)]
pub struct RequestLimit {
    pub max: u32,
    pub window_secs: u64,
}

pub async fn request(
    vault: &Vault,
    permit: &Permit,
    target: &RevealTarget,
    purpose: &str,
    limit: RequestLimit,
) -> DomainResult<RevealView> {
    permit.require(Action::RevealRequest)?;
    let purpose = purpose.trim();
    if let Err(e) = check_purpose(purpose) {
        return Err(DomainError::Invalid(vec![FieldProblem::new(
            "purpose",
            "reveal.purpose-invalid",
            match e {
                fiktiv_vault::audit::AuditError::Invalid { why, .. } => why,
                _ => "The purpose is not valid.",
            },
        )]));
    }
    let id = RevealId::new();
    let now = fmt_time(vault.now());
    let mut tx = vault.db().begin_write().await?;
    // One person may ask only so often (`[limits]`), whatever way they ask: counted
    // from the stored requests, so the API and the web UI share it and a restart does
    // not reset it.
    super::lock_limit(vault, &mut tx, super::LIMIT_LOCK_REVEALS).await?;
    let since = vault.now()
        - chrono::TimeDelta::try_seconds(i64::try_from(limit.window_secs).unwrap_or(i64::MAX))
            .unwrap_or(chrono::TimeDelta::MAX);
    let asked: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM reveal_requests WHERE requested_by = $1 AND requested_at > $2",
    )
    .bind(permit.principal_id())
    .bind(fmt_time(since))
    .fetch_one(&mut *tx)
    .await?;
    if asked >= i64::from(limit.max.max(1)) {
        tracing::warn!("reveal request refused: rate-limited");
        return Err(DomainError::Busy {
            code: "rate-limited",
            message: "Too many reveal requests from one person; try again later.",
        });
    }
    let row = cases::load(&mut tx, &target.case).await?;
    if row.identity_shredded_at.is_some() {
        return Err(DomainError::Gone {
            code: "identity-shredded",
            message: "The real identity of this case has been shredded.",
        });
    }
    sqlx::query(
        "INSERT INTO reveal_requests (reveal_id, case_id, subject, unit, requested_by, purpose, \
         requested_at, state) VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending')",
    )
    .bind(id.to_string())
    .bind(target.case.to_string())
    .bind(&target.subject)
    .bind(&row.unit)
    .bind(permit.principal_id())
    .bind(purpose)
    .bind(&now)
    .execute(&mut *tx)
    .await?;
    audit_ok(vault, &mut tx, permit, Some(target.case), Some(purpose)).await?;
    tx.commit().await?;
    Ok(RevealView {
        reveal_id: id.to_string(),
        case_id: target.case.to_string(),
        state: RevealState::Pending,
        requested_by: permit.principal_id().to_owned(),
        requested_at: now,
        decided_by: None,
        expires_at: None,
    })
}

struct Stored {
    case: CaseId,
    subject: String,
    requested_by: String,
    requested_at: String,
    purpose: String,
    state: RevealState,
    expires_at: Option<String>,
    /// When the requester opened it (the read window's start).
    opened_at: Option<String>,
    decided_by: Option<String>,
}

async fn load(conn: &mut sqlx::AnyConnection, id: &RevealId) -> DomainResult<Stored> {
    let r = sqlx::query(
        "SELECT case_id, subject, requested_by, requested_at, purpose, state, expires_at, \
         opened_at, decided_by FROM reveal_requests WHERE reveal_id = $1",
    )
    .bind(id.to_string())
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(DomainError::NotFound)?;
    Ok(Stored {
        case: r
            .try_get::<String, _>("case_id")?
            .parse()
            .map_err(|_| DomainError::Internal("stored case id is malformed".into()))?,
        subject: r.try_get("subject")?,
        requested_by: r.try_get("requested_by")?,
        requested_at: r.try_get("requested_at")?,
        purpose: r.try_get("purpose")?,
        state: match r.try_get::<String, _>("state")?.as_str() {
            "pending" => RevealState::Pending,
            "approved" => RevealState::Approved,
            "refused" => RevealState::Refused,
            "read" => RevealState::Read,
            _ => {
                return Err(DomainError::Internal(
                    "stored reveal state is malformed".into(),
                ))
            }
        },
        expires_at: r.try_get("expires_at")?,
        opened_at: r.try_get("opened_at")?,
        decided_by: r.try_get("decided_by")?,
    })
}

/// The unit and the requester of a reveal request (for authorization).
pub async fn lookup(vault: &Vault, id: &RevealId) -> DomainResult<(String, String)> {
    let r = sqlx::query("SELECT unit, requested_by FROM reveal_requests WHERE reveal_id = $1")
        .bind(id.to_string())
        .fetch_optional(vault.db().pool())
        .await?
        .ok_or(DomainError::NotFound)?;
    Ok((r.try_get("unit")?, r.try_get("requested_by")?))
}

/// Approve or refuse.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevealDecisionInput {
    pub approve: bool,
    /// Why (shown to the requester): the web UI asks for it when refusing. Checked like
    /// a purpose: no personal number, no control characters.
    #[serde(default)]
    pub reason: Option<String>,
}

/// Approve or refuse a pending request. Permit: `reveal.approve` on the request (the
/// policies forbid deciding one's own request).
pub async fn decide(
    vault: &Vault,
    rules: &Rules,
    permit: &Permit,
    id: &RevealId,
    input: RevealDecisionInput,
) -> DomainResult<RevealView> {
    permit.require(Action::RevealApprove)?;
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
                "reveal.purpose-invalid",
                match e {
                    fiktiv_vault::audit::AuditError::Invalid { why, .. } => why,
                    _ => "The reason is not valid.",
                },
            )]));
        }
    }
    let mut tx = vault.db().begin_write().await?;
    let s = load(&mut tx, id).await?;
    if s.state != RevealState::Pending {
        return Err(DomainError::conflict(
            "reveal-already-decided",
            "This request has already been decided.",
        ));
    }
    if s.requested_by == permit.principal_id() {
        // The policies forbid this already; the domain holds the line too.
        return Err(DomainError::NotFound);
    }
    let now = vault.now();
    let (state, expires) = if input.approve {
        (
            RevealState::Approved,
            // The requester has this long to open it; opening starts the read window.
            Some(fmt_time(now + rules.reveal_open_within)),
        )
    } else {
        (RevealState::Refused, None)
    };
    sqlx::query(
        "UPDATE reveal_requests SET state = $1, decided_by = $2, decided_at = $3, expires_at = $4, \
         decision_reason = $5 WHERE reveal_id = $6",
    )
    .bind(if input.approve { "approved" } else { "refused" })
    .bind(permit.principal_id())
    .bind(fmt_time(now))
    .bind(expires.clone())
    .bind(reason.clone())
    .bind(id.to_string())
    .execute(&mut *tx)
    .await?;
    vault
        .audit(
            &mut tx,
            &NewEvent {
                actor: permit.principal_id(),
                action: if input.approve {
                    "reveal.approve"
                } else {
                    "reveal.refuse"
                },
                case_id: Some(s.case),
                purpose: Some(&s.purpose),
                outcome: Outcome::Ok,
            },
        )
        .await?;
    tx.commit().await?;
    Ok(RevealView {
        reveal_id: id.to_string(),
        case_id: s.case.to_string(),
        state,
        requested_by: s.requested_by,
        requested_at: s.requested_at,
        decided_by: Some(permit.principal_id().to_owned()),
        expires_at: expires,
    })
}

/// The requester opens an approved reveal (`POST .../open`): the read
/// window of `[reveal] ttl_minutes` starts now, if it has not started already. Opening
/// must come before the approval's deadline (`[reveal] open_within_hours`). Audited
/// once (`reveal.open`). Permit: `reveal.read` on the request (only the requester).
pub async fn open(
    vault: &Vault,
    rules: &Rules,
    permit: &Permit,
    id: &RevealId,
) -> DomainResult<RevealView> {
    permit.require(Action::RevealRead)?;
    let mut tx = vault.db().begin_write().await?;
    let s = load(&mut tx, id).await?;
    let now = vault.now();
    match s.state {
        RevealState::Approved => {}
        RevealState::Read => {
            return Err(DomainError::Gone {
                code: "reveal-used",
                message: "This reveal has already been read.",
            })
        }
        _ => {
            return Err(DomainError::conflict(
                "reveal-not-approved",
                "This request has not been approved.",
            ))
        }
    }
    let deadline = match &s.expires_at {
        Some(t) => parse_time(t)?,
        None => now,
    };
    if now >= deadline {
        return Err(DomainError::Gone {
            code: "reveal-expired",
            message: "The time to read this reveal has run out. Ask again.",
        });
    }
    let mut expires = s.expires_at.clone();
    if s.opened_at.is_none() {
        let until = fmt_time(now + rules.reveal_ttl);
        sqlx::query(
            "UPDATE reveal_requests SET opened_at = $1, expires_at = $2 WHERE reveal_id = $3 \
             AND state = 'approved' AND opened_at IS NULL",
        )
        .bind(fmt_time(now))
        .bind(&until)
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
        vault
            .audit(
                &mut tx,
                &NewEvent {
                    actor: permit.principal_id(),
                    action: "reveal.open",
                    case_id: Some(s.case),
                    purpose: Some(&s.purpose),
                    outcome: Outcome::Ok,
                },
            )
            .await?;
        expires = Some(until);
    }
    tx.commit().await?;
    Ok(RevealView {
        reveal_id: id.to_string(),
        case_id: s.case.to_string(),
        state: RevealState::Approved,
        requested_by: s.requested_by,
        requested_at: s.requested_at,
        decided_by: s.decided_by,
        expires_at: expires,
    })
}

/// Read an approved reveal, once, before it expires. Permit: `reveal.read` on the
/// request (only the requester). A refused read is audited as denied.
pub async fn read(vault: &Vault, permit: &Permit, id: &RevealId) -> DomainResult<IdentityView> {
    permit.require(Action::RevealRead)?;
    let mut tx = vault.db().begin_write().await?;
    let s = load(&mut tx, id).await?;
    let now = vault.now();
    let expired = |e: &Option<String>| -> DomainResult<bool> {
        Ok(match e {
            Some(t) => now >= parse_time(t)?,
            None => true,
        })
    };
    let refusal = match s.state {
        RevealState::Pending | RevealState::Refused => Some(DomainError::conflict(
            "reveal-not-approved",
            "This request has not been approved.",
        )),
        RevealState::Read => Some(DomainError::Gone {
            code: "reveal-used",
            message: "This reveal has already been read.",
        }),
        RevealState::Approved if expired(&s.expires_at)? => Some(DomainError::Gone {
            code: "reveal-expired",
            message: "The time to read this reveal has run out. Ask again.",
        }),
        RevealState::Approved => None,
        // Never stored: `load` yields `Approved` and the expiry is checked above.
        RevealState::Expired => Some(DomainError::Gone {
            code: "reveal-expired",
            message: "The time to read this reveal has run out. Ask again.",
        }),
    };
    if let Some(err) = refusal {
        vault
            .audit(
                &mut tx,
                &NewEvent {
                    actor: permit.principal_id(),
                    action: Action::RevealRead.as_str(),
                    case_id: Some(s.case),
                    purpose: Some(&s.purpose),
                    outcome: Outcome::Denied,
                },
            )
            .await?;
        tx.commit().await?;
        return Err(err);
    }
    // Nothing is written before the identity has been read: `read_identity` commits its
    // own audit event before it decrypts, and when that (or anything else) fails, the
    // reveal stays approved and nothing has changed. Then the reveal is used up; of two
    // concurrent reads (both audited), only the one that uses it up shows the identity.
    tx.rollback().await?;
    let row = {
        let mut conn = vault.db().pool().acquire().await?;
        cases::load(&mut conn, &s.case).await?
    };
    let identity = vault
        .read_identity(
            ReadContext {
                actor: permit.principal_id(),
                action: Action::RevealRead.as_str(),
                purpose: &s.purpose,
            },
            &s.case,
            &s.subject,
        )
        .await
        .map_err(cases::shredded)?;
    let mut tx = vault.db().begin_write().await?;
    let done = sqlx::query(
        "UPDATE reveal_requests SET state = 'read', read_at = $1 WHERE reveal_id = $2 \
         AND state = 'approved'",
    )
    .bind(fmt_time(now))
    .bind(id.to_string())
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() != 1 {
        return Err(DomainError::Gone {
            code: "reveal-used",
            message: "This reveal has already been read.",
        });
    }
    tx.commit().await?;
    Ok(IdentityView::from_identity(&s.case, row.country, &identity))
}

/// A reveal request in a list: who asked, about which case, why, and where it stands.
/// Never the identity.
#[derive(Debug, Serialize, ToSchema)]
pub struct RevealListItem {
    pub reveal_id: String,
    pub case_id: String,
    pub unit: String,
    /// `pupil`, or `guardian-N` for a linked guardian.
    pub subject: String,
    pub state: RevealState,
    /// The purpose the requester gave (checked to hold no personal number).
    pub purpose: String,
    pub requested_by: String,
    pub requested_at: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    /// Until when an approved reveal can be read.
    pub expires_at: Option<String>,
    pub read_at: Option<String>,
    /// Why the approver decided so (a refusal's reason), when given.
    pub decision_reason: Option<String>,
}

async fn list_where(
    vault: &Vault,
    condition: &str,
    principal: &str,
) -> DomainResult<Vec<RevealListItem>> {
    let sql = format!(
        "SELECT reveal_id, case_id, unit, subject, state, purpose, requested_by, requested_at, \
         decided_by, decided_at, expires_at, read_at, decision_reason FROM reveal_requests \
         WHERE {condition} \
         ORDER BY requested_at, reveal_id"
    );
    let rows = sqlx::query(&sql)
        .bind(principal)
        .fetch_all(vault.db().pool())
        .await?;
    let now = vault.now();
    rows.iter()
        .map(|r| {
            let expires_at: Option<String> = r.try_get("expires_at")?;
            let state = match r.try_get::<String, _>("state")?.as_str() {
                "pending" => RevealState::Pending,
                "approved" => match &expires_at {
                    Some(t) if now < parse_time(t)? => RevealState::Approved,
                    _ => RevealState::Expired,
                },
                "refused" => RevealState::Refused,
                "read" => RevealState::Read,
                _ => {
                    return Err(DomainError::Internal(
                        "stored reveal state is malformed".into(),
                    ))
                }
            };
            Ok(RevealListItem {
                reveal_id: r.try_get("reveal_id")?,
                case_id: r.try_get("case_id")?,
                unit: r.try_get("unit")?,
                subject: r.try_get("subject")?,
                state,
                purpose: r.try_get("purpose")?,
                requested_by: r.try_get("requested_by")?,
                requested_at: r.try_get("requested_at")?,
                decided_by: r.try_get("decided_by")?,
                decided_at: r.try_get("decided_at")?,
                expires_at,
                read_at: r.try_get("read_at")?,
                decision_reason: r.try_get("decision_reason")?,
            })
        })
        .collect()
}

/// The requests waiting for a decision, oldest first, leaving out the caller's own:
/// nobody is offered their own request to approve. Permit: `reveal.list-pending`.
pub async fn list_pending(vault: &Vault, permit: &Permit) -> DomainResult<Vec<RevealListItem>> {
    permit.require(Action::RevealListPending)?;
    list_where(
        vault,
        "state = 'pending' AND requested_by <> $1",
        permit.principal_id(),
    )
    .await
}

/// The caller's own requests, oldest first, with their state. Permit:
/// `reveal.list-own`.
pub async fn list_own(vault: &Vault, permit: &Permit) -> DomainResult<Vec<RevealListItem>> {
    permit.require(Action::RevealListOwn)?;
    list_where(vault, "requested_by = $1", permit.principal_id()).await
}

/// The canonical forms a fictitious number written in a platform may stand for: the
/// parsed number when it is valid; otherwise its digits (separators `-`, `+` and spaces
/// dropped), with both centuries when the century is left out (a number whose check
/// digit fails the Luhn check does not parse, and so tells no century). Two forms,
/// possibly the same.
fn fictitious_number_forms(written: &str, today: chrono::NaiveDate) -> [String; 2] {
    if let Ok(p) = fiktiv_vault::ids::PersonalNumber::parse(written, today) {
        let c = p.canonical().to_owned();
        return [c.clone(), c];
    }
    let digits: String = written
        .trim()
        .chars()
        .filter(|c| !matches!(c, '-' | '+' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    // Ten characters: the century left out, of digits or of the SS 12000 temporary form
    // (`130101TF01`).
    let short = digits.len() == 10
        && digits
            .bytes()
            .enumerate()
            .all(|(i, b)| b.is_ascii_digit() || ((6..8).contains(&i) && b.is_ascii_uppercase()));
    if short {
        [format!("20{digits}"), format!("19{digits}")]
    } else {
        [digits.clone(), digits]
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn a_fictitious_number_is_found_in_its_written_forms() {
        let today = chrono::NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
        // Valid check digit: parsed, one canonical form.
        let valid = fiktiv_vault::ids::make_se_number(
            chrono::NaiveDate::from_ymd_opt(2015, 9, 3).unwrap(),
            321,
        )
        .unwrap();
        let short = format!("{}-{}", &valid[2..8], &valid[8..]);
        assert_eq!(
            fictitious_number_forms(&short, today),
            [valid.clone(), valid.clone()]
        );
        // A check digit that fails Luhn (the default policy): both centuries.
        let last = valid.as_bytes()[11] - b'0';
        let failing = format!("{}{}", &valid[..11], (last + 1) % 10);
        let short = format!("{}-{}", &failing[2..8], &failing[8..]);
        let forms = fictitious_number_forms(&short, today);
        assert!(forms.contains(&failing), "{forms:?}");
        assert_eq!(
            fictitious_number_forms(&failing, today),
            [failing.clone(), failing.clone()]
        );
        let spaced = format!("{} {}", &failing[2..8], &failing[8..]);
        assert!(fictitious_number_forms(&spaced, today).contains(&failing));
        // The SS 12000 temporary form, as written with or without the century.
        assert!(fictitious_number_forms("130101-TF01", today).contains(&"20130101TF01".to_string()));
        assert!(
            fictitious_number_forms("20130101tf01", today).contains(&"20130101TF01".to_string())
        );
    }
}
