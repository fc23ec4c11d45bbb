//! Plan, apply and reconciliation.
//!
//! A **plan** reads the managed accounts back from every target and compares them with
//! the desired state ([`fiktiv_provisioning::plan`]): per target, what would be created,
//! updated (names, groups, enabled, or any attribute Fiktiv writes edited by hand),
//! disabled and deleted, and which disabled accounts wait out the grace period. It
//! changes nothing.
//!
//! **Apply** arms one outbox job per action; the worker carries them out. Removals
//! beyond `max_removal_share` of a target's managed accounts are refused (the plan shows
//! them under `refused`) unless forced. Deletion is two-stage: an account is disabled
//! first and deleted only when it has been disabled for the grace period.
//!
//! **Reconciliation** is a plan and an apply that is never forced and never re-arms a
//! failed job, run on a schedule by the worker and on demand. Its run keeps the plan as
//! the drift report.
//!
//! Accounts whose person id Fiktiv does not know are counted, never touched. When one
//! person has several accounts on a target the extra ones are counted as duplicates,
//! not removed: a removal by person id could hit the account that should stay.

use std::collections::{BTreeSet, HashMap};

use fiktiv_policies::{Action, Permit};
use fiktiv_provisioning::{
    compare_account, plan, Action as PlanAction, ManagedEntry, PersonId, PlanOptions, TargetName,
};
use fiktiv_vault::audit::{fmt_time, NewEvent, Outcome};
use serde::Serialize;
use utoipa::ToSchema;

use super::jobs::{self, Arm, Op};
use crate::Delivery;
use fiktiv_routine::desired::{self, Desired, PersonRow};
use fiktiv_routine::DomainResult;

/// One account in a plan.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PlanItem {
    pub person_id: String,
    pub case_id: Option<String>,
    /// `pupil` or `guardian-N`.
    pub subject: Option<String>,
    /// Where the account is (LDAP DN, SCIM id, OneRoster sourcedId), when it exists.
    pub entry: Option<String>,
    /// What differs: `given-name`, `family-name`, `groups`, `disabled`, or
    /// `attribute:<name>` for an attribute edited by hand (names only, never values).
    pub drift: Vec<String>,
    /// For accounts waiting to be deleted: when the grace period ends.
    pub delete_after: Option<String>,
}

/// Removals held back by the safety check.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RefusalView {
    pub removals: usize,
    pub managed: usize,
    pub max_share: f64,
}

/// The plan of one target.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TargetPlanView {
    pub target: String,
    /// False when the managed accounts could not be read; `error` says why.
    pub readable: bool,
    pub error: Option<String>,
    /// Accounts Fiktiv manages on the target (read back).
    pub managed: usize,
    /// Persons who should have an account there.
    pub desired: usize,
    pub create: Vec<PlanItem>,
    pub update: Vec<PlanItem>,
    pub disable: Vec<PlanItem>,
    pub delete: Vec<PlanItem>,
    /// Disabled accounts waiting out the grace period.
    pub waiting: Vec<PlanItem>,
    /// Set when removals were held back (they are not in `disable`/`delete`).
    pub refused: Option<RefusalView>,
    /// Accounts with a person id Fiktiv does not know: left alone.
    pub unknown: usize,
    /// Extra accounts of a person who has more than one: reported, not changed.
    pub duplicates: usize,
}

/// The plan for every target.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SyncPlan {
    pub computed_at: String,
    pub force: bool,
    pub targets: Vec<TargetPlanView>,
}

impl SyncPlan {
    pub fn changes(&self) -> usize {
        self.targets
            .iter()
            .map(|t| t.create.len() + t.update.len() + t.disable.len() + t.delete.len())
            .sum()
    }
}

/// What an apply did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApplyResult {
    pub plan: SyncPlan,
    /// Jobs armed for the worker (an action whose job was already queued is not
    /// counted).
    pub jobs_armed: usize,
}

fn item(p: &PersonId, rows: &HashMap<PersonId, &PersonRow>, entry: Option<&str>) -> PlanItem {
    let row = rows.get(p);
    PlanItem {
        person_id: p.to_string(),
        case_id: row.map(|r| r.case.to_string()),
        subject: row.map(|r| r.subject.clone()),
        entry: entry.map(str::to_owned),
        drift: Vec::new(),
        delete_after: None,
    }
}

fn drift_name(d: fiktiv_provisioning::Drift) -> &'static str {
    use fiktiv_provisioning::Drift;
    match d {
        Drift::GivenName => "given-name",
        Drift::FamilyName => "family-name",
        Drift::Groups => "groups",
        Drift::Disabled => "disabled",
    }
}

type Planned = (SyncPlan, Vec<(TargetName, PersonId, Op)>);

/// Computes the plan. `progress` is told after each target (targets done, accounts read).
pub async fn compute(
    ctx: &Delivery,
    force: bool,
    progress: Option<&super::checks::RunProgress>,
) -> DomainResult<Planned> {
    let vault = &ctx.vault;
    let settings = ctx.runtime.settings();
    let set = ctx.runtime.targets(vault).await?;
    let persons = {
        let mut conn = vault.db().pool().acquire().await?;
        desired::load_persons(&mut conn, None).await?
    };
    let rows: HashMap<PersonId, &PersonRow> = persons.iter().map(|p| (p.id, p)).collect();
    let now = vault.now();
    let opts = PlanOptions {
        now,
        grace: settings.grace(),
        max_removal_share: settings.max_removal_share,
        min_removals_allowed: settings.min_removals_allowed,
        force,
    };
    let mut views = Vec::new();
    let mut actions = Vec::new();
    let (mut done, mut read) = (0i64, 0i64);
    for e in set.entries.values() {
        let mut view = TargetPlanView {
            target: e.name.to_string(),
            readable: false,
            error: None,
            managed: 0,
            desired: 0,
            create: Vec::new(),
            update: Vec::new(),
            disable: Vec::new(),
            delete: Vec::new(),
            waiting: Vec::new(),
            refused: None,
            unknown: 0,
            duplicates: 0,
        };
        let target = match &e.target {
            Ok(t) => t.clone(),
            Err(p) => {
                view.error = Some(format!("the target cannot be used: {p}"));
                views.push(view);
                continue;
            }
        };
        let actual =
            match tokio::time::timeout(settings.job_timeout(), target.read_managed(now)).await {
                Ok(Ok(a)) => a,
                Ok(Err(err)) => {
                    view.error = Some(err.to_string());
                    views.push(view);
                    done += 1;
                    if let Some(p) = progress {
                        p.update(done, read, 0).await;
                    }
                    continue;
                }
                Err(_) => {
                    view.error = Some(format!(
                        "reading the accounts took longer than {} s",
                        settings.job_timeout_secs
                    ));
                    views.push(view);
                    continue;
                }
            };
        view.readable = true;
        read += i64::try_from(actual.len()).unwrap_or(0);
        let (known, unknown): (Vec<ManagedEntry>, Vec<ManagedEntry>) = actual
            .into_iter()
            .partition(|a| rows.contains_key(&a.person));
        view.unknown = unknown.len();
        view.managed = known.len();
        let wanted: Vec<_> = persons
            .iter()
            .filter(|p| p.desired == Desired::Present && e.receives(&p.platforms))
            .filter_map(|p| p.person.clone().map(|f| f.with_target(e.name.clone())))
            .collect();
        view.desired = wanted.len();
        let wanted_ids: BTreeSet<PersonId> = wanted.iter().map(|w| w.id).collect();
        let mut tp = plan(&wanted, &known, &opts)
            .targets
            .remove(&e.name)
            .unwrap_or_default();
        let mut touched = BTreeSet::new();
        for a in std::mem::take(&mut tp.actions) {
            match a {
                PlanAction::Create { person } => {
                    touched.insert(person);
                    view.create.push(item(&person, &rows, None));
                    actions.push((e.name.clone(), person, Op::Upsert));
                }
                PlanAction::Update {
                    person,
                    entry,
                    drift,
                } => {
                    touched.insert(person);
                    let mut it = item(&person, &rows, Some(&entry));
                    it.drift = drift
                        .into_iter()
                        .map(|d| drift_name(d).to_owned())
                        .collect();
                    view.update.push(it);
                    actions.push((e.name.clone(), person, Op::Upsert));
                }
                PlanAction::Disable { person, entry } | PlanAction::Delete { person, entry }
                    if wanted_ids.contains(&person) =>
                {
                    let _ = entry;
                    view.duplicates += 1;
                }
                PlanAction::Disable { person, entry } => {
                    view.disable.push(item(&person, &rows, Some(&entry)));
                    actions.push((e.name.clone(), person, Op::Disable));
                }
                PlanAction::Delete { person, entry } => {
                    view.delete.push(item(&person, &rows, Some(&entry)));
                    actions.push((e.name.clone(), person, Op::Delete));
                }
            }
        }
        for (person, entry, after) in &tp.waiting {
            let mut it = item(person, &rows, Some(entry));
            it.delete_after = Some(fmt_time(*after));
            view.waiting.push(it);
        }
        view.refused = tp.refused.map(|r| RefusalView {
            removals: r.removals,
            managed: r.managed,
            max_share: r.max_share,
        });
        // Attributes edited by hand that the plan's drift does not cover.
        for w in &wanted {
            if touched.contains(&w.id) {
                continue;
            }
            let mut mine: Vec<&ManagedEntry> = known.iter().filter(|k| k.person == w.id).collect();
            mine.sort_by(|a, b| b.enabled.cmp(&a.enabled).then(a.entry_id.cmp(&b.entry_id)));
            let Some(acct) = mine.first() else { continue };
            match compare_account(target.as_ref(), w, Some(acct), now) {
                Ok(c) if !c.ok() => {
                    let mut it = item(&w.id, &rows, Some(&acct.entry_id));
                    it.drift = c
                        .mismatched
                        .iter()
                        .map(|n| format!("attribute:{n}"))
                        .collect();
                    if !c.missing_groups.is_empty() || !c.unexpected_groups.is_empty() {
                        it.drift.push("groups".into());
                    }
                    view.update.push(it);
                    actions.push((e.name.clone(), w.id, Op::Upsert));
                }
                Ok(_) => {}
                Err(err) => {
                    tracing::warn!(target_name = %e.name, person = %w.id, error = %err, "account compare failed");
                }
            }
        }
        views.push(view);
        done += 1;
        if let Some(p) = progress {
            p.update(done, read, 0).await;
        }
    }
    Ok((
        SyncPlan {
            computed_at: fmt_time(now),
            force,
            targets: views,
        },
        actions,
    ))
}

/// The plan. Permit: `sync.plan`.
pub async fn plan_permitted(
    ctx: &Delivery,
    permit: &Permit,
    force: bool,
) -> DomainResult<SyncPlan> {
    permit.require(Action::SyncPlan)?;
    Ok(compute(ctx, force, None).await?.0)
}

async fn arm_all(
    ctx: &Delivery,
    actor: &str,
    action: &str,
    actions: &[(TargetName, PersonId, Op)],
    how: Arm,
) -> DomainResult<usize> {
    let vault = &ctx.vault;
    let mut tx = vault.db().begin_write().await?;
    let now = vault.now();
    let mut armed = 0;
    for (t, p, op) in actions {
        if jobs::arm(&mut tx, now, p, t, *op, how).await? {
            armed += 1;
        }
    }
    vault
        .audit(
            &mut tx,
            &NewEvent {
                actor,
                action,
                case_id: None,
                purpose: None,
                outcome: Outcome::Ok,
            },
        )
        .await?;
    tx.commit().await?;
    if armed > 0 {
        ctx.runtime.wake();
    }
    Ok(armed)
}

/// Plan and arm the jobs (the worker carries them out). `actor` for the audit trail.
pub async fn apply_as(ctx: &Delivery, actor: &str, force: bool) -> DomainResult<ApplyResult> {
    let (plan, actions) = compute(ctx, force, None).await?;
    let jobs_armed = arm_all(
        ctx,
        actor,
        Action::SyncApply.as_str(),
        &actions,
        Arm::Operator,
    )
    .await?;
    Ok(ApplyResult { plan, jobs_armed })
}

/// Apply. Permit: `sync.apply`.
pub async fn apply(ctx: &Delivery, permit: &Permit, force: bool) -> DomainResult<ApplyResult> {
    permit.require(Action::SyncApply)?;
    apply_as(ctx, permit.principal_id(), force).await
}

/// Reconciliation: bring the desired state up to date, then plan (never forced) and
/// arm jobs for the drift, leaving failed jobs failed. The result is the drift report.
pub async fn reconcile_body(
    ctx: &Delivery,
    actor: &str,
    progress: Option<&super::checks::RunProgress>,
) -> DomainResult<ApplyResult> {
    let settings = ctx.runtime.settings();
    desired::sync_all(&ctx.vault, settings.grace()).await?;
    let set = ctx.runtime.targets(&ctx.vault).await?;
    jobs::fan_out(&ctx.vault, &set).await?;
    let (plan, actions) = compute(ctx, false, progress).await?;
    let jobs_armed = arm_all(
        ctx,
        actor,
        "provisioning.reconcile",
        &actions,
        Arm::Reconcile,
    )
    .await?;
    if plan.changes() > 0 {
        tracing::info!(
            changes = plan.changes(),
            jobs_armed,
            "reconciliation found drift"
        );
    }
    Ok(ApplyResult { plan, jobs_armed })
}

/// Start a reconciliation run. Permit: `sync.apply`.
pub async fn start_reconcile(
    ctx: &Delivery,
    permit: &Permit,
) -> DomainResult<super::checks::RunView> {
    permit.require(Action::SyncApply)?;
    super::checks::start(
        ctx,
        permit.principal_id(),
        super::checks::RunScope::Reconcile,
        true,
    )
    .await
}
