//! Real-identity types. They are not `Serialize`, their `Debug` prints `[redacted]`,
//! they have no `Display`, and their contents are zeroized on drop. Only this crate can
//! build one from sealed bytes, and only after an audit event has been written.
//!
//! The compiler holds the first two promises; these doctests fail to build if anyone
//! adds `Serialize` or `Display`:
//!
//! ```compile_fail
//! fn needs<T: serde::Serialize>() {}
//! needs::<fiktiv_vault::RealIdentity>();
//! ```
//! ```compile_fail
//! fn needs<T: serde::Serialize>() {}
//! needs::<fiktiv_vault::RealName>();
//! ```
//! ```compile_fail
//! fn needs<T: serde::Serialize>() {}
//! needs::<fiktiv_vault::ids::PersonalNumber>();
//! ```
//! ```compile_fail
//! fn needs<T: std::fmt::Display>() {}
//! needs::<fiktiv_vault::RealIdentity>();
//! ```
//! ```compile_fail
//! fn needs<T: std::fmt::Display>() {}
//! needs::<fiktiv_vault::ids::PersonalNumber>();
//! ```
//! ```
//! // ...while the fictitious side may be serialised freely:
//! fn needs<T: serde::Serialize>() {}
//! needs::<fiktiv_vault::CaseId>();
//! ```

use std::fmt;

use chrono::NaiveDate;
use zeroize::Zeroizing;

use crate::blind::{BlindIndex, IndexKind};
use crate::ids::{Country, PersonalNumber};
use crate::keys::BlindKey;
use crate::normalize;

/// A real first or last name. Wiped on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct RealName(Zeroizing<String>);

impl RealName {
    pub fn new(s: &str) -> Self {
        Self(Zeroizing::new(s.trim().to_string()))
    }

    /// The name, for the few places policy lets a person see it (the school's own case
    /// page, an approved reveal). Never log or serialise this.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for RealName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RealName([redacted])")
    }
}

/// A protected person's real identity.
#[derive(Clone, PartialEq, Eq)]
pub struct RealIdentity {
    pub number: PersonalNumber,
    pub first_name: RealName,
    pub last_name: RealName,
    pub birth_date: NaiveDate,
}

impl Drop for RealIdentity {
    fn drop(&mut self) {
        // The number and names wipe themselves (Zeroizing). A date is `Copy` and has
        // no Zeroize impl: overwrite it, and keep the store from being optimised away.
        self.birth_date = NaiveDate::MIN;
        std::hint::black_box(&self.birth_date);
    }
}

impl fmt::Debug for RealIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RealIdentity([redacted])")
    }
}

/// Decoding a sealed identity failed: the plaintext was not what this version wrote.
#[derive(Debug, thiserror::Error)]
#[error("sealed identity record is malformed")]
pub struct DecodeError;

const RECORD_V1: u8 = 1;

impl RealIdentity {
    /// All blind indexes of this identity: the number, then [`NAME_SPELLING_SLOTS`]
    /// full-name and as many name + birth date indexes, one per spelling of the names
    /// ([`name_spelling_keys`]). Unused slots hold [`unused_slot_index`] of `owner`
    /// (the case and subject), which no name gives: every identity has the same number
    /// of rows, so a copy of the database does not tell whose names hold `å`, `ä`, `ö`,
    /// `ø`, `æ` or `ü`.
    ///
    /// Then [`INITIAL_SLOTS`] more name + birth date indexes of the initial of the
    /// first name with each spelling of the last name ([`initial_family_keys`]): the
    /// user name or mail address `gfamily` beside the birth date is the real pupil too.
    pub fn blind_indexes(&self, key: &BlindKey, owner: &str) -> Vec<(IndexKind, BlindIndex)> {
        let mut out = Vec::with_capacity(1 + 2 * NAME_SPELLING_SLOTS + INITIAL_SLOTS);
        out.push((
            IndexKind::PersonalNumber,
            key.index(IndexKind::PersonalNumber, self.number.canonical()),
        ));
        let spellings = name_spelling_keys(self.first_name.expose(), self.last_name.expose());
        for slot in 0..NAME_SPELLING_SLOTS {
            match spellings.get(slot) {
                Some(full) => {
                    let name_birth = name_birth_of(full, self.birth_date);
                    out.push((IndexKind::FullName, key.index(IndexKind::FullName, full)));
                    out.push((
                        IndexKind::NameBirth,
                        key.index(IndexKind::NameBirth, &name_birth),
                    ));
                }
                None => {
                    for kind in [IndexKind::FullName, IndexKind::NameBirth] {
                        out.push((kind, unused_slot_index(key, kind, owner, slot)));
                    }
                }
            }
        }
        let initials = initial_family_keys(self.first_name.expose(), self.last_name.expose());
        for slot in 0..INITIAL_SLOTS {
            let idx = match initials.get(slot) {
                Some(k) => key.index(IndexKind::NameBirth, &name_birth_of(k, self.birth_date)),
                None => {
                    unused_slot_index(key, IndexKind::NameBirth, owner, NAME_SPELLING_SLOTS + slot)
                }
            };
            out.push((IndexKind::NameBirth, idx));
        }
        out
    }

    pub(crate) fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(128));
        out.push(RECORD_V1);
        out.push(match self.number.country() {
            Country::Se => b'S',
            Country::No => b'N',
        });
        for part in [
            self.number.canonical(),
            self.first_name.expose(),
            self.last_name.expose(),
        ] {
            out.extend_from_slice(&(part.len() as u32).to_be_bytes());
            out.extend_from_slice(part.as_bytes());
        }
        out.extend_from_slice(self.birth_date.format("%Y-%m-%d").to_string().as_bytes());
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let (head, mut rest) = bytes.split_at_checked(2).ok_or(DecodeError)?;
        if head[0] != RECORD_V1 {
            return Err(DecodeError);
        }
        let country = match head[1] {
            b'S' => Country::Se,
            b'N' => Country::No,
            _ => return Err(DecodeError),
        };
        let mut parts: Vec<Zeroizing<String>> = Vec::with_capacity(3);
        for _ in 0..3 {
            let (len, r) = rest.split_at_checked(4).ok_or(DecodeError)?;
            let len = u32::from_be_bytes(len.try_into().map_err(|_| DecodeError)?) as usize;
            let (s, r) = r.split_at_checked(len).ok_or(DecodeError)?;
            parts.push(Zeroizing::new(
                std::str::from_utf8(s).map_err(|_| DecodeError)?.to_string(),
            ));
            rest = r;
        }
        let date = std::str::from_utf8(rest).map_err(|_| DecodeError)?;
        let birth_date = NaiveDate::parse_from_str(date, "%Y-%m-%d").map_err(|_| DecodeError)?;
        // The stored canonical form was validated when the case was opened; the
        // "today" bound is irrelevant when decoding, so use the latest date.
        let number = PersonalNumber::parse_country(country, &parts[0], NaiveDate::MAX)
            .map_err(|_| DecodeError)?;
        Ok(Self {
            number,
            first_name: RealName::new(&parts[1]),
            last_name: RealName::new(&parts[2]),
            birth_date,
        })
    }
}

/// The normalised full-name key: first and last name, folded, joined.
pub fn full_name_key(first: &str, last: &str) -> String {
    format!(
        "{}|{}",
        normalize::normalize_name(first),
        normalize::normalize_name(last)
    )
}

/// Full-name index slots per identity: every combination of the spellings of the first
/// and of the last name ([`normalize::name_spellings`]).
pub const NAME_SPELLING_SLOTS: usize = normalize::MAX_SPELLINGS * normalize::MAX_SPELLINGS;

/// The full-name keys of every spelling an ASCII-only system makes of a real name, each
/// name spelled on its own (a system may transliterate one and strip the other):
/// [`full_name_key`] first, at most [`NAME_SPELLING_SLOTS`], distinct. The name + birth
/// date keys are these with `|YYYYMMDD` appended ([`normalize::name_birth_key`]).
pub fn name_spelling_keys(first: &str, last: &str) -> Vec<Zeroizing<String>> {
    let firsts: Vec<Zeroizing<String>> = normalize::name_spellings(first)
        .into_iter()
        .map(Zeroizing::new)
        .collect();
    let lasts: Vec<Zeroizing<String>> = normalize::name_spellings(last)
        .into_iter()
        .map(Zeroizing::new)
        .collect();
    let mut out = Vec::with_capacity(firsts.len() * lasts.len());
    for f in &firsts {
        for l in &lasts {
            out.push(Zeroizing::new(format!("{}|{}", f.as_str(), l.as_str())));
        }
    }
    out
}

/// Initial + family index slots per identity: one per spelling of the last name.
pub const INITIAL_SLOTS: usize = normalize::MAX_SPELLINGS;

/// The `initial|family` keys of a real name: the first character of the folded first
/// name (the same in every spelling: `Å` is `a` stripped and `aa` transliterated) with
/// each spelling of the last name, at most [`INITIAL_SLOTS`], distinct. With the birth
/// date appended ([`name_birth_of`]) they are name + birth date keys: what the matcher
/// builds from a user name or mail address `gfamily`, `g.family`, or `Family, G.`.
/// None when the first name folds to nothing.
pub fn initial_family_keys(first: &str, last: &str) -> Vec<Zeroizing<String>> {
    let folded = Zeroizing::new(normalize::normalize_name(first));
    let Some(initial) = folded.chars().next() else {
        return Vec::new();
    };
    normalize::name_spellings(last)
        .into_iter()
        .map(Zeroizing::new)
        .map(|l| Zeroizing::new(format!("{initial}|{}", l.as_str())))
        .collect()
}

/// The name + birth date key of a full-name key ([`name_spelling_keys`]): the key
/// with `|YYYYMMDD` appended, as [`normalize::name_birth_key`] writes it.
pub fn name_birth_of(full_name_key: &str, birth: NaiveDate) -> Zeroizing<String> {
    Zeroizing::new(format!("{full_name_key}|{}", birth.format("%Y%m%d")))
}

/// The index of unused spelling slot `slot` of `owner` (case and subject): of a key no
/// name gives (it starts with a NUL, which folding removes). Keyed like every index, so
/// without the key it looks like any other; one per owner and slot, so that rewriting an
/// identity's indexes gives the same rows.
pub fn unused_slot_index(key: &BlindKey, kind: IndexKind, owner: &str, slot: usize) -> BlindIndex {
    key.index(kind, &format!("\0unused|{owner}|{slot}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sample() -> RealIdentity {
        let n =
            crate::ids::make_se_number(NaiveDate::from_ymd_opt(2011, 4, 3).unwrap(), 42).unwrap();
        let number =
            PersonalNumber::parse(&n, NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()).unwrap();
        RealIdentity {
            birth_date: number.birth_date(),
            number,
            first_name: RealName::new("Ingrid"),
            last_name: RealName::new("Öhman"),
        }
    }

    /// One number index, four full-name and four name + birth indexes whatever the
    /// names hold; every spelling of the names among them; the unused slots match no
    /// name and are the same when the indexes are written again.
    #[test]
    fn every_spelling_is_indexed_in_slots_of_one_count() {
        let key = crate::RootKey::generate().blind_key().unwrap();
        let who = sample();
        let idx = who.blind_indexes(&key, "case/pupil");
        assert_eq!(idx.len(), 1 + 2 * NAME_SPELLING_SLOTS + INITIAL_SLOTS);
        // The initial with each spelling of the last name, with the birth date.
        for l in ["ohman", "oehman"] {
            let nb = key.index(IndexKind::NameBirth, &format!("i|{l}|20110403"));
            assert!(idx.contains(&(IndexKind::NameBirth, nb)), "i {l}");
        }
        let full = |f: &str, l: &str| key.index(IndexKind::FullName, &format!("{f}|{l}"));
        for (f, l) in [("ingrid", "ohman"), ("ingrid", "oehman")] {
            assert!(idx.contains(&(IndexKind::FullName, full(f, l))), "{f} {l}");
            let nb = key.index(IndexKind::NameBirth, &format!("{f}|{l}|20110403"));
            assert!(idx.contains(&(IndexKind::NameBirth, nb)), "{f} {l}");
        }
        // Two spellings of the last name, one of the first: two slots are unused.
        for kind in [IndexKind::FullName, IndexKind::NameBirth] {
            for slot in 2..NAME_SPELLING_SLOTS {
                let pad = unused_slot_index(&key, kind, "case/pupil", slot);
                assert!(idx.contains(&(kind, pad)));
            }
        }
        assert_eq!(idx, who.blind_indexes(&key, "case/pupil"));
        // A name with nothing to transliterate has as many rows, its unused initial
        // slot padded.
        let mut plain = sample();
        plain.last_name = RealName::new("Berg");
        let plain_idx = plain.blind_indexes(&key, "x/pupil");
        assert_eq!(plain_idx.len(), idx.len());
        let pad = unused_slot_index(
            &key,
            IndexKind::NameBirth,
            "x/pupil",
            NAME_SPELLING_SLOTS + 1,
        );
        assert!(plain_idx.contains(&(IndexKind::NameBirth, pad)));
        // Distinct rows within one identity (the table's key needs it).
        let set: std::collections::HashSet<_> = idx.iter().collect();
        assert_eq!(set.len(), idx.len());
    }

    #[test]
    fn debug_prints_redacted_and_nothing_else() {
        let who = sample();
        let shown = format!("{who:?} {:?} {:?} {:#?}", who.first_name, who.number, who);
        assert!(!shown.contains("Ingrid") && !shown.contains("Öhman") && !shown.contains("110403"));
        assert!(shown.contains("[redacted]"));
        assert!(!shown.chars().any(|c| c.is_ascii_digit()), "{shown}");
    }

    #[test]
    fn encode_decode_round_trip_and_malformed_input() {
        let who = sample();
        let bytes = who.encode();
        assert_eq!(RealIdentity::decode(&bytes).unwrap(), who);
        for cut in 0..bytes.len() {
            assert!(RealIdentity::decode(&bytes[..cut]).is_err());
        }
        let mut bad = bytes.to_vec();
        bad[0] = 9;
        assert!(RealIdentity::decode(&bad).is_err());
    }
}
