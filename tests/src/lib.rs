//! Harness for end-to-end tests: starts real peers on free loopback ports and cleans up.
//!
//! Every peer is a real server, never a mock:
//!
//! | peer | type | started how |
//! |---|---|---|
//! | OpenLDAP | [`Slapd`] | `/usr/sbin/slapd` from a throw-away `slapd.conf` (back_mdb) |
//! | SCIM 2.0 | [`ScimServer`] | `scim2-server` from the repo's `.venv` (PyPI) |
//! | PostgreSQL | [`TestDatabase::postgres`] | a fresh database on the server in `FIKTIV_TEST_DATABASE_URL` |
//! | SQLite | [`TestDatabase::sqlite`] | a file in a temporary directory |
//! | Chromium | [`chromium_path`], [`chromedriver_path`] | Debian's `chromium` / `chromium-driver` |
//! | OpenID provider | [`OidcProvider`] | node-oidc-provider (npm `oidc-provider`) from `tests/web/oidc-provider.mjs` |
//! | SMTP relay | [`SmtpServer`] | `tests/smtp/smtp-server.py` on aiosmtpd (PyPI, `.venv`): STARTTLS and AUTH required |
//! | HSM (PKCS#11) | [`SoftHsm`] | a SoftHSM2 token in its own directory (`softhsm2-util --init-token`) |
//! | OpenAPI proxy | [`Prism`] | `@stoplight/prism-cli` (npm) in proxy mode from `tests/web/node_modules`: checks every request and response against a document |
//! | SS 12000 hub | [`TestHub`] | the project's own server (axum) over a seeded municipality; every answer validated by `openapi-core` (PyPI, `.venv`) against `../shared/ss12000/` |
//!
//! [`FaultProxy`] sits in front of a peer (slapd over TCP, scim2-server over HTTP) and
//! injects faults: dropped connections, cut or slow responses, refused connections,
//! 5xx and 429 answers. It also records every byte on the wire.
//!
//! A peer that cannot be found or started is an **error** whose message says how to
//! install it (`scripts/install-deps`); tests never skip. Each peer lives in its own
//! temporary directory, holding its configuration, its data and a log file with the
//! process's stdout and stderr; a start-up failure quotes the last lines of that log.
//! Dropping the handle stops the process and removes the directory. Set
//! `FIKTIV_TEST_KEEP_DIRS=1` to keep the directories for debugging (their paths are
//! printed on stderr). Ports come from [`free_port`], so tests run in parallel.
//!
//! See `docs/TESTING.md` for the whole picture.

mod chromium;
mod database;
mod faultproxy;
pub mod http;
mod oidc;
mod port;
mod prism;
mod process;
mod scim;
mod slapd;
mod smtp;
mod softhsm;
mod ss12000_hub;

pub use chromium::{chromedriver_path, chromium_path, CHROMIUM_HEADLESS_ARGS};
pub use database::{TestDatabase, DATABASE_URL_ENV};
pub use faultproxy::{Fault, FaultProxy, ProxyStats, MAX_DELAY, RECORDING_CAP};
pub use http::HttpResponse;
pub use oidc::{OidcClient, OidcProvider, NODE_ENV};
pub use port::free_port;
pub use prism::Prism;
pub use scim::ScimServer;
pub use slapd::{Slapd, SlapdBuilder, DEFAULT_SUFFIX};
pub use smtp::{Mail, SmtpServer};
pub use softhsm::{SoftHsm, SOFTHSM_USER_PIN};
pub use ss12000_hub::{
    ss12000_spec_path, validate_answers, Answer, HubFault, MarkedPupil, TestHub, HUB_BASE_PATH,
    HUB_CLIENT_ID,
};

use std::path::PathBuf;

/// The hint every "peer not found" error carries.
pub(crate) const INSTALL_HINT: &str =
    "run `scripts/install-deps` as root from the repository root (see docs/TESTING.md)";

/// The repository root (the Cargo workspace), resolved at compile time.
pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

/// Whether `FIKTIV_TEST_KEEP_DIRS` asks to keep the peers' directories after the test.
pub(crate) fn keep_dirs() -> bool {
    matches!(
        std::env::var("FIKTIV_TEST_KEEP_DIRS").as_deref(),
        Ok("1") | Ok("true") | Ok("yes")
    )
}

/// A temporary directory for one peer, kept on drop if `FIKTIV_TEST_KEEP_DIRS` is set.
pub(crate) fn peer_dir(prefix: &str) -> anyhow::Result<tempfile::TempDir> {
    use anyhow::Context as _;
    let mut dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .context("creating a temporary directory for a test peer")?;
    if keep_dirs() {
        dir.disable_cleanup(true);
        eprintln!(
            "fiktiv-tests: keeping {} (FIKTIV_TEST_KEEP_DIRS)",
            dir.path().display()
        );
    }
    Ok(dir)
}
