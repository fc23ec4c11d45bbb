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
use std::collections::HashSet;
use std::sync::Arc;

use chrono::{Datelike as _, NaiveDate};
use fiktiv_vault::blind::IndexKind;
use fiktiv_vault::keys::BlindKey;
use fiktiv_vault::normalize::normalize_name;
use fiktiv_vault::NamePartFilter;
use zeroize::Zeroize as _;

mod memo;
mod value;

pub(crate) use memo::{memo_for, repeated, shared_facts, shared_map, Learning, Memo};

#[cfg(test)]
pub(super) use value::normalize_word;

use super::{name_kind, RealIndexLookup, MAX_DATES, MAX_GIVEN_FAMILY_PAIRS};

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
    /// Does the value bring the entry anything: a flag, a name-like pair or a date?
    fn contributes(&self) -> bool {
        self.flagged || !self.name_like.is_empty() || !self.dates.is_empty() || self.dates_truncated
    }
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

    /// The filter's bits for one normalised string (both parts without a filter).
    fn part_bits(&self, s: &str) -> u8 {
        self.parts
            .map_or(NamePartFilter::GIVEN | NamePartFilter::FAMILY, |p| {
                value::tag_bits(p, s)
            })
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

/// Entries with more values than this do not look for a value among those before it
/// (see `screen_facts`).
const LOOK_BACK_MAX_VALUES: usize = 64;

fn screen_facts<L: RealIndexLookup + ?Sized>(
    values: &[(&str, &str)],
    checker: &mut Checker<'_, L>,
    memo: &mut Memo,
    facts: &mut Vec<Arc<Facts>>,
) -> bool {
    let (key, lookup) = (checker.key, checker.lookup);
    let mut buf = Secret::default();
    // Dates in the entry, repeated values included, as the exact matcher counts them;
    // `dated`: (value, its dates) of the values with dates.
    let mut total = 0usize;
    memo.dated.clear();
    memo.fingerprints(values);
    for (i, (name, v)) in values.iter().enumerate() {
        // A value the entry already had (a uid that is also the DN's RDN value, a cn
        // that is also the display name) brings nothing new but its dates' count: its
        // facts are the same. Looked for only in entries of up to
        // [`LOOK_BACK_MAX_VALUES`] values: in a larger one (a school's group of 1,000
        // members) looking back would cost time quadratic in its size, and working a
        // value out again changes nothing (its dates are counted per copy either way).
        let earlier = if values.len() <= LOOK_BACK_MAX_VALUES {
            values.get(..i).unwrap_or(&[])
        } else {
            &[]
        };
        if let Some(j) = earlier
            .iter()
            .position(|(_, w)| w.len() == v.len() && w == v)
        {
            total += memo
                .dated
                .iter()
                .find(|&&(at, _)| at == j)
                .map_or(0, |&(_, n)| n);
            continue;
        }
        let Some(f) = memo.facts(i, name, v, checker) else {
            continue;
        };
        if f.flagged {
            return false;
        }
        if !f.dates.is_empty() {
            total += f.dates.len();
            memo.dated.push((i, f.dates.len()));
        }
        facts.push(f);
    }

    // Dates: the exact matcher gives up (unverifiable) past MAX_DATES in an entry.
    if total > MAX_DATES || facts.iter().any(|f| f.dates_truncated) {
        return false;
    }

    // Every given-name-like value with every family-name-like value, whole.
    let (mut given, mut family) = (Vec::new(), Vec::new());
    // A name repeated (one attribute's values, as decoded) is classed once.
    let mut last: Option<(&str, (bool, bool))> = None;
    for (i, (n, _)) in values.iter().enumerate() {
        let kind = match last {
            Some((m, kind)) if m.len() == n.len() && m.as_ptr() == n.as_ptr() => kind,
            _ => name_kind(n),
        };
        last = Some((n, kind));
        if kind.0 {
            given.push(i);
        }
        if kind.1 {
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
        let gt: Vec<u8> = gs.iter().map(|g| checker.part_bits(&g.0)).collect();
        let ft: Vec<u8> = fs.iter().map(|f| checker.part_bits(&f.0)).collect();
        for (g, tg) in gs.iter().zip(&gt) {
            for (f, tf) in fs.iter().zip(&ft) {
                for (a, b, ta, tb) in [(g, f, *tg, *tf), (f, g, *tf, *tg)] {
                    // Only a real given name, or an initial (one character: the
                    // initial + family rule), beside a real family name can be one.
                    let initial = a.0.chars().nth(1).is_none() && !a.0.is_empty();
                    if (ta & NamePartFilter::GIVEN == 0 && !initial)
                        || tb & NamePartFilter::FAMILY == 0
                    {
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
    memo.remember_pairs(done);
    true
}
