//! Shared by the provisioning fuzz targets: a fixed blind key, one "real" pupil whose
//! blind indexes are the lookup, and the leak-scan checks run over whatever a parser
//! produced.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)] // fuzz harness

use std::collections::HashMap;
use std::sync::OnceLock;

use chrono::NaiveDate;
use fiktiv_provisioning::{scan, Finding, Rule, ScannedEntry, TargetName};
use fiktiv_vault::blind::{BlindIndex, IndexKind};
use fiktiv_vault::identity::full_name_key;
use fiktiv_vault::keys::BlindKey;
use fiktiv_vault::normalize::name_birth_key;
use fiktiv_vault::{CaseId, RootKey};

pub type IndexMap = HashMap<(IndexKind, BlindIndex), Vec<CaseId>>;

/// The real pupil the scans look for. Seeds carry these values.
pub const REAL_FIRST: &str = "Åsa-Britt";
pub const REAL_LAST: &str = "Öberg";
pub const REAL_BIRTH: (i32, u32, u32) = (2012, 3, 4);
pub const REAL_SERIAL: u16 = 123;

pub struct Fixture {
    pub key: BlindKey,
    pub lookup: IndexMap,
    pub case: CaseId,
    /// Canonical (12 digits) real number.
    pub number: String,
    pub target: TargetName,
}

pub fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        // A fixed root key: runs are reproducible.
        let key = RootKey::from_base64("ZnV6ei1maWt0aXYtZnV6ei1maWt0aXYtZnV6ei0xMjM=")
            .unwrap()
            .blind_key()
            .unwrap();
        let birth = NaiveDate::from_ymd_opt(REAL_BIRTH.0, REAL_BIRTH.1, REAL_BIRTH.2).unwrap();
        let number = fiktiv_vault::ids::make_se_number(birth, REAL_SERIAL).unwrap();
        let case = CaseId::new();
        let mut lookup: IndexMap = HashMap::new();
        for (kind, text) in [
            (IndexKind::PersonalNumber, number.clone()),
            (IndexKind::FullName, full_name_key(REAL_FIRST, REAL_LAST)),
            (
                IndexKind::NameBirth,
                name_birth_key(REAL_FIRST, REAL_LAST, birth),
            ),
        ] {
            lookup
                .entry((kind, key.index(kind, &text)))
                .or_default()
                .push(case);
        }
        Fixture {
            key,
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
