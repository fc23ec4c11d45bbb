//! The specification's filters of the feed's lists (`GET /ss12000/v2/persons?…`) and
//! the bodies of its `/lookup` calls, checked against exactly what the consumer is
//! served: the fictitious pupil in place of the marked one, the consumer's omitted
//! fields gone. A filter on a field a consumer is refused matches nothing, so no filter
//! can tell a consumer what it may not read, and a filter on a real pupil's number finds
//! nothing (the real pupil is not served).
//!
//! Served: `meta.created.before|after`, `meta.modified.before|after` (every list);
//! organisations `parent`, `schoolUnitCode`, `organisationCode`, `municipalityCode`,
//! `type`, `schoolTypes`, and `startDate.*`/`endDate.*` on organisations, groups,
//! duties and activities; persons `nameContains`, `civicNo`, `eduPersonPrincipalName`,
//! `identifier.value`, `identifier.context`, `relationship.entity.type` (`enrolment`,
//! `duty`, `responsibleFor.enrolment`, `groupMembership`), `relationship.organisation`
//! and `relationship.startDate.*`/`relationship.endDate.*`; groups `groupType`,
//! `schoolTypes`, `organisation`; duties `organisation` (and the elements under it),
//! `dutyRole`, `person`; activities `member`, `teacher`, `organisation` (and under
//! it), `group`. `expandReferenceNames` is accepted and answers without the names.
//! Refused with 400 `unsupported-parameter` rather than ignored (an ignored filter would
//! answer more than was asked): `sortkey`, `expand`, and placements (the feed serves
//! none).

use std::collections::{HashMap, HashSet};

use base64::Engine as _;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;

use crate::feed::{FeedError, FeedResource};

/// The longest filtered page token (it carries the filter, as the specification wants
/// a `pageToken` alone on the next request).
pub const MAX_FILTER_TOKEN: usize = 4096;
/// The most values of one parameter, and of a lookup body in all.
pub const MAX_VALUES: usize = 1000;

const ORG_TYPES: &[&str] = &[
    "Huvudman",
    "Verksamhetsområde",
    "Förvaltning",
    "Rektorsområde",
    "Skola",
    "Skolenhet",
    "Varumärke",
    "Bolag",
    "Övrigt",
];
const SCHOOL_TYPES: &[&str] = &[
    "FS", "FKLASS", "FTH", "OPPFTH", "GR", "GRS", "TR", "SP", "SAM", "GY", "GYS", "VUX", "VUXSFI",
    "VUXGR", "VUXGY", "VUXSARGR", "VUXSARTR", "VUXSARGY", "SFI", "SARVUX", "SARVUXGR", "SARVUXGY",
    "KU", "YH", "FHS", "STF", "KKU", "HS", "ABU", "AU",
];
const GROUP_TYPES: &[&str] = &[
    "Undervisning",
    "Klass",
    "Mentor",
    "Provgrupp",
    "Schema",
    "Avdelning",
    "Personalgrupp",
    "Övrigt",
];
const DUTY_ROLES: &[&str] = &[
    "Rektor",
    "Lärare",
    "Förskollärare",
    "Barnskötare",
    "Bibliotekarie",
    "Lärarassistent",
    "Fritidspedagog",
    "Annan personal",
    "Studie- och yrkesvägledare",
    "Förstelärare",
    "Kurator",
    "Skolsköterska",
    "Skolläkare",
    "Skolpsykolog",
    "Speciallärare/specialpedagog",
    "Skoladministratör",
    "Övrig arbetsledning",
    "Övrig pedagogisk personal",
    "Förskolechef",
];
/// The relations `relationship.entity.type` names that the feed can answer.
const RELATIONS: &[&str] = &[
    "enrolment",
    "duty",
    "responsibleFor.enrolment",
    "groupMembership",
];
const PLACEMENT_RELATIONS: &[&str] = &[
    "placement.child",
    "placement.owner",
    "responsibleFor.placement",
];

fn bad(code: &'static str, message: &'static str) -> FeedError {
    FeedError::BadRequest(code, message)
}

fn unsupported() -> FeedError {
    bad(
        "unsupported-parameter",
        "This parameter is not supported by this feed for this resource (see the feed's documentation); it is refused rather than ignored.",
    )
}

/// How a date bound compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bound {
    OnOrBefore,
    OnOrAfter,
}

/// One condition on an entity as served.
#[derive(Debug, Clone)]
enum Cond {
    /// The string at `path` (any element of an array on the way) is one of `values`.
    AnyOf {
        path: &'static [&'static str],
        values: Vec<String>,
    },
    /// `meta.created`/`meta.modified` before (inclusive) or after (exclusive) a time.
    Time {
        field: &'static str,
        before: bool,
        at: DateTime<Utc>,
    },
    /// `startDate`/`endDate` of the entity; an entity without it is kept.
    Date {
        field: &'static str,
        bound: Bound,
        on: NaiveDate,
    },
    /// Every value is in at least one of the person's three name fields, in any case.
    NameContains(Vec<String>),
    /// `externalIdentifiers`: one with this value and/or context.
    Identifier {
        value: Option<String>,
        context: Option<String>,
    },
    /// The organisation named or an element under it, at `path`.
    UnderOrganisation {
        path: &'static [&'static str],
        org: String,
    },
    /// A person's relations (below).
    Relationship(Relationship),
    /// An activity one of whose groups has this person as a member.
    Member(String),
}

#[derive(Debug, Clone, Default)]
struct Relationship {
    kind: Option<String>,
    organisation: Option<String>,
    start: Vec<(Bound, NaiveDate)>,
    end: Vec<(Bound, NaiveDate)>,
}

/// A relation of a person to an organisation element, with its dates.
#[derive(Debug, Clone)]
struct Relation {
    kind: &'static str,
    org: String,
    start: Option<NaiveDate>,
    end: Option<NaiveDate>,
}

/// The filter of one list request: the conditions, and the parameters as given (for
/// the page token).
#[derive(Debug, Clone, Default)]
pub struct Filter {
    conds: Vec<Cond>,
    pairs: Vec<(String, String)>,
    /// `sortkey`, checked against the resource's list.
    sort: Option<&'static str>,
    /// `expand`, checked against the resource's list.
    expand: Vec<&'static str>,
}

/// Where the next page starts: after an id (the lists' own order, by id) or, for a
/// sorted list, after so many entities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    After(String),
    Offset(usize),
}

/// The `sortkey` values of each resource (the specification's lists).
fn sort_keys(resource: FeedResource) -> &'static [&'static str] {
    match resource {
        FeedResource::Organisations | FeedResource::Activities => {
            &["ModifiedDesc", "DisplayNameAsc"]
        }
        FeedResource::Persons => &[
            "DisplayNameAsc",
            "GivenNameDesc",
            "GivenNameAsc",
            "FamilyNameDesc",
            "FamilyNameAsc",
            "CivicNoAsc",
            "CivicNoDesc",
            "ModifiedDesc",
        ],
        FeedResource::Groups => &[
            "ModifiedDesc",
            "DisplayNameAsc",
            "StartDateAsc",
            "StartDateDesc",
            "EndDateAsc",
            "EndDateDesc",
        ],
        FeedResource::Duties => &["StartDateDesc", "StartDateAsc", "ModifiedDesc"],
    }
}

/// The `expand` values of each resource this feed answers (`syllabus` of activities is
/// not read from the hub, so not served).
fn expansions(resource: FeedResource) -> &'static [&'static str] {
    match resource {
        FeedResource::Persons => &[
            "duties",
            "responsibleFor",
            "placements",
            "ownedPlacements",
            "groupMemberships",
        ],
        FeedResource::Groups => &["assignmentRoles"],
        FeedResource::Duties => &["person"],
        FeedResource::Activities => &["groups", "teachers"],
        FeedResource::Organisations => &[],
    }
}

/// What the served data says beyond one entity: the organisation tree, each person's
/// relations, each group's members. Built only for a filter that needs it.
#[derive(Debug, Default)]
pub struct Context {
    parent_of: HashMap<String, String>,
    relations: HashMap<String, Vec<Relation>>,
    members: HashMap<String, HashSet<String>>,
}

fn one_value(v: &[String]) -> Result<&str, FeedError> {
    match v {
        [one] => Ok(one.as_str()),
        _ => Err(bad("invalid-parameter", "This parameter takes one value.")),
    }
}

fn uuid(s: &str) -> Result<String, FeedError> {
    s.parse::<uuid::Uuid>()
        .map(|u| u.to_string())
        .map_err(|_| bad("invalid-parameter", "This parameter takes an id (a UUID)."))
}

fn date(s: &str) -> Result<NaiveDate, FeedError> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| bad("invalid-date", "A date must be written YYYY-MM-DD."))
}

fn time(s: &str) -> Result<DateTime<Utc>, FeedError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            bad(
                "invalid-date-time",
                "A time must be written as RFC 3339 (2026-08-01T00:00:00Z).",
            )
        })
}

fn enumerated(values: &[String], allowed: &[&str]) -> Result<Vec<String>, FeedError> {
    if values.iter().all(|v| allowed.contains(&v.as_str())) {
        Ok(values.to_vec())
    } else {
        Err(bad(
            "invalid-parameter",
            "A value is not one the specification allows for this parameter.",
        ))
    }
}

impl Filter {
    /// The filter of `pairs` (the query's parameters other than `limit` and
    /// `pageToken`) for `resource`. Each parameter is checked as the specification
    /// types it; anything this feed does not serve is refused.
    pub fn parse(resource: FeedResource, pairs: &[(String, String)]) -> Result<Self, FeedError> {
        let mut by_name: Vec<(&str, Vec<String>)> = Vec::new();
        for (k, v) in pairs {
            match by_name.iter_mut().find(|(n, _)| *n == k.as_str()) {
                Some((_, vs)) => vs.push(v.clone()),
                None => by_name.push((k.as_str(), vec![v.clone()])),
            }
        }
        let mut conds = Vec::new();
        let mut sort = None;
        let mut expand = Vec::new();
        let mut rel = Relationship::default();
        let mut any_rel = false;
        let mut ident = (None, None);
        for (name, values) in &by_name {
            if values.len() > MAX_VALUES || values.iter().any(|v| v.len() > 256) {
                return Err(bad("invalid-parameter", "Too many or too long values."));
            }
            use FeedResource as R;
            let dated = matches!(
                resource,
                R::Organisations | R::Groups | R::Duties | R::Activities
            );
            let c = match (resource, *name) {
                (_, "sortkey") => {
                    let v = one_value(values)?;
                    sort = Some(
                        sort_keys(resource)
                            .iter()
                            .copied()
                            .find(|k| *k == v)
                            .ok_or_else(|| bad("invalid-parameter", "A value is not one the specification allows for this parameter."))?,
                    );
                    continue;
                }
                (_, "expand") => {
                    for v in values {
                        if resource == FeedResource::Activities && v == "syllabus" {
                            return Err(unsupported());
                        }
                        let e = expansions(resource)
                            .iter()
                            .copied()
                            .find(|k| *k == v)
                            .ok_or_else(|| bad("invalid-parameter", "A value is not one the specification allows for this parameter."))?;
                        if !expand.contains(&e) {
                            expand.push(e);
                        }
                    }
                    continue;
                }
                (_, "expandReferenceNames") => {
                    match one_value(values)? {
                        "true" | "false" => {}
                        _ => {
                            return Err(bad(
                                "invalid-parameter",
                                "expandReferenceNames is true or false.",
                            ))
                        }
                    }
                    continue;
                }
                (
                    _,
                    "meta.created.before"
                    | "meta.created.after"
                    | "meta.modified.before"
                    | "meta.modified.after",
                ) => {
                    let field = if name.starts_with("meta.created") {
                        "created"
                    } else {
                        "modified"
                    };
                    Cond::Time {
                        field,
                        before: name.ends_with(".before"),
                        at: time(one_value(values)?)?,
                    }
                }
                (
                    _,
                    "startDate.onOrBefore"
                    | "startDate.onOrAfter"
                    | "endDate.onOrBefore"
                    | "endDate.onOrAfter",
                ) if dated => Cond::Date {
                    field: if name.starts_with("start") {
                        "startDate"
                    } else {
                        "endDate"
                    },
                    bound: if name.ends_with("onOrBefore") {
                        Bound::OnOrBefore
                    } else {
                        Bound::OnOrAfter
                    },
                    on: date(one_value(values)?)?,
                },
                (R::Organisations, "parent") => Cond::AnyOf {
                    path: &["parentOrganisation", "id"],
                    values: values.iter().map(|v| uuid(v)).collect::<Result<_, _>>()?,
                },
                (R::Organisations, "schoolUnitCode") => Cond::AnyOf {
                    path: &["schoolUnitCode"],
                    values: values.clone(),
                },
                (R::Organisations, "organisationCode") => Cond::AnyOf {
                    path: &["organisationCode"],
                    values: values.clone(),
                },
                (R::Organisations, "municipalityCode") => Cond::AnyOf {
                    path: &["municipalityCode"],
                    values: vec![one_value(values)?.to_owned()],
                },
                (R::Organisations, "type") => Cond::AnyOf {
                    path: &["organisationType"],
                    values: enumerated(values, ORG_TYPES)?,
                },
                (R::Organisations, "schoolTypes") => Cond::AnyOf {
                    path: &["schoolTypes"],
                    values: enumerated(values, SCHOOL_TYPES)?,
                },
                (R::Persons, "nameContains") => {
                    Cond::NameContains(values.iter().map(|v| v.to_lowercase()).collect())
                }
                (R::Persons, "civicNo") => Cond::AnyOf {
                    path: &["civicNo", "value"],
                    values: vec![one_value(values)?.to_owned()],
                },
                (R::Persons, "eduPersonPrincipalName") => Cond::AnyOf {
                    path: &["eduPersonPrincipalNames"],
                    values: vec![one_value(values)?.to_owned()],
                },
                (R::Persons, "identifier.value") => {
                    ident.0 = Some(one_value(values)?.to_owned());
                    continue;
                }
                (R::Persons, "identifier.context") => {
                    ident.1 = Some(one_value(values)?.to_owned());
                    continue;
                }
                (R::Persons, "relationship.entity.type") => {
                    let v = one_value(values)?;
                    if PLACEMENT_RELATIONS.contains(&v) {
                        return Err(unsupported());
                    }
                    rel.kind = Some(enumerated(values, RELATIONS)?.remove(0));
                    any_rel = true;
                    continue;
                }
                (R::Persons, "relationship.organisation") => {
                    rel.organisation = Some(uuid(one_value(values)?)?);
                    any_rel = true;
                    continue;
                }
                (
                    R::Persons,
                    "relationship.startDate.onOrBefore"
                    | "relationship.startDate.onOrAfter"
                    | "relationship.endDate.onOrBefore"
                    | "relationship.endDate.onOrAfter",
                ) => {
                    let bound = if name.ends_with("onOrBefore") {
                        Bound::OnOrBefore
                    } else {
                        Bound::OnOrAfter
                    };
                    let on = date(one_value(values)?)?;
                    if name.starts_with("relationship.start") {
                        rel.start.push((bound, on));
                    } else {
                        rel.end.push((bound, on));
                    }
                    any_rel = true;
                    continue;
                }
                (R::Groups, "groupType") => Cond::AnyOf {
                    path: &["groupType"],
                    values: enumerated(values, GROUP_TYPES)?,
                },
                (R::Groups, "schoolTypes") => Cond::AnyOf {
                    path: &["schoolType"],
                    values: enumerated(values, SCHOOL_TYPES)?,
                },
                (R::Groups, "organisation") => Cond::AnyOf {
                    path: &["organisation", "id"],
                    values: values.iter().map(|v| uuid(v)).collect::<Result<_, _>>()?,
                },
                (R::Duties, "organisation") => Cond::UnderOrganisation {
                    path: &["dutyAt", "id"],
                    org: uuid(one_value(values)?)?,
                },
                (R::Duties, "dutyRole") => Cond::AnyOf {
                    path: &["dutyRole"],
                    values: enumerated(&[one_value(values)?.to_owned()], DUTY_ROLES)?,
                },
                (R::Duties, "person") => Cond::AnyOf {
                    path: &["person", "id"],
                    values: vec![uuid(one_value(values)?)?],
                },
                (R::Activities, "member") => Cond::Member(uuid(one_value(values)?)?),
                (R::Activities, "teacher") => Cond::AnyOf {
                    path: &["teachers", "duty", "id"],
                    values: vec![uuid(one_value(values)?)?],
                },
                (R::Activities, "organisation") => Cond::UnderOrganisation {
                    path: &["organisation", "id"],
                    org: uuid(one_value(values)?)?,
                },
                (R::Activities, "group") => Cond::AnyOf {
                    path: &["groups", "id"],
                    values: vec![uuid(one_value(values)?)?],
                },
                _ => return Err(unsupported()),
            };
            conds.push(c);
        }
        if ident.0.is_some() || ident.1.is_some() {
            conds.push(Cond::Identifier {
                value: ident.0,
                context: ident.1,
            });
        }
        if any_rel {
            conds.push(Cond::Relationship(rel));
        }
        Ok(Self {
            conds,
            pairs: pairs.to_vec(),
            sort,
            expand,
        })
    }

    /// No condition: every entity passes.
    pub fn is_empty(&self) -> bool {
        self.conds.is_empty()
    }

    /// A `sortkey` was given: the list is sorted, and paged by place.
    pub fn sorted(&self) -> bool {
        self.sort.is_some()
    }

    /// The `expand` values asked for.
    pub fn expand(&self) -> &[&'static str] {
        &self.expand
    }

    /// Sorts entities as served by the `sortkey` (ties, and entities without the
    /// field, in id order; a field left out for the consumer is missing, so the order
    /// never tells it).
    pub fn sort_items(&self, items: &mut [(String, Value)]) {
        let Some(key) = self.sort else {
            return;
        };
        let text = |v: &Value, path: &[&str]| -> Option<String> {
            let mut at = v;
            for p in path {
                at = at.get(*p)?;
            }
            at.as_str().map(str::to_lowercase)
        };
        let field: &[&str] = match key {
            "DisplayNameAsc" => &["displayName"],
            "GivenNameAsc" | "GivenNameDesc" => &["givenName"],
            "FamilyNameAsc" | "FamilyNameDesc" => &["familyName"],
            "CivicNoAsc" | "CivicNoDesc" => &["civicNo", "value"],
            "StartDateAsc" | "StartDateDesc" => &["startDate"],
            "EndDateAsc" | "EndDateDesc" => &["endDate"],
            _ => &["meta", "modified"],
        };
        let desc = key.ends_with("Desc");
        let sort_value = |v: &Value| -> Option<String> {
            if key == "DisplayNameAsc" && v.get("displayName").is_none() {
                // A person has no displayName: its shown name is given and family name.
                let g = text(v, &["givenName"])?;
                let f = text(v, &["familyName"]).unwrap_or_default();
                return Some(format!("{g} {f}"));
            }
            if key == "ModifiedDesc" {
                // Times compare as instants: written in one form (UTC, `Z`) first.
                return v["meta"]["modified"]
                    .as_str()
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| {
                        t.with_timezone(&Utc)
                            .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
                    });
            }
            text(v, field)
        };
        items.sort_by(|(ia, a), (ib, b)| {
            let (ka, kb) = (sort_value(a), sort_value(b));
            let by_key = match (&ka, &kb) {
                (Some(x), Some(y)) if desc => y.cmp(x),
                (Some(x), Some(y)) => x.cmp(y),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            };
            by_key.then_with(|| ia.cmp(ib))
        });
    }

    /// The `meta.modified.after` bound, if any (the store is asked for later entities
    /// only; [`Filter::matches`] checks it again).
    pub fn modified_after(&self) -> Option<DateTime<Utc>> {
        self.conds
            .iter()
            .filter_map(|c| match c {
                Cond::Time {
                    field: "modified",
                    before: false,
                    at,
                } => Some(*at),
                _ => None,
            })
            .max()
    }

    /// Whether [`Filter::matches`] needs the [`Context`] of the served data.
    pub fn needs_context(&self) -> bool {
        self.conds.iter().any(|c| {
            matches!(
                c,
                Cond::UnderOrganisation { .. } | Cond::Relationship(_) | Cond::Member(_)
            )
        })
    }

    /// The page token that goes on at `cursor` with this filter (the parameters travel
    /// in it; the next request sends the token alone).
    pub fn token(&self, cursor: &Cursor) -> String {
        let body = match cursor {
            Cursor::After(id) if self.pairs.is_empty() => return format!("k{id}"),
            Cursor::After(id) => serde_json::json!({ "a": id, "q": self.pairs }),
            Cursor::Offset(n) => serde_json::json!({ "o": n, "q": self.pairs }),
        };
        format!(
            "f{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(body.to_string())
        )
    }

    /// Where to go on and the filter a page token carries.
    pub fn from_token(resource: FeedResource, token: &str) -> Result<(Cursor, Self), FeedError> {
        let invalid = || {
            bad(
                "invalid-page-token",
                "The pageToken is not one this service gave.",
            )
        };
        if let Some(u) = token.strip_prefix('k') {
            let id = u.parse::<uuid::Uuid>().map_err(|_| invalid())?;
            return Ok((Cursor::After(id.to_string()), Self::default()));
        }
        let body = token
            .strip_prefix('f')
            .filter(|b| b.len() <= MAX_FILTER_TOKEN)
            .ok_or_else(invalid)?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| invalid())?;
        let v: Value = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
        let pairs: Vec<(String, String)> =
            serde_json::from_value(v["q"].clone()).map_err(|_| invalid())?;
        if pairs.is_empty() {
            return Err(invalid());
        }
        let filter = Self::parse(resource, &pairs)?;
        let cursor = match (filter.sorted(), v["a"].as_str(), v["o"].as_u64()) {
            (false, Some(a), None) => {
                Cursor::After(a.parse::<uuid::Uuid>().map_err(|_| invalid())?.to_string())
            }
            (true, None, Some(o)) => Cursor::Offset(usize::try_from(o).map_err(|_| invalid())?),
            _ => return Err(invalid()),
        };
        Ok((cursor, filter))
    }

    /// Whether `v`, an entity as served to the consumer, passes every condition.
    pub fn matches(&self, v: &Value, ctx: &Context) -> bool {
        self.conds.iter().all(|c| cond_matches(c, v, ctx))
    }
}

/// The strings at `path` in `v`, through arrays on the way.
fn strings_at<'a>(v: &'a Value, path: &[&str], out: &mut Vec<&'a str>) {
    match v {
        Value::Array(items) => {
            for i in items {
                strings_at(i, path, out);
            }
        }
        _ => match path.split_first() {
            None => {
                if let Some(s) = v.as_str() {
                    out.push(s);
                }
            }
            Some((first, rest)) => {
                if let Some(next) = v.get(*first) {
                    strings_at(next, rest, out);
                }
            }
        },
    }
}

fn bound_holds(bound: Bound, d: NaiveDate, on: NaiveDate) -> bool {
    match bound {
        Bound::OnOrBefore => d <= on,
        Bound::OnOrAfter => d >= on,
    }
}

fn date_at(v: &Value, field: &str) -> Option<NaiveDate> {
    v.get(field)
        .and_then(Value::as_str)
        .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
}

fn cond_matches(c: &Cond, v: &Value, ctx: &Context) -> bool {
    match c {
        Cond::AnyOf { path, values } => {
            let mut found = Vec::new();
            strings_at(v, path, &mut found);
            found.iter().any(|s| values.iter().any(|w| w == s))
        }
        Cond::Time { field, before, at } => {
            let Some(t) = v["meta"][*field]
                .as_str()
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map(|t| t.with_timezone(&Utc))
            else {
                return false;
            };
            if *before {
                t <= *at
            } else {
                t > *at
            }
        }
        Cond::Date { field, bound, on } => match date_at(v, field) {
            Some(d) => bound_holds(*bound, d, *on),
            None => true,
        },
        Cond::NameContains(parts) => {
            let names: Vec<String> = ["givenName", "middleName", "familyName"]
                .iter()
                .filter_map(|f| v.get(*f).and_then(Value::as_str))
                .map(str::to_lowercase)
                .collect();
            parts
                .iter()
                .all(|p| names.iter().any(|n| n.contains(p.as_str())))
        }
        Cond::Identifier { value, context } => v
            .get("externalIdentifiers")
            .and_then(Value::as_array)
            .is_some_and(|ids| {
                ids.iter().any(|i| {
                    value
                        .as_deref()
                        .is_none_or(|w| i["value"].as_str() == Some(w))
                        && context
                            .as_deref()
                            .is_none_or(|w| i["context"].as_str() == Some(w))
                })
            }),
        Cond::UnderOrganisation { path, org } => {
            let mut found = Vec::new();
            strings_at(v, path, &mut found);
            found.iter().any(|o| ctx.under(o, org))
        }
        Cond::Relationship(r) => {
            let id = v["id"].as_str().unwrap_or_default();
            ctx.relations.get(id).is_some_and(|rels| {
                rels.iter().any(|x| {
                    r.kind.as_deref().is_none_or(|k| k == x.kind)
                        && r.organisation.as_deref().is_none_or(|o| o == x.org)
                        && r.start
                            .iter()
                            .all(|(b, on)| x.start.is_none_or(|d| bound_holds(*b, d, *on)))
                        && r.end
                            .iter()
                            .all(|(b, on)| x.end.is_none_or(|d| bound_holds(*b, d, *on)))
                })
            })
        }
        Cond::Member(person) => {
            let mut groups = Vec::new();
            strings_at(v, &["groups", "id"], &mut groups);
            groups
                .iter()
                .any(|g| ctx.members.get(*g).is_some_and(|m| m.contains(person)))
        }
    }
}

impl Context {
    /// The context of the served organisations, persons, groups and duties (each as
    /// served, the fictitious pupils in place).
    pub fn build(orgs: &[Value], persons: &[Value], groups: &[Value], duties: &[Value]) -> Self {
        let mut ctx = Self::default();
        for o in orgs {
            if let (Some(id), Some(p)) = (o["id"].as_str(), o["parentOrganisation"]["id"].as_str())
            {
                ctx.parent_of.insert(id.to_owned(), p.to_owned());
            }
        }
        let mut enrolled_at: HashMap<String, Vec<Relation>> = HashMap::new();
        for p in persons {
            let Some(id) = p["id"].as_str() else { continue };
            for e in p["enrolments"].as_array().into_iter().flatten() {
                if let Some(org) = e["enroledAt"]["id"].as_str() {
                    let r = Relation {
                        kind: "enrolment",
                        org: org.to_owned(),
                        start: date_at(e, "startDate"),
                        end: date_at(e, "endDate"),
                    };
                    enrolled_at
                        .entry(id.to_owned())
                        .or_default()
                        .push(r.clone());
                    ctx.relations.entry(id.to_owned()).or_default().push(r);
                }
            }
        }
        // A responsible adult relates to each enrolment of the pupils it is named for.
        for p in persons {
            let Some(child) = p["id"].as_str() else {
                continue;
            };
            let Some(enrolments) = enrolled_at.get(child) else {
                continue;
            };
            for resp in p["responsibles"].as_array().into_iter().flatten() {
                if let Some(adult) = resp["person"]["id"].as_str() {
                    for e in enrolments {
                        ctx.relations
                            .entry(adult.to_owned())
                            .or_default()
                            .push(Relation {
                                kind: "responsibleFor.enrolment",
                                ..e.clone()
                            });
                    }
                }
            }
        }
        for d in duties {
            if let (Some(person), Some(org)) =
                (d["person"]["id"].as_str(), d["dutyAt"]["id"].as_str())
            {
                ctx.relations
                    .entry(person.to_owned())
                    .or_default()
                    .push(Relation {
                        kind: "duty",
                        org: org.to_owned(),
                        start: date_at(d, "startDate"),
                        end: date_at(d, "endDate"),
                    });
            }
        }
        for g in groups {
            let Some(gid) = g["id"].as_str() else {
                continue;
            };
            let org = g["organisation"]["id"].as_str().unwrap_or_default();
            for m in g["groupMemberships"].as_array().into_iter().flatten() {
                if let Some(person) = m["person"]["id"].as_str() {
                    ctx.members
                        .entry(gid.to_owned())
                        .or_default()
                        .insert(person.to_owned());
                    ctx.relations
                        .entry(person.to_owned())
                        .or_default()
                        .push(Relation {
                            kind: "groupMembership",
                            org: org.to_owned(),
                            start: date_at(m, "startDate"),
                            end: date_at(m, "endDate"),
                        });
                }
            }
        }
        ctx
    }

    /// Whether `org` is `top` or an element under it (through `parentOrganisation`).
    fn under(&self, org: &str, top: &str) -> bool {
        let mut at = org;
        // The depth is bounded by the number of elements: a loop in the hub's tree ends.
        for _ in 0..=self.parent_of.len() {
            if at == top {
                return true;
            }
            match self.parent_of.get(at) {
                Some(p) => at = p,
                None => return false,
            }
        }
        false
    }
}

/// A `/lookup` body of `resource`: the ids (and for persons civic numbers, for
/// organisations unit and organisation codes, for activities teachers and members)
/// whose entities are answered. At most [`MAX_VALUES`] values in all.
#[derive(Debug, Clone, Default)]
pub struct Lookup {
    conds: Vec<Cond>,
}

impl Lookup {
    pub fn parse(resource: FeedResource, body: &Value) -> Result<Self, FeedError> {
        let malformed = || {
            bad(
                "invalid-body",
                "The body is not a lookup of this resource (an object of lists of strings, as the specification gives).",
            )
        };
        let obj = body.as_object().ok_or_else(malformed)?;
        let mut conds = Vec::new();
        let mut total = 0usize;
        for (k, v) in obj {
            let list: Vec<String> = v
                .as_array()
                .ok_or_else(malformed)?
                .iter()
                .map(|x| x.as_str().map(str::to_owned).ok_or_else(malformed))
                .collect::<Result<_, _>>()?;
            total += list.len();
            if total > MAX_VALUES || list.iter().any(|s| s.len() > 256) {
                return Err(bad("invalid-body", "A lookup takes at most 1000 values."));
            }
            use FeedResource as R;
            let ids = |l: &[String]| l.iter().map(|s| uuid(s)).collect::<Result<Vec<_>, _>>();
            let c = match (resource, k.as_str()) {
                (_, "ids") => Cond::AnyOf {
                    path: &["id"],
                    values: ids(&list)?,
                },
                (R::Persons, "civicNos") => Cond::AnyOf {
                    path: &["civicNo", "value"],
                    values: list,
                },
                (R::Organisations, "schoolUnitCodes") => Cond::AnyOf {
                    path: &["schoolUnitCode"],
                    values: list,
                },
                (R::Organisations, "organisationCodes") => Cond::AnyOf {
                    path: &["organisationCode"],
                    values: list,
                },
                (R::Activities, "teachers") => Cond::AnyOf {
                    path: &["teachers", "duty", "id"],
                    values: ids(&list)?,
                },
                (R::Activities, "members") => {
                    for m in ids(&list)? {
                        conds.push(Cond::Member(m));
                    }
                    continue;
                }
                _ => return Err(malformed()),
            };
            conds.push(c);
        }
        Ok(Self { conds })
    }

    pub fn needs_context(&self) -> bool {
        self.conds.iter().any(|c| matches!(c, Cond::Member(_)))
    }

    /// Whether `v` (as served) is one of those looked up: any list names it.
    pub fn matches(&self, v: &Value, ctx: &Context) -> bool {
        self.conds.iter().any(|c| cond_matches(c, v, ctx))
    }
}

#[cfg(test)]
#[path = "filter_tests.rs"]
mod tests;
