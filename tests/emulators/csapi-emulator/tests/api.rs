//! End-to-end tests of the emulator over real HTTP, the way casesync and the official
//! Rust crate call it: each test spawns a server and talks to it with reqwest.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};
use csapi_emulator::{Emulator, EmulatorConfig, NewCustomerCase, RunningEmulator};
use reqwest::Method;
use serde_json::{Value, json};

const CLASSIFICATION: &str = "100IK2AKCLHMGRJ9CDGMOCGP8DM6UTB4BT262T31BT1M2T31DHNMENPO6KS36CPJ786L2TBFEHGN6NPI64R3CDHN8880G08I1H3MURR7DHII0GRCDTQM8";
const PROJECT: &str = "projects/demo-project";
const ORG: &str = "organizations/123456789012";
const CALLER: &str = "casesync@demo-project.iam.gserviceaccount.com";

struct Env {
    run: RunningEmulator,
    http: reqwest::Client,
}

struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    json: Value,
    bytes: Vec<u8>,
}

impl Env {
    async fn new() -> Self {
        let run = Emulator::spawn(EmulatorConfig::default()).await.unwrap();
        Self {
            run,
            http: reqwest::Client::new(),
        }
    }

    fn emu(&self) -> &Emulator {
        &self.run.emulator
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.run.base_url, path)
    }

    async fn send(&self, rb: reqwest::RequestBuilder) -> Reply {
        let resp = rb.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.unwrap().to_vec();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            json,
            bytes,
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&str>,
    ) -> Reply {
        let mut rb = self
            .http
            .request(method, self.url(path))
            .query(query)
            .header("authorization", "Bearer ignored");
        if let Some(b) = body {
            rb = rb
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        self.send(rb).await
    }

    async fn get(&self, path: &str, query: &[(&str, &str)]) -> Reply {
        self.call(Method::GET, path, query, None).await
    }

    async fn post(&self, path: &str, query: &[(&str, &str)], body: Value) -> Reply {
        self.call(Method::POST, path, query, Some(&body.to_string()))
            .await
    }

    /// A case created through the public API (by casesync's identity).
    async fn create_case(&self, parent: &str, title: &str) -> Value {
        let r = self
            .post(
                &format!("/v2/{parent}/cases"),
                &[],
                json!({
                    "displayName": title,
                    "description": format!("description of {title}"),
                    "classification": {"id": CLASSIFICATION},
                    "priority": "P3",
                }),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.json);
        r.json
    }

    fn customer_case(&self, title: &str) -> Value {
        self.emu().create_case_as_customer(NewCustomerCase {
            parent: PROJECT.into(),
            display_name: title.into(),
            description: format!("customer says: {title}"),
            priority: "P2".into(),
            classification_id: None,
            creator_email: "pat@customer.example".into(),
            creator_name: "Pat".into(),
            create_time: None,
        })
    }
}

fn name(v: &Value) -> String {
    v["name"].as_str().unwrap().to_string()
}

fn number(v: &Value) -> String {
    name(v).rsplit('/').next().unwrap().to_string()
}

fn ts(v: &Value, key: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v[key].as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

/// (label, method, path, query, body, expected HTTP status, expected `error.status`)
type BadRequest = (
    &'static str,
    Method,
    String,
    Vec<(&'static str, &'static str)>,
    Option<String>,
    u16,
    &'static str,
);

#[tokio::test]
async fn bad_requests_are_rejected_in_googles_error_shape() {
    let env = Env::new().await;
    let case = env.create_case(PROJECT, "target").await;
    let case_path = format!("/v2/{}", name(&case));
    let comments = format!("{case_path}/comments");
    let search = format!("/v2/{PROJECT}/cases:search");
    let create = format!("/v2/{PROJECT}/cases");
    let valid = json!({"displayName": "d", "description": "x", "classification": {"id": CLASSIFICATION}, "priority": "P2"});
    let with = |k: &str, v: Value| {
        let mut b = valid.clone();
        b[k] = v;
        b.to_string()
    };
    let without = |k: &str| {
        let mut b = valid.clone();
        b.as_object_mut().unwrap().remove(k);
        b.to_string()
    };
    let long = json!({ "body": "x".repeat(12_801) }).to_string();
    let upload = format!("/upload{case_path}/attachments");

    let table: Vec<BadRequest> = vec![
        (
            "unknown body field",
            Method::POST,
            create.clone(),
            vec![],
            Some(with("severity", json!("S1"))),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            "missing displayName",
            Method::POST,
            create.clone(),
            vec![],
            Some(without("displayName")),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            "missing description",
            Method::POST,
            create.clone(),
            vec![],
            Some(without("description")),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            "missing classification",
            Method::POST,
            create.clone(),
            vec![],
            Some(without("classification")),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            "missing priority",
            Method::POST,
            create.clone(),
            vec![],
            Some(without("priority")),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            "unknown classification",
            Method::POST,
            create.clone(),
            vec![],
            Some(with("classification", json!({"id": "NOPE"}))),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            "bad priority value",
            Method::POST,
            create.clone(),
            vec![],
            Some(with("priority", json!("P9"))),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            "contactEmail outside WIF",
            Method::POST,
            create.clone(),
            vec![],
            Some(with("contactEmail", json!("a@b.c"))),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            "malformed JSON",
            Method::POST,
            create.clone(),
            vec![],
            Some("{\"displayName\": ".into()),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            "immutable updateMask path",
            Method::PATCH,
            case_path.clone(),
            vec![("updateMask", "description")],
            Some(r#"{"description":"x"}"#.into()),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            "unknown updateMask path",
            Method::PATCH,
            case_path.clone(),
            vec![("updateMask", "priority,bogus")],
            Some(r#"{"priority":"P1"}"#.into()),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            "comment body of 12,801 chars",
            Method::POST,
            comments.clone(),
            vec![],
            Some(long),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            "empty comment",
            Method::POST,
            comments.clone(),
            vec![],
            Some(r#"{"body":""}"#.into()),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            "comment without body",
            Method::POST,
            comments.clone(),
            vec![],
            Some("{}".into()),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            "comment body of wrong type",
            Method::POST,
            comments.clone(),
            vec![],
            Some(r#"{"body":5}"#.into()),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            "bad page token",
            Method::GET,
            search.clone(),
            vec![("pageToken", "bm90IGEgdG9rZW4")],
            None,
            400,
            "INVALID_ARGUMENT",
        ),
        (
            "negative page size",
            Method::GET,
            search.clone(),
            vec![("pageSize", "-1")],
            None,
            400,
            "INVALID_ARGUMENT",
        ),
        (
            "unknown query parameter",
            Method::GET,
            search.clone(),
            vec![("foo", "bar")],
            None,
            400,
            "INVALID_ARGUMENT",
        ),
        (
            "query parameter of another method",
            Method::GET,
            case_path.clone(),
            vec![("pageSize", "5")],
            None,
            400,
            "INVALID_ARGUMENT",
        ),
        (
            "bad search query",
            Method::GET,
            search.clone(),
            vec![("query", "state=BOGUS")],
            None,
            400,
            "INVALID_ARGUMENT",
        ),
        (
            "unparseable search query",
            Method::GET,
            search.clone(),
            vec![("query", "(state=OPEN")],
            None,
            400,
            "INVALID_ARGUMENT",
        ),
        (
            "update_time with '<'",
            Method::GET,
            search.clone(),
            vec![("query", r#"update_time<"2026-01-01T00:00:00Z""#)],
            None,
            400,
            "INVALID_ARGUMENT",
        ),
        (
            "free text in a list filter",
            Method::GET,
            create.clone(),
            vec![("filter", r#""text""#)],
            None,
            400,
            "INVALID_ARGUMENT",
        ),
        (
            "upload without filename",
            Method::POST,
            upload.clone(),
            vec![("uploadType", "media")],
            Some("abc".into()),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            "upload to the metadata path",
            Method::POST,
            format!("{case_path}/attachments"),
            vec![],
            Some("{}".into()),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            "unknown case",
            Method::GET,
            format!("/v2/{PROJECT}/cases/99999999"),
            vec![],
            None,
            404,
            "NOT_FOUND",
        ),
        (
            "comment on unknown case",
            Method::POST,
            format!("/v2/{PROJECT}/cases/99999999/comments"),
            vec![],
            Some(r#"{"body":"x"}"#.into()),
            404,
            "NOT_FOUND",
        ),
        (
            "unknown attachment",
            Method::GET,
            format!("{case_path}/attachments/0684M0000999999QAB:download"),
            vec![("alt", "media")],
            None,
            404,
            "NOT_FOUND",
        ),
        (
            "unknown URL",
            Method::GET,
            "/v2/folders/1/cases/1".into(),
            vec![],
            None,
            404,
            "NOT_FOUND",
        ),
    ];
    assert!(table.len() >= 10);
    for (label, method, path, query, body, status, error_status) in table {
        let r = env.call(method, &path, &query, body.as_deref()).await;
        assert_eq!(r.status, status, "{label}: {}", r.json);
        assert_eq!(r.json["error"]["code"], status, "{label}: {}", r.json);
        assert_eq!(
            r.json["error"]["status"], error_status,
            "{label}: {}",
            r.json
        );
        assert!(
            r.json["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{label}"
        );
        if status == 404 && path.contains("99999999") {
            assert!(
                r.json["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("99999999"),
                "{label}: 404 names the resource: {}",
                r.json
            );
        }
    }
    // Body errors carry google.rpc.BadRequest field violations.
    let r = env
        .call(
            Method::POST,
            &create,
            &[],
            Some(&with("severity", json!("S1"))),
        )
        .await;
    let detail = &r.json["error"]["details"][0];
    assert_eq!(detail["@type"], "type.googleapis.com/google.rpc.BadRequest");
    assert!(
        detail["fieldViolations"][0]["description"]
            .as_str()
            .unwrap()
            .contains("severity")
    );
    // Nothing was written by the rejected requests.
    let c = env.emu().case(&number(&case)).unwrap();
    assert_eq!(c["comments"], json!([]));
    assert_eq!(c["attachments"], json!([]));
    assert_eq!(env.emu().cases().len(), 1);
    assert_eq!(c["updateTime"], case["updateTime"]);
}

#[tokio::test]
async fn search_and_comments_paginate_over_three_pages() {
    let env = Env::new().await;
    for i in 0..25 {
        env.customer_case(&format!("case {i}"));
    }
    let path = format!("/v2/{PROJECT}/cases:search");
    let mut token = String::new();
    let mut pages = vec![];
    let mut seen = vec![];
    loop {
        let r = env
            .get(
                &path,
                &[("pageSize", "10"), ("pageToken", &token), ("query", "")],
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.json);
        let cases = r.json["cases"].as_array().unwrap().clone();
        pages.push(cases.len());
        seen.extend(cases.iter().map(|c| (name(c), ts(c, "updateTime"))));
        match r.json["nextPageToken"].as_str() {
            Some(t) => token = t.to_string(),
            None => break,
        }
    }
    assert_eq!(pages, vec![10, 10, 5]);
    let unique: HashSet<_> = seen.iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(unique.len(), 25);
    assert!(
        seen.windows(2).all(|w| w[0].1 >= w[1].1),
        "newest updated first"
    );

    // Default page size 10, and a huge page size is clamped to 100.
    let r = env.get(&path, &[]).await;
    assert_eq!(r.json["cases"].as_array().unwrap().len(), 10);
    for i in 25..110 {
        env.customer_case(&format!("case {i}"));
    }
    let r = env.get(&path, &[("pageSize", "1000")]).await;
    assert_eq!(r.json["cases"].as_array().unwrap().len(), 100);
    assert!(r.json["nextPageToken"].is_string());
    // A token is bound to its query.
    let t = r.json["nextPageToken"].as_str().unwrap().to_string();
    let r = env
        .get(&path, &[("pageToken", &t), ("query", "state=OPEN")])
        .await;
    assert_eq!(r.status, 400);

    // Comments: three pages, newest first; a comment added mid-way does not shift pages.
    let case = env.emu().cases()[0].clone();
    for i in 0..23 {
        env.emu()
            .add_google_comment(&number(&case), "Agent", &format!("c{i}"));
    }
    let cpath = format!("/v2/{}/comments", name(&case));
    let mut token = String::new();
    let mut bodies = vec![];
    let mut sizes = vec![];
    loop {
        let r = env
            .get(&cpath, &[("pageSize", "10"), ("pageToken", &token)])
            .await;
        assert_eq!(r.status, 200, "{}", r.json);
        let cs = r.json["comments"].as_array().unwrap();
        sizes.push(cs.len());
        bodies.extend(cs.iter().map(|c| c["body"].as_str().unwrap().to_string()));
        if sizes.len() == 1 {
            env.emu()
                .add_google_comment(&number(&case), "Agent", "late");
        }
        match r.json["nextPageToken"].as_str() {
            Some(t) => token = t.to_string(),
            None => break,
        }
    }
    assert_eq!(sizes, vec![10, 10, 3]);
    let expected: Vec<String> = (0..23).rev().map(|i| format!("c{i}")).collect();
    assert_eq!(bodies, expected);
}

#[tokio::test]
async fn search_by_update_time_honours_offsets_and_other_terms() {
    let env = Env::new().await;
    let a = env.create_case(PROJECT, "alpha").await;
    let b = env.create_case(PROJECT, "beta").await;
    let c = env.create_case(PROJECT, "gamma").await;
    // b is updated after a's last update; c is closed afterwards. The query takes whole
    // seconds, so the bound is a's time rounded up, and b and c change after it.
    let a_time = ts(&a, "updateTime");
    let bound = DateTime::from_timestamp(a_time.timestamp() + 1, 0).unwrap();
    let wait = (bound - Utc::now()).to_std().unwrap_or_default() + Duration::from_millis(20);
    tokio::time::sleep(wait).await;
    let r = env
        .post(
            &format!("/v2/{}/comments", name(&b)),
            &[],
            json!({"body": "hello"}),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = env
        .post(&format!("/v2/{}:close", name(&c)), &[], json!({}))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["state"], "CLOSED");

    let search = format!("/v2/{ORG}/cases:search");
    let names = |r: &Reply| -> Vec<String> {
        r.json["cases"]
            .as_array()
            .map(|cs| cs.iter().map(name).collect())
            .unwrap_or_default()
    };
    for offset in [0, -7 * 3600, 5 * 3600 + 1800] {
        let tz = FixedOffset::east_opt(offset).unwrap();
        let t = bound
            .with_timezone(&tz)
            .to_rfc3339_opts(SecondsFormat::Secs, true);
        let q = format!(r#"update_time>"{t}""#);
        let r = env.get(&search, &[("query", &q)]).await;
        assert_eq!(r.status, 200, "{q}: {}", r.json);
        let got = names(&r);
        assert!(!got.contains(&name(&a)), "{q}: strictly after");
        assert!(
            got.contains(&name(&b)) && got.contains(&name(&c)),
            "{q}: {got:?}"
        );
    }
    let t = bound.to_rfc3339_opts(SecondsFormat::Secs, true);
    let q = format!(r#"update_time>"{t}" AND state=OPEN"#);
    assert_eq!(
        names(&env.get(&search, &[("query", &q)]).await),
        vec![name(&b)]
    );
    let q = format!(r#"state=CLOSED AND update_time>"{t}""#);
    assert_eq!(
        names(&env.get(&search, &[("query", &q)]).await),
        vec![name(&c)]
    );
    // Free text reaches comments; creator.email matches the caller.
    let got = names(&env.get(&search, &[("query", r#""HELLO""#)]).await);
    assert_eq!(got, vec![name(&b)]);
    let q = format!(r#"creator.email="{CALLER}" AND "alpha""#);
    assert_eq!(
        names(&env.get(&search, &[("query", &q)]).await),
        vec![name(&a)]
    );
    let got = names(
        &env.get(&search, &[("query", "priority=P3 OR priority=P0")])
            .await,
    );
    assert_eq!(got.len(), 3);
}

/// The discovery document read literally: each form it does not show is Google's 400
/// INVALID_ARGUMENT naming the `query` parameter (see the README for each reading).
#[tokio::test]
async fn search_queries_are_read_strictly() {
    let env = Env::new().await;
    let case = env.create_case(PROJECT, "casesync: rt case 4").await;
    let search = format!("/v2/{PROJECT}/cases:search");
    let rejected: &[(&str, &str)] = &[
        (
            "juxtaposed terms without AND",
            r#"creator.email="casesync@demo-project.iam.gserviceaccount.com" "casesync: rt case 4""#,
        ),
        ("lower-case and", "state=OPEN and priority=P3"),
        ("lower-case or", "priority=P3 or priority=P0"),
        ("OR outside priority terms", "state=OPEN OR state=CLOSED"),
        (
            "a bare OR group joined with AND",
            "state=OPEN AND priority=P0 OR priority=P3",
        ),
        ("quoted state", r#"state="OPEN""#),
        ("quoted priority", r#"priority="P3""#),
        (
            "camelCase updateTime",
            r#"updateTime>"2020-01-01T00:00:00Z""#,
        ),
        (
            ">= on update_time",
            r#"update_time>="2020-01-01T00:00:00Z""#,
        ),
        ("= on update_time", r#"update_time="2020-01-01T00:00:00Z""#),
        ("< on update_time", r#"update_time<"2099-01-01T00:00:00Z""#),
        (
            "update_time without a zone",
            r#"update_time>"2020-01-01T00:00:00""#,
        ),
        ("unknown field", r#"display_name="x""#),
        ("v2beta field", r#"project="projects/demo-project""#),
        ("unquoted free text", "casesync"),
        ("whitespace inside a term", "state = OPEN"),
    ];
    for (label, q) in rejected {
        let r = env.get(&search, &[("query", q)]).await;
        assert_eq!(r.status, 400, "{label}: {q}: {}", r.json);
        assert_eq!(r.json["error"]["code"], 400, "{label}: {}", r.json);
        assert_eq!(r.json["error"]["status"], "INVALID_ARGUMENT", "{label}");
        assert_eq!(
            r.json["error"]["details"][0]["fieldViolations"][0]["field"], "query",
            "{label}: {}",
            r.json
        );
    }
    let accepted = [
        format!(r#"creator.email="{CALLER}" AND "casesync: rt case 4""#),
        r#""casesync: rt case 4" AND state=OPEN"#.to_string(),
        "state=OPEN AND (priority=P0 OR priority=P3)".to_string(),
        r#"update_time>"2020-01-01T00:00:00-05:00" AND state=OPEN"#.to_string(),
    ];
    for q in &accepted {
        let r = env.get(&search, &[("query", q)]).await;
        assert_eq!(r.status, 200, "{q}: {}", r.json);
        assert_eq!(r.json["cases"][0]["name"], case["name"], "{q}: {}", r.json);
    }
    // The list filter has no free text and no update_time.
    let list = format!("/v2/{PROJECT}/cases");
    for q in [
        r#"creator.email="x@example.com" AND "text""#,
        r#"update_time>"2020-01-01T00:00:00Z""#,
        "state=OPEN and priority=P3",
    ] {
        let r = env.get(&list, &[("filter", q)]).await;
        assert_eq!(r.status, 400, "{q}: {}", r.json);
        assert_eq!(r.json["error"]["status"], "INVALID_ARGUMENT");
    }
    let r = env
        .get(
            &list,
            &[(
                "filter",
                &format!(r#"state=OPEN AND creator.email="{CALLER}""#),
            )],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["cases"][0]["name"], case["name"]);
}

/// Page tokens carry `+`, `/` and `=`: sent percent-encoded they work, pasted raw into
/// the query string they are refused, whatever a lenient decoder would make of them.
#[tokio::test]
async fn page_tokens_must_be_percent_encoded() {
    let env = Env::new().await;
    for i in 0..3 {
        env.customer_case(&format!("case {i}"));
    }
    let paths = [
        format!("/v2/{PROJECT}/cases:search"),
        format!("/v2/{PROJECT}/cases"),
        "/v2/caseClassifications:search".to_string(),
    ];
    for path in &paths {
        let r = env.get(path, &[("pageSize", "1")]).await;
        assert_eq!(r.status, 200, "{path}: {}", r.json);
        let token = r.json["nextPageToken"].as_str().unwrap().to_string();
        assert!(
            token.contains('+') && token.contains('/') && token.contains('='),
            "{path}: the token exercises encoding: {token}"
        );
        // Encoded (reqwest's .query() does it): the next page.
        let r = env
            .get(path, &[("pageSize", "1"), ("pageToken", &token)])
            .await;
        assert_eq!(r.status, 200, "{path}: {}", r.json);
        // Raw, as a hand-built URL would carry it.
        for key in ["pageToken", "page_token"] {
            let url = env.url(&format!("{path}?pageSize=1&{key}={token}"));
            assert!(url.contains(&token), "the URL keeps the token raw: {url}");
            let r = env.send(env.http.get(url)).await;
            assert_eq!(r.status, 400, "{path} {key}: {}", r.json);
            assert_eq!(r.json["error"]["status"], "INVALID_ARGUMENT");
            assert!(
                r.json["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("percent-encode"),
                "{}",
                r.json
            );
        }
    }
}

#[tokio::test]
async fn enum_encoding_int_round_trip_like_the_rust_crate() {
    let env = Env::new().await;
    let int = [("$alt", "json;enum-encoding=int")];
    // Create with an integer priority (P2 = 3), the way the crate serialises enums.
    let body = json!({"displayName": "int case", "description": "d", "classification": {"id": CLASSIFICATION}, "priority": 3, "timeZone": "-07:00", "testCase": true});
    let r = env.post(&format!("/v2/{PROJECT}/cases"), &int, body).await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["priority"], 3);
    assert_eq!(r.json["state"], 1);
    assert_eq!(r.json["testCase"], true);
    assert_eq!(r.json["creator"]["email"], CALLER);
    assert!(r.json["creator"].get("googleSupport").is_none());
    assert!(r.json["createTime"].as_str().unwrap().ends_with('Z'));
    let case_name = name(&r.json);
    assert!(case_name.starts_with("projects/demo-project/cases/1000000"));
    let created = ts(&r.json, "updateTime");

    // Without enum-encoding: names.
    let r = env.get(&format!("/v2/{case_name}"), &[]).await;
    assert_eq!(r.json["priority"], "P2");
    assert_eq!(r.json["state"], "NEW");

    // Patch with a camelCase mask as the crate sends it.
    let r = env
        .call(
            Method::PATCH,
            &format!("/v2/{case_name}"),
            &[int[0], ("updateMask", "priority,displayName")],
            Some(&json!({"name": case_name, "priority": 2, "displayName": "renamed"}).to_string()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["priority"], 2);
    assert_eq!(r.json["displayName"], "renamed");
    assert!(ts(&r.json, "updateTime") > created);
    // snake_case mask and string enums in the body work too; other fields stay.
    let r = env
        .call(
            Method::PATCH,
            &format!("/v2/{case_name}"),
            &[("updateMask", "subscriber_email_addresses")],
            Some(
                &json!({"subscriber_email_addresses": ["a@example.com"], "priority": "P0"})
                    .to_string(),
            ),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["priority"], "P1");
    assert_eq!(r.json["subscriberEmailAddresses"], json!(["a@example.com"]));

    // The crate sends unset list parameters as empty values.
    let r = env
        .get(
            &format!("/v2/{PROJECT}/cases:search"),
            &[int[0], ("query", ""), ("pageSize", "0"), ("pageToken", "")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["cases"][0]["priority"], 2);
    let r = env
        .get(
            &format!("/v2/{PROJECT}/cases"),
            &[int[0], ("filter", ""), ("pageSize", "0"), ("pageToken", "")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    let r = env
        .get(
            &format!("/v2/{case_name}/comments"),
            &[int[0], ("pageSize", "0"), ("pageToken", "")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json, json!({}));

    // close_case sends the whole request, name included, as the body.
    let r = env
        .post(
            &format!("/v2/{case_name}:close"),
            &int,
            json!({"name": case_name}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["state"], 5);
    let closed_at = r.json["updateTime"].clone();
    // Closing again is a no-op.
    let r = env
        .post(&format!("/v2/{case_name}:close"), &int, json!({}))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["updateTime"], closed_at);
    // Commenting on a closed case is allowed (the documentation forbids nothing).
    let r = env
        .post(
            &format!("/v2/{case_name}/comments"),
            &int,
            json!({"body": "after close"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    // Also reachable under the organization's name and via a percent-encoded colon.
    let number = case_name.rsplit('/').next().unwrap();
    let r = env.get(&format!("/v2/{ORG}/cases/{number}"), &int).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["name"], case_name);
    let r = env
        .call(Method::POST, &format!("/v2/{case_name}%3Aclose"), &[], None)
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
}

fn sample_bytes() -> Vec<u8> {
    let mut data: Vec<u8> = (0..=255u8).collect();
    // The boundary string mid-line is data, not a delimiter.
    data.extend_from_slice(b"x--BOUNDARY not a delimiter mid-line --BOUNDARY--\r\n");
    data.extend((0..5000u32).map(|i| (i * 7 % 251) as u8));
    data
}

#[tokio::test]
async fn media_upload_and_download_round_trip() {
    let env = Env::new().await;
    let case = env.create_case(PROJECT, "files").await;
    let upload = env.url(&format!("/upload/v2/{}/attachments", name(&case)));
    let data = sample_bytes();

    // 1. uploadType=multipart, multipart/related as Google's clients send it.
    let mut body = Vec::new();
    body.extend_from_slice(b"--BOUNDARY\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n");
    body.extend_from_slice(br#"{"attachment":{"filename":"dump.bin"}}"#);
    body.extend_from_slice(b"\r\n--BOUNDARY\r\nContent-Type: application/x-custom\r\n\r\n");
    body.extend_from_slice(&data);
    body.extend_from_slice(b"\r\n--BOUNDARY--\r\n");
    let r = env
        .send(
            env.http
                .post(&upload)
                .query(&[("uploadType", "multipart")])
                .header("content-type", "multipart/related; boundary=BOUNDARY")
                .body(body),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    let multi = r.json.clone();
    assert_eq!(multi["filename"], "dump.bin");
    assert_eq!(multi["mimeType"], "application/x-custom");
    assert_eq!(multi["sizeBytes"], data.len().to_string());
    assert_eq!(multi["creator"]["email"], CALLER);

    // 2. uploadType=media with the filename as a query parameter.
    let r = env
        .send(
            env.http
                .post(&upload)
                .query(&[
                    ("uploadType", "media"),
                    ("attachment.filename", "graph.png"),
                ])
                .header("content-type", "image/png")
                .body(data.clone()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    let raw = r.json.clone();
    assert_eq!(raw["mimeType"], "image/png");

    // 3. No uploadType, as in the documented curl example (form content type → sniffed).
    let r = env
        .send(
            env.http
                .post(&upload)
                .query(&[("attachment.filename", "notes.txt")])
                .header("content-type", "application/x-www-form-urlencoded")
                .body("plain text"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["mimeType"], "text/plain");

    // 4. multipart/form-data from an ordinary HTTP client.
    let form = reqwest::multipart::Form::new()
        .part(
            "metadata",
            reqwest::multipart::Part::text(r#"{"filename":"form.csv"}"#)
                .mime_str("application/json")
                .unwrap(),
        )
        .part(
            "file",
            reqwest::multipart::Part::bytes(data.clone())
                .file_name("ignored.bin")
                .mime_str("text/csv")
                .unwrap(),
        );
    let r = env
        .send(
            env.http
                .post(&upload)
                .query(&[("uploadType", "multipart")])
                .multipart(form),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    let form_att = r.json.clone();
    assert_eq!(form_att["filename"], "form.csv");

    for (att, mime) in [
        (&multi, "application/x-custom"),
        (&raw, "image/png"),
        (&form_att, "text/csv"),
    ] {
        let r = env
            .get(&format!("/v2/{}:download", name(att)), &[("alt", "media")])
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(r.bytes, data, "{}", name(att));
        assert_eq!(r.headers["content-type"], mime);
        let disposition = r.headers["content-disposition"].to_str().unwrap();
        assert!(disposition.contains(att["filename"].as_str().unwrap()));
        // Metadata by name, and the Media JSON without alt=media.
        let r = env.get(&format!("/v2/{}", name(att)), &[]).await;
        assert_eq!(r.json, *att);
        let r = env.get(&format!("/v2/{}:download", name(att)), &[]).await;
        assert_eq!(r.json["filename"], att["filename"]);
        assert_eq!(r.json["length"], data.len().to_string());
        assert_eq!(env.emu().attachment_bytes(&name(att)).unwrap(), data);
    }
    let r = env
        .get(&format!("/v2/{}/attachments", name(&case)), &[])
        .await;
    let listed = r.json["attachments"].as_array().unwrap();
    assert_eq!(listed.len(), 4);
    assert_eq!(listed[0], form_att, "newest first");
    let after = env.get(&format!("/v2/{}", name(&case)), &[]).await;
    assert!(ts(&after.json, "updateTime") > ts(&case, "updateTime"));
}

#[tokio::test]
async fn search_lag_serves_an_older_snapshot() {
    let env = Env::new().await;
    let old = env.emu().create_case_as_customer(NewCustomerCase {
        parent: PROJECT.into(),
        display_name: "old case".into(),
        description: "from last week".into(),
        priority: "P3".into(),
        classification_id: None,
        creator_email: "pat@customer.example".into(),
        creator_name: "Pat".into(),
        create_time: Some(Utc::now() - chrono::Duration::hours(2)),
    });
    assert_eq!(old["state"], "NEW");
    env.emu().set_search_lag(Duration::from_secs(60));
    let fresh = env.customer_case("fresh case");
    env.emu()
        .add_google_comment(&number(&old), "Agent", "needle in a comment");
    env.emu().close_case(&number(&old)).unwrap();

    let search = format!("/v2/{PROJECT}/cases:search");
    let r = env.get(&search, &[]).await;
    let cases = r.json["cases"].as_array().unwrap();
    assert_eq!(
        cases.len(),
        1,
        "the fresh case is not indexed yet: {}",
        r.json
    );
    assert_eq!(cases[0]["name"], old["name"]);
    assert_eq!(cases[0]["state"], "NEW", "stale state");
    assert_eq!(
        cases[0]["updateTime"], old["updateTime"],
        "stale update time"
    );
    assert!(
        env.get(&search, &[("query", r#""needle""#)])
            .await
            .json
            .get("cases")
            .is_none()
    );
    assert!(
        env.get(&search, &[("query", "state=CLOSED")])
            .await
            .json
            .get("cases")
            .is_none()
    );
    // get is not affected by the lag.
    let r = env.get(&format!("/v2/{}", name(&old)), &[]).await;
    assert_eq!(r.json["state"], "CLOSED");

    env.emu().set_search_lag(Duration::ZERO);
    let r = env.get(&search, &[("query", "state=CLOSED")]).await;
    assert_eq!(r.json["cases"][0]["name"], old["name"]);
    let r = env.get(&search, &[]).await;
    assert_eq!(r.json["cases"].as_array().unwrap().len(), 2);
    assert_eq!(
        r.json["cases"][0]["name"], old["name"],
        "most recently updated first"
    );
    assert_eq!(r.json["cases"][1]["name"], fresh["name"]);

    // The control API sets it too.
    let r = env
        .post(
            "/_control/faults",
            &[],
            json!({"searchLagMs": 3 * 3_600_000}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    let r = env.get(&search, &[]).await;
    assert_eq!(r.json, json!({}));
}

#[tokio::test]
async fn injected_faults_lost_replies_latency_and_counters() {
    let env = Env::new().await;
    let case = env.create_case(PROJECT, "faulty").await;
    let create = format!("/v2/{PROJECT}/cases");
    let body = json!({"displayName": "d", "description": "x", "classification": {"id": CLASSIFICATION}, "priority": "P2"});

    let r = env
        .post(
            "/_control/faults",
            &[],
            json!({"method": "cases.create", "status": 503, "count": 2}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    for _ in 0..2 {
        let r = env.post(&create, &[], body.clone()).await;
        assert_eq!(r.status, 503);
        assert_eq!(r.json["error"]["status"], "UNAVAILABLE");
    }
    assert_eq!(env.emu().cases().len(), 1, "failed calls do nothing");
    let r = env.post(&create, &[], body.clone()).await;
    assert_eq!(r.status, 200);

    env.emu().inject_failures("cases.search", 429, 1);
    let search = format!("/v2/{PROJECT}/cases:search");
    let r = env.get(&search, &[]).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.json["error"]["status"], "RESOURCE_EXHAUSTED");
    assert_eq!(r.headers["retry-after"], "1");
    assert_eq!(env.get(&search, &[]).await.status, 200);

    // A lost reply: the comment is written, the caller sees 503.
    let r = env
        .post(
            "/_control/faults",
            &[],
            json!({"method": "cases.comments.create", "lostReply": true, "count": 1}),
        )
        .await;
    assert_eq!(r.status, 200);
    let comments = format!("/v2/{}/comments", name(&case));
    let r = env
        .post(&comments, &[], json!({"body": "maybe lost"}))
        .await;
    assert_eq!(r.status, 503);
    let r = env.get(&comments, &[]).await;
    assert_eq!(r.json["comments"][0]["body"], "maybe lost");
    assert_eq!(r.json["comments"].as_array().unwrap().len(), 1);
    assert_eq!(
        env.post(&comments, &[], json!({"body": "ok"})).await.status,
        200
    );

    // Unknown method ids are refused by the control API.
    let r = env
        .post(
            "/_control/faults",
            &[],
            json!({"method": "cases.nope", "status": 500}),
        )
        .await;
    assert_eq!(r.status, 400);

    // Latency applies to every public call.
    env.emu().set_latency(Duration::from_millis(200));
    let start = Instant::now();
    assert_eq!(
        env.get(&format!("/v2/{}", name(&case)), &[]).await.status,
        200
    );
    assert!(start.elapsed() >= Duration::from_millis(200));
    let r = env
        .call(Method::DELETE, "/_control/faults", &[], None)
        .await;
    assert_eq!(r.status, 200);
    let start = Instant::now();
    env.get(&format!("/v2/{}", name(&case)), &[]).await;
    assert!(start.elapsed() < Duration::from_millis(200));

    // Counters count every public request, failed ones included.
    let expected = json!({
        "cases.create": 4,
        "cases.search": 2,
        "cases.comments.create": 2,
        "cases.comments.list": 1,
        "cases.get": 2,
    });
    let r = env.get("/_control/counters", &[]).await;
    assert_eq!(r.json, expected);
    assert_eq!(
        serde_json::to_value(env.emu().counters()).unwrap(),
        expected
    );

    // The request log keeps method, path, query and JSON body.
    let log = env.emu().request_log();
    assert_eq!(log.len(), 11);
    let first = &log[0];
    assert_eq!(first.method, "POST");
    assert_eq!(first.path, create);
    assert_eq!(first.body.as_ref().unwrap()["priority"], "P3");
    assert_eq!(first.api_method.as_deref(), Some("cases.create"));

    // Reset clears everything.
    assert_eq!(
        env.post("/_control/reset", &[], json!({})).await.status,
        200
    );
    assert!(env.emu().cases().is_empty());
    assert!(env.emu().counters().is_empty());
    assert!(env.emu().request_log().is_empty());
    let again = env.create_case(PROJECT, "after reset").await;
    assert_eq!(name(&again), format!("{PROJECT}/cases/10000001"));
}

#[tokio::test]
async fn control_api_acts_as_google_support() {
    let env = Env::new().await;
    let r = env
        .post(
            "/_control/cases",
            &[],
            json!({"parent": PROJECT, "displayName": "VM down", "description": "help", "priority": "P1", "creatorEmail": "pat@customer.example", "creatorName": "Pat", "createTime": "2025-01-01T10:00:00+02:00"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["priority"], "P1");
    assert_eq!(r.json["state"], "NEW");
    assert_eq!(r.json["createTime"], "2025-01-01T08:00:00Z");
    assert_eq!(r.json["creator"]["email"], "pat@customer.example");
    let n = number(&r.json);
    assert_eq!(n, "10000001");

    let r = env
        .post(
            &format!("/_control/cases/{n}/comments"),
            &[],
            json!({"body": "We are looking", "authorName": "Sam (Google)"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["creator"]["googleSupport"], true);
    assert_eq!(r.json["creator"]["displayName"], "Sam (Google)");
    let r = env
        .post(&format!("/_control/cases/{n}/comments"), &[], json!({"body": "thanks", "asCustomer": true, "authorName": "Pat", "authorEmail": "pat@customer.example"}))
        .await;
    assert_eq!(r.status, 200);
    assert!(r.json["creator"].get("googleSupport").is_none());
    let r = env
        .post(&format!("/_control/cases/{n}/attachments"), &[], json!({"filename": "trace.log", "mimeType": "text/plain", "dataBase64": "aGVsbG8=", "authorName": "Sam"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["sizeBytes"], "5");
    assert_eq!(
        env.emu()
            .attachment_bytes(r.json["name"].as_str().unwrap())
            .unwrap(),
        b"hello"
    );
    let r = env
        .post(
            &format!("/_control/cases/{n}/priority"),
            &[],
            json!({"priority": "P0"}),
        )
        .await;
    assert_eq!(r.json["priority"], "P0");
    let r = env
        .post(
            &format!("/_control/cases/{n}/state"),
            &[],
            json!({"state": "IN_PROGRESS_GOOGLE_SUPPORT"}),
        )
        .await;
    assert_eq!(r.json["state"], "IN_PROGRESS_GOOGLE_SUPPORT");
    let r = env
        .post(
            &format!("/_control/cases/{n}/priority"),
            &[],
            json!({"priority": "P7"}),
        )
        .await;
    assert_eq!(r.status, 400);
    let r = env.post("/_control/cases/42/close", &[], json!({})).await;
    assert_eq!(r.status, 404);
    let r = env
        .post(&format!("/_control/cases/{n}/close"), &[], json!({}))
        .await;
    assert_eq!(r.json["state"], "CLOSED");

    let r = env.get(&format!("/_control/cases/{n}"), &[]).await;
    assert_eq!(r.json["comments"].as_array().unwrap().len(), 2);
    assert_eq!(r.json["attachments"].as_array().unwrap().len(), 1);
    assert!(ts(&r.json, "updateTime") > ts(&r.json, "createTime"));
    let r = env.get("/_control/cases", &[]).await;
    assert_eq!(r.json["cases"].as_array().unwrap().len(), 1);

    // The public API sees Google's comment as from Google Support.
    let r = env
        .get(&format!("/v2/{PROJECT}/cases/{n}/comments"), &[])
        .await;
    let cs = r.json["comments"].as_array().unwrap();
    assert_eq!(cs[1]["body"], "We are looking");
    assert_eq!(cs[1]["creator"]["googleSupport"], true);
    // Control calls are not counted as public calls.
    assert_eq!(env.emu().counters().values().sum::<u64>(), 1);
}

#[tokio::test]
async fn organization_search_covers_projects_and_list_does_not() {
    let env = Env::new().await;
    env.emu().map_project("elsewhere", "organizations/42");
    let in_project = env.create_case(PROJECT, "project case").await;
    let in_org = env.create_case(ORG, "org case").await;
    let foreign = env.create_case("projects/elsewhere", "foreign case").await;
    let names = |r: Reply| -> HashSet<String> {
        r.json["cases"]
            .as_array()
            .map(|cs| cs.iter().map(name).collect())
            .unwrap_or_default()
    };
    let got = names(env.get(&format!("/v2/{ORG}/cases:search"), &[]).await);
    assert_eq!(got, HashSet::from([name(&in_project), name(&in_org)]));
    let got = names(env.get(&format!("/v2/{ORG}/cases"), &[]).await);
    assert_eq!(got, HashSet::from([name(&in_org)]));
    let got = names(env.get(&format!("/v2/{PROJECT}/cases:search"), &[]).await);
    assert_eq!(got, HashSet::from([name(&in_project)]));
    let got = names(env.get("/v2/organizations/42/cases:search", &[]).await);
    assert_eq!(got, HashSet::from([name(&foreign)]));
}

#[tokio::test]
async fn case_classifications_search() {
    let env = Env::new().await;
    let path = "/v2/caseClassifications:search";
    let r = env
        .get(path, &[("query", r#"display_name:"*Compute*""#)])
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    let cs = r.json["caseClassifications"].as_array().unwrap();
    assert!(cs.len() >= 3);
    assert!(
        cs.iter()
            .all(|c| c["displayName"].as_str().unwrap().contains("Compute"))
    );
    assert_eq!(cs[0]["id"], CLASSIFICATION);
    assert_eq!(cs[0]["displayName"], "Compute > Compute Engine > Instance");
    let r = env
        .get(path, &[("query", r#"display_name:"*compute engine*""#)])
        .await;
    assert_eq!(r.json["caseClassifications"].as_array().unwrap().len(), 2);
    let r = env
        .get(path, &[("query", ""), ("pageSize", "0"), ("pageToken", "")])
        .await;
    assert_eq!(r.json["caseClassifications"].as_array().unwrap().len(), 10);
    let t = r.json["nextPageToken"].as_str().unwrap().to_string();
    let r = env.get(path, &[("pageToken", &t)]).await;
    assert!(!r.json["caseClassifications"].as_array().unwrap().is_empty());
    assert_eq!(env.get(path, &[("query", "nonsense")]).await.status, 400);
}

#[tokio::test]
async fn pretty_print_and_standard_parameters_are_accepted() {
    let env = Env::new().await;
    let case = env.create_case(PROJECT, "std params").await;
    let r = env
        .get(
            &format!("/v2/{}", name(&case)),
            &[
                ("$.xgafv", "2"),
                ("prettyPrint", "false"),
                ("quotaUser", "q"),
                ("fields", "name"),
                ("access_token", "t"),
                ("key", "k"),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert!(!String::from_utf8(r.bytes).unwrap().contains('\n'));
    let r = env
        .get(&format!("/v2/{}", name(&case)), &[("$.xgafv", "3")])
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn library_api_reports_errors_as_values() {
    let emu = Emulator::new(EmulatorConfig::default());
    let case = emu.create_case_as_customer(NewCustomerCase {
        display_name: "defaults".into(),
        ..Default::default()
    });
    assert_eq!(case["name"], "projects/demo-project/cases/10000001");
    assert_eq!(case["priority"], "P3");
    assert_eq!(case["creator"]["email"], "alex.customer@example.com");
    let bad = emu.create_case_as_customer(NewCustomerCase {
        display_name: "x".into(),
        priority: "P5".into(),
        ..Default::default()
    });
    assert_eq!(bad["error"]["code"], 400);
    let bad = emu.create_case_as_customer(NewCustomerCase {
        display_name: "x".into(),
        classification_id: Some("unknown".into()),
        ..Default::default()
    });
    assert_eq!(bad["error"]["status"], "INVALID_ARGUMENT");
    assert_eq!(
        emu.add_google_comment("999", "A", "x")["error"]["code"],
        404
    );
    assert_eq!(
        emu.add_google_comment("10000001", "A", "")["error"]["code"],
        400
    );
    let c = emu.add_customer_comment(
        "projects/demo-project/cases/10000001",
        "Pat",
        "pat@customer.example",
        "typed in the console",
    );
    assert_eq!(c["creator"]["email"], "pat@customer.example");
    assert!(emu.set_priority("10000001", "P9").is_err());
    assert!(emu.set_priority("999", "P1").is_err());
    emu.set_state("10000001", "ACTION_REQUIRED").unwrap();
    assert_eq!(emu.case("10000001").unwrap()["state"], "ACTION_REQUIRED");
    emu.close_case("10000001").unwrap();
    let closed = emu.case("10000001").unwrap()["updateTime"].clone();
    emu.close_case("10000001").unwrap();
    assert_eq!(emu.case("10000001").unwrap()["updateTime"], closed);
    assert!(emu.case("999").is_none());
    assert!(
        emu.attachment_bytes("projects/demo-project/cases/10000001/attachments/nope")
            .is_none()
    );
    assert_eq!(emu.cases().len(), 1);
}

#[tokio::test]
async fn the_binary_announces_its_address_and_serves() {
    use std::io::BufRead as _;
    /// Stops the child even when an assertion fails first.
    struct Child(std::process::Child);
    impl Drop for Child {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_csapi-emulator"))
        .args([
            "--port",
            "0",
            "--caller-email",
            "bot@p.iam.gserviceaccount.com",
            "--project",
            "p",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map(Child)
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_string();
    assert!(base.starts_with("http://127.0.0.1:"), "{line}");
    let http = reqwest::Client::new();
    let created: Value = http
        .post(format!("{base}/_control/cases"))
        .json(&json!({"displayName": "from the binary"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(created["name"], "projects/p/cases/10000001");
    let r = http
        .post(format!("{base}/v2/projects/p/cases/10000001/comments"))
        .json(&json!({"body": "hi"}))
        .send()
        .await
        .unwrap();
    let comment: Value = r.json().await.unwrap();
    assert_eq!(comment["creator"]["email"], "bot@p.iam.gserviceaccount.com");
    drop(child);
}
