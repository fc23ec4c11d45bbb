//! The audit trail: append-only, hash-chained and authenticated.
//!
//! Each event carries the SHA-256 hash of the previous event and an HMAC-SHA256 with the
//! audit key over its own content and that hash. A head row holds the last sequence
//! number and hash, authenticated too, so a removed tail is detected. Events name an
//! actor (an opaque staff or token id), an action, a case id, a purpose and an outcome;
//! never a real identifier. [`verify`] names the first event that was modified, removed
//! or reordered.
//!
//! An append is done inside the caller's transaction, so the operation and its event
//! commit together or not at all.

use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, Utc};
use ring::hmac;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, AnyPool, Row};

use crate::ids;
use crate::keys::AuditKey;
use crate::CaseId;

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
const MAX_PURPOSE: usize = 500;
const MAX_TOKEN: usize = 128;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit trail could not be written")]
    Write(#[source] sqlx::Error),
    #[error("audit trail could not be read")]
    Read(#[source] sqlx::Error),
    #[error("audit {field} is invalid: {why}")]
    Invalid {
        field: &'static str,
        why: &'static str,
    },
}

/// How an audited operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    Denied,
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Denied => "denied",
            Outcome::Failed => "failed",
        }
    }
}

/// An event to append.
#[derive(Debug, Clone)]
pub struct NewEvent<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub case_id: Option<CaseId>,
    pub purpose: Option<&'a str>,
    pub outcome: Outcome,
}

/// A stored event, as shown to auditors.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AuditEvent {
    pub seq: i64,
    pub event_id: String,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub case_id: Option<String>,
    pub purpose: Option<String>,
    pub outcome: String,
}

fn check_token(field: &'static str, s: &str) -> Result<(), AuditError> {
    if s.is_empty() || s.len() > MAX_TOKEN {
        return Err(AuditError::Invalid {
            field,
            why: "must be 1 to 128 characters",
        });
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._:@-/".contains(c))
    {
        return Err(AuditError::Invalid {
            field,
            why: "may contain only letters, digits and . _ : @ - /",
        });
    }
    Ok(())
}

/// A purpose is free text from staff; it must not carry a personal number.
pub fn check_purpose(p: &str) -> Result<(), AuditError> {
    if p.trim().is_empty() || p.chars().count() > MAX_PURPOSE {
        return Err(AuditError::Invalid {
            field: "purpose",
            why: "must be 1 to 500 characters",
        });
    }
    if p.chars().any(|c| c.is_control()) {
        return Err(AuditError::Invalid {
            field: "purpose",
            why: "must not contain control characters",
        });
    }
    if !ids::number_candidates(p).is_empty() {
        return Err(AuditError::Invalid {
            field: "purpose",
            why: "must not contain a personal identity number",
        });
    }
    Ok(())
}

fn canonical(ev: &AuditEvent) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"fiktiv.audit.v1\0");
    for part in [
        ev.event_id.as_str(),
        ev.at.as_str(),
        ev.actor.as_str(),
        ev.action.as_str(),
        ev.case_id.as_deref().unwrap_or(""),
        ev.purpose.as_deref().unwrap_or(""),
        ev.outcome.as_str(),
    ] {
        out.extend_from_slice(&(part.len() as u32).to_be_bytes());
        out.extend_from_slice(part.as_bytes());
    }
    out
}

fn event_mac(key: &AuditKey, ev: &AuditEvent, prev_hash: &str) -> String {
    let k = hmac::Key::new(hmac::HMAC_SHA256, &key.0 .0);
    let mut ctx = hmac::Context::with_key(&k);
    ctx.update(&canonical(ev));
    ctx.update(prev_hash.as_bytes());
    hex::encode(ctx.sign().as_ref())
}

fn event_hash(ev: &AuditEvent, prev_hash: &str, mac: &str) -> String {
    let mut h = Sha256::new();
    h.update(canonical(ev));
    h.update(prev_hash.as_bytes());
    h.update(mac.as_bytes());
    hex::encode(h.finalize())
}

fn head_mac(key: &AuditKey, seq: i64, hash: &str) -> String {
    let k = hmac::Key::new(hmac::HMAC_SHA256, &key.0 .0);
    let mut ctx = hmac::Context::with_key(&k);
    ctx.update(b"fiktiv.audit.head.v1\0");
    ctx.update(&seq.to_be_bytes());
    ctx.update(hash.as_bytes());
    hex::encode(ctx.sign().as_ref())
}

fn mac_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Format a time the way the audit trail and the rest of the database store it.
pub fn fmt_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Append an event inside the caller's transaction. The first statement takes the
/// head row's lock, so concurrent appends (also across instances on PostgreSQL)
/// serialise and the chain stays linear.
pub async fn append(
    conn: &mut AnyConnection,
    key: &AuditKey,
    ev: &NewEvent<'_>,
    at: DateTime<Utc>,
) -> Result<i64, AuditError> {
    check_token("actor", ev.actor)?;
    check_token("action", ev.action)?;
    if let Some(p) = ev.purpose {
        check_purpose(p)?;
    }
    let head = sqlx::query("UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash")
        .fetch_one(&mut *conn)
        .await
        .map_err(AuditError::Write)?;
    let seq: i64 = head.try_get("seq").map_err(AuditError::Write)?;
    let prev_hash: String = head.try_get("hash").map_err(AuditError::Write)?;
    let stored = AuditEvent {
        seq,
        event_id: uuid::Uuid::new_v4().to_string(),
        at: fmt_time(at),
        actor: ev.actor.to_string(),
        action: ev.action.to_string(),
        case_id: ev.case_id.map(|c| c.to_string()),
        purpose: ev.purpose.map(str::to_string),
        outcome: ev.outcome.as_str().to_string(),
    };
    let mac = event_mac(key, &stored, &prev_hash);
    let hash = event_hash(&stored, &prev_hash, &mac);
    sqlx::query(
        "INSERT INTO audit_events (seq, event_id, at, actor, action, case_id, purpose, outcome, prev_hash, mac) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(seq)
    .bind(&stored.event_id)
    .bind(&stored.at)
    .bind(&stored.actor)
    .bind(&stored.action)
    .bind(stored.case_id.clone())
    .bind(stored.purpose.clone())
    .bind(&stored.outcome)
    .bind(&prev_hash)
    .bind(&mac)
    .execute(&mut *conn)
    .await
    .map_err(AuditError::Write)?;
    sqlx::query("UPDATE audit_head SET hash = $1, mac = $2 WHERE id = 1")
        .bind(&hash)
        .bind(head_mac(key, seq, &hash))
        .execute(&mut *conn)
        .await
        .map_err(AuditError::Write)?;
    Ok(seq)
}

/// What [`verify`] found wrong, naming the first place it happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "problem", rename_all = "kebab-case")]
pub enum Finding {
    /// The event at `seq` was edited after it was written.
    Modified { seq: i64 },
    /// One or more events before `seq` were removed.
    Removed { before_seq: i64 },
    /// The event at `seq` is out of its original order.
    Reordered { seq: i64 },
    /// Events after `seq` were removed, or the head was edited.
    TailRemoved { after_seq: i64 },
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Finding::Modified { seq } => write!(f, "event {seq} was modified"),
            Finding::Removed { before_seq } => {
                write!(
                    f,
                    "one or more events before event {before_seq} were removed"
                )
            }
            Finding::Reordered { seq } => write!(f, "event {seq} was reordered"),
            Finding::TailRemoved { after_seq } => write!(
                f,
                "events after event {after_seq} were removed or the chain head was altered"
            ),
        }
    }
}

/// The result of a verification.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct VerifyReport {
    pub events: u64,
    pub first_problem: Option<Finding>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.first_problem.is_none()
    }
}

struct StoredRow {
    ev: AuditEvent,
    prev_hash: String,
    mac: String,
}

fn row_to_stored(row: &sqlx::any::AnyRow) -> Result<StoredRow, sqlx::Error> {
    Ok(StoredRow {
        ev: AuditEvent {
            seq: row.try_get("seq")?,
            event_id: row.try_get("event_id")?,
            at: row.try_get("at")?,
            actor: row.try_get("actor")?,
            action: row.try_get("action")?,
            case_id: row.try_get("case_id")?,
            purpose: row.try_get("purpose")?,
            outcome: row.try_get("outcome")?,
        },
        prev_hash: row.try_get("prev_hash")?,
        mac: row.try_get("mac")?,
    })
}

const SELECT_ROWS: &str =
    "SELECT seq, event_id, at, actor, action, case_id, purpose, outcome, prev_hash, mac \
     FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2";
const BATCH: i64 = 2000;

async fn for_each_row(
    pool: &AnyPool,
    mut f: impl FnMut(StoredRow) -> bool,
) -> Result<(), AuditError> {
    let mut after = i64::MIN;
    loop {
        let rows = sqlx::query(SELECT_ROWS)
            .bind(after)
            .bind(BATCH)
            .fetch_all(pool)
            .await
            .map_err(AuditError::Read)?;
        let n = rows.len();
        for row in &rows {
            let r = row_to_stored(row).map_err(AuditError::Read)?;
            after = r.ev.seq;
            if !f(r) {
                return Ok(());
            }
        }
        if (n as i64) < BATCH {
            return Ok(());
        }
    }
}

/// Whether the trail holds any event (the database was written with some key).
pub async fn any_events(pool: &AnyPool) -> Result<bool, sqlx::Error> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events")
        .fetch_one(pool)
        .await?;
    Ok(n > 0)
}

/// A stored event with its links in the chain, for an export of the trail.
#[derive(Debug, Clone)]
pub struct ChainedEvent {
    pub event: AuditEvent,
    pub prev_hash: String,
    pub mac: String,
}

/// The chain's head as stored: its sequence number, hash and MAC (`None` before the
/// first event of an initialised vault, or in a database without a trail).
pub async fn head(pool: &AnyPool) -> Result<Option<(i64, String, String)>, AuditError> {
    let row = sqlx::query("SELECT seq, hash, mac FROM audit_head WHERE id = 1")
        .fetch_optional(pool)
        .await
        .map_err(AuditError::Read)?;
    match row {
        Some(r) => Ok(Some((
            r.try_get("seq").map_err(AuditError::Read)?,
            r.try_get("hash").map_err(AuditError::Read)?,
            r.try_get("mac").map_err(AuditError::Read)?,
        ))),
        None => Ok(None),
    }
}

/// Stored events with `after < seq <= upto`, in order, at most `limit`.
pub async fn events_between(
    pool: &AnyPool,
    after: i64,
    upto: i64,
    limit: i64,
) -> Result<Vec<ChainedEvent>, AuditError> {
    let rows = sqlx::query(
        "SELECT seq, event_id, at, actor, action, case_id, purpose, outcome, prev_hash, mac \
         FROM audit_events WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3",
    )
    .bind(after)
    .bind(upto)
    .bind(limit)
    .fetch_all(pool)
    .await
    .map_err(AuditError::Read)?;
    rows.iter()
        .map(|r| {
            let s = row_to_stored(r).map_err(AuditError::Read)?;
            Ok(ChainedEvent {
                event: s.ev,
                prev_hash: s.prev_hash,
                mac: s.mac,
            })
        })
        .collect()
}

/// Check the whole chain, in two streaming passes (memory grows by one hash per event).
pub async fn verify(pool: &AnyPool, key: &AuditKey) -> Result<VerifyReport, AuditError> {
    // Pass 1: the hash of every stored event, to tell a reorder from a removal.
    let mut hashes: HashMap<String, i64> = HashMap::new();
    for_each_row(pool, |r| {
        hashes.insert(event_hash(&r.ev, &r.prev_hash, &r.mac), r.ev.seq);
        true
    })
    .await?;

    let mut events = 0u64;
    let mut problem: Option<Finding> = None;
    let mut prev_hash = GENESIS.to_string();
    let mut prev_seq = 0i64;
    for_each_row(pool, |r| {
        events += 1;
        let seq = r.ev.seq;
        if !mac_eq(&event_mac(key, &r.ev, &r.prev_hash), &r.mac) {
            problem = Some(Finding::Modified { seq });
            return false;
        }
        if r.prev_hash != prev_hash {
            problem = Some(if hashes.contains_key(&r.prev_hash) {
                Finding::Reordered { seq }
            } else {
                Finding::Removed { before_seq: seq }
            });
            return false;
        }
        if seq != prev_seq + 1 {
            problem = Some(Finding::Removed { before_seq: seq });
            return false;
        }
        prev_hash = event_hash(&r.ev, &r.prev_hash, &r.mac);
        prev_seq = seq;
        true
    })
    .await?;

    if problem.is_none() && events == 0 {
        // An initialised vault always has events (init and start are audited): an
        // empty trail beside a recorded key check means the events were removed.
        let initialised = sqlx::query("SELECT 1 AS one FROM vault_meta WHERE id = 1")
            .fetch_optional(pool)
            .await
            .map_err(AuditError::Read)?
            .is_some();
        if initialised {
            problem = Some(Finding::TailRemoved { after_seq: 0 });
        }
    }
    if problem.is_none() {
        let head = sqlx::query("SELECT seq, hash, mac FROM audit_head WHERE id = 1")
            .fetch_optional(pool)
            .await
            .map_err(AuditError::Read)?;
        let head_ok = match head {
            Some(h) => {
                let seq: i64 = h.try_get("seq").map_err(AuditError::Read)?;
                let hash: String = h.try_get("hash").map_err(AuditError::Read)?;
                let mac: String = h.try_get("mac").map_err(AuditError::Read)?;
                seq == prev_seq
                    && hash == prev_hash
                    && (seq == 0 || mac_eq(&head_mac(key, seq, &hash), &mac))
            }
            None => false,
        };
        if !head_ok {
            problem = Some(Finding::TailRemoved {
                after_seq: prev_seq,
            });
        }
    }
    Ok(VerifyReport {
        events,
        first_problem: problem,
    })
}

/// A filter for listing events.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub case_id: Option<CaseId>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub after_seq: Option<i64>,
    pub limit: Option<i64>,
}

/// List events, newest first, filtered.
pub async fn list(pool: &AnyPool, filter: &Filter) -> Result<Vec<AuditEvent>, AuditError> {
    let rows = sqlx::query(
        "SELECT seq, event_id, at, actor, action, case_id, purpose, outcome, prev_hash, mac FROM audit_events \
         WHERE ($1 IS NULL OR case_id = $1) AND ($2 IS NULL OR actor = $2) AND ($3 IS NULL OR action = $3) \
         AND seq > $4 ORDER BY seq DESC LIMIT $5",
    )
    .bind(filter.case_id.map(|c| c.to_string()))
    .bind(filter.actor.clone())
    .bind(filter.action.clone())
    .bind(filter.after_seq.unwrap_or(0))
    .bind(filter.limit.unwrap_or(200).clamp(1, 1000))
    .fetch_all(pool)
    .await
    .map_err(AuditError::Read)?;
    rows.iter()
        .map(|r| row_to_stored(r).map(|s| s.ev))
        .collect::<Result<_, _>>()
        .map_err(AuditError::Read)
}
