//! Concurrent writers: opening cases through the API with 1, 4 and 16 clients at once,
//! on SQLite with and without the writer gate (`fiktiv_vault::Db::begin_write`), and on
//! PostgreSQL. Each opening is one write transaction (the sealed identity, its blind
//! indexes, the case row and the audit event).
//!
//! Every client sends its requests one after the other through the real router
//! (`fiktiv::router::app`, tower's `oneshot`, a bearer token of a school), and each
//! request's latency is measured from the call until the `201 Created` answer. The table
//! gives p50, p90 and p99 of all requests of a row and the throughput (opened cases per
//! second of wall time), then the ratios of SQLite with the gate to SQLite without it,
//! measured in the same run.
//!
//! `cargo bench -p fiktiv --bench writers` (FIKTIV_BENCH_CASES cases per row, default
//! 1600; PostgreSQL from FIKTIV_TEST_DATABASE_URL, as the tests). Under `cargo test` it
//! runs once with tiny counts, as a check that it still works. Results:
//! docs/PERFORMANCE.md.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)] // benchmark

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::{NaiveDate, TimeDelta};
use fiktiv_app::config::Config;
use fiktiv_app::context::Context;
use fiktiv_policies::Role;
use fiktiv_tests::TestDatabase;
use fiktiv_vault::{Db, KeyRing, RootKey, SystemClock, Vault};
use tower::ServiceExt;

const UNIT: &str = "unit-a";

#[derive(Clone, Copy, PartialEq)]
enum Setup {
    SqliteNoGate,
    SqliteGate,
    Postgres,
}

impl Setup {
    fn name(self) -> &'static str {
        match self {
            Setup::SqliteNoGate => "SQLite, no gate (before)",
            Setup::SqliteGate => "SQLite, writer gate (after)",
            Setup::Postgres => "PostgreSQL",
        }
    }
}

struct Row {
    setup: Setup,
    clients: usize,
    p50: Duration,
    p90: Duration,
    p99: Duration,
    per_sec: f64,
}

/// A distinct valid Swedish number per case: birth dates from 2012 on, serials 1..999.
fn number(i: usize) -> (String, NaiveDate) {
    let day = i / 900;
    let serial = u16::try_from(i % 900 + 1).unwrap();
    let birth = NaiveDate::from_ymd_opt(2012, 1, 1).unwrap() + TimeDelta::days(day as i64);
    (
        fiktiv_vault::ids::make_se_number(birth, serial).unwrap(),
        birth,
    )
}

/// `i` written in the letters a to z (a name holds no digits).
fn letters(mut i: usize) -> String {
    let mut out = String::new();
    loop {
        out.push(char::from(b'a' + u8::try_from(i % 26).unwrap()));
        i /= 26;
        if i == 0 {
            return out;
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

async fn run(setup: Setup, clients: usize, cases: usize) -> Row {
    let db = match setup {
        Setup::Postgres => TestDatabase::postgres().unwrap(),
        _ => TestDatabase::sqlite().unwrap(),
    };
    let dir = tempfile::tempdir().unwrap();
    let mut conn = Db::connect(db.url()).await.unwrap();
    if setup == Setup::SqliteNoGate {
        conn = conn.without_write_gate();
    }
    let vault = Vault::new(
        conn,
        KeyRing::new(RootKey::generate()).unwrap(),
        Arc::new(SystemClock),
    );
    let ctx = Context::with_vault(vault.clone(), Config::default(), dir.path()).unwrap();
    let token = fiktiv_staff::tokens::create(
        &vault,
        "bench",
        "school",
        &[Role::School],
        &[UNIT.to_owned()],
        30,
    )
    .await
    .unwrap()
    .secret
    .to_string();
    let app = fiktiv::router::app(ctx);
    let open = |i: usize| {
        let (pnr, birth) = number(i);
        let body = serde_json::json!({
            "country": "se", "personal_number": pnr, "first_name": "Bench",
            "last_name": format!("Writer{}", letters(i)), "birth_date": birth.to_string(),
        });
        Request::post(format!("/api/v1/units/{UNIT}/cases"))
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(Body::from(serde_json::to_vec(&body).unwrap()))
            .unwrap()
    };
    // Warm-up: the pool's connections and the statement caches.
    for i in 0..4 {
        let s = app
            .clone()
            .oneshot(open(1_000_000 + i))
            .await
            .unwrap()
            .status();
        assert_eq!(s, StatusCode::CREATED);
    }
    let per_client = cases.div_ceil(clients);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let app = app.clone();
        let reqs: Vec<_> = (0..per_client).map(|k| open(c * per_client + k)).collect();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(reqs.len());
            for req in reqs {
                let t = Instant::now();
                let resp = app.clone().oneshot(req).await.unwrap();
                lat.push(t.elapsed());
                assert_eq!(resp.status(), StatusCode::CREATED);
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let wall = start.elapsed();
    all.sort();
    Row {
        setup,
        clients,
        p50: percentile(&all, 0.50),
        p90: percentile(&all, 0.90),
        p99: percentile(&all, 0.99),
        per_sec: all.len() as f64 / wall.as_secs_f64(),
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let cases = if bench {
        std::env::var("FIKTIV_BENCH_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1600)
    } else {
        16
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut rows = Vec::new();
    for setup in [Setup::SqliteNoGate, Setup::SqliteGate, Setup::Postgres] {
        for clients in [1, 4, 16] {
            let row = rt.block_on(run(setup, clients, cases));
            println!(
                "{} · {} clients: p50 {}, p90 {}, p99 {}, {:.0} cases/s",
                setup.name(),
                clients,
                ms(row.p50),
                ms(row.p90),
                ms(row.p99),
                row.per_sec
            );
            rows.push(row);
        }
    }
    println!("\n| database | clients | p50 | p90 | p99 | opened cases per second |");
    println!("|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} | {} | {:.0} |",
            r.setup.name(),
            r.clients,
            ms(r.p50),
            ms(r.p90),
            ms(r.p99),
            r.per_sec
        );
    }
    println!("\n| clients | p99 with gate / without | throughput with gate / without |");
    println!("|---|---|---|");
    for clients in [1, 4, 16] {
        let find = |s: Setup| {
            rows.iter()
                .find(|r| r.setup == s && r.clients == clients)
                .unwrap()
        };
        let (before, after) = (find(Setup::SqliteNoGate), find(Setup::SqliteGate));
        println!(
            "| {} | {:.2}× | {:.2}× |",
            clients,
            after.p99.as_secs_f64() / before.p99.as_secs_f64(),
            after.per_sec / before.per_sec
        );
    }
}
