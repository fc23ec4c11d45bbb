//! The one place for the helpers and fixtures of the service's tests, shared by the
//! suite (`suite/main.rs`) and the two binaries that must run alone
//! (`hardening_canary.rs`, `ops_logs.rs`):
//!
//! - `launch`: the one launcher of the `fiktiv` binary;
//! - `api`: the router called in-process (`Env`, `call`), the dates and numbers of the
//!   fixtures, `both_backends!`, and `Walk`, the one way through the routine;
//! - `web`: a real `fiktiv serve` and a real headless Chromium (`Server`, `Browser`);
//! - `pages`: the routine's pages in the browser, on top of `web` (the tour, LDAP
//!   targets, the printed plan);
//! - `provisioning`: real peers as targets and pupils walked through to registration;
//! - `ops`: older databases for the upgrade tests;
//! - `hardening`: the canary identities and the checks that they appear nowhere.
#![allow(dead_code, unused_imports, unused_macros)] // each binary uses a part

#[macro_use]
pub mod api;
pub mod hardening;
pub mod launch;
pub mod ops;
pub mod pages;
pub mod provisioning;
pub mod web;

/// Whether `needle` stands anywhere in `hay`. Tests search whole database files for
/// values that must not be there; memchr's `memmem` (built optimised, Cargo.toml) does
/// it in milliseconds, where comparing every window in a debug build took a minute.
pub fn bytes_contain(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && memchr::memmem::find(hay, needle).is_some()
}
