//! Pure parsing of what an LDAP server returns: search result entries (BER), generalized
//! time, DNs. No panics on any input (ldap3's own `SearchEntry::construct` panics on a
//! malformed entry, so it is not used); fuzz targets can call these directly.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use ldap3::asn1::{parse_tag, StructureTag, TagClass, PL};
use zeroize::Zeroizing;

use crate::model::TargetName;
use crate::record::{bounded_name, ScannedEntry};
use crate::target::ParseError;

/// A search result entry: its DN and every attribute (names as the server sent them,
/// values as text; bytes that are not UTF-8 are replaced, so they are still scanned).
#[derive(Clone, PartialEq, Eq)]
pub struct LdapEntry {
    pub dn: String,
    pub attrs: BTreeMap<String, Vec<String>>,
}

impl std::fmt::Debug for LdapEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LdapEntry")
            .field("attributes", &self.attrs.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl LdapEntry {
    /// Values of an attribute, by case-insensitive name.
    pub fn get(&self, name: &str) -> &[String] {
        self.attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
            .unwrap_or(&[])
    }

    pub fn first(&self, name: &str) -> Option<&str> {
        self.get(name).first().map(String::as_str)
    }
}

/// The universal tag numbers a `SearchResultEntry` is made of (RFC 4511 4.5.2): the DN,
/// attribute types and values are `OCTET STRING`s, the attribute list and each partial
/// attribute `SEQUENCE`s, a value set a `SET`.
pub(crate) const OCTET_STRING: u64 = 4;
pub(crate) const SEQUENCE: u64 = 16;
pub(crate) const SET: u64 = 17;

/// The bytes of a primitive universal element with tag number `id`. Any other tag is
/// refused: LDAP never sends one there, and `ldap3`'s reader does not know the BER
/// high-tag-number form (it reads `0xff 0x06` as tag 31 of length 6, where BER and
/// Fiktiv's own reader see tag 6), so a tag check is what keeps both readers on the same
/// bytes (fuzz target `ldap`).
fn primitive(t: &StructureTag, id: u64) -> Option<&[u8]> {
    match &t.payload {
        PL::P(v) if t.class == TagClass::Universal && t.id == id => Some(v),
        _ => None,
    }
}

/// The children of a constructed universal element with tag number `id` ([`primitive`]).
fn constructed(t: &StructureTag, id: u64) -> Option<&[StructureTag]> {
    match &t.payload {
        PL::C(v) if t.class == TagClass::Universal && t.id == id => Some(v),
        _ => None,
    }
}

const BAD: ParseError = ParseError("LDAP search entry");

/// A SearchResultEntry (`[APPLICATION 4] SEQUENCE { objectName, attributes }`).
pub fn parse_search_entry(tag: &StructureTag) -> Result<LdapEntry, ParseError> {
    if tag.class != TagClass::Application || tag.id != 4 {
        return Err(BAD);
    }
    let parts = match &tag.payload {
        PL::C(v) => v,
        PL::P(_) => return Err(BAD),
    };
    let dn = parts
        .first()
        .and_then(|t| primitive(t, OCTET_STRING))
        .ok_or(BAD)?;
    let dn = String::from_utf8_lossy(dn).into_owned();
    let list = parts
        .get(1)
        .and_then(|t| constructed(t, SEQUENCE))
        .ok_or(BAD)?;
    let mut attrs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for pa in list {
        let pa = constructed(pa, SEQUENCE).ok_or(BAD)?;
        let name = pa
            .first()
            .and_then(|t| primitive(t, OCTET_STRING))
            .ok_or(BAD)?;
        let name = String::from_utf8_lossy(name).into_owned();
        let vals = pa.get(1).and_then(|t| constructed(t, SET)).ok_or(BAD)?;
        let out = attrs.entry(name).or_default();
        for v in vals {
            out.push(String::from_utf8_lossy(primitive(v, OCTET_STRING).ok_or(BAD)?).into_owned());
        }
    }
    Ok(LdapEntry { dn, attrs })
}

/// A SearchResultEntry from its BER bytes.
pub fn parse_search_entry_ber(bytes: &[u8]) -> Result<LdapEntry, ParseError> {
    let (_, tag) = parse_tag(bytes).map_err(|_| BAD)?;
    parse_search_entry(&tag)
}

/// LDAP GeneralizedTime as servers write it: `YYYYMMDDHHMMSS[.fff]Z`.
pub fn parse_generalized_time(s: &str) -> Option<DateTime<Utc>> {
    let body = s.strip_suffix('Z')?;
    let main = body.split(['.', ',']).next()?;
    if main.len() != 14 || !main.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    NaiveDateTime::parse_from_str(main, "%Y%m%d%H%M%S")
        .ok()
        .map(|n| n.and_utc())
}

/// Splits a DN into its RDNs, honouring RFC 4514 escapes. Each RDN is returned as
/// written (still escaped).
pub fn split_dn(dn: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in dn.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            ',' | ';' => {
                out.push(dn.get(start..i).unwrap_or("").trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(dn.get(start..).unwrap_or("").trim());
    out
}

/// The first RDN of a DN, as [`split_dn`] gives it, without splitting the rest.
pub fn first_rdn(dn: &str) -> &str {
    let mut escaped = false;
    for (i, b) in dn.bytes().enumerate() {
        if escaped {
            escaped = false;
            continue;
        }
        match b {
            b'\\' => escaped = true,
            b',' | b';' => return dn.get(..i).unwrap_or("").trim(),
            _ => {}
        }
    }
    dn.trim()
}

/// The value of an RDN (`uid=a\2Cb` → `a,b`), unescaped per RFC 4514.
pub fn rdn_value(rdn: &str) -> Option<String> {
    let (_, v) = rdn.split_once('=')?;
    let mut bytes = Vec::with_capacity(v.len());
    let raw = v.as_bytes();
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        if b == b'\\' {
            let hex = raw
                .get(i + 1..i + 3)
                .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match hex {
                Some(x) => {
                    bytes.push(x);
                    i += 3;
                }
                None => {
                    bytes.extend(raw.get(i + 1).copied());
                    i += 2;
                }
            }
        } else {
            bytes.push(b);
            i += 1;
        }
    }
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// The parent DN (everything after the first RDN), as written.
pub fn parent_dn(dn: &str) -> String {
    split_dn(dn).get(1..).unwrap_or(&[]).join(",")
}

/// A DN in a form fit for comparing: RDNs trimmed and lowercased (values are compared
/// case-insensitively by the directories Fiktiv targets).
pub fn normalize_dn(dn: &str) -> String {
    split_dn(dn)
        .iter()
        .map(|r| match r.split_once('=') {
            Some((a, v)) => format!("{}={}", a.trim().to_ascii_lowercase(), v.trim()),
            None => r.to_string(),
        })
        .collect::<Vec<_>>()
        .join(",")
        .to_lowercase()
}

/// Is `dn` at or below `base`?
pub fn is_under(dn: &str, base: &str) -> bool {
    let (d, b) = (normalize_dn(dn), normalize_dn(base));
    d == b || d.ends_with(&format!(",{b}"))
}

/// One LDAP entry as a scan entry. Pure.
pub fn scanned_from_ldap(target: &TargetName, e: &LdapEntry, n: usize) -> ScannedEntry {
    let locator = match e.first("entryUUID") {
        Some(u) => format!("entryUUID={u}"),
        None => format!("entry #{}", n + 1),
    };
    let mut s = ScannedEntry::new(target.clone(), locator);
    s.label_attribute = Some("dn".to_string());
    s.push("dn", &e.dn);
    for rdn in split_dn(&e.dn).iter().take(1) {
        if let Some(v) = rdn_value(rdn) {
            s.push("dn.rdn", &v);
        }
    }
    for (name, vals) in &e.attrs {
        if name.eq_ignore_ascii_case("entryUUID") {
            continue;
        }
        for v in vals {
            s.push(name, v);
        }
    }
    s
}

/// One SearchResultEntry straight into a scan entry, taking ownership of the bytes the
/// LDAP client decoded: the same locator, label and values as
/// `scanned_from_ldap(&parse_search_entry(&tag)?, n)`, without the intermediate copies
/// (the leak scan reads whole directories). Values that are not UTF-8 are replaced.
pub fn scanned_from_tag(
    target: &TargetName,
    tag: StructureTag,
    n: usize,
) -> Result<ScannedEntry, ParseError> {
    // The tags checked as `parse_search_entry` checks them ([`primitive`]).
    fn owned(t: StructureTag) -> Option<Vec<u8>> {
        match t.payload {
            PL::P(v) if t.class == TagClass::Universal && t.id == OCTET_STRING => Some(v),
            _ => None,
        }
    }
    fn children(t: StructureTag, id: u64) -> Option<Vec<StructureTag>> {
        match t.payload {
            PL::C(v) if t.class == TagClass::Universal && t.id == id => Some(v),
            _ => None,
        }
    }
    fn text(v: Vec<u8>) -> String {
        String::from_utf8(v).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }
    if tag.class != TagClass::Application || tag.id != 4 {
        return Err(BAD);
    }
    let mut parts = match tag.payload {
        PL::C(v) => v.into_iter(),
        PL::P(_) => return Err(BAD),
    };
    let dn = text(parts.next().and_then(owned).ok_or(BAD)?);
    let list = parts
        .next()
        .and_then(|t| children(t, SEQUENCE))
        .ok_or(BAD)?;
    let mut attrs: Vec<(String, Vec<String>)> = Vec::with_capacity(list.len());
    for pa in list {
        let mut pa = children(pa, SEQUENCE).ok_or(BAD)?.into_iter();
        let name = text(pa.next().and_then(owned).ok_or(BAD)?);
        let vals = pa.next().and_then(|t| children(t, SET)).ok_or(BAD)?;
        let vals = vals
            .into_iter()
            .map(|v| owned(v).map(text))
            .collect::<Option<Vec<String>>>()
            .ok_or(BAD)?;
        attrs.push((name, vals));
    }
    // The order of `LdapEntry`'s map: by name, repeated names in the order received.
    attrs.sort_by(|a, b| a.0.cmp(&b.0));
    let locator = attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("entryUUID"))
        .and_then(|(_, v)| v.first())
        .map_or_else(|| format!("entry #{}", n + 1), |u| format!("entryUUID={u}"));
    let mut s = ScannedEntry::new(target.clone(), locator);
    s.label_attribute = Some("dn".to_string());
    let rdn = rdn_value(first_rdn(&dn));
    s.values
        .reserve(2 + attrs.iter().map(|(_, v)| v.len()).sum::<usize>());
    s.values.push(("dn".to_string(), Zeroizing::new(dn)));
    if let Some(v) = rdn {
        s.values.push(("dn.rdn".to_string(), Zeroizing::new(v)));
    }
    for (name, vals) in attrs {
        if name.eq_ignore_ascii_case("entryUUID") {
            continue;
        }
        // As `ScannedEntry::push` does: a long name is copied once per value.
        let name = bounded_name(&name).to_string();
        for v in vals {
            s.values.push((name.clone(), Zeroizing::new(v)));
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use ldap3::asn1::{write, ASNTag, OctetString, Sequence, Set, Tag};

    fn entry_ber(dn: &str, attrs: &[(&str, &[&[u8]])]) -> Vec<u8> {
        let os = |b: &[u8]| {
            Tag::OctetString(OctetString {
                inner: b.to_vec(),
                ..Default::default()
            })
        };
        let tag = Tag::Sequence(Sequence {
            class: TagClass::Application,
            id: 4,
            inner: vec![
                os(dn.as_bytes()),
                Tag::Sequence(Sequence {
                    inner: attrs
                        .iter()
                        .map(|(n, vs)| {
                            Tag::Sequence(Sequence {
                                inner: vec![
                                    os(n.as_bytes()),
                                    Tag::Set(Set {
                                        inner: vs.iter().map(|v| os(v)).collect(),
                                        ..Default::default()
                                    }),
                                ],
                                ..Default::default()
                            })
                        })
                        .collect(),
                    ..Default::default()
                }),
            ],
        });
        let mut buf = bytes::BytesMut::new();
        write::encode_into(&mut buf, tag.into_structure()).unwrap();
        buf.to_vec()
    }

    #[test]
    fn parses_entries_and_survives_garbage() {
        let ber = entry_ber(
            "uid=a,ou=people,dc=x",
            &[("cn", &[b"Ella Fiktiv"]), ("jpeg", &[&[0xff, 0xfe, b'1']])],
        );
        let e = parse_search_entry_ber(&ber).unwrap();
        assert_eq!(e.dn, "uid=a,ou=people,dc=x");
        assert_eq!(e.first("CN"), Some("Ella Fiktiv"));
        assert!(e.first("jpeg").unwrap().ends_with('1'));
        for cut in 0..ber.len() {
            let _ = parse_search_entry_ber(&ber[..cut]);
        }
        assert!(parse_search_entry_ber(&[0x30, 0x00]).is_err());
    }

    #[test]
    fn scanned_from_tag_is_scanned_from_ldap() {
        let target = TargetName::new("ldap").unwrap();
        let flat = |e: &ScannedEntry| {
            (
                e.locator.clone(),
                e.label_attribute.clone(),
                e.values
                    .iter()
                    .map(|(n, v)| (n.clone(), v.to_string()))
                    .collect::<Vec<_>>(),
            )
        };
        let cases = [
            entry_ber(
                "uid=a\\2Cb,ou=people,dc=x",
                &[
                    ("sn", &[b"Fiktiv"]),
                    ("cn", &[b"Ella Fiktiv", b"E F"]),
                    ("entryUUID", &[b"1234-5678"]),
                    ("jpeg", &[&[0xff, 0xfe, b'1']]),
                    ("cn", &[b"again"]),
                ],
            ),
            entry_ber("", &[]),
            entry_ber("cn=x", &[("description", &[])]),
            // UTF-8 throughout (the list is checked once), with a split character
            // nowhere; then a value long enough for a long-form length, which makes
            // the list as a whole no UTF-8 (each part checked on its own).
            entry_ber(
                "cn=Åsa",
                &[
                    ("sn", &["Öberg".as_bytes()]),
                    ("cn", &["Åsa Öberg".as_bytes(), b"x"]),
                ],
            ),
            entry_ber(
                "cn=Åsa",
                &[
                    ("description", &["Ø".repeat(100).as_bytes()]),
                    ("sn", &["Öberg".as_bytes(), &[0xc3]]),
                ],
            ),
        ];
        for ber in cases {
            let (_, tag) = parse_tag(&ber).unwrap();
            let old = scanned_from_ldap(&target, &parse_search_entry(&tag).unwrap(), 4);
            let new = scanned_from_tag(&target, tag, 4).unwrap();
            assert_eq!(flat(&old), flat(&new));
            let body = crate::ldap_wire::search_entry_contents(&ber).unwrap();
            let wire = crate::ldap_wire::scanned_from_entry(&target, body, 4).unwrap();
            assert_eq!(flat(&old), flat(&wire));
        }
        for cut in 0..40 {
            let ber = entry_ber("uid=a,dc=x", &[("cn", &[b"x"])]);
            if let Ok((_, tag)) = parse_tag(&ber[..cut.min(ber.len())]) {
                let _ = scanned_from_tag(&target, tag, 0);
            }
            if let Some(body) = crate::ldap_wire::search_entry_contents(&ber[..cut.min(ber.len())])
            {
                let _ = crate::ldap_wire::scanned_from_entry(&target, body, 0);
            }
        }
    }

    #[test]
    fn dn_helpers() {
        assert_eq!(
            split_dn("uid=a\\2Cb,ou=people, dc=x"),
            vec!["uid=a\\2Cb", "ou=people", "dc=x"]
        );
        assert_eq!(rdn_value("uid=a\\2Cb\\+c").unwrap(), "a,b+c");
        assert_eq!(parent_dn("uid=a,ou=people,dc=x"), "ou=people,dc=x");
        assert!(is_under("uid=a,OU=People,dc=x", "ou=people,dc=x"));
        assert!(!is_under("uid=a,ou=peoplex,dc=x", "ou=people,dc=x"));
        assert_eq!(
            parse_generalized_time("20250102030405Z")
                .unwrap()
                .to_rfc3339(),
            "2025-01-02T03:04:05+00:00"
        );
        assert!(parse_generalized_time("2025").is_none());
        assert_eq!(first_rdn(" uid=a\\,b ;ou=x"), "uid=a\\,b");
        assert_eq!(first_rdn("cn=x\\"), "cn=x\\");
    }

    proptest::proptest! {
        /// The first RDN is the first of the DN's RDNs, whatever the text.
        #[test]
        fn the_first_rdn_is_the_first_split(dn in "[a-z=,;\\\\ é]{0,24}") {
            proptest::prop_assert_eq!(first_rdn(&dn), split_dn(&dn)[0]);
        }
    }
}
