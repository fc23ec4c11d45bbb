//! The web UI in a real browser: Debian's headless Chromium through chromedriver,
//! against the real `fiktiv serve`, with accounts made by the real CLI. Two-factor
//! sign-in, the one-time password change, a chosen password change (re-authentication,
//! other sessions ended), sign-out, expired sessions, CSRF, lockout, disabled accounts,
//! step-up, languages, security headers, and axe-core on every page.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use crate::support::web;

use std::time::{Duration, Instant};

use serde_json::json;
use web::{first_sign_in, sign_in, totp, totp_at, wrong_totp, Browser, Server};

fn count(
    events: &[(String, String, String, Option<String>)],
    actor: &str,
    action: &str,
    outcome: &str,
    purpose: Option<&str>,
) -> usize {
    events
        .iter()
        .filter(|(a, ac, o, p)| {
            a == actor
                && ac == action
                && o == outcome
                && (purpose.is_none() || p.as_deref() == purpose)
        })
        .count()
}

#[test]
fn two_factor_sign_in_password_change_home_and_sign_out() {
    let server = Server::start("");
    let anna = server.add_user("anna.admin", &["central-admin"], &[]);
    let b = Browser::start();

    b.goto(&format!("{}/", server.base()));
    b.wait_for_path("/signin");
    assert_eq!(b.title(), "Logga in · Fiktiv");
    b.assert_accessible("the sign-in page");
    b.screenshot_for_docs("signin.png");

    // Password and a code computed from the printed secret.
    sign_in(
        &b,
        &server,
        &anna.name,
        &anna.password,
        &totp(&anna.secret, 0),
    );
    b.wait_for_path("/password");
    b.assert_accessible("the password page");
    // Errors are tied to their fields.
    b.fill("#new_password", "short");
    b.fill("#confirm", "other");
    b.click("#password-submit");
    b.wait_for_path("/password");
    assert!(b.exists("#new_password[aria-invalid='true'][aria-describedby~='new_password-error']"));
    assert!(b.exists("#confirm[aria-invalid='true'][aria-describedby='confirm-error']"));
    b.assert_accessible("the password page with errors");
    b.fill("#new_password", "a long enough passphrase");
    b.fill("#confirm", "a long enough passphrase");
    b.click("#password-submit");
    b.wait_for_path("/");

    // Home: the name, the role, and the navigation the authorizer allows.
    let src = b.source();
    assert!(src.contains("anna.admin"));
    assert!(src.contains("Central systemadministratör"));
    for href in ["/orders", "/cases", "/provisioning", "/reviews"] {
        assert!(b.exists(&format!("nav a[href='{href}']")), "{href}");
    }
    for href in ["/reveals", "/audit"] {
        assert!(!b.exists(&format!("nav a[href='{href}']")), "{href}");
    }
    assert_eq!(b.title(), "Start · Fiktiv");
    b.assert_accessible("the home page (central admin)");
    b.screenshot_for_docs("home-central-admin.png");

    // The session cookie: __Host-, HttpOnly (not visible to scripts).
    assert!(b.cookie("__Host-fiktiv").is_some());
    assert_eq!(b.execute("return document.cookie;", json!([])), json!(""));

    // Language switch: English, then Norwegian.
    b.click("button[value='en']");
    b.wait_for_path("/");
    assert_eq!(b.title(), "Home · Fiktiv");
    assert!(b.exists("html[lang='en']"));
    b.click("button[value='nb']");
    b.wait_for_path("/");
    assert!(b.exists("html[lang='nb']"));
    b.assert_accessible("the home page in Norwegian");

    // Sign out: the old cookie opens nothing any more.
    let old = b.cookie("__Host-fiktiv").unwrap();
    b.click(".who button[type='submit']");
    b.wait_for_path("/signin?out=1");
    let r = server.request(
        "GET",
        "/",
        &[("Cookie", &format!("__Host-fiktiv={old}"))],
        None,
    );
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/signin?ended=1"));

    // Audited: one successful sign-in and the password change, by the account.
    let ev = server.audit();
    assert_eq!(count(&ev, "staff:anna.admin", "web.signin", "ok", None), 1);
    assert_eq!(
        count(&ev, "staff:anna.admin", "web.password-change", "ok", None),
        1
    );
    assert_eq!(count(&ev, "cli", "users.add", "ok", None), 1);
    // The password was never logged.
    assert!(!server.log().contains(&anna.password));
}

#[test]
fn sign_in_without_or_with_a_wrong_second_factor_fails_and_is_audited() {
    let server = Server::start("");
    let bo = server.add_user("bo.school", &["school"], &["unit-a"]);
    let b = Browser::start();

    // No code at all.
    sign_in(&b, &server, &bo.name, &bo.password, "");
    b.wait_for_path("/signin");
    assert!(b.exists("#signin-error"));
    assert!(b.exists("#code[aria-invalid='true']"));
    b.assert_accessible("the sign-in page with an error");
    assert!(b.cookie("__Host-fiktiv").is_none());

    // A wrong code.
    sign_in(&b, &server, &bo.name, &bo.password, &wrong_totp(&bo.secret));
    b.wait_for_path("/signin");
    assert!(b.exists("#signin-error"));
    assert!(b.cookie("__Host-fiktiv").is_none());

    // A wrong password with the right code.
    sign_in(
        &b,
        &server,
        &bo.name,
        "not the password",
        &totp(&bo.secret, 0),
    );
    b.wait_for_path("/signin");
    assert!(b.exists("#signin-error"));

    // An unknown name: the same message.
    sign_in(&b, &server, "nobody", "whatever", "123456");
    b.wait_for_path("/signin");
    assert!(b.exists("#signin-error"));

    let ev = server.audit();
    let actor = "staff:bo.school";
    assert_eq!(
        count(
            &ev,
            actor,
            "web.signin",
            "denied",
            Some("refused: second-factor")
        ),
        2
    );
    assert_eq!(
        count(
            &ev,
            actor,
            "web.signin",
            "denied",
            Some("refused: password")
        ),
        1
    );
    assert_eq!(
        count(
            &ev,
            "web:unknown",
            "web.signin",
            "denied",
            Some("refused: unknown-name")
        ),
        1
    );
    assert_eq!(count(&ev, actor, "web.signin", "ok", None), 0);

    // Then the right code signs in; the school sees cases and reviews only.
    let (new_password, used_code) = first_sign_in(&b, &server, &bo, 0);
    assert!(b.exists("nav a[href='/cases']"));
    assert!(b.exists("nav a[href='/reviews']"));
    assert!(!b.exists("nav a[href='/orders']"));
    b.assert_accessible("the home page (school)");
    b.screenshot_for_docs("home-school.png");

    // The same code again (a replay) is refused, even with the right password.
    let b2 = Browser::start();
    sign_in(&b2, &server, &bo.name, &new_password, &used_code);
    b2.wait_for_path("/signin");
    assert!(b2.exists("#signin-error"));
}

#[test]
fn an_idle_session_expires() {
    let server = Server::start("idle_timeout_secs = 5");
    let c = server.add_user("cia.auditor", &["auditor"], &[]);
    let b = Browser::start();
    first_sign_in(&b, &server, &c, 0);
    assert!(b.exists("nav a[href='/audit']"));
    b.assert_accessible("the home page (auditor)");

    // Leave it idle, then poll until it is refused (each poll that still finds it
    // alive uses it again, so every wait is longer than the idle timeout).
    let cookie = b.cookie("__Host-fiktiv").unwrap();
    let started = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(5500));
        b.goto(&format!("{}/", server.base()));
        if b.url().ends_with("/signin?ended=1") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the session did not expire"
        );
    }
    assert!(b.exists("#signin-notice"));
    b.assert_accessible("the sign-in page after an expired session");
    // A POST with the expired session is refused too.
    let r = server.request(
        "POST",
        "/signout",
        &[
            ("Cookie", &format!("__Host-fiktiv={cookie}")),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        Some(b"csrf=x"),
    );
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/signin?ended=1"));
}

#[test]
fn a_post_without_the_csrf_token_is_refused() {
    let server = Server::start("");
    let d = server.add_user("dan.approver", &["approver"], &[]);
    let b = Browser::start();

    // Before sign-in: the sign-in form without its token.
    b.goto(&format!("{}/signin", server.base()));
    b.execute(
        "document.querySelector('form.form input[name=csrf]').remove();",
        json!([]),
    );
    b.fill("#name", &d.name);
    b.fill("#password", &d.password);
    b.fill("#code", &totp(&d.secret, 0));
    b.click("#signin-submit");
    b.wait_for_path("/signin");
    assert!(b.exists("#message-heading"), "{}", b.source());
    assert!(b.cookie("__Host-fiktiv").is_none());
    b.assert_accessible("the refusal page");

    // Signed in: sign-out without the token is refused, with a wrong one too.
    first_sign_in(&b, &server, &d, 1);
    assert!(b.exists("nav a[href='/reveals']"));
    b.execute(
        "document.querySelector('.who input[name=csrf]').remove();",
        json!([]),
    );
    b.click(".who button[type='submit']");
    b.wait_for_path("/signout");
    assert!(b.exists("#message-heading"));
    b.goto(&format!("{}/", server.base()));
    b.wait_for_path("/");
    b.execute(
        "document.querySelector('.who input[name=csrf]').value = 'wrong';",
        json!([]),
    );
    b.click(".who button[type='submit']");
    b.wait_for_path("/signout");
    assert!(b.exists("#message-heading"));

    // Over plain HTTP with the session cookie: 403 without the token; a cross-site
    // Origin is refused even with it.
    let cookie = b.cookie("__Host-fiktiv").unwrap();
    let form = [
        ("Cookie", format!("__Host-fiktiv={cookie}")),
        (
            "Content-Type",
            "application/x-www-form-urlencoded".to_owned(),
        ),
    ];
    let h: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(
        server.request("POST", "/signout", &h, Some(b"")).status,
        403
    );
    b.goto(&format!("{}/", server.base()));
    let token = b
        .execute(
            "return document.querySelector('.who input[name=csrf]').value;",
            json!([]),
        )
        .as_str()
        .unwrap()
        .to_owned();
    let mut cross = h.clone();
    cross.push(("Origin", "https://evil.example"));
    let body = format!("csrf={token}");
    assert_eq!(
        server
            .request("POST", "/signout", &cross, Some(body.as_bytes()))
            .status,
        403
    );
    // Still signed in after all of it.
    assert_eq!(
        server
            .request(
                "GET",
                "/",
                &[("Cookie", &format!("__Host-fiktiv={cookie}"))],
                None
            )
            .status,
        200
    );
}

#[test]
fn repeated_failures_lock_the_account_and_disable_kills_sessions() {
    let server = Server::start("lockout_after_failures = 3\nlockout_secs = 600");
    let e = server.add_user("eva.school", &["school"], &["unit-b"]);
    let f = server.add_user("fia.school", &["school"], &["unit-b"]);
    let b = Browser::start();

    for _ in 0..3 {
        sign_in(&b, &server, &e.name, "wrong password", &totp(&e.secret, 0));
        b.wait_for_path("/signin");
    }
    // Locked: the right password and code are refused now.
    sign_in(&b, &server, &e.name, &e.password, &totp(&e.secret, 0));
    b.wait_for_path("/signin");
    assert!(b.exists("#signin-error"));
    let ev = server.audit();
    assert_eq!(count(&ev, "staff:eva.school", "web.lockout", "ok", None), 1);
    assert_eq!(
        count(
            &ev,
            "staff:eva.school",
            "web.signin",
            "denied",
            Some("refused: locked")
        ),
        1
    );
    let list = web::text(&server.cli(&["users", "list"]).stdout);
    assert!(
        list.lines().any(|l| l.starts_with("eva.school ")
            && l.contains(" auth=local ")
            && l.contains("locked-until=")),
        "{list}"
    );

    // A reset clears the lockout.
    let out = server.cli(&["users", "reset", "eva.school"]);
    assert!(out.status.success());
    let e2 = web::parse_creds(&web::text(&out.stdout));
    assert_ne!(e2.secret, e.secret);
    first_sign_in(&b, &server, &e2, 0);

    // Disabling an account ends its live session at once.
    let b2 = Browser::start();
    first_sign_in(&b2, &server, &f, 0);
    let out = server.cli(&["users", "disable", "fia.school"]);
    assert!(out.status.success(), "{}", web::text(&out.stderr));
    b2.goto(&format!("{}/", server.base()));
    b2.wait_for_path("/signin?ended=1");
    // And it cannot sign in again.
    sign_in(
        &b2,
        &server,
        &f.name,
        "fia.school chose this long passphrase",
        &totp(&f.secret, 1),
    );
    b2.wait_for_path("/signin");
    assert!(b2.exists("#signin-error"));
    let ev = server.audit();
    assert_eq!(count(&ev, "cli", "users.disable", "ok", None), 1);
    assert_eq!(
        count(
            &ev,
            "staff:fia.school",
            "web.signin",
            "denied",
            Some("refused: disabled")
        ),
        1
    );
}

#[test]
fn step_up_requires_a_fresh_code_and_headers_are_strict() {
    let server = Server::start("");
    let g = server.add_user("gus.approver", &["approver"], &[]);
    let b = Browser::start();
    first_sign_in(&b, &server, &g, 0);

    b.goto(&format!("{}/step-up?next=/reveals/x", server.base()));
    b.assert_accessible("the step-up page");
    b.fill("#code", &wrong_totp(&g.secret));
    b.click("#step-up-submit");
    b.wait_for_path("/step-up");
    assert!(b.exists("#code[aria-invalid='true'][aria-describedby~='code-error']"));
    b.assert_accessible("the step-up page with an error");
    b.fill("#code", &totp(&g.secret, 1));
    b.click("#step-up-submit");
    b.wait_for_path("/reveals/x");
    let ev = server.audit();
    assert_eq!(
        count(&ev, "staff:gus.approver", "web.step-up", "ok", None),
        1
    );
    assert_eq!(
        count(&ev, "staff:gus.approver", "web.step-up", "denied", None),
        1
    );

    // Security headers on every UI response.
    for path in ["/signin", "/", "/static/fiktiv.css"] {
        let r = server.get(path).unwrap();
        assert_eq!(
            r.header("content-security-policy"),
            Some(
                "default-src 'self'; script-src 'self'; style-src 'self'; frame-ancestors 'none'; \
                 form-action 'self'; base-uri 'none'"
            ),
            "{path}"
        );
        assert!(r.header("strict-transport-security").is_some(), "{path}");
        assert_eq!(r.header("referrer-policy"), Some("no-referrer"), "{path}");
        assert_eq!(
            r.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
    }
    assert_eq!(
        server.get("/signin").unwrap().header("cache-control"),
        Some("no-store")
    );
    let set = server.get("/signin").unwrap();
    let c = set.header("set-cookie").unwrap();
    assert!(
        c.starts_with("__Host-fiktiv-csrf=")
            && c.contains("Secure; HttpOnly; SameSite=Strict; Path=/")
    );
}

/// The current TOTP time step (30 s). The server accepts a code of this step and the
/// steps either side, each once and only after a code of an earlier step.
fn step_now() -> i64 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    i64::try_from(secs / 30).unwrap()
}

/// Wait until the TOTP time step is at least `step` (polled; at most one step away).
fn wait_for_step(step: i64) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while step_now() < step {
        assert!(
            Instant::now() < deadline,
            "the clock did not reach step {step}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Fill the password change form and send it.
fn change_password(b: &Browser, current: &str, code: &str, new: &str) {
    b.fill("#current_password", current);
    b.fill("#code", code);
    b.fill("#new_password", new);
    b.fill("#confirm", new);
    b.click("#password-submit");
}

#[test]
fn a_password_change_needs_the_current_password_and_a_code_and_ends_other_sessions() {
    // Failed changes and sign-ins of two accounts from one address: above the
    // per-address limit of the default configuration.
    let server = Server::start("lockout_after_failures = 3\nattempts_per_window = 100");
    let h = server.add_user("hugo.school", &["school"], &["unit-c"]);
    let b = Browser::start();

    // The forced change right after the sign-in with the one-time password asks for
    // neither the current password nor a code: that sign-in just checked both.
    // Three codes are used up in turn (this sign-in, a second browser's, the change),
    // each of a later time step than the one before; see `step_now`.
    let first_step = step_now();
    let code = totp_at(&h.secret, first_step * 30);
    sign_in(&b, &server, &h.name, &h.password, &code);
    b.wait_for_path("/password");
    assert!(!b.exists("#current_password") && !b.exists("#code"));
    let chosen = "hugo chose this long passphrase";
    b.fill("#new_password", chosen);
    b.fill("#confirm", chosen);
    b.click("#password-submit");
    b.wait_for_path("/");

    // A chosen change, from the header: it asks for the current password and a code.
    b.click("#change-password");
    b.wait_for_path("/password");
    assert!(b.exists("#current_password[autocomplete='current-password']"));
    assert!(b.exists("#code[autocomplete='one-time-code']"));
    b.assert_accessible("the password change page");
    let wanted = "a brand new long passphrase";

    // A wrong current password (with the right code): refused, tied to both fields.
    change_password(&b, "not the password", &totp(&h.secret, 0), wanted);
    b.wait_for_path("/password");
    assert!(b.exists("#reauth-error"));
    for field in ["#current_password", "#code"] {
        assert!(
            b.exists(&format!(
                "{field}[aria-invalid='true'][aria-describedby~='reauth-error']"
            )),
            "{field}: {}",
            b.source()
        );
    }
    assert!(b.exists("#password-errors a[href='#current_password']"));
    b.assert_accessible("the password change page with a wrong password or code");
    // The right password with a wrong code: refused the same way.
    change_password(&b, chosen, &wrong_totp(&h.secret), wanted);
    b.wait_for_path("/password");
    assert!(b.exists("#reauth-error"));
    // No code at all: its own error on the code field; nothing is checked.
    change_password(&b, chosen, "", wanted);
    b.wait_for_path("/password");
    assert!(b.exists("#code[aria-invalid='true'][aria-describedby~='code-error']"));
    assert!(!b.exists("#current_password[aria-invalid='true']"));
    assert!(!b.exists("#reauth-error"));

    // Nothing changed: the chosen password still signs in, in a second browser.
    let b2 = Browser::start();
    let second_step = step_now() + 1;
    assert!(second_step > first_step);
    let code = totp_at(&h.secret, second_step * 30);
    sign_in(&b2, &server, &h.name, chosen, &code);
    b2.wait_for_path("/");
    assert!(b2.exists("nav a[href='/cases']"));

    // The right password and a fresh code: changed. The session goes on under a new
    // cookie value; the old value opens nothing.
    let before = b.cookie("__Host-fiktiv").unwrap();
    // A code of a later step than the second browser's: wait for the clock to reach
    // that browser's step (at most one step, 30 s) and take the next one.
    wait_for_step(second_step);
    let code = totp_at(&h.secret, (step_now() + 1) * 30);
    change_password(&b, chosen, &code, wanted);
    b.wait_for_path("/?password=changed");
    assert!(b.exists("#home-notice"));
    b.assert_accessible("the home page after a password change");
    let after = b.cookie("__Host-fiktiv").unwrap();
    assert_ne!(after, before);
    let r = server.request(
        "GET",
        "/",
        &[("Cookie", &format!("__Host-fiktiv={before}"))],
        None,
    );
    assert_eq!(r.header("location"), Some("/signin?ended=1"));
    b.goto(&format!("{}/cases", server.base()));
    b.wait_for_path("/cases");
    // The other browser's session has ended: it is sent to sign in.
    b2.goto(&format!("{}/cases", server.base()));
    b2.wait_for_path("/signin?ended=1");
    assert!(b2.exists("#signin-notice"));

    // The old password no longer signs in, the new one does. (With a wrong code: the
    // audited reason says which was wrong, and no fourth code step is needed.)
    sign_in(&b2, &server, &h.name, chosen, &wrong_totp(&h.secret));
    b2.wait_for_path("/signin");
    sign_in(&b2, &server, &h.name, wanted, &wrong_totp(&h.secret));
    b2.wait_for_path("/signin");

    let ev = server.audit();
    let actor = "staff:hugo.school";
    let change = "web.password-change";
    assert_eq!(count(&ev, actor, change, "ok", Some("first-change")), 1);
    assert_eq!(count(&ev, actor, change, "ok", None), 2);
    assert_eq!(
        count(&ev, actor, change, "denied", Some("refused: password")),
        1
    );
    assert_eq!(
        count(&ev, actor, change, "denied", Some("refused: second-factor")),
        1
    );
    assert_eq!(count(&ev, actor, change, "denied", None), 2);
    assert_eq!(
        count(
            &ev,
            actor,
            "web.signin",
            "denied",
            Some("refused: password")
        ),
        1
    );
    assert_eq!(
        count(
            &ev,
            actor,
            "web.signin",
            "denied",
            Some("refused: second-factor")
        ),
        1
    );

    // Failed changes count towards the lockout like failed sign-ins: the third wrong
    // current password in a row locks the account and ends its sessions.
    let i = server.add_user("ivy.school", &["school"], &["unit-c"]);
    let (ivy_password, _) = first_sign_in(&b2, &server, &i, 0);
    b2.goto(&format!("{}/password", server.base()));
    for n in 0..2 {
        change_password(&b2, &format!("guess {n}"), &totp(&i.secret, 1), wanted);
        b2.wait_for_path("/password");
        assert!(b2.exists("#reauth-error"));
    }
    change_password(&b2, "guess 2", &totp(&i.secret, 1), wanted);
    b2.wait_for_path("/signin?ended=1");
    // Locked: the right password and a fresh code do not sign in now.
    sign_in(&b2, &server, &i.name, &ivy_password, &totp(&i.secret, 1));
    b2.wait_for_path("/signin");
    assert!(b2.exists("#signin-error"));
    let ev = server.audit();
    let actor = "staff:ivy.school";
    assert_eq!(
        count(&ev, actor, change, "denied", Some("refused: password")),
        3
    );
    assert_eq!(count(&ev, actor, "web.lockout", "ok", None), 1);
    assert_eq!(
        count(&ev, actor, "web.signin", "denied", Some("refused: locked")),
        1
    );
    // No password was logged.
    let log = server.log();
    for secret in [h.password.as_str(), chosen, wanted, ivy_password.as_str()] {
        assert!(!log.contains(secret));
    }
}

/// A cookie's value from a response's `Set-Cookie` headers.
fn set_cookie_value(r: &fiktiv_tests::HttpResponse, name: &str) -> Option<String> {
    let prefix = format!("{name}=");
    r.headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .find_map(|(_, v)| v.strip_prefix(&prefix))
        .map(|rest| rest.split(';').next().unwrap_or_default().to_owned())
}

/// `application/x-www-form-urlencoded`, every byte but letters and digits escaped.
fn form(fields: &[(&str, &str)]) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    };
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

#[test]
fn password_changes_count_against_the_sign_in_rate_limit() {
    // Over plain HTTP (no browser): three attempts per address and per name.
    let server = Server::start("attempts_per_window = 3\nattempt_window_secs = 600");
    let j = server.add_user("jon.auditor", &["auditor"], &[]);
    let urlencoded = ("Content-Type", "application/x-www-form-urlencoded");

    // Sign in: attempt 1.
    let sign_in_over_http = |password: &str, code: &str| {
        let page = server.get("/signin").unwrap();
        let anon = set_cookie_value(&page, "__Host-fiktiv-csrf").unwrap();
        let body = form(&[
            ("csrf", &anon),
            ("name", &j.name),
            ("password", password),
            ("code", code),
        ]);
        server.request(
            "POST",
            "/signin",
            &[
                ("Cookie", &format!("__Host-fiktiv-csrf={anon}")),
                urlencoded,
            ],
            Some(body.as_bytes()),
        )
    };
    let r = sign_in_over_http(&j.password, &totp(&j.secret, 0));
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("location"), Some("/password"));
    let cookie = set_cookie_value(&r, "__Host-fiktiv").unwrap();

    // The password form with its CSRF token, sent with `fields`.
    let post = |cookie: &str, fields: &[(&str, &str)]| {
        let c = format!("__Host-fiktiv={cookie}");
        let page = server.request("GET", "/password", &[("Cookie", &c)], None);
        assert_eq!(page.status, 200);
        let html = page.text();
        let csrf = html
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap()
            .to_owned();
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        server.request(
            "POST",
            "/password",
            &[("Cookie", &c), urlencoded],
            Some(form(&all).as_bytes()),
        )
    };
    // The forced change right after the sign-in checks nothing typed: not counted.
    let chosen = "jon chose this long passphrase";
    let r = post(&cookie, &[("new_password", chosen), ("confirm", chosen)]);
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("location"), Some("/"));
    let cookie = set_cookie_value(&r, "__Host-fiktiv").unwrap();

    // Two wrong current passwords: attempts 2 and 3.
    let wanted = "a brand new long passphrase";
    for n in 0..2 {
        let guess = format!("guess {n}");
        let code = totp(&j.secret, 1);
        let r = post(
            &cookie,
            &[
                ("current_password", &guess),
                ("code", &code),
                ("new_password", wanted),
                ("confirm", wanted),
            ],
        );
        assert_eq!(r.status, 401, "{}", r.text());
    }
    // Over the limit: refused without checking, even with the right password and code.
    let code = totp(&j.secret, 1);
    let r = post(
        &cookie,
        &[
            ("current_password", chosen),
            ("code", &code),
            ("new_password", wanted),
            ("confirm", wanted),
        ],
    );
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(r.text().contains("id=\"reauth-error\""));
    // The sign-in form shares the limit.
    assert_eq!(sign_in_over_http(chosen, &totp(&j.secret, 1)).status, 429);

    let ev = server.audit();
    let actor = "staff:jon.auditor";
    let change = "web.password-change";
    assert_eq!(
        count(&ev, actor, change, "denied", Some("refused: rate-limited")),
        1
    );
    assert_eq!(
        count(&ev, actor, change, "denied", Some("refused: password")),
        2
    );
    // Only the forced change went through.
    assert_eq!(count(&ev, actor, change, "ok", None), 1);
    assert_eq!(count(&ev, actor, change, "ok", Some("first-change")), 1);
}

/// The pixels of a QR code drawn with `Dense1x2` for a dark terminal (as `users add`
/// draws it on stderr): each character is two modules, one above the other, a block
/// half or whole where the module is light. Scaled up so that a decoder finds it.
fn qr_pixels(art: &str) -> (usize, usize, Vec<u8>) {
    const SCALE: usize = 4;
    let rows: Vec<Vec<char>> = art.lines().map(|l| l.chars().collect()).collect();
    let w = rows.iter().map(Vec::len).max().unwrap();
    let h = rows.len() * 2;
    let mut px = vec![255u8; w * SCALE * h * SCALE];
    for (r, line) in rows.iter().enumerate() {
        for (x, c) in line.iter().enumerate() {
            let (top, bottom) = match c {
                '█' => (true, true),
                '▀' => (true, false),
                '▄' => (false, true),
                ' ' => (false, false),
                other => panic!("unexpected {other:?} in the QR code"),
            };
            for (y, light) in [(r * 2, top), (r * 2 + 1, bottom)] {
                for dy in 0..SCALE {
                    for dx in 0..SCALE {
                        px[(y * SCALE + dy) * w * SCALE + x * SCALE + dx] =
                            if light { 255 } else { 0 };
                    }
                }
            }
        }
    }
    (w * SCALE, h * SCALE, px)
}

/// First run: on an empty system the sign-in page names the command that makes the
/// first account (and says nothing of it once one exists). `users add` draws the QR code
/// of the TOTP URI on stderr and, asked for, writes it as an SVG file only its owner can
/// read; an independent decoder reads the drawn code back as exactly the printed
/// `totp-uri`. The person then signs in with it as usual.
#[test]
fn first_run_names_the_command_and_draws_the_qr_code() {
    use std::os::unix::fs::PermissionsExt as _;
    let server = Server::start("");
    let page = server.get("/signin").unwrap().text();
    assert!(page.contains("id=\"first-run\""), "{page}");
    assert!(page.contains("fiktiv users add"), "{page}");
    let b = Browser::start();
    b.goto(&format!("{}/signin", server.base()));
    assert!(b.exists("#first-run"));
    b.assert_accessible("the sign-in page of a first run");
    b.screenshot_for_docs("signin-first-run.png");

    let tmp = tempfile::tempdir().unwrap();
    let svg_path = tmp.path().join("anna-qr.svg");
    let out = server.cli(&[
        "users",
        "add",
        "--name",
        "anna.admin",
        "--role",
        "central-admin",
        "--qr-svg",
        svg_path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", web::text(&out.stderr));
    let stdout = web::text(&out.stdout);
    let uri = stdout
        .lines()
        .find_map(|l| l.strip_prefix("totp-uri: "))
        .unwrap()
        .to_owned();
    // Four lines on stdout, as before; the code goes to stderr.
    assert_eq!(stdout.lines().count(), 4, "{stdout}");
    let stderr = web::text(&out.stderr);
    let art = stderr
        .split(fiktiv::commands_users::QR_BEGIN)
        .nth(1)
        .and_then(|s| s.split(fiktiv::commands_users::QR_END).next())
        .unwrap()
        .trim_matches('\n');
    let (w, h, px) = qr_pixels(art);
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| px[y * w + x]);
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code on stderr");
    let (_, content) = grids[0].decode().unwrap();
    assert_eq!(content, uri);

    // The SVG file: the same code, readable by its owner only.
    let meta = std::fs::metadata(&svg_path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    assert!(svg.starts_with("<?xml") && svg.contains("<svg"), "{svg}");
    b.goto(&format!("file://{}", svg_path.display()));
    b.screenshot_for_docs("enrolment-qr.png");

    // With an account, the sign-in page no longer says how to make the first.
    let page = server.get("/signin").unwrap().text();
    assert!(!page.contains("id=\"first-run\""), "{page}");
    let anna = web::parse_creds(&stdout);
    first_sign_in(&b, &server, &anna, 0);
}
