//! A throw-away OpenID Connect provider: node-oidc-provider (npm `oidc-provider`, by
//! panva) with its development login form, from `tests/web/oidc-provider.mjs`.
//!
//! Node.js is found as `$FIKTIV_NODE` or `node` on `PATH`; the package must be in
//! `tests/web/node_modules` (`scripts/install-deps` runs `npm ci` there). The provider
//! listens on a free port of 127.0.0.1 with the issuer `http://127.0.0.1:PORT`; it is
//! ready when its discovery document answers. It is stopped on drop.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use serde_json::{json, Value};
use tempfile::TempDir;

use crate::http;
use crate::process::{
    find_executable, log_says_address_in_use, log_tail, terminate, HttpPeer, LOG_TAIL_LINES,
};
use crate::{peer_dir, workspace_root, INSTALL_HINT};

/// The environment variable naming the `node` executable.
pub const NODE_ENV: &str = "FIKTIV_NODE";

/// Generous: a loaded machine (CI beside other builds) once needed more than 60 s. A
/// start that takes longer is taken as hung (once in CI, node printed nothing for 300 s
/// after loading its modules), killed and started again (see `HttpPeer::start`).
const START_TIMEOUT: Duration = Duration::from_secs(180);
const STOP_GRACE: Duration = Duration::from_secs(10);
const START_ATTEMPTS: usize = 5;
const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";

/// A client registered at the provider (confidential, authorization code flow).
#[derive(Debug, Clone)]
pub struct OidcClient {
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uris: Vec<String>,
}

/// A running node-oidc-provider. Stops it and removes its directory on drop.
#[derive(Debug)]
pub struct OidcProvider {
    port: u16,
    log: PathBuf,
    child: Option<Child>,
    // Last, so that it is removed after Drop::drop stopped the process.
    dir: TempDir,
}

pub(crate) fn find_node() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os(NODE_ENV) {
        let path = PathBuf::from(path);
        if !path.is_file() {
            bail!(
                "{NODE_ENV}={} does not exist; unset it or {INSTALL_HINT}",
                path.display()
            );
        }
        return Ok(path);
    }
    find_executable("node", &[]).ok_or_else(|| {
        anyhow!("node (Node.js) not found (not in ${NODE_ENV} nor on PATH); {INSTALL_HINT}")
    })
}

/// The provider script, after checking that the npm package is installed.
fn script() -> anyhow::Result<PathBuf> {
    let web = workspace_root().join("tests/web");
    let package = web.join("node_modules/oidc-provider/package.json");
    if !package.is_file() {
        bail!(
            "the npm package oidc-provider is not installed ({} is missing); {INSTALL_HINT} \
             (it runs `npm ci` in tests/web)",
            package.display()
        );
    }
    let script = web.join("oidc-provider.mjs");
    if !script.is_file() {
        bail!("{} is missing", script.display());
    }
    Ok(script)
}

impl OidcProvider {
    /// Starts a provider with these clients and accounts (login name → claims) and waits
    /// until its discovery document answers. Errors (never skips) if Node.js or the
    /// package is missing.
    pub fn start(clients: &[OidcClient], accounts: &Value) -> anyhow::Result<Self> {
        let node = find_node()?;
        let script = script()?;
        let dir = peer_dir("fiktiv-oidc-")?;
        let config = json!({
            "clients": clients.iter().map(|c| json!({
                "client_id": c.client_id,
                "client_secret": c.client_secret,
                "redirect_uris": c.redirect_uris,
            })).collect::<Vec<_>>(),
            "accounts": accounts,
        });
        let config_path = dir.path().join("config.json");
        std::fs::write(&config_path, serde_json::to_vec_pretty(&config)?)
            .with_context(|| format!("writing {}", config_path.display()))?;
        let mut provider = OidcProvider {
            port: 0,
            log: dir.path().join("oidc-provider.log"),
            child: None,
            dir,
        };
        let (port, child) = HttpPeer {
            what: "oidc-provider",
            log: &provider.log,
            ready_path: DISCOVERY_PATH,
            ready_status: 200,
            start_timeout: START_TIMEOUT,
            stop_grace: STOP_GRACE,
            attempts: START_ATTEMPTS,
        }
        .start(
            |port| {
                let mut cmd = Command::new(&node);
                cmd.arg(&script)
                    .arg(&config_path)
                    .arg(port.to_string())
                    .current_dir(workspace_root().join("tests/web"))
                    .env("NODE_ENV", "test");
                cmd
            },
            address_in_use,
        )?;
        provider.port = port;
        provider.child = Some(child);
        Ok(provider)
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// `http://127.0.0.1:PORT`: the issuer, as in its discovery document.
    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The discovery document.
    pub fn discovery(&self) -> anyhow::Result<Value> {
        let r = http::request(self.addr(), "GET", DISCOVERY_PATH, &[], None)?;
        if r.status != 200 {
            bail!("GET {DISCOVERY_PATH}: status {}", r.status);
        }
        r.json()
    }

    /// The temporary directory (configuration and log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The provider's stdout and stderr so far (its warnings and errors).
    pub fn log(&self) -> String {
        log_tail(&self.log, LOG_TAIL_LINES * 10)
    }
}

/// Node prints `EADDRINUSE` when the port is taken.
fn address_in_use(log: &Path) -> bool {
    log_says_address_in_use(log) || log_tail(log, LOG_TAIL_LINES).contains("EADDRINUSE")
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Err(e) = terminate(&mut child, "TERM", STOP_GRACE) {
                eprintln!(
                    "fiktiv-tests: could not stop oidc-provider on port {}: {e:#}",
                    self.port
                );
            }
        }
    }
}
