//! The `fiktiv` service: HTTP API, CLI, configuration and workflow.
//!
//! Layers: `config` (TOML), `context` (keys + database + vault at startup), `http`
//! (thin handlers), `commands` (one function per CLI command).

pub mod audit_export;
pub mod cli;
pub mod cluster;
pub mod commands;
pub mod commands_keys;
pub mod commands_users;
pub mod config;
pub mod context;
pub mod hardening;
pub mod housekeeping;
pub mod http;
pub mod hub;
pub mod metrics;
pub mod notify;
pub mod provisioning;
pub mod sealed;
pub mod tasks;
pub mod telemetry;
pub mod web;
