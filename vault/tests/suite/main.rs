//! The vault's property tests, in one test binary: each file of this folder is a module named as the binary
//! it used to be (`cargo test -p fiktiv-vault --test suite blind_props::` runs one of them).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

mod blind_props;
mod ids_props;
mod normalize_props;
mod seal_props;
