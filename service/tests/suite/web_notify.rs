//! Notifications in the real browser with the real `fiktiv serve` and a real SMTP relay
//! (issue: daily use, point 3): the central administrator chooses e-mail on
//! `/notifications` (a wrong address is refused with the field kept and an error tied
//! to it); a school sends an order; within the configured interval the relay receives
//! one mail for the administrator, in Swedish, over STARTTLS with the relay's login,
//! holding nothing of the pupil, the case or the order; the start page and
//! `/notifications` show the notice, which can be marked read. axe-core finds no
//! violation on the page in sv, nb and en.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use std::time::Duration;

use crate::support::web;

use fiktiv_tests::SmtpServer;
use serde_json::{json, Value};
use web::{first_sign_in, Browser, Server};

const PUBLIC_URL: &str = "https://fiktiv.kommun.example/";

/// The `[notifications]` tables for `relay`; the CA and password are copied into `dir`.
fn notifications_config(smtp: &SmtpServer, dir: &std::path::Path) -> String {
    let ca = dir.join("smtp-ca.pem");
    std::fs::copy(smtp.ca_file(), &ca).unwrap();
    let pw = dir.join("smtp-password");
    std::fs::write(&pw, smtp.password()).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    format!(
        "\n[notifications]\ninterval_secs = 1\npublic_url = \"{PUBLIC_URL}\"\n\n\
         [notifications.smtp]\nhost = \"localhost\"\nport = {}\nca_file = \"{}\"\n\
         username = \"{}\"\npassword_file = \"{}\"\nfrom = \"Fiktiv <noreply@kommun.example>\"\n",
        smtp.port(),
        ca.display(),
        smtp.user(),
        pw.display()
    )
}

/// An API call with a bearer token; the JSON answer.
fn api(server: &Server, token: &str, method: &str, path: &str, body: Value) -> Value {
    let auth = format!("Bearer {token}");
    let bytes = serde_json::to_vec(&body).unwrap();
    let r = server.request(
        method,
        path,
        &[
            ("authorization", auth.as_str()),
            ("content-type", "application/json"),
        ],
        Some(&bytes),
    );
    assert!(
        r.status == 200 || r.status == 201,
        "{method} {path}: {} {}",
        r.status,
        String::from_utf8_lossy(&r.body)
    );
    serde_json::from_slice(&r.body).unwrap_or(Value::Null)
}

#[test]
fn the_central_administrator_is_told_of_a_new_order_by_mail_and_in_the_app() {
    let smtp = SmtpServer::start().unwrap();
    let files = tempfile::tempdir().unwrap();
    let server = Server::start(&notifications_config(&smtp, files.path()));
    let anna = server.add_user("anna.central", &["central-admin"], &[]);
    let token = crate::support::pages::cli_token(&server, "sis.skola-1", "school", Some("skola-1"));

    let b = Browser::start();
    first_sign_in(&b, &server, &anna, 0);
    assert!(b.exists("#notifications-link"), "{}", b.source());
    b.goto(&format!("{}/notifications", server.base()));
    assert!(b.exists("#notices-none"), "{}", b.source());
    assert!(!b.exists("#notify-mail-off"), "mail is configured");
    b.assert_accessible("the notifications page");

    // A wrong address: refused, the field keeps it, the error is tied to it.
    b.execute(
        "document.getElementById('channel-email').click();",
        json!([]),
    );
    b.fill("#email", "anna-at-kommun");
    b.click("#notify-save");
    assert!(b.exists("#form-errors a[href='#email']"), "{}", b.source());
    assert!(b.exists("#email[aria-invalid='true']"));
    let kept = b.execute("return document.getElementById('email').value;", json!([]));
    assert_eq!(kept, json!("anna-at-kommun"));
    assert!(b.exists("#channel-email:checked"), "the choice is kept");
    b.assert_accessible("the notifications page with an error");
    b.fill("#email", "anna@kommun.example");
    b.click("#notify-save");
    assert!(b.exists("#notify-notice"), "{}", b.source());
    assert!(b.exists("#channel-email:checked"));

    // Every language: no violation, no untranslated text.
    for lang in ["nb", "en", "sv"] {
        b.click(&format!("button[name='lang'][value='{lang}']"));
        b.goto(&format!("{}/notifications", server.base()));
        assert!(b.exists(&format!("html[lang='{lang}']")), "{}", b.source());
        b.assert_accessible(&format!("the notifications page in {lang}"));
    }

    // A school sends an order through the API.
    let case = api(
        &server,
        &token,
        "POST",
        "/api/v1/units/skola-1/cases",
        json!({"country": "se", "personal_number": crate::support::pages::se_personnummer(2015, 5, 17, 123),
               "first_name": "Kanarie", "last_name": "Fågelström", "birth_date": "2015-05-17"}),
    )["case_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let c = format!("/api/v1/cases/{case}");
    api(
        &server,
        &token,
        "PUT",
        &format!("{c}/plan"),
        json!({"information_handling": "Inga uppgifter lämnas ut.", "platforms": ["google"],
               "guardian_contact_routes": [], "staff_to_inform": [], "free_text": ""}),
    );
    api(
        &server,
        &token,
        "PUT",
        &format!("{c}/login-decision"),
        json!({"decision": "fictitious-user"}),
    );
    api(
        &server,
        &token,
        "PUT",
        &format!("{c}/fictitious-identity"),
        json!({"first_name": "Maja", "last_name": "Lindqvist", "birth_date": "2015-09-03"}),
    );
    let order = api(
        &server,
        &token,
        "POST",
        &format!("{c}/order"),
        json!({"groups": ["4B"], "platforms": ["google"]}),
    )["order_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // The relay gets one mail for the administrator.
    let mails = smtp.wait_for(1, Duration::from_secs(180)).unwrap();
    let m = &mails[0];
    assert_eq!(m.envelope_to, vec!["anna@kommun.example".to_owned()]);
    assert!(m.tls);
    assert_eq!(m.auth, smtp.user());
    assert_eq!(
        m.decoded_header("Subject").as_deref(),
        Some("Du har något att göra i Fiktiv")
    );
    assert!(m.body_text().contains(PUBLIC_URL), "{}", m.body_text());
    let seen = m.readable().to_lowercase();
    for f in [
        "kanarie",
        "fågelström",
        "maja",
        "lindqvist",
        "skola-1",
        "20150517",
        case.as_str(),
        &case[..8],
        order.as_str(),
        &order[..8],
    ] {
        assert!(!seen.contains(f), "the mail holds {f:?}: {}", m.raw);
    }

    // In the app (written with the mail, before it was sent): the start page says so,
    // and the notice leads to the orders.
    b.goto(&format!("{}/", server.base()));
    assert!(b.exists("#home-unread"), "{}", b.source());
    b.goto(&format!("{}/notifications", server.base()));
    assert!(
        b.exists(".notice-item.unread[data-kind='orders-waiting'] a[href='/orders']"),
        "{}",
        b.source()
    );
    b.assert_accessible("the notifications page with a notice");
    b.screenshot_for_docs("notifications.png");
    b.click("#notify-mark-read");
    assert!(b.exists("#notify-notice"));
    assert!(!b.exists(".notice-item.unread"));
    b.goto(&format!("{}/", server.base()));
    assert!(!b.exists("#home-unread"));

    // One mail: the rounds since (every second) found nothing new.
    assert_eq!(smtp.messages().unwrap().len(), 1);
    // The log names no address.
    assert!(!server.log().contains("anna@kommun.example"));
}
