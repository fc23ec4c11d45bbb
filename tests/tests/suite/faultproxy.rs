//! The fault proxy against the real peers: each fault is shown to fire (the client sees
//! it and the proxy's counters say so) and to go away again when cleared.
//!
//! slapd is driven with the `ldapsearch`/`ldapadd` programs pointed at the proxy;
//! scim2-server with the harness's HTTP client, or a raw socket where a test needs the
//! exact bytes that arrived.

// Test code: a failed unwrap/expect is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{ErrorKind, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use fiktiv_tests::{http, Fault, FaultProxy, HttpResponse, ScimServer, Slapd, MAX_DELAY};
use serde_json::json;

const SCIM_JSON: &str = "application/scim+json";

// ---------------------------------------------------------------- LDAP helpers

fn ldapsearch_via(url: &str, slapd: &Slapd, filter: &str) -> Output {
    Command::new("ldapsearch")
        .args(["-x", "-LLL", "-o", "ldif-wrap=no", "-o", "nettimeout=10"])
        .args([
            "-H",
            url,
            "-D",
            &slapd.admin_dn(),
            "-w",
            slapd.admin_password(),
        ])
        .args(["-b", slapd.base_dn(), "-s", "sub", filter, "dn"])
        .stdin(Stdio::null())
        .output()
        .expect("ldapsearch (ldap-utils) must run")
}

fn search_ok(url: &str, slapd: &Slapd, filter: &str) -> String {
    let out = ldapsearch_via(url, slapd, filter);
    assert!(
        out.status.success(),
        "ldapsearch via {url} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn ldapadd_via(url: &str, slapd: &Slapd, ldif: &str) -> Output {
    let mut child = Command::new("ldapadd")
        .args(["-x", "-o", "nettimeout=10", "-H", url])
        .args(["-D", &slapd.admin_dn(), "-w", slapd.admin_password()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ldapadd (ldap-utils) must run");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(ldif.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn pupil_dn(slapd: &Slapd, uid: &str) -> String {
    format!("uid={uid},{}", slapd.people_dn())
}

fn pupil_ldif(slapd: &Slapd, uid: &str) -> String {
    format!(
        "dn: {}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: Ella Fiktiv\nsn: Fiktiv\n",
        pupil_dn(slapd, uid)
    )
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

// ---------------------------------------------------------------- HTTP helpers

fn scim_request(
    proxy: &FaultProxy,
    scim: &ScimServer,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
) -> anyhow::Result<HttpResponse> {
    let auth = format!("Bearer {}", scim.token());
    let mut headers = vec![("Accept", SCIM_JSON), ("Authorization", auth.as_str())];
    if body.is_some() {
        headers.push(("Content-Type", SCIM_JSON));
    }
    let body = body.map(|b| serde_json::to_vec(b).unwrap());
    http::request(
        proxy.addr(),
        method,
        &format!("/v2{path}"),
        &headers,
        body.as_deref(),
    )
}

fn get_users(proxy: &FaultProxy, scim: &ScimServer) -> HttpResponse {
    scim_request(proxy, scim, "GET", "/Users", None).expect("GET /Users through the proxy")
}

fn user(user_name: &str, external_id: &str) -> serde_json::Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": user_name,
        "externalId": external_id,
    })
}

/// How many `GET /v2/Users` requests scim2-server logged: what reached it.
fn upstream_user_gets(scim: &ScimServer) -> usize {
    scim.log().unwrap().matches("\"GET /v2/Users ").count()
}

/// A raw request through the proxy; returns every byte that came back before the close.
fn raw_exchange(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut got = Vec::new();
    stream
        .read_to_end(&mut got)
        .expect("the proxy must close, not hang");
    got
}

// ---------------------------------------------------------------- slapd

#[test]
fn slapd_through_the_proxy_works_fails_under_drops_and_recovers() {
    let slapd = Slapd::start().unwrap();
    let proxy = FaultProxy::for_slapd(&slapd).unwrap();
    let url = proxy.url_for("ldap");
    assert_eq!(url, format!("ldap://127.0.0.1:{}", proxy.port()));
    assert_ne!(proxy.port(), slapd.port());

    let tree = search_ok(&url, &slapd, "(objectClass=organizationalUnit)");
    assert!(tree.contains("dn: ou=people,dc=example,dc=org"), "{tree}");

    let added = ldapadd_via(&url, &slapd, &pupil_ldif(&slapd, "proxy-pupil-1"));
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    // It reached the directory itself, not just the proxy.
    assert!(slapd
        .ldapsearch("(uid=proxy-pupil-1)", &["uid"])
        .unwrap()
        .contains("uid: proxy-pupil-1"));
    // And the DN that was sent is on the recorded wire (BER keeps it contiguous).
    let dn = pupil_dn(&slapd, "proxy-pupil-1");
    assert!(contains(&proxy.recorded_to_upstream(), dn.as_bytes()));
    assert!(contains(&proxy.recorded(), dn.as_bytes()));
    assert!(contains(
        &proxy.recorded_from_upstream(),
        b"ou=people,dc=example,dc=org"
    ));
    assert!(!contains(&proxy.recorded_from_upstream(), dn.as_bytes()));
    assert!(!proxy.recording_truncated());
    let stats = proxy.stats();
    assert_eq!(stats.connections_accepted, 2);
    assert_eq!(stats.faults_injected, 0);
    assert_eq!(stats.requests_seen, 0, "a TCP proxy counts no requests");

    proxy.set(Fault::DropConnections).unwrap();
    let out = ldapsearch_via(&url, &slapd, "(objectClass=*)");
    assert!(!out.status.success(), "a dropped connection must fail");
    let out = ldapadd_via(&url, &slapd, &pupil_ldif(&slapd, "proxy-pupil-2"));
    assert!(!out.status.success(), "a dropped connection must fail");
    let stats = proxy.stats();
    assert_eq!(stats.connections_accepted, 4);
    assert_eq!(stats.faults_injected, 2, "one per dropped connection");
    assert_eq!(stats.upstream_connect_failures, 0);
    // Nothing got through.
    assert_eq!(slapd.ldapsearch("(uid=proxy-pupil-2)", &[]).unwrap(), "");

    proxy.clear().unwrap();
    assert!(search_ok(&url, &slapd, "(uid=proxy-pupil-1)").contains(&dn));

    // Only the next connection is dropped; then it passes by itself.
    proxy.set_times(Fault::DropConnections, 1).unwrap();
    assert!(!ldapsearch_via(&url, &slapd, "(uid=*)").status.success());
    assert_eq!(proxy.fault(), Fault::None);
    assert!(search_ok(&url, &slapd, "(uid=proxy-pupil-1)").contains(&dn));
    assert_eq!(proxy.stats().faults_injected, 3);
}

#[test]
fn slapd_refused_then_cleared_listens_on_the_same_port() {
    let slapd = Slapd::start().unwrap();
    let proxy = FaultProxy::for_slapd(&slapd).unwrap();
    let addr = proxy.addr();
    let url = proxy.url_for("ldap");
    search_ok(&url, &slapd, "(ou=people)");

    proxy.set(Fault::Refuse).unwrap();
    let err = TcpStream::connect(addr).expect_err("a refusing proxy must not accept");
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
    assert!(!ldapsearch_via(&url, &slapd, "(ou=people)").status.success());
    // Setting another fault also listens again; setting Refuse twice is harmless.
    proxy.set(Fault::Refuse).unwrap();

    proxy.clear().unwrap();
    assert_eq!(proxy.addr(), addr, "the port is kept");
    TcpStream::connect(addr).expect("listening again on the same port");
    assert!(search_ok(&url, &slapd, "(ou=people)").contains("dn: ou=people"));
}

#[test]
fn setting_drop_connections_closes_open_connections() {
    let slapd = Slapd::start().unwrap();
    let proxy = FaultProxy::for_slapd(&slapd).unwrap();
    let mut stream = TcpStream::connect(proxy.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // An anonymous LDAPv3 bind (message 1), answered through the proxy: the
    // connection is open end to end before the fault is set.
    stream
        .write_all(&[
            0x30, 0x0c, 0x02, 0x01, 0x01, 0x60, 0x07, 0x02, 0x01, 0x03, 0x04, 0x00, 0x80, 0x00,
        ])
        .unwrap();
    let mut response = [0u8; 14];
    stream.read_exact(&mut response).unwrap();
    assert_eq!(response[5], 0x61, "a BindResponse: {response:02x?}");
    assert_eq!(&response[7..10], &[0x0a, 0x01, 0x00], "resultCode success");
    assert_eq!(proxy.stats().connections_open, 1);

    proxy.set(Fault::DropConnections).unwrap();
    assert_eq!(proxy.stats().connections_cut, 1, "the open connection");
    assert_eq!(proxy.stats().faults_injected, 0, "no new connection yet");
    let mut rest = Vec::new();
    let read = stream.read_to_end(&mut rest);
    assert!(
        matches!(read, Ok(0)),
        "the client must see the connection end: {read:?} {rest:02x?}"
    );
}

#[test]
fn slapd_cut_and_slow_responses() {
    let slapd = Slapd::start().unwrap();
    let proxy = FaultProxy::for_slapd(&slapd).unwrap();
    let url = proxy.url_for("ldap");

    // The bind response alone is 14 bytes: cut inside it.
    proxy.set(Fault::DropAfterBytes(4)).unwrap();
    let out = ldapsearch_via(&url, &slapd, "(ou=people)");
    assert!(!out.status.success(), "a cut response must fail");
    assert_eq!(proxy.stats().faults_injected, 1);
    let from_upstream = proxy.recorded_from_upstream();
    assert!(from_upstream.len() >= 14, "slapd answered in full");

    let delay = Duration::from_millis(250);
    proxy.set(Fault::Delay(delay)).unwrap();
    let started = Instant::now();
    let tree = search_ok(&url, &slapd, "(ou=people)");
    assert!(started.elapsed() >= delay, "{:?}", started.elapsed());
    assert!(tree.contains("dn: ou=people"), "{tree}");
    assert!(proxy.stats().faults_injected >= 2);

    proxy.clear().unwrap();
    search_ok(&url, &slapd, "(ou=people)");
}

#[test]
fn dropping_the_proxy_closes_its_port() {
    let slapd = Slapd::start().unwrap();
    let proxy = FaultProxy::for_slapd(&slapd).unwrap();
    let addr = proxy.addr();
    // An idle open connection must not keep the proxy (or its thread) alive.
    let mut idle = TcpStream::connect(addr).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    search_ok(&proxy.url_for("ldap"), &slapd, "(ou=people)");
    drop(proxy);
    let err = TcpStream::connect(addr).expect_err("the port must be closed");
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
    let mut rest = Vec::new();
    assert!(matches!(idle.read_to_end(&mut rest), Ok(0)));
}

// ---------------------------------------------------------------- scim2-server

#[test]
fn scim_503_for_the_next_two_requests_then_200() {
    let scim = ScimServer::start().unwrap();
    let proxy = FaultProxy::for_scim(&scim).unwrap();
    assert_eq!(get_users(&proxy, &scim).status, 200);
    let reached = upstream_user_gets(&scim);
    assert_eq!(reached, 1, "the log counts what reached scim2-server");

    proxy.set_times(Fault::status(503), 2).unwrap();
    let responses: Vec<HttpResponse> = (0..3).map(|_| get_users(&proxy, &scim)).collect();
    let statuses: Vec<u16> = responses.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [503, 503, 200]);
    assert_eq!(responses[0].header("x-fiktiv-fault"), Some("injected"));
    assert_eq!(responses[0].header("connection"), Some("close"));
    assert_eq!(responses[0].json().unwrap()["status"], "503");
    assert_eq!(responses[2].header("x-fiktiv-fault"), None);
    assert!(responses[2].json().unwrap()["totalResults"].is_u64());

    let stats = proxy.stats();
    assert_eq!(stats.faults_injected, 2);
    assert_eq!(stats.requests_seen, 4);
    assert_eq!(proxy.fault(), Fault::None, "the budget is used up");
    // The two injected requests never reached the server.
    assert_eq!(upstream_user_gets(&scim), reached + 1);
}

#[test]
fn scim_429_carries_retry_after() {
    let scim = ScimServer::start().unwrap();
    let proxy = FaultProxy::for_scim(&scim).unwrap();
    proxy.set_times(Fault::too_many_requests(7), 1).unwrap();
    let limited = get_users(&proxy, &scim);
    assert_eq!(limited.status, 429);
    assert_eq!(limited.header("retry-after"), Some("7"));
    assert_eq!(limited.json().unwrap()["status"], "429");
    let next = get_users(&proxy, &scim);
    assert_eq!(next.status, 200);
    assert_eq!(next.header("retry-after"), None);
    assert_eq!(proxy.stats().faults_injected, 1);
    assert_eq!(upstream_user_gets(&scim), 1);
}

#[test]
fn scim_every_third_request_fails_and_bodies_are_consumed() {
    let scim = ScimServer::start().unwrap();
    let proxy = FaultProxy::for_scim(&scim).unwrap();
    proxy
        .set(Fault::HttpStatus {
            status: 500,
            every_nth: 3,
            retry_after: None,
        })
        .unwrap();
    let statuses: Vec<u16> = (0..6)
        .map(|i| {
            // POSTs with bodies: an injected answer must still read the body first.
            let body = user(&format!("nth-{i}"), &format!("ext-nth-{i}"));
            scim_request(&proxy, &scim, "POST", "/Users", Some(&body))
                .unwrap()
                .status
        })
        .collect();
    assert_eq!(statuses, [201, 201, 500, 201, 201, 500]);
    assert_eq!(proxy.stats().faults_injected, 2);
    let names: Vec<String> = scim
        .list_all("/Users")
        .unwrap()
        .iter()
        .map(|u| u["userName"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names.len(), 4, "{names:?}");
    assert!(!names.contains(&"nth-2".to_owned()) && !names.contains(&"nth-5".to_owned()));
    // Still recorded: the injected requests were on the wire to the target.
    assert!(contains(&proxy.recorded_to_upstream(), b"ext-nth-2"));

    proxy.clear().unwrap();
    assert_eq!(get_users(&proxy, &scim).status, 200);
}

#[tokio::test]
async fn scim_delay_holds_the_response_inside_a_tokio_test() {
    let scim = ScimServer::start().unwrap();
    // Created, used and dropped inside a runtime: the proxy has its own.
    let proxy = FaultProxy::for_scim(&scim).unwrap();
    let delay = Duration::from_millis(300);
    proxy.set(Fault::Delay(delay)).unwrap();
    let addr = proxy.addr();
    let auth = format!("Bearer {}", scim.token());
    let (elapsed, status) = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let r = http::request(
            addr,
            "GET",
            "/v2/Users",
            &[("Authorization", auth.as_str())],
            None,
        )
        .unwrap();
        (started.elapsed(), r.status)
    })
    .await
    .unwrap();
    assert_eq!(status, 200);
    assert!(elapsed >= delay, "{elapsed:?}");
    assert_eq!(proxy.stats().faults_injected, 1, "one per request");
    drop(proxy);
}

#[test]
fn scim_clearing_a_delay_releases_the_held_responses() {
    let scim = ScimServer::start().unwrap();
    let proxy = FaultProxy::for_scim(&scim).unwrap();
    proxy.set(Fault::Delay(MAX_DELAY)).unwrap();
    let addr = proxy.addr();
    let auth = format!("Bearer {}", scim.token());
    let (tx, rx) = std::sync::mpsc::channel();
    let client = std::thread::spawn(move || {
        let r = http::request(
            addr,
            "GET",
            "/v2/Users",
            &[("Authorization", auth.as_str())],
            None,
        );
        let _ = tx.send(r.map(|r| r.status).map_err(|e| format!("{e:#}")));
    });
    // Held: the upstream answered, the client has nothing yet.
    let deadline = Instant::now() + Duration::from_secs(60);
    while upstream_user_gets(&scim) == 0 {
        assert!(
            Instant::now() < deadline,
            "the request never reached scim2-server"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(rx.try_recv().is_err(), "the response was not held");
    // Clearing lets it go now, not after MAX_DELAY.
    proxy.clear().unwrap();
    let status = rx
        .recv_timeout(MAX_DELAY / 2)
        .expect("the held response was not released by clear()");
    assert_eq!(status, Ok(200));
    client.join().unwrap();
    assert_eq!(proxy.stats().faults_injected, 1);
}

#[test]
fn scim_cut_response_after_the_server_acted() {
    let scim = ScimServer::start().unwrap();
    let proxy = FaultProxy::for_scim(&scim).unwrap();
    let body = serde_json::to_vec(&user("cut-pupil", "ext-cut")).unwrap();
    let request = [
        format!(
            "POST /v2/Users HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
             Content-Type: {SCIM_JSON}\r\nContent-Length: {}\r\n\r\n",
            proxy.addr(),
            scim.token(),
            body.len()
        )
        .into_bytes(),
        body,
    ]
    .concat();

    proxy.set(Fault::DropAfterBytes(12)).unwrap();
    let got = raw_exchange(proxy.addr(), &request);
    assert_eq!(got.len(), 12, "{}", String::from_utf8_lossy(&got));
    assert!(
        got.starts_with(b"HTTP/1."),
        "{}",
        String::from_utf8_lossy(&got)
    );
    assert_eq!(proxy.stats().faults_injected, 1);
    // The harness client sees a broken response, not a success.
    assert!(scim_request(&proxy, &scim, "GET", "/Users", None).is_err());
    // The server did create the user: the client just never heard of it.
    let users = scim.list_all("/Users").unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["userName"], "cut-pupil");

    proxy.clear().unwrap();
    let whole = raw_exchange(proxy.addr(), &request);
    assert!(whole.len() > 12);
    // A second create of the same userName is a conflict, answered in full.
    assert!(whole.starts_with(b"HTTP/1.0 409") || whole.starts_with(b"HTTP/1.1 409"));
}

#[test]
fn scim_dropped_connections_reach_nothing() {
    let scim = ScimServer::start().unwrap();
    let proxy = FaultProxy::for_scim(&scim).unwrap();
    proxy.set(Fault::DropConnections).unwrap();
    assert!(scim_request(&proxy, &scim, "GET", "/Users", None).is_err());
    let body = user("dropped", "ext-dropped");
    assert!(scim_request(&proxy, &scim, "POST", "/Users", Some(&body)).is_err());
    let stats = proxy.stats();
    assert_eq!(stats.faults_injected, 2);
    assert_eq!(stats.requests_seen, 0, "dropped before a request was read");
    assert!(scim.list_all("/Users").unwrap().is_empty());
    assert_eq!(upstream_user_gets(&scim), 0);

    proxy.clear().unwrap();
    assert_eq!(get_users(&proxy, &scim).status, 200);
}

#[test]
fn scim_wire_is_recorded_both_ways() {
    let scim = ScimServer::start().unwrap();
    let proxy = FaultProxy::for_scim(&scim).unwrap();
    let created = scim_request(
        &proxy,
        &scim,
        "POST",
        "/Users",
        Some(&user("wire-pupil", "opaque-7f3a")),
    )
    .unwrap();
    assert_eq!(created.status, 201, "{}", created.text());
    let id = created.json().unwrap()["id"].as_str().unwrap().to_owned();

    let sent = proxy.recorded_to_upstream();
    assert!(contains(&sent, b"POST /v2/Users HTTP/1.1\r\n"));
    assert!(contains(&sent, b"\"externalId\":\"opaque-7f3a\""));
    let received = proxy.recorded_from_upstream();
    assert!(contains(&received, id.as_bytes()));
    assert!(
        !contains(&sent, id.as_bytes()),
        "the id came from the server"
    );
    let all = proxy.recorded();
    assert_eq!(all.len(), sent.len() + received.len());
    assert!(contains(&all, b"opaque-7f3a") && contains(&all, id.as_bytes()));
    assert!(!proxy.recording_truncated());
    assert_eq!(proxy.stats().requests_seen, 1);

    proxy.reset_recording();
    assert!(proxy.recorded().is_empty());
}

#[test]
fn scim_concurrent_clients_each_request_is_answered_or_forwarded_once() {
    let scim = ScimServer::start().unwrap();
    let proxy = FaultProxy::for_scim(&scim).unwrap();
    proxy
        .set(Fault::HttpStatus {
            status: 503,
            every_nth: 4,
            retry_after: Some(1),
        })
        .unwrap();
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..8)
            .map(|w| {
                let (proxy, scim) = (&proxy, &scim);
                s.spawn(move || {
                    (0..15)
                        .map(|i| {
                            let body = user(&format!("c-{w}-{i}"), &format!("ext-c-{w}-{i}"));
                            scim_request(proxy, scim, "POST", "/Users", Some(&body))
                                .unwrap()
                                .status
                        })
                        .collect::<Vec<u16>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    let injected = statuses.iter().filter(|&&s| s == 503).count();
    let created = statuses.iter().filter(|&&s| s == 201).count();
    assert_eq!(injected + created, 120, "{statuses:?}");
    assert_eq!(injected, 30, "every 4th of 120");
    let stats = proxy.stats();
    assert_eq!(stats.requests_seen, 120);
    assert_eq!(stats.faults_injected, 30);
    assert_eq!(scim.list_all("/Users").unwrap().len(), created);
}
