//! Recall and false positives of the leak scan on the labelled corpus
//! (`scripts/leak-corpus`, `provisioning/tests/data/leak_corpus.json`), per written
//! form and per channel: `cargo bench -p fiktiv-provisioning --bench leak_corpus`.
//! Prints a Markdown table for `docs/PERFORMANCE.md`.
//!
//! Recall: of the records that hold the real pupil (`found` or `suspect`), the share
//! the scan gives that verdict or a stronger one. False positives: of the records that
//! must stay clean, the share the scan reports. Exact verdicts are the test
//! `guard::leak_corpus` (in the provisioning test binary `suite`); this counts them by class.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)] // a benchmark: its output is the table

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/leak_corpus/mod.rs"]
#[allow(dead_code)]
mod leak_corpus;

use std::collections::BTreeMap;

fn rank(v: &str) -> u8 {
    match v {
        "found" => 3,
        "suspect" => 2,
        "unverified" => 1,
        _ => 0,
    }
}

#[derive(Default)]
struct Tally {
    positives: usize,
    recalled: usize,
    negatives: usize,
    reported: usize,
}

/// The written form of a record's class (`name:transliterated`, `number:short`,
/// `negative:…`) and where it stands (`alone`, `+date`, `+mail-with-digit+date`, …; the
/// date's layout left out).
fn form_and_context(form: &str) -> (String, String) {
    let mut parts = form.split('+');
    let written = parts.next().unwrap_or_default().to_owned();
    let context: Vec<&str> = parts
        .map(|p| if p.starts_with("date") { "date" } else { p })
        .collect();
    let context = if context.is_empty() {
        "alone".to_owned()
    } else {
        context.join("+")
    };
    (written, context)
}

fn main() {
    let c = leak_corpus::load();
    let results = leak_corpus::run(&c, &c.with_filter);
    let mut by_form: BTreeMap<String, Tally> = BTreeMap::new();
    let mut by_context: BTreeMap<String, Tally> = BTreeMap::new();
    let mut by_channel: BTreeMap<String, Tally> = BTreeMap::new();
    for (_, form, channel, expected, got) in &results {
        let (written, context) = form_and_context(form);
        for t in [
            by_form.entry(written).or_default(),
            by_context.entry(context).or_default(),
            by_channel.entry(channel.clone()).or_default(),
        ] {
            if expected == "clean" {
                t.negatives += 1;
                t.reported += usize::from(*got != "clean");
            } else {
                t.positives += 1;
                t.recalled += usize::from(rank(got) >= rank(expected));
            }
        }
    }
    let pct = |a: usize, b: usize| {
        if b == 0 {
            "–".to_string()
        } else {
            format!("{:.1} % ({a}/{b})", 100.0 * a as f64 / b as f64)
        }
    };
    for (title, table) in [
        ("written form", &by_form),
        ("where it stands", &by_context),
        ("channel", &by_channel),
    ] {
        println!("\n| {title} | recall | false positives |\n|---|---|---|");
        for (k, t) in table {
            println!(
                "| `{k}` | {} | {} |",
                pct(t.recalled, t.positives),
                pct(t.reported, t.negatives)
            );
        }
    }
    let wrong = results.iter().filter(|r| r.3 != r.4).count();
    println!(
        "\n{} records, {wrong} with another verdict than expected",
        results.len()
    );
}
