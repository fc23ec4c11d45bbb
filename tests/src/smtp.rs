//! A throw-away SMTP server: `tests/smtp/smtp-server.py` on aiosmtpd (PyPI, in the
//! repository's `.venv`), listening on a free loopback port.
//!
//! Like a municipality's mail relay it requires STARTTLS (with a certificate from a
//! throw-away CA, [`SmtpServer::ca_file`]) and AUTH with one user over TLS. Every
//! message it accepts is written to its directory; [`SmtpServer::wait_for`] reads them
//! back, with the envelope, whether TLS was on and which login sent it.

use std::io::{BufRead as _, BufReader};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use tempfile::TempDir;

use crate::process::{spawn_logged, terminate, wait_ready, with_log, POLL_INTERVAL};
use crate::slapd::make_certificates;
use crate::{free_port, peer_dir, workspace_root, INSTALL_HINT};

/// Generous: a loaded machine (CI beside other builds) can be slow to start Python.
const START_TIMEOUT: Duration = Duration::from_secs(300);
const STOP_GRACE: Duration = Duration::from_secs(10);
const START_ATTEMPTS: usize = 5;

/// One message the server accepted.
#[derive(Debug, Clone)]
pub struct Mail {
    /// The message as received (headers and body), without the test headers.
    pub raw: String,
    /// `RCPT TO` addresses.
    pub envelope_to: Vec<String>,
    /// `MAIL FROM`.
    pub envelope_from: String,
    /// The session was under TLS (STARTTLS).
    pub tls: bool,
    /// The login the client authenticated as (`none` if it did not).
    pub auth: String,
}

impl Mail {
    /// The header `name` with RFC 2047 encoded words (`=?utf-8?b?...?=`, `?q?`)
    /// decoded.
    pub fn decoded_header(&self, name: &str) -> Option<String> {
        self.header(name).map(|v| decode_words(&v))
    }

    /// The body, decoded from its `Content-Transfer-Encoding` (base64,
    /// quoted-printable, or as sent).
    pub fn body_text(&self) -> String {
        let body = self
            .raw
            .split_once("\r\n\r\n")
            .map(|(_, b)| b)
            .unwrap_or("");
        let cte = self
            .header("Content-Transfer-Encoding")
            .unwrap_or_default()
            .to_ascii_lowercase();
        match cte.as_str() {
            "base64" => {
                use base64::Engine as _;
                let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
                base64::engine::general_purpose::STANDARD
                    .decode(compact)
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default()
            }
            "quoted-printable" => decode_qp(body, false),
            _ => body.to_owned(),
        }
    }

    /// Everything a reader could see: the decoded headers and the decoded body, and the
    /// message as received.
    pub fn readable(&self) -> String {
        let head = self.raw.split("\r\n\r\n").next().unwrap_or_default();
        format!("{}\n{}\n{}", decode_words(head), self.body_text(), self.raw)
    }

    /// The value of the first header `name` (case-insensitive), unfolded.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.raw.split("\r\n\r\n").next().unwrap_or_default();
        let mut lines = head.split("\r\n").peekable();
        while let Some(line) = lines.next() {
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            if k.eq_ignore_ascii_case(name) {
                let mut value = v.trim().to_owned();
                while let Some(next) = lines.peek() {
                    if next.starts_with(' ') || next.starts_with('\t') {
                        value.push(' ');
                        value.push_str(next.trim());
                        lines.next();
                    } else {
                        break;
                    }
                }
                return Some(value);
            }
        }
        None
    }
}

/// A running SMTP server. Stops it and removes its directory on drop.
#[derive(Debug)]
pub struct SmtpServer {
    port: u16,
    user: String,
    password: String,
    outdir: PathBuf,
    ca: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    // Last, so that it is removed after Drop::drop stopped the process.
    dir: TempDir,
}

fn find_python() -> anyhow::Result<PathBuf> {
    let venv = workspace_root().join(".venv/bin/python");
    if !venv.is_file() {
        bail!(
            "{} not found (the SMTP peer runs aiosmtpd from it); {INSTALL_HINT}",
            venv.display()
        );
    }
    Ok(venv)
}

impl SmtpServer {
    /// Starts a server and waits until it greets. Errors (never skips) if Python or
    /// aiosmtpd is missing.
    pub fn start() -> anyhow::Result<Self> {
        let python = find_python()?;
        let script = workspace_root().join("tests/smtp/smtp-server.py");
        let dir = peer_dir("fiktiv-smtp-")?;
        let tls = make_certificates(dir.path())?;
        let outdir = dir.path().join("mail");
        std::fs::create_dir(&outdir).context("creating the mail directory")?;
        let log = dir.path().join("smtp-server.log");
        let user = "fiktiv-relay".to_owned();
        let password = uuid::Uuid::new_v4().simple().to_string();
        let mut last_err = None;
        for _ in 0..START_ATTEMPTS {
            let port = free_port()?;
            let mut cmd = Command::new(&python);
            cmd.arg(&script)
                .args(["--port", &port.to_string()])
                .arg("--cert")
                .arg(&tls.cert)
                .arg("--key")
                .arg(&tls.key)
                .args(["--user", &user, "--password", &password])
                .arg("--outdir")
                .arg(&outdir);
            let mut child = spawn_logged(&mut cmd, &log)?;
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            match wait_ready("smtp-server", &mut child, &log, START_TIMEOUT, || {
                greets(addr)
            }) {
                Ok(()) => {
                    return Ok(SmtpServer {
                        port,
                        user,
                        password,
                        outdir,
                        ca: tls.ca,
                        log,
                        child: Some(child),
                        dir,
                    })
                }
                Err(e) => {
                    let _ = terminate(&mut child, "TERM", STOP_GRACE);
                    let in_use = std::fs::read_to_string(&log)
                        .map(|l| l.contains("cannot listen"))
                        .unwrap_or(false);
                    if !in_use {
                        return Err(e);
                    }
                    last_err = Some(e);
                }
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow!("smtp-server did not start")))
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The PEM file of the CA that issued the server's certificate (for `localhost`
    /// and 127.0.0.1).
    pub fn ca_file(&self) -> &Path {
        &self.ca
    }

    /// The one login the server accepts.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Its password.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The temporary directory (certificates, log, messages).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's log (one line per stored message).
    pub fn log(&self) -> String {
        with_log(&self.log)
    }

    /// Every message accepted so far, in the order received.
    pub fn messages(&self) -> anyhow::Result<Vec<Mail>> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&self.outdir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        names.sort();
        names.iter().map(|p| parse_stored(p)).collect()
    }

    /// Waits until at least `n` messages have arrived (or `timeout` passes: an error
    /// quoting the server's log), and returns all of them.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> anyhow::Result<Vec<Mail>> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.messages()?;
            if got.len() >= n {
                return Ok(got);
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} of {n} messages arrived within {timeout:?}; {}",
                    got.len(),
                    self.log()
                );
            }
            std::thread::sleep(POLL_INTERVAL * 4);
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = terminate(&mut child, "TERM", STOP_GRACE);
        }
    }
}

/// Whether something on `addr` answers with an SMTP greeting.
fn greets(addr: SocketAddr) -> bool {
    let Ok(stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(5)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).is_ok() && line.starts_with("220")
}

fn parse_stored(path: &Path) -> anyhow::Result<Mail> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let mut mail = Mail {
        raw: String::new(),
        envelope_to: Vec::new(),
        envelope_from: String::new(),
        tls: false,
        auth: String::new(),
    };
    let mut rest = text.as_str();
    while let Some((line, after)) = rest.split_once("\r\n") {
        let Some(v) = line.strip_prefix("X-Test-") else {
            break;
        };
        if let Some(x) = v.strip_prefix("Envelope-From: ") {
            mail.envelope_from = x.to_owned();
        } else if let Some(x) = v.strip_prefix("Envelope-To: ") {
            mail.envelope_to.push(x.to_owned());
        } else if let Some(x) = v.strip_prefix("Tls: ") {
            mail.tls = x == "yes";
        } else if let Some(x) = v.strip_prefix("Auth: ") {
            mail.auth = x.to_owned();
        }
        rest = after;
    }
    // aiosmtpd keeps the message's own line endings (CR LF on the wire).
    mail.raw = rest.to_owned();
    Ok(mail)
}

/// Quoted-printable (RFC 2045; `underscore` for RFC 2047's Q encoding).
fn decode_qp(s: &str, underscore: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'=' if bytes.get(i + 1..i + 3) == Some(b"\r\n") => i += 3,
            b'=' if bytes.get(i + 1) == Some(&b'\n') => i += 2,
            b'=' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'=');
                        i += 1;
                    }
                }
            }
            b'_' if underscore => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// RFC 2047 encoded words in a header value, decoded (UTF-8 only, as Fiktiv sends).
/// Whitespace between two adjacent encoded words is dropped, as the RFC says.
fn decode_words(s: &str) -> String {
    use base64::Engine as _;
    let mut out = String::new();
    let mut rest = s;
    let mut after_word = false;
    while let Some(start) = rest.find("=?") {
        let gap = &rest[..start];
        let after = &rest[start + 2..];
        let parts: Vec<&str> = after.splitn(3, '?').collect();
        let decoded = match parts.as_slice() {
            [_charset, enc, tail] => tail.find("?=").map(|end| {
                let text = &tail[..end];
                let d = match enc.to_ascii_lowercase().as_str() {
                    "b" => base64::engine::general_purpose::STANDARD
                        .decode(text)
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .unwrap_or_default(),
                    _ => decode_qp(text, true),
                };
                (d, &tail[end + 2..])
            }),
            _ => None,
        };
        match decoded {
            Some((d, tail)) => {
                if !(after_word && gap.trim().is_empty()) {
                    out.push_str(gap);
                }
                out.push_str(&d);
                rest = tail;
                after_word = true;
            }
            None => {
                out.push_str(gap);
                out.push_str("=?");
                rest = after;
                after_word = false;
            }
        }
    }
    out.push_str(rest);
    out
}
