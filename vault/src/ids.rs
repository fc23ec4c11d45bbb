//! Swedish personnummer / samordningsnummer and Norwegian fødselsnummer / D-/H-/synthetic numbers.
//!
//! A [`PersonalNumber`] is a **real** identifier of a protected child. If it reaches a log,
//! an error message, a directory or a learning platform, the child's real identity can be
//! found, and with it the address the family is hiding. So this module:
//!
//! - keeps the canonical digits in a zeroize-on-drop buffer and never implements
//!   `Display` or `Serialize` for them; `Debug` prints `PersonalNumber([redacted])`;
//! - never echoes any part of the input in an [`IdError`] (the messages are fixed text);
//! - rejects inputs over [`MAX_INPUT_BYTES`] before looking at them;
//! - takes `today` as a parameter (time is passed in, never read here).
//!
//! Fictitious numbers are made by [`make_se_number`] and [`make_no_synthetic_number`]. They
//! return plain `String`s on purpose: a fictitious number is not a real identifier.
//!
//! Leak scanning uses [`number_candidates`] / [`scan_number_candidates`]: every substring of
//! untrusted text that could be a personal number in any written form, as canonical digits.
//! The scanner is deliberately more generous than the parser (more separators, every offset
//! inside longer digit runs, both century readings): a false candidate costs one blind-index
//! lookup, a missed one can leave a child's real identity in a target unnoticed.
//!
//! The `personnummer` crate is not used: it reads the wall clock (`Utc::now`) instead of an
//! injected `today`, reads every short form as 19xx whatever the `-`/`+` separator says,
//! computes the samordningsnummer check digit over day−60 instead of the written digits,
//! accepts a missing check digit, and copies the digits into Strings it does not zeroize.

use std::fmt;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

mod digits;

pub use digits::{ascii_alphabetic_mask, AsciiDigits};

/// Inputs longer than this (in bytes) are refused before any other work is done.
pub const MAX_INPUT_BYTES: usize = 64;

/// The default cap on the number of candidates [`number_candidates`] returns.
pub const DEFAULT_CANDIDATE_LIMIT: usize = 1024;

/// Earliest birth year accepted for a Swedish number (the '+' form reaches back 199 years).
const SE_MIN_YEAR: i32 = 1800;

/// The country that issued a personal number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Country {
    /// Sweden (Skatteverket).
    Se,
    /// Norway (Skatteetaten).
    No,
}

/// What sort of number a [`PersonalNumber`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NumberKind {
    /// Swedish personnummer.
    SePersonnummer,
    /// Swedish samordningsnummer (day + 60).
    SeSamordningsnummer,
    /// Norwegian fødselsnummer.
    NoFodselsnummer,
    /// Norwegian D-number (first digit + 4).
    NoDNumber,
    /// Norwegian H-number (month + 40).
    NoHNumber,
    /// Norwegian synthetic test person (month + 80; may also carry the D-number day shift).
    NoSynthetic,
}

/// Why an identifier was refused. The messages are fixed text and never contain any part
/// of the input: an error may be logged, and the input may be a child's real number.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum IdError {
    /// Nothing but whitespace was given.
    #[error("the identifier is empty")]
    Empty,
    /// The input is longer than 64 bytes; it was not examined.
    #[error("the identifier is longer than 64 bytes")]
    TooLong,
    /// The input contains a character that never occurs in a personal number.
    #[error("the identifier contains characters that are not allowed")]
    BadCharacters,
    /// The digits and separators are not laid out as any accepted written form.
    #[error("the identifier does not have an accepted layout")]
    BadFormat,
    /// The check digit(s) do not match.
    #[error("the check digit does not match")]
    BadChecksum,
    /// The birth date encoded in the number is not a real calendar date.
    #[error("the birth date in the identifier is not a real calendar date")]
    ImpossibleDate,
    /// The birth date encoded in the number lies after today.
    #[error("the birth date in the identifier lies in the future")]
    InFuture,
    /// The Norwegian individual number belongs to no birth-year range for this year.
    #[error("the individual number does not fit any birth-year range")]
    UnknownCentury,
    /// A serial or individual number outside 0..=999, or a birth year this module cannot write.
    #[error("a serial number or birth year is out of the supported range")]
    OutOfRange,
    /// No valid check digits exist for this birth date and individual number.
    #[error("no valid check digits exist for this combination")]
    NoChecksumPossible,
}

/// A real, validated personal number.
///
/// Holds its canonical digits in a zeroize-on-drop buffer. Not `Serialize`, no `Display`;
/// `Debug` prints exactly `PersonalNumber([redacted])`.
#[derive(Clone)]
pub struct PersonalNumber {
    canonical: Zeroizing<String>,
    country: Country,
    kind: NumberKind,
    /// The real birth date as days from the common era, so that it is zeroized on drop too.
    birth_days: Zeroizing<i32>,
}

impl fmt::Debug for PersonalNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PersonalNumber([redacted])")
    }
}

impl PartialEq for PersonalNumber {
    fn eq(&self, other: &Self) -> bool {
        // The canonical digits determine country, kind and birth date.
        self.canonical
            .as_bytes()
            .ct_eq(other.canonical.as_bytes())
            .into()
    }
}

impl Eq for PersonalNumber {}

impl PersonalNumber {
    /// Parses a Swedish or Norwegian number, detecting the country from the layout:
    /// 11 digits (optionally a space after the sixth) is Norwegian, every other accepted
    /// layout is Swedish.
    pub fn parse(input: &str, today: NaiveDate) -> Result<Self, IdError> {
        let s = precheck(input)?;
        let country = if no_shape(s).is_some() {
            Country::No
        } else {
            Country::Se
        };
        parse_checked(country, s, today)
    }

    /// Parses a number that must be from `country`.
    pub fn parse_country(country: Country, input: &str, today: NaiveDate) -> Result<Self, IdError> {
        let s = precheck(input)?;
        parse_checked(country, s, today)
    }

    /// The issuing country.
    pub fn country(&self) -> Country {
        self.country
    }

    /// The kind of number.
    pub fn kind(&self) -> NumberKind {
        self.kind
    }

    /// The canonical digits: SE `YYYYMMDDNNNC` (12 digits), NO `DDMMYYIIICC` (11 digits).
    pub fn canonical(&self) -> &str {
        &self.canonical
    }

    /// The real birth date (day − 60 for samordningsnummer, first digit − 4 for D-numbers,
    /// month − 40 for H-numbers, month − 80 for synthetic numbers).
    pub fn birth_date(&self) -> NaiveDate {
        // `birth_days` is only ever set from a valid NaiveDate, so this cannot fall back.
        NaiveDate::from_num_days_from_ce_opt(*self.birth_days).unwrap_or(NaiveDate::MIN)
    }

    /// Every written form a person or system might use for this number.
    ///
    /// SE: `YYMMDD-NNNC`, `YYMMDD+NNNC`, `YYMMDDNNNC`, `YYYYMMDDNNNC`, `YYYYMMDD-NNNC`.
    /// Both short separators are given whatever the age: systems often write the wrong one.
    /// Only the separator matching the age (and, under 100, the bare 10 digits) parses back
    /// to this number. NO: `DDMMYYIIICC`, `DDMMYY IIICC`.
    pub fn written_forms(&self) -> Vec<Zeroizing<String>> {
        let c: &str = &self.canonical;
        match self.country {
            Country::Se => {
                let (Some(short), Some(long), Some(tail)) = (c.get(2..8), c.get(..8), c.get(8..))
                else {
                    return Vec::new();
                };
                vec![
                    Zeroizing::new(format!("{short}-{tail}")),
                    Zeroizing::new(format!("{short}+{tail}")),
                    Zeroizing::new(format!("{short}{tail}")),
                    Zeroizing::new(c.to_owned()),
                    Zeroizing::new(format!("{long}-{tail}")),
                ]
            }
            Country::No => {
                let (Some(head), Some(tail)) = (c.get(..6), c.get(6..)) else {
                    return Vec::new();
                };
                vec![
                    Zeroizing::new(c.to_owned()),
                    Zeroizing::new(format!("{head} {tail}")),
                ]
            }
        }
    }
}

/// Length cap, trimming and character check, in that order.
fn precheck(input: &str) -> Result<&str, IdError> {
    if input.len() > MAX_INPUT_BYTES {
        return Err(IdError::TooLong);
    }
    let s = input.trim();
    if s.is_empty() {
        return Err(IdError::Empty);
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_digit() || b == b'-' || b == b'+' || b == b' ')
    {
        return Err(IdError::BadCharacters);
    }
    Ok(s)
}

fn parse_checked(country: Country, s: &str, today: NaiveDate) -> Result<PersonalNumber, IdError> {
    match country {
        Country::Se => parse_se(s, today),
        Country::No => parse_no(s, today),
    }
}

/// Digit values of an all-ASCII-digit string.
fn digit_values(s: &str) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(s.bytes().map(|b| b.wrapping_sub(b'0')).collect())
}

fn all_digits(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit())
}

fn num2(d: &[u8], at: usize) -> u32 {
    let hi = d.get(at).copied().unwrap_or(0);
    let lo = d.get(at + 1).copied().unwrap_or(0);
    u32::from(hi) * 10 + u32::from(lo)
}

// ---------------------------------------------------------------------------------------
// Sweden
// ---------------------------------------------------------------------------------------

/// How a Swedish short form gives its century.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SeCentury {
    /// Four-digit year written out.
    Explicit,
    /// `-` or no separator: the person is under 100 at `today`.
    Under100,
    /// `+`: the person is 100 or older at `today`.
    Over100,
}

fn parse_se(s: &str, today: NaiveDate) -> Result<PersonalNumber, IdError> {
    let b = s.as_bytes();
    // `digits` holds YYYYMMDDNNNC or YYMMDDNNNC without separators.
    let (digits, century): (Zeroizing<String>, SeCentury) = match b.len() {
        12 if all_digits(s) => (Zeroizing::new(s.to_owned()), SeCentury::Explicit),
        13 if b.get(8) == Some(&b'-') => {
            let joined = Zeroizing::new(format!(
                "{}{}",
                s.get(..8).unwrap_or(""),
                s.get(9..).unwrap_or("")
            ));
            (joined, SeCentury::Explicit)
        }
        10 if all_digits(s) => (Zeroizing::new(s.to_owned()), SeCentury::Under100),
        11 if matches!(b.get(6), Some(b'-' | b'+')) => {
            let c = if b.get(6) == Some(&b'+') {
                SeCentury::Over100
            } else {
                SeCentury::Under100
            };
            let joined = Zeroizing::new(format!(
                "{}{}",
                s.get(..6).unwrap_or(""),
                s.get(7..).unwrap_or("")
            ));
            (joined, c)
        }
        _ => return Err(IdError::BadFormat),
    };
    if !all_digits(&digits) || !(digits.len() == 10 || digits.len() == 12) {
        return Err(IdError::BadFormat);
    }
    let d = digit_values(&digits);
    let off = d.len() - 10; // 0 or 2: start of YYMMDDNNNC
    let ten = d.get(off..).unwrap_or(&[]);
    if ten.len() != 10 || luhn(ten.get(..9).unwrap_or(&[])) != ten.get(9).copied() {
        return Err(IdError::BadChecksum);
    }
    let yy = num2(&d, off);
    let month = num2(&d, off + 2);
    let written_day = num2(&d, off + 4);
    let (day, samordning) = se_real_day(written_day).ok_or(IdError::ImpossibleDate)?;
    if !(1..=12).contains(&month) {
        return Err(IdError::ImpossibleDate);
    }
    let year = match century {
        SeCentury::Explicit => (num2(&d, 0) * 100 + yy) as i32,
        SeCentury::Under100 | SeCentury::Over100 => {
            let under = most_recent_year(yy, month, day, today);
            if century == SeCentury::Over100 {
                under - 100
            } else {
                under
            }
        }
    };
    if year < SE_MIN_YEAR {
        return Err(IdError::OutOfRange);
    }
    let birth = NaiveDate::from_ymd_opt(year, month, day).ok_or(IdError::ImpossibleDate)?;
    if birth > today {
        return Err(IdError::InFuture);
    }
    let canonical = Zeroizing::new(format!(
        "{:04}{}",
        year,
        digits.get(digits.len() - 8..).unwrap_or("")
    ));
    Ok(PersonalNumber {
        canonical,
        country: Country::Se,
        kind: if samordning {
            NumberKind::SeSamordningsnummer
        } else {
            NumberKind::SePersonnummer
        },
        birth_days: Zeroizing::new(birth.num_days_from_ce()),
    })
}

/// The written day to the real day, and whether it was a samordningsnummer (day + 60).
fn se_real_day(written: u32) -> Option<(u32, bool)> {
    match written {
        1..=31 => Some((written, false)),
        61..=91 => Some((written - 60, true)),
        _ => None,
    }
}

/// The latest year ending in `yy` whose (month, day) is not after `today`: the reading
/// under which the person is 0..=99 years old.
fn most_recent_year(yy: u32, month: u32, day: u32, today: NaiveDate) -> i32 {
    let ty = today.year();
    let mut y = ty - ty.rem_euclid(100) + yy as i32;
    if y > ty {
        y -= 100;
    }
    if y == ty && (month, day) > (today.month(), today.day()) {
        y -= 100;
    }
    y
}

/// Luhn check digit over digit values (the Swedish weights 2,1,2,1,… from the left).
fn luhn(digits: &[u8]) -> Option<u8> {
    if digits.len() != 9 || digits.iter().any(|&v| v > 9) {
        return None;
    }
    let sum: u32 = digits
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let p = u32::from(v) * if i % 2 == 0 { 2 } else { 1 };
            if p > 9 {
                p - 9
            } else {
                p
            }
        })
        .sum();
    Some(((10 - sum % 10) % 10) as u8)
}

/// The Swedish (Luhn) check digit over `YYMMDDNNN`. `None` unless exactly nine ASCII digits.
pub fn luhn_check_digit(nine_digits: &str) -> Option<u8> {
    if nine_digits.len() != 9 || !all_digits(nine_digits) {
        return None;
    }
    luhn(&digit_values(nine_digits))
}

/// Makes a canonical Swedish number `YYYYMMDDNNNC` for a fictitious person.
///
/// A fictitious Swedish number has the same shape as a real one and may coincide with a
/// real person's number; which serials are used is the central administrator's decision
/// under the routine, and the egress guard still checks every value against the vault.
pub fn make_se_number(birth: NaiveDate, serial: u16) -> Result<String, IdError> {
    if serial > 999 || !(SE_MIN_YEAR..=9999).contains(&birth.year()) {
        return Err(IdError::OutOfRange);
    }
    let nine = format!(
        "{:02}{:02}{:02}{:03}",
        birth.year() % 100,
        birth.month(),
        birth.day(),
        serial
    );
    let check = luhn_check_digit(&nine).ok_or(IdError::OutOfRange)?;
    Ok(format!("{:02}{}{}", birth.year() / 100, nine, check))
}

// ---------------------------------------------------------------------------------------
// Norway
// ---------------------------------------------------------------------------------------

/// The 11 digits of a Norwegian layout (`DDMMYYIIICC` or `DDMMYY IIICC`), if it is one.
fn no_shape(s: &str) -> Option<Zeroizing<String>> {
    let b = s.as_bytes();
    match b.len() {
        11 if all_digits(s) => Some(Zeroizing::new(s.to_owned())),
        12 if b.get(6) == Some(&b' ') => {
            let joined = Zeroizing::new(format!(
                "{}{}",
                s.get(..6).unwrap_or(""),
                s.get(7..).unwrap_or("")
            ));
            all_digits(&joined).then_some(joined)
        }
        _ => None,
    }
}

const NO_K1_WEIGHTS: [u32; 9] = [3, 7, 6, 1, 8, 9, 4, 5, 2];
const NO_K2_WEIGHTS: [u32; 10] = [5, 4, 3, 2, 7, 6, 5, 4, 3, 2];

fn mod11_digit(sum: u32) -> Option<u8> {
    match 11 - sum % 11 {
        11 => Some(0),
        10 => None,
        k => Some(k as u8),
    }
}

fn no_checks(d: &[u8]) -> Option<(u8, u8)> {
    if d.len() != 9 || d.iter().any(|&v| v > 9) {
        return None;
    }
    let s1: u32 = d
        .iter()
        .zip(NO_K1_WEIGHTS)
        .map(|(&v, w)| u32::from(v) * w)
        .sum();
    let k1 = mod11_digit(s1)?;
    let s2: u32 = d
        .iter()
        .chain(std::iter::once(&k1))
        .zip(NO_K2_WEIGHTS)
        .map(|(&v, w)| u32::from(v) * w)
        .sum();
    let k2 = mod11_digit(s2)?;
    Some((k1, k2))
}

/// The Norwegian mod-11 check digits (k1, k2) over `DDMMYYIII`. `None` unless exactly nine
/// ASCII digits, or when a check digit would be 10 (no valid number exists then).
pub fn no_check_digits(nine_digits: &str) -> Option<(u8, u8)> {
    if nine_digits.len() != 9 || !all_digits(nine_digits) {
        return None;
    }
    no_checks(&digit_values(nine_digits))
}

/// The full birth year from the individual number and two-digit year, by Skatteetaten's ranges.
fn no_year(individual: u32, yy: u32) -> Option<i32> {
    let yy = yy as i32;
    match individual {
        0..=499 => Some(1900 + yy),
        500..=999 if yy <= 39 => Some(2000 + yy),
        500..=749 if yy >= 54 => Some(1800 + yy),
        900..=999 if yy >= 40 => Some(1900 + yy),
        _ => None,
    }
}

/// Decoded date parts of a Norwegian number: (day, month, kind). Checks ranges, not the calendar.
fn no_decode(d: &[u8]) -> Result<(u32, u32, NumberKind), IdError> {
    let written_day = num2(d, 0);
    let written_month = num2(d, 2);
    let d_number = d.first().copied().unwrap_or(0) >= 4;
    let day = if d_number {
        written_day.wrapping_sub(40)
    } else {
        written_day
    };
    if !(1..=31).contains(&day) {
        return Err(IdError::ImpossibleDate);
    }
    let (month, kind) = match written_month {
        1..=12 => (
            written_month,
            if d_number {
                NumberKind::NoDNumber
            } else {
                NumberKind::NoFodselsnummer
            },
        ),
        41..=52 if !d_number => (written_month - 40, NumberKind::NoHNumber),
        41..=52 => return Err(IdError::BadFormat),
        81..=92 => (written_month - 80, NumberKind::NoSynthetic),
        _ => return Err(IdError::ImpossibleDate),
    };
    Ok((day, month, kind))
}

fn parse_no(s: &str, today: NaiveDate) -> Result<PersonalNumber, IdError> {
    let digits = no_shape(s).ok_or(IdError::BadFormat)?;
    let d = digit_values(&digits);
    let written = (d.get(9).copied(), d.get(10).copied());
    match no_checks(d.get(..9).unwrap_or(&[])) {
        Some((k1, k2)) if written == (Some(k1), Some(k2)) => {}
        _ => return Err(IdError::BadChecksum),
    }
    let (day, month, kind) = no_decode(&d)?;
    let yy = num2(&d, 4);
    let individual = num2(&d, 6) * 10 + u32::from(d.get(8).copied().unwrap_or(0));
    let year = no_year(individual, yy).ok_or(IdError::UnknownCentury)?;
    let birth = NaiveDate::from_ymd_opt(year, month, day).ok_or(IdError::ImpossibleDate)?;
    if birth > today {
        return Err(IdError::InFuture);
    }
    Ok(PersonalNumber {
        canonical: digits,
        country: Country::No,
        kind,
        birth_days: Zeroizing::new(birth.num_days_from_ce()),
    })
}

/// Makes a canonical Norwegian synthetic number (month + 80) for a fictitious person.
///
/// Month + 80 lies outside every range a real person is given, so the result can never be
/// a real fødselsnummer, D- or H-number. Errors: `OutOfRange` for an individual number over
/// 999, `UnknownCentury` when the individual number's range does not cover the birth year,
/// `NoChecksumPossible` when a check digit would be 10 (try another individual number).
pub fn make_no_synthetic_number(birth: NaiveDate, individual: u16) -> Result<String, IdError> {
    if individual > 999 {
        return Err(IdError::OutOfRange);
    }
    let year = birth.year();
    let yy = year.rem_euclid(100) as u32;
    if no_year(u32::from(individual), yy) != Some(year) {
        return Err(IdError::UnknownCentury);
    }
    let nine = format!(
        "{:02}{:02}{:02}{:03}",
        birth.day(),
        birth.month() + 80,
        yy,
        individual
    );
    let (k1, k2) = no_check_digits(&nine).ok_or(IdError::NoChecksumPossible)?;
    Ok(format!("{nine}{k1}{k2}"))
}

/// True when `canonical` is 11 ASCII digits whose month field is in the synthetic range
/// (81..=92). Such a number can never belong to a real person. Check digits are not checked.
pub fn is_synthetic_no(canonical: &str) -> bool {
    canonical.len() == 11
        && all_digits(canonical)
        && (81..=92).contains(&num2(&digit_values(canonical), 2))
}

// ---------------------------------------------------------------------------------------
// Leak scanning
// ---------------------------------------------------------------------------------------

/// The result of [`scan_number_candidates`]. `Debug` shows only the counts.
#[derive(Default)]
pub struct NumberScan {
    /// Distinct canonical candidates in order of first appearance.
    pub candidates: Vec<Zeroizing<String>>,
    /// True when the limit was reached and the rest of the text was NOT scanned.
    /// A leak scanner must then treat the text as unverified (fail closed).
    pub truncated: bool,
}

impl fmt::Debug for NumberScan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NumberScan")
            .field("candidates", &self.candidates.len())
            .field("truncated", &self.truncated)
            .finish()
    }
}

/// Token values of the scanner's normalised text: 0..=9 are digits.
pub(crate) const TOK_DASH: u8 = 10;
pub(crate) const TOK_PLUS: u8 = 11;
pub(crate) const TOK_SPACE: u8 = 12;
pub(crate) const TOK_DOT: u8 = 13;
pub(crate) const TOK_SLASH: u8 = 14;
pub(crate) const TOK_OTHER: u8 = 15;

/// Turns untrusted text into one token per character (see the `TOK_*` values), in a buffer
/// that is zeroized on drop. Invisible format characters (zero-width space/joiners, word
/// joiner, BOM, soft hyphen) are skipped, so they cannot split a number. Digits written in
/// compatibility forms (fullwidth, superscript, mathematical) count as digits.
pub(crate) fn tokenize(text: &str) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(text.len()));
    for c in text.chars() {
        let t = match c {
            '0'..='9' => c as u8 - b'0',
            '-' | '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{FE58}' | '\u{FE63}' | '\u{FF0D}' => {
                TOK_DASH
            }
            '+' | '\u{FE62}' | '\u{FF0B}' => TOK_PLUS,
            '.' | '\u{FF0E}' => TOK_DOT,
            '/' | '\u{FF0F}' => TOK_SLASH,
            '\u{00AD}' | '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}' => continue,
            c if c.is_whitespace() => TOK_SPACE,
            c if c.is_ascii() => TOK_OTHER,
            c => compat_digit(c).unwrap_or(TOK_OTHER),
        };
        out.push(t);
    }
    out
}

/// A non-ASCII character whose compatibility decomposition is a single ASCII digit.
fn compat_digit(c: char) -> Option<u8> {
    let mut found: Option<u8> = None;
    let mut count = 0usize;
    unicode_normalization::char::decompose_compatible(c, |d| {
        count += 1;
        if d.is_ascii_digit() {
            found = Some(d as u8 - b'0');
        }
    });
    if count == 1 {
        found
    } else {
        None
    }
}

/// Up to `n` digit tokens starting at `at`; fewer if the run ends.
fn digit_run(toks: &[u8], at: usize, n: usize) -> &[u8] {
    let end = toks.len().min(at.saturating_add(n));
    let slice = toks.get(at..end).unwrap_or(&[]);
    let len = slice.iter().take_while(|&&t| t <= 9).count();
    slice.get(..len).unwrap_or(&[])
}

/// A separator group of 1..=3 dash/plus/space tokens at `at`: (length, contains a plus).
fn number_separator(toks: &[u8], at: usize) -> Option<(usize, bool)> {
    let mut len = 0;
    let mut plus = false;
    while let Some(&t) = toks.get(at + len) {
        if !matches!(t, TOK_DASH | TOK_PLUS | TOK_SPACE) || len == 3 {
            break;
        }
        plus |= t == TOK_PLUS;
        len += 1;
    }
    (len > 0).then_some((len, plus))
}

/// Distinct canonical candidates, with the dedup keys kept in a zeroized sorted vector.
struct Collector {
    out: Vec<Zeroizing<String>>,
    seen: Zeroizing<Vec<u64>>,
    limit: usize,
    truncated: bool,
}

impl Collector {
    fn new(limit: usize) -> Self {
        Self {
            out: Vec::new(),
            seen: Zeroizing::new(Vec::new()),
            limit,
            truncated: false,
        }
    }

    fn full(&self) -> bool {
        self.truncated
    }

    fn push(&mut self, digits: &[u8]) {
        if self.truncated {
            return;
        }
        let mut key: u64 = digits.len() as u64;
        for &d in digits {
            key = key.wrapping_mul(10).wrapping_add(u64::from(d));
        }
        // Length prefix keeps 11- and 12-digit values apart.
        let key = key.wrapping_add((digits.len() as u64) << 56);
        match self.seen.binary_search(&key) {
            Ok(_) => {}
            Err(pos) => {
                if self.out.len() >= self.limit {
                    self.truncated = true;
                    return;
                }
                self.seen.insert(pos, key);
                let mut s = Zeroizing::new(String::with_capacity(digits.len()));
                for &d in digits {
                    s.push(char::from(b'0' + d));
                }
                self.out.push(s);
            }
        }
    }
}

/// Every substring of `text` that could be a Swedish or Norwegian personal number in any
/// written form, as distinct canonical candidates (SE 12 digits, NO 11 digits), capped at
/// [`DEFAULT_CANDIDATE_LIMIT`]. See [`scan_number_candidates`] to learn whether the cap was hit.
pub fn number_candidates(text: &str) -> Vec<Zeroizing<String>> {
    scan_number_candidates(text, DEFAULT_CANDIDATE_LIMIT).candidates
}

/// Like [`number_candidates`] with an explicit cap, reporting truncation.
///
/// Recognised at every position, also inside longer digit runs: 12 digits (SE), 11 digits
/// (NO), 10 digits (SE, both 19xx and 20xx), 8 digits + separator + 4 (SE), 6 digits +
/// separator + 4 (SE, 19xx and 20xx, and 18xx when the separator has a `+`), 6 digits +
/// separator + 5 (NO). A separator is 1..=3 of dash (any Unicode dash), plus or whitespace.
/// A candidate needs valid check digits and a plausible birth date; `today` is not
/// consulted. Work is linear in the length of `text`.
pub fn scan_number_candidates(text: &str, limit: usize) -> NumberScan {
    // Every form has at least 6 + 4 digits and starts with a run of 6 or more; in ASCII
    // text only ASCII digits are digits.
    if AsciiDigits::of(text).is_some_and(|d| !d.may_hold_number()) {
        return NumberScan::default();
    }
    scan_number_candidates_in_full(text, limit)
}

/// [`scan_number_candidates`] without its shortcut: for a caller that asked
/// [`AsciiDigits::may_hold_number`] itself.
pub fn scan_number_candidates_in_full(text: &str, limit: usize) -> NumberScan {
    let toks = tokenize(text);
    let mut col = Collector::new(limit);
    let mut buf = Zeroizing::new([0u8; 12]);
    for i in 0..toks.len() {
        if col.full() {
            break;
        }
        if toks.get(i).is_none_or(|&t| t > 9) {
            continue;
        }
        let run = digit_run(&toks, i, 12);
        if run.len() >= 12 {
            se_candidate_long(run.get(..12).unwrap_or(&[]), &mut col);
        }
        if run.len() >= 11 {
            no_candidate(run.get(..11).unwrap_or(&[]), &mut col);
        }
        if run.len() >= 10 {
            se_candidate_short(run.get(..10).unwrap_or(&[]), false, &mut col);
        }
        // Forms with a separator: 6 or 8 digits from here, then a separator group.
        for head_len in [6usize, 8] {
            if run.len() < head_len {
                continue;
            }
            let Some((sep_len, plus)) = number_separator(&toks, i + head_len) else {
                continue;
            };
            let tail = digit_run(&toks, i + head_len + sep_len, 5);
            let Some(head) = run.get(..head_len) else {
                continue;
            };
            if head_len == 8 && tail.len() >= 4 {
                buf[..8].copy_from_slice(head);
                buf[8..12].copy_from_slice(tail.get(..4).unwrap_or(&[0; 4]));
                se_candidate_long(&buf[..12], &mut col);
            }
            if head_len == 6 && tail.len() >= 4 {
                buf[..6].copy_from_slice(head);
                buf[6..10].copy_from_slice(tail.get(..4).unwrap_or(&[0; 4]));
                se_candidate_short(&buf[..10], plus, &mut col);
            }
            if head_len == 6 && tail.len() >= 5 {
                buf[..6].copy_from_slice(head);
                buf[6..11].copy_from_slice(tail.get(..5).unwrap_or(&[0; 5]));
                no_candidate(&buf[..11], &mut col);
            }
        }
    }
    NumberScan {
        candidates: col.out,
        truncated: col.truncated,
    }
}

/// A 12-digit SE candidate `YYYYMMDDNNNC`.
fn se_candidate_long(d: &[u8], col: &mut Collector) {
    let Some(ten) = d.get(2..12) else { return };
    if luhn(ten.get(..9).unwrap_or(&[])) != ten.get(9).copied() {
        return;
    }
    let year = (num2(d, 0) * 100 + num2(d, 2)) as i32;
    if year >= SE_MIN_YEAR && se_date_ok(year, num2(d, 4), num2(d, 6)) {
        col.push(d);
    }
}

/// A 10-digit SE candidate `YYMMDDNNNC`: pushes each plausible century reading.
fn se_candidate_short(d: &[u8], plus: bool, col: &mut Collector) {
    if d.len() != 10 || luhn(d.get(..9).unwrap_or(&[])) != d.get(9).copied() {
        return;
    }
    let yy = num2(d, 0);
    let centuries: &[u32] = if plus { &[18, 19, 20] } else { &[19, 20] };
    let mut full = Zeroizing::new([0u8; 12]);
    full[2..12].copy_from_slice(d);
    for &c in centuries {
        if se_date_ok((c * 100 + yy) as i32, num2(d, 2), num2(d, 4)) {
            full[0] = (c / 10) as u8;
            full[1] = (c % 10) as u8;
            col.push(&full[..]);
        }
    }
}

fn se_date_ok(year: i32, month: u32, written_day: u32) -> bool {
    se_real_day(written_day)
        .is_some_and(|(day, _)| NaiveDate::from_ymd_opt(year, month, day).is_some())
}

/// An 11-digit NO candidate: valid check digits and a day/month that exist in a leap year
/// (a superset of what the parser accepts, whatever the century).
fn no_candidate(d: &[u8], col: &mut Collector) {
    if d.len() != 11 {
        return;
    }
    if no_checks(d.get(..9).unwrap_or(&[])) != Some((d[9], d[10])) {
        return;
    }
    if let Ok((day, month, _)) = no_decode(d) {
        if NaiveDate::from_ymd_opt(2000, month, day).is_some() {
            col.push(d);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    proptest::proptest! {
        /// The shortcut for text with too few digits changes no result: text made of
        /// digits, separators and letters, with fewer than 10 digits or not.
        #[test]
        fn the_few_digits_shortcut_changes_nothing(
            text in "[0-9 +./-]{0,24}|[0-9a-z .+-]{0,40}|[0-9]{6}[-+ ][0-9]{3,5}x?|[0-9a-f]{1,8}(-[0-9a-f]{1,4}){0,4}|x?[0-9]{5,12}[-+ ]?[0-9]{0,5}|[0-9a-f]{0,3}[0-9]{5,9}[-+ \t\n.]{1,4}[0-9]{0,6}[a-f]?|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|([0-9]{1,11}[a-z+ -]){1,4}",
            limit in 0usize..4,
        ) {
            let quick = scan_number_candidates(&text, limit);
            let full = scan_number_candidates_in_full(&text, limit);
            proptest::prop_assert_eq!(quick.truncated, full.truncated);
            let q: Vec<&str> = quick.candidates.iter().map(|c| c.as_str()).collect();
            let f: Vec<&str> = full.candidates.iter().map(|c| c.as_str()).collect();
            proptest::prop_assert_eq!(q, f);
        }
    }

    #[test]
    fn tokenizer_skips_invisible_and_maps_fullwidth() {
        let t = tokenize("１2\u{200B}3-");
        assert_eq!(&t[..], &[1, 2, 3, TOK_DASH]);
    }

    #[test]
    fn most_recent_year_rule() {
        let today = day(2026, 6, 1);
        assert_eq!(most_recent_year(26, 6, 1, today), 2026);
        assert_eq!(most_recent_year(26, 6, 2, today), 1926);
        assert_eq!(most_recent_year(27, 1, 1, today), 1927);
        assert_eq!(most_recent_year(0, 1, 1, today), 2000);
    }

    #[test]
    fn collector_dedups_and_truncates() {
        let mut c = Collector::new(1);
        c.push(&[1, 2, 3]);
        c.push(&[1, 2, 3]);
        assert!(!c.truncated);
        c.push(&[1, 2, 4]);
        assert!(c.truncated);
        assert_eq!(c.out.len(), 1);
    }
}
