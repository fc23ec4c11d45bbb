//! Nothing typed is lost in the forms (issue: daily use, point 8), in the real browser:
//! a wrong check digit is caught before the form is sent, with every field kept; a
//! plan text shows its length against the limit, a text over it is stopped before it is
//! sent, and one sent anyway (200 KB, a browser without the script) comes back in the
//! form with a clear error instead of a bare "length limit exceeded".
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use crate::support::pages;
use crate::support::web;

use pages::{se_personnummer, wait_for};
use serde_json::json;
use web::{first_sign_in, Server};

/// Open a case through the form; returns its id.
fn open_case(b: &web::Browser, server: &Server) -> String {
    b.goto(&format!("{}/cases/new", server.base()));
    b.fill("#personal_number", &se_personnummer(2014, 4, 2, 123));
    b.fill("#first_name", "Testa");
    b.fill("#last_name", "Längdsson");
    b.fill("#birth_date", "2014-04-02");
    b.click("#case-open-submit");
    let case = b.url().rsplit('/').next().unwrap().to_owned();
    assert_eq!(case.len(), 36, "{}", b.url());
    case
}

#[test]
fn long_plan_texts_are_counted_stopped_and_never_lost() {
    let server = Server::start("");
    let sara = server.add_user("sara.school", &["school"], &["skola-1"]);
    let b = web::Browser::start();
    first_sign_in(&b, &server, &sara, 0);
    let case = open_case(&b, &server);
    b.goto(&format!("{}/cases/{case}/plan", server.base()));
    assert!(b.exists("#free_text-count"), "{}", b.source());
    b.assert_accessible("the plan form with its character counters");

    // 4,001 characters: the counter says so, and the submit is stopped.
    let set = |len: usize| {
        b.execute(
            "const a = document.getElementById('free_text'); a.value = 'å'.repeat(arguments[0]); \
             a.dispatchEvent(new Event('input'));",
            json!([len]),
        );
    };
    b.fill(
        "#information_handling",
        "Ingen uppgift om skolan lämnas ut.",
    );
    set(4001);
    assert!(b.exists("#free_text-count.counter-over"), "{}", b.source());
    assert!(
        b.text_of("#free_text-count").contains("4001"),
        "{}",
        b.text_of("#free_text-count")
    );
    b.execute(
        "document.querySelector('#free_text').form.querySelector('button[type=submit]').click();",
        json!([]),
    );
    assert!(b.exists("#free_text-over[role='alert']"), "{}", b.source());
    assert!(b.url().ends_with("/plan"), "nothing was sent: {}", b.url());
    b.assert_accessible("the plan form with a text over the limit");
    set(4000);
    assert!(!b.exists("#free_text-count.counter-over"));
    assert!(
        !b.exists("#free_text-over"),
        "the message goes when the text fits"
    );

    // 200 KB sent anyway: the form comes back with the error and the whole text.
    set(200_000);
    b.execute(
        "document.documentElement.dataset.stale = '1'; \
         document.querySelector('#free_text').form.submit();",
        json!([]),
    );
    wait_for(&b, "#form-errors", 60);
    let kept = b.execute(
        "return Array.from(document.getElementById('free_text').value).length;",
        json!([]),
    );
    assert_eq!(kept, json!(200_000), "the text is kept");
    assert!(
        b.exists("#form-errors a[href='#free_text']"),
        "{}",
        &b.source()[..2000]
    );
    let info = b.execute(
        "return document.getElementById('information_handling').value;",
        json!([]),
    );
    assert_eq!(info, json!("Ingen uppgift om skolan lämnas ut."));
}

/// A plan written past the idle timeout (the meeting with the guardians took long):
/// the page warns first, "Keep working" keeps the session, and a plan sent after the
/// session ended anyway is kept as a sealed draft that the same person finds on the
/// start page after signing in again, and saves.
#[test]
fn a_plan_written_past_the_idle_timeout_is_kept_as_a_draft() {
    const IDLE_SECS: u64 = 20;
    let server = Server::start(&format!("idle_timeout_secs = {IDLE_SECS}"));
    let sara = server.add_user("sara.school", &["school"], &["skola-1"]);
    let b = web::Browser::start();
    let (password, _) = first_sign_in(&b, &server, &sara, 0);
    let case = open_case(&b, &server);
    b.goto(&format!("{}/cases/{case}/plan", server.base()));

    // The warning comes before the end; keeping on working makes it go.
    wait_for(&b, "#session-warning[role='alert']", 120);
    b.assert_accessible("the plan page with the session warning");
    b.execute(
        "document.getElementById('session-continue').click();",
        json!([]),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while b.exists("#session-warning") {
        assert!(std::time::Instant::now() < deadline, "the warning stayed");
        std::thread::sleep(std::time::Duration::from_millis(50)); // polling, bounded
    }

    // Write, then let the session end: nothing touches it for longer than the timeout
    // (time passing is what is tested here, not a stand-in for a condition).
    let info = "Skolan lämnar inga uppgifter om eleven till någon utomstående.";
    let free = "Mötet med vårdnadshavarna drog ut på tiden.\nAllt står här.";
    b.fill("#information_handling", info);
    b.execute(
        "document.getElementById('free_text').value = arguments[0];",
        json!([free]),
    );
    std::thread::sleep(std::time::Duration::from_secs(IDLE_SECS + 2));
    b.click("#plan-submit");
    assert!(b.url().contains("/signin?ended=1&draft=1"), "{}", b.url());
    assert!(b.exists("#signin-notice"), "{}", b.source());
    b.assert_accessible("the sign-in page after a draft was kept");
    let kept = server.audit();
    assert!(
        kept.iter().any(
            |(actor, action, _, _)| action == "plan.draft-kept" && actor == "staff:sara.school"
        ),
        "{kept:?}"
    );

    // Signed in again: the start page offers the draft first, and it holds the text.
    web::sign_in(
        &b,
        &server,
        &sara.name,
        &password,
        &web::totp(&sara.secret, 0),
    );
    b.wait_for_path("/");
    assert!(
        b.exists(
            "#drafts a[href='/cases/{case}/plan?draft=1']"
                .replace("{case}", &case)
                .as_str()
        ),
        "{}",
        b.source()
    );
    assert!(b.exists("li.task[data-kind='plan-drafts']"));
    b.assert_accessible("the start page with a draft");
    b.screenshot_for_docs("plan-draft.png");
    b.click("#drafts a");
    assert!(b.exists("#draft-notice"), "{}", b.source());
    let value = |id: &str| {
        b.execute(
            "return document.getElementById(arguments[0]).value;",
            json!([id]),
        )
    };
    assert_eq!(value("information_handling"), json!(info));
    assert_eq!(value("free_text"), json!(free));
    b.click("#plan-submit");
    assert!(b.exists("#plan-saved"), "{}", b.source());
    b.goto(&format!("{}/", server.base()));
    assert!(!b.exists("#drafts"), "the draft is gone once saved");
    assert!(!b.exists("li.task[data-kind='plan-drafts']"));
}

/// A plan form sent with an ended session of someone who may not write that case's
/// plan (another unit's school) keeps nothing: the authorizer decides for the ended
/// session's owner as for anyone.
#[test]
fn no_draft_is_kept_for_someone_who_may_not_write_the_plan() {
    const IDLE_SECS: u64 = 20;
    let server = Server::start(&format!("idle_timeout_secs = {IDLE_SECS}"));
    let sara = server.add_user("sara.school", &["school"], &["skola-1"]);
    let olle = server.add_user("olle.school", &["school"], &["skola-2"]);
    let s = web::Browser::start();
    first_sign_in(&s, &server, &sara, 0);
    let case = open_case(&s, &server);
    drop(s);
    let o = web::Browser::start();
    first_sign_in(&o, &server, &olle, 0);
    assert!(o.exists("input[name='csrf']"), "{}", o.source());
    std::thread::sleep(std::time::Duration::from_secs(IDLE_SECS + 2));
    // Olle's own (ended) session's token, on a form for Sara's case.
    o.execute(
        "document.documentElement.dataset.stale = '1'; \
         const f = document.createElement('form'); f.method = 'post'; \
         f.action = '/cases/' + arguments[0] + '/plan'; \
         for (const [k, v] of [['csrf', document.querySelector(\"input[name='csrf']\").value], \
                               ['information_handling', 'Olles text']]) { \
           const i = document.createElement('input'); i.type = 'hidden'; i.name = k; \
           i.value = v; f.appendChild(i); } \
         document.body.appendChild(f); f.submit();",
        json!([case]),
    );
    wait_for(&o, "#signin-notice", 60);
    assert!(o.url().contains("/signin"), "{}", o.url());
    assert!(
        !o.url().contains("draft=1"),
        "no draft for olle: {}",
        o.url()
    );
    let audit = server.audit();
    assert!(
        !audit
            .iter()
            .any(|(_, action, _, _)| action == "plan.draft-kept"),
        "{audit:?}"
    );
}
