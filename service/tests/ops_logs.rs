//! The log never holds personal data. The whole log of a routine run through the API
//! (a Swedish and a Norwegian pupil: case, real identity read back, plan, decision,
//! fictitious identity, order, registration, provisioning to the embedded roster,
//! account check, leak scan) is captured at TRACE level, in the JSON format that
//! `fiktiv serve` writes, and searched for the real names and numbers in every written
//! form (NFC and NFD, any case). It also shows the request span (method, route
//! template, request id, status, latency) and the request id in the response.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

#[macro_use]
mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use fiktiv_app::config::{LogConfig, LogFormat};
use fiktiv_tests::TestDatabase;
use serde_json::{json, Value};
use support::api::*;
use support::provisioning::*;
use tower::ServiceExt;
use unicode_normalization::UnicodeNormalization;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const SE_FIRST: &str = "Åsa-Britt";
const SE_LAST: &str = "Öbergström";
const NO_FIRST: &str = "Bjørnhild";
const NO_LAST: &str = "Ødegårdsæter";

/// Every written form of the real values.
fn forbidden(se: &str, no: &str) -> Vec<String> {
    let mut v = vec![
        se.to_owned(),                         // YYYYMMDDNNNC
        se[2..].to_owned(),                    // YYMMDDNNNC
        format!("{}-{}", &se[2..8], &se[8..]), // YYMMDD-NNNC
        format!("{}+{}", &se[2..8], &se[8..]), // YYMMDD+NNNC
        format!("{}-{}", &se[..8], &se[8..]),  // YYYYMMDD-NNNC
        no.to_owned(),                         // DDMMYYIIICC
        format!("{} {}", &no[..6], &no[6..]),  // DDMMYY IIICC
        format!("{}-{}", &no[..6], &no[6..]),
    ];
    for name in [SE_FIRST, SE_LAST, NO_FIRST, NO_LAST] {
        for form in [
            name.nfc().collect::<String>(),
            name.nfd().collect::<String>(),
        ] {
            v.push(form.to_lowercase());
            // JSON escapes non-ASCII only if asked; both raw and \u-escaped forms.
            v.push(
                serde_json::to_string(&form)
                    .unwrap()
                    .trim_matches('"')
                    .to_lowercase(),
            );
            v.push(
                form.chars()
                    .map(|c| {
                        if c.is_ascii() {
                            c.to_string()
                        } else {
                            format!("\\u{:04x}", c as u32)
                        }
                    })
                    .collect::<String>()
                    .to_lowercase(),
            );
        }
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_routine_run_logs_no_personal_data() {
    let capture = Capture::default();
    let sink = capture.clone();
    let cfg = LogConfig {
        format: LogFormat::Json,
        level: "trace".into(),
    };
    assert!(fiktiv::telemetry::init_with_writer(&cfg, move || sink.clone()));

    let p = penv(TestDatabase::sqlite().unwrap(), at(2026, 3, 2), "").await;
    let e = &p.e;
    let se = Real {
        first: SE_FIRST,
        last: SE_LAST,
        birth: "2015-05-17",
        number: se_number(date(2015, 5, 17), 61),
    };
    let no_birth = date(2014, 11, 23);
    let no = no_number(no_birth);

    // Swedish pupil, with a linked guardian.
    let case_se = open_case(e, &se).await;
    let o = order(
        e,
        &case_se,
        ("Maja", "Lindqvist", "2015-09-03"),
        Some(guardian("Förälder", SE_LAST, 457, ("Karin", "Berglund"))),
        &["google"],
    )
    .await;
    register(e, &o).await;

    // Norwegian pupil.
    let v = e
        .ok(
            StatusCode::CREATED,
            "POST",
            &format!("/api/v1/units/{UNIT_A}/cases"),
            SCHOOL_A,
            Some(
                json!({"country": "no", "personal_number": no, "first_name": NO_FIRST,
                        "last_name": NO_LAST, "birth_date": "2014-11-23"}),
            ),
        )
        .await;
    let case_no = v["case_id"].as_str().unwrap().to_owned();
    let o = order(
        e,
        &case_no,
        ("Ola", "Nordmann", "2014-02-02"),
        None,
        &["google"],
    )
    .await;
    register(e, &o).await;

    // The school reads the real identity back (audited); the answer holds it, the log
    // must not.
    for c in [&case_se, &case_no] {
        let id = e
            .ok(
                StatusCode::OK,
                "GET",
                &format!("/api/v1/cases/{c}/identity"),
                SCHOOL_A,
                None,
            )
            .await;
        assert!(id.to_string().contains("first_name"), "{id}");
    }
    // Provisioning, an account check and a leak scan.
    p.work().await;
    p.run(
        SCHOOL_A,
        &format!("/api/v1/cases/{case_se}/account-check"),
        &format!("/api/v1/cases/{case_se}/account-check"),
    )
    .await;
    p.run(CENTRAL, "/api/v1/leak-scan", "/api/v1/provisioning/runs")
        .await;

    // A refused request with a real number in the body (wrong unit): still nothing.
    let (s, _) = e
        .call(
            "POST",
            &format!("/api/v1/units/{UNIT_B}/cases"),
            SCHOOL_A,
            Some(
                json!({"country": "se", "personal_number": se.number, "first_name": SE_FIRST,
                        "last_name": SE_LAST, "birth_date": se.birth}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // The request id: kept when harmless, replaced when it holds a personal number,
    // and returned either way.
    let send = |id: Option<String>| {
        let mut req = Request::builder().uri("/healthz");
        if let Some(id) = id {
            req = req.header("x-request-id", id);
        }
        e.app.clone().oneshot(req.body(Body::empty()).unwrap())
    };
    let r = send(Some("trace-abc-123".into())).await.unwrap();
    assert_eq!(r.headers()["x-request-id"], "trace-abc-123");
    let r = send(Some(format!("x-{}", se.number))).await.unwrap();
    let given = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(!given.contains(&se.number[2..]));
    assert!(uuid::Uuid::parse_str(&given).is_ok(), "{given}");
    let r = send(None).await.unwrap();
    assert!(uuid::Uuid::parse_str(r.headers()["x-request-id"].to_str().unwrap()).is_ok());

    let log = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(
        log.lines().count() > 100,
        "too little was logged to mean anything"
    );
    let lower = log.to_lowercase();
    let lower_nfd: String = lower.nfd().collect();
    for f in forbidden(&se.number, &no) {
        assert!(
            !lower.contains(&f) && !lower_nfd.contains(&f),
            "the log holds a real value ({} chars)",
            f.len()
        );
    }
    // Every line is JSON; the requests are spans with route templates, ids and status.
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let finished: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"] == "request finished")
        .collect();
    let opened = finished
        .iter()
        .find(|l| l["span"]["route"] == "/api/v1/units/{unit}/cases" && l["span"]["status"] == 201)
        .expect("a request span for opening a case");
    assert_eq!(opened["span"]["method"], "POST");
    assert!(opened["span"]["latency_ms"].as_f64().is_some(), "{opened}");
    assert!(uuid::Uuid::parse_str(opened["span"]["request_id"].as_str().unwrap()).is_ok());
    assert!(finished
        .iter()
        .any(|l| l["span"]["route"] == "/api/v1/cases/{case_id}/identity"));
    assert!(finished
        .iter()
        .any(|l| l["span"]["request_id"] == "trace-abc-123"));
    for l in &finished {
        let route = l["span"]["route"].as_str().unwrap();
        assert!(
            !route.contains(&case_se) && !route.contains(&case_no),
            "a path with ids: {route}"
        );
    }
}
