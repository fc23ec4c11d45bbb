//! Prism (`@stoplight/prism-cli` from npm) in proxy mode in front of an HTTP API: every
//! request and response that passes through is checked against an OpenAPI document,
//! and a violation is reported in the `sl-violations` header of the answer (with
//! `--errors`, a request that breaks the document is refused by Prism itself).
//!
//! Node.js is found as `$FIKTIV_NODE` or `node` on `PATH`; the package must be in
//! `tests/web/node_modules` (`scripts/install-deps` runs `npm ci` there). Stops on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use anyhow::bail;
use tempfile::TempDir;

use crate::oidc::find_node;
use crate::process::{log_says_address_in_use, log_tail, terminate, HttpPeer, LOG_TAIL_LINES};
use crate::{peer_dir, workspace_root, INSTALL_HINT};

const START_TIMEOUT: Duration = Duration::from_secs(180);
const STOP_GRACE: Duration = Duration::from_secs(10);
const START_ATTEMPTS: usize = 5;

/// A running Prism proxy.
#[derive(Debug)]
pub struct Prism {
    port: u16,
    log: PathBuf,
    child: Option<Child>,
    // Last, so that it is removed after Drop::drop stopped the process.
    _dir: TempDir,
}

fn script() -> anyhow::Result<PathBuf> {
    let p = workspace_root().join("tests/web/node_modules/@stoplight/prism-cli/dist/index.js");
    if !p.is_file() {
        bail!(
            "{} not found (@stoplight/prism-cli); {INSTALL_HINT}",
            p.display()
        );
    }
    Ok(p)
}

impl Prism {
    /// Prism proxying to `upstream` (a base URL the document's paths are appended to),
    /// checking against the OpenAPI document `spec`. Ready once `GET ready_path`
    /// answers `ready_status` through it (the upstream must be up).
    pub fn proxy(
        spec: &Path,
        upstream: &str,
        ready_path: &str,
        ready_status: u16,
    ) -> anyhow::Result<Self> {
        let node = find_node()?;
        let script = script()?;
        let dir = peer_dir("fiktiv-prism-")?;
        let log = dir.path().join("prism.log");
        let (port, child) = HttpPeer {
            what: "prism",
            log: &log,
            ready_path,
            ready_status,
            start_timeout: START_TIMEOUT,
            stop_grace: STOP_GRACE,
            attempts: START_ATTEMPTS,
        }
        .start(
            |port| {
                let mut cmd = Command::new(&node);
                cmd.arg(&script)
                    .arg("proxy")
                    .arg(spec)
                    .arg(upstream)
                    .arg("--host")
                    .arg("127.0.0.1")
                    .arg("--port")
                    .arg(port.to_string())
                    .arg("--errors")
                    .current_dir(workspace_root().join("tests/web"));
                cmd
            },
            |log| {
                log_says_address_in_use(log) || log_tail(log, LOG_TAIL_LINES).contains("EADDRINUSE")
            },
        )?;
        Ok(Self {
            port,
            log,
            child: Some(child),
            _dir: dir,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, self.port))
    }

    /// What Prism printed so far (its violation reports among it).
    pub fn log(&self) -> String {
        log_tail(&self.log, LOG_TAIL_LINES * 100)
    }
}

impl Drop for Prism {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Err(e) = terminate(&mut child, "TERM", STOP_GRACE) {
                eprintln!(
                    "fiktiv-tests: could not stop prism on port {}: {e:#}",
                    self.port
                );
            }
        }
    }
}
