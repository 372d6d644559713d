//! The emulator's resources and their proto3-JSON rendering.
//!
//! Records keep typed values; rendering is done in one place so that every response
//! follows the same conventions as Google's front end: lowerCamelCase names, default
//! values omitted, int64 as strings, RFC 3339 `Z` timestamps, and enums as names or
//! as integers depending on `enum-encoding`.

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

/// How enums are written in responses (`$alt=json;enum-encoding=int` → integers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnumEncoding {
    Names,
    Ints,
}

/// `google.cloud.support.v2.Case.Priority`, in proto enum order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    Unspecified,
    P0,
    P1,
    P2,
    P3,
    P4,
}

pub const PRIORITY_NAMES: &[&str] = &["PRIORITY_UNSPECIFIED", "P0", "P1", "P2", "P3", "P4"];

impl Priority {
    pub fn from_index(i: usize) -> Option<Self> {
        Some(match i {
            0 => Self::Unspecified,
            1 => Self::P0,
            2 => Self::P1,
            3 => Self::P2,
            4 => Self::P3,
            5 => Self::P4,
            _ => return None,
        })
    }

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        PRIORITY_NAMES[self.index()]
    }

    /// Parses `P0`..`P4` (the only values a caller may set).
    pub fn parse_set(s: &str) -> Option<Self> {
        match PRIORITY_NAMES
            .iter()
            .position(|n| n.eq_ignore_ascii_case(s))
        {
            Some(0) | None => None,
            Some(i) => Self::from_index(i),
        }
    }
}

/// `google.cloud.support.v2.Case.State`, in proto enum order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseState {
    Unspecified,
    New,
    InProgressGoogleSupport,
    ActionRequired,
    SolutionProvided,
    Closed,
}

pub const STATE_NAMES: &[&str] = &[
    "STATE_UNSPECIFIED",
    "NEW",
    "IN_PROGRESS_GOOGLE_SUPPORT",
    "ACTION_REQUIRED",
    "SOLUTION_PROVIDED",
    "CLOSED",
];

impl CaseState {
    pub fn from_index(i: usize) -> Option<Self> {
        Some(match i {
            0 => Self::Unspecified,
            1 => Self::New,
            2 => Self::InProgressGoogleSupport,
            3 => Self::ActionRequired,
            4 => Self::SolutionProvided,
            5 => Self::Closed,
            _ => return None,
        })
    }

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        STATE_NAMES[self.index()]
    }

    pub fn parse(s: &str) -> Option<Self> {
        STATE_NAMES
            .iter()
            .position(|n| n.eq_ignore_ascii_case(s))
            .and_then(Self::from_index)
    }

    pub fn is_closed(self) -> bool {
        self == Self::Closed
    }
}

/// `google.cloud.support.v2.Actor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub display_name: String,
    pub email: Option<String>,
    pub google_support: bool,
}

impl Actor {
    pub fn customer(display_name: &str, email: &str) -> Self {
        Self {
            display_name: display_name.to_string(),
            email: Some(email.to_string()),
            google_support: false,
        }
    }

    pub fn google(display_name: &str, email: Option<&str>) -> Self {
        Self {
            display_name: display_name.to_string(),
            email: email.filter(|e| !e.is_empty()).map(str::to_string),
            google_support: true,
        }
    }

    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        if !self.display_name.is_empty() {
            m.insert("displayName".into(), json!(self.display_name));
        }
        if let Some(email) = &self.email {
            m.insert("email".into(), json!(email));
            // Google sets `username` only for customer identities (not for agents).
            if !self.google_support {
                m.insert("username".into(), json!(email));
            }
        }
        if self.google_support {
            m.insert("googleSupport".into(), json!(true));
        }
        Value::Object(m)
    }
}

/// The part of a case that changes over time; kept per version so that a lagging
/// search index can be modelled (see `store`).
#[derive(Debug, Clone)]
pub struct CaseVersion {
    pub display_name: String,
    pub description: String,
    pub priority: Priority,
    pub state: CaseState,
    pub subscriber_email_addresses: Vec<String>,
    pub escalated: bool,
    pub update_time: DateTime<Utc>,
    /// How many comments existed at this version (comments are append-only).
    pub comment_count: usize,
}

#[derive(Debug, Clone)]
pub struct CommentRecord {
    pub id: u64,
    pub body: String,
    pub create_time: DateTime<Utc>,
    pub creator: Actor,
}

#[derive(Debug, Clone)]
pub struct AttachmentRecord {
    /// Creation sequence number; the tie-breaker when ordering by create time.
    pub seq: u64,
    pub id: String,
    pub filename: String,
    pub mime_type: String,
    pub data: Bytes,
    pub create_time: DateTime<Utc>,
    pub creator: Actor,
}

#[derive(Debug, Clone)]
pub struct CaseRecord {
    pub number: u64,
    /// `projects/{p}` or `organizations/{o}`; the canonical name is `{parent}/cases/{number}`.
    pub parent: String,
    pub classification_id: String,
    pub time_zone: Option<String>,
    pub test_case: bool,
    pub language_code: String,
    pub contact_email: Option<String>,
    pub create_time: DateTime<Utc>,
    pub creator: Actor,
    pub current: CaseVersion,
    /// Every version ever written, oldest first (the last equals `current`).
    pub history: Vec<CaseVersion>,
    pub comments: Vec<CommentRecord>,
    pub attachments: Vec<AttachmentRecord>,
}

impl CaseRecord {
    pub fn name(&self) -> String {
        format!("{}/cases/{}", self.parent, self.number)
    }

    /// Renders the case as of `version` (normally `current`).
    pub fn to_json(&self, version: &CaseVersion, enc: EnumEncoding) -> Value {
        let mut m = Map::new();
        m.insert("name".into(), json!(self.name()));
        m.insert("displayName".into(), json!(version.display_name));
        if !version.description.is_empty() {
            m.insert("description".into(), json!(version.description));
        }
        m.insert(
            "classification".into(),
            classification_json(&self.classification_id),
        );
        if let Some(tz) = &self.time_zone {
            m.insert("timeZone".into(), json!(tz));
        }
        if !version.subscriber_email_addresses.is_empty() {
            m.insert(
                "subscriberEmailAddresses".into(),
                json!(version.subscriber_email_addresses),
            );
        }
        insert_enum(&mut m, "state", version.state.index(), STATE_NAMES, enc);
        m.insert("createTime".into(), json!(timestamp(self.create_time)));
        m.insert("updateTime".into(), json!(timestamp(version.update_time)));
        m.insert("creator".into(), self.creator.to_json());
        if let Some(c) = &self.contact_email {
            m.insert("contactEmail".into(), json!(c));
        }
        if version.escalated {
            m.insert("escalated".into(), json!(true));
        }
        if self.test_case {
            m.insert("testCase".into(), json!(true));
        }
        m.insert("languageCode".into(), json!(self.language_code));
        insert_enum(
            &mut m,
            "priority",
            version.priority.index(),
            PRIORITY_NAMES,
            enc,
        );
        Value::Object(m)
    }

    pub fn comment_json(&self, c: &CommentRecord) -> Value {
        json!({
            "name": format!("{}/comments/{}", self.name(), c.id),
            "createTime": timestamp(c.create_time),
            "creator": c.creator.to_json(),
            "body": c.body,
            "plainTextBody": c.body,
        })
    }

    pub fn attachment_json(&self, a: &AttachmentRecord) -> Value {
        json!({
            "name": format!("{}/attachments/{}", self.name(), a.id),
            "createTime": timestamp(a.create_time),
            "creator": a.creator.to_json(),
            "filename": a.filename,
            "mimeType": a.mime_type,
            "sizeBytes": a.data.len().to_string(),
        })
    }
}

fn insert_enum(
    m: &mut Map<String, Value>,
    key: &str,
    idx: usize,
    names: &[&str],
    enc: EnumEncoding,
) {
    // proto3 JSON omits default (zero) enum values.
    if idx == 0 {
        return;
    }
    let v = match enc {
        EnumEncoding::Names => json!(names[idx]),
        EnumEncoding::Ints => json!(idx),
    };
    m.insert(key.into(), v);
}

/// RFC 3339 with `Z` and 0, 3, 6 or 9 fractional digits (as few as exact), the
/// proto3 JSON form of `google.protobuf.Timestamp`.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// The fixed catalogue answered by `caseClassifications.search`. The first entry is the
/// id used in Google's own documentation examples and the default for control-API cases.
pub const CLASSIFICATIONS: &[(&str, &str)] = &[
    (
        "100IK2AKCLHMGRJ9CDGMOCGP8DM6UTB4BT262T31BT1M2T31DHNMENPO6KS36CPJ786L2TBFEHGN6NPI64R3CDHN8880G08I1H3MURR7DHII0GRCDTQM8",
        "Compute > Compute Engine > Instance",
    ),
    (
        "100D30ACEL7DB405J3RRLLI4SB02FS8FB4TJIJVNUGCG8JS4L7G76UIR08531Q36MLJ33EOIJJFMGA63BSN47JIHHGP9CUVNCBP",
        "Compute > Compute Engine > Persistent Disk",
    ),
    (
        "100CIOB2GC93P3CS25E4LF8U3RBO7MQ1GVRS9L64IDDPSUPLBTEO0IK8A62N8FN7VHL63IFL0K7NUG0JDA1UJUMB22JUG5QOI2Q",
        "Compute > Google Kubernetes Engine > Cluster",
    ),
    (
        "100MJREBTCJ7RDJU8EJM2QSSRPI6P6A8U5MA6JAQNJ1LRM3OE56ISDNJ5UCD9G3KDJDO4GAS3BVDFNO21L7B0HFHB6EO539P3LL",
        "Compute > Cloud Run > Service",
    ),
    (
        "1000T9C4K6PDSH8R9PMPD9VB9TT2GM4U4GPR2CUFQKNBM809BUCPLVCIVU3S4H38LSIN04A21N1G4HHQPTFPT49F89B3TN0BF6P",
        "Storage > Cloud Storage > Bucket",
    ),
    (
        "1006P71N6ACANH1L5RS9HT9Q4U8DRHB2MUFTB1NJCUGO7UJ1FKPEVUOTPOCKVAUIUOLRRTAHG0H6LRDBL3KRQCJDCB3DB4AP889",
        "Databases > Cloud SQL > MySQL",
    ),
    (
        "100U022UN9AQJ003INSFG27406UP126AK3P5CV6PNNI4AN89NICFID22JR76OLLU8897TC2TIHATKLLM18N10KFG8ENJQRUVOTI",
        "Databases > Firestore > Native mode",
    ),
    (
        "10086DL27IS0TDLTBTVNFD55FB1VUMOOHMOMFF5628QQR3PU9T4SGO7CIR2LS3DDI1EADFCG1EJ83RLVA4I7INA90AN7A0J32LD",
        "Networking > Cloud Load Balancing > External Application Load Balancer",
    ),
    (
        "10094BD3ASRAGISCBQQHCUKOD60P48V7B0AHBQFFA7RSKE44SLFE0SO5S2GK8NMCPBSN0U8PS5N38D3DEJ8JBA44EHL000EUVQ6",
        "Networking > Cloud VPN > HA VPN",
    ),
    (
        "100UI1QRGOUB7RKK5BCOD32DRFGJ7BGA6U2F203QM2JI82MIMFRCP7LQ267TU20PDCQ2B2CH29SA23263LQIJA38VKK07TME8DB",
        "Data Analytics > BigQuery > Query",
    ),
    (
        "100H65IDAIAQ5KSCJQI8RUDSVCPQTNI5PLLC2C0PBD88B72Q9L044652EH5MFJ0L72S39QM840P6NC96RIBGC7QBFVM5PDTE9QJ",
        "Data Analytics > Pub/Sub > Push subscription",
    ),
    (
        "100NJRO9708NDOGEP8BFEK0JBCCPKJK3K0T21B921F75LROT3GOIHM67ADU4T50M92K2I72NPB9N56HDMBCJTASEM392MCJ9C3U",
        "Identity & Security > IAM > Service accounts",
    ),
    (
        "1007IVGQ9RPSSGE4IT9ODQMOG04SBTDFARAU2CGDTQ76SDIS9GHMTBCHRLGI2AG1OLD1U8JG90SSTFS40D1BJK9R7412OQALRF3",
        "Management Tools > Cloud Support API > API usage",
    ),
    (
        "100IPHS83DB4RBGC953SJIV34QEPKVAI43IKTA1U6U3RBGHHG81P54KUERAKLRNM2NSJJ6QA5LRA755TAT3HAN3UBGFRF63I5IP",
        "Billing > Invoices and payments",
    ),
];

/// The id used when a control-API case names no classification.
pub fn default_classification_id() -> &'static str {
    CLASSIFICATIONS[0].0
}

pub fn classification_display_name(id: &str) -> Option<&'static str> {
    CLASSIFICATIONS
        .iter()
        .find(|(cid, _)| *cid == id)
        .map(|(_, name)| *name)
}

pub fn classification_json(id: &str) -> Value {
    match classification_display_name(id) {
        Some(name) => json!({"id": id, "displayName": name}),
        None => json!({ "id": id }),
    }
}

/// A MIME type from a file name, for uploads that do not state one.
pub fn guess_mime(filename: &str) -> &'static str {
    let ext = filename
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "txt" | "log" => "text/plain",
        "csv" => "text/csv",
        "html" | "htm" => "text/html",
        "json" => "application/json",
        "xml" => "application/xml",
        "pdf" => "application/pdf",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priority_names_and_numbers_follow_the_proto() {
        assert_eq!(Priority::P0.index(), 1);
        assert_eq!(Priority::P4.index(), 5);
        assert_eq!(Priority::parse_set("p2"), Some(Priority::P2));
        assert_eq!(Priority::parse_set("PRIORITY_UNSPECIFIED"), None);
        assert_eq!(CaseState::Closed.index(), 5);
        assert_eq!(
            CaseState::parse("in_progress_google_support"),
            Some(CaseState::InProgressGoogleSupport)
        );
    }

    #[test]
    fn timestamps_are_z_normalised_with_minimal_fraction_digits() {
        let t = DateTime::parse_from_rfc3339("2026-01-02T03:04:05.123456789-07:00")
            .map(|t| t.with_timezone(&Utc));
        assert_eq!(
            t.map(timestamp).ok().as_deref(),
            Some("2026-01-02T10:04:05.123456789Z")
        );
        let whole = DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default();
        assert_eq!(timestamp(whole), "2026-01-01T00:00:00Z");
        let millis = DateTime::from_timestamp(1_767_225_600, 5_000_000).unwrap_or_default();
        assert_eq!(timestamp(millis), "2026-01-01T00:00:00.005Z");
    }

    #[test]
    fn google_actors_have_no_username() {
        let v = Actor::google("Agent", Some("agent@google.com")).to_json();
        assert_eq!(v["googleSupport"], true);
        assert!(v.get("username").is_none());
        let c = Actor::customer("C", "c@example.com").to_json();
        assert!(c.get("googleSupport").is_none());
        assert_eq!(c["username"], "c@example.com");
    }

    #[test]
    fn classification_ids_are_unique() {
        let mut ids: Vec<_> = CLASSIFICATIONS.iter().map(|c| c.0).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), CLASSIFICATIONS.len());
    }
}
