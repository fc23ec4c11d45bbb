//! The leak scan's read of a whole directory: paged subtree searches with
//! `(objectClass=*)` over the scan bases, on the scan's own connection
//! ([`super::scan_conn`]), each result entry decoded straight into a [`ScannedEntry`].

use super::scan_conn::ScanConn;
use super::LdapTarget;
use crate::ldap_parse::{is_under, normalize_dn};
use crate::record::ScannedEntry;
use crate::target::TargetError;

impl LdapTarget {
    /// Every entry under the scan bases (default: the people and groups bases), each once.
    pub(super) async fn read_all(&self) -> Result<Vec<ScannedEntry>, TargetError> {
        let mut bases: Vec<&str> = self.cfg.scan_bases.iter().map(String::as_str).collect();
        if bases.is_empty() {
            bases = self.people_bases();
            bases.push(&self.cfg.groups_base);
        }
        // An entry can come twice only if one base lies under another.
        let overlap = bases.iter().enumerate().any(|(i, a)| {
            bases
                .iter()
                .enumerate()
                .any(|(j, b)| i != j && is_under(a, b))
        });
        let mut conn = ScanConn::open(self).await?;
        let mut out = Vec::new();
        for base in &bases {
            conn.read_base(base, &mut out).await?;
        }
        conn.unbind().await;
        if overlap {
            let mut seen = std::collections::HashSet::new();
            out.retain(|e| seen.insert(normalize_dn(e.first("dn").unwrap_or(""))));
        }
        Ok(out)
    }
}
