//! Fuzzes the audit purpose check (`fiktiv_vault::audit::check_purpose`): the free text
//! staff give for revealing an identity, written to the audit trail, which must never
//! carry a personal number.
//!
//! Input: 5 bytes choose a valid personal number (country, birth date, serial, written
//! form) and where to put it; the rest is the purpose text. Checks: nothing panics; an
//! accepted purpose is 1..=500 characters, not blank, without control characters and
//! without any number candidate; the error text never shows the input; the text with the
//! chosen number inserted (between spaces) is refused.
#![no_main]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // fuzz harness: a panic is the finding

use chrono::{Datelike, Duration, NaiveDate};
use fiktiv_vault::audit::check_purpose;
use fiktiv_vault::ids::{self, Country, PersonalNumber};
use libfuzzer_sys::fuzz_target;

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 6, 15).unwrap()
}

/// A valid number from the chooser bytes, born 1900..=2026.
fn number(choose: [u8; 4]) -> Option<PersonalNumber> {
    let days = i64::from(u16::from_le_bytes([choose[0], choose[1]])) % 46_000;
    let birth = NaiveDate::from_ymd_opt(1900, 1, 1)? + Duration::days(days);
    if birth > today() {
        return None;
    }
    let serial = u16::from(choose[2]) * 4 % 1000;
    if choose[3] & 1 == 0 {
        let n = ids::make_se_number(birth, serial).ok()?;
        PersonalNumber::parse_country(Country::Se, &n, today()).ok()
    } else {
        let head = birth.format("%d%m%y").to_string();
        (0..1000u16).find_map(|k| {
            let i = (serial + k) % 1000;
            let nine = format!("{head}{i:03}");
            let (a, b) = ids::no_check_digits(&nine)?;
            let p = PersonalNumber::parse_country(Country::No, &format!("{nine}{a}{b}"), today())
                .ok()?;
            (p.birth_date() == birth).then_some(p)
        })
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((choose, rest)) = data.split_first_chunk::<5>() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };

    match check_purpose(text) {
        Ok(()) => {
            let n = text.chars().count();
            assert!((1..=500).contains(&n));
            assert!(!text.trim().is_empty());
            assert!(!text.chars().any(char::is_control));
            assert!(ids::number_candidates(text).is_empty());
        }
        Err(e) => {
            let shown = format!("{e} {e:?}");
            if text.trim().chars().count() >= 6 {
                assert!(!shown.contains(text.trim()), "the error shows the input");
            }
        }
    }

    let Some(pn) = number([choose[0], choose[1], choose[2], choose[3]]) else {
        return;
    };
    let forms = pn.written_forms();
    let form = &forms[usize::from(choose[4] >> 4) % forms.len()];
    let century = pn.birth_date().year() / 100;
    let scannable =
        pn.country() == Country::No || form.len() >= 12 || century == 19 || century == 20;
    if !scannable {
        return;
    }
    let cut = text
        .char_indices()
        .map(|(i, _)| i)
        .chain([text.len()])
        .nth(usize::from(choose[4] & 0x0f) * 7)
        .unwrap_or(text.len());
    let with = format!("{} {} {}", &text[..cut], form.as_str(), &text[cut..]);
    if with.chars().count() <= 500 && !with.chars().any(char::is_control) {
        assert!(
            check_purpose(&with).is_err(),
            "a purpose carrying a personal number was accepted"
        );
    }
});
