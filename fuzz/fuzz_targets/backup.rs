//! Fuzzes the backup archive reader `fiktiv_vault::backup::inspect`.
//!
//! The first byte picks the mode:
//! - even: the rest is an archive as found on disk. Garbage must be refused (an archive
//!   cannot be forged without the key), without panicking.
//! - odd: the rest describes an archive that this harness seals with the right key, in
//!   the format of vault/src/backup.rs (so the fuzzer gets past the integrity check):
//!   byte 1 = number of chunks (0..=3), byte 2 = header length, the header JSON, then
//!   the plaintext split into the chunks. Checks: it opens exactly when it has a chunk
//!   and its header is a valid `Header`; changing any one byte, cutting it short or
//!   appending to it makes it fail.
#![no_main]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // fuzz harness: a panic is the finding

use std::sync::OnceLock;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use fiktiv_vault::backup::{inspect, Header};
use fiktiv_vault::keys::BackupKey;
use fiktiv_vault::RootKey;
use libfuzzer_sys::fuzz_target;
use ring::{hkdf, hmac};
use sha2::{Digest, Sha256};

const ROOT_B64: &str = "ZnV6ei1maWt0aXYtZnV6ei1maWt0aXYtZnV6ei0xMjM=";

struct Keys {
    key: BackupKey,
    /// The same backup key's bytes, derived here as vault/src/keys.rs does.
    raw: [u8; 32],
}

struct Len32;
impl hkdf::KeyType for Len32 {
    fn len(&self) -> usize {
        32
    }
}

fn keys() -> &'static Keys {
    static K: OnceLock<Keys> = OnceLock::new();
    K.get_or_init(|| {
        let root = RootKey::from_base64(ROOT_B64).unwrap();
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"fiktiv root key v1").extract(&base64_decode(ROOT_B64));
        let mut raw = [0u8; 32];
        prk.expand(&[b"fiktiv/backup"], Len32).unwrap().fill(&mut raw).unwrap();
        let k = Keys {
            key: root.backup_key().unwrap(),
            raw,
        };
        // The harness seals as the vault does, or every structured input is meaningless.
        let header = br#"{"format":1,"created_at":"x","source_backend":"sqlite","schema_version":1,"tables":[]}"#;
        let a = seal(&k.raw, header, &[b"[]"]);
        assert!(inspect(&a, &k.key).is_ok(), "harness does not seal like vault/src/backup.rs");
        k
    })
}

/// Standard base64 of the fixed root key, decoded without another dependency.
fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for &c in s.as_bytes().iter().filter(|&&c| c != b'=') {
        acc = (acc << 6) | u32::from(val(c));
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

fn seal(raw: &[u8; 32], header: &[u8], chunks: &[&[u8]]) -> Vec<u8> {
    let salt = [7u8; 32];
    let mut out = Vec::new();
    out.extend_from_slice(b"FIKTIVBK");
    out.push(1);
    out.extend_from_slice(&salt);
    out.extend_from_slice(&(header.len() as u32).to_be_bytes());
    out.extend_from_slice(header);
    let prefix_hash = Sha256::digest(&out);
    let k = hmac::Key::new(hmac::HMAC_SHA256, raw);
    let ak = hmac::sign(&k, &salt);
    let cipher = Aes256Gcm::new_from_slice(ak.as_ref()).unwrap();
    for (i, chunk) in chunks.iter().enumerate() {
        let last = i + 1 == chunks.len();
        let mut aad = prefix_hash.to_vec();
        aad.extend_from_slice(&(i as u64).to_be_bytes());
        aad.push(u8::from(last));
        let mut nonce = [0u8; 12];
        nonce[4..].copy_from_slice(&(i as u64).to_be_bytes());
        let ct = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: chunk,
                    aad: &aad,
                },
            )
            .unwrap();
        out.extend_from_slice(&(ct.len() as u32).to_be_bytes());
        out.extend_from_slice(&ct);
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let k = keys();
    let Some((&mode, rest)) = data.split_first() else {
        let _ = inspect(data, &k.key);
        return;
    };
    if mode & 1 == 0 {
        assert!(
            inspect(rest, &k.key).is_err(),
            "a forged archive was accepted"
        );
        return;
    }
    let [n, hlen, body @ ..] = rest else {
        return;
    };
    let n = usize::from(n % 4);
    let hlen = usize::from(*hlen).min(body.len());
    let (header, plain) = body.split_at(hlen);
    let size = plain.len().div_ceil(n.max(1)).max(1);
    let mut chunks: Vec<&[u8]> = plain.chunks(size).take(n).collect();
    while chunks.len() < n {
        chunks.push(&[]);
    }
    let archive = seal(&k.raw, header, &chunks);
    let valid = n > 0 && serde_json::from_slice::<Header>(header).is_ok();
    match inspect(&archive, &k.key) {
        Ok(h) => {
            assert!(valid, "an archive without chunks or header opened");
            assert_eq!(Some(h), serde_json::from_slice::<Header>(header).ok());
        }
        Err(_) => assert!(!valid, "a valid archive was refused"),
    }
    if !valid {
        return;
    }
    // Tampering: one byte changed, cut short, extended.
    let pos = usize::from(plain.first().copied().unwrap_or(0)) * 131 % archive.len();
    let mut t = archive.clone();
    t[pos] ^= 0x01 | plain.last().copied().unwrap_or(0x80);
    assert!(inspect(&t, &k.key).is_err(), "a changed archive opened");
    assert!(
        inspect(&archive[..pos], &k.key).is_err(),
        "a cut archive opened"
    );
    let mut longer = archive.clone();
    longer.extend_from_slice(&[0, 0, 0, 0]);
    assert!(
        inspect(&longer, &k.key).is_err(),
        "an extended archive opened"
    );
});
