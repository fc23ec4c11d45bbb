//! The OneRoster 1.2 CSV folder target: files and columns, atomic swaps, create,
//! update, disable, delete, account check, drift, leak scan, and the whole-folder
//! egress re-check that refuses to re-publish a row planted by hand.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use crate::common;

use std::path::Path;

use common::*;
use fiktiv_provisioning::oneroster::{parse_csv, OneRosterConfig, OneRosterTarget, SchoolYear};
use fiktiv_provisioning::{
    check_account, plan, push, report, scan, Action, Applied, CaseStatus, Drift, Group, GroupId,
    PlanOptions, Rule, Target, TargetError,
};

fn year() -> SchoolYear {
    SchoolYear {
        id: GroupId::new("ht2025-vt2026").unwrap(),
        title: "2025/2026".into(),
        start: day(2025, 8, 15),
        end: day(2026, 6, 15),
        year: 2026,
    }
}

fn target_in(dir: &Path) -> OneRosterTarget {
    OneRosterTarget::new(
        OneRosterConfig::new(target("oneroster"), dir.join("roster"), year()).unwrap(),
    )
}

fn rows(dir: &Path, file: &str) -> Vec<std::collections::BTreeMap<String, String>> {
    parse_csv(&std::fs::read(dir.join("roster").join(file)).unwrap()).unwrap()
}

fn versions(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(".roster.v-")
        })
        .count()
}

#[tokio::test]
async fn files_columns_and_atomic_versions() {
    let dir = tempfile::tempdir().unwrap();
    let t = target_in(dir.path());
    let guard = guard(&key(), &[]);
    let p = pupil("Ella", "Fiktiv", &[t.name()]);
    assert_eq!(
        push(&t, &guard, &p, at(2025, 9, 1)).await.unwrap(),
        Applied::Created
    );
    let link = dir.path().join("roster");
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    let mut names: Vec<String> = std::fs::read_dir(&link)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "academicSessions.csv",
            "classes.csv",
            "courses.csv",
            "enrollments.csv",
            "manifest.csv",
            "orgs.csv",
            "roles.csv",
            "users.csv"
        ]
    );
    let users = std::fs::read_to_string(link.join("users.csv")).unwrap();
    assert!(users.starts_with(
        "sourcedId,status,dateLastModified,enabledUser,username,userIds,givenName,familyName,middleName,identifier,email,sms,phone,agentSourcedIds,grades,password,userMasterIdentifier,resourceSourcedIds,preferredGivenName,preferredMiddleName,preferredFamilyName,primaryOrgSourcedId,pronouns\r\n"
    ));
    let manifest = rows(dir.path(), "manifest.csv");
    let get = |k: &str| manifest.iter().find(|r| r["propertyName"] == k).unwrap()["value"].clone();
    assert_eq!(get("oneroster.version"), "1.2");
    assert_eq!(get("file.users"), "bulk");
    assert_eq!(get("file.demographics"), "absent");
    assert!(
        !std::fs::read_to_string(link.join("manifest.csv"))
            .unwrap()
            .to_lowercase()
            .contains("fiktiv"),
        "the roster does not announce that its pupils are protected"
    );
    let u = &rows(dir.path(), "users.csv")[0];
    assert_eq!(u["sourcedId"], p.id.to_string());
    assert_eq!(u["enabledUser"], "true");
    assert_eq!(u["dateLastModified"], "2025-09-01T12:00:00Z");
    let e = &rows(dir.path(), "enrollments.csv")[0];
    assert_eq!(
        (e["classSourcedId"].as_str(), e["userSourcedId"].as_str()),
        ("skola-1-5a", p.id.to_string().as_str())
    );
    assert_eq!(rows(dir.path(), "roles.csv")[0]["role"], "student");
    assert_eq!(versions(dir.path()), 1);
    // Every write makes a new version and removes the old one.
    push(
        &t,
        &guard,
        &pupil("Otto", "Prov", &[t.name()]),
        at(2025, 9, 2),
    )
    .await
    .unwrap();
    assert_eq!(versions(dir.path()), 1);
    assert_eq!(rows(dir.path(), "users.csv").len(), 2);
    // A real, non-empty directory at the path is not taken over.
    let other = tempfile::tempdir().unwrap();
    std::fs::create_dir(other.path().join("roster")).unwrap();
    std::fs::write(other.path().join("roster/keep.txt"), "x").unwrap();
    let err = push(&target_in(other.path()), &guard, &p, at(2025, 9, 1))
        .await
        .unwrap_err();
    assert!(matches!(err, TargetError::Config { .. }), "{err}");
    assert!(other.path().join("roster/keep.txt").exists());
}

#[tokio::test]
async fn lifecycle_account_check_and_drift() {
    let dir = tempfile::tempdir().unwrap();
    let t = target_in(dir.path());
    let guard = guard(&key(), &[]);
    let now = at(2025, 9, 1);
    let mut ella = pupil("Ella", "Fiktiv", &[t.name()]);
    let otto = pupil("Otto", "Prov", &[t.name()]);
    push(&t, &guard, &ella, now).await.unwrap();
    push(&t, &guard, &otto, now).await.unwrap();
    assert!(check_account(&t, &ella, now).await.unwrap().ok());

    ella.groups = vec![Group::new("skola-1-6b", "Klass 6B").unwrap()];
    ella.given_name = "Elna".into();
    assert_eq!(
        push(&t, &guard, &ella, now).await.unwrap(),
        Applied::Updated
    );
    let c = check_account(&t, &ella, now).await.unwrap();
    assert!(c.ok(), "{c:?}");

    let later = at(2025, 10, 1);
    t.disable(&guard, &ella.id, later).await.unwrap();
    let e = t.read_one(&ella.id, later).await.unwrap().unwrap();
    assert!(!e.enabled);
    assert_eq!(e.modified_at, Some(later));
    // Two-stage deletion by the target's own time: waits 30 days, then deletes.
    let mut opts = PlanOptions::new(at(2025, 10, 15));
    let p = plan(
        std::slice::from_ref(&otto),
        &t.read_managed(later).await.unwrap(),
        &opts,
    );
    assert!(
        p.is_empty() && p.targets[t.name()].waiting.len() == 1,
        "{p:?}"
    );
    opts.now = at(2025, 11, 2);
    let p = plan(
        std::slice::from_ref(&otto),
        &t.read_managed(later).await.unwrap(),
        &opts,
    );
    assert_eq!(
        p.targets[t.name()].actions,
        vec![Action::Delete {
            person: ella.id,
            entry: ella.id.to_string()
        }]
    );
    t.delete(&guard, &ella.id, opts.now).await.unwrap();
    assert!(t.read_one(&ella.id, opts.now).await.unwrap().is_none());
    // Its class went with it; the school unit stays for Otto.
    assert!(rows(dir.path(), "classes.csv")
        .iter()
        .all(|r| r["sourcedId"] != "skola-1-6b"));
    assert_eq!(rows(dir.path(), "orgs.csv").len(), 1);

    // Drift by hand: edit Otto's given name in users.csv (through the link).
    let path = dir.path().join("roster/users.csv");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace(",Otto,", ",Hacked,");
    std::fs::write(&path, text).unwrap();
    let p = plan(
        std::slice::from_ref(&otto),
        &t.read_managed(now).await.unwrap(),
        &PlanOptions::new(now),
    );
    assert!(
        matches!(&p.targets[t.name()].actions[..], [Action::Update { drift, .. }] if drift == &vec![Drift::GivenName])
    );
    assert_eq!(
        check_account(&t, &otto, now).await.unwrap().mismatched,
        vec!["users.givenName".to_string()]
    );
    push(&t, &guard, &otto, now).await.unwrap();
    assert!(check_account(&t, &otto, now).await.unwrap().ok());
}

#[tokio::test]
async fn leak_scan_and_the_whole_folder_recheck() {
    let dir = tempfile::tempdir().unwrap();
    let t = target_in(dir.path());
    let key = key();
    let real = astrid();
    let index = index_map(&key, &[&real]);
    let guard = guard(&key, &[&real]);
    let now = at(2025, 9, 1);
    push(&t, &guard, &pupil("Ella", "Fiktiv", &[t.name()]), now)
        .await
        .unwrap();
    let clean = t.read_everything().await.unwrap();
    assert!(clean.len() >= 9);
    assert!(scan(&clean, &key, &index).is_empty());
    assert_eq!(report(&[real.case], &[])[0].status, CaseStatus::Clean);

    // Someone pastes the real pupil into users.csv: NFD upper-case name, short number.
    let path = dir.path().join("roster/users.csv");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(&format!(
        "planted-1,,,true,x,,A\u{30A}SA-BRITT,O\u{308}BERG,,{},,,,,,,,,,,,,\r\n",
        real.short_form()
    ));
    std::fs::write(&path, text).unwrap();
    let before = std::fs::read(&path).unwrap();

    let findings = scan(&t.read_everything().await.unwrap(), &key, &index);
    let rules: std::collections::BTreeSet<Rule> = findings.iter().map(|f| f.rule).collect();
    assert!(
        rules.contains(&Rule::Number) && rules.contains(&Rule::NameBirth),
        "{findings:?}"
    );
    assert!(findings
        .iter()
        .all(|f| f.entry == "users.csv:row 3" && f.label.as_deref() == Some("planted-1")));
    assert_eq!(report(&[real.case], &findings)[0].status, CaseStatus::Found);
    let shown = serde_json::to_string(&findings).unwrap();
    assert!(
        !shown.contains("BRITT") && !shown.contains(&real.short_form()),
        "{shown}"
    );

    // Fiktiv will not rewrite (and so re-publish) the folder while that row is in it.
    let err = push(&t, &guard, &pupil("Otto", "Prov", &[t.name()]), now)
        .await
        .unwrap_err();
    match err {
        TargetError::Blocked(b) => {
            assert!(b.person.is_none());
            assert!(
                b.attributes.iter().all(|a| a.starts_with("users.")),
                "{b:?}"
            );
        }
        other => panic!("expected a block, got {other}"),
    }
    assert_eq!(std::fs::read(&path).unwrap(), before, "nothing was written");
}

/// The whole-folder re-check takes each row as one entry: a roster of forty pupils
/// (eighty given and family names in users.csv) is written in full, while a pupil
/// named as the real one is still refused.
#[tokio::test]
async fn a_large_roster_is_checked_row_by_row() {
    let dir = tempfile::tempdir().unwrap();
    let t = target_in(dir.path());
    let key = key();
    let real = astrid();
    let guard = guard(&key, &[&real]);
    let now = at(2025, 9, 1);
    for i in 0..40 {
        let given = format!("Ella{}", char::from(b'a' + (i % 26) as u8));
        let family = format!("Fiktiv{}", char::from(b'a' + (i / 26) as u8));
        assert_eq!(
            push(&t, &guard, &pupil(&given, &family, &[t.name()]), now)
                .await
                .unwrap(),
            Applied::Created,
            "pupil {i}"
        );
    }
    assert_eq!(rows(dir.path(), "users.csv").len(), 40);
    // A real given name in one row and the real family name in another is no leak of
    // either; both are written.
    push(
        &t,
        &guard,
        &pupil(real.first, "Fiktivsson", &[t.name()]),
        now,
    )
    .await
    .unwrap();
    push(&t, &guard, &pupil("Ella", real.last, &[t.name()]), now)
        .await
        .unwrap();
    let before = std::fs::read(dir.path().join("roster/users.csv")).unwrap();
    let err = push(&t, &guard, &pupil(real.first, real.last, &[t.name()]), now)
        .await
        .unwrap_err();
    assert!(matches!(err, TargetError::Blocked(_)), "{err}");
    assert_eq!(
        std::fs::read(dir.path().join("roster/users.csv")).unwrap(),
        before
    );
    assert_eq!(rows(dir.path(), "users.csv").len(), 42);
}

/// `targets test` says what a roster folder can tell about the number scheme: the file
/// takes the number as text in `identifier` (a CSV file has no schema), and whether the
/// importing platform accepts it is not checked. A roster without the number says
/// nothing.
#[tokio::test]
async fn the_number_probe_says_what_a_roster_file_cannot_check() {
    use fiktiv_provisioning::diagnose::Diagnosis;
    use fiktiv_provisioning::model::FictitiousNumber;
    use fiktiv_vault::ids::Country;
    let dir = tempfile::tempdir().unwrap();
    let guard = guard(&key(), &[]);
    let n = FictitiousNumber::new(Country::Se, "20130101TF01").unwrap();

    let t = target_in(dir.path());
    let mut d = Diagnosis::new(t.name().clone());
    t.probe_number(&guard, &n, &mut d).await;
    assert!(d.probes.is_empty(), "{d:?}");

    let mut cfg =
        OneRosterConfig::new(target("oneroster"), dir.path().join("roster"), year()).unwrap();
    cfg.number_in_identifier = true;
    let t = OneRosterTarget::new(cfg);
    let mut d = Diagnosis::new(t.name().clone());
    t.probe_number(&guard, &n, &mut d).await;
    let step = d.probes.iter().find(|p| p.step == "number").unwrap();
    assert!(step.ok, "{d:?}");
    assert!(step.detail.contains("not checked"), "{d:?}");
    // Nothing was written by the probe.
    assert!(!dir.path().join("roster").join("users.csv").exists());
}
