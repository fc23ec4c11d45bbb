//! The parts of SS 12000 (API version 2.1.0) that Fiktiv reads, typed.
//!
//! Only what Fiktiv acts on is typed here; everything else an entity holds is kept as
//! the hub wrote it ([`Entity::raw`]) so that the feed can pass it through unchanged.
//! A person's names and numbers are held in [`Text`], which wipes itself on drop:
//! every person is read before Fiktiv knows whether the person is marked.

use std::fmt;

use chrono::{DateTime, FixedOffset, NaiveDate};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use uuid::Uuid;
use zeroize::Zeroizing;

/// A string from the hub that may be a protected person's name or number: wiped on
/// drop, never printed.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Text(Zeroizing<String>);

impl Text {
    pub fn new(s: &str) -> Self {
        Self(Zeroizing::new(s.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Text([redacted])")
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // The String serde made is moved, not copied, into the wiping buffer.
        Ok(Self(Zeroizing::new(String::deserialize(d)?)))
    }
}

/// `Code_SecurityMarking`: what the population register says of the person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum Marking {
    #[serde(rename = "Ingen")]
    None,
    #[serde(rename = "Sekretessmarkering")]
    Confidential,
    #[serde(rename = "Skyddad folkbokföring")]
    ProtectedRegistration,
}

impl Marking {
    /// The specification's code.
    pub fn code(self) -> &'static str {
        match self {
            Self::None => "Ingen",
            Self::Confidential => "Sekretessmarkering",
            Self::ProtectedRegistration => "Skyddad folkbokföring",
        }
    }

    pub fn is_marked(self) -> bool {
        self != Self::None
    }
}

/// `Meta`: when the hub created and last changed the entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Meta {
    pub created: DateTime<FixedOffset>,
    pub modified: DateTime<FixedOffset>,
}

/// `ObjectReference` (and its organisation, person, group and school-unit kinds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Reference {
    pub id: Uuid,
}

/// `Organisation`, the fields Fiktiv reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Organisation {
    pub id: Uuid,
    pub meta: Meta,
    pub display_name: String,
    pub organisation_type: String,
    pub organisation_code: Option<String>,
    pub school_unit_code: Option<String>,
    pub parent_organisation: Option<Reference>,
}

/// `Person_civicNo`.
#[derive(Debug, Clone, Deserialize)]
pub struct CivicNo {
    pub value: Text,
    pub nationality: Option<String>,
}

/// `Enrolment`, the fields Fiktiv reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Enrolment {
    pub enroled_at: Reference,
    pub school_year: Option<u8>,
    pub school_type: String,
    pub start_date: NaiveDate,
    pub end_date: Option<NaiveDate>,
    #[serde(default)]
    pub cancelled: bool,
}

/// `Person_responsibles_inner`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Responsible {
    pub person: Option<Reference>,
    pub relation_type: Option<String>,
}

/// `Person`, the fields Fiktiv reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Person {
    pub id: Uuid,
    pub meta: Meta,
    pub given_name: Text,
    pub middle_name: Option<Text>,
    pub family_name: Text,
    pub civic_no: Option<CivicNo>,
    pub birth_date: Option<NaiveDate>,
    pub security_marking: Option<Marking>,
    #[serde(default)]
    pub enrolments: Vec<Enrolment>,
    #[serde(default)]
    pub responsibles: Vec<Responsible>,
}

/// `GroupMembership`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupMembership {
    pub person: Reference,
    pub start_date: Option<NaiveDate>,
    pub end_date: Option<NaiveDate>,
}

/// `Group`, the fields Fiktiv reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    pub id: Uuid,
    pub meta: Meta,
    pub display_name: String,
    pub group_type: String,
    pub organisation: Reference,
    pub start_date: NaiveDate,
    pub end_date: Option<NaiveDate>,
    #[serde(default)]
    pub group_memberships: Vec<GroupMembership>,
}

/// `Duty`, the fields Fiktiv reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Duty {
    pub id: Uuid,
    pub meta: Meta,
    pub person: Option<Reference>,
    pub duty_at: Reference,
    pub duty_role: String,
    pub start_date: NaiveDate,
    pub end_date: Option<NaiveDate>,
}

/// `DutyAssignment`, the reference Fiktiv reads.
#[derive(Debug, Clone, Deserialize)]
pub struct DutyAssignment {
    pub duty: Reference,
}

/// `Activity`, the fields Fiktiv reads (it names groups and duties, never a person).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Activity {
    pub id: Uuid,
    pub meta: Meta,
    pub display_name: String,
    pub groups: Vec<Reference>,
    #[serde(default)]
    pub teachers: Vec<DutyAssignment>,
    pub organisation: Reference,
    pub start_date: NaiveDate,
}

/// One entity as read: what Fiktiv acts on, typed, and the hub's own JSON of it.
#[derive(Debug)]
pub struct Entity<T> {
    pub value: T,
    pub raw: Box<RawValue>,
}

/// What `/deletedEntities` said was removed, for the resources Fiktiv reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deleted {
    pub organisations: Vec<Uuid>,
    pub persons: Vec<Uuid>,
    pub groups: Vec<Uuid>,
    pub duties: Vec<Uuid>,
    pub activities: Vec<Uuid>,
}

impl Deleted {
    pub fn is_empty(&self) -> bool {
        self.organisations.is_empty()
            && self.persons.is_empty()
            && self.groups.is_empty()
            && self.duties.is_empty()
            && self.activities.is_empty()
    }
}
