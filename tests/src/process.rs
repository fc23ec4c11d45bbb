//! Child processes of the peers: logging, readiness polling and termination.

use std::fs::OpenOptions;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

/// How often readiness is polled.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// How many log lines a start-up error quotes.
pub(crate) const LOG_TAIL_LINES: usize = 40;

/// Spawns `cmd` with stdin closed and stdout and stderr appended to `log`.
pub(crate) fn spawn_logged(cmd: &mut Command, log: &Path) -> anyhow::Result<Child> {
    let out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening log file {}", log.display()))?;
    let err = out.try_clone().context("duplicating a log file handle")?;
    cmd.stdin(Stdio::null()).stdout(out).stderr(err);
    cmd.spawn()
        .with_context(|| format!("spawning {:?}", cmd.get_program()))
}

/// The last `lines` lines of a log file (at most the last 64 KiB are read).
pub fn log_tail(path: &Path, lines: usize) -> String {
    let read = || -> std::io::Result<String> {
        let mut file = std::fs::File::open(path)?;
        let len = file.metadata()?.len();
        file.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    match read() {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            let start = all.len().saturating_sub(lines);
            all[start..].join("\n")
        }
        Err(e) => format!("(could not read {}: {e})", path.display()),
    }
}

/// The current length of a log file (0 if it does not exist yet).
pub(crate) fn log_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// What was appended to a log file after byte `offset`.
pub(crate) fn log_since(path: &Path, offset: u64) -> String {
    let read = || -> std::io::Result<Vec<u8>> {
        let mut file = std::fs::File::open(path)?;
        file.seek(SeekFrom::Start(offset))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(bytes)
    };
    read()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// An error message block quoting the tail of a log.
pub(crate) fn with_log(path: &Path) -> String {
    let kept = if crate::keep_dirs() {
        ""
    } else {
        " (removed when the test ends; FIKTIV_TEST_KEEP_DIRS=1 keeps it)"
    };
    format!(
        "last lines of {}{kept}:\n{}",
        path.display(),
        log_tail(path, LOG_TAIL_LINES)
    )
}

/// Sends `signal` (a name such as `TERM` or `INT`) to `child`, waits up to `grace` for
/// it to exit, then kills it. Reaps the child in every case. Never panics.
pub(crate) fn terminate(child: &mut Child, signal: &str, grace: Duration) -> anyhow::Result<()> {
    if child.try_wait()?.is_some() {
        return Ok(());
    }
    // `sh -c kill` rather than a `kill` binary: dash's builtin is on every Debian, procps
    // is not, and sending a signal from Rust without `unsafe` needs a helper anyway.
    let _ = Command::new("sh")
        .arg("-c")
        .arg(format!("kill -s {signal} \"$0\""))
        .arg(child.id().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if child.try_wait()?.is_some() {
            return Ok(());
        }
        std::thread::sleep(POLL_INTERVAL);
    }
    let _ = child.kill();
    child.wait().context("waiting for a killed peer")?;
    Ok(())
}

/// Polls `ready` every [`POLL_INTERVAL`] until it returns `Ok(true)`, the child exits
/// (error), or `timeout` passes (error). Errors quote the tail of `log`.
pub(crate) fn wait_ready(
    what: &str,
    child: &mut Child,
    log: &Path,
    timeout: Duration,
    mut ready: impl FnMut() -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            bail!(
                "{what} exited during start-up ({status}); {}",
                with_log(log)
            );
        }
        if ready() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(anyhow::Error::new(NotReady {
                what: what.to_owned(),
                timeout,
            })
            .context(with_log(log)));
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// A peer that was still starting when its deadline passed (not one that exited).
#[derive(Debug)]
pub(crate) struct NotReady {
    what: String,
    timeout: Duration,
}

impl std::fmt::Display for NotReady {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} was not ready after {:?}", self.what, self.timeout)
    }
}

impl std::error::Error for NotReady {}

/// Whether `e` says a peer hung during start-up ([`NotReady`]).
pub(crate) fn is_not_ready(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<NotReady>().is_some())
}

/// Whether a start-up failure was the port being taken by someone else.
pub(crate) fn log_says_address_in_use(log: &Path) -> bool {
    let tail = log_tail(log, LOG_TAIL_LINES);
    tail.contains("Address already in use") || tail.contains("errno=98")
}

/// Finds an executable: the first existing file of `candidates`, else `name` on `PATH`.
pub(crate) fn find_executable(name: &str, candidates: &[PathBuf]) -> Option<PathBuf> {
    if let Some(found) = candidates.iter().find(|p| p.is_file()) {
        return Some(found.clone());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Whether this process runs as root (uid 0), read from `/proc/self/status`.
pub(crate) fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|uid| uid == "0"))
        })
        .unwrap_or(false)
}

/// How an HTTP peer (scim2-server, oidc-provider) is started: on a fresh free port,
/// retried a few times when another process took the port in the meantime.
pub(crate) struct HttpPeer<'a> {
    /// The peer's name in messages.
    pub what: &'a str,
    pub log: &'a Path,
    /// Answers `ready_status` once the peer is ready.
    pub ready_path: &'a str,
    /// 200 for most peers; a proxy that needs a token answers 401 once it is up.
    pub ready_status: u16,
    pub start_timeout: Duration,
    pub stop_grace: Duration,
    pub attempts: usize,
}

impl HttpPeer<'_> {
    /// Starts the command `command(port)` builds and waits until `GET ready_path`
    /// answers `ready_status`. Returns the port and the running child; a child that fails to get
    /// ready is killed. `address_in_use` reads the log to tell a taken port (retried)
    /// from any other failure (returned).
    pub(crate) fn start(
        &self,
        mut command: impl FnMut(u16) -> Command,
        address_in_use: impl Fn(&Path) -> bool,
    ) -> anyhow::Result<(u16, Child)> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = crate::free_port()?;
            match self.spawn(port, &mut command(port)) {
                Ok(child) => return Ok((port, child)),
                Err(e) if attempt < self.attempts && address_in_use(self.log) => {
                    eprintln!(
                        "fiktiv-tests: {} port {port} taken, retrying: {e:#}",
                        self.what
                    );
                }
                // A start that hangs (seen once in CI: node stopped after loading its
                // modules and printed nothing for 300 s, where it takes under a second
                // on a quiet machine) is killed and started again on a fresh port. A
                // peer that exits with an error is not retried: that is a real failure.
                Err(e) if attempt < self.attempts && is_not_ready(&e) => {
                    eprintln!(
                        "fiktiv-tests: {} on port {port} hung during start-up, starting it again: {e:#}",
                        self.what
                    );
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn spawn(&self, port: u16, cmd: &mut Command) -> anyhow::Result<Child> {
        let mut child = spawn_logged(cmd, self.log).with_context(|| {
            format!(
                "starting {}; {}",
                cmd.get_program().to_string_lossy(),
                crate::INSTALL_HINT
            )
        })?;
        let addr = std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, port));
        let ready = wait_ready(self.what, &mut child, self.log, self.start_timeout, || {
            crate::http::request(addr, "GET", self.ready_path, &[], None)
                .is_ok_and(|r| r.status == self.ready_status)
        });
        match ready {
            Ok(()) => Ok(child),
            Err(e) => {
                let _ = terminate(&mut child, "KILL", self.stop_grace);
                Err(e.context(format!("starting {} on port {port}", self.what)))
            }
        }
    }
}
