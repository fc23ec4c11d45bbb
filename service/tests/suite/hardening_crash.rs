//! Nothing lost: crash consistency of the real `fiktiv serve` under SIGKILL.
//!
//! A killer thread starts `fiktiv serve` and kills it with SIGKILL at a random point
//! (seeded RNG; `FIKTIV_CRASH_SEED` overrides the seed), at least `KILLS` times: one
//! kill in five lands during start-up (migrations, the start event, the worker's first
//! cycle), the others while it serves, at a random delay after it is ready. Meanwhile a
//! driver takes a batch of pupils through the routine over the API (case, plan,
//! decision, fictitious identity, order, registration, staff told, review) and reads
//! the audit trail now and then. It retries every call after a lost connection, and
//! resolves a lost answer idempotently (a 409 on a retry means the first attempt
//! committed; the id is looked up). The worker provisions to a real slapd, a real
//! scim2-server and a OneRoster folder the whole time.
//!
//! Afterwards, with one last `serve` that is left running: every target has exactly
//! one account per pupil; every case, plan version, order, registration, staff-told
//! record and review that was acknowledged (2xx received) is there, with its audit
//! event; every audit event that was ever shown by the API is still there, unchanged;
//! and `fiktiv audit verify` passes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use crate::support::hardening;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use fiktiv_tests::{ScimServer, Slapd};
use hardening::*;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

const UNIT: &str = "unit-a";
/// SIGKILLs, at least.
const KILLS: usize = 50;
/// Pupils in the batch.
const PUPILS: usize = 24;

fn config(slapd: &Slapd, scim: &ScimServer, roster: &std::path::Path) -> String {
    format!(
        r#"
[provisioning]
workers = 2
poll_interval_ms = 100
backoff_base_secs = 1
backoff_max_secs = 2
max_attempts = 100
job_timeout_secs = 5
reconcile_interval_secs = 0

[[targets]]
name = "ldap"
kind = "ldap"
url = "{ldap}"
security = "plain"
bind_dn = "{dn}"
bind_password = "{pw}"
people_base = "{people}"
groups_base = "{groups}"
timeout_secs = 5

[[targets]]
name = "scim"
kind = "scim"
base_url = "{scim_url}"
token = "{token}"
timeout_secs = 5
max_retry_after_secs = 1

[[targets]]
name = "roster"
kind = "oneroster"
dir = "{roster}"
"#,
        ldap = slapd.url(),
        dn = slapd.admin_dn(),
        pw = slapd.admin_password(),
        people = slapd.people_dn(),
        groups = slapd.groups_dn(),
        scim_url = scim.base_url(),
        token = scim.token(),
        roster = roster.display(),
    )
}

#[derive(Default)]
struct Stats {
    calls: usize,
    lost_connections: usize,
    server_errors: usize,
    resolved_after_loss: usize,
    /// A 409 on a retry: the first attempt had committed and its answer was lost.
    committed_answer_lost: usize,
}

/// What the service acknowledged with a 2xx: (case id, action) → count, and the ids.
#[derive(Default)]
struct Acked {
    by_action: BTreeMap<(String, &'static str), usize>,
    plan_version: HashMap<String, i64>,
    order: HashMap<String, String>,
    number: HashMap<String, String>,
}

impl Acked {
    fn add(&mut self, case: &str, action: &'static str) {
        *self.by_action.entry((case.to_owned(), action)).or_default() += 1;
    }
}

struct Driver<'a> {
    c: &'a Client,
    school: String,
    central: String,
    auditor: String,
    stats: Stats,
    acked: Acked,
    /// Every audit event the API ever showed: event id → (seq, action, case id).
    seen_events: HashMap<String, (i64, String, Option<String>)>,
    known_cases: Vec<String>,
    /// A user's think time before each call (0 to 200 ms, seeded): it spreads the
    /// driver's work over many of the server's lives. No assertion depends on it.
    think: rand::rngs::StdRng,
}

impl Driver<'_> {
    /// One call, retried until the service answers something other than a 5xx or 408.
    /// Returns (status, body, whether an earlier attempt lost its connection).
    fn call(&mut self, tok: &str, m: &str, path: &str, body: Option<Value>) -> (u16, Value, bool) {
        let tok = tok.to_owned();
        let mut lost = false;
        std::thread::sleep(Duration::from_millis(self.think.gen_range(0..200)));
        let deadline = Instant::now() + Duration::from_secs(300);
        let mut last = String::new();
        loop {
            assert!(
                Instant::now() < deadline,
                "{m} {path}: no answer for 5 minutes; last: {last}"
            );
            self.stats.calls += 1;
            match self.c.try_call(&tok, m, path, body.as_ref()) {
                Ok((s, v)) if s >= 500 || s == 408 => {
                    self.stats.server_errors += 1;
                    last = format!("{s} {v}");
                    lost = true;
                }
                Ok((s, v)) => {
                    if lost {
                        self.stats.resolved_after_loss += 1;
                    }
                    return (s, v, lost);
                }
                Err(e) => {
                    self.stats.lost_connections += 1;
                    last = format!("{e:#}");
                    lost = true;
                }
            }
            std::thread::sleep(Duration::from_millis(40));
        }
    }

    fn read_audit(&mut self) {
        let tok = self.auditor.clone();
        let (s, v, _) = self.call(&tok, "GET", "/api/v1/audit/events?limit=1000", None);
        assert_eq!(s, 200, "{v}");
        let events = v.as_array().unwrap();
        assert!(events.len() < 1000, "paging needed");
        for e in events {
            self.seen_events.insert(
                e["event_id"].as_str().unwrap().to_owned(),
                (
                    e["seq"].as_i64().unwrap(),
                    e["action"].as_str().unwrap().to_owned(),
                    e["case_id"].as_str().map(str::to_owned),
                ),
            );
        }
    }

    /// The routine for one pupil, resilient to kills at any point.
    fn pupil(&mut self, i: usize) {
        let school = self.school.clone();
        let central = self.central.clone();
        let birth = NaiveDate::from_ymd_opt(2015, 1 + (i % 12) as u32, 3 + i as u32).unwrap();
        let number = fiktiv_vault::ids::make_se_number(birth, 100 + i as u16).unwrap();
        let (s, v, lost) = self.call(
            &school,
            "POST",
            &format!("/api/v1/units/{UNIT}/cases"),
            Some(json!({"country": "se", "personal_number": number,
                "first_name": "Kanari", "last_name": format!("Krasch{}", letter(i)),
                "birth_date": birth.format("%Y-%m-%d").to_string()})),
        );
        let case = match s {
            201 => {
                let case = v["case_id"].as_str().unwrap().to_owned();
                self.acked.add(&case, "case.open");
                case
            }
            409 if lost => {
                self.stats.committed_answer_lost += 1;
                // The first attempt committed; its answer was lost. The one case of the
                // unit the driver does not know yet is this pupil's.
                let (s, v, _) =
                    self.call(&school, "GET", &format!("/api/v1/units/{UNIT}/cases"), None);
                assert_eq!(s, 200, "{v}");
                let unknown: Vec<String> = v
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c["case_id"].as_str().unwrap().to_owned())
                    .filter(|c| !self.known_cases.contains(c))
                    .collect();
                assert_eq!(unknown.len(), 1, "exactly one new case: {v}");
                unknown[0].clone()
            }
            _ => panic!("open case {i}: {s} {v}"),
        };
        self.known_cases.push(case.clone());
        let cp = format!("/api/v1/cases/{case}");

        let (s, v, _) = self.call(
            &school,
            "PUT",
            &format!("{cp}/plan"),
            Some(json!({"information_handling": "x", "platforms": [],
                "guardian_contact_routes": [], "staff_to_inform": [], "free_text": ""})),
        );
        assert_eq!(s, 200, "{v}");
        self.acked.add(&case, "plan.write");
        self.acked
            .plan_version
            .insert(case.clone(), v["version"].as_i64().unwrap());

        let (s, v, _) = self.call(
            &school,
            "PUT",
            &format!("{cp}/login-decision"),
            Some(json!({"decision": "fictitious-user"})),
        );
        assert_eq!(s, 200, "{v}");
        self.acked.add(&case, "login-decision.write");

        let fict_birth = NaiveDate::from_ymd_opt(2015, 1 + ((i + 5) % 12) as u32, 20).unwrap();
        let (s, v, _) = self.call(
            &school,
            "PUT",
            &format!("{cp}/fictitious-identity"),
            Some(
                json!({"first_name": "Maja", "last_name": format!("Fiktiv{}", letter(i)),
                "birth_date": fict_birth.format("%Y-%m-%d").to_string()}),
            ),
        );
        assert_eq!(s, 200, "{v}");
        self.acked.add(&case, "fictitious-identity.write");

        let (s, v, lost) = self.call(
            &school,
            "POST",
            &format!("{cp}/order"),
            Some(json!({"groups": ["4B"], "platforms": ["google"]})),
        );
        let order = match s {
            201 => {
                let o = v["order_id"].as_str().unwrap().to_owned();
                self.acked.add(&case, "order.send");
                self.acked.order.insert(case.clone(), o.clone());
                o
            }
            409 if lost => {
                self.stats.committed_answer_lost += 1;
                let (s, v, _) = self.call(&central, "GET", "/api/v1/orders?all=true", None);
                assert_eq!(s, 200, "{v}");
                v.as_array()
                    .unwrap()
                    .iter()
                    .find(|o| o["case_id"] == case.as_str())
                    .unwrap_or_else(|| panic!("the order of {case} is missing: {v}"))["order_id"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            }
            _ => panic!("order {i}: {s} {v}"),
        };

        let (s, v, lost) = self.call(
            &central,
            "POST",
            &format!("/api/v1/orders/{order}/registration"),
            Some(json!({})),
        );
        match s {
            200 => {
                self.acked.add(&case, "order.register");
                self.acked
                    .number
                    .insert(case.clone(), v["number"].as_str().unwrap().to_owned());
            }
            409 if lost => {
                self.stats.committed_answer_lost += 1;
                let (s, v, _) = self.call(&central, "GET", &cp, None);
                assert_eq!((s, v["state"].as_str()), (200, Some("registered")), "{v}");
            }
            _ => panic!("registration {i}: {s} {v}"),
        }

        let today = chrono::Utc::now()
            .with_timezone(&chrono_tz::Europe::Stockholm)
            .date_naive()
            .format("%Y-%m-%d")
            .to_string();
        let (s, v, lost) = self.call(
            &school,
            "POST",
            &format!("{cp}/staff-told"),
            Some(json!({"staff": ["class teacher"], "told_on": today})),
        );
        match s {
            201 => self.acked.add(&case, "staff-told.write"),
            409 if lost => self.stats.committed_answer_lost += 1,
            _ => panic!("staff told {i}: {s} {v}"),
        }
        let (s, v, lost) = self.call(
            &school,
            "POST",
            &format!("{cp}/reviews"),
            Some(json!({"outcome": "continue"})),
        );
        match s {
            201 => self.acked.add(&case, "review.record"),
            409 if lost => self.stats.committed_answer_lost += 1,
            _ => panic!("review {i}: {s} {v}"),
        }
    }
}

/// Names take letters only: 0 → "a", 1 → "b", ...
fn letter(i: usize) -> char {
    char::from(b'a' + u8::try_from(i % 26).unwrap())
}

fn persons_of(c: &Client, central: &str) -> Vec<(String, String)> {
    c.ok(200, central, "GET", "/api/v1/sync/jobs", None)
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            (
                j["person_id"].as_str().unwrap().to_owned(),
                j["case_id"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[test]
fn sigkill_at_random_points_loses_nothing() {
    let seed: u64 = std::env::var("FIKTIV_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_f1c7);
    let slapd = Slapd::start().unwrap();
    let scim = ScimServer::start().unwrap();
    let work = tempfile::tempdir().unwrap();
    let roster = work.path().join("roster");
    let f = Fiktiv::new(&config(&slapd, &scim, &roster), None, "warn");
    f.cli_ok(&["init"]);
    let school = f.token(&["--role", "school", "--unit", UNIT, "--name", "rektor"]);
    let central = f.token(&["--role", "central-admin", "--name", "central"]);
    let auditor = f.token(&["--role", "auditor", "--name", "auditor"]);
    let port = fiktiv_tests::free_port().unwrap();
    let c = Client::new(port);
    let started = Instant::now();

    let driver_done = AtomicBool::new(false);
    let kills_while_driving = AtomicUsize::new(0);
    let (d, (server, during_startup, while_serving, killing_took)) = std::thread::scope(|s| {
        let killer = s.spawn(|| {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let mut during_startup = 0;
            let mut while_serving = 0;
            for _ in 0..KILLS {
                let mut srv = f.spawn_serve(port);
                if rng.gen_ratio(1, 5) {
                    std::thread::sleep(Duration::from_millis(rng.gen_range(0..1500)));
                    during_startup += 1;
                } else {
                    srv.wait_ready(Duration::from_secs(60));
                    std::thread::sleep(Duration::from_millis(rng.gen_range(0..1000)));
                    while_serving += 1;
                }
                if !driver_done.load(Ordering::SeqCst) {
                    kills_while_driving.fetch_add(1, Ordering::SeqCst);
                }
                srv.kill();
            }
            // The last start is left running; the driver may still need it.
            let took = started.elapsed();
            (f.serve(port), during_startup, while_serving, took)
        });
        let mut d = Driver {
            c: &c,
            school: school.clone(),
            central: central.clone(),
            auditor: auditor.clone(),
            stats: Stats::default(),
            acked: Acked::default(),
            seen_events: HashMap::new(),
            known_cases: Vec::new(),
            think: rand::rngs::StdRng::seed_from_u64(seed ^ 0x7417),
        };
        for i in 0..PUPILS {
            d.pupil(i);
            d.read_audit();
        }
        driver_done.store(true, Ordering::SeqCst);
        let kills = killer.join().unwrap();
        (d, kills)
    });

    // The last start, left running: it must converge.
    let deadline = Instant::now() + Duration::from_secs(150);
    let jobs = loop {
        let j = c.ok(200, &central, "GET", "/api/v1/sync/jobs", None);
        let all = j.as_array().unwrap().clone();
        if all.len() == PUPILS * 3 && all.iter().all(|j| j["state"] == "done") {
            break all;
        }
        assert!(
            Instant::now() < deadline,
            "not converged: {}",
            serde_json::to_string_pretty(&all).unwrap()
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    let converged_after = started.elapsed();

    // Exactly one account per pupil in every target.
    let persons: Vec<(String, String)> = persons_of(&c, &central);
    let mut ids: Vec<&String> = persons.iter().map(|p| &p.0).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), PUPILS, "one person per pupil");
    let ldap_all = slapd
        .ldapsearch("(objectClass=inetOrgPerson)", &["employeeNumber"])
        .unwrap();
    assert_eq!(ldap_all.matches("dn: ").count(), PUPILS, "{ldap_all}");
    let scim_users = scim.list_all("/Users").unwrap();
    assert_eq!(scim_users.len(), PUPILS);
    let csv = std::fs::read_to_string(roster.join("users.csv")).unwrap();
    for id in &ids {
        assert_eq!(
            ldap_all.matches(&format!("employeeNumber: {id}\n")).count(),
            1,
            "ldap {id}"
        );
        assert_eq!(
            scim_users
                .iter()
                .filter(|u| u["externalId"] == id.as_str())
                .count(),
            1,
            "scim {id}"
        );
        assert_eq!(
            csv.lines().filter(|l| l.starts_with(id.as_str())).count(),
            1,
            "csv {id}"
        );
    }
    let retried_jobs = jobs
        .iter()
        .filter(|j| j["attempts"].as_i64().unwrap() > 1)
        .count();

    // Every acknowledged write is there.
    assert_eq!(d.known_cases.len(), PUPILS);
    for case in &d.known_cases {
        let cp = format!("/api/v1/cases/{case}");
        let meta = c.ok(200, &central, "GET", &cp, None);
        assert_eq!(meta["state"], "registered", "{meta}");
        if let Some(n) = d.acked.number.get(case) {
            assert_eq!(meta["fictitious"]["number"], n.as_str(), "{meta}");
        }
        let plan = c.ok(200, &school, "GET", &format!("{cp}/plan"), None);
        assert!(plan["version"].as_i64().unwrap() >= d.acked.plan_version[case]);
        if let Some(o) = d.acked.order.get(case) {
            let orders = c.ok(200, &central, "GET", "/api/v1/orders?all=true", None);
            let mine: Vec<&Value> = orders
                .as_array()
                .unwrap()
                .iter()
                .filter(|x| x["case_id"] == case.as_str())
                .collect();
            assert_eq!(mine.len(), 1);
            assert_eq!(mine[0]["order_id"], o.as_str());
        }
        let told = c.ok(200, &school, "GET", &format!("{cp}/staff-told"), None);
        let told_n = told.as_array().map(Vec::len).unwrap_or(0);
        let acked_told = d.acked.by_action.get(&(case.clone(), "staff-told.write"));
        assert!(
            told_n >= acked_told.copied().unwrap_or(0) && told_n >= 1,
            "{told}"
        );
        let reviews = c.ok(200, &school, "GET", &format!("{cp}/reviews"), None);
        let hist = reviews["reviews"].as_array().map(Vec::len).unwrap_or(0);
        let acked_rev = d.acked.by_action.get(&(case.clone(), "review.record"));
        assert!(
            hist >= acked_rev.copied().unwrap_or(0) && hist >= 1,
            "{reviews}"
        );
    }

    // Every acknowledged write has its audit event; every event ever shown is still
    // there, with the same sequence number and action.
    let events = c.ok(
        200,
        &auditor,
        "GET",
        "/api/v1/audit/events?limit=1000",
        None,
    );
    let events = events.as_array().unwrap();
    assert!(events.len() < 1000);
    let now: HashMap<&str, (i64, &str, Option<&str>)> = events
        .iter()
        .map(|e| {
            (
                e["event_id"].as_str().unwrap(),
                (
                    e["seq"].as_i64().unwrap(),
                    e["action"].as_str().unwrap(),
                    e["case_id"].as_str(),
                ),
            )
        })
        .collect();
    for (id, (seq, action, case)) in &d.seen_events {
        let got = now
            .get(id.as_str())
            .unwrap_or_else(|| panic!("audit event {id} ({action}) was lost"));
        assert_eq!(
            *got,
            (*seq, action.as_str(), case.as_deref()),
            "event {id} changed"
        );
    }
    for ((case, action), n) in &d.acked.by_action {
        let have = events
            .iter()
            .filter(|e| {
                e["case_id"] == case.as_str() && e["action"] == *action && e["outcome"] == "ok"
            })
            .count();
        assert!(
            have >= *n,
            "{action} on {case}: {n} acknowledged, {have} audited"
        );
    }
    let starts = events
        .iter()
        .filter(|e| e["action"] == "system.start")
        .count();
    let verify = c.ok(200, &auditor, "GET", "/api/v1/audit/verify", None);
    assert_eq!(verify["ok"], true, "{verify}");

    assert!(server.terminate().success());
    let out = f.cli_ok(&["audit", "verify"]);
    assert!(out.contains("audit trail ok"), "{out}");

    eprintln!(
        "crash consistency (seed {seed:#x}): {KILLS} SIGKILLs ({during_startup} during start-up, \
         {while_serving} while serving; {} while the driver was registering), {} starts \
         recorded in the audit trail, {PUPILS} pupils, {} API calls ({} lost connections, {} 5xx, \
         {} answers after a loss, {} of them a 409 because the lost attempt had committed), {} jobs ({} retried), {} audit events verified, \
         {} acknowledged writes checked, {} events seen before the end all still there; \
         kills took {:.0?}, converged after {:.0?}",
        kills_while_driving.load(Ordering::SeqCst),
        starts,
        d.stats.calls,
        d.stats.lost_connections,
        d.stats.server_errors,
        d.stats.resolved_after_loss,
        d.stats.committed_answer_lost,
        jobs.len(),
        retried_jobs,
        verify["events"],
        d.acked.by_action.values().sum::<usize>(),
        d.seen_events.len(),
        killing_took,
        converged_after,
    );
    assert_eq!(during_startup + while_serving, KILLS);
    assert!(
        kills_while_driving.load(Ordering::SeqCst) >= KILLS / 3,
        "the kills landed while the driver was registering"
    );
    assert!(
        d.stats.lost_connections > 0,
        "the kills cut the driver's calls"
    );
}
