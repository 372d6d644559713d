//! The `Crm` port on Request Tracker 5, through REST2 with token auth (issue 7;
//! `reference/rt/REQUEST-TRACKER.md`). RT is the one CRM here that nobody on this project
//! wrote, so its traps shape this adapter:
//! - a write RT refuses may still be answered 200 with the refusal in a message list: every
//!   ticket write is read back, and a write that did not stick is an error;
//! - a new comment's id is only in the `Location` header;
//! - `/ticket/{id}/attachments` lists every MIME part (multipart containers, bodies, RT's
//!   own outgoing mail): files are the named parts of Create, Comment and Correspond
//!   transactions, and a comment's text is the unnamed text part of its transaction;
//! - RT writes transactions of its own (status changes, autoreply records): comments are
//!   only Comment and Correspond transactions, and `by_connector` is "created by
//!   casesync's RT user", so RT_System's changes are a person's neither;
//! - RT reopens a closed ticket on correspondence: on a closed ticket casesync comments;
//! - times are whole seconds and TicketSQL reads dates in the user's zone: the search
//!   floors `since` in the configured zone and removes duplicates;
//! - paging totals are missing for non-root users: listings page until a short page;
//! - a TicketSQL search is built only from casesync's code and configuration, so RT
//!   refusing one (400 for a query it cannot parse, a misnamed field) is systemic
//!   ([`PortError::of_own_request`]), never a reason to dead-letter the case.
//!
//! Attachments go through transactions: an upload is a Comment (or Correspond) carrying
//! the file, and a download is the attachment record's base64 content (REST2 has no raw
//! download), decoded as it streams by [`content_stream`] so memory does not grow with it.

pub mod client;
pub mod config;
pub mod content_stream;
pub mod ticketsql;
pub mod wire;

pub use config::{CommentType, PriorityRanges, RtConfig, Secret};

use crate::adapters::http_support::{Call, segment};
use crate::domain::markers::{self, MarkedKind};
use crate::domain::{
    AttachmentUpload, CrmAttachment, CrmCase, CrmComment, GoogleCaseKey, NewCrmCase, Priority, Side,
};
use crate::error::{ErrorClass, PortError, PortResult};
use crate::ports::{ByteStream, Crm};
use async_trait::async_trait;
use base64::Engine as _;
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use client::{Reply, RtClient};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use wire::{Part, Txn, undecodable};

/// Pages one listing may read before it gives up (a server that never sends a short page
/// must not keep a sync busy forever).
const MAX_PAGES: u32 = 10_000;
/// REST2 caps `per_page` at 100.
const MAX_PAGE_SIZE: u32 = 100;
const TICKET_FIELDS: &str = "Subject,Status,Priority,Created,LastUpdated,CustomFields";
const PART_FIELDS: &str = "TransactionId,Filename,ContentType,ContentLength,Created";
/// The transactions that carry a person's (or casesync's) words and files.
const MESSAGE_TYPES: [&str; 2] = ["Comment", "Correspond"];

/// casesync's own RT user, read at connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub display_name: String,
}

/// The Request Tracker adapter.
#[derive(Debug)]
pub struct RtCrm {
    config: RtConfig,
    client: RtClient,
    me: Identity,
}

impl RtCrm {
    /// Checks the configuration, that the token belongs to `user` (RT shows a user's full
    /// record only to that user or an admin), and that the queue has both custom fields.
    pub async fn connect(config: RtConfig) -> PortResult<RtCrm> {
        config.validate()?;
        let client = RtClient::new(&config)?;
        let what = format!("user {}", config.user);
        let user = match client
            .get(
                Call {
                    op: "rt.connect",
                    what: &what,
                },
                &format!("/user/{}", segment(&config.user)),
                &[],
            )
            .await
        {
            Err(e) if e.is_not_found() => {
                return Err(PortError::Config(format!(
                    "crm.rt.user: RT has no user `{}`",
                    config.user
                )));
            }
            other => other?,
        };
        if user.get("Disabled").is_none() {
            return Err(PortError::Config(format!(
                "crm.rt.token: the token does not belong to `{}`; casesync must use its own RT user",
                config.user
            )));
        }
        let (name, display_name) = wire::user_names(Some(&user));
        let name = if name.is_empty() {
            config.user.clone()
        } else {
            name
        };
        let what = format!("queue {}", config.queue);
        let queue = match client
            .get(
                Call {
                    op: "rt.connect",
                    what: &what,
                },
                &format!("/queue/{}", segment(&config.queue)),
                &[],
            )
            .await
        {
            Err(e) if e.is_not_found() => {
                return Err(PortError::Config(format!(
                    "crm.rt.queue: RT has no queue `{}` casesync can see",
                    config.queue
                )));
            }
            other => other?,
        };
        let fields: Vec<String> = queue
            .get("TicketCustomFields")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|f| wire::text(f, "name"))
            .collect();
        for (key, field) in [
            ("sync_flag_field", &config.sync_flag_field),
            ("google_case_field", &config.google_case_field),
        ] {
            if !fields.iter().any(|f| f == field) {
                return Err(PortError::Config(format!(
                    "crm.rt.{key}: queue `{}` has no custom field `{field}`",
                    config.queue
                )));
            }
        }
        Ok(RtCrm {
            me: Identity { name, display_name },
            config,
            client,
        })
    }

    pub fn config(&self) -> &RtConfig {
        &self.config
    }

    pub fn identity(&self) -> &Identity {
        &self.me
    }

    fn page_size(&self) -> u32 {
        self.config.page_size.min(MAX_PAGE_SIZE)
    }

    fn is_mine(&self, creator: &str) -> bool {
        creator.eq_ignore_ascii_case(&self.me.name)
    }

    /// Every item of a REST2 collection, all pages, ordered by id.
    async fn collect(
        &self,
        call: Call<'_>,
        path: &str,
        query: &[(&str, String)],
    ) -> PortResult<Vec<Value>> {
        let per_page = self.page_size();
        let mut out = Vec::new();
        for page in 1..=MAX_PAGES {
            let mut q: Vec<(&str, String)> = query.to_vec();
            q.extend([
                ("per_page", per_page.to_string()),
                ("page", page.to_string()),
                ("orderby", "id".to_string()),
                ("order", "ASC".to_string()),
            ]);
            let reply = self.client.get(call, path, &q).await?;
            let (items, more) = wire::page_items(call.op, &reply, per_page)?;
            out.extend(items);
            if !more {
                return Ok(out);
            }
        }
        Err(PortError::retryable(
            call.op,
            format!(
                "the listing of {} did not end after {MAX_PAGES} pages",
                call.what
            ),
        ))
    }

    fn ticket_number(op: &str, id: &str) -> PortResult<u64> {
        id.trim().parse().map_err(|_| PortError::NotFound {
            operation: op.to_string(),
            what: format!("ticket {id} (RT ticket ids are numbers)"),
        })
    }

    async fn ticket(&self, op: &'static str, id: &str) -> PortResult<Value> {
        let what = format!("ticket {id}");
        self.client
            .get(
                Call { op, what: &what },
                &format!("/ticket/{}", segment(id)),
                &[],
            )
            .await
    }

    /// The ticket's transactions of `types`, oldest first, de-duplicated.
    async fn transactions(
        &self,
        op: &'static str,
        id: &str,
        types: &[&str],
    ) -> PortResult<Vec<Txn>> {
        let number = Self::ticket_number(op, id)?;
        let what = format!("transactions of ticket {id}");
        let items = self
            .collect(
                Call { op, what: &what },
                "/transactions",
                &[
                    ("query", ticketsql::ticket_transactions(number, types)),
                    ("fields", "Type,Created,Creator".to_string()),
                    ("fields[Creator]", "Name,RealName".to_string()),
                ],
            )
            .await?;
        let mut seen = HashSet::new();
        let mut txns = Vec::new();
        for item in &items {
            let t = wire::to_txn(op, item)?;
            if seen.insert(t.id.clone()) {
                txns.push(t);
            }
        }
        txns.sort_by_key(|t| wire::numeric(&t.id));
        Ok(txns)
    }

    /// Every MIME part of the ticket.
    async fn ticket_parts(&self, op: &'static str, id: &str) -> PortResult<Vec<Part>> {
        let what = format!("attachments of ticket {id}");
        let items = self
            .collect(
                Call { op, what: &what },
                &format!("/ticket/{}/attachments", segment(id)),
                &[("fields", PART_FIELDS.to_string())],
            )
            .await?;
        items.iter().map(|v| wire::to_part(op, v)).collect()
    }

    async fn transaction_parts(&self, op: &'static str, txn: &str) -> PortResult<Vec<Part>> {
        let what = format!("transaction {txn}");
        let items = self
            .collect(
                Call { op, what: &what },
                &format!("/transaction/{}/attachments", segment(txn)),
                &[("fields", PART_FIELDS.to_string())],
            )
            .await?;
        items.iter().map(|v| wire::to_part(op, v)).collect()
    }

    /// An attachment's bytes (REST2 sends them base64 in a JSON record; the collections'
    /// `Content` field is raw and mangles binary data, a trap).
    async fn part_bytes(&self, op: &'static str, part_id: &str) -> PortResult<Vec<u8>> {
        let what = format!("attachment {part_id}");
        let call = Call { op, what: &what };
        let record = self
            .client
            .get(call, &format!("/attachment/{}", segment(part_id)), &[])
            .await?;
        let content = record.get("Content").and_then(Value::as_str).unwrap_or("");
        let compact: String = content.chars().filter(|c| !c.is_whitespace()).collect();
        base64::engine::general_purpose::STANDARD
            .decode(compact)
            .map_err(|_| undecodable(op, format!("{what}: content is not base64")))
    }

    async fn part_text(&self, op: &'static str, part: &Part) -> PortResult<String> {
        let bytes = self.part_bytes(op, &part.id).await?;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        Ok(if part.content_type == "text/html" {
            wire::html_to_text(&text)
        } else {
            text
        })
    }

    /// The ticket's description: the text of its Create transaction.
    async fn description(&self, op: &'static str, id: &str) -> PortResult<String> {
        let create = self.transactions(op, id, &["Create"]).await?;
        let Some(txn) = create.first() else {
            return Ok(String::new());
        };
        let parts = self.transaction_parts(op, &txn.id).await?;
        match wire::body_part(&parts) {
            Some(p) => self.part_text(op, p).await,
            None => Ok(String::new()),
        }
    }

    async fn to_case(&self, op: &'static str, ticket: &Value) -> PortResult<CrmCase> {
        let id = ticket
            .get("id")
            .and_then(wire::id)
            .ok_or_else(|| undecodable(op, "a ticket without id"))?;
        let description = self.description(op, &id).await?;
        wire::to_case(op, &self.config, ticket, description)
    }

    /// Tickets a TicketSQL query matches, all pages, each once.
    async fn search(&self, op: &'static str, query: String) -> PortResult<Vec<Value>> {
        let items = self
            .collect(
                Call {
                    op,
                    what: "the ticket search",
                },
                "/tickets",
                &[("query", query), ("fields", TICKET_FIELDS.to_string())],
            )
            .await
            .map_err(PortError::of_own_request)?;
        // A ticket can move between pages while they are read; keep its newest copy.
        let mut out: Vec<Value> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for item in items {
            let Some(id) = item.get("id").and_then(wire::id) else {
                return Err(undecodable(op, "a search item without id"));
            };
            match index.get(&id) {
                Some(&i) => out[i] = item,
                None => {
                    index.insert(id, out.len());
                    out.push(item);
                }
            }
        }
        Ok(out)
    }

    /// Writes `body` to the ticket, then reads the ticket back: RT answers 200 also when it
    /// refused the change, with the reason in a message list (trap). `applied` says
    /// whether the re-read ticket shows the change; if not, the write failed.
    async fn update_and_check(
        &self,
        op: &'static str,
        id: &str,
        key: &str,
        body: &Value,
        applied: impl Fn(&Value) -> bool,
    ) -> PortResult<()> {
        let what = format!("ticket {id}");
        let reply = self
            .client
            .call(
                Call { op, what: &what },
                Method::PUT,
                &format!("/ticket/{}", segment(id)),
                &[],
                Some(body),
            )
            .await?;
        let after = self.ticket(op, id).await?;
        if applied(&after) {
            return Ok(());
        }
        Err(refused(op, id, key, &reply))
    }

    fn comment_path(&self, id: &str, ticket: Option<&Value>) -> String {
        let kind = match (self.config.comment_type, ticket) {
            (CommentType::Correspond, Some(t))
                if !self
                    .config
                    .is_closed_status(&wire::text(t, "Status").unwrap_or_default()) =>
            {
                "correspond"
            }
            _ => "comment",
        };
        format!("/ticket/{}/{kind}", segment(id))
    }

    /// The ticket, when correspondence needs its status (RT reopens a closed ticket on
    /// correspondence, so casesync comments there instead).
    async fn ticket_for_message(&self, op: &'static str, id: &str) -> PortResult<Option<Value>> {
        match self.config.comment_type {
            CommentType::Comment => Ok(None),
            CommentType::Correspond => self.ticket(op, id).await.map(Some),
        }
    }

    /// The transaction a comment post created, from the `Location` header (trap: the body
    /// only says "Comments added").
    fn created_transaction(op: &str, id: &str, reply: &Reply) -> PortResult<String> {
        reply
            .location
            .as_deref()
            .and_then(|l| wire::location_id(l, "transaction"))
            .ok_or_else(|| {
                undecodable(
                    op,
                    format!("the comment on ticket {id} came back without a transaction Location"),
                )
            })
    }

    /// Uploads a file in a comment whose text is `comment` (for a mirrored Google
    /// attachment, its `[Google Attachment {id} by {name}]` marker, docs/INVARIANTS.md#markers).
    pub async fn upload_with_comment(
        &self,
        id: &str,
        upload: AttachmentUpload,
        comment: &str,
    ) -> PortResult<CrmAttachment> {
        const OP: &str = "rt.upload_attachment";
        let what = format!("ticket {id}");
        let call = Call {
            op: OP,
            what: &what,
        };
        let filename = upload.filename.clone();
        let ticket = self.ticket_for_message(OP, id).await?;
        let reply = self
            .client
            .post_with_attachment(
                call,
                &self.comment_path(id, ticket.as_ref()),
                &json!({ "Content": comment, "ContentType": "text/plain" }),
                upload,
            )
            .await?;
        let txn = Self::created_transaction(OP, id, &reply)?;
        let parts = self.transaction_parts(OP, &txn).await?;
        let part = parts
            .iter()
            .filter(|p| p.is_file())
            .find(|p| p.filename == filename)
            .or_else(|| parts.iter().find(|p| p.is_file()))
            .ok_or_else(|| {
                undecodable(
                    OP,
                    format!("transaction {txn} of ticket {id} holds no file"),
                )
            })?;
        Ok(CrmAttachment {
            id: part.id.clone(),
            filename: part.filename.clone(),
            mime_type: part.content_type.clone(),
            size_bytes: part.length,
            author_name: self.me.display_name.clone(),
            by_connector: true,
            created_at: part.created.unwrap_or_else(Utc::now),
        })
    }
}

/// The comment text of an upload whose source is known (docs/INVARIANTS.md#markers).
pub fn attachment_comment(google_attachment_id: &str, author: &str, filename: &str) -> String {
    format!(
        "{}\n{filename}",
        markers::marker_line(
            Side::Google,
            MarkedKind::Attachment,
            google_attachment_id,
            author
        )
    )
}

/// A write RT answered 200 but did not apply: the configuration or casesync's rights do
/// not fit this RT (an unknown status, a value the field does not offer, a missing right),
/// not the message's fault.
fn refused(op: &str, id: &str, key: &str, reply: &Reply) -> PortError {
    let said: String = wire::messages(&reply.body)
        .join(" | ")
        .chars()
        .take(300)
        .collect();
    PortError::Failed {
        operation: op.to_string(),
        class: ErrorClass::Systemic,
        status: Some(reply.status),
        message: format!(
            "RT answered {} but did not apply crm.rt.{key} to ticket {id}: {said}",
            reply.status
        ),
        retry_after: None,
    }
}

/// `t` floored to RT's whole seconds.
fn floor_second(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::seconds(1)).unwrap_or(t)
}

#[async_trait]
impl Crm for RtCrm {
    fn kind(&self) -> &str {
        "rt"
    }

    async fn get_case(&self, id: &str) -> PortResult<CrmCase> {
        const OP: &str = "rt.get_ticket";
        Self::ticket_number(OP, id)?;
        let ticket = self.ticket(OP, id).await?;
        self.to_case(OP, &ticket).await
    }

    async fn search_updated_since(&self, since: DateTime<Utc>) -> PortResult<Vec<CrmCase>> {
        const OP: &str = "rt.search_updated";
        let c = &self.config;
        let literal = ticketsql::since_literal(since, c.tz());
        let query =
            ticketsql::updated_since(&c.queue, &c.sync_flag_field, &c.sync_flag_value, &literal);
        let mut cases = Vec::new();
        for ticket in self.search(OP, query).await? {
            let case = self.to_case(OP, &ticket).await?;
            // Trust the fields RT returned, not the query: a flag removed meanwhile counts.
            if case.sync_flag {
                cases.push(case);
            }
        }
        Ok(cases)
    }

    async fn find_by_google_case(&self, key: &GoogleCaseKey) -> PortResult<Option<CrmCase>> {
        const OP: &str = "rt.find_by_google_case";
        let query = ticketsql::naming_google_case(&self.config.google_case_field, key.as_str());
        for ticket in self.search(OP, query).await? {
            // LIKE is a substring match: the field must name exactly this case.
            let names_it = wire::cf_values(&ticket, &self.config.google_case_field)
                .iter()
                .filter_map(|n| GoogleCaseKey::from_case_name(n.trim()).ok())
                .any(|k| k == *key);
            if names_it {
                return self.to_case(OP, &ticket).await.map(Some);
            }
        }
        Ok(None)
    }

    async fn create_case(&self, case: &NewCrmCase) -> PortResult<CrmCase> {
        const OP: &str = "rt.create_ticket";
        let c = &self.config;
        let mut fields = serde_json::Map::new();
        fields.insert(
            c.sync_flag_field.clone(),
            Value::String(c.sync_flag_value.clone()),
        );
        fields.insert(
            c.google_case_field.clone(),
            Value::String(case.google_case_name.clone()),
        );
        let body = json!({
            "Queue": c.queue,
            "Subject": case.summary,
            "Priority": c.priorities.to_rt(case.priority),
            "Content": case.description,
            "ContentType": "text/plain",
            "CustomFields": fields,
        });
        let what = format!("the ticket for Google case {}", case.google_case_number);
        let reply = self
            .client
            .call(
                Call {
                    op: OP,
                    what: &what,
                },
                Method::POST,
                "/ticket",
                &[],
                Some(&body),
            )
            .await?;
        let id = reply
            .json(Call {
                op: OP,
                what: &what,
            })
            .ok()
            .and_then(|v| v.get("id").and_then(wire::id))
            .or_else(|| {
                reply
                    .location
                    .as_deref()
                    .and_then(|l| wire::location_id(l, "ticket"))
            })
            .ok_or_else(|| undecodable(OP, format!("no ticket id in the reply for {what}")))?;
        // RT creates the ticket even when it refuses a custom field value (trap): read it
        // back, so a ticket casesync cannot find again is reported, not forgotten.
        let created = self.get_case(&id).await?;
        let key = if !created.sync_flag {
            Some("sync_flag_value")
        } else if created.google_case_name.as_deref() != Some(case.google_case_name.as_str()) {
            Some("google_case_field")
        } else {
            None
        };
        if let Some(key) = key {
            // The ticket exists: say which, so the engine links it instead of creating a
            // second one, and retries the refused field.
            return Err(PortError::PartlyApplied {
                id,
                cause: Box::new(refused(OP, &created.id, key, &reply)),
            });
        }
        Ok(created)
    }

    async fn set_google_case_name(&self, id: &str, google_case_name: &str) -> PortResult<()> {
        const OP: &str = "rt.set_google_case_name";
        Self::ticket_number(OP, id)?;
        let field = self.config.google_case_field.clone();
        let mut fields = serde_json::Map::new();
        fields.insert(field.clone(), Value::String(google_case_name.to_string()));
        self.update_and_check(
            OP,
            id,
            "google_case_field",
            &json!({ "CustomFields": fields }),
            |t| {
                wire::cf_values(t, &field)
                    .iter()
                    .any(|v| v.trim() == google_case_name)
            },
        )
        .await
    }

    async fn set_priority(&self, id: &str, priority: Priority) -> PortResult<()> {
        const OP: &str = "rt.set_priority";
        Self::ticket_number(OP, id)?;
        let value = self.config.priorities.to_rt(priority);
        let key = format!("priorities.p{}", priority.index());
        self.update_and_check(OP, id, &key, &json!({ "Priority": value }), |t| {
            wire::text(t, "Priority").and_then(|p| p.trim().parse::<i64>().ok()) == Some(value)
        })
        .await
    }

    async fn close_case(&self, id: &str) -> PortResult<()> {
        const OP: &str = "rt.close_ticket";
        Self::ticket_number(OP, id)?;
        let ticket = self.ticket(OP, id).await?;
        if self
            .config
            .is_closed_status(&wire::text(&ticket, "Status").unwrap_or_default())
        {
            // Closing twice (a retry after a crash) is done already.
            return Ok(());
        }
        let status = self.config.close_status.clone();
        self.update_and_check(OP, id, "close_status", &json!({ "Status": status }), |t| {
            self.config
                .is_closed_status(&wire::text(t, "Status").unwrap_or_default())
        })
        .await
    }

    async fn list_comments(
        &self,
        id: &str,
        since: Option<DateTime<Utc>>,
    ) -> PortResult<Vec<CrmComment>> {
        const OP: &str = "rt.list_comments";
        let since = since.map(floor_second);
        let txns: Vec<Txn> = self
            .transactions(OP, id, &MESSAGE_TYPES)
            .await?
            .into_iter()
            .filter(|t| since.is_none_or(|s| t.created >= s))
            .collect();
        if txns.is_empty() {
            return Ok(Vec::new());
        }
        let parts = self.ticket_parts(OP, id).await?;
        let mut by_txn: HashMap<&str, Vec<&Part>> = HashMap::new();
        for p in &parts {
            by_txn.entry(p.txn.as_str()).or_default().push(p);
        }
        let mut out = Vec::with_capacity(txns.len());
        for t in txns {
            let body =
                match wire::body_part(by_txn.get(t.id.as_str()).into_iter().flatten().copied()) {
                    Some(p) => self.part_text(OP, p).await?,
                    None => String::new(),
                };
            out.push(CrmComment {
                by_connector: self.is_mine(&t.creator),
                id: t.id,
                body,
                author_name: t.author,
                created_at: t.created,
            });
        }
        Ok(out)
    }

    async fn add_comment(&self, id: &str, body: &str) -> PortResult<CrmComment> {
        const OP: &str = "rt.add_comment";
        Self::ticket_number(OP, id)?;
        let what = format!("ticket {id}");
        let call = Call {
            op: OP,
            what: &what,
        };
        let ticket = self.ticket_for_message(OP, id).await?;
        let reply = self
            .client
            .call(
                call,
                Method::POST,
                &self.comment_path(id, ticket.as_ref()),
                &[],
                Some(&json!({ "Content": body, "ContentType": "text/plain" })),
            )
            .await?;
        let txn_id = Self::created_transaction(OP, id, &reply)?;
        let txn_what = format!("transaction {txn_id}");
        let txn = self
            .client
            .get(
                Call {
                    op: OP,
                    what: &txn_what,
                },
                &format!("/transaction/{}", segment(&txn_id)),
                &[],
            )
            .await?;
        Ok(CrmComment {
            id: txn_id,
            body: body.to_string(),
            author_name: self.me.display_name.clone(),
            by_connector: true,
            created_at: wire::time(&txn, "Created").unwrap_or_else(Utc::now),
        })
    }

    async fn list_attachments(&self, id: &str) -> PortResult<Vec<CrmAttachment>> {
        const OP: &str = "rt.list_attachments";
        let txns: HashMap<String, Txn> = self
            .transactions(OP, id, &["Create", "Comment", "Correspond"])
            .await?
            .into_iter()
            .map(|t| (t.id.clone(), t))
            .collect();
        let mut out = Vec::new();
        for p in self.ticket_parts(OP, id).await? {
            // Only files people (or casesync) attached: not the MIME containers and
            // bodies, and nothing of RT's own outgoing mail (trap).
            let Some(t) = txns.get(&p.txn) else { continue };
            if !p.is_file() {
                continue;
            }
            out.push(CrmAttachment {
                created_at: p.created.unwrap_or(t.created),
                id: p.id,
                filename: p.filename,
                mime_type: p.content_type,
                size_bytes: p.length,
                author_name: t.author.clone(),
                by_connector: self.is_mine(&t.creator),
            });
        }
        Ok(out)
    }

    async fn download_attachment(
        &self,
        _id: &str,
        attachment: &CrmAttachment,
    ) -> PortResult<ByteStream> {
        const OP: &str = "rt.download_attachment";
        let what = format!("attachment {}", attachment.id);
        let response = self
            .client
            .get_streamed(
                Call {
                    op: OP,
                    what: &what,
                },
                &format!("/attachment/{}", segment(&attachment.id)),
            )
            .await?;
        // Streamed and decoded as it arrives: memory does not grow with the file (docs/INVARIANTS.md#attachment-limits).
        let max = self.config.max_attachment_bytes;
        Ok(content_stream::decode_content(
            OP,
            response.bytes_stream(),
            content_stream::max_reply_bytes(max),
            max,
        ))
    }

    async fn upload_attachment(
        &self,
        id: &str,
        upload: AttachmentUpload,
    ) -> PortResult<CrmAttachment> {
        Self::ticket_number("rt.upload_attachment", id)?;
        // RT attaches files through a comment: it carries the source's marker (docs/INVARIANTS.md#markers), and
        // names the file only when the caller gave no marker (a contract test, say).
        let comment = match &upload.marker {
            Some(marker) => format!("{marker}\n{}", upload.filename),
            None => format!("casesync attached {}", upload.filename),
        };
        self.upload_with_comment(id, upload, &comment).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testing::answering_server as answering;

    /// An adapter for the server at `base_url`, without connect's checks of user and queue.
    fn rt_at(base_url: &str) -> RtCrm {
        let config = RtConfig::new(base_url, Secret::new("token"), "casesync", "Support");
        RtCrm {
            client: RtClient::new(&config).unwrap(),
            config,
            me: Identity {
                name: "casesync".into(),
                display_name: "casesync".into(),
            },
        }
    }

    const BAD_QUERY: &str = r#"{"message":"Invalid query"}"#;

    #[tokio::test]
    async fn a_refused_search_is_systemic_not_permanent() {
        let rt = rt_at(&answering(400, BAD_QUERY));
        let e = rt.search_updated_since(Utc::now()).await.unwrap_err();
        assert_eq!(e.class(), ErrorClass::Systemic, "{e:?}");
        assert!(e.to_string().contains("HTTP 400"), "{e}");
        let key = GoogleCaseKey::from_case_name("projects/p/cases/123").unwrap();
        let e = rt.find_by_google_case(&key).await.unwrap_err();
        assert_eq!(e.class(), ErrorClass::Systemic, "{e:?}");
    }

    #[tokio::test]
    async fn a_refused_write_stays_permanent() {
        let rt = rt_at(&answering(400, BAD_QUERY));
        let e = rt.add_comment("7", "hello").await.unwrap_err();
        assert_eq!(e.class(), ErrorClass::Permanent, "{e:?}");
    }
}
