//! The one trait every target implements, its errors, and the account check.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::diagnose::{Diagnosis, Problem};
use crate::guard::{Blocked, Cleared, EgressGuard};
use crate::model::{FictitiousNumber, FictitiousPerson, GroupId, PersonId, TargetName};
use crate::record::{ManagedEntry, OutboundRecord, ScannedEntry};
use crate::scan_page::ScanPage;

/// What a target returned could not be understood. Fixed text: a response may hold
/// anything, and none of it is quoted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed {0}")]
pub struct ParseError(pub &'static str);

/// Why a target operation failed. No variant carries an attribute value of a person:
/// the messages hold the target's name, the operation, codes and person ids only.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TargetError {
    #[error(transparent)]
    Blocked(#[from] Blocked),
    #[error("target {target}: configuration: {what}")]
    Config {
        target: TargetName,
        what: &'static str,
    },
    #[error("target {target}: {op}: connection or transport failed ({kind})")]
    Transport {
        target: TargetName,
        op: &'static str,
        kind: &'static str,
    },
    #[error("target {target}: {op}: LDAP result code {rc}")]
    Ldap {
        target: TargetName,
        op: &'static str,
        rc: u32,
    },
    #[error("target {target}: {op}: HTTP status {status}")]
    Http {
        target: TargetName,
        op: &'static str,
        status: u16,
    },
    #[error("target {target}: {op}: rate limited longer than the configured bound")]
    RateLimited {
        target: TargetName,
        op: &'static str,
    },
    #[error("target {target}: {op}: conflict with an entry Fiktiv does not manage")]
    Conflict {
        target: TargetName,
        op: &'static str,
    },
    #[error("target {target}: {op}: {source}")]
    Parse {
        target: TargetName,
        op: &'static str,
        source: ParseError,
    },
    #[error("target {target}: {op}: I/O error ({kind})")]
    Io {
        target: TargetName,
        op: &'static str,
        kind: std::io::ErrorKind,
    },
    #[error("target {target}: person {person} has no account")]
    NotFound {
        target: TargetName,
        person: PersonId,
    },
    #[error("target {target}: the record was made for target {other}")]
    WrongTarget {
        target: TargetName,
        other: TargetName,
    },
}

/// What an upsert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Applied {
    Created,
    Updated,
}

/// What the caller's plan knows about a record's account, for [`Target::upsert_many`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// The plan found no account (an `Action::Create`): the target may write it without
    /// looking for one first. If one exists after all, the record is applied as by
    /// [`Target::upsert`].
    New,
    /// An account may exist: exactly as [`Target::upsert`].
    Any,
}

/// A directory, learning platform or roster export that receives fictitious persons.
///
/// Writes take a [`Cleared`] record (only the egress guard makes one) or write no
/// personal value at all (disable, delete). Reads take the time of reading from the
/// caller. Nothing here ever receives or sends a real identity.
#[async_trait]
pub trait Target: Send + Sync {
    fn name(&self) -> &TargetName;

    /// The record this target would write for the person: pure, no I/O.
    fn render(&self, person: &FictitiousPerson) -> Result<OutboundRecord, TargetError>;

    /// Creates the account or brings it to the record (enabling it if disabled).
    /// `guard` re-checks anything else the target rewrites along with it.
    /// `at` is the time of the change, for targets that record it themselves.
    async fn upsert(
        &self,
        guard: &EgressGuard,
        record: Cleared,
        at: DateTime<Utc>,
    ) -> Result<Applied, TargetError>;

    /// Writes many cleared records, each as [`Target::upsert`] would, and returns one
    /// result per record in the same order. The outer error is a failure of the whole
    /// batch (connection, bind). Targets that can pipeline or batch override this; the
    /// default writes one record after the other.
    async fn upsert_many(
        &self,
        guard: &EgressGuard,
        records: Vec<(Cleared, Expect)>,
        at: DateTime<Utc>,
    ) -> Result<Vec<Result<Applied, TargetError>>, TargetError> {
        let mut out = Vec::with_capacity(records.len());
        for (record, _) in records {
            out.push(self.upsert(guard, record, at).await);
        }
        Ok(out)
    }

    /// Disables the account (the first stage of removal). Errors with `NotFound` when
    /// there is no account.
    async fn disable(
        &self,
        guard: &EgressGuard,
        person: &PersonId,
        at: DateTime<Utc>,
    ) -> Result<(), TargetError>;

    /// Deletes the account and its group memberships. Deleting an account that does not
    /// exist succeeds.
    async fn delete(
        &self,
        guard: &EgressGuard,
        person: &PersonId,
        at: DateTime<Utc>,
    ) -> Result<(), TargetError>;

    /// Reads one managed account back from the target.
    async fn read_one(
        &self,
        person: &PersonId,
        read_at: DateTime<Utc>,
    ) -> Result<Option<ManagedEntry>, TargetError>;

    /// Reads every managed account (paged), for reconciliation.
    async fn read_managed(&self, read_at: DateTime<Utc>) -> Result<Vec<ManagedEntry>, TargetError>;

    /// Reads every entry of the target's configured scope, whoever made it, for the
    /// leak scan. Never sends a search filter holding a value.
    async fn read_everything(&self) -> Result<Vec<ScannedEntry>, TargetError>;

    /// What [`Target::read_everything`] reads, handed to `page` in parts as they arrive
    /// (LDAP: as received, decoded where they are matched),
    /// so that the leak scan matches one part while the next is read
    /// ([`crate::scan::PagedScan`]). Returns how many entries were read. The default
    /// hands everything over at once.
    async fn read_everything_in_pages(
        &self,
        page: &mut (dyn FnMut(ScanPage) + Send),
    ) -> Result<usize, TargetError> {
        let all = self.read_everything().await?;
        let n = all.len();
        page(ScanPage::Entries(all));
        Ok(n)
    }

    /// Where [`Target::read_everything`] reads, as a verdict names it: the LDAP bases
    /// (by default every naming context), the SCIM endpoints, the roster's files. The
    /// default says nothing.
    async fn scan_scope(&self) -> Result<Vec<String>, TargetError> {
        Ok(Vec::new())
    }

    /// Attributes whose values change on their own (timestamps): not compared by
    /// [`check_account`].
    fn volatile_attributes(&self) -> &'static [&'static str] {
        &[]
    }

    /// Whether `actual`, a value of the attribute `name` read back from the target, is
    /// what the target writes for `expected`, the rendered value ([`check_account`]).
    /// Equality by default; a target that adjusts a value as it writes it (a username
    /// made unique with a number, a list in its own order) accepts its own adjustments
    /// and nothing else.
    fn value_matches(&self, name: &str, expected: &str, actual: &str) -> bool {
        let _ = name;
        expected == actual
    }

    /// Whether the target takes a fictitious number of the scheme in force (`number`, a
    /// sample of it), for `fiktiv targets test`: a target that writes the number
    /// somewhere writes a probe with it and removes it again, and records a `number`
    /// step in `d`; a target that writes no number says nothing (the default).
    async fn probe_number(
        &self,
        guard: &EgressGuard,
        number: &FictitiousNumber,
        d: &mut Diagnosis,
    ) {
        let _ = (guard, number, d);
    }

    /// Tests connectivity, TLS, credentials, the configured bases and the schema, for
    /// `fiktiv targets test`. A target may write a probe that it removes again; every
    /// value of it passes `guard`. The default reads the managed accounts once.
    async fn diagnose(&self, guard: &EgressGuard, at: DateTime<Utc>) -> Diagnosis {
        let _ = guard;
        let mut d = Diagnosis::new(self.name().clone());
        match self.read_managed(at).await {
            Ok(v) => d.pass(
                "read",
                crate::detail!("accounts-read", "{n} managed accounts read", n = v.len()),
            ),
            Err(e) => d.fail(
                "read",
                Problem::Unexpected,
                crate::diagnose::Detail::error(e),
            ),
        }
        d
    }
}

/// Renders, clears with the guard and writes one person.
pub async fn push(
    target: &dyn Target,
    guard: &EgressGuard,
    person: &FictitiousPerson,
    at: DateTime<Utc>,
) -> Result<Applied, TargetError> {
    let record = target.render(person)?;
    let cleared = guard.clear(record)?;
    let applied = target.upsert(guard, cleared, at).await?;
    tracing::info!(target_name = %target.name(), person = %person.id, ?applied, "provisioned");
    Ok(applied)
}

/// Renders, clears with the guard and writes many persons on one target (one result per
/// person, in order). A person the guard blocks gets its `Blocked` error and is not
/// sent; the others are written with [`Target::upsert_many`].
///
/// Pipelined in chunks: while the target writes one chunk, the guard (CPU work, on the
/// blocking thread pool) clears the next. The outer error means nothing was written
/// (the first chunk failed as a whole); a chunk that fails as a whole later gives its
/// error to each of its records and to every record after it.
pub async fn push_many(
    target: &dyn Target,
    guard: &EgressGuard,
    persons: &[(&FictitiousPerson, Expect)],
    at: DateTime<Utc>,
) -> Result<Vec<Result<Applied, TargetError>>, TargetError> {
    let mut out: Vec<Option<Result<Applied, TargetError>>> = Vec::with_capacity(persons.len());
    let mut rendered = Vec::new();
    for (i, (person, _)) in persons.iter().enumerate() {
        match target.render(person) {
            Ok(r) => {
                rendered.push((i, r));
                out.push(None);
            }
            Err(e) => out.push(Some(Err(e))),
        }
    }
    let size = push_chunk(rendered.len());
    let mut chunks: Vec<Vec<(usize, OutboundRecord)>> = Vec::new();
    let mut rest = rendered.into_iter().peekable();
    while rest.peek().is_some() {
        chunks.push(rest.by_ref().take(size).collect());
    }
    let mut chunks = chunks.into_iter();
    let mut next = chunks.next().map(|c| clear_spawned(guard, c));
    let mut first = true;
    while let Some(pending) = next.take() {
        let cleared = clear_joined(target.name(), pending).await?;
        next = chunks.next().map(|c| clear_spawned(guard, c));
        let mut batch = Vec::new();
        let mut slots = Vec::new();
        for (i, c) in cleared {
            match c {
                Ok(c) => {
                    let expect = persons.get(i).map_or(Expect::Any, |(_, e)| *e);
                    batch.push((c, expect));
                    slots.push(i);
                }
                Err(e) => set(&mut out, i, Err(e.into())),
            }
        }
        match target.upsert_many(guard, batch, at).await {
            Ok(written) => {
                for (i, r) in slots.into_iter().zip(written) {
                    set(&mut out, i, r);
                }
            }
            Err(e) if first => return Err(e),
            Err(e) => {
                for o in out.iter_mut().filter(|o| o.is_none()) {
                    *o = Some(Err(e.clone()));
                }
                break;
            }
        }
        first = false;
    }
    let out: Vec<Result<Applied, TargetError>> = out
        .into_iter()
        .zip(persons)
        .map(|(r, (p, _))| {
            let r = r.unwrap_or(Err(TargetError::Config {
                target: target.name().clone(),
                what: "the target returned fewer results than records",
            }));
            if let Ok(applied) = &r {
                tracing::info!(target_name = %target.name(), person = %p.id, ?applied, "provisioned");
            }
            r
        })
        .collect();
    Ok(out)
}

fn set<T>(out: &mut [Option<T>], i: usize, v: T) {
    if let Some(o) = out.get_mut(i) {
        *o = Some(v);
    }
}

/// Records per chunk of [`push_many`]: small enough that the guard's first chunk (not
/// overlapped with writing) is short, large enough that per-batch work (reading the
/// groups once) stays small.
fn push_chunk(n: usize) -> usize {
    (n / 8).clamp(250, 2000)
}

/// Records per guard task at least, when a chunk is cleared on several threads.
const GUARD_CHUNK_MIN: usize = 256;

type Clearing = Vec<tokio::task::JoinHandle<Vec<(usize, Result<Cleared, Blocked>)>>>;

/// Starts clearing rendered records with the guard ([`EgressGuard::clear_all`]) on the
/// blocking thread pool, split over the machine's cores for a large chunk.
fn clear_spawned(guard: &EgressGuard, records: Vec<(usize, OutboundRecord)>) -> Clearing {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let tasks = cores.min(records.len() / GUARD_CHUNK_MIN).max(1);
    let per = records.len().div_ceil(tasks).max(1);
    let mut handles = Vec::new();
    let mut records = records.into_iter().peekable();
    while records.peek().is_some() {
        let part: Vec<(usize, OutboundRecord)> = records.by_ref().take(per).collect();
        let guard = guard.clone();
        handles.push(tokio::task::spawn_blocking(move || {
            let (slots, recs): (Vec<usize>, Vec<OutboundRecord>) = part.into_iter().unzip();
            slots
                .into_iter()
                .zip(guard.clear_all(recs))
                .collect::<Vec<_>>()
        }));
    }
    handles
}

/// The verdicts of [`clear_spawned`], in order.
async fn clear_joined(
    target: &TargetName,
    handles: Clearing,
) -> Result<Vec<(usize, Result<Cleared, Blocked>)>, TargetError> {
    let mut out = Vec::new();
    for h in handles {
        match h.await {
            Ok(part) => out.extend(part),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Cancelled: the runtime is shutting down.
            Err(_) => {
                return Err(TargetError::Io {
                    target: target.clone(),
                    op: "egress guard",
                    kind: std::io::ErrorKind::Interrupted,
                })
            }
        }
    }
    Ok(out)
}

/// Does the person's account exist, is it enabled, has it the expected attributes and
/// groups? Read back from the target itself at `read_at`. Holds names, never values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountCheck {
    pub target: TargetName,
    pub person: PersonId,
    pub exists: bool,
    pub enabled: bool,
    /// Names of expected attributes that are missing or have other values.
    pub mismatched: Vec<String>,
    pub missing_groups: Vec<GroupId>,
    pub unexpected_groups: Vec<GroupId>,
    pub read_at: DateTime<Utc>,
}

impl AccountCheck {
    pub fn ok(&self) -> bool {
        self.exists
            && self.enabled
            && self.mismatched.is_empty()
            && self.missing_groups.is_empty()
            && self.unexpected_groups.is_empty()
    }
}

/// The account check for one person and target.
pub async fn check_account(
    target: &dyn Target,
    person: &FictitiousPerson,
    read_at: DateTime<Utc>,
) -> Result<AccountCheck, TargetError> {
    let actual = target.read_one(&person.id, read_at).await?;
    compare_account(target, person, actual.as_ref(), read_at)
}

/// The account check against an entry already read (for example by
/// [`Target::read_managed`], to check every account of a target with one read).
pub fn compare_account(
    target: &dyn Target,
    person: &FictitiousPerson,
    actual: Option<&ManagedEntry>,
    read_at: DateTime<Utc>,
) -> Result<AccountCheck, TargetError> {
    let expected = target.render(person)?;
    Ok(compare(target, person, &expected, actual, read_at))
}

fn compare(
    target: &dyn Target,
    person: &FictitiousPerson,
    expected: &OutboundRecord,
    actual: Option<&ManagedEntry>,
    read_at: DateTime<Utc>,
) -> AccountCheck {
    let mut check = AccountCheck {
        target: target.name().clone(),
        person: person.id,
        exists: actual.is_some(),
        enabled: false,
        mismatched: Vec::new(),
        missing_groups: Vec::new(),
        unexpected_groups: Vec::new(),
        read_at,
    };
    let Some(actual) = actual else {
        return check;
    };
    check.enabled = actual.enabled;
    let have: BTreeMap<String, BTreeSet<&str>> = actual
        .attributes
        .iter()
        .map(|(k, vs)| {
            (
                k.to_ascii_lowercase(),
                vs.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    let volatile = target.volatile_attributes();
    let mut mismatched = BTreeSet::new();
    for (name, value) in expected.values() {
        let lower = name.to_ascii_lowercase();
        if lower == "dn" || lower.starts_with("group.") {
            continue;
        }
        if volatile.iter().any(|v| v.eq_ignore_ascii_case(&name)) {
            continue;
        }
        if !have.get(&lower).is_some_and(|vs| {
            vs.contains(value.as_str()) || vs.iter().any(|a| target.value_matches(&name, &value, a))
        }) {
            mismatched.insert(name);
        }
    }
    check.mismatched = mismatched.into_iter().collect();
    let want = person.expected_groups();
    check.missing_groups = want.difference(&actual.groups).cloned().collect();
    check.unexpected_groups = actual.groups.difference(&want).cloned().collect();
    check
}
