//! Backup and restore on real SQLite and PostgreSQL: everything comes back, a tampered
//! archive is refused before anything is written, and a shredded case stays shredded.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use std::sync::Arc;

use chrono::{NaiveDate, TimeZone, Utc};
use fiktiv_tests::TestDatabase;
use fiktiv_vault::audit::{self, NewEvent, Outcome};
use fiktiv_vault::backup::{self, BackupError};
use fiktiv_vault::ids::PersonalNumber;
use fiktiv_vault::{
    CaseId, Db, KeyRing, ManualClock, ReadContext, RealIdentity, RealName, RootKey, Vault,
    VaultError,
};

fn clock() -> ManualClock {
    ManualClock::new(Utc.with_ymd_and_hms(2026, 9, 1, 8, 0, 0).unwrap())
}

async fn vault(tdb: &TestDatabase, root: &RootKey) -> Vault {
    let db = Db::connect(tdb.url()).await.unwrap();
    Vault::new(db, KeyRing::new(root.clone()).unwrap(), Arc::new(clock()))
}

fn person(serial: u16, first: &str) -> RealIdentity {
    let n =
        fiktiv_vault::ids::make_se_number(NaiveDate::from_ymd_opt(2012, 5, 17).unwrap(), serial)
            .unwrap();
    let number = PersonalNumber::parse(&n, NaiveDate::from_ymd_opt(2026, 9, 1).unwrap()).unwrap();
    RealIdentity {
        birth_date: number.birth_date(),
        number,
        first_name: RealName::new(first),
        last_name: RealName::new("Backupsson"),
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
            actor: "school:t",
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
    actor: "t",
    action: "case.read-identity",
    purpose: "restore check",
};

async fn round_trip(from: TestDatabase, to: TestDatabase) {
    let root = RootKey::generate();
    let v = vault(&from, &root).await;
    let a = person(11, "Alva");
    let b = person(22, "Bo");
    let ca = open_case(&v, &a).await;
    let cb = open_case(&v, &b).await;
    v.rotate("test").await.unwrap();
    let events_before = audit::verify(v.db().pool(), v.keys().audit())
        .await
        .unwrap()
        .events;
    let (archive, summary) =
        backup::create(v.db(), &root.backup_key().unwrap(), "2026-09-01T08:00:00Z")
            .await
            .unwrap();
    assert!(summary.rows > 0);
    // No plaintext of the identities in the archive.
    for needle in ["Alva", "Backupsson", a.number.canonical()] {
        assert!(!archive
            .windows(needle.len())
            .any(|w| w == needle.as_bytes()));
    }
    drop(v);
    drop(from); // the source database is destroyed

    let w = vault(&to, &root).await;
    let restored = backup::restore(w.db(), &root.backup_key().unwrap(), &archive)
        .await
        .unwrap();
    assert_eq!(restored.rows, summary.rows);
    let report = audit::verify(w.db().pool(), w.keys().audit())
        .await
        .unwrap();
    assert!(report.ok(), "{:?}", report.first_problem);
    assert_eq!(report.events, events_before);
    assert_eq!(w.read_identity(READ, &ca, "pupil").await.unwrap(), a);
    assert_eq!(w.read_identity(READ, &cb, "pupil").await.unwrap(), b);
    let versions = w.key_versions().await.unwrap();
    assert_eq!(versions.last().unwrap().state, "active");
    assert_eq!(versions.last().unwrap().data_keys, 2);
    // New work continues the restored chain.
    open_case(&w, &person(33, "Cim")).await;
    assert!(audit::verify(w.db().pool(), w.keys().audit())
        .await
        .unwrap()
        .ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_to_sqlite() {
    round_trip(
        TestDatabase::sqlite().unwrap(),
        TestDatabase::sqlite().unwrap(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_to_postgres() {
    round_trip(
        TestDatabase::postgres().unwrap(),
        TestDatabase::postgres().unwrap(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_to_postgres() {
    round_trip(
        TestDatabase::sqlite().unwrap(),
        TestDatabase::postgres().unwrap(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_or_foreign_archives_are_refused_and_nothing_is_written() {
    let root = RootKey::generate();
    let src = TestDatabase::sqlite().unwrap();
    let v = vault(&src, &root).await;
    open_case(&v, &person(44, "Dag")).await;
    let key = root.backup_key().unwrap();
    let (archive, _) = backup::create(v.db(), &key, "t").await.unwrap();

    let dst = TestDatabase::postgres().unwrap();
    let w = vault(&dst, &root).await;
    let mut bad = Vec::new();
    for i in [9, 20, 45, archive.len() / 2, archive.len() - 1] {
        let mut a = archive.clone();
        a[i] ^= 0x01;
        bad.push(a);
    }
    bad.push(archive[..archive.len() - 10].to_vec());
    let mut longer = archive.clone();
    longer.extend_from_slice(&[0, 0, 0, 0]);
    bad.push(longer);
    for a in &bad {
        let err = backup::restore(w.db(), &key, a).await.unwrap_err();
        assert!(
            matches!(err, BackupError::Integrity | BackupError::NotAnArchive),
            "{err}"
        );
    }
    let other = RootKey::generate().backup_key().unwrap();
    assert!(matches!(
        backup::restore(w.db(), &other, &archive).await.unwrap_err(),
        BackupError::Integrity
    ));
    assert!(matches!(
        backup::restore(w.db(), &key, b"not a backup")
            .await
            .unwrap_err(),
        BackupError::NotAnArchive
    ));
    // Nothing was written: the restore target is still empty.
    assert_eq!(
        audit::verify(w.db().pool(), w.keys().audit())
            .await
            .unwrap()
            .events,
        0
    );
    // The good archive restores, and a second restore into the now non-empty database is refused.
    backup::restore(w.db(), &key, &archive).await.unwrap();
    assert!(matches!(
        backup::restore(w.db(), &key, &archive).await.unwrap_err(),
        BackupError::NotEmpty(1)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_shredded_before_the_backup_cannot_be_recovered_from_it() {
    let root = RootKey::generate();
    let src = TestDatabase::postgres().unwrap();
    let v = vault(&src, &root).await;
    let gone = person(55, "Eira");
    let kept = person(66, "Folke");
    let cg = open_case(&v, &gone).await;
    let ck = open_case(&v, &kept).await;
    let mut tx = v.db().begin_write().await.unwrap();
    v.shred(&mut tx, &cg).await.unwrap();
    tx.commit().await.unwrap();
    let (archive, _) = backup::create(v.db(), &root.backup_key().unwrap(), "t")
        .await
        .unwrap();

    let dst = TestDatabase::sqlite().unwrap();
    let w = vault(&dst, &root).await;
    backup::restore(w.db(), &root.backup_key().unwrap(), &archive)
        .await
        .unwrap();
    assert!(matches!(
        w.read_identity(READ, &cg, "pupil").await.unwrap_err(),
        VaultError::NotFound | VaultError::NoKey
    ));
    assert_eq!(w.read_identity(READ, &ck, "pupil").await.unwrap(), kept);
    let idx = w.keys().blind().index(
        fiktiv_vault::IndexKind::PersonalNumber,
        gone.number.canonical(),
    );
    assert!(!w
        .blind_index_set()
        .await
        .unwrap()
        .contains(fiktiv_vault::IndexKind::PersonalNumber, &idx));
}
