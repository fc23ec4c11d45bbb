//! A pupil goes through the routine via the API and ends up in a real slapd, a real
//! scim2-server and the OneRoster folder exactly once (and the linked guardian too).
//! The account check reads the accounts back; the leak scan is clean, then finds a real
//! pupil planted by hand in slapd, without ever showing the real value; the case ends,
//! the accounts are disabled, and deleted after the grace period. SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use crate::support::api;
use crate::support::provisioning;

use api::*;
use axum::http::StatusCode;
use chrono::TimeDelta;
use fiktiv_tests::{Fault, FaultProxy, TestDatabase};
use provisioning::*;
use serde_json::json;

const REAL_FIRST: &str = "Åsa-Kanariefågel";
const REAL_LAST: &str = "Zyxwvutsson";

fn assert_no_real(text: &str, real: &Real, what: &str) {
    for v in [
        real.first,
        real.last,
        real.number.as_str(),
        &real.number[2..],
    ] {
        assert!(!text.contains(v), "{what} contains a real value");
    }
}

async fn routine_to_targets(db: TestDatabase) {
    let peers = Peers::start();
    let toml = targets_toml(&peers, &peers.slapd.url(), &peers.scim.base_url(), "");
    let p = penv(db, at(2026, 3, 2), &toml).await;
    let e = &p.e;
    let real = Real::new(REAL_FIRST, REAL_LAST, "2015-05-17", 321);
    let case = pupil(
        e,
        &real,
        ("Maja", "Lindqvist", "2015-09-03"),
        Some(guardian(
            "Kanariemor",
            REAL_LAST,
            456,
            ("Karin", "Berglund"),
        )),
    )
    .await;

    // Registration recorded the desired state in its own transaction.
    let persons = p.person_ids(&case).await;
    assert_eq!(persons.len(), 2, "{persons:?}");
    let plan = e
        .ok(StatusCode::OK, "GET", "/api/v1/sync/plan", CENTRAL, None)
        .await;
    for t in plan["targets"].as_array().unwrap() {
        assert_eq!(t["create"].as_array().unwrap().len(), 2, "{t}");
        assert_eq!(t["readable"], true, "{t}");
    }
    assert_no_real(&plan.to_string(), &real, "the plan");

    // The worker provisions: exactly once per person and target.
    p.work().await;
    assert_eq!(p.jobs("done").await.len(), 6);
    assert!(p.jobs("failed").await.is_empty());
    for (id, _) in &persons {
        assert_eq!(peers.ldap_count(id), 1, "ldap {id}");
        assert_eq!(peers.scim_users(id).len(), 1, "scim {id}");
        assert_eq!(peers.csv_count(id), 1, "csv {id}");
    }
    let pupil_id = p.pupil_id(&case).await;
    let ldif = peers.ldap_entries(&pupil_id);
    assert!(
        ldif.contains("givenName: Maja") && ldif.contains("sn: Lindqvist"),
        "{ldif}"
    );
    let u = &peers.scim_users(&pupil_id)[0];
    assert_eq!(u["name"]["givenName"], "Maja");
    assert_eq!(u["active"], true);
    assert!(peers.users_csv().contains("Maja"));
    // The roster relates the pupil and the guardian as it does any family
    // (agentSourcedIds), and the username is the plain pattern, with no id in it.
    let roster = fiktiv_provisioning::oneroster::parse_csv(peers.users_csv().as_bytes()).unwrap();
    let row = |id: &str| roster.iter().find(|r| r["sourcedId"] == id).unwrap();
    let guardian_id = &persons.iter().find(|(_, s)| s != "pupil").unwrap().0;
    assert_eq!(&row(&pupil_id)["agentSourcedIds"], guardian_id);
    assert_eq!(row(guardian_id)["agentSourcedIds"], pupil_id);
    assert_eq!(row(&pupil_id)["username"], "maja.lindqvist");
    // Running again changes nothing and creates nothing twice.
    p.work().await;
    let plan = e
        .ok(StatusCode::OK, "GET", "/api/v1/sync/plan", CENTRAL, None)
        .await;
    for t in plan["targets"].as_array().unwrap() {
        for k in ["create", "update", "disable", "delete"] {
            assert!(t[k].as_array().unwrap().is_empty(), "{k} in {t}");
        }
        assert_eq!(t["managed"], 2, "{t}");
    }
    // Nothing real went anywhere: not in any target, not in slapd's log (filters).
    assert_no_real(&peers.slapd.dump().unwrap(), &real, "slapd");
    assert_no_real(&peers.slapd.log().unwrap(), &real, "slapd's log");
    assert_no_real(&peers.scim.dump().unwrap(), &real, "scim2-server");
    assert_no_real(&peers.scim.log().unwrap(), &real, "scim2-server's log");
    assert_no_real(&peers.users_csv(), &real, "users.csv");

    // Account check per case (the school), read back from each target.
    let c = format!("/api/v1/cases/{case}");
    let r = p
        .run(
            SCHOOL_A,
            &format!("{c}/account-check"),
            &format!("{c}/account-check"),
        )
        .await;
    let accounts = r["result"]["accounts"].as_array().unwrap();
    assert_eq!(accounts.len(), 6, "{r}");
    for a in accounts {
        assert_eq!(a["ok"], true, "{a}");
        assert_eq!(a["exists"], true);
        assert!(
            a["read_at"].as_str().unwrap().starts_with("2026-03-02"),
            "{a}"
        );
    }
    assert_eq!(r["result"]["ok"], true);
    // Another school does not learn that the case exists.
    let (s, _) = e
        .call("POST", &format!("{c}/account-check"), SCHOOL_B, None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Per target (the central administrator).
    let r = p
        .run(
            CENTRAL,
            "/api/v1/targets/ldap/account-check",
            "/api/v1/provisioning/runs",
        )
        .await;
    assert_eq!(r["result"]["ok"], true, "{r}");
    assert_eq!(r["result"]["accounts"].as_array().unwrap().len(), 2);

    // Leak scan: clean.
    let r = p
        .run(
            SCHOOL_A,
            &format!("{c}/leak-scan"),
            &format!("{c}/leak-scan"),
        )
        .await;
    assert_eq!(r["result"]["cases"][0]["status"], "clean", "{r}");
    assert_eq!(r["result"]["clean"], true);

    // A real pupil planted by hand: found, at (target, entry), never the value.
    peers
        .slapd
        .ldapadd(&format!(
            "dn: uid=handmade,{}\nobjectClass: inetOrgPerson\nuid: handmade\ncn: {REAL_FIRST} {REAL_LAST}\n\
             sn: {REAL_LAST}\ngivenName: {REAL_FIRST}\ndescription: {}\n",
            peers.slapd.people_dn(),
            real.number
        ))
        .unwrap();
    let r = p
        .run(CENTRAL, "/api/v1/leak-scan", "/api/v1/provisioning/runs")
        .await;
    let mine: Vec<_> = r["result"]["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["case_id"] == case.as_str())
        .collect();
    assert_eq!(mine[0]["status"], "found", "{r}");
    assert_eq!(mine[0]["at"][0]["target"], "ldap");
    assert!(!mine[0]["at"][0]["entry"].as_str().unwrap().is_empty());
    // Each place with its rule and the attribute names (never a value); each target
    // with what it read: the directory's whole naming context.
    let rules: Vec<&str> = mine[0]["at"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["rule"].as_str().unwrap())
        .collect();
    assert!(
        rules.contains(&"personal-number") && rules.contains(&"full-name"),
        "{r}"
    );
    assert!(
        mine[0]["at"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["attributes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n == "description")),
        "{r}"
    );
    let ldap_part = r["result"]["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == "ldap")
        .unwrap();
    assert_eq!(ldap_part["scope"], json!([peers.slapd.base_dn()]), "{r}");
    // Every entry of the naming context was read, the base and the branches too: as
    // many as the directory holds.
    let held = peers
        .slapd
        .ldapsearch("(objectClass=*)", &["1.1"])
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("dn:"))
        .count();
    assert!(held >= 6, "{held}");
    assert_eq!(ldap_part["entries"], held, "{r}");
    let scim_part = r["result"]["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == "scim")
        .unwrap();
    let scim_held = peers.scim.list_all("/Users").unwrap().len()
        + peers.scim.list_all("/Groups").unwrap().len();
    assert_eq!(scim_part["entries"], scim_held, "{r}");
    assert_no_real(&r.to_string(), &real, "the leak scan result");
    // The school's own scan says the same for its case.
    let r = p
        .run(
            SCHOOL_A,
            &format!("{c}/leak-scan"),
            &format!("{c}/leak-scan"),
        )
        .await;
    assert_eq!(r["result"]["cases"][0]["status"], "found");
    assert_eq!(r["result"]["cases"].as_array().unwrap().len(), 1);
    // An alert in the API, without the value; and in the audit trail.
    let alerts = e
        .ok(
            StatusCode::OK,
            "GET",
            "/api/v1/provisioning/alerts",
            CENTRAL,
            None,
        )
        .await;
    let leak: Vec<_> = alerts
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "leak-found" && a["case_id"] == case.as_str())
        .collect();
    assert!(!leak.is_empty(), "{alerts}");
    assert_no_real(&alerts.to_string(), &real, "the alerts");
    // Its facts, structured (rendered in the reader's language by the pages).
    assert_eq!(leak[0]["facts"]["what"], "leak-found", "{alerts}");
    assert_eq!(leak[0]["facts"]["suspect"], false, "{alerts}");
    assert!(
        leak[0]["facts"]["entries"].as_u64().unwrap() >= 1,
        "{alerts}"
    );
    // The school that has the case sees the case's open alerts (the case page shows
    // the same); another school does not learn that the case exists.
    let mine = e
        .ok(
            StatusCode::OK,
            "GET",
            &format!("{c}/alerts"),
            SCHOOL_A,
            None,
        )
        .await;
    assert!(
        mine.as_array()
            .unwrap()
            .iter()
            .any(|a| a["kind"] == "leak-found" && a["case_id"] == case.as_str()),
        "{mine}"
    );
    assert_no_real(&mine.to_string(), &real, "the case's alerts");
    let (s, _) = e.call("GET", &format!("{c}/alerts"), SCHOOL_B, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // On the start page's tasks: the school's case alerts, the central administrator's
    // open alerts; nothing for another school.
    let kinds = |t: &serde_json::Value| -> Vec<(String, u64)> {
        t.as_array()
            .unwrap()
            .iter()
            .map(|x| {
                (
                    x["kind"].as_str().unwrap().to_owned(),
                    x["count"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let mine = e
        .ok(StatusCode::OK, "GET", "/api/v1/me/tasks", SCHOOL_A, None)
        .await;
    assert!(
        kinds(&mine)
            .iter()
            .any(|(k, n)| k == "case-alerts-open" && *n >= 1),
        "{mine}"
    );
    let central = e
        .ok(StatusCode::OK, "GET", "/api/v1/me/tasks", CENTRAL, None)
        .await;
    assert!(
        kinds(&central)
            .iter()
            .any(|(k, n)| k == "alerts-open" && *n >= 1),
        "{central}"
    );
    let other = e
        .ok(StatusCode::OK, "GET", "/api/v1/me/tasks", SCHOOL_B, None)
        .await;
    assert!(
        !kinds(&other).iter().any(|(k, _)| k.contains("alerts")),
        "{other}"
    );
    assert!(p.audit_count("provisioning.leak-found").await >= 1);
    let status = e
        .ok(
            StatusCode::OK,
            "GET",
            "/api/v1/provisioning/status",
            CENTRAL,
            None,
        )
        .await;
    assert!(
        status["open_alerts"]["leak-found"].as_i64().unwrap() >= 1,
        "{status}"
    );
    // Acknowledge.
    let id = leak[0]["alert_id"].as_str().unwrap();
    e.ok(
        StatusCode::OK,
        "POST",
        &format!("/api/v1/provisioning/alerts/{id}/acknowledge"),
        CENTRAL,
        None,
    )
    .await;
    // The entry is removed; the next scan is clean and closes the case's open leak
    // alerts, audited.
    peers
        .slapd
        .ldapmodify(&format!(
            "dn: uid=handmade,{}\nchangetype: delete\n",
            peers.slapd.people_dn()
        ))
        .unwrap();
    let open_before = e
        .ok(
            StatusCode::OK,
            "GET",
            &format!("/api/v1/provisioning/alerts?case_id={case}"),
            CENTRAL,
            None,
        )
        .await;
    assert!(!open_before.as_array().unwrap().is_empty(), "{open_before}");
    let r = p
        .run(
            SCHOOL_A,
            &format!("{c}/leak-scan"),
            &format!("{c}/leak-scan"),
        )
        .await;
    assert_eq!(r["result"]["cases"][0]["status"], "clean", "{r}");
    let open_after = e
        .ok(
            StatusCode::OK,
            "GET",
            &format!("/api/v1/provisioning/alerts?case_id={case}"),
            CENTRAL,
            None,
        )
        .await;
    assert!(open_after.as_array().unwrap().is_empty(), "{open_after}");
    let mine = e
        .ok(
            StatusCode::OK,
            "GET",
            &format!("{c}/alerts"),
            SCHOOL_A,
            None,
        )
        .await;
    assert!(mine.as_array().unwrap().is_empty(), "{mine}");
    let all = e
        .ok(
            StatusCode::OK,
            "GET",
            &format!("/api/v1/provisioning/alerts?case_id={case}&open=false"),
            CENTRAL,
            None,
        )
        .await;
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .any(|a| a["acknowledged_by"] == "system:clean-leak-scan"),
        "{all}"
    );
    assert!(p.audit_count("provisioning.alert-closed").await >= 1);
    // Schools cannot see the alerts or the status.
    let (s, _) = e
        .call("GET", "/api/v1/provisioning/alerts", SCHOOL_A, None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // The case ends: disabled at once (first stage) ...
    e.ok(
        StatusCode::OK,
        "POST",
        &format!("{c}/end"),
        SCHOOL_A,
        Some(json!({"reason": "pupil-left"})),
    )
    .await;
    p.work().await;
    for (id, _) in &persons {
        let ldif = peers.ldap_entries(id);
        assert!(ldif.contains("description: disabled"), "{ldif}");
        assert!(!ldif.contains("memberOf"));
        assert_eq!(peers.scim_users(id)[0]["active"], false);
        assert!(peers
            .users_csv()
            .lines()
            .any(|l| l.starts_with(id.as_str()) && l.contains(",false,")));
    }
    let r = p
        .run(
            SCHOOL_A,
            &format!("{c}/account-check"),
            &format!("{c}/account-check"),
        )
        .await;
    for a in r["result"]["accounts"].as_array().unwrap() {
        assert_eq!(
            (
                a["desired"].as_str(),
                a["enabled"].as_bool(),
                a["ok"].as_bool()
            ),
            (Some("disabled"), Some(false), Some(true)),
            "{a}"
        );
    }
    // ... deleted after the grace period (second stage).
    e.clock.advance(TimeDelta::days(29));
    p.work().await;
    assert_eq!(peers.ldap_count(&pupil_id), 1);
    e.clock.advance(TimeDelta::days(2));
    p.work().await;
    for (id, _) in &persons {
        assert_eq!(peers.ldap_count(id), 0, "ldap {id}");
        assert!(peers.scim_users(id).is_empty(), "scim {id}");
        assert_eq!(peers.csv_count(id), 0, "csv {id}");
    }
    {
        use sqlx::Row;
        let done: Option<String> =
            sqlx::query("SELECT done_at FROM deprovision_requests WHERE case_id = $1")
                .bind(&case)
                .fetch_one(e.vault.db().pool())
                .await
                .unwrap()
                .get("done_at");
        assert!(done.is_some(), "deprovisioning not marked done");
    }
    assert!(p.audit_count("provisioning.delete").await >= 6);
}

both_backends!(routine_to_targets);

/// An order that names a platform no target serves: the accounts on the targets are
/// fine, but the check is not all-clear, and it says which platform has no target.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ordered_platform_without_a_target_is_not_all_clear() {
    let peers = Peers::start();
    let toml = targets_toml(&peers, &peers.slapd.url(), &peers.scim.base_url(), "");
    let p = penv(TestDatabase::sqlite().unwrap(), at(2026, 3, 2), &toml).await;
    let e = &p.e;
    let real = Real::new(REAL_FIRST, REAL_LAST, "2015-05-17", 321);
    let case = open_case(e, &real).await;
    let o = order(
        e,
        &case,
        ("Maja", "Lindqvist", "2015-09-03"),
        None,
        &["google", "Skola24"],
    )
    .await;
    register(e, &o).await;
    p.work().await;
    let c = format!("/api/v1/cases/{case}");
    let r = p
        .run(
            SCHOOL_A,
            &format!("{c}/account-check"),
            &format!("{c}/account-check"),
        )
        .await;
    let accounts = r["result"]["accounts"].as_array().unwrap();
    assert!(!accounts.is_empty(), "{r}");
    assert!(accounts.iter().all(|a| a["ok"] == true), "{r}");
    assert_eq!(r["result"]["ok"], false, "{r}");
    let missing = r["result"]["unprovisioned"].as_array().unwrap();
    assert_eq!(missing.len(), 1, "{r}");
    assert_eq!(missing[0]["platform"], "Skola24");
    assert_eq!(
        missing[0]["problem"],
        "not provisioned: no target for Skola24"
    );
    assert_eq!(missing[0]["case_id"], case.as_str());
    // Once a target stands for it, the same check is all-clear.
    let toml = toml.replace(
        "platforms = [\"google\", \"unikum\"]",
        "platforms = [\"google\", \"unikum\", \"skola24\"]",
    );
    assert!(toml.contains("skola24"));
    let p2 = penv(TestDatabase::sqlite().unwrap(), at(2026, 3, 2), &toml).await;
    let case = open_case(&p2.e, &real).await;
    let o = order(
        &p2.e,
        &case,
        ("Maja", "Lindqvist", "2015-09-03"),
        None,
        &["google", "Skola24"],
    )
    .await;
    register(&p2.e, &o).await;
    p2.work().await;
    let c = format!("/api/v1/cases/{case}");
    let r = p2
        .run(
            SCHOOL_A,
            &format!("{c}/account-check"),
            &format!("{c}/account-check"),
        )
        .await;
    assert_eq!(r["result"]["ok"], true, "{r}");
    assert!(r["result"]["unprovisioned"].as_array().unwrap().is_empty());
}

/// A target that cannot be read makes the case `unverified`, never `clean`, and the
/// scan leaves the case's open leak alerts open: only a scan that read every target
/// completely may close them. The second directory target is the same slapd behind a
/// fault proxy that refuses connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_not_read_completely_makes_the_case_unverified() {
    let peers = Peers::start();
    let proxy = FaultProxy::for_slapd(&peers.slapd).unwrap();
    let mut toml = targets_toml(&peers, &peers.slapd.url(), &peers.scim.base_url(), "");
    toml.push_str(&format!(
        "\n[[targets]]\nname = \"ldap-behind\"\nkind = \"ldap\"\nurl = \"{}\"\n\
         security = \"plain\"\nbind_dn = \"{}\"\nbind_password = \"{}\"\n\
         people_base = \"{}\"\ngroups_base = \"{}\"\ntimeout_secs = 5\n",
        proxy.url_for("ldap"),
        peers.slapd.admin_dn(),
        peers.slapd.admin_password(),
        peers.slapd.people_dn(),
        peers.slapd.groups_dn(),
    ));
    let p = penv(TestDatabase::sqlite().unwrap(), at(2026, 3, 2), &toml).await;
    let e = &p.e;
    let real = Real::new(REAL_FIRST, REAL_LAST, "2015-05-17", 321);
    let case = open_case(e, &real).await;
    let c = format!("/api/v1/cases/{case}");
    let mine = |r: &serde_json::Value| -> serde_json::Value {
        r["result"]["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["case_id"] == case.as_str())
            .cloned()
            .unwrap()
    };
    let part = |r: &serde_json::Value, name: &str| -> serde_json::Value {
        r["result"]["targets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["target"] == name)
            .cloned()
            .unwrap()
    };
    let open_alerts = || async {
        e.ok(
            StatusCode::OK,
            "GET",
            &format!("/api/v1/provisioning/alerts?case_id={case}"),
            CENTRAL,
            None,
        )
        .await
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "leak-found")
        .count()
    };

    // Every target read: the real pupil planted in the directory is found (by both
    // directory targets) and raises a leak alert.
    peers
        .slapd
        .ldapadd(&format!(
            "dn: uid=handmade,{}\nobjectClass: inetOrgPerson\nuid: handmade\ncn: {REAL_FIRST} {REAL_LAST}\n\
             sn: {REAL_LAST}\ngivenName: {REAL_FIRST}\ndescription: {}\n",
            peers.slapd.people_dn(),
            real.number
        ))
        .unwrap();
    let r = p
        .run(CENTRAL, "/api/v1/leak-scan", "/api/v1/provisioning/runs")
        .await;
    assert_eq!(mine(&r)["status"], "found", "{r}");
    assert!(part(&r, "ldap-behind")["error"].is_null(), "{r}");
    assert!(open_alerts().await >= 1);

    // The entry is removed, and the second directory target cannot be read: the one
    // directory that was read is clean, but the case is `unverified`, not clean.
    peers
        .slapd
        .ldapmodify(&format!(
            "dn: uid=handmade,{}\nchangetype: delete\n",
            peers.slapd.people_dn()
        ))
        .unwrap();
    proxy.set(Fault::Refuse).unwrap();
    let r = p
        .run(CENTRAL, "/api/v1/leak-scan", "/api/v1/provisioning/runs")
        .await;
    assert_eq!(mine(&r)["status"], "unverified", "{r}");
    assert!(mine(&r)["at"].as_array().unwrap().is_empty(), "{r}");
    assert_eq!(r["result"]["clean"], false, "{r}");
    let behind = part(&r, "ldap-behind");
    assert!(
        !behind["error"].as_str().unwrap_or_default().is_empty(),
        "{r}"
    );
    assert_eq!(behind["entries"], 0, "{r}");
    for read in ["ldap", "scim", "roster"] {
        assert!(part(&r, read)["error"].is_null(), "{read}: {r}");
    }
    assert!(part(&r, "ldap")["entries"].as_u64().unwrap() >= 1, "{r}");
    assert_no_real(&r.to_string(), &real, "the leak scan result");
    // The school's own scan of the case says the same.
    let school = p
        .run(
            SCHOOL_A,
            &format!("{c}/leak-scan"),
            &format!("{c}/leak-scan"),
        )
        .await;
    assert_eq!(
        school["result"]["cases"][0]["status"], "unverified",
        "{school}"
    );
    assert_eq!(school["result"]["clean"], false, "{school}");
    // Neither scan closed the open leak alert.
    assert!(open_alerts().await >= 1);
    assert_eq!(p.audit_count("provisioning.alert-closed").await, 0);

    // Every target readable again: clean, and the alert is closed.
    proxy.clear().unwrap();
    let r = p
        .run(CENTRAL, "/api/v1/leak-scan", "/api/v1/provisioning/runs")
        .await;
    assert_eq!(mine(&r)["status"], "clean", "{r}");
    assert_eq!(r["result"]["clean"], true, "{r}");
    assert!(part(&r, "ldap-behind")["error"].is_null(), "{r}");
    assert_eq!(open_alerts().await, 0);
    assert!(p.audit_count("provisioning.alert-closed").await >= 1);
}

/// An ordered platform that no target maps in `platforms` is served by the target of
/// the same name (case aside): the pupil is provisioned there, and the
/// account check is all-clear with nothing reported unprovisioned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ordered_platform_defaults_to_the_target_of_its_name() {
    let peers = Peers::start();
    let folder = peers.roster.path().join("skola24");
    let mut toml = targets_toml(&peers, &peers.slapd.url(), &peers.scim.base_url(), "");
    toml.push_str(&format!(
        "\n[[targets]]\nname = \"skola24\"\nkind = \"oneroster\"\ndir = \"{}\"\n",
        folder.display()
    ));
    assert!(
        !toml.contains("\"skola24\"]"),
        "no target maps skola24 in platforms"
    );
    let p = penv(TestDatabase::sqlite().unwrap(), at(2026, 3, 2), &toml).await;
    let e = &p.e;
    let real = Real::new(REAL_FIRST, REAL_LAST, "2015-05-17", 321);
    let case = open_case(e, &real).await;
    let o = order(
        e,
        &case,
        ("Maja", "Lindqvist", "2015-09-03"),
        None,
        &["google", "Skola24"],
    )
    .await;
    register(e, &o).await;
    p.work().await;
    assert!(p.jobs("failed").await.is_empty());
    let pupil_id = p.pupil_id(&case).await;
    let rows = fiktiv_provisioning::oneroster::parse_csv(
        &std::fs::read(folder.join("users.csv")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        rows.iter().filter(|r| r["sourcedId"] == pupil_id).count(),
        1,
        "the pupil is not in skola24's roster"
    );
    let c = format!("/api/v1/cases/{case}");
    let r = p
        .run(
            SCHOOL_A,
            &format!("{c}/account-check"),
            &format!("{c}/account-check"),
        )
        .await;
    let accounts = r["result"]["accounts"].as_array().unwrap();
    assert!(
        accounts
            .iter()
            .any(|a| a["target"] == "skola24" && a["ok"] == true),
        "{r}"
    );
    assert!(accounts.iter().all(|a| a["ok"] == true), "{r}");
    assert!(
        r["result"]["unprovisioned"].as_array().unwrap().is_empty(),
        "{r}"
    );
    assert_eq!(r["result"]["ok"], true, "{r}");
}
