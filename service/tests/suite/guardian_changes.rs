//! A pupil's guardians after the order (#16), through the API against slapd,
//! scim2-server and OneRoster, on SQLite and PostgreSQL: a guardian who loses custody is
//! removed (record, real identity and blind indexes gone; accounts disabled, then
//! deleted after the grace period); a new guardian is recorded by the school and
//! registered by the central administrator (a new person with new accounts); a
//! guardian's wrong fictitious name is changed in place. Bad input and other callers
//! change nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use crate::corrections::{subjects_with, versions, OLD_FIRST, OLD_LAST};
use crate::support::api;
use crate::support::provisioning;

use api::*;
use axum::http::StatusCode;
use fiktiv_tests::TestDatabase;
use fiktiv_vault::IndexKind;
use provisioning::*;
use serde_json::json;
use sqlx::Row;

/// A guardian loses custody after the order (#16): the school removes them, with a
/// reason. Their record and real identity go at once (no sealed record, no blind
/// index); their accounts are disabled in every target at the next run and deleted after
/// the grace period; the pupil's accounts stay (same SCIM id) and no roster relates the
/// pupil to them any more. Bad input and other callers change nothing.
async fn a_guardian_who_loses_custody_loses_the_accounts(db: TestDatabase) {
    let peers = Peers::start();
    let toml = targets_toml(&peers, &peers.slapd.url(), &peers.scim.base_url(), "");
    let p = penv(db, at(2026, 3, 2), &toml).await;
    let e = &p.e;
    let real = Real::new(OLD_FIRST, OLD_LAST, "2014-08-30", 513);
    let guardian_number = se_number(date(1985, 2, 11), 871);
    let case = pupil(
        e,
        &real,
        ("Alva", "Berglund", "2014-11-02"),
        Some(guardian("Vårdnadsfar", OLD_LAST, 871, ("Nils", "Berglund"))),
    )
    .await;
    p.work().await;
    let persons = p.person_ids(&case).await;
    assert_eq!(persons.len(), 2, "{persons:?}");
    let pupil_id = p.pupil_id(&case).await;
    let guardian_id = persons
        .iter()
        .find(|(_, s)| s == "guardian-1")
        .unwrap()
        .0
        .clone();
    assert_eq!(peers.scim_users(&guardian_id)[0]["active"], true);
    let pupil_scim = peers.scim_users(&pupil_id)[0]["id"].clone();
    assert_eq!(
        subjects_with(e, IndexKind::PersonalNumber, &guardian_number).await,
        ["guardian-1"]
    );
    let path = format!("/api/v1/cases/{case}/guardians/1/removal");

    // Refused, changing nothing: a reason with a personal number, no reason, a guardian
    // who is not recorded, and callers who may not.
    let before = e.snapshot().await;
    for reason in [format!("Gäller {guardian_number}"), " ".to_owned()] {
        let (s, r) = e
            .call("POST", &path, SCHOOL_A, Some(json!({ "reason": reason })))
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{r}");
        assert!(r.to_string().contains("correction.reason-invalid"), "{r}");
        assert!(!r.to_string().contains(&guardian_number[2..]), "{r}");
    }
    for n in ["2", "0", "5", "x"] {
        let (s, _) = e
            .call(
                "POST",
                &format!("/api/v1/cases/{case}/guardians/{n}/removal"),
                SCHOOL_A,
                Some(json!({"reason": "Ändrad vårdnad"})),
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{n}");
    }
    for who in [SCHOOL_B, CENTRAL, APPROVER, AUDITOR] {
        let (s, _) = e
            .call(
                "POST",
                &path,
                who,
                Some(json!({"reason": "Ändrad vårdnad"})),
            )
            .await;
        assert!(
            s == StatusCode::NOT_FOUND || s == StatusCode::FORBIDDEN,
            "{who}: {s}"
        );
    }
    assert_eq!(e.snapshot().await, before);

    // Removed.
    let (s, r) = e
        .call(
            "POST",
            &path,
            SCHOOL_A,
            Some(json!({"reason": "Vårdnaden är ändrad genom dom"})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{r}");
    let recorded: i64 = sqlx::query("SELECT COUNT(*) AS n FROM guardians WHERE case_id = $1")
        .bind(&case)
        .fetch_one(e.vault.db().pool())
        .await
        .unwrap()
        .get("n");
    assert_eq!(recorded, 0);
    assert_eq!(versions(e, &case, "identity:guardian-1").await, 0);
    assert!(
        subjects_with(e, IndexKind::PersonalNumber, &guardian_number)
            .await
            .is_empty()
    );
    // Again: nothing to remove.
    let (s, _) = e
        .call("POST", &path, SCHOOL_A, Some(json!({"reason": "Igen"})))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // The next run disables the guardian's accounts; the pupil keeps theirs, and the
    // roster no longer relates the pupil to the guardian.
    p.work().await;
    assert!(p.jobs("failed").await.is_empty());
    assert_eq!(peers.scim_users(&guardian_id)[0]["active"], false);
    assert_eq!(peers.scim_users(&pupil_id)[0]["id"], pupil_scim);
    assert_eq!(peers.scim_users(&pupil_id)[0]["active"], true);
    let roster = fiktiv_provisioning::oneroster::parse_csv(peers.users_csv().as_bytes()).unwrap();
    let pupil_row = roster.iter().find(|r| r["sourcedId"] == pupil_id).unwrap();
    assert_eq!(pupil_row["agentSourcedIds"], "", "{pupil_row:?}");

    // A new guardian 1 (custody went to someone else): recorded by the school, waiting
    // for the central administrator (fictitious data only), registered with a number
    // Fiktiv picks; a new person with accounts of their own, never the removed one's.
    let new_guardian = guardian(
        "Nyvårdnadsmor",
        "Ersättardotter",
        455,
        ("Märta", "Lindgren"),
    );
    let g1 = format!("/api/v1/cases/{case}/guardians/1");
    e.ok(
        StatusCode::OK,
        "PUT",
        &g1,
        SCHOOL_A,
        Some(new_guardian.clone()),
    )
    .await;
    let waiting = e
        .ok(
            StatusCode::OK,
            "GET",
            "/api/v1/guardian-registrations",
            CENTRAL,
            None,
        )
        .await;
    assert_eq!(waiting.as_array().unwrap().len(), 1, "{waiting}");
    assert_eq!(waiting[0]["first_name"], "Märta");
    assert_eq!(waiting[0]["guardian_no"], 1);
    assert!(!waiting.to_string().contains("Ersättardotter"), "{waiting}");
    let register = format!("{g1}/registration");
    for who in [SCHOOL_A, APPROVER, AUDITOR] {
        let (s, _) = e.call("POST", &register, who, None).await;
        assert!(
            s == StatusCode::NOT_FOUND || s == StatusCode::FORBIDDEN,
            "{who}: {s}"
        );
    }
    let registered = e.ok(StatusCode::OK, "POST", &register, CENTRAL, None).await;
    assert_eq!(registered["first_name"], "Märta");
    assert!(
        registered["number"].as_str().unwrap().starts_with("1985"),
        "{registered}"
    );
    let (s, r) = e.call("POST", &register, CENTRAL, None).await;
    assert_eq!(
        (s, r["type"].as_str()),
        (
            StatusCode::CONFLICT,
            Some("urn:fiktiv:problem:guardian-registered")
        )
    );
    // With accounts, guardian 1 is not rewritten: removed first, then a new one.
    let (s, r) = e.call("PUT", &g1, SCHOOL_A, Some(new_guardian)).await;
    assert_eq!(
        (s, r["type"].as_str()),
        (
            StatusCode::CONFLICT,
            Some("urn:fiktiv:problem:guardian-registered")
        )
    );
    p.work().await;
    assert!(p.jobs("failed").await.is_empty());
    let persons = p.person_ids(&case).await;
    let new_id = persons
        .iter()
        .find(|(_, s)| s == "guardian-1")
        .unwrap()
        .0
        .clone();
    assert_ne!(
        new_id, guardian_id,
        "a new person, not the removed guardian's"
    );
    assert_eq!(peers.scim_users(&new_id)[0]["active"], true);
    assert_eq!(peers.scim_users(&new_id)[0]["name"]["givenName"], "Märta");
    assert_eq!(peers.scim_users(&guardian_id)[0]["active"], false);
    let roster = fiktiv_provisioning::oneroster::parse_csv(peers.users_csv().as_bytes()).unwrap();
    let pupil_row = roster.iter().find(|r| r["sourcedId"] == pupil_id).unwrap();
    assert_eq!(pupil_row["agentSourcedIds"], new_id.as_str());
    assert!(e
        .ok(
            StatusCode::OK,
            "GET",
            "/api/v1/guardian-registrations",
            CENTRAL,
            None
        )
        .await
        .as_array()
        .unwrap()
        .is_empty());

    // The new guardian's fictitious name was wrong: the school asks for a change,
    // checked against that guardian's real identity (the real name is refused with the
    // one refusal that does not say why); the central administrator registers it from
    // fictitious data; the guardian's accounts are rewritten in place.
    let change = format!("/api/v1/cases/{case}/guardians/1/fictitious-change");
    let ask = |first: &str, reason: &str| {
        json!({"first_name": first, "last_name": "Lindgren", "birth_date": "1985-07-07",
               "reason": reason})
    };
    let (s, r) = e
        .call("POST", &change, SCHOOL_A, Some(ask("Märit", " ")))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{r}");
    let (s, r) = e
        .call(
            "POST",
            &change,
            SCHOOL_A,
            Some(
                json!({"first_name": "Nyvårdnadsmor", "last_name": "Ersättardotter",
                        "birth_date": "1985-07-07", "reason": "Stavfel"}),
            ),
        )
        .await;
    assert!(
        s.is_client_error(),
        "the guardian's real name is refused: {s} {r}"
    );
    assert!(!r.to_string().contains("Ersättardotter"), "{r}");
    let (s, _) = e
        .call(
            "POST",
            &format!("/api/v1/cases/{case}/guardians/2/fictitious-change"),
            SCHOOL_A,
            Some(ask("Märit", "Stavfel")),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "no guardian 2");
    let asked = e
        .ok(
            StatusCode::CREATED,
            "POST",
            &change,
            SCHOOL_A,
            Some(ask("Märit", "Stavfel i förnamnet")),
        )
        .await;
    assert_eq!(asked["subject"], "guardian-1");
    let queue = e
        .ok(
            StatusCode::OK,
            "GET",
            "/api/v1/fictitious-changes",
            CENTRAL,
            None,
        )
        .await;
    assert_eq!(queue[0]["subject"], "guardian-1", "{queue}");
    assert!(!queue.to_string().contains("Ersättardotter"));
    let number_before = registered["number"].clone();
    let done = e
        .ok(
            StatusCode::OK,
            "POST",
            &format!(
                "/api/v1/fictitious-changes/{}/registration",
                asked["change_id"].as_str().unwrap()
            ),
            CENTRAL,
            None,
        )
        .await;
    assert_eq!(
        done["number"], number_before,
        "the same birth date keeps the number"
    );
    p.work().await;
    assert!(p.jobs("failed").await.is_empty());
    let users = peers.scim_users(&new_id);
    assert_eq!(users.len(), 1, "in place: no second account");
    assert_eq!(users[0]["name"]["givenName"], "Märit");
    assert_eq!(peers.ldap_count(&new_id), 1);

    // After the grace period (30 days by default), the removed guardian's accounts are
    // deleted; the pupil's and the new guardian's stay.
    e.clock.advance(chrono::TimeDelta::days(31));
    p.work().await;
    assert!(p.jobs("failed").await.is_empty());
    assert!(peers.scim_users(&guardian_id).is_empty());
    assert_eq!(peers.ldap_count(&guardian_id), 0);
    assert_eq!(peers.csv_count(&guardian_id), 0);
    assert_eq!(peers.ldap_count(&pupil_id), 1);
    assert_eq!(peers.scim_users(&pupil_id).len(), 1);
    assert_eq!(peers.ldap_count(&new_id), 1);
    assert_eq!(peers.scim_users(&new_id).len(), 1);
    // In the trail: the removal with its reason, the registration, the change.
    let purposes: Vec<(String, Option<String>)> = sqlx::query(
        "SELECT action, purpose FROM audit_events WHERE case_id = $1 AND outcome = 'ok' \
         AND action IN ('guardian.write', 'order.register') ORDER BY seq",
    )
    .bind(&case)
    .fetch_all(e.vault.db().pool())
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get("action"), r.get("purpose")))
    .collect();
    for expected in [
        ("guardian.write", "Vårdnaden är ändrad genom dom"),
        ("order.register", "guardian registered"),
        ("guardian.write", "fictitious change asked"),
    ] {
        assert!(
            purposes
                .iter()
                .any(|(a, p)| a == expected.0 && p.as_deref() == Some(expected.1)),
            "{expected:?} in {purposes:?}"
        );
    }
}
both_backends!(a_guardian_who_loses_custody_loses_the_accounts);
