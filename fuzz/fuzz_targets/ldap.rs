//! Fuzzes the parsing of what an LDAP server returns (provisioning/src/ldap_parse.rs, a
//! hand-written reader of BER search result entries), the DN helpers, generalized time,
//! the schema-description reader of `targets test` (provisioning/src/diagnose.rs), and
//! the leak scan over the parsed entry.
//!
//! Input: BER bytes of a SearchResultEntry (`[APPLICATION 4]`). The DN helpers, the time
//! parser and the schema reader also get the input as text. Checks: nothing panics or
//! hangs; a DN is under itself; the leak scan's direct reader (`scanned_from_tag`, what
//! `read_everything` uses) gives exactly the entry `scanned_from_ldap` makes from
//! `parse_search_entry`; the leak scan's own reader (`ldap_wire::scanned_from_entry`)
//! gives exactly what `scanned_from_tag` gives wherever both accept the bytes, and its
//! message framing and parsing never panic; the scan (see `common::check_scan`).
#![no_main]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // fuzz harness: a panic is the finding

mod common;

use fiktiv_provisioning::diagnose::schema_names;
use fiktiv_provisioning::ldap_parse::{
    is_under, normalize_dn, parent_dn, parse_generalized_time, parse_search_entry,
    parse_search_entry_ber, rdn_value, scanned_from_ldap, scanned_from_tag, split_dn, LdapEntry,
};
use fiktiv_provisioning::ldap_wire::{
    frame_len, parse_message, scanned_from_entry, search_entry_contents, MAX_MESSAGE_BYTES,
};
use fiktiv_provisioning::{LdapEntries, ScannedEntry};
use ldap3::asn1::parse_tag;
use libfuzzer_sys::fuzz_target;

/// Everything a scan entry holds, values as plain text.
fn flat(e: &ScannedEntry) -> (String, Option<String>, Vec<(String, String)>) {
    (
        e.locator.clone(),
        e.label_attribute.clone(),
        e.values
            .iter()
            .map(|(n, v)| (n.clone(), v.to_string()))
            .collect(),
    )
}

fn dn_checks(dn: &str) {
    let rdns = split_dn(dn);
    assert!(!rdns.is_empty());
    for r in rdns.iter().take(4) {
        let _ = rdn_value(r);
    }
    let _ = parent_dn(dn);
    let _ = normalize_dn(dn);
    assert!(is_under(dn, dn), "a DN is not under itself");
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    dn_checks(&text);
    let _ = parse_generalized_time(&text);
    for name in schema_names(&text) {
        assert!(!name.contains('\''), "a schema name holds a quote");
        assert!(!name.bytes().any(|b| b.is_ascii_uppercase()));
    }

    let target = &common::fixture().target;
    if let Ok((_, tag)) = parse_tag(data) {
        let parsed = parse_search_entry(&tag);
        let direct = scanned_from_tag(target, tag, 3);
        match (&parsed, &direct) {
            (Ok(e), Ok(d)) => assert!(
                flat(&scanned_from_ldap(target, e, 3)) == flat(d),
                "scanned_from_tag differs from scanned_from_ldap"
            ),
            (Err(_), Err(_)) => {}
            _ => panic!(
                "parse_search_entry ok={} but scanned_from_tag ok={}",
                parsed.is_ok(),
                direct.is_ok()
            ),
        }
    }

    // The leak scan's own reader (ldap_wire): the same entry as ldap3's decoding
    // wherever both accept the bytes; framing and message parsing never panic.
    if let Some(body) = search_entry_contents(data) {
        let wire = scanned_from_entry(target, body, 3);
        // A page as the scan keeps it takes exactly the entries that decode, and gives
        // them back the same.
        let mut page = LdapEntries::new(target.clone());
        assert_eq!(
            page.push(body, 3).is_ok(),
            wire.is_ok(),
            "check_entry and view_entry disagree"
        );
        if let Ok(w) = &wire {
            let back = page.to_scanned().expect("a checked entry decodes");
            assert!(
                back.len() == 1 && flat(&back[0]) == flat(w),
                "a page changed its entry"
            );
            let (view, _) = page.views().next().expect("one entry");
            let view = view.expect("a checked entry has a view");
            let values: Vec<(&str, &str)> = view.values().collect();
            let copied: Vec<(&str, &str)> = w
                .values
                .iter()
                .map(|(a, v)| (a.as_str(), v.as_str()))
                .collect();
            assert!(
                values == copied,
                "the page's view differs from the checked decoding"
            );
        }
        if let (Ok(w), Ok((_, tag))) = (&wire, parse_tag(data)) {
            if let Ok(d) = scanned_from_tag(target, tag, 3) {
                assert!(
                    flat(w) == flat(&d),
                    "scanned_from_entry differs from scanned_from_tag"
                );
            }
        }
    }
    if let Ok(Some(n)) = frame_len(data) {
        assert!(n <= data.len() && n <= MAX_MESSAGE_BYTES + 16);
        let _ = parse_message(&data[..n]);
    }
    let _ = parse_message(data);

    let entries: Vec<LdapEntry> = parse_search_entry_ber(data).into_iter().collect();
    for e in &entries {
        dn_checks(&e.dn);
        for name in e.attrs.keys().take(8) {
            assert!(e.first(name).is_none() || !e.get(name).is_empty());
            let _ = parse_generalized_time(e.first(name).unwrap_or(""));
        }
        let _ = format!("{e:?}");
    }
    common::check_scan(&|| {
        entries
            .iter()
            .enumerate()
            .map(|(n, e)| scanned_from_ldap(target, e, n))
            .collect()
    });
});
