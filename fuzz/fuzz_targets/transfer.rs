//! Fuzzes the reader of case transfer packages (`fiktiv_routine::transfer::import`):
//! what another municipality's Fiktiv sends, pasted by a school.
//!
//! Input: byte 0's low bit picks the mode; the rest is JSON.
//! - even: the rest is a package as received (`Package`): forged, cut, re-encoded, for
//!   another Fiktiv, from an unknown sender;
//! - odd: the rest is a package's content (`Payload`), which the harness seals with the
//!   configured sender's key for this Fiktiv (`seal_package`), so that the input gets
//!   past the authentication and into the checks of what an authentic sender wrote.
//!
//! Two vaults on SQLite (the sender's and the receiver's), a school's permit for
//! `case.transfer-in` on `unit-a` from the built-in policies.
//!
//! Checks: nothing panics; a package the harness did not seal is never imported; an
//! import adds exactly one case, a refusal none; no input, however malformed, ends in
//! an internal error (every refusal is one of the routine's fixed answers).
#![no_main]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // fuzz harness: a panic is the finding

use std::sync::{Arc, OnceLock};

use chrono::{TimeZone, Utc};
use fiktiv_policies::{Action, Authorizer, Permit, Principal, Resource, Role};
use fiktiv_routine::transfer::{self, Package, Payload, TransferConfig, TransferSender};
use fiktiv_routine::DomainError;
use fiktiv_vault::{Db, KeyRing, ManualClock, RootKey, Vault};
use libfuzzer_sys::fuzz_target;

struct Setup {
    rt: tokio::runtime::Runtime,
    sender: Vault,
    receiver: Vault,
    receiver_key: String,
    settings: TransferConfig,
    permit: Permit,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

fn vault(rt: &tokio::runtime::Runtime, dir: &tempfile::TempDir) -> Vault {
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("fiktiv.db").display()
    );
    let db = rt.block_on(Db::connect(&url)).unwrap();
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap());
    Vault::new(
        db,
        KeyRing::new(RootKey::generate()).unwrap(),
        Arc::new(clock),
    )
}

fn setup() -> &'static Setup {
    static S: OnceLock<Setup> = OnceLock::new();
    S.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let tmp = || {
            let shm = std::path::Path::new("/dev/shm");
            if shm.is_dir() {
                tempfile::tempdir_in(shm).unwrap()
            } else {
                tempfile::tempdir().unwrap()
            }
        };
        let dirs = (tmp(), tmp());
        let sender = vault(&rt, &dirs.0);
        let receiver = vault(&rt, &dirs.1);
        let sender_key = rt.block_on(transfer::public_key(&sender)).unwrap();
        let receiver_key = rt.block_on(transfer::public_key(&receiver)).unwrap();
        let settings = TransferConfig {
            municipality: Some("Mottagarby".into()),
            senders: vec![TransferSender {
                name: "Avsändarby".into(),
                key: sender_key,
            }],
        };
        let principal = Principal::new("staff:fuzz", vec![Role::School], vec!["unit-a".into()]);
        let permit = Authorizer::embedded()
            .unwrap()
            .authorize(
                &principal,
                Action::CaseTransferIn,
                &Resource::Unit("unit-a".into()),
            )
            .unwrap();
        Setup {
            rt,
            sender,
            receiver,
            receiver_key,
            settings,
            permit,
            _dirs: dirs,
        }
    })
}

async fn cases(v: &Vault) -> i64 {
    sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM cases")
        .fetch_one(v.db().pool())
        .await
        .unwrap()
}

fuzz_target!(|data: &[u8]| {
    let s = setup();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let sealed_here = mode & 1 == 1;
    let package: Package = if sealed_here {
        let Ok(payload) = serde_json::from_slice::<Payload>(rest) else {
            return;
        };
        s.rt.block_on(transfer::seal_package(
            &s.sender,
            "Avsändarby",
            &s.receiver_key,
            &payload,
        ))
        .unwrap()
    } else {
        let Ok(p) = serde_json::from_slice::<Package>(rest) else {
            return;
        };
        p
    };
    let before = s.rt.block_on(cases(&s.receiver));
    let result = s.rt.block_on(transfer::import(
        &s.receiver,
        &s.settings,
        &s.permit,
        "unit-a",
        package,
    ));
    let after = s.rt.block_on(cases(&s.receiver));
    match result {
        Ok(_) => {
            assert!(
                sealed_here,
                "a package the harness did not seal was imported"
            );
            assert_eq!(after, before + 1, "an import adds one case");
        }
        Err(e) => {
            assert_eq!(after, before, "a refused import added a case");
            assert!(
                !matches!(e, DomainError::Internal(_)),
                "an input ended in an internal error: {e}"
            );
        }
    }
});
