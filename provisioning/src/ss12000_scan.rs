//! An SS 12000 API (SS 12000:2020, API version 2) as a target the leak scan reads: the
//! school administration system's own API, a provisioning tool that serves it again,
//! or Fiktiv's own feed (`/ss12000/v2`). Read only: Fiktiv writes nothing there, gives
//! it no person and manages no account in it; `fiktiv targets test` and the leak scan
//! read it.
//!
//! - Reads `/organisations`, `/persons`, `/groups`, `/duties` and `/activities`, page by
//!   page with the specification's `limit` and `pageToken`, and hands every item to the
//!   scan whole (flattened by dotted path, as the SCIM target's resources): a value is
//!   looked at wherever it stands, not only where the specification puts a name.
//! - A page is read leniently (an item of a shape the specification does not name is
//!   scanned, not refused); what is refused is what cannot be read at all: not JSON, no
//!   `data` list, a page over [`MAX_BODY`], a `pageToken` seen before (a loop) or longer
//!   than [`MAX_TOKEN`], more than [`MAX_PAGES`] pages. A refused read fails the target's
//!   scan, so the verdict is "not verified", never "clean".
//! - Transport: `https://`, or `http://` to a loopback address only (tests). Redirects
//!   are not followed (the bearer token must not travel elsewhere). Error bodies are
//!   never quoted.

use std::collections::HashSet;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::detail;
use crate::diagnose::{tcp_reachable, Detail, Diagnosis, Problem};
use crate::guard::{Cleared, EgressGuard};
use crate::model::{FictitiousPerson, PersonId, TargetName};
use crate::record::{flatten_json, ManagedEntry, OutboundRecord, ScannedEntry};
use crate::target::{Applied, ParseError, Target, TargetError};

/// Answers larger than this are refused.
pub const MAX_BODY: usize = 32 * 1024 * 1024;
/// A resource never takes more pages than this.
pub const MAX_PAGES: usize = 100_000;
/// The longest `pageToken` followed.
pub const MAX_TOKEN: usize = 2048;
/// The resources read, in this order.
pub const RESOURCES: [&str; 5] = ["organisations", "persons", "groups", "duties", "activities"];

const READ_ONLY: &str = "an SS 12000 target is read only: Fiktiv scans it and writes nothing there";

/// Settings of an SS 12000 scan target.
#[derive(Debug, Clone)]
pub struct Ss12000ScanConfig {
    pub name: TargetName,
    /// The API's base, e.g. `https://sis.kommun.example/ss12000/v2`.
    pub base_url: String,
    pub token: SecretString,
    /// Items asked for per page (`limit`).
    pub page_size: u32,
    pub timeout: Duration,
}

impl Ss12000ScanConfig {
    pub fn new(name: TargetName, base_url: &str, token: SecretString) -> Self {
        Self {
            name,
            base_url: base_url.trim_end_matches('/').to_string(),
            token,
            page_size: 500,
            timeout: Duration::from_secs(30),
        }
    }
}

/// One page of an SS 12000 list, as the scan reads it.
#[derive(Debug, Default)]
pub struct ScanListPage {
    pub items: Vec<Value>,
    pub page_token: Option<String>,
}

/// Reads one page of a list: an object with a `data` array (items of any shape) and an
/// optional `pageToken` string. Pure, for fuzzing.
pub fn parse_scan_page(bytes: &[u8]) -> Result<ScanListPage, ParseError> {
    if bytes.len() > MAX_BODY {
        return Err(ParseError("SS 12000 page (too large)"));
    }
    let v: Value =
        serde_json::from_slice(bytes).map_err(|_| ParseError("SS 12000 page (not JSON)"))?;
    let Value::Object(mut map) = v else {
        return Err(ParseError("SS 12000 page (not an object)"));
    };
    let items = match map.remove("data") {
        Some(Value::Array(a)) => a,
        _ => return Err(ParseError("SS 12000 page (no data list)")),
    };
    let page_token = match map.remove("pageToken") {
        None | Some(Value::Null) => None,
        Some(Value::String(t)) if t.is_empty() => None,
        Some(Value::String(t)) if t.len() <= MAX_TOKEN => Some(t),
        Some(Value::String(_)) => return Err(ParseError("SS 12000 page (pageToken too long)")),
        Some(_) => return Err(ParseError("SS 12000 page (pageToken not a string)")),
    };
    Ok(ScanListPage { items, page_token })
}

/// An item of `resource` as a scan entry: every value, flattened by dotted path. The
/// locator is `<resource>/<id>` when the item has a string id (an id is no personal
/// value in SS 12000: a UUID), else its place in the read. Pure.
pub fn scanned_from_item(target: &TargetName, resource: &str, v: &Value, n: usize) -> ScannedEntry {
    let id = v
        .get("id")
        .and_then(Value::as_str)
        // An id that names the item: not empty (a locator `groups/` would name none),
        // UUID-like, so that it can never carry a value from the item.
        .filter(|id| {
            !id.is_empty()
                && id.len() <= 64
                && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
        });
    let locator = match id {
        Some(id) => format!("{resource}/{id}"),
        None => format!("{resource} #{}", n + 1),
    };
    let mut s = ScannedEntry::new(target.clone(), locator);
    s.label_attribute = Some("id".to_string());
    let mut flat = Vec::new();
    flatten_json("", v, &mut flat);
    for (k, val) in flat {
        s.push(&k, &val);
    }
    s
}

/// The scan target.
#[derive(Debug)]
pub struct Ss12000ScanTarget {
    cfg: Ss12000ScanConfig,
    http: reqwest::Client,
}

impl Ss12000ScanTarget {
    pub fn new(cfg: Ss12000ScanConfig) -> Result<Self, TargetError> {
        let http = crate::scim::http_client(&cfg.name, &cfg.base_url, cfg.timeout)?;
        Ok(Self { cfg, http })
    }

    fn read_only(&self) -> TargetError {
        TargetError::Config {
            target: self.cfg.name.clone(),
            what: READ_ONLY,
        }
    }

    fn transport(&self, op: &'static str, e: &reqwest::Error) -> TargetError {
        TargetError::Transport {
            target: self.cfg.name.clone(),
            op,
            kind: if e.is_timeout() {
                "timeout"
            } else if e.is_connect() {
                "connect"
            } else {
                "HTTP"
            },
        }
    }

    fn parse_err(&self, op: &'static str, source: ParseError) -> TargetError {
        TargetError::Parse {
            target: self.cfg.name.clone(),
            op,
            source,
        }
    }

    /// One page of `resource`: the first (`token` none) or the one a `pageToken` names.
    async fn page(
        &self,
        op: &'static str,
        resource: &str,
        limit: u32,
        token: Option<&str>,
    ) -> Result<ScanListPage, TargetError> {
        let mut q = vec![("limit", limit.to_string())];
        if let Some(t) = token {
            q.push(("pageToken", t.to_string()));
        }
        let mut resp = self
            .http
            .get(format!("{}/{resource}", self.cfg.base_url))
            .query(&q)
            .bearer_auth(self.cfg.token.expose_secret())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| self.transport(op, &e))?;
        let status = resp.status();
        if status != StatusCode::OK {
            return Err(TargetError::Http {
                target: self.cfg.name.clone(),
                op,
                status: status.as_u16(),
            });
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.transport(op, &e))? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(self.parse_err(op, ParseError("SS 12000 page (too large)")));
            }
            body.extend_from_slice(&chunk);
        }
        parse_scan_page(&body).map_err(|e| self.parse_err(op, e))
    }

    /// Every item of `resource`, page by page, each handed to `item` as it arrives.
    async fn read_resource(
        &self,
        resource: &str,
        item: &mut (dyn FnMut(&Value) + Send),
    ) -> Result<usize, TargetError> {
        let mut seen: HashSet<String> = HashSet::new();
        let mut token: Option<String> = None;
        let mut n = 0;
        for _ in 0..MAX_PAGES {
            let page = self
                .page(
                    "scan",
                    resource,
                    self.cfg.page_size.max(1),
                    token.as_deref(),
                )
                .await?;
            for v in &page.items {
                item(v);
                n += 1;
            }
            match page.page_token {
                None => return Ok(n),
                Some(t) => {
                    if !seen.insert(t.clone()) {
                        return Err(self.parse_err(
                            "scan",
                            ParseError("SS 12000 paging (a pageToken came back: a loop)"),
                        ));
                    }
                    token = Some(t);
                }
            }
        }
        Err(self.parse_err("scan", ParseError("SS 12000 paging (too many pages)")))
    }

    fn status_detail(&self, resource: &str, status: u16) -> (Problem, Detail) {
        match status {
            401 => (
                Problem::BadCredentials,
                detail!(
                    "token-refused",
                    "the service refused the bearer token (HTTP 401)"
                ),
            ),
            403 => (
                Problem::PermissionDenied,
                detail!(
                    "list-forbidden",
                    "the token may not list {endpoint} (HTTP 403)",
                    endpoint = resource
                ),
            ),
            404 => (
                Problem::MissingBase,
                detail!(
                    "no-endpoint",
                    "there is no /{endpoint} endpoint under {url} (HTTP 404): check base_url",
                    endpoint = resource,
                    url = self.cfg.base_url
                ),
            ),
            s => (
                if s == 429 || s >= 500 {
                    Problem::Unreachable
                } else {
                    Problem::Unexpected
                },
                detail!(
                    "list-failed",
                    "listing {endpoint} failed (HTTP {status})",
                    endpoint = resource,
                    status = s
                ),
            ),
        }
    }
}

#[async_trait]
impl Target for Ss12000ScanTarget {
    fn name(&self) -> &TargetName {
        &self.cfg.name
    }

    fn render(&self, _person: &FictitiousPerson) -> Result<OutboundRecord, TargetError> {
        Err(self.read_only())
    }

    async fn upsert(
        &self,
        _guard: &EgressGuard,
        _record: Cleared,
        _at: DateTime<Utc>,
    ) -> Result<Applied, TargetError> {
        Err(self.read_only())
    }

    async fn disable(
        &self,
        _guard: &EgressGuard,
        _person: &PersonId,
        _at: DateTime<Utc>,
    ) -> Result<(), TargetError> {
        Err(self.read_only())
    }

    async fn delete(
        &self,
        _guard: &EgressGuard,
        _person: &PersonId,
        _at: DateTime<Utc>,
    ) -> Result<(), TargetError> {
        Err(self.read_only())
    }

    /// Fiktiv manages no account here.
    async fn read_one(
        &self,
        _person: &PersonId,
        _read_at: DateTime<Utc>,
    ) -> Result<Option<ManagedEntry>, TargetError> {
        Ok(None)
    }

    /// Fiktiv manages no account here.
    async fn read_managed(
        &self,
        _read_at: DateTime<Utc>,
    ) -> Result<Vec<ManagedEntry>, TargetError> {
        Ok(Vec::new())
    }

    async fn read_everything(&self) -> Result<Vec<ScannedEntry>, TargetError> {
        let mut out = Vec::new();
        for resource in RESOURCES {
            let name = &self.cfg.name;
            let mut n = 0;
            let mut push = |v: &Value| {
                out.push(scanned_from_item(name, resource, v, n));
                n += 1;
            };
            self.read_resource(resource, &mut push).await?;
        }
        Ok(out)
    }

    async fn scan_scope(&self) -> Result<Vec<String>, TargetError> {
        Ok(RESOURCES.iter().map(|r| format!("/{r}")).collect())
    }

    /// Lists one item of every resource: reachability, TLS, the token, each endpoint.
    async fn diagnose(&self, _guard: &EgressGuard, _at: DateTime<Utc>) -> Diagnosis {
        let mut d = Diagnosis::new(self.cfg.name.clone());
        for resource in RESOURCES {
            let step = format!("/{resource}");
            match self.page("test", resource, 1, None).await {
                Ok(page) => d.pass(
                    &step,
                    detail!("listed", "{n} resources listed", n = page.items.len()),
                ),
                Err(TargetError::Http { status, .. }) => {
                    let (p, detail) = self.status_detail(resource, status);
                    d.fail(&step, p, detail);
                    return d;
                }
                Err(TargetError::Transport {
                    kind: "timeout", ..
                }) => {
                    d.fail(
                        &step,
                        Problem::Unreachable,
                        detail!(
                            "timeout",
                            "no answer from {url} within the timeout",
                            url = self.cfg.base_url
                        ),
                    );
                    return d;
                }
                Err(TargetError::Transport { .. }) => {
                    let https = self.cfg.base_url.starts_with("https://");
                    if https && tcp_reachable(&self.cfg.base_url, self.cfg.timeout).await {
                        d.fail(
                            &step,
                            Problem::Tls,
                            detail!(
                                "https-failed",
                                "{url} accepts TCP connections but the HTTPS connection failed",
                                url = self.cfg.base_url
                            ),
                        );
                    } else {
                        d.fail(
                            &step,
                            Problem::Unreachable,
                            detail!(
                                "cannot-connect",
                                "cannot connect to {url}",
                                url = self.cfg.base_url
                            ),
                        );
                    }
                    return d;
                }
                Err(e) => {
                    d.fail(&step, Problem::Unexpected, Detail::error(&e));
                    return d;
                }
            }
        }
        d
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use serde_json::json;

    #[test]
    fn a_page_is_read_leniently_and_refused_only_when_unreadable() {
        let p = parse_scan_page(
            json!({"data": [{"id": "x", "odd": {"civic": "1"}}, 3, "text"], "pageToken": "abc"})
                .to_string()
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(p.items.len(), 3);
        assert_eq!(p.page_token.as_deref(), Some("abc"));
        assert!(parse_scan_page(br#"{"data": [], "pageToken": ""}"#)
            .unwrap()
            .page_token
            .is_none());
        for bad in [
            &b"not json"[..],
            br#"[1, 2]"#,
            br#"{"items": []}"#,
            br#"{"data": {}}"#,
            br#"{"data": [], "pageToken": 7}"#,
        ] {
            assert!(parse_scan_page(bad).is_err());
        }
        let long = format!(
            r#"{{"data": [], "pageToken": "{}"}}"#,
            "a".repeat(MAX_TOKEN + 1)
        );
        assert!(parse_scan_page(long.as_bytes()).is_err());
    }

    #[test]
    fn an_item_is_scanned_whole_with_a_locator_that_holds_no_value() {
        let name = TargetName::new("sis").unwrap();
        let v = json!({"id": "0f8fad5b-d9cb-469f-a165-70867728950e", "givenName": "Anna",
                       "civicNo": {"value": "201502031234"}, "notes": ["x", {"y": "z"}]});
        let s = scanned_from_item(&name, "persons", &v, 0);
        assert_eq!(s.locator, "persons/0f8fad5b-d9cb-469f-a165-70867728950e");
        let got: Vec<(String, String)> = s
            .values
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().to_owned()))
            .collect();
        assert!(got.contains(&("civicNo.value".into(), "201502031234".into())));
        assert!(got.contains(&("notes.y".into(), "z".into())));
        // An id that is not a UUID-like token is not put in the locator.
        let s = scanned_from_item(&name, "persons", &json!({"id": "Anna Svensson"}), 4);
        assert_eq!(s.locator, "persons #5");
    }
}
