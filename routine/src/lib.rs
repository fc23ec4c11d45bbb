//! The protected-pupil routine: one module per step. Every public operation takes the
//! [`Permit`] the handler got from the one [`fiktiv_policies::Authorizer`] and checks
//! it with [`Permit::require`]; every mutation is one transaction that also appends
//! its audit event, so a failed request changes nothing.
//!
//! Error messages are fixed text: they never echo an input value (a number, a name, a
//! date), because the input may be a child's real identity.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use fiktiv_policies::identity_rules::IdentityPolicy;
use fiktiv_policies::number_ranges::NumberPolicy;
use fiktiv_policies::retention::RetentionPolicy;
use fiktiv_policies::review::{ReviewPolicy, ReviewSettings};
use fiktiv_policies::{Country, Denied, Permit};
use fiktiv_vault::audit::{NewEvent, Outcome};
use fiktiv_vault::{CaseId, Vault, VaultError};
use serde::Serialize;
use sqlx::AnyConnection;
use utoipa::ToSchema;

pub mod access_report;
pub mod alerts;
pub mod audit_actions;
pub mod audit_trail;
pub mod case_requests;
pub mod cases;
pub mod cluster;
pub mod corrections;
pub mod counts;
pub mod decisions;
pub mod desired;
pub mod drafts;
pub mod end;
pub mod feed;
pub mod fictitious;
pub mod fictitious_changes;
pub mod guardians;
pub mod hub;
pub mod ids;
pub mod labels;
pub mod notices;
pub mod orders;
pub mod outbox;
pub mod plans;
pub mod registration;
pub mod reveal;
pub mod reviews;
pub mod runs;
pub mod staff;
pub mod staff_records;
pub mod target_records;
pub mod transfer;

/// Every control character (a line break, a carriage return or an escape echoed from
/// the file's source line) splits the text; the pieces are joined by single spaces.
pub fn one_line(s: &str) -> String {
    s.split(char::is_control)
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.chars().all(|c| c == '|' || c == '^' || c == ' '))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The rules the routine runs under, loaded once at startup from configuration and
/// policy files. Nothing here is hard-coded except the shipped defaults.
#[derive(Debug, Clone)]
pub struct Rules {
    pub numbers: NumberPolicy,
    pub retention: RetentionPolicy,
    pub review: ReviewSettings,
    pub identity: IdentityPolicy,
    /// The read window, from when the requester opens an approved reveal.
    pub reveal_ttl: TimeDelta,
    /// How long an approved reveal waits for the requester to open it.
    pub reveal_open_within: TimeDelta,
    /// How long a request to move or reopen a case waits for a decision.
    pub case_request_valid: TimeDelta,
    /// Requests to move or reopen a case one person may make in 24 hours.
    pub case_requests_per_day: u32,
}

impl Rules {
    pub fn review_policy(&self, country: Country) -> ReviewPolicy {
        // The settings were validated at startup (`ReviewSettings::from_toml` / load).
        self.review.policy_for(country).unwrap_or_default()
    }
}

/// Shared handle to the rules.
pub type SharedRules = Arc<Rules>;

/// One problem with one input field: stable code, fixed message, never the value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldProblem {
    /// JSON pointer-like name of the field, e.g. `first_name` or `guardian.real.birth_date`.
    pub field: String,
    /// Stable code, e.g. `name.control-character`.
    pub code: String,
    /// Fixed English text.
    pub message: String,
}

impl FieldProblem {
    pub fn new(field: impl Into<String>, code: &str, message: &str) -> Self {
        Self {
            field: field.into(),
            code: code.to_owned(),
            message: message.to_owned(),
        }
    }
}

/// Why a domain operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// The resource does not exist (or the caller may not know that it does).
    #[error("not found")]
    NotFound,
    /// The permit was for another action.
    #[error("not permitted")]
    Denied(#[from] Denied),
    /// Input failed validation.
    #[error("invalid input")]
    Invalid(Vec<FieldProblem>),
    /// The request is valid but not now: wrong order of the routine, duplicate, ...
    #[error("conflict: {code}")]
    Conflict {
        code: &'static str,
        message: &'static str,
    },
    /// The thing existed but is no longer available (an expired or used reveal).
    #[error("gone: {code}")]
    Gone {
        code: &'static str,
        message: &'static str,
    },
    /// A limit is reached (too many checks running, too many requests by one person):
    /// try again later. Decided in the domain, so the API and the web UI share it.
    #[error("busy: {code}")]
    Busy {
        code: &'static str,
        message: &'static str,
    },
    /// Something broke inside; logged, never shown.
    #[error("internal error: {0}")]
    Internal(String),
}

impl DomainError {
    pub fn invalid(field: &str, code: &str, message: &str) -> Self {
        Self::Invalid(vec![FieldProblem::new(field, code, message)])
    }

    pub const fn conflict(code: &'static str, message: &'static str) -> Self {
        Self::Conflict { code, message }
    }

    pub fn wrong_state() -> Self {
        Self::conflict(
            "wrong-state",
            "The case is not in a state where this step can be done.",
        )
    }
}

/// Marks an [`DomainError::Internal`] message: the database could not be reached (the
/// connection was lost, the pool timed out). The API answers `503 database-unavailable`.
pub const DATABASE_UNAVAILABLE: &str = "[database-unavailable] ";
/// Marks an [`DomainError::Internal`] message: the audit trail could not be written, so
/// the operation (which needs its audit event) was refused and rolled back. The API
/// answers `503 audit-unavailable`.
pub const AUDIT_UNAVAILABLE: &str = "[audit-unavailable] ";

/// Whether a database error means the connection is gone rather than a statement
/// failed: I/O, pool timeouts and closed pools, and PostgreSQL's connection-exception
/// (08xxx) and shutdown (57P01-57P03) classes.
pub fn is_connection_error(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(d) => d
            .code()
            .is_some_and(|c| c.starts_with("08") || matches!(&*c, "57P01" | "57P02" | "57P03")),
        _ => false,
    }
}

pub(crate) fn from_sql(e: &sqlx::Error, audit_write: bool) -> DomainError {
    let marker = if is_connection_error(e) {
        DATABASE_UNAVAILABLE
    } else if audit_write {
        AUDIT_UNAVAILABLE
    } else {
        ""
    };
    DomainError::Internal(format!("{marker}database: {e}"))
}

fn from_audit(e: fiktiv_vault::audit::AuditError) -> DomainError {
    use fiktiv_vault::audit::AuditError;
    match &e {
        AuditError::Write(s) => from_sql(s, true),
        AuditError::Read(s) => from_sql(s, false),
        AuditError::Invalid { .. } => DomainError::Internal(e.to_string()),
    }
}

impl From<VaultError> for DomainError {
    fn from(e: VaultError) -> Self {
        match e {
            VaultError::Audit(a) => from_audit(a),
            VaultError::Sql(s) => from_sql(&s, false),
            VaultError::Db(d) => d.into(),
            e => Self::Internal(e.to_string()),
        }
    }
}

impl From<sqlx::Error> for DomainError {
    fn from(e: sqlx::Error) -> Self {
        from_sql(&e, false)
    }
}

impl From<fiktiv_vault::DbError> for DomainError {
    fn from(e: fiktiv_vault::DbError) -> Self {
        match e {
            fiktiv_vault::DbError::Query(s) => from_sql(&s, false),
            // A write that waited its whole turn at SQLite's writer gate: the database is
            // overloaded or stuck, answered as unavailable (503), not as a bug.
            fiktiv_vault::DbError::Busy => {
                Self::Internal(format!("{DATABASE_UNAVAILABLE}database: {e}"))
            }
            e => Self::Internal(e.to_string()),
        }
    }
}

impl From<fiktiv_vault::audit::AuditError> for DomainError {
    fn from(e: fiktiv_vault::audit::AuditError) -> Self {
        from_audit(e)
    }
}

pub type DomainResult<T> = Result<T, DomainError>;

/// The time zone whose calendar a country's dates follow: school-year starts, review
/// due dates, "not in the future" checks and the day a case ends are all local dates.
pub fn time_zone(country: Country) -> chrono_tz::Tz {
    match country {
        Country::Se => chrono_tz::Europe::Stockholm,
        Country::No => chrono_tz::Europe::Oslo,
    }
}

/// The local date in `country` at the instant `at`.
pub fn local_date(at: DateTime<Utc>, country: Country) -> NaiveDate {
    at.with_timezone(&time_zone(country)).date_naive()
}

/// Today's date in `country`, from the vault's clock. Between 22:00 and 24:00 UTC in
/// summer (23:00 in winter) this is already the next day in Sweden and Norway.
pub fn today(vault: &Vault, country: Country) -> NaiveDate {
    local_date(vault.now(), country)
}

pub fn fmt_date(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

pub fn parse_date(s: &str) -> DomainResult<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| DomainError::Internal("stored date is malformed".into()))
}

/// Append the audit event of a permitted action in the caller's transaction.
pub async fn audit_ok(
    vault: &Vault,
    conn: &mut AnyConnection,
    permit: &Permit,
    case: Option<CaseId>,
    purpose: Option<&str>,
) -> DomainResult<()> {
    vault
        .audit(
            conn,
            &NewEvent {
                actor: permit.principal_id(),
                action: permit.action().as_str(),
                case_id: case,
                purpose,
                outcome: Outcome::Ok,
            },
        )
        .await?;
    Ok(())
}

/// Append the audit event of a permitted action that the domain refused (a duplicate,
/// for example), with `reason` as its purpose and outcome `denied`.
pub async fn audit_refused(
    vault: &Vault,
    conn: &mut AnyConnection,
    permit: &Permit,
    case: Option<CaseId>,
    reason: &str,
) -> DomainResult<()> {
    vault
        .audit(
            conn,
            &NewEvent {
                actor: permit.principal_id(),
                action: permit.action().as_str(),
                case_id: case,
                purpose: Some(reason),
                outcome: Outcome::Denied,
            },
        )
        .await?;
    Ok(())
}

/// The reason a correction is recorded with (kept with it and in the audit trail):
/// 1 to 500 characters, no personal identity number, no control characters. The
/// problem is reported on `reason`, with one code for every correction.
pub(crate) fn correction_reason(text: &str) -> Result<String, FieldProblem> {
    let reason = text.trim();
    if reason.is_empty()
        || reason.chars().count() > 500
        || fiktiv_vault::audit::check_purpose(reason).is_err()
    {
        return Err(FieldProblem::new(
            "reason",
            "correction.reason-invalid",
            "Write why, in 1 to 500 characters, without any personal identity number.",
        ));
    }
    Ok(reason.to_owned())
}

/// Serializes the transactions that check one limit and then write (count, then
/// insert): on SQLite the write transaction already holds the database's write lock
/// (`BEGIN IMMEDIATE`); on PostgreSQL a transaction-scoped advisory lock on `key` is
/// taken, so that two requests at once cannot both pass a limit of one.
pub async fn lock_limit(vault: &Vault, conn: &mut AnyConnection, key: i64) -> DomainResult<()> {
    if vault.db().backend() == fiktiv_vault::Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(key)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// The advisory-lock keys of [`lock_limit`].
pub const LIMIT_LOCK_RUNS: i64 = 0x4669_6b74_0001;
pub const LIMIT_LOCK_REVEALS: i64 = 0x4669_6b74_0002;
pub const LIMIT_LOCK_CASE_REQUESTS: i64 = 0x4669_6b74_0003;

/// Is this a unique-constraint violation (on either backend)?
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => d.is_unique_violation(),
        _ => false,
    }
}

/// Largest free-text field, in characters.
pub const MAX_TEXT_CHARS: usize = 4000;
/// Largest short label (unit code, group, platform, staff reference), in characters.
pub const MAX_LABEL_CHARS: usize = 64;
/// Most items in a list field.
pub const MAX_ITEMS: usize = 50;

/// A unit code: 1..=64 of `A-Z a-z 0-9 . _ -`. The same rule as everything that ends up
/// in an authorization entity id.
pub fn check_unit_code(field: &str, s: &str, out: &mut Vec<FieldProblem>) {
    if s.is_empty()
        || s.len() > MAX_LABEL_CHARS
        || !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        out.push(FieldProblem::new(
            field,
            "unit.invalid",
            "A unit code is 1 to 64 letters A-Z, digits, '.', '_' or '-'.",
        ));
    }
}

/// A short label (group, platform, staff reference): 1..=64 characters after trimming,
/// no control or invisible format characters, and no personal number in it.
pub fn check_label(field: &str, s: &str, out: &mut Vec<FieldProblem>) {
    let t = s.trim();
    if t.is_empty() || t.chars().count() > MAX_LABEL_CHARS {
        out.push(FieldProblem::new(
            field,
            "label.length",
            "A label is 1 to 64 characters.",
        ));
    } else if t.chars().any(|c| c.is_control() || is_format_char(c)) {
        out.push(FieldProblem::new(
            field,
            "label.control-character",
            "A label must not contain control or invisible characters.",
        ));
    } else if !fiktiv_vault::ids::number_candidates(t).is_empty() {
        out.push(FieldProblem::new(
            field,
            "label.personal-number",
            "A label must not contain a personal identity number.",
        ));
    }
}

/// A list of labels: at most [`MAX_ITEMS`], each a valid label, no duplicates.
pub fn check_labels(field: &str, items: &[String], out: &mut Vec<FieldProblem>) {
    if items.len() > MAX_ITEMS {
        out.push(FieldProblem::new(
            field,
            "list.too-long",
            "The list has too many items (at most 50).",
        ));
        return;
    }
    for (i, s) in items.iter().enumerate() {
        check_label(&format!("{field}[{i}]"), s, out);
    }
    let mut seen = std::collections::HashSet::new();
    if !items.iter().all(|s| seen.insert(s.trim())) {
        out.push(FieldProblem::new(
            field,
            "list.duplicate",
            "The list has the same item twice.",
        ));
    }
}

/// Free text (sealed plan text): at most [`MAX_TEXT_CHARS`], no control characters other
/// than line breaks and tabs, no invisible format characters.
pub fn check_free_text(field: &str, s: &str, out: &mut Vec<FieldProblem>) {
    if s.chars().count() > MAX_TEXT_CHARS {
        out.push(FieldProblem::new(
            field,
            "text.too-long",
            "The text is too long (at most 4000 characters).",
        ));
    } else if s
        .chars()
        .any(|c| (c.is_control() && !matches!(c, '\n' | '\t')) || is_format_char(c))
    {
        out.push(FieldProblem::new(
            field,
            "text.control-character",
            "The text must not contain control or invisible characters.",
        ));
    }
}

/// Bidi overrides, zero-width characters and similar invisible format characters.
fn is_format_char(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// A person's display name: the vault's rules, mapped to a field problem.
pub fn check_name(field: &str, s: &str, out: &mut Vec<FieldProblem>) {
    use fiktiv_vault::normalize::{validate_display_name, NameError};
    if let Err(e) = validate_display_name(s) {
        let code = match e {
            NameError::Empty => "name.empty",
            NameError::TooLong => "name.too-long",
            NameError::ControlCharacter => "name.control-character",
            NameError::DisallowedCharacter => "name.disallowed-character",
            NameError::NoLetter => "name.no-letter",
        };
        out.push(FieldProblem {
            field: field.to_owned(),
            code: code.to_owned(),
            message: e.to_string(),
        });
    }
}

/// A date given as `YYYY-MM-DD` text.
pub fn check_date(field: &str, s: &str, out: &mut Vec<FieldProblem>) -> Option<NaiveDate> {
    if s.len() == 10 {
        if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            return Some(d);
        }
    }
    out.push(FieldProblem::new(
        field,
        "date.invalid",
        "A date is written YYYY-MM-DD and must exist in the calendar.",
    ));
    None
}

/// Names folded part by part, the way the identity rules compare them: each part
/// (split at spaces and hyphens) folded like the vault's blind indexes.
pub fn fold_name_parts(s: &str) -> String {
    s.split(|c: char| c.is_whitespace() || c == '-' || c == '\u{2010}')
        .map(fiktiv_vault::normalize::normalize_name)
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn country_str(c: Country) -> &'static str {
    match c {
        Country::Se => "se",
        Country::No => "no",
    }
}

pub fn parse_country(s: &str) -> DomainResult<Country> {
    match s {
        "se" => Ok(Country::Se),
        "no" => Ok(Country::No),
        _ => Err(DomainError::Internal("stored country is malformed".into())),
    }
}

pub fn vault_country(c: Country) -> fiktiv_vault::ids::Country {
    match c {
        Country::Se => fiktiv_vault::ids::Country::Se,
        Country::No => fiktiv_vault::ids::Country::No,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use chrono::TimeZone;

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
    }

    fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn local_date_follows_the_country_time_zone_across_midnight_and_dst() {
        for c in [Country::Se, Country::No] {
            // Summer time (UTC+2): midnight local is 22:00 UTC.
            assert_eq!(local_date(utc(2026, 8, 14, 21, 59), c), ymd(2026, 8, 14));
            assert_eq!(local_date(utc(2026, 8, 14, 22, 0), c), ymd(2026, 8, 15));
            // Winter time (UTC+1): midnight local is 23:00 UTC.
            assert_eq!(local_date(utc(2026, 12, 31, 22, 59), c), ymd(2026, 12, 31));
            assert_eq!(local_date(utc(2026, 12, 31, 23, 0), c), ymd(2027, 1, 1));
            // The night summer time starts (29 March 2026) and ends (25 October 2026).
            assert_eq!(local_date(utc(2026, 3, 28, 22, 59), c), ymd(2026, 3, 28));
            assert_eq!(local_date(utc(2026, 3, 28, 23, 0), c), ymd(2026, 3, 29));
            assert_eq!(local_date(utc(2026, 10, 24, 21, 59), c), ymd(2026, 10, 24));
            assert_eq!(local_date(utc(2026, 10, 24, 22, 0), c), ymd(2026, 10, 25));
            assert_eq!(local_date(utc(2026, 10, 25, 22, 59), c), ymd(2026, 10, 25));
            assert_eq!(local_date(utc(2026, 10, 25, 23, 0), c), ymd(2026, 10, 26));
        }
        assert_eq!(time_zone(Country::Se), chrono_tz::Europe::Stockholm);
        assert_eq!(time_zone(Country::No), chrono_tz::Europe::Oslo);
    }
}
