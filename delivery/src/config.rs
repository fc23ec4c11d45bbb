//! Targets and provisioning settings: `[[targets]]` tables and `[provisioning]` in the
//! TOML file, and the same target shapes through the API. Every table is
//! `deny_unknown_fields`. Credentials (LDAP bind password, SCIM bearer token) come from
//! the file, the environment (`FIKTIV_TARGET_<NAME>_PASSWORD` / `_TOKEN`, which wins) or,
//! for targets made through the API, from the database, sealed.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{Datelike, NaiveDate};
use fiktiv_provisioning::ldap::{DisableMode, LdapConfig, LdapSchema, LdapSecurity, LdapTarget};
use fiktiv_provisioning::oneroster::{
    Collision, OneRosterConfig, OneRosterTarget, SchoolYear, DEFAULT_COLLISION_START,
};
use fiktiv_provisioning::scim::{ScimConfig, ScimTarget};
use fiktiv_provisioning::ss12000_scan::{Ss12000ScanConfig, Ss12000ScanTarget};
use fiktiv_provisioning::template::Template;
use fiktiv_provisioning::{GroupId, Target, TargetName};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zeroize::Zeroizing;

/// The name of the embedded default target (a OneRoster folder in the data directory).
pub const EMBEDDED_TARGET: &str = "oneroster";

/// A credential: never serialised, never printed.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Credential(Zeroizing<String>);

impl Credential {
    pub fn new(s: String) -> Self {
        Self(Zeroizing::new(s))
    }

    pub fn expose(&self) -> &str {
        self.0.as_str()
    }

    fn secret(&self) -> SecretString {
        SecretString::from(self.0.as_str().to_owned())
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// How an LDAP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// `ldaps://`
    Ldaps,
    /// `ldap://` upgraded with StartTLS.
    Starttls,
    /// `ldap://` without TLS: loopback addresses only (tests).
    Plain,
}

/// Object classes of LDAP entries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SchemaKind {
    #[default]
    Inetorgperson,
    /// + eduPerson; needs `scope`.
    Eduperson,
    /// + eduPerson + norEduPerson; `scope` is the Feide realm.
    Feide,
}

/// How an LDAP account is disabled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DisableKind {
    /// Add `disable_value` to `disable_attribute` (default `description: disabled`).
    #[default]
    Attribute,
    /// Move the entry under `disable_base`.
    MoveTo,
    /// Active Directory `userAccountControl` 514.
    ActiveDirectory,
}

/// What a OneRoster target does when another row of `users.csv` already has a username
/// or email address, as the municipality does for everyone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CollisionKind {
    /// Append a number from `collision_start` (`anna.svensson2`, before the `@` of an
    /// address).
    #[default]
    Number,
    /// Fail the write; the name is settled by hand.
    Refuse,
}

/// The largest `collision_start`.
pub const MAX_COLLISION_START: u32 = 1000;

/// An LDAP directory (OpenLDAP, Active Directory, Feide).
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LdapSettings {
    pub name: String,
    /// Order platforms this target serves (empty: every registered pupil).
    #[serde(default)]
    pub platforms: Vec<String>,
    pub url: String,
    pub security: Security,
    /// PEM file of the CA to trust instead of the system roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub ca_file: Option<PathBuf>,
    pub bind_dn: String,
    /// Write-only. Better: `FIKTIV_TARGET_<NAME>_PASSWORD`.
    #[serde(default, skip_serializing)]
    #[schema(value_type = Option<String>, write_only)]
    pub bind_password: Option<Credential>,
    pub people_base: String,
    pub groups_base: String,
    /// Where the leak scan reads (default: every naming context the server advertises in
    /// its root DSE).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scan_bases: Vec<String>,
    #[serde(default)]
    pub schema: SchemaKind,
    /// eduPerson scope or Feide realm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Template of `uid` (default `{given}.{family}.{short_id}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// Template of `cn` (default `{given} {family}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cn: Option<String>,
    /// Template of `mail` (default: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail: Option<String>,
    /// The attribute holding the opaque person id (default `employeeNumber`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_attribute: Option<String>,
    /// Non-Feide schemas: the attribute for the fictitious number (default: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_attribute: Option<String>,
    #[serde(default)]
    pub disable: DisableKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_attribute: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_base: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_size: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u64>,
}

/// A SCIM 2.0 service.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScimSettings {
    pub name: String,
    #[serde(default)]
    pub platforms: Vec<String>,
    /// e.g. `https://lms.example/scim/v2`
    pub base_url: String,
    /// Write-only. Better: `FIKTIV_TARGET_<NAME>_TOKEN`.
    #[serde(default, skip_serializing)]
    #[schema(value_type = Option<String>, write_only)]
    pub token: Option<Credential>,
    /// Template of `userName` (default `{given}.{family}.{short_id}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    /// Template of the work email (default: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_size: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u64>,
    /// How often a 429 is retried within one call (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
    /// The longest `Retry-After` honoured within one call (default 30 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retry_after_secs: Option<u64>,
}

/// An SS 12000 API the leak scan reads (read only: no person is provisioned there):
/// the school administration system, a tool that serves SS 12000 again, or Fiktiv's own
/// feed.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Ss12000Settings {
    pub name: String,
    /// e.g. `https://sis.kommun.example/ss12000/v2`
    pub base_url: String,
    /// Write-only. Better: `FIKTIV_TARGET_<NAME>_TOKEN`.
    #[serde(default, skip_serializing)]
    #[schema(value_type = Option<String>, write_only)]
    pub token: Option<Credential>,
    /// Items asked for per page (`limit`, default 500, at most 10000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_size: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u64>,
}

/// The school year of a roster.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SchoolYearSettings {
    pub id: String,
    pub title: String,
    /// `YYYY-MM-DD`
    pub start: NaiveDate,
    /// `YYYY-MM-DD`
    pub end: NaiveDate,
    /// The year the school year ends in.
    pub year: i32,
}

/// A OneRoster 1.2 CSV folder.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OneRosterSettings {
    pub name: String,
    #[serde(default)]
    pub platforms: Vec<String>,
    /// The folder importers read (file only; default `<data dir>/oneroster` for the
    /// embedded target, `<data dir>/oneroster-<name>` otherwise). Targets made through
    /// the API always use the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub dir: Option<PathBuf>,
    /// Template of `username` (default `{given}.{family}`, the pattern of ordinary pupils).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Template of `email` (default: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// What is done when another row has the username or address (default `number`).
    #[serde(default)]
    pub username_collision: CollisionKind,
    /// The first number `username_collision = "number"` appends (default 2, at most
    /// 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collision_start: Option<u32>,
    /// Put the fictitious personal number in `identifier` (default false).
    #[serde(default)]
    pub number_in_identifier: bool,
    /// Default: 1 August to 31 July around today.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub school_year: Option<SchoolYearSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_name: Option<String>,
}

/// One target.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum TargetSpec {
    Ldap(Box<LdapSettings>),
    Scim(ScimSettings),
    Oneroster(OneRosterSettings),
    /// Read by the leak scan only.
    Ss12000(Ss12000Settings),
}

/// The longest reconciliation interval: one year.
pub const MAX_RECONCILE_INTERVAL_SECS: u64 = 365 * 24 * 60 * 60;

/// `[provisioning]`: the outbox worker, reconciliation and removal safety.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProvisioningConfig {
    /// The OneRoster folder in the data directory, used when no `[[targets]]` are
    /// configured in the file (default true).
    pub embedded_default: bool,
    /// Jobs run at the same time (1..=16).
    pub workers: usize,
    /// Attempts before a job goes to `failed`.
    pub max_attempts: u32,
    /// First retry delay; doubled per attempt, with jitter, up to `backoff_max_secs`.
    pub backoff_base_secs: u64,
    pub backoff_max_secs: u64,
    /// How often the worker looks for due jobs and new desired state.
    pub poll_interval_ms: u64,
    /// Longest time one job may take.
    pub job_timeout_secs: u64,
    /// Reconciliation interval (0: only on demand).
    pub reconcile_interval_secs: u64,
    /// How long an account stays disabled before it is deleted.
    pub grace_days: u32,
    /// Largest share of a target's managed accounts one apply may remove without `--force`.
    pub max_removal_share: f64,
    /// Removals always allowed, whatever the share.
    pub min_removals_allowed: usize,
}

impl Default for ProvisioningConfig {
    fn default() -> Self {
        Self {
            embedded_default: true,
            workers: 2,
            max_attempts: 8,
            backoff_base_secs: 10,
            backoff_max_secs: 3600,
            poll_interval_ms: 2000,
            job_timeout_secs: 120,
            reconcile_interval_secs: 3600,
            grace_days: 30,
            max_removal_share: 0.2,
            min_removals_allowed: 2,
        }
    }
}

impl ProvisioningConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=16).contains(&self.workers) {
            return Err("[provisioning] workers must be 1 to 16".into());
        }
        if !(1..=100).contains(&self.max_attempts) {
            return Err("[provisioning] max_attempts must be 1 to 100".into());
        }
        if self.backoff_base_secs == 0 || self.backoff_max_secs < self.backoff_base_secs {
            return Err(
                "[provisioning] backoff_base_secs must be at least 1 and at most backoff_max_secs"
                    .into(),
            );
        }
        if self.poll_interval_ms < 50 || self.poll_interval_ms > 600_000 {
            return Err("[provisioning] poll_interval_ms must be 50 to 600000".into());
        }
        if self.job_timeout_secs == 0 || self.job_timeout_secs > 3600 {
            return Err("[provisioning] job_timeout_secs must be 1 to 3600".into());
        }
        if !(0.0..=1.0).contains(&self.max_removal_share) {
            return Err("[provisioning] max_removal_share must be 0.0 to 1.0".into());
        }
        if self.grace_days > 3650 {
            return Err("[provisioning] grace_days must be at most 3650".into());
        }
        if self.reconcile_interval_secs > MAX_RECONCILE_INTERVAL_SECS {
            return Err(
                "[provisioning] reconcile_interval_secs must be 0 to 31536000 (one year)".into(),
            );
        }
        Ok(())
    }

    pub fn grace(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::days(i64::from(self.grace_days))
    }

    pub fn job_timeout(&self) -> Duration {
        Duration::from_secs(self.job_timeout_secs)
    }
}

fn env_name(target: &str, what: &str) -> String {
    let up: String = target
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("FIKTIV_TARGET_{up}_{what}")
}

/// The credential from the environment, if set.
pub fn env_credential(target: &str, kind: &str) -> Option<Credential> {
    let what = match kind {
        "ldap" => "PASSWORD",
        "scim" | "ss12000" => "TOKEN",
        _ => return None,
    };
    std::env::var(env_name(target, what))
        .ok()
        .filter(|v| !v.is_empty())
        .map(Credential::new)
}

fn check_text(field: &str, s: &str, max: usize) -> Result<(), String> {
    if s.chars().count() > max || s.chars().any(char::is_control) {
        return Err(format!(
            "{field} is too long or contains control characters"
        ));
    }
    Ok(())
}

/// The default OneRoster `username`: the pattern of ordinary pupils, no id in it (a
/// name another row has gets a number by `username_collision`).
const ONEROSTER_USERNAME: &str = "{given}.{family}";

fn template(field: &str, t: &Option<String>, default: &str) -> Result<Template, String> {
    Template::parse(t.as_deref().unwrap_or(default)).map_err(|e| format!("{field}: {e}"))
}

/// The default school year around `today`: 1 August to 31 July.
pub fn default_school_year(today: NaiveDate) -> Option<SchoolYear> {
    let y = if today.month() >= 8 {
        today.year()
    } else {
        today.year() - 1
    };
    Some(SchoolYear {
        id: GroupId::new(&format!("sy-{}-{}", y, y + 1)).ok()?,
        title: format!("{}/{}", y, y + 1),
        start: NaiveDate::from_ymd_opt(y, 8, 1)?,
        end: NaiveDate::from_ymd_opt(y + 1, 7, 31)?,
        year: y + 1,
    })
}

impl TargetSpec {
    pub fn name(&self) -> &str {
        match self {
            TargetSpec::Ldap(s) => &s.name,
            TargetSpec::Scim(s) => &s.name,
            TargetSpec::Oneroster(s) => &s.name,
            TargetSpec::Ss12000(s) => &s.name,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            TargetSpec::Ldap(_) => "ldap",
            TargetSpec::Scim(_) => "scim",
            TargetSpec::Oneroster(_) => "oneroster",
            TargetSpec::Ss12000(_) => "ss12000",
        }
    }

    pub fn platforms(&self) -> &[String] {
        match self {
            TargetSpec::Ldap(s) => &s.platforms,
            TargetSpec::Scim(s) => &s.platforms,
            TargetSpec::Oneroster(s) => &s.platforms,
            TargetSpec::Ss12000(_) => &[],
        }
    }

    /// A target the leak scan reads and nothing is written to: it receives no pupil and
    /// stands for no platform.
    pub fn scan_only(&self) -> bool {
        matches!(self, TargetSpec::Ss12000(_))
    }

    /// The credential given in the file or request body, if any.
    pub fn credential(&self) -> Option<&Credential> {
        match self {
            TargetSpec::Ldap(s) => s.bind_password.as_ref(),
            TargetSpec::Scim(s) => s.token.as_ref(),
            TargetSpec::Oneroster(_) => None,
            TargetSpec::Ss12000(s) => s.token.as_ref(),
        }
    }

    /// Drops the credential (before the settings are stored).
    pub fn without_credential(&self) -> Self {
        let mut c = self.clone();
        match &mut c {
            TargetSpec::Ldap(s) => s.bind_password = None,
            TargetSpec::Scim(s) => s.token = None,
            TargetSpec::Oneroster(_) => {}
            TargetSpec::Ss12000(s) => s.token = None,
        }
        c
    }

    pub fn needs_credential(&self) -> bool {
        !matches!(self, TargetSpec::Oneroster(_))
    }

    /// Checks the settings without building the target. `from_api`: settings from the
    /// API may not choose a folder on the server.
    pub fn validate(&self, from_api: bool) -> Result<TargetName, String> {
        let name = TargetName::new(self.name())
            .map_err(|_| "name must be 1 to 64 letters A-Z, digits, '.', '_' or '-'".to_string())?;
        let plats = self.platforms();
        if plats.len() > 50 {
            return Err("platforms has too many items (at most 50)".into());
        }
        for p in plats {
            check_text("platforms", p, 64)?;
        }
        match self {
            TargetSpec::Ldap(s) => {
                for (f, v) in [
                    ("url", &s.url),
                    ("bind_dn", &s.bind_dn),
                    ("people_base", &s.people_base),
                    ("groups_base", &s.groups_base),
                ] {
                    check_text(f, v, 1024)?;
                    if v.trim().is_empty() {
                        return Err(format!("{f} is empty"));
                    }
                }
                if from_api && s.ca_file.is_some() {
                    return Err("ca_file can be set in the configuration file only".into());
                }
                if matches!(s.schema, SchemaKind::Eduperson | SchemaKind::Feide)
                    && s.scope.as_deref().is_none_or(str::is_empty)
                {
                    return Err("schema eduperson and feide need scope (the realm)".into());
                }
                if s.disable == DisableKind::MoveTo && s.disable_base.is_none() {
                    return Err("disable = \"move-to\" needs disable_base".into());
                }
                template("uid", &s.uid, "{given}.{family}.{short_id}")?;
                template("cn", &s.cn, "{given} {family}")?;
                if let Some(m) = &s.mail {
                    template("mail", &Some(m.clone()), "")?;
                }
                if s.page_size.is_some_and(|p| !(1..=5000).contains(&p)) {
                    return Err("page_size must be 1 to 5000".into());
                }
            }
            TargetSpec::Scim(s) => {
                check_text("base_url", &s.base_url, 1024)?;
                template("user_name", &s.user_name, "{given}.{family}.{short_id}")?;
                if let Some(m) = &s.email {
                    template("email", &Some(m.clone()), "")?;
                }
                if s.page_size.is_some_and(|p| !(1..=5000).contains(&p)) {
                    return Err("page_size must be 1 to 5000".into());
                }
            }
            TargetSpec::Ss12000(s) => {
                check_text("base_url", &s.base_url, 1024)?;
                if s.base_url.trim().is_empty() {
                    return Err("base_url is empty".into());
                }
                if s.page_size.is_some_and(|p| !(1..=10_000).contains(&p)) {
                    return Err("page_size must be 1 to 10000".into());
                }
            }
            TargetSpec::Oneroster(s) => {
                if from_api && s.dir.is_some() {
                    return Err("dir can be set in the configuration file only".into());
                }
                template("username", &s.username, ONEROSTER_USERNAME)?;
                if let Some(m) = &s.email {
                    template("email", &Some(m.clone()), "")?;
                }
                if s.collision_start.is_some_and(|n| n > MAX_COLLISION_START) {
                    return Err("collision_start must be 0 to 1000".into());
                }
                if let Some(y) = &s.school_year {
                    GroupId::new(&y.id)
                        .map_err(|_| "school_year.id is not a valid id".to_string())?;
                    check_text("school_year.title", &y.title, 128)?;
                    if y.end <= y.start {
                        return Err("school_year.end must be after start".into());
                    }
                }
                if let Some(n) = &s.system_name {
                    check_text("system_name", n, 128)?;
                }
            }
        }
        Ok(name)
    }

    /// Builds the target. `credential` is the one to use (environment, file, or the
    /// sealed one from the database); `today` picks the default school year.
    pub fn build(
        &self,
        data_dir: &Path,
        credential: Option<&Credential>,
        today: NaiveDate,
    ) -> Result<Arc<dyn Target>, String> {
        let name = self.validate(false)?;
        let timeout = |t: Option<u64>| Duration::from_secs(t.unwrap_or(30).clamp(1, 600));
        match self {
            TargetSpec::Ldap(s) => {
                let password = credential
                    .map(Credential::secret)
                    .ok_or("no bind password (set FIKTIV_TARGET_<NAME>_PASSWORD)")?;
                let security = match s.security {
                    Security::Ldaps => LdapSecurity::Ldaps,
                    Security::Starttls => LdapSecurity::StartTls,
                    Security::Plain => LdapSecurity::Plain,
                };
                let mut cfg = LdapConfig::new(
                    name,
                    &s.url,
                    security,
                    &s.bind_dn,
                    password,
                    &s.people_base,
                    &s.groups_base,
                )
                .map_err(|e| e.to_string())?;
                cfg.ca_file = s.ca_file.clone();
                cfg.scan_bases = s.scan_bases.clone();
                let scope = s.scope.clone().unwrap_or_default();
                cfg.schema = match s.schema {
                    SchemaKind::Inetorgperson => LdapSchema::InetOrgPerson,
                    SchemaKind::Eduperson => LdapSchema::EduPerson { scope },
                    SchemaKind::Feide => LdapSchema::Feide { realm: scope },
                };
                cfg.uid = template("uid", &s.uid, "{given}.{family}.{short_id}")?;
                cfg.cn = template("cn", &s.cn, "{given} {family}")?;
                cfg.mail = match &s.mail {
                    Some(m) => Some(template("mail", &Some(m.clone()), "")?),
                    None => None,
                };
                if let Some(a) = &s.id_attribute {
                    cfg.id_attribute = a.clone();
                }
                cfg.number_attribute = s.number_attribute.clone();
                cfg.disable = match s.disable {
                    DisableKind::Attribute => DisableMode::Attribute {
                        name: s
                            .disable_attribute
                            .clone()
                            .unwrap_or_else(|| "description".into()),
                        value: s.disable_value.clone().unwrap_or_else(|| "disabled".into()),
                    },
                    DisableKind::MoveTo => DisableMode::MoveTo {
                        base: s.disable_base.clone().unwrap_or_default(),
                    },
                    DisableKind::ActiveDirectory => DisableMode::ActiveDirectory,
                };
                if let Some(p) = s.page_size {
                    cfg.page_size = p;
                }
                cfg.timeout = timeout(s.timeout_secs);
                Ok(Arc::new(LdapTarget::new(cfg).map_err(|e| e.to_string())?))
            }
            TargetSpec::Scim(s) => {
                let token = credential
                    .map(Credential::secret)
                    .ok_or("no bearer token (set FIKTIV_TARGET_<NAME>_TOKEN)")?;
                let mut cfg =
                    ScimConfig::new(name, &s.base_url, token).map_err(|e| e.to_string())?;
                cfg.user_name = template("user_name", &s.user_name, "{given}.{family}.{short_id}")?;
                cfg.email = match &s.email {
                    Some(m) => Some(template("email", &Some(m.clone()), "")?),
                    None => None,
                };
                if let Some(p) = s.page_size {
                    cfg.page_size = p;
                }
                cfg.timeout = timeout(s.timeout_secs);
                if let Some(r) = s.max_retries {
                    cfg.max_retries = r.min(20);
                }
                if let Some(r) = s.max_retry_after_secs {
                    cfg.max_retry_after = Duration::from_secs(r.min(600));
                }
                Ok(Arc::new(ScimTarget::new(cfg).map_err(|e| e.to_string())?))
            }
            TargetSpec::Ss12000(s) => {
                let token = credential
                    .map(Credential::secret)
                    .ok_or("no bearer token (set FIKTIV_TARGET_<NAME>_TOKEN)")?;
                let mut cfg = Ss12000ScanConfig::new(name, &s.base_url, token);
                if let Some(p) = s.page_size {
                    cfg.page_size = p;
                }
                cfg.timeout = timeout(s.timeout_secs);
                Ok(Arc::new(
                    Ss12000ScanTarget::new(cfg).map_err(|e| e.to_string())?,
                ))
            }
            TargetSpec::Oneroster(s) => {
                let dir = match &s.dir {
                    Some(d) => d.clone(),
                    None if s.name == EMBEDDED_TARGET => data_dir.join(EMBEDDED_TARGET),
                    None => data_dir.join(format!("oneroster-{}", s.name)),
                };
                let year = match &s.school_year {
                    Some(y) => SchoolYear {
                        id: GroupId::new(&y.id)
                            .map_err(|_| "school_year.id is not a valid id".to_string())?,
                        title: y.title.clone(),
                        start: y.start,
                        end: y.end,
                        year: y.year,
                    },
                    None => default_school_year(today).ok_or("no default school year")?,
                };
                let mut cfg = OneRosterConfig::new(name, dir, year).map_err(|e| e.to_string())?;
                cfg.username = template("username", &s.username, ONEROSTER_USERNAME)?;
                cfg.email = match &s.email {
                    Some(m) => Some(template("email", &Some(m.clone()), "")?),
                    None => None,
                };
                cfg.username_collision = match s.username_collision {
                    CollisionKind::Number => Collision::Number,
                    CollisionKind::Refuse => Collision::Refuse,
                };
                cfg.collision_start = s
                    .collision_start
                    .unwrap_or(DEFAULT_COLLISION_START)
                    .min(MAX_COLLISION_START);
                cfg.number_in_identifier = s.number_in_identifier;
                if let Some(n) = &s.system_name {
                    cfg.system_name = n.clone();
                }
                Ok(Arc::new(OneRosterTarget::new(cfg)))
            }
        }
    }
}

/// The embedded default target: a OneRoster folder at `<data dir>/oneroster`.
pub fn embedded_target() -> TargetSpec {
    TargetSpec::Oneroster(OneRosterSettings {
        name: EMBEDDED_TARGET.into(),
        platforms: Vec::new(),
        dir: None,
        username: None,
        email: None,
        username_collision: CollisionKind::Number,
        collision_start: None,
        number_in_identifier: false,
        school_year: None,
        system_name: None,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        targets: Vec<TargetSpec>,
    }

    #[test]
    fn targets_parse_and_refuse_unknown_fields() {
        let f: File = toml::from_str(
            r#"
            [[targets]]
            name = "ad"
            kind = "ldap"
            url = "ldaps://dc.example"
            security = "ldaps"
            bind_dn = "cn=fiktiv,dc=example"
            people_base = "ou=people,dc=example"
            groups_base = "ou=groups,dc=example"
            [[targets]]
            name = "lms"
            kind = "scim"
            base_url = "https://lms.example/scim/v2"
            platforms = ["Google"]
            [[targets]]
            name = "roster"
            kind = "oneroster"
            [[targets]]
            name = "roster-2"
            kind = "oneroster"
            username = "{given}.{family}@skola.example"
            username_collision = "refuse"
            collision_start = 1
            "#,
        )
        .unwrap();
        assert_eq!(f.targets.len(), 4);
        assert_eq!(f.targets[1].platforms(), ["Google".to_string()]);
        for t in &f.targets {
            t.validate(false).unwrap();
        }
        let err = toml::from_str::<File>(
            "[[targets]]\nname = \"x\"\nkind = \"scim\"\nbase_url = \"https://x\"\ntokn = \"a\"\n",
        )
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("tokn"), "{err}");
        assert!(toml::from_str::<File>("[[targets]]\nname = \"x\"\nkind = \"ftp\"\n").is_err());
        // The collision rule is one of the known ones, its first number bounded.
        let roster = |extra: &str| {
            toml::from_str::<File>(&format!(
                "[[targets]]\nname = \"r\"\nkind = \"oneroster\"\n{extra}\n"
            ))
        };
        assert!(roster("username_collision = \"letters\"").is_err());
        let f = roster("collision_start = 1001").unwrap();
        assert!(f.targets[0].validate(false).is_err());
    }

    #[test]
    fn credentials_never_serialise_or_print() {
        let t: TargetSpec = serde_json::from_value(serde_json::json!({
            "kind": "scim", "name": "lms", "base_url": "https://x", "token": "sekret-token"
        }))
        .unwrap();
        assert_eq!(t.credential().unwrap().expose(), "sekret-token");
        let json = serde_json::to_string(&t).unwrap();
        assert!(!json.contains("sekret"), "{json}");
        assert!(!format!("{t:?}").contains("sekret"));
        assert!(json.contains("\"kind\":\"scim\""), "{json}");
    }

    #[test]
    fn env_names_and_school_year() {
        assert_eq!(
            env_name("ldap-main", "PASSWORD"),
            "FIKTIV_TARGET_LDAP_MAIN_PASSWORD"
        );
        let y = default_school_year(NaiveDate::from_ymd_opt(2026, 3, 2).unwrap()).unwrap();
        assert_eq!(
            (y.start.to_string(), y.year),
            ("2025-08-01".to_string(), 2026)
        );
        let y = default_school_year(NaiveDate::from_ymd_opt(2026, 8, 2).unwrap()).unwrap();
        assert_eq!(y.title, "2026/2027");
    }

    #[test]
    fn api_targets_may_not_choose_server_paths() {
        let t: TargetSpec = serde_json::from_value(serde_json::json!({
            "kind": "oneroster", "name": "r", "dir": "/etc"
        }))
        .unwrap();
        assert!(t.validate(true).is_err());
        assert!(t.validate(false).is_ok());
    }
}
