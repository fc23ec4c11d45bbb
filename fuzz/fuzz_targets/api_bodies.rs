//! Fuzzes every JSON request body of the API through the real router
//! (`fiktiv::router::app`), over a SQLite database in a temporary directory (on /dev/shm
//! when there is one), with a valid bearer token for each route.
//!
//! Input: byte 0 picks the route (low 7 bits) and the content type (high bit: `text/plain`
//! instead of `application/json`); the rest is the body. In the body, `$CASE`, `$FNUM`
//! and `$TODAY` stand for the case id, the pupil's fictitious number and the clock's date,
//! so the fuzzer gets past "not found" and into the domain's validation.
//!
//! Each route is called on a case in the state the routine needs for it (opened; login
//! decision made; fictitious identity accepted; order sent; registered; reveal
//! requested). A case is reused until a request reaches the domain (anything but a body
//! rejected by the JSON extractor), then a fresh one is made, so each input meets the
//! same state.
//!
//! Checks: never a 5xx (a 5xx on malformed input is a bug); every 4xx is
//! `application/problem+json`; no response shows the real names of the setup cases.
#![no_main]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // fuzz harness: a panic is the finding

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::{Duration, NaiveDate, TimeZone, Utc};
use fiktiv_app::config::Config;
use fiktiv_app::context::Context;
use fiktiv_policies::Role;
use fiktiv_vault::{Db, KeyRing, ManualClock, RootKey, Vault};
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};
use tower::ServiceExt;

const REAL_FIRST: &str = "Kanariefågel";
const REAL_LAST: &str = "Zyxwvutsson";
const TODAY: &str = "2026-03-01";

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
enum Stage {
    None,
    Opened,
    Decided,
    Fictitious,
    Ordered,
    Registered,
    RevealPending,
}

#[derive(Clone, Default)]
struct Handle {
    case: String,
    order: String,
    fnum: String,
    reveal: String,
}

struct Route {
    method: &'static str,
    /// `{case}`, `{order}`, `{reveal}` are filled in.
    path: &'static str,
    who: &'static str,
    stage: Stage,
}

const fn r(method: &'static str, path: &'static str, who: &'static str, stage: Stage) -> Route {
    Route {
        method,
        path,
        who,
        stage,
    }
}

/// Every route that takes a JSON body (see `ApiJson` in api/src/**).
const ROUTES: &[Route] = &[
    r("POST", "/api/v1/units/unit-a/cases", "school", Stage::None),
    r("PUT", "/api/v1/cases/{case}/plan", "school", Stage::Opened),
    r(
        "PUT",
        "/api/v1/cases/{case}/login-decision",
        "school",
        Stage::Opened,
    ),
    r(
        "PUT",
        "/api/v1/cases/{case}/fictitious-identity",
        "school",
        Stage::Decided,
    ),
    r(
        "PUT",
        "/api/v1/cases/{case}/guardians/1",
        "school",
        Stage::Fictitious,
    ),
    r(
        "POST",
        "/api/v1/cases/{case}/order",
        "school",
        Stage::Fictitious,
    ),
    r(
        "POST",
        "/api/v1/cases/{case}/staff-told",
        "school",
        Stage::Registered,
    ),
    r("POST", "/api/v1/cases/{case}/end", "school", Stage::Opened),
    r(
        "POST",
        "/api/v1/cases/{case}/end",
        "school",
        Stage::Registered,
    ),
    r(
        "POST",
        "/api/v1/cases/{case}/reviews",
        "school",
        Stage::Registered,
    ),
    r("POST", "/api/v1/reveals", "school", Stage::Registered),
    r(
        "POST",
        "/api/v1/reveals/{reveal}/decision",
        "approver",
        Stage::RevealPending,
    ),
    r(
        "POST",
        "/api/v1/orders/{order}/registration",
        "central",
        Stage::Ordered,
    ),
    r("PUT", "/api/v1/targets/fuzz-target", "central", Stage::None),
    r("POST", "/api/v1/sync/apply", "central", Stage::None),
    r(
        "PUT",
        "/api/v1/cases/{case}/guardians/2",
        "school",
        Stage::Decided,
    ),
    r(
        "PUT",
        "/api/v1/cases/{case}/plan",
        "school",
        Stage::Registered,
    ),
];

struct Env {
    rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
    app: axum::Router,
    tokens: HashMap<&'static str, String>,
    next: Mutex<u32>,
    cache: Mutex<HashMap<Stage, Handle>>,
}

fn env() -> &'static Env {
    static E: OnceLock<Env> = OnceLock::new();
    E.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let shm = std::path::Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            tempfile::tempdir_in(shm).unwrap()
        } else {
            tempfile::tempdir().unwrap()
        };
        let (app, tokens) = rt.block_on(async {
            let url = format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("fiktiv.db").display()
            );
            let conn = Db::connect(&url).await.unwrap();
            let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap());
            let vault = Vault::new(
                conn,
                KeyRing::new(RootKey::generate()).unwrap(),
                Arc::new(clock),
            );
            let ctx = Context::with_vault(vault.clone(), Config::default(), dir.path()).unwrap();
            let mut tokens = HashMap::new();
            for (who, roles, units) in [
                ("central", vec![Role::CentralAdmin], vec![]),
                ("school", vec![Role::School], vec!["unit-a".to_string()]),
                ("approver", vec![Role::Approver], vec![]),
            ] {
                let t = fiktiv_staff::tokens::create(&vault, "fuzz", who, &roles, &units, 3650)
                    .await
                    .unwrap();
                tokens.insert(who, t.secret.to_string());
            }
            (fiktiv::router::app(ctx), tokens)
        });
        Env {
            rt,
            _dir: dir,
            app,
            tokens,
            next: Mutex::new(0),
            cache: Mutex::new(HashMap::new()),
        }
    })
}

struct Reply {
    status: StatusCode,
    content_type: String,
    body: Vec<u8>,
}

impl Env {
    fn call(&self, method: &str, path: &str, who: &str, ct: &str, body: Vec<u8>) -> Reply {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {}", self.tokens[who]))
            .header("content-type", ct)
            .body(Body::from(body))
            .unwrap();
        self.rt.block_on(async {
            let resp = self.app.clone().oneshot(req).await.unwrap();
            let status = resp.status();
            let content_type = resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let body = resp
                .into_body()
                .collect()
                .await
                .unwrap()
                .to_bytes()
                .to_vec();
            Reply {
                status,
                content_type,
                body,
            }
        })
    }

    /// A setup step that must succeed; returns its JSON answer.
    fn step(&self, method: &str, path: &str, who: &str, body: Value) -> Result<Value, StatusCode> {
        let r = self.call(
            method,
            path,
            who,
            "application/json",
            body.to_string().into_bytes(),
        );
        if !r.status.is_success() {
            return Err(r.status);
        }
        Ok(serde_json::from_slice(&r.body).unwrap_or(Value::Null))
    }

    fn setup(&self, stage: Stage) -> Handle {
        let mut h = Handle::default();
        if stage == Stage::None {
            return h;
        }
        // A fresh real identity each time: the vault refuses a duplicate.
        let (birth, case) = loop {
            let n = {
                let mut next = self.next.lock().unwrap();
                *next += 1;
                *next
            };
            let birth =
                NaiveDate::from_ymd_opt(2015, 1, 1).unwrap() + Duration::days(i64::from(n % 360));
            let number = fiktiv_vault::ids::make_se_number(birth, (n / 360 % 1000) as u16).unwrap();
            let opened = self.step(
                "POST",
                "/api/v1/units/unit-a/cases",
                "school",
                json!({"country": "se", "personal_number": number, "first_name": REAL_FIRST,
                       "last_name": REAL_LAST, "birth_date": birth.to_string()}),
            );
            match opened {
                Ok(v) => break (birth, v["case_id"].as_str().unwrap().to_string()),
                Err(StatusCode::CONFLICT) => continue,
                Err(s) => panic!("setup: opening a case answered {s}"),
            }
        };
        let c = format!("/api/v1/cases/{case}");
        h.case = case.clone();
        let must = |what: &str, r: Result<Value, StatusCode>| -> Value {
            r.unwrap_or_else(|s| panic!("setup: {what} answered {s}"))
        };
        if stage >= Stage::Decided {
            must(
                "plan",
                self.step(
                    "PUT",
                    &format!("{c}/plan"),
                    "school",
                    json!({"information_handling": "Class teacher only.", "platforms": ["google"],
                           "guardian_contact_routes": ["phone"], "staff_to_inform": ["teacher"],
                           "free_text": ""}),
                ),
            );
            must(
                "decision",
                self.step(
                    "PUT",
                    &format!("{c}/login-decision"),
                    "school",
                    json!({"decision": "fictitious-user"}),
                ),
            );
        }
        if stage >= Stage::Fictitious {
            let fict = birth + Duration::days(1);
            must(
                "fictitious identity",
                self.step(
                    "PUT",
                    &format!("{c}/fictitious-identity"),
                    "school",
                    json!({"first_name": "Maja", "last_name": "Lind", "birth_date": fict.to_string()}),
                ),
            );
        }
        if stage >= Stage::Ordered {
            let o = must(
                "order",
                self.step(
                    "POST",
                    &format!("{c}/order"),
                    "school",
                    json!({"groups": ["4B"], "platforms": ["google"]}),
                ),
            );
            h.order = o["order_id"].as_str().unwrap().to_string();
        }
        if stage >= Stage::Registered {
            let reg = must(
                "registration",
                self.step(
                    "POST",
                    &format!("/api/v1/orders/{}/registration", h.order),
                    "central",
                    json!({}),
                ),
            );
            h.fnum = reg["number"].as_str().unwrap().to_string();
        }
        if stage >= Stage::RevealPending {
            let rv = must(
                "reveal request",
                self.step(
                    "POST",
                    "/api/v1/reveals",
                    "school",
                    json!({"case_id": case, "purpose": "Guardian access request"}),
                ),
            );
            h.reveal = rv["reveal_id"].as_str().unwrap().to_string();
        }
        h
    }

    fn handle(&self, stage: Stage) -> Handle {
        if let Some(h) = self.cache.lock().unwrap().get(&stage) {
            return h.clone();
        }
        let h = self.setup(stage);
        self.cache.lock().unwrap().insert(stage, h.clone());
        h
    }
}

fn replace(hay: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hay.len());
    let mut i = 0;
    while i < hay.len() {
        if hay[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let e = env();
    let route = &ROUTES[usize::from(sel & 0x7f) % ROUTES.len()];
    let ct = if sel & 0x80 == 0 {
        "application/json"
    } else {
        "text/plain"
    };
    let h = e.handle(route.stage);
    let body = replace(body, b"$CASE", h.case.as_bytes());
    let body = replace(&body, b"$FNUM", h.fnum.as_bytes());
    let body = replace(&body, b"$TODAY", TODAY.as_bytes());
    let path = route
        .path
        .replace("{case}", &h.case)
        .replace("{order}", &h.order)
        .replace("{reveal}", &h.reveal);

    let reply = e.call(route.method, &path, route.who, ct, body.clone());
    let text = String::from_utf8_lossy(&reply.body);
    assert!(
        !reply.status.is_server_error(),
        "{} {} answered {}: {}",
        route.method,
        route.path,
        reply.status,
        text
    );
    if reply.status.is_client_error() {
        assert_eq!(reply.content_type, "application/problem+json", "{text}");
    }
    let sent = String::from_utf8_lossy(&body);
    for canary in [REAL_FIRST, REAL_LAST] {
        if !sent.contains(canary) {
            assert!(
                !text.contains(canary),
                "a response shows a real name: {text}"
            );
        }
    }

    // Did the request reach the domain? Then the next input gets a fresh case.
    let problem = serde_json::from_slice::<Value>(&reply.body)
        .ok()
        .and_then(|v| v["type"].as_str().map(str::to_string))
        .unwrap_or_default();
    let untouched = [
        "urn:fiktiv:problem:malformed-json",
        "urn:fiktiv:problem:invalid-body",
        "urn:fiktiv:problem:unsupported-media-type",
    ]
    .contains(&problem.as_str());
    if !untouched {
        e.cache.lock().unwrap().remove(&route.stage);
        if route.path.starts_with("/api/v1/targets/") && reply.status.is_success() {
            let d = e.call(
                "DELETE",
                route.path,
                "central",
                "application/json",
                Vec::new(),
            );
            assert!(
                d.status.is_success(),
                "deleting the fuzzed target: {}",
                d.status
            );
        }
    }
});
