//! The hub reader: every page of `/organisations`, `/persons`, `/groups`, `/duties`
//! and `/activities` (all of them, or those changed since a time), then `/deletedEntities`.
//!
//! One HTTP client per hub: rustls, no redirects followed, `https://` required except
//! to a loopback address (tests), a CA file if the hub's certificate is not publicly
//! trusted. A bearer token, or an OAuth 2.0 client-credentials grant whose token is
//! fetched once and renewed before it runs out.
//!
//! Paging is followed to its end and no further: a `pageToken` seen before (a loop) or
//! more than [`HubConfig::max_pages`] pages stops the read with an error, and an error
//! anywhere stops the whole read: the caller gets all of it or none of it.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::marked::{MarkedPerson, Sorted};
use crate::model::{Activity, Deleted, Duty, Entity, Group, Organisation, Person};
use crate::page::{parse_deleted, parse_page, ListItem, Resource, WireError, MAX_PAGE_BYTES};

/// How Fiktiv proves who it is to the hub.
#[derive(Clone)]
pub enum HubAuth {
    /// A static bearer token.
    Bearer(SecretString),
    /// OAuth 2.0 client credentials (RFC 6749, section 4.4), the secret sent with HTTP
    /// Basic authentication to the token endpoint.
    ClientCredentials {
        token_url: String,
        client_id: String,
        client_secret: SecretString,
        scope: Option<String>,
    },
}

impl std::fmt::Debug for HubAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Bearer(_) => f.write_str("Bearer([redacted])"),
            Self::ClientCredentials {
                token_url,
                client_id,
                ..
            } => write!(f, "ClientCredentials({token_url}, {client_id}, [redacted])"),
        }
    }
}

/// Where the hub is and how it is read.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// The API's base URL, up to and without the resource (`https://hub.example/v2.0`).
    pub base_url: String,
    pub auth: HubAuth,
    /// A PEM file of CA certificates to trust besides the public ones.
    pub ca_file: Option<PathBuf>,
    /// `limit` asked for per page.
    pub page_size: u32,
    /// Per request.
    pub timeout: Duration,
    /// The most pages read of one resource in one read.
    pub max_pages: usize,
}

impl HubConfig {
    pub fn new(base_url: &str, auth: HubAuth) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            auth,
            ca_file: None,
            page_size: 500,
            timeout: Duration::from_secs(60),
            max_pages: 10_000,
        }
    }
}

/// Why a read failed. Names the resource and what went wrong, never a value read.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("the hub connection is misconfigured: {0}")]
    Config(&'static str),
    #[error("{resource}: {kind} (the hub did not answer)")]
    Transport {
        resource: &'static str,
        kind: &'static str,
    },
    #[error("{resource}: the hub answered HTTP {status}{}", code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Status {
        resource: &'static str,
        status: u16,
        code: Option<String>,
    },
    #[error("the hub's token endpoint refused Fiktiv's client credentials (HTTP {status})")]
    TokenRefused { status: u16 },
    #[error("the hub's token endpoint did not answer an access token")]
    TokenMalformed,
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("{resource}: the hub answered a pageToken it had answered before (a paging loop); the read was stopped")]
    PageLoop { resource: &'static str },
    #[error("{resource}: more than {max} pages; the read was stopped")]
    TooManyPages { resource: &'static str, max: usize },
    #[error("{resource}: the same id came twice in one read (the hub changed while it was paged, or pages overlap); the read was stopped and is tried again whole")]
    DuplicateId { resource: &'static str },
}

impl HubError {
    /// A short stable code for metrics, the audit trail and the UI's messages.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Config(_) => "hub.config",
            Self::Transport { .. } => "hub.unreachable",
            Self::Status {
                status: 401 | 403, ..
            }
            | Self::TokenRefused { .. } => "hub.refused",
            Self::Status { .. } => "hub.status",
            Self::TokenMalformed => "hub.token",
            Self::Wire(WireError::NoMarking { .. }) => "hub.no-marking",
            Self::Wire(_) => "hub.malformed",
            Self::PageLoop { .. } => "hub.page-loop",
            Self::TooManyPages { .. } => "hub.too-many-pages",
            Self::DuplicateId { .. } => "hub.duplicate",
        }
    }
}

/// How far a read has come: for the progress a user sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub resource: Resource,
    pub pages: usize,
    pub items: usize,
}

/// What one read gave. Marked persons are apart from the rest from the moment their
/// page was parsed.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub organisations: Vec<Entity<Organisation>>,
    /// Persons whose `securityMarking` is `Ingen`.
    pub persons: Vec<Entity<Person>>,
    pub marked: Vec<MarkedPerson>,
    pub groups: Vec<Entity<Group>>,
    pub duties: Vec<Entity<Duty>>,
    pub activities: Vec<Entity<Activity>>,
    /// What `/deletedEntities` said, for a read of changes (empty for a full read).
    pub deleted: Deleted,
    pub pages: usize,
}

struct CachedToken {
    token: SecretString,
    valid_until: Instant,
}

/// Reads one hub.
pub struct HubReader {
    cfg: HubConfig,
    http: reqwest::Client,
    token: Mutex<Option<CachedToken>>,
}

impl std::fmt::Debug for HubReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubReader")
            .field("base_url", &self.cfg.base_url)
            .finish_non_exhaustive()
    }
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

fn check_url(url: &str, what: &'static str) -> Result<bool, HubError> {
    let https = url.starts_with("https://");
    if !https && !is_loopback_url(url) {
        return Err(HubError::Config(what));
    }
    Ok(https)
}

#[derive(Deserialize)]
struct ErrorBody {
    code: Option<String>,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: Option<u64>,
}

fn transport(resource: &'static str, e: &reqwest::Error) -> HubError {
    HubError::Transport {
        resource,
        kind: if e.is_timeout() {
            "timeout"
        } else if e.is_connect() {
            "no connection"
        } else {
            "the connection broke"
        },
    }
}

impl HubReader {
    pub fn new(cfg: HubConfig) -> Result<Self, HubError> {
        let https = check_url(
            &cfg.base_url,
            "the base URL must be https:// (http:// only to a loopback address)",
        )?;
        if let HubAuth::ClientCredentials { token_url, .. } = &cfg.auth {
            check_url(
                token_url,
                "the token URL must be https:// (http:// only to a loopback address)",
            )?;
        }
        if cfg.page_size == 0 || cfg.max_pages == 0 {
            return Err(HubError::Config(
                "page_size and max_pages must be at least 1",
            ));
        }
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .https_only(https)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(cfg.timeout);
        if let Some(path) = &cfg.ca_file {
            let pem =
                std::fs::read(path).map_err(|_| HubError::Config("the CA file cannot be read"))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|_| HubError::Config("the CA file holds no PEM certificate"))?;
            if certs.is_empty() {
                return Err(HubError::Config("the CA file holds no PEM certificate"));
            }
            for c in certs {
                builder = builder.add_root_certificate(c);
            }
        }
        let http = builder
            .build()
            .map_err(|_| HubError::Config("the HTTP client cannot be built"))?;
        Ok(Self {
            cfg,
            http,
            token: Mutex::new(None),
        })
    }

    pub fn config(&self) -> &HubConfig {
        &self.cfg
    }

    async fn bearer(&self) -> Result<SecretString, HubError> {
        let (token_url, client_id, client_secret, scope) = match &self.cfg.auth {
            HubAuth::Bearer(t) => return Ok(t.clone()),
            HubAuth::ClientCredentials {
                token_url,
                client_id,
                client_secret,
                scope,
            } => (token_url, client_id, client_secret, scope),
        };
        let mut cached = self.token.lock().await;
        if let Some(c) = cached.as_ref() {
            if Instant::now() < c.valid_until {
                return Ok(c.token.clone());
            }
        }
        let mut form = vec![("grant_type", "client_credentials".to_owned())];
        if let Some(s) = scope {
            form.push(("scope", s.clone()));
        }
        let resp = self
            .http
            .post(token_url)
            .basic_auth(client_id, Some(client_secret.expose_secret()))
            .form(&form)
            .send()
            .await
            .map_err(|e| transport("the token endpoint", &e))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(HubError::TokenRefused {
                status: status.as_u16(),
            });
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| transport("the token endpoint", &e))?;
        let answer: TokenAnswer =
            serde_json::from_slice(&body).map_err(|_| HubError::TokenMalformed)?;
        if answer.access_token.is_empty() {
            return Err(HubError::TokenMalformed);
        }
        // Renewed a minute before it runs out (or after 5 minutes if the endpoint does
        // not say), so that no page of a long read is refused for an old token.
        let life = answer
            .expires_in
            .map(|s| Duration::from_secs(s.saturating_sub(60).max(1)))
            .unwrap_or(Duration::from_secs(300));
        let token = SecretString::from(answer.access_token);
        *cached = Some(CachedToken {
            token: token.clone(),
            valid_until: Instant::now() + life,
        });
        Ok(token)
    }

    /// One GET of a resource page; the body, bounded by [`MAX_PAGE_BYTES`].
    async fn get(&self, resource: Resource, query: &[(&str, String)]) -> Result<Vec<u8>, HubError> {
        let path = resource.path();
        let token = self.bearer().await?;
        let mut resp = self
            .http
            .get(format!("{}{path}", self.cfg.base_url))
            .bearer_auth(token.expose_secret())
            .header(reqwest::header::ACCEPT, "application/json")
            .query(query)
            .send()
            .await
            .map_err(|e| transport(path, &e))?;
        let status = resp.status();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| transport(path, &e))? {
            if body.len() + chunk.len() > MAX_PAGE_BYTES {
                return Err(WireError::TooLarge { resource: path }.into());
            }
            body.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            if status.as_u16() == 401 {
                // A renewed token may be what it takes next time.
                *self.token.lock().await = None;
            }
            // The specification's Error body; its code only, and only if it is a code
            // (a hub's message could hold anything).
            let code = serde_json::from_slice::<ErrorBody>(&body)
                .ok()
                .and_then(|b| b.code)
                .filter(|c| {
                    !c.is_empty()
                        && c.len() <= 64
                        && c.chars()
                            .all(|ch| ch.is_ascii_alphanumeric() || "._-".contains(ch))
                });
            return Err(HubError::Status {
                resource: path,
                status: status.as_u16(),
                code,
            });
        }
        Ok(body)
    }

    /// Every page of one list resource.
    pub async fn read_all<T: ListItem>(
        &self,
        filter: &[(&str, String)],
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<Vec<Entity<T>>, HubError> {
        let resource = T::RESOURCE;
        let mut out: Vec<Entity<T>> = Vec::new();
        let mut seen_tokens: HashSet<String> = HashSet::new();
        let mut token: Option<String> = None;
        for pages in 1..=self.cfg.max_pages {
            let mut query: Vec<(&str, String)> = filter.to_vec();
            query.push(("limit", self.cfg.page_size.to_string()));
            if let Some(t) = &token {
                query.push(("pageToken", t.clone()));
            }
            let body = self.get(resource, &query).await?;
            let page = parse_page::<T>(&body)?;
            out.extend(page.items);
            progress(Progress {
                resource,
                pages,
                items: out.len(),
            });
            match page.next {
                None => return Ok(out),
                Some(t) => {
                    if !seen_tokens.insert(t.clone()) {
                        return Err(HubError::PageLoop {
                            resource: resource.path(),
                        });
                    }
                    token = Some(t);
                }
            }
        }
        Err(HubError::TooManyPages {
            resource: resource.path(),
            max: self.cfg.max_pages,
        })
    }

    /// Whether the hub has any person changed after `after` (one page of one item): the
    /// feed's check that no marking may have changed since the last read.
    pub async fn persons_changed_since(&self, after: DateTime<Utc>) -> Result<bool, HubError> {
        let query = vec![
            (
                "meta.modified.after",
                after.to_rfc3339_opts(SecondsFormat::Millis, true),
            ),
            ("limit", "1".to_owned()),
        ];
        let body = self.get(Resource::Persons, &query).await?;
        Ok(!parse_page::<Person>(&body)?.items.is_empty())
    }

    /// Every page of `/deletedEntities` after `after`, for the resources Fiktiv reads.
    pub async fn read_deleted(&self, after: DateTime<Utc>) -> Result<Deleted, HubError> {
        let resource = Resource::DeletedEntities;
        let mut out = Deleted::default();
        let mut seen_tokens: HashSet<String> = HashSet::new();
        let mut token: Option<String> = None;
        for _ in 0..self.cfg.max_pages {
            let mut query: Vec<(&str, String)> = vec![
                ("after", after.to_rfc3339_opts(SecondsFormat::Millis, true)),
                ("limit", self.cfg.page_size.to_string()),
            ];
            // `Code_ObjectType` (EndPointsEnum) names, as the specification has them.
            for e in ["Organisation", "Person", "Group", "Duty", "Activity"] {
                query.push(("entities", e.to_owned()));
            }
            if let Some(t) = &token {
                query.push(("pageToken", t.clone()));
            }
            let body = self.get(resource, &query).await?;
            let (d, next) = parse_deleted(&body)?;
            out.organisations.extend(d.organisations);
            out.persons.extend(d.persons);
            out.groups.extend(d.groups);
            out.duties.extend(d.duties);
            out.activities.extend(d.activities);
            match next {
                None => return Ok(out),
                Some(t) => {
                    if !seen_tokens.insert(t.clone()) {
                        return Err(HubError::PageLoop {
                            resource: resource.path(),
                        });
                    }
                    token = Some(t);
                }
            }
        }
        Err(HubError::TooManyPages {
            resource: resource.path(),
            max: self.cfg.max_pages,
        })
    }

    /// A whole read: everything (`since` = `None`) or what changed after `since`
    /// (`meta.modified.after`, and `/deletedEntities?after=`). Marked persons are taken
    /// apart from the rest page by page.
    pub async fn read(
        &self,
        since: Option<DateTime<Utc>>,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<Snapshot, HubError> {
        let filter: Vec<(&str, String)> = since
            .map(|t| {
                vec![(
                    "meta.modified.after",
                    t.to_rfc3339_opts(SecondsFormat::Millis, true),
                )]
            })
            .unwrap_or_default();
        let mut pages = 0usize;
        let mut count = |p: Progress| {
            pages += 1;
            progress(p)
        };
        let organisations = self.read_all::<Organisation>(&filter, &mut count).await?;
        unique(
            Resource::Organisations,
            organisations.iter().map(|e| e.value.id),
        )?;
        let all = self.read_all::<Person>(&filter, &mut count).await?;
        unique(Resource::Persons, all.iter().map(|e| e.value.id))?;
        let mut persons = Vec::with_capacity(all.len());
        let mut marked = Vec::new();
        for e in all {
            match MarkedPerson::sort(e) {
                Sorted::Marked(m) => marked.push(m),
                Sorted::Unmarked(e) => persons.push(e),
            }
        }
        let groups = self.read_all::<Group>(&filter, &mut count).await?;
        unique(Resource::Groups, groups.iter().map(|e| e.value.id))?;
        let duties = self.read_all::<Duty>(&filter, &mut count).await?;
        unique(Resource::Duties, duties.iter().map(|e| e.value.id))?;
        let activities = self.read_all::<Activity>(&filter, &mut count).await?;
        unique(Resource::Activities, activities.iter().map(|e| e.value.id))?;
        let deleted = match since {
            Some(t) => self.read_deleted(t).await?,
            None => Deleted::default(),
        };
        Ok(Snapshot {
            organisations,
            persons,
            marked,
            groups,
            duties,
            activities,
            deleted,
            pages,
        })
    }
}

fn unique(resource: Resource, ids: impl Iterator<Item = Uuid>) -> Result<(), HubError> {
    let mut seen = HashSet::new();
    for id in ids {
        if !seen.insert(id) {
            return Err(HubError::DuplicateId {
                resource: resource.path(),
            });
        }
    }
    Ok(())
}
