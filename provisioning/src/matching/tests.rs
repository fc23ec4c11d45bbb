//! The matcher's tests: the rules, the screen against the rules, the pre-filter.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use super::screen::{normalize_word, push_date, screen, Secret};
use super::*;
use std::sync::Arc;

use chrono::Datelike as _;
use fiktiv_vault::normalize::normalize_name;
use fiktiv_vault::RootKey;

fn key() -> BlindKey {
    RootKey::generate().blind_key().unwrap()
}

fn real(
    key: &BlindKey,
    first: &str,
    last: &str,
    birth: NaiveDate,
    pnr: &str,
) -> HashSet<(IndexKind, BlindIndex)> {
    // As the vault keeps them: the number, the names in every spelling.
    let mut set = HashSet::from([(
        IndexKind::PersonalNumber,
        key.index(IndexKind::PersonalNumber, pnr),
    )]);
    for full in fiktiv_vault::identity::name_spelling_keys(first, last) {
        set.insert((IndexKind::FullName, key.index(IndexKind::FullName, &full)));
        let nb = format!("{}|{}", full.as_str(), birth.format("%Y%m%d"));
        set.insert((IndexKind::NameBirth, key.index(IndexKind::NameBirth, &nb)));
    }
    for ini in fiktiv_vault::identity::initial_family_keys(first, last) {
        let nb = fiktiv_vault::identity::name_birth_of(&ini, birth);
        set.insert((IndexKind::NameBirth, key.index(IndexKind::NameBirth, &nb)));
    }
    assert!(set.contains(&(
        IndexKind::NameBirth,
        key.index(IndexKind::NameBirth, &name_birth_key(first, last, birth))
    )));
    assert!(set.contains(&(
        IndexKind::FullName,
        key.index(IndexKind::FullName, &full_name_key(first, last))
    )));
    set
}

fn rules(hits: &[Hit]) -> Vec<Rule> {
    hits.iter().map(|h| h.rule).collect()
}

/// A real name in the shapes it takes in directories and platforms is found, with
/// or without the name-part pre-filter.
fn names_in_many_shapes_are_found<L: RealIndexLookup + ?Sized>(k: &BlindKey, lookup: &L) {
    for v in [
        "Åsa-Britt Öberg",
        "ÖBERG, ÅSA BRITT",
        "asabritt.oberg@skola.example",
        "A\u{30A}sa-Britt O\u{308}berg",
        "asabrittoberg",
        "uid=asa.britt.oberg,ou=people",
        "some long text with many words before the name asa britt oberg and more words after it to pass sixteen words",
    ] {
        let hits = match_entry(&[("description", v)], k, lookup, false);
        assert_eq!(rules(&hits), vec![Rule::FullName], "{v}");
    }
    let hits = match_entry(
        &[
            ("givenName", "ÅSA BRITT"),
            ("sn", "oberg"),
            ("x", "04.03.2012"),
        ],
        k,
        lookup,
        false,
    );
    assert_eq!(rules(&hits), vec![Rule::NameBirth, Rule::FullName]);
    let nb = &hits[0];
    assert_eq!(
        nb.attributes,
        BTreeSet::from(["givenName".into(), "sn".into(), "x".into()])
    );
    assert!(match_entry(&[("cn", "Åsa Ek")], k, lookup, false).is_empty());
}

#[test]
fn finds_names_in_many_shapes() {
    let k = key();
    let birth = NaiveDate::from_ymd_opt(2012, 3, 4).unwrap();
    let set = real(&k, "Åsa-Britt", "Öberg", birth, "201203041236");
    names_in_many_shapes_are_found(&k, &set);
}

#[test]
fn finds_numbers_in_written_forms() {
    let k = key();
    let birth = NaiveDate::from_ymd_opt(2012, 3, 4).unwrap();
    let pnr = fiktiv_vault::ids::make_se_number(birth, 123).unwrap();
    let set = real(&k, "A", "B", NaiveDate::MIN, &pnr);
    let short = format!("{}-{}", &pnr[2..8], &pnr[8..]);
    let spaced = format!("id {} x", pnr);
    let wide: String = short
        .chars()
        .map(|c| match c {
            '-' => '\u{2212}',
            d => char::from_u32(d as u32 - '0' as u32 + 0xFF10).unwrap(),
        })
        .collect();
    for v in [short.as_str(), pnr.as_str(), spaced.as_str(), wide.as_str()] {
        let hits = match_entry(&[("employeeNumber", v)], &k, &set, true);
        assert_eq!(rules(&hits), vec![Rule::Number], "{v}");
    }
    assert!(match_entry(&[("x", "nothing here 12")], &k, &set, true).is_empty());
}

#[test]
fn dates_are_written_as_name_birth_key_writes_them() {
    let mut d = NaiveDate::from_ymd_opt(1800, 1, 1).unwrap();
    while d.year() <= 2199 {
        let mut s = String::new();
        push_date(&mut s, d);
        assert_eq!(s, format!("|{}", d.format("%Y%m%d")));
        d += chrono::Duration::days(37);
    }
}

#[test]
fn attribute_classes_as_before() {
    fn before(name: &str, list: &[&str]) -> bool {
        let lower = name.to_ascii_lowercase();
        let last = lower.rsplit('.').next().unwrap_or(&lower);
        list.iter().any(|n| {
            *n == lower || (!n.contains('.') && *n == last) || lower.ends_with(&format!(".{n}"))
        })
    }
    let names = [
        "",
        ".",
        "sn",
        "SN",
        "xsn",
        ".sn",
        "a.b.SN",
        "sn.",
        "givenName",
        "name.givenName",
        "NAME.GIVENNAME",
        "users.first_name",
        "É.sn",
        "Ésn",
        "ǅ.gn",
        "gn",
        "familyName.x",
        "name.familyName",
        "x.name.familyname",
        "name..familyname",
        "cn",
        "dn.rdn",
    ];
    for n in names {
        for list in [GIVEN_LIKE, FAMILY_LIKE] {
            assert_eq!(ends_with_any(n, list), before(n, list), "{n:?}");
        }
        assert_eq!(
            name_kind(n),
            (before(n, GIVEN_LIKE), before(n, FAMILY_LIKE)),
            "{n:?}"
        );
    }
}

#[test]
fn attribute_classes() {
    for list in [GIVEN_LIKE, FAMILY_LIKE] {
        for n in list.iter().filter(|n| n.contains('.')) {
            let last = n.rsplit('.').next().unwrap();
            assert!(
                list.contains(&last),
                "{n}: its last part is not in the list"
            );
        }
        for n in list.iter().filter(|n| !n.contains('.')) {
            assert!(
                (2..=19).contains(&n.len()),
                "{n}: outside ends_with_any's bounds"
            );
        }
    }
    assert!(ends_with_any("name.givenName", GIVEN_LIKE));
    assert!(ends_with_any("users.givenName", GIVEN_LIKE));
    assert!(ends_with_any("SN", FAMILY_LIKE));
    assert!(!ends_with_any("cn", FAMILY_LIKE));
}

/// Records every index asked for; contains nothing.
#[derive(Default)]
struct Recording(std::sync::Mutex<HashSet<(IndexKind, BlindIndex)>>);

impl RealIndexLookup for Recording {
    fn contains(&self, kind: IndexKind, idx: &BlindIndex) -> bool {
        self.0.lock().unwrap().insert((kind, *idx));
        false
    }
}

thread_local! {
    /// The name pairs `match_entry_exact` indexed last on this thread (test builds).
    pub(super) static CANDIDATES: std::cell::RefCell<Vec<(String, String)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// A lookup with a name-part filter, as the vault's `BlindIndexSet` has; counts the
/// blind indexes looked up.
struct Filtered {
    set: HashSet<(IndexKind, BlindIndex)>,
    parts: NamePartFilter,
    looked_up: std::sync::atomic::AtomicUsize,
}

impl Filtered {
    fn new(set: HashSet<(IndexKind, BlindIndex)>, names: &[(&str, &str)]) -> Self {
        let ring = fiktiv_vault::KeyRing::new(RootKey::generate()).unwrap();
        let mut parts = NamePartFilter::new(ring.name_parts().clone());
        for (g, f) in names {
            parts.add_names(g, f);
        }
        Self {
            set,
            parts,
            looked_up: Default::default(),
        }
    }
}

impl RealIndexLookup for Filtered {
    fn contains(&self, kind: IndexKind, idx: &BlindIndex) -> bool {
        self.looked_up
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.set.contains(&(kind, *idx))
    }

    fn name_parts(&self) -> Option<&NamePartFilter> {
        Some(&self.parts)
    }
}

#[test]
fn the_filter_finds_names_in_many_shapes() {
    let k = key();
    let birth = NaiveDate::from_ymd_opt(2012, 3, 4).unwrap();
    let set = real(&k, "Åsa-Britt", "Öberg", birth, "201203041236");
    let lookup = Filtered::new(set, &[("Åsa-Britt", "Öberg"), ("Ella", "Ek")]);
    names_in_many_shapes_are_found(&k, &lookup);
    // A given name and a family name of two different real pupils: no finding.
    assert!(match_entry(&[("cn", "Åsa-Britt Ek")], &k, &lookup, false).is_empty());
}

/// Real names of one and two letters inside one word: the word's first two letters
/// start no longer name part (the screen's quick "no word starts a name" pass says
/// so), yet its split `bo|ek` or `e|lund` is a real full name.
#[test]
fn short_names_inside_one_word_are_found() {
    let k = key();
    let birth = NaiveDate::from_ymd_opt(2012, 3, 4).unwrap();
    let mut set = real(&k, "Bo", "Ek", birth, "201203041236");
    set.extend(real(&k, "E", "Lund", birth, "201203041236"));
    let lookup = Filtered::new(set, &[("Bo", "Ek"), ("E", "Lund")]);
    for entry in [
        vec![("uid", "boek")],
        vec![("uid", "xy"), ("mail", "boek.x@skola.example")],
        vec![("mail", "elund@skola.example")],
        vec![("uid", "elund")],
        vec![("description", "zz elund zz")],
    ] {
        let exact = match_entry_exact(&entry, &k, &lookup, false);
        assert_eq!(
            exact.first().map(|h| h.rule),
            Some(Rule::FullName),
            "{entry:?}"
        );
        assert_eq!(match_entry(&entry, &k, &lookup, false), exact, "{entry:?}");
    }
    // Words that start no real name part, and whose splits give none: clean.
    for v in ["xyz.qq@skola.example", "uid=zz,ou=pp", "bx", "ez"] {
        let entry = [("uid", v)];
        assert!(
            match_entry_exact(&entry, &k, &lookup, false).is_empty(),
            "{v}"
        );
        assert!(match_entry(&entry, &k, &lookup, false).is_empty(), "{v}");
    }
}

/// A word of combining marks alone normalises to nothing: a run that is a whole real
/// name part and stops there (it starts no longer one) is still that part with such a
/// word after it, as the rules' whole split `ella` + `\u{301}` | `fiktiv` shows.
#[test]
fn a_word_that_normalises_to_nothing_cuts_no_run_short() {
    let k = key();
    let birth = NaiveDate::from_ymd_opt(2012, 3, 4).unwrap();
    let set = HashSet::from([(
        IndexKind::NameBirth,
        k.index(
            IndexKind::NameBirth,
            &name_birth_key("Ella", "Fiktiv", birth),
        ),
    )]);
    let lookup = Filtered::new(set, &[("Ella", "Fiktiv"), ("Ellen", "Fiktivsson")]);
    let entry = [("cn", "Fiktiv Ella \u{301}"), ("description", "2012-03-04")];
    let exact = match_entry_exact(&entry, &k, &lookup, false);
    assert_eq!(exact.first().map(|h| h.rule), Some(Rule::NameBirth));
    assert_eq!(match_entry(&entry, &k, &lookup, false), exact);
}

/// A value repeated in an entry counts its dates each time, as the rules count them: two
/// copies of a value with 150 dates are more than an entry's 256 (unverifiable), though
/// the screen works the value out once.
#[test]
fn a_repeated_value_counts_its_dates_each_time() {
    let k = key();
    let start = NaiveDate::from_ymd_opt(2012, 1, 1).unwrap();
    let many: String = (0..150)
        .map(|d| {
            (start + chrono::Days::new(d))
                .format("%Y-%m-%d ")
                .to_string()
        })
        .collect();
    let twice = [("description", many.as_str()), ("info", many.as_str())];
    let exact = match_entry_exact(&twice, &k, &HashSet::new(), false);
    assert_eq!(exact.first().map(|h| h.rule), Some(Rule::Unverifiable));
    assert!(!screen(&twice, &k, &HashSet::new(), &mut Memo::new()));
    assert_eq!(match_entry(&twice, &k, &HashSet::new(), false), exact);
    let once = [("description", many.as_str())];
    assert!(screen(&once, &k, &HashSet::new(), &mut Memo::new()));
}

#[test]
fn the_filter_spares_the_blind_indexes_of_clean_entries() {
    let k = key();
    let birth = NaiveDate::from_ymd_opt(2012, 3, 4).unwrap();
    let entry = [
        (
            "dn",
            "uid=fx3k9q2m,ou=people,ou=skola-1,dc=skole,dc=example,dc=org",
        ),
        ("uid", "fx3k9q2m"),
        ("cn", "Ella Fiktiv"),
        ("givenName", "Ella"),
        ("sn", "Fiktiv"),
        ("mail", "fx3k9q2m@skole.example.org"),
        ("description", "född 2012-03-04"),
    ];
    let plain = Recording::default();
    assert!(match_entry(&entry, &k, &plain, false).is_empty());
    let without = plain.0.into_inner().unwrap();
    let set = real(&k, "Åsa-Britt", "Öberg", birth, "201203041236");
    let lookup = Filtered::new(set, &[("Åsa-Britt", "Öberg")]);
    assert!(match_entry(&entry, &k, &lookup, false).is_empty());
    let with = lookup.looked_up.into_inner();
    // Without the filter every candidate pair is indexed; with it, none of them
    // (only the personal-number candidates, of which this entry has none).
    assert!(without.len() > 200, "{}", without.len());
    assert_eq!(with, 0);
}

const ATTRS: &[&str] = &[
    "givenName",
    "sn",
    "cn",
    "mail",
    "dn",
    "description",
    "name.familyName",
    "first_name",
];
const TOKENS: &[&str] = &[
    "Ella",
    "fiktiv",
    "ÅSA",
    "Britt",
    "O\u{308}berg",
    "Øyvind",
    "Straße",
    "ﬁnn",
    "\u{301}",
    "Σίσυφος",
    "1a2b3c4d",
    "20120304",
    "04.03.2012",
    "120304-1236",
    "3/4/12",
    "x",
    "ǅemal",
    "ㄱ",
    "½",
    "㎏",
];
const SEPS: &[&str] = &[" ", ".", "-", ",", "=", "@", "", "  ", "|"];

fn entries() -> impl proptest::strategy::Strategy<Value = Vec<(String, String)>> {
    use proptest::prelude::*;
    let value =
        proptest::collection::vec((0..TOKENS.len(), 0..SEPS.len()), 0..12).prop_map(|parts| {
            parts
                .into_iter()
                .map(|(t, s)| format!("{}{}", TOKENS[t], SEPS[s]))
                .collect::<String>()
        });
    proptest::collection::vec((0..ATTRS.len(), value), 0..7).prop_map(|vs| {
        vs.into_iter()
            .map(|(a, v)| (ATTRS[a].to_string(), v))
            .collect()
    })
}

#[test]
fn normalising_words_one_by_one_is_normalising_them_joined() {
    for w in TOKENS {
        for x in TOKENS {
            let text = format!("{w} {x}");
            let ws = words(&text);
            let joined = normalize_name(&ws.join(" "));
            let parts: Vec<Secret> = ws.iter().map(|p| normalize_word(p)).collect();
            let concat: String = parts.iter().map(|p| p.0.as_str()).collect();
            assert_eq!(joined, concat, "{w:?} {x:?}");
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(96))]

    /// The screen indexes exactly what the rules index: nothing it calls clean could
    /// have matched.
    #[test]
    fn the_screen_indexes_what_the_rules_index(entry in entries()) {
        let k = key();
        let values: Vec<(&str, &str)> =
            entry.iter().map(|(a, v)| (a.as_str(), v.as_str())).collect();
        let exact = Recording::default();
        let hits = match_entry_exact(&values, &k, &exact, false);
        let screened = Recording::default();
        let mut memo = Memo::new();
        let clean = screen(&values, &k, &screened, &mut memo);
        let unverifiable = hits.iter().any(|h| h.rule == Rule::Unverifiable);
        proptest::prop_assert_eq!(clean, !unverifiable);
        if clean {
            let (e, s) = (exact.0.into_inner().unwrap(), screened.0.into_inner().unwrap());
            proptest::prop_assert!(e == s, "exact {} vs screen {}", e.len(), s.len());
        }
        // Again with the memo: the same answer.
        proptest::prop_assert_eq!(screen(&values, &k, &Recording::default(), &mut memo), clean);
    }

    /// A real identity planted from any pair the rules index is found, memo or not.
    #[test]
    fn the_screen_flags_whatever_the_rules_find(entry in entries(), pick in 0usize..1000) {
        let k = key();
        let values: Vec<(&str, &str)> =
            entry.iter().map(|(a, v)| (a.as_str(), v.as_str())).collect();
        let all = Recording::default();
        match_entry_exact(&values, &k, &all, false);
        let all: Vec<(IndexKind, BlindIndex)> = all.0.into_inner().unwrap().into_iter().collect();
        if let Some(real) = all.get(pick % all.len().max(1)) {
            let set = HashSet::from([*real]);
            let exact = match_entry_exact(&values, &k, &set, false);
            proptest::prop_assert!(!exact.is_empty());
            let mut memo = Memo::new();
            proptest::prop_assert_eq!(match_entry_memo(&values, &k, &set, false, &mut memo), exact.clone());
            proptest::prop_assert_eq!(match_entry_memo(&values, &k, &set, false, &mut memo), exact);
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(96))]

    /// With the name-part filter, a real identity planted from any name pair the
    /// rules index is found exactly as the rules find it, whatever other names the
    /// vault holds: the filter never hides a real name.
    #[test]
    fn the_filter_hides_no_pair_the_rules_index(
        entry in entries(),
        pick in 0usize..1000,
        with_full_name in proptest::bool::ANY,
        noise in proptest::collection::vec((0..TOKENS.len(), 0..TOKENS.len()), 0..4),
    ) {
        let k = key();
        let values: Vec<(&str, &str)> =
            entry.iter().map(|(a, v)| (a.as_str(), v.as_str())).collect();
        CANDIDATES.with(|c| c.borrow_mut().clear());
        match_entry_exact(&values, &k, &Recording::default(), false);
        let candidates = CANDIDATES.with(|c| c.take());
        let date = values
            .iter()
            .flat_map(|(_, v)| scan_date_candidates(v, DEFAULT_DATE_LIMIT).dates)
            .next();
        if let Some((g, f)) = candidates.get(pick % candidates.len().max(1)) {
            let mut set = HashSet::new();
            // Only name + birth planted: the pair may not be one the rule pairs
            // with dates (a window inside a long value); then nothing is found, by
            // the rules and by the screen alike.
            let full_name = with_full_name || date.is_none();
            if full_name {
                set.insert((IndexKind::FullName, k.index(IndexKind::FullName, &full_name_key(g, f))));
            }
            if let Some(d) = date {
                set.insert((IndexKind::NameBirth, k.index(IndexKind::NameBirth, &name_birth_key(g, f, d))));
            }
            let mut names: Vec<(&str, &str)> = vec![(g.as_str(), f.as_str())];
            names.extend(noise.iter().map(|&(a, b)| (TOKENS[a], TOKENS[b])));
            let lookup = Filtered::new(set, &names);
            let exact = match_entry_exact(&values, &k, &lookup, false);
            let unverifiable = exact.iter().any(|h| h.rule == Rule::Unverifiable);
            proptest::prop_assert!(!full_name || !exact.is_empty());
            let mut memo = Memo::new();
            proptest::prop_assert_eq!(match_entry_memo(&values, &k, &lookup, false, &mut memo), exact.clone());
            let vals: Vec<&str> = values.iter().map(|(_, v)| *v).collect();
            let facts = shared_facts(&vals, 0, &k, &lookup);
            let mut memo = Memo::with_shared(Arc::new(shared_map(&vals, facts)));
            proptest::prop_assert_eq!(match_entry_memo(&values, &k, &lookup, false, &mut memo), exact.clone());
            // A learning memo (a paged scan) and its word cache, over three sightings
            // of the entry: worked out, kept, remembered.
            let mut memo = Memo::learning();
            for _ in 0..3 {
                proptest::prop_assert_eq!(match_entry_memo(&values, &k, &lookup, false, &mut memo), exact.clone());
            }
            if full_name && !unverifiable {
                proptest::prop_assert!(exact.iter().any(|h| matches!(h.rule, Rule::FullName | Rule::NameBirth)));
            }
        }
    }
}

proptest::proptest! {
    // Slower per case (two entries, three memo set-ups): fewer cases.
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

    /// Entries screened one after the other with one memo (as in a scan or a batch)
    /// give exactly the exact matcher's hits, wherever the real identity is.
    #[test]
    fn a_shared_memo_changes_nothing(
        first in entries(),
        second in entries(),
        shared in proptest::collection::vec((0..ATTRS.len(), 0..TOKENS.len()), 0..3),
        pick in 0usize..1000,
    ) {
        let k = key();
        // Values that recur in both entries, as in a directory.
        let common: Vec<(String, String)> = shared
            .iter()
            .map(|&(a, t)| (ATTRS[a].to_string(), format!("{} 14.03.2015", TOKENS[t])))
            .collect();
        let mk = |e: &Vec<(String, String)>| -> Vec<(String, String)> {
            e.iter().chain(&common).cloned().collect()
        };
        let (a, b) = (mk(&first), mk(&second));
        let a: Vec<(&str, &str)> = a.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let b: Vec<(&str, &str)> = b.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let all = Recording::default();
        match_entry_exact(&b, &k, &all, false);
        let all: Vec<(IndexKind, BlindIndex)> = all.0.into_inner().unwrap().into_iter().collect();
        let set: HashSet<(IndexKind, BlindIndex)> =
            all.get(pick % all.len().max(1)).into_iter().copied().collect();
        let mut memo = memo_for(a.iter().chain(&b).map(|(_, v)| *v), &k, &set);
        for _ in 0..2 {
            proptest::prop_assert_eq!(
                match_entry_memo(&a, &k, &set, false, &mut memo),
                match_entry_exact(&a, &k, &set, false)
            );
            proptest::prop_assert_eq!(
                match_entry_memo(&b, &k, &set, false, &mut memo),
                match_entry_exact(&b, &k, &set, false)
            );
        }
        // A learning memo, as a paged scan has: each entry met again is remembered.
        let mut memo = Memo::learning();
        for _ in 0..3 {
            proptest::prop_assert_eq!(
                match_entry_memo(&a, &k, &set, false, &mut memo),
                match_entry_exact(&a, &k, &set, false)
            );
            proptest::prop_assert_eq!(
                match_entry_memo(&b, &k, &set, false, &mut memo),
                match_entry_exact(&b, &k, &set, false)
            );
        }
        // Two workers of one paged scan, which share DN-like values: each entry met by
        // both, in turn.
        let learning = Learning::new();
        let mut workers = [Memo::learning_with(Arc::clone(&learning)), Memo::learning_with(learning)];
        for round in 0..3 {
            for (i, entry) in [&a, &b].into_iter().enumerate() {
                let Some(memo) = workers.get_mut((round + i) % 2) else { continue };
                proptest::prop_assert_eq!(
                    match_entry_memo(entry, &k, &set, false, memo),
                    match_entry_exact(entry, &k, &set, false)
                );
            }
        }
        // And with facts worked out beforehand, as `scan` does.
        let values: Vec<&str> = a.iter().chain(&b).map(|(_, v)| *v).collect::<HashSet<_>>().into_iter().collect();
        let facts = shared_facts(&values, 0, &k, &set);
        let mut memo = Memo::with_shared(Arc::new(shared_map(&values, facts)));
        proptest::prop_assert_eq!(
            match_entry_memo(&a, &k, &set, false, &mut memo),
            match_entry_exact(&a, &k, &set, false)
        );
        proptest::prop_assert_eq!(
            match_entry_memo(&b, &k, &set, false, &mut memo),
            match_entry_exact(&b, &k, &set, false)
        );
    }
}

/// A DN learnt by one worker of a paged scan (at first sight, as an entry's own DN)
/// gives another worker the same answer when a group names it, clean or not.
#[test]
fn workers_share_what_a_dn_gives() {
    let k = key();
    let birth = NaiveDate::from_ymd_opt(2012, 3, 4).unwrap();
    let set = real(&k, "Åsa-Britt", "Öberg", birth, "201203041236");
    let learning = Learning::new();
    let mut workers = [
        Memo::learning_with(Arc::clone(&learning)),
        Memo::learning_with(learning),
    ];
    for (dn, found) in [
        ("uid=fx3k9q2m,ou=people,dc=skole,dc=example", false),
        ("cn=Åsa-Britt Öberg,ou=people,dc=skole,dc=example", true),
        (
            "uid=x,ou=people,dc=skole,dc=example,description=20120304",
            false,
        ),
    ] {
        let person = [("dn", dn), ("uid", "fx3k9q2m")];
        let group = [
            ("dn", "cn=klass-1,ou=groups"),
            ("member", dn),
            ("cn", "Åsa"),
        ];
        for (entry, worker) in [(&person[..], 0), (&group[..], 1), (&group[..], 0)] {
            let memo = &mut workers[worker];
            let hits = match_entry_memo(entry, &k, &set, false, memo);
            assert_eq!(hits, match_entry_exact(entry, &k, &set, false), "{dn}");
            assert_eq!(!hits.is_empty(), found, "{dn}");
        }
    }
}

/// An entry too large to look back in (a school's group) counts a repeated value's
/// dates per copy and finds a real name among its members, as the rules do.
#[test]
fn a_large_entry_gives_what_the_rules_give() {
    let k = key();
    let birth = NaiveDate::from_ymd_opt(2012, 3, 4).unwrap();
    let set = real(&k, "Åsa-Britt", "Öberg", birth, "201203041236");
    let members: Vec<String> = (0..200)
        .map(|i| format!("uid=p{i:05},ou=people,dc=skole,dc=example"))
        .collect();
    let group = |extra: &[(&'static str, &'static str)]| -> Vec<(String, String)> {
        std::iter::once(("dn".to_string(), "cn=skola-1,ou=groups".to_string()))
            .chain(members.iter().map(|m| ("member".to_string(), m.clone())))
            .chain(extra.iter().map(|(n, v)| (n.to_string(), v.to_string())))
            .collect()
    };
    let dated = "2012-03-04 2013-05-06";
    type Entry = Vec<(String, String)>;
    let cases: Vec<(Entry, Option<Rule>)> = vec![
        (group(&[]), None),
        // 130 copies of two dates: past the 256 dates an entry may have.
        (
            group(&[("description", dated); 130]),
            Some(Rule::Unverifiable),
        ),
        // 120 copies: within.
        (group(&[("description", dated); 120]), None),
        (
            group(&[("member", "cn=Åsa-Britt Öberg,ou=people")]),
            Some(Rule::FullName),
        ),
    ];
    let mut memo = Memo::learning();
    for (entry, rule) in cases {
        let entry: Vec<(&str, &str)> = entry
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let exact = match_entry_exact(&entry, &k, &set, false);
        assert_eq!(exact.first().map(|h| h.rule), rule);
        assert_eq!(match_entry_memo(&entry, &k, &set, false, &mut memo), exact);
        assert_eq!(screen(&entry, &k, &set, &mut Memo::new()), rule.is_none());
    }
}

/// The initial of the first name with the last name (`gfamily`, `g.family`,
/// `Family, G.`) beside the real birth date is the real pupil: found, by the screen and
/// the rules, with and without the pre-filter. Without the date, or with another
/// initial or another family name, it is nothing.
#[test]
fn initial_and_family_name_with_the_birth_date_are_found() {
    let k = key();
    let birth = NaiveDate::from_ymd_opt(2012, 3, 4).unwrap();
    let set = real(&k, "Åsa-Britt", "Öberg", birth, "201203041236");
    let filtered = Filtered::new(set.clone(), &[("Åsa-Britt", "Öberg"), ("Ella", "Ek")]);
    for v in [
        "aoberg",
        "aoeberg",
        "aoberg2@skola.example",
        "AOEBERG@skola.example",
        "a.oberg@skola.example",
        "Öberg, Å.",
        "oberg a",
    ] {
        for date in ["2012-03-04", "20120304", "4.3.2012"] {
            let entry = [("mail", v), ("description", date)];
            for found in [
                match_entry(&entry, &k, &set, false),
                match_entry(&entry, &k, &filtered, false),
                match_entry_exact(&entry, &k, &set, false),
            ] {
                assert_eq!(rules(&found), vec![Rule::NameBirth], "{v} {date}");
            }
        }
        // Without the date: no full name, nothing.
        assert!(
            match_entry(&[("mail", v)], &k, &filtered, false).is_empty(),
            "{v}"
        );
    }
    // Given and family attributes with the initial alone.
    let entry = [
        ("givenName", "Å"),
        ("sn", "Oeberg"),
        ("birthDate", "2012-03-04"),
    ];
    assert_eq!(
        rules(&match_entry(&entry, &k, &filtered, false)),
        vec![Rule::NameBirth]
    );
    for v in [
        "qoberg",
        "aholm",
        "aoberg.holm.lund.berg.x.y.z@skola.example",
        "boberg",
    ] {
        let entry = [("mail", v), ("description", "2012-03-04")];
        assert!(match_entry(&entry, &k, &filtered, false).is_empty(), "{v}");
        assert!(match_entry_exact(&entry, &k, &set, false).is_empty(), "{v}");
    }
    // Another birth date: nothing.
    let entry = [("mail", "aoberg"), ("description", "2012-03-05")];
    assert!(match_entry_exact(&entry, &k, &set, false).is_empty());
}
