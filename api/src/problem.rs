//! Errors as RFC 9457 problem+json with a stable type per error, and extractors whose
//! rejections are problems too. No problem ever echoes an input value: serde's messages
//! (which can quote the input) are replaced by fixed text.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;
use utoipa::ToSchema;

use fiktiv_routine::{DomainError, FieldProblem};

/// Prefix of every problem type.
pub const TYPE_PREFIX: &str = "urn:fiktiv:problem:";

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// `urn:fiktiv:problem:<slug>`, stable per kind of error.
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    /// Fixed text; never an input value.
    pub detail: String,
    /// Per-field problems of a validation error.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub violations: Vec<FieldProblem>,
}

/// An error on its way to becoming a problem response.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub slug: &'static str,
    pub title: &'static str,
    pub detail: &'static str,
    pub violations: Vec<FieldProblem>,
    /// Seconds for `Retry-After` on a 429 (60 when not set).
    pub retry_after: Option<i64>,
}

impl ApiError {
    pub const fn new(
        status: StatusCode,
        slug: &'static str,
        title: &'static str,
        detail: &'static str,
    ) -> Self {
        Self {
            status,
            slug,
            title,
            detail,
            violations: Vec::new(),
            retry_after: None,
        }
    }

    /// Not found, or not permitted to know: the same answer for both.
    pub const fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "Not found",
            "There is no such resource, or you may not see it.",
        )
    }

    pub const fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Forbidden",
            "Your roles do not allow this.",
        )
    }

    pub const fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "Authentication required",
            "Send a valid, unexpired bearer token (fiktiv tokens create).",
        )
    }

    /// Too many requests: a rate limit of `super::limits`. The response carries
    /// `Retry-After`: the limit's window with [`ApiError::retry_after`], else 60.
    pub const fn rate_limited() -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            "Too many requests",
            "Too many requests from this client or person; wait and try again.",
        )
    }

    /// The seconds a client is told to wait (`Retry-After`) on this 429.
    pub fn retry_after(mut self, seconds: i64) -> Self {
        self.retry_after = Some(seconds.max(1));
        self
    }

    pub const fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "Something went wrong inside Fiktiv. Nothing was changed. The event is logged.",
        )
    }

    /// A problem for an error response that the framework or a layer made (wrong
    /// method, body over the limit before it was read, timeout, bad path).
    pub fn from_status(status: StatusCode) -> Self {
        match status {
            StatusCode::METHOD_NOT_ALLOWED => Self::new(
                status,
                "method-not-allowed",
                "Method not allowed",
                "This resource does not support this HTTP method.",
            ),
            StatusCode::PAYLOAD_TOO_LARGE => Self::bad_body(
                status,
                "body-too-large",
                "The request body is larger than the configured limit.",
            ),
            StatusCode::REQUEST_TIMEOUT => Self::new(
                status,
                "timeout",
                "Request timeout",
                "The request took longer than the configured limit. Nothing was changed.",
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::bad_body(
                status,
                "unsupported-media-type",
                "Send the body as application/json.",
            ),
            StatusCode::NOT_FOUND => Self::not_found(),
            s if s.is_client_error() => Self::new(
                s,
                "bad-request",
                "Bad request",
                "The request could not be understood.",
            ),
            _ => Self::internal(),
        }
    }

    fn bad_body(status: StatusCode, slug: &'static str, detail: &'static str) -> Self {
        Self::new(status, slug, "Bad request body", detail)
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::NotFound => Self::not_found(),
            DomainError::Denied(_) => Self::forbidden(),
            DomainError::Invalid(v) => Self {
                violations: v,
                ..Self::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "validation",
                    "Invalid input",
                    "One or more fields are not valid; see violations.",
                )
            },
            DomainError::Conflict { code, message } => {
                Self::new(StatusCode::CONFLICT, code, "Conflict", message)
            }
            DomainError::Gone { code, message } => {
                Self::new(StatusCode::GONE, code, "Gone", message)
            }
            DomainError::Busy { code, message } => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                code,
                "Too many requests",
                message,
            ),
            DomainError::Internal(msg) => {
                tracing::error!(error = %msg, "internal error");
                if msg.starts_with(fiktiv_routine::DATABASE_UNAVAILABLE) {
                    Self::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "database-unavailable",
                        "Database unavailable",
                        "The database could not be reached. Nothing was changed; try again.",
                    )
                } else if msg.starts_with(fiktiv_routine::AUDIT_UNAVAILABLE) {
                    Self::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "audit-unavailable",
                        "Audit trail unavailable",
                        "The audit trail could not be written, so nothing was done. Nothing \
                         was changed; tell the system administrator.",
                    )
                } else {
                    Self::internal()
                }
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Problem {
            type_: format!("{TYPE_PREFIX}{}", self.slug),
            title: self.title.to_owned(),
            status: self.status.as_u16(),
            detail: self.detail.to_owned(),
            violations: self.violations,
        };
        let mut resp = (self.status, axum::Json(body)).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(self.retry_after.unwrap_or(60)),
            );
        }
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

/// JSON body with problem+json rejections (unknown fields, wrong types, too large, not
/// JSON): each a 4xx with fixed text.
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(rejection) => Err(match rejection {
                JsonRejection::JsonSyntaxError(_) => ApiError::bad_body(
                    StatusCode::BAD_REQUEST,
                    "malformed-json",
                    "The request body is not valid JSON.",
                ),
                JsonRejection::JsonDataError(_) => ApiError::bad_body(
                    StatusCode::BAD_REQUEST,
                    "invalid-body",
                    "The request body does not fit this endpoint: a field is unknown, \
                     missing, duplicated or of the wrong type.",
                ),
                JsonRejection::MissingJsonContentType(_) => ApiError::bad_body(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported-media-type",
                    "Send the body as application/json.",
                ),
                other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::bad_body(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body-too-large",
                    "The request body is larger than the configured limit.",
                ),
                _ => ApiError::bad_body(
                    StatusCode::BAD_REQUEST,
                    "unreadable-body",
                    "The request body could not be read.",
                ),
            }),
        }
    }
}

/// Query string with problem+json rejections.
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Self(v)),
            Err(QueryRejection::FailedToDeserializeQueryString(_)) | Err(_) => {
                Err(ApiError::bad_body(
                    StatusCode::BAD_REQUEST,
                    "invalid-query",
                    "The query string does not fit this endpoint.",
                ))
            }
        }
    }
}

/// Middleware for `/api/` paths: an error response that is not already problem+json
/// (made by the router or a layer, with a plain or empty body) is replaced by the
/// problem for its status, so every API error has a stable type.
pub async fn problems_only(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let api = req.uri().path().starts_with("/api/");
    let resp = next.run(req).await;
    let status = resp.status();
    if !api || !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let is_problem = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == b"application/problem+json");
    if is_problem {
        return resp;
    }
    let allow = resp.headers().get(header::ALLOW).cloned();
    let mut out = ApiError::from_status(status).into_response();
    if let Some(allow) = allow {
        out.headers_mut().insert(header::ALLOW, allow);
    }
    out
}
