//! Fuzzes the parsing of what an LDAP server returns (provisioning/src/ldap_parse.rs, a
//! hand-written reader of BER search result entries), the DN helpers, generalized time,
//! and the leak scan over the parsed entry.
//!
//! Input: BER bytes of a SearchResultEntry (`[APPLICATION 4]`). The DN helpers and the time parser also get the input as text. Checks: nothing
//! panics or hangs; a DN is under itself; the scan (see `common::check_scan`).
#![no_main]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // fuzz harness: a panic is the finding

mod common;

use fiktiv_provisioning::ldap_parse::{
    is_under, normalize_dn, parent_dn, parse_generalized_time, parse_search_entry_ber, rdn_value,
    scanned_from_ldap, split_dn, LdapEntry,
};
use libfuzzer_sys::fuzz_target;

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

    let entries: Vec<LdapEntry> = parse_search_entry_ber(data).into_iter().collect();
    let target = &common::fixture().target;
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
