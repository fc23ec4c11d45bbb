//! Fuzzes the configuration file: `fiktiv_app::config::Config::parse` and the checks done at
//! startup on what it parsed (review calendars, provisioning settings, `[[targets]]`,
//! `[metrics]`),
//! plus the operator's policy files (number ranges, retention) that are TOML too.
//!
//! Checks: nothing panics; every error is one line (the service prints it at startup as
//! one clear line) and names the file.
#![no_main]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // fuzz harness: a panic is the finding

use fiktiv_app::config::Config;
use fiktiv_policies::number_ranges::NumberPolicy;
use fiktiv_policies::retention::RetentionPolicy;
use fiktiv_policies::Country;
use libfuzzer_sys::fuzz_target;

fn one_line(what: &str, msg: &str) {
    // No line break, carriage return or escape: one line on a terminal and in a log.
    assert!(
        !msg.chars().any(char::is_control),
        "{what}: error is not one line: {msg:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::parse(text, "fiktiv.toml") {
        Err(e) => {
            let msg = e.to_string();
            one_line("config", &msg);
            assert!(msg.starts_with("config file fiktiv.toml: "), "{msg}");
        }
        Ok(c) => {
            for country in [Country::Se, Country::No] {
                if let Err(e) = c.review.policy_for(country) {
                    one_line("review", &e.to_string());
                }
            }
            let dir = std::path::Path::new("/nonexistent/fiktiv-fuzz");
            if let Err(e) = fiktiv_delivery::Runtime::new(&c.provisioning, &c.targets, c.limits.concurrent_runs, dir) {
                one_line("provisioning", &e);
            }
            for t in &c.targets {
                if let Err(e) = t.validate(false) {
                    one_line("target", &e);
                }
                if let Err(e) = t.validate(true) {
                    one_line("target", &e);
                }
            }
            if let Err(e) = c.metrics.access() {
                one_line("metrics", &e);
            }
            let _ = c.database_url(dir);
        }
    }
    // The policy files: no panic. (Their errors reach the operator through
    // `load_policies`, which flattens them to one line; it builds the authorizer, far too
    // slow to call here: service/tests/suite/fuzz_regressions.rs checks it.)
    let _ = NumberPolicy::from_toml(text);
    let _ = RetentionPolicy::from_toml(text);
});
