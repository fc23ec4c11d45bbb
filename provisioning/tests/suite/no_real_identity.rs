//! The crate never names a real-identity type or the function that opens one. This
//! reads every source file under `src/` and fails on any of those identifiers, wherever
//! they appear (code, comments, strings).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use std::path::{Path, PathBuf};

const FORBIDDEN: &[&str] = &[
    "RealIdentity",
    "RealName",
    "PersonalNumber",
    "Vault",
    "read_identity",
];

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn identifiers(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
}

/// The forbidden identifiers of a line. `IndexKind::PersonalNumber` is the vault's name
/// for the *kind* of a blind index (a MAC, not a number) and is allowed.
fn forbidden_in(line: &str) -> Vec<&str> {
    let allowed = line.replace("IndexKind::PersonalNumber", "IndexKind::_");
    identifiers(&allowed)
        .filter(|w| FORBIDDEN.contains(w))
        .map(|w| FORBIDDEN.iter().copied().find(|f| f == &w).unwrap_or("?"))
        .collect()
}

#[test]
fn sources_never_name_a_real_identity() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    assert!(
        all.len() >= 10,
        "expected the crate's sources under {}",
        src.display()
    );
    let mut bad = Vec::new();
    for f in &all {
        let text = std::fs::read_to_string(f).unwrap();
        for (n, line) in text.lines().enumerate() {
            for w in forbidden_in(line) {
                bad.push(format!("{}:{}: {w}", f.display(), n + 1));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "forbidden identifiers in provisioning/src:\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_check_itself_sees_them() {
    let words: Vec<&str> =
        identifiers("use fiktiv_vault::RealIdentity; v.read_identity(x)").collect();
    assert!(words.contains(&"RealIdentity") && words.contains(&"read_identity"));
    // VaultError or fiktiv_vault are other identifiers, not `Vault`.
    assert!(forbidden_in("VaultError fiktiv_vault IndexKind::PersonalNumber").is_empty());
    assert_eq!(
        forbidden_in("ids::PersonalNumber, Vault"),
        vec!["PersonalNumber", "Vault"]
    );
}

#[test]
fn the_manifest_declares_no_route_around_it() {
    // The crate depends on the vault for blind indexes only; a feature or a second path
    // dependency could bring real-identity code in by another name.
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    assert!(
        !manifest.contains("[features]"),
        "no features in provisioning"
    );
}
