//! Leaving the municipality between two Fiktiv instances in the web UI (headless
//! Chromium against two `fiktiv serve` processes, each with its own data directory; #16).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use crate::support::pages;
use crate::support::web;

use pages::{se_personnummer, Tour};
use web::{first_sign_in, Browser, Server, Session};

const REAL_FIRST: &str = "Gränsflyttare";

/// A case opened with its plan in unit `skola-1`, over plain HTTP. Returns the case path.
fn open_case_with_plan(sara: &Session, number: &str, last: &str) -> String {
    let r = sara.post(
        "/cases",
        &format!(
            "unit=skola-1&country=se&personal_number={number}&first_name={REAL_FIRST}\
             &last_name={last}&birth_date=2013-10-05"
        ),
    );
    assert_eq!(r.status, 303, "{}", r.text());
    let case_path = r.header("location").unwrap().to_owned();
    let r = sara.post(
        &format!("{case_path}/plan"),
        "information_handling=Inga+bilder&platforms=Unikum",
    );
    assert_eq!(r.status, 303, "{}", r.text());
    case_path
}

/// Makes a transfer package in the browser (already past the second factor) and returns
/// it as the page shows it.
fn make_package(s: &Browser, server: &Server, case_path: &str, recipient: &str) -> String {
    s.goto(&format!("{}{case_path}/transfer", server.base()));
    s.fill("#recipient_key", recipient);
    s.fill("#consent_given_by", "Båda vårdnadshavarna");
    s.fill("#consent_given_on", "2025-06-01");
    s.execute(
        "document.getElementById('consent_plan').checked = true;",
        serde_json::json!([]),
    );
    s.click("#transfer-submit");
    assert!(s.exists("#transfer-done"), "{}", s.source());
    s.execute(
        "return document.getElementById('package').value;",
        serde_json::json!([]),
    )
    .as_str()
    .unwrap()
    .to_owned()
}

/// A package from `a` for `recipient` that carries the plan without consent to it:
/// sealed in this process with `a`'s keys (its data directory and configuration).
fn beyond_consent(a: &Server, recipient: &str) -> String {
    use fiktiv_routine::transfer::{self, Consent, Payload, RealPart};
    use zeroize::Zeroizing;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let toml = std::fs::read_to_string(a.dir.path().join("fiktiv.toml")).unwrap();
        let config = fiktiv_app::config::Config::parse(&toml, "fiktiv.toml").unwrap();
        let ctx = fiktiv_app::context::Context::open(
            &a.dir.path().join("data"),
            config,
            std::sync::Arc::new(fiktiv_vault::SystemClock),
        )
        .await
        .unwrap();
        let payload = Payload {
            country: "se".into(),
            real: RealPart {
                personal_number: Zeroizing::new(se_personnummer(2013, 10, 5, 578)),
                first_name: Zeroizing::new(REAL_FIRST.into()),
                last_name: Zeroizing::new("Samtyckeslösdotter".into()),
                birth_date: Zeroizing::new("2013-10-05".into()),
            },
            consent: Consent {
                given_by: "Vårdnadshavare".into(),
                given_on: "2025-06-01".into(),
                plan: false,
                disciplinary: false,
            },
            plan: Some(
                serde_json::from_value(serde_json::json!({
                    "information_handling": "x", "platforms": [],
                    "guardian_contact_routes": [], "staff_to_inform": [], "free_text": ""
                }))
                .unwrap(),
            ),
        };
        let package = transfer::seal_package(&ctx.vault, "Avsändarkommun", recipient, &payload)
            .await
            .unwrap();
        serde_json::to_string(&package).unwrap()
    })
}

/// Two Fiktiv instances (two data directories, one binary, two `fiktiv serve`
/// processes): the sending school makes the package in the web UI after the second
/// factor, the receiving school imports it in its own; the case ends at the sender and
/// starts at the receiver. A replayed package, a tampered one, a package made for
/// another Fiktiv, a package beyond its consent and a pasted text that is no package are
/// each refused with a clear message, and nothing is written but the refusal's audit
/// event.
#[test]
fn a_case_moves_between_two_fiktivs_through_the_web_ui() {
    let a = Server::start("\n[transfer]\nmunicipality = \"Avsändarkommun\"\n");
    let key = |server: &Server| {
        let out = server.cli(&["transfer", "key"]);
        assert!(out.status.success(), "{}", web::text(&out.stderr));
        web::text(&out.stdout).trim().to_owned()
    };
    let a_key = key(&a);
    let b = Server::start(&format!(
        "\n[transfer]\nmunicipality = \"Mottagarkommun\"\n\n[[transfer.senders]]\n\
         name = \"Avsändarkommun\"\nkey = \"{a_key}\"\n"
    ));
    let b_key = key(&b);
    assert_ne!(a_key, b_key);
    let sara = a.add_user("sara.school", &["school"], &["skola-1"]);
    let olle = b.add_user("olle.school", &["school"], &["skola-9"]);
    let number = se_personnummer(2013, 10, 5, 552);
    let other_number = se_personnummer(2013, 10, 5, 560);
    const LAST: &str = "Kommungränsdotter";
    const OTHER_LAST: &str = "Kvarstannarsson";
    let mut tour = Tour::new(vec![
        REAL_FIRST.into(),
        LAST.into(),
        OTHER_LAST.into(),
        number.clone(),
        other_number.clone(),
    ]);
    let s = Browser::start();
    first_sign_in(&s, &a, &sara, 0);
    let sara_http = Session::of_page(&a, &s);
    let case_path = open_case_with_plan(&sara_http, &number, LAST);
    let other_path = open_case_with_plan(&sara_http, &other_number, OTHER_LAST);

    // The sending school: the second factor, then the form with the consent.
    s.goto(&format!("{}{case_path}", a.base()));
    s.click("#link-transfer");
    s.wait_for_path(&format!("/step-up?next={case_path}/transfer"));
    s.fill("#code", &web::totp(&sara.secret, 1));
    s.click("#step-up-submit");
    s.wait_for_path(&format!("{case_path}/transfer"));
    tour.page(&s, "making a transfer package");
    s.screenshot_for_docs("transfer-package.png");
    // A bad key and no consent: refused, the case stays open.
    s.fill("#recipient_key", "not a key");
    s.click("#transfer-submit");
    assert!(s.exists("#recipient_key-error") && s.exists("#consent_given_by-error"));
    tour.page(&s, "making a transfer package, with errors");
    let package = make_package(&s, &a, &case_path, &b_key);
    tour.page(&s, "the transfer package made");
    for v in [
        REAL_FIRST,
        LAST,
        &number[2..],
        "Inga bilder",
        "Båda vårdnadshavarna",
    ] {
        assert!(!package.contains(v), "the package shows {v}");
    }
    // A package for another Fiktiv (A's own key stands for it): B cannot open it.
    let not_for_b = make_package(&s, &a, &other_path, &a_key);
    s.goto(&format!("{}{case_path}", a.base()));
    assert!(!s.exists("#link-transfer"), "the case has ended");

    // The receiving school (the same browser: cookies do not tell ports apart, so
    // signing in to B ends the session at A).
    first_sign_in(&s, &b, &olle, 0);
    let import = |text: &str| {
        s.goto(&format!("{}/case-requests", b.base()));
        s.click("#link-transfer-import");
        s.wait_for_path("/transfer-imports");
        s.fill("#package", text);
        s.click("#transfer-import-submit");
    };
    import("{\"not\": \"a package\"}");
    assert!(s.exists("#package-error"));
    let mut tampered: serde_json::Value = serde_json::from_str(&package).unwrap();
    let ct = tampered["ciphertext"].as_str().unwrap().to_owned();
    let flipped = match ct.strip_prefix('A') {
        Some(rest) => format!("B{rest}"),
        None => format!("A{}", &ct[1..]),
    };
    tampered["ciphertext"] = serde_json::json!(flipped);
    // Beyond its consent: the plan without consent to it, sealed with A's keys (what
    // A's operator, who holds them, could do), refused by B.
    let beyond = beyond_consent(&a, &b_key);
    for (text, what) in [
        (tampered.to_string(), "tampered"),
        (not_for_b.clone(), "for another Fiktiv"),
        (beyond, "beyond its consent"),
    ] {
        import(&text);
        assert!(s.exists("#form-errors"), "{what}: {}", s.source());
        tour.page(&s, &format!("importing a package, {what}"));
    }
    import(&package);
    assert!(
        s.url().contains("?done=imported"),
        "{}: {}",
        s.url(),
        s.source()
    );
    assert!(s.exists("#case-notice"));
    tour.page(&s, "the imported case");
    s.screenshot_for_docs("transfer-imported.png");
    // The receiving school reads the identity the package carried (audited).
    let case_b = s.url().split('?').next().unwrap().to_owned();
    s.goto(&format!("{case_b}?show=identity"));
    assert!(s.source().contains(LAST) && s.source().contains(&number[2..]));
    // Replayed: refused.
    import(&package);
    assert!(s.exists("#form-errors"), "{}", s.source());
    // One case at B; each refusal in B's trail, and the package in A's.
    let audit_b = b.audit();
    let count =
        |audit: &[(String, String, String, Option<String>)], action: &str, outcome: &str| {
            audit
                .iter()
                .filter(|(_, a, o, _)| a == action && o == outcome)
                .count()
        };
    assert_eq!(count(&audit_b, "case.transfer-in", "ok"), 1, "{audit_b:?}");
    assert_eq!(
        count(&audit_b, "case.transfer-in", "denied"),
        4,
        "{audit_b:?}"
    );
    let audit_a = a.audit();
    assert!(
        count(&audit_a, "case.transfer-out", "ok") >= 2,
        "{audit_a:?}"
    );
    tour.assert_no_real_identity();
}
