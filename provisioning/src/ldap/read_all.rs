//! The leak scan's read of a whole directory: paged searches with `(objectClass=*)`,
//! each result entry turned straight into a [`ScannedEntry`] as it arrives (no
//! intermediate copy of every value).

use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::{Ldap, Scope};

use super::LdapTarget;
use crate::ldap_parse::{is_under, normalize_dn, scanned_from_tag};
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
        let mut ldap = self.connect().await?;
        let mut out = Vec::new();
        for base in &bases {
            let res = self.read_base(&mut ldap, base, &mut out).await;
            if res.is_err() {
                let _ = ldap.unbind().await;
            }
            res?;
        }
        let _ = ldap.unbind().await;
        if overlap {
            let mut seen = std::collections::HashSet::new();
            out.retain(|e| seen.insert(normalize_dn(e.first("dn").unwrap_or(""))));
        }
        Ok(out)
    }

    async fn read_base(
        &self,
        ldap: &mut Ldap,
        base: &str,
        out: &mut Vec<ScannedEntry>,
    ) -> Result<(), TargetError> {
        let adapters: Vec<Box<dyn Adapter<String, Vec<String>>>> = vec![
            Box::new(EntriesOnly::new()),
            Box::new(PagedResults::new(self.cfg.page_size.max(1))),
        ];
        let mut stream = ldap
            .streaming_search_with(
                adapters,
                base,
                Scope::Subtree,
                "(objectClass=*)",
                vec!["*".to_string(), "entryUUID".to_string()],
            )
            .await
            .map_err(self.err("search"))?;
        let start = out.len();
        while let Some(re) = stream.next().await.map_err(self.err("search"))? {
            let e = scanned_from_tag(&self.cfg.name, re.0, out.len()).map_err(|source| {
                TargetError::Parse {
                    target: self.cfg.name.clone(),
                    op: "search",
                    source,
                }
            })?;
            out.push(e);
        }
        match stream.finish().await.rc {
            0 => Ok(()),
            32 => {
                // noSuchObject: the base does not exist (yet).
                out.truncate(start);
                Ok(())
            }
            rc => Err(self.rc("search", rc)),
        }
    }
}
