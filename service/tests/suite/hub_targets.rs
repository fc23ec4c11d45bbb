//! End to end from the SS 12000 test hub through Fiktiv to a directory (slapd), a SCIM
//! service (scim2-server) and a OneRoster folder, and to the feed: a marked pupil with a
//! registered case is the fictitious pupil in the hub's class and teaching group in
//! every target; the leak scan of every target finds the real pupil nowhere.

use fiktiv_tests::TestHub;
use serde_json::json;

use crate::api_common::*;
use crate::provisioning_common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_linked_pupil_is_in_the_hubs_groups_in_every_target() {
    let hub = TestHub::start(600, 23).unwrap();
    let peers = Peers::start();
    let toml = format!(
        "{}\n[ss12000]\nbase_url = \"{}\"\nread_every_minutes = 0\n",
        targets_toml(&peers, &peers.slapd.url(), &peers.scim.base_url(), ""),
        hub.base_url()
    );
    let p = penv(
        fiktiv_tests::TestDatabase::sqlite().unwrap(),
        at(2026, 9, 1),
        &toml,
    )
    .await;
    fiktiv_routine::hub::set_secret(&p.e.vault, hub.token(), "test")
        .await
        .unwrap();
    let pupil = hub.marked_pupils()[0].clone();
    let (case, _) =
        p.e.walk()
            .fictitious(
                "Tova",
                "Lindgren",
                &format!("{}-05-20", &pupil.birth_date[..4]),
            )
            .platforms(&["google"])
            .registered(json!({"country": "se", "personal_number": pupil.civic_no,
                           "first_name": pupil.given_name, "last_name": pupil.family_name,
                           "birth_date": pupil.birth_date}))
            .await;
    fiktiv::hub::read_now(&p.ctx, true, &mut |_| {})
        .await
        .unwrap();
    p.work().await;
    assert!(
        p.jobs("failed").await.is_empty(),
        "{:?}",
        p.jobs("failed").await
    );
    let person = p.pupil_id(&case).await;

    // The directory: the pupil's entry, and the hub's groups with the pupil as member.
    assert_eq!(
        peers.ldap_count(&person),
        1,
        "{}",
        peers.ldap_entries(&person)
    );
    let groups = peers
        .slapd
        .ldapsearch("(objectClass=groupOfNames)", &[])
        .unwrap();
    for (_, name) in &pupil.groups {
        assert!(
            groups.contains(name.as_str()),
            "{name} not in the directory:\n{groups}"
        );
    }
    // The SCIM service: the user, and the hub's groups.
    assert_eq!(peers.scim_users(&person).len(), 1);
    let scim_groups: Vec<String> = peers
        .scim
        .list_all("/Groups")
        .unwrap()
        .iter()
        .map(|g| g["displayName"].as_str().unwrap_or_default().to_owned())
        .collect();
    for (_, name) in &pupil.groups {
        assert!(
            scim_groups.iter().any(|g| g == name),
            "{name} not in SCIM: {scim_groups:?}"
        );
    }
    // The roster.
    let classes = std::fs::read_to_string(peers.roster_dir().join("classes.csv")).unwrap();
    for (_, name) in &pupil.groups {
        assert!(classes.contains(name.as_str()), "{name} not in classes.csv");
    }
    // The order's own group ("4B") is nowhere: the hub's groups replaced it.
    assert!(!groups.contains("4B") && !scim_groups.iter().any(|g| g == "4B"));
    // No target holds the real pupil.
    for text in [
        peers.slapd.ldapsearch("(objectClass=*)", &[]).unwrap(),
        serde_json::to_string(&peers.scim.list_all("/Users").unwrap()).unwrap(),
        peers.users_csv(),
    ] {
        assert!(!text.contains(&pupil.civic_no) && !text.contains(&pupil.family_name));
    }
    let c = format!("/api/v1/cases/{case}");
    let r = p
        .run(
            SCHOOL_A,
            &format!("{c}/leak-scan"),
            &format!("{c}/leak-scan"),
        )
        .await;
    assert_eq!(r["result"]["cases"][0]["status"], "clean", "{r}");
    hub.validate().unwrap();
}
