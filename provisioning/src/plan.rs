//! Desired state against actual state: what to create, update, disable and delete on
//! each target. Pure: the time is passed in.
//!
//! Removal has two stages. An account that should not exist is first disabled; it is
//! deleted only when it has stayed disabled for the grace period (judged by the
//! target's own modification time). A safety check refuses to remove more than a
//! configured share of a target's managed accounts in one plan, unless forced: a wrong
//! or empty desired state must not wipe a directory.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::model::{FictitiousPerson, PersonId, TargetName};
use crate::record::ManagedEntry;

/// What differs between an account and the desired person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Drift {
    GivenName,
    FamilyName,
    Groups,
    Disabled,
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "lowercase")]
pub enum Action {
    Create {
        person: PersonId,
    },
    Update {
        person: PersonId,
        entry: String,
        drift: Vec<Drift>,
    },
    Disable {
        person: PersonId,
        entry: String,
    },
    Delete {
        person: PersonId,
        entry: String,
    },
}

impl Action {
    pub fn person(&self) -> PersonId {
        match self {
            Action::Create { person }
            | Action::Update { person, .. }
            | Action::Disable { person, .. }
            | Action::Delete { person, .. } => *person,
        }
    }

    pub fn is_removal(&self) -> bool {
        matches!(self, Action::Disable { .. } | Action::Delete { .. })
    }
}

/// Why removals on a target were held back.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Refusal {
    /// Removals (disable + delete) the plan would have made.
    pub removals: usize,
    /// Managed accounts on the target.
    pub managed: usize,
    /// The largest share allowed without `force`.
    pub max_share: f64,
}

/// The plan for one target.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TargetPlan {
    pub actions: Vec<Action>,
    /// Disabled accounts still within the grace period: (person, entry, delete after).
    pub waiting: Vec<(PersonId, String, DateTime<Utc>)>,
    /// Set when removals were held back by the safety check; they are not in `actions`.
    pub refused: Option<Refusal>,
}

/// The plan for every target.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Plan {
    pub targets: BTreeMap<TargetName, TargetPlan>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.targets.values().all(|t| t.actions.is_empty())
    }

    pub fn actions(&self) -> impl Iterator<Item = (&TargetName, &Action)> {
        self.targets
            .iter()
            .flat_map(|(t, p)| p.actions.iter().map(move |a| (t, a)))
    }
}

/// Settings of [`plan`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlanOptions {
    /// The time of planning.
    pub now: DateTime<Utc>,
    /// How long an account stays disabled before it is deleted.
    pub grace: Duration,
    /// The largest share (0.0..=1.0) of a target's managed accounts one plan may remove.
    pub max_removal_share: f64,
    /// Up to this many removals are always allowed, whatever the share.
    pub min_removals_allowed: usize,
    /// Remove even beyond the share.
    pub force: bool,
}

impl PlanOptions {
    pub fn new(now: DateTime<Utc>) -> Self {
        Self {
            now,
            grace: Duration::days(30),
            max_removal_share: 0.2,
            min_removals_allowed: 2,
            force: false,
        }
    }
}

fn drift(person: &FictitiousPerson, entry: &ManagedEntry) -> Vec<Drift> {
    let mut d = Vec::new();
    if entry.given_name.as_deref() != Some(person.given_name.as_str()) {
        d.push(Drift::GivenName);
    }
    if entry.family_name.as_deref() != Some(person.family_name.as_str()) {
        d.push(Drift::FamilyName);
    }
    if entry.groups != person.expected_groups() {
        d.push(Drift::Groups);
    }
    if !entry.enabled {
        d.push(Drift::Disabled);
    }
    d
}

/// Plans create/update/disable/delete per target from the desired persons (each with
/// its targets) and the managed accounts read back from the targets.
///
/// Targets are those named by any desired person or any actual entry. When one person
/// has several accounts on a target, the first enabled one is kept and the others are
/// removed. Output order is deterministic.
pub fn plan(desired: &[FictitiousPerson], actual: &[ManagedEntry], opts: &PlanOptions) -> Plan {
    let mut want: BTreeMap<&TargetName, BTreeMap<PersonId, &FictitiousPerson>> = BTreeMap::new();
    for p in desired {
        for t in &p.targets {
            want.entry(t).or_default().insert(p.id, p);
        }
    }
    let mut have: BTreeMap<&TargetName, BTreeMap<PersonId, Vec<&ManagedEntry>>> = BTreeMap::new();
    for e in actual {
        have.entry(&e.target)
            .or_default()
            .entry(e.person)
            .or_default()
            .push(e);
    }
    let targets: BTreeSet<&TargetName> = want.keys().chain(have.keys()).copied().collect();
    let empty_want = BTreeMap::new();
    let empty_have = BTreeMap::new();

    let mut out = Plan::default();
    for t in targets {
        let w = want.get(t).unwrap_or(&empty_want);
        let h = have.get(t).unwrap_or(&empty_have);
        let mut tp = TargetPlan::default();
        let mut removals = Vec::new();
        let managed: usize = h.values().map(Vec::len).sum();

        for (id, person) in w {
            let mut entries: Vec<&ManagedEntry> = h.get(id).cloned().unwrap_or_default();
            entries.sort_by(|a, b| b.enabled.cmp(&a.enabled).then(a.entry_id.cmp(&b.entry_id)));
            let mut iter = entries.into_iter();
            match iter.next() {
                None => tp.actions.push(Action::Create { person: *id }),
                Some(keep) => {
                    let d = drift(person, keep);
                    if !d.is_empty() {
                        tp.actions.push(Action::Update {
                            person: *id,
                            entry: keep.entry_id.clone(),
                            drift: d,
                        });
                    }
                }
            }
            for extra in iter {
                remove(extra, opts, &mut removals, &mut tp.waiting);
            }
        }
        for (id, entries) in h {
            if w.contains_key(id) {
                continue;
            }
            let mut entries = entries.clone();
            entries.sort_by(|a, b| a.entry_id.cmp(&b.entry_id));
            for e in entries {
                remove(e, opts, &mut removals, &mut tp.waiting);
            }
        }

        let allowed = ((managed as f64) * opts.max_removal_share.clamp(0.0, 1.0)).floor() as usize;
        let allowed = allowed.max(opts.min_removals_allowed);
        if removals.len() > allowed && !opts.force {
            tracing::warn!(
                target_name = %t,
                removals = removals.len(),
                managed,
                "plan refused: too many removals"
            );
            tp.refused = Some(Refusal {
                removals: removals.len(),
                managed,
                max_share: opts.max_removal_share,
            });
        } else {
            tp.actions.extend(removals);
        }
        out.targets.insert(t.clone(), tp);
    }
    out
}

/// First stage (disable) for an enabled account; second stage (delete) for one that
/// has been disabled for the grace period. A disabled account with no modification
/// time is deleted only after the grace period counted from now, i.e. never in this
/// plan: it waits.
fn remove(
    e: &ManagedEntry,
    opts: &PlanOptions,
    removals: &mut Vec<Action>,
    waiting: &mut Vec<(PersonId, String, DateTime<Utc>)>,
) {
    if e.enabled {
        removals.push(Action::Disable {
            person: e.person,
            entry: e.entry_id.clone(),
        });
        return;
    }
    let since = e.modified_at.unwrap_or(opts.now);
    let due = since + opts.grace;
    if due <= opts.now && e.modified_at.is_some() {
        removals.push(Action::Delete {
            person: e.person,
            entry: e.entry_id.clone(),
        });
    } else {
        waiting.push((e.person, e.entry_id.clone(), due));
    }
}

/// Groups plan actions per person, for callers that apply them person by person.
pub fn by_person(plan: &Plan) -> HashMap<PersonId, Vec<(TargetName, Action)>> {
    let mut m: HashMap<PersonId, Vec<(TargetName, Action)>> = HashMap::new();
    for (t, a) in plan.actions() {
        m.entry(a.person())
            .or_default()
            .push((t.clone(), a.clone()));
    }
    m
}
