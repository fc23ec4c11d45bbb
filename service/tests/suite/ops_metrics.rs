//! `/metrics` through the router: every metric family is there with the right values
//! after a scripted scenario (jobs done, pending and failed per target, a
//! reconciliation, a leak-scan finding, reviews coming due, a key rotation, requests),
//! route templates and never ids in the labels, and the access rules (token, client
//! addresses, off by default). SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use crate::support::api;
use crate::support::provisioning;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use api::*;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use chrono::TimeDelta;
use fiktiv_delivery::checks::{self, RunScope};
use fiktiv_delivery::worker;
use fiktiv_tests::TestDatabase;
use http_body_util::BodyExt;
use provisioning::*;
use serde_json::json;
use tower::ServiceExt;

const TOKEN: &str = "metrics-token-0123456789abcdefghijklmnop";

/// `name{labels} value` lines of the exposition, as (name, labels) → value.
fn parse(text: &str) -> BTreeMap<(String, BTreeMap<String, String>), f64> {
    let mut out = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').unwrap();
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        let mut map = BTreeMap::new();
        for pair in labels.split("\",").filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once("=\"").unwrap();
            map.insert(k.to_owned(), v.trim_end_matches('"').to_owned());
        }
        let v = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap(),
        };
        out.insert((name.to_owned(), map), v);
    }
    out
}

fn get(
    m: &BTreeMap<(String, BTreeMap<String, String>), f64>,
    name: &str,
    labels: &[(&str, &str)],
) -> f64 {
    let want: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    *m.get(&(name.to_owned(), want.clone()))
        .unwrap_or_else(|| panic!("no {name} {want:?}"))
}

async fn scrape(e: &Env, auth: Option<&str>, peer: Option<&str>) -> (StatusCode, String) {
    let mut req = Request::builder().method("GET").uri("/metrics");
    if let Some(t) = auth {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let mut req = req.body(Body::empty()).unwrap();
    if let Some(p) = peer {
        let addr = SocketAddr::new(p.parse().unwrap(), 40000);
        req.extensions_mut().insert(ConnectInfo(addr));
    }
    let resp = e.app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

fn toml(roster: &std::path::Path, metrics: &str) -> String {
    format!(
        r#"
[provisioning]
workers = 2
poll_interval_ms = 100
max_attempts = 1
backoff_base_secs = 1
job_timeout_secs = 10
reconcile_interval_secs = 0

[metrics]
{metrics}

[[targets]]
name = "roster"
kind = "oneroster"
dir = "{}"

[[targets]]
name = "lms"
kind = "scim"
base_url = "http://127.0.0.1:9/scim/v2"
token = "unused-token"
timeout_secs = 2
max_retries = 0
"#,
        roster.display()
    )
}

async fn metrics_after_a_scenario(db: TestDatabase) {
    let dir = tempfile::tempdir().unwrap();
    let roster = dir.path().join("roster");
    let p = penv(
        db,
        at(2026, 3, 2),
        &toml(&roster, &format!("token = \"{TOKEN}\"")),
    )
    .await;
    let e = &p.e;

    // Two pupils provisioned: the roster takes them, the SCIM service is down (jobs
    // fail after one attempt, with an alert each).
    let a = Real::new("Metrik", "Ettan", "2015-05-17", 51);
    let case_a = pupil(e, &a, ("Maja", "Lindqvist", "2015-09-03"), None).await;
    pupil(
        e,
        &Real::new("Metrik", "Tvaan", "2015-04-01", 52),
        ("Otto", "Berg", "2015-02-03"),
        None,
    )
    .await;
    p.work().await;
    // A third pupil registered, its jobs not yet run.
    pupil(
        e,
        &Real::new("Metrik", "Trean", "2015-06-01", 53),
        ("Ida", "Holm", "2015-03-03"),
        None,
    )
    .await;
    worker::cycle(&p.ctx.delivery, false).await.unwrap();

    // A reconciliation (reads the roster; the SCIM service cannot be read), then a real
    // pupil planted in the roster folder and found by the leak scan.
    let rec = checks::start(&p.ctx.delivery, "test", RunScope::Reconcile, false)
        .await
        .unwrap();
    assert_eq!(rec.state, "done");
    std::fs::write(
        roster.join("handmade.csv"),
        format!("name,note\nx,{}\n", a.number),
    )
    .unwrap();
    let scan = checks::start(&p.ctx.delivery, "test", RunScope::LeakScanAll, false)
        .await
        .unwrap();
    assert_eq!(scan.progress.findings, 1, "{:?}", scan.result);
    e.clock.advance(TimeDelta::seconds(90));

    // Requests to count: three reads of one case, one unknown path.
    for _ in 0..3 {
        e.ok(
            StatusCode::OK,
            "GET",
            &format!("/api/v1/cases/{case_a}"),
            SCHOOL_A,
            None,
        )
        .await;
    }
    let (s, _) = e.call("GET", "/api/v1/no-such-thing", CENTRAL, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let (status, text) = scrape(e, Some(TOKEN), None).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(!text.contains(&case_a), "a case id in the metrics");
    let m = parse(&text);

    // Jobs per target and state.
    let jobs = |t: &str, s: &str| {
        get(
            &m,
            "fiktiv_provisioning_jobs",
            &[("target", t), ("state", s)],
        )
    };
    assert_eq!(jobs("roster", "done"), 2.0);
    assert_eq!(jobs("roster", "pending"), 1.0);
    assert_eq!(jobs("roster", "failed"), 0.0);
    assert_eq!(jobs("lms", "failed"), 2.0);
    assert_eq!(jobs("lms", "pending"), 1.0);
    assert_eq!(jobs("lms", "done"), 0.0);
    assert_eq!(jobs("lms", "running"), 0.0);

    // Reconciliation age per target: 90 s for the roster, never for the SCIM service.
    let age = |t: &str| {
        get(
            &m,
            "fiktiv_reconcile_last_success_age_seconds",
            &[("target", t)],
        )
    };
    assert_eq!(age("roster"), 90.0);
    assert_eq!(age("lms"), f64::INFINITY);
    let at_roster = get(
        &m,
        "fiktiv_reconcile_last_success_timestamp_seconds",
        &[("target", "roster")],
    );
    assert_eq!(at_roster, at(2026, 3, 2).timestamp() as f64);

    // Leak-scan findings and other open alerts.
    let alerts = |k: &str| get(&m, "fiktiv_alerts_open", &[("kind", k)]);
    assert_eq!(alerts("leak-found"), 1.0);
    assert_eq!(alerts("job-failed"), 2.0);
    assert_eq!(alerts("egress-blocked"), 0.0);
    assert_eq!(get(&m, "fiktiv_leak_scan_last_findings", &[]), 1.0);
    assert_eq!(get(&m, "fiktiv_leak_scan_last_age_seconds", &[]), 90.0);

    // No review is due in March.
    assert_eq!(get(&m, "fiktiv_reviews", &[("status", "due-soon")]), 0.0);
    assert_eq!(get(&m, "fiktiv_reviews", &[("status", "overdue")]), 0.0);

    // Keys: what vault.key_versions() says.
    let versions = e.vault.key_versions().await.unwrap();
    assert!(!versions.is_empty());
    for k in &versions {
        let l = [
            ("version", k.version.to_string()),
            ("state", k.state.clone()),
        ];
        let l: Vec<(&str, &str)> = l.iter().map(|(a, b)| (*a, b.as_str())).collect();
        assert_eq!(get(&m, "fiktiv_key_encryptions", &l), k.encryptions as f64);
        assert_eq!(get(&m, "fiktiv_key_data_keys", &l), k.data_keys as f64);
    }
    assert!(versions.iter().any(|k| k.encryptions > 0));

    // The audit trail's length.
    use sqlx::Row;
    let seq: i64 = sqlx::query("SELECT seq FROM audit_head WHERE id = 1")
        .fetch_one(e.vault.db().pool())
        .await
        .unwrap()
        .get("seq");
    assert_eq!(get(&m, "fiktiv_audit_events", &[]), seq as f64);

    // Request latency by route template, method and status class.
    let hist = |route: &str, method: &str, status: &str, series: &str| {
        get(
            &m,
            &format!("fiktiv_http_request_duration_seconds_{series}"),
            &[("route", route), ("method", method), ("status", status)],
        )
    };
    assert_eq!(hist("/api/v1/cases/{case_id}", "GET", "2xx", "count"), 3.0);
    assert_eq!(hist("unmatched", "GET", "4xx", "count"), 1.0);
    assert!(hist("/api/v1/cases/{case_id}", "GET", "2xx", "sum") > 0.0);
    let inf = get(
        &m,
        "fiktiv_http_request_duration_seconds_bucket",
        &[
            ("route", "/api/v1/cases/{case_id}"),
            ("method", "GET"),
            ("status", "2xx"),
            ("le", "+Inf"),
        ],
    );
    assert_eq!(inf, 3.0);
    assert!(text.contains("# TYPE fiktiv_http_request_duration_seconds histogram"));
    assert_eq!(
        get(
            &m,
            "fiktiv_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );

    // Later in the year: the reviews come due, then overdue; a rotation adds a version.
    e.clock.set(at(2026, 7, 25));
    let m = parse(&scrape(e, Some(TOKEN), None).await.1);
    assert_eq!(get(&m, "fiktiv_reviews", &[("status", "due-soon")]), 3.0);
    assert_eq!(get(&m, "fiktiv_reviews", &[("status", "overdue")]), 0.0);
    let listed = e
        .ok(StatusCode::OK, "GET", "/api/v1/reviews", CENTRAL, None)
        .await;
    assert_eq!(listed.as_array().unwrap().len(), 3, "{listed}");
    e.clock.set(at(2026, 8, 20));
    e.vault.rotate("test").await.unwrap();
    let m = parse(&scrape(e, Some(TOKEN), None).await.1);
    assert_eq!(get(&m, "fiktiv_reviews", &[("status", "overdue")]), 3.0);
    assert_eq!(get(&m, "fiktiv_reviews", &[("status", "due-soon")]), 0.0);
    for k in e.vault.key_versions().await.unwrap() {
        let v = k.version.to_string();
        assert_eq!(
            get(
                &m,
                "fiktiv_key_data_keys",
                &[("version", v.as_str()), ("state", k.state.as_str())]
            ),
            k.data_keys as f64
        );
    }
    assert_eq!(
        get(
            &m,
            "fiktiv_reconcile_last_success_age_seconds",
            &[("target", "roster")]
        ),
        (at(2026, 8, 20) - at(2026, 3, 2)).num_seconds() as f64
    );

    // Access: a missing or wrong token is refused.
    assert_eq!(scrape(e, None, None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        scrape(e, Some("metrics-token-0123456789abcdefghijklmnoX"), None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        scrape(e, Some(TOKEN), Some("192.0.2.7")).await.0,
        StatusCode::OK
    );
    // Only the metrics token: an API token does not open /metrics.
    assert_eq!(
        scrape(e, Some(&e.tokens[CENTRAL]), None).await.0,
        StatusCode::UNAUTHORIZED
    );
    let _ = json!({});
}

both_backends!(metrics_after_a_scenario);

async fn env_metrics(metrics: &str) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let cfg =
        fiktiv_app::config::Config::parse(&toml(&dir.path().join("r"), metrics), "t").unwrap();
    env_with(TestDatabase::sqlite().unwrap(), at(2026, 3, 2), cfg).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_access_by_address_and_off_by_default() {
    // Neither token nor addresses: /metrics does not exist.
    let e = env_metrics("").await;
    assert_eq!(
        scrape(&e, None, Some("127.0.0.1")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(scrape(&e, Some(TOKEN), None).await.0, StatusCode::NOT_FOUND);

    // Addresses only.
    let e = env_metrics("allow_from = [\"127.0.0.1\", \"10.1.2.0/24\", \"::1\"]").await;
    assert_eq!(scrape(&e, None, Some("127.0.0.1")).await.0, StatusCode::OK);
    assert_eq!(scrape(&e, None, Some("10.1.2.200")).await.0, StatusCode::OK);
    assert_eq!(scrape(&e, None, Some("::1")).await.0, StatusCode::OK);
    assert_eq!(
        scrape(&e, None, Some("10.1.3.1")).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(scrape(&e, None, None).await.0, StatusCode::FORBIDDEN);
    assert_eq!(
        scrape(&e, Some(TOKEN), Some("10.1.3.1")).await.0,
        StatusCode::FORBIDDEN
    );

    // Each configuration problem is one line.
    for (bad, want) in [
        ("token = \"short\"", "at least 32 characters"),
        (
            "allow_from = [\"10.0.0.0/33\"]",
            "not an IP address or CIDR block",
        ),
        (
            "allow_from = [\"example.org\"]",
            "not an IP address or CIDR block",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let cfg =
            fiktiv_app::config::Config::parse(&toml(&dir.path().join("r"), bad), "t").unwrap();
        let err = fiktiv_app::context::load_policies(&cfg)
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{err}");
        assert!(err.starts_with("[metrics]"), "{err}");
        assert!(!err.contains('\n'), "{err}");
        assert!(!err.contains("short\""), "the token is echoed: {err}");
    }
}
