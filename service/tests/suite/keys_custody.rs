//! Key custody, as operators and key holders meet it, with the real `fiktiv` binary:
//! shares (init, a sealed start, unsealing through the API, the page and `fiktiv
//! unseal`, sealing again, rotation, recovery drills, a backup restored on a new machine
//! with the shares only) on SQLite and PostgreSQL, and an HSM (SoftHSM2) over PKCS#11.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use fiktiv_tests::http::{request, HttpResponse};
use fiktiv_tests::{free_port, SoftHsm, TestDatabase};

struct Install {
    _dir: tempfile::TempDir,
    data: PathBuf,
    config: PathBuf,
    db_url: String,
}

impl Install {
    fn new(db: &TestDatabase, keys: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let config = dir.path().join("fiktiv.toml");
        std::fs::write(&config, format!("[log]\nlevel = \"warn\"\n\n{keys}")).unwrap();
        Self {
            db_url: db.url().to_string(),
            data,
            config,
            _dir: dir,
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = crate::support::launch::fiktiv(&self.data, Some(&self.config), args);
        c.env("FIKTIV_DATABASE_URL", &self.db_url);
        c
    }

    /// Run with `stdin` as standard input.
    fn run(&self, args: &[&str], stdin: &str, env: &[(&str, &Path)]) -> Output {
        let mut c = self.command(args);
        for (k, v) in env {
            c.env(k, v);
        }
        let mut child = c
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    fn serve(&self, env: &[(&str, &Path)]) -> Server {
        let port = free_port().unwrap();
        let mut c = self.command(&["serve", "--listen", &format!("127.0.0.1:{port}")]);
        for (k, v) in env {
            c.env(k, v);
        }
        let child = c
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = Server {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        let deadline = Instant::now() + Duration::from_secs(180);
        while request(server.addr, "GET", "/healthz", &[], None).is_err() {
            assert!(Instant::now() < deadline, "fiktiv serve did not come up");
            std::thread::sleep(Duration::from_millis(50)); // polling, bounded by the deadline
        }
        server
    }
}

struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn get(&self, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
        request(self.addr, "GET", path, headers, None).unwrap()
    }

    /// One share to `POST /api/v1/unseal`.
    fn unseal(&self, share: &str) -> HttpResponse {
        self.post_json("/api/v1/unseal", &format!(r#"{{"share":"{share}"}}"#))
    }

    fn post_json(&self, path: &str, body: &str) -> HttpResponse {
        request(
            self.addr,
            "POST",
            path,
            &[("content-type", "application/json")],
            Some(body.as_bytes()),
        )
        .unwrap()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The shares a command printed: `share i of n (...) for NAME: fks1-...`.
fn shares_of(out: &Output) -> Vec<(String, String)> {
    text(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (head, share) = l.split_once(": ")?;
            let holder = head.split(" for ").nth(1)?.to_string();
            share
                .starts_with("fks1-")
                .then(|| (holder, share.to_string()))
        })
        .collect()
}

const HOLDERS: [&str; 5] = ["Anna Berg", "Bo Ek", "Cecilia Holm", "Dan Lind", "Eva Nord"];

fn init_shares(inst: &Install) -> Vec<String> {
    let mut args = vec!["init", "--threshold", "3"];
    for h in HOLDERS {
        args.push("--holder");
        args.push(h);
    }
    let out = inst.run(&args, "", &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shares = shares_of(&out);
    assert_eq!(
        shares.iter().map(|(h, _)| h.as_str()).collect::<Vec<_>>(),
        HOLDERS,
        "one share per holder, in order: {}",
        text(&out.stdout)
    );
    assert!(
        !inst.data.join("root.key").exists(),
        "no key file with the shares provider"
    );
    shares.into_iter().map(|(_, s)| s).collect()
}

fn lines(shares: &[&String]) -> String {
    shares.iter().map(|s| format!("{s}\n")).collect()
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(180);
    while !cond() {
        assert!(Instant::now() < deadline, "{what} did not happen");
        std::thread::sleep(Duration::from_millis(50)); // polling, bounded by the deadline
    }
}

const SHARES_CONFIG: &str = "[keys]\nprovider = \"shares\"\n";

/// The whole life of a sealed instance on one database.
fn sealed_start_unseal_and_seal(db: &TestDatabase) {
    let inst = Install::new(db, SHARES_CONFIG);
    let shares = init_shares(&inst);
    let server = inst.serve(&[]);

    // Sealed: health says so, not ready, nothing else answers.
    let h = server.get("/healthz", &[]);
    assert_eq!(h.status, 200);
    assert_eq!(h.json().unwrap()["status"], "sealed");
    let r = server.get("/readyz", &[]);
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json().unwrap()["sealed"], true);
    let api = server.get("/api/v1/cases", &[("authorization", "Bearer x")]);
    assert_eq!(api.status, 503);
    assert_eq!(api.json().unwrap()["code"], "sealed");
    let page = server.get("/", &[("accept-language", "sv")]);
    assert_eq!(page.status, 503);
    assert!(
        page.text().contains("Fiktiv är förseglat"),
        "{}",
        page.text()
    );
    let page = server.get("/signin", &[("accept-language", "nb")]);
    assert_eq!(page.status, 503);
    assert!(
        page.text().contains("Fiktiv er forseglet"),
        "{}",
        page.text()
    );

    // A typing error, then share 1 by the API, share 1 again, share 2 by the page.
    let bad = server.unseal("fks1-aaaa");
    assert_eq!(bad.status, 422);
    assert_eq!(bad.json().unwrap()["code"], "not-a-share");
    let ok = server.unseal(&shares[0]);
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(ok.json().unwrap()["entered"], 1);
    let again = server.unseal(&shares[0]);
    assert_eq!(again.json().unwrap()["code"], "repeated");
    let form = format!("share={}", shares[3].replace('-', "%2D"));
    let posted = request(
        server.addr,
        "POST",
        "/unseal",
        &[("content-type", "application/x-www-form-urlencoded")],
        Some(form.as_bytes()),
    )
    .unwrap();
    assert_eq!(posted.status, 303, "{}", posted.text());
    assert_eq!(posted.header("location"), Some("/unseal?r=accepted"));
    let page = server.get("/unseal?r=accepted", &[("accept-language", "en")]);
    assert!(
        page.text().contains("2 of 3 shares entered"),
        "{}",
        page.text()
    );
    assert!(
        !page.text().contains(&shares[3]),
        "the page never shows a share"
    );
    assert_eq!(
        server.get("/readyz", &[]).status,
        503,
        "two of three do not open"
    );

    // The third holder uses `fiktiv unseal` on the server.
    let out = inst.run(&["unseal"], &format!("{}\n", shares[4]), &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("unsealed"),
        "{}",
        text(&out.stderr)
    );
    let ready = server.get("/readyz", &[]);
    assert_eq!(ready.status, 200, "{}", ready.text());
    assert_eq!(server.get("/healthz", &[]).json().unwrap()["status"], "ok");
    // The full service answers: a bad token is a 401 now, not a 503.
    assert_eq!(
        server
            .get("/api/v1/cases", &[("authorization", "Bearer x")])
            .status,
        401
    );

    // Seal again: back to 503, and the same shares open it again.
    let out = inst.run(&["seal"], "", &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    wait_for("sealing", || server.get("/readyz", &[]).status == 503);
    assert_eq!(
        server
            .get("/api/v1/cases", &[("authorization", "Bearer x")])
            .status,
        503
    );
    for s in [&shares[1], &shares[2], &shares[4]] {
        let r = server.unseal(s);
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert_eq!(server.get("/readyz", &[]).status, 200);
    drop(server);

    // The audit trail names the holders of each unsealing and the sealing, and any
    // command needs the shares (typed on its standard input).
    let out = inst.run(
        &["audit", "export"],
        &lines(&[&shares[0], &shares[1], &shares[2]]),
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let export = text(&out.stdout);
    assert!(
        export.contains("system.unseal")
            && export.contains("holders: Anna Berg, Dan Lind, Eva Nord; via the control socket"),
        "{export}"
    );
    assert!(export.contains("2 share(s) refused before"), "{export}");
    assert!(
        export.contains("holders: Bo Ek, Cecilia Holm, Eva Nord; via the API"),
        "{export}"
    );
    assert!(export.contains("system.seal"), "{export}");
    assert!(export.contains("keys.custody-created"), "{export}");
    let out = inst.run(&["audit", "verify"], &lines(&[&shares[0], &shares[1]]), &[]);
    assert!(
        !out.status.success(),
        "two shares do not open the keys for a command"
    );
}

#[test]
fn shares_sealed_start_unseal_and_seal_on_sqlite() {
    sealed_start_unseal_and_seal(&TestDatabase::sqlite().unwrap());
}

#[test]
fn shares_sealed_start_unseal_and_seal_on_postgres() {
    sealed_start_unseal_and_seal(&TestDatabase::postgres().unwrap());
}

/// Recovery drills: any k of n open it (n - k holders lost); n - k + 1 lost cannot; a
/// forged share of the right set fails only when combined and names no share.
#[test]
fn recovery_drills_with_lost_holders_and_a_forged_share() {
    let db = TestDatabase::sqlite().unwrap();
    let inst = Install::new(&db, SHARES_CONFIG);
    let shares = init_shares(&inst);
    // Two of five holders lost: the other three open it.
    let out = inst.run(
        &["audit", "verify"],
        &lines(&[&shares[2], &shares[3], &shares[4]]),
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("audit trail ok"),
        "{}",
        text(&out.stdout)
    );
    // Three lost: the two left cannot, whatever else is typed.
    let out = inst.run(
        &["audit", "verify"],
        &lines(&[&shares[3], &shares[4], &shares[4]]),
        &[],
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("already been entered"),
        "{}",
        text(&out.stderr)
    );

    let server = inst.serve(&[]);
    for s in [&shares[3], &shares[4]] {
        let r = server.unseal(s);
        assert_eq!(r.status, 200);
    }
    let status = server.get("/api/v1/unseal", &[]).json().unwrap();
    assert_eq!(
        (status["entered"].clone(), status["threshold"].clone()),
        (2.into(), 3.into())
    );
    assert_eq!(server.get("/readyz", &[]).status, 503);
    drop(server);

    // A share of the right set with another value (its check made to match) fails only
    // when combined; the message names no share and everything entered is forgotten.
    let forged = forge(&shares[0]);
    let server = inst.serve(&[]);
    for s in [&shares[1], &shares[2]] {
        server.unseal(s);
    }
    let r = server.unseal(&forged);
    assert_eq!(r.status, 422, "{}", r.text());
    let body = r.json().unwrap();
    assert_eq!(body["code"], "do-not-open");
    for name in HOLDERS {
        assert!(!r.text().contains(name), "names no holder: {}", r.text());
    }
    assert_eq!(
        server.get("/api/v1/unseal", &[]).json().unwrap()["entered"],
        0
    );
    for s in [&shares[0], &shares[1], &shares[2]] {
        server.unseal(s);
    }
    assert_eq!(server.get("/readyz", &[]).status, 200);
}

/// A share with one share byte changed and its check recomputed: well-formed, wrong.
fn forge(share: &str) -> String {
    use data_encoding::BASE32_NOPAD;
    use sha2::{Digest, Sha256};
    let compact: String = share["fks1-".len()..]
        .chars()
        .filter(|c| *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let mut raw = BASE32_NOPAD.decode(compact.as_bytes()).unwrap();
    raw[20] ^= 0x5a;
    let check = Sha256::digest(&raw[..40]);
    raw[40..].copy_from_slice(&check[..4]);
    format!("fks1-{}", BASE32_NOPAD.encode(&raw).to_ascii_lowercase())
}

/// Rotation wraps the same root key under new shares: the old shares stop working,
/// the new ones open everything that was sealed before.
#[test]
fn rotate_root_makes_new_shares_and_the_old_stop_working() {
    let db = TestDatabase::sqlite().unwrap();
    let inst = Install::new(&db, SHARES_CONFIG);
    let old = init_shares(&inst);
    let server = inst.serve(&[]);
    for s in [&old[0], &old[1], &old[2]] {
        server.unseal(s);
    }
    assert_eq!(server.get("/readyz", &[]).status, 200);
    let out = inst.run(
        &[
            "keys",
            "rotate-root",
            "--threshold",
            "2",
            "--holder",
            "Fia",
            "--holder",
            "Gun",
            "--holder",
            "Hans",
        ],
        &lines(&[&old[0], &old[1], &old[2]]),
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let new: Vec<String> = shares_of(&out).into_iter().map(|(_, s)| s).collect();
    assert_eq!(new.len(), 3);
    // No downtime: the running instance keeps its open keys.
    assert_eq!(server.get("/readyz", &[]).status, 200);
    // Sealed again, it wants the new shares: an old one belongs to another set.
    assert!(inst.run(&["seal"], "", &[]).status.success());
    wait_for("sealing", || server.get("/readyz", &[]).status == 503);
    let r = server.unseal(&old[3]);
    assert_eq!(r.json().unwrap()["code"], "other-set");
    for s in [&new[0], &new[1]] {
        server.unseal(s);
    }
    assert_eq!(server.get("/readyz", &[]).status, 200);
    drop(server);
    let out = inst.run(&["keys", "status"], &lines(&[&new[0], &new[2]]), &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("custody: shares, generation 2")
            && text(&out.stdout).contains("2 of 3: Fia, Gun, Hans"),
        "{}",
        text(&out.stdout)
    );
    let out = inst.run(
        &["audit", "verify"],
        &lines(&[&old[0], &old[1], &old[2]]),
        &[],
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("another set of shares"),
        "{}",
        text(&out.stderr)
    );
    let out = inst.run(&["audit", "verify"], &lines(&[&new[1], &new[2]]), &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("audit trail ok"),
        "{}",
        text(&out.stdout)
    );
}

/// A backup restored on a new machine with nothing but the archive, the configuration
/// and three holders' shares; and a key file converted into shares.
#[test]
fn a_backup_is_restored_on_a_new_machine_with_the_shares_only() {
    let db = TestDatabase::sqlite().unwrap();
    let inst = Install::new(&db, SHARES_CONFIG);
    let shares = init_shares(&inst);
    let archive = inst.data.parent().unwrap().join("backup.fkb");
    let out = inst.run(
        &["backup", "--out", archive.to_str().unwrap()],
        &lines(&[&shares[0], &shares[1], &shares[2]]),
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let bytes = std::fs::read(&archive).unwrap();
    for s in &shares {
        assert!(
            !text(&bytes).contains(s.as_str()),
            "no share in the archive"
        );
    }

    let fresh_db = TestDatabase::postgres().unwrap();
    let fresh = Install::new(&fresh_db, SHARES_CONFIG);
    let out = fresh.run(
        &["restore", "--from", archive.to_str().unwrap()],
        &lines(&[&shares[4], &shares[1], &shares[3]]),
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("audit trail ok"),
        "{}",
        text(&out.stdout)
    );
    let server = fresh.serve(&[]);
    assert_eq!(
        server.get("/readyz", &[]).status,
        503,
        "a restored instance starts sealed"
    );
    for s in [&shares[0], &shares[2], &shares[4]] {
        server.unseal(s);
    }
    assert_eq!(server.get("/readyz", &[]).status, 200);

    // Without shares a restore changes nothing.
    let empty_db = TestDatabase::sqlite().unwrap();
    let other = Install::new(&empty_db, SHARES_CONFIG);
    let out = other.run(
        &["restore", "--from", archive.to_str().unwrap()],
        &lines(&[&shares[0]]),
        &[],
    );
    assert!(!out.status.success());
}

#[test]
fn a_key_file_is_converted_into_shares_and_deleted() {
    let db = TestDatabase::sqlite().unwrap();
    let file = Install::new(&db, "");
    let out = file.run(&["init"], "", &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(file.data.join("root.key").exists());
    // The configuration must name where the key goes.
    let out = file.run(
        &["keys", "custody", "--threshold", "2", "--shares", "3"],
        "",
        &[],
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("provider"),
        "{}",
        text(&out.stderr)
    );
    // Configured for shares: the key file is read one last time, wrapped, and deleted.
    std::fs::write(
        &file.config,
        format!("[log]\nlevel = \"warn\"\n\n{SHARES_CONFIG}"),
    )
    .unwrap();
    let out = file.run(
        &["keys", "custody", "--threshold", "2", "--shares", "3"],
        "",
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shares: Vec<String> = shares_of(&out).into_iter().map(|(_, s)| s).collect();
    assert_eq!(shares.len(), 3);
    assert!(
        !file.data.join("root.key").exists(),
        "the key file is deleted"
    );
    let out = file.run(&["audit", "verify"], &lines(&[&shares[0], &shares[2]]), &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("audit trail ok"),
        "{}",
        text(&out.stdout)
    );
    // Back to the file provider: refused, the database's key is kept in shares now.
    std::fs::write(&file.config, "[log]\nlevel = \"warn\"\n").unwrap();
    let out = file.run(&["audit", "verify"], "", &[]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("kept by shares"),
        "{}",
        text(&out.stderr)
    );
}

/// Two instances on one PostgreSQL database unseal independently.
#[test]
fn two_instances_unseal_independently() {
    let db = TestDatabase::postgres().unwrap();
    let a = Install::new(&db, SHARES_CONFIG);
    let shares = init_shares(&a);
    let b = Install::new(&db, SHARES_CONFIG);
    let sa = a.serve(&[]);
    let sb = b.serve(&[]);
    for s in [&shares[0], &shares[1], &shares[2]] {
        sa.unseal(s);
    }
    assert_eq!(sa.get("/readyz", &[]).status, 200);
    assert_eq!(
        sb.get("/readyz", &[]).status,
        503,
        "the other instance is still sealed"
    );
    let out = b.run(&["unseal"], &format!("{}\n", shares[3]), &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("1 of 3"),
        "{}",
        text(&out.stderr)
    );
}

/// The root key wrapped by a key inside SoftHSM2 that cannot leave it.
#[test]
fn pkcs11_keeps_the_custody_key_in_the_hsm() {
    pkcs11_flow(&TestDatabase::sqlite().unwrap());
}

#[test]
fn pkcs11_keeps_the_custody_key_in_the_hsm_on_postgres() {
    pkcs11_flow(&TestDatabase::postgres().unwrap());
}

fn pkcs11_flow(db: &TestDatabase) {
    let hsm = SoftHsm::start("fiktiv-test").unwrap();
    let (env_name, conf) = hsm.env();
    let env = [(env_name, conf.as_path())];
    let inst = Install::new(db, &hsm.fiktiv_config());
    let out = inst.run(&["init"], "", &env);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!inst.data.join("root.key").exists());
    let out = inst.run(&["keys", "status"], "", &env);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("custody: pkcs11, generation 1, HSM key fiktiv-custody-1 in token fiktiv-test: sensitive, not extractable"),
        "{}",
        text(&out.stdout)
    );
    // The HSM opens it at start: no sealed state, ready at once.
    let server = inst.serve(&env);
    wait_for("ready", || server.get("/readyz", &[]).status == 200);
    drop(server);

    // Rotation: a new HSM key, the old one destroyed, everything still opens.
    let out = inst.run(&["keys", "rotate-root"], "", &env);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = inst.run(&["keys", "status"], "", &env);
    assert!(
        text(&out.stdout).contains("generation 2, HSM key fiktiv-custody-2"),
        "{}",
        text(&out.stdout)
    );
    let out = inst.run(&["audit", "verify"], "", &env);
    assert!(out.status.success(), "{}", text(&out.stderr));

    // Without the HSM (another, empty token), nothing opens, with one clear line.
    let other = SoftHsm::start("fiktiv-test").unwrap();
    let (n2, c2) = other.env();
    let out = inst.run(&["audit", "verify"], "", &[(n2, c2.as_path())]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("no key labelled \"fiktiv-custody-2\""),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    // A wrong PIN is refused with one line and no PIN in it.
    std::fs::write(hsm.pin_file(), "000000\n").unwrap();
    let out = inst.run(&["audit", "verify"], "", &env);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("refused the PIN"), "{err}");
    assert!(
        !err.contains("000000") && !err.contains(fiktiv_tests::SOFTHSM_USER_PIN),
        "{err}"
    );
}

/// The sealed state in a real browser: every page says it is sealed, the unseal page
/// takes one share at a time (accessible, no share shown back), and after the third
/// the sign-in page answers.
#[test]
fn a_browser_meets_the_sealed_service_and_three_holders_unseal_it() {
    use crate::support::web::Browser;
    let db = TestDatabase::sqlite().unwrap();
    let inst = Install::new(&db, SHARES_CONFIG);
    let shares = init_shares(&inst);
    let server = inst.serve(&[]);
    let base = format!("http://{}", server.addr);
    let b = Browser::start();
    b.goto(&format!("{base}/cases"));
    assert!(b.exists("#sealed-unavailable"), "{}", b.source());
    b.assert_accessible("the page a sealed service shows for any route");
    b.goto(&format!("{base}/unseal"));
    assert!(b.exists("#unseal-progress"), "{}", b.source());
    b.assert_accessible("the unseal page");
    for (i, s) in [&shares[1], &shares[3]].into_iter().enumerate() {
        b.fill("#share", s);
        b.click("button[type=submit]");
        assert!(b.exists("#unseal-outcome"), "{}", b.source());
        assert!(
            b.text_of("#unseal-progress")
                .contains(&format!("{}", i + 1)),
            "{}",
            b.text_of("#unseal-progress")
        );
        assert!(
            !b.source().contains(s.as_str()),
            "the share is never shown back"
        );
    }
    b.screenshot_for_docs("unseal.png");
    // A typing error is refused with a message, and the count stays.
    b.fill("#share", "fks1-not-a-share");
    b.click("button[type=submit]");
    assert!(b.exists("#unseal-outcome[role=alert]"), "{}", b.source());
    b.assert_accessible("the unseal page with a refused share");
    b.fill("#share", &shares[0]);
    b.click("button[type=submit]");
    assert!(b.exists("#unseal-open"), "{}", b.source());
    b.click("a[href='/signin']");
    assert!(b.url().ends_with("/signin"), "{}", b.url());
    assert!(!b.exists("#sealed-unavailable"), "{}", b.source());
}

/// A running `fiktiv serve` may not write a core dump: its core size limit is 0, soft
/// and hard (read from /proc while it runs).
#[test]
fn the_service_cannot_dump_core() {
    let db = TestDatabase::sqlite().unwrap();
    let inst = Install::new(&db, SHARES_CONFIG);
    init_shares(&inst);
    let server = inst.serve(&[]);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.child.id())).unwrap();
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap();
    let fields: Vec<&str> = core.split_whitespace().collect();
    assert_eq!(&fields[4..6], ["0", "0"], "{core}");
}

/// The systemd unit forbids core dumps as well (read from the unit file).
#[test]
fn the_systemd_unit_forbids_core_dumps() {
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/systemd/fiktiv.service"),
    )
    .unwrap();
    assert!(
        unit.lines().any(|l| l.trim() == "LimitCORE=0"),
        "deploy/systemd/fiktiv.service must set LimitCORE=0"
    );
    assert!(unit.lines().any(|l| l.trim() == "UMask=0077"));
}
