//! The leak scan: is any real identity anywhere in a target?
//!
//! The targets are read whole (LDAP paged search with `(objectClass=*)`, SCIM paged
//! lists, every CSV file): no real identifier is ever sent to a target, not even in a
//! search filter. Each entry's values are then matched locally against the blind
//! indexes (see [`crate::matching`]). A [`Finding`] says where (target and entry) and
//! by which rule, with the cases if the lookup knows them, and never the value.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{mpsc, Arc, Mutex};

use fiktiv_vault::keys::BlindKey;
use fiktiv_vault::CaseId;
use serde::Serialize;

use crate::matching::{
    match_entry_memo, repeated, shared_facts, shared_map, Learning, Memo, RealIndexLookup, Rule,
};
use crate::model::TargetName;
use crate::record::ScannedEntry;
use crate::scan_page::{LdapEntries, ScanPage};
use crate::target::{Target, TargetError};

/// A real identity (or an unverifiable value) found in a target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub target: TargetName,
    /// A locator holding no attribute value (LDAP `entryUUID`, `Users/<id>`,
    /// `users.csv:row 3`).
    pub entry: String,
    /// A readable label (DN, `sourcedId`, `userName`), only when that attribute did
    /// not itself match.
    pub label: Option<String>,
    pub rule: Rule,
    /// Names of the attributes involved.
    pub attributes: Vec<String>,
    /// Cases whose real identity matched, when the lookup knows them.
    pub cases: Vec<CaseId>,
}

/// Scan threads at most, and entries per thread at least.
const MAX_THREADS: usize = 8;
const MIN_ENTRIES_PER_THREAD: usize = 2048;

/// Scans entries read from targets. Pure apart from the HMACs; linear in the input.
///
/// Values that recur (object classes, DNs that are also group members, school names)
/// are worked out once, up front; then the entries are matched on as many threads as
/// the machine has (up to 8, for large inputs). Findings come in entry order.
pub fn scan<L: RealIndexLookup + ?Sized>(
    entries: &[ScannedEntry],
    key: &BlindKey,
    lookup: &L,
) -> Vec<Finding> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_THREADS)
        .min(entries.len() / MIN_ENTRIES_PER_THREAD)
        .max(1);

    let repeated = repeated(
        entries
            .iter()
            .flat_map(|e| e.values.iter().map(|(_, v)| v.as_str())),
    );
    let per = repeated.len().div_ceil(threads).max(1);
    let facts = in_parallel(repeated.chunks(per), |k, chunk| {
        shared_facts(chunk, (k * per) as u64, key, lookup)
    });
    let shared = Arc::new(shared_map(&repeated, facts));
    drop(repeated);

    let per = entries.len().div_ceil(threads).max(1);
    in_parallel(entries.chunks(per), |_, chunk| {
        let mut memo = Memo::with_shared(Arc::clone(&shared));
        scan_part(chunk, key, lookup, &mut memo)
    })
}

/// Runs `f` on each part, one thread per part (the first on this thread), and
/// concatenates the results in order.
fn in_parallel<'p, P, T, F>(parts: impl Iterator<Item = &'p [P]>, f: F) -> Vec<T>
where
    P: Sync + 'p,
    T: Send,
    F: Fn(usize, &'p [P]) -> Vec<T> + Sync,
{
    let parts: Vec<&[P]> = parts.collect();
    let Some((first, rest)) = parts.split_first() else {
        return Vec::new();
    };
    std::thread::scope(|s| {
        let f = &f;
        let handles: Vec<_> = rest
            .iter()
            .enumerate()
            .map(|(k, part)| s.spawn(move || f(k + 1, part)))
            .collect();
        let mut out = f(0, first);
        for h in handles {
            out.extend(h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)));
        }
        out
    })
}

/// A page's number and its findings.
type PageFindings = (usize, Vec<Finding>);
/// Matches one page (when no worker thread could be started).
type MatchPage = Box<dyn FnMut(ScanPage) -> Vec<Finding> + Send>;

/// A leak scan fed page by page ([`crate::Target::read_everything_in_pages`]): each page
/// is matched on a worker thread while the next pages are read, and dropped (wiped) once
/// matched. What recurs is learnt as the pages come (a value's facts are kept the
/// second time it is met) instead of counted up front as [`scan`] does; the findings
/// are the same, in entry order.
pub struct PagedScan {
    tx: Option<mpsc::Sender<(usize, ScanPage)>>,
    workers: Vec<std::thread::JoinHandle<Vec<PageFindings>>>,
    /// Used only if no worker thread could be started: pages are matched in `push`.
    inline: Option<MatchPage>,
    done: Vec<PageFindings>,
    pages: usize,
}

impl PagedScan {
    /// Starts the workers (as many as the machine has threads, up to 8).
    pub fn start<L: RealIndexLookup + 'static>(key: &BlindKey, lookup: Arc<L>) -> Self {
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_THREADS);
        let (tx, rx) = mpsc::channel::<(usize, ScanPage)>();
        let rx = Arc::new(Mutex::new(rx));
        let learning = Learning::new();
        let mut workers = Vec::new();
        for _ in 0..threads {
            let (rx, key, lookup) = (Arc::clone(&rx), key.clone(), Arc::clone(&lookup));
            let learning = Arc::clone(&learning);
            let spawned = std::thread::Builder::new()
                .name("leak-scan".into())
                .spawn(move || {
                    let mut memo = Memo::learning_with(learning);
                    let mut out = Vec::new();
                    loop {
                        // The lock is held only while waiting for the next page.
                        let next = match rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => break,
                        };
                        let Ok((n, page)) = next else { break };
                        out.push((n, scan_page(&page, &key, &*lookup, &mut memo)));
                    }
                    out
                });
            match spawned {
                Ok(h) => workers.push(h),
                Err(_) => break,
            }
        }
        let inline: Option<MatchPage> = if workers.is_empty() {
            tracing::warn!("no leak scan worker thread could be started; matching inline");
            let (key, mut memo) = (key.clone(), Memo::learning());
            Some(Box::new(move |page| {
                scan_page(&page, &key, &*lookup, &mut memo)
            }))
        } else {
            None
        };
        Self {
            tx: Some(tx),
            workers,
            inline,
            done: Vec::new(),
            pages: 0,
        }
    }

    /// Hands over one page of entries (of any target; findings name it).
    pub fn push(&mut self, page: Vec<ScannedEntry>) {
        self.push_page(ScanPage::Entries(page));
    }

    /// Hands over one page, decoded or as received ([`ScanPage`]).
    pub fn push_page(&mut self, page: ScanPage) {
        let n = self.pages;
        self.pages += 1;
        if let Some(f) = self.inline.as_mut() {
            let found = f(page);
            self.done.push((n, found));
            return;
        }
        if let Some(tx) = &self.tx {
            // Fails only when every worker has ended, which only a panic does;
            // `finish` passes that panic on.
            let _ = tx.send((n, page));
        }
    }

    /// Waits for every page to be matched; the findings in the order the entries came.
    pub fn finish(mut self) -> Vec<Finding> {
        self.tx = None;
        let mut all = std::mem::take(&mut self.done);
        for h in self.workers.drain(..) {
            all.extend(h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)));
        }
        all.sort_by_key(|(n, _)| *n);
        all.into_iter().flat_map(|(_, f)| f).collect()
    }
}

/// What a leak scan of one target gives ([`read_and_scan`]).
#[derive(Debug)]
pub struct TargetScan {
    /// Entries read (and matched).
    pub read: usize,
    /// Where they were read ([`Target::scan_scope`]): bases, endpoints or files.
    pub scope: Vec<String>,
    /// The findings in what was read, in the order the entries came.
    pub findings: Vec<Finding>,
    /// Why the target could not be read completely, if it could not. The findings in
    /// what was read before are kept: a real identity found is reported even when the
    /// rest of the target could not be read.
    pub error: Option<ScanReadError>,
}

/// Why a target could not be read completely for a leak scan.
#[derive(Debug, thiserror::Error)]
pub enum ScanReadError {
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error("reading took longer than {} s", .0.as_secs_f64())]
    TimedOut(std::time::Duration),
    /// The service shut down before the pages read were matched.
    #[error("the service stopped before the scan was finished")]
    Interrupted,
}

/// Reads every entry of `target` within `limit` and scans it, matching each page while
/// the next is read ([`PagedScan`]). Pages read before a failure or the time limit are
/// still matched.
pub async fn read_and_scan<L: RealIndexLookup + 'static>(
    target: &dyn Target,
    key: &BlindKey,
    lookup: Arc<L>,
    limit: std::time::Duration,
) -> TargetScan {
    let mut scan = PagedScan::start(key, lookup);
    let mut read = 0usize;
    let outcome = tokio::time::timeout(
        limit,
        target.read_everything_in_pages(&mut |page| {
            read += page.len();
            scan.push_page(page);
        }),
    )
    .await;
    let error = match outcome {
        Ok(Ok(_)) => None,
        Ok(Err(e)) => Some(ScanReadError::Target(e)),
        Err(_) => Some(ScanReadError::TimedOut(limit)),
    };
    // Waiting for the workers to match the last pages blocks: not on the async thread.
    // The wait is cancelled only when the runtime shuts down: then nothing is known.
    let (findings, error) = match tokio::task::spawn_blocking(move || scan.finish()).await {
        Ok(f) => (f, error),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => (Vec::new(), Some(ScanReadError::Interrupted)),
    };
    // What was read, named (a second look at the scope, after the read; a target that
    // cannot name it says nothing rather than failing a scan that worked).
    let scope = match tokio::time::timeout(limit, target.scan_scope()).await {
        Ok(Ok(s)) => s,
        _ => Vec::new(),
    };
    TargetScan {
        read,
        scope,
        findings,
        error,
    }
}

fn scan_page<L: RealIndexLookup + ?Sized>(
    page: &ScanPage,
    key: &BlindKey,
    lookup: &L,
    memo: &mut Memo,
) -> Vec<Finding> {
    match page {
        ScanPage::Entries(entries) => scan_part(entries, key, lookup, memo),
        ScanPage::Ldap(entries) => scan_ldap(entries, key, lookup, memo),
    }
}

fn scan_part<L: RealIndexLookup + ?Sized>(
    entries: &[ScannedEntry],
    key: &BlindKey,
    lookup: &L,
    memo: &mut Memo,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut refs: Vec<(&str, &str)> = Vec::new();
    for entry in entries {
        refs.clear();
        refs.extend(entry.values.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        let hits = match_entry_memo(&refs, key, lookup, false, memo);
        if hits.is_empty() {
            continue;
        }
        let label = entry
            .label_attribute
            .as_deref()
            .and_then(|a| Some((a, entry.first(a)?)));
        record(
            hits,
            &entry.target,
            entry.locator.clone(),
            label,
            &mut findings,
        );
    }
    findings
}

/// LDAP entries as received: each decoded into a view of the page's bytes, matched,
/// and copied only into the findings it gives (the locator and label).
fn scan_ldap<L: RealIndexLookup + ?Sized>(
    page: &LdapEntries,
    key: &BlindKey,
    lookup: &L,
    memo: &mut Memo,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (view, n) in page.views() {
        let Ok(view) = view else {
            // Cannot happen (a page holds only entries that decode); if it did, the
            // entry could not be checked: unverifiable, failing closed.
            findings.push(Finding {
                target: page.target().clone(),
                entry: format!("entry #{}", n + 1),
                label: None,
                rule: Rule::Unverifiable,
                attributes: Vec::new(),
                cases: Vec::new(),
            });
            continue;
        };
        let refs: Vec<(&str, &str)> = view.values().collect();
        let hits = match_entry_memo(&refs, key, lookup, false, memo);
        if hits.is_empty() {
            continue;
        }
        let label = Some(("dn", view.dn.as_str()));
        record(hits, page.target(), view.locator(n), label, &mut findings);
    }
    findings
}

/// One finding per hit at the entry `locator`; `label` (an attribute and its value)
/// only if that attribute did not match.
fn record(
    hits: Vec<crate::matching::Hit>,
    target: &TargetName,
    locator: String,
    label: Option<(&str, &str)>,
    findings: &mut Vec<Finding>,
) {
    let matched: BTreeSet<&str> = hits
        .iter()
        .flat_map(|h| h.attributes.iter().map(String::as_str))
        .collect();
    let label = label
        .filter(|(a, _)| !matched.iter().any(|m| m.eq_ignore_ascii_case(a)))
        .map(|(_, v)| v.to_string());
    for hit in hits {
        tracing::warn!(
            target_name = %target,
            entry = %locator,
            rule = hit.rule.as_str(),
            "leak scan finding"
        );
        findings.push(Finding {
            target: target.clone(),
            entry: locator.clone(),
            label: label.clone(),
            rule: hit.rule,
            attributes: hit.attributes.into_iter().collect(),
            cases: hit.cases.into_iter().collect(),
        });
    }
}

/// The outcome of a scan for one case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CaseStatus {
    /// Nothing matched and everything could be checked.
    Clean,
    /// Some value could not be checked completely; the case cannot be called clean.
    Unverified,
    /// The real full name appears (without the birth date: may be a namesake).
    Suspect,
    /// The real personal number, or the real name with the birth date, appears.
    Found,
}

/// Per case: its status and where it was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaseReport {
    pub case: CaseId,
    pub status: CaseStatus,
    /// (target, entry locator) of every finding for this case.
    pub at: Vec<(TargetName, String)>,
}

/// Sums findings up per case: clean, unverified, suspect or found, and where.
pub fn report(cases: &[CaseId], findings: &[Finding]) -> Vec<CaseReport> {
    let unverifiable = findings.iter().any(|f| f.rule == Rule::Unverifiable);
    let mut by_case: BTreeMap<CaseId, (CaseStatus, BTreeSet<(TargetName, String)>)> = cases
        .iter()
        .map(|c| {
            let s = if unverifiable {
                CaseStatus::Unverified
            } else {
                CaseStatus::Clean
            };
            (*c, (s, BTreeSet::new()))
        })
        .collect();
    for f in findings {
        let status = match f.rule {
            Rule::Number | Rule::NameBirth => CaseStatus::Found,
            Rule::FullName => CaseStatus::Suspect,
            Rule::Unverifiable => continue,
        };
        for c in &f.cases {
            let e = by_case
                .entry(*c)
                .or_insert((CaseStatus::Clean, BTreeSet::new()));
            e.0 = e.0.max(status);
            e.1.insert((f.target.clone(), f.entry.clone()));
        }
    }
    by_case
        .into_iter()
        .map(|(case, (status, at))| CaseReport {
            case,
            status,
            at: at.into_iter().collect(),
        })
        .collect()
}
