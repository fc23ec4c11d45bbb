//! Fuzzes the reading of OneRoster CSV folders (provisioning/src/oneroster/**): the CSV
//! parser, the leak-scan reader, and the target's own read-back of its managed accounts
//! (which joins users with roles, enrollments, classes, courses, sessions and orgs).
//!
//! Input: one or more files, each introduced by a line `### <name>.csv`; text before the
//! first such line is `users.csv`. Checks: nothing panics or hangs; every parsed row has
//! at most the header's columns (the header: the first row that is not blank); the target's `read_everything` over the folder gives
//! exactly what `scan_csv_file` gives for each file; the scan (`common::check_scan`).
#![no_main]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // fuzz harness: a panic is the finding

mod common;

use std::path::PathBuf;
use std::sync::OnceLock;

use chrono::{NaiveDate, TimeZone, Utc};
use fiktiv_provisioning::oneroster::{
    parse_csv, scan_csv_file, OneRosterConfig, OneRosterTarget, SchoolYear,
};
use fiktiv_provisioning::{GroupId, Target};
use libfuzzer_sys::fuzz_target;

const NAMES: &[&str] = &[
    "users.csv",
    "roles.csv",
    "enrollments.csv",
    "classes.csv",
    "courses.csv",
    "orgs.csv",
    "academicSessions.csv",
    "manifest.csv",
    "other.csv",
];

struct Env {
    rt: tokio::runtime::Runtime,
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    target: OneRosterTarget,
}

fn env() -> &'static Env {
    static E: OnceLock<Env> = OnceLock::new();
    E.get_or_init(|| {
        let shm = std::path::Path::new("/dev/shm");
        let tmp = if shm.is_dir() {
            tempfile::tempdir_in(shm).unwrap()
        } else {
            tempfile::tempdir().unwrap()
        };
        let dir = tmp.path().join("roster");
        std::fs::create_dir(&dir).unwrap();
        let year = SchoolYear {
            id: GroupId::new("ht2025-vt2026").unwrap(),
            title: "2025/2026".into(),
            start: NaiveDate::from_ymd_opt(2025, 8, 15).unwrap(),
            end: NaiveDate::from_ymd_opt(2026, 6, 15).unwrap(),
            year: 2026,
        };
        let cfg =
            OneRosterConfig::new(common::fixture().target.clone(), dir.clone(), year).unwrap();
        Env {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            _tmp: tmp,
            dir,
            target: OneRosterTarget::new(cfg),
        }
    })
}

/// Splits the input into (file name, bytes); later files of the same name win.
fn files(data: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    let mut name = "users.csv".to_string();
    let mut cur: Vec<u8> = Vec::new();
    for line in data.split_inclusive(|&b| b == b'\n') {
        if let Some(rest) = line.strip_prefix(b"### ") {
            out.retain(|(n, _)| *n != name);
            out.push((name, std::mem::take(&mut cur)));
            let want = String::from_utf8_lossy(rest).trim().to_string();
            name = NAMES
                .iter()
                .find(|n| **n == want)
                .map_or("other.csv", |n| n)
                .to_string();
        } else {
            cur.extend_from_slice(line);
        }
    }
    out.retain(|(n, _)| *n != name);
    out.push((name, cur));
    out.sort();
    out
}

fuzz_target!(|data: &[u8]| {
    let e = env();
    let files = files(data);
    for (_, bytes) in &files {
        if let Ok(rows) = parse_csv(bytes) {
            // The header is the first row that is not blank (the reader skips blank
            // lines, and a quoted header cell may span lines): its cell count.
            let width = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .from_reader(&bytes[..])
                .byte_records()
                .next()
                .and_then(Result::ok)
                .map_or(0, |h| h.len());
            for r in &rows {
                assert!(r.len() <= width, "a row has more columns than the header");
            }
        }
    }

    // The folder as the target sees it.
    for entry in std::fs::read_dir(&e.dir).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    for (name, bytes) in &files {
        std::fs::write(e.dir.join(name), bytes).unwrap();
    }
    let at = Utc.with_ymd_and_hms(2026, 1, 15, 12, 0, 0).unwrap();
    let managed = e.rt.block_on(e.target.read_managed(at));
    if let Ok(m) = &managed {
        for a in m {
            let _ = format!("{a:?}");
        }
    }
    let everything = e.rt.block_on(e.target.read_everything());

    let target = &common::fixture().target;
    let direct = || {
        let mut out = Vec::new();
        for (name, bytes) in &files {
            if scan_csv_file(target, name, bytes, &mut out).is_err() {
                return None;
            }
        }
        Some(out)
    };
    match (&everything, direct()) {
        (Ok(read), Some(parsed)) => {
            assert_eq!(
                read.len(),
                parsed.len(),
                "read_everything differs from scan_csv_file"
            );
            for (a, b) in read.iter().zip(&parsed) {
                assert_eq!(a.locator, b.locator);
                assert!(
                    a.values == b.values,
                    "read_everything differs from scan_csv_file"
                );
            }
        }
        (Err(_), None) => {}
        (r, p) => panic!(
            "read_everything ok={} but scan_csv_file ok={}",
            r.is_ok(),
            p.is_some()
        ),
    }
    if direct().is_some() {
        common::check_scan(&|| direct().unwrap_or_default());
    }
});
