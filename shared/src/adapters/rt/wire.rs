//! Reading RT's REST2 replies. RT 5.0.3 is loose about types (numbers as strings in
//! collections, an integer `id` in a single record, `1970-01-01T00:00:00Z` for "unset"),
//! leaves paging totals out for non-root users, and lists every MIME part of a ticket
//! (multipart containers, message bodies, outgoing mail) as an "attachment". Everything
//! that knows these shapes is here, so the adapter works on plain values.

use super::config::RtConfig;
use crate::domain::CrmCase;
use crate::error::{ErrorClass, PortError};
use chrono::{DateTime, Utc};
use serde_json::Value;

/// A reply casesync cannot read: RT is not what the adapter was written for (a proxy, a
/// changed API). Not the message's fault, so never dead-lettered.
pub fn undecodable(operation: &str, what: impl Into<String>) -> PortError {
    PortError::Failed {
        operation: operation.to_string(),
        class: ErrorClass::Systemic,
        status: None,
        message: format!("unexpected reply from RT: {}", what.into()),
        retry_after: None,
    }
}

/// A string field, or a number written as one.
pub fn text(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// An id: a string or an integer, or the `id` of a linked object (`{"id": "43", …}`).
pub fn id(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Object(_) => v.get("id").and_then(id),
        _ => None,
    }
}

/// An RT time; `None` for RT's "unset" (the epoch) or an unreadable value.
pub fn time(v: &Value, key: &str) -> Option<DateTime<Utc>> {
    let t = DateTime::parse_from_rfc3339(v.get(key)?.as_str()?)
        .ok()?
        .with_timezone(&Utc);
    (t.timestamp() > 0).then_some(t)
}

/// The values of a ticket's custom field, matched by name (or id).
pub fn cf_values(ticket: &Value, field: &str) -> Vec<String> {
    ticket
        .get("CustomFields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|cf| {
            cf.get("name").and_then(Value::as_str) == Some(field)
                || cf.get("id").and_then(id).as_deref() == Some(field)
        })
        .flat_map(|cf| {
            cf.get("values")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A ticket record (or a search item with the same fields) as a case; the description
/// comes from the ticket's Create transaction and is read separately.
pub fn to_case(
    op: &str,
    config: &RtConfig,
    ticket: &Value,
    description: String,
) -> Result<CrmCase, PortError> {
    let ticket_id = ticket
        .get("id")
        .and_then(id)
        .ok_or_else(|| undecodable(op, "a ticket without id"))?;
    let created = time(ticket, "Created")
        .ok_or_else(|| undecodable(op, format!("ticket {ticket_id} without Created")))?;
    let updated = time(ticket, "LastUpdated").unwrap_or(created);
    let priority = text(ticket, "Priority")
        .and_then(|p| p.trim().parse::<i64>().ok())
        .map(|p| config.priorities.from_rt(p));
    let status = text(ticket, "Status").unwrap_or_default();
    let sync_flag = cf_values(ticket, &config.sync_flag_field)
        .iter()
        .any(|v| v.trim().eq_ignore_ascii_case(config.sync_flag_value.trim()));
    let google_case_name = cf_values(ticket, &config.google_case_field)
        .into_iter()
        .map(|v| v.trim().to_string())
        .find(|v| !v.is_empty());
    Ok(CrmCase {
        url: Some(config.ticket_url(&ticket_id)),
        id: ticket_id,
        summary: text(ticket, "Subject").unwrap_or_default(),
        description,
        priority,
        closed: config.is_closed_status(&status),
        sync_flag,
        google_case_name,
        created_at: created,
        updated_at: updated.max(created),
    })
}

/// One page of a REST2 collection: its items, and whether a further page may exist.
/// RT 5.0.3 leaves `pages`/`total`/`next_page` out for non-root users (trap), so a full
/// page always asks for the next one and a short or empty page ends the listing.
pub fn page_items(op: &str, page: &Value, per_page: u32) -> Result<(Vec<Value>, bool), PortError> {
    let items = page
        .get("items")
        .and_then(Value::as_array)
        .cloned()
        .ok_or_else(|| undecodable(op, "a collection without items"))?;
    let more = items.len() >= per_page as usize;
    Ok((items, more))
}

/// A transaction from a collection with `fields=Type,Created,Creator` and
/// `fields[Creator]=Name,RealName`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Txn {
    pub id: String,
    pub kind: String,
    pub created: DateTime<Utc>,
    /// The creator's user name (`RT_System` for RT's own changes).
    pub creator: String,
    /// The creator's real name, else the user name.
    pub author: String,
}

pub fn to_txn(op: &str, v: &Value) -> Result<Txn, PortError> {
    let txn_id = v
        .get("id")
        .and_then(id)
        .ok_or_else(|| undecodable(op, "a transaction without id"))?;
    let created = time(v, "Created")
        .ok_or_else(|| undecodable(op, format!("transaction {txn_id} without Created")))?;
    let (creator, author) = user_names(v.get("Creator"));
    Ok(Txn {
        kind: text(v, "Type").unwrap_or_default(),
        id: txn_id,
        created,
        creator,
        author,
    })
}

/// (user name, display name) of an expanded user object (`fields[Creator]=Name,RealName`).
pub fn user_names(user: Option<&Value>) -> (String, String) {
    let Some(user) = user else {
        return (String::new(), String::new());
    };
    let name = text(user, "Name")
        .or_else(|| user.get("id").and_then(id))
        .unwrap_or_default();
    let display = text(user, "RealName")
        .filter(|r| !r.trim().is_empty())
        .unwrap_or_else(|| name.clone());
    (name, display)
}

/// One MIME part of a ticket, from `/ticket/{id}/attachments` or
/// `/transaction/{id}/attachments` with `fields=TransactionId,Filename,ContentType,
/// ContentLength,Created`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub id: String,
    pub txn: String,
    pub filename: String,
    pub content_type: String,
    pub length: u64,
    pub created: Option<DateTime<Utc>>,
}

pub fn to_part(op: &str, v: &Value) -> Result<Part, PortError> {
    let part_id = v
        .get("id")
        .and_then(id)
        .ok_or_else(|| undecodable(op, "an attachment without id"))?;
    Ok(Part {
        txn: v.get("TransactionId").and_then(id).unwrap_or_default(),
        filename: text(v, "Filename").unwrap_or_default(),
        content_type: text(v, "ContentType")
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase(),
        length: text(v, "ContentLength")
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or(0),
        created: time(v, "Created"),
        id: part_id,
    })
}

impl Part {
    /// A file someone attached: it has a name. Multipart containers, message bodies and
    /// the parts of RT's outgoing mail have none (trap: they are all listed).
    pub fn is_file(&self) -> bool {
        !self.filename.trim().is_empty() && !self.content_type.starts_with("multipart/")
    }
}

/// The part holding a transaction's text: the first unnamed `text/plain` part, else the
/// first unnamed `text/html` part (RT's web editor writes HTML), by id.
pub fn body_part<'a>(parts: impl IntoIterator<Item = &'a Part>) -> Option<&'a Part> {
    let mut plain: Option<&Part> = None;
    let mut html: Option<&Part> = None;
    for p in parts {
        if !p.filename.trim().is_empty() {
            continue;
        }
        let slot = match p.content_type.as_str() {
            "text/plain" => &mut plain,
            "text/html" => &mut html,
            _ => continue,
        };
        if slot.is_none_or(|s| numeric(&p.id) < numeric(&s.id)) {
            *slot = Some(p);
        }
    }
    plain.or(html)
}

/// Ids sort as numbers (RT's are integers).
pub fn numeric(id: &str) -> u64 {
    id.parse().unwrap_or(u64::MAX)
}

/// The text a person reads from an HTML body: tags dropped, block ends and `<br>` made
/// line breaks, the common entities decoded.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find('>') else {
            out.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let tag = rest[start + 1..start + end].trim().to_ascii_lowercase();
        let name = tag
            .trim_start_matches('/')
            .split(|c: char| c.is_whitespace() || c == '/')
            .next()
            .unwrap_or("");
        let closing = tag.starts_with('/');
        if name == "br"
            || (closing
                && matches!(
                    name,
                    "p" | "div" | "li" | "tr" | "pre" | "h1" | "h2" | "h3" | "blockquote"
                ))
        {
            out.push('\n');
        }
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    let decoded = out
        .replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    decoded.trim_end().to_string()
}

/// The messages of a write RT answered with 200 (`["Ticket 1: Status changed …"]`).
pub fn messages(body: &[u8]) -> Vec<String> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(items)) => items
            .into_iter()
            .filter_map(|m| m.as_str().map(str::to_string))
            .filter(|m| !m.trim().is_empty())
            .collect(),
        Ok(Value::Object(o)) => o
            .get("message")
            .and_then(Value::as_str)
            .map(|m| vec![m.to_string()])
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// The id at the end of a `Location` header (`/REST/2.0/transaction/46`), the only place
/// RT names a new comment's transaction (trap).
pub fn location_id(location: &str, kind: &str) -> Option<String> {
    let path = location.split(['?', '#']).next().unwrap_or("");
    let mut segments = path.trim_end_matches('/').rsplit('/');
    let last = segments.next()?;
    let before = segments.next()?;
    (before == kind && !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()))
        .then(|| last.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::rt::config::Secret;
    use crate::domain::Priority;
    use serde_json::json;

    fn config() -> RtConfig {
        RtConfig::new(
            "http://rt.test",
            Secret::new("t"),
            "casesync",
            "GoogleSupport",
        )
    }

    #[test]
    fn a_ticket_record_reads_as_a_case() {
        let ticket = json!({
            "id": 12, "Subject": "VM down", "Status": "open", "Priority": "80",
            "Created": "2026-11-29T20:00:00Z", "LastUpdated": "2026-11-29T20:05:07Z",
            "Resolved": "1970-01-01T00:00:00Z",
            "CustomFields": [
                {"name": "GoogleCaseName", "id": "3", "values": ["projects/p/cases/42"]},
                {"name": "SyncWithGoogle", "id": "2", "values": ["true"]}
            ]
        });
        let c = to_case("op", &config(), &ticket, "text".into()).unwrap();
        assert_eq!(c.id, "12");
        assert_eq!(c.summary, "VM down");
        assert_eq!(c.priority, Some(Priority::P1));
        assert!(c.sync_flag && !c.closed);
        assert_eq!(c.google_case_name.as_deref(), Some("projects/p/cases/42"));
        assert_eq!(c.updated_at.to_rfc3339(), "2026-11-29T20:05:07+00:00");
        assert_eq!(
            c.url.as_deref(),
            Some("http://rt.test/Ticket/Display.html?id=12")
        );

        let resolved = json!({
            "id": "13", "Status": "rejected", "Priority": "", "Created": "2026-11-29T20:00:00Z",
            "LastUpdated": "1970-01-01T00:00:00Z",
            "CustomFields": [{"name": "SyncWithGoogle", "values": ["false"]},
                             {"name": "GoogleCaseName", "values": [""]}]
        });
        let c = to_case("op", &config(), &resolved, String::new()).unwrap();
        assert!(c.closed && !c.sync_flag);
        assert_eq!(c.priority, None, "an unreadable priority maps to none");
        assert_eq!(c.google_case_name, None);
        assert_eq!(
            c.updated_at, c.created_at,
            "an unset LastUpdated is the creation"
        );
        assert!(to_case("op", &config(), &json!({"Subject": "x"}), String::new()).is_err());
    }

    #[test]
    fn short_pages_end_a_listing_because_rt_may_omit_totals() {
        let page =
            json!({"count": 2, "total": null, "pages": null, "items": [{"id": "1"}, {"id": "2"}]});
        assert!(
            page_items("op", &page, 2).unwrap().1,
            "a full page asks again"
        );
        assert!(
            !page_items("op", &page, 3).unwrap().1,
            "a short page ends it"
        );
        let empty = json!({"count": 0, "items": []});
        assert_eq!(page_items("op", &empty, 3).unwrap(), (vec![], false));
        assert!(page_items("op", &json!({"message": "x"}), 3).is_err());
    }

    #[test]
    fn transactions_carry_who_wrote_them() {
        let v = json!({"id": "40", "Type": "Comment", "Created": "2026-11-29T21:13:44Z",
                       "Creator": {"Name": "agent1", "RealName": "Alex Agent", "id": "agent1"}});
        let t = to_txn("op", &v).unwrap();
        assert_eq!((t.id.as_str(), t.kind.as_str()), ("40", "Comment"));
        assert_eq!(
            (t.creator.as_str(), t.author.as_str()),
            ("agent1", "Alex Agent")
        );
        let v = json!({"id": 41, "Type": "Status", "Created": "2026-11-29T21:13:44Z",
                       "Creator": {"id": "RT_System", "RealName": ""}});
        let t = to_txn("op", &v).unwrap();
        assert_eq!(
            (t.creator.as_str(), t.author.as_str()),
            ("RT_System", "RT_System")
        );
    }

    #[test]
    fn only_named_parts_are_files_and_bodies_are_the_unnamed_text() {
        let parts: Vec<Part> = [
            json!({"id": "3", "TransactionId": "43", "Filename": "", "ContentType": "multipart/mixed", "ContentLength": "0"}),
            json!({"id": "4", "TransactionId": "43", "Filename": "", "ContentType": "text/plain", "ContentLength": "43"}),
            json!({"id": "5", "TransactionId": "43", "Filename": "a.bin", "ContentType": "application/octet-stream", "ContentLength": "3000"}),
            json!({"id": "6", "TransactionId": {"id": "44"}, "Filename": "", "ContentType": "multipart/alternative", "ContentLength": "0"}),
            json!({"id": "8", "TransactionId": "44", "Filename": "", "ContentType": "text/html; charset=utf-8", "ContentLength": "110"}),
            json!({"id": "9", "TransactionId": "45", "Filename": "notes.txt", "ContentType": "text/plain", "ContentLength": "7"}),
        ]
        .iter()
        .map(|v| to_part("op", v).unwrap())
        .collect();
        let files: Vec<&str> = parts
            .iter()
            .filter(|p| p.is_file())
            .map(|p| p.id.as_str())
            .collect();
        assert_eq!(files, vec!["5", "9"]);
        assert_eq!(parts[2].length, 3000);
        assert_eq!(parts[3].txn, "44");
        let of = |t: &str| parts.iter().filter(move |p| p.txn == t).collect::<Vec<_>>();
        assert_eq!(body_part(of("43")).map(|p| p.id.as_str()), Some("4"));
        assert_eq!(
            body_part(of("44")).map(|p| p.id.as_str()),
            Some("8"),
            "HTML when no plain text"
        );
        assert_eq!(
            body_part(of("45")),
            None,
            "a named text file is not the body"
        );
    }

    #[test]
    fn html_bodies_read_as_text() {
        assert_eq!(
            html_to_text(
                "<p>Hello &amp; <b>welcome</b></p><p>line&nbsp;two<br/>three &lt;x&gt;</p>"
            ),
            "Hello & welcome\nline two\nthree <x>"
        );
        assert_eq!(html_to_text("plain"), "plain");
        assert_eq!(html_to_text("a < b"), "a < b");
    }

    #[test]
    fn write_replies_and_locations_are_read() {
        assert_eq!(
            messages(br#"["Ticket 1: Status 'bogus' isn't a valid status for this ticket."]"#),
            vec!["Ticket 1: Status 'bogus' isn't a valid status for this ticket.".to_string()]
        );
        assert_eq!(messages(br#"[]"#), Vec::<String>::new());
        assert_eq!(
            messages(br#"{"message":"Not Found"}"#),
            vec!["Not Found".to_string()]
        );
        assert_eq!(
            location_id("/REST/2.0/transaction/46", "transaction"),
            Some("46".into())
        );
        assert_eq!(
            location_id("http://rt/REST/2.0/ticket/7/", "ticket"),
            Some("7".into())
        );
        assert_eq!(location_id("/REST/2.0/ticket/7", "transaction"), None);
        assert_eq!(location_id("/REST/2.0/transaction/", "transaction"), None);
    }

    #[test]
    fn custom_fields_match_by_name_or_id() {
        let t = json!({"CustomFields": [{"name": "A", "id": "2", "values": ["x", "y"]}]});
        assert_eq!(cf_values(&t, "A"), vec!["x", "y"]);
        assert_eq!(cf_values(&t, "2"), vec!["x", "y"]);
        assert!(cf_values(&t, "B").is_empty());
    }
}
