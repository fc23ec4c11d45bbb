//! OpenID Connect sign-in of the web UI against a real OpenID provider:
//! node-oidc-provider (npm `oidc-provider`) started by the harness
//! (`fiktiv_tests::OidcProvider`, `tests/web/oidc-provider.mjs`), the real
//! `fiktiv serve`, and Debian's headless Chromium filling the provider's own login
//! form. Covers: a central administrator and a school signing in and landing on their
//! pages; a person whose claims map to no role refused and audited; an absent,
//! tampered, reused or foreign state refused; every sign-in audited; sign-out and
//! disabling ending the session; step-up as a fresh sign-in at the provider.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use crate::support::web;

use std::time::{Duration, Instant};

use fiktiv_tests::{free_port, OidcClient, OidcProvider};
use serde_json::{json, Value};
use web::{Browser, Server};

const CLIENT_ID: &str = "fiktiv-test";
const CLIENT_SECRET: &str = "client-secret-for-tests-4f1c2a9e8b7d6c5a";

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
            a == actor && ac == action && o == outcome && p.as_deref() == purpose
        })
        .count()
}

/// The people the provider knows (login name → claims).
fn accounts() -> Value {
    json!({
        "anna.central": {"preferred_username": "anna.central", "name": "Anna Central",
                         "groups": ["staff", "fiktiv-central"]},
        "rektor.ek": {"preferred_username": "rektor.ek", "groups": ["fiktiv-school"],
                      "fiktiv_units": ["SE-1001", "not a unit code"]},
        "elev.x": {"preferred_username": "elev.x", "groups": ["pupils"]},
    })
}

struct Setup {
    idp: OidcProvider,
    server: Server,
    _secret_dir: tempfile::TempDir,
}

/// A provider with Fiktiv registered as a client, and `fiktiv serve` configured for it.
/// Fiktiv's port is chosen first, since the provider must know the redirect URI.
fn setup() -> Setup {
    for _ in 0..5 {
        let port = free_port().unwrap();
        let redirect = format!("http://127.0.0.1:{port}/signin/oidc/callback");
        let idp = OidcProvider::start(
            &[OidcClient {
                client_id: CLIENT_ID.into(),
                client_secret: CLIENT_SECRET.into(),
                redirect_uris: vec![redirect.clone()],
            }],
            &accounts(),
        )
        .unwrap();
        let secret_dir = tempfile::tempdir().unwrap();
        let secret_file = secret_dir.path().join("oidc-client-secret");
        std::fs::write(&secret_file, format!("{CLIENT_SECRET}\n")).unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&secret_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let config = format!(
            r#"[log]
format = "text"
level = "info"

[web]
attempts_per_window = 1000

[web.oidc]
provider_name = "Testkommunen"
issuer = "{issuer}"
client_id = "{CLIENT_ID}"
client_secret_file = "{secret}"
redirect_url = "{redirect}"
scopes = ["profile", "groups", "units"]
subject_claim = "preferred_username"
unit_claim = "fiktiv_units"
allow_insecure_http_for_tests = true

[[web.oidc.roles]]
claim = "groups"
value = "fiktiv-central"
role = "central-admin"

[[web.oidc.roles]]
claim = "groups"
value = "fiktiv-school"
role = "school"
"#,
            issuer = idp.issuer(),
            secret = secret_file.display(),
        );
        if let Some(server) = Server::start_on(port, &config) {
            return Setup {
                idp,
                server,
                _secret_dir: secret_dir,
            };
        }
    }
    panic!("no free port for fiktiv serve");
}

/// Wait until `css` exists on the current page.
fn wait_for(b: &Browser, css: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !b.exists(css) {
        assert!(
            Instant::now() < deadline,
            "no {css} at {}: {}",
            b.url(),
            b.source()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// On the provider's own login form: type the login name (the test provider does not
/// check the password) and send it.
fn provider_login(b: &Browser, s: &Setup, login: &str) {
    wait_for(b, "input[name='login']");
    assert!(
        b.url().starts_with(&s.idp.issuer()),
        "not at the provider: {}",
        b.url()
    );
    b.fill("input[name='login']", login);
    b.fill(
        "input[name='password']",
        "the provider checks this, not Fiktiv",
    );
    b.click("button[type='submit']");
}

/// From Fiktiv's sign-in page, through the provider, back to Fiktiv.
fn oidc_sign_in(b: &Browser, s: &Setup, login: &str) {
    b.goto(&format!("{}/signin", s.server.base()));
    wait_for(b, "#signin-oidc");
    b.click("#signin-oidc");
    provider_login(b, s, login);
}

fn path_of(url: &str) -> String {
    url.split_once("://")
        .and_then(|(_, r)| r.find('/').map(|i| r[i..].to_owned()))
        .unwrap_or_default()
}

#[test]
fn a_central_admin_and_a_school_sign_in_through_the_provider_and_it_is_audited() {
    let s = setup();
    let b = Browser::start();

    // The sign-in page offers the provider, in Swedish, and stays accessible.
    b.goto(&format!("{}/signin", s.server.base()));
    wait_for(&b, "#signin-oidc");
    assert_eq!(b.text_of("#signin-oidc"), "Logga in med Testkommunen");
    assert!(b.exists("#name"), "the local sign-in form is still there");
    b.assert_accessible("the sign-in page with OpenID Connect");
    b.screenshot_for_docs("signin-oidc.png");

    // The central administrator: the provider's form, then Fiktiv's home.
    oidc_sign_in(&b, &s, "anna.central");
    b.wait_for_path("/");
    let src = b.source();
    assert!(src.contains("anna.central"), "{src}");
    assert!(src.contains("Central systemadministratör"), "{src}");
    for href in ["/orders", "/provisioning"] {
        assert!(b.exists(&format!("nav a[href='{href}']")), "{href}");
    }
    assert!(!b.exists("nav a[href='/audit']"));
    b.assert_accessible("the home page after an OpenID Connect sign-in");
    // The central pages open (the one authorizer permits them).
    for page in ["/orders", "/provisioning"] {
        b.goto(&format!("{}{page}", s.server.base()));
        b.wait_for_path(page);
        assert!(!b.exists("#message-heading"), "{page}: {}", b.source());
    }
    // The session cookie is set; the flow cookie is gone; no script sees either.
    assert!(b.cookie("__Host-fiktiv").is_some());
    assert!(b.cookie("__Host-fiktiv-oidc").is_none());
    assert_eq!(b.execute("return document.cookie;", json!([])), json!(""));

    // A second browser. A password sign-in with the OIDC account's name is refused.
    let b2 = Browser::start();
    web::sign_in(
        &b2,
        &s.server,
        "anna.central",
        "whatever password",
        "123456",
    );
    assert!(b2.exists("#signin-error"));
    // A school principal, with the unit from the claims (the value that is not a unit
    // code is left out).
    oidc_sign_in(&b2, &s, "rektor.ek");
    b2.wait_for_path("/");
    let src = b2.source();
    assert!(src.contains("SE-1001"), "{src}");
    assert!(!src.contains("not a unit code"));
    assert!(b2.exists("nav a[href='/cases']"));
    assert!(!b2.exists("nav a[href='/orders']"));
    b2.goto(&format!("{}/orders", s.server.base()));
    b2.wait_for_path("/orders");
    assert!(
        b2.exists("#message-heading"),
        "a school may not see the queue"
    );

    // OIDC accounts are listed like local ones, marked as such; they have no password
    // to reset.
    let list = web::text(&s.server.cli(&["users", "list"]).stdout);
    for name in ["anna.central", "rektor.ek"] {
        assert!(
            list.lines()
                .any(|l| l.starts_with(&format!("{name} ")) && l.contains(" auth=oidc ")),
            "{list}"
        );
    }
    assert!(!list.contains("auth=local"), "{list}");
    let reset = s.server.cli(&["users", "reset", "anna.central"]);
    assert!(!reset.status.success());

    // Audited: each sign-in, with the account as actor and "oidc" as purpose.
    let ev = s.server.audit();
    assert_eq!(
        count(&ev, "staff:anna.central", "web.signin", "ok", Some("oidc")),
        1
    );
    assert_eq!(
        count(&ev, "staff:rektor.ek", "web.signin", "ok", Some("oidc")),
        1
    );
    assert_eq!(
        count(
            &ev,
            "staff:anna.central",
            "web.signin",
            "denied",
            Some("refused: oidc-account")
        ),
        1
    );
    // Neither the client secret nor a token is in Fiktiv's log.
    let log = s.server.log();
    assert!(!log.contains(CLIENT_SECRET), "{log}");
    assert!(!log.contains("eyJ"), "a JWT in the log: {log}");
}

#[test]
fn a_person_whose_claims_map_to_no_role_is_refused_and_audited() {
    let s = setup();
    let b = Browser::start();
    oidc_sign_in(&b, &s, "elev.x");
    wait_for(&b, "#message-heading");
    assert_eq!(b.text_of("#message-heading"), "Ingen behörighet i Fiktiv");
    assert!(path_of(&b.url()).starts_with("/signin/oidc/callback"));
    assert!(b.cookie("__Host-fiktiv").is_none(), "no session");
    b.assert_accessible("the refusal page");
    b.goto(&format!("{}/", s.server.base()));
    b.wait_for_path("/signin");

    // Audited as a refusal; the person is not written down (no account has the name).
    let ev = s.server.audit();
    assert_eq!(
        count(
            &ev,
            "web:unknown",
            "web.signin",
            "denied",
            Some("refused: oidc-no-role")
        ),
        1
    );
    assert!(!ev.iter().any(|(a, ..)| a.contains("elev.x")));
    let list = web::text(&s.server.cli(&["users", "list"]).stdout);
    assert!(!list.contains("elev.x"), "{list}");
}

/// The `Location` and the flow cookie of `GET /signin/oidc`, fetched without a browser.
fn start_over_http(s: &Setup) -> (String, String) {
    let r = s.server.request("GET", "/signin/oidc", &[], None);
    assert_eq!(r.status, 303, "{}", r.text());
    let location = r.header("location").unwrap().to_owned();
    assert!(location.starts_with(&format!("{}/auth?", s.idp.issuer())));
    for p in [
        "response_type=code",
        "code_challenge_method=S256",
        "code_challenge=",
        "nonce=",
        "state=",
        "prompt=login",
    ] {
        assert!(location.contains(p), "{p} missing in {location}");
    }
    let set = r
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, v)| v.clone())
        .find(|v| v.starts_with("__Host-fiktiv-oidc="))
        .unwrap();
    assert!(set.contains("HttpOnly") && set.contains("Secure") && set.contains("SameSite=Lax"));
    let cookie = set.split(';').next().unwrap().to_owned();
    (location, cookie)
}

fn query_param(url: &str, name: &str) -> String {
    url.split_once('?')
        .unwrap()
        .1
        .split('&')
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
        .unwrap()
        .to_owned()
}

#[test]
fn an_absent_tampered_reused_or_foreign_state_is_refused() {
    let s = setup();
    let refused = |path: &str, cookie: Option<&str>| {
        let headers: Vec<(&str, &str)> = cookie.map(|c| ("Cookie", c)).into_iter().collect();
        let r = s.server.request("GET", path, &headers, None);
        assert_eq!(r.status, 400, "{path}: {}", r.text());
        assert!(r
            .header("set-cookie")
            .is_none_or(|c| !c.starts_with("__Host-fiktiv=")));
    };

    // No state at all.
    refused("/signin/oidc/callback?code=abc", None);
    // A flow started over HTTP: a tampered state, with the right browser cookie.
    let (location, cookie) = start_over_http(&s);
    let state = query_param(&location, "state");
    let mut tampered = state.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    refused(
        &format!("/signin/oidc/callback?code=abc&state={tampered}"),
        Some(&cookie),
    );
    // The right state without the cookie of the browser that started it: refused, and
    // the flow is used up, so the right cookie afterwards is refused too.
    refused(
        &format!("/signin/oidc/callback?code=abc&state={state}"),
        None,
    );
    refused(
        &format!("/signin/oidc/callback?code=abc&state={state}"),
        Some(&cookie),
    );

    // A real code and state from the provider, delivered to a browser that did not
    // start the flow (as if an attacker sent a victim their own sign-in): refused, no
    // session.
    let (location, _attackers_cookie) = start_over_http(&s);
    let b = Browser::start();
    b.goto(&location);
    provider_login(&b, &s, "anna.central");
    wait_for(&b, "#message-heading");
    assert_eq!(b.text_of("#message-heading"), "Inloggningen misslyckades");
    assert!(b.cookie("__Host-fiktiv").is_none());
    b.goto(&format!("{}/", s.server.base()));
    b.wait_for_path("/signin");

    // Each refusal audited; nobody signed in.
    let ev = s.server.audit();
    assert_eq!(
        count(
            &ev,
            "web:unknown",
            "web.signin",
            "denied",
            Some("refused: oidc-state")
        ),
        5
    );
    assert_eq!(
        ev.iter()
            .filter(|(_, a, o, _)| a == "web.signin" && o == "ok")
            .count(),
        0
    );
}

#[test]
fn signing_out_or_disabling_ends_the_session_and_step_up_is_a_fresh_sign_in() {
    let s = setup();
    let b = Browser::start();
    oidc_sign_in(&b, &s, "rektor.ek");
    b.wait_for_path("/");

    // Step-up: an OIDC account is sent to the provider again, which must show its
    // login form again (prompt=login, max_age=0) even though its session is live.
    b.goto(&format!("{}/step-up?next=/cases", s.server.base()));
    wait_for(&b, "#step-up-oidc");
    assert!(!b.exists("#code"), "no TOTP field for an OIDC account");
    b.assert_accessible("the step-up page of an OIDC account");
    b.click("#step-up-oidc");
    provider_login(&b, &s, "rektor.ek");
    b.wait_for_path("/cases");
    // Step-up as somebody else is refused.
    b.goto(&format!("{}/step-up?next=/", s.server.base()));
    wait_for(&b, "#step-up-oidc");
    b.click("#step-up-oidc");
    provider_login(&b, &s, "anna.central");
    wait_for(&b, "#message-heading");
    assert_eq!(b.text_of("#message-heading"), "Inloggningen misslyckades");

    // Sign out: the old cookie opens nothing any more.
    b.goto(&format!("{}/", s.server.base()));
    b.wait_for_path("/");
    let old = b.cookie("__Host-fiktiv").unwrap();
    b.click(".who button[type='submit']");
    b.wait_for_path("/signin?out=1");
    let r = s.server.request(
        "GET",
        "/",
        &[("Cookie", &format!("__Host-fiktiv={old}"))],
        None,
    );
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/signin?ended=1"));

    // Disabling the account ends a live session at once, and the next sign-in through
    // the provider is refused.
    oidc_sign_in(&b, &s, "rektor.ek");
    b.wait_for_path("/");
    let out = s.server.cli(&["users", "disable", "rektor.ek"]);
    assert!(out.status.success(), "{}", web::text(&out.stderr));
    b.goto(&format!("{}/cases", s.server.base()));
    b.wait_for_path("/signin?ended=1");
    oidc_sign_in(&b, &s, "rektor.ek");
    wait_for(&b, "#message-heading");
    assert_eq!(b.text_of("#message-heading"), "Inloggningen nekades");
    assert!(b.cookie("__Host-fiktiv").is_none());

    let ev = s.server.audit();
    assert_eq!(
        count(&ev, "staff:rektor.ek", "web.signin", "ok", Some("oidc")),
        2
    );
    assert_eq!(
        count(&ev, "staff:rektor.ek", "web.step-up", "ok", Some("oidc")),
        1
    );
    assert_eq!(
        count(
            &ev,
            "staff:rektor.ek",
            "web.step-up",
            "denied",
            Some("refused: oidc-other-person")
        ),
        1
    );
    assert_eq!(
        count(
            &ev,
            "staff:rektor.ek",
            "web.signin",
            "denied",
            Some("refused: disabled")
        ),
        1
    );
}

#[test]
fn bad_oidc_configuration_stops_the_start_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let run = |oidc: &str| {
        let path = dir.path().join("fiktiv.toml");
        std::fs::write(&path, format!("[web.oidc]\n{oidc}\n")).unwrap();
        let out = crate::support::launch::fiktiv(&dir.path().join("data"), Some(&path), &["init"])
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        // Logs are JSON lines on stderr; the problem is one `error:` line.
        let stderr = web::text(&out.stderr);
        let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(errors.len(), 1, "{stderr}");
        assert!(!stderr.contains("s3cret"), "{stderr}");
        errors[0].to_owned()
    };
    let base = "provider_name = \"K\"\nclient_id = \"c\"\n\
                redirect_url = \"https://f.example/signin/oidc/callback\"\n\
                [[web.oidc.roles]]\nclaim = \"groups\"\nvalue = \"g\"\nrole = \"auditor\"";
    let err = run(&format!("issuer = \"http://idp.example\"\n{base}"));
    assert!(err.contains("https://"), "{err}");
    let err = run(&format!(
        "issuer = \"http://idp.example\"\nallow_insecure_http_for_tests = true\n{base}"
    ));
    assert!(err.contains("loopback"), "{err}");
    let err = run(&format!("issuer = \"https://idp.example\"\n{base}"));
    assert!(err.contains("FIKTIV_OIDC_CLIENT_SECRET"), "{err}");
    let err = run(&format!(
        "issuer = \"https://idp.example\"\nissuerr = 1\n{base}"
    ));
    assert!(err.contains("issuerr"), "{err}");
    // A secret file others can read is refused, and the secret is not repeated.
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "s3cret").unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let err = run(&format!(
        "issuer = \"https://idp.example\"\nclient_secret_file = \"{}\"\n{base}",
        secret.display()
    ));
    assert!(err.contains("chmod 600"), "{err}");
    // A role that does not exist is named.
    let err = run(
        "issuer = \"https://idp.example\"\nprovider_name = \"K\"\nclient_id = \"c\"\n\
         redirect_url = \"https://f.example/signin/oidc/callback\"\n\
         [[web.oidc.roles]]\nclaim = \"groups\"\nvalue = \"g\"\nrole = \"rektor\"",
    );
    assert!(err.contains("rektor"), "{err}");
}
