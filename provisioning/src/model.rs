//! The records this crate works on. All of them are fictitious: nothing here can hold a
//! real identity, and there is no conversion from the vault's real-identity types.

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;
use fiktiv_vault::ids::{is_synthetic_no, Country};
use serde::{Deserialize, Serialize};

/// Why a record could not be built. Messages are fixed text and never contain the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    #[error("an identifier is empty, too long or has characters outside [A-Za-z0-9._-]")]
    BadId,
    #[error("a name is empty, too long or contains control characters")]
    BadName,
    #[error("a fictitious number is not in canonical form for its country")]
    BadNumber,
    #[error("a Norwegian fictitious number must be synthetic (month + 80)")]
    NotSynthetic,
    #[error("a person id is not an opaque id of the expected form")]
    BadPersonId,
}

/// The opaque id of a fictitious person. It is what targets see as `externalId`,
/// the id attribute of an LDAP entry and the OneRoster `sourcedId`; it says nothing
/// about the person. Random, never derived from any identity.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PersonId(uuid::Uuid);

impl PersonId {
    #[allow(clippy::new_without_default)] // a new id is random; Default would hide that
    pub fn new() -> Self {
        Self(uuid::Uuid::new_v4())
    }

    pub fn from_uuid(id: uuid::Uuid) -> Self {
        Self(id)
    }

    pub fn as_uuid(&self) -> &uuid::Uuid {
        &self.0
    }

    /// The first eight hex digits, for templates such as `{given}.{family}.{short_id}`.
    pub fn short(&self) -> String {
        let mut s = self.0.simple().to_string();
        s.truncate(8);
        s
    }
}

impl fmt::Display for PersonId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl fmt::Debug for PersonId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PersonId({})", self.0.hyphenated())
    }
}

impl FromStr for PersonId {
    type Err = ModelError;
    /// Only the hyphenated lowercase form is accepted, so that one id has one spelling.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let id = uuid::Uuid::parse_str(s).map_err(|_| ModelError::BadPersonId)?;
        if id.hyphenated().to_string() != s {
            return Err(ModelError::BadPersonId);
        }
        Ok(Self(id))
    }
}

impl TryFrom<String> for PersonId {
    type Error = ModelError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<PersonId> for String {
    fn from(p: PersonId) -> String {
        p.to_string()
    }
}

fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

macro_rules! id_type {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// 1..=64 characters of `[A-Za-z0-9._-]`.
            pub fn new(s: &str) -> Result<Self, ModelError> {
                if valid_id(s) {
                    Ok(Self(s.to_string()))
                } else {
                    Err(ModelError::BadId)
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = ModelError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::new(&s)
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }
    };
}

id_type!(
    /// The configured name of a target (`ldap-main`, `scim-lms`, `oneroster`).
    TargetName
);
id_type!(
    /// The id of a school unit or a group/class: also the LDAP group `cn`, the SCIM
    /// group `externalId` and the OneRoster `sourcedId` of the org or class.
    GroupId
);

/// A display name of a fictitious person, school unit or class: 1..=128 characters,
/// no control characters. Plain text, because it is fictitious.
fn check_name(s: &str) -> Result<String, ModelError> {
    let t = s.trim();
    if t.is_empty() || t.chars().count() > 128 || t.chars().any(char::is_control) {
        return Err(ModelError::BadName);
    }
    Ok(t.to_string())
}

/// A school unit (skolenhet / skole).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SchoolUnit {
    pub id: GroupId,
    pub name: String,
}

impl SchoolUnit {
    pub fn new(id: &str, name: &str) -> Result<Self, ModelError> {
        Ok(Self {
            id: GroupId::new(id)?,
            name: check_name(name)?,
        })
    }
}

/// A class or teaching group the person belongs to, within the school unit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Group {
    pub id: GroupId,
    pub name: String,
}

impl Group {
    pub fn new(id: &str, name: &str) -> Result<Self, ModelError> {
        Ok(Self {
            id: GroupId::new(id)?,
            name: check_name(name)?,
        })
    }
}

/// Pupil or guardian.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PersonKind {
    Student,
    Guardian,
}

/// A fictitious personal number: the country and the canonical digits (SE 12, NO 11).
/// A Norwegian one must be synthetic (month + 80), which no real person has. A Swedish
/// one may be the temporary form SS 12000 allows in `civicNo`: the date, two capital
/// letters, two digits (`20130101TF01`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FictitiousNumber {
    country: Country,
    canonical: String,
}

impl FictitiousNumber {
    pub fn new(country: Country, canonical: &str) -> Result<Self, ModelError> {
        let want = match country {
            Country::Se => 12,
            Country::No => 11,
        };
        let b = canonical.as_bytes();
        let digits =
            |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
        let shaped = b.len() == want
            && (digits(0..want)
                || (country == Country::Se
                    && digits(0..8)
                    && b.get(8..10)
                        .is_some_and(|l| l.iter().all(u8::is_ascii_uppercase))
                    && digits(10..12)));
        if !shaped {
            return Err(ModelError::BadNumber);
        }
        if country == Country::No && !is_synthetic_no(canonical) {
            return Err(ModelError::NotSynthetic);
        }
        Ok(Self {
            country,
            canonical: canonical.to_string(),
        })
    }

    pub fn country(&self) -> Country {
        self.country
    }

    pub fn canonical(&self) -> &str {
        &self.canonical
    }
}

/// A fictitious person as provisioning sees it: everything a target may receive and
/// nothing else. Plain data; serialisable, because none of it is real.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FictitiousPerson {
    pub id: PersonId,
    pub kind: PersonKind,
    pub given_name: String,
    pub family_name: String,
    pub birth_date: NaiveDate,
    pub number: Option<FictitiousNumber>,
    pub school_unit: SchoolUnit,
    /// Classes and groups within the school unit.
    pub groups: Vec<Group>,
    /// The targets this person gets an account in.
    pub targets: Vec<TargetName>,
    /// The persons this one is related to: for a pupil its guardians, for a guardian
    /// its pupil (the OneRoster `agentSourcedIds`). Opaque ids only. Absent in records
    /// written before relations existed, hence the default.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agents: Vec<PersonId>,
    /// A pupil's school year (årskurs: 0 for förskoleklass, 1 to 13), when the school
    /// administration system gives one; rosters carry it as they carry any pupil's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grade: Option<u8>,
}

impl FictitiousPerson {
    /// A person with checked names and no groups, number or targets yet.
    pub fn new(
        id: PersonId,
        kind: PersonKind,
        given_name: &str,
        family_name: &str,
        birth_date: NaiveDate,
        school_unit: SchoolUnit,
    ) -> Result<Self, ModelError> {
        Ok(Self {
            id,
            kind,
            given_name: check_name(given_name)?,
            family_name: check_name(family_name)?,
            birth_date,
            number: None,
            school_unit,
            groups: Vec::new(),
            targets: Vec::new(),
            agents: Vec::new(),
            grade: None,
        })
    }

    /// The pupil's school year; a value outside 0 to 13 is not a school year and is left
    /// out.
    pub fn with_grade(mut self, grade: u8) -> Self {
        self.grade = (grade <= 13).then_some(grade);
        self
    }

    pub fn with_number(mut self, number: FictitiousNumber) -> Self {
        self.number = Some(number);
        self
    }

    pub fn with_group(mut self, group: Group) -> Self {
        self.groups.push(group);
        self
    }

    pub fn with_target(mut self, target: TargetName) -> Self {
        self.targets.push(target);
        self
    }

    /// Adds a related person (a pupil's guardian, a guardian's pupil). The person itself
    /// and an id already present are not added again.
    pub fn with_agent(mut self, agent: PersonId) -> Self {
        if agent != self.id && !self.agents.contains(&agent) {
            self.agents.push(agent);
        }
        self
    }

    /// The ids of every group the person is expected in: the school unit and each class.
    pub fn expected_groups(&self) -> std::collections::BTreeSet<GroupId> {
        std::iter::once(self.school_unit.id.clone())
            .chain(self.groups.iter().map(|g| g.id.clone()))
            .collect()
    }

    /// Checks names and ids again (for records that came in through `Deserialize`).
    pub fn validate(&self) -> Result<(), ModelError> {
        check_name(&self.given_name)?;
        check_name(&self.family_name)?;
        check_name(&self.school_unit.name)?;
        for g in &self.groups {
            check_name(&g.name)?;
        }
        if let Some(n) = &self.number {
            FictitiousNumber::new(n.country, &n.canonical)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn person_id_has_one_spelling() {
        let id = PersonId::new();
        assert_eq!(id.to_string().parse::<PersonId>().unwrap(), id);
        assert!(id.to_string().to_uppercase().parse::<PersonId>().is_err());
        assert!(id
            .as_uuid()
            .simple()
            .to_string()
            .parse::<PersonId>()
            .is_err());
        assert_eq!(id.short().len(), 8);
    }

    #[test]
    fn ids_and_numbers_are_checked() {
        assert!(GroupId::new("skola-1.5a_x").is_ok());
        assert_eq!(GroupId::new("a,b"), Err(ModelError::BadId));
        assert_eq!(GroupId::new(""), Err(ModelError::BadId));
        assert!(FictitiousNumber::new(Country::Se, "201203041234").is_ok());
        // The SS 12000 temporary form, Swedish only, letters only in positions 9-10.
        assert!(FictitiousNumber::new(Country::Se, "20130101TF01").is_ok());
        for bad in [
            "20130101tf01",
            "2013010TF012",
            "20130101TF0A",
            "2013010ATF01",
        ] {
            assert!(FictitiousNumber::new(Country::Se, bad).is_err(), "{bad}");
        }
        assert!(FictitiousNumber::new(Country::No, "0403121TF01").is_err());
        assert_eq!(
            FictitiousNumber::new(Country::Se, "1203041234"),
            Err(ModelError::BadNumber)
        );
        // A real-range Norwegian number (month 03) is refused; month 83 is synthetic.
        assert_eq!(
            FictitiousNumber::new(Country::No, "04031212345"),
            Err(ModelError::NotSynthetic)
        );
        assert!(FictitiousNumber::new(Country::No, "04831212345").is_ok());
    }

    #[test]
    fn serialises_without_surprises() {
        let p = FictitiousPerson::new(
            PersonId::new(),
            PersonKind::Student,
            "Ella",
            "Fiktiv",
            NaiveDate::from_ymd_opt(2015, 3, 14).unwrap(),
            SchoolUnit::new("skola-1", "Skola 1").unwrap(),
        )
        .unwrap();
        let json = serde_json::to_string(&p).unwrap();
        let back: FictitiousPerson = serde_json::from_str(&json).unwrap();
        assert_eq!(back, p);
        // A record written before relations existed reads as one without them; one with
        // a relation keeps it.
        assert!(!json.contains("agents"), "{json}");
        let guardian = PersonId::new();
        let related = p
            .clone()
            .with_agent(guardian)
            .with_agent(guardian)
            .with_agent(p.id);
        assert_eq!(related.agents, vec![guardian]);
        let json = serde_json::to_string(&related).unwrap();
        assert_eq!(
            serde_json::from_str::<FictitiousPerson>(&json).unwrap(),
            related
        );
        assert!(FictitiousPerson::new(
            PersonId::new(),
            PersonKind::Student,
            "a\u{7}b",
            "x",
            NaiveDate::MIN,
            p.school_unit.clone()
        )
        .is_err());
    }
}
