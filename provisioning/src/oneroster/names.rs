//! Usernames and email addresses made unique within `users.csv`, the way a municipality
//! makes them unique for everyone, and the relations between users (`agentSourcedIds`).
//! Pure, so that the rules can be tested without a folder.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::Row;

/// The `users.csv` column of the related users.
pub(super) const AGENTS: &str = "agentSourcedIds";

/// What is done when another row of `users.csv` (Fiktiv's or anyone's) already has the
/// username, or the email address, a template gives. Compared without regard to case.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Collision {
    /// A number is appended (before the `@` of an address), counting up from the
    /// target's `collision_start`: `anna.svensson2`, `anna.svensson3`.
    #[default]
    Number,
    /// The write fails: the municipality settles the name by hand.
    Refuse,
}

/// `base` with the number `n`: before the last `@` when there is one, at the end
/// otherwise (`anna.svensson2`, `anna.svensson2@skola.example`).
pub(super) fn numbered(base: &str, n: u64) -> String {
    match base.rfind('@') {
        Some(at) => {
            let (local, domain) = base.split_at(at);
            format!("{local}{n}{domain}")
        }
        None => format!("{base}{n}"),
    }
}

/// How `value` was made from `base`: `Some(None)` when it is `base` itself,
/// `Some(Some(n))` when it is `base` numbered with `n` (see [`numbered`]), `None` when it
/// is neither.
pub(super) fn suffix_of(base: &str, value: &str) -> Option<Option<u64>> {
    if value == base {
        return Some(None);
    }
    let (local, domain) = match base.rfind('@') {
        Some(at) => base.split_at(at),
        None => (base, ""),
    };
    let digits = value.strip_prefix(local)?.strip_suffix(domain)?;
    let canonical = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    if !canonical {
        return None;
    }
    digits.parse().ok().map(Some)
}

/// The value of `column` for the user `id`, made from the rendered `base`:
///
/// 1. the user's current value, when it was made from `base` and no other row has it
///    (a person keeps the name it was first given: one who arrives later with the same
///    name is the one who gets a number);
/// 2. `base` numbered with `prefer`, when given and free (an address takes the number
///    its username took);
/// 3. `base`, when free;
/// 4. under [`Collision::Number`], the first free of `base` numbered `start`,
///    `start + 1`, and so on.
///
/// Returns the value and its number, or `None` when the name is taken and the rule is
/// [`Collision::Refuse`]. An empty `base` is returned as it is.
pub(super) fn settle(
    users: &BTreeMap<String, Row>,
    id: &str,
    column: &str,
    base: &str,
    prefer: Option<u64>,
    rule: Collision,
    start: u64,
) -> Option<(String, Option<u64>)> {
    if base.is_empty() {
        return Some((String::new(), None));
    }
    let taken: BTreeSet<String> = users
        .iter()
        .filter(|(other, _)| other.as_str() != id)
        .filter_map(|(_, r)| r.get(column))
        .filter(|v| !v.is_empty())
        .map(|v| v.to_lowercase())
        .collect();
    let free = |v: &str| !taken.contains(&v.to_lowercase());
    if let Some(current) = users.get(id).and_then(|r| r.get(column)) {
        if let Some(n) = suffix_of(base, current) {
            if free(current) {
                return Some((current.clone(), n));
            }
        }
    }
    if let Some(n) = prefer {
        let v = numbered(base, n);
        if free(&v) {
            return Some((v, Some(n)));
        }
    }
    if free(base) {
        return Some((base.to_string(), None));
    }
    match rule {
        Collision::Refuse => None,
        Collision::Number => {
            // Of `taken.len() + 1` numbers at least one is free.
            let last = start.saturating_add(taken.len() as u64);
            (start..=last)
                .map(|n| (numbered(base, n), Some(n)))
                .find(|(v, _)| free(v))
        }
    }
}

/// The ids of a list cell (`"a,b"`), without blanks.
pub(super) fn ids(cell: Option<&str>) -> BTreeSet<String> {
    cell.map(|c| {
        c.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    })
    .unwrap_or_default()
}

/// A list cell from ids, in one order: the OneRoster CSV binding writes a list as
/// comma-separated values in one field (quoted by the CSV writer, since it holds commas).
pub(super) fn list(ids: &BTreeSet<String>) -> String {
    ids.iter().map(String::as_str).collect::<Vec<_>>().join(",")
}

/// Keeps the relations symmetric after the row of `id` was written: every other row of
/// Fiktiv's (`is_ours`) lists `id` exactly when the row of `id` lists it. A row whose
/// list changes keeps its `dateLastModified`: that is the time of the row's own last
/// change, from which a disabled account's grace period is counted.
pub(super) fn link(users: &mut BTreeMap<String, Row>, id: &str, is_ours: impl Fn(&str) -> bool) {
    let mine = ids(users
        .get(id)
        .and_then(|r| r.get(AGENTS))
        .map(String::as_str));
    for (other, r) in users.iter_mut() {
        if other == id || !is_ours(other) {
            continue;
        }
        let mut theirs = ids(r.get(AGENTS).map(String::as_str));
        let changed = if mine.contains(other) {
            theirs.insert(id.to_string())
        } else {
            theirs.remove(id)
        };
        if changed {
            r.insert(AGENTS.to_string(), list(&theirs));
        }
    }
}

/// Drops from every row's list the ids of users that are not in `users.csv`, so that no
/// relation points at a removed row.
pub(super) fn drop_dangling(users: &mut BTreeMap<String, Row>) {
    let present: BTreeSet<String> = users.keys().cloned().collect();
    for r in users.values_mut() {
        let Some(cell) = r.get(AGENTS) else { continue };
        if cell.is_empty() {
            continue;
        }
        let mut agents = ids(Some(cell.as_str()));
        let before = agents.len();
        agents.retain(|a| present.contains(a));
        if agents.len() != before {
            r.insert(AGENTS.to_string(), list(&agents));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn users(rows: &[(&str, &str)]) -> BTreeMap<String, Row> {
        rows.iter()
            .map(|(id, name)| {
                (
                    id.to_string(),
                    [("username".to_string(), name.to_string())]
                        .into_iter()
                        .collect(),
                )
            })
            .collect()
    }

    #[test]
    fn numbers_go_before_the_at() {
        assert_eq!(numbered("anna.svensson", 2), "anna.svensson2");
        assert_eq!(numbered("a.b@x.example", 3), "a.b3@x.example");
        assert_eq!(suffix_of("a.b", "a.b"), Some(None));
        assert_eq!(suffix_of("a.b", "a.b12"), Some(Some(12)));
        assert_eq!(suffix_of("a.b@x", "a.b7@x"), Some(Some(7)));
        for other in ["a.b02", "a.bx", "a.b7@y", "a.c2", "a.b-2", "A.B"] {
            assert_eq!(suffix_of("a.b", other), None, "{other}");
        }
        assert_eq!(suffix_of("a.b@x", "a.b@x7"), None);
    }

    #[test]
    fn a_taken_name_gets_the_next_free_number() {
        let u = users(&[("o", "Anna.Svensson"), ("p", "anna.svensson2")]);
        let got = settle(
            &u,
            "new",
            "username",
            "anna.svensson",
            None,
            Collision::Number,
            2,
        );
        assert_eq!(got, Some(("anna.svensson3".into(), Some(3))));
        let got = settle(
            &u,
            "new",
            "username",
            "anna.svensson",
            None,
            Collision::Number,
            1,
        );
        assert_eq!(got, Some(("anna.svensson1".into(), Some(1))));
        assert_eq!(
            settle(
                &u,
                "new",
                "username",
                "anna.svensson",
                None,
                Collision::Refuse,
                2
            ),
            None
        );
        // A free name is used as it is, and the preferred number first.
        assert_eq!(
            settle(
                &u,
                "new",
                "username",
                "otto.prov",
                None,
                Collision::Refuse,
                2
            ),
            Some(("otto.prov".into(), None))
        );
        assert_eq!(
            settle(&u, "new", "email", "a@x", Some(5), Collision::Number, 2),
            Some(("a5@x".into(), Some(5)))
        );
    }

    #[test]
    fn a_person_keeps_the_name_it_was_given() {
        // "p" got the number when "o" had the name; "o" has left since.
        let u = users(&[("p", "anna.svensson2")]);
        let got = settle(
            &u,
            "p",
            "username",
            "anna.svensson",
            None,
            Collision::Number,
            2,
        );
        assert_eq!(got, Some(("anna.svensson2".into(), Some(2))));
        // A new name (the person was renamed) is settled afresh.
        let got = settle(&u, "p", "username", "anna.berg", None, Collision::Number, 2);
        assert_eq!(got, Some(("anna.berg".into(), None)));
    }

    #[test]
    fn relations_stay_symmetric_and_never_dangle() {
        let mut u = users(&[("s", "s"), ("g1", "g1"), ("g2", "g2"), ("x", "x")]);
        u.get_mut("s")
            .unwrap()
            .insert(AGENTS.into(), "g1,g2,gone".into());
        u.get_mut("x").unwrap().insert(AGENTS.into(), "s".into());
        link(&mut u, "s", |id| id != "x");
        drop_dangling(&mut u);
        assert_eq!(u["s"][AGENTS], "g1,g2");
        assert_eq!(u["g1"][AGENTS], "s");
        assert_eq!(u["g2"][AGENTS], "s");
        assert_eq!(u["x"][AGENTS], "s", "a row not Fiktiv's is left alone");
        u.get_mut("s").unwrap().insert(AGENTS.into(), "g2".into());
        link(&mut u, "s", |_| true);
        assert_eq!(u["g1"][AGENTS], "");
        assert_eq!(u["x"][AGENTS], "");
        u.remove("g2");
        drop_dangling(&mut u);
        assert_eq!(u["s"][AGENTS], "");
    }
}
