//! Alerts (egress-guard blocks, leak-scan findings, jobs that gave up) and the status
//! overview of provisioning.

use std::collections::BTreeMap;

use fiktiv_policies::{Action, Permit};
use fiktiv_vault::audit::{NewEvent, Outcome};
use fiktiv_vault::Vault;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::targets::Source;
use crate::Delivery;
use fiktiv_routine::alerts::{self as store, StoredAlert};
use fiktiv_routine::{DomainError, DomainResult};

use super::*;

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
    /// The same facts, structured (so that a page states them in its reader's
    /// language); absent on alerts raised before this release.
    pub facts: Option<AlertFacts>,
    pub raised_at: String,
    pub acknowledged_by: Option<String>,
    pub acknowledged_at: Option<String>,
}

/// What an alert says, as data: rule names, attribute names, targets, locators and
/// counts. Never a value read from or written to a target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "what", rename_all = "kebab-case")]
pub enum AlertFacts {
    /// The leak scan found the case's real identity downstream (`suspect`: its full name
    /// only, which may be a namesake).
    LeakFound {
        suspect: bool,
        /// How many entries hold it.
        entries: usize,
        /// The first entries, as `target:locator`.
        at: Vec<String>,
    },
    /// The egress guard stopped a write: `rule` matched these attributes against a real
    /// identity; nothing was written.
    EgressBlocked {
        rule: String,
        attributes: Vec<String>,
    },
    /// A job gave up (after `attempts` attempts, when it was retried) with the target's
    /// own error text (technical, as the target wrote it).
    JobFailed {
        attempts: Option<i64>,
        error: String,
    },
}

impl AlertFacts {
    /// The English detail stored beside the facts (the API's `detail`, the CLI).
    pub fn english(&self) -> String {
        match self {
            AlertFacts::LeakFound {
                suspect,
                entries,
                at,
            } => format!(
                "leak scan: the real identity of this case is {} at {} entr{} ({}{})",
                if *suspect {
                    "possibly present (full name only)"
                } else {
                    "present"
                },
                entries,
                if *entries == 1 { "y" } else { "ies" },
                at.join(", "),
                if *entries > at.len() { ", ..." } else { "" }
            ),
            AlertFacts::EgressBlocked { rule, attributes } => format!(
                "egress-blocked: rule {rule} matched attribute(s) {} against a real identity \
                 in the vault; nothing was written",
                attributes.join(", ")
            ),
            AlertFacts::JobFailed { attempts, error } => match attempts {
                Some(n) => format!("gave up after {n} attempts: {error}"),
                None => error.clone(),
            },
        }
    }
}

/// Which alerts to list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AlertFilter {
    /// Only alerts not yet acknowledged (default true).
    pub open: Option<bool>,
    pub case_id: Option<String>,
}

fn alert_view(r: StoredAlert) -> AlertView {
    AlertView {
        facts: r.facts.and_then(|f| serde_json::from_str(&f).ok()),
        alert_id: r.alert_id,
        kind: r.kind,
        target: r.target,
        case_id: r.case_id,
        person_id: r.person_id,
        detail: r.detail,
        raised_at: r.raised_at,
        acknowledged_by: r.acknowledged_by,
        acknowledged_at: r.acknowledged_at,
    }
}

pub async fn alerts(vault: &Vault, filter: &AlertFilter) -> DomainResult<Vec<AlertView>> {
    let rows = store::list(
        vault,
        filter.open.unwrap_or(true),
        filter.case_id.as_deref(),
    )
    .await?;
    Ok(rows.into_iter().map(alert_view).collect())
}

/// List alerts. Permit: `provisioning-status.read`.
pub async fn alerts_permitted(
    ctx: &Delivery,
    permit: &Permit,
    filter: &AlertFilter,
) -> DomainResult<Vec<AlertView>> {
    permit.require(Action::ProvisioningStatusRead)?;
    alerts(&ctx.vault, filter).await
}

/// The open alerts of one case, for those who may read the case (its school, the
/// central administration): the case page and `GET /cases/{id}/alerts` show the same.
/// Permit: `case.read` on the case.
pub async fn case_alerts(
    ctx: &Delivery,
    permit: &Permit,
    case: &fiktiv_vault::CaseId,
) -> DomainResult<Vec<AlertView>> {
    permit.require(Action::CaseRead)?;
    alerts(
        &ctx.vault,
        &AlertFilter {
            open: Some(true),
            case_id: Some(case.to_string()),
        },
    )
    .await
}

/// The open alerts of every case of one unit, in one query: what the cases' pages
/// show, counted for the start page. Permit: `case.read` on the unit's cases.
pub async fn unit_alerts(
    ctx: &Delivery,
    permit: &Permit,
    unit: &str,
) -> DomainResult<Vec<AlertView>> {
    permit.require(Action::CaseRead)?;
    let rows = store::open_of_unit(&ctx.vault, unit).await?;
    Ok(rows.into_iter().map(alert_view).collect())
}

/// The registered cases of one unit whose fictitious persons' accounts have all been
/// written (no job pending, running or failed) and that have had no account check
/// since: what the school is asked to check (step 5). Each with the time the last job
/// finished, so that a case written again is asked for again. Permit: `case.read` on
/// the unit's cases.
pub async fn cases_to_check(
    ctx: &Delivery,
    permit: &Permit,
    unit: &str,
) -> DomainResult<Vec<(String, String)>> {
    permit.require(Action::CaseRead)?;
    fiktiv_routine::runs::cases_awaiting_check(&ctx.vault, unit).await
}

/// Acknowledge an alert, audited. Permit: `sync.apply`.
pub async fn acknowledge(
    ctx: &Delivery,
    permit: &Permit,
    alert_id: &str,
) -> DomainResult<AlertView> {
    permit.require(Action::SyncApply)?;
    let vault = &ctx.vault;
    let mut tx = vault.db().begin_write().await?;
    let case = store::acknowledge(&mut tx, alert_id, permit.principal_id(), vault.now())
        .await?
        .ok_or(DomainError::NotFound)?;
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
pub async fn status(ctx: &Delivery, permit: &Permit) -> DomainResult<StatusView> {
    permit.require(Action::ProvisioningStatusRead)?;
    status_view(ctx).await
}

pub async fn status_view(ctx: &Delivery) -> DomainResult<StatusView> {
    let vault = &ctx.vault;
    let set = ctx.runtime.targets(vault).await?;
    let counts = crate::jobs::counts(vault).await?;
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
    let open_alerts = store::open_counts(vault).await?;
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
