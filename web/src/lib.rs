//! The web UI: server-rendered pages for the municipality's staff (askama templates in
//! `web/templates/`, messages in `app/i18n/`, one CSS file and one script in
//! `web/static/`). It holds no SQL and no policy: the pages share the API's state
//! ([`AppState`]), authorize with the same authorizer and call the same domain functions,
//! whose limits hold for both (tests/tests/suite/layers.rs).
//!
//! This is the foundation the routine's pages build on: local accounts with a password
//! (Argon2id) and a TOTP second factor, server-side sessions with CSRF tokens, idle and
//! absolute timeouts, sign-in rate limits and lockout, step-up before revealing a real
//! identity, the page shell with a navigation decided by the one
//! [`fiktiv_policies::Authorizer`], three languages and strict security headers.
//! See docs/WEB.md.
//!
//! Routes: `GET /`, `GET|POST /signin`, `POST /signout`, `GET|POST /password`,
//! `GET|POST /step-up`, `POST /lang`, `GET /static/fiktiv.css`, `GET /static/fiktiv.js`;
//! with `[web.oidc]`, OpenID Connect sign-in (`oidc`, `pages_oidc`): `GET /signin/oidc`,
//! `GET /signin/oidc/callback` and `GET /step-up/oidc`;
//! and the routine's pages, split by audience: the school's cases and checks
//! (`pages_cases`), plan and decisions (`pages_plan`), order, staff told and reviews
//! (`pages_followup`); the central administrator's orders (`pages_admin`) and
//! provisioning (`pages_provisioning`); reveals (`pages_reveal`); the audit trail
//! (`pages_audit`). Each page authorizes with the one Authorizer and calls the same
//! domain function as the JSON API.

use fiktiv_staff::{accounts, oidc, session};
use std::sync::Arc;

use axum::routing::{get, post};
use axum::{middleware, Extension, Router};
use chrono::TimeDelta;

use fiktiv_app::config::Config;
use fiktiv_app::AppState;

/// The messages in Swedish, Norwegian and English: shared with notification mail and
/// the sealed service's pages, so kept below both (`fiktiv-app`).
pub use fiktiv_app::i18n;
pub mod labels;
pub mod pages;
mod pages_admin;
mod pages_audit;
mod pages_cases;
mod pages_corrections;
mod pages_end;
mod pages_followup;
mod pages_intake;
mod pages_moves;
mod pages_notify;
mod pages_oidc;
mod pages_plan;
mod pages_provisioning;
mod pages_reveal;
mod pages_runs;
mod pages_transfer;
pub mod security;
#[cfg(test)]
mod source_scan;
mod ui;
pub mod views;

pub use fiktiv_staff::session::{require_fresh_second_factor, FreshSecondFactor, StepUpRequired};

/// What the UI's handlers share besides [`AppState`].
#[derive(Debug)]
pub struct Web {
    pub catalog: Arc<i18n::Catalog>,
    pub limiter: security::RateLimiter,
    pub timeouts: session::Timeouts,
    pub limits: accounts::SignInLimits,
    /// OpenID Connect sign-in, when `[web.oidc]` is configured.
    pub oidc: Option<Arc<oidc::Oidc>>,
}

fn secs(s: u64) -> TimeDelta {
    TimeDelta::seconds(i64::try_from(s.max(1)).unwrap_or(i64::MAX / 1000))
}

impl Web {
    pub fn new(config: &Config) -> Self {
        let w = &config.web;
        let catalog = i18n::Catalog::shared().unwrap_or_else(|e| {
            // The files are compiled in and a test parses them; this cannot happen in a
            // released binary. Pages then show message keys instead of failing.
            tracing::error!(error = %e, "UI message files do not parse");
            Arc::new(i18n::Catalog::default())
        });
        Self {
            catalog,
            limiter: security::RateLimiter::new(w.attempts_per_window, secs(w.attempt_window_secs)),
            timeouts: session::Timeouts {
                idle: secs(w.idle_timeout_secs),
                absolute: secs(w.absolute_lifetime_secs),
                step_up_valid: secs(w.step_up_valid_secs),
            },
            limits: accounts::SignInLimits {
                lockout_after_failures: w.lockout_after_failures,
                lockout: secs(w.lockout_secs),
            },
            oidc: oidc::from_config(w.oidc.as_ref()),
        }
    }
}

/// The UI's routes, with their security headers. Merged into `fiktiv::router::app`.
pub use pages_plan::PLAN_FORM_BODY_LIMIT;

pub fn routes(config: &Config) -> Router<AppState> {
    let web = Arc::new(Web::new(config));
    Router::new()
        .route("/", get(pages::home))
        .route("/signin", get(pages::signin_form).post(pages::signin))
        .route("/signin/oidc", get(pages_oidc::signin_start))
        .route(oidc::CALLBACK_PATH, get(pages_oidc::callback))
        .route("/signout", post(pages::signout))
        .route("/password", get(pages::password_form).post(pages::password))
        .route("/step-up", get(pages::step_up_form).post(pages::step_up))
        .route("/step-up/oidc", get(pages_oidc::step_up_start))
        .route("/lang", post(pages::set_lang))
        .route("/session/alive", get(pages::session_alive))
        .route(
            "/notifications",
            get(pages_notify::show).post(pages_notify::save),
        )
        .route("/notifications/read", post(pages_notify::mark_read))
        .route("/static/fiktiv.css", get(pages::css))
        .route("/static/fiktiv.js", get(pages::js))
        // The school's cases.
        .route("/cases", get(pages_cases::list).post(pages_cases::open))
        .route("/cases/new", get(pages_cases::new_form))
        .route("/cases/{id}", get(pages_cases::page))
        .route(
            "/cases/{id}/plan",
            get(pages_plan::plan_form)
                .post(pages_plan::plan_write)
                // A text far over the limit reaches the form's own check, which keeps
                // it in the form, rather than a bare 413 that loses it.
                .layer(axum::extract::DefaultBodyLimit::max(PLAN_FORM_BODY_LIMIT)),
        )
        .route("/cases/{id}/plan/print", get(pages_plan::plan_print))
        .route(
            "/cases/{id}/decision",
            get(pages_plan::decision_form).post(pages_plan::decision_write),
        )
        .route("/cases/{id}/access-report", get(pages_end::access_report))
        .route(
            "/cases/{id}/identity-correction",
            get(pages_corrections::form).post(pages_corrections::write),
        )
        .route(
            "/cases/{id}/fictitious-change",
            get(pages_corrections::change_form).post(pages_corrections::change_write),
        )
        .route(
            "/cases/{id}/old-identities/{old}/close",
            post(pages_corrections::close_old),
        )
        .route(
            "/cases/{id}/end",
            get(pages_end::end_form).post(pages_end::end_write),
        )
        .route(
            "/cases/{id}/fictitious",
            get(pages_plan::fictitious_form).post(pages_plan::fictitious_write),
        )
        .route(
            "/cases/{id}/guardians/{n}",
            get(pages_plan::guardian_form).post(pages_plan::guardian_write),
        )
        .route(
            "/cases/{id}/transfer",
            get(pages_transfer::form).post(pages_transfer::write),
        )
        .route(
            "/transfer-imports",
            get(pages_transfer::import_form).post(pages_transfer::import_write),
        )
        .route(
            "/cases/{id}/guardians/{n}/fictitious-change",
            get(pages_corrections::guardian_change_form)
                .post(pages_corrections::guardian_change_write),
        )
        .route(
            "/cases/{id}/guardians/{n}/register",
            post(pages_admin::register_guardian),
        )
        .route(
            "/cases/{id}/guardians/{n}/removal",
            get(pages_corrections::removal_form).post(pages_corrections::removal_write),
        )
        .route(
            "/cases/{id}/order",
            get(pages_followup::order_form).post(pages_followup::order_send),
        )
        .route(
            "/cases/{id}/staff-told",
            get(pages_followup::staff_told).post(pages_followup::staff_record),
        )
        .route(
            "/cases/{id}/reviews",
            get(pages_followup::case_reviews).post(pages_followup::review_record),
        )
        .route(
            "/cases/{id}/account-check",
            post(pages_cases::start_account_check),
        )
        .route(
            "/cases/{id}/account-check/{run}",
            get(pages_cases::account_check_run),
        )
        .route("/cases/{id}/leak-scan", post(pages_cases::start_leak_scan))
        .route("/cases/{id}/label", post(pages_cases::set_label))
        .route(
            "/cases/{id}/leak-scan/{run}",
            get(pages_cases::leak_scan_run),
        )
        .route("/case-requests", get(pages_moves::list))
        .route(
            "/case-requests/new",
            get(pages_moves::new_form).post(pages_moves::ask),
        )
        .route("/case-requests/{id}/accept", post(pages_moves::accept))
        .route("/case-requests/{id}/refuse", post(pages_moves::refuse))
        .route("/reviews", get(pages_followup::reviews_list))
        // Pupils from the school administration system with no case yet.
        .route("/intake", get(pages_intake::list))
        .route("/intake/{unit}/{id}/pupil", post(pages_intake::pupil))
        .route("/intake/{unit}/{id}/case", post(pages_intake::open_case))
        // The central administrator.
        .route("/orders", get(pages_admin::queue))
        .route(
            "/orders/{id}",
            get(pages_admin::register_form).post(pages_admin::register),
        )
        .route(
            "/fictitious-changes/{id}/register",
            post(pages_admin::register_change),
        )
        .route("/provisioning", get(pages_provisioning::status))
        .route(
            "/provisioning/jobs/{id}/retry",
            post(pages_provisioning::retry_job),
        )
        .route(
            "/provisioning/targets",
            get(pages_provisioning::targets_list),
        )
        .route(
            "/provisioning/targets/{name}/test",
            post(pages_provisioning::target_test),
        )
        .route(
            "/provisioning/targets/{name}/account-check",
            post(pages_provisioning::target_account_check),
        )
        .route("/provisioning/plan", get(pages_provisioning::plan))
        .route("/provisioning/apply", post(pages_provisioning::apply))
        .route(
            "/provisioning/reconcile",
            post(pages_provisioning::reconcile),
        )
        .route(
            "/provisioning/leak-scan",
            get(pages_provisioning::leak_scans).post(pages_provisioning::leak_scan_start),
        )
        .route("/provisioning/runs/{id}", get(pages_provisioning::run))
        // Reveals (four eyes).
        .route(
            "/reveals",
            get(pages_reveal::list).post(pages_reveal::request),
        )
        .route("/reveals/{id}", get(pages_reveal::page))
        .route("/reveals/{id}/approve", post(pages_reveal::approve))
        .route("/reveals/{id}/refuse", post(pages_reveal::refuse))
        .route("/reveals/{id}/read", post(pages_reveal::read))
        // The auditor.
        .route("/audit", get(pages_audit::trail))
        .route("/audit/verify", get(pages_audit::verify))
        .layer(Extension(web))
        .layer(middleware::map_response(security::headers))
}
