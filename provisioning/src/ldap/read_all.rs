//! The leak scan's read of a whole directory: paged subtree searches with
//! `(objectClass=*)` over the scan bases (by default every naming context the server
//! advertises), on the scan's own connection
//! ([`super::scan_conn`]), each result entry checked and kept as received
//! ([`LdapEntries`]), each page handed over as soon as it is complete.

use std::collections::HashSet;

use ldap3::Scope;

use super::scan_conn::ScanConn;
use super::LdapTarget;
use crate::ldap_parse::{is_under, normalize_dn, parse_search_entry};
use crate::scan_page::LdapEntries;
use crate::target::TargetError;

impl LdapTarget {
    /// The bases the leak scan reads: the configured `scan_bases`, or by default every
    /// naming context the server advertises in its root DSE (RFC 4512 5.1), so that a
    /// leftover entry of a real pupil in a branch Fiktiv never writes to is read too.
    /// A server that advertises none is an error (the scan of the target is then
    /// incomplete, never clean): set `scan_bases` for it.
    pub async fn scan_bases(&self) -> Result<Vec<String>, TargetError> {
        if !self.cfg.scan_bases.is_empty() {
            return Ok(self.cfg.scan_bases.clone());
        }
        let mut ldap = self.connect().await?;
        let res = ldap
            .with_timeout(self.cfg.timeout)
            .search("", Scope::Base, "(objectClass=*)", vec!["namingContexts"])
            .await
            .map_err(self.err("search"))?;
        let _ = ldap.unbind().await;
        let (entries, result) = (res.0, res.1);
        if result.rc != 0 {
            return Err(self.rc("search", result.rc));
        }
        let mut bases: Vec<String> = Vec::new();
        for e in entries {
            let e = parse_search_entry(&e.0).map_err(|source| self.parse("search", source))?;
            for nc in e.get("namingContexts") {
                // An empty context is the root DSE itself, not a subtree to read.
                if !nc.trim().is_empty() && !bases.iter().any(|b| b.eq_ignore_ascii_case(nc)) {
                    bases.push(nc.clone());
                }
            }
        }
        if bases.is_empty() {
            return Err(self.config(
                "the server advertises no naming context in its root DSE; set scan_bases",
            ));
        }
        Ok(bases)
    }

    /// Every entry under the scan bases ([`Self::scan_bases`]), each once, page by page
    /// to `sink`. Returns how many entries were handed over.
    pub(super) async fn read_all(
        &self,
        sink: &mut (dyn FnMut(LdapEntries) + Send),
    ) -> Result<usize, TargetError> {
        // The scan's own connection first: a TLS or bind failure is named as such
        // (the root DSE is read over the client library, which names it I/O).
        let mut conn = ScanConn::open(self).await?;
        let owned = self.scan_bases().await?;
        let bases: Vec<&str> = owned.iter().map(String::as_str).collect();
        // An entry can come twice only if one base lies under another; then every DN
        // is remembered and an entry seen before is dropped.
        let overlap = bases.iter().enumerate().any(|(i, a)| {
            bases
                .iter()
                .enumerate()
                .any(|(j, b)| i != j && is_under(a, b))
        });
        let mut seen: Option<HashSet<String>> = overlap.then(HashSet::new);
        let mut count = 0usize;
        let mut pass = |mut page: LdapEntries| {
            if let Some(seen) = seen.as_mut() {
                page.retain_by_dn(|dn| seen.insert(normalize_dn(dn)));
            }
            count += page.len();
            if !page.is_empty() {
                sink(page);
            }
        };
        for base in &bases {
            conn.read_base(base, &mut pass).await?;
        }
        conn.unbind().await;
        Ok(count)
    }
}
