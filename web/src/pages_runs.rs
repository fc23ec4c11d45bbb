//! The page of a run (account check, leak scan, reconciliation): its progress while it
//! runs (the page's live region is refreshed by `/static/fiktiv.js`, or by the
//! "update" link without script) and its result when it is done. Shared by the
//! school's case checks and the central administrator's runs.

use askama::Template;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::pages::html;
use super::ui::Ctx;
use super::views::Base;
use fiktiv_app::AppState;
use fiktiv_delivery::checks::RunView;

/// Which check a case run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    AccountCheck,
    LeakScan,
}

/// One account of an account check (the fields the page shows; names of attributes
/// and groups, never values).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AccountRow {
    pub target: String,
    pub case_id: String,
    pub person_id: String,
    pub subject: String,
    pub desired: String,
    pub exists: bool,
    pub enabled: bool,
    pub ok: bool,
    pub mismatched: Vec<String>,
    pub missing_groups: Vec<String>,
    pub unexpected_groups: Vec<String>,
    pub read_at: Option<String>,
    pub error: Option<String>,
}

/// An ordered platform no target serves.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct UnprovisionedRow {
    pub case_id: String,
    pub person_id: String,
    pub subject: String,
    pub platform: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AccountResult {
    pub ok: bool,
    pub accounts: Vec<AccountRow>,
    pub unprovisioned: Vec<UnprovisionedRow>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct LeakLocation {
    pub target: String,
    pub entry: String,
    pub rule: String,
    pub attributes: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct LeakCaseRow {
    pub case_id: String,
    pub status: String,
    pub at: Vec<LeakLocation>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct LeakTargetRow {
    pub target: String,
    pub entries: usize,
    pub scope: Vec<String>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct LeakResult {
    pub clean: bool,
    pub cases: Vec<LeakCaseRow>,
    pub targets: Vec<LeakTargetRow>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ApplyCounts {
    pub jobs_armed: usize,
}

/// A run's result, as far as the page shows it.
#[derive(Debug, Clone)]
pub enum RunResult {
    None,
    Accounts(AccountResult),
    Leaks(LeakResult),
    Reconcile(ApplyCounts),
}

impl RunResult {
    pub fn of(run: &RunView) -> Self {
        let Some(v) = run.result.clone() else {
            return RunResult::None;
        };
        let parsed = match run.kind.as_str() {
            "account-check" => serde_json::from_value(v).map(RunResult::Accounts),
            "leak-scan" => serde_json::from_value(v).map(RunResult::Leaks),
            "reconcile" => serde_json::from_value(v).map(RunResult::Reconcile),
            _ => return RunResult::None,
        };
        parsed.unwrap_or_else(|e| {
            tracing::error!(error = %e, "a run result cannot be shown");
            RunResult::None
        })
    }
}

#[derive(Template)]
#[template(path = "run.html")]
pub struct RunPage {
    pub base: Base,
    pub run: RunView,
    pub result: RunResult,
    /// Where this page is (the "update" link).
    pub here: String,
    pub back: String,
    /// Where to post to run the check again.
    pub again: Option<String>,
}

impl RunPage {
    pub fn heading(&self) -> &'static str {
        match self.run.kind.as_str() {
            "account-check" => "run.heading-account-check",
            "leak-scan" => "run.heading-leak-scan",
            _ => "run.heading-reconcile",
        }
    }

    pub fn running(&self) -> bool {
        self.run.state == "running"
    }

    pub fn failed(&self) -> bool {
        self.run.state == "failed"
    }

    /// Progress as a share of the targets, 0 to 100.
    pub fn percent(&self) -> i64 {
        let p = &self.run.progress;
        if p.targets_total <= 0 {
            0
        } else {
            (p.targets_done.clamp(0, p.targets_total) * 100) / p.targets_total
        }
    }
}

/// Render a run.
pub(super) fn run_page(
    c: &Ctx,
    st: &AppState,
    run: RunView,
    here: &str,
    back: String,
    again: Option<String>,
) -> Response {
    let title = match run.kind.as_str() {
        "account-check" => "run.title-account-check",
        "leak-scan" => "run.title-leak-scan",
        _ => "run.title-reconcile",
    };
    let page = RunPage {
        base: c.base(st, title, here),
        result: RunResult::of(&run),
        run,
        here: here.to_owned(),
        back,
        again,
    };
    html(StatusCode::OK, &page)
}
