//! The end-to-end tests of the test harness's peers and of the vault against them, in one test binary: each file of this folder is a module named as the binary
//! it used to be (`cargo test -p fiktiv-tests --test suite backup::` runs one of them).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

mod backup;
mod faultproxy;
mod layers;
mod peers;
mod vault_store;
