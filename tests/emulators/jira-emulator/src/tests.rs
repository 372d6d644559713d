//! HTTP-level tests against a served emulator: they talk to it the way the casesync
//! adapter will (reqwest, Basic auth, JSON, multipart) and check the contract details a
//! client depends on.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{FaultSpec, JiraEmulator, JiraEmulatorConfig, NewIssue};

struct Site {
    base: String,
    emu: JiraEmulator,
    http: reqwest::Client,
}

fn adf(text: &str) -> Value {
    crate::adf::text_to_adf(text)
}

fn is_jira_time(value: &Value) -> bool {
    let s = value.as_str().unwrap_or("");
    // 2026-11-29T20:04:05.123+0000
    s.len() == 28
        && s.as_bytes()[10] == b'T'
        && s.as_bytes()[19] == b'.'
        && s.ends_with("+0000")
        && chrono::DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.3f%z").is_ok()
}

impl Site {
    async fn new() -> Site {
        Self::with(JiraEmulatorConfig::default()).await
    }

    async fn with(config: JiraEmulatorConfig) -> Site {
        let running = JiraEmulator::spawn(config).await.unwrap();
        Site {
            base: running.base_url,
            emu: running.emulator,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    fn bot(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        request.basic_auth("casesync@example.com", Some("casesync-token"))
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let response = self.bot(request).send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, body)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(self.http.get(self.url(path))).await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(self.http.post(self.url(path)).json(&body)).await
    }

    async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(self.http.put(self.url(path)).json(&body)).await
    }

    async fn create(&self, summary: &str) -> Value {
        let (status, body) = self
            .post(
                "/rest/api/3/issue",
                json!({"fields": {
                    "project": {"key": "SUP"},
                    "issuetype": {"name": "Service Request"},
                    "summary": summary,
                    "description": adf("CONTENT MIRRORED FROM GOOGLE SUPPORT:\nit is broken"),
                    "priority": {"name": "High"},
                    "labels": ["gcp-case-123"],
                    "components": [{"name": "Google Cloud"}],
                    "customfield_10050": [{"value": "Yes"}],
                    "customfield_10051": "projects/p/cases/123",
                }}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }
}

#[tokio::test]
async fn authentication_is_required_and_attributed() {
    let site = Site::new().await;
    let anonymous = site
        .http
        .get(site.url("/rest/api/3/myself"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let body: Value = anonymous.json().await.unwrap();
    assert!(
        body["errorMessages"][0]
            .as_str()
            .unwrap()
            .contains("not authenticated")
    );

    let wrong = site
        .http
        .get(site.url("/rest/api/3/myself"))
        .basic_auth("casesync@example.com", Some("nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);

    let response = site
        .bot(site.http.get(site.url("/rest/api/3/myself")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-aaccountid"], "casesync-bot");
    let me: Value = response.json().await.unwrap();
    assert_eq!(me["accountId"], "casesync-bot");
    assert_eq!(me["emailAddress"], "casesync@example.com");
    assert_eq!(me["displayName"], "casesync");
    assert_eq!(me["timeZone"], "Europe/Berlin");

    let bearer: Value = site
        .http
        .get(site.url("/rest/api/3/myself"))
        .bearer_auth("agent-token")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(bearer["accountId"], "agent-1");

    // Writes carry the caller's identity.
    let created = site.create("attributed").await;
    let (_, issue) = site
        .get(&format!(
            "/rest/api/3/issue/{}?fields=reporter,creator",
            created["key"].as_str().unwrap()
        ))
        .await;
    assert_eq!(issue["fields"]["reporter"]["accountId"], "casesync-bot");
    assert_eq!(issue["fields"]["creator"]["accountId"], "casesync-bot");
    assert_eq!(site.emu.counters()["getCurrentUser"], 4);
}

#[tokio::test]
async fn the_time_zone_is_configurable() {
    let site = Site::with(JiraEmulatorConfig {
        time_zone: "America/New_York".into(),
        ..JiraEmulatorConfig::default()
    })
    .await;
    let (_, me) = site.get("/rest/api/3/myself").await;
    assert_eq!(me["timeZone"], "America/New_York");
}

#[tokio::test]
async fn creates_and_reads_an_issue() {
    let site = Site::new().await;
    let created = site.create("Disk is slow").await;
    assert_eq!(created["id"], "10001");
    assert_eq!(created["key"], "SUP-1");
    assert_eq!(
        created["self"],
        format!("{}/rest/api/3/issue/10001", site.base)
    );

    let (status, issue) = site
        .get("/rest/api/3/issue/SUP-1?fields=summary,description,status,priority,labels,components,created,updated,attachment,comment,customfield_10050,customfield_10051&expand=names")
        .await;
    assert_eq!(status, StatusCode::OK);
    let fields = &issue["fields"];
    assert_eq!(fields["summary"], "Disk is slow");
    assert_eq!(fields["description"]["type"], "doc");
    assert_eq!(fields["status"]["name"], "To Do");
    assert_eq!(fields["status"]["statusCategory"]["key"], "new");
    assert_eq!(
        fields["priority"],
        json!({
        "self": format!("{}/rest/api/3/priority/2", site.base),
        "iconUrl": format!("{}/images/icons/priorities/high.svg", site.base),
        "name": "High", "id": "2"})
    );
    assert_eq!(fields["labels"], json!(["gcp-case-123"]));
    assert_eq!(fields["components"][0]["name"], "Google Cloud");
    assert!(is_jira_time(&fields["created"]), "{}", fields["created"]);
    assert!(is_jira_time(&fields["updated"]));
    assert_eq!(fields["attachment"], json!([]));
    assert_eq!(fields["comment"]["total"], 0);
    assert_eq!(fields["customfield_10050"][0]["value"], "Yes");
    assert_eq!(fields["customfield_10051"], "projects/p/cases/123");
    assert!(
        fields.get("reporter").is_none(),
        "only the asked-for fields"
    );
    assert_eq!(
        issue["names"]["customfield_10050"],
        "Synchronize with Google Cloud Support"
    );

    // By id, by lower-case key, and 404 for a missing one.
    assert_eq!(site.get("/rest/api/3/issue/10001").await.0, StatusCode::OK);
    assert_eq!(site.get("/rest/api/3/issue/sup-1").await.0, StatusCode::OK);
    let (status, body) = site.get("/rest/api/3/issue/SUP-99").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body["errorMessages"][0],
        "Issue does not exist or you do not have permission to see it."
    );

    // The control view has the text.
    let view = site.emu.issue("SUP-1").unwrap();
    assert_eq!(
        view["description"],
        "CONTENT MIRRORED FROM GOOGLE SUPPORT:\nit is broken"
    );
    assert_eq!(view["syncFlag"], true);
    assert_eq!(view["googleCaseName"], "projects/p/cases/123");
}

#[tokio::test]
async fn rejects_invalid_fields_like_jira() {
    let site = Site::new().await;
    let base = json!({
        "project": {"key": "SUP"},
        "issuetype": {"id": "10002"},
        "summary": "x",
    });
    let with = |extra: Value| {
        let mut fields = base.clone();
        for (k, v) in extra.as_object().unwrap() {
            fields[k] = v.clone();
        }
        json!({"fields": fields})
    };

    let (status, body) = site
        .post("/rest/api/3/issue", with(json!({"customfield_99999": "x"})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"errorMessages": [], "errors": {"customfield_99999": "Field 'customfield_99999' cannot be set. It is not on the appropriate screen, or unknown."}})
    );

    let (status, body) = site
        .post(
            "/rest/api/3/issue",
            with(json!({"description": "plain text"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["errors"]["description"]
            .as_str()
            .unwrap()
            .contains("Atlassian Document")
    );

    let (status, body) = site
        .post(
            "/rest/api/3/issue",
            with(json!({"customfield_10050": {"value": "Yes"}})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["errors"]["customfield_10050"].is_string());

    let (status, body) = site
        .post(
            "/rest/api/3/issue",
            with(json!({"customfield_10050": [{"value": "No"}]})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    let (status, body) = site
        .post("/rest/api/3/issue", with(json!({"priority": {"name": "P1"}, "components": [{"name": "Nope"}], "labels": ["has space"]})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let errors = body["errors"].as_object().unwrap();
    assert!(
        errors.contains_key("priority")
            && errors.contains_key("components")
            && errors.contains_key("labels")
    );

    let (status, body) = site
        .post(
            "/rest/api/3/issue",
            json!({"fields": {"project": {"key": "SUP"}}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["errors"]["summary"].is_string() && body["errors"]["issuetype"].is_string());

    // The checkbox also takes option ids, and select-style ids as numbers.
    let (status, _) = site
        .post(
            "/rest/api/3/issue",
            with(json!({"customfield_10050": [{"id": "10100"}], "priority": {"id": "1"}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    // Not JSON → 415; not an object → 400.
    let response = site
        .bot(site.http.post(site.url("/rest/api/3/issue")).body("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        site.post("/rest/api/3/issue", json!([1])).await.0,
        StatusCode::BAD_REQUEST
    );
    assert!(site.emu.issues().len() == 1);
}

#[tokio::test]
async fn edits_bump_updated_only_on_change() {
    let site = Site::new().await;
    site.create("edit me").await;
    let updated = |issue: &Value| issue["fields"]["updated"].as_str().unwrap().to_string();
    let (_, before) = site.get("/rest/api/3/issue/SUP-1?fields=updated").await;
    tokio::time::sleep(Duration::from_millis(5)).await;

    let (status, _) = site
        .put("/rest/api/3/issue/SUP-1", json!({"fields": {"priority": {"name": "Highest"}, "customfield_10051": "projects/p/cases/9"}}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, after) = site
        .get("/rest/api/3/issue/SUP-1?fields=updated,priority,customfield_10051")
        .await;
    assert_eq!(after["fields"]["priority"]["name"], "Highest");
    assert_eq!(after["fields"]["customfield_10051"], "projects/p/cases/9");
    assert!(updated(&after) > updated(&before));

    tokio::time::sleep(Duration::from_millis(5)).await;
    site.put(
        "/rest/api/3/issue/SUP-1",
        json!({"fields": {"priority": {"id": "1"}}}),
    )
    .await;
    let (_, same) = site.get("/rest/api/3/issue/SUP-1?fields=updated").await;
    assert_eq!(
        updated(&same),
        updated(&after),
        "setting the same value is no change"
    );

    let (status, _) = site
        .put("/rest/api/3/issue/SUP-1", json!({"update": {"labels": [{"add": "second"}, {"remove": "gcp-case-123"}], "customfield_10050": [{"set": []}]}}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let view = site.emu.issue("SUP-1").unwrap();
    assert_eq!(view["labels"], json!(["second"]));
    assert_eq!(view["syncFlag"], false);

    let (status, body) = site
        .put(
            "/rest/api/3/issue/SUP-1",
            json!({"fields": {"status": {"name": "Done"}}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["errors"]["status"]
            .as_str()
            .unwrap()
            .contains("cannot be set")
    );

    let (status, body) = site
        .put(
            "/rest/api/3/issue/SUP-1?returnIssue=true",
            json!({"fields": {"summary": "renamed"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["fields"]["summary"], "renamed");
    assert_eq!(
        site.put("/rest/api/3/issue/SUP-404", json!({"fields": {}}))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn transitions_follow_the_workflow() {
    let site = Site::new().await;
    site.create("workflow").await;
    let (status, body) = site
        .get("/rest/api/3/issue/SUP-1/transitions?expand=transitions.fields")
        .await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = body["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["Start Progress", "Done"]);
    let done = &body["transitions"][1];
    assert_eq!(done["id"], "31");
    assert_eq!(done["to"]["statusCategory"]["key"], "done");
    assert!(done["fields"]["resolution"]["allowedValues"].is_array());

    // Not available from To Do.
    let (status, body) = site
        .post(
            "/rest/api/3/issue/SUP-1/transitions",
            json!({"transition": {"id": "41"}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["errorMessages"][0].as_str().unwrap().contains("41"));
    // A field that is not on the transition's screen.
    let (status, body) = site
        .post(
            "/rest/api/3/issue/SUP-1/transitions",
            json!({"transition": {"id": "11"}, "fields": {"resolution": {"name": "Done"}}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["errors"]["resolution"].is_string());

    let (_, before) = site.get("/rest/api/3/issue/SUP-1?fields=updated").await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let (status, _) = site
        .post(
            "/rest/api/3/issue/SUP-1/transitions",
            json!({"transition": {"id": "11"}}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, issue) = site
        .get("/rest/api/3/issue/SUP-1?fields=status,updated,resolution")
        .await;
    assert_eq!(
        issue["fields"]["status"]["statusCategory"]["key"],
        "indeterminate"
    );
    assert!(issue["fields"]["updated"].as_str() > before["fields"]["updated"].as_str());

    let (status, _) = site
        .post("/rest/api/3/issue/SUP-1/transitions", json!({"transition": {"id": 31}, "fields": {"resolution": {"name": "Won't Do"}}, "update": {"comment": [{"add": {"body": adf("closing")}}]}}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let view = site.emu.issue("SUP-1").unwrap();
    assert_eq!(view["statusCategory"], "done");
    assert_eq!(view["resolution"], "Won't Do");
    assert_eq!(view["comments"][0]["bodyText"], "closing");
    let (_, body) = site.get("/rest/api/3/issue/SUP-1/transitions").await;
    assert_eq!(body["transitions"][0]["name"], "Reopen");

    site.post(
        "/rest/api/3/issue/SUP-1/transitions",
        json!({"transition": {"id": "41"}}),
    )
    .await;
    let (_, issue) = site
        .get("/rest/api/3/issue/SUP-1?fields=status,resolution")
        .await;
    assert_eq!(issue["fields"]["status"]["name"], "To Do");
    assert_eq!(issue["fields"]["resolution"], Value::Null);

    // The control API moves it directly and sets the default resolution.
    site.emu.set_status("SUP-1", "Done").unwrap();
    assert_eq!(site.emu.issue("SUP-1").unwrap()["resolution"], "Done");
    assert!(site.emu.set_status("SUP-1", "Nope").is_err());
}

#[tokio::test]
async fn comments_page_order_and_mark_internal_notes() {
    let site = Site::new().await;
    site.create("comments").await;
    let (_, before) = site.get("/rest/api/3/issue/SUP-1?fields=updated").await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    for i in 0..3 {
        let (status, comment) = site
            .post(
                "/rest/api/3/issue/SUP-1/comment",
                json!({"body": adf(&format!("bot {i}"))}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{comment}");
        assert_eq!(comment["author"]["accountId"], "casesync-bot");
        assert_eq!(comment["jsdPublic"], true);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let (status, internal) = site
        .post(
            "/rest/api/3/issue/SUP-1/comment?expand=properties",
            json!({"body": adf("[Google Comment 7 by Ann]\nsecret"),
                   "properties": [{"key": "sd.public.comment", "value": {"internal": true}}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(internal["jsdPublic"], false);
    assert_eq!(internal["properties"][0]["key"], "sd.public.comment");
    tokio::time::sleep(Duration::from_millis(2)).await;
    site.emu
        .add_comment_as("SUP-1", "agent-1", "agent says hi", false);

    let (_, after) = site.get("/rest/api/3/issue/SUP-1?fields=updated").await;
    assert!(after["fields"]["updated"].as_str() > before["fields"]["updated"].as_str());

    let bodies = |page: &Value| -> Vec<String> {
        page["comments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| crate::adf::adf_to_text(&c["body"]))
            .collect()
    };
    let (_, page) = site
        .get("/rest/api/3/issue/SUP-1/comment?startAt=0&maxResults=2")
        .await;
    assert_eq!(page["total"], 5);
    assert_eq!(page["maxResults"], 2);
    assert_eq!(bodies(&page), vec!["bot 0", "bot 1"]);
    let (_, page) = site
        .get("/rest/api/3/issue/SUP-1/comment?startAt=4&maxResults=2")
        .await;
    assert_eq!(bodies(&page), vec!["agent says hi"]);
    let (_, page) = site
        .get("/rest/api/3/issue/SUP-1/comment?orderBy=-created&maxResults=2&expand=properties")
        .await;
    assert_eq!(
        bodies(&page),
        vec!["agent says hi", "[Google Comment 7 by Ann]\nsecret"]
    );
    assert_eq!(page["comments"][0]["author"]["displayName"], "Alex Agent");
    assert_eq!(
        page["comments"][1]["properties"][0]["value"]["internal"],
        true
    );
    assert!(
        page["comments"][0]["properties"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let (_, page) = site
        .get("/rest/api/3/issue/SUP-1/comment?orderBy=%2Bcreated&maxResults=1")
        .await;
    assert_eq!(bodies(&page), vec!["bot 0"]);
    assert_eq!(
        site.get("/rest/api/3/issue/SUP-1/comment?orderBy=author")
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
    let (_, page) = site.get("/rest/api/3/issue/SUP-1/comment").await;
    assert!(page["comments"][0].get("properties").is_none());

    // Plain-string bodies are refused by v3, as by real Jira.
    let (status, body) = site
        .post("/rest/api/3/issue/SUP-1/comment", json!({"body": "plain"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"errorMessages": [], "errors": {"comment": "Comment body is not valid!"}})
    );
    let (status, _) = site
        .post(
            "/rest/api/3/issue/SUP-1/comment",
            json!({"body": {"type": "doc", "content": []}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // The property can be read back one comment at a time.
    let id = internal["id"].as_str().unwrap();
    let (status, property) = site
        .get(&format!(
            "/rest/api/3/comment/{id}/properties/sd.public.comment"
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(property["value"]["internal"], true);

    let view = site.emu.issue("SUP-1").unwrap();
    assert_eq!(view["comments"][3]["internal"], true);
    assert_eq!(
        view["comments"][3]["bodyText"],
        "[Google Comment 7 by Ann]\nsecret"
    );
    assert_eq!(view["comments"][4]["author"]["accountId"], "agent-1");
}

#[tokio::test]
async fn jsm_comments_share_the_internal_flag() {
    let site = Site::new().await;
    site.create("jsm").await;
    site.emu
        .add_comment_as("SUP-1", "agent-1", "public reply", false);
    let (status, created) = site
        .post(
            "/rest/servicedeskapi/request/SUP-1/comment",
            json!({"body": "internal note", "public": false}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(created["public"], false);
    assert!(created["created"]["epochMillis"].is_i64());
    let (_, page) = site
        .get("/rest/servicedeskapi/request/SUP-1/comment?internal=false")
        .await;
    assert_eq!(page["size"], 1);
    assert_eq!(page["values"][0]["body"], "public reply");
    assert_eq!(page["isLastPage"], true);
    let (_, page) = site.get("/rest/api/3/issue/SUP-1/comment").await;
    assert_eq!(page["comments"][1]["jsdPublic"], false);
    let (status, body) = site
        .post(
            "/rest/servicedeskapi/request/SUP-1/comment",
            json!({"body": "x"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["errorMessage"].is_string());
    let (_, desks) = site.get("/rest/servicedeskapi/servicedesk").await;
    assert_eq!(desks["values"][0]["projectKey"], "SUP");
    assert_eq!(desks["values"][0]["id"], "1");
    assert_eq!(
        site.get("/rest/servicedeskapi/servicedesk/2").await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn attachments_need_the_xsrf_header_and_round_trip() {
    let site = Site::new().await;
    site.create("attach").await;
    let bytes: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    let form = || {
        reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(bytes.clone())
                .file_name("trace.log")
                .mime_str("text/plain")
                .unwrap(),
        )
    };
    let refused = site
        .bot(
            site.http
                .post(site.url("/rest/api/3/issue/SUP-1/attachments"))
                .multipart(form()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(refused.text().await.unwrap(), "XSRF check failed");

    let (status, body) = site
        .send(
            site.http
                .post(site.url("/rest/api/3/issue/SUP-1/attachments"))
                .header("X-Atlassian-Token", "no-check")
                .multipart(form()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let attachment = &body[0];
    assert_eq!(attachment["filename"], "trace.log");
    assert_eq!(attachment["size"], 1000);
    assert_eq!(attachment["mimeType"], "text/plain");
    assert_eq!(attachment["author"]["accountId"], "casesync-bot");
    assert!(is_jira_time(&attachment["created"]));
    let id = attachment["id"].as_str().unwrap().to_string();

    let (_, issue) = site.get("/rest/api/3/issue/SUP-1?fields=attachment").await;
    assert_eq!(issue["fields"]["attachment"][0]["id"], id.as_str());
    let (_, meta) = site.get(&format!("/rest/api/3/attachment/{id}")).await;
    assert_eq!(
        meta["id"],
        id.parse::<u64>().unwrap(),
        "metadata ids are integers"
    );

    // Default: 303 to a media URL that needs no credentials.
    let redirect = site
        .bot(
            site.http
                .get(site.url(&format!("/rest/api/3/attachment/content/{id}"))),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(redirect.status(), StatusCode::SEE_OTHER);
    let location = redirect.headers()["location"].to_str().unwrap().to_string();
    let media = site.http.get(&location).send().await.unwrap();
    assert_eq!(media.status(), StatusCode::OK);
    assert_eq!(media.bytes().await.unwrap().to_vec(), bytes);
    assert_eq!(
        site.http
            .get(format!("{location}x"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );

    let direct = site
        .bot(site.http.get(site.url(&format!(
            "/rest/api/3/attachment/content/{id}?redirect=false"
        ))))
        .send()
        .await
        .unwrap();
    assert_eq!(direct.status(), StatusCode::OK);
    assert_eq!(direct.bytes().await.unwrap().to_vec(), bytes);
    let ranged = site
        .bot(site.http.get(site.url(&format!(
            "/rest/api/3/attachment/content/{id}?redirect=false"
        ))))
        .header("Range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(ranged.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        ranged.bytes().await.unwrap().to_vec(),
        bytes[10..20].to_vec()
    );

    assert_eq!(site.emu.attachment_bytes(&id).unwrap(), bytes);
    let added = site
        .emu
        .add_attachment_as("SUP-1", "agent-1", "shot.png", "image/png", b"png");
    assert_eq!(added["author"]["accountId"], "agent-1");
    assert_eq!(
        site.emu.issue("SUP-1").unwrap()["attachments"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        site.get("/rest/api/3/attachment/99999").await.0,
        StatusCode::NOT_FOUND
    );
}

async fn search_keys(site: &Site, jql: &str, max: u32, post: bool) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let (status, body) = if post {
            let mut request = json!({"jql": jql, "maxResults": max, "fields": ["key", "updated"]});
            if let Some(t) = &token {
                request["nextPageToken"] = json!(t);
            }
            site.post("/rest/api/3/search/jql", request).await
        } else {
            let mut path = format!(
                "/rest/api/3/search/jql?jql={}&maxResults={max}&fields=key,updated",
                jql.replace(' ', "%20")
                    .replace('"', "%22")
                    .replace('=', "%3D")
            );
            if let Some(t) = &token {
                path.push_str(&format!("&nextPageToken={t}"));
            }
            site.get(&path).await
        };
        assert_eq!(status, StatusCode::OK, "{body}");
        let keys = body["issues"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["key"].as_str().unwrap().to_string())
            .collect();
        pages.push(keys);
        if body["isLast"] == true {
            assert!(body.get("nextPageToken").is_none());
            break;
        }
        token = Some(body["nextPageToken"].as_str().unwrap().to_string());
        assert!(pages.len() < 20, "paging never ends");
    }
    pages
}

#[tokio::test]
async fn search_pages_with_next_page_tokens() {
    let site = Site::new().await;
    for i in 0..7 {
        site.emu.create_issue_as(
            "agent-1",
            NewIssue {
                summary: format!("issue {i}"),
                sync_flag: i != 3,
                ..NewIssue::default()
            },
        );
    }
    let jql = r#"project = SUP AND cf[10050] = "Yes" ORDER BY key ASC"#;
    for post in [false, true] {
        let pages = search_keys(&site, jql, 2, post).await;
        assert_eq!(pages.len(), 3);
        assert_eq!(pages[0], vec!["SUP-1", "SUP-2"]);
        assert_eq!(pages[1], vec!["SUP-3", "SUP-5"]);
        assert_eq!(pages[2], vec!["SUP-6", "SUP-7"]);
    }
    // A page boundary that falls on the last item still ends with isLast.
    let pages = search_keys(&site, "project = SUP ORDER BY key DESC", 3, true).await;
    assert_eq!(
        pages.concat(),
        vec![
            "SUP-7", "SUP-6", "SUP-5", "SUP-4", "SUP-3", "SUP-2", "SUP-1"
        ]
    );
    assert_eq!(pages.len(), 3);

    // Only ids unless fields are named.
    let (_, body) = site
        .post("/rest/api/3/search/jql", json!({"jql": "key = SUP-1"}))
        .await;
    assert_eq!(body["issues"], json!([{"id": "10001"}]));
    assert_eq!(body["isLast"], true);

    // A token belongs to its query.
    let (_, first) = site
        .post(
            "/rest/api/3/search/jql",
            json!({"jql": "project = SUP", "maxResults": 1}),
        )
        .await;
    let (status, _) = site
        .post("/rest/api/3/search/jql", json!({"jql": "project = SUP AND key = SUP-1", "nextPageToken": first["nextPageToken"]}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn search_refuses_bad_jql_and_the_removed_api() {
    let site = Site::new().await;
    site.create("x").await;
    let (status, body) = site
        .post(
            "/rest/api/3/search/jql",
            json!({"jql": "project = SUP AND updated >= 2026-11-29 10:00"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["errorMessages"][0]
            .as_str()
            .unwrap()
            .starts_with("Error in the JQL Query")
    );
    let (status, body) = site
        .post(
            "/rest/api/3/search/jql",
            json!({"jql": "ORDER BY key DESC"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["errorMessages"][0]
            .as_str()
            .unwrap()
            .contains("Unbounded")
    );
    let (status, _) = site
        .post(
            "/rest/api/3/search/jql",
            json!({"jql": "project = SUP", "startAt": 0}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "unknown keys are refused");
    let (status, body) = site.get("/rest/api/3/search?jql=project%3DSUP").await;
    assert_eq!(status, StatusCode::GONE);
    assert!(
        body["errorMessages"][0]
            .as_str()
            .unwrap()
            .contains("/rest/api/3/search/jql")
    );
}

#[tokio::test]
async fn search_reads_dates_in_the_site_time_zone() {
    let site = Site::new().await;
    let created = chrono::DateTime::parse_from_rfc3339("2026-11-29T10:30:40.500Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    site.emu.create_issue_as(
        "agent-1",
        NewIssue {
            summary: "old".into(),
            sync_flag: true,
            created: Some(created),
            ..NewIssue::default()
        },
    );
    let hits = |jql: &'static str| {
        let site = &site;
        async move {
            let (status, body) = site
                .post(
                    "/rest/api/3/search/jql",
                    json!({"jql": jql, "fields": ["updated"]}),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            body["issues"].as_array().unwrap().len()
        }
    };
    assert_eq!(
        hits(r#"project = SUP AND updated >= "2026-11-29 11:30""#).await,
        1
    );
    assert_eq!(
        hits(r#"project = SUP AND updated >= "2026-11-29 11:31""#).await,
        0
    );
    assert_eq!(
        hits(r#"project = SUP AND updated < "2026-11-29 11:31""#).await,
        1
    );
    let (_, body) = site
        .post(
            "/rest/api/3/search/jql",
            json!({"jql": "key = SUP-1", "fields": ["updated", "created"]}),
        )
        .await;
    assert_eq!(
        body["issues"][0]["fields"]["updated"],
        "2026-11-29T10:30:40.500+0000"
    );
}

#[tokio::test]
async fn search_lag_hides_fresh_changes_unless_reconciled() {
    let site = Site::new().await;
    site.emu.inject_fault(FaultSpec {
        search_lag_ms: Some(600),
        ..FaultSpec::default()
    });
    let created = site.create("fresh").await;
    let id: u64 = created["id"].as_str().unwrap().parse().unwrap();
    let (_, body) = site
        .post("/rest/api/3/search/jql", json!({"jql": "project = SUP"}))
        .await;
    assert_eq!(body["issues"], json!([]));
    let (_, body) = site
        .post(
            "/rest/api/3/search/jql",
            json!({"jql": "project = SUP", "reconcileIssues": [id]}),
        )
        .await;
    assert_eq!(body["issues"], json!([{"id": "10001"}]));
    // A change is not seen until the index catches up; the old state still is.
    site.emu.set_priority("SUP-1", "Lowest").unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    site.emu.set_priority("SUP-1", "Highest").unwrap();
    let (_, body) = site
        .post(
            "/rest/api/3/search/jql",
            json!({"jql": "priority = Lowest"}),
        )
        .await;
    assert_eq!(body["issues"], json!([{"id": "10001"}]));
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (_, body) = site
        .post(
            "/rest/api/3/search/jql",
            json!({"jql": "priority = Highest"}),
        )
        .await;
    assert_eq!(body["issues"], json!([{"id": "10001"}]));
}

#[tokio::test]
async fn injected_failures_lost_replies_and_throttling() {
    let site = Site::new().await;
    site.emu.inject_failures("createIssue", 503, 2);
    let payload = json!({"fields": {"project": {"key": "SUP"}, "issuetype": {"id": "10002"}, "summary": "f"}});
    assert_eq!(
        site.post("/rest/api/3/issue", payload.clone()).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        site.post("/rest/api/3/issue", payload.clone()).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert!(site.emu.issues().is_empty(), "plain failures do nothing");
    assert_eq!(
        site.post("/rest/api/3/issue", payload.clone()).await.0,
        StatusCode::CREATED
    );
    assert_eq!(site.emu.counters()["createIssue"], 3);

    site.emu.inject_lost_replies("addComment", 1);
    let (status, _) = site
        .post(
            "/rest/api/3/issue/SUP-1/comment",
            json!({"body": adf("maybe")}),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let view = site.emu.issue("SUP-1").unwrap();
    assert_eq!(
        view["comments"][0]["bodyText"], "maybe",
        "a lost reply still did the work"
    );

    // Over HTTP: throttle everything once, with Retry-After.
    let control = site
        .http
        .post(site.url("/_control/faults"))
        .json(&json!({"operation": "*", "status": 429, "count": 1, "retryAfterSeconds": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(control.status(), StatusCode::OK);
    let throttled = site
        .bot(site.http.get(site.url("/rest/api/3/issue/SUP-1")))
        .send()
        .await
        .unwrap();
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(throttled.headers()["retry-after"], "2");
    assert_eq!(site.get("/rest/api/3/issue/SUP-1").await.0, StatusCode::OK);

    // Faults wait for authenticated calls; failed auth does not use them up.
    site.emu.inject_failures("getIssue", 500, 1);
    let anonymous = site
        .http
        .get(site.url("/rest/api/3/issue/SUP-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        site.get("/rest/api/3/issue/SUP-1").await.0,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(site.emu.counters()["getIssue"], 4);

    // Latency, then clearing everything.
    site.http
        .post(site.url("/_control/faults"))
        .json(&json!({"latencyMs": 400}))
        .send()
        .await
        .unwrap();
    let started = std::time::Instant::now();
    site.get("/rest/api/3/myself").await;
    assert!(started.elapsed() >= Duration::from_millis(400));
    site.emu.inject_failures("getIssue", 503, 5);
    let cleared = site
        .http
        .delete(site.url("/_control/faults"))
        .send()
        .await
        .unwrap();
    assert_eq!(cleared.status(), StatusCode::NO_CONTENT);
    let started = std::time::Instant::now();
    assert_eq!(site.get("/rest/api/3/issue/SUP-1").await.0, StatusCode::OK);
    assert!(started.elapsed() < Duration::from_millis(400));

    let (status, _) = site
        .post(
            "/_control/faults",
            json!({"operation": "getIssue", "status": 200}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn control_api_acts_as_people() {
    let site = Site::new().await;
    let control = |path: &str| site.url(&format!("/_control{path}"));
    let created: Value = site
        .http
        .post(control("/issues"))
        .json(&json!({"summary": "Customer problem", "description": "line 1\nline 2", "priority": "High",
                      "syncFlag": true, "reporter": "customer-9", "created": "2026-10-01T08:00:00Z"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(created["key"], "SUP-1");
    assert_eq!(created["reporter"]["accountId"], "customer-9");
    assert_eq!(created["created"], "2026-10-01T08:00:00.000+0000");
    assert_eq!(created["updated"], "2026-10-01T08:00:00.000+0000");

    let comment = site
        .http
        .post(control("/issues/SUP-1/comments"))
        .json(&json!({"body": "from the agent", "internal": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(comment.status(), StatusCode::CREATED);
    let attachment = site
        .http
        .post(control("/issues/SUP-1/attachments"))
        .json(&json!({"filename": "a.txt", "mimeType": "text/plain", "dataBase64": "aGVsbG8="}))
        .send()
        .await
        .unwrap();
    assert_eq!(attachment.status(), StatusCode::CREATED);
    for (path, body) in [
        ("/issues/SUP-1/priority", json!({"name": "Lowest"})),
        ("/issues/SUP-1/status", json!({"statusName": "Done"})),
        ("/issues/SUP-1/flag", json!({"syncFlag": false})),
    ] {
        let response = site
            .http
            .post(control(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    let view: Value = site
        .http
        .get(control("/issues/SUP-1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(view["priority"], "Lowest");
    assert_eq!(view["status"], "Done");
    assert_eq!(view["syncFlag"], false);
    assert_eq!(view["description"], "line 1\nline 2");
    assert_eq!(view["comments"][0]["bodyText"], "from the agent");
    assert_eq!(view["comments"][0]["author"]["accountId"], "agent-1");
    assert_eq!(view["comments"][0]["internal"], true);
    assert_eq!(view["comments"][0]["body"]["type"], "doc");
    assert_eq!(
        site.emu
            .attachment_bytes(view["attachments"][0]["id"].as_str().unwrap())
            .unwrap(),
        b"hello"
    );
    assert!(view["updated"].as_str().unwrap() > "2026-10-01T08:00:00.000+0000");

    let list: Value = site
        .http
        .get(control("/issues"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    let missing = site
        .http
        .post(control("/issues/SUP-9/comments"))
        .json(&json!({"body": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let bad = site
        .http
        .post(control("/issues/SUP-1/priority"))
        .json(&json!({"name": "P0"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);

    // The customer's reporter shows up as a JSM customer in the REST view.
    let (_, issue) = site.get("/rest/api/3/issue/SUP-1?fields=reporter").await;
    assert_eq!(issue["fields"]["reporter"]["accountType"], "customer");

    let counters: Value = site
        .http
        .get(control("/counters"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(counters["getIssue"], 1);

    // A deleted issue is gone for the connector.
    let deleted = site
        .http
        .delete(control("/issues/SUP-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        site.get("/rest/api/3/issue/SUP-1").await.0,
        StatusCode::NOT_FOUND
    );

    let reset = site.http.post(control("/reset")).send().await.unwrap();
    assert_eq!(reset.status(), StatusCode::NO_CONTENT);
    assert!(site.emu.issues().is_empty());
    assert!(site.emu.counters().is_empty());
    let again = site.emu.create_issue_as("agent-1", NewIssue::default());
    assert_eq!(again["key"], "SUP-1");
    let error = site.emu.create_issue_as(
        "agent-1",
        NewIssue {
            priority: "P1".into(),
            ..NewIssue::default()
        },
    );
    assert!(error["error"].is_string());
}

#[tokio::test]
async fn the_request_log_serves_conformance_checks() {
    let site = Site::new().await;
    site.create("logged").await;
    site.get("/rest/api/3/issue/SUP-1?fields=summary").await;
    site.get("/rest/api/3/no/such/thing").await;
    let log = site.emu.request_log();
    assert_eq!(log.len(), 3);
    assert_eq!(log[0].operation.as_deref(), Some("createIssue"));
    assert_eq!(log[0].method, "POST");
    assert_eq!(log[0].status, 201);
    assert_eq!(log[0].headers["authorization"], "Basic ***");
    assert_eq!(log[0].headers["content-type"], "application/json");
    assert_eq!(log[0].body.as_ref().unwrap()["fields"]["summary"], "logged");
    assert_eq!(log[0].account_id.as_deref(), Some("casesync-bot"));
    assert_eq!(log[1].operation.as_deref(), Some("getIssue"));
    assert_eq!(log[1].query.as_deref(), Some("fields=summary"));
    assert_eq!(log[2].operation, None);
    assert_eq!(log[2].status, 404);
}

#[tokio::test]
async fn lookups_list_priorities_and_fields() {
    let site = Site::new().await;
    let (_, priorities) = site.get("/rest/api/3/priority").await;
    let names: Vec<(&str, &str)> = priorities
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("1", "Highest"),
            ("2", "High"),
            ("3", "Medium"),
            ("4", "Low"),
            ("5", "Lowest")
        ]
    );
    let (_, fields) = site.get("/rest/api/3/field").await;
    let flag = fields
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "customfield_10050")
        .unwrap();
    assert_eq!(flag["custom"], true);
    assert_eq!(flag["clauseNames"][0], "cf[10050]");
    assert!(
        fields
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["id"] == "customfield_10051")
    );
    site.create("meta").await;
    let (_, meta) = site.get("/rest/api/3/issue/SUP-1/editmeta").await;
    assert_eq!(
        meta["fields"]["priority"]["allowedValues"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    assert_eq!(
        meta["fields"]["customfield_10050"]["allowedValues"][0]["value"],
        "Yes"
    );
}

/// Every served route must exist, under the same operationId, in the OpenAPI documents
/// the emulator claims to follow.
#[test]
fn served_operations_exist_in_the_openapi_documents() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../../shared/reference/crm");
    let load = |name: &str| -> Value {
        let path = dir.join(name);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "the OpenAPI document {} must be readable: {e}",
                path.display()
            )
        });
        serde_json::from_str(&text).unwrap()
    };
    let platform = load("jira-platform-swagger-v3.v3.json");
    let jsm = load("jira-service-management-swagger.v3.json");
    for (method, path, operation, spec) in crate::gate::OPERATIONS {
        let doc = match spec {
            crate::gate::Spec::Platform => &platform,
            crate::gate::Spec::ServiceManagement => &jsm,
        };
        let found = &doc["paths"][*path][method.to_ascii_lowercase()]["operationId"];
        assert_eq!(found, operation, "{method} {path}");
    }
}
