//! The OneRoster 1.2 CSV folder target: files and columns, atomic swaps, create,
//! update, disable, delete, account check, drift, leak scan, the whole-folder
//! egress re-check that refuses to re-publish a row planted by hand, the relations
//! between a pupil and its guardians, and usernames made like ordinary pupils'.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use crate::common;

use std::path::Path;

use common::*;
use fiktiv_provisioning::oneroster::{
    parse_csv, Collision, OneRosterConfig, OneRosterTarget, SchoolYear,
};
use fiktiv_provisioning::template::Template;
use fiktiv_provisioning::{
    check_account, plan, push, report, scan, Action, Applied, CaseStatus, Drift, FictitiousPerson,
    Group, GroupId, PersonId, PersonKind, PlanOptions, Rule, SchoolUnit, Target, TargetError,
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

/// The scan reads every file of the folder, not only the roster's: a copy left beside
/// it (`users.csv.bak`, `export.txt`) holding the real number is found there, and the
/// scan's scope lists every file it read, those two among them.
#[tokio::test]
async fn a_stray_file_in_the_folder_is_read_and_listed_in_the_scope() {
    let dir = tempfile::tempdir().unwrap();
    let t = target_in(dir.path());
    let key = key();
    let real = astrid();
    let index = index_map(&key, &[&real]);
    let guard = guard(&key, &[&real]);
    push(
        &t,
        &guard,
        &pupil("Ella", "Fiktiv", &[t.name()]),
        at(2025, 9, 1),
    )
    .await
    .unwrap();
    let written: Vec<String> = t.scan_scope().await.unwrap();
    assert!(written.contains(&"users.csv".to_string()), "{written:?}");
    assert!(scan(&t.read_everything().await.unwrap(), &key, &index).is_empty());

    let folder = dir.path().join("roster");
    std::fs::write(
        folder.join("export.txt"),
        format!("note,id\r\nelev i 3B,{}\r\n", real.short_form()),
    )
    .unwrap();
    std::fs::write(
        folder.join("users.csv.bak"),
        format!("sourcedId,identifier\nold-1,{}\n", real.number),
    )
    .unwrap();
    let scope = t.scan_scope().await.unwrap();
    for f in ["export.txt", "users.csv.bak"] {
        assert!(scope.contains(&f.to_string()), "{f}: {scope:?}");
    }
    // Every file Fiktiv wrote is still in it, and nothing else was added.
    assert_eq!(scope.len(), written.len() + 2, "{scope:?}");
    let findings = scan(&t.read_everything().await.unwrap(), &key, &index);
    for (file, column) in [
        ("export.txt:row 2", "export.txt.id"),
        ("users.csv.bak:row 2", "users.csv.bak.identifier"),
    ] {
        let f = findings
            .iter()
            .find(|f| f.entry == file)
            .unwrap_or_else(|| panic!("nothing found in {file}: {findings:?}"));
        assert_eq!(f.rule, Rule::Number, "{f:?}");
        assert_eq!(f.attributes, vec![column.to_string()], "{f:?}");
        assert_eq!(f.cases, vec![real.case]);
    }
    assert_eq!(report(&[real.case], &findings)[0].status, CaseStatus::Found);
    let shown = serde_json::to_string(&findings).unwrap();
    assert!(
        !shown.contains(&real.number) && !shown.contains(&real.short_form()),
        "a finding shows the real number"
    );
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

/// The OneRoster 1.2 CSV binding's columns of users.csv, roles.csv and enrollments.csv,
/// in its order.
const USERS_HEADER: &str = "sourcedId,status,dateLastModified,enabledUser,username,userIds,givenName,familyName,middleName,identifier,email,sms,phone,agentSourcedIds,grades,password,userMasterIdentifier,resourceSourcedIds,preferredGivenName,preferredMiddleName,preferredFamilyName,primaryOrgSourcedId,pronouns";
const ROLES_HEADER: &str =
    "sourcedId,status,dateLastModified,userSourcedId,roleType,role,beginDate,endDate,orgSourcedId,userProfileSourcedId";
const ENROLLMENTS_HEADER: &str =
    "sourcedId,status,dateLastModified,classSourcedId,schoolSourcedId,userSourcedId,role,primary,beginDate,endDate";

/// A guardian of `pupil` as the service builds one: the pupil's unit and classes, and
/// the pupil as its related person.
fn guardian(given: &str, family: &str, of: &FictitiousPerson) -> FictitiousPerson {
    let mut g = FictitiousPerson::new(
        PersonId::new(),
        PersonKind::Guardian,
        given,
        family,
        day(1984, 6, 2),
        SchoolUnit::new("skola-1", "Norrskolan").unwrap(),
    )
    .unwrap()
    .with_group(Group::new("skola-1-5a", "Klass 5A").unwrap())
    .with_agent(of.id);
    for t in &of.targets {
        g = g.with_target(t.clone());
    }
    g
}

/// The row of users.csv with this sourcedId.
fn user(dir: &Path, id: &PersonId) -> std::collections::BTreeMap<String, String> {
    rows(dir, "users.csv")
        .into_iter()
        .find(|r| r["sourcedId"] == id.to_string())
        .unwrap_or_else(|| panic!("no row for {id}"))
}

/// The ids in a user's `agentSourcedIds`.
fn agents_of(dir: &Path, id: &PersonId) -> std::collections::BTreeSet<String> {
    user(dir, id)["agentSourcedIds"]
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Every id in any row's `agentSourcedIds` is the sourcedId of a row of users.csv.
fn no_dangling_agents(dir: &Path) {
    let users = rows(dir, "users.csv");
    let present: std::collections::BTreeSet<&str> =
        users.iter().map(|r| r["sourcedId"].as_str()).collect();
    for r in &users {
        for a in r["agentSourcedIds"].split(',').filter(|s| !s.is_empty()) {
            assert!(
                present.contains(a),
                "{} lists {a}, which is gone",
                r["sourcedId"]
            );
        }
    }
}

fn set(ids: &[&PersonId]) -> std::collections::BTreeSet<String> {
    ids.iter().map(|i| i.to_string()).collect()
}

/// A pupil lists both guardians in `agentSourcedIds`, each guardian the pupil, whichever
/// is written first; a guardian has a `primary` `guardian` role at the school in
/// roles.csv and no enrollment (the 1.2 enrollment roles are for class members), and is
/// read back in its pupil's classes. Disabling a guardian keeps the relation to the row
/// that is still there; deleting it leaves no id pointing at the removed row.
#[tokio::test]
async fn a_pupil_and_its_guardians_are_related_as_the_binding_says() {
    let dir = tempfile::tempdir().unwrap();
    let t = target_in(dir.path());
    let guard = guard(&key(), &[]);
    let now = at(2025, 9, 1);
    let mut ella = pupil("Ella", "Fiktiv", &[t.name()]);
    let mor = guardian("Karin", "Fiktiv", &ella);
    let far = guardian("Per", "Fiktiv", &ella);
    ella = ella.with_agent(mor.id).with_agent(far.id);

    // The guardian first: its pupil is not there yet, so it lists nobody for now.
    push(&t, &guard, &mor, now).await.unwrap();
    assert!(agents_of(dir.path(), &mor.id).is_empty());
    push(&t, &guard, &ella, now).await.unwrap();
    push(&t, &guard, &far, now).await.unwrap();
    assert_eq!(agents_of(dir.path(), &ella.id), set(&[&mor.id, &far.id]));
    assert_eq!(agents_of(dir.path(), &mor.id), set(&[&ella.id]));
    assert_eq!(agents_of(dir.path(), &far.id), set(&[&ella.id]));
    no_dangling_agents(dir.path());

    // The list is one CSV field, quoted because it holds a comma.
    let text = std::fs::read_to_string(dir.path().join("roster/users.csv")).unwrap();
    let mut pair = [mor.id.to_string(), far.id.to_string()];
    pair.sort();
    assert!(
        text.contains(&format!("\"{},{}\"", pair[0], pair[1])),
        "{text}"
    );
    // The columns are the 1.2 binding's.
    assert_eq!(text.lines().next(), Some(USERS_HEADER));
    let roles_text = std::fs::read_to_string(dir.path().join("roster/roles.csv")).unwrap();
    assert_eq!(roles_text.lines().next(), Some(ROLES_HEADER));
    let enr_text = std::fs::read_to_string(dir.path().join("roster/enrollments.csv")).unwrap();
    assert_eq!(enr_text.lines().next(), Some(ENROLLMENTS_HEADER));

    let roles = rows(dir.path(), "roles.csv");
    for (p, role) in [(&ella, "student"), (&mor, "guardian"), (&far, "guardian")] {
        let mine: Vec<_> = roles
            .iter()
            .filter(|r| r["userSourcedId"] == p.id.to_string())
            .collect();
        assert_eq!(mine.len(), 1, "{role}");
        assert_eq!(
            (
                mine[0]["roleType"].as_str(),
                mine[0]["role"].as_str(),
                mine[0]["orgSourcedId"].as_str()
            ),
            ("primary", role, "skola-1")
        );
    }
    let enrollments = rows(dir.path(), "enrollments.csv");
    assert_eq!(enrollments.len(), 1, "{enrollments:?}");
    assert_eq!(enrollments[0]["userSourcedId"], ella.id.to_string());
    assert_eq!(enrollments[0]["role"], "student");
    let manifest = rows(dir.path(), "manifest.csv");
    for f in ["file.users", "file.roles", "file.enrollments"] {
        assert_eq!(
            manifest.iter().find(|r| r["propertyName"] == f).unwrap()["value"],
            "bulk"
        );
    }
    // Each account is what was rendered, the guardians in the class through the pupil.
    for p in [&ella, &mor, &far] {
        let c = check_account(&t, p, now).await.unwrap();
        assert!(c.ok(), "{c:?}");
    }
    // A relation removed by hand is noticed.
    let path = dir.path().join("roster/users.csv");
    let edited = text.replace(&format!("\"{},{}\"", pair[0], pair[1]), &pair[0]);
    std::fs::write(&path, &edited).unwrap();
    assert_eq!(
        check_account(&t, &ella, now).await.unwrap().mismatched,
        vec!["users.agentSourcedIds".to_string()]
    );
    push(&t, &guard, &ella, now).await.unwrap();
    assert_eq!(agents_of(dir.path(), &ella.id), set(&[&mor.id, &far.id]));

    // Disabled: the row is still there and still related.
    let later = at(2025, 10, 1);
    t.disable(&guard, &far.id, later).await.unwrap();
    assert_eq!(user(dir.path(), &far.id)["enabledUser"], "false");
    assert_eq!(agents_of(dir.path(), &ella.id), set(&[&mor.id, &far.id]));
    no_dangling_agents(dir.path());
    // Deleted: no row lists it any more, and the others' rows keep their time.
    let ella_stamp = user(dir.path(), &ella.id)["dateLastModified"].clone();
    t.delete(&guard, &far.id, at(2025, 11, 2)).await.unwrap();
    assert_eq!(agents_of(dir.path(), &ella.id), set(&[&mor.id]));
    assert_eq!(user(dir.path(), &ella.id)["dateLastModified"], ella_stamp);
    no_dangling_agents(dir.path());
    // The pupil as the service now renders it (one guardian) matches the roster.
    ella.agents.retain(|a| *a != far.id);
    assert!(check_account(&t, &ella, now).await.unwrap().ok());
    // A guardian whose pupil is re-written without it loses the relation too.
    ella.agents.clear();
    push(&t, &guard, &ella, now).await.unwrap();
    assert!(agents_of(dir.path(), &mor.id).is_empty());
    assert!(agents_of(dir.path(), &ella.id).is_empty());
}

/// Appends a row to users.csv by hand (through the link), as another system or a person
/// at the municipality would.
fn plant_user(dir: &Path, sourced_id: &str, username: &str, email: &str) {
    let path = dir.join("roster/users.csv");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(&format!(
        "{sourced_id},,,true,{username},,Anna,Svensson,,,{email},,,,,,,,,,,skola-1,\r\n"
    ));
    std::fs::write(&path, text).unwrap();
}

/// The default username is the municipality's plain `{given}.{family}`, with no id in
/// it. A name another row has (any row, compared without case) gets 2, the next one 3;
/// a person keeps the name it was first given when another arrives, and keeps a
/// number after the one before it has left; a renamed person is named afresh.
#[tokio::test]
async fn usernames_are_made_like_ordinary_pupils() {
    let dir = tempfile::tempdir().unwrap();
    let t = target_in(dir.path());
    let guard = guard(&key(), &[]);
    let now = at(2025, 9, 1);
    let otto = pupil("Otto", "Prov", &[t.name()]);
    push(&t, &guard, &otto, now).await.unwrap();
    assert_eq!(user(dir.path(), &otto.id)["username"], "otto.prov");
    // An ordinary pupil of the municipality, written by hand.
    plant_user(dir.path(), "elev-4711", "Anna.Svensson", "");

    let anna = pupil("Anna", "Svensson", &[t.name()]);
    push(&t, &guard, &anna, now).await.unwrap();
    assert_eq!(user(dir.path(), &anna.id)["username"], "anna.svensson2");
    let annie = pupil("Anna", "Svensson", &[t.name()]);
    push(&t, &guard, &annie, now).await.unwrap();
    assert_eq!(user(dir.path(), &annie.id)["username"], "anna.svensson3");
    // The hand-planted row is kept as it was.
    let planted = rows(dir.path(), "users.csv")
        .into_iter()
        .find(|r| r["sourcedId"] == "elev-4711")
        .unwrap();
    assert_eq!(planted["username"], "Anna.Svensson");
    // A numbered name is this target's own: the account check accepts it.
    for p in [&anna, &annie] {
        let c = check_account(&t, p, now).await.unwrap();
        assert!(c.ok(), "{c:?}");
    }
    // Another name by hand is not.
    let path = dir.path().join("roster/users.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace(",anna.svensson3,", ",anna.svensson.x,")).unwrap();
    assert_eq!(
        check_account(&t, &annie, now).await.unwrap().mismatched,
        vec!["users.username".to_string()]
    );
    push(&t, &guard, &annie, now).await.unwrap();
    assert_eq!(user(dir.path(), &annie.id)["username"], "anna.svensson3");

    // First come keeps the plain name: Maja is written, another Maja arrives, and
    // re-writing either renames nobody.
    let maja = pupil("Maja", "Lind", &[t.name()]);
    push(&t, &guard, &maja, now).await.unwrap();
    let maja2 = pupil("Maja", "Lind", &[t.name()]);
    push(&t, &guard, &maja2, now).await.unwrap();
    assert_eq!(user(dir.path(), &maja.id)["username"], "maja.lind");
    assert_eq!(user(dir.path(), &maja2.id)["username"], "maja.lind2");
    push(&t, &guard, &maja, at(2025, 9, 2)).await.unwrap();
    push(&t, &guard, &maja2, at(2025, 9, 2)).await.unwrap();
    assert_eq!(user(dir.path(), &maja.id)["username"], "maja.lind");
    assert_eq!(user(dir.path(), &maja2.id)["username"], "maja.lind2");
    // The first has left; the second keeps its number.
    t.delete(&guard, &maja.id, at(2025, 9, 3)).await.unwrap();
    push(&t, &guard, &maja2, at(2025, 9, 3)).await.unwrap();
    assert_eq!(user(dir.path(), &maja2.id)["username"], "maja.lind2");
    // Renamed: a name made from the new name.
    let mut mia = maja2.clone();
    mia.given_name = "Mia".into();
    push(&t, &guard, &mia, at(2025, 9, 4)).await.unwrap();
    assert_eq!(user(dir.path(), &mia.id)["username"], "mia.lind");

    let names: Vec<String> = rows(dir.path(), "users.csv")
        .iter()
        .map(|r| r["username"].to_lowercase())
        .collect();
    let unique: std::collections::BTreeSet<&String> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "{names:?}");
}

/// The address follows the username's number (before the `@`); the first number and
/// the rule are the target's: `collision_start = 1` gives `anna.svensson1`, and
/// `refuse` fails the write with fixed text and writes nothing.
#[tokio::test]
async fn the_collision_rule_and_the_address_are_configurable() {
    let dir = tempfile::tempdir().unwrap();
    let guard = guard(&key(), &[]);
    let now = at(2025, 9, 1);
    let mut cfg =
        OneRosterConfig::new(target("oneroster"), dir.path().join("roster"), year()).unwrap();
    cfg.email = Some(Template::parse("{given}.{family}@skola.example").unwrap());
    cfg.collision_start = 1;
    let t = OneRosterTarget::new(cfg.clone());
    push(&t, &guard, &pupil("Otto", "Prov", &[t.name()]), now)
        .await
        .unwrap();
    plant_user(
        dir.path(),
        "elev-4711",
        "anna.svensson",
        "Anna.Svensson@skola.example",
    );
    let anna = pupil("Anna", "Svensson", &[t.name()]);
    push(&t, &guard, &anna, now).await.unwrap();
    let u = user(dir.path(), &anna.id);
    assert_eq!(
        (u["username"].as_str(), u["email"].as_str()),
        ("anna.svensson1", "anna.svensson1@skola.example")
    );
    assert!(check_account(&t, &anna, now).await.unwrap().ok());
    // Only the address is taken: the username stays plain, the address gets the number.
    plant_user(dir.path(), "elev-4712", "a.s", "Maja.Lind@skola.example");
    let maja = pupil("Maja", "Lind", &[t.name()]);
    push(&t, &guard, &maja, now).await.unwrap();
    let u = user(dir.path(), &maja.id);
    assert_eq!(
        (u["username"].as_str(), u["email"].as_str()),
        ("maja.lind", "maja.lind1@skola.example")
    );

    // Refuse: the write fails, names no value, and the folder is as it was.
    cfg.username_collision = Collision::Refuse;
    let t = OneRosterTarget::new(cfg);
    let before = std::fs::read(dir.path().join("roster/users.csv")).unwrap();
    let err = push(&t, &guard, &pupil("Anna", "Svensson", &[t.name()]), now)
        .await
        .unwrap_err();
    assert!(matches!(err, TargetError::Config { .. }), "{err}");
    let shown = format!("{err} {err:?}").to_lowercase();
    assert!(
        !shown.contains("anna") && !shown.contains("svensson"),
        "{shown}"
    );
    assert_eq!(
        std::fs::read(dir.path().join("roster/users.csv")).unwrap(),
        before
    );
    // A free name is written as it is under refuse too.
    let nils = pupil("Nils", "Holm", &[t.name()]);
    push(&t, &guard, &nils, now).await.unwrap();
    assert_eq!(user(dir.path(), &nils.id)["username"], "nils.holm");
}
