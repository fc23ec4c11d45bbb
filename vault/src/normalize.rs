//! Normalisation of names, birth dates and identifiers before blind indexing.
//!
//! Blind indexes only match when the same person gives the same bytes, so names are folded
//! hard before indexing: Unicode NFKD, combining marks dropped, full Unicode case folding
//! (upper- then lowercase), a few letters that have no decomposition mapped to ASCII
//! (ø→o, æ→ae, ß→ss, đ/ð→d, ł→l, þ→th, œ→oe, ħ→h, ŧ→t), and everything that is not a
//! letter or digit removed.
//!
//! **Why diacritics are folded.** A target system may strip or mangle them: an LDAP
//! attribute restricted to ASCII, a CSV roster that went through the wrong code page, a
//! platform that turns "Åsa-Britt Öberg" into "Asa-Britt Oberg" or "asabrittoberg". Leak
//! detection must still recognise the real child there. The cost is false positives
//! ("Öberg" and "Oberg" index the same), which is the safe direction: a false positive is
//! looked at by a person, a false negative leaves a protected child findable.
//!
//! [`date_candidates`] finds dates in untrusted text for the same reason, in all the
//! layouts Swedish, Norwegian and (US-made) platform exports use.

use chrono::NaiveDate;
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;
use zeroize::{Zeroize as _, Zeroizing};

use crate::ids::{tokenize, TOK_DASH, TOK_DOT, TOK_SLASH};

/// The default cap on the number of dates [`date_candidates`] returns.
pub const DEFAULT_DATE_LIMIT: usize = 1024;

/// Earliest and latest years a date candidate may have.
const MIN_YEAR: i32 = 1800;
const MAX_YEAR: i32 = 2199;

/// Folds a name for blind indexing; see the module docs. "Åsa-Britt  Öberg",
/// "asa britt oberg" and "ÅSA BRITT ÖBERG" (NFC or NFD) all give "asabrittoberg".
///
/// The result is derived from a real name: keep it in a `Zeroizing` where it is stored.
pub fn normalize_name(s: &str) -> String {
    if s.is_ascii() {
        // What the general path does to ASCII: letters lowercased, digits kept, the
        // rest dropped (no ASCII character decomposes or is a combining mark).
        return s
            .bytes()
            .filter(u8::is_ascii_alphanumeric)
            .map(|b| char::from(b.to_ascii_lowercase()))
            .collect();
    }
    normalize_name_in_full(s)
}

/// [`normalize_name`] without the shortcut for ASCII.
fn normalize_name_in_full(s: &str) -> String {
    let mut folded = Zeroizing::new(String::with_capacity(s.len()));
    for c in s.nfkd() {
        for upper in c.to_uppercase() {
            for lower in upper.to_lowercase() {
                push_folded(lower, &mut folded);
            }
        }
    }
    folded
        .nfkd()
        .filter(|&c| !is_combining_mark(c) && c.is_alphanumeric())
        .collect()
}

/// Letters without a Unicode decomposition, spelled the way an ASCII-only system would.
fn push_folded(c: char, out: &mut String) {
    match c {
        'ø' => out.push('o'),
        'æ' => out.push_str("ae"),
        'œ' => out.push_str("oe"),
        'ß' => out.push_str("ss"),
        'đ' | 'ð' => out.push('d'),
        'ł' => out.push('l'),
        'þ' => out.push_str("th"),
        'ħ' => out.push('h'),
        'ŧ' => out.push('t'),
        'ς' => out.push('σ'),
        c => out.push(c),
    }
}

/// How many spellings [`name_spellings`] gives at most: diacritics stripped, and
/// transliterated.
pub const MAX_SPELLINGS: usize = 2;

/// The folded spellings an ASCII-only system makes of one name, each as
/// [`normalize_name`] folds it, distinct, the stripped one first:
///
/// - diacritics stripped (`Åsa Öberg` → `asaoberg`), which [`normalize_name`] does;
/// - transliterated, as Norwegian systems, Feide user names and many Swedish platforms
///   write them: `å→aa`, `ä→ae`, `ö→oe`, `ø→oe`, `æ→ae`, `ü→ue`
///   (`Åsa Øberg` → `aasaoeberg`).
///
/// A name with none of those letters has one spelling. The results are derived from a
/// real name: keep them in a `Zeroizing` where they are stored.
pub fn name_spellings(name: &str) -> Vec<String> {
    let stripped = normalize_name(name);
    let mut out = vec![stripped];
    if let Some(t) = transliterate(name) {
        let t = Zeroizing::new(t);
        let folded = normalize_name(&t);
        if out.first() != Some(&folded) {
            out.push(folded);
        }
    }
    out
}

/// `name` with the letters an ASCII-only system writes as two letters so written
/// (`å→aa`, `ä→ae`, `ö→oe`, `ø→oe`, `æ→ae`, `ü→ue`, either case, composed or not);
/// `None` when it has none of them.
fn transliterate(name: &str) -> Option<String> {
    if name.is_ascii() {
        return None;
    }
    let mut out = String::with_capacity(name.len() + 8);
    let mut changed = false;
    for c in name.nfc() {
        let two = match c {
            'å' | 'Å' => "aa",
            'ä' | 'Ä' | 'æ' | 'Æ' => "ae",
            'ö' | 'Ö' | 'ø' | 'Ø' => "oe",
            'ü' | 'Ü' => "ue",
            c => {
                out.push(c);
                continue;
            }
        };
        changed = true;
        out.push_str(two);
    }
    if changed {
        Some(out)
    } else {
        out.zeroize();
        None
    }
}

/// `normalize_name(first) | normalize_name(last) | YYYYMMDD`, the name-and-birth-date
/// blind-index key. Derived from a real identity: keep it in a `Zeroizing`.
pub fn name_birth_key(first: &str, last: &str, birth: NaiveDate) -> String {
    format!(
        "{}|{}|{}",
        normalize_name(first),
        normalize_name(last),
        birth.format("%Y%m%d")
    )
}

/// The result of [`scan_date_candidates`]. `Debug` shows only the counts: a date found in
/// a target may be a protected child's birth date.
#[derive(Clone, PartialEq, Eq)]
pub struct DateScan {
    /// Distinct dates in order of first appearance.
    pub dates: Vec<NaiveDate>,
    /// True when the limit was reached and the rest of the text was NOT scanned.
    /// A leak scanner must then treat the text as unverified (fail closed).
    pub truncated: bool,
}

impl std::fmt::Debug for DateScan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DateScan")
            .field("dates", &self.dates.len())
            .field("truncated", &self.truncated)
            .finish()
    }
}

/// Dates written in untrusted text, distinct, capped at [`DEFAULT_DATE_LIMIT`].
/// See [`scan_date_candidates`] for the layouts and to learn whether the cap was hit.
pub fn date_candidates(text: &str) -> Vec<NaiveDate> {
    scan_date_candidates(text, DEFAULT_DATE_LIMIT).dates
}

/// Like [`date_candidates`] with an explicit cap, reporting truncation.
///
/// Layouts, with `-`, `/` or `.` as the separator (the same one twice):
/// `2012-03-04`, `04.03.2012`, `4.3.2012`, `4.3.12` (19xx and 20xx), and for `/` also the
/// US reading `03/04/2012` = 4 March. Contiguous digits, at every position inside longer
/// digit runs: `20120304` (YYYYMMDD), `04032012` (DDMMYYYY), `120304` (YYMMDD) and `040312`
/// (DDMMYY), six-digit forms in both 19xx and 20xx. Only real calendar dates in the years
/// 1800..=2199 are returned. Work is linear in the length of `text`.
pub fn scan_date_candidates(text: &str, limit: usize) -> DateScan {
    if crate::ids::AsciiDigits::of(text).is_some_and(|d| !d.may_hold_date()) {
        return DateScan {
            dates: Vec::new(),
            truncated: false,
        };
    }
    scan_date_candidates_in_full(text, limit)
}

/// [`scan_date_candidates`] without the shortcut for text that cannot hold a date
/// ([`crate::ids::AsciiDigits::may_hold_date`]).
pub fn scan_date_candidates_in_full(text: &str, limit: usize) -> DateScan {
    let toks = tokenize(text);
    let mut col = DateCollector {
        dates: Vec::new(),
        seen: Zeroizing::new(Vec::new()),
        limit,
        truncated: false,
    };
    for i in 0..toks.len() {
        if col.truncated {
            break;
        }
        if toks.get(i).is_none_or(|&t| t > 9) {
            continue;
        }
        // At most 8 digits are ever needed from one position; bounding the look-ahead
        // keeps the scan linear inside long digit runs.
        let run = run_at(&toks, i, 8);
        // Contiguous forms at this position.
        if let Some(w) = run.get(..8) {
            let (a, b, c, d) = (num(&w[..2]), num(&w[2..4]), num(&w[4..6]), num(&w[6..8]));
            col.push(a * 100 + b, c, d); // YYYYMMDD
            col.push(c * 100 + d, b, a); // DDMMYYYY
        }
        if let Some(w) = run.get(..6) {
            let (a, b, c) = (num(&w[..2]), num(&w[2..4]), num(&w[4..6]));
            for century in [1900, 2000] {
                col.push(century + a, b, c); // YYMMDD
                col.push(century + c, b, a); // DDMMYY
            }
        }
        // Separated forms start at the beginning of a digit run.
        let run_start = i == 0 || toks.get(i - 1).is_some_and(|&t| t > 9);
        if run_start {
            separated(&toks, i, run, &mut col);
        }
    }
    DateScan {
        dates: col.dates,
        truncated: col.truncated,
    }
}

/// `A sep B sep C` where A starts at `i` and is the digit run `first`.
fn separated(toks: &[u8], i: usize, first: &[u8], col: &mut DateCollector) {
    let Some(&sep) = toks.get(i + first.len()) else {
        return;
    };
    if !matches!(sep, TOK_DASH | TOK_DOT | TOK_SLASH) {
        return;
    }
    let j = i + first.len() + 1;
    let second = run_at(toks, j, 3);
    if second.is_empty() || second.len() > 2 || toks.get(j + second.len()) != Some(&sep) {
        return;
    }
    let third = run_at(toks, j + second.len() + 1, 5);
    let (a, b, c) = (num(first), num(second), num(third));
    match (first.len(), third.len()) {
        (4, 1..=2) => col.push(a, b, c),
        (1..=2, 4) => {
            col.push(c, b, a);
            if sep == TOK_SLASH {
                col.push(c, a, b);
            }
        }
        (1..=2, 2) => {
            for century in [1900, 2000] {
                col.push(century + c, b, a);
                if sep == TOK_SLASH {
                    col.push(century + c, a, b);
                }
            }
        }
        _ => {}
    }
}

/// The digit run starting at `at`, cut at `max` digits (empty if `at` is not a digit).
fn run_at(toks: &[u8], at: usize, max: usize) -> &[u8] {
    let rest = toks.get(at..).unwrap_or(&[]);
    let len = rest.iter().take(max).take_while(|&&t| t <= 9).count();
    rest.get(..len).unwrap_or(&[])
}

/// The decimal value of at most a few digit tokens.
fn num(d: &[u8]) -> u32 {
    d.iter()
        .take(4)
        .fold(0u32, |acc, &v| acc * 10 + u32::from(v))
}

struct DateCollector {
    dates: Vec<NaiveDate>,
    seen: Zeroizing<Vec<u32>>,
    limit: usize,
    truncated: bool,
}

impl DateCollector {
    fn push(&mut self, year: u32, month: u32, day: u32) {
        if self.truncated {
            return;
        }
        let Ok(y) = i32::try_from(year) else { return };
        if !(MIN_YEAR..=MAX_YEAR).contains(&y) {
            return;
        }
        let Some(date) = NaiveDate::from_ymd_opt(y, month, day) else {
            return;
        };
        let key = year * 10_000 + month * 100 + day;
        if let Err(pos) = self.seen.binary_search(&key) {
            if self.dates.len() >= self.limit {
                self.truncated = true;
                return;
            }
            self.seen.insert(pos, key);
            self.dates.push(date);
        }
    }
}

/// Why a display name was refused. Messages never contain the input.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum NameError {
    /// Nothing but whitespace.
    #[error("the name is empty")]
    Empty,
    /// More than 64 characters after trimming.
    #[error("the name is longer than 64 characters")]
    TooLong,
    /// A control character (line break, tab, escape, …).
    #[error("the name contains a control character")]
    ControlCharacter,
    /// A character other than letters, combining marks, space, hyphen, apostrophe, period.
    #[error("the name contains a character that is not allowed in names")]
    DisallowedCharacter,
    /// Only punctuation, no letter.
    #[error("the name contains no letter")]
    NoLetter,
}

/// The most characters a display name may have after trimming.
pub const MAX_NAME_CHARS: usize = 64;

/// Checks a name entered by staff: 1..=64 characters after trimming; only letters,
/// combining marks, space, hyphen (`-`, U+2010), apostrophe (`'`, U+2019) and period; at
/// least one letter. Control and invisible format characters (bidi overrides, zero-width
/// joiners) are refused.
pub fn validate_display_name(s: &str) -> Result<(), NameError> {
    let t = s.trim();
    if t.is_empty() {
        return Err(NameError::Empty);
    }
    if t.chars().count() > MAX_NAME_CHARS {
        return Err(NameError::TooLong);
    }
    if t.chars().any(char::is_control) {
        return Err(NameError::ControlCharacter);
    }
    let allowed = |c: char| {
        c.is_alphabetic()
            || is_combining_mark(c)
            || matches!(c, ' ' | '-' | '\u{2010}' | '\'' | '\u{2019}' | '.')
    };
    if !t.chars().all(allowed) {
        return Err(NameError::DisallowedCharacter);
    }
    if !t.chars().any(char::is_alphabetic) {
        return Err(NameError::NoLetter);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    /// The ASCII shortcut gives what the general path gives, for every ASCII character
    /// and for mixed text.
    #[test]
    fn the_ascii_shortcut_changes_nothing() {
        for b in 0u8..128 {
            let c = char::from(b).to_string();
            assert_eq!(normalize_name(&c), normalize_name_in_full(&c), "{b:#x}");
        }
        for s in [
            "Åsa-Britt",
            "Ella  Fiktiv-Provsson",
            "O'Brien 3rd",
            "ÉLLA",
            "",
        ] {
            let ascii: String = s.chars().filter(char::is_ascii).collect();
            assert_eq!(normalize_name(&ascii), normalize_name_in_full(&ascii));
        }
    }

    proptest::proptest! {
        #[test]
        fn the_ascii_shortcut_changes_nothing_on_any_ascii(s in "[\\x00-\\x7f]{0,40}") {
            proptest::prop_assert_eq!(normalize_name(&s), normalize_name_in_full(&s));
        }

        /// The shortcut for text with too few digits changes no result.
        #[test]
        fn the_few_digits_shortcut_changes_nothing(
            text in "[0-9 ./-]{0,16}|[0-9a-z ./-]{0,30}|[0-9]{1,2}[./-][0-9]{1,2}[./-][0-9]{2,4}|[0-9a-f]{1,8}(-[0-9a-f]{1,4}){0,4}|[0-9a-f./-]{0,24}|x?[0-9]{4,9}x?|[a-f]?[0-9]{2}[01][0-9][0-9]{2,4}[a-f]?|(19|20)[0-9]{2}(0[0-9]|1[0-3])[0-3][0-9]|[0-3][0-9](0[0-9]|1[0-3])(19|20)?[0-9]{2}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
            limit in 0usize..3,
        ) {
            proptest::prop_assert_eq!(
                scan_date_candidates(&text, limit),
                scan_date_candidates_in_full(&text, limit)
            );
        }
    }

    /// Folding every single code point twice gives the same as once.
    #[test]
    fn normalize_name_idempotent_on_every_code_point() {
        let mut bad = Vec::new();
        for cp in 0..=0x10FFFFu32 {
            let Some(c) = char::from_u32(cp) else {
                continue;
            };
            let once = normalize_name(&c.to_string());
            if normalize_name(&once) != once {
                bad.push(cp);
            }
        }
        assert!(
            bad.is_empty(),
            "not idempotent for {:x?}",
            &bad[..bad.len().min(20)]
        );
    }

    #[test]
    fn spellings_strip_and_transliterate() {
        assert_eq!(name_spellings("Åsa-Britt"), ["asabritt", "aasabritt"]);
        assert_eq!(name_spellings("Öberg"), ["oberg", "oeberg"]);
        assert_eq!(name_spellings("Bjørnstad"), ["bjornstad", "bjoernstad"]);
        assert_eq!(name_spellings("Ærø"), ["aero", "aeroe"]);
        assert_eq!(name_spellings("Müller"), ["muller", "mueller"]);
        assert_eq!(name_spellings("Ängel"), ["angel", "aengel"]);
        // Composed or decomposed, any case: the same spellings.
        assert_eq!(name_spellings("A\u{30a}SA"), name_spellings("åsa"));
        // Nothing to transliterate: one spelling.
        assert_eq!(name_spellings("Anna"), ["anna"]);
        assert_eq!(name_spellings("Émile"), ["emile"]);
        assert_eq!(name_spellings("Aasa"), ["aasa"]);
    }

    proptest::proptest! {
        /// The first spelling is always `normalize_name`; there are at most
        /// `MAX_SPELLINGS`, all distinct, each a fixed point of `normalize_name`.
        #[test]
        fn spellings_are_folded_and_distinct(s in "[a-zA-ZåäöøæüÅÄÖØÆÜéÉ' -]{0,24}") {
            let sp = name_spellings(&s);
            proptest::prop_assert_eq!(&sp[0], &normalize_name(&s));
            proptest::prop_assert!(sp.len() <= MAX_SPELLINGS);
            if sp.len() == 2 {
                proptest::prop_assert_ne!(&sp[0], &sp[1]);
            }
            for x in &sp {
                proptest::prop_assert_eq!(&normalize_name(x), x);
            }
        }
    }

    #[test]
    fn examples() {
        assert_eq!(normalize_name("Åsa-Britt  Öberg"), "asabrittoberg");
        assert_eq!(normalize_name("Søren Ærø"), "sorenaero");
        assert_eq!(normalize_name("STRAẞE"), "strasse");
        assert_eq!(normalize_name("Łukasz Đorđević"), "lukaszdordevic");
        assert_eq!(normalize_name("ΟΔΥΣΣΕΥΣ"), normalize_name("οδυσσευς"));
        assert_eq!(normalize_name("O'Brien\u{202E}"), "obrien");
    }
}
