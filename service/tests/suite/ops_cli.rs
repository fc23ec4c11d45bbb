//! Operator commands: `fiktiv audit export` re-verified by an external tool
//! (`scripts/verify-audit-export`), tampering found; `fiktiv check` shows progress on a
//! terminal and is quiet otherwise; the example configuration parses, with every
//! optional setting switched on, and each of its keys is documented.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use crate::support::launch::{run as fiktiv, text};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use sha2::{Digest, Sha256};

fn repo() -> PathBuf {
    fiktiv_tests::workspace_root()
}

fn verify_script(file: &Path, extra: &[&str]) -> Output {
    Command::new("python3")
        .arg(repo().join("scripts/verify-audit-export"))
        .arg(file)
        .args(extra)
        .output()
        .unwrap()
}

/// The hash as ARCHITECTURE.md documents it, written again here on purpose.
fn documented_hash(e: &Value) -> String {
    let mut h = Sha256::new();
    h.update(b"fiktiv.audit.v1\0");
    for f in [
        "event_id", "at", "actor", "action", "case_id", "purpose", "outcome",
    ] {
        let v = e[f].as_str().unwrap_or("");
        h.update((v.len() as u32).to_be_bytes());
        h.update(v.as_bytes());
    }
    h.update(e["prev_hash"].as_str().unwrap().as_bytes());
    h.update(e["mac"].as_str().unwrap().as_bytes());
    hex::encode(h.finalize())
}

#[test]
fn audit_export_is_verified_outside_fiktiv() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    assert!(fiktiv(&data, &["init"]).status.success());
    for name in ["anna", "bo", "cilla"] {
        let out = fiktiv(
            &data,
            &["tokens", "create", "--role", "auditor", "--name", name],
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let out = fiktiv(&data, &["audit", "verify"]);
    assert!(out.status.success());
    let verified: u64 = text(&out.stdout)
        .split_whitespace()
        .find_map(|w| w.parse().ok())
        .unwrap();

    let out = fiktiv(&data, &["audit", "export", "--format", "jsonl"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let export = text(&out.stdout);
    let lines: Vec<Value> = export
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (events, head) = lines.split_at(lines.len() - 1);
    assert_eq!(events.len() as u64, verified);
    assert_eq!(head[0]["type"], "head");
    assert_eq!(head[0]["seq"], events.last().unwrap()["seq"]);
    let mut prev = "0".repeat(64);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["type"], "event");
        assert_eq!(e["seq"], i as u64 + 1);
        assert_eq!(e["prev_hash"], prev.as_str());
        assert_eq!(e["hash"], documented_hash(e).as_str());
        prev = e["hash"].as_str().unwrap().to_owned();
    }
    assert_eq!(head[0]["hash"], prev.as_str());

    // The external tool agrees, also with the head recorded as an anchor.
    let file = dir.path().join("trail.jsonl");
    std::fs::write(&file, &export).unwrap();
    let anchor = format!("{}:{}", head[0]["seq"], prev);
    let out = verify_script(&file, &["--anchor", &anchor]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).starts_with("ok: "),
        "{}",
        text(&out.stdout)
    );

    // From event 3: the rest of the chain; the tool still checks it.
    let out = fiktiv(&data, &["audit", "export", "--from-seq", "3"]);
    let part = text(&out.stdout);
    let first: Value = serde_json::from_str(part.lines().next().unwrap()).unwrap();
    assert_eq!(first["seq"], 3);
    assert_eq!(first["prev_hash"], events[1]["hash"]);
    let pfile = dir.path().join("part.jsonl");
    std::fs::write(&pfile, &part).unwrap();
    assert_eq!(verify_script(&pfile, &[]).status.code(), Some(0));

    // An edited event, a removed event, a changed anchor: each is found.
    let edited = export.replacen("\"actor\":\"cli\"", "\"actor\":\"someone\"", 1);
    assert_ne!(edited, export);
    std::fs::write(&file, &edited).unwrap();
    let out = verify_script(&file, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("does not match its content"),
        "{}",
        text(&out.stdout)
    );
    let removed: String = export
        .lines()
        .enumerate()
        .filter(|(i, _)| *i != 2)
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    std::fs::write(&file, &removed).unwrap();
    let out = verify_script(&file, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("missing"),
        "{}",
        text(&out.stdout)
    );
    std::fs::write(&file, &export).unwrap();
    let wrong = format!("{}:{}", head[0]["seq"], "ab".repeat(32));
    assert_eq!(
        verify_script(&file, &["--anchor", &wrong]).status.code(),
        Some(1)
    );
}

#[test]
fn check_shows_progress_on_a_terminal_only() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    assert!(fiktiv(&data, &["init"]).status.success());

    // Not a terminal: the result on stdout, nothing else on stderr.
    let out = fiktiv(&data, &["check", "leaks"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains("targets"),
        "{}",
        text(&out.stderr)
    );
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["clean"], true);

    // A terminal (script(1) gives the command a pseudo-terminal): the progress line.
    let cmd = format!(
        "{} check leaks --data-dir {}",
        env!("CARGO_BIN_EXE_fiktiv"),
        data.display()
    );
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env_remove("FIKTIV_ROOT_KEY")
        .env_remove("FIKTIV_DATABASE_URL")
        .env_remove("FIKTIV_CONFIG")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let shown = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    assert!(shown.contains("leak-scan: targets 1/1"), "{shown}");
    assert!(shown.contains("- done"), "{shown}");
}

/// `# key = value` and `# [table]` lines of the example switched on.
fn uncommented(example: &str) -> String {
    example
        .lines()
        .map(|l| {
            let t = l.strip_prefix("# ").unwrap_or(l);
            let setting = t.starts_with('[')
                || t.split_once(" = ").is_some_and(|(k, _)| {
                    !k.is_empty()
                        && k.chars()
                            .all(|c| c.is_ascii_lowercase() || c == '_' || c == '.')
                });
            if setting && l.starts_with("# ") {
                t.to_owned()
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_example_configuration_parses_and_is_documented() {
    let example = std::fs::read_to_string(repo().join("docs/fiktiv.example.toml")).unwrap();
    let docs = std::fs::read_to_string(repo().join("docs/CONFIGURATION.md")).unwrap();
    // As shipped: every value is the default and the service starts with it.
    let c = fiktiv_app::config::Config::parse(&example, "fiktiv.example.toml").unwrap();
    fiktiv_app::context::load_policies(&c).unwrap();
    assert_eq!(c.server.listen.to_string(), "127.0.0.1:8080");
    // With every optional setting switched on, it still parses.
    let all = uncommented(&example);
    let c = fiktiv_app::config::Config::parse(&all, "all.toml")
        .unwrap_or_else(|e| panic!("{e}\n{all}"));
    assert!(
        c.targets.len() >= 3,
        "the example shows one target of each kind"
    );
    assert!(c.metrics.token.is_some() && !c.metrics.allow_from.is_empty());
    // Every table and key of the example is in docs/CONFIGURATION.md.
    for line in all
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        if line.starts_with('[') {
            let table = line.trim_matches(|c| c == '[' || c == ']');
            assert!(
                docs.contains(&format!("`[{table}]`")) || docs.contains(&format!("[{table}]")),
                "table {table} is not documented"
            );
        } else if let Some((k, _)) = line.split_once(" = ") {
            let k = k.trim();
            assert!(
                docs.contains(&format!("`{k}`")),
                "key {k} is not documented"
            );
        }
    }
}

/// `fiktiv check leaks` when a real pupil stands downstream: a copy of the real pupil
/// left in the roster folder beside the files Fiktiv writes (`export.txt`) is found;
/// the JSON names the case, each place with its rule, target, locator and attribute
/// names, and the files read, but never a value; the exit status is 1.
#[test]
fn check_leaks_names_each_place_and_no_value() {
    use crate::support::web::Server;
    let (first, last, birth) = ("Kanarieåsa", "Provdockesson", "2015-03-09");
    let number = crate::support::pages::se_personnummer(2015, 3, 9, 123);
    let short = format!("{}-{}", &number[2..8], &number[8..]);
    let server = Server::start("");
    let case =
        crate::support::pages::open_case_by_api(&server, "skola-1", &number, first, last, birth);

    // Clean first: the embedded roster target holds nothing real.
    let out = server.cli(&["check", "leaks"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));

    // Someone's export of the real pupil, left in the roster folder.
    let roster = server.dir.path().join("data/oneroster");
    std::fs::create_dir_all(&roster).unwrap();
    std::fs::write(
        roster.join("export.txt"),
        format!("elev,personnummer,klass\n{first} {last},{short},3B\n"),
    )
    .unwrap();
    let out = server.cli(&["check", "leaks"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    for value in [
        first,
        last,
        number.as_str(),
        &number[2..],
        short.as_str(),
        &number[2..8],
    ] {
        assert!(!stdout.contains(value), "stdout shows a real value");
    }
    let result: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(result["clean"], false, "{result}");
    let mine = result["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["case_id"] == case.as_str())
        .unwrap_or_else(|| panic!("no result for the case: {result}"));
    assert_eq!(mine["status"], "found", "{result}");
    let at = mine["at"].as_array().unwrap();
    assert!(!at.is_empty(), "{result}");
    for place in at {
        assert_eq!(place["target"], "oneroster", "{place}");
        assert_eq!(place["entry"], "export.txt:row 2", "{place}");
        assert!(
            !place["attributes"].as_array().unwrap().is_empty(),
            "{place}"
        );
    }
    let rule_at = |rule: &str| -> Vec<String> {
        at.iter()
            .filter(|p| p["rule"] == rule)
            .flat_map(|p| p["attributes"].as_array().unwrap().iter())
            .map(|a| a.as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        rule_at("personal-number"),
        ["export.txt.personnummer"],
        "{result}"
    );
    assert!(
        rule_at("full-name").contains(&"export.txt.elev".to_owned()),
        "{result}"
    );
    // What was read: every file of the folder, the stray one too.
    let roster_part = result["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == "oneroster")
        .unwrap();
    assert!(roster_part["error"].is_null(), "{result}");
    assert!(
        roster_part["scope"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "export.txt"),
        "{result}"
    );
    assert!(roster_part["entries"].as_u64().unwrap() >= 2, "{result}");
}
