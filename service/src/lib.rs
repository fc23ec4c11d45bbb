//! The `fiktiv` service: HTTP API, web UI, CLI, configuration and start-up.
//!
//! Layers: `config` (TOML), `context` (keys + database + vault at startup), `http`
//! (thin handlers), `web` (pages), `commands*` (one function per CLI command),
//! `background` (the delivery worker, housekeeping and hub reads `fiktiv serve` runs).
//! Delivery to the targets is the `fiktiv-delivery` crate; the routine's domain and
//! its storage are `fiktiv-routine`.

pub mod audit_export;
pub mod background;
pub mod cli;
pub mod cluster;
pub mod commands;
pub mod commands_keys;
pub mod commands_targets;
pub mod commands_users;
pub mod config;
pub mod context;
pub mod hardening;
pub mod housekeeping;
pub mod http;
pub mod hub;
pub mod metrics;
pub mod notify;
pub mod sealed;
pub mod tasks;
pub mod telemetry;
pub mod web;
