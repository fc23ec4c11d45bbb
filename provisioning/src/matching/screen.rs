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
use std::hash::{BuildHasher as _, BuildHasherDefault, RandomState};
use std::sync::Arc;

use chrono::{Datelike as _, NaiveDate};
use fiktiv_vault::blind::IndexKind;
use fiktiv_vault::ids::{scan_number_candidates, DEFAULT_CANDIDATE_LIMIT};
use fiktiv_vault::keys::BlindKey;
use fiktiv_vault::normalize::{normalize_name, scan_date_candidates, DEFAULT_DATE_LIMIT};
use fiktiv_vault::{NamePartFilter, TagIsHash};
use unicode_normalization::char::is_combining_mark;
use zeroize::{Zeroize as _, Zeroizing};

use super::{
    ends_with_any, RealIndexLookup, FAMILY_LIKE, GIVEN_LIKE, MAX_DATES, MAX_GIVEN_FAMILY_PAIRS,
    MAX_SPLIT_WORD_CHARS, MAX_WORDS_PER_VALUE, NAME_LIKE_MAX_WORDS, WHOLE_SPLIT_MAX_WORDS, WINDOW,
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

impl Facts {
    /// Nothing to remember: not flagged, no name-like pair, no date.
    fn is_nothing(&self) -> bool {
        self.id.is_none()
            && !self.flagged
            && self.name_like.is_empty()
            && self.dates.is_empty()
            && !self.dates_truncated
    }
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
    /// Values learnt while scanning (for a scan fed page by page, where what recurs is
    /// not known up front): a value's facts are kept the second time it is met.
    learnt: Option<Learnt>,
    pairs: HashSet<(u64, NaiveDate)>,
    /// The per-entry key set, kept for its capacity.
    seen: HashSet<Secret>,
    scratch: Scratch,
    /// The per-entry list of facts, kept for its capacity.
    facts: Vec<Arc<Facts>>,
    /// The facts of most values: nothing (one allocation for all of them).
    empty: Arc<Facts>,
}

/// What a learning memo keeps.
pub(crate) struct Learnt {
    /// Fingerprints of the values met once (a collision only keeps a value early).
    met: HashSet<u64, BuildHasherDefault<TagIsHash>>,
    facts: HashMap<Secret, Arc<Facts>, RandomState>,
    /// Fingerprints of values, keyed at random per memo.
    fingerprint: RandomState,
    next_id: u64,
}

/// Past this many learnt values, a memo forgets them and starts over (a bound on
/// memory, not on correctness).
const LEARNT_MAX_VALUES: usize = 1 << 20;

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
            empty: Arc::new(Facts::default()),
        }
    }

    /// A memo that learns what recurs as it goes (a scan fed page by page).
    pub(crate) fn learning() -> Self {
        let mut m = Self::new();
        m.learnt = Some(Learnt {
            met: HashSet::default(),
            facts: HashMap::default(),
            fingerprint: RandomState::new(),
            // Apart from the ids of values worked out up front (positions).
            next_id: 1 << 48,
        });
        m
    }

    /// The facts of `v`, worked out now unless known.
    fn facts<L: RealIndexLookup + ?Sized>(
        &mut self,
        v: &str,
        checker: &mut Checker<'_, L>,
    ) -> Arc<Facts> {
        if let Some(f) = self.shared.get(v) {
            return Arc::clone(f);
        }
        let buf = &mut self.scratch;
        let once = |f: Facts| {
            if f.is_nothing() {
                Arc::clone(&self.empty)
            } else {
                Arc::new(f)
            }
        };
        let Some(l) = self.learnt.as_mut() else {
            return once(value_facts(v, checker, buf));
        };
        if let Some(f) = l.facts.get(v) {
            return Arc::clone(f);
        }
        if l.met.insert(l.fingerprint.hash_one(v)) {
            return once(value_facts(v, checker, buf));
        }
        // The second time: keep it.
        if l.facts.len() >= LEARNT_MAX_VALUES {
            l.facts.clear();
            l.met.clear();
        }
        let mut f = value_facts(v, checker, buf);
        f.id = Some(l.next_id);
        l.next_id += 1;
        let f = Arc::new(f);
        l.facts.insert(Secret(v.to_string()), Arc::clone(&f));
        f
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
    /// The name-like pairs of the value being worked out.
    name_like: Vec<Secret>,
}

impl<'a, L: RealIndexLookup + ?Sized> Checker<'a, L> {
    fn new(key: &'a BlindKey, lookup: &'a L, seen: HashSet<Secret>) -> Self {
        Self {
            key,
            lookup,
            parts: lookup.name_parts(),
            seen,
            name_like: Vec::new(),
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

/// Reused buffers for working out a value's facts. They hold words of target values,
/// so they are wiped when dropped ([`Secret`]).
#[derive(Default)]
pub(crate) struct Scratch {
    /// The value's normalised words, one after another.
    text: Secret,
    /// Per word: its byte range in the value and in `text`.
    words: Vec<((usize, usize), (usize, usize))>,
    /// `runs[i * WINDOW + len - 1]`: the filter's bits for the run of `len` words from
    /// word `i`.
    runs: Vec<u8>,
    /// The bits of words `..k` and of words `k..` (whole splits only).
    prefix: Vec<u8>,
    suffix: Vec<u8>,
    /// A `given|family` key being built.
    key: Secret,
    /// Normalised ASCII words already split at every character, and whether some
    /// split passed the name-part filter (one scan or batch: one filter).
    splits: HashMap<Secret, bool>,
}

/// Past this many remembered words, [`Scratch::splits`] starts over.
const SPLITS_MAX_WORDS: usize = 1 << 18;

/// Without a filter every half may be either part.
const ANY_PART: u8 = NamePartFilter::GIVEN | NamePartFilter::FAMILY;
const GIVEN: u8 = NamePartFilter::GIVEN;
const FAMILY: u8 = NamePartFilter::FAMILY;

/// May a pair whose halves have these bits be a real name (given half first)?
fn pair_may_be_real(given: u8, family: u8) -> bool {
    given & GIVEN != 0 && family & FAMILY != 0
}

impl Scratch {
    /// The normalised text of words `from..to`.
    fn run(&self, from: usize, to: usize) -> &str {
        let start = self.words.get(from).map_or(0, |w| w.1 .0);
        let end = to
            .checked_sub(1)
            .and_then(|l| self.words.get(l))
            .map_or(start, |w| w.1 .1);
        self.text.0.get(start..end).unwrap_or("")
    }

    /// `given|family` from two runs of normalised words, into `self.key`.
    fn pair_key(&mut self, given: (usize, usize), family: (usize, usize)) {
        let mut key = std::mem::take(&mut self.key);
        key.0.clear();
        key.0.push_str(self.run(given.0, given.1));
        key.0.push('|');
        key.0.push_str(self.run(family.0, family.1));
        self.key = key;
    }

    /// Splits `v` into words (runs of letters, digits and combining marks) and
    /// normalises them; `false` past [`MAX_WORDS_PER_VALUE`] words.
    fn split(&mut self, v: &str) -> bool {
        self.text.0.clear();
        self.words.clear();
        if v.is_ascii() {
            // The same words, byte by byte: no ASCII character is a combining mark.
            let mut start = None;
            for (i, b) in v.bytes().chain(std::iter::once(b' ')).enumerate() {
                match (b.is_ascii_alphanumeric(), start) {
                    (true, None) => start = Some(i),
                    (false, Some(from)) => {
                        start = None;
                        if self.words.len() == MAX_WORDS_PER_VALUE {
                            return false;
                        }
                        let at = self.text.0.len();
                        self.text.0.extend(
                            v.bytes()
                                .skip(from)
                                .take(i - from)
                                .map(|b| char::from(b.to_ascii_lowercase())),
                        );
                        self.words.push(((from, i), (at, self.text.0.len())));
                    }
                    _ => {}
                }
            }
            return true;
        }
        let mut start = None;
        // A separator after the end closes the last word.
        for (i, c) in v.char_indices().chain(std::iter::once((v.len(), ' '))) {
            let in_word = c.is_alphanumeric() || is_combining_mark(c);
            match (in_word, start) {
                (true, None) => start = Some(i),
                (false, Some(from)) => {
                    start = None;
                    if self.words.len() == MAX_WORDS_PER_VALUE {
                        return false;
                    }
                    let piece = v.get(from..i).unwrap_or("");
                    let at = self.text.0.len();
                    if piece.is_ascii() {
                        self.text
                            .0
                            .extend(piece.bytes().map(|b| char::from(b.to_ascii_lowercase())));
                    } else {
                        let n = Zeroizing::new(normalize_name(piece));
                        self.text.0.push_str(&n);
                    }
                    self.words.push(((from, i), (at, self.text.0.len())));
                }
                _ => {}
            }
        }
        true
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

/// Everything one value contributes on its own (see `match_entry_exact`). A pair the
/// name-part filter rules out is neither indexed nor kept for the name + birth rule:
/// that rule's key starts with the same `given|family`, so it cannot match either.
fn value_facts<L: RealIndexLookup + ?Sized>(
    v: &str,
    checker: &mut Checker<'_, L>,
    sc: &mut Scratch,
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
    if !word_pairs(v, checker, sc) {
        return flagged;
    }
    let mut facts = Facts {
        name_like: std::mem::take(&mut checker.name_like),
        ..Facts::default()
    };
    let dates = scan_date_candidates(v, DEFAULT_DATE_LIMIT);
    facts.dates = dates.dates;
    facts.dates_truncated = dates.truncated;
    facts
}

/// The name pairs of one value: indexes those the filter lets through (`false`: one
/// matched, or the value has too many words) and keeps its name-like pairs in
/// `checker.name_like`.
fn word_pairs<L: RealIndexLookup + ?Sized>(
    v: &str,
    checker: &mut Checker<'_, L>,
    sc: &mut Scratch,
) -> bool {
    checker.name_like.clear();
    if !sc.split(v) {
        return false;
    }
    let n = sc.words.len();
    let parts = checker.parts;

    // The filter's bits for every run of up to WINDOW words.
    sc.runs.clear();
    match parts {
        None => sc.runs.resize(n * WINDOW, ANY_PART),
        Some(p) => {
            sc.runs.resize(n * WINDOW, 0);
            for i in 0..n {
                let mut h = p.key().hasher();
                for len in 1..=WINDOW.min(n - i) {
                    let (_, (from, to)) = sc.words.get(i + len - 1).copied().unwrap_or_default();
                    h.write(sc.text.0.get(from..to).unwrap_or(""));
                    if let Some(b) = sc.runs.get_mut(i * WINDOW + len - 1) {
                        *b = p.bits(h.finish());
                    }
                }
            }
        }
    }
    let run_bits = |sc: &Scratch, at: usize, len: usize| {
        sc.runs.get(at * WINDOW + len - 1).copied().unwrap_or(0)
    };

    // Whole splits: words ..k and k.., both orders.
    if (2..=WHOLE_SPLIT_MAX_WORDS).contains(&n) {
        sc.prefix.clear();
        sc.suffix.clear();
        match parts {
            None => {
                sc.prefix.resize(n + 1, ANY_PART);
                sc.suffix.resize(n + 1, ANY_PART);
            }
            Some(p) => {
                let mut h = p.key().hasher();
                sc.prefix.push(0);
                for k in 0..n {
                    h.write(sc.run(k, k + 1));
                    sc.prefix.push(p.bits(h.finish()));
                }
                for k in 0..=n {
                    // A suffix matters only beside a prefix that is some name part.
                    let bits = if sc.prefix.get(k).copied().unwrap_or(0) == 0 {
                        0
                    } else {
                        p.bits(p.key().tag(sc.run(k, n)))
                    };
                    sc.suffix.push(bits);
                }
            }
        }
        for k in 1..n {
            let (pb, sb) = (
                sc.prefix.get(k).copied().unwrap_or(0),
                sc.suffix.get(k).copied().unwrap_or(0),
            );
            for (given, family, ok) in [
                ((0, k), (k, n), pair_may_be_real(pb, sb)),
                ((k, n), (0, k), pair_may_be_real(sb, pb)),
            ] {
                if !ok {
                    continue;
                }
                sc.pair_key(given, family);
                if checker.full_name(&sc.key.0) {
                    return false;
                }
                if n <= NAME_LIKE_MAX_WORDS {
                    checker.name_like.push(Secret(sc.key.0.clone()));
                }
            }
        }
    }

    // Runs of up to WINDOW + WINDOW words anywhere, both orders; skipped at once when
    // no run is a given name or none a family name.
    let any = sc.runs.iter().fold(0, |acc, b| acc | b);
    if n >= 2 && any & GIVEN != 0 && any & FAMILY != 0 {
        for i in 0..n {
            for g in 1..=WINDOW {
                for f in 1..=WINDOW {
                    if i + g + f > n {
                        continue;
                    }
                    let (gb, fb) = (run_bits(sc, i, g), run_bits(sc, i + g, f));
                    for (given, family, ok) in [
                        ((i, i + g), (i + g, i + g + f), pair_may_be_real(gb, fb)),
                        ((i + g, i + g + f), (i, i + g), pair_may_be_real(fb, gb)),
                    ] {
                        if !ok {
                            continue;
                        }
                        sc.pair_key(given, family);
                        if checker.full_name(&sc.key.0) {
                            return false;
                        }
                    }
                }
            }
        }
    }

    // Every split of a single word, given half first.
    for j in 0..n {
        let Some(&((ws, we), (ns, ne))) = sc.words.get(j) else {
            continue;
        };
        let w = v.get(ws..we).unwrap_or("");
        if w.is_ascii() {
            // The normalised word is the lowercase word, cut at the same byte.
            if !(2..=MAX_SPLIT_WORD_CHARS).contains(&w.len()) {
                continue;
            }
            // With a filter, a word none of whose splits passes it is remembered.
            let cached = parts.is_some() && {
                let word = sc.text.0.get(ns..ne).unwrap_or("");
                match sc.splits.get(word) {
                    Some(false) => continue,
                    Some(true) => true,
                    None => false,
                }
            };
            let mut passed = false;
            let mut h = parts.map(|p| p.key().hasher());
            for at in ns + 1..ne {
                let g = sc.text.0.get(ns..at).unwrap_or("");
                let f = sc.text.0.get(at..ne).unwrap_or("");
                if let (Some(p), Some(h)) = (parts, h.as_mut()) {
                    // The given half grows by one byte per split; the family half is
                    // tagged only behind a given half that is some real given name.
                    h.write(g.get(g.len() - 1..).unwrap_or(""));
                    if p.bits(h.finish()) & GIVEN == 0 || p.bits(p.key().tag(f)) & FAMILY == 0 {
                        continue;
                    }
                }
                passed = true;
                let mut key = std::mem::take(&mut sc.key);
                key.0.clear();
                key.0.push_str(g);
                key.0.push('|');
                key.0.push_str(f);
                sc.key = key;
                if checker.full_name(&sc.key.0) {
                    return false;
                }
                if n == 1 {
                    checker.name_like.push(Secret(sc.key.0.clone()));
                }
            }
            if parts.is_some() && !cached {
                if sc.splits.len() >= SPLITS_MAX_WORDS {
                    sc.splits.clear();
                }
                let word = Secret(sc.text.0.get(ns..ne).unwrap_or("").to_string());
                sc.splits.insert(word, passed);
            }
        } else {
            let chars = w.chars().count();
            if !(2..=MAX_SPLIT_WORD_CHARS).contains(&chars) {
                continue;
            }
            for (at, _) in w.char_indices().skip(1) {
                let g = normalize_word(w.get(..at).unwrap_or(""));
                let f = normalize_word(w.get(at..).unwrap_or(""));
                if let Some(p) = parts {
                    if !pair_may_be_real(p.bits(p.key().tag(&g.0)), p.bits(p.key().tag(&f.0))) {
                        continue;
                    }
                }
                let mut key = std::mem::take(&mut sc.key);
                key.0.clear();
                key.0.push_str(&g.0);
                key.0.push('|');
                key.0.push_str(&f.0);
                sc.key = key;
                if checker.full_name(&sc.key.0) {
                    return false;
                }
                if n == 1 {
                    checker.name_like.push(Secret(sc.key.0.clone()));
                }
            }
        }
    }
    true
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
    let mut facts = std::mem::take(&mut memo.facts);
    let clean = screen_facts(values, checker, memo, &mut facts);
    facts.clear();
    memo.facts = facts;
    clean
}

fn screen_facts<L: RealIndexLookup + ?Sized>(
    values: &[(&str, &str)],
    checker: &mut Checker<'_, L>,
    memo: &mut Memo,
    facts: &mut Vec<Arc<Facts>>,
) -> bool {
    let (key, lookup) = (checker.key, checker.lookup);
    let mut buf = Secret::default();
    for (_, v) in values {
        let f = memo.facts(v, checker);
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
    let (mut given, mut family) = (Vec::new(), Vec::new());
    for (i, (n, _)) in values.iter().enumerate() {
        if ends_with_any(n, GIVEN_LIKE) {
            given.push(i);
        }
        if ends_with_any(n, FAMILY_LIKE) {
            family.push(i);
        }
    }
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
        for f in facts.iter() {
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
