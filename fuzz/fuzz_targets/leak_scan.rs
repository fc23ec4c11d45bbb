//! Fuzzes the leak scan (provisioning's `scan`) over arbitrary entries, with a fixed
//! blind key and the blind indexes of one real pupil (`common`).
//!
//! Input: text; each line `attribute: value` adds a value to the current entry, an empty
//! line or `--` starts the next entry. `$PNR`, `$FIRST`, `$LAST` and `$BIRTH` stand for
//! the real pupil's canonical number, names and birth date, so the fuzzer reaches the
//! matching rules. Checks (besides `common::check_scan`): a value that is exactly the
//! real full name, or given/family attributes holding exactly the real names, are
//! reported (full name, name + birth, or unverifiable).
#![no_main]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // fuzz harness: a panic is the finding

mod common;

use common::{REAL_BIRTH, REAL_FIRST, REAL_LAST};
use fiktiv_provisioning::{Rule, ScannedEntry};
use libfuzzer_sys::fuzz_target;

fn entries(text: &str) -> Vec<ScannedEntry> {
    let f = common::fixture();
    let birth = format!(
        "{:04}-{:02}-{:02}",
        REAL_BIRTH.0, REAL_BIRTH.1, REAL_BIRTH.2
    );
    let text = text
        .replace("$PNR", &f.number)
        .replace("$FIRST", REAL_FIRST)
        .replace("$LAST", REAL_LAST)
        .replace("$BIRTH", &birth);
    let mut out: Vec<ScannedEntry> = Vec::new();
    let mut cur: Option<ScannedEntry> = None;
    for line in text.split('\n') {
        if line.is_empty() || line == "--" {
            out.extend(cur.take());
            continue;
        }
        let (name, value) = line.split_once(':').unwrap_or(("value", line));
        let e = cur.get_or_insert_with(|| {
            let mut e = ScannedEntry::new(f.target.clone(), format!("entry #{}", out.len() + 1));
            e.label_attribute = Some("dn".into());
            e
        });
        e.push(name.trim(), value.strip_prefix(' ').unwrap_or(value));
    }
    out.extend(cur);
    out
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let findings = common::check_scan(&|| entries(text));
    let full = format!("{REAL_FIRST} {REAL_LAST}");
    for e in entries(text) {
        let whole = e.values.iter().any(|(_, v)| v.as_str() == full);
        let given = e
            .values
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case("givenName") && v.as_str() == REAL_FIRST);
        let family = e
            .values
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case("sn") && v.as_str() == REAL_LAST);
        if whole || (given && family) {
            assert!(
                findings.iter().any(|x| x.entry == e.locator
                    && matches!(
                        x.rule,
                        Rule::FullName | Rule::NameBirth | Rule::Unverifiable
                    )),
                "the real full name was not reported"
            );
        }
        if let Some(label) = findings
            .iter()
            .find(|x| x.entry == e.locator)
            .and_then(|x| x.label.as_deref())
        {
            // A label is shown only when the labelling attribute did not match.
            assert_eq!(e.first("dn"), Some(label));
            assert!(
                !label.contains(common::fixture().number.as_str()),
                "a finding's label shows the real number"
            );
        }
    }
});
