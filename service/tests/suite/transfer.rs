//! Leaving the municipality (#16): a case transfer package between Fiktiv instances,
//! each with its own data directory, root key and database (the sender on SQLite or
//! PostgreSQL, the receivers on SQLite), through the API of each. The package reveals
//! nothing without the receiver's key; the receiver imports it as a new case with the
//! plan the consent allows; a replayed, tampered, foreign, unknown-sender or
//! beyond-consent package is refused with its own error and writes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use crate::support::api;

use api::*;
use axum::http::StatusCode;
use fiktiv_app::config::Config;
use fiktiv_routine::transfer::TransferSender;
use fiktiv_routine::transfer::{self, Consent, Payload, RealPart};
use fiktiv_tests::TestDatabase;
use serde_json::{json, Value};
use zeroize::Zeroizing;

const FIRST: &str = "Flyttlärka";
const LAST: &str = "Kommungränsdotter";
const BIRTH: &str = "2014-06-18";

fn sender_config(name: &str) -> Config {
    let mut c = Config::default();
    c.transfer.municipality = Some(name.to_owned());
    c
}

fn receiver_config(senders: &[(&str, &str)]) -> Config {
    let mut c = Config::default();
    c.transfer.senders = senders
        .iter()
        .map(|(name, key)| TransferSender {
            name: (*name).to_owned(),
            key: (*key).to_owned(),
        })
        .collect();
    c
}

async fn pupil_with_plan(e: &Env, serial: u16) -> (String, String) {
    let number = se_number(date(2014, 6, 18), serial);
    let case = e
        .ok(
            StatusCode::CREATED,
            "POST",
            &format!("/api/v1/units/{UNIT_A}/cases"),
            SCHOOL_A,
            Some(
                json!({"country": "se", "personal_number": number, "first_name": FIRST,
                        "last_name": LAST, "birth_date": BIRTH}),
            ),
        )
        .await["case_id"]
        .as_str()
        .unwrap()
        .to_owned();
    e.ok(
        StatusCode::OK,
        "PUT",
        &format!("/api/v1/cases/{case}/plan"),
        SCHOOL_A,
        Some(
            json!({"information_handling": "Inga bilder på webben", "platforms": ["Unikum"],
            "guardian_contact_routes": ["Via rektor"], "staff_to_inform": ["Mentor"],
            "free_text": "Skjuts ordnas."}),
        ),
    )
    .await;
    (case, number)
}

fn consent(plan: bool) -> Value {
    json!({"given_by": "Vårdnadshavare 1 och 2", "given_on": "2026-03-01", "plan": plan,
           "disciplinary": false})
}

async fn import(e: &Env, package: &Value) -> (StatusCode, Value) {
    e.call(
        "POST",
        &format!("/api/v1/units/{UNIT_B}/transfer-imports"),
        SCHOOL_B,
        Some(package.clone()),
    )
    .await
}

fn code(r: &Value) -> &str {
    r["type"]
        .as_str()
        .unwrap_or_default()
        .trim_start_matches("urn:fiktiv:problem:")
}

async fn a_case_moves_to_another_municipality(db: TestDatabase) {
    let a = env_with(db, at(2026, 3, 2), sender_config("Avsändarkommun")).await;
    let a_key = transfer::public_key(&a.vault).await.unwrap();
    let stranger = env_with(
        TestDatabase::sqlite().unwrap(),
        at(2026, 3, 2),
        sender_config("Okänd kommun"),
    )
    .await;
    let b = env_with(
        TestDatabase::sqlite().unwrap(),
        at(2026, 3, 2),
        receiver_config(&[("Avsändarkommun", &a_key)]),
    )
    .await;
    let b_key = transfer::public_key(&b.vault).await.unwrap();
    let c = env_with(
        TestDatabase::sqlite().unwrap(),
        at(2026, 3, 2),
        receiver_config(&[("Avsändarkommun", &a_key)]),
    )
    .await;
    let c_key = transfer::public_key(&c.vault).await.unwrap();
    assert_ne!(b_key, c_key);
    // The key is made once and kept.
    assert_eq!(transfer::public_key(&b.vault).await.unwrap(), b_key);

    let (case, number) = pupil_with_plan(&a, 611).await;
    let plan_a = a
        .ok(
            StatusCode::OK,
            "GET",
            &format!("/api/v1/cases/{case}/plan"),
            SCHOOL_A,
            None,
        )
        .await;
    let path = format!("/api/v1/cases/{case}/transfer-package");

    // Refused, and the case stays open: no consent, a bad key, another unit.
    let before = a.snapshot().await;
    let (s, r) = a
        .call(
            "POST",
            &path,
            SCHOOL_A,
            Some(json!({"recipient_key": b_key,
            "consent": {"given_by": "", "given_on": "2026-03-01", "plan": true}})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{r}");
    let (s, r) = a
        .call(
            "POST",
            &path,
            SCHOOL_A,
            Some(json!({"recipient_key": "not a key",
            "consent": consent(true)})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{r}");
    for who in [SCHOOL_B, CENTRAL, APPROVER, AUDITOR] {
        let (s, _) = a
            .call(
                "POST",
                &path,
                who,
                Some(json!({"recipient_key": b_key, "consent": consent(true)})),
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{who}");
    }
    assert_eq!(a.snapshot().await[..9], before[..9]);

    // The package for B, with consent to the plan. It shows nothing of the pupil.
    let package = a
        .ok(
            StatusCode::OK,
            "POST",
            &path,
            SCHOOL_A,
            Some(json!({"recipient_key": b_key, "consent": consent(true)})),
        )
        .await;
    let text = package.to_string();
    for v in [
        FIRST,
        LAST,
        &number[2..],
        BIRTH,
        "Skjuts",
        "Unikum",
        "Vårdnadshavare",
    ] {
        assert!(!text.contains(v), "the package shows {v}");
    }
    assert_eq!(package["sender_name"], "Avsändarkommun");
    // The sending case has ended: the pupil left the municipality.
    let view = a
        .ok(
            StatusCode::OK,
            "GET",
            &format!("/api/v1/cases/{case}"),
            SCHOOL_A,
            None,
        )
        .await;
    assert_eq!(view["state"], "ended");
    assert_eq!(view["end_reason"], "left-municipality");

    // B imports it into a unit of its own: the real identity and the plan arrive.
    let before_b = b.snapshot().await;
    let (s, r) = import(&b, &package).await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    assert_eq!(r["sender_name"], "Avsändarkommun");
    assert_eq!(r["plan_included"], true);
    assert_eq!(r["consent"]["given_by"], "Vårdnadshavare 1 och 2");
    let new_case = r["case_id"].as_str().unwrap().to_owned();
    let id = b
        .ok(
            StatusCode::OK,
            "GET",
            &format!("/api/v1/cases/{new_case}/identity"),
            SCHOOL_B,
            None,
        )
        .await;
    assert_eq!(id["personal_number"], number.as_str());
    assert_eq!(id["last_name"], LAST);
    let plan_b = b
        .ok(
            StatusCode::OK,
            "GET",
            &format!("/api/v1/cases/{new_case}/plan"),
            SCHOOL_B,
            None,
        )
        .await;
    assert_eq!(plan_b["plan"], plan_a["plan"]);
    assert_eq!(plan_b["version"], 1);
    let view = b
        .ok(
            StatusCode::OK,
            "GET",
            &format!("/api/v1/cases/{new_case}"),
            SCHOOL_B,
            None,
        )
        .await;
    assert_eq!(view["state"], "open", "the receiver starts its own routine");
    assert_eq!(view["unit"], UNIT_B);
    // Both right-of-access reports say where the case went and came from: A's the
    // package made (and its read of the identity for it), B's the package imported.
    let report_a = a
        .ok(
            StatusCode::OK,
            "GET",
            &format!("/api/v1/cases/{case}/access-report"),
            SCHOOL_A,
            None,
        )
        .await;
    let sent = report_a["transfers"].as_array().unwrap();
    assert_eq!(sent.len(), 1, "{report_a}");
    assert_eq!(sent[0]["direction"], "out");
    assert_eq!(sent[0]["package_id"], package["package_id"]);
    let reads: Vec<&str> = report_a["accesses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        reads.iter().filter(|a| **a == "case.transfer-out").count(),
        1,
        "{reads:?}"
    );
    let report_b = b
        .ok(
            StatusCode::OK,
            "GET",
            &format!("/api/v1/cases/{new_case}/access-report"),
            SCHOOL_B,
            None,
        )
        .await;
    let came = report_b["transfers"].as_array().unwrap();
    assert_eq!(came.len(), 1, "{report_b}");
    assert_eq!(came[0]["direction"], "in");
    assert_eq!(came[0]["sender"], "Avsändarkommun");
    assert_eq!(came[0]["package_id"], package["package_id"]);
    let after_import = b.snapshot().await;
    assert_eq!(after_import[0], before_b[0] + 1);

    // Replayed: refused, nothing written but the refusal's audit event.
    let (s, r) = import(&b, &package).await;
    assert_eq!(
        (s, code(&r)),
        (StatusCode::CONFLICT, "transfer-replayed"),
        "{r}"
    );
    let now = b.snapshot().await;
    assert_eq!(now[..12], after_import[..12]);
    assert_eq!(now[12], after_import[12] + 1, "the refusal is audited");

    // Tampered: a byte of the sealed case, or the sender's name in the header.
    let mut t = package.clone();
    let ct = t["ciphertext"].as_str().unwrap().to_owned();
    let flipped = match ct.strip_prefix('A') {
        Some(rest) => format!("B{rest}"),
        None => format!("A{}", &ct[1..]),
    };
    t["ciphertext"] = json!(flipped);
    t["package_id"] = json!(uuid::Uuid::new_v4().to_string());
    let (s, r) = import(&b, &t).await;
    assert_eq!(
        (s, code(&r)),
        (StatusCode::CONFLICT, "transfer-tampered"),
        "{r}"
    );
    let mut t = package.clone();
    t["sender_name"] = json!("Någon annan kommun");
    let (s, r) = import(&b, &t).await;
    assert_eq!(
        (s, code(&r)),
        (StatusCode::CONFLICT, "transfer-tampered"),
        "{r}"
    );
    let mut t = package.clone();
    t["package_id"] = json!(uuid::Uuid::new_v4().to_string());
    let (s, r) = import(&b, &t).await;
    assert_eq!(
        (s, code(&r)),
        (StatusCode::CONFLICT, "transfer-tampered"),
        "a new id on an old package does not make it new: {r}"
    );
    assert_eq!(b.snapshot().await[..12], after_import[..12]);

    // A package made for C: B cannot open it and says so; C can.
    let (case2, _) = pupil_with_plan(&a, 733).await;
    let for_c = a
        .ok(
            StatusCode::OK,
            "POST",
            &format!("/api/v1/cases/{case2}/transfer-package"),
            SCHOOL_A,
            Some(json!({"recipient_key": c_key, "consent": consent(false)})),
        )
        .await;
    let (s, r) = import(&b, &for_c).await;
    assert_eq!(
        (s, code(&r)),
        (StatusCode::CONFLICT, "transfer-not-for-us"),
        "{r}"
    );
    let (s, r) = import(&c, &for_c).await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    assert_eq!(r["plan_included"], false, "no consent to the plan: no plan");

    // From a municipality B does not know: refused.
    let (case3, _) = pupil_with_plan(&stranger, 845).await;
    let from_stranger = stranger
        .ok(
            StatusCode::OK,
            "POST",
            &format!("/api/v1/cases/{case3}/transfer-package"),
            SCHOOL_A,
            Some(json!({"recipient_key": b_key, "consent": consent(true)})),
        )
        .await;
    let (s, r) = import(&b, &from_stranger).await;
    assert_eq!(
        (s, code(&r)),
        (StatusCode::CONFLICT, "transfer-sender-unknown"),
        "{r}"
    );
    // A stranger that names itself as A: the key is not A's, so it is unknown.
    let mut posing = from_stranger.clone();
    posing["sender_name"] = json!("Avsändarkommun");
    let (s, r) = import(&b, &posing).await;
    assert_eq!(
        (s, code(&r)),
        (StatusCode::CONFLICT, "transfer-sender-unknown"),
        "{r}"
    );
    // A package signed as A but carrying A's key with a stranger's seal: does not open.
    let mut forged = from_stranger.clone();
    forged["sender"] = json!(a_key);
    let (s, r) = import(&b, &forged).await;
    assert_eq!(
        (s, code(&r)),
        (StatusCode::CONFLICT, "transfer-tampered"),
        "{r}"
    );

    // Beyond its consent: the plan without consent to it (sealed by A's keys).
    let payload = Payload {
        country: "se".into(),
        real: RealPart {
            personal_number: Zeroizing::new(se_number(date(2014, 6, 18), 927)),
            first_name: Zeroizing::new(FIRST.into()),
            last_name: Zeroizing::new("Samtyckesdotter".into()),
            birth_date: Zeroizing::new(BIRTH.into()),
        },
        consent: Consent {
            given_by: "Vårdnadshavare".into(),
            given_on: "2026-03-01".into(),
            plan: false,
            disciplinary: false,
        },
        plan: serde_json::from_value(plan_a["plan"].clone()).unwrap(),
    };
    let beyond = transfer::seal_package(&a.vault, "Avsändarkommun", &b_key, &payload)
        .await
        .unwrap();
    let (s, r) = import(&b, &serde_json::to_value(&beyond).unwrap()).await;
    assert_eq!(
        (s, code(&r)),
        (StatusCode::CONFLICT, "transfer-consent-scope"),
        "{r}"
    );
    // Authentic but unreadable: a country this version does not know (the fuzz target
    // `transfer`'s first finding: it was an internal error, 500). Refused, not stored.
    let mut unknown_country = payload;
    unknown_country.country = "oe".into();
    unknown_country.plan = None;
    let odd = transfer::seal_package(&a.vault, "Avsändarkommun", &b_key, &unknown_country)
        .await
        .unwrap();
    let (s, r) = import(&b, &serde_json::to_value(&odd).unwrap()).await;
    assert_eq!(
        (s, code(&r)),
        (StatusCode::CONFLICT, "transfer-malformed"),
        "{r}"
    );
    assert_eq!(
        b.snapshot().await[..12],
        after_import[..12],
        "nothing written"
    );

    // Only the receiving unit's school imports.
    for who in [SCHOOL_A, CENTRAL, APPROVER, AUDITOR] {
        let (s, _) = b
            .call(
                "POST",
                &format!("/api/v1/units/{UNIT_B}/transfer-imports"),
                who,
                Some(package.clone()),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{who}");
    }
}
both_backends!(a_case_moves_to_another_municipality);

/// The first uses of this Fiktiv's transfer key, several at once (two schools making
/// their first packages together), agree on one key, stored once.
async fn the_first_key_is_made_once_when_asked_for_at_once(db: TestDatabase) {
    let e = env(db, at(2026, 3, 2)).await;
    let (a, b, c) = tokio::join!(
        transfer::public_key(&e.vault),
        transfer::public_key(&e.vault),
        transfer::public_key(&e.vault),
    );
    let (a, b, c) = (a.unwrap(), b.unwrap(), c.unwrap());
    assert_eq!(a, b);
    assert_eq!(b, c);
    assert_eq!(e.count("transfer_keys").await, 1);
    assert_eq!(transfer::public_key(&e.vault).await.unwrap(), a);
}
both_backends!(the_first_key_is_made_once_when_asked_for_at_once);
