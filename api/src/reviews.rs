//! Annual reviews (step 9): due and overdue lists per unit and for the municipality,
//! and recording a review.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use fiktiv_policies::Action;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::problem::{ApiError, ApiJson, ApiQuery, Problem};
use super::{AppState, Caller, Permits};
use fiktiv_routine::reviews::{self, ReviewHistory, ReviewInput, ReviewItem, ReviewRecorded};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(reviews_all))
        .routes(routes!(reviews_unit))
        .routes(routes!(record_review, review_history))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct ReviewQuery {
    /// Every open case, not only due-soon and overdue ones.
    all: Option<bool>,
}

/// Reviews due soon and overdue in the whole municipality.
#[utoipa::path(
    get, path = "/api/v1/reviews", tag = "reviews",
    params(ReviewQuery),
    responses((status = 200, body = Vec<ReviewItem>), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = []))
)]
async fn reviews_all(
    State(st): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ReviewQuery>,
) -> Result<Json<Vec<ReviewItem>>, ApiError> {
    let permit = st.municipality_permit(&caller, Action::ReviewsListAll)?;
    Ok(Json(
        reviews::list(
            &st.ctx.vault,
            &st.ctx.rules,
            &permit,
            None,
            q.all.unwrap_or(false),
        )
        .await?,
    ))
}

/// Reviews due soon and overdue in one school unit.
#[utoipa::path(
    get, path = "/api/v1/units/{unit}/reviews", tag = "reviews",
    params(("unit" = String, Path, description = "School unit code"), ReviewQuery),
    responses((status = 200, body = Vec<ReviewItem>), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = []))
)]
async fn reviews_unit(
    State(st): State<AppState>,
    caller: Caller,
    Path(unit): Path<String>,
    ApiQuery(q): ApiQuery<ReviewQuery>,
) -> Result<Json<Vec<ReviewItem>>, ApiError> {
    let permit = st.unit_permit(&caller, &unit, Action::ReviewsList)?;
    Ok(Json(
        reviews::list(
            &st.ctx.vault,
            &st.ctx.rules,
            &permit,
            Some(&unit),
            q.all.unwrap_or(false),
        )
        .await?,
    ))
}

/// Record a review held today: continue, plan changed, or end protection.
#[utoipa::path(
    post, path = "/api/v1/cases/{case_id}/reviews", tag = "reviews",
    params(("case_id" = String, Path, description = "Case id")),
    request_body = ReviewInput,
    responses(
        (status = 201, body = ReviewRecorded), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)
    ),
    security(("bearer" = []))
)]
async fn record_review(
    State(st): State<AppState>,
    caller: Caller,
    Path(case): Path<String>,
    ApiJson(body): ApiJson<ReviewInput>,
) -> Result<(StatusCode, Json<ReviewRecorded>), ApiError> {
    let (case, permit) = st.case_permit(&caller, &case, Action::ReviewRecord).await?;
    let out = reviews::record(&st.ctx.vault, &st.ctx.rules, &permit, &case, body).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// A case's review history (outcome, who, when) and when the next review is due.
#[utoipa::path(
    get, path = "/api/v1/cases/{case_id}/reviews", tag = "reviews",
    params(("case_id" = String, Path, description = "Case id")),
    responses(
        (status = 200, body = ReviewHistory), (status = 401, body = Problem),
        (status = 404, body = Problem)
    ),
    security(("bearer" = []))
)]
async fn review_history(
    State(st): State<AppState>,
    caller: Caller,
    Path(case): Path<String>,
) -> Result<Json<ReviewHistory>, ApiError> {
    let (case, permit) = st.case_permit(&caller, &case, Action::ReviewRead).await?;
    Ok(Json(
        reviews::history(&st.ctx.vault, &st.ctx.rules, &permit, &case).await?,
    ))
}
