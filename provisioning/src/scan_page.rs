//! A page of what a target gave the leak scan: entries already decoded
//! ([`ScannedEntry`]), or LDAP search result entries as they came off the wire
//! ([`LdapEntries`]), checked but decoded only where they are matched, without a copy
//! per value.

use crate::ldap_wire::{check_entry, entry_dn, scanned_from_entry, view_checked, EntryView};
use crate::model::TargetName;
use crate::record::ScannedEntry;
use crate::target::ParseError;

/// One page for [`crate::scan::PagedScan`].
pub enum ScanPage {
    Entries(Vec<ScannedEntry>),
    Ldap(LdapEntries),
}

impl ScanPage {
    pub fn len(&self) -> usize {
        match self {
            ScanPage::Entries(e) => e.len(),
            ScanPage::Ldap(l) => l.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The entries, decoded.
    pub fn into_entries(self) -> Result<Vec<ScannedEntry>, ParseError> {
        match self {
            ScanPage::Entries(e) => Ok(e),
            ScanPage::Ldap(l) => l.to_scanned(),
        }
    }
}

/// The first buffer of a page made with [`LdapEntries::new`] (it doubles as entries
/// come).
const FIRST_BYTES: usize = 64 << 10;

/// Writes zeros over `bytes` and keeps the writes from being optimised away
/// ([`zeroize::optimization_barrier`]). The same guarantee as `Zeroize`, at the speed of
/// `memset`: `Zeroize` writes a byte slice one volatile byte at a time, which was a
/// measurable share of a leak scan's CPU (its pages hold every byte a directory sends).
pub(crate) fn wipe(bytes: &mut [u8]) {
    bytes.fill(0);
    zeroize::optimization_barrier(bytes);
}

/// A byte buffer that is wiped ([`wipe`]) when dropped. Grown only through
/// [`WipedBytes::extend`], which moves the bytes to a new buffer and wipes the old one
/// (a `Vec` growing in place could leave a copy behind), so its spare capacity never
/// held anything.
#[derive(Default)]
pub(crate) struct WipedBytes(Vec<u8>);

impl WipedBytes {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self(Vec::with_capacity(capacity))
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.0
    }

    /// Appends `more`; a new buffer of at least `min_capacity` bytes if it does not fit.
    pub(crate) fn extend(&mut self, more: &[u8], min_capacity: usize) {
        let needed = self.0.len() + more.len();
        if needed > self.0.capacity() {
            let capacity = needed.max(2 * self.0.capacity()).max(min_capacity);
            let mut grown = Vec::with_capacity(capacity);
            grown.extend_from_slice(&self.0);
            wipe(&mut self.0);
            self.0 = grown;
        }
        self.0.extend_from_slice(more);
    }
}

impl Drop for WipedBytes {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

/// `SearchResultEntry` contents of one target, one after another in one buffer that is
/// wiped when it grows and when dropped.
pub struct LdapEntries {
    target: TargetName,
    bytes: WipedBytes,
    /// Per entry: its range in `bytes`, its number in the read (from 0) and how many
    /// values it holds.
    entries: Vec<(usize, usize, usize, usize)>,
}

impl LdapEntries {
    pub fn new(target: TargetName) -> Self {
        Self::with_capacity(target, 0)
    }

    /// A page whose first buffer holds `bytes` (a reader that hands pages over at a
    /// known size: the entries are then copied once, not again as the buffer grows).
    pub fn with_capacity(target: TargetName, bytes: usize) -> Self {
        Self {
            target,
            bytes: WipedBytes::with_capacity(bytes),
            entries: Vec::new(),
        }
    }

    pub fn target(&self) -> &TargetName {
        &self.target
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes.len()
    }

    /// Adds one entry's contents, `n` its number in the read, once they are checked
    /// ([`check_entry`]): a page holds only entries that decode.
    pub fn push(&mut self, contents: &[u8], n: usize) -> Result<(), ParseError> {
        let (_, _, count) = check_entry(contents)?;
        let start = self.bytes.len();
        self.bytes.extend(contents, FIRST_BYTES);
        self.entries.push((start, self.bytes.len(), n, count));
        Ok(())
    }

    /// Keeps the entries whose DN `keep` accepts (their bytes stay until the page is
    /// dropped).
    pub fn retain_by_dn(&mut self, mut keep: impl FnMut(&str) -> bool) {
        let bytes = self.bytes.as_slice();
        self.entries.retain(|&(from, to, _, _)| {
            let contents = bytes.get(from..to).unwrap_or(&[]);
            keep(entry_dn(contents).as_str())
        });
    }

    /// Each entry's contents and number.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], usize)> {
        self.entries
            .iter()
            .map(|&(from, to, n, _)| (self.bytes.as_slice().get(from..to).unwrap_or(&[]), n))
    }

    /// Each entry decoded without copying (`view_entry`, not checked again), with its
    /// number.
    pub fn views(&self) -> impl Iterator<Item = (Result<EntryView<'_>, ParseError>, usize)> {
        self.entries.iter().map(|&(from, to, n, count)| {
            let contents = self.bytes.as_slice().get(from..to).unwrap_or(&[]);
            (view_checked(contents, count), n)
        })
    }

    /// The entries as scan entries (copied).
    pub fn to_scanned(&self) -> Result<Vec<ScannedEntry>, ParseError> {
        self.iter()
            .map(|(c, n)| scanned_from_entry(&self.target, c, n))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    /// The contents of a `SearchResultEntry` with this DN and attributes.
    fn entry(dn: &str, attrs: &[(&str, &[&str])]) -> Vec<u8> {
        fn put(out: &mut Vec<u8>, id: u8, contents: &[u8]) {
            out.push(id);
            assert!(contents.len() < 0x80);
            out.push(contents.len() as u8);
            out.extend_from_slice(contents);
        }
        let mut list = Vec::new();
        for (name, values) in attrs {
            let mut vals = Vec::new();
            for v in *values {
                put(&mut vals, 0x04, v.as_bytes());
            }
            let mut pa = Vec::new();
            put(&mut pa, 0x04, name.as_bytes());
            put(&mut pa, 0x31, &vals);
            put(&mut list, 0x30, &pa);
        }
        let mut out = Vec::new();
        put(&mut out, 0x04, dn.as_bytes());
        put(&mut out, 0x30, &list);
        out
    }

    #[test]
    fn wiped_bytes_keep_what_they_were_given_and_wipe_to_zero() {
        let mut b = WipedBytes::with_capacity(4);
        let mut expected = Vec::new();
        for i in 0..100u8 {
            let more: Vec<u8> = (0..i).map(|k| k ^ i).collect();
            b.extend(&more, 16);
            expected.extend_from_slice(&more);
            assert_eq!(b.as_slice(), expected.as_slice());
        }
        assert_eq!(b.len(), expected.len());
        let mut raw = expected.clone();
        wipe(&mut raw);
        assert_eq!(raw.len(), expected.len());
        assert!(raw.iter().all(|&x| x == 0));
    }

    #[test]
    fn a_page_keeps_what_it_was_given_and_refuses_what_does_not_decode() {
        let t = TargetName::new("dir").unwrap();
        let mut page = LdapEntries::new(t.clone());
        let a = entry("uid=a,ou=p", &[("cn", &["A a"]), ("entryUUID", &["u-1"])]);
        let b = entry("uid=b,ou=p", &[("sn", &["B"])]);
        page.push(&a, 0).unwrap();
        // Past the first buffer: it grows (a new buffer) and keeps every entry.
        let big = "x".repeat(100);
        let filler = entry("uid=f,ou=p", &[("description", &[big.as_str()])]);
        for i in 1..800 {
            page.push(&filler, i).unwrap();
        }
        page.push(&b, 800).unwrap();
        assert!(page.push(&a[..a.len() - 1], 801).is_err());
        assert_eq!(page.len(), 801);
        let scanned = page.to_scanned().unwrap();
        assert_eq!(scanned.first().unwrap().locator, "entryUUID=u-1");
        assert_eq!(scanned.last().unwrap().locator, "entry #801");
        assert_eq!(scanned.last().unwrap().first("sn"), Some("B"));
        let (view, n) = page.views().next().unwrap();
        let view = view.unwrap();
        assert_eq!(n, 0);
        let values: Vec<(&str, &str)> = view.values().collect();
        assert_eq!(
            values,
            [("dn", "uid=a,ou=p"), ("dn.rdn", "a"), ("cn", "A a")]
        );
        // The views (not checked again) hold what the checked decoding holds.
        for ((view, n), s) in page.views().zip(&scanned) {
            let view = view.unwrap();
            assert_eq!(view.locator(n), s.locator);
            let values: Vec<(&str, &str)> = view.values().collect();
            let copied: Vec<(&str, &str)> = s
                .values
                .iter()
                .map(|(a, v)| (a.as_str(), v.as_str()))
                .collect();
            assert_eq!(values, copied);
        }
        page.retain_by_dn(|dn| dn != "uid=f,ou=p");
        assert_eq!(page.len(), 2);
        assert_eq!(ScanPage::Ldap(page).into_entries().unwrap().len(), 2);
    }
}
