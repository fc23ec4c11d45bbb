//! Logging via `tracing`: structured JSON by default, never personal data at any level.
//! Real-identity types print `[redacted]`, so even a mistaken `?value` cannot leak one.
//!
//! Every HTTP request gets a request id (`x-request-id`: the caller's, if it is a plain
//! token of at most 64 characters that holds nothing resembling a personal number,
//! otherwise a new UUID), returned in the response. [`track_request`] runs the request
//! inside one span `request` with the method, the route template (never the path, which
//! holds ids), the request id, and at the end the status and the latency; it then logs
//! one line `request finished` and counts the latency for `/metrics`.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

use fiktiv_app::config::{LogConfig, LogFormat};
use fiktiv_app::metrics::MetricsState;

/// The request id header.
pub const REQUEST_ID: &str = "x-request-id";

/// Install the global subscriber, writing to stderr. `RUST_LOG` wins over `[log]
/// level`. Safe to call more than once.
pub fn init(cfg: &LogConfig) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&cfg.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = install(filter, cfg.format, std::io::stderr);
}

/// Install the global subscriber with `[log] level` (not `RUST_LOG`) and another
/// writer: tests capture the log with it. Returns false when one was installed already.
pub fn init_with_writer<W>(cfg: &LogConfig, writer: W) -> bool
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(&cfg.level).unwrap_or_else(|_| EnvFilter::new("info"));
    install(filter, cfg.format, writer)
}

fn install<W>(filter: EnvFilter, format: LogFormat, writer: W) -> bool
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
            .is_ok(),
        LogFormat::Text => builder.try_init().is_ok(),
    }
}

/// Whether a caller's request id may be kept (and so logged): a short plain token with
/// nothing in it that reads as a personal number.
pub fn acceptable_request_id(v: &str) -> bool {
    (1..=64).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && fiktiv_vault::ids::number_candidates(v).is_empty()
}

/// Drops a caller's `x-request-id` that is not [`acceptable_request_id`], so that the
/// request-id layer makes a new one.
pub async fn sanitize_request_id(mut req: Request, next: Next) -> Response {
    let bad = req
        .headers()
        .get(REQUEST_ID)
        .is_some_and(|v| v.to_str().map_or(true, |s| !acceptable_request_id(s)));
    if bad {
        req.headers_mut().remove(REQUEST_ID);
    }
    next.run(req).await
}

fn method_label(m: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// One span per request (method, route template, request id, status, latency), one
/// log line at its end, and the latency histogram of `/metrics`.
pub async fn track_request(
    State(metrics): State<Arc<MetricsState>>,
    req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let method = method_label(req.method());
    let request_id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    let span = tracing::info_span!(
        "request",
        method,
        route = %route,
        request_id = %request_id,
        status = tracing::field::Empty,
        latency_ms = tracing::field::Empty,
    );
    let resp = next.run(req).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let status = resp.status().as_u16();
    span.record("status", status);
    span.record("latency_ms", elapsed.as_secs_f64() * 1000.0);
    let quiet = matches!(route.as_str(), "/healthz" | "/readyz" | "/metrics");
    span.in_scope(|| {
        if status >= 500 {
            tracing::error!("request finished");
        } else if quiet {
            tracing::debug!("request finished");
        } else {
            tracing::info!("request finished");
        }
    });
    metrics
        .http
        .observe(&route, method, status, elapsed.as_secs_f64());
    resp
}
