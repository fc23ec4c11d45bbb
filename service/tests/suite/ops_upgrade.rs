//! Upgrades: a database made by an older version is migrated at start (`Db::connect`)
//! and everything in it stays valid. SQLite and PostgreSQL.
//!
//! The fixtures in `tests/fixtures/` hold the rows of a database at an older schema
//! version, with the (test-only) root key that sealed them:
//!
//! - `db-v0001.json`: after migration 0001 only (the vault: a case key, a sealed
//!   identity, blind indexes, audit events);
//! - `db-v0005.json`: after migrations 0001 to 0005, the schema before the operations
//!   migration: a pupil through the whole routine (plan, decision, fictitious identity,
//!   order, registration), provisioned to the embedded roster, a leak scan, API tokens,
//!   and a run left `running` by a stopped process of that version.
//!
//! Each test makes a fresh database, runs the old migrations only (read from
//! `vault/migrations/<backend>/`, so the checksums are the real ones), loads the rows,
//! then opens it with the current code and checks the data and the audit chain.
//! The fixture writer makes the fixtures again:
//! `FIKTIV_UPDATE_FIXTURES=1 cargo test -p fiktiv --test suite fixture_writer_matches`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use crate::support::api;
use crate::support::ops;

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Arc;

use api::at;
use chrono::NaiveDate;
use fiktiv_app::config::Config;
use fiktiv_tests::TestDatabase;
use fiktiv_vault::audit::{self, NewEvent, Outcome};
use fiktiv_vault::ids::PersonalNumber;
use fiktiv_vault::{
    CaseId, Db, KeyRing, ManualClock, ReadContext, RealIdentity, RealName, RootKey, Vault,
};
use ops::Registrar;
use serde_json::{json, Value};
use sqlx::AnyPool;
use sqlx::Row;

const READ: ReadContext<'static> = ReadContext {
    actor: "school:test",
    action: "case.read-identity",
    purpose: "upgrade test",
};

fn fixture_path(version: i64) -> PathBuf {
    fixture_path_in(
        &fiktiv_tests::workspace_root().join("tests/fixtures"),
        version,
    )
}

fn fixture_path_in(dir: &std::path::Path, version: i64) -> PathBuf {
    dir.join(format!("db-v{version:04}.json"))
}

fn migrations_dir(backend: &str) -> PathBuf {
    fiktiv_tests::workspace_root()
        .join("vault/migrations")
        .join(backend)
}

/// The pupil of the v0001 fixture.
fn identity() -> RealIdentity {
    let n = fiktiv_vault::ids::make_se_number(NaiveDate::from_ymd_opt(2013, 4, 9).unwrap(), 77)
        .unwrap();
    let number = PersonalNumber::parse(&n, NaiveDate::from_ymd_opt(2026, 3, 2).unwrap()).unwrap();
    RealIdentity {
        birth_date: number.birth_date(),
        number,
        first_name: RealName::new("Uppgradera"),
        last_name: RealName::new("Fixtursson"),
    }
}

/// Runs the migrations up to `version` only, from the source folder.
async fn migrate_to(pool: &AnyPool, backend: &str, version: i64) {
    let mut m = sqlx::migrate::Migrator::new(migrations_dir(backend))
        .await
        .unwrap();
    m.migrations = Cow::Owned(
        m.migrations
            .iter()
            .filter(|x| x.version <= version)
            .cloned()
            .collect(),
    );
    m.run(pool).await.unwrap();
}

async fn pool(url: &str) -> AnyPool {
    sqlx::any::install_default_drivers();
    AnyPool::connect(url).await.unwrap()
}

/// Tables first that others reference.
fn table_order(names: &mut [String]) {
    names.sort_by_key(|n| (n != "key_versions" && n != "staff_users", n.clone()));
}

// ---------------------------------------------------------------------------
// Writing the fixtures
// ---------------------------------------------------------------------------

/// The rows of `src` (SQLite) in the tables and columns that exist at `version`.
async fn dump(src: &str, version: i64) -> Value {
    let scratch = TestDatabase::sqlite().unwrap();
    let old = pool(scratch.url()).await;
    migrate_to(&old, "sqlite", version).await;
    let mut names: Vec<String> = sqlx::query(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
         AND name <> '_sqlx_migrations'",
    )
    .fetch_all(&old)
    .await
    .unwrap()
    .iter()
    .map(|r| r.get("name"))
    .collect();
    table_order(&mut names);
    let src = pool(src).await;
    let mut tables = Vec::new();
    for t in names {
        let cols: Vec<(String, String)> =
            sqlx::query("SELECT name, type FROM pragma_table_info($1) ORDER BY cid")
                .bind(&t)
                .fetch_all(&old)
                .await
                .unwrap()
                .iter()
                .map(|r| (r.get("name"), r.get("type")))
                .collect();
        let list = cols
            .iter()
            .map(|(c, _)| c.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let mut rows = Vec::new();
        for r in sqlx::query(&format!("SELECT {list} FROM {t} ORDER BY 1"))
            .fetch_all(&src)
            .await
            .unwrap()
        {
            let mut row = Vec::new();
            for (c, ty) in &cols {
                row.push(match ty.as_str() {
                    "BIGINT" => json!(r.get::<Option<i64>, _>(c.as_str())),
                    "BLOB" => match r.get::<Option<Vec<u8>>, _>(c.as_str()) {
                        Some(b) => json!({ "hex": hex::encode(b) }),
                        None => Value::Null,
                    },
                    _ => json!(r.get::<Option<String>, _>(c.as_str())),
                });
            }
            rows.push(Value::Array(row));
        }
        tables.push(json!({ "name": t, "columns": cols, "rows": rows }));
    }
    json!({ "schema_version": version, "tables": tables })
}

async fn write_v0001(dir: &std::path::Path) {
    let src = TestDatabase::sqlite().unwrap();
    let root = RootKey::generate();
    let clock = ManualClock::new(at(2026, 3, 2));
    let v = Vault::new(
        Db::connect(src.url()).await.unwrap(),
        KeyRing::new(root.clone()).unwrap(),
        Arc::new(clock.clone()),
    );
    let case = CaseId::new();
    let mut tx = v.db().begin_write().await.unwrap();
    v.create_case_key(&mut tx, &case).await.unwrap();
    v.store_identity(&mut tx, &case, "pupil", &identity())
        .await
        .unwrap();
    for action in ["system.init", "case.open"] {
        v.audit(
            &mut tx,
            &NewEvent {
                actor: "school:test",
                action,
                case_id: Some(case),
                purpose: None,
                outcome: Outcome::Ok,
            },
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    clock.advance(chrono::TimeDelta::hours(1));
    assert_eq!(
        v.read_identity(READ, &case, "pupil").await.unwrap(),
        identity()
    );
    // Releases of this schema wrote no name-part tags.
    without_name_part_tags(&v).await;
    let mut fx = dump(src.url(), 1).await;
    fx["root_key"] = json!(root.to_base64().as_str());
    fx["case_id"] = json!(case.to_string());
    fx["comment"] = json!("test data only: a fictitious test pupil sealed under a throw-away key");
    std::fs::write(
        fixture_path_in(dir, 1),
        serde_json::to_string_pretty(&fx).unwrap() + "\n",
    )
    .unwrap();
}

/// Removes the sealed name-part tags, as a release before them left the vault, and the
/// indexes of the names' other spellings and the unused slots (a release before them
/// kept one full-name and one name + birth index per identity, of the stripped
/// spelling; the names of these fixtures have no other).
async fn without_name_part_tags(v: &Vault) {
    use sqlx::Row;
    sqlx::query("DELETE FROM blind_indexes WHERE kind = 'name-parts'")
        .execute(v.db().pool())
        .await
        .unwrap();
    let owners: Vec<(String, String)> =
        sqlx::query("SELECT DISTINCT case_id, subject FROM blind_indexes")
            .fetch_all(v.db().pool())
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get("case_id"), r.get("subject")))
            .collect();
    for (case, subject) in owners {
        for kind in [
            fiktiv_vault::IndexKind::FullName,
            fiktiv_vault::IndexKind::NameBirth,
        ] {
            // The spelling slots, and the initial + family slots after them.
            let slots =
                fiktiv_vault::identity::NAME_SPELLING_SLOTS + fiktiv_vault::identity::INITIAL_SLOTS;
            for slot in 0..slots {
                let pad = fiktiv_vault::identity::unused_slot_index(
                    v.keys().blind(),
                    kind,
                    &format!("{case}/{subject}"),
                    slot,
                );
                sqlx::query("DELETE FROM blind_indexes WHERE kind = $1 AND idx = $2")
                    .bind(kind.as_str())
                    .bind(pad.to_hex())
                    .execute(v.db().pool())
                    .await
                    .unwrap();
            }
        }
    }
    // The initial + family row of the fixtures' names (which have one spelling): the
    // vault writes an identity's rows in `blind_indexes` order, so the first name +
    // birth row of each identity (SQLite's rowid) is the plain spelling's, which a
    // release of that schema kept; the later one is the initial + family row.
    sqlx::query(
        "DELETE FROM blind_indexes WHERE kind IN ('full-name', 'name-birth') AND rowid NOT IN \
         (SELECT MIN(rowid) FROM blind_indexes WHERE kind IN ('full-name', 'name-birth') \
         GROUP BY kind, case_id, subject)",
    )
    .execute(v.db().pool())
    .await
    .unwrap();
}

async fn write_v0005(dir: &std::path::Path) {
    let src = TestDatabase::sqlite().unwrap();
    let root = RootKey::generate();
    let key = root.to_base64().to_string();
    let clock = ManualClock::new(at(2026, 3, 2));
    let config = Config::default();
    let r = Registrar::new(src.url(), &key, &config, Arc::new(clock.clone())).await;
    let case = r.pupil(7).await;
    fiktiv_delivery::worker::run_until_idle(&r.ctx.delivery, 100)
        .await
        .unwrap();
    let scan = fiktiv_delivery::checks::start(
        &r.ctx.delivery,
        "test",
        fiktiv_delivery::checks::RunScope::LeakScanAll,
        false,
    )
    .await
    .unwrap();
    assert_eq!(scan.state, "done");
    // A run that a stopped process of that version left running (no lease then).
    sqlx::query(
        "INSERT INTO prov_runs (run_id, kind, state, started_by, started_at, targets_total, \
         targets_done, items_done, findings) VALUES ('stale-run', 'account-check', 'running', \
         'system', '2026-03-02T09:30:00.000000Z', 1, 0, 0, 0)",
    )
    .execute(r.vault.db().pool())
    .await
    .unwrap();
    let plan = r
        .call(
            "GET",
            &format!("/api/v1/cases/{case}/plan"),
            &r.school,
            Value::Null,
            200,
        )
        .await;
    without_name_part_tags(&r.vault).await;
    let mut fx = dump(src.url(), 5).await;
    fx["root_key"] = json!(key);
    fx["case_id"] = json!(case);
    fx["school_token"] = json!(r.school);
    fx["central_token"] = json!(r.central);
    fx["plan"] = plan;
    fx["comment"] = json!("test data only: fictitious test pupils sealed under a throw-away key; the tokens open nothing else");
    std::fs::write(
        fixture_path_in(dir, 5),
        serde_json::to_string_pretty(&fx).unwrap() + "\n",
    )
    .unwrap();
}

/// The fixture writer still makes what is committed: the same schema version, tables
/// and row counts (the keys and ids are random, so not the same bytes). With
/// `FIKTIV_UPDATE_FIXTURES=1` it writes tests/fixtures/db-v*.json instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixture_writer_matches_the_committed_fixtures() {
    let update = std::env::var("FIKTIV_UPDATE_FIXTURES").as_deref() == Ok("1");
    let tmp = tempfile::tempdir().unwrap();
    let dir = if update {
        fiktiv_tests::workspace_root().join("tests/fixtures")
    } else {
        tmp.path().to_path_buf()
    };
    write_v0001(&dir).await;
    write_v0005(&dir).await;
    for version in [1, 5] {
        let made: Value =
            serde_json::from_str(&std::fs::read_to_string(fixture_path_in(&dir, version)).unwrap())
                .unwrap();
        let shape = |fx: &Value| -> Vec<(String, usize)> {
            fx["tables"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| {
                    (
                        t["name"].as_str().unwrap_or_default().to_owned(),
                        t["rows"].as_array().map_or(0, Vec::len),
                    )
                })
                .collect()
        };
        let committed = fixture(version);
        assert_eq!(made["schema_version"], committed["schema_version"]);
        assert_eq!(shape(&made), shape(&committed), "db-v{version:04}.json");
        assert!(!shape(&made).is_empty());
    }
}

// ---------------------------------------------------------------------------
// Upgrading
// ---------------------------------------------------------------------------

/// A fresh database at the fixture's schema version, holding its rows.
async fn load(db: &TestDatabase, fx: &Value) {
    let backend = if db.is_postgres() {
        "postgres"
    } else {
        "sqlite"
    };
    let p = pool(db.url()).await;
    migrate_to(&p, backend, fx["schema_version"].as_i64().unwrap()).await;
    for t in fx["tables"].as_array().unwrap() {
        let name = t["name"].as_str().unwrap();
        let cols: Vec<(String, String)> = serde_json::from_value(t["columns"].clone()).unwrap();
        // Rows a migration seeded (the audit head) are replaced by the fixture's.
        sqlx::query(&format!("DELETE FROM {name}"))
            .execute(&p)
            .await
            .unwrap();
        let list = cols
            .iter()
            .map(|(c, _)| c.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let params = (1..=cols.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!("INSERT INTO {name} ({list}) VALUES ({params})");
        for row in t["rows"].as_array().unwrap() {
            let mut q = sqlx::query(&sql);
            for ((_, ty), v) in cols.iter().zip(row.as_array().unwrap()) {
                q = match ty.as_str() {
                    "BIGINT" => q.bind(v.as_i64()),
                    "BLOB" => q.bind(v["hex"].as_str().map(|h| hex::decode(h).unwrap())),
                    _ => q.bind(v.as_str().map(str::to_owned)),
                };
            }
            q.execute(&p).await.unwrap();
        }
    }
    p.close().await;
}

fn fixture(version: i64) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture_path(version)).unwrap()).unwrap()
}

fn events_in(fx: &Value) -> u64 {
    fx["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "audit_events")
        .unwrap()["rows"]
        .as_array()
        .unwrap()
        .len() as u64
}

async fn schema_version(v: &Vault) -> i64 {
    sqlx::query("SELECT MAX(version) AS v FROM _sqlx_migrations")
        .fetch_one(v.db().pool())
        .await
        .unwrap()
        .get("v")
}

async fn upgrade_from_v0001(db: TestDatabase) {
    let fx = fixture(1);
    load(&db, &fx).await;
    let root = RootKey::from_base64(fx["root_key"].as_str().unwrap()).unwrap();
    let clock = ManualClock::new(at(2026, 9, 1));
    // Opening migrates to the latest schema.
    let v = Vault::new(
        Db::connect(db.url()).await.unwrap(),
        KeyRing::new(root).unwrap(),
        Arc::new(clock),
    );
    assert!(schema_version(&v).await >= 6);
    v.check_key().await.unwrap();
    let report = audit::verify(v.db().pool(), v.keys().audit())
        .await
        .unwrap();
    assert!(report.ok(), "{:?}", report.first_problem);
    assert_eq!(report.events, events_in(&fx));
    // The sealed identity opens with the same key.
    let case: CaseId = fx["case_id"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        v.read_identity(READ, &case, "pupil").await.unwrap(),
        identity()
    );
    // New data goes on the same chain.
    let other = CaseId::new();
    let mut tx = v.db().begin_write().await.unwrap();
    v.create_case_key(&mut tx, &other).await.unwrap();
    tx.commit().await.unwrap();
    let report = audit::verify(v.db().pool(), v.keys().audit())
        .await
        .unwrap();
    assert!(report.ok(), "{:?}", report.first_problem);
    assert_eq!(report.events, events_in(&fx) + 1);
    // Identities of that release have no name-part tags: the matcher runs without its
    // pre-filter until `keys reindex`, which reads each identity through the audit.
    assert!(v.blind_index_set().await.unwrap().name_parts().is_none());
    assert_eq!(v.reindex("cli").await.unwrap(), 1);
    // ... and the indexes of every spelling, in slots of one count (the number, four
    // full-name, four name + birth, two initial + family + birth, two name-part rows).
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM blind_indexes WHERE case_id = $1")
        .bind(case.to_string())
        .fetch_one(v.db().pool())
        .await
        .unwrap();
    assert_eq!(rows, 13);
    let set = v.blind_index_set().await.unwrap();
    let parts = set.name_parts().expect("every identity is tagged now");
    let key = v.keys().name_parts();
    assert!(parts.given(key.tag("uppgradera")) && parts.family(key.tag("fixtursson")));
    // With the tags of the names' prefixes (a candidate half stops growing once it starts
    // no real name part).
    assert!(parts.prefixes_complete());
    let bits = parts.bits(key.tag("uppgr"));
    assert!(parts.may_extend(bits, 5, fiktiv_vault::NamePartFilter::GIVEN_PREFIX));
    let bits = parts.bits(key.tag("uppgx"));
    assert!(!parts.may_extend(bits, 5, fiktiv_vault::NamePartFilter::GIVEN_PREFIX));
    let report = audit::verify(v.db().pool(), v.keys().audit())
        .await
        .unwrap();
    assert!(report.ok(), "{:?}", report.first_problem);
    assert_eq!(report.events, events_in(&fx) + 2);
}

async fn upgrade_from_v0005(db: TestDatabase) {
    let fx = fixture(5);
    load(&db, &fx).await;
    let key = fx["root_key"].as_str().unwrap();
    let clock = ManualClock::new(at(2026, 3, 3));
    // The whole service on the upgraded database: the API, the worker, the metrics.
    let r = Registrar::new(db.url(), key, &Config::default(), Arc::new(clock)).await;
    assert!(schema_version(&r.vault).await >= 6);
    r.vault.check_key().await.unwrap();
    let report = audit::verify(r.vault.db().pool(), r.vault.keys().audit())
        .await
        .unwrap();
    assert!(report.ok(), "{:?}", report.first_problem);
    assert!(report.events >= events_in(&fx));
    let case = fx["case_id"].as_str().unwrap();
    let school = fx["school_token"].as_str().unwrap();
    let central = fx["central_token"].as_str().unwrap();
    // The sealed plan reads back as it was, with the old token.
    let plan = r
        .call(
            "GET",
            &format!("/api/v1/cases/{case}/plan"),
            school,
            Value::Null,
            200,
        )
        .await;
    // Fields the plan got after that release read as their defaults.
    let mut expected = fx["plan"].clone();
    expected["plan"]["meeting_date"] = json!("");
    expected["plan"]["attendees"] = json!([]);
    assert_eq!(plan, expected);
    let c = r
        .call(
            "GET",
            &format!("/api/v1/cases/{case}"),
            school,
            Value::Null,
            200,
        )
        .await;
    assert_eq!(c["case_id"], case);
    // Provisioning state survived: every job is done.
    let jobs = r
        .call("GET", "/api/v1/sync/jobs", central, Value::Null, 200)
        .await;
    let jobs = jobs.as_array().unwrap();
    assert!(!jobs.is_empty());
    assert!(jobs.iter().all(|j| j["state"] == "done"), "{jobs:?}");
    // The run the old process left running has no lease: recovered.
    assert_eq!(
        fiktiv_delivery::checks::recover_runs(&r.vault)
            .await
            .unwrap(),
        1
    );
    // The new tables work: a cycle, a second pupil provisioned, the metrics.
    r.pupil(8).await;
    fiktiv_delivery::worker::run_until_idle(&r.ctx.delivery, 100)
        .await
        .unwrap();
    let attempts: i64 = sqlx::query("SELECT COUNT(*) AS n FROM prov_attempts")
        .fetch_one(r.vault.db().pool())
        .await
        .unwrap()
        .get("n");
    assert!(attempts >= 1);
    let snap = fiktiv_app::metrics::snapshot(&r.ctx).await.unwrap();
    assert_eq!(snap.audit_events as u64, {
        let report = audit::verify(r.vault.db().pool(), r.vault.keys().audit())
            .await
            .unwrap();
        assert!(report.ok(), "{:?}", report.first_problem);
        report.events
    });
}

both_backends!(upgrade_from_v0001);
both_backends!(upgrade_from_v0005);
