//! Limits: bad bearer tokens per client address, reveal requests per person, the
//! request timeout, the bounded provisioning worker pool and the cap on concurrent
//! checks. (Sign-in limits and lockout are in `web_signin.rs` / `web_accounts.rs`.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use crate::support::api;
use crate::support::provisioning;

use std::net::SocketAddr;
use std::time::Duration;

use api::*;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use chrono::TimeDelta;
use fiktiv_app::config::Config;
use fiktiv_tests::{Fault, FaultProxy, TestDatabase};
use http_body_util::BodyExt;
use provisioning::*;
use serde_json::{json, Value};
use tower::ServiceExt;

/// A request from `addr` (as `fiktiv serve` sees it) with `token`.
async fn from(e: &Env, addr: &str, token: &str) -> (StatusCode, Value, Option<String>) {
    let mut req = Request::get("/api/v1/cases")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let addr: SocketAddr = format!("{addr}:40000").parse().unwrap();
    req.extensions_mut().insert(ConnectInfo(addr));
    let resp = e.app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&body).unwrap_or(Value::Null),
        retry,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_are_limited_per_client_address() {
    let config = Config::parse(
        "[limits]\nfailed_tokens_per_address = 5\nfailed_token_window_secs = 90\n",
        "t",
    )
    .unwrap();
    let e = env_with(TestDatabase::sqlite().unwrap(), at(2026, 3, 2), config).await;
    let good = e.tokens[CENTRAL].clone();
    let before = e.snapshot().await;
    for i in 0..5 {
        let (s, _, _) = from(&e, "10.0.0.1", &format!("fkt_guess{i}")).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    // Over the limit: refused without looking at the token, even a good one.
    let (s, v, retry) = from(&e, "10.0.0.1", "fkt_guess5").await;
    assert_eq!(
        (s, v["type"].as_str()),
        (
            StatusCode::TOO_MANY_REQUESTS,
            Some("urn:fiktiv:problem:rate-limited")
        )
    );
    // The client is told the window's length, as configured.
    assert_eq!(retry.as_deref(), Some("90"));
    let (s, _, _) = from(&e, "10.0.0.1", &good).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    // Another address is not affected; good tokens never count.
    for _ in 0..10 {
        let (s, _, _) = from(&e, "10.0.0.2", &good).await;
        assert_eq!(s, StatusCode::OK);
    }
    // The window passes.
    e.clock.advance(TimeDelta::seconds(91));
    let (s, _, _) = from(&e, "10.0.0.1", &good).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(e.snapshot().await, before, "nothing stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reveal_requests_are_limited_per_person() {
    let config = Config::parse(
        "[limits]\nreveal_requests_per_person = 3\nreveal_request_window_secs = 3600\n",
        "t",
    )
    .unwrap();
    let e = env_with(TestDatabase::sqlite().unwrap(), at(2026, 3, 2), config).await;
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
    let ask = json!({"case_id": case, "purpose": "Guardian request"});
    for _ in 0..3 {
        e.ok(
            StatusCode::CREATED,
            "POST",
            "/api/v1/reveals",
            SCHOOL_A,
            Some(ask.clone()),
        )
        .await;
    }
    let before = e.snapshot().await;
    let (s, v) = e
        .call("POST", "/api/v1/reveals", SCHOOL_A, Some(ask.clone()))
        .await;
    assert_eq!(
        (s, v["type"].as_str()),
        (
            StatusCode::TOO_MANY_REQUESTS,
            Some("urn:fiktiv:problem:rate-limited")
        )
    );
    // The same person with another token is the same person.
    let (s, _) = e
        .call("POST", "/api/v1/reveals", SCHOOL_A, Some(ask.clone()))
        .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    // The limit is the domain's, counted from the stored requests: the web UI's way in
    // (the same domain function) is refused too, and a restart would not reset it.
    let requested_by: String =
        sqlx::query_scalar("SELECT requested_by FROM reveal_requests LIMIT 1")
            .fetch_one(e.vault.db().pool())
            .await
            .unwrap();
    let principal = fiktiv_policies::Principal::new(
        requested_by,
        vec![fiktiv_policies::Role::School],
        vec![UNIT_A.to_string()],
    );
    let permit = e
        .ctx
        .authz
        .authorize(
            &principal,
            fiktiv_policies::Action::RevealRequest,
            &fiktiv_policies::Resource::Case {
                unit: UNIT_A.to_string(),
            },
        )
        .unwrap();
    let input: fiktiv_routine::reveal::RevealRequestInput =
        serde_json::from_value(ask.clone()).unwrap();
    let target = fiktiv_routine::reveal::resolve(&e.vault, &input)
        .await
        .unwrap();
    let refused = fiktiv_routine::reveal::request(
        &e.vault,
        &permit,
        &target,
        "Guardian request",
        e.ctx.reveal_limit(),
    )
    .await;
    assert!(
        matches!(
            refused,
            Err(fiktiv_routine::DomainError::Busy {
                code: "rate-limited",
                ..
            })
        ),
        "{refused:?}"
    );
    assert_eq!(
        e.snapshot().await,
        before,
        "a refused request stores nothing"
    );
    // Another person may still ask; after the window, so may the first.
    e.ok(
        StatusCode::CREATED,
        "POST",
        "/api/v1/reveals",
        APPROVER,
        Some(ask.clone()),
    )
    .await;
    e.clock.advance(TimeDelta::hours(1));
    e.ok(
        StatusCode::CREATED,
        "POST",
        "/api/v1/reveals",
        SCHOOL_A,
        Some(ask),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_request_times_out_with_a_problem() {
    let peers = Peers::start();
    let scim = FaultProxy::for_scim(&peers.scim).unwrap();
    let toml = format!(
        "{}\n[server]\nrequest_timeout_secs = 1\n",
        targets_toml(
            &peers,
            &peers.slapd.url(),
            &format!("{}/v2", scim.url_for("http")),
            ""
        )
    );
    let p = penv(TestDatabase::sqlite().unwrap(), at(2026, 3, 2), &toml).await;
    // The plan reads every target inside the request; SCIM holds its answers until
    // cleared, so only the request timeout (1 s) can end it.
    scim.set(Fault::Delay(fiktiv_tests::MAX_DELAY)).unwrap();
    let before = p.e.snapshot().await;
    let started = std::time::Instant::now();
    let (s, v) = p.e.call("GET", "/api/v1/sync/plan", CENTRAL, None).await;
    assert_eq!(
        (s, v["type"].as_str()),
        (
            StatusCode::REQUEST_TIMEOUT,
            Some("urn:fiktiv:problem:timeout")
        ),
        "{v}"
    );
    assert!(
        started.elapsed() < fiktiv_tests::MAX_DELAY / 2,
        "answered at the timeout, not when SCIM answered"
    );
    assert!(scim.stats().faults_injected >= 1);
    assert_eq!(p.e.snapshot().await, before);
    scim.clear().unwrap();
    p.e.ok(StatusCode::OK, "GET", "/api/v1/sync/plan", CENTRAL, None)
        .await;
}

/// Every run's kind, state and error (for the message of a failed assertion).
async fn runs(e: &Env) -> Vec<(String, String, Option<String>)> {
    use sqlx::Row;
    sqlx::query("SELECT kind, state, error FROM prov_runs ORDER BY started_at")
        .fetch_all(e.vault.db().pool())
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get("kind"), r.get("state"), r.get("error")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_pool_is_bounded_and_checks_are_capped() {
    // The job pool is `workers` tasks, 1 to 16.
    for bad in ["0", "17"] {
        let config = Config::parse(&format!("[provisioning]\nworkers = {bad}\n"), "t").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let db = TestDatabase::sqlite().unwrap();
        let vault = fiktiv_vault::Vault::new(
            fiktiv_vault::Db::connect(db.url()).await.unwrap(),
            fiktiv_vault::KeyRing::new(fiktiv_vault::RootKey::generate()).unwrap(),
            std::sync::Arc::new(fiktiv_vault::ManualClock::new(at(2026, 3, 2))),
        );
        let err = fiktiv_app::context::Context::with_vault(vault, config, dir.path())
            .err()
            .unwrap_or_else(|| panic!("workers = {bad} was accepted"));
        assert!(format!("{err:#}").contains("workers"), "{err:#}");
    }

    // Checks: at most `concurrent_runs` at once, across the API. SCIM's client waits
    // (110 s) longer than any test step takes, so a run held by the proxy stays running
    // until the proxy lets it go, however loaded the machine.
    let peers = Peers::start();
    let scim = FaultProxy::for_scim(&peers.scim).unwrap();
    let toml = format!(
        "{}\n[limits]\nconcurrent_runs = 2\n",
        targets_toml(
            &peers,
            &peers.slapd.url(),
            &format!("{}/v2", scim.url_for("http")),
            ""
        )
        .replace(
            "timeout_secs = 10\nmax_retry_after_secs",
            "timeout_secs = 110\nmax_retry_after_secs"
        )
    );
    assert!(toml.contains("timeout_secs = 110"));
    let p = penv(TestDatabase::sqlite().unwrap(), at(2026, 3, 2), &toml).await;
    // SCIM holds its answers until cleared: the scans stay running while the next ones
    // are asked for, however slow the machine.
    scim.set(Fault::Delay(fiktiv_tests::MAX_DELAY)).unwrap();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let r =
            p.e.ok(
                StatusCode::ACCEPTED,
                "POST",
                "/api/v1/leak-scan",
                CENTRAL,
                None,
            )
            .await;
        ids.push(r["run_id"].as_str().unwrap().to_owned());
    }
    let before = p.e.count("prov_runs").await;
    let (s, v) = p.e.call("POST", "/api/v1/leak-scan", CENTRAL, None).await;
    assert_eq!(
        (s, v["type"].as_str()),
        (
            StatusCode::TOO_MANY_REQUESTS,
            Some("urn:fiktiv:problem:runs-busy")
        ),
        "{v}"
    );
    let (s, _) =
        p.e.call("POST", "/api/v1/targets/ldap/account-check", CENTRAL, None)
            .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    // The limit is the domain's: the web UI and the CLI start checks through the same
    // function, and are refused alike.
    let refused = fiktiv_delivery::checks::start(
        &p.ctx.delivery,
        "staff:central",
        fiktiv_delivery::checks::RunScope::LeakScanAll,
        true,
    )
    .await;
    assert!(
        matches!(
            refused,
            Err(fiktiv_routine::DomainError::Busy {
                code: "runs-busy",
                ..
            })
        ),
        "{refused:?}"
    );
    assert_eq!(p.e.count("prov_runs").await, before, "no run was started");
    // When they finish, there is room again.
    scim.clear().unwrap();
    for id in &ids {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let v =
                p.e.ok(
                    StatusCode::OK,
                    "GET",
                    &format!("/api/v1/provisioning/runs/{id}"),
                    CENTRAL,
                    None,
                )
                .await;
            if v["state"] != "running" {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "run {id} did not end");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // Held again: one run takes one of the two places; then three requests at once
    // race for the last place, and exactly one gets it (the count and the claim are
    // one serialized transaction).
    scim.set(Fault::Delay(fiktiv_tests::MAX_DELAY)).unwrap();
    p.e.ok(
        StatusCode::ACCEPTED,
        "POST",
        "/api/v1/leak-scan",
        CENTRAL,
        None,
    )
    .await;
    let before = p.e.count("prov_runs").await;
    let runs_before = runs(&p.e).await;
    let (a, b, c) = tokio::join!(
        p.e.call("POST", "/api/v1/leak-scan", CENTRAL, None),
        p.e.call("POST", "/api/v1/targets/ldap/account-check", CENTRAL, None),
        fiktiv_delivery::checks::start(
            &p.ctx.delivery,
            "staff:central",
            fiktiv_delivery::checks::RunScope::LeakScanAll,
            true,
        ),
    );
    let started = [a.0, b.0]
        .iter()
        .filter(|s| **s == StatusCode::ACCEPTED)
        .count()
        + usize::from(c.is_ok());
    assert_eq!(
        started,
        1,
        "exactly one of three at once: {a:?} {b:?} {c:?}; runs before: {runs_before:?}; \
         now: {:?}",
        runs(&p.e).await
    );
    assert_eq!(p.e.count("prov_runs").await, before + 1);
    scim.clear().unwrap();
}
