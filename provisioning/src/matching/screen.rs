//! The screen: a fast pass that answers "clean" or "look closer" for an entry.
//!
//! It computes the same blind indexes as `match_entry_exact` for an entry (the same
//! personal-number candidates, full-name keys and name + birth keys) but cheaply, and
//! answers only "clean" or "look closer":
//!
//! - words are normalised once, not once per pair: an ASCII word by lowercasing (which is
//!   what `normalize_name` does to ASCII letters and digits), any other word with
//!   `normalize_name` itself. A pair's key is then the concatenation of its words' forms,
//!   because `normalize_name(a + " " + b) == normalize_name(a) + normalize_name(b)`: a
//!   space is a starter, which NFKD never reorders across, case mapping and the fold
//!   work char by char, and the space itself is dropped;
//! - each key is indexed once per entry, however many values repeat it (uid, mail, DN);
//! - what a value contributes on its own (numbers, full-name pairs, name-like pairs,
//!   dates) does not depend on its entry, so a value that recurs (object classes, a DN
//!   that is also a group member, a school's name) is worked once per scan or batch
//!   ([`Memo`]), and so is each of its name-like pairs with each date it meets.
//!
//! Anything it finds, or cannot check completely, sends the entry to the exact matcher,
//! so findings and guard refusals are exactly those of the rules.

use std::borrow::Borrow;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{Datelike as _, NaiveDate};
use fiktiv_vault::blind::IndexKind;
use fiktiv_vault::ids::{scan_number_candidates, DEFAULT_CANDIDATE_LIMIT};
use fiktiv_vault::keys::BlindKey;
use fiktiv_vault::normalize::{normalize_name, scan_date_candidates, DEFAULT_DATE_LIMIT};
use fiktiv_vault::NamePartFilter;
use zeroize::Zeroize as _;

use super::{
    ends_with_any, words, RealIndexLookup, FAMILY_LIKE, GIVEN_LIKE, MAX_DATES,
    MAX_GIVEN_FAMILY_PAIRS, MAX_SPLIT_WORD_CHARS, MAX_WORDS_PER_VALUE, NAME_LIKE_MAX_WORDS,
    WHOLE_SPLIT_MAX_WORDS, WINDOW,
};

/// A string derived from values of a target: hashable, wiped on drop.
#[derive(PartialEq, Eq, Hash, Default)]
pub(crate) struct Secret(pub(super) String);

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl Borrow<str> for Secret {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// What the screen keeps about one value.
#[derive(Default)]
pub(crate) struct Facts {
    /// Set for a value worked out up front (it recurs): its name-like pairs with a
    /// date are then remembered too.
    id: Option<u64>,
    /// A personal number or full name matched inside the value, or it cannot be checked
    /// completely: the entry needs the exact matcher.
    flagged: bool,
    /// The value's name-like pairs, as normalised `given|family` keys.
    name_like: Vec<Secret>,
    dates: Vec<NaiveDate>,
    dates_truncated: bool,
}

/// Values worked out once, shared read-only by the threads of a scan.
pub(crate) type SharedFacts = HashMap<Secret, Arc<Facts>>;

/// Past this many remembered (value, date) pairs, a memo starts over.
const MEMO_MAX_PAIRS: usize = 4 << 20;

/// What the screen knows across the entries of one scan or one batch of records (one
/// key, one lookup): the values that occur more than once, worked out up front (a value
/// that occurs once is not worth remembering: keeping it costs more than it saves), and
/// which (value, date) pairs were already indexed for the name + birth rule.
pub(crate) struct Memo {
    shared: Arc<SharedFacts>,
    pairs: HashSet<(u64, NaiveDate)>,
    /// The per-entry key set, kept for its capacity.
    seen: HashSet<Secret>,
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
            pairs: HashSet::new(),
            seen: HashSet::new(),
        }
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
    let mut buf = Secret::default();
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

/// Indexes full-name keys, each once per entry.
///
/// Only within an entry: a set of every clean key of a whole scan costs more to keep
/// (hashing into a large table, an allocation per key) than the index it would save,
/// as most keys (those with a DN's or a mail address's unique part) occur once.
struct Checker<'a, L: ?Sized> {
    key: &'a BlindKey,
    lookup: &'a L,
    /// The name-part pre-filter, when the lookup has one.
    parts: Option<&'a NamePartFilter>,
    /// Keys indexed (and not found) in this entry.
    seen: HashSet<Secret>,
}

impl<'a, L: RealIndexLookup + ?Sized> Checker<'a, L> {
    fn new(key: &'a BlindKey, lookup: &'a L, seen: HashSet<Secret>) -> Self {
        Self {
            key,
            lookup,
            parts: lookup.name_parts(),
            seen,
        }
    }

    /// Does this full-name key belong to a real identity?
    fn full_name(&mut self, k: &str) -> bool {
        if self.seen.contains(k) {
            return false;
        }
        let hit = self
            .lookup
            .contains(IndexKind::FullName, &self.key.index(IndexKind::FullName, k));
        if !hit {
            self.seen.insert(Secret(k.to_string()));
        }
        hit
    }

    /// The tag of the concatenated normalised words (0 without a filter).
    fn tag_words(&self, ws: &[Secret]) -> u64 {
        let Some(p) = self.parts else { return 0 };
        let mut h = p.key().hasher();
        for w in ws {
            h.write(&w.0);
        }
        h.finish()
    }

    /// The tag of one normalised string (0 without a filter).
    fn tag(&self, s: &str) -> u64 {
        self.parts.map_or(0, |p| p.key().tag(s))
    }

    /// Can a pair whose halves have these tags be a real name? Always, without a
    /// filter; with one, only when the given half is some real given name and the
    /// family half some real family name.
    fn may_be_real(&self, given: u64, family: u64) -> bool {
        self.parts
            .is_none_or(|p| p.given(given) && p.family(family))
    }
}

/// `normalize_name` of a word (letters, digits, combining marks).
pub(super) fn normalize_word(w: &str) -> Secret {
    if w.is_ascii() {
        Secret(w.to_ascii_lowercase())
    } else {
        Secret(normalize_name(w))
    }
}

/// `given|family` from normalised words.
fn pair_key(buf: &mut Secret, given: &[Secret], family: &[Secret]) {
    buf.0.clear();
    for w in given {
        buf.0.push_str(&w.0);
    }
    buf.0.push('|');
    for w in family {
        buf.0.push_str(&w.0);
    }
}

/// Tags of the word runs a value's name pairs are made of: runs of up to [`WINDOW`]
/// words from every position, and (for whole splits) every prefix and suffix.
struct RunTags {
    /// `short[i * WINDOW + len - 1]`: the run of `len` words from word `i`.
    short: Vec<u64>,
    /// `prefix[k]`: words `..k`; `suffix[k]`: words `k..` (whole splits only).
    prefix: Vec<u64>,
    suffix: Vec<u64>,
}

impl RunTags {
    fn new<L: RealIndexLookup + ?Sized>(checker: &Checker<'_, L>, norm: &[Secret]) -> Self {
        let n = norm.len();
        let Some(parts) = checker.parts else {
            return Self {
                short: Vec::new(),
                prefix: Vec::new(),
                suffix: Vec::new(),
            };
        };
        let mut short = vec![0; n * WINDOW];
        for i in 0..n {
            let mut h = parts.key().hasher();
            for len in 1..=WINDOW {
                let Some(w) = norm.get(i + len - 1) else {
                    break;
                };
                h.write(&w.0);
                if let Some(t) = short.get_mut(i * WINDOW + len - 1) {
                    *t = h.finish();
                }
            }
        }
        let (mut prefix, mut suffix) = (Vec::new(), Vec::new());
        if (2..=WHOLE_SPLIT_MAX_WORDS).contains(&n) {
            let mut h = parts.key().hasher();
            prefix.push(0);
            for w in norm {
                h.write(&w.0);
                prefix.push(h.finish());
            }
            suffix = (0..=n)
                .map(|k| checker.tag_words(norm.get(k..).unwrap_or(&[])))
                .collect();
        }
        Self {
            short,
            prefix,
            suffix,
        }
    }

    fn run(&self, at: usize, len: usize) -> u64 {
        self.short
            .get(at * WINDOW + len.saturating_sub(1))
            .copied()
            .unwrap_or(0)
    }

    fn prefix(&self, k: usize) -> u64 {
        self.prefix.get(k).copied().unwrap_or(0)
    }

    fn suffix(&self, k: usize) -> u64 {
        self.suffix.get(k).copied().unwrap_or(0)
    }
}

/// Everything one value contributes on its own (see `match_entry_exact`). A pair the
/// name-part filter rules out is neither indexed nor kept for the name + birth rule:
/// that rule's key starts with the same `given|family`, so it cannot match either.
fn value_facts<L: RealIndexLookup + ?Sized>(
    v: &str,
    checker: &mut Checker<'_, L>,
    buf: &mut Secret,
) -> Facts {
    let flagged = Facts {
        flagged: true,
        ..Facts::default()
    };
    let numbers = scan_number_candidates(v, DEFAULT_CANDIDATE_LIMIT);
    if numbers.truncated {
        return flagged;
    }
    for c in &numbers.candidates {
        let idx = checker.key.index(IndexKind::PersonalNumber, c);
        if checker.lookup.contains(IndexKind::PersonalNumber, &idx) {
            return flagged;
        }
    }
    let ws = words(v);
    if ws.len() > MAX_WORDS_PER_VALUE {
        return flagged;
    }
    let norm: Vec<Secret> = ws.iter().map(|w| normalize_word(w)).collect();
    let n = norm.len();
    let tags = RunTags::new(checker, &norm);
    let mut facts = Facts::default();
    if (2..=WHOLE_SPLIT_MAX_WORDS).contains(&n) {
        for k in 1..n {
            let (g, f) = norm.split_at(k);
            let (tg, tf) = (tags.prefix(k), tags.suffix(k));
            for (a, b, ta, tb) in [(g, f, tg, tf), (f, g, tf, tg)] {
                if !checker.may_be_real(ta, tb) {
                    continue;
                }
                pair_key(buf, a, b);
                if checker.full_name(&buf.0) {
                    return flagged;
                }
                if n <= NAME_LIKE_MAX_WORDS {
                    facts.name_like.push(Secret(buf.0.clone()));
                }
            }
        }
    }
    if n >= 2 {
        for i in 0..n {
            for g in 1..=WINDOW {
                for f in 1..=WINDOW {
                    let (Some(gw), Some(fw)) = (norm.get(i..i + g), norm.get(i + g..i + g + f))
                    else {
                        continue;
                    };
                    let (tg, tf) = (tags.run(i, g), tags.run(i + g, f));
                    for (a, b, ta, tb) in [(gw, fw, tg, tf), (fw, gw, tf, tg)] {
                        if !checker.may_be_real(ta, tb) {
                            continue;
                        }
                        pair_key(buf, a, b);
                        if checker.full_name(&buf.0) {
                            return flagged;
                        }
                    }
                }
            }
        }
    }
    for (w, nw) in ws.iter().zip(&norm) {
        let chars = w.chars().count();
        if !(2..=MAX_SPLIT_WORD_CHARS).contains(&chars) {
            continue;
        }
        for (at, _) in w.char_indices().skip(1) {
            let owned: (Secret, Secret);
            let (g, f) = if w.is_ascii() {
                // The lowercase word, cut at the same byte.
                (nw.0.get(..at).unwrap_or(""), nw.0.get(at..).unwrap_or(""))
            } else {
                owned = (
                    normalize_word(w.get(..at).unwrap_or("")),
                    normalize_word(w.get(at..).unwrap_or("")),
                );
                (owned.0 .0.as_str(), owned.1 .0.as_str())
            };
            if !checker.may_be_real(checker.tag(g), checker.tag(f)) {
                continue;
            }
            buf.0.clear();
            buf.0.push_str(g);
            buf.0.push('|');
            buf.0.push_str(f);
            if checker.full_name(&buf.0) {
                return flagged;
            }
            if n == 1 {
                facts.name_like.push(Secret(buf.0.clone()));
            }
        }
    }
    let dates = scan_date_candidates(v, DEFAULT_DATE_LIMIT);
    facts.dates = dates.dates;
    facts.dates_truncated = dates.truncated;
    facts
}

/// `|YYYYMMDD`, as `name_birth_key` writes the date (`%Y%m%d`) for the years date
/// candidates have (1800..=2199; any year 0..=9999 comes out the same).
pub(super) fn push_date(out: &mut String, d: NaiveDate) {
    let (y, m, day) = (d.year().clamp(0, 9999) as u32, d.month(), d.day());
    out.push('|');
    for digit in [
        y / 1000,
        y / 100 % 10,
        y / 10 % 10,
        y % 10,
        m / 10,
        m % 10,
        day / 10,
        day % 10,
    ] {
        out.push(char::from(b'0' + digit as u8));
    }
}

/// Is the entry certainly clean? `false`: something matched or could not be checked
/// completely, and the exact matcher must look.
pub(super) fn screen<L: RealIndexLookup + ?Sized>(
    values: &[(&str, &str)],
    key: &BlindKey,
    lookup: &L,
    memo: &mut Memo,
) -> bool {
    let mut checker = Checker::new(key, lookup, std::mem::take(&mut memo.seen));
    let clean = screen_with(values, &mut checker, memo);
    checker.seen.clear();
    memo.seen = checker.seen;
    clean
}

fn screen_with<L: RealIndexLookup + ?Sized>(
    values: &[(&str, &str)],
    checker: &mut Checker<'_, L>,
    memo: &mut Memo,
) -> bool {
    let (key, lookup) = (checker.key, checker.lookup);
    let mut buf = Secret::default();
    let mut facts: Vec<Arc<Facts>> = Vec::with_capacity(values.len());
    for (_, v) in values {
        let f = match memo.shared.get(*v) {
            Some(f) => Arc::clone(f),
            None => Arc::new(value_facts(v, checker, &mut buf)),
        };
        if f.flagged {
            return false;
        }
        facts.push(f);
    }

    // Dates: the exact matcher gives up (unverifiable) past MAX_DATES in an entry.
    let total: usize = facts.iter().map(|f| f.dates.len()).sum();
    if total > MAX_DATES || facts.iter().any(|f| f.dates_truncated) {
        return false;
    }

    // Every given-name-like value with every family-name-like value, whole.
    let given: Vec<usize> = (0..values.len())
        .filter(|&i| {
            values
                .get(i)
                .is_some_and(|(n, _)| ends_with_any(n, GIVEN_LIKE))
        })
        .collect();
    let family: Vec<usize> = (0..values.len())
        .filter(|&i| {
            values
                .get(i)
                .is_some_and(|(n, _)| ends_with_any(n, FAMILY_LIKE))
        })
        .collect();
    if given.len().saturating_mul(family.len()) > MAX_GIVEN_FAMILY_PAIRS {
        return false; // the exact matcher reports it unverifiable
    }
    let mut whole_pairs: Vec<Secret> = Vec::new();
    if !given.is_empty() && !family.is_empty() {
        let whole = |i: usize| Secret(normalize_name(values.get(i).map_or("", |(_, v)| v)));
        let gs: Vec<Secret> = given.iter().map(|&i| whole(i)).collect();
        let fs: Vec<Secret> = family.iter().map(|&i| whole(i)).collect();
        let gt: Vec<u64> = gs.iter().map(|g| checker.tag(&g.0)).collect();
        let ft: Vec<u64> = fs.iter().map(|f| checker.tag(&f.0)).collect();
        for (g, tg) in gs.iter().zip(&gt) {
            for (f, tf) in fs.iter().zip(&ft) {
                for (a, b, ta, tb) in [(g, f, *tg, *tf), (f, g, *tf, *tg)] {
                    if !checker.may_be_real(ta, tb) {
                        continue;
                    }
                    pair_key(&mut buf, std::slice::from_ref(a), std::slice::from_ref(b));
                    if checker.full_name(&buf.0) {
                        return false;
                    }
                    whole_pairs.push(Secret(buf.0.clone()));
                }
            }
        }
    }

    // Name + birth date: every distinct name-like key with every distinct date, except
    // the (value, date) pairs a previous entry already indexed.
    let mut dates: Vec<NaiveDate> = facts.iter().flat_map(|f| f.dates.iter().copied()).collect();
    if dates.is_empty() {
        return true;
    }
    dates.sort_unstable();
    dates.dedup();
    let mut done: Vec<(u64, NaiveDate)> = Vec::new();
    let mut names: HashSet<&str> = HashSet::new();
    for d in &dates {
        names.clear();
        let check = |name: &str, buf: &mut Secret| {
            buf.0.clear();
            buf.0.push_str(name);
            push_date(&mut buf.0, *d);
            let idx = key.index(IndexKind::NameBirth, &buf.0);
            lookup.contains(IndexKind::NameBirth, &idx)
        };
        for f in &facts {
            if f.name_like.is_empty() {
                continue;
            }
            if let Some(id) = f.id {
                if memo.pairs.contains(&(id, *d)) {
                    continue;
                }
                done.push((id, *d));
            }
            for n in &f.name_like {
                if names.insert(n.0.as_str()) && check(&n.0, &mut buf) {
                    return false;
                }
            }
        }
        for n in &whole_pairs {
            if names.insert(n.0.as_str()) && check(&n.0, &mut buf) {
                return false;
            }
        }
    }
    if memo.pairs.len() + done.len() > MEMO_MAX_PAIRS {
        memo.pairs.clear();
    }
    memo.pairs.extend(done);
    true
}
