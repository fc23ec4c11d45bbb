//! The `fiktiv` binary as an operator runs it: init, startup refusals, audit verify,
//! key rotation, and serve on a real socket.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use crate::support::launch::{self, run as fiktiv, text};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

#[test]
fn init_creates_a_private_key_and_audit_verify_passes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = fiktiv(&data, &["init"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mode = std::fs::metadata(data.join("root.key"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let dmode = std::fs::metadata(&data).unwrap().permissions().mode() & 0o777;
    assert_eq!(dmode, 0o700);
    // init twice keeps the key
    let key = std::fs::read(data.join("root.key")).unwrap();
    assert!(fiktiv(&data, &["init"]).status.success());
    assert_eq!(std::fs::read(data.join("root.key")).unwrap(), key);

    let out = fiktiv(&data, &["audit", "verify"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("audit trail ok: 2 events verified"),
        "{}",
        text(&out.stdout)
    );
}

/// `fiktiv transfer key`: this Fiktiv's transfer public key, made on first use and the
/// same afterwards; another data directory has another key. Nothing secret is printed.
#[test]
fn transfer_key_is_made_once_and_printed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    assert!(fiktiv(&data, &["init"]).status.success());
    let out = fiktiv(&data, &["transfer", "key"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let key = text(&out.stdout).trim().to_owned();
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(&key)
        .unwrap();
    assert_eq!(raw.len(), 32, "{key}");
    let again = fiktiv(&data, &["transfer", "key"]);
    assert_eq!(text(&again.stdout).trim(), key);
    let other_dir = tempfile::tempdir().unwrap();
    let other = other_dir.path().join("data");
    assert!(fiktiv(&other, &["init"]).status.success());
    let theirs = text(&fiktiv(&other, &["transfer", "key"]).stdout);
    assert_ne!(theirs.trim(), key);
}

#[test]
fn world_readable_key_is_refused_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    assert!(fiktiv(&data, &["init"]).status.success());
    std::fs::set_permissions(
        data.join("root.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    for args in [
        &["serve", "--listen", "127.0.0.1:0"][..],
        &["audit", "verify"][..],
    ] {
        let out = fiktiv(&data, args);
        assert_eq!(out.status.code(), Some(2));
        let err = text(&out.stderr);
        let lines: Vec<_> = err.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(lines.len(), 1, "{err}");
        assert!(
            lines[0].contains("readable by group or others") && lines[0].contains("chmod 600"),
            "{err}"
        );
    }
}

#[test]
fn missing_key_with_existing_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    assert!(fiktiv(&data, &["init"]).status.success());
    std::fs::remove_file(data.join("root.key")).unwrap();
    let out = fiktiv(&data, &["serve", "--listen", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("refusing to create a new key"),
        "{}",
        text(&out.stderr)
    );
    assert!(!data.join("root.key").exists());
}

#[test]
fn bad_config_is_one_line_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("fiktiv.toml");
    std::fs::write(&cfg, "[server]\nlisen = \"127.0.0.1:1\"\n").unwrap();
    let out = fiktiv(
        &dir.path().join("d"),
        &["init", "--config", cfg.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("lisen"), "{err}");
}

#[test]
fn unreachable_database_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = launch::fiktiv(&data, None, &["init"])
        .env("FIKTIV_DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("cannot connect to the database"), "{err}");
}

#[test]
fn audit_verify_names_a_tampered_event() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    assert!(fiktiv(&data, &["init"]).status.success());
    assert!(fiktiv(&data, &["keys", "rotate"]).status.success());
    assert!(fiktiv(&data, &["init"]).status.success());
    // Edit event 2 in the raw SQLite file with the sqlite3-free route: sqlx.
    let url = format!("sqlite://{}", data.join("fiktiv.db").display());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use sqlx::Connection;
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query("UPDATE audit_events SET actor = 'someone-else' WHERE seq = 2")
            .execute(&mut c)
            .await
            .unwrap();
    });
    let out = fiktiv(&data, &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("event 2 was modified"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn keys_rotate_and_status() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    assert!(fiktiv(&data, &["init"]).status.success());
    let out = fiktiv(&data, &["keys", "rotate"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("key version 1 active"),
        "{}",
        text(&out.stdout)
    );
    let out = fiktiv(&data, &["keys", "rotate"]);
    assert!(
        text(&out.stdout).contains("key version 2 active"),
        "{}",
        text(&out.stdout)
    );
    let out = fiktiv(&data, &["keys", "status"]);
    let s = text(&out.stdout);
    assert!(
        s.contains("version 1: retired") && s.contains("version 2: active"),
        "{s}"
    );
}

struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let code = buf.split(' ').nth(1)?.parse().ok()?;
    Some((code, buf))
}

#[test]
fn serve_creates_keys_on_first_run_and_answers_health_and_readiness() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("fresh");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let child = launch::fiktiv(
        &data,
        None,
        &["serve", "--listen", &format!("127.0.0.1:{port}")],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let _server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(180);
    let (code, body) = loop {
        if let Some(r) = get(port, "/healthz") {
            break r;
        }
        assert!(Instant::now() < deadline, "fiktiv serve did not come up");
        std::thread::sleep(Duration::from_millis(50)); // polling interval, bounded by the deadline
    };
    assert_eq!(code, 200, "{body}");
    let (code, body) = get(port, "/readyz").unwrap();
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains("\"database\":true") && body.contains("\"audit\":true"),
        "{body}"
    );
    assert!(data.join("root.key").exists());
}

#[test]
fn root_key_from_the_environment_needs_no_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let run = |args: &[&str], key: &str| {
        launch::fiktiv(&data, None, args)
            .env("FIKTIV_ROOT_KEY", key)
            .output()
            .unwrap()
    };
    let out = run(&["init"], key);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!data.join("root.key").exists());
    assert!(run(&["audit", "verify"], key).status.success());
    // The wrong key is refused before it can read or write anything.
    let wrong = "HxwdHhsaGRgXFhUUExIREA8ODQwLCgkIBwYFBAMCAQA=";
    let out = run(&["audit", "verify"], wrong);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("does not match"),
        "{}",
        text(&out.stderr)
    );
    // A malformed key is one clear line, without echoing it.
    let out = run(&["audit", "verify"], "not-a-key");
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("malformed") && !err.contains("not-a-key"),
        "{err}"
    );
}

#[test]
fn backup_destroy_restore_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    assert!(fiktiv(&data, &["init"]).status.success());
    assert!(fiktiv(&data, &["keys", "rotate"]).status.success());
    let archive = dir.path().join("fiktiv.backup");
    let out = fiktiv(&data, &["backup", "--out", archive.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::metadata(&archive).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // Refuses to overwrite.
    let again = fiktiv(&data, &["backup", "--out", archive.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(2));

    // Destroy the database, keep the key (it lives apart from backups).
    for f in ["fiktiv.db", "fiktiv.db-wal", "fiktiv.db-shm"] {
        let _ = std::fs::remove_file(data.join(f));
    }
    // A tampered archive is refused and nothing is restored.
    let mut bytes = std::fs::read(&archive).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    let bad = dir.path().join("bad.backup");
    std::fs::write(&bad, &bytes).unwrap();
    let out = fiktiv(&data, &["restore", "--from", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("integrity"),
        "{}",
        text(&out.stderr)
    );

    let out = fiktiv(&data, &["restore", "--from", archive.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("audit trail ok"),
        "{}",
        text(&out.stdout)
    );
    let out = fiktiv(&data, &["keys", "status"]);
    assert!(
        text(&out.stdout).contains("version 1: active"),
        "{}",
        text(&out.stdout)
    );
    assert!(fiktiv(&data, &["audit", "verify"]).status.success());
}

#[test]
fn a_root_key_that_does_not_match_the_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    assert!(fiktiv(&data, &["init"]).status.success());
    let run = |args: &[&str]| {
        launch::fiktiv(&data, None, args)
            .env(
                "FIKTIV_ROOT_KEY",
                "HxwdHhsaGRgXFhUUExIREA8ODQwLCgkIBwYFBAMCAQA=",
            )
            .output()
            .unwrap()
    };
    for args in [
        &["serve", "--listen", "127.0.0.1:0"][..],
        &["init"][..],
        &["audit", "verify"][..],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = text(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains("root key does not match this database"),
            "{err}"
        );
    }
    // Nothing was written with the wrong key: the right one still verifies.
    let out = fiktiv(&data, &["audit", "verify"]);
    assert!(out.status.success(), "{}", text(&out.stdout));
}

#[test]
fn init_with_a_bad_config_leaves_no_key_behind() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cfg = dir.path().join("fiktiv.toml");
    // Parses as TOML, fails when the database is opened.
    std::fs::write(
        &cfg,
        "[database]\nurl = \"postgres://nobody@127.0.0.1:1/none\"\n",
    )
    .unwrap();
    let out = launch::fiktiv(&data, Some(&cfg), &["init"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(!data.join("root.key").exists());
}
