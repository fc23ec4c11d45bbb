//! Fuzzes the parsing of what a SCIM 2.0 service returns (provisioning/src/scim_parse.rs)
//! and the leak scan over the parsed resources.
//!
//! Input: a SCIM JSON body (a ListResponse, or a single User/Group). Optionally a first
//! line starting with `Retry-After:` gives the `Retry-After` and `Date` header values
//! (separated by `|`). The body is also read as a `/ResourceTypes` answer. Checks:
//! nothing panics; the flattened attributes and the scan entry hold the same values;
//! every endpoint read from resource types is one safe path segment, once; see
//! `common::check_scan` for the scan.
#![no_main]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // fuzz harness: a panic is the finding

mod common;

use fiktiv_provisioning::scim_parse::{
    attributes, parse_group, parse_json, parse_list, parse_retry_after, parse_user,
    resource_endpoints, scanned_from_scim,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut body = data;
    if let Some(rest) = data.strip_prefix(b"Retry-After:") {
        let (line, after) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &[][..]),
        };
        let line = String::from_utf8_lossy(line);
        let (value, date) = match line.split_once('|') {
            Some((v, d)) => (v, Some(d)),
            None => (&*line, None),
        };
        let _ = parse_retry_after(value, date);
        body = after;
    }

    let mut resources = Vec::new();
    // A `/ResourceTypes` answer: every endpoint the scan would read is one safe path
    // segment, each once.
    if let Ok(endpoints) = resource_endpoints(body) {
        for (i, e) in endpoints.iter().enumerate() {
            assert!(
                !e.is_empty() && e.len() <= 64,
                "an endpoint of a bad length"
            );
            assert!(
                e.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "an endpoint that is not one path segment"
            );
            assert!(!endpoints[..i].contains(e), "an endpoint twice");
        }
    }
    if let Ok(page) = parse_list(body) {
        resources = page.resources;
    } else if let Ok(v) = parse_json(body) {
        resources.push(v);
    }
    let target = &common::fixture().target;
    for v in &resources {
        if let Ok(u) = parse_user(v.clone()) {
            let _ = format!("{u:?}");
        }
        if let Ok(g) = parse_group(v.clone()) {
            assert!(
                g.members.len()
                    <= v.get("members")
                        .and_then(|m| m.as_array())
                        .map_or(0, Vec::len)
            );
        }
        let attrs = attributes(v);
        for endpoint in ["Users", "Groups"] {
            let e = scanned_from_scim(target, endpoint, v, 0);
            let n: usize = attrs.values().map(Vec::len).sum();
            assert_eq!(e.values.len(), n, "scan entry and attributes disagree");
            // Debug shows names, never values (a few long values are checked).
            let shown = format!("{e:?}");
            for (_, val) in e.values.iter().filter(|(_, v)| v.len() >= 12).take(8) {
                let named = e.values.iter().any(|(n, _)| n.contains(val.as_str()));
                if !named && !e.locator.contains(val.as_str()) {
                    assert!(!shown.contains(val.as_str()), "Debug shows a value");
                }
            }
        }
    }
    common::check_scan(&|| {
        resources
            .iter()
            .enumerate()
            .map(|(n, v)| scanned_from_scim(target, "Users", v, n))
            .collect()
    });
});
