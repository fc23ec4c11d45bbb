//! Provisioning: targets (LDAP, SCIM, OneRoster CSV), desired state and plan, account
//! check, leak scan and egress guard.
//!
//! This crate never receives a real identity. Its inputs are [`FictitiousPerson`]
//! records, which hold nothing but fictitious data and have no conversion from the
//! vault's real-identity types; `tests/no_real_identity.rs` fails if any source file
//! here names one of them, and the `compile_fail` doctests in `doc/` show that one cannot
//! be passed where a fictitious record is expected.
//!
//! What it does use from the vault is the blind-index machinery: a clone of the
//! blind-index key, the set of blind indexes of every real identity (with the name-part
//! pre-filter, when the vault has every identity's tags), and the normalisation and
//! candidate scanners. With them the [`EgressGuard`] refuses any
//! outbound value that matches a real identity, and [`scan()`] finds real identities in
//! what the targets hold, comparing MACs locally.
//!
//! Code map:
//!
//! | module | what |
//! |---|---|
//! | [`model`] | `FictitiousPerson`, `PersonId`, school units, groups |
//! | [`record`] | `OutboundRecord` (what goes out), `ManagedEntry`, `ScannedEntry` (what comes back) |
//! | [`matching`] | the rules shared by guard and scan (`mod.rs`, the exact matcher); `RealIndexLookup`; `screen.rs`, the fast screen with the name-part pre-filter, `screen/value.rs`, what one value contributes (words, run tags, splits, dates), and `screen/memo.rs`, what a scan remembers across entries (per worker, and DN-like values shared by the workers); `tests.rs`, the property tests tying the two together |
//! | [`guard`] | `EgressGuard`, `Cleared`, `Blocked` |
//! | [`scan`](mod@scan) | `scan` (entries in memory), `PagedScan` and `read_and_scan` (matching each page while the next is read), `Finding`, per-case report |
//! | [`scan_page`] | `ScanPage`: a page for the scan, decoded entries or `LdapEntries` (LDAP search entries as received, decoded where they are matched) |
//! | [`plan`](mod@plan) | `plan`: create/update/disable/delete per target, safety check, grace period |
//! | [`target`] | the `Target` trait, `TargetError`, `push`, account check |
//! | [`diagnose`] | `fiktiv targets test`: one diagnosis per failed step |
//! | [`template`] | attribute templates (`{given}.{family}.{short_id}@skola.example`) |
//! | [`ldap`] | LDAP target (OpenLDAP, AD, Feide), [`ldap_parse`] for what it reads, and [`ldap_wire`], the leak scan's own reader of search results (bind, StartTLS, paged search; entries decoded into views of the received bytes) |
//! | [`scim`] | SCIM 2.0 target, and [`scim_parse`] for what it reads |
//! | [`oneroster`] | OneRoster 1.2 CSV folder target (the embedded default); `files.rs`, CSV and the atomic folder swap; `names.rs`, usernames made unique by the target's collision rule and the relations between users (`agentSourcedIds`) |

pub mod diagnose;
pub mod guard;
pub mod ldap;
pub mod ldap_parse;
pub mod ldap_wire;
pub mod matching;
pub mod model;
pub mod oneroster;
pub mod plan;
pub mod record;
pub mod scan;
pub mod scan_page;
pub mod scim;
pub mod scim_parse;
pub mod ss12000_scan;
pub mod target;
pub mod template;

pub use diagnose::{Diagnosis, Probe, Problem};
pub use guard::{Blocked, Cleared, EgressGuard};
pub use matching::{RealIndexLookup, Rule};
pub use model::{
    FictitiousNumber, FictitiousPerson, Group, GroupId, ModelError, PersonId, PersonKind,
    SchoolUnit, TargetName,
};
pub use plan::{plan, Action, Drift, Plan, PlanOptions, Refusal, TargetPlan};
pub use record::{ManagedEntry, OutboundGroup, OutboundRecord, Payload, ScannedEntry};
pub use scan::{
    read_and_scan, report, scan, CaseReport, CaseStatus, Finding, PagedScan, ScanReadError,
    TargetScan,
};
pub use scan_page::{LdapEntries, ScanPage};
pub use target::{
    check_account, compare_account, push, push_many, AccountCheck, Applied, Expect, ParseError,
    Target, TargetError,
};

/// The `compile_fail` examples: a real identity cannot stand in for a fictitious record.
#[cfg(doctest)]
#[doc = include_str!("../doc/no_real_identity.md")]
pub struct NoRealIdentityDoctests;
