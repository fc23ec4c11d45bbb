//! The service's tests, in one test binary (one link of the service instead of one per
//! file): each file of this folder is a module named as the binary it used to be
//! (`cargo test -p fiktiv --test suite api_routine::` runs one of them). The helpers
//! and fixtures are in one place beside this folder (`../support/`), shared with the two
//! binaries that must run alone: `hardening_canary` (installs the panic hook) and `ops_logs` (captures the
//! process's log output).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

#[macro_use]
#[path = "../support/mod.rs"]
mod support;

mod api_authz;
mod api_hostile;
mod api_openapi;
mod api_routine;
mod api_routine_more;
mod api_tokens_cli;
mod case_requests;
mod cli;
mod corrections;
mod fuzz_regressions;
mod guardian_changes;
mod hardening_crash;
mod hardening_failclosed;
mod hardening_faults;
mod hardening_injection;
mod hardening_limits;
mod http_health;
mod hub_feed;
mod hub_read;
mod hub_targets;
mod keys_custody;
mod notifications;
mod ops_backup;
mod ops_cli;
mod ops_cluster;
mod ops_housekeeping;
mod ops_metrics;
mod ops_upgrade;
mod provisioning_faults;
mod provisioning_guard;
mod provisioning_reconcile;
mod provisioning_restart;
mod provisioning_routine;
mod provisioning_targets;
mod transfer;
mod web_accounts;
mod web_forms;
mod web_i18n;
mod web_intake;
mod web_lifecycle;
mod web_limits;
mod web_notify;
mod web_oidc;
mod web_routine;
mod web_signin;
mod web_transfer;
