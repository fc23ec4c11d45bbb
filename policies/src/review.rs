//! When the yearly review of an action plan is due.
//!
//! Seed 004: the plan "ska utvärderas och uppdateras inför varje
//! läsårsstart" (is reviewed before every school year starts) and "följas
//! upp minst en gång per läsår" (at least once per school year).
//!
//! # The rule
//!
//! `next_due` is a school-year start, and the review must come *before* it:
//! from the first school day on, a missing review is `Overdue`.
//!
//! A review (or the opening of the case, when the plan is first written) on
//! day `d` prepares the first school year that starts after `d`, if `d` is
//! within the *preparation window* (default 90 days) before that start.
//! Then the next review is due before the start after that one. A review
//! held earlier in the school year (or on the first school day, which is
//! already late) does not prepare the next year, so the next review is due
//! before the next start.
//!
//! Examples with the default calendar (school starts 15 August):
//! - case opened 14 August 2024, the day before school starts: the plan was
//!   just written for this school year, so the next review is due before
//!   15 August 2025;
//! - review on 15 or 16 August 2024, after the start: due before
//!   15 August 2025;
//! - review on 1 March 2025, outside the window: still due before
//!   15 August 2025, and it shows as due soon from 16 July;
//! - review on 20 July 2025, inside the window: due before 15 August 2026.
//!
//! Consequences, enforced by [`ReviewPolicy::new`] and tested:
//! - recording a review always clears the status to `Ok` that day, because
//!   `due_soon_days <= prepare_window_days`;
//! - no school year is skipped: if each review is held before its due
//!   date, consecutive reviews lie in the same or adjacent school years,
//!   because `prepare_window_days < 365` and a review never prepares a start
//!   more than one school year ahead.
//!
//! Time is always passed in. This module never reads a clock.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::Country;

/// Default first day of the school year, month (Sweden and Norway).
pub const DEFAULT_START_MONTH: u32 = 8;
/// Default first day of the school year, day of month (Sweden and Norway).
/// Sweden's läsår and Norway's skoleår start in mid-August. Municipalities
/// set their own date, so configure it.
pub const DEFAULT_START_DAY: u32 = 15;
/// Default number of days before the due date when a review shows as due soon.
pub const DEFAULT_DUE_SOON_DAYS: u32 = 30;
/// Default number of days before a school-year start in which a review
/// counts as preparing that school year. 90 days reaches back to mid-May,
/// which covers reviews held before the summer break.
pub const DEFAULT_PREPARE_WINDOW_DAYS: u32 = 90;

/// A configuration value was out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReviewConfigError {
    /// The school-year start is not a day that exists every year.
    #[error(
        "school year start {month:02}-{day:02} is not a date that exists every year (29 February is refused)"
    )]
    BadStart {
        /// Month given.
        month: u32,
        /// Day given.
        day: u32,
    },
    /// The windows do not satisfy `due_soon_days <= prepare_window_days < 365`.
    #[error(
        "review windows must satisfy due_soon_days <= prepare_window_days <= 364 \
         (got due_soon_days = {due_soon_days}, prepare_window_days = {prepare_window_days})"
    )]
    BadWindows {
        /// Days before due when a review shows as due soon.
        due_soon_days: u32,
        /// Days before a start when a review counts for it.
        prepare_window_days: u32,
    },
    /// The TOML did not parse or had unknown keys.
    #[error("review settings: {0}")]
    Toml(String),
}

/// When the school year starts, as a month and day that exist every year.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawCalendar", into = "RawCalendar")]
pub struct SchoolYearCalendar {
    start_month: u32,
    start_day: u32,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCalendar {
    start_month: u32,
    start_day: u32,
}

impl TryFrom<RawCalendar> for SchoolYearCalendar {
    type Error = ReviewConfigError;
    fn try_from(raw: RawCalendar) -> Result<Self, Self::Error> {
        Self::new(raw.start_month, raw.start_day)
    }
}

impl From<SchoolYearCalendar> for RawCalendar {
    fn from(c: SchoolYearCalendar) -> Self {
        Self {
            start_month: c.start_month,
            start_day: c.start_day,
        }
    }
}

impl Default for SchoolYearCalendar {
    fn default() -> Self {
        Self {
            start_month: DEFAULT_START_MONTH,
            start_day: DEFAULT_START_DAY,
        }
    }
}

impl SchoolYearCalendar {
    /// A calendar whose school year starts on `month`-`day`. The date must
    /// exist in every year, so 29 February is refused.
    pub fn new(month: u32, day: u32) -> Result<Self, ReviewConfigError> {
        // 2023 is not a leap year: a date valid in 2023 is valid every year.
        if NaiveDate::from_ymd_opt(2023, month, day).is_none() {
            return Err(ReviewConfigError::BadStart { month, day });
        }
        Ok(Self {
            start_month: month,
            start_day: day,
        })
    }

    /// The default calendar for a country (15 August for both today).
    pub fn default_for(country: Country) -> Self {
        match country {
            Country::Se | Country::No => Self::default(),
        }
    }

    /// Month of the first school day.
    pub fn start_month(&self) -> u32 {
        self.start_month
    }

    /// Day of month of the first school day.
    pub fn start_day(&self) -> u32 {
        self.start_day
    }

    /// The first day of the school year that starts in `year`. Saturates at
    /// the last date chrono can represent (only past year 262,000).
    pub fn start_in(&self, year: i32) -> NaiveDate {
        NaiveDate::from_ymd_opt(year, self.start_month, self.start_day).unwrap_or(NaiveDate::MAX)
    }

    /// The calendar year in which the school year containing `date` started.
    pub fn school_year_of(&self, date: NaiveDate) -> i32 {
        if date >= self.start_in(date.year()) {
            date.year()
        } else {
            date.year() - 1
        }
    }

    /// The first school-year start strictly after `date`.
    pub fn next_start_after(&self, date: NaiveDate) -> NaiveDate {
        self.start_in(self.school_year_of(date).saturating_add(1))
    }
}

/// Review state of one case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReviewStatus {
    /// Nothing to do yet.
    Ok,
    /// The school year starts within the due-soon window. Remind.
    DueSoon,
    /// The school year has started without a review.
    Overdue,
}

/// Everything the overview page needs about one case's review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ReviewAssessment {
    /// The school-year start the next review must come before.
    pub next_due: NaiveDate,
    /// The status on the day asked about.
    pub status: ReviewStatus,
    /// Days from that day to `next_due`: zero or negative when overdue.
    pub days_until_due: i64,
}

/// The review rule for one country: calendar and windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReviewPolicy {
    calendar: SchoolYearCalendar,
    due_soon_days: u32,
    prepare_window_days: u32,
}

impl Default for ReviewPolicy {
    fn default() -> Self {
        Self {
            calendar: SchoolYearCalendar::default(),
            due_soon_days: DEFAULT_DUE_SOON_DAYS,
            prepare_window_days: DEFAULT_PREPARE_WINDOW_DAYS,
        }
    }
}

impl ReviewPolicy {
    /// A policy, checked so that `due_soon_days <= prepare_window_days <= 364`
    /// (see the module documentation for why).
    pub fn new(
        calendar: SchoolYearCalendar,
        due_soon_days: u32,
        prepare_window_days: u32,
    ) -> Result<Self, ReviewConfigError> {
        if due_soon_days > prepare_window_days || prepare_window_days > 364 {
            return Err(ReviewConfigError::BadWindows {
                due_soon_days,
                prepare_window_days,
            });
        }
        Ok(Self {
            calendar,
            due_soon_days,
            prepare_window_days,
        })
    }

    /// The calendar in use.
    pub fn calendar(&self) -> SchoolYearCalendar {
        self.calendar
    }

    /// Days before the due date when the status turns to `DueSoon`.
    pub fn due_soon_days(&self) -> u32 {
        self.due_soon_days
    }

    /// Days before a start in which a review counts for that start.
    pub fn prepare_window_days(&self) -> u32 {
        self.prepare_window_days
    }

    /// The school-year start that the next review must come before, given
    /// the date of the last review (or of the case opening, if there has
    /// been no review yet). A review on this date is already late.
    pub fn next_due(&self, last_review: NaiveDate) -> NaiveDate {
        let c = &self.calendar;
        let upcoming = c.next_start_after(last_review);
        let lead = (upcoming - last_review).num_days();
        if lead <= i64::from(self.prepare_window_days) {
            // The review prepared the upcoming school year.
            c.next_start_after(upcoming)
        } else {
            upcoming
        }
    }

    /// Status on `today`, given the last review (or case opening).
    pub fn status(&self, last_review: NaiveDate, today: NaiveDate) -> ReviewStatus {
        self.assess(last_review, today).status
    }

    /// Due date, status and days left on `today`.
    pub fn assess(&self, last_review: NaiveDate, today: NaiveDate) -> ReviewAssessment {
        let next_due = self.next_due(last_review);
        let days_until_due = (next_due - today).num_days();
        let status = if days_until_due <= 0 {
            ReviewStatus::Overdue
        } else if days_until_due <= i64::from(self.due_soon_days) {
            ReviewStatus::DueSoon
        } else {
            ReviewStatus::Ok
        };
        ReviewAssessment {
            next_due,
            status,
            days_until_due,
        }
    }
}

/// Review settings for both countries, as read from configuration:
///
/// ```toml
/// due_soon_days = 30
/// prepare_window_days = 90
///
/// [calendar.se]
/// start_month = 8
/// start_day = 15
///
/// [calendar.no]
/// start_month = 8
/// start_day = 15
/// ```
///
/// Every key is optional and falls back to the defaults above; unknown
/// keys are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReviewSettings {
    /// Days before due when a review shows as due soon.
    pub due_soon_days: u32,
    /// Days before a start in which a review counts for that start.
    pub prepare_window_days: u32,
    /// School-year calendars per country.
    pub calendar: Calendars,
}

/// School-year calendars per country.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Calendars {
    /// Sweden.
    pub se: SchoolYearCalendar,
    /// Norway.
    pub no: SchoolYearCalendar,
}

impl Default for Calendars {
    fn default() -> Self {
        Self {
            se: SchoolYearCalendar::default_for(Country::Se),
            no: SchoolYearCalendar::default_for(Country::No),
        }
    }
}

impl Default for ReviewSettings {
    fn default() -> Self {
        Self {
            due_soon_days: DEFAULT_DUE_SOON_DAYS,
            prepare_window_days: DEFAULT_PREPARE_WINDOW_DAYS,
            calendar: Calendars::default(),
        }
    }
}

impl ReviewSettings {
    /// Parse from TOML, refusing unknown keys and out-of-range values.
    pub fn from_toml(text: &str) -> Result<Self, ReviewConfigError> {
        let settings: Self =
            toml::from_str(text).map_err(|e| ReviewConfigError::Toml(e.to_string()))?;
        settings.policy_for(Country::Se)?;
        Ok(settings)
    }

    /// The checked policy for one country.
    pub fn policy_for(&self, country: Country) -> Result<ReviewPolicy, ReviewConfigError> {
        let calendar = match country {
            Country::Se => self.calendar.se,
            Country::No => self.calendar.no,
        };
        ReviewPolicy::new(calendar, self.due_soon_days, self.prepare_window_days)
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

    fn policy() -> ReviewPolicy {
        ReviewPolicy::default()
    }

    #[test]
    fn calendar_basics() {
        let c = SchoolYearCalendar::default();
        assert_eq!(c.start_in(2024), d(2024, 8, 15));
        assert_eq!(c.school_year_of(d(2024, 8, 14)), 2023);
        assert_eq!(c.school_year_of(d(2024, 8, 15)), 2024);
        assert_eq!(c.next_start_after(d(2024, 8, 14)), d(2024, 8, 15));
        assert_eq!(c.next_start_after(d(2024, 8, 15)), d(2025, 8, 15));
        assert_eq!(c.next_start_after(d(2024, 12, 31)), d(2025, 8, 15));
        assert!(SchoolYearCalendar::new(2, 29).is_err());
        assert!(SchoolYearCalendar::new(13, 1).is_err());
        assert!(SchoolYearCalendar::new(4, 31).is_err());
        assert!(SchoolYearCalendar::new(2, 28).is_ok());
    }

    #[test]
    fn the_documented_examples() {
        let p = policy();
        // Opened the day before school starts: this year's plan is fresh.
        assert_eq!(p.next_due(d(2024, 8, 14)), d(2025, 8, 15));
        // Reviewed on the first school day (already late for that start).
        assert_eq!(p.next_due(d(2024, 8, 15)), d(2025, 8, 15));
        // Reviewed the day after school started.
        assert_eq!(p.next_due(d(2024, 8, 16)), d(2025, 8, 15));
        // Reviewed in March: too early to prepare the next year.
        assert_eq!(p.next_due(d(2025, 3, 1)), d(2025, 8, 15));
        assert_eq!(p.status(d(2025, 3, 1), d(2025, 7, 15)), ReviewStatus::Ok);
        assert_eq!(
            p.status(d(2025, 3, 1), d(2025, 7, 16)),
            ReviewStatus::DueSoon
        );
        // Reviewed in the window before the start.
        assert_eq!(p.next_due(d(2025, 7, 20)), d(2026, 8, 15));
        // Exactly at the window edge (90 days before 15 Aug 2025 is 17 May).
        assert_eq!(p.next_due(d(2025, 5, 17)), d(2026, 8, 15));
        assert_eq!(p.next_due(d(2025, 5, 16)), d(2025, 8, 15));
    }

    #[test]
    fn case_opened_the_day_before_school_starts() {
        let p = policy();
        let opened = d(2024, 8, 14);
        // Not due, not overdue on the first school day or through the year.
        for today in [opened, d(2024, 8, 15), d(2025, 1, 10), d(2025, 7, 15)] {
            assert_eq!(p.status(opened, today), ReviewStatus::Ok, "{today}");
        }
        assert_eq!(p.status(opened, d(2025, 7, 16)), ReviewStatus::DueSoon);
        assert_eq!(p.status(opened, d(2025, 8, 14)), ReviewStatus::DueSoon);
        assert_eq!(p.status(opened, d(2025, 8, 15)), ReviewStatus::Overdue);
    }

    #[test]
    fn status_transitions() {
        let p = policy();
        let last = d(2024, 9, 1);
        assert_eq!(p.status(last, d(2024, 9, 1)), ReviewStatus::Ok);
        assert_eq!(p.status(last, d(2025, 7, 15)), ReviewStatus::Ok);
        assert_eq!(p.status(last, d(2025, 7, 16)), ReviewStatus::DueSoon);
        let a = p.assess(last, d(2025, 8, 14));
        assert_eq!((a.status, a.days_until_due), (ReviewStatus::DueSoon, 1));
        let a = p.assess(last, d(2025, 8, 15));
        assert_eq!((a.status, a.days_until_due), (ReviewStatus::Overdue, 0));
        let a = p.assess(last, d(2025, 8, 16));
        assert_eq!((a.status, a.days_until_due), (ReviewStatus::Overdue, -1));
        assert_eq!(p.status(last, d(2027, 1, 1)), ReviewStatus::Overdue);
        // A clock that is behind the last review does not make it overdue.
        assert_eq!(p.status(last, d(2024, 1, 1)), ReviewStatus::Ok);
    }

    #[test]
    fn several_school_years_with_reviews_at_different_times() {
        let p = policy();
        // A case opened in October 2021, reviewed each June, once forgotten.
        let mut last = d(2021, 10, 4);
        assert_eq!(p.next_due(last), d(2022, 8, 15));
        for (review_on, was, expected_next) in [
            (d(2022, 6, 10), ReviewStatus::Ok, d(2023, 8, 15)),
            (d(2023, 7, 30), ReviewStatus::DueSoon, d(2024, 8, 15)),
            // 2024: forgotten, done late in September.
            (d(2024, 9, 20), ReviewStatus::Overdue, d(2025, 8, 15)),
            (d(2025, 8, 1), ReviewStatus::DueSoon, d(2026, 8, 15)),
            (d(2026, 6, 1), ReviewStatus::Ok, d(2027, 8, 15)),
        ] {
            assert_eq!(
                p.status(last, review_on),
                was,
                "before the review on {review_on}"
            );
            last = review_on;
            assert_eq!(p.next_due(last), expected_next, "review on {review_on}");
            assert_eq!(p.status(last, review_on), ReviewStatus::Ok);
        }
    }

    #[test]
    fn leap_years() {
        let p = policy();
        // Reviewed on 29 February of a leap year: next start is August.
        assert_eq!(p.next_due(d(2024, 2, 29)), d(2024, 8, 15));
        // A calendar starting 1 March: the window and day counts cross 29 Feb.
        let march = ReviewPolicy::new(SchoolYearCalendar::new(3, 1).unwrap(), 30, 90).unwrap();
        assert_eq!(march.next_due(d(2024, 2, 29)), d(2025, 3, 1));
        assert_eq!(
            march.assess(d(2023, 3, 2), d(2024, 1, 31)).days_until_due,
            30
        );
        assert_eq!(
            march.status(d(2023, 3, 2), d(2024, 1, 31)),
            ReviewStatus::DueSoon
        );
        assert_eq!(
            march.status(d(2023, 3, 2), d(2024, 1, 30)),
            ReviewStatus::Ok
        );
    }

    #[test]
    fn norwegian_and_custom_calendars() {
        let s = ReviewSettings::from_toml(
            "due_soon_days = 14\nprepare_window_days = 60\n[calendar.no]\nstart_month = 8\nstart_day = 19\n",
        )
        .unwrap();
        let no = s.policy_for(Country::No).unwrap();
        let se = s.policy_for(Country::Se).unwrap();
        assert_eq!(no.next_due(d(2024, 10, 1)), d(2025, 8, 19));
        assert_eq!(se.next_due(d(2024, 10, 1)), d(2025, 8, 15));
        assert_eq!(
            no.status(d(2024, 10, 1), d(2025, 8, 5)),
            ReviewStatus::DueSoon
        );
        assert_eq!(no.status(d(2024, 10, 1), d(2025, 8, 4)), ReviewStatus::Ok);
    }

    #[test]
    fn settings_are_checked() {
        assert_eq!(
            ReviewSettings::from_toml("").unwrap(),
            ReviewSettings::default()
        );
        assert!(ReviewSettings::from_toml("due_soon = 3").is_err());
        assert!(
            ReviewSettings::from_toml("[calendar.se]\nstart_month = 2\nstart_day = 29").is_err()
        );
        assert!(ReviewSettings::from_toml("[calendar.se]\nstart_month = 8").is_err());
        assert!(ReviewSettings::from_toml("due_soon_days = 100").is_err());
        assert!(ReviewSettings::from_toml("prepare_window_days = 365").is_err());
        assert!(ReviewPolicy::new(SchoolYearCalendar::default(), 0, 0).is_ok());
    }

    fn any_date() -> impl Strategy<Value = NaiveDate> {
        (1990i32..2100, 1u32..=366).prop_map(|(y, ord)| {
            NaiveDate::from_yo_opt(y, ord)
                .unwrap_or_else(|| NaiveDate::from_yo_opt(y, 365).unwrap())
        })
    }

    fn any_policy() -> impl Strategy<Value = ReviewPolicy> {
        (1u32..=12, 1u32..=28, 0u32..=120, 0u32..=244).prop_map(|(m, day, soon, extra)| {
            ReviewPolicy::new(SchoolYearCalendar::new(m, day).unwrap(), soon, soon + extra).unwrap()
        })
    }

    proptest! {
        #[test]
        fn next_due_is_a_start_after_the_review(p in any_policy(), last in any_date()) {
            let due = p.next_due(last);
            prop_assert!(due > last);
            prop_assert_eq!(p.calendar().start_in(due.year()), due);
            // Never more than two school years ahead.
            prop_assert!((due - last).num_days() <= 731);
        }

        #[test]
        fn a_review_always_clears_the_status(p in any_policy(), last in any_date()) {
            prop_assert_eq!(p.status(last, last), ReviewStatus::Ok);
        }

        #[test]
        fn no_school_year_is_skipped(p in any_policy(), last in any_date()) {
            // The latest on-time review is the day before `next_due`: it lies
            // in the same or the next school year as the last review.
            let due = p.next_due(last);
            let c = p.calendar();
            let latest = due.pred_opt().unwrap();
            prop_assert!(c.school_year_of(latest) <= c.school_year_of(last) + 1);
            // Any start passed before `due` was prepared by `last`.
            let passed = c.next_start_after(last);
            if passed < due {
                prop_assert!((passed - last).num_days() <= i64::from(p.prepare_window_days()));
            }
        }

        #[test]
        fn status_only_worsens_with_time(p in any_policy(), last in any_date(), a in 0i64..800, b in 0i64..800) {
            let rank = |s| match s { ReviewStatus::Ok => 0, ReviewStatus::DueSoon => 1, ReviewStatus::Overdue => 2 };
            let (x, y) = (a.min(b), a.max(b));
            let sx = p.status(last, last + chrono::Days::new(x as u64));
            let sy = p.status(last, last + chrono::Days::new(y as u64));
            prop_assert!(rank(sx) <= rank(sy));
        }
    }
}
