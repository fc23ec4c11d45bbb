//! `fiktiv targets test`: does a target work? Connectivity, TLS, credentials, the
//! configured bases and the schema, each as one [`Probe`] with a clear diagnosis when
//! it fails. Probes hold fixed text, codes and configuration values (URLs, base DNs,
//! class names), never a value of a person.

use std::time::Duration;

use serde::Serialize;

use crate::model::TargetName;

/// What is wrong, in the words an operator acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Problem {
    /// No connection: wrong host or port, the server is down, a firewall.
    Unreachable,
    /// The TCP connection works but TLS does not: certificate, CA file, protocol.
    Tls,
    /// The server refused the bind DN and password, or the bearer token.
    BadCredentials,
    /// A configured base (people, groups) or endpoint (`/Users`) does not exist.
    MissingBase,
    /// An object class, attribute type or resource type Fiktiv writes is not known.
    MissingSchema,
    /// The credentials work but may not read or write what Fiktiv needs.
    PermissionDenied,
    /// The settings themselves are wrong (URL, CA file, folder).
    Configuration,
    /// Anything else; the detail names the code.
    Unexpected,
}

impl Problem {
    pub fn as_str(self) -> &'static str {
        match self {
            Problem::Unreachable => "unreachable",
            Problem::Tls => "tls",
            Problem::BadCredentials => "bad-credentials",
            Problem::MissingBase => "missing-base",
            Problem::MissingSchema => "missing-schema",
            Problem::PermissionDenied => "permission-denied",
            Problem::Configuration => "configuration",
            Problem::Unexpected => "unexpected",
        }
    }

    /// What to do about it.
    pub fn advice(self) -> &'static str {
        match self {
            Problem::Unreachable => {
                "check the URL (host and port), that the server runs, and firewalls"
            }
            Problem::Tls => {
                "check the server certificate, ca_file, and the security setting (ldaps/starttls/https)"
            }
            Problem::BadCredentials => {
                "check bind_dn and the password, or the bearer token (FIKTIV_TARGET_<NAME>_PASSWORD/TOKEN)"
            }
            Problem::MissingBase => "create the base entry or endpoint, or fix the configured base",
            Problem::MissingSchema => "load the missing schema into the server, or change the target's schema setting",
            Problem::PermissionDenied => "grant the account read and write access to the configured bases",
            Problem::Configuration => "fix the target's settings",
            Problem::Unexpected => "see the code in the detail and the server's log",
        }
    }
}

/// What a probe found, as a stable code with named values (configuration values, result
/// codes, counts; never a value of a person) and the same in English. The web UI shows
/// the message `target-detail.<code>` in the user's language with the values filled in;
/// the CLI and the API's `detail` give the English. Made with [`detail!`](crate::detail).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detail {
    pub code: &'static str,
    pub args: Vec<(&'static str, String)>,
    pub text: String,
}

impl Detail {
    /// An error of another layer (a guard refusal, a connection error), whose text is
    /// English: shown as it is, inside a translated frame.
    pub fn error(e: impl std::fmt::Display) -> Self {
        let text = e.to_string();
        Self {
            code: "error",
            args: vec![("text", text.clone())],
            text,
        }
    }
}

/// A [`Detail`]: `detail!("base-exists", "{dn} exists", dn = dn)`. Every named value
/// must appear in the English text (the compiler checks it), and the code must have a
/// message `target-detail.<code>` in every language (a test of the service reads the
/// source for them).
#[macro_export]
macro_rules! detail {
    ($code:literal, $fmt:literal $(, $k:ident = $v:expr)* $(,)?) => {{
        // Each value is evaluated once.
        $(let $k = &$v;)*
        $crate::diagnose::Detail {
            code: $code,
            args: vec![$((stringify!($k), ::std::string::ToString::to_string($k))),*],
            text: format!($fmt $(, $k = $k)*),
        }
    }};
}

/// One step of the test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Probe {
    /// `connect`, `bind`, `people base`, `schema`, `write`, ...
    pub step: String,
    pub ok: bool,
    pub problem: Option<Problem>,
    /// Fixed text with codes and configuration values only, in English.
    pub detail: String,
    /// The detail's stable code (`target-detail.<code>` in the web UI).
    pub code: String,
    /// The detail's named values.
    pub args: std::collections::BTreeMap<String, String>,
}

impl Probe {
    fn new(step: &str, ok: bool, problem: Option<Problem>, d: Detail) -> Self {
        Self {
            step: step.to_string(),
            ok,
            problem,
            detail: d.text,
            code: d.code.to_string(),
            args: d
                .args
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        }
    }
}

/// Every step, in order. A step that could not run because an earlier one failed is
/// left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnosis {
    pub target: TargetName,
    pub probes: Vec<Probe>,
}

impl Diagnosis {
    pub fn new(target: TargetName) -> Self {
        Self {
            target,
            probes: Vec::new(),
        }
    }

    pub fn ok(&self) -> bool {
        !self.probes.is_empty() && self.probes.iter().all(|p| p.ok)
    }

    pub fn pass(&mut self, step: &str, detail: Detail) {
        self.probes.push(Probe::new(step, true, None, detail));
    }

    pub fn fail(&mut self, step: &str, problem: Problem, detail: Detail) {
        self.probes
            .push(Probe::new(step, false, Some(problem), detail));
    }

    /// A probe as another diagnosis made it (its step, result and detail kept).
    pub fn push(&mut self, probe: Probe) {
        self.probes.push(probe);
    }
}

/// `host:port` of a URL with the scheme's default port.
pub(crate) fn host_port(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let hostport = rest.split('/').next()?;
    let default = match scheme {
        "ldap" => 389,
        "ldaps" => 636,
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    if hostport.starts_with('[') {
        return Some(if hostport.contains("]:") {
            hostport.to_string()
        } else {
            format!("{hostport}:{default}")
        });
    }
    Some(if hostport.contains(':') {
        hostport.to_string()
    } else {
        format!("{hostport}:{default}")
    })
}

/// When a TLS connection failed: does a plain TCP connection work? Then the problem is
/// TLS, not reachability.
pub(crate) async fn tcp_reachable(url: &str, timeout: Duration) -> bool {
    let Some(hp) = host_port(url) else {
        return false;
    };
    matches!(
        tokio::time::timeout(timeout, tokio::net::TcpStream::connect(hp)).await,
        Ok(Ok(_))
    )
}

/// Names in an LDAP schema description such as
/// `( 2.5.6.6 NAME 'person' ... )` or `( ... NAME ( 'cn' 'commonName' ) ... )`, lowercase.
pub fn schema_names(description: &str) -> Vec<String> {
    let Some(at) = description.find(" NAME ") else {
        return Vec::new();
    };
    let rest = description.get(at + 6..).unwrap_or("").trim_start();
    let list = if let Some(inner) = rest.strip_prefix('(') {
        inner.split(')').next().unwrap_or("")
    } else {
        // One quoted name.
        let mut it = rest.splitn(3, '\'');
        let _ = it.next();
        return it
            .next()
            .map(|n| vec![n.to_ascii_lowercase()])
            .unwrap_or_default();
    };
    list.split('\'')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, n)| n.to_ascii_lowercase())
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn schema_names_single_and_list() {
        assert_eq!(
            schema_names("( 2.5.6.6 NAME 'person' DESC 'RFC2256' SUP top STRUCTURAL )"),
            vec!["person"]
        );
        assert_eq!(
            schema_names("( 2.5.4.3 NAME ( 'cn' 'commonName' ) SUP name )"),
            vec!["cn", "commonname"]
        );
        assert!(schema_names("( 1.2.3 DESC 'x' )").is_empty());
    }

    #[test]
    fn host_port_defaults() {
        assert_eq!(host_port("ldaps://dir.example").unwrap(), "dir.example:636");
        assert_eq!(
            host_port("http://127.0.0.1:8080/v2").unwrap(),
            "127.0.0.1:8080"
        );
        assert_eq!(host_port("https://[::1]/scim").unwrap(), "[::1]:443");
        assert!(host_port("ftp://x").is_none());
    }

    #[test]
    fn diagnosis_ok_needs_probes() {
        let mut d = Diagnosis::new(TargetName::new("t").unwrap());
        assert!(!d.ok());
        d.pass(
            "connect",
            crate::detail!("connected-tls", "connected with TLS (ldaps)"),
        );
        assert!(d.ok());
        d.fail(
            "bind",
            Problem::BadCredentials,
            crate::detail!("bind-refused", "LDAP {rc}", rc = 49),
        );
        assert!(!d.ok());
        let p = &d.probes[1];
        assert_eq!(
            (p.code.as_str(), p.detail.as_str()),
            ("bind-refused", "LDAP 49")
        );
        assert_eq!(p.args.get("rc").map(String::as_str), Some("49"));
    }
}
