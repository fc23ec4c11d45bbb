//! Step 2: the action plan (handlingsplan). Structured, sealed under the case's plan
//! key, versioned: every change is kept with who and when.

use fiktiv_policies::{Action, Permit};
use fiktiv_vault::audit::fmt_time;
use fiktiv_vault::{CaseId, Sealed, Vault};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::ToSchema;
use zeroize::{Zeroize as _, Zeroizing};

use super::cases::{self, CaseState};
use super::{
    audit_ok, check_free_text, check_labels, DomainError, DomainResult, FieldProblem, MAX_ITEMS,
};

const PLAN_FIELD: &str = "plan";

/// The action plan's content.
#[derive(Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// How information about the pupil is handled.
    pub information_handling: String,
    /// Platforms the pupil needs (as named in the municipality).
    pub platforms: Vec<String>,
    /// Contact routes with the guardians.
    pub guardian_contact_routes: Vec<String>,
    /// Staff (roles or references) to be told about the plan.
    pub staff_to_inform: Vec<String>,
    /// Anything else.
    pub free_text: String,
    /// The day of the meeting with the guardians where this version was agreed,
    /// `YYYY-MM-DD` (empty: not given; versions before this field have none).
    #[serde(default)]
    pub meeting_date: String,
    /// Who took part in that meeting (roles or names), one per item.
    #[serde(default)]
    pub attendees: Vec<String>,
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Plan([sealed])")
    }
}

impl Plan {
    /// Line breaks as one character: a browser sends a text area's line breaks as
    /// CR LF, and some systems a lone CR. The free-text fields are kept with LF only;
    /// every other control character is still refused.
    fn with_line_feeds(mut self) -> Self {
        fn lf(s: &mut String) {
            if s.contains('\r') {
                let t = Zeroizing::new(s.replace("\r\n", "\n").replace('\r', "\n"));
                s.zeroize();
                s.push_str(&t);
            }
        }
        lf(&mut self.information_handling);
        lf(&mut self.free_text);
        for r in &mut self.guardian_contact_routes {
            lf(r);
        }
        self
    }

    fn validate(&self) -> Vec<FieldProblem> {
        let mut out = Vec::new();
        check_free_text("information_handling", &self.information_handling, &mut out);
        check_labels("platforms", &self.platforms, &mut out);
        if self.guardian_contact_routes.len() > MAX_ITEMS {
            out.push(FieldProblem::new(
                "guardian_contact_routes",
                "list.too-long",
                "The list has too many items (at most 50).",
            ));
        }
        for (i, r) in self.guardian_contact_routes.iter().enumerate() {
            check_free_text(&format!("guardian_contact_routes[{i}]"), r, &mut out);
        }
        check_labels("staff_to_inform", &self.staff_to_inform, &mut out);
        check_free_text("free_text", &self.free_text, &mut out);
        if !self.meeting_date.trim().is_empty() {
            super::check_date("meeting_date", self.meeting_date.trim(), &mut out);
        }
        check_labels("attendees", &self.attendees, &mut out);
        if self.information_handling.trim().is_empty()
            && self.platforms.is_empty()
            && self.guardian_contact_routes.is_empty()
            && self.staff_to_inform.is_empty()
            && self.free_text.trim().is_empty()
        {
            out.push(FieldProblem::new(
                "information_handling",
                "plan.empty",
                "The plan is empty: write at least how information about the pupil is handled.",
            ));
        }
        out
    }
}

/// A plan version was written.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanWritten {
    pub version: i64,
}

/// Write a new version of the plan. Permit: `plan.write`.
pub async fn write(
    vault: &Vault,
    permit: &Permit,
    case: &CaseId,
    plan: Plan,
) -> DomainResult<PlanWritten> {
    permit.require(Action::PlanWrite)?;
    let plan = plan.with_line_feeds();
    let problems = plan.validate();
    if !problems.is_empty() {
        return Err(DomainError::Invalid(problems));
    }
    let bytes = Zeroizing::new(
        serde_json::to_vec(&plan).map_err(|e| DomainError::Internal(e.to_string()))?,
    );
    drop(plan);
    let mut tx = vault.db().begin_write().await?;
    let row = cases::load(&mut tx, case).await?;
    if row.state == CaseState::Ended {
        return Err(DomainError::wrong_state());
    }
    let version = insert_version(
        vault,
        &mut tx,
        case,
        &row.plan_key,
        permit.principal_id(),
        &bytes,
    )
    .await?;
    if row.plan_required_since.is_some() {
        // A reopened case: this is the new plan version it waited for. Provisioning
        // may go on (the accounts are enabled again, in place).
        sqlx::query("UPDATE cases SET plan_required_since = NULL WHERE case_id = $1")
            .bind(case.to_string())
            .execute(&mut *tx)
            .await?;
        crate::desired::sync_case(vault, &mut tx, case).await?;
    }
    audit_ok(vault, &mut tx, permit, Some(*case), None).await?;
    tx.commit().await?;
    Ok(PlanWritten { version })
}

/// Seals `bytes` (a plan as JSON) under the case's plan key and stores it as the next
/// version, in the caller's transaction. Returns the version.
pub(crate) async fn insert_version(
    vault: &Vault,
    conn: &mut sqlx::AnyConnection,
    case: &CaseId,
    plan_key: &CaseId,
    written_by: &str,
    bytes: &[u8],
) -> DomainResult<i64> {
    let sealed = vault.seal(conn, plan_key, PLAN_FIELD, bytes).await?;
    let max: Option<i64> =
        sqlx::query("SELECT MAX(version) AS v FROM plan_versions WHERE case_id = $1")
            .bind(case.to_string())
            .fetch_one(&mut *conn)
            .await?
            .try_get("v")?;
    let version = max.unwrap_or(0) + 1;
    sqlx::query(
        "INSERT INTO plan_versions (case_id, version, dk_version, sealed, written_by, written_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(case.to_string())
    .bind(version)
    .bind(i64::from(sealed.dk_version))
    .bind(sealed.bytes)
    .bind(written_by)
    .bind(fmt_time(vault.now()))
    .execute(&mut *conn)
    .await?;
    Ok(version)
}

/// The latest plan version of a case, opened, in the caller's transaction; `None`
/// when there is none. No audit event: the caller audits the step it belongs to.
pub(crate) async fn latest_in(
    vault: &Vault,
    conn: &mut sqlx::AnyConnection,
    case: &CaseId,
    plan_key: &CaseId,
) -> DomainResult<Option<Plan>> {
    let Some(r) = sqlx::query(
        "SELECT dk_version, sealed FROM plan_versions WHERE case_id = $1 \
         ORDER BY version DESC LIMIT 1",
    )
    .bind(case.to_string())
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    let sealed = Sealed {
        dk_version: u32::try_from(r.try_get::<i64, _>("dk_version")?)
            .map_err(|_| DomainError::Internal("bad dk_version".into()))?,
        bytes: r.try_get("sealed")?,
    };
    let plain = vault.open(conn, plan_key, PLAN_FIELD, &sealed).await?;
    let plan: Plan = serde_json::from_slice(&plain)
        .map_err(|_| DomainError::Internal("stored plan is malformed".into()))?;
    Ok(Some(plan))
}

/// Who wrote a version, and when.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanVersionInfo {
    pub version: i64,
    pub written_by: String,
    pub written_at: String,
}

/// A plan version with its content.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanView {
    pub version: i64,
    pub written_by: String,
    pub written_at: String,
    pub plan: Plan,
    /// Every version, oldest first.
    pub history: Vec<PlanVersionInfo>,
}

/// Who wrote each version of a case's plan, and when, oldest first (no content).
pub(crate) async fn history(
    conn: &mut sqlx::AnyConnection,
    case: &CaseId,
) -> DomainResult<Vec<PlanVersionInfo>> {
    Ok(sqlx::query(
        "SELECT version, written_by, written_at FROM plan_versions WHERE case_id = $1 \
         ORDER BY version",
    )
    .bind(case.to_string())
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| {
        Ok(PlanVersionInfo {
            version: r.try_get("version")?,
            written_by: r.try_get("written_by")?,
            written_at: r.try_get("written_at")?,
        })
    })
    .collect::<Result<_, sqlx::Error>>()?)
}

/// Read the plan: the newest version, or `version`. Permit: `plan.read`. The read is
/// audited in the same transaction that opens the sealed plan.
pub async fn read(
    vault: &Vault,
    permit: &Permit,
    case: &CaseId,
    version: Option<i64>,
) -> DomainResult<PlanView> {
    permit.require(Action::PlanRead)?;
    let mut tx = vault.db().begin_write().await?;
    let row = cases::load(&mut tx, case).await?;
    let history = history(&mut tx, case).await?;
    let want = match version {
        Some(v) => v,
        None => history.last().map(|h| h.version).ok_or(no_plan())?,
    };
    let r = sqlx::query(
        "SELECT version, dk_version, sealed, written_by, written_at FROM plan_versions \
         WHERE case_id = $1 AND version = $2",
    )
    .bind(case.to_string())
    .bind(want)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(no_plan())?;
    let sealed = Sealed {
        dk_version: u32::try_from(r.try_get::<i64, _>("dk_version")?)
            .map_err(|_| DomainError::Internal("bad dk_version".into()))?,
        bytes: r.try_get("sealed")?,
    };
    audit_ok(vault, &mut tx, permit, Some(*case), None).await?;
    let plain = vault
        .open(&mut tx, &row.plan_key, PLAN_FIELD, &sealed)
        .await
        .map_err(|_| DomainError::Gone {
            code: "plan-shredded",
            message: "The action plan of this case has been shredded.",
        })?;
    tx.commit().await?;
    let plan: Plan =
        serde_json::from_slice(&plain).map_err(|e| DomainError::Internal(e.to_string()))?;
    Ok(PlanView {
        version: r.try_get("version")?,
        written_by: r.try_get("written_by")?,
        written_at: r.try_get("written_at")?,
        plan,
        history,
    })
}

fn no_plan() -> DomainError {
    DomainError::Conflict {
        code: "no-plan",
        message: "No action plan (or no such version) has been written for this case.",
    }
}

/// Whether the case has a plan (used by the order step).
pub async fn has_plan(conn: &mut sqlx::AnyConnection, case: &CaseId) -> DomainResult<bool> {
    let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM plan_versions WHERE case_id = $1")
        .bind(case.to_string())
        .fetch_one(&mut *conn)
        .await?
        .try_get("n")?;
    Ok(n > 0)
}
