//! Reading the SS 12000 hub into Fiktiv: a marked pupil with a case is linked to it,
//! one without a case becomes an intake item for its unit, and nothing of a marked
//! person (number, name, hub id) is anywhere in the database in plaintext. The hub is
//! the project's test hub, every answer validated against the official specification.

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use fiktiv_routine::hub::{self, UnitCodeFrom};
use fiktiv_ss12000::{HubAuth, HubConfig, HubReader, Snapshot};
use fiktiv_tests::TestHub;
use serde_json::json;

use crate::support::api::*;

async fn read(hub: &TestHub, since: Option<DateTime<Utc>>) -> Snapshot {
    let mut cfg = HubConfig::new(
        &hub.base_url(),
        HubAuth::Bearer(hub.token().to_owned().into()),
    );
    cfg.page_size = 300;
    HubReader::new(cfg)
        .unwrap()
        .read(since, &mut |_| {})
        .await
        .unwrap()
}

/// No marked person's number, family name or hub id is anywhere in the database's bytes.
fn nothing_marked_in_plaintext(e: &Env, hub: &TestHub) {
    let bytes = e.db.raw_bytes().unwrap();
    let has = |needle: &str| crate::support::bytes_contain(&bytes, needle.as_bytes());
    for p in hub.marked_pupils() {
        for (what, v) in [
            ("number", &p.civic_no),
            ("family name", &p.family_name),
            ("hub id", &p.id),
        ] {
            assert!(
                !has(v),
                "a marked pupil's {what} is in the database in plaintext"
            );
        }
    }
}

async fn a_read_links_the_case_makes_intake_items_and_keeps_no_marked_person(
    db: fiktiv_tests::TestDatabase,
) {
    let hub = TestHub::start(2000, 21).unwrap();
    let mut e = env(db, at(2026, 9, 1)).await;
    let pupils = hub.marked_pupils().to_vec();
    assert!(pupils.len() >= 10);
    let p = &pupils[0];
    let case = e
        .walk()
        .open(json!({"country": "se", "personal_number": p.civic_no,
                     "first_name": p.given_name, "last_name": p.family_name,
                     "birth_date": p.birth_date}))
        .await;

    let since: DateTime<Utc> = hub.now_stamp().parse().unwrap();
    let report = hub::apply(
        &e.vault,
        read(&hub, None).await,
        true,
        UnitCodeFrom::SchoolUnitCode,
        since,
    )
    .await
    .unwrap();
    assert_eq!(report.linked, 1);
    assert_eq!(report.intake_new, pupils.len() - 1);
    assert_eq!(e.count("hub_intake").await as usize, pupils.len() - 1);
    // Everyone but the marked is kept for the feed.
    assert_eq!(
        e.count("hub_entities").await as usize,
        hub.count("organisations")
            + hub.count("groups")
            + hub.count("duties")
            + hub.count("activities")
            + hub.count("persons")
            - report.marked
    );

    // The case takes the unit, school year and groups from the hub.
    let facts = hub::facts_of(&e.vault, &case.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(facts.unit.as_deref(), Some(p.unit_code.as_str()));
    assert_eq!(facts.school_year, Some(p.school_year));
    assert_eq!(facts.groups, p.groups);
    // The case moved to the unit where the hub enrols the pupil (it was opened at
    // another): audited, and the unit that opened it no longer sees it.
    let path = format!("/api/v1/cases/{case}");
    assert_eq!(e.audit_count("hub.unit").await, 1);
    assert_eq!(
        e.call("GET", &path, SCHOOL_A, None).await.0,
        StatusCode::NOT_FOUND
    );
    let t = fiktiv_staff::tokens::create(
        &e.vault,
        "test",
        "skola-p",
        &[fiktiv_policies::Role::School],
        std::slice::from_ref(&p.unit_code),
        30,
    )
    .await
    .unwrap();
    e.tokens.insert("skola-p", t.secret.to_string());
    assert_eq!(
        e.call("GET", &path, "skola-p", None).await.0,
        StatusCode::OK
    );

    // Intake items per unit: the marked pupils without a case, each at its own unit.
    let mut want: std::collections::BTreeMap<String, i64> = Default::default();
    for q in &pupils[1..] {
        *want.entry(q.unit_code.clone()).or_default() += 1;
    }
    let got: std::collections::BTreeMap<String, i64> = hub::intake_counts(&e.vault)
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(got, want);
    nothing_marked_in_plaintext(&e, &hub);

    // Through the API: the unit's school sees its items and may open one (audited);
    // another school may not; the central administrator sees counts only.
    let q = &pupils[1];
    let t = fiktiv_staff::tokens::create(
        &e.vault,
        "test",
        "skola-hub",
        &[fiktiv_policies::Role::School],
        std::slice::from_ref(&q.unit_code),
        30,
    )
    .await
    .unwrap();
    e.tokens.insert("skola-hub", t.secret.to_string());
    let items = e
        .ok(
            StatusCode::OK,
            "GET",
            &format!("/api/v1/units/{}/intake", q.unit_code),
            "skola-hub",
            None,
        )
        .await;
    let items = items.as_array().unwrap();
    assert_eq!(items.len() as i64, want[&q.unit_code]);
    assert!(!items.iter().any(|i| i.to_string().contains(&q.civic_no)));
    let (s, _) = e
        .call(
            "GET",
            &format!("/api/v1/units/{}/intake", q.unit_code),
            SCHOOL_A,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = e
        .call(
            "GET",
            &format!("/api/v1/units/{}/intake", q.unit_code),
            CENTRAL,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let reads_before = e.count("audit_events").await;
    let mut numbers = Vec::new();
    for item in items {
        let id = item["intake_id"].as_str().unwrap();
        let pupil = e
            .ok(
                StatusCode::OK,
                "GET",
                &format!("/api/v1/units/{}/intake/{id}", q.unit_code),
                "skola-hub",
                None,
            )
            .await;
        numbers.push(pupil["personal_number"].as_str().unwrap().to_owned());
    }
    assert!(
        numbers.contains(&q.civic_no),
        "the unit's pupil is not among its items"
    );
    assert_eq!(
        e.count("audit_events").await - reads_before,
        items.len() as i64
    );
    let counts = e
        .ok(
            StatusCode::OK,
            "GET",
            "/api/v1/intake/counts",
            CENTRAL,
            None,
        )
        .await;
    assert_eq!(counts.as_array().unwrap().len(), want.len());
    assert!(!counts.to_string().contains(&q.civic_no));
    let status = e
        .ok(StatusCode::OK, "GET", "/api/v1/hub/status", CENTRAL, None)
        .await;
    assert_eq!(
        status["intake"].as_i64().unwrap() as usize,
        pupils.len() - 1
    );

    // The same read again changes nothing.
    let again = hub::apply(
        &e.vault,
        read(&hub, None).await,
        true,
        UnitCodeFrom::SchoolUnitCode,
        since,
    )
    .await
    .unwrap();
    assert_eq!((again.linked, again.intake_new, again.lifted), (0, 0, 0));
    assert_eq!(e.count("hub_intake").await as usize, pupils.len() - 1);

    // The school opens a case for a waiting pupil: the next read links it and closes
    // the intake item (its key shredded).
    let q = &pupils[1];
    e.walk()
        .open(json!({"country": "se", "personal_number": q.civic_no,
                     "first_name": q.given_name, "last_name": q.family_name,
                     "birth_date": q.birth_date}))
        .await;
    // A marking lifted in the hub is shown, not acted on; a pupil newly marked is taken
    // out of what the feed serves at once and waits as an intake item.
    hub.set_marking(&pupils[2].id, "Ingen").unwrap();
    let unmarked = read(&hub, None)
        .await
        .persons
        .into_iter()
        .find(|x| !x.value.enrolments.is_empty() && x.value.id.to_string() != pupils[2].id)
        .unwrap();
    let newly = unmarked.value.id.to_string();
    hub.change("persons", &newly, |v| {
        v["securityMarking"] = json!("Skyddad folkbokföring")
    })
    .unwrap();
    let changes = hub::apply(
        &e.vault,
        read(&hub, Some(since)).await,
        false,
        UnitCodeFrom::SchoolUnitCode,
        since,
    )
    .await
    .unwrap();
    assert_eq!(changes.linked, 1);
    assert_eq!(changes.lifted, 1);
    assert_eq!(changes.quarantined, 1);
    assert_eq!(changes.intake_new, 1);
    assert_eq!(e.count("hub_intake").await as usize, pupils.len() - 1);
    let kept: i64 = {
        use sqlx::Row;
        sqlx::query("SELECT COUNT(*) AS n FROM hub_entities WHERE resource = 'persons' AND (id = $1 OR id = $2)")
            .bind(&newly)
            .bind(&pupils[2].id)
            .fetch_one(e.vault.db().pool())
            .await
            .unwrap()
            .try_get("n")
            .unwrap()
    };
    assert_eq!(
        kept, 0,
        "a newly marked or a lifted person is in what the feed serves"
    );
    // No group kept for the feed names a marked person as a member.
    let groups = {
        use sqlx::Row;
        sqlx::query("SELECT raw FROM hub_entities WHERE resource = 'groups'")
            .fetch_all(e.vault.db().pool())
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.try_get::<String, _>("raw").unwrap())
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(!groups.contains(&newly));
    nothing_marked_in_plaintext(&e, &hub);

    // The hub lifts the linked pupil's marking: the case page says so, as a reason to
    // review; the case is not touched otherwise and the pupil stays out of the feed.
    let case_path = format!("/api/v1/cases/{case}");
    let view = e
        .ok(StatusCode::OK, "GET", &case_path, "skola-p", None)
        .await;
    assert!(view["hub"]["marking_lifted_at"].is_null(), "{view}");
    assert_eq!(view["unit"], p.unit_code.as_str());
    let since2: DateTime<Utc> = hub.now_stamp().parse().unwrap();
    hub.set_marking(&pupils[0].id, "Ingen").unwrap();
    let lifted = hub::apply(
        &e.vault,
        read(&hub, Some(since2)).await,
        false,
        UnitCodeFrom::SchoolUnitCode,
        since2,
    )
    .await
    .unwrap();
    assert_eq!(lifted.lifted, 1);
    let view = e
        .ok(StatusCode::OK, "GET", &case_path, "skola-p", None)
        .await;
    assert!(view["hub"]["marking_lifted_at"].is_string(), "{view}");
    assert_eq!(view["state"], "open");
    nothing_marked_in_plaintext(&e, &hub);
    hub.validate().unwrap();
}
both_backends!(a_read_links_the_case_makes_intake_items_and_keeps_no_marked_person);

async fn the_service_reads_the_hub_on_demand_and_records_a_failed_read(
    db: fiktiv_tests::TestDatabase,
) {
    let hub = TestHub::start(600, 5).unwrap();
    let config = hub_config(&hub, "page_size = 100\n", "");
    let e = env_with(db, at(2026, 9, 1), config).await;

    // No secret yet: a clear error, recorded, nothing read.
    let err = fiktiv_app::hub::read_now(&e.ctx, false, &mut |_| {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), "hub.no-secret");
    assert!(err.to_string().contains("fiktiv hub secret"), "{err}");
    assert_eq!(hub.requests(), 0);

    fiktiv_routine::hub::set_secret(&e.vault, hub.token(), "test")
        .await
        .unwrap();
    // The secret is sealed: not in the database's bytes.
    let bytes = e.db.raw_bytes().unwrap();
    assert!(!crate::support::bytes_contain(
        &bytes,
        hub.token().as_bytes()
    ));

    // The first read is a full one (no good read yet), with progress per page.
    let mut pages = 0;
    let r = fiktiv_app::hub::read_now(&e.ctx, false, &mut |_| pages += 1)
        .await
        .unwrap();
    assert_eq!(r.persons + r.marked, hub.count("persons"));
    assert!(pages >= hub.count("persons") / 100);
    let status = fiktiv_routine::hub::status(&e.vault).await.unwrap();
    assert!(status.last_good_at.is_some() && status.last_error.is_none());
    assert_eq!(status.intake as usize, hub.marked_pupils().len());
    let kept = e.count("hub_entities").await;

    assert!(status.running.is_none());

    // A read in the middle (the hub holds its groups): the status shows how far it has
    // come, through the API; once it is done, nothing runs.
    hub.hold("groups");
    let ctx = e.ctx.clone();
    let running =
        tokio::spawn(async move { fiktiv_app::hub::read_now(&ctx, true, &mut |_| {}).await });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    let seen = loop {
        let s = e
            .ok(StatusCode::OK, "GET", "/api/v1/hub/status", CENTRAL, None)
            .await;
        if s["running"]["stage"] == "persons"
            && s["running"]["items"].as_u64() == Some(hub.count("persons") as u64)
        {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the progress of the running read never showed: {s}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(seen["running"]["full"], true, "{seen}");
    assert!(seen["running"]["pages"].as_u64().unwrap() >= (hub.count("persons") / 100) as u64);
    hub.release("groups");
    running.await.unwrap().unwrap();
    let status = fiktiv_routine::hub::status(&e.vault).await.unwrap();
    assert!(status.running.is_none(), "{status:?}");
    assert_eq!(e.count("hub_entities").await, kept);

    // The hub goes down: the read fails with its code, recorded and audited; what was
    // kept stays as it was.
    hub.set_fault("persons", fiktiv_tests::HubFault::Unavailable);
    let err = fiktiv_app::hub::read_now(&e.ctx, false, &mut |_| {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), "hub.status");
    let after = fiktiv_routine::hub::status(&e.vault).await.unwrap();
    assert_eq!(after.last_error.as_deref(), Some("hub.status"));
    assert_eq!(after.last_good_at, status.last_good_at);
    assert_eq!(e.count("hub_entities").await, kept);
    let failed: i64 = {
        use sqlx::Row;
        sqlx::query("SELECT COUNT(*) AS n FROM audit_events WHERE action = 'hub.read' AND outcome = 'failed'")
            .fetch_one(e.vault.db().pool())
            .await
            .unwrap()
            .try_get("n")
            .unwrap()
    };
    // The read without a secret and this one.
    assert_eq!(failed, 2);

    // Back up: the next read asks for changes only (meta.modified.after), and succeeds.
    hub.clear_faults();
    let before = hub.requests();
    fiktiv_app::hub::read_now(&e.ctx, false, &mut |_| {})
        .await
        .unwrap();
    assert!(
        hub.requests() - before <= 6,
        "a read of changes read everything"
    );

    // A full read asked for through the API runs in the background: the status shows
    // when it is done (waited for with a generous deadline, as on a loaded machine).
    let before = hub.requests();
    e.clock.advance(chrono::TimeDelta::seconds(1));
    let status = e
        .ok(
            StatusCode::ACCEPTED,
            "POST",
            "/api/v1/hub/read",
            CENTRAL,
            None,
        )
        .await;
    let good_before = status["last_good_at"].clone();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    loop {
        let s = e
            .ok(StatusCode::OK, "GET", "/api/v1/hub/status", CENTRAL, None)
            .await;
        if s["last_good_at"] != good_before && hub.requests() - before >= 4 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the asked-for read did not finish: {s}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (s, _) = e.call("POST", "/api/v1/hub/read", SCHOOL_A, None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    hub.validate().unwrap();
}
both_backends!(the_service_reads_the_hub_on_demand_and_records_a_failed_read);

/// The school opens the case of an intake item through the API: nothing typed, the case
/// linked at once, the item gone; the same item again is not found; another unit's
/// school may not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_is_opened_from_an_intake_item_through_the_api() {
    let hub = TestHub::start(400, 17).unwrap();
    let mut e = env(
        fiktiv_tests::TestDatabase::sqlite().unwrap(),
        at(2026, 9, 1),
    )
    .await;
    let since: DateTime<Utc> = hub.now_stamp().parse().unwrap();
    hub::apply(
        &e.vault,
        read(&hub, None).await,
        true,
        UnitCodeFrom::SchoolUnitCode,
        since,
    )
    .await
    .unwrap();
    let unit = hub.marked_pupils()[0].unit_code.clone();
    let t = fiktiv_staff::tokens::create(
        &e.vault,
        "test",
        "skola-hub",
        &[fiktiv_policies::Role::School],
        std::slice::from_ref(&unit),
        30,
    )
    .await
    .unwrap();
    e.tokens.insert("skola-hub", t.secret.to_string());
    let list = format!("/api/v1/units/{unit}/intake");
    let items = e.ok(StatusCode::OK, "GET", &list, "skola-hub", None).await;
    let n = items.as_array().unwrap().len();
    let id = items[0]["intake_id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/units/{unit}/intake/{id}/case");
    let (s, _) = e.call("POST", &path, SCHOOL_A, None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let opened = e
        .ok(StatusCode::CREATED, "POST", &path, "skola-hub", None)
        .await;
    assert_eq!(opened["unit"], unit.as_str());
    let items = e.ok(StatusCode::OK, "GET", &list, "skola-hub", None).await;
    assert_eq!(items.as_array().unwrap().len(), n - 1);
    assert_eq!(e.count("hub_links").await, 1);
    let (s, _) = e.call("POST", &path, "skola-hub", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // The case has the pupil's real identity from the hub: the school reads it back.
    let case = opened["case_id"].as_str().unwrap();
    let identity = e
        .ok(
            StatusCode::OK,
            "GET",
            &format!("/api/v1/cases/{case}/identity"),
            "skola-hub",
            None,
        )
        .await;
    assert!(hub
        .marked_pupils()
        .iter()
        .any(|p| identity.to_string().contains(&p.civic_no)));
}

/// The hub over HTTPS with a certificate of the municipality's own CA: refused without
/// `ca_file` (the public roots do not know it; nothing read, nothing kept), read with it,
/// the OAuth token endpoint included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_is_read_over_tls_trusting_its_ca_file() {
    let hub = TestHub::start_tls(300, 13).unwrap();
    assert!(hub.base_url().starts_with("https://localhost:"));
    let ca = hub.ca_file().unwrap().to_owned();
    let config = |with_ca: bool, oauth: bool| {
        let mut toml = format!(
            "[ss12000]\nbase_url = \"{}\"\nread_every_minutes = 0\n",
            hub.base_url()
        );
        if with_ca {
            toml.push_str(&format!("ca_file = \"{}\"\n", ca.display()));
        }
        if oauth {
            toml.push_str(&format!(
                "auth = \"client-credentials\"\ntoken_url = \"{}\"\nclient_id = \"fiktiv\"\n",
                hub.token_url()
            ));
        }
        fiktiv_app::config::Config::parse(&toml, "hub.toml").unwrap()
    };

    let e = env_with(
        fiktiv_tests::TestDatabase::sqlite().unwrap(),
        at(2026, 9, 1),
        config(false, false),
    )
    .await;
    hub::set_secret(&e.vault, hub.token(), "test")
        .await
        .unwrap();
    let err = fiktiv_app::hub::read_now(&e.ctx, true, &mut |_| {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), "hub.unreachable", "{err}");
    assert_eq!(hub.requests(), 0, "a request got past the TLS handshake");
    assert_eq!(e.count("hub_entities").await, 0);

    for oauth in [false, true] {
        let e = env_with(
            fiktiv_tests::TestDatabase::sqlite().unwrap(),
            at(2026, 9, 1),
            config(true, oauth),
        )
        .await;
        let secret = if oauth {
            hub.client_secret()
        } else {
            hub.token()
        };
        hub::set_secret(&e.vault, secret, "test").await.unwrap();
        let r = fiktiv_app::hub::read_now(&e.ctx, true, &mut |_| {})
            .await
            .unwrap();
        assert_eq!(r.persons + r.marked, hub.count("persons"), "oauth {oauth}");
        assert!(r.marked > 0);
    }
    hub.validate().unwrap();
}

/// A read cut off in the middle (the process stops while the hub is being paged) leaves
/// nothing half done, stops showing as running once its progress is old, and is done
/// again by the next scheduled read, from the last good one (here none: a full read).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_cut_off_is_done_again_by_the_next_scheduled_read() {
    let hub = TestHub::start(400, 17).unwrap();
    let config = hub_config(
        &hub,
        "page_size = 50\nread_every_minutes = 15\nfull_read_every_hours = 24\n",
        "",
    );
    let e = env_with(
        fiktiv_tests::TestDatabase::sqlite().unwrap(),
        at(2026, 9, 1),
        config,
    )
    .await;
    hub::set_secret(&e.vault, hub.token(), "test")
        .await
        .unwrap();

    // The scheduled full read, held at the hub's groups, then cut off.
    hub.hold("groups");
    let ctx = e.ctx.clone();
    let reading = tokio::spawn(async move { fiktiv_app::hub::run_due(&ctx).await });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    loop {
        let s = hub::status(&e.vault).await.unwrap();
        if s.running
            .as_ref()
            .is_some_and(|r| r.stage == "persons" && r.items as usize == hub.count("persons"))
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the read never reached the groups: {s:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    reading.abort();
    assert!(reading.await.unwrap_err().is_cancelled());
    hub.release("groups");
    // Nothing of it was kept.
    assert_eq!(e.count("hub_entities").await, 0);
    assert_eq!(e.count("hub_intake").await, 0);
    let s = hub::status(&e.vault).await.unwrap();
    assert!(s.last_good_at.is_none());
    // Its progress stops showing as running once it is old.
    e.clock
        .advance(hub::PROGRESS_STALE + chrono::TimeDelta::seconds(1));
    assert!(hub::status(&e.vault).await.unwrap().running.is_none());

    // The next scheduled read (of changes, the full read's time not yet come again)
    // reads everything, since no read has succeeded yet.
    let r = fiktiv_app::hub::run_due(&e.ctx).await.unwrap().unwrap();
    assert_eq!(r.persons + r.marked, hub.count("persons"));
    let s = hub::status(&e.vault).await.unwrap();
    assert!(s.last_good_at.is_some() && s.running.is_none());
    assert!(e.count("hub_entities").await > 0);
}

/// Two reads at once, the one that started first applied last: the time the next read
/// of changes asks from stays the later read's. (It moved back before: the feed then
/// saw the hub "changed since the last read" and answered 503 although everything was
/// taken in, and the next read asked again for what was read.)
async fn a_slower_older_read_does_not_move_the_next_reads_start_back(
    db: fiktiv_tests::TestDatabase,
) {
    let e = env(db, at(2026, 9, 1)).await;
    let older = e.vault.now() - chrono::TimeDelta::minutes(10);
    let newer = e.vault.now() - chrono::TimeDelta::minutes(5);
    let apply = |after| {
        hub::apply(
            &e.vault,
            Snapshot::default(),
            false,
            UnitCodeFrom::SchoolUnitCode,
            after,
        )
    };
    apply(newer).await.unwrap();
    apply(older).await.unwrap();
    let after = |s: hub::HubStatus| -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s.changes_after.as_deref().unwrap())
            .unwrap()
            .with_timezone(&Utc)
    };
    assert_eq!(after(hub::status(&e.vault).await.unwrap()), newer);
    // A read that started later still moves it on.
    let latest = e.vault.now();
    apply(latest).await.unwrap();
    assert_eq!(after(hub::status(&e.vault).await.unwrap()), latest);
}
both_backends!(a_slower_older_read_does_not_move_the_next_reads_start_back);
