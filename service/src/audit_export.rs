//! `fiktiv audit export`: the audit trail as JSON lines, for the data protection
//! officer or an auditor, with every event's hashes, so an external tool can re-check
//! the chain without Fiktiv (docs/OPERATIONS.md, "Exporting the audit trail";
//! `scripts/verify-audit-export` is such a tool).
//!
//! The hash is computed here from the format documented in ARCHITECTURE.md ("Audit
//! trail"), exactly as an external tool must:
//!
//! ```text
//! canonical(e) = "fiktiv.audit.v1\0" ‖ for each of event_id, at, actor, action,
//!                case_id or "", purpose or "", outcome: length (u32, big-endian) ‖ bytes
//! hash(e)      = hex(SHA-256(canonical(e) ‖ prev_hash ‖ mac))
//! ```
//!
//! One line per event (`"type":"event"`), then one line with the head (`"type":"head"`):
//! the head is read first, and only events up to it are written, so an export taken
//! while the service runs is consistent. The MAC needs the audit key, which never
//! leaves Fiktiv: `fiktiv audit verify` checks the MACs, the export lets anyone check
//! the links and compare hashes with ones recorded earlier.
//!
//! Events hold no personal data (opaque ids, actions, purposes checked for personal
//! numbers), so neither does the export.

use std::io::Write;

use fiktiv_vault::audit::{events_between, head as chain_head};
use fiktiv_vault::Vault;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// Events read per query.
const BATCH: i64 = 2000;

/// One exported event.
#[derive(Debug, Clone, Serialize)]
pub struct ExportedEvent {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub seq: i64,
    pub event_id: String,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub case_id: Option<String>,
    pub purpose: Option<String>,
    pub outcome: String,
    pub prev_hash: String,
    pub mac: String,
    /// SHA-256 over the canonical event, `prev_hash` and `mac` (hex).
    pub hash: String,
}

/// The chain head when the export started.
#[derive(Debug, Clone, Serialize)]
pub struct ExportedHead {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub seq: i64,
    pub hash: String,
    pub mac: String,
}

/// What an export wrote.
#[derive(Debug, Clone, Copy)]
pub struct ExportSummary {
    pub events: u64,
    pub head_seq: i64,
}

/// `hash(e)` as documented.
pub fn event_hash(e: &ExportedEvent) -> String {
    let mut h = Sha256::new();
    h.update(b"fiktiv.audit.v1\0");
    for part in [
        e.event_id.as_str(),
        e.at.as_str(),
        e.actor.as_str(),
        e.action.as_str(),
        e.case_id.as_deref().unwrap_or(""),
        e.purpose.as_deref().unwrap_or(""),
        e.outcome.as_str(),
    ] {
        let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
        h.update(len.to_be_bytes());
        h.update(part.as_bytes());
    }
    h.update(e.prev_hash.as_bytes());
    h.update(e.mac.as_bytes());
    hex::encode(h.finalize())
}

/// Writes events with `seq >= from_seq` up to the head, then the head, as JSON lines.
pub async fn export_jsonl(
    vault: &Vault,
    from_seq: i64,
    out: &mut dyn Write,
) -> anyhow::Result<ExportSummary> {
    let pool = vault.db().pool();
    let (seq, hash, mac) = chain_head(pool).await?.ok_or_else(|| {
        anyhow::anyhow!("the audit trail has no head: is this a Fiktiv database?")
    })?;
    let head = ExportedHead {
        kind: "head",
        seq,
        hash,
        mac,
    };
    let mut after = from_seq.saturating_sub(1);
    let mut events = 0u64;
    loop {
        let rows = events_between(pool, after, head.seq, BATCH).await?;
        let n = rows.len();
        for r in rows {
            let mut e = ExportedEvent {
                kind: "event",
                seq: r.event.seq,
                event_id: r.event.event_id,
                at: r.event.at,
                actor: r.event.actor,
                action: r.event.action,
                case_id: r.event.case_id,
                purpose: r.event.purpose,
                outcome: r.event.outcome,
                prev_hash: r.prev_hash,
                mac: r.mac,
                hash: String::new(),
            };
            e.hash = event_hash(&e);
            after = e.seq;
            serde_json::to_writer(&mut *out, &e)?;
            out.write_all(b"\n")?;
            events += 1;
        }
        if i64::try_from(n).unwrap_or(0) < BATCH {
            break;
        }
    }
    serde_json::to_writer(&mut *out, &head)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(ExportSummary {
        events,
        head_seq: head.seq,
    })
}
