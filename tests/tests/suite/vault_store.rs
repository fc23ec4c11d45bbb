//! The encrypted identity store and the audit trail, on real SQLite and PostgreSQL.
//! Every test runs on both backends.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use std::sync::Arc;

use chrono::{NaiveDate, TimeZone, Utc};
use fiktiv_tests::TestDatabase;
use fiktiv_vault::audit::{self, Finding, NewEvent, Outcome};
use fiktiv_vault::ids::PersonalNumber;
use fiktiv_vault::{
    CaseId, Db, IndexKind, KeyRing, ManualClock, ReadContext, RealIdentity, RealName, RootKey,
    Vault, VaultError,
};

const CANARY_FIRST: &str = "Åsa-Kanariefågel";
const CANARY_LAST: &str = "Zyxwvutsson";

async fn vault_on(db: &TestDatabase) -> (Vault, ManualClock) {
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 8, 1, 9, 0, 0).unwrap());
    let db = Db::connect(db.url()).await.unwrap();
    let keys = KeyRing::new(RootKey::generate()).unwrap();
    (Vault::new(db, keys, Arc::new(clock.clone())), clock)
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 8, 1).unwrap()
}

/// Valid test numbers, computed rather than typed: SE 2010-01-01 serial 0..,
/// NO 1 Jan 2001 with an individual number of 500 or more.
fn se(serial: u16) -> String {
    fiktiv_vault::ids::make_se_number(NaiveDate::from_ymd_opt(2010, 1, 1).unwrap(), serial).unwrap()
}

fn no() -> String {
    (500..1000)
        .find_map(|i| {
            let nine = format!("010101{i:03}");
            fiktiv_vault::ids::no_check_digits(&nine).map(|(a, b)| format!("{nine}{a}{b}"))
        })
        .unwrap()
}

fn identity(number: &str, first: &str, last: &str) -> RealIdentity {
    let number = PersonalNumber::parse(number, today()).unwrap();
    let birth_date = number.birth_date();
    RealIdentity {
        number,
        first_name: RealName::new(first),
        last_name: RealName::new(last),
        birth_date,
    }
}

async fn open_case(v: &Vault, who: &RealIdentity) -> CaseId {
    let case = CaseId::new();
    let mut tx = v.db().begin_write().await.unwrap();
    v.create_case_key(&mut tx, &case).await.unwrap();
    v.store_identity(&mut tx, &case, "pupil", who)
        .await
        .unwrap();
    v.audit(
        &mut tx,
        &NewEvent {
            actor: "school:test",
            action: "case.open",
            case_id: Some(case),
            purpose: None,
            outcome: Outcome::Ok,
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    case
}

const READ: ReadContext<'static> = ReadContext {
    actor: "school:test",
    action: "case.read-identity",
    purpose: "school case page",
};

macro_rules! both_backends {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(fiktiv_tests::TestDatabase::sqlite().unwrap()).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(fiktiv_tests::TestDatabase::postgres().unwrap()).await;
            }
        }
    };
}

async fn identity_round_trip_is_audited_first(tdb: TestDatabase) {
    let (v, _) = vault_on(&tdb).await;
    let who = identity(&se(0), CANARY_FIRST, CANARY_LAST);
    let case = open_case(&v, &who).await;
    let back = v.read_identity(READ, &case, "pupil").await.unwrap();
    assert_eq!(back, who);
    assert_eq!(back.number.canonical(), &se(0));
    let events = audit::list(
        v.db().pool(),
        &audit::Filter {
            case_id: Some(case),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(events[0].action, "case.read-identity");
    assert_eq!(events[0].purpose.as_deref(), Some("school case page"));
    // Only one identity per subject is current; a second store replaces the indexes.
    let idx = v.keys().blind().index(IndexKind::PersonalNumber, &se(0));
    let mut conn = v.db().pool().acquire().await.unwrap();
    assert_eq!(
        v.cases_with_index(&mut conn, IndexKind::PersonalNumber, &idx)
            .await
            .unwrap(),
        vec![case]
    );
}
both_backends!(identity_round_trip_is_audited_first);

async fn read_fails_when_audit_cannot_be_written(tdb: TestDatabase) {
    let (v, _) = vault_on(&tdb).await;
    let who = identity(&se(0), CANARY_FIRST, CANARY_LAST);
    let case = open_case(&v, &who).await;
    sqlx::query("ALTER TABLE audit_events RENAME TO audit_events_away")
        .execute(v.db().pool())
        .await
        .unwrap();
    let err = v.read_identity(READ, &case, "pupil").await.unwrap_err();
    assert!(matches!(err, VaultError::Audit(_)), "{err}");
    // The failed audit append changed nothing: the head did not move.
    sqlx::query("ALTER TABLE audit_events_away RENAME TO audit_events")
        .execute(v.db().pool())
        .await
        .unwrap();
    let report = audit::verify(v.db().pool(), v.keys().audit())
        .await
        .unwrap();
    assert!(report.ok(), "{:?}", report.first_problem);
    assert_eq!(report.events, 1);
}
both_backends!(read_fails_when_audit_cannot_be_written);

async fn rotation_rewraps_and_retires(tdb: TestDatabase) {
    let (v, _) = vault_on(&tdb).await;
    let people = [
        identity(&se(0), "Anna", "Berg"),
        identity(&se(1), "Björn", "Dahl"),
        identity(&no(), "Kari", "Nordmann"),
    ];
    let mut cases = Vec::new();
    for p in &people {
        cases.push(open_case(&v, p).await);
    }
    let report = v.rotate("test").await.unwrap();
    assert_eq!(report.new_version, 2);
    assert_eq!(report.rewrapped, 3);
    assert_eq!(report.retired, vec![1]);
    let versions = v.key_versions().await.unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(
        (versions[0].state.as_str(), versions[0].data_keys),
        ("retired", 0)
    );
    assert_eq!(
        (versions[1].state.as_str(), versions[1].data_keys),
        ("active", 3)
    );
    for (c, p) in cases.iter().zip(&people) {
        assert_eq!(&v.read_identity(READ, c, "pupil").await.unwrap(), p);
    }
    // A second rotation works too, and new cases use the newest version.
    v.rotate("test").await.unwrap();
    let late = open_case(&v, &identity(&se(0), "Cecilia", "Ek")).await;
    assert_eq!(
        v.read_identity(READ, &late, "pupil")
            .await
            .unwrap()
            .first_name
            .expose(),
        "Cecilia"
    );
    let versions = v.key_versions().await.unwrap();
    assert_eq!(versions.last().unwrap().data_keys, 4);
}
both_backends!(rotation_rewraps_and_retires);

async fn key_use_is_counted_and_limit_starts_a_new_version(tdb: TestDatabase) {
    let (v, _) = vault_on(&tdb).await;
    let v = v.with_kek_limit(2);
    for n in [se(0), se(1), no()] {
        open_case(&v, &identity(&n, "Anna", "Berg")).await;
    }
    let versions = v.key_versions().await.unwrap();
    assert_eq!(versions[0].encryptions, 2);
    assert_eq!(versions[0].state, "retiring");
    assert_eq!(versions[1].encryptions, 1);
    assert_eq!(versions[1].state, "active");
}
both_backends!(key_use_is_counted_and_limit_starts_a_new_version);

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

async fn shredding_destroys_everything(tdb: TestDatabase) {
    let (v, _) = vault_on(&tdb).await;
    let who = identity(&se(0), CANARY_FIRST, CANARY_LAST);
    let case = open_case(&v, &who).await;
    let other = open_case(&v, &identity(&se(1), "Björn", "Dahl")).await;
    let wrapped: Vec<u8> = {
        use sqlx::Row;
        sqlx::query("SELECT wrapped FROM case_keys WHERE case_id = $1")
            .bind(case.to_string())
            .fetch_one(v.db().pool())
            .await
            .unwrap()
            .try_get("wrapped")
            .unwrap()
    };
    let wrapped_hex = hex_lower(&wrapped);
    v.db().checkpoint().await.unwrap();
    let before = tdb.raw_bytes().unwrap();
    // Positive control: the scan can see the wrapped key before shredding.
    assert!(contains(&before, &wrapped) || contains(&before, wrapped_hex.as_bytes()));

    let mut tx = v.db().begin_write().await.unwrap();
    v.shred(&mut tx, &case).await.unwrap();
    tx.commit().await.unwrap();
    v.db().checkpoint().await.unwrap();

    assert!(matches!(
        v.read_identity(READ, &case, "pupil").await.unwrap_err(),
        VaultError::NotFound | VaultError::NoKey
    ));
    assert!(v.read_identity(READ, &other, "pupil").await.is_ok());
    let idx = v.keys().blind().index(IndexKind::PersonalNumber, &se(0));
    assert!(!v
        .blind_index_set()
        .await
        .unwrap()
        .contains(IndexKind::PersonalNumber, &idx));

    let after = tdb.raw_bytes().unwrap();
    assert!(
        !contains(&after, &wrapped),
        "wrapped data key still in the raw database"
    );
    assert!(
        !contains(&after, wrapped_hex.as_bytes()),
        "wrapped data key still in the dump"
    );
    for form in who.number.written_forms() {
        assert!(
            !contains(&after, form.as_bytes()),
            "a written form of the number is in the raw database"
        );
    }
    for canary in [
        CANARY_FIRST,
        CANARY_LAST,
        "Kanariefågel",
        "zyxwvutsson",
        "ZYXWVUTSSON",
    ] {
        assert!(
            !contains(&after, canary.as_bytes()),
            "canary name in the raw database"
        );
    }
}
both_backends!(shredding_destroys_everything);

fn hex_lower(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

async fn append_n(v: &Vault, n: usize) {
    for i in 0..n {
        let mut tx = v.db().begin_write().await.unwrap();
        v.audit(
            &mut tx,
            &NewEvent {
                actor: "tester",
                action: if i % 2 == 0 {
                    "case.open"
                } else {
                    "plan.write"
                },
                case_id: Some(CaseId::new()),
                purpose: Some("testing the chain"),
                outcome: Outcome::Ok,
            },
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
}

async fn verify(v: &Vault) -> Option<Finding> {
    audit::verify(v.db().pool(), v.keys().audit())
        .await
        .unwrap()
        .first_problem
}

async fn exec(v: &Vault, sql: &str) {
    sqlx::query(sql).execute(v.db().pool()).await.unwrap();
}

async fn audit_tampering_is_named(tdb: TestDatabase) {
    let (v, _) = vault_on(&tdb).await;
    append_n(&v, 10).await;
    assert_eq!(verify(&v).await, None);

    exec(
        &v,
        "UPDATE audit_events SET purpose = 'edited' WHERE seq = 4",
    )
    .await;
    assert_eq!(verify(&v).await, Some(Finding::Modified { seq: 4 }));
    exec(
        &v,
        "UPDATE audit_events SET purpose = 'testing the chain' WHERE seq = 4",
    )
    .await;
    assert_eq!(verify(&v).await, None);

    // Reorder: swap events 6 and 7.
    exec(&v, "UPDATE audit_events SET seq = -6 WHERE seq = 6").await;
    exec(&v, "UPDATE audit_events SET seq = 6 WHERE seq = 7").await;
    exec(&v, "UPDATE audit_events SET seq = 7 WHERE seq = -6").await;
    assert_eq!(verify(&v).await, Some(Finding::Reordered { seq: 6 }));
    exec(&v, "UPDATE audit_events SET seq = -6 WHERE seq = 7").await;
    exec(&v, "UPDATE audit_events SET seq = 7 WHERE seq = 6").await;
    exec(&v, "UPDATE audit_events SET seq = 6 WHERE seq = -6").await;
    assert_eq!(verify(&v).await, None);

    // Remove the last event: the head no longer matches.
    exec(&v, "DELETE FROM audit_events WHERE seq = 10").await;
    assert_eq!(
        verify(&v).await,
        Some(Finding::TailRemoved { after_seq: 9 })
    );

    // Remove one in the middle.
    exec(&v, "DELETE FROM audit_events WHERE seq = 3").await;
    assert_eq!(verify(&v).await, Some(Finding::Removed { before_seq: 4 }));
    // ... and renumber to hide the gap: still caught by the chain.
    for seq in 4..10 {
        exec(
            &v,
            &format!(
                "UPDATE audit_events SET seq = {} WHERE seq = {seq}",
                seq - 1
            ),
        )
        .await;
    }
    assert_eq!(verify(&v).await, Some(Finding::Removed { before_seq: 3 }));
}
both_backends!(audit_tampering_is_named);

async fn audit_refuses_personal_numbers_in_purpose(tdb: TestDatabase) {
    let (v, _) = vault_on(&tdb).await;
    let mut tx = v.db().begin_write().await.unwrap();
    let err = v
        .audit(
            &mut tx,
            &NewEvent {
                actor: "tester",
                action: "reveal.request",
                case_id: None,
                purpose: Some("check 121212-1212 please"),
                outcome: Outcome::Ok,
            },
        )
        .await
        .unwrap_err();
    assert!(!err.to_string().contains("1212"), "{err}");
    drop(tx);
    assert_eq!(
        audit::verify(v.db().pool(), v.keys().audit())
            .await
            .unwrap()
            .events,
        0
    );
}
both_backends!(audit_refuses_personal_numbers_in_purpose);

async fn concurrent_appends_keep_one_chain(tdb: TestDatabase) {
    let (v, _) = vault_on(&tdb).await;
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let v = v.clone();
        tasks.push(tokio::spawn(async move { append_n(&v, 10).await }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let report = audit::verify(v.db().pool(), v.keys().audit())
        .await
        .unwrap();
    assert!(report.ok(), "{:?}", report.first_problem);
    assert_eq!(report.events, 40);
}
both_backends!(concurrent_appends_keep_one_chain);

async fn identities_open_only_through_the_audited_read(tdb: TestDatabase) {
    let (v, _) = vault_on(&tdb).await;
    let who = identity(&se(0), CANARY_FIRST, CANARY_LAST);
    let case = open_case(&v, &who).await;
    let sealed = {
        use sqlx::Row;
        let r = sqlx::query("SELECT dk_version, sealed FROM sealed_records WHERE case_id = $1")
            .bind(case.to_string())
            .fetch_one(v.db().pool())
            .await
            .unwrap();
        fiktiv_vault::Sealed {
            dk_version: r.try_get::<i64, _>("dk_version").unwrap() as u32,
            bytes: r.try_get("sealed").unwrap(),
        }
    };
    let mut conn = v.db().pool().acquire().await.unwrap();
    let err = v
        .open(&mut conn, &case, "identity:pupil", &sealed)
        .await
        .unwrap_err();
    assert!(matches!(err, VaultError::IdentityNeedsAuditedRead), "{err}");
}
both_backends!(identities_open_only_through_the_audited_read);

async fn key_check_refuses_another_root_key_and_empty_trail_is_caught(tdb: TestDatabase) {
    let (v, _) = vault_on(&tdb).await;
    v.check_key().await.unwrap();
    v.check_key().await.unwrap();
    append_n(&v, 2).await;
    let other = Vault::new(
        Db::connect(tdb.url()).await.unwrap(),
        KeyRing::new(RootKey::generate()).unwrap(),
        Arc::new(ManualClock::new(Utc::now())),
    );
    assert!(matches!(
        other.check_key().await.unwrap_err(),
        VaultError::WrongKey
    ));
    // Removing every event and resetting the head is not "0 events, ok".
    exec(&v, "DELETE FROM audit_events").await;
    exec(&v, "UPDATE audit_head SET seq = 0, hash = '0000000000000000000000000000000000000000000000000000000000000000', mac = ''").await;
    assert_eq!(
        verify(&v).await,
        Some(Finding::TailRemoved { after_seq: 0 })
    );
}
both_backends!(key_check_refuses_another_root_key_and_empty_trail_is_caught);

/// The name-part pre-filter: present when every identity has its sealed tags, gone
/// (with the matcher falling back to indexing everything) when one lacks them or one
/// fails to open, and back after `reindex`, which reads each identity through the
/// audited read. Equal names give unequal rows.
async fn name_part_tags_are_sealed_complete_or_absent(tdb: TestDatabase) {
    let (v, _) = vault_on(&tdb).await;
    let a = open_case(&v, &identity(&se(0), "Anna", "Svensson")).await;
    let b = open_case(&v, &identity(&se(1), "Anna", "Dahl")).await;
    let rows = |kind: &'static str| {
        let pool = v.db().pool().clone();
        async move {
            use sqlx::Row;
            sqlx::query("SELECT idx, case_id FROM blind_indexes WHERE kind = $1 ORDER BY case_id")
                .bind(kind)
                .fetch_all(&pool)
                .await
                .unwrap()
                .into_iter()
                .map(|r| (r.get::<String, _>("idx"), r.get::<String, _>("case_id")))
                .collect::<Vec<_>>()
        }
    };
    // Two rows per identity (one per spelling, as many whatever the names hold), each
    // sealed with its own nonce: no two rows are equal, not even an identity's two rows
    // of the same spelling.
    let tags = rows("name-parts").await;
    assert_eq!(tags.len(), 4);
    let distinct: std::collections::BTreeSet<&String> = tags.iter().map(|t| &t.0).collect();
    assert_eq!(distinct.len(), 4, "equal names gave equal rows");
    let key = v.keys().name_parts();
    let set = v.blind_index_set().await.unwrap();
    let filter = set.name_parts().expect("every identity is tagged");
    assert!(filter.given(key.tag("anna")));
    assert!(filter.family(key.tag("svensson")) && filter.family(key.tag("dahl")));
    assert!(!filter.family(key.tag("anna")) && !filter.given(key.tag("dahl")));
    // With the tags of the names' prefixes: a half that starts a real name part may
    // grow, one that starts none is cut short.
    use fiktiv_vault::NamePartFilter as F;
    assert!(filter.prefixes_complete());
    assert!(filter.may_extend(filter.bits(key.tag("ann")), 3, F::GIVEN_PREFIX));
    assert!(filter.may_extend(filter.bits(key.tag("sven")), 4, F::FAMILY_PREFIX));
    assert!(!filter.may_extend(filter.bits(key.tag("sven")), 4, F::GIVEN_PREFIX));
    assert!(!filter.may_extend(
        filter.bits(key.tag("anx")),
        3,
        F::GIVEN_PREFIX | F::FAMILY_PREFIX
    ));

    // An identity stored by an older version: no tags, no filter.
    exec(
        &v,
        &format!("DELETE FROM blind_indexes WHERE kind = 'name-parts' AND case_id = '{b}'"),
    )
    .await;
    assert!(v.blind_index_set().await.unwrap().name_parts().is_none());
    // A row moved to another case does not open: still no filter.
    exec(
        &v,
        &format!(
            "INSERT INTO blind_indexes (kind, idx, case_id, subject) \
             SELECT kind, idx, '{b}', subject FROM blind_indexes WHERE kind = 'name-parts' AND case_id = '{a}'"
        ),
    )
    .await;
    assert!(v.blind_index_set().await.unwrap().name_parts().is_none());
    exec(
        &v,
        &format!("DELETE FROM blind_indexes WHERE kind = 'name-parts' AND case_id = '{b}'"),
    )
    .await;

    // Re-indexing restores it, one audited read per identity.
    assert_eq!(v.reindex("cli").await.unwrap(), 2);
    let set = v.blind_index_set().await.unwrap();
    assert!(set.name_parts().unwrap().family(key.tag("dahl")));
    assert_eq!(rows("name-parts").await.len(), 4);
    assert_eq!(rows("pnr").await.len(), 2);
    for case in [a, b] {
        let events = audit::list(
            v.db().pool(),
            &audit::Filter {
                case_id: Some(case),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert!(events
            .iter()
            .any(|e| e.action == "keys.reindex" && e.purpose.as_deref() == Some("reindex")));
    }
}
both_backends!(name_part_tags_are_sealed_complete_or_absent);

/// Writers that reach the key-use limit at the same time start one new version between
/// them, and every write succeeds (on PostgreSQL, where they really run at once).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_at_the_key_use_limit_start_one_version_each_time() {
    let tdb = TestDatabase::postgres().unwrap();
    let (v, _) = vault_on(&tdb).await;
    let v = Arc::new(v.with_kek_limit(3));
    for round in 0..3u16 {
        let mut tasks = Vec::new();
        for n in 0..12u16 {
            let v = v.clone();
            tasks.push(tokio::spawn(async move {
                let case = CaseId::new();
                let mut tx = v.db().begin_write().await?;
                v.create_case_key(&mut tx, &case).await?;
                tx.commit().await.map_err(VaultError::from)?;
                Ok::<u16, VaultError>(n)
            }));
        }
        for t in tasks {
            t.await
                .unwrap()
                .unwrap_or_else(|e| panic!("round {round}: {e}"));
        }
        let versions = v.key_versions().await.unwrap();
        let active = versions.iter().filter(|k| k.state == "active").count();
        assert_eq!(active, 1, "round {round}: {versions:?}");
    }
}
