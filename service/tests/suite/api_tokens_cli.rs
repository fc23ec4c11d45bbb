//! `fiktiv tokens create|list|revoke`, `fiktiv retention run` and `fiktiv openapi` as an
//! operator runs them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use crate::support::launch::{run as fiktiv, text};

#[test]
fn tokens_are_shown_once_listed_without_secret_and_revocable() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    assert!(fiktiv(&data, &["init"]).status.success());
    let out = fiktiv(
        &data,
        &[
            "tokens",
            "create",
            "--role",
            "school",
            "--unit",
            "skola-1",
            "--name",
            "anna.rektor",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let secret = text(&out.stdout).trim().to_owned();
    assert!(secret.starts_with("fkt_") && secret.len() > 40, "{secret}");
    let id = text(&out.stderr)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_owned();

    let list = text(&fiktiv(&data, &["tokens", "list"]).stdout);
    assert!(list.contains(&id) && list.contains("anna.rektor") && list.contains("roles=school"));
    assert!(!list.contains(&secret));
    // The secret is not in the database file.
    let db = std::fs::read(data.join("fiktiv.db")).unwrap();
    assert!(!crate::support::bytes_contain(&db, secret.as_bytes()));

    assert!(fiktiv(&data, &["tokens", "revoke", &id]).status.success());
    assert!(text(&fiktiv(&data, &["tokens", "list"]).stdout).contains("revoked="));
    assert_eq!(
        fiktiv(&data, &["tokens", "revoke", &id]).status.code(),
        Some(1)
    );

    // Refusals are one line.
    for args in [
        &["tokens", "create", "--role", "school", "--name", "no.unit"][..],
        &["tokens", "create", "--role", "root", "--name", "x"][..],
        &[
            "tokens", "create", "--role", "auditor", "--name", "bad name",
        ][..],
    ] {
        let out = fiktiv(&data, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(
            text(&out.stderr)
                .lines()
                .filter(|l| l.starts_with("error:"))
                .count(),
            1
        );
    }

    // Creation and revocation are audited; the chain verifies.
    let out = fiktiv(&data, &["audit", "verify"]);
    assert!(out.status.success(), "{}", text(&out.stdout));

    let out = fiktiv(&data, &["retention", "run"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("0 identities"));

    let out = fiktiv(&data, &["openapi"]);
    assert_eq!(text(&out.stdout), fiktiv_api::openapi_json());
}
