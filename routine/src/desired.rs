//! The desired state, derived from the routine's tables.
//!
//! A registered case has fictitious persons: the pupil and every linked guardian with a
//! fictitious number. Each gets an opaque [`PersonId`] (random, recorded once in
//! `prov_persons`) and a desired state:
//!
//! - `present` while the case is registered;
//! - `disabled` from the day the case ends (the first stage of removal);
//! - `absent` once it has been disabled for the grace period (`[provisioning]
//!   grace_days`): the accounts are deleted.
//!
//! The persons' names, birth dates, numbers, unit, groups and platforms are never copied
//! here: [`load_persons`] builds the [`FictitiousPerson`] records from the fictitious
//! columns of `cases`, `guardians` and `orders` when they are needed. Which targets a
//! person goes to is decided by the targets' `platforms` (see
//! `TargetEntry::receives` in the provisioning runtime).
//!
//! [`sync_case`] runs inside the routine's own transaction (a one-line hook in
//! registration and in the end of a case), and the worker runs [`sync_all`] before each
//! cycle, so the state is right even for cases registered before provisioning existed.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use fiktiv_provisioning::{
    FictitiousNumber, FictitiousPerson, Group, PersonId, PersonKind, SchoolUnit,
};
use fiktiv_vault::audit::{fmt_time, NewEvent, Outcome};
use fiktiv_vault::{CaseId, Vault};
use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, Row};

use crate::{DomainError, DomainResult};

pub const PUPIL: &str = "pupil";

/// The desired state of one person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Desired {
    Present,
    Disabled,
    Absent,
}

impl Desired {
    pub fn as_str(self) -> &'static str {
        match self {
            Desired::Present => "present",
            Desired::Disabled => "disabled",
            Desired::Absent => "absent",
        }
    }

    fn parse(s: &str) -> DomainResult<Self> {
        match s {
            "present" => Ok(Desired::Present),
            "disabled" => Ok(Desired::Disabled),
            "absent" => Ok(Desired::Absent),
            _ => Err(DomainError::Internal(
                "stored desired state is malformed".into(),
            )),
        }
    }
}

fn guardian_subject(n: i64) -> String {
    format!("guardian-{n}")
}

/// Records the case's fictitious persons and their desired state in the caller's
/// transaction. Returns whether anything changed. Idempotent.
pub async fn sync_case(
    vault: &Vault,
    conn: &mut AnyConnection,
    case: &CaseId,
) -> DomainResult<bool> {
    let Some(row) =
        sqlx::query("SELECT state, fict_number, plan_required_since FROM cases WHERE case_id = $1")
            .bind(case.to_string())
            .fetch_optional(&mut *conn)
            .await?
    else {
        return Ok(false);
    };
    let mut state: String = row.try_get("state")?;
    if row
        .try_get::<Option<String>, _>("plan_required_since")?
        .is_some()
    {
        // A reopened case waits for its new plan version: nothing is provisioned, and
        // nothing already disabled is re-enabled (or deleted) meanwhile.
        state = "waiting-for-plan".into();
    }
    let pupil_number: Option<String> = row.try_get("fict_number")?;
    let existing: BTreeMap<String, (String, Desired)> =
        sqlx::query("SELECT person_id, subject, desired FROM prov_persons WHERE case_id = $1")
            .bind(case.to_string())
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|r| {
                Ok((
                    r.try_get::<String, _>("subject")?,
                    (
                        r.try_get::<String, _>("person_id")?,
                        Desired::parse(&r.try_get::<String, _>("desired")?)?,
                    ),
                ))
            })
            .collect::<DomainResult<_>>()?;
    let now = fmt_time(vault.now());
    let mut changed = false;
    match state.as_str() {
        "registered" => {
            let mut subjects = Vec::new();
            if pupil_number.is_some() {
                subjects.push(PUPIL.to_owned());
            }
            for r in sqlx::query(
                "SELECT guardian_no FROM guardians WHERE case_id = $1 AND linked = 1 \
                 AND fict_number IS NOT NULL ORDER BY guardian_no",
            )
            .bind(case.to_string())
            .fetch_all(&mut *conn)
            .await?
            {
                subjects.push(guardian_subject(r.try_get("guardian_no")?));
            }
            for s in subjects {
                match existing.get(&s) {
                    None => {
                        sqlx::query(
                            "INSERT INTO prov_persons (person_id, case_id, subject, desired, \
                             desired_since, revision, created_at) VALUES ($1, $2, $3, 'present', $4, 1, $4)",
                        )
                        .bind(PersonId::new().to_string())
                        .bind(case.to_string())
                        .bind(&s)
                        .bind(&now)
                        .execute(&mut *conn)
                        .await?;
                        changed = true;
                    }
                    Some((id, d)) if *d != Desired::Present => {
                        set_desired(conn, id, Desired::Present, &now).await?;
                        changed = true;
                    }
                    Some(_) => {}
                }
            }
        }
        "ended" => {
            for (id, d) in existing.values() {
                if *d == Desired::Present {
                    set_desired(conn, id, Desired::Disabled, &now).await?;
                    changed = true;
                }
            }
        }
        _ => {}
    }
    Ok(changed)
}

/// The case's persons who are provisioned (`present`) get a new revision, so that the
/// worker writes them to every target again, in place: after the case moved to another
/// unit, or its order's groups changed. In the caller's transaction.
pub async fn touch_case(conn: &mut AnyConnection, case: &CaseId) -> DomainResult<u64> {
    Ok(sqlx::query(
        "UPDATE prov_persons SET revision = revision + 1 WHERE case_id = $1 AND desired = 'present'",
    )
    .bind(case.to_string())
    .execute(&mut *conn)
    .await?
    .rows_affected())
}

async fn set_desired(
    conn: &mut AnyConnection,
    person: &str,
    d: Desired,
    now: &str,
) -> DomainResult<()> {
    sqlx::query(
        "UPDATE prov_persons SET desired = $1, desired_since = $2, revision = revision + 1 \
         WHERE person_id = $3",
    )
    .bind(d.as_str())
    .bind(now)
    .bind(person)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

fn parse_case(s: &str) -> DomainResult<CaseId> {
    s.parse()
        .map_err(|_| DomainError::Internal("stored case id is malformed".into()))
}

async fn system_event(
    vault: &Vault,
    conn: &mut AnyConnection,
    action: &str,
    case: &CaseId,
) -> DomainResult<()> {
    vault
        .audit(
            conn,
            &NewEvent {
                actor: "system",
                action,
                case_id: Some(*case),
                purpose: None,
                outcome: Outcome::Ok,
            },
        )
        .await?;
    Ok(())
}

/// Brings every case's desired state up to date: cases registered or ended without the
/// hook, and persons whose grace period is over (disabled → absent). One transaction
/// and one audit event per case changed. Returns the number of cases changed.
pub async fn sync_all(vault: &Vault, grace: chrono::TimeDelta) -> DomainResult<usize> {
    let mut cases: Vec<String> = Vec::new();
    for sql in [
        "SELECT c.case_id FROM cases c WHERE c.state = 'registered' AND c.fict_number IS NOT NULL \
         AND c.plan_required_since IS NULL AND NOT EXISTS (SELECT 1 FROM prov_persons p WHERE p.case_id = c.case_id AND p.subject = 'pupil')",
        "SELECT DISTINCT p.case_id FROM prov_persons p JOIN cases c ON c.case_id = p.case_id \
         WHERE c.state = 'ended' AND p.desired = 'present'",
    ] {
        for r in sqlx::query(sql).fetch_all(vault.db().pool()).await? {
            cases.push(r.try_get("case_id")?);
        }
    }
    let mut changed = 0;
    for c in cases {
        let case = parse_case(&c)?;
        let mut tx = vault.db().begin_write().await?;
        if sync_case(vault, &mut tx, &case).await? {
            system_event(vault, &mut tx, "provisioning.desired", &case).await?;
            changed += 1;
        }
        tx.commit().await?;
    }
    // Second stage: disabled for the grace period → absent (delete).
    let cutoff = fmt_time(vault.now() - grace);
    let due: Vec<String> = sqlx::query(
        "SELECT DISTINCT p.case_id FROM prov_persons p JOIN cases c ON c.case_id = p.case_id \
         WHERE p.desired = 'disabled' AND p.desired_since <= $1 \
         AND (c.state = 'ended' OR p.subject LIKE 'former-%')",
    )
    .bind(&cutoff)
    .fetch_all(vault.db().pool())
    .await?
    .iter()
    .map(|r| r.try_get("case_id"))
    .collect::<Result<_, _>>()?;
    for c in due {
        let case = parse_case(&c)?;
        let mut tx = vault.db().begin_write().await?;
        let now = fmt_time(vault.now());
        let n = sqlx::query(
            "UPDATE prov_persons SET desired = 'absent', desired_since = $1, revision = revision + 1 \
             WHERE case_id = $2 AND desired = 'disabled' AND desired_since <= $3 \
             AND (subject LIKE 'former-%' OR EXISTS (SELECT 1 FROM cases c \
             WHERE c.case_id = prov_persons.case_id AND c.state = 'ended'))",
        )
        .bind(&now)
        .bind(&c)
        .bind(&cutoff)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n > 0 {
            system_event(vault, &mut tx, "provisioning.desired", &case).await?;
            changed += 1;
        }
        tx.commit().await?;
    }
    Ok(changed)
}

/// A person as provisioning sees it: the stored state and, when the routine's tables
/// still hold the fictitious identity, the record to write.
#[derive(Debug, Clone)]
pub struct PersonRow {
    pub id: PersonId,
    pub case: CaseId,
    pub unit: String,
    pub subject: String,
    pub desired: Desired,
    pub revision: i64,
    pub platforms: Vec<String>,
    /// `None` when the fictitious identity is gone (shredded) or incomplete.
    pub person: Option<FictitiousPerson>,
}

/// A group id from a unit code and a group label: `<unit>-<folded label>`, or a hash
/// of both when that is not a valid id.
pub fn group_id(unit: &str, label: &str) -> String {
    let slug: Vec<String> = label
        .split(|c: char| !c.is_alphanumeric())
        .map(|w| {
            fiktiv_vault::normalize::normalize_name(w)
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .collect::<String>()
        })
        .filter(|w| !w.is_empty())
        .collect();
    let id = format!("{unit}-{}", slug.join("-"));
    if !slug.is_empty() && fiktiv_provisioning::GroupId::new(&id).is_ok() {
        return id;
    }
    let mut h = Sha256::new();
    h.update(unit.as_bytes());
    h.update([0]);
    h.update(label.trim().as_bytes());
    let hex = hex::encode(h.finalize());
    format!("g-{}", hex.get(..16).unwrap_or(&hex))
}

struct Fict {
    first: Option<String>,
    last: Option<String>,
    birth: Option<String>,
    number: Option<String>,
}

fn build_person(
    id: PersonId,
    kind: PersonKind,
    f: &Fict,
    country: &str,
    unit: &str,
    groups: &[String],
    grade: Option<i64>,
) -> Option<FictitiousPerson> {
    let birth = NaiveDate::parse_from_str(f.birth.as_deref()?, "%Y-%m-%d").ok()?;
    let school = SchoolUnit::new(unit, unit).ok()?;
    let mut p = FictitiousPerson::new(
        id,
        kind,
        f.first.as_deref()?,
        f.last.as_deref()?,
        birth,
        school,
    )
    .ok()?;
    if let Some(n) = &f.number {
        let c = match country {
            "no" => fiktiv_vault::ids::Country::No,
            _ => fiktiv_vault::ids::Country::Se,
        };
        match FictitiousNumber::new(c, n) {
            Ok(n) => p = p.with_number(n),
            Err(_) => {
                tracing::warn!(person = %id, "fictitious number not in canonical form; left out")
            }
        }
    }
    for g in groups {
        if let Ok(group) = Group::new(&group_id(unit, g), g.trim()) {
            p = p.with_group(group);
        }
    }
    if let Some(y) = grade.and_then(|y| u8::try_from(y).ok()) {
        p = p.with_grade(y);
    }
    Some(p)
}

/// The persons (all, or one case's), with their records. Targets are not filled in.
pub async fn load_persons(
    conn: &mut AnyConnection,
    case: Option<&CaseId>,
) -> DomainResult<Vec<PersonRow>> {
    let mut sql = String::from(
        "SELECT p.person_id, p.case_id, p.subject, p.desired, p.revision, c.unit, c.country, \
         c.fict_first, c.fict_last, c.fict_birth, c.fict_number, o.groups_json, o.platforms_json, \
         h.groups_json AS hub_groups_json, h.school_year AS hub_school_year \
         FROM prov_persons p JOIN cases c ON c.case_id = p.case_id \
         LEFT JOIN orders o ON o.case_id = p.case_id \
         LEFT JOIN hub_links h ON h.case_id = p.case_id",
    );
    if case.is_some() {
        sql.push_str(" WHERE p.case_id = $1");
    }
    sql.push_str(" ORDER BY p.case_id, p.subject");
    let mut q = sqlx::query(&sql);
    if let Some(c) = case {
        q = q.bind(c.to_string());
    }
    let rows = q.fetch_all(&mut *conn).await?;
    let mut gsql = String::from(
        "SELECT case_id, guardian_no, fict_first, fict_last, fict_birth, fict_number \
         FROM guardians WHERE linked = 1",
    );
    if case.is_some() {
        gsql.push_str(" AND case_id = $1");
    }
    let mut gq = sqlx::query(&gsql);
    if let Some(c) = case {
        gq = gq.bind(c.to_string());
    }
    let mut guardians: HashMap<(String, String), Fict> = HashMap::new();
    for r in gq.fetch_all(&mut *conn).await? {
        guardians.insert(
            (
                r.try_get("case_id")?,
                guardian_subject(r.try_get("guardian_no")?),
            ),
            Fict {
                first: r.try_get("fict_first")?,
                last: r.try_get("fict_last")?,
                birth: r.try_get("fict_birth")?,
                number: r.try_get("fict_number")?,
            },
        );
    }
    let list = |s: Option<String>| -> Vec<String> {
        s.and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default()
    };
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let id: PersonId = r
            .try_get::<String, _>("person_id")?
            .parse()
            .map_err(|_| DomainError::Internal("stored person id is malformed".into()))?;
        let case_s: String = r.try_get("case_id")?;
        let subject: String = r.try_get("subject")?;
        let unit: String = r.try_get("unit")?;
        let country: String = r.try_get("country")?;
        // A case linked to the SS 12000 hub takes the hub's groups; otherwise the order's.
        let groups = match r.try_get::<Option<String>, _>("hub_groups_json")? {
            Some(g) => list(Some(g)),
            None => list(r.try_get("groups_json")?),
        };
        let platforms = list(r.try_get("platforms_json")?);
        let person = if subject == PUPIL {
            let f = Fict {
                first: r.try_get("fict_first")?,
                last: r.try_get("fict_last")?,
                birth: r.try_get("fict_birth")?,
                number: r.try_get("fict_number")?,
            };
            // The school year comes from the hub only (the order has none).
            let grade: Option<i64> = r.try_get("hub_school_year")?;
            build_person(id, PersonKind::Student, &f, &country, &unit, &groups, grade)
        } else {
            guardians
                .get(&(case_s.clone(), subject.clone()))
                .and_then(|f| {
                    build_person(id, PersonKind::Guardian, f, &country, &unit, &groups, None)
                })
        };
        out.push(PersonRow {
            id,
            case: parse_case(&case_s)?,
            unit,
            subject,
            desired: Desired::parse(&r.try_get::<String, _>("desired")?)?,
            revision: r.try_get("revision")?,
            platforms,
            person,
        });
    }
    relate(&mut out);
    Ok(out)
}

/// Relates the persons of each case, as a roster relates a pupil and its guardians
/// (OneRoster `agentSourcedIds`): the pupil lists every guardian, each guardian the
/// pupil. Only persons with a record that are not to be deleted take part, so that no
/// relation points at an account that is not there.
fn relate(rows: &mut [PersonRow]) {
    let related = |r: &PersonRow| r.person.is_some() && r.desired != Desired::Absent;
    let mut by_case: HashMap<CaseId, (Vec<PersonId>, Vec<PersonId>)> = HashMap::new();
    for r in rows.iter().filter(|r| related(r)) {
        let (pupils, guardians) = by_case.entry(r.case).or_default();
        if r.subject == PUPIL {
            pupils.push(r.id);
        } else {
            guardians.push(r.id);
        }
    }
    for r in rows.iter_mut() {
        if !related(r) {
            continue;
        }
        let Some((pupils, guardians)) = by_case.get(&r.case) else {
            continue;
        };
        let others = if r.subject == PUPIL {
            guardians
        } else {
            pupils
        };
        if let Some(p) = r.person.take() {
            r.person = Some(others.iter().fold(p, |p, a| p.with_agent(*a)));
        }
    }
}

/// One person by id.
pub async fn load_person(
    conn: &mut AnyConnection,
    id: &PersonId,
) -> DomainResult<Option<PersonRow>> {
    let case: Option<String> = sqlx::query("SELECT case_id FROM prov_persons WHERE person_id = $1")
        .bind(id.to_string())
        .fetch_optional(&mut *conn)
        .await?
        .map(|r| r.try_get("case_id"))
        .transpose()?;
    let Some(case) = case else {
        return Ok(None);
    };
    let case = parse_case(&case)?;
    Ok(load_persons(conn, Some(&case))
        .await?
        .into_iter()
        .find(|p| p.id == *id))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn group_ids_are_valid() {
        assert_eq!(group_id("unit-a", "4B"), "unit-a-4b");
        assert_eq!(group_id("skola", "Klass 5 Å"), "skola-klass-5-a");
        let long = group_id(&"u".repeat(60), "Matematik grupp");
        assert!(long.starts_with("g-") && long.len() == 18, "{long}");
        assert!(group_id("u", "!!!").starts_with("g-"));
        assert_eq!(group_id("u", "x"), group_id("u", "x"));
    }
}
