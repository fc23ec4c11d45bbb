//! What goes out to a target ([`OutboundRecord`]) and what comes back from one
//! ([`ManagedEntry`] for accounts Fiktiv manages, [`ScannedEntry`] for everything a
//! leak scan reads).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{DateTime, Utc};
use zeroize::Zeroizing;

use crate::model::{GroupId, PersonId, TargetName};

/// A group a record joins, as the target will write it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundGroup {
    pub id: GroupId,
    pub name: String,
}

/// The exact values a target is about to write, structured the way the target writes
/// them. [`OutboundRecord::values`] flattens every one of them for the egress guard, so
/// what is checked is what is written.
#[derive(Clone, PartialEq, Eq)]
pub enum Payload {
    /// An LDAP entry: its DN, every attribute, and the groups it joins.
    Ldap {
        dn: String,
        attributes: BTreeMap<String, Vec<String>>,
        groups: Vec<OutboundGroup>,
    },
    /// A SCIM User resource and the groups it joins.
    Scim {
        user: serde_json::Value,
        groups: Vec<OutboundGroup>,
    },
    /// OneRoster rows: (file, column → value) for every row the person brings.
    Csv {
        rows: Vec<(String, BTreeMap<String, String>)>,
    },
}

/// One person's record for one target, after mapping and before the egress guard.
#[derive(Clone, PartialEq, Eq)]
pub struct OutboundRecord {
    pub target: TargetName,
    pub person: PersonId,
    pub payload: Payload,
}

impl fmt::Debug for OutboundRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Names of attributes only: a record that was blocked may hold a real name.
        let names: Vec<String> = self.values().into_iter().map(|(n, _)| n).collect();
        f.debug_struct("OutboundRecord")
            .field("target", &self.target)
            .field("person", &self.person)
            .field("attributes", &names)
            .finish()
    }
}

impl OutboundRecord {
    /// Every value the target would write, with the name of its attribute: LDAP `dn`,
    /// each attribute value and each group's `cn`/`description`; every string or number
    /// in the SCIM JSON by its dotted path, and each group's `externalId`/`displayName`;
    /// every CSV cell by `file.column`.
    pub fn values(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let groups = |out: &mut Vec<(String, String)>, gs: &[OutboundGroup]| {
            for g in gs {
                out.push(("group.id".to_string(), g.id.to_string()));
                out.push(("group.name".to_string(), g.name.clone()));
            }
        };
        match &self.payload {
            Payload::Ldap {
                dn,
                attributes,
                groups: gs,
            } => {
                out.push(("dn".to_string(), dn.clone()));
                for (name, vals) in attributes {
                    for v in vals {
                        out.push((name.clone(), v.clone()));
                    }
                }
                groups(&mut out, gs);
            }
            Payload::Scim { user, groups: gs } => {
                flatten_json("", user, &mut out);
                groups(&mut out, gs);
            }
            Payload::Csv { rows } => {
                for (file, row) in rows {
                    let stem = file.trim_end_matches(".csv");
                    for (col, v) in row {
                        out.push((format!("{stem}.{col}"), v.clone()));
                    }
                }
            }
        }
        out
    }
}

/// Attribute names (and JSON paths) longer than this keep only their last this many
/// bytes. A name is copied once per value, so without a bound a long name over many
/// values is quadratic (a 100 kB key over 20 000 array elements: 2 GB). The tail is kept:
/// it holds the leaf (`givenName`) the matching rules look at.
pub const MAX_ATTRIBUTE_NAME_BYTES: usize = 256;

/// `name`, or its last [`MAX_ATTRIBUTE_NAME_BYTES`] bytes (at a character boundary).
pub fn bounded_name(name: &str) -> &str {
    let mut start = name.len().saturating_sub(MAX_ATTRIBUTE_NAME_BYTES);
    while !name.is_char_boundary(start) {
        start += 1;
    }
    name.get(start..).unwrap_or("")
}

/// Flattens JSON into (dotted path, value) pairs: strings as they are, numbers and
/// booleans as text; array elements share their parent's path, kept to its last
/// [`MAX_ATTRIBUTE_NAME_BYTES`] bytes. Pure, for fuzzing.
pub fn flatten_json(prefix: &str, v: &serde_json::Value, out: &mut Vec<(String, String)>) {
    use serde_json::Value;
    match v {
        Value::Null => {}
        Value::Bool(b) => out.push((prefix.to_string(), b.to_string())),
        Value::Number(n) => out.push((prefix.to_string(), n.to_string())),
        Value::String(s) => out.push((prefix.to_string(), s.clone())),
        Value::Array(items) => {
            for item in items {
                flatten_json(prefix, item, out);
            }
        }
        Value::Object(map) => {
            for (k, item) in map {
                let path = if prefix.is_empty() {
                    bounded_name(k).to_string()
                } else {
                    let k = bounded_name(k);
                    bounded_name(&format!("{prefix}.{k}")).to_string()
                };
                flatten_json(&path, item, out);
            }
        }
    }
}

/// An account Fiktiv manages, read back from the target.
///
/// `Debug` shows attribute names, not values: an account edited by hand may hold
/// anything. Not `Serialize` for the same reason; [`crate::AccountCheck`] is what a
/// caller shows.
#[derive(Clone, PartialEq, Eq)]
pub struct ManagedEntry {
    pub target: TargetName,
    pub person: PersonId,
    /// Where it is in the target: LDAP DN, SCIM resource id, OneRoster `sourcedId`.
    pub entry_id: String,
    pub enabled: bool,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    /// Ids of the groups (school unit and classes) the account is a member of.
    pub groups: BTreeSet<GroupId>,
    /// Every attribute as read (multi-valued).
    pub attributes: BTreeMap<String, Vec<String>>,
    /// When the target says the account last changed (LDAP `modifyTimestamp`, SCIM
    /// `meta.lastModified`, OneRoster `dateLastModified`). Used for the grace period of
    /// two-stage deletion.
    pub modified_at: Option<DateTime<Utc>>,
    /// When it was read (passed in by the caller).
    pub read_at: DateTime<Utc>,
}

impl fmt::Debug for ManagedEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManagedEntry")
            .field("target", &self.target)
            .field("person", &self.person)
            .field("enabled", &self.enabled)
            .field("groups", &self.groups)
            .field("attributes", &self.attributes.keys().collect::<Vec<_>>())
            .field("modified_at", &self.modified_at)
            .field("read_at", &self.read_at)
            .finish()
    }
}

/// One entry of a target as the leak scan reads it: every attribute value, whatever
/// it is. It may hold a real identity (that is what the scan looks for), so values are
/// wiped on drop and `Debug` shows only names.
pub struct ScannedEntry {
    pub target: TargetName,
    /// A locator that holds no attribute value: LDAP `entryUUID`, `Users/<id>`,
    /// `users.csv:row 3`.
    pub locator: String,
    /// The attribute whose value is a readable label for the entry (`dn`, `sourcedId`,
    /// `userName`): a finding shows it only if that attribute did not match.
    pub label_attribute: Option<String>,
    pub values: Vec<(String, Zeroizing<String>)>,
}

impl ScannedEntry {
    pub fn new(target: TargetName, locator: String) -> Self {
        Self {
            target,
            locator,
            label_attribute: None,
            values: Vec::new(),
        }
    }

    /// Adds a value. A long attribute name keeps its tail ([`bounded_name`]).
    pub fn push(&mut self, attribute: &str, value: &str) {
        self.values.push((
            bounded_name(attribute).to_string(),
            Zeroizing::new(value.to_string()),
        ));
    }

    /// The first value of an attribute (case-insensitive name).
    pub fn first(&self, attribute: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(attribute))
            .map(|(_, v)| v.as_str())
    }
}

impl fmt::Debug for ScannedEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScannedEntry")
            .field("target", &self.target)
            .field("locator", &self.locator)
            .field(
                "attributes",
                &self.values.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .finish()
    }
}
