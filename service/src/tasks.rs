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
use crate::domain::reveal::{self, RevealState};
use crate::domain::reviews::{self, DueStatus};
use crate::domain::{orders, DomainResult};
use crate::provisioning::checks::{self, AlertFilter};

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
    /// Yearly reviews past their due date.
    ReviewsOverdue,
    /// Yearly reviews due within the reminder window.
    ReviewsDueSoon,
    /// The person's own plan drafts, kept when a session ended while writing.
    PlanDrafts,
}

impl TaskKind {
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

/// The tasks of `principal`, most urgent first; kinds with nothing to do are left out.
pub async fn tasks(
    ctx: &Context,
    authz: &Authorizer,
    principal: &Principal,
) -> DomainResult<Vec<Task>> {
    let vault = &ctx.vault;
    let muni = |a: Action| authz.authorize(principal, a, &Resource::Municipality).ok();
    let mut out = Vec::new();
    let mut push = |kind, count: usize, href: &str| {
        if count > 0 {
            out.push(Task {
                kind,
                count,
                href: href.to_owned(),
            });
        }
    };
    // The person's own unsaved work first (listed on the start page).
    push(
        TaskKind::PlanDrafts,
        crate::domain::drafts::list_own(vault, &principal.id)
            .await?
            .len(),
        "/#drafts",
    );

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
    let count = |s: DueStatus| due.iter().filter(|i| i.status == s).count();
    push(
        TaskKind::ReviewsOverdue,
        count(DueStatus::Overdue),
        "/reviews",
    );

    let filter = AlertFilter {
        open: Some(true),
        case_id: None,
    };
    if let Some(p) = muni(Action::ProvisioningStatusRead) {
        let open = checks::alerts_permitted(ctx, &p, &filter).await?;
        push(TaskKind::AlertsOpen, open.len(), "/provisioning");
    } else {
        // A school: the open alerts of the cases of its own units (what the case
        // pages show), one query per unit it may read the cases of.
        let mut n = 0;
        for unit in &principal.units {
            let resource = Resource::Case { unit: unit.clone() };
            if let Ok(read) = authz.authorize(principal, Action::CaseRead, &resource) {
                n += checks::unit_alerts(ctx, &read, unit).await?.len();
            }
        }
        push(TaskKind::CaseAlertsOpen, n, "/cases");
    }

    if let Some(p) = muni(Action::OrderQueueRead) {
        push(
            TaskKind::OrdersWaiting,
            orders::queue(vault, &p, false).await?.len(),
            "/orders",
        );
    }
    if let Some(p) = muni(Action::RevealListPending) {
        push(
            TaskKind::RevealsToDecide,
            reveal::list_pending(vault, &p).await?.len(),
            "/reveals",
        );
    }
    if let Some(p) = muni(Action::RevealListOwn) {
        let approved = reveal::list_own(vault, &p)
            .await?
            .iter()
            .filter(|r| r.state == RevealState::Approved)
            .count();
        push(TaskKind::RevealsApproved, approved, "/reveals");
    }
    push(
        TaskKind::ReviewsDueSoon,
        count(DueStatus::DueSoon),
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
        for k in [
            TaskKind::OrdersWaiting,
            TaskKind::AlertsOpen,
            TaskKind::CaseAlertsOpen,
            TaskKind::RevealsToDecide,
            TaskKind::RevealsApproved,
            TaskKind::ReviewsOverdue,
            TaskKind::ReviewsDueSoon,
            TaskKind::PlanDrafts,
        ] {
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
    }
}
