//! Staff identity: who a member of the municipality's staff is, and how they prove it.
//!
//! | module | what it holds |
//! |---|---|
//! | [`principal`] | the one name rule and principal (`staff:<name>`) of accounts and tokens |
//! | [`accounts`] | web UI accounts: Argon2id passwords, TOTP enrolment, lockout, roles and units |
//! | [`totp`] | the second factor (RFC 6238) |
//! | [`session`] | web UI sessions: idle and absolute lifetimes, rotation, step-up |
//! | [`tokens`] | API bearer tokens (only a SHA-256 of each is stored) |
//! | [`oidc`], [`oidc_accounts`], [`oidc_config`] | sign-in through one OpenID provider |
//!
//! Transport-free: the web UI and the API (`fiktiv::web`, `fiktiv::http`) turn requests
//! into calls here. Every change is audited in the transaction that makes it.

pub mod accounts;
pub mod oidc;
pub mod oidc_accounts;
pub mod oidc_config;
pub mod principal;
pub mod session;
pub mod tokens;
pub mod totp;
