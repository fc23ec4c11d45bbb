//! `[ss12000]`: where the hub is and how it is read. Every key is checked at startup;
//! each problem is one clear line. The secret (bearer token, or the OAuth client
//! secret) is never in this file: it comes from `FIKTIV_SS12000_SECRET` or is sealed
//! in the database (`fiktiv hub secret`), like a target's credential.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

use crate::reader::{HubAuth, HubConfig};

/// The environment variable that holds the hub secret (it wins over a sealed one).
pub const SECRET_ENV: &str = "FIKTIV_SS12000_SECRET";

/// Which code of a hub school unit is its unit code in Fiktiv.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UnitCodeFrom {
    /// `schoolUnitCode` (Skolverket's school unit code, 8 digits).
    #[default]
    SchoolUnitCode,
    /// `organisationCode` (the municipality's own code).
    OrganisationCode,
}

/// How Fiktiv authenticates to the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthKind {
    /// A static bearer token (the secret).
    #[default]
    Bearer,
    /// OAuth 2.0 client credentials: `token_url`, `client_id`, the secret.
    ClientCredentials,
}

/// `[ss12000]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ss12000Config {
    /// The hub's API base URL, up to the resources (`https://hub.kommun.example/v2.0`).
    pub base_url: String,
    #[serde(default)]
    pub auth: AuthKind,
    /// The OAuth 2.0 token endpoint (`auth = "client-credentials"`).
    pub token_url: Option<String>,
    /// The OAuth 2.0 client id (`auth = "client-credentials"`).
    pub client_id: Option<String>,
    /// The OAuth 2.0 scope to ask for, if the hub wants one.
    pub scope: Option<String>,
    /// A PEM file of CA certificates for the hub's TLS certificate.
    pub ca_file: Option<PathBuf>,
    /// Items per page asked for (1 to 10000; default 500).
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// Seconds one request may take (default 60).
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// Minutes between two reads of changes (default 15; 0: only on demand).
    #[serde(default = "default_every")]
    pub read_every_minutes: u64,
    /// Hours between two full reads (default 24).
    #[serde(default = "default_full_every")]
    pub full_read_every_hours: u64,
    /// Which hub code is a school unit's unit code in Fiktiv.
    #[serde(default)]
    pub unit_code_from: UnitCodeFrom,
    /// The feed (`/ss12000/v2`) answers 503 when the last good read is older than this
    /// (minutes, 1 to 1440; default 60).
    #[serde(default = "default_feed_max_age")]
    pub feed_max_age_minutes: u64,
}

fn default_feed_max_age() -> u64 {
    60
}

fn default_page_size() -> u32 {
    500
}
fn default_timeout() -> u64 {
    60
}
fn default_every() -> u64 {
    15
}
fn default_full_every() -> u64 {
    24
}

impl Ss12000Config {
    /// Checks every key; the first problem as one line.
    pub fn validate(&self) -> Result<(), String> {
        // The reader's own rule (a host that only starts like 127.0.0.1 is not loopback).
        let url_ok = |u: &str| u.starts_with("https://") || crate::reader::is_loopback_url(u);
        if !url_ok(&self.base_url) {
            return Err(
                "[ss12000] base_url must be https:// (http:// only to a loopback address)".into(),
            );
        }
        if !(1..=10_000).contains(&self.page_size) {
            return Err("[ss12000] page_size must be 1 to 10000".into());
        }
        if !(1..=600).contains(&self.timeout_secs) {
            return Err("[ss12000] timeout_secs must be 1 to 600".into());
        }
        if !(1..=24 * 7).contains(&self.full_read_every_hours) {
            return Err("[ss12000] full_read_every_hours must be 1 to 168".into());
        }
        if !(1..=24 * 60).contains(&self.feed_max_age_minutes) {
            return Err("[ss12000] feed_max_age_minutes must be 1 to 1440".into());
        }
        if self.read_every_minutes > 24 * 60 {
            return Err("[ss12000] read_every_minutes must be 0 to 1440".into());
        }
        if self.auth == AuthKind::ClientCredentials {
            match (&self.token_url, &self.client_id) {
                (Some(t), Some(c)) if url_ok(t) && !c.trim().is_empty() => {}
                _ => {
                    return Err("[ss12000] auth = \"client-credentials\" needs token_url (https://) and client_id".into())
                }
            }
        }
        if let Some(ca) = &self.ca_file {
            if !ca.is_file() {
                return Err(format!("[ss12000] ca_file {} does not exist", ca.display()));
            }
        }
        Ok(())
    }

    /// The reader's configuration with `secret`.
    pub fn reader(&self, secret: SecretString) -> HubConfig {
        let auth = match self.auth {
            AuthKind::Bearer => HubAuth::Bearer(secret),
            AuthKind::ClientCredentials => HubAuth::ClientCredentials {
                token_url: self.token_url.clone().unwrap_or_default(),
                client_id: self.client_id.clone().unwrap_or_default(),
                client_secret: secret,
                scope: self.scope.clone(),
            },
        };
        let mut cfg = HubConfig::new(&self.base_url, auth);
        cfg.ca_file = self.ca_file.clone();
        cfg.page_size = self.page_size;
        cfg.timeout = Duration::from_secs(self.timeout_secs);
        cfg
    }
}
