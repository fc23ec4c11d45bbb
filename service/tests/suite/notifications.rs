//! Notifications (issue: daily use, point 3) against a real SMTP relay (aiosmtpd with
//! STARTTLS and AUTH required, `fiktiv_tests::SmtpServer`): each person is told once
//! about what is new for them, exactly what the one authorizer lets them act on (a
//! school of another unit hears nothing); a person who chose e-mail gets one mail per
//! round with something new, in their language, through TLS with the relay's login,
//! holding no name, number, case id or order id; a person who chose the app only gets
//! notices and no mail; a relay that is down leaves the mail queued for a retry. On
//! SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use crate::support::api;

use api::*;
use fiktiv_app::config::{Config, NotificationsConfig, SmtpConfig, SmtpTls};
use fiktiv_app::notify::{self, store, Channel, Prefs};
use fiktiv_policies::{Action, Resource, Role};
use fiktiv_staff::accounts;
use fiktiv_tests::{SmtpServer, TestDatabase};
use fiktiv_web::i18n::Lang;
use serde_json::json;

const PUBLIC_URL: &str = "https://fiktiv.kommun.example/";
const REAL_FIRST: &str = "Kanarie";
const REAL_LAST: &str = "Fågelström";
const FICT_FIRST: &str = "Maja";
const FICT_LAST: &str = "Lindqvist";

fn config(smtp: &SmtpServer, dir: &std::path::Path) -> Config {
    // A copy of the CA: the relay's own directory goes when it is stopped.
    let ca = dir.join("smtp-ca.pem");
    std::fs::copy(smtp.ca_file(), &ca).unwrap();
    let pw = dir.join("smtp-password");
    std::fs::write(&pw, format!("{}\n", smtp.password())).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    Config {
        notifications: NotificationsConfig {
            interval_secs: 60,
            public_url: Some(PUBLIC_URL.into()),
            smtp: Some(SmtpConfig {
                host: "localhost".into(),
                port: Some(smtp.port()),
                tls: SmtpTls::Starttls,
                ca_file: Some(ca),
                username: Some(smtp.user().into()),
                password_file: Some(pw),
                from: "Fiktiv <noreply@kommun.example>".into(),
                timeout_secs: Some(60),
            }),
        },
        ..Config::default()
    }
}

struct Staff {
    user_id: String,
    principal: fiktiv_policies::Principal,
}

async fn staff(e: &Env, name: &str, role: Role, units: &[&str], prefs: Option<Prefs>) -> Staff {
    let units: Vec<String> = units.iter().map(|u| u.to_string()).collect();
    accounts::add(&e.vault, "test", name, &[role], &units)
        .await
        .unwrap();
    let a = accounts::active(&e.vault)
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.name == name)
        .unwrap();
    if let Some(p) = prefs {
        store::save_prefs(&e.vault, "test", &a.user_id, &p)
            .await
            .unwrap();
    }
    Staff {
        user_id: a.user_id.clone(),
        principal: a.principal(),
    }
}

fn email(addr: &str, lang: Lang) -> Option<Prefs> {
    Some(Prefs {
        channel: Channel::Email,
        email: Some(addr.into()),
        lang,
    })
}

/// A case of unit A up to a sent order. Returns (case, order).
async fn ordered_case(e: &Env) -> (String, String) {
    e.walk()
        .information_handling("Inga uppgifter lämnas ut.")
        .fictitious(FICT_FIRST, FICT_LAST, "2015-09-03")
        .ordered(json!({"country": "se", "personal_number": se_number(date(2015, 5, 17), 123),
                        "first_name": REAL_FIRST, "last_name": REAL_LAST, "birth_date": "2015-05-17"}))
        .await
}

async fn kinds(e: &Env, s: &Staff) -> Vec<(String, i64)> {
    let mut k: Vec<(String, i64)> = store::notices(&e.vault, &s.user_id, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|n| (n.kind, n.count))
        .collect();
    k.sort();
    k
}

/// What no mail may hold: anything of the pupil, the case or the order.
fn assert_mail_holds_nothing(mail: &fiktiv_tests::Mail, forbidden: &[&str]) {
    let lower = mail.readable().to_lowercase();
    for f in forbidden {
        assert!(
            !lower.contains(&f.to_lowercase()),
            "a mail holds {f:?}:\n{}",
            mail.raw
        );
    }
}

async fn everyone_is_told_once_what_is_new(db: TestDatabase) {
    let smtp = SmtpServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let e = env_with(db, at(2026, 3, 2), config(&smtp, dir.path())).await;
    let anna = staff(
        &e,
        "anna.central",
        Role::CentralAdmin,
        &[],
        email("anna@kommun.example", Lang::Sv),
    )
    .await;
    let sara = staff(
        &e,
        "sara.school",
        Role::School,
        &[UNIT_A],
        email("sara@skola-a.example", Lang::En),
    )
    .await;
    let olle = staff(&e, "olle.approver", Role::Approver, &[], None).await;
    let bo = staff(
        &e,
        "bo.school",
        Role::School,
        &[UNIT_B],
        email("bo@skola-b.example", Lang::Nb),
    )
    .await;

    // Nothing to do yet: nothing told, nothing sent.
    let r = notify::round(&e.ctx).await.unwrap();
    assert_eq!((r.people, r.mails_sent), (0, 0), "{r:?}");

    // A new order: the central administrator is told, by one mail in Swedish.
    let (case, order) = ordered_case(&e).await;
    let r = notify::round(&e.ctx).await.unwrap();
    assert_eq!((r.people, r.mails_queued, r.mails_sent), (1, 1, 1), "{r:?}");
    assert_eq!(kinds(&e, &anna).await, vec![("orders-waiting".into(), 1)]);
    let mails = smtp
        .wait_for(1, std::time::Duration::from_secs(120))
        .unwrap();
    let m = &mails[0];
    assert_eq!(m.envelope_to, vec!["anna@kommun.example".to_owned()]);
    assert!(m.tls, "the mail went over STARTTLS");
    assert_eq!(m.auth, smtp.user(), "the relay's login was used");
    assert_eq!(
        m.decoded_header("Subject").as_deref(),
        Some("Du har något att göra i Fiktiv"),
        "{}",
        m.raw
    );
    assert!(m.body_text().contains(PUBLIC_URL), "{}", m.raw);
    assert!(
        m.body_text()
            .contains("Du har något nytt att göra i Fiktiv"),
        "{}",
        m.body_text()
    );
    let forbidden = [
        REAL_FIRST,
        REAL_LAST,
        FICT_FIRST,
        FICT_LAST,
        &case,
        &case[..8],
        &order,
        &order[..8],
        UNIT_A,
        "20150517",
        "150517",
        "2015-09-03",
    ];
    assert_mail_holds_nothing(m, &forbidden);

    // Told once: a second round with nothing new sends nothing and writes no notice.
    let r = notify::round(&e.ctx).await.unwrap();
    assert_eq!((r.people, r.mails_sent), (0, 0), "{r:?}");
    assert_eq!(kinds(&e, &anna).await, vec![("orders-waiting".into(), 1)]);

    // The school asks to see the real identity: the approver (app only) is told,
    // without mail; once approved, the school person who asked is told, in English.
    let unit = Resource::Case {
        unit: UNIT_A.into(),
    };
    let permit = e
        .ctx
        .authz
        .authorize(&sara.principal, Action::RevealRequest, &unit)
        .unwrap();
    let target = fiktiv_routine::reveal::resolve(
        &e.vault,
        &fiktiv_routine::reveal::RevealRequestInput {
            case_id: Some(case.clone()),
            fictitious_number: None,
            purpose: "Kontakt med vårdnadshavare".into(),
        },
    )
    .await
    .unwrap();
    let asked = fiktiv_routine::reveal::request(
        &e.vault,
        &permit,
        &target,
        "Kontakt med vårdnadshavare",
        e.ctx.reveal_limit(),
    )
    .await
    .unwrap();
    let r = notify::round(&e.ctx).await.unwrap();
    assert_eq!((r.people, r.mails_queued), (1, 0), "{r:?}");
    assert_eq!(
        kinds(&e, &olle).await,
        vec![("reveals-to-decide".into(), 1)]
    );

    let id: fiktiv_routine::ids::RevealId = asked.reveal_id.parse().unwrap();
    let (unit_of, requested_by) = fiktiv_routine::reveal::lookup(&e.vault, &id).await.unwrap();
    let decide = e
        .ctx
        .authz
        .authorize(
            &olle.principal,
            Action::RevealApprove,
            &Resource::RevealRequest {
                unit: unit_of,
                requested_by,
            },
        )
        .unwrap();
    fiktiv_routine::reveal::decide(
        &e.vault,
        &e.ctx.rules,
        &decide,
        &id,
        fiktiv_routine::reveal::RevealDecisionInput {
            approve: true,
            reason: None,
        },
    )
    .await
    .unwrap();
    let r = notify::round(&e.ctx).await.unwrap();
    assert_eq!((r.people, r.mails_sent), (1, 1), "{r:?}");
    assert_eq!(kinds(&e, &sara).await, vec![("reveals-approved".into(), 1)]);
    let mails = smtp
        .wait_for(2, std::time::Duration::from_secs(120))
        .unwrap();
    let m = &mails[1];
    assert_eq!(m.envelope_to, vec!["sara@skola-a.example".to_owned()]);
    assert_eq!(
        m.decoded_header("Subject").as_deref(),
        Some("You have something to do in Fiktiv")
    );
    assert_mail_holds_nothing(m, &forbidden);
    assert_mail_holds_nothing(
        m,
        &[&asked.reveal_id, &asked.reveal_id[..8], "vårdnadshavare"],
    );

    // The review comes due: the school of the unit and the approver hear of it.
    e.clock.set(at(2026, 7, 20));
    let r = notify::round(&e.ctx).await.unwrap();
    assert!(r.people >= 2, "{r:?}");
    assert!(kinds(&e, &sara)
        .await
        .contains(&("reviews-due-soon".into(), 1)));
    assert!(kinds(&e, &olle)
        .await
        .contains(&("reviews-due-soon".into(), 1)));

    // Another unit's school is told nothing at all, and gets no mail.
    assert_eq!(kinds(&e, &bo).await, vec![]);
    let all = smtp
        .wait_for(3, std::time::Duration::from_secs(120))
        .unwrap();
    assert!(
        all.iter()
            .all(|m| m.envelope_to != vec!["bo@skola-b.example".to_owned()]),
        "another unit's school got mail"
    );
    for m in &all {
        assert!(m.tls);
        assert_mail_holds_nothing(m, &forbidden);
    }

    // Read: the notices stay, none unread.
    assert!(store::unread(&e.vault, &sara.user_id).await.unwrap() > 0);
    store::mark_read(&e.vault, &sara.user_id).await.unwrap();
    assert_eq!(store::unread(&e.vault, &sara.user_id).await.unwrap(), 0);

    // The trail records each choice, and never the address.
    let (_, trail) = e
        .call("GET", "/api/v1/audit/events?limit=1000", AUDITOR, None)
        .await;
    let text = trail.to_string();
    assert!(text.contains("notify.prefs"), "{text}");
    assert!(!text.contains("kommun.example") && !text.contains("skola-a.example"));
}
both_backends!(everyone_is_told_once_what_is_new);

/// A relay that does not answer: the mail stays queued for a later attempt (not lost,
/// not given up). Choosing the app only afterwards cancels it; disabling the account
/// forgets the address and the notices.
async fn a_relay_that_is_down_leaves_the_mail_queued(db: TestDatabase) {
    let smtp = SmtpServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&smtp, dir.path());
    drop(smtp);
    let e = env_with(db, at(2026, 3, 2), cfg).await;
    let anna = staff(
        &e,
        "anna.central",
        Role::CentralAdmin,
        &[],
        email("anna@kommun.example", Lang::Sv),
    )
    .await;
    ordered_case(&e).await;
    let r = notify::round(&e.ctx).await.unwrap();
    assert_eq!(
        (
            r.mails_queued,
            r.mails_sent,
            r.mails_retried,
            r.mails_given_up
        ),
        (1, 0, 1, 0),
        "{r:?}"
    );
    assert_eq!(store::outbox_counts(&e.vault).await.unwrap(), (1, 0));
    // Not due again at once.
    let r = notify::round(&e.ctx).await.unwrap();
    assert_eq!((r.mails_sent, r.mails_retried), (0, 0), "{r:?}");
    // The person now wants the app only: the waiting mail is not sent.
    store::save_prefs(
        &e.vault,
        "test",
        &anna.user_id,
        &Prefs {
            channel: Channel::InApp,
            email: Some("anna@kommun.example".into()),
            lang: Lang::Sv,
        },
    )
    .await
    .unwrap();
    assert_eq!(store::outbox_counts(&e.vault).await.unwrap(), (0, 1));
    assert!(!store::notices(&e.vault, &anna.user_id, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(accounts::disable(&e.vault, "test", "anna.central")
        .await
        .unwrap());
    assert_eq!(
        store::prefs(&e.vault, &anna.user_id).await.unwrap(),
        Prefs::default()
    );
    assert!(store::notices(&e.vault, &anna.user_id, 10)
        .await
        .unwrap()
        .is_empty());
}
both_backends!(a_relay_that_is_down_leaves_the_mail_queued);

/// A relay that refuses Fiktiv's login (a wrong password: 535) is the relay's settings,
/// not the recipient: the mail waits for a retry instead of being given up.
async fn a_refused_login_keeps_the_mail_for_a_retry(db: TestDatabase) {
    let smtp = SmtpServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&smtp, dir.path());
    std::fs::write(dir.path().join("smtp-password"), "not-the-password").unwrap();
    let e = env_with(db, at(2026, 3, 2), cfg).await;
    staff(
        &e,
        "anna.central",
        Role::CentralAdmin,
        &[],
        email("anna@kommun.example", Lang::Sv),
    )
    .await;
    ordered_case(&e).await;
    let r = notify::round(&e.ctx).await.unwrap();
    assert_eq!(
        (r.mails_sent, r.mails_retried, r.mails_given_up),
        (0, 1, 0),
        "{r:?}"
    );
    assert_eq!(store::outbox_counts(&e.vault).await.unwrap(), (1, 0));
    assert!(smtp.messages().unwrap().is_empty());
}
both_backends!(a_refused_login_keeps_the_mail_for_a_retry);

/// The settings are checked at start-up, each problem one line naming the setting.
#[test]
fn bad_mail_settings_are_refused_with_one_line_each() {
    let base = SmtpConfig {
        host: "localhost".into(),
        port: Some(587),
        tls: SmtpTls::Starttls,
        ca_file: None,
        username: None,
        password_file: None,
        from: "noreply@kommun.example".into(),
        timeout_secs: None,
    };
    let with = |public_url: Option<&str>, smtp: SmtpConfig| NotificationsConfig {
        interval_secs: 60,
        public_url: public_url.map(str::to_owned),
        smtp: Some(smtp),
    };
    let err = |c: NotificationsConfig| notify::Mailer::from_config(&c).unwrap_err();
    assert!(err(with(None, base.clone())).contains("public_url"));
    assert!(err(with(Some("not a url"), base.clone())).contains("public_url"));
    assert!(err(with(Some("ftp://x.example/"), base.clone())).contains("public_url"));
    let mut s = base.clone();
    s.from = "not an address".into();
    assert!(err(with(Some(PUBLIC_URL), s)).contains("from"));
    let mut s = base.clone();
    s.username = Some("relay".into());
    assert!(err(with(Some(PUBLIC_URL), s)).contains("password"));
    let mut s = base.clone();
    s.ca_file = Some("/nonexistent/ca.pem".into());
    assert!(err(with(Some(PUBLIC_URL), s)).contains("ca_file"));
    // A file that holds no certificate would trust nothing: refused at start.
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("ca.pem");
    std::fs::write(&not_pem, "not a certificate\n").unwrap();
    let mut s = base.clone();
    s.ca_file = Some(not_pem);
    assert!(err(with(Some(PUBLIC_URL), s)).contains("no PEM certificate"));
    let mut c = with(Some(PUBLIC_URL), base.clone());
    c.interval_secs = 0;
    assert!(err(c).contains("interval_secs"));
    for e in [
        err(with(None, base.clone())),
        err(with(
            Some(PUBLIC_URL),
            SmtpConfig {
                username: Some("u".into()),
                ..base.clone()
            },
        )),
    ] {
        assert!(!e.contains('\n'), "{e}");
    }
    assert!(notify::Mailer::from_config(&with(Some(PUBLIC_URL), base))
        .unwrap()
        .is_some());
    assert!(notify::Mailer::from_config(&NotificationsConfig::default())
        .unwrap()
        .is_none());
}
