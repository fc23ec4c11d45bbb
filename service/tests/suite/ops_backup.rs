//! Backup and restore of a database the routine filled through the API: every case,
//! every action plan (each version) and every audit event comes back intact, readable
//! through the API with the same root key and the same tokens. SQLite and PostgreSQL.
//! (`tests/tests/suite/backup.rs` shows the vault's side: tampered archives refused, a case
//! shredded before the backup not recoverable.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use crate::support::api;
use crate::support::ops;

use std::sync::Arc;

use api::at;
use fiktiv_app::config::Config;
use fiktiv_tests::TestDatabase;
use fiktiv_vault::{audit, backup, ManualClock, RootKey};
use ops::Registrar;
use serde_json::{json, Value};
use sqlx::Row;

/// Every audit event with its chain fields, in order.
async fn events(r: &Registrar) -> Vec<(i64, String, String, String, String)> {
    sqlx::query("SELECT seq, event_id, action, prev_hash, mac FROM audit_events ORDER BY seq")
        .fetch_all(r.vault.db().pool())
        .await
        .unwrap()
        .iter()
        .map(|x| {
            (
                x.get("seq"),
                x.get("event_id"),
                x.get("action"),
                x.get("prev_hash"),
                x.get("mac"),
            )
        })
        .collect()
}

/// Every case as listed, and every version of its plan, through the API.
async fn cases_and_plans(r: &Registrar) -> Vec<(Value, Vec<Value>)> {
    let list = r
        .call("GET", "/api/v1/cases", &r.central, Value::Null, 200)
        .await;
    let mut out = Vec::new();
    for c in list.as_array().unwrap() {
        let id = c["case_id"].as_str().unwrap();
        let case = r
            .call(
                "GET",
                &format!("/api/v1/cases/{id}"),
                &r.school,
                Value::Null,
                200,
            )
            .await;
        let mut plans = Vec::new();
        for version in 1..=2 {
            let (path, want) = (format!("/api/v1/cases/{id}/plan?version={version}"), 200);
            plans.push(r.call("GET", &path, &r.school, Value::Null, want).await);
        }
        out.push((case, plans));
    }
    out
}

async fn a_routine_database_survives_backup_and_restore(db: TestDatabase) {
    let postgres = db.is_postgres();
    let key = RootKey::generate().to_base64().to_string();
    let clock = ManualClock::new(at(2026, 3, 2));
    let r = Registrar::new(db.url(), &key, &Config::default(), Arc::new(clock.clone())).await;
    let mut cases = Vec::new();
    for i in 0..3 {
        cases.push(r.pupil(i).await);
    }
    // A second plan version for each case.
    for c in &cases {
        r.call(
            "PUT",
            &format!("/api/v1/cases/{c}/plan"),
            &r.school,
            json!({"information_handling": "revised after the meeting", "platforms": ["google"],
                   "guardian_contact_routes": [], "staff_to_inform": [], "free_text": "v2"}),
            200,
        )
        .await;
    }
    let before_cases = cases_and_plans(&r).await;
    assert_eq!(before_cases.len(), 3);
    assert_eq!(
        before_cases[0].1[1]["plan"]["free_text"], "v2",
        "{:?}",
        before_cases[0].1
    );
    let before_events = events(&r).await;

    let bkey = r.vault.keys().backup().unwrap();
    let (archive, summary) = backup::create(r.vault.db(), &bkey, "2026-03-02T10:00:00Z")
        .await
        .unwrap();
    assert!(summary.rows > 0);
    let tokens = (r.school.clone(), r.central.clone());
    // Destroy: the database is dropped whole.
    r.vault.db().close().await;
    drop(r);
    drop(db);

    // Restore into a new, empty database, and open it with the same key.
    let fresh = if postgres {
        TestDatabase::postgres().unwrap()
    } else {
        TestDatabase::sqlite().unwrap()
    };
    let target = fiktiv_vault::Db::connect(fresh.url()).await.unwrap();
    let restored = backup::restore(&target, &bkey, &archive).await.unwrap();
    assert_eq!(restored.rows, summary.rows);
    target.close().await;
    let mut r2 = Registrar::new(fresh.url(), &key, &Config::default(), Arc::new(clock)).await;
    let report = audit::verify(r2.vault.db().pool(), r2.vault.keys().audit())
        .await
        .unwrap();
    assert!(report.ok(), "{:?}", report.first_problem);
    // Registrar::new made two tokens (two audit events) on the restored database;
    // the old tokens work as well.
    r2.school = tokens.0;
    r2.central = tokens.1;
    let after_events = events(&r2).await;
    assert_eq!(after_events[..before_events.len()], before_events[..]);
    assert_eq!(after_events.len(), before_events.len() + 2);
    assert_eq!(cases_and_plans(&r2).await, before_cases);
}

both_backends!(a_routine_database_survives_backup_and_restore);
