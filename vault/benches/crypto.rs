//! Sealing and opening a 1 KiB record, and one blind-index computation, each beside the
//! raw primitive on the same input in the same run. `scripts/bench-crypto` turns the
//! results into ratios for docs/PERFORMANCE.md.
#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmark

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use fiktiv_vault::seal::{self, DataKey};
use fiktiv_vault::{CaseId, IndexKind, RootKey};
use rand::RngCore;

fn bench(c: &mut Criterion) {
    let record = vec![0x5au8; 1024];
    let dk = DataKey::generate();
    let case = CaseId::new();
    let raw = Aes256Gcm::new_from_slice(&dk.raw_bytes_for_bench()).unwrap();
    let sealed = seal::seal(&dk, &case, "identity:pupil", 1, &record).unwrap();

    let mut g = c.benchmark_group("seal-1KiB");
    g.bench_function("fiktiv", |b| {
        b.iter(|| seal::seal(&dk, &case, "identity:pupil", 1, black_box(&record)).unwrap())
    });
    g.bench_function("raw-aes-256-gcm", |b| {
        b.iter(|| {
            let mut nonce = [0u8; 12];
            rand::rngs::OsRng.fill_bytes(&mut nonce);
            raw.encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: black_box(&record),
                    aad: b"",
                },
            )
            .unwrap()
        })
    });
    g.finish();

    let raw_ct = {
        let nonce = [7u8; 12];
        (
            nonce,
            raw.encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &record,
                    aad: b"",
                },
            )
            .unwrap(),
        )
    };
    let mut g = c.benchmark_group("open-1KiB");
    g.bench_function("fiktiv", |b| {
        b.iter(|| seal::open(&dk, &case, "identity:pupil", 1, black_box(&sealed)).unwrap())
    });
    g.bench_function("raw-aes-256-gcm", |b| {
        b.iter(|| {
            raw.decrypt(
                Nonce::from_slice(&raw_ct.0),
                Payload {
                    msg: black_box(&raw_ct.1),
                    aad: b"",
                },
            )
            .unwrap()
        })
    });
    g.finish();

    let bk = RootKey::generate().blind_key().unwrap();
    let value = "201001010009";
    let mut g = c.benchmark_group("blind-index");
    g.bench_function("fiktiv", |b| {
        b.iter(|| bk.index(IndexKind::PersonalNumber, black_box(value)))
    });
    g.bench_function("raw-hmac-sha256", |b| {
        b.iter(|| bk.raw_hmac_for_bench(black_box(value.as_bytes())))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
