//! Shared by the operations tests: the routine run in-process against a shared
//! database (`Registrar`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)] // tests

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use chrono::NaiveDate;
use fiktiv_app::config::Config;
use fiktiv_app::context::Context;
use fiktiv_policies::Role;
use fiktiv_vault::{Db, KeyRing, RootKey, SharedClock, Vault};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use sqlx::Row;
use tower::ServiceExt;

use crate::support::api::se_number;

/// The routine's front half, in this process, on a shared database: a router with a
/// given root key and clock, a worker context, and a school and a central token.
pub struct Registrar {
    pub app: axum::Router,
    pub vault: Vault,
    pub ctx: Context,
    pub school: String,
    pub central: String,
    _dir: tempfile::TempDir,
}

impl Registrar {
    pub async fn new(url: &str, key: &str, config: &Config, clock: SharedClock) -> Self {
        let vault = Vault::new(
            Db::connect(url).await.unwrap(),
            KeyRing::new(RootKey::from_base64(key).unwrap()).unwrap(),
            clock,
        );
        let dir = tempfile::tempdir().unwrap();
        let ctx = Context::with_vault(vault.clone(), config.clone(), dir.path()).unwrap();
        let school = fiktiv_staff::tokens::create(
            &vault,
            "test",
            "rektor",
            &[Role::School],
            &["unit-a".into()],
            30,
        )
        .await
        .unwrap()
        .secret
        .to_string();
        let central =
            fiktiv_staff::tokens::create(&vault, "test", "central", &[Role::CentralAdmin], &[], 30)
                .await
                .unwrap()
                .secret
                .to_string();
        Self {
            app: fiktiv::router::app(ctx.clone()),
            ctx,
            vault,
            school,
            central,
            _dir: dir,
        }
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Value,
        want: u16,
    ) -> Value {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(Body::from(serde_json::to_vec(&body).unwrap()))
            .unwrap();
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        assert_eq!(status, want, "{method} {path}: {v}");
        v
    }

    /// Pupil `i` through the routine up to registration.
    pub async fn pupil(&self, i: usize) -> String {
        let letters: String = format!("{i:03}")
            .chars()
            .map(|d| (b'a' + d.to_digit(10).unwrap() as u8) as char)
            .collect();
        let birth =
            NaiveDate::from_ymd_opt(2015, 1 + (i % 12) as u32, 1 + (i % 27) as u32).unwrap();
        let v = self
            .call(
                "POST",
                "/api/v1/units/unit-a/cases",
                &self.school,
                json!({"country": "se", "personal_number": se_number(birth, 100 + i as u16),
                       "first_name": "Riktig", "last_name": format!("Kluster{letters}"),
                       "birth_date": birth.format("%Y-%m-%d").to_string()}),
                201,
            )
            .await;
        let c = format!("/api/v1/cases/{}", v["case_id"].as_str().unwrap());
        let s = &self.school;
        self.call(
            "PUT",
            &format!("{c}/plan"),
            s,
            json!({"information_handling": "x", "platforms": ["google"],
            "guardian_contact_routes": [], "staff_to_inform": [], "free_text": ""}),
            200,
        )
        .await;
        self.call(
            "PUT",
            &format!("{c}/login-decision"),
            s,
            json!({"decision": "fictitious-user"}),
            200,
        )
        .await;
        self.call(
            "PUT",
            &format!("{c}/fictitious-identity"),
            s,
            json!({"first_name": "Maja", "last_name": format!("Fiktiv{letters}"),
                   "birth_date": format!("2015-{:02}-03", 1 + (i + 5) % 12)}),
            200,
        )
        .await;
        let o = self
            .call(
                "POST",
                &format!("{c}/order"),
                s,
                json!({"groups": [format!("{}B", 1 + i % 3)], "platforms": ["google"]}),
                201,
            )
            .await;
        self.call(
            "POST",
            &format!(
                "/api/v1/orders/{}/registration",
                o["order_id"].as_str().unwrap()
            ),
            &self.central,
            json!({}),
            200,
        )
        .await;
        v["case_id"].as_str().unwrap().to_owned()
    }

    pub async fn jobs_by_state(&self) -> BTreeMap<String, i64> {
        sqlx::query("SELECT state, COUNT(*) AS n FROM prov_jobs GROUP BY state")
            .fetch_all(self.vault.db().pool())
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get("state"), r.get("n")))
            .collect()
    }

    /// Waits until `jobs` jobs are done (panics on a failed one or after `limit`).
    pub async fn wait_done(&self, jobs: i64, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let s = self.jobs_by_state().await;
            if s.get("failed").copied().unwrap_or(0) > 0 {
                let why: Vec<String> =
                    sqlx::query("SELECT target, last_error FROM prov_jobs WHERE state = 'failed'")
                        .fetch_all(self.vault.db().pool())
                        .await
                        .unwrap()
                        .iter()
                        .map(|r| {
                            format!(
                                "{}: {:?}",
                                r.get::<String, _>("target"),
                                r.get::<Option<String>, _>("last_error")
                            )
                        })
                        .collect();
                panic!("failed jobs: {s:?}: {why:?}");
            }
            if s.get("done").copied().unwrap_or(0) == jobs {
                return;
            }
            assert!(Instant::now() < deadline, "jobs not done in time: {s:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
