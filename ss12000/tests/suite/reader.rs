//! Reading a whole municipality, and then its changes.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use fiktiv_ss12000::{HubAuth, HubConfig, HubError, HubReader, Marking, Progress, Resource};
use fiktiv_tests::{TestHub, HUB_CLIENT_ID};

use crate::{quiet, reader};

#[tokio::test]
async fn a_whole_municipality_is_read_page_by_page_and_marked_persons_are_kept_apart() {
    let hub = TestHub::start(3000, 7).unwrap();
    let r = reader(&hub, 250);
    let mut seen: Vec<Progress> = Vec::new();
    let mut progress = |p: Progress| seen.push(p);
    let snap = r.read(None, &mut progress).await.unwrap();

    assert_eq!(snap.organisations.len(), hub.count("organisations"));
    assert_eq!(snap.groups.len(), hub.count("groups"));
    assert_eq!(snap.duties.len(), hub.count("duties"));
    assert!(hub.count("activities") > 0);
    assert_eq!(snap.activities.len(), hub.count("activities"));
    assert_eq!(snap.persons.len() + snap.marked.len(), hub.count("persons"));
    // Every marked pupil of the seed is among the marked, none among the others.
    let marked: HashSet<String> = snap.marked.iter().map(|m| m.id.to_string()).collect();
    assert!(!hub.marked_pupils().is_empty());
    for p in hub.marked_pupils() {
        assert!(marked.contains(&p.id), "a marked pupil was not kept apart");
    }
    assert!(snap
        .persons
        .iter()
        .all(|e| e.value.security_marking == Some(Marking::None)));
    // The marked pupil's enrolment and number came through.
    let first = &hub.marked_pupils()[0];
    let m = snap
        .marked
        .iter()
        .find(|m| m.id.to_string() == first.id)
        .unwrap();
    assert_eq!(m.civic_no.as_ref().unwrap().expose(), first.civic_no);
    assert_eq!(m.enrolments[0].school_year, Some(first.school_year));
    assert_eq!(m.responsibles.len(), first.guardians.len());
    // Unmarked entities keep the hub's JSON as it was written.
    let raw: serde_json::Value = serde_json::from_str(snap.persons[0].raw.get()).unwrap();
    assert_eq!(raw["id"], snap.persons[0].value.id.to_string());

    // Progress: one report per page, counting up, every resource.
    let persons_pages = hub.count("persons").div_ceil(250);
    assert_eq!(
        seen.iter()
            .filter(|p| p.resource == Resource::Persons)
            .count(),
        persons_pages
    );
    assert_eq!(snap.pages, seen.len());
    assert!(seen
        .windows(2)
        .all(|w| w[0].resource != w[1].resource || w[0].items < w[1].items));

    let checked = hub.validate().unwrap();
    assert_eq!(checked as u64, hub.requests());
    assert!(checked >= persons_pages + 3);
}

#[tokio::test]
async fn changes_are_read_after_a_time_with_the_removed() {
    let hub = TestHub::start(800, 11).unwrap();
    let r = reader(&hub, 100);
    let full = r.read(None, &mut quiet()).await.unwrap();
    let since: DateTime<Utc> = hub.now_stamp().parse().unwrap();

    let pupil = &hub.marked_pupils()[0];
    let other = full.persons[3].value.id.to_string();
    let group = full.groups[0].value.id.to_string();
    hub.change("persons", &other, |v| {
        v["givenName"] = serde_json::json!("Ny")
    })
    .unwrap();
    hub.set_marking(&pupil.id, "Ingen").unwrap();
    hub.delete("groups", &group).unwrap();
    let activity = full.activities[0].value.id.to_string();
    hub.delete("activities", &activity).unwrap();

    let changes = r.read(Some(since), &mut quiet()).await.unwrap();
    let ids: HashSet<String> = changes
        .persons
        .iter()
        .map(|e| e.value.id.to_string())
        .collect();
    assert_eq!(ids, HashSet::from([other.clone(), pupil.id.clone()]));
    assert!(
        changes.marked.is_empty(),
        "the lifted marking reads as Ingen"
    );
    assert!(changes.organisations.is_empty() && changes.duties.is_empty());
    assert_eq!(
        changes
            .deleted
            .groups
            .iter()
            .map(|u| u.to_string())
            .collect::<Vec<_>>(),
        vec![group]
    );
    // The specification's key for removed activities is `activitites`.
    assert_eq!(
        changes
            .deleted
            .activities
            .iter()
            .map(|u| u.to_string())
            .collect::<Vec<_>>(),
        vec![activity]
    );
    hub.validate().unwrap();
}

#[tokio::test]
async fn client_credentials_are_exchanged_for_a_token_and_a_wrong_secret_is_refused() {
    let hub = TestHub::start(300, 3).unwrap();
    let cfg = |secret: &str| {
        HubConfig::new(
            &hub.base_url(),
            HubAuth::ClientCredentials {
                token_url: hub.token_url(),
                client_id: HUB_CLIENT_ID.to_owned(),
                client_secret: secret.to_owned().into(),
                scope: Some("ss12000.read".to_owned()),
            },
        )
    };
    let ok = HubReader::new(cfg(hub.client_secret())).unwrap();
    let snap = ok.read(None, &mut quiet()).await.unwrap();
    assert_eq!(snap.persons.len() + snap.marked.len(), hub.count("persons"));

    let wrong = HubReader::new(cfg("not-the-secret")).unwrap();
    let e = wrong.read(None, &mut quiet()).await.unwrap_err();
    assert!(matches!(e, HubError::TokenRefused { status: 401 }), "{e}");
    assert_eq!(e.code(), "hub.refused");

    let no_token = HubReader::new(HubConfig::new(
        &hub.base_url(),
        HubAuth::Bearer("wrong".to_owned().into()),
    ))
    .unwrap();
    let e = no_token.read(None, &mut quiet()).await.unwrap_err();
    assert!(
        matches!(e, HubError::Status { status: 401, ref code, .. } if code.as_deref() == Some("unauthorized")),
        "{e}"
    );
    hub.validate().unwrap();
}

#[test]
fn a_plain_http_hub_elsewhere_and_a_bad_ca_file_are_refused_at_once() {
    let auth = || HubAuth::Bearer("t".to_owned().into());
    let e = HubReader::new(HubConfig::new("http://hub.example.org/v2.0", auth())).unwrap_err();
    assert_eq!(e.code(), "hub.config");
    // The configuration check is the reader's rule: a host that only starts like a
    // loopback address is refused at start-up too.
    for (url, ok) in [
        ("http://127.0.0.1.evil.example/v2.0", false),
        ("http://localhost.evil.example/v2.0", false),
        ("http://127.0.0.1:8080/v2.0", true),
        ("https://hub.example.org/v2.0", true),
    ] {
        let cfg: fiktiv_ss12000::config::Ss12000Config =
            serde_json::from_value(serde_json::json!({ "base_url": url })).unwrap();
        assert_eq!(cfg.validate().is_ok(), ok, "{url}");
    }
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, "not a certificate").unwrap();
    let mut cfg = HubConfig::new("https://hub.example.org/v2.0", auth());
    cfg.ca_file = Some(ca);
    let e = HubReader::new(cfg).unwrap_err();
    assert!(e.to_string().contains("CA file"), "{e}");
}
