//! Batched LDAP writes (`push_many` / `LdapTarget::upsert_many`) against a real slapd:
//! the same outcome as one-by-one `push`, with the awkward cases the batch must fall
//! back on (an entry the plan thought new, a DN taken by someone else, a stale group
//! membership, a record the guard blocks, existing and missing groups).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use crate::common;

use common::*;
use fiktiv_provisioning::ldap::{LdapConfig, LdapSecurity, LdapTarget};
use fiktiv_provisioning::{
    check_account, plan, push, push_many, Applied, Expect, FictitiousPerson, Group, PlanOptions,
    Target, TargetError,
};
use fiktiv_tests::Slapd;
use secrecy::SecretString;

fn target_for(slapd: &Slapd) -> LdapTarget {
    let cfg = LdapConfig::new(
        target("ldap"),
        &slapd.url(),
        LdapSecurity::Plain,
        &slapd.admin_dn(),
        SecretString::from(slapd.admin_password().to_string()),
        &slapd.people_dn(),
        &slapd.groups_dn(),
    )
    .unwrap();
    LdapTarget::new(cfg).unwrap()
}

fn class(p: FictitiousPerson, id: &str) -> FictitiousPerson {
    let mut p = p;
    p.groups = vec![Group::new(id, &format!("Klass {id}")).unwrap()];
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_writes_what_push_writes_and_falls_back_where_it_must() {
    let slapd = Slapd::start().unwrap();
    let t = target_for(&slapd);
    let key = key();
    let real = astrid();
    let guard = guard(&key, &[&real]);
    let now = at(2025, 9, 1);

    // Before the batch: one pupil pushed the ordinary way (so `skola-1` and its class
    // exist), and one entry at a DN a new record will want, not managed by Fiktiv.
    let existing = pupil("Otto", "Prov", &[t.name()]);
    push(&t, &guard, &existing, now).await.unwrap();
    let squatter = pupil("Maja", "Upptagen", &[t.name()]);
    let squatter_uid = format!("maja.upptagen.{}", squatter.id.short());
    slapd
        .ldapadd(&format!(
            "dn: uid={squatter_uid},{}\nobjectClass: inetOrgPerson\nuid: {squatter_uid}\ncn: X\nsn: X\n",
            slapd.people_dn()
        ))
        .unwrap();

    // New pupils, across an existing class and two new ones.
    let mut fresh: Vec<FictitiousPerson> = (0..24)
        .map(|i| {
            let p = pupil("Ella", &format!("Ny{i}"), &[t.name()]);
            match i % 3 {
                0 => p,
                1 => class(p, "skola-1-6b"),
                _ => class(p, "skola-1-7c"),
            }
        })
        .collect();
    // A stale membership: a group that holds the DN one new pupil will get (left by an
    // entry deleted by hand), which that pupil must not stay in.
    let stale = &fresh[5];
    let stale_dn = format!(
        "uid=ella.{}.{},{}",
        stale.family_name.to_lowercase(),
        stale.id.short(),
        slapd.people_dn()
    );
    slapd
        .ldapadd(&format!(
            "dn: cn=skola-1-gammal,{g}\nobjectClass: groupOfNames\ncn: skola-1-gammal\n\
             member: {stale_dn}\nmember: cn=someone else,{g}\n",
            g = slapd.groups_dn()
        ))
        .unwrap();

    // The existing pupil changes class; the plan says Update (Expect::Any). Another is
    // marked new by a stale plan although it exists: it must be updated, not refused.
    let moved = class(existing.clone(), "skola-1-7c");
    let blocked = pupil(real.first, real.last, &[t.name()]);
    fresh.push(squatter.clone());
    fresh.push(blocked.clone());

    let mut batch: Vec<(&FictitiousPerson, Expect)> =
        fresh.iter().map(|p| (p, Expect::New)).collect();
    batch.push((&moved, Expect::New)); // stale plan: it exists
    let results = push_many(&t, &guard, &batch, now).await.unwrap();
    assert_eq!(results.len(), batch.len());

    for (i, r) in results.iter().enumerate().take(24) {
        assert_eq!(r.as_ref().unwrap(), &Applied::Created, "record {i}");
    }
    assert!(
        matches!(results[24], Err(TargetError::Conflict { op: "add", .. })),
        "{:?}",
        results[24]
    );
    assert!(
        matches!(results[25], Err(TargetError::Blocked(_))),
        "{:?}",
        results[25]
    );
    assert_eq!(results[26].as_ref().unwrap(), &Applied::Updated);

    // Every account is right, read back from slapd.
    for p in fresh.iter().take(24).chain([&moved]) {
        let c = check_account(&t, p, now).await.unwrap();
        assert!(c.ok(), "{c:?}");
    }
    // The stale membership is gone; the group keeps its other member.
    let old = slapd
        .ldapsearch("(cn=skola-1-gammal)", &["member"])
        .unwrap();
    assert!(!old.contains(&stale_dn), "{old}");
    assert!(old.contains("someone else"), "{old}");
    // Batched: the new class was created with its eight members in one operation.
    let log = slapd.log().unwrap();
    let group_ops = |op: &str| {
        log.matches(&format!("{op} dn=\"cn=skola-1-6b,{}\"", slapd.groups_dn()))
            .count()
    };
    assert_eq!((group_ops("ADD"), group_ops("MOD")), (1, 0), "{log}");
    // The blocked record never reached the directory.
    assert!(!slapd.log().unwrap().contains(&blocked.id.to_string()));
    assert!(t.read_one(&blocked.id, now).await.unwrap().is_none());
    // The class the existing pupil left lost them, and a second run has nothing to do.
    let left = slapd.ldapsearch("(cn=skola-1-5a)", &["member"]).unwrap();
    assert!(!left.contains(&existing.id.short()), "{left}");
    let desired: Vec<FictitiousPerson> = fresh.iter().take(24).cloned().chain([moved]).collect();
    let actual = t.read_managed(now).await.unwrap();
    let p = plan(&desired, &actual, &PlanOptions::new(now));
    assert!(p.is_empty(), "{p:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_batch_and_an_empty_one() {
    let slapd = Slapd::start().unwrap();
    let t = target_for(&slapd);
    let key = key();
    let guard = guard(&key, &[]);
    let now = at(2025, 9, 1);
    assert!(push_many(&t, &guard, &[], now).await.unwrap().is_empty());
    let a = pupil("Liv", "Liten", &[t.name()]);
    let b = pupil("Per", "Liten", &[t.name()]);
    let r = push_many(&t, &guard, &[(&a, Expect::New), (&b, Expect::Any)], now)
        .await
        .unwrap();
    assert!(r.iter().all(|r| matches!(r, Ok(Applied::Created))), "{r:?}");
    for p in [&a, &b] {
        assert!(check_account(&t, p, now).await.unwrap().ok());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_in_several_chunks_adds_to_groups_it_created() {
    let slapd = Slapd::start().unwrap();
    let t = target_for(&slapd);
    let key = key();
    let guard = guard(&key, &[&astrid()]);
    let now = at(2025, 9, 1);
    // 520 pupils: three chunks, so the later ones join groups the first one created.
    let persons: Vec<FictitiousPerson> = (0..520)
        .map(|i| {
            class(
                pupil("Ella", &format!("Many{i}"), &[t.name()]),
                &format!("skola-1-{}", i % 4),
            )
        })
        .collect();
    let batch: Vec<(&FictitiousPerson, Expect)> =
        persons.iter().map(|p| (p, Expect::New)).collect();
    let results = push_many(&t, &guard, &batch, now).await.unwrap();
    assert!(results.iter().all(|r| matches!(r, Ok(Applied::Created))));
    let actual = t.read_managed(now).await.unwrap();
    assert_eq!(actual.len(), 520);
    assert!(plan(&persons, &actual, &PlanOptions::new(now)).is_empty());
    let unit = slapd.ldapsearch("(cn=skola-1)", &["member"]).unwrap();
    assert_eq!(unit.matches("member: ").count(), 520);
}
