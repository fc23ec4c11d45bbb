//! OneRoster 1.2 CSV export: a folder of CSV files that school sync tools import. The
//! embedded default target.
//!
//! Files (OneRoster 1.2 CSV binding, bulk mode): `manifest.csv`, `academicSessions.csv`
//! (the configured school year), `orgs.csv` (school units), `courses.csv` and
//! `classes.csv` (one course per class), `users.csv`, `roles.csv` (1.2 keeps a user's
//! roles there, not in `users.csv`) and `enrollments.csv`. `status` is left blank, as
//! bulk files have it; `dateLastModified` is filled with the time of the change.
//!
//! **Like any other pupil.** What the binding says and the files follow (OneRoster 1.2
//! CSV binding, 1EdTech, `imsglobal.org/spec/oneroster/v1p2/bind/csv`, and the
//! enumerations of the 1.2 rostering information model as implementations of it carry
//! them, e.g. the `meibo` gem's `Enrollment::ROLES`):
//!
//! - `users.csv` `agentSourcedIds` is a list of the `sourcedId`s of the user's related
//!   users, comma-separated in one (quoted) field: a pupil lists its guardians, a
//!   guardian its pupil ([`FictitiousPerson::agents`]). The relation is kept symmetric
//!   whichever side is written, and an id of a user no longer in the file is dropped.
//! - `roles.csv` holds every user's role in an org: a pupil `roleType` `primary`, `role`
//!   `student`; a guardian `primary`, `guardian` (the 1.2 role vocabulary has
//!   `guardian`, `parent` and `relative`), both at the school unit (`orgSourcedId`).
//! - `enrollments.csv` is for class members only: its 1.2 role vocabulary is
//!   `administrator`, `proctor`, `student`, `teacher`. A guardian is in no class; it
//!   belongs to its pupil's classes through the relation (which is how
//!   [`Target::read_managed`] reads its groups back).
//! - `username` (and `email`, if a template is set) follow the municipality's own
//!   pattern (default `{given}.{family}`, no id in it); a name another row already has
//!   is made unique by the target's [`Collision`] rule, the way the municipality does it
//!   for everyone, and a person keeps the name it was first given.
//!
//! **Atomic writes.** The configured `dir` is a symbolic link that Fiktiv owns. Every
//! change writes a complete new version into a sibling folder `.<name>.v-<uuid>`, fsyncs
//! each file and the folder, points a new link at it and renames that link over `dir`
//! (one atomic `rename`), fsyncs the parent and removes the old version. A reader sees
//! the old folder or the new one, never a mixture or nothing. A real directory at `dir`
//! is refused unless it is empty.
//!
//! Every write re-checks **every** row of the new version with the egress guard, not just
//! the person's own, so that a row planted by hand is not re-published by Fiktiv.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::guard::{Cleared, EgressGuard};
use crate::model::{FictitiousPerson, GroupId, PersonId, PersonKind, TargetName};
use crate::record::{ManagedEntry, OutboundRecord, Payload, ScannedEntry};
use crate::target::{Applied, ParseError, Target, TargetError};
use crate::template::{Fold, Template};

mod files;
mod names;
pub use files::{parse_csv, scan_csv_file, write_csv};
use files::{read_limited, swap_in, SwapError};
pub use names::Collision;
use names::AGENTS;

const MANIFEST: &str = "manifest.csv";
const SESSIONS: &str = "academicSessions.csv";
const ORGS: &str = "orgs.csv";
const COURSES: &str = "courses.csv";
const CLASSES: &str = "classes.csv";
const USERS: &str = "users.csv";
const ROLES: &str = "roles.csv";
const ENROLLMENTS: &str = "enrollments.csv";

/// The data files and their columns, in the order of the OneRoster 1.2 CSV tables.
const FILES: &[(&str, &[&str])] = &[
    (
        SESSIONS,
        &[
            "sourcedId",
            "status",
            "dateLastModified",
            "title",
            "type",
            "startDate",
            "endDate",
            "parentSourcedId",
            "schoolYear",
        ],
    ),
    (
        ORGS,
        &[
            "sourcedId",
            "status",
            "dateLastModified",
            "name",
            "type",
            "identifier",
            "parentSourcedId",
        ],
    ),
    (
        COURSES,
        &[
            "sourcedId",
            "status",
            "dateLastModified",
            "schoolYearSourcedId",
            "title",
            "courseCode",
            "grades",
            "orgSourcedId",
            "subjects",
            "subjectCodes",
        ],
    ),
    (
        CLASSES,
        &[
            "sourcedId",
            "status",
            "dateLastModified",
            "title",
            "grades",
            "courseSourcedId",
            "classCode",
            "classType",
            "location",
            "schoolSourcedId",
            "termSourcedIds",
            "subjects",
            "subjectCodes",
            "periods",
        ],
    ),
    (
        USERS,
        &[
            "sourcedId",
            "status",
            "dateLastModified",
            "enabledUser",
            "username",
            "userIds",
            "givenName",
            "familyName",
            "middleName",
            "identifier",
            "email",
            "sms",
            "phone",
            "agentSourcedIds",
            "grades",
            "password",
            "userMasterIdentifier",
            "resourceSourcedIds",
            "preferredGivenName",
            "preferredMiddleName",
            "preferredFamilyName",
            "primaryOrgSourcedId",
            "pronouns",
        ],
    ),
    (
        ROLES,
        &[
            "sourcedId",
            "status",
            "dateLastModified",
            "userSourcedId",
            "roleType",
            "role",
            "beginDate",
            "endDate",
            "orgSourcedId",
            "userProfileSourcedId",
        ],
    ),
    (
        ENROLLMENTS,
        &[
            "sourcedId",
            "status",
            "dateLastModified",
            "classSourcedId",
            "schoolSourcedId",
            "userSourcedId",
            "role",
            "primary",
            "beginDate",
            "endDate",
        ],
    ),
];

/// The school year every class belongs to (`academicSessions.csv`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SchoolYear {
    pub id: GroupId,
    pub title: String,
    pub start: NaiveDate,
    pub end: NaiveDate,
    /// The year the school year ends in, as OneRoster's `schoolYear` wants it.
    pub year: i32,
}

/// Settings of a OneRoster CSV target.
#[derive(Debug, Clone, Deserialize)]
pub struct OneRosterConfig {
    pub name: TargetName,
    /// The folder importers read; a symbolic link Fiktiv swaps atomically.
    pub dir: PathBuf,
    /// `username`, folded to ASCII. Default `{given}.{family}`, the pattern of ordinary
    /// pupils; a name another row has is made unique by `username_collision`.
    pub username: Template,
    /// `email`, folded to ASCII, if any; made unique like the username (the number goes
    /// before the `@`).
    pub email: Option<Template>,
    /// What is done when another row of `users.csv` has the username or email address.
    #[serde(default)]
    pub username_collision: Collision,
    /// The first number [`Collision::Number`] appends (default 2: `anna.svensson2`).
    #[serde(default = "default_collision_start")]
    pub collision_start: u32,
    /// Put the fictitious personal number in `identifier`.
    pub number_in_identifier: bool,
    pub school_year: SchoolYear,
    /// `source.systemName` in the manifest. Deliberately not "Fiktiv" by default: the
    /// roster must not announce that its pupils are protected.
    pub system_name: String,
}

/// The default first number of [`Collision::Number`].
pub const DEFAULT_COLLISION_START: u32 = 2;

fn default_collision_start() -> u32 {
    DEFAULT_COLLISION_START
}

impl OneRosterConfig {
    /// Defaults: username `{given}.{family}` made unique with a number from 2, no email,
    /// no number.
    pub fn new(
        name: TargetName,
        dir: PathBuf,
        school_year: SchoolYear,
    ) -> Result<Self, crate::template::TemplateError> {
        Ok(Self {
            name,
            dir,
            username: Template::parse("{given}.{family}")?,
            email: None,
            username_collision: Collision::Number,
            collision_start: DEFAULT_COLLISION_START,
            number_in_identifier: false,
            school_year,
            system_name: "roster".to_string(),
        })
    }
}

pub(crate) type Row = BTreeMap<String, String>;
/// file → sourcedId → row.
type Tables = BTreeMap<String, BTreeMap<String, Row>>;

/// The OneRoster CSV folder target.
#[derive(Debug)]
pub struct OneRosterTarget {
    cfg: OneRosterConfig,
    lock: Mutex<()>,
}

fn row(pairs: &[(&str, &str)]) -> Row {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn fmt_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl OneRosterTarget {
    /// Every file in the folder (sorted; directories left out): what the leak scan
    /// reads. A missing folder holds nothing.
    fn files_to_scan(&self) -> Result<Vec<PathBuf>, TargetError> {
        let dir = match std::fs::read_dir(&self.cfg.dir) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.io("scan")(e)),
        };
        let mut paths: Vec<PathBuf> = Vec::new();
        for entry in dir {
            let path = entry.map_err(self.io("scan"))?.path();
            if path.is_file() {
                paths.push(path);
            }
        }
        paths.sort();
        Ok(paths)
    }
}

impl OneRosterTarget {
    pub fn new(cfg: OneRosterConfig) -> Self {
        Self {
            cfg,
            lock: Mutex::new(()),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.cfg.dir
    }

    fn io(&self, op: &'static str) -> impl Fn(std::io::Error) -> TargetError + '_ {
        move |e| TargetError::Io {
            target: self.cfg.name.clone(),
            op,
            kind: e.kind(),
        }
    }

    fn parse_err(&self, op: &'static str) -> impl Fn(ParseError) -> TargetError + '_ {
        move |source| TargetError::Parse {
            target: self.cfg.name.clone(),
            op,
            source,
        }
    }

    /// Reads the current tables (empty when the folder does not exist yet).
    fn read_tables(&self) -> Result<Tables, TargetError> {
        let mut tables = Tables::new();
        for (file, _) in FILES {
            let path = self.cfg.dir.join(file);
            let rows = match read_limited(&path) {
                Ok(bytes) => parse_csv(&bytes).map_err(self.parse_err("read"))?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(self.io("read")(e)),
            };
            let t = tables.entry((*file).to_string()).or_default();
            for r in rows {
                let id = r.get("sourcedId").cloned().unwrap_or_default();
                t.insert(id, r);
            }
        }
        Ok(tables)
    }

    /// Checks every row with the guard, then writes the tables as a new version.
    fn write_tables(
        &self,
        guard: &EgressGuard,
        tables: &mut Tables,
        at: DateTime<Utc>,
    ) -> Result<(), TargetError> {
        gc(tables);
        // Each row is one entry, as the leak scan reads it back: a whole file checked
        // as one entry would pair every given name with every family name in it and,
        // past a few dozen pupils, be refused as unverifiable.
        let mut entries = Vec::new();
        for (file, rows) in tables.iter() {
            let stem = file.trim_end_matches(".csv");
            for r in rows.values() {
                entries.push(
                    r.iter()
                        .map(|(c, v)| (format!("{stem}.{c}"), v.clone()))
                        .collect::<Vec<_>>(),
                );
            }
        }
        guard.check_entries(&self.cfg.name, &entries)?;
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        files.push((MANIFEST.to_string(), self.manifest()?));
        for (file, cols) in FILES {
            let rows: Vec<&Row> = tables
                .get(*file)
                .map(|t| t.values().collect())
                .unwrap_or_default();
            files.push((
                (*file).to_string(),
                write_csv(cols, &rows).map_err(self.parse_err("write"))?,
            ));
        }
        swap_in(&self.cfg.dir, &files).map_err(|e| match e {
            SwapError::Io(e) => self.io("write")(e),
            SwapError::NotOurs => TargetError::Config {
                target: self.cfg.name.clone(),
                what: "the folder exists, is not empty and is not a link Fiktiv made",
            },
        })?;
        tracing::debug!(target_name = %self.cfg.name, at = %fmt_time(at), "roster folder written");
        Ok(())
    }

    /// Makes the user row's `username` and `email` unique within `users.csv` by the
    /// target's rule: the rendered value when no other row has it, else a numbered one;
    /// the person's current value when it was made from the same rendered value (a person
    /// keeps its name when another arrives). The address takes the username's number when
    /// that is free, as a municipality gives both from one name.
    fn settle_names(&self, tables: &Tables, id: &str, r: &mut Row) -> Result<(), TargetError> {
        let empty = BTreeMap::new();
        let users = tables.get(USERS).unwrap_or(&empty);
        let (rule, start) = (
            self.cfg.username_collision,
            u64::from(self.cfg.collision_start),
        );
        let taken = || TargetError::Config {
            target: self.cfg.name.clone(),
            what: "the username or email is taken by another row of users.csv and \
                   username_collision is refuse",
        };
        let base = r.get("username").cloned().unwrap_or_default();
        let (username, n) =
            names::settle(users, id, "username", &base, None, rule, start).ok_or_else(taken)?;
        r.insert("username".to_string(), username);
        let base = r.get("email").cloned().unwrap_or_default();
        let (email, _) =
            names::settle(users, id, "email", &base, n, rule, start).ok_or_else(taken)?;
        r.insert("email".to_string(), email);
        Ok(())
    }

    fn manifest(&self) -> Result<Vec<u8>, TargetError> {
        let mut rows: Vec<Row> = vec![
            row(&[("propertyName", "manifest.version"), ("value", "1.0")]),
            row(&[("propertyName", "oneroster.version"), ("value", "1.2")]),
        ];
        for f in [
            "academicSessions",
            "categories",
            "classes",
            "classResources",
            "courses",
            "courseResources",
            "demographics",
            "enrollments",
            "lineItemLearningObjectiveIds",
            "lineItems",
            "lineItemScoreScales",
            "orgs",
            "resources",
            "resultLearningObjectiveIds",
            "results",
            "resultScoreScales",
            "roles",
            "scoreScales",
            "userProfiles",
            "userResources",
            "users",
        ] {
            let written = FILES.iter().any(|(n, _)| n.trim_end_matches(".csv") == f);
            rows.push(row(&[
                ("propertyName", &format!("file.{f}")),
                ("value", if written { "bulk" } else { "absent" }),
            ]));
        }
        rows.push(row(&[
            ("propertyName", "source.systemName"),
            ("value", &self.cfg.system_name),
        ]));
        rows.push(row(&[("propertyName", "source.systemCode"), ("value", "")]));
        let refs: Vec<&Row> = rows.iter().collect();
        write_csv(&["propertyName", "value"], &refs).map_err(self.parse_err("write"))
    }

    fn managed(&self, tables: &Tables, read_at: DateTime<Utc>) -> Vec<ManagedEntry> {
        let empty = BTreeMap::new();
        let t = |f: &str| tables.get(f).unwrap_or(&empty);
        // Each user's rows of roles.csv and enrollments.csv, found in one pass over each
        // file (not one pass per user: that was quadratic in the number of users).
        let roles_of = rows_by_user(t(ROLES));
        let enrollments_of = rows_by_user(t(ENROLLMENTS));
        let mut out = Vec::new();
        for (id, u) in t(USERS) {
            let Ok(person) = id.parse::<PersonId>() else {
                continue;
            };
            let mut attributes: BTreeMap<String, Vec<String>> = BTreeMap::new();
            let mut add = |file: &str, r: &Row| {
                let stem = file.trim_end_matches(".csv");
                for (c, v) in r {
                    attributes
                        .entry(format!("{stem}.{c}"))
                        .or_default()
                        .push(v.clone());
                }
            };
            add(USERS, u);
            let mut groups = BTreeSet::new();
            let mut orgs = BTreeSet::new();
            let mut related = false;
            for r in roles_of.get(id.as_str()).into_iter().flatten().copied() {
                add(ROLES, r);
                if let Some(o) = r.get("orgSourcedId") {
                    orgs.insert(o.clone());
                }
                related |= r
                    .get("role")
                    .is_some_and(|role| RELATED_ROLES.contains(&role.as_str()));
            }
            // A guardian is in no class (enrollments are for class members); it belongs
            // to the classes of the pupils it is related to.
            if related {
                for a in names::ids(u.get(AGENTS).map(String::as_str)) {
                    for r in enrollments_of.get(a.as_str()).into_iter().flatten() {
                        groups.extend(r.get("classSourcedId").and_then(|c| GroupId::new(c).ok()));
                    }
                }
            }
            let mut classes = BTreeSet::new();
            for r in enrollments_of
                .get(id.as_str())
                .into_iter()
                .flatten()
                .copied()
            {
                add(ENROLLMENTS, r);
                if let Some(c) = r.get("classSourcedId") {
                    classes.insert(c.clone());
                }
            }
            let mut courses = BTreeSet::new();
            let mut terms = BTreeSet::new();
            for c in &classes {
                if let Some(r) = t(CLASSES).get(c) {
                    add(CLASSES, r);
                    courses.extend(r.get("courseSourcedId").cloned());
                    terms.extend(r.get("termSourcedIds").cloned());
                }
                groups.extend(GroupId::new(c).ok());
            }
            for c in &courses {
                if let Some(r) = t(COURSES).get(c) {
                    add(COURSES, r);
                }
            }
            for s in &terms {
                if let Some(r) = t(SESSIONS).get(s) {
                    add(SESSIONS, r);
                }
            }
            for o in &orgs {
                if let Some(r) = t(ORGS).get(o) {
                    add(ORGS, r);
                }
                groups.extend(GroupId::new(o).ok());
            }
            out.push(ManagedEntry {
                target: self.cfg.name.clone(),
                person,
                entry_id: id.clone(),
                enabled: u.get("enabledUser").map(String::as_str) == Some("true"),
                given_name: u.get("givenName").cloned(),
                family_name: u.get("familyName").cloned(),
                groups,
                attributes,
                modified_at: u
                    .get("dateLastModified")
                    .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                    .map(|d| d.with_timezone(&Utc)),
                read_at,
            });
        }
        out
    }
}

/// The rows of a table by their `userSourcedId`, each user's in table order.
fn rows_by_user(rows: &BTreeMap<String, Row>) -> BTreeMap<&str, Vec<&Row>> {
    let mut out: BTreeMap<&str, Vec<&Row>> = BTreeMap::new();
    for r in rows.values() {
        if let Some(u) = r.get("userSourcedId") {
            out.entry(u.as_str()).or_default().push(r);
        }
    }
    out
}

/// The 1.2 roles of a user related to a pupil rather than enrolled in its classes.
const RELATED_ROLES: &[&str] = &["guardian", "parent", "relative"];

/// Drops classes without enrollments, courses without classes, orgs without roles or
/// classes, rows of users who are gone, and relations (`agentSourcedIds`) to them.
fn gc(tables: &mut Tables) {
    if let Some(t) = tables.get_mut(USERS) {
        names::drop_dangling(t);
    }
    let users: BTreeSet<String> = tables
        .get(USERS)
        .map(|t| t.keys().cloned().collect())
        .unwrap_or_default();
    for f in [ROLES, ENROLLMENTS] {
        if let Some(t) = tables.get_mut(f) {
            t.retain(|_, r| r.get("userSourcedId").is_some_and(|u| users.contains(u)));
        }
    }
    let col = |tables: &Tables, f: &str, c: &str| -> BTreeSet<String> {
        tables
            .get(f)
            .map(|t| t.values().filter_map(|r| r.get(c).cloned()).collect())
            .unwrap_or_default()
    };
    let used_classes = col(tables, ENROLLMENTS, "classSourcedId");
    if let Some(t) = tables.get_mut(CLASSES) {
        t.retain(|id, _| used_classes.contains(id));
    }
    let used_courses = col(tables, CLASSES, "courseSourcedId");
    if let Some(t) = tables.get_mut(COURSES) {
        t.retain(|id, _| used_courses.contains(id));
    }
    let mut used_orgs = col(tables, ROLES, "orgSourcedId");
    used_orgs.extend(col(tables, CLASSES, "schoolSourcedId"));
    if let Some(t) = tables.get_mut(ORGS) {
        t.retain(|id, _| used_orgs.contains(id));
    }
}

#[async_trait]
impl Target for OneRosterTarget {
    fn name(&self) -> &TargetName {
        &self.cfg.name
    }

    fn render(&self, p: &FictitiousPerson) -> Result<OutboundRecord, TargetError> {
        let cfg_err = |_| TargetError::Config {
            target: self.cfg.name.clone(),
            what: "a template cannot be rendered for this person",
        };
        let id = p.id.to_string();
        let unit = p.school_unit.id.as_str();
        let year = &self.cfg.school_year;
        let role = match p.kind {
            PersonKind::Student => "student",
            PersonKind::Guardian => "guardian",
        };
        let username = self.cfg.username.render(p, Fold::Ascii).map_err(cfg_err)?;
        let email = match &self.cfg.email {
            Some(t) => t.render(p, Fold::Ascii).map_err(cfg_err)?,
            None => String::new(),
        };
        let identifier = match (&p.number, self.cfg.number_in_identifier) {
            (Some(n), true) => n.canonical().to_string(),
            _ => String::new(),
        };
        // The related users, in one order (see the module's notes).
        let agents: BTreeSet<String> = p
            .agents
            .iter()
            .filter(|a| **a != p.id)
            .map(PersonId::to_string)
            .collect();
        // OneRoster's grade codes (CEDS): förskoleklass is kindergarten, the years
        // two digits.
        let grades = match (p.kind, p.grade) {
            (PersonKind::Student, Some(0)) => "KG".to_owned(),
            (PersonKind::Student, Some(y)) => format!("{y:02}"),
            _ => String::new(),
        };
        let mut rows = vec![
            (
                USERS.to_string(),
                row(&[
                    ("sourcedId", &id),
                    ("enabledUser", "true"),
                    ("username", &username),
                    ("givenName", &p.given_name),
                    ("familyName", &p.family_name),
                    ("identifier", &identifier),
                    ("email", &email),
                    (AGENTS, &names::list(&agents)),
                    ("grades", &grades),
                    ("primaryOrgSourcedId", unit),
                ]),
            ),
            (
                ROLES.to_string(),
                row(&[
                    ("sourcedId", &format!("{id}-role")),
                    ("userSourcedId", &id),
                    ("roleType", "primary"),
                    ("role", role),
                    ("orgSourcedId", unit),
                ]),
            ),
            (
                ORGS.to_string(),
                row(&[
                    ("sourcedId", unit),
                    ("name", &p.school_unit.name),
                    ("type", "school"),
                ]),
            ),
        ];
        // Only a pupil is enrolled: the 1.2 enrollment roles are administrator, proctor,
        // student and teacher. A guardian is in its pupil's classes through the relation.
        let classes: &[crate::model::Group] = match p.kind {
            PersonKind::Student => &p.groups,
            PersonKind::Guardian => &[],
        };
        if !classes.is_empty() {
            rows.push((
                SESSIONS.to_string(),
                row(&[
                    ("sourcedId", year.id.as_str()),
                    ("title", &year.title),
                    ("type", "schoolYear"),
                    ("startDate", &year.start.to_string()),
                    ("endDate", &year.end.to_string()),
                    ("schoolYear", &year.year.to_string()),
                ]),
            ));
        }
        for g in classes {
            let course = format!("course-{}", g.id);
            rows.push((
                COURSES.to_string(),
                row(&[
                    ("sourcedId", &course),
                    ("schoolYearSourcedId", year.id.as_str()),
                    ("title", &g.name),
                    ("orgSourcedId", unit),
                ]),
            ));
            rows.push((
                CLASSES.to_string(),
                row(&[
                    ("sourcedId", g.id.as_str()),
                    ("title", &g.name),
                    ("courseSourcedId", &course),
                    ("classType", "homeroom"),
                    ("schoolSourcedId", unit),
                    ("termSourcedIds", year.id.as_str()),
                ]),
            ));
            rows.push((
                ENROLLMENTS.to_string(),
                row(&[
                    ("sourcedId", &format!("{id}-{}", g.id)),
                    ("classSourcedId", g.id.as_str()),
                    ("schoolSourcedId", unit),
                    ("userSourcedId", &id),
                    ("role", role),
                    ("primary", "false"),
                ]),
            ));
        }
        Ok(OutboundRecord {
            target: self.cfg.name.clone(),
            person: p.id,
            payload: Payload::Csv { rows },
        })
    }

    async fn upsert(
        &self,
        guard: &EgressGuard,
        record: Cleared,
        at: DateTime<Utc>,
    ) -> Result<Applied, TargetError> {
        let rec = record.record();
        if rec.target != self.cfg.name {
            return Err(TargetError::WrongTarget {
                target: self.cfg.name.clone(),
                other: rec.target.clone(),
            });
        }
        let Payload::Csv { rows } = &rec.payload else {
            return Err(TargetError::Config {
                target: self.cfg.name.clone(),
                what: "the record is not a CSV record",
            });
        };
        let _g = self.lock.lock().await;
        let mut tables = self.read_tables()?;
        let id = rec.person.to_string();
        let existed = tables.get(USERS).is_some_and(|t| t.contains_key(&id));
        for f in [ROLES, ENROLLMENTS] {
            if let Some(t) = tables.get_mut(f) {
                t.retain(|_, r| r.get("userSourcedId") != Some(&id));
            }
        }
        let stamp = fmt_time(at);
        for (file, r) in rows {
            let mut r = r.clone();
            r.insert("dateLastModified".to_string(), stamp.clone());
            if file == USERS {
                self.settle_names(&tables, &id, &mut r)?;
            }
            let sid = r.get("sourcedId").cloned().unwrap_or_default();
            tables.entry(file.clone()).or_default().insert(sid, r);
        }
        if let Some(users) = tables.get_mut(USERS) {
            names::link(users, &id, |u| u.parse::<PersonId>().is_ok());
        }
        // Every row is checked again here, the numbered names and the relations too.
        self.write_tables(guard, &mut tables, at)?;
        Ok(if existed {
            Applied::Updated
        } else {
            Applied::Created
        })
    }

    async fn disable(
        &self,
        guard: &EgressGuard,
        person: &PersonId,
        at: DateTime<Utc>,
    ) -> Result<(), TargetError> {
        let _g = self.lock.lock().await;
        let mut tables = self.read_tables()?;
        let id = person.to_string();
        let Some(u) = tables.get_mut(USERS).and_then(|t| t.get_mut(&id)) else {
            return Err(TargetError::NotFound {
                target: self.cfg.name.clone(),
                person: *person,
            });
        };
        u.insert("enabledUser".to_string(), "false".to_string());
        u.insert("dateLastModified".to_string(), fmt_time(at));
        self.write_tables(guard, &mut tables, at)
    }

    async fn delete(
        &self,
        guard: &EgressGuard,
        person: &PersonId,
        at: DateTime<Utc>,
    ) -> Result<(), TargetError> {
        let _g = self.lock.lock().await;
        let mut tables = self.read_tables()?;
        let id = person.to_string();
        let removed = tables.get_mut(USERS).and_then(|t| t.remove(&id)).is_some();
        if removed {
            self.write_tables(guard, &mut tables, at)?;
        }
        Ok(())
    }

    async fn read_one(
        &self,
        person: &PersonId,
        read_at: DateTime<Utc>,
    ) -> Result<Option<ManagedEntry>, TargetError> {
        let _g = self.lock.lock().await;
        let tables = self.read_tables()?;
        Ok(self
            .managed(&tables, read_at)
            .into_iter()
            .find(|e| e.person == *person))
    }

    async fn read_managed(&self, read_at: DateTime<Utc>) -> Result<Vec<ManagedEntry>, TargetError> {
        let _g = self.lock.lock().await;
        let tables = self.read_tables()?;
        Ok(self.managed(&tables, read_at))
    }

    /// Every row of every file in the folder, whatever its name, extension or columns
    /// (a copy left beside the roster, `users.csv.bak` or `export.txt`, is read too).
    async fn read_everything(&self) -> Result<Vec<ScannedEntry>, TargetError> {
        let _g = self.lock.lock().await;
        let mut out = Vec::new();
        for path in self.files_to_scan()? {
            let file = path
                .file_name()
                .and_then(|f| f.to_str())
                .unwrap_or("?")
                .to_string();
            let bytes = read_limited(&path).map_err(self.io("scan"))?;
            scan_csv_file(&self.cfg.name, &file, &bytes, &mut out)
                .map_err(self.parse_err("scan"))?;
        }
        Ok(out)
    }

    async fn scan_scope(&self) -> Result<Vec<String>, TargetError> {
        let _g = self.lock.lock().await;
        Ok(self
            .files_to_scan()?
            .iter()
            .filter_map(|p| p.file_name().and_then(|f| f.to_str()).map(str::to_owned))
            .collect())
    }

    /// The folder's parent exists (or can be made) and is writable, and the folder is
    /// absent, empty, or the link Fiktiv swaps; the files it holds parse.
    /// A roster file has no schema: it takes a number of any scheme as text in
    /// `identifier`. Said as a `number` step when the number is written, with what is
    /// not checked: whether the platform importing the file accepts it.
    async fn probe_number(
        &self,
        _guard: &EgressGuard,
        _number: &crate::model::FictitiousNumber,
        d: &mut crate::diagnose::Diagnosis,
    ) {
        if self.cfg.number_in_identifier {
            d.pass(
                "number",
                crate::detail!(
                    "roster-number",
                    "the roster file takes a number of the scheme in force as text in \
                     identifier (a CSV file has no schema); whether the platform that imports \
                     it accepts the scheme is not checked here: import one test roster there"
                ),
            );
        }
    }

    async fn diagnose(
        &self,
        _guard: &EgressGuard,
        _at: DateTime<Utc>,
    ) -> crate::diagnose::Diagnosis {
        use crate::detail;
        use crate::diagnose::{Detail, Diagnosis, Problem};
        let mut d = Diagnosis::new(self.cfg.name.clone());
        let dir = &self.cfg.dir;
        let shown = dir.display().to_string();
        let parent = dir
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let problem = |k: std::io::ErrorKind| match k {
            std::io::ErrorKind::PermissionDenied => Problem::PermissionDenied,
            std::io::ErrorKind::NotFound => Problem::MissingBase,
            _ => Problem::Unexpected,
        };
        if let Err(e) = std::fs::create_dir_all(parent) {
            d.fail(
                "folder",
                problem(e.kind()),
                detail!(
                    "parent-not-made",
                    "the parent folder of {folder} cannot be made ({why})",
                    folder = shown,
                    why = format!("{:?}", e.kind())
                ),
            );
            return d;
        }
        let probe = parent.join(format!(".fiktiv-probe-{}", uuid::Uuid::new_v4().simple()));
        match std::fs::write(&probe, b"probe") {
            Ok(()) => {
                let _ = std::fs::remove_file(&probe);
                d.pass(
                    "write",
                    detail!(
                        "parent-writable",
                        "the parent folder of {folder} is writable",
                        folder = shown
                    ),
                );
            }
            Err(e) => {
                d.fail(
                    "write",
                    problem(e.kind()),
                    detail!(
                        "parent-not-writable",
                        "the parent folder of {folder} is not writable ({why})",
                        folder = shown,
                        why = format!("{:?}", e.kind())
                    ),
                );
                return d;
            }
        }
        match std::fs::symlink_metadata(dir) {
            Ok(m) if m.file_type().is_symlink() => d.pass(
                "folder",
                detail!(
                    "folder-link",
                    "{folder} is the link Fiktiv swaps",
                    folder = shown
                ),
            ),
            Ok(m)
                if m.is_dir()
                    && std::fs::read_dir(dir)
                        .map(|mut r| r.next().is_none())
                        .unwrap_or(false) =>
            {
                d.pass(
                    "folder",
                    detail!(
                        "folder-empty",
                        "{folder} is an empty folder; Fiktiv takes it over",
                        folder = shown
                    ),
                )
            }
            Ok(_) => {
                d.fail(
                    "folder",
                    Problem::Configuration,
                    detail!(
                        "folder-foreign",
                        "{folder} exists, is not empty and is not a link Fiktiv made",
                        folder = shown
                    ),
                );
                return d;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => d.pass(
                "folder",
                detail!(
                    "folder-new",
                    "{folder} will be made on the first write",
                    folder = shown
                ),
            ),
            Err(e) => {
                d.fail(
                    "folder",
                    problem(e.kind()),
                    detail!(
                        "folder-unreadable",
                        "{folder} cannot be read ({why})",
                        folder = shown,
                        why = format!("{:?}", e.kind())
                    ),
                );
                return d;
            }
        }
        let _g = self.lock.lock().await;
        match self.read_tables() {
            Ok(t) => d.pass(
                "files",
                detail!(
                    "roster-parses",
                    "the roster files parse ({n} users)",
                    n = t.get(USERS).map(BTreeMap::len).unwrap_or(0)
                ),
            ),
            Err(e) => d.fail("files", Problem::Unexpected, Detail::error(e)),
        }
        d
    }

    /// A username or address is this target's when it is the rendered one or that
    /// numbered by the collision rule; the related users are a set.
    fn value_matches(&self, name: &str, expected: &str, actual: &str) -> bool {
        match name {
            "users.username" | "users.email" => names::suffix_of(expected, actual).is_some(),
            "users.agentSourcedIds" => names::ids(Some(expected)) == names::ids(Some(actual)),
            _ => expected == actual,
        }
    }

    fn volatile_attributes(&self) -> &'static [&'static str] {
        &[
            "users.dateLastModified",
            "roles.dateLastModified",
            "orgs.dateLastModified",
            "academicSessions.dateLastModified",
            "courses.dateLastModified",
            "classes.dateLastModified",
            "enrollments.dateLastModified",
        ]
    }
}
