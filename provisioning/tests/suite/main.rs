//! The provisioning crate's tests, in one test binary (one link instead of one per
//! file): each file of this folder is a module named as the binary it used to be
//! (`cargo test -p fiktiv-provisioning --test suite guard::` runs one of them). The
//! helpers (`common`) and the corpus module (`leak_corpus`) stay beside this folder,
//! shared with the benchmarks.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

#[path = "../common/mod.rs"]
mod common;

mod fuzz_regressions;
mod guard;
mod ldap_batch;
mod ldap_slapd;
mod no_real_identity;
mod oneroster;
mod plan;
mod scim_server;
