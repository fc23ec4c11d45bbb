//! Shared by the provisioning fuzz targets: a fixed blind key, one "real" pupil whose
//! blind indexes are the lookup (also with the vault's name-part pre-filter), and the
//! leak-scan checks run over whatever a parser produced.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)] // fuzz harness

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use chrono::NaiveDate;
use fiktiv_provisioning::{
    scan, Finding, PagedScan, RealIndexLookup, Rule, ScannedEntry, TargetName,
};
use fiktiv_vault::blind::{BlindIndex, IndexKind};
use fiktiv_vault::identity::{full_name_key, RealIdentity, RealName};
use fiktiv_vault::ids::PersonalNumber;
use fiktiv_vault::keys::BlindKey;
use fiktiv_vault::normalize::name_birth_key;
use fiktiv_vault::{CaseId, KeyRing, NamePartFilter, RootKey};

pub type IndexMap = HashMap<(IndexKind, BlindIndex), Vec<CaseId>>;

/// The real pupil the scans look for. Seeds carry these values.
pub const REAL_FIRST: &str = "Åsa-Britt";
pub const REAL_LAST: &str = "Öberg";
pub const REAL_BIRTH: (i32, u32, u32) = (2012, 3, 4);
pub const REAL_SERIAL: u16 = 123;

/// The lookup with the name-part pre-filter, as the vault's `BlindIndexSet` has it.
pub struct Filtered {
    pub lookup: IndexMap,
    pub parts: NamePartFilter,
}

impl RealIndexLookup for Filtered {
    fn contains(&self, kind: IndexKind, idx: &BlindIndex) -> bool {
        self.lookup.contains(kind, idx)
    }

    fn cases(&self, kind: IndexKind, idx: &BlindIndex) -> Vec<CaseId> {
        self.lookup.cases(kind, idx)
    }

    fn name_parts(&self) -> Option<&NamePartFilter> {
        Some(&self.parts)
    }
}

/// The fixture's filtered lookup, for a paged scan's worker threads.
pub struct Fixed(&'static Filtered);

impl RealIndexLookup for Fixed {
    fn contains(&self, kind: IndexKind, idx: &BlindIndex) -> bool {
        self.0.contains(kind, idx)
    }

    fn cases(&self, kind: IndexKind, idx: &BlindIndex) -> Vec<CaseId> {
        self.0.cases(kind, idx)
    }

    fn name_parts(&self) -> Option<&NamePartFilter> {
        self.0.name_parts()
    }
}

pub struct Fixture {
    pub key: BlindKey,
    pub lookup: IndexMap,
    pub filtered: Filtered,
    pub case: CaseId,
    /// Canonical (12 digits) real number.
    pub number: String,
    pub target: TargetName,
}

pub fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        // A fixed root key: runs are reproducible.
        let ring = KeyRing::new(
            RootKey::from_base64("ZnV6ei1maWt0aXYtZnV6ei1maWt0aXYtZnV6ei0xMjM=").unwrap(),
        )
        .unwrap();
        let key = ring.blind().clone();
        let mut parts = NamePartFilter::new(ring.name_parts().clone());
        parts.add_names(REAL_FIRST, REAL_LAST);
        // Other pupils' name parts: a candidate may pass the filter half-way.
        parts.add_names("Ella", "Svensson");
        let birth = NaiveDate::from_ymd_opt(REAL_BIRTH.0, REAL_BIRTH.1, REAL_BIRTH.2).unwrap();
        let number = fiktiv_vault::ids::make_se_number(birth, REAL_SERIAL).unwrap();
        let case = CaseId::new();
        let mut lookup: IndexMap = HashMap::new();
        // Exactly the vault's rows (`RealIdentity::blind_indexes`): every spelling, the
        // initial + family name, padded slots.
        let who = RealIdentity {
            number: PersonalNumber::parse(&number, NaiveDate::MAX).unwrap(),
            first_name: RealName::new(REAL_FIRST),
            last_name: RealName::new(REAL_LAST),
            birth_date: birth,
        };
        for row in who.blind_indexes(&key, &format!("{case}/pupil")) {
            lookup.entry(row).or_default().push(case);
        }
        for (kind, text) in [
            (IndexKind::FullName, full_name_key(REAL_FIRST, REAL_LAST)),
            (
                IndexKind::NameBirth,
                name_birth_key(REAL_FIRST, REAL_LAST, birth),
            ),
        ] {
            assert!(lookup.contains_key(&(kind, key.index(kind, &text))));
        }
        Fixture {
            key,
            filtered: Filtered {
                lookup: lookup.clone(),
                parts,
            },
            lookup,
            case,
            number,
            target: TargetName::new("fuzz").unwrap(),
        }
    })
}

/// Runs the leak scan over `entries` and checks it:
/// - every finding names an entry of the input, in input order;
/// - scanning all entries at once (one memo shared by the entries) finds exactly what
///   scanning each entry on its own finds (the screen's memo changes nothing);
/// - scanning with the name-part pre-filter finds exactly the same, and so does a paged
///   scan ([`PagedScan`], pages of two, learning memos on worker threads);
/// - an entry holding the real canonical number as a word of a value is reported
///   (as the number, or as unverifiable when it was too large to check completely).
pub fn check_scan(make: &dyn Fn() -> Vec<ScannedEntry>) -> Vec<Finding> {
    let f = fixture();
    let entries = make();
    let all = scan(&entries, &f.key, &f.lookup);
    let mut one_by_one = Vec::new();
    for e in make() {
        one_by_one.extend(scan(std::slice::from_ref(&e), &f.key, &f.lookup));
    }
    assert_eq!(all, one_by_one, "the scan's memo changed its findings");
    assert_eq!(
        all,
        scan(&entries, &f.key, &f.filtered),
        "the name-part pre-filter changed the findings"
    );
    // Fed in pages of two, matched on worker threads that learn what recurs.
    let mut paged = PagedScan::start(&f.key, Arc::new(Fixed(&f.filtered)));
    let mut page = Vec::new();
    for e in make() {
        page.push(e);
        if page.len() == 2 {
            paged.push(std::mem::take(&mut page));
        }
    }
    paged.push(page);
    assert_eq!(all, paged.finish(), "the paged scan changed the findings");
    for e in &entries {
        let has_number = e.values.iter().any(|(_, v)| {
            v.split(|c: char| !c.is_ascii_digit())
                .any(|w| w == f.number)
        });
        if has_number {
            assert!(
                all.iter()
                    .any(|x| x.entry == e.locator
                        && matches!(x.rule, Rule::Number | Rule::Unverifiable)),
                "a real personal number was not reported"
            );
        }
    }
    for x in &all {
        assert!(entries.iter().any(|e| e.locator == x.entry));
        if x.rule != Rule::Unverifiable {
            assert_eq!(x.cases, vec![f.case]);
        }
    }
    all
}
