#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Property and example tests for `fiktiv_vault::ids`.
//!
//! Valid numbers are generated here with check-digit code written independently of the
//! crate, so a wrong weight or range in the crate shows up as a failure, not as agreement.

use chrono::{Datelike, Duration, NaiveDate};
use fiktiv_vault::ids::{
    is_synthetic_no, luhn_check_digit, make_no_synthetic_number, make_se_number, no_check_digits,
    number_candidates, scan_number_candidates, Country, IdError, NumberKind, PersonalNumber,
};
use proptest::prelude::*;

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

const TODAY: (i32, u32, u32) = (2026, 6, 15);

fn today() -> NaiveDate {
    date(TODAY.0, TODAY.1, TODAY.2)
}

// ---------------------------------------------------------------------------------------
// Independent reference implementations
// ---------------------------------------------------------------------------------------

fn ref_luhn(nine: &str) -> u32 {
    let sum: u32 = nine
        .chars()
        .enumerate()
        .map(|(i, c)| {
            let v = c.to_digit(10).unwrap() * if i % 2 == 0 { 2 } else { 1 };
            v / 10 + v % 10
        })
        .sum();
    (10 - sum % 10) % 10
}

fn ref_no_checks(nine: &str) -> Option<(u32, u32)> {
    let d: Vec<u32> = nine.chars().map(|c| c.to_digit(10).unwrap()).collect();
    let w1 = [3, 7, 6, 1, 8, 9, 4, 5, 2];
    let w2 = [5, 4, 3, 2, 7, 6, 5, 4, 3, 2];
    let k1 = (11 - d.iter().zip(w1).map(|(a, b)| a * b).sum::<u32>() % 11) % 11;
    if k1 == 10 {
        return None;
    }
    let k2 = (11
        - d.iter()
            .chain(std::iter::once(&k1))
            .zip(w2)
            .map(|(a, b)| a * b)
            .sum::<u32>()
            % 11)
        % 11;
    if k2 == 10 {
        return None;
    }
    Some((k1, k2))
}

/// The individual-number ranges for a Norwegian birth year.
fn ref_no_ranges(year: i32) -> Vec<std::ops::RangeInclusive<u16>> {
    match year {
        1854..=1899 => vec![500..=749],
        1900..=1939 => vec![0..=499],
        1940..=1999 => vec![0..=499, 900..=999],
        2000..=2039 => vec![500..=999],
        _ => vec![],
    }
}

fn age(birth: NaiveDate, today: NaiveDate) -> i32 {
    today.year()
        - birth.year()
        - i32::from((today.month(), today.day()) < (birth.month(), birth.day()))
}

/// Canonical Swedish number, day + 60 when `samordning`.
fn ref_se(birth: NaiveDate, serial: u16, samordning: bool) -> String {
    let day = birth.day() + if samordning { 60 } else { 0 };
    let nine = format!(
        "{:02}{:02}{:02}{:03}",
        birth.year() % 100,
        birth.month(),
        day,
        serial
    );
    format!("{}{}{}", birth.year() / 100, nine, ref_luhn(&nine))
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum NoVariant {
    Plain,
    D,
    H,
    Synthetic,
    DSynthetic,
}

fn ref_no(birth: NaiveDate, individual: u16, v: NoVariant) -> Option<String> {
    let day = birth.day()
        + if matches!(v, NoVariant::D | NoVariant::DSynthetic) {
            40
        } else {
            0
        };
    let month = birth.month()
        + match v {
            NoVariant::H => 40,
            NoVariant::Synthetic | NoVariant::DSynthetic => 80,
            _ => 0,
        };
    let nine = format!(
        "{:02}{:02}{:02}{:03}",
        day,
        month,
        birth.year() % 100,
        individual
    );
    let (k1, k2) = ref_no_checks(&nine)?;
    Some(format!("{nine}{k1}{k2}"))
}

fn no_kind(v: NoVariant) -> NumberKind {
    match v {
        NoVariant::Plain => NumberKind::NoFodselsnummer,
        NoVariant::D => NumberKind::NoDNumber,
        NoVariant::H => NumberKind::NoHNumber,
        NoVariant::Synthetic | NoVariant::DSynthetic => NumberKind::NoSynthetic,
    }
}

// ---------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------

/// (today, birth): today in 2000..2100, birth 0..=199 years before and not before 1800.
fn today_and_birth() -> impl Strategy<Value = (NaiveDate, NaiveDate)> {
    (0i64..36_500, 0i64..(199 * 365 + 48)).prop_map(|(t, back)| {
        let today = date(2000, 1, 1) + Duration::days(t);
        let mut birth = today - Duration::days(back);
        if birth.year() < 1800 {
            birth = date(1800, 1, 1);
        }
        (today, birth)
    })
}

fn se_case() -> impl Strategy<Value = (NaiveDate, NaiveDate, u16, bool)> {
    (today_and_birth(), 0u16..1000, any::<bool>()).prop_map(|((t, b), s, c)| (t, b, s, c))
}

fn no_variant() -> impl Strategy<Value = NoVariant> {
    prop_oneof![
        Just(NoVariant::Plain),
        Just(NoVariant::D),
        Just(NoVariant::H),
        Just(NoVariant::Synthetic),
        Just(NoVariant::DSynthetic),
    ]
}

/// (today, birth, individual, variant, canonical) for a valid Norwegian number.
fn no_case() -> impl Strategy<Value = (NaiveDate, NaiveDate, u16, NoVariant, String)> {
    (0i64..67_000, 0i64..30_000, 0usize..1000, no_variant()).prop_filter_map(
        "no valid check digits",
        |(b, ahead, pick, v)| {
            // birth in 1854-01-01 ..= 2039-12-31
            let birth = date(1854, 1, 1) + Duration::days(b);
            if birth.year() > 2039 {
                return None;
            }
            let today = birth + Duration::days(ahead);
            let ranges = ref_no_ranges(birth.year());
            let all: Vec<u16> = ranges.into_iter().flatten().collect();
            let individual = all[pick % all.len()];
            let canonical = ref_no(birth, individual, v)?;
            Some((today, birth, individual, v, canonical))
        },
    )
}

/// Random surrounding text: anything printable, including digits and separators.
fn noise() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,24}",
        "[0-9 +\\-./a-zA-Z]{0,24}",
        Just(String::new()),
    ]
}

/// Four-digit windows of every ASCII digit run of length >= 4 in `s`.
fn digit_windows(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    for run in s.split(|c: char| !c.is_ascii_digit()) {
        if run.len() >= 4 {
            for i in 0..=run.len() - 4 {
                out.push(run[i..i + 4].to_string());
            }
        }
    }
    out
}

fn assert_no_echo(input: &str, err: &IdError) {
    let shown = format!("{err} {err:?}");
    for w in digit_windows(input) {
        assert!(!shown.contains(&w), "error text echoes input digits");
    }
}

fn found(text: &str, canonical: &str) -> bool {
    number_candidates(text)
        .iter()
        .any(|c| c.as_str() == canonical)
}

// ---------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Swedish: every written form parses back (the short forms only with the separator
    /// that matches the age), and the scanner finds every form inside random text.
    #[test]
    fn se_written_forms_round_trip((today, birth, serial, samordning) in se_case(),
                                   pre in noise(), post in noise()) {
        let canonical = ref_se(birth, serial, samordning);
        let pn = PersonalNumber::parse(&canonical, today).unwrap();
        prop_assert_eq!(pn.canonical(), canonical.as_str());
        prop_assert_eq!(pn.country(), Country::Se);
        prop_assert_eq!(pn.birth_date(), birth);
        prop_assert_eq!(pn.kind(), if samordning {
            NumberKind::SeSamordningsnummer
        } else {
            NumberKind::SePersonnummer
        });

        let short = &canonical[2..8];
        let tail = &canonical[8..];
        let expected = vec![
            format!("{short}-{tail}"),
            format!("{short}+{tail}"),
            format!("{short}{tail}"),
            canonical.clone(),
            format!("{}-{tail}", &canonical[..8]),
        ];
        let forms: Vec<String> = pn.written_forms().iter().map(|f| f.to_string()).collect();
        prop_assert_eq!(&forms, &expected);

        let old = age(birth, today) >= 100;
        for (idx, form) in forms.iter().enumerate() {
            // 0: YYMMDD-NNNC, 1: YYMMDD+NNNC, 2: YYMMDDNNNC, 3: YYYYMMDDNNNC, 4: YYYYMMDD-NNNC
            let must_round_trip = match idx {
                0 | 2 => !old,
                1 => old && age(birth, today) < 200,
                _ => true,
            };
            if must_round_trip {
                let back = PersonalNumber::parse(&format!("  {form}\t"), today).unwrap();
                prop_assert_eq!(back.canonical(), canonical.as_str());
                prop_assert_eq!(back.birth_date(), birth);
                prop_assert!(back == pn);
                let back = PersonalNumber::parse_country(Country::Se, form, today).unwrap();
                prop_assert_eq!(back.canonical(), canonical.as_str());
                prop_assert!(PersonalNumber::parse_country(Country::No, form, today).is_err());
            } else if let Ok(other) = PersonalNumber::parse(form, today) {
                // The separator that does not match the age names another century.
                prop_assert!(other != pn);
            }
            // The scanner reads short forms as 19xx and 20xx (and 18xx after a '+').
            let century = birth.year() / 100;
            let scannable = form.len() >= 12
                || century == 19 || century == 20
                || (century == 18 && form.contains('+'));
            if scannable {
                let text = format!("{pre}{form}{post}");
                prop_assert!(found(&text, &canonical), "scanner missed a written form");
            }
        }
    }

    /// Norwegian: fødselsnummer, D, H, synthetic and D+synthetic numbers round-trip.
    #[test]
    fn no_written_forms_round_trip((today, birth, _ind, v, canonical) in no_case(),
                                   pre in noise(), post in noise()) {
        let pn = PersonalNumber::parse(&canonical, today).unwrap();
        prop_assert_eq!(pn.canonical(), canonical.as_str());
        prop_assert_eq!(pn.country(), Country::No);
        prop_assert_eq!(pn.kind(), no_kind(v));
        prop_assert_eq!(pn.birth_date(), birth);
        prop_assert_eq!(is_synthetic_no(pn.canonical()),
                        matches!(v, NoVariant::Synthetic | NoVariant::DSynthetic));

        let forms: Vec<String> = pn.written_forms().iter().map(|f| f.to_string()).collect();
        prop_assert_eq!(&forms, &vec![
            canonical.clone(),
            format!("{} {}", &canonical[..6], &canonical[6..]),
        ]);
        for form in &forms {
            let back = PersonalNumber::parse(&format!("\n{form} "), today).unwrap();
            prop_assert!(back == pn);
            prop_assert_eq!(back.birth_date(), birth);
            let back = PersonalNumber::parse_country(Country::No, form, today).unwrap();
            prop_assert_eq!(back.canonical(), canonical.as_str());
            prop_assert!(PersonalNumber::parse_country(Country::Se, form, today).is_err());
            let text = format!("{pre}{form}{post}");
            prop_assert!(found(&text, &canonical), "scanner missed a written form");
        }

        // The day before the birth date the number is refused as lying in the future.
        let eve = birth - Duration::days(1);
        prop_assert_eq!(PersonalNumber::parse(&canonical, eve), Err(IdError::InFuture));
    }

    /// Changing one digit of the YYMMDDNNNC part of a Swedish number always fails; changing
    /// a century digit fails or names a different number.
    #[test]
    fn se_single_digit_change_fails((today, birth, serial, samordning) in se_case(),
                                    pos in 0usize..12, delta in 1u8..10) {
        let canonical = ref_se(birth, serial, samordning);
        let mut bytes = canonical.clone().into_bytes();
        bytes[pos] = b'0' + (bytes[pos] - b'0' + delta) % 10;
        let changed = String::from_utf8(bytes).unwrap();
        match PersonalNumber::parse(&changed, today) {
            Err(e) => assert_no_echo(&changed, &e),
            Ok(pn) => {
                prop_assert!(pos < 2, "a changed digit after the century was accepted");
                prop_assert_ne!(pn.canonical(), canonical.as_str());
            }
        }
        // The same change in a 10-digit written form always fails.
        if pos >= 2 {
            let short = &changed[2..];
            prop_assert!(PersonalNumber::parse(short, today).is_err());
        }
    }

    /// Changing any one digit of a Norwegian number always fails.
    #[test]
    fn no_single_digit_change_fails((today, _b, _i, _v, canonical) in no_case(),
                                    pos in 0usize..11, delta in 1u8..10) {
        let mut bytes = canonical.clone().into_bytes();
        bytes[pos] = b'0' + (bytes[pos] - b'0' + delta) % 10;
        let changed = String::from_utf8(bytes).unwrap();
        let r = PersonalNumber::parse(&changed, today);
        prop_assert!(r.is_err(), "a changed digit was accepted");
        assert_no_echo(&changed, &r.unwrap_err());
    }

    /// Arbitrary input never panics, and errors never show four input digits in a row.
    #[test]
    fn parse_never_panics_nor_echoes(s in prop_oneof![
        any::<String>(),
        "[0-9 +\\-]{0,20}",
        "\\s{0,3}[0-9]{6,8}[-+ ]?[0-9]{4,5}\\s{0,3}",
        "[0-9]{60,70}",
    ], country in prop_oneof![Just(None), Just(Some(Country::Se)), Just(Some(Country::No))]) {
        let r = match country {
            None => PersonalNumber::parse(&s, today()),
            Some(c) => PersonalNumber::parse_country(c, &s, today()),
        };
        match r {
            Err(e) => assert_no_echo(&s, &e),
            Ok(pn) => {
                // Whatever parsed re-parses from its own canonical form.
                let again = PersonalNumber::parse_country(pn.country(), pn.canonical(), today()).unwrap();
                prop_assert!(again == pn);
                prop_assert_eq!(format!("{pn:?}"), "PersonalNumber([redacted])");
            }
        }
        let _ = number_candidates(&s);
    }

    /// Fictitious Swedish numbers parse, as the right kind, to the given birth date.
    #[test]
    fn make_se_number_parses((today, birth) in today_and_birth(), serial in 0u16..1000) {
        let s = make_se_number(birth, serial).unwrap();
        prop_assert_eq!(&s, &ref_se(birth, serial, false));
        let pn = PersonalNumber::parse(&s, today).unwrap();
        prop_assert_eq!(pn.kind(), NumberKind::SePersonnummer);
        prop_assert_eq!(pn.birth_date(), birth);
        prop_assert!(!is_synthetic_no(&s));
        prop_assert_eq!(luhn_check_digit(&s[2..11]), Some(ref_luhn(&s[2..11]) as u8));
    }

    #[test]
    fn make_se_number_refuses_big_serials(serial in 1000u16..) {
        prop_assert_eq!(make_se_number(date(2012, 3, 4), serial), Err(IdError::OutOfRange));
    }

    /// Fictitious Norwegian numbers: Ok exactly when the individual number fits the year and
    /// check digits exist; then they parse as synthetic with the given birth date.
    #[test]
    fn make_no_synthetic_parses(b in 0i64..67_000, individual in 0u16..1000) {
        let birth = date(1854, 1, 1) + Duration::days(b);
        prop_assume!(birth.year() <= 2039);
        let fits = ref_no_ranges(birth.year()).iter().any(|r| r.contains(&individual));
        let expected = if fits { ref_no(birth, individual, NoVariant::Synthetic) } else { None };
        match make_no_synthetic_number(birth, individual) {
            Ok(s) => {
                prop_assert_eq!(Some(s.clone()), expected);
                let pn = PersonalNumber::parse(&s, birth).unwrap();
                prop_assert_eq!(pn.kind(), NumberKind::NoSynthetic);
                prop_assert_eq!(pn.birth_date(), birth);
                prop_assert!(is_synthetic_no(&s));
                prop_assert!(is_synthetic_no(pn.canonical()));
            }
            Err(IdError::UnknownCentury) => prop_assert!(!fits),
            Err(IdError::NoChecksumPossible) => prop_assert!(fits && expected.is_none()),
            Err(e) => prop_assert!(false, "unexpected error {e:?}"),
        }
    }

    /// The NO check-digit helper agrees with the reference; None exactly when a digit is 10.
    #[test]
    fn no_check_digits_matches_reference(nine in "[0-9]{9}") {
        prop_assert_eq!(
            no_check_digits(&nine),
            ref_no_checks(&nine).map(|(a, b)| (a as u8, b as u8))
        );
        prop_assert_eq!(luhn_check_digit(&nine), Some(ref_luhn(&nine) as u8));
    }

    /// Real Norwegian kinds are never flagged synthetic.
    #[test]
    fn is_synthetic_only_for_month_plus_80(s in "[0-9]{11}") {
        let month: u32 = s[2..4].parse().unwrap();
        prop_assert_eq!(is_synthetic_no(&s), (81..=92).contains(&month));
    }

    /// The scanner caps its output and reports it.
    #[test]
    fn scanner_caps(n in 1usize..40) {
        // 50 distinct valid numbers, one per line.
        let text: String = (0..50u16)
            .map(|i| ref_se(date(1990, 1, 1), i, false) + "\n")
            .collect();
        let scan = scan_number_candidates(&text, n);
        prop_assert!(scan.candidates.len() <= n);
        prop_assert!(scan.truncated);
    }
}

// ---------------------------------------------------------------------------------------
// Examples: public test numbers and hand-computed ones
// ---------------------------------------------------------------------------------------

fn parse(s: &str) -> Result<PersonalNumber, IdError> {
    PersonalNumber::parse(s, today())
}

#[test]
fn skatteverket_test_number_all_forms() {
    let pn = parse("19121212-1212").unwrap();
    assert_eq!(pn.canonical(), "191212121212");
    assert_eq!(pn.birth_date(), date(1912, 12, 12));
    assert_eq!(pn.kind(), NumberKind::SePersonnummer);
    assert_eq!(parse("191212121212").unwrap(), pn);
    assert_eq!(parse("121212+1212").unwrap(), pn);
    // '-' and no separator: under 100, so 2012.
    assert_eq!(parse("121212-1212").unwrap().canonical(), "201212121212");
    assert_eq!(parse("1212121212").unwrap().canonical(), "201212121212");
    assert_eq!(luhn_check_digit("121212121"), Some(2));
}

#[test]
fn well_known_swedish_examples() {
    assert_eq!(
        parse("811228-9874").unwrap().birth_date(),
        date(1981, 12, 28)
    );
    assert_eq!(
        parse("640823-3234").unwrap().birth_date(),
        date(1964, 8, 23)
    );
    let s = parse("701063-2391").unwrap();
    assert_eq!(s.kind(), NumberKind::SeSamordningsnummer);
    assert_eq!(s.canonical(), "197010632391");
    assert_eq!(s.birth_date(), date(1970, 10, 3));
    // 2000 is a leap year, 1900 and 2001 are not.
    assert_eq!(
        parse("000229-1235").unwrap().birth_date(),
        date(2000, 2, 29)
    );
    assert_eq!(parse("000229+1235").unwrap_err(), IdError::ImpossibleDate);
    assert_eq!(parse("010229-1234").unwrap_err(), IdError::ImpossibleDate);
}

#[test]
fn invalid_swedish_examples() {
    assert_eq!(parse("19121212-1213").unwrap_err(), IdError::BadChecksum);
    assert_eq!(parse("121212-1213").unwrap_err(), IdError::BadChecksum);
    assert_eq!(parse("19121212+1212").unwrap_err(), IdError::BadFormat);
    assert_eq!(parse("1212121-212").unwrap_err(), IdError::BadFormat);
    assert_eq!(parse("121212--1212").unwrap_err(), IdError::BadFormat);
    assert_eq!(parse("121212 1212").unwrap_err(), IdError::BadFormat);
    assert_eq!(parse("12121212l2").unwrap_err(), IdError::BadCharacters);
    assert_eq!(
        parse("１２１２１２-１２１２").unwrap_err(),
        IdError::BadCharacters
    );
    assert_eq!(parse("").unwrap_err(), IdError::Empty);
    assert_eq!(parse(" \t\n").unwrap_err(), IdError::Empty);
    // Length is checked before trimming or anything else.
    assert_eq!(parse(&" ".repeat(65)).unwrap_err(), IdError::TooLong);
    assert_eq!(parse(&"1".repeat(65)).unwrap_err(), IdError::TooLong);
    // Month 13, day 32, samordning day 60 and 92.
    for nine in ["121312121", "121232121", "121260121", "121292121"] {
        let s = format!("19{nine}{}", ref_luhn(nine));
        assert_eq!(parse(&s).unwrap_err(), IdError::ImpossibleDate, "{nine}");
    }
    // A valid number born after today.
    let future = ref_se(date(2026, 6, 16), 123, false);
    assert_eq!(parse(&future).unwrap_err(), IdError::InFuture);
    assert!(parse(&ref_se(date(2026, 6, 15), 123, false)).is_ok());
    // Too early to be a living person's explicit year.
    let old = format!("17{}", &ref_se(date(1912, 12, 12), 121, false)[2..]);
    assert_eq!(parse(&old).unwrap_err(), IdError::OutOfRange);
}

#[test]
fn norwegian_examples() {
    let cases = [
        ("01010100131", NumberKind::NoFodselsnummer, date(1901, 1, 1)),
        (
            "15010712480",
            NumberKind::NoFodselsnummer,
            date(1907, 1, 15),
        ),
        (
            "01129945008",
            NumberKind::NoFodselsnummer,
            date(1999, 12, 1),
        ),
        (
            "29020050088",
            NumberKind::NoFodselsnummer,
            date(2000, 2, 29),
        ),
        ("55010712393", NumberKind::NoDNumber, date(1907, 1, 15)),
        ("45129995061", NumberKind::NoDNumber, date(1999, 12, 5)),
        ("15480712312", NumberKind::NoHNumber, date(1907, 8, 15)),
        ("15870712305", NumberKind::NoSynthetic, date(1907, 7, 15)),
        ("01875460036", NumberKind::NoSynthetic, date(1854, 7, 1)),
    ];
    for (s, kind, birth) in cases {
        let pn = parse(s).unwrap();
        assert_eq!(
            (pn.kind(), pn.birth_date(), pn.country()),
            (kind, birth, Country::No),
            "{s}"
        );
        assert_eq!(parse(&format!("{} {}", &s[..6], &s[6..])).unwrap(), pn);
        assert_eq!(is_synthetic_no(s), kind == NumberKind::NoSynthetic);
    }
    assert_eq!(no_check_digits("150107124"), Some((8, 0)));
    assert_eq!(no_check_digits("150107123"), None);
    assert_eq!(no_check_digits("15010712"), None);
    assert_eq!(no_check_digits("15010712x"), None);
    assert_eq!(no_check_digits("158707128"), None);
    assert_eq!(
        make_no_synthetic_number(date(1907, 7, 15), 128),
        Err(IdError::NoChecksumPossible)
    );
    assert_eq!(
        make_no_synthetic_number(date(1907, 7, 15), 123).unwrap(),
        "15870712305"
    );
    assert_eq!(
        make_no_synthetic_number(date(1907, 7, 15), 623),
        Err(IdError::UnknownCentury)
    );
    assert_eq!(
        make_no_synthetic_number(date(1907, 7, 15), 1000),
        Err(IdError::OutOfRange)
    );
}

#[test]
fn invalid_norwegian_examples() {
    assert_eq!(parse("01010100132").unwrap_err(), IdError::BadChecksum);
    assert_eq!(parse("010101 00131").unwrap().canonical(), "01010100131");
    assert_eq!(parse("0101010 0131").unwrap_err(), IdError::BadFormat);
    assert_eq!(parse("010101  00131").unwrap_err(), IdError::BadFormat);
    assert_eq!(parse("010101-00131").unwrap_err(), IdError::BadFormat);
    // Individual numbers 750..=899 with year 40..=99 belong to no range.
    let mut tried = 0;
    for ind in 750..900 {
        let nine = format!("010145{ind}");
        if let Some((k1, k2)) = ref_no_checks(&nine) {
            assert_eq!(
                parse(&format!("{nine}{k1}{k2}")).unwrap_err(),
                IdError::UnknownCentury
            );
            tried += 1;
        }
    }
    assert!(tried > 100);
    // 29 February 1900 does not exist (individual 100 -> 1900).
    let nine = "290200100";
    let (k1, k2) = ref_no_checks(nine).unwrap();
    assert_eq!(
        parse(&format!("{nine}{k1}{k2}")).unwrap_err(),
        IdError::ImpossibleDate
    );
    // D-number and H-number at once is not a thing.
    let nine = "554107123";
    if let Some((k1, k2)) = ref_no_checks(nine) {
        assert!(parse(&format!("{nine}{k1}{k2}")).is_err());
    }
    // Future: born 2030 (individual 500..999 with year 30).
    let s = ref_no(date(2030, 1, 1), 501, NoVariant::Plain)
        .or_else(|| ref_no(date(2030, 1, 1), 502, NoVariant::Plain))
        .unwrap();
    assert_eq!(parse(&s).unwrap_err(), IdError::InFuture);
}

#[test]
fn debug_and_errors_never_show_digits() {
    let pn = parse("19121212-1212").unwrap();
    assert_eq!(format!("{pn:?}"), "PersonalNumber([redacted])");
    assert_eq!(
        format!("{:?}", Some(&pn)),
        "Some(PersonalNumber([redacted]))"
    );
    let scan = scan_number_candidates("19121212-1212", 10);
    assert!(!format!("{scan:?}").contains("1212"));
    for e in [
        IdError::Empty,
        IdError::TooLong,
        IdError::BadCharacters,
        IdError::BadFormat,
        IdError::BadChecksum,
        IdError::ImpossibleDate,
        IdError::InFuture,
        IdError::UnknownCentury,
        IdError::OutOfRange,
        IdError::NoChecksumPossible,
    ] {
        let shown = e.to_string();
        assert!(!shown.is_empty());
        assert!(
            shown.chars().filter(char::is_ascii_digit).count() <= 2,
            "{shown}"
        );
    }
}

#[test]
fn extreme_today_values_do_not_panic() {
    // identity.rs re-parses stored canonical forms with `NaiveDate::MAX` as today.
    for today in [NaiveDate::MAX, NaiveDate::MIN] {
        for s in [
            "191212121212",
            "121212-1212",
            "121212+1212",
            "1212121212",
            "01010100131",
        ] {
            let _ = PersonalNumber::parse(s, today);
        }
    }
    let pn = PersonalNumber::parse("191212121212", NaiveDate::MAX).unwrap();
    assert_eq!(pn.birth_date(), date(1912, 12, 12));
    assert!(PersonalNumber::parse("191212121212", NaiveDate::MIN).is_err());
}

#[test]
fn country_serde_is_lowercase() {
    assert_eq!(serde_json::to_string(&Country::Se).unwrap(), "\"se\"");
    assert_eq!(serde_json::to_string(&Country::No).unwrap(), "\"no\"");
    assert_eq!(
        serde_json::from_str::<Country>("\"no\"").unwrap(),
        Country::No
    );
}

#[test]
fn scanner_examples() {
    let text = "Elev: Tolvan Tolvansson, pnr 121212-1212, fnr 010101 00131; also 19121212-1212.";
    let c: Vec<String> = number_candidates(text)
        .iter()
        .map(|c| c.to_string())
        .collect();
    for want in ["191212121212", "201212121212", "01010100131"] {
        assert!(c.contains(&want.to_string()), "{want}");
    }
    // Each candidate is listed once.
    let mut sorted = c.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), c.len());
    // Inside longer digit runs, across odd separators and invisible characters.
    assert!(found("ID0019121212121299", "191212121212"));
    assert!(found("121212 – 1212", "201212121212"));
    assert!(found("121212\u{00A0}+\u{00A0}1212", "181212121212"));
    assert!(found("1212\u{200B}12-1212", "201212121212"));
    assert!(found("１２１２１２－１２１２", "201212121212"));
    assert!(found("01010100131", "01010100131"));
    assert!(found("010101-00131", "01010100131"));
    // Nothing that fails the check digit.
    assert!(number_candidates("121212-1213 01010100132").is_empty());
    assert!(number_candidates("").is_empty());
}

#[test]
fn scanner_is_linear_enough() {
    // 2 MB of digits: every position is examined; this must stay fast and bounded.
    let text = "1".repeat(2_000_000);
    let start = std::time::Instant::now();
    let scan = scan_number_candidates(&text, 1024);
    assert!(scan.candidates.len() <= 1024);
    let text = "191212121212 ".repeat(100_000);
    let scan = scan_number_candidates(&text, 1024);
    assert!(!scan.truncated);
    assert!(scan.candidates.iter().any(|c| c.as_str() == "191212121212"));
    assert!(start.elapsed() < std::time::Duration::from_secs(30));
}

// ---------------------------------------------------------------------------------------
// Regressions from fuzzing (fuzz/artifacts/personal_number/crash-*)
// ---------------------------------------------------------------------------------------

/// A 12-digit number born over 199 years before `today` parses, but no short form can
/// express that age: `YYMMDD+NNNC` names the person a century later. The harness had
/// expected every '+' form of anyone aged 100 or more to round-trip.
#[test]
fn fuzz_regression_explicit_year_older_than_short_forms() {
    for (today, input) in [
        // The harness takes `today` from the first two bytes; this is the text after them.
        (date(2033, 4, 7), "\n180705300721\n\n\n\n\n\n"),
        (date(2021, 4, 6), "\n\n180705300721\n\n\n\n\n\n\n"),
    ] {
        let pn = PersonalNumber::parse(input, today).unwrap();
        assert_eq!(pn.canonical(), "180705300721");
        assert_eq!(pn.birth_date(), date(1807, 5, 30));
        let plus = &pn.written_forms()[1];
        assert_eq!(plus.as_str(), "070530+0721");
        let other = PersonalNumber::parse(plus, today).unwrap();
        assert_eq!(other.canonical(), "190705300721");
        assert!(other != pn);
        // The scanner still offers the 18xx reading of the '+' form.
        assert!(found(plus, "180705300721"));
    }
}
