//! Fuzzes the leak scan's reader of an SS 12000 API
//! (`fiktiv_provisioning::ss12000_scan`): a page as any SS 12000 server (the school
//! administration system, a tool serving it again, Fiktiv's own feed) answers it,
//! untrusted, and the scan over its items.
//!
//! Input: byte 0 picks the resource (persons, groups, organisations, duties,
//! activities); the rest is the page's body.
//!
//! Checks: nothing panics; a page token is at most `MAX_TOKEN` bytes and not empty; an
//! item's locator is the resource and a UUID-like id, or the resource and its place,
//! never any other value; the scan entry holds every flattened value of the item; the
//! scan never reads less than the hub reader: a page the strict reader
//! (`fiktiv_ss12000::page`) accepts, the scan's reader accepts with at least as many
//! items; `common::check_scan` for the scan.
#![no_main]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // fuzz harness: a panic is the finding

mod common;

use fiktiv_provisioning::record::flatten_json;
use fiktiv_provisioning::ss12000_scan::{parse_scan_page, scanned_from_item, MAX_TOKEN};
use fiktiv_ss12000::model::{Duty, Group, Organisation, Person};
use fiktiv_ss12000::page::parse_page;
use libfuzzer_sys::fuzz_target;

const RESOURCES: [&str; 5] = ["persons", "groups", "organisations", "duties", "activities"];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let resource = RESOURCES[usize::from(pick) % RESOURCES.len()];
    let strict = match resource {
        "persons" => parse_page::<Person>(body).ok().map(|p| p.items.len()),
        "groups" => parse_page::<Group>(body).ok().map(|p| p.items.len()),
        "organisations" => parse_page::<Organisation>(body).ok().map(|p| p.items.len()),
        "duties" => parse_page::<Duty>(body).ok().map(|p| p.items.len()),
        _ => None,
    };
    let page = match parse_scan_page(body) {
        Ok(p) => p,
        Err(_) => {
            assert!(
                strict.is_none(),
                "the hub reader accepts a page the scan's reader refuses"
            );
            return;
        }
    };
    if let Some(n) = strict {
        assert!(
            page.items.len() >= n,
            "the scan reads fewer items than the hub reader"
        );
    }
    if let Some(t) = &page.page_token {
        assert!(!t.is_empty() && t.len() <= MAX_TOKEN);
    }
    let target = &common::fixture().target;
    for (n, v) in page.items.iter().enumerate() {
        let e = scanned_from_item(target, resource, v, n);
        let place = format!("{resource} #{}", n + 1);
        let ok = e.locator == place
            || e.locator
                .strip_prefix(&format!("{resource}/"))
                .is_some_and(|id| {
                    !id.is_empty()
                        && id.len() <= 64
                        && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
                });
        assert!(ok, "a locator that holds a value: {:?}", e.locator);
        let mut flat = Vec::new();
        flatten_json("", v, &mut flat);
        assert_eq!(e.values.len(), flat.len(), "the scan entry lost a value");
    }
    common::check_scan(&|| {
        page.items
            .iter()
            .enumerate()
            .map(|(n, v)| scanned_from_item(target, resource, v, n))
            .collect()
    });
});
