//! A throw-away SCIM 2.0 service provider: `scim2-server` from PyPI, in memory.
//!
//! It is found in this order: `$FIKTIV_SCIM2_SERVER`, the repository's
//! `.venv/bin/scim2-server` (made by `scripts/install-deps`), `scim2-server` on `PATH`.
//! It is started as `scim2-server --hostname 127.0.0.1 --port PORT --bearer-token TOKEN
//! --dump-resources FILE` with a random token, and stopped on drop.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use serde_json::{json, Value};
use tempfile::TempDir;

use crate::http::{self, HttpResponse};
use crate::process::{find_executable, log_says_address_in_use, terminate, with_log, HttpPeer};
use crate::{peer_dir, workspace_root, INSTALL_HINT};

/// The environment variable naming the scim2-server executable.
pub const SCIM2_SERVER_ENV: &str = "FIKTIV_SCIM2_SERVER";

/// The SCIM media type (RFC 7644, section 8.1).
const SCIM_JSON: &str = "application/scim+json";

/// Generous: a loaded machine (CI beside other builds) once needed more than 60 s.
const START_TIMEOUT: Duration = Duration::from_secs(300);
const STOP_GRACE: Duration = Duration::from_secs(10);
const START_ATTEMPTS: usize = 5;
/// The page size of [`ScimServer::dump`]; scim2-server's default `maxResults` is 1000.
const PAGE: usize = 1000;

/// A running scim2-server. Stops it and removes its directory on drop.
#[derive(Debug)]
pub struct ScimServer {
    port: u16,
    token: String,
    log: PathBuf,
    dump_file: PathBuf,
    child: Option<Child>,
    // Last, so that it is removed after Drop::drop stopped the process.
    dir: TempDir,
}

fn find_scim2_server() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os(SCIM2_SERVER_ENV) {
        let path = PathBuf::from(path);
        if !path.is_file() {
            bail!(
                "{SCIM2_SERVER_ENV}={} does not exist; unset it or {INSTALL_HINT}",
                path.display()
            );
        }
        return Ok(path);
    }
    let venv = workspace_root().join(".venv/bin/scim2-server");
    find_executable("scim2-server", std::slice::from_ref(&venv)).ok_or_else(|| {
        anyhow!(
            "scim2-server not found (not in ${SCIM2_SERVER_ENV}, {}, nor on PATH); {INSTALL_HINT}",
            venv.display()
        )
    })
}

impl ScimServer {
    /// Starts a server with a random bearer token and waits until it answers. Errors
    /// (never skips) if scim2-server is missing.
    pub fn start() -> anyhow::Result<Self> {
        let program = find_scim2_server()?;
        let dir = peer_dir("fiktiv-scim-")?;
        let mut server = ScimServer {
            port: 0,
            token: uuid::Uuid::new_v4().simple().to_string(),
            log: dir.path().join("scim2-server.log"),
            dump_file: dir.path().join("resources.json"),
            child: None,
            dir,
        };
        // `env --default-signal=INT`: scim2-server writes --dump-resources when SIGINT
        // interrupts it, and a shell that started `cargo test` in the background may
        // have left SIGINT ignored, which exec would pass on to Python.
        let (token, dump_file) = (server.token.clone(), server.dump_file.clone());
        let (port, child) = HttpPeer {
            what: "scim2-server",
            log: &server.log,
            ready_path: "/v2/ServiceProviderConfig",
            ready_status: 200,
            start_timeout: START_TIMEOUT,
            stop_grace: STOP_GRACE,
            attempts: START_ATTEMPTS,
        }
        .start(
            |port| {
                let mut cmd = Command::new("env");
                cmd.arg("--default-signal=INT")
                    .arg(&program)
                    .args(["--hostname", "127.0.0.1", "--port", &port.to_string()])
                    .args(["--bearer-token", &token, "--dump-resources"])
                    .arg(&dump_file);
                cmd
            },
            log_says_address_in_use,
        )?;
        server.port = port;
        server.child = Some(child);
        Ok(server)
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// `http://127.0.0.1:PORT/v2`, the base URL a SCIM client is configured with.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v2", self.port)
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The bearer token the server accepts.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The temporary directory (log and resource dump).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The log file: the server's stdout and stderr (one line per request).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The whole log so far.
    pub fn log(&self) -> anyhow::Result<String> {
        let bytes =
            std::fs::read(&self.log).with_context(|| format!("reading {}", self.log.display()))?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Sends a request with the bearer token. `path` is relative to [`Self::base_url`]
    /// (`/Users`, `/Users?filter=...`); a body is sent as `application/scim+json`.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<HttpResponse> {
        let auth = format!("Bearer {}", self.token);
        self.send(method, path, body, Some(&auth))
    }

    /// Like [`Self::request`] but with no `Authorization` header.
    pub fn request_without_token(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<HttpResponse> {
        self.send(method, path, body, None)
    }

    fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        authorization: Option<&str>,
    ) -> anyhow::Result<HttpResponse> {
        let mut headers = vec![("Accept", SCIM_JSON)];
        if body.is_some() {
            headers.push(("Content-Type", SCIM_JSON));
        }
        if let Some(auth) = authorization {
            headers.push(("Authorization", auth));
        }
        let body = body.map(serde_json::to_vec).transpose()?;
        http::request(
            self.addr(),
            method,
            &format!("/v2{path}"),
            &headers,
            body.as_deref(),
        )
    }

    /// Every resource the server holds now, read over HTTP with the token:
    /// `{"Users": [...], "Groups": [...]}` as pretty JSON.
    ///
    /// (scim2-server's own `--dump-resources` file is written only when it stops; see
    /// [`Self::stop_and_dump`].)
    pub fn dump(&self) -> anyhow::Result<String> {
        let users = self.list_all("/Users")?;
        let groups = self.list_all("/Groups")?;
        Ok(serde_json::to_string_pretty(
            &json!({ "Users": users, "Groups": groups }),
        )?)
    }

    /// All resources of one endpoint, following `startIndex` pages.
    pub fn list_all(&self, endpoint: &str) -> anyhow::Result<Vec<Value>> {
        let mut all = Vec::new();
        loop {
            let path = format!("{endpoint}?startIndex={}&count={PAGE}", all.len() + 1);
            let response = self.request("GET", &path, None)?;
            if response.status != 200 {
                bail!(
                    "GET {path}: status {}: {}",
                    response.status,
                    response.text()
                );
            }
            let page = response.json()?;
            let total = page
                .get("totalResults")
                .and_then(Value::as_u64)
                .ok_or_else(|| anyhow!("GET {path}: no totalResults in {page}"))?;
            let resources = match page.get("Resources") {
                Some(Value::Array(items)) => items.clone(),
                _ => Vec::new(),
            };
            let empty = resources.is_empty();
            all.extend(resources);
            if empty || all.len() as u64 >= total {
                return Ok(all);
            }
        }
    }

    /// Stops the server with SIGINT and returns the JSON file it wrote with
    /// `--dump-resources`: the server's own view of everything it held.
    pub fn stop_and_dump(mut self) -> anyhow::Result<String> {
        let mut child = self
            .child
            .take()
            .ok_or_else(|| anyhow!("scim2-server is not running"))?;
        terminate(&mut child, "INT", STOP_GRACE).context("stopping scim2-server")?;
        let text = std::fs::read_to_string(&self.dump_file).with_context(|| {
            format!(
                "reading {}; {}",
                self.dump_file.display(),
                with_log(&self.log)
            )
        })?;
        if text.is_empty() {
            bail!(
                "scim2-server left {} empty (was it killed before it could write?); {}",
                self.dump_file.display(),
                with_log(&self.log)
            );
        }
        Ok(text)
    }
}

impl Drop for ScimServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Err(e) = terminate(&mut child, "INT", STOP_GRACE) {
                eprintln!(
                    "fiktiv-tests: could not stop scim2-server on port {}: {e:#}",
                    self.port
                );
            }
        }
    }
}
