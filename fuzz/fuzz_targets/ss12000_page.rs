//! Fuzzes the SS 12000 hub reader's page parser (`fiktiv_ss12000::page`): what a
//! school administration system answers, untrusted.
//!
//! Input: byte 0 picks the resource (persons, groups, organisations, duties,
//! deletedEntities); the rest is the answer's body.
//!
//! Checks: nothing panics; a person page that is accepted has a marking on every
//! person, and sorting a person into marked or not never panics; a refused item's
//! reason is one of the parser's fixed texts (a missing field of the specification, or
//! "wrong type or value" with a column), so no value of the page can reach an error.
#![no_main]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // fuzz harness: a panic is the finding

use fiktiv_ss12000::model::{Duty, Group, Organisation, Person};
use fiktiv_ss12000::page::{parse_deleted, parse_page, WireError};
use fiktiv_ss12000::MarkedPerson;
use libfuzzer_sys::fuzz_target;

/// Every field the typed entities require: the only names a refusal may name.
const REQUIRED: &[&str] = &[
    "id",
    "meta",
    "created",
    "modified",
    "givenName",
    "familyName",
    "value",
    "enroledAt",
    "schoolType",
    "startDate",
    "person",
    "displayName",
    "groupType",
    "organisation",
    "organisationType",
    "dutyAt",
    "dutyRole",
];

fn reason_is_fixed(e: &WireError) {
    if let WireError::Item { what, .. } = e {
        let ok = what == "not JSON"
            || what
                .strip_prefix("the required field ")
                .and_then(|r| r.strip_suffix(" is missing"))
                .is_some_and(|f| REQUIRED.contains(&f))
            || what
                .strip_prefix(
                    "a field has the wrong type or a value the specification does not allow, at column ",
                )
                .is_some_and(|n| n.parse::<usize>().is_ok());
        assert!(ok, "a refusal's reason is not a fixed text: {what:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    match pick % 5 {
        0 => match parse_page::<Person>(body) {
            Ok(page) => {
                for item in page.items {
                    assert!(item.value.security_marking.is_some());
                    let _ = MarkedPerson::sort(item);
                }
            }
            Err(e) => reason_is_fixed(&e),
        },
        1 => {
            if let Err(e) = parse_page::<Group>(body) {
                reason_is_fixed(&e);
            }
        }
        2 => {
            if let Err(e) = parse_page::<Organisation>(body) {
                reason_is_fixed(&e);
            }
        }
        3 => {
            if let Err(e) = parse_page::<Duty>(body) {
                reason_is_fixed(&e);
            }
        }
        _ => {
            let _ = parse_deleted(body);
        }
    }
});
