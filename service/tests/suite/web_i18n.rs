//! The UI's message files and templates: the three languages have the same keys, every
//! key a template or the web code names exists, and no template holds user-facing
//! text of its own (it would show in one language only).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn keys(lang: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(root().join(format!("../app/i18n/{lang}.toml"))).unwrap();
    let m = fiktiv_web::i18n::parse(&text).unwrap_or_else(|e| panic!("{lang}.toml: {e}"));
    for (k, v) in &m {
        assert!(!v.trim().is_empty(), "{lang}.toml: {k} is empty");
    }
    m.into_keys().collect()
}

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    out.sort();
    out
}

#[test]
fn all_languages_have_the_same_keys() {
    let sv = keys("sv");
    for lang in ["nb", "en"] {
        let other = keys(lang);
        let missing: Vec<_> = sv.difference(&other).collect();
        let extra: Vec<_> = other.difference(&sv).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{lang}.toml differs from sv.toml: missing {missing:?}, extra {extra:?}"
        );
    }
    assert!(sv.len() > 50);
}

/// Keys named in templates (`t("...")`) and message keys in the web code's string
/// literals (`"section.key"` for a known section).
fn used_keys() -> BTreeSet<String> {
    let sv = keys("sv");
    let sections: BTreeSet<String> = sv
        .iter()
        .map(|k| k.split('.').next().unwrap().to_owned())
        .collect();
    let mut used = BTreeSet::new();
    let mut sources = files(&root().join("../web/templates"), "html");
    sources.extend(files(&root().join("../web/src"), "rs"));
    // What both share (tasks, notifications) names messages too.
    sources.extend(files(&root().join("../app/src"), "rs"));
    // Staff identity (accounts, sessions, sign-in) names the messages of its refusals.
    sources.extend(files(&root().join("../staff/src"), "rs"));
    for f in sources {
        let text = std::fs::read_to_string(&f).unwrap();
        // A unit test module names domain problem codes (`unit.invalid`), not message
        // keys; only the code a user's page is built from counts.
        let text = text.split("#[cfg(test)]").next().unwrap_or_default();
        for lit in text.split('"').skip(1).step_by(2) {
            let Some((section, rest)) = lit.split_once('.') else {
                continue;
            };
            if sections.contains(section)
                && !rest.is_empty()
                && !lit.ends_with(".html")
                && lit
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
            {
                used.insert(lit.to_owned());
            }
        }
    }
    used
}

#[test]
fn every_key_used_exists() {
    let sv = keys("sv");
    let used = used_keys();
    let missing: Vec<_> = used.difference(&sv).collect();
    assert!(
        missing.is_empty(),
        "keys used but not in the message files: {missing:?}"
    );
    assert!(used.contains("signin.heading") && used.contains("nav.orders-text"));
}

/// The template with every `{{ }}`, `{% %}` and `{# #}` removed.
fn strip_template(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find('{') {
        let close = match rest.get(i + 1..i + 2) {
            Some("{") => "}}",
            Some("%") => "%}",
            Some("#") => "#}",
            _ => {
                out.push_str(&rest[..=i]);
                rest = &rest[i + 1..];
                continue;
            }
        };
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let end = after.find(close).expect("unclosed template tag");
        out.push(' ');
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// Attributes whose values people read or hear.
const TEXT_ATTRIBUTES: &[&str] = &[
    "title",
    "alt",
    "placeholder",
    "aria-label",
    "value",
    "label",
];

#[test]
fn templates_have_no_literal_text() {
    let mut problems = Vec::new();
    for f in files(&root().join("../web/templates"), "html") {
        let stripped = strip_template(&std::fs::read_to_string(&f).unwrap());
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        // Text between tags.
        let mut in_tag = false;
        let mut textnode = String::new();
        let mut tags = Vec::new();
        let mut tag = String::new();
        for c in stripped.chars() {
            match (in_tag, c) {
                (false, '<') => {
                    in_tag = true;
                    tag.clear();
                }
                (false, c) => textnode.push(c),
                (true, '>') => {
                    in_tag = false;
                    tags.push(tag.clone());
                    textnode.push(' ');
                }
                (true, c) => tag.push(c),
            }
        }
        if textnode.chars().any(|c| c.is_alphanumeric()) {
            let words: Vec<&str> = textnode
                .split_whitespace()
                .filter(|w| w.chars().any(|c| c.is_alphanumeric()))
                .collect();
            problems.push(format!("{name}: literal text {words:?}"));
        }
        // Attribute values that are shown or read out, except hidden inputs' values
        // and submit values that are codes (lang buttons carry `{{ }}` anyway).
        for tag in &tags {
            for attr in TEXT_ATTRIBUTES {
                let pat = format!(" {attr}=\"");
                if let Some(i) = tag.find(&pat) {
                    let v = &tag[i + pat.len()..];
                    let v = &v[..v.find('"').unwrap_or(v.len())];
                    if v.chars().any(|c| c.is_alphabetic()) {
                        problems.push(format!("{name}: literal {attr}=\"{v}\" in <{tag}>"));
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_scanner_finds_literal_text() {
    let s = strip_template("<p>{{ base.t(\"x\") }}</p><p>Hello</p>");
    assert!(s.contains("Hello") && !s.contains("base.t"));
}

#[test]
fn every_input_has_a_label_and_identity_fields_never_autofill() {
    for f in files(&root().join("../web/templates"), "html") {
        let text = std::fs::read_to_string(&f).unwrap();
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        for part in text.split("<input").skip(1) {
            let tag = &part[..part.find('>').unwrap()];
            if tag.contains("type=\"hidden\"") {
                continue;
            }
            let id = tag
                .split("id=\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .unwrap_or_else(|| panic!("{name}: an input without id: {tag}"));
            assert!(
                text.contains(&format!("<label for=\"{id}\"")),
                "{name}: input {id} has no <label for>"
            );
            // Any field that may hold a real identity is marked so in the template
            // (class "real-identity") and must say autocomplete="off".
            if tag.contains("real-identity") {
                assert!(tag.contains("autocomplete=\"off\""), "{name}: {id}");
            }
        }
    }
}
