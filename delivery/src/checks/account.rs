//! The account check (step 5): each fictitious person's account read back from the
//! target, with the time of reading, against what it should be.

use std::collections::BTreeSet;

use fiktiv_provisioning::{compare_account, ManagedEntry};
use fiktiv_vault::audit::fmt_time;
use fiktiv_vault::CaseId;
use serde::Serialize;
use utoipa::ToSchema;

use crate::targets::TargetEntry;
use crate::Delivery;
use fiktiv_routine::desired::{self, Desired, PersonRow};
use fiktiv_routine::DomainResult;

use super::*;

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

/// A platform an order names that no target serves: Fiktiv provisions nothing there,
/// so it cannot say the pupil's account there is as it should be.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UnprovisionedPlatform {
    pub case_id: String,
    pub person_id: String,
    /// `pupil` or `guardian-N`.
    pub subject: String,
    /// The platform as the order names it.
    pub platform: String,
    /// `not provisioned: no target for <platform>`.
    pub problem: String,
}

/// Every account checked.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AccountCheckResult {
    /// True when every account is as desired, every target could be read, and every
    /// platform an order names has a target.
    pub ok: bool,
    pub accounts: Vec<AccountCheckItem>,
    /// Ordered platforms with no target (a target serves a platform named as the
    /// target is, or listed in its `platforms`).
    #[serde(default)]
    pub unprovisioned: Vec<UnprovisionedPlatform>,
}

impl Findings for AccountCheckResult {
    fn findings(&self) -> i64 {
        let bad = self.accounts.iter().filter(|a| !a.ok).count() + self.unprovisioned.len();
        i64::try_from(bad).unwrap_or(0)
    }
}

/// The platforms of present persons that no target in `set` serves.
fn unprovisioned(
    set: &crate::targets::TargetSet,
    persons: &[PersonRow],
) -> Vec<UnprovisionedPlatform> {
    let mut out = Vec::new();
    for p in persons.iter().filter(|p| p.desired == Desired::Present) {
        let mut seen = BTreeSet::new();
        for platform in &p.platforms {
            let name = platform.trim();
            if name.is_empty() || !seen.insert(name.to_lowercase()) {
                continue;
            }
            if !set.entries.values().any(|e| e.serves(name)) {
                out.push(UnprovisionedPlatform {
                    case_id: p.case.to_string(),
                    person_id: p.id.to_string(),
                    subject: p.subject.clone(),
                    platform: name.to_owned(),
                    problem: format!("not provisioned: no target for {name}"),
                });
            }
        }
    }
    out
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
    ctx: &Delivery,
    case: Option<&CaseId>,
) -> DomainResult<(Vec<PersonRow>, BTreeSet<(String, String)>)> {
    let mut conn = ctx.vault.db().pool().acquire().await?;
    let persons = desired::load_persons(&mut conn, case).await?;
    let jobs: BTreeSet<(String, String)> = fiktiv_routine::outbox::job_keys(&mut conn)
        .await?
        .into_iter()
        .collect();
    Ok((persons, jobs))
}

fn belongs(e: &TargetEntry, p: &PersonRow, jobs: &BTreeSet<(String, String)>) -> bool {
    (p.desired == Desired::Present && e.receives(&p.platforms))
        || jobs.contains(&(p.id.to_string(), e.name.to_string()))
}

pub(super) async fn account_check(
    ctx: &Delivery,
    case: Option<&CaseId>,
    only: Option<&str>,
    progress: &RunProgress,
) -> DomainResult<AccountCheckResult> {
    let vault = &ctx.vault;
    let set = ctx.runtime.targets(vault).await?;
    let (persons, jobs) = persons_on(ctx, case).await?;
    let limit = ctx.runtime.settings().job_timeout();
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
    // Only a check of every target can tell that none serves a platform.
    let unprovisioned = if only.is_none() {
        unprovisioned(&set, &persons)
    } else {
        Vec::new()
    };
    let ok = all_read && accounts.iter().all(|a| a.ok) && unprovisioned.is_empty();
    Ok(AccountCheckResult {
        ok,
        accounts,
        unprovisioned,
    })
}
