//! Housekeeping that `fiktiv serve` schedules (service/src/housekeeping.rs): review
//! reminders given once per case, due date and status, with an audit event and shown in
//! the review list; retention shredding when its date comes; each task claimed once
//! per interval through the `schedules` table. On SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use crate::support::api;

use api::*;
use axum::http::StatusCode;
use chrono::TimeDelta;
use fiktiv::housekeeping::run_due;
use fiktiv_routine::reviews::Reminded;
use fiktiv_tests::TestDatabase;
use serde_json::json;

async fn open_case(e: &Env) -> String {
    e.walk()
        .open(
            json!({"country": "se", "personal_number": se_number(date(2015, 5, 17), 123),
                   "first_name": "Åsa", "last_name": "Öberg", "birth_date": "2015-05-17"}),
        )
        .await
}

async fn reminders_in_trail(e: &Env, case: &str) -> Vec<serde_json::Value> {
    let ev = e
        .ok(
            StatusCode::OK,
            "GET",
            &format!("/api/v1/audit/events?case_id={case}&limit=100"),
            AUDITOR,
            None,
        )
        .await;
    ev.as_array()
        .unwrap()
        .iter()
        .filter(|x| x["action"] == "review.reminder")
        .cloned()
        .collect()
}

async fn reminders_once_and_audited(db: TestDatabase) {
    let e = env(db, at(2026, 3, 2)).await;
    let case = open_case(&e).await;

    // Just opened: the opening counts as a review, nothing to remind.
    let h = run_due(&e.ctx).await.unwrap();
    assert_eq!(h.reminders, Some(Reminded::default()));
    // Claimed for an hour: a second call at once (another instance) does not run it.
    let h = run_due(&e.ctx).await.unwrap();
    assert!(h.reminders.is_none() && h.retention.is_none());

    // Before the school year starts the review is due soon: one reminder...
    e.clock.set(at(2026, 7, 20));
    let h = run_due(&e.ctx).await.unwrap();
    assert_eq!(
        h.reminders,
        Some(Reminded {
            due_soon: 1,
            overdue: 0
        })
    );
    // ...and once it is past, one more, now overdue.
    e.clock.set(at(2026, 8, 16));
    let h = run_due(&e.ctx).await.unwrap();
    assert_eq!(
        h.reminders,
        Some(Reminded {
            due_soon: 0,
            overdue: 1
        })
    );
    let trail = reminders_in_trail(&e, &case).await;
    assert_eq!(trail.len(), 2, "{trail:?}");
    assert!(trail.iter().all(|t| t["actor"] == "system"));
    let mut purposes: Vec<&str> = trail
        .iter()
        .map(|t| t["purpose"].as_str().unwrap())
        .collect();
    purposes.sort_unstable();
    assert_eq!(purposes, ["due-soon", "overdue"]);
    let list = e
        .ok(
            StatusCode::OK,
            "GET",
            &format!("/api/v1/units/{UNIT_A}/reviews"),
            SCHOOL_A,
            None,
        )
        .await;
    let item = &list.as_array().unwrap()[0];
    assert_eq!(item["case_id"], case.as_str());
    assert_eq!(item["status"], "overdue");
    assert!(item["reminded_at"]
        .as_str()
        .unwrap()
        .starts_with("2026-08-16T"));

    // Every hour after: no second reminder for the same due date.
    for _ in 0..3 {
        e.clock.advance(TimeDelta::hours(2));
        let h = run_due(&e.ctx).await.unwrap();
        assert_eq!(h.reminders, Some(Reminded::default()));
    }
    assert_eq!(reminders_in_trail(&e, &case).await.len(), 2);

    // A review resets it: the next due date is fine again, nothing reminded.
    e.ok(
        StatusCode::CREATED,
        "POST",
        &format!("/api/v1/cases/{case}/reviews"),
        SCHOOL_A,
        Some(json!({"outcome": "continue"})),
    )
    .await;
    e.clock.advance(TimeDelta::hours(2));
    let h = run_due(&e.ctx).await.unwrap();
    assert_eq!(h.reminders, Some(Reminded::default()));
    let list = e
        .ok(
            StatusCode::OK,
            "GET",
            &format!("/api/v1/units/{UNIT_A}/reviews?all=true"),
            SCHOOL_A,
            None,
        )
        .await;
    assert_eq!(list[0]["status"], "ok");
    assert!(list[0]["reminded_at"].is_null());
}
both_backends!(reminders_once_and_audited);

/// Retention runs from the schedule too: an ended case's identity is shredded once its
/// date comes, without anyone running `fiktiv retention run`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_runs_on_schedule() {
    let (_dir, config) = short_retention();
    let e = env_with(TestDatabase::sqlite().unwrap(), at(2026, 3, 2), config).await;
    let case = open_case(&e).await;
    e.ok(
        StatusCode::OK,
        "POST",
        &format!("/api/v1/cases/{case}/end"),
        SCHOOL_A,
        Some(json!({"reason": "pupil-left"})),
    )
    .await;
    let h = run_due(&e.ctx).await.unwrap();
    assert_eq!(h.retention.unwrap().identities, 0);
    e.clock.set(at(2026, 3, 12));
    let h = run_due(&e.ctx).await.unwrap();
    assert_eq!(h.retention.unwrap().identities, 1);
    let (s, _) = e
        .call(
            "GET",
            &format!("/api/v1/cases/{case}/identity"),
            SCHOOL_A,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::GONE);
}
