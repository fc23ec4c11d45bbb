//! End to end from the SS 12000 test hub through Fiktiv to a directory (slapd), a SCIM
//! service (scim2-server) and a OneRoster folder, and to the feed: a marked pupil with a
//! registered case is the fictitious pupil in the hub's class and teaching group in
//! every target; the leak scan of every target finds the real pupil nowhere.

use axum::http::StatusCode;
use fiktiv_tests::TestHub;
use serde_json::json;

use crate::support::api::*;
use crate::support::provisioning::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_linked_pupil_is_in_the_hubs_groups_in_every_target() {
    let hub = TestHub::start(600, 23).unwrap();
    let peers = Peers::start();
    let toml = format!(
        "{}\n[ss12000]\nbase_url = \"{}\"\nread_every_minutes = 0\n",
        targets_toml(&peers, &peers.slapd.url(), &peers.scim.base_url(), ""),
        hub.base_url()
    );
    let mut p = penv(
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
    fiktiv_app::hub::read_now(&p.ctx, true, &mut |_| {})
        .await
        .unwrap();
    p.work().await;
    assert!(
        p.jobs("failed").await.is_empty(),
        "{:?}",
        p.jobs("failed").await
    );
    let person = p.pupil_id(&case).await;

    // The case follows the hub's enrolment: it moved to the hub's unit (audited), and
    // the unit that typed it no longer sees it.
    let unit: String = {
        use sqlx::Row;
        sqlx::query("SELECT unit FROM cases WHERE case_id = $1")
            .bind(&case)
            .fetch_one(p.e.vault.db().pool())
            .await
            .unwrap()
            .try_get("unit")
            .unwrap()
    };
    assert_eq!(unit, pupil.unit_code);
    assert_eq!(p.audit_count("hub.unit").await, 1);
    let (s, _) =
        p.e.call("GET", &format!("/api/v1/cases/{case}"), SCHOOL_A, None)
            .await;
    assert!(
        s == StatusCode::FORBIDDEN || s == StatusCode::NOT_FOUND,
        "{s}"
    );
    let t = fiktiv_staff::tokens::create(
        &p.e.vault,
        "test",
        "skola-hub",
        &[fiktiv_policies::Role::School],
        std::slice::from_ref(&pupil.unit_code),
        30,
    )
    .await
    .unwrap();
    p.e.tokens.insert("skola-hub", t.secret.to_string());

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
    // The roster: the hub's classes, the hub's unit, and the hub's school year as
    // OneRoster's grade code, as any pupil's.
    let classes = std::fs::read_to_string(peers.roster_dir().join("classes.csv")).unwrap();
    for (_, name) in &pupil.groups {
        assert!(classes.contains(name.as_str()), "{name} not in classes.csv");
    }
    let users = peers.users_csv();
    let mut rows = csv::Reader::from_reader(users.as_bytes());
    let header = rows.headers().unwrap().clone();
    let col = |n: &str| header.iter().position(|h| h == n).unwrap();
    let row = rows
        .records()
        .map(|r| r.unwrap())
        .find(|r| r.get(col("sourcedId")) == Some(person.as_str()))
        .unwrap();
    let grade = match pupil.school_year {
        0 => "KG".to_owned(),
        y => format!("{y:02}"),
    };
    assert_eq!(row.get(col("grades")), Some(grade.as_str()));
    assert_eq!(
        row.get(col("primaryOrgSourcedId")),
        Some(pupil.unit_code.as_str())
    );
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
            "skola-hub",
            &format!("{c}/leak-scan"),
            &format!("{c}/leak-scan"),
        )
        .await;
    assert_eq!(r["result"]["cases"][0]["status"], "clean", "{r}");

    // The feed is a target the leak scan reads like any other (an SS 12000 target, read
    // only, made through the API with a consumer's token): it holds the pupil nowhere.
    // The same scan of the hub finds the real pupil (the control that the scan reads
    // SS 12000 at all).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let feed_url = format!("http://{}/ss12000/v2", listener.local_addr().unwrap());
    let app = p.e.app.clone();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
    });
    let token = fiktiv_routine::feed::add_consumer(
        &p.e.vault,
        "leak-scan",
        &fiktiv_routine::feed::FeedResource::ALL,
        &[],
        "test",
    )
    .await
    .unwrap();
    for (name, url, secret) in [
        ("feed-scan", feed_url.as_str(), token.as_str()),
        ("hub-scan", hub.base_url().as_str(), hub.token()),
    ] {
        let (s, v) =
            p.e.call(
                "PUT",
                &format!("/api/v1/targets/{name}"),
                CENTRAL,
                Some(json!({"kind": "ss12000", "name": name, "base_url": url, "token": secret})),
            )
            .await;
        assert!(s.is_success(), "{s} {v}");
    }
    let r = p
        .run(
            "skola-hub",
            &format!("{c}/leak-scan"),
            &format!("{c}/leak-scan"),
        )
        .await;
    let result = &r["result"];
    assert_eq!(result["cases"][0]["status"], "found", "{r}");
    let at = result["cases"][0]["at"].as_array().unwrap();
    assert!(!at.is_empty());
    assert!(
        at.iter().all(|l| l["target"] == "hub-scan"),
        "found outside the hub: {r}"
    );
    assert!(at
        .iter()
        .any(|l| l["entry"].as_str().unwrap().starts_with("persons/")));
    let targets = result["targets"].as_array().unwrap();
    let feed = targets.iter().find(|t| t["target"] == "feed-scan").unwrap();
    assert!(feed["error"].is_null(), "{feed}");
    // The feed was read whole: every person, group and organisation it serves.
    assert!(
        feed["entries"].as_u64().unwrap() as usize
            >= hub.count("organisations") + hub.count("groups"),
        "{feed}"
    );
    assert_eq!(
        feed["scope"],
        json!([
            "/organisations",
            "/persons",
            "/groups",
            "/duties",
            "/activities"
        ])
    );
    // A scan-only target receives nobody: no job was ever queued for it.
    let jobs: i64 = {
        use sqlx::Row;
        sqlx::query("SELECT COUNT(*) AS n FROM prov_jobs WHERE target IN ('feed-scan', 'hub-scan')")
            .fetch_one(p.e.vault.db().pool())
            .await
            .unwrap()
            .try_get("n")
            .unwrap()
    };
    assert_eq!(jobs, 0);
    hub.validate().unwrap();
}
