//! The CRM contract suite run against the Jira adapter and the Jira emulator, plus what
//! only Jira needs checking: every request the adapter sends exists in Atlassian's OpenAPI
//! documents (path, method, query parameters, top-level body fields), a 429 with
//! `Retry-After` is waited out, and the Jira-specific shapes (label, component, internal
//! comments, JQL in the site's time zone, paging that stops at `since`) are what Jira
//! expects.

use chrono::{DateTime, Utc};
use jira_emulator::{FaultSpec, JiraEmulator, JiraEmulatorConfig, NewIssue, RecordedRequest};
use serde_json::Value;
use shared::adapters::jira::{JiraAuth, JiraConfig, JiraCrm, JiraSite, PriorityMap, Secret};
use shared::crm_contract::{
    self, ContractFixture, CrmTestDriver, DriverCapabilities, DriverResult, PersonCase,
};
use shared::domain::{GoogleCaseKey, NewCrmCase, Priority};
use shared::ports::Crm;
use shared::{ErrorClass, PortError};
use std::collections::BTreeSet;
use std::time::Instant;

/// The emulator's default person: an agent of the service project.
const AGENT: &str = "agent-1";
/// Issues per search page: small, so the suite's paging check reads several pages.
const SEARCH_PAGE: u32 = 5;

/// A support agent working in the emulated Jira, through its in-process control API.
pub struct EmulatorPerson {
    emulator: JiraEmulator,
    priorities: PriorityMap,
}

impl EmulatorPerson {
    fn issue_id(created: Value) -> DriverResult<String> {
        if let Some(error) = created.get("error") {
            return Err(format!("emulator refused the issue: {error}").into());
        }
        created
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| "emulator returned no issue id".into())
    }

    fn new_issue(&self, case: &PersonCase, created: Option<DateTime<Utc>>) -> NewIssue {
        NewIssue {
            summary: case.summary.clone(),
            description: case.description.clone(),
            priority: self.priorities.to_jira(case.priority).to_string(),
            sync_flag: case.flagged,
            created,
            ..NewIssue::default()
        }
    }
}

#[crm_contract::async_trait]
impl CrmTestDriver for EmulatorPerson {
    fn capabilities(&self) -> DriverCapabilities {
        DriverCapabilities {
            comment_page_size: shared::adapters::jira::COMMENT_PAGE_SIZE,
            search_page_size: SEARCH_PAGE as usize,
            comments_newest_first: true,
        }
    }

    fn person_name(&self) -> String {
        self.emulator
            .config()
            .users
            .iter()
            .find(|u| u.account_id == AGENT)
            .map(|u| u.display_name.clone())
            .unwrap_or_default()
    }

    fn unknown_case_id(&self) -> String {
        "99999999".into()
    }

    async fn open_case(&self, case: &PersonCase) -> DriverResult<String> {
        Self::issue_id(
            self.emulator
                .try_create_issue_as(AGENT, self.new_issue(case, None))?,
        )
    }

    async fn comment_as_person(&self, case_id: &str, body: &str) -> DriverResult<String> {
        let comment = self
            .emulator
            .try_add_comment_as(case_id, AGENT, body, false)?;
        comment
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| "emulator returned no comment id".into())
    }

    async fn attach_as_person(
        &self,
        case_id: &str,
        filename: &str,
        data: &[u8],
    ) -> DriverResult<String> {
        let attachment =
            self.emulator
                .try_add_attachment_as(case_id, AGENT, filename, "text/plain", data)?;
        attachment
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| "emulator returned no attachment id".into())
    }

    async fn open_case_updated_at(
        &self,
        case: &PersonCase,
        at: DateTime<Utc>,
    ) -> DriverResult<Option<String>> {
        Self::issue_id(
            self.emulator
                .try_create_issue_as(AGENT, self.new_issue(case, Some(at)))?,
        )
        .map(Some)
    }
}

pub struct JiraFixture {
    emulator: JiraEmulator,
    crm: JiraCrm,
    person: EmulatorPerson,
}

impl ContractFixture for JiraFixture {
    fn crm(&self) -> &dyn Crm {
        &self.crm
    }
    fn driver(&self) -> &dyn CrmTestDriver {
        &self.person
    }
}

fn config_for(base_url: &str) -> JiraConfig {
    let mut config = JiraConfig::new(JiraSite {
        base_url,
        auth: JiraAuth::Basic {
            email: "casesync@example.com".into(),
            api_token: Secret::new("casesync-token"),
        },
        project_key: "SUP",
        issue_type: "Service Request",
        sync_flag_field: "customfield_10050",
        google_case_field: "customfield_10051",
    });
    config.requests_per_second = 2000.0;
    config.search_page_size = SEARCH_PAGE;
    config
}

async fn fixture() -> JiraFixture {
    let running = JiraEmulator::spawn(JiraEmulatorConfig::default())
        .await
        .expect("the Jira emulator starts");
    let config = config_for(&running.base_url);
    let priorities = config.priorities.clone();
    let crm = JiraCrm::connect(config)
        .await
        .expect("the adapter connects to the emulator");
    JiraFixture {
        person: EmulatorPerson {
            emulator: running.emulator.clone(),
            priorities,
        },
        emulator: running.emulator,
        crm,
    }
}

/// One `#[tokio::test]` per check of the CRM contract suite.
mod contract {
    shared::crm_contract_tests!(super::fixture);
}

// ---- what connect learns ---------------------------------------------------------------

#[tokio::test]
async fn connect_reads_the_account_and_the_site_time_zone() {
    let f = fixture().await;
    assert_eq!(f.crm.site().account_id, "casesync-bot");
    assert_eq!(f.crm.site().time_zone.name(), "Europe/Berlin");
}

#[tokio::test]
async fn a_refused_token_or_a_foreign_account_stops_connect_as_systemic() {
    let running = JiraEmulator::spawn(JiraEmulatorConfig::default())
        .await
        .unwrap();
    let mut wrong = config_for(&running.base_url);
    wrong.api_token = Some(Secret::new("not-the-token"));
    let err = JiraCrm::connect(wrong).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Systemic, "{err}");
    assert!(!err.to_string().contains("not-the-token"), "{err}");

    let mut foreign = config_for(&running.base_url);
    foreign.own_account_id = Some("agent-1".into());
    let err = JiraCrm::connect(foreign).await.unwrap_err();
    assert!(matches!(err, PortError::Config(_)), "{err}");
}

// ---- Jira-specific shapes --------------------------------------------------------------

#[tokio::test]
async fn a_created_case_carries_label_component_flag_and_google_field() {
    let f = fixture().await;
    let number = crm_contract::unique_case_number();
    let created = f
        .crm
        .create_case(&NewCrmCase {
            summary: "VM down".into(),
            description: "CONTENT MIRRORED FROM GOOGLE SUPPORT:\nIt broke.".into(),
            priority: Priority::P0,
            google_case_name: format!("projects/p/cases/{number}"),
            google_case_number: number.clone(),
        })
        .await
        .unwrap();
    let issue = f.emulator.issue(&created.id).expect("the issue exists");
    assert_eq!(
        issue["labels"],
        serde_json::json!([format!("gcp-case-{number}")])
    );
    assert_eq!(issue["components"], serde_json::json!(["Google Cloud"]));
    assert_eq!(issue["syncFlag"], Value::Bool(true));
    assert_eq!(issue["priority"], "Highest");
    assert_eq!(
        issue["description"],
        "CONTENT MIRRORED FROM GOOGLE SUPPORT:\nIt broke."
    );
    assert!(
        created
            .url
            .as_deref()
            .is_some_and(|u| u.ends_with(&format!("/browse/{}", issue["key"].as_str().unwrap())))
    );
}

#[tokio::test]
async fn a_label_typed_by_a_person_does_not_make_a_counterpart() {
    let f = fixture().await;
    let number = crm_contract::unique_case_number();
    let created = f
        .emulator
        .try_create_issue_as(
            AGENT,
            NewIssue {
                summary: "Someone typed the label".into(),
                labels: vec![format!("gcp-case-{number}")],
                sync_flag: true,
                ..NewIssue::default()
            },
        )
        .unwrap();
    assert!(created.get("id").is_some());
    let key = GoogleCaseKey::from_case_name(&number).unwrap();
    assert_eq!(f.crm.find_by_google_case(&key).await.unwrap(), None);
}

#[tokio::test]
async fn comments_are_internal_notes_by_default_and_keep_their_text() {
    let f = fixture().await;
    let id = f.person.open_case(&person_case()).await.unwrap();
    let body = "[Google Comment 7 by Gina]\nfirst\n\nthird";
    let added = f.crm.add_comment(&id, body).await.unwrap();
    let issue = f.emulator.issue(&id).unwrap();
    let stored = issue["comments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == added.id.as_str())
        .expect("the comment is stored");
    assert_eq!(stored["internal"], Value::Bool(true));
    // The emulator reads ADF the way the adapter does: the same text on both sides.
    assert_eq!(stored["bodyText"], body);
    assert_eq!(stored["author"]["accountId"], "casesync-bot");
}

#[tokio::test]
async fn listing_comments_stops_at_since() {
    let f = fixture().await;
    let id = f.person.open_case(&person_case()).await.unwrap();
    for i in 0..120 {
        f.person
            .comment_as_person(&id, &format!("comment {i}"))
            .await
            .unwrap();
    }
    let all = f.crm.list_comments(&id, None).await.unwrap();
    assert_eq!(all.len(), 120);
    let pages = |f: &JiraFixture| {
        f.emulator
            .request_log()
            .iter()
            .filter(|r| r.operation.as_deref() == Some("getComments"))
            .count()
    };
    assert_eq!(pages(&f), 3, "120 comments are three pages of 50");
    f.emulator.clear_request_log();
    let newest = all.iter().map(|c| c.created_at).max().unwrap();
    let recent = f.crm.list_comments(&id, Some(newest)).await.unwrap();
    assert!(recent.iter().all(|c| c.created_at >= newest) && !recent.is_empty());
    assert_eq!(
        pages(&f),
        1,
        "the newest page reaches since: no further page"
    );
    let log = f.emulator.request_log();
    let query = log[0].query.as_deref().unwrap_or("");
    assert!(
        query.contains("orderBy=-created") && query.contains("maxResults=50"),
        "{query}"
    );
}

#[tokio::test]
async fn the_search_sends_minutes_in_the_site_time_zone() {
    let f = fixture().await;
    let since: DateTime<Utc> = "2026-11-29T20:04:59.999Z".parse().unwrap();
    f.crm.search_updated_since(since).await.unwrap();
    let log = f.emulator.request_log();
    let search = log
        .iter()
        .find(|r| r.operation.as_deref() == Some("searchAndReconsileIssuesUsingJqlPost"))
        .expect("a search was sent");
    let jql = search.body.as_ref().unwrap()["jql"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(jql.contains(r#"updated >= "2026-11-29 21:04""#), "{jql}");
    assert!(jql.contains(r#"cf[10050] = "Yes""#), "{jql}");
}

fn person_case() -> PersonCase {
    PersonCase {
        summary: "Agent case".into(),
        description: "opened by an agent".into(),
        priority: Priority::P2,
        flagged: true,
    }
}

// ---- failures ---------------------------------------------------------------------------

#[tokio::test]
async fn a_429_with_a_short_retry_after_is_waited_out() {
    let f = fixture().await;
    let id = f.person.open_case(&person_case()).await.unwrap();
    let before = f.emulator.counters().get("getIssue").copied().unwrap_or(0);
    f.emulator.inject_fault(FaultSpec {
        operation: "getIssue".into(),
        status: Some(429),
        count: Some(2),
        retry_after_seconds: Some(1),
        ..FaultSpec::default()
    });
    let started = Instant::now();
    let case = f.crm.get_case(&id).await.expect("retried after the 429s");
    assert_eq!(case.id, id);
    assert!(started.elapsed() >= std::time::Duration::from_secs(2));
    let after = f.emulator.counters().get("getIssue").copied().unwrap_or(0);
    assert_eq!(after - before, 3, "two refused calls and one that worked");
}

#[tokio::test]
async fn a_long_retry_after_goes_back_to_the_queue() {
    let f = fixture().await;
    let id = f.person.open_case(&person_case()).await.unwrap();
    f.emulator.inject_fault(FaultSpec {
        operation: "addComment".into(),
        status: Some(429),
        count: Some(1),
        retry_after_seconds: Some(30),
        ..FaultSpec::default()
    });
    let started = Instant::now();
    let err = f.crm.add_comment(&id, "hello").await.unwrap_err();
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(err.class(), ErrorClass::Retryable, "{err}");
    assert_eq!(err.retry_after(), Some(std::time::Duration::from_secs(30)));
    assert!(!err.to_string().contains("hello"), "{err}");
}

#[tokio::test]
async fn failures_are_classified_and_a_post_is_not_repeated_after_a_5xx() {
    let f = fixture().await;
    let id = f.person.open_case(&person_case()).await.unwrap();
    f.emulator.inject_lost_replies("addComment", 1);
    let err = f.crm.add_comment(&id, "once").await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Retryable);
    let comments = f.crm.list_comments(&id, None).await.unwrap();
    assert_eq!(comments.iter().filter(|c| c.body == "once").count(), 1);

    f.emulator.inject_failures("getIssue", 403, 1);
    assert_eq!(
        f.crm.get_case(&id).await.unwrap_err().class(),
        ErrorClass::Systemic
    );
    f.emulator.inject_failures("editIssue", 400, 1);
    assert_eq!(
        f.crm
            .set_priority(&id, Priority::P1)
            .await
            .unwrap_err()
            .class(),
        ErrorClass::Permanent
    );
    f.emulator.inject_failures("getIssue", 500, 1);
    // A GET is idempotent but a 500 carries no Retry-After: back to the queue.
    assert_eq!(
        f.crm.get_case(&id).await.unwrap_err().class(),
        ErrorClass::Retryable
    );
    f.emulator.delete_issue(&id).unwrap();
    assert!(f.crm.get_case(&id).await.unwrap_err().is_not_found());
}

// ---- OpenAPI conformance -------------------------------------------------------------------

/// The operations the adapter uses; the conformance workload must exercise all of them.
const ADAPTER_OPERATIONS: &[&str] = &[
    "getCurrentUser",
    "createIssue",
    "getIssue",
    "editIssue",
    "getTransitions",
    "doTransition",
    "getComments",
    "addComment",
    "addAttachment",
    "getAttachmentContent",
    "searchAndReconsileIssuesUsingJqlPost",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_conforms_to_the_openapi_documents() {
    let f = fixture().await;
    crm_contract::run_all(&f.crm, &f.person).await;
    let specs = Specs::load();
    let log = f.emulator.request_log();
    let mut seen = BTreeSet::new();
    let mut problems = Vec::new();
    for request in &log {
        assert_eq!(
            request.account_id.as_deref(),
            Some("casesync-bot"),
            "every API request comes from the adapter"
        );
        match specs.check(request) {
            Ok(operation_id) => {
                seen.insert(operation_id);
            }
            Err(problem) => problems.push(problem),
        }
    }
    assert!(
        problems.is_empty(),
        "non-conforming requests:\n{}",
        problems.join("\n")
    );
    for op in ADAPTER_OPERATIONS {
        assert!(
            seen.contains(*op),
            "the workload never sent {op}; seen: {seen:?}"
        );
    }
}

/// Atlassian's OpenAPI documents, as saved in `reference/crm/`.
struct Specs {
    docs: Vec<(&'static str, Value)>,
}

impl Specs {
    fn load() -> Specs {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/reference/crm");
        let load = |file: &str| -> Value {
            let path = format!("{dir}/{file}");
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
        };
        Specs {
            docs: vec![
                ("platform", load("jira-platform-swagger-v3.v3.json")),
                ("jsm", load("jira-service-management-swagger.v3.json")),
            ],
        }
    }

    /// The best-matching path template: same segment count, literals equal, `{…}`
    /// matching any segment; more literal segments win.
    fn template(&self, path: &str) -> Option<(&Value, String, &Value)> {
        let segments: Vec<&str> = path.split('/').collect();
        let mut best: Option<(usize, &Value, String, &Value)> = None;
        for (_, doc) in &self.docs {
            let Some(paths) = doc["paths"].as_object() else {
                continue;
            };
            for (template, item) in paths {
                let parts: Vec<&str> = template.split('/').collect();
                if parts.len() != segments.len() {
                    continue;
                }
                let mut literals = 0;
                let matches = parts.iter().zip(&segments).all(|(t, s)| {
                    if t.starts_with('{') && t.ends_with('}') {
                        !s.is_empty()
                    } else {
                        literals += 1;
                        t == s
                    }
                });
                if matches && best.as_ref().is_none_or(|(n, ..)| literals > *n) {
                    best = Some((literals, doc, template.clone(), item));
                }
            }
        }
        best.map(|(_, doc, template, item)| (doc, template, item))
    }

    fn check(&self, r: &RecordedRequest) -> Result<String, String> {
        let id = format!("{} {}", r.method, r.path);
        let (doc, template, item) = self
            .template(&r.path)
            .ok_or_else(|| format!("{id}: no path template in the OpenAPI documents"))?;
        let op = &item[r.method.to_ascii_lowercase()];
        if !op.is_object() {
            return Err(format!("{id}: {template} has no {} operation", r.method));
        }
        let operation_id = op["operationId"].as_str().unwrap_or("").to_string();
        if r.operation.as_deref() != Some(operation_id.as_str()) {
            return Err(format!(
                "{id}: the emulator served it as {:?}, the documents name {operation_id}",
                r.operation
            ));
        }
        let declared: BTreeSet<String> = item["parameters"]
            .as_array()
            .into_iter()
            .chain(op["parameters"].as_array())
            .flatten()
            .map(|p| resolve(doc, p))
            .filter(|p| p["in"] == "query")
            .filter_map(|p| p["name"].as_str().map(str::to_string))
            .collect();
        for pair in r
            .query
            .as_deref()
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
        {
            let name = pair.split('=').next().unwrap_or("");
            if !declared.contains(name) {
                return Err(format!(
                    "{id}: query parameter `{name}` is not declared for {operation_id} (declared: {declared:?})"
                ));
            }
        }
        let content_type = r.headers.get("content-type").map(|c| {
            c.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
        let Some(content_type) = content_type else {
            return Ok(operation_id);
        };
        let content = &op["requestBody"]["content"];
        let media = &content[content_type.as_str()];
        if !media.is_object() {
            return Err(format!(
                "{id}: {operation_id} takes no {content_type} body (takes {:?})",
                content.as_object().map(|c| c.keys().collect::<Vec<_>>())
            ));
        }
        if content_type == "multipart/form-data"
            && r.headers.get("x-atlassian-token").map(String::as_str) != Some("no-check")
        {
            return Err(format!(
                "{id}: a multipart upload without X-Atlassian-Token: no-check"
            ));
        }
        if let Some(Value::Object(body)) = &r.body {
            let schema = resolve(doc, &media["schema"]);
            let properties = schema_properties(doc, schema);
            for field in body.keys() {
                if !properties.contains(field) {
                    return Err(format!(
                        "{id}: body field `{field}` is not in the {operation_id} request schema ({properties:?})"
                    ));
                }
            }
        }
        Ok(operation_id)
    }
}

/// Follows `$ref`s (`#/components/...`) until a non-reference.
fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    let mut current = value;
    for _ in 0..32 {
        let Some(reference) = current["$ref"].as_str() else {
            return current;
        };
        let pointer = reference.trim_start_matches('#');
        current = doc.pointer(pointer).unwrap_or(&Value::Null);
    }
    current
}

/// The property names of an object schema, through `allOf`.
fn schema_properties(doc: &Value, schema: &Value) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = schema["properties"]
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    for part in schema["allOf"].as_array().into_iter().flatten() {
        names.extend(schema_properties(doc, resolve(doc, part)));
    }
    names
}

#[test]
fn the_conformance_check_rejects_what_jira_does_not_document() {
    let specs = Specs::load();
    let request =
        |method: &str, path: &str, query: Option<&str>, body: Option<Value>| RecordedRequest {
            method: method.into(),
            path: path.into(),
            query: query.map(str::to_string),
            operation: Some("getComments".into()),
            headers: body
                .as_ref()
                .map(|_| [("content-type".to_string(), "application/json".to_string())].into())
                .unwrap_or_default(),
            body,
            status: 200,
            account_id: Some("casesync-bot".into()),
        };
    let ok = request(
        "GET",
        "/rest/api/3/issue/10001/comment",
        Some("orderBy=-created&startAt=0"),
        None,
    );
    assert_eq!(specs.check(&ok).unwrap(), "getComments");
    let bad_param = request(
        "GET",
        "/rest/api/3/issue/10001/comment",
        Some("sort=desc"),
        None,
    );
    assert!(specs.check(&bad_param).unwrap_err().contains("`sort`"));
    let bad_path = request("GET", "/rest/api/3/issue/10001/notes", None, None);
    assert!(specs.check(&bad_path).is_err());
    let mut bad_body = request(
        "POST",
        "/rest/api/3/issue/10001/comment",
        None,
        Some(serde_json::json!({"body": {}, "public": true})),
    );
    bad_body.operation = Some("addComment".into());
    assert!(specs.check(&bad_body).unwrap_err().contains("`public`"));
}
