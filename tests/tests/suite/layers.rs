//! The layers of the workspace, checked by reading the manifests and the source (as
//! `provisioning/tests/suite/no_real_identity.rs` does for real identities). Each check
//! reads the files when the test runs, so a forbidden line fails the next test run.
//!
//! The layers, lowest first (ARCHITECTURE.md, "Crates and layers"):
//!
//! | crate | may depend on |
//! |---|---|
//! | `fiktiv-vault`, `fiktiv-policies` | no workspace crate |
//! | `fiktiv-provisioning` | the vault |
//! | `fiktiv-routine` | the vault, the policies, provisioning's types |
//! | `fiktiv-staff` | the vault, the policies, the routine |
//! | `fiktiv-delivery` (targets in force, outbox worker, plan/apply, checks, alerts) | the vault, the policies, provisioning, the routine |
//! | `fiktiv-app` (configuration, start-up context, handler state, tasks, notifications, hub reads, metrics, messages) | the crates above, but provisioning |
//! | `fiktiv-api` (the HTTP API) | the crates above |
//! | `fiktiv-web` (the web UI) | the crates above but the API and provisioning |
//! | `fiktiv` (the binary: command line, router, background work, sealed start) | every crate above |

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Each crate's folder, package name, and the workspace crates it may depend on.
const LAYERS: &[(&str, &str, &[&str])] = &[
    ("vault", "fiktiv-vault", &[]),
    ("policies", "fiktiv-policies", &[]),
    ("provisioning", "fiktiv-provisioning", &["fiktiv-vault"]),
    // The SS 12000 wire and hub reader: identifiers from the vault, nothing above.
    ("ss12000", "fiktiv-ss12000", &["fiktiv-vault"]),
    (
        "routine",
        "fiktiv-routine",
        &[
            "fiktiv-vault",
            "fiktiv-policies",
            "fiktiv-provisioning",
            "fiktiv-ss12000",
        ],
    ),
    (
        "staff",
        "fiktiv-staff",
        &["fiktiv-vault", "fiktiv-policies", "fiktiv-routine"],
    ),
    // Delivery to the targets: over the routine's desired state and provisioning's
    // targets; it knows neither staff sign-in nor any transport of the service.
    (
        "delivery",
        "fiktiv-delivery",
        &[
            "fiktiv-vault",
            "fiktiv-policies",
            "fiktiv-provisioning",
            "fiktiv-routine",
        ],
    ),
    // What the API and the web UI share: no transport (checked below).
    (
        "app",
        "fiktiv-app",
        &[
            "fiktiv-vault",
            "fiktiv-policies",
            "fiktiv-routine",
            "fiktiv-staff",
            "fiktiv-ss12000",
            "fiktiv-delivery",
        ],
    ),
    // The API and the web UI: side by side, neither knows the other.
    (
        "api",
        "fiktiv-api",
        &[
            "fiktiv-vault",
            "fiktiv-policies",
            "fiktiv-provisioning",
            "fiktiv-routine",
            "fiktiv-staff",
            "fiktiv-delivery",
            "fiktiv-app",
        ],
    ),
    (
        "web",
        "fiktiv-web",
        &[
            "fiktiv-vault",
            "fiktiv-policies",
            "fiktiv-routine",
            "fiktiv-staff",
            "fiktiv-delivery",
            "fiktiv-app",
        ],
    ),
    (
        "service",
        "fiktiv",
        &[
            "fiktiv-vault",
            "fiktiv-policies",
            "fiktiv-provisioning",
            "fiktiv-routine",
            "fiktiv-staff",
            "fiktiv-ss12000",
            "fiktiv-delivery",
            "fiktiv-app",
            "fiktiv-api",
            "fiktiv-web",
        ],
    ),
];

/// The workspace crates named in a manifest's `[dependencies]` (not dev-dependencies:
/// tests may use any crate).
fn workspace_deps(manifest: &str) -> Vec<String> {
    dependency_names(manifest)
        .into_iter()
        .filter(|name| name == "fiktiv" || name.starts_with("fiktiv-"))
        .collect()
}

/// Every `.rs` file under a folder, with its text.
fn sources(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&p).unwrap();
                out.push((p, text));
            }
        }
    }
    out.sort();
    out
}

/// A line without its string literals' contents and without a `//` comment.
fn code_of(line: &str) -> String {
    let mut out = String::new();
    let mut in_str = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if in_str {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' => {
                    in_str = false;
                    out.push('"');
                }
                _ => {}
            }
        } else if c == '"' {
            in_str = true;
            out.push('"');
        } else if c == '/' && chars.peek() == Some(&'/') {
            break;
        } else {
            out.push(c);
        }
    }
    out
}

/// The identifiers of a source text outside comments and string literals (paths split
/// at `::`), with their line numbers.
fn words(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = code_of(line);
        for w in code.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if !w.is_empty() {
                out.push((n + 1, w.to_owned()));
            }
        }
    }
    out
}

/// Where any of `forbidden` is used as an identifier in the files under `dir` (a
/// crate's `src`; its `tests/` folder is not under it).
fn uses(dir: &Path, forbidden: &[&str]) -> Vec<String> {
    let mut hits = Vec::new();
    for (path, text) in sources(dir) {
        let rel = path
            .strip_prefix(dir)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        for (line, w) in words(&text) {
            if forbidden.contains(&w.as_str()) {
                hits.push(format!("{rel}:{line}: {w}"));
            }
        }
    }
    hits
}

#[test]
fn no_crate_depends_on_a_crate_of_a_higher_layer() {
    let mut wrong = Vec::new();
    for (dir, name, allowed) in LAYERS {
        let manifest = std::fs::read_to_string(root().join(dir).join("Cargo.toml")).unwrap();
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "{dir}/Cargo.toml is not {name}"
        );
        for dep in workspace_deps(&manifest) {
            if !allowed.contains(&dep.as_str()) {
                wrong.push(format!("{name} depends on {dep}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "dependencies against the layers: {wrong:?}"
    );
    // Every crate of the workspace has its place in the table.
    let workspace = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    for (dir, _, _) in LAYERS {
        assert!(
            workspace.contains(&format!("\"{dir}\"")),
            "{dir} not a member"
        );
    }
}

#[test]
fn the_routine_delivery_and_the_app_know_no_transport_and_no_service() {
    // Delivery talks to targets through `fiktiv-provisioning` only; none of these
    // crates serves HTTP or renders a page, and none names the binary's crate: the
    // routes of the API and the web UI are theirs, and what both share is below them.
    for krate in ["routine", "delivery", "app"] {
        let manifest = std::fs::read_to_string(root().join(krate).join("Cargo.toml")).unwrap();
        for transport in [
            "axum",
            "askama",
            "tower",
            "reqwest",
            "hyper",
            "openidconnect",
        ] {
            assert!(
                !manifest
                    .lines()
                    .any(|l| l.trim_start().starts_with(&format!("{transport} "))
                        || l.trim_start().starts_with(&format!("{transport}."))),
                "{krate}/Cargo.toml names {transport}"
            );
        }
        let hits = uses(
            &root().join(krate).join("src"),
            &[
                "axum",
                "askama",
                "tower",
                "reqwest",
                "hyper",
                "fiktiv",
                "StatusCode",
            ],
        );
        assert!(hits.is_empty(), "transport in {krate}: {hits:?}");
    }
}

/// Every crate named in a manifest's `[dependencies]` (not dev-dependencies).
fn dependency_names(manifest: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_deps = false;
    for line in manifest.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            in_deps = t == "[dependencies]";
            continue;
        }
        if !in_deps || t.starts_with('#') || t.is_empty() {
            continue;
        }
        out.push(
            t.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect(),
        );
    }
    out
}

/// SQL is written in two crates only: the vault (its own tables: keys, sealed records,
/// blind indexes, the audit trail) and the routine (the store of everything else: the
/// routine's tables, staff identity, delivery's outbox, runs, alerts and targets,
/// notifications). Every other crate has no `sqlx` in its source and cannot link it
/// (none in its `[dependencies]`): the API, the web UI, staff identity and delivery
/// read and write rows only through the routine's store.
#[test]
fn sql_is_written_only_in_the_vault_and_the_routine() {
    let mut wrong = Vec::new();
    for (dir, _, _) in LAYERS {
        if ["vault", "routine"].contains(dir) {
            continue;
        }
        for hit in uses(&root().join(dir).join("src"), &["sqlx"]) {
            wrong.push(format!("{dir}/src/{hit}"));
        }
        let manifest = std::fs::read_to_string(root().join(dir).join("Cargo.toml")).unwrap();
        if dependency_names(&manifest).iter().any(|d| d == "sqlx") {
            wrong.push(format!("{dir}/Cargo.toml depends on sqlx"));
        }
    }
    assert!(
        wrong.is_empty(),
        "SQL outside the vault and the routine: {wrong:?}"
    );
    // The check sees SQL where it is.
    assert!(!uses(&root().join("routine/src"), &["sqlx"]).is_empty());
    assert!(!uses(&root().join("vault/src"), &["sqlx"]).is_empty());
}

#[test]
fn real_identity_types_live_only_in_the_vault_and_the_routine() {
    // The crates that depend on the vault and could name its types; the policies do
    // not depend on it (checked above), and their `RecordClass::RealIdentity` is a
    // retention class, not the type.
    let real = ["RealIdentity", "RealName"];
    for dir in [
        "service/src",
        "app/src",
        "api/src",
        "web/src",
        "staff/src",
        "delivery/src",
        "provisioning/src",
        "ss12000/src",
    ] {
        let hits = uses(&root().join(dir), &real);
        assert!(hits.is_empty(), "real-identity types in {dir}: {hits:?}");
    }
    // The check itself sees them where they are.
    assert!(!uses(&root().join("routine/src"), &real).is_empty());
}
