//! Accounts and sessions on both database backends, with a manual clock: two-factor
//! sign-in, replayed codes, idle and absolute session expiry, step-up freshness,
//! lockout and its expiry, disable, reset, and the TOTP secret sealed at rest.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

mod web_common;

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use fiktiv::web::accounts::{self, Refusal, SignInLimits};
use fiktiv::web::session::{self, Timeouts};
use fiktiv_policies::Role;
use fiktiv_tests::TestDatabase;
use fiktiv_vault::{Db, KeyRing, ManualClock, RootKey, Vault};
use sqlx::Row;
use web_common::totp_at;
use zeroize::Zeroizing;

const LIMITS: SignInLimits = SignInLimits {
    lockout_after_failures: 3,
    lockout: TimeDelta::minutes(15),
};
const TIMEOUTS: Timeouts = Timeouts {
    idle: TimeDelta::minutes(15),
    absolute: TimeDelta::hours(8),
    step_up_valid: TimeDelta::minutes(5),
};

fn pw(s: &str) -> Zeroizing<String> {
    Zeroizing::new(s.to_owned())
}

fn code(secret: &str, at: DateTime<Utc>) -> String {
    totp_at(secret, at.timestamp())
}

async fn scenario(db: TestDatabase) {
    let t0 = Utc.with_ymd_and_hms(2025, 9, 1, 8, 0, 0).unwrap();
    let clock = ManualClock::new(t0);
    let vault = Vault::new(
        Db::connect(db.url()).await.unwrap(),
        KeyRing::new(RootKey::generate()).unwrap(),
        Arc::new(clock.clone()),
    );
    let anna = accounts::add(&vault, "cli", "anna", &[Role::School], &["unit-a".into()])
        .await
        .unwrap();
    assert!(matches!(
        accounts::add(&vault, "cli", "anna", &[Role::Auditor], &[]).await,
        Err(fiktiv::domain::DomainError::Conflict { .. })
    ));
    assert!(accounts::add(&vault, "cli", "bo", &[Role::School], &[])
        .await
        .is_err());
    let secret = anna.totp_secret.to_string();
    let password = anna.password.to_string();

    // The TOTP secret is sealed: neither base32 nor raw bytes are in the row.
    let row = sqlx::query("SELECT totp_sealed, password_hash FROM staff_users WHERE name = 'anna'")
        .fetch_one(vault.db().pool())
        .await
        .unwrap();
    let sealed: Vec<u8> = row.get("totp_sealed");
    assert!(!String::from_utf8_lossy(&sealed).contains(&secret));
    assert!(row
        .get::<String, _>("password_hash")
        .starts_with("$argon2id$"));

    // No code, a wrong code: refused.
    let r = accounts::sign_in(&vault, LIMITS, "anna", pw(&password), "")
        .await
        .unwrap();
    assert_eq!(r.unwrap_err(), Refusal::SecondFactor);
    let r = accounts::sign_in(&vault, LIMITS, "anna", pw("wrong"), &code(&secret, t0))
        .await
        .unwrap();
    assert_eq!(r.unwrap_err(), Refusal::Password);
    // Right: a session for the principal staff:anna.
    let (acct, new) = accounts::sign_in(&vault, LIMITS, "anna", pw(&password), &code(&secret, t0))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(acct.principal().id, "staff:anna");
    assert_eq!(acct.principal().roles, vec![Role::School]);
    assert!(acct.must_change_password);
    // The same code again is a replay.
    let r = accounts::sign_in(&vault, LIMITS, "anna", pw(&password), &code(&secret, t0))
        .await
        .unwrap();
    assert_eq!(r.unwrap_err(), Refusal::SecondFactor);

    // Only the hash of the cookie is stored.
    let stored: String = sqlx::query("SELECT session_hash FROM web_sessions")
        .fetch_one(vault.db().pool())
        .await
        .unwrap()
        .get("session_hash");
    assert_ne!(stored, new.cookie_value.as_str());

    // Idle timeout: each use moves it; 15 minutes unused ends it.
    let cookie = new.cookie_value.to_string();
    for _ in 0..3 {
        clock.advance(TimeDelta::minutes(14));
        assert!(session::lookup(&vault, TIMEOUTS, &cookie)
            .await
            .unwrap()
            .is_some());
    }
    clock.advance(TimeDelta::minutes(15));
    assert!(session::lookup(&vault, TIMEOUTS, &cookie)
        .await
        .unwrap()
        .is_none());
    assert!(session::lookup(&vault, TIMEOUTS, &cookie)
        .await
        .unwrap()
        .is_none());

    // Absolute lifetime: 8 hours, however busy.
    let t1 = clock.now_for_test();
    let (_, new) = accounts::sign_in(&vault, LIMITS, "anna", pw(&password), &code(&secret, t1))
        .await
        .unwrap()
        .unwrap();
    let cookie = new.cookie_value.to_string();
    for _ in 0..47 {
        clock.advance(TimeDelta::minutes(10));
        assert!(session::lookup(&vault, TIMEOUTS, &cookie)
            .await
            .unwrap()
            .is_some());
    }
    clock.advance(TimeDelta::minutes(10));
    assert!(session::lookup(&vault, TIMEOUTS, &cookie)
        .await
        .unwrap()
        .is_none());

    // Step-up: fresh for five minutes after the code is re-entered.
    let t2 = clock.now_for_test();
    let (_, new) = accounts::sign_in(&vault, LIMITS, "anna", pw(&password), &code(&secret, t2))
        .await
        .unwrap()
        .unwrap();
    let cookie = new.cookie_value.to_string();
    let s = session::lookup(&vault, TIMEOUTS, &cookie)
        .await
        .unwrap()
        .unwrap();
    assert!(fiktiv::web::require_fresh_second_factor(&s, TIMEOUTS, t2).is_err());
    clock.advance(TimeDelta::seconds(30));
    let t3 = clock.now_for_test();
    assert!(
        !accounts::verify_step_up(&vault, LIMITS, &s.account, "000000")
            .await
            .unwrap()
            || code(&secret, t3) == "000000"
    );
    assert!(
        accounts::verify_step_up(&vault, LIMITS, &s.account, &code(&secret, t3))
            .await
            .unwrap()
    );
    s.mark_stepped_up(&vault).await.unwrap();
    let s = session::lookup(&vault, TIMEOUTS, &cookie)
        .await
        .unwrap()
        .unwrap();
    assert!(
        fiktiv::web::require_fresh_second_factor(&s, TIMEOUTS, t3 + TimeDelta::minutes(4)).is_ok()
    );
    assert!(
        fiktiv::web::require_fresh_second_factor(&s, TIMEOUTS, t3 + TimeDelta::minutes(5)).is_err()
    );

    // Lockout after 3 failures in a row; over after 15 minutes.
    clock.advance(TimeDelta::seconds(60));
    for _ in 0..3 {
        let r = accounts::sign_in(&vault, LIMITS, "anna", pw("wrong"), "123456")
            .await
            .unwrap();
        assert_eq!(r.unwrap_err(), Refusal::Password);
    }
    let t4 = clock.now_for_test();
    let r = accounts::sign_in(&vault, LIMITS, "anna", pw(&password), &code(&secret, t4))
        .await
        .unwrap();
    assert_eq!(r.unwrap_err(), Refusal::Locked);
    clock.advance(TimeDelta::minutes(16));
    let t5 = clock.now_for_test();
    let (_, new) = accounts::sign_in(&vault, LIMITS, "anna", pw(&password), &code(&secret, t5))
        .await
        .unwrap()
        .unwrap();
    let cookie = new.cookie_value.to_string();

    // Disable: every session ends, sign-in refused; enable again.
    let live = session::lookup(&vault, TIMEOUTS, &cookie).await.unwrap();
    assert!(live.is_some());
    assert!(accounts::disable(&vault, "cli", "anna").await.unwrap());
    assert!(!accounts::disable(&vault, "cli", "anna").await.unwrap());
    assert!(session::lookup(&vault, TIMEOUTS, &cookie)
        .await
        .unwrap()
        .is_none());
    clock.advance(TimeDelta::seconds(60));
    let t6 = clock.now_for_test();
    let r = accounts::sign_in(&vault, LIMITS, "anna", pw(&password), &code(&secret, t6))
        .await
        .unwrap();
    assert_eq!(r.unwrap_err(), Refusal::Disabled);
    assert!(accounts::enable(&vault, "cli", "anna").await.unwrap());

    // Reset: the old password and secret stop working, the new ones work.
    let fresh = accounts::reset(&vault, "cli", "anna")
        .await
        .unwrap()
        .unwrap();
    assert!(accounts::reset(&vault, "cli", "nobody")
        .await
        .unwrap()
        .is_none());
    clock.advance(TimeDelta::seconds(60));
    let t7 = clock.now_for_test();
    let r = accounts::sign_in(&vault, LIMITS, "anna", pw(&password), &code(&secret, t7))
        .await
        .unwrap();
    assert_eq!(r.unwrap_err(), Refusal::Password);
    assert!(accounts::sign_in(
        &vault,
        LIMITS,
        "anna",
        pw(&fresh.password),
        &code(&fresh.totp_secret, t7)
    )
    .await
    .unwrap()
    .is_ok());

    // Unknown name: refused and audited as web:unknown.
    let r = accounts::sign_in(&vault, LIMITS, "nobody", pw("x"), "123456")
        .await
        .unwrap();
    assert_eq!(r.unwrap_err(), Refusal::UnknownName);

    let list = accounts::list(&vault).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].roles, vec!["school"]);

    // Every attempt audited; the chain verifies.
    let events: Vec<(String, String, String)> =
        sqlx::query("SELECT actor, action, outcome FROM audit_events ORDER BY seq")
            .fetch_all(vault.db().pool())
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get("actor"), r.get("action"), r.get("outcome")))
            .collect();
    let n = |actor: &str, action: &str, outcome: &str| {
        events
            .iter()
            .filter(|(a, b, c)| a == actor && b == action && c == outcome)
            .count()
    };
    assert_eq!(n("staff:anna", "web.signin", "ok"), 5);
    assert_eq!(n("staff:anna", "web.signin", "denied"), 9);
    assert_eq!(n("web:unknown", "web.signin", "denied"), 1);
    assert_eq!(n("staff:anna", "web.lockout", "ok"), 1);
    assert_eq!(n("staff:anna", "web.step-up", "ok"), 1);
    assert_eq!(n("cli", "users.add", "ok"), 1);
    assert_eq!(n("cli", "users.reset", "ok"), 1);
    let report = fiktiv_vault::audit::verify(vault.db().pool(), vault.keys().audit())
        .await
        .unwrap();
    assert!(report.ok(), "{report:?}");
}

trait NowForTest {
    fn now_for_test(&self) -> DateTime<Utc>;
}

impl NowForTest for ManualClock {
    fn now_for_test(&self) -> DateTime<Utc> {
        use fiktiv_vault::Clock;
        self.now()
    }
}

#[tokio::test]
async fn accounts_and_sessions_on_sqlite() {
    scenario(TestDatabase::sqlite().unwrap()).await;
}

#[tokio::test]
async fn accounts_and_sessions_on_postgres() {
    scenario(TestDatabase::postgres().unwrap()).await;
}
