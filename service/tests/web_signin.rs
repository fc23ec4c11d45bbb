//! The web UI in a real browser: Debian's headless Chromium through chromedriver,
//! against the real `fiktiv serve`, with accounts made by the real CLI. Two-factor
//! sign-in, the one-time password change, sign-out, expired sessions, CSRF, lockout,
//! disabled accounts, step-up, languages, security headers, and axe-core on every page.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

mod web_common;

use std::time::{Duration, Instant};

use serde_json::json;
use web_common::{first_sign_in, sign_in, totp, wrong_totp, Browser, Server};

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
            started.elapsed() < Duration::from_secs(20),
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
    let list = web_common::text(&server.cli(&["users", "list"]).stdout);
    assert!(
        list.contains("eva.school") && list.contains("locked-until="),
        "{list}"
    );

    // A reset clears the lockout.
    let out = server.cli(&["users", "reset", "eva.school"]);
    assert!(out.status.success());
    let e2 = web_common::parse_creds(&web_common::text(&out.stdout));
    assert_ne!(e2.secret, e.secret);
    first_sign_in(&b, &server, &e2, 0);

    // Disabling an account ends its live session at once.
    let b2 = Browser::start();
    first_sign_in(&b2, &server, &f, 0);
    let out = server.cli(&["users", "disable", "fia.school"]);
    assert!(out.status.success(), "{}", web_common::text(&out.stderr));
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
