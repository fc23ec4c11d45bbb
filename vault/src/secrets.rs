//! Sealing of secrets that belong to no case: today the TOTP secrets of staff accounts.
//!
//! Case data is sealed under per-case data keys ([`crate::seal`]); a staff member's
//! second-factor secret has no case, so it is sealed under its own key, derived from
//! the root key with the HKDF label `fiktiv/staff-secrets` (see [`crate::keys`]). The
//! key never wraps a case key and no case key can open these values.
//!
//! Format: `format(1) || nonce(12) || AES-256-GCM(ciphertext+tag)`. The associated
//! data binds a sealed value to its purpose (`"totp"`) and its owner (the account id),
//! so a value copied to another account or purpose fails to open.

use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::keys::KeyBytes;
use crate::seal::SealError;

/// The HKDF label of [`StaffSecretsKey`].
pub const STAFF_SECRETS_LABEL: &[u8] = b"fiktiv/staff-secrets";

const FORMAT_V1: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// Seals staff secrets (TOTP). Zeroized on drop; `Debug` is redacted.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct StaffSecretsKey(pub(crate) KeyBytes);

impl fmt::Debug for StaffSecretsKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StaffSecretsKey([redacted])")
    }
}

fn aad(purpose: &str, owner: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(32 + purpose.len() + owner.len());
    aad.extend_from_slice(b"fiktiv.staff-secret.v1\0");
    aad.extend_from_slice(&(purpose.len() as u32).to_be_bytes());
    aad.extend_from_slice(purpose.as_bytes());
    aad.extend_from_slice(&(owner.len() as u32).to_be_bytes());
    aad.extend_from_slice(owner.as_bytes());
    aad
}

fn cipher(key: &StaffSecretsKey) -> Result<Aes256Gcm, SealError> {
    Aes256Gcm::new_from_slice(&key.0 .0).map_err(|_| SealError::Encrypt)
}

impl StaffSecretsKey {
    /// Seal `secret` for `purpose` (e.g. `"totp"`) of `owner` (an account id).
    pub fn seal(&self, purpose: &str, owner: &str, secret: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = cipher(self)?
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: secret,
                    aad: &aad(purpose, owner),
                },
            )
            .map_err(|_| SealError::Encrypt)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
        out.push(FORMAT_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Open a value sealed by [`StaffSecretsKey::seal`] with the same purpose and owner.
    pub fn open(
        &self,
        purpose: &str,
        owner: &str,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, SealError> {
        if sealed.len() < 1 + NONCE_LEN + TAG_LEN || sealed[0] != FORMAT_V1 {
            return Err(SealError::Malformed);
        }
        let (nonce, ct) = sealed[1..].split_at(NONCE_LEN);
        cipher(self)?
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: &aad(purpose, owner),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| SealError::Authentication)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::{KeyRing, RootKey};

    #[test]
    fn round_trip_and_binding() {
        let ring = KeyRing::new(RootKey::generate()).unwrap();
        let key = ring.staff_secrets().unwrap();
        let sealed = key.seal("totp", "user-1", b"twenty bytes secret!").unwrap();
        assert!(!sealed.windows(b"twenty".len()).any(|w| w == b"twenty"));
        assert_eq!(
            key.open("totp", "user-1", &sealed).unwrap().as_slice(),
            b"twenty bytes secret!"
        );
        assert_eq!(
            key.open("totp", "user-2", &sealed).unwrap_err(),
            SealError::Authentication
        );
        assert_eq!(
            key.open("other", "user-1", &sealed).unwrap_err(),
            SealError::Authentication
        );
        let mut bad = sealed.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(key.open("totp", "user-1", &bad).is_err());
        assert_eq!(
            key.open("totp", "user-1", &[1, 2]).unwrap_err(),
            SealError::Malformed
        );
        // Another root key cannot open it.
        let other = KeyRing::new(RootKey::generate()).unwrap();
        assert!(other
            .staff_secrets()
            .unwrap()
            .open("totp", "user-1", &sealed)
            .is_err());
        assert_eq!(format!("{key:?}"), "StaffSecretsKey([redacted])");
    }
}
