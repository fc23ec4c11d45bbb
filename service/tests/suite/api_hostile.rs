//! Malformed and hostile input on every field, and requests in the wrong order: each
//! gets a clear 4xx problem, never echoes the input, and stores nothing (the row counts
//! of every routine table and of the audit trail are unchanged).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use crate::support::api;

use api::*;
use axum::http::StatusCode;
use serde_json::{json, Value};

const LONG: usize = 5000;

/// A Swedish number with an impossible date (30 February) and a valid check digit.
fn impossible_date_number() -> String {
    let nine = "150230123";
    let c = fiktiv_vault::ids::luhn_check_digit(nine).unwrap();
    format!("20{nine}{c}")
}

fn bad_checksum(n: &str) -> String {
    let (head, last) = n.split_at(n.len() - 1);
    let d: u8 = last.parse().unwrap();
    format!("{head}{}", (d + 1) % 10)
}

/// `denied` events in the audit trail.
async fn denied(e: &Env) -> i64 {
    let mut conn = e.vault.db().pool().acquire().await.unwrap();
    sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE outcome = 'denied'")
        .fetch_one(&mut *conn)
        .await
        .unwrap()
}

fn open(number: &str, first: &str, last: &str, birth: &str) -> Value {
    json!({"country": "se", "personal_number": number, "first_name": first,
           "last_name": last, "birth_date": birth})
}

/// Expect a 4xx, no echo of `secret`, nothing stored.
async fn refused(e: &Env, method: &str, path: &str, who: &str, body: Value, secrets: &[&str]) {
    refused_reads(e, method, path, who, body, secrets, 0).await;
}

/// Like [`refused`], but the check had to read the real identity: exactly `reads` audit
/// events (the audited reads) are added, nothing else.
async fn refused_reads(
    e: &Env,
    method: &str,
    path: &str,
    who: &str,
    body: Value,
    secrets: &[&str],
    reads: i64,
) {
    let mut before = e.snapshot().await;
    if let Some(audit) = before.last_mut() {
        *audit += reads;
    }
    let (s, v) = e.call(method, path, who, Some(body.clone())).await;
    assert!(s.is_client_error(), "{method} {path} {body}: {s} {v}");
    assert!(
        v["type"]
            .as_str()
            .unwrap()
            .starts_with("urn:fiktiv:problem:"),
        "{v}"
    );
    let text = v.to_string();
    for secret in secrets.iter().filter(|s| s.len() > 3) {
        assert!(
            !text.contains(secret),
            "the problem echoes the input: {text}"
        );
    }
    assert_eq!(
        e.snapshot().await,
        before,
        "{method} {path} {body} stored something"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_case_openings_are_refused_and_store_nothing() {
    let e = env(
        fiktiv_tests::TestDatabase::sqlite().unwrap(),
        at(2026, 3, 2),
    )
    .await;
    let path = format!("/api/v1/units/{UNIT_A}/cases");
    let good = se_number(date(2015, 5, 17), 123);
    let long = "A".repeat(LONG);
    let cases: Vec<(Value, Vec<String>)> = vec![
        (
            open(&bad_checksum(&good), "Anna", "Berg", "2015-05-17"),
            vec![bad_checksum(&good)],
        ),
        (
            open(&impossible_date_number(), "Anna", "Berg", "2015-02-30"),
            vec![impossible_date_number()],
        ),
        (
            open(
                &se_number(date(2027, 1, 1), 5),
                "Anna",
                "Berg",
                "2027-01-01",
            ),
            vec![se_number(date(2027, 1, 1), 5)],
        ),
        (
            open(&good, "Anna", "Berg", "2015-05-18"),
            vec![good.clone()],
        ),
        (
            open(&good, "Anna", "Berg", "2015-13-01"),
            vec![good.clone()],
        ),
        (
            open(&good, "Anna", "Berg", "17/05/2015"),
            vec![good.clone()],
        ),
        (open(&good, &long, "Berg", "2015-05-17"), vec![good.clone()]),
        (
            open(&good, "Anna\u{0000}", "Berg", "2015-05-17"),
            vec![good.clone()],
        ),
        (
            open(&good, "Anna\nBerg", "Berg", "2015-05-17"),
            vec![good.clone()],
        ),
        (
            open(&good, "Anna\u{202E}", "Berg", "2015-05-17"),
            vec![good.clone()],
        ),
        (
            open(&good, "Robert'); DROP TABLE cases;--", "Berg", "2015-05-17"),
            vec!["DROP TABLE".into()],
        ),
        (
            open(&good, "<script>alert(1)</script>", "Berg", "2015-05-17"),
            vec!["<script>".into()],
        ),
        (
            open(&good, "${jndi:ldap://x/a}", "Berg", "2015-05-17"),
            vec!["jndi".into()],
        ),
        (open(&good, "", "Berg", "2015-05-17"), vec![good.clone()]),
        (open(&good, "---", "Berg", "2015-05-17"), vec![good.clone()]),
        (
            open(&"1".repeat(LONG), "Anna", "Berg", "2015-05-17"),
            vec!["1111111111".into()],
        ),
        (
            open("19150517'OR'1'='1", "Anna", "Berg", "2015-05-17"),
            vec!["'OR'".into()],
        ),
        (
            open(&no_number(date(2015, 5, 17)), "Anna", "Berg", "2015-05-17"),
            vec![no_number(date(2015, 5, 17))],
        ),
        // Unknown, missing, duplicated and mistyped fields.
        (
            json!({"country": "se", "personal_number": good, "first_name": "A", "last_name": "B",
                "birth_date": "2015-05-17", "admin": true}),
            vec![good.clone()],
        ),
        (
            json!({"country": "se", "personal_number": good, "first_name": "A", "birth_date": "2015-05-17"}),
            vec![good.clone()],
        ),
        (
            json!({"country": "dk", "personal_number": good, "first_name": "A", "last_name": "B", "birth_date": "2015-05-17"}),
            vec![good.clone()],
        ),
        (
            json!({"country": "se", "personal_number": 201505171234u64, "first_name": "A", "last_name": "B", "birth_date": "2015-05-17"}),
            vec!["201505171234".into()],
        ),
        (json!([1, 2, 3]), vec![]),
        (json!("just a string"), vec![]),
    ];
    for (body, secrets) in cases {
        let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
        refused(&e, "POST", &path, SCHOOL_A, body, &secrets).await;
    }

    // Not JSON, wrong content type, duplicate keys, too large.
    let before = e.snapshot().await;
    for (ct, bytes, want) in [
        ("application/json", b"{\"country\": \"se\",".to_vec(), StatusCode::BAD_REQUEST),
        ("text/plain", serde_json::to_vec(&open(&good, "A", "B", "2015-05-17")).unwrap(), StatusCode::UNSUPPORTED_MEDIA_TYPE),
        (
            "application/json",
            format!(r#"{{"country":"se","personal_number":"{good}","personal_number":"{good}","first_name":"A","last_name":"B","birth_date":"2015-05-17"}}"#).into_bytes(),
            StatusCode::BAD_REQUEST,
        ),
        ("application/json", vec![b' '; 70 * 1024], StatusCode::PAYLOAD_TOO_LARGE),
    ] {
        let (s, _, text) = e.call_raw("POST", &path, Some(SCHOOL_A), Some((ct, bytes))).await;
        assert_eq!(s, want, "{text}");
        assert!(!text.contains(&good));
    }
    assert_eq!(e.snapshot().await, before);

    // A unit code that is not one.
    let (s, _) = e
        .call(
            "POST",
            "/api/v1/units/unit%20a%3B/cases",
            SCHOOL_A,
            Some(open(&good, "Anna", "Berg", "2015-05-17")),
        )
        .await;
    assert!(s.is_client_error());
    assert_eq!(e.count("cases").await, 0);

    // The good one goes in, once.
    e.ok(
        StatusCode::CREATED,
        "POST",
        &path,
        SCHOOL_A,
        Some(open(&good, "Anna", "Berg", "2015-05-17")),
    )
    .await;
    let short = format!("{}-{}", &good[2..8], &good[8..]);
    // The same pupil in another written form: refused as a duplicate. Only the refusal's
    // own audit event (outcome `denied`) is added.
    refused_reads(
        &e,
        "POST",
        &path,
        SCHOOL_A,
        open(&short, "Anna", "Berg", "2015-05-17"),
        &[&short, &good],
        1,
    )
    .await;
}

/// Opening a case for a pupil who already has an open case gets the same answer
/// (status and body, byte for byte) whether the open case is in the caller's own unit or
/// in another one: the answer does not tell where the pupil is. Each refusal stores
/// nothing but its own `denied` audit event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_opening_answers_the_same_from_every_unit() {
    let e = env(
        fiktiv_tests::TestDatabase::sqlite().unwrap(),
        at(2026, 3, 2),
    )
    .await;
    let good = se_number(date(2015, 5, 17), 123);
    let case = e
        .ok(
            StatusCode::CREATED,
            "POST",
            &format!("/api/v1/units/{UNIT_A}/cases"),
            SCHOOL_A,
            Some(open(&good, "Anna", "Berg", "2015-05-17")),
        )
        .await["case_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut answers = Vec::new();
    for (unit, who) in [(UNIT_A, SCHOOL_A), (UNIT_A, SCHOOL_A2), (UNIT_B, SCHOOL_B)] {
        let before = e.snapshot().await;
        let denied_before = denied(&e).await;
        let body = serde_json::to_vec(&open(&good, "Anna", "Berg", "2015-05-17")).unwrap();
        let (s, v, text) = e
            .call_raw(
                "POST",
                &format!("/api/v1/units/{unit}/cases"),
                Some(who),
                Some(("application/json", body)),
            )
            .await;
        assert_eq!(s, StatusCode::CONFLICT, "{who}: {text}");
        assert_eq!(v["type"], "urn:fiktiv:problem:duplicate-identity", "{text}");
        for (i, secret) in [good.as_str(), &good[2..], case.as_str(), UNIT_A, "Berg"]
            .into_iter()
            .enumerate()
        {
            assert!(!text.contains(secret), "{who}: the answer tells secret {i}");
        }
        let mut after = e.snapshot().await;
        let audit = after.pop().unwrap();
        let mut rest = before.clone();
        let audit_before = rest.pop().unwrap();
        assert_eq!(after, rest, "{who}: the refusal stored something");
        assert_eq!(audit, audit_before + 1, "{who}");
        assert_eq!(denied(&e).await, denied_before + 1, "{who}");
        answers.push((who, s, text));
    }
    let same_unit = (answers[0].1, answers[0].2.clone());
    for (who, s, text) in &answers[1..] {
        assert_eq!((*s, text.clone()), same_unit, "{who} got another answer");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_step_refuses_bad_fields_and_the_wrong_order() {
    let e = env(
        fiktiv_tests::TestDatabase::sqlite().unwrap(),
        at(2026, 3, 2),
    )
    .await;
    let real = se_number(date(2015, 5, 17), 123);
    let case = e
        .ok(
            StatusCode::CREATED,
            "POST",
            &format!("/api/v1/units/{UNIT_A}/cases"),
            SCHOOL_A,
            Some(open(&real, "Anna", "Berg", "2015-05-17")),
        )
        .await["case_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let c = format!("/api/v1/cases/{case}");
    let long = "x".repeat(LONG);

    // Wrong order: no plan, no decision, no fictitious identity, no order.
    refused(
        &e,
        "POST",
        &format!("{c}/order"),
        SCHOOL_A,
        json!({"groups": [], "platforms": ["g"]}),
        &[],
    )
    .await;
    refused(
        &e,
        "PUT",
        &format!("{c}/fictitious-identity"),
        SCHOOL_A,
        json!({"first_name": "Maja", "last_name": "Lind", "birth_date": "2015-09-03"}),
        &[],
    )
    .await;
    let (s, v) = e.call("GET", &format!("{c}/plan"), SCHOOL_A, None).await;
    assert_eq!(
        (s, v["type"].as_str().unwrap()),
        (StatusCode::CONFLICT, "urn:fiktiv:problem:no-plan")
    );

    // Plan fields.
    let plan = |k: &str, v: Value| {
        let mut p = json!({"information_handling": "x", "platforms": [], "guardian_contact_routes": [],
                           "staff_to_inform": [], "free_text": ""});
        p[k] = v;
        p
    };
    for bad in [
        plan("free_text", json!(long)),
        plan("free_text", json!("a\u{0007}b")),
        plan("information_handling", json!("\u{202E}evil")),
        plan("platforms", json!(["g", "g"])),
        plan("platforms", json!([""])),
        plan("platforms", json!([real.clone()])),
        plan("staff_to_inform", json!(vec!["s"; 51])),
        plan("extra", json!(1)),
        plan("platforms", json!("google")),
    ] {
        refused(
            &e,
            "PUT",
            &format!("{c}/plan"),
            SCHOOL_A,
            bad,
            &[&real, &long],
        )
        .await;
    }
    e.ok(
        StatusCode::OK,
        "PUT",
        &format!("{c}/plan"),
        SCHOOL_A,
        Some(plan("free_text", json!("ok"))),
    )
    .await;

    // Decision fields.
    for bad in [
        json!({"decision": "no-digital-login"}),
        json!({"decision": "no-digital-login", "guardians_informed_on": "2099-01-01"}),
        json!({"decision": "no-digital-login", "guardians_informed_on": "2026-02-30"}),
        json!({"decision": "fictitious-user", "guardians_informed_on": "2026-01-01"}),
        json!({"decision": "maybe"}),
    ] {
        refused(
            &e,
            "PUT",
            &format!("{c}/login-decision"),
            SCHOOL_A,
            bad,
            &[],
        )
        .await;
    }
    e.ok(
        StatusCode::OK,
        "PUT",
        &format!("{c}/login-decision"),
        SCHOOL_A,
        Some(json!({"decision": "fictitious-user"})),
    )
    .await;

    // Fictitious identity fields.
    let f = |first: &str, last: &str, birth: &str| json!({"first_name": first, "last_name": last, "birth_date": birth});
    // A name refused for the pupil's own real name: the read of the real identity and
    // the refusal's own `denied` event are added, nothing else.
    for bad in [
        f("Anna", "Lind", "2015-09-03"),
        f("Maja", "Berg", "2015-09-03"),
        f("Berg", "Anna", "2015-09-03"),
    ] {
        refused_reads(
            &e,
            "PUT",
            &format!("{c}/fictitious-identity"),
            SCHOOL_A,
            bad,
            &["Anna", "Berg"],
            2,
        )
        .await;
    }
    for bad in [
        f("Maja", "Lind", "2015-05-17"),
        f("Maja", "Lind", "2014-09-03"),
        f("Maja", "Lind", "2027-01-01"),
    ] {
        refused_reads(
            &e,
            "PUT",
            &format!("{c}/fictitious-identity"),
            SCHOOL_A,
            bad,
            &["Anna", "Berg"],
            1,
        )
        .await;
    }
    for bad in [
        f("Maja", "Lind", "2015-02-29"),
        f(&long, "Lind", "2015-09-03"),
        f("Maja\u{0000}", "Lind", "2015-09-03"),
        f("Maja", "Lind'; DELETE FROM cases;--", "2015-09-03"),
        f("Maja", "", "2015-09-03"),
    ] {
        refused(
            &e,
            "PUT",
            &format!("{c}/fictitious-identity"),
            SCHOOL_A,
            bad,
            &["Anna", "Berg", &long],
        )
        .await;
    }

    // Guardian fields.
    for bad in [
        json!({"linked": true}),
        json!({"linked": false, "fictitious": f("Karin", "Dahl", "1985-07-07")}),
        json!({"linked": true, "real": {"personal_number": bad_checksum(&se_number(date(1985, 2, 11), 456)),
               "first_name": "Mor", "last_name": "Berg", "birth_date": "1985-02-11"},
               "fictitious": f("Karin", "Dahl", "1985-07-07")}),
        json!({"linked": true, "real": {"personal_number": se_number(date(1985, 2, 11), 456),
               "first_name": "Mor", "last_name": "Berg", "birth_date": "1985-02-11"},
               "fictitious": f("Mor", "Dahl", "1985-07-07")}),
    ] {
        refused(
            &e,
            "PUT",
            &format!("{c}/guardians/1"),
            SCHOOL_A,
            bad,
            &["Berg", &se_number(date(1985, 2, 11), 456)],
        )
        .await;
    }
    for n in ["0", "5", "x", "-1"] {
        refused(
            &e,
            "PUT",
            &format!("{c}/guardians/{n}"),
            SCHOOL_A,
            json!({"linked": false}),
            &[],
        )
        .await;
    }

    // A fictitious name that is some real person's in the vault (another school's
    // pupil, in any spelling) is refused with the very answer a name refused for the
    // pupil's own real name gets: nothing tells a school user that the name they typed
    // is a protected child's. The audit trail has the reason, as a `denied` event.
    let other = se_number(date(2015, 1, 9), 77);
    e.ok(
        StatusCode::CREATED,
        "POST",
        &format!("/api/v1/units/{UNIT_B}/cases"),
        SCHOOL_B,
        Some(open(&other, "Selma", "Öhman", "2015-01-09")),
    )
    .await;
    let own = e
        .call(
            "PUT",
            &format!("{c}/fictitious-identity"),
            SCHOOL_A,
            Some(f("Maja", "Berg", "2015-09-03")),
        )
        .await;
    for spelling in ["Öhman", "Ohman", "Oehman", "ÖHMAN"] {
        let denied_before = denied(&e).await;
        let theirs = e
            .call(
                "PUT",
                &format!("{c}/fictitious-identity"),
                SCHOOL_A,
                Some(f("Selma", spelling, "2015-09-03")),
            )
            .await;
        assert_eq!(theirs.0, StatusCode::UNPROCESSABLE_ENTITY, "{spelling}");
        assert_eq!(theirs, own, "{spelling}: the answers differ");
        assert_eq!(
            theirs.1["violations"][0]["code"],
            "fictitious.name-not-allowed"
        );
        assert_eq!(denied(&e).await, denied_before + 1, "{spelling}");
    }
    let (_, events) = e
        .call("GET", "/api/v1/audit/events?limit=1000", AUDITOR, None)
        .await;
    let reasons: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|ev| ev["outcome"] == "denied")
        .filter_map(|ev| ev["purpose"].as_str())
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("a real identity in the vault")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("the real name of this case's person")),
        "{reasons:?}"
    );
    e.ok(
        StatusCode::OK,
        "PUT",
        &format!("{c}/fictitious-identity"),
        SCHOOL_A,
        Some(f("Maja", "Lind", "2015-09-03")),
    )
    .await;

    // Order fields.
    for bad in [
        json!({"groups": [], "platforms": []}),
        json!({"groups": [real.clone()], "platforms": ["g"]}),
        json!({"groups": ["4B\r\nX-Injected: 1"], "platforms": ["g"]}),
        json!({"groups": [], "platforms": ["g"], "pupil": "x"}),
    ] {
        refused(&e, "POST", &format!("{c}/order"), SCHOOL_A, bad, &[&real]).await;
    }
    // Registration before the order does not exist; staff-told fields.
    for bad in [
        json!({"staff": [], "told_on": "2026-03-01"}),
        json!({"staff": ["a"], "told_on": "2026-03-03"}),
        json!({"staff": ["a"], "told_on": "yesterday"}),
        json!({"staff": [long.clone()], "told_on": "2026-03-01"}),
    ] {
        refused(
            &e,
            "POST",
            &format!("{c}/staff-told"),
            SCHOOL_A,
            bad,
            &[&long],
        )
        .await;
    }
    let order = e
        .ok(
            StatusCode::CREATED,
            "POST",
            &format!("{c}/order"),
            SCHOOL_A,
            Some(json!({"groups": ["4B"], "platforms": ["g"]})),
        )
        .await["order_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Registration: bad digits, a number that is a real pupil's (same answer as taken).
    let reg = format!("/api/v1/orders/{order}/registration");
    for bad in [
        json!({"serial": 1000}),
        json!({"serial": -1}),
        json!({"serial": "123"}),
        json!({"digits": 1}),
    ] {
        refused(&e, "POST", &reg, CENTRAL, bad, &[]).await;
    }
    // The decision cannot change once ordered.
    refused(
        &e,
        "PUT",
        &format!("{c}/login-decision"),
        SCHOOL_A,
        json!({"decision": "fictitious-user"}),
        &[],
    )
    .await;

    // Reveal: bad purposes and targets.
    for bad in [
        json!({"case_id": case, "purpose": ""}),
        json!({"case_id": case, "purpose": long}),
        json!({"case_id": case, "purpose": format!("for {real}")}),
        json!({"case_id": case, "purpose": "a\u{0000}b"}),
        json!({"case_id": case, "fictitious_number": "x", "purpose": "p"}),
        json!({"purpose": "p"}),
    ] {
        refused(&e, "POST", "/api/v1/reveals", SCHOOL_A, bad, &[&real]).await;
    }
    // Unknown ids are 404 problems, never 500.
    for path in [
        "/api/v1/cases/not-a-uuid".to_owned(),
        format!("/api/v1/cases/{}", uuid::Uuid::new_v4()),
        format!("/api/v1/reveals/{}/identity", uuid::Uuid::new_v4()),
        "/api/v1/nothing-here".to_owned(),
    ] {
        let (s, v) = e.call("GET", &path, SCHOOL_A, None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{path} {v}");
    }
    // Bad tokens.
    let (s, _, _) = e.call_raw("GET", "/api/v1/cases", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_and_revoked_tokens_are_refused() {
    let e = env(
        fiktiv_tests::TestDatabase::sqlite().unwrap(),
        at(2026, 3, 2),
    )
    .await;
    let t = fiktiv_staff::tokens::create(
        &e.vault,
        "test",
        "kortlivad",
        &[fiktiv_policies::Role::CentralAdmin],
        &[],
        1,
    )
    .await
    .unwrap();
    let call = |tok: String| {
        let app = e.app.clone();
        async move {
            use tower::ServiceExt;
            let req = axum::http::Request::get("/api/v1/cases")
                .header("authorization", format!("Bearer {tok}"))
                .body(axum::body::Body::empty())
                .unwrap();
            app.oneshot(req).await.unwrap().status()
        }
    };
    assert_eq!(call(t.secret.to_string()).await, StatusCode::OK);
    assert_eq!(
        call(format!("{}x", &*t.secret)).await,
        StatusCode::UNAUTHORIZED
    );
    e.clock.advance(chrono::TimeDelta::days(2));
    assert_eq!(call(t.secret.to_string()).await, StatusCode::UNAUTHORIZED);
    let t2 = fiktiv_staff::tokens::create(
        &e.vault,
        "test",
        "revoked",
        &[fiktiv_policies::Role::CentralAdmin],
        &[],
        30,
    )
    .await
    .unwrap();
    assert_eq!(call(t2.secret.to_string()).await, StatusCode::OK);
    assert!(fiktiv_staff::tokens::revoke(&e.vault, "test", &t2.id)
        .await
        .unwrap());
    assert_eq!(call(t2.secret.to_string()).await, StatusCode::UNAUTHORIZED);
    // No secret is stored in the clear.
    let raw = e.db.raw_bytes().unwrap();
    assert!(!crate::support::bytes_contain(
        &raw,
        &t2.secret.as_bytes()[..20]
    ));
}

/// Deep JSON, invalid UTF-8, huge numbers, and injection strings for LDAP DNs and
/// filters and for SCIM filters, in every field and path segment that reaches a target:
/// each gets a clear 4xx problem, never echoes the input, and stores nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_json_bad_utf8_huge_numbers_and_directory_injections_are_refused() {
    let e = env(
        fiktiv_tests::TestDatabase::sqlite().unwrap(),
        at(2026, 3, 2),
    )
    .await;
    let cases = format!("/api/v1/units/{UNIT_A}/cases");
    let good = se_number(date(2015, 5, 17), 123);

    // Deep JSON (well under the body limit), invalid UTF-8, huge numbers: raw bodies.
    let deep_array = format!("{}{}", "[".repeat(20_000), "]".repeat(20_000));
    let deep_object = format!("{}1{}", r#"{"a":"#.repeat(5_000), "}".repeat(5_000));
    let deep_in_field = format!(
        r#"{{"country":"se","personal_number":"{good}","first_name":{}"A"{},"last_name":"B","birth_date":"2015-05-17"}}"#,
        "[".repeat(3_000),
        "]".repeat(3_000)
    );
    let mut bad_utf8 =
        format!(r#"{{"country":"se","personal_number":"{good}","first_name":"An"#).into_bytes();
    bad_utf8.extend_from_slice(b"\xff\xfe\xc3\x28");
    bad_utf8.extend_from_slice(br#"na","last_name":"B","birth_date":"2015-05-17"}"#);
    let overlong_utf8 = br#"{"country":"se","personal_number":"1","first_name":"\xc0\xaf","last_name":"B","birth_date":"2015-05-17"}"#.to_vec();
    let lone_surrogate = format!(
        r#"{{"country":"se","personal_number":"{good}","first_name":"A\ud800","last_name":"B","birth_date":"2015-05-17"}}"#
    );
    let huge = |n: &str| {
        format!(
            r#"{{"country":"se","personal_number":{n},"first_name":"A","last_name":"B","birth_date":"2015-05-17"}}"#
        )
    };
    let before = e.snapshot().await;
    for (what, body) in [
        ("deep array", deep_array.into_bytes()),
        ("deep object", deep_object.into_bytes()),
        ("deep value in a field", deep_in_field.into_bytes()),
        ("invalid UTF-8", bad_utf8),
        ("overlong UTF-8", overlong_utf8),
        ("lone surrogate escape", lone_surrogate.into_bytes()),
        ("huge integer", huge("1".repeat(400).as_str()).into_bytes()),
        ("huge float", huge("1e400").into_bytes()),
        (
            "negative huge",
            huge(&format!("-{}", "9".repeat(50))).into_bytes(),
        ),
    ] {
        let (s, v, text) = e
            .call_raw(
                "POST",
                &cases,
                Some(SCHOOL_A),
                Some(("application/json", body)),
            )
            .await;
        assert!(s.is_client_error(), "{what}: {s} {text}");
        assert!(
            v["type"]
                .as_str()
                .unwrap()
                .starts_with("urn:fiktiv:problem:"),
            "{what}: {text}"
        );
        assert!(!text.contains(&good), "{what}: echoes the input");
    }
    assert_eq!(e.snapshot().await, before);

    // A case at the point where a fictitious identity and an order are next.
    let case = e
        .ok(
            StatusCode::CREATED,
            "POST",
            &cases,
            SCHOOL_A,
            Some(open(&good, "Anna", "Berg", "2015-05-17")),
        )
        .await["case_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let c = format!("/api/v1/cases/{case}");
    e.ok(
        StatusCode::OK,
        "PUT",
        &format!("{c}/plan"),
        SCHOOL_A,
        Some(
            json!({"information_handling": "x", "platforms": [], "guardian_contact_routes": [],
                    "staff_to_inform": [], "free_text": ""}),
        ),
    )
    .await;
    e.ok(
        StatusCode::OK,
        "PUT",
        &format!("{c}/login-decision"),
        SCHOOL_A,
        Some(json!({"decision": "fictitious-user"})),
    )
    .await;

    // Strings that would change an LDAP DN or filter, or a SCIM filter, if a target
    // client ever pasted them in unescaped.
    let injections = [
        "cn=admin,dc=example,dc=org",
        "Eva,ou=people",
        "Eva+uid=root",
        "*)(uid=*))(|(uid=*",
        "*",
        "Eva)(objectClass=*",
        "\\2a",
        "#Eva",
        "Eva\\",
        "Eva\" or userName pr or \"",
        "Eva\") or (userName pr",
        "x eq \"y\" or 1 eq 1",
        "Ev\u{0}a",
        "Ev\u{85}a",
        "Ev\u{2028}a",
    ];
    let f = |first: &str, last: &str| json!({"first_name": first, "last_name": last, "birth_date": "2015-09-03"});
    for inj in injections {
        for body in [f(inj, "Lind"), f("Maja", inj)] {
            refused(
                &e,
                "PUT",
                &format!("{c}/fictitious-identity"),
                SCHOOL_A,
                body,
                &[inj, "Anna", "Berg"],
            )
            .await;
        }
        refused(
            &e,
            "POST",
            &cases,
            SCHOOL_A,
            open(
                &se_number(date(2015, 5, 17), 321),
                inj,
                "Berg",
                "2015-05-17",
            ),
            &[inj],
        )
        .await;
    }
    e.ok(
        StatusCode::OK,
        "PUT",
        &format!("{c}/fictitious-identity"),
        SCHOOL_A,
        Some(f("Maja", "Lind")),
    )
    .await;
    // Group and platform labels are free text by design ("4B (musik)"): they are not
    // refused but carried as data. Group DNs and SCIM ids are made from a slug of the
    // label, values are escaped, and filters carry only opaque ids;
    // `hardening_injection.rs` sends these same strings to a real slapd and
    // scim2-server and shows that they arrive as inert values.
    // Unit codes become part of group names: in the path of a new case.
    for unit in [
        "unit-a,dc=org",
        "unit-a)(cn=*",
        "unit-a%22%20or%20%22",
        "%2A",
    ] {
        let before = e.snapshot().await;
        let (s, _) = e
            .call(
                "POST",
                &format!("/api/v1/units/{unit}/cases"),
                SCHOOL_A,
                Some(open(
                    &se_number(date(2015, 5, 17), 322),
                    "Anna",
                    "Berg",
                    "2015-05-17",
                )),
            )
            .await;
        assert!(s.is_client_error(), "{unit}: {s}");
        assert_eq!(e.snapshot().await, before, "{unit}");
    }

    // Huge numbers and bad UTF-8 in paths and queries.
    for path in [
        format!("{c}/guardians/99999999999999999999999"),
        format!("{c}/guardians/-9223372036854775809"),
        format!("{c}/name-suggestions?count=99999999999999999999999"),
        format!("{c}/name-suggestions?count=1e400"),
        "/api/v1/audit/events?limit=99999999999999999999".to_owned(),
        "/api/v1/cases/%FF%FE".to_owned(),
        "/api/v1/cases/%C0%AF".to_owned(),
        format!("{c}/plan?version=18446744073709551616"),
    ] {
        let method = if path.contains("/guardians/") {
            "PUT"
        } else {
            "GET"
        };
        let who = if path.contains("/audit/") {
            AUDITOR
        } else {
            SCHOOL_A
        };
        let before = e.snapshot().await;
        let (s, v) = e
            .call(
                method,
                &path,
                who,
                (method == "PUT").then(|| json!({"linked": false})),
            )
            .await;
        assert!(s.is_client_error(), "{path}: {s} {v}");
        assert_eq!(e.snapshot().await, before, "{path}");
    }
    // The order numbers that registration takes.
    let order = e
        .ok(
            StatusCode::CREATED,
            "POST",
            &format!("{c}/order"),
            SCHOOL_A,
            Some(json!({"groups": ["4B"], "platforms": ["google"]})),
        )
        .await["order_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let reg = format!("/api/v1/orders/{order}/registration");
    for bad in [
        r#"{"serial": 1e400}"#,
        r#"{"serial": 99999999999999999999999}"#,
        r#"{"serial": 12.5}"#,
        r#"{"serial": 123, "guardian_serials": [{"guardian_no": 18446744073709551616, "serial": 1}]}"#,
    ] {
        let before = e.snapshot().await;
        let (s, _, text) = e
            .call_raw(
                "POST",
                &reg,
                Some(CENTRAL),
                Some(("application/json", bad.as_bytes().to_vec())),
            )
            .await;
        assert!(s.is_client_error(), "{bad}: {s} {text}");
        assert_eq!(e.snapshot().await, before, "{bad}");
    }
}

/// Refused names are limited per person (counted from the audit trail, for the API and
/// the web UI alike): past the limit, the step is refused for a while, even for a name
/// that would be accepted, and the refusal stores nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_names_are_limited_per_person() {
    let e = env(
        fiktiv_tests::TestDatabase::sqlite().unwrap(),
        at(2026, 3, 2),
    )
    .await;
    let real = se_number(date(2015, 5, 17), 123);
    let case = e
        .ok(
            StatusCode::CREATED,
            "POST",
            &format!("/api/v1/units/{UNIT_A}/cases"),
            SCHOOL_A,
            Some(open(&real, "Anna", "Berg", "2015-05-17")),
        )
        .await["case_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let c = format!("/api/v1/cases/{case}");
    e.ok(
        StatusCode::OK,
        "PUT",
        &format!("{c}/plan"),
        SCHOOL_A,
        Some(
            json!({"information_handling": "x", "platforms": [], "guardian_contact_routes": [],
                    "staff_to_inform": [], "free_text": "ok"}),
        ),
    )
    .await;
    e.ok(
        StatusCode::OK,
        "PUT",
        &format!("{c}/login-decision"),
        SCHOOL_A,
        Some(json!({"decision": "fictitious-user"})),
    )
    .await;
    let f =
        |first: &str| json!({"first_name": first, "last_name": "Berg", "birth_date": "2015-09-03"});
    let max = fiktiv_routine::fictitious::MAX_REFUSED_NAMES;
    for i in 0..max {
        let (s, v) = e
            .call(
                "PUT",
                &format!("{c}/fictitious-identity"),
                SCHOOL_A,
                Some(f("Maja")),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "refusal {i}: {v}");
    }
    let before = e.snapshot().await;
    let (s, v) = e
        .call(
            "PUT",
            &format!("{c}/fictitious-identity"),
            SCHOOL_A,
            Some(json!({"first_name": "Maja", "last_name": "Lind", "birth_date": "2015-09-03"})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["type"], "urn:fiktiv:problem:too-many-refused-names");
    assert_eq!(e.snapshot().await, before, "the refusal stored something");
    // Another person is not limited by it.
    let (s, v) = e
        .call(
            "PUT",
            &format!("{c}/fictitious-identity"),
            SCHOOL_A2,
            Some(json!({"first_name": "Maja", "last_name": "Lind", "birth_date": "2015-09-03"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // A day later the limit is lifted.
    e.clock.advance(chrono::Duration::hours(
        fiktiv_routine::fictitious::REFUSED_NAMES_WINDOW_HOURS + 1,
    ));
    let (s, v) = e
        .call(
            "PUT",
            &format!("{c}/fictitious-identity"),
            SCHOOL_A,
            Some(f("Maja")),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
}

/// Name suggestions never hold a pair that is a real identity's name in the vault: a
/// school that takes a suggested first and last name is never refused for it, and the
/// suggestions cannot be used to learn a real name either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suggestions_never_pair_into_a_real_name() {
    let e = env(
        fiktiv_tests::TestDatabase::sqlite().unwrap(),
        at(2026, 3, 2),
    )
    .await;
    let (firsts, lasts) = fiktiv_routine::fictitious::name_lists(fiktiv_policies::Country::Se);
    let (real_first, real_last) = (firsts[0], lasts[0]);
    // Another school's pupil has a name made of the lists' own names.
    e.ok(
        StatusCode::CREATED,
        "POST",
        &format!("/api/v1/units/{UNIT_B}/cases"),
        SCHOOL_B,
        Some(open(
            &se_number(date(2015, 1, 9), 77),
            real_first,
            real_last,
            "2015-01-09",
        )),
    )
    .await;
    let case = e
        .ok(
            StatusCode::CREATED,
            "POST",
            &format!("/api/v1/units/{UNIT_A}/cases"),
            SCHOOL_A,
            Some(open(
                &se_number(date(2015, 5, 17), 123),
                "Anna",
                "Berg",
                "2015-05-17",
            )),
        )
        .await["case_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut saw_last = 0;
    for _ in 0..20 {
        let s = e
            .ok(
                StatusCode::OK,
                "GET",
                &format!("/api/v1/cases/{case}/name-suggestions?count=20"),
                SCHOOL_A,
                None,
            )
            .await;
        let has = |k: &str, v: &str| s[k].as_array().unwrap().iter().any(|x| x == v);
        assert_eq!(s["first_names"].as_array().unwrap().len(), 20, "{s}");
        assert_eq!(s["last_names"].as_array().unwrap().len(), 20, "{s}");
        if has("last_names", real_last) {
            saw_last += 1;
            assert!(!has("first_names", real_first), "{s}");
        }
    }
    // Half the last names are drawn each time: the real one came up (the chance that it
    // never does in 20 draws is about one in a million).
    assert!(saw_last > 0);
}
