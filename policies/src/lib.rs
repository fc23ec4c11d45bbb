//! # fiktiv-policies
//!
//! Who may do what in Fiktiv, and the rules that decide dates and values.
//! Nothing in this crate touches a real identity, a database or a clock.
//!
//! Fiktiv gives pupils with protected personal data (Swedish
//! *sekretessmarkering* / *skyddad folkbokföring*, Norwegian *fortrolig* /
//! *strengt fortrolig adresse*) a fictitious identity. One wrong permission
//! can tell someone where a child is, so this crate is built to fail closed.
//!
//! ## Authorization ([`authz`])
//!
//! All authorization is decided here, from Cedar policy files
//! (`policies/cedar/*.cedar`, validated against
//! `policies/cedar/schema.cedarschema`). Anything the policies do not
//! permit is denied. Handlers do not decide anything themselves. They call
//! [`Authorizer::authorize`], and the [`Permit`] it returns is the only way
//! into a domain operation: a `Permit` cannot be built outside this crate,
//! and a domain function checks it with [`Permit::require`]. This follows
//! lldap's capability types.
//!
//! When policies load, the [`Authorizer`] also probes them for the
//! properties that must never break. If any of these fails, loading fails:
//! - the central administrator and the auditor never read a real identity
//!   or an action plan;
//! - a school never reaches another unit's case;
//! - nobody approves their own reveal request;
//! - a revealed identity goes only to the person who requested it;
//! - a person with no role can do nothing.
//!
//! ## Pure rules
//!
//! Time is always passed in as a [`chrono::NaiveDate`]. These modules never
//! read a clock.
//! - [`review`]: when the yearly review of the action plan is due (before
//!   each school year starts, at least once per school year), and whether it
//!   is `Ok`, `DueSoon` or `Overdue`.
//! - [`retention`]: how long each record class is kept after a case ends.
//!   This comes from TOML; `policies/retention.default.toml` is the default.
//! - [`identity_rules`]: checks a proposed fictitious identity against the
//!   real one. Violations have stable codes, and their messages never echo
//!   a name or a date.
//! - [`number_ranges`]: which final digits the central administrator may
//!   give a fictitious Swedish or Norwegian number, so that it can never
//!   equal a real person's number.
//!
//! ## Deliberately absent
//!
//! There is no dependency on the vault, and there are no real-identity
//! types. Callers pass plain, already normalised values. No function here
//! logs, formats or returns a name, a birth date or a personal number.

pub mod authz;
pub mod identity_rules;
pub mod number_ranges;
pub mod retention;
pub mod review;

pub use authz::{
    Action, Authorizer, Denied, Permit, PolicyLoadError, Principal, Resource, Role, UnknownName,
};

use serde::{Deserialize, Serialize};

/// The country whose rules apply (school calendar, number format).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Country {
    /// Sweden.
    Se,
    /// Norway.
    No,
}
