//! Blind indexes: HMAC-SHA256 with the blind-index key over a domain tag and a
//! normalised identifier. They let Fiktiv find duplicates, guard egress and scan
//! targets for leaks without decrypting anything.

use std::fmt;

use ring::hmac;

use crate::keys::BlindKey;

/// What kind of identifier a blind index was computed over. Part of the MAC input,
/// so equal strings of different kinds never collide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IndexKind {
    /// A personal number in canonical form (SE 12 digits, NO 11 digits).
    PersonalNumber,
    /// Normalised first name | last name | birth date.
    NameBirth,
    /// Normalised full name (first + last), used by the egress guard for names.
    FullName,
    /// A person id of the SS 12000 hub (a uuid in lower-case hex): finds a marked
    /// person's link to a case, or intake item, without opening anything.
    HubPerson,
}

impl IndexKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IndexKind::PersonalNumber => "pnr",
            IndexKind::NameBirth => "name-birth",
            IndexKind::FullName => "full-name",
            IndexKind::HubPerson => "hub-person",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pnr" => Some(Self::PersonalNumber),
            "name-birth" => Some(Self::NameBirth),
            "full-name" => Some(Self::FullName),
            "hub-person" => Some(Self::HubPerson),
            _ => None,
        }
    }
}

/// A blind index value. Safe to store and compare; reveals nothing without the key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlindIndex(pub [u8; 32]);

impl BlindIndex {
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(s: &str) -> Option<Self> {
        let v = hex::decode(s).ok()?;
        Some(Self(v.as_slice().try_into().ok()?))
    }
}

impl fmt::Debug for BlindIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlindIndex({}…)", &self.to_hex()[..8])
    }
}

impl BlindKey {
    /// The blind index of an already-normalised value.
    pub fn index(&self, kind: IndexKind, normalised: &str) -> BlindIndex {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &self.0 .0);
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(b"fiktiv.blind.v1\0");
        ctx.update(kind.as_str().as_bytes());
        ctx.update(b"\0");
        ctx.update(normalised.as_bytes());
        let tag = ctx.sign();
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        BlindIndex(out)
    }

    /// Raw HMAC-SHA256 of `data`, for the benchmark baseline only.
    #[doc(hidden)]
    pub fn raw_hmac_for_bench(&self, data: &[u8]) -> [u8; 32] {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &self.0 .0);
        let mut out = [0u8; 32];
        out.copy_from_slice(hmac::sign(&key, data).as_ref());
        out
    }
}
