//! The LDAP messages the leak scan exchanges (RFC 4511), encoded and decoded here
//! rather than through `ldap3`, because the scan reads whole directories: `ldap3`
//! decodes every message into a tree of owned tags (an allocation per tag) before
//! Fiktiv sees it, which cost more CPU than `ldapsearch` takes to dump the same
//! directory. This reader decodes a `SearchResultEntry` straight from the received
//! bytes into a [`ScannedEntry`].
//!
//! Only what the scan needs: a simple bind, StartTLS, a paged subtree search with
//! `(objectClass=*)` (RFC 2696), unbind. Everything else (writes, account reads, group
//! changes) still goes through `ldap3`.
//!
//! Pure and panic-free on any input: the `ldap` fuzz target checks that
//! [`scanned_from_entry`] gives exactly what `scanned_from_tag` gives from `ldap3`'s
//! decoding of the same bytes.

use zeroize::Zeroizing;

use crate::ldap_parse::{first_rdn, rdn_value};
use crate::model::TargetName;
use crate::record::{bounded_name, ScannedEntry};
use crate::target::ParseError;

/// A received LDAP message larger than this is refused (a directory entry holding
/// photos is a few hundred KiB; a claimed length in the gigabytes is a broken or hostile
/// server).
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// The OID of the simple paged results control (RFC 2696).
const PAGED_OID: &[u8] = b"1.2.840.113556.1.4.319";
/// The OID of the StartTLS extended operation (RFC 4511 4.14).
const STARTTLS_OID: &[u8] = b"1.3.6.1.4.1.1466.20037";

const BAD: ParseError = ParseError("LDAP message");
/// The universal class bits of an identifier octet.
const UNIVERSAL: u8 = 0x00;
use crate::ldap_parse::{OCTET_STRING, SEQUENCE, SET};
const BAD_ENTRY: ParseError = ParseError("LDAP search entry");

// --- decoding ----------------------------------------------------------------------

/// One BER element: its identifier octet's class and constructed bit, tag number, and
/// contents.
#[derive(Debug, Clone, Copy)]
struct Element<'a> {
    /// The class bits (`0x00` universal, `0x40` application, `0x80` context, `0xc0`
    /// private).
    class: u8,
    constructed: bool,
    number: u64,
    contents: &'a [u8],
}

impl Element<'_> {
    fn is(&self, class: u8, constructed: bool, number: u64) -> bool {
        self.class == class && self.constructed == constructed && self.number == number
    }
}

/// The header of the element at the start of `b`: (class, constructed, number, header
/// length, contents length). `Ok(None)`: `b` ends inside the header.
#[allow(clippy::type_complexity)] // a private tuple, named at its two call sites
fn header(b: &[u8]) -> Result<Option<(u8, bool, u64, usize, usize)>, ParseError> {
    let Some(&id) = b.first() else {
        return Ok(None);
    };
    let (class, constructed) = (id & 0xc0, id & 0x20 != 0);
    let mut at = 1;
    let mut number = u64::from(id & 0x1f);
    if number == 0x1f {
        // High tag number form: base-128 digits, the last without bit 8.
        number = 0;
        loop {
            let Some(&d) = b.get(at) else {
                return Ok(None);
            };
            at += 1;
            if at > 10 {
                return Err(BAD);
            }
            // A first digit of 0 is padding, which X.690 8.1.2.4.2 (c) forbids.
            if number == 0 && d == 0x80 {
                return Err(BAD);
            }
            number = (number << 7) | u64::from(d & 0x7f);
            if d & 0x80 == 0 {
                break;
            }
        }
        // The high form is for numbers of 31 and up only (X.690 8.1.2.4.1): a lower
        // number written so is another spelling of a low tag, which no reader may take
        // for it (`ldap3`'s does not).
        if number < 0x1f {
            return Err(BAD);
        }
    }
    let Some(&first) = b.get(at) else {
        return Ok(None);
    };
    at += 1;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        // Long form; 0x80 alone is the indefinite form, which LDAP does not allow.
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 8 {
            return Err(BAD);
        }
        let mut len: u64 = 0;
        for _ in 0..n {
            let Some(&d) = b.get(at) else {
                return Ok(None);
            };
            at += 1;
            len = (len << 8) | u64::from(d);
        }
        usize::try_from(len).map_err(|_| BAD)?
    };
    Ok(Some((class, constructed, number, at, len)))
}

/// The element at the start of `b` and what follows it.
fn element(b: &[u8]) -> Result<(Element<'_>, &[u8]), ParseError> {
    let (class, constructed, number, at, len) = header(b)?.ok_or(BAD)?;
    let end = at.checked_add(len).ok_or(BAD)?;
    let contents = b.get(at..end).ok_or(BAD)?;
    let rest = b.get(end..).ok_or(BAD)?;
    Ok((
        Element {
            class,
            constructed,
            number,
            contents,
        },
        rest,
    ))
}

/// The elements of a constructed element's contents, in order.
fn children(mut b: &[u8]) -> impl Iterator<Item = Result<Element<'_>, ParseError>> {
    std::iter::from_fn(move || {
        if b.is_empty() {
            return None;
        }
        Some(element(b).map(|(e, rest)| {
            b = rest;
            e
        }))
    })
}

/// How long the first whole message in `buf` is. `Ok(None)`: not all of it has arrived
/// yet. Refuses a message over [`MAX_MESSAGE_BYTES`] before it arrives.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, ParseError> {
    let Some((class, constructed, number, at, len)) = header(buf)? else {
        return Ok(None);
    };
    if !(class == 0 && constructed && number == 16) {
        return Err(BAD);
    }
    if len > MAX_MESSAGE_BYTES {
        return Err(ParseError("LDAP message (too large)"));
    }
    let total = at.checked_add(len).ok_or(BAD)?;
    Ok((buf.len() >= total).then_some(total))
}

/// What a received message holds, as far as the scan cares.
#[derive(Debug, PartialEq, Eq)]
pub enum Response<'a> {
    /// A `SearchResultEntry`: its contents (decode with [`scanned_from_entry`]).
    Entry(&'a [u8]),
    /// A `SearchResultDone`: the result code and, from the paged results control, the
    /// cookie for the next page (empty or absent: the last page).
    Done { rc: u32, cookie: Option<Vec<u8>> },
    /// A `BindResponse`.
    Bind { rc: u32 },
    /// An `ExtendedResponse` (StartTLS, or a notice of disconnection with id 0).
    Extended { rc: u32 },
    /// A search result reference or an intermediate response: not an entry of this
    /// directory, skipped (as `ldap3`'s `EntriesOnly` does).
    Skipped,
}

/// A whole received message: its id and what it holds.
pub fn parse_message(msg: &[u8]) -> Result<(i64, Response<'_>), ParseError> {
    let (outer, rest) = element(msg)?;
    if !rest.is_empty() || !outer.is(0, true, 16) {
        return Err(BAD);
    }
    let mut parts = children(outer.contents);
    let id = parts.next().ok_or(BAD)??;
    if !id.is(0, false, 2) {
        return Err(BAD);
    }
    let id = integer(id.contents)?;
    let op = parts.next().ok_or(BAD)??;
    let controls = parts.next().transpose()?;
    let resp = match (op.class, op.constructed, op.number) {
        (0x40, true, 4) => Response::Entry(op.contents),
        (0x40, true, 5) => {
            let rc = result_code(op.contents)?;
            let cookie = match controls {
                Some(c) if c.is(0x80, true, 0) => paged_cookie(c.contents)?,
                _ => None,
            };
            Response::Done { rc, cookie }
        }
        (0x40, true, 1) => Response::Bind {
            rc: result_code(op.contents)?,
        },
        (0x40, true, 24) => Response::Extended {
            rc: result_code(op.contents)?,
        },
        (0x40, true, 19) | (0x40, true, 25) => Response::Skipped,
        _ => return Err(BAD),
    };
    Ok((id, resp))
}

/// A BER INTEGER that fits an `i64`.
fn integer(b: &[u8]) -> Result<i64, ParseError> {
    if b.is_empty() || b.len() > 8 {
        return Err(BAD);
    }
    let mut v: i64 = if b.first().is_some_and(|&d| d & 0x80 != 0) {
        -1
    } else {
        0
    };
    for &d in b {
        v = (v << 8) | i64::from(d);
    }
    Ok(v)
}

/// The result code of an `LDAPResult` (the first element of its contents).
fn result_code(contents: &[u8]) -> Result<u32, ParseError> {
    let rc = children(contents).next().ok_or(BAD)??;
    if !rc.is(0, false, 10) {
        return Err(BAD);
    }
    u32::try_from(integer(rc.contents)?).map_err(|_| BAD)
}

/// The cookie of the paged results control among `controls`, if there is one.
fn paged_cookie(controls: &[u8]) -> Result<Option<Vec<u8>>, ParseError> {
    for c in children(controls) {
        let c = c?;
        if !c.is(0, true, 16) {
            return Err(BAD);
        }
        let mut parts = children(c.contents);
        let oid = parts.next().ok_or(BAD)??;
        if oid.contents != PAGED_OID {
            continue;
        }
        // criticality BOOLEAN DEFAULT FALSE, then controlValue OCTET STRING.
        let value = parts
            .filter_map(Result::ok)
            .find(|e| e.is(0, false, 4))
            .ok_or(BAD)?;
        let (seq, _) = element(value.contents)?;
        let mut inner = children(seq.contents);
        let _size = inner.next().ok_or(BAD)??;
        let cookie = inner.next().ok_or(BAD)??;
        if !cookie.is(0, false, 4) {
            return Err(BAD);
        }
        return Ok(Some(cookie.contents.to_vec()));
    }
    Ok(None)
}

/// The contents of the `SearchResultEntry` (`[APPLICATION 4]`) at the start of `b`
/// (what follows it is ignored), for [`scanned_from_entry`].
pub fn search_entry_contents(b: &[u8]) -> Option<&[u8]> {
    let (e, _) = element(b).ok()?;
    e.is(0x40, true, 4).then_some(e.contents)
}

/// Text of a received value: borrowed from the received bytes when they are UTF-8,
/// else with the invalid bytes replaced (an owned copy, wiped on drop).
pub enum Text<'a> {
    Borrowed(&'a str),
    Owned(Zeroizing<String>),
}

impl<'a> Text<'a> {
    fn of(b: &'a [u8]) -> Self {
        match std::str::from_utf8(b) {
            Ok(s) => Text::Borrowed(s),
            Err(_) => Text::Owned(Zeroizing::new(String::from_utf8_lossy(b).into_owned())),
        }
    }

    /// [`Text::of`] for `b`, a part of `whole` whose text `whole_text` is, when
    /// `whole` is UTF-8: a slice of it (checked once for all its parts) when `b` starts
    /// and ends at character boundaries, which gives the same text without checking `b`
    /// again; otherwise checked on its own.
    fn within(b: &'a [u8], whole: &'a [u8], whole_text: Option<&'a str>) -> Self {
        let at = (b.as_ptr() as usize).wrapping_sub(whole.as_ptr() as usize);
        match whole_text.and_then(|t| t.get(at..at.checked_add(b.len())?)) {
            Some(s) if s.as_bytes().as_ptr() == b.as_ptr() => Text::Borrowed(s),
            _ => Text::of(b),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Text::Borrowed(s) => s,
            Text::Owned(s) => s.as_str(),
        }
    }

    /// The last [`crate::record::MAX_ATTRIBUTE_NAME_BYTES`] bytes ([`bounded_name`]).
    fn bounded(self) -> Self {
        match self {
            Text::Borrowed(s) => Text::Borrowed(bounded_name(s)),
            Text::Owned(s) => Text::Owned(Zeroizing::new(bounded_name(&s).to_string())),
        }
    }

    /// Another of the same (a copy only if owned).
    fn dup(&self) -> Self {
        match self {
            Text::Borrowed(s) => Text::Borrowed(s),
            Text::Owned(s) => Text::Owned(Zeroizing::new(s.to_string())),
        }
    }
}

/// A `SearchResultEntry` decoded without copying what is UTF-8: the DN, the value of
/// `entryUUID` (the locator) and the values to scan.
pub struct EntryView<'a> {
    pub uuid: Option<Text<'a>>,
    pub dn: Text<'a>,
    /// The value of the DN's first RDN, unescaped ([`rdn_text`]).
    rdn: Option<Text<'a>>,
    /// (name, value) of every attribute value but `entryUUID`, attributes sorted by
    /// name, repeated names in the order received.
    attributes: Vec<(Text<'a>, Text<'a>)>,
}

impl EntryView<'_> {
    /// The values to scan, as [`ScannedEntry::values`] holds them: the DN (`dn`), its
    /// RDN's value (`dn.rdn`), then the attributes.
    pub fn values(&self) -> impl Iterator<Item = (&str, &str)> {
        std::iter::once(("dn", self.dn.as_str()))
            .chain(self.rdn.iter().map(|r| ("dn.rdn", r.as_str())))
            .chain(
                self.attributes
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str())),
            )
    }

    /// Where the entry is, holding no attribute value: `entryUUID=…`, or its number in
    /// the read (`n` from 0).
    pub fn locator(&self, n: usize) -> String {
        match &self.uuid {
            Some(u) => format!("entryUUID={}", u.as_str()),
            None => format!("entry #{}", n + 1),
        }
    }
}

/// Checks that a `SearchResultEntry`'s contents are well formed, copying nothing: its
/// DN's bytes, its attribute list's contents and how many values it holds.
pub fn check_entry(contents: &[u8]) -> Result<(&[u8], &[u8], usize), ParseError> {
    let bad = |_| BAD_ENTRY;
    let mut parts = children(contents);
    let dn = parts.next().ok_or(BAD_ENTRY)?.map_err(bad)?;
    let list = parts.next().ok_or(BAD_ENTRY)?.map_err(bad)?;
    // Every tag as RFC 4511 4.5.2 has it, as `ldap_parse::parse_search_entry` checks
    // it: a high-tag-number identifier (which `ldap3` reads differently) is refused
    // wherever a value could be read from it.
    if !dn.is(UNIVERSAL, false, OCTET_STRING) || !list.is(UNIVERSAL, true, SEQUENCE) {
        return Err(BAD_ENTRY);
    }
    let mut count = 0usize;
    for pa in children(list.contents) {
        let pa = pa.map_err(bad)?;
        if !pa.is(UNIVERSAL, true, SEQUENCE) {
            return Err(BAD_ENTRY);
        }
        let mut p = children(pa.contents);
        let name = p.next().ok_or(BAD_ENTRY)?.map_err(bad)?;
        let vals = p.next().ok_or(BAD_ENTRY)?.map_err(bad)?;
        if !name.is(UNIVERSAL, false, OCTET_STRING) || !vals.is(UNIVERSAL, true, SET) {
            return Err(BAD_ENTRY);
        }
        for v in children(vals.contents) {
            if !v.map_err(bad)?.is(UNIVERSAL, false, OCTET_STRING) {
                return Err(BAD_ENTRY);
            }
            count += 1;
        }
    }
    Ok((dn.contents, list.contents, count))
}

/// The DN of a `SearchResultEntry` checked by [`check_entry`].
pub fn entry_dn(contents: &[u8]) -> Text<'_> {
    let dn = children(contents).next().and_then(Result::ok);
    Text::of(dn.map_or(&[][..], |d| d.contents))
}

/// Decodes a `SearchResultEntry`'s contents ([`search_entry_contents`]): the same
/// values, in the same order, as `scanned_from_tag` makes from `ldap3`'s decoding (DN,
/// its RDN value, then the attributes sorted by name, repeated names in the order
/// received; values that are not UTF-8 are replaced; `entryUUID` gives the locator and
/// is not scanned). Everything is checked before anything is copied.
pub fn view_entry(contents: &[u8]) -> Result<EntryView<'_>, ParseError> {
    let (dn, list, count) = check_entry(contents)?;
    Ok(view_parts(dn, list, count))
}

/// [`view_entry`] for contents that [`check_entry`] accepted before (an
/// [`crate::scan_page::LdapEntries`] page): not walked again. Only for such contents:
/// a malformed part would be skipped, not refused.
/// `count`: the number of values [`check_entry`] counted (the view's capacity).
pub(crate) fn view_checked(contents: &[u8], count: usize) -> Result<EntryView<'_>, ParseError> {
    let mut parts = children(contents).flatten();
    match (parts.next(), parts.next()) {
        (Some(dn), Some(list)) => Ok(view_parts(dn.contents, list.contents, count)),
        _ => Err(BAD_ENTRY),
    }
}

/// The value of the first RDN of `dn`, unescaped (what [`rdn_value`] gives): a slice of
/// the DN's text when it has no escape, without a copy.
fn rdn_text<'a>(dn: &Text<'a>) -> Option<Text<'a>> {
    let owned = |rdn: &str| rdn_value(rdn).map(|v| Text::Owned(Zeroizing::new(v)));
    match dn {
        Text::Borrowed(s) => {
            let rdn = first_rdn(s);
            if rdn.contains('\\') {
                owned(rdn)
            } else {
                rdn.split_once('=').map(|(_, v)| Text::Borrowed(v))
            }
        }
        Text::Owned(s) => owned(first_rdn(s)),
    }
}

/// An entry's view from its DN and attribute list (checked), `count` values expected.
fn view_parts<'a>(dn: &'a [u8], list: &'a [u8], count: usize) -> EntryView<'a> {
    // (name, values container) per attribute: checked before.
    let attrs = children(list).flatten().filter_map(|pa| {
        let mut p = children(pa.contents).flatten();
        Some((p.next()?.contents, p.next()?.contents))
    });
    // By name as `String`s compare (byte order of the UTF-8 text; stable).
    // The attribute list is UTF-8 as a whole when every value is and every length is
    // short (under 128 bytes: one ASCII byte), as in most entries: then it is checked
    // once, and each part is a slice of it.
    let text = std::str::from_utf8(list).ok();
    let of = |b: &'a [u8]| Text::within(b, list, text);
    let mut named: Vec<(Text<'_>, &[u8])> = attrs.map(|(n, vals)| (of(n), vals)).collect();
    named.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));

    // The first attribute so named, in that order; no value: no locator from it.
    let uuid = named
        .iter()
        .find(|(n, _)| n.as_str().eq_ignore_ascii_case("entryUUID"))
        .and_then(|(_, vals)| children(vals).next())
        .and_then(Result::ok)
        .map(|v| of(v.contents));
    let dn = Text::of(dn);
    let rdn = rdn_text(&dn);
    let mut attributes = Vec::with_capacity(count);
    for (name, vals) in named {
        if name.as_str().eq_ignore_ascii_case("entryUUID") {
            continue;
        }
        let name = name.bounded();
        for v in children(vals).flatten() {
            attributes.push((name.dup(), of(v.contents)));
        }
    }
    EntryView {
        uuid,
        dn,
        rdn,
        attributes,
    }
}

/// A `SearchResultEntry`'s contents straight into a scan entry ([`view_entry`]), `n`
/// its number in the read.
pub fn scanned_from_entry(
    target: &TargetName,
    contents: &[u8],
    n: usize,
) -> Result<ScannedEntry, ParseError> {
    let view = view_entry(contents)?;
    let mut s = ScannedEntry::new(target.clone(), view.locator(n));
    s.label_attribute = Some("dn".to_string());
    s.values = view
        .values()
        .map(|(n, v)| (n.to_string(), Zeroizing::new(v.to_string())))
        .collect();
    Ok(s)
}

// --- encoding ----------------------------------------------------------------------

/// Appends one element with definite length.
fn put(out: &mut Vec<u8>, id: u8, contents: &[u8]) {
    out.push(id);
    let len = contents.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = (len as u64).to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        let used = bytes.get(skip..).unwrap_or(&[]);
        out.push(0x80 | used.len() as u8);
        out.extend_from_slice(used);
    }
    out.extend_from_slice(contents);
}

/// Appends an element whose contents `f` writes.
fn nest(out: &mut Vec<u8>, id: u8, f: impl FnOnce(&mut Vec<u8>)) {
    let mut inner = Vec::new();
    f(&mut inner);
    put(out, id, &inner);
}

fn put_int(out: &mut Vec<u8>, id: u8, v: i64) {
    let bytes = v.to_be_bytes();
    // The shortest two's complement form.
    let mut skip = 0;
    while skip < 7 {
        let (Some(&a), Some(&b)) = (bytes.get(skip), bytes.get(skip + 1)) else {
            break;
        };
        if (a == 0 && b & 0x80 == 0) || (a == 0xff && b & 0x80 != 0) {
            skip += 1;
        } else {
            break;
        }
    }
    put(out, id, bytes.get(skip..).unwrap_or(&[]));
}

fn message(id: i64, op: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::new();
    nest(&mut out, 0x30, |m| {
        put_int(m, 0x02, id);
        op(m);
    });
    out
}

/// A simple `BindRequest` (version 3). The password is in the returned buffer, which
/// wipes itself.
pub fn bind_request(id: i64, dn: &str, password: &str) -> Zeroizing<Vec<u8>> {
    // Sized up front so that no reallocation leaves a copy of the password behind.
    let room = dn.len() + password.len() + 64;
    let mut inner = Zeroizing::new(Vec::with_capacity(room));
    put_int(&mut inner, 0x02, 3);
    put(&mut inner, 0x04, dn.as_bytes());
    put(&mut inner, 0x80, password.as_bytes());
    let mut body = Zeroizing::new(Vec::with_capacity(room));
    put_int(&mut body, 0x02, id);
    put(&mut body, 0x60, &inner);
    let mut out = Zeroizing::new(Vec::with_capacity(room));
    put(&mut out, 0x30, &body);
    out
}

/// The StartTLS `ExtendedRequest`.
pub fn starttls_request(id: i64) -> Vec<u8> {
    message(id, |m| nest(m, 0x77, |e| put(e, 0x80, STARTTLS_OID)))
}

/// A subtree `SearchRequest` for `(objectClass=*)` under `base`, all user attributes
/// and `entryUUID`, with the paged results control (page size, cookie of the previous
/// page or empty).
pub fn search_request(id: i64, base: &str, page_size: i32, cookie: &[u8]) -> Vec<u8> {
    message(id, |m| {
        nest(m, 0x63, |s| {
            put(s, 0x04, base.as_bytes());
            put_int(s, 0x0a, 2); // wholeSubtree
            put_int(s, 0x0a, 0); // neverDerefAliases
            put_int(s, 0x02, 0); // no size limit
            put_int(s, 0x02, 0); // no time limit
            put(s, 0x01, &[0x00]); // typesOnly FALSE
            put(s, 0x87, b"objectClass"); // present filter
            nest(s, 0x30, |a| {
                put(a, 0x04, b"*");
                put(a, 0x04, b"entryUUID");
            });
        });
        nest(m, 0xa0, |cs| {
            nest(cs, 0x30, |c| {
                put(c, 0x04, PAGED_OID);
                nest(c, 0x04, |v| {
                    nest(v, 0x30, |p| {
                        put_int(p, 0x02, i64::from(page_size.max(1)));
                        put(p, 0x04, cookie);
                    });
                });
            });
        });
    })
}

/// An `UnbindRequest`.
pub fn unbind_request(id: i64) -> Vec<u8> {
    message(id, |m| put(m, 0x42, &[]))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    proptest::proptest! {
        /// The RDN value of a view is what `rdn_value` gives, borrowed or not.
        #[test]
        fn the_view_rdn_is_the_unescaped_rdn(
            dn in "[a-z]{1,3}=([a-zé ,;+=.-]|\\\\[0-9a-f]{2}|\\\\[,=+ ]){0,12}(,[a-z]{1,3}=[a-z]{1,5}){0,3}|[a-z é]{0,8}",
        ) {
            let expected = rdn_value(first_rdn(&dn));
            let got = rdn_text(&Text::Borrowed(&dn)).map(|t| t.as_str().to_string());
            proptest::prop_assert_eq!(&got, &expected);
            let owned = Text::Owned(Zeroizing::new(dn.clone()));
            let got = rdn_text(&owned).map(|t| t.as_str().to_string());
            proptest::prop_assert_eq!(got, expected);
        }
    }

    fn done(id: i64, rc: i64, cookie: Option<&[u8]>) -> Vec<u8> {
        message(id, |m| {
            nest(m, 0x65, |r| {
                put_int(r, 0x0a, rc);
                put(r, 0x04, b"");
                put(r, 0x04, b"");
            });
            if let Some(c) = cookie {
                nest(m, 0xa0, |cs| {
                    nest(cs, 0x30, |ctl| {
                        put(ctl, 0x04, PAGED_OID);
                        nest(ctl, 0x04, |v| {
                            nest(v, 0x30, |p| {
                                put_int(p, 0x02, 0);
                                put(p, 0x04, c);
                            })
                        });
                    })
                });
            }
        })
    }

    #[test]
    fn integers_round_trip() {
        for v in [
            0,
            1,
            127,
            128,
            255,
            256,
            -1,
            -128,
            -129,
            i64::MAX,
            i64::MIN,
            500,
        ] {
            let mut out = Vec::new();
            put_int(&mut out, 0x02, v);
            let (e, rest) = element(&out).unwrap();
            assert!(rest.is_empty());
            assert_eq!(integer(e.contents).unwrap(), v, "{out:02x?}");
        }
    }

    #[test]
    fn long_lengths_frame() {
        let big = vec![b'x'; 70_000];
        let msg = message(7, |m| put(m, 0x04, &big));
        assert_eq!(frame_len(&msg).unwrap(), Some(msg.len()));
        for cut in [0, 1, 2, 3, 4, 100, msg.len() - 1] {
            assert_eq!(frame_len(&msg[..cut]).unwrap(), None, "cut {cut}");
        }
        // Indefinite length, a wrong outer tag, a claimed length past the limit.
        assert!(frame_len(&[0x30, 0x80]).is_err());
        assert!(frame_len(&[0x31, 0x00]).is_err());
        assert!(frame_len(&[0x30, 0x84, 0x7f, 0xff, 0xff, 0xff]).is_err());
    }

    #[test]
    fn results_and_cookies() {
        let d = done(3, 0, Some(b"abc"));
        assert_eq!(
            parse_message(&d).unwrap(),
            (
                3,
                Response::Done {
                    rc: 0,
                    cookie: Some(b"abc".to_vec())
                }
            )
        );
        let d = done(4, 32, None);
        assert_eq!(
            parse_message(&d).unwrap(),
            (
                4,
                Response::Done {
                    rc: 32,
                    cookie: None
                }
            )
        );
        let b = message(1, |m| {
            nest(m, 0x61, |r| {
                put_int(r, 0x0a, 49);
                put(r, 0x04, b"");
                put(r, 0x04, b"");
            })
        });
        assert_eq!(parse_message(&b).unwrap(), (1, Response::Bind { rc: 49 }));
        // Trailing bytes, a truncated message, an unknown operation.
        let mut extra = b.clone();
        extra.push(0);
        assert!(parse_message(&extra).is_err());
        assert!(parse_message(&b[..b.len() - 1]).is_err());
        assert!(parse_message(&message(1, |m| put(m, 0x4a, b""))).is_err());
    }

    #[test]
    fn requests_are_well_formed() {
        let s = search_request(2, "ou=people,dc=x", 500, b"");
        assert_eq!(frame_len(&s).unwrap(), Some(s.len()));
        let (outer, _) = element(&s).unwrap();
        let parts: Vec<_> = children(outer.contents).map(Result::unwrap).collect();
        assert_eq!(parts.len(), 3);
        assert!(parts[1].is(0x40, true, 3));
        assert!(parts[2].is(0x80, true, 0));
        let b = bind_request(1, "cn=admin", "secret");
        let (outer, _) = element(&b).unwrap();
        let parts: Vec<_> = children(outer.contents).map(Result::unwrap).collect();
        assert!(parts[1].is(0x40, true, 0));
        assert_eq!(
            unbind_request(9),
            vec![0x30, 0x05, 0x02, 0x01, 0x09, 0x42, 0x00]
        );
        assert!(frame_len(&starttls_request(1)).unwrap().is_some());
    }
}
