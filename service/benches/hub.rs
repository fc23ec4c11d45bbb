//! The SS 12000 hub and feed, against plain HTTP in the same run:
//!
//! 1. **Reading the hub.** A full read of the test hub (`fiktiv_tests::TestHub`, about
//!    30,000 persons, of whom about 1,000 are marked) with Fiktiv's reader
//!    (`fiktiv_ss12000::HubReader`: paging, the rules for untrusted input, marked
//!    persons taken apart) and then with the read applied to the store
//!    (`fiktiv_routine::hub::apply`: one transaction, blind indexes of every hub id,
//!    intake items sealed), against the baseline: the same pages fetched with a plain
//!    HTTP client (reqwest, the bodies read, nothing parsed).
//! 2. **Serving the feed.** Every `/persons` page of Fiktiv's feed (`/ss12000/v2`, over
//!    a real socket, egress guard and all), against the same pages read straight from
//!    the test hub, both with the same plain HTTP client and page size.
//!
//! Each measurement is the median of three runs; the table gives seconds and the ratio
//! to its baseline. `cargo bench -p fiktiv --bench hub` (FIKTIV_BENCH_PERSONS persons,
//! default 30000; SQLite in a temporary directory). Under `cargo test` it runs once
//! with a tiny hub, as a check that it still works. Results: docs/PERFORMANCE.md.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)] // benchmark

use std::sync::Arc;
use std::time::{Duration, Instant};

use fiktiv_app::config::Config;
use fiktiv_app::context::Context;
use fiktiv_routine::feed::FeedResource;
use fiktiv_routine::hub::UnitCodeFrom;
use fiktiv_ss12000::{HubAuth, HubConfig, HubReader};
use fiktiv_tests::{TestDatabase, TestHub};
use fiktiv_vault::{Db, KeyRing, RootKey, SystemClock, Vault};

const PAGE: usize = 500;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Every page of `base/resource` with `limit=PAGE`, bodies read, nothing parsed but
/// the `pageToken` (found as text, as a plain client following pages would).
async fn plain_pages(client: &reqwest::Client, base: &str, resource: &str, token: &str) -> usize {
    let mut next: Option<String> = None;
    let mut bytes = 0;
    loop {
        let mut url = format!("{base}/{resource}?limit={PAGE}");
        if let Some(t) = &next {
            url.push_str(&format!("&pageToken={t}"));
        }
        let body = client
            .get(&url)
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        bytes += body.len();
        let text = std::str::from_utf8(&body).unwrap();
        match text.rsplit_once("\"pageToken\":\"") {
            Some((_, rest)) => next = Some(rest.split('"').next().unwrap().to_owned()),
            None => return bytes,
        }
    }
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let persons: usize = if bench {
        std::env::var("FIKTIV_BENCH_PERSONS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(30_000)
    } else {
        300
    };
    let runs = if bench { 3 } else { 1 };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(persons, runs));
}

async fn run(persons: usize, runs: usize) {
    let hub = TestHub::start(persons, 7).unwrap();
    let client = reqwest::Client::new();
    let hub_base = hub.base_url();
    let reader = || {
        let mut cfg = HubConfig::new(&hub_base, HubAuth::Bearer(hub.token().to_owned().into()));
        cfg.page_size = PAGE as u32;
        HubReader::new(cfg).unwrap()
    };

    // 1. Reading the hub.
    let mut plain = Vec::new();
    let mut read = Vec::new();
    let mut read_apply = Vec::new();
    let mut marked = 0;
    let mut total = 0;
    let db = TestDatabase::sqlite().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let vault = Vault::new(
        Db::connect(db.url()).await.unwrap(),
        KeyRing::new(RootKey::generate()).unwrap(),
        Arc::new(SystemClock),
    );
    for _ in 0..runs {
        let t = Instant::now();
        for r in ["organisations", "persons", "groups", "duties"] {
            plain_pages(&client, &hub_base, r, hub.token()).await;
        }
        plain.push(t.elapsed());

        let t = Instant::now();
        let snap = reader().read(None, &mut |_| {}).await.unwrap();
        read.push(t.elapsed());
        marked = snap.marked.len();
        total = snap.persons.len() + snap.marked.len();
        drop(snap);

        let t = Instant::now();
        let snap = reader().read(None, &mut |_| {}).await.unwrap();
        fiktiv_routine::hub::apply(
            &vault,
            snap,
            true,
            UnitCodeFrom::SchoolUnitCode,
            chrono::Utc::now(),
        )
        .await
        .unwrap();
        read_apply.push(t.elapsed());
    }
    let (plain, read, read_apply) = (median(plain), median(read), median(read_apply));

    // 2. Serving the feed, over a real socket, against the hub's own pages.
    let config = Config::parse(
        &format!("[ss12000]\nbase_url = \"{hub_base}\"\nread_every_minutes = 0\n"),
        "bench.toml",
    )
    .unwrap();
    let ctx = Context::with_vault(vault.clone(), config, dir.path()).unwrap();
    let token =
        fiktiv_routine::feed::add_consumer(&vault, "bench", &FeedResource::ALL, &[], "bench")
            .await
            .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = fiktiv::router::app(ctx);
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
    });
    let feed_base = format!("http://{addr}/ss12000/v2");
    let mut hub_pages = Vec::new();
    let mut feed_pages = Vec::new();
    let mut feed_bytes = 0;
    for _ in 0..runs {
        let t = Instant::now();
        plain_pages(&client, &hub_base, "persons", hub.token()).await;
        hub_pages.push(t.elapsed());
        let t = Instant::now();
        feed_bytes = plain_pages(&client, &feed_base, "persons", &token).await;
        feed_pages.push(t.elapsed());
    }
    assert!(feed_bytes > 0);
    let (hub_pages, feed_pages) = (median(hub_pages), median(feed_pages));

    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    println!("hub: {total} persons ({marked} marked), pages of {PAGE}; median of {runs}");
    println!("| what | seconds | ratio to its baseline |");
    println!("|---|---|---|");
    println!(
        "| plain HTTP client, every page of the four resources (baseline) | {:.2} | 1.00 |",
        plain.as_secs_f64()
    );
    println!(
        "| Fiktiv's reader (paging, checks, marked persons apart) | {:.2} | {:.2} |",
        read.as_secs_f64(),
        ratio(read, plain)
    );
    println!(
        "| Fiktiv's reader and the read applied to the store | {:.2} | {:.2} |",
        read_apply.as_secs_f64(),
        ratio(read_apply, plain)
    );
    println!(
        "| `/persons` pages straight from the hub (baseline) | {:.2} | 1.00 |",
        hub_pages.as_secs_f64()
    );
    println!(
        "| `/persons` pages from Fiktiv's feed | {:.2} | {:.2} |",
        feed_pages.as_secs_f64(),
        ratio(feed_pages, hub_pages)
    );
}
