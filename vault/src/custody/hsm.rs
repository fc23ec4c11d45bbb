//! The custody key inside an HSM, over PKCS#11 (`cryptoki`).
//!
//! The key is AES-256, generated inside the token with `CKA_SENSITIVE` and without
//! `CKA_EXTRACTABLE`, so it can be used but never read out. The root key is wrapped by
//! asking the token to encrypt it (AES-GCM, a fresh 96-bit IV, associated data binding
//! the wrap to its label and generation) and opened by asking it to decrypt. Tested
//! against SoftHSM2; any PKCS#11 v2.40 token with AES-GCM should do.
//!
//! Every call opens a session, logs in, does its work and logs out: this runs at start
//! and at rotation only, never per request.

use std::path::PathBuf;

use base64::Engine as _;
use cryptoki::context::{CInitializeArgs, Pkcs11};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use super::CustodyError;
use crate::keys::RootKey;

const IV_LEN: usize = 12;
const TAG_BITS: u64 = 128;

/// How to reach the token. The PIN is read from a file by the caller.
#[derive(Clone)]
pub struct HsmSettings {
    /// The PKCS#11 module (for SoftHSM2: `/usr/lib/softhsm/libsofthsm2.so`).
    pub module: PathBuf,
    /// The token's label.
    pub token_label: String,
    /// The user PIN.
    pub pin: SecretString,
}

impl std::fmt::Debug for HsmSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HsmSettings")
            .field("module", &self.module)
            .field("token_label", &self.token_label)
            .field("pin", &"[redacted]")
            .finish()
    }
}

/// HSM errors: what failed, never a key or the PIN.
#[derive(Debug, thiserror::Error)]
pub enum HsmError {
    #[error("cannot load the PKCS#11 module {0}: {1}")]
    Module(String, String),
    #[error("no token labelled {0:?} in the PKCS#11 module")]
    NoToken(String),
    #[error("the HSM refused the PIN or the session: {0}")]
    Login(String),
    #[error("no key labelled {0:?} in the token")]
    NoKey(String),
    #[error("a key labelled {0:?} already exists in the token")]
    KeyExists(String),
    #[error("the HSM operation failed: {0}")]
    Operation(String),
    #[error("the HSM could not open the root key (another key, or the wrap was changed)")]
    Unwrap,
}

/// The label of the custody key of a generation.
pub fn key_label(generation: i64) -> String {
    format!("fiktiv-custody-{generation}")
}

fn op(e: cryptoki::error::Error) -> HsmError {
    HsmError::Operation(e.to_string())
}

/// A logged-in session on the configured token. Logs out and finalizes on drop.
struct Open {
    session: Session,
    _ctx: Pkcs11,
}

fn open(settings: &HsmSettings) -> Result<Open, HsmError> {
    let ctx = Pkcs11::new(&settings.module)
        .map_err(|e| HsmError::Module(settings.module.display().to_string(), e.to_string()))?;
    ctx.initialize(CInitializeArgs::OsThreads)
        .map_err(|e| HsmError::Module(settings.module.display().to_string(), e.to_string()))?;
    let mut found = None;
    for slot in ctx.get_slots_with_token().map_err(op)? {
        let info = ctx.get_token_info(slot).map_err(op)?;
        if info.label().trim_end() == settings.token_label {
            found = Some(slot);
            break;
        }
    }
    let slot = found.ok_or_else(|| HsmError::NoToken(settings.token_label.clone()))?;
    let session = ctx
        .open_rw_session(slot)
        .map_err(|e| HsmError::Login(e.to_string()))?;
    let pin = AuthPin::new(settings.pin.expose_secret().to_string());
    session
        .login(UserType::User, Some(&pin))
        .map_err(|e| HsmError::Login(e.to_string()))?;
    Ok(Open { session, _ctx: ctx })
}

fn find_key(session: &Session, label: &str) -> Result<Option<ObjectHandle>, HsmError> {
    let found = session
        .find_objects(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::Label(label.as_bytes().to_vec()),
        ])
        .map_err(op)?;
    Ok(found.into_iter().next())
}

/// Create the custody key `label`: AES-256, in the token, sensitive, not extractable.
pub fn create_key(settings: &HsmSettings, label: &str) -> Result<(), HsmError> {
    let open = open(settings)?;
    if find_key(&open.session, label)?.is_some() {
        return Err(HsmError::KeyExists(label.to_string()));
    }
    open.session
        .generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::ValueLen(32.into()),
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::Encrypt(true),
                Attribute::Decrypt(true),
                Attribute::Label(label.as_bytes().to_vec()),
            ],
        )
        .map_err(op)?;
    Ok(())
}

/// Whether the key `label` can be read out of the token (it must not be).
pub fn key_is_extractable(settings: &HsmSettings, label: &str) -> Result<bool, HsmError> {
    let open = open(settings)?;
    let key = find_key(&open.session, label)?.ok_or_else(|| HsmError::NoKey(label.into()))?;
    let attrs = open
        .session
        .get_attributes(key, &[AttributeType::Extractable, AttributeType::Sensitive])
        .map_err(op)?;
    let mut extractable = true;
    let mut sensitive = false;
    for a in attrs {
        match a {
            Attribute::Extractable(v) => extractable = v,
            Attribute::Sensitive(v) => sensitive = v,
            _ => {}
        }
    }
    Ok(extractable || !sensitive)
}

/// Destroy the key `label` (after a rotation, once nothing is wrapped under it).
pub fn destroy_key(settings: &HsmSettings, label: &str) -> Result<(), HsmError> {
    let open = open(settings)?;
    let key = find_key(&open.session, label)?.ok_or_else(|| HsmError::NoKey(label.into()))?;
    open.session.destroy_object(key).map_err(op)
}

/// Wrap `root` under the token's key `label`: base64(iv || ciphertext+tag).
pub(crate) fn wrap(
    settings: &HsmSettings,
    label: &str,
    root: &RootKey,
    aad: &[u8],
) -> Result<String, CustodyError> {
    let open = open(settings)?;
    let key = find_key(&open.session, label)?.ok_or_else(|| HsmError::NoKey(label.into()))?;
    let mut iv = [0u8; IV_LEN];
    rand::rngs::OsRng.fill_bytes(&mut iv);
    let params = GcmParams::new(&mut iv, aad, TAG_BITS.into()).map_err(op)?;
    let ct = open
        .session
        .encrypt(&Mechanism::AesGcm(params), key, &root.0 .0)
        .map_err(op)?;
    let mut out = iv.to_vec();
    out.extend_from_slice(&ct);
    Ok(base64::engine::general_purpose::STANDARD.encode(out))
}

/// Open the root key wrapped under the token's key `label`.
pub(crate) fn unwrap(
    settings: &HsmSettings,
    label: &str,
    wrapped: &str,
    aad: &[u8],
) -> Result<RootKey, CustodyError> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(wrapped)
        .map_err(|_| CustodyError::Malformed)?;
    if raw.len() <= IV_LEN {
        return Err(CustodyError::Malformed);
    }
    let open = open(settings)?;
    let key = find_key(&open.session, label)?.ok_or_else(|| HsmError::NoKey(label.into()))?;
    let mut iv = [0u8; IV_LEN];
    iv.copy_from_slice(&raw[..IV_LEN]);
    let params = GcmParams::new(&mut iv, aad, TAG_BITS.into()).map_err(op)?;
    let plain = Zeroizing::new(
        open.session
            .decrypt(&Mechanism::AesGcm(params), key, &raw[IV_LEN..])
            .map_err(|_| HsmError::Unwrap)?,
    );
    super::root_from_bytes(&plain)
}
