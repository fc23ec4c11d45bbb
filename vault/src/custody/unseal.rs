//! Unsealing: shares entered one at a time, by different people, until the threshold.
//!
//! Each share is checked as it comes (a typing error, a share of another set, a share
//! entered twice are refused at once). When `threshold` shares are in, they are
//! combined and the root key opened; if that fails, every share entered is forgotten
//! and the holders start again, told only that the shares did not open the key (never
//! which one was wrong). Shares are wiped from memory as soon as they are combined.

use std::collections::BTreeMap;

use super::shares::{combine, Share, ShareError};
use super::{CustodyError, CustodyRecord, Provider};
use crate::keys::RootKey;

/// Where unsealing stands after a share.
#[derive(Debug)]
pub enum Progress {
    /// More shares are needed: `entered` of `threshold`.
    Need { entered: usize, threshold: usize },
    /// The root key is open. `holders` are the names of the holders whose shares opened it.
    Open { root: RootKey, holders: Vec<String> },
}

/// Why a share was not taken.
#[derive(Debug, thiserror::Error)]
pub enum UnsealError {
    #[error(transparent)]
    Share(#[from] ShareError),
    /// `threshold` shares were combined and did not open the root key. All were forgotten.
    #[error(
        "the shares entered do not open the key; they have all been forgotten, enter them again"
    )]
    DoNotOpen,
    #[error(transparent)]
    Custody(#[from] CustodyError),
}

/// Shares collected so far for one custody record.
pub struct Unsealing {
    record: CustodyRecord,
    entered: BTreeMap<u8, Share>,
}

impl std::fmt::Debug for Unsealing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Unsealing({} of {})",
            self.entered.len(),
            self.record.threshold
        )
    }
}

impl Unsealing {
    pub fn new(record: CustodyRecord) -> Result<Self, CustodyError> {
        if record.provider != Provider::Shares {
            return Err(CustodyError::ProviderMismatch {
                configured: Provider::Shares,
                stored: record.provider.to_string(),
            });
        }
        Ok(Self {
            record,
            entered: BTreeMap::new(),
        })
    }

    pub fn threshold(&self) -> usize {
        usize::from(self.record.threshold)
    }

    pub fn entered(&self) -> usize {
        self.entered.len()
    }

    pub fn record(&self) -> &CustodyRecord {
        &self.record
    }

    /// Forget every share entered.
    pub fn reset(&mut self) {
        self.entered.clear();
    }

    /// Take one share's text.
    pub fn enter(&mut self, text: &str) -> Result<Progress, UnsealError> {
        let share = Share::parse(text)?;
        if share.set_id() != self.record.set_id
            || usize::from(share.index()) > self.record.holders.len()
        {
            return Err(ShareError::OtherSet.into());
        }
        if self.entered.contains_key(&share.index()) {
            return Err(ShareError::Repeated.into());
        }
        self.entered.insert(share.index(), share);
        if self.entered.len() < self.threshold() {
            return Ok(Progress::Need {
                entered: self.entered.len(),
                threshold: self.threshold(),
            });
        }
        let shares: Vec<Share> = std::mem::take(&mut self.entered).into_values().collect();
        let holders = shares
            .iter()
            .filter_map(|s| self.record.holders.get(usize::from(s.index()) - 1).cloned())
            .collect();
        let custody = combine(&shares).map_err(UnsealError::Share)?;
        drop(shares);
        match self.record.open_with(&custody) {
            Ok(root) => Ok(Progress::Open { root, holders }),
            Err(CustodyError::WrongKey) => Err(UnsealError::DoNotOpen),
            Err(e) => Err(e.into()),
        }
    }
}

/// Open the root key at once from shares given together (the CLI, a restore).
pub fn open_with_shares<'a>(
    record: &CustodyRecord,
    texts: impl IntoIterator<Item = &'a str>,
) -> Result<(RootKey, Vec<String>), UnsealError> {
    let mut u = Unsealing::new(record.clone())?;
    for t in texts {
        if let Progress::Open { root, holders } = u.enter(t)? {
            return Ok((root, holders));
        }
    }
    Err(UnsealError::Share(ShareError::BadThreshold))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests
    use super::*;
    use crate::custody::split_root;

    fn names(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("holder {i}")).collect()
    }

    #[test]
    fn three_of_five_open_and_name_their_holders() {
        let root = RootKey::generate();
        let (rec, set) = split_root(&root, 3, &names(5), 1, "t").unwrap();
        let mut u = Unsealing::new(rec).unwrap();
        assert!(matches!(
            u.enter(&set[4].encode()).unwrap(),
            Progress::Need {
                entered: 1,
                threshold: 3
            }
        ));
        assert!(matches!(
            u.enter(&set[4].encode()),
            Err(UnsealError::Share(ShareError::Repeated))
        ));
        assert!(matches!(
            u.enter(&set[0].encode()).unwrap(),
            Progress::Need { entered: 2, .. }
        ));
        match u.enter(&set[2].encode()).unwrap() {
            Progress::Open { root: r, holders } => {
                assert_eq!(r.0 .0, root.0 .0);
                assert_eq!(holders, vec!["holder 1", "holder 3", "holder 5"]);
            }
            p => panic!("not open: {p:?}"),
        }
        assert_eq!(u.entered(), 0, "shares are forgotten once combined");
    }

    #[test]
    fn a_share_of_another_set_or_generation_is_refused_at_once() {
        let root = RootKey::generate();
        let (rec, _) = split_root(&root, 2, &names(3), 1, "t").unwrap();
        let (_, other) = split_root(&root, 2, &names(3), 2, "t").unwrap();
        let mut u = Unsealing::new(rec).unwrap();
        assert!(matches!(
            u.enter(&other[0].encode()),
            Err(UnsealError::Share(ShareError::OtherSet))
        ));
        assert_eq!(u.entered(), 0);
    }

    #[test]
    fn a_wrong_share_of_the_right_set_fails_only_when_combined_and_resets() {
        let root = RootKey::generate();
        let (rec, set) = split_root(&root, 2, &names(3), 1, "t").unwrap();
        // A forged share: right set and index, other value, valid check.
        let mut forged = set[1].clone();
        forged.value[0] ^= 1;
        let mut u = Unsealing::new(rec).unwrap();
        u.enter(&set[0].encode()).unwrap();
        let err = u.enter(&forged.encode()).unwrap_err();
        assert!(matches!(err, UnsealError::DoNotOpen));
        assert!(
            !err.to_string().contains('2'),
            "does not say which share: {err}"
        );
        assert_eq!(u.entered(), 0);
        // The right shares still open it afterwards.
        u.enter(&set[0].encode()).unwrap();
        assert!(matches!(
            u.enter(&set[1].encode()).unwrap(),
            Progress::Open { .. }
        ));
    }
}
