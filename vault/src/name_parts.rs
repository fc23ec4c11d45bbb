//! Name-part tags: a keyed pre-filter that lets the matcher skip almost every blind
//! index.
//!
//! The egress guard and the leak scan build hundreds of candidate name pairs
//! (`given|family`) out of every entry they check and compute a blind index (HMAC-SHA256)
//! for each. A candidate can only be a real name when its given half is the normalised
//! given name of some real identity *and* its family half the normalised family name of
//! some real identity. The vault therefore keeps, per identity, two short keyed tags:
//! SipHash-2-4 of the normalised given name and of the normalised family name, under a key
//! of their own (HKDF label `fiktiv/name-part-tag`). The matcher tags the halves of a
//! candidate (a few nanoseconds each) and computes the blind index only when both tags are
//! known. A tag that collides lets a candidate through to the blind index, which decides;
//! a missing tag would hide a real name, so a filter is only used when every identity in
//! the vault has its tags ([`crate::BlindIndexSet::name_parts`]).
//!
//! At rest the two tags of an identity are one row of `blind_indexes` (kind
//! `name-parts`), sealed with AES-256-GCM under another key (HKDF label
//! `fiktiv/name-part-seal`) with a random nonce and the case and subject as associated
//! data. Unlike the blind indexes, which must be equal for equal values (duplicate
//! detection looks them up in the database), equal names give unequal rows: a copy of the
//! database tells nobody which protected pupils share a given name or a family name. In
//! memory, while a guard or scan runs, the tags are one table (tag → given, family or
//! both) behind a bitmap of their low bits, as the blind indexes are a set.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher as _};

use siphasher::sip::SipHasher24;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::keys::KeyBytes;
use crate::normalize::normalize_name;
use crate::seal::SealError;
use crate::secrets::StaffSecretsKey;
use crate::CaseId;

/// The HKDF label of [`NamePartKey`].
pub(crate) const TAG_LABEL: &[u8] = b"fiktiv/name-part-tag";
/// The HKDF label of the key that seals the tags at rest.
pub(crate) const SEAL_LABEL: &[u8] = b"fiktiv/name-part-seal";
/// The `blind_indexes.kind` of an identity's sealed name-part tags.
pub const KIND: &str = "name-parts";
const PURPOSE: &str = "name-parts";

/// Computes name-part tags (SipHash-2-4, 128-bit key). Zeroized on drop; `Debug` is
/// redacted.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct NamePartKey([u8; 16]);

impl fmt::Debug for NamePartKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NamePartKey([redacted])")
    }
}

impl NamePartKey {
    pub(crate) fn from_key_bytes(k: &KeyBytes) -> Self {
        let mut out = [0u8; 16];
        out.copy_from_slice(&k.0[..16]);
        Self(out)
    }

    /// The tag of an already-normalised name part.
    pub fn tag(&self, normalised: &str) -> u64 {
        let mut h = self.hasher();
        h.write(normalised);
        h.finish()
    }

    /// A hasher for a tag built piece by piece: writing `"asa"` then `"britt"` gives the
    /// tag of `"asabritt"`.
    pub fn hasher(&self) -> TagHasher {
        TagHasher(SipHasher24::new_with_key(&self.0))
    }
}

/// A tag being computed ([`NamePartKey::hasher`]). The SipHash state derives from the
/// key; it lives on the stack for one tag.
#[derive(Clone)]
pub struct TagHasher(SipHasher24);

impl TagHasher {
    /// Appends the bytes of `s` (no separator).
    pub fn write(&mut self, s: &str) {
        self.0.write(s.as_bytes());
    }

    /// The tag of everything written so far; more can be written after.
    pub fn finish(&self) -> u64 {
        self.0.finish()
    }
}

/// The tags of every real identity's given and family name: what the matcher filters
/// candidate pairs with.
#[derive(Clone)]
pub struct NamePartFilter {
    key: NamePartKey,
    /// Per known tag: [`NamePartFilter::GIVEN`], [`NamePartFilter::FAMILY`] or both.
    /// The tags are keyed SipHash outputs, uniform to anyone without the key, so the
    /// table uses them as their own hash ([`TagIsHash`]).
    parts: HashMap<u64, u8, BuildHasherDefault<TagIsHash>>,
    /// One bit per value of a tag's low bits, set for every known tag: most tags the
    /// matcher computes are of no real name, and this answers "no" for almost all of
    /// them from a table small enough to stay in cache. Grown as tags are added, so
    /// that at most ~1/16 of its bits are set.
    quick: Vec<u64>,
    counts: (usize, usize),
}

/// The smallest quick table: 2^16 bits (8 KiB).
const QUICK_MIN_BITS: usize = 1 << 16;

/// A `Hasher` for keys that already are uniform 64-bit hashes (name-part tags, value
/// fingerprints): passes a `u64` through. Only for such keys: anything written as
/// bytes is folded in without mixing.
#[derive(Default, Clone, Copy)]
pub struct TagIsHash(u64);

impl std::hash::Hasher for TagIsHash {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl fmt::Debug for NamePartFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "NamePartFilter({} given, {} family)",
            self.counts.0, self.counts.1
        )
    }
}

impl NamePartFilter {
    /// The bit of [`NamePartFilter::bits`] for a given name.
    pub const GIVEN: u8 = 1;
    /// The bit of [`NamePartFilter::bits`] for a family name.
    pub const FAMILY: u8 = 2;

    /// An empty filter: no candidate passes.
    pub fn new(key: NamePartKey) -> Self {
        Self {
            key,
            parts: HashMap::default(),
            quick: vec![0; QUICK_MIN_BITS / 64],
            counts: (0, 0),
        }
    }

    fn quick_bit(&self, tag: u64) -> (usize, u64) {
        let bits = self.quick.len() * 64;
        let i = (tag as usize) & (bits - 1);
        (i / 64, 1u64 << (i % 64))
    }

    fn set_quick(&mut self, tag: u64) {
        let (word, bit) = self.quick_bit(tag);
        if let Some(w) = self.quick.get_mut(word) {
            *w |= bit;
        }
    }

    /// Adds a real identity's names (not yet normalised).
    pub fn add_names(&mut self, first: &str, last: &str) {
        let (g, f) = tags_of(&self.key, first, last);
        self.add_tags(g, f);
    }

    pub(crate) fn add_tags(&mut self, given: u64, family: u64) {
        if (self.parts.len() + 2) * 16 > self.quick.len() * 64 {
            // Twice as large, and filled again from every tag.
            self.quick = vec![0; self.quick.len() * 2];
            let tags: Vec<u64> = self.parts.keys().copied().collect();
            for t in tags {
                self.set_quick(t);
            }
        }
        self.set_quick(given);
        self.set_quick(family);
        for (tag, bit) in [(given, Self::GIVEN), (family, Self::FAMILY)] {
            let bits = self.parts.entry(tag).or_default();
            if *bits & bit == 0 {
                *bits |= bit;
                if bit == Self::GIVEN {
                    self.counts.0 += 1;
                } else {
                    self.counts.1 += 1;
                }
            }
        }
    }

    pub fn key(&self) -> &NamePartKey {
        &self.key
    }

    /// What `tag` is the tag of: some real identity's normalised given name
    /// ([`Self::GIVEN`]), family name ([`Self::FAMILY`]), both, or neither (0).
    pub fn bits(&self, tag: u64) -> u8 {
        let (word, bit) = self.quick_bit(tag);
        if self.quick.get(word).is_none_or(|w| w & bit == 0) {
            return 0;
        }
        self.parts.get(&tag).copied().unwrap_or(0)
    }

    /// Is `tag` the tag of some real identity's normalised given name?
    pub fn given(&self, tag: u64) -> bool {
        self.bits(tag) & Self::GIVEN != 0
    }

    /// Is `tag` the tag of some real identity's normalised family name?
    pub fn family(&self, tag: u64) -> bool {
        self.bits(tag) & Self::FAMILY != 0
    }
}

/// The tags of a first and last name, normalised as the full-name key normalises them.
pub(crate) fn tags_of(key: &NamePartKey, first: &str, last: &str) -> (u64, u64) {
    let g = zeroize::Zeroizing::new(normalize_name(first));
    let f = zeroize::Zeroizing::new(normalize_name(last));
    (key.tag(&g), key.tag(&f))
}

fn owner(case: &CaseId, subject: &str) -> String {
    format!("{case}/{subject}")
}

/// The `idx` column of an identity's name-parts row: both tags, sealed.
pub(crate) fn seal_row(
    key: &StaffSecretsKey,
    case: &CaseId,
    subject: &str,
    (given, family): (u64, u64),
) -> Result<String, SealError> {
    let mut plain = zeroize::Zeroizing::new([0u8; 16]);
    plain[..8].copy_from_slice(&given.to_be_bytes());
    plain[8..].copy_from_slice(&family.to_be_bytes());
    Ok(hex::encode(key.seal(
        PURPOSE,
        &owner(case, subject),
        plain.as_slice(),
    )?))
}

/// Opens a name-parts row; `None` if it is malformed, tampered with, sealed under
/// another key or moved to another case or subject.
pub(crate) fn open_row(
    key: &StaffSecretsKey,
    case: &CaseId,
    subject: &str,
    idx: &str,
) -> Option<(u64, u64)> {
    let bytes = hex::decode(idx).ok()?;
    let plain = key.open(PURPOSE, &owner(case, subject), &bytes).ok()?;
    let given = u64::from_be_bytes(plain.get(..8)?.try_into().ok()?);
    let family = u64::from_be_bytes(plain.get(8..16)?.try_into().ok()?);
    (plain.len() == 16).then_some((given, family))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::{KeyRing, RootKey};

    proptest::proptest! {
        /// The filter answers exactly as two plain sets of tags would, however many
        /// tags it holds (its quick table grows past 2^16 bits at 4,096 tags).
        #[test]
        fn the_filter_is_exactly_its_tags(
            tags in proptest::collection::vec((proptest::num::u64::ANY, proptest::num::u64::ANY), 0..3000),
            probes in proptest::collection::vec(proptest::num::u64::ANY, 0..200),
        ) {
            let ring = KeyRing::new(RootKey::generate()).unwrap();
            let mut filter = NamePartFilter::new(ring.name_parts().clone());
            let mut given = std::collections::HashSet::new();
            let mut family = std::collections::HashSet::new();
            for &(g, f) in &tags {
                filter.add_tags(g, f);
                given.insert(g);
                family.insert(f);
            }
            for t in probes.iter().chain(tags.iter().flat_map(|(g, f)| [g, f])) {
                proptest::prop_assert_eq!(filter.given(*t), given.contains(t));
                proptest::prop_assert_eq!(filter.family(*t), family.contains(t));
            }
            // Tags that differ from known ones only above the quick table's bits.
            for &(g, _) in tags.iter().take(20) {
                let near = g ^ (1 << 63);
                proptest::prop_assert_eq!(filter.given(near), given.contains(&near));
            }
        }
    }

    #[test]
    fn tags_are_keyed_streamed_and_normalised() {
        let ring = KeyRing::new(RootKey::generate()).unwrap();
        let key = ring.name_parts();
        let mut h = key.hasher();
        h.write("asa");
        h.write("britt");
        assert_eq!(h.finish(), key.tag("asabritt"));
        let (g, f) = tags_of(key, "Åsa-Britt", "ÖBERG");
        assert_eq!((g, f), (key.tag("asabritt"), key.tag("oberg")));
        let other = KeyRing::new(RootKey::generate()).unwrap();
        assert_ne!(other.name_parts().tag("asabritt"), g);
        assert_eq!(format!("{key:?}"), "NamePartKey([redacted])");
        let mut filter = NamePartFilter::new(key.clone());
        filter.add_names("Åsa-Britt", "Öberg");
        assert!(filter.given(g) && filter.family(f));
        assert!(!filter.given(f) && !filter.family(g));
        assert_eq!(format!("{filter:?}"), "NamePartFilter(1 given, 1 family)");
    }

    #[test]
    fn rows_are_sealed_bound_and_unequal_for_equal_names() {
        let ring = KeyRing::new(RootKey::generate()).unwrap();
        let seal = ring.name_part_seal().unwrap();
        let (a, b) = (CaseId::new(), CaseId::new());
        let tags = tags_of(ring.name_parts(), "Anna", "Svensson");
        let ra = seal_row(&seal, &a, "pupil", tags).unwrap();
        let rb = seal_row(&seal, &b, "pupil", tags).unwrap();
        assert_ne!(ra, rb, "equal names must not give equal rows");
        assert_eq!(open_row(&seal, &a, "pupil", &ra), Some(tags));
        assert_eq!(open_row(&seal, &b, "pupil", &ra), None);
        assert_eq!(open_row(&seal, &a, "guardian", &ra), None);
        assert_eq!(open_row(&seal, &a, "pupil", "zz"), None);
        let mut bad = ra.clone().into_bytes();
        let last = bad.len() - 1;
        bad[last] = if bad[last] == b'0' { b'1' } else { b'0' };
        assert_eq!(
            open_row(&seal, &a, "pupil", std::str::from_utf8(&bad).unwrap()),
            None
        );
        let other = KeyRing::new(RootKey::generate()).unwrap();
        assert_eq!(
            open_row(&other.name_part_seal().unwrap(), &a, "pupil", &ra),
            None
        );
    }
}
