//! The `fiktiv` binary: the command line (`cli`, `commands*`), start-up and serve, the
//! one router that joins the API and the web UI (`router`), the sealed service that
//! waits for its key shares (`sealed`), and the background work `fiktiv serve` runs
//! (`background`: the delivery worker, housekeeping and hub reads).
//!
//! The layers below, each a crate: `fiktiv-api` (the HTTP API) and `fiktiv-web` (the
//! web UI), both over `fiktiv-app` (configuration, context, shared state, tasks,
//! notifications); `fiktiv-delivery` (delivery to the targets); `fiktiv-routine` (the
//! routine's domain and its storage); `fiktiv-staff`, `fiktiv-policies`,
//! `fiktiv-provisioning`, `fiktiv-ss12000` and `fiktiv-vault` (ARCHITECTURE.md).

pub mod audit_export;
pub mod background;
pub mod cli;
pub mod commands;
pub mod commands_keys;
pub mod commands_notify;
pub mod commands_targets;
pub mod commands_users;
pub mod hardening;
pub mod housekeeping;
pub mod router;
pub mod sealed;
pub mod telemetry;
