//! Provisioning through fault-injecting proxies in front of slapd and scim2-server:
//! dropped connections, answers cut after the peer acted, slow answers, refused
//! connections, 5xx and 429. It converges with exactly one account per person and
//! target, one group per unit and class, and no job lost.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use crate::support::api;
use crate::support::provisioning;

use std::time::Duration;

use api::*;
use chrono::TimeDelta;
use fiktiv_tests::{Fault, FaultProxy, TestDatabase};
use provisioning::*;

async fn converges_through_faults(db: TestDatabase) {
    let peers = Peers::start();
    let ldap = FaultProxy::for_slapd(&peers.slapd).unwrap();
    let scim = FaultProxy::for_scim(&peers.scim).unwrap();
    let toml = targets_toml(
        &peers,
        &ldap.url_for("ldap"),
        &format!("{}/v2", scim.url_for("http")),
        "",
    )
    .replace("max_attempts = 8", "max_attempts = 30");
    let p = penv(db, at(2026, 3, 2), &toml).await;
    let e = &p.e;
    let mut cases = Vec::new();
    for (i, (f, l)) in [
        ("Maja", "Lindqvist"),
        ("Otto", "Berg"),
        ("Ines", "Holm"),
        ("Tage", "Vik"),
    ]
    .into_iter()
    .enumerate()
    {
        let real = Real::new(
            "Riktig",
            ["Ett", "Tva", "Tre", "Fyra"][i],
            "2015-05-17",
            50 + i as u16,
        );
        let g = (i == 0).then(|| guardian("Kanariemor", "Ett", 456, ("Karin", "Berglund")));
        cases.push(pupil(e, &real, (f, l, "2015-09-03"), g).await);
    }

    let rounds: Vec<(Fault, Fault)> = vec![
        (Fault::DropConnections, Fault::status(503)),
        (Fault::DropAfterBytes(60), Fault::too_many_requests(1)),
        (
            Fault::Delay(Duration::from_millis(150)),
            Fault::DropAfterBytes(120),
        ),
        (
            Fault::Refuse,
            Fault::HttpStatus {
                status: 500,
                every_nth: 2,
                retry_after: None,
            },
        ),
        (
            Fault::DropAfterBytes(300),
            Fault::Delay(Duration::from_millis(150)),
        ),
        (Fault::None, Fault::DropConnections),
        (
            Fault::DropAfterBytes(1000),
            Fault::HttpStatus {
                status: 502,
                every_nth: 3,
                retry_after: None,
            },
        ),
        (
            Fault::Delay(Duration::from_millis(50)),
            Fault::HttpStatus {
                status: 429,
                every_nth: 2,
                retry_after: Some(1),
            },
        ),
    ];
    for (lf, sf) in rounds {
        ldap.set(lf).unwrap();
        scim.set(sf).unwrap();
        p.work().await;
        e.clock.advance(TimeDelta::seconds(10));
    }
    ldap.clear().unwrap();
    scim.clear().unwrap();
    for _ in 0..20 {
        p.work().await;
        if p.jobs("pending").await.is_empty() && p.jobs("running").await.is_empty() {
            break;
        }
        e.clock.advance(TimeDelta::seconds(10));
    }
    assert!(ldap.stats().faults_injected > 0 && scim.stats().faults_injected > 0);

    // No job lost: 5 persons × 3 targets, all done.
    let done = p.jobs("done").await;
    assert_eq!(done.len(), 15, "failed: {:?}", p.jobs("failed").await);
    let retried = done
        .iter()
        .filter(|j| j["attempts"].as_i64().unwrap() >= 3)
        .count();
    assert!(retried >= 10, "the faults made jobs retry: {done:?}");
    // Exactly one account per person and target.
    for case in &cases {
        for (id, _) in p.person_ids(case).await {
            assert_eq!(peers.ldap_count(&id), 1, "ldap {id}");
            assert_eq!(peers.scim_users(&id).len(), 1, "scim {id}");
            assert_eq!(peers.csv_count(&id), 1, "csv {id}");
        }
    }
    assert_eq!(peers.scim.list_all("/Users").unwrap().len(), 5);
    let groups = peers.scim.list_all("/Groups").unwrap();
    assert_eq!(groups.len(), 2, "one group per unit and class: {groups:?}");
    let ldap_groups = peers
        .slapd
        .ldapsearch("(objectClass=groupOfNames)", &["cn"])
        .unwrap();
    assert_eq!(ldap_groups.matches("dn: ").count(), 2, "{ldap_groups}");
    // And the accounts are right, read back.
    let plan = e
        .ok(
            axum::http::StatusCode::OK,
            "GET",
            "/api/v1/sync/plan",
            CENTRAL,
            None,
        )
        .await;
    for t in plan["targets"].as_array().unwrap() {
        for k in ["create", "update", "disable", "delete"] {
            assert!(t[k].as_array().unwrap().is_empty(), "{k} in {t}");
        }
    }
}

both_backends!(converges_through_faults);
