//! Every endpoint × every role × own/other school unit, with the exact allow/deny
//! outcome, through the router. The table must list every route of the OpenAPI
//! document (which utoipa-axum builds from the same calls that register the routes), so
//! adding an endpoint without adding it here fails this test.
//!
//! "Denied" is 403, or 404 `not-found` (case-scoped resources answer a denial like an
//! unknown id). "Allowed" is anything else but 401/5xx: the policy let the request
//! through even if the routine then said 409 (wrong order) for this fixture's state.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use crate::support::api;

use std::collections::BTreeSet;

use api::*;
use axum::http::StatusCode;
use serde_json::{json, Value};

const A: bool = true;
const D: bool = false;

/// Columns: central-admin, school of the case's unit, school of another unit,
/// approver, auditor.
const WHO: [&str; 5] = [CENTRAL, SCHOOL_A, SCHOOL_B, APPROVER2, AUDITOR];

struct Row {
    method: &'static str,
    path: &'static str,
    body: Option<Value>,
    expect: [bool; 5],
}

fn table() -> Vec<Row> {
    let new_pupil = json!({"country": "se", "personal_number": se_number(date(2016, 1, 1), 7),
        "first_name": "Tabell", "last_name": "Elev", "birth_date": "2016-01-01"});
    let plan = json!({"information_handling": "x", "platforms": [], "guardian_contact_routes": [],
        "staff_to_inform": [], "free_text": ""});
    let r = |method, path, body: Option<Value>, expect| Row {
        method,
        path,
        body,
        expect,
    };
    vec![
        //                                                              CA own other appr aud
        r(
            "POST",
            "/api/v1/units/{unit}/cases",
            Some(new_pupil),
            [D, A, D, D, D],
        ),
        r("GET", "/api/v1/units/{unit}/cases", None, [A, A, D, D, D]),
        // The fixture's pupil has a case in unit A: the school may ask (and is told the
        // case is already here); nobody else may ask for unit A.
        r(
            "POST",
            "/api/v1/units/{unit}/case-requests",
            Some(json!({"country": "se", "personal_number": se_number(date(2015, 5, 17), 123)})),
            [D, A, D, D, D],
        ),
        r(
            "GET",
            "/api/v1/units/{unit}/case-requests",
            None,
            [D, A, D, A, D],
        ),
        r("GET", "/api/v1/case-requests", None, [D, D, D, A, D]),
        // The fixture's case is ordered, not registered: allowed callers get 409.
        r(
            "POST",
            "/api/v1/cases/{case_id}/fictitious-change",
            Some(json!({"first_name": "Ellen", "last_name": "Lindqvist",
                        "birth_date": "2015-09-03", "reason": "Fel namn"})),
            [D, A, D, D, D],
        ),
        r("GET", "/api/v1/fictitious-changes", None, [A, D, D, D, D]),
        // No recipient key: allowed callers get 422 and the case stays as it is.
        r(
            "POST",
            "/api/v1/cases/{case_id}/transfer-package",
            Some(json!({"recipient_key": "",
                        "consent": {"given_by": "", "given_on": "2026-03-01", "plan": false}})),
            [D, A, D, D, D],
        ),
        // A package from nobody: allowed callers get 409 (not for this Fiktiv).
        r(
            "POST",
            "/api/v1/units/{unit}/transfer-imports",
            Some(
                json!({"format": "fiktiv-transfer/1", "package_id": "x", "created_at": "x",
                        "sender": "x", "sender_name": "x", "recipient": "x", "enc": "x",
                        "ciphertext": "x"}),
            ),
            [D, A, D, D, D],
        ),
        // No such change: everyone gets 404 (the API test covers the allowed path).
        r(
            "POST",
            "/api/v1/fictitious-changes/{change_id}/registration",
            None,
            [D, D, D, D, D],
        ),
        // A correction with a bad reason: allowed callers get 422, nothing changes.
        r(
            "POST",
            "/api/v1/cases/{case_id}/identity-correction",
            Some(json!({"personal_number": se_number(date(2015, 5, 17), 123),
                        "first_name": "Riktig", "last_name": "Person",
                        "birth_date": "2015-05-17", "reason": ""})),
            [D, A, D, D, D],
        ),
        // No old identity 1 in the fixture: allowed callers get 404 `not-found` too,
        // which this table cannot tell from a denial; the API test covers both.
        r(
            "POST",
            "/api/v1/cases/{case_id}/old-identities/{old_id}/close",
            None,
            [D, D, D, D, D],
        ),
        // Unit B's request for unit A's case: unit A or an approver decides (refusing,
        // so that the case stays where the other rows expect it), never unit B.
        r(
            "POST",
            "/api/v1/case-requests/{request_id}/decision",
            Some(json!({"accept": false})),
            [D, A, D, A, D],
        ),
        r("GET", "/api/v1/cases", None, [A, D, D, D, D]),
        r("GET", "/api/v1/cases/{case_id}", None, [A, A, D, D, D]),
        r(
            "GET",
            "/api/v1/cases/{case_id}/alerts",
            None,
            [A, A, D, D, D],
        ),
        r(
            "GET",
            "/api/v1/cases/{case_id}/identity",
            None,
            [D, A, D, D, D],
        ),
        r(
            "PUT",
            "/api/v1/cases/{case_id}/plan",
            Some(plan),
            [D, A, D, D, D],
        ),
        r("GET", "/api/v1/cases/{case_id}/plan", None, [D, A, D, D, D]),
        r(
            "PUT",
            "/api/v1/cases/{case_id}/login-decision",
            Some(json!({"decision": "fictitious-user"})),
            [D, A, D, D, D],
        ),
        r(
            "PUT",
            "/api/v1/cases/{case_id}/fictitious-identity",
            Some(
                json!({"first_name": "Maja", "last_name": "Lindqvist", "birth_date": "2015-09-03"}),
            ),
            [D, A, D, D, D],
        ),
        r(
            "GET",
            "/api/v1/cases/{case_id}/name-suggestions",
            None,
            [D, A, D, D, D],
        ),
        r(
            "PUT",
            "/api/v1/cases/{case_id}/guardians/{guardian_no}",
            Some(json!({"linked": false})),
            [D, A, D, D, D],
        ),
        r(
            "POST",
            "/api/v1/cases/{case_id}/guardians/{guardian_no}/registration",
            None,
            [A, D, D, D, D],
        ),
        r(
            "GET",
            "/api/v1/guardian-registrations",
            None,
            [A, D, D, D, D],
        ),
        r(
            "POST",
            "/api/v1/cases/{case_id}/guardians/{guardian_no}/fictitious-change",
            Some(
                json!({"first_name": "Ny", "last_name": "Namn", "birth_date": "1985-01-01", "reason": "Fel"}),
            ),
            [D, A, D, D, D],
        ),
        r(
            "POST",
            "/api/v1/cases/{case_id}/guardians/{guardian_no}/removal",
            Some(json!({"reason": "Ändrad vårdnad"})),
            [D, A, D, D, D],
        ),
        r(
            "POST",
            "/api/v1/cases/{case_id}/order",
            Some(json!({"groups": [], "platforms": ["google"]})),
            [D, A, D, D, D],
        ),
        r(
            "POST",
            "/api/v1/cases/{case_id}/staff-told",
            Some(json!({"staff": ["teacher"], "told_on": "2026-03-01"})),
            [D, A, D, D, D],
        ),
        r(
            "GET",
            "/api/v1/cases/{case_id}/staff-told",
            None,
            [D, A, D, D, D],
        ),
        r("GET", "/api/v1/orders", None, [A, D, D, D, D]),
        r(
            "POST",
            "/api/v1/orders/{order_id}/registration",
            Some(json!({})),
            [A, D, D, D, D],
        ),
        r("GET", "/api/v1/reviews", None, [A, D, D, A, D]),
        r("GET", "/api/v1/units/{unit}/reviews", None, [D, A, D, D, D]),
        // The SS 12000 hub: a unit's intake items for its school; no such item: everyone
        // gets 404 (service/tests/suite/hub_read.rs covers the allowed path); counts
        // and the read status for the central administrator.
        r("GET", "/api/v1/units/{unit}/intake", None, [D, A, D, D, D]),
        r(
            "GET",
            "/api/v1/units/{unit}/intake/{intake_id}",
            None,
            [D, D, D, D, D],
        ),
        r(
            "POST",
            "/api/v1/units/{unit}/intake/{intake_id}/case",
            None,
            [D, D, D, D, D],
        ),
        r("GET", "/api/v1/intake/counts", None, [A, D, D, D, D]),
        r("GET", "/api/v1/hub/status", None, [A, D, D, D, D]),
        // No [ss12000] in the fixture: the allowed caller gets 409 hub-not-configured.
        r("POST", "/api/v1/hub/read", None, [A, D, D, D, D]),
        r(
            "GET",
            "/api/v1/cases/{case_id}/reviews",
            None,
            [D, A, D, D, D],
        ),
        r(
            "POST",
            "/api/v1/cases/{case_id}/reviews",
            Some(json!({"outcome": "continue"})),
            [D, A, D, D, D],
        ),
        r(
            "POST",
            "/api/v1/reveals",
            Some(json!({"case_id": "{case_id}", "purpose": "table test"})),
            [D, A, D, A, D],
        ),
        r(
            "POST",
            "/api/v1/reveals/{reveal_id}/decision",
            Some(json!({"approve": true})),
            [D, D, D, A, D],
        ),
        r(
            "POST",
            "/api/v1/reveals/{reveal_id}/open",
            None,
            [D, A, D, D, D],
        ),
        r(
            "GET",
            "/api/v1/reveals/{reveal_id}/identity",
            None,
            [D, A, D, D, D],
        ),
        // Municipality-wide lists, filtered by the caller: the pending list leaves out
        // the caller's own requests, "mine" holds only the caller's.
        r("GET", "/api/v1/reveals/pending", None, [D, D, D, A, D]),
        r("GET", "/api/v1/reveals/mine", None, [D, A, A, A, D]),
        r(
            "PUT",
            "/api/v1/cases/{case_id}/label",
            Some(json!({"label": "3B"})),
            [D, A, D, D, D],
        ),
        r(
            "GET",
            "/api/v1/cases/{case_id}/access-report",
            None,
            [D, A, D, D, D],
        ),
        // Everyone has a task list; each item is authorized inside it.
        r("GET", "/api/v1/me/tasks", None, [A, A, A, A, A]),
        r("GET", "/api/v1/audit/events", None, [D, D, D, D, A]),
        r("GET", "/api/v1/audit/verify", None, [D, D, D, D, A]),
        // Provisioning and the two checks (steps 5 and 6). Unknown targets, runs, jobs
        // and alerts answer their own 404 type (`no-such-…`), which counts as allowed.
        r("GET", "/api/v1/targets", None, [A, D, D, D, D]),
        r(
            "POST",
            "/api/v1/targets/{target}/test",
            None,
            [A, D, D, D, D],
        ),
        r(
            "POST",
            "/api/v1/targets/{target}/account-check",
            None,
            [A, D, D, D, D],
        ),
        r("GET", "/api/v1/sync/plan", None, [A, D, D, D, D]),
        r(
            "POST",
            "/api/v1/sync/apply",
            Some(json!({})),
            [A, D, D, D, D],
        ),
        r("POST", "/api/v1/sync/reconcile", None, [A, D, D, D, D]),
        r("GET", "/api/v1/sync/jobs", None, [A, D, D, D, D]),
        r(
            "POST",
            "/api/v1/sync/jobs/{job_id}/retry",
            None,
            [A, D, D, D, D],
        ),
        r("GET", "/api/v1/provisioning/status", None, [A, D, D, D, D]),
        r("GET", "/api/v1/provisioning/alerts", None, [A, D, D, D, D]),
        r(
            "POST",
            "/api/v1/provisioning/alerts/{alert_id}/acknowledge",
            None,
            [A, D, D, D, D],
        ),
        r(
            "GET",
            "/api/v1/provisioning/runs/{run_id}",
            None,
            [A, D, D, D, D],
        ),
        r("POST", "/api/v1/leak-scan", None, [A, D, D, D, D]),
        r(
            "POST",
            "/api/v1/cases/{case_id}/account-check",
            None,
            [A, A, D, D, D],
        ),
        r(
            "GET",
            "/api/v1/cases/{case_id}/account-check/{run_id}",
            None,
            [A, A, D, D, D],
        ),
        r(
            "POST",
            "/api/v1/cases/{case_id}/leak-scan",
            None,
            [A, A, D, D, D],
        ),
        r(
            "GET",
            "/api/v1/cases/{case_id}/leak-scan/{run_id}",
            None,
            [A, A, D, D, D],
        ),
        // Made, then removed again.
        r(
            "PUT",
            "/api/v1/targets/{target}",
            Some(json!({"kind": "oneroster", "name": "authz-roster"})),
            [A, D, D, D, D],
        ),
        r("DELETE", "/api/v1/targets/{target}", None, [A, D, D, D, D]),
        // Last: it ends the fixture's case.
        r(
            "POST",
            "/api/v1/cases/{case_id}/end",
            Some(json!({"reason": "pupil-left"})),
            [D, A, D, D, D],
        ),
    ]
}

#[test]
fn the_table_covers_every_route_of_the_openapi_document() {
    let doc = serde_json::to_value(fiktiv_api::openapi()).unwrap();
    let mut routes = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                routes.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    let listed: BTreeSet<(String, String)> = table()
        .iter()
        .map(|r| (r.method.to_owned(), r.path.to_owned()))
        .collect();
    assert_eq!(listed.len(), table().len(), "a route is listed twice");
    assert_eq!(
        routes, listed,
        "the authorization table and the routes differ: add the new endpoint to table()"
    );
}

fn fill(s: &str, case: &str, order: &str, reveal: &str, request: &str) -> String {
    s.replace("{unit}", UNIT_A)
        .replace("{request_id}", request)
        .replace("{case_id}", case)
        .replace("{order_id}", order)
        .replace("{reveal_id}", reveal)
        .replace("{guardian_no}", "1")
        .replace("{old_id}", "1")
        .replace("{change_id}", NO_SUCH_ID)
        .replace("{intake_id}", NO_SUCH_ID)
        .replace("{target}", "authz-roster")
        .replace("{run_id}", NO_SUCH_ID)
        .replace("{job_id}", NO_SUCH_ID)
        .replace("{alert_id}", NO_SUCH_ID)
}

/// An id that names no run, job or alert.
const NO_SUCH_ID: &str = "00000000-0000-4000-8000-000000000000";

/// A case of unit A through registration, a pending reveal request by the school, and
/// unit B's request to take the case over.
async fn fixture(e: &Env) -> (String, String, String, String) {
    let case = e
        .ok(
            StatusCode::CREATED,
            "POST",
            &format!("/api/v1/units/{UNIT_A}/cases"),
            SCHOOL_A,
            Some(
                json!({"country": "se", "personal_number": se_number(date(2015, 5, 17), 123),
                        "first_name": "Riktig", "last_name": "Person", "birth_date": "2015-05-17"}),
            ),
        )
        .await["case_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let c = format!("/api/v1/cases/{case}");
    let plan = json!({"information_handling": "x", "platforms": ["google"],
        "guardian_contact_routes": [], "staff_to_inform": [], "free_text": ""});
    e.ok(
        StatusCode::OK,
        "PUT",
        &format!("{c}/plan"),
        SCHOOL_A,
        Some(plan),
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
    e.ok(
        StatusCode::OK,
        "PUT",
        &format!("{c}/fictitious-identity"),
        SCHOOL_A,
        Some(json!({"first_name": "Maja", "last_name": "Lindqvist", "birth_date": "2015-09-03"})),
    )
    .await;
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
    let reveal = e
        .ok(
            StatusCode::CREATED,
            "POST",
            "/api/v1/reveals",
            SCHOOL_A,
            Some(json!({"case_id": case, "purpose": "fixture"})),
        )
        .await["reveal_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let request = e
        .ok(
            StatusCode::CREATED,
            "POST",
            &format!("/api/v1/units/{UNIT_B}/case-requests"),
            SCHOOL_B,
            Some(
                json!({"country": "se", "personal_number": se_number(date(2015, 5, 17), 123),
                        "groups": ["7A"]}),
            ),
        )
        .await["request_id"]
        .as_str()
        .unwrap()
        .to_owned();
    (case, order, reveal, request)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_every_role_own_and_other_unit() {
    let e = env(
        fiktiv_tests::TestDatabase::sqlite().unwrap(),
        at(2026, 3, 2),
    )
    .await;
    let (case, order, reveal, request) = fixture(&e).await;
    let mut failures = Vec::new();
    for row in table() {
        let path = fill(row.path, &case, &order, &reveal, &request);
        let body = row.body.as_ref().map(|b| {
            serde_json::from_str::<Value>(&fill(&b.to_string(), &case, &order, &reveal, &request))
                .unwrap()
        });
        // Without a token: 401, always.
        let (s, _, _) = e
            .call_raw(
                row.method,
                &path,
                None,
                body.as_ref()
                    .map(|b| ("application/json", serde_json::to_vec(b).unwrap())),
            )
            .await;
        if s != StatusCode::UNAUTHORIZED {
            failures.push(format!("{} {} without a token: {s}", row.method, row.path));
        }
        // Denied callers first, so that an allowed mutation does not change what they see.
        let mut order_of_calls: Vec<usize> = (0..WHO.len()).collect();
        order_of_calls.sort_by_key(|&i| row.expect[i]);
        for i in order_of_calls {
            let who = WHO[i];
            let (s, v) = e.call(row.method, &path, who, body.clone()).await;
            let denied = s == StatusCode::FORBIDDEN
                || (s == StatusCode::NOT_FOUND && v["type"] == "urn:fiktiv:problem:not-found");
            if s == StatusCode::UNAUTHORIZED || s.is_server_error() {
                failures.push(format!("{} {} as {who}: {s} {v}", row.method, row.path));
            } else if denied == row.expect[i] {
                failures.push(format!(
                    "{} {} as {who}: expected {}, got {s} {v}",
                    row.method,
                    row.path,
                    if row.expect[i] { "allow" } else { "deny" }
                ));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
