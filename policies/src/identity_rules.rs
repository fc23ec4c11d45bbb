//! Checks on a proposed fictitious identity, compared with the real one.
//!
//! The school decides the fictitious first name, last name and birth date
//! (routine step 2, and step 3 for a linked guardian). They must not point
//! back to the real person. A shared surname links the pupil to their family.
//! A swapped first and last name is the real name. A real birth date
//! together with the school and class is often enough to find the child.
//!
//! The caller passes plain values. The names must already be *normalised*
//! by the caller: case folded, Unicode normalised, and with whatever
//! transliteration the vault uses for blind indexes. This crate compares
//! them as given and does not depend on the vault.
//!
//! A [`Violation`] has a stable code for the API and the UI, and a fixed
//! message. Neither ever holds a name or a date, so a violation can be
//! logged and shown without leaking what it was compared with. Even so, the
//! answer "equals the real name" could be used to probe the real name by
//! guessing. That is why writing the fictitious identity is in the
//! `real-identity-or-plan` group of the authorization policies.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::review::SchoolYearCalendar;

/// Plain name and birth-date values, already normalised by the caller.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct NameAndBirthDate<'a> {
    /// Normalised first name(s).
    pub first_name: &'a str,
    /// Normalised last name(s).
    pub last_name: &'a str,
    /// Birth date.
    pub birth_date: NaiveDate,
}

impl std::fmt::Debug for NameAndBirthDate<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // These may be real values: never print them.
        f.write_str("NameAndBirthDate([redacted])")
    }
}

/// How close the fictitious birth date must be to the real one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BirthDateRule {
    /// Same calendar year. Swedish and Norwegian pupils are placed in year
    /// groups by birth year, so this keeps the pupil in the right class.
    #[default]
    SameYear,
    /// Same school year (from one school-year start to the next, by the
    /// [`SchoolYearCalendar`]). For municipalities whose groups follow the
    /// school year rather than the calendar year.
    SameSchoolYear,
    /// Any date that is not in the future.
    Any,
}

/// The municipality's rules for fictitious identities, from configuration:
///
/// ```toml
/// birth_date = "same-year"        # or "same-school-year", "any"
/// allow_real_birth_date = false
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityPolicy {
    /// How close the fictitious birth date must be to the real one.
    pub birth_date: BirthDateRule,
    /// Whether the fictitious birth date may equal the real one. Off by
    /// default: the real birth date narrows the search for the child.
    pub allow_real_birth_date: bool,
}

impl IdentityPolicy {
    /// Parse from TOML, refusing unknown keys.
    pub fn from_toml(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }
}

/// One problem with a proposed fictitious identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Violation {
    /// The fictitious first name is empty.
    FirstNameEmpty,
    /// The fictitious last name is empty.
    LastNameEmpty,
    /// The fictitious first or last name equals the real one.
    NameEqualsReal,
    /// The fictitious first name is the real last name, or the other way round.
    NameSwapsReal,
    /// A part of a fictitious name (split at spaces and hyphens) equals a
    /// part of a real name.
    NameSharesPartWithReal,
    /// The fictitious birth date is after today.
    BirthDateInFuture,
    /// The fictitious birth date equals the real one.
    BirthDateEqualsReal,
    /// The fictitious birth year differs from the real one.
    BirthYearDiffers,
    /// The fictitious birth date is in another school year than the real one.
    BirthSchoolYearDiffers,
}

impl Violation {
    /// Stable code for the API, the UI and translations.
    pub const fn code(self) -> &'static str {
        match self {
            Violation::FirstNameEmpty => "fictitious.first-name-empty",
            Violation::LastNameEmpty => "fictitious.last-name-empty",
            Violation::NameEqualsReal => "fictitious.name-equals-real",
            Violation::NameSwapsReal => "fictitious.name-swaps-real",
            Violation::NameSharesPartWithReal => "fictitious.name-shares-part-with-real",
            Violation::BirthDateInFuture => "fictitious.birth-date-in-future",
            Violation::BirthDateEqualsReal => "fictitious.birth-date-equals-real",
            Violation::BirthYearDiffers => "fictitious.birth-year-differs",
            Violation::BirthSchoolYearDiffers => "fictitious.birth-school-year-differs",
        }
    }

    /// A fixed English message. It never contains a name or a date.
    pub const fn message(self) -> &'static str {
        match self {
            Violation::FirstNameEmpty => "The fictitious first name is empty.",
            Violation::LastNameEmpty => "The fictitious last name is empty.",
            Violation::NameEqualsReal => {
                "The fictitious first or last name is the same as the real one. Choose another name."
            }
            Violation::NameSwapsReal => {
                "The fictitious name reuses the real first and last names in swapped places."
            }
            Violation::NameSharesPartWithReal => {
                "A part of the fictitious name is the same as a part of the real name."
            }
            Violation::BirthDateInFuture => "The fictitious birth date is in the future.",
            Violation::BirthDateEqualsReal => {
                "The fictitious birth date is the same as the real one. Choose another date."
            }
            Violation::BirthYearDiffers => {
                "The fictitious birth date must be in the same year as the real one, so the \
                 pupil stays in the right year group."
            }
            Violation::BirthSchoolYearDiffers => {
                "The fictitious birth date must be in the same school year as the real one."
            }
        }
    }
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

impl Serialize for Violation {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Violation", 2)?;
        st.serialize_field("code", self.code())?;
        st.serialize_field("message", self.message())?;
        st.end()
    }
}

/// Checks fictitious identities against real ones under one policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IdentityRules {
    /// The policy.
    pub policy: IdentityPolicy,
    /// Used by [`BirthDateRule::SameSchoolYear`].
    pub calendar: SchoolYearCalendar,
}

impl IdentityRules {
    /// Rules from a policy and the school-year calendar of the country.
    pub fn new(policy: IdentityPolicy, calendar: SchoolYearCalendar) -> Self {
        Self { policy, calendar }
    }

    /// Every violation of `fictitious` against `real` on `today`, in a
    /// fixed order. Empty means acceptable.
    pub fn validate(
        &self,
        real: &NameAndBirthDate<'_>,
        fictitious: &NameAndBirthDate<'_>,
        today: NaiveDate,
    ) -> Vec<Violation> {
        let mut out = Vec::new();
        let (f_first, f_last) = (fictitious.first_name.trim(), fictitious.last_name.trim());
        let (r_first, r_last) = (real.first_name.trim(), real.last_name.trim());

        if f_first.is_empty() {
            out.push(Violation::FirstNameEmpty);
        }
        if f_last.is_empty() {
            out.push(Violation::LastNameEmpty);
        }
        let same = |a: &str, b: &str| !a.is_empty() && a == b;
        let equals = same(f_first, r_first) || same(f_last, r_last);
        let swaps = same(f_first, r_last) || same(f_last, r_first);
        if equals {
            out.push(Violation::NameEqualsReal);
        }
        if swaps {
            out.push(Violation::NameSwapsReal);
        }
        if !equals && !swaps {
            let real_parts: Vec<&str> = parts(r_first).chain(parts(r_last)).collect();
            if parts(f_first)
                .chain(parts(f_last))
                .any(|p| real_parts.contains(&p))
            {
                out.push(Violation::NameSharesPartWithReal);
            }
        }

        let f_date = fictitious.birth_date;
        if f_date > today {
            out.push(Violation::BirthDateInFuture);
        }
        if f_date == real.birth_date && !self.policy.allow_real_birth_date {
            out.push(Violation::BirthDateEqualsReal);
        }
        match self.policy.birth_date {
            BirthDateRule::SameYear if f_date.year() != real.birth_date.year() => {
                out.push(Violation::BirthYearDiffers);
            }
            BirthDateRule::SameSchoolYear
                if self.calendar.school_year_of(f_date)
                    != self.calendar.school_year_of(real.birth_date) =>
            {
                out.push(Violation::BirthSchoolYearDiffers);
            }
            _ => {}
        }
        out
    }
}

/// Name parts: split at whitespace and hyphens, empty parts dropped.
fn parts(name: &str) -> impl Iterator<Item = &str> {
    name.split(|c: char| c.is_whitespace() || c == '-')
        .filter(|p| !p.is_empty())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use proptest::prelude::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn who<'a>(first: &'a str, last: &'a str, born: NaiveDate) -> NameAndBirthDate<'a> {
        NameAndBirthDate {
            first_name: first,
            last_name: last,
            birth_date: born,
        }
    }

    const TODAY: (i32, u32, u32) = (2025, 3, 1);

    fn today() -> NaiveDate {
        d(TODAY.0, TODAY.1, TODAY.2)
    }

    fn check(real: NameAndBirthDate<'_>, fict: NameAndBirthDate<'_>) -> Vec<Violation> {
        IdentityRules::default().validate(&real, &fict, today())
    }

    #[test]
    fn a_good_identity_passes() {
        let real = who("astrid", "lindqvist", d(2015, 4, 2));
        assert!(check(real, who("maja", "berg", d(2015, 9, 20))).is_empty());
    }

    #[test]
    fn names_are_compared_in_every_way() {
        let born = d(2015, 4, 2);
        let real = who("astrid", "lindqvist", born);
        let f = d(2015, 9, 20);
        assert_eq!(
            check(real, who("astrid", "berg", f)),
            [Violation::NameEqualsReal]
        );
        assert_eq!(
            check(real, who("maja", "lindqvist", f)),
            [Violation::NameEqualsReal]
        );
        assert_eq!(
            check(real, who("lindqvist", "astrid", f)),
            [Violation::NameSwapsReal]
        );
        assert_eq!(
            check(real, who("maja", "berg-lindqvist", f)),
            [Violation::NameSharesPartWithReal]
        );
        assert_eq!(
            check(who("anna maria", "ek", born), who("maria", "berg", f)),
            [Violation::NameSharesPartWithReal]
        );
        assert_eq!(
            check(real, who("", " ", f)),
            [Violation::FirstNameEmpty, Violation::LastNameEmpty]
        );
        // Surrounding space does not hide an equal name.
        assert_eq!(
            check(real, who(" astrid ", "berg", f)),
            [Violation::NameEqualsReal]
        );
    }

    #[test]
    fn birth_dates() {
        let real = who("astrid", "lindqvist", d(2015, 4, 2));
        let named = |date| who("maja", "berg", date);
        assert_eq!(
            check(real, named(d(2015, 4, 2))),
            [Violation::BirthDateEqualsReal]
        );
        assert_eq!(
            check(real, named(d(2016, 1, 1))),
            [Violation::BirthYearDiffers]
        );
        assert_eq!(
            check(real, named(d(2014, 12, 31))),
            [Violation::BirthYearDiffers]
        );
        let adult = who("per", "holm", d(1985, 6, 1));
        assert_eq!(
            check(adult, who("ola", "dahl", d(2025, 3, 2))),
            [Violation::BirthDateInFuture, Violation::BirthYearDiffers]
        );
        assert!(check(adult, who("ola", "dahl", d(1985, 1, 1))).is_empty());
    }

    #[test]
    fn policy_options() {
        let real = who("astrid", "lindqvist", d(2015, 4, 2));
        let school_year = IdentityRules::new(
            IdentityPolicy::from_toml("birth_date = \"same-school-year\"").unwrap(),
            SchoolYearCalendar::default(),
        );
        // Same school year (15 Aug 2014 - 14 Aug 2015), other calendar year.
        assert!(school_year
            .validate(&real, &who("maja", "berg", d(2014, 9, 1)), today())
            .is_empty());
        assert_eq!(
            school_year.validate(&real, &who("maja", "berg", d(2015, 8, 15)), today()),
            [Violation::BirthSchoolYearDiffers]
        );
        let any = IdentityRules::new(
            IdentityPolicy::from_toml("birth_date = \"any\"\nallow_real_birth_date = true")
                .unwrap(),
            SchoolYearCalendar::default(),
        );
        assert!(any
            .validate(&real, &who("maja", "berg", d(2015, 4, 2)), today())
            .is_empty());
        assert!(any
            .validate(&real, &who("maja", "berg", d(2009, 1, 1)), today())
            .is_empty());
        assert_eq!(
            any.validate(&real, &who("maja", "berg", d(2026, 1, 1)), today()),
            [Violation::BirthDateInFuture]
        );
        assert!(IdentityPolicy::from_toml("birth_date = \"same-month\"").is_err());
        assert!(IdentityPolicy::from_toml("allow_real_birthdate = true").is_err());
        assert_eq!(
            IdentityPolicy::from_toml("").unwrap(),
            IdentityPolicy::default()
        );
    }

    #[test]
    fn codes_are_stable_and_unique() {
        let all = [
            Violation::FirstNameEmpty,
            Violation::LastNameEmpty,
            Violation::NameEqualsReal,
            Violation::NameSwapsReal,
            Violation::NameSharesPartWithReal,
            Violation::BirthDateInFuture,
            Violation::BirthDateEqualsReal,
            Violation::BirthYearDiffers,
            Violation::BirthSchoolYearDiffers,
        ];
        let codes: std::collections::BTreeSet<_> = all.iter().map(|v| v.code()).collect();
        assert_eq!(codes.len(), all.len());
        assert_eq!(
            Violation::NameEqualsReal.code(),
            "fictitious.name-equals-real"
        );
        for v in all {
            assert!(v.code().starts_with("fictitious."));
            assert!(!v.message().chars().any(|c| c.is_ascii_digit()), "{v:?}");
        }
        let json = serde_json::to_string(&Violation::NameSwapsReal).unwrap();
        assert_eq!(
            json,
            r#"{"code":"fictitious.name-swaps-real","message":"The fictitious name reuses the real first and last names in swapped places."}"#
        );
    }

    #[test]
    fn debug_never_prints_values() {
        let real = who("astrid", "lindqvist", d(2015, 4, 2));
        let printed = format!("{real:?}");
        assert!(
            !printed.contains("astrid") && !printed.contains("2015"),
            "{printed}"
        );
    }

    proptest! {
        #[test]
        fn output_never_echoes_input(
            first in "[a-zåäö]{1,12}", last in "[a-zåäö]{1,12}",
            f_first in "[a-zåäö]{0,12}", f_last in "[a-zåäö]{0,12}",
            y in 1950i32..2030, ord in 1u32..=365, fy in 1950i32..2030, ford in 1u32..=365,
        ) {
            let real = who(&first, &last, NaiveDate::from_yo_opt(y, ord).unwrap());
            let fict = who(&f_first, &f_last, NaiveDate::from_yo_opt(fy, ford).unwrap());
            for v in check(real, fict) {
                let shown = format!("{} {} {:?} {}", v.code(), v.message(), v, v);
                // Messages are fixed text: they cannot contain a value unless
                // that value is a word of the fixed text itself.
                prop_assert!(!shown.contains(&y.to_string()));
                prop_assert!(!shown.contains(&fy.to_string()));
                prop_assert!(Violation::code(v).is_ascii());
            }
        }

        #[test]
        fn equal_names_are_always_caught(first in "[a-z]{1,12}", last in "[a-z]{1,12}", other in "[a-z]{1,12}") {
            let born = d(2015, 4, 2);
            let real = who(&first, &last, born);
            let v = check(real, who(&first, &other, d(2015, 5, 5)));
            prop_assert!(v.contains(&Violation::NameEqualsReal));
            let v = check(real, who(&other, &last, d(2015, 5, 5)));
            prop_assert!(v.contains(&Violation::NameEqualsReal));
        }
    }
}
