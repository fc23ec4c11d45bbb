//! Shared setup of the API tests: a vault on a real database, a manual clock, one
//! bearer token per role, and `call` through the router with tower's `oneshot`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)] // tests

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use fiktiv_app::config::Config;
use fiktiv_app::context::Context;
use fiktiv_policies::Role;
use fiktiv_tests::TestDatabase;
use fiktiv_vault::{Db, KeyRing, ManualClock, RootKey, Vault};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

pub const UNIT_A: &str = "unit-a";
pub const UNIT_B: &str = "unit-b";

/// Who calls: one token each.
pub const CENTRAL: &str = "central";
pub const SCHOOL_A: &str = "school-a";
pub const SCHOOL_A2: &str = "school-a2";
pub const SCHOOL_B: &str = "school-b";
pub const APPROVER: &str = "approver";
pub const APPROVER2: &str = "approver2";
pub const AUDITOR: &str = "auditor";

pub struct Env {
    pub app: axum::Router,
    /// The context the router was built from (for domain calls a test makes itself).
    pub ctx: Context,
    pub vault: Vault,
    pub clock: ManualClock,
    pub tokens: HashMap<&'static str, String>,
    pub db: TestDatabase,
    _dir: tempfile::TempDir,
}

pub fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 9, 0, 0).unwrap()
}

pub fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// A valid Swedish number, computed.
pub fn se_number(birth: NaiveDate, serial: u16) -> String {
    fiktiv_vault::ids::make_se_number(birth, serial).unwrap()
}

/// A valid Norwegian fødselsnummer (individual 500.. for births 2000-2039), computed.
pub fn no_number(birth: NaiveDate) -> String {
    let head = birth.format("%d%m%y").to_string();
    (500..1000)
        .find_map(|i| {
            let nine = format!("{head}{i:03}");
            fiktiv_vault::ids::no_check_digits(&nine).map(|(a, b)| format!("{nine}{a}{b}"))
        })
        .unwrap()
}

pub async fn env_with(db: TestDatabase, start: DateTime<Utc>, config: Config) -> Env {
    // The service's warnings and errors go to the test's captured output, so that a
    // failing test shows why (an `internal error` answer says only that it is logged).
    // The service logs no personal data at any level.
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_max_level(tracing_subscriber::filter::LevelFilter::WARN)
        .try_init();
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(start);
    let conn = Db::connect(db.url()).await.unwrap();
    let vault = Vault::new(
        conn,
        KeyRing::new(RootKey::generate()).unwrap(),
        Arc::new(clock.clone()),
    );
    let ctx = Context::with_vault(vault.clone(), config, dir.path()).unwrap();
    let mut tokens = HashMap::new();
    for (who, roles, units) in [
        (CENTRAL, vec![Role::CentralAdmin], vec![]),
        (SCHOOL_A, vec![Role::School], vec![UNIT_A]),
        (SCHOOL_A2, vec![Role::School], vec![UNIT_A]),
        (SCHOOL_B, vec![Role::School], vec![UNIT_B]),
        (APPROVER, vec![Role::Approver], vec![]),
        (APPROVER2, vec![Role::Approver], vec![]),
        (AUDITOR, vec![Role::Auditor], vec![]),
    ] {
        let units: Vec<String> = units.into_iter().map(String::from).collect();
        let t = fiktiv_staff::tokens::create(&vault, "test", who, &roles, &units, 3650)
            .await
            .unwrap();
        tokens.insert(who, t.secret.to_string());
    }
    Env {
        app: fiktiv::router::app(ctx.clone()),
        ctx,
        vault,
        clock,
        tokens,
        db,
        _dir: dir,
    }
}

pub async fn env(db: TestDatabase, start: DateTime<Utc>) -> Env {
    env_with(db, start, Config::default()).await
}

impl Env {
    /// Call the router. `who` = None sends no token. Returns status and JSON body
    /// (Null when the body is empty or not JSON) and the raw body text.
    pub async fn call_raw(
        &self,
        method: &str,
        path: &str,
        who: Option<&str>,
        body: Option<(&str, Vec<u8>)>,
    ) -> (StatusCode, Value, String) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(w) = who {
            req = req.header("authorization", format!("Bearer {}", self.tokens[w]));
        }
        let req = match body {
            Some((ct, bytes)) => req.header("content-type", ct).body(Body::from(bytes)),
            None => req.body(Body::empty()),
        }
        .unwrap();
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let ct = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if status.is_client_error() || status.is_server_error() {
            assert_eq!(ct, "application/problem+json", "{method} {path}: {text}");
        }
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            text,
        )
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        who: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let body = body.map(|b| ("application/json", serde_json::to_vec(&b).unwrap()));
        let (s, v, _) = self.call_raw(method, path, Some(who), body).await;
        (s, v)
    }

    /// Call and require `want`, printing the body otherwise.
    pub async fn ok(
        &self,
        want: StatusCode,
        method: &str,
        path: &str,
        who: &str,
        body: Option<Value>,
    ) -> Value {
        let (s, v) = self.call(method, path, who, body).await;
        assert_eq!(s, want, "{method} {path} as {who}: {v}");
        v
    }

    pub async fn count(&self, table: &str) -> i64 {
        use sqlx::Row;
        sqlx::query(&format!("SELECT COUNT(*) AS n FROM {table}"))
            .fetch_one(self.vault.db().pool())
            .await
            .unwrap()
            .try_get("n")
            .unwrap()
    }

    /// Audit events with this action.
    pub async fn audit_count(&self, action: &str) -> i64 {
        use sqlx::Row;
        sqlx::query("SELECT COUNT(*) AS n FROM audit_events WHERE action = $1")
            .bind(action)
            .fetch_one(self.vault.db().pool())
            .await
            .unwrap()
            .try_get("n")
            .unwrap()
    }

    /// Row counts of every routine table and the audit trail: "nothing stored" means
    /// this is unchanged.
    pub async fn snapshot(&self) -> Vec<i64> {
        let mut out = Vec::new();
        for t in [
            "cases",
            "plan_versions",
            "guardians",
            "fictitious_numbers",
            "orders",
            "staff_told",
            "reviews",
            "reveal_requests",
            "deprovision_requests",
            "sealed_records",
            "blind_indexes",
            "case_keys",
            "audit_events",
        ] {
            out.push(self.count(t).await);
        }
        out
    }
}

#[macro_export]
macro_rules! both_backends {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(fiktiv_tests::TestDatabase::sqlite().unwrap()).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(fiktiv_tests::TestDatabase::postgres().unwrap()).await;
            }
        }
    };
}

/// A configuration whose `[ss12000]` table reads the test hub: `ss12000` holds more
/// lines of that table (reads on request only unless it sets `read_every_minutes`),
/// `before` tables of its own put ahead of it.
pub fn hub_config(hub: &fiktiv_tests::TestHub, ss12000: &str, before: &str) -> Config {
    let mut toml = format!("{before}\n[ss12000]\nbase_url = \"{}\"\n", hub.base_url());
    if !ss12000.contains("read_every_minutes") {
        toml.push_str("read_every_minutes = 0\n");
    }
    toml.push_str(ss12000);
    Config::parse(&toml, "hub.toml").unwrap()
}

/// A configuration with a short retention policy: the real identity after 10 days, the
/// plan after 30, the fictitious identity after 60, the other records after 10,
/// reveal requests and audit events kept. The directory holds the policy file.
pub fn short_retention() -> (tempfile::TempDir, Config) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("retention.toml");
    std::fs::write(
        &file,
        "[retention]\nreal_identity = \"P10D\"\naction_plan = \"P30D\"\n\
         fictitious_identity = \"P60D\"\nlogin_decision = \"P10D\"\nstaff_told = \"P10D\"\n\
         review = \"P10D\"\norder = \"P10D\"\nreveal_request = \"permanent\"\n\
         audit_event = \"permanent\"\n",
    )
    .unwrap();
    let mut config = Config::default();
    config.policies.retention = Some(file);
    (dir, config)
}

/// The one way through the routine over the API, for every test that needs a case in a
/// given state: opened by school A in unit A, then the plan, the login decision, the
/// fictitious identity, optionally guardian 1, the order, and the registration by the
/// central administrator. Each step requires its success status, so a test that builds
/// on it fails at the step that broke.
pub struct Walk<'a> {
    e: &'a Env,
    fict: Value,
    guardian: Option<Value>,
    platforms: Vec<String>,
    information_handling: String,
}

impl Env {
    /// A walk with the defaults: fictitious "Maja Lindqvist" born 2015-09-03, no
    /// guardian, platform `google`, group `4B`.
    pub fn walk(&self) -> Walk<'_> {
        Walk {
            e: self,
            fict: serde_json::json!({"first_name": "Maja", "last_name": "Lindqvist",
                                     "birth_date": "2015-09-03"}),
            guardian: None,
            platforms: vec!["google".into()],
            information_handling: "x".into(),
        }
    }
}

impl Walk<'_> {
    pub fn fictitious(mut self, first: &str, last: &str, birth: &str) -> Self {
        self.fict =
            serde_json::json!({"first_name": first, "last_name": last, "birth_date": birth});
        self
    }

    pub fn guardian(mut self, g: Value) -> Self {
        self.guardian = Some(g);
        self
    }

    pub fn platforms(mut self, p: &[&str]) -> Self {
        self.platforms = p.iter().map(|s| s.to_string()).collect();
        self
    }

    pub fn information_handling(mut self, text: &str) -> Self {
        self.information_handling = text.into();
        self
    }

    /// Open a case in unit A with the real identity `open` (the opening's body).
    pub async fn open(&self, open: Value) -> String {
        self.e
            .ok(
                StatusCode::CREATED,
                "POST",
                &format!("/api/v1/units/{UNIT_A}/cases"),
                SCHOOL_A,
                Some(open),
            )
            .await["case_id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Plan, decision, fictitious identity, guardian, order on an opened case. Returns
    /// the order id.
    pub async fn order(&self, case: &str) -> String {
        let e = self.e;
        let c = format!("/api/v1/cases/{case}");
        let plan = serde_json::json!({"information_handling": self.information_handling,
            "platforms": self.platforms, "guardian_contact_routes": [], "staff_to_inform": [],
            "free_text": ""});
        e.ok(
            StatusCode::OK,
            "PUT",
            &format!("{c}/plan"),
            SCHOOL_A,
            Some(plan),
        )
        .await;
        e.ok(
            StatusCode::OK,
            "PUT",
            &format!("{c}/login-decision"),
            SCHOOL_A,
            Some(serde_json::json!({"decision": "fictitious-user"})),
        )
        .await;
        e.ok(
            StatusCode::OK,
            "PUT",
            &format!("{c}/fictitious-identity"),
            SCHOOL_A,
            Some(self.fict.clone()),
        )
        .await;
        if let Some(g) = &self.guardian {
            e.ok(
                StatusCode::OK,
                "PUT",
                &format!("{c}/guardians/1"),
                SCHOOL_A,
                Some(g.clone()),
            )
            .await;
        }
        e.ok(
            StatusCode::CREATED,
            "POST",
            &format!("{c}/order"),
            SCHOOL_A,
            Some(serde_json::json!({"groups": ["4B"], "platforms": self.platforms})),
        )
        .await["order_id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Opened and ordered. Returns (case, order).
    pub async fn ordered(&self, open: Value) -> (String, String) {
        let case = self.open(open).await;
        let order = self.order(&case).await;
        (case, order)
    }

    /// The central administrator registers the order. Returns the registration.
    pub async fn register(&self, order: &str) -> Value {
        self.e
            .ok(
                StatusCode::OK,
                "POST",
                &format!("/api/v1/orders/{order}/registration"),
                CENTRAL,
                Some(serde_json::json!({})),
            )
            .await
    }

    /// Opened, ordered and registered. Returns (case, order).
    pub async fn registered(&self, open: Value) -> (String, String) {
        let (case, order) = self.ordered(open).await;
        self.register(&order).await;
        (case, order)
    }
}
