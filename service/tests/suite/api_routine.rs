//! The whole protected-pupil routine through the router, for a Swedish and a Norwegian
//! pupil, on SQLite and PostgreSQL: case, plan, decision, fictitious identity, guardian,
//! order, registration, staff told, reviews across school years, four-eyes reveal, end
//! and shredding. Real names are canaries: they must never appear in a response other
//! than the school's identity page and an approved reveal, nor in the database bytes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use crate::support::api;

use api::*;
use axum::http::StatusCode;
use chrono::TimeDelta;
use fiktiv_tests::TestDatabase;
use fiktiv_vault::ids::{Country, NumberKind, PersonalNumber};
use fiktiv_vault::Clock as _;
use serde_json::json;

const SE_FIRST: &str = "Åsa-Kanariefågel";
const SE_LAST: &str = "Zyxwvutsson";
const NO_FIRST: &str = "Ødegårdkanari";
const NO_LAST: &str = "Qvistkanarifugl";

fn plan(v: &str) -> serde_json::Value {
    json!({
        "information_handling": format!("Only the class teacher and the principal know. {v}"),
        "platforms": ["Google Workspace", "Unikum"],
        "guardian_contact_routes": ["Phone via the principal only"],
        "staff_to_inform": ["class teacher", "school nurse"],
        // Line breaks as a browser's text area sends them (CR LF), and a tab.
        "free_text": "No photos.\r\nNo name on the door.\tEver."
    })
}

/// The routine for one pupil. Returns the case id.
#[allow(clippy::too_many_arguments)]
async fn routine(
    e: &Env,
    country: &str,
    number: &str,
    first: &str,
    last: &str,
    birth: &str,
    fict: serde_json::Value,
    guardian: serde_json::Value,
) -> String {
    let opened = e
        .ok(
            StatusCode::CREATED,
            "POST",
            &format!("/api/v1/units/{UNIT_A}/cases"),
            SCHOOL_A,
            Some(json!({"country": country, "personal_number": number,
                        "first_name": first, "last_name": last, "birth_date": birth})),
        )
        .await;
    let text = opened.to_string();
    assert!(!text.contains(number) && !text.contains(first) && !text.contains(last));
    let case = opened["case_id"].as_str().unwrap().to_owned();
    let c = format!("/api/v1/cases/{case}");

    // Duplicate: refused, nothing stored, not saying whose.
    let before = e.snapshot().await;
    let (s, p) = e
        .call(
            "POST",
            &format!("/api/v1/units/{UNIT_B}/cases"),
            SCHOOL_B,
            Some(json!({"country": country, "personal_number": number,
                        "first_name": "Other", "last_name": "Person", "birth_date": birth})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{p}");
    assert_eq!(p["type"], "urn:fiktiv:problem:duplicate-identity");
    assert!(!p.to_string().contains(&case));
    // Nothing stored but one audit event: the refused attempt, naming the other case
    // for the auditor (never in the answer to the school).
    let mut after = e.snapshot().await;
    let audit_count = after.pop().unwrap();
    let mut before_rest = before.clone();
    let audit_before = before_rest.pop().unwrap();
    assert_eq!(after, before_rest);
    assert_eq!(audit_count, audit_before + 1);
    let trail = e
        .ok(
            StatusCode::OK,
            "GET",
            &format!("/api/v1/audit/events?case_id={case}&limit=100"),
            AUDITOR,
            None,
        )
        .await;
    let refused: Vec<_> = trail
        .as_array()
        .unwrap()
        .iter()
        .filter(|ev| ev["outcome"] == "denied")
        .collect();
    assert_eq!(refused.len(), 1, "{trail}");
    assert_eq!(refused[0]["actor"], "staff:school-b");
    assert_eq!(refused[0]["purpose"], "duplicate-identity");
    assert_eq!(refused[0]["action"], "case.open");

    // Plan, versioned.
    let v1 = e
        .ok(
            StatusCode::OK,
            "PUT",
            &format!("{c}/plan"),
            SCHOOL_A,
            Some(plan("v1")),
        )
        .await;
    assert_eq!(v1["version"], 1);
    e.clock.advance(TimeDelta::minutes(5));
    let v2 = e
        .ok(
            StatusCode::OK,
            "PUT",
            &format!("{c}/plan"),
            SCHOOL_A2,
            Some(plan("v2")),
        )
        .await;
    assert_eq!(v2["version"], 2);
    let p = e
        .ok(StatusCode::OK, "GET", &format!("{c}/plan"), SCHOOL_A, None)
        .await;
    assert_eq!(p["version"], 2);
    // Kept with one line feed per line break.
    assert_eq!(
        p["plan"]["free_text"],
        "No photos.\nNo name on the door.\tEver."
    );
    assert!(p["plan"]["information_handling"]
        .as_str()
        .unwrap()
        .ends_with("v2"));
    assert_eq!(p["history"].as_array().unwrap().len(), 2);
    assert_eq!(p["history"][0]["written_by"], "staff:school-a");
    assert_eq!(p["history"][1]["written_by"], "staff:school-a2");
    let p1 = e
        .ok(
            StatusCode::OK,
            "GET",
            &format!("{c}/plan?version=1"),
            SCHOOL_A,
            None,
        )
        .await;
    assert!(p1["plan"]["information_handling"]
        .as_str()
        .unwrap()
        .ends_with("v1"));
    // The central administrator never sees the plan or the identity; another school
    // does not even learn that the case exists.
    for who in [CENTRAL, SCHOOL_B, AUDITOR, APPROVER] {
        for path in [format!("{c}/plan"), format!("{c}/identity")] {
            let (s, _) = e.call("GET", &path, who, None).await;
            assert_eq!(s, StatusCode::NOT_FOUND, "{who} {path}");
        }
    }

    // Fictitious identity needs the decision first.
    let (s, p) = e
        .call(
            "PUT",
            &format!("{c}/fictitious-identity"),
            SCHOOL_A,
            Some(fict.clone()),
        )
        .await;
    assert_eq!(
        (s, p["type"].as_str().unwrap()),
        (StatusCode::CONFLICT, "urn:fiktiv:problem:decision-required")
    );
    e.ok(
        StatusCode::OK,
        "PUT",
        &format!("{c}/login-decision"),
        SCHOOL_A,
        Some(json!({"decision": "fictitious-user"})),
    )
    .await;
    let sug = e
        .ok(
            StatusCode::OK,
            "GET",
            &format!("{c}/name-suggestions?count=3"),
            SCHOOL_A,
            None,
        )
        .await;
    assert_eq!(sug["first_names"].as_array().unwrap().len(), 3);
    assert!(sug["source"]
        .as_str()
        .unwrap()
        .contains(if country == "se" { "SCB" } else { "SSB" }));

    // The real name is refused, without echoing it.
    let (s, p) = e
        .call("PUT", &format!("{c}/fictitious-identity"), SCHOOL_A,
            Some(json!({"first_name": first, "last_name": "Lindqvist", "birth_date": fict["birth_date"]})))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(p["violations"][0]["code"], "fictitious.name-not-allowed");
    assert!(!p.to_string().contains(first));
    // Another birth year would put the pupil in the wrong grade.
    let (s, p) = e
        .call("PUT", &format!("{c}/fictitious-identity"), SCHOOL_A,
            Some(json!({"first_name": "Berit", "last_name": "Lindqvist", "birth_date": "2009-06-01"})))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(p["violations"][0]["code"], "fictitious.birth-year-differs");
    let f = e
        .ok(
            StatusCode::OK,
            "PUT",
            &format!("{c}/fictitious-identity"),
            SCHOOL_A,
            Some(fict.clone()),
        )
        .await;
    assert_eq!(f["first_name"], fict["first_name"]);

    // The school's own label: sealed, shown in its unit's case list beside the
    // fictitious name; the central administrator sees the fictitious name only.
    let (s, _) = e
        .call(
            "PUT",
            &format!("{c}/label"),
            SCHOOL_A,
            Some(json!({"label": "3B, August"})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let mine = e
        .ok(
            StatusCode::OK,
            "GET",
            &format!("/api/v1/units/{UNIT_A}/cases"),
            SCHOOL_A,
            None,
        )
        .await;
    let row = mine
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["case_id"] == case.as_str())
        .unwrap();
    assert_eq!(row["label"], "3B, August", "{mine}");
    let fict_name = format!(
        "{} {}",
        fict["first_name"].as_str().unwrap(),
        fict["last_name"].as_str().unwrap()
    );
    assert_eq!(row["fictitious_name"], fict_name.as_str());
    let all = e
        .ok(StatusCode::OK, "GET", "/api/v1/cases", CENTRAL, None)
        .await;
    let row = all
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["case_id"] == case.as_str())
        .unwrap();
    assert_eq!(row["fictitious_name"], fict_name.as_str());
    assert!(row["label"].is_null(), "{all}");
    // Another school, the central administrator: not found, nothing changed.
    for who in [SCHOOL_B, CENTRAL] {
        let (s, _) = e
            .call(
                "PUT",
                &format!("{c}/label"),
                who,
                Some(json!({"label": "x"})),
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{who}");
    }
    // A label holding a personal number is refused without echo; the old one stays.
    let (s, p) = e
        .call(
            "PUT",
            &format!("{c}/label"),
            SCHOOL_A,
            Some(json!({"label": format!("elev {number}")})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!p.to_string().contains(number), "{p}");
    let mine = e
        .ok(
            StatusCode::OK,
            "GET",
            &format!("/api/v1/units/{UNIT_A}/cases"),
            SCHOOL_A,
            None,
        )
        .await;
    assert!(mine.to_string().contains("3B, August"));
    // Sealed at rest.
    let raw: Vec<u8> = sqlx::query_scalar("SELECT label_sealed FROM cases WHERE case_id = $1")
        .bind(&case)
        .fetch_one(e.vault.db().pool())
        .await
        .unwrap();
    // The whole label must not be there in the clear (a two-byte probe would be
    // found in random ciphertext about once in a thousand runs).
    let label = b"3B, August";
    assert!(!crate::support::bytes_contain(&raw, label));

    // Guardians: one linked with a fictitious identity, one not linked.
    e.ok(
        StatusCode::OK,
        "PUT",
        &format!("{c}/guardians/1"),
        SCHOOL_A,
        Some(guardian.clone()),
    )
    .await;
    e.ok(
        StatusCode::OK,
        "PUT",
        &format!("{c}/guardians/2"),
        SCHOOL_A,
        Some(json!({"linked": false})),
    )
    .await;

    // Order: fictitious data only.
    let o = e
        .ok(
            StatusCode::CREATED,
            "POST",
            &format!("{c}/order"),
            SCHOOL_A,
            Some(json!({"groups": ["4B"], "platforms": ["google", "unikum"]})),
        )
        .await;
    let order = o["order_id"].as_str().unwrap().to_owned();
    // Too late to change the fictitious identity now.
    let (s, _) = e
        .call(
            "PUT",
            &format!("{c}/fictitious-identity"),
            SCHOOL_A,
            Some(fict.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);

    e.clock.advance(TimeDelta::minutes(90));
    let q = e
        .ok(StatusCode::OK, "GET", "/api/v1/orders", CENTRAL, None)
        .await;
    let mine: Vec<_> = q
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["order_id"] == order.as_str())
        .collect();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["waiting_minutes"], 90);
    assert_eq!(mine[0]["pupil"]["first_name"], fict["first_name"]);
    assert_eq!(mine[0]["guardians"].as_array().unwrap().len(), 1);
    // The central administrator's tasks count it (the start page shows the same);
    // nobody else's do.
    assert_eq!(
        task_count(e, CENTRAL, "orders-waiting").await,
        q.as_array().unwrap().len()
    );
    for who in [SCHOOL_A, AUDITOR, APPROVER] {
        assert_eq!(task_count(e, who, "orders-waiting").await, 0, "{who}");
    }
    let qt = q.to_string();
    assert!(!qt.contains(number) && !qt.contains(first) && !qt.contains(last));
    // Schools and auditors do not see the queue.
    for who in [SCHOOL_A, AUDITOR, APPROVER] {
        let (s, _) = e.call("GET", "/api/v1/orders", who, None).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{who}");
    }

    // Registration: Fiktiv picks free digits.
    let r = e
        .ok(
            StatusCode::OK,
            "POST",
            &format!("/api/v1/orders/{order}/registration"),
            CENTRAL,
            Some(json!({})),
        )
        .await;
    let fict_number = r["number"].as_str().unwrap().to_owned();
    let today = chrono::NaiveDate::from_ymd_opt(2030, 1, 1).unwrap();
    if country == "se" {
        // The default policy: the fictitious birth date and a check digit that fails the
        // Luhn check, so that the number is nobody's (it is no valid personal number).
        assert_eq!(fict_number.len(), 12);
        assert_eq!(
            &fict_number[..8],
            fict["birth_date"].as_str().unwrap().replace('-', "")
        );
        let check = fiktiv_vault::ids::luhn_check_digit(&fict_number[2..11]).unwrap();
        assert_ne!(fict_number.as_bytes()[11] - b'0', check, "{fict_number}");
        assert!(PersonalNumber::parse_country(Country::Se, &fict_number, today).is_err());
    } else {
        let p = PersonalNumber::parse_country(Country::No, &fict_number, today).unwrap();
        assert_eq!(p.kind(), NumberKind::NoSynthetic);
        assert_eq!(
            p.birth_date().to_string(),
            fict["birth_date"].as_str().unwrap()
        );
    }
    assert_ne!(fict_number, number);
    let g_number = r["guardians"][0]["number"].as_str().unwrap();
    assert_ne!(g_number, fict_number);
    let rt = r.to_string();
    assert!(!rt.contains(number) && !rt.contains(first));
    // Registered once only.
    let (s, _) = e
        .call(
            "POST",
            &format!("/api/v1/orders/{order}/registration"),
            CENTRAL,
            Some(json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let meta = e.ok(StatusCode::OK, "GET", &c, CENTRAL, None).await;
    assert_eq!(meta["state"], "registered");
    assert_eq!(meta["fictitious"]["number"], fict_number.as_str());
    assert!(!meta.to_string().contains(first));

    // Staff told.
    let st = e
        .ok(
            StatusCode::CREATED,
            "POST",
            &format!("{c}/staff-told"),
            SCHOOL_A,
            Some(json!({"staff": ["class teacher", "school nurse"], "told_on": e.clock_date()})),
        )
        .await;
    assert_eq!(st["recorded_by"], "staff:school-a");

    // The school's own case page shows the real identity.
    let id = e
        .ok(
            StatusCode::OK,
            "GET",
            &format!("{c}/identity"),
            SCHOOL_A,
            None,
        )
        .await;
    let canonical = PersonalNumber::parse(number, today).unwrap();
    assert_eq!(id["personal_number"], canonical.canonical());
    assert_eq!(id["first_name"], first);
    case
}

trait ClockDate {
    fn clock_date(&self) -> String;
}

impl ClockDate for Env {
    fn clock_date(&self) -> String {
        use fiktiv_vault::Clock;
        self.clock.now().date_naive().format("%Y-%m-%d").to_string()
    }
}

/// The count of one kind in the caller's tasks (`GET /api/v1/me/tasks`), 0 when absent.
async fn task_count(e: &Env, who: &str, kind: &str) -> usize {
    let t = e
        .ok(StatusCode::OK, "GET", "/api/v1/me/tasks", who, None)
        .await;
    t.as_array()
        .unwrap()
        .iter()
        .find(|x| x["kind"] == kind)
        .map_or(0, |x| x["count"].as_u64().unwrap() as usize)
}

/// The right-of-access report through the API: the school's only; it lists every read
/// of the real identity, itself included (and the next one lists it too).
async fn access_report(e: &Env, case: &str, number: &str) {
    let path = format!("/api/v1/cases/{case}/access-report");
    for who in [SCHOOL_B, CENTRAL, APPROVER, AUDITOR] {
        let (s, _) = e.call("GET", &path, who, None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{who}");
    }
    let r = e.ok(StatusCode::OK, "GET", &path, SCHOOL_A, None).await;
    assert_eq!(r["identity"]["personal_number"], number);
    let actions: Vec<&str> = r["accesses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions.last(), Some(&"case.access-report"), "{r}");
    // The approved reveal read before is there, with who read it.
    assert!(actions.contains(&"reveal.read"), "{r}");
    let before = actions.len();
    let r = e.ok(StatusCode::OK, "GET", &path, SCHOOL_A, None).await;
    assert_eq!(r["accesses"].as_array().unwrap().len(), before + 1, "{r}");
}

async fn reveal_four_eyes(e: &Env, case: &str, first: &str) {
    let body = json!({"case_id": case, "purpose": "Guardian access request, ref 2026/14"});
    let r = e
        .ok(
            StatusCode::CREATED,
            "POST",
            "/api/v1/reveals",
            SCHOOL_A,
            Some(body.clone()),
        )
        .await;
    let id = r["reveal_id"].as_str().unwrap().to_owned();
    let read = format!("/api/v1/reveals/{id}/identity");
    let decide = format!("/api/v1/reveals/{id}/decision");
    // It waits for an approver's decision: on the approvers' task lists, not the
    // requester's.
    assert!(task_count(e, APPROVER, "reveals-to-decide").await >= 1);
    assert_eq!(task_count(e, SCHOOL_A, "reveals-to-decide").await, 0);
    assert_eq!(task_count(e, SCHOOL_A, "reveals-approved").await, 0);
    let (s, _) = e.call("GET", &read, SCHOOL_A, None).await;
    assert_eq!(s, StatusCode::CONFLICT, "not approved yet");
    // Only an approver, never the school itself, decides.
    let (s, _) = e
        .call("POST", &decide, SCHOOL_A, Some(json!({"approve": true})))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    e.ok(
        StatusCode::OK,
        "POST",
        &decide,
        APPROVER,
        Some(json!({"approve": true})),
    )
    .await;
    let (s, _) = e
        .call("POST", &decide, APPROVER2, Some(json!({"approve": true})))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "already decided");
    // Approved: the requester is told it can be opened now.
    assert_eq!(task_count(e, SCHOOL_A, "reveals-approved").await, 1);
    // Only the requester reads it.
    for who in [APPROVER, SCHOOL_A2, CENTRAL, AUDITOR] {
        let (s, _) = e.call("GET", &read, who, None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{who}");
    }
    let shown = e.ok(StatusCode::OK, "GET", &read, SCHOOL_A, None).await;
    assert_eq!(shown["first_name"], first);
    let (s, p) = e.call("GET", &read, SCHOOL_A, None).await;
    assert_eq!(
        (s, p["type"].as_str().unwrap()),
        (StatusCode::GONE, "urn:fiktiv:problem:reveal-used")
    );

    // Expired after the time limit (15 minutes by default).
    let r = e
        .ok(
            StatusCode::CREATED,
            "POST",
            "/api/v1/reveals",
            SCHOOL_A,
            Some(body.clone()),
        )
        .await;
    let id2 = r["reveal_id"].as_str().unwrap();
    e.ok(
        StatusCode::OK,
        "POST",
        &format!("/api/v1/reveals/{id2}/decision"),
        APPROVER2,
        Some(json!({"approve": true})),
    )
    .await;
    // Opened by the requester: the 15-minute read window starts now.
    let opened = e
        .ok(
            StatusCode::OK,
            "POST",
            &format!("/api/v1/reveals/{id2}/open"),
            SCHOOL_A,
            None,
        )
        .await;
    assert_eq!(opened["state"], "approved");
    e.clock.advance(TimeDelta::minutes(16));
    let (s, p) = e
        .call(
            "GET",
            &format!("/api/v1/reveals/{id2}/identity"),
            SCHOOL_A,
            None,
        )
        .await;
    assert_eq!(
        (s, p["type"].as_str().unwrap()),
        (StatusCode::GONE, "urn:fiktiv:problem:reveal-expired")
    );

    // Refused stays refused.
    let r = e
        .ok(
            StatusCode::CREATED,
            "POST",
            "/api/v1/reveals",
            SCHOOL_A,
            Some(body.clone()),
        )
        .await;
    let id3 = r["reveal_id"].as_str().unwrap();
    // A reason holding a personal number is refused, and nothing is decided.
    let (s, p) = e
        .call(
            "POST",
            &format!("/api/v1/reveals/{id3}/decision"),
            APPROVER,
            Some(json!({"approve": false,
                         "reason": format!("se {}", se_number(date(2014, 1, 2), 42))})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    e.ok(
        StatusCode::OK,
        "POST",
        &format!("/api/v1/reveals/{id3}/decision"),
        APPROVER,
        Some(json!({"approve": false, "reason": "Ask the guardians' lawyer first"})),
    )
    .await;
    // The requester sees why.
    let mine = e
        .ok(
            StatusCode::OK,
            "GET",
            "/api/v1/reveals/mine",
            SCHOOL_A,
            None,
        )
        .await;
    let refused = mine
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["reveal_id"] == id3)
        .unwrap();
    assert_eq!(refused["state"], "refused", "{mine}");
    assert_eq!(
        refused["decision_reason"], "Ask the guardians' lawyer first",
        "{mine}"
    );
    let (s, _) = e
        .call(
            "GET",
            &format!("/api/v1/reveals/{id3}/identity"),
            SCHOOL_A,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);

    // An approver may ask, but never decides their own request.
    let r = e
        .ok(
            StatusCode::CREATED,
            "POST",
            "/api/v1/reveals",
            APPROVER,
            Some(body),
        )
        .await;
    let id4 = r["reveal_id"].as_str().unwrap();
    let (s, _) = e
        .call(
            "POST",
            &format!("/api/v1/reveals/{id4}/decision"),
            APPROVER,
            Some(json!({"approve": true})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Requests, approvals, refusals and reads are in the audit trail.
    let ev = e
        .ok(
            StatusCode::OK,
            "GET",
            &format!("/api/v1/audit/events?case_id={case}&limit=1000"),
            AUDITOR,
            None,
        )
        .await;
    let actions: Vec<(String, String)> = ev
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["action"].as_str().unwrap().to_owned(),
                x["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for (a, o) in [
        ("reveal.request", "ok"),
        ("reveal.approve", "ok"),
        ("reveal.refuse", "ok"),
        ("reveal.read", "ok"),
        ("reveal.read", "denied"),
        ("case.read-identity", "ok"),
    ] {
        assert!(
            actions.contains(&(a.to_owned(), o.to_owned())),
            "{a}/{o} missing in {actions:?}"
        );
    }
    assert!(!ev.to_string().contains(first));
}

async fn reviews_across_school_years(e: &Env, case: &str) {
    // Opened 2026-03-02: the first review is due at the 2026 school-year start (15 Aug).
    let unit = format!("/api/v1/units/{UNIT_A}/reviews");
    let mine = |v: &serde_json::Value| {
        v.as_array()
            .unwrap()
            .iter()
            .find(|i| i["case_id"] == case)
            .cloned()
    };
    assert!(mine(&e.ok(StatusCode::OK, "GET", &unit, SCHOOL_A, None).await).is_none());
    e.clock.set(at(2026, 7, 20));
    let due = mine(&e.ok(StatusCode::OK, "GET", &unit, SCHOOL_A, None).await).unwrap();
    assert_eq!(due["status"], "due-soon");
    assert_eq!(due["next_due"], "2026-08-15");
    let all = mine(
        &e.ok(StatusCode::OK, "GET", "/api/v1/reviews", CENTRAL, None)
            .await,
    )
    .unwrap();
    assert_eq!(all["status"], "due-soon");
    let (s, _) = e.call("GET", "/api/v1/reviews", SCHOOL_A, None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = e.call("GET", &unit, SCHOOL_B, None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    e.clock.set(at(2026, 8, 16));
    let over = mine(&e.ok(StatusCode::OK, "GET", &unit, SCHOOL_A, None).await).unwrap();
    assert_eq!(over["status"], "overdue");
    let rec = e
        .ok(
            StatusCode::CREATED,
            "POST",
            &format!("/api/v1/cases/{case}/reviews"),
            SCHOOL_A,
            Some(json!({"outcome": "continue"})),
        )
        .await;
    assert_eq!(rec["next_due"], "2027-08-15");
    assert!(mine(&e.ok(StatusCode::OK, "GET", &unit, SCHOOL_A, None).await).is_none());
    // A year later it is overdue again.
    e.clock.set(at(2027, 8, 16));
    let over = mine(
        &e.ok(StatusCode::OK, "GET", "/api/v1/reviews", APPROVER, None)
            .await,
    )
    .unwrap();
    assert_eq!(over["status"], "overdue");
    // "The plan was changed" without a new version since the last review: refused,
    // nothing recorded.
    let (s, p) = e
        .call(
            "POST",
            &format!("/api/v1/cases/{case}/reviews"),
            SCHOOL_A,
            Some(json!({"outcome": "plan-changed"})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{p}");
    assert_eq!(p["type"], "urn:fiktiv:problem:plan-not-changed", "{p}");
    let still = mine(
        &e.ok(StatusCode::OK, "GET", "/api/v1/reviews", APPROVER, None)
            .await,
    )
    .unwrap();
    assert_eq!(still["status"], "overdue");
    e.ok(
        StatusCode::OK,
        "PUT",
        &format!("/api/v1/cases/{case}/plan"),
        SCHOOL_A,
        Some(plan("Changed at the review.")),
    )
    .await;
    e.ok(
        StatusCode::CREATED,
        "POST",
        &format!("/api/v1/cases/{case}/reviews"),
        SCHOOL_A,
        Some(json!({"outcome": "plan-changed"})),
    )
    .await;
}

async fn end_and_shred(e: &Env, case: &str, number: &str, first: &str, last: &str) {
    let c = format!("/api/v1/cases/{case}");
    // A leaving date in the future, or not a date, is refused and nothing changes.
    let tomorrow = (e.clock.now() + TimeDelta::days(2))
        .format("%Y-%m-%d")
        .to_string();
    for bad in [tomorrow.as_str(), "1999-01-01", "17 maj"] {
        let (s, p) = e
            .call(
                "POST",
                &format!("{c}/end"),
                SCHOOL_A,
                Some(json!({"reason": "left-school", "leaving_date": bad})),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {p}");
        assert_eq!(p["violations"][0]["code"], "end.leaving-date", "{p}");
        let v = e.ok(StatusCode::OK, "GET", &c, SCHOOL_A, None).await;
        assert_ne!(v["state"], "ended", "{v}");
    }
    let left = e.clock.now().format("%Y-%m-%d").to_string();
    let ended = e
        .ok(
            StatusCode::OK,
            "POST",
            &format!("{c}/end"),
            SCHOOL_A,
            Some(json!({"reason": "left-municipality", "leaving_date": left})),
        )
        .await;
    assert_eq!(ended["deprovisioning_requested"], true);
    assert_eq!(ended["left_on"], left.as_str());
    // The case says why, when the pupil left, and when what is shredded.
    let v = e.ok(StatusCode::OK, "GET", &c, SCHOOL_A, None).await;
    assert_eq!(v["end_reason"], "left-municipality", "{v}");
    assert_eq!(v["left_on"], left.as_str(), "{v}");
    assert_eq!(v["identity_shred_on"], ended["identity_shred_on"], "{v}");
    assert_eq!(v["plan_shred_on"], ended["plan_shred_on"], "{v}");
    let (s, _) = e
        .call(
            "POST",
            &format!("{c}/end"),
            SCHOOL_A,
            Some(json!({"reason": "pupil-left"})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let shred_on = ended["identity_shred_on"].as_str().unwrap().to_owned();
    // Nothing is shredded early.
    let r = fiktiv_routine::end::run_retention(&e.vault, "test")
        .await
        .unwrap();
    assert_eq!((r.identities, r.plans, r.records), (0, 0, 0));
    e.ok(
        StatusCode::OK,
        "GET",
        &format!("{c}/identity"),
        SCHOOL_A,
        None,
    )
    .await;
    let d = chrono::NaiveDate::parse_from_str(&shred_on, "%Y-%m-%d").unwrap();
    e.clock.set(d.and_hms_opt(9, 0, 0).unwrap().and_utc());
    let r = fiktiv_routine::end::run_retention(&e.vault, "test")
        .await
        .unwrap();
    assert_eq!(r.identities, 1);
    let (s, p) = e
        .call("GET", &format!("{c}/identity"), SCHOOL_A, None)
        .await;
    assert_eq!(
        (s, p["type"].as_str().unwrap()),
        (StatusCode::GONE, "urn:fiktiv:problem:identity-shredded")
    );
    // The plan is kept longer (2 years by default), then shredded too.
    e.ok(StatusCode::OK, "GET", &format!("{c}/plan"), SCHOOL_A, None)
        .await;
    e.clock.advance(TimeDelta::days(2 * 366 + 1));
    let r = fiktiv_routine::end::run_retention(&e.vault, "test")
        .await
        .unwrap();
    assert_eq!((r.plans, r.records), (1, 1));
    let (s, _) = e.call("GET", &format!("{c}/plan"), SCHOOL_A, None).await;
    assert!(s == StatusCode::CONFLICT || s == StatusCode::GONE, "{s}");
    // The same pupil can be taken in again after shredding.
    // No real value is in the database bytes.
    let raw = e.db.raw_bytes().unwrap();
    for canary in [number.replace('-', ""), first.to_owned(), last.to_owned()] {
        assert!(
            !crate::support::bytes_contain(&raw, canary.as_bytes()),
            "a real value is in the database in the clear"
        );
    }
    let v = e
        .ok(StatusCode::OK, "GET", "/api/v1/audit/verify", AUDITOR, None)
        .await;
    assert_eq!(v["ok"], true, "{v}");
}

async fn swedish_pupil(db: TestDatabase) {
    let e = env(db, at(2026, 3, 2)).await;
    let number = se_number(date(2015, 5, 17), 123);
    let short = format!("{}-{}", &number[2..8], &number[8..]);
    let case = routine(
        &e,
        "se",
        &short,
        SE_FIRST,
        SE_LAST,
        "2015-05-17",
        json!({"first_name": "Maja", "last_name": "Lindqvist", "birth_date": "2015-09-03"}),
        json!({"linked": true,
               "real": {"personal_number": se_number(date(1985, 2, 11), 456),
                        "first_name": "Kanariemor", "last_name": SE_LAST, "birth_date": "1985-02-11"},
               "fictitious": {"first_name": "Karin", "last_name": "Berglund", "birth_date": "1985-07-07"}}),
    )
    .await;
    reveal_four_eyes(&e, &case, SE_FIRST).await;
    access_report(&e, &case, &number).await;
    reviews_across_school_years(&e, &case).await;
    end_and_shred(&e, &case, &number, SE_FIRST, SE_LAST).await;
}
both_backends!(swedish_pupil);

async fn norwegian_pupil(db: TestDatabase) {
    let e = env(db, at(2026, 3, 2)).await;
    let number = no_number(date(2014, 11, 20));
    let case = routine(
        &e,
        "no",
        &number,
        NO_FIRST,
        NO_LAST,
        "2014-11-20",
        json!({"first_name": "Nora", "last_name": "Hansen", "birth_date": "2014-04-04"}),
        json!({"linked": true,
               "real": {"personal_number": no_guardian(), "first_name": "Kanarimor",
                        "last_name": NO_LAST, "birth_date": "1988-03-15"},
               "fictitious": {"first_name": "Ingrid", "last_name": "Dahl", "birth_date": "1988-06-06"}}),
    )
    .await;
    reveal_four_eyes(&e, &case, NO_FIRST).await;
    access_report(&e, &case, &number).await;
    reviews_across_school_years(&e, &case).await;
    end_and_shred(&e, &case, &number, NO_FIRST, NO_LAST).await;
}
both_backends!(norwegian_pupil);

/// A Norwegian born 1988 (individual numbers 000-499).
fn no_guardian() -> String {
    (100..500)
        .find_map(|i| {
            let nine = format!("150388{i:03}");
            fiktiv_vault::ids::no_check_digits(&nine).map(|(a, b)| format!("{nine}{a}{b}"))
        })
        .unwrap()
}
