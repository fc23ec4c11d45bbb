//! Shared setup of the browser tests: the real `fiktiv serve` on a free port with a
//! temporary data directory, accounts made through the real CLI, TOTP codes computed
//! here from the printed secret (RFC 6238 by hand with ring's HMAC-SHA1, independent of
//! the totp-rs crate the service uses), and a small W3C WebDriver client over the
//! harness's HTTP client driving Debian's headless Chromium through chromedriver.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)] // tests

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

// ---------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------

pub struct Server {
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: Child,
}

/// Credentials printed by `fiktiv users add`.
#[derive(Debug, Clone)]
pub struct Creds {
    pub name: String,
    pub password: String,
    pub secret: String,
}

impl Server {
    /// `fiktiv init`, then `fiktiv serve` with `web_config` as the `[web]` table.
    pub fn start(web_config: &str) -> Server {
        let mut dir = tempfile::Builder::new()
            .prefix("fiktiv-web-")
            .tempdir()
            .unwrap();
        std::fs::write(
            dir.path().join("fiktiv.toml"),
            format!("[log]\nformat = \"text\"\nlevel = \"warn\"\n\n[web]\n{web_config}\n"),
        )
        .unwrap();
        let init = fiktiv_cmd(dir.path(), &["init"]).output().unwrap();
        assert!(init.status.success(), "{}", text(&init.stderr));
        for _ in 0..5 {
            let port = fiktiv_tests::free_port().unwrap();
            let log = std::fs::File::create(dir.path().join("serve.log")).unwrap();
            let child = fiktiv_cmd(
                dir.path(),
                &["serve", "--listen", &format!("127.0.0.1:{port}")],
            )
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
            let mut server = Server { port, dir, child };
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if server.child.try_wait().unwrap().is_some() {
                    break;
                }
                if server.get("/healthz").is_ok_and(|r| r.status == 200) {
                    return server;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let log = std::fs::read_to_string(server.dir.path().join("serve.log")).unwrap();
            if !log.contains("in use") {
                panic!("fiktiv serve did not start: {log}");
            }
            let _ = server.child.kill();
            let _ = server.child.wait();
            dir = std::mem::replace(&mut server.dir, tempfile::tempdir().unwrap());
        }
        panic!("no free port for fiktiv serve")
    }

    /// `fiktiv init`, then `fiktiv serve` on `port` with `config` as the whole
    /// configuration file (for a peer that must know the address first, such as an
    /// OpenID provider's redirect URI). `None` when the port was taken meanwhile.
    pub fn start_on(port: u16, config: &str) -> Option<Server> {
        let dir = tempfile::Builder::new()
            .prefix("fiktiv-web-")
            .tempdir()
            .unwrap();
        std::fs::write(dir.path().join("fiktiv.toml"), config).unwrap();
        let init = fiktiv_cmd(dir.path(), &["init"]).output().unwrap();
        assert!(init.status.success(), "{}", text(&init.stderr));
        let log = std::fs::File::create(dir.path().join("serve.log")).unwrap();
        let child = fiktiv_cmd(
            dir.path(),
            &["serve", "--listen", &format!("127.0.0.1:{port}")],
        )
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
        let mut server = Server { port, dir, child };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if server.child.try_wait().unwrap().is_some() {
                break;
            }
            if server.get("/healthz").is_ok_and(|r| r.status == 200) {
                return Some(server);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = server.log();
        assert!(log.contains("in use"), "fiktiv serve did not start: {log}");
        None
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn get(&self, path: &str) -> anyhow::Result<fiktiv_tests::HttpResponse> {
        fiktiv_tests::http::request(self.addr(), "GET", path, &[], None)
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> fiktiv_tests::HttpResponse {
        fiktiv_tests::http::request(self.addr(), method, path, headers, body).unwrap()
    }

    /// Run the CLI against this server's data directory and configuration.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        fiktiv_cmd(self.dir.path(), args).output().unwrap()
    }

    /// Run the CLI with extra environment variables (a secret a command reads).
    pub fn cli_env(&self, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
        let mut c = fiktiv_cmd(self.dir.path(), args);
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    }

    /// `fiktiv users add`; parses the printed credentials.
    pub fn add_user(&self, name: &str, roles: &[&str], units: &[&str]) -> Creds {
        let mut args = vec!["users", "add", "--name", name];
        for r in roles {
            args.extend(["--role", r]);
        }
        for u in units {
            args.extend(["--unit", u]);
        }
        let out = self.cli(&args);
        assert!(out.status.success(), "{}", text(&out.stderr));
        parse_creds(&text(&out.stdout))
    }

    /// The audit events (actor, action, outcome, purpose), oldest first.
    pub fn audit(&self) -> Vec<(String, String, String, Option<String>)> {
        let url = format!(
            "sqlite://{}?mode=ro",
            self.dir.path().join("data/fiktiv.db").display()
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            use sqlx::Row;
            sqlx::any::install_default_drivers();
            let pool = sqlx::AnyPool::connect(&url).await.unwrap();
            let rows = sqlx::query(
                "SELECT actor, action, outcome, purpose FROM audit_events ORDER BY seq",
            )
            .fetch_all(&pool)
            .await
            .unwrap();
            let out = rows
                .iter()
                .map(|r| {
                    (
                        r.get::<String, _>("actor"),
                        r.get::<String, _>("action"),
                        r.get::<String, _>("outcome"),
                        r.get::<Option<String>, _>("purpose"),
                    )
                })
                .collect();
            pool.close().await;
            out
        })
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn fiktiv_cmd(dir: &Path, args: &[&str]) -> Command {
    let mut c =
        crate::support::launch::fiktiv(&dir.join("data"), Some(&dir.join("fiktiv.toml")), args);
    c.env_remove("RUST_LOG");
    c
}

pub use crate::support::launch::text;

pub fn parse_creds(out: &str) -> Creds {
    let field = |k: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(k))
            .unwrap_or_else(|| panic!("no {k} in {out}"))
            .trim()
            .to_owned()
    };
    let secret = field("totp-secret:");
    assert!(field("totp-uri:").starts_with("otpauth://totp/Fiktiv:"));
    Creds {
        name: field("name:"),
        password: field("one-time-password:"),
        secret,
    }
}

// ---------------------------------------------------------------------------
// TOTP, by hand (RFC 6238 / RFC 4226)
// ---------------------------------------------------------------------------

fn base32_decode(s: &str) -> Vec<u8> {
    const ALPHA: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bits = 0u64;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.trim_end_matches('=').bytes() {
        let v = ALPHA.iter().position(|&a| a == c).expect("base32") as u64;
        bits = (bits << 5) | v;
        n += 5;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    out
}

/// The code of the step `offset` steps from now (the server accepts -1..=1).
pub fn totp(secret_b32: &str, offset: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    totp_at(secret_b32, now + offset * 30)
}

/// The code at Unix time `unix_secs`.
pub fn totp_at(secret_b32: &str, unix_secs: i64) -> String {
    let step = (unix_secs / 30) as u64;
    let key = ring::hmac::Key::new(
        ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        &base32_decode(secret_b32),
    );
    let mac = ring::hmac::sign(&key, &step.to_be_bytes());
    let h = mac.as_ref();
    let off = (h[19] & 0x0f) as usize;
    let bin = ((u32::from(h[off]) & 0x7f) << 24)
        | (u32::from(h[off + 1]) << 16)
        | (u32::from(h[off + 2]) << 8)
        | u32::from(h[off + 3]);
    format!("{:06}", bin % 1_000_000)
}

/// A code that is wrong now (and for the steps either side).
pub fn wrong_totp(secret_b32: &str) -> String {
    let valid: Vec<String> = (-1..=1).map(|o| totp(secret_b32, o)).collect();
    (0..1_000_000)
        .map(|i| format!("{:06}", (i * 7919 + 123_457) % 1_000_000))
        .find(|c| !valid.contains(c))
        .unwrap()
}

#[test]
fn totp_by_hand_matches_rfc6238() {
    // RFC 6238 appendix B, SHA-1, T = 59 s: 94287082 (6 digits: 287082).
    let key = ring::hmac::Key::new(
        ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        b"12345678901234567890",
    );
    let mac = ring::hmac::sign(&key, &1u64.to_be_bytes());
    let h = mac.as_ref();
    let off = (h[19] & 0x0f) as usize;
    let bin = ((u32::from(h[off]) & 0x7f) << 24)
        | (u32::from(h[off + 1]) << 16)
        | (u32::from(h[off + 2]) << 8)
        | u32::from(h[off + 3]);
    assert_eq!(bin % 1_000_000, 287_082);
    assert_eq!(base32_decode("GEZDGNBV"), b"12345");
}

// ---------------------------------------------------------------------------
// WebDriver (W3C) over the harness's HTTP client
// ---------------------------------------------------------------------------

const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Browser {
    driver: Child,
    addr: SocketAddr,
    session: String,
    profile: tempfile::TempDir,
}

impl Browser {
    pub fn start() -> Browser {
        let chromium = fiktiv_tests::chromium_path().unwrap();
        let chromedriver = fiktiv_tests::chromedriver_path().unwrap();
        let profile = tempfile::Builder::new()
            .prefix("fiktiv-chromium-")
            .tempdir()
            .unwrap();
        let port = fiktiv_tests::free_port().unwrap();
        let log = profile.path().join("chromedriver.log");
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        // Owned from here on, so a failed start still ends chromedriver (Drop).
        let mut b = Browser {
            driver,
            addr,
            session: String::new(),
            profile,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = wd_request(addr, "GET", "/status", None)
                .is_ok_and(|(_, v)| v["value"]["ready"] == json!(true));
            if ready {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut args: Vec<String> = fiktiv_tests::CHROMIUM_HEADLESS_ARGS
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.push(format!(
            "--user-data-dir={}",
            b.profile.path().join("profile").display()
        ));
        args.push("--window-size=1280,900".into());
        args.push("--lang=sv".into());
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": args,
                "prefs": {"intl.accept_languages": "sv-SE,sv"}
            }
        }}});
        let v = b.call("POST", "/session", Some(caps));
        b.session = v["sessionId"].as_str().expect("session id").to_owned();
        b
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let body = body.map(|b| serde_json::to_vec(&b).unwrap());
        let (status, v) = wd_request(self.addr, method, path, body.as_deref()).unwrap();
        assert!(
            status == 200,
            "WebDriver {method} {path}: {}",
            serde_json::to_string(&v).unwrap()
        );
        v["value"].clone()
    }

    fn s(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    pub fn goto(&self, url: &str) {
        self.call("POST", &self.s("/url"), Some(json!({ "url": url })));
    }

    pub fn url(&self) -> String {
        self.call("GET", &self.s("/url"), None)
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub fn title(&self) -> String {
        self.call("GET", &self.s("/title"), None)
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub fn source(&self) -> String {
        self.call("GET", &self.s("/source"), None)
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub fn find(&self, css: &str) -> String {
        let v = self.call(
            "POST",
            &self.s("/element"),
            Some(json!({"using": "css selector", "value": css})),
        );
        v[ELEMENT_KEY].as_str().unwrap().to_owned()
    }

    pub fn exists(&self, css: &str) -> bool {
        let v = self.call(
            "POST",
            &self.s("/elements"),
            Some(json!({"using": "css selector", "value": css})),
        );
        !v.as_array().unwrap().is_empty()
    }

    pub fn fill(&self, css: &str, value: &str) {
        let el = self.find(css);
        self.call(
            "POST",
            &self.s(&format!("/element/{el}/clear")),
            Some(json!({})),
        );
        self.call(
            "POST",
            &self.s(&format!("/element/{el}/value")),
            Some(json!({ "text": value })),
        );
    }

    /// Click something that submits a form, and wait for the next page to load.
    pub fn click(&self, css: &str) {
        let el = self.find(css);
        self.execute("document.documentElement.dataset.stale = '1';", json!([]));
        self.call(
            "POST",
            &self.s(&format!("/element/{el}/click")),
            Some(json!({})),
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let fresh = self.execute(
                "return document.readyState === 'complete' \
                 && document.documentElement.dataset.stale === undefined;",
                json!([]),
            );
            if fresh == json!(true) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no new page after clicking {css}"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// The page printed to PDF by the browser (WebDriver "Print Page"), with print
    /// media styles applied.
    pub fn print_pdf(&self) -> Vec<u8> {
        use base64::Engine as _;
        let v = self.call("POST", &self.s("/print"), Some(json!({"background": true})));
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap()
    }

    pub fn text_of(&self, css: &str) -> String {
        let el = self.find(css);
        self.call("GET", &self.s(&format!("/element/{el}/text")), None)
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub fn execute(&self, script: &str, args: Value) -> Value {
        self.call(
            "POST",
            &self.s("/execute/sync"),
            Some(json!({"script": script, "args": args})),
        )
    }

    pub fn execute_async(&self, script: &str, args: Value) -> Value {
        self.call(
            "POST",
            &self.s("/execute/async"),
            Some(json!({"script": script, "args": args})),
        )
    }

    /// The value of a cookie (also HttpOnly ones: WebDriver sees them).
    pub fn cookie(&self, name: &str) -> Option<String> {
        let v = self.call("GET", &self.s("/cookie"), None);
        v.as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == json!(name))
            .map(|c| c["value"].as_str().unwrap().to_owned())
    }

    pub fn screenshot(&self, path: &Path) {
        let v = self.call("GET", &self.s("/screenshot"), None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
    }

    /// Wait until the current URL path is `path` (after a form post and redirect).
    /// Waits until the page's path starts with `prefix` (a page whose id is not known).
    pub fn wait_for_path_prefix(&self, prefix: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let url = self.url();
            let here = url
                .split_once("://")
                .and_then(|(_, r)| r.find('/').map(|i| r[i..].to_owned()))
                .unwrap_or_default();
            if here.starts_with(prefix) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "still at {url}, wanted {prefix}…; page: {}",
                self.source()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn wait_for_path(&self, path: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let url = self.url();
            let here = url
                .split_once("://")
                .and_then(|(_, r)| r.find('/').map(|i| r[i..].to_owned()))
                .unwrap_or_default();
            if here == path {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "still at {url}, wanted {path}; page: {}",
                self.source()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Run axe-core (from tests/web/node_modules, `npm ci`) on the current page and
    /// fail on any serious or critical violation of WCAG 2.1 A/AA.
    pub fn assert_accessible(&self, what: &str) {
        let axe = axe_source();
        self.execute(&format!("{axe}\n;return true;"), json!([]));
        let v = self.execute_async(
            "const done = arguments[arguments.length - 1];\
             axe.run(document, {runOnly: {type: 'tag', values: \
               ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}})\
               .then(r => done(JSON.stringify(r.violations.map(v => ({id: v.id, impact: v.impact, \
                 help: v.help, nodes: v.nodes.map(n => n.target.join(' '))})))))\
               .catch(e => done('ERROR ' + e));",
            json!([]),
        );
        let s = v.as_str().unwrap();
        assert!(!s.starts_with("ERROR"), "axe failed on {what}: {s}");
        let violations: Vec<Value> = serde_json::from_str(s).unwrap();
        let bad: Vec<&Value> = violations
            .iter()
            .filter(|v| v["impact"] == json!("serious") || v["impact"] == json!("critical"))
            .collect();
        assert!(
            bad.is_empty(),
            "axe: serious/critical violations on {what}: {}",
            serde_json::to_string_pretty(&bad).unwrap()
        );
    }

    /// Save a screenshot into docs/screenshots/ when FIKTIV_SCREENSHOTS=1.
    pub fn screenshot_for_docs(&self, name: &str) {
        if std::env::var("FIKTIV_SCREENSHOTS").as_deref() == Ok("1") {
            let path = workspace_root().join("docs/screenshots").join(name);
            self.screenshot(&path);
        }
    }
}

/// One WebDriver request. chromedriver answers `Connection: close` but keeps the socket
/// open, so the body is read by its Content-Length rather than to the end.
fn wd_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
) -> std::io::Result<(u16, Value)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(120)))?;
    let body = body.unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )?;
    s.write_all(body)?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let (head_end, len) = loop {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::Error::other("connection closed before headers"));
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            break (i + 4, len);
        }
    };
    while buf.len() < head_end + len {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let status = String::from_utf8_lossy(&buf[..head_end])
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let v = serde_json::from_slice(&buf[head_end..(head_end + len).min(buf.len())])
        .map_err(std::io::Error::other)?;
    Ok((status, v))
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = wd_request(
                self.addr,
                "DELETE",
                &format!("/session/{}", self.session),
                None,
            );
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn axe_source() -> String {
    let path = workspace_root().join("tests/web/node_modules/axe-core/axe.min.js");
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run `scripts/install-deps` (it runs `npm ci` in tests/web)",
            path.display()
        )
    })
}

// ---------------------------------------------------------------------------
// Flows
// ---------------------------------------------------------------------------

/// Fill and send the sign-in form.
pub fn sign_in(b: &Browser, server: &Server, name: &str, password: &str, code: &str) {
    b.goto(&format!("{}/signin", server.base()));
    b.fill("#name", name);
    b.fill("#password", password);
    b.fill("#code", code);
    b.click("#signin-submit");
}

/// Sign in for the first time and choose a password; ends on the home page.
/// Uses the TOTP code of step `offset`; returns the new password and the code used.
pub fn first_sign_in(b: &Browser, server: &Server, c: &Creds, offset: i64) -> (String, String) {
    let code = totp(&c.secret, offset);
    sign_in(b, server, &c.name, &c.password, &code);
    b.wait_for_path("/password");
    let new = format!("{} chose this long passphrase", c.name);
    b.fill("#new_password", &new);
    b.fill("#confirm", &new);
    b.click("#password-submit");
    b.wait_for_path("/");
    (new, code)
}

/// A signed-in session, used over plain HTTP.
pub struct Session<'a> {
    server: &'a Server,
    pub cookie: String,
    pub csrf: String,
    _browser: Option<Browser>,
}

impl<'a> Session<'a> {
    pub fn sign_in(server: &'a Server, c: &Creds) -> Self {
        let b = Browser::start();
        first_sign_in(&b, server, c, 0);
        Self::of(server, b)
    }

    pub fn of(server: &'a Server, b: Browser) -> Self {
        let mut s = Self::of_page(server, &b);
        s._browser = Some(b);
        s
    }

    /// The session of a browser that stays in the test's hands.
    pub fn of_page(server: &'a Server, b: &Browser) -> Self {
        let cookie = format!("__Host-fiktiv={}", b.cookie("__Host-fiktiv").unwrap());
        let home = server
            .request("GET", "/", &[("Cookie", &cookie)], None)
            .text();
        let csrf = home
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap()
            .to_owned();
        Self {
            server,
            cookie,
            csrf,
            _browser: None,
        }
    }

    pub fn get(&self, path: &str) -> fiktiv_tests::HttpResponse {
        self.server
            .request("GET", path, &[("Cookie", &self.cookie)], None)
    }

    pub fn post(&self, path: &str, body: &str) -> fiktiv_tests::HttpResponse {
        let body = if body.is_empty() {
            format!("csrf={}", self.csrf)
        } else {
            format!("csrf={}&{body}", self.csrf)
        };
        self.post_raw(path, &body, &[])
    }

    pub fn post_raw(
        &self,
        path: &str,
        body: &str,
        extra: &[(&str, &str)],
    ) -> fiktiv_tests::HttpResponse {
        let mut h = vec![
            ("Cookie", self.cookie.as_str()),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ];
        h.extend_from_slice(extra);
        self.server.request("POST", path, &h, Some(body.as_bytes()))
    }
}
