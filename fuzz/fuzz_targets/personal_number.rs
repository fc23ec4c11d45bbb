//! Fuzzes personal-number parsing and the leak scanner with arbitrary bytes.
//!
//! Checks: nothing panics; a parsed number re-parses from its canonical form and from every
//! written form that matches its age; the scanner finds every written form; error texts
//! never show four input digits in a row.
#![no_main]

use chrono::{Datelike, NaiveDate};
use fiktiv_vault::ids::{
    number_candidates, scan_number_candidates, Country, NumberKind, PersonalNumber,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first two bytes pick `today` (so century rules are exercised), the rest is text.
    let (today, rest) = match data {
        [a, b, rest @ ..] => {
            let days = i64::from(u16::from_le_bytes([*a, *b]));
            let base = NaiveDate::from_ymd_opt(1990, 1, 1).unwrap_or_default();
            (base + chrono::Duration::days(days), rest)
        }
        _ => (
            NaiveDate::from_ymd_opt(2026, 6, 15).unwrap_or_default(),
            data,
        ),
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };

    let scan = scan_number_candidates(text, 64);
    assert!(scan.candidates.len() <= 64);
    let _ = number_candidates(text);

    for result in [
        PersonalNumber::parse(text, today),
        PersonalNumber::parse_country(Country::Se, text, today),
        PersonalNumber::parse_country(Country::No, text, today),
    ] {
        match result {
            Err(e) => {
                let shown = format!("{e} {e:?}");
                let digits: Vec<&str> = text
                    .split(|c: char| !c.is_ascii_digit())
                    .filter(|r| r.len() >= 4)
                    .collect();
                for run in digits {
                    for w in run.as_bytes().windows(4) {
                        let w = std::str::from_utf8(w).unwrap_or_default();
                        assert!(!shown.contains(w), "error echoes input digits");
                    }
                }
            }
            Ok(pn) => check_number(&pn, today),
        }
    }
});

fn check_number(pn: &PersonalNumber, today: NaiveDate) {
    assert_eq!(format!("{pn:?}"), "PersonalNumber([redacted])");
    assert!(pn.birth_date() <= today);
    let again = PersonalNumber::parse_country(pn.country(), pn.canonical(), today)
        .unwrap_or_else(|e| panic!("canonical form does not re-parse: {e}"));
    assert!(again == *pn);
    assert_eq!(again.birth_date(), pn.birth_date());
    assert_eq!(again.kind(), pn.kind());

    let birth = pn.birth_date();
    let age = today.year()
        - birth.year()
        - i32::from((today.month(), today.day()) < (birth.month(), birth.day()));
    let forms = pn.written_forms();
    for (idx, form) in forms.iter().enumerate() {
        let must = match (pn.country(), idx) {
            // YYMMDD-NNNC and bare 10 digits under 100, YYMMDD+NNNC from 100 to 199
            // (a 12-digit year may be older than any short form can express).
            (Country::Se, 0 | 2) => age < 100,
            (Country::Se, 1) => (100..200).contains(&age),
            _ => true,
        };
        if must {
            let back = PersonalNumber::parse(form, today)
                .unwrap_or_else(|e| panic!("written form {idx} does not re-parse: {e}"));
            assert!(back == *pn, "written form {idx} names another number");
        }
        let century = birth.year() / 100;
        let scannable = pn.country() == Country::No
            || form.len() >= 12
            || century == 19
            || century == 20
            || (century == 18 && form.contains('+'));
        if scannable {
            assert!(
                number_candidates(form)
                    .iter()
                    .any(|c| c.as_str() == pn.canonical()),
                "scanner misses written form {idx}"
            );
        }
    }
    match pn.kind() {
        NumberKind::SePersonnummer | NumberKind::SeSamordningsnummer => {
            assert_eq!(pn.country(), Country::Se);
            assert_eq!(pn.canonical().len(), 12);
        }
        _ => {
            assert_eq!(pn.country(), Country::No);
            assert_eq!(pn.canonical().len(), 11);
        }
    }
}
