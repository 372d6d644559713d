//! A person working in a CRM, in neutral terms, so the two-way scenario
//! (`crate::scenario::run_two_way`) is written once and runs for every CRM: the in-memory
//! CRM (`MemoryCrm`'s agent-side methods), Jira (the emulator's control API) and a real
//! Request Tracker 5 (REST2 with the agent's own token, `crate::rt::RtPerson`).
//!
//! The driver speaks the CRM's own words: a priority is the CRM's name or number ("Low",
//! "20", "P3"), mapped from P0..P4 by the CRM's default mapping (`priority_word`), so a
//! scenario states facts such as "RT 20 reached Google as P3" without knowing the CRM.
//! Fault injection is offered where the CRM allows it (`injects_faults`); the real RT
//! does not, and says so.

use anyhow::{Context, bail, ensure};
use async_trait::async_trait;
use jira_emulator::{JiraEmulator, NewIssue};
use serde_json::{Value, json};
use shared::adapters::jira::PriorityMap;
use shared::adapters::rt::{PriorityRanges, RtCrm};
use shared::domain::Priority;
use shared::ports::Crm;
use shared::testing::MemoryCrm;
use std::sync::Arc;

use crate::rt::RtPerson;

/// A ticket as the person sees it.
#[derive(Debug, Clone)]
pub struct Ticket {
    /// The id casesync uses for the ticket (Jira's numeric issue id, RT's ticket number).
    pub id: String,
    pub summary: String,
    pub description: String,
    /// The CRM's own priority word ("Medium", "50", "P2").
    pub priority: String,
    /// The level casesync's adapter reads that priority as.
    pub level: Option<Priority>,
    /// Closed the way the connector closes a ticket (Jira: a Done-category status; RT:
    /// `resolved`; memory: closed).
    pub closed: bool,
    pub flagged: bool,
    /// What the Google-name field holds (`organizations/…/cases/N`), if anything.
    pub google_case_name: Option<String>,
}

/// A comment with its author.
#[derive(Debug, Clone)]
pub struct Note {
    pub id: String,
    pub author: String,
    pub body: String,
    /// Written by the connector's own account.
    pub by_connector: bool,
}

/// An attachment with its author and bytes.
#[derive(Debug, Clone)]
pub struct File {
    pub id: String,
    pub filename: String,
    pub author: String,
    pub by_connector: bool,
    pub bytes: Vec<u8>,
}

/// A CRM call a fault can be injected into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrmCall {
    CreateCase,
    GetCase,
    UpdateCase,
    CloseCase,
    Search,
    AddComment,
    ListComments,
    UploadAttachment,
    ListAttachments,
    DownloadAttachment,
}

/// What an injected fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrmFault {
    /// The call fails with a retryable 503 and changes nothing.
    Unavailable,
    /// The call takes effect, then answers 503: the reply is lost.
    LostReply,
}

/// A person in a CRM, plus the readers a scenario asserts with.
#[async_trait]
pub trait CrmDriver: Send + Sync {
    /// The kind casesync writes into a Google description (`casesync: <kind> case <id>`).
    fn kind(&self) -> &str;
    /// The person's display name, as the connector's marker names it.
    fn person_name(&self) -> &str;
    /// The CRM's own word for a level, by the adapter's default mapping.
    fn priority_word(&self, p: Priority) -> String;

    /// Opens a ticket as the person, flagged for sync or not; returns its id.
    async fn create_ticket(
        &self,
        summary: &str,
        description: &str,
        priority: &str,
        flagged: bool,
    ) -> anyhow::Result<String>;
    /// Comments: `internal` is a note for agents only (Jira internal note, RT comment),
    /// otherwise a public reply (Jira public comment, RT correspondence). Returns the id
    /// the connector's marker names.
    async fn comment(&self, ticket: &str, body: &str, internal: bool) -> anyhow::Result<String>;
    /// Attaches a file; returns the attachment's id.
    async fn attach(
        &self,
        ticket: &str,
        filename: &str,
        mime: &str,
        bytes: &[u8],
    ) -> anyhow::Result<String>;
    async fn set_priority(&self, ticket: &str, priority: &str) -> anyhow::Result<()>;
    async fn close(&self, ticket: &str) -> anyhow::Result<()>;
    async fn reopen(&self, ticket: &str) -> anyhow::Result<()>;
    async fn set_flag(&self, ticket: &str, flagged: bool) -> anyhow::Result<()>;
    /// Whether the person may delete tickets here.
    fn deletes(&self) -> bool {
        true
    }
    /// Deletes the ticket: casesync meets a 404 for it from then on.
    async fn delete(&self, ticket: &str) -> anyhow::Result<()>;

    async fn ticket(&self, ticket: &str) -> anyhow::Result<Ticket>;
    /// Every comment, oldest first.
    async fn comments(&self, ticket: &str) -> anyhow::Result<Vec<Note>>;
    async fn attachments(&self, ticket: &str) -> anyhow::Result<Vec<File>>;
    /// The tickets that are the counterpart of Google case `number`.
    async fn tickets_for_google_case(&self, number: &str) -> anyhow::Result<Vec<Ticket>>;

    /// Whether `inject_fault` works on this CRM.
    fn injects_faults(&self) -> bool;
    /// Makes the next `count` calls of `call` by the connector meet `fault`.
    fn inject_fault(&self, call: CrmCall, fault: CrmFault, count: usize) -> anyhow::Result<()>;
    /// Ends every injected fault.
    fn clear_faults(&self);
}

fn names_case(google_case_name: Option<&str>, number: &str) -> bool {
    google_case_name.is_some_and(|n| n.ends_with(&format!("/cases/{number}")))
}

// ---------------------------------------------------------------------------------------
// The in-memory CRM.

/// A person in [`MemoryCrm`], through its agent-side methods. Priority words are the
/// levels themselves (`P0`..`P4`).
pub struct MemoryCrmDriver {
    pub crm: Arc<MemoryCrm>,
    pub person: String,
}

impl MemoryCrmDriver {
    pub fn new(crm: Arc<MemoryCrm>) -> Self {
        MemoryCrmDriver {
            crm,
            person: "Alex Agent".into(),
        }
    }

    fn level(word: &str) -> anyhow::Result<Priority> {
        Priority::parse(word).with_context(|| format!("memory CRM priority '{word}'"))
    }

    fn case(&self, id: &str) -> anyhow::Result<shared::testing::MemoryCrmCase> {
        self.crm
            .case(id)
            .with_context(|| format!("memory CRM case {id} is gone"))
    }

    fn ticket_of(c: &shared::testing::MemoryCrmCase) -> Ticket {
        Ticket {
            id: c.case.id.clone(),
            summary: c.case.summary.clone(),
            description: c.case.description.clone(),
            priority: c.case.priority.map(|p| p.to_string()).unwrap_or_default(),
            level: c.case.priority,
            closed: c.case.closed,
            flagged: c.case.sync_flag,
            google_case_name: c.case.google_case_name.clone(),
        }
    }

    fn operation(call: CrmCall) -> &'static str {
        match call {
            CrmCall::CreateCase => "create_case",
            CrmCall::GetCase => "get_case",
            CrmCall::UpdateCase => "update_case",
            CrmCall::CloseCase => "close_case",
            CrmCall::Search => "search",
            CrmCall::AddComment => "add_comment",
            CrmCall::ListComments => "list_comments",
            CrmCall::UploadAttachment => "upload_attachment",
            CrmCall::ListAttachments => "list_attachments",
            CrmCall::DownloadAttachment => "download_attachment",
        }
    }
}

#[async_trait]
impl CrmDriver for MemoryCrmDriver {
    fn kind(&self) -> &str {
        "memory"
    }

    fn person_name(&self) -> &str {
        &self.person
    }

    fn priority_word(&self, p: Priority) -> String {
        p.to_string()
    }

    async fn create_ticket(
        &self,
        summary: &str,
        description: &str,
        priority: &str,
        flagged: bool,
    ) -> anyhow::Result<String> {
        let p = Self::level(priority)?;
        Ok(self
            .crm
            .open_case_as_agent(summary, description, p, flagged, None)
            .id)
    }

    /// The memory CRM has one kind of comment: `internal` changes nothing.
    async fn comment(&self, ticket: &str, body: &str, _internal: bool) -> anyhow::Result<String> {
        self.case(ticket)?;
        Ok(self.crm.comment_as_agent(ticket, &self.person, body).id)
    }

    /// The memory CRM stores no MIME type for an agent's file.
    async fn attach(
        &self,
        ticket: &str,
        filename: &str,
        _mime: &str,
        bytes: &[u8],
    ) -> anyhow::Result<String> {
        self.case(ticket)?;
        Ok(self
            .crm
            .attach_as_agent(ticket, &self.person, filename, bytes)
            .id)
    }

    async fn set_priority(&self, ticket: &str, priority: &str) -> anyhow::Result<()> {
        let p = Self::level(priority)?;
        self.case(ticket)?;
        self.crm.set_priority_as_agent(ticket, p);
        Ok(())
    }

    async fn close(&self, ticket: &str) -> anyhow::Result<()> {
        self.case(ticket)?;
        self.crm.set_closed_as_agent(ticket, true);
        Ok(())
    }

    async fn reopen(&self, ticket: &str) -> anyhow::Result<()> {
        self.case(ticket)?;
        self.crm.set_closed_as_agent(ticket, false);
        Ok(())
    }

    async fn set_flag(&self, ticket: &str, flagged: bool) -> anyhow::Result<()> {
        self.case(ticket)?;
        self.crm.set_flag_as_agent(ticket, flagged);
        Ok(())
    }

    async fn delete(&self, ticket: &str) -> anyhow::Result<()> {
        self.case(ticket)?;
        self.crm.delete_case(ticket);
        Ok(())
    }

    async fn ticket(&self, ticket: &str) -> anyhow::Result<Ticket> {
        Ok(Self::ticket_of(&self.case(ticket)?))
    }

    async fn comments(&self, ticket: &str) -> anyhow::Result<Vec<Note>> {
        Ok(self
            .case(ticket)?
            .comments
            .into_iter()
            .map(|c| Note {
                id: c.id,
                author: c.author_name,
                body: c.body,
                by_connector: c.by_connector,
            })
            .collect())
    }

    async fn attachments(&self, ticket: &str) -> anyhow::Result<Vec<File>> {
        Ok(self
            .case(ticket)?
            .attachments
            .into_iter()
            .map(|(a, bytes)| File {
                id: a.id,
                filename: a.filename,
                author: a.author_name,
                by_connector: a.by_connector,
                bytes,
            })
            .collect())
    }

    async fn tickets_for_google_case(&self, number: &str) -> anyhow::Result<Vec<Ticket>> {
        Ok(self
            .crm
            .cases()
            .iter()
            .filter(|c| names_case(c.case.google_case_name.as_deref(), number))
            .map(Self::ticket_of)
            .collect())
    }

    fn injects_faults(&self) -> bool {
        true
    }

    fn inject_fault(&self, call: CrmCall, fault: CrmFault, count: usize) -> anyhow::Result<()> {
        let op = Self::operation(call);
        match fault {
            CrmFault::Unavailable => self.crm.faults.fail_next(op, count),
            CrmFault::LostReply => {
                for n in 1..=count {
                    self.crm.faults.plan(
                        op,
                        n,
                        shared::testing::Fault::LostReply(shared::error::PortError::from_http(
                            op,
                            503,
                            "injected fault: reply lost",
                            None,
                        )),
                    );
                }
            }
        }
        Ok(())
    }

    fn clear_faults(&self) {
        self.crm.faults.clear();
    }
}

// ---------------------------------------------------------------------------------------
// Jira, on the emulator.

/// A person (`account_id`) in the Jira emulator, through its control API. Tickets are
/// named by the numeric issue id casesync uses (the control API takes a key or an id).
pub struct JiraDriver {
    pub jira: JiraEmulator,
    pub account_id: String,
    pub person: String,
    /// The connector's account: its comments and files are `by_connector`.
    pub connector_account: String,
    pub priorities: PriorityMap,
}

impl JiraDriver {
    /// The emulator's default person (`agent-1`, "Alex Agent"); the connector is the first
    /// configured user.
    pub fn new(jira: JiraEmulator) -> Self {
        let config = jira.config();
        let person = config
            .default_person()
            .cloned()
            .unwrap_or_else(|| config.users[0].clone());
        JiraDriver {
            connector_account: config.users[0].account_id.clone(),
            account_id: person.account_id,
            person: person.display_name,
            priorities: PriorityMap::default(),
            jira,
        }
    }

    fn issue(&self, ticket: &str) -> anyhow::Result<Value> {
        self.jira
            .issue(ticket)
            .with_context(|| format!("Jira issue {ticket} is gone"))
    }

    fn ticket_of(&self, issue: &Value) -> Ticket {
        let text = |k: &str| issue[k].as_str().unwrap_or_default().to_string();
        Ticket {
            id: text("id"),
            summary: text("summary"),
            description: text("description"),
            priority: text("priority"),
            level: self.priorities.from_jira(&text("priority")),
            closed: issue["statusCategory"] == "done",
            flagged: issue["syncFlag"] == true,
            google_case_name: issue["googleCaseName"].as_str().map(str::to_string),
        }
    }

    fn author(v: &Value) -> (String, String) {
        (
            v["author"]["accountId"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            v["author"]["displayName"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        )
    }

    fn operation(call: CrmCall) -> &'static str {
        match call {
            CrmCall::CreateCase => "createIssue",
            CrmCall::GetCase => "getIssue",
            CrmCall::UpdateCase => "editIssue",
            CrmCall::CloseCase => "doTransition",
            CrmCall::Search => "searchAndReconsileIssuesUsingJqlPost",
            CrmCall::AddComment => "addComment",
            CrmCall::ListComments => "getComments",
            CrmCall::UploadAttachment => "addAttachment",
            CrmCall::ListAttachments => "getIssue",
            CrmCall::DownloadAttachment => "getAttachmentContent",
        }
    }
}

#[async_trait]
impl CrmDriver for JiraDriver {
    fn kind(&self) -> &str {
        "jira"
    }

    fn person_name(&self) -> &str {
        &self.person
    }

    fn priority_word(&self, p: Priority) -> String {
        self.priorities.to_jira(p).to_string()
    }

    async fn create_ticket(
        &self,
        summary: &str,
        description: &str,
        priority: &str,
        flagged: bool,
    ) -> anyhow::Result<String> {
        let issue = self
            .jira
            .try_create_issue_as(
                &self.account_id,
                NewIssue {
                    summary: summary.into(),
                    description: description.into(),
                    priority: priority.into(),
                    sync_flag: flagged,
                    ..NewIssue::default()
                },
            )
            .map_err(|e| anyhow::anyhow!("creating a Jira issue: {e}"))?;
        issue["id"]
            .as_str()
            .map(str::to_string)
            .with_context(|| format!("no issue id: {issue}"))
    }

    async fn comment(&self, ticket: &str, body: &str, internal: bool) -> anyhow::Result<String> {
        let c = self
            .jira
            .try_add_comment_as(ticket, &self.account_id, body, internal)
            .map_err(|e| anyhow::anyhow!("commenting on {ticket}: {e}"))?;
        c["id"]
            .as_str()
            .map(str::to_string)
            .with_context(|| format!("no comment id: {c}"))
    }

    async fn attach(
        &self,
        ticket: &str,
        filename: &str,
        mime: &str,
        bytes: &[u8],
    ) -> anyhow::Result<String> {
        let a = self
            .jira
            .try_add_attachment_as(ticket, &self.account_id, filename, mime, bytes)
            .map_err(|e| anyhow::anyhow!("attaching to {ticket}: {e}"))?;
        a["id"]
            .as_str()
            .map(str::to_string)
            .with_context(|| format!("no attachment id: {a}"))
    }

    async fn set_priority(&self, ticket: &str, priority: &str) -> anyhow::Result<()> {
        self.jira.set_priority(ticket, priority)
    }

    async fn close(&self, ticket: &str) -> anyhow::Result<()> {
        self.jira.set_status(ticket, "Done")
    }

    async fn reopen(&self, ticket: &str) -> anyhow::Result<()> {
        self.jira.set_status(ticket, "To Do")
    }

    async fn set_flag(&self, ticket: &str, flagged: bool) -> anyhow::Result<()> {
        self.jira.set_sync_flag(ticket, flagged)
    }

    async fn delete(&self, ticket: &str) -> anyhow::Result<()> {
        self.jira.delete_issue(ticket)
    }

    async fn ticket(&self, ticket: &str) -> anyhow::Result<Ticket> {
        Ok(self.ticket_of(&self.issue(ticket)?))
    }

    async fn comments(&self, ticket: &str) -> anyhow::Result<Vec<Note>> {
        let issue = self.issue(ticket)?;
        Ok(issue["comments"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                let (account, name) = Self::author(c);
                Note {
                    id: c["id"].as_str().unwrap_or_default().to_string(),
                    by_connector: account == self.connector_account,
                    author: name,
                    body: c["bodyText"].as_str().unwrap_or_default().to_string(),
                }
            })
            .collect())
    }

    async fn attachments(&self, ticket: &str) -> anyhow::Result<Vec<File>> {
        let issue = self.issue(ticket)?;
        issue["attachments"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| {
                let (account, name) = Self::author(a);
                let id = a["id"].as_str().unwrap_or_default().to_string();
                Ok(File {
                    bytes: self
                        .jira
                        .attachment_bytes(&id)
                        .with_context(|| format!("no bytes for attachment {id}"))?,
                    id,
                    filename: a["filename"].as_str().unwrap_or_default().to_string(),
                    by_connector: account == self.connector_account,
                    author: name,
                })
            })
            .collect()
    }

    /// By the label casesync puts on the issues it creates (`gcp-case-N`).
    async fn tickets_for_google_case(&self, number: &str) -> anyhow::Result<Vec<Ticket>> {
        let label = format!("gcp-case-{number}");
        Ok(self
            .jira
            .issues()
            .iter()
            .filter(|i| {
                i["labels"]
                    .as_array()
                    .is_some_and(|l| l.iter().any(|x| x == label.as_str()))
            })
            .map(|i| self.ticket_of(i))
            .collect())
    }

    fn injects_faults(&self) -> bool {
        true
    }

    fn inject_fault(&self, call: CrmCall, fault: CrmFault, count: usize) -> anyhow::Result<()> {
        let op = Self::operation(call);
        let count = u32::try_from(count)?;
        match fault {
            CrmFault::Unavailable => self.jira.inject_failures(op, 503, count),
            CrmFault::LostReply => self.jira.inject_lost_replies(op, count),
        }
        Ok(())
    }

    fn clear_faults(&self) {
        self.jira.clear_faults();
    }
}

// ---------------------------------------------------------------------------------------
// A real Request Tracker.

/// The RT support agent ([`RtPerson`], REST2 with the agent's token) for actions and the
/// ticket's fields; the adapter's reads (`observer`, a second `RtCrm` casesync does not
/// use) for comments and attachments with their authors, as casesync sees them.
pub struct RtDriver {
    pub person: RtPerson,
    pub observer: RtCrm,
    pub priorities: PriorityRanges,
    sync_field: String,
    case_field: String,
}

impl RtDriver {
    pub async fn new(rt: &crate::rt::RtInstance) -> anyhow::Result<Self> {
        Ok(RtDriver {
            person: rt.person(),
            observer: RtCrm::connect(rt.config()).await?,
            priorities: PriorityRanges::default(),
            sync_field: rt.var("RT_SYNC_FIELD").to_string(),
            case_field: rt.var("RT_CASE_FIELD").to_string(),
        })
    }

    fn custom_field(ticket: &Value, name: &str) -> Option<String> {
        ticket["CustomFields"]
            .as_array()?
            .iter()
            .find(|f| f["name"] == name)?["values"]
            .as_array()?
            .first()?
            .as_str()
            .map(str::to_string)
    }

    fn ticket_of(&self, t: &Value, read: shared::domain::CrmCase) -> Ticket {
        let text = |k: &str| match &t[k] {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        Ticket {
            id: text("id"),
            summary: text("Subject"),
            description: read.description,
            priority: text("Priority"),
            level: read.priority,
            closed: t["Status"] == "resolved",
            flagged: Self::custom_field(t, &self.sync_field).is_some_and(|v| v == "true"),
            google_case_name: Self::custom_field(t, &self.case_field),
        }
    }
}

#[async_trait]
impl CrmDriver for RtDriver {
    fn kind(&self) -> &str {
        "rt"
    }

    fn person_name(&self) -> &str {
        &self.person.name
    }

    fn priority_word(&self, p: Priority) -> String {
        self.priorities.to_rt(p).to_string()
    }

    async fn create_ticket(
        &self,
        summary: &str,
        description: &str,
        priority: &str,
        flagged: bool,
    ) -> anyhow::Result<String> {
        let priority: i64 = priority
            .parse()
            .with_context(|| format!("RT priority '{priority}'"))?;
        self.person
            .open_ticket(summary, description, priority, flagged, None)
            .await
    }

    async fn comment(&self, ticket: &str, body: &str, internal: bool) -> anyhow::Result<String> {
        let kind = if internal { "comment" } else { "correspond" };
        self.person.message(ticket, kind, body).await
    }

    async fn attach(
        &self,
        ticket: &str,
        filename: &str,
        mime: &str,
        bytes: &[u8],
    ) -> anyhow::Result<String> {
        self.person
            .attach(ticket, "comment", filename, mime, bytes)
            .await
    }

    async fn set_priority(&self, ticket: &str, priority: &str) -> anyhow::Result<()> {
        let priority: i64 = priority
            .parse()
            .with_context(|| format!("RT priority '{priority}'"))?;
        self.person
            .update(ticket, json!({ "Priority": priority }))
            .await
            .map(drop)
    }

    async fn close(&self, ticket: &str) -> anyhow::Result<()> {
        self.person
            .update(ticket, json!({ "Status": "resolved" }))
            .await
            .map(drop)
    }

    async fn reopen(&self, ticket: &str) -> anyhow::Result<()> {
        self.person
            .update(ticket, json!({ "Status": "open" }))
            .await
            .map(drop)
    }

    async fn set_flag(&self, ticket: &str, flagged: bool) -> anyhow::Result<()> {
        let value = if flagged { "true" } else { "false" };
        self.person
            .update(
                ticket,
                json!({ "CustomFields": { self.sync_field.clone(): value } }),
            )
            .await
            .map(drop)
    }

    /// The agent of `scripts/rt.sh` has no `DeleteTicket` right (RT answers 500 to
    /// `DELETE /ticket/N` and ignores `Status: deleted`), so the person cannot delete.
    fn deletes(&self) -> bool {
        false
    }

    async fn delete(&self, ticket: &str) -> anyhow::Result<()> {
        bail!(
            "the RT agent may not delete tickets (asked for {ticket}): scripts/rt.sh grants no DeleteTicket"
        )
    }

    async fn ticket(&self, ticket: &str) -> anyhow::Result<Ticket> {
        let t = self.person.ticket(ticket).await?;
        let read = self.observer.get_case(ticket).await?;
        Ok(self.ticket_of(&t, read))
    }

    async fn comments(&self, ticket: &str) -> anyhow::Result<Vec<Note>> {
        let mut comments = self.observer.list_comments(ticket, None).await?;
        comments.sort_by_key(|c| c.created_at);
        Ok(comments
            .into_iter()
            .map(|c| Note {
                id: c.id,
                author: c.author_name,
                body: c.body,
                by_connector: c.by_connector,
            })
            .collect())
    }

    async fn attachments(&self, ticket: &str) -> anyhow::Result<Vec<File>> {
        let mut out = Vec::new();
        for a in self.observer.list_attachments(ticket).await? {
            let mut bytes = Vec::new();
            let mut stream = self.observer.download_attachment(ticket, &a).await?;
            while let Some(chunk) = futures::StreamExt::next(&mut stream).await {
                bytes.extend_from_slice(&chunk?);
            }
            out.push(File {
                id: a.id,
                filename: a.filename,
                author: a.author_name,
                by_connector: a.by_connector,
                bytes,
            });
        }
        Ok(out)
    }

    /// By the Google-name custom field, as RT's search finds it.
    async fn tickets_for_google_case(&self, number: &str) -> anyhow::Result<Vec<Ticket>> {
        let mut out = Vec::new();
        for t in self.person.tickets_naming(number).await? {
            let id = t["id"].as_str().context("ticket id")?.to_string();
            let full = self.ticket(&id).await?;
            ensure!(
                names_case(full.google_case_name.as_deref(), number),
                "RT search for case {number} found ticket {id} naming {:?}",
                full.google_case_name
            );
            out.push(full);
        }
        Ok(out)
    }

    /// A real RT has no fault switch.
    fn injects_faults(&self) -> bool {
        false
    }

    fn inject_fault(&self, call: CrmCall, _fault: CrmFault, _count: usize) -> anyhow::Result<()> {
        bail!("a real Request Tracker cannot inject faults (asked for {call:?})")
    }

    fn clear_faults(&self) {}
}

/// The driver's actions the two-way scenario does not take (a level set in the CRM's own
/// words as the adapter reads it, flag, close, reopen, faults, delete), checked against
/// the adapter casesync uses (`port`), so each driver does what it says on its CRM.
pub async fn check_driver<D: CrmDriver + ?Sized>(d: &D, port: &dyn Crm) -> anyhow::Result<()> {
    let kind = d.kind().to_string();
    let id = d
        .create_ticket(
            "Driver check",
            "What the driver does, read by the adapter.",
            &d.priority_word(Priority::P1),
            false,
        )
        .await?;
    let read = port.get_case(&id).await?;
    ensure!(
        read.priority == Some(Priority::P1) && !read.sync_flag && !read.closed,
        "{kind}: a new unflagged P1 ticket: {read:?}"
    );
    d.set_priority(&id, &d.priority_word(Priority::P4)).await?;
    d.set_flag(&id, true).await?;
    let read = port.get_case(&id).await?;
    ensure!(
        read.priority == Some(Priority::P4) && read.sync_flag,
        "{kind}: P4 and flagged: {read:?}"
    );
    d.close(&id).await?;
    ensure!(
        port.get_case(&id).await?.closed && d.ticket(&id).await?.closed,
        "{kind}: closed"
    );
    d.reopen(&id).await?;
    d.set_flag(&id, false).await?;
    let read = port.get_case(&id).await?;
    ensure!(
        !read.closed && !read.sync_flag && !d.ticket(&id).await?.closed,
        "{kind}: reopened and unflagged: {read:?}"
    );
    if d.injects_faults() {
        d.inject_fault(CrmCall::GetCase, CrmFault::Unavailable, 1)?;
        let failed = port.get_case(&id).await;
        ensure!(
            failed
                .as_ref()
                .is_err_and(|e| e.class() == shared::error::ErrorClass::Retryable),
            "{kind}: an injected 503 on get_case: {failed:?}"
        );
        ensure!(port.get_case(&id).await.is_ok(), "{kind}: one fault only");
        d.inject_fault(CrmCall::AddComment, CrmFault::LostReply, 1)?;
        let lost = port.add_comment(&id, "lost reply").await;
        ensure!(lost.is_err(), "{kind}: a lost reply answers an error");
        ensure!(
            d.comments(&id)
                .await?
                .iter()
                .any(|c| c.body == "lost reply"),
            "{kind}: a lost reply's comment was written"
        );
        d.inject_fault(CrmCall::GetCase, CrmFault::Unavailable, 5)?;
        d.clear_faults();
        ensure!(port.get_case(&id).await.is_ok(), "{kind}: faults cleared");
    } else {
        ensure!(
            d.inject_fault(CrmCall::GetCase, CrmFault::Unavailable, 1)
                .is_err(),
            "{kind}: a CRM without faults refuses to inject one"
        );
    }
    if d.deletes() {
        d.delete(&id).await?;
        let gone = port.get_case(&id).await;
        ensure!(
            gone.as_ref().is_err_and(|e| e.is_not_found()),
            "{kind}: a deleted ticket is gone for casesync: {gone:?}"
        );
    } else {
        ensure!(
            d.delete(&id).await.is_err(),
            "{kind}: a CRM where the person cannot delete refuses to"
        );
    }
    Ok(())
}
