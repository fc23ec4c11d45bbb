//! The page parser on arbitrary input: it never panics, and what it refuses it refuses
//! without echoing the input.

use fiktiv_ss12000::model::{Group, Person};
use fiktiv_ss12000::page::{parse_deleted, parse_page, WireError};
use proptest::prelude::*;

const NAME: &str = "Zyxwvutsrq";
const NUMBER: &str = "201405031234";

fn person(given: serde_json::Value, marking: serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "id": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
        "meta": { "created": "2026-01-01T00:00:00Z", "modified": "2026-01-01T00:00:00Z" },
        "givenName": given, "familyName": NAME,
        "civicNo": { "value": NUMBER }, "securityMarking": marking
    })
}

#[test]
fn an_empty_token_is_the_end_and_a_control_character_in_one_is_refused() {
    let body = serde_json::json!({ "data": [], "pageToken": "" }).to_string();
    assert!(parse_page::<Group>(body.as_bytes()).unwrap().next.is_none());
    let body = serde_json::json!({ "data": [], "pageToken": "a\nb" }).to_string();
    assert!(matches!(
        parse_page::<Group>(body.as_bytes()),
        Err(WireError::BadToken { .. })
    ));
    let body =
        serde_json::json!({ "data": { "persons": ["3fa85f64-5717-4562-b3fc-2c963f66afa6"] } });
    let (d, next) = parse_deleted(body.to_string().as_bytes()).unwrap();
    assert_eq!(d.persons.len(), 1);
    assert!(next.is_none());
}

#[test]
fn an_unknown_marking_is_refused_without_echoing_it() {
    let body = serde_json::json!({ "data": [person(NAME.into(), "Hemlig".into())] }).to_string();
    let e = parse_page::<Person>(body.as_bytes())
        .unwrap_err()
        .to_string();
    assert!(
        !e.contains("Hemlig") && !e.contains(NAME) && !e.contains(NUMBER),
        "{e}"
    );
}

/// Found by the `ss12000_scan` fuzz target (`crash-afd99090…`, 2026-12-07): serde took
/// a JSON array for the page's struct, so `[[\t]\t]` was an empty page (and
/// `[[<persons>], "t"]` a page of persons with a token) for the hub reader, while the
/// leak scan's reader of the same answers refused it. The specification's page is an
/// object; every other shape is refused, naming the position only.
#[test]
fn a_page_that_is_not_an_object_is_refused() {
    for body in [&b"[[\t]\t]"[..], b"[[]]", b"  \n [[], \"next\"]", b"[]"] {
        for e in [
            parse_page::<Person>(body).map(|_| ()).unwrap_err(),
            parse_page::<Group>(body).map(|_| ()).unwrap_err(),
            parse_deleted(body).map(|_| ()).unwrap_err(),
        ] {
            assert!(
                matches!(
                    e,
                    WireError::Shape {
                        what: "not an object",
                        ..
                    }
                ),
                "{e}"
            );
        }
    }
    // A page of the specification's shape with whitespace before it is still a page.
    let body = b" \r\n\t{\"data\": []}";
    assert!(parse_page::<Person>(body).unwrap().items.is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_page::<Person>(&bytes);
        let _ = parse_page::<Group>(&bytes);
        let _ = parse_deleted(&bytes);
    }

    #[test]
    fn a_refused_person_is_never_echoed(
        given in prop_oneof![
            Just(serde_json::json!(NAME)),
            Just(serde_json::json!(42)),
            Just(serde_json::json!([NAME])),
            Just(serde_json::json!({ "v": NUMBER })),
        ],
        marking in prop_oneof![
            Just(serde_json::json!("Ingen")),
            Just(serde_json::json!(NAME)),
            Just(serde_json::json!(NUMBER)),
            Just(serde_json::Value::Null),
        ],
        cut in 0usize..400,
    ) {
        let mut body = serde_json::json!({ "data": [person(given, marking)] }).to_string();
        body.truncate(cut.min(body.len()));
        if let Err(e) = parse_page::<Person>(body.as_bytes()) {
            let text = e.to_string();
            prop_assert!(!text.contains(NAME) && !text.contains(NUMBER), "{}", text);
        }
    }
}
