//! What the screen remembers across the entries of one scan or one batch ([`Memo`]):
//! the facts of values that recur, so that each is worked out once.
//!
//! A scan fed page by page does not know up front what recurs. Each of its workers
//! keeps a value the second time it meets it ([`Learnt`]). Values with DN syntax are
//! different: an entry's DN comes back as a member of its groups, and those group
//! entries are usually matched on another worker. So DN-like values are kept in a table
//! the workers share ([`Learning`]): an entry's own DN at first sight, any other the
//! second time one worker meets it. Which table a value goes to changes only how often
//! it is worked out, never its facts: a value's facts depend on the value alone.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher as _, BuildHasherDefault};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::NaiveDate;
use fiktiv_vault::keys::BlindKey;
use fiktiv_vault::TagIsHash;

use super::value::{value_facts, Scratch};
use super::{Checker, Facts, RealIndexLookup, Secret};

/// Values worked out once, shared read-only by the threads of a scan.
pub(crate) type SharedFacts = HashMap<Secret, Arc<Facts>>;

/// Values by fingerprint, with their facts (`None`: the value contributes nothing).
type Known = HashMap<u64, (Secret, Option<Arc<Facts>>), BuildHasherDefault<TagIsHash>>;

/// Past this many remembered (value, date) pairs, a memo starts over.
const MEMO_MAX_PAIRS: usize = 4 << 20;

/// What the screen knows across the entries of one scan or one batch of records (one
/// key, one lookup): the values that occur more than once, worked out up front (a value
/// that occurs once is not worth remembering: keeping it costs more than it saves), and
/// which (value, date) pairs were already indexed for the name + birth rule.
pub(crate) struct Memo {
    shared: Arc<SharedFacts>,
    /// Values learnt while scanning (for a scan fed page by page, where what recurs is
    /// not known up front).
    learnt: Option<Learnt>,
    pub(super) pairs: HashSet<(u64, NaiveDate)>,
    /// The per-entry key set, kept for its capacity.
    pub(super) seen: HashSet<Secret>,
    scratch: Scratch,
    /// The per-entry list of facts (of the values that contribute), kept for its
    /// capacity.
    pub(super) facts: Vec<Arc<Facts>>,
    /// Per entry: (value, its number of dates) of the values with dates.
    pub(super) dated: Vec<(usize, usize)>,
    /// Per entry: the fingerprints of its values ([`Memo::fingerprints`]).
    fingerprints: Vec<u64>,
}

/// What one worker of a paged scan learns.
struct Learnt {
    /// The values met once: one bit per fingerprint's low bits (a value whose bit
    /// another value set is only kept early).
    met: Vec<u64>,
    /// The values met twice, by fingerprint (one hash per value looks up both). Of two
    /// values with one fingerprint only the first is kept; the other is worked out each
    /// time it is met.
    facts: Known,
    common: Arc<Learning>,
}

/// What the workers of one paged scan learn together: DN-like values, the fingerprint
/// seed and the ids of kept values.
pub(crate) struct Learning {
    /// Fingerprints of values, seeded at random per scan (a collision only makes a
    /// value be worked out again).
    fingerprint: foldhash::quality::RandomState,
    /// Ids of kept values, unique in the scan ([`Facts::id`]): a worker's remembered
    /// (value, date) pairs may name values another worker kept.
    next_id: AtomicU64,
    /// DN-like values, in shards by fingerprint so that workers rarely wait.
    dns: Vec<Shard>,
}

/// One shard of [`Learning::dns`], alone on its cache lines: workers locking
/// neighbouring shards do not take each other's lines.
#[repr(align(128))]
struct Shard(Mutex<Known>);

/// Shards of [`Learning::dns`].
const DN_SHARDS: usize = 64;

impl Learning {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            fingerprint: foldhash::quality::RandomState::default(),
            // Apart from the ids of values worked out up front (positions).
            next_id: AtomicU64::new(1 << 48),
            dns: (0..DN_SHARDS)
                .map(|_| Shard(Mutex::new(Known::default())))
                .collect(),
        })
    }

    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The shard of a fingerprint (its high bits: the low bits pick [`Learnt::met`]'s).
    fn shard(&self, fingerprint: u64) -> Option<MutexGuard<'_, Known>> {
        let i = (fingerprint >> 40) as usize % DN_SHARDS;
        // A poisoned shard is still a consistent cache: no code that can panic runs
        // while one is held.
        self.dns.get(i).map(|s| {
            s.0.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        })
    }
}

/// Sets the bit of a fingerprint in `met` ([`Learnt::met`]); `true` if it was not set
/// (the value was not met before, as far as the bits can tell).
fn first_meeting(met: &mut [u64], fingerprint: u64) -> bool {
    let i = (fingerprint as usize) & (MET_BITS - 1);
    let (word, bit) = (i / 64, 1u64 << (i % 64));
    match met.get_mut(word) {
        Some(w) if *w & bit == 0 => {
            *w |= bit;
            true
        }
        _ => false,
    }
}

/// Bits of [`Learnt::met`]: 2^23 (1 MiB), for up to about a million distinct values
/// before most fingerprints share a bit.
const MET_BITS: usize = 1 << 23;

/// Past this many learnt values (per worker, and per shard times [`DN_SHARDS`] for
/// DN-like values), a memo forgets them and starts over (a bound on memory, not on
/// correctness).
const LEARNT_MAX_VALUES: usize = 1 << 20;

/// Could `v` be a DN (`uid=x,ou=people,...`)? Such values recur across entries (an
/// entry's DN as a group member). Only decides where a value is remembered.
fn dn_like(v: &str) -> bool {
    let b = v.as_bytes();
    b.contains(&b'=') && b.contains(&b',')
}

/// What a table of kept values says of one value ([`look_up`]).
enum Looked {
    /// Its fingerprint is not there.
    Absent,
    /// Another value with its fingerprint is kept: work it out again.
    Other,
    /// Kept, with its facts (`None`: it contributes nothing).
    Kept(Option<Arc<Facts>>),
}

/// `v` in `known`.
fn look_up(known: &Known, fingerprint: u64, v: &str) -> Looked {
    match known.get(&fingerprint) {
        None => Looked::Absent,
        Some((k, f)) if k.0 == v => Looked::Kept(f.clone()),
        Some(_) => Looked::Other,
    }
}

/// Facts about to be kept: given an id of the scan, then handed out as
/// [`contributing`] does.
fn kept(mut f: Facts, common: &Learning) -> Option<Arc<Facts>> {
    f.id = Some(common.next_id());
    contributing(f)
}

/// The facts to hand out: `None` for a value that contributes nothing.
fn contributing(f: Facts) -> Option<Arc<Facts>> {
    f.contributes().then(|| Arc::new(f))
}

impl Memo {
    /// A memo that knows nothing up front (one entry).
    pub(crate) fn new() -> Self {
        Self::with_shared(Arc::new(HashMap::new()))
    }

    /// A memo over facts worked out beforehand ([`shared_facts`], [`memo_for`]).
    pub(crate) fn with_shared(shared: Arc<SharedFacts>) -> Self {
        Self {
            shared,
            learnt: None,
            pairs: HashSet::new(),
            seen: HashSet::new(),
            scratch: Scratch::default(),
            facts: Vec::new(),
            dated: Vec::new(),
            fingerprints: Vec::new(),
        }
    }

    /// A memo that learns what recurs as it goes (a scan fed page by page on one
    /// thread).
    pub(crate) fn learning() -> Self {
        Self::learning_with(Learning::new())
    }

    /// A memo for one of the workers of a paged scan, which learn DN-like values
    /// together in `common`.
    pub(crate) fn learning_with(common: Arc<Learning>) -> Self {
        let mut m = Self::new();
        m.learnt = Some(Learnt {
            met: vec![0; MET_BITS / 64],
            facts: Known::default(),
            common,
        });
        m
    }

    /// Works out the fingerprints of an entry's values before [`Memo::facts`] is asked
    /// for them one by one, and reads the bits they will look at: the reads, which
    /// mostly miss the cache (most values are met once), then wait for memory all at
    /// once instead of one after another between pieces of work.
    pub(super) fn fingerprints(&mut self, values: &[(&str, &str)]) {
        self.fingerprints.clear();
        let Some(l) = &self.learnt else { return };
        let mut seen = 0u64;
        for (_, v) in values {
            let fingerprint = l.common.fingerprint.hash_one(v);
            let i = (fingerprint as usize) & (MET_BITS - 1);
            seen ^= l.met.get(i / 64).copied().unwrap_or(0);
            self.fingerprints.push(fingerprint);
        }
        // Keeps the reads.
        std::hint::black_box(seen);
    }

    /// The facts of value `i` of the entry ([`Memo::fingerprints`]), `v` of the
    /// attribute `name`, worked out now unless known; `None` when the value contributes
    /// nothing (most values: no name-like pair, no date, nothing matched).
    pub(super) fn facts<L: RealIndexLookup + ?Sized>(
        &mut self,
        i: usize,
        name: &str,
        v: &str,
        checker: &mut Checker<'_, L>,
    ) -> Option<Arc<Facts>> {
        if let Some(f) = self.shared.get(v) {
            return f.contributes().then(|| Arc::clone(f));
        }
        let buf = &mut self.scratch;
        let Some(Learnt { met, facts, common }) = self.learnt.as_mut() else {
            return contributing(value_facts(v, checker, buf));
        };
        let fingerprint = match self.fingerprints.get(i) {
            Some(&f) => f,
            None => common.fingerprint.hash_one(v),
        };
        if dn_like(v) {
            // An entry's own DN is kept at once, without a look first: its groups name
            // it next, and it is rarely known before (entries are read before their
            // groups; if it is, it is worked out once more and the first kept).
            let own = name.eq_ignore_ascii_case("dn");
            if !own {
                let known = common
                    .shard(fingerprint)
                    .map_or(Looked::Absent, |known| look_up(&known, fingerprint, v));
                match known {
                    Looked::Kept(f) => return f,
                    Looked::Other => return contributing(value_facts(v, checker, buf)),
                    Looked::Absent => {}
                }
                if first_meeting(met, fingerprint) {
                    return contributing(value_facts(v, checker, buf));
                }
            }
            let f = kept(value_facts(v, checker, buf), common);
            if let Some(mut known) = common.shard(fingerprint) {
                if known.len() >= LEARNT_MAX_VALUES / DN_SHARDS {
                    known.clear();
                }
                known
                    .entry(fingerprint)
                    .or_insert_with(|| (Secret(v.to_string()), f.clone()));
            }
            return f;
        }
        // A value whose bit was not set is not kept: a value is kept only once its bit
        // is set, and the bits are cleared only with what is kept. Most values are met
        // once, and this spares them a look into the table.
        if first_meeting(met, fingerprint) {
            return contributing(value_facts(v, checker, buf));
        }
        match look_up(facts, fingerprint, v) {
            Looked::Kept(f) => return f,
            Looked::Other => return contributing(value_facts(v, checker, buf)),
            Looked::Absent => {}
        }
        // The second time: keep it.
        if facts.len() >= LEARNT_MAX_VALUES {
            facts.clear();
            met.fill(0);
        }
        let f = kept(value_facts(v, checker, buf), common);
        facts.insert(fingerprint, (Secret(v.to_string()), f.clone()));
        f
    }

    /// Remembers (value, date) pairs indexed for the name + birth rule.
    pub(super) fn remember_pairs(&mut self, done: Vec<(u64, NaiveDate)>) {
        if self.pairs.len() + done.len() > MEMO_MAX_PAIRS {
            self.pairs.clear();
        }
        self.pairs.extend(done);
    }
}

/// The values that occur more than once among `values`.
pub(crate) fn repeated<'v>(values: impl Iterator<Item = &'v str>) -> Vec<&'v str> {
    let mut counts: HashMap<&str, u32> = HashMap::new();
    for v in values {
        let c = counts.entry(v).or_default();
        *c = c.saturating_add(1);
    }
    counts
        .into_iter()
        .filter(|&(_, c)| c > 1)
        .map(|(v, _)| v)
        .collect()
}

/// A memo for a batch of entries whose values are `values`, on this thread.
pub(crate) fn memo_for<'v, L: RealIndexLookup + ?Sized>(
    values: impl Iterator<Item = &'v str>,
    key: &BlindKey,
    lookup: &L,
) -> Memo {
    let rep = repeated(values);
    let facts = shared_facts(&rep, 0, key, lookup);
    Memo::with_shared(Arc::new(shared_map(&rep, facts)))
}

/// Works out the facts of values that recur, once each (`id` = position + 1).
pub(crate) fn shared_facts<L: RealIndexLookup + ?Sized>(
    values: &[&str],
    first_id: u64,
    key: &BlindKey,
    lookup: &L,
) -> Vec<Arc<Facts>> {
    let mut checker = Checker::new(key, lookup, HashSet::new());
    let mut buf = Scratch::default();
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            checker.seen.clear();
            let mut f = value_facts(v, &mut checker, &mut buf);
            f.id = Some(first_id + i as u64 + 1);
            Arc::new(f)
        })
        .collect()
}

/// Builds the shared map from values and their facts.
pub(crate) fn shared_map(values: &[&str], facts: Vec<Arc<Facts>>) -> SharedFacts {
    values
        .iter()
        .zip(facts)
        .map(|(v, f)| (Secret((*v).to_string()), f))
        .collect()
}
