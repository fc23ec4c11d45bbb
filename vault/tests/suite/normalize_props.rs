#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Property and example tests for `fiktiv_vault::normalize`.

use chrono::{Duration, NaiveDate};
use fiktiv_vault::normalize::{
    date_candidates, name_birth_key, normalize_name, scan_date_candidates, validate_display_name,
    NameError,
};
use proptest::prelude::*;
use unicode_normalization::UnicodeNormalization;

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// Letters seen in Swedish and Norwegian names, and some from families' other languages.
const NAME_LETTERS: &str = "[A-Za-zÅÄÖåäöØøÆæÉéÈèÜüÏïÑñÇçßŁłĐđÞþŒœĆćŠšŽžİıΣσςДдЖж]";

fn name() -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!(
        "{NAME_LETTERS}{{1,12}}( {NAME_LETTERS}{{1,12}}){{0,2}}"
    ))
    .unwrap()
}

/// Characters normalisation must ignore.
fn filler() -> impl Strategy<Value = String> {
    "[ \t\n\r\\-'’.,_/()\u{00A0}\u{200B}\u{202E}\u{0000}\u{001B}]{1,3}"
}

fn one_of_messages(e: &NameError) -> bool {
    let all = [
        NameError::Empty,
        NameError::TooLong,
        NameError::ControlCharacter,
        NameError::DisallowedCharacter,
        NameError::NoLetter,
    ];
    all.iter().any(|x| x.to_string() == e.to_string())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn idempotent(s in any::<String>()) {
        let once = normalize_name(&s);
        prop_assert_eq!(normalize_name(&once), once.clone());
        prop_assert!(once.chars().all(char::is_alphanumeric));
        prop_assert_eq!(once.to_lowercase(), once.clone());
    }

    #[test]
    fn invariant_under_unicode_normal_forms(s in any::<String>()) {
        let n = normalize_name(&s);
        prop_assert_eq!(normalize_name(&s.nfc().collect::<String>()), n.clone());
        prop_assert_eq!(normalize_name(&s.nfd().collect::<String>()), n.clone());
        prop_assert_eq!(normalize_name(&s.nfkc().collect::<String>()), n.clone());
        prop_assert_eq!(normalize_name(&s.nfkd().collect::<String>()), n);
    }

    #[test]
    fn invariant_under_case(s in prop_oneof![name(), any::<String>()]) {
        let n = normalize_name(&s);
        prop_assert_eq!(normalize_name(&s.to_uppercase()), n.clone());
        prop_assert_eq!(normalize_name(&s.to_lowercase()), n);
    }

    /// Whitespace, hyphens, apostrophes, punctuation, controls and invisible characters
    /// inserted anywhere between letters change nothing.
    #[test]
    fn invariant_under_inserted_filler(s in name(), fill in proptest::collection::vec((any::<prop::sample::Index>(), filler()), 0..5)) {
        let mut chars: Vec<String> = s.chars().map(String::from).collect();
        for (at, f) in fill {
            let i = at.index(chars.len() + 1);
            chars.insert(i, f);
        }
        let noisy: String = chars.concat();
        prop_assert_eq!(normalize_name(&noisy), normalize_name(&s));
    }

    #[test]
    fn name_birth_key_matches_equivalent_inputs(first in name(), last in name(), d in 0i64..80_000) {
        let birth = date(1900, 1, 1) + Duration::days(d);
        let key = name_birth_key(&first, &last, birth);
        let shouted = name_birth_key(&first.to_uppercase(), &format!(" {} ", last.nfd().collect::<String>()), birth);
        prop_assert_eq!(&shouted, &key);
        let suffix = format!("|{}", birth.format("%Y%m%d"));
        prop_assert!(key.ends_with(&suffix));
        prop_assert_ne!(name_birth_key(&first, &last, birth + Duration::days(1)), key.clone());
        // First and last name are kept apart.
        prop_assert_eq!(key.matches('|').count(), 2);
    }

    /// Every supported layout of a date is found inside random text.
    #[test]
    fn date_layouts_are_found(d in 0i64..146_000, pre in "\\PC{0,16}", post in "\\PC{0,16}") {
        let day = date(1800, 1, 1) + Duration::days(d);
        prop_assume!(day.format("%Y").to_string().len() == 4 && day < date(2200, 1, 1));
        let mut layouts = vec![
            day.format("%Y-%m-%d").to_string(),
            day.format("%Y%m%d").to_string(),
            day.format("%Y/%m/%d").to_string(),
            day.format("%d.%m.%Y").to_string(),
            day.format("%d/%m/%Y").to_string(),
            day.format("%-d.%-m.%Y").to_string(),
            day.format("%m/%d/%Y").to_string(),
        ];
        if (1900..2100).contains(&day.format("%Y").to_string().parse::<i32>().unwrap()) {
            layouts.push(day.format("%y%m%d").to_string());
            layouts.push(day.format("%d.%m.%y").to_string());
        }
        for l in layouts {
            // Separate the layout from digits in the noise; a digit next to a separated
            // layout legitimately makes it a different number.
            let text = format!("{pre} {l} {post}");
            let found = date_candidates(&text);
            prop_assert!(found.contains(&day), "layout not found");
        }
    }

    #[test]
    fn date_candidates_never_panics_and_caps(s in prop_oneof![any::<String>(), "[0-9./ -]{0,200}"], limit in 0usize..50) {
        let scan = scan_date_candidates(&s, limit);
        prop_assert!(scan.dates.len() <= limit);
        let mut sorted = scan.dates.clone();
        sorted.sort();
        sorted.dedup();
        prop_assert_eq!(sorted.len(), scan.dates.len());
        for d in &scan.dates {
            prop_assert!((1800..=2199).contains(&d.format("%Y").to_string().parse::<i32>().unwrap()));
        }
        let _ = date_candidates(&s);
    }

    #[test]
    fn valid_names_pass(s in name()) {
        prop_assert_eq!(validate_display_name(&s), Ok(()));
        prop_assert_eq!(validate_display_name(&format!("  {s}\n")), Ok(()));
    }

    #[test]
    fn control_characters_fail(a in name(), b in name(), c in "[\u{0000}-\u{001F}\u{007F}-\u{009F}]") {
        // Only names that are valid without the control character (two long names
        // together can be too long, which is reported first).
        prop_assume!(validate_display_name(&format!("{a} {b}")) == Ok(()));
        let s = format!("{a}{c}{b}");
        prop_assert_eq!(validate_display_name(&s), Err(NameError::ControlCharacter));
    }

    #[test]
    fn name_errors_never_echo(s in any::<String>()) {
        if let Err(e) = validate_display_name(&s) {
            prop_assert!(one_of_messages(&e));
        }
    }
}

#[test]
fn examples_normalise_equally() {
    let nfc = "Åsa-Britt  Öberg";
    let nfd: String = nfc.nfd().collect();
    let want = "asabrittoberg";
    for s in [
        nfc,
        nfd.as_str(),
        "asa britt oberg",
        "ÅSA BRITT ÖBERG",
        "Asa-Britt Oberg",
    ] {
        assert_eq!(normalize_name(s), want, "{s:?}");
    }
    assert_eq!(normalize_name("Bjørn Ødegård"), "bjornodegard");
    assert_eq!(normalize_name("Kjærstad"), "kjaerstad");
    assert_eq!(normalize_name("Weiß"), "weiss");
    assert_eq!(normalize_name("Þórunn"), "thorunn");
    assert_eq!(normalize_name("Đurić"), "duric");
    assert_eq!(normalize_name("Wałęsa"), "walesa");
    assert_eq!(normalize_name("D'Artagnan"), "dartagnan");
    assert_eq!(normalize_name("İlkay"), normalize_name("ilkay"));
    assert_eq!(normalize_name("ﬁona"), "fiona");
    assert_eq!(normalize_name(""), "");
    assert_eq!(
        name_birth_key("Åsa-Britt", "Öberg", date(2012, 3, 4)),
        "asabritt|oberg|20120304"
    );
}

#[test]
fn date_examples() {
    let want = date(2012, 3, 4);
    for text in [
        "född 2012-03-04",
        "20120304",
        "2012/03/04",
        "født 04.03.2012.",
        "04/03/2012",
        "4.3.2012",
        "pnr 120304-1234",
        "dob:120304",
    ] {
        assert!(date_candidates(text).contains(&want), "{text}");
    }
    assert!(date_candidates("2012-13-04 2012-02-30 31.04.2012").is_empty());
    assert!(date_candidates("").is_empty());
    assert!(date_candidates("no dates here").is_empty());
    // 6 digits give both century readings.
    let c = date_candidates("120304");
    assert!(c.contains(&date(1912, 3, 4)) && c.contains(&date(2012, 3, 4)));
    // Long digit runs are capped and reported.
    let scan = scan_date_candidates(&"19900101".repeat(10_000), 1024);
    assert!(scan.dates.contains(&date(1990, 1, 1)));
    let long: String = (0..20_000u32)
        .map(|i| format!("{:08}", 19_000_000 + i * 37))
        .collect();
    let scan = scan_date_candidates(&long, 100);
    assert_eq!(scan.dates.len(), 100);
    assert!(scan.truncated);
    assert_eq!(
        format!("{scan:?}"),
        "DateScan { dates: 100, truncated: true }"
    );
}

#[test]
fn display_name_examples() {
    for ok in [
        "Åsa-Britt Öberg",
        "O'Brien",
        "O’Brien",
        "Jr.",
        "Đorđe",
        "Ngũgĩ",
        "Ελένη",
        "Zoë",
        "李小龍",
    ] {
        assert_eq!(validate_display_name(ok), Ok(()), "{ok}");
    }
    let decomposed: String = "Zoë".nfd().collect();
    assert_eq!(validate_display_name(&decomposed), Ok(()));
    assert_eq!(validate_display_name("   "), Err(NameError::Empty));
    assert_eq!(validate_display_name(""), Err(NameError::Empty));
    assert_eq!(validate_display_name(&"a".repeat(64)), Ok(()));
    assert_eq!(
        validate_display_name(&format!(" {} ", "a".repeat(64))),
        Ok(())
    );
    assert_eq!(
        validate_display_name(&"a".repeat(65)),
        Err(NameError::TooLong)
    );
    assert_eq!(validate_display_name(&"ö".repeat(64)), Ok(()));
    assert_eq!(
        validate_display_name("Anna\u{0007}"),
        Err(NameError::ControlCharacter)
    );
    assert_eq!(
        validate_display_name("An\tna"),
        Err(NameError::ControlCharacter)
    );
    for bad in [
        "Anna1",
        "Anna <b>",
        "Anna\u{202E}",
        "An\u{200B}na",
        "Anna_B",
        "Anna@x",
        "a\u{00A0}b",
        "😀",
    ] {
        assert_eq!(
            validate_display_name(bad),
            Err(NameError::DisallowedCharacter),
            "{bad:?}"
        );
    }
    assert_eq!(validate_display_name("-'."), Err(NameError::NoLetter));
    let e = validate_display_name("191212121212").unwrap_err();
    assert!(!e.to_string().contains("1212"));
}
