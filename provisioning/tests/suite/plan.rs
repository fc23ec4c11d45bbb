//! `plan`: create/update/disable/delete per target, the safety check and two-stage
//! deletion. Unit tests and properties.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use crate::common;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use common::*;
use fiktiv_provisioning::{
    plan, Action, Drift, FictitiousPerson, ManagedEntry, Plan, PlanOptions, TargetName,
};
use proptest::prelude::*;

fn entry(p: &FictitiousPerson, t: &TargetName, now: DateTime<Utc>) -> ManagedEntry {
    ManagedEntry {
        target: t.clone(),
        person: p.id,
        entry_id: format!("e-{}", p.id),
        enabled: true,
        given_name: Some(p.given_name.clone()),
        family_name: Some(p.family_name.clone()),
        groups: p.expected_groups(),
        attributes: BTreeMap::new(),
        modified_at: Some(now),
        read_at: now,
    }
}

#[test]
fn create_update_nothing() {
    let t = target("ldap");
    let now = at(2025, 9, 1);
    let a = pupil("Ella", "Fiktiv", &[&t]);
    let b = pupil("Otto", "Prov", &[&t]);
    let c = pupil("Maja", "Test", &[&t]);
    let mut eb = entry(&b, &t, now);
    eb.given_name = Some("Oto".into());
    eb.groups.clear();
    let ec = entry(&c, &t, now);
    let p = plan(
        &[a.clone(), b.clone(), c],
        &[eb, ec],
        &PlanOptions::new(now),
    );
    let actions = &p.targets[&t].actions;
    assert!(
        actions.contains(&Action::Create { person: a.id }),
        "{actions:?}"
    );
    assert!(actions.contains(&Action::Update {
        person: b.id,
        entry: format!("e-{}", b.id),
        drift: vec![Drift::GivenName, Drift::Groups]
    }));
    assert_eq!(actions.len(), 2);
}

#[test]
fn removal_is_two_stage_with_a_grace_period() {
    let t = target("scim");
    let now = at(2025, 9, 1);
    let gone = pupil("Ella", "Fiktiv", &[&t]);
    let mut opts = PlanOptions::new(now);
    opts.grace = Duration::days(30);

    // Enabled and not wanted: disable first.
    let e = entry(&gone, &t, now - Duration::days(100));
    let p = plan(&[], std::slice::from_ref(&e), &opts);
    assert_eq!(
        p.targets[&t].actions,
        vec![Action::Disable {
            person: gone.id,
            entry: e.entry_id.clone()
        }]
    );
    // Disabled 10 days ago: waits until day 30.
    let mut d = e.clone();
    d.enabled = false;
    d.modified_at = Some(now - Duration::days(10));
    let p = plan(&[], &[d.clone()], &opts);
    assert!(p.targets[&t].actions.is_empty());
    assert_eq!(
        p.targets[&t].waiting,
        vec![(gone.id, d.entry_id.clone(), now + Duration::days(20))]
    );
    // Disabled 31 days ago: delete.
    d.modified_at = Some(now - Duration::days(31));
    let p = plan(&[], &[d.clone()], &opts);
    assert_eq!(
        p.targets[&t].actions,
        vec![Action::Delete {
            person: gone.id,
            entry: d.entry_id.clone()
        }]
    );
    // Disabled with no known time: never deleted in this plan.
    d.modified_at = None;
    assert!(plan(&[], &[d], &opts).is_empty());
    // A disabled account that is wanted again is re-enabled by an update.
    let mut back = e;
    back.enabled = false;
    let p = plan(std::slice::from_ref(&gone), &[back], &opts);
    assert!(
        matches!(&p.targets[&t].actions[..], [Action::Update { drift, .. }] if drift == &vec![Drift::Disabled])
    );
}

#[test]
fn the_safety_check_refuses_mass_removal_unless_forced() {
    let t = target("csv");
    let now = at(2025, 9, 1);
    let people: Vec<_> = (0..20)
        .map(|i| pupil("Ella", &format!("Fiktiv{i}"), &[&t]))
        .collect();
    let actual: Vec<_> = people.iter().map(|p| entry(p, &t, now)).collect();
    let opts = PlanOptions::new(now); // 20 % of 20 = 4
                                      // An empty desired state (a bug upstream) must not disable everyone.
    let p = plan(&[], &actual, &opts);
    let tp = &p.targets[&t];
    assert!(tp.actions.is_empty());
    let r = tp.refused.as_ref().unwrap();
    assert_eq!((r.removals, r.managed), (20, 20));
    // Four removals are within the share.
    let p = plan(&people[4..], &actual, &opts);
    assert_eq!(p.targets[&t].actions.len(), 4);
    assert!(p.targets[&t].refused.is_none());
    // Forced: everything.
    let mut forced = opts;
    forced.force = true;
    assert_eq!(plan(&[], &actual, &forced).targets[&t].actions.len(), 20);
}

#[test]
fn duplicates_and_other_targets() {
    let (a, b) = (target("a"), target("b"));
    let now = at(2025, 9, 1);
    let p1 = pupil("Ella", "Fiktiv", &[&a]);
    let e1 = entry(&p1, &a, now);
    let mut dup = entry(&p1, &a, now);
    dup.entry_id = "zz-duplicate".into();
    let on_b = entry(&p1, &b, now); // the person no longer has target b
    let p = plan(
        std::slice::from_ref(&p1),
        &[e1, dup, on_b],
        &PlanOptions::new(now),
    );
    assert_eq!(
        p.targets[&a].actions,
        vec![Action::Disable {
            person: p1.id,
            entry: "zz-duplicate".into()
        }]
    );
    assert_eq!(
        p.targets[&b].actions,
        vec![Action::Disable {
            person: p1.id,
            entry: format!("e-{}", p1.id)
        }]
    );
}

/// Applies a plan to the actual state the way a target would.
fn apply(
    plan: &Plan,
    desired: &[FictitiousPerson],
    actual: &mut Vec<ManagedEntry>,
    now: DateTime<Utc>,
) {
    for (t, a) in plan.actions() {
        match a {
            Action::Create { person } => {
                let p = desired.iter().find(|p| p.id == *person).unwrap();
                let mut e = entry(p, t, now);
                e.entry_id = format!("new-{}-{t}", p.id);
                actual.push(e);
            }
            Action::Update {
                person, entry: id, ..
            } => {
                let p = desired.iter().find(|p| p.id == *person).unwrap();
                let e = actual
                    .iter_mut()
                    .find(|e| e.entry_id == *id && e.target == *t)
                    .unwrap();
                *e = ManagedEntry {
                    entry_id: id.clone(),
                    ..entry(p, t, now)
                };
            }
            Action::Disable { entry: id, .. } => {
                let e = actual
                    .iter_mut()
                    .find(|e| e.entry_id == *id && e.target == *t)
                    .unwrap();
                e.enabled = false;
                e.modified_at = Some(now);
            }
            Action::Delete { entry: id, .. } => {
                actual.retain(|e| !(e.entry_id == *id && e.target == *t))
            }
        }
    }
}

fn arb_state() -> impl Strategy<Value = (Vec<FictitiousPerson>, Vec<ManagedEntry>, u8)> {
    let targets = [target("t1"), target("t2")];
    (
        prop::collection::vec(
            (
                any::<bool>(),
                any::<bool>(),
                any::<u8>(),
                0u8..4,
                any::<bool>(),
            ),
            0..30,
        ),
        any::<u8>(),
    )
        .prop_map(move |(specs, share)| {
            let now = at(2025, 9, 1);
            let mut desired = Vec::new();
            let mut actual = Vec::new();
            for (i, (wanted, exists, age, tmask, enabled)) in specs.into_iter().enumerate() {
                let ts: Vec<&TargetName> = targets
                    .iter()
                    .enumerate()
                    .filter(|(k, _)| tmask & (1 << k) != 0)
                    .map(|(_, t)| t)
                    .collect();
                let p = pupil("Ella", &format!("Fiktiv{i}"), &ts);
                if exists {
                    for t in &targets {
                        let mut e = entry(&p, t, now - Duration::days(i64::from(age)));
                        e.enabled = enabled;
                        if i % 3 == 0 {
                            e.given_name = Some("Drift".into());
                        }
                        actual.push(e);
                    }
                }
                if wanted {
                    desired.push(p);
                }
            }
            (desired, actual, share)
        })
}

proptest! {
    #[test]
    fn plan_properties((desired, actual, share) in arb_state(), force in any::<bool>()) {
        let now = at(2025, 9, 1);
        let mut opts = PlanOptions::new(now);
        opts.max_removal_share = f64::from(share) / 255.0;
        opts.force = force;
        let p = plan(&desired, &actual, &opts);
        for (t, tp) in &p.targets {
            let managed = actual.iter().filter(|e| &e.target == t).count();
            let removals = tp.actions.iter().filter(|a| a.is_removal()).count();
            let allowed = ((managed as f64 * opts.max_removal_share).floor() as usize).max(opts.min_removals_allowed);
            // The safety check.
            prop_assert!(force || removals <= allowed);
            prop_assert!(tp.refused.is_none() || removals == 0);
            for a in &tp.actions {
                match a {
                    // Only disabled accounts past the grace period are deleted.
                    Action::Delete { entry, .. } => {
                        let e = actual.iter().find(|e| &e.entry_id == entry && &e.target == t).unwrap();
                        prop_assert!(!e.enabled);
                        prop_assert!(e.modified_at.unwrap() + opts.grace <= now);
                    }
                    // Wanted persons are never removed.
                    Action::Disable { person, entry } => {
                        let e = actual.iter().find(|e| &e.entry_id == entry && &e.target == t).unwrap();
                        prop_assert!(e.enabled);
                        let wanted = desired.iter().any(|d| d.id == *person && d.targets.contains(t));
                        prop_assert!(!wanted);
                    }
                    Action::Create { person } => {
                        prop_assert!(!actual.iter().any(|e| e.person == *person && &e.target == t));
                    }
                    Action::Update { .. } => {}
                }
            }
            // Every wanted person ends up with an account.
            for d in desired.iter().filter(|d| d.targets.contains(t)) {
                let has = actual.iter().any(|e| e.person == d.id && &e.target == t);
                let creates = tp.actions.contains(&Action::Create { person: d.id });
                prop_assert!(has != creates);
            }
        }
        // Applying the plan (forced) converges: the next plan has nothing to do but wait.
        let mut forced = opts;
        forced.force = true;
        let p = plan(&desired, &actual, &forced);
        let mut state = actual.clone();
        apply(&p, &desired, &mut state, now);
        let again = plan(&desired, &state, &forced);
        prop_assert!(again.is_empty(), "{:?}", again);
        // Deterministic.
        prop_assert_eq!(plan(&desired, &actual, &opts), plan(&desired, &actual, &opts));
        let people: BTreeSet<_> = desired.iter().map(|d| d.id).collect();
        prop_assert_eq!(people.len(), desired.len());
    }
}
