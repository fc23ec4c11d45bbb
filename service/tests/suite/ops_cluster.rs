//! Several `fiktiv serve` instances on one PostgreSQL database, no leader.
#![allow(clippy::print_stdout)] // the benchmark mode prints its figures
//!
//! - `two_instances_provision_a_batch_once`: two real `fiktiv serve` processes (same
//!   root key, same database) provision a batch of pupils to a real slapd,
//!   scim2-server and OneRoster folder while the batch is being registered. Every pupil
//!   ends with exactly one account per target and SCIM has one group per name; no
//!   attempt of a job overlaps another attempt of the same job, or any attempt on the
//!   same target (`prov_attempts`); both instances worked; the reconciliation ran once.
//! - `recovery_leaves_live_runs_alone`: the recovery of interrupted runs marks failed
//!   only the runs whose lease ran out.
//! - `bench_scaling` (ignored; `scripts/bench-scaling`): pupils per second with one
//!   instance, then with two, same targets, and the ratio (docs/SCALING.md).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use crate::support::api;
use crate::support::ops;
use crate::support::provisioning;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use fiktiv_app::config::Config;
use fiktiv_tests::TestDatabase;
use fiktiv_vault::{Db, KeyRing, RootKey, SystemClock, Vault};
use ops::Registrar;
use provisioning::{targets_toml, Peers};
use sqlx::Row;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `fiktiv serve` on the shared database with the shared root key.
fn serve(data: &Path, config: &Path, url: &str, key: &str) -> (Server, u16) {
    let port = fiktiv_tests::free_port().unwrap();
    let child = crate::support::launch::fiktiv(
        data,
        Some(config),
        &["serve", "--listen", &format!("127.0.0.1:{port}")],
    )
    .env("FIKTIV_DATABASE_URL", url)
    .env("FIKTIV_ROOT_KEY", key)
    .env("RUST_LOG", "warn")
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    (Server(child), port)
}

fn wait_healthy(port: u16) {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(180);
    while fiktiv_tests::http::request(addr, "GET", "/healthz", &[], None).is_err() {
        assert!(Instant::now() < deadline, "fiktiv serve did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn cluster_toml(peers: &Peers, reconcile_secs: u64) -> String {
    targets_toml(peers, &peers.slapd.url(), &peers.scim.base_url(), "").replace(
        "reconcile_interval_secs = 0",
        &format!("reconcile_interval_secs = {reconcile_secs}"),
    )
}

struct Attempt {
    job: String,
    target: String,
    holder: String,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

async fn attempts(vault: &Vault) -> Vec<Attempt> {
    let t = |s: String| {
        DateTime::parse_from_rfc3339(&s)
            .unwrap()
            .with_timezone(&Utc)
    };
    sqlx::query("SELECT job_id, target, holder, started_at, finished_at FROM prov_attempts ORDER BY started_at")
        .fetch_all(vault.db().pool())
        .await
        .unwrap()
        .iter()
        .map(|r| Attempt {
            job: r.get("job_id"),
            target: r.get("target"),
            holder: r.get("holder"),
            start: t(r.get("started_at")),
            end: t(r.get::<Option<String>, _>("finished_at").expect("an attempt without an end")),
        })
        .collect()
}

/// No two attempts with the same key overlap in time.
fn assert_no_overlap(all: &[Attempt], key: impl Fn(&Attempt) -> &str, what: &str) {
    let mut by: BTreeMap<&str, Vec<&Attempt>> = BTreeMap::new();
    for a in all {
        by.entry(key(a)).or_default().push(a);
    }
    for (k, list) in by {
        for w in list.windows(2) {
            assert!(
                w[1].start >= w[0].end,
                "two attempts on {what} {k} overlap: {} ({}..{}) and {} ({}..{})",
                w[0].holder,
                w[0].start,
                w[0].end,
                w[1].holder,
                w[1].start,
                w[1].end
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_provision_a_batch_once() {
    const PUPILS: usize = 16;
    let peers = Peers::start();
    let db = TestDatabase::postgres().unwrap();
    let key = RootKey::generate().to_base64().to_string();
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("fiktiv.toml");
    let toml = cluster_toml(&peers, 3600);
    std::fs::write(&config_path, &toml).unwrap();
    let config = Config::parse(&toml, "t").unwrap();

    // Both instances start on the empty database; the schema is made by whichever
    // migrates first (the other waits on the migration lock).
    let (a, port_a) = serve(&dir.path().join("a"), &config_path, db.url(), &key);
    let (b, port_b) = serve(&dir.path().join("b"), &config_path, db.url(), &key);
    wait_healthy(port_a);
    wait_healthy(port_b);

    // The batch is registered while both instances provision.
    let r = Registrar::new(db.url(), &key, &config, Arc::new(SystemClock)).await;
    for i in 0..PUPILS {
        r.pupil(i).await;
    }
    r.wait_done(PUPILS as i64 * 3, Duration::from_secs(90))
        .await;

    // Exactly one account per pupil and target.
    let persons: Vec<String> = sqlx::query("SELECT person_id FROM prov_persons")
        .fetch_all(r.vault.db().pool())
        .await
        .unwrap()
        .iter()
        .map(|row| row.get("person_id"))
        .collect();
    assert_eq!(persons.len(), PUPILS);
    let scim_users = peers.scim.list_all("/Users").unwrap();
    let csv = peers.users_csv();
    for p in &persons {
        assert_eq!(peers.ldap_count(p), 1, "ldap {p}");
        assert_eq!(
            scim_users
                .iter()
                .filter(|u| u["externalId"] == p.as_str())
                .count(),
            1,
            "scim {p}"
        );
        assert_eq!(
            csv.lines().filter(|l| l.starts_with(p.as_str())).count(),
            1,
            "csv {p}"
        );
    }
    assert_eq!(scim_users.len(), PUPILS);
    // One SCIM group per name: group creation did not race.
    let groups = peers.scim.list_all("/Groups").unwrap();
    let names: Vec<&str> = groups
        .iter()
        .map(|g| g["displayName"].as_str().unwrap())
        .collect();
    let unique: BTreeSet<&str> = names.iter().copied().collect();
    assert_eq!(
        names.len(),
        unique.len(),
        "duplicate SCIM groups: {names:?}"
    );

    // No job ran twice at once, and jobs on one target ran one at a time across both
    // instances; both instances did some of the work.
    let all = attempts(&r.vault).await;
    assert!(all.len() >= PUPILS * 3);
    assert_no_overlap(&all, |a| a.job.as_str(), "job");
    assert_no_overlap(&all, |a| a.target.as_str(), "target");
    let holders: BTreeSet<&str> = all.iter().map(|a| a.holder.as_str()).collect();
    assert_eq!(
        holders.len(),
        2,
        "both instances should have run jobs: {holders:?}"
    );

    // The reconciliation is scheduled once across the cluster.
    let reconciles: i64 =
        sqlx::query("SELECT COUNT(*) AS n FROM prov_runs WHERE kind = 'reconcile'")
            .fetch_one(r.vault.db().pool())
            .await
            .unwrap()
            .get("n");
    assert_eq!(reconciles, 1);
    let holder: Option<String> =
        sqlx::query("SELECT holder FROM schedules WHERE name = 'reconcile'")
            .fetch_one(r.vault.db().pool())
            .await
            .unwrap()
            .get("holder");
    assert!(holder.is_some());

    // Both instances answer with the same, shared state.
    for port in [port_a, port_b] {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let auth = format!("Bearer {}", r.central);
        let resp = fiktiv_tests::http::request(
            addr,
            "GET",
            "/api/v1/sync/jobs?state=done",
            &[("Authorization", auth.as_str())],
            None,
        )
        .unwrap();
        assert_eq!(resp.status, 200);
        assert_eq!(resp.json().unwrap().as_array().unwrap().len(), PUPILS * 3);
    }
    drop((a, b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_leaves_live_runs_alone() {
    let db = TestDatabase::sqlite().unwrap();
    let clock = fiktiv_vault::ManualClock::new(api::at(2026, 3, 2));
    let vault = Vault::new(
        Db::connect(db.url()).await.unwrap(),
        KeyRing::new(RootKey::generate()).unwrap(),
        Arc::new(clock.clone()),
    );
    let insert = |id: &'static str, lease: Option<String>| {
        let v = vault.clone();
        async move {
            sqlx::query(
                "INSERT INTO prov_runs (run_id, kind, state, started_by, started_at, targets_total, \
                 targets_done, items_done, findings, holder, lease_until) \
                 VALUES ($1, 'leak-scan', 'running', 'system', '2026-03-02T08:00:00.000000Z', 1, 0, 0, 0, 'other', $2)",
            )
            .bind(id)
            .bind(lease)
            .execute(v.db().pool())
            .await
            .unwrap();
        }
    };
    let now = api::at(2026, 3, 2);
    insert(
        "live",
        Some(fiktiv_vault::audit::fmt_time(
            now + chrono::TimeDelta::minutes(1),
        )),
    )
    .await;
    insert(
        "dead",
        Some(fiktiv_vault::audit::fmt_time(
            now - chrono::TimeDelta::minutes(1),
        )),
    )
    .await;
    insert("old", None).await;
    let n = fiktiv_delivery::checks::recover_runs(&vault).await.unwrap();
    assert_eq!(n, 2);
    let state = |id: &'static str| {
        let v = vault.clone();
        async move {
            sqlx::query("SELECT state FROM prov_runs WHERE run_id = $1")
                .bind(id)
                .fetch_one(v.db().pool())
                .await
                .unwrap()
                .get::<String, _>("state")
        }
    };
    assert_eq!(state("live").await, "running");
    assert_eq!(state("dead").await, "failed");
    assert_eq!(state("old").await, "failed");
    // When its lease runs out (its instance stopped renewing it), it is recovered too.
    clock.advance(chrono::TimeDelta::minutes(2));
    assert_eq!(
        fiktiv_delivery::checks::recover_runs(&vault).await.unwrap(),
        1
    );
    assert_eq!(state("live").await, "failed");

    // A schedule is claimed once per due time, whoever asks.
    let h = chrono::TimeDelta::hours(1);
    assert!(fiktiv_app::cluster::claim_schedule(&vault, "x", "one", h)
        .await
        .unwrap());
    assert!(!fiktiv_app::cluster::claim_schedule(&vault, "x", "two", h)
        .await
        .unwrap());
    clock.advance(h);
    assert!(fiktiv_app::cluster::claim_schedule(&vault, "x", "two", h)
        .await
        .unwrap());
    assert!(!fiktiv_app::cluster::claim_schedule(&vault, "x", "one", h)
        .await
        .unwrap());
    // A target's lease: one holder; taken over only when it ran out.
    let lease = chrono::TimeDelta::minutes(3);
    assert!(
        fiktiv_app::cluster::acquire_target(&vault, "t", "one", lease)
            .await
            .unwrap()
    );
    assert!(
        !fiktiv_app::cluster::acquire_target(&vault, "t", "two", lease)
            .await
            .unwrap()
    );
    fiktiv_app::cluster::release_target(&vault, "t", "one")
        .await
        .unwrap();
    assert!(
        fiktiv_app::cluster::acquire_target(&vault, "t", "two", lease)
            .await
            .unwrap()
    );
    clock.advance(chrono::TimeDelta::minutes(4));
    assert!(
        fiktiv_app::cluster::acquire_target(&vault, "t", "one", lease)
            .await
            .unwrap()
    );
}

/// One phase of the benchmark: `instances` instances provision `pupils` registered
/// pupils to fresh peers. Returns pupils per second.
async fn bench_phase(pupils: usize, instances: usize, workers: usize) -> f64 {
    let peers = Peers::start();
    let db = TestDatabase::postgres().unwrap();
    let key = RootKey::generate().to_base64().to_string();
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("fiktiv.toml");
    let toml = cluster_toml(&peers, 0).replace("workers = 2", &format!("workers = {workers}"));
    std::fs::write(&config_path, &toml).unwrap();
    let config = Config::parse(&toml, "t").unwrap();
    // Registered first, with no instance running: the timing is provisioning only.
    let r = Registrar::new(db.url(), &key, &config, Arc::new(SystemClock)).await;
    for i in 0..pupils {
        r.pupil(i).await;
    }
    let started = Instant::now();
    let servers: Vec<(Server, u16)> = (0..instances)
        .map(|n| {
            serve(
                &dir.path().join(format!("i{n}")),
                &config_path,
                db.url(),
                &key,
            )
        })
        .collect();
    r.wait_done(pupils as i64 * 3, Duration::from_secs(600))
        .await;
    let secs = started.elapsed().as_secs_f64();
    drop(servers);
    // Where the time went: per target, the jobs' busy time.
    let mut busy: BTreeMap<String, (usize, f64)> = BTreeMap::new();
    for a in attempts(&r.vault).await {
        let e = busy.entry(a.target.clone()).or_default();
        e.0 += 1;
        e.1 += (a.end - a.start).num_microseconds().unwrap_or(0) as f64 / 1e6;
    }
    for (t, (n, s)) in &busy {
        println!(
            "bench-scaling: {instances} instance(s): target {t}: {n} attempts, busy {s:.1} s of {secs:.1} s ({:.0} ms per job)",
            s * 1000.0 / *n as f64
        );
    }
    pupils as f64 / secs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
/// The scaling benchmark. Under `cargo test` a smoke run (6 pupils) that checks the
/// measurement itself works; `scripts/bench-scaling` runs it with 60 or more.
async fn bench_scaling() {
    let pupils: usize = std::env::var("FIKTIV_BENCH_PUPILS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6);
    let workers: usize = std::env::var("FIKTIV_BENCH_WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let one = bench_phase(pupils, 1, workers).await;
    let two = bench_phase(pupils, 2, workers).await;
    println!(
        "bench-scaling: {pupils} pupils x 3 targets (slapd, scim2-server, OneRoster), workers = {workers} per instance: \
         1 instance {one:.2} pupils/s, 2 instances {two:.2} pupils/s, ratio {:.2}",
        two / one
    );
    assert!(one.is_finite() && one > 0.0 && two.is_finite() && two > 0.0);
}
