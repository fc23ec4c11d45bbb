//! Shared helpers for the integration tests: fictitious persons, a blind key, and
//! blind indexes of "real" test identities computed the way the vault computes them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)] // tests

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use fiktiv_provisioning::{
    EgressGuard, FictitiousPerson, Group, PersonId, PersonKind, SchoolUnit, TargetName,
};
use fiktiv_vault::blind::{BlindIndex, IndexKind};
use fiktiv_vault::identity::{full_name_key, RealIdentity, RealName};
use fiktiv_vault::ids::PersonalNumber;
use fiktiv_vault::keys::BlindKey;
use fiktiv_vault::normalize::name_birth_key;
use fiktiv_vault::{CaseId, RootKey};

pub fn key() -> BlindKey {
    RootKey::generate().blind_key().unwrap()
}

pub fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

pub fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 12, 0, 0).unwrap()
}

pub fn target(name: &str) -> TargetName {
    TargetName::new(name).unwrap()
}

/// A fictitious pupil in unit `skola-1`, class `5a`, on the given targets.
pub fn pupil(given: &str, family: &str, targets: &[&TargetName]) -> FictitiousPerson {
    let mut p = FictitiousPerson::new(
        PersonId::new(),
        PersonKind::Student,
        given,
        family,
        day(2015, 3, 14),
        SchoolUnit::new("skola-1", "Norrskolan").unwrap(),
    )
    .unwrap()
    .with_group(Group::new("skola-1-5a", "Klass 5A").unwrap());
    for t in targets {
        p = p.with_target((*t).clone());
    }
    p
}

/// A real pupil of the test: the values exist only in the test, as a vault would hold
/// them, and the index map is what `Vault::blind_index_set` would give.
pub struct RealPupil {
    pub case: CaseId,
    pub first: &'static str,
    pub last: &'static str,
    pub birth: NaiveDate,
    pub number: String,
}

impl RealPupil {
    pub fn new(first: &'static str, last: &'static str, birth: NaiveDate, serial: u16) -> Self {
        Self {
            case: CaseId::new(),
            first,
            last,
            birth,
            number: fiktiv_vault::ids::make_se_number(birth, serial).unwrap(),
        }
    }

    /// The indexes the vault keeps of this pupil: exactly `RealIdentity::blind_indexes`
    /// (the number; the full name, name + birth date and initial + family + birth date
    /// in every spelling; unused slots padded).
    pub fn indexes(&self, key: &BlindKey) -> Vec<((IndexKind, BlindIndex), CaseId)> {
        let who = RealIdentity {
            number: PersonalNumber::parse(&self.number, NaiveDate::MAX).unwrap(),
            first_name: RealName::new(self.first),
            last_name: RealName::new(self.last),
            birth_date: self.birth,
        };
        let out: Vec<_> = who
            .blind_indexes(key, &format!("{}/pupil", self.case))
            .into_iter()
            .map(|i| (i, self.case))
            .collect();
        // The first spellings are the plain keys.
        debug_assert_eq!(
            out[1].0 .1,
            key.index(IndexKind::FullName, &full_name_key(self.first, self.last))
        );
        debug_assert_eq!(
            out[2].0 .1,
            key.index(
                IndexKind::NameBirth,
                &name_birth_key(self.first, self.last, self.birth)
            )
        );
        out
    }

    /// `YYMMDD-NNNC`
    pub fn short_form(&self) -> String {
        format!("{}-{}", &self.number[2..8], &self.number[8..])
    }
}

pub type IndexMap = HashMap<(IndexKind, BlindIndex), Vec<CaseId>>;

pub fn index_map(key: &BlindKey, pupils: &[&RealPupil]) -> IndexMap {
    let mut m: IndexMap = HashMap::new();
    for p in pupils {
        for (k, c) in p.indexes(key) {
            m.entry(k).or_default().push(c);
        }
    }
    m
}

pub fn guard(key: &BlindKey, pupils: &[&RealPupil]) -> EgressGuard {
    EgressGuard::new(key.clone(), index_map(key, pupils))
}

/// The default real pupil of the tests.
pub fn astrid() -> RealPupil {
    RealPupil::new("Åsa-Britt", "Öberg", day(2012, 3, 4), 123)
}
