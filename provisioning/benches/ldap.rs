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
//! The leak scan runs for every count of real identities in `FIKTIV_BENCH_REALS` in the
//! same process, against the same loaded slapd with the same entries: each round
//! times, for each count in turn, `ldapsearch` and then the scan with that count's
//! vault, so every count's ratio has its own baseline from the same minutes. The scan
//! reads with the leak scan's default scope (every naming context of the root DSE, no
//! `scan_bases`); the benchmark checks that it read exactly the suffix `ldapsearch`
//! dumps. Memory (Linux): the peak resident size is reset (`/proc/self/clear_refs`,
//! `5`) before each count's identities are built and before each scan, and the growth
//! over the resident size just before is reported: what the identities' blind indexes
//! and name-part filter keep, and what the scan itself adds at its peak.
//!
//! Environment (full run only): `FIKTIV_BENCH_N` (comma list, default `1000,10000`; `0`
//! skips provisioning), `FIKTIV_BENCH_PAGE` (the target's page size, default 5000),
//! `FIKTIV_BENCH_SCAN` (default `100000`), `FIKTIV_BENCH_REPS` (default `3`),
//! `FIKTIV_BENCH_REALS` (comma list of real identities in the vault, default
//! `1000,20000`; provisioning's guard uses the first), `FIKTIV_BENCH_REAL_NAMES` (the
//! real identities' names: `country`, the default, drawn so that the number of distinct
//! given and family names grows with the count as in a country's population (common
//! Swedish and Norwegian names, hyphenated given names, patronymics, compound family
//! names and names of other origins); `varied`, 60 common given and 60 family names;
//! `few`, 10 and 10, the benchmark's names before).
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
use fiktiv_vault::normalize::name_spellings;
use fiktiv_vault::{CaseId, KeyRing, NamePartFilter, RootKey};
use secrecy::SecretString;

/// Pupils per school unit and per class.
const SCHOOL_SIZE: usize = 1000;
const CLASS_SIZE: usize = 25;
/// Real identities in the vault the scan checks against, one scan per count, unless
/// `FIKTIV_BENCH_REALS` says otherwise (full run); the smoke run's counts.
const REAL_COUNTS: &[usize] = &[1_000, 20_000];
const SMOKE_REAL_COUNTS: &[usize] = &[50, 200];

/// A field of `/proc/self/status` (`VmRSS`, `VmHWM`), in MiB, where Linux tells it.
fn status_mib(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

/// Resets the process's peak resident size (`VmHWM`) to its current one (Linux 4.0+:
/// `5` to `/proc/self/clear_refs`), and returns that resident size (`VmRSS`), in MiB.
/// `None` where it cannot: no memory figure is then reported.
fn reset_peak() -> Option<f64> {
    std::fs::write("/proc/self/clear_refs", "5").ok()?;
    status_mib("VmRSS")
}

/// The peak resident size since [`reset_peak`] returned `before`, over `before`.
fn peak_growth(before: Option<f64>) -> Option<f64> {
    Some(status_mib("VmHWM")? - before?)
}

fn mib(m: Option<f64>) -> String {
    m.map_or("not available".into(), |m| format!("{m:.1} MiB"))
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
/// The default (`country`) names, beside [`VARIED_GIVEN`] and [`VARIED_FAMILY`]: more
/// given names of Swedish, Norwegian and other origins (none a fictitious one), ...
const MORE_GIVEN: &str = concat!(
    "Selma Ellen Stella Vera Signe Ines Leah Tyra Hedda Iris Ester Lova Juni Thea Mira ",
    "Elvira Meja Siri Ronja Emilia Edvin Alfred Arvid Melvin Ture Sixten Loke Valter ",
    "Albin Ville Harry Colin Noel Kian Aron Milo Tage Malte Levi Vincent Love Casper ",
    "Jonathan Benjamin Samuel David Gabriel Josef Olle Ebbe Fatima Amina Zeynep Omar ",
    "Hassan Mustafa Ibrahim Aisha Mariam Sigve Torstein Ingvild Hege Lise Rune Arne",
);
/// ... the two halves of Swedish and Norwegian compound family names (`Sjö` + `lund`),
const FAMILY_FIRST: &str = concat!(
    "Lind Sjö Björk Asp Gran Hag Ny Norr Söder Öster Väster Sand Sten Fors Hed Mal Ros ",
    "Lilje Wall Wester Bäck Kull Lönn Hassel Alm Ask Furu Tall Ljung Myr Sol Vinter ",
    "Sommar Ceder Hjort Örn Svan Rosen Bergh Ahl Lund Dahl Ek Holm Ström Berg Skog Stor ",
    "Lill Fager Hall Grön Kvarn Nord Hög Frid Sol Vester Øster Aas Bråt Fjell",
);
const FAMILY_LAST: &str = concat!(
    "berg lund ström gren qvist kvist holm dahl man fors by ling strand stedt blad mark ",
    "näs vall bäck hem sjö vik ås hed feldt löf borg stam nér ell in ér rot land gård ",
    "sten rud heim li stad",
);
/// ... and syllables for names of other origins (two or three of them: `Karahan`).
const SYLLABLES: &str = concat!(
    "a ka ra han mo ha med sa li ma na di ya zi ba er ke lo nu fa ri da tu gu ye si la ",
    "ni ko am",
);

/// How the real identities' names are drawn (`FIKTIV_BENCH_REAL_NAMES`).
#[derive(Clone, Copy, PartialEq)]
enum NameKind {
    /// As in a country: a few common names for most people and a long tail, so the
    /// number of distinct given and family names grows with the count (the default).
    Country,
    /// 60 common given and 60 common family names.
    Varied,
    /// 10 given and 10 family names.
    Few,
}

struct NameDraw {
    kind: NameKind,
    common_given: Vec<&'static str>,
    common_family: Vec<&'static str>,
    first: Vec<&'static str>,
    last: Vec<&'static str>,
    syllables: Vec<&'static str>,
    /// Every fictitious name part and word of the scanned entries, in both ASCII
    /// spellings: a real name is never one of them, so nothing but the planted pupil
    /// is found.
    taken: HashSet<String>,
}

impl NameDraw {
    fn from_env() -> anyhow::Result<Self> {
        let kind = match std::env::var("FIKTIV_BENCH_REAL_NAMES").as_deref() {
            Err(_) | Ok("" | "country") => NameKind::Country,
            Ok("varied") => NameKind::Varied,
            Ok("few") => NameKind::Few,
            Ok(other) => bail!("FIKTIV_BENCH_REAL_NAMES: `{other}` (country, varied, few)"),
        };
        let words = |s: &'static str| s.split_whitespace().collect::<Vec<_>>();
        let (mut common_given, common_family) = match kind {
            NameKind::Few => (REAL_GIVEN.to_vec(), REAL_FAMILY.to_vec()),
            _ => (words(VARIED_GIVEN), words(VARIED_FAMILY)),
        };
        if kind == NameKind::Country {
            common_given.extend(words(MORE_GIVEN));
        }
        let mut taken = HashSet::new();
        let scanned_words = [
            "skola", "skole", "klass", "example", "org", "people", "groups",
        ];
        for w in GIVEN.iter().chain(FAMILY).chain(&scanned_words) {
            taken.extend(name_spellings(w));
        }
        Ok(Self {
            kind,
            common_given,
            common_family,
            first: words(FAMILY_FIRST),
            last: words(FAMILY_LAST),
            syllables: words(SYLLABLES),
            taken,
        })
    }

    fn name(&self) -> &'static str {
        match self.kind {
            NameKind::Country => "country: common names and a long tail",
            NameKind::Varied => "varied: 60 given and 60 family names",
            NameKind::Few => "few: 10 given and 10 family names",
        }
    }

    /// Mostly the first names of a list, rarely the last (the square of a uniform
    /// draw): common names are common.
    fn skewed(rng: &mut Rng, from: &[&'static str]) -> &'static str {
        let u = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
        from[((u * u * from.len() as f64) as usize).min(from.len() - 1)]
    }

    fn syllabic(&self, rng: &mut Rng) -> String {
        let n = 2 + rng.next() % 2;
        let word: String = (0..n).map(|_| rng.pick(&self.syllables)).collect();
        let mut c = word.chars();
        c.next()
            .map(|f| f.to_uppercase().chain(c).collect())
            .unwrap_or_default()
    }

    /// Not a fictitious name part or a word of the scanned entries, and not spelt by
    /// hex digits alone: the entries' ids (`uid`, the mail address's `{short_id}`) are
    /// random hex, and with 20,000 real identities every birth date is some five real
    /// pupils' birth date, so an `Ada` or `Abada` would be the initial + family name of
    /// a real pupil beside that pupil's birth date in some entry of 100,000, by chance.
    fn allowed(&self, name: &str) -> bool {
        name.split(['-', ' ']).chain([name]).all(|part| {
            // The vault's own spellings: stripped first, then transliterated.
            let spelt = name_spellings(part);
            spelt.iter().all(|s| !self.taken.contains(s))
                && !spelt[0].chars().all(|c| matches!(c, 'a'..='f'))
        })
    }

    fn given(&self, rng: &mut Rng) -> String {
        loop {
            let name = match (self.kind, rng.next() % 100) {
                (NameKind::Country, 0..=74) => Self::skewed(rng, &self.common_given).to_string(),
                (NameKind::Country, 75..=79) => format!(
                    "{}-{}",
                    Self::skewed(rng, &self.common_given),
                    Self::skewed(rng, &self.common_given)
                ),
                (NameKind::Country, _) => self.syllabic(rng),
                _ => rng.pick(&self.common_given).to_string(),
            };
            if self.allowed(&name) {
                return name;
            }
        }
    }

    fn family(&self, rng: &mut Rng) -> String {
        loop {
            let name = match (self.kind, rng.next() % 100) {
                (NameKind::Country, 0..=29) => Self::skewed(rng, &self.common_family).to_string(),
                (NameKind::Country, 30..=39) => {
                    let g = Self::skewed(rng, &self.common_given);
                    format!(
                        "{g}{}",
                        if rng.next().is_multiple_of(2) {
                            "sson"
                        } else {
                            "sen"
                        }
                    )
                }
                (NameKind::Country, 40..=79) => {
                    format!("{}{}", rng.pick(&self.first), rng.pick(&self.last))
                }
                (NameKind::Country, _) => self.syllabic(rng),
                _ => rng.pick(&self.common_family).to_string(),
            };
            if self.allowed(&name) {
                return name;
            }
        }
    }
}

struct Sizes {
    ns: Vec<usize>,
    scan: usize,
    reps: usize,
    /// Real identities in the vault, one scan per count.
    reals: Vec<usize>,
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
                    reals: SMOKE_REAL_COUNTS.to_vec(),
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
        let reals = match var("FIKTIV_BENCH_REALS") {
            Some(v) => v
                .split(',')
                .map(|s| s.trim().replace('_', "").parse::<usize>())
                .collect::<Result<Vec<_>, _>>()
                .context("FIKTIV_BENCH_REALS")?,
            None => REAL_COUNTS.to_vec(),
        };
        ensure!(
            !reals.is_empty() && reals.iter().all(|&r| r >= 1),
            "FIKTIV_BENCH_REALS: one or more counts of at least 1"
        );
        Ok((
            Self {
                ns,
                scan,
                reps,
                reals,
            },
            true,
        ))
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
    /// The same person in every count's vault (the first drawn).
    planted: (CaseId, String, String, String),
    count: usize,
    /// Distinct given and family names, and blind indexes per identity.
    given_names: usize,
    family_names: usize,
    rows_per_identity: usize,
    /// Building the vault's side of `count` identities: wall time, resident memory kept
    /// (over the resident size before) and the peak while building, in MiB.
    built_in: Duration,
    kept: Option<f64>,
    build_peak: Option<f64>,
}

/// `count` real identities, as the vault keeps them, drawn by `names` (the same
/// sequence for every count: the first is the same person), timed and measured.
fn reals(count: usize, names: &NameDraw) -> Reals {
    let before = reset_peak();
    let t = Instant::now();
    let ring = KeyRing::new(RootKey::generate()).unwrap();
    let key = ring.blind().clone();
    let mut parts = NamePartFilter::new(ring.name_parts().clone());
    let mut rng = Rng(7);
    let mut index: HashMap<(IndexKind, BlindIndex), Vec<CaseId>> = HashMap::new();
    let mut planted = None;
    let mut rows_per_identity = 0;
    for i in 0..count {
        let case = CaseId::new();
        let given = names.given(&mut rng);
        let family = names.family(&mut rng);
        let birth = rng.birth(2008, 10);
        let number = fiktiv_vault::ids::make_se_number(birth, (i % 999 + 1) as u16).unwrap();
        // Exactly as the vault keeps them (`RealIdentity::blind_indexes`): every
        // spelling of the names, the initial + family name, unused slots padded.
        let who = RealIdentity {
            number: PersonalNumber::parse(&number, NaiveDate::MAX).unwrap(),
            first_name: RealName::new(&given),
            last_name: RealName::new(&family),
            birth_date: birth,
        };
        let rows = who.blind_indexes(&key, &format!("{case}/pupil"));
        debug_assert_eq!(
            rows[1].1,
            key.index(IndexKind::FullName, &full_name_key(&given, &family))
        );
        debug_assert_eq!(
            rows[2].1,
            key.index(
                IndexKind::NameBirth,
                &name_birth_key(&given, &family, birth)
            )
        );
        rows_per_identity = rows.len();
        for row in rows {
            index.entry(row).or_default().push(case);
        }
        parts.add_names(&given, &family);
        if planted.is_none() {
            planted = Some((case, given.clone(), family.clone(), number));
        }
    }
    let index = Arc::new(RealSet { index, parts });
    let built_in = t.elapsed();
    let kept = status_mib("VmRSS").zip(before).map(|(after, b)| after - b);
    let build_peak = peak_growth(before);
    let (given_names, family_names) = distinct_names(count, names);
    Reals {
        key,
        index,
        planted: planted.unwrap(),
        count,
        given_names,
        family_names,
        rows_per_identity,
        built_in,
        kept,
        build_peak,
    }
}

/// Distinct given and family names among the first `count` drawn (the draws of
/// [`reals`] again, after its memory was measured).
fn distinct_names(count: usize, names: &NameDraw) -> (usize, usize) {
    let mut rng = Rng(7);
    let (mut givens, mut families) = (HashSet::new(), HashSet::new());
    for _ in 0..count {
        givens.insert(names.given(&mut rng));
        families.insert(names.family(&mut rng));
        let _ = rng.birth(2008, 10);
    }
    (givens.len(), families.len())
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

/// What one leak scan took: wall time, entries read, and the peak resident memory
/// over the resident size just before it (MiB, where Linux tells it).
struct ScanRun {
    took: Duration,
    read: usize,
    peak: Option<f64>,
}

/// The leak scan with its default scope: read everything under every naming context,
/// match locally. Fails unless it read exactly `scope` and found the planted pupil and
/// nothing else.
async fn leak_scan(
    target: &LdapTarget,
    reals: &Reals,
    scope: &[String],
) -> anyhow::Result<ScanRun> {
    let counting = Arc::new(Counting(Arc::clone(&reals.index), AtomicUsize::new(0)));
    let before = reset_peak();
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
    let took = t.elapsed();
    let peak = peak_growth(before);
    ensure!(
        scanned.scope == scope,
        "the scan read {:?}, not the naming contexts {scope:?}",
        scanned.scope
    );
    let (read, findings) = (scanned.read, scanned.findings);
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
    let elsewhere: Vec<String> = findings
        .iter()
        .filter(|f| !f.cases.contains(&reals.planted.0))
        .map(|f| format!("{:?} in {:?} of {:?}", f.rule, f.attributes, f.label))
        .collect();
    ensure!(
        elsewhere.is_empty(),
        "a finding elsewhere than at the planted pupil: {}",
        elsewhere.join("; ")
    );
    Ok(ScanRun { took, read, peak })
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

/// The environment of a memory probe: the benchmark run again as a fresh process that
/// builds one count's vault side and scans the loaded directory once, so that no page
/// the allocator kept from earlier work hides what the identities and the scan need.
const PROBE_URL: &str = "FIKTIV_BENCH_PROBE_URL";
const PROBE_PASSWORD: &str = "FIKTIV_BENCH_PROBE_PASSWORD";
const PROBE_COUNT: &str = "FIKTIV_BENCH_PROBE_COUNT";

/// One count's memory, measured in a fresh process: building the vault side (wall
/// time, resident memory kept, peak while building) and the scan's peak over the
/// resident size just before it, in MiB.
struct Probe {
    built_in: Duration,
    kept: Option<f64>,
    build_peak: Option<f64>,
    scan_peak: Option<f64>,
}

fn opt(m: Option<f64>) -> String {
    m.map_or("-".into(), |m| format!("{m:.3}"))
}

/// The probe's side (this process was started by [`memory_probe`]): one line on stdout.
fn probe(url: &str) -> anyhow::Result<()> {
    let count: usize = std::env::var(PROBE_COUNT)?.parse()?;
    let password = std::env::var(PROBE_PASSWORD)?;
    let names = NameDraw::from_env()?;
    let r = reals(count, &names);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let t = target_for_url(url, &password);
    let scope = rt.block_on(t.scan_bases())?;
    let run = rt.block_on(leak_scan(&t, &r, &scope))?;
    println!(
        "{} {} {} {}",
        r.built_in.as_secs_f64(),
        opt(r.kept),
        opt(r.build_peak),
        opt(run.peak)
    );
    Ok(())
}

/// Runs [`probe`] for `count` real identities against `slapd`, in a fresh process.
fn memory_probe(slapd: &Slapd, count: usize) -> anyhow::Result<Probe> {
    eprintln!("memory probe, {count} real identities, in a fresh process");
    let out = Command::new(std::env::current_exe()?)
        .env(PROBE_URL, slapd.url())
        .env(PROBE_PASSWORD, slapd.admin_password())
        .env(PROBE_COUNT, count.to_string())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()?;
    ensure!(out.status.success(), "the memory probe failed");
    let line = String::from_utf8(out.stdout)?;
    let f: Vec<&str> = line.split_whitespace().collect();
    ensure!(f.len() == 4, "the memory probe said {line:?}");
    let m = |s: &str| s.parse::<f64>().ok();
    Ok(Probe {
        built_in: Duration::from_secs_f64(f[0].parse()?),
        kept: m(f[1]),
        build_peak: m(f[2]),
        scan_peak: m(f[3]),
    })
}

/// The leak scan's runs, per count of real identities (in the order of the counts).
struct ScanReport {
    n: usize,
    entries: usize,
    scope: Vec<String>,
    base: Vec<Vec<Duration>>,
    fik: Vec<Vec<Duration>>,
    peaks: Vec<Vec<f64>>,
    probes: Vec<Probe>,
}

impl ScanReport {
    fn print(&self, sets: &[Reals], names: &NameDraw) {
        println!(
            "\nLeak scan of {} pupils ({} entries), every count in one process against one \
             slapd loaded once; scope: the leak scan's default, every naming context of the \
             root DSE ({}), the suffix `ldapsearch` dumps; real names: {}. Each round runs, \
             for each count in turn, `ldapsearch` and then the scan.",
            self.n,
            self.entries,
            self.scope.join(", "),
            names.name()
        );
        println!(
            "\n| real identities | distinct given / family names | ldapsearch min / median | \
             scan min / median | ratio (medians) | target |"
        );
        println!("|---|---|---|---|---|---|");
        for (i, r) in sets.iter().enumerate() {
            let ratio = median(&self.fik[i]).as_secs_f64() / median(&self.base[i]).as_secs_f64();
            println!(
                "| {} | {} / {} | {} | {} | {ratio:.2}× | ≤ 1.5×: {} |",
                r.count,
                r.given_names,
                r.family_names,
                min_med(&self.base[i]),
                min_med(&self.fik[i]),
                if ratio <= 1.5 { "met" } else { "**not met**" },
            );
        }
        let mid = |v: &[f64]| {
            let mut v = v.to_vec();
            v.sort_by(f64::total_cmp);
            v.get(v.len() / 2).copied()
        };
        let max = |v: &[f64]| v.iter().copied().reduce(f64::max);
        println!(
            "\nMemory (resident, from /proc/self/status, the peak reset through \
             /proc/self/clear_refs). Fresh process: the benchmark run again per count, building \
             that count's vault side and scanning the same directory once. Timed process: the \
             scans timed above, where the allocator reuses pages freed by earlier work.\n"
        );
        println!(
            "| real identities | vault side built in (fresh process) | its resident memory \
             kept (peak while building) | scan's peak over before it, fresh process | the same \
             in the timed process (median / max) |"
        );
        println!("|---|---|---|---|---|");
        for (i, r) in sets.iter().enumerate() {
            let p = &self.probes[i];
            println!(
                "| {} | {} | {} ({}) | {} | {} / {} |",
                r.count,
                secs(p.built_in),
                mib(p.kept),
                mib(p.build_peak),
                mib(p.scan_peak),
                mib(mid(&self.peaks[i])),
                mib(max(&self.peaks[i])),
            );
        }
        println!(
            "\n{} blind indexes per identity (`RealIdentity::blind_indexes`).",
            sets.first().map_or(0, |r| r.rows_per_identity)
        );
        for w in 0..sets.len().saturating_sub(1) {
            let (a, b) = (&sets[w], &sets[w + 1]);
            let (pa, pb) = (&self.probes[w], &self.probes[w + 1]);
            let added = b.count as f64 - a.count as f64;
            let per = |x: f64| x / added;
            let (ta, tb) = (median(&self.fik[w]), median(&self.fik[w + 1]));
            let ra = ta.as_secs_f64() / median(&self.base[w]).as_secs_f64();
            let rb = tb.as_secs_f64() / median(&self.base[w + 1]).as_secs_f64();
            let per_mib = |x: Option<f64>, y: Option<f64>| match (x, y) {
                (Some(x), Some(y)) => format!(
                    "{:+.0} bytes per added identity",
                    per((y - x) * 1024.0 * 1024.0)
                ),
                _ => "not available".into(),
            };
            println!(
                "\nFrom {} to {} real identities ({:.0}×): scan median {} → {} ({:+.0} ms, \
                 {:+.2} µs per added identity), ratio {ra:.2}× → {rb:.2}×; building the vault \
                 side {} → {} ({:+.1} µs per added identity); its resident memory {} → {} \
                 ({}); the scan's peak over before it (fresh process) {} → {} ({}).",
                a.count,
                b.count,
                b.count as f64 / a.count as f64,
                secs(ta),
                secs(tb),
                (tb.as_secs_f64() - ta.as_secs_f64()) * 1e3,
                per((tb.as_secs_f64() - ta.as_secs_f64()) * 1e6),
                secs(pa.built_in),
                secs(pb.built_in),
                per((pb.built_in.as_secs_f64() - pa.built_in.as_secs_f64()) * 1e6),
                mib(pa.kept),
                mib(pb.kept),
                per_mib(pa.kept, pb.kept),
                mib(pa.scan_peak),
                mib(pb.scan_peak),
                per_mib(pa.scan_peak, pb.scan_peak),
            );
        }
    }
}

fn main() -> anyhow::Result<()> {
    if let Ok(url) = std::env::var(PROBE_URL) {
        return probe(&url);
    }
    let (sizes, full) = Sizes::from_args()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let tools = Tools::new()?;
    // Every count's vault first, before the directories and their LDIF are in memory,
    // each measured alone (the peak reset before it).
    let names = NameDraw::from_env()?;
    let sets: Vec<Reals> = sizes.reals.iter().map(|&c| reals(c, &names)).collect();
    for r in &sets {
        eprintln!(
            "real identities: {} ({} distinct given, {} distinct family names; {} blind \
             indexes each), built in {}, resident memory kept {}, peak while building {}",
            r.count,
            r.given_names,
            r.family_names,
            r.rows_per_identity,
            secs(r.built_in),
            mib(r.kept),
            mib(r.build_peak)
        );
        let (p, q) = (&r.planted, &sets[0].planted);
        ensure!(
            (&p.1, &p.2, &p.3) == (&q.1, &q.2, &q.3),
            "the planted pupil differs between the counts"
        );
    }
    let reals = &sets[0];
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

    let scan_report = {
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
        // The scope: the target sets no `scan_bases`, so the scan reads every naming
        // context of the root DSE, which is the suffix `ldapsearch` dumps.
        let scope = rt.block_on(t.scan_bases())?;
        ensure!(
            scope == [slapd.base_dn().to_string()],
            "the scan's default scope is {scope:?}, not the suffix {}",
            slapd.base_dn()
        );
        tools.ldapsearch(&slapd)?; // warm-up
        if std::env::var("FIKTIV_BENCH_PARTS").is_ok() {
            for r in &sets {
                eprintln!("parts of the scan, {} real identities", r.count);
                parts_of_the_scan(&rt, &t, r, sizes.reps)?;
            }
        }
        let k = sets.len();
        let mut base = vec![Vec::new(); k];
        let mut fik = vec![Vec::new(); k];
        let mut peaks: Vec<Vec<f64>> = vec![Vec::new(); k];
        let mut entries = 0;
        // Rounds: in each, every count in turn, its own `ldapsearch` just before its scan.
        for rep in 0..sizes.reps {
            for (i, r) in sets.iter().enumerate() {
                eprintln!(
                    "leak scan, {} real identities, run {}/{}",
                    r.count,
                    rep + 1,
                    sizes.reps
                );
                let (s0, c0) = (slapd_cpu_time(&slapd), children_cpu_time());
                base[i].push(tools.ldapsearch(&slapd)?);
                let (s1, c1) = (slapd_cpu_time(&slapd), children_cpu_time());
                let run = rt.block_on(leak_scan(&t, r, &scope))?;
                eprintln!(
                    "  (CPU: ldapsearch {} with slapd {}; slapd {} for Fiktiv's scan)",
                    secs(c1 - c0),
                    secs(s1 - s0),
                    secs(slapd_cpu_time(&slapd) - s1)
                );
                eprintln!(
                    "  ldapsearch {}, Fiktiv {}, the scan's peak memory over before it {}",
                    secs(*base[i].last().unwrap()),
                    secs(run.took),
                    mib(run.peak)
                );
                fik[i].push(run.took);
                peaks[i].extend(run.peak);
                entries = run.read;
            }
        }
        for (i, r) in sets.iter().enumerate() {
            rows.push(Row {
                what: "leak scan".into(),
                size: format!(
                    "{n} pupils ({entries} entries), {} real identities",
                    r.count
                ),
                baseline_name: "ldapsearch",
                baseline: base[i].clone(),
                fiktiv: fik[i].clone(),
                limit: Some(1.5),
            });
        }
        let probes = sets
            .iter()
            .map(|r| memory_probe(&slapd, r.count))
            .collect::<anyhow::Result<Vec<_>>>()?;
        ScanReport {
            probes,
            n,
            entries,
            scope,
            base,
            fik,
            peaks,
        }
    };

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
    scan_report.print(&sets, &names);
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
