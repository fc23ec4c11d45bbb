//! The peers are real and work: each test starts one, uses it the way Fiktiv will, and
//! checks the result by reading it back from the peer itself.
//!
//! A missing peer fails the test with the install hint; nothing here skips. Every test
//! gets its own ports and directories, so they run in parallel.

// Test code: a failed unwrap/expect is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::TcpStream;
use std::process::Command;

use fiktiv_tests::{
    chromedriver_path, chromium_path, free_port, ScimServer, Slapd, SmtpServer, TestDatabase,
};
use serde_json::json;
use sqlx::Connection as _;

/// A fictitious pupil as Fiktiv would write it: inetOrgPerson + eduPerson +
/// norEduPerson, with the locally issued number in norEduPersonLIN.
fn fictitious_pupil(slapd: &Slapd, uid: &str) -> String {
    format!(
        "dn: uid={uid},{people}\n\
         objectClass: inetOrgPerson\n\
         objectClass: eduPerson\n\
         objectClass: norEduPerson\n\
         uid: {uid}\n\
         cn: Ella Fiktiv\n\
         givenName: Ella\n\
         sn: Fiktiv\n\
         eduPersonPrincipalName: {uid}@skole.example.org\n\
         eduPersonAffiliation: student\n\
         eduPersonAffiliation: member\n\
         eduPersonPrimaryAffiliation: student\n\
         eduPersonEntitlement: urn:mace:feide.no:go:group:u:skole:5a\n\
         norEduPersonLIN: skole.example.org:localnin:{uid}\n\
         norEduPersonBirthDate: 20150314\n",
        people = slapd.people_dn()
    )
}

#[test]
fn slapd_stores_and_finds_an_edu_and_noredu_person() {
    let slapd = Slapd::start().expect("slapd must start");
    assert!(slapd.url().starts_with("ldap://127.0.0.1:"));
    assert_eq!(slapd.base_dn(), "dc=example,dc=org");
    assert_eq!(slapd.admin_dn(), "cn=admin,dc=example,dc=org");

    let tree = slapd
        .ldapsearch("(objectClass=organizationalUnit)", &["ou"])
        .unwrap();
    assert!(tree.contains("dn: ou=people,dc=example,dc=org"), "{tree}");
    assert!(tree.contains("dn: ou=groups,dc=example,dc=org"), "{tree}");

    slapd.ldapadd(&fictitious_pupil(&slapd, "p1001")).unwrap();
    let found = slapd
        .ldapsearch("(norEduPersonLIN=skole.example.org:localnin:p1001)", &[])
        .unwrap();
    assert!(
        found.contains("dn: uid=p1001,ou=people,dc=example,dc=org"),
        "{found}"
    );
    assert!(found.contains("objectClass: norEduPerson"), "{found}");
    assert!(
        found.contains("eduPersonPrincipalName: p1001@skole.example.org"),
        "{found}"
    );
    assert!(found.contains("norEduPersonBirthDate: 20150314"), "{found}");

    // The search filter is in the server's log: what later leak tests rely on.
    assert!(slapd
        .log()
        .unwrap()
        .contains("norEduPersonLIN=skole.example.org:localnin:p1001"));
    assert!(slapd.dump().unwrap().contains("uid: p1001"));
    assert!(!slapd.db_bytes().unwrap().is_empty());
}

#[test]
fn slapd_checks_the_schema() {
    let slapd = Slapd::start().unwrap();
    // norEduPersonLIN without the norEduPerson class is a schema violation.
    let err = slapd
        .ldapadd(&format!(
            "dn: uid=x,{}\nobjectClass: inetOrgPerson\nuid: x\ncn: X\nsn: X\n\
             norEduPersonLIN: skole.example.org:localnin:x\n",
            slapd.people_dn()
        ))
        .unwrap_err();
    assert!(format!("{err:#}").contains("not allowed"), "{err:#}");
    // Single-valued per the norEdu* specification.
    let err = slapd
        .ldapadd(&format!(
            "dn: uid=y,{}\nobjectClass: inetOrgPerson\nobjectClass: norEduPerson\nuid: y\n\
             cn: Y\nsn: Y\nnorEduPersonBirthDate: 20150314\nnorEduPersonBirthDate: 20150315\n",
            slapd.people_dn()
        ))
        .unwrap_err();
    assert!(format!("{err:#}").contains("multiple values"), "{err:#}");
}

#[test]
fn slapd_stop_and_start_again_keeps_port_and_data() {
    let mut slapd = Slapd::start().unwrap();
    slapd.ldapadd(&fictitious_pupil(&slapd, "p2002")).unwrap();
    let port = slapd.port();

    slapd.stop().unwrap();
    assert!(!slapd.is_running());
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "nothing may listen on the port of a stopped slapd"
    );
    assert!(slapd.ldapsearch("(uid=p2002)", &[]).is_err());

    slapd.start_again().unwrap();
    assert_eq!(slapd.port(), port);
    let found = slapd.ldapsearch("(uid=p2002)", &["uid"]).unwrap();
    assert!(found.contains("uid: p2002"), "{found}");
}

#[test]
fn slapd_with_another_suffix() {
    let slapd = Slapd::builder().suffix("dc=skolan,dc=se").start().unwrap();
    assert_eq!(slapd.people_dn(), "ou=people,dc=skolan,dc=se");
    slapd.ldapadd(&fictitious_pupil(&slapd, "p3003")).unwrap();
    assert!(slapd
        .ldapsearch("(uid=p3003)", &[])
        .unwrap()
        .contains("dn: uid=p3003,ou=people,dc=skolan,dc=se"));
}

#[test]
fn slapd_drop_stops_the_server_and_removes_its_directory() {
    let slapd = Slapd::start().unwrap();
    let (dir, port) = (slapd.dir().to_path_buf(), slapd.port());
    assert!(dir.join("db/data.mdb").is_file());
    drop(slapd);
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    if std::env::var_os("FIKTIV_TEST_KEEP_DIRS").is_none() {
        assert!(!dir.exists(), "{} must be removed", dir.display());
    }
}

#[test]
fn two_slapds_run_side_by_side() {
    let a = Slapd::start().unwrap();
    let b = Slapd::start().unwrap();
    assert_ne!(a.port(), b.port());
    a.ldapadd(&fictitious_pupil(&a, "only-in-a")).unwrap();
    assert!(b.ldapsearch("(uid=only-in-a)", &[]).unwrap().is_empty());
}

#[test]
fn scim_server_creates_finds_and_guards_users() {
    let scim = ScimServer::start().expect("scim2-server must start");
    assert!(scim.base_url().starts_with("http://127.0.0.1:"));
    assert!(scim.base_url().ends_with("/v2"));

    let user = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "ella.fiktiv",
        "externalId": "0b6c5b1e-opaque",
        "name": { "givenName": "Ella", "familyName": "Fiktiv" },
        "active": true,
    });
    let created = scim.request("POST", "/Users", Some(&user)).unwrap();
    assert_eq!(created.status, 201, "{}", created.text());
    let id = created.json().unwrap()["id"].as_str().unwrap().to_owned();

    let fetched = scim.request("GET", &format!("/Users/{id}"), None).unwrap();
    assert_eq!(fetched.status, 200, "{}", fetched.text());
    assert_eq!(fetched.json().unwrap()["userName"], "ella.fiktiv");

    let filtered = scim
        .request(
            "GET",
            "/Users?filter=externalId%20eq%20%220b6c5b1e-opaque%22",
            None,
        )
        .unwrap();
    assert_eq!(
        filtered.json().unwrap()["totalResults"],
        1,
        "{}",
        filtered.text()
    );

    // Without the token, or with a wrong one: refused, and nothing is created.
    let anonymous = scim.request_without_token("GET", "/Users", None).unwrap();
    assert_eq!(anonymous.status, 401, "{}", anonymous.text());
    let anonymous_post = scim
        .request_without_token("POST", "/Users", Some(&user))
        .unwrap();
    assert_eq!(anonymous_post.status, 401);
    let wrong = fiktiv_tests::http::request(
        ([127, 0, 0, 1], scim.port()).into(),
        "GET",
        "/v2/Users",
        &[("Authorization", "Bearer not-the-token")],
        None,
    )
    .unwrap();
    assert_eq!(wrong.status, 401);

    let dump = scim.dump().unwrap();
    assert!(dump.contains("ella.fiktiv"), "{dump}");
    assert_eq!(scim.list_all("/Users").unwrap().len(), 1);

    let final_dump = scim.stop_and_dump().unwrap();
    assert!(final_dump.contains("0b6c5b1e-opaque"), "{final_dump}");
}

#[test]
fn scim_servers_are_independent() {
    let a = ScimServer::start().unwrap();
    let b = ScimServer::start().unwrap();
    assert_ne!(a.token(), b.token());
    let user = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "only.in.a",
    });
    assert_eq!(
        a.request("POST", "/Users", Some(&user)).unwrap().status,
        201
    );
    assert!(b.list_all("/Users").unwrap().is_empty());
    // a's token is no good at b.
    let cross = fiktiv_tests::http::request(
        ([127, 0, 0, 1], b.port()).into(),
        "GET",
        "/v2/Users",
        &[("Authorization", &format!("Bearer {}", a.token()))],
        None,
    )
    .unwrap();
    assert_eq!(cross.status, 401);
}

fn database_exists(name: &str) -> bool {
    let url = std::env::var("FIKTIV_TEST_DATABASE_URL").unwrap();
    let out = Command::new("psql")
        .args(["-X", "-At", "--dbname", &url, "-c"])
        .arg(format!(
            "SELECT count(*) FROM pg_database WHERE datname = '{name}'"
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim() == "1"
}

#[tokio::test]
async fn postgres_database_is_created_usable_and_dropped() {
    let db = TestDatabase::postgres().expect("PostgreSQL must be reachable");
    let name = db.name().unwrap().to_owned();
    assert!(name.starts_with("fiktiv_test_"));
    assert!(db.url().ends_with(&format!("/{name}")), "{}", db.url());
    assert!(database_exists(&name));

    let mut conn = sqlx::PgConnection::connect(db.url()).await.unwrap();
    let current: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(current, name);
    sqlx::query("CREATE TABLE canary (v text)")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("INSERT INTO canary VALUES ('CANARY-7f3a')")
        .execute(&mut conn)
        .await
        .unwrap();
    // The open connection must not stop the drop (DROP ... WITH (FORCE)).
    let dump = db.pg_dump().unwrap();
    assert!(
        dump.windows(11).any(|w| w == b"CANARY-7f3a"),
        "pg_dump must contain the row"
    );

    drop(db);
    assert!(!database_exists(&name), "{name} must be dropped");
    drop(conn);
}

#[test]
fn postgres_without_url_is_an_error_not_a_skip() {
    let err = TestDatabase::postgres_at(None).unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("FIKTIV_TEST_DATABASE_URL is not set"), "{msg}");
    assert!(
        msg.contains("postgres://postgres@127.0.0.1:5432/postgres"),
        "{msg}"
    );
}

#[tokio::test]
async fn sqlite_url_works_with_sqlx() {
    let db = TestDatabase::sqlite().unwrap();
    assert!(db.url().starts_with("sqlite://") && db.url().ends_with("/fiktiv.db?mode=rwc"));
    let mut conn = sqlx::SqliteConnection::connect(db.url()).await.unwrap();
    sqlx::query("CREATE TABLE canary (v TEXT)")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("INSERT INTO canary VALUES ('CANARY-19c2')")
        .execute(&mut conn)
        .await
        .unwrap();
    let v: String = sqlx::query_scalar("SELECT v FROM canary")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(v, "CANARY-19c2");
    conn.close().await.unwrap();
    let raw = db.raw_bytes().unwrap();
    assert!(raw.windows(11).any(|w| w == b"CANARY-19c2"));

    let path = db.sqlite_path().unwrap().to_path_buf();
    assert!(path.is_file());
    drop(db);
    if std::env::var_os("FIKTIV_TEST_KEEP_DIRS").is_none() {
        assert!(!path.exists());
    }
}

#[test]
fn chromium_and_chromedriver_are_installed() {
    let chromium = chromium_path().expect("chromium must be installed");
    let driver = chromedriver_path().expect("chromedriver must be installed");
    for exe in [chromium, driver] {
        let out = Command::new(&exe).arg("--version").output().unwrap();
        assert!(out.status.success(), "{} --version failed", exe.display());
        assert!(String::from_utf8_lossy(&out.stdout).contains("Chrom"));
    }
}

#[test]
fn free_ports_are_distinct() {
    let ports: std::collections::HashSet<u16> = (0..50).map(|_| free_port().unwrap()).collect();
    assert_eq!(ports.len(), 50);
}

/// Reads one SMTP reply (all its lines) and returns its code and the last line.
fn smtp_reply(r: &mut impl std::io::BufRead) -> (String, String) {
    loop {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        assert!(line.len() >= 4, "short SMTP reply line {line:?}");
        if line.as_bytes()[3] == b' ' {
            return (line[..3].to_owned(), line);
        }
    }
}

#[test]
fn smtp_server_refuses_mail_without_tls_and_stops_on_drop() {
    use std::io::{BufReader, Write as _};
    let smtp = SmtpServer::start().unwrap();
    assert!(smtp.ca_file().is_file());
    let port = smtp.port();
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut w = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    assert_eq!(smtp_reply(&mut r).0, "220");
    w.write_all(b"EHLO test.example\r\n").unwrap();
    let (code, _) = smtp_reply(&mut r);
    assert_eq!(code, "250");
    // Like a municipality's relay: no mail, and no AUTH, before STARTTLS.
    w.write_all(b"MAIL FROM:<a@example.org>\r\n").unwrap();
    let (code, line) = smtp_reply(&mut r);
    assert_eq!(code, "530", "{line}");
    w.write_all(b"AUTH PLAIN AGZpa3Rpdi1yZWxheQB4\r\n").unwrap();
    let (code, line) = smtp_reply(&mut r);
    assert!(code.starts_with('5'), "{line}");
    w.write_all(b"QUIT\r\n").unwrap();
    assert!(smtp.messages().unwrap().is_empty());
    drop(smtp);
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the SMTP server still listens after drop"
    );
}
