//! Accounts and sessions on both database backends, with a manual clock: two-factor
//! sign-in, replayed codes, idle and absolute session expiry, step-up freshness,
//! lockout and its expiry, disable, reset, the TOTP secret sealed at rest, and the
//! password change (re-authentication, refusals that change nothing, other sessions
//! ended, the lockout).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use crate::support::web;

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use fiktiv_policies::Role;
use fiktiv_staff::accounts::{self, PasswordChange, Reauth, Refusal, SignInLimits};
use fiktiv_staff::session::{self, Timeouts};
use fiktiv_tests::TestDatabase;
use fiktiv_vault::{Db, KeyRing, ManualClock, RootKey, Vault};
use sqlx::Row;
use web::totp_at;
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
        Err(fiktiv_routine::DomainError::Conflict { .. })
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
    assert!(fiktiv_web::require_fresh_second_factor(&s, TIMEOUTS, t2).is_err());
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
        fiktiv_web::require_fresh_second_factor(&s, TIMEOUTS, t3 + TimeDelta::minutes(4)).is_ok()
    );
    assert!(
        fiktiv_web::require_fresh_second_factor(&s, TIMEOUTS, t3 + TimeDelta::minutes(5)).is_err()
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
    assert!(!list[0].oidc);

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

    password_change(&vault, &clock).await;
}

/// A six-digit code that is wrong at `at` (and for the steps either side).
fn wrong_code(secret: &str, at: DateTime<Utc>) -> String {
    let valid: Vec<String> = [-30, 0, 30]
        .iter()
        .map(|d| code(secret, at + TimeDelta::seconds(*d)))
        .collect();
    (0..100)
        .map(|i| format!("{:06}", 111_111 * (i % 10) + i / 10))
        .find(|c| !valid.contains(c))
        .unwrap()
}

fn credentials(current: &str, code: String) -> Reauth {
    Reauth::Credentials {
        current: pw(current),
        code,
    }
}

async fn live(vault: &Vault, cookie: &str) -> Option<session::Session> {
    session::lookup(vault, TIMEOUTS, cookie).await.unwrap()
}

async fn password_change(vault: &Vault, clock: &ManualClock) {
    let cleo = accounts::add(vault, "cli", "cleo", &[Role::Auditor], &[])
        .await
        .unwrap();
    let secret = cleo.totp_secret.to_string();
    clock.advance(TimeDelta::minutes(1));
    let t0 = clock.now_for_test();
    let (_, first) = accounts::sign_in(
        vault,
        LIMITS,
        "cleo",
        pw(&cleo.password),
        &code(&secret, t0),
    )
    .await
    .unwrap()
    .unwrap();
    let first = first.cookie_value.to_string();
    let s = live(vault, &first).await.unwrap();
    assert!(s.account.must_change_password);
    assert!(s.signed_in_within(TIMEOUTS.step_up_valid, t0));

    // The forced change right after the sign-in needs nothing typed again. The session
    // goes on under a new cookie value; the old one opens nothing.
    let chosen = "cleo chose this long passphrase";
    let r = accounts::change_password(vault, LIMITS, &s, Reauth::FirstChange, pw(chosen))
        .await
        .unwrap();
    let PasswordChange::Changed(c1) = r else {
        panic!("{r:?}")
    };
    let c1 = c1.cookie_value.to_string();
    assert!(live(vault, &first).await.is_none());
    let s1 = live(vault, &c1).await.unwrap();
    assert!(!s1.account.must_change_password);
    // Once the one-time password is changed, a change without re-authentication is
    // refused.
    let r = accounts::change_password(
        vault,
        LIMITS,
        &s1,
        Reauth::FirstChange,
        pw("x".repeat(20).as_str()),
    )
    .await
    .unwrap();
    assert!(
        matches!(r, PasswordChange::Refused(Refusal::Password)),
        "{r:?}"
    );

    // A second session of the same account.
    clock.advance(TimeDelta::minutes(1));
    let t1 = clock.now_for_test();
    let (_, other) = accounts::sign_in(vault, LIMITS, "cleo", pw(chosen), &code(&secret, t1))
        .await
        .unwrap()
        .unwrap();
    let other = other.cookie_value.to_string();

    // A wrong current password (with the right code), then the right password with a
    // wrong code: refused, and nothing changes.
    clock.advance(TimeDelta::minutes(1));
    let t2 = clock.now_for_test();
    let wanted = "a brand new long passphrase";
    let r = accounts::change_password(
        vault,
        LIMITS,
        &s1,
        credentials("not the password", code(&secret, t2)),
        pw(wanted),
    )
    .await
    .unwrap();
    assert!(
        matches!(r, PasswordChange::Refused(Refusal::Password)),
        "{r:?}"
    );
    let r = accounts::change_password(
        vault,
        LIMITS,
        &s1,
        credentials(chosen, wrong_code(&secret, t2)),
        pw(wanted),
    )
    .await
    .unwrap();
    assert!(
        matches!(r, PasswordChange::Refused(Refusal::SecondFactor)),
        "{r:?}"
    );
    assert!(live(vault, &c1).await.is_some());
    assert!(live(vault, &other).await.is_some());
    // The chosen password still signs in (with the code the refused changes did not
    // use up); the wanted one does not.
    let (_, third) = accounts::sign_in(vault, LIMITS, "cleo", pw(chosen), &code(&secret, t2))
        .await
        .unwrap()
        .unwrap();
    let third = third.cookie_value.to_string();
    let r = accounts::sign_in(vault, LIMITS, "cleo", pw(wanted), &code(&secret, t2))
        .await
        .unwrap();
    assert_eq!(r.unwrap_err(), Refusal::Password);

    // The right password and a fresh code: changed. Every other session ends; this one
    // goes on under a new cookie value, with its sign-in time kept.
    clock.advance(TimeDelta::minutes(1));
    let t3 = clock.now_for_test();
    let s1 = live(vault, &c1).await.unwrap();
    let r = accounts::change_password(
        vault,
        LIMITS,
        &s1,
        credentials(chosen, code(&secret, t3)),
        pw(wanted),
    )
    .await
    .unwrap();
    let PasswordChange::Changed(c2) = r else {
        panic!("{r:?}")
    };
    let c2 = c2.cookie_value.to_string();
    for gone in [&c1, &other, &third] {
        assert!(live(vault, gone).await.is_none());
    }
    let s2 = live(vault, &c2).await.unwrap();
    assert_eq!(s2.created_at, s1.created_at);
    // The code just used is a replay now, even with the right password.
    let r = accounts::change_password(
        vault,
        LIMITS,
        &s2,
        credentials(wanted, code(&secret, t3)),
        pw("and yet another passphrase"),
    )
    .await
    .unwrap();
    assert!(
        matches!(r, PasswordChange::Refused(Refusal::SecondFactor)),
        "{r:?}"
    );
    // The old password no longer signs in; the new one does.
    clock.advance(TimeDelta::minutes(1));
    let t4 = clock.now_for_test();
    let r = accounts::sign_in(vault, LIMITS, "cleo", pw(chosen), &code(&secret, t4))
        .await
        .unwrap();
    assert_eq!(r.unwrap_err(), Refusal::Password);
    let (_, fourth) = accounts::sign_in(vault, LIMITS, "cleo", pw(wanted), &code(&secret, t4))
        .await
        .unwrap()
        .unwrap();
    let fourth = fourth.cookie_value.to_string();

    // Failed changes count towards the lockout: the third in a row locks the account
    // and ends every session of it.
    let s2 = live(vault, &c2).await.unwrap();
    for i in 0..2 {
        let r = accounts::change_password(
            vault,
            LIMITS,
            &s2,
            credentials(&format!("guess {i}"), code(&secret, t4)),
            pw("a passphrase of the thief"),
        )
        .await
        .unwrap();
        assert!(
            matches!(r, PasswordChange::Refused(Refusal::Password)),
            "{r:?}"
        );
    }
    let r = accounts::change_password(
        vault,
        LIMITS,
        &s2,
        credentials("guess 2", code(&secret, t4)),
        pw("a passphrase of the thief"),
    )
    .await
    .unwrap();
    assert!(matches!(r, PasswordChange::SessionsEnded), "{r:?}");
    assert!(live(vault, &c2).await.is_none());
    assert!(live(vault, &fourth).await.is_none());
    clock.advance(TimeDelta::minutes(1));
    let t5 = clock.now_for_test();
    let r = accounts::sign_in(vault, LIMITS, "cleo", pw(wanted), &code(&secret, t5))
        .await
        .unwrap();
    assert_eq!(r.unwrap_err(), Refusal::Locked);

    // Audited: each change and each refusal with its reason.
    let events: Vec<(String, String, Option<String>)> = sqlx::query(
        "SELECT action, outcome, purpose FROM audit_events WHERE actor = 'staff:cleo' ORDER BY seq",
    )
    .fetch_all(vault.db().pool())
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get("action"), r.get("outcome"), r.get("purpose")))
    .collect();
    let n = |action: &str, outcome: &str, purpose: Option<&str>| {
        events
            .iter()
            .filter(|(a, o, p)| a == action && o == outcome && p.as_deref() == purpose)
            .count()
    };
    assert_eq!(n("web.password-change", "ok", Some("first-change")), 1);
    assert_eq!(n("web.password-change", "ok", None), 1);
    assert_eq!(
        n("web.password-change", "denied", Some("refused: password")),
        5
    );
    assert_eq!(
        n(
            "web.password-change",
            "denied",
            Some("refused: second-factor")
        ),
        2
    );
    assert_eq!(n("web.lockout", "ok", None), 1);
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
