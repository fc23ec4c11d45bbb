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
//! Beside them the vault keeps the tags of every proper prefix of each name part (cut at
//! a character boundary, up to [`PREFIX_MAX_BYTES`] bytes): the matcher grows a
//! candidate half word by word, or character by character inside one word, and stops as
//! soon as what it has is no start of any real name part. Such a half is usually one
//! word or one character long, so almost all of a value's longer runs are never tagged.
//! An identity stored without prefix tags (a release before them, until `keys reindex`)
//! turns the stopping off for the whole filter ([`NamePartFilter::may_extend`]).
//!
//! At rest the tags of an identity are [`MAX_SPELLINGS`] rows of `blind_indexes` (kind
//! `name-parts`), one per spelling of the names (`spelling_tags`), always as many:
//! each the two part tags and [`PREFIX_SLOTS`] prefix tags per part (unused
//! slots repeat a tag already there, so every row has the same length and tells nothing
//! of the names' lengths), sealed with AES-256-GCM under another key (HKDF label
//! `fiktiv/name-part-seal`) with a random nonce and the case and subject as associated
//! data. Unlike the blind indexes, which must be equal for equal values (duplicate
//! detection looks them up in the database), equal names give unequal rows: a copy of the
//! database tells nobody which protected pupils share a given name or a family name. In
//! memory, while a guard or scan runs, the tags are one table (tag → given, family or
//! both) behind a bitmap of their low bits, as the blind indexes are a set.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher as _};
use std::sync::OnceLock;

use siphasher::sip::SipHasher24;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::keys::KeyBytes;
#[cfg(test)]
use crate::normalize::normalize_name;
use crate::normalize::{name_spellings, MAX_SPELLINGS};
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

/// Prefixes longer than this many bytes are not tagged: a half that long may always
/// grow ([`NamePartFilter::may_extend`]).
pub const PREFIX_MAX_BYTES: usize = 16;
/// Prefix tags per name part in a row: a part has at most one proper prefix per byte
/// length `1..=PREFIX_MAX_BYTES`.
pub const PREFIX_SLOTS: usize = PREFIX_MAX_BYTES;

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
    /// Per known tag: [`NamePartFilter::GIVEN`], [`NamePartFilter::FAMILY`],
    /// [`NamePartFilter::GIVEN_PREFIX`], [`NamePartFilter::FAMILY_PREFIX`], or several.
    /// The tags are keyed SipHash outputs, uniform to anyone without the key, so the
    /// table uses them as their own hash ([`TagIsHash`]).
    parts: HashMap<u64, u8, BuildHasherDefault<TagIsHash>>,
    /// One bit per value of a tag's low bits, set for every known tag: most tags the
    /// matcher computes are of no real name, and this answers "no" for almost all of
    /// them from a table small enough to stay in cache. Grown as tags are added, so
    /// that at most ~1/16 of its bits are set.
    quick: Vec<u64>,
    counts: (usize, usize),
    /// Does every identity added have its prefix tags? Otherwise no half is cut short.
    prefixes_complete: bool,
    /// [`Self::bits`] of every string of one or two ASCII bytes, worked out on first
    /// use ([`Self::short_bits`]) and forgotten when a tag is added: the matcher tags
    /// one- and two-byte strings (a word's first letters, `dc`, `ou`) more than any.
    short: OnceLock<Box<[u8]>>,
}

/// Entries of [`NamePartFilter::short`]: one per ASCII byte, then one per pair.
const SHORT_ENTRIES: usize = 128 + 128 * 128;

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
    /// The bit of [`NamePartFilter::bits`] for a proper prefix of a given name.
    pub const GIVEN_PREFIX: u8 = 4;
    /// The bit of [`NamePartFilter::bits`] for a proper prefix of a family name.
    pub const FAMILY_PREFIX: u8 = 8;

    /// An empty filter: no candidate passes.
    pub fn new(key: NamePartKey) -> Self {
        Self {
            key,
            parts: HashMap::default(),
            quick: vec![0; QUICK_MIN_BITS / 64],
            counts: (0, 0),
            prefixes_complete: true,
            short: OnceLock::new(),
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

    /// Adds a real identity's names (not yet normalised), in every spelling the vault
    /// keeps tags of ([`spelling_tags`]).
    pub fn add_names(&mut self, first: &str, last: &str) {
        for tags in spelling_tags(&self.key, first, last) {
            self.add(&tags);
        }
    }

    /// Adds an identity's tags; without prefix tags, no half is cut short any more.
    pub(crate) fn add(&mut self, tags: &NameTags) {
        self.add_tag(tags.given, Self::GIVEN);
        self.add_tag(tags.family, Self::FAMILY);
        match &tags.prefixes {
            Some(p) => {
                for &t in &p.given {
                    self.add_tag(t, Self::GIVEN_PREFIX);
                }
                for &t in &p.family {
                    self.add_tag(t, Self::FAMILY_PREFIX);
                }
            }
            None => self.prefixes_complete = false,
        }
    }

    fn add_tag(&mut self, tag: u64, bit: u8) {
        self.short = OnceLock::new();
        if (self.parts.len() + 1) * 16 > self.quick.len() * 64 {
            // Twice as large, and filled again from every tag.
            self.quick = vec![0; self.quick.len() * 2];
            let tags: Vec<u64> = self.parts.keys().copied().collect();
            for t in tags {
                self.set_quick(t);
            }
        }
        self.set_quick(tag);
        let bits = self.parts.entry(tag).or_default();
        if *bits & bit == 0 {
            *bits |= bit;
            if bit == Self::GIVEN {
                self.counts.0 += 1;
            } else if bit == Self::FAMILY {
                self.counts.1 += 1;
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

    /// [`Self::bits`] of the tag of `s` when `s` is one or two ASCII bytes (`None`
    /// otherwise), from a table worked out once: what
    /// `self.bits(self.key().tag(s))` gives, without hashing.
    pub fn short_bits(&self, s: &str) -> Option<u8> {
        let i = match *s.as_bytes() {
            [a] if a < 128 => usize::from(a),
            [a, b] if a < 128 && b < 128 => 128 + usize::from(a) * 128 + usize::from(b),
            _ => return None,
        };
        self.short
            .get_or_init(|| self.short_table())
            .get(i)
            .copied()
    }

    /// The bits of the normalised string `s`, when they can be told without hashing it:
    ///
    /// - `s` of one or two ASCII bytes: [`Self::short_bits`];
    /// - `s` longer, its first two bytes ASCII and no start of any real name part (their
    ///   short bits have no prefix bit), and every identity with its prefix tags: 0.
    ///   Every proper prefix of every real name part is tagged, those two bytes
    ///   included, so nothing that starts with them is a real name part or the start of
    ///   one. [`Self::bits`] of its tag could still be a false positive (a colliding
    ///   tag), which only ever lets a candidate through to the blind index: 0 is the
    ///   answer the real names give.
    ///
    /// `None`: tag `s` and ask [`Self::bits`].
    pub fn known_bits(&self, s: &str) -> Option<u8> {
        match *s.as_bytes() {
            [] => None,
            [_] | [_, _] => self.short_bits(s),
            [_, _, _, ..] if self.prefixes_complete => {
                // `None` unless the first two bytes are ASCII.
                let bits = self.short_bits(s.get(..2)?)?;
                (bits & (Self::GIVEN_PREFIX | Self::FAMILY_PREFIX) == 0).then_some(0)
            }
            [_, _, _, ..] => None,
        }
    }

    fn short_table(&self) -> Box<[u8]> {
        let mut table = vec![0u8; SHORT_ENTRIES];
        let mut s = [0u8; 2];
        for a in 0..128u8 {
            s[0] = a;
            if let (Some(t), Ok(one)) =
                (table.get_mut(usize::from(a)), std::str::from_utf8(&s[..1]))
            {
                *t = self.bits(self.key.tag(one));
            }
            for b in 0..128u8 {
                s[1] = b;
                let i = 128 + usize::from(a) * 128 + usize::from(b);
                if let (Some(t), Ok(two)) = (table.get_mut(i), std::str::from_utf8(&s)) {
                    *t = self.bits(self.key.tag(two));
                }
            }
        }
        table.into_boxed_slice()
    }

    /// May a half whose normalised text is `len` bytes long and whose tag has these
    /// [`Self::bits`] grow into a real name part of a kind in `mask`
    /// ([`Self::GIVEN_PREFIX`], [`Self::FAMILY_PREFIX`] or both)? Only if it is a proper
    /// prefix of one, or empty (a word of combining marks alone normalises to nothing),
    /// or longer than the prefixes tagged, or the filter lacks some identity's prefix
    /// tags. `false`: no longer half that starts with it can be a real name part of that
    /// kind, and the caller stops growing it.
    pub fn may_extend(&self, bits: u8, len: usize, mask: u8) -> bool {
        bits & mask != 0 || len == 0 || len >= PREFIX_MAX_BYTES || !self.prefixes_complete
    }

    /// Does every identity added have its prefix tags ([`Self::may_extend`])?
    pub fn prefixes_complete(&self) -> bool {
        self.prefixes_complete
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

/// The tags of one identity: its two name parts and, when known, their proper prefixes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NameTags {
    pub given: u64,
    pub family: u64,
    /// `None` for a row sealed before prefix tags were kept.
    pub prefixes: Option<PrefixTags>,
}

/// [`PREFIX_SLOTS`] prefix tags per part (padded by repeating one of them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PrefixTags {
    pub given: [u64; PREFIX_SLOTS],
    pub family: [u64; PREFIX_SLOTS],
}

/// The tags of every proper prefix of `part` (normalised) cut at a character boundary,
/// up to [`PREFIX_MAX_BYTES`] bytes; the slots left over repeat the last (or, for a
/// part of one character, the part's own tag: a tag marked a prefix only lets a half
/// grow, which is never wrong).
fn prefix_tags(key: &NamePartKey, part: &str) -> [u64; PREFIX_SLOTS] {
    let mut out = [key.tag(part); PREFIX_SLOTS];
    let mut n = 0;
    for (at, _) in part.char_indices().skip(1) {
        if at > PREFIX_MAX_BYTES {
            break;
        }
        if let (Some(slot), Some(p)) = (out.get_mut(n), part.get(..at)) {
            *slot = key.tag(p);
            n += 1;
        }
    }
    if let Some(&last) = n.checked_sub(1).and_then(|l| out.get(l)) {
        for slot in out.iter_mut().skip(n) {
            *slot = last;
        }
    }
    out
}

/// The tags of a first and last name, normalised as the full-name key normalises them
/// (one spelling: the tests of a single row).
#[cfg(test)]
pub(crate) fn tags_of(key: &NamePartKey, first: &str, last: &str) -> NameTags {
    let g = zeroize::Zeroizing::new(normalize_name(first));
    let f = zeroize::Zeroizing::new(normalize_name(last));
    folded_tags(key, &g, &f)
}

/// The tags of every spelling of a first and last name
/// ([`crate::normalize::name_spellings`]): always [`MAX_SPELLINGS`] rows (the i-th
/// spelling of each name, or its last one), so that the number of rows tells nothing of
/// the names. The filter keeps each tag as given or family, so two rows cover every
/// combination of a transliterated and a stripped name.
pub(crate) fn spelling_tags(key: &NamePartKey, first: &str, last: &str) -> Vec<NameTags> {
    let firsts: Vec<zeroize::Zeroizing<String>> = name_spellings(first)
        .into_iter()
        .map(zeroize::Zeroizing::new)
        .collect();
    let lasts: Vec<zeroize::Zeroizing<String>> = name_spellings(last)
        .into_iter()
        .map(zeroize::Zeroizing::new)
        .collect();
    let pick = |v: &[zeroize::Zeroizing<String>], i: usize| {
        v.get(i)
            .or(v.last())
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default()
    };
    (0..MAX_SPELLINGS)
        .map(|i| {
            let g = zeroize::Zeroizing::new(pick(&firsts, i));
            let f = zeroize::Zeroizing::new(pick(&lasts, i));
            folded_tags(key, &g, &f)
        })
        .collect()
}

/// The tags of a first and last name already folded.
fn folded_tags(key: &NamePartKey, g: &str, f: &str) -> NameTags {
    NameTags {
        given: key.tag(g),
        family: key.tag(f),
        prefixes: Some(PrefixTags {
            given: prefix_tags(key, g),
            family: prefix_tags(key, f),
        }),
    }
}

fn owner(case: &CaseId, subject: &str) -> String {
    format!("{case}/{subject}")
}

/// A row without prefix tags (sealed before they were kept): the two part tags.
const ROW_V1_BYTES: usize = 16;
/// A row with them: the two part tags, then the given name's prefix tags, then the
/// family name's.
const ROW_BYTES: usize = 16 + 2 * 8 * PREFIX_SLOTS;

/// The `idx` column of an identity's name-parts row: its tags, sealed.
pub(crate) fn seal_row(
    key: &StaffSecretsKey,
    case: &CaseId,
    subject: &str,
    tags: &NameTags,
) -> Result<String, SealError> {
    let mut plain = zeroize::Zeroizing::new(Vec::with_capacity(ROW_BYTES));
    plain.extend_from_slice(&tags.given.to_be_bytes());
    plain.extend_from_slice(&tags.family.to_be_bytes());
    if let Some(p) = &tags.prefixes {
        for t in p.given.iter().chain(&p.family) {
            plain.extend_from_slice(&t.to_be_bytes());
        }
    }
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
) -> Option<NameTags> {
    let bytes = hex::decode(idx).ok()?;
    let plain = key.open(PURPOSE, &owner(case, subject), &bytes).ok()?;
    if plain.len() != ROW_V1_BYTES && plain.len() != ROW_BYTES {
        return None;
    }
    let mut words = plain
        .chunks_exact(8)
        .map(|c| c.try_into().map(u64::from_be_bytes));
    let mut next = || words.next().and_then(Result::ok);
    let (given, family) = (next()?, next()?);
    let prefixes = if plain.len() == ROW_BYTES {
        let mut p = PrefixTags {
            given: [0; PREFIX_SLOTS],
            family: [0; PREFIX_SLOTS],
        };
        for slot in p.given.iter_mut().chain(p.family.iter_mut()) {
            *slot = next()?;
        }
        Some(p)
    } else {
        None
    };
    Some(NameTags {
        given,
        family,
        prefixes,
    })
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
                filter.add(&NameTags { given: g, family: f, prefixes: None });
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

    /// The table of one- and two-byte strings answers as the tags do, and follows
    /// names added after it was worked out.
    #[test]
    fn short_strings_are_looked_up_as_they_are_tagged() {
        let ring = KeyRing::new(RootKey::generate()).unwrap();
        let mut filter = NamePartFilter::new(ring.name_parts().clone());
        filter.add_names("Bo", "Ek");
        let check = |filter: &NamePartFilter| {
            for a in 0..128u8 {
                for b in std::iter::once(None).chain((0..128u8).map(Some)) {
                    let s: String = std::iter::once(a).chain(b).map(char::from).collect();
                    assert_eq!(
                        filter.short_bits(&s),
                        Some(filter.bits(filter.key().tag(&s))),
                        "{s:?}"
                    );
                }
            }
        };
        check(&filter);
        assert_eq!(filter.short_bits("bo"), Some(NamePartFilter::GIVEN));
        assert_eq!(filter.short_bits("e"), Some(NamePartFilter::FAMILY_PREFIX));
        filter.add_names("Al", "E");
        assert_eq!(
            filter.short_bits("e"),
            Some(NamePartFilter::FAMILY_PREFIX | NamePartFilter::FAMILY)
        );
        check(&filter);
        for s in ["", "abc", "é", "aé"] {
            assert_eq!(filter.short_bits(s), None, "{s:?}");
        }
    }

    proptest::proptest! {
        /// What `known_bits` tells without hashing is never less than the real names
        /// say: every real part, and every proper prefix of one, keeps its bits. Short
        /// strings get exactly their tag's bits; a filter lacking some identity's
        /// prefix tags tells only short strings.
        #[test]
        fn known_bits_hide_no_real_part(
            names in proptest::collection::vec(("[a-zA-ZåäöøæéÅ -]{1,20}", "[a-zA-ZåäöøæéÅ -]{1,20}"), 1..6),
            probes in proptest::collection::vec("[a-zåäöø0-9]{1,12}", 0..40),
        ) {
            let ring = KeyRing::new(RootKey::generate()).unwrap();
            let key = ring.name_parts();
            let mut filter = NamePartFilter::new(key.clone());
            for (g, f) in &names {
                filter.add_names(g, f);
            }
            // The truth, from the names themselves.
            let truth = |s: &str| {
                let mut bits = 0u8;
                for (g, f) in &names {
                    for (part, whole, prefix) in [
                        (normalize_name(g), NamePartFilter::GIVEN, NamePartFilter::GIVEN_PREFIX),
                        (normalize_name(f), NamePartFilter::FAMILY, NamePartFilter::FAMILY_PREFIX),
                    ] {
                        if part == s {
                            bits |= whole;
                        }
                        if part.len() > s.len() && part.starts_with(s) && s.len() <= PREFIX_MAX_BYTES {
                            bits |= prefix;
                        }
                    }
                }
                bits
            };
            let mut all: Vec<String> = probes.clone();
            for (g, f) in &names {
                for part in [normalize_name(g), normalize_name(f)] {
                    for (at, _) in part.char_indices().skip(1) {
                        all.push(part[..at].to_string());
                    }
                    all.push(part);
                }
            }
            let check = |filter: &NamePartFilter, complete: bool| -> Result<(), proptest::test_runner::TestCaseError> {
                for s in &all {
                    let known = filter.known_bits(s);
                    if let Some(b) = known {
                        let t = truth(s);
                        proptest::prop_assert_eq!(b & t, t, "{:?}", s);
                    }
                    if s.is_empty() {
                        proptest::prop_assert_eq!(known, None);
                    } else if s.len() <= 2 && s.is_ascii() {
                        proptest::prop_assert_eq!(known, Some(filter.bits(key.tag(s))));
                    } else if !complete {
                        proptest::prop_assert_eq!(known, None);
                    }
                }
                Ok(())
            };
            check(&filter, true)?;
            let t = tags_of(key, "Old", "Row");
            filter.add(&NameTags { prefixes: None, ..t });
            check(&filter, false)?;
            // A string whose first two bytes start no real part, told without a hash.
            let mut plain = NamePartFilter::new(key.clone());
            plain.add_names("Bo", "Ekman");
            proptest::prop_assert_eq!(plain.known_bits("xqzz"), Some(0));
            // "bo" is a given name, and the start of none: nothing longer is one.
            proptest::prop_assert_eq!(plain.known_bits("boa"), Some(0));
            proptest::prop_assert_eq!(plain.known_bits("ekm"), None);
            proptest::prop_assert_eq!(plain.known_bits("ekman"), None);
        }
    }

    proptest::proptest! {
        /// Every proper prefix of a real name part may grow (into that part, of its
        /// kind); with one identity lacking prefix tags, every half may.
        #[test]
        fn no_prefix_of_a_real_part_is_cut_short(
            first in "[a-zA-ZåäöÅÄÖøæé -]{1,30}",
            last in "[a-zA-ZåäöÅÄÖøæé -]{1,30}",
            probe in "[a-zåäöø]{1,20}",
        ) {
            let ring = KeyRing::new(RootKey::generate()).unwrap();
            let key = ring.name_parts();
            let mut filter = NamePartFilter::new(key.clone());
            filter.add_names(&first, &last);
            proptest::prop_assert!(filter.prefixes_complete());
            for (part, mask) in [
                (normalize_name(&first), NamePartFilter::GIVEN_PREFIX),
                (normalize_name(&last), NamePartFilter::FAMILY_PREFIX),
            ] {
                for (at, _) in part.char_indices().skip(1) {
                    let p = &part[..at];
                    proptest::prop_assert!(filter.may_extend(filter.bits(key.tag(p)), p.len(), mask));
                }
            }
            // A probe that starts no real part is cut short while it is short enough.
            let starts = |part: &str| part.len() > probe.len() && part.starts_with(probe.as_str());
            let (g, f) = (normalize_name(&first), normalize_name(&last));
            let bits = filter.bits(key.tag(&probe));
            if probe.len() < PREFIX_MAX_BYTES && !starts(&g) && !starts(&f) && probe != g && probe != f {
                proptest::prop_assert!(!filter.may_extend(bits, probe.len(), NamePartFilter::GIVEN_PREFIX | NamePartFilter::FAMILY_PREFIX));
            }
            let t = tags_of(key, "Old", "Row");
            filter.add(&NameTags { prefixes: None, ..t });
            proptest::prop_assert!(!filter.prefixes_complete());
            proptest::prop_assert!(filter.may_extend(0, 1, NamePartFilter::GIVEN_PREFIX));
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
        let tags = tags_of(key, "Åsa-Britt", "ÖBERG");
        let (g, f) = (tags.given, tags.family);
        assert_eq!((g, f), (key.tag("asabritt"), key.tag("oberg")));
        let other = KeyRing::new(RootKey::generate()).unwrap();
        assert_ne!(other.name_parts().tag("asabritt"), g);
        assert_eq!(format!("{key:?}"), "NamePartKey([redacted])");
        let mut filter = NamePartFilter::new(key.clone());
        filter.add_names("Åsa-Britt", "Öberg");
        assert!(filter.given(g) && filter.family(f));
        assert!(!filter.given(f) && !filter.family(g));
        // Both spellings of each name: stripped and transliterated.
        assert!(filter.given(key.tag("aasabritt")) && filter.family(key.tag("oeberg")));
        assert!(!filter.given(key.tag("oeberg")) && !filter.family(key.tag("aasabritt")));
        assert_eq!(format!("{filter:?}"), "NamePartFilter(2 given, 2 family)");
        // A name with nothing to transliterate: its one spelling.
        let mut plain = NamePartFilter::new(key.clone());
        plain.add_names("Anna", "Lind");
        assert_eq!(format!("{plain:?}"), "NamePartFilter(1 given, 1 family)");
        // Always as many rows, whatever the names hold.
        assert_eq!(spelling_tags(key, "Anna", "Lind").len(), MAX_SPELLINGS);
        assert_eq!(spelling_tags(key, "Åsa", "Lind").len(), MAX_SPELLINGS);
    }

    #[test]
    fn rows_are_sealed_bound_and_unequal_for_equal_names() {
        let ring = KeyRing::new(RootKey::generate()).unwrap();
        let seal = ring.name_part_seal().unwrap();
        let (a, b) = (CaseId::new(), CaseId::new());
        let tags = tags_of(ring.name_parts(), "Anna", "Svensson");
        let ra = seal_row(&seal, &a, "pupil", &tags).unwrap();
        let rb = seal_row(&seal, &b, "pupil", &tags).unwrap();
        assert_ne!(ra, rb, "equal names must not give equal rows");
        assert_eq!(open_row(&seal, &a, "pupil", &ra), Some(tags.clone()));
        // Names of other lengths: rows of the same length.
        let long = tags_of(
            ring.name_parts(),
            "Anna-Maria Sofia",
            "von Hohenzollern-Sigmaringen",
        );
        assert_eq!(seal_row(&seal, &a, "pupil", &long).unwrap().len(), ra.len());
        // A row sealed before prefix tags were kept opens without them.
        let old = NameTags {
            prefixes: None,
            ..tags.clone()
        };
        let r1 = seal_row(&seal, &a, "pupil", &old).unwrap();
        assert!(r1.len() < ra.len());
        assert_eq!(open_row(&seal, &a, "pupil", &r1), Some(old));
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
