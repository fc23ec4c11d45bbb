//! Serving the feed: a page of a list (with the specification's filters,
//! [`super::filter`]), one entity, a `/lookup`, `/deletedEntities`. Every entity as the
//! consumer is served it: the fictitious pupil in place, the consumer's omitted fields
//! gone, through the egress guard.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::DateTime;
use fiktiv_provisioning::guard::EgressGuard;
use fiktiv_provisioning::model::TargetName;
use fiktiv_vault::audit::Outcome;
use fiktiv_vault::Vault;
use serde_json::{json, Value};
use sqlx::Row;
use uuid::Uuid;

use super::filter::{Context, Cursor, Filter, Lookup};
use super::{event, fictitious, Consumer, FeedError, FeedResource, Fictitious};
use crate::hub::FEED_DELETED_PURPOSE;
use crate::DomainError;

/// One page of a list, or one entity, as the specification's JSON.
#[derive(Debug)]
pub struct FeedAnswer(pub Value);

/// Query of a list: `limit`, `pageToken`, and every other parameter as given (the
/// filters, checked by [`Filter::parse`]).
#[derive(Debug, Default, Clone)]
pub struct ListQuery {
    pub limit: Option<String>,
    pub page_token: Option<String>,
    pub filter: Vec<(String, String)>,
}

/// The largest page served.
pub const MAX_LIMIT: usize = 1000;
const DEFAULT_LIMIT: usize = 100;

fn parse_after(s: &str) -> Result<String, FeedError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| crate::hub::stamp(&t))
        .map_err(|_| {
            FeedError::BadRequest(
                "invalid-date-time",
                "meta.modified.after is not a date-time.",
            )
        })
}

fn scope(consumer: &Consumer, resource: FeedResource) -> Result<(), FeedError> {
    if consumer.endpoints.contains(&resource) {
        Ok(())
    } else {
        Err(FeedError::NotInScope(resource.as_str()))
    }
}

/// The guard's target name for the feed.
fn feed_target() -> Result<TargetName, FeedError> {
    TargetName::new("ss12000-feed")
        .map_err(|_| FeedError::Domain(DomainError::Internal("feed target name".into())))
}

fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::String(s) => out.push((prefix.to_owned(), s.clone())),
        Value::Array(a) => a.iter().for_each(|x| flatten(prefix, x, out)),
        Value::Object(o) => {
            for (k, x) in o {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&p, x, out);
            }
        }
        Value::Number(n) => out.push((prefix.to_owned(), n.to_string())),
        _ => {}
    }
}

/// Leaves out, with the guard, every entity that holds a real identity of the vault;
/// audits each one left out (the rule, never a value).
async fn guarded(
    vault: &Vault,
    guard: &EgressGuard,
    consumer: &Consumer,
    items: Vec<Value>,
) -> Result<Vec<Value>, FeedError> {
    let target = feed_target()?;
    let mut out = Vec::with_capacity(items.len());
    let mut blocked = Vec::new();
    for item in items {
        let mut values = Vec::new();
        flatten("", &item, &mut values);
        match guard.check_values(&target, None, &values) {
            Ok(()) => out.push(item),
            Err(b) => blocked.push(b.rule.as_str()),
        }
    }
    if !blocked.is_empty() {
        tracing::warn!(
            consumer = %consumer.name,
            blocked = blocked.len(),
            "feed: entities left out by the egress guard (they match a real identity)"
        );
        let mut tx = vault.db().begin_write().await?;
        for rule in blocked {
            event(
                vault,
                &mut tx,
                "system",
                "feed.blocked",
                Some(rule),
                Outcome::Denied,
            )
            .await?;
        }
        tx.commit().await?;
    }
    Ok(out)
}

fn omit(consumer: &Consumer, resource: FeedResource, mut v: Value) -> Value {
    if resource == FeedResource::Persons {
        if let Some(o) = v.as_object_mut() {
            for f in &consumer.omit {
                o.remove(f);
            }
        }
    }
    v
}

/// The fictitious pupils of each hub group (by group id).
fn members_by_group(fict: &[Fictitious]) -> HashMap<String, Vec<&Fictitious>> {
    let mut members: HashMap<String, Vec<&Fictitious>> = HashMap::new();
    for f in fict {
        for g in &f.groups {
            members.entry(g.clone()).or_default().push(f);
        }
    }
    members
}

/// Adds the fictitious pupils' memberships to a group as kept.
fn with_members(mut group: Value, members: &HashMap<String, Vec<&Fictitious>>) -> Value {
    let id = group["id"].as_str().unwrap_or_default().to_owned();
    if let Some(list) = members.get(&id) {
        let start = group["startDate"].clone();
        if !group["groupMemberships"].is_array() {
            group["groupMemberships"] = json!([]);
        }
        if let Some(arr) = group["groupMemberships"].as_array_mut() {
            for f in list {
                arr.push(json!({ "person": { "id": f.id }, "startDate": start }));
            }
        }
    }
    group
}

/// One page of `resource` for `consumer`: ordered by id, `limit` (1 to
/// [`MAX_LIMIT`]), the specification's filters ([`Filter`]), and the `pageToken` this
/// feed gave (alone: it carries the first request's filters, as the specification
/// wants).
pub async fn list(
    vault: &Vault,
    guard: &EgressGuard,
    consumer: &Consumer,
    resource: FeedResource,
    q: &ListQuery,
) -> Result<FeedAnswer, FeedError> {
    scope(consumer, resource)?;
    let limit = match q.limit.as_deref().map(str::parse::<usize>) {
        None => DEFAULT_LIMIT,
        Some(Ok(n)) if (1..=MAX_LIMIT).contains(&n) => n,
        _ => {
            return Err(FeedError::BadRequest(
                "invalid-limit",
                "limit must be a whole number from 1 to 1000.",
            ))
        }
    };
    let (cursor, filter) = match q.page_token.as_deref() {
        None => {
            let f = Filter::parse(resource, &q.filter)?;
            let start = if f.sorted() {
                Cursor::Offset(0)
            } else {
                Cursor::After(String::new())
            };
            (start, f)
        }
        Some(_) if !q.filter.is_empty() => return Err(FeedError::BadRequest(
            "invalid-page-token",
            "A pageToken is sent alone (with limit): it carries the filters of the first request.",
        )),
        Some(t) => Filter::from_token(resource, t)?,
    };
    // `meta.modified.after` narrows what is read from the store too.
    let modified_after = filter
        .modified_after()
        .map(|t| crate::hub::stamp(&t.fixed_offset()));
    let fict = fictitious_if_needed(
        vault,
        resource,
        filter.needs_context() || !filter.expand().is_empty(),
    )
    .await?;
    let ctx = if filter.needs_context() {
        context(vault, consumer, &fict).await?
    } else {
        Context::default()
    };
    let (mut page, next) = match cursor {
        Cursor::Offset(skip) => {
            sorted_page(vault, consumer, resource, &filter, &ctx, &fict, skip, limit).await?
        }
        Cursor::After(after_id) => {
            let page = id_page(
                vault,
                consumer,
                resource,
                &filter,
                &ctx,
                &fict,
                after_id,
                modified_after,
                limit,
            )
            .await?;
            let next = (page.len() > limit)
                .then(|| {
                    page.get(limit - 1)
                        .map(|(id, _)| filter.token(&Cursor::After(id.clone())))
                })
                .flatten();
            (page, next)
        }
    };
    page.truncate(limit);
    let mut values: Vec<Value> = page.into_iter().map(|(_, v)| v).collect();
    if !filter.expand().is_empty() {
        expand(
            vault,
            consumer,
            resource,
            filter.expand(),
            &fict,
            &mut values,
        )
        .await?;
    }
    let data = guarded(vault, guard, consumer, values).await?;
    Ok(FeedAnswer(json!({ "data": data, "pageToken": next })))
}

/// A page of a sorted list (`sortkey`): every entity as served, filtered and sorted,
/// from place `skip`; the token of the next page goes on by place.
#[allow(clippy::too_many_arguments)] // one page's inputs, all needed
async fn sorted_page(
    vault: &Vault,
    consumer: &Consumer,
    resource: FeedResource,
    filter: &Filter,
    ctx: &Context,
    fict: &[Fictitious],
    skip: usize,
    limit: usize,
) -> Result<(Vec<(String, Value)>, Option<String>), FeedError> {
    let mut all: Vec<(String, Value)> = served_all(vault, resource, fict)
        .await?
        .into_iter()
        .map(|v| omit(consumer, resource, v))
        .filter(|v| filter.matches(v, ctx))
        .map(|v| (v["id"].as_str().unwrap_or_default().to_owned(), v))
        .collect();
    filter.sort_items(&mut all);
    let more = all.len() > skip.saturating_add(limit);
    let page: Vec<(String, Value)> = all.into_iter().skip(skip).take(limit).collect();
    let next = more.then(|| filter.token(&Cursor::Offset(skip + limit)));
    Ok((page, next))
}

/// A page of a list in id order after `after_id`: up to `limit + 1` entities (one more
/// tells that a next page exists).
#[allow(clippy::too_many_arguments)] // one page's inputs, all needed
async fn id_page(
    vault: &Vault,
    consumer: &Consumer,
    resource: FeedResource,
    filter: &Filter,
    ctx: &Context,
    fict: &[Fictitious],
    after_id: String,
    modified_after: Option<String>,
    limit: usize,
) -> Result<Vec<(String, Value)>, FeedError> {
    let members = members_by_group(fict);
    // Without a filter one read answers the page; with one, reads go on in batches
    // until the page is full or the resource is read to its end.
    let batch = if filter.is_empty() {
        limit + 1
    } else {
        (limit + 1).max(500)
    };
    let mut cursor = after_id;
    let mut page: Vec<(String, Value)> = Vec::new();
    loop {
        let rows = sqlx::query(
            "SELECT id, raw FROM hub_entities WHERE resource = $1 AND id > $2 \
             AND ($3 IS NULL OR modified > $3) ORDER BY id LIMIT $4",
        )
        .bind(resource.as_str())
        .bind(&cursor)
        .bind(modified_after.clone())
        .bind(batch as i64)
        .fetch_all(vault.db().pool())
        .await?;
        let full = rows.len() == batch;
        let mut items: BTreeMap<String, Value> = BTreeMap::new();
        for r in rows {
            let id: String = r.try_get("id")?;
            let raw: String = r.try_get("raw")?;
            if let Ok(v) = serde_json::from_str::<Value>(&raw) {
                items.insert(id, v);
            }
        }
        // The last id read: fictitious pupils up to it belong to this batch.
        let upper = if full {
            items.keys().next_back().cloned()
        } else {
            None
        };
        if resource == FeedResource::Persons {
            for f in fict {
                if f.id > cursor
                    && upper.as_ref().is_none_or(|u| f.id <= *u)
                    && modified_after.as_ref().is_none_or(|a| f.modified > *a)
                {
                    items.insert(f.id.clone(), f.json.clone());
                }
            }
        }
        for (id, v) in items {
            let v = match resource {
                FeedResource::Groups => with_members(v, &members),
                _ => v,
            };
            let v = omit(consumer, resource, v);
            if filter.matches(&v, ctx) {
                page.push((id, v));
                if page.len() > limit {
                    break;
                }
            }
        }
        match upper {
            Some(u) if page.len() <= limit => cursor = u,
            _ => break,
        }
    }
    Ok(page)
}

/// Adds the specification's `_embedded` objects `expand` asks for, each as the consumer
/// is served it (a person's omitted fields gone, a marked person never: only what the
/// feed serves is embedded). An expansion into a resource the consumer may not read
/// is refused.
async fn expand(
    vault: &Vault,
    consumer: &Consumer,
    resource: FeedResource,
    what: &[&'static str],
    fict: &[Fictitious],
    values: &mut [Value],
) -> Result<(), FeedError> {
    let needs = |r: FeedResource| -> Result<(), FeedError> {
        if consumer.endpoints.contains(&r) {
            Ok(())
        } else {
            Err(FeedError::NotInScope(r.as_str()))
        }
    };
    let by_id = |items: Vec<Value>| -> HashMap<String, Value> {
        items
            .into_iter()
            .filter_map(|v| v["id"].as_str().map(|id| (id.to_owned(), v.clone())))
            .collect()
    };
    let mut embedded: Vec<serde_json::Map<String, Value>> =
        vec![serde_json::Map::new(); values.len()];
    for e in what {
        match (resource, *e) {
            (FeedResource::Persons, "duties") => {
                needs(FeedResource::Duties)?;
                let duties = served_all(vault, FeedResource::Duties, fict).await?;
                for (v, emb) in values.iter().zip(embedded.iter_mut()) {
                    let mine: Vec<Value> = duties
                        .iter()
                        .filter(|d| d["person"]["id"] == v["id"])
                        .cloned()
                        .collect();
                    emb.insert("duties".into(), Value::Array(mine));
                }
            }
            (FeedResource::Persons, "responsibleFor") => {
                let persons = served_all(vault, FeedResource::Persons, fict).await?;
                for (v, emb) in values.iter().zip(embedded.iter_mut()) {
                    let mut children = Vec::new();
                    for p in &persons {
                        for r in p["responsibles"].as_array().into_iter().flatten() {
                            if r["person"]["id"] == v["id"] {
                                let mut c = json!({ "person": { "id": p["id"] } });
                                if let Some(t) = r.get("relationType") {
                                    c["relationType"] = t.clone();
                                }
                                children.push(c);
                            }
                        }
                    }
                    emb.insert("responsibleFor".into(), Value::Array(children));
                }
            }
            // The feed serves no placements.
            (FeedResource::Persons, "placements" | "ownedPlacements") => {
                for emb in embedded.iter_mut() {
                    emb.insert((*e).into(), json!([]));
                }
            }
            (FeedResource::Persons, "groupMemberships") => {
                needs(FeedResource::Groups)?;
                let groups = served_all(vault, FeedResource::Groups, fict).await?;
                for (v, emb) in values.iter().zip(embedded.iter_mut()) {
                    let mut list = Vec::new();
                    for g in &groups {
                        for m in g["groupMemberships"].as_array().into_iter().flatten() {
                            if m["person"]["id"] == v["id"] {
                                // The specification's group fragment: the group without
                                // its members.
                                let mut frag = g.clone();
                                if let Some(o) = frag.as_object_mut() {
                                    o.remove("groupMemberships");
                                }
                                let mut x = json!({ "group": frag });
                                for k in ["startDate", "endDate"] {
                                    if let Some(d) = m.get(k).filter(|d| d.is_string()) {
                                        x[k] = d.clone();
                                    }
                                }
                                list.push(x);
                            }
                        }
                    }
                    emb.insert("groupMemberships".into(), Value::Array(list));
                }
            }
            // Assignment roles are not read from the hub: none to embed.
            (FeedResource::Groups, "assignmentRoles") => {
                for emb in embedded.iter_mut() {
                    emb.insert("assignmentRoles".into(), json!([]));
                }
            }
            (FeedResource::Duties, "person") => {
                needs(FeedResource::Persons)?;
                let persons = by_id(served_all(vault, FeedResource::Persons, fict).await?);
                for (v, emb) in values.iter().zip(embedded.iter_mut()) {
                    if let Some(p) = v["person"]["id"].as_str().and_then(|id| persons.get(id)) {
                        emb.insert(
                            "person".into(),
                            omit(consumer, FeedResource::Persons, p.clone()),
                        );
                    }
                }
            }
            (FeedResource::Activities, "groups") => {
                needs(FeedResource::Groups)?;
                let groups = by_id(served_all(vault, FeedResource::Groups, fict).await?);
                for (v, emb) in values.iter().zip(embedded.iter_mut()) {
                    let list: Vec<Value> = v["groups"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|g| g["id"].as_str().and_then(|id| groups.get(id)).cloned())
                        .collect();
                    emb.insert("groups".into(), Value::Array(list));
                }
            }
            (FeedResource::Activities, "teachers") => {
                needs(FeedResource::Duties)?;
                let duties = by_id(served_all(vault, FeedResource::Duties, fict).await?);
                for (v, emb) in values.iter().zip(embedded.iter_mut()) {
                    let list: Vec<Value> = v["teachers"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|t| {
                            t["duty"]["id"]
                                .as_str()
                                .and_then(|id| duties.get(id))
                                .cloned()
                        })
                        .collect();
                    emb.insert("teachers".into(), Value::Array(list));
                }
            }
            _ => {}
        }
    }
    for (v, emb) in values.iter_mut().zip(embedded) {
        if let Some(o) = v.as_object_mut() {
            o.insert("_embedded".into(), Value::Object(emb));
        }
    }
    Ok(())
}

/// Every entity of `resource` as served (kept by the hub's reads, the fictitious pupils
/// in place), before the consumer's omissions.
async fn served_all(
    vault: &Vault,
    resource: FeedResource,
    fict: &[Fictitious],
) -> Result<Vec<Value>, FeedError> {
    let rows = sqlx::query("SELECT raw FROM hub_entities WHERE resource = $1 ORDER BY id")
        .bind(resource.as_str())
        .fetch_all(vault.db().pool())
        .await?;
    let members = members_by_group(fict);
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        if let Ok(v) = serde_json::from_str::<Value>(&r.try_get::<String, _>("raw")?) {
            out.push(match resource {
                FeedResource::Groups => with_members(v, &members),
                _ => v,
            });
        }
    }
    if resource == FeedResource::Persons {
        out.extend(fict.iter().map(|f| f.json.clone()));
    }
    Ok(out)
}

/// The fictitious pupils (each link's facts opened), read once per request and only
/// when needed: for persons and groups, and for anything that reads other resources
/// as served (a relation filter, an expansion: an embedded group holds its fictitious
/// members as `/groups` does).
async fn fictitious_if_needed(
    vault: &Vault,
    resource: FeedResource,
    other_resources: bool,
) -> Result<Vec<Fictitious>, FeedError> {
    if other_resources || matches!(resource, FeedResource::Persons | FeedResource::Groups) {
        Ok(fictitious(vault).await?)
    } else {
        Ok(Vec::new())
    }
}

/// The context a relation filter needs, from the resources the consumer may read
/// (a filter never tells what a resource outside its scope holds).
async fn context(
    vault: &Vault,
    consumer: &Consumer,
    fict: &[Fictitious],
) -> Result<Context, FeedError> {
    let mut parts: [Vec<Value>; 4] = Default::default();
    for (i, r) in [
        FeedResource::Organisations,
        FeedResource::Persons,
        FeedResource::Groups,
        FeedResource::Duties,
    ]
    .into_iter()
    .enumerate()
    {
        if consumer.endpoints.contains(&r) {
            parts[i] = served_all(vault, r, fict).await?;
        }
    }
    Ok(Context::build(&parts[0], &parts[1], &parts[2], &parts[3]))
}

/// `POST /{resource}/lookup`: the entities the body names (ids, and for persons civic
/// numbers, ...; [`Lookup`]), as served to the consumer, in id order, as a bare array.
pub async fn lookup(
    vault: &Vault,
    guard: &EgressGuard,
    consumer: &Consumer,
    resource: FeedResource,
    body: &Value,
) -> Result<FeedAnswer, FeedError> {
    scope(consumer, resource)?;
    let wanted = Lookup::parse(resource, body)?;
    let fict = fictitious_if_needed(vault, resource, wanted.needs_context()).await?;
    let ctx = if wanted.needs_context() {
        context(vault, consumer, &fict).await?
    } else {
        Context::default()
    };
    let mut found: BTreeMap<String, Value> = BTreeMap::new();
    for v in served_all(vault, resource, &fict).await? {
        let v = omit(consumer, resource, v);
        if wanted.matches(&v, &ctx) {
            let id = v["id"].as_str().unwrap_or_default().to_owned();
            found.insert(id, v);
        }
    }
    let data = guarded(vault, guard, consumer, found.into_values().collect()).await?;
    // The specification answers a lookup with a bare array (`PersonsExpandedArray`, ...).
    Ok(FeedAnswer(Value::Array(data)))
}

/// One entity of `resource` by id.
pub async fn one(
    vault: &Vault,
    guard: &EgressGuard,
    consumer: &Consumer,
    resource: FeedResource,
    id: &str,
    query: &[(String, String)],
) -> Result<FeedAnswer, FeedError> {
    scope(consumer, resource)?;
    // One entity takes `expand` and `expandReferenceNames` (answered without names);
    // a filter or a sort key means nothing here and is refused.
    let asked = Filter::parse(resource, query)?;
    if !asked.is_empty() || asked.sorted() {
        return Err(FeedError::BadRequest(
            "unsupported-parameter",
            "One entity takes expand and expandReferenceNames only.",
        ));
    }
    let id = id
        .parse::<Uuid>()
        .map_err(|_| FeedError::NotFound)?
        .to_string();
    let row = sqlx::query("SELECT raw FROM hub_entities WHERE resource = $1 AND id = $2")
        .bind(resource.as_str())
        .bind(&id)
        .fetch_optional(vault.db().pool())
        .await?;
    let value = match row {
        Some(r) => {
            let v: Value = serde_json::from_str(&r.try_get::<String, _>("raw")?)
                .map_err(|_| FeedError::NotFound)?;
            if resource == FeedResource::Groups {
                with_members(v, &members_by_group(&fictitious(vault).await?))
            } else {
                v
            }
        }
        None if resource == FeedResource::Persons => fictitious(vault)
            .await?
            .into_iter()
            .find(|f| f.id == id)
            .map(|f| f.json)
            .ok_or(FeedError::NotFound)?,
        None => return Err(FeedError::NotFound),
    };
    let mut values = vec![omit(consumer, resource, value)];
    if !asked.expand().is_empty() {
        let fict = fictitious_if_needed(vault, resource, true).await?;
        expand(
            vault,
            consumer,
            resource,
            asked.expand(),
            &fict,
            &mut values,
        )
        .await?;
    }
    let mut data = guarded(vault, guard, consumer, values).await?;
    data.pop().map(FeedAnswer).ok_or(FeedError::NotFound)
}

/// `/deletedEntities` after a time: what the hub removed and what the feed took out.
pub async fn deleted(
    vault: &Vault,
    consumer: &Consumer,
    after: Option<&str>,
    q: &ListQuery,
) -> Result<FeedAnswer, FeedError> {
    let after = after.map(parse_after).transpose()?;
    let limit = match q.limit.as_deref().map(str::parse::<usize>) {
        None => MAX_LIMIT,
        Some(Ok(n)) if (1..=MAX_LIMIT).contains(&n) => n,
        _ => {
            return Err(FeedError::BadRequest(
                "invalid-limit",
                "limit must be a whole number from 1 to 1000.",
            ))
        }
    };
    let after_seq = match q.page_token.as_deref() {
        None => 0i64,
        Some(t) => t
            .strip_prefix("d")
            .and_then(|n| n.parse::<i64>().ok())
            .ok_or(FeedError::BadRequest(
                "invalid-page-token",
                "The pageToken is not one this service gave.",
            ))?,
    };
    let rows = sqlx::query(
        "SELECT seq, resource, id_sealed FROM feed_deleted WHERE seq > $1 \
         AND ($2 IS NULL OR deleted_at > $2) ORDER BY seq LIMIT $3",
    )
    .bind(after_seq)
    .bind(after)
    .bind((limit + 1) as i64)
    .fetch_all(vault.db().pool())
    .await?;
    let key = vault
        .keys()
        .target_secrets()
        .map_err(|e| FeedError::Domain(DomainError::Internal(e.to_string())))?;
    let mut data: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    let mut last = after_seq;
    let more = rows.len() > limit;
    let allowed: HashSet<&str> = consumer.endpoints.iter().map(|e| e.as_str()).collect();
    for r in rows.into_iter().take(limit) {
        last = r.try_get("seq")?;
        let resource: String = r.try_get("resource")?;
        let Some(res) = FeedResource::parse(&resource) else {
            continue;
        };
        if !allowed.contains(res.as_str()) {
            continue;
        }
        let sealed: Vec<u8> = r.try_get("id_sealed")?;
        let Ok(id) = key.open(FEED_DELETED_PURPOSE, res.as_str(), &sealed) else {
            continue;
        };
        if let Ok(id) = std::str::from_utf8(&id) {
            data.entry(res.deleted_key())
                .or_default()
                .push(id.to_owned());
        }
    }
    let next = more.then(|| format!("d{last}"));
    Ok(FeedAnswer(json!({ "data": data, "pageToken": next })))
}
