//! No leak, anywhere: the canary suite.
//!
//! Four canary real identities (a Swedish and a Norwegian pupil, each with a linked
//! guardian; names with diacritics that fold to unique strings) go through the whole
//! routine on the real `fiktiv serve` (logging at TRACE), which provisions to a real
//! slapd and a real scim2-server, each behind a recording `FaultProxy`, and to a
//! OneRoster folder: case, plan, decision, fictitious identities, guardians, order,
//! registration, staff told, review, account check, leak scans, four-eyes reveals
//! (approved and read, refused), the end of one case, deprovisioning and the retention
//! run that shreds it. Misdirected input carries the canaries too: in a URL, a query, a
//! header, a JSON key, a purpose, a malformed, mistyped or oversized body.
//!
//! Then every channel is searched for every written form of the canaries (each number
//! in every written form, also URL-encoded; the birth dates; the names in NFC and NFD,
//! as written, lower and upper case, JSON-\u-escaped, percent-encoded, LDAP-hex-escaped,
//! and folded to ASCII). The only places a canary may be found are the approved reveal
//! that was read and the school's own identity page; the test checks that it IS found
//! there (so the scanner works), and that every channel captured something and holds a
//! positive control (so an empty or wrong capture cannot pass). It prints the table of
//! channels.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

#[macro_use]
mod support;
/// The binary's own panic hook, compiled from the same file.
#[path = "../src/panic_hook.rs"]
mod panic_hook;

use std::time::{Duration, Instant};

use chrono::NaiveDate;
use fiktiv_tests::{Fault, FaultProxy, ScimServer, Slapd, TestDatabase};
use serde_json::{json, Value};
use support::hardening::*;

const UNIT_A: &str = "unit-a";
const UNIT_B: &str = "unit-b";
const PANIC_CHILD_ENV: &str = "FIKTIV_TEST_PANIC_CHILD";

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn se(birth: &str, serial: u16) -> String {
    fiktiv_vault::ids::make_se_number(date(birth), serial).unwrap()
}

/// A valid Norwegian fødselsnummer with an individual number in `range`.
fn no(birth: &str, range: std::ops::Range<u16>) -> String {
    let head = date(birth).format("%d%m%y").to_string();
    range
        .into_iter()
        .find_map(|i| {
            let nine = format!("{head}{i:03}");
            fiktiv_vault::ids::no_check_digits(&nine).map(|(a, b)| format!("{nine}{a}{b}"))
        })
        .unwrap()
}

struct Pupil {
    real: RealPerson,
    guardian: RealPerson,
    fict: (&'static str, &'static str, &'static str),
    guardian_fict: (&'static str, &'static str, &'static str),
}

fn pupils() -> Vec<Pupil> {
    let se_pupil = se("2014-02-27", 318);
    let no_pupil = no("2013-11-09", 500..1000);
    vec![
        Pupil {
            real: RealPerson {
                label: "SE pupil",
                country: "se",
                // Sent as YYMMDD-NNNC.
                number: format!("{}-{}", &se_pupil[2..8], &se_pupil[8..]),
                first: "Åsa-Öjvind",
                last: "Ärtsköldsdotter",
                birth: "2014-02-27",
            },
            guardian: RealPerson {
                label: "SE guardian",
                country: "se",
                // Sent as 12 digits.
                number: se("1983-10-29", 772),
                first: "Renée-Görel",
                last: "Brännströmsköld",
                birth: "1983-10-29",
            },
            fict: ("Maja", "Lindqvist", "2014-09-03"),
            guardian_fict: ("Karin", "Berglund", "1983-07-07"),
        },
        Pupil {
            real: RealPerson {
                label: "NO pupil",
                country: "no",
                // Sent as DDMMYY IIIII.
                number: format!("{} {}", &no_pupil[..6], &no_pupil[6..]),
                first: "Ærlend-Øyvår",
                last: "Kanarifjøsbakken",
                birth: "2013-11-09",
            },
            guardian: RealPerson {
                label: "NO guardian",
                country: "no",
                number: no("1981-04-03", 0..500),
                first: "Åshild-Renée",
                last: "Tjøstølvikhaug",
                birth: "1981-04-03",
            },
            fict: ("Nora", "Hansen", "2013-04-04"),
            guardian_fict: ("Ingrid", "Dahl", "1981-06-06"),
        },
    ]
}

fn canaries(pupils: &[Pupil]) -> Canaries {
    let mut c = Canaries::default();
    for p in pupils {
        c.add(&p.real);
        c.add(&p.guardian);
    }
    c.add(&corrected_se_pupil());
    c
}

/// The Swedish pupil after a correction of the real identity: a new personal number
/// and a new surname (the old identity stays looked for, and sealed, until closed).
fn corrected_se_pupil() -> RealPerson {
    RealPerson {
        label: "SE pupil, corrected",
        country: "se",
        number: se("2014-02-27", 431),
        first: "Åsa-Öjvind",
        last: "Kanarieskölds-Åkesson",
        birth: "2014-02-27",
    }
}

fn today_local() -> String {
    chrono::Utc::now()
        .with_timezone(&chrono_tz::Europe::Stockholm)
        .date_naive()
        .format("%Y-%m-%d")
        .to_string()
}

const RETENTION: &str = r#"
[retention]
real_identity = "P0D"
action_plan = "P0D"
fictitious_identity = "P0D"
login_decision = "P0D"
staff_told = "P0D"
review = "P0D"
order = "P0D"
reveal_request = "permanent"
audit_event = "permanent"
"#;

fn config(
    slapd: &Slapd,
    scim: &ScimServer,
    ldap: &FaultProxy,
    http: &FaultProxy,
    roster: &std::path::Path,
    retention: &std::path::Path,
) -> String {
    format!(
        r#"
[log]
format = "json"
level = "trace"

[policies]
retention = "{retention}"

[provisioning]
workers = 2
poll_interval_ms = 100
backoff_base_secs = 1
backoff_max_secs = 2
max_attempts = 20
job_timeout_secs = 30
reconcile_interval_secs = 0
grace_days = 0

[[targets]]
name = "ldap"
kind = "ldap"
url = "{ldap_url}"
security = "plain"
bind_dn = "{bind_dn}"
bind_password = "{bind_pw}"
people_base = "{people}"
groups_base = "{groups}"
mail = "{{given}}.{{family}}.{{short_id}}@skola.example"
timeout_secs = 10

[[targets]]
name = "scim"
kind = "scim"
base_url = "{scim_url}/v2"
token = "{scim_token}"
email = "{{given}}.{{family}}.{{short_id}}@skola.example"
timeout_secs = 10
max_retry_after_secs = 2

[[targets]]
name = "roster"
kind = "oneroster"
dir = "{roster}"
"#,
        retention = retention.display(),
        ldap_url = ldap.url_for("ldap"),
        bind_dn = slapd.admin_dn(),
        bind_pw = slapd.admin_password(),
        people = slapd.people_dn(),
        groups = slapd.groups_dn(),
        scim_url = http.url_for("http"),
        scim_token = scim.token(),
        roster = roster.display(),
    )
}

struct Tokens {
    school: String,
    school_b: String,
    central: String,
    approver: String,
    approver2: String,
    auditor: String,
}

fn tokens(f: &Fiktiv) -> Tokens {
    let specs: Vec<Vec<&str>> = vec![
        vec!["--role", "school", "--unit", UNIT_A, "--name", "rektor.a"],
        vec!["--role", "school", "--unit", UNIT_B, "--name", "rektor.b"],
        vec!["--role", "central-admin", "--name", "central"],
        vec!["--role", "approver", "--name", "approver.one"],
        vec!["--role", "approver", "--name", "approver.two"],
        vec!["--role", "auditor", "--name", "auditor"],
    ];
    let t: Vec<String> = std::thread::scope(|s| {
        let hs: Vec<_> = specs.iter().map(|a| s.spawn(move || f.token(a))).collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    Tokens {
        school: t[0].clone(),
        school_b: t[1].clone(),
        central: t[2].clone(),
        approver: t[3].clone(),
        approver2: t[4].clone(),
        auditor: t[5].clone(),
    }
}

fn wait_until<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn jobs(c: &Client, t: &Tokens) -> Vec<Value> {
    c.ok(200, &t.central, "GET", "/api/v1/sync/jobs", None)
        .as_array()
        .unwrap()
        .clone()
}

/// Starts a run (202) and polls `get_prefix/{run_id}` until it is done.
fn run(c: &Client, token: &str, post: &str, get_prefix: &str) -> Value {
    let r = c.ok(202, token, "POST", post, None);
    let id = r["run_id"].as_str().unwrap().to_owned();
    wait_until("a run", Duration::from_secs(60), || {
        let v = c.ok(200, token, "GET", &format!("{get_prefix}/{id}"), None);
        (v["state"] != "running").then_some(v)
    })
}

/// One misdirected request: method, path, headers, body.
type Misdirected = (
    &'static str,
    String,
    Vec<(&'static str, String)>,
    Option<Vec<u8>>,
);

/// Requests that carry a canary where it does not belong. Each gets a 4xx (or, for a
/// harmless header, a 2xx) and must not echo or keep it anywhere.
fn misdirected(c: &Client, t: &Tokens, p: &RealPerson) {
    let number = &p.number;
    let compact: String = number.chars().filter(char::is_ascii_digit).collect();
    let name_pct: String = p
        .first
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let auth = |tok: &str| format!("Bearer {tok}");
    let school = auth(&t.school);
    let json_ct = ("Content-Type", "application/json");
    let cases = format!("/api/v1/units/{UNIT_A}/cases");
    let good_body = json!({"country": p.country, "personal_number": number,
        "first_name": p.first, "last_name": p.last, "birth_date": p.birth});
    let mut key_is_name = good_body.clone();
    key_is_name[p.first] = json!(p.last);
    let mut wrong_type = good_body.clone();
    wrong_type["birth_date"] = json!([p.last, compact.clone()]);
    let mut malformed = serde_json::to_vec(&good_body).unwrap();
    malformed.truncate(malformed.len() - 3);
    let mut invalid_utf8 = serde_json::to_vec(&good_body).unwrap();
    invalid_utf8.extend_from_slice(b"\xff\xfe\"");
    let mut oversized = Vec::new();
    while oversized.len() < 80 * 1024 {
        oversized.extend_from_slice(&serde_json::to_vec(&good_body).unwrap());
    }
    let rows: Vec<Misdirected> = vec![
        ("GET", format!("/api/v1/cases/{compact}"), vec![], None),
        (
            "GET",
            format!("/api/v1/cases/{name_pct}/identity"),
            vec![],
            None,
        ),
        (
            "GET",
            format!("/api/v1/units/{name_pct}/cases"),
            vec![],
            None,
        ),
        (
            "GET",
            format!("/api/v1/audit/events?case_id={compact}"),
            vec![],
            None,
        ),
        ("GET", format!("/{compact}"), vec![], None),
        (
            "POST",
            cases.clone(),
            vec![json_ct_owned(json_ct)],
            Some(serde_json::to_vec(&key_is_name).unwrap()),
        ),
        (
            "POST",
            cases.clone(),
            vec![json_ct_owned(json_ct)],
            Some(serde_json::to_vec(&wrong_type).unwrap()),
        ),
        (
            "POST",
            cases.clone(),
            vec![json_ct_owned(json_ct)],
            Some(malformed),
        ),
        (
            "POST",
            cases.clone(),
            vec![json_ct_owned(json_ct)],
            Some(invalid_utf8),
        ),
        (
            "POST",
            cases.clone(),
            vec![("Content-Type", "text/plain".into())],
            Some(serde_json::to_vec(&good_body).unwrap()),
        ),
        (
            "POST",
            cases.clone(),
            vec![json_ct_owned(json_ct)],
            Some(oversized),
        ),
        (
            "POST",
            "/api/v1/reveals".into(),
            vec![json_ct_owned(json_ct)],
            Some(
                serde_json::to_vec(&json!({"fictitious_number": number, "purpose": "check"}))
                    .unwrap(),
            ),
        ),
        (
            "POST",
            "/api/v1/reveals".into(),
            vec![json_ct_owned(json_ct)],
            Some(
                serde_json::to_vec(
                    &json!({"case_id": compact, "purpose": format!("asked about {number}")}),
                )
                .unwrap(),
            ),
        ),
    ];
    for (method, path, mut headers, body) in rows {
        let token = if path.starts_with("/api/v1/audit") {
            auth(&t.auditor)
        } else {
            school.clone()
        };
        headers.push(("Authorization", token));
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = c.raw(method, &path, &h, body.as_deref());
        assert!(
            (400..500).contains(&r.status),
            "{method} {path}: {} {}",
            r.status,
            r.text()
        );
    }
    // The number as a bearer token, and in a header nobody reads.
    let r = c.raw(
        "GET",
        "/api/v1/cases",
        &[("Authorization", &auth(number))],
        None,
    );
    assert_eq!(r.status, 401);
    let r = c.raw(
        "GET",
        "/healthz",
        &[("X-Personnummer", number.as_str()), ("X-Name", "Kanari")],
        None,
    );
    assert_eq!(r.status, 200);
}

fn json_ct_owned(h: (&'static str, &'static str)) -> (&'static str, String) {
    (h.0, h.1.to_owned())
}

/// Steps 1-8 of the routine for one pupil. Returns (case id, fictitious number).
fn routine(c: &Client, t: &Tokens, p: &Pupil) -> (String, String) {
    let r = &p.real;
    let opened = c.ok(
        201,
        &t.school,
        "POST",
        &format!("/api/v1/units/{UNIT_A}/cases"),
        Some(json!({"country": r.country, "personal_number": r.number,
            "first_name": r.first, "last_name": r.last, "birth_date": r.birth})),
    );
    let case = opened["case_id"].as_str().unwrap().to_owned();
    let cp = format!("/api/v1/cases/{case}");
    // The same real pupil in another unit: refused, without saying where.
    let (s, _) = c.call(
        &t.school_b,
        "POST",
        &format!("/api/v1/units/{UNIT_B}/cases"),
        Some(json!({"country": r.country, "personal_number": r.number,
            "first_name": r.first, "last_name": r.last, "birth_date": r.birth})),
    );
    assert_eq!(s, 409);
    c.ok(
        200,
        &t.school,
        "PUT",
        &format!("{cp}/plan"),
        Some(
            json!({"information_handling": "Only the class teacher and the principal know.",
            "platforms": ["Google Workspace", "Unikum"],
            "guardian_contact_routes": ["Phone via the principal only"],
            "staff_to_inform": ["class teacher"], "free_text": "No photos."}),
        ),
    );
    c.ok(200, &t.school, "GET", &format!("{cp}/plan"), None);
    c.ok(
        200,
        &t.school,
        "PUT",
        &format!("{cp}/login-decision"),
        Some(json!({"decision": "fictitious-user"})),
    );
    c.ok(
        200,
        &t.school,
        "GET",
        &format!("{cp}/name-suggestions?count=5"),
        None,
    );
    // The real name as the fictitious one: refused, not echoed.
    let (s, _) = c.call(
        &t.school,
        "PUT",
        &format!("{cp}/fictitious-identity"),
        Some(json!({"first_name": r.first, "last_name": p.fict.1, "birth_date": p.fict.2})),
    );
    assert_eq!(s, 422);
    c.ok(
        200,
        &t.school,
        "PUT",
        &format!("{cp}/fictitious-identity"),
        Some(json!({"first_name": p.fict.0, "last_name": p.fict.1, "birth_date": p.fict.2})),
    );
    let g = &p.guardian;
    c.ok(
        200,
        &t.school,
        "PUT",
        &format!("{cp}/guardians/1"),
        Some(json!({"linked": true,
            "real": {"personal_number": g.number, "first_name": g.first,
                     "last_name": g.last, "birth_date": g.birth},
            "fictitious": {"first_name": p.guardian_fict.0, "last_name": p.guardian_fict.1,
                           "birth_date": p.guardian_fict.2}})),
    );
    c.ok(
        200,
        &t.school,
        "PUT",
        &format!("{cp}/guardians/2"),
        Some(json!({"linked": false})),
    );
    let order = c.ok(
        201,
        &t.school,
        "POST",
        &format!("{cp}/order"),
        Some(json!({"groups": ["4B"], "platforms": ["google", "unikum"]})),
    )["order_id"]
        .as_str()
        .unwrap()
        .to_owned();
    c.ok(200, &t.central, "GET", "/api/v1/orders", None);
    c.ok(200, &t.central, "GET", &cp, None);
    let reg = c.ok(
        200,
        &t.central,
        "POST",
        &format!("/api/v1/orders/{order}/registration"),
        Some(json!({})),
    );
    let fict_number = reg["number"].as_str().unwrap().to_owned();
    c.ok(
        201,
        &t.school,
        "POST",
        &format!("{cp}/staff-told"),
        Some(json!({"staff": ["class teacher", "school nurse"], "told_on": today_local()})),
    );
    c.ok(200, &t.school, "GET", &format!("{cp}/staff-told"), None);
    // The school's own case page: one of the two places the identity is shown.
    let (s, id) = c.call_allowed(&t.school, "GET", &format!("{cp}/identity"));
    assert_eq!(s, 200, "{id}");
    // Nobody else sees it.
    for tok in [&t.school_b, &t.central, &t.approver, &t.auditor] {
        let (s, _) = c.call(tok, "GET", &format!("{cp}/identity"), None);
        assert_eq!(s, 404);
    }
    (case, fict_number)
}

fn canary_suite(db: Option<TestDatabase>) {
    let backend = if db.is_some() { "PostgreSQL" } else { "SQLite" };
    let pupils = pupils();
    let canaries = canaries(&pupils);

    let mut slapd = Slapd::start().unwrap();
    let scim = ScimServer::start().unwrap();
    let ldap = FaultProxy::for_slapd(&slapd).unwrap();
    let http = FaultProxy::for_scim(&scim).unwrap();
    let work = tempfile::tempdir().unwrap();
    let roster = work.path().join("roster");
    let retention = work.path().join("retention.toml");
    std::fs::write(&retention, RETENTION).unwrap();
    let toml = config(&slapd, &scim, &ldap, &http, &roster, &retention);
    let f = Fiktiv::new(&toml, db.as_ref().map(|d| d.url()), "trace");

    f.cli_ok(&["init"]);
    let t = tokens(&f);
    let port = fiktiv_tests::free_port().unwrap();
    let server = f.serve(port);
    let c = Client::new(port);

    c.raw("GET", "/healthz", &[], None);
    c.raw("GET", "/readyz", &[], None);
    c.raw("GET", "/api/openapi.json", &[], None);
    for p in &pupils {
        misdirected(&c, &t, &p.real);
    }

    // Faults on the way, so that the error paths log and retry too.
    http.set_times(Fault::status(500), 2).unwrap();
    ldap.set_times(Fault::DropConnections, 1).unwrap();

    let mut cases = Vec::new();
    for p in &pupils {
        cases.push(routine(&c, &t, p));
    }
    let (se_case, _) = cases[0].clone();
    let (no_case, no_fict_number) = cases[1].clone();

    // Provisioning: 4 persons × 3 targets.
    wait_until("12 jobs done", Duration::from_secs(120), || {
        let j = jobs(&c, &t);
        (j.len() == 12 && j.iter().all(|j| j["state"] == "done")).then_some(())
    });
    assert!(http.stats().faults_injected >= 2, "the SCIM fault fired");
    c.ok(200, &t.central, "GET", "/api/v1/provisioning/status", None);
    c.ok(
        200,
        &t.central,
        "GET",
        "/api/v1/provisioning/alerts?open=false",
        None,
    );
    c.ok(200, &t.central, "GET", "/api/v1/targets", None);
    c.ok(200, &t.central, "POST", "/api/v1/targets/ldap/test", None);
    c.ok(200, &t.central, "POST", "/api/v1/targets/scim/test", None);
    let plan = c.ok(200, &t.central, "GET", "/api/v1/sync/plan", None);
    for tg in plan["targets"].as_array().unwrap() {
        for k in ["create", "update", "disable", "delete"] {
            assert!(tg[k].as_array().unwrap().is_empty(), "{k} in {tg}");
        }
    }
    for (case, _) in &cases {
        let r = run(
            &c,
            &t.school,
            &format!("/api/v1/cases/{case}/account-check"),
            &format!("/api/v1/cases/{case}/account-check"),
        );
        assert_eq!(r["state"], "done", "{r}");
        let r = run(
            &c,
            &t.school,
            &format!("/api/v1/cases/{case}/leak-scan"),
            &format!("/api/v1/cases/{case}/leak-scan"),
        );
        assert_eq!(r["state"], "done", "{r}");
        assert!(r.to_string().contains("clean"), "{r}");
    }
    let r = run(
        &c,
        &t.central,
        "/api/v1/leak-scan",
        "/api/v1/provisioning/runs",
    );
    assert_eq!(r["state"], "done", "{r}");
    let r = run(
        &c,
        &t.central,
        "/api/v1/targets/scim/account-check",
        "/api/v1/provisioning/runs",
    );
    assert_eq!(r["state"], "done", "{r}");
    c.ok(202, &t.central, "POST", "/api/v1/sync/reconcile", None);

    // Reviews.
    c.ok(
        200,
        &t.school,
        "GET",
        &format!("/api/v1/units/{UNIT_A}/reviews"),
        None,
    );
    c.ok(200, &t.central, "GET", "/api/v1/reviews?all=true", None);
    for (case, _) in &cases {
        c.ok(
            201,
            &t.school,
            "POST",
            &format!("/api/v1/cases/{case}/reviews"),
            Some(json!({"outcome": "continue"})),
        );
        c.ok(
            200,
            &t.school,
            "GET",
            &format!("/api/v1/cases/{case}/reviews"),
            None,
        );
    }
    c.ok(200, &t.central, "GET", "/api/v1/cases", None);
    c.ok(
        200,
        &t.school,
        "GET",
        &format!("/api/v1/units/{UNIT_A}/cases"),
        None,
    );
    c.ok(200, &t.central, "GET", "/api/v1/orders?all=true", None);

    // The Swedish pupil's real identity is corrected (a new number and surname): both
    // the old and the new identity are now sealed in the database, and the scans below
    // find the plaintext of neither.
    let corrected = corrected_se_pupil();
    let r = c.ok(
        200,
        &t.school,
        "POST",
        &format!("/api/v1/cases/{se_case}/identity-correction"),
        Some(
            json!({"personal_number": corrected.number, "first_name": corrected.first,
                    "last_name": corrected.last, "birth_date": corrected.birth,
                    "reason": "Ny folkbokföring"}),
        ),
    );
    assert_eq!(r["old_identity"]["old_id"], 1, "{r}");

    // What the targets and the database hold while the cases are live.
    let live_ldap = ldif_decoded(&slapd.dump().unwrap());
    let live_scim = scim.dump().unwrap();
    let live_csv = files_under(&roster);
    let live_db = db_bytes(&f, db.as_ref());

    // Four eyes: the school asks about the Swedish pupil, an approver approves, the
    // school reads once.
    let req = c.ok(
        201,
        &t.school,
        "POST",
        "/api/v1/reveals",
        Some(json!({"case_id": se_case, "purpose": "Guardian access request, ref 2026/14"})),
    );
    let rid = req["reveal_id"].as_str().unwrap().to_owned();
    let (s, _) = c.call(
        &t.school,
        "GET",
        &format!("/api/v1/reveals/{rid}/identity"),
        None,
    );
    assert_eq!(s, 409, "not approved yet");
    c.ok(200, &t.approver, "GET", "/api/v1/reveals/pending", None);
    c.ok(
        200,
        &t.approver,
        "POST",
        &format!("/api/v1/reveals/{rid}/decision"),
        Some(json!({"approve": true})),
    );
    for tok in [&t.approver, &t.central, &t.auditor, &t.school_b] {
        let (s, _) = c.call(tok, "GET", &format!("/api/v1/reveals/{rid}/identity"), None);
        assert_eq!(s, 404);
    }
    let (s, v) = c.call_allowed(&t.school, "GET", &format!("/api/v1/reveals/{rid}/identity"));
    assert_eq!(s, 200, "{v}");
    let (s, _) = c.call(
        &t.school,
        "GET",
        &format!("/api/v1/reveals/{rid}/identity"),
        None,
    );
    assert_eq!(s, 410, "read once");
    // An approver asks about the Norwegian pupil by the fictitious number seen in a
    // platform; the other approver approves; read once.
    let req = c.ok(
        201,
        &t.approver2,
        "POST",
        "/api/v1/reveals",
        Some(json!({"fictitious_number": no_fict_number, "purpose": "Platform support ticket 77"})),
    );
    let rid2 = req["reveal_id"].as_str().unwrap().to_owned();
    c.ok(
        200,
        &t.approver,
        "POST",
        &format!("/api/v1/reveals/{rid2}/decision"),
        Some(json!({"approve": true})),
    );
    let (s, v) = c.call_allowed(
        &t.approver2,
        "GET",
        &format!("/api/v1/reveals/{rid2}/identity"),
    );
    assert_eq!(s, 200, "{v}");
    // A refused one stays unreadable.
    let req = c.ok(
        201,
        &t.school,
        "POST",
        "/api/v1/reveals",
        Some(json!({"case_id": no_case, "purpose": "Curious"})),
    );
    let rid3 = req["reveal_id"].as_str().unwrap().to_owned();
    c.ok(
        200,
        &t.approver2,
        "POST",
        &format!("/api/v1/reveals/{rid3}/decision"),
        Some(json!({"approve": false})),
    );
    let (s, _) = c.call(
        &t.school,
        "GET",
        &format!("/api/v1/reveals/{rid3}/identity"),
        None,
    );
    assert_eq!(s, 409);
    c.ok(200, &t.school, "GET", "/api/v1/reveals/mine", None);
    c.ok(200, &t.approver2, "GET", "/api/v1/reveals/mine", None);

    // The end of the Swedish case: accounts disabled, then deleted (grace 0 days).
    let ended = c.ok(
        200,
        &t.school,
        "POST",
        &format!("/api/v1/cases/{se_case}/end"),
        Some(json!({"reason": "pupil-left"})),
    );
    assert_eq!(ended["deprovisioning_requested"], true, "{ended}");
    wait_until(
        "the Swedish accounts deleted",
        Duration::from_secs(120),
        || {
            let j = jobs(&c, &t);
            let se: Vec<&Value> = j
                .iter()
                .filter(|j| j["case_id"] == se_case.as_str())
                .collect();
            (se.len() == 6
                && se
                    .iter()
                    .all(|j| j["op"] == "delete" && j["state"] == "done")
                && j.iter().all(|j| j["state"] == "done"))
            .then_some(())
        },
    );
    // Retention (P0D): the identity is shredded on the day the case ended.
    let out = f.cli_ok(&["retention", "run"]);
    assert!(out.contains('1'), "{out}");
    let (s, v) = c.call(
        &t.school,
        "GET",
        &format!("/api/v1/cases/{se_case}/identity"),
        None,
    );
    assert_eq!(s, 410, "{v}");
    // The Norwegian pupil is still live; a final leak scan of everything.
    let r = run(
        &c,
        &t.central,
        "/api/v1/leak-scan",
        "/api/v1/provisioning/runs",
    );
    assert_eq!(r["state"], "done", "{r}");
    for p in &pupils {
        misdirected(&c, &t, &p.real);
    }

    // The audit trail, through the API: every event.
    let verify = c.ok(200, &t.auditor, "GET", "/api/v1/audit/verify", None);
    assert_eq!(verify["ok"], true, "{verify}");
    let events = c.ok(
        200,
        &t.auditor,
        "GET",
        "/api/v1/audit/events?limit=1000",
        None,
    );
    let n = events.as_array().unwrap().len();
    assert!(n < 1000, "paging needed");
    assert_eq!(
        n as u64,
        verify["events"].as_u64().unwrap(),
        "every event listed"
    );
    let audit_text = serde_json::to_vec(&events).unwrap();

    let status = server.terminate();
    assert!(status.success(), "serve stopped cleanly: {status}");
    // The operator's commands, also at TRACE.
    assert!(f.cli_ok(&["audit", "verify"]).contains("audit trail ok"));
    f.cli(&["check", "leaks"]);
    f.cli_ok(&["sync", "plan"]);
    f.cli_ok(&["sync", "jobs"]);
    f.cli_ok(&["targets", "list"]);
    f.cli_ok(&["tokens", "list"]);

    // ------------------------------------------------------------------------------
    // Collect every channel.
    // ------------------------------------------------------------------------------
    let end_db = db_bytes(&f, db.as_ref());
    let end_ldap = ldif_decoded(&slapd.dump().unwrap());
    let slapd_mdb = slapd.db_bytes().unwrap();
    let slapd_log = slapd.log().unwrap();
    slapd.stop().unwrap();
    let scim_log = scim.log().unwrap();
    let end_scim = scim.stop_and_dump().unwrap();
    let end_csv = files_under(&roster);
    assert!(!ldap.recording_truncated() && !http.recording_truncated());
    let exchanges = c.exchanges.lock().unwrap().clone();
    let allowed: Vec<&Exchange> = exchanges.iter().filter(|e| e.allowed).collect();
    let others: Vec<&Exchange> = exchanges.iter().filter(|e| !e.allowed).collect();

    // The two allowed places: they do show the canaries (the scanner works on them).
    assert_eq!(allowed.len(), 4, "2 identity pages + 2 reveals");
    for e in &allowed {
        assert_eq!(e.status, 200);
        let found = canaries.scan(&e.body);
        assert!(
            found.iter().any(|w| w.contains("first name, NFC"))
                && found.iter().any(|w| w.contains("number")),
            "{} {}: the allowed response does not show the identity",
            e.method,
            e.path
        );
    }
    self_test(&canaries, &pupils);

    let mut rep = Report::default();
    let stderr: Vec<Vec<u8>> = f.serve_logs("stderr").into_iter().map(|x| x.1).collect();
    let stdout: Vec<Vec<u8>> = f.serve_logs("stdout").into_iter().map(|x| x.1).collect();
    let trace_lines = stderr
        .iter()
        .map(|b| {
            String::from_utf8_lossy(b)
                .matches("\"level\":\"TRACE\"")
                .count()
        })
        .sum::<usize>();
    rep.check(
        &canaries,
        format!("fiktiv serve: stdout + stderr, all levels ({trace_lines} TRACE lines)"),
        &[stdout, stderr].concat(),
        Some("\"level\":\"TRACE\""),
    );
    let cli = f.cli_output.lock().unwrap().clone();
    rep.check(
        &canaries,
        format!("fiktiv CLI: stdout of {} commands", cli.len()),
        &cli.iter().map(|x| x.1.clone()).collect::<Vec<_>>(),
        Some("audit trail ok"),
    );
    rep.check(
        &canaries,
        format!(
            "fiktiv CLI: stderr (logs at TRACE) of {} commands",
            cli.len()
        ),
        &cli.iter().map(|x| x.2.clone()).collect::<Vec<_>>(),
        Some("\"level\":\"TRACE\""),
    );
    rep.check(
        &canaries,
        format!(
            "HTTP response bodies ({} allowed ones excluded)",
            allowed.len()
        ),
        &others.iter().map(|e| e.body.clone()).collect::<Vec<_>>(),
        Some("Lindqvist"),
    );
    rep.check(
        &canaries,
        "HTTP response headers, all responses",
        &exchanges
            .iter()
            .map(|e| {
                let mut s = format!("HTTP {}\n", e.status);
                for (k, v) in &e.headers {
                    s.push_str(&format!("{k}: {v}\n"));
                }
                s.into_bytes()
            })
            .collect::<Vec<_>>(),
        Some("content-type"),
    );
    let db_name = if db.is_some() {
        "pg_dump"
    } else {
        "SQLite file + WAL"
    };
    rep.check(
        &canaries,
        format!("database ({db_name}) while the cases were live"),
        &[live_db],
        Some("Lindqvist"),
    );
    rep.check(
        &canaries,
        format!("database ({db_name}) at the end"),
        &[end_db],
        Some("Hansen"),
    );
    let data_files: Vec<Vec<u8>> = files_under(&f.data).into_iter().map(|x| x.1).collect();
    rep.check(
        &canaries,
        format!(
            "data directory: every file ({} files, raw)",
            data_files.len()
        ),
        &data_files,
        None,
    );
    rep.check(
        &canaries,
        format!("audit trail: all {n} events through the API"),
        &[audit_text],
        Some("reveal.read"),
    );
    rep.check(
        &canaries,
        "slapd: slapcat dump while live (base64 values decoded)",
        &[live_ldap.into_bytes()],
        Some("Lindqvist"),
    );
    rep.check(
        &canaries,
        "slapd: slapcat dump at the end (base64 values decoded)",
        &[end_ldap.into_bytes()],
        Some("Hansen"),
    );
    rep.check(
        &canaries,
        "slapd: raw data.mdb",
        &[slapd_mdb],
        Some("Hansen"),
    );
    rep.check(
        &canaries,
        "slapd: -d stats log (binds, search filters, changes)",
        &[slapd_log.into_bytes()],
        Some("ADD dn="),
    );
    rep.check(
        &canaries,
        "scim2-server: every resource over HTTP while live",
        &[live_scim.into_bytes()],
        Some("Lindqvist"),
    );
    rep.check(
        &canaries,
        "scim2-server: --dump-resources file at the end",
        &[end_scim.into_bytes()],
        Some("Hansen"),
    );
    rep.check(
        &canaries,
        "scim2-server: its log",
        &[scim_log.into_bytes()],
        Some("/v2/Users"),
    );
    rep.check(
        &canaries,
        format!("OneRoster CSV files while live ({})", live_csv.len()),
        &live_csv.into_iter().map(|x| x.1).collect::<Vec<_>>(),
        Some("Lindqvist"),
    );
    rep.check(
        &canaries,
        format!("OneRoster CSV files at the end ({})", end_csv.len()),
        &end_csv.into_iter().map(|x| x.1).collect::<Vec<_>>(),
        Some("Hansen"),
    );
    rep.check(
        &canaries,
        format!(
            "wire to slapd (FaultProxy, {} connections)",
            ldap.stats().connections_accepted
        ),
        &[ldap.recorded_to_upstream()],
        Some("Hansen"),
    );
    rep.check(
        &canaries,
        "wire from slapd (FaultProxy)",
        &[ldap.recorded_from_upstream()],
        Some("Hansen"),
    );
    rep.check(
        &canaries,
        format!(
            "wire to scim2-server (FaultProxy, {} requests)",
            http.stats().requests_seen
        ),
        &[http.recorded_to_upstream()],
        Some("Hansen"),
    );
    rep.check(
        &canaries,
        "wire from scim2-server (FaultProxy; injected 500s included)",
        &[http.recorded_from_upstream()],
        Some("Hansen"),
    );
    let panic_out = panic_child_output();
    rep.check(
        &canaries,
        "panic messages (fiktiv's panic hook; thread, tokio task, main)",
        &[panic_out],
        Some(panic_hook::PANIC_LINE),
    );
    eprintln!(
        "canary suite on {backend}: {} canary forms of 4 real identities, {} responses recorded",
        canaries.forms(),
        exchanges.len()
    );
    rep.assert_clean();
}

fn db_bytes(f: &Fiktiv, db: Option<&TestDatabase>) -> Vec<u8> {
    match db {
        Some(d) => d.pg_dump().unwrap(),
        None => {
            let path = f.sqlite_path();
            let mut b = std::fs::read(&path).unwrap();
            for suffix in ["-wal", "-journal"] {
                let mut side = path.as_os_str().to_owned();
                side.push(suffix);
                if let Ok(more) = std::fs::read(std::path::PathBuf::from(side)) {
                    b.extend_from_slice(&more);
                }
            }
            b
        }
    }
}

/// The scanner finds every encoding it claims to find.
fn self_test(c: &Canaries, pupils: &[Pupil]) {
    use unicode_normalization::UnicodeNormalization as _;
    let p = &pupils[0].real;
    let nfd: String = p.last.nfd().collect();
    let escaped = serde_json::to_string(&p.first).unwrap();
    let python_json = p
        .first
        .chars()
        .map(|c| {
            if c.is_ascii() {
                c.to_string()
            } else {
                format!("\\u{:04X}", c as u32)
            }
        })
        .collect::<String>();
    let ldif = {
        use base64::Engine as _;
        format!(
            "dn: x\ncn:: {}\n",
            base64::engine::general_purpose::STANDARD.encode(p.last.as_bytes())
        )
    };
    let canonical: String = p.number.chars().filter(char::is_ascii_digit).collect();
    for (what, text) in [
        ("NFD", nfd.clone()),
        ("upper NFD", nfd.to_uppercase()),
        ("lower", p.first.to_lowercase()),
        ("serde JSON", escaped),
        ("python JSON", python_json),
        ("LDIF base64", ldif_decoded(&ldif)),
        ("folded", format!("x {} y", fold(p.last).to_uppercase())),
        ("digits", format!("id={canonical};")),
        ("in binary", format!("\u{0}\u{1}{}\u{0}", p.last)),
    ] {
        assert!(
            !c.scan(text.as_bytes()).is_empty(),
            "the scanner misses {what}"
        );
    }
    assert!(c.scan(b"Maja Lindqvist 2014-09-03 Nora Hansen").is_empty());
}

/// Runs [`panic_hook_child`] in a child process (this test binary) and returns what it
/// printed on stdout and stderr.
fn panic_child_output() -> Vec<u8> {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "panic_hook_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(PANIC_CHILD_ENV, "1")
        .output()
        .unwrap();
    assert!(!out.status.success(), "the child panicked");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.matches(panic_hook::PANIC_LINE).count(),
        3,
        "one fixed line per panic: {err}"
    );
    assert!(
        err.contains("hardening_canary.rs:"),
        "the location is shown: {err}"
    );
    [out.stdout, out.stderr].concat()
}

/// In a child process only: installs fiktiv's panic hook, then panics with canaries in
/// the message in a thread, in a tokio task (as a request handler would) and in the
/// test's own thread.
#[test]
fn panic_hook_child() {
    if std::env::var_os(PANIC_CHILD_ENV).is_none() {
        return;
    }
    let p = &pupils()[0].real;
    panic_hook::install();
    let msg = format!("{} {} {}", p.number, p.first, p.last);
    let m = msg.clone();
    assert!(std::thread::spawn(move || panic!("thread: {m}"))
        .join()
        .is_err());
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let m = msg.clone();
    let joined = rt.block_on(async move { tokio::spawn(async move { panic!("task: {m}") }).await });
    assert!(joined.unwrap_err().is_panic());
    panic!("main: {msg}");
}

#[test]
fn main_installs_the_panic_hook_first() {
    let main = include_str!("../src/main.rs");
    let body = main.split("async fn main() {").nth(1).unwrap();
    let first = body
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("//"))
        .unwrap();
    assert_eq!(first, "panic_hook::install();");
}

#[test]
fn no_canary_leaks_sqlite() {
    canary_suite(None);
}

#[test]
fn no_canary_leaks_postgres() {
    canary_suite(Some(TestDatabase::postgres().unwrap()));
}
