//! `fiktiv targets test` for an LDAP target: connect (TLS), bind, the configured bases,
//! the schema (object classes and attribute types from the subschema entry), and write
//! permission (a probe entry added and deleted again).

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use ldap3::{dn_escape, Ldap, LdapConnAsync, LdapConnSettings, LdapError, Scope};
use secrecy::ExposeSecret;

use super::{DisableMode, LdapSchema, LdapSecurity, LdapTarget};
use crate::detail;
use crate::diagnose::{schema_names, tcp_reachable, Detail, Diagnosis, Problem};
use crate::guard::EgressGuard;
use crate::ldap_parse::parse_search_entry;
use crate::model::FictitiousNumber;

/// What an LDAP result code means for the operator.
fn rc_problem(rc: u32) -> Problem {
    match rc {
        49 | 48 => Problem::BadCredentials,
        50 => Problem::PermissionDenied,
        13 => Problem::Tls, // confidentialityRequired
        32 | 34 => Problem::MissingBase,
        17 | 65 | 21 => Problem::MissingSchema, // undefinedAttributeType, objectClassViolation, invalidSyntax
        51 | 52 | 80 => Problem::Unreachable,   // busy, unavailable, other
        _ => Problem::Unexpected,
    }
}

impl LdapTarget {
    async fn open_unbound(&self) -> Result<Ldap, (Problem, Detail)> {
        let mut settings = LdapConnSettings::new().set_conn_timeout(self.cfg.timeout);
        if self.cfg.security == LdapSecurity::StartTls {
            settings = settings.set_starttls(true);
        }
        if let Some(ca) = &self.cfg.ca_file {
            let tls = self
                .tls_config(ca)
                .map_err(|e| (Problem::Configuration, Detail::error(e)))?;
            settings = settings.set_config(Arc::new(tls));
        }
        match LdapConnAsync::with_settings(settings, &self.cfg.url).await {
            Ok((conn, ldap)) => {
                let name = self.cfg.name.clone();
                tokio::spawn(async move {
                    if conn.drive().await.is_err() {
                        tracing::debug!(target_name = %name, "LDAP test connection ended with an error");
                    }
                });
                Ok(ldap)
            }
            Err(e) => Err(self.classify_connect(e).await),
        }
    }

    async fn classify_connect(&self, e: LdapError) -> (Problem, Detail) {
        let tls = self.cfg.security != LdapSecurity::Plain;
        match e {
            LdapError::Rustls { .. } | LdapError::DNSName { .. } => (
                Problem::Tls,
                detail!(
                    "tls-handshake",
                    "the TLS handshake failed (certificate or name)"
                ),
            ),
            LdapError::LdapResult { result } => (
                if tls {
                    Problem::Tls
                } else {
                    rc_problem(result.rc)
                },
                detail!(
                    "ldap-setup-refused",
                    "the server refused the connection setup (LDAP {rc})",
                    rc = result.rc
                ),
            ),
            LdapError::UrlParsing { .. } | LdapError::UnknownScheme(_) => (
                Problem::Configuration,
                detail!("bad-url", "the URL cannot be used"),
            ),
            LdapError::Timeout { .. } => (
                Problem::Unreachable,
                detail!(
                    "timeout",
                    "no answer from {url} within the timeout",
                    url = self.cfg.url
                ),
            ),
            _ => {
                if tls && tcp_reachable(&self.cfg.url, self.cfg.timeout).await {
                    (
                        Problem::Tls,
                        detail!(
                            "tls-failed",
                            "{url} accepts TCP connections but the TLS connection failed",
                            url = self.cfg.url
                        ),
                    )
                } else {
                    (
                        Problem::Unreachable,
                        detail!(
                            "cannot-connect",
                            "cannot connect to {url}",
                            url = self.cfg.url
                        ),
                    )
                }
            }
        }
    }

    /// A base-scope read of `dn`: exists and readable?
    async fn probe_base(&self, ldap: &mut Ldap, d: &mut Diagnosis, step: &str, dn: &str) {
        let res = ldap
            .with_timeout(self.cfg.timeout)
            .search(dn, Scope::Base, "(objectClass=*)", vec!["1.1"])
            .await;
        match res {
            Ok(r) if r.1.rc == 0 && !r.0.is_empty() => {
                d.pass(step, detail!("base-exists", "{dn} exists", dn = dn))
            }
            Ok(r) if r.1.rc == 0 || r.1.rc == 32 => d.fail(
                step,
                Problem::MissingBase,
                detail!(
                    "base-missing",
                    "{dn} does not exist (or is not visible to the bind DN)",
                    dn = dn
                ),
            ),
            Ok(r) => d.fail(
                step,
                rc_problem(r.1.rc),
                detail!(
                    "base-read-failed",
                    "reading {dn} failed (LDAP {rc})",
                    dn = dn,
                    rc = r.1.rc
                ),
            ),
            Err(_) => d.fail(
                step,
                Problem::Unreachable,
                detail!(
                    "base-connection-lost",
                    "the connection failed while reading {dn}",
                    dn = dn
                ),
            ),
        }
    }

    async fn probe_schema(&self, ldap: &mut Ldap, d: &mut Diagnosis) {
        let mut classes = vec!["inetOrgPerson", "groupOfNames"];
        match &self.cfg.schema {
            LdapSchema::InetOrgPerson => {}
            LdapSchema::EduPerson { .. } => classes.push("eduPerson"),
            LdapSchema::Feide { .. } => classes.extend(["eduPerson", "norEduPerson"]),
        }
        let mut attrs: Vec<String> = vec![self.cfg.id_attribute.clone()];
        attrs.extend(self.cfg.number_attribute.iter().cloned());
        if let DisableMode::Attribute { name, .. } = &self.cfg.disable {
            attrs.push(name.clone());
        }
        // The subschema entry named by the root DSE (RFC 4512), `cn=Subschema` if none.
        let root = ldap
            .with_timeout(self.cfg.timeout)
            .search(
                "",
                Scope::Base,
                "(objectClass=*)",
                vec!["subschemaSubentry"],
            )
            .await;
        let sub = root
            .ok()
            .and_then(|r| r.0.into_iter().next())
            .and_then(|e| parse_search_entry(&e.0).ok())
            .and_then(|e| e.first("subschemaSubentry").map(str::to_string))
            .unwrap_or_else(|| "cn=Subschema".to_string());
        let res = ldap
            .with_timeout(self.cfg.timeout)
            .search(
                &sub,
                Scope::Base,
                "(objectClass=subschema)",
                vec!["objectClasses", "attributeTypes"],
            )
            .await;
        let entry = match res {
            Ok(r) if r.1.rc == 0 => {
                r.0.into_iter()
                    .next()
                    .and_then(|e| parse_search_entry(&e.0).ok())
            }
            Ok(r) => {
                d.fail(
                    "schema",
                    rc_problem(r.1.rc),
                    detail!(
                        "schema-read-failed",
                        "the schema ({sub}) cannot be read (LDAP {rc})",
                        sub = sub,
                        rc = r.1.rc
                    ),
                );
                return;
            }
            Err(_) => {
                d.fail(
                    "schema",
                    Problem::Unreachable,
                    detail!(
                        "schema-connection-lost",
                        "the connection failed while reading the schema"
                    ),
                );
                return;
            }
        };
        let Some(entry) = entry else {
            d.fail(
                "schema",
                Problem::PermissionDenied,
                detail!(
                    "schema-hidden",
                    "the schema ({sub}) is not visible to the bind DN",
                    sub = sub
                ),
            );
            return;
        };
        let have_classes: HashSet<String> = entry
            .get("objectClasses")
            .iter()
            .flat_map(|v| schema_names(v))
            .collect();
        let have_attrs: HashSet<String> = entry
            .get("attributeTypes")
            .iter()
            .flat_map(|v| schema_names(v))
            .collect();
        let mut missing: BTreeSet<String> = classes
            .iter()
            .filter(|c| !have_classes.contains(&c.to_ascii_lowercase()))
            .map(|c| format!("objectClass {c}"))
            .collect();
        missing.extend(
            attrs
                .iter()
                .filter(|a| !have_attrs.contains(&a.to_ascii_lowercase()))
                .map(|a| format!("attributeType {a}")),
        );
        if missing.is_empty() {
            d.pass(
                "schema",
                detail!(
                    "schema-ok",
                    "every object class and attribute type Fiktiv writes is known"
                ),
            );
        } else {
            d.fail(
                "schema",
                Problem::MissingSchema,
                detail!(
                    "schema-missing",
                    "the server does not know: {names}",
                    names = missing.into_iter().collect::<Vec<_>>().join(", ")
                ),
            );
        }
    }

    /// The attribute and value this target writes for a fictitious number (as
    /// `render` writes it), if it writes one.
    pub(super) fn number_value(&self, n: &FictitiousNumber) -> Option<(String, String)> {
        match (&self.cfg.schema, &self.cfg.number_attribute) {
            (LdapSchema::Feide { realm }, _) => Some((
                "norEduPersonLIN".to_string(),
                format!("{realm}:localnin:{}", n.canonical()),
            )),
            (_, Some(attr)) => Some((attr.clone(), n.canonical().to_string())),
            _ => None,
        }
    }

    /// `Target::probe_number`: a probe entry holding the number as the target writes it,
    /// added and deleted again.
    pub(super) async fn run_number_probe(
        &self,
        guard: &EgressGuard,
        n: &FictitiousNumber,
        d: &mut Diagnosis,
    ) {
        let Some((attr, value)) = self.number_value(n) else {
            return;
        };
        let mut ldap = match self.connect().await {
            Ok(l) => l,
            Err(e) => {
                d.fail("number", Problem::Unreachable, Detail::error(e));
                return;
            }
        };
        let mut probe = Diagnosis::new(self.cfg.name.clone());
        let feide = matches!(self.cfg.schema, LdapSchema::Feide { .. });
        self.probe_write(&mut ldap, guard, &mut probe, Some((&attr, &value, feide)))
            .await;
        let _ = ldap.unbind().await;
        for p in probe.probes {
            if p.ok {
                d.pass(
                    "number",
                    detail!(
                        "number-taken",
                        "the directory takes a number of the scheme in force in {attr}",
                        attr = attr
                    ),
                );
            } else {
                d.fail(
                    "number",
                    p.problem.unwrap_or(Problem::Unexpected),
                    detail!(
                        "number-refused",
                        "the directory refuses a number of the scheme in force in {attr}: {why}; \
                         choose another scheme in number_ranges or another number attribute",
                        attr = attr,
                        why = p.detail
                    ),
                );
            }
        }
    }

    /// Adds a probe entry under the people base and deletes it again. Its values are
    /// constants (and, for the number probe, a sample fictitious number), checked by
    /// the guard like any outbound value.
    async fn probe_write(
        &self,
        ldap: &mut Ldap,
        guard: &EgressGuard,
        d: &mut Diagnosis,
        number: Option<(&str, &str, bool)>,
    ) {
        let tag = uuid::Uuid::new_v4().simple().to_string();
        let uid = format!("fiktiv-probe-{}", tag.get(..12).unwrap_or("0"));
        let dn = format!("uid={},{}", dn_escape(uid.as_str()), self.cfg.people_base);
        let mut values = vec![
            ("dn".to_string(), dn.clone()),
            ("uid".to_string(), uid.clone()),
            ("cn".to_string(), uid.clone()),
            ("sn".to_string(), "probe".to_string()),
        ];
        if let Some((attr, value, _)) = number {
            values.push((attr.to_string(), value.to_string()));
        }
        if let Err(b) = guard.check_values(&self.cfg.name, None, &values) {
            d.fail("write", Problem::Unexpected, Detail::error(b));
            return;
        }
        let mut classes = HashSet::from([
            "top".to_string(),
            "person".to_string(),
            "organizationalPerson".to_string(),
            "inetOrgPerson".to_string(),
        ]);
        let mut extra = Vec::new();
        if let Some((attr, value, feide)) = number {
            if feide {
                classes.extend(["eduPerson".to_string(), "norEduPerson".to_string()]);
            }
            extra.push((attr.to_string(), HashSet::from([value.to_string()])));
        }
        let mut attrs = vec![
            ("objectClass".to_string(), classes),
            ("uid".to_string(), HashSet::from([uid.clone()])),
            ("cn".to_string(), HashSet::from([uid])),
            ("sn".to_string(), HashSet::from(["probe".to_string()])),
        ];
        attrs.extend(extra);
        match ldap.with_timeout(self.cfg.timeout).add(&dn, attrs).await {
            Ok(r) if r.rc == 0 => {
                let del = ldap.with_timeout(self.cfg.timeout).delete(&dn).await;
                match del {
                    Ok(r) if r.rc == 0 => d.pass(
                        "write",
                        detail!(
                            "probe-written",
                            "a probe entry was added under {base} and deleted",
                            base = self.cfg.people_base
                        ),
                    ),
                    Ok(r) => d.fail(
                        "write",
                        rc_problem(r.rc),
                        detail!(
                            "probe-left",
                            "a probe entry was added but could not be deleted (LDAP {rc}); delete {dn} by hand",
                            rc = r.rc,
                            dn = dn
                        ),
                    ),
                    Err(_) => d.fail(
                        "write",
                        Problem::Unreachable,
                        detail!(
                            "probe-maybe-left",
                            "the connection failed; delete {dn} by hand if it exists",
                            dn = dn
                        ),
                    ),
                }
            }
            Ok(r) => d.fail(
                "write",
                rc_problem(r.rc),
                detail!(
                    "probe-refused",
                    "adding an entry under {base} failed (LDAP {rc})",
                    base = self.cfg.people_base,
                    rc = r.rc
                ),
            ),
            Err(_) => d.fail(
                "write",
                Problem::Unreachable,
                detail!(
                    "write-connection-lost",
                    "the connection failed while writing"
                ),
            ),
        }
    }

    pub(super) async fn run_diagnosis(&self, guard: &EgressGuard) -> Diagnosis {
        let mut d = Diagnosis::new(self.cfg.name.clone());
        let mut ldap = match self.open_unbound().await {
            Ok(l) => {
                d.pass(
                    "connect",
                    match self.cfg.security {
                        LdapSecurity::Ldaps => {
                            detail!("connected-ldaps", "connected with TLS (ldaps)")
                        }
                        LdapSecurity::StartTls => {
                            detail!("connected-starttls", "connected and upgraded with StartTLS")
                        }
                        LdapSecurity::Plain => {
                            detail!("connected-plain", "connected without TLS (loopback only)")
                        }
                    },
                );
                l
            }
            Err((p, detail)) => {
                d.fail("connect", p, detail);
                return d;
            }
        };
        let bind = ldap
            .with_timeout(self.cfg.timeout)
            .simple_bind(&self.cfg.bind_dn, self.cfg.bind_password.expose_secret())
            .await;
        match bind {
            Ok(r) if r.rc == 0 => d.pass(
                "bind",
                detail!("bound", "bound as {dn}", dn = self.cfg.bind_dn),
            ),
            Ok(r) => {
                let detail = match r.rc {
                    49 => detail!(
                        "bind-refused",
                        "the server refused the bind DN {dn} or its password (LDAP 49, invalid credentials)",
                        dn = self.cfg.bind_dn
                    ),
                    rc => detail!(
                        "bind-failed",
                        "the bind as {dn} failed (LDAP {rc})",
                        dn = self.cfg.bind_dn,
                        rc = rc
                    ),
                };
                d.fail("bind", rc_problem(r.rc), detail);
                return d;
            }
            Err(_) => {
                d.fail(
                    "bind",
                    Problem::Unreachable,
                    detail!(
                        "bind-connection-lost",
                        "the connection failed during the bind"
                    ),
                );
                return d;
            }
        }
        let people = self.cfg.people_base.clone();
        let groups = self.cfg.groups_base.clone();
        self.probe_base(&mut ldap, &mut d, "people base", &people)
            .await;
        self.probe_base(&mut ldap, &mut d, "groups base", &groups)
            .await;
        if let DisableMode::MoveTo { base } = &self.cfg.disable {
            let base = base.clone();
            self.probe_base(&mut ldap, &mut d, "disabled base", &base)
                .await;
        }
        self.probe_schema(&mut ldap, &mut d).await;
        if d.ok() {
            self.probe_write(&mut ldap, guard, &mut d, None).await;
        }
        let _ = ldap.unbind().await;
        d
    }
}
