//! Regression tests for what the fuzz targets (fuzz/fuzz_targets/{scim,ldap,oneroster,
//! leak_scan}.rs) found in the parsing of what targets return and in the leak scan. Each
//! input here made a fuzz target run out of memory or time, or fail one of its checks;
//! see docs/RELIABILITY.md, "Fuzzing".
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use crate::common;

use std::time::{Duration, Instant};

use common::*;
use fiktiv_provisioning::ldap_parse::{
    parse_search_entry, parse_search_entry_ber, scanned_from_ldap, scanned_from_tag,
};
use fiktiv_provisioning::ldap_wire::{scanned_from_entry, search_entry_contents};
use fiktiv_provisioning::oneroster::{
    parse_csv, scan_csv_file, OneRosterConfig, OneRosterTarget, SchoolYear,
};
use fiktiv_provisioning::scim_parse::{attributes, parse_json, scanned_from_scim};
use fiktiv_provisioning::{scan, GroupId, LdapEntries, PersonId, Rule, ScannedEntry, Target};
use ldap3::asn1::parse_tag;

/// What a scan entry keeps of attribute names, at most (the tail of a longer name).
const NAME_BOUND: usize = 256;

/// A generous bound on work that is linear: quadratic work on these inputs takes
/// minutes to hours, or runs out of memory first.
const LINEAR: Duration = Duration::from_secs(20);

fn longest_name(e: &ScannedEntry) -> usize {
    e.values.iter().map(|(n, _)| n.len()).max().unwrap_or(0)
}

// --- BER, as an LDAP server sends a SearchResultEntry -------------------------------

fn ber_len(n: usize) -> Vec<u8> {
    if n < 128 {
        return vec![n as u8];
    }
    let b: Vec<u8> = n
        .to_be_bytes()
        .iter()
        .copied()
        .skip_while(|&x| x == 0)
        .collect();
    let mut out = vec![0x80 | b.len() as u8];
    out.extend(b);
    out
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend(ber_len(content.len()));
    out.extend_from_slice(content);
    out
}

fn entry_ber(dn: &[u8], attrs: &[(Vec<u8>, Vec<Vec<u8>>)]) -> Vec<u8> {
    let mut list = Vec::new();
    for (name, vals) in attrs {
        let set: Vec<u8> = vals.iter().flat_map(|v| tlv(0x04, v)).collect();
        let mut pa = tlv(0x04, name);
        pa.extend(tlv(0x31, &set));
        list.extend(tlv(0x30, &pa));
    }
    let mut body = tlv(0x04, dn);
    body.extend(tlv(0x30, &list));
    tlv(0x64, &body)
}

/// fuzz target `scim`: a 100 kB key over an array of 20 000 numbers made one attribute
/// path per element (2 GB, out of memory). The path is kept to its last 256 bytes.
#[test]
fn scim_long_attribute_path_is_bounded() {
    let body = format!(
        r#"{{"id": "1", "{}": [{}0]}}"#,
        "k".repeat(100_000),
        "0,".repeat(20_000)
    );
    let v = parse_json(body.as_bytes()).unwrap();
    let e = scanned_from_scim(&target("scim"), "Users", &v, 0);
    assert_eq!(e.values.len(), 20_002);
    assert!(longest_name(&e) <= NAME_BOUND, "{}", longest_name(&e));
    let attrs = attributes(&v);
    assert!(attrs.keys().all(|k| k.len() <= NAME_BOUND));
    assert_eq!(attrs.values().map(Vec::len).sum::<usize>(), 20_002);
}

/// fuzz target `ldap`: a 100 kB attribute name with 20 000 values was copied once per
/// value into the scan entry (out of memory).
#[test]
fn ldap_long_attribute_name_is_bounded() {
    let ber = entry_ber(
        b"uid=x,ou=people,dc=example",
        &[(vec![b'a'; 100_000], vec![b"v".to_vec(); 20_000])],
    );
    let e = parse_search_entry_ber(&ber).unwrap();
    let s = scanned_from_ldap(&target("ldap"), &e, 0);
    assert_eq!(s.values.len(), 20_002);
    assert!(longest_name(&s) <= NAME_BOUND, "{}", longest_name(&s));
}

/// Everything a scan entry holds, values as plain text.
fn flat(e: &ScannedEntry) -> (String, Option<String>, Vec<(String, String)>) {
    (
        e.locator.clone(),
        e.label_attribute.clone(),
        e.values
            .iter()
            .map(|(n, v)| (n.clone(), v.to_string()))
            .collect(),
    )
}

/// fuzz target `ldap` (artifact crash-78325bdf…): the leak scan's direct reader
/// `scanned_from_tag` (what `read_everything` uses) kept attribute names whole, while
/// `scanned_from_ldap` keeps their last 256 bytes. Here a 249-byte name whose bytes that
/// are not UTF-8 become U+FFFD (3 bytes each) grows past the bound, and the two readers
/// disagreed. On the real leak-scan path the name bound was missing altogether.
#[test]
fn ldap_direct_reader_bounds_names_like_the_entry_reader() {
    let mut name = b"xxxxx".to_vec();
    name.push(0x83);
    name.extend([0x87; 7]);
    name.extend([b'x'; 227]);
    name.extend(b"givenName");
    let ber = entry_ber(
        b"uid=x,ou=people,dc=example",
        &[
            (name, vec![b"Maja".to_vec(), b"Lind".to_vec()]),
            (b"entryUUID".to_vec(), vec![b"1234".to_vec()]),
        ],
    );
    assert_eq!(ber.len(), 327, "not the fuzzer's input");
    let (_, tag) = parse_tag(&ber).unwrap();
    let old = scanned_from_ldap(&target("ldap"), &parse_search_entry(&tag).unwrap(), 3);
    let new = scanned_from_tag(&target("ldap"), tag, 3).unwrap();
    assert_eq!(flat(&old), flat(&new));
    assert_eq!(new.locator, "entryUUID=1234");
    assert!(longest_name(&new) <= NAME_BOUND, "{}", longest_name(&new));
    assert!(new.values.iter().any(|(n, _)| n.ends_with("givenName")));
}

/// The same bound on the scale of `ldap_long_attribute_name_is_bounded`, through the
/// direct reader: a 100 kB name over 20 000 values is not copied whole per value.
#[test]
fn ldap_direct_reader_long_attribute_name_is_bounded() {
    let ber = entry_ber(
        b"uid=x,ou=people,dc=example",
        &[(vec![b'a'; 100_000], vec![b"v".to_vec(); 20_000])],
    );
    let (_, tag) = parse_tag(&ber).unwrap();
    let s = scanned_from_tag(&target("ldap"), tag, 0).unwrap();
    assert_eq!(s.values.len(), 20_002);
    assert!(longest_name(&s) <= NAME_BOUND, "{}", longest_name(&s));
}

/// fuzz target `oneroster`: a 100 kB header cell over 20 000 one-cell rows made the
/// column name once per row (out of memory).
#[test]
fn csv_long_header_is_bounded() {
    let mut csv = "h".repeat(100_000);
    csv.push_str("\r\n");
    csv.push_str(&"x\r\n".repeat(20_000));
    let mut out = Vec::new();
    scan_csv_file(&target("oneroster"), "other.csv", csv.as_bytes(), &mut out).unwrap();
    assert_eq!(out.len(), 20_001);
    assert!(out.iter().all(|e| longest_name(e) <= NAME_BOUND));
}

/// The table reader (what the target reads back) refuses a header cell longer than any
/// OneRoster column instead: each row copies the column names.
#[test]
fn csv_table_reader_refuses_an_absurd_header() {
    let mut csv = "h".repeat(100_000);
    csv.push_str("\r\n");
    csv.push_str(&"x\r\n".repeat(20_000));
    assert!(parse_csv(csv.as_bytes()).is_err());
    assert_eq!(
        parse_csv(b"sourcedId,givenName\r\nu1,G\r\n").unwrap().len(),
        1
    );
}

/// The tail of a long name is what is kept: a given-name-like attribute is still seen as
/// one, so the real name under it is still found.
#[test]
fn long_attribute_names_keep_their_tail() {
    let key = key();
    let a = astrid();
    let index = index_map(&key, &[&a]);
    let body = format!(
        r#"{{"id": "1", "{}": {{"givenName": "{}", "familyName": "{}"}}}}"#,
        "x".repeat(5_000),
        a.first,
        a.last
    );
    let v = parse_json(body.as_bytes()).unwrap();
    let e = scanned_from_scim(&target("scim"), "Users", &v, 0);
    let found = scan(&[e], &key, &index);
    assert!(found.iter().any(|f| f.rule == Rule::FullName), "{found:?}");
}

/// fuzz target `leak_scan`: an entry with 3 000 given-name-like and 3 000
/// family-name-like values made every given value meet every family value (18 million
/// pairs; over two minutes per entry). Past a bound the entry is reported unverifiable.
#[test]
fn many_given_and_family_values_are_unverifiable_not_a_hang() {
    let key = key();
    let a = astrid();
    let index = index_map(&key, &[&a]);
    let mut e = ScannedEntry::new(target("ldap"), "entry #1".into());
    for i in 0..3_000 {
        e.push("gn", &format!("g{i}"));
    }
    for i in 0..3_000 {
        e.push("sn", &format!("f{i}"));
    }
    let started = Instant::now();
    let found = scan(&[e], &key, &index);
    assert!(started.elapsed() < LINEAR, "{:?}", started.elapsed());
    assert!(
        found.iter().any(|f| f.rule == Rule::Unverifiable),
        "{found:?}"
    );
}

/// A few given and family values are still paired (the bound is far above real entries).
#[test]
fn a_few_given_and_family_values_are_still_paired() {
    let key = key();
    let a = astrid();
    let index = index_map(&key, &[&a]);
    let mut e = ScannedEntry::new(target("ldap"), "entry #1".into());
    for g in ["Maja", "Ella", a.first, "Kim"] {
        e.push("givenName", g);
    }
    for f in ["Lind", a.last, "Berg"] {
        e.push("sn", f);
    }
    let found = scan(&[e], &key, &index);
    assert!(found.iter().any(|f| f.rule == Rule::FullName), "{found:?}");
    assert!(
        !found.iter().any(|f| f.rule == Rule::Unverifiable),
        "{found:?}"
    );
}

fn year() -> SchoolYear {
    SchoolYear {
        id: GroupId::new("ht2025-vt2026").unwrap(),
        title: "2025/2026".into(),
        start: day(2025, 8, 15),
        end: day(2026, 6, 15),
        year: 2026,
    }
}

/// fuzz target `oneroster`: reading the managed accounts back joined every user with
/// every row of roles.csv and enrollments.csv (20 000 users: 800 million comparisons).
#[tokio::test]
async fn oneroster_read_back_is_linear() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("roster");
    std::fs::create_dir(&folder).unwrap();
    let n = 20_000;
    let ids: Vec<String> = (0..n).map(|_| PersonId::new().to_string()).collect();
    let mut users = String::from("sourcedId,enabledUser,givenName,familyName\r\n");
    let mut roles = String::from("sourcedId,userSourcedId,orgSourcedId\r\n");
    let mut enrollments = String::from("sourcedId,userSourcedId,classSourcedId\r\n");
    for (i, id) in ids.iter().enumerate() {
        users.push_str(&format!("{id},true,G{i},F{i}\r\n"));
        roles.push_str(&format!("r{i},{id},skola-1\r\n"));
        enrollments.push_str(&format!("e{i},{id},skola-1-5a\r\n"));
    }
    std::fs::write(folder.join("users.csv"), users).unwrap();
    std::fs::write(folder.join("roles.csv"), roles).unwrap();
    std::fs::write(folder.join("enrollments.csv"), enrollments).unwrap();
    std::fs::write(
        folder.join("orgs.csv"),
        "sourcedId,name\r\nskola-1,Norrskolan\r\n",
    )
    .unwrap();
    std::fs::write(
        folder.join("classes.csv"),
        "sourcedId,title\r\nskola-1-5a,Klass 5A\r\n",
    )
    .unwrap();
    let t =
        OneRosterTarget::new(OneRosterConfig::new(target("oneroster"), folder, year()).unwrap());
    let started = Instant::now();
    let managed = t.read_managed(at(2026, 1, 15)).await.unwrap();
    assert!(started.elapsed() < LINEAR, "{:?}", started.elapsed());
    assert_eq!(managed.len(), n);
    let one = managed.iter().find(|m| m.entry_id == ids[7]).unwrap();
    assert_eq!(one.given_name.as_deref(), Some("G7"));
    assert_eq!(one.groups.len(), 2, "{:?}", one.groups);
    assert_eq!(one.attributes["roles.sourcedId"], vec!["r7".to_string()]);
    assert_eq!(
        one.attributes["enrollments.sourcedId"],
        vec!["e7".to_string()]
    );
    assert_eq!(one.attributes["orgs.name"], vec!["Norrskolan".to_string()]);
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// fuzz target `ldap` (10-minute run, ~105 000 inputs): the leak scan's own reader
/// (`ldap_wire::scanned_from_entry`) and the reference decoding (`scanned_from_tag`, over
/// `ldap3`'s reader) both accepted this entry and read different values. Its value set's
/// identifier is `0xff 0x06`: by BER (X.690 8.1.2.4) a high tag number (private 6,
/// empty), which Fiktiv's reader took; `ldap3`'s reader does not know the high form and
/// read tag 31 of length 6 (three empty values). Neither is a `SET`, so by RFC 4511
/// 4.5.2 the entry is malformed: both readers now check every tag and refuse it, and the
/// scan reports the target unreadable rather than reading less.
#[test]
fn ldap_high_tag_number_value_set_is_refused_by_both_readers() {
    let ber = unhex(
        "6435041c7569643d61623243625c2b632c6f752970616f706c652c2064633d783015301304096a70feffffffffffffff06000000000000",
    );
    assert_eq!(ber.len(), 55, "not the fuzzer's input");
    let body = search_entry_contents(&ber).expect("a SearchResultEntry");
    assert!(scanned_from_entry(&target("ldap"), body, 3).is_err());
    let (_, tag) = parse_tag(&ber).unwrap();
    assert!(parse_search_entry(&tag).is_err());
    assert!(scanned_from_tag(&target("ldap"), tag, 3).is_err());
    let mut page = LdapEntries::new(target("ldap"));
    assert!(
        page.push(body, 3).is_err(),
        "a scan page kept a malformed entry"
    );
}

/// The same entry written as RFC 4511 has it (a `SET` of `OCTET STRING`s, the DN's
/// escaped `+` kept): both readers accept it and read exactly the same values.
#[test]
fn ldap_escaped_plus_entry_reads_the_same_in_both_readers() {
    let ber = entry_ber(
        b"uid=ab2Cb\\+c,ou)paople, dc=x",
        &[(
            b"jp\xfe\xff\xff".to_vec(),
            vec![b"".to_vec(), b"Maja".to_vec()],
        )],
    );
    let body = search_entry_contents(&ber).unwrap();
    let wire = scanned_from_entry(&target("ldap"), body, 3).unwrap();
    let (_, tag) = parse_tag(&ber).unwrap();
    let reference = scanned_from_tag(&target("ldap"), tag, 3).unwrap();
    assert_eq!(flat(&wire), flat(&reference));
    assert!(wire
        .values
        .iter()
        .any(|(n, v)| n == "dn.rdn" && **v == *"ab2Cb+c"));
}

/// Every other place a tag stands in an entry: a wrong universal tag, another class, or
/// a low tag number written in the high form is refused by both readers alike.
#[test]
fn ldap_wrong_tags_are_refused_by_both_readers() {
    let good = entry_ber(b"uid=x,dc=y", &[(b"cn".to_vec(), vec![b"Maja".to_vec()])]);
    // Offsets of the identifiers: DN, attribute list, partial attribute, type, set, value.
    let ids = [2usize, 14, 16, 18, 22, 24];
    for &at in &ids {
        assert!(
            matches!(good[at], 0x04 | 0x30 | 0x31),
            "offset {at}: {:#x}",
            good[at]
        );
        for bad in [0x05u8, 0x24, 0x84, 0xa4, 0x31, 0x30, 0x04] {
            if bad == good[at] {
                continue;
            }
            let mut b = good.clone();
            b[at] = bad;
            let body = search_entry_contents(&b).unwrap();
            let wire = scanned_from_entry(&target("ldap"), body, 0);
            let reference = parse_tag(&b)
                .ok()
                .and_then(|(_, t)| scanned_from_tag(&target("ldap"), t, 0).ok());
            assert!(
                wire.is_err(),
                "offset {at} tag {bad:#x} accepted by the scan's reader"
            );
            assert!(
                reference.is_none(),
                "offset {at} tag {bad:#x} accepted by the reference"
            );
        }
    }
    // [APPLICATION 4] in the high form (0x7f 0x04) is not a SearchResultEntry.
    let mut high = vec![0x7f, 0x04];
    high.extend_from_slice(&good[1..]);
    assert!(search_entry_contents(&high).is_none());
}

/// fuzz target `oneroster` (~800 inputs): a file whose first line is blank, with a
/// byte-order mark on the second. The reader skips blank lines, so the header is the
/// second line (the harness took the blank first line for it). For the product: the
/// header is read from the right line, the mark is not part of the first column's name,
/// and the scan's locators name the line each row stands on.
#[test]
fn csv_blank_first_line_and_bom_read_the_right_header() {
    let bytes = unhex("0aefbbbf612c620c0b320d0a2e000000302c000000120a");
    assert_eq!(bytes.len(), 23, "not the fuzzer's input");
    let rows = parse_csv(&bytes).unwrap();
    assert_eq!(rows.len(), 1);
    let cols: Vec<&str> = rows[0].keys().map(String::as_str).collect();
    assert_eq!(cols, ["a", "b\u{c}\u{b}2"]);
    let mut out = Vec::new();
    scan_csv_file(&target("oneroster"), "users.csv", &bytes, &mut out).unwrap();
    let locators: Vec<&str> = out.iter().map(|e| e.locator.as_str()).collect();
    assert_eq!(locators, ["users.csv:row 2", "users.csv:row 3"]);
    assert!(out[1].values.iter().any(|(n, _)| n == "users.a"));
}

/// A roster with blank lines before the header and between rows: a real name in it is
/// found at the line it stands on.
#[test]
fn csv_locators_name_the_line_after_blank_lines() {
    let key = key();
    let a = astrid();
    let index = index_map(&key, &[&a]);
    let csv = format!(
        "\r\n\u{feff}sourcedId,givenName,familyName\r\nu1,Maja,Lind\r\n\r\n\"u2\",\"{}\",\"{}\"\r\n",
        a.first, a.last
    );
    let mut out = Vec::new();
    scan_csv_file(&target("oneroster"), "users.csv", csv.as_bytes(), &mut out).unwrap();
    let found = scan(&out, &key, &index);
    assert!(
        found
            .iter()
            .any(|f| f.rule == Rule::FullName && f.entry == "users.csv:row 5"),
        "{found:?}"
    );
    assert!(
        found.iter().all(|f| f.entry == "users.csv:row 5"),
        "{found:?}"
    );
}

/// Found by the `ss12000_scan` fuzz target (`crash-c82f8eb1…`, 2026-12-07): an item
/// whose `id` is the empty string got the locator `groups/`, which names no entry (a
/// school told "found at groups/" cannot find it). An empty id is no id: the item is
/// named by its place on the page, as an item without one.
#[test]
fn ss12000_scan_an_empty_id_is_located_by_its_place() {
    use fiktiv_provisioning::ss12000_scan::{parse_scan_page, scanned_from_item};
    let body = br#"{"data":[{"id":""}],"pageToken":"next"}"#;
    let page = parse_scan_page(body).unwrap();
    assert_eq!(page.items.len(), 1);
    let target = fiktiv_provisioning::TargetName::new("hub").unwrap();
    let e = scanned_from_item(&target, "groups", &page.items[0], 0);
    assert_eq!(e.locator, "groups #1");
    // An id is still the locator when there is one.
    let id = serde_json::json!({"id": "0f8fad5b-d9cb-469f-a165-70867728950e"});
    let e = scanned_from_item(&target, "groups", &id, 0);
    assert_eq!(e.locator, "groups/0f8fad5b-d9cb-469f-a165-70867728950e");
}
