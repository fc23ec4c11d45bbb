//! What needs doing for the caller: the start page's list, as JSON.

use axum::extract::State;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::problem::{ApiError, Problem};
use super::{AppState, Caller};
use fiktiv_app::tasks::{self, Task};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(my_tasks))
}

/// What the caller has to do, most urgent first: counts and the page of each, from the
/// same function as the web UI's start page. Only what the caller may act on is
/// counted.
#[utoipa::path(
    get, path = "/api/v1/me/tasks", tag = "me",
    responses((status = 200, body = Vec<Task>), (status = 401, body = Problem)),
    security(("bearer" = []))
)]
async fn my_tasks(State(st): State<AppState>, caller: Caller) -> Result<Json<Vec<Task>>, ApiError> {
    Ok(Json(tasks::tasks(&st.ctx, &st.ctx.authz, &caller.0).await?))
}
