//! The limits that protect people hold through the web UI as through the API, with
//! requests at once. Each limit is decided by the routine inside the transaction that
//! acts on it (`fiktiv_routine::lock_limit`), so the two ways in cannot differ:
//! `fiktiv serve` runs for real, the web UI is driven over HTTP with a signed-in
//! session's cookie and CSRF token, the API with the same person's bearer token.
//!
//! The cap on concurrent checks is raced through the API and the routine in
//! `hardening_limits.rs`; this file races the per-person limit on reveal requests.

use std::sync::Barrier;

use crate::support::pages;
use crate::support::web;

use pages::se_personnummer;
use web::{text, Server, Session};

const LIMIT: &str =
    "\n[limits]\nreveal_requests_per_person = 1\nreveal_request_window_secs = 3600\n";

/// One reveal request, through the web UI (`Some((cookie, csrf))`) or the API
/// (`None`, with `token`). Returns whether a request was made, and the status.
fn ask(server: &Server, case_id: &str, web: Option<(&str, &str)>, token: &str) -> (bool, u16) {
    match web {
        Some((cookie, csrf)) => {
            let body =
                format!("csrf={csrf}&case_id={case_id}&fictitious_number=&purpose=Guardian+call");
            let r = server.request(
                "POST",
                "/reveals",
                &[
                    ("Cookie", cookie),
                    ("Content-Type", "application/x-www-form-urlencoded"),
                ],
                Some(body.as_bytes()),
            );
            let made = r.status == 303
                && r.header("location")
                    .is_some_and(|l| l.starts_with("/reveals/"));
            (made, r.status)
        }
        None => {
            let body = format!("{{\"case_id\":\"{case_id}\",\"purpose\":\"Guardian call\"}}");
            let auth = format!("Bearer {token}");
            let r = server.request(
                "POST",
                "/api/v1/reveals",
                &[
                    ("Authorization", auth.as_str()),
                    ("Content-Type", "application/json"),
                ],
                Some(body.as_bytes()),
            );
            (r.status == 201, r.status)
        }
    }
}

fn token_of(server: &Server, name: &str) -> String {
    let out = server.cli(&[
        "tokens", "create", "--role", "school", "--unit", "skola-1", "--name", name,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let t = text(&out.stdout).trim().to_owned();
    assert!(t.starts_with("fkt_"));
    t
}

/// Two requests of one person at the same moment, `web` choosing each one's way in.
/// Exactly one is made; the other is refused as rate-limited (429 in both).
fn race(server: &Server, case_id: &str, s: &Session, token: &str, ways: [bool; 2]) {
    let barrier = Barrier::new(2);
    let results: Vec<(bool, u16)> = std::thread::scope(|scope| {
        let handles: Vec<_> = ways
            .iter()
            .map(|&web| {
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    ask(
                        server,
                        case_id,
                        web.then_some((s.cookie.as_str(), s.csrf.as_str())),
                        token,
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let made = results.iter().filter(|(m, _)| *m).count();
    assert_eq!(made, 1, "ways {ways:?} (web = true): {results:?}");
    let refused: Vec<u16> = results.iter().filter(|(m, _)| !m).map(|r| r.1).collect();
    assert_eq!(refused, vec![429], "ways {ways:?}: {results:?}");
}

#[test]
fn reveal_requests_are_capped_per_person_with_requests_at_once_in_the_web_ui_and_the_api() {
    let server = Server::start(LIMIT);
    let people = ["sara.school", "berit.school", "cecilia.school"];
    let creds: Vec<_> = people
        .iter()
        .map(|p| server.add_user(p, &["school"], &["skola-1"]))
        .collect();
    let sessions: Vec<Session> = creds.iter().map(|c| Session::sign_in(&server, c)).collect();
    let tokens: Vec<String> = people.iter().map(|p| token_of(&server, p)).collect();

    let number = se_personnummer(2014, 2, 3, 412);
    let r = sessions[0].post(
        "/cases",
        &format!(
            "unit=skola-1&country=se&personal_number={number}&first_name=Tove\
             &last_name=Lindqvist&birth_date=2014-02-03"
        ),
    );
    assert_eq!(r.status, 303, "{}", r.text());
    let case_id = r
        .header("location")
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();

    // One person, two ways in at once: web and web, web and API, API and API.
    for (i, ways) in [[true, true], [true, false], [false, false]]
        .into_iter()
        .enumerate()
    {
        race(&server, &case_id, &sessions[i], &tokens[i], ways);
    }

    // The trail holds one request per person, and a refusal for the other.
    let audit = server.audit();
    for p in people {
        let actor = format!("staff:{p}");
        let of = |outcome: &str| {
            audit
                .iter()
                .filter(|(a, action, o, _)| {
                    *a == actor && action == "reveal.request" && o == outcome
                })
                .count()
        };
        assert_eq!(of("ok"), 1, "{p}: {audit:?}");
    }
    // A later request of the first person is refused too: the limit is the person's.
    let (made, status) = ask(&server, &case_id, None, &tokens[0]);
    assert_eq!((made, status), (false, 429));
}
