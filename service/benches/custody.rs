//! Key custody: what each provider costs, as ratios to the file provider in one run.
//!
//! - start to ready: `fiktiv serve` spawned until `/readyz` answers 200; with shares,
//!   three shares are posted to `/api/v1/unseal` as soon as `/healthz` answers (the
//!   holders' typing is not timed); with pkcs11, SoftHSM2 opens the key at start.
//! - opening the root key in the process (file read; three shares combined and the wrap
//!   opened; the HSM asked to decrypt the wrap).
//! - one identity read (`Vault::read_identity`: audit event, unwrap, open) with the keys
//!   each provider opened.
//!
//! `cargo bench -p fiktiv --bench custody` (FIKTIV_BENCH_REPS starts per provider,
//! default 7; FIKTIV_BENCH_READS reads, default 2000). Under `cargo test` it runs once
//! with tiny counts, as a check that it still works. Results: docs/PERFORMANCE.md.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)] // benchmark

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use fiktiv_tests::http::request;
use fiktiv_tests::{free_port, SoftHsm};
use fiktiv_vault::audit::{NewEvent, Outcome};
use fiktiv_vault::custody::{self, Provider};
use fiktiv_vault::ids::PersonalNumber;
use fiktiv_vault::{
    CaseId, Db, KeyRing, ReadContext, RealIdentity, RealName, RootKey, SystemClock, Vault,
};

struct Install {
    name: &'static str,
    _dir: tempfile::TempDir,
    data: PathBuf,
    config: PathBuf,
    shares: Vec<String>,
}

fn fiktiv(inst_data: &Path, config: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_fiktiv"));
    c.args(args)
        .arg("--data-dir")
        .arg(inst_data)
        .arg("--config")
        .arg(config)
        .env_remove("FIKTIV_ROOT_KEY")
        .env_remove("FIKTIV_DATABASE_URL")
        .env("RUST_LOG", "error");
    c
}

fn install(name: &'static str, keys: &str) -> Install {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("fiktiv.toml");
    std::fs::write(&config, format!("[log]\nlevel = \"error\"\n\n{keys}")).unwrap();
    let mut args = vec!["init"];
    if name == "shares" {
        args.extend(["--threshold", "3", "--shares", "5"]);
    }
    let out = fiktiv(&data, &config, &args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shares = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(": ").map(|(_, s)| s.to_string()))
        .filter(|s| s.starts_with("fks1-"))
        .collect();
    Install {
        name,
        _dir: dir,
        data,
        config,
        shares,
    }
}

fn start_to_ready(inst: &Install) -> Duration {
    let port = free_port().unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let started = Instant::now();
    let mut child = fiktiv(
        &inst.data,
        &inst.config,
        &["serve", "--listen", &format!("127.0.0.1:{port}")],
    )
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let deadline = started + Duration::from_secs(180);
    let mut posted = false;
    loop {
        assert!(Instant::now() < deadline, "{} did not get ready", inst.name);
        match request(addr, "GET", "/readyz", &[], None) {
            Ok(r) if r.status == 200 => break,
            Ok(_) if !inst.shares.is_empty() && !posted => {
                for s in &inst.shares[..3] {
                    let body = format!(r#"{{"share":"{s}"}}"#);
                    request(
                        addr,
                        "POST",
                        "/api/v1/unseal",
                        &[("content-type", "application/json")],
                        Some(body.as_bytes()),
                    )
                    .unwrap();
                }
                posted = true;
            }
            _ => std::thread::sleep(Duration::from_millis(5)), // polling, bounded by the deadline
        }
    }
    let took = started.elapsed();
    let _ = child.kill();
    let _ = child.wait();
    took
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn pupil() -> RealIdentity {
    let today = NaiveDate::from_ymd_opt(2026, 12, 6).unwrap();
    let number =
        fiktiv_vault::ids::make_se_number(NaiveDate::from_ymd_opt(2012, 3, 4).unwrap(), 17)
            .unwrap();
    let number = PersonalNumber::parse(&number, today).unwrap();
    RealIdentity {
        birth_date: number.birth_date(),
        number,
        first_name: RealName::new("Bänkel"),
        last_name: RealName::new("Provsson"),
    }
}

async fn open_root(inst: &Install, hsm: &SoftHsm) -> RootKey {
    match inst.name {
        "file" => RootKey::load(&inst.data).unwrap(),
        "shares" => {
            let db = Db::connect(&format!(
                "sqlite://{}",
                inst.data.join("fiktiv.db").display()
            ))
            .await
            .unwrap();
            let record = custody::load_for(&db, Provider::Shares).await.unwrap();
            custody::unseal::open_with_shares(&record, inst.shares[..3].iter().map(String::as_str))
                .unwrap()
                .0
        }
        _ => {
            let db = Db::connect(&format!(
                "sqlite://{}",
                inst.data.join("fiktiv.db").display()
            ))
            .await
            .unwrap();
            let record = custody::load_for(&db, Provider::Pkcs11).await.unwrap();
            let settings = custody::hsm::HsmSettings {
                module: hsm.module().to_path_buf(),
                token_label: hsm.label().to_string(),
                pin: secrecy::SecretString::from(fiktiv_tests::SOFTHSM_USER_PIN.to_string()),
            };
            custody::hsm_open_root(&settings, &record).unwrap()
        }
    }
}

async fn reads(inst: &Install, root: RootKey, n: usize) -> Duration {
    let db = Db::connect(&format!(
        "sqlite://{}",
        inst.data.join("fiktiv.db").display()
    ))
    .await
    .unwrap();
    let vault = Vault::new(db, KeyRing::new(root).unwrap(), Arc::new(SystemClock));
    let case = CaseId::new();
    let mut tx = vault.db().begin_write().await.unwrap();
    vault.create_case_key(&mut tx, &case).await.unwrap();
    vault
        .store_identity(&mut tx, &case, "pupil", &pupil())
        .await
        .unwrap();
    vault
        .audit(
            &mut tx,
            &NewEvent {
                actor: "bench",
                action: "case.open",
                case_id: Some(case),
                purpose: None,
                outcome: Outcome::Ok,
            },
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let ctx = ReadContext {
        actor: "bench",
        action: "case.reveal",
        purpose: "benchmark read",
    };
    let started = Instant::now();
    for _ in 0..n {
        let id = vault.read_identity(ctx, &case, "pupil").await.unwrap();
        std::hint::black_box(id);
    }
    started.elapsed() / u32::try_from(n).unwrap()
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let env_or = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let (reps, n_reads) = if bench {
        (
            env_or("FIKTIV_BENCH_REPS", 7),
            env_or("FIKTIV_BENCH_READS", 2000),
        )
    } else {
        (1, 3)
    };
    let hsm = SoftHsm::start("fiktiv-bench").unwrap();
    let (k, conf) = hsm.env();
    // Before any other thread exists: the HSM module reads it when first opened, in
    // this process and in every `fiktiv` it spawns.
    std::env::set_var(k, &conf);
    let installs = [
        install("file", ""),
        install("shares", "[keys]\nprovider = \"shares\"\n"),
        install("pkcs11", &hsm.fiktiv_config()),
    ];
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut rows = Vec::new();
    for inst in &installs {
        let start = median((0..reps).map(|_| start_to_ready(inst)).collect());
        let open = median(
            (0..reps)
                .map(|_| {
                    let t = Instant::now();
                    let root = rt.block_on(open_root(inst, &hsm));
                    let took = t.elapsed();
                    drop(root);
                    took
                })
                .collect(),
        );
        let root = rt.block_on(open_root(inst, &hsm));
        let read = rt.block_on(reads(inst, root, n_reads));
        rows.push((inst.name, start, open, read));
    }
    let (_, s0, o0, r0) = rows[0];
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "custody: {reps} starts per provider (median), {n_reads} identity reads each"
    )
    .unwrap();
    writeln!(
        out,
        "| provider | start to ready | ratio | open root key | ratio | one identity read | ratio |"
    )
    .unwrap();
    writeln!(out, "|---|---|---|---|---|---|---|").unwrap();
    for (name, s, o, r) in &rows {
        writeln!(
            out,
            "| {name} | {:.0} ms | {:.2}x | {:.3} ms | {:.1}x | {:.1} us | {:.2}x |",
            s.as_secs_f64() * 1e3,
            s.as_secs_f64() / s0.as_secs_f64(),
            o.as_secs_f64() * 1e3,
            o.as_secs_f64() / o0.as_secs_f64(),
            r.as_secs_f64() * 1e6,
            r.as_secs_f64() / r0.as_secs_f64(),
        )
        .unwrap();
    }
}
