//! Fuzzes what a platform sends the feed (`/ss12000/v2`): a list's query string (the
//! specification's filters, `sortkey`, `expand`), a `pageToken`, and a `/lookup` body,
//! through `fiktiv_routine::feed::filter` (`Filter::parse`, `Filter::from_token`,
//! `Lookup::parse`), and the filters matched against entities.
//!
//! Input: byte 0 picks the resource; the rest is split at the first newline: a query
//! string (form-urlencoded, as the HTTP layer decodes it; `pageToken` taken apart), and
//! the rest, read as JSON, is both a lookup body and an entity the filter and the
//! lookup are matched against.
//!
//! Checks: nothing panics; every refusal is a 400 with one of the fixed codes (its
//! message a `&'static str`, so nothing of the input); a filter's page token is read back as
//! the same filter and cursor (so the next page answers the same question), and every
//! token is at most 4 KiB or refused; matching and sorting never panic, and sorting
//! keeps every entity.
#![no_main]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // fuzz harness: a panic is the finding

use fiktiv_routine::feed::filter::{Context, Cursor, Filter, Lookup};
use fiktiv_routine::feed::{FeedError, FeedResource};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const CODES: &[&str] = &[
    "unsupported-parameter",
    "invalid-parameter",
    "invalid-date",
    "invalid-date-time",
    "invalid-page-token",
    "invalid-body",
];

/// A refusal is a 400 with a known code. Its message is a `&'static str` (the type of
/// `FeedError::BadRequest`), so no input can be in it; that is checked by the compiler.
fn refusal_is_fixed(e: &FeedError) {
    match e {
        FeedError::BadRequest(code, message) => {
            assert!(CODES.contains(code), "an unknown code {code}");
            assert!(!message.is_empty());
        }
        other => panic!("a query is refused with something else than 400: {other:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let resource = FeedResource::ALL[usize::from(pick) % FeedResource::ALL.len()];
    let text = String::from_utf8_lossy(rest);
    let (query, json) = text.split_once('\n').unwrap_or((&text, ""));
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let token = pairs
        .iter()
        .find(|(k, _)| k == "pageToken")
        .map(|(_, v)| v.clone());
    let filter_pairs: Vec<(String, String)> = pairs
        .into_iter()
        .filter(|(k, _)| k != "pageToken" && k != "limit")
        .collect();
    let entity: Value = serde_json::from_str(json).unwrap_or(Value::Null);
    let ctx = Context::build(
        std::slice::from_ref(&entity),
        std::slice::from_ref(&entity),
        std::slice::from_ref(&entity),
        std::slice::from_ref(&entity),
    );

    match Filter::parse(resource, &filter_pairs) {
        Ok(f) => {
            let _ = f.matches(&entity, &ctx);
            // The token of the next page carries the same question.
            let cursor = if f.sorted() {
                Cursor::Offset(usize::from(pick))
            } else {
                Cursor::After("0f8fad5b-d9cb-469f-a165-70867728950e".to_owned())
            };
            let t = f.token(&cursor);
            match Filter::from_token(resource, &t) {
                Ok((c, again)) => {
                    assert_eq!(c, cursor, "a token goes on elsewhere");
                    assert_eq!(again.sorted(), f.sorted());
                    assert_eq!(again.expand(), f.expand());
                    assert_eq!(again.matches(&entity, &ctx), f.matches(&entity, &ctx));
                }
                // Only a token longer than the limit may be refused.
                Err(e) => {
                    assert!(t.len() > 4096, "a token this feed gave is refused");
                    refusal_is_fixed(&e);
                }
            }
            let mut items = vec![
                ("b".to_owned(), entity.clone()),
                ("a".to_owned(), serde_json::json!({})),
            ];
            f.sort_items(&mut items);
            assert_eq!(items.len(), 2);
        }
        Err(e) => refusal_is_fixed(&e),
    }
    if let Some(t) = token {
        if let Err(e) = Filter::from_token(resource, &t) {
            refusal_is_fixed(&e);
        }
    }
    match Lookup::parse(resource, &entity) {
        Ok(l) => {
            let _ = l.matches(&entity, &ctx);
        }
        Err(e) => refusal_is_fixed(&e),
    }
});
