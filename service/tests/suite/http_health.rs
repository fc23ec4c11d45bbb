//! `/healthz` and `/readyz` through the router (axum's testing pattern).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use fiktiv_app::config::Config;
use fiktiv_app::context::Context;
use fiktiv_vault::{Db, KeyRing, RootKey, SystemClock, Vault};
use http_body_util::BodyExt;
use tower::ServiceExt;

async fn ctx() -> (Context, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("f.db").display());
    let db = Db::connect(&url).await.unwrap();
    let vault = Vault::new(
        db,
        KeyRing::new(RootKey::generate()).unwrap(),
        Arc::new(SystemClock),
    );
    (
        Context::with_vault(vault, Config::default(), dir.path()).unwrap(),
        dir,
    )
}

async fn get(app: axum::Router, path: &str) -> (StatusCode, serde_json::Value) {
    let resp = app
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap())
}

#[tokio::test]
async fn ready_when_database_keys_and_audit_are_usable() {
    let (ctx, _dir) = ctx().await;
    let app = fiktiv::router::app(ctx);
    let (s, b) = get(app.clone(), "/healthz").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["status"], "ok");
    let (s, b) = get(app, "/readyz").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["status"], "ready");
}

#[tokio::test]
async fn not_ready_when_the_audit_trail_is_unusable_but_still_healthy() {
    let (ctx, _dir) = ctx().await;
    sqlx::query("DROP TABLE audit_head")
        .execute(ctx.vault.db().pool())
        .await
        .unwrap();
    let app = fiktiv::router::app(ctx);
    let (s, b) = get(app.clone(), "/readyz").await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(b["audit"], false);
    assert_eq!(b["database"], true);
    let (s, _) = get(app, "/healthz").await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn not_ready_when_the_database_is_closed() {
    let (ctx, _dir) = ctx().await;
    ctx.vault.db().close().await;
    let (s, b) = get(fiktiv::router::app(ctx), "/readyz").await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(b["database"], false);
}
