//! Step 6: the order to the central administrator. It carries only the fictitious
//! identities, the school unit, groups and platforms. The queue shows what is waiting,
//! and for how long.

use chrono::DateTime;
use fiktiv_policies::{Action, Permit};
use fiktiv_vault::audit::fmt_time;
use fiktiv_vault::{CaseId, Vault};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::ToSchema;

use super::cases::{self, CaseState, CountryCode, FictitiousView};
use super::guardians::{self, GuardianFictitious};
use super::ids::OrderId;
use super::{audit_ok, check_labels, parse_country, plans, DomainError, DomainResult};

/// Send the order.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderInput {
    /// Class or groups the pupil belongs to (labels, no personal data).
    pub groups: Vec<String>,
    /// Platforms the fictitious pupil needs accounts in.
    pub platforms: Vec<String>,
}

/// The order was sent.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderSent {
    pub order_id: String,
    pub sent_at: String,
}

/// Send the order (step 6). Permit: `order.send`. Needs the plan, the decision
/// "fictitious user" and the fictitious identity.
pub async fn send(
    vault: &Vault,
    permit: &Permit,
    case: &CaseId,
    input: OrderInput,
) -> DomainResult<OrderSent> {
    permit.require(Action::OrderSend)?;
    let mut problems = Vec::new();
    check_labels("groups", &input.groups, &mut problems);
    check_labels("platforms", &input.platforms, &mut problems);
    if input.platforms.is_empty() {
        problems.push(super::FieldProblem::new(
            "platforms",
            "order.no-platforms",
            "An order names at least one platform.",
        ));
    }
    if !problems.is_empty() {
        return Err(DomainError::Invalid(problems));
    }
    let mut tx = vault.db().begin_write().await?;
    let row = cases::load(&mut tx, case).await?;
    if row.state != CaseState::Open {
        return Err(DomainError::wrong_state());
    }
    if !plans::has_plan(&mut tx, case).await? {
        return Err(DomainError::conflict(
            "plan-required",
            "Write the action plan before sending the order.",
        ));
    }
    if row.login_decision.as_deref() != Some("fictitious-user") {
        return Err(DomainError::conflict(
            "decision-required",
            "Only a decision of \"fictitious user\" leads to an order.",
        ));
    }
    if row.fictitious().is_none() {
        return Err(DomainError::conflict(
            "fictitious-identity-required",
            "Decide the fictitious identity before sending the order.",
        ));
    }
    let order = OrderId::new();
    let now = fmt_time(vault.now());
    let json = |v: &Vec<String>| {
        serde_json::to_string(&v.iter().map(|s| s.trim()).collect::<Vec<_>>())
            .map_err(|e| DomainError::Internal(e.to_string()))
    };
    sqlx::query(
        "INSERT INTO orders (order_id, case_id, unit, groups_json, platforms_json, sent_by, \
         sent_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(order.to_string())
    .bind(case.to_string())
    .bind(&row.unit)
    .bind(json(&input.groups)?)
    .bind(json(&input.platforms)?)
    .bind(permit.principal_id())
    .bind(&now)
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE cases SET state = 'ordered' WHERE case_id = $1")
        .bind(case.to_string())
        .execute(&mut *tx)
        .await?;
    audit_ok(vault, &mut tx, permit, Some(*case), None).await?;
    tx.commit().await?;
    Ok(OrderSent {
        order_id: order.to_string(),
        sent_at: now,
    })
}

/// An order as the central administrator sees it: fictitious data only.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderView {
    pub order_id: String,
    pub case_id: String,
    pub unit: String,
    pub country: CountryCode,
    pub pupil: FictitiousView,
    pub guardians: Vec<GuardianFictitious>,
    pub groups: Vec<String>,
    pub platforms: Vec<String>,
    pub sent_at: String,
    /// Whole minutes the order has waited (until registration, or until now).
    pub waiting_minutes: i64,
    pub registered_at: Option<String>,
    /// The case's state: `ordered` while waiting, `registered`, or `ended` (a case
    /// that ended before registration no longer waits: deprovisioning was asked for).
    pub case_state: CaseState,
}

/// Which case and unit an order belongs to (for authorization).
pub async fn case_of(vault: &Vault, order: &OrderId) -> DomainResult<(CaseId, String)> {
    let r = sqlx::query("SELECT case_id, unit FROM orders WHERE order_id = $1")
        .bind(order.to_string())
        .fetch_optional(vault.db().pool())
        .await?
        .ok_or(DomainError::NotFound)?;
    let case: String = r.try_get("case_id")?;
    Ok((
        case.parse()
            .map_err(|_| DomainError::Internal("stored case id is malformed".into()))?,
        r.try_get("unit")?,
    ))
}

/// The order queue: waiting orders (oldest first), or all orders. An order whose
/// case ended before registration does not wait any more. Permit:
/// `order-queue.read` on the municipality.
pub async fn queue(
    vault: &Vault,
    permit: &Permit,
    include_registered: bool,
) -> DomainResult<Vec<OrderView>> {
    permit.require(Action::OrderQueueRead)?;
    let mut conn = vault.db().pool().acquire().await?;
    let rows = sqlx::query(
        "SELECT o.order_id, o.case_id, o.unit, o.groups_json, o.platforms_json, o.sent_at, \
         o.registered_at, c.country, c.state, c.fict_first, c.fict_last, c.fict_birth, \
         c.fict_number FROM orders o JOIN cases c ON c.case_id = o.case_id \
         WHERE ($1 = 1 OR (o.registered_at IS NULL AND c.state = 'ordered')) \
         ORDER BY o.sent_at, o.order_id",
    )
    .bind(i64::from(include_registered))
    .fetch_all(&mut *conn)
    .await?;
    let now = vault.now();
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let case_id: String = r.try_get("case_id")?;
        let case: CaseId = case_id
            .parse()
            .map_err(|_| DomainError::Internal("stored case id is malformed".into()))?;
        let sent_at: String = r.try_get("sent_at")?;
        let registered_at: Option<String> = r.try_get("registered_at")?;
        let until = match &registered_at {
            Some(t) => parse_time(t)?,
            None => now,
        };
        let waited = until.signed_duration_since(parse_time(&sent_at)?);
        let list = |col: &str| -> DomainResult<Vec<String>> {
            let s: String = r.try_get(col)?;
            serde_json::from_str(&s).map_err(|e| DomainError::Internal(e.to_string()))
        };
        out.push(OrderView {
            order_id: r.try_get("order_id")?,
            case_id,
            unit: r.try_get("unit")?,
            country: parse_country(&r.try_get::<String, _>("country")?)?.into(),
            // Fictitious data only: the real identity is never joined in here.
            pupil: FictitiousView {
                first_name: r
                    .try_get::<Option<String>, _>("fict_first")?
                    .unwrap_or_default(),
                last_name: r
                    .try_get::<Option<String>, _>("fict_last")?
                    .unwrap_or_default(),
                birth_date: r
                    .try_get::<Option<String>, _>("fict_birth")?
                    .unwrap_or_default(),
                number: r.try_get("fict_number")?,
            },
            guardians: guardians::linked(&mut conn, &case).await?,
            groups: list("groups_json")?,
            platforms: list("platforms_json")?,
            sent_at,
            waiting_minutes: waited.num_minutes().max(0),
            registered_at,
            case_state: CaseState::parse(&r.try_get::<String, _>("state")?)?,
        });
    }
    Ok(out)
}

pub fn parse_time(s: &str) -> DomainResult<DateTime<chrono::Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|_| DomainError::Internal("stored time is malformed".into()))
}
