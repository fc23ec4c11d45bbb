//! How long each class of record is kept after its case ends.
//!
//! Retention is policy, not code. The periods come from TOML, and the
//! default file is `policies/retention.default.toml`, compiled in as
//! [`DEFAULT_POLICY_TOML`]. Its values are placeholders that the
//! municipality's archivist must confirm. This module has no numbers of its
//! own.
//!
//! ```toml
//! [retention]
//! real_identity = "P90D"
//! action_plan = "P2Y"
//! audit_event = "permanent"
//! # ... every class must be listed
//! ```
//!
//! Shredding early is the failure that matters (unauthorised deletion is an
//! offence), so every rounding here goes towards keeping longer. When a
//! period ends on a day that does not exist (31 January + 1 month), it
//! moves to the next existing day (1 March). A date past the calendar's
//! range counts as permanent.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, Days, Months, NaiveDate};
use serde::{Deserialize, Serialize};

/// The shipped default policy file.
pub const DEFAULT_POLICY_TOML: &str = include_str!("../retention.default.toml");

/// A class of record with its own retention period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordClass {
    /// The sealed real identity of the pupil and any guardian, and the
    /// mapping to the fictitious identity.
    RealIdentity,
    /// The action plan (handlingsplan).
    ActionPlan,
    /// The fictitious identity: name, birth date, fictitious number.
    FictitiousIdentity,
    /// The decision on the digital user (fictitious login or no login).
    LoginDecision,
    /// The record of which staff were told about the plan, and when.
    StaffTold,
    /// A review outcome.
    Review,
    /// An order to the central administrator.
    Order,
    /// A reveal request and its decision.
    RevealRequest,
    /// An audit event.
    AuditEvent,
}

impl RecordClass {
    /// Every class. The policy file must list each of them.
    pub const ALL: [RecordClass; 9] = [
        RecordClass::RealIdentity,
        RecordClass::ActionPlan,
        RecordClass::FictitiousIdentity,
        RecordClass::LoginDecision,
        RecordClass::StaffTold,
        RecordClass::Review,
        RecordClass::Order,
        RecordClass::RevealRequest,
        RecordClass::AuditEvent,
    ];

    /// The key used in the policy file.
    pub const fn as_str(self) -> &'static str {
        match self {
            RecordClass::RealIdentity => "real_identity",
            RecordClass::ActionPlan => "action_plan",
            RecordClass::FictitiousIdentity => "fictitious_identity",
            RecordClass::LoginDecision => "login_decision",
            RecordClass::StaffTold => "staff_told",
            RecordClass::Review => "review",
            RecordClass::Order => "order",
            RecordClass::RevealRequest => "reveal_request",
            RecordClass::AuditEvent => "audit_event",
        }
    }
}

impl fmt::Display for RecordClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A retention policy could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetentionError {
    /// The TOML did not parse, had an unknown key, or lacked a class.
    #[error("retention policy: {0}")]
    Toml(String),
    /// A value is neither `"permanent"` nor a period like `"P2Y"`.
    #[error(
        "retention period `{0}` is not understood: use \"permanent\" or an ISO 8601 period \
         of years, months, weeks and days such as \"P2Y\", \"P90D\" or \"P1Y6M\""
    )]
    BadPeriod(String),
}

/// A calendar period: years, months and days (weeks are folded into days).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Period {
    years: u32,
    months: u32,
    days: u32,
}

impl Period {
    /// A period of whole years, months and days.
    pub const fn new(years: u32, months: u32, days: u32) -> Self {
        Self {
            years,
            months,
            days,
        }
    }

    /// `start` plus this period: years and months first, then days. If the
    /// day does not exist in the target month, the next existing day is
    /// used, so the period is never cut short. `None` past chrono's range.
    pub fn after(&self, start: NaiveDate) -> Option<NaiveDate> {
        let months = self.years.checked_mul(12)?.checked_add(self.months)?;
        let mut date = start.checked_add_months(Months::new(months))?;
        if date.day() < start.day() {
            // chrono clamped to the month's last day: roll to the 1st of the next month.
            date = date.succ_opt()?;
        }
        date.checked_add_days(Days::new(u64::from(self.days)))
    }
}

impl FromStr for Period {
    type Err = RetentionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || RetentionError::BadPeriod(s.to_owned());
        let rest = s.strip_prefix('P').ok_or_else(bad)?;
        if rest.is_empty() {
            return Err(bad());
        }
        let (mut years, mut months, mut days) = (0u32, 0u32, 0u32);
        let mut number = String::new();
        // Designators must come in this order, each at most once.
        let order = ['Y', 'M', 'W', 'D'];
        let mut next = 0;
        for ch in rest.chars() {
            if ch.is_ascii_digit() {
                number.push(ch);
                continue;
            }
            let pos = order[next..]
                .iter()
                .position(|&o| o == ch)
                .ok_or_else(bad)?;
            next += pos + 1;
            let n: u32 = number.parse().map_err(|_| bad())?;
            number.clear();
            match ch {
                'Y' => years = n,
                'M' => months = n,
                'W' => {
                    days = days
                        .checked_add(n.checked_mul(7).ok_or_else(bad)?)
                        .ok_or_else(bad)?
                }
                _ => days = days.checked_add(n).ok_or_else(bad)?,
            }
        }
        if !number.is_empty() {
            return Err(bad());
        }
        Ok(Self::new(years, months, days))
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("P")?;
        if self.years > 0 {
            write!(f, "{}Y", self.years)?;
        }
        if self.months > 0 {
            write!(f, "{}M", self.months)?;
        }
        if self.days > 0 || (self.years == 0 && self.months == 0) {
            write!(f, "{}D", self.days)?;
        }
        Ok(())
    }
}

/// How long one class is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Retention {
    /// Never shredded by Fiktiv.
    Permanent,
    /// Shredded once this period after the case ended has passed.
    For(Period),
}

impl FromStr for Retention {
    type Err = RetentionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "permanent" {
            Ok(Retention::Permanent)
        } else {
            s.parse().map(Retention::For)
        }
    }
}

impl fmt::Display for Retention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Retention::Permanent => f.write_str("permanent"),
            Retention::For(p) => p.fmt(f),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    retention: RawRetention,
}

/// One field per class, all required: a class left out is an error.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetention {
    real_identity: String,
    action_plan: String,
    fictitious_identity: String,
    login_decision: String,
    staff_told: String,
    review: String,
    order: String,
    reveal_request: String,
    audit_event: String,
}

/// The retention period of every record class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionPolicy {
    classes: BTreeMap<RecordClass, Retention>,
}

impl RetentionPolicy {
    /// Parse a policy file. Unknown keys, a missing class or an
    /// unreadable period are errors that name the key.
    pub fn from_toml(text: &str) -> Result<Self, RetentionError> {
        let raw: RawFile = toml::from_str(text).map_err(|e| RetentionError::Toml(e.to_string()))?;
        let r = raw.retention;
        let entries = [
            (RecordClass::RealIdentity, r.real_identity),
            (RecordClass::ActionPlan, r.action_plan),
            (RecordClass::FictitiousIdentity, r.fictitious_identity),
            (RecordClass::LoginDecision, r.login_decision),
            (RecordClass::StaffTold, r.staff_told),
            (RecordClass::Review, r.review),
            (RecordClass::Order, r.order),
            (RecordClass::RevealRequest, r.reveal_request),
            (RecordClass::AuditEvent, r.audit_event),
        ];
        let mut classes = BTreeMap::new();
        for (class, value) in entries {
            let retention = value.parse().map_err(|e: RetentionError| {
                RetentionError::Toml(format!("[retention] {class}: {e}"))
            })?;
            classes.insert(class, retention);
        }
        Ok(Self { classes })
    }

    /// The shipped default (`policies/retention.default.toml`).
    pub fn default_policy() -> Result<Self, RetentionError> {
        Self::from_toml(DEFAULT_POLICY_TOML)
    }

    /// How long `class` is kept. A class that is somehow absent is kept
    /// permanently, the safe side.
    pub fn retention(&self, class: RecordClass) -> Retention {
        self.classes
            .get(&class)
            .copied()
            .unwrap_or(Retention::Permanent)
    }

    /// The first day on which a record of `class`, whose case ended on
    /// `ended_on`, may be shredded. `None` means it is kept permanently.
    pub fn shred_after(&self, class: RecordClass, ended_on: NaiveDate) -> Option<NaiveDate> {
        match self.retention(class) {
            Retention::Permanent => None,
            Retention::For(period) => period.after(ended_on),
        }
    }

    /// `true` if the record is due for shredding on `today`.
    pub fn is_due(&self, class: RecordClass, ended_on: NaiveDate, today: NaiveDate) -> bool {
        self.shred_after(class, ended_on)
            .is_some_and(|date| today >= date)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use proptest::prelude::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn full(overrides: &[(&str, &str)]) -> String {
        let mut lines = vec!["[retention]".to_owned()];
        for class in RecordClass::ALL {
            let value = overrides
                .iter()
                .find(|(k, _)| *k == class.as_str())
                .map_or("P1Y", |(_, v)| v);
            lines.push(format!("{} = \"{value}\"", class.as_str()));
        }
        lines.join("\n")
    }

    #[test]
    fn the_default_file_loads_and_says_what_it_documents() {
        let p = RetentionPolicy::default_policy().unwrap();
        let ended = d(2025, 6, 13);
        assert_eq!(
            p.shred_after(RecordClass::RealIdentity, ended),
            Some(d(2025, 9, 11))
        );
        assert_eq!(
            p.shred_after(RecordClass::ActionPlan, ended),
            Some(d(2027, 6, 13))
        );
        assert_eq!(p.shred_after(RecordClass::AuditEvent, ended), None);
        assert_eq!(p.shred_after(RecordClass::RevealRequest, ended), None);
        // The real identity goes first: nothing else is shredded before it.
        for class in RecordClass::ALL {
            if let Some(date) = p.shred_after(class, ended) {
                assert!(date >= p.shred_after(RecordClass::RealIdentity, ended).unwrap());
            }
        }
    }

    #[test]
    fn periods_parse() {
        let ok = [
            ("P2Y", Period::new(2, 0, 0)),
            ("P90D", Period::new(0, 0, 90)),
            ("P1Y6M", Period::new(1, 6, 0)),
            ("P1Y2M3D", Period::new(1, 2, 3)),
            ("P2W", Period::new(0, 0, 14)),
            ("P1W3D", Period::new(0, 0, 10)),
            ("P0D", Period::new(0, 0, 0)),
        ];
        for (text, want) in ok {
            assert_eq!(text.parse::<Period>().unwrap(), want, "{text}");
        }
        for bad in [
            "",
            "P",
            "2Y",
            "p2y",
            "P2",
            "P2Y2Y",
            "PM",
            "P1D1Y",
            "PT1H",
            "P-1D",
            "P1.5Y",
            "P 2Y",
            "P99999999999D",
        ] {
            assert!(bad.parse::<Period>().is_err(), "{bad:?} should not parse");
        }
        assert_eq!(Period::new(2, 0, 0).to_string(), "P2Y");
        assert_eq!(Period::new(0, 0, 0).to_string(), "P0D");
        assert_eq!(
            "permanent".parse::<Retention>().unwrap(),
            Retention::Permanent
        );
        assert!("Permanent".parse::<Retention>().is_err());
    }

    #[test]
    fn never_shreds_early_at_month_ends() {
        let one_month = Period::new(0, 1, 0);
        assert_eq!(one_month.after(d(2025, 1, 31)), Some(d(2025, 3, 1)));
        assert_eq!(one_month.after(d(2024, 1, 31)), Some(d(2024, 3, 1)));
        assert_eq!(one_month.after(d(2024, 1, 29)), Some(d(2024, 2, 29)));
        let one_year = Period::new(1, 0, 0);
        assert_eq!(one_year.after(d(2024, 2, 29)), Some(d(2025, 3, 1)));
        assert_eq!(
            Period::new(4, 0, 0).after(d(2024, 2, 29)),
            Some(d(2028, 2, 29))
        );
        assert_eq!(
            Period::new(0, 0, 0).after(d(2024, 2, 29)),
            Some(d(2024, 2, 29))
        );
    }

    #[test]
    fn is_due_from_the_computed_day_on() {
        let p = RetentionPolicy::from_toml(&full(&[("order", "P30D")])).unwrap();
        let ended = d(2025, 1, 1);
        assert!(!p.is_due(RecordClass::Order, ended, d(2025, 1, 30)));
        assert!(p.is_due(RecordClass::Order, ended, d(2025, 1, 31)));
        let p = RetentionPolicy::from_toml(&full(&[("order", "permanent")])).unwrap();
        assert!(!p.is_due(RecordClass::Order, ended, d(9999, 1, 1)));
    }

    #[test]
    fn bad_files_are_refused_with_the_key_named() {
        // Missing class.
        let missing = full(&[]).replace("audit_event = \"P1Y\"", "");
        let err = RetentionPolicy::from_toml(&missing)
            .unwrap_err()
            .to_string();
        assert!(err.contains("audit_event"), "{err}");
        // Unknown key (a typo must not leave a class unset).
        let typo = format!("{}\nreal_identiy = \"P1D\"", full(&[]));
        let err = RetentionPolicy::from_toml(&typo).unwrap_err().to_string();
        assert!(err.contains("real_identiy"), "{err}");
        // Unknown table.
        assert!(RetentionPolicy::from_toml(&format!("{}\n[other]\nx = 1", full(&[]))).is_err());
        // Bad period.
        let err = RetentionPolicy::from_toml(&full(&[("review", "two years")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("review") && err.contains("two years"), "{err}");
        // A number instead of a string.
        assert!(RetentionPolicy::from_toml(&full(&[]).replace("\"P1Y\"", "730")).is_err());
    }

    #[test]
    fn past_the_calendar_is_permanent() {
        let p = RetentionPolicy::from_toml(&full(&[("order", "P300000Y")])).unwrap();
        assert_eq!(p.shred_after(RecordClass::Order, d(2025, 1, 1)), None);
    }

    proptest! {
        #[test]
        fn shred_date_is_never_before_the_full_period(
            y in 0u32..20, m in 0u32..24, days in 0u32..1000,
            ord in 1u32..=365, year in 2000i32..2100,
        ) {
            let start = NaiveDate::from_yo_opt(year, ord).unwrap();
            let end = Period::new(y, m, days).after(start).unwrap();
            // At least the whole months have passed...
            let months = y * 12 + m;
            let naive = start.checked_add_months(Months::new(months)).unwrap();
            prop_assert!(end >= naive + Days::new(u64::from(days)));
            // ...and at most one extra day was added for a missing date.
            prop_assert!(end <= naive + Days::new(u64::from(days) + 1));
            prop_assert!(end >= start);
        }
    }
}
