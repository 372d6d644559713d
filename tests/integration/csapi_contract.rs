//! Contract tests of the Cloud Support API adapter (`shared::adapters::csapi`) against the
//! CSAPI emulator: every port method over real HTTP, pagination, the search window, media
//! round trips, error classification under injected faults, and a conformance check that
//! every request the adapter sent is one the discovery document defines. Nobody can reach
//! Google from here, so the emulator (itself built from the discovery document) and the
//! conformance check are what keep the adapter honest about the wire.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use csapi_emulator::{Emulator, EmulatorConfig, NewCustomerCase, RunningEmulator};
use futures::{StreamExt, TryStreamExt};
use serde_json::Value;
use shared::adapters::csapi::{CsapiClient, CsapiConfig, PAGE_SIZE};
use shared::domain::{AttachmentUpload, NewGoogleCase, Priority};
use shared::ports::SupportApi;
use shared::support_contract::{self, CustomerCase, DriverResult, SupportActor};
use shared::{ErrorClass, PortError};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

const PROJECT: &str = "projects/demo-project";
const ORG: &str = "organizations/123456789012";
const CALLER: &str = "casesync@demo-project.iam.gserviceaccount.com";
const CLASSIFICATION: &str = "100IK2AKCLHMGRJ9CDGMOCGP8DM6UTB4BT262T31BT1M2T31DHNMENPO6KS36CPJ786L2TBFEHGN6NPI64R3CDHN8880G08I1H3MURR7DHII0GRCDTQM8";

struct Env {
    run: RunningEmulator,
    api: CsapiClient,
}

impl Env {
    async fn new() -> Env {
        let run = Emulator::spawn(EmulatorConfig::default())
            .await
            .expect("emulator starts");
        let api = CsapiClient::connect(CsapiConfig::emulator(run.base_url.clone()))
            .await
            .expect("adapter connects");
        Env { run, api }
    }

    fn emu(&self) -> &Emulator {
        &self.run.emulator
    }

    fn count(&self, method: &str) -> u64 {
        self.emu().counters().get(method).copied().unwrap_or(0)
    }

    /// A case opened by a customer person in the console.
    fn customer_case(&self, title: &str) -> String {
        let v = self.emu().create_case_as_customer(NewCustomerCase {
            parent: PROJECT.to_string(),
            display_name: title.to_string(),
            description: format!("{title}: description"),
            priority: "P3".to_string(),
            classification_id: None,
            creator_email: "alex@example.com".to_string(),
            creator_name: "Alex".to_string(),
            create_time: None,
        });
        v["name"]
            .as_str()
            .unwrap_or_else(|| panic!("customer case not created: {v}"))
            .to_string()
    }

    async fn casesync_case(&self, description: &str) -> shared::domain::GoogleCase {
        self.api
            .create_case(PROJECT, &new_case("Created by casesync", description))
            .await
            .expect("cases.create")
    }
}

fn new_case(display_name: &str, description: &str) -> NewGoogleCase {
    NewGoogleCase {
        display_name: display_name.to_string(),
        description: description.to_string(),
        classification_id: CLASSIFICATION.to_string(),
        priority: Priority::P2,
        subscriber_emails: vec!["ops@example.com".to_string()],
        test_case: true,
    }
}

fn upload(filename: &str, mime: &str, data: &[u8], chunk: usize) -> AttachmentUpload {
    let chunks: Vec<_> = data
        .chunks(chunk)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    AttachmentUpload {
        filename: filename.to_string(),
        mime_type: mime.to_string(),
        size_bytes: data.len() as u64,
        body: futures::stream::iter(chunks).boxed(),
        marker: None,
    }
}

/// Bytes that look nothing like text, including CRLF and boundary-like runs.
fn binary_data(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    let mut out: Vec<u8> = (0..len)
        .map(|_| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (x >> 24) as u8
        })
        .collect();
    let marker = b"\r\n--casesync_boundary\r\n\r\n{\"attachment\":{}}";
    out[100..100 + marker.len()].copy_from_slice(marker);
    out
}

fn failed(e: &PortError) -> (ErrorClass, Option<u16>) {
    match e {
        PortError::Failed { class, status, .. } => (*class, *status),
        other => panic!("expected a classified failure, got {other:?}"),
    }
}

fn number(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

#[tokio::test]
async fn cases_get_create_patch_close() {
    let env = Env::new().await;
    let created = env.casesync_case("Text\ncasesync: jira case ABC-1").await;
    assert!(created.name.starts_with("projects/demo-project/cases/"));
    assert_eq!(created.display_name, "Created by casesync");
    assert_eq!(created.description, "Text\ncasesync: jira case ABC-1");
    assert_eq!(created.classification_id, CLASSIFICATION);
    assert!(!created.classification_display_name.is_empty());
    assert_eq!(created.priority, Priority::P2);
    assert!(!created.closed);
    assert_eq!(created.creator.email.as_deref(), Some(CALLER));
    let stored = env.emu().case(&created.name).expect("stored");
    assert_eq!(stored["testCase"], true);
    assert_eq!(stored["subscriberEmailAddresses"][0], "ops@example.com");

    let got = env.api.get_case(&created.name).await.expect("cases.get");
    assert_eq!(got, created);

    // The same case answers under its organization too (docs/ARCHITECTURE.md#case-keys: keyed by number).
    let via_org = format!("{ORG}/cases/{}", number(&created.name));
    let got = env.api.get_case(&via_org).await.expect("cases.get via org");
    assert_eq!(number(&got.name), number(&created.name));

    let patched = env
        .api
        .update_priority(&created.name, Priority::P0)
        .await
        .expect("cases.patch");
    assert_eq!(patched.priority, Priority::P0);
    assert_eq!(
        patched.display_name, "Created by casesync",
        "mask kept the rest"
    );
    assert_eq!(
        env.emu().case(&created.name).unwrap()["subscriberEmailAddresses"][0],
        "ops@example.com",
        "the update mask keeps other fields"
    );
    assert!(patched.update_time > created.update_time);

    let closed = env
        .api
        .close_case(&created.name)
        .await
        .expect("cases.close");
    assert!(closed.closed);
    assert!(env.api.get_case(&created.name).await.unwrap().closed);

    // A case Google Support changes is read back the same way.
    let customer = env.customer_case("Disk slow");
    env.emu().set_priority(&customer, "P1").unwrap();
    let c = env.api.get_case(&customer).await.unwrap();
    assert_eq!(c.priority, Priority::P1);
    assert_eq!(c.creator.email.as_deref(), Some("alex@example.com"));
    assert!(!c.creator.google_support);
    env.emu().close_case(&customer).unwrap();
    assert!(env.api.get_case(&customer).await.unwrap().closed);
}

#[tokio::test]
async fn search_returns_only_cases_updated_after_the_window_start() {
    let env = Env::new().await;
    let quiet = env.customer_case("quiet");
    let busy = env.customer_case("busy");
    // The query has whole seconds (truncated down), so leave more than a second between
    // the last old write and the window start.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let since = Utc::now();
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    env.emu()
        .add_google_comment(&busy, "Support Engineer", "We are looking into it.");

    let found = env
        .api
        .search_cases_updated_since(PROJECT, since)
        .await
        .expect("cases.search");
    let names: Vec<_> = found.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, [busy.as_str()]);
    assert!(found[0].update_time > since);

    // Organization-wide, as poll-google runs it.
    let found = env
        .api
        .search_cases_updated_since(ORG, since)
        .await
        .expect("cases.search org");
    assert_eq!(found.len(), 1);
    assert_eq!(number(&found[0].name), number(&busy));

    let everything = env
        .api
        .search_cases_updated_since(PROJECT, since - chrono::Duration::days(1))
        .await
        .unwrap();
    let all: BTreeSet<_> = everything.iter().map(|c| c.name.clone()).collect();
    assert_eq!(all, BTreeSet::from([quiet, busy]));

    let log = env.emu().request_log();
    let search = log
        .iter()
        .find(|r| r.api_method.as_deref() == Some("cases.search"))
        .unwrap();
    let query = query_pairs(&search.query);
    let expected = format!("update_time>\"{}\"", since.format("%Y-%m-%dT%H:%M:%SZ"));
    assert!(
        query.iter().any(|(k, v)| k == "query" && *v == expected),
        "{query:?}, wanted {expected}"
    );
}

#[tokio::test]
async fn find_by_creator_and_text_matches_the_quoted_line_exactly() {
    let env = Env::new().await;
    let line = r#"casesync: rt case "7\8""#;
    let mine = env.casesync_case(&format!("Problem.\n{line}")).await;
    let other_line = env.casesync_case("Problem.\ncasesync: rt case 9").await;
    // The same text by somebody else is not a counterpart.
    let v = env.emu().create_case_as_customer(NewCustomerCase {
        parent: PROJECT.to_string(),
        display_name: "copy".into(),
        description: format!("pasted: {line}"),
        priority: "P4".into(),
        classification_id: None,
        creator_email: "alex@example.com".into(),
        creator_name: "Alex".into(),
        create_time: None,
    });
    assert!(v["name"].is_string(), "{v}");

    let found = env
        .api
        .find_cases_by_creator_and_text(PROJECT, CALLER, line)
        .await
        .expect("cases.search");
    let names: Vec<_> = found.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, [mine.name.as_str()]);
    assert_ne!(mine.name, other_line.name);

    let none = env
        .api
        .find_cases_by_creator_and_text(PROJECT, "someone@example.com", line)
        .await
        .unwrap();
    assert!(none.is_empty());
}

/// The strict emulator (tests/emulators/csapi-emulator/README.md): a CSAPI that reads the discovery document literally ("separated by
/// `AND`") refused the juxtaposed lookup with 400, and every CRM→Google creation failed.
/// The emulator refuses that form the same way; the adapter's lookup sends the `AND`
/// form and finds the case.
#[tokio::test]
async fn the_lookup_joins_its_terms_with_and_as_the_document_requires() {
    let env = Env::new().await;
    let line = "casesync: rt case 4";
    let mine = env.casesync_case(&format!("Problem.\n{line}")).await;

    let juxtaposed = format!(r#"creator.email="{CALLER}" "{line}""#);
    let r = reqwest::Client::new()
        .get(format!("{}/v2/{PROJECT}/cases:search", env.run.base_url))
        .query(&[("query", &juxtaposed)])
        .send()
        .await
        .expect("emulator answers");
    assert_eq!(r.status().as_u16(), 400);
    let body: Value = r.json().await.expect("Google's error shape");
    assert_eq!(body["error"]["code"], 400, "{body}");
    assert_eq!(body["error"]["status"], "INVALID_ARGUMENT", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("joined with AND")),
        "{body}"
    );

    let found = env
        .api
        .find_cases_by_creator_and_text(PROJECT, CALLER, line)
        .await
        .expect("the lookup is accepted");
    let names: Vec<_> = found.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, [mine.name.as_str()]);

    let log = env.emu().request_log();
    let sent: Vec<String> = log
        .iter()
        .filter(|r| r.api_method.as_deref() == Some("cases.search"))
        .filter_map(|r| {
            query_pairs(&r.query)
                .into_iter()
                .find(|(k, _)| k == "query")
                .map(|(_, v)| v)
        })
        .collect();
    assert_eq!(
        sent.last().map(String::as_str),
        Some(format!(r#"creator.email="{CALLER}" AND "{line}""#).as_str()),
        "{sent:?}"
    );
}

#[tokio::test]
async fn comments_are_created_and_listed_across_pages_oldest_first() {
    let env = Env::new().await;
    let case = env.customer_case("chatty");
    for i in 0..240 {
        if i % 2 == 0 {
            env.emu()
                .add_google_comment(&case, "Support Engineer", &format!("google {i}"));
        } else {
            env.emu().add_customer_comment(
                &case,
                "Alex",
                "alex@example.com",
                &format!("customer {i}"),
            );
        }
    }
    let mine = env
        .api
        .create_comment(&case, "[Company Comment 7 by Kim]\nHello ✓")
        .await
        .expect("cases.comments.create");
    assert!(mine.name.starts_with(&format!("{case}/comments/")));
    assert_eq!(mine.body, "[Company Comment 7 by Kim]\nHello ✓");
    assert_eq!(mine.creator.email.as_deref(), Some(CALLER));
    assert!(!mine.creator.google_support);

    let before = env.count("cases.comments.list");
    let comments = env.api.list_comments(&case).await.expect("comments.list");
    assert_eq!(
        env.count("cases.comments.list") - before,
        3,
        "241 comments in pages of {PAGE_SIZE}"
    );
    assert_eq!(comments.len(), 241);
    assert!(
        comments
            .windows(2)
            .all(|w| w[0].create_time <= w[1].create_time),
        "oldest first"
    );
    assert_eq!(comments[0].body, "google 0");
    assert!(comments[0].creator.google_support);
    assert_eq!(
        comments[1].creator.email.as_deref(),
        Some("alex@example.com")
    );
    assert_eq!(comments.last().unwrap().name, mine.name);
    let distinct: BTreeSet<_> = comments.iter().map(|c| &c.name).collect();
    assert_eq!(distinct.len(), 241);

    for r in env.emu().request_log() {
        if r.api_method.as_deref() == Some("cases.comments.list") {
            assert!(
                query_pairs(&r.query).contains(&("pageSize".into(), "100".into())),
                "{}",
                r.query
            );
        }
    }
}

#[tokio::test]
async fn a_too_long_comment_is_refused_without_a_request() {
    let env = Env::new().await;
    let case = env.customer_case("long");
    let before = env.count("cases.comments.create");
    let body = "x".repeat(12_801);
    let e = env.api.create_comment(&case, &body).await.unwrap_err();
    assert_eq!(failed(&e).0, ErrorClass::Permanent);
    assert_eq!(env.count("cases.comments.create"), before);
    // Exactly at the limit (Unicode scalar values, not bytes) is fine.
    let at_limit = "é".repeat(12_800);
    let c = env.api.create_comment(&case, &at_limit).await.unwrap();
    assert_eq!(c.body.chars().count(), 12_800);
}

#[tokio::test]
async fn search_and_attachments_read_every_page() {
    let env = Env::new().await;
    let since = Utc::now() - chrono::Duration::seconds(5);
    for i in 0..230 {
        env.customer_case(&format!("case {i}"));
    }
    let before = env.count("cases.search");
    let cases = env
        .api
        .search_cases_updated_since(PROJECT, since)
        .await
        .unwrap();
    assert_eq!(cases.len(), 230);
    assert_eq!(env.count("cases.search") - before, 3);
    let distinct: BTreeSet<_> = cases.iter().map(|c| &c.name).collect();
    assert_eq!(distinct.len(), 230);

    let case = &cases[0].name;
    for i in 0..205 {
        let v = env.emu().add_google_attachment(
            case,
            "Support Engineer",
            &format!("log-{i}.txt"),
            "text/plain",
            format!("line {i}\n").as_bytes(),
        );
        assert!(v["name"].is_string(), "{v}");
    }
    let before = env.count("cases.attachments.list");
    let attachments = env.api.list_attachments(case).await.unwrap();
    assert_eq!(attachments.len(), 205);
    assert_eq!(env.count("cases.attachments.list") - before, 3);
    assert!(attachments.iter().all(|a| a.creator.google_support));
    assert!(attachments.iter().all(|a| a.mime_type == "text/plain"));
    let a = attachments
        .iter()
        .find(|a| a.filename == "log-0.txt")
        .unwrap();
    assert_eq!(a.size_bytes, 7);
}

async fn collect(stream: shared::ports::ByteStream) -> Vec<u8> {
    stream
        .try_fold(Vec::new(), |mut acc, chunk| async move {
            acc.extend_from_slice(&chunk);
            Ok(acc)
        })
        .await
        .expect("download streams")
}

#[tokio::test]
async fn media_round_trip_keeps_bytes_name_and_type() {
    let env = Env::new().await;
    let case = env.customer_case("with files");
    let data = binary_data(3 * 1024 * 1024 + 17);
    let filename = "Résumé \"final\" (2).pdf";
    let created = env
        .api
        .upload_attachment(&case, upload(filename, "application/pdf", &data, 64 * 1024))
        .await
        .expect("media.upload");
    assert!(created.name.starts_with(&format!("{case}/attachments/")));
    assert_eq!(created.filename, filename);
    assert_eq!(created.mime_type, "application/pdf");
    assert_eq!(created.size_bytes, data.len() as u64);
    assert_eq!(created.creator.email.as_deref(), Some(CALLER));
    assert_eq!(
        env.emu().attachment_bytes(&created.name).as_deref(),
        Some(&data[..]),
        "the emulator stored the same bytes"
    );

    let listed = env.api.list_attachments(&case).await.unwrap();
    assert_eq!(listed, vec![created.clone()]);

    let downloaded = collect(env.api.download_attachment(&created).await.unwrap()).await;
    assert_eq!(downloaded.len(), data.len());
    assert!(downloaded == data, "identical bytes after the round trip");

    // Google's attachments download the same way; an empty file too.
    let v = env.emu().add_google_attachment(
        &case,
        "Support Engineer",
        "trace.bin",
        "application/octet-stream",
        &data[..1000],
    );
    assert!(v["name"].is_string(), "{v}");
    let google = env
        .api
        .list_attachments(&case)
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.filename == "trace.bin")
        .unwrap();
    assert_eq!(
        collect(env.api.download_attachment(&google).await.unwrap()).await,
        &data[..1000]
    );
    let empty = env
        .api
        .upload_attachment(&case, upload("empty.txt", "text/plain", &[], 1))
        .await
        .unwrap();
    assert_eq!(empty.size_bytes, 0);
    assert!(
        collect(env.api.download_attachment(&empty).await.unwrap())
            .await
            .is_empty()
    );

    let up = env
        .emu()
        .request_log()
        .into_iter()
        .find(|r| r.api_method.as_deref() == Some("media.upload"))
        .unwrap();
    assert_eq!(up.path, format!("/upload/v2/{case}/attachments"));
    assert_eq!(
        query_pairs(&up.query),
        vec![("uploadType".into(), "multipart".into())]
    );
}

#[tokio::test]
async fn a_failing_source_stream_keeps_its_own_error() {
    let env = Env::new().await;
    let case = env.customer_case("broken source");
    let body = futures::stream::iter(vec![
        Ok(Bytes::from_static(b"first")),
        Err(PortError::NotFound {
            operation: "crm download".into(),
            what: "attachment 9".into(),
        }),
    ])
    .boxed();
    let e = env
        .api
        .upload_attachment(
            &case,
            AttachmentUpload {
                filename: "x.txt".into(),
                mime_type: "text/plain".into(),
                size_bytes: 10,
                body,
                marker: None,
            },
        )
        .await
        .unwrap_err();
    assert!(e.is_not_found(), "{e:?}");
    assert!(env.api.list_attachments(&case).await.unwrap().is_empty());
}

#[tokio::test]
async fn classifications_are_found_by_id() {
    let env = Env::new().await;
    assert!(env.api.classification_exists(CLASSIFICATION).await.unwrap());
    assert!(!env.api.classification_exists("NO-SUCH-ID").await.unwrap());
}

#[tokio::test]
async fn errors_are_classified() {
    let env = Env::new().await;
    let case = env.customer_case("faults");
    let secret_body = "confidential comment text";

    // 400: the request is wrong; repeating it cannot help.
    env.emu().inject_failures("cases.create", 400, 1);
    let e = env
        .api
        .create_case(PROJECT, &new_case("x", "y"))
        .await
        .unwrap_err();
    assert_eq!(failed(&e), (ErrorClass::Permanent, Some(400)));
    assert!(e.to_string().contains("cases.create"), "{e}");

    // 400 to a search: casesync's own query is wrong, not the message; systemic, so the
    // case is retried after the fix instead of dead-lettered.
    env.emu().inject_failures("cases.search", 400, 2);
    let e = env
        .api
        .search_cases_updated_since(PROJECT, Utc::now())
        .await
        .unwrap_err();
    assert_eq!(failed(&e), (ErrorClass::Systemic, Some(400)));
    let e = env
        .api
        .find_cases_by_creator_and_text(PROJECT, CALLER, "casesync: rt case 1")
        .await
        .unwrap_err();
    assert_eq!(failed(&e), (ErrorClass::Systemic, Some(400)));
    env.emu()
        .inject_failures("caseClassifications.search", 400, 1);
    let e = env
        .api
        .classification_exists(CLASSIFICATION)
        .await
        .unwrap_err();
    assert_eq!(failed(&e), (ErrorClass::Systemic, Some(400)));

    // 403: not the message's fault.
    env.emu().inject_failures("cases.search", 403, 1);
    let e = env
        .api
        .search_cases_updated_since(PROJECT, Utc::now())
        .await
        .unwrap_err();
    assert_eq!(failed(&e), (ErrorClass::Systemic, Some(403)));
    assert!(e.to_string().contains("cases.search"), "{e}");

    // 404: a real missing case, and an injected one.
    let e = env
        .api
        .get_case("projects/demo-project/cases/99999999")
        .await
        .unwrap_err();
    assert!(e.is_not_found(), "{e:?}");
    assert!(e.to_string().contains("cases.get"), "{e}");
    env.emu().inject_failures("cases.comments.list", 404, 1);
    assert!(
        env.api
            .list_comments(&case)
            .await
            .unwrap_err()
            .is_not_found()
    );

    // 429 with Retry-After: 1 (the emulator's): waited out in process, then success.
    let before = env.count("cases.comments.list");
    env.emu().inject_failures("cases.comments.list", 429, 1);
    let started = Instant::now();
    env.api
        .list_comments(&case)
        .await
        .expect("retried after 429");
    assert!(started.elapsed() >= Duration::from_millis(950));
    assert_eq!(env.count("cases.comments.list") - before, 2);

    // ... also for a POST: a 429 says nothing was done.
    env.emu().inject_failures("cases.comments.create", 429, 1);
    env.api
        .create_comment(&case, secret_body)
        .await
        .expect("retried after 429");

    // ... but not forever: after two in-process retries it is the caller's.
    let before = env.count("cases.get");
    env.emu().inject_failures("cases.get", 429, 5);
    let e = env.api.get_case(&case).await.unwrap_err();
    assert_eq!(failed(&e), (ErrorClass::Retryable, Some(429)));
    assert_eq!(e.retry_after(), Some(Duration::from_secs(1)));
    assert_eq!(env.count("cases.get") - before, 3);
    env.emu().clear_faults();

    // 500 and 503: retryable, left to the queue (no Retry-After here).
    env.emu().inject_failures("cases.comments.create", 500, 1);
    let before = env.count("cases.comments.create");
    let e = env
        .api
        .create_comment(&case, secret_body)
        .await
        .unwrap_err();
    assert_eq!(failed(&e), (ErrorClass::Retryable, Some(500)));
    assert!(
        !e.to_string().contains(secret_body),
        "no bodies in errors: {e}"
    );
    assert_eq!(env.count("cases.comments.create") - before, 1);
    env.emu().inject_failures("cases.get", 503, 1);
    let e = env.api.get_case(&case).await.unwrap_err();
    assert_eq!(failed(&e), (ErrorClass::Retryable, Some(503)));
    env.emu().inject_failures("cases.patch", 503, 1);
    let e = env
        .api
        .update_priority(&case, Priority::P1)
        .await
        .unwrap_err();
    assert_eq!(failed(&e), (ErrorClass::Retryable, Some(503)));

    // A lost reply is retryable and the POST is not repeated behind the caller's back.
    env.emu().inject_lost_replies("cases.comments.create", 1);
    let e = env
        .api
        .create_comment(&case, "lost reply comment")
        .await
        .unwrap_err();
    assert_eq!(failed(&e), (ErrorClass::Retryable, Some(503)));
    let comments = env.api.list_comments(&case).await.unwrap();
    assert_eq!(
        comments
            .iter()
            .filter(|c| c.body == "lost reply comment")
            .count(),
        1
    );

    // Media errors follow the same rules.
    let file = upload("secret-name.txt", "text/plain", b"data", 4);
    env.emu().inject_failures("media.upload", 503, 1);
    let e = env.api.upload_attachment(&case, file).await.unwrap_err();
    assert_eq!(failed(&e), (ErrorClass::Retryable, Some(503)));
    assert!(
        !e.to_string().contains("secret-name"),
        "no file names in errors: {e}"
    );
    env.emu().inject_failures("media.upload", 403, 1);
    let e = env
        .api
        .upload_attachment(&case, upload("a.txt", "text/plain", b"data", 4))
        .await
        .unwrap_err();
    assert_eq!(failed(&e), (ErrorClass::Systemic, Some(403)));
    env.emu().inject_failures("media.upload", 400, 1);
    let e = env
        .api
        .upload_attachment(&case, upload("a.txt", "text/plain", b"data", 4))
        .await
        .unwrap_err();
    assert_eq!(failed(&e), (ErrorClass::Permanent, Some(400)));
    let ok = env
        .api
        .upload_attachment(&case, upload("a.txt", "text/plain", b"data", 4))
        .await
        .unwrap();
    env.emu().inject_failures("media.download", 429, 1);
    assert_eq!(
        collect(env.api.download_attachment(&ok).await.unwrap()).await,
        b"data"
    );
    env.emu().inject_failures("media.download", 500, 1);
    let e = env.api.download_attachment(&ok).await.err().unwrap();
    assert_eq!(failed(&e), (ErrorClass::Retryable, Some(500)));
    env.emu().inject_failures("media.download", 404, 1);
    assert!(
        env.api
            .download_attachment(&ok)
            .await
            .err()
            .unwrap()
            .is_not_found()
    );

    // Nothing listens here: a transport error, retryable.
    let dead = CsapiClient::connect(CsapiConfig {
        request_timeout: Duration::from_secs(2),
        ..CsapiConfig::emulator("http://127.0.0.1:9")
    })
    .await
    .unwrap();
    let e = dead.get_case(&case).await.unwrap_err();
    assert_eq!(failed(&e), (ErrorClass::Retryable, None));
    let e = dead.download_attachment(&ok).await.err().unwrap();
    assert_eq!(failed(&e).0, ErrorClass::Retryable);
}

// ---------------------------------------------------------------------------------------
// Conformance: every request the adapter sends is one the discovery document defines.
// ---------------------------------------------------------------------------------------

/// Exercises every adapter method, then checks each request in the emulator's log against
/// the discovery document: method and path template, query parameter names and types, and
/// every body field (recursively) against the request schema.
#[tokio::test]
async fn every_request_conforms_to_the_discovery_document() {
    let env = Env::new().await;
    let doc = Discovery::load();

    let customer = env.customer_case("conformance");
    env.emu()
        .add_google_comment(&customer, "Support Engineer", "hi");
    let created = env.casesync_case("Text\ncasesync: jira case ABC-1").await;
    env.api.get_case(&created.name).await.unwrap();
    env.api
        .search_cases_updated_since(ORG, Utc::now() - chrono::Duration::hours(1))
        .await
        .unwrap();
    env.api
        .find_cases_by_creator_and_text(PROJECT, CALLER, "casesync: jira case ABC-1")
        .await
        .unwrap();
    env.api
        .update_priority(&created.name, Priority::P1)
        .await
        .unwrap();
    env.api
        .create_comment(&created.name, "[Google Comment 1 by X]\nhello")
        .await
        .unwrap();
    env.api.list_comments(&customer).await.unwrap();
    let att = env
        .api
        .upload_attachment(
            &created.name,
            upload("a.bin", "application/octet-stream", &[1, 2, 3], 2),
        )
        .await
        .unwrap();
    env.api.list_attachments(&created.name).await.unwrap();
    collect(env.api.download_attachment(&att).await.unwrap()).await;
    env.api.classification_exists(CLASSIFICATION).await.unwrap();
    env.api.close_case(&created.name).await.unwrap();
    // Error paths send the same requests.
    env.emu().inject_failures("cases.get", 500, 1);
    let _ = env.api.get_case(&created.name).await;

    let log = env.emu().request_log();
    let mut seen = BTreeSet::new();
    let mut problems = Vec::new();
    for r in &log {
        match doc.check(&r.method, &r.path, &r.query, r.body.as_ref()) {
            Ok(id) => {
                if r.api_method.as_deref() != Some(id.as_str()) {
                    problems.push(format!(
                        "{} {}: discovery says {id}, the emulator routed it to {:?}",
                        r.method, r.path, r.api_method
                    ));
                }
                seen.insert(id);
            }
            Err(p) => problems.push(format!("{} {}?{}: {p}", r.method, r.path, r.query)),
        }
    }
    // The log keeps JSON bodies only; the upload's JSON part is checked directly.
    let metadata = shared::adapters::csapi::media::upload_metadata("a.bin");
    if let Err(p) = doc.check_value(
        &metadata,
        &serde_json::json!({"$ref": "CreateAttachmentRequest"}),
        "upload metadata",
    ) {
        problems.push(p);
    }
    assert!(
        problems.is_empty(),
        "non-conforming requests:\n{}",
        problems.join("\n")
    );
    let expected: BTreeSet<String> = [
        "cases.get",
        "cases.search",
        "cases.create",
        "cases.patch",
        "cases.close",
        "cases.comments.list",
        "cases.comments.create",
        "cases.attachments.list",
        "media.upload",
        "media.download",
        "caseClassifications.search",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(seen, expected, "every adapter method was exercised");
}

#[test]
fn the_conformance_checker_rejects_what_it_should() {
    let doc = Discovery::load();
    let ok = doc.check(
        "GET",
        "/v2/projects/p/cases/1",
        "%24alt=json%3Benum-encoding%3Dint",
        None,
    );
    assert_eq!(ok.unwrap(), "cases.get");
    assert!(
        doc.check("GET", "/v2/projects/p/cases/1", "view=FULL", None)
            .is_err()
    );
    assert!(
        doc.check("DELETE", "/v2/projects/p/cases/1", "", None)
            .is_err()
    );
    assert!(
        doc.check("GET", "/v2/projects/p/tickets/1", "", None)
            .is_err()
    );
    assert!(
        doc.check("GET", "/v2/projects/p/cases:search", "pageSize=ten", None)
            .is_err()
    );
    let body = serde_json::json!({"body": "x", "bodyHtml": "<b>x</b>"});
    assert!(
        doc.check("POST", "/v2/projects/p/cases/1/comments", "", Some(&body))
            .is_err()
    );
    let body =
        serde_json::json!({"displayName": "x", "classification": {"id": "a", "product": "b"}});
    assert!(
        doc.check("POST", "/v2/projects/p/cases", "", Some(&body))
            .is_err()
    );
    let body = serde_json::json!({"displayName": "x", "priority": 9});
    assert!(
        doc.check("POST", "/v2/projects/p/cases", "", Some(&body))
            .is_err()
    );
    let body = serde_json::json!({"displayName": "x", "state": "CLOSED"});
    assert!(
        doc.check("POST", "/v2/projects/p/cases", "", Some(&body))
            .is_err(),
        "output-only fields are not sent"
    );
    assert!(
        doc.check(
            "PATCH",
            "/v2/projects/p/cases/1",
            "updateMask=severity",
            Some(&serde_json::json!({}))
        )
        .is_err()
    );
    assert_eq!(
        doc.check(
            "GET",
            "/v2/projects/p/cases/1/attachments/a1:download",
            "alt=media",
            None
        )
        .unwrap(),
        "media.download"
    );
    assert_eq!(
        doc.check(
            "POST",
            "/upload/v2/projects/p/cases/1/attachments",
            "uploadType=multipart",
            None
        )
        .unwrap(),
        "media.upload"
    );
}

/// Splits a raw query string into percent-decoded pairs.
fn query_pairs(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One REST method of the discovery document.
struct Method {
    id: String,
    http: String,
    /// Path regexes: the REST path and, for media upload, the upload path.
    paths: Vec<(regex::Regex, usize)>,
    query_params: BTreeMap<String, Value>,
    request: Option<String>,
}

struct Discovery {
    doc: Value,
    methods: Vec<Method>,
}

impl Discovery {
    fn load() -> Discovery {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/reference/cloudsupport-v2-discovery.json"
        );
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("reading the discovery document at {path}: {e}"));
        let doc: Value = serde_json::from_str(&text).expect("discovery JSON");
        let mut methods = Vec::new();
        collect_methods(&doc, &mut methods);
        assert!(
            methods.len() > 15,
            "discovery methods found: {}",
            methods.len()
        );
        Discovery { doc, methods }
    }

    fn schema(&self, name: &str) -> &Value {
        &self.doc["schemas"][name]
    }

    /// The discovery id (without `cloudsupport.`) of the method this request is, or why
    /// it is none.
    fn check(
        &self,
        http: &str,
        path: &str,
        query: &str,
        body: Option<&Value>,
    ) -> Result<String, String> {
        // The most specific template wins (`…/attachments/{id}:download` over
        // `…/attachments/{id}`, whose id segment would also match `x:download`).
        let method = self
            .methods
            .iter()
            .filter(|m| m.http == http)
            .filter_map(|m| {
                m.paths
                    .iter()
                    .filter(|(re, _)| re.is_match(path))
                    .map(|(_, literal)| *literal)
                    .max()
                    .map(|l| (l, m))
            })
            .max_by_key(|(l, _)| *l)
            .map(|(_, m)| m)
            .ok_or_else(|| "no discovery method has this HTTP method and path".to_string())?;

        for (key, value) in query_pairs(query) {
            let standard = |k: &str| self.doc["parameters"].get(k).cloned();
            // Google accepts system parameters with a `$` prefix (`$alt`); the official
            // client sends `$alt=json;enum-encoding=int`.
            let spec = method
                .query_params
                .get(&key)
                .cloned()
                .or_else(|| standard(&key))
                .or_else(|| key.strip_prefix('$').and_then(standard))
                .ok_or_else(|| format!("query parameter {key:?} is not defined"))?;
            check_query_value(&key, &value, &spec, method, self)?;
        }

        match (&method.request, body) {
            (_, None) => {}
            (None, Some(b)) if b.as_object().is_some_and(|o| o.is_empty()) => {}
            (None, Some(b)) => return Err(format!("{} takes no body, got {b}", method.id)),
            (Some(schema), Some(b)) => {
                self.check_value(b, &serde_json::json!({"$ref": schema}), "body")?
            }
        }
        Ok(method.id.clone())
    }

    /// Checks a JSON value against a discovery schema fragment, recursively.
    fn check_value(&self, v: &Value, spec: &Value, at: &str) -> Result<(), String> {
        if let Some(r) = spec.get("$ref").and_then(Value::as_str) {
            let schema = self.schema(r);
            if schema.is_null() {
                return Err(format!("{at}: schema {r} is not defined"));
            }
            return self.check_value(v, schema, at);
        }
        if spec.get("readOnly") == Some(&Value::Bool(true)) {
            return Err(format!("{at} is output only"));
        }
        if let Some(values) = spec.get("enum").and_then(Value::as_array) {
            // Names, or their index with `enum-encoding=int`.
            let ok = match v {
                Value::String(s) => values.iter().any(|e| e == s),
                Value::Number(n) => n.as_u64().is_some_and(|i| (i as usize) < values.len()),
                _ => false,
            };
            return if ok {
                Ok(())
            } else {
                Err(format!("{at}: {v} is not one of {values:?}"))
            };
        }
        let ty = spec.get("type").and_then(Value::as_str).unwrap_or("object");
        let format = spec.get("format").and_then(Value::as_str);
        match (ty, v) {
            ("object", Value::Object(fields)) => {
                let props = spec.get("properties").and_then(Value::as_object);
                for (k, fv) in fields {
                    let Some(p) = props.and_then(|p| p.get(k)) else {
                        return Err(format!("{at}.{k} is not a field of the schema"));
                    };
                    self.check_value(fv, p, &format!("{at}.{k}"))?;
                }
                Ok(())
            }
            ("array", Value::Array(items)) => items.iter().enumerate().try_for_each(|(i, item)| {
                self.check_value(item, &spec["items"], &format!("{at}[{i}]"))
            }),
            ("string", Value::String(s)) => match format {
                Some("int64") | Some("uint64") => s
                    .parse::<i128>()
                    .map(|_| ())
                    .map_err(|_| format!("{at}: {s:?} is not an int64")),
                Some("google-datetime") => DateTime::parse_from_rfc3339(s)
                    .map(|_| ())
                    .map_err(|_| format!("{at}: {s:?} is not an RFC 3339 time")),
                _ => Ok(()),
            },
            // int64 may also come as a JSON number.
            ("string", Value::Number(_)) if matches!(format, Some("int64") | Some("uint64")) => {
                Ok(())
            }
            ("integer", Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(()),
            ("number", Value::Number(_)) => Ok(()),
            ("boolean", Value::Bool(_)) => Ok(()),
            _ => Err(format!("{at}: {v} is not of type {ty}")),
        }
    }
}

fn check_query_value(
    key: &str,
    value: &str,
    spec: &Value,
    method: &Method,
    doc: &Discovery,
) -> Result<(), String> {
    let base = key.trim_start_matches('$');
    match spec.get("type").and_then(Value::as_str) {
        Some("integer") => {
            value
                .parse::<i64>()
                .map_err(|_| format!("{key}={value:?} is not an integer"))?;
        }
        Some("boolean") if value != "true" && value != "false" => {
            return Err(format!("{key}={value:?} is not a boolean"));
        }
        _ => {}
    }
    if let Some(values) = spec.get("enum").and_then(Value::as_array) {
        // `alt` may carry options after `;` (`json;enum-encoding=int`).
        let head = if base == "alt" {
            value.split(';').next().unwrap_or("")
        } else {
            value
        };
        if !values.iter().any(|v| v == head) {
            return Err(format!("{key}={value:?} is not one of {values:?}"));
        }
    }
    if spec.get("format").and_then(Value::as_str) == Some("google-fieldmask") {
        let schema = method
            .request
            .as_deref()
            .map(|r| doc.schema(r))
            .ok_or_else(|| format!("{key} on a method without a request body"))?;
        for path in value.split(',').filter(|p| !p.is_empty()) {
            let camel = snake_to_camel(path.trim());
            if schema["properties"].get(&camel).is_none() {
                return Err(format!("{key}: {path:?} is not a field of the request"));
            }
        }
    }
    Ok(())
}

fn snake_to_camel(s: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in s.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn collect_methods(node: &Value, out: &mut Vec<Method>) {
    if let Some(methods) = node.get("methods").and_then(Value::as_object) {
        for m in methods.values() {
            let params = m["parameters"].as_object().cloned().unwrap_or_default();
            let mut paths = vec![path_regex(
                &format!("/{}", m["path"].as_str().unwrap_or("")),
                &params,
            )];
            if let Some(upload) = m["mediaUpload"]["protocols"]["simple"]["path"].as_str() {
                paths.push(path_regex(upload, &params));
            }
            out.push(Method {
                id: m["id"]
                    .as_str()
                    .unwrap_or("")
                    .trim_start_matches("cloudsupport.")
                    .to_string(),
                http: m["httpMethod"].as_str().unwrap_or("").to_string(),
                paths,
                query_params: params
                    .into_iter()
                    .filter(|(_, p)| p["location"] == "query")
                    .collect(),
                request: m["request"]["$ref"].as_str().map(String::from),
            });
        }
    }
    if let Some(resources) = node.get("resources").and_then(Value::as_object) {
        for r in resources.values() {
            collect_methods(r, out);
        }
    }
}

/// A path template (`/v2/{+name}:close`) as an anchored regex, each variable replaced by
/// its parameter's pattern; also returns the template's literal length for specificity.
fn path_regex(template: &str, params: &serde_json::Map<String, Value>) -> (regex::Regex, usize) {
    let mut re = String::from("^");
    let mut literal = 0;
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let (lit, tail) = rest.split_at(open);
        re.push_str(&regex::escape(lit));
        literal += lit.len();
        let close = tail.find('}').expect("closed variable");
        let var = tail[1..close].trim_start_matches('+');
        let pattern = params
            .get(var)
            .and_then(|p| p["pattern"].as_str())
            .map(|p| p.trim_start_matches('^').trim_end_matches('$').to_string())
            .unwrap_or_else(|| "[^/]+".to_string());
        re.push_str(&format!("(?:{pattern})"));
        rest = &tail[close + 1..];
    }
    re.push_str(&regex::escape(rest));
    literal += rest.len();
    re.push('$');
    (regex::Regex::new(&re).expect("template regex"), literal)
}

// ---- the SupportApi contract suite -----------------------------------------------------

/// People on Google's side of the emulator (a customer, Google Support), through its
/// in-process control API: the second voice the shared `SupportApi` suite needs.
struct EmulatorActor {
    emulator: Emulator,
}

const CUSTOMER_NAME: &str = "Alex Customer";
const CUSTOMER_EMAIL: &str = "alex@example.com";

fn name_of(what: &str, v: Result<Value, csapi_emulator::ApiError>) -> DriverResult<String> {
    let v = v?;
    v["name"]
        .as_str()
        .map(String::from)
        .ok_or_else(|| format!("the emulator's {what} has no name: {v}").into())
}

fn wire_priority(p: Priority) -> &'static str {
    match p {
        Priority::P0 => "P0",
        Priority::P1 => "P1",
        Priority::P2 => "P2",
        Priority::P3 => "P3",
        Priority::P4 => "P4",
    }
}

#[support_contract::async_trait]
impl SupportActor for EmulatorActor {
    fn parent(&self) -> String {
        PROJECT.to_string()
    }

    fn caller_email(&self) -> String {
        self.emulator.config().caller_email
    }

    fn customer(&self) -> (String, String) {
        (CUSTOMER_NAME.to_string(), CUSTOMER_EMAIL.to_string())
    }

    fn classification_id(&self) -> String {
        CLASSIFICATION.to_string()
    }

    fn page_size(&self) -> usize {
        PAGE_SIZE as usize
    }

    async fn open_case_as_customer(&self, case: &CustomerCase) -> DriverResult<String> {
        name_of(
            "case",
            self.emulator.try_create_case_as_customer(NewCustomerCase {
                parent: PROJECT.to_string(),
                display_name: case.display_name.clone(),
                description: case.description.clone(),
                priority: wire_priority(case.priority).to_string(),
                classification_id: None,
                creator_email: CUSTOMER_EMAIL.to_string(),
                creator_name: CUSTOMER_NAME.to_string(),
                create_time: case.created,
            }),
        )
    }

    async fn comment_as_engineer(
        &self,
        case_name: &str,
        author: &str,
        body: &str,
    ) -> DriverResult<String> {
        name_of(
            "comment",
            self.emulator.try_add_comment(
                case_name,
                csapi_emulator::Actor::google(author, None),
                body,
            ),
        )
    }

    async fn attach_as_engineer(
        &self,
        case_name: &str,
        author: &str,
        filename: &str,
        data: &[u8],
    ) -> DriverResult<String> {
        name_of(
            "attachment",
            self.emulator.try_add_attachment(
                case_name,
                csapi_emulator::Actor::google(author, None),
                filename,
                "application/octet-stream",
                data,
            ),
        )
    }

    async fn set_priority(&self, case_name: &str, priority: Priority) -> DriverResult<()> {
        Ok(self
            .emulator
            .set_priority(case_name, wire_priority(priority))?)
    }

    async fn close(&self, case_name: &str) -> DriverResult<()> {
        Ok(self.emulator.close_case(case_name)?)
    }
}

/// The shared `SupportApi` contract (the one the in-memory double passes too), every check
/// against the CSAPI client on one emulator, so the double cannot drift from the client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_support_api_contract_suite_passes_against_the_client() {
    let env = Env::new().await;
    let actor = EmulatorActor {
        emulator: env.emu().clone(),
    };
    support_contract::run_all(&env.api, &actor).await;
}
