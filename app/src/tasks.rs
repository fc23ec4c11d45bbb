//! What needs doing, per person: the start page and `GET /api/v1/me/tasks` show the same
//! list, made here once.
//!
//! Every item is counted through the domain function of its own page, with a permit
//! from the one [`Authorizer`]: an item a person may not act on is not counted at all
//! (its count would tell them something about cases they may not see). Only counts and
//! links: no case id, no name.

use fiktiv_policies::{Action, Authorizer, Principal, Resource};
use serde::Serialize;
use utoipa::ToSchema;

use crate::context::Context;
use fiktiv_delivery::checks::{self, AlertFilter};
use fiktiv_routine::reveal::{self, RevealState};
use fiktiv_routine::reviews::{self, DueStatus};
use fiktiv_routine::{orders, DomainResult};

/// One kind of thing to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TaskKind {
    /// Orders waiting to be registered (central administrator).
    OrdersWaiting,
    /// Open provisioning alerts: a leak found, a write stopped, a job that gave up
    /// (central administrator).
    AlertsOpen,
    /// Open alerts of cases in the person's own units (school).
    CaseAlertsOpen,
    /// Reveal requests of others waiting for a decision (approver).
    RevealsToDecide,
    /// The person's own reveal requests that were approved and can be opened now.
    RevealsApproved,
    /// Requests to take over or reopen a case that the person may decide (the case's
    /// school, an approver).
    CaseRequestsToDecide,
    /// Yearly reviews past their due date.
    ReviewsOverdue,
    /// Yearly reviews due within the reminder window.
    ReviewsDueSoon,
    /// The person's own plan drafts, kept when a session ended while writing.
    PlanDrafts,
    /// Cases of the person's own units whose accounts have been written to every
    /// target since the last account check: the school checks them (step 5).
    AccountsToCheck,
    /// Pupils with protected personal data whom the school administration system has
    /// enrolled at the person's own units, with no case yet (school).
    IntakeWaiting,
}

impl TaskKind {
    pub const ALL: [TaskKind; 11] = [
        TaskKind::IntakeWaiting,
        TaskKind::OrdersWaiting,
        TaskKind::CaseRequestsToDecide,
        TaskKind::AlertsOpen,
        TaskKind::CaseAlertsOpen,
        TaskKind::RevealsToDecide,
        TaskKind::RevealsApproved,
        TaskKind::ReviewsOverdue,
        TaskKind::ReviewsDueSoon,
        TaskKind::PlanDrafts,
        TaskKind::AccountsToCheck,
    ];

    /// The kind of a stable code.
    pub fn from_code(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The page of the web UI where it is done.
    pub fn href(self) -> &'static str {
        match self {
            TaskKind::OrdersWaiting => "/orders",
            TaskKind::AlertsOpen => "/provisioning",
            TaskKind::CaseAlertsOpen | TaskKind::AccountsToCheck => "/cases",
            TaskKind::RevealsToDecide | TaskKind::RevealsApproved => "/reveals",
            TaskKind::ReviewsOverdue | TaskKind::ReviewsDueSoon => "/reviews",
            TaskKind::PlanDrafts => "/#drafts",
            TaskKind::CaseRequestsToDecide => "/case-requests",
            TaskKind::IntakeWaiting => "/intake",
        }
    }

    /// The stable code, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::OrdersWaiting => "orders-waiting",
            TaskKind::AlertsOpen => "alerts-open",
            TaskKind::CaseAlertsOpen => "case-alerts-open",
            TaskKind::RevealsToDecide => "reveals-to-decide",
            TaskKind::RevealsApproved => "reveals-approved",
            TaskKind::ReviewsOverdue => "reviews-overdue",
            TaskKind::ReviewsDueSoon => "reviews-due-soon",
            TaskKind::PlanDrafts => "plan-drafts",
            TaskKind::AccountsToCheck => "accounts-to-check",
            TaskKind::CaseRequestsToDecide => "case-requests-to-decide",
            TaskKind::IntakeWaiting => "intake-waiting",
        }
    }
}

/// Something to do: what, how many, and the page where it is done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Task {
    pub kind: TaskKind,
    pub count: usize,
    /// The page of the web UI where it is done.
    pub href: String,
}

/// One kind of task with the keys of its items (an order id, an alert id, a review's
/// case and due date ...): what [`crate::notify`] compares to tell a person about what
/// is new. Never shown; [`tasks`] gives only the counts.
#[derive(Debug, Clone)]
pub struct TaskItems {
    pub kind: TaskKind,
    pub href: &'static str,
    pub keys: Vec<String>,
}

/// The tasks of `principal`, most urgent first; kinds with nothing to do are left out.
pub async fn tasks(
    ctx: &Context,
    authz: &Authorizer,
    principal: &Principal,
) -> DomainResult<Vec<Task>> {
    Ok(task_items(ctx, authz, principal)
        .await?
        .into_iter()
        .map(|t| Task {
            kind: t.kind,
            count: t.keys.len(),
            href: t.href.to_owned(),
        })
        .collect())
}

/// The tasks of `principal` with their items, most urgent first; kinds with nothing to
/// do are left out. Each list comes from the domain function of its own page, with a
/// permit from the one authorizer.
pub async fn task_items(
    ctx: &Context,
    authz: &Authorizer,
    principal: &Principal,
) -> DomainResult<Vec<TaskItems>> {
    let vault = &ctx.vault;
    let muni = |a: Action| authz.authorize(principal, a, &Resource::Municipality).ok();
    let mut out = Vec::new();
    let mut push = |kind, keys: Vec<String>, href: &'static str| {
        if !keys.is_empty() {
            out.push(TaskItems { kind, href, keys });
        }
    };
    // The person's own unsaved work first (listed on the start page).
    push(
        TaskKind::PlanDrafts,
        fiktiv_routine::drafts::list_own(vault, &principal.id)
            .await?
            .iter()
            .map(|d| d.case_id.to_string())
            .collect(),
        "/#drafts",
    );

    // Pupils the hub has enrolled at the person's own units with no case yet: the
    // most urgent thing a school can have (a protected child in its platforms).
    let mut intake = Vec::new();
    for unit in &principal.units {
        let resource = Resource::Unit(unit.clone());
        if let Ok(p) = authz.authorize(principal, Action::IntakeList, &resource) {
            intake.extend(fiktiv_routine::hub::intake_keys(vault, &p, unit).await?);
        }
    }
    push(TaskKind::IntakeWaiting, intake, "/intake");

    // Reviews: the whole municipality for those who may list it, else each own unit.
    let mut due: Vec<reviews::ReviewItem> = Vec::new();
    if let Some(p) = muni(Action::ReviewsListAll) {
        due = reviews::list(vault, &ctx.rules, &p, None, false).await?;
    } else {
        for unit in &principal.units {
            let resource = Resource::Unit(unit.clone());
            if let Ok(p) = authz.authorize(principal, Action::ReviewsList, &resource) {
                due.extend(reviews::list(vault, &ctx.rules, &p, Some(unit), false).await?);
            }
        }
    }
    let keys = |s: DueStatus| -> Vec<String> {
        due.iter()
            .filter(|i| i.status == s)
            .map(|i| format!("{} {}", i.case_id, i.next_due))
            .collect()
    };
    push(
        TaskKind::ReviewsOverdue,
        keys(DueStatus::Overdue),
        "/reviews",
    );

    let filter = AlertFilter {
        open: Some(true),
        case_id: None,
    };
    let central = muni(Action::ProvisioningStatusRead);
    if let Some(p) = &central {
        let open = checks::alerts_permitted(&ctx.delivery, p, &filter).await?;
        push(
            TaskKind::AlertsOpen,
            open.into_iter().map(|a| a.alert_id).collect(),
            "/provisioning",
        );
    }
    // A school: the open alerts of the cases of its own units (what the case pages
    // show; not again for someone who sees every alert), one query per unit it may
    // read the cases of; and the cases whose accounts are written and not yet checked.
    let mut alerts = Vec::new();
    let mut to_check = Vec::new();
    for unit in &principal.units {
        let resource = Resource::Case { unit: unit.clone() };
        if let Ok(read) = authz.authorize(principal, Action::CaseRead, &resource) {
            if central.is_none() {
                alerts.extend(
                    checks::unit_alerts(&ctx.delivery, &read, unit)
                        .await?
                        .into_iter()
                        .map(|a| a.alert_id),
                );
            }
            to_check.extend(
                checks::cases_to_check(&ctx.delivery, &read, unit)
                    .await?
                    .into_iter()
                    .map(|(case, done)| format!("{case} {done}")),
            );
        }
    }
    push(TaskKind::CaseAlertsOpen, alerts, "/cases");
    push(TaskKind::AccountsToCheck, to_check, "/cases");

    if let Some(p) = muni(Action::OrderQueueRead) {
        // Orders, and changes of registered pupils' fictitious identities (new orders
        // for the change), both registered on the orders page.
        let mut keys: Vec<String> = orders::queue(vault, &p, false)
            .await?
            .into_iter()
            .map(|o| o.order_id)
            .collect();
        keys.extend(
            fiktiv_routine::fictitious_changes::queue(vault, &p)
                .await?
                .into_iter()
                .map(|c| format!("change:{}", c.change_id)),
        );
        keys.extend(
            fiktiv_routine::guardians::waiting(vault, &p)
                .await?
                .into_iter()
                .map(|g| format!("guardian:{}:{}", g.case_id, g.guardian_no)),
        );
        push(TaskKind::OrdersWaiting, keys, "/orders");
    }
    // Requests to take over or reopen a case: all pending for an approver, else those
    // of the person's own units whose case is there (not their own requests).
    let mut requests = Vec::new();
    if let Some(p) = muni(Action::CaseRequestList) {
        requests.extend(
            fiktiv_routine::case_requests::list_pending(vault, &p)
                .await?
                .into_iter()
                .map(|r| r.request_id),
        );
    } else {
        for unit in &principal.units {
            let resource = Resource::Unit(unit.clone());
            if let Ok(p) = authz.authorize(principal, Action::CaseRequestList, &resource) {
                requests.extend(
                    fiktiv_routine::case_requests::list_for_unit(vault, &p, unit)
                        .await?
                        .into_iter()
                        .filter(|r| r.to_decide)
                        .map(|r| r.request_id),
                );
            }
        }
    }
    push(TaskKind::CaseRequestsToDecide, requests, "/case-requests");
    if let Some(p) = muni(Action::RevealListPending) {
        push(
            TaskKind::RevealsToDecide,
            reveal::list_pending(vault, &p)
                .await?
                .into_iter()
                .map(|r| r.reveal_id)
                .collect(),
            "/reveals",
        );
    }
    if let Some(p) = muni(Action::RevealListOwn) {
        let approved = reveal::list_own(vault, &p)
            .await?
            .into_iter()
            .filter(|r| r.state == RevealState::Approved)
            .map(|r| r.reveal_id)
            .collect();
        push(TaskKind::RevealsApproved, approved, "/reveals");
    }
    push(
        TaskKind::ReviewsDueSoon,
        keys(DueStatus::DueSoon),
        "/reviews",
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::TaskKind;

    #[test]
    fn as_str_is_the_serialised_code() {
        for k in TaskKind::ALL {
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
            assert_eq!(TaskKind::from_code(k.as_str()), Some(k));
        }
    }
}
