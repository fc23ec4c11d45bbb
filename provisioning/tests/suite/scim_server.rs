//! The SCIM target against a real scim2-server (fiktiv-tests harness): create, update,
//! disable (PATCH active=false), delete, account check, drift, 409, paging and the leak
//! scan. Plus 429 with Retry-After against a tiny local responder (scim2-server never
//! rate-limits).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use crate::common;

use std::time::Duration;

use common::*;
use fiktiv_provisioning::scim::{ScimConfig, ScimTarget};
use fiktiv_provisioning::template::Template;
use fiktiv_provisioning::{
    check_account, plan, push, report, scan, Action, Applied, CaseStatus, Drift, Group,
    PlanOptions, Rule, Target, TargetError,
};
use fiktiv_tests::ScimServer;
use secrecy::SecretString;
use serde_json::json;

fn target_for(scim: &ScimServer) -> ScimTarget {
    let mut cfg = ScimConfig::new(
        target("scim"),
        &scim.base_url(),
        SecretString::from(scim.token().to_string()),
    )
    .unwrap();
    cfg.email = Some(Template::parse("{given}.{family}.{short_id}@skola.example").unwrap());
    cfg.page_size = 2; // several pages even with few users
    ScimTarget::new(cfg).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_account_check_and_drift() {
    let scim = ScimServer::start().unwrap();
    let t = target_for(&scim);
    let key = key();
    let guard = guard(&key, &[&astrid()]);
    let now = at(2025, 9, 1);
    let mut ella = pupil("Ella", "Fiktiv", &[t.name()]);
    let others: Vec<_> = (0..4)
        .map(|i| pupil("Otto", &format!("Prov{i}"), &[t.name()]))
        .collect();

    assert_eq!(
        push(&t, &guard, &ella, now).await.unwrap(),
        Applied::Created
    );
    for o in &others {
        push(&t, &guard, o, now).await.unwrap();
    }
    let users = scim.list_all("/Users").unwrap();
    assert_eq!(users.len(), 5);
    let u = users
        .iter()
        .find(|u| u["externalId"] == ella.id.to_string())
        .unwrap();
    assert_eq!(u["userName"], format!("ella.fiktiv.{}", ella.id.short()));
    assert_eq!(u["active"], true);
    // The server gives versions (ETags); updates below send them as If-Match.
    assert!(u["meta"]["version"].is_string(), "{u}");
    let groups = scim.list_all("/Groups").unwrap();
    assert_eq!(groups.len(), 2, "one per school unit and class");
    assert!(check_account(&t, &ella, now).await.unwrap().ok());

    // Update: name and class.
    ella.family_name = "Fiktivsson".into();
    ella.groups = vec![Group::new("skola-1-6b", "Klass 6B").unwrap()];
    assert_eq!(
        push(&t, &guard, &ella, now).await.unwrap(),
        Applied::Updated
    );
    let c = check_account(&t, &ella, now).await.unwrap();
    assert!(c.ok(), "{c:?}");

    // Disable is PATCH active=false, read back from the server.
    t.disable(&guard, &ella.id, now).await.unwrap();
    let c = check_account(&t, &ella, now).await.unwrap();
    assert!(c.exists && !c.enabled, "{c:?}");
    let e = t.read_one(&ella.id, now).await.unwrap().unwrap();
    assert_eq!(e.attributes["active"], vec!["false".to_string()]);
    push(&t, &guard, &ella, now).await.unwrap();
    assert!(check_account(&t, &ella, now).await.unwrap().ok());

    // Drift by hand: one user renamed, another deleted.
    let id_of = |ext: String| {
        scim.list_all("/Users")
            .unwrap()
            .into_iter()
            .find(|u| u["externalId"] == ext)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let ella_id = id_of(ella.id.to_string());
    let r = scim
        .request(
            "PATCH",
            &format!("/Users/{ella_id}"),
            Some(
                &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "name.givenName", "value": "Hacked"}]}),
            ),
        )
        .unwrap();
    assert!(r.status == 200 || r.status == 204, "{}", r.text());
    let gone = id_of(others[0].id.to_string());
    assert_eq!(
        scim.request("DELETE", &format!("/Users/{gone}"), None)
            .unwrap()
            .status,
        204
    );
    let mut desired = vec![ella.clone()];
    desired.extend(others.iter().cloned());
    let p = plan(
        &desired,
        &t.read_managed(now).await.unwrap(),
        &PlanOptions::new(now),
    );
    let acts = &p.targets[t.name()].actions;
    assert!(
        acts.contains(&Action::Create {
            person: others[0].id
        }),
        "{acts:?}"
    );
    assert!(
        acts.iter()
            .any(|a| matches!(a, Action::Update { person, drift, .. }
        if *person == ella.id && drift.contains(&Drift::GivenName))),
        "{acts:?}"
    );
    for d in &desired {
        push(&t, &guard, d, now).await.unwrap();
    }
    let p = plan(
        &desired,
        &t.read_managed(now).await.unwrap(),
        &PlanOptions::new(now),
    );
    assert!(p.is_empty(), "{p:?}");

    // Delete.
    t.delete(&guard, &ella.id, now).await.unwrap();
    t.delete(&guard, &ella.id, now).await.unwrap();
    assert!(t.read_one(&ella.id, now).await.unwrap().is_none());
    assert_eq!(scim.list_all("/Users").unwrap().len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_name_taken_by_an_unmanaged_account_is_a_conflict() {
    let scim = ScimServer::start().unwrap();
    let t = target_for(&scim);
    let key = key();
    let guard = guard(&key, &[]);
    let p = pupil("Ella", "Fiktiv", &[t.name()]);
    let taken = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": format!("ella.fiktiv.{}", p.id.short()), "externalId": "someone-else"});
    assert_eq!(
        scim.request("POST", "/Users", Some(&taken)).unwrap().status,
        201
    );
    match push(&t, &guard, &p, at(2025, 9, 1)).await {
        Err(TargetError::Conflict { .. }) => {}
        other => panic!("expected a conflict, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leak_scan_finds_a_planted_real_pupil() {
    let scim = ScimServer::start().unwrap();
    let t = target_for(&scim);
    let key = key();
    let real = astrid();
    let index = index_map(&key, &[&real]);
    let guard = guard(&key, &[&real]);
    let now = at(2025, 9, 1);
    for i in 0..3 {
        push(
            &t,
            &guard,
            &pupil("Ella", &format!("Fiktiv{i}"), &[t.name()]),
            now,
        )
        .await
        .unwrap();
    }
    let clean = t.read_everything().await.unwrap();
    assert_eq!(clean.len(), 5, "3 users + 2 groups");
    assert!(scan(&clean, &key, &index).is_empty());
    // What the scan reads: every resource type the server lists (scim2-server's
    // `/ResourceTypes`), Users and Groups among them.
    let scope = t.scan_scope().await.unwrap();
    assert!(
        scope.contains(&"/Users".to_string()) && scope.contains(&"/Groups".to_string()),
        "{scope:?}"
    );
    // Exactly what the server lists, read here on its own, each endpoint once.
    let listed = scim.request("GET", "/ResourceTypes", None).unwrap();
    assert_eq!(listed.status, 200, "{}", listed.text());
    let listed: serde_json::Value = serde_json::from_str(&listed.text()).unwrap();
    let mut want: Vec<String> = listed["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let e = r["endpoint"].as_str().unwrap();
            format!("/{}", e.trim_start_matches('/'))
        })
        .collect();
    assert!(!want.is_empty(), "{listed}");
    want.sort();
    let mut got = scope.clone();
    got.sort();
    assert_eq!(got, want, "the scope is not what /ResourceTypes lists");

    let planted = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "planted",
        "name": {"givenName": "A\u{30A}SA-BRITT", "familyName": "O\u{308}BERG"},
        "nickName": real.short_form(),
    });
    let r = scim.request("POST", "/Users", Some(&planted)).unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
    let findings = scan(&t.read_everything().await.unwrap(), &key, &index);
    let rules: std::collections::BTreeSet<Rule> = findings.iter().map(|f| f.rule).collect();
    assert!(
        rules.contains(&Rule::Number) && rules.contains(&Rule::NameBirth),
        "{findings:?}"
    );
    assert!(findings
        .iter()
        .all(|f| f.entry.starts_with("Users/") && f.cases == vec![real.case]));
    assert!(findings
        .iter()
        .all(|f| f.label.as_deref() == Some("planted")));
    assert_eq!(report(&[real.case], &findings)[0].status, CaseStatus::Found);
    let shown = serde_json::to_string(&findings).unwrap();
    for v in ["BRITT", "BERG", &real.short_form(), &real.number] {
        assert!(!shown.contains(v), "{shown}");
    }
    // The scan's requests carried no filter at all.
    let log = scim.log().unwrap();
    assert!(!log.contains(&real.number[2..8]), "{log}");
}

/// A one-connection-per-request HTTP responder on loopback: the first request gets 429
/// with `Retry-After: 1`, the rest an empty list. Bounded: it stops after `n` requests.
async fn rate_limiting_responder(
    n: usize,
    retry_after: &'static str,
) -> (u16, tokio::task::JoinHandle<Vec<std::time::Instant>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let h = tokio::spawn(async move {
        let mut times = Vec::new();
        for i in 0..n {
            let Ok(Ok((mut s, _))) =
                tokio::time::timeout(Duration::from_secs(10), listener.accept()).await
            else {
                break;
            };
            times.push(std::time::Instant::now());
            let mut buf = vec![0u8; 8192];
            let _ = s.read(&mut buf).await;
            let body = r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"totalResults":0,"Resources":[]}"#;
            let resp = if i == 0 {
                format!("HTTP/1.1 429 Too Many Requests\r\nRetry-After: {retry_after}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            } else {
                format!("HTTP/1.1 200 OK\r\nContent-Type: application/scim+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
            };
            let _ = s.write_all(resp.as_bytes()).await;
            let _ = s.shutdown().await;
        }
        times
    });
    (port, h)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured_within_bounds() {
    // The scan's first request (`/ResourceTypes`): 429, then an empty list; Users and
    // Groups: an empty list each.
    let (port, h) = rate_limiting_responder(4, "1").await;
    let cfg = ScimConfig::new(
        target("scim"),
        &format!("http://127.0.0.1:{port}/v2"),
        SecretString::from("t"),
    )
    .unwrap();
    let t = ScimTarget::new(cfg).unwrap();
    assert!(t.read_everything().await.unwrap().is_empty());
    let times = h.await.unwrap();
    assert_eq!(times.len(), 4);
    assert!(
        times[1] - times[0] >= Duration::from_millis(900),
        "waited {:?}",
        times[1] - times[0]
    );

    // A Retry-After beyond the bound fails at once instead of waiting.
    let (port, h) = rate_limiting_responder(1, "3600").await;
    let cfg = ScimConfig::new(
        target("scim"),
        &format!("http://127.0.0.1:{port}/v2"),
        SecretString::from("t"),
    )
    .unwrap();
    let t = ScimTarget::new(cfg).unwrap();
    let started = std::time::Instant::now();
    match t.read_managed(at(2025, 9, 1)).await {
        Err(TargetError::RateLimited { .. }) => {}
        other => panic!("expected rate limiting, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    h.await.unwrap();
}

#[test]
fn https_required_except_loopback() {
    let mk = |url: &str| {
        ScimTarget::new(ScimConfig::new(target("s"), url, SecretString::from("t")).unwrap())
    };
    assert!(mk("http://127.0.0.1:8080/v2").is_ok());
    assert!(mk("https://lms.example.org/scim/v2").is_ok());
    assert!(mk("http://lms.example.org/scim/v2").is_err());
}
