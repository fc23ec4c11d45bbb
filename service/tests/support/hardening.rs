//! Shared setup of the hardening suites: the real `fiktiv` binary (CLI and `serve`) on a
//! data directory, with every byte it writes to stdout and stderr kept; a blocking API
//! client that records every response (status, headers, body); and the canary scanner
//! that looks for every written form of a real identity in bytes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)] // tests

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use fiktiv_tests::HttpResponse;
use serde_json::Value;

// ---------------------------------------------------------------------------
// The binary
// ---------------------------------------------------------------------------

/// One CLI run's command line, stdout and stderr.
pub type CliOutput = (String, Vec<u8>, Vec<u8>);

/// One data directory and configuration file, used by CLI runs and `serve` alike.
pub struct Fiktiv {
    pub dir: tempfile::TempDir,
    pub data: PathBuf,
    pub config: PathBuf,
    /// `FIKTIV_DATABASE_URL` for every run (None: the embedded SQLite database).
    pub db_url: Option<String>,
    /// `RUST_LOG` for every run.
    pub log_level: String,
    /// Everything CLI runs printed: (command, stdout, stderr).
    pub cli_output: Mutex<Vec<CliOutput>>,
    serves: Mutex<u32>,
}

impl Fiktiv {
    pub fn new(config_toml: &str, db_url: Option<&str>, log_level: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let config = dir.path().join("fiktiv.toml");
        std::fs::write(&config, config_toml).unwrap();
        std::fs::create_dir_all(dir.path().join("logs")).unwrap();
        Self {
            data,
            config,
            db_url: db_url.map(str::to_owned),
            log_level: log_level.to_owned(),
            dir,
            cli_output: Mutex::new(Vec::new()),
            serves: Mutex::new(0),
        }
    }

    fn command(&self) -> Command {
        let mut c = crate::support::launch::fiktiv(&self.data, Some(&self.config), &[]);
        c.env("RUST_LOG", &self.log_level);
        match &self.db_url {
            Some(url) => c.env("FIKTIV_DATABASE_URL", url),
            None => c.env_remove("FIKTIV_DATABASE_URL"),
        };
        c
    }

    /// Runs a command to its end; its output is kept for the scans.
    pub fn cli(&self, args: &[&str]) -> Output {
        let out = self.command().args(args).output().unwrap();
        self.cli_output.lock().unwrap().push((
            args.join(" "),
            out.stdout.clone(),
            out.stderr.clone(),
        ));
        out
    }

    /// Runs a command that must succeed; returns its stdout.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "fiktiv {}: {}\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `fiktiv tokens create ...`: the secret.
    pub fn token(&self, args: &[&str]) -> String {
        self.cli_ok(&[&["tokens", "create"][..], args].concat())
            .trim()
            .to_owned()
    }

    /// Starts `fiktiv serve` on `port`. stdout and stderr go to files under `logs/`,
    /// one pair per start, kept for the scans. Does not wait for readiness.
    pub fn spawn_serve(&self, port: u16) -> Server {
        let n = {
            let mut s = self.serves.lock().unwrap();
            *s += 1;
            *s
        };
        let logs = self.dir.path().join("logs");
        let out = File::create(logs.join(format!("serve-{n:03}.stdout"))).unwrap();
        let err = File::create(logs.join(format!("serve-{n:03}.stderr"))).unwrap();
        let child = self
            .command()
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap();
        Server {
            child: Some(child),
            port,
        }
    }

    /// Starts `fiktiv serve` and waits until `/healthz` answers.
    pub fn serve(&self, port: u16) -> Server {
        let mut s = self.spawn_serve(port);
        s.wait_ready(Duration::from_secs(60));
        s
    }

    /// Every serve log file: (file name, bytes). `ext` is `stdout` or `stderr`.
    pub fn serve_logs(&self, ext: &str) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        let mut entries: Vec<_> = std::fs::read_dir(self.dir.path().join("logs"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == ext))
            .collect();
        entries.sort();
        for p in entries {
            out.push((
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            ));
        }
        out
    }

    /// The embedded SQLite database file (when no URL is set).
    pub fn sqlite_path(&self) -> PathBuf {
        self.data.join("fiktiv.db")
    }
}

/// A running `fiktiv serve`. Dropping it kills it (SIGKILL).
pub struct Server {
    child: Option<Child>,
    pub port: u16,
}

impl Server {
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Polls `/healthz` until it answers 200; fails the test after `limit`.
    pub fn wait_ready(&mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(r) = fiktiv_tests::http::request(self.addr(), "GET", "/healthz", &[], None) {
                if r.status == 200 {
                    return;
                }
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("fiktiv serve exited during start-up: {status}");
            }
            assert!(Instant::now() < deadline, "fiktiv serve did not come up");
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// SIGKILL, and reap the process.
    pub fn kill(mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM (graceful shutdown: logs flushed, worker stopped); SIGKILL after 30 s.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().unwrap();
        let st = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = c.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                panic!("fiktiv serve did not stop on SIGTERM within 30 s");
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

// ---------------------------------------------------------------------------
// The API client
// ---------------------------------------------------------------------------

/// One request and its whole response.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub method: String,
    pub path: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// One of the two places a real identity may be shown: the school's own identity
    /// page and an approved reveal that is read.
    pub allowed: bool,
}

/// A blocking client of `fiktiv serve` that keeps every response.
pub struct Client {
    pub port: u16,
    pub exchanges: Mutex<Vec<Exchange>>,
}

impl Client {
    pub fn new(port: u16) -> Self {
        Self {
            port,
            exchanges: Mutex::new(Vec::new()),
        }
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Any request; `Err` when the connection failed (no response to record).
    pub fn try_raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        allowed: bool,
    ) -> anyhow::Result<HttpResponse> {
        let r = fiktiv_tests::http::request(self.addr(), method, path, headers, body)?;
        self.exchanges.lock().unwrap().push(Exchange {
            method: method.to_owned(),
            path: path.to_owned(),
            status: r.status,
            headers: r.headers.clone(),
            body: r.body.clone(),
            allowed,
        });
        Ok(r)
    }

    pub fn raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> HttpResponse {
        self.try_raw(method, path, headers, body, false).unwrap()
    }

    fn send(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<&Value>,
        allowed: bool,
    ) -> anyhow::Result<(u16, Value)> {
        let auth = format!("Bearer {token}");
        let mut headers = vec![("Authorization", auth.as_str())];
        if body.is_some() {
            headers.push(("Content-Type", "application/json"));
        }
        let bytes = body.map(|b| serde_json::to_vec(b).unwrap());
        let r = self.try_raw(method, path, &headers, bytes.as_deref(), allowed)?;
        if r.status >= 400 {
            assert_eq!(
                r.header("content-type"),
                Some("application/problem+json"),
                "{method} {path}: {}",
                r.text()
            );
        }
        Ok((
            r.status,
            serde_json::from_slice(&r.body).unwrap_or(Value::Null),
        ))
    }

    /// A JSON call with a bearer token: (status, body or Null).
    pub fn call(&self, token: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.send(token, method, path, body.as_ref(), false)
            .unwrap()
    }

    /// Like [`Self::call`], `Err` when the connection failed.
    pub fn try_call(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, Value)> {
        self.send(token, method, path, body, false)
    }

    /// A call whose response may show a real identity (see [`Exchange::allowed`]).
    pub fn call_allowed(&self, token: &str, method: &str, path: &str) -> (u16, Value) {
        self.send(token, method, path, None, true).unwrap()
    }

    /// A call that must answer `want`; returns the body.
    pub fn ok(
        &self,
        want: u16,
        token: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Value {
        let (s, v) = self.call(token, method, path, body);
        assert_eq!(s, want, "{method} {path}: {v}");
        v
    }
}

// ---------------------------------------------------------------------------
// Canaries
// ---------------------------------------------------------------------------

/// Every written form of a set of real identities, and a scanner for them.
#[derive(Default)]
pub struct Canaries {
    /// (what it is, lower-cased bytes); never printed with its value.
    needles: Vec<(String, Vec<u8>)>,
    /// (what it is, folded name) matched against folded text.
    folded: Vec<(String, String)>,
}

/// A real identity planted as a canary.
pub struct RealPerson {
    pub label: &'static str,
    pub country: &'static str,
    /// The number as it is sent (any written form).
    pub number: String,
    pub first: &'static str,
    pub last: &'static str,
    pub birth: &'static str,
}

impl Canaries {
    pub fn add(&mut self, p: &RealPerson) {
        let today = chrono::NaiveDate::from_ymd_opt(2030, 1, 1).unwrap();
        let parsed = fiktiv_vault::ids::PersonalNumber::parse(&p.number, today).unwrap();
        let mut forms: Vec<String> = parsed
            .written_forms()
            .iter()
            .map(|z| z.as_str().to_owned())
            .collect();
        if p.country == "no" {
            let c = parsed.canonical();
            forms.push(format!("{}-{}", &c[..6], &c[6..]));
        }
        for f in forms.clone() {
            forms.push(f.replace('+', "%2B").replace(' ', "%20"));
            forms.push(f.replace(' ', "+"));
        }
        for f in forms {
            self.push(format!("{} number", p.label), f.into_bytes());
        }
        // The birth date alone, as ISO and Norwegian-style text.
        let b = chrono::NaiveDate::parse_from_str(p.birth, "%Y-%m-%d").unwrap();
        self.push(
            format!("{} birth date", p.label),
            b.format("%Y-%m-%d").to_string().into_bytes(),
        );
        self.push(
            format!("{} birth date", p.label),
            b.format("%d.%m.%Y").to_string().into_bytes(),
        );
        for (part, name) in [("first name", p.first), ("last name", p.last)] {
            self.add_name(&format!("{} {part}", p.label), name);
        }
        self.add_name(
            &format!("{} full name", p.label),
            &format!("{} {}", p.first, p.last),
        );
    }

    fn add_name(&mut self, what: &str, name: &str) {
        use unicode_normalization::UnicodeNormalization as _;
        let nfc: String = name.nfc().collect();
        let nfd: String = name.nfd().collect();
        for (form, s) in [("NFC", &nfc), ("NFD", &nfd)] {
            for (case, v) in [
                ("as written", s.clone()),
                ("lower case", s.to_lowercase()),
                ("upper case", s.to_uppercase()),
            ] {
                let label = format!("{what}, {form}, {case}");
                self.push(label.clone(), v.clone().into_bytes());
                self.push(
                    format!("{label}, JSON \\u-escaped"),
                    json_escape(&v).into_bytes(),
                );
                self.push(
                    format!("{label}, percent-encoded"),
                    percent(&v).into_bytes(),
                );
                self.push(
                    format!("{label}, LDAP hex-escaped"),
                    ldap_hex(&v).into_bytes(),
                );
            }
        }
        let f = fold(name);
        assert!(f.len() >= 8, "a canary name must fold to 8+ letters");
        self.folded.push((format!("{what}, folded to ASCII"), f));
    }

    fn push(&mut self, what: String, needle: Vec<u8>) {
        let lower = String::from_utf8(needle)
            .unwrap()
            .to_lowercase()
            .into_bytes();
        if !self.needles.iter().any(|(_, n)| *n == lower) {
            self.needles.push((what, lower));
        }
    }

    /// How many forms are searched.
    pub fn forms(&self) -> usize {
        self.needles.len() + self.folded.len()
    }

    /// The forms found in `bytes`: their descriptions, never the values.
    pub fn scan(&self, bytes: &[u8]) -> Vec<String> {
        let text = String::from_utf8_lossy(bytes);
        let lower = text.to_lowercase();
        let hay = lower.as_bytes();
        let mut found: Vec<String> = self
            .needles
            .iter()
            .filter(|(_, n)| super::bytes_contain(hay, n))
            .map(|(w, _)| w.clone())
            .collect();
        let folded = fold(&text);
        found.extend(
            self.folded
                .iter()
                .filter(|(_, f)| folded.contains(f.as_str()))
                .map(|(w, _)| w.clone()),
        );
        found
    }
}

/// Non-ASCII characters as `\uXXXX` (UTF-16 units), as Python's json and others write.
fn json_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut buf = [0u16; 2];
            for u in c.encode_utf16(&mut buf) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    out
}

fn percent(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn ldap_hex(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() {
            out.push(b as char);
        } else {
            out.push_str(&format!("\\{b:02x}"));
        }
    }
    out
}

/// Hard folding like the blind index: NFKD, marks dropped, lower case, ø→o, æ→ae, ß→ss,
/// and only letters and digits kept.
pub fn fold(s: &str) -> String {
    use unicode_normalization::char::is_combining_mark;
    use unicode_normalization::UnicodeNormalization as _;
    let mut out = String::new();
    for c in s.nfkd().filter(|c| !is_combining_mark(*c)) {
        for l in c.to_lowercase() {
            match l {
                'ø' => out.push('o'),
                'æ' => out.push_str("ae"),
                'ß' => out.push_str("ss"),
                'đ' | 'ð' => out.push('d'),
                'þ' => out.push_str("th"),
                'ł' => out.push('l'),
                l if l.is_alphanumeric() => out.push(l),
                _ => {}
            }
        }
    }
    out
}

/// LDIF with `attr:: base64` values decoded and folded lines joined, so that a scan
/// sees the values as text.
pub fn ldif_decoded(ldif: &str) -> String {
    use base64::Engine as _;
    let mut lines: Vec<String> = Vec::new();
    for l in ldif.lines() {
        if let Some(rest) = l.strip_prefix(' ') {
            if let Some(last) = lines.last_mut() {
                last.push_str(rest);
                continue;
            }
        }
        lines.push(l.to_owned());
    }
    let mut out = String::new();
    for l in lines {
        if let Some((attr, b64)) = l.split_once(":: ") {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .unwrap_or_else(|_| panic!("LDIF base64 value of {attr} does not decode"));
            out.push_str(attr);
            out.push_str(": ");
            out.push_str(&String::from_utf8_lossy(&bytes));
        } else {
            out.push_str(&l);
        }
        out.push('\n');
    }
    out
}

/// Every regular file under `dir`, recursively: (path, bytes).
pub fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else if p.is_file() {
            out.push((p.clone(), std::fs::read(&p).unwrap()));
        }
    }
    out.sort();
    out
}

// ---------------------------------------------------------------------------
// The report
// ---------------------------------------------------------------------------

/// One channel searched: what, how many bytes, what was found, and a positive control
/// (something that must be there, so an empty or wrong capture cannot pass).
pub struct Channel {
    pub name: String,
    pub bytes: usize,
    pub items: usize,
    pub found: Vec<String>,
    pub control: Option<(&'static str, bool)>,
}

#[derive(Default)]
pub struct Report {
    pub channels: Vec<Channel>,
}

impl Report {
    /// Scan `parts` (one channel, maybe several files or messages) for the canaries.
    /// `control`: a marker that must be present in the channel.
    pub fn check(
        &mut self,
        canaries: &Canaries,
        name: impl Into<String>,
        parts: &[Vec<u8>],
        control: Option<&'static str>,
    ) {
        let mut found = Vec::new();
        let mut bytes = 0;
        for p in parts {
            bytes += p.len();
            for f in canaries.scan(p) {
                if !found.contains(&f) {
                    found.push(f);
                }
            }
        }
        let control = control.map(|c| {
            let lc = c.to_lowercase();
            (
                c,
                parts.iter().any(|p| {
                    super::bytes_contain(
                        String::from_utf8_lossy(p).to_lowercase().as_bytes(),
                        lc.as_bytes(),
                    )
                }),
            )
        });
        self.channels.push(Channel {
            name: name.into(),
            bytes,
            items: parts.len(),
            found,
            control,
        });
    }

    /// Prints the table and fails on any finding, any empty channel or any failed
    /// positive control.
    pub fn assert_clean(&self) {
        eprintln!(
            "\n{:<4} {:<72} {:>6} {:>11}  {:<8} control",
            "#", "channel", "items", "bytes", "canaries"
        );
        let mut bad = Vec::new();
        for (i, c) in self.channels.iter().enumerate() {
            let control = match &c.control {
                Some((m, true)) => format!("found {m:?}"),
                Some((m, false)) => format!("MISSING {m:?}"),
                None => "-".into(),
            };
            let verdict = if c.found.is_empty() {
                "none".to_owned()
            } else {
                format!("FOUND {}", c.found.len())
            };
            eprintln!(
                "{:<4} {:<72} {:>6} {:>11}  {:<8} {control}",
                i + 1,
                c.name,
                c.items,
                c.bytes,
                verdict
            );
            if !c.found.is_empty() {
                bad.push(format!("{}: canary found: {:?}", c.name, c.found));
            }
            if c.bytes == 0 {
                bad.push(format!("{}: nothing captured", c.name));
            }
            if matches!(c.control, Some((_, false))) {
                bad.push(format!("{}: positive control missing", c.name));
            }
        }
        eprintln!();
        assert!(bad.is_empty(), "{}", bad.join("\n"));
    }
}
