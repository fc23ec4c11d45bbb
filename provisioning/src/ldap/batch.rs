//! Many records over one connection ([`Target::upsert_many`](crate::Target::upsert_many)).
//!
//! 1. Entries the plan knows to be new are added without a search first, several adds
//!    in flight at once on the one connection (LDAP lets a client pipeline operations).
//!    An add that finds the DN taken (`entryAlreadyExists`) falls back to step 2.
//! 2. Records whose entry may exist go one by one through the same path as
//!    [`Target::upsert`](crate::Target::upsert) (find, rename, modify, groups), on the
//!    same connection.
//! 3. Group memberships of the entries added in step 1: the groups are read once, and
//!    each group gets one modify (or one add) with all its new members, in chunks. A bulk
//!    operation that fails for any reason is redone member by member the way `upsert`
//!    does it, so the outcome and each record's error are those of one-by-one writes.
//!
//! Every value written is from a record the egress guard cleared: entry values, the
//! member DNs (the records' own DNs) and each group's `cn` and `description` (the
//! records' `group.id` and `group.name`).

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use futures_util::stream::{FuturesUnordered, StreamExt as _};
use ldap3::{Ldap, Mod};

use super::{to_mods_add, LdapTarget};
use crate::guard::{Cleared, EgressGuard};
use crate::ldap_parse::normalize_dn;
use crate::model::GroupId;
use crate::record::OutboundGroup;
use crate::target::{Applied, Expect, TargetError};

/// Operations in flight on the batch's connection.
const IN_FLIGHT: usize = 32;
/// Batches smaller than this go record by record, over one connection.
const SMALL_BATCH: usize = 8;
/// Member values per group operation (directories cap values per operation).
const MEMBERS_PER_OP: usize = 1000;

/// What step 1 did with a record.
enum Added {
    Created,
    /// The DN is taken, or the record may have an entry: the one-by-one path decides.
    OneByOne,
    Failed(TargetError),
}

/// The new members of one group: the group, and (record, member DN) pairs.
type Joins<'r> = (&'r OutboundGroup, Vec<(usize, &'r str)>);

impl LdapTarget {
    /// [`Target::upsert_many`](crate::Target::upsert_many) for LDAP; see the module docs.
    pub(super) async fn upsert_batch(
        &self,
        _guard: &EgressGuard,
        records: Vec<(Cleared, Expect)>,
        _at: DateTime<Utc>,
    ) -> Result<Vec<Result<Applied, TargetError>>, TargetError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let mut ldap = self.connect().await?;
        let out = self.batch_on(&mut ldap, &records).await;
        let _ = ldap.unbind().await;
        tracing::debug!(
            target_name = %self.cfg.name,
            records = records.len(),
            failed = out.iter().filter(|r| r.is_err()).count(),
            "LDAP batch written"
        );
        Ok(out)
    }

    async fn batch_on(
        &self,
        ldap: &mut Ldap,
        records: &[(Cleared, Expect)],
    ) -> Vec<Result<Applied, TargetError>> {
        let mut results: Vec<Option<Result<Applied, TargetError>>> =
            records.iter().map(|_| None).collect();
        let mut one_by_one: Vec<usize> = Vec::new();
        let mut created: Vec<usize> = Vec::new();

        if records.len() < SMALL_BATCH {
            one_by_one.extend(0..records.len());
        } else {
            // Step 1: adds, pipelined.
            let news = records
                .iter()
                .enumerate()
                .filter(|(_, (_, e))| *e == Expect::New);
            let mut added: Vec<(usize, Added)> = Vec::new();
            let mut pending = FuturesUnordered::new();
            for (i, (c, _)) in news {
                if pending.len() >= IN_FLIGHT {
                    added.extend(pending.next().await);
                }
                pending.push(self.add_new(ldap.clone(), i, c));
            }
            while let Some(a) = pending.next().await {
                added.push(a);
            }
            for (i, a) in added {
                match a {
                    Added::Created => created.push(i),
                    Added::OneByOne => one_by_one.push(i),
                    Added::Failed(e) => set(&mut results, i, Err(e)),
                }
            }
            one_by_one.extend(
                records
                    .iter()
                    .enumerate()
                    .filter(|(_, (_, e))| *e != Expect::New)
                    .map(|(i, _)| i),
            );
            one_by_one.sort_unstable();
            created.sort_unstable();
        }

        // Step 2: one by one.
        for &i in &one_by_one {
            if let Some((c, _)) = records.get(i) {
                set(&mut results, i, self.upsert_on(ldap, c.record()).await);
            }
        }

        // Step 3: the new entries' groups.
        let errors = self.join_groups(ldap, records, &created).await;
        for (i, e) in errors {
            if results.get(i).is_some_and(Option::is_none) {
                set(&mut results, i, Err(e));
            }
        }
        for i in created {
            if results.get(i).is_some_and(Option::is_none) {
                set(&mut results, i, Ok(Applied::Created));
            }
        }
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or(Err(TargetError::Config {
                    target: self.cfg.name.clone(),
                    what: "a record of the batch was not written",
                }))
            })
            .collect()
    }

    /// Adds an entry the plan knows to be new, without searching for it first.
    async fn add_new(&self, mut ldap: Ldap, i: usize, c: &Cleared) -> (usize, Added) {
        let (dn, attributes, _) = match self.ldap_payload(c.record()) {
            Ok(p) => p,
            Err(e) => return (i, Added::Failed(e)),
        };
        let added = match ldap.add(dn, to_mods_add(attributes)).await {
            Ok(r) if r.rc == 0 => Added::Created,
            Ok(r) if r.rc == 68 => Added::OneByOne, // entryAlreadyExists
            Ok(r) => Added::Failed(self.rc("add", r.rc)),
            Err(e) => Added::Failed(self.err("add")(e)),
        };
        (i, added)
    }

    /// Brings the groups of the entries just added to their records. Returns the errors
    /// per record.
    async fn join_groups(
        &self,
        ldap: &mut Ldap,
        records: &[(Cleared, Expect)],
        created: &[usize],
    ) -> Vec<(usize, TargetError)> {
        let mut errors = Vec::new();
        let entries: Vec<(usize, &str, &[OutboundGroup])> = created
            .iter()
            .filter_map(|&i| {
                let (c, _) = records.get(i)?;
                let (dn, _, groups) = self.ldap_payload(c.record()).ok()?;
                Some((i, dn.as_str(), groups))
            })
            .collect();
        if entries.is_empty() {
            return errors;
        }

        // The groups as they are now: which exist, and which hold one of our DNs (a
        // new entry can inherit a membership left by an entry deleted by hand).
        let current = self
            .search(
                ldap,
                &self.cfg.groups_base,
                "(objectClass=groupOfNames)",
                vec!["cn".into(), "member".into()],
            )
            .await;
        let current = match current {
            Ok(c) => c,
            Err(_) => {
                // Could not read the groups: each entry the one-by-one way.
                for (i, dn, groups) in entries {
                    if let Err(e) = self.sync_groups(ldap, dn, groups).await {
                        errors.push((i, e));
                    }
                }
                return errors;
            }
        };
        let ours: HashMap<String, usize> = entries
            .iter()
            .enumerate()
            .map(|(k, (_, dn, _))| (normalize_dn(dn), k))
            .collect();
        let mut existing: HashSet<String> = HashSet::new();
        // Per entry (index into `entries`): (group DN, member value, group id).
        let mut member_of: Vec<Vec<(&str, &str, Option<GroupId>)>> =
            entries.iter().map(|_| Vec::new()).collect();
        for g in &current {
            existing.insert(normalize_dn(&g.dn));
            let id = g.first("cn").and_then(|c| GroupId::new(c).ok());
            for m in g.get("member") {
                if let Some(list) = ours
                    .get(&normalize_dn(m))
                    .and_then(|&k| member_of.get_mut(k))
                {
                    list.push((g.dn.as_str(), m.as_str(), id.clone()));
                }
            }
        }

        let mut joins: BTreeMap<String, Joins<'_>> = BTreeMap::new();
        let mut leaves: BTreeMap<&str, Vec<(usize, &str)>> = BTreeMap::new();
        for ((i, dn, groups), have) in entries.iter().zip(&member_of) {
            for (gdn, member, id) in have {
                if !id
                    .as_ref()
                    .is_some_and(|id| groups.iter().any(|g| &g.id == id))
                {
                    leaves.entry(*gdn).or_default().push((*i, *member));
                }
            }
            for g in groups.iter() {
                if !have.iter().any(|(_, _, id)| id.as_ref() == Some(&g.id)) {
                    joins
                        .entry(self.group_dn(&g.id))
                        .or_insert_with(|| (g, Vec::new()))
                        .1
                        .push((*i, *dn));
                }
            }
        }

        // Joins first, so that no group runs empty on the way.
        let mut pending = FuturesUnordered::new();
        for (gdn, (g, members)) in joins {
            if pending.len() >= IN_FLIGHT {
                errors.extend(pending.next().await.into_iter().flatten());
            }
            let exists = existing.contains(&normalize_dn(&gdn));
            pending.push(self.join(ldap.clone(), gdn, g, members, exists));
        }
        while let Some(e) = pending.next().await {
            errors.extend(e);
        }
        let mut pending = FuturesUnordered::new();
        for (gdn, members) in leaves {
            if pending.len() >= IN_FLIGHT {
                errors.extend(pending.next().await.into_iter().flatten());
            }
            pending.push(self.leave(ldap.clone(), gdn, members));
        }
        while let Some(e) = pending.next().await {
            errors.extend(e);
        }
        errors
    }

    /// Adds members to one group: one operation per chunk, creating the group if it does
    /// not exist; a chunk that fails is redone member by member.
    async fn join(
        &self,
        mut ldap: Ldap,
        gdn: String,
        g: &OutboundGroup,
        members: Vec<(usize, &str)>,
        mut exists: bool,
    ) -> Vec<(usize, TargetError)> {
        let mut errors = Vec::new();
        for chunk in members.chunks(MEMBERS_PER_OP) {
            let values: HashSet<String> = chunk.iter().map(|(_, m)| m.to_string()).collect();
            let res = if exists {
                ldap.modify(&gdn, vec![Mod::Add("member".to_string(), values)])
                    .await
            } else {
                let attrs = vec![
                    (
                        "objectClass".to_string(),
                        HashSet::from(["top".to_string(), "groupOfNames".to_string()]),
                    ),
                    ("cn".to_string(), HashSet::from([g.id.to_string()])),
                    ("description".to_string(), HashSet::from([g.name.clone()])),
                    ("member".to_string(), values),
                ];
                ldap.add(&gdn, attrs).await
            };
            if !matches!(res, Ok(ref r) if r.rc == 0) {
                for &(i, m) in chunk {
                    if let Err(e) = self.add_member(&mut ldap, g, m).await {
                        errors.push((i, e));
                    }
                }
            }
            exists = true;
        }
        errors
    }

    /// Removes members from one group in one operation; if that fails (a value already
    /// gone, the group would run empty), member by member.
    async fn leave(
        &self,
        mut ldap: Ldap,
        gdn: &str,
        members: Vec<(usize, &str)>,
    ) -> Vec<(usize, TargetError)> {
        let values: HashSet<String> = members.iter().map(|(_, m)| m.to_string()).collect();
        let res = ldap
            .modify(gdn, vec![Mod::Delete("member".to_string(), values)])
            .await;
        let mut errors = Vec::new();
        if !matches!(res, Ok(ref r) if r.rc == 0) {
            for &(i, m) in &members {
                if let Err(e) = self.remove_member(&mut ldap, gdn, m).await {
                    errors.push((i, e));
                }
            }
        }
        errors
    }
}

fn set<T>(results: &mut [Option<T>], i: usize, v: T) {
    if let Some(slot) = results.get_mut(i) {
        *slot = Some(v);
    }
}
