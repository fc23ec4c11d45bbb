//! LDAP provisioning benchmark: Fiktiv against OpenLDAP's own tools, in the same run, on
//! the same throw-away slapd (fiktiv-tests harness). Results go to docs/PERFORMANCE.md,
//! section "Provisioning (LDAP)"; `scripts/bench-provisioning` runs it.
//!
//! | timed | baseline |
//! |---|---|
//! | provisioning N pupils: read the directory, plan, egress guard, write people and groups | `ldapadd` of an LDIF of exactly the records Fiktiv writes (rendered by the `LdapTarget`), one process, one connection |
//! | leak scan of a directory of `SCAN` pupils: read everything, match every value locally | `ldapsearch` dumping the same entries to /dev/null |
//! | no-change reconciliation of N pupils: read the managed accounts, plan (empty) | none; reported with its growth in N |
//!
//! Each provisioning sample gets a fresh slapd per side; the scan sides alternate on one
//! loaded slapd after a warm-up. Every case is repeated (`REPS`, default 3) and reported
//! as min / median; ratios are of the medians.
//!
//! `cargo bench -p fiktiv-provisioning --bench ldap` runs the full sizes. Without
//! `--bench` (as `cargo test --benches` / `--all-targets` run it) it runs a smoke version
//! with tiny sizes, so the test suite never does the heavy work.
//!
//! Environment (full run only): `FIKTIV_BENCH_N` (comma list, default `1000,10000`; `0`
//! skips provisioning), `FIKTIV_BENCH_PAGE` (the target's page size, default 5000),
//! `FIKTIV_BENCH_SCAN` (default `100000`), `FIKTIV_BENCH_REPS` (default `3`),
//! `FIKTIV_BENCH_REAL_NAMES` (`varied`: the real pupils' names drawn from 60 given and
//! 60 family names, whose first letters are live for many more words, instead of 10 and
//! 10), `FIKTIV_BENCH_REALS` (real identities in the vault, default 1000; the scan's
//! time and the process's peak memory are printed with it).
// A benchmark: a failed step is a failed run, and it prints its table on stdout.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

use std::collections::{BTreeMap, HashMap, HashSet};

/// The allocator the service binary uses (service/src/main.rs), so that what is timed
/// here is what the service does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _};
use base64::Engine as _;
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use fiktiv_provisioning::ldap::{LdapConfig, LdapSchema, LdapSecurity, LdapTarget};
use fiktiv_provisioning::template::Template;
use fiktiv_provisioning::{
    plan, push_many, read_and_scan, scan, Action, Applied, EgressGuard, Expect, FictitiousPerson,
    Group, PagedScan, Payload, PersonId, PersonKind, PlanOptions, RealIndexLookup, Rule,
    ScannedEntry, SchoolUnit, Target, TargetName,
};
use fiktiv_tests::Slapd;
use fiktiv_vault::blind::{BlindIndex, IndexKind};
use fiktiv_vault::identity::{full_name_key, RealIdentity, RealName};
use fiktiv_vault::ids::PersonalNumber;
use fiktiv_vault::keys::BlindKey;
use fiktiv_vault::normalize::name_birth_key;
use fiktiv_vault::{CaseId, KeyRing, NamePartFilter, RootKey};
use secrecy::SecretString;

/// Pupils per school unit and per class.
const SCHOOL_SIZE: usize = 1000;
const CLASS_SIZE: usize = 25;
/// Real identities in the vault the guard and the scan check against, unless
/// `FIKTIV_BENCH_REALS` says otherwise (full run only).
const REAL_PUPILS: usize = 1000;

/// `FIKTIV_BENCH_REALS` or [`REAL_PUPILS`].
fn real_pupils() -> usize {
    std::env::var("FIKTIV_BENCH_REALS")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(REAL_PUPILS)
}

/// The process's peak resident memory (`VmHWM`), in MiB, where Linux tells it.
fn peak_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

const GIVEN: &[&str] = &[
    "Ella", "Otto", "Maja", "Liam", "Saga", "Noah", "Alva", "Hugo", "Elsa", "Vilgot", "Ebba",
    "Lucas", "Astrid", "Oskar", "Wilma", "Elias", "Freja", "Sander", "Ingrid", "Jakob", "Nora",
    "Filip", "Sofie", "Magnus", "Tuva", "Håkon", "Märta", "Björn", "Søren", "Åsmund", "Linnéa",
    "Tor", "Sigrid", "Aksel", "Idun", "Emil", "Stina", "Nils", "Live", "Ivar",
];
const FAMILY: &[&str] = &[
    "Fiktiv",
    "Provsson",
    "Testberg",
    "Exempelsen",
    "Lindqvist",
    "Dahl",
    "Berglund",
    "Haugen",
    "Strand",
    "Sjöberg",
    "Åkerlund",
    "Nygård",
    "Bakke",
    "Lund",
    "Holm",
    "Ek",
    "Vik",
    "Moen",
    "Løvås",
    "Öhman",
    "Rask",
    "Ström",
    "Falk",
    "Brekke",
    "Sandvik",
    "Hagen",
    "Myhre",
    "Lie",
    "Wikström",
    "Dalén",
];
/// The real pupils' names: disjoint from the fictitious ones, so the guard passes them.
const REAL_GIVEN: &[&str] = &[
    "Åsa-Britt",
    "Gunnel",
    "Torbjörn",
    "Ragnhild",
    "Evert",
    "Solveig",
    "Halvard",
    "Kerstin",
    "Gudrun",
    "Leif",
];
/// `FIKTIV_BENCH_REAL_NAMES=varied`: common Swedish and Norwegian names (none of them
/// a fictitious one), so that many more two-letter starts (`an`, `ma`, `jo`, `ka`, ...)
/// are starts of some real name part, as in a municipality's vault.
const VARIED_GIVEN: &str = concat!(
    "Anna Maria Karin Kristina Lena Sara Emma Johanna Linda Elin Julia Hanna Ida ",
    "Amanda Matilda Klara Moa Alice Olivia Agnes Erik Lars Karl Anders Johan Per ",
    "Mikael Jan Hans Daniel Fredrik Mattias Henrik Jonas Alexander Anton Viktor ",
    "Gustav William Isak Leo Theo Adam Axel Ludvig Sebastian Kevin Marcus Ole ",
    "Kari Ingeborg Silje Marit Kjersti Eirik Sindre Vegard Åse Dag Yusuf",
);
const VARIED_FAMILY: &str = concat!(
    "Andersson Johansson Karlsson Nilsson Eriksson Larsson Olsson Persson ",
    "Svensson Gustafsson Pettersson Jonsson Jansson Hansson Bengtsson Jönsson ",
    "Carlsson Gunnarsson Axelsson Magnusson Olofsson Mattsson Lindberg Lindström ",
    "Lindgren Jakobsson Hedlund Forsberg Sandberg Henriksson Engström Danielsson ",
    "Håkansson Eklund Isaksson Hansen Johansen Olsen Larsen Andersen Pedersen ",
    "Nilsen Kristiansen Jensen Karlsen Johnsen Pettersen Eriksen Berg Halvorsen ",
    "Jakobsen Andreassen Solberg Bakken Kristoffersen Nguyen Ali Mohammed Ahmed ",
    "Yilmaz",
);
const REAL_FAMILY: &[&str] = &[
    "Öberg",
    "Kvist",
    "Rønning",
    "Skoglund",
    "Tveit",
    "Bergkvist",
    "Hallin",
    "Nordahl",
    "Granlund",
    "Aasen",
];

struct Sizes {
    ns: Vec<usize>,
    scan: usize,
    reps: usize,
}

impl Sizes {
    fn from_args() -> anyhow::Result<(Self, bool)> {
        let full = std::env::args().any(|a| a == "--bench");
        if !full {
            return Ok((
                Self {
                    ns: vec![30],
                    scan: 60,
                    reps: 1,
                },
                false,
            ));
        }
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let ns = match var("FIKTIV_BENCH_N") {
            Some(v) => v
                .split(',')
                .map(|s| s.trim().replace('_', "").parse::<usize>())
                .filter(|n| !matches!(n, Ok(0)))
                .collect::<Result<Vec<_>, _>>()
                .context("FIKTIV_BENCH_N")?,
            None => vec![1_000, 10_000],
        };
        let scan = match var("FIKTIV_BENCH_SCAN") {
            Some(v) => v.replace('_', "").parse().context("FIKTIV_BENCH_SCAN")?,
            None => 100_000,
        };
        let reps = match var("FIKTIV_BENCH_REPS") {
            Some(v) => v.parse().context("FIKTIV_BENCH_REPS")?,
            None => 3,
        };
        ensure!(reps >= 1, "FIKTIV_BENCH_REPS must be at least 1");
        Ok((Self { ns, scan, reps }, true))
    }
}

/// A small deterministic generator (SplitMix64): the same names every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[(self.next() % from.len() as u64) as usize]
    }

    fn birth(&mut self, from_year: i32, years: u64) -> NaiveDate {
        let first = NaiveDate::from_ymd_opt(from_year, 1, 1).unwrap();
        first + chrono::Duration::days((self.next() % (years * 365)) as i64)
    }
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 9, 1, 12, 0, 0).unwrap()
}

/// `n` fictitious pupils: school units of 1,000, classes of 25, each on `target`.
fn pupils(n: usize, target: &TargetName, seed: u64) -> Vec<FictitiousPerson> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|i| {
            let (school, class) = (i / SCHOOL_SIZE, (i % SCHOOL_SIZE) / CLASS_SIZE);
            let unit =
                SchoolUnit::new(&format!("skola-{school}"), &format!("Skola {school}")).unwrap();
            let group = Group::new(
                &format!("skola-{school}-klass-{class}"),
                &format!("Klass {class}"),
            )
            .unwrap();
            FictitiousPerson::new(
                PersonId::new(),
                PersonKind::Student,
                rng.pick(GIVEN),
                rng.pick(FAMILY),
                rng.birth(2008, 10),
                unit,
            )
            .unwrap()
            .with_group(group)
            .with_target(target.clone())
        })
        .collect()
}

/// The vault's side: real pupils' blind indexes and name-part tags, as
/// `Vault::blind_index_set` gives them.
struct RealSet {
    index: HashMap<(IndexKind, BlindIndex), Vec<CaseId>>,
    parts: NamePartFilter,
}

impl RealIndexLookup for RealSet {
    fn contains(&self, kind: IndexKind, idx: &BlindIndex) -> bool {
        self.index.contains(kind, idx)
    }

    fn cases(&self, kind: IndexKind, idx: &BlindIndex) -> Vec<CaseId> {
        self.index.cases(kind, idx)
    }

    fn name_parts(&self) -> Option<&NamePartFilter> {
        Some(&self.parts)
    }
}

struct Reals {
    key: BlindKey,
    index: Arc<RealSet>,
    /// One real pupil, planted in the scanned directory: (case, given, family, number).
    planted: (CaseId, String, String, String),
}

fn reals() -> Reals {
    let ring = KeyRing::new(RootKey::generate()).unwrap();
    let key = ring.blind().clone();
    let mut parts = NamePartFilter::new(ring.name_parts().clone());
    let mut rng = Rng(7);
    let mut index: HashMap<(IndexKind, BlindIndex), Vec<CaseId>> = HashMap::new();
    let mut planted = None;
    let varied = std::env::var("FIKTIV_BENCH_REAL_NAMES").is_ok_and(|v| v == "varied");
    let (givens, families): (Vec<&str>, Vec<&str>) = if varied {
        (
            VARIED_GIVEN.split(' ').collect(),
            VARIED_FAMILY.split(' ').collect(),
        )
    } else {
        (REAL_GIVEN.to_vec(), REAL_FAMILY.to_vec())
    };
    for i in 0..real_pupils() {
        let case = CaseId::new();
        let (given, family) = (rng.pick(&givens), rng.pick(&families));
        let birth = rng.birth(2008, 10);
        let number = fiktiv_vault::ids::make_se_number(birth, (i % 999 + 1) as u16).unwrap();
        // Exactly as the vault keeps them (`RealIdentity::blind_indexes`): every
        // spelling of the names, the initial + family name, unused slots padded.
        let who = RealIdentity {
            number: PersonalNumber::parse(&number, NaiveDate::MAX).unwrap(),
            first_name: RealName::new(given),
            last_name: RealName::new(family),
            birth_date: birth,
        };
        let rows = who.blind_indexes(&key, &format!("{case}/pupil"));
        debug_assert_eq!(
            rows[1].1,
            key.index(IndexKind::FullName, &full_name_key(given, family))
        );
        debug_assert_eq!(
            rows[2].1,
            key.index(IndexKind::NameBirth, &name_birth_key(given, family, birth))
        );
        for row in rows {
            index.entry(row).or_default().push(case);
        }
        parts.add_names(given, family);
        if planted.is_none() {
            planted = Some((case, given.to_string(), family.to_string(), number));
        }
    }
    Reals {
        key,
        index: Arc::new(RealSet { index, parts }),
        planted: planted.unwrap(),
    }
}

/// Seconds per HMAC-SHA256 (ring) of the same input as [`index_cost`] with the key
/// prepared once, not per call: what a blind index could cost (a random key here; the
/// vault's key is not reachable from outside the vault, nor should it be).
fn prepared_hmac_cost() -> f64 {
    use ring::hmac;
    use ring::rand::SecureRandom as _;
    let mut bytes = [0u8; 32];
    let _ = ring::rand::SystemRandom::new().fill(&mut bytes);
    let key = hmac::Key::new(hmac::HMAC_SHA256, &bytes);
    let n = 200_000;
    let t = Instant::now();
    let mut x = 0u8;
    for i in 0..n {
        let k: &[u8] = if i % 2 == 0 {
            b"fiktiv.blind.v1\0full-name\0ellafiktiv|1a2b3c4d"
        } else {
            b"fiktiv.blind.v1\0full-name\0organizationalperso|n|20150314"
        };
        x ^= hmac::sign(&key, k).as_ref()[0];
    }
    std::hint::black_box(x);
    t.elapsed().as_secs_f64() / n as f64
}

/// CPU time of this process so far (all threads), from /proc (10 ms ticks): on a
/// shared machine it tells the work apart from the waiting.
fn cpu_time() -> Duration {
    cpu_time_of("/proc/self/stat")
}

/// CPU time of the calling thread so far (10 ms ticks).
fn thread_cpu_time() -> Duration {
    cpu_time_of("/proc/thread-self/stat")
}

/// CPU time of the children this process waited for (`ldapsearch`), 10 ms ticks.
fn children_cpu_time() -> Duration {
    stat_ticks("/proc/self/stat", 13)
}

/// CPU time of slapd so far (10 ms ticks).
fn slapd_cpu_time(slapd: &Slapd) -> Duration {
    slapd
        .pid()
        .map(|p| cpu_time_of(&format!("/proc/{p}/stat")))
        .unwrap_or_default()
}

fn cpu_time_of(path: &str) -> Duration {
    stat_ticks(path, 11)
}

/// The sum of two CPU-time fields of a `/proc` stat file, `skip` fields after the state
/// (utime and stime: 11; cutime and cstime: 13).
fn stat_ticks(path: &str, skip: usize) -> Duration {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15,
    // cutime 16, cstime 17.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(skip)
        .take(2)
        .filter_map(|x| x.parse().ok())
        .collect();
    Duration::from_millis(f.iter().sum::<u64>() * 10)
}

/// Seconds per `BlindKey::index` of a name-sized key, measured now.
fn index_cost(key: &BlindKey) -> f64 {
    let n = 200_000;
    let t = Instant::now();
    let mut x = 0u8;
    for i in 0..n {
        let k = if i % 2 == 0 {
            "ellafiktiv|1a2b3c4d"
        } else {
            "organizationalperso|n|20150314"
        };
        x ^= key.index(IndexKind::FullName, k).0[0];
    }
    std::hint::black_box(x);
    t.elapsed().as_secs_f64() / n as f64
}

/// Counts the blind indexes looked up (one per index computed).
struct Counting(Arc<RealSet>, AtomicUsize);

impl RealIndexLookup for Counting {
    fn contains(&self, kind: IndexKind, idx: &BlindIndex) -> bool {
        self.1.fetch_add(1, Ordering::Relaxed);
        self.0.contains(kind, idx)
    }

    fn cases(&self, kind: IndexKind, idx: &BlindIndex) -> Vec<CaseId> {
        self.0.cases(kind, idx)
    }

    fn name_parts(&self) -> Option<&NamePartFilter> {
        self.0.name_parts()
    }
}

fn target_for(slapd: &Slapd) -> LdapTarget {
    target_for_url(&slapd.url(), slapd.admin_password())
}

/// The page size of the target's searches: `FIKTIV_BENCH_PAGE`, default 5000 (the
/// largest the service's configuration accepts; its default is 500, which makes slapd
/// walk its candidate list once per page, see docs/PERFORMANCE.md).
fn page_size() -> i32 {
    std::env::var("FIKTIV_BENCH_PAGE")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(5000)
}

/// The target: Feide schema (inetOrgPerson + eduPerson + norEduPerson) with mail, as a
/// Norwegian school directory would have it; pages of [`page_size`], defaults otherwise.
fn target_for_url(url: &str, password: &str) -> LdapTarget {
    let suffix = fiktiv_tests::DEFAULT_SUFFIX;
    let mut cfg = LdapConfig::new(
        TargetName::new("ldap").unwrap(),
        url,
        LdapSecurity::Plain,
        &format!("cn=admin,{suffix}"),
        SecretString::from(password.to_string()),
        &format!("ou=people,{suffix}"),
        &format!("ou=groups,{suffix}"),
    )
    .unwrap();
    cfg.schema = LdapSchema::Feide {
        realm: "skole.example.org".into(),
    };
    cfg.mail = Some(Template::parse("{given}.{family}.{short_id}@skola.example").unwrap());
    cfg.page_size = page_size();
    LdapTarget::new(cfg).unwrap()
}

// --- LDIF -------------------------------------------------------------------------

fn ldif_line(out: &mut String, name: &str, value: &str) {
    let safe = value
        .bytes()
        .all(|b| (0x01..0x80).contains(&b) && b != b'\n' && b != b'\r')
        && !value.starts_with([' ', ':', '<'])
        && !value.ends_with(' ');
    if safe {
        let _ = writeln!(out, "{name}: {value}");
    } else {
        let b64 = base64::engine::general_purpose::STANDARD.encode(value);
        let _ = writeln!(out, "{name}:: {b64}");
    }
}

/// The LDIF of exactly what Fiktiv writes for `persons`: each rendered person entry,
/// then each group (`groupOfNames`, `cn`, `description`, every member), as Fiktiv
/// leaves them.
fn ldif_for(target: &LdapTarget, persons: &[FictitiousPerson], groups_base: &str) -> String {
    let mut out = String::new();
    let mut groups: BTreeMap<String, (String, String, Vec<String>)> = BTreeMap::new();
    for p in persons {
        let rec = target.render(p).unwrap();
        let Payload::Ldap {
            dn,
            attributes,
            groups: gs,
        } = rec.payload
        else {
            panic!("not an LDAP record");
        };
        ldif_line(&mut out, "dn", &dn);
        for (name, values) in &attributes {
            for v in values {
                ldif_line(&mut out, name, v);
            }
        }
        out.push('\n');
        for g in gs {
            let gdn = format!("cn={},{groups_base}", g.id);
            groups
                .entry(gdn)
                .or_insert_with(|| (g.id.to_string(), g.name.clone(), Vec::new()))
                .2
                .push(dn.clone());
        }
    }
    for (gdn, (cn, name, members)) in groups {
        ldif_line(&mut out, "dn", &gdn);
        ldif_line(&mut out, "objectClass", "top");
        ldif_line(&mut out, "objectClass", "groupOfNames");
        ldif_line(&mut out, "cn", &cn);
        ldif_line(&mut out, "description", &name);
        for m in members {
            ldif_line(&mut out, "member", &m);
        }
        out.push('\n');
    }
    out
}

// --- OpenLDAP tools -----------------------------------------------------------------

struct Tools {
    ldapadd: PathBuf,
    ldapsearch: PathBuf,
    slapadd: PathBuf,
    dir: tempfile::TempDir,
    password_file: PathBuf,
}

impl Tools {
    fn new() -> anyhow::Result<Self> {
        let find = |name: &str, dir: &str| -> anyhow::Result<PathBuf> {
            let fixed = Path::new(dir).join(name);
            if fixed.is_file() {
                return Ok(fixed);
            }
            std::env::var_os("PATH")
                .iter()
                .flat_map(std::env::split_paths)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
                .with_context(|| format!("`{name}` not found (Debian packages slapd, ldap-utils)"))
        };
        let dir = tempfile::tempdir()?;
        let password_file = dir.path().join("admin.password");
        Ok(Self {
            ldapadd: find("ldapadd", "/usr/bin")?,
            ldapsearch: find("ldapsearch", "/usr/bin")?,
            slapadd: find("slapadd", "/usr/sbin")?,
            dir,
            password_file,
        })
    }

    fn file(&self, name: &str, text: &str) -> anyhow::Result<PathBuf> {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text)?;
        Ok(p)
    }

    fn bind_args(&self, slapd: &Slapd) -> anyhow::Result<Vec<String>> {
        std::fs::write(&self.password_file, slapd.admin_password())?;
        Ok(vec![
            "-x".into(),
            "-H".into(),
            slapd.url(),
            "-D".into(),
            slapd.admin_dn(),
            "-y".into(),
            self.password_file.display().to_string(),
        ])
    }

    /// `ldapadd -f LDIF`: one process, one connection, one add after the other.
    fn ldapadd(&self, slapd: &Slapd, ldif: &Path) -> anyhow::Result<Duration> {
        let args = self.bind_args(slapd)?;
        let t = Instant::now();
        let out = Command::new(&self.ldapadd)
            .args(&args)
            .arg("-f")
            .arg(ldif)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()?;
        let took = t.elapsed();
        if !out.status.success() {
            bail!("ldapadd: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(took)
    }

    /// `ldapsearch` of every entry under the suffix with all user attributes and
    /// entryUUID (what the leak scan reads), LDIF to /dev/null.
    fn ldapsearch(&self, slapd: &Slapd) -> anyhow::Result<Duration> {
        let args = self.bind_args(slapd)?;
        let t = Instant::now();
        let out = Command::new(&self.ldapsearch)
            .args(&args)
            .args(["-LLL", "-o", "ldif-wrap=no", "-b", slapd.base_dn()])
            .args(["-s", "sub", "(objectClass=*)", "*", "entryUUID"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()?;
        let took = t.elapsed();
        if !out.status.success() {
            bail!("ldapsearch: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(took)
    }

    /// Loads an LDIF offline (`slapadd -q`) into a stopped slapd, then starts it again:
    /// the scanned directory is set up fast, untimed.
    fn slapadd(&self, slapd: &mut Slapd, ldif: &Path) -> anyhow::Result<()> {
        slapd.stop()?;
        let out = Command::new(&self.slapadd)
            .arg("-q")
            .arg("-f")
            .arg(slapd.dir().join("slapd.conf"))
            .arg("-l")
            .arg(ldif)
            .stdin(Stdio::null())
            .output()?;
        if !out.status.success() {
            bail!("slapadd: {}", String::from_utf8_lossy(&out.stderr));
        }
        slapd.start_again()
    }
}

// --- Fiktiv -------------------------------------------------------------------------

/// A provisioning run: read the directory, plan, and write every created person
/// (guarded) with `push_many`.
async fn provision(
    target: &LdapTarget,
    guard: &EgressGuard,
    persons: &[FictitiousPerson],
) -> anyhow::Result<Duration> {
    let t = Instant::now();
    let actual = target.read_managed(now()).await?;
    let p = plan(persons, &actual, &PlanOptions::new(now()));
    let create: HashSet<PersonId> = p
        .actions()
        .filter_map(|(_, a)| match a {
            Action::Create { person } => Some(*person),
            _ => None,
        })
        .collect();
    let batch: Vec<(&FictitiousPerson, Expect)> = persons
        .iter()
        .map(|p| {
            let e = if create.contains(&p.id) {
                Expect::New
            } else {
                Expect::Any
            };
            (p, e)
        })
        .collect();
    let results = push_many(target, guard, &batch, now()).await?;
    let took = t.elapsed();
    for r in results {
        ensure!(r? == Applied::Created, "an entry was not created");
    }
    Ok(took)
}

/// A reconciliation that finds nothing to do: read the managed accounts, plan.
async fn reconcile(target: &LdapTarget, persons: &[FictitiousPerson]) -> anyhow::Result<Duration> {
    let t = Instant::now();
    let actual = target.read_managed(now()).await?;
    let p = plan(persons, &actual, &PlanOptions::new(now()));
    let took = t.elapsed();
    ensure!(actual.len() == persons.len(), "managed accounts missing");
    ensure!(p.is_empty(), "the no-change plan is not empty");
    Ok(took)
}

type Accounts = BTreeMap<PersonId, (BTreeMap<String, Vec<String>>, Vec<String>)>;

/// Every managed account: attributes (timestamps aside, values sorted) and groups.
async fn accounts(t: &LdapTarget) -> anyhow::Result<Accounts> {
    let mut m = Accounts::new();
    for e in t.read_managed(now()).await? {
        let mut attrs = e.attributes.clone();
        attrs.retain(|k, _| !k.eq_ignore_ascii_case("modifyTimestamp"));
        for v in attrs.values_mut() {
            v.sort();
        }
        let groups = e.groups.iter().map(|g| g.to_string()).collect();
        m.insert(e.person, (attrs, groups));
    }
    Ok(m)
}

/// Both directories hold the same accounts.
async fn same_accounts(a: &LdapTarget, b: &LdapTarget) -> anyhow::Result<()> {
    let (x, y) = (accounts(a).await?, accounts(b).await?);
    ensure!(
        x.len() == y.len() && x == y,
        "Fiktiv and ldapadd left different accounts ({} vs {})",
        x.len(),
        y.len()
    );
    Ok(())
}

/// The leak scan: read everything, match locally. Returns the time and the findings'
/// rules for the planted pupil.
async fn leak_scan(target: &LdapTarget, reals: &Reals) -> anyhow::Result<(Duration, usize)> {
    let counting = Arc::new(Counting(Arc::clone(&reals.index), AtomicUsize::new(0)));
    let c = cpu_time();
    let reader = thread_cpu_time();
    let t = Instant::now();
    let scanned = read_and_scan(
        target,
        &reals.key,
        Arc::clone(&counting),
        Duration::from_secs(3600),
    )
    .await;
    if let Some(e) = scanned.error {
        anyhow::bail!("the leak scan could not read the directory: {e}");
    }
    let (read, findings) = (scanned.read, scanned.findings);
    let took = t.elapsed();
    let cpu = cpu_time() - c;
    // The reader runs on this thread (the future `block_on` drives).
    let reader = thread_cpu_time() - reader;
    let indexes = counting.1.load(Ordering::Relaxed);
    let cost = index_cost(&reals.key);
    eprintln!(
        "  (read and matched in pages: {} wall, {} of Fiktiv's CPU, {} of it reading; {:.0} blind indexes per entry, {} of CPU at {:.2} µs each)",
        secs(took),
        secs(cpu),
        secs(reader),
        indexes as f64 / read as f64,
        secs(Duration::from_secs_f64(indexes as f64 * cost)),
        cost * 1e6,
    );
    eprintln!(
        "  (HMAC-SHA256 of the same input with its key prepared once: {:.2} µs)",
        prepared_hmac_cost() * 1e6
    );
    ensure!(
        findings
            .iter()
            .any(|f| f.rule == Rule::Number && f.cases.contains(&reals.planted.0)),
        "the planted real pupil was not found"
    );
    ensure!(
        findings.iter().all(|f| f.cases.contains(&reals.planted.0)),
        "a finding elsewhere than at the planted pupil"
    );
    Ok((took, read))
}

fn copy_entry(e: &ScannedEntry) -> ScannedEntry {
    let mut c = ScannedEntry::new(e.target.clone(), e.locator.clone());
    c.label_attribute = e.label_attribute.clone();
    for (n, v) in &e.values {
        c.push(n, v);
    }
    c
}

/// Where a leak scan's time goes (`FIKTIV_BENCH_PARTS=1`): reading alone, then matching
/// alone on one thread, with the CPU each takes. Diagnostics on stderr only.
fn parts_of_the_scan(
    rt: &tokio::runtime::Runtime,
    target: &LdapTarget,
    reals: &Reals,
    reps: usize,
) -> anyhow::Result<()> {
    for _ in 0..reps {
        let (c, t) = (cpu_time(), Instant::now());
        let entries = rt.block_on(target.read_everything())?;
        eprintln!(
            "  (parts: read {} wall, {} CPU",
            secs(t.elapsed()),
            secs(cpu_time() - c)
        );
        let (c, t) = (cpu_time(), Instant::now());
        let findings = scan(&entries, &reals.key, &*reals.index);
        eprintln!(
            "   matched by scan(): {} wall, {} CPU, {} findings",
            secs(t.elapsed()),
            secs(cpu_time() - c),
            findings.len()
        );
        // Entries with and without group members, each matched alone.
        for groups in [false, true] {
            let part: Vec<ScannedEntry> = entries
                .iter()
                .filter(|e| e.first("member").is_some() == groups)
                .map(copy_entry)
                .collect();
            let (c, t) = (cpu_time(), Instant::now());
            let mut paged = PagedScan::start(&reals.key, Arc::clone(&reals.index));
            for page in part.chunks(500) {
                paged.push(page.iter().map(copy_entry).collect());
            }
            let _ = paged.finish();
            eprintln!(
                "   {} entries {}: {} wall, {} CPU in pages",
                part.len(),
                if groups {
                    "with members"
                } else {
                    "without members"
                },
                secs(t.elapsed()),
                secs(cpu_time() - c),
            );
        }
        let (c, t) = (cpu_time(), Instant::now());
        let mut paged = PagedScan::start(&reals.key, Arc::clone(&reals.index));
        for page in entries.chunks(500) {
            paged.push(page.iter().map(copy_entry).collect());
        }
        let findings = paged.finish();
        eprintln!(
            "   matched in pages of 500: {} wall, {} CPU, {} findings)",
            secs(t.elapsed()),
            secs(cpu_time() - c),
            findings.len()
        );
    }
    Ok(())
}

// --- report -------------------------------------------------------------------------

fn median(v: &[Duration]) -> Duration {
    let mut s = v.to_vec();
    s.sort();
    s[s.len() / 2]
}

fn min(v: &[Duration]) -> Duration {
    v.iter().copied().min().unwrap_or_default()
}

fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 1.0 {
        format!("{:.0} ms", s * 1000.0)
    } else {
        format!("{s:.2} s")
    }
}

fn min_med(v: &[Duration]) -> String {
    format!("{} / {}", secs(min(v)), secs(median(v)))
}

struct Row {
    what: String,
    size: String,
    baseline_name: &'static str,
    baseline: Vec<Duration>,
    fiktiv: Vec<Duration>,
    limit: Option<f64>,
}

fn main() -> anyhow::Result<()> {
    let (sizes, full) = Sizes::from_args()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let tools = Tools::new()?;
    let reals = reals();
    let guard = EgressGuard::new(reals.key.clone(), reals.index.clone());
    let mut rows: Vec<Row> = Vec::new();
    let mut reconciles: Vec<(usize, Vec<Duration>)> = Vec::new();

    for &n in &sizes.ns {
        let name = TargetName::new("ldap").unwrap();
        let persons = pupils(n, &name, n as u64);
        let mut base = Vec::new();
        let mut fik = Vec::new();
        let mut rec = Vec::new();
        let t = Instant::now();
        let c = cpu_time();
        let probe = target_for_url("ldap://127.0.0.1:9/", ""); // render needs no server
        let records = persons
            .iter()
            .map(|p| probe.render(p))
            .collect::<Result<Vec<_>, _>>()?;
        ensure!(guard.clear_all(records).iter().all(Result::is_ok));
        eprintln!(
            "provisioning N={n}: render + guard alone, one thread: {} ({} CPU)",
            secs(t.elapsed()),
            secs(cpu_time() - c)
        );
        for rep in 0..sizes.reps {
            eprintln!("provisioning N={n}, run {}/{}", rep + 1, sizes.reps);
            let s_base = Slapd::start()?;
            let ldif = ldif_for(&target_for(&s_base), &persons, &s_base.groups_dn());
            let file = tools.file("provision.ldif", &ldif)?;
            base.push(tools.ldapadd(&s_base, &file)?);

            let s_fik = Slapd::start()?;
            let t = target_for(&s_fik);
            fik.push(rt.block_on(provision(&t, &guard, &persons))?);
            for _ in 0..sizes.reps {
                rec.push(rt.block_on(reconcile(&t, &persons))?);
            }
            if rep == 0 {
                rt.block_on(same_accounts(&t, &target_for(&s_base)))?;
                // Diagnosis: the LDAP writes alone, records cleared beforehand.
                let s_w = Slapd::start()?;
                let w = target_for(&s_w);
                let records = persons
                    .iter()
                    .map(|p| w.render(p))
                    .collect::<Result<Vec<_>, _>>()?;
                let cleared: Vec<_> = guard
                    .clear_all(records)
                    .into_iter()
                    .map(|c| c.map(|c| (c, Expect::New)))
                    .collect::<Result<_, _>>()?;
                let t0 = Instant::now();
                let written = rt.block_on(w.upsert_many(&guard, cleared, now()))?;
                eprintln!(
                    "  (LDAP writes alone, guard done beforehand: {})",
                    secs(t0.elapsed())
                );
                ensure!(written.iter().all(Result::is_ok));
            }
            eprintln!(
                "  ldapadd {}, Fiktiv {}",
                secs(*base.last().unwrap()),
                secs(*fik.last().unwrap())
            );
        }
        rows.push(Row {
            what: "provisioning (create) N pupils".into(),
            size: format!("N = {n}"),
            baseline_name: "ldapadd",
            baseline: base,
            fiktiv: fik,
            limit: Some(1.5),
        });
        reconciles.push((n, rec));
    }

    {
        let n = sizes.scan;
        eprintln!("leak scan: loading {n} pupils");
        let name = TargetName::new("ldap").unwrap();
        let persons = pupils(n, &name, 42);
        let mut slapd = Slapd::start()?;
        let t = target_for(&slapd);
        let mut ldif = ldif_for(&t, &persons, &slapd.groups_dn());
        let (_, given, family, number) = &reals.planted;
        ldif_line(
            &mut ldif,
            "dn",
            &format!("uid=planted,{}", slapd.people_dn()),
        );
        for (k, v) in [
            ("objectClass", "inetOrgPerson"),
            ("uid", "planted"),
            ("cn", &format!("{given} {family}")),
            ("givenName", given),
            ("sn", family),
            ("employeeNumber", number),
        ] {
            ldif_line(&mut ldif, k, v);
        }
        drop(persons);
        let file = tools.file("scan.ldif", &ldif)?;
        drop(ldif);
        tools.slapadd(&mut slapd, &file)?;
        let _ = std::fs::remove_file(&file);
        tools.ldapsearch(&slapd)?; // warm-up
        if std::env::var("FIKTIV_BENCH_PARTS").is_ok() {
            parts_of_the_scan(&rt, &t, &reals, sizes.reps)?;
        }
        let mut base = Vec::new();
        let mut fik = Vec::new();
        let mut entries = 0;
        for rep in 0..sizes.reps {
            eprintln!("leak scan, run {}/{}", rep + 1, sizes.reps);
            let (s0, c0) = (slapd_cpu_time(&slapd), children_cpu_time());
            base.push(tools.ldapsearch(&slapd)?);
            let (s1, c1) = (slapd_cpu_time(&slapd), children_cpu_time());
            let (took, count) = rt.block_on(leak_scan(&t, &reals))?;
            eprintln!(
                "  (CPU: ldapsearch {} with slapd {}; slapd {} for Fiktiv's scan)",
                secs(c1 - c0),
                secs(s1 - s0),
                secs(slapd_cpu_time(&slapd) - s1)
            );
            fik.push(took);
            entries = count;
            eprintln!(
                "  ldapsearch {}, Fiktiv {}",
                secs(*base.last().unwrap()),
                secs(took)
            );
        }
        rows.push(Row {
            what: "leak scan".into(),
            size: format!(
                "{n} pupils ({entries} entries), {} real identities",
                real_pupils()
            ),
            baseline_name: "ldapsearch",
            baseline: base,
            fiktiv: fik,
            limit: Some(1.5),
        });
    }

    println!(
        "| what is timed | size | baseline | baseline min / median | Fiktiv min / median | ratio (medians) | target |"
    );
    println!("|---|---|---|---|---|---|---|");
    for r in &rows {
        let ratio = median(&r.fiktiv).as_secs_f64() / median(&r.baseline).as_secs_f64();
        let verdict = match r.limit {
            Some(l) if ratio <= l => format!("≤ {l}×: met"),
            Some(l) => format!("≤ {l}×: **not met**"),
            None => String::new(),
        };
        println!(
            "| {} | {} | {} | {} | {} | {ratio:.2}× | {verdict} |",
            r.what,
            r.size,
            r.baseline_name,
            min_med(&r.baseline),
            min_med(&r.fiktiv),
        );
    }
    let mut prev: Option<(usize, Duration, Duration)> = None;
    for (n, v) in &reconciles {
        let (m, lo) = (median(v), min(v));
        let growth = match prev {
            Some((pn, pm, plo)) => format!(
                "{:.1}× (medians), {:.1}× (minimums) the time for {:.0}× the pupils",
                m.as_secs_f64() / pm.as_secs_f64(),
                lo.as_secs_f64() / plo.as_secs_f64(),
                *n as f64 / pn as f64
            ),
            None => "".into(),
        };
        println!(
            "| no-change reconciliation | N = {n} | none | | {} | | {growth} |",
            min_med(v)
        );
        prev = Some((*n, m, lo));
    }
    if let Some(mib) = peak_mib() {
        println!(
            "\nPeak memory of the benchmark process (VmHWM): {mib:.0} MiB, with {} real \
             identities.",
            real_pupils()
        );
    }
    println!(
        "\n{} samples per case ({}).",
        sizes.reps,
        if full {
            "full run"
        } else {
            "smoke run: tiny sizes, numbers meaningless"
        }
    );
    Ok(())
}
