//! The feed: Fiktiv's own read-only SS 12000 API for the platforms, built from what the
//! hub reads kept (`hub_entities`) and the fictitious pupils of linked, registered
//! cases. A marked person appears only as the fictitious pupil (`securityMarking`
//! `Ingen`), in the hub's groups the pupil is in, with the guardians the plan links as
//! their fictitious identities; a marked person without a registered case appears
//! nowhere, nor do guardians the plan does not link.
//!
//! Every entity leaves through the egress guard: one whose values match a real
//! identity in the vault is left out of the answer, logged and audited
//! (`feed.blocked`, the rule only). The feed answers nothing while the hub's last good
//! read is older than the configured age, or the last read stopped because the hub did
//! not say whether a person is marked ([`Freshness`]).
//!
//! Consumers have their own bearer tokens (stored as SHA-256), the endpoints they may
//! read and the person fields left out for them.

use chrono::{DateTime, TimeDelta, Utc};
use fiktiv_vault::audit::{fmt_time, NewEvent, Outcome};
use fiktiv_vault::{CaseId, Vault};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::hub::HubFacts;
use crate::{DomainError, DomainResult};

pub mod filter;
mod serve;

pub use serve::{deleted, list, lookup, one, FeedAnswer, ListQuery, MAX_LIMIT};

/// The resources the feed serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FeedResource {
    Organisations,
    Persons,
    Groups,
    Duties,
    Activities,
}

impl FeedResource {
    pub const ALL: [FeedResource; 5] = [
        Self::Organisations,
        Self::Persons,
        Self::Groups,
        Self::Duties,
        Self::Activities,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Organisations => "organisations",
            Self::Persons => "persons",
            Self::Groups => "groups",
            Self::Duties => "duties",
            Self::Activities => "activities",
        }
    }

    /// The key of this resource in a `/deletedEntities` answer (the specification
    /// spells activities `activitites`).
    pub fn deleted_key(self) -> &'static str {
        match self {
            Self::Activities => "activitites",
            r => r.as_str(),
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// Person fields a consumer may be refused (as hub products allow per client).
pub const OMITTABLE: &[&str] = &[
    "civicNo",
    "addresses",
    "photo",
    "emails",
    "phoneNumbers",
    "externalIdentifiers",
    "eduPersonPrincipalNames",
    "birthDate",
    "sex",
];

/// A consumer of the feed, authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumer {
    pub name: String,
    pub endpoints: Vec<FeedResource>,
    pub omit: Vec<String>,
}

/// Why the feed answered nothing. Each maps to the specification's `Error` body.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("the school administration system has not been read recently enough")]
    Stale,
    #[error("this client may not read {0}")]
    NotInScope(&'static str),
    #[error("{1}")]
    BadRequest(&'static str, &'static str),
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Domain(#[from] DomainError),
}

impl From<sqlx::Error> for FeedError {
    fn from(e: sqlx::Error) -> Self {
        Self::Domain(e.into())
    }
}

impl From<fiktiv_vault::DbError> for FeedError {
    fn from(e: fiktiv_vault::DbError) -> Self {
        Self::Domain(e.into())
    }
}

impl From<fiktiv_vault::VaultError> for FeedError {
    fn from(e: fiktiv_vault::VaultError) -> Self {
        Self::Domain(e.into())
    }
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new consumer: its name (1 to 64 of `A-Z a-z 0-9 . _ -`), the endpoints it may
/// read, the person fields left out. Returns its token, shown once. Audited.
pub async fn add_consumer(
    vault: &Vault,
    name: &str,
    endpoints: &[FeedResource],
    omit: &[String],
    actor: &str,
) -> DomainResult<String> {
    let mut problems = Vec::new();
    crate::check_unit_code("name", name, &mut problems);
    if endpoints.is_empty() {
        problems.push(crate::FieldProblem::new(
            "endpoints",
            "feed.no-endpoint",
            "A consumer may read at least one endpoint.",
        ));
    }
    if let Some(bad) = omit.iter().find(|f| !OMITTABLE.contains(&f.as_str())) {
        let _ = bad;
        problems.push(crate::FieldProblem::new(
            "omit",
            "feed.unknown-field",
            "Only civicNo, addresses, photo, emails, phoneNumbers, externalIdentifiers, eduPersonPrincipalNames, birthDate and sex can be left out.",
        ));
    }
    if !problems.is_empty() {
        return Err(DomainError::Invalid(problems));
    }
    let mut bytes = [0u8; 32];
    rand::Rng::fill(&mut rand::thread_rng(), &mut bytes);
    let token = format!("fks_{}", hex::encode(bytes));
    let endpoints: Vec<&str> = endpoints.iter().map(|e| e.as_str()).collect();
    let mut tx = vault.db().begin_write().await?;
    let inserted = sqlx::query(
        "INSERT INTO feed_consumers (name, token_sha256, endpoints_json, omit_json, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(name)
    .bind(token_hash(&token))
    .bind(serde_json::to_string(&endpoints).unwrap_or_default())
    .bind(serde_json::to_string(omit).unwrap_or_default())
    .bind(actor)
    .bind(fmt_time(vault.now()))
    .execute(&mut *tx)
    .await;
    if let Err(e) = inserted {
        if crate::is_unique_violation(&e) {
            return Err(DomainError::Conflict {
                code: "feed-consumer-exists",
                message: "A consumer with this name exists.",
            });
        }
        return Err(e.into());
    }
    event(
        vault,
        &mut tx,
        actor,
        "feed.consumer-add",
        Some(name),
        Outcome::Ok,
    )
    .await?;
    tx.commit().await?;
    Ok(token)
}

/// Revokes a consumer's token. Audited.
pub async fn revoke_consumer(vault: &Vault, name: &str, actor: &str) -> DomainResult<()> {
    let mut tx = vault.db().begin_write().await?;
    let n = sqlx::query(
        "UPDATE feed_consumers SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL",
    )
    .bind(fmt_time(vault.now()))
    .bind(name)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if n == 0 {
        return Err(DomainError::NotFound);
    }
    event(
        vault,
        &mut tx,
        actor,
        "feed.consumer-revoke",
        Some(name),
        Outcome::Ok,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// A consumer as listed (no token).
#[derive(Debug, Clone, Serialize)]
pub struct ConsumerInfo {
    pub name: String,
    pub endpoints: Vec<String>,
    pub omit: Vec<String>,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

pub async fn consumers(vault: &Vault) -> DomainResult<Vec<ConsumerInfo>> {
    let rows = sqlx::query(
        "SELECT name, endpoints_json, omit_json, created_at, revoked_at FROM feed_consumers ORDER BY name",
    )
    .fetch_all(vault.db().pool())
    .await?;
    let mut out = Vec::new();
    for r in rows {
        out.push(ConsumerInfo {
            name: r.try_get("name")?,
            endpoints: serde_json::from_str(&r.try_get::<String, _>("endpoints_json")?)
                .unwrap_or_default(),
            omit: serde_json::from_str(&r.try_get::<String, _>("omit_json")?).unwrap_or_default(),
            created_at: r.try_get("created_at")?,
            revoked_at: r.try_get("revoked_at")?,
        });
    }
    Ok(out)
}

/// The consumer a bearer token belongs to, if any (not revoked).
pub async fn authenticate(vault: &Vault, token: &str) -> DomainResult<Option<Consumer>> {
    if !token.starts_with("fks_") || token.len() > 100 {
        return Ok(None);
    }
    let row = sqlx::query(
        "SELECT name, endpoints_json, omit_json FROM feed_consumers \
         WHERE token_sha256 = $1 AND revoked_at IS NULL",
    )
    .bind(token_hash(token))
    .fetch_optional(vault.db().pool())
    .await?;
    let Some(r) = row else { return Ok(None) };
    let endpoints: Vec<String> =
        serde_json::from_str(&r.try_get::<String, _>("endpoints_json")?).unwrap_or_default();
    Ok(Some(Consumer {
        name: r.try_get("name")?,
        endpoints: endpoints
            .iter()
            .filter_map(|e| FeedResource::parse(e))
            .collect(),
        omit: serde_json::from_str(&r.try_get::<String, _>("omit_json")?).unwrap_or_default(),
    }))
}

async fn event(
    vault: &Vault,
    conn: &mut sqlx::AnyConnection,
    actor: &str,
    action: &str,
    purpose: Option<&str>,
    outcome: Outcome,
) -> DomainResult<()> {
    vault
        .audit(
            conn,
            &NewEvent {
                actor,
                action,
                case_id: None,
                purpose,
                outcome,
            },
        )
        .await?;
    Ok(())
}

/// Whether the feed may answer: the hub's last good read is younger than `max_age`,
/// and no read since stopped because a person's marking could not be told.
pub async fn fresh(vault: &Vault, max_age: TimeDelta) -> DomainResult<bool> {
    let s = crate::hub::status(vault).await?;
    let Some(good) = s
        .last_good_at
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
    else {
        return Ok(false);
    };
    let good = good.with_timezone(&Utc);
    if vault.now() - good > max_age {
        return Ok(false);
    }
    // A later read that could not tell a marking: something may be marked now.
    let later_try = s
        .last_try_at
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .is_some_and(|t| t.with_timezone(&Utc) > good);
    Ok(!(later_try && s.last_error.as_deref() == Some("hub.no-marking")))
}

/// A fictitious pupil as the feed serves it.
struct Fictitious {
    id: String,
    modified: String,
    json: Value,
    groups: Vec<String>,
}

/// The fictitious pupils of linked, registered (not ended) cases.
async fn fictitious(vault: &Vault) -> DomainResult<Vec<Fictitious>> {
    let rows = sqlx::query(
        "SELECT l.case_id, l.fict_person_id, l.linked_at, c.fict_first, c.fict_last, c.fict_birth, \
         c.fict_number, c.fict_at, c.country FROM hub_links l JOIN cases c ON c.case_id = l.case_id \
         WHERE c.state = 'registered' AND c.fict_number IS NOT NULL ORDER BY l.fict_person_id",
    )
    .fetch_all(vault.db().pool())
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let case: String = r.try_get("case_id")?;
        let Ok(case) = case.parse::<CaseId>() else {
            continue;
        };
        let facts: HubFacts = crate::hub::facts_of(vault, &case)
            .await?
            .unwrap_or_default();
        let linked: String = r.try_get("linked_at")?;
        let fict_at: Option<String> = r.try_get("fict_at")?;
        let modified = std::cmp::max(linked, fict_at.unwrap_or_default());
        let modified = DateTime::parse_from_rfc3339(&modified)
            .map(|t| crate::hub::stamp(&t))
            .unwrap_or(modified);
        let id: String = r.try_get("fict_person_id")?;
        let country: String = r.try_get("country")?;
        let mut person = json!({
            "id": id,
            "meta": { "created": modified, "modified": modified },
            "givenName": r.try_get::<Option<String>, _>("fict_first")?.unwrap_or_default(),
            "familyName": r.try_get::<Option<String>, _>("fict_last")?.unwrap_or_default(),
            "securityMarking": "Ingen",
            "personStatus": "Aktiv",
        });
        if let Some(b) = r.try_get::<Option<String>, _>("fict_birth")? {
            person["birthDate"] = json!(b);
        }
        if let Some(n) = r.try_get::<Option<String>, _>("fict_number")? {
            person["civicNo"] = json!({
                "value": n,
                "nationality": if country == "no" { "NO" } else { "SE" },
            });
        }
        if let (Some(at), Some(ty), Some(start)) = (
            facts.enroled_at,
            facts.school_type.as_ref(),
            facts.start_date,
        ) {
            let mut e = json!({
                "enroledAt": { "id": at.to_string() },
                "schoolType": ty,
                "startDate": start.to_string(),
            });
            if let Some(y) = facts.school_year {
                e["schoolYear"] = json!(y);
            }
            person["enrolments"] = json!([e]);
        }
        // The guardians the plan links, as their fictitious identities (registered:
        // with a fictitious number); any other guardian does not appear at all.
        let guardians = sqlx::query(
            "SELECT guardian_no, fict_first, fict_last, fict_birth, fict_number, recorded_at \
             FROM guardians WHERE case_id = $1 AND linked = 1 AND fict_number IS NOT NULL \
             ORDER BY guardian_no",
        )
        .bind(case.to_string())
        .fetch_all(vault.db().pool())
        .await?;
        let mut responsibles = Vec::new();
        for g in guardians {
            let no: i64 = g.try_get("guardian_no")?;
            let gid = guardian_id(vault, &case, no);
            responsibles.push(json!({
                "person": { "id": gid },
                "relationType": "Vårdnadshavare",
            }));
            let at: String = g.try_get("recorded_at")?;
            let at = DateTime::parse_from_rfc3339(&at)
                .map(|t| crate::hub::stamp(&t))
                .unwrap_or(at);
            let mut guardian = json!({
                "id": gid,
                "meta": { "created": at, "modified": at },
                "givenName": g.try_get::<Option<String>, _>("fict_first")?.unwrap_or_default(),
                "familyName": g.try_get::<Option<String>, _>("fict_last")?.unwrap_or_default(),
                "securityMarking": "Ingen",
                "personStatus": "Aktiv",
            });
            if let Some(b) = g.try_get::<Option<String>, _>("fict_birth")? {
                guardian["birthDate"] = json!(b);
            }
            if let Some(n) = g.try_get::<Option<String>, _>("fict_number")? {
                guardian["civicNo"] = json!({
                    "value": n,
                    "nationality": if country == "no" { "NO" } else { "SE" },
                });
            }
            out.push(Fictitious {
                id: gid,
                modified: at_of(&guardian),
                groups: Vec::new(),
                json: guardian,
            });
        }
        if !responsibles.is_empty() {
            person["responsibles"] = json!(responsibles);
        }
        out.push(Fictitious {
            id,
            modified: at_of(&person),
            groups: facts.groups.iter().map(|(id, _)| id.clone()).collect(),
            json: person,
        });
    }
    Ok(out)
}

fn at_of(person: &Value) -> String {
    person["meta"]["modified"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The feed's id of a linked guardian's fictitious person: keyed (the blind-index key)
/// from the case and the guardian's number, so it is stable and says nothing.
fn guardian_id(vault: &Vault, case: &CaseId, no: i64) -> String {
    let idx = vault.keys().blind().index(
        fiktiv_vault::IndexKind::HubPerson,
        &format!("\0fictitious-guardian|{case}|{no}"),
    );
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&idx.0[..16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}
