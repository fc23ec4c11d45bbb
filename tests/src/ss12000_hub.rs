//! A test hub: the project's own SS 12000 (API version 2.1.0) server, serving a seeded
//! municipality: a principal organiser, school units, classes and teaching groups,
//! pupils with enrolments and guardians, teachers with duties, an activity per teaching
//! group, and among the pupils
//! marked persons (`Sekretessmarkering`, `Skyddad folkbokföring`).
//!
//! It pages every list with `limit` and `pageToken`, filters on `meta.modified.after`,
//! answers `/deletedEntities?after=`, requires a bearer token (a static one, or one from
//! its own OAuth 2.0 client-credentials endpoint `/oauth/token`), and can be told to
//! misbehave ([`HubFault`]).
//!
//! Every answer is recorded; [`TestHub::validate`] hands the records to a real OpenAPI
//! validator (`openapi-core` from PyPI, `tests/ss12000/validate.py`) against the official
//! specification in `../shared/ss12000/`, so that the fixture cannot drift from the
//! standard. Answers given while a fault was set are recorded apart and left out.
//!
//! The hub runs on its own thread with its own runtime, bound to a free loopback port,
//! and stops on drop.

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

use crate::{workspace_root, INSTALL_HINT};

/// The base path the hub serves under (the specification's server URL's path).
pub const HUB_BASE_PATH: &str = "/v2.0";
/// The page size when a request names no `limit`.
const DEFAULT_LIMIT: usize = 100;
/// The OAuth client the hub's token endpoint accepts.
pub const HUB_CLIENT_ID: &str = "fiktiv";
/// How long a token from `/oauth/token` is valid (seconds).
const TOKEN_LIFE: u64 = 3600;

/// A way the hub misbehaves, for one resource (`persons`, `groups`, ...) until cleared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HubFault {
    /// The answer is cut off in the middle of the JSON.
    MalformedJson,
    /// A person's `givenName` is a number and a school year a string.
    WrongTypes,
    /// The page holds `n` items whatever `limit` asked for.
    HugePage(usize),
    /// Every page answers the same `pageToken`, so paging never ends.
    TokenLoop,
    /// Persons are answered without `securityMarking`.
    NoMarking,
    /// HTTP 503 with the specification's error body.
    Unavailable,
}

/// A marked pupil of the seeded municipality, as a test registers a case for it.
#[derive(Debug, Clone)]
pub struct MarkedPupil {
    pub id: String,
    pub given_name: String,
    pub family_name: String,
    pub civic_no: String,
    pub birth_date: String,
    pub marking: String,
    /// The school unit's `schoolUnitCode`.
    pub unit_code: String,
    pub school_year: u8,
    /// The ids and names of the pupil's groups (class first).
    pub groups: Vec<(String, String)>,
    /// The guardians' person ids.
    pub guardians: Vec<String>,
}

/// One answer the hub gave.
#[derive(Debug, Clone)]
struct Record {
    method: &'static str,
    path: String,
    query: String,
    status: u16,
    body: String,
    during_fault: bool,
    /// The request's JSON body (a `/lookup`), empty for a GET.
    request: String,
}

/// One answer of any SS 12000 server, for [`validate_answers`]: `path` below the
/// specification's server path (`/v2.0/persons`), `query` as sent.
#[derive(Debug, Clone)]
pub struct Answer {
    pub method: &'static str,
    pub path: String,
    pub query: String,
    pub status: u16,
    pub body: String,
    /// The request's JSON body (a `/lookup`), empty for a GET.
    pub request: String,
}

/// Validates answers of any SS 12000 server (Fiktiv's feed) against the official
/// specification with openapi-core: `Ok(n)` when all `n` follow it.
pub fn validate_answers(answers: &[Answer]) -> anyhow::Result<usize> {
    let records: Vec<Record> = answers
        .iter()
        .map(|a| Record {
            method: a.method,
            path: a.path.clone(),
            query: a.query.clone(),
            status: a.status,
            body: a.body.clone(),
            during_fault: false,
            request: a.request.clone(),
        })
        .collect();
    validate_records(&records)
}

#[derive(Debug, Clone)]
struct Stored {
    value: Value,
    /// Seconds since 1970 (the hub's clock).
    modified: i64,
}

#[derive(Debug, Default)]
struct HubState {
    /// Per resource (`organisations`, `persons`, `groups`, `duties`), in a fixed order.
    entities: BTreeMap<&'static str, Vec<Stored>>,
    /// Removed ids per resource, with when.
    deleted: Vec<(&'static str, String, i64)>,
    /// The hub's clock (seconds since 1970): [`EPOCH`] at first, one tick per change,
    /// moved forward by [`TestHub::set_time`].
    now: i64,
    faults: HashMap<String, HubFault>,
    records: Vec<Record>,
    tokens: Vec<String>,
    requests: u64,
    /// Resources whose answers wait until released ([`TestHub::hold`]).
    held: std::collections::HashSet<String>,
}

/// 2026-08-01T00:00:00Z, the start of the hub's clock.
const EPOCH: i64 = 1_785_542_400;

fn stamp(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a civil date (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Parses the hub's own stamps back (`YYYY-MM-DDTHH:MM:SS[.fff]Z` or `+00:00`).
fn parse_stamp(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 19 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + se)
}

/// A small deterministic generator (xorshift64*), so that a seed gives one municipality.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn uuid(&mut self) -> String {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.next().to_be_bytes());
        bytes[8..].copy_from_slice(&self.next().to_be_bytes());
        uuid::Builder::from_random_bytes(bytes)
            .into_uuid()
            .to_string()
    }
}

const GIVEN: &[&str] = &[
    "Alva", "Elsa", "Maja", "Ebba", "Wilma", "Astrid", "Saga", "Alice", "Freja", "Selma", "Liam",
    "Noah", "William", "Hugo", "Lucas", "Oliver", "Elias", "Adam", "Viktor", "Olle", "Åsa",
    "Björn", "Sören", "Märta",
];
const FAMILY: &[&str] = &[
    "Andersson",
    "Johansson",
    "Karlsson",
    "Nilsson",
    "Eriksson",
    "Larsson",
    "Olsson",
    "Persson",
    "Svensson",
    "Gustafsson",
    "Pettersson",
    "Jonsson",
    "Jansson",
    "Hansson",
    "Bengtsson",
    "Jönsson",
    "Lindberg",
    "Jakobsson",
    "Magnusson",
    "Lindström",
    "Åberg",
    "Öberg",
    "Sjöberg",
    "Ström",
];

/// The family names of marked pupils and their guardians only.
const MARKED_FAMILY: &[&str] = &[
    "Västerholm",
    "Norrgård",
    "Ekbacken",
    "Älvsjöberg",
    "Tallqvist",
    "Granlund",
    "Björkfeldt",
    "Sandvreten",
];

/// A Swedish personnummer (12 digits) for a date and a serial, with its check digit.
fn civic_no(y: i64, m: u32, d: u32, serial: u64) -> String {
    let ten = format!("{:02}{m:02}{d:02}{:03}", y % 100, serial % 1000);
    let mut sum = 0;
    for (i, c) in ten.bytes().enumerate() {
        let mut v = u32::from(c - b'0') * if i % 2 == 0 { 2 } else { 1 };
        if v > 9 {
            v -= 9;
        }
        sum += v;
    }
    let check = (10 - sum % 10) % 10;
    format!("{y:04}{}{check}", &ten[2..])
}

fn meta(t: i64) -> Value {
    json!({ "created": stamp(EPOCH), "modified": stamp(t) })
}

/// The seeded municipality: what the hub serves at first.
struct Seeded {
    entities: BTreeMap<&'static str, Vec<Stored>>,
    marked: Vec<MarkedPupil>,
}

fn seed(persons: usize, seed: u64) -> Seeded {
    let mut rng = Rng(seed.max(1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let units = (persons / 700).clamp(2, 60);
    let mut orgs = Vec::new();
    let owner = rng.uuid();
    orgs.push(json!({
        "id": owner, "meta": meta(EPOCH), "displayName": "Exempelby kommun",
        "organisationType": "Huvudman", "organisationNumber": "2120000000",
        "municipalityCode": "9999"
    }));
    let mut unit_ids = Vec::new();
    for u in 0..units {
        let id = rng.uuid();
        let code = format!("{:08}", 10_000_000 + u * 37);
        orgs.push(json!({
            "id": id, "meta": meta(EPOCH), "displayName": format!("Skola {}", u + 1),
            "organisationType": "Skolenhet", "schoolUnitCode": code,
            "organisationCode": format!("skola-{}", u + 1),
            "parentOrganisation": { "id": owner }, "schoolTypes": ["GR"],
            "municipalityCode": "9999"
        }));
        unit_ids.push((id, code));
    }
    // Classes and one teaching group per unit and school year 1..=9.
    let mut groups: Vec<Value> = Vec::new();
    let mut group_of: HashMap<(usize, u8), (usize, usize)> = HashMap::new();
    for (u, (uid, _)) in unit_ids.iter().enumerate() {
        for year in 1..=9u8 {
            let class = groups.len();
            groups.push(json!({
                "id": rng.uuid(), "meta": meta(EPOCH), "displayName": format!("{year}A"),
                "groupType": "Klass", "schoolType": "GR", "organisation": { "id": uid },
                "startDate": "2026-08-17", "endDate": "2027-06-11", "groupMemberships": []
            }));
            let teaching = groups.len();
            groups.push(json!({
                "id": rng.uuid(), "meta": meta(EPOCH), "displayName": format!("Ma {year}"),
                "groupType": "Undervisning", "schoolType": "GR", "organisation": { "id": uid },
                "startDate": "2026-08-17", "endDate": "2027-06-11", "groupMemberships": []
            }));
            group_of.insert((u, year), (class, teaching));
        }
    }
    // About 38 % pupils, 57 % guardians (one or two each), 5 % teachers: `persons` in all.
    let pupils = persons * 38 / 100;
    let teachers = (persons / 20).max(units);
    let mut people: Vec<Value> = Vec::new();
    let mut marked = Vec::new();
    let mut serial = 0u64;
    let name = |rng: &mut Rng| {
        (
            GIVEN[rng.below(GIVEN.len() as u64) as usize],
            FAMILY[rng.below(FAMILY.len() as u64) as usize],
        )
    };
    for p in 0..pupils {
        let u = p % units;
        let year = (p / units % 9) as u8 + 1;
        let birth_year = 2026 - 6 - i64::from(year);
        let (m, d) = (rng.below(12) as u32 + 1, rng.below(28) as u32 + 1);
        serial += 1;
        let civic = civic_no(birth_year, m, d, serial);
        let (given, family) = name(&mut rng);
        let id = rng.uuid();
        // Every 27th pupil is marked (with the guardians, about 3.5 % of all persons),
        // the two markings in turn. A marked family has a name no other family has, so
        // that a test can look for it anywhere.
        let marking = match p % 54 {
            7 => "Sekretessmarkering",
            34 => "Skyddad folkbokföring",
            _ => "Ingen",
        };
        let family = if marking == "Ingen" {
            family
        } else {
            MARKED_FAMILY[marked.len() % MARKED_FAMILY.len()]
        };
        let mut guardians = Vec::new();
        for _ in 0..(1 + rng.below(2)) {
            let gid = rng.uuid();
            let (gg, _) = name(&mut rng);
            let gy = 1975 + rng.below(15) as i64;
            let (gm, gd) = (rng.below(12) as u32 + 1, rng.below(28) as u32 + 1);
            serial += 1;
            people.push(json!({
                "id": gid, "meta": meta(EPOCH), "givenName": gg, "familyName": family,
                "civicNo": { "value": civic_no(gy, gm, gd, serial), "nationality": "SE" },
                "birthDate": format!("{gy:04}-{gm:02}-{gd:02}"), "sex": "Okänt",
                "securityMarking": if marking == "Ingen" { "Ingen" } else { marking },
                "personStatus": "Aktiv",
                "emails": [{ "value": format!("vh{}@example.org", people.len()), "type": "Privat" }]
            }));
            guardians.push(gid);
        }
        let (uid, code) = &unit_ids[u];
        people.push(json!({
            "id": id, "meta": meta(EPOCH), "givenName": given, "familyName": family,
            "civicNo": { "value": civic, "nationality": "SE" },
            "birthDate": format!("{birth_year:04}-{m:02}-{d:02}"), "sex": "Okänt",
            "securityMarking": marking, "personStatus": "Aktiv",
            "eduPersonPrincipalNames": [format!("elev{p}@skola.example")],
            "enrolments": [{
                "enroledAt": { "id": uid }, "schoolYear": year, "schoolType": "GR",
                "startDate": "2026-08-17"
            }],
            "responsibles": guardians.iter().map(|g| json!({
                "person": { "id": g }, "relationType": "Vårdnadshavare"
            })).collect::<Vec<_>>()
        }));
        let (class, teaching) = group_of[&(u, year)];
        for g in [class, teaching] {
            if let Some(list) = groups[g]["groupMemberships"].as_array_mut() {
                list.push(json!({ "person": { "id": id }, "startDate": "2026-08-17" }));
            }
        }
        if marking != "Ingen" {
            marked.push(MarkedPupil {
                id: id.clone(),
                given_name: given.to_owned(),
                family_name: family.to_owned(),
                civic_no: civic,
                birth_date: format!("{birth_year:04}-{m:02}-{d:02}"),
                marking: marking.to_owned(),
                unit_code: code.clone(),
                school_year: year,
                groups: [class, teaching]
                    .iter()
                    .map(|&g| {
                        (
                            groups[g]["id"].as_str().unwrap_or_default().to_owned(),
                            groups[g]["displayName"]
                                .as_str()
                                .unwrap_or_default()
                                .to_owned(),
                        )
                    })
                    .collect(),
                guardians,
            });
        }
    }
    let mut duties = Vec::new();
    for t in 0..teachers {
        let id = rng.uuid();
        let (given, family) = name(&mut rng);
        let ty = 1960 + rng.below(35) as i64;
        let (m, d) = (rng.below(12) as u32 + 1, rng.below(28) as u32 + 1);
        serial += 1;
        people.push(json!({
            "id": id, "meta": meta(EPOCH), "givenName": given, "familyName": family,
            "civicNo": { "value": civic_no(ty, m, d, serial), "nationality": "SE" },
            "birthDate": format!("{ty:04}-{m:02}-{d:02}"), "securityMarking": "Ingen",
            "emails": [{ "value": format!("larare{t}@skola.example"), "type": "Skola personal" }]
        }));
        duties.push(json!({
            "id": rng.uuid(), "meta": meta(EPOCH), "person": { "id": id },
            "dutyAt": { "id": unit_ids[t % units].0 }, "dutyRole": "Lärare",
            "signature": format!("L{t:03}"), "startDate": "2026-08-01"
        }));
    }
    let wrap = |v: Vec<Value>| {
        v.into_iter()
            .map(|value| Stored { value, modified: 0 })
            .collect()
    };
    let mut entities = BTreeMap::new();
    entities.insert("organisations", wrap(orgs));
    entities.insert("persons", wrap(people));
    // One activity per teaching group, taught by a teacher of its unit.
    let mut activities = Vec::new();
    for ((u, year), (_, teaching)) in {
        let mut v: Vec<_> = group_of.iter().collect();
        v.sort();
        v
    } {
        let unit_duties: Vec<&Value> = duties
            .iter()
            .filter(|d| d["dutyAt"]["id"] == unit_ids[*u].0.as_str())
            .collect();
        let mut a = json!({
            "id": rng.uuid(), "meta": meta(EPOCH), "displayName": format!("Matematik åk {year}"),
            "calendarEventsRequired": false, "startDate": "2026-08-17", "endDate": "2027-06-11",
            "activityType": "Undervisning",
            "groups": [{ "id": groups[*teaching]["id"] }],
            "organisation": { "id": unit_ids[*u].0 }
        });
        if let Some(d) = unit_duties.first() {
            a["teachers"] = json!([{ "duty": { "id": d["id"] } }]);
        }
        activities.push(a);
    }
    entities.insert("groups", wrap(groups));
    entities.insert("duties", wrap(duties));
    entities.insert("activities", wrap(activities));
    Seeded { entities, marked }
}

type Shared = Arc<Mutex<HubState>>;

/// A running test hub. Stops on drop.
pub struct TestHub {
    addr: SocketAddr,
    token: String,
    client_secret: String,
    state: Shared,
    marked: Vec<MarkedPupil>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// With [`TestHub::start_tls`]: the throw-away CA and certificates (removed on drop).
    tls: Option<(tempfile::TempDir, PathBuf)>,
}

impl std::fmt::Debug for TestHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestHub").field("addr", &self.addr).finish()
    }
}

impl Drop for TestHub {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A TLS acceptor with the server certificate and key (PEM) `make_certificates` wrote.
fn tls_acceptor(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .context("reading the hub's certificate")?
        .collect::<Result<Vec<_>, _>>()
        .context("reading the hub's certificate")?;
    let key = PrivateKeyDer::from_pem_file(key).context("reading the hub's key")?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("the hub's certificate and key")?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Serves `app` over TLS until `stop`: each connection's handshake, then HTTP/1.1 or 2.
async fn serve_tls(
    listener: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    app: Router,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    loop {
        let (tcp, _) = tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(_) => continue,
            },
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            // A client that refuses the certificate ends its handshake: nothing served.
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let service = hyper_util::service::TowerToHyperService::new(app);
            let _ =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
        });
    }
}

fn random_secret() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

impl TestHub {
    /// A hub serving a municipality of about `persons` persons (pupils, guardians,
    /// teachers), the same for the same `seed`.
    pub fn start(persons: usize, seed_value: u64) -> anyhow::Result<Self> {
        Self::start_with(persons, seed_value, false)
    }

    /// The same hub over HTTPS only, with a certificate for `localhost` and 127.0.0.1
    /// issued by a throw-away CA ([`TestHub::ca_file`]), made with `openssl`.
    pub fn start_tls(persons: usize, seed_value: u64) -> anyhow::Result<Self> {
        Self::start_with(persons, seed_value, true)
    }

    fn start_with(persons: usize, seed_value: u64, tls: bool) -> anyhow::Result<Self> {
        let tls = if tls {
            let dir = tempfile::tempdir().context("a folder for the hub's certificates")?;
            let files = crate::slapd::make_certificates(dir.path())?;
            let acceptor = tls_acceptor(&files.cert, &files.key)?;
            Some((dir, files.ca, acceptor))
        } else {
            None
        };
        let seeded = seed(persons, seed_value);
        let token = random_secret();
        let client_secret = random_secret();
        let state: Shared = Arc::new(Mutex::new(HubState {
            entities: seeded.entities,
            now: EPOCH,
            tokens: vec![token.clone()],
            ..HubState::default()
        }));
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .context("binding the test hub to a loopback port")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = mpsc::channel::<anyhow::Result<()>>();
        let app = Router::new()
            .route("/oauth/token", post(token_endpoint))
            .route(&format!("{HUB_BASE_PATH}/{{resource}}"), get(list))
            .with_state((Arc::clone(&state), client_secret.clone()));
        let acceptor = tls.as_ref().map(|(_, _, a)| a.clone());
        let thread = std::thread::Builder::new()
            .name("fiktiv-test-hub".to_owned())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(anyhow!(e)));
                        return;
                    }
                };
                rt.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = ready_tx.send(Err(anyhow!(e)));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(()));
                    match acceptor {
                        None => {
                            let _ = axum::serve(listener, app)
                                .with_graceful_shutdown(async {
                                    let _ = stop_rx.await;
                                })
                                .await;
                        }
                        Some(acceptor) => serve_tls(listener, acceptor, app, stop_rx).await,
                    }
                });
            })
            .context("spawning the test hub's thread")?;
        ready_rx
            .recv_timeout(Duration::from_secs(120))
            .map_err(|_| anyhow!("the test hub did not start"))??;
        Ok(Self {
            addr,
            token,
            client_secret,
            state,
            marked: seeded.marked,
            stop: Some(stop_tx),
            thread: Some(thread),
            tls: tls.map(|(dir, ca, _)| (dir, ca)),
        })
    }

    /// The base URL Fiktiv is configured with: `http://127.0.0.1:PORT/v2.0`, or
    /// `https://localhost:PORT/v2.0` for a hub started with [`TestHub::start_tls`].
    pub fn base_url(&self) -> String {
        format!("{}{HUB_BASE_PATH}", self.origin())
    }

    fn origin(&self) -> String {
        match self.tls {
            Some(_) => format!("https://localhost:{}", self.addr.port()),
            None => format!("http://{}", self.addr),
        }
    }

    /// The CA (PEM) that issued the certificate of a hub started with
    /// [`TestHub::start_tls`].
    pub fn ca_file(&self) -> Option<&std::path::Path> {
        self.tls.as_ref().map(|(_, ca)| ca.as_path())
    }

    /// The client-credentials token endpoint.
    pub fn token_url(&self) -> String {
        format!("{}/oauth/token", self.origin())
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The static bearer token the hub accepts.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The secret of the OAuth client [`HUB_CLIENT_ID`].
    pub fn client_secret(&self) -> &str {
        &self.client_secret
    }

    /// The seeded municipality's marked pupils.
    pub fn marked_pupils(&self) -> &[MarkedPupil] {
        &self.marked
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HubState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many entities of a resource the hub holds now.
    pub fn count(&self, resource: &str) -> usize {
        self.lock().entities.get(resource).map_or(0, Vec::len)
    }

    /// Requests answered so far.
    pub fn requests(&self) -> u64 {
        self.lock().requests
    }

    /// Sets a fault on one resource (`persons`, `groups`, ...).
    pub fn set_fault(&self, resource: &str, fault: HubFault) {
        self.lock().faults.insert(resource.to_owned(), fault);
    }

    /// Holds every answer of `resource` (`groups`, ...) until [`TestHub::release`]: a
    /// read waits there, in the middle.
    pub fn hold(&self, resource: &str) {
        self.lock().held.insert(resource.to_owned());
    }

    pub fn release(&self, resource: &str) {
        self.lock().held.remove(resource);
    }

    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Changes a person's `securityMarking` (the hub's clock ticks).
    pub fn set_marking(&self, person_id: &str, marking: &str) -> anyhow::Result<()> {
        self.change("persons", person_id, |v| {
            v["securityMarking"] = json!(marking);
        })
    }

    /// Changes one entity by id (the hub's clock ticks, `meta.modified` follows).
    pub fn change(
        &self,
        resource: &str,
        id: &str,
        f: impl FnOnce(&mut Value),
    ) -> anyhow::Result<()> {
        let mut s = self.lock();
        s.now += 1;
        let now = s.now;
        let list = s
            .entities
            .get_mut(resource)
            .ok_or_else(|| anyhow!("no resource {resource}"))?;
        let e = list
            .iter_mut()
            .find(|e| e.value["id"] == id)
            .ok_or_else(|| anyhow!("no {resource} {id}"))?;
        f(&mut e.value);
        e.value["meta"]["modified"] = json!(stamp(now));
        e.modified = now;
        Ok(())
    }

    /// Removes one entity; `/deletedEntities` names it from now on.
    pub fn delete(&self, resource: &'static str, id: &str) -> anyhow::Result<()> {
        let mut s = self.lock();
        s.now += 1;
        let now = s.now;
        let list = s
            .entities
            .get_mut(resource)
            .ok_or_else(|| anyhow!("no resource {resource}"))?;
        let before = list.len();
        list.retain(|e| e.value["id"] != id);
        if list.len() == before {
            bail!("no {resource} {id}");
        }
        s.deleted.push((resource, id.to_owned(), now));
        Ok(())
    }

    /// The hub's time now, as `meta.modified.after` takes it.
    pub fn now_stamp(&self) -> String {
        stamp(self.lock().now)
    }

    /// Moves the hub's clock forward to `unix_secs` (never back): the changes after it
    /// carry times after it, as a hub on the same clock as Fiktiv's would.
    pub fn set_time(&self, unix_secs: i64) {
        let mut s = self.lock();
        s.now = s.now.max(unix_secs);
    }

    /// Validates every answer given while no fault was set against the official
    /// specification with `openapi-core`. Returns how many answers were checked.
    pub fn validate(&self) -> anyhow::Result<usize> {
        let records: Vec<Record> = self
            .lock()
            .records
            .iter()
            .filter(|r| !r.during_fault)
            .cloned()
            .collect();
        validate_records(&records)
    }

    /// Validates every answer, those given during a fault too (a control: a fault
    /// that breaks the specification must be found).
    pub fn validate_all(&self) -> anyhow::Result<usize> {
        let records = self.lock().records.clone();
        validate_records(&records)
    }
}

/// The official specification, beside the repository (`../shared/ss12000/`).
pub fn ss12000_spec_path() -> anyhow::Result<PathBuf> {
    let path = workspace_root().join("../shared/ss12000/ss12000-v2.1.0.yaml");
    if !path.is_file() {
        bail!(
            "the SS 12000 specification is not at {}; the tests read it from ../shared/ss12000/",
            path.display()
        );
    }
    Ok(path)
}

/// Runs `tests/ss12000/validate.py` (openapi-core, from the repository's `.venv`)
/// over recorded answers: `Ok(n)` when all `n` follow the specification, otherwise an
/// error that lists the first violations.
fn validate_records(records: &[Record]) -> anyhow::Result<usize> {
    let python = workspace_root().join(".venv/bin/python");
    if !python.is_file() {
        bail!(
            "{} not found (openapi-core); {INSTALL_HINT}",
            python.display()
        );
    }
    let script = workspace_root().join("tests/ss12000/validate.py");
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("records.jsonl");
    let mut out = String::new();
    for r in records {
        out.push_str(&serde_json::to_string(&json!({
            "method": r.method, "path": r.path, "query": r.query,
            "status": r.status, "body": r.body, "request": r.request
        }))?);
        out.push('\n');
    }
    std::fs::write(&file, out)?;
    let output = std::process::Command::new(&python)
        .arg(&script)
        .arg(ss12000_spec_path()?)
        .arg(&file)
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    match output.status.code() {
        Some(0) => stdout
            .trim()
            .rsplit(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| anyhow!("the validator said: {stdout}")),
        Some(1) => Err(anyhow!("answers that break the specification:\n{stdout}")),
        _ => Err(anyhow!(
            "the validator failed: {}\n{}",
            stdout,
            String::from_utf8_lossy(&output.stderr)
        )),
    }
}

/// The resource of a `Code_ObjectType` value (the ones this hub serves).
fn object_type_resource(v: &str) -> Option<&'static str> {
    Some(match v {
        "Organisation" => "organisations",
        "Person" => "persons",
        "Group" => "groups",
        "Duty" => "duties",
        "Activity" => "activities",
        "Absence" | "AttendanceEvent" | "Attendance" | "Grade" | "CalendarEvent"
        | "AttendanceSchedule" | "Resource" | "Room" | "Placement" | "StudyPlan" | "Programme"
        | "Syllabus" | "SchoolUnitOffering" => "other",
        _ => return None,
    })
}

fn error_body(status: StatusCode, code: &str, message: &str) -> (StatusCode, String) {
    (
        status,
        json!({ "code": code, "message": message }).to_string(),
    )
}

fn query_pairs(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(s.get(i + 1..i + 3).unwrap_or("zz"), 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn token_endpoint(
    State((state, secret)): State<(Shared, String)>,
    headers: HeaderMap,
    body: String,
) -> Response {
    use base64::Engine as _;
    let authorized = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .is_some_and(|d| d == format!("{HUB_CLIENT_ID}:{secret}").as_bytes());
    let grant = query_pairs(&body)
        .iter()
        .any(|(k, v)| k == "grant_type" && v == "client_credentials");
    if !authorized || !grant {
        return (
            StatusCode::UNAUTHORIZED,
            json!({ "error": "invalid_client" }).to_string(),
        )
            .into_response();
    }
    let token = random_secret();
    let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
    s.tokens.push(token.clone());
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        json!({ "access_token": token, "token_type": "Bearer", "expires_in": TOKEN_LIFE })
            .to_string(),
    )
        .into_response()
}

async fn list(
    State((state, _)): State<(Shared, String)>,
    Path(resource): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let raw = raw.unwrap_or_default();
    // A held resource answers once released: the test sees a read in the middle.
    loop {
        let held = state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .held
            .contains(&resource);
        if !held {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
    s.requests += 1;
    let fault = s.faults.get(&resource).cloned();
    let authorized = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| s.tokens.iter().any(|k| k == t));
    let (status, body) = if !authorized {
        error_body(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "A valid bearer token is required.",
        )
    } else {
        answer(&s, &resource, &raw, fault.as_ref())
    };
    s.records.push(Record {
        method: "get",
        path: format!("{HUB_BASE_PATH}/{resource}"),
        query: raw,
        status: status.as_u16(),
        body: body.clone(),
        during_fault: fault.is_some(),
        request: String::new(),
    });
    drop(s);
    (status, [("content-type", "application/json")], body).into_response()
}

fn answer(
    s: &HubState,
    resource: &str,
    raw: &str,
    fault: Option<&HubFault>,
) -> (StatusCode, String) {
    if fault == Some(&HubFault::Unavailable) {
        return error_body(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "The service is down for maintenance.",
        );
    }
    let q = query_pairs(raw);
    let one = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let limit = match one("limit").map(str::parse::<usize>) {
        None => DEFAULT_LIMIT,
        Some(Ok(n)) if n >= 1 => n,
        _ => {
            return error_body(
                StatusCode::BAD_REQUEST,
                "invalid-limit",
                "limit must be a whole number of at least 1.",
            )
        }
    };
    let offset = match one("pageToken") {
        None => 0,
        Some(t) => match t.strip_prefix("o").and_then(|n| n.parse::<usize>().ok()) {
            Some(n) => n,
            None => {
                return error_body(
                    StatusCode::BAD_REQUEST,
                    "invalid-page-token",
                    "The pageToken is not one this service gave.",
                )
            }
        },
    };
    if resource == "deletedEntities" {
        let after = one("after").and_then(parse_stamp);
        // `entities` takes the specification's object types (`Person`, ...); an unknown
        // one is refused, as a strict hub would.
        let mut wanted: Vec<&str> = Vec::new();
        for (_, v) in q.iter().filter(|(k, _)| k == "entities") {
            match object_type_resource(v) {
                Some(r) => wanted.push(r),
                None => return error_body(
                    StatusCode::BAD_REQUEST,
                    "invalid-entities",
                    "entities takes the object types of the specification (Person, Group, ...).",
                ),
            }
        }
        let mut data: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        let hits: Vec<&(&str, String, i64)> = s
            .deleted
            .iter()
            .filter(|(r, _, t)| {
                after.is_none_or(|a| *t > a) && (wanted.is_empty() || wanted.contains(r))
            })
            .collect();
        let end = (offset + limit).min(hits.len());
        for (r, id, _) in hits.get(offset..end).unwrap_or_default() {
            // The specification spells this key `activitites`.
            let key = if *r == "activities" { "activitites" } else { r };
            data.entry(key).or_default().push(id);
        }
        let next = (end < hits.len()).then(|| format!("o{end}"));
        return (
            StatusCode::OK,
            json!({ "data": data, "pageToken": next }).to_string(),
        );
    }
    let Some(list) = s.entities.get(resource) else {
        return error_body(StatusCode::NOT_FOUND, "not-found", "No such resource.");
    };
    let after = match one("meta.modified.after") {
        None => None,
        Some(t) => match parse_stamp(t) {
            Some(t) => Some(t),
            None => {
                return error_body(
                    StatusCode::BAD_REQUEST,
                    "invalid-date-time",
                    "meta.modified.after is not a date-time.",
                )
            }
        },
    };
    let hits: Vec<&Stored> = list
        .iter()
        .filter(|e| after.is_none_or(|a| e.modified > a))
        .collect();
    let limit = match fault {
        Some(HubFault::HugePage(n)) => *n,
        _ => limit,
    };
    let end = (offset + limit).min(hits.len());
    let mut data: Vec<Value> = hits
        .get(offset..end)
        .unwrap_or_default()
        .iter()
        .map(|e| e.value.clone())
        .collect();
    if let Some(HubFault::HugePage(n)) = fault {
        while data.len() < *n {
            let mut copy = data.last().cloned().unwrap_or_else(|| json!({}));
            copy["id"] = json!(uuid::Uuid::new_v4().to_string());
            data.push(copy);
        }
    }
    match fault {
        Some(HubFault::WrongTypes) => {
            if let Some(first) = data.first_mut() {
                first["givenName"] = json!(42);
                first["enrolments"] = json!([{ "enroledAt": { "id": first["id"] },
                    "schoolYear": "tre", "schoolType": "GR", "startDate": "2026-08-17" }]);
            }
        }
        Some(HubFault::NoMarking) => {
            for d in &mut data {
                if let Some(o) = d.as_object_mut() {
                    o.remove("securityMarking");
                }
            }
        }
        _ => {}
    }
    let next = match fault {
        Some(HubFault::TokenLoop) => Some("o0".to_owned()),
        _ => (end < hits.len()).then(|| format!("o{end}")),
    };
    let body = json!({ "data": data, "pageToken": next }).to_string();
    if fault == Some(&HubFault::MalformedJson) {
        let cut = body.len() / 2;
        let mut cut_at = cut;
        while !body.is_char_boundary(cut_at) {
            cut_at -= 1;
        }
        return (StatusCode::OK, body[..cut_at].to_owned());
    }
    (StatusCode::OK, body)
}
