//! Regression tests for what the fuzz targets `config` and `api_bodies`
//! (fuzz/fuzz_targets/) found; see docs/RELIABILITY.md, "Fuzzing".
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use fiktiv_app::config::Config;
use fiktiv_app::context::load_policies;

/// Fuzz target `config`: a policy file named in `[policies]` that is not valid TOML
/// stopped the service with a multi-line message (the TOML error's source line and
/// caret). Every startup problem is one line, and it names the file.
#[test]
fn a_bad_policy_file_is_one_line_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    for (which, text) in [
        ("number_ranges", "[se]\nserials = [{ from = 0, to = 999 }\n"),
        ("number_ranges", ""),
        ("number_ranges", "[server]\nlisten = 1\n"),
        ("retention", "[retention]\nreal_identity = \"P2Y\nx = 1\n"),
        ("retention", "[se]\n"),
    ] {
        let path = dir.path().join(format!("{which}.toml"));
        std::fs::write(&path, text).unwrap();
        let mut c = Config::default();
        if which == "retention" {
            c.policies.retention = Some(path.clone());
        } else {
            c.policies.number_ranges = Some(path.clone());
        }
        let msg = load_policies(&c).err().unwrap().to_string();
        assert!(!msg.chars().any(char::is_control), "{msg:?}");
        assert!(msg.contains(&path.display().to_string()), "{msg}");
    }
}

/// The shipped policy files still load.
#[test]
fn the_shipped_policy_files_load() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut c = Config::default();
    c.policies.number_ranges = Some(root.join("policies/number_ranges.default.toml"));
    c.policies.retention = Some(root.join("policies/retention.default.toml"));
    load_policies(&c).unwrap();
}

/// Fuzz target `config`: a carriage return (or another control character) in the file
/// was echoed in the error with the TOML error's source line, so the error was not one
/// line. Config errors are one line whatever the input.
#[test]
fn config_errors_are_one_line() {
    for text in [
        "[server]\nlisten = \"127.0.0.1:8080\nlistn = 3\n",
        "a = \"\r\"\n",
        "a = 1\r",
        "[server]\r\nlisten = \"x\"\r\n",
        "[[targets]]\nname = \"x\"\nkind = \"ftp\"\n",
        "\u{feff}[log]\nformat = \"xml\"\n",
        "[log]\nlevel = \"\u{1b}[2J\u{7}\"\n",
        "[log]\u{b}\nlevel = 1\n",
    ] {
        let msg = Config::parse(text, "fiktiv.toml")
            .err()
            .unwrap()
            .to_string();
        assert!(!msg.chars().any(char::is_control), "{text:?}: {msg:?}");
        assert!(msg.starts_with("config file fiktiv.toml: "), "{msg}");
    }
}

/// The `notify` fuzz target (2026-12-07): `"a(b"@c.example` was accepted as a stored
/// mail address, but lettre cannot write a mail to it, so every mail would have failed.
/// An address is now accepted exactly when a mail to it can be composed.
#[test]
fn notify_an_address_no_mail_can_be_written_to_is_refused_when_stored() {
    use fiktiv_app::notify::mail::check_address;
    assert!(check_address("\"a(b\"@c.example").is_err());
    assert!(check_address("rektor@skola.kommun.example").is_ok());
}
