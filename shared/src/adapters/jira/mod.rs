//! The `Crm` port on Jira Cloud (Jira Service Management included), through the platform
//! REST API v3 (docs/ARCHITECTURE.md#crm-adapters).
//!
//! Choices the API forces:
//! - a case's id is the issue id (immutable; the key changes when an issue moves);
//! - a case casesync creates carries its Google case in a text field and as label
//!   `gcp-case-{number}`, because JQL has no exact match on text fields; a lookup searches
//!   the label and then checks the field;
//! - bodies travel as ADF (`adf`), and JQL dates are minutes in the site's time zone
//!   (`jql`), read from `/rest/api/3/myself` at connect;
//! - comments are listed newest first, so a listing stops once it reaches `since`;
//! - a JQL search is built only from casesync's code and configuration, so Jira refusing
//!   one (400 for JQL it cannot read, a project that does not exist) is systemic
//!   ([`PortError::of_own_request`]), never a reason to dead-letter the case.

pub mod adf;
pub mod client;
pub mod config;
pub mod jql;
pub mod mapping;

pub use config::{
    CommentVisibility, JiraAuth, JiraConfig, JiraSite, PriorityMap, Secret, SyncFlagKind,
};

use crate::adapters::http_support::{Call, segment};
use crate::domain::{
    AttachmentUpload, CrmAttachment, CrmCase, CrmComment, GoogleCaseKey, NewCrmCase, Priority,
};
use crate::error::{PortError, PortResult};
use crate::ports::{ByteStream, Crm};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use client::JiraClient;
use mapping::{
    Attachment, Comment, CommentPage, CreatedIssue, Identity, IssueBean, SearchPage, Transitions,
    User, undecodable,
};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};

/// Comments per page when listing (CRM pages of 50).
pub const COMMENT_PAGE_SIZE: usize = 50;
/// Search pages one listing may read before it gives up (a server that never says
/// "last" must not keep a poll busy forever).
const MAX_SEARCH_PAGES: usize = 10_000;

/// What casesync learns about the site at connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteInfo {
    /// casesync's own account: only its comments and attachments count as mirrors.
    pub account_id: String,
    /// The zone JQL date literals are read in (the account's profile zone).
    pub time_zone: Tz,
}

/// The Jira adapter.
#[derive(Debug)]
pub struct JiraCrm {
    config: JiraConfig,
    client: JiraClient,
    site: SiteInfo,
    me: Identity,
    flag_ref: String,
}

impl JiraCrm {
    /// Checks the configuration, then asks `/rest/api/3/myself` who casesync is and which
    /// time zone its JQL is read in. Fails with a systemic error if the token is refused or
    /// belongs to another account than `own_account_id`.
    pub async fn connect(config: JiraConfig) -> PortResult<JiraCrm> {
        config.validate()?;
        let client = JiraClient::new(&config)?;
        let call = Call {
            op: "jira.myself",
            what: "the connector's account",
        };
        let me: User = client
            .json(call, Method::GET, "/rest/api/3/myself", &[], None)
            .await?;
        let account_id = me
            .account_id
            .ok_or_else(|| undecodable(call.op, "no accountId"))?;
        if let Some(configured) = &config.own_account_id
            && *configured != account_id
        {
            return Err(PortError::Config(format!(
                "crm.jira.own_account_id: `{configured}` is configured but the token belongs to `{account_id}`; \
                 casesync must use its own account"
            )));
        }
        let zone = me.time_zone.unwrap_or_default();
        let time_zone = zone.parse::<Tz>().map_err(|_| {
            PortError::Config(format!(
                "crm.jira: the account's time zone `{zone}` is not an IANA zone; set it in the \
                 account's Jira profile (JQL dates are read in it)"
            ))
        })?;
        JiraCrm::with_site(
            config,
            SiteInfo {
                account_id,
                time_zone,
            },
        )
    }

    /// An adapter for a site whose account and time zone are already known (no call).
    pub fn with_site(config: JiraConfig, site: SiteInfo) -> PortResult<JiraCrm> {
        config.validate()?;
        let client = JiraClient::new(&config)?;
        let flag_ref = jql::field_ref(&config.sync_flag_field).ok_or_else(|| {
            PortError::Config("crm.jira.sync_flag_field: not a custom field id".into())
        })?;
        Ok(JiraCrm {
            me: Identity {
                account_id: site.account_id.clone(),
            },
            config,
            client,
            site,
            flag_ref,
        })
    }

    pub fn site(&self) -> &SiteInfo {
        &self.site
    }

    pub fn config(&self) -> &JiraConfig {
        &self.config
    }

    fn issue_path(id: &str) -> String {
        format!("/rest/api/3/issue/{}", segment(id))
    }

    async fn get_issue(&self, op: &'static str, id: &str, fields: &str) -> PortResult<IssueBean> {
        let what = format!("issue {id}");
        self.client
            .json(
                Call { op, what: &what },
                Method::GET,
                &Self::issue_path(id),
                &[("fields", fields.to_string())],
                None,
            )
            .await
    }

    /// Every issue a JQL query matches, all pages, each once.
    async fn search(&self, op: &'static str, jql: &str) -> PortResult<Vec<IssueBean>> {
        let call = Call {
            op,
            what: "the issue search",
        };
        let mut issues: Vec<IssueBean> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut token: Option<String> = None;
        let mut seen_tokens = HashSet::new();
        for _ in 0..MAX_SEARCH_PAGES {
            let mut body = json!({
                "jql": jql,
                "fields": mapping::case_fields(&self.config),
                "maxResults": self.config.search_page_size,
            });
            if let Some(t) = &token {
                body["nextPageToken"] = Value::String(t.clone());
            }
            let page: SearchPage = self
                .client
                .json(
                    call,
                    Method::POST,
                    "/rest/api/3/search/jql",
                    &[],
                    Some(&body),
                )
                .await
                .map_err(PortError::of_own_request)?;
            for issue in page.issues {
                // An issue updated while the pages are read can show up twice; keep the
                // newest copy.
                match index.get(&issue.id) {
                    Some(&i) => issues[i] = issue,
                    None => {
                        index.insert(issue.id.clone(), issues.len());
                        issues.push(issue);
                    }
                }
            }
            match page.next_page_token {
                Some(next) if page.is_last != Some(true) => {
                    if !seen_tokens.insert(next.clone()) {
                        return Err(undecodable(op, "a search page token repeated"));
                    }
                    token = Some(next);
                }
                _ => return Ok(issues),
            }
        }
        Err(PortError::retryable(
            op,
            format!("the issue search did not end after {MAX_SEARCH_PAGES} pages"),
        ))
    }

    fn case_field_list(&self) -> String {
        mapping::case_fields(&self.config).join(",")
    }
}

#[async_trait]
impl Crm for JiraCrm {
    fn kind(&self) -> &str {
        "jira"
    }

    async fn get_case(&self, id: &str) -> PortResult<CrmCase> {
        const OP: &str = "jira.get_issue";
        let issue = self.get_issue(OP, id, &self.case_field_list()).await?;
        mapping::to_case(OP, &self.config, &issue)
    }

    async fn search_updated_since(&self, since: DateTime<Utc>) -> PortResult<Vec<CrmCase>> {
        const OP: &str = "jira.search_updated";
        let literal = jql::since_literal(since, self.site.time_zone);
        let query = jql::updated_since(
            &self.config.project_key,
            &self.flag_ref,
            &self.config.sync_flag_value,
            &literal,
        );
        let mut cases = Vec::new();
        for issue in self.search(OP, &query).await? {
            let case = mapping::to_case(OP, &self.config, &issue)?;
            // The index may lag behind the issue: trust the fields it returned.
            if case.sync_flag {
                cases.push(case);
            }
        }
        Ok(cases)
    }

    async fn find_by_google_case(&self, key: &GoogleCaseKey) -> PortResult<Option<CrmCase>> {
        const OP: &str = "jira.find_by_google_case";
        let query = jql::with_label(&self.config.project_key, &jql::case_label(key.as_str()));
        for issue in self.search(OP, &query).await? {
            let case = mapping::to_case(OP, &self.config, &issue)?;
            // A label is only a hint (a person can type one): the field must name the case.
            let names_it = case
                .google_case_name
                .as_deref()
                .and_then(|n| GoogleCaseKey::from_case_name(n).ok())
                .is_some_and(|k| k == *key);
            if names_it {
                return Ok(Some(case));
            }
        }
        Ok(None)
    }

    async fn create_case(&self, case: &NewCrmCase) -> PortResult<CrmCase> {
        const OP: &str = "jira.create_issue";
        let c = &self.config;
        let issue_type = if c.issue_type.chars().all(|ch| ch.is_ascii_digit()) {
            json!({ "id": c.issue_type })
        } else {
            json!({ "name": c.issue_type })
        };
        let mut fields = json!({
            "project": { "key": c.project_key },
            "issuetype": issue_type,
            "summary": mapping::summary(&case.summary),
            "description": adf::text_to_adf(&case.description),
            "priority": { "name": c.priorities.to_jira(case.priority) },
            "labels": [jql::case_label(&case.google_case_number)],
        });
        fields[&c.sync_flag_field] = mapping::flag_value(c);
        fields[&c.google_case_field] = Value::String(case.google_case_name.clone());
        if !c.component.trim().is_empty() {
            fields["components"] = json!([{ "name": c.component }]);
        }
        if let Some(request_type) = &c.request_type {
            fields[&c.request_type_field] = Value::String(request_type.clone());
        }
        let what = format!("the issue for Google case {}", case.google_case_number);
        let created: CreatedIssue = self
            .client
            .json(
                Call {
                    op: OP,
                    what: &what,
                },
                Method::POST,
                "/rest/api/3/issue",
                &[],
                Some(&json!({ "fields": fields })),
            )
            .await?;
        self.get_case(&created.id).await
    }

    async fn set_google_case_name(&self, id: &str, google_case_name: &str) -> PortResult<()> {
        const OP: &str = "jira.set_google_case_name";
        let key = GoogleCaseKey::from_case_name(google_case_name)?;
        let mut fields = serde_json::Map::new();
        fields.insert(
            self.config.google_case_field.clone(),
            Value::String(google_case_name.to_string()),
        );
        let body = json!({
            "fields": fields,
            "update": { "labels": [{ "add": jql::case_label(key.as_str()) }] },
        });
        let what = format!("issue {id}");
        self.client
            .call(
                Call {
                    op: OP,
                    what: &what,
                },
                Method::PUT,
                &Self::issue_path(id),
                &[],
                Some(&body),
            )
            .await
            .map(drop)
    }

    async fn set_priority(&self, id: &str, priority: Priority) -> PortResult<()> {
        const OP: &str = "jira.set_priority";
        let body = json!({
            "fields": { "priority": { "name": self.config.priorities.to_jira(priority) } }
        });
        let what = format!("issue {id}");
        self.client
            .call(
                Call {
                    op: OP,
                    what: &what,
                },
                Method::PUT,
                &Self::issue_path(id),
                &[],
                Some(&body),
            )
            .await
            .map(drop)
    }

    async fn close_case(&self, id: &str) -> PortResult<()> {
        const OP: &str = "jira.close_issue";
        let what = format!("issue {id}");
        let call = Call {
            op: OP,
            what: &what,
        };
        let issue = self.get_issue(OP, id, "status").await?;
        let category = issue
            .fields
            .get("status")
            .and_then(|s| s.get("statusCategory"))
            .and_then(|c| c.get("key"))
            .and_then(Value::as_str)
            .unwrap_or("");
        if self
            .config
            .closed_status_categories
            .iter()
            .any(|c| c.eq_ignore_ascii_case(category))
        {
            // Closing twice (a retry after a crash) is done already.
            return Ok(());
        }
        let path = format!("{}/transitions", Self::issue_path(id));
        let available: Transitions = self
            .client
            .json(
                call,
                Method::GET,
                &path,
                &[("expand", "transitions.fields".to_string())],
                None,
            )
            .await?;
        let wanted = self.config.close_transition.trim();
        let transition = available
            .transitions
            .iter()
            .find(|t| t.name.trim().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| {
                PortError::Config(format!(
                    "crm.jira.close_transition: issue {id} offers no transition named `{wanted}`"
                ))
            })?;
        let mut body = json!({ "transition": { "id": transition.id } });
        // Jira refuses a resolution that is not on the transition's screen, and may require
        // one that is.
        if transition.fields.contains_key("resolution") {
            body["fields"] = json!({ "resolution": { "name": self.config.close_resolution } });
        }
        self.client
            .call(call, Method::POST, &path, &[], Some(&body))
            .await
            .map(drop)
    }

    async fn list_comments(
        &self,
        id: &str,
        since: Option<DateTime<Utc>>,
    ) -> PortResult<Vec<CrmComment>> {
        const OP: &str = "jira.list_comments";
        let what = format!("issue {id}");
        let path = format!("{}/comment", Self::issue_path(id));
        let mut out: Vec<CrmComment> = Vec::new();
        let mut seen = HashSet::new();
        let mut start = 0usize;
        // Stopping early is only safe while the pages really come newest first.
        let mut newest_first = true;
        let mut previous: Option<DateTime<Utc>> = None;
        loop {
            let page: CommentPage = self
                .client
                .json(
                    Call {
                        op: OP,
                        what: &what,
                    },
                    Method::GET,
                    &path,
                    &[
                        ("orderBy", "-created".to_string()),
                        ("startAt", start.to_string()),
                        ("maxResults", COMMENT_PAGE_SIZE.to_string()),
                    ],
                    None,
                )
                .await?;
            let count = page.comments.len();
            let mut reached_since = false;
            for raw in &page.comments {
                let comment = mapping::to_comment(OP, &self.me, raw)?;
                if previous.is_some_and(|p| comment.created_at > p) {
                    newest_first = false;
                }
                previous = Some(comment.created_at);
                if since.is_some_and(|s| comment.created_at < s) {
                    reached_since = true;
                    continue;
                }
                // A comment added while paging shifts the pages: skip what was seen.
                if seen.insert(comment.id.clone()) {
                    out.push(comment);
                }
            }
            start += count;
            let done = count == 0
                || page.total.is_some_and(|t| start as u64 >= t)
                || (reached_since && newest_first);
            if done {
                break;
            }
        }
        out.sort_by_key(|c| std::cmp::Reverse(c.created_at));
        Ok(out)
    }

    async fn add_comment(&self, id: &str, body: &str) -> PortResult<CrmComment> {
        const OP: &str = "jira.add_comment";
        let mut request = json!({ "body": adf::text_to_adf(body) });
        if self.config.comment_visibility == CommentVisibility::Internal {
            request["properties"] =
                json!([{ "key": "sd.public.comment", "value": { "internal": true } }]);
        }
        let what = format!("issue {id}");
        let comment: Comment = self
            .client
            .json(
                Call {
                    op: OP,
                    what: &what,
                },
                Method::POST,
                &format!("{}/comment", Self::issue_path(id)),
                &[],
                Some(&request),
            )
            .await?;
        mapping::to_comment(OP, &self.me, &comment)
    }

    async fn list_attachments(&self, id: &str) -> PortResult<Vec<CrmAttachment>> {
        const OP: &str = "jira.list_attachments";
        let issue = self.get_issue(OP, id, "attachment").await?;
        let raw = issue
            .fields
            .get("attachment")
            .cloned()
            .unwrap_or(Value::Array(Vec::new()));
        let attachments: Vec<Attachment> = serde_json::from_value(raw)
            .map_err(|_| undecodable(OP, format!("attachments of issue {id}")))?;
        attachments
            .iter()
            .map(|a| mapping::to_attachment(OP, &self.me, a))
            .collect()
    }

    async fn download_attachment(
        &self,
        _id: &str,
        attachment: &CrmAttachment,
    ) -> PortResult<ByteStream> {
        let what = format!("attachment {}", attachment.id);
        self.client
            .download(
                Call {
                    op: "jira.download_attachment",
                    what: &what,
                },
                &format!("/rest/api/3/attachment/content/{}", segment(&attachment.id)),
            )
            .await
    }

    async fn upload_attachment(
        &self,
        id: &str,
        upload: AttachmentUpload,
    ) -> PortResult<CrmAttachment> {
        const OP: &str = "jira.upload_attachment";
        let what = format!("issue {id}");
        let created: Vec<Attachment> = self
            .client
            .upload(
                Call {
                    op: OP,
                    what: &what,
                },
                &format!("{}/attachments", Self::issue_path(id)),
                upload,
            )
            .await?;
        let first = created
            .first()
            .ok_or_else(|| undecodable(OP, format!("no attachment in the reply for issue {id}")))?;
        mapping::to_attachment(OP, &self.me, first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorClass;

    use crate::testing::answering_server as answering;

    fn jira_at(base_url: &str) -> JiraCrm {
        let config = JiraConfig::new(JiraSite {
            base_url,
            auth: JiraAuth::Basic {
                email: "casesync@example.com".into(),
                api_token: Secret::new("token"),
            },
            project_key: "SUP",
            issue_type: "Service Request",
            sync_flag_field: "customfield_10050",
            google_case_field: "customfield_10051",
        });
        JiraCrm::with_site(
            config,
            SiteInfo {
                account_id: "casesync-account".into(),
                time_zone: Tz::UTC,
            },
        )
        .unwrap()
    }

    const BAD_JQL: &str = r#"{"errorMessages":["Error in the JQL Query"],"errors":{}}"#;

    #[tokio::test]
    async fn a_refused_search_is_systemic_not_permanent() {
        let jira = jira_at(&answering(400, BAD_JQL));
        let e = jira.search_updated_since(Utc::now()).await.unwrap_err();
        assert_eq!(e.class(), ErrorClass::Systemic, "{e:?}");
        assert!(e.to_string().contains("HTTP 400"), "{e}");
        let key = GoogleCaseKey::from_case_name("projects/p/cases/123").unwrap();
        let e = jira.find_by_google_case(&key).await.unwrap_err();
        assert_eq!(e.class(), ErrorClass::Systemic, "{e:?}");
    }

    #[tokio::test]
    async fn a_refused_write_stays_permanent() {
        let jira = jira_at(&answering(400, BAD_JQL));
        let e = jira.add_comment("10042", "hello").await.unwrap_err();
        assert_eq!(e.class(), ErrorClass::Permanent, "{e:?}");
    }
}
