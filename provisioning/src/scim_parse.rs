//! Pure parsing of what a SCIM 2.0 service returns (RFC 7643/7644): users, groups,
//! list responses, `Retry-After`. No panics on any input; fuzz targets call these.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::model::TargetName;
use crate::record::{flatten_json, ScannedEntry};
use crate::target::ParseError;

/// A User resource as returned.
#[derive(Clone, PartialEq)]
pub struct ScimUser {
    pub id: String,
    pub external_id: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub active: bool,
    /// `meta.version` (the ETag), if the service gives one.
    pub version: Option<String>,
    pub last_modified: Option<DateTime<Utc>>,
    pub raw: Value,
}

impl std::fmt::Debug for ScimUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScimUser")
            .field("id", &self.id)
            .field("external_id", &self.external_id)
            .field("active", &self.active)
            .finish()
    }
}

/// A Group resource as returned.
#[derive(Debug, Clone, PartialEq)]
pub struct ScimGroup {
    pub id: String,
    pub external_id: Option<String>,
    /// Member ids (`members[].value`).
    pub members: Vec<String>,
    pub version: Option<String>,
    pub raw: Value,
}

/// One page of a list response.
#[derive(Debug, Clone, PartialEq)]
pub struct ListPage {
    pub total_results: u64,
    pub resources: Vec<Value>,
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str()
}

/// Parses JSON bytes (size is bounded by the caller).
pub fn parse_json(bytes: &[u8]) -> Result<Value, ParseError> {
    serde_json::from_slice(bytes).map_err(|_| ParseError("SCIM JSON"))
}

/// A User from its JSON.
pub fn parse_user(v: Value) -> Result<ScimUser, ParseError> {
    let id = str_at(&v, &["id"])
        .ok_or(ParseError("SCIM user (no id)"))?
        .to_string();
    let active = match v.get("active") {
        None => true, // RFC 7643: absent means the service does not say; treat as active
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        Some(_) => return Err(ParseError("SCIM user (active)")),
    };
    Ok(ScimUser {
        id,
        external_id: str_at(&v, &["externalId"]).map(str::to_string),
        given_name: str_at(&v, &["name", "givenName"]).map(str::to_string),
        family_name: str_at(&v, &["name", "familyName"]).map(str::to_string),
        active,
        version: str_at(&v, &["meta", "version"]).map(str::to_string),
        last_modified: str_at(&v, &["meta", "lastModified"])
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|d| d.with_timezone(&Utc)),
        raw: v,
    })
}

/// A Group from its JSON.
pub fn parse_group(v: Value) -> Result<ScimGroup, ParseError> {
    let id = str_at(&v, &["id"])
        .ok_or(ParseError("SCIM group (no id)"))?
        .to_string();
    let members = match v.get("members") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(ms)) => ms
            .iter()
            .filter_map(|m| m.get("value").and_then(Value::as_str).map(str::to_string))
            .collect(),
        Some(_) => return Err(ParseError("SCIM group (members)")),
    };
    Ok(ScimGroup {
        id,
        external_id: str_at(&v, &["externalId"]).map(str::to_string),
        members,
        version: str_at(&v, &["meta", "version"]).map(str::to_string),
        raw: v,
    })
}

/// A ListResponse page.
/// The endpoints of a `/ResourceTypes` answer (RFC 7644 4): each resource type's
/// `endpoint` (`/Users`), without its slash. An endpoint that is not one path segment of
/// letters, digits, `-` and `_` is refused (it would be sent back as a path). Pure, for
/// fuzzing.
pub fn resource_endpoints(bytes: &[u8]) -> Result<Vec<String>, ParseError> {
    let v = parse_json(bytes)?;
    let list: Vec<Value> = match v.get("Resources") {
        Some(Value::Array(a)) => a.clone(),
        None | Some(Value::Null) => match v {
            // Some servers answer a plain array.
            Value::Array(a) => a,
            _ => Vec::new(),
        },
        Some(_) => return Err(ParseError("SCIM resource types")),
    };
    let mut out: Vec<String> = Vec::new();
    for r in &list {
        let Some(e) = str_at(r, &["endpoint"]) else {
            return Err(ParseError("SCIM resource types (endpoint)"));
        };
        let name = e.strip_prefix('/').unwrap_or(e);
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return Err(ParseError("SCIM resource types (endpoint)"));
        }
        if !out.iter().any(|o| o == name) {
            out.push(name.to_owned());
        }
    }
    Ok(out)
}

pub fn parse_list(bytes: &[u8]) -> Result<ListPage, ParseError> {
    let v = parse_json(bytes)?;
    let total_results = v
        .get("totalResults")
        .and_then(Value::as_u64)
        .ok_or(ParseError("SCIM list (totalResults)"))?;
    let resources = match v.get("Resources") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.clone(),
        Some(_) => return Err(ParseError("SCIM list (Resources)")),
    };
    Ok(ListPage {
        total_results,
        resources,
    })
}

/// `Retry-After` as a wait: delta-seconds, or an HTTP-date taken relative to the
/// response's own `Date` header (the server's clock, so no local clock is read).
/// `None` when it cannot be understood.
pub fn parse_retry_after(value: &str, date_header: Option<&str>) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = DateTime::parse_from_rfc2822(v).ok()?;
    let now = DateTime::parse_from_rfc2822(date_header?.trim()).ok()?;
    let secs = (at - now).num_seconds().max(0);
    Some(Duration::from_secs(u64::try_from(secs).ok()?))
}

/// Every attribute of a resource (flattened by dotted path) as a scan entry. Pure.
pub fn scanned_from_scim(target: &TargetName, endpoint: &str, v: &Value, n: usize) -> ScannedEntry {
    let locator = match str_at(v, &["id"]) {
        Some(id) => format!("{endpoint}/{id}"),
        None => format!("{endpoint} #{}", n + 1),
    };
    let mut s = ScannedEntry::new(target.clone(), locator);
    s.label_attribute = Some(
        if endpoint == "Groups" {
            "displayName"
        } else {
            "userName"
        }
        .to_string(),
    );
    let mut flat = Vec::new();
    flatten_json("", v, &mut flat);
    for (k, val) in flat {
        s.push(&k, &val);
    }
    s
}

/// Flattened attributes of a resource, for the account check.
pub fn attributes(v: &Value) -> BTreeMap<String, Vec<String>> {
    let mut flat = Vec::new();
    flatten_json("", v, &mut flat);
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, val) in flat {
        out.entry(k).or_default().push(val);
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use serde_json::json;

    #[test]
    fn resource_endpoints_are_safe_path_segments() {
        let body = json!({"totalResults": 3, "Resources": [
            {"id": "User", "endpoint": "/Users"},
            {"id": "Group", "endpoint": "/Groups"},
            {"id": "Note", "endpoint": "/Notes"},
            {"id": "Again", "endpoint": "/Users"}
        ]});
        assert_eq!(
            resource_endpoints(body.to_string().as_bytes()).unwrap(),
            ["Users", "Groups", "Notes"]
        );
        // A plain array, as some servers answer.
        let plain = json!([{"endpoint": "/Users"}]);
        assert_eq!(
            resource_endpoints(plain.to_string().as_bytes()).unwrap(),
            ["Users"]
        );
        // An endpoint that would change the path, or none: refused.
        for bad in ["/../Users", "/Users?x=1", "/a/b", "/", "", "/Ü"] {
            let body = json!({"Resources": [{"endpoint": bad}]});
            assert!(
                resource_endpoints(body.to_string().as_bytes()).is_err(),
                "{bad}"
            );
        }
        let none = json!({"Resources": [{"id": "x"}]});
        assert!(resource_endpoints(none.to_string().as_bytes()).is_err());
    }

    #[test]
    fn users_groups_lists() {
        let u = parse_user(json!({"id": "1", "externalId": "e", "name": {"givenName": "A"},
            "active": false, "meta": {"version": "W/\"x\"", "lastModified": "2025-01-02T03:04:05Z"}}))
        .unwrap();
        assert!(!u.active);
        assert_eq!(u.version.as_deref(), Some("W/\"x\""));
        assert!(u.last_modified.is_some());
        assert!(parse_user(json!({"active": true})).is_err());
        assert!(parse_user(json!({"id": "1", "active": 3})).is_err());
        let g = parse_group(json!({"id": "g", "members": [{"value": "1"}, {"x": 2}]})).unwrap();
        assert_eq!(g.members, vec!["1"]);
        let l = parse_list(br#"{"totalResults": 3, "Resources": [{"id": "1"}]}"#).unwrap();
        assert_eq!((l.total_results, l.resources.len()), (3, 1));
        assert!(parse_list(b"{").is_err());
        assert!(parse_list(br#"{"Resources": []}"#).is_err());
    }

    #[test]
    fn retry_after() {
        assert_eq!(parse_retry_after(" 7 ", None), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after(
                "Wed, 21 Oct 2015 07:28:30 GMT",
                Some("Wed, 21 Oct 2015 07:28:00 GMT")
            ),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", None),
            None
        );
        assert_eq!(parse_retry_after("soon", None), None);
    }
}
