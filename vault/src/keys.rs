//! The key hierarchy.
//!
//! ```text
//! root key (32 random bytes, key file mode 0600 or FIKTIV_ROOT_KEY; never in the database)
//!   ├─ HKDF "fiktiv/kek/v{N}"   -> key-encryption key version N (wraps per-case data keys)
//!   ├─ HKDF "fiktiv/blind-index" -> blind-index key (HMAC-SHA256 over normalised identifiers)
//!   ├─ HKDF "fiktiv/audit"       -> audit key (HMAC-SHA256 over audit events)
//!   └─ HKDF "fiktiv/backup"      -> backup key (encrypts backup archives)
//! ```
//!
//! Every key type zeroizes on drop and prints `[redacted]` in `Debug`.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::Path;

use base64::Engine as _;
use rand::RngCore;
use ring::hkdf;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Name of the key file inside the data directory.
pub const KEY_FILE_NAME: &str = "root.key";
/// Environment variable that may carry the root key (base64 of 32 bytes).
pub const ROOT_KEY_ENV: &str = "FIKTIV_ROOT_KEY";

const HKDF_SALT: &[u8] = b"fiktiv root key v1";

/// Errors from loading or creating keys. Messages never contain key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "key file {path} is readable by group or others (mode {mode:o}); run `chmod 600 {path}`"
    )]
    Permissions { path: String, mode: u32 },
    #[error("key file {path} not found; run `fiktiv init --data-dir DIR` first")]
    Missing { path: String },
    #[error("key file {path} already exists; refusing to overwrite it")]
    Exists { path: String },
    #[error("the root key is malformed: expected base64 of exactly 32 bytes")]
    Malformed,
    #[error("key file {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("key derivation failed")]
    Derivation,
}

/// 32 bytes of key material, wiped on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct KeyBytes(pub(crate) [u8; 32]);

impl KeyBytes {
    pub(crate) fn random() -> Self {
        let mut b = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut b);
        Self(b)
    }
}

impl fmt::Debug for KeyBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

macro_rules! key_type {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Clone, Zeroize, ZeroizeOnDrop)]
        pub struct $name(pub(crate) KeyBytes);

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "([redacted])"))
            }
        }
    };
}

key_type!(
    /// The root of the hierarchy. Only ever in the key file or the environment.
    RootKey
);
key_type!(
    /// Wraps per-case data keys. One per version; see [`RootKey::kek`].
    Kek
);
key_type!(
    /// Computes blind indexes.
    BlindKey
);
key_type!(
    /// Authenticates audit events.
    AuditKey
);
key_type!(
    /// Encrypts backup archives.
    BackupKey
);

struct Len32;
impl hkdf::KeyType for Len32 {
    fn len(&self) -> usize {
        32
    }
}

impl RootKey {
    /// A fresh random root key.
    pub fn generate() -> Self {
        Self(KeyBytes::random())
    }

    /// Decode a base64 root key (as given in `FIKTIV_ROOT_KEY`).
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        let raw = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|_| KeyError::Malformed)?,
        );
        let arr: [u8; 32] = raw.as_slice().try_into().map_err(|_| KeyError::Malformed)?;
        Ok(Self(KeyBytes(arr)))
    }

    /// Base64 of the key, for `fiktiv init --print-key` style escrow. Wiped on drop.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(self.0 .0))
    }

    /// Load the key: from `FIKTIV_ROOT_KEY` if set, else from `DIR/root.key`.
    /// The key file must not be readable by group or others.
    pub fn load(data_dir: &Path) -> Result<Self, KeyError> {
        if let Ok(text) = std::env::var(ROOT_KEY_ENV) {
            return Self::from_base64(&text);
        }
        Self::load_file(&data_dir.join(KEY_FILE_NAME))
    }

    /// Load a key file, refusing one whose mode lets group or others read it.
    pub fn load_file(path: &Path) -> Result<Self, KeyError> {
        let shown = path.display().to_string();
        let meta = fs::metadata(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => KeyError::Missing {
                path: shown.clone(),
            },
            _ => KeyError::Io {
                path: shown.clone(),
                source: e,
            },
        })?;
        check_mode(&meta, &shown)?;
        let text = Zeroizing::new(fs::read_to_string(path).map_err(|e| KeyError::Io {
            path: shown.clone(),
            source: e,
        })?);
        Self::from_base64(&text)
    }

    /// Write this key to a new file with mode 0600. Refuses to overwrite.
    pub fn write_new(&self, path: &Path) -> Result<(), KeyError> {
        let shown = path.display().to_string();
        let io = |e: std::io::Error| KeyError::Io {
            path: shown.clone(),
            source: e,
        };
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => KeyError::Exists {
                path: shown.clone(),
            },
            _ => io(e),
        })?;
        let text = self.to_base64();
        f.write_all(text.as_bytes()).map_err(io)?;
        f.write_all(b"\n").map_err(io)?;
        f.sync_all().map_err(io)?;
        Ok(())
    }

    fn derive(&self, info: &[u8]) -> Result<KeyBytes, KeyError> {
        let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, HKDF_SALT);
        let prk = salt.extract(&self.0 .0);
        let info = [info];
        let okm = prk.expand(&info, Len32).map_err(|_| KeyError::Derivation)?;
        let mut out = KeyBytes([0u8; 32]);
        okm.fill(&mut out.0).map_err(|_| KeyError::Derivation)?;
        Ok(out)
    }

    /// The key-encryption key of the given version.
    pub fn kek(&self, version: u32) -> Result<Kek, KeyError> {
        let info = format!("fiktiv/kek/v{version}");
        Ok(Kek(self.derive(info.as_bytes())?))
    }

    pub fn blind_key(&self) -> Result<BlindKey, KeyError> {
        Ok(BlindKey(self.derive(b"fiktiv/blind-index")?))
    }

    pub fn audit_key(&self) -> Result<AuditKey, KeyError> {
        Ok(AuditKey(self.derive(b"fiktiv/audit")?))
    }

    pub fn backup_key(&self) -> Result<BackupKey, KeyError> {
        Ok(BackupKey(self.derive(b"fiktiv/backup")?))
    }
}

#[cfg(unix)]
fn check_mode(meta: &fs::Metadata, shown: &str) -> Result<(), KeyError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyError::Permissions {
            path: shown.to_string(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_mode(_meta: &fs::Metadata, _shown: &str) -> Result<(), KeyError> {
    Ok(())
}

/// All keys the running service needs, derived once at startup.
#[derive(Clone, Debug)]
pub struct KeyRing {
    root: RootKey,
    blind: BlindKey,
    audit: AuditKey,
    name_parts: crate::name_parts::NamePartKey,
}

impl KeyRing {
    pub fn new(root: RootKey) -> Result<Self, KeyError> {
        Ok(Self {
            blind: root.blind_key()?,
            audit: root.audit_key()?,
            name_parts: crate::name_parts::NamePartKey::from_key_bytes(
                &root.derive(crate::name_parts::TAG_LABEL)?,
            ),
            root,
        })
    }

    /// The key of the name-part tags ([`crate::name_parts`]), HKDF label
    /// `fiktiv/name-part-tag`.
    pub fn name_parts(&self) -> &crate::name_parts::NamePartKey {
        &self.name_parts
    }

    /// The key that seals name-part tags at rest, HKDF label `fiktiv/name-part-seal`.
    pub fn name_part_seal(&self) -> Result<crate::secrets::StaffSecretsKey, KeyError> {
        Ok(crate::secrets::StaffSecretsKey(
            self.root.derive(crate::name_parts::SEAL_LABEL)?,
        ))
    }

    /// A copy of the root key, to wrap it under a new custody key (`vault::custody`).
    pub fn root_copy(&self) -> RootKey {
        self.root.clone()
    }

    pub fn kek(&self, version: u32) -> Result<Kek, KeyError> {
        self.root.kek(version)
    }

    pub fn blind(&self) -> &BlindKey {
        &self.blind
    }

    pub fn audit(&self) -> &AuditKey {
        &self.audit
    }

    /// A non-secret value that identifies the root key: HMAC with the audit key over
    /// a fixed label. Stored in the database to catch a wrong key at startup.
    pub fn key_check(&self) -> String {
        let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &self.audit.0 .0);
        hex::encode(ring::hmac::sign(&k, b"fiktiv.key-check.v1").as_ref())
    }

    pub fn backup(&self) -> Result<BackupKey, KeyError> {
        self.root.backup_key()
    }

    /// The key that seals staff secrets (TOTP), HKDF label `fiktiv/staff-secrets`.
    pub fn staff_secrets(&self) -> Result<crate::secrets::StaffSecretsKey, KeyError> {
        Ok(crate::secrets::StaffSecretsKey(
            self.root.derive(crate::secrets::STAFF_SECRETS_LABEL)?,
        ))
    }

    /// The key that seals this instance's transfer secret (the X25519 key of case
    /// transfer packages), HKDF label `fiktiv/transfer-secrets`: a key of its own, as for
    /// target credentials.
    pub fn transfer_secrets(&self) -> Result<crate::secrets::StaffSecretsKey, KeyError> {
        Ok(crate::secrets::StaffSecretsKey(
            self.root.derive(b"fiktiv/transfer-secrets")?,
        ))
    }

    /// The key that seals provisioning targets' credentials (LDAP bind passwords, SCIM
    /// bearer tokens), HKDF label `fiktiv/target-secrets`: the sealing format of
    /// [`crate::secrets`] under a key of its own, so no staff secret can be opened with
    /// it and no target credential with the staff-secrets key.
    pub fn target_secrets(&self) -> Result<crate::secrets::StaffSecretsKey, KeyError> {
        Ok(crate::secrets::StaffSecretsKey(
            self.root.derive(b"fiktiv/target-secrets")?,
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn derived_keys_differ_and_are_stable() {
        let root = RootKey::from_base64(&RootKey::generate().to_base64()).unwrap();
        let a = root.kek(1).unwrap();
        let b = root.kek(2).unwrap();
        assert_ne!(a.0 .0, b.0 .0);
        assert_eq!(a.0 .0, root.kek(1).unwrap().0 .0);
        assert_ne!(
            root.blind_key().unwrap().0 .0,
            root.audit_key().unwrap().0 .0
        );
    }

    #[test]
    fn debug_is_redacted() {
        let root = RootKey::generate();
        assert_eq!(format!("{root:?}"), "RootKey([redacted])");
        assert_eq!(format!("{:?}", root.kek(1).unwrap()), "Kek([redacted])");
    }

    #[test]
    fn key_file_round_trip_and_mode_check() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE_NAME);
        let root = RootKey::generate();
        root.write_new(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let back = RootKey::load_file(&path).unwrap();
        assert_eq!(back.0 .0, root.0 .0);
        assert!(matches!(
            root.write_new(&path),
            Err(KeyError::Exists { .. })
        ));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = RootKey::load_file(&path).unwrap_err();
        assert!(matches!(err, KeyError::Permissions { mode: 0o644, .. }));
        assert!(err.to_string().contains("chmod 600"));
    }

    #[test]
    fn malformed_base64_is_refused() {
        assert!(matches!(
            RootKey::from_base64("abc"),
            Err(KeyError::Malformed)
        ));
        assert!(matches!(
            RootKey::from_base64("!!!"),
            Err(KeyError::Malformed)
        ));
    }
}
