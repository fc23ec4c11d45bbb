//! `targets test`: one clear diagnosis per failure (unreachable, bad credentials,
//! missing base, missing schema), against a real slapd and scim2-server, through the
//! API; and the embedded default target of a fresh data directory through the CLI.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use crate::support::api;
use crate::support::launch::run as fiktiv;
use crate::support::provisioning;

use api::*;
use axum::http::StatusCode;
use fiktiv_tests::TestDatabase;
use provisioning::*;
use serde_json::{json, Value};

/// (target name, settings, the failed step and problem expected; `None`: all ok).
type Case<'a> = (&'a str, Value, Option<(&'a str, &'a str)>);

fn failed_problem(report: &Value) -> Option<(String, String)> {
    report["probes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["ok"] == false)
        .map(|p| {
            (
                p["step"].as_str().unwrap().to_owned(),
                p["problem"].as_str().unwrap().to_owned(),
            )
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_failure_has_its_diagnosis() {
    let peers = Peers::start();
    let toml = "[provisioning]\nembedded_default = false\nreconcile_interval_secs = 0\n";
    let p = penv(TestDatabase::sqlite().unwrap(), at(2026, 3, 2), toml).await;
    let e = &p.e;
    let ldap = |name: &str, url: String, password: &str, people: String, extra: Value| {
        let mut v = json!({"kind": "ldap", "name": name, "url": url, "security": "plain",
            "bind_dn": peers.slapd.admin_dn(), "bind_password": password,
            "people_base": people, "groups_base": peers.slapd.groups_dn()});
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        v
    };
    let free = fiktiv_tests::free_port().unwrap();
    let cases: Vec<Case> = vec![
        (
            "ldap-ok",
            ldap(
                "ldap-ok",
                peers.slapd.url(),
                peers.slapd.admin_password(),
                peers.slapd.people_dn(),
                json!({}),
            ),
            None,
        ),
        (
            "ldap-down",
            ldap(
                "ldap-down",
                format!("ldap://127.0.0.1:{free}"),
                "x",
                peers.slapd.people_dn(),
                json!({}),
            ),
            Some(("connect", "unreachable")),
        ),
        (
            "ldap-badpw",
            ldap(
                "ldap-badpw",
                peers.slapd.url(),
                "wrong-password",
                peers.slapd.people_dn(),
                json!({}),
            ),
            Some(("bind", "bad-credentials")),
        ),
        (
            "ldap-nobase",
            ldap(
                "ldap-nobase",
                peers.slapd.url(),
                peers.slapd.admin_password(),
                format!("ou=nowhere,{}", peers.slapd.base_dn()),
                json!({}),
            ),
            Some(("people base", "missing-base")),
        ),
        (
            "ldap-noschema",
            ldap(
                "ldap-noschema",
                peers.slapd.url(),
                peers.slapd.admin_password(),
                peers.slapd.people_dn(),
                json!({"id_attribute": "fiktivPersonId"}),
            ),
            Some(("schema", "missing-schema")),
        ),
        (
            "scim-ok",
            json!({"kind": "scim", "name": "scim-ok", "base_url": peers.scim.base_url(), "token": peers.scim.token()}),
            None,
        ),
        (
            "scim-badtoken",
            json!({"kind": "scim", "name": "scim-badtoken", "base_url": peers.scim.base_url(), "token": "wrong"}),
            Some(("/Users", "bad-credentials")),
        ),
        (
            "scim-nobase",
            json!({"kind": "scim", "name": "scim-nobase", "base_url": format!("http://127.0.0.1:{}/nothing", peers.scim.port()), "token": peers.scim.token()}),
            Some(("/Users", "missing-base")),
        ),
        (
            "scim-down",
            json!({"kind": "scim", "name": "scim-down", "base_url": format!("http://127.0.0.1:{free}/v2"), "token": "x"}),
            Some(("connect", "unreachable")),
        ),
    ];
    for (name, body, want) in cases {
        e.ok(
            StatusCode::OK,
            "PUT",
            &format!("/api/v1/targets/{name}"),
            CENTRAL,
            Some(body),
        )
        .await;
        let r = e
            .ok(
                StatusCode::OK,
                "POST",
                &format!("/api/v1/targets/{name}/test"),
                CENTRAL,
                None,
            )
            .await;
        match want {
            None => {
                assert_eq!(r["ok"], true, "{name}: {r}");
                if name == "ldap-ok" {
                    let steps: Vec<&str> = r["probes"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|p| p["step"].as_str().unwrap())
                        .collect();
                    assert_eq!(
                        steps,
                        [
                            "connect",
                            "bind",
                            "people base",
                            "groups base",
                            "schema",
                            "write"
                        ]
                    );
                }
            }
            Some((step, problem)) => {
                assert_eq!(r["ok"], false, "{name}: {r}");
                assert_eq!(
                    failed_problem(&r),
                    Some((step.to_owned(), problem.to_owned())),
                    "{name}: {r}"
                );
                let failed = r["probes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|p| p["ok"] == false)
                    .unwrap();
                assert!(!failed["advice"].as_str().unwrap().is_empty());
            }
        }
        assert!(!r.to_string().contains(peers.slapd.admin_password()), "{r}");
        assert!(!r.to_string().contains(peers.scim.token()), "{r}");
    }
    // The write probe left nothing behind.
    assert!(!peers.slapd.dump().unwrap().contains("fiktiv-probe"));
    // Unknown target; file targets cannot be changed through the API.
    let (s, v) = e
        .call("POST", "/api/v1/targets/nope/test", CENTRAL, None)
        .await;
    assert_eq!(
        (s, v["type"].as_str()),
        (
            StatusCode::NOT_FOUND,
            Some("urn:fiktiv:problem:no-such-target")
        )
    );
    // A new target without its credential is refused; an invalid one too, without echo.
    let (s, v) = e
        .call(
            "PUT",
            "/api/v1/targets/x",
            CENTRAL,
            Some(json!({"kind": "scim", "name": "x", "base_url": "https://lms.example/v2"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, v) = e
        .call(
            "PUT",
            "/api/v1/targets/y",
            CENTRAL,
            Some(json!({"kind": "oneroster", "name": "y", "dir": "/etc/secret-place"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(!v.to_string().contains("secret-place"));
    let (s, _) = e
        .call("PUT", "/api/v1/targets/z", CENTRAL,
            Some(json!({"kind": "scim", "name": "other", "base_url": "https://lms.example/v2", "token": "t"})))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _) = e
        .call("PUT", "/api/v1/targets/z", SCHOOL_A,
            Some(json!({"kind": "scim", "name": "z", "base_url": "https://lms.example/v2", "token": "t"})))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[test]
fn a_fresh_data_directory_has_the_embedded_roster_target() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    assert!(fiktiv(&data, &["init"]).status.success());
    let out = fiktiv(&data, &["targets", "list"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.starts_with("oneroster kind=oneroster source=Embedded") && text.contains("usable"),
        "{text}"
    );
    let out = fiktiv(&data, &["targets", "test", "oneroster"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("target oneroster: OK"), "{text}");
    let out = fiktiv(&data, &["targets", "test", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    let out = fiktiv(&data, &["sync", "plan"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 changes"));
    let out = fiktiv(&data, &["check", "leaks"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("\"clean\": true"), "{text}");
}

/// The configuration of one LDAP target `ldap` whose number attribute, `x121Address`,
/// takes digits only (its syntax is a numeric string), under the number policy `ranges`.
fn digits_only_directory(peers: &Peers, ranges: &std::path::Path) -> String {
    format!(
        "[policies]\nnumber_ranges = \"{}\"\n\n[provisioning]\nembedded_default = false\n\
         reconcile_interval_secs = 0\n\n[[targets]]\nname = \"ldap\"\nkind = \"ldap\"\n\
         url = \"{}\"\nsecurity = \"plain\"\nbind_dn = \"{}\"\nbind_password = \"{}\"\n\
         people_base = \"{}\"\ngroups_base = \"{}\"\nschema = \"inetorgperson\"\n\
         number_attribute = \"x121Address\"\ntimeout_secs = 10\n",
        ranges.display(),
        peers.slapd.url(),
        peers.slapd.admin_dn(),
        peers.slapd.admin_password(),
        peers.slapd.people_dn(),
        peers.slapd.groups_dn(),
    )
}

fn number_step(report: &Value) -> Value {
    report["probes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["step"] == "number")
        .cloned()
        .unwrap_or_else(|| panic!("no number step: {report}"))
}

/// `targets test` tries a number of the scheme in force on the target: a directory whose
/// number attribute takes digits only refuses the SS 12000 temporary form (letters in
/// positions 9-10), and the test fails at the `number` step naming the attribute, through
/// the API and through `fiktiv targets test` (exit status 1). Under the default scheme
/// (digits, a check digit that fails Luhn) the same directory passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_refuses_the_number_scheme_fails_its_test() {
    let peers = Peers::start();
    let dir = tempfile::tempdir().unwrap();
    let temporary = crate::support::pages::number_ranges_with(dir.path(), "ss12000-temporary");
    let toml = digits_only_directory(&peers, &temporary);
    let p = penv(TestDatabase::sqlite().unwrap(), at(2026, 3, 2), &toml).await;
    let r =
        p.e.ok(
            StatusCode::OK,
            "POST",
            "/api/v1/targets/ldap/test",
            CENTRAL,
            None,
        )
        .await;
    assert_eq!(r["ok"], false, "{r}");
    let step = number_step(&r);
    assert_eq!(step["ok"], false, "{r}");
    assert!(
        step["detail"].as_str().unwrap().contains("x121Address"),
        "{r}"
    );
    // Everything before the number was fine: the number step is the one failure.
    let failed: Vec<&str> = r["probes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["ok"] == false)
        .map(|p| p["step"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["number"], "{r}");
    assert!(!peers.slapd.dump().unwrap().contains("fiktiv-probe"));

    // The command line says the same, and fails.
    let data = dir.path().join("data");
    assert!(fiktiv(&data, &["init"]).status.success());
    let config = dir.path().join("fiktiv.toml");
    std::fs::write(&config, &toml).unwrap();
    let out = crate::support::launch::fiktiv(&data, Some(&config), &["targets", "test", "ldap"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with("FAIL") && l.contains("number"))
        .unwrap_or_else(|| panic!("no failed number step: {text}"));
    assert!(line.contains("x121Address"), "{text}");
    assert!(text.contains("target ldap: FAILED"), "{text}");
    let out = crate::support::launch::fiktiv(
        &data,
        Some(&config),
        &["targets", "test", "ldap", "--json"],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], false, "{report}");
    assert_eq!(number_step(&report)["ok"], false, "{report}");

    // The default scheme: digits only, and the same directory takes it.
    let default = crate::support::pages::number_ranges_with(dir.path(), "must-fail-luhn");
    let toml = digits_only_directory(&peers, &default);
    let p = penv(TestDatabase::sqlite().unwrap(), at(2026, 3, 2), &toml).await;
    let r =
        p.e.ok(
            StatusCode::OK,
            "POST",
            "/api/v1/targets/ldap/test",
            CENTRAL,
            None,
        )
        .await;
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(number_step(&r)["ok"], true, "{r}");
    std::fs::write(&config, &toml).unwrap();
    let out = crate::support::launch::fiktiv(&data, Some(&config), &["targets", "test", "ldap"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("target ldap: OK"), "{text}");
}
