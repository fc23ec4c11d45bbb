//! The vault: the only crate that can turn sealed bytes into a real identity.
//!
//! It holds the key hierarchy (root key -> HKDF -> key-encryption keys, blind-index key,
//! audit key), envelope encryption of each case's fields, blind indexes over normalised
//! identifiers, the encrypted identity store and the append-only audit trail. The audit
//! trail lives here, not in the service, so that "every read of a real identity is
//! audited first" is enforced by the only function that can produce one.

pub mod audit;
pub mod backup;
pub mod blind;
pub mod clock;
pub mod custody;
pub mod db;
pub mod identity;
pub mod ids;
pub mod keys;
pub mod name_parts;
pub mod normalize;
pub mod seal;
pub mod secrets;
pub mod store;

pub use blind::{BlindIndex, IndexKind};
pub use clock::{Clock, ManualClock, SharedClock, SystemClock};
pub use db::{Backend, Db, DbError};
pub use identity::{RealIdentity, RealName};
pub use keys::{KeyRing, RootKey};
pub use name_parts::{NamePartFilter, NamePartKey, TagIsHash};
pub use store::{BlindIndexSet, ReadContext, Sealed, Vault, VaultError};

use std::fmt;
use std::str::FromStr;

/// A case: one protected person and everything about them. Opaque, random.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct CaseId(uuid::Uuid);

impl CaseId {
    #[allow(clippy::new_without_default)] // a new id is random; Default would hide that
    pub fn new() -> Self {
        Self(uuid::Uuid::new_v4())
    }

    pub fn as_bytes(&self) -> &[u8; 16] {
        self.0.as_bytes()
    }
}

impl fmt::Display for CaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for CaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CaseId({})", self.0)
    }
}

impl FromStr for CaseId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        uuid::Uuid::parse_str(s).map(Self)
    }
}
