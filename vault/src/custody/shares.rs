//! Key shares: the custody key split `k` of `n` (Shamir over GF(256), `vsss-rs`), and
//! the text form a holder keeps and types back.
//!
//! A share's text is `fks1-` and the base32 (RFC 4648, no padding, grouped by five) of
//!
//! ```text
//! version(1) = 1 || set id(6) || index(1) || share(32) || check(4)
//! ```
//!
//! where `check` is the first four bytes of SHA-256 over everything before it: a typing
//! error is caught at once ("not a share"), a share of another set (an older one, or
//! another installation) too. A share that is well-formed but wrong cannot be told
//! apart from a right one until `k` shares are combined; then the combined key fails to
//! open the root key, and nobody is told which share it was.

use std::fmt;

use data_encoding::BASE32_NOPAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::keys::KeyBytes;

/// The most holders one set may have.
pub const MAX_SHARES: usize = 16;
/// The longest holder name.
pub const MAX_HOLDER_NAME: usize = 64;

const VERSION: u8 = 1;
const SET_ID_LEN: usize = 6;
const CHECK_LEN: usize = 4;
const BODY_LEN: usize = 1 + SET_ID_LEN + 1 + 32;
const PREFIX: &str = "fks1-";
/// The longest text accepted as a share (whitespace and dashes included).
pub const MAX_SHARE_TEXT: usize = 200;

/// Errors about one share or a set. They never echo the share.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ShareError {
    #[error("this is not a Fiktiv key share (a typing error?)")]
    NotAShare,
    #[error(
        "this share belongs to another set of shares (an older one replaced by a rotation, \
         or another installation)"
    )]
    OtherSet,
    #[error("this share has already been entered")]
    Repeated,
    #[error(
        "a set needs 2 to {MAX_SHARES} holders and a threshold of 2 up to the number of holders"
    )]
    BadThreshold,
    #[error(
        "a holder's name must be 1 to {MAX_HOLDER_NAME} letters, digits, spaces or . _ @ -, \
         and each holder named once"
    )]
    BadHolder,
    #[error("splitting or combining shares failed")]
    Arithmetic,
}

/// One share: which set, which index (1-based), and the 32 share bytes. Wiped on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Share {
    pub(super) set_id: [u8; SET_ID_LEN],
    pub(super) index: u8,
    pub(super) value: [u8; 32],
}

impl fmt::Debug for Share {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Share(set {}, index {}, [redacted])",
            self.set_id(),
            self.index
        )
    }
}

impl Share {
    /// The set id, as stored in the custody record (hex).
    pub fn set_id(&self) -> String {
        hex::encode(self.set_id)
    }

    /// 1 to n: which holder's share this is.
    pub fn index(&self) -> u8 {
        self.index
    }

    /// The text a holder keeps. Wiped on drop.
    pub fn encode(&self) -> Zeroizing<String> {
        let mut raw = Zeroizing::new(Vec::with_capacity(BODY_LEN + CHECK_LEN));
        raw.push(VERSION);
        raw.extend_from_slice(&self.set_id);
        raw.push(self.index);
        raw.extend_from_slice(&self.value);
        let check = Sha256::digest(raw.as_slice());
        raw.extend_from_slice(&check[..CHECK_LEN]);
        let b32 = Zeroizing::new(BASE32_NOPAD.encode(&raw).to_ascii_lowercase());
        let mut out = Zeroizing::new(String::from(PREFIX));
        for (i, c) in b32.chars().enumerate() {
            if i > 0 && i % 5 == 0 {
                out.push('-');
            }
            out.push(c);
        }
        out
    }

    /// Read a share as typed: case, spaces, dashes and line breaks do not matter.
    pub fn parse(text: &str) -> Result<Self, ShareError> {
        if text.len() > MAX_SHARE_TEXT {
            return Err(ShareError::NotAShare);
        }
        let trimmed = text.trim();
        let body = trimmed
            .get(..PREFIX.len())
            .filter(|p| p.eq_ignore_ascii_case(PREFIX))
            .map(|_| &trimmed[PREFIX.len()..])
            .ok_or(ShareError::NotAShare)?;
        let compact = Zeroizing::new(
            body.chars()
                .filter(|c| !c.is_whitespace() && *c != '-')
                .map(|c| c.to_ascii_uppercase())
                .collect::<String>(),
        );
        let raw = Zeroizing::new(
            BASE32_NOPAD
                .decode(compact.as_bytes())
                .map_err(|_| ShareError::NotAShare)?,
        );
        if raw.len() != BODY_LEN + CHECK_LEN || raw[0] != VERSION {
            return Err(ShareError::NotAShare);
        }
        let check = Sha256::digest(&raw[..BODY_LEN]);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            &check[..CHECK_LEN],
            &raw[BODY_LEN..],
        )) {
            return Err(ShareError::NotAShare);
        }
        let mut set_id = [0u8; SET_ID_LEN];
        set_id.copy_from_slice(&raw[1..1 + SET_ID_LEN]);
        let index = raw[1 + SET_ID_LEN];
        if index == 0 || usize::from(index) > MAX_SHARES {
            return Err(ShareError::NotAShare);
        }
        let mut value = [0u8; 32];
        value.copy_from_slice(&raw[2 + SET_ID_LEN..BODY_LEN]);
        Ok(Share {
            set_id,
            index,
            value,
        })
    }
}

/// A fresh random set id (hex).
pub(crate) fn new_set_id() -> String {
    let mut id = [0u8; SET_ID_LEN];
    rand::rngs::OsRng.fill_bytes(&mut id);
    hex::encode(id)
}

/// Threshold and holders a set may have: 2 ≤ k ≤ n ≤ 16, names unique and printable.
pub fn check_holders(threshold: u8, holders: &[String]) -> Result<(), ShareError> {
    let n = holders.len();
    if !(2..=MAX_SHARES).contains(&n) || threshold < 2 || usize::from(threshold) > n {
        return Err(ShareError::BadThreshold);
    }
    let mut seen = std::collections::BTreeSet::new();
    for h in holders {
        let ok = !h.trim().is_empty()
            && h.trim() == h
            && h.chars().count() <= MAX_HOLDER_NAME
            && h.chars()
                .all(|c| c.is_alphanumeric() || c == ' ' || "._@-".contains(c));
        if !ok || !seen.insert(h.to_lowercase()) {
            return Err(ShareError::BadHolder);
        }
    }
    Ok(())
}

/// Split `secret` into `n` shares, any `threshold` of which make it again.
pub(crate) fn split(
    secret: &KeyBytes,
    set_id_hex: &str,
    threshold: u8,
    n: usize,
) -> Result<Vec<Share>, ShareError> {
    let mut set_id = [0u8; SET_ID_LEN];
    hex::decode_to_slice(set_id_hex, &mut set_id).map_err(|_| ShareError::Arithmetic)?;
    let raw = vsss_split(usize::from(threshold), n, &secret.0)?;
    let mut out = Vec::with_capacity(n);
    for r in raw.iter() {
        // vsss-rs: the first byte is the share's identifier (1..=n), then the value.
        if r.len() != 33 || r[0] == 0 {
            return Err(ShareError::Arithmetic);
        }
        let mut value = [0u8; 32];
        value.copy_from_slice(&r[1..]);
        out.push(Share {
            set_id,
            index: r[0],
            value,
        });
    }
    out.sort_by_key(|s| s.index);
    Ok(out)
}

/// Combine shares (all of one set, distinct indexes) into the secret they were split
/// from. Fewer than the threshold give some other key, which then fails to open the
/// root key: this function cannot tell.
pub(crate) fn combine(shares: &[Share]) -> Result<KeyBytes, ShareError> {
    let raw: Vec<Zeroizing<Vec<u8>>> = shares
        .iter()
        .map(|s| {
            let mut v = Zeroizing::new(Vec::with_capacity(33));
            v.push(s.index);
            v.extend_from_slice(&s.value);
            v
        })
        .collect();
    let secret = vsss_combine(&raw)?;
    let arr: [u8; 32] = secret
        .as_slice()
        .try_into()
        .map_err(|_| ShareError::Arithmetic)?;
    Ok(KeyBytes(arr))
}

fn vsss_split(
    threshold: usize,
    n: usize,
    secret: &[u8],
) -> Result<Vec<Zeroizing<Vec<u8>>>, ShareError> {
    let shares = vsss_rs::Gf256::split_array(threshold, n, secret, rand::rngs::OsRng)
        .map_err(|_| ShareError::Arithmetic)?;
    Ok(shares.into_iter().map(Zeroizing::new).collect())
}

fn vsss_combine(shares: &[Zeroizing<Vec<u8>>]) -> Result<Zeroizing<Vec<u8>>, ShareError> {
    let plain: Vec<Vec<u8>> = shares.iter().map(|s| s.to_vec()).collect();
    let out = vsss_rs::Gf256::combine_array(&plain).map_err(|_| ShareError::Arithmetic);
    for mut p in plain {
        p.zeroize();
    }
    out.map(Zeroizing::new)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;

    fn set(k: u8, n: usize) -> (KeyBytes, Vec<Share>) {
        let secret = KeyBytes::random();
        let shares = split(&secret, &new_set_id(), k, n).unwrap();
        (secret, shares)
    }

    #[test]
    fn text_round_trips_whatever_the_case_and_spacing() {
        let (_, shares) = set(2, 3);
        for s in &shares {
            let text = s.encode();
            assert!(text.starts_with("fks1-"));
            let back = Share::parse(&text).unwrap();
            assert_eq!(
                (back.index, back.value, back.set_id),
                (s.index, s.value, s.set_id)
            );
            let loose = format!("  {}\n", text.to_uppercase().replace('-', " - "));
            let loose = loose.replacen("FKS1 - ", "FKS1-", 1);
            let back = Share::parse(&loose).unwrap();
            assert_eq!(back.value, s.value);
        }
    }

    #[test]
    fn holders_and_thresholds_are_checked() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(check_holders(3, &names(&["a", "b", "c", "d", "e"])).is_ok());
        assert_eq!(
            check_holders(1, &names(&["a", "b"])),
            Err(ShareError::BadThreshold)
        );
        assert_eq!(
            check_holders(3, &names(&["a", "b"])),
            Err(ShareError::BadThreshold)
        );
        assert_eq!(
            check_holders(2, &names(&["a", "A"])),
            Err(ShareError::BadHolder)
        );
        assert_eq!(
            check_holders(2, &names(&["a", "b\n"])),
            Err(ShareError::BadHolder)
        );
        assert_eq!(
            check_holders(2, &names(&["a", ""])),
            Err(ShareError::BadHolder)
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Any one changed character of a share's text is caught by the check (or
        /// makes text that is not base32), never read as another share.
        #[test]
        fn a_typing_error_is_never_a_share(pos in 5usize..80, c in "[a-z2-7]") {
            let (_, shares) = set(2, 2);
            let text = shares[0].encode();
            let mut chars: Vec<char> = text.chars().collect();
            let pos = pos % chars.len();
            prop_assume!(pos >= 5 && chars[pos] != '-');
            let new = c.chars().next().unwrap();
            prop_assume!(chars[pos] != new);
            chars[pos] = new;
            let typed: String = chars.into_iter().collect();
            match Share::parse(&typed) {
                Err(ShareError::NotAShare) => {}
                Ok(s) => prop_assert!(false, "a typing error was read as share {}", s.index),
                Err(e) => prop_assert!(false, "unexpected {e}"),
            }
        }

        /// Any k of n shares make the secret; k - 1 do not.
        #[test]
        fn any_threshold_of_shares_make_the_secret(k in 2u8..6, extra in 0usize..4, seed in any::<u64>()) {
            let n = usize::from(k) + extra;
            let (secret, shares) = set(k, n);
            let mut order: Vec<usize> = (0..n).collect();
            // A deterministic shuffle from the seed.
            let mut s = seed;
            for i in (1..n).rev() {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let j = usize::try_from(s >> 33).unwrap() % (i + 1);
                order.swap(i, j);
            }
            let chosen: Vec<Share> = order[..usize::from(k)].iter().map(|&i| shares[i].clone()).collect();
            prop_assert_eq!(combine(&chosen).unwrap().0, secret.0);
            let fewer = &chosen[..usize::from(k) - 1];
            if fewer.len() >= 2 {
                prop_assert_ne!(combine(fewer).unwrap().0, secret.0);
            }
        }

        /// Text that is not a share is refused, never a panic.
        #[test]
        fn arbitrary_text_is_not_a_share(s in ".{0,120}") {
            prop_assert!(Share::parse(&s).is_err());
        }
    }
}
