//! Envelope encryption.
//!
//! Each case has its own random 256-bit [`DataKey`]. It is stored only wrapped
//! (AES-256-GCM) by a versioned key-encryption key. Each sealed field is AES-256-GCM
//! with a fresh random 96-bit nonce and associated data that binds it to its case id,
//! field name and data-key version, so a sealed value moved to another case or field
//! fails to open.
//!
//! Wire format of both sealed fields and wrapped keys: `format(1) || nonce(12) || ciphertext+tag`.

use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::keys::{Kek, KeyBytes};
use crate::CaseId;

const FORMAT_V1: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// Number of encryptions after which a key must be rotated. NIST SP 800-38D allows
/// 2^32 invocations with random 96-bit nonces; we stop at half of that.
pub const MAX_ENCRYPTIONS_PER_KEY: i64 = 1 << 31;

/// Sealing and opening errors. They say nothing about the plaintext.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("sealed value is malformed")]
    Malformed,
    #[error("sealed value failed authentication (wrong key, case, field or tampered)")]
    Authentication,
    #[error("encryption failed")]
    Encrypt,
}

/// A case's data key, wiped on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct DataKey(KeyBytes);

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey([redacted])")
    }
}

impl DataKey {
    pub fn generate() -> Self {
        Self(KeyBytes::random())
    }

    /// Raw AES-256-GCM over `plaintext` with this key, for the benchmark baseline only.
    #[doc(hidden)]
    pub fn raw_bytes_for_bench(&self) -> [u8; 32] {
        self.0 .0
    }
}

fn cipher(key: &KeyBytes) -> Result<Aes256Gcm, SealError> {
    Aes256Gcm::new_from_slice(&key.0).map_err(|_| SealError::Encrypt)
}

fn encrypt(key: &KeyBytes, aad: &[u8], msg: &[u8]) -> Result<Vec<u8>, SealError> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let ct = cipher(key)?
        .encrypt(Nonce::from_slice(&nonce), Payload { msg, aad })
        .map_err(|_| SealError::Encrypt)?;
    let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
    out.push(FORMAT_V1);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

fn decrypt(key: &KeyBytes, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
    if sealed.len() < 1 + NONCE_LEN + TAG_LEN || sealed[0] != FORMAT_V1 {
        return Err(SealError::Malformed);
    }
    let (nonce, ct) = sealed[1..].split_at(NONCE_LEN);
    cipher(key)?
        .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
        .map(Zeroizing::new)
        .map_err(|_| SealError::Authentication)
}

fn field_aad(case: &CaseId, field: &str, dk_version: u32) -> Vec<u8> {
    let mut aad = Vec::with_capacity(64 + field.len());
    aad.extend_from_slice(b"fiktiv.seal.v1\0");
    aad.extend_from_slice(case.as_bytes());
    aad.extend_from_slice(&(field.len() as u32).to_be_bytes());
    aad.extend_from_slice(field.as_bytes());
    aad.extend_from_slice(&dk_version.to_be_bytes());
    aad
}

fn wrap_aad(case: &CaseId, kek_version: u32) -> Vec<u8> {
    let mut aad = Vec::with_capacity(40);
    aad.extend_from_slice(b"fiktiv.wrap.v1\0");
    aad.extend_from_slice(case.as_bytes());
    aad.extend_from_slice(&kek_version.to_be_bytes());
    aad
}

/// Seal one field of one case.
pub fn seal(
    dk: &DataKey,
    case: &CaseId,
    field: &str,
    dk_version: u32,
    plaintext: &[u8],
) -> Result<Vec<u8>, SealError> {
    encrypt(&dk.0, &field_aad(case, field, dk_version), plaintext)
}

/// Open one field of one case. Fails if any byte, the case, the field or the version differs.
pub fn open(
    dk: &DataKey,
    case: &CaseId,
    field: &str,
    dk_version: u32,
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, SealError> {
    decrypt(&dk.0, &field_aad(case, field, dk_version), sealed)
}

/// Wrap a case's data key with a key-encryption key version.
pub fn wrap(
    kek: &Kek,
    kek_version: u32,
    case: &CaseId,
    dk: &DataKey,
) -> Result<Vec<u8>, SealError> {
    encrypt(&kek.0, &wrap_aad(case, kek_version), &dk.0 .0)
}

/// Unwrap a case's data key.
pub fn unwrap_key(
    kek: &Kek,
    kek_version: u32,
    case: &CaseId,
    wrapped: &[u8],
) -> Result<DataKey, SealError> {
    let raw = decrypt(&kek.0, &wrap_aad(case, kek_version), wrapped)?;
    let arr: [u8; 32] = raw
        .as_slice()
        .try_into()
        .map_err(|_| SealError::Malformed)?;
    Ok(DataKey(KeyBytes(arr)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::keys::RootKey;

    #[test]
    fn wrap_round_trip_and_binding() {
        let root = RootKey::generate();
        let kek = root.kek(1).unwrap();
        let case = CaseId::new();
        let dk = DataKey::generate();
        let w = wrap(&kek, 1, &case, &dk).unwrap();
        let back = unwrap_key(&kek, 1, &case, &w).unwrap();
        assert_eq!(back.0 .0, dk.0 .0);
        assert_eq!(
            unwrap_key(&kek, 2, &case, &w).unwrap_err(),
            SealError::Authentication
        );
        assert_eq!(
            unwrap_key(&kek, 1, &CaseId::new(), &w).unwrap_err(),
            SealError::Authentication
        );
        assert_eq!(
            unwrap_key(&root.kek(2).unwrap(), 1, &case, &w).unwrap_err(),
            SealError::Authentication
        );
    }

    #[test]
    fn short_input_is_malformed() {
        let dk = DataKey::generate();
        let case = CaseId::new();
        assert_eq!(
            open(&dk, &case, "f", 1, &[]).unwrap_err(),
            SealError::Malformed
        );
        assert_eq!(
            open(&dk, &case, "f", 1, &[1; 28]).unwrap_err(),
            SealError::Malformed
        );
    }
}
