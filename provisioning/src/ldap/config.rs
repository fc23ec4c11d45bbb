//! Settings of the LDAP target.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

use crate::model::TargetName;
use crate::template::Template;

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LdapSecurity {
    /// `ldaps://`: TLS from the first byte.
    Ldaps,
    /// `ldap://` upgraded with StartTLS before the bind.
    StartTls,
    /// `ldap://` without TLS: refused unless the host is a loopback address.
    Plain,
}

/// Which object classes entries get.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum LdapSchema {
    InetOrgPerson,
    /// inetOrgPerson + eduPerson, with `eduPersonPrincipalName` = `<uid>@<scope>`.
    EduPerson {
        scope: String,
    },
    /// inetOrgPerson + eduPerson + norEduPerson, Feide realm as the scope.
    Feide {
        realm: String,
    },
}

/// How an account is disabled.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum DisableMode {
    /// Add this value to this attribute (default `description: disabled`).
    Attribute { name: String, value: String },
    /// Move the entry to this OU (the OU must exist).
    MoveTo { base: String },
    /// Active Directory: `userAccountControl` 514 (normal account + disabled), 512 to enable.
    ActiveDirectory,
}

/// Settings of an LDAP target.
#[derive(Debug, Clone, Deserialize)]
pub struct LdapConfig {
    pub name: TargetName,
    pub url: String,
    pub security: LdapSecurity,
    /// PEM file of the CA to trust instead of the system roots.
    pub ca_file: Option<PathBuf>,
    pub bind_dn: String,
    pub bind_password: SecretString,
    pub people_base: String,
    pub groups_base: String,
    /// Where the leak scan reads; default every naming context the server advertises.
    pub scan_bases: Vec<String>,
    pub schema: LdapSchema,
    pub uid: Template,
    pub cn: Template,
    pub mail: Option<Template>,
    /// The attribute that holds the opaque person id.
    pub id_attribute: String,
    /// Non-Feide schemas: the attribute for a fictitious number, if any.
    pub number_attribute: Option<String>,
    pub disable: DisableMode,
    pub page_size: i32,
    pub timeout: Duration,
}

impl LdapConfig {
    /// Defaults: inetOrgPerson, uid `{given}.{family}.{short_id}`, cn `{given} {family}`,
    /// id in `employeeNumber`, disable by `description: disabled`, pages of 500, 30 s.
    pub fn new(
        name: TargetName,
        url: &str,
        security: LdapSecurity,
        bind_dn: &str,
        bind_password: SecretString,
        people_base: &str,
        groups_base: &str,
    ) -> Result<Self, crate::template::TemplateError> {
        Ok(Self {
            name,
            url: url.to_string(),
            security,
            ca_file: None,
            bind_dn: bind_dn.to_string(),
            bind_password,
            people_base: people_base.to_string(),
            groups_base: groups_base.to_string(),
            scan_bases: Vec::new(),
            schema: LdapSchema::InetOrgPerson,
            uid: Template::parse("{given}.{family}.{short_id}")?,
            cn: Template::parse("{given} {family}")?,
            mail: None,
            id_attribute: "employeeNumber".to_string(),
            number_attribute: None,
            disable: DisableMode::Attribute {
                name: "description".to_string(),
                value: "disabled".to_string(),
            },
            page_size: 500,
            timeout: Duration::from_secs(30),
        })
    }
}

pub(crate) fn url_host(url: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let hostport = rest.split('/').next()?;
    let host = if let Some(h) = hostport.strip_prefix('[') {
        h.split(']').next()?
    } else {
        hostport.split(':').next()?
    };
    Some((scheme, host))
}

pub(crate) fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}
