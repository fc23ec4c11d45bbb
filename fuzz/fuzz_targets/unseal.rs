//! Fuzzes the unseal input: key-share text typed by a holder (`Share::parse`) and the
//! unsealing state machine that takes shares one at a time (`Unsealing::enter`).
//!
//! Checks: nothing panics; a text that parses re-encodes to a text that parses to the
//! same share; a refused line changes nothing (the genuine shares the input picks,
//! entered between arbitrary lines, still open the root key at the threshold); an error
//! never echoes the input.
#![no_main]

use std::sync::OnceLock;

use fiktiv_vault::custody::shares::{Share, ShareError};
use fiktiv_vault::custody::unseal::{Progress, UnsealError, Unsealing};
use fiktiv_vault::custody::{split_root, CustodyRecord};
use fiktiv_vault::RootKey;
use libfuzzer_sys::fuzz_target;

struct Fixture {
    record: CustodyRecord,
    shares: Vec<String>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let holders: Vec<String> = (1..=5).map(|i| format!("holder {i}")).collect();
        let Ok((record, set)) = split_root(&RootKey::generate(), 3, &holders, 1, "fuzz") else {
            unreachable!("a fixed, valid set")
        };
        let shares = set.iter().map(|s| s.encode().to_string()).collect();
        Fixture { record, shares }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    // The first byte picks which genuine shares are entered (bits 0..5) among the lines.
    let (pick, rest) = match data {
        [p, rest @ ..] => (*p, rest),
        [] => return,
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let mut u = match Unsealing::new(f.record.clone()) {
        Ok(u) => u,
        Err(_) => return,
    };
    let genuine: Vec<&String> = (0..5)
        .filter(|i| pick & (1 << i) != 0)
        .map(|i| &f.shares[i])
        .collect();
    let mut opened = false;
    let mut forged_seen = false;
    for (i, line) in text.split('\n').take(64).enumerate() {
        if let Ok(s) = Share::parse(line) {
            let again = Share::parse(&s.encode()).map(|t| (t.index(), t.set_id()));
            assert_eq!(
                again,
                Ok((s.index(), s.set_id())),
                "a parsed share re-encodes"
            );
            if !f.shares.iter().any(|g| {
                Share::parse(g)
                    .map(|t| t.index() == s.index() && t.set_id() == s.set_id())
                    .unwrap_or(false)
            }) {
                // A share of another set: refused at once below.
            } else {
                forged_seen = true;
            }
        }
        match u.enter(line) {
            Ok(Progress::Open { .. }) => opened = true,
            Ok(Progress::Need { .. }) => {}
            Err(e) => {
                let msg = e.to_string();
                // Every message is one of the fixed texts: nothing of the line is in it.
                // (Checking that the line is not a substring of the message fails on a
                // line that is the message itself, which the fuzzer finds.)
                let fixed = [
                    UnsealError::Share(ShareError::NotAShare).to_string(),
                    UnsealError::Share(ShareError::OtherSet).to_string(),
                    UnsealError::Share(ShareError::Repeated).to_string(),
                    UnsealError::Share(ShareError::Arithmetic).to_string(),
                    UnsealError::DoNotOpen.to_string(),
                ];
                assert!(
                    fixed.contains(&msg),
                    "an error that is not a fixed text: {msg}"
                );
                if matches!(e, UnsealError::DoNotOpen) {
                    forged_seen = true;
                }
            }
        }
        if let Some(g) = genuine.get(i) {
            match u.enter(g) {
                Ok(Progress::Open { .. }) => opened = true,
                Ok(Progress::Need { .. }) | Err(_) => {}
            }
        }
        if opened {
            break;
        }
    }
    let lines = text.split('\n').take(64).count();
    if genuine.len() >= 3 && lines >= genuine.len() && !forged_seen {
        assert!(
            opened,
            "refused lines must not stop genuine shares from opening"
        );
    }
});
