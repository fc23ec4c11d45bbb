//! The central administrator's order queue (step 6) and registration (step 7).

use axum::extract::{Path, State};
use axum::Json;
use fiktiv_policies::Action;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::problem::{ApiError, ApiJson, ApiQuery, Problem};
use super::{AppState, Caller, Permits};
use fiktiv_routine::orders::{self, OrderView};
use fiktiv_routine::registration::{self, RegisterInput, Registered};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(order_queue))
        .routes(routes!(register_order))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct QueueQuery {
    /// Include registered orders too (default: only waiting ones).
    all: Option<bool>,
}

/// The order queue: what is waiting, and for how long. Fictitious data only.
#[utoipa::path(
    get, path = "/api/v1/orders", tag = "orders",
    params(QueueQuery),
    responses((status = 200, body = Vec<OrderView>), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = []))
)]
async fn order_queue(
    State(st): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<QueueQuery>,
) -> Result<Json<Vec<OrderView>>, ApiError> {
    let permit = st.municipality_permit(&caller, Action::OrderQueueRead)?;
    Ok(Json(
        orders::queue(&st.ctx.vault, &permit, q.all.unwrap_or(false)).await?,
    ))
}

/// Register an order: assign the individual digits, or let Fiktiv pick free ones.
#[utoipa::path(
    post, path = "/api/v1/orders/{order_id}/registration", tag = "orders",
    params(("order_id" = String, Path, description = "Order id")),
    request_body = RegisterInput,
    responses(
        (status = 200, body = Registered), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 404, body = Problem),
        (status = 409, description = "Wrong state, or the number is unavailable", body = Problem),
        (status = 422, body = Problem)
    ),
    security(("bearer" = []))
)]
async fn register_order(
    State(st): State<AppState>,
    caller: Caller,
    Path(order): Path<String>,
    ApiJson(body): ApiJson<RegisterInput>,
) -> Result<Json<Registered>, ApiError> {
    let (order, permit) = st
        .order_permit(&caller, &order, Action::OrderRegister)
        .await?;
    Ok(Json(
        registration::register(&st.ctx.vault, &st.ctx.rules, &permit, &order, body).await?,
    ))
}
