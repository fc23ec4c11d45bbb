//! Correcting a pupil's real identity (#16): a new personal number and a new surname.
//! Through the API against slapd, scim2-server and OneRoster, on SQLite and PostgreSQL:
//! the new identity is sealed anew with one version; the old values leave no blind
//! index under the pupil, only under the explicit old identity; the leak scan finds the
//! old identity planted downstream and attributes it to the case; closing the old
//! identity leaves nothing of it, and the scan is clean. The fictitious accounts stay
//! as they were. Bad input, the unchanged identity, another case's number and other
//! callers change nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use crate::support::api;
use crate::support::provisioning;

use api::*;
use axum::http::StatusCode;
use fiktiv_tests::TestDatabase;
use fiktiv_vault::IndexKind;
use provisioning::*;
use serde_json::{json, Value};
use sqlx::Row;

pub(crate) const OLD_FIRST: &str = "Rättelsefågel";
pub(crate) const OLD_LAST: &str = "Gammalnamnsdotter";
const NEW_LAST: &str = "Nyttnamnsson";

/// `(subject)` of every blind index row of this kind and value.
pub(crate) async fn subjects_with(e: &Env, kind: IndexKind, value: &str) -> Vec<String> {
    let idx = e.vault.keys().blind().index(kind, value);
    let mut out: Vec<String> = sqlx::query(
        "SELECT subject FROM blind_indexes WHERE kind = $1 AND idx = $2 ORDER BY subject",
    )
    .bind(kind.as_str())
    .bind(idx.to_hex())
    .fetch_all(e.vault.db().pool())
    .await
    .unwrap()
    .iter()
    .map(|r| r.get("subject"))
    .collect();
    out.dedup();
    out
}

pub(crate) async fn versions(e: &Env, case: &str, field: &str) -> i64 {
    sqlx::query("SELECT COUNT(*) AS n FROM sealed_records WHERE case_id = $1 AND field = $2")
        .bind(case)
        .bind(field)
        .fetch_one(e.vault.db().pool())
        .await
        .unwrap()
        .get("n")
}

async fn correct(e: &Env, who: &str, case: &str, body: Value) -> (StatusCode, Value) {
    e.call(
        "POST",
        &format!("/api/v1/cases/{case}/identity-correction"),
        who,
        Some(body),
    )
    .await
}

fn status_of(r: &Value, case: &str) -> String {
    r["result"]["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["case_id"] == case)
        .map(|x| x["status"].as_str().unwrap().to_owned())
        .unwrap_or_else(|| "absent".into())
}

async fn correct_the_real_identity(db: TestDatabase) {
    let peers = Peers::start();
    let toml = targets_toml(&peers, &peers.slapd.url(), &peers.scim.base_url(), "");
    let p = penv(db, at(2026, 3, 2), &toml).await;
    let e = &p.e;
    let real = Real::new(OLD_FIRST, OLD_LAST, "2014-08-30", 512);
    let new_number = se_number(date(2014, 8, 30), 847);
    let case = pupil(e, &real, ("Alva", "Östlund", "2014-11-11"), None).await;
    p.work().await;
    let pupil_id = p.pupil_id(&case).await;
    let ldif_before = peers.ldap_entries(&pupil_id);
    let other = open_case(e, &Real::new("Annan", "Elevsdotter", "2014-08-30", 118)).await;

    // Refused, each changing nothing: bad input, another case's number, the unchanged
    // identity, and callers who may not correct.
    let before = e.snapshot().await;
    let body = |number: &str, last: &str, reason: &str| {
        json!({"personal_number": number, "first_name": OLD_FIRST, "last_name": last,
               "birth_date": "2014-08-30", "reason": reason})
    };
    let (s, r) = correct(e, SCHOOL_A, &case, body(&new_number, NEW_LAST, "")).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{r}");
    let (s, r) = correct(
        e,
        SCHOOL_A,
        &case,
        body(&new_number, NEW_LAST, &format!("nytt nummer {new_number}")),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{r}");
    assert!(!r.to_string().contains(&new_number[2..]), "{r}");
    let mut bad = new_number.clone();
    let last = bad.pop().unwrap().to_digit(10).unwrap();
    bad.push(char::from_digit((last + 1) % 10, 10).unwrap());
    let (s, r) = correct(
        e,
        SCHOOL_A,
        &case,
        body(&bad, NEW_LAST, "Nytt personnummer"),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{r}");
    assert!(
        r.to_string().contains("personal-number.bad-checksum"),
        "{r}"
    );
    assert_eq!(e.snapshot().await, before);
    for who in [CENTRAL, SCHOOL_B, APPROVER, AUDITOR] {
        let (s, _) = correct(e, who, &case, body(&new_number, NEW_LAST, "Namnbyte")).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{who}");
    }
    assert_eq!(e.snapshot().await, before);
    let other_number = se_number(date(2014, 8, 30), 118);
    let (s, r) = correct(
        e,
        SCHOOL_A,
        &case,
        body(&other_number, NEW_LAST, "Nytt nummer"),
    )
    .await;
    assert_eq!(
        (s, r["type"].as_str()),
        (
            StatusCode::CONFLICT,
            Some("urn:fiktiv:problem:duplicate-identity")
        ),
        "{r}"
    );
    assert!(!r.to_string().contains(&other), "{r}");
    let (s, r) = correct(
        e,
        SCHOOL_A,
        &case,
        body(&real.number, OLD_LAST, "Ingen ändring"),
    )
    .await;
    assert_eq!(
        (s, r["type"].as_str()),
        (
            StatusCode::CONFLICT,
            Some("urn:fiktiv:problem:identity-unchanged")
        ),
        "{r}"
    );
    assert_eq!(e.count("blind_indexes").await, before[10]);
    assert_eq!(e.count("sealed_records").await, before[9]);

    // The correction: a new personal number and a new surname.
    let (s, r) = correct(
        e,
        SCHOOL_A,
        &case,
        body(
            &new_number,
            NEW_LAST,
            "Ny folkbokföring: nytt personnummer och efternamn",
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["old_identity"]["old_id"], 1);
    let text = r.to_string();
    for v in [OLD_LAST, NEW_LAST, &real.number[2..], &new_number[2..]] {
        assert!(!text.contains(v), "the answer echoes {v}: {text}");
    }
    // The school reads the new identity; the case lists the old one (no values).
    let id = e
        .ok(
            StatusCode::OK,
            "GET",
            &format!("/api/v1/cases/{case}/identity"),
            SCHOOL_A,
            None,
        )
        .await;
    assert_eq!(id["personal_number"], new_number.as_str());
    assert_eq!(id["last_name"], NEW_LAST);
    let view = e
        .ok(
            StatusCode::OK,
            "GET",
            &format!("/api/v1/cases/{case}"),
            CENTRAL,
            None,
        )
        .await;
    assert_eq!(
        view["old_identities"].as_array().unwrap().len(),
        1,
        "{view}"
    );
    assert!(!view.to_string().contains(OLD_LAST));

    // The vault: one sealed version of the pupil's identity; the old number and the
    // old full name are indexed only under the explicit old identity, the new ones
    // only under the pupil.
    assert_eq!(versions(e, &case, "identity:pupil").await, 1);
    assert_eq!(versions(e, &case, "identity:pupil-old-1").await, 1);
    assert_eq!(
        subjects_with(e, IndexKind::PersonalNumber, &real.number).await,
        ["pupil-old-1"]
    );
    assert_eq!(
        subjects_with(e, IndexKind::PersonalNumber, &new_number).await,
        ["pupil"]
    );
    let full =
        |last: &str| fiktiv_vault::identity::name_spelling_keys(OLD_FIRST, last)[0].to_string();
    assert_eq!(
        subjects_with(e, IndexKind::FullName, &full(OLD_LAST)).await,
        ["pupil-old-1"]
    );
    assert_eq!(
        subjects_with(e, IndexKind::FullName, &full(NEW_LAST)).await,
        ["pupil"]
    );
    // The old number still has a case: no second case for the pupil under it.
    let (s, r) = e
        .call(
            "POST",
            &format!("/api/v1/units/{UNIT_A}/cases"),
            SCHOOL_A,
            Some(json!({"country": "se", "personal_number": real.number,
                        "first_name": OLD_FIRST, "last_name": OLD_LAST, "birth_date": "2014-08-30"})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{r}");
    // The fictitious accounts are untouched.
    p.work().await;
    assert_eq!(peers.ldap_entries(&pupil_id), ldif_before);

    // A directory still holding the old identity: the leak scan finds it, for the case.
    peers
        .slapd
        .ldapadd(&format!(
            "dn: uid=leftover,{}\nobjectClass: inetOrgPerson\nuid: leftover\n\
             cn: {OLD_FIRST} {OLD_LAST}\nsn: {OLD_LAST}\ngivenName: {OLD_FIRST}\n\
             description: {}\n",
            peers.slapd.people_dn(),
            real.number
        ))
        .unwrap();
    let r = p
        .run(CENTRAL, "/api/v1/leak-scan", "/api/v1/provisioning/runs")
        .await;
    assert_eq!(status_of(&r, &case), "found", "{r}");
    assert!(!r.to_string().contains(OLD_LAST));

    // The right-of-access report holds both identities (the old one with when it was
    // replaced), and lists the correction's read of the identity among the accesses.
    let report = e
        .ok(
            StatusCode::OK,
            "GET",
            &format!("/api/v1/cases/{case}/access-report"),
            SCHOOL_A,
            None,
        )
        .await;
    assert_eq!(report["identity"]["last_name"], NEW_LAST, "{report}");
    let old = report["old_identities"].as_array().unwrap();
    assert_eq!(old.len(), 1, "{report}");
    assert_eq!(old[0]["identity"]["last_name"], OLD_LAST);
    assert_eq!(old[0]["identity"]["personal_number"], real.number.as_str());
    let reads: Vec<&str> = report["accesses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        reads
            .iter()
            .filter(|a| **a == "case.correct-identity")
            .count(),
        2,
        "the reads of the try with the unchanged identity and of the correction, not \
         the correction's own event: {reads:?}"
    );

    // Closed by the central administrator: nothing of the old identity is left, and the
    // same directory is clean for the case (the old identity is no longer looked for).
    let (s, _) = e
        .call(
            "POST",
            &format!("/api/v1/cases/{case}/old-identities/1/close"),
            CENTRAL,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(versions(e, &case, "identity:pupil-old-1").await, 0);
    assert!(subjects_with(e, IndexKind::PersonalNumber, &real.number)
        .await
        .is_empty());
    assert!(subjects_with(e, IndexKind::FullName, &full(OLD_LAST))
        .await
        .is_empty());
    let r = p
        .run(CENTRAL, "/api/v1/leak-scan", "/api/v1/provisioning/runs")
        .await;
    assert_ne!(status_of(&r, &case), "found", "{r}");
    // Closing again: not found.
    let (s, _) = e
        .call(
            "POST",
            &format!("/api/v1/cases/{case}/old-identities/1/close"),
            SCHOOL_A,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Every step in the trail: the audited reads of the identity held (by the try with
    // the unchanged identity, and by the correction), the correction, the close.
    let actions: Vec<String> = sqlx::query(
        "SELECT action FROM audit_events WHERE case_id = $1 AND outcome = 'ok' ORDER BY seq",
    )
    .bind(&case)
    .fetch_all(e.vault.db().pool())
    .await
    .unwrap()
    .iter()
    .map(|r| r.get("action"))
    .collect();
    let n = |a: &str| actions.iter().filter(|x| *x == a).count();
    assert_eq!(
        n("case.correct-identity"),
        3,
        "two reads and the write: {actions:?}"
    );
    assert_eq!(n("case.close-old-identity"), 1, "{actions:?}");
}
both_backends!(correct_the_real_identity);

/// `(dn, entryUUID, givenName)` of the one LDAP entry of `person`.
fn ldap_of(peers: &Peers, person: &str) -> (String, String, String) {
    let ldif = peers
        .slapd
        .ldapsearch(
            &format!("(employeeNumber={person})"),
            &["givenName", "entryUUID"],
        )
        .unwrap();
    assert_eq!(ldif.matches("dn: ").count(), 1, "{ldif}");
    let get = |p: &str| {
        ldif.lines()
            .find_map(|l| l.strip_prefix(p))
            .unwrap()
            .to_owned()
    };
    (get("dn: "), get("entryUUID: "), get("givenName: "))
}

async fn change_the_fictitious_identity(db: TestDatabase) {
    let peers = Peers::start();
    let toml = targets_toml(&peers, &peers.slapd.url(), &peers.scim.base_url(), "");
    let p = penv(db, at(2026, 3, 2), &toml).await;
    let e = &p.e;
    let real = Real::new(OLD_FIRST, OLD_LAST, "2014-08-30", 512);
    let case = pupil(e, &real, ("Alva", "Östlund", "2014-11-11"), None).await;
    p.work().await;
    let pupil_id = p.pupil_id(&case).await;
    let (_, uuid, given) = ldap_of(&peers, &pupil_id);
    assert_eq!(given, "Alva");
    let scim_id = peers.scim_users(&pupil_id)[0]["id"].clone();
    let old_number = e
        .ok(
            StatusCode::OK,
            "GET",
            &format!("/api/v1/cases/{case}"),
            SCHOOL_A,
            None,
        )
        .await["fictitious"]["number"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/v1/cases/{case}/fictitious-change");
    let change = |first: &str, birth: &str| {
        json!({"first_name": first, "last_name": "Östlund", "birth_date": birth,
               "reason": "Fel förnamn i beställningen"})
    };

    // Refused, changing nothing: the real name, the identity it already has, callers
    // who may not, and a case that is not registered.
    let before = e.snapshot().await;
    let (s, r) = e
        .call(
            "POST",
            &path,
            SCHOOL_A,
            Some(json!({"first_name": OLD_FIRST,
            "last_name": OLD_LAST, "birth_date": "2014-11-11", "reason": "x"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{r}");
    assert!(r.to_string().contains("fictitious.name-not-allowed"), "{r}");
    let (s, r) = e
        .call("POST", &path, SCHOOL_A, Some(change("Alva", "2014-11-11")))
        .await;
    assert_eq!(
        (s, r["type"].as_str()),
        (
            StatusCode::CONFLICT,
            Some("urn:fiktiv:problem:fictitious-unchanged")
        ),
        "{r}"
    );
    for who in [CENTRAL, SCHOOL_B, APPROVER, AUDITOR] {
        let (s, _) = e
            .call("POST", &path, who, Some(change("Ellen", "2014-12-01")))
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{who}");
    }
    let open = open_case(e, &Real::new("Annan", "Elevsdotter", "2014-08-30", 118)).await;
    let (s, _) = e
        .call(
            "POST",
            &format!("/api/v1/cases/{open}/fictitious-change"),
            SCHOOL_A,
            Some(change("Ellen", "2014-12-01")),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let mut after = e.snapshot().await;
    // The refused real name and the other case: one case, its keys and indexes, and
    // audit events more; nothing else.
    after[0] -= 1;
    assert_eq!(after[..9], before[..9]);

    // Asked: the new first name and a new birth date (same year).
    let r = e
        .ok(
            StatusCode::CREATED,
            "POST",
            &path,
            SCHOOL_A,
            Some(change("Ellen", "2014-12-01")),
        )
        .await;
    assert_eq!(r["state"], "pending");
    let id = r["change_id"].as_str().unwrap().to_owned();
    let (s, r) = e
        .call("POST", &path, SCHOOL_A, Some(change("Elin", "2014-12-01")))
        .await;
    assert_eq!(
        (s, r["type"].as_str()),
        (
            StatusCode::CONFLICT,
            Some("urn:fiktiv:problem:change-pending")
        ),
        "{r}"
    );
    // The central administrator is told (an order waits) and sees it, fictitious only.
    let tasks = e
        .ok(StatusCode::OK, "GET", "/api/v1/me/tasks", CENTRAL, None)
        .await;
    assert!(
        tasks
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["kind"] == "orders-waiting" && t["count"] == 1),
        "{tasks}"
    );
    let q = e
        .ok(
            StatusCode::OK,
            "GET",
            "/api/v1/fictitious-changes",
            CENTRAL,
            None,
        )
        .await;
    assert_eq!(q.as_array().unwrap().len(), 1, "{q}");
    assert_eq!(q[0]["first_name"], "Ellen");
    assert!(!q.to_string().contains(OLD_LAST) && !q.to_string().contains(&real.number[2..]));
    for who in [SCHOOL_A, SCHOOL_B, APPROVER, AUDITOR] {
        let (s, _) = e
            .call(
                "POST",
                &format!("/api/v1/fictitious-changes/{id}/registration"),
                who,
                None,
            )
            .await;
        assert!(
            s == StatusCode::NOT_FOUND || s == StatusCode::FORBIDDEN,
            "{who}: {s}"
        );
    }
    let r = e
        .ok(
            StatusCode::OK,
            "POST",
            &format!("/api/v1/fictitious-changes/{id}/registration"),
            CENTRAL,
            None,
        )
        .await;
    assert_eq!(r["state"], "registered");
    let new_number = r["number"].as_str().unwrap().to_owned();
    assert_ne!(
        new_number, old_number,
        "a new birth date gives a new number"
    );
    assert!(new_number.starts_with("20141201"), "{new_number}");
    let (s, _) = e
        .call(
            "POST",
            &format!("/api/v1/fictitious-changes/{id}/registration"),
            CENTRAL,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let view = e
        .ok(
            StatusCode::OK,
            "GET",
            &format!("/api/v1/cases/{case}"),
            SCHOOL_A,
            None,
        )
        .await;
    assert_eq!(view["fictitious"]["first_name"], "Ellen");
    assert_eq!(view["fictitious"]["birth_date"], "2014-12-01");

    // Provisioning rewrites the accounts in place: the same person, entry and user.
    p.work().await;
    assert!(p.jobs("failed").await.is_empty());
    assert_eq!(p.person_ids(&case).await.len(), 1);
    let (_, uuid2, given2) = ldap_of(&peers, &pupil_id);
    assert_eq!(uuid2, uuid, "the LDAP entry was deleted and created again");
    assert_eq!(given2, "Ellen");
    let users = peers.scim_users(&pupil_id);
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["id"], scim_id);
    assert_eq!(users[0]["name"]["givenName"], "Ellen");
    assert_eq!(peers.csv_count(&pupil_id), 1);
    let csv = peers.users_csv();
    assert!(csv.contains("Ellen") && !csv.contains("Alva"), "{csv}");
    // The old number stays reserved: never given out again.
    use sqlx::Row as _;
    let kept: i64 = sqlx::query("SELECT COUNT(*) AS n FROM fictitious_numbers WHERE number = $1")
        .bind(&old_number)
        .fetch_one(e.vault.db().pool())
        .await
        .unwrap()
        .get("n");
    assert_eq!(kept, 1);
}
both_backends!(change_the_fictitious_identity);
