//! The labelled leak-scan corpus (`scripts/leak-corpus` writes
//! `tests/data/leak_corpus.json`): invented real identities, and records holding them
//! in every written form (diacritics kept, stripped, transliterated, mixed per name,
//! upper case; numbers in their forms; mail addresses and user names) in every channel
//! (LDAP attribute, DN, group member, SCIM attribute, CSV column, free text, mail
//! address), each with the verdict the scan must give. Each record is read by the
//! reader of its channel (the leak scan's own LDAP reader over BER, the SCIM reader,
//! the CSV reader) and scanned, with and without the name-part pre-filter.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use fiktiv_provisioning::ldap_wire::{scanned_from_entry, search_entry_contents};
use fiktiv_provisioning::oneroster::scan_csv_file;
use fiktiv_provisioning::scim_parse::scanned_from_scim;
use fiktiv_provisioning::{scan, RealIndexLookup, Rule, ScannedEntry};
use fiktiv_vault::blind::{BlindIndex, IndexKind};
use fiktiv_vault::identity::{RealIdentity, RealName};
use fiktiv_vault::ids::PersonalNumber;
use fiktiv_vault::keys::BlindKey;
use fiktiv_vault::{CaseId, KeyRing, NamePartFilter, RootKey};
use serde_json::Value;

use super::common::target;

const CORPUS: &str = include_str!("../data/leak_corpus.json");

/// The verdict of a scan of one record, as the page states it.
pub fn verdict(rules: &[Rule]) -> &'static str {
    if rules.contains(&Rule::Number) || rules.contains(&Rule::NameBirth) {
        "found"
    } else if rules.contains(&Rule::Unverifiable) {
        "unverified"
    } else if rules.contains(&Rule::FullName) {
        "suspect"
    } else {
        "clean"
    }
}

/// The vault's indexes of the corpus's identities, with the name-part filter or not.
pub struct Lookup {
    map: HashMap<(IndexKind, BlindIndex), Vec<CaseId>>,
    parts: Option<NamePartFilter>,
}

impl RealIndexLookup for Lookup {
    fn contains(&self, kind: IndexKind, idx: &BlindIndex) -> bool {
        self.map.contains_key(&(kind, *idx))
    }

    fn cases(&self, kind: IndexKind, idx: &BlindIndex) -> Vec<CaseId> {
        self.map.get(&(kind, *idx)).cloned().unwrap_or_default()
    }

    fn name_parts(&self) -> Option<&NamePartFilter> {
        self.parts.as_ref()
    }
}

pub struct Corpus {
    pub key: BlindKey,
    pub with_filter: Lookup,
    pub without_filter: Lookup,
    pub records: Vec<Value>,
}

fn str_of<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or_default()
}

pub fn load() -> Corpus {
    let doc: Value = serde_json::from_str(CORPUS).expect("the corpus is JSON");
    let ring = KeyRing::new(RootKey::generate()).unwrap();
    let key = ring.blind().clone();
    let mut map: HashMap<(IndexKind, BlindIndex), Vec<CaseId>> = HashMap::new();
    let mut parts = NamePartFilter::new(ring.name_parts().clone());
    for id in doc["identities"].as_array().expect("identities") {
        let case = CaseId::new();
        let (first, last) = (str_of(id, "first"), str_of(id, "last"));
        let birth: NaiveDate = str_of(id, "birth").parse().expect("a birth date");
        // Exactly the rows the vault keeps (`RealIdentity::blind_indexes`), so that the
        // corpus can never test other indexes than the vault's.
        let who = RealIdentity {
            number: PersonalNumber::parse(str_of(id, "number"), NaiveDate::MAX)
                .expect("a valid personal number"),
            first_name: RealName::new(first),
            last_name: RealName::new(last),
            birth_date: birth,
        };
        for (kind, idx) in who.blind_indexes(&key, &format!("{case}/pupil")) {
            map.entry((kind, idx)).or_default().push(case);
        }
        parts.add_names(first, last);
    }
    Corpus {
        key,
        with_filter: Lookup {
            map: map.clone(),
            parts: Some(parts),
        },
        without_filter: Lookup { map, parts: None },
        records: doc["records"].as_array().expect("records").clone(),
    }
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes = (n as u32).to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (4 - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// A `SearchResultEntry` as a server sends it; each attribute's values in one set.
fn entry_ber(dn: &str, attrs: &[(String, String)]) -> Vec<u8> {
    let mut grouped: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (n, v) in attrs {
        grouped.entry(n).or_default().push(v);
    }
    let mut list = Vec::new();
    for (name, vals) in grouped {
        let set: Vec<u8> = vals.iter().flat_map(|v| tlv(0x04, v.as_bytes())).collect();
        let mut pa = tlv(0x04, name.as_bytes());
        pa.extend(tlv(0x31, &set));
        list.extend(tlv(0x30, &pa));
    }
    let mut body = tlv(0x04, dn.as_bytes());
    body.extend(tlv(0x30, &list));
    tlv(0x64, &body)
}

/// A record read by the reader of its channel, as the scan sees it.
pub fn entries(rec: &Value) -> Vec<ScannedEntry> {
    match str_of(rec, "channel") {
        "ldap" => {
            let attrs: Vec<(String, String)> = rec["attrs"]
                .as_array()
                .expect("attrs")
                .iter()
                .map(|p| (p[0].as_str().unwrap().into(), p[1].as_str().unwrap().into()))
                .collect();
            let ber = entry_ber(str_of(rec, "dn"), &attrs);
            let body = search_entry_contents(&ber).expect("a SearchResultEntry");
            vec![scanned_from_entry(&target("ldap"), body, 0).expect("the entry decodes")]
        }
        "scim" => vec![scanned_from_scim(&target("scim"), "Users", &rec["json"], 0)],
        "csv" => {
            let mut out = Vec::new();
            scan_csv_file(
                &target("roster"),
                "users.csv",
                str_of(rec, "text").as_bytes(),
                &mut out,
            )
            .expect("the roster reads");
            out
        }
        other => panic!("unknown channel {other}"),
    }
}

/// The verdict of each record: (id, form, channel kind, expected, got).
pub fn run<L: RealIndexLookup>(
    c: &Corpus,
    lookup: &L,
) -> Vec<(String, String, String, String, &'static str)> {
    c.records
        .iter()
        .map(|rec| {
            let found = scan(&entries(rec), &c.key, lookup);
            let rules: Vec<Rule> = found.iter().map(|f| f.rule).collect();
            (
                str_of(rec, "id").to_owned(),
                str_of(rec, "form").to_owned(),
                str_of(rec, "channel_kind").to_owned(),
                str_of(rec, "expected").to_owned(),
                verdict(&rules),
            )
        })
        .collect()
}

fn check(with_filter: bool) {
    let c = load();
    let results = if with_filter {
        run(&c, &c.with_filter)
    } else {
        run(&c, &c.without_filter)
    };
    let wrong: Vec<String> = results
        .iter()
        .filter(|r| r.3 != r.4)
        .map(|r| format!("{}: expected {}, got {}", r.0, r.3, r.4))
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of {} records wrong:\n{}",
        wrong.len(),
        results.len(),
        wrong.join("\n")
    );
    // Every class the issue lists is in the corpus.
    let kinds: std::collections::BTreeSet<&str> = results.iter().map(|r| r.2.as_str()).collect();
    for k in [
        "ldap-attribute",
        "ldap-dn",
        "group-member",
        "scim-attribute",
        "csv-column",
        "free-text",
        "mail-address",
    ] {
        assert!(kinds.contains(k), "no record of channel {k}");
    }
    for form in [
        "transliterated",
        "stripped",
        "mixed-given-transliterated",
        "mixed-family-transliterated",
        "mail-with-domain",
        "mail-with-digit",
        "long-text",
        "negative:other-family+date",
        "negative:date-alone",
        "negative:family+date",
        "negative:number-off-by-one",
    ] {
        assert!(
            results.iter().any(|r| r.1.contains(form)),
            "no record of form {form}"
        );
    }
}

#[test]
fn every_record_gets_its_verdict_with_the_name_part_filter() {
    check(true);
}

#[test]
fn every_record_gets_its_verdict_without_the_name_part_filter() {
    check(false);
}

/// The file is what the script writes (a changed script without a new corpus, or a
/// corpus edited by hand, fails here).
#[test]
fn the_corpus_is_what_the_script_writes() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = std::process::Command::new("python3")
        .arg(root.join("scripts/leak-corpus"))
        .arg("--check")
        .output()
        .expect("python3 runs scripts/leak-corpus");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
