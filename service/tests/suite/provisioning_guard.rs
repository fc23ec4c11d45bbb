//! The egress guard in the service: a fictitious name that is another pupil's real name
//! is blocked before anything is sent. The job fails with the reason (rule and attribute
//! names, no value), the block is audited and raises an alert, and nothing reached any
//! target, not even slapd's log.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use crate::support::api;
use crate::support::provisioning;

use api::*;
use axum::http::StatusCode;
use fiktiv_tests::TestDatabase;
use provisioning::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fictitious_name_that_is_a_real_name_is_blocked() {
    let peers = Peers::start();
    let toml = targets_toml(&peers, &peers.slapd.url(), &peers.scim.base_url(), "");
    let p = penv(TestDatabase::sqlite().unwrap(), at(2026, 3, 2), &toml).await;
    let e = &p.e;

    // Case A gets the fictitious name "Vilgot Kvarnström" and is ordered.
    let a_real = Real::new("Riktig", "Personsson", "2015-05-17", 111);
    let case_a = open_case(e, &a_real).await;
    let order_a = order(
        e,
        &case_a,
        ("Vilgot", "Kvarnström", "2015-09-03"),
        None,
        &["google"],
    )
    .await;
    // Later another pupil, whose real name is exactly that, gets a case of their own.
    let b_real = Real::new("Vilgot", "Kvarnström", "2014-02-02", 222);
    open_case(e, &b_real).await;
    // A is registered; provisioning must not publish B's real name.
    register(e, &order_a).await;
    p.work().await;

    let failed = p.jobs("failed").await;
    assert_eq!(failed.len(), 3, "{failed:?}");
    for j in &failed {
        let why = j["last_error"].as_str().unwrap();
        assert!(why.starts_with("egress-blocked: rule full-name"), "{why}");
        assert!(why.contains("nothing was written"), "{why}");
        assert!(
            !why.contains("Vilgot") && !why.contains("Kvarnstr"),
            "{why}"
        );
        assert_eq!(j["case_id"], case_a.as_str());
    }
    assert!(p.jobs("done").await.is_empty());
    assert_eq!(p.audit_count("provisioning.blocked").await, 3);
    let alerts = e
        .ok(
            StatusCode::OK,
            "GET",
            "/api/v1/provisioning/alerts",
            CENTRAL,
            None,
        )
        .await;
    let blocked: Vec<_> = alerts
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "egress-blocked")
        .collect();
    assert_eq!(blocked.len(), 3, "{alerts}");
    assert!(!alerts.to_string().contains("Kvarnstr"));
    let status = e
        .ok(
            StatusCode::OK,
            "GET",
            "/api/v1/provisioning/status",
            CENTRAL,
            None,
        )
        .await;
    assert_eq!(status["open_alerts"]["egress-blocked"], 3, "{status}");
    for t in status["targets"].as_array().unwrap() {
        assert_eq!(t["jobs"]["failed"], 1, "{t}");
    }

    // Nothing reached any target, not even as a search filter.
    let pid = p.pupil_id(&case_a).await;
    assert_eq!(peers.ldap_count(&pid), 0);
    let dump = peers.slapd.dump().unwrap();
    assert!(!dump.contains("Vilgot") && !dump.contains("Kvarnstr"));
    let log = peers.slapd.log().unwrap();
    assert!(!log.contains("Vilgot") && !log.contains("Kvarnstr"));
    assert!(peers.scim.list_all("/Users").unwrap().is_empty());
    assert!(!peers.scim.log().unwrap().contains("Vilgot"));
    assert!(!peers.users_csv().contains("Vilgot"));

    // A retry is blocked again; reconciliation leaves the failed jobs failed.
    let id = failed[0]["job_id"].as_str().unwrap();
    let j = e
        .ok(
            StatusCode::OK,
            "POST",
            &format!("/api/v1/sync/jobs/{id}/retry"),
            CENTRAL,
            None,
        )
        .await;
    assert_eq!(j["state"], "pending");
    p.work().await;
    assert_eq!(p.jobs("failed").await.len(), 3);
    assert_eq!(p.audit_count("provisioning.blocked").await, 4);
    let r = p
        .run(
            CENTRAL,
            "/api/v1/sync/reconcile",
            "/api/v1/provisioning/runs",
        )
        .await;
    assert_eq!(r["result"]["jobs_armed"], 0, "{r}");
    p.work().await;
    assert_eq!(p.audit_count("provisioning.blocked").await, 4);
    // The plan still shows what is missing.
    let plan = e
        .ok(StatusCode::OK, "GET", "/api/v1/sync/plan", CENTRAL, None)
        .await;
    for t in plan["targets"].as_array().unwrap() {
        assert_eq!(t["create"].as_array().unwrap().len(), 1, "{t}");
    }
}

/// Every spelling an ASCII-only system makes of a real name is that name: a fictitious
/// pupil given one of them (before the real pupil had a case) is blocked on every
/// target before anything is written, whether the name is stripped, transliterated, or
/// one part each. Nothing of any spelling reaches slapd, not even its log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_spelling_of_a_real_name_is_blocked() {
    let peers = Peers::start();
    let toml = targets_toml(&peers, &peers.slapd.url(), &peers.scim.base_url(), "");
    let p = penv(TestDatabase::sqlite().unwrap(), at(2026, 3, 2), &toml).await;
    let e = &p.e;
    let spellings = [
        ("Asa-Britt", "Oberg"),
        ("Aasa-Britt", "Oeberg"),
        ("Aasa-Britt", "Oberg"),
        ("Asa-Britt", "Oeberg"),
        ("AASA-BRITT", "OEBERG"),
    ];
    let reals = [
        Real::new("Riktig", "Ett", "2015-05-17", 111),
        Real::new("Riktig", "Två", "2015-05-18", 112),
        Real::new("Riktig", "Tre", "2015-05-19", 113),
        Real::new("Riktig", "Fyra", "2015-05-20", 114),
        Real::new("Riktig", "Fem", "2015-05-21", 115),
    ];
    let mut orders = Vec::new();
    let mut cases = Vec::new();
    for (real, (first, last)) in reals.iter().zip(spellings) {
        let case = open_case(e, real).await;
        orders.push(order(e, &case, (first, last, "2015-09-03"), None, &["google"]).await);
        cases.push(case);
    }
    // Later, the real pupil gets a case.
    open_case(e, &Real::new("Åsa-Britt", "Öberg", "2014-02-02", 222)).await;
    let log_before = peers.slapd.log().unwrap().len();
    for o in &orders {
        register(e, o).await;
    }
    p.work().await;

    let failed = p.jobs("failed").await;
    assert_eq!(failed.len(), 3 * spellings.len(), "{failed:?}");
    for j in &failed {
        let why = j["last_error"].as_str().unwrap();
        assert!(why.starts_with("egress-blocked: rule full-name"), "{why}");
        assert!(why.contains("nothing was written"), "{why}");
    }
    assert!(p.jobs("done").await.is_empty());
    for case in &cases {
        let pid = p.pupil_id(case).await;
        assert_eq!(peers.ldap_count(&pid), 0, "{case}");
        assert_eq!(peers.csv_count(&pid), 0, "{case}");
    }
    let log = peers.slapd.log().unwrap();
    let after = log.get(log_before..).unwrap_or("").to_lowercase();
    for bad in ["oberg", "oeberg", "asa-britt", "asabritt"] {
        assert!(!after.contains(bad), "slapd's log holds {bad}");
    }
    // No write of any kind reached the directory (`-d stats` logs each as `ADD dn=`,
    // `MOD dn=`, `DEL dn=`, `MODRDN dn=`).
    for write in [" add ", " mod ", " del ", " modrdn "] {
        assert!(!after.contains(write), "slapd's log shows a write: {write}");
    }
    let dump = peers.slapd.dump().unwrap().to_lowercase();
    assert!(!dump.contains("oberg") && !dump.contains("oeberg"));
    assert!(peers.scim.list_all("/Users").unwrap().is_empty());
    assert!(!peers.users_csv().to_lowercase().contains("oberg"));
    // The SCIM server got no write either: its log (one line per request, as the
    // `GET /v2/Users` just sent shows) has no POST, PUT, PATCH or DELETE.
    let scim_log = peers.scim.log().unwrap();
    assert!(scim_log.contains("\"GET /v2/Users"), "{scim_log}");
    for write in ["\"POST ", "\"PUT ", "\"PATCH ", "\"DELETE "] {
        assert!(
            !scim_log.contains(write),
            "scim2-server got a write: {scim_log}"
        );
    }
}
