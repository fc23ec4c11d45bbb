//! The two checks of the routine, reconciliation runs, and alerts.
//!
//! - **Account check** (step 5): for each fictitious person and target, the account is
//!   read back from the target itself, with the time of reading: does it exist, is it
//!   enabled, are the attributes and groups the expected ones. Per case (the school) or
//!   per target (the central administrator).
//! - **Leak scan** (step 6): every entry of every target is read whole (no filter that
//!   holds a value) and compared locally with the blind indexes of every real identity
//!   in the vault. The result per case is `clean`, `unverified` (a target could not be
//!   read completely), `suspect` (the real full name, may be a namesake) or `found`
//!   (the real number, or the name with the birth date), with where: (target, entry
//!   locator). Never the value. A finding raises an alert and an audit event.
//!
//! Each runs as a **run** (`prov_runs`): starting one returns at once with its id; the
//! run's progress counters (targets done, entries read, findings) and, at the end, its
//! result are read with the run id. Starting a run is audited.

use std::collections::{BTreeMap, BTreeSet};

use fiktiv_policies::{Action, Permit};
use fiktiv_provisioning::{compare_account, report, scan, CaseStatus, Finding, ManagedEntry};
use fiktiv_vault::audit::{fmt_time, NewEvent, Outcome};
use fiktiv_vault::{CaseId, Vault};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::{IntoParams, ToSchema};

use super::desired::{self, Desired, PersonRow};
use super::jobs::raise_alert;
use super::targets::{Source, TargetEntry};
use crate::context::Context;
use crate::domain::{DomainError, DomainResult};

/// What a run does and for whom.
#[derive(Debug, Clone)]
pub enum RunScope {
    AccountCheckCase { case: CaseId, unit: String },
    AccountCheckTarget { target: String },
    LeakScanCase { case: CaseId, unit: String },
    LeakScanAll,
    Reconcile,
}

impl RunScope {
    fn kind(&self) -> &'static str {
        match self {
            RunScope::AccountCheckCase { .. } | RunScope::AccountCheckTarget { .. } => {
                "account-check"
            }
            RunScope::LeakScanCase { .. } | RunScope::LeakScanAll => "leak-scan",
            RunScope::Reconcile => "reconcile",
        }
    }

    fn audit_action(&self) -> &'static str {
        match self {
            RunScope::AccountCheckCase { .. } | RunScope::AccountCheckTarget { .. } => {
                Action::AccountCheck.as_str()
            }
            RunScope::LeakScanCase { .. } | RunScope::LeakScanAll => Action::LeakScan.as_str(),
            RunScope::Reconcile => "provisioning.reconcile",
        }
    }

    fn case(&self) -> Option<(&CaseId, &str)> {
        match self {
            RunScope::AccountCheckCase { case, unit } | RunScope::LeakScanCase { case, unit } => {
                Some((case, unit))
            }
            _ => None,
        }
    }

    fn target(&self) -> Option<&str> {
        match self {
            RunScope::AccountCheckTarget { target } => Some(target),
            _ => None,
        }
    }
}

/// Progress counters of a run.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Progress {
    pub targets_total: i64,
    pub targets_done: i64,
    /// Accounts or entries read so far.
    pub items_done: i64,
    /// Problems found so far (accounts not as expected, leak findings, drift).
    pub findings: i64,
}

/// A run and, when it is done, its result.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RunView {
    pub run_id: String,
    /// `account-check`, `leak-scan` or `reconcile`.
    pub kind: String,
    /// `running`, `done` or `failed`.
    pub state: String,
    pub case_id: Option<String>,
    pub target: Option<String>,
    pub started_by: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub progress: Progress,
    /// `AccountCheckResult`, `LeakScanResult` or `ApplyResult` (reconcile), when done.
    #[schema(value_type = Option<Object>)]
    pub result: Option<serde_json::Value>,
    /// Why the run failed (fixed text).
    pub error: Option<String>,
}

/// Updates a run's progress counters.
pub struct RunProgress {
    vault: Vault,
    run_id: String,
}

impl RunProgress {
    pub async fn update(&self, targets_done: i64, items_done: i64, findings: i64) {
        let r = sqlx::query(
            "UPDATE prov_runs SET targets_done = $1, items_done = $2, findings = $3 WHERE run_id = $4",
        )
        .bind(targets_done)
        .bind(items_done)
        .bind(findings)
        .bind(&self.run_id)
        .execute(self.vault.db().pool())
        .await;
        if let Err(e) = r {
            tracing::warn!(run = %self.run_id, error = %e, "run progress not recorded");
        }
    }
}

/// Starts a run: records it with its audit event in one transaction, then runs it in
/// the background (`spawn`) or to the end (the CLI).
pub async fn start(
    ctx: &Context,
    actor: &str,
    scope: RunScope,
    spawn: bool,
) -> DomainResult<RunView> {
    let vault = &ctx.vault;
    let set = ctx.provisioning.targets(vault).await?;
    if let Some(t) = scope.target() {
        if set.get(t).is_none() {
            return Err(DomainError::NotFound);
        }
    }
    let total = match scope.target() {
        Some(_) => 1,
        None => i64::try_from(set.entries.len()).unwrap_or(0),
    };
    let run_id = uuid::Uuid::new_v4().to_string();
    let mut tx = vault.db().begin_write().await?;
    sqlx::query(
        "INSERT INTO prov_runs (run_id, kind, case_id, unit, target, state, started_by, started_at, \
         targets_total, targets_done, items_done, findings, holder, lease_until) \
         VALUES ($1, $2, $3, $4, $5, 'running', $6, $7, $8, 0, 0, 0, $9, $10)",
    )
    .bind(&run_id)
    .bind(scope.kind())
    .bind(scope.case().map(|(c, _)| c.to_string()))
    .bind(scope.case().map(|(_, u)| u.to_owned()))
    .bind(scope.target())
    .bind(actor)
    .bind(fmt_time(vault.now()))
    .bind(total)
    .bind(ctx.provisioning.instance())
    .bind(fmt_time(vault.now() + RUN_LEASE))
    .execute(&mut *tx)
    .await?;
    vault
        .audit(
            &mut tx,
            &NewEvent {
                actor,
                action: scope.audit_action(),
                case_id: scope.case().map(|(c, _)| *c),
                purpose: None,
                outcome: Outcome::Ok,
            },
        )
        .await?;
    tx.commit().await?;
    if spawn {
        let c = ctx.clone();
        let id = run_id.clone();
        let who = actor.to_owned();
        tokio::spawn(async move { execute(&c, &id, &who, scope).await });
    } else {
        execute(ctx, &run_id, actor, scope).await;
    }
    load_run(vault, &run_id).await?.ok_or(DomainError::NotFound)
}

/// A run's lease: renewed every [`RUN_HEARTBEAT`] while it runs. Recovery marks a run
/// failed only when its lease ran out, so a live run of another instance is left alone.
pub const RUN_LEASE: chrono::TimeDelta = chrono::TimeDelta::minutes(2);
const RUN_HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(30);

/// Renews the run's lease until dropped.
struct Heartbeat(tokio::task::JoinHandle<()>);

impl Heartbeat {
    fn start(vault: Vault, run_id: String) -> Self {
        Self(tokio::spawn(async move {
            loop {
                tokio::time::sleep(RUN_HEARTBEAT).await;
                let r = sqlx::query(
                    "UPDATE prov_runs SET lease_until = $1 WHERE run_id = $2 AND state = 'running'",
                )
                .bind(fmt_time(vault.now() + RUN_LEASE))
                .bind(&run_id)
                .execute(vault.db().pool())
                .await;
                if let Err(e) = r {
                    tracing::warn!(run = %run_id, error = %e, "run lease not renewed");
                }
            }
        }))
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn execute(ctx: &Context, run_id: &str, actor: &str, scope: RunScope) {
    let _heartbeat = Heartbeat::start(ctx.vault.clone(), run_id.to_owned());
    let progress = RunProgress {
        vault: ctx.vault.clone(),
        run_id: run_id.to_owned(),
    };
    // Targets a reconciliation read completely (for the metric of its age).
    let mut reconciled: Vec<String> = Vec::new();
    let result: DomainResult<(serde_json::Value, i64)> = match &scope {
        RunScope::AccountCheckCase { case, .. } => account_check(ctx, Some(case), None, &progress)
            .await
            .and_then(to_json),
        RunScope::AccountCheckTarget { target } => {
            account_check(ctx, None, Some(target), &progress)
                .await
                .and_then(to_json)
        }
        RunScope::LeakScanCase { case, .. } => leak_scan(ctx, Some(case), &progress)
            .await
            .and_then(to_json),
        RunScope::LeakScanAll => leak_scan(ctx, None, &progress).await.and_then(to_json),
        RunScope::Reconcile => super::sync::reconcile_body(ctx, actor, Some(&progress))
            .await
            .map(|r| {
                let readable: Vec<String> = r
                    .plan
                    .targets
                    .iter()
                    .filter(|t| t.readable)
                    .map(|t| t.target.clone())
                    .collect();
                (r, readable)
            })
            .and_then(|(r, readable)| {
                reconciled = readable;
                let n = i64::try_from(r.plan.changes()).unwrap_or(0);
                serde_json::to_value(&r)
                    .map(|v| (v, n))
                    .map_err(|e| DomainError::Internal(e.to_string()))
            }),
    };
    if result.is_ok() {
        let at = ctx.vault.now();
        for t in &reconciled {
            if let Err(e) = crate::cluster::target_reconciled(&ctx.vault, t, at).await {
                tracing::warn!(target_name = %t, error = %e, "reconciliation time not recorded");
            }
        }
    }
    let now = fmt_time(ctx.vault.now());
    let q = match &result {
        Ok((v, findings)) => sqlx::query(
            "UPDATE prov_runs SET state = 'done', finished_at = $1, result_json = $2, findings = $3, \
             targets_done = targets_total WHERE run_id = $4",
        )
        .bind(now)
        .bind(v.to_string())
        .bind(*findings)
        .bind(run_id),
        Err(e) => {
            tracing::error!(run = %run_id, error = %e, "run failed");
            sqlx::query(
                "UPDATE prov_runs SET state = 'failed', finished_at = $1, error = $2 WHERE run_id = $3",
            )
            .bind(now)
            .bind("the run failed inside Fiktiv; see the log")
            .bind(run_id)
        }
    };
    if let Err(e) = q.execute(ctx.vault.db().pool()).await {
        tracing::error!(run = %run_id, error = %e, "run result not recorded");
    }
}

trait Findings {
    fn findings(&self) -> i64;
}

fn to_json<T: Serialize + Findings>(r: T) -> DomainResult<(serde_json::Value, i64)> {
    let n = r.findings();
    serde_json::to_value(&r)
        .map(|v| (v, n))
        .map_err(|e| DomainError::Internal(e.to_string()))
}

/// Runs whose instance stopped while they ran (their lease ran out, or they are from
/// before leases) are marked failed. A live run of another instance keeps running.
pub async fn recover_runs(vault: &Vault) -> DomainResult<u64> {
    let now = fmt_time(vault.now());
    Ok(sqlx::query(
        "UPDATE prov_runs SET state = 'failed', finished_at = $1, error = $2 \
         WHERE state = 'running' AND (lease_until IS NULL OR lease_until < $1)",
    )
    .bind(now)
    .bind("interrupted: the service stopped while the run was going")
    .execute(vault.db().pool())
    .await?
    .rows_affected())
}

pub(crate) async fn load_run(vault: &Vault, run_id: &str) -> DomainResult<Option<RunView>> {
    let Some(r) = sqlx::query(
        "SELECT run_id, kind, state, case_id, target, started_by, started_at, finished_at, \
         targets_total, targets_done, items_done, findings, result_json, error \
         FROM prov_runs WHERE run_id = $1",
    )
    .bind(run_id)
    .fetch_optional(vault.db().pool())
    .await?
    else {
        return Ok(None);
    };
    let result: Option<String> = r.try_get("result_json")?;
    Ok(Some(RunView {
        run_id: r.try_get("run_id")?,
        kind: r.try_get("kind")?,
        state: r.try_get("state")?,
        case_id: r.try_get("case_id")?,
        target: r.try_get("target")?,
        started_by: r.try_get("started_by")?,
        started_at: r.try_get("started_at")?,
        finished_at: r.try_get("finished_at")?,
        progress: Progress {
            targets_total: r.try_get("targets_total")?,
            targets_done: r.try_get("targets_done")?,
            items_done: r.try_get("items_done")?,
            findings: r.try_get("findings")?,
        },
        result: result.and_then(|s| serde_json::from_str(&s).ok()),
        error: r.try_get("error")?,
    }))
}

/// The latest run of a kind (for the status page and the reconciliation schedule).
pub async fn latest_run(vault: &Vault, kind: &str) -> DomainResult<Option<RunView>> {
    let id: Option<String> = sqlx::query(
        "SELECT run_id FROM prov_runs WHERE kind = $1 ORDER BY started_at DESC, run_id LIMIT 1",
    )
    .bind(kind)
    .fetch_optional(vault.db().pool())
    .await?
    .map(|r| r.try_get("run_id"))
    .transpose()?;
    match id {
        Some(id) => load_run(vault, &id).await,
        None => Ok(None),
    }
}

/// A run by id, for the central administrator. Permit: `provisioning-status.read`.
pub async fn run_permitted(ctx: &Context, permit: &Permit, run_id: &str) -> DomainResult<RunView> {
    permit.require(Action::ProvisioningStatusRead)?;
    load_run(&ctx.vault, run_id)
        .await?
        .ok_or(DomainError::NotFound)
}

/// A run of one case, of the kind the permit is for (`account.check` or `leak.scan`).
pub async fn case_run(
    ctx: &Context,
    permit: &Permit,
    case: &CaseId,
    run_id: &str,
) -> DomainResult<RunView> {
    let kind = match permit.action() {
        Action::AccountCheck => "account-check",
        Action::LeakScan => "leak-scan",
        _ => {
            permit.require(Action::AccountCheck)?;
            return Err(DomainError::NotFound);
        }
    };
    let run = load_run(&ctx.vault, run_id)
        .await?
        .ok_or(DomainError::NotFound)?;
    if run.case_id.as_deref() != Some(case.to_string().as_str()) || run.kind != kind {
        return Err(DomainError::NotFound);
    }
    Ok(run)
}

/// Start the account check of a case. Permit: `account.check` on the case.
pub async fn start_account_check_case(
    ctx: &Context,
    permit: &Permit,
    case: &CaseId,
) -> DomainResult<RunView> {
    permit.require(Action::AccountCheck)?;
    let unit = crate::domain::cases::unit_of(&ctx.vault, case).await?;
    start(
        ctx,
        permit.principal_id(),
        RunScope::AccountCheckCase { case: *case, unit },
        true,
    )
    .await
}

/// Start the account check of a target. Permit: `provisioning-status.read`.
pub async fn start_account_check_target(
    ctx: &Context,
    permit: &Permit,
    target: &str,
) -> DomainResult<RunView> {
    permit.require(Action::ProvisioningStatusRead)?;
    start(
        ctx,
        permit.principal_id(),
        RunScope::AccountCheckTarget {
            target: target.to_owned(),
        },
        true,
    )
    .await
}

/// Start a leak scan for one case (`leak.scan` on the case) or for all (`leak.scan` on
/// the municipality).
pub async fn start_leak_scan(
    ctx: &Context,
    permit: &Permit,
    case: Option<&CaseId>,
) -> DomainResult<RunView> {
    permit.require(Action::LeakScan)?;
    let scope = match case {
        Some(c) => RunScope::LeakScanCase {
            case: *c,
            unit: crate::domain::cases::unit_of(&ctx.vault, c).await?,
        },
        None => RunScope::LeakScanAll,
    };
    start(ctx, permit.principal_id(), scope, true).await
}

// ---------------------------------------------------------------------------
// Account check
// ---------------------------------------------------------------------------

/// One account, read back from its target.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AccountCheckItem {
    pub target: String,
    pub case_id: String,
    pub person_id: String,
    /// `pupil` or `guardian-N`.
    pub subject: String,
    /// What Fiktiv wants: `present`, `disabled` (first stage of removal) or `absent`.
    pub desired: Desired,
    pub exists: bool,
    pub enabled: bool,
    /// The account is as desired (present: exists, enabled, attributes and groups as
    /// expected; disabled: absent or disabled; absent: absent).
    pub ok: bool,
    /// Names of attributes that are missing or have other values (never values).
    pub mismatched: Vec<String>,
    pub missing_groups: Vec<String>,
    pub unexpected_groups: Vec<String>,
    /// When the target was read.
    pub read_at: Option<String>,
    /// Why the account could not be read (fixed text with codes).
    pub error: Option<String>,
}

/// Every account checked.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AccountCheckResult {
    /// True when every account is as desired and every target could be read.
    pub ok: bool,
    pub accounts: Vec<AccountCheckItem>,
}

impl Findings for AccountCheckResult {
    fn findings(&self) -> i64 {
        i64::try_from(self.accounts.iter().filter(|a| !a.ok).count()).unwrap_or(0)
    }
}

fn base_item(e: &TargetEntry, p: &PersonRow) -> AccountCheckItem {
    AccountCheckItem {
        target: e.name.to_string(),
        case_id: p.case.to_string(),
        person_id: p.id.to_string(),
        subject: p.subject.clone(),
        desired: p.desired,
        exists: false,
        enabled: false,
        ok: false,
        mismatched: Vec::new(),
        missing_groups: Vec::new(),
        unexpected_groups: Vec::new(),
        read_at: None,
        error: None,
    }
}

fn fill(
    it: &mut AccountCheckItem,
    target: &dyn fiktiv_provisioning::Target,
    p: &PersonRow,
    actual: Option<&ManagedEntry>,
    now: chrono::DateTime<chrono::Utc>,
) {
    it.read_at = Some(fmt_time(now));
    it.exists = actual.is_some();
    it.enabled = actual.is_some_and(|a| a.enabled);
    match (p.desired, &p.person) {
        (Desired::Present, Some(person)) => match compare_account(target, person, actual, now) {
            Ok(c) => {
                it.ok = c.ok();
                it.mismatched = c.mismatched;
                it.missing_groups = c.missing_groups.iter().map(ToString::to_string).collect();
                it.unexpected_groups = c
                    .unexpected_groups
                    .iter()
                    .map(ToString::to_string)
                    .collect();
            }
            Err(e) => it.error = Some(e.to_string()),
        },
        (Desired::Present, None) => {
            it.error = Some("the fictitious record is not available".into());
        }
        (Desired::Disabled, _) => it.ok = !it.enabled,
        (Desired::Absent, _) => it.ok = !it.exists,
    }
}

/// Persons a target should know about: present and received there, or with a job
/// there (accounts being removed).
async fn persons_on(
    ctx: &Context,
    case: Option<&CaseId>,
) -> DomainResult<(Vec<PersonRow>, BTreeSet<(String, String)>)> {
    let mut conn = ctx.vault.db().pool().acquire().await?;
    let persons = desired::load_persons(&mut conn, case).await?;
    let jobs: BTreeSet<(String, String)> = sqlx::query("SELECT person_id, target FROM prov_jobs")
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("person_id")?, r.try_get("target")?)))
        .collect::<Result<_, sqlx::Error>>()?;
    Ok((persons, jobs))
}

fn belongs(e: &TargetEntry, p: &PersonRow, jobs: &BTreeSet<(String, String)>) -> bool {
    (p.desired == Desired::Present && e.receives(&p.platforms))
        || jobs.contains(&(p.id.to_string(), e.name.to_string()))
}

async fn account_check(
    ctx: &Context,
    case: Option<&CaseId>,
    only: Option<&str>,
    progress: &RunProgress,
) -> DomainResult<AccountCheckResult> {
    let vault = &ctx.vault;
    let set = ctx.provisioning.targets(vault).await?;
    let (persons, jobs) = persons_on(ctx, case).await?;
    let limit = ctx.provisioning.settings().job_timeout();
    let mut accounts = Vec::new();
    let mut all_read = true;
    let (mut done, mut items) = (0i64, 0i64);
    for e in set.entries.values() {
        if only.is_some_and(|o| o != e.name.as_str()) {
            continue;
        }
        let mine: Vec<&PersonRow> = persons.iter().filter(|p| belongs(e, p, &jobs)).collect();
        let target = match &e.target {
            Ok(t) => t.clone(),
            Err(problem) => {
                all_read = false;
                for p in mine {
                    let mut it = base_item(e, p);
                    it.error = Some(format!("the target cannot be used: {problem}"));
                    accounts.push(it);
                }
                done += 1;
                progress.update(done, items, 0).await;
                continue;
            }
        };
        if case.is_some() {
            // One case: read each account on its own.
            for p in mine {
                let mut it = base_item(e, p);
                let now = vault.now();
                match tokio::time::timeout(limit, target.read_one(&p.id, now)).await {
                    Ok(Ok(actual)) => fill(&mut it, target.as_ref(), p, actual.as_ref(), now),
                    Ok(Err(err)) => {
                        all_read = false;
                        it.error = Some(err.to_string());
                    }
                    Err(_) => {
                        all_read = false;
                        it.error = Some(format!("no answer within {} s", limit.as_secs()));
                    }
                }
                items += 1;
                accounts.push(it);
            }
        } else {
            // A whole target: one read of every managed account.
            let now = vault.now();
            match tokio::time::timeout(limit, target.read_managed(now)).await {
                Ok(Ok(actual)) => {
                    items += i64::try_from(actual.len()).unwrap_or(0);
                    for p in mine {
                        let mut it = base_item(e, p);
                        let mut acct: Vec<&ManagedEntry> =
                            actual.iter().filter(|a| a.person == p.id).collect();
                        acct.sort_by(|a, b| {
                            b.enabled.cmp(&a.enabled).then(a.entry_id.cmp(&b.entry_id))
                        });
                        fill(&mut it, target.as_ref(), p, acct.first().copied(), now);
                        accounts.push(it);
                    }
                }
                Ok(Err(err)) => {
                    all_read = false;
                    for p in mine {
                        let mut it = base_item(e, p);
                        it.error = Some(err.to_string());
                        accounts.push(it);
                    }
                }
                Err(_) => {
                    all_read = false;
                    for p in mine {
                        let mut it = base_item(e, p);
                        it.error = Some(format!("no answer within {} s", limit.as_secs()));
                        accounts.push(it);
                    }
                }
            }
        }
        done += 1;
        let bad = i64::try_from(accounts.iter().filter(|a| !a.ok).count()).unwrap_or(0);
        progress.update(done, items, bad).await;
    }
    let ok = all_read && accounts.iter().all(|a| a.ok);
    Ok(AccountCheckResult { ok, accounts })
}

// ---------------------------------------------------------------------------
// Leak scan
// ---------------------------------------------------------------------------

/// Where a real identity was found: target and entry locator (LDAP `entryUUID`,
/// `Users/<id>`, `users.csv:row 3`). Never the value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, ToSchema)]
pub struct Location {
    pub target: String,
    pub entry: String,
}

/// One case's result.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LeakCase {
    pub case_id: String,
    /// `clean`, `unverified`, `suspect` or `found`.
    pub status: String,
    pub at: Vec<Location>,
}

/// One target's part of the scan.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LeakTarget {
    pub target: String,
    /// Entries read and compared.
    pub entries: usize,
    /// Why the target could not be read completely.
    pub error: Option<String>,
}

/// The leak scan's result.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LeakScanResult {
    /// True when every case in scope is clean.
    pub clean: bool,
    pub cases: Vec<LeakCase>,
    pub targets: Vec<LeakTarget>,
}

impl Findings for LeakScanResult {
    fn findings(&self) -> i64 {
        i64::try_from(
            self.cases
                .iter()
                .filter(|c| c.status == "found" || c.status == "suspect")
                .count(),
        )
        .unwrap_or(0)
    }
}

fn status_str(s: CaseStatus) -> &'static str {
    match s {
        CaseStatus::Clean => "clean",
        CaseStatus::Unverified => "unverified",
        CaseStatus::Suspect => "suspect",
        CaseStatus::Found => "found",
    }
}

async fn leak_scan(
    ctx: &Context,
    scope: Option<&CaseId>,
    progress: &RunProgress,
) -> DomainResult<LeakScanResult> {
    let vault = &ctx.vault;
    let set = ctx.provisioning.targets(vault).await?;
    let index = vault.blind_index_set().await?;
    let key = vault.keys().blind().clone();
    let limit = ctx.provisioning.settings().job_timeout();
    let cases: Vec<CaseId> = sqlx::query("SELECT DISTINCT case_id FROM blind_indexes")
        .fetch_all(vault.db().pool())
        .await?
        .iter()
        .filter_map(|r| r.try_get::<String, _>("case_id").ok()?.parse().ok())
        .collect();
    let mut findings: Vec<Finding> = Vec::new();
    let mut targets = Vec::new();
    let (mut done, mut read) = (0i64, 0i64);
    for e in set.entries.values() {
        let mut lt = LeakTarget {
            target: e.name.to_string(),
            entries: 0,
            error: None,
        };
        match &e.target {
            Err(p) => lt.error = Some(format!("the target cannot be used: {p}")),
            Ok(t) => match tokio::time::timeout(limit, t.read_everything()).await {
                Ok(Ok(entries)) => {
                    lt.entries = entries.len();
                    read += i64::try_from(entries.len()).unwrap_or(0);
                    findings.extend(scan(&entries, &key, &index));
                    // `entries` are dropped (and wiped) here.
                }
                Ok(Err(err)) => lt.error = Some(err.to_string()),
                Err(_) => {
                    lt.error = Some(format!("reading took longer than {} s", limit.as_secs()))
                }
            },
        }
        targets.push(lt);
        done += 1;
        let hits = i64::try_from(findings.len()).unwrap_or(0);
        progress.update(done, read, hits).await;
    }
    let incomplete = targets.iter().any(|t| t.error.is_some());
    let reports = report(&cases, &findings);
    // Alerts and audit events for every case found, whatever the run's scope.
    let mut tx = vault.db().begin_write().await?;
    for r in &reports {
        if !matches!(r.status, CaseStatus::Found | CaseStatus::Suspect) {
            continue;
        }
        let shown: Vec<String> =
            r.at.iter()
                .take(20)
                .map(|(t, e)| format!("{t}:{e}"))
                .collect();
        let detail = format!(
            "leak scan: the real identity of this case is {} at {} entr{} ({}{})",
            if r.status == CaseStatus::Found {
                "present"
            } else {
                "possibly present (full name only)"
            },
            r.at.len(),
            if r.at.len() == 1 { "y" } else { "ies" },
            shown.join(", "),
            if r.at.len() > shown.len() {
                ", ..."
            } else {
                ""
            }
        );
        raise_alert(
            vault,
            &mut tx,
            "leak-found",
            None,
            Some(&r.case),
            None,
            &detail,
        )
        .await?;
        vault
            .audit(
                &mut tx,
                &NewEvent {
                    actor: "system",
                    action: "provisioning.leak-found",
                    case_id: Some(r.case),
                    purpose: None,
                    outcome: Outcome::Failed,
                },
            )
            .await?;
        tracing::warn!(case = %r.case, entries = r.at.len(), "leak scan found a real identity downstream");
    }
    tx.commit().await?;
    let wanted: Vec<CaseId> = match scope {
        Some(c) => vec![*c],
        None => cases,
    };
    let by_case: BTreeMap<CaseId, &fiktiv_provisioning::CaseReport> =
        reports.iter().map(|r| (r.case, r)).collect();
    let out: Vec<LeakCase> = wanted
        .iter()
        .map(|c| {
            let (mut status, at) = match by_case.get(c) {
                Some(r) => (
                    r.status,
                    r.at.iter()
                        .map(|(t, e)| Location {
                            target: t.to_string(),
                            entry: e.clone(),
                        })
                        .collect(),
                ),
                None => (CaseStatus::Clean, Vec::new()),
            };
            if incomplete && status == CaseStatus::Clean {
                status = CaseStatus::Unverified;
            }
            LeakCase {
                case_id: c.to_string(),
                status: status_str(status).to_owned(),
                at,
            }
        })
        .collect();
    Ok(LeakScanResult {
        clean: out.iter().all(|c| c.status == "clean"),
        cases: out,
        targets,
    })
}

// ---------------------------------------------------------------------------
// Alerts and status
// ---------------------------------------------------------------------------

/// An alert: an egress-guard block, a leak-scan finding, or a job that gave up.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AlertView {
    pub alert_id: String,
    /// `egress-blocked`, `leak-found` or `job-failed`.
    pub kind: String,
    pub target: Option<String>,
    pub case_id: Option<String>,
    pub person_id: Option<String>,
    /// Fixed text with targets, rules, attribute names and locators; never a value.
    pub detail: String,
    pub raised_at: String,
    pub acknowledged_by: Option<String>,
    pub acknowledged_at: Option<String>,
}

/// Which alerts to list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AlertFilter {
    /// Only alerts not yet acknowledged (default true).
    pub open: Option<bool>,
    pub case_id: Option<String>,
}

pub async fn alerts(vault: &Vault, filter: &AlertFilter) -> DomainResult<Vec<AlertView>> {
    let rows = sqlx::query(
        "SELECT alert_id, kind, target, case_id, person_id, detail, raised_at, acknowledged_by, \
         acknowledged_at FROM prov_alerts WHERE ($1 = 0 OR acknowledged_at IS NULL) \
         AND ($2 = '' OR case_id = $2) ORDER BY raised_at DESC, alert_id LIMIT 1000",
    )
    .bind(i64::from(filter.open.unwrap_or(true)))
    .bind(filter.case_id.clone().unwrap_or_default())
    .fetch_all(vault.db().pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(AlertView {
                alert_id: r.try_get("alert_id")?,
                kind: r.try_get("kind")?,
                target: r.try_get("target")?,
                case_id: r.try_get("case_id")?,
                person_id: r.try_get("person_id")?,
                detail: r.try_get("detail")?,
                raised_at: r.try_get("raised_at")?,
                acknowledged_by: r.try_get("acknowledged_by")?,
                acknowledged_at: r.try_get("acknowledged_at")?,
            })
        })
        .collect()
}

/// List alerts. Permit: `provisioning-status.read`.
pub async fn alerts_permitted(
    ctx: &Context,
    permit: &Permit,
    filter: &AlertFilter,
) -> DomainResult<Vec<AlertView>> {
    permit.require(Action::ProvisioningStatusRead)?;
    alerts(&ctx.vault, filter).await
}

/// Acknowledge an alert, audited. Permit: `sync.apply`.
pub async fn acknowledge(
    ctx: &Context,
    permit: &Permit,
    alert_id: &str,
) -> DomainResult<AlertView> {
    permit.require(Action::SyncApply)?;
    let vault = &ctx.vault;
    let mut tx = vault.db().begin_write().await?;
    let case: Option<String> = sqlx::query("SELECT case_id FROM prov_alerts WHERE alert_id = $1")
        .bind(alert_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(DomainError::NotFound)?
        .try_get("case_id")?;
    sqlx::query(
        "UPDATE prov_alerts SET acknowledged_by = $1, acknowledged_at = $2 \
         WHERE alert_id = $3 AND acknowledged_at IS NULL",
    )
    .bind(permit.principal_id())
    .bind(fmt_time(vault.now()))
    .bind(alert_id)
    .execute(&mut *tx)
    .await?;
    vault
        .audit(
            &mut tx,
            &NewEvent {
                actor: permit.principal_id(),
                action: "provisioning.alert-acknowledge",
                case_id: case.and_then(|c| c.parse().ok()),
                purpose: None,
                outcome: Outcome::Ok,
            },
        )
        .await?;
    tx.commit().await?;
    alerts(
        vault,
        &AlertFilter {
            open: Some(false),
            case_id: None,
        },
    )
    .await?
    .into_iter()
    .find(|a| a.alert_id == alert_id)
    .ok_or(DomainError::NotFound)
}

/// Jobs of one target by state.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct JobCounts {
    pub pending: i64,
    pub running: i64,
    pub done: i64,
    pub failed: i64,
}

/// One target's status.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TargetStatus {
    pub name: String,
    pub kind: String,
    pub source: Source,
    pub usable: bool,
    pub problem: Option<String>,
    pub jobs: JobCounts,
}

/// Provisioning at a glance.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StatusView {
    pub targets: Vec<TargetStatus>,
    /// Alerts not acknowledged, by kind.
    pub open_alerts: BTreeMap<String, i64>,
    pub last_reconcile: Option<RunView>,
    pub last_leak_scan: Option<RunView>,
}

/// Status. Permit: `provisioning-status.read`.
pub async fn status(ctx: &Context, permit: &Permit) -> DomainResult<StatusView> {
    permit.require(Action::ProvisioningStatusRead)?;
    status_view(ctx).await
}

pub async fn status_view(ctx: &Context) -> DomainResult<StatusView> {
    let vault = &ctx.vault;
    let set = ctx.provisioning.targets(vault).await?;
    let counts = super::jobs::counts(vault).await?;
    let mut targets = Vec::new();
    for e in set.entries.values() {
        let mut jc = JobCounts::default();
        for (t, s, n) in counts.iter().filter(|(t, _, _)| t == e.name.as_str()) {
            let _ = t;
            match s.as_str() {
                "pending" => jc.pending = *n,
                "running" => jc.running = *n,
                "done" => jc.done = *n,
                "failed" => jc.failed = *n,
                _ => {}
            }
        }
        targets.push(TargetStatus {
            name: e.name.to_string(),
            kind: e.spec.kind().to_owned(),
            source: e.source,
            usable: e.target.is_ok(),
            problem: e.target.as_ref().err().cloned(),
            jobs: jc,
        });
    }
    let mut open_alerts = BTreeMap::new();
    for r in sqlx::query(
        "SELECT kind, COUNT(*) AS n FROM prov_alerts WHERE acknowledged_at IS NULL GROUP BY kind",
    )
    .fetch_all(vault.db().pool())
    .await?
    {
        open_alerts.insert(r.try_get::<String, _>("kind")?, r.try_get::<i64, _>("n")?);
    }
    let strip = |r: Option<RunView>| {
        r.map(|mut r| {
            r.result = None;
            r
        })
    };
    Ok(StatusView {
        targets,
        open_alerts,
        last_reconcile: strip(latest_run(vault, "reconcile").await?),
        last_leak_scan: strip(latest_run(vault, "leak-scan").await?),
    })
}
