//! The routine's read-backs and edges, through the router: local dates around
//! midnight, reveal lists and four eyes with several roles and two tokens, staff-told
//! and review history read back, chosen guardian digits and the limit on "unavailable"
//! answers, the order queue after a case ends, problem+json for router errors, lists
//! filtered by unit, and configurable identity and reveal rules.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use crate::support::api;

use api::*;
use axum::http::StatusCode;
use chrono::{TimeDelta, TimeZone, Utc};
use fiktiv_app::config::Config;
use fiktiv_policies::Role;
use fiktiv_tests::TestDatabase;
use serde_json::{json, Value};

const CANARY_FIRST: &str = "Kanarieelev";
const CANARY_LAST: &str = "Hemligsson";

fn open_body(number: &str, first: &str, last: &str, birth: &str) -> Value {
    json!({"country": "se", "personal_number": number, "first_name": first,
           "last_name": last, "birth_date": birth})
}

async fn open_case(e: &Env, who: &str, unit: &str, body: Value) -> String {
    e.ok(
        StatusCode::CREATED,
        "POST",
        &format!("/api/v1/units/{unit}/cases"),
        who,
        Some(body),
    )
    .await["case_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A Swedish case of unit A up to a sent order, with guardian 1 linked. Returns (case,
/// order).
async fn ordered_case(e: &Env, real: &str, real_birth: &str, fict_birth: &str) -> (String, String) {
    e.walk()
        .fictitious("Maja", "Lindqvist", fict_birth)
        .guardian(json!({"linked": true,
            "real": {"personal_number": se_number(date(1985, 2, 11), 456),
                     "first_name": "Kanariemor", "last_name": CANARY_LAST, "birth_date": "1985-02-11"},
            "fictitious": {"first_name": "Karin", "last_name": "Berglund", "birth_date": "1985-07-07"}}))
        .ordered(open_body(real, CANARY_FIRST, CANARY_LAST, real_birth))
        .await
}

fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
}

fn assert_no_canary(v: &Value) {
    let t = v.to_string();
    assert!(
        !t.contains(CANARY_FIRST) && !t.contains(CANARY_LAST) && !t.contains("Kanariemor"),
        "a real name is in a response: {t}"
    );
}

/// "Today" is the Swedish (Norwegian) local date, not the UTC date: 22:00 UTC on 14
/// August is already the first school day in Stockholm in summer, 23:00 UTC on 31
/// December already New Year's Day in winter.
async fn local_dates_around_midnight(db: TestDatabase) {
    let e = env(db, at(2026, 3, 2)).await;
    let case = open_case(
        &e,
        SCHOOL_A,
        UNIT_A,
        open_body(
            &se_number(date(2015, 5, 17), 123),
            CANARY_FIRST,
            CANARY_LAST,
            "2015-05-17",
        ),
    )
    .await;
    let c = format!("/api/v1/cases/{case}");
    let unit = format!("/api/v1/units/{UNIT_A}/reviews");
    let mine = |v: Value| {
        v.as_array()
            .unwrap()
            .iter()
            .find(|i| i["case_id"] == case.as_str())
            .cloned()
            .unwrap()
    };

    // 23:59 in Stockholm on 14 August (CEST, UTC+2): still due soon.
    e.clock.set(utc(2026, 8, 14, 21, 59));
    let r = mine(e.ok(StatusCode::OK, "GET", &unit, SCHOOL_A, None).await);
    assert_eq!(
        (r["status"].as_str(), r["days_until_due"].as_i64()),
        (Some("due-soon"), Some(1))
    );
    // A staff-told date of 15 August is still in the future.
    let (s, p) = e
        .call(
            "POST",
            &format!("{c}/staff-told"),
            SCHOOL_A,
            Some(json!({"staff": ["class teacher"], "told_on": "2026-08-15"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    assert_eq!(p["violations"][0]["code"], "date.in-future");

    // 00:00 in Stockholm on 15 August (still 14 August in UTC): the school year has
    // started, the review is overdue, and 15 August is today.
    e.clock.set(utc(2026, 8, 14, 22, 0));
    let r = mine(e.ok(StatusCode::OK, "GET", &unit, SCHOOL_A, None).await);
    assert_eq!(r["status"], "overdue");
    let r = mine(
        e.ok(StatusCode::OK, "GET", "/api/v1/reviews", CENTRAL, None)
            .await,
    );
    assert_eq!(r["status"], "overdue");
    e.ok(
        StatusCode::CREATED,
        "POST",
        &format!("{c}/staff-told"),
        SCHOOL_A,
        Some(json!({"staff": ["class teacher"], "told_on": "2026-08-15"})),
    )
    .await;
    let rec = e
        .ok(
            StatusCode::CREATED,
            "POST",
            &format!("{c}/reviews"),
            SCHOOL_A,
            Some(json!({"outcome": "continue"})),
        )
        .await;
    assert_eq!(rec["reviewed_on"], "2026-08-15");
    assert_eq!(rec["next_due"], "2027-08-15");

    // A child born today (local date) can be taken in although UTC says tomorrow.
    let newborn = se_number(date(2026, 8, 15), 5);
    open_case(
        &e,
        SCHOOL_A,
        UNIT_A,
        open_body(&newborn, "Nyfödd", "Barnsson", "2026-08-15"),
    )
    .await;

    // Winter (CET, UTC+1): 23:30 UTC on 31 December is New Year's Day in Stockholm.
    e.clock.set(utc(2026, 12, 31, 23, 30));
    e.ok(
        StatusCode::CREATED,
        "POST",
        &format!("{c}/staff-told"),
        SCHOOL_A,
        Some(json!({"staff": ["nurse"], "told_on": "2027-01-01"})),
    )
    .await;
    // The case ends on the local date, and its shred dates follow from it.
    let ended = e
        .ok(
            StatusCode::OK,
            "POST",
            &format!("{c}/end"),
            SCHOOL_A,
            Some(json!({"reason": "pupil-left"})),
        )
        .await;
    assert_eq!(ended["ended_on"], "2027-01-01");
    let shred_on =
        chrono::NaiveDate::parse_from_str(ended["identity_shred_on"].as_str().unwrap(), "%Y-%m-%d")
            .unwrap();
    // One minute before local midnight of the shred date: nothing is shredded yet.
    let midnight = chrono_tz::Europe::Stockholm
        .from_local_datetime(&shred_on.and_hms_opt(0, 0, 0).unwrap())
        .single()
        .unwrap()
        .with_timezone(&Utc);
    e.clock.set(midnight - TimeDelta::minutes(1));
    let r = fiktiv_routine::end::run_retention(&e.vault, "test")
        .await
        .unwrap();
    assert_eq!(r.identities, 0);
    e.clock.set(midnight);
    let r = fiktiv_routine::end::run_retention(&e.vault, "test")
        .await
        .unwrap();
    assert_eq!(r.identities, 1);

    // Norway (Europe/Oslo) likewise.
    e.clock.set(utc(2027, 8, 14, 21, 59));
    let no = open_case(
        &e,
        SCHOOL_A,
        UNIT_A,
        json!({"country": "no", "personal_number": no_number(date(2014, 11, 20)),
               "first_name": "Kari", "last_name": "Nordmann", "birth_date": "2014-11-20"}),
    )
    .await;
    let meta = e
        .ok(
            StatusCode::OK,
            "GET",
            &format!("/api/v1/cases/{no}"),
            SCHOOL_A,
            None,
        )
        .await;
    assert_eq!(meta["last_review_on"], "2027-08-14");
    e.clock.set(utc(2027, 8, 14, 22, 1));
    let h = e
        .ok(
            StatusCode::CREATED,
            "POST",
            &format!("/api/v1/cases/{no}/staff-told"),
            SCHOOL_A,
            Some(json!({"staff": ["lærer"], "told_on": "2027-08-15"})),
        )
        .await;
    assert_eq!(h["told_on"], "2027-08-15");
}
both_backends!(local_dates_around_midnight);

/// Reveal lists, and four eyes when one person holds several roles or two tokens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reveal_lists_and_four_eyes_across_roles_and_tokens() {
    let mut e = env(TestDatabase::sqlite().unwrap(), at(2026, 3, 2)).await;
    // One person, "rektor": a token with school+approver, and a second approver token.
    for (key, roles) in [
        ("rektor-both", vec![Role::School, Role::Approver]),
        ("rektor-approver", vec![Role::Approver]),
    ] {
        let t =
            fiktiv_staff::tokens::create(&e.vault, "test", "rektor", &roles, &[UNIT_A.into()], 30)
                .await
                .unwrap();
        e.tokens.insert(key, t.secret.to_string());
    }
    let case = open_case(
        &e,
        SCHOOL_A,
        UNIT_A,
        open_body(
            &se_number(date(2015, 5, 17), 123),
            CANARY_FIRST,
            CANARY_LAST,
            "2015-05-17",
        ),
    )
    .await;
    let ask = |purpose: &str| json!({"case_id": case, "purpose": purpose});
    let id_of = |v: Value| v["reveal_id"].as_str().unwrap().to_owned();
    let ids = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|i| i["reveal_id"].as_str().unwrap().to_owned())
            .collect()
    };

    let own = id_of(
        e.ok(
            StatusCode::CREATED,
            "POST",
            "/api/v1/reveals",
            "rektor-both",
            Some(ask("Data-subject access request 2026/3")),
        )
        .await,
    );
    // Not offered to its requester, under either token; offered to the approvers.
    for who in ["rektor-both", "rektor-approver"] {
        let p = e
            .ok(StatusCode::OK, "GET", "/api/v1/reveals/pending", who, None)
            .await;
        assert!(
            !ids(&p).contains(&own),
            "{who} is offered their own request"
        );
    }
    let p = e
        .ok(
            StatusCode::OK,
            "GET",
            "/api/v1/reveals/pending",
            APPROVER,
            None,
        )
        .await;
    assert!(ids(&p).contains(&own));
    let item = p
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["reveal_id"] == own.as_str())
        .unwrap();
    assert_eq!(item["purpose"], "Data-subject access request 2026/3");
    assert_eq!(item["requested_by"], "staff:rektor");
    assert_eq!(item["unit"], UNIT_A);
    assert_eq!(item["subject"], "pupil");
    assert_no_canary(&p);
    // Schools, the central administrator and the auditor do not see the pending list.
    for who in [SCHOOL_A, CENTRAL, AUDITOR] {
        let (s, _) = e.call("GET", "/api/v1/reveals/pending", who, None).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{who}");
    }
    // Nobody decides their own request: not with the school+approver token, not with
    // the person's second token.
    for who in ["rektor-both", "rektor-approver"] {
        let (s, _) = e
            .call(
                "POST",
                &format!("/api/v1/reveals/{own}/decision"),
                who,
                Some(json!({"approve": true})),
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{who} decided their own request");
    }
    let mine = e
        .ok(
            StatusCode::OK,
            "GET",
            "/api/v1/reveals/mine",
            "rektor-approver",
            None,
        )
        .await;
    assert_eq!(ids(&mine), vec![own.clone()]);
    assert_eq!(mine[0]["state"], "pending");
    e.ok(
        StatusCode::OK,
        "POST",
        &format!("/api/v1/reveals/{own}/decision"),
        APPROVER,
        Some(json!({"approve": true})),
    )
    .await;
    let mine = e
        .ok(
            StatusCode::OK,
            "GET",
            "/api/v1/reveals/mine",
            "rektor-both",
            None,
        )
        .await;
    assert_eq!(mine[0]["state"], "approved");
    assert_eq!(mine[0]["decided_by"], "staff:approver");
    assert!(mine[0]["expires_at"].is_string());
    let shown = e
        .ok(
            StatusCode::OK,
            "GET",
            &format!("/api/v1/reveals/{own}/identity"),
            "rektor-both",
            None,
        )
        .await;
    assert_eq!(shown["first_name"], CANARY_FIRST);
    let mine = e
        .ok(
            StatusCode::OK,
            "GET",
            "/api/v1/reveals/mine",
            "rektor-both",
            None,
        )
        .await;
    assert_eq!(mine[0]["state"], "read");
    assert!(mine[0]["read_at"].is_string());
    assert_no_canary(&mine);

    // The school's own list: its requests only, each with its state.
    let mut asked = Vec::new();
    for purpose in ["p1", "p2", "p3"] {
        // A minute apart: lists are oldest first.
        e.clock.advance(TimeDelta::minutes(1));
        asked.push(id_of(
            e.ok(
                StatusCode::CREATED,
                "POST",
                "/api/v1/reveals",
                SCHOOL_A,
                Some(ask(purpose)),
            )
            .await,
        ));
    }
    let [pending, refused, expired] = <[String; 3]>::try_from(asked).unwrap();
    e.ok(
        StatusCode::OK,
        "POST",
        &format!("/api/v1/reveals/{refused}/decision"),
        "rektor-approver",
        Some(json!({"approve": false})),
    )
    .await;
    e.ok(
        StatusCode::OK,
        "POST",
        &format!("/api/v1/reveals/{expired}/decision"),
        APPROVER2,
        Some(json!({"approve": true})),
    )
    .await;
    // Not opened within the default 72 hours: expired.
    e.clock.advance(TimeDelta::hours(73));
    let mine = e
        .ok(
            StatusCode::OK,
            "GET",
            "/api/v1/reveals/mine",
            SCHOOL_A,
            None,
        )
        .await;
    let states: Vec<(String, String)> = mine
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["reveal_id"].as_str().unwrap().to_owned(),
                i["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        states,
        vec![
            (pending.clone(), "pending".to_owned()),
            (refused, "refused".to_owned()),
            (expired, "expired".to_owned()),
        ]
    );
    // Another school sees none of them; the pending list now has only `pending`.
    let b = e
        .ok(
            StatusCode::OK,
            "GET",
            "/api/v1/reveals/mine",
            SCHOOL_B,
            None,
        )
        .await;
    assert!(b.as_array().unwrap().is_empty());
    let p = e
        .ok(
            StatusCode::OK,
            "GET",
            "/api/v1/reveals/pending",
            APPROVER,
            None,
        )
        .await;
    assert_eq!(ids(&p), vec![pending]);
}

/// An approved reveal waits `open_within_hours` for the requester; opening it starts
/// the read window of `ttl_minutes`. Both are configurable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reveal_time_limit_is_configurable() {
    let mut config = Config::default();
    config.reveal.ttl_minutes = 5;
    config.reveal.open_within_hours = 1;
    let e = env_with(TestDatabase::sqlite().unwrap(), at(2026, 3, 2), config).await;
    let case = open_case(
        &e,
        SCHOOL_A,
        UNIT_A,
        open_body(
            &se_number(date(2015, 5, 17), 123),
            CANARY_FIRST,
            CANARY_LAST,
            "2015-05-17",
        ),
    )
    .await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let id = e
            .ok(
                StatusCode::CREATED,
                "POST",
                "/api/v1/reveals",
                SCHOOL_A,
                Some(json!({"case_id": case, "purpose": "ttl"})),
            )
            .await["reveal_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let d = e
            .ok(
                StatusCode::OK,
                "POST",
                &format!("/api/v1/reveals/{id}/decision"),
                APPROVER,
                Some(json!({"approve": true})),
            )
            .await;
        // Waiting for the requester: an hour.
        assert_eq!(d["expires_at"], "2026-03-02T10:00:00.000000Z");
        ids.push(id);
    }
    let identity = |i: usize| format!("/api/v1/reveals/{}/identity", ids[i]);
    let open = |i: usize| format!("/api/v1/reveals/{}/open", ids[i]);
    // Opened after 30 minutes: five minutes to read from then, whatever the hour said.
    e.clock.advance(TimeDelta::minutes(30));
    for i in [0, 1] {
        let o = e.ok(StatusCode::OK, "POST", &open(i), SCHOOL_A, None).await;
        assert_eq!(o["expires_at"], "2026-03-02T09:35:00.000000Z");
    }
    // Opening again does not move the window; only the requester may open.
    e.clock.advance(TimeDelta::minutes(4));
    let o = e.ok(StatusCode::OK, "POST", &open(0), SCHOOL_A, None).await;
    assert_eq!(o["expires_at"], "2026-03-02T09:35:00.000000Z");
    let (s, _) = e.call("POST", &open(2), APPROVER, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    e.ok(StatusCode::OK, "GET", &identity(0), SCHOOL_A, None)
        .await;
    e.clock.advance(TimeDelta::minutes(1));
    let gone = |(s, p): (StatusCode, Value)| (s, p["type"].as_str().unwrap().to_owned());
    assert_eq!(
        gone(e.call("GET", &identity(1), SCHOOL_A, None).await),
        (StatusCode::GONE, "urn:fiktiv:problem:reveal-expired".into())
    );
    // Never opened: readable until the hour is up, not after.
    e.clock.advance(TimeDelta::minutes(26));
    assert_eq!(
        gone(e.call("POST", &open(2), SCHOOL_A, None).await),
        (StatusCode::GONE, "urn:fiktiv:problem:reveal-expired".into())
    );
    assert_eq!(
        gone(e.call("GET", &identity(2), SCHOOL_A, None).await),
        (StatusCode::GONE, "urn:fiktiv:problem:reveal-expired".into())
    );
    // Each opening is in the trail.
    let trail = e
        .ok(
            StatusCode::OK,
            "GET",
            "/api/v1/audit/events?action=reveal.open",
            AUDITOR,
            None,
        )
        .await;
    assert_eq!(trail.as_array().map_or(0, Vec::len), 2, "{trail}");
}

/// Step 8 and step 9 read back: who was told and when; each review with who and when.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_told_and_review_history_are_read_back() {
    let e = env(TestDatabase::sqlite().unwrap(), at(2026, 3, 2)).await;
    let case = open_case(
        &e,
        SCHOOL_A,
        UNIT_A,
        open_body(
            &se_number(date(2015, 5, 17), 123),
            CANARY_FIRST,
            CANARY_LAST,
            "2015-05-17",
        ),
    )
    .await;
    let c = format!("/api/v1/cases/{case}");
    let told = format!("{c}/staff-told");
    assert_eq!(
        e.ok(StatusCode::OK, "GET", &told, SCHOOL_A, None).await,
        json!([])
    );
    e.ok(
        StatusCode::CREATED,
        "POST",
        &told,
        SCHOOL_A,
        Some(json!({"staff": ["class teacher", "school nurse"], "told_on": "2026-03-01"})),
    )
    .await;
    e.clock.advance(TimeDelta::days(3));
    e.ok(
        StatusCode::CREATED,
        "POST",
        &told,
        SCHOOL_A2,
        Some(json!({"staff": ["substitute teacher"], "told_on": "2026-03-05"})),
    )
    .await;
    let list = e.ok(StatusCode::OK, "GET", &told, SCHOOL_A2, None).await;
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["seq"], 1);
    assert_eq!(list[0]["staff"], json!(["class teacher", "school nurse"]));
    assert_eq!(list[0]["told_on"], "2026-03-01");
    assert_eq!(list[0]["recorded_by"], "staff:school-a");
    assert_eq!(list[0]["recorded_at"], "2026-03-02T09:00:00.000000Z");
    assert_eq!(list[1]["recorded_by"], "staff:school-a2");
    assert_eq!(list[1]["told_on"], "2026-03-05");
    for who in [CENTRAL, SCHOOL_B, APPROVER, AUDITOR] {
        let (s, _) = e.call("GET", &told, who, None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{who}");
    }

    let reviews = format!("{c}/reviews");
    let h = e.ok(StatusCode::OK, "GET", &reviews, SCHOOL_A, None).await;
    assert_eq!(h["last_review_on"], "2026-03-02");
    assert_eq!(h["next_due"], "2026-08-15");
    assert_eq!(h["status"], "ok");
    assert_eq!(h["reviews"], json!([]));
    e.clock.set(at(2026, 8, 1));
    // No plan version since the case was opened: "plan changed" is refused.
    let (s, p) = e
        .call(
            "POST",
            &reviews,
            SCHOOL_A2,
            Some(json!({"outcome": "plan-changed"})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{p}");
    // An empty plan is no version: refused, nothing written.
    let (s, p) = e
        .call(
            "PUT",
            &format!("{c}/plan"),
            SCHOOL_A2,
            Some(json!({"information_handling": "  ", "platforms": [],
                        "guardian_contact_routes": [], "staff_to_inform": [], "free_text": ""})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    assert_eq!(p["violations"][0]["code"], "plan.empty", "{p}");
    // A meeting date that is no date is refused too.
    let (s, p) = e
        .call(
            "PUT",
            &format!("{c}/plan"),
            SCHOOL_A2,
            Some(json!({"information_handling": "x", "platforms": [],
                        "guardian_contact_routes": [], "staff_to_inform": [], "free_text": "",
                        "meeting_date": "31/11/2026", "attendees": ["rektor"]})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    assert_eq!(p["violations"][0]["field"], "meeting_date", "{p}");
    let (s, _) = e.call("GET", &format!("{c}/plan"), SCHOOL_A2, None).await;
    assert_eq!(s, StatusCode::CONFLICT, "still no plan");
    e.ok(
        StatusCode::OK,
        "PUT",
        &format!("{c}/plan"),
        SCHOOL_A2,
        Some(
            json!({"information_handling": "Changed at the review", "platforms": [],
                    "guardian_contact_routes": [], "staff_to_inform": [], "free_text": "",
                    "meeting_date": "2026-08-01", "attendees": ["rektor", "vårdnadshavare 1"]}),
        ),
    )
    .await;
    e.ok(
        StatusCode::CREATED,
        "POST",
        &reviews,
        SCHOOL_A2,
        Some(json!({"outcome": "plan-changed"})),
    )
    .await;
    let h = e.ok(StatusCode::OK, "GET", &reviews, SCHOOL_A, None).await;
    assert_eq!(h["next_due"], "2027-08-15");
    let r = &h["reviews"][0];
    assert_eq!(
        (
            r["outcome"].as_str(),
            r["reviewed_on"].as_str(),
            r["recorded_by"].as_str()
        ),
        (
            Some("plan-changed"),
            Some("2026-08-01"),
            Some("staff:school-a2")
        )
    );
    for who in [CENTRAL, SCHOOL_B, APPROVER, AUDITOR] {
        let (s, _) = e.call("GET", &reviews, who, None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{who}");
    }
    // Ending through a review: no due date any more, the end-protection outcome kept.
    e.ok(
        StatusCode::CREATED,
        "POST",
        &reviews,
        SCHOOL_A,
        Some(json!({"outcome": "end-protection"})),
    )
    .await;
    let h = e.ok(StatusCode::OK, "GET", &reviews, SCHOOL_A, None).await;
    assert_eq!(h["next_due"], Value::Null);
    assert_eq!(h["reviews"][1]["outcome"], "end-protection");
    assert_no_canary(&h);
}

/// The administrator may choose the guardians' digits too; chosen numbers that are
/// unavailable are audited, and after three such answers only Fiktiv's pick is taken.
/// Under the operator option `must-pass-luhn` (valid check digits), where a chosen
/// number can be a real person's: the default's numbers fail the check and cannot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_with_chosen_guardian_digits_and_limited_unavailable_answers() {
    let dir = tempfile::tempdir().unwrap();
    let ranges = dir.path().join("number_ranges.toml");
    std::fs::write(
        &ranges,
        fiktiv_policies::number_ranges::DEFAULT_POLICY_TOML.replace(
            "check_digit = \"must-fail-luhn\"",
            "check_digit = \"must-pass-luhn\"",
        ),
    )
    .unwrap();
    let mut config = Config::default();
    config.policies.number_ranges = Some(ranges);
    let e = env_with(TestDatabase::sqlite().unwrap(), at(2026, 3, 2), config).await;
    let (_, order) = ordered_case(
        &e,
        &se_number(date(2015, 5, 17), 123),
        "2015-05-17",
        "2015-09-03",
    )
    .await;
    let reg = format!("/api/v1/orders/{order}/registration");
    let before = e.snapshot().await;
    for bad in [
        json!({"serial": 321, "guardian_serials": [{"guardian_no": 2, "serial": 654}]}),
        json!({"guardian_serials": [{"guardian_no": 1, "serial": 1000}]}),
        json!({"guardian_serials": [{"guardian_no": 1, "serial": 1}, {"guardian_no": 1, "serial": 2}]}),
        json!({"guardian_serials": [{"guardian_no": 1}]}),
        json!({"guardian_serials": [{"guardian_no": 1, "serial": 5, "name": "x"}]}),
        json!({"guardian_serials": {"1": 5}}),
    ] {
        let (s, p) = e.call("POST", &reg, CENTRAL, Some(bad.clone())).await;
        assert!(s.is_client_error(), "{bad}: {s} {p}");
        assert_eq!(e.snapshot().await, before, "{bad} stored something");
    }
    let r = e
        .ok(
            StatusCode::OK,
            "POST",
            &reg,
            CENTRAL,
            Some(json!({"serial": 321, "guardian_serials": [{"guardian_no": 1, "serial": 654}]})),
        )
        .await;
    assert_eq!(r["number"], se_number(date(2015, 9, 3), 321));
    assert_eq!(
        r["guardians"][0]["number"],
        se_number(date(1985, 7, 7), 654)
    );
    assert_no_canary(&r);

    // A reveal asked by the guardian's fictitious number, as written in a platform
    // (`YYMMDD-NNNC`), reveals the guardian, after four eyes.
    let g = r["guardians"][0]["number"].as_str().unwrap();
    let written = format!("{}-{}", &g[2..8], &g[8..]);
    let id = e
        .ok(
            StatusCode::CREATED,
            "POST",
            "/api/v1/reveals",
            SCHOOL_A,
            Some(json!({"fictitious_number": written, "purpose": "Platform account query"})),
        )
        .await["reveal_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let p = e
        .ok(
            StatusCode::OK,
            "GET",
            "/api/v1/reveals/pending",
            APPROVER,
            None,
        )
        .await;
    assert_eq!(p[0]["subject"], "guardian-1");
    e.ok(
        StatusCode::OK,
        "POST",
        &format!("/api/v1/reveals/{id}/decision"),
        APPROVER,
        Some(json!({"approve": true})),
    )
    .await;
    let shown = e
        .ok(
            StatusCode::OK,
            "GET",
            &format!("/api/v1/reveals/{id}/identity"),
            SCHOOL_A,
            None,
        )
        .await;
    assert_eq!(shown["first_name"], "Kanariemor");

    // A second pupil whose fictitious birth date is a real protected pupil's birth date.
    let real_same_day = se_number(date(2015, 9, 3), 456);
    open_case(
        &e,
        SCHOOL_B,
        UNIT_B,
        open_body(&real_same_day, "Annan", "Elevsson", "2015-09-03"),
    )
    .await;
    let (case2, order2) = ordered_case(
        &e,
        &se_number(date(2015, 6, 1), 11),
        "2015-06-01",
        "2015-09-03",
    )
    .await;
    let reg2 = format!("/api/v1/orders/{order2}/registration");
    // The real number, the first pupil's fictitious one, the real one again: the same
    // answer each time, and each refusal is in the audit trail.
    for serial in [456, 321, 456] {
        let (s, p) = e
            .call("POST", &reg2, CENTRAL, Some(json!({"serial": serial})))
            .await;
        assert_eq!(
            (s, p["type"].as_str().unwrap()),
            (
                StatusCode::CONFLICT,
                "urn:fiktiv:problem:number-unavailable"
            )
        );
        assert!(!p.to_string().contains(&real_same_day));
    }
    // Now even free digits of the administrator's choosing are refused...
    let (s, p) = e
        .call("POST", &reg2, CENTRAL, Some(json!({"serial": 777})))
        .await;
    assert_eq!(
        (s, p["type"].as_str().unwrap()),
        (
            StatusCode::CONFLICT,
            "urn:fiktiv:problem:chosen-digits-locked"
        )
    );
    let (s, _) = e
        .call(
            "POST",
            &reg2,
            CENTRAL,
            Some(json!({"guardian_serials": [{"guardian_no": 1, "serial": 777}]})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    // ...and Fiktiv's pick goes through, never the real number.
    let r = e
        .ok(StatusCode::OK, "POST", &reg2, CENTRAL, Some(json!({})))
        .await;
    assert_ne!(r["number"], real_same_day.as_str());
    assert_ne!(r["number"], se_number(date(2015, 9, 3), 321).as_str());
    let ev = e
        .ok(
            StatusCode::OK,
            "GET",
            &format!("/api/v1/audit/events?case_id={case2}&limit=100"),
            AUDITOR,
            None,
        )
        .await;
    let denied = ev
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["action"] == "order.register" && x["outcome"] == "denied")
        .count();
    assert_eq!(denied, 3);
    assert!(!ev.to_string().contains(&real_same_day));
}

/// An order whose case ended before registration no longer waits in the queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_of_an_ended_case_leaves_the_queue() {
    let e = env(TestDatabase::sqlite().unwrap(), at(2026, 3, 2)).await;
    let (case, order) = ordered_case(
        &e,
        &se_number(date(2015, 5, 17), 123),
        "2015-05-17",
        "2015-09-03",
    )
    .await;
    let waiting = |v: &Value| {
        v.as_array()
            .unwrap()
            .iter()
            .any(|o| o["order_id"] == order.as_str())
    };
    let q = e
        .ok(StatusCode::OK, "GET", "/api/v1/orders", CENTRAL, None)
        .await;
    assert!(waiting(&q));
    assert_eq!(q[0]["case_state"], "ordered");
    e.ok(
        StatusCode::OK,
        "POST",
        &format!("/api/v1/cases/{case}/end"),
        SCHOOL_A,
        Some(json!({"reason": "pupil-left"})),
    )
    .await;
    let q = e
        .ok(StatusCode::OK, "GET", "/api/v1/orders", CENTRAL, None)
        .await;
    assert!(!waiting(&q));
    let all = e
        .ok(
            StatusCode::OK,
            "GET",
            "/api/v1/orders?all=true",
            CENTRAL,
            None,
        )
        .await;
    assert!(waiting(&all));
    assert_eq!(all[0]["case_state"], "ended");
    assert_no_canary(&all);
    let (s, _) = e
        .call(
            "POST",
            &format!("/api/v1/orders/{order}/registration"),
            CENTRAL,
            Some(json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
}

/// Errors made by the router or a layer are problems too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn router_and_layer_errors_are_problems() {
    use tower::ServiceExt;
    let e = env(TestDatabase::sqlite().unwrap(), at(2026, 3, 2)).await;
    // call_raw asserts application/problem+json on every error.
    let (s, v, _) = e
        .call_raw("DELETE", "/api/v1/cases", Some(CENTRAL), None)
        .await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(v["type"], "urn:fiktiv:problem:method-not-allowed");
    // A body announced larger than the limit is refused before it is read.
    let req = axum::http::Request::post(format!("/api/v1/units/{UNIT_A}/cases"))
        .header("authorization", format!("Bearer {}", e.tokens[SCHOOL_A]))
        .header("content-type", "application/json")
        .header("content-length", (70 * 1024).to_string())
        .body(axum::body::Body::from(vec![b' '; 70 * 1024]))
        .unwrap();
    let resp = e.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["type"], "urn:fiktiv:problem:body-too-large");
    assert_eq!(e.count("cases").await, 0);
}

/// Lists are filtered by unit, and a person who is both central administrator and
/// school staff still never reads a real identity or a plan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_are_filtered_and_admin_with_school_role_sees_no_identity() {
    let mut e = env(TestDatabase::sqlite().unwrap(), at(2026, 3, 2)).await;
    let t = fiktiv_staff::tokens::create(
        &e.vault,
        "test",
        "admin-and-teacher",
        &[Role::CentralAdmin, Role::School],
        &[UNIT_A.into()],
        30,
    )
    .await
    .unwrap();
    e.tokens.insert("admin-school", t.secret.to_string());
    let a = open_case(
        &e,
        SCHOOL_A,
        UNIT_A,
        open_body(
            &se_number(date(2015, 5, 17), 123),
            CANARY_FIRST,
            CANARY_LAST,
            "2015-05-17",
        ),
    )
    .await;
    let b = open_case(
        &e,
        SCHOOL_B,
        UNIT_B,
        open_body(
            &se_number(date(2015, 1, 9), 77),
            "Bertil",
            "Bsson",
            "2015-01-09",
        ),
    )
    .await;
    let ids = |v: Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|i| i["case_id"].as_str().unwrap().to_owned())
            .collect()
    };
    let l = e
        .ok(
            StatusCode::OK,
            "GET",
            &format!("/api/v1/units/{UNIT_B}/cases"),
            SCHOOL_B,
            None,
        )
        .await;
    assert_eq!(ids(l), vec![b.clone()]);
    let l = e
        .ok(
            StatusCode::OK,
            "GET",
            &format!("/api/v1/units/{UNIT_B}/reviews?all=true"),
            SCHOOL_B,
            None,
        )
        .await;
    assert_eq!(ids(l), vec![b.clone()]);
    for path in [
        format!("/api/v1/units/{UNIT_A}/cases"),
        format!("/api/v1/units/{UNIT_A}/reviews"),
        "/api/v1/cases".to_owned(),
        "/api/v1/reviews".to_owned(),
    ] {
        let (s, _) = e.call("GET", &path, SCHOOL_B, None).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{path}");
    }
    let all = e
        .ok(StatusCode::OK, "GET", "/api/v1/cases", CENTRAL, None)
        .await;
    assert_no_canary(&all);
    let mut got = ids(all);
    got.sort();
    let mut want = vec![a.clone(), b];
    want.sort();
    assert_eq!(got, want);

    let c = format!("/api/v1/cases/{a}");
    e.ok(StatusCode::OK, "GET", &c, "admin-school", None).await;
    for (m, path, body) in [
        ("GET", format!("{c}/identity"), None),
        ("GET", format!("{c}/plan"), None),
        ("GET", format!("{c}/name-suggestions"), None),
        (
            "PUT",
            format!("{c}/fictitious-identity"),
            Some(json!({"first_name": CANARY_FIRST, "last_name": "X", "birth_date": "2015-09-03"})),
        ),
        ("GET", "/api/v1/audit/events".to_owned(), None),
    ] {
        let (s, v) = e.call(m, &path, "admin-school", body).await;
        assert!(
            s == StatusCode::NOT_FOUND || s == StatusCode::FORBIDDEN,
            "{m} {path}: {s} {v}"
        );
        assert_no_canary(&v);
    }
}

/// The birth-date rule for fictitious identities comes from configuration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_policy_is_configurable() {
    let config = Config::parse("[identity]\nbirth_date = \"any\"\n", "test").unwrap();
    let e = env_with(TestDatabase::sqlite().unwrap(), at(2026, 3, 2), config).await;
    let case = open_case(
        &e,
        SCHOOL_A,
        UNIT_A,
        open_body(
            &se_number(date(2015, 5, 17), 123),
            CANARY_FIRST,
            CANARY_LAST,
            "2015-05-17",
        ),
    )
    .await;
    let c = format!("/api/v1/cases/{case}");
    e.ok(
        StatusCode::OK,
        "PUT",
        &format!("{c}/login-decision"),
        SCHOOL_A,
        Some(json!({"decision": "fictitious-user"})),
    )
    .await;
    // Another birth year is accepted under "any"...
    e.ok(
        StatusCode::OK,
        "PUT",
        &format!("{c}/fictitious-identity"),
        SCHOOL_A,
        Some(json!({"first_name": "Maja", "last_name": "Lindqvist", "birth_date": "2013-01-01"})),
    )
    .await;
    // ...but never the real birth date or a date in the future.
    for birth in ["2015-05-17", "2027-01-01"] {
        let (s, p) = e
            .call(
                "PUT",
                &format!("{c}/fictitious-identity"),
                SCHOOL_A,
                Some(json!({"first_name": "Maja", "last_name": "Lindqvist", "birth_date": birth})),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{birth}: {p}");
    }
}

/// Shredding follows the configured retention, per record class: here the identity
/// after 10 days, the plan after 30 days, the other records after 60 days.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shredding_follows_the_configured_retention_per_record_class() {
    let (_dir, config) = short_retention();
    let e = env_with(TestDatabase::sqlite().unwrap(), at(2026, 3, 2), config).await;
    let (case, _) = ordered_case(
        &e,
        &se_number(date(2015, 5, 17), 123),
        "2015-05-17",
        "2015-09-03",
    )
    .await;
    let c = format!("/api/v1/cases/{case}");
    let ended = e
        .ok(
            StatusCode::OK,
            "POST",
            &format!("{c}/end"),
            SCHOOL_A,
            Some(json!({"reason": "protection-lifted"})),
        )
        .await;
    assert_eq!(ended["deprovisioning_requested"], true);
    assert_eq!(ended["identity_shred_on"], "2026-03-12");
    assert_eq!(ended["plan_shred_on"], "2026-04-01");
    // The other records go on the latest of their classes' dates, never early.
    assert_eq!(ended["records_shred_on"], "2026-05-01");
    assert_eq!(e.count("deprovision_requests").await, 1);
    let run = || async {
        let r = fiktiv_routine::end::run_retention(&e.vault, "test")
            .await
            .unwrap();
        (r.identities, r.plans, r.records)
    };
    e.clock.set(at(2026, 3, 11));
    assert_eq!(run().await, (0, 0, 0));
    e.clock.set(at(2026, 3, 12));
    assert_eq!(run().await, (1, 0, 0));
    let (s, _) = e
        .call("GET", &format!("{c}/identity"), SCHOOL_A, None)
        .await;
    assert_eq!(s, StatusCode::GONE);
    e.ok(StatusCode::OK, "GET", &format!("{c}/plan"), SCHOOL_A, None)
        .await;
    e.clock.set(at(2026, 4, 1));
    assert_eq!(run().await, (0, 1, 0));
    let (s, _) = e.call("GET", &format!("{c}/plan"), SCHOOL_A, None).await;
    assert!(s == StatusCode::GONE || s == StatusCode::CONFLICT, "{s}");
    let meta = e.ok(StatusCode::OK, "GET", &c, SCHOOL_A, None).await;
    assert_eq!(meta["fictitious"]["first_name"], "Maja");
    e.clock.set(at(2026, 5, 1));
    assert_eq!(run().await, (0, 0, 1));
    let meta = e.ok(StatusCode::OK, "GET", &c, SCHOOL_A, None).await;
    assert_eq!(meta["fictitious"], Value::Null);
    assert_eq!(run().await, (0, 0, 0));
}

/// The SS 12000 temporary form (`check_digit = "ss12000-temporary"`): the fictitious
/// number is the birth date, two letters and two digits, nobody's number; chosen digits
/// above 99 are refused; a reveal by the number as a platform writes it
/// (`YYMMDD-TFNN`) finds the pupil.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_under_the_ss12000_temporary_form() {
    let dir = tempfile::tempdir().unwrap();
    let ranges = dir.path().join("number_ranges.toml");
    std::fs::write(
        &ranges,
        fiktiv_policies::number_ranges::DEFAULT_POLICY_TOML.replace(
            "check_digit = \"must-fail-luhn\"",
            "check_digit = \"ss12000-temporary\"",
        ),
    )
    .unwrap();
    let mut config = Config::default();
    config.policies.number_ranges = Some(ranges);
    let e = env_with(TestDatabase::sqlite().unwrap(), at(2026, 3, 2), config).await;
    let (case, order) = ordered_case(
        &e,
        &se_number(date(2015, 5, 17), 123),
        "2015-05-17",
        "2015-09-03",
    )
    .await;
    let reg = format!("/api/v1/orders/{order}/registration");
    let (s, p) = e
        .call("POST", &reg, CENTRAL, Some(json!({"serial": 150})))
        .await;
    assert!(s.is_client_error(), "{s} {p}");
    let r = e
        .ok(
            StatusCode::OK,
            "POST",
            &reg,
            CENTRAL,
            Some(json!({"serial": 7})),
        )
        .await;
    assert_eq!(r["number"], "20150903TF07");
    let g = r["guardians"][0]["number"].as_str().unwrap();
    assert!(
        g.len() == 12 && &g[..8] == "19850707" && &g[8..10] == "TF",
        "{g}"
    );
    let asked = e
        .ok(
            StatusCode::CREATED,
            "POST",
            "/api/v1/reveals",
            SCHOOL_A,
            Some(json!({"fictitious_number": "150903-TF07", "purpose": "Guardian request"})),
        )
        .await;
    assert_eq!(asked["case_id"], case.as_str(), "{asked}");
}

/// The tax agency's test personal numbers (`check_digit = "tax-agency-test-numbers"`):
/// only numbers from the imported list are given out, each once; a birth date with no
/// listed number left gets a clear refusal; a list with a number that is not valid is
/// refused at start, naming the line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_from_the_tax_agencys_test_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let ranges = dir.path().join("number_ranges.toml");
    std::fs::write(
        &ranges,
        fiktiv_policies::number_ranges::DEFAULT_POLICY_TOML.replace(
            "check_digit = \"must-fail-luhn\"",
            "check_digit = \"tax-agency-test-numbers\"\ntest_numbers_file = \"testpersonnummer.csv\"",
        ),
    )
    .unwrap();
    let pupil_number = se_number(date(2015, 9, 3), 321);
    let guardian_number = se_number(date(1985, 7, 7), 654);
    std::fs::write(
        dir.path().join("testpersonnummer.csv"),
        format!("Testpersonnummer\n{pupil_number}\n{guardian_number}\n"),
    )
    .unwrap();
    let mut config = Config::default();
    config.policies.number_ranges = Some(ranges.clone());
    let e = env_with(
        TestDatabase::sqlite().unwrap(),
        at(2026, 3, 2),
        config.clone(),
    )
    .await;
    let (_, order) = ordered_case(
        &e,
        &se_number(date(2015, 5, 17), 123),
        "2015-05-17",
        "2015-09-03",
    )
    .await;
    let reg = format!("/api/v1/orders/{order}/registration");
    // Digits of a number that is not on the list: refused.
    let (s, p) = e
        .call("POST", &reg, CENTRAL, Some(json!({"serial": 322})))
        .await;
    assert!(s.is_client_error(), "{s} {p}");
    let r = e
        .ok(StatusCode::OK, "POST", &reg, CENTRAL, Some(json!({})))
        .await;
    assert_eq!(r["number"], pupil_number.as_str());
    assert_eq!(r["guardians"][0]["number"], guardian_number.as_str());
    // A second pupil with the same fictitious birth date: the list has no number left.
    let (_, order2) = ordered_case(
        &e,
        &se_number(date(2015, 6, 1), 11),
        "2015-06-01",
        "2015-09-03",
    )
    .await;
    let (s, p) = e
        .call(
            "POST",
            &format!("/api/v1/orders/{order2}/registration"),
            CENTRAL,
            Some(json!({})),
        )
        .await;
    assert_eq!(
        (s, p["type"].as_str()),
        (
            StatusCode::CONFLICT,
            Some("urn:fiktiv:problem:no-number-free")
        ),
        "{p}"
    );
    // A list with a number that is not a valid personal number: refused at start.
    let last = pupil_number.as_bytes()[11] - b'0';
    std::fs::write(
        dir.path().join("testpersonnummer.csv"),
        format!(
            "{pupil_number}\n{}{}\n",
            &pupil_number[..11],
            (last + 1) % 10
        ),
    )
    .unwrap();
    let refused = fiktiv_app::context::load_policies(&config)
        .err()
        .unwrap()
        .to_string();
    assert!(
        refused.contains("line 2") && !refused.contains(&pupil_number[..10]),
        "{refused}"
    );
}
