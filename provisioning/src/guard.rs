//! The egress guard: every value a target is about to write is checked against the
//! blind indexes of every real identity in the vault, and a match blocks the write.
//!
//! The guard is a capability: a target writes a person only from a [`Cleared`] record,
//! and only [`EgressGuard::clear`] makes one. [`Blocked`] names the rule and the
//! attribute names, never a value, and deliberately not the case whose real identity
//! matched: the fictitious value is known to whoever chose it, so naming the case
//! would tell them that case's real name.

use std::fmt;
use std::sync::Arc;

use fiktiv_vault::keys::BlindKey;
use serde::Serialize;

use crate::matching::{match_entry, match_entry_memo, memo_for, Hit, RealIndexLookup, Rule};
use crate::model::{PersonId, TargetName};
use crate::record::OutboundRecord;

/// A write refused by the egress guard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
pub struct Blocked {
    pub target: TargetName,
    /// The person whose record was refused (`None` when a whole file was re-checked).
    pub person: Option<PersonId>,
    pub rule: Rule,
    /// Names of the attributes that matched (never their values).
    pub attributes: Vec<String>,
}

impl fmt::Display for Blocked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "egress blocked on target {}", self.target)?;
        if let Some(p) = &self.person {
            write!(f, " for person {p}")?;
        }
        write!(
            f,
            ": attribute(s) {} matched a real identity in the vault (rule {})",
            self.attributes.join(", "),
            self.rule.as_str()
        )
    }
}

/// A record that passed the guard. Only [`EgressGuard::clear`] makes one.
#[derive(Debug, Clone)]
pub struct Cleared(OutboundRecord);

impl Cleared {
    pub fn record(&self) -> &OutboundRecord {
        &self.0
    }
}

/// Checks outbound values against the blind indexes of all real identities.
#[derive(Clone)]
pub struct EgressGuard {
    key: BlindKey,
    lookup: Arc<dyn RealIndexLookup>,
}

impl fmt::Debug for EgressGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EgressGuard")
    }
}

impl EgressGuard {
    /// A guard over a clone of the vault's blind-index key and its index set
    /// (the vault's `blind_index_set`, or any [`RealIndexLookup`]).
    pub fn new(key: BlindKey, lookup: impl RealIndexLookup + 'static) -> Self {
        Self {
            key,
            lookup: Arc::new(lookup),
        }
    }

    pub fn from_shared(key: BlindKey, lookup: Arc<dyn RealIndexLookup>) -> Self {
        Self { key, lookup }
    }

    /// Checks every value of the record (see [`OutboundRecord::values`]).
    pub fn check(&self, record: &OutboundRecord) -> Result<(), Blocked> {
        let values = record.values();
        self.check_values(&record.target, Some(record.person), &values)
    }

    /// Checks the record and hands back the proof that it passed.
    pub fn clear(&self, record: OutboundRecord) -> Result<Cleared, Blocked> {
        self.check(&record)?;
        Ok(Cleared(record))
    }

    /// Checks arbitrary values about to be written to `target` (for example every row
    /// of a file that is rewritten as a whole).
    pub fn check_values(
        &self,
        target: &TargetName,
        person: Option<PersonId>,
        values: &[(String, String)],
    ) -> Result<(), Blocked> {
        let refs: Vec<(&str, &str)> = values
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let hits = match_entry(&refs, &self.key, self.lookup.as_ref(), true);
        Self::verdict(target, person, hits)
    }

    /// Checks many records, as [`EgressGuard::clear`] each (one result per record, in
    /// order), working out values that recur across them (object classes, groups,
    /// school names) once.
    pub fn clear_all(&self, records: Vec<OutboundRecord>) -> Vec<Result<Cleared, Blocked>> {
        let values: Vec<Vec<(String, String)>> = records.iter().map(|r| r.values()).collect();
        let mut memo = memo_for(
            values.iter().flatten().map(|(_, v)| v.as_str()),
            &self.key,
            self.lookup.as_ref(),
        );
        records
            .into_iter()
            .zip(values)
            .map(|(r, vs)| {
                let refs: Vec<(&str, &str)> =
                    vs.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
                let hits =
                    match_entry_memo(&refs, &self.key, self.lookup.as_ref(), true, &mut memo);
                Self::verdict(&r.target, Some(r.person), hits)?;
                Ok(Cleared(r))
            })
            .collect()
    }

    /// Checks many entries about to be written to `target` together, each on its own
    /// (every row of a file that is rewritten as a whole: a row is one entry, as the
    /// leak scan reads it back). Stops at the first entry that is blocked.
    pub fn check_entries(
        &self,
        target: &TargetName,
        entries: &[Vec<(String, String)>],
    ) -> Result<(), Blocked> {
        let mut memo = memo_for(
            entries.iter().flatten().map(|(_, v)| v.as_str()),
            &self.key,
            self.lookup.as_ref(),
        );
        for vs in entries {
            let refs: Vec<(&str, &str)> =
                vs.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            let hits = match_entry_memo(&refs, &self.key, self.lookup.as_ref(), true, &mut memo);
            Self::verdict(target, None, hits)?;
        }
        Ok(())
    }

    fn verdict(
        target: &TargetName,
        person: Option<PersonId>,
        hits: Vec<Hit>,
    ) -> Result<(), Blocked> {
        match hits.into_iter().next() {
            None => Ok(()),
            Some(hit) => {
                let blocked = Blocked {
                    target: target.clone(),
                    person,
                    rule: hit.rule,
                    attributes: hit.attributes.into_iter().collect(),
                };
                tracing::warn!(
                    target_name = %blocked.target,
                    person = ?blocked.person,
                    rule = blocked.rule.as_str(),
                    attributes = ?blocked.attributes,
                    "egress guard blocked a write"
                );
                Err(blocked)
            }
        }
    }
}
