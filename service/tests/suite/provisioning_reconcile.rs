//! Drift made by hand (an LDAP entry deleted, an LDAP attribute edited, a SCIM account
//! disabled and renamed) is reported and repaired by reconciliation; plan/apply refuses
//! to remove more than the configured share of a target's accounts unless forced.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use crate::support::api;
use crate::support::provisioning;

use api::*;
use axum::http::StatusCode;
use fiktiv_tests::TestDatabase;
use provisioning::*;
use serde_json::{json, Value};

fn drift_of<'a>(plan: &'a Value, target: &str, kind: &str) -> Vec<&'a Value> {
    plan["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == target)
        .unwrap()[kind]
        .as_array()
        .unwrap()
        .iter()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_is_reported_and_repaired() {
    let peers = Peers::start();
    let toml = targets_toml(&peers, &peers.slapd.url(), &peers.scim.base_url(), "");
    let p = penv(TestDatabase::sqlite().unwrap(), at(2026, 3, 2), &toml).await;
    let e = &p.e;
    let a = pupil(
        e,
        &Real::new("Riktig", "Ett", "2015-05-17", 11),
        ("Maja", "Lindqvist", "2015-09-03"),
        None,
    )
    .await;
    let b = pupil(
        e,
        &Real::new("Riktig", "Tva", "2015-04-01", 12),
        ("Otto", "Berg", "2015-02-03"),
        None,
    )
    .await;
    p.work().await;
    let (pa, pb) = (p.pupil_id(&a).await, p.pupil_id(&b).await);
    assert_eq!((peers.ldap_count(&pa), peers.ldap_count(&pb)), (1, 1));

    // By hand: A's LDAP entry deleted; B's mail edited; B's SCIM account disabled and renamed.
    let dn_of = |ldif: &str| {
        ldif.lines()
            .next()
            .unwrap()
            .trim_start_matches("dn: ")
            .to_owned()
    };
    let dn_a = dn_of(&peers.ldap_entries(&pa));
    peers
        .slapd
        .ldapmodify(&format!("dn: {dn_a}\nchangetype: delete\n"))
        .unwrap();
    let dn_b = dn_of(&peers.ldap_entries(&pb));
    peers
        .slapd
        .ldapmodify(&format!(
            "dn: {dn_b}\nchangetype: modify\nreplace: mail\nmail: someone.else@example.org\n"
        ))
        .unwrap();
    let u = peers.scim_users(&pb)[0].clone();
    let mut edited = u.clone();
    edited["active"] = json!(false);
    edited["name"]["givenName"] = json!("Handedit");
    edited.as_object_mut().unwrap().remove("meta");
    let r = peers
        .scim
        .request(
            "PUT",
            &format!("/Users/{}", u["id"].as_str().unwrap()),
            Some(&edited),
        )
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());

    // The plan shows the drift.
    let plan = e
        .ok(StatusCode::OK, "GET", "/api/v1/sync/plan", CENTRAL, None)
        .await;
    let created = drift_of(&plan, "ldap", "create");
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["person_id"], pa.as_str());
    let updated = drift_of(&plan, "ldap", "update");
    assert_eq!(updated[0]["drift"], json!(["attribute:mail"]), "{plan}");
    let updated = drift_of(&plan, "scim", "update");
    let d = updated[0]["drift"].as_array().unwrap();
    assert!(
        d.contains(&json!("given-name")) && d.contains(&json!("disabled")),
        "{plan}"
    );
    assert!(
        !plan.to_string().contains("someone.else"),
        "values never in a plan"
    );

    // Reconciliation (on demand) reports it and repairs it.
    let r = p
        .run(
            CENTRAL,
            "/api/v1/sync/reconcile",
            "/api/v1/provisioning/runs",
        )
        .await;
    assert_eq!(r["result"]["jobs_armed"], 3, "{r}");
    assert_eq!(r["progress"]["findings"], 3);
    p.work().await;
    assert_eq!(peers.ldap_count(&pa), 1);
    assert!(peers.ldap_entries(&pb).contains("mail: otto.berg."));
    let u = &peers.scim_users(&pb)[0];
    assert_eq!(
        (u["active"].as_bool(), u["name"]["givenName"].as_str()),
        (Some(true), Some("Otto"))
    );
    assert_eq!(peers.scim_users(&pb).len(), 1);
    let plan = e
        .ok(StatusCode::OK, "GET", "/api/v1/sync/plan", CENTRAL, None)
        .await;
    for t in plan["targets"].as_array().unwrap() {
        for k in ["create", "update", "disable", "delete"] {
            assert!(t[k].as_array().unwrap().is_empty(), "{k} in {t}");
        }
    }
    let status = e
        .ok(
            StatusCode::OK,
            "GET",
            "/api/v1/provisioning/status",
            CENTRAL,
            None,
        )
        .await;
    assert_eq!(status["last_reconcile"]["state"], "done", "{status}");

    // Scheduled: the worker's cycle reconciles when the interval has passed.
    let toml2 = toml.replace(
        "reconcile_interval_secs = 0",
        "reconcile_interval_secs = 3600",
    );
    let config = fiktiv_app::config::Config::parse(&toml2, "t").unwrap();
    let data = tempfile::tempdir().unwrap();
    let ctx =
        fiktiv_app::context::Context::with_vault(e.vault.clone(), config, data.path()).unwrap();
    peers
        .slapd
        .ldapmodify(&format!("dn: {dn_a}\nchangetype: delete\n"))
        .unwrap();
    e.clock.advance(chrono::TimeDelta::hours(2));
    fiktiv_delivery::worker::cycle(&ctx.delivery, true)
        .await
        .unwrap();
    fiktiv_delivery::worker::run_until_idle(&ctx.delivery, 100)
        .await
        .unwrap();
    assert_eq!(
        peers.ldap_count(&pa),
        1,
        "the scheduled reconciliation repaired it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_refuses_mass_removal_unless_forced() {
    let peers = Peers::start();
    // Only a target made through the API, serving the platform "lms".
    let toml = "[provisioning]\nembedded_default = false\nreconcile_interval_secs = 0\nbackoff_base_secs = 1\n";
    let p = penv(TestDatabase::sqlite().unwrap(), at(2026, 3, 2), toml).await;
    let e = &p.e;
    let spec = |platforms: &[&str]| {
        json!({"kind": "scim", "name": "scim-lms", "base_url": peers.scim.base_url(),
               "token": peers.scim.token(), "platforms": platforms})
    };
    let t = e
        .ok(
            StatusCode::OK,
            "PUT",
            "/api/v1/targets/scim-lms",
            CENTRAL,
            Some(spec(&["LMS"])),
        )
        .await;
    assert_eq!(
        (t["usable"].as_bool(), t["has_credential"].as_bool()),
        (Some(true), Some(true)),
        "{t}"
    );
    assert!(!t.to_string().contains(peers.scim.token()));
    // The token is sealed at rest.
    let bytes = e.db.raw_bytes().unwrap();
    assert!(!crate::support::bytes_contain(
        &bytes,
        peers.scim.token().as_bytes()
    ));
    let list = e
        .ok(StatusCode::OK, "GET", "/api/v1/targets", CENTRAL, None)
        .await;
    assert!(!list.to_string().contains(peers.scim.token()));
    assert_eq!(list[0]["source"], "api");

    let names = [
        ("Ada", "Ek"),
        ("Bo", "Al"),
        ("Cai", "Alm"),
        ("Dan", "Ask"),
        ("Eva", "Bok"),
    ];
    let mut cases = Vec::new();
    for (i, (f, l)) in names.iter().enumerate() {
        let real = Real::new(
            "Riktig",
            ["Ett", "Tva", "Tre", "Fyra", "Fem"][i],
            "2015-05-17",
            20 + i as u16,
        );
        let case = open_case(e, &real).await;
        let o = order(e, &case, (f, l, "2015-09-03"), None, &["lms"]).await;
        register(e, &o).await;
        cases.push(case);
    }
    p.work().await;
    assert_eq!(peers.scim.list_all("/Users").unwrap().len(), 5);
    let plan = e
        .ok(StatusCode::OK, "GET", "/api/v1/sync/plan", CENTRAL, None)
        .await;
    assert!(
        plan["targets"][0]["update"].as_array().unwrap().is_empty(),
        "{plan}"
    );
    assert_eq!(
        peers.scim.list_all("/Groups").unwrap().len(),
        2,
        "one group per unit and class"
    );

    // A wrong change: the target no longer serves "lms". All 5 would go.
    e.ok(
        StatusCode::OK,
        "PUT",
        "/api/v1/targets/scim-lms",
        CENTRAL,
        Some(
            spec(&["other"])
                .as_object()
                .map(|o| {
                    let mut o = o.clone();
                    o.remove("token"); // the stored token is kept
                    Value::Object(o)
                })
                .unwrap(),
        ),
    )
    .await;
    let plan = e
        .ok(StatusCode::OK, "GET", "/api/v1/sync/plan", CENTRAL, None)
        .await;
    let t = &plan["targets"][0];
    assert_eq!(t["refused"]["removals"], 5, "{plan}");
    assert!(t["disable"].as_array().unwrap().is_empty());
    let r = e
        .ok(
            StatusCode::OK,
            "POST",
            "/api/v1/sync/apply",
            CENTRAL,
            Some(json!({})),
        )
        .await;
    assert_eq!(r["jobs_armed"], 0, "{r}");
    p.work().await;
    assert!(peers
        .scim
        .list_all("/Users")
        .unwrap()
        .iter()
        .all(|u| u["active"] == true));
    // Forced: first stage only (disable); nothing deleted yet.
    let plan = e
        .ok(
            StatusCode::OK,
            "GET",
            "/api/v1/sync/plan?force=true",
            CENTRAL,
            None,
        )
        .await;
    assert_eq!(plan["targets"][0]["disable"].as_array().unwrap().len(), 5);
    let r = e
        .ok(
            StatusCode::OK,
            "POST",
            "/api/v1/sync/apply",
            CENTRAL,
            Some(json!({"force": true})),
        )
        .await;
    assert_eq!(r["jobs_armed"], 5, "{r}");
    p.work().await;
    let users = peers.scim.list_all("/Users").unwrap();
    assert_eq!(users.len(), 5);
    assert!(users.iter().all(|u| u["active"] == false));
    // The next plan waits out the grace period before deleting.
    let plan = e
        .ok(
            StatusCode::OK,
            "GET",
            "/api/v1/sync/plan?force=true",
            CENTRAL,
            None,
        )
        .await;
    assert_eq!(
        plan["targets"][0]["waiting"].as_array().unwrap().len(),
        5,
        "{plan}"
    );
    assert!(plan["targets"][0]["delete"].as_array().unwrap().is_empty());
    assert!(p.audit_count("sync.apply").await >= 2);
    assert!(p.audit_count("targets.manage").await >= 2);

    // Removing the target: its open jobs fail with a clear reason.
    e.ok(
        StatusCode::NO_CONTENT,
        "DELETE",
        "/api/v1/targets/scim-lms",
        CENTRAL,
        None,
    )
    .await;
    let (s, v) = e
        .call("DELETE", "/api/v1/targets/scim-lms", CENTRAL, None)
        .await;
    assert_eq!(
        (s, v["type"].as_str()),
        (
            StatusCode::NOT_FOUND,
            Some("urn:fiktiv:problem:no-such-target")
        )
    );
}
