//! A marked person, as Fiktiv keeps it in memory between the read and the vault:
//! names and numbers in wiping buffers, the hub's JSON of the person wiped.

use chrono::{DateTime, FixedOffset, NaiveDate};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::model::{Enrolment, Entity, Marking, Person, Text};

/// A person whose `securityMarking` is not `Ingen`. Nothing of it is written anywhere
/// in plaintext; what a case needs is sealed in the vault.
#[derive(Debug)]
pub struct MarkedPerson {
    pub id: Uuid,
    pub marking: Marking,
    pub given_name: Text,
    pub family_name: Text,
    pub birth_date: Option<NaiveDate>,
    /// `civicNo.value` as the hub wrote it.
    pub civic_no: Option<Text>,
    /// Every personal-number-shaped value anywhere else in the person's JSON (an
    /// external identifier, a principal name, a mail address), as canonical digits: a
    /// hub that files the number in the wrong attribute still links the right case.
    pub numbers_elsewhere: Vec<Zeroizing<String>>,
    pub enrolments: Vec<Enrolment>,
    pub responsibles: Vec<Uuid>,
    pub modified: DateTime<FixedOffset>,
}

/// A read person, marked or not.
#[derive(Debug)]
pub enum Sorted {
    Marked(MarkedPerson),
    Unmarked(Entity<Person>),
}

impl MarkedPerson {
    /// Sorts a read person: a marked one is taken apart (and its JSON wiped), any
    /// other is handed back as read.
    pub fn sort(e: Entity<Person>) -> Sorted {
        let marking = match e.value.security_marking {
            Some(m) if m.is_marked() => m,
            _ => return Sorted::Unmarked(e),
        };
        let Entity { value: p, raw } = e;
        // The hub's JSON of a marked person: scanned for numbers, then wiped.
        let raw: Box<str> = raw.into();
        let raw = Zeroizing::new(String::from(raw));
        let civic = p.civic_no.as_ref().map(|c| c.value.expose());
        let numbers_elsewhere = fiktiv_vault::ids::number_candidates(&raw)
            .into_iter()
            .filter(|n| civic != Some(n.as_str()))
            .collect();
        Sorted::Marked(Self {
            id: p.id,
            marking,
            given_name: p.given_name,
            family_name: p.family_name,
            birth_date: p.birth_date,
            civic_no: p.civic_no.map(|c| c.value),
            numbers_elsewhere,
            enrolments: p.enrolments,
            responsibles: p
                .responsibles
                .iter()
                .filter_map(|r| r.person)
                .map(|r| r.id)
                .collect(),
            modified: p.meta.modified,
        })
    }
}
