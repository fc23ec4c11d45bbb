//! The feed (`/ss12000/v2`): every platform that reads it sees a marked pupil with a
//! registered case only as the fictitious pupil, in the hub's groups; a marked pupil
//! without one nowhere; a person marked after the last read is taken out and named in
//! `/deletedEntities`, and until it is read the feed answers 503; a hub not read recently
//! enough gives 503. Every answer of the
//! feed is validated against the official specification with openapi-core, and a leak
//! scan (the egress guard's matcher over every value) finds no real identity in the
//! feed and finds it in the hub (the control that the scan reads SS 12000 at all).

use std::collections::HashSet;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use fiktiv_provisioning::model::TargetName;
use fiktiv_routine::feed::FeedResource;
use fiktiv_tests::{Answer, TestHub};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::support::api::*;

struct Feed<'a> {
    e: &'a Env,
    answers: std::sync::Mutex<Vec<Answer>>,
}

impl Feed<'_> {
    async fn get(&self, token: Option<&str>, path_and_query: &str) -> (StatusCode, Value) {
        let mut req = Request::builder()
            .method("GET")
            .uri(format!("/ss12000/v2{path_and_query}"));
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let resp = self
            .e
            .app
            .clone()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        assert_eq!(
            resp.headers().get("content-type").unwrap(),
            "application/json",
            "{path_and_query}"
        );
        let body = String::from_utf8(
            resp.into_body()
                .collect()
                .await
                .unwrap()
                .to_bytes()
                .to_vec(),
        )
        .unwrap();
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        self.answers.lock().unwrap().push(Answer {
            method: "get",
            path: format!("/v2.0{path}"),
            query: query.to_owned(),
            status: status.as_u16(),
            body: body.clone(),
            request: String::new(),
        });
        (status, serde_json::from_str(&body).unwrap())
    }

    /// A `POST …/lookup` with a JSON body (recorded with its body for the validator).
    async fn post(&self, token: &str, path: &str, body: &Value) -> (StatusCode, Value) {
        let req = Request::builder()
            .method("POST")
            .uri(format!("/ss12000/v2{path}"))
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let resp = self.e.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let text = String::from_utf8(
            resp.into_body()
                .collect()
                .await
                .unwrap()
                .to_bytes()
                .to_vec(),
        )
        .unwrap();
        self.answers.lock().unwrap().push(Answer {
            method: "post",
            path: format!("/v2.0{path}"),
            query: String::new(),
            status: status.as_u16(),
            body: text.clone(),
            request: body.to_string(),
        });
        (status, serde_json::from_str(&text).unwrap())
    }

    /// The ids of a filtered list, followed page by page with the page token alone.
    async fn ids(&self, token: &str, path: &str, query: &str, limit: usize) -> HashSet<String> {
        let mut out = HashSet::new();
        let mut q = format!("{path}?{query}&limit={limit}");
        loop {
            let (s, v) = self.get(Some(token), &q).await;
            assert_eq!(s, StatusCode::OK, "{q}: {v}");
            let data = v["data"].as_array().unwrap();
            assert!(data.len() <= limit);
            for x in data {
                assert!(
                    out.insert(x["id"].as_str().unwrap().to_owned()),
                    "{q}: an id twice"
                );
            }
            match v["pageToken"].as_str() {
                Some(t) => q = format!("{path}?limit={limit}&pageToken={t}"),
                None => return out,
            }
        }
    }

    /// Every item of a list, page by page (`limit` per page).
    async fn all(&self, token: &str, resource: &str, limit: usize) -> Vec<Value> {
        let mut out = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let q = match &next {
                Some(t) => format!("/{resource}?limit={limit}&pageToken={t}"),
                None => format!("/{resource}?limit={limit}"),
            };
            let (s, v) = self.get(Some(token), &q).await;
            assert_eq!(s, StatusCode::OK, "{q}: {v}");
            let data = v["data"].as_array().unwrap();
            assert!(data.len() <= limit);
            out.extend(data.iter().cloned());
            match v["pageToken"].as_str() {
                Some(t) => next = Some(t.to_owned()),
                None => return out,
            }
        }
    }
}

/// The leak scan of a set of SS 12000 entities: every value through the egress guard's
/// matcher against the vault's real identities. Returns the entities that match.
async fn scan(e: &Env, entities: &[Value]) -> usize {
    let guard = fiktiv_delivery::targets::egress_guard(&e.vault)
        .await
        .unwrap();
    let target = TargetName::new("scan").unwrap();
    entities
        .iter()
        .filter(|v| {
            let mut values = Vec::new();
            flatten("", v, &mut values);
            guard.check_values(&target, None, &values).is_err()
        })
        .count()
}

fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::String(s) => out.push((prefix.to_owned(), s.clone())),
        Value::Array(a) => a.iter().for_each(|x| flatten(prefix, x, out)),
        Value::Object(o) => o
            .iter()
            .for_each(|(k, x)| flatten(&format!("{prefix}.{k}"), x, out)),
        _ => {}
    }
}

async fn the_feed_serves_the_fictitious_pupil_only(db: fiktiv_tests::TestDatabase) {
    let hub = TestHub::start(1500, 31).unwrap();
    let config = hub_config(&hub, "page_size = 200\nfeed_max_age_minutes = 30\n", "");
    let e = env_with(db, at(2026, 9, 1), config).await;
    fiktiv_routine::hub::set_secret(&e.vault, hub.token(), "test")
        .await
        .unwrap();
    let pupils = hub.marked_pupils().to_vec();
    let p = &pupils[0];
    let (case, _) = e
        .walk()
        .fictitious("Vera", "Dalström", &format!("{}-04-12", &p.birth_date[..4]))
        .guardian(json!({"linked": true,
            "real": {"personal_number": se_number(date(1984, 3, 9), 456),
                     "first_name": "Riktig", "last_name": "Riktigsson", "birth_date": "1984-03-09"},
            "fictitious": {"first_name": "Karin", "last_name": "Berglund", "birth_date": "1984-07-07"}}))
        .registered(json!({"country": "se", "personal_number": p.civic_no,
                           "first_name": p.given_name, "last_name": p.family_name,
                           "birth_date": p.birth_date}))
        .await;
    let feed = Feed {
        e: &e,
        answers: Default::default(),
    };

    // Before any read the feed answers nothing (503), whoever asks.
    let all = fiktiv_routine::feed::add_consumer(&e.vault, "lms", &FeedResource::ALL, &[], "test")
        .await
        .unwrap();
    let (s, v) = feed.get(Some(&all), "/persons").await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("stale"))
    );

    fiktiv_app::hub::read_now(&e.ctx, true, &mut |_| {})
        .await
        .unwrap();
    let persons = feed.all(&all, "persons", 150).await;
    let groups = feed.all(&all, "groups", 40).await;
    let orgs = feed.all(&all, "organisations", 10).await;
    let duties = feed.all(&all, "duties", 100).await;
    let activities = feed.all(&all, "activities", 100).await;
    assert_eq!(activities.len(), hub.count("activities"));

    // The marked pupil is there only as the fictitious pupil, unmarked, in the hub's
    // groups; no marked person is anywhere.
    let fict: Vec<&Value> = persons
        .iter()
        .filter(|x| x["givenName"] == "Vera" && x["familyName"] == "Dalström")
        .collect();
    assert_eq!(fict.len(), 1);
    let fict = fict[0];
    assert_eq!(fict["securityMarking"], "Ingen");
    assert_eq!(fict["birthDate"], format!("{}-04-12", &p.birth_date[..4]));
    assert_eq!(fict["enrolments"][0]["schoolYear"], p.school_year);
    let fict_id = fict["id"].as_str().unwrap();
    // The guardian the plan links, as the fictitious guardian; the real one nowhere.
    let responsible = fict["responsibles"][0]["person"]["id"].as_str().unwrap();
    let guardian = persons.iter().find(|x| x["id"] == responsible).unwrap();
    assert_eq!(
        (
            guardian["givenName"].as_str(),
            guardian["familyName"].as_str()
        ),
        (Some("Karin"), Some("Berglund"))
    );
    assert_eq!(guardian["securityMarking"], "Ingen");
    assert_eq!(fict["responsibles"][0]["relationType"], "Vårdnadshavare");
    let member_of: HashSet<&str> = groups
        .iter()
        .filter(|g| {
            g["groupMemberships"]
                .as_array()
                .is_some_and(|m| m.iter().any(|x| x["person"]["id"] == fict_id))
        })
        .map(|g| g["id"].as_str().unwrap())
        .collect();
    let want: HashSet<&str> = p.groups.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(member_of, want);
    assert!(persons.iter().all(|x| x["securityMarking"] == "Ingen"));
    let everything =
        serde_json::to_string(&(&persons, &groups, &orgs, &duties, &activities)).unwrap();
    for q in &pupils {
        for v in [&q.id, &q.civic_no, &q.family_name] {
            assert!(
                !everything.contains(v.as_str()),
                "a marked pupil is in the feed"
            );
        }
        for g in &q.guardians {
            assert!(
                !everything.contains(g.as_str()),
                "a marked guardian is in the feed"
            );
        }
    }
    assert!(
        !everything.contains("Riktig"),
        "the real guardian is in the feed"
    );
    let marked_in_hub = hub.marked_pupils().len();
    assert!(persons.len() + marked_in_hub <= hub.count("persons") + 1);
    assert_eq!(orgs.len(), hub.count("organisations"));
    assert_eq!(groups.len(), hub.count("groups"));

    // Provisioning takes the hub's groups for the linked case, not the order's ("4B"):
    // the fictitious pupil is in the pupil's class and teaching group in the targets.
    fiktiv_delivery::worker::run_until_idle(&e.ctx.delivery, 50)
        .await
        .unwrap();
    let classes =
        std::fs::read_to_string(e.ctx.data_dir.join("oneroster").join("classes.csv")).unwrap();
    for (_, name) in &p.groups {
        assert!(
            classes.contains(name.as_str()),
            "{name} not in classes.csv:\n{classes}"
        );
    }
    assert!(
        !classes.contains("4B"),
        "the order's group is still used:\n{classes}"
    );

    // The leak scan: nothing in the feed; the pupil in the hub (the control).
    assert_eq!(scan(&e, &persons).await + scan(&e, &groups).await, 0);
    let hub_persons = fiktiv_ss12000::HubReader::new(fiktiv_ss12000::HubConfig::new(
        &hub.base_url(),
        fiktiv_ss12000::HubAuth::Bearer(hub.token().to_owned().into()),
    ))
    .unwrap()
    .read(None, &mut |_| {})
    .await
    .unwrap();
    let raw: Vec<Value> = hub_persons
        .persons
        .iter()
        .map(|e| serde_json::from_str(e.raw.get()).unwrap())
        .collect();
    assert_eq!(scan(&e, &raw).await, 0, "unmarked hub persons match nobody");
    let marked_raw = hub
        .marked_pupils()
        .iter()
        .map(|q| {
            json!({"givenName": q.given_name, "familyName": q.family_name,
                        "civicNo": {"value": q.civic_no}, "birthDate": q.birth_date})
        })
        .collect::<Vec<_>>();
    assert_eq!(
        scan(&e, &marked_raw).await,
        1,
        "the scan finds the pupil with a case"
    );

    // One entity by id; a scoped consumer: persons only, no civicNo.
    let (s, one) = feed.get(Some(&all), &format!("/persons/{fict_id}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(one["id"], fict_id);
    let narrow = fiktiv_routine::feed::add_consumer(
        &e.vault,
        "bibliotek",
        &[FeedResource::Persons],
        &["civicNo".to_owned()],
        "test",
    )
    .await
    .unwrap();
    let (s, v) = feed.get(Some(&narrow), "/groups").await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    let (s, v) = feed.get(Some(&narrow), "/persons?limit=20").await;
    assert_eq!(s, StatusCode::OK);
    assert!(v["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|x| x.get("civicNo").is_none()));

    // Refusals in the specification's Error shape.
    for (token, q, want) in [
        (None, "/persons", StatusCode::UNAUTHORIZED),
        (Some("fks_nope"), "/persons", StatusCode::UNAUTHORIZED),
        (
            Some(all.as_str()),
            "/persons?pageToken=o5",
            StatusCode::BAD_REQUEST,
        ),
        (
            Some(all.as_str()),
            "/persons?limit=0",
            StatusCode::BAD_REQUEST,
        ),
        (
            Some(all.as_str()),
            "/persons?sortkey=StartDateAsc",
            StatusCode::BAD_REQUEST,
        ),
        (
            Some(all.as_str()),
            "/persons/00000000-0000-4000-8000-000000000000",
            StatusCode::NOT_FOUND,
        ),
    ] {
        let (s, v) = feed.get(token, q).await;
        assert_eq!(s, want, "{q}: {v}");
        assert!(v["code"].is_string() && v["message"].is_string());
    }

    // A person marked after the last read: after the next read it is gone from the feed
    // and named in /deletedEntities.
    let since = e.vault.now();
    // A second on: whichever read takes the change in (the one the feed starts in the
    // background, or the one below) stamps its removal after `since`.
    e.clock.advance(chrono::TimeDelta::seconds(1));
    let newly = persons
        .iter()
        .find(|x| x["enrolments"].is_array() && x["id"] != fict_id)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The hub keeps the same time as Fiktiv (its changes carry times after the read).
    hub.set_time(e.vault.now().timestamp());
    hub.set_marking(&newly, "Skyddad folkbokföring").unwrap();
    // Before Fiktiv has read it: the feed sees that the hub changed since the last read
    // and answers nothing (503), so the newly marked pupil is never served under the
    // real identity; a read of changes starts at once.
    for q in [
        format!("/persons/{newly}"),
        "/persons?limit=10".to_owned(),
        "/groups".to_owned(),
    ] {
        let (s, v) = feed.get(Some(&all), &q).await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, Some("stale")),
            "{q}"
        );
    }
    e.clock.advance(chrono::TimeDelta::minutes(5));
    fiktiv_app::hub::read_now(&e.ctx, false, &mut |_| {})
        .await
        .unwrap();
    let (s, _) = feed.get(Some(&all), &format!("/persons/{newly}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let after = since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (s, d) = feed
        .get(
            Some(&all),
            &format!(
                "/deletedEntities?after={}&entities=Person",
                after.replace('+', "%2B")
            ),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{d}");
    assert!(d["data"]["persons"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x == newly.as_str()));

    // The hub goes away: within the configured age the feed still answers (the last
    // good read is young enough and the hub cannot say it changed); once the last good
    // read is older than the age, 503, not stale data.
    hub.set_fault("persons", fiktiv_tests::HubFault::Unavailable);
    let (s, _) = feed.get(Some(&all), "/organisations?limit=5").await;
    assert_eq!(s, StatusCode::OK);
    e.clock.advance(chrono::TimeDelta::minutes(31));
    let (s, v) = feed.get(Some(&all), "/persons").await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("stale"))
    );
    let _ = case;

    // Every answer the feed gave follows the specification.
    let answers = feed.answers.lock().unwrap().clone();
    let checked = fiktiv_tests::validate_answers(&answers).unwrap();
    assert_eq!(checked, answers.len());
    hub.validate().unwrap();
}
both_backends!(the_feed_serves_the_fictitious_pupil_only);

/// The feed over HTTP with Prism in proxy mode in front of it, checking every request
/// and response against the official specification: no violation on any answer, and a
/// request that breaks the specification is caught (the control that Prism checks).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_passes_prism_in_proxy_mode() {
    let hub = TestHub::start(500, 41).unwrap();
    let config = hub_config(&hub, "", "");
    let e = env_with(
        fiktiv_tests::TestDatabase::sqlite().unwrap(),
        at(2026, 9, 1),
        config,
    )
    .await;
    fiktiv_routine::hub::set_secret(&e.vault, hub.token(), "test")
        .await
        .unwrap();
    let p = hub.marked_pupils()[0].clone();
    e.walk()
        .fictitious("Vera", "Dalström", &format!("{}-04-12", &p.birth_date[..4]))
        .registered(json!({"country": "se", "personal_number": p.civic_no,
                           "first_name": p.given_name, "last_name": p.family_name,
                           "birth_date": p.birth_date}))
        .await;
    fiktiv_app::hub::read_now(&e.ctx, true, &mut |_| {})
        .await
        .unwrap();
    let token =
        fiktiv_routine::feed::add_consumer(&e.vault, "lms", &FeedResource::ALL, &[], "test")
            .await
            .unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = e.app.clone();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
    });
    let spec = fiktiv_tests::ss12000_spec_path().unwrap();
    let upstream = format!("http://{addr}/ss12000/v2");
    let prism = tokio::task::spawn_blocking(move || {
        fiktiv_tests::Prism::proxy(&spec, &upstream, "/organisations", 401)
    })
    .await
    .unwrap()
    .unwrap();
    let via = prism.addr();
    let get = |path: String| {
        let auth = format!("Bearer {token}");
        tokio::task::spawn_blocking(move || {
            fiktiv_tests::http::request(via, "GET", &path, &[("authorization", &auth)], None)
                .unwrap()
        })
    };

    let mut seen = 0;
    for resource in ["organisations", "persons", "groups", "duties", "activities"] {
        let mut next: Option<String> = None;
        loop {
            let path = match &next {
                Some(t) => format!("/{resource}?limit=200&pageToken={t}"),
                None => format!("/{resource}?limit=200"),
            };
            let r = get(path.clone()).await.unwrap();
            assert_eq!(r.status, 200, "{path}: {}\n{}", r.text(), prism.log());
            assert!(
                r.header("sl-violations").is_none(),
                "{path}: {:?}",
                r.header("sl-violations")
            );
            let v = r.json().unwrap();
            seen += v["data"].as_array().unwrap().len();
            match v["pageToken"].as_str() {
                Some(t) => next = Some(t.to_owned()),
                None => break,
            }
        }
    }
    assert!(seen > 500);
    let r = get(
        "/deletedEntities?after=2026-01-01T00:00:00Z&entities=Person&entities=Group".to_owned(),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.header("sl-violations").is_none());

    // The controls. A request that breaks the specification (limit must be at least
    // 1) is refused by Prism itself; an answer that breaks it (the test hub told to send
    // wrong types) is reported.
    let r = get("/persons?limit=0".to_owned()).await.unwrap();
    assert!(
        r.status != 200 || r.header("sl-violations").is_some(),
        "Prism let a request that breaks the specification through: {}",
        r.text()
    );
    hub.set_fault("persons", fiktiv_tests::HubFault::WrongTypes);
    let spec = fiktiv_tests::ss12000_spec_path().unwrap();
    let upstream = hub.base_url();
    let before_hub = tokio::task::spawn_blocking(move || {
        fiktiv_tests::Prism::proxy(&spec, &upstream, "/organisations", 401)
    })
    .await
    .unwrap()
    .unwrap();
    let via = before_hub.addr();
    let auth = format!("Bearer {}", hub.token());
    let r = tokio::task::spawn_blocking(move || {
        fiktiv_tests::http::request(
            via,
            "GET",
            "/persons?limit=5",
            &[("authorization", &auth)],
            None,
        )
        .unwrap()
    })
    .await
    .unwrap();
    assert!(
        r.status != 200 || r.header("sl-violations").is_some(),
        "Prism did not report an answer with wrong types: {}",
        r.text()
    );
}

fn ids_of<'a>(items: impl IntoIterator<Item = &'a Value>) -> HashSet<String> {
    items
        .into_iter()
        .map(|x| x["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The specification's filters and `/lookup` answer exactly what the consumer is served
/// (computed here from the whole lists): the fictitious pupil is found by its
/// fictitious name, number and the hub's relations; the real pupil by nothing; a filter
/// on a field the consumer is refused finds nothing; a filtered list pages with the
/// token alone; what the feed does not serve is refused. Every request and answer
/// follows the specification (openapi-core).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_and_lookups_answer_what_is_served() {
    let hub = TestHub::start(800, 37).unwrap();
    let config = hub_config(&hub, "page_size = 200\n", "");
    let e = env_with(
        fiktiv_tests::TestDatabase::sqlite().unwrap(),
        at(2026, 9, 1),
        config,
    )
    .await;
    fiktiv_routine::hub::set_secret(&e.vault, hub.token(), "test")
        .await
        .unwrap();
    let p = hub.marked_pupils()[0].clone();
    e.walk()
        .fictitious("Vera", "Dalström", &format!("{}-04-12", &p.birth_date[..4]))
        .registered(json!({"country": "se", "personal_number": p.civic_no,
                           "first_name": p.given_name, "last_name": p.family_name,
                           "birth_date": p.birth_date}))
        .await;
    fiktiv_app::hub::read_now(&e.ctx, true, &mut |_| {})
        .await
        .unwrap();
    let all = fiktiv_routine::feed::add_consumer(&e.vault, "lms", &FeedResource::ALL, &[], "test")
        .await
        .unwrap();
    let feed = Feed {
        e: &e,
        answers: Default::default(),
    };
    let persons = feed.all(&all, "persons", 500).await;
    let groups = feed.all(&all, "groups", 500).await;
    let orgs = feed.all(&all, "organisations", 500).await;
    let duties = feed.all(&all, "duties", 500).await;
    let activities = feed.all(&all, "activities", 500).await;
    let fict = persons
        .iter()
        .find(|x| x["givenName"] == "Vera" && x["familyName"] == "Dalström")
        .unwrap()
        .clone();
    let fict_id = fict["id"].as_str().unwrap().to_owned();
    let fict_no = fict["civicNo"]["value"].as_str().unwrap().to_owned();
    let unit = fict["enrolments"][0]["enroledAt"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let one = |id: &str| HashSet::from([id.to_owned()]);

    // Names, numbers: the fictitious pupil by its own, the real pupil by nothing.
    assert_eq!(
        feed.ids(
            &all,
            "/persons",
            "nameContains=vERA&nameContains=dalstr",
            50
        )
        .await,
        one(&fict_id)
    );
    assert_eq!(
        feed.ids(&all, "/persons", &format!("civicNo={fict_no}"), 50)
            .await,
        one(&fict_id)
    );
    for q in [
        format!("civicNo={}", p.civic_no),
        format!(
            "nameContains={}&nameContains={}",
            p.given_name, p.family_name
        ),
    ] {
        assert!(feed.ids(&all, "/persons", &q, 50).await.is_empty(), "{q}");
    }

    // Relations: enrolled at the pupil's unit, with small pages followed by token alone.
    let enrolled = ids_of(persons.iter().filter(|x| {
        x["enrolments"]
            .as_array()
            .is_some_and(|a| a.iter().any(|en| en["enroledAt"]["id"] == unit.as_str()))
    }));
    assert!(enrolled.contains(&fict_id) && enrolled.len() > 3);
    let q = format!("relationship.organisation={unit}&relationship.entity.type=enrolment");
    assert_eq!(feed.ids(&all, "/persons", &q, 3).await, enrolled);
    // Any relation to the unit: enrolled, on duty there, or a member of its groups.
    let unit_groups: Vec<&Value> = groups
        .iter()
        .filter(|g| g["organisation"]["id"] == unit.as_str())
        .collect();
    let mut related = enrolled.clone();
    related.extend(
        duties
            .iter()
            .filter(|d| d["dutyAt"]["id"] == unit.as_str())
            .map(|d| d["person"]["id"].as_str().unwrap().to_owned()),
    );
    for g in &unit_groups {
        for m in g["groupMemberships"].as_array().into_iter().flatten() {
            related.insert(m["person"]["id"].as_str().unwrap().to_owned());
        }
    }
    // ... and the guardians of pupils enrolled there.
    for x in &persons {
        if enrolled.contains(x["id"].as_str().unwrap()) {
            for r in x["responsibles"].as_array().into_iter().flatten() {
                related.insert(r["person"]["id"].as_str().unwrap().to_owned());
            }
        }
    }
    assert_eq!(
        feed.ids(
            &all,
            "/persons",
            &format!("relationship.organisation={unit}"),
            40
        )
        .await,
        related
    );

    // Groups, duties, activities.
    let classes = ids_of(
        unit_groups
            .iter()
            .copied()
            .filter(|g| g["groupType"] == "Klass"),
    );
    assert!(!classes.is_empty());
    assert_eq!(
        feed.ids(
            &all,
            "/groups",
            &format!("organisation={unit}&groupType=Klass"),
            50
        )
        .await,
        classes
    );
    let owner = orgs
        .iter()
        .find(|o| o["organisationType"] == "Huvudman")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Every unit is under the owner: duties "at the owner or under it" are all duties.
    assert_eq!(
        feed.ids(&all, "/duties", &format!("organisation={owner}"), 100)
            .await,
        ids_of(&duties)
    );
    assert_eq!(
        feed.ids(&all, "/duties", "dutyRole=L%C3%A4rare", 100).await,
        ids_of(duties.iter().filter(|d| d["dutyRole"] == "Lärare"))
    );
    let fict_groups: HashSet<String> = groups
        .iter()
        .filter(|g| {
            g["groupMemberships"]
                .as_array()
                .is_some_and(|m| m.iter().any(|m| m["person"]["id"] == fict_id.as_str()))
        })
        .map(|g| g["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(!fict_groups.is_empty());
    let with_pupil = ids_of(activities.iter().filter(|a| {
        a["groups"].as_array().is_some_and(|gs| {
            gs.iter()
                .any(|g| fict_groups.contains(g["id"].as_str().unwrap()))
        })
    }));
    assert_eq!(
        feed.ids(&all, "/activities", &format!("member={fict_id}"), 20)
            .await,
        with_pupil
    );
    let school = orgs.iter().find(|o| o["id"] == unit.as_str()).unwrap();
    let code = school["schoolUnitCode"].as_str().unwrap();
    assert_eq!(
        feed.ids(
            &all,
            "/organisations",
            &format!("schoolUnitCode={code}&type=Skolenhet"),
            10
        )
        .await,
        one(&unit)
    );

    // Lookups: the fictitious pupil by id and by its number, an ordinary person by id;
    // the real pupil's number finds nothing.
    let other = persons
        .iter()
        .find(|x| x["id"] != fict_id.as_str())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, v) = feed
        .post(
            &all,
            "/persons/lookup",
            &json!({"ids": [other], "civicNos": [fict_no, p.civic_no]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        ids_of(v.as_array().unwrap()),
        HashSet::from([fict_id.clone(), other.clone()])
    );
    assert!(!v.to_string().contains(&p.civic_no) && !v.to_string().contains(&p.family_name));
    let (s, v) = feed
        .post(
            &all,
            "/organisations/lookup",
            &json!({"schoolUnitCodes": [code]}),
        )
        .await;
    assert_eq!(
        (s, ids_of(v.as_array().unwrap())),
        (StatusCode::OK, one(&unit))
    );
    let (s, v) = feed
        .post(&all, "/activities/lookup", &json!({"members": [fict_id]}))
        .await;
    assert_eq!(
        (s, ids_of(v.as_array().unwrap())),
        (StatusCode::OK, with_pupil)
    );

    // A consumer refused civicNo finds no one by a number, and may not look up groups.
    let narrow = fiktiv_routine::feed::add_consumer(
        &e.vault,
        "bibliotek",
        &[FeedResource::Persons],
        &["civicNo".to_owned()],
        "test",
    )
    .await
    .unwrap();
    assert!(feed
        .ids(&narrow, "/persons", &format!("civicNo={fict_no}"), 50)
        .await
        .is_empty());
    let (s, v) = feed
        .post(&narrow, "/persons/lookup", &json!({"civicNos": [fict_no]}))
        .await;
    assert_eq!((s, v.as_array().unwrap().len()), (StatusCode::OK, 0));
    let (s, _) = feed
        .post(&narrow, "/groups/lookup", &json!({"ids": []}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Sorted: the whole list in the key's order (ties by id), paged by token alone.
    let mut want: Vec<(String, String)> = persons
        .iter()
        .map(|x| {
            (
                x["familyName"].as_str().unwrap().to_lowercase(),
                x["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    want.sort();
    let mut got = Vec::new();
    let mut q = "/persons?sortkey=FamilyNameAsc&limit=70".to_owned();
    loop {
        let (s, v) = feed.get(Some(&all), &q).await;
        assert_eq!(s, StatusCode::OK, "{q}: {v}");
        got.extend(
            v["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x["id"].as_str().unwrap().to_owned()),
        );
        match v["pageToken"].as_str() {
            Some(t) => q = format!("/persons?limit=70&pageToken={t}"),
            None => break,
        }
    }
    assert_eq!(got, want.into_iter().map(|(_, id)| id).collect::<Vec<_>>());

    // Expanded: what the consumer may read, embedded as served.
    let (s, v) = feed
        .get(
            Some(&all),
            &format!("/persons?civicNo={fict_no}&expand=groupMemberships&expand=duties"),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let emb = &v["data"][0]["_embedded"];
    let embedded_groups: HashSet<String> = emb["groupMemberships"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["group"]["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(embedded_groups, fict_groups);
    assert_eq!(emb["duties"], json!([]));
    // One entity takes expand too; a filter there is refused.
    let (s, v) = feed
        .get(
            Some(&all),
            &format!("/persons/{fict_id}?expand=groupMemberships"),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["_embedded"]["groupMemberships"].as_array().unwrap().len(),
        fict_groups.len()
    );
    let (s, _) = feed
        .get(Some(&all), &format!("/persons/{fict_id}?nameContains=a"))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, v) = feed.get(Some(&all), "/duties?expand=person&limit=5").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    for d in v["data"].as_array().unwrap() {
        assert_eq!(d["_embedded"]["person"]["id"], d["person"]["id"], "{d}");
    }
    let (s, v) = feed
        .get(
            Some(&all),
            "/activities?expand=groups&expand=teachers&limit=5",
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    for a in v["data"].as_array().unwrap() {
        assert_eq!(
            a["_embedded"]["groups"].as_array().unwrap().len(),
            a["groups"].as_array().unwrap().len()
        );
    }
    // An expansion into a resource the consumer may not read is refused.
    let duties_only = fiktiv_routine::feed::add_consumer(
        &e.vault,
        "schema",
        &[FeedResource::Duties],
        &[],
        "test",
    )
    .await
    .unwrap();
    let (s, _) = feed.get(Some(&duties_only), "/duties?expand=person").await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Refused rather than ignored, in the specification's error shape.
    let (_, first) = feed
        .get(
            Some(&all),
            &format!("/persons?relationship.organisation={unit}&limit=2"),
        )
        .await;
    let token = first["pageToken"].as_str().unwrap().to_owned();
    for q in [
        "/persons?sortkey=StartDateAsc".to_owned(),
        "/activities?expand=syllabus".to_owned(),
        "/persons?relationship.entity.type=placement.child".to_owned(),
        "/groups?groupType=Skolhus".to_owned(),
        "/duties?organisation=not-an-id".to_owned(),
        format!("/persons?pageToken={token}&nameContains=a"),
        "/persons?pageToken=fnot-a-token".to_owned(),
    ] {
        let (s, v) = feed.get(Some(&all), &q).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{q}: {v}");
        assert!(v["code"].is_string() && v["message"].is_string());
    }
    for body in [
        json!({"ids": ["x"]}),
        json!({"names": ["Vera"]}),
        json!([1]),
    ] {
        let (s, v) = feed.post(&all, "/persons/lookup", &body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {v}");
    }

    let answers = feed.answers.lock().unwrap().clone();
    let checked = fiktiv_tests::validate_answers(&answers).unwrap();
    assert_eq!(checked, answers.len());
}

/// A feed request from `addr` (as `fiktiv serve` sees it) with `token`.
async fn feed_from(e: &Env, addr: &str, token: &str) -> (StatusCode, Value, Option<String>) {
    let mut req = Request::get("/ss12000/v2/organisations?limit=1")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let addr: std::net::SocketAddr = format!("{addr}:40000").parse().unwrap();
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(addr));
    let resp = e.app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap(), retry)
}

/// Wrong feed tokens are limited per client address with the API's own limit: after
/// `failed_tokens_per_address` of them the address gets 429 (the specification's error
/// body, `Retry-After`) even with a good token, until the window has passed; another
/// address is not affected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_feed_tokens_are_limited_per_address() {
    let hub = TestHub::start(300, 43).unwrap();
    let config = hub_config(
        &hub,
        "",
        "[limits]\nfailed_tokens_per_address = 3\nfailed_token_window_secs = 120\n",
    );
    let e = env_with(
        fiktiv_tests::TestDatabase::sqlite().unwrap(),
        at(2026, 9, 1),
        config,
    )
    .await;
    fiktiv_routine::hub::set_secret(&e.vault, hub.token(), "test")
        .await
        .unwrap();
    fiktiv_app::hub::read_now(&e.ctx, true, &mut |_| {})
        .await
        .unwrap();
    let good = fiktiv_routine::feed::add_consumer(&e.vault, "lms", &FeedResource::ALL, &[], "test")
        .await
        .unwrap();
    assert_eq!(feed_from(&e, "10.0.0.9", &good).await.0, StatusCode::OK);
    for i in 0..3 {
        let (s, v, _) = feed_from(&e, "10.0.0.9", &format!("fks_guess{i}")).await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("unauthorized"))
        );
    }
    let (s, v, retry) = feed_from(&e, "10.0.0.9", &good).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("rate-limited"))
    );
    assert!(v["message"].is_string());
    assert_eq!(retry.as_deref(), Some("120"));
    assert_eq!(feed_from(&e, "10.0.0.10", &good).await.0, StatusCode::OK);
    e.clock.advance(chrono::TimeDelta::seconds(121));
    assert_eq!(feed_from(&e, "10.0.0.9", &good).await.0, StatusCode::OK);
}
