//! The OpenAPI document: generated from the handlers, served at /api/openapi.json, and
//! checked in at docs/openapi.json. This test fails when the checked-in copy drifts;
//! regenerate it with `FIKTIV_UPDATE_OPENAPI=1 cargo test -p fiktiv --test suite api_openapi::`
//! (or `fiktiv openapi > docs/openapi.json`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use crate::support::api;

use api::*;
use axum::http::StatusCode;

fn checked_in() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json")
}

#[test]
fn checked_in_openapi_matches_the_code() {
    let generated = fiktiv_api::openapi_json();
    if std::env::var("FIKTIV_UPDATE_OPENAPI").is_ok_and(|v| v == "1") {
        std::fs::write(checked_in(), &generated).unwrap();
    }
    let on_disk = std::fs::read_to_string(checked_in()).unwrap_or_default();
    assert!(
        on_disk == generated,
        "docs/openapi.json is out of date with the code; run \
         `FIKTIV_UPDATE_OPENAPI=1 cargo test -p fiktiv --test suite api_openapi::` and commit it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_document_is_the_generated_one_and_needs_no_token() {
    let e = env(
        fiktiv_tests::TestDatabase::sqlite().unwrap(),
        at(2026, 3, 2),
    )
    .await;
    let (s, v, _) = e.call_raw("GET", "/api/openapi.json", None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v, serde_json::to_value(fiktiv_api::openapi()).unwrap());
    assert!(v["openapi"].as_str().unwrap().starts_with("3."));
    assert!(v["components"]["securitySchemes"]["bearer"].is_object());
    // Every operation declares the bearer scheme and a problem response.
    for (path, item) in v["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            assert!(op["security"].is_array(), "{method} {path} has no security");
            assert!(
                op["responses"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .any(|k| k.starts_with('4')),
                "{method} {path} documents no 4xx"
            );
        }
    }
}
