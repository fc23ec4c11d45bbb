//! Matching values against the blind indexes of every real identity in the vault.
//! Shared by the egress guard (before a write) and the leak scan (after reading).
//!
//! Every value is normalised and indexed locally with the blind-index key; only the
//! resulting MACs are compared, in memory. Nothing is sent anywhere.
//!
//! Rules, per entry (one outbound record, or one entry read back from a target):
//!
//! - **personal number**: every candidate in every value, in any written form
//!   ([`fiktiv_vault::ids::scan_number_candidates`]);
//! - **full name**: name pairs found in the values: a value split into words at every
//!   boundary (values of up to 16 words), windows of up to four + four words anywhere
//!   inside a value (both orders),
//!   every split of a single word (`annasvensson`), and every given-name-like value with
//!   every family-name-like value of the entry;
//! - **name + birth date**: the name pairs of short values (up to six words), the
//!   given/family pairs, the initial + family pairs of short values (`aoberg`,
//!   `a.oberg@school.se`, `Öberg, Å.`: [`initial_pairs`]), and every pair that is a real
//!   full name wherever it stands (a sentence of any length, a mail address with its
//!   domain), each with every date candidate in the entry;
//! - **unverifiable**: a value was too large to check completely, or an entry has more
//!   given-name-like and family-name-like values than can be paired with each other
//!   (more than 256 pairs). The guard blocks it and the scan reports it: failing closed.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::NaiveDate;
use fiktiv_vault::blind::{BlindIndex, IndexKind};
use fiktiv_vault::identity::full_name_key;
use fiktiv_vault::ids::{scan_number_candidates, DEFAULT_CANDIDATE_LIMIT};
use fiktiv_vault::keys::BlindKey;
use fiktiv_vault::normalize::{
    name_birth_key, normalize_name, scan_date_candidates, DEFAULT_DATE_LIMIT,
};
use fiktiv_vault::{BlindIndexSet, CaseId, NamePartFilter};
use serde::Serialize;
use unicode_normalization::char::is_combining_mark;
use zeroize::Zeroizing;

/// Where the blind indexes of real identities are looked up. Implemented for the
/// vault's [`BlindIndexSet`] and, for tests, for a plain set of indexes.
pub trait RealIndexLookup: Send + Sync {
    fn contains(&self, kind: IndexKind, idx: &BlindIndex) -> bool;

    /// The cases whose real identity has this index, when the lookup knows them.
    fn cases(&self, _kind: IndexKind, _idx: &BlindIndex) -> Vec<CaseId> {
        Vec::new()
    }

    /// The name-part pre-filter ([`fiktiv_vault::name_parts`]), if the lookup has the
    /// tags of every real identity's names; `None` makes the screen index every
    /// candidate.
    fn name_parts(&self) -> Option<&NamePartFilter> {
        None
    }
}

impl RealIndexLookup for BlindIndexSet {
    fn contains(&self, kind: IndexKind, idx: &BlindIndex) -> bool {
        BlindIndexSet::contains(self, kind, idx)
    }

    fn cases(&self, kind: IndexKind, idx: &BlindIndex) -> Vec<CaseId> {
        BlindIndexSet::cases(self, kind, idx)
    }

    fn name_parts(&self) -> Option<&NamePartFilter> {
        BlindIndexSet::name_parts(self)
    }
}

impl RealIndexLookup for HashSet<(IndexKind, BlindIndex)> {
    fn contains(&self, kind: IndexKind, idx: &BlindIndex) -> bool {
        HashSet::contains(self, &(kind, *idx))
    }
}

impl RealIndexLookup for HashMap<(IndexKind, BlindIndex), Vec<CaseId>> {
    fn contains(&self, kind: IndexKind, idx: &BlindIndex) -> bool {
        self.contains_key(&(kind, *idx))
    }

    fn cases(&self, kind: IndexKind, idx: &BlindIndex) -> Vec<CaseId> {
        self.get(&(kind, *idx)).cloned().unwrap_or_default()
    }
}

impl<T: RealIndexLookup + ?Sized> RealIndexLookup for std::sync::Arc<T> {
    fn contains(&self, kind: IndexKind, idx: &BlindIndex) -> bool {
        (**self).contains(kind, idx)
    }

    fn cases(&self, kind: IndexKind, idx: &BlindIndex) -> Vec<CaseId> {
        (**self).cases(kind, idx)
    }

    fn name_parts(&self) -> Option<&NamePartFilter> {
        (**self).name_parts()
    }
}

/// Which rule matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// A real personal number, in any written form.
    #[serde(rename = "personal-number")]
    Number,
    /// A real first + last name together with the real birth date.
    NameBirth,
    /// A real first + last name (without the birth date: may be a namesake).
    FullName,
    /// A value was too large to be checked completely.
    Unverifiable,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Number => "personal-number",
            Rule::NameBirth => "name-birth",
            Rule::FullName => "full-name",
            Rule::Unverifiable => "unverifiable",
        }
    }
}

/// One match: the rule, the names of the attributes involved and the cases, if known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hit {
    pub rule: Rule,
    pub attributes: BTreeSet<String>,
    pub cases: BTreeSet<CaseId>,
}

/// A value with more words than this is not split into name pairs; it is reported
/// unverifiable instead of taking unbounded time.
const MAX_WORDS_PER_VALUE: usize = 10_000;
/// Windows of up to this many words for each name part inside longer values.
const WINDOW: usize = 4;
/// Values with up to this many words are split at every boundary.
const WHOLE_SPLIT_MAX_WORDS: usize = 16;
/// Values with up to this many words give name pairs for the name + birth rule.
const NAME_LIKE_MAX_WORDS: usize = 6;
/// Single words up to this many characters are split at every character.
const MAX_SPLIT_WORD_CHARS: usize = 64;
/// Dates per entry for the name + birth rule.
const MAX_DATES: usize = 256;
/// Given-name-like × family-name-like values per entry. Every given value meets every
/// family value, so past this the work is quadratic in the entry (3 000 of each took
/// minutes); such an entry is unverifiable instead. Real entries have a handful.
const MAX_GIVEN_FAMILY_PAIRS: usize = 256;

const GIVEN_LIKE: &[&str] = &[
    "givenname",
    "given_name",
    "firstname",
    "first_name",
    "preferredgivenname",
    "name.givenname",
    "gn",
];
const FAMILY_LIKE: &[&str] = &[
    "sn",
    "surname",
    "familyname",
    "family_name",
    "lastname",
    "last_name",
    "preferredfamilyname",
    "name.familyname",
];

/// Is the attribute `name` (any ASCII case) one of `list` (lowercase), or does it end in
/// `.<one of them>`, or is its last dotted part one of the undotted ones?
///
/// Every dotted name in the lists ends in an undotted one of the same list
/// (`name.givenname`, `givenname`), so all three come down to: the last dotted part is
/// an undotted name of the list (test `attribute_classes`).
fn ends_with_any(name: &str, list: &[&str]) -> bool {
    last_part(name).is_some_and(|last| in_list(last, list))
}

/// `(ends_with_any(name, GIVEN_LIKE), ends_with_any(name, FAMILY_LIKE))` in one pass:
/// is the attribute given-name-like, family-name-like?
fn name_kind(name: &str) -> (bool, bool) {
    last_part(name).map_or((false, false), |last| {
        (in_list(last, GIVEN_LIKE), in_list(last, FAMILY_LIKE))
    })
}

/// The last dotted part of an attribute name, when it could be a name in the lists.
fn last_part(name: &str) -> Option<&str> {
    // Every name in the lists ends in `e` or `n` (test `attribute_classes`): most
    // attribute names are ruled out by their last byte.
    if !matches!(
        name.as_bytes().last().map(u8::to_ascii_lowercase),
        Some(b'e' | b'n')
    ) {
        return None;
    }
    // The last dotted part, found from the end byte by byte (names are short).
    let from = name
        .bytes()
        .rposition(|b| b == b'.')
        .map_or(0, |dot| dot + 1);
    let last = name.get(from..).unwrap_or(name);
    // No undotted name in the lists is shorter than 2 or longer than 19 bytes.
    (2..=19).contains(&last.len()).then_some(last)
}

/// Is `last` (a last dotted part) an undotted name of `list`, in any ASCII case?
fn in_list(last: &str, list: &[&str]) -> bool {
    list.iter()
        .any(|n| n.len() == last.len() && !n.contains('.') && last.eq_ignore_ascii_case(n))
}

/// The words of a value: runs of letters and combining marks. Digits part words, as
/// any other character does: no real name holds one (`validate_display_name`), and a
/// user name or mail address appends them to a name (`given.family2`, `gfamily12`).
fn words(value: &str) -> Vec<&str> {
    value
        .split(|c: char| !(c.is_alphabetic() || is_combining_mark(c)))
        .filter(|w| !w.is_empty())
        .collect()
}

/// A name pair, kept in zeroizing strings: it may be a real name.
struct Pair {
    given: Zeroizing<String>,
    family: Zeroizing<String>,
    attributes: Vec<usize>,
}

fn pair(given: &[&str], family: &[&str], attr: usize) -> Pair {
    Pair {
        given: Zeroizing::new(given.join(" ")),
        family: Zeroizing::new(family.join(" ")),
        attributes: vec![attr],
    }
}

/// Collects the name pairs of one value. `name_like` receives the pairs that also take
/// part in the name + birth rule.
fn value_pairs(attr: usize, ws: &[&str], all: &mut Vec<Pair>, name_like: &mut Vec<Pair>) {
    let n = ws.len();
    if (2..=WHOLE_SPLIT_MAX_WORDS).contains(&n) {
        for k in 1..n {
            let (g, f) = (ws.get(..k).unwrap_or(&[]), ws.get(k..).unwrap_or(&[]));
            all.push(pair(g, f, attr));
            all.push(pair(f, g, attr));
            if n <= NAME_LIKE_MAX_WORDS {
                name_like.push(pair(g, f, attr));
                name_like.push(pair(f, g, attr));
            }
        }
    }
    if n >= 2 {
        for i in 0..n {
            for g in 1..=WINDOW {
                for f in 1..=WINDOW {
                    let (Some(gw), Some(fw)) = (ws.get(i..i + g), ws.get(i + g..i + g + f)) else {
                        continue;
                    };
                    all.push(pair(gw, fw, attr));
                    all.push(pair(fw, gw, attr));
                }
            }
        }
    }
    for w in ws {
        let chars: Vec<(usize, char)> = w.char_indices().collect();
        if chars.len() < 2 || chars.len() > MAX_SPLIT_WORD_CHARS {
            continue;
        }
        for &(at, _) in chars.iter().skip(1) {
            let (g, f) = (w.get(..at).unwrap_or(""), w.get(at..).unwrap_or(""));
            all.push(pair(&[g], &[f], attr));
            if n == 1 {
                name_like.push(pair(&[g], &[f], attr));
            }
        }
    }
}

/// The initial + family pairs of a value of up to [`NAME_LIKE_MAX_WORDS`] words, for
/// the name + birth rule (the vault indexes the initial of the first name with the last
/// name and the birth date: [`fiktiv_vault::identity::initial_family_keys`]):
///
/// - every word, folded, cut after its first character (`aoberg`, `aoberg2@school.se`);
/// - every word that folds to one character with the run of up to [`WINDOW`] words
///   after it (`a.oberg@school.se`) and before it (`Öberg, Å.`).
fn initial_pairs(attr: usize, ws: &[&str], name_like: &mut Vec<Pair>) {
    if ws.len() > NAME_LIKE_MAX_WORDS {
        return;
    }
    for (i, w) in ws.iter().enumerate() {
        let folded = Zeroizing::new(normalize_name(w));
        let mut chars = folded.char_indices().skip(1);
        let Some((at, _)) = chars.next() else {
            if !folded.is_empty() {
                // One character: an initial beside a family name.
                for len in 1..=WINDOW {
                    if let Some(after) = ws.get(i + 1..i + 1 + len) {
                        name_like.push(pair(&[&folded], after, attr));
                    }
                    if let Some(before) = i.checked_sub(len).and_then(|from| ws.get(from..i)) {
                        name_like.push(pair(&[&folded], before, attr));
                    }
                }
            }
            continue;
        };
        let (g, f) = (
            folded.get(..at).unwrap_or(""),
            folded.get(at..).unwrap_or(""),
        );
        name_like.push(pair(&[g], &[f], attr));
    }
}

/// Matches the values of one entry. With `first_only`, stops at the first hit (the
/// guard); otherwise returns every hit, merged per rule (the scan).
///
/// A fast [`screen`] runs first; only an entry it cannot call clean goes through
/// [`match_entry_exact`], the definition of the rules.
pub(crate) fn match_entry<L: RealIndexLookup + ?Sized>(
    values: &[(&str, &str)],
    key: &BlindKey,
    lookup: &L,
    first_only: bool,
) -> Vec<Hit> {
    match_entry_memo(values, key, lookup, first_only, &mut Memo::new())
}

/// [`match_entry`] with a memo shared by the entries of one scan (same key, same lookup).
pub(crate) fn match_entry_memo<L: RealIndexLookup + ?Sized>(
    values: &[(&str, &str)],
    key: &BlindKey,
    lookup: &L,
    first_only: bool,
    memo: &mut Memo,
) -> Vec<Hit> {
    if screen(values, key, lookup, memo) {
        return Vec::new();
    }
    match_entry_exact(values, key, lookup, first_only)
}

/// The rules, exactly as the module docs state them: every hit with its attributes and
/// cases. Slow (every pair is normalised and indexed on its own); [`match_entry`] calls
/// it only for entries the screen flags.
pub(crate) fn match_entry_exact<L: RealIndexLookup + ?Sized>(
    values: &[(&str, &str)],
    key: &BlindKey,
    lookup: &L,
    first_only: bool,
) -> Vec<Hit> {
    let mut hits: Vec<Hit> = Vec::new();
    let mut record = |rule: Rule, attrs: &[usize], kind: Option<(IndexKind, &BlindIndex)>| {
        let names: BTreeSet<String> = attrs
            .iter()
            .filter_map(|&i| values.get(i).map(|(n, _)| n.to_string()))
            .collect();
        let cases: BTreeSet<CaseId> = kind
            .map(|(k, idx)| lookup.cases(k, idx).into_iter().collect())
            .unwrap_or_default();
        if let Some(h) = hits.iter_mut().find(|h| h.rule == rule) {
            h.attributes.extend(names);
            h.cases.extend(cases);
        } else {
            hits.push(Hit {
                rule,
                attributes: names,
                cases,
            });
        }
    };

    // Personal numbers, value by value.
    for (i, (_, v)) in values.iter().enumerate() {
        let scan = scan_number_candidates(v, DEFAULT_CANDIDATE_LIMIT);
        for c in &scan.candidates {
            let idx = key.index(IndexKind::PersonalNumber, c);
            if lookup.contains(IndexKind::PersonalNumber, &idx) {
                record(Rule::Number, &[i], Some((IndexKind::PersonalNumber, &idx)));
                if first_only {
                    return hits;
                }
            }
        }
        if scan.truncated {
            record(Rule::Unverifiable, &[i], None);
            if first_only {
                return hits;
            }
        }
    }

    // Name pairs.
    let mut all: Vec<Pair> = Vec::new();
    let mut name_like: Vec<Pair> = Vec::new();
    let mut given: Vec<usize> = Vec::new();
    let mut family: Vec<usize> = Vec::new();
    for (i, (n, v)) in values.iter().enumerate() {
        let ws = words(v);
        if ws.len() > MAX_WORDS_PER_VALUE {
            record(Rule::Unverifiable, &[i], None);
            if first_only {
                return hits;
            }
            continue;
        }
        value_pairs(i, &ws, &mut all, &mut name_like);
        initial_pairs(i, &ws, &mut name_like);
        if ends_with_any(n, GIVEN_LIKE) {
            given.push(i);
        }
        if ends_with_any(n, FAMILY_LIKE) {
            family.push(i);
        }
    }
    if given.len().saturating_mul(family.len()) > MAX_GIVEN_FAMILY_PAIRS {
        let attrs: Vec<usize> = given.iter().chain(&family).copied().collect();
        record(Rule::Unverifiable, &attrs, None);
        if first_only {
            return hits;
        }
        given.clear();
        family.clear();
    }
    for &g in &given {
        for &f in &family {
            let (Some((_, gv)), Some((_, fv))) = (values.get(g), values.get(f)) else {
                continue;
            };
            for (a, b) in [(g, f), (f, g)] {
                let (av, bv) = if a == g { (gv, fv) } else { (fv, gv) };
                let p = Pair {
                    given: Zeroizing::new(av.to_string()),
                    family: Zeroizing::new(bv.to_string()),
                    attributes: vec![a, b],
                };
                all.push(Pair {
                    given: p.given.clone(),
                    family: p.family.clone(),
                    attributes: p.attributes.clone(),
                });
                name_like.push(p);
            }
        }
    }
    #[cfg(test)]
    tests::CANDIDATES.with(|c| {
        c.borrow_mut().extend(
            all.iter()
                .map(|p| (p.given.to_string(), p.family.to_string())),
        )
    });
    for p in &all {
        let k = Zeroizing::new(full_name_key(&p.given, &p.family));
        let idx = key.index(IndexKind::FullName, &k);
        if lookup.contains(IndexKind::FullName, &idx) {
            // A real full name anywhere (inside a sentence of a note, in a mail
            // address with its domain) takes part in the name + birth rule too.
            name_like.push(Pair {
                given: p.given.clone(),
                family: p.family.clone(),
                attributes: p.attributes.clone(),
            });
            record(
                Rule::FullName,
                &p.attributes,
                Some((IndexKind::FullName, &idx)),
            );
            if first_only {
                return hits;
            }
        }
    }

    // Name + birth date: every name-like pair with every date in the entry.
    let mut dates: Vec<(NaiveDate, usize)> = Vec::new();
    for (i, (_, v)) in values.iter().enumerate() {
        let scan = scan_date_candidates(v, DEFAULT_DATE_LIMIT);
        if scan.truncated {
            record(Rule::Unverifiable, &[i], None);
            if first_only {
                return hits;
            }
        }
        for d in scan.dates {
            if dates.len() >= MAX_DATES {
                record(Rule::Unverifiable, &[i], None);
                if first_only {
                    return hits;
                }
                break;
            }
            dates.push((d, i));
        }
    }
    for p in &name_like {
        for &(d, di) in &dates {
            let k = Zeroizing::new(name_birth_key(&p.given, &p.family, d));
            let idx = key.index(IndexKind::NameBirth, &k);
            if lookup.contains(IndexKind::NameBirth, &idx) {
                let mut attrs = p.attributes.clone();
                attrs.push(di);
                record(Rule::NameBirth, &attrs, Some((IndexKind::NameBirth, &idx)));
                if first_only {
                    return hits;
                }
            }
        }
    }
    hits.sort_by_key(|h| h.rule);
    hits
}

mod screen;
#[cfg(test)]
mod tests;

use screen::screen;
pub(crate) use screen::{memo_for, repeated, shared_facts, shared_map, Learning, Memo};
