//! The egress guard: a fictitious pupil whose name equals another pupil's real name is
//! refused on every target, before anything is written, and the refusal names the
//! rule and attributes but never the value. Beside it, the labelled leak-scan corpus
//! (`leak_corpus`): the matcher the guard and the scan share, record by record.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use crate::common;
#[path = "../leak_corpus/mod.rs"]
mod leak_corpus;

use common::*;
use fiktiv_provisioning::ldap::{LdapConfig, LdapSchema, LdapSecurity, LdapTarget};
use fiktiv_provisioning::oneroster::{OneRosterConfig, OneRosterTarget, SchoolYear};
use fiktiv_provisioning::scim::{ScimConfig, ScimTarget};
use fiktiv_provisioning::template::Template;
use fiktiv_provisioning::{push, FictitiousNumber, GroupId, Rule, Target, TargetError};
use fiktiv_vault::ids::Country;
use secrecy::SecretString;

fn targets(dir: &std::path::Path) -> Vec<Box<dyn Target>> {
    let mut l = LdapConfig::new(
        target("ldap"),
        "ldap://127.0.0.1:1/",
        LdapSecurity::Plain,
        "cn=admin,dc=example,dc=org",
        SecretString::from("x"),
        "ou=people,dc=example,dc=org",
        "ou=groups,dc=example,dc=org",
    )
    .unwrap();
    l.schema = LdapSchema::Feide {
        realm: "skole.example.org".into(),
    };
    l.mail = Some(Template::parse("{given}.{family}@skola.example").unwrap());
    let s = ScimConfig::new(
        target("scim"),
        "http://127.0.0.1:1/v2",
        SecretString::from("t"),
    )
    .unwrap();
    let mut o = OneRosterConfig::new(target("csv"), dir.join("roster"), school_year()).unwrap();
    o.number_in_identifier = true;
    vec![
        Box::new(LdapTarget::new(l).unwrap()),
        Box::new(ScimTarget::new(s).unwrap()),
        Box::new(OneRosterTarget::new(o)),
    ]
}

pub fn school_year() -> SchoolYear {
    SchoolYear {
        id: GroupId::new("ht2025-vt2026").unwrap(),
        title: "2025/2026".into(),
        start: day(2025, 8, 15),
        end: day(2026, 6, 15),
        year: 2026,
    }
}

#[test]
fn a_fictitious_name_equal_to_another_pupils_real_name_is_blocked_everywhere() {
    let key = key();
    let real = astrid();
    let guard = guard(&key, &[&real]);
    let dir = tempfile::tempdir().unwrap();
    let all = targets(dir.path());
    for (given, family) in [
        ("Åsa-Britt", "Öberg"),
        ("A\u{30A}SA BRITT", "O\u{308}BERG"),
        ("Asa-Britt", "Oberg"),
    ] {
        let p = pupil(given, family, &[]);
        for t in &all {
            let rec = t.render(&p).unwrap();
            let blocked = guard.check(&rec).unwrap_err();
            assert_eq!(blocked.rule, Rule::FullName, "{}", t.name());
            assert_eq!(blocked.person, Some(p.id));
            assert!(!blocked.attributes.is_empty());
            let shown = format!(
                "{blocked} {blocked:?} {}",
                serde_json::to_string(&blocked).unwrap()
            );
            for v in ["Åsa", "Öberg", "Oberg", "BRITT", "britt", "oberg", "ÖBERG"] {
                assert!(!shown.contains(v), "{shown} shows {v}");
            }
            // The record's Debug shows attribute names only.
            let dbg = format!("{rec:?}");
            assert!(!dbg.contains("Britt") && !dbg.contains("BRITT"), "{dbg}");
        }
    }
}

#[test]
fn a_clean_pupil_passes_and_is_cleared() {
    let key = key();
    let real = astrid();
    let guard = guard(&key, &[&real]);
    let dir = tempfile::tempdir().unwrap();
    // The same first name alone, or the same family name alone, is not a match.
    for (g, f) in [
        ("Ella", "Fiktiv"),
        ("Åsa-Britt", "Fiktiv"),
        ("Ella", "Öberg"),
    ] {
        let p = pupil(g, f, &[]);
        for t in targets(dir.path()) {
            let rec = t.render(&p).unwrap();
            guard.check(&rec).unwrap();
            assert_eq!(guard.clear(rec).unwrap().record().person, p.id);
        }
    }
}

#[test]
fn a_fictitious_number_equal_to_a_real_one_is_blocked() {
    let key = key();
    let real = astrid();
    let guard = guard(&key, &[&real]);
    let dir = tempfile::tempdir().unwrap();
    let p = pupil("Ella", "Fiktiv", &[])
        .with_number(FictitiousNumber::new(Country::Se, &real.number).unwrap());
    let all = targets(dir.path());
    // LDAP (Feide: norEduPersonLIN) and OneRoster (identifier) carry the number.
    for t in [&all[0], &all[2]] {
        let blocked = guard.check(&t.render(&p).unwrap()).unwrap_err();
        assert_eq!(blocked.rule, Rule::Number);
        assert!(!format!("{blocked}").contains(&real.number[2..8]));
    }
    let ldap = all[0].render(&p).unwrap();
    let attrs: Vec<String> = ldap.values().into_iter().map(|(n, _)| n).collect();
    assert!(attrs.contains(&"norEduPersonLIN".to_string()));
    assert!(
        !attrs.iter().any(|a| a == "norEduPersonNIN"),
        "never norEduPersonNIN"
    );
    assert_eq!(
        guard.check(&ldap).unwrap_err().attributes,
        vec!["norEduPersonLIN".to_string()]
    );
}

#[tokio::test]
async fn a_blocked_push_writes_nothing() {
    let key = key();
    let real = astrid();
    let guard = guard(&key, &[&real]);
    let dir = tempfile::tempdir().unwrap();
    let all = targets(dir.path());
    let csv = &all[2];
    let p = pupil("Åsa-Britt", "Öberg", &[csv.name()]);
    match push(csv.as_ref(), &guard, &p, at(2025, 9, 1)).await {
        Err(TargetError::Blocked(b)) => assert_eq!(b.rule, Rule::FullName),
        other => panic!("expected a block, got {other:?}"),
    }
    assert!(
        !dir.path().join("roster").exists(),
        "nothing may be written"
    );
    // LDAP and SCIM are blocked before any connection (their URLs lead nowhere).
    for t in &all[..2] {
        let err = push(t.as_ref(), &guard, &p, at(2025, 9, 1))
            .await
            .unwrap_err();
        assert!(matches!(err, TargetError::Blocked(_)), "{err}");
    }
}
