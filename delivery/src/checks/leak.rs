//! The leak scan (step 6): every entry of every target read whole and compared locally
//! with the blind indexes of every real identity; per case clean, unverified, suspect or
//! found, with where, never the value.

use std::collections::BTreeMap;

use std::sync::Arc;

use fiktiv_provisioning::{read_and_scan, report, CaseStatus, Finding};
use fiktiv_vault::audit::{NewEvent, Outcome};
use fiktiv_vault::CaseId;
use serde::Serialize;
use utoipa::ToSchema;

use crate::jobs::raise_alert;
use crate::Delivery;
use fiktiv_routine::DomainResult;

use super::*;

/// Where a real identity was found: target and entry locator (LDAP `entryUUID`,
/// `Users/<id>`, `users.csv:row 3`), the rule that matched and the names of the
/// attributes it matched in. Never the value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, ToSchema)]
pub struct Location {
    pub target: String,
    pub entry: String,
    /// `personal-number`, `name-birth` or `full-name`.
    pub rule: String,
    /// Attribute names (`sn`, `mail`, `users.givenName`), never values.
    pub attributes: Vec<String>,
}

/// Who closed a leak alert that a later clean scan closed (`acknowledged_by`).
pub const CLOSED_BY_CLEAN_SCAN: &str = "system:clean-leak-scan";

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
    /// What was read: the LDAP bases (by default every naming context of the server),
    /// the SCIM endpoints, the roster's files.
    pub scope: Vec<String>,
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

pub(super) async fn leak_scan(
    ctx: &Delivery,
    scope: Option<&CaseId>,
    progress: &RunProgress,
) -> DomainResult<LeakScanResult> {
    let vault = &ctx.vault;
    let set = ctx.runtime.targets(vault).await?;
    let index = Arc::new(vault.blind_index_set().await?);
    let key = vault.keys().blind().clone();
    let limit = ctx.runtime.settings().job_timeout();
    let cases: Vec<CaseId> = vault.indexed_cases().await?;
    let mut findings: Vec<Finding> = Vec::new();
    let mut targets = Vec::new();
    let (mut done, mut read) = (0i64, 0i64);
    for e in set.entries.values() {
        let mut lt = LeakTarget {
            target: e.name.to_string(),
            entries: 0,
            scope: Vec::new(),
            error: None,
        };
        match &e.target {
            Err(p) => lt.error = Some(format!("the target cannot be used: {p}")),
            // Each page is matched while the next is read, and wiped once matched; what
            // was read before a failure is still matched and its findings kept.
            Ok(t) => {
                let s = read_and_scan(t.as_ref(), &key, Arc::clone(&index), limit).await;
                lt.entries = s.read;
                lt.scope = s.scope;
                read += i64::try_from(s.read).unwrap_or(0);
                findings.extend(s.findings);
                lt.error = s.error.map(|e| e.to_string());
            }
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
        let facts = AlertFacts::LeakFound {
            suspect: r.status != CaseStatus::Found,
            entries: r.at.len(),
            at: r
                .at
                .iter()
                .take(20)
                .map(|(t, e)| format!("{t}:{e}"))
                .collect(),
        };
        raise_alert(
            vault,
            &mut tx,
            "leak-found",
            None,
            Some(&r.case),
            None,
            &facts,
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
    // A case found before and clean now, in a scan that read every target completely
    // (the scope of every scan: all targets, whole), has its open leak alerts closed.
    if !incomplete {
        // Only the cases with an open leak alert (not one statement per clean case).
        let alerted = fiktiv_routine::alerts::cases_with_open_leak(&mut tx).await?;
        for r in reports
            .iter()
            .filter(|r| r.status == CaseStatus::Clean && alerted.contains(&r.case.to_string()))
        {
            let closed = fiktiv_routine::alerts::close_leak_alerts(
                &mut tx,
                &r.case,
                CLOSED_BY_CLEAN_SCAN,
                vault.now(),
            )
            .await?;
            if closed > 0 {
                vault
                    .audit(
                        &mut tx,
                        &NewEvent {
                            actor: "system",
                            action: "provisioning.alert-closed",
                            case_id: Some(r.case),
                            purpose: Some("a later leak scan of every target was clean"),
                            outcome: Outcome::Ok,
                        },
                    )
                    .await?;
            }
        }
    }
    tx.commit().await?;
    let wanted: Vec<CaseId> = match scope {
        Some(c) => vec![*c],
        None => cases,
    };
    let by_case: BTreeMap<CaseId, &fiktiv_provisioning::CaseReport> =
        reports.iter().map(|r| (r.case, r)).collect();
    // Each finding where it was, with its rule and attribute names, per case.
    let mut places: BTreeMap<CaseId, std::collections::BTreeSet<Location>> = BTreeMap::new();
    for f in &findings {
        for c in &f.cases {
            places.entry(*c).or_default().insert(Location {
                target: f.target.to_string(),
                entry: f.entry.clone(),
                rule: f.rule.as_str().to_owned(),
                attributes: f.attributes.clone(),
            });
        }
    }
    let out: Vec<LeakCase> = wanted
        .iter()
        .map(|c| {
            let (mut status, at) = match by_case.get(c) {
                Some(r) => (
                    r.status,
                    places
                        .get(c)
                        .map(|p| p.iter().cloned().collect())
                        .unwrap_or_default(),
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
