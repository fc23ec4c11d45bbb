//! `fiktiv targets test` for a SCIM target: reachability and TLS, the bearer token, the
//! `/Users` and `/Groups` endpoints, and the resource types and User schema. Reads only.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::ScimTarget;
use crate::detail;
use crate::diagnose::{tcp_reachable, Detail, Diagnosis, Problem};
use crate::scim_parse::{parse_json, parse_list};
use crate::target::TargetError;

fn status_problem(s: StatusCode) -> Problem {
    match s.as_u16() {
        401 => Problem::BadCredentials,
        403 => Problem::PermissionDenied,
        404 => Problem::MissingBase,
        429 | 500..=599 => Problem::Unreachable,
        _ => Problem::Unexpected,
    }
}

impl ScimTarget {
    async fn transport_problem(&self, e: &TargetError) -> (Problem, Detail) {
        let https = self.cfg.base_url.starts_with("https://");
        match e {
            TargetError::Transport {
                kind: "timeout", ..
            } => (
                Problem::Unreachable,
                detail!(
                    "timeout",
                    "no answer from {url} within the timeout",
                    url = self.cfg.base_url
                ),
            ),
            TargetError::RateLimited { .. } => (
                Problem::Unreachable,
                detail!(
                    "rate-limited",
                    "the service kept answering 429 Too Many Requests"
                ),
            ),
            TargetError::Transport { .. }
                if https && tcp_reachable(&self.cfg.base_url, self.cfg.timeout).await =>
            {
                (
                    Problem::Tls,
                    detail!(
                        "https-failed",
                        "{url} accepts TCP connections but the HTTPS connection failed",
                        url = self.cfg.base_url
                    ),
                )
            }
            TargetError::Transport { .. } => (
                Problem::Unreachable,
                detail!(
                    "cannot-connect",
                    "cannot connect to {url}",
                    url = self.cfg.base_url
                ),
            ),
            other => (Problem::Unexpected, Detail::error(other)),
        }
    }

    async fn probe_list(&self, d: &mut Diagnosis, endpoint: &str) -> bool {
        let step = format!("/{endpoint}");
        let q = [("startIndex", "1".to_string()), ("count", "1".to_string())];
        match self.send("test", Method::GET, &step, &q, None, None).await {
            Ok(r) if r.status == StatusCode::OK => match parse_list(&r.body) {
                Ok(page) => {
                    d.pass(
                        &step,
                        detail!("listed", "{n} resources listed", n = page.total_results),
                    );
                    true
                }
                Err(_) => {
                    d.fail(
                        &step,
                        Problem::Unexpected,
                        detail!("not-a-list", "the answer is not a SCIM ListResponse"),
                    );
                    false
                }
            },
            Ok(r) => {
                let detail = match r.status.as_u16() {
                    401 => detail!(
                        "token-refused",
                        "the service refused the bearer token (HTTP 401)"
                    ),
                    403 => detail!(
                        "list-forbidden",
                        "the token may not list {endpoint} (HTTP 403)",
                        endpoint = endpoint
                    ),
                    404 => detail!(
                        "no-endpoint",
                        "there is no /{endpoint} endpoint under {url} (HTTP 404): check base_url",
                        endpoint = endpoint,
                        url = self.cfg.base_url
                    ),
                    s => detail!(
                        "list-failed",
                        "listing {endpoint} failed (HTTP {status})",
                        endpoint = endpoint,
                        status = s
                    ),
                };
                d.fail(&step, status_problem(r.status), detail);
                false
            }
            Err(e) => {
                let (p, detail) = self.transport_problem(&e).await;
                d.fail(&step, p, detail);
                false
            }
        }
    }

    async fn probe_schema(&self, d: &mut Diagnosis) {
        let r = match self
            .send("test", Method::GET, "/ResourceTypes", &[], None, None)
            .await
        {
            Ok(r) => r,
            Err(e) => {
                let (p, detail) = self.transport_problem(&e).await;
                d.fail("schema", p, detail);
                return;
            }
        };
        if r.status == StatusCode::NOT_FOUND || r.status == StatusCode::NOT_IMPLEMENTED {
            d.pass(
                "schema",
                detail!(
                    "no-resource-types",
                    "the service does not publish /ResourceTypes; /Users and /Groups answered"
                ),
            );
            return;
        }
        if r.status != StatusCode::OK {
            d.fail(
                "schema",
                status_problem(r.status),
                detail!(
                    "resource-types-failed",
                    "reading /ResourceTypes failed (HTTP {status})",
                    status = r.status.as_u16()
                ),
            );
            return;
        }
        let v = parse_json(&r.body).unwrap_or(Value::Null);
        let items: Vec<&Value> = match v.get("Resources").and_then(Value::as_array) {
            Some(a) => a.iter().collect(),
            None => v.as_array().map(|a| a.iter().collect()).unwrap_or_default(),
        };
        let has = |name: &str, schema: &str| {
            items.iter().any(|t| {
                t.get("name").and_then(Value::as_str) == Some(name)
                    || t.get("schema").and_then(Value::as_str) == Some(schema)
            })
        };
        let mut missing = Vec::new();
        if !has("User", super::USER_SCHEMA) {
            missing.push("User");
        }
        if !has("Group", super::GROUP_SCHEMA) {
            missing.push("Group");
        }
        if missing.is_empty() {
            d.pass(
                "schema",
                detail!(
                    "scim-schema-ok",
                    "resource types User and Group are offered"
                ),
            );
        } else {
            d.fail(
                "schema",
                Problem::MissingSchema,
                detail!(
                    "resource-types-missing",
                    "the service does not offer the resource types: {names}",
                    names = missing.join(", ")
                ),
            );
        }
    }

    pub(super) async fn run_diagnosis(&self) -> Diagnosis {
        let mut d = Diagnosis::new(self.cfg.name.clone());
        // Connectivity and TLS first, with an endpoint that needs no resources.
        match self
            .send(
                "test",
                Method::GET,
                "/ServiceProviderConfig",
                &[],
                None,
                None,
            )
            .await
        {
            Ok(r) => {
                d.pass(
                    "connect",
                    if self.cfg.base_url.starts_with("https://") {
                        detail!("connected-https", "connected with HTTPS")
                    } else {
                        detail!("connected-plain", "connected without TLS (loopback only)")
                    },
                );
                if r.status == StatusCode::UNAUTHORIZED {
                    d.fail(
                        "token",
                        Problem::BadCredentials,
                        detail!(
                            "token-refused",
                            "the service refused the bearer token (HTTP 401)"
                        ),
                    );
                    return d;
                }
            }
            Err(e) => {
                let (p, detail) = self.transport_problem(&e).await;
                d.fail("connect", p, detail);
                return d;
            }
        }
        if !self.probe_list(&mut d, "Users").await {
            return d;
        }
        d.pass(
            "token",
            detail!("token-accepted", "the bearer token was accepted"),
        );
        self.probe_list(&mut d, "Groups").await;
        self.probe_schema(&mut d).await;
        d
    }
}
