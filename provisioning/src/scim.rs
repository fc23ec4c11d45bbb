//! SCIM 2.0 target (RFC 7643/7644) over `reqwest` with rustls.
//!
//! - Users carry `externalId` = the opaque person id; looking a user up by
//!   `externalId eq "<id>"` is therefore allowed (the filter holds no personal value).
//! - Groups: one per school unit and per class, `externalId` = the group id,
//!   `displayName` = its name. Only groups with an `externalId` that is a group id are
//!   managed; membership changes replace the group's member list (PUT) with `If-Match`.
//! - Disable is `PATCH active=false` (the account also leaves its groups).
//! - ETags: the user's or group's `meta.version` (or the `ETag` header) is sent as
//!   `If-Match`; a 412 re-reads and retries once.
//! - 409 on create: the user is looked up by `externalId` and updated; if none is ours,
//!   it is a conflict with an account Fiktiv does not manage.
//! - 429: `Retry-After` is honoured up to a bound, a few times, then the call fails.
//! - Lists are paged with `startIndex`/`count`.
//! - Transport: `https://`, or `http://` to a loopback address only (tests). Redirects
//!   are not followed (the bearer token must not travel elsewhere). Error responses'
//!   bodies are never quoted: a service may echo the values it refused.

use std::collections::BTreeSet;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::guard::{Cleared, EgressGuard};
use crate::model::{FictitiousPerson, GroupId, PersonId, PersonKind, TargetName};
use crate::record::{ManagedEntry, OutboundGroup, OutboundRecord, Payload, ScannedEntry};
use crate::scim_parse::{
    attributes, parse_group, parse_json, parse_list, parse_retry_after, parse_user,
    resource_endpoints, scanned_from_scim, ScimGroup, ScimUser,
};
use crate::target::{Applied, ParseError, Target, TargetError};
use crate::template::{Fold, Template};

mod diagnose;

const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const SCIM_JSON: &str = "application/scim+json";
/// Responses larger than this are refused.
const MAX_BODY: usize = 32 * 1024 * 1024;
/// A list never takes more pages than this.
const MAX_PAGES: usize = 100_000;

/// Settings of a SCIM target.
#[derive(Debug, Clone, Deserialize)]
pub struct ScimConfig {
    pub name: TargetName,
    /// e.g. `https://lms.example/scim/v2`
    pub base_url: String,
    pub token: SecretString,
    /// `userName`, folded to ASCII.
    pub user_name: Template,
    /// The work email, folded to ASCII, if any.
    pub email: Option<Template>,
    pub page_size: u32,
    pub timeout: Duration,
    /// How often a 429 is retried.
    pub max_retries: u32,
    /// The longest `Retry-After` honoured; longer fails the call.
    pub max_retry_after: Duration,
}

impl ScimConfig {
    pub fn new(
        name: TargetName,
        base_url: &str,
        token: SecretString,
    ) -> Result<Self, crate::template::TemplateError> {
        Ok(Self {
            name,
            base_url: base_url.trim_end_matches('/').to_string(),
            token,
            user_name: Template::parse("{given}.{family}.{short_id}")?,
            email: None,
            page_size: 200,
            timeout: Duration::from_secs(30),
            max_retries: 3,
            max_retry_after: Duration::from_secs(30),
        })
    }
}

/// The SCIM target.
#[derive(Debug)]
pub struct ScimTarget {
    cfg: ScimConfig,
    http: reqwest::Client,
}

struct Response {
    status: StatusCode,
    etag: Option<String>,
    body: Vec<u8>,
}

pub(crate) fn is_loopback_url(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let hostport = rest.split('/').next().unwrap_or("");
    let host = match hostport.strip_prefix('[') {
        Some(h) => h.split(']').next().unwrap_or(""),
        None => hostport.split(':').next().unwrap_or(""),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The HTTP client of a target at `base_url`: rustls, `https://` only (`http://` to a
/// loopback address for tests), no redirects (the bearer token must not travel
/// elsewhere), `timeout` per request. Shared by the SCIM and SS 12000 targets.
pub(crate) fn http_client(
    name: &TargetName,
    base_url: &str,
    timeout: Duration,
) -> Result<reqwest::Client, TargetError> {
    let https = base_url.starts_with("https://");
    if !https && !is_loopback_url(base_url) {
        return Err(TargetError::Config {
            target: name.clone(),
            what: "the base URL must be https:// (http:// only to a loopback address)",
        });
    }
    reqwest::Client::builder()
        .use_rustls_tls()
        .https_only(https)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .build()
        .map_err(|_| TargetError::Config {
            target: name.clone(),
            what: "the HTTP client cannot be built",
        })
}

impl ScimTarget {
    pub fn new(cfg: ScimConfig) -> Result<Self, TargetError> {
        let http = http_client(&cfg.name, &cfg.base_url, cfg.timeout)?;
        Ok(Self { cfg, http })
    }

    fn parse_err(&self, op: &'static str) -> impl Fn(ParseError) -> TargetError + '_ {
        move |source| TargetError::Parse {
            target: self.cfg.name.clone(),
            op,
            source,
        }
    }

    fn status(&self, op: &'static str, status: StatusCode) -> TargetError {
        TargetError::Http {
            target: self.cfg.name.clone(),
            op,
            status: status.as_u16(),
        }
    }

    /// Sends a request; retries 429 after `Retry-After` within the bounds.
    async fn send(
        &self,
        op: &'static str,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        if_match: Option<&str>,
    ) -> Result<Response, TargetError> {
        let url = format!("{}{path}", self.cfg.base_url);
        let mut attempt = 0;
        loop {
            let mut req = self
                .http
                .request(method.clone(), &url)
                .bearer_auth(self.cfg.token.expose_secret())
                .header(reqwest::header::ACCEPT, SCIM_JSON);
            if !query.is_empty() {
                req = req.query(query);
            }
            if let Some(b) = body {
                let bytes = serde_json::to_vec(b)
                    .map_err(|_| ParseError("request JSON"))
                    .map_err(self.parse_err(op))?;
                req = req
                    .header(reqwest::header::CONTENT_TYPE, SCIM_JSON)
                    .body(bytes);
            }
            if let Some(etag) = if_match {
                req = req.header(reqwest::header::IF_MATCH, etag);
            }
            let mut resp = req.send().await.map_err(|e| self.transport(op, &e))?;
            let status = resp.status();
            let header = |name: reqwest::header::HeaderName| {
                resp.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            if status == StatusCode::TOO_MANY_REQUESTS {
                let wait = header(reqwest::header::RETRY_AFTER)
                    .and_then(|v| parse_retry_after(&v, header(reqwest::header::DATE).as_deref()))
                    .unwrap_or(Duration::from_secs(1));
                attempt += 1;
                if attempt > self.cfg.max_retries || wait > self.cfg.max_retry_after {
                    return Err(TargetError::RateLimited {
                        target: self.cfg.name.clone(),
                        op,
                    });
                }
                tracing::info!(target_name = %self.cfg.name, op, wait_ms = wait.as_millis() as u64, "rate limited; waiting");
                tokio::time::sleep(wait).await;
                continue;
            }
            let etag = header(reqwest::header::ETAG);
            let mut body = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(|e| self.transport(op, &e))? {
                if body.len() + chunk.len() > MAX_BODY {
                    return Err(self.parse_err(op)(ParseError("response (too large)")));
                }
                body.extend_from_slice(&chunk);
            }
            return Ok(Response { status, etag, body });
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

    /// Every resource of an endpoint, page by page.
    async fn list_all(
        &self,
        endpoint: &str,
        filter: Option<String>,
    ) -> Result<Vec<Value>, TargetError> {
        let mut out = Vec::new();
        for _ in 0..MAX_PAGES {
            let mut q = vec![
                ("startIndex", (out.len() + 1).to_string()),
                ("count", self.cfg.page_size.max(1).to_string()),
            ];
            if let Some(f) = &filter {
                q.push(("filter", f.clone()));
            }
            let r = self
                .send("list", Method::GET, &format!("/{endpoint}"), &q, None, None)
                .await?;
            if r.status != StatusCode::OK {
                return Err(self.status("list", r.status));
            }
            let page = parse_list(&r.body).map_err(self.parse_err("list"))?;
            let empty = page.resources.is_empty();
            out.extend(page.resources);
            if empty || out.len() as u64 >= page.total_results {
                return Ok(out);
            }
        }
        Err(self.parse_err("list")(ParseError("list (too many pages)")))
    }

    async fn find_user(&self, person: &PersonId) -> Result<Option<ScimUser>, TargetError> {
        // The person id is a UUID: no quote or backslash can occur in it.
        let filter = format!("externalId eq \"{person}\"");
        let found = self.list_all("Users", Some(filter)).await?;
        for v in found {
            let u = parse_user(v).map_err(self.parse_err("find"))?;
            if u.external_id.as_deref() == Some(person.to_string().as_str()) {
                return Ok(Some(u));
            }
        }
        Ok(None)
    }

    async fn get_user(&self, id: &str) -> Result<(ScimUser, Option<String>), TargetError> {
        let r = self
            .send("get", Method::GET, &format!("/Users/{id}"), &[], None, None)
            .await?;
        if r.status != StatusCode::OK {
            return Err(self.status("get", r.status));
        }
        let u = parse_user(parse_json(&r.body).map_err(self.parse_err("get"))?)
            .map_err(self.parse_err("get"))?;
        let etag = u.version.clone().or(r.etag);
        Ok((u, etag))
    }

    async fn managed_groups(&self) -> Result<Vec<(GroupId, ScimGroup)>, TargetError> {
        let mut out = Vec::new();
        for v in self.list_all("Groups", None).await? {
            let g = parse_group(v).map_err(self.parse_err("groups"))?;
            if let Some(id) = g.external_id.as_deref().and_then(|e| GroupId::new(e).ok()) {
                out.push((id, g));
            }
        }
        Ok(out)
    }

    /// Replaces a group's member list (PUT with If-Match; one retry on 412).
    async fn set_members(
        &self,
        g: &ScimGroup,
        members: &BTreeSet<String>,
    ) -> Result<(), TargetError> {
        let mut group = g.clone();
        for attempt in 0..2 {
            let mut body = group.raw.clone();
            if let Some(obj) = body.as_object_mut() {
                obj.remove("meta");
                obj.insert(
                    "members".into(),
                    Value::Array(members.iter().map(|m| json!({ "value": m })).collect()),
                );
            }
            let r = self
                .send(
                    "group update",
                    Method::PUT,
                    &format!("/Groups/{}", group.id),
                    &[],
                    Some(&body),
                    group.version.as_deref(),
                )
                .await?;
            match r.status {
                StatusCode::OK | StatusCode::NO_CONTENT => return Ok(()),
                StatusCode::PRECONDITION_FAILED if attempt == 0 => {
                    let r = self
                        .send(
                            "group get",
                            Method::GET,
                            &format!("/Groups/{}", group.id),
                            &[],
                            None,
                            None,
                        )
                        .await?;
                    if r.status != StatusCode::OK {
                        return Err(self.status("group get", r.status));
                    }
                    let mut fresh =
                        parse_group(parse_json(&r.body).map_err(self.parse_err("group get"))?)
                            .map_err(self.parse_err("group get"))?;
                    fresh.version = fresh.version.or(r.etag);
                    group = fresh;
                }
                s => return Err(self.status("group update", s)),
            }
        }
        Err(self.status("group update", StatusCode::PRECONDITION_FAILED))
    }

    async fn sync_groups(&self, user_id: &str, want: &[OutboundGroup]) -> Result<(), TargetError> {
        let groups = self.managed_groups().await?;
        let want_ids: BTreeSet<&GroupId> = want.iter().map(|g| &g.id).collect();
        for (id, g) in &groups {
            let member = g.members.iter().any(|m| m == user_id);
            let wanted = want_ids.contains(id);
            if member != wanted {
                let mut ms: BTreeSet<String> = g.members.iter().cloned().collect();
                if wanted {
                    ms.insert(user_id.to_string());
                } else {
                    ms.remove(user_id);
                }
                self.set_members(g, &ms).await?;
            }
        }
        for w in want
            .iter()
            .filter(|w| !groups.iter().any(|(id, _)| *id == w.id))
        {
            let body = json!({
                "schemas": [GROUP_SCHEMA],
                "externalId": w.id.as_str(),
                "displayName": w.name,
                "members": [{ "value": user_id }],
            });
            let r = self
                .send(
                    "group create",
                    Method::POST,
                    "/Groups",
                    &[],
                    Some(&body),
                    None,
                )
                .await?;
            if r.status != StatusCode::CREATED {
                return Err(self.status("group create", r.status));
            }
        }
        Ok(())
    }

    /// PUT the user (with If-Match), one retry on 412.
    async fn replace_user(
        &self,
        id: &str,
        desired: &Value,
        mut etag: Option<String>,
    ) -> Result<(), TargetError> {
        let mut body = desired.clone();
        if let Some(o) = body.as_object_mut() {
            o.insert("id".into(), Value::String(id.to_string()));
        }
        for attempt in 0..2 {
            let r = self
                .send(
                    "update",
                    Method::PUT,
                    &format!("/Users/{id}"),
                    &[],
                    Some(&body),
                    etag.as_deref(),
                )
                .await?;
            match r.status {
                StatusCode::OK | StatusCode::NO_CONTENT => return Ok(()),
                StatusCode::PRECONDITION_FAILED if attempt == 0 => {
                    etag = self.get_user(id).await?.1;
                }
                StatusCode::CONFLICT => {
                    return Err(TargetError::Conflict {
                        target: self.cfg.name.clone(),
                        op: "update",
                    })
                }
                s => return Err(self.status("update", s)),
            }
        }
        Err(self.status("update", StatusCode::PRECONDITION_FAILED))
    }

    fn managed(
        &self,
        u: ScimUser,
        groups: &[(GroupId, ScimGroup)],
        read_at: DateTime<Utc>,
    ) -> Option<ManagedEntry> {
        let person = u.external_id.as_deref()?.parse::<PersonId>().ok()?;
        Some(ManagedEntry {
            target: self.cfg.name.clone(),
            person,
            enabled: u.active,
            given_name: u.given_name.clone(),
            family_name: u.family_name.clone(),
            groups: groups
                .iter()
                .filter(|(_, g)| g.members.contains(&u.id))
                .map(|(id, _)| id.clone())
                .collect(),
            attributes: attributes(&u.raw),
            modified_at: u.last_modified,
            read_at,
            entry_id: u.id,
        })
    }

    /// True when every value the record would write is already there.
    fn up_to_date(desired: &Value, current: &ScimUser) -> bool {
        let have = attributes(&current.raw);
        let mut want = Vec::new();
        crate::record::flatten_json("", desired, &mut want);
        want.iter()
            .all(|(k, v)| have.get(k).is_some_and(|vs| vs.contains(v)))
    }
}

/// The endpoints the leak scan reads whatever the server lists.
const SCAN_ENDPOINTS: [&str; 2] = ["Users", "Groups"];

impl ScimTarget {
    /// What the leak scan reads: `/Users`, `/Groups`, and every other endpoint the
    /// server's `/ResourceTypes` lists (RFC 7644 4). A server without the discovery
    /// endpoint (404 or 501) is read at `/Users` and `/Groups`; any other failure fails
    /// the read (the cases are then `unverified`).
    async fn scan_endpoints(&self) -> Result<Vec<String>, TargetError> {
        let mut out: Vec<String> = SCAN_ENDPOINTS.iter().map(|e| (*e).to_owned()).collect();
        let r = self
            .send(
                "resource-types",
                Method::GET,
                "/ResourceTypes",
                &[],
                None,
                None,
            )
            .await?;
        match r.status {
            StatusCode::OK => {
                for e in resource_endpoints(&r.body).map_err(self.parse_err("resource-types"))? {
                    if !out.iter().any(|o| o.eq_ignore_ascii_case(&e)) {
                        out.push(e);
                    }
                }
            }
            StatusCode::NOT_FOUND | StatusCode::NOT_IMPLEMENTED => {}
            other => return Err(self.status("resource-types", other)),
        }
        Ok(out)
    }
}

#[async_trait]
impl Target for ScimTarget {
    fn name(&self) -> &TargetName {
        &self.cfg.name
    }

    fn render(&self, p: &FictitiousPerson) -> Result<OutboundRecord, TargetError> {
        let tmpl = |_| TargetError::Config {
            target: self.cfg.name.clone(),
            what: "a template cannot be rendered for this person",
        };
        let user_name = self.cfg.user_name.render(p, Fold::Ascii).map_err(tmpl)?;
        let display = format!("{} {}", p.given_name, p.family_name);
        let mut user = json!({
            "schemas": [USER_SCHEMA],
            "externalId": p.id.to_string(),
            "userName": user_name,
            "name": {
                "givenName": p.given_name,
                "familyName": p.family_name,
                "formatted": display,
            },
            "displayName": display,
            "userType": match p.kind { PersonKind::Student => "Student", PersonKind::Guardian => "Guardian" },
            "active": true,
        });
        if let (Some(t), Some(o)) = (&self.cfg.email, user.as_object_mut()) {
            let mail = t.render(p, Fold::Ascii).map_err(tmpl)?;
            o.insert(
                "emails".into(),
                json!([{ "value": mail, "type": "work", "primary": true }]),
            );
        }
        let groups = std::iter::once(OutboundGroup {
            id: p.school_unit.id.clone(),
            name: p.school_unit.name.clone(),
        })
        .chain(p.groups.iter().map(|g| OutboundGroup {
            id: g.id.clone(),
            name: g.name.clone(),
        }))
        .collect();
        Ok(OutboundRecord {
            target: self.cfg.name.clone(),
            person: p.id,
            payload: Payload::Scim { user, groups },
        })
    }

    async fn upsert(
        &self,
        _guard: &EgressGuard,
        record: Cleared,
        _at: DateTime<Utc>,
    ) -> Result<Applied, TargetError> {
        let rec = record.record();
        if rec.target != self.cfg.name {
            return Err(TargetError::WrongTarget {
                target: self.cfg.name.clone(),
                other: rec.target.clone(),
            });
        }
        let Payload::Scim { user, groups } = &rec.payload else {
            return Err(TargetError::Config {
                target: self.cfg.name.clone(),
                what: "the record is not a SCIM record",
            });
        };
        let (applied, id) = match self.find_user(&rec.person).await? {
            Some(u) => {
                if !Self::up_to_date(user, &u) {
                    let (_, etag) = self.get_user(&u.id).await?;
                    self.replace_user(&u.id, user, etag).await?;
                }
                (Applied::Updated, u.id)
            }
            None => {
                let r = self
                    .send("create", Method::POST, "/Users", &[], Some(user), None)
                    .await?;
                match r.status {
                    StatusCode::CREATED => {
                        let u = parse_user(parse_json(&r.body).map_err(self.parse_err("create"))?)
                            .map_err(self.parse_err("create"))?;
                        (Applied::Created, u.id)
                    }
                    StatusCode::CONFLICT => match self.find_user(&rec.person).await? {
                        Some(u) => {
                            let (_, etag) = self.get_user(&u.id).await?;
                            self.replace_user(&u.id, user, etag).await?;
                            (Applied::Updated, u.id)
                        }
                        None => {
                            return Err(TargetError::Conflict {
                                target: self.cfg.name.clone(),
                                op: "create",
                            })
                        }
                    },
                    s => return Err(self.status("create", s)),
                }
            }
        };
        self.sync_groups(&id, groups).await?;
        tracing::debug!(target_name = %self.cfg.name, person = %rec.person, ?applied, "SCIM user written");
        Ok(applied)
    }

    async fn disable(
        &self,
        _guard: &EgressGuard,
        person: &PersonId,
        _at: DateTime<Utc>,
    ) -> Result<(), TargetError> {
        let Some(u) = self.find_user(person).await? else {
            return Err(TargetError::NotFound {
                target: self.cfg.name.clone(),
                person: *person,
            });
        };
        self.sync_groups(&u.id, &[]).await?;
        let body = json!({
            "schemas": [PATCH_SCHEMA],
            "Operations": [{ "op": "replace", "path": "active", "value": false }],
        });
        let (_, mut etag) = self.get_user(&u.id).await?;
        for attempt in 0..2 {
            let r = self
                .send(
                    "disable",
                    Method::PATCH,
                    &format!("/Users/{}", u.id),
                    &[],
                    Some(&body),
                    etag.as_deref(),
                )
                .await?;
            match r.status {
                StatusCode::OK | StatusCode::NO_CONTENT => {
                    tracing::debug!(target_name = %self.cfg.name, person = %person, "SCIM user disabled");
                    return Ok(());
                }
                StatusCode::PRECONDITION_FAILED if attempt == 0 => {
                    etag = self.get_user(&u.id).await?.1;
                }
                s => return Err(self.status("disable", s)),
            }
        }
        Err(self.status("disable", StatusCode::PRECONDITION_FAILED))
    }

    async fn delete(
        &self,
        _guard: &EgressGuard,
        person: &PersonId,
        _at: DateTime<Utc>,
    ) -> Result<(), TargetError> {
        let Some(u) = self.find_user(person).await? else {
            return Ok(());
        };
        self.sync_groups(&u.id, &[]).await?;
        let r = self
            .send(
                "delete",
                Method::DELETE,
                &format!("/Users/{}", u.id),
                &[],
                None,
                None,
            )
            .await?;
        match r.status {
            StatusCode::NO_CONTENT | StatusCode::OK | StatusCode::NOT_FOUND => {
                tracing::debug!(target_name = %self.cfg.name, person = %person, "SCIM user deleted");
                Ok(())
            }
            s => Err(self.status("delete", s)),
        }
    }

    async fn read_one(
        &self,
        person: &PersonId,
        read_at: DateTime<Utc>,
    ) -> Result<Option<ManagedEntry>, TargetError> {
        let Some(u) = self.find_user(person).await? else {
            return Ok(None);
        };
        let groups = self.managed_groups().await?;
        Ok(self.managed(u, &groups, read_at))
    }

    async fn read_managed(&self, read_at: DateTime<Utc>) -> Result<Vec<ManagedEntry>, TargetError> {
        let groups = self.managed_groups().await?;
        let mut out = Vec::new();
        for v in self.list_all("Users", None).await? {
            let u = parse_user(v).map_err(self.parse_err("list"))?;
            out.extend(self.managed(u, &groups, read_at));
        }
        Ok(out)
    }

    /// Every User and Group, paged, with no filter.
    /// Every resource of every resource type the server lists (`/ResourceTypes`), and
    /// always `/Users` and `/Groups`.
    async fn read_everything(&self) -> Result<Vec<ScannedEntry>, TargetError> {
        let mut out = Vec::new();
        for endpoint in self.scan_endpoints().await? {
            for (n, v) in self.list_all(&endpoint, None).await?.iter().enumerate() {
                out.push(scanned_from_scim(&self.cfg.name, &endpoint, v, n));
            }
        }
        Ok(out)
    }

    async fn scan_scope(&self) -> Result<Vec<String>, TargetError> {
        Ok(self
            .scan_endpoints()
            .await?
            .iter()
            .map(|e| format!("/{e}"))
            .collect())
    }

    fn volatile_attributes(&self) -> &'static [&'static str] {
        &["meta.lastModified", "meta.version", "meta.created"]
    }

    async fn diagnose(
        &self,
        _guard: &EgressGuard,
        _at: DateTime<Utc>,
    ) -> crate::diagnose::Diagnosis {
        self.run_diagnosis().await
    }
}
