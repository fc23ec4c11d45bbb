#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Tests of the feed's filters and lookups.
use super::*;
use serde_json::json;

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn parameters_are_checked_and_unknown_ones_refused() {
    use FeedResource as R;
    for (r, q) in [
        (R::Activities, vec![("expand", "syllabus")]),
        (
            R::Persons,
            vec![("relationship.entity.type", "placement.child")],
        ),
        (R::Groups, vec![("civicNo", "x")]),
        (R::Persons, vec![("startDate.onOrBefore", "2026-01-01")]),
    ] {
        match Filter::parse(r, &pairs(&q)) {
            Err(FeedError::BadRequest("unsupported-parameter", _)) => {}
            other => panic!("{q:?}: {other:?}"),
        }
    }
    for (r, q) in [
        (R::Organisations, vec![("type", "Skolhus")]),
        (R::Organisations, vec![("parent", "nope")]),
        (R::Groups, vec![("startDate.onOrAfter", "2026-13-01")]),
        (R::Persons, vec![("meta.modified.after", "yesterday")]),
        (R::Persons, vec![("civicNo", "1"), ("civicNo", "2")]),
        (R::Persons, vec![("sortkey", "StartDateAsc")]),
        (R::Duties, vec![("expand", "groups")]),
    ] {
        assert!(
            matches!(
                Filter::parse(r, &pairs(&q)),
                Err(FeedError::BadRequest(_, _))
            ),
            "{q:?}"
        );
    }
}

#[test]
fn a_filtered_page_token_carries_the_filter() {
    let f = Filter::parse(
        FeedResource::Persons,
        &pairs(&[("nameContains", "an"), ("nameContains", "sv")]),
    )
    .unwrap();
    let id = "0f8fad5b-d9cb-469f-a165-70867728950e";
    let t = f.token(&Cursor::After(id.to_owned()));
    assert!(t.starts_with('f'));
    let (after, again) = Filter::from_token(FeedResource::Persons, &t).unwrap();
    assert_eq!(after, Cursor::After(id.to_owned()));
    assert_eq!(again.pairs, f.pairs);
    assert_eq!(
        Filter::default().token(&Cursor::After(id.to_owned())),
        format!("k{id}")
    );
    // A sorted list goes on by place; a token of the other kind is refused.
    let sorted = Filter::parse(
        FeedResource::Persons,
        &pairs(&[("sortkey", "FamilyNameAsc")]),
    )
    .unwrap();
    let t = sorted.token(&Cursor::Offset(40));
    assert_eq!(
        Filter::from_token(FeedResource::Persons, &t).unwrap().0,
        Cursor::Offset(40)
    );
    let wrong = sorted.token(&Cursor::After(id.to_owned()));
    assert!(Filter::from_token(FeedResource::Persons, &wrong).is_err());
    for bad in [
        "fnot-base64!",
        "f",
        "kxyz",
        "x",
        &format!("f{}", "A".repeat(5000)),
    ] {
        assert!(
            Filter::from_token(FeedResource::Persons, bad).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn filters_match_what_is_served() {
    let ctx = Context::default();
    let anna = json!({"id": "a", "givenName": "Anna", "familyName": "Svensson",
        "civicNo": {"value": "201502031234"},
        "externalIdentifiers": [{"value": "x1", "context": "lms"}],
        "meta": {"created": "2026-08-01T00:00:00Z", "modified": "2026-08-02T00:00:00Z"}});
    let f = |q: &[(&str, &str)]| Filter::parse(FeedResource::Persons, &pairs(q)).unwrap();
    assert!(f(&[("nameContains", "AN"), ("nameContains", "sson")]).matches(&anna, &ctx));
    assert!(!f(&[("nameContains", "an"), ("nameContains", "berg")]).matches(&anna, &ctx));
    assert!(f(&[("civicNo", "201502031234")]).matches(&anna, &ctx));
    // A consumer refused civicNo is served no civicNo: the filter finds nothing.
    let mut omitted = anna.clone();
    omitted.as_object_mut().unwrap().remove("civicNo");
    assert!(!f(&[("civicNo", "201502031234")]).matches(&omitted, &ctx));
    assert!(f(&[("identifier.value", "x1"), ("identifier.context", "lms")]).matches(&anna, &ctx));
    assert!(!f(&[("identifier.value", "x1"), ("identifier.context", "idp")]).matches(&anna, &ctx));
    assert!(f(&[("meta.modified.after", "2026-08-01T00:00:00Z")]).matches(&anna, &ctx));
    assert!(!f(&[("meta.modified.after", "2026-08-02T00:00:00Z")]).matches(&anna, &ctx));
    assert!(f(&[("meta.created.before", "2026-08-01T00:00:00Z")]).matches(&anna, &ctx));
}

#[test]
fn relations_and_the_organisation_tree() {
    let top = "00000000-0000-4000-8000-000000000001";
    let unit = "00000000-0000-4000-8000-000000000002";
    let other = "00000000-0000-4000-8000-000000000003";
    let pupil = "00000000-0000-4000-8000-0000000000a1";
    let adult = "00000000-0000-4000-8000-0000000000a2";
    let teacher = "00000000-0000-4000-8000-0000000000a3";
    let group = "00000000-0000-4000-8000-0000000000b1";
    let orgs = vec![
        json!({"id": top}),
        json!({"id": unit, "parentOrganisation": {"id": top}}),
        json!({"id": other}),
    ];
    let persons = vec![
        json!({"id": pupil, "enrolments": [{"enroledAt": {"id": unit}, "startDate": "2026-08-17"}],
               "responsibles": [{"person": {"id": adult}}]}),
        json!({"id": adult}),
        json!({"id": teacher}),
    ];
    let groups = vec![json!({"id": group, "organisation": {"id": unit},
        "groupMemberships": [{"person": {"id": pupil}}]})];
    let duties = vec![json!({"id": "d", "person": {"id": teacher}, "dutyAt": {"id": other}})];
    let ctx = Context::build(&orgs, &persons, &groups, &duties);
    let f = |q: &[(&str, &str)]| Filter::parse(FeedResource::Persons, &pairs(q)).unwrap();
    let at_unit = f(&[("relationship.organisation", unit)]);
    assert!(at_unit.matches(&persons[0], &ctx));
    assert!(
        at_unit.matches(&persons[1], &ctx),
        "a guardian relates to its pupil's unit"
    );
    assert!(!at_unit.matches(&persons[2], &ctx));
    let enrolled = f(&[
        ("relationship.entity.type", "enrolment"),
        ("relationship.organisation", unit),
    ]);
    assert!(enrolled.matches(&persons[0], &ctx) && !enrolled.matches(&persons[1], &ctx));
    assert!(f(&[("relationship.entity.type", "duty")]).matches(&persons[2], &ctx));
    assert!(!f(&[
        ("relationship.entity.type", "enrolment"),
        ("relationship.startDate.onOrAfter", "2026-09-01")
    ])
    .matches(&persons[0], &ctx));
    // Duties and activities: the element and those under it.
    let d = Filter::parse(FeedResource::Duties, &pairs(&[("organisation", top)])).unwrap();
    assert!(d.needs_context());
    assert!(d.matches(&json!({"dutyAt": {"id": unit}}), &ctx));
    assert!(!d.matches(&json!({"dutyAt": {"id": other}}), &ctx));
    let a = Filter::parse(FeedResource::Activities, &pairs(&[("member", pupil)])).unwrap();
    assert!(a.matches(&json!({"groups": [{"id": group}]}), &ctx));
    assert!(!a.matches(&json!({"groups": [{"id": unit}]}), &ctx));
    // Lookups: any list names it.
    let l = Lookup::parse(
        FeedResource::Persons,
        &json!({"ids": [pupil], "civicNos": ["19"]}),
    )
    .unwrap();
    assert!(l.matches(&persons[0], &ctx) && !l.matches(&persons[1], &ctx));
    assert!(Lookup::parse(FeedResource::Persons, &json!({"schoolUnitCodes": ["1"]})).is_err());
    assert!(Lookup::parse(FeedResource::Persons, &json!({"ids": [1]})).is_err());
    assert!(Lookup::parse(FeedResource::Persons, &json!([])).is_err());
}

#[test]
fn a_sortkey_orders_what_is_served_and_missing_values_last() {
    let f = Filter::parse(
        FeedResource::Persons,
        &pairs(&[("sortkey", "FamilyNameDesc")]),
    )
    .unwrap();
    let mut items = vec![
        ("3".to_owned(), json!({"familyName": "Berg"})),
        ("1".to_owned(), json!({})),
        ("2".to_owned(), json!({"familyName": "Öberg"})),
        ("0".to_owned(), json!({"familyName": "berg"})),
    ];
    f.sort_items(&mut items);
    let order: Vec<&str> = items.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(order, ["2", "0", "3", "1"]);
    let f = Filter::parse(
        FeedResource::Persons,
        &pairs(&[("sortkey", "ModifiedDesc")]),
    )
    .unwrap();
    let mut items = vec![
        (
            "a".to_owned(),
            json!({"meta": {"modified": "2026-08-01T10:00:00+02:00"}}),
        ),
        (
            "b".to_owned(),
            json!({"meta": {"modified": "2026-08-01T09:00:00Z"}}),
        ),
    ];
    f.sort_items(&mut items);
    assert_eq!(items[0].0, "b", "09:00Z is later than 10:00+02:00");
}
