//! The leak scan's read of a whole directory: paged subtree searches with
//! `(objectClass=*)` over the scan bases, on the scan's own connection
//! ([`super::scan_conn`]), each result entry checked and kept as received
//! ([`LdapEntries`]), each page handed over as soon as it is complete.

use std::collections::HashSet;

use super::scan_conn::ScanConn;
use super::LdapTarget;
use crate::ldap_parse::{is_under, normalize_dn};
use crate::scan_page::LdapEntries;
use crate::target::TargetError;

impl LdapTarget {
    /// Every entry under the scan bases (default: the people and groups bases), each
    /// once, page by page to `sink`. Returns how many entries were handed over.
    pub(super) async fn read_all(
        &self,
        sink: &mut (dyn FnMut(LdapEntries) + Send),
    ) -> Result<usize, TargetError> {
        let mut bases: Vec<&str> = self.cfg.scan_bases.iter().map(String::as_str).collect();
        if bases.is_empty() {
            bases = self.people_bases();
            bases.push(&self.cfg.groups_base);
        }
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
        let mut conn = ScanConn::open(self).await?;
        for base in &bases {
            conn.read_base(base, &mut pass).await?;
        }
        conn.unbind().await;
        Ok(count)
    }
}
