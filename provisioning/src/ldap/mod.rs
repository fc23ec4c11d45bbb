//! LDAP target: OpenLDAP, Active Directory, Feide-style directories (`ldap3`, rustls).
//!
//! - **Entries** are `inetOrgPerson` (+ `eduPerson`, + `norEduPerson` for Feide) at
//!   `uid=<uid>,<people base>`, with uid, cn and mail from templates. The person id
//!   goes in the configured id attribute (default `employeeNumber`); nothing marks the
//!   entry as fictitious, because a marker would single the protected pupil out.
//! - **Feide**: a fictitious number goes in `norEduPersonLIN` as
//!   `<realm>:localnin:<digits>`, never in `norEduPersonNIN`; the fictitious birth date
//!   in `norEduPersonBirthDate`.
//! - **Groups**: one `groupOfNames` per school unit and per class, `cn=<group id>` under
//!   the groups base, the group's name in `description`. A group whose last member
//!   leaves is deleted (groupOfNames needs a member).
//! - **Escaping**: DN values per RFC 4514 ([`ldap3::dn_escape`]), filter values per
//!   RFC 4515 ([`ldap3::ldap_escape`]). Filters only ever carry the opaque person id, a
//!   DN Fiktiv wrote, or no value at all (`(objectClass=*)` for the leak scan).
//! - **Disabling** is configurable ([`DisableMode`]); the default sets
//!   `description: disabled`, which inetOrgPerson allows and every directory keeps. The
//!   account also leaves its groups, so a disabled pupil drops out of class lists.
//! - **Transport**: `ldaps://` or StartTLS with rustls (system roots, or a CA file);
//!   plain `ldap://` only to a loopback address (tests). Certificate checks cannot be
//!   turned off.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::{dn_escape, ldap_escape, Ldap, LdapConnAsync, LdapConnSettings, LdapError, Mod, Scope};
use secrecy::ExposeSecret;

use crate::guard::{Cleared, EgressGuard};
use crate::ldap_parse::{
    is_under, normalize_dn, parent_dn, parse_generalized_time, parse_search_entry, split_dn,
    LdapEntry,
};
use crate::model::{FictitiousPerson, GroupId, PersonId, PersonKind, TargetName};
use crate::record::{ManagedEntry, OutboundGroup, OutboundRecord, Payload, ScannedEntry};
use crate::scan_page::ScanPage;
use crate::target::{Applied, Expect, Target, TargetError};
use crate::template::Fold;

mod batch;
mod config;
mod diagnose;
mod read_all;
mod scan_conn;
use config::{is_loopback, url_host};
pub use config::{DisableMode, LdapConfig, LdapSchema, LdapSecurity};

/// An LDAP record's DN, attributes and groups.
type LdapPayload<'r> = (
    &'r String,
    &'r BTreeMap<String, Vec<String>>,
    &'r [OutboundGroup],
);

/// The LDAP target.
#[derive(Debug)]
pub struct LdapTarget {
    cfg: LdapConfig,
}

/// Attributes Fiktiv writes on a person entry (and removes when a record no longer has
/// them). `objectClass` is set on add and replaced on update.
const PERSON_ATTRS: &[&str] = &[
    "uid",
    "cn",
    "sn",
    "givenName",
    "displayName",
    "mail",
    "eduPersonAffiliation",
    "eduPersonPrimaryAffiliation",
    "eduPersonPrincipalName",
    "norEduPersonLIN",
    "norEduPersonBirthDate",
];

impl LdapTarget {
    pub fn new(cfg: LdapConfig) -> Result<Self, TargetError> {
        let t = Self { cfg };
        t.check_transport()?;
        Ok(t)
    }

    fn config(&self, what: &'static str) -> TargetError {
        TargetError::Config {
            target: self.cfg.name.clone(),
            what,
        }
    }

    fn check_transport(&self) -> Result<(), TargetError> {
        let url = url_host(&self.cfg.url)
            .ok_or_else(|| self.config("the URL is not ldap:// or ldaps://"))?;
        match (self.cfg.security, url.0) {
            (LdapSecurity::Ldaps, "ldaps") => Ok(()),
            (LdapSecurity::StartTls, "ldap") => Ok(()),
            (LdapSecurity::Plain, "ldap") if is_loopback(url.1) => Ok(()),
            (LdapSecurity::Plain, _) => {
                Err(self.config("plain LDAP is allowed to loopback addresses only"))
            }
            _ => Err(self.config("the URL scheme does not match the security setting")),
        }
    }

    fn err(&self, op: &'static str) -> impl Fn(LdapError) -> TargetError + '_ {
        move |e| match e {
            LdapError::LdapResult { result } => TargetError::Ldap {
                target: self.cfg.name.clone(),
                op,
                rc: result.rc,
            },
            other => TargetError::Transport {
                target: self.cfg.name.clone(),
                op,
                kind: match other {
                    LdapError::Timeout { .. } => "timeout",
                    LdapError::Io { .. } => "I/O",
                    LdapError::Rustls { .. } | LdapError::DNSName { .. } => "TLS",
                    LdapError::UrlParsing { .. } | LdapError::UnknownScheme(_) => "URL",
                    _ => "protocol",
                },
            },
        }
    }

    fn rc(&self, op: &'static str, rc: u32) -> TargetError {
        TargetError::Ldap {
            target: self.cfg.name.clone(),
            op,
            rc,
        }
    }

    async fn connect(&self) -> Result<Ldap, TargetError> {
        let mut settings = LdapConnSettings::new().set_conn_timeout(self.cfg.timeout);
        if self.cfg.security == LdapSecurity::StartTls {
            settings = settings.set_starttls(true);
        }
        if let Some(ca) = &self.cfg.ca_file {
            settings = settings.set_config(Arc::new(self.tls_config(ca)?));
        }
        let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &self.cfg.url)
            .await
            .map_err(self.err("connect"))?;
        let name = self.cfg.name.clone();
        tokio::spawn(async move {
            if conn.drive().await.is_err() {
                tracing::warn!(target_name = %name, "LDAP connection ended with an error");
            }
        });
        ldap.with_timeout(self.cfg.timeout)
            .simple_bind(&self.cfg.bind_dn, self.cfg.bind_password.expose_secret())
            .await
            .map_err(self.err("bind"))?
            .success()
            .map_err(self.err("bind"))?;
        Ok(ldap)
    }

    fn tls_config(&self, ca: &std::path::Path) -> Result<rustls::ClientConfig, TargetError> {
        use rustls_pki_types::pem::PemObject as _;
        use rustls_pki_types::CertificateDer;
        let mut roots = rustls::RootCertStore::empty();
        let certs = CertificateDer::pem_file_iter(ca)
            .map_err(|_| self.config("the CA file cannot be read"))?;
        for c in certs {
            let c = c.map_err(|_| self.config("the CA file is not PEM"))?;
            roots
                .add(c)
                .map_err(|_| self.config("the CA file holds an unusable certificate"))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Ok(rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|_| self.config("no usable TLS versions"))?
            .with_root_certificates(roots)
            .with_no_client_auth())
    }

    /// A paged subtree search; a missing base gives no entries.
    async fn search(
        &self,
        ldap: &mut Ldap,
        base: &str,
        filter: &str,
        attrs: Vec<String>,
    ) -> Result<Vec<LdapEntry>, TargetError> {
        let adapters: Vec<Box<dyn Adapter<String, Vec<String>>>> = vec![
            Box::new(EntriesOnly::new()),
            Box::new(PagedResults::new(self.cfg.page_size.max(1))),
        ];
        let mut stream = ldap
            .streaming_search_with(adapters, base, Scope::Subtree, filter, attrs)
            .await
            .map_err(self.err("search"))?;
        let mut out = Vec::new();
        while let Some(re) = stream.next().await.map_err(self.err("search"))? {
            out.push(
                parse_search_entry(&re.0).map_err(|source| TargetError::Parse {
                    target: self.cfg.name.clone(),
                    op: "search",
                    source,
                })?,
            );
        }
        let res = stream.finish().await;
        match res.rc {
            0 => Ok(out),
            32 => Ok(Vec::new()), // noSuchObject: the base does not exist (yet)
            rc => Err(self.rc("search", rc)),
        }
    }

    fn people_bases(&self) -> Vec<&str> {
        let mut b = vec![self.cfg.people_base.as_str()];
        if let DisableMode::MoveTo { base } = &self.cfg.disable {
            if !is_under(base, &self.cfg.people_base) {
                b.push(base);
            }
        }
        b
    }

    fn person_attrs(&self) -> Vec<String> {
        vec!["*".to_string(), "modifyTimestamp".to_string()]
    }

    async fn find(
        &self,
        ldap: &mut Ldap,
        person: &PersonId,
    ) -> Result<Option<LdapEntry>, TargetError> {
        let filter = format!(
            "({}={})",
            self.cfg.id_attribute,
            ldap_escape(person.to_string())
        );
        for base in self.people_bases() {
            let found = self
                .search(ldap, base, &filter, self.person_attrs())
                .await?;
            if let Some(e) = found.into_iter().next() {
                return Ok(Some(e));
            }
        }
        Ok(None)
    }

    /// The groups (cn) under the groups base that have `dn` as a member.
    async fn groups_of(&self, ldap: &mut Ldap, dn: &str) -> Result<Vec<LdapEntry>, TargetError> {
        let filter = format!("(&(objectClass=groupOfNames)(member={}))", ldap_escape(dn));
        self.search(
            ldap,
            &self.cfg.groups_base,
            &filter,
            vec!["cn".into(), "member".into()],
        )
        .await
    }

    fn group_dn(&self, id: &GroupId) -> String {
        format!("cn={},{}", dn_escape(id.as_str()), self.cfg.groups_base)
    }

    async fn add_member(
        &self,
        ldap: &mut Ldap,
        g: &OutboundGroup,
        member: &str,
    ) -> Result<(), TargetError> {
        let gdn = self.group_dn(&g.id);
        let res = ldap
            .modify(
                &gdn,
                vec![Mod::Add(
                    "member".to_string(),
                    HashSet::from([member.to_string()]),
                )],
            )
            .await
            .map_err(self.err("group member add"))?;
        match res.rc {
            0 | 20 => Ok(()), // 20: attributeOrValueExists
            32 => {
                let attrs = vec![
                    (
                        "objectClass".to_string(),
                        HashSet::from(["top".to_string(), "groupOfNames".to_string()]),
                    ),
                    ("cn".to_string(), HashSet::from([g.id.to_string()])),
                    ("description".to_string(), HashSet::from([g.name.clone()])),
                    ("member".to_string(), HashSet::from([member.to_string()])),
                ];
                let res = ldap.add(&gdn, attrs).await.map_err(self.err("group add"))?;
                match res.rc {
                    0 => Ok(()),
                    rc => Err(self.rc("group add", rc)),
                }
            }
            rc => Err(self.rc("group member add", rc)),
        }
    }

    async fn remove_member(
        &self,
        ldap: &mut Ldap,
        gdn: &str,
        member: &str,
    ) -> Result<(), TargetError> {
        let res = ldap
            .modify(
                gdn,
                vec![Mod::Delete(
                    "member".to_string(),
                    HashSet::from([member.to_string()]),
                )],
            )
            .await
            .map_err(self.err("group member remove"))?;
        match res.rc {
            0 | 16 => Ok(()), // 16: noSuchAttribute (not a member any more)
            65 => {
                // objectClassViolation: the last member; a groupOfNames cannot be empty.
                let res = ldap.delete(gdn).await.map_err(self.err("group delete"))?;
                match res.rc {
                    0 | 32 => Ok(()),
                    rc => Err(self.rc("group delete", rc)),
                }
            }
            rc => Err(self.rc("group member remove", rc)),
        }
    }

    async fn leave_all_groups(&self, ldap: &mut Ldap, dn: &str) -> Result<(), TargetError> {
        for g in self.groups_of(ldap, dn).await? {
            let member = g
                .get("member")
                .iter()
                .find(|m| normalize_dn(m) == normalize_dn(dn))
                .cloned()
                .unwrap_or_else(|| dn.to_string());
            self.remove_member(ldap, &g.dn, &member).await?;
        }
        Ok(())
    }

    /// The DN, attributes and groups of an LDAP record for this target.
    fn ldap_payload<'r>(&self, rec: &'r OutboundRecord) -> Result<LdapPayload<'r>, TargetError> {
        if rec.target != self.cfg.name {
            return Err(TargetError::WrongTarget {
                target: self.cfg.name.clone(),
                other: rec.target.clone(),
            });
        }
        let Payload::Ldap {
            dn,
            attributes,
            groups,
        } = &rec.payload
        else {
            return Err(self.config("the record is not an LDAP record"));
        };
        Ok((dn, attributes, groups))
    }

    /// [`Target::upsert`] on an open connection: find the entry by person id, add it or
    /// bring it to the record (rename, modify, re-enable), then its group memberships.
    async fn upsert_on(
        &self,
        ldap: &mut Ldap,
        rec: &OutboundRecord,
    ) -> Result<Applied, TargetError> {
        let (dn, attributes, groups) = self.ldap_payload(rec)?;
        let existing = self.find(ldap, &rec.person).await?;
        let applied = match &existing {
            None => {
                let res = ldap
                    .add(dn, to_mods_add(attributes))
                    .await
                    .map_err(self.err("add"))?;
                match res.rc {
                    0 => Applied::Created,
                    68 => {
                        return Err(TargetError::Conflict {
                            target: self.cfg.name.clone(),
                            op: "add",
                        })
                    }
                    rc => return Err(self.rc("add", rc)),
                }
            }
            Some(old) => {
                if normalize_dn(&old.dn) != normalize_dn(dn) {
                    let rdn = split_dn(dn)
                        .first()
                        .map(|r| r.to_string())
                        .unwrap_or_default();
                    let new_sup = (normalize_dn(&parent_dn(&old.dn))
                        != normalize_dn(&self.cfg.people_base))
                    .then_some(self.cfg.people_base.as_str());
                    self.leave_all_groups(ldap, &old.dn).await?;
                    let res = ldap
                        .modifydn(&old.dn, &rdn, true, new_sup)
                        .await
                        .map_err(self.err("rename"))?;
                    match res.rc {
                        0 => {}
                        68 => {
                            return Err(TargetError::Conflict {
                                target: self.cfg.name.clone(),
                                op: "rename",
                            })
                        }
                        rc => return Err(self.rc("rename", rc)),
                    }
                }
                let mut mods: Vec<Mod<String>> = Vec::new();
                let mut names: BTreeSet<String> =
                    PERSON_ATTRS.iter().map(|s| s.to_string()).collect();
                names.extend(self.cfg.number_attribute.iter().cloned());
                names.insert("objectClass".to_string());
                names.insert(self.cfg.id_attribute.clone());
                for n in &names {
                    let want = attributes
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(n))
                        .map(|(_, v)| v.iter().cloned().collect::<HashSet<String>>())
                        .unwrap_or_default();
                    let have: HashSet<String> = old.get(n).iter().cloned().collect();
                    if want != have {
                        mods.push(Mod::Replace(n.clone(), want));
                    }
                }
                // Re-enable.
                match &self.cfg.disable {
                    DisableMode::Attribute { name, value } => {
                        if let Some(v) =
                            old.get(name).iter().find(|v| v.eq_ignore_ascii_case(value))
                        {
                            mods.push(Mod::Delete(name.clone(), HashSet::from([v.clone()])));
                        }
                    }
                    DisableMode::ActiveDirectory => {
                        mods.push(Mod::Replace(
                            "userAccountControl".to_string(),
                            HashSet::from(["512".to_string()]),
                        ));
                    }
                    DisableMode::MoveTo { .. } => {}
                }
                if !mods.is_empty() {
                    let res = ldap.modify(dn, mods).await.map_err(self.err("modify"))?;
                    if res.rc != 0 {
                        return Err(self.rc("modify", res.rc));
                    }
                }
                Applied::Updated
            }
        };
        self.sync_groups(ldap, dn, groups).await?;
        Ok(applied)
    }

    /// Group membership of one entry: join the wanted groups, leave the others.
    async fn sync_groups(
        &self,
        ldap: &mut Ldap,
        dn: &str,
        groups: &[OutboundGroup],
    ) -> Result<(), TargetError> {
        let current = self.groups_of(ldap, dn).await?;
        let want: BTreeSet<&GroupId> = groups.iter().map(|g| &g.id).collect();
        for g in &current {
            let keep = g
                .first("cn")
                .and_then(|c| GroupId::new(c).ok())
                .is_some_and(|id| want.contains(&id));
            if !keep {
                self.remove_member(ldap, &g.dn, dn).await?;
            }
        }
        let have = Self::group_ids(&current);
        for g in groups.iter().filter(|g| !have.contains(&g.id)) {
            self.add_member(ldap, g, dn).await?;
        }
        Ok(())
    }

    fn enabled(&self, e: &LdapEntry) -> bool {
        match &self.cfg.disable {
            DisableMode::Attribute { name, value } => {
                !e.get(name).iter().any(|v| v.eq_ignore_ascii_case(value))
            }
            DisableMode::MoveTo { base } => !is_under(&e.dn, base),
            DisableMode::ActiveDirectory => e
                .first("userAccountControl")
                .and_then(|v| v.trim().parse::<u32>().ok())
                .is_some_and(|uac| uac & 2 == 0),
        }
    }

    fn managed(
        &self,
        e: LdapEntry,
        groups: BTreeSet<GroupId>,
        read_at: DateTime<Utc>,
    ) -> Option<ManagedEntry> {
        let person = e.first(&self.cfg.id_attribute)?.parse::<PersonId>().ok()?;
        Some(ManagedEntry {
            target: self.cfg.name.clone(),
            person,
            enabled: self.enabled(&e),
            given_name: e.first("givenName").map(str::to_string),
            family_name: e.first("sn").map(str::to_string),
            groups,
            modified_at: e.first("modifyTimestamp").and_then(parse_generalized_time),
            read_at,
            entry_id: e.dn,
            attributes: e.attrs,
        })
    }

    fn group_ids(entries: &[LdapEntry]) -> BTreeSet<GroupId> {
        entries
            .iter()
            .filter_map(|g| g.first("cn").and_then(|cn| GroupId::new(cn).ok()))
            .collect()
    }
}

fn to_mods_add(attrs: &BTreeMap<String, Vec<String>>) -> Vec<(String, HashSet<String>)> {
    attrs
        .iter()
        .map(|(k, v)| (k.clone(), v.iter().cloned().collect()))
        .collect()
}

#[async_trait]
impl Target for LdapTarget {
    fn name(&self) -> &TargetName {
        &self.cfg.name
    }

    fn render(&self, p: &FictitiousPerson) -> Result<OutboundRecord, TargetError> {
        let tmpl = |_| self.config("a template cannot be rendered for this person");
        let uid = self.cfg.uid.render(p, Fold::Ascii).map_err(tmpl)?;
        let cn = self.cfg.cn.render(p, Fold::None).map_err(tmpl)?;
        let mut a: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut set = |k: &str, v: Vec<String>| {
            a.insert(k.to_string(), v);
        };
        let mut classes = vec!["top", "person", "organizationalPerson", "inetOrgPerson"];
        set("uid", vec![uid.clone()]);
        set("cn", vec![cn.clone()]);
        set("displayName", vec![cn]);
        set("givenName", vec![p.given_name.clone()]);
        set("sn", vec![p.family_name.clone()]);
        set(&self.cfg.id_attribute, vec![p.id.to_string()]);
        if let Some(m) = &self.cfg.mail {
            set("mail", vec![m.render(p, Fold::Ascii).map_err(tmpl)?]);
        }
        if self.cfg.cn.as_str().is_empty() {
            return Err(self.config("the cn template is empty"));
        }
        let affiliation = match p.kind {
            PersonKind::Student => "student",
            PersonKind::Guardian => "affiliate",
        };
        let scope = match &self.cfg.schema {
            LdapSchema::InetOrgPerson => None,
            LdapSchema::EduPerson { scope } => Some(scope),
            LdapSchema::Feide { realm } => Some(realm),
        };
        if let Some(scope) = scope {
            classes.push("eduPerson");
            set(
                "eduPersonAffiliation",
                vec![affiliation.to_string(), "member".to_string()],
            );
            set("eduPersonPrimaryAffiliation", vec![affiliation.to_string()]);
            set("eduPersonPrincipalName", vec![format!("{uid}@{scope}")]);
        }
        match (&self.cfg.schema, &p.number, &self.cfg.number_attribute) {
            (LdapSchema::Feide { realm }, n, _) => {
                classes.push("norEduPerson");
                set(
                    "norEduPersonBirthDate",
                    vec![p.birth_date.format("%Y%m%d").to_string()],
                );
                if let Some(n) = n {
                    // Feide: a locally issued number is a LIN, never norEduPersonNIN.
                    set(
                        "norEduPersonLIN",
                        vec![format!("{realm}:localnin:{}", n.canonical())],
                    );
                }
            }
            (_, Some(n), Some(attr)) => set(attr, vec![n.canonical().to_string()]),
            _ => {}
        }
        a.insert(
            "objectClass".to_string(),
            classes.into_iter().map(str::to_string).collect(),
        );
        let groups = std::iter::once(OutboundGroup {
            id: p.school_unit.id.clone(),
            name: p.school_unit.name.clone(),
        })
        .chain(p.groups.iter().map(|g| OutboundGroup {
            id: g.id.clone(),
            name: g.name.clone(),
        }))
        .collect();
        Ok(OutboundRecord {
            target: self.cfg.name.clone(),
            person: p.id,
            payload: Payload::Ldap {
                dn: format!("uid={},{}", dn_escape(uid.as_str()), self.cfg.people_base),
                attributes: a,
                groups,
            },
        })
    }

    async fn upsert(
        &self,
        _guard: &EgressGuard,
        record: Cleared,
        _at: DateTime<Utc>,
    ) -> Result<Applied, TargetError> {
        let rec = record.record();
        self.ldap_payload(rec)?;
        let mut ldap = self.connect().await?;
        let applied = self.upsert_on(&mut ldap, rec).await;
        let _ = ldap.unbind().await;
        let applied = applied?;
        tracing::debug!(target_name = %self.cfg.name, person = %rec.person, ?applied, "LDAP entry written");
        Ok(applied)
    }

    /// Many records over one connection, pipelined (`upsert_batch` in `ldap/batch.rs`).
    async fn upsert_many(
        &self,
        guard: &EgressGuard,
        records: Vec<(Cleared, Expect)>,
        at: DateTime<Utc>,
    ) -> Result<Vec<Result<Applied, TargetError>>, TargetError> {
        self.upsert_batch(guard, records, at).await
    }

    async fn disable(
        &self,
        _guard: &EgressGuard,
        person: &PersonId,
        _at: DateTime<Utc>,
    ) -> Result<(), TargetError> {
        let mut ldap = self.connect().await?;
        let Some(e) = self.find(&mut ldap, person).await? else {
            return Err(TargetError::NotFound {
                target: self.cfg.name.clone(),
                person: *person,
            });
        };
        self.leave_all_groups(&mut ldap, &e.dn).await?;
        if self.enabled(&e) {
            let res = match &self.cfg.disable {
                DisableMode::Attribute { name, value } => ldap
                    .modify(
                        &e.dn,
                        vec![Mod::Add(name.clone(), HashSet::from([value.clone()]))],
                    )
                    .await
                    .map_err(self.err("disable"))?,
                DisableMode::ActiveDirectory => ldap
                    .modify(
                        &e.dn,
                        vec![Mod::Replace(
                            "userAccountControl".to_string(),
                            HashSet::from(["514".to_string()]),
                        )],
                    )
                    .await
                    .map_err(self.err("disable"))?,
                DisableMode::MoveTo { base } => {
                    let rdn = split_dn(&e.dn)
                        .first()
                        .map(|r| r.to_string())
                        .unwrap_or_default();
                    ldap.modifydn(&e.dn, &rdn, true, Some(base))
                        .await
                        .map_err(self.err("disable"))?
                }
            };
            if res.rc != 0 {
                return Err(self.rc("disable", res.rc));
            }
        }
        let _ = ldap.unbind().await;
        tracing::debug!(target_name = %self.cfg.name, person = %person, "LDAP entry disabled");
        Ok(())
    }

    async fn delete(
        &self,
        _guard: &EgressGuard,
        person: &PersonId,
        _at: DateTime<Utc>,
    ) -> Result<(), TargetError> {
        let mut ldap = self.connect().await?;
        if let Some(e) = self.find(&mut ldap, person).await? {
            self.leave_all_groups(&mut ldap, &e.dn).await?;
            let res = ldap.delete(&e.dn).await.map_err(self.err("delete"))?;
            if !matches!(res.rc, 0 | 32) {
                return Err(self.rc("delete", res.rc));
            }
        }
        let _ = ldap.unbind().await;
        tracing::debug!(target_name = %self.cfg.name, person = %person, "LDAP entry deleted");
        Ok(())
    }

    async fn read_one(
        &self,
        person: &PersonId,
        read_at: DateTime<Utc>,
    ) -> Result<Option<ManagedEntry>, TargetError> {
        let mut ldap = self.connect().await?;
        let Some(e) = self.find(&mut ldap, person).await? else {
            return Ok(None);
        };
        let groups = Self::group_ids(&self.groups_of(&mut ldap, &e.dn).await?);
        let _ = ldap.unbind().await;
        Ok(self.managed(e, groups, read_at))
    }

    async fn read_managed(&self, read_at: DateTime<Utc>) -> Result<Vec<ManagedEntry>, TargetError> {
        let mut ldap = self.connect().await?;
        let filter = format!("({}=*)", self.cfg.id_attribute);
        let mut people = Vec::new();
        for base in self.people_bases() {
            people.extend(
                self.search(&mut ldap, base, &filter, self.person_attrs())
                    .await?,
            );
        }
        let groups = self
            .search(
                &mut ldap,
                &self.cfg.groups_base,
                "(objectClass=groupOfNames)",
                vec!["cn".into(), "member".into()],
            )
            .await?;
        let _ = ldap.unbind().await;
        let mut member_of: BTreeMap<String, BTreeSet<GroupId>> = BTreeMap::new();
        for g in &groups {
            let Some(id) = g.first("cn").and_then(|c| GroupId::new(c).ok()) else {
                continue;
            };
            for m in g.get("member") {
                member_of
                    .entry(normalize_dn(m))
                    .or_default()
                    .insert(id.clone());
            }
        }
        Ok(people
            .into_iter()
            .filter_map(|e| {
                let g = member_of
                    .get(&normalize_dn(&e.dn))
                    .cloned()
                    .unwrap_or_default();
                self.managed(e, g, read_at)
            })
            .collect())
    }

    /// Paged search of every configured base with `(objectClass=*)`: no value is ever
    /// in the filter. Each entry is scanned with its DN, the value of its first RDN and
    /// every user attribute; it is located by `entryUUID`.
    async fn read_everything(&self) -> Result<Vec<ScannedEntry>, TargetError> {
        let mut out = Vec::new();
        let mut failed = None;
        self.read_all(&mut |page| match page.to_scanned() {
            Ok(entries) => out.extend(entries),
            Err(e) => {
                failed.get_or_insert(e);
            }
        })
        .await?;
        // Cannot happen: a page holds only entries that were checked to decode.
        if let Some(e) = failed {
            return Err(self.parse("search", e));
        }
        Ok(out)
    }

    /// As `read_everything`, one search page at a time, each entry as received
    /// (decoded where it is matched).
    async fn read_everything_in_pages(
        &self,
        page: &mut (dyn FnMut(ScanPage) + Send),
    ) -> Result<usize, TargetError> {
        self.read_all(&mut |p| page(ScanPage::Ldap(p))).await
    }

    async fn scan_scope(&self) -> Result<Vec<String>, TargetError> {
        self.scan_bases().await
    }

    async fn probe_number(
        &self,
        guard: &EgressGuard,
        number: &crate::model::FictitiousNumber,
        d: &mut crate::diagnose::Diagnosis,
    ) {
        self.run_number_probe(guard, number, d).await;
    }

    fn volatile_attributes(&self) -> &'static [&'static str] {
        &["modifyTimestamp"]
    }

    async fn diagnose(
        &self,
        guard: &EgressGuard,
        _at: DateTime<Utc>,
    ) -> crate::diagnose::Diagnosis {
        self.run_diagnosis(guard).await
    }
}
