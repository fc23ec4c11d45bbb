//! The LDAP target against a real slapd (fiktiv-tests harness): create, update, disable,
//! delete, account check, drift, DN escaping, Feide LIN, and the leak scan, whose
//! filters never carry a real value (checked in slapd's `-d stats` log).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use crate::common;

use common::*;
use fiktiv_provisioning::ldap::{LdapConfig, LdapSchema, LdapSecurity, LdapTarget};
use fiktiv_provisioning::template::Template;
use fiktiv_provisioning::{
    check_account, plan, push, read_and_scan, report, scan, Action, CaseStatus, Drift,
    FictitiousNumber, Group, PlanOptions, Rule, Target, TargetError,
};
use fiktiv_tests::Slapd;
use fiktiv_vault::ids::{make_no_synthetic_number, Country};
use secrecy::SecretString;

fn target_for(slapd: &Slapd) -> LdapTarget {
    LdapTarget::new(config_for(slapd)).unwrap()
}

fn config_for(slapd: &Slapd) -> LdapConfig {
    let mut cfg = LdapConfig::new(
        target("ldap"),
        &slapd.url(),
        LdapSecurity::Plain,
        &slapd.admin_dn(),
        SecretString::from(slapd.admin_password().to_string()),
        &slapd.people_dn(),
        &slapd.groups_dn(),
    )
    .unwrap();
    cfg.schema = LdapSchema::Feide {
        realm: "skole.example.org".into(),
    };
    cfg.mail = Some(Template::parse("{given}.{family}.{short_id}@skola.example").unwrap());
    cfg.page_size = 2; // several pages even in a small directory
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_account_check_and_drift() {
    let slapd = Slapd::start().unwrap();
    let t = target_for(&slapd);
    let key = key();
    let other = astrid();
    let guard = guard(&key, &[&other]);
    let now = at(2025, 9, 1);

    let no = make_no_synthetic_number(day(2015, 3, 14), 501)
        .or_else(|_| make_no_synthetic_number(day(2015, 3, 14), 502))
        .unwrap();
    let mut ella = pupil("Ella", "Fiktiv", &[t.name()])
        .with_number(FictitiousNumber::new(Country::No, &no).unwrap());
    let otto = pupil("Otto", "Prov", &[t.name()]);

    // Create.
    assert_eq!(
        push(&t, &guard, &ella, now).await.unwrap(),
        fiktiv_provisioning::Applied::Created
    );
    push(&t, &guard, &otto, now).await.unwrap();
    let ldif = slapd
        .ldapsearch(&format!("(employeeNumber={})", ella.id), &[])
        .unwrap();
    assert!(
        ldif.contains(&format!("norEduPersonLIN: skole.example.org:localnin:{no}")),
        "{ldif}"
    );
    assert!(!ldif.contains("norEduPersonNIN"), "{ldif}");
    assert!(ldif.contains("objectClass: norEduPerson") && ldif.contains("objectClass: eduPerson"));
    assert!(ldif.contains("norEduPersonBirthDate: 20150314"));
    assert!(ldif.contains(&format!(
        "mail: ella.fiktiv.{}@skola.example",
        ella.id.short()
    )));
    let groups = slapd
        .ldapsearch("(objectClass=groupOfNames)", &["cn", "member"])
        .unwrap();
    assert!(
        groups.contains("cn: skola-1") && groups.contains("cn: skola-1-5a"),
        "{groups}"
    );

    // Account check, read back from slapd.
    let c = check_account(&t, &ella, now).await.unwrap();
    assert!(c.ok(), "{c:?}");
    assert_eq!(c.read_at, now);

    // Update: a new name renames the entry; a new class moves the membership.
    ella.given_name = "Elna".into();
    ella.groups = vec![Group::new("skola-1-6b", "Klass 6B").unwrap()];
    assert_eq!(
        push(&t, &guard, &ella, now).await.unwrap(),
        fiktiv_provisioning::Applied::Updated
    );
    let c = check_account(&t, &ella, now).await.unwrap();
    assert!(c.ok(), "{c:?}");
    let e = t.read_one(&ella.id, now).await.unwrap().unwrap();
    assert!(e.entry_id.starts_with("uid=elna.fiktiv."), "{}", e.entry_id);
    let groups = slapd.ldapsearch("(cn=skola-1-6b)", &["member"]).unwrap();
    assert!(groups.contains("uid=elna.fiktiv."), "{groups}");
    assert!(
        !slapd.dump().unwrap().contains("uid=ella.fiktiv."),
        "the old DN is gone everywhere"
    );

    // Disable: enabled=false read back, out of its groups; pushing again re-enables.
    t.disable(&guard, &ella.id, now).await.unwrap();
    let c = check_account(&t, &ella, now).await.unwrap();
    assert!(c.exists && !c.enabled, "{c:?}");
    assert_eq!(c.missing_groups.len(), 2);
    push(&t, &guard, &ella, now).await.unwrap();
    assert!(check_account(&t, &ella, now).await.unwrap().ok());

    // Drift by hand: a changed given name, a deleted entry.
    let otto_dn = t.read_one(&otto.id, now).await.unwrap().unwrap().entry_id;
    slapd
        .ldapmodify(&format!(
            "dn: {}\nchangetype: modify\nreplace: givenName\ngivenName: Hacked\n",
            t.read_one(&ella.id, now).await.unwrap().unwrap().entry_id
        ))
        .unwrap();
    slapd
        .ldapmodify(&format!("dn: {otto_dn}\nchangetype: delete\n"))
        .unwrap();
    let actual = t.read_managed(now).await.unwrap();
    let desired = vec![ella.clone(), otto.clone()];
    let p = plan(&desired, &actual, &PlanOptions::new(now));
    let acts = &p.targets[t.name()].actions;
    assert!(
        acts.contains(&Action::Create { person: otto.id }),
        "{acts:?}"
    );
    assert!(
        acts.iter().any(|a| matches!(a, Action::Update { person, drift, .. } if *person == ella.id && drift == &vec![Drift::GivenName])),
        "{acts:?}"
    );
    let c = check_account(&t, &ella, now).await.unwrap();
    assert_eq!(c.mismatched, vec!["givenName".to_string()]);
    // Repair, and the plan is empty.
    for d in &desired {
        push(&t, &guard, d, now).await.unwrap();
    }
    let p = plan(
        &desired,
        &t.read_managed(now).await.unwrap(),
        &PlanOptions::new(now),
    );
    assert!(p.is_empty(), "{p:?}");

    // Delete: entry and now-empty groups go.
    t.delete(&guard, &ella.id, now).await.unwrap();
    t.delete(&guard, &ella.id, now).await.unwrap(); // idempotent
    assert!(t.read_one(&ella.id, now).await.unwrap().is_none());
    assert!(slapd
        .ldapsearch("(cn=skola-1-6b)", &["cn"])
        .unwrap()
        .is_empty());
    assert!(slapd
        .ldapsearch("(cn=skola-1)", &["member"])
        .unwrap()
        .contains("uid=otto.prov."));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dn_and_filter_values_are_escaped() {
    let slapd = Slapd::start().unwrap();
    let mut cfg = LdapConfig::new(
        target("ldap"),
        &slapd.url(),
        LdapSecurity::Plain,
        &slapd.admin_dn(),
        SecretString::from(slapd.admin_password().to_string()),
        &slapd.people_dn(),
        &slapd.groups_dn(),
    )
    .unwrap();
    // A template with characters that are special in DNs (RFC 4514) and filters (4515).
    cfg.uid = Template::parse("{given},{family}+(x)*\\#").unwrap();
    let t = LdapTarget::new(cfg).unwrap();
    let key = key();
    let guard = guard(&key, &[]);
    let p = pupil("Ella", "Fiktiv", &[t.name()]);
    push(&t, &guard, &p, at(2025, 9, 1)).await.unwrap();
    let e = t.read_one(&p.id, at(2025, 9, 1)).await.unwrap().unwrap();
    assert_eq!(e.attributes["uid"], vec!["ella,fiktiv+(x)*\\#".to_string()]);
    assert!(check_account(&t, &p, at(2025, 9, 1)).await.unwrap().ok());
    // Groups were found by a member filter holding that DN: escaping worked.
    assert_eq!(e.groups.len(), 2);
    t.delete(&guard, &p.id, at(2025, 9, 1)).await.unwrap();
    assert!(t.read_one(&p.id, at(2025, 9, 1)).await.unwrap().is_none());
}

#[test]
fn plain_ldap_only_to_loopback() {
    let mk = |url: &str, sec| {
        LdapTarget::new(
            LdapConfig::new(
                target("x"),
                url,
                sec,
                "cn=a",
                SecretString::from("p"),
                "ou=p",
                "ou=g",
            )
            .unwrap(),
        )
    };
    assert!(mk("ldap://127.0.0.1:389/", LdapSecurity::Plain).is_ok());
    assert!(mk("ldap://dir.example.org/", LdapSecurity::Plain).is_err());
    assert!(mk("ldap://dir.example.org/", LdapSecurity::StartTls).is_ok());
    assert!(mk("ldaps://dir.example.org/", LdapSecurity::Ldaps).is_ok());
    assert!(mk("ldap://dir.example.org/", LdapSecurity::Ldaps).is_err());
    assert!(mk("ldaps://dir.example.org/", LdapSecurity::StartTls).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leak_scan_finds_a_planted_real_pupil_and_never_sends_a_real_value() {
    let slapd = Slapd::start().unwrap();
    let t = target_for(&slapd);
    let key = key();
    let real = astrid();
    let elsewhere = RealPupil::new("Nils", "Holgersson", day(2011, 5, 6), 77);
    let index = index_map(&key, &[&real, &elsewhere]);
    let guard = guard(&key, &[&real, &elsewhere]);
    let now = at(2025, 9, 1);
    for i in 0..5 {
        push(
            &t,
            &guard,
            &pupil("Ella", &format!("Fiktiv{i}"), &[t.name()]),
            now,
        )
        .await
        .unwrap();
    }

    // A clean directory is clean.
    let entries = t.read_everything().await.unwrap();
    assert!(
        entries.len() >= 9,
        "people, groups and the OUs: {}",
        entries.len()
    );
    assert!(scan(&entries, &key, &index).is_empty());
    let r = report(&[real.case, elsewhere.case], &[]);
    assert!(r.iter().all(|c| c.status == CaseStatus::Clean));

    // Plant the real pupil by hand: name in NFD and upper case, number in several forms.
    let spaced = format!("{} {}", &real.number[2..8], &real.number[8..]);
    let nfd_upper_given = "A\u{30A}SA-BRITT";
    let nfd_upper_family = "O\u{308}BERG";
    slapd
        .ldapadd(&format!(
            "dn: uid=planted1,{people}\nobjectClass: inetOrgPerson\nuid: planted1\n\
             cn: {nfd_upper_given} {nfd_upper_family}\ngivenName: {nfd_upper_given}\nsn: {nfd_upper_family}\n\
             description: born {short}\n\n\
             dn: uid=planted2,{people}\nobjectClass: inetOrgPerson\nuid: planted2\ncn: X\nsn: X\n\
             employeeNumber: {long}\ntitle: {spaced}\n",
            people = slapd.people_dn(),
            short = real.short_form(),
            long = real.number,
        ))
        .unwrap();

    let log_before = slapd.log().unwrap().len();
    let entries = t.read_everything().await.unwrap();
    let findings = scan(&entries, &key, &index);
    // Read and matched page by page (pages of 2), as the service scans: the same.
    let paged = read_and_scan(
        &t,
        &key,
        std::sync::Arc::new(index.clone()),
        std::time::Duration::from_secs(60),
    )
    .await;
    assert!(paged.error.is_none(), "{:?}", paged.error);
    assert_eq!(paged.read, entries.len());
    assert_eq!(paged.findings, findings);
    let log_after = slapd.log().unwrap();

    let rules: std::collections::BTreeSet<Rule> = findings.iter().map(|f| f.rule).collect();
    assert!(
        rules.contains(&Rule::Number)
            && rules.contains(&Rule::NameBirth)
            && rules.contains(&Rule::FullName),
        "{findings:?}"
    );
    assert!(
        findings.iter().all(|f| f.cases == vec![real.case]),
        "{findings:?}"
    );
    assert!(
        findings.iter().all(|f| f.entry.starts_with("entryUUID=")),
        "{findings:?}"
    );
    let planted2 = findings
        .iter()
        .find(|f| f.rule == Rule::Number && f.attributes.contains(&"title".to_string()))
        .unwrap();
    assert!(planted2.attributes.contains(&"employeeNumber".to_string()));
    assert_eq!(
        planted2.label.as_deref(),
        Some(format!("uid=planted2,{}", slapd.people_dn()).as_str())
    );
    let r = report(&[real.case, elsewhere.case], &findings);
    assert_eq!(
        r.iter().find(|c| c.case == real.case).unwrap().status,
        CaseStatus::Found
    );
    assert_eq!(
        r.iter().find(|c| c.case == elsewhere.case).unwrap().status,
        CaseStatus::Clean
    );

    // Nothing real in what was shown or logged.
    let shown = format!("{findings:?} {}", serde_json::to_string(&findings).unwrap());
    let scan_log = &log_after[log_before..];
    assert!(
        scan_log.contains("SRCH") && scan_log.contains("filter=\"(objectClass=*)\""),
        "{scan_log}"
    );
    for v in [
        real.number.as_str(),
        &real.number[2..],
        &real.number[2..8],
        &real.short_form(),
        "BRITT",
        "Britt",
        "britt",
        "BERG",
        "berg",
        "Åsa",
        "asabritt",
    ] {
        assert!(!shown.contains(v), "findings show {v}");
        assert!(!scan_log.contains(v), "the scan sent {v} to slapd");
    }
    // The only filters the scan sent hold no value at all.
    for line in scan_log.lines().filter(|l| l.contains("filter=")) {
        assert!(line.contains("filter=\"(objectClass=*)\""), "{line}");
    }
}

fn tls_target(slapd: &Slapd, url: &str, security: LdapSecurity, ca: bool) -> LdapTarget {
    let mut cfg = LdapConfig::new(
        target("ldap-tls"),
        url,
        security,
        &slapd.admin_dn(),
        SecretString::from(slapd.admin_password().to_string()),
        &slapd.people_dn(),
        &slapd.groups_dn(),
    )
    .unwrap();
    if ca {
        cfg.ca_file = Some(slapd.ca_file().unwrap().to_path_buf());
    }
    LdapTarget::new(cfg).unwrap()
}

/// LDAPS and StartTLS against a slapd serving a certificate from a throw-away CA: with
/// that CA configured both provision and read back; without it (system roots only) the
/// handshake is refused and `targets test` says it is TLS, not the network or the
/// password; nothing is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ldaps_and_starttls_verify_the_server_certificate() {
    let slapd = Slapd::builder().tls().start().unwrap();
    let ldaps = slapd.ldaps_url().unwrap();
    let starttls = slapd.starttls_url();
    let guard = guard(&key(), &[]);
    let now = at(2025, 9, 1);

    for (url, security, given) in [
        (&ldaps, LdapSecurity::Ldaps, "Tova"),
        (&starttls, LdapSecurity::StartTls, "Vera"),
    ] {
        let t = tls_target(&slapd, url, security, true);
        let d = t.diagnose(&guard, now).await;
        assert!(d.ok(), "{security:?}: {d:?}");
        let p = pupil(given, "Fiktiv", &[t.name()]);
        push(&t, &guard, &p, now).await.unwrap();
        let acc = check_account(&t, &p, now).await.unwrap();
        assert!(acc.ok(), "{security:?}: {acc:?}");
        // The leak scan reads over its own connection, secured the same way.
        let entries = t.read_everything().await.unwrap();
        assert!(
            entries.iter().any(|e| e
                .values
                .iter()
                .any(|(n, v)| n == "givenName" && **v == *given)),
            "{security:?}: {entries:?}"
        );

        // Without the CA: the server's certificate is not trusted.
        let untrusted = tls_target(&slapd, url, security, false);
        let d = untrusted.diagnose(&guard, now).await;
        assert!(!d.ok());
        let connect = d.probes.iter().find(|p| p.step == "connect").unwrap();
        assert!(!connect.ok);
        assert_eq!(connect.problem.unwrap().as_str(), "tls", "{d:?}");
        let refused = untrusted.read_everything().await.unwrap_err();
        assert!(
            matches!(refused, TargetError::Transport { kind: "TLS", .. }),
            "{security:?}: {refused}"
        );
        let q = pupil(&format!("{given}x"), "Fiktiv", &[untrusted.name()]);
        assert!(push(&untrusted, &guard, &q, now).await.is_err());
    }
    // Only the two pupils written over TLS are in the directory.
    let dump = slapd.dump().unwrap();
    assert!(dump.contains("Tova") && dump.contains("Vera"));
    assert!(!dump.contains("Tovax") && !dump.contains("Verax"));
}

/// Everything the target reads for a scan, flattened ([`flat`]).
async fn read_flat(t: &LdapTarget) -> Vec<(String, Vec<(String, String)>)> {
    t.read_everything()
        .await
        .unwrap()
        .iter()
        .map(flat)
        .collect()
}

/// Everything a scan entry holds, values as plain text, in order.
fn flat(e: &fiktiv_provisioning::ScannedEntry) -> (String, Vec<(String, String)>) {
    (
        e.locator.clone(),
        e.values
            .iter()
            .map(|(n, v)| (n.clone(), v.to_string()))
            .collect(),
    )
}

/// The leak scan's own reader (`ldap_wire`, `scan_conn`) against `ldap3` on the same
/// slapd: the same entries with the same values, in pages of 2, including binary and
/// non-ASCII values and repeated attributes; a base that does not exist gives nothing;
/// a wrong password is refused with the server's result code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scan_reader_reads_what_ldap3_reads() {
    use fiktiv_provisioning::ldap_parse::scanned_from_tag;
    use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
    use ldap3::{LdapConnAsync, Scope};

    let slapd = Slapd::start().unwrap();
    let t = target_for(&slapd);
    let guard = guard(&key(), &[]);
    for i in 0..5 {
        let p = pupil("Ella", &format!("Fiktiv{i}"), &[t.name()]);
        push(&t, &guard, &p, at(2025, 9, 1)).await.unwrap();
    }
    slapd
        .ldapadd(&format!(
            "dn: uid=odd,{people}\nobjectClass: inetOrgPerson\nuid: odd\ncn: Åsa Öberg\n\
             cn: second\nsn: Ünal\njpegPhoto:: /9j/4AAQ\ndescription: {long}\n",
            people = slapd.people_dn(),
            long = "x".repeat(300),
        ))
        .unwrap();
    let ours = read_flat(&t).await;

    let (conn, mut ldap) = LdapConnAsync::new(&slapd.url()).await.unwrap();
    ldap3::drive!(conn);
    ldap.simple_bind(&slapd.admin_dn(), slapd.admin_password())
        .await
        .unwrap()
        .success()
        .unwrap();
    let mut theirs = Vec::new();
    // What the scan reads by default: the server's naming context, whole.
    for base in [slapd.base_dn().to_string()] {
        let adapters: Vec<Box<dyn Adapter<String, Vec<String>>>> =
            vec![Box::new(EntriesOnly::new()), Box::new(PagedResults::new(2))];
        let mut stream = ldap
            .streaming_search_with(
                adapters,
                &base,
                Scope::Subtree,
                "(objectClass=*)",
                vec!["*".to_string(), "entryUUID".to_string()],
            )
            .await
            .unwrap();
        while let Some(re) = stream.next().await.unwrap() {
            let e = scanned_from_tag(t.name(), re.0, theirs.len()).unwrap();
            theirs.push(flat(&e));
        }
        assert_eq!(stream.finish().await.rc, 0);
    }
    assert!(ours.len() >= 9, "{}", ours.len());
    assert_eq!(ours, theirs);
    assert!(ours
        .iter()
        .any(|(_, vs)| vs.contains(&("sn".to_string(), "Ünal".to_string()))));

    // A scan base that does not exist: no entries, no error.
    let mut cfg = config_for(&slapd);
    cfg.scan_bases = vec![format!("ou=nowhere,{}", slapd.base_dn())];
    assert!(LdapTarget::new(cfg.clone())
        .unwrap()
        .read_everything()
        .await
        .unwrap()
        .is_empty());
    // A wrong password: the bind's result code, nothing read.
    cfg.bind_password = SecretString::from("wrong".to_string());
    let err = LdapTarget::new(cfg)
        .unwrap()
        .read_everything()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            TargetError::Ldap {
                op: "bind",
                rc: 49,
                ..
            }
        ),
        "{err}"
    );
}

/// A search page larger than the scan's hand-over size reaches the matcher in parts, as
/// it arrives, and the parts together are every entry, in order, as read whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_search_page_is_handed_over_in_parts() {
    let slapd = Slapd::start().unwrap();
    let mut cfg = config_for(&slapd);
    cfg.page_size = 1000;
    let t = LdapTarget::new(cfg).unwrap();
    let big = "x".repeat(10_000);
    let ldif: String = (0..60)
        .map(|i| {
            format!(
                "dn: uid=big{i},{people}\nobjectClass: inetOrgPerson\nuid: big{i}\ncn: Big {i}\n\
                 sn: Big\ndescription: {big}\n\n",
                people = slapd.people_dn(),
            )
        })
        .collect();
    slapd.ldapadd(&ldif).unwrap();
    let mut parts = Vec::new();
    let read = t
        .read_everything_in_pages(&mut |page| parts.push(page))
        .await
        .unwrap();
    // 600 KB of people in one search page of the naming context: three parts at least.
    assert!(parts.len() >= 3, "{} parts", parts.len());
    assert!(parts.iter().all(|p| !p.is_empty()));
    let mut joined = Vec::new();
    for p in parts {
        joined.extend(p.into_entries().unwrap().iter().map(flat));
    }
    assert_eq!(joined.len(), read);
    let whole = read_flat(&t).await;
    assert_eq!(joined, whole);
    assert!(whole.len() >= 60);
}

/// A scan cut short (the connection dropped after a few pages, or the time limit hit)
/// says why, and still reports what it found in the pages it read: a real pupil in the
/// first pages is found even though the rest of the directory could not be read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_cut_short_says_why_and_keeps_what_it_found() {
    use fiktiv_provisioning::ScanReadError;
    use fiktiv_tests::{Fault, FaultProxy};
    use std::sync::Arc;
    use std::time::Duration;

    let slapd = Slapd::start().unwrap();
    let key = key();
    let real = astrid();
    let index = Arc::new(index_map(&key, &[&real]));
    let people = slapd.people_dn();
    let mut ldif = format!(
        "dn: uid=planted,{people}\nobjectClass: inetOrgPerson\nuid: planted\ncn: X\nsn: X\n\
         employeeNumber: {}\n\n",
        real.number
    );
    for i in 0..40 {
        ldif.push_str(&format!(
            "dn: uid=filler{i},{people}\nobjectClass: inetOrgPerson\nuid: filler{i}\n\
             cn: Filler {i}\nsn: Filler\n\n"
        ));
    }
    slapd.ldapadd(&ldif).unwrap();
    let proxy = FaultProxy::for_slapd(&slapd).unwrap();
    let mut cfg = config_for(&slapd);
    cfg.url = proxy.url_for("ldap");
    cfg.timeout = Duration::from_secs(10);
    let t = LdapTarget::new(cfg).unwrap();
    let found_real = |f: &[fiktiv_provisioning::Finding]| {
        f.iter()
            .any(|f| f.rule == Rule::Number && f.cases == vec![real.case])
    };

    let whole = read_and_scan(&t, &key, Arc::clone(&index), Duration::from_secs(60)).await;
    assert!(whole.error.is_none(), "{:?}", whole.error);
    assert!(whole.read > 40 && found_real(&whole.findings));

    // Cut after a few pages (the planted entry comes right after its base's entry).
    proxy.set(Fault::DropAfterBytes(2500)).unwrap();
    let cut = read_and_scan(&t, &key, Arc::clone(&index), Duration::from_secs(60)).await;
    assert!(
        matches!(
            cut.error,
            Some(ScanReadError::Target(TargetError::Transport { .. }))
        ),
        "{:?}",
        cut.error
    );
    assert!(
        cut.read > 0 && cut.read < whole.read,
        "{} of {}",
        cut.read,
        whole.read
    );
    assert!(found_real(&cut.findings), "{:?}", cut.findings);

    // Too slow for the time limit.
    proxy.set(Fault::Delay(Duration::from_secs(3))).unwrap();
    let slow = read_and_scan(&t, &key, Arc::clone(&index), Duration::from_millis(500)).await;
    assert!(
        matches!(slow.error, Some(ScanReadError::TimedOut(_))),
        "{:?}",
        slow.error
    );
    assert_eq!(
        slow.error.unwrap().to_string(),
        "reading took longer than 0.5 s"
    );
    proxy.clear().unwrap();
}

/// The leak scan reads every naming context the server advertises by default, not only
/// the bases Fiktiv writes to: a leftover entry of the real pupil in another branch is
/// found, with its rule, attributes and locator. Narrowed by `scan_bases`, it reads only
/// those (and says which).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leak_scan_reads_every_naming_context_by_default() {
    let slapd = Slapd::start().unwrap();
    let t = target_for(&slapd);
    let key = key();
    let real = astrid();
    let index = index_map(&key, &[&real]);
    assert_eq!(t.scan_bases().await.unwrap(), [slapd.base_dn().to_string()]);

    // A branch Fiktiv never writes to, with an old account of the real pupil: the name
    // transliterated, the birth date in another attribute.
    slapd
        .ldapadd(&format!(
            "dn: ou=legacy,{base}\nobjectClass: organizationalUnit\nou: legacy\n\n\
             dn: uid=old1,ou=legacy,{base}\nobjectClass: inetOrgPerson\nuid: old1\n\
             cn: Aasa-Britt Oeberg\nsn: Oeberg\ndescription: 2012-03-04\n",
            base = slapd.base_dn(),
        ))
        .unwrap();
    let entries = t.read_everything().await.unwrap();
    let findings = scan(&entries, &key, &index);
    let hit = findings
        .iter()
        .find(|f| f.rule == Rule::NameBirth)
        .unwrap_or_else(|| panic!("{findings:?}"));
    assert!(hit.entry.starts_with("entryUUID="), "{hit:?}");
    assert!(hit.attributes.iter().any(|a| a == "description"), "{hit:?}");
    assert_eq!(hit.cases, vec![real.case]);

    // Narrowed to the people and groups bases: that branch is not read.
    let mut cfg = config_for(&slapd);
    cfg.scan_bases = vec![slapd.people_dn(), slapd.groups_dn()];
    let narrow = LdapTarget::new(cfg).unwrap();
    assert_eq!(
        narrow.scan_bases().await.unwrap(),
        [slapd.people_dn(), slapd.groups_dn()]
    );
    let entries = narrow.read_everything().await.unwrap();
    assert!(scan(&entries, &key, &index).is_empty());
}

/// `targets test` tries a number of the scheme in force: a directory whose number
/// attribute takes digits only (`x121Address`, NumericString) refuses the SS 12000
/// temporary form and says so; it takes a number of digits; the probe entry is gone
/// either way. A target that writes no number says nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_number_probe_reports_a_scheme_the_directory_refuses() {
    use fiktiv_provisioning::diagnose::Diagnosis;
    let slapd = Slapd::start().unwrap();
    let mut cfg = config_for(&slapd);
    cfg.schema = LdapSchema::InetOrgPerson;
    cfg.number_attribute = Some("x121Address".into());
    let t = LdapTarget::new(cfg).unwrap();
    let guard = guard(&key(), &[]);
    let probe = |n: &str| FictitiousNumber::new(Country::Se, n).unwrap();

    let mut d = Diagnosis::new(t.name().clone());
    t.probe_number(&guard, &probe("20130101TF01"), &mut d).await;
    let step = d.probes.iter().find(|p| p.step == "number").unwrap();
    assert!(!step.ok, "{d:?}");
    assert!(step.detail.contains("x121Address"), "{d:?}");

    let mut d = Diagnosis::new(t.name().clone());
    t.probe_number(&guard, &probe("201301011235"), &mut d).await;
    let step = d.probes.iter().find(|p| p.step == "number").unwrap();
    assert!(step.ok, "{d:?}");
    // No probe entry is left.
    assert!(!slapd.dump().unwrap().contains("fiktiv-probe-"));

    // No number attribute: nothing to try.
    let mut plain = config_for(&slapd);
    plain.schema = LdapSchema::InetOrgPerson;
    let t = LdapTarget::new(plain).unwrap();
    let mut d = Diagnosis::new(t.name().clone());
    t.probe_number(&guard, &probe("20130101TF01"), &mut d).await;
    assert!(d.probes.is_empty(), "{d:?}");
}
