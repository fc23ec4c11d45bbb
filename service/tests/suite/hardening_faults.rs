//! Target faults beyond `provisioning_faults.rs` (which shows convergence through
//! dropped, cut, slow and refused connections and injected 5xx/429): here the real
//! slapd is stopped and started again in the middle of a sync; SCIM requests time out,
//! get 503 until the jobs fail and get 429 with a Retry-After beyond the limit; the
//! OneRoster folder is on a full disk (a 256 KiB tmpfs). In each case Fiktiv retries,
//! reports (the job's `last_error`, a `job-failed` alert, the audit event, the status),
//! never puts a value in a report, keeps what the target already had intact, and
//! converges to exactly one account per person once the fault clears.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use crate::support::api;
use crate::support::provisioning;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use api::*;
use axum::http::StatusCode;
use chrono::TimeDelta;
use fiktiv_tests::{Fault, FaultProxy, TestDatabase};
use provisioning::*;
use serde_json::Value;

/// Real names used below: no report may contain them, nor the fictitious ones.
const VALUES: &[&str] = &[
    "Riktig",
    "Kanariemor",
    "Maja",
    "Lindqvist",
    "Karin",
    "Berglund",
];

fn assert_no_value(text: &str) {
    for v in VALUES {
        assert!(!text.contains(v), "a report holds a value: {text}");
    }
}

async fn register_pupils(e: &Env, n: usize, first_serial: u16) -> Vec<String> {
    let names = [
        ("Maja", "Lindqvist"),
        ("Otto", "Berg"),
        ("Ines", "Holm"),
        ("Tage", "Vik"),
        ("Alva", "Ek"),
        ("Vera", "Lund"),
    ];
    let mut cases = Vec::new();
    for i in 0..n {
        let (f, l) = names[i % names.len()];
        let real = Real::new(
            "Riktig",
            ["Ett", "Tva", "Tre", "Fyra", "Fem", "Sex"][i % 6],
            "2015-05-17",
            first_serial + i as u16,
        );
        let g = (i == 0).then(|| {
            guardian(
                "Kanariemor",
                "Ett",
                first_serial + 300,
                ("Karin", "Berglund"),
            )
        });
        cases.push(pupil(e, &real, (f, l, "2015-09-03"), g).await);
    }
    cases
}

async fn alerts(p: &PEnv) -> Vec<Value> {
    p.e.ok(
        StatusCode::OK,
        "GET",
        "/api/v1/provisioning/alerts",
        CENTRAL,
        None,
    )
    .await
    .as_array()
    .unwrap()
    .clone()
}

/// Re-arms every failed job through the API (the operator's "retry").
async fn retry_failed(p: &PEnv) -> usize {
    let failed = p.jobs("failed").await;
    for j in &failed {
        p.e.ok(
            StatusCode::OK,
            "POST",
            &format!("/api/v1/sync/jobs/{}/retry", j["job_id"].as_str().unwrap()),
            CENTRAL,
            None,
        )
        .await;
    }
    failed.len()
}

/// Works and lets the vault clock pass the backoff, until no job is pending or
/// running (or `rounds` run out).
async fn work_rounds(p: &PEnv, rounds: usize) {
    for _ in 0..rounds {
        p.work().await;
        if p.jobs("pending").await.is_empty() && p.jobs("running").await.is_empty() {
            return;
        }
        p.e.clock.advance(TimeDelta::seconds(10));
    }
}

fn target_jobs<'a>(jobs: &'a [Value], target: &str) -> Vec<&'a Value> {
    jobs.iter().filter(|j| j["target"] == target).collect()
}

/// Every person of `cases` has exactly one account in every target.
async fn one_account_each(p: &PEnv, peers: &Peers, cases: &[String]) -> usize {
    let mut n = 0;
    for case in cases {
        for (id, _) in p.person_ids(case).await {
            assert_eq!(peers.ldap_count(&id), 1, "ldap {id}");
            assert_eq!(peers.scim_users(&id).len(), 1, "scim {id}");
            assert_eq!(peers.csv_count(&id), 1, "csv {id}");
            n += 1;
        }
    }
    n
}

// ---------------------------------------------------------------------------
// slapd stopped and started again mid-sync
// ---------------------------------------------------------------------------

async fn slapd_restarted_mid_sync(db: TestDatabase) {
    let mut peers = Peers::start();
    // The proxy only paces the directory (each answer 150 ms late), so that the stop
    // lands in the middle of the sync; the stop and start are slapd's own.
    let pace = FaultProxy::for_slapd(&peers.slapd).unwrap();
    pace.set(Fault::Delay(Duration::from_millis(150))).unwrap();
    let toml = targets_toml(&peers, &pace.url_for("ldap"), &peers.scim.base_url(), "");
    let p = penv(db, at(2026, 3, 2), &toml).await;
    let cases = register_pupils(&p.e, 6, 60).await;

    let ctx = p.ctx.clone();
    let sync = tokio::spawn(async move {
        fiktiv_delivery::worker::run_until_idle(&ctx.delivery, 200)
            .await
            .unwrap()
    });
    // Stop slapd as soon as the first account is in it.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let people = peers
            .slapd
            .ldapsearch("(objectClass=inetOrgPerson)", &["dn"])
            .unwrap();
        if people.contains("dn: ") {
            break;
        }
        assert!(Instant::now() < deadline, "no LDAP account appeared");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    peers.slapd.stop().unwrap();
    sync.await.unwrap();

    // Mid-sync: some LDAP jobs are done, the others wait to be retried, with a reason.
    let all = p.jobs("pending").await;
    let waiting = target_jobs(&all, "ldap");
    assert!(!waiting.is_empty(), "the stop landed mid-sync");
    for j in &waiting {
        let reason = j["last_error"].as_str().unwrap();
        assert!(reason.contains("ldap"), "{reason}");
        assert_no_value(reason);
    }
    // (An account written before the stop may belong to a job that did not finish: its
    // group membership was next. The retry must not add a second account.)
    let status =
        p.e.ok(
            StatusCode::OK,
            "GET",
            "/api/v1/provisioning/status",
            CENTRAL,
            None,
        )
        .await;
    assert_no_value(&status.to_string());

    // Retried while it is down (more attempts, still pending), then it comes back.
    p.e.clock.advance(TimeDelta::seconds(10));
    p.work().await;
    let retried = target_jobs(&p.jobs("pending").await, "ldap")
        .iter()
        .filter(|j| j["attempts"].as_i64().unwrap() >= 2)
        .count();
    assert!(retried >= 1, "the jobs were retried while slapd was down");
    peers.slapd.start_again().unwrap();
    p.e.clock.advance(TimeDelta::seconds(10));
    work_rounds(&p, 20).await;

    let done = p.jobs("done").await;
    assert_eq!(done.len(), 7 * 3, "failed: {:?}", p.jobs("failed").await);
    assert_eq!(one_account_each(&p, &peers, &cases).await, 7);
    let groups = peers
        .slapd
        .ldapsearch("(objectClass=groupOfNames)", &["cn"])
        .unwrap();
    assert_eq!(groups.matches("dn: ").count(), 2, "{groups}");
    assert!(pace.stats().faults_injected > 0);
}

both_backends!(slapd_restarted_mid_sync);

// ---------------------------------------------------------------------------
// SCIM: timeouts, 503 until the jobs fail, 429 beyond Retry-After, then recovery
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scim_timeouts_5xx_and_429_are_retried_reported_and_converge() {
    let peers = Peers::start();
    let scim = FaultProxy::for_scim(&peers.scim).unwrap();
    let toml = targets_toml(
        &peers,
        &peers.slapd.url(),
        &format!("{}/v2", scim.url_for("http")),
        "",
    )
    .replace("max_attempts = 8", "max_attempts = 4")
    .replace(
        "timeout_secs = 10\nmax_retry_after_secs = 2",
        "timeout_secs = 1\nmax_retry_after_secs = 1",
    );
    assert!(toml.contains("timeout_secs = 1\n"));
    let p = penv(TestDatabase::sqlite().unwrap(), at(2026, 3, 2), &toml).await;
    let cases = register_pupils(&p.e, 3, 70).await;
    let persons = 4;

    // 1. SCIM holds every answer (until the next fault is set); the client gives up
    // after 1 s.
    scim.set(Fault::Delay(fiktiv_tests::MAX_DELAY)).unwrap();
    p.work().await;
    let pending = p.jobs("pending").await;
    let scim_jobs = target_jobs(&pending, "scim");
    assert_eq!(scim_jobs.len(), persons, "{pending:?}");
    for j in &scim_jobs {
        let reason = j["last_error"].as_str().unwrap().to_lowercase();
        assert!(
            reason.contains("scim") && reason.contains("time"),
            "{reason}"
        );
        assert_no_value(&reason);
    }
    assert_eq!(target_jobs(&p.jobs("done").await, "ldap").len(), persons);

    // 2. 503 until the attempts run out: failed, alerted, audited, in the status.
    scim.set(Fault::status(503)).unwrap();
    work_rounds(&p, 10).await;
    let failed = p.jobs("failed").await;
    assert_eq!(target_jobs(&failed, "scim").len(), persons, "{failed:?}");
    for j in &failed {
        let reason = j["last_error"].as_str().unwrap();
        assert!(reason.contains("503"), "{reason}");
        assert_eq!(j["attempts"], 4);
        assert_no_value(reason);
    }
    let open: Vec<Value> = alerts(&p)
        .await
        .into_iter()
        .filter(|a| a["kind"] == "job-failed" && a["target"] == "scim")
        .collect();
    assert_eq!(open.len(), persons, "one alert per failed job");
    for a in &open {
        assert_no_value(&a.to_string());
    }
    assert_eq!(
        p.audit_count("provisioning.job-failed").await,
        persons as i64
    );
    let status =
        p.e.ok(
            StatusCode::OK,
            "GET",
            "/api/v1/provisioning/status",
            CENTRAL,
            None,
        )
        .await;
    assert_eq!(status["open_alerts"]["job-failed"], persons, "{status}");
    // Reconciliation leaves failed jobs failed (they need an operator).
    p.e.ok(
        StatusCode::ACCEPTED,
        "POST",
        "/api/v1/sync/reconcile",
        CENTRAL,
        None,
    )
    .await;
    assert_eq!(target_jobs(&p.jobs("failed").await, "scim").len(), persons);

    // 3. The operator retries while the platform rate-limits beyond the limit.
    scim.set(Fault::too_many_requests(30)).unwrap();
    assert_eq!(retry_failed(&p).await, persons);
    p.work().await;
    for j in target_jobs(&p.jobs("pending").await, "scim") {
        let reason = j["last_error"].as_str().unwrap();
        assert!(
            reason.contains("429") || reason.contains("rate limited"),
            "{reason}"
        );
        assert_no_value(reason);
    }

    // 4. The fault clears: converges, one user per person, nothing left failed.
    scim.clear().unwrap();
    p.e.clock.advance(TimeDelta::seconds(10));
    work_rounds(&p, 10).await;
    assert_eq!(p.jobs("done").await.len(), persons * 3);
    assert_eq!(one_account_each(&p, &peers, &cases).await, persons);
    assert_eq!(peers.scim.list_all("/Users").unwrap().len(), persons);
    let stats = scim.stats();
    assert!(stats.faults_injected >= (persons * 4) as u64, "{stats:?}");
}

// ---------------------------------------------------------------------------
// A full disk under the OneRoster folder
// ---------------------------------------------------------------------------

/// A tmpfs of `size` mounted on `dir` for the test's life; unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Self {
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .unwrap_or_else(|e| panic!("cannot run mount(8): {e}"));
        assert!(
            out.status.success(),
            "this test mounts a {size} tmpfs to make the disk under the OneRoster folder \
             full, which needs root (CI runs as root): mount -t tmpfs {} failed: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Self(dir.to_owned())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Writes zeros into `path` until the file system says it is full.
fn fill(path: &Path) -> u64 {
    use std::io::Write as _;
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = [0u8; 4096];
    let mut n = 0u64;
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(k) => n += k as u64,
            Err(e) if e.raw_os_error() == Some(28) => break,
            Err(e) => panic!("filling the disk: {e}"),
        }
    }
    let _ = f.sync_all();
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_under_the_roster_is_reported_and_converges() {
    let peers = Peers::start();
    let disk = Tmpfs::mount(peers.roster.path(), "256k");
    let toml = targets_toml(&peers, &peers.slapd.url(), &peers.scim.base_url(), "")
        .replace("max_attempts = 8", "max_attempts = 3");
    let p = penv(TestDatabase::sqlite().unwrap(), at(2026, 3, 2), &toml).await;

    // One pupil goes in while there is room.
    let first = register_pupils(&p.e, 1, 80).await;
    work_rounds(&p, 5).await;
    assert_eq!(p.jobs("done").await.len(), 2 * 3);
    let before = peers.users_csv();
    assert_eq!(
        before.lines().count(),
        3,
        "header + pupil + guardian: {before}"
    );

    // The disk fills up; two more pupils are registered.
    let filler = disk.0.join("filler");
    let filled = fill(&filler);
    assert!(filled > 0 && filled <= 256 * 1024);
    let more = register_pupils(&p.e, 3, 90).await;
    work_rounds(&p, 10).await;
    let failed = p.jobs("failed").await;
    let roster = target_jobs(&failed, "roster");
    assert!(!roster.is_empty(), "the roster jobs failed: {failed:?}");
    for j in &roster {
        let reason = j["last_error"].as_str().unwrap();
        assert!(
            reason.contains("space") || reason.contains("os error 28"),
            "{reason}"
        );
        assert_no_value(reason);
    }
    assert!(target_jobs(&failed, "ldap").is_empty() && target_jobs(&failed, "scim").is_empty());
    let open: Vec<Value> = alerts(&p)
        .await
        .into_iter()
        .filter(|a| a["kind"] == "job-failed" && a["target"] == "roster")
        .collect();
    assert_eq!(open.len(), roster.len());
    // What the platforms import now is still the last complete roster.
    assert_eq!(peers.users_csv(), before, "a full disk damaged the roster");

    // Room again: the operator retries, and it converges.
    std::fs::remove_file(&filler).unwrap();
    assert_eq!(retry_failed(&p).await, roster.len());
    work_rounds(&p, 10).await;
    assert!(p.jobs("failed").await.is_empty());
    let all: Vec<String> = first.iter().chain(more.iter()).cloned().collect();
    let persons = one_account_each(&p, &peers, &all).await;
    assert_eq!(peers.users_csv().lines().count(), persons + 1);
    // No half-written version was left behind to keep the disk full.
    let entries: Vec<String> = std::fs::read_dir(&disk.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(entries.len() <= 2, "left on the disk: {entries:?}");
}
