//! A pupil moves to another unit and comes back (#16): the receiving unit asks with the
//! personal number, the case's unit or an approver decides. Through the API, against a
//! real slapd, a real scim2-server and the OneRoster folder, on SQLite and PostgreSQL:
//! the case moves with its history, the sending unit loses access at once, every
//! account is rewritten in place (same LDAP entry, same SCIM id, one row per person),
//! a reopened case provisions nothing until its new plan version. Refused, expired,
//! foreign and self-decided requests change nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use crate::support::api;
use crate::support::provisioning;

use api::*;
use axum::http::StatusCode;
use chrono::TimeDelta;
use fiktiv_tests::TestDatabase;
use provisioning::*;
use serde_json::{json, Value};

const REAL_FIRST: &str = "Flyttfågel";
const REAL_LAST: &str = "Qvarnströmsdotter";

/// `uid=...` DN and entryUUID of the one LDAP entry of `person`.
fn ldap_identity(peers: &Peers, person: &str) -> (String, String) {
    let ldif = peers
        .slapd
        .ldapsearch(&format!("(employeeNumber={person})"), &["entryUUID"])
        .unwrap();
    assert_eq!(ldif.matches("dn: ").count(), 1, "{ldif}");
    let dn = ldif
        .lines()
        .find_map(|l| l.strip_prefix("dn: "))
        .unwrap()
        .to_owned();
    let uuid = ldif
        .lines()
        .find_map(|l| l.strip_prefix("entryUUID: "))
        .unwrap()
        .to_owned();
    (dn, uuid)
}

/// The `cn` of every LDAP group that has `dn` as a member.
fn ldap_groups_of(peers: &Peers, dn: &str) -> Vec<String> {
    let mut out: Vec<String> = peers
        .slapd
        .ldapsearch(&format!("(member={dn})"), &["cn"])
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("cn: "))
        .map(str::to_owned)
        .collect();
    out.sort();
    out
}

/// The `displayName` of every SCIM group that has the user `id` as a member.
fn scim_groups_of(peers: &Peers, id: &str) -> Vec<String> {
    let mut out: Vec<String> = peers
        .scim
        .list_all("/Groups")
        .unwrap()
        .iter()
        .filter(|g| {
            g["members"]
                .as_array()
                .is_some_and(|m| m.iter().any(|m| m["value"] == id))
        })
        .map(|g| g["displayName"].as_str().unwrap().to_owned())
        .collect();
    out.sort();
    out
}

async fn ask(e: &Env, who: &str, unit: &str, number: &str, groups: &[&str]) -> (StatusCode, Value) {
    e.call(
        "POST",
        &format!("/api/v1/units/{unit}/case-requests"),
        who,
        Some(json!({"country": "se", "personal_number": number, "groups": groups})),
    )
    .await
}

async fn decide(e: &Env, who: &str, id: &str, accept: bool) -> (StatusCode, Value) {
    e.call(
        "POST",
        &format!("/api/v1/case-requests/{id}/decision"),
        who,
        Some(json!({"accept": accept})),
    )
    .await
}

/// The count of one kind in the caller's tasks, 0 when absent.
async fn task_count(e: &Env, who: &str, kind: &str) -> u64 {
    e.ok(StatusCode::OK, "GET", "/api/v1/me/tasks", who, None)
        .await
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["kind"] == kind)
        .map_or(0, |x| x["count"].as_u64().unwrap())
}

async fn unit_requests(e: &Env, who: &str, unit: &str) -> Vec<Value> {
    e.ok(
        StatusCode::OK,
        "GET",
        &format!("/api/v1/units/{unit}/case-requests"),
        who,
        None,
    )
    .await
    .as_array()
    .unwrap()
    .clone()
}

async fn move_and_come_back(db: TestDatabase) {
    let peers = Peers::start();
    let toml = targets_toml(&peers, &peers.slapd.url(), &peers.scim.base_url(), "");
    let p = penv(db, at(2026, 3, 2), &toml).await;
    let e = &p.e;
    let real = Real::new(REAL_FIRST, REAL_LAST, "2015-04-21", 417);
    let case = pupil(
        e,
        &real,
        ("Ebba", "Stenmark", "2015-08-14"),
        Some(guardian("Flyttmor", REAL_LAST, 733, ("Lena", "Stenmark"))),
    )
    .await;
    p.work().await;
    let persons = p.person_ids(&case).await;
    assert_eq!(persons.len(), 2);
    let pupil_id = p.pupil_id(&case).await;
    let (dn, uuid) = ldap_identity(&peers, &pupil_id);
    assert_eq!(ldap_groups_of(&peers, &dn), ["unit-a", "unit-a-4b"]);
    let scim_id = peers.scim_users(&pupil_id)[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(scim_groups_of(&peers, &scim_id), ["4B", UNIT_A]);

    // Unit B asks. The answer names neither the case nor where it is.
    let (s, r) = ask(e, SCHOOL_B, UNIT_B, &real.number, &["7A"]).await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    assert_eq!(r["kind"], "move");
    assert_eq!(r["state"], "pending");
    assert_eq!(r["from_unit"], Value::Null);
    assert_eq!(r["case_id"], Value::Null);
    let text = r.to_string();
    assert!(!text.contains(UNIT_A) && !text.contains(&case), "{text}");
    assert!(!text.contains(&real.number[2..]), "the number is echoed");
    let id = r["request_id"].as_str().unwrap().to_owned();
    // A second request for the same pupil waits for the first.
    let (s, r) = ask(e, SCHOOL_B, UNIT_B, &real.number, &["7A"]).await;
    assert_eq!(
        (s, r["type"].as_str()),
        (
            StatusCode::CONFLICT,
            Some("urn:fiktiv:problem:request-pending")
        )
    );

    // Unit B's list says no more; unit A sees where it goes and may decide.
    let b = unit_requests(e, SCHOOL_B, UNIT_B).await;
    assert_eq!(b.len(), 1);
    assert_eq!(b[0]["from_unit"], Value::Null);
    assert_eq!(b[0]["to_decide"], false);
    let a = unit_requests(e, SCHOOL_A, UNIT_A).await;
    assert_eq!(a.len(), 1);
    assert_eq!(a[0]["from_unit"], UNIT_A);
    assert_eq!(a[0]["to_unit"], UNIT_B);
    assert_eq!(a[0]["case_id"], case.as_str());
    assert_eq!(a[0]["to_decide"], true);
    assert_eq!(a[0]["groups"], json!(["7A"]));

    // The start page tells the deciders, not the one who asked.
    for (who, n) in [
        (SCHOOL_A, 1),
        (SCHOOL_A2, 1),
        (APPROVER, 1),
        (SCHOOL_B, 0),
        (CENTRAL, 0),
    ] {
        assert_eq!(
            task_count(e, who, "case-requests-to-decide").await,
            n,
            "{who}"
        );
    }

    // Nobody decides their own request, nor anyone outside the case's unit.
    for who in [SCHOOL_B, CENTRAL, AUDITOR] {
        let (s, _) = decide(e, who, &id, true).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{who}");
    }
    assert_eq!(
        e.ok(
            StatusCode::OK,
            "GET",
            &format!("/api/v1/cases/{case}"),
            SCHOOL_A,
            None
        )
        .await["unit"],
        UNIT_A
    );

    // Unit A accepts: the case, its plan and history are unit B's; unit A loses access.
    let before_plan = e
        .ok(
            StatusCode::OK,
            "GET",
            &format!("/api/v1/cases/{case}/plan"),
            SCHOOL_A,
            None,
        )
        .await;
    let (s, r) = decide(e, SCHOOL_A, &id, true).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["state"], "accepted");
    let (s, _) = e
        .call("GET", &format!("/api/v1/cases/{case}"), SCHOOL_A, None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let view = e
        .ok(
            StatusCode::OK,
            "GET",
            &format!("/api/v1/cases/{case}"),
            SCHOOL_B,
            None,
        )
        .await;
    assert_eq!(view["unit"], UNIT_B);
    assert_eq!(view["state"], "registered");
    let plan = e
        .ok(
            StatusCode::OK,
            "GET",
            &format!("/api/v1/cases/{case}/plan"),
            SCHOOL_B,
            None,
        )
        .await;
    assert_eq!(plan, before_plan);
    assert_eq!(task_count(e, SCHOOL_A, "case-requests-to-decide").await, 0);
    // Unit B now sees the case id; unit A keeps the fact, not the case.
    assert_eq!(
        unit_requests(e, SCHOOL_B, UNIT_B).await[0]["case_id"],
        case.as_str()
    );
    assert_eq!(
        unit_requests(e, SCHOOL_A, UNIT_A).await[0]["case_id"],
        Value::Null
    );
    // Deciding again is refused.
    let (s, r) = decide(e, SCHOOL_A2, &id, false).await;
    assert_eq!(
        s,
        StatusCode::NOT_FOUND,
        "unit A no longer has the case: {r}"
    );
    let (s, r) = decide(e, APPROVER, &id, false).await;
    assert_eq!(
        (s, r["type"].as_str()),
        (
            StatusCode::CONFLICT,
            Some("urn:fiktiv:problem:request-decided")
        )
    );

    // Provisioning moves every account in place: one job per person and target.
    let done_before = p.jobs("done").await.len();
    p.work().await;
    assert_eq!(p.jobs("done").await.len(), done_before);
    assert!(p.jobs("failed").await.is_empty());
    for (pid, _) in &persons {
        assert_eq!(peers.ldap_count(pid), 1, "ldap {pid}");
        assert_eq!(peers.scim_users(pid).len(), 1, "scim {pid}");
        assert_eq!(peers.csv_count(pid), 1, "csv {pid}");
    }
    let (dn2, uuid2) = ldap_identity(&peers, &pupil_id);
    assert_eq!(uuid2, uuid, "the LDAP entry was deleted and re-created");
    assert_eq!(ldap_groups_of(&peers, &dn2), ["unit-b", "unit-b-7a"]);
    let u = &peers.scim_users(&pupil_id)[0];
    assert_eq!(u["id"], scim_id.as_str(), "the SCIM user was re-created");
    assert_eq!(scim_groups_of(&peers, &scim_id), ["7A", UNIT_B]);
    let row = peers
        .users_csv()
        .lines()
        .find(|l| l.starts_with(&pupil_id))
        .unwrap()
        .to_owned();
    assert!(row.contains(UNIT_B) && !row.contains(UNIT_A), "{row}");

    // Unit B asks again: the case is already here.
    let (s, r) = ask(e, SCHOOL_B, UNIT_B, &real.number, &[]).await;
    assert_eq!(
        (s, r["type"].as_str()),
        (
            StatusCode::CONFLICT,
            Some("urn:fiktiv:problem:case-already-here")
        )
    );

    // The pupil leaves; the accounts are disabled.
    e.ok(
        StatusCode::OK,
        "POST",
        &format!("/api/v1/cases/{case}/end"),
        SCHOOL_B,
        Some(json!({"reason": "left-school", "leaving_date": "2026-03-02"})),
    )
    .await;
    p.work().await;
    assert_eq!(peers.scim_users(&pupil_id)[0]["active"], false);
    // Opening a new case for the pupil points to reopening.
    let (s, r) = e
        .call(
            "POST",
            &format!("/api/v1/units/{UNIT_A}/cases"),
            SCHOOL_A,
            Some(json!({"country": "se", "personal_number": real.number,
                        "first_name": real.first, "last_name": real.last, "birth_date": real.birth})),
        )
        .await;
    assert_eq!(
        (s, r["type"].as_str()),
        (
            StatusCode::CONFLICT,
            Some("urn:fiktiv:problem:earlier-case-ended")
        )
    );

    // Coming back to unit A: a reopen request, decided by an approver.
    e.clock.advance(TimeDelta::days(20));
    let (s, r) = ask(e, SCHOOL_A, UNIT_A, &real.number, &["5C"]).await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    assert_eq!(r["kind"], "reopen");
    let id = r["request_id"].as_str().unwrap().to_owned();
    let pending = e
        .ok(
            StatusCode::OK,
            "GET",
            "/api/v1/case-requests",
            APPROVER,
            None,
        )
        .await;
    assert_eq!(pending.as_array().unwrap().len(), 1, "{pending}");
    assert_eq!(pending[0]["from_unit"], UNIT_B);
    let (s, r) = decide(e, APPROVER, &id, true).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let view = e
        .ok(
            StatusCode::OK,
            "GET",
            &format!("/api/v1/cases/{case}"),
            SCHOOL_A,
            None,
        )
        .await;
    assert_eq!(view["unit"], UNIT_A);
    assert_eq!(view["state"], "registered");
    assert_eq!(view["plan_required"], true);
    assert_eq!(view["ended_on"], Value::Null);
    assert_eq!(view["identity_shred_on"], Value::Null);
    // Nothing is provisioned before the new plan version.
    p.work().await;
    assert_eq!(peers.scim_users(&pupil_id)[0]["active"], false);
    e.ok(
        StatusCode::OK,
        "PUT",
        &format!("/api/v1/cases/{case}/plan"),
        SCHOOL_A,
        Some(
            json!({"information_handling": "y", "platforms": ["google", "unikum"],
            "guardian_contact_routes": [], "staff_to_inform": [], "free_text": "Tillbaka."}),
        ),
    )
    .await;
    let view = e
        .ok(
            StatusCode::OK,
            "GET",
            &format!("/api/v1/cases/{case}"),
            SCHOOL_A,
            None,
        )
        .await;
    assert_eq!(view["plan_required"], false);
    p.work().await;
    assert!(p.jobs("failed").await.is_empty());
    let u = &peers.scim_users(&pupil_id)[0];
    assert_eq!(u["active"], true);
    assert_eq!(u["id"], scim_id.as_str());
    let (dn3, uuid3) = ldap_identity(&peers, &pupil_id);
    assert_eq!(uuid3, uuid);
    assert_eq!(ldap_groups_of(&peers, &dn3), ["unit-a", "unit-a-5c"]);
    for (pid, _) in &persons {
        assert_eq!(peers.ldap_count(pid), 1, "ldap {pid}");
        assert_eq!(peers.scim_users(pid).len(), 1, "scim {pid}");
        assert_eq!(peers.csv_count(pid), 1, "csv {pid}");
    }
    // The right-of-access report lists the move and the reopening.
    let report = e
        .ok(
            StatusCode::OK,
            "GET",
            &format!("/api/v1/cases/{case}/access-report"),
            SCHOOL_A,
            None,
        )
        .await;
    let moves: Vec<(&str, &str, &str)> = report["moves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["kind"].as_str().unwrap(),
                m["from_unit"].as_str().unwrap(),
                m["to_unit"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        moves,
        [("move", UNIT_A, UNIT_B), ("reopen", UNIT_B, UNIT_A)],
        "{report}"
    );
    // Every step is in the audit trail.
    assert_eq!(p.audit_count("case.request").await, 4);
    assert_eq!(p.audit_count("case.request-decide").await, 2);
    // The case can end again (its earlier deprovisioning request is gone).
    e.ok(
        StatusCode::OK,
        "POST",
        &format!("/api/v1/cases/{case}/end"),
        SCHOOL_A,
        Some(json!({"reason": "protection-lifted"})),
    )
    .await;
}
both_backends!(move_and_come_back);

async fn refused_expired_and_foreign_requests_change_nothing(db: TestDatabase) {
    let e = env(db, at(2026, 3, 2)).await;
    let real = Real::new(REAL_FIRST, REAL_LAST, "2015-04-21", 417);
    let case = open_case(&e, &real).await;
    let case_row = |e: &Env| {
        let vault = e.vault.clone();
        let case = case.clone();
        async move {
            use sqlx::Row;
            let r = sqlx::query("SELECT unit, state FROM cases WHERE case_id = $1")
                .bind(&case)
                .fetch_one(vault.db().pool())
                .await
                .unwrap();
            (r.get::<String, _>("unit"), r.get::<String, _>("state"))
        }
    };
    let start = case_row(&e).await;

    // Bad input: a clear error, nothing stored, the number never echoed.
    let before = e.count("case_requests").await;
    let mut wrong = real.number.clone();
    let last = wrong.pop().unwrap().to_digit(10).unwrap();
    wrong.push(char::from_digit((last + 1) % 10, 10).unwrap());
    for (number, code) in [
        (wrong.as_str(), "personal-number.bad-checksum"),
        ("not a number", "personal-number.bad-characters"),
    ] {
        let (s, r) = ask(&e, SCHOOL_B, UNIT_B, number, &[]).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{r}");
        assert!(r.to_string().contains(code), "{r}");
        assert!(!r.to_string().contains(number), "{r}");
    }
    let (s, r) = ask(&e, SCHOOL_B, UNIT_B, &real.number, &["a\u{7}b"]).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{r}");
    // No case for this number: said so, audited, nothing else stored.
    let other = se_number(date(2014, 1, 9), 222);
    let (s, r) = ask(&e, SCHOOL_B, UNIT_B, &other, &[]).await;
    assert_eq!(
        (s, r["type"].as_str()),
        (StatusCode::CONFLICT, Some("urn:fiktiv:problem:no-case"))
    );
    assert_eq!(e.count("case_requests").await, before);
    // Another unit's staff may not ask for unit B.
    let (s, _) = ask(&e, SCHOOL_A, UNIT_B, &real.number, &[]).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    for who in [CENTRAL, APPROVER, AUDITOR] {
        let (s, _) = ask(&e, who, UNIT_B, &real.number, &[]).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{who}");
    }

    // Refused: nothing changes, and unit B reads why.
    let (_, r) = ask(&e, SCHOOL_B, UNIT_B, &real.number, &["7A"]).await;
    let id = r["request_id"].as_str().unwrap().to_owned();
    let (s, r) = e
        .call(
            "POST",
            &format!("/api/v1/case-requests/{id}/decision"),
            SCHOOL_A,
            Some(json!({"accept": false, "reason": "Eleven stannar hos oss."})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(case_row(&e).await, start);
    let b = unit_requests(&e, SCHOOL_B, UNIT_B).await;
    assert_eq!(b[0]["state"], "refused");
    assert_eq!(b[0]["decision_reason"], "Eleven stannar hos oss.");
    assert_eq!(
        b[0]["decided_by"],
        Value::Null,
        "the deciding person would name the unit"
    );
    assert_eq!(b[0]["case_id"], Value::Null);
    // A reason holding a personal number is refused.
    let (_, r) = ask(&e, SCHOOL_B, UNIT_B, &real.number, &[]).await;
    let id = r["request_id"].as_str().unwrap().to_owned();
    let (s, r) = e
        .call(
            "POST",
            &format!("/api/v1/case-requests/{id}/decision"),
            SCHOOL_A,
            Some(json!({"accept": false, "reason": format!("Gäller {}", real.number)})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{r}");
    assert!(!r.to_string().contains(&real.number[2..]), "{r}");

    // Expired: nobody decided in 14 days (the default); deciding is refused, nothing
    // changes, and a new request may be made.
    e.clock.advance(TimeDelta::days(15));
    let (s, r) = decide(&e, SCHOOL_A, &id, true).await;
    assert_eq!(
        (s, r["type"].as_str()),
        (StatusCode::GONE, Some("urn:fiktiv:problem:request-expired"))
    );
    assert_eq!(case_row(&e).await, start);
    let a = unit_requests(&e, SCHOOL_A, UNIT_A).await;
    assert!(a.iter().any(|r| r["state"] == "expired"), "{a:?}");
    let (s, r) = ask(&e, SCHOOL_B, UNIT_B, &real.number, &[]).await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let id = r["request_id"].as_str().unwrap().to_owned();

    // A request whose case changed meanwhile (it ended) is stale: nothing changes.
    e.ok(
        StatusCode::OK,
        "POST",
        &format!("/api/v1/cases/{case}/end"),
        SCHOOL_A,
        Some(json!({"reason": "protection-lifted"})),
    )
    .await;
    let ended = case_row(&e).await;
    let (s, r) = decide(&e, APPROVER, &id, true).await;
    assert_eq!(
        (s, r["type"].as_str()),
        (
            StatusCode::CONFLICT,
            Some("urn:fiktiv:problem:request-stale")
        )
    );
    assert_eq!(case_row(&e).await, ended);
    // Unknown and malformed ids are "not found".
    for bad in ["00000000-0000-0000-0000-000000000000", "x"] {
        let (s, _) = decide(&e, APPROVER, bad, true).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{bad}");
    }
    // The refusals are in the audit trail, with the case they concern.
    use sqlx::Row;
    let refused: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM audit_events WHERE action = 'case.request' AND outcome = 'denied'",
    )
    .fetch_one(e.vault.db().pool())
    .await
    .unwrap()
    .get("n");
    assert!(refused >= 1, "no-case is audited");
}
both_backends!(refused_expired_and_foreign_requests_change_nothing);

/// Each answer says whether a personal number has a case in Fiktiv: one person may ask
/// only `[cases] requests_per_person_per_day` times in 24 hours, answered or refused,
/// through the API and the domain function the web UI calls alike. A refusal stores
/// nothing; another person is not held back; the next day there is room again.
async fn one_person_may_ask_only_so_often(db: TestDatabase) {
    let config =
        fiktiv_app::config::Config::parse("[cases]\nrequests_per_person_per_day = 3\n", "t")
            .unwrap();
    let e = env_with(db, at(2026, 3, 2), config).await;
    let real = Real::new(REAL_FIRST, REAL_LAST, "2015-04-21", 417);
    open_case(&e, &real).await;
    // Two numbers without a case, one with: three answers.
    for serial in [222, 224] {
        let (s, r) = ask(
            &e,
            SCHOOL_B,
            UNIT_B,
            &se_number(date(2014, 1, 9), serial),
            &[],
        )
        .await;
        assert_eq!(s, StatusCode::CONFLICT, "{r}");
    }
    let (s, r) = ask(&e, SCHOOL_B, UNIT_B, &real.number, &[]).await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let id = r["request_id"].as_str().unwrap().to_owned();
    decide(&e, SCHOOL_A, &id, false).await;
    // The fourth is refused before any number is looked up, and stores nothing but
    // its audit event.
    let before = e.count("case_requests").await;
    let audited = e.count("audit_events").await;
    let (s, r) = ask(&e, SCHOOL_B, UNIT_B, &real.number, &[]).await;
    assert_eq!(
        (s, r["type"].as_str()),
        (
            StatusCode::TOO_MANY_REQUESTS,
            Some("urn:fiktiv:problem:requests-rate-limited")
        ),
        "{r}"
    );
    assert!(!r.to_string().contains(&real.number[2..]), "{r}");
    let (s, _) = ask(&e, SCHOOL_B, UNIT_B, &se_number(date(2014, 1, 9), 226), &[]).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    // The web UI's way in is the same domain function, with the same answer.
    use sqlx::Row;
    let school_b: String = sqlx::query(
        "SELECT actor FROM audit_events WHERE action = 'case.request' AND outcome = 'ok'",
    )
    .fetch_one(e.vault.db().pool())
    .await
    .unwrap()
    .get("actor");
    let principal = fiktiv_policies::Principal::new(
        school_b,
        vec![fiktiv_policies::Role::School],
        vec![UNIT_B.to_string()],
    );
    let permit = e
        .ctx
        .authz
        .authorize(
            &principal,
            fiktiv_policies::Action::CaseRequest,
            &fiktiv_policies::Resource::Unit(UNIT_B.to_string()),
        )
        .unwrap();
    let refused = fiktiv_routine::case_requests::request(
        &e.vault,
        &e.ctx.rules,
        &permit,
        UNIT_B,
        serde_json::from_value(
            json!({"country": "se", "personal_number": real.number, "groups": []}),
        )
        .unwrap(),
    )
    .await;
    assert!(
        matches!(
            refused,
            Err(fiktiv_routine::DomainError::Busy {
                code: "requests-rate-limited",
                ..
            })
        ),
        "{refused:?}"
    );
    assert_eq!(
        e.count("case_requests").await,
        before,
        "a refusal stores nothing"
    );
    let denied: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM audit_events WHERE action = 'case.request' \
         AND outcome = 'denied' AND purpose = 'requests-rate-limited'",
    )
    .fetch_one(e.vault.db().pool())
    .await
    .unwrap()
    .get("n");
    assert_eq!(denied, 3, "each refusal is audited");
    assert_eq!(e.count("audit_events").await, audited + 3);
    // Another person is not held back.
    let (s, r) = ask(&e, SCHOOL_A, UNIT_A, &se_number(date(2014, 1, 9), 228), &[]).await;
    assert_eq!(s, StatusCode::CONFLICT, "{r}");
    assert_eq!(r["type"], "urn:fiktiv:problem:no-case");
    // A day later there is room again.
    e.clock.advance(TimeDelta::hours(24));
    let (s, r) = ask(&e, SCHOOL_B, UNIT_B, &real.number, &[]).await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
}
both_backends!(one_person_may_ask_only_so_often);
