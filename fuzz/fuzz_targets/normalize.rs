//! Fuzzes name normalisation, display-name validation and the date scanner.
#![no_main]

use fiktiv_vault::normalize::{
    date_candidates, name_birth_key, normalize_name, scan_date_candidates, validate_display_name,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let n = normalize_name(text);
    assert_eq!(normalize_name(&n), n, "normalize_name is not idempotent");
    assert!(n.chars().all(char::is_alphanumeric));
    assert_eq!(
        normalize_name(&text.to_uppercase()),
        n,
        "case changes the fold"
    );

    if let Err(e) = validate_display_name(text) {
        let shown = e.to_string();
        // Messages are fixed text: a long input can never appear in one.
        if text.chars().count() >= 8 {
            assert!(!shown.contains(text));
        }
    }

    let scan = scan_date_candidates(text, 32);
    assert!(scan.dates.len() <= 32);
    let dates = date_candidates(text);
    if let Some(d) = dates.first() {
        let mid = text
            .char_indices()
            .nth(text.chars().count() / 2)
            .map_or(text.len(), |(i, _)| i);
        let (first, last) = text.split_at(mid);
        let key = name_birth_key(first, last, *d);
        assert_eq!(key.matches('|').count(), 2);
    }
});
