//! The central administrator's provisioning pages: status per target with failed jobs
//! and their reasons, the targets with the connectivity test, the sync plan and apply,
//! leak scans across every target, and the runs with their progress. Every page calls
//! one function of `fiktiv_delivery` with a permit from the one Authorizer.
//!
//! Routes: `GET /provisioning`, `POST /provisioning/jobs/{id}/retry`,
//! `GET /provisioning/targets`, `POST /provisioning/targets/{name}/test`,
//! `POST /provisioning/targets/{name}/account-check`, `GET /provisioning/plan`,
//! `POST /provisioning/apply`, `POST /provisioning/reconcile`,
//! `GET|POST /provisioning/leak-scan`, `GET /provisioning/runs/{id}`.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::{Extension, Form};
use fiktiv_policies::{Action, Resource};
use serde::{Deserialize, Serialize};

use super::pages::html;
use super::pages_cases::ctx;
use super::pages_runs::run_page;
use super::ui::{posted, see_other, signed_in, ticked, CsrfForm, Ctx, FormErrors};
use super::views::Base;
use super::Web;
use fiktiv_app::AppState;
use fiktiv_delivery::checks::{self, AlertFilter, AlertView, RunView, StatusView};
use fiktiv_delivery::jobs::{self, JobFilter, JobView};
use fiktiv_delivery::sync::{self, SyncPlan};
use fiktiv_delivery::targets::{self, TestReport};

/// A serialized enum's code (`file`, `api`, ...).
fn code<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// What the administrator may do from the provisioning pages (links and buttons).
#[derive(Debug, Default)]
pub struct ProvLinks {
    pub targets: bool,
    pub plan: bool,
    pub apply: bool,
}

fn links(c: &Ctx, st: &AppState) -> ProvLinks {
    let a = c.allowed(st, &Resource::Municipality);
    ProvLinks {
        targets: a.contains(&Action::TargetsManage),
        plan: a.contains(&Action::SyncPlan),
        apply: a.contains(&Action::SyncApply),
    }
}

// ---------------------------------------------------------------------------
// Status
// ---------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "provisioning.html")]
pub struct StatusPage {
    pub base: Base,
    pub status: StatusView,
    pub failed: Vec<JobView>,
    pub alerts: Vec<AlertView>,
    pub can: ProvLinks,
    pub retried: bool,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct NoticeQuery {
    done: Option<String>,
}

pub async fn status(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Query(q): Query<NoticeQuery>,
    headers: HeaderMap,
) -> Response {
    let c = ctx!(signed_in(&st, &web, &headers).await);
    let permit = ctx!(c.municipality_permit(&st, Action::ProvisioningStatusRead));
    let status = match checks::status(&st.ctx.delivery, &permit).await {
        Ok(s) => s,
        Err(e) => return c.fail(&st, e, "/"),
    };
    let filter = JobFilter {
        state: Some("failed".into()),
        ..Default::default()
    };
    let failed = match jobs::list_permitted(&st.ctx.delivery, &permit, &filter).await {
        Ok(j) => j,
        Err(e) => return c.fail(&st, e, "/"),
    };
    let alerts = AlertFilter {
        open: Some(true),
        case_id: None,
    };
    let alerts = match checks::alerts_permitted(&st.ctx.delivery, &permit, &alerts).await {
        Ok(a) => a,
        Err(e) => return c.fail(&st, e, "/"),
    };
    let page = StatusPage {
        base: c.base(&st, "provisioning.title", "/provisioning"),
        status,
        failed,
        alerts,
        can: links(&c, &st),
        retried: q.done.as_deref() == Some("retry"),
    };
    html(StatusCode::OK, &page)
}

pub async fn retry_job(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Path(id): Path<String>,
    parts: Parts,
    Form(form): Form<CsrfForm>,
) -> Response {
    let c = ctx!(posted(&st, &web, &parts, &form.csrf).await);
    let permit = ctx!(c.municipality_permit(&st, Action::SyncApply));
    match jobs::retry(&st.ctx.delivery, &permit, &id).await {
        Ok(_) => see_other("/provisioning?done=retry"),
        Err(e) => c.fail(&st, e, "/provisioning"),
    }
}

// ---------------------------------------------------------------------------
// Targets and the connectivity test
// ---------------------------------------------------------------------------

/// A target as the page lists it.
pub struct TargetRow {
    pub name: String,
    pub kind: String,
    pub source: String,
    pub usable: bool,
    pub problem: Option<String>,
    pub has_credential: bool,
    /// Where it is: the LDAP URL, the SCIM base URL or the roster folder.
    pub location: String,
}

#[derive(Template)]
#[template(path = "targets.html")]
pub struct TargetsPage {
    pub base: Base,
    pub targets: Vec<TargetRow>,
    pub report: Option<TestReport>,
    pub can: ProvLinks,
}

async fn targets_page(
    c: &Ctx,
    st: &AppState,
    report: Option<TestReport>,
) -> Result<Response, Response> {
    let permit = c.municipality_permit(st, Action::TargetsManage)?;
    let list = targets::list_permitted(&st.ctx.delivery, &permit)
        .await
        .map_err(|e| c.fail(st, e, "/provisioning"))?;
    let rows = list
        .into_iter()
        .map(|t| {
            let settings = serde_json::to_value(&t.settings).unwrap_or_default();
            let location = ["url", "base_url", "dir"]
                .iter()
                .find_map(|k| settings.get(*k).and_then(|v| v.as_str()))
                .unwrap_or_default()
                .to_owned();
            TargetRow {
                source: code(&t.source),
                name: t.name,
                kind: t.kind,
                usable: t.usable,
                problem: t.problem,
                has_credential: t.has_credential,
                location,
            }
        })
        .collect();
    let page = TargetsPage {
        base: c.base(st, "targets.title", "/provisioning/targets"),
        targets: rows,
        report,
        can: links(c, st),
    };
    Ok(html(StatusCode::OK, &page))
}

pub async fn targets_list(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    headers: HeaderMap,
) -> Response {
    let c = ctx!(signed_in(&st, &web, &headers).await);
    targets_page(&c, &st, None).await.unwrap_or_else(|r| r)
}

pub async fn target_test(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Path(name): Path<String>,
    parts: Parts,
    Form(form): Form<CsrfForm>,
) -> Response {
    let c = ctx!(posted(&st, &web, &parts, &form.csrf).await);
    let permit = ctx!(c.municipality_permit(&st, Action::TargetsManage));
    match targets::test_permitted(&st.ctx.delivery, &permit, &name).await {
        Ok(Some(d)) => targets_page(&c, &st, Some(d.into()))
            .await
            .unwrap_or_else(|r| r),
        Ok(None) => c.not_found(&st),
        Err(e) => c.fail(&st, e, "/provisioning/targets"),
    }
}

pub async fn target_account_check(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Path(name): Path<String>,
    parts: Parts,
    Form(form): Form<CsrfForm>,
) -> Response {
    let c = ctx!(posted(&st, &web, &parts, &form.csrf).await);
    let permit = ctx!(c.municipality_permit(&st, Action::ProvisioningStatusRead));
    match checks::start_account_check_target(&st.ctx.delivery, &permit, &name).await {
        Ok(run) => see_other(&format!("/provisioning/runs/{}", run.run_id)),
        Err(e) => c.fail(&st, e, "/provisioning/targets"),
    }
}

// ---------------------------------------------------------------------------
// Sync plan and apply
// ---------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "sync_plan.html")]
pub struct PlanPage {
    pub base: Base,
    pub plan: SyncPlan,
    /// After an apply: how many jobs were queued.
    pub applied: Option<usize>,
    pub can: ProvLinks,
    pub errors: FormErrors,
}

impl PlanPage {
    pub fn changes(&self) -> usize {
        self.plan
            .targets
            .iter()
            .map(|t| t.create.len() + t.update.len() + t.disable.len() + t.delete.len())
            .sum()
    }
}

pub async fn plan(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    headers: HeaderMap,
) -> Response {
    let c = ctx!(signed_in(&st, &web, &headers).await);
    let permit = ctx!(c.municipality_permit(&st, Action::SyncPlan));
    match sync::plan_permitted(&st.ctx.delivery, &permit, false).await {
        Ok(plan) => {
            let page = PlanPage {
                base: c.base(&st, "sync.title", "/provisioning/plan"),
                plan,
                applied: None,
                can: links(&c, &st),
                errors: FormErrors::default(),
            };
            html(StatusCode::OK, &page)
        }
        Err(e) => c.fail(&st, e, "/provisioning"),
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct ApplyForm {
    csrf: String,
    force: String,
}

pub async fn apply(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    parts: Parts,
    Form(form): Form<ApplyForm>,
) -> Response {
    let c = ctx!(posted(&st, &web, &parts, &form.csrf).await);
    let permit = ctx!(c.municipality_permit(&st, Action::SyncApply));
    match sync::apply(&st.ctx.delivery, &permit, ticked(&form.force)).await {
        Ok(r) => {
            let page = PlanPage {
                base: c.base(&st, "sync.title-applied", "/provisioning/plan"),
                plan: r.plan,
                applied: Some(r.jobs_armed),
                can: links(&c, &st),
                errors: FormErrors::default(),
            };
            html(StatusCode::OK, &page)
        }
        Err(e) => c.fail(&st, e, "/provisioning/plan"),
    }
}

pub async fn reconcile(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    parts: Parts,
    Form(form): Form<CsrfForm>,
) -> Response {
    let c = ctx!(posted(&st, &web, &parts, &form.csrf).await);
    let permit = ctx!(c.municipality_permit(&st, Action::SyncApply));
    match sync::start_reconcile(&st.ctx.delivery, &permit).await {
        Ok(run) => see_other(&format!("/provisioning/runs/{}", run.run_id)),
        Err(e) => c.fail(&st, e, "/provisioning"),
    }
}

// ---------------------------------------------------------------------------
// Leak scans across every target, and runs
// ---------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "leak_scans.html")]
pub struct LeakScansPage {
    pub base: Base,
    pub last: Option<RunView>,
    pub can_scan: bool,
}

pub async fn leak_scans(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    headers: HeaderMap,
) -> Response {
    let c = ctx!(signed_in(&st, &web, &headers).await);
    let permit = ctx!(c.municipality_permit(&st, Action::ProvisioningStatusRead));
    match checks::status(&st.ctx.delivery, &permit).await {
        Ok(s) => {
            let page = LeakScansPage {
                base: c.base(&st, "leaks.title", "/provisioning/leak-scan"),
                last: s.last_leak_scan,
                can_scan: c.may(&st, Action::LeakScan, &Resource::Municipality),
            };
            html(StatusCode::OK, &page)
        }
        Err(e) => c.fail(&st, e, "/provisioning"),
    }
}

pub async fn leak_scan_start(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    parts: Parts,
    Form(form): Form<CsrfForm>,
) -> Response {
    let c = ctx!(posted(&st, &web, &parts, &form.csrf).await);
    let permit = ctx!(c.municipality_permit(&st, Action::LeakScan));
    match checks::start_leak_scan(&st.ctx.delivery, &permit, None).await {
        Ok(run) => see_other(&format!("/provisioning/runs/{}", run.run_id)),
        Err(e) => c.fail(&st, e, "/provisioning/leak-scan"),
    }
}

pub async fn run(
    State(st): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let c = ctx!(signed_in(&st, &web, &headers).await);
    let permit = ctx!(c.municipality_permit(&st, Action::ProvisioningStatusRead));
    match checks::run_permitted(&st.ctx.delivery, &permit, &id).await {
        Ok(run) => {
            let back = match run.kind.as_str() {
                "leak-scan" => "/provisioning/leak-scan",
                "account-check" => "/provisioning/targets",
                _ => "/provisioning",
            };
            let again = (run.kind == "leak-scan" && run.case_id.is_none())
                .then(|| "/provisioning/leak-scan".to_owned());
            let here = format!("/provisioning/runs/{}", run.run_id);
            run_page(&c, &st, run, &here, back.to_owned(), again)
        }
        Err(e) => c.fail(&st, e, "/provisioning"),
    }
}
