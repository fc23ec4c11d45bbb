//! The feed: Fiktiv's read-only SS 12000 API (version 2.1.0) under `/ss12000/v2`, for
//! the platforms. Thin: the consumer's token, the hub's freshness, one call of
//! [`fiktiv_routine::feed`], the answer in the specification's shapes (its `Error`
//! body `{code, message}` on every refusal). docs/SS12000.md has what a consumer sees.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::TimeDelta;
use fiktiv_provisioning::guard::EgressGuard;
use fiktiv_routine::feed::{self, Consumer, FeedError, FeedResource, ListQuery};
use serde_json::json;

use super::{AppState, ClientAddr};

/// The feed's base path.
pub const BASE: &str = "/ss12000/v2";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(&format!("{BASE}/deletedEntities"), get(deleted))
        .route(&format!("{BASE}/{{resource}}"), get(list))
        .route(&format!("{BASE}/{{resource}}/lookup"), post(lookup))
        .route(&format!("{BASE}/{{resource}}/{{id}}"), get(one))
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        json!({ "code": code, "message": message }).to_string(),
    )
        .into_response()
}

fn ok(v: serde_json::Value) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

fn from_feed(e: FeedError) -> Response {
    match e {
        FeedError::Stale => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "stale",
            "The school administration system has not been read recently enough; try again later.",
        ),
        FeedError::NotInScope(_) => error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "This client may not read this endpoint.",
        ),
        FeedError::BadRequest(code, message) => error(StatusCode::BAD_REQUEST, code, message),
        FeedError::NotFound => error(StatusCode::NOT_FOUND, "not-found", "No such entity."),
        FeedError::Domain(e) => {
            tracing::error!(error = %e, "feed failed");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "The feed cannot answer now; try again later.",
            )
        }
    }
}

/// The consumer of the bearer token, and the hub fresh enough; or the refusal. An
/// address that sent too many bad tokens is refused (429) before its token is looked
/// at, with the API's own limit (`[limits] failed_tokens_per_address`, shared).
async fn admit(
    st: &AppState,
    headers: &HeaderMap,
    addr: &ClientAddr,
) -> Result<Consumer, Response> {
    let Some(cfg) = st.ctx.config.ss12000.as_ref() else {
        return Err(error(
            StatusCode::NOT_FOUND,
            "not-found",
            "No feed is configured.",
        ));
    };
    let now = st.ctx.vault.now();
    let window = &st.limits.failed_tokens;
    if addr.0.as_deref().is_some_and(|a| window.exhausted(a, now)) {
        let mut r = error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            "Too many requests with a wrong token from this address; try again later.",
        );
        r.headers_mut().insert(
            header::RETRY_AFTER,
            header::HeaderValue::from(window.seconds()),
        );
        return Err(r);
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let consumer = match feed::authenticate(&st.ctx.vault, token).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            if let Some(a) = &addr.0 {
                window.record(a, now);
            }
            return Err(error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "A valid bearer token of a feed consumer is required.",
            ));
        }
        Err(e) => return Err(from_feed(e.into())),
    };
    let max_age = TimeDelta::minutes(i64::try_from(cfg.feed_max_age_minutes).unwrap_or(60));
    match feed::fresh(&st.ctx.vault, max_age).await {
        Ok(true) => {}
        Ok(false) => return Err(from_feed(FeedError::Stale)),
        Err(e) => return Err(from_feed(e.into())),
    }
    // A person changed in the hub since the last read may be newly marked: nothing is
    // served until a read has taken it in (it starts now).
    if fiktiv_app::hub::changed_since_last_read(&st.ctx).await {
        return Err(from_feed(FeedError::Stale));
    }
    Ok(consumer)
}

/// The query of a list: `limit`, `pageToken`, and the rest as the filter (checked, and
/// anything the feed does not serve refused, by the routine).
fn list_query(raw: Option<&str>) -> ListQuery {
    let mut q = ListQuery::default();
    for (k, v) in url_pairs(raw.unwrap_or_default()) {
        match k.as_str() {
            "limit" => q.limit = Some(v),
            "pageToken" => q.page_token = Some(v),
            _ => q.filter.push((k, v)),
        }
    }
    q
}

fn url_pairs(raw: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The resource of the path, the consumer admitted and the egress guard: what every
/// read of a resource starts with.
async fn admitted(
    st: &AppState,
    headers: &HeaderMap,
    addr: &ClientAddr,
    resource: &str,
) -> Result<(FeedResource, Consumer, EgressGuard), Response> {
    let Some(resource) = FeedResource::parse(resource) else {
        return Err(error(
            StatusCode::NOT_FOUND,
            "not-found",
            "No such resource in this feed.",
        ));
    };
    let consumer = admit(st, headers, addr).await?;
    let guard = fiktiv_delivery::targets::egress_guard(&st.ctx.vault)
        .await
        .map_err(|e| from_feed(e.into()))?;
    Ok((resource, consumer, guard))
}

async fn list(
    State(st): State<AppState>,
    Path(resource): Path<String>,
    RawQuery(raw): RawQuery,
    addr: ClientAddr,
    headers: HeaderMap,
) -> Response {
    let (resource, consumer, guard) = match admitted(&st, &headers, &addr, &resource).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let q = list_query(raw.as_deref());
    match feed::list(&st.ctx.vault, &guard, &consumer, resource, &q).await {
        Ok(a) => ok(a.0),
        Err(e) => from_feed(e),
    }
}

async fn one(
    State(st): State<AppState>,
    Path((resource, id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    addr: ClientAddr,
    headers: HeaderMap,
) -> Response {
    let (resource, consumer, guard) = match admitted(&st, &headers, &addr, &resource).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let query = url_pairs(raw.as_deref().unwrap_or_default());
    match feed::one(&st.ctx.vault, &guard, &consumer, resource, &id, &query).await {
        Ok(a) => ok(a.0),
        Err(e) => from_feed(e),
    }
}

/// The parameters of a lookup: `expandReferenceNames` only (answered without the
/// names); `expand` and anything else refused rather than ignored.
fn only_reference_names(raw: Option<&str>) -> Result<(), FeedError> {
    for (k, _) in url_pairs(raw.unwrap_or_default()) {
        if k != "expandReferenceNames" {
            return Err(FeedError::BadRequest(
                "unsupported-parameter",
                "This parameter is not supported by this feed for this resource (see the feed's documentation); it is refused rather than ignored.",
            ));
        }
    }
    Ok(())
}

/// The largest lookup body read.
const MAX_LOOKUP_BODY: usize = 256 * 1024;

async fn lookup(
    State(st): State<AppState>,
    Path(resource): Path<String>,
    RawQuery(raw): RawQuery,
    addr: ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (resource, consumer, guard) = match admitted(&st, &headers, &addr, &resource).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    if let Err(e) = only_reference_names(raw.as_deref()) {
        return from_feed(e);
    }
    let parsed = (body.len() <= MAX_LOOKUP_BODY)
        .then(|| serde_json::from_slice::<serde_json::Value>(&body).ok())
        .flatten();
    let Some(body) = parsed else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid-body",
            "The body is not a lookup of this resource (JSON, at most 256 KiB).",
        );
    };
    match feed::lookup(&st.ctx.vault, &guard, &consumer, resource, &body).await {
        Ok(a) => ok(a.0),
        Err(e) => from_feed(e),
    }
}

async fn deleted(
    State(st): State<AppState>,
    RawQuery(raw): RawQuery,
    addr: ClientAddr,
    headers: HeaderMap,
) -> Response {
    let consumer = match admit(&st, &headers, &addr).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let mut q = ListQuery::default();
    let mut rest = Vec::new();
    for (k, v) in url_pairs(raw.as_deref().unwrap_or_default()) {
        match k.as_str() {
            "limit" => q.limit = Some(v),
            "pageToken" => q.page_token = Some(v),
            "after" | "entities" => rest.push((k, v)),
            _ => {
                return from_feed(FeedError::BadRequest(
                    "unsupported-parameter",
                    "/deletedEntities takes after, entities, limit and pageToken.",
                ))
            }
        }
    }
    let after = rest
        .iter()
        .find(|(k, _)| k == "after")
        .map(|(_, v)| v.as_str());
    // `entities` (the specification's object types: `Person`, `Group`, ...) narrows
    // what is answered to those the consumer may read anyway.
    let mut wanted: Vec<FeedResource> = Vec::new();
    let mut any = false;
    for (_, v) in rest.iter().filter(|(k, _)| k == "entities") {
        any = true;
        match v.as_str() {
            "Organisation" => wanted.push(FeedResource::Organisations),
            "Person" => wanted.push(FeedResource::Persons),
            "Group" => wanted.push(FeedResource::Groups),
            "Duty" => wanted.push(FeedResource::Duties),
            "Activity" => wanted.push(FeedResource::Activities),
            "Absence" | "AttendanceEvent" | "Attendance" | "Grade" | "CalendarEvent"
            | "AttendanceSchedule" | "Resource" | "Room" | "Placement" | "StudyPlan"
            | "Programme" | "Syllabus" | "SchoolUnitOffering" => {}
            _ => {
                return from_feed(FeedError::BadRequest(
                    "invalid-entities",
                    "entities takes the object types of the specification (Person, Group, ...).",
                ))
            }
        }
    }
    let mut consumer = consumer;
    if any {
        consumer.endpoints.retain(|e| wanted.contains(e));
    }
    match feed::deleted(&st.ctx.vault, &consumer, after, &q).await {
        Ok(a) => ok(a.0),
        Err(e) => from_feed(e),
    }
}
