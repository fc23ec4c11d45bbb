//! Shared setup of the provisioning tests: real slapd and scim2-server (optionally
//! behind fault proxies), a OneRoster folder, the API environment of `api_common`
//! configured with those targets, and a `Context` on the same vault for the worker.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)] // tests

use std::time::Duration;

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use fiktiv_app::config::Config;
use fiktiv_app::context::Context;
use fiktiv_tests::{ScimServer, Slapd, TestDatabase};
use serde_json::{json, Value};

use crate::support::api::*;

/// The real peers of one test.
pub struct Peers {
    pub slapd: Slapd,
    pub scim: ScimServer,
    pub roster: tempfile::TempDir,
}

impl Peers {
    pub fn start() -> Self {
        Self {
            slapd: Slapd::start().unwrap(),
            scim: ScimServer::start().unwrap(),
            roster: tempfile::tempdir().unwrap(),
        }
    }

    pub fn roster_dir(&self) -> std::path::PathBuf {
        self.roster.path().join("roster")
    }

    /// `users.csv` of the roster folder ("" when it does not exist yet).
    pub fn users_csv(&self) -> String {
        std::fs::read_to_string(self.roster_dir().join("users.csv")).unwrap_or_default()
    }

    /// LDIF of the entries with this person id.
    pub fn ldap_entries(&self, person: &str) -> String {
        self.slapd
            .ldapsearch(&format!("(employeeNumber={person})"), &[])
            .unwrap()
    }

    pub fn ldap_count(&self, person: &str) -> usize {
        self.ldap_entries(person).matches("dn: ").count()
    }

    /// SCIM users with this externalId.
    pub fn scim_users(&self, person: &str) -> Vec<Value> {
        self.scim
            .list_all("/Users")
            .unwrap()
            .into_iter()
            .filter(|u| u["externalId"] == person)
            .collect()
    }

    /// Rows of users.csv for this person.
    pub fn csv_count(&self, person: &str) -> usize {
        self.users_csv()
            .lines()
            .filter(|l| l.starts_with(person))
            .count()
    }
}

/// The TOML of the three targets. `ldap_url`/`scim_url` may point at fault proxies.
pub fn targets_toml(p: &Peers, ldap_url: &str, scim_url: &str, extra: &str) -> String {
    let t = r#"
[provisioning]
workers = 2
poll_interval_ms = 100
backoff_base_secs = 1
backoff_max_secs = 8
max_attempts = 8
job_timeout_secs = 60
reconcile_interval_secs = 0
grace_days = 30
EXTRA

[[targets]]
name = "ldap"
kind = "ldap"
url = "LDAP_URL"
security = "plain"
bind_dn = "BIND_DN"
bind_password = "BIND_PW"
people_base = "PEOPLE"
groups_base = "GROUPS"
mail = "{given}.{family}.{short_id}@skola.example"
timeout_secs = 10

[[targets]]
name = "scim"
kind = "scim"
base_url = "SCIM_URL"
token = "SCIM_TOKEN"
email = "{given}.{family}.{short_id}@skola.example"
timeout_secs = 10
max_retry_after_secs = 2

[[targets]]
name = "roster"
kind = "oneroster"
dir = "ROSTER"
# The ordered platforms of the tests; the roster stands for them (the directory and the
# SCIM service, with no platforms, receive every pupil).
platforms = ["google", "unikum"]
"#;
    t.replace("EXTRA", extra)
        .replace("LDAP_URL", ldap_url)
        .replace("BIND_DN", &p.slapd.admin_dn())
        .replace("BIND_PW", p.slapd.admin_password())
        .replace("PEOPLE", &p.slapd.people_dn())
        .replace("GROUPS", &p.slapd.groups_dn())
        .replace("SCIM_URL", scim_url)
        .replace("SCIM_TOKEN", p.scim.token())
        .replace("ROSTER", &p.roster_dir().display().to_string())
}

/// The API environment and a worker context on the same vault.
pub struct PEnv {
    pub e: Env,
    pub ctx: Context,
    pub config: Config,
    _data: tempfile::TempDir,
}

pub async fn penv(db: TestDatabase, start: DateTime<Utc>, toml: &str) -> PEnv {
    let config = Config::parse(toml, "test.toml").unwrap();
    let e = env_with(db, start, config.clone()).await;
    let data = tempfile::tempdir().unwrap();
    let ctx = Context::with_vault(e.vault.clone(), config.clone(), data.path()).unwrap();
    PEnv {
        e,
        ctx,
        config,
        _data: data,
    }
}

impl PEnv {
    /// Runs the worker until no job is due.
    pub async fn work(&self) -> usize {
        fiktiv_delivery::worker::run_until_idle(&self.ctx.delivery, 200)
            .await
            .unwrap()
    }

    /// Jobs by state, from the API.
    pub async fn jobs(&self, state: &str) -> Vec<Value> {
        self.e
            .ok(
                StatusCode::OK,
                "GET",
                &format!("/api/v1/sync/jobs?state={state}"),
                CENTRAL,
                None,
            )
            .await
            .as_array()
            .unwrap()
            .clone()
    }

    /// Starts a run with `post` (202) and polls `get_prefix/{run_id}` until it ends.
    pub async fn run(&self, who: &str, post: &str, get_prefix: &str) -> Value {
        let r = self
            .e
            .ok(StatusCode::ACCEPTED, "POST", post, who, None)
            .await;
        let id = r["run_id"].as_str().unwrap().to_owned();
        for _ in 0..600 {
            let v = self
                .e
                .ok(
                    StatusCode::OK,
                    "GET",
                    &format!("{get_prefix}/{id}"),
                    who,
                    None,
                )
                .await;
            if v["state"] != "running" {
                assert_eq!(v["state"], "done", "{v}");
                return v;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("run {id} did not finish");
    }

    pub async fn person_ids(&self, case: &str) -> Vec<(String, String)> {
        use sqlx::Row;
        sqlx::query(
            "SELECT person_id, subject FROM prov_persons WHERE case_id = $1 ORDER BY subject DESC",
        )
        .bind(case)
        .fetch_all(self.e.vault.db().pool())
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get("person_id"), r.get("subject")))
        .collect()
    }

    pub async fn pupil_id(&self, case: &str) -> String {
        self.person_ids(case)
            .await
            .into_iter()
            .find(|(_, s)| s == "pupil")
            .unwrap()
            .0
    }

    /// Audit events with this action.
    pub async fn audit_count(&self, action: &str) -> i64 {
        self.e.audit_count(action).await
    }
}

/// A real pupil of a test: Swedish, born in 2015.
pub struct Real {
    pub first: &'static str,
    pub last: &'static str,
    pub birth: &'static str,
    pub number: String,
}

impl Real {
    pub fn new(first: &'static str, last: &'static str, birth: &'static str, serial: u16) -> Self {
        let d = chrono::NaiveDate::parse_from_str(birth, "%Y-%m-%d").unwrap();
        Self {
            first,
            last,
            birth,
            number: se_number(d, serial),
        }
    }
}

/// Opens a case for `real` in unit A (the school).
pub async fn open_case(e: &Env, real: &Real) -> String {
    e.walk()
        .open(json!({"country": "se", "personal_number": real.number,
                     "first_name": real.first, "last_name": real.last, "birth_date": real.birth}))
        .await
}

/// Plan, decision, fictitious identity, optional linked guardian, order (the one walk
/// of `api_common`). Returns the order id.
pub async fn order(
    e: &Env,
    case: &str,
    fict: (&str, &str, &str),
    guardian: Option<Value>,
    platforms: &[&str],
) -> String {
    let mut w = e
        .walk()
        .fictitious(fict.0, fict.1, fict.2)
        .platforms(platforms);
    if let Some(g) = guardian {
        w = w.guardian(g);
    }
    w.order(case).await
}

/// The central administrator registers the order.
pub async fn register(e: &Env, order: &str) -> Value {
    e.walk().register(order).await
}

/// The whole routine for one pupil up to registration. Returns the case id.
pub async fn pupil(
    e: &Env,
    real: &Real,
    fict: (&str, &str, &str),
    guardian: Option<Value>,
) -> String {
    let case = open_case(e, real).await;
    let o = order(e, &case, fict, guardian, &["google", "unikum"]).await;
    register(e, &o).await;
    case
}

/// A linked guardian with a fictitious identity.
pub fn guardian(real_first: &str, real_last: &str, serial: u16, fict: (&str, &str)) -> Value {
    json!({"linked": true,
           "real": {"personal_number": se_number(date(1985, 2, 11), serial),
                    "first_name": real_first, "last_name": real_last, "birth_date": "1985-02-11"},
           "fictitious": {"first_name": fict.0, "last_name": fict.1, "birth_date": "1985-07-07"}})
}
