//! What one value contributes on its own: its words, the name pairs the name-part
//! filter lets through (indexed at once), its name-like pairs and its dates. Worked out
//! once per distinct value of a scan or batch where the memo knows it ([`super::Memo`]).

use fiktiv_vault::blind::IndexKind;
use fiktiv_vault::ids::{
    ascii_alphabetic_mask, scan_number_candidates_in_full, AsciiDigits, NumberScan,
    DEFAULT_CANDIDATE_LIMIT,
};
use fiktiv_vault::normalize::{normalize_name, scan_date_candidates_in_full, DEFAULT_DATE_LIMIT};
use fiktiv_vault::NamePartFilter;
use unicode_normalization::char::is_combining_mark;
use zeroize::Zeroizing;

use super::super::{
    RealIndexLookup, MAX_SPLIT_WORD_CHARS, MAX_WORDS_PER_VALUE, NAME_LIKE_MAX_WORDS,
    WHOLE_SPLIT_MAX_WORDS, WINDOW,
};
use super::{Checker, Facts, Secret};

/// Reused buffers for working out a value's facts. They hold words of target values,
/// so they are wiped when dropped ([`Secret`]).
#[derive(Default)]
pub(super) struct Scratch {
    /// The value's normalised words, one after another.
    text: Secret,
    /// Per word: its byte range in the value and in `text`.
    words: Vec<((usize, usize), (usize, usize))>,
    /// `runs[i * WINDOW + len - 1]`: the filter's bits for the run of `len` words from
    /// word `i`.
    runs: Vec<u8>,
    /// Per word: how long the runs from it may grow (see `word_pairs`).
    reach: Vec<usize>,
    /// The bits of words `..k` and of words `k..` (whole splits only).
    prefix: Vec<u8>,
    suffix: Vec<u8>,
    /// A `given|family` key being built.
    key: Secret,
}

/// Without a filter every half may be either part.
const ANY_PART: u8 = NamePartFilter::GIVEN | NamePartFilter::FAMILY;
const GIVEN: u8 = NamePartFilter::GIVEN;
const GIVEN_PREFIX: u8 = NamePartFilter::GIVEN_PREFIX;
const FAMILY: u8 = NamePartFilter::FAMILY;
/// A run may grow while it starts some real name part, given or family.
const ANY_PREFIX: u8 = NamePartFilter::GIVEN_PREFIX | NamePartFilter::FAMILY_PREFIX;

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

    /// Splits `v` into words (runs of letters and combining marks; digits part words) and
    /// normalises them; `false` past [`MAX_WORDS_PER_VALUE`] words.
    fn split(&mut self, v: &str) -> bool {
        self.text.0.clear();
        self.words.clear();
        if v.is_ascii() {
            // No ASCII character is a combining mark: the words are the runs of ASCII
            // letters.
            return match ascii_alphabetic_mask(v.as_bytes()) {
                Some(m) => self.split_masked(v, m),
                None => self.split_ascii_bytes(v),
            };
        }
        let mut start = None;
        // A separator after the end closes the last word.
        for (i, c) in v.char_indices().chain(std::iter::once((v.len(), ' '))) {
            let in_word = c.is_alphabetic() || is_combining_mark(c);
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

    /// The words of an ASCII value of up to 64 bytes: the runs of set bits of `m`, its
    /// letters ([`ascii_alphabetic_mask`]).
    fn split_masked(&mut self, v: &str, mut m: u64) -> bool {
        while m != 0 {
            let from = m.trailing_zeros() as usize;
            let to = from + (!(m >> from)).trailing_zeros() as usize;
            m &= u64::MAX.checked_shl(to as u32).unwrap_or(0);
            if !self.push_ascii_word(v, from, to) {
                return false;
            }
        }
        true
    }

    /// The words of any ASCII value, byte by byte.
    fn split_ascii_bytes(&mut self, v: &str) -> bool {
        let mut start = None;
        // A separator after the end closes the last word.
        for (i, b) in v.bytes().chain(std::iter::once(b' ')).enumerate() {
            match (b.is_ascii_alphabetic(), start) {
                (true, None) => start = Some(i),
                (false, Some(from)) => {
                    start = None;
                    if !self.push_ascii_word(v, from, i) {
                        return false;
                    }
                }
                _ => {}
            }
        }
        true
    }

    /// Adds the ASCII word `v[from..to]`, lowercased; `false` past
    /// [`MAX_WORDS_PER_VALUE`] words.
    fn push_ascii_word(&mut self, v: &str, from: usize, to: usize) -> bool {
        if self.words.len() == MAX_WORDS_PER_VALUE {
            return false;
        }
        let at = self.text.0.len();
        self.text.0.push_str(v.get(from..to).unwrap_or(""));
        if let Some(word) = self.text.0.get_mut(at..) {
            word.make_ascii_lowercase();
        }
        self.words.push(((from, to), (at, self.text.0.len())));
        true
    }
}

/// `normalize_name` of a word (letters and combining marks).
pub(in crate::matching) fn normalize_word(w: &str) -> Secret {
    if w.is_ascii() {
        Secret(w.to_ascii_lowercase())
    } else {
        Secret(normalize_name(w))
    }
}

/// Everything one value contributes on its own (see `match_entry_exact`). A pair the
/// name-part filter rules out is neither indexed nor kept for the name + birth rule:
/// that rule's key starts with the same `given|family`, so it cannot match either.
pub(super) fn value_facts<L: RealIndexLookup + ?Sized>(
    v: &str,
    checker: &mut Checker<'_, L>,
    sc: &mut Scratch,
) -> Facts {
    let flagged = Facts {
        flagged: true,
        ..Facts::default()
    };
    if !word_pairs(v, checker, sc) {
        return flagged;
    }
    // What the digits of an ASCII value allow, worked out once for both scans.
    let shape = AsciiDigits::of(v);
    let numbers = if shape.as_ref().is_none_or(AsciiDigits::may_hold_number) {
        scan_number_candidates_in_full(v, DEFAULT_CANDIDATE_LIMIT)
    } else {
        NumberScan::default()
    };
    if numbers.truncated {
        return flagged;
    }
    for c in &numbers.candidates {
        let idx = checker.key.index(IndexKind::PersonalNumber, c);
        if checker.lookup.contains(IndexKind::PersonalNumber, &idx) {
            return flagged;
        }
    }
    let mut facts = Facts {
        name_like: std::mem::take(&mut checker.name_like),
        ..Facts::default()
    };
    if !shape.as_ref().is_none_or(AsciiDigits::may_hold_date) {
        return facts;
    }
    let dates = scan_date_candidates_in_full(v, DEFAULT_DATE_LIMIT);
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
    if n <= NAME_LIKE_MAX_WORDS {
        initial_pairs(checker, sc);
    }
    let parts = checker.parts;
    if parts.is_some_and(|p| no_word_starts_a_name(p, v, sc)) {
        // No pair of this value has a real name part for a half: nothing to index and
        // no name-like pair, as the steps below would find at more cost.
        return true;
    }

    // The filter's bits for every run of up to WINDOW words. A run stops growing once
    // it starts no real name part; `reach[i]`: the longest run from word `i` that may
    // still grow past WINDOW words (WINDOW when it did not stop, else its length).
    //
    // A word that normalises to nothing (combining marks alone) leaves a run's text as
    // it was, so a run that stopped could still become a name part with it: in a value
    // with such a word no run stops.
    let stops = !sc.words.iter().any(|&(_, (from, to))| from == to);
    sc.runs.clear();
    sc.reach.clear();
    match parts {
        None => {
            sc.runs.resize(n * WINDOW, ANY_PART);
            sc.reach.resize(n, usize::MAX);
        }
        Some(p) => {
            sc.runs.resize(n * WINDOW, 0);
            for i in 0..n {
                let mut h = p.key().hasher();
                // Words `i..hashed` are written into `h`: only when a run's bits cannot
                // be told without its tag (most runs stop at their first word, told by
                // its first two letters).
                let mut hashed = i;
                let mut bytes = 0;
                let mut reach = usize::MAX;
                for len in 1..=WINDOW.min(n - i) {
                    let (_, (from, to)) = sc.words.get(i + len - 1).copied().unwrap_or_default();
                    bytes += to - from;
                    let run = sc.run(i, i + len);
                    let bits = p.known_bits(run).unwrap_or_else(|| {
                        for w in hashed..i + len {
                            h.write(sc.run(w, w + 1));
                        }
                        hashed = i + len;
                        p.bits(h.finish())
                    });
                    if let Some(b) = sc.runs.get_mut(i * WINDOW + len - 1) {
                        *b = bits & ANY_PART;
                    }
                    if stops && !p.may_extend(bits, bytes, ANY_PREFIX) {
                        reach = len;
                        break;
                    }
                }
                sc.reach.push(reach);
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
                // The prefix of k words is the run of k words from word 0; past WINDOW
                // words it is grown on while it may still be a name part.
                sc.prefix.push(0);
                let mut h = p.key().hasher();
                let mut bytes = 0;
                let mut grows = sc.reach.first() == Some(&usize::MAX);
                for k in 0..n {
                    let bits = if k < WINDOW {
                        sc.runs.get(k).copied().unwrap_or(0)
                    } else if grows {
                        let w = sc.run(k, k + 1);
                        if k == WINDOW {
                            h.write(sc.run(0, WINDOW));
                            bytes = sc.run(0, WINDOW).len();
                        }
                        h.write(w);
                        bytes += w.len();
                        let bits = p
                            .known_bits(sc.run(0, k + 1))
                            .unwrap_or_else(|| p.bits(h.finish()));
                        grows = !stops || p.may_extend(bits, bytes, ANY_PREFIX);
                        bits & ANY_PART
                    } else {
                        0
                    };
                    sc.prefix.push(bits);
                }
                for k in 0..=n {
                    // A suffix matters only beside a prefix that is some name part, and
                    // can be one only if its runs from word k may grow that far.
                    let len = n - k;
                    let reach = sc.reach.get(k).copied().unwrap_or(0);
                    let bits = if sc.prefix.get(k).copied().unwrap_or(0) == 0 || len == 0 {
                        0
                    } else if len <= WINDOW {
                        sc.runs.get(k * WINDOW + len - 1).copied().unwrap_or(0)
                    } else if reach <= WINDOW {
                        0
                    } else {
                        tag_bits(p, sc.run(k, n)) & ANY_PART
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
            let mut h = parts.map(|p| p.key().hasher());
            for at in ns + 1..ne {
                let g = sc.text.0.get(ns..at).unwrap_or("");
                let f = sc.text.0.get(at..ne).unwrap_or("");
                let mut last = false;
                if let (Some(p), Some(h)) = (parts, h.as_mut()) {
                    // The given half grows by one byte per split, while it starts some
                    // real given name; the family half is tagged only behind a given
                    // half that is one.
                    h.write(g.get(g.len() - 1..).unwrap_or(""));
                    let bits = p.known_bits(g).unwrap_or_else(|| p.bits(h.finish()));
                    last = !p.may_extend(bits, g.len(), GIVEN_PREFIX);
                    if bits & GIVEN == 0 || tag_bits(p, f) & FAMILY == 0 {
                        if last {
                            break;
                        }
                        continue;
                    }
                }
                if split_is_real(checker, &mut sc.key, g, f, n == 1) {
                    return false;
                }
                if last {
                    break;
                }
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
                    if !pair_may_be_real(tag_bits(p, &g.0), tag_bits(p, &f.0)) {
                        continue;
                    }
                }
                if split_is_real(checker, &mut sc.key, &g.0, &f.0, n == 1) {
                    return false;
                }
            }
        }
    }
    true
}

/// The initial + family pairs of a value of up to [`NAME_LIKE_MAX_WORDS`] words, as the
/// rules make them (`initial_pairs` of `match_entry_exact`): every word cut after its
/// first character, and every one-character word with the runs of up to [`WINDOW`]
/// words after and before it. Those whose family half may be a real family name are
/// kept as name-like pairs (for the name + birth rule only: an initial is no full name).
fn initial_pairs<L: RealIndexLookup + ?Sized>(checker: &mut Checker<'_, L>, sc: &Scratch) {
    let n = sc.words.len();
    let keep = |checker: &mut Checker<'_, L>, g: &str, f: &str| {
        if checker.part_bits(f) & FAMILY != 0 {
            let mut key = Secret(String::with_capacity(g.len() + f.len() + 1));
            key.0.push_str(g);
            key.0.push('|');
            key.0.push_str(f);
            checker.name_like.push(key);
        }
    };
    for j in 0..n {
        let word = sc.run(j, j + 1);
        match word.char_indices().nth(1) {
            Some((at, _)) => {
                let (g, f) = (word.get(..at).unwrap_or(""), word.get(at..).unwrap_or(""));
                keep(checker, g, f);
            }
            None if !word.is_empty() => {
                for len in 1..=WINDOW {
                    if j + 1 + len <= n {
                        keep(checker, word, sc.run(j + 1, j + 1 + len));
                    }
                    if len <= j {
                        keep(checker, word, sc.run(j - len, j));
                    }
                }
            }
            None => {}
        }
    }
}

/// Does every word of the value (split into `sc`) start no real name part, so that no
/// run of words and no split of a word can be one? Then every run's bits are 0 (a run
/// from a word starts with that word's first letters) and the split of every word
/// stops at its first or second letter, without a given name: what `word_pairs` would
/// find with its tables, told from one or two short lookups per word. `false` when
/// some word needs the full steps (it may start a name part, it normalises to nothing,
/// or it is not ASCII).
fn no_word_starts_a_name(p: &NamePartFilter, v: &str, sc: &Scratch) -> bool {
    sc.words.iter().all(|&((ws, we), (ns, ne))| {
        let ascii = v.get(ws..we).is_some_and(str::is_ascii);
        ascii && starts_no_name(p, sc.text.0.get(ns..ne).unwrap_or(""))
    })
}

/// For a normalised ASCII word: does it start no real name part, so that no run of
/// words from it and no split of it can be one ([`no_word_starts_a_name`])?
fn starts_no_name(p: &NamePartFilter, word: &str) -> bool {
    // Runs from this word: the run of one word has no bits and cannot grow into a name
    // part (a longer run starts with the same two letters, or the word is one or two
    // letters with no bits at all).
    let len = word.len();
    if len == 0 || p.known_bits(word) != Some(0) {
        return false;
    }
    // Splits of this word (given half first), as `word_pairs` makes them: the given
    // half grows from one letter to `len - 1` while it starts some real given name; a
    // given half that is one lets the pair through.
    if !(2..=MAX_SPLIT_WORD_CHARS).contains(&len) {
        return true;
    }
    let bits = |k: usize| {
        p.short_bits(word.get(..k).unwrap_or(""))
            .unwrap_or(ANY_PART | ANY_PREFIX)
    };
    let one = bits(1);
    if one & GIVEN != 0 {
        return false;
    }
    if len == 2 || !p.may_extend(one, 1, GIVEN_PREFIX) {
        return true;
    }
    // Two letters: they start no longer real name part (the run's answer above, for a
    // word of three letters or more), so the given half stops there.
    bits(2) & GIVEN == 0
}

/// The filter's bits for the normalised `text`, tagged unless they can be told without
/// ([`NamePartFilter::known_bits`]).
pub(super) fn tag_bits(p: &NamePartFilter, text: &str) -> u8 {
    p.known_bits(text)
        .unwrap_or_else(|| p.bits(p.key().tag(text)))
}

/// Indexes the split of one word `g|f` (built in `key`), and keeps it as a name-like
/// pair when `name_like` (the value is that one word). `true`: a real full name.
fn split_is_real<L: RealIndexLookup + ?Sized>(
    checker: &mut Checker<'_, L>,
    key: &mut Secret,
    g: &str,
    f: &str,
    name_like: bool,
) -> bool {
    key.0.clear();
    key.0.push_str(g);
    key.0.push('|');
    key.0.push_str(f);
    if checker.full_name(&key.0) {
        return true;
    }
    if name_like {
        checker.name_like.push(Secret(key.0.clone()));
    }
    false
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use fiktiv_vault::blind::BlindIndex;
    use fiktiv_vault::identity::full_name_key;
    use fiktiv_vault::normalize::name_birth_key;
    use fiktiv_vault::{KeyRing, RootKey};
    use std::collections::HashSet;

    /// The real identities `names`, each born on `birth`, as the vault indexes them:
    /// full name and name + birth date, with their name-part tags.
    struct Reals(HashSet<(IndexKind, BlindIndex)>, NamePartFilter);

    impl RealIndexLookup for Reals {
        fn contains(&self, kind: IndexKind, idx: &BlindIndex) -> bool {
            self.0.contains(&(kind, *idx))
        }

        fn name_parts(&self) -> Option<&NamePartFilter> {
            Some(&self.1)
        }
    }

    proptest::proptest! {
        /// A value whose facts are empty (with its shortcuts: no word that starts a
        /// real name part, digits that hold no number or date) brings the rules
        /// nothing: beside a real pupil's birth date, or beside a real name, the exact
        /// matcher (which takes no shortcut) finds no full name, no name + birth date
        /// and no personal number in it.
        #[test]
        fn a_value_with_no_facts_gives_the_rules_nothing(
            names in proptest::collection::vec(("[a-f]{1,4}", "[a-f]{1,4}"), 1..4),
            v in "(x=)?(2012-03-04|20120304|120304|2012\\.03\\.04|20120304-1236|120304-1236|201203041236|120304 1236)( x)?|[a-hA-H0-9 .,=@/+-]{0,64}|([a-h0-9]{1,3}[ .=,-]{1,2}){1,16}|[0-9]{4}-[0-9]{2}-[0-9]{2}|[a-h]{1,8}[0-9]{6,12}",
            // A value made of the names' own parts and their pieces, glued or apart,
            // so that real names and their starts are common.
            picks in proptest::collection::vec((0usize..64, 0usize..6, 0usize..4), 1..6),
        ) {
            let birth = chrono::NaiveDate::from_ymd_opt(2012, 3, 4).unwrap();
            let ring = KeyRing::new(RootKey::generate()).unwrap();
            let key = ring.blind().clone();
            let mut filter = NamePartFilter::new(ring.name_parts().clone());
            let mut births = NamePartFilter::new(ring.name_parts().clone());
            let (mut set, mut birth_set) = (HashSet::new(), HashSet::new());
            for (g, f) in &names {
                filter.add_names(g, f);
                births.add_names(g, f);
                set.insert((IndexKind::FullName, key.index(IndexKind::FullName, &full_name_key(g, f))));
                let nb = (IndexKind::NameBirth, key.index(IndexKind::NameBirth, &name_birth_key(g, f, birth)));
                set.insert(nb);
                birth_set.insert(nb);
                // The initial with the family name and the date, as the vault keeps it.
                for ini in fiktiv_vault::identity::initial_family_keys(g, f) {
                    let k = fiktiv_vault::identity::name_birth_of(&ini, birth);
                    let nb = (IndexKind::NameBirth, key.index(IndexKind::NameBirth, &k));
                    set.insert(nb);
                    birth_set.insert(nb);
                }
            }
            // A real personal number, found by the rules in any of its written forms.
            set.insert((IndexKind::PersonalNumber, key.index(IndexKind::PersonalNumber, "201203041236")));
            let lookup = Reals(set, filter);
            // Name + birth date only: a real name elsewhere in the entry, and the value's
            // date (if it had one) would complete it.
            let birth_only = Reals(birth_set, births);
            let mut pieces: Vec<String> = Vec::new();
            for (g, f) in &names {
                for part in [g, f] {
                    pieces.push(part.clone());
                    pieces.push(part.get(..1).unwrap_or("").to_string());
                    pieces.push(format!("{part}x"));
                    pieces.push(format!("g{part}"));
                }
            }
            pieces.extend(["gh", "x", "zz1", "Ab", "h"].map(String::from));
            let mut glued = String::new();
            for &(w, cut, sep) in &picks {
                let piece = &pieces[w % pieces.len()];
                glued.push_str(piece.get(..piece.len().min(cut + 1)).unwrap_or(piece));
                glued.push_str(["", " ", ".", "="][sep]);
            }
            // A real given and family name beside each other, or as one word.
            let (g, f) = &names[picks[0].0 % names.len()];
            let sep = ["", " ", ".", "="][picks[0].2];
            let real = if sep.is_empty() {
                format!("{g}{f}")
            } else {
                format!("{}{sep}{g}{sep}{f}", pieces[picks[0].1 % pieces.len()])
            };
            for v in [&v, &glued, &real] {
                let entry = [("description", v.as_str()), ("info", "2012-03-04")];
                let hits = crate::matching::match_entry_exact(&entry, &key, &lookup, false);
                let (g, f) = &names[0];
                let named = format!("{g} {f}");
                let with_name = [("description", v.as_str()), ("cn", named.as_str())];
                let dated = crate::matching::match_entry_exact(&with_name, &key, &birth_only, false);
                let mut checker = Checker::new(&key, &lookup, HashSet::new());
                let facts = value_facts(v, &mut checker, &mut Scratch::default());
                if !facts.contributes() {
                    proptest::prop_assert!(hits.is_empty(), "{:?}", v);
                    proptest::prop_assert!(dated.is_empty(), "{:?}", v);
                }
            }
            // The real pair is always found by the rules (the test can fail).
            let entry = [("description", real.as_str())];
            let found = crate::matching::match_entry_exact(&entry, &key, &lookup, false);
            proptest::prop_assert!(!found.is_empty(), "{:?}", real);
        }
    }

    proptest::proptest! {
        /// An ASCII value's words from its mask are those the byte loop finds.
        #[test]
        fn masked_words_are_the_bytes_words(
            v in "[a-zA-Z0-9 =,.@_-]{0,64}|([a-z0-9]{1,3}[ .=]{1,2}){1,16}",
        ) {
            proptest::prop_assume!(v.len() <= 64);
            let m = ascii_alphabetic_mask(v.as_bytes()).unwrap();
            let (mut a, mut b) = (Scratch::default(), Scratch::default());
            let (ra, rb) = (a.split_masked(&v, m), b.split_ascii_bytes(&v));
            proptest::prop_assert_eq!(ra, rb);
            proptest::prop_assert_eq!(&a.words, &b.words);
            proptest::prop_assert_eq!(&a.text.0, &b.text.0);
        }
    }
}
