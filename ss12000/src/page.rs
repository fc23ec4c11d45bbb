//! One page of an SS 12000 list answer, read under the rules for untrusted input.
//!
//! A hub is trusted to be the school administration system, not to be well-formed: a
//! page is refused as a whole (nothing of it is used) when it is larger than
//! [`MAX_PAGE_BYTES`], holds more than [`MAX_PAGE_ITEMS`] items, is not JSON of the
//! specification's shape, or holds an item that is not a valid entity of its resource.
//! A person without `securityMarking` is refused too: Fiktiv cannot tell whether such a
//! person is protected, so it fails closed.
//!
//! No error names a value from the page: positions, resource names and the
//! specification's field names only, never a name, a number or an id.

use serde::Deserialize;
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::model::{Activity, Deleted, Duty, Entity, Group, Organisation, Person};

/// The largest answer read (bytes); a longer one is refused before it is parsed.
pub const MAX_PAGE_BYTES: usize = 32 * 1024 * 1024;
/// The most items one page may hold, whatever `limit` asked for.
pub const MAX_PAGE_ITEMS: usize = 10_000;
/// The longest `pageToken` followed.
pub const MAX_TOKEN_BYTES: usize = 2048;

/// The resources Fiktiv reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    Organisations,
    Persons,
    Groups,
    Duties,
    Activities,
    DeletedEntities,
}

impl Resource {
    /// The path below the hub's base URL.
    pub fn path(self) -> &'static str {
        match self {
            Self::Organisations => "/organisations",
            Self::Persons => "/persons",
            Self::Groups => "/groups",
            Self::Duties => "/duties",
            Self::Activities => "/activities",
            Self::DeletedEntities => "/deletedEntities",
        }
    }
}

/// Why a page was refused. Never holds a value read from the page.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("{resource} answered more than {MAX_PAGE_BYTES} bytes")]
    TooLarge { resource: &'static str },
    #[error("{resource} answered a page of more than {MAX_PAGE_ITEMS} items")]
    TooManyItems { resource: &'static str },
    #[error("{resource} did not answer JSON of the specification's shape ({what}, line {line}, column {column})")]
    Shape {
        resource: &'static str,
        what: &'static str,
        line: usize,
        column: usize,
    },
    #[error("{resource}: item {index} of the page is not a valid entity ({what})")]
    Item {
        resource: &'static str,
        index: usize,
        what: String,
    },
    #[error("{resource}: item {index} of the page has no securityMarking; Fiktiv cannot tell whether the person is protected, so it reads nothing of the page (give Fiktiv's client the securityMarking field)")]
    NoMarking {
        resource: &'static str,
        index: usize,
    },
    #[error("{resource} answered a pageToken longer than {MAX_TOKEN_BYTES} bytes or with control characters")]
    BadToken { resource: &'static str },
}

/// One page: its items and the token of the next page (`None`: the last page).
#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<Entity<T>>,
    pub next: Option<String>,
}

#[derive(Deserialize)]
struct ListPage<'a> {
    #[serde(borrow)]
    data: Vec<&'a RawValue>,
    #[serde(rename = "pageToken", default)]
    page_token: Option<String>,
}

#[derive(Deserialize)]
struct DeletedPage {
    data: DeletedData,
    #[serde(rename = "pageToken", default)]
    page_token: Option<String>,
}

#[derive(Deserialize, Default)]
struct DeletedData {
    #[serde(default)]
    organisations: Vec<Uuid>,
    #[serde(default)]
    persons: Vec<Uuid>,
    #[serde(default)]
    groups: Vec<Uuid>,
    #[serde(default)]
    duties: Vec<Uuid>,
    /// The specification spells this key `activitites`.
    #[serde(default, rename = "activitites")]
    activities: Vec<Uuid>,
}

/// What serde's message may say without echoing a value: only the name of a missing
/// field (a name of the specification, from this crate's types).
fn what_of(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    if let Some(rest) = msg.strip_prefix("missing field `") {
        if let Some(field) = rest.split('`').next() {
            return format!("the required field {field} is missing");
        }
    }
    match e.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
            "not JSON".to_owned()
        }
        _ => format!(
            "a field has the wrong type or a value the specification does not allow, at column {}",
            e.column()
        ),
    }
}

fn shape(resource: Resource, e: &serde_json::Error) -> WireError {
    WireError::Shape {
        resource: resource.path(),
        what: match e.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => "not JSON",
            _ => "no data list",
        },
        line: e.line(),
        column: e.column(),
    }
}

/// A page is a JSON object (`{"data": [...], "pageToken": ...}`). serde would also take
/// a JSON array for the page's struct (its fields in order: `[[...]]` read as a page of
/// the inner list), a shape the specification does not have and the leak scan's reader
/// of the same answers refuses; it is refused here too.
fn object_page(resource: Resource, body: &[u8]) -> Result<(), WireError> {
    let (mut line, mut column) = (1, 1);
    for &b in body {
        match b {
            b'{' => return Ok(()),
            b'\n' => {
                line += 1;
                column = 1;
            }
            b' ' | b'\t' | b'\r' => column += 1,
            _ => break,
        }
    }
    Err(WireError::Shape {
        resource: resource.path(),
        what: "not an object",
        line,
        column,
    })
}

fn check_token(resource: Resource, token: Option<String>) -> Result<Option<String>, WireError> {
    match token {
        Some(t) if t.len() > MAX_TOKEN_BYTES || t.chars().any(char::is_control) => {
            Err(WireError::BadToken {
                resource: resource.path(),
            })
        }
        // An empty token is no token: a hub that says "" means the end.
        Some(t) if t.is_empty() => Ok(None),
        t => Ok(t),
    }
}

/// The entity types a list page can hold.
pub trait ListItem: for<'de> Deserialize<'de> {
    const RESOURCE: Resource;
    /// A check beyond the types, per item (for persons: the marking is there).
    fn check(&self, _index: usize) -> Result<(), WireError> {
        Ok(())
    }
}

impl ListItem for Organisation {
    const RESOURCE: Resource = Resource::Organisations;
}

impl ListItem for Group {
    const RESOURCE: Resource = Resource::Groups;
}

impl ListItem for Duty {
    const RESOURCE: Resource = Resource::Duties;
}

impl ListItem for Activity {
    const RESOURCE: Resource = Resource::Activities;
}

impl ListItem for Person {
    const RESOURCE: Resource = Resource::Persons;
    fn check(&self, index: usize) -> Result<(), WireError> {
        if self.security_marking.is_none() {
            return Err(WireError::NoMarking {
                resource: Self::RESOURCE.path(),
                index,
            });
        }
        Ok(())
    }
}

/// Reads one list page of `T`.
pub fn parse_page<T: ListItem>(body: &[u8]) -> Result<Page<T>, WireError> {
    let resource = T::RESOURCE;
    if body.len() > MAX_PAGE_BYTES {
        return Err(WireError::TooLarge {
            resource: resource.path(),
        });
    }
    object_page(resource, body)?;
    let page: ListPage<'_> = serde_json::from_slice(body).map_err(|e| shape(resource, &e))?;
    if page.data.len() > MAX_PAGE_ITEMS {
        return Err(WireError::TooManyItems {
            resource: resource.path(),
        });
    }
    let next = check_token(resource, page.page_token)?;
    let mut items = Vec::with_capacity(page.data.len());
    for (index, raw) in page.data.into_iter().enumerate() {
        let value: T = serde_json::from_str(raw.get()).map_err(|e| WireError::Item {
            resource: resource.path(),
            index,
            what: what_of(&e),
        })?;
        value.check(index)?;
        items.push(Entity {
            value,
            raw: raw.to_owned(),
        });
    }
    Ok(Page { items, next })
}

/// Reads one page of `/deletedEntities`, keeping the resources Fiktiv reads.
pub fn parse_deleted(body: &[u8]) -> Result<(Deleted, Option<String>), WireError> {
    let resource = Resource::DeletedEntities;
    if body.len() > MAX_PAGE_BYTES {
        return Err(WireError::TooLarge {
            resource: resource.path(),
        });
    }
    object_page(resource, body)?;
    let page: DeletedPage = serde_json::from_slice(body).map_err(|e| shape(resource, &e))?;
    let d = page.data;
    if d.organisations.len() + d.persons.len() + d.groups.len() + d.duties.len() > MAX_PAGE_ITEMS {
        return Err(WireError::TooManyItems {
            resource: resource.path(),
        });
    }
    let next = check_token(resource, page.page_token)?;
    Ok((
        Deleted {
            organisations: d.organisations,
            persons: d.persons,
            groups: d.groups,
            duties: d.duties,
            activities: d.activities,
        },
        next,
    ))
}
