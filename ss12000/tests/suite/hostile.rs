//! A hub that misbehaves: every misbehaviour stops the read with a clear error that
//! names no value, and nothing of the read is handed on.

use fiktiv_ss12000::page::MAX_PAGE_ITEMS;
use fiktiv_ss12000::{HubError, WireError};
use fiktiv_tests::{HubFault, TestHub};

use crate::{quiet, reader};

async fn read_err(hub: &TestHub) -> HubError {
    reader(hub, 200).read(None, &mut quiet()).await.unwrap_err()
}

/// No error names a value the hub sent: not a name, not a number, not an id.
fn names_nothing(hub: &TestHub, e: &HubError) {
    let text = e.to_string();
    for p in hub.marked_pupils() {
        for v in [&p.given_name, &p.family_name, &p.civic_no, &p.id] {
            assert!(!text.contains(v.as_str()), "{text}");
        }
    }
    assert!(!text.contains("42"), "{text}");
}

#[tokio::test]
async fn malformed_json_wrong_types_and_a_missing_marking_are_refused_whole() {
    let hub = TestHub::start(400, 5).unwrap();

    hub.set_fault("persons", HubFault::MalformedJson);
    let e = read_err(&hub).await;
    assert_eq!(e.code(), "hub.malformed");
    assert!(
        e.to_string().contains("/persons did not answer JSON"),
        "{e}"
    );
    names_nothing(&hub, &e);

    hub.set_fault("persons", HubFault::WrongTypes);
    let e = read_err(&hub).await;
    assert!(
        matches!(
            &e,
            HubError::Wire(WireError::Item {
                resource: "/persons",
                index: 0,
                ..
            })
        ),
        "{e}"
    );
    names_nothing(&hub, &e);

    hub.set_fault("persons", HubFault::NoMarking);
    let e = read_err(&hub).await;
    assert_eq!(e.code(), "hub.no-marking");
    assert!(e.to_string().contains("securityMarking"), "{e}");

    hub.set_fault("persons", HubFault::Unavailable);
    let e = read_err(&hub).await;
    assert!(
        matches!(&e, HubError::Status { status: 503, code, .. } if code.as_deref() == Some("unavailable")),
        "{e}"
    );

    // The answers without a fault followed the specification, and the validator is
    // real: the fault that broke the types is found.
    hub.validate().unwrap();
    let control = hub.validate_all().unwrap_err().to_string();
    assert!(control.contains("break the specification"), "{control}");
    hub.clear_faults();
    let snap = reader(&hub, 200).read(None, &mut quiet()).await.unwrap();
    assert_eq!(snap.persons.len() + snap.marked.len(), hub.count("persons"));
}

#[tokio::test]
async fn a_page_token_loop_and_a_huge_page_stop_the_read() {
    let hub = TestHub::start(400, 6).unwrap();
    hub.set_fault("groups", HubFault::TokenLoop);
    let e = read_err(&hub).await;
    assert!(
        matches!(
            e,
            HubError::PageLoop {
                resource: "/groups"
            }
        ),
        "{e}"
    );
    // It stopped at the second sight of the token, not after many pages.
    assert!(hub.requests() < 20, "{}", hub.requests());

    hub.set_fault("groups", HubFault::HugePage(MAX_PAGE_ITEMS + 1));
    let e = read_err(&hub).await;
    assert!(
        matches!(e, HubError::Wire(WireError::TooManyItems { .. })),
        "{e}"
    );

    let mut cfg = fiktiv_ss12000::HubConfig::new(
        &hub.base_url(),
        fiktiv_ss12000::HubAuth::Bearer(hub.token().to_owned().into()),
    );
    cfg.page_size = 10;
    cfg.max_pages = 3;
    hub.clear_faults();
    let e = fiktiv_ss12000::HubReader::new(cfg)
        .unwrap()
        .read(None, &mut quiet())
        .await
        .unwrap_err();
    assert!(matches!(e, HubError::TooManyPages { max: 3, .. }), "{e}");
    hub.validate().unwrap();
}

#[tokio::test]
async fn a_marked_person_whose_number_is_filed_elsewhere_still_carries_it() {
    let hub = TestHub::start(400, 8).unwrap();
    let p = hub.marked_pupils()[0].clone();
    hub.change("persons", &p.id, |v| {
        v.as_object_mut().unwrap().remove("civicNo");
        v["externalIdentifiers"] = serde_json::json!([{
            "value": p.civic_no, "context": "folkbokforing", "globallyUnique": true
        }]);
    })
    .unwrap();
    let snap = reader(&hub, 200).read(None, &mut quiet()).await.unwrap();
    let m = snap
        .marked
        .iter()
        .find(|m| m.id.to_string() == p.id)
        .unwrap();
    assert!(m.civic_no.is_none());
    assert!(
        m.numbers_elsewhere.iter().any(|n| n.as_str() == p.civic_no),
        "the number in externalIdentifiers was not found"
    );
    hub.validate().unwrap();
}
