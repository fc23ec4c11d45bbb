//! `/healthz` (the process is up) and `/readyz` (the database, the keys and the audit
//! trail are usable).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use super::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
}

async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

#[derive(Serialize)]
struct Ready {
    status: &'static str,
    database: bool,
    keys: bool,
    audit: bool,
}

async fn readyz(State(st): State<AppState>) -> (StatusCode, Json<Ready>) {
    let v = &st.ctx.vault;
    let database = v.db().ping().await.is_ok();
    let keys = v.keys().kek(1).is_ok() && v.check_key().await.is_ok();
    let audit = fiktiv_routine::audit_trail::head_present(v).await;
    let ready = database && keys && audit;
    (
        if ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        Json(Ready {
            status: if ready { "ready" } else { "not-ready" },
            database,
            keys,
            audit,
        }),
    )
}
