//! SS 12000: what a read of the hub (the school administration system) does to
//! Fiktiv's store, in one transaction (all of it or none of it).
//!
//! - Organisations, groups, duties and **unmarked** persons are kept as the hub wrote
//!   them (`hub_entities`), for the feed. A full read replaces them; a read of changes
//!   adds the changed and removes what `/deletedEntities` named.
//! - A **marked** person is never kept in plaintext. A person newly marked is removed
//!   from `hub_entities` at once (quarantine). A marked pupil whose number (or name
//!   with birth date) is an open case's is **linked** to that case: the blind index of
//!   the hub person id, the id and what the hub says of the pupil (unit, school year,
//!   groups) sealed with the case's key. A marked pupil with no case and a current
//!   enrolment becomes an **intake item** for the unit: the identity sealed with the
//!   item's own key. Ambiguous matches (two cases) become intake items too: Fiktiv
//!   never links a person to a case it is not sure of.
//! - A marking **lifted** in the hub is not acted on: the link or intake item is
//!   marked, the person stays out of `hub_entities`, and the school decides.
//!
//! Audit: one `hub.read` event per read (counts only, in the purpose), one `hub.link`
//! per case linked, one `hub.intake` per intake item made, `hub.marking-lifted` when a
//! lift is first seen. The log gets counts, never a name, a number or a hub id.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
pub use fiktiv_ss12000::config::UnitCodeFrom;
use fiktiv_ss12000::{MarkedPerson, Snapshot};
use fiktiv_vault::audit::{fmt_time, NewEvent, Outcome};
use fiktiv_vault::identity::{full_name_key, name_birth_of};
use fiktiv_vault::ids::PersonalNumber;
use fiktiv_vault::{BlindIndex, CaseId, IndexKind, Vault};
use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Row};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::DomainResult;

/// What a read changed, in counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ReadReport {
    pub persons: usize,
    pub marked: usize,
    pub linked: usize,
    pub intake_new: usize,
    pub quarantined: usize,
    pub lifted: usize,
    pub removed: usize,
}

/// What the hub says of a linked pupil: the case takes these instead of what the
/// school typed. Sealed with the case's key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HubFacts {
    pub unit: Option<String>,
    pub school_year: Option<u8>,
    /// The hub organisation the pupil is enrolled at, the school type and the start.
    #[serde(default)]
    pub enroled_at: Option<Uuid>,
    #[serde(default)]
    pub school_type: Option<String>,
    #[serde(default)]
    pub start_date: Option<NaiveDate>,
    /// The hub's group ids and names, classes first.
    pub groups: Vec<(String, String)>,
}

/// The identity of an intake item's pupil, sealed with the item's key. Its strings are
/// wiped on drop.
#[derive(Serialize, Deserialize, zeroize::ZeroizeOnDrop)]
struct IntakeIdentity {
    #[zeroize(skip)]
    hub_id: Uuid,
    #[zeroize(skip)]
    facts: HubFacts,
    given_name: String,
    family_name: String,
    #[zeroize(skip)]
    birth_date: Option<NaiveDate>,
    civic_no: Option<String>,
    marking: String,
    school_year: Option<u8>,
}

const LINK_FIELD: &str = "hub:person";
const FACTS_FIELD: &str = "hub:facts";
const INTAKE_FIELD: &str = "hub:intake";

/// The blind index of a hub person id.
fn person_idx(vault: &Vault, id: &Uuid) -> BlindIndex {
    vault
        .keys()
        .blind()
        .index(IndexKind::HubPerson, &id.as_hyphenated().to_string())
}

#[derive(Deserialize)]
struct OrgRow {
    id: String,
    #[serde(rename = "schoolUnitCode")]
    school_unit_code: Option<String>,
    #[serde(rename = "organisationCode")]
    organisation_code: Option<String>,
}

/// A hub time as kept: UTC, milliseconds, `Z` (so that kept times compare as text).
pub(crate) fn stamp(t: &DateTime<chrono::FixedOffset>) -> String {
    t.with_timezone(&Utc)
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Takes references to protected persons out of the hub's JSON before it is kept:
/// the entries of `field` (a list of `{"person": {"id": ...}}`) whose person is marked.
struct Scrub<'a> {
    vault: &'a Vault,
    protected: &'a HashSet<String>,
}

impl Scrub<'_> {
    fn json(&self, raw: &str, field: &str) -> DomainResult<String> {
        if self.protected.is_empty() {
            return Ok(raw.to_owned());
        }
        let mut v: serde_json::Value = serde_json::from_str(raw)
            .map_err(|_| crate::DomainError::Internal("kept hub JSON is not JSON".into()))?;
        let Some(list) = v.get_mut(field).and_then(|l| l.as_array_mut()) else {
            return Ok(raw.to_owned());
        };
        let before = list.len();
        list.retain(|entry| {
            let id = entry
                .get("person")
                .and_then(|p| p.get("id"))
                .and_then(|i| i.as_str())
                .and_then(|i| i.parse::<Uuid>().ok());
            match id {
                Some(id) => !self
                    .protected
                    .contains(&person_idx(self.vault, &id).to_hex()),
                None => true,
            }
        });
        if list.len() == before {
            return Ok(raw.to_owned());
        }
        Ok(v.to_string())
    }
}

async fn upsert(
    conn: &mut AnyConnection,
    resource: &str,
    id: &Uuid,
    modified: &str,
    raw: &str,
) -> DomainResult<()> {
    sqlx::query(
        "INSERT INTO hub_entities (resource, id, modified, raw) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (resource, id) DO UPDATE SET modified = excluded.modified, raw = excluded.raw",
    )
    .bind(resource)
    .bind(id.to_string())
    .bind(modified)
    .bind(raw)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Records that the feed no longer has `id` of `resource` (for its `/deletedEntities`),
/// the id sealed.
pub(crate) async fn feed_deleted(
    vault: &Vault,
    conn: &mut AnyConnection,
    resource: &str,
    id: &Uuid,
) -> DomainResult<()> {
    let sealed = vault
        .keys()
        .target_secrets()
        .map_err(|e| crate::DomainError::Internal(e.to_string()))?
        .seal(FEED_DELETED_PURPOSE, resource, id.to_string().as_bytes())
        .map_err(|_| crate::DomainError::Internal("sealing a removed id failed".into()))?;
    sqlx::query("INSERT INTO feed_deleted (resource, id_sealed, deleted_at) VALUES ($1, $2, $3)")
        .bind(resource)
        .bind(sealed)
        .bind(fmt_time(vault.now()))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The sealing purpose of the feed's removed ids.
pub(crate) const FEED_DELETED_PURPOSE: &str = "feed-deleted";

async fn remove(conn: &mut AnyConnection, resource: &str, id: &Uuid) -> DomainResult<u64> {
    Ok(
        sqlx::query("DELETE FROM hub_entities WHERE resource = $1 AND id = $2")
            .bind(resource)
            .bind(id.to_string())
            .execute(&mut *conn)
            .await?
            .rows_affected(),
    )
}

async fn system_event(
    vault: &Vault,
    conn: &mut AnyConnection,
    action: &str,
    case: Option<CaseId>,
    purpose: Option<&str>,
) -> DomainResult<()> {
    vault
        .audit(
            conn,
            &NewEvent {
                actor: "system",
                action,
                case_id: case,
                purpose,
                outcome: Outcome::Ok,
            },
        )
        .await?;
    Ok(())
}

/// All stored rows of one resource, parsed as `T` (rows that do not parse are skipped:
/// they were checked when read).
async fn stored<T: for<'de> Deserialize<'de>>(
    conn: &mut AnyConnection,
    resource: &str,
) -> DomainResult<Vec<T>> {
    let rows = sqlx::query("SELECT raw FROM hub_entities WHERE resource = $1")
        .bind(resource)
        .fetch_all(&mut *conn)
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let raw: String = r.try_get("raw")?;
        if let Ok(v) = serde_json::from_str(&raw) {
            out.push(v);
        }
    }
    Ok(out)
}

/// The open cases a marked person's number, or else name and birth date, belongs to.
async fn matching_cases(
    vault: &Vault,
    conn: &mut AnyConnection,
    m: &MarkedPerson,
    today: NaiveDate,
) -> DomainResult<HashSet<String>> {
    let blind = vault.keys().blind();
    let mut numbers: Vec<Zeroizing<String>> = Vec::new();
    if let Some(n) = m
        .civic_no
        .as_ref()
        .and_then(|c| PersonalNumber::parse(c.expose(), today).ok())
    {
        numbers.push(Zeroizing::new(n.canonical().to_owned()));
    } else {
        // The hub filed no readable number in civicNo: what it filed elsewhere.
        numbers.extend(m.numbers_elsewhere.iter().cloned());
    }
    let mut cases = HashSet::new();
    for n in &numbers {
        let idx = blind.index(IndexKind::PersonalNumber, n);
        let rows =
            sqlx::query("SELECT case_id FROM cases WHERE pnr_index = $1 AND state <> 'ended'")
                .bind(idx.to_hex())
                .fetch_all(&mut *conn)
                .await?;
        for r in rows {
            cases.insert(r.try_get::<String, _>("case_id")?);
        }
    }
    if cases.is_empty() {
        if let Some(birth) = m.birth_date {
            let key = name_birth_of(
                &full_name_key(m.given_name.expose(), m.family_name.expose()),
                birth,
            );
            let idx = blind.index(IndexKind::NameBirth, &key);
            let rows = sqlx::query(
                "SELECT DISTINCT b.case_id FROM blind_indexes b JOIN cases c ON c.case_id = b.case_id \
                 WHERE b.kind = $1 AND b.idx = $2 AND b.subject = 'pupil' AND c.state <> 'ended'",
            )
            .bind(IndexKind::NameBirth.as_str())
            .bind(idx.to_hex())
            .fetch_all(&mut *conn)
            .await?;
            for r in rows {
                cases.insert(r.try_get::<String, _>("case_id")?);
            }
        }
    }
    Ok(cases)
}

/// The enrolment that counts: the first not cancelled and not ended before `today`.
fn current_enrolment(
    m: &MarkedPerson,
    today: NaiveDate,
) -> Option<&fiktiv_ss12000::model::Enrolment> {
    m.enrolments
        .iter()
        .find(|e| !e.cancelled && e.end_date.is_none_or(|d| d >= today) && e.start_date <= today)
        .or_else(|| {
            m.enrolments
                .iter()
                .find(|e| !e.cancelled && e.end_date.is_none_or(|d| d >= today))
        })
}

/// Applies one read to the store, in one transaction. `full`: the snapshot is the whole
/// hub (entities not in it are removed); otherwise it holds the changes after the last
/// read. `changes_after` is the hub time the next read of changes asks from; it never
/// moves back: a read that started before one already applied (two reads at once, one
/// of them slower) leaves the later read's time in place, so the next read of changes
/// does not ask again for what was taken in, and the feed does not think the hub
/// changed since its last read when it has not.
pub async fn apply(
    vault: &Vault,
    snap: Snapshot,
    full: bool,
    unit_from: UnitCodeFrom,
    changes_after: DateTime<Utc>,
) -> DomainResult<ReadReport> {
    let today = crate::today(vault, fiktiv_policies::Country::Se);
    let mut report = ReadReport {
        persons: snap.persons.len(),
        marked: snap.marked.len(),
        ..ReadReport::default()
    };
    let mut tx = vault.db().begin_write().await?;
    // One read is applied at a time: the upsert locks the state row until commit (on
    // PostgreSQL; on SQLite the writer gate already serialises), so a second read
    // waits and then sees what the first wrote.
    sqlx::query(
        "INSERT INTO hub_state (id, last_try_at) VALUES (1, $1) \
         ON CONFLICT (id) DO UPDATE SET last_try_at = excluded.last_try_at",
    )
    .bind(fmt_time(vault.now()))
    .execute(&mut *tx)
    .await?;
    // A full read replaces what was kept; what is no longer there is removed from the
    // feed too (below, once the read's ids are known).
    let mut before: Vec<(String, String)> = Vec::new();
    if full {
        for r in sqlx::query("SELECT resource, id FROM hub_entities")
            .fetch_all(&mut *tx)
            .await?
        {
            before.push((r.try_get("resource")?, r.try_get("id")?));
        }
        sqlx::query("DELETE FROM hub_entities")
            .execute(&mut *tx)
            .await?;
    }
    let before_persons: HashSet<String> = before
        .iter()
        .filter(|(r, _)| r == "persons")
        .map(|(_, id)| id.clone())
        .collect();
    // Every person seen marked, now or before, by blind index of the hub id.
    let mut protected: HashSet<String> = HashSet::new();
    for r in sqlx::query("SELECT person_idx FROM hub_marked")
        .fetch_all(&mut *tx)
        .await?
    {
        protected.insert(r.try_get("person_idx")?);
    }
    let mut newly_marked = false;
    for m in &snap.marked {
        let idx = person_idx(vault, &m.id).to_hex();
        if protected.insert(idx.clone()) {
            newly_marked = true;
            sqlx::query(
                "INSERT INTO hub_marked (person_idx, seen_at) VALUES ($1, $2) \
                 ON CONFLICT (person_idx) DO NOTHING",
            )
            .bind(&idx)
            .bind(fmt_time(vault.now()))
            .execute(&mut *tx)
            .await?;
        }
    }
    // What this read keeps, for a full read's "no longer there".
    let mut kept: HashSet<(&str, String)> = HashSet::new();
    let scrub = Scrub {
        vault,
        protected: &protected,
    };
    for e in &snap.organisations {
        let modified = stamp(&e.value.meta.modified);
        kept.insert(("organisations", e.value.id.to_string()));
        upsert(
            &mut tx,
            "organisations",
            &e.value.id,
            &modified,
            e.raw.get(),
        )
        .await?;
    }
    for e in &snap.groups {
        let modified = stamp(&e.value.meta.modified);
        let raw = scrub.json(e.raw.get(), "groupMemberships")?;
        kept.insert(("groups", e.value.id.to_string()));
        upsert(&mut tx, "groups", &e.value.id, &modified, &raw).await?;
    }
    for e in &snap.duties {
        // A duty of a marked person (staff with protected personal data) is not kept:
        // it would place the person at a unit.
        if e.value
            .person
            .is_some_and(|p| protected.contains(&person_idx(vault, &p.id).to_hex()))
        {
            continue;
        }
        let modified = stamp(&e.value.meta.modified);
        kept.insert(("duties", e.value.id.to_string()));
        upsert(&mut tx, "duties", &e.value.id, &modified, e.raw.get()).await?;
    }
    // Activities name groups and duties, never a person: kept as the hub wrote them.
    for e in &snap.activities {
        let modified = stamp(&e.value.meta.modified);
        kept.insert(("activities", e.value.id.to_string()));
        upsert(&mut tx, "activities", &e.value.id, &modified, e.raw.get()).await?;
    }
    for (resource, ids) in [
        ("organisations", &snap.deleted.organisations),
        ("persons", &snap.deleted.persons),
        ("groups", &snap.deleted.groups),
        ("duties", &snap.deleted.duties),
        ("activities", &snap.deleted.activities),
    ] {
        for id in ids {
            report.removed += remove(&mut tx, resource, id).await? as usize;
            feed_deleted(vault, &mut tx, resource, id).await?;
        }
    }

    for e in &snap.persons {
        let idx = person_idx(vault, &e.value.id).to_hex();
        if protected.contains(&idx) {
            // The hub lifted the marking: shown to the school, never acted on silently.
            let mut first_seen = 0;
            for table in ["hub_links", "hub_intake"] {
                first_seen += sqlx::query(&format!(
                    "UPDATE {table} SET marking_lifted_at = $1 WHERE person_idx = $2 \
                     AND marking_lifted_at IS NULL"
                ))
                .bind(fmt_time(vault.now()))
                .bind(&idx)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            }
            if first_seen > 0 {
                report.lifted += 1;
                let case = case_of_link(&mut tx, &idx).await?;
                system_event(vault, &mut tx, "hub.marking-lifted", case, None).await?;
            }
            continue;
        }
        let modified = stamp(&e.value.meta.modified);
        let raw = scrub.json(e.raw.get(), "responsibles")?;
        kept.insert(("persons", e.value.id.to_string()));
        upsert(&mut tx, "persons", &e.value.id, &modified, &raw).await?;
    }
    if newly_marked && !full {
        // A person marked since the last read may be a member or a responsible in
        // what was kept before and did not change: scrubbed there too.
        for (resource, field) in [("groups", "groupMemberships"), ("persons", "responsibles")] {
            let rows = sqlx::query("SELECT id, raw FROM hub_entities WHERE resource = $1")
                .bind(resource)
                .fetch_all(&mut *tx)
                .await?;
            for r in rows {
                let raw: String = r.try_get("raw")?;
                let clean = scrub.json(&raw, field)?;
                if clean != raw {
                    let id: String = r.try_get("id")?;
                    sqlx::query("UPDATE hub_entities SET raw = $1 WHERE resource = $2 AND id = $3")
                        .bind(&clean)
                        .bind(resource)
                        .bind(&id)
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
    }

    // Where each marked person is a group member (from every stored group), and what
    // unit code each hub organisation has.
    let marked_ids: HashSet<String> = snap.marked.iter().map(|m| m.id.to_string()).collect();
    let mut groups_of: HashMap<String, Vec<(String, String, bool)>> = HashMap::new();
    for g in &snap.groups {
        for mem in &g.value.group_memberships {
            let id = mem.person.id.to_string();
            if marked_ids.contains(&id) {
                groups_of.entry(id).or_default().push((
                    g.value.id.to_string(),
                    g.value.display_name.clone(),
                    g.value.group_type == "Klass",
                ));
            }
        }
    }
    let mut unit_of: HashMap<String, String> = HashMap::new();
    for o in stored::<OrgRow>(&mut tx, "organisations").await? {
        let code = match unit_from {
            UnitCodeFrom::SchoolUnitCode => o.school_unit_code,
            UnitCodeFrom::OrganisationCode => o.organisation_code,
        };
        if let Some(c) = code.filter(|c| {
            let mut p = Vec::new();
            crate::check_unit_code("unit", c, &mut p);
            p.is_empty()
        }) {
            unit_of.insert(o.id, c);
        }
    }

    for m in &snap.marked {
        // Quarantine: a person the feed served unmarked is gone from it now.
        let was_kept = remove(&mut tx, "persons", &m.id).await? > 0
            || before_persons.contains(&m.id.to_string());
        if was_kept {
            report.quarantined += 1;
            feed_deleted(vault, &mut tx, "persons", &m.id).await?;
        }
        let idx = person_idx(vault, &m.id).to_hex();
        let enrolment = current_enrolment(m, today);
        let unit = enrolment.and_then(|e| unit_of.get(&e.enroled_at.id.to_string()).cloned());
        let mut groups = groups_of.remove(&m.id.to_string()).unwrap_or_default();
        groups.sort_by_key(|(_, name, class)| (!*class, name.clone()));
        let facts = HubFacts {
            unit: unit.clone(),
            school_year: enrolment.and_then(|e| e.school_year),
            enroled_at: enrolment.map(|e| e.enroled_at.id),
            school_type: enrolment.map(|e| e.school_type.clone()),
            start_date: enrolment.map(|e| e.start_date),
            groups: groups.into_iter().map(|(id, name, _)| (id, name)).collect(),
        };
        // A marking seen again clears an earlier lift.
        for table in ["hub_links", "hub_intake"] {
            sqlx::query(&format!(
                "UPDATE {table} SET marking_lifted_at = NULL, marking = $1 WHERE person_idx = $2"
            ))
            .bind(m.marking.code())
            .bind(&idx)
            .execute(&mut *tx)
            .await?;
        }
        if let Some(case) = case_of_link(&mut tx, &idx).await? {
            seal_facts(vault, &mut tx, &case, &facts).await?;
            continue;
        }
        let cases = matching_cases(vault, &mut tx, m, today).await?;
        let single = (cases.len() == 1)
            .then(|| cases.iter().next().and_then(|c| c.parse::<CaseId>().ok()))
            .flatten();
        if let Some(case) = single {
            let already = sqlx::query("SELECT 1 AS x FROM hub_links WHERE case_id = $1")
                .bind(case.to_string())
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            if !already {
                insert_link(vault, &mut tx, &case, &idx, &m.id, &facts, m.marking.code()).await?;
                report.linked += 1;
                continue;
            }
        }
        // No case (or not one Fiktiv is sure of): an intake item for the unit.
        let Some(unit) = unit else {
            // Not enrolled at a unit Fiktiv knows (a guardian, or a unit without a
            // code): counted, nothing kept.
            continue;
        };
        let existing = sqlx::query("SELECT intake_id FROM hub_intake WHERE person_idx = $1")
            .bind(&idx)
            .fetch_optional(&mut *tx)
            .await?;
        let (pnr_idx, name_birth_idx) = match_indexes(vault, m, today);
        let identity = IntakeIdentity {
            hub_id: m.id,
            facts: facts.clone(),
            given_name: m.given_name.expose().to_owned(),
            family_name: m.family_name.expose().to_owned(),
            birth_date: m.birth_date,
            civic_no: m.civic_no.as_ref().map(|c| c.expose().to_owned()),
            marking: m.marking.code().to_owned(),
            school_year: facts.school_year,
        };
        let bytes = Zeroizing::new(serde_json::to_vec(&identity).map_err(|_| {
            crate::DomainError::Internal("an intake identity could not be encoded".into())
        })?);
        drop(identity);
        match existing {
            Some(r) => {
                let id: String = r.try_get("intake_id")?;
                let key: CaseId = id.parse().map_err(|_| {
                    crate::DomainError::Internal("an intake id is not an id".into())
                })?;
                let sealed = vault.seal(&mut tx, &key, INTAKE_FIELD, &bytes).await?;
                sqlx::query(
                    "UPDATE hub_intake SET unit = $1, identity_sealed = $2, dk_version = $3, \
                     pnr_idx = $5, name_birth_idx = $6 WHERE intake_id = $4",
                )
                .bind(&unit)
                .bind(sealed.bytes)
                .bind(i64::from(sealed.dk_version))
                .bind(&id)
                .bind(&pnr_idx)
                .bind(&name_birth_idx)
                .execute(&mut *tx)
                .await?;
            }
            None => {
                let key = CaseId::new();
                vault.create_case_key(&mut tx, &key).await?;
                let sealed = vault.seal(&mut tx, &key, INTAKE_FIELD, &bytes).await?;
                sqlx::query(
                    "INSERT INTO hub_intake (intake_id, person_idx, unit, marking, identity_sealed, \
                     dk_version, created_at, pnr_idx, name_birth_idx) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(key.to_string())
                .bind(&idx)
                .bind(&unit)
                .bind(m.marking.code())
                .bind(sealed.bytes)
                .bind(i64::from(sealed.dk_version))
                .bind(fmt_time(vault.now()))
                .bind(&pnr_idx)
                .bind(&name_birth_idx)
                .execute(&mut *tx)
                .await?;
                report.intake_new += 1;
                system_event(vault, &mut tx, "hub.intake", None, None).await?;
            }
        }
    }

    report.linked += link_waiting(vault, &mut tx).await?;

    if full {
        // What a full read no longer has (and is not a newly marked person, handled
        // above) is gone from the feed.
        for (resource, id) in &before {
            let Ok(uuid) = id.parse::<Uuid>() else {
                continue;
            };
            if !marked_ids.contains(id) && !kept.contains(&(resource.as_str(), id.clone())) {
                report.removed += 1;
                feed_deleted(vault, &mut tx, resource, &uuid).await?;
            }
        }
    }

    let linked: i64 = sqlx::query("SELECT COUNT(*) AS n FROM hub_links")
        .fetch_one(&mut *tx)
        .await?
        .try_get("n")?;
    let intake: i64 = sqlx::query("SELECT COUNT(*) AS n FROM hub_intake")
        .fetch_one(&mut *tx)
        .await?
        .try_get("n")?;
    let now = fmt_time(vault.now());
    sqlx::query(
        "INSERT INTO hub_state (id, last_good_at, changes_after, last_try_at, last_error, persons, \
         marked, linked, intake) VALUES (1, $1, $2, $1, NULL, $3, $4, $5, $6) \
         ON CONFLICT (id) DO UPDATE SET last_good_at = excluded.last_good_at, \
         changes_after = CASE WHEN hub_state.changes_after IS NULL \
           OR hub_state.changes_after < excluded.changes_after \
           THEN excluded.changes_after ELSE hub_state.changes_after END, \
         last_try_at = excluded.last_try_at, \
         last_error = NULL, persons = excluded.persons, marked = excluded.marked, \
         linked = excluded.linked, intake = excluded.intake",
    )
    .bind(&now)
    .bind(fmt_time(changes_after))
    .bind(report.persons as i64)
    .bind(report.marked as i64)
    .bind(linked)
    .bind(intake)
    .execute(&mut *tx)
    .await?;
    clear_progress(&mut tx).await?;
    let purpose = format!(
        "{} read: {} persons, {} marked, {} linked, {} new intake items, {} quarantined, {} lifted",
        if full { "full" } else { "changes" },
        report.persons,
        report.marked,
        report.linked,
        report.intake_new,
        report.quarantined,
        report.lifted
    );
    system_event(vault, &mut tx, "hub.read", None, Some(&purpose)).await?;
    tx.commit().await?;
    tracing::info!(
        persons = report.persons,
        marked = report.marked,
        linked = report.linked,
        intake_new = report.intake_new,
        quarantined = report.quarantined,
        lifted = report.lifted,
        "hub read applied"
    );
    Ok(report)
}

/// The blind indexes an intake item is found by when its pupil's case is opened:
/// of the number, and of name with birth date.
fn match_indexes(
    vault: &Vault,
    m: &MarkedPerson,
    today: NaiveDate,
) -> (Option<String>, Option<String>) {
    let blind = vault.keys().blind();
    let pnr = m
        .civic_no
        .as_ref()
        .and_then(|c| PersonalNumber::parse(c.expose(), today).ok())
        .map(|n| {
            blind
                .index(IndexKind::PersonalNumber, n.canonical())
                .to_hex()
        });
    let name_birth = m.birth_date.map(|b| {
        let key = name_birth_of(
            &full_name_key(m.given_name.expose(), m.family_name.expose()),
            b,
        );
        blind.index(IndexKind::NameBirth, &key).to_hex()
    });
    (pnr, name_birth)
}

/// A new link of case `case` to hub person `hub_id`: the id and the facts sealed with
/// the case's key; audited.
async fn insert_link(
    vault: &Vault,
    conn: &mut AnyConnection,
    case: &CaseId,
    idx: &str,
    hub_id: &Uuid,
    facts: &HubFacts,
    marking: &str,
) -> DomainResult<()> {
    let person = vault
        .seal(conn, case, LINK_FIELD, hub_id.to_string().as_bytes())
        .await?;
    let sealed_facts = vault
        .seal(conn, case, FACTS_FIELD, &facts_bytes(facts)?)
        .await?;
    sqlx::query(
        "INSERT INTO hub_links (case_id, person_idx, person_sealed, person_dk_version, \
         facts_sealed, facts_dk_version, marking, linked_at, fict_person_id, groups_json, \
         school_year) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(case.to_string())
    .bind(idx)
    .bind(person.bytes)
    .bind(i64::from(person.dk_version))
    .bind(sealed_facts.bytes)
    .bind(i64::from(sealed_facts.dk_version))
    .bind(marking)
    .bind(fmt_time(vault.now()))
    .bind(Uuid::new_v4().to_string())
    .bind(group_names(facts))
    .bind(facts.school_year.map(i64::from))
    .execute(&mut *conn)
    .await?;
    // The targets put the fictitious pupil in the hub's groups from now on.
    crate::desired::touch_case(conn, case).await?;
    system_event(vault, conn, "hub.link", Some(*case), None).await?;
    follow_unit(vault, conn, case, facts).await?;
    close_intake(vault, conn, idx).await
}

/// A linked case follows the hub's enrolment: when the hub enrols the pupil at a unit
/// Fiktiv knows by code and the case is at another, the case moves to the hub's unit
/// (its school staff take it over; the other unit's lose it), audited as `hub.unit`.
/// The hub is where enrolment is decided; the school no longer types it. An ended case
/// stays where it ended.
async fn follow_unit(
    vault: &Vault,
    conn: &mut AnyConnection,
    case: &CaseId,
    facts: &HubFacts,
) -> DomainResult<()> {
    let Some(unit) = &facts.unit else {
        return Ok(());
    };
    let elsewhere = sqlx::query(
        "SELECT 1 AS x FROM cases WHERE case_id = $1 AND unit <> $2 AND state <> 'ended'",
    )
    .bind(case.to_string())
    .bind(unit)
    .fetch_optional(&mut *conn)
    .await?
    .is_some();
    if elsewhere {
        // As an accepted move: the old unit's label, drafts and open reveal requests go.
        let groups: Vec<String> = facts.groups.iter().map(|(_, n)| n.clone()).collect();
        crate::case_requests::move_case(conn, case, unit, &groups, &fmt_time(vault.now())).await?;
        // The targets put the fictitious pupil at the new unit.
        crate::desired::touch_case(conn, case).await?;
        system_event(vault, conn, "hub.unit", Some(*case), None).await?;
    }
    Ok(())
}

/// Intake items whose pupil has an open case by now (opened after the item was made):
/// linked, and the item closed. The item's identity is opened by the system to move
/// the hub id and facts under the case's key.
async fn link_waiting(vault: &Vault, conn: &mut AnyConnection) -> DomainResult<usize> {
    let rows = sqlx::query(
        "SELECT i.intake_id, i.person_idx, i.identity_sealed, i.dk_version, i.marking, c.case_id \
         FROM hub_intake i JOIN cases c ON c.state <> 'ended' AND (c.pnr_index = i.pnr_idx \
         OR EXISTS (SELECT 1 FROM blind_indexes b WHERE b.case_id = c.case_id \
         AND b.subject = 'pupil' AND b.kind = $1 AND b.idx = i.name_birth_idx)) \
         WHERE NOT EXISTS (SELECT 1 FROM hub_links l WHERE l.case_id = c.case_id) \
         ORDER BY i.intake_id",
    )
    .bind(IndexKind::NameBirth.as_str())
    .fetch_all(&mut *conn)
    .await?;
    // One case per item, and only items that match exactly one case.
    let mut by_item: HashMap<String, Vec<String>> = HashMap::new();
    let mut rest: HashMap<String, (String, Vec<u8>, i64, String)> = HashMap::new();
    for r in rows {
        let id: String = r.try_get("intake_id")?;
        by_item
            .entry(id.clone())
            .or_default()
            .push(r.try_get("case_id")?);
        rest.insert(
            id,
            (
                r.try_get("person_idx")?,
                r.try_get("identity_sealed")?,
                r.try_get("dk_version")?,
                r.try_get("marking")?,
            ),
        );
    }
    let mut linked = 0;
    for (item, mut cases) in by_item {
        cases.sort();
        cases.dedup();
        let ([case], Some((idx, bytes, dkv, marking))) = (cases.as_slice(), rest.remove(&item))
        else {
            continue;
        };
        let (Ok(case), Ok(key)) = (case.parse::<CaseId>(), item.parse::<CaseId>()) else {
            continue;
        };
        let sealed = fiktiv_vault::Sealed {
            bytes,
            dk_version: dkv as u32,
        };
        let opened = vault.open(conn, &key, INTAKE_FIELD, &sealed).await?;
        let identity: IntakeIdentity = serde_json::from_slice(&opened)
            .map_err(|_| crate::DomainError::Internal("an intake item could not be read".into()))?;
        drop(opened);
        insert_link(
            vault,
            conn,
            &case,
            &idx,
            &identity.hub_id,
            &identity.facts,
            &marking,
        )
        .await?;
        linked += 1;
    }
    Ok(linked)
}

/// The hub group names of a linked pupil, as the order's groups are kept (JSON list).
fn group_names(facts: &HubFacts) -> String {
    let names: Vec<&str> = facts.groups.iter().map(|(_, n)| n.as_str()).collect();
    serde_json::to_string(&names).unwrap_or_else(|_| "[]".to_owned())
}

fn facts_bytes(facts: &HubFacts) -> DomainResult<Vec<u8>> {
    serde_json::to_vec(facts)
        .map_err(|_| crate::DomainError::Internal("the hub facts could not be encoded".into()))
}

async fn seal_facts(
    vault: &Vault,
    conn: &mut AnyConnection,
    case: &CaseId,
    facts: &HubFacts,
) -> DomainResult<()> {
    // Sealed anew only when the hub says something new: a read every 15 minutes would
    // otherwise spend the case key's encryptions on the same facts.
    if open_facts(vault, conn, case).await?.as_ref() == Some(facts) {
        return Ok(());
    }
    let sealed = vault
        .seal(conn, case, FACTS_FIELD, &facts_bytes(facts)?)
        .await?;
    let groups = group_names(facts);
    let year = facts.school_year.map(i64::from);
    let before = sqlx::query("SELECT groups_json, school_year FROM hub_links WHERE case_id = $1")
        .bind(case.to_string())
        .fetch_optional(&mut *conn)
        .await?
        .map(|r| {
            Ok::<_, sqlx::Error>((
                r.try_get::<String, _>("groups_json")?,
                r.try_get::<Option<i64>, _>("school_year")?,
            ))
        })
        .transpose()?;
    sqlx::query(
        "UPDATE hub_links SET facts_sealed = $1, facts_dk_version = $2, groups_json = $3, \
         school_year = $5 WHERE case_id = $4",
    )
    .bind(sealed.bytes)
    .bind(i64::from(sealed.dk_version))
    .bind(&groups)
    .bind(case.to_string())
    .bind(year)
    .execute(&mut *conn)
    .await?;
    if before != Some((groups, year)) {
        // The pupil changed groups or school year in the hub: the targets follow.
        crate::desired::touch_case(conn, case).await?;
    }
    follow_unit(vault, conn, case, facts).await
}

async fn case_of_link(conn: &mut AnyConnection, idx: &str) -> DomainResult<Option<CaseId>> {
    let row = sqlx::query("SELECT case_id FROM hub_links WHERE person_idx = $1")
        .bind(idx)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(match row {
        Some(r) => r.try_get::<String, _>("case_id")?.parse().ok(),
        None => None,
    })
}

/// An intake item whose pupil now has a case: closed, its key and sealed identity shredded.
async fn close_intake(vault: &Vault, conn: &mut AnyConnection, idx: &str) -> DomainResult<()> {
    let row = sqlx::query("SELECT intake_id FROM hub_intake WHERE person_idx = $1")
        .bind(idx)
        .fetch_optional(&mut *conn)
        .await?;
    if let Some(r) = row {
        let id: String = r.try_get("intake_id")?;
        sqlx::query("DELETE FROM hub_intake WHERE intake_id = $1")
            .bind(&id)
            .execute(&mut *conn)
            .await?;
        if let Ok(key) = id.parse::<CaseId>() {
            vault.shred(conn, &key).await?;
        }
        system_event(vault, conn, "hub.intake-closed", None, None).await?;
    }
    Ok(())
}

/// What the hub says of a linked case's pupil (`None`: not linked). Not a real
/// identity: the unit, school year and groups.
pub async fn facts_of(vault: &Vault, case: &CaseId) -> DomainResult<Option<HubFacts>> {
    let mut conn = vault.db().pool().acquire().await?;
    open_facts(vault, &mut conn, case).await
}

/// The sealed facts of a linked case, opened, on `conn` (`None`: not linked).
async fn open_facts(
    vault: &Vault,
    conn: &mut AnyConnection,
    case: &CaseId,
) -> DomainResult<Option<HubFacts>> {
    let row =
        sqlx::query("SELECT facts_sealed, facts_dk_version FROM hub_links WHERE case_id = $1")
            .bind(case.to_string())
            .fetch_optional(&mut *conn)
            .await?;
    let Some(r) = row else { return Ok(None) };
    let sealed = fiktiv_vault::Sealed {
        bytes: r.try_get("facts_sealed")?,
        dk_version: r.try_get::<i64, _>("facts_dk_version")? as u32,
    };
    let bytes = vault.open(conn, case, FACTS_FIELD, &sealed).await?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|_| crate::DomainError::Internal("the hub facts could not be read".into()))
}

/// Intake items per unit (counts only: what the central administrator sees).
pub async fn intake_counts(vault: &Vault) -> DomainResult<Vec<(String, i64)>> {
    let rows =
        sqlx::query("SELECT unit, COUNT(*) AS n FROM hub_intake GROUP BY unit ORDER BY unit")
            .fetch_all(vault.db().pool())
            .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push((r.try_get("unit")?, r.try_get("n")?));
    }
    Ok(out)
}

const SECRET_PURPOSE: &str = "hub-credential";
const SECRET_OWNER: &str = "ss12000";

/// Seals and keeps the hub secret (bearer token or OAuth client secret); audited.
pub async fn set_secret(vault: &Vault, secret: &str, actor: &str) -> DomainResult<()> {
    if secret.is_empty() || secret.len() > 4096 || secret.chars().any(char::is_control) {
        return Err(crate::DomainError::invalid(
            "secret",
            "hub.secret-invalid",
            "The hub secret must be 1 to 4096 characters without control characters.",
        ));
    }
    let sealed = vault
        .keys()
        .target_secrets()
        .map_err(|e| crate::DomainError::Internal(e.to_string()))?
        .seal(SECRET_PURPOSE, SECRET_OWNER, secret.as_bytes())
        .map_err(|_| crate::DomainError::Internal("sealing the hub secret failed".into()))?;
    let mut tx = vault.db().begin_write().await?;
    sqlx::query(
        "INSERT INTO hub_credentials (id, secret_sealed, set_by, set_at) VALUES (1, $1, $2, $3) \
         ON CONFLICT (id) DO UPDATE SET secret_sealed = excluded.secret_sealed, \
         set_by = excluded.set_by, set_at = excluded.set_at",
    )
    .bind(sealed)
    .bind(actor)
    .bind(fmt_time(vault.now()))
    .execute(&mut *tx)
    .await?;
    vault
        .audit(
            &mut tx,
            &NewEvent {
                actor,
                action: "hub.secret",
                case_id: None,
                purpose: None,
                outcome: Outcome::Ok,
            },
        )
        .await?;
    tx.commit().await?;
    Ok(())
}

/// The sealed hub secret, opened (`None`: none was set).
pub async fn secret(vault: &Vault) -> DomainResult<Option<Zeroizing<String>>> {
    let row = sqlx::query("SELECT secret_sealed FROM hub_credentials WHERE id = 1")
        .fetch_optional(vault.db().pool())
        .await?;
    let Some(r) = row else { return Ok(None) };
    let sealed: Vec<u8> = r.try_get("secret_sealed")?;
    let bytes = vault
        .keys()
        .target_secrets()
        .map_err(|e| crate::DomainError::Internal(e.to_string()))?
        .open(SECRET_PURPOSE, SECRET_OWNER, &sealed)
        .map_err(|_| crate::DomainError::Internal("the sealed hub secret does not open".into()))?;
    let s = std::str::from_utf8(&bytes)
        .map_err(|_| crate::DomainError::Internal("the sealed hub secret is not text".into()))?;
    Ok(Some(Zeroizing::new(s.to_owned())))
}

/// A read that failed: when, and its code (never a value from the hub). Audited.
pub async fn record_failure(vault: &Vault, code: &str) -> DomainResult<()> {
    let mut tx = vault.db().begin_write().await?;
    sqlx::query(
        "INSERT INTO hub_state (id, last_try_at, last_error) VALUES (1, $1, $2) \
         ON CONFLICT (id) DO UPDATE SET last_try_at = excluded.last_try_at, \
         last_error = excluded.last_error",
    )
    .bind(fmt_time(vault.now()))
    .bind(code)
    .execute(&mut *tx)
    .await?;
    clear_progress(&mut tx).await?;
    vault
        .audit(
            &mut tx,
            &NewEvent {
                actor: "system",
                action: "hub.read",
                case_id: None,
                purpose: Some(code),
                outcome: Outcome::Failed,
            },
        )
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Where the reads stand.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct HubStatus {
    /// When the last good read finished (RFC 3339), if any.
    pub last_good_at: Option<String>,
    /// When the last read was tried, and how it failed if it did (a code).
    pub last_try_at: Option<String>,
    pub last_error: Option<String>,
    /// The hub time the next read of changes asks from.
    pub changes_after: Option<String>,
    pub persons: i64,
    pub marked: i64,
    pub linked: i64,
    pub intake: i64,
    /// The read running now, if one is (on any instance).
    pub running: Option<ReadProgress>,
}

/// How far the read running now has come.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ReadProgress {
    /// When the read started (RFC 3339).
    pub since: String,
    /// A full read (else a read of changes).
    pub full: bool,
    /// What it does now: the resource it reads (`organisations`, `persons`, `groups`,
    /// `duties`, `activities`, `deletedEntities`) or `applying` (storing what it read).
    pub stage: String,
    /// Pages and items read of that resource so far.
    pub pages: i64,
    pub items: i64,
    /// When the reading instance last wrote this (RFC 3339).
    pub seen_at: String,
}

/// A running read's progress older than this is of a read that was cut off (a restart):
/// not shown as running. The reading instance writes it about once a second.
pub const PROGRESS_STALE: chrono::TimeDelta = chrono::TimeDelta::minutes(2);

/// Records how far the running read has come (`stage`: the resource, or `applying`).
pub async fn record_progress(
    vault: &Vault,
    since: DateTime<Utc>,
    full: bool,
    stage: &str,
    pages: usize,
    items: usize,
) -> DomainResult<()> {
    let mut tx = vault.db().begin_write().await?;
    sqlx::query(
        "INSERT INTO hub_state (id, running_since, running_full, running_resource, \
         running_pages, running_items, running_seen_at) VALUES (1, $1, $2, $3, $4, $5, $6) \
         ON CONFLICT (id) DO UPDATE SET running_since = excluded.running_since, \
         running_full = excluded.running_full, running_resource = excluded.running_resource, \
         running_pages = excluded.running_pages, running_items = excluded.running_items, \
         running_seen_at = excluded.running_seen_at",
    )
    .bind(fmt_time(since))
    .bind(i64::from(full))
    .bind(stage)
    .bind(i64::try_from(pages).unwrap_or(i64::MAX))
    .bind(i64::try_from(items).unwrap_or(i64::MAX))
    .bind(fmt_time(vault.now()))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// No read runs any more (after a failed one; a good one clears it as it is applied).
async fn clear_progress(conn: &mut AnyConnection) -> DomainResult<()> {
    sqlx::query(
        "UPDATE hub_state SET running_since = NULL, running_full = NULL, running_resource = NULL, \
         running_pages = NULL, running_items = NULL, running_seen_at = NULL WHERE id = 1",
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn status(vault: &Vault) -> DomainResult<HubStatus> {
    let row = sqlx::query(
        "SELECT last_good_at, last_try_at, last_error, changes_after, persons, marked, linked, \
         intake, running_since, running_full, running_resource, running_pages, running_items, \
         running_seen_at FROM hub_state WHERE id = 1",
    )
    .fetch_optional(vault.db().pool())
    .await?;
    let Some(r) = row else {
        return Ok(HubStatus::default());
    };
    let seen: Option<String> = r.try_get("running_seen_at")?;
    let fresh = seen
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .is_some_and(|t| vault.now() - t.with_timezone(&Utc) <= PROGRESS_STALE);
    let running = match (
        r.try_get::<Option<String>, _>("running_since")?,
        seen,
        fresh,
    ) {
        (Some(since), Some(seen_at), true) => Some(ReadProgress {
            since,
            full: r.try_get::<Option<i64>, _>("running_full")? == Some(1),
            stage: r
                .try_get::<Option<String>, _>("running_resource")?
                .unwrap_or_default(),
            pages: r.try_get::<Option<i64>, _>("running_pages")?.unwrap_or(0),
            items: r.try_get::<Option<i64>, _>("running_items")?.unwrap_or(0),
            seen_at,
        }),
        _ => None,
    };
    Ok(HubStatus {
        running,
        last_good_at: r.try_get("last_good_at")?,
        last_try_at: r.try_get("last_try_at")?,
        last_error: r.try_get("last_error")?,
        changes_after: r.try_get("changes_after")?,
        persons: r.try_get("persons")?,
        marked: r.try_get("marked")?,
        linked: r.try_get("linked")?,
        intake: r.try_get("intake")?,
    })
}

/// An intake item as its unit's school sees it in a list: no identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct IntakeItem {
    pub intake_id: String,
    pub unit: String,
    /// `Sekretessmarkering` or `Skyddad folkbokföring`.
    pub marking: String,
    /// When the item was made (RFC 3339).
    pub created_at: String,
    /// The hub no longer marks the pupil (shown, not acted on).
    pub marking_lifted: bool,
}

/// An intake item's pupil, as the school opens it to open the case.
#[derive(Serialize, utoipa::ToSchema)]
pub struct IntakePupil {
    pub given_name: String,
    pub family_name: String,
    pub birth_date: Option<NaiveDate>,
    /// The number as the hub has it (`civicNo`), if it has one.
    pub personal_number: Option<String>,
    pub marking: String,
    pub school_year: Option<u8>,
    /// The hub's groups of the pupil (names), classes first.
    pub groups: Vec<String>,
}

impl std::fmt::Debug for IntakePupil {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IntakePupil([redacted])")
    }
}

impl Drop for IntakePupil {
    fn drop(&mut self) {
        use zeroize::Zeroize as _;
        self.given_name.zeroize();
        self.family_name.zeroize();
        if let Some(n) = self.personal_number.as_mut() {
            n.zeroize();
        }
    }
}

/// The intake items of the permit's unit (`intake.list`), without identities; audited.
pub async fn intake_list(
    vault: &Vault,
    permit: &fiktiv_policies::Permit,
    unit: &str,
) -> DomainResult<Vec<IntakeItem>> {
    permit.require(fiktiv_policies::Action::IntakeList)?;
    let rows = sqlx::query(
        "SELECT intake_id, unit, marking, created_at, marking_lifted_at FROM hub_intake \
         WHERE unit = $1 ORDER BY created_at, intake_id",
    )
    .bind(unit)
    .fetch_all(vault.db().pool())
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(IntakeItem {
            intake_id: r.try_get("intake_id")?,
            unit: r.try_get("unit")?,
            marking: r.try_get("marking")?,
            created_at: r.try_get("created_at")?,
            marking_lifted: r
                .try_get::<Option<String>, _>("marking_lifted_at")?
                .is_some(),
        });
    }
    let mut tx = vault.db().begin_write().await?;
    crate::audit_ok(vault, &mut tx, permit, None, None).await?;
    tx.commit().await?;
    Ok(out)
}

/// Opens an intake item's pupil (`intake.read-identity`) of the permit's unit: the read
/// is audited (committed) before the item is opened; an item of another unit, or none,
/// is not found.
pub async fn intake_identity(
    vault: &Vault,
    permit: &fiktiv_policies::Permit,
    unit: &str,
    intake_id: &str,
) -> DomainResult<IntakePupil> {
    permit.require(fiktiv_policies::Action::IntakeReadIdentity)?;
    let key: CaseId = intake_id
        .parse()
        .map_err(|_| crate::DomainError::NotFound)?;
    let row = sqlx::query(
        "SELECT identity_sealed, dk_version FROM hub_intake WHERE intake_id = $1 AND unit = $2",
    )
    .bind(key.to_string())
    .bind(unit)
    .fetch_optional(vault.db().pool())
    .await?
    .ok_or(crate::DomainError::NotFound)?;
    let sealed = fiktiv_vault::Sealed {
        bytes: row.try_get("identity_sealed")?,
        dk_version: row.try_get::<i64, _>("dk_version")? as u32,
    };
    let mut tx = vault.db().begin_write().await?;
    crate::audit_ok(vault, &mut tx, permit, None, Some("intake")).await?;
    tx.commit().await?;
    let mut conn = vault.db().pool().acquire().await?;
    let bytes = vault.open(&mut conn, &key, INTAKE_FIELD, &sealed).await?;
    let i: IntakeIdentity = serde_json::from_slice(&bytes)
        .map_err(|_| crate::DomainError::Internal("an intake item could not be read".into()))?;
    drop(bytes);
    Ok(IntakePupil {
        given_name: i.given_name.clone(),
        family_name: i.family_name.clone(),
        birth_date: i.birth_date,
        personal_number: i.civic_no.clone(),
        marking: i.marking.clone(),
        school_year: i.school_year,
        groups: i
            .facts
            .groups
            .iter()
            .map(|(_, name)| name.clone())
            .collect(),
    })
}

/// Intake items per unit, counts only (`intake.counts`): what the central
/// administrator sees. Audited.
pub async fn intake_counts_permitted(
    vault: &Vault,
    permit: &fiktiv_policies::Permit,
) -> DomainResult<Vec<UnitCount>> {
    permit.require(fiktiv_policies::Action::IntakeCounts)?;
    let counts = intake_counts(vault).await?;
    let mut tx = vault.db().begin_write().await?;
    crate::audit_ok(vault, &mut tx, permit, None, None).await?;
    tx.commit().await?;
    Ok(counts
        .into_iter()
        .map(|(unit, count)| UnitCount { unit, count })
        .collect())
}

/// Intake items in one unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct UnitCount {
    pub unit: String,
    pub count: i64,
}

/// How the reads stand (`hub-status.read`).
pub async fn status_permitted(
    vault: &Vault,
    permit: &fiktiv_policies::Permit,
) -> DomainResult<HubStatus> {
    permit.require(fiktiv_policies::Action::HubStatusRead)?;
    status(vault).await
}

/// Opens the case of an intake item's pupil in its unit, from what the hub gave (the
/// school types nothing): the item's identity is read (audited, `intake.read-identity`),
/// the case opened as `case.open` does it (same checks, same refusals), and linked to
/// the hub person at once, which closes the item. A pupil the hub has no personal
/// number for is refused (`intake-no-number`): the school opens that case by hand.
pub async fn open_case_from_intake(
    vault: &Vault,
    open_permit: &fiktiv_policies::Permit,
    read_permit: &fiktiv_policies::Permit,
    unit: &str,
    intake_id: &str,
) -> DomainResult<crate::cases::CaseOpened> {
    open_permit.require(fiktiv_policies::Action::CaseOpen)?;
    read_permit.require(fiktiv_policies::Action::IntakeReadIdentity)?;
    let key: CaseId = intake_id
        .parse()
        .map_err(|_| crate::DomainError::NotFound)?;
    let row = sqlx::query(
        "SELECT identity_sealed, dk_version, person_idx, marking FROM hub_intake \
         WHERE intake_id = $1 AND unit = $2",
    )
    .bind(key.to_string())
    .bind(unit)
    .fetch_optional(vault.db().pool())
    .await?
    .ok_or(crate::DomainError::NotFound)?;
    let sealed = fiktiv_vault::Sealed {
        bytes: row.try_get("identity_sealed")?,
        dk_version: row.try_get::<i64, _>("dk_version")? as u32,
    };
    let idx: String = row.try_get("person_idx")?;
    let marking: String = row.try_get("marking")?;
    let mut tx = vault.db().begin_write().await?;
    crate::audit_ok(vault, &mut tx, read_permit, None, Some("intake")).await?;
    tx.commit().await?;
    let mut conn = vault.db().pool().acquire().await?;
    let bytes = vault.open(&mut conn, &key, INTAKE_FIELD, &sealed).await?;
    drop(conn);
    let i: IntakeIdentity = serde_json::from_slice(&bytes)
        .map_err(|_| crate::DomainError::Internal("an intake item could not be read".into()))?;
    drop(bytes);
    let today = crate::today(vault, fiktiv_policies::Country::Se);
    let Some(number) = i
        .civic_no
        .as_deref()
        .and_then(|n| PersonalNumber::parse(n, today).ok())
    else {
        return Err(crate::DomainError::Conflict {
            code: "intake-no-number",
            message: "The school administration system has no valid personal number for this pupil; open the case by hand.",
        });
    };
    let birth = i.birth_date.unwrap_or(number.birth_date());
    let opened = crate::cases::open(
        vault,
        open_permit,
        unit,
        crate::cases::OpenCase {
            country: crate::cases::CountryCode::Se,
            personal_number: Zeroizing::new(number.canonical().to_owned()),
            first_name: Zeroizing::new(i.given_name.clone()),
            last_name: Zeroizing::new(i.family_name.clone()),
            birth_date: Zeroizing::new(birth.format("%Y-%m-%d").to_string()),
        },
    )
    .await?;
    let case: CaseId = opened
        .case_id
        .parse()
        .map_err(|_| crate::DomainError::Internal("a new case id is not an id".into()))?;
    let mut tx = vault.db().begin_write().await?;
    let linked = case_of_link(&mut tx, &idx).await?.is_some();
    if !linked {
        insert_link(vault, &mut tx, &case, &idx, &i.hub_id, &i.facts, &marking).await?;
    }
    tx.commit().await?;
    Ok(opened)
}

/// The ids of a unit's intake items (`intake.list`), for the start page's and the
/// notifications' counts: not audited (no identity, no list shown).
pub async fn intake_keys(
    vault: &Vault,
    permit: &fiktiv_policies::Permit,
    unit: &str,
) -> DomainResult<Vec<String>> {
    permit.require(fiktiv_policies::Action::IntakeList)?;
    let rows = sqlx::query("SELECT intake_id FROM hub_intake WHERE unit = $1 ORDER BY intake_id")
        .bind(unit)
        .fetch_all(vault.db().pool())
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(r.try_get("intake_id")?);
    }
    Ok(out)
}

/// Audits a request for a full read now (`hub.read-request`); the caller makes it due.
pub async fn read_requested(vault: &Vault, permit: &fiktiv_policies::Permit) -> DomainResult<()> {
    permit.require(fiktiv_policies::Action::HubReadRequest)?;
    let mut tx = vault.db().begin_write().await?;
    crate::audit_ok(vault, &mut tx, permit, None, None).await?;
    tx.commit().await?;
    Ok(())
}
