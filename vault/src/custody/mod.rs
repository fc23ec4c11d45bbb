//! Key custody: who can open the root key.
//!
//! Three providers, chosen in the configuration (`[keys] provider`):
//!
//! - `file`: the root key is in `DATA_DIR/root.key` (or `FIKTIV_ROOT_KEY`). Whoever has
//!   that file has every sealed value. Kept for the embedded quick start.
//! - `shares`: the root key is stored only wrapped (AES-256-GCM) under a *custody key*
//!   that is never stored anywhere: it is split into `n` shares with threshold `k`
//!   (Shamir's secret sharing over GF(256), the audited `vsss-rs` crate), each share
//!   printed once for a named holder. The service starts sealed and opens when `k`
//!   holders have entered their shares ([`unseal::Unsealing`]).
//! - `pkcs11`: the custody key is an AES-256 key inside an HSM, created there as
//!   sensitive and not extractable; the HSM unwraps the root key at start (PKCS#11,
//!   the `cryptoki` crate). The custody key never leaves the HSM.
//!
//! ```text
//! custody key (k of n shares, or inside the HSM; never stored)
//!   └─ wraps the root key (the key_custody row, AES-256-GCM)
//!        └─ HKDF -> key-encryption keys, blind-index key, audit key, ... (see keys)
//! ```
//!
//! Rotating the custody key ([`rewrap`], `fiktiv keys rotate-root`) wraps the same
//! root key under a new custody key: nothing below it is re-sealed, and older shares
//! (or the older HSM key) no longer open the current row.

pub mod hsm;
pub mod shares;
pub mod unseal;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use zeroize::Zeroizing;

use crate::db::Db;
use crate::keys::{KeyBytes, RootKey};

/// Which provider keeps the custody of the root key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// `DATA_DIR/root.key` or `FIKTIV_ROOT_KEY`.
    #[default]
    File,
    /// `k` of `n` key shares held by named people.
    Shares,
    /// A key inside an HSM, over PKCS#11.
    Pkcs11,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::File => "file",
            Provider::Shares => "shares",
            Provider::Pkcs11 => "pkcs11",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "file" => Some(Provider::File),
            "shares" => Some(Provider::Shares),
            "pkcs11" => Some(Provider::Pkcs11),
            _ => None,
        }
    }
}

impl std::fmt::Display for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Custody errors. None of them holds key material or says which share was wrong.
#[derive(Debug, thiserror::Error)]
pub enum CustodyError {
    #[error("database error")]
    Db(#[from] sqlx::Error),
    #[error(
        "the keys are kept by the {configured} provider in the configuration, but this \
         database's root key is kept by {stored}; change [keys] provider or convert with \
         `fiktiv keys custody`"
    )]
    ProviderMismatch {
        configured: Provider,
        stored: String,
    },
    #[error(
        "no key custody is recorded in this database; make it with `fiktiv init` \
         (or convert a key file with `fiktiv keys custody`)"
    )]
    NotSetUp,
    #[error("the custody key does not open this database's root key")]
    WrongKey,
    #[error("the stored key custody is malformed")]
    Malformed,
    #[error("encryption failed")]
    Encrypt,
    #[error(transparent)]
    Share(#[from] shares::ShareError),
    #[error(transparent)]
    Hsm(#[from] hsm::HsmError),
}

/// The `key_custody` row: how the root key is wrapped. Not secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustodyRecord {
    pub provider: Provider,
    /// 1 at creation, +1 at every rotation of the custody key.
    pub generation: i64,
    /// Shares: the id printed in every share of this set (hex). HSM: the key's label.
    pub set_id: String,
    /// Shares: how many shares open the key. HSM: 0.
    pub threshold: u8,
    /// Shares: the holders' names, share `i` held by `holders[i - 1]`. HSM: empty.
    pub holders: Vec<String>,
    /// base64(nonce(12) || AES-256-GCM(custody key, root key)).
    pub wrapped: String,
    pub created_at: String,
}

impl std::fmt::Debug for CustodyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustodyRecord")
            .field("provider", &self.provider)
            .field("generation", &self.generation)
            .field("set_id", &self.set_id)
            .field("threshold", &self.threshold)
            .field("holders", &self.holders.len())
            .finish_non_exhaustive()
    }
}

/// The associated data of a wrap: binds it to its provider, set and generation.
fn aad(provider: Provider, set_id: &str, generation: i64) -> Vec<u8> {
    format!("fiktiv.custody.v1|{provider}|{set_id}|{generation}").into_bytes()
}

const NONCE_LEN: usize = 12;

impl CustodyRecord {
    /// The associated data this record's wrap was made with.
    pub fn aad(&self) -> Vec<u8> {
        aad(self.provider, &self.set_id, self.generation)
    }

    /// Open the root key with a custody key held in memory (shares).
    pub(crate) fn open_with(&self, custody: &KeyBytes) -> Result<RootKey, CustodyError> {
        let raw = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(&self.wrapped)
                .map_err(|_| CustodyError::Malformed)?,
        );
        if raw.len() <= NONCE_LEN {
            return Err(CustodyError::Malformed);
        }
        let (nonce, ct) = raw.split_at(NONCE_LEN);
        let cipher = Aes256Gcm::new_from_slice(&custody.0).map_err(|_| CustodyError::Malformed)?;
        let aad = self.aad();
        let plain = Zeroizing::new(
            cipher
                .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: &aad })
                .map_err(|_| CustodyError::WrongKey)?,
        );
        root_from_bytes(&plain)
    }
}

pub(crate) fn root_from_bytes(plain: &[u8]) -> Result<RootKey, CustodyError> {
    let arr: [u8; 32] = plain.try_into().map_err(|_| CustodyError::Malformed)?;
    Ok(RootKey(KeyBytes(arr)))
}

/// Wrap `root` under a custody key held in memory.
pub(crate) fn wrap_with(
    custody: &KeyBytes,
    root: &RootKey,
    aad: &[u8],
) -> Result<String, CustodyError> {
    let cipher = Aes256Gcm::new_from_slice(&custody.0).map_err(|_| CustodyError::Encrypt)?;
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let ct = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: &root.0 .0,
                aad,
            },
        )
        .map_err(|_| CustodyError::Encrypt)?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&ct);
    Ok(base64::engine::general_purpose::STANDARD.encode(out))
}

/// A new set of shares for `root`: a fresh custody key, split `threshold` of
/// `holders.len()`, and the record that wraps `root` under it. The custody key is
/// wiped when this returns; only the shares can make it again.
pub fn split_root(
    root: &RootKey,
    threshold: u8,
    holders: &[String],
    generation: i64,
    now: &str,
) -> Result<(CustodyRecord, Vec<shares::Share>), CustodyError> {
    shares::check_holders(threshold, holders)?;
    let custody = KeyBytes::random();
    let set_id = shares::new_set_id();
    let wrapped = wrap_with(&custody, root, &aad(Provider::Shares, &set_id, generation))?;
    let set = shares::split(&custody, &set_id, threshold, holders.len())?;
    let record = CustodyRecord {
        provider: Provider::Shares,
        generation,
        set_id,
        threshold,
        holders: holders.to_vec(),
        wrapped,
        created_at: now.to_string(),
    };
    Ok((record, set))
}

/// A new HSM key (labelled for this generation) and the record that wraps `root` under it.
pub fn hsm_wrap_root(
    hsm: &hsm::HsmSettings,
    root: &RootKey,
    generation: i64,
    now: &str,
) -> Result<CustodyRecord, CustodyError> {
    let label = hsm::key_label(generation);
    hsm::create_key(hsm, &label)?;
    let aad = aad(Provider::Pkcs11, &label, generation);
    let wrapped = hsm::wrap(hsm, &label, root, &aad)?;
    Ok(CustodyRecord {
        provider: Provider::Pkcs11,
        generation,
        set_id: label,
        threshold: 0,
        holders: Vec::new(),
        wrapped,
        created_at: now.to_string(),
    })
}

/// Open the root key through the HSM.
pub fn hsm_open_root(
    hsm: &hsm::HsmSettings,
    record: &CustodyRecord,
) -> Result<RootKey, CustodyError> {
    if record.provider != Provider::Pkcs11 {
        return Err(CustodyError::ProviderMismatch {
            configured: Provider::Pkcs11,
            stored: record.provider.to_string(),
        });
    }
    hsm::unwrap(hsm, &record.set_id, &record.wrapped, &record.aad())
}

/// The stored custody record, if any (none: the file provider).
pub async fn load(db: &Db) -> Result<Option<CustodyRecord>, CustodyError> {
    let row = sqlx::query(
        "SELECT provider, generation, set_id, threshold, holders, wrapped, created_at \
         FROM key_custody WHERE id = 1",
    )
    .fetch_optional(db.pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let provider: String = row.try_get("provider")?;
    let holders: String = row.try_get("holders")?;
    let threshold: i32 = row.try_get("threshold")?;
    Ok(Some(CustodyRecord {
        provider: Provider::parse(&provider).ok_or(CustodyError::Malformed)?,
        generation: row.try_get("generation")?,
        set_id: row.try_get("set_id")?,
        threshold: u8::try_from(threshold).map_err(|_| CustodyError::Malformed)?,
        holders: serde_json::from_str(&holders).map_err(|_| CustodyError::Malformed)?,
        wrapped: row.try_get("wrapped")?,
        created_at: row.try_get("created_at")?,
    }))
}

/// The record for `configured`, refusing a database whose key is kept otherwise.
pub async fn load_for(db: &Db, configured: Provider) -> Result<CustodyRecord, CustodyError> {
    match load(db).await? {
        Some(r) if r.provider == configured => Ok(r),
        Some(r) => Err(CustodyError::ProviderMismatch {
            configured,
            stored: r.provider.to_string(),
        }),
        None if configured == Provider::File => Err(CustodyError::ProviderMismatch {
            configured,
            stored: "file".into(),
        }),
        None => Err(CustodyError::NotSetUp),
    }
}

/// Store (insert or replace) the custody record, in one transaction.
pub async fn store(db: &Db, record: &CustodyRecord) -> Result<(), CustodyError> {
    let holders = serde_json::to_string(&record.holders).map_err(|_| CustodyError::Malformed)?;
    let mut tx = db.pool().begin().await?;
    sqlx::query("DELETE FROM key_custody WHERE id = 1")
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO key_custody (id, provider, generation, set_id, threshold, holders, wrapped, created_at) \
         VALUES (1, $1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(record.provider.as_str())
    .bind(record.generation)
    .bind(&record.set_id)
    .bind(i32::from(record.threshold))
    .bind(holders)
    .bind(&record.wrapped)
    .bind(&record.created_at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn holders(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("holder{i}")).collect()
    }

    #[test]
    fn a_split_root_opens_with_any_threshold_of_shares_and_not_with_fewer() {
        let root = RootKey::generate();
        let (rec, set) = split_root(&root, 3, &holders(5), 1, "t").unwrap();
        for pick in [[0usize, 1, 2], [0, 2, 4], [4, 3, 1], [1, 2, 3]] {
            let chosen: Vec<_> = pick.iter().map(|&i| set[i].clone()).collect();
            let custody = shares::combine(&chosen).unwrap();
            let opened = rec.open_with(&custody).unwrap();
            assert_eq!(opened.0 .0, root.0 .0);
        }
        // Two of five make some key, never the custody key.
        let custody = shares::combine(&set[..2]).unwrap();
        assert!(matches!(
            rec.open_with(&custody),
            Err(CustodyError::WrongKey)
        ));
    }

    #[test]
    fn a_wrap_is_bound_to_its_generation() {
        let root = RootKey::generate();
        let (mut rec, set) = split_root(&root, 2, &holders(3), 1, "t").unwrap();
        rec.generation = 2;
        let custody = shares::combine(&set[..2]).unwrap();
        assert!(matches!(
            rec.open_with(&custody),
            Err(CustodyError::WrongKey)
        ));
    }
}
