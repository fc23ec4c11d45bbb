//! Configuration: a TOML file (`--config FILE`), every table `deny_unknown_fields`,
//! with environment overrides for secrets and the database URL. Each problem is one
//! clear line at startup.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use fiktiv_policies::identity_rules::IdentityPolicy;
use fiktiv_policies::review::ReviewSettings;
use serde::Deserialize;

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub log: LogConfig,
    pub policies: PoliciesConfig,
    /// School-year calendars per country and the review windows.
    pub review: ReviewSettings,
    /// Rules for fictitious names and birth dates.
    pub identity: IdentityPolicy,
    pub reveal: RevealConfig,
    /// Cases moving between units and reopened (docs/LIFECYCLE.md).
    pub cases: CasesConfig,
    /// Case transfer packages between municipalities (docs/LIFECYCLE.md).
    pub transfer: fiktiv_routine::transfer::TransferConfig,
    pub tokens: TokensConfig,
    /// The web UI: sessions, sign-in limits.
    pub web: WebConfig,
    /// The provisioning worker, reconciliation and removal safety (docs/PROVISIONING.md).
    pub provisioning: fiktiv_delivery::config::ProvisioningConfig,
    /// Provisioning targets (`[[targets]]`); none: the embedded OneRoster folder.
    pub targets: Vec<fiktiv_delivery::config::TargetSpec>,
    /// Rate limits of the API: bad bearer tokens per address, reveal requests per person.
    pub limits: crate::limits::LimitsConfig,
    /// Who may read `/metrics` (off unless a token or addresses are configured).
    pub metrics: MetricsConfig,
    /// Key custody: who can open the root key (docs/KEY-CUSTODY.md).
    pub keys: KeysConfig,
    /// Notifications: in the app, and by e-mail through the municipality's SMTP server
    /// (docs/NOTIFICATIONS.md).
    pub notifications: NotificationsConfig,
    /// The school administration system (SS 12000 hub) Fiktiv reads (docs/SS12000.md);
    /// none: Fiktiv reads no hub.
    pub ss12000: Option<fiktiv_ss12000::config::Ss12000Config>,
}

/// `[notifications]`: how often Fiktiv looks for new things to do, and where it sends
/// mail. Without `[notifications.smtp]` everyone is told in the app only.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotificationsConfig {
    /// Seconds between two looks for new things to do (1 to 3600; default 60).
    pub interval_secs: u64,
    /// The web UI's address as staff reach it (`https://fiktiv.kommun.example`): the
    /// one link a mail holds. Needed with `[notifications.smtp]`.
    pub public_url: Option<String>,
    /// `[notifications.smtp]`: the municipality's mail relay.
    pub smtp: Option<SmtpConfig>,
}

impl Default for NotificationsConfig {
    fn default() -> Self {
        Self {
            interval_secs: 60,
            public_url: None,
            smtp: None,
        }
    }
}

/// How the connection to the mail relay is encrypted. There is no unencrypted mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS, which must succeed (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

/// `[notifications.smtp]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// The relay's host name, as its certificate names it.
    pub host: String,
    /// Default 587 with `starttls`, 465 with `tls`.
    pub port: Option<u16>,
    #[serde(default)]
    pub tls: SmtpTls,
    /// Trust only this CA (PEM) for the relay's certificate; default: the public roots.
    pub ca_file: Option<PathBuf>,
    /// Login at the relay, if it asks for one (with `password_file` or
    /// `FIKTIV_SMTP_PASSWORD`).
    pub username: Option<String>,
    /// A file (mode 0600) holding the relay password.
    pub password_file: Option<PathBuf>,
    /// The sender: `Fiktiv <noreply@kommun.example>` or a bare address.
    pub from: String,
    /// Seconds before a connection or a reply is given up (default 30).
    pub timeout_secs: Option<u64>,
}

/// The environment variable that holds the SMTP password (wins over the file).
pub const SMTP_PASSWORD_ENV: &str = "FIKTIV_SMTP_PASSWORD";

/// Reads a secret from a file that only its owner may read: one value, trimmed.
/// `what` names the setting in errors (`[keys.pkcs11] pin_file`).
pub fn read_secret_file(what: &str, path: &Path) -> Result<zeroize::Zeroizing<String>, String> {
    let shown = path.display();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).map_err(|e| format!("{what} {shown}: {e}"))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(format!(
                "{what} {shown} is readable by group or others (mode {mode:o}); run `chmod 600 {shown}`"
            ));
        }
    }
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(path).map_err(|e| format!("{what} {shown}: {e}"))?,
    );
    let value = text.trim();
    if value.is_empty() {
        return Err(format!("{what} {shown} is empty"));
    }
    Ok(zeroize::Zeroizing::new(value.to_owned()))
}

/// `[keys]`: the key custody provider.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    /// `file` (the default: `DATA_DIR/root.key`), `shares` (k of n key shares held by
    /// named people; the service starts sealed) or `pkcs11` (a key inside an HSM).
    pub provider: fiktiv_vault::custody::Provider,
    /// `[keys.pkcs11]`: needed with `provider = "pkcs11"`.
    pub pkcs11: Option<Pkcs11Config>,
}

/// `[keys.pkcs11]`: the PKCS#11 module, the token and a file holding the user PIN.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pkcs11Config {
    /// The PKCS#11 module, for example `/usr/lib/softhsm/libsofthsm2.so`.
    pub module: PathBuf,
    /// The token's label.
    pub token_label: String,
    /// A file (mode 0600) holding the token's user PIN.
    pub pin_file: PathBuf,
}

impl Pkcs11Config {
    /// The HSM settings, with the PIN read from `pin_file` (one line; mode 0600).
    pub fn settings(&self) -> Result<fiktiv_vault::custody::hsm::HsmSettings, String> {
        let pin = read_secret_file("[keys.pkcs11] pin_file", &self.pin_file)?;
        Ok(fiktiv_vault::custody::hsm::HsmSettings {
            module: self.module.clone(),
            token_label: self.token_label.clone(),
            pin: secrecy::SecretString::from(pin.as_str().to_owned()),
        })
    }
}

/// The environment variable that holds the metrics token (wins over the file).
pub const METRICS_TOKEN_ENV: &str = "FIKTIV_METRICS_TOKEN";

/// Access to `/metrics` on the service's listener. Without a token and without
/// addresses, `/metrics` answers 404.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// A bearer token the scraper sends (`Authorization: Bearer ...`), at least 32
    /// characters. `FIKTIV_METRICS_TOKEN` wins over the file.
    pub token: Option<String>,
    /// Client addresses allowed without the token: IP addresses or CIDR blocks, for
    /// example `["127.0.0.1", "10.1.2.0/24"]`. The address is the TCP peer's: behind a
    /// reverse proxy on the same host every request comes from the proxy.
    pub allow_from: Vec<String>,
}

impl std::fmt::Debug for MetricsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsConfig")
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .field("allow_from", &self.allow_from)
            .finish()
    }
}

/// An address block of `[metrics] allow_from`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpBlock {
    addr: std::net::IpAddr,
    prefix: u8,
}

impl IpBlock {
    /// `192.0.2.1`, `192.0.2.0/24`, `::1`, `2001:db8::/32`.
    pub fn parse(s: &str) -> Option<Self> {
        let (a, p) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let addr: std::net::IpAddr = a.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max)?,
            None => max,
        };
        Some(Self { addr, prefix })
    }

    /// Whether `ip` is in the block (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(a) & mask == u32::from(b) & mask
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(a) & mask == u128::from(b) & mask
            }
            _ => false,
        }
    }
}

/// The checked access rules of `/metrics`.
#[derive(Clone, Default)]
pub struct MetricsAccess {
    pub token: Option<zeroize::Zeroizing<String>>,
    pub allow_from: Vec<IpBlock>,
}

impl std::fmt::Debug for MetricsAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsAccess")
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .field("allow_from", &self.allow_from)
            .finish()
    }
}

impl MetricsAccess {
    /// Whether `/metrics` is served at all.
    pub fn enabled(&self) -> bool {
        self.token.is_some() || !self.allow_from.is_empty()
    }
}

impl MetricsConfig {
    /// The access rules, with `FIKTIV_METRICS_TOKEN` applied. One line per problem.
    pub fn access(&self) -> Result<MetricsAccess, String> {
        let env = std::env::var(METRICS_TOKEN_ENV)
            .ok()
            .filter(|t| !t.trim().is_empty());
        let token = env.or_else(|| self.token.clone());
        if let Some(t) = &token {
            if t.chars().count() < 32 || t.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(format!(
                    "[metrics] token (or {METRICS_TOKEN_ENV}) must be at least 32 characters without spaces"
                ));
            }
        }
        let mut allow_from = Vec::new();
        for a in &self.allow_from {
            allow_from.push(IpBlock::parse(a).ok_or_else(|| {
                format!("[metrics] allow_from: {a:?} is not an IP address or CIDR block")
            })?);
        }
        Ok(MetricsAccess {
            token: token.map(zeroize::Zeroizing::new),
            allow_from,
        })
    }
}

/// Where the operator's policy files are. Without a setting, the files compiled into
/// the binary (`policies/`) apply.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PoliciesConfig {
    /// A folder of `*.cedar` files (see policies/README.md).
    pub dir: Option<PathBuf>,
    /// A number-range file like `policies/number_ranges.default.toml`.
    pub number_ranges: Option<PathBuf>,
    /// A retention file like `policies/retention.default.toml`.
    pub retention: Option<PathBuf>,
}

/// Four-eyes reveal of a real identity.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RevealConfig {
    /// The read window, in minutes: it starts when the requester opens the approved
    /// reveal, which is read once within it.
    pub ttl_minutes: u32,
    /// How long an approved reveal waits for the requester to open it, in hours (the
    /// requester is notified).
    pub open_within_hours: u32,
}

impl Default for RevealConfig {
    fn default() -> Self {
        Self {
            ttl_minutes: 15,
            open_within_hours: 72,
        }
    }
}

/// `[cases]`: requests to move a case to another unit or to reopen an ended one.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CasesConfig {
    /// Days a request waits for the case's unit or an approver to decide (1 to 90;
    /// default 14). An undecided request then expires and changes nothing.
    pub request_valid_days: u32,
    /// Requests one person may make (answered or refused) in 24 hours (1 to 1000;
    /// default 10). Each request answers whether a personal number has a case in
    /// Fiktiv; the limit keeps anyone from trying many numbers.
    pub requests_per_person_per_day: u32,
}

impl Default for CasesConfig {
    fn default() -> Self {
        Self {
            request_valid_days: 14,
            requests_per_person_per_day: 10,
        }
    }
}

/// API bearer tokens.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokensConfig {
    /// Validity of a new token when `--expires-days` is not given.
    pub default_expires_days: u32,
}

impl Default for TokensConfig {
    fn default() -> Self {
        Self {
            default_expires_days: 90,
        }
    }
}

/// The web UI (see docs/WEB.md). Times are in seconds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    /// A session unused this long is ended (default 15 minutes).
    pub idle_timeout_secs: u64,
    /// A session ends this long after sign-in, used or not (default 8 hours).
    pub absolute_lifetime_secs: u64,
    /// Re-entering the second factor unlocks revealing a real identity this long.
    pub step_up_valid_secs: u64,
    /// Failed sign-ins in a row that lock an account.
    pub lockout_after_failures: u32,
    /// How long a locked account stays locked.
    pub lockout_secs: u64,
    /// Sign-in attempts allowed per client address, and per account name, per window.
    pub attempts_per_window: u32,
    /// The rate-limit window.
    pub attempt_window_secs: u64,
    /// OpenID Connect sign-in through the municipality's identity provider
    /// (`[web.oidc]`). Without it, only local accounts sign in.
    pub oidc: Option<fiktiv_staff::oidc_config::OidcConfig>,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            idle_timeout_secs: 15 * 60,
            absolute_lifetime_secs: 8 * 60 * 60,
            step_up_valid_secs: 5 * 60,
            lockout_after_failures: 5,
            lockout_secs: 15 * 60,
            attempts_per_window: 10,
            attempt_window_secs: 60,
            oidc: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on. `--listen` overrides it.
    pub listen: SocketAddr,
    /// Largest accepted request body, in bytes.
    pub body_limit_bytes: usize,
    /// Per-request timeout, in seconds.
    pub request_timeout_secs: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            body_limit_bytes: 64 * 1024,
            request_timeout_secs: 30,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` or `postgres://…`. Default: `sqlite://DATA_DIR/fiktiv.db`.
    /// `FIKTIV_DATABASE_URL` overrides it.
    pub url: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `json` (default) or `text`.
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `fiktiv=debug`. `RUST_LOG` overrides it.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Json,
            level: "info".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Text,
}

/// A configuration problem, one line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: String, message: String },
}

impl Config {
    /// Parse configuration text. The error names the line and the problem.
    pub fn parse(text: &str, shown_path: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: shown_path.to_string(),
            message: one_line(&e.to_string()),
        })
    }

    /// Load from a file, or the defaults when no file is given.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: shown.clone(),
            source: e,
        })?;
        Self::parse(&text, &shown)
    }

    /// The database URL: environment, then file, then the embedded default.
    pub fn database_url(&self, data_dir: &Path) -> String {
        if let Ok(url) = std::env::var("FIKTIV_DATABASE_URL") {
            if !url.trim().is_empty() {
                return url;
            }
        }
        match &self.database.url {
            Some(u) => u.clone(),
            None => format!("sqlite://{}?mode=rwc", data_dir.join("fiktiv.db").display()),
        }
    }
}

pub use fiktiv_routine::one_line;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn unknown_field_is_refused_with_its_name() {
        let err = Config::parse("[server]\nlisten = \"127.0.0.1:1\"\nlistn = 3\n", "x.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("x.toml"), "{err}");
        assert!(err.contains("listn"), "{err}");
        assert!(!err.contains('\n'));
    }

    #[test]
    fn defaults_apply() {
        let c = Config::parse("", "x").unwrap();
        assert_eq!(c.server.body_limit_bytes, 64 * 1024);
        assert_eq!(c.log.format, LogFormat::Json);
        let url = c.database_url(Path::new("/tmp/d"));
        assert!(
            url.starts_with("sqlite:///tmp/d/fiktiv.db")
                || std::env::var("FIKTIV_DATABASE_URL").is_ok()
        );
    }
}
