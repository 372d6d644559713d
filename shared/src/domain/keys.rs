//! How a case is named inside casesync (docs/ARCHITECTURE.md#case-keys): a Google case by its case number, because
//! the same case is reachable under `projects/{id}`, `projects/{number}` and
//! `organizations/{id}` names; a CRM case by its CRM id.

use crate::error::PortError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A Google case number: the last segment of a case's resource name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GoogleCaseKey(String);

impl GoogleCaseKey {
    /// From a case name such as `projects/p/cases/123` or a bare number.
    pub fn from_case_name(name: &str) -> Result<Self, PortError> {
        let number = name.rsplit('/').next().unwrap_or_default();
        let shaped = name == number || name.split('/').rev().nth(1) == Some("cases");
        if number.is_empty() || !shaped || !number.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(PortError::Invalid(format!(
                "`{}` is not a Google case name (…/cases/{{number}}) or case number",
                crate::echo::capped(name)
            )));
        }
        Ok(GoogleCaseKey(number.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for GoogleCaseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A CRM case id (a string: not every CRM uses integers).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CompanyCaseKey(String);

impl CompanyCaseKey {
    pub fn new(id: &str) -> Result<Self, PortError> {
        let id = id.trim();
        if id.is_empty() || id.len() > 200 || id.chars().any(|c| c.is_control()) {
            return Err(PortError::Invalid(format!(
                "`{}` is not a CRM case id",
                crate::echo::capped(id)
            )));
        }
        Ok(CompanyCaseKey(id.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CompanyCaseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One of the two systems casesync keeps in step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Google,
    Company,
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::Google => Side::Company,
            Side::Company => Side::Google,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Side::Google => "google",
            Side::Company => "company",
        }
    }
}

/// Which way a sync message asks to copy: the topic a message arrives on decides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    GoogleToCompany,
    CompanyToGoogle,
}

impl Direction {
    pub fn source(self) -> Side {
        match self {
            Direction::GoogleToCompany => Side::Google,
            Direction::CompanyToGoogle => Side::Company,
        }
    }

    pub fn from_source(side: Side) -> Direction {
        match side {
            Side::Google => Direction::GoogleToCompany,
            Side::Company => Direction::CompanyToGoogle,
        }
    }

    pub fn topic(self) -> &'static str {
        match self {
            Direction::GoogleToCompany => crate::retry_policy::GOOGLE_UPDATES_TOPIC,
            Direction::CompanyToGoogle => crate::retry_policy::COMPANY_UPDATES_TOPIC,
        }
    }

    pub fn from_topic(topic: &str) -> Option<Direction> {
        let id = topic.rsplit('/').next().unwrap_or(topic);
        [Direction::GoogleToCompany, Direction::CompanyToGoogle]
            .into_iter()
            .find(|d| d.topic() == id)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Direction::GoogleToCompany => "google_to_company",
            Direction::CompanyToGoogle => "company_to_google",
        }
    }
}

/// The body of a sync message (docs/ARCHITECTURE.md#sync-messages): `{"v":1,"key":"<case key>"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncMessage {
    pub v: u32,
    pub key: String,
}

impl SyncMessage {
    pub fn new(key: &str) -> Self {
        SyncMessage {
            v: 1,
            key: key.to_string(),
        }
    }

    pub fn to_json(&self) -> String {
        format!(
            "{{\"v\":{},\"key\":{}}}",
            self.v,
            serde_json::Value::String(self.key.clone())
        )
    }

    /// Decodes and checks a message body; the error says what is wrong with it.
    pub fn decode(body: &[u8]) -> Result<Self, PortError> {
        let message: SyncMessage = serde_json::from_slice(body).map_err(|e| {
            PortError::Invalid(format!("sync message is not {{\"v\":1,\"key\":…}}: {e}"))
        })?;
        if message.v != 1 {
            return Err(PortError::Invalid(format!(
                "sync message version {} is not supported (expected 1)",
                message.v
            )));
        }
        if message.key.trim().is_empty() {
            return Err(PortError::Invalid("sync message has an empty key".into()));
        }
        Ok(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_google_key_is_the_case_number_under_any_parent() {
        let a = GoogleCaseKey::from_case_name("projects/demo/cases/10000001").unwrap();
        let b = GoogleCaseKey::from_case_name("organizations/123/cases/10000001").unwrap();
        let c = GoogleCaseKey::from_case_name("10000001").unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert!(GoogleCaseKey::from_case_name("projects/demo/comments/1").is_err());
        assert!(GoogleCaseKey::from_case_name("").is_err());
    }

    #[test]
    fn sync_messages_round_trip_and_bad_ones_are_named() {
        let m = SyncMessage::new("10000001");
        assert_eq!(m.to_json(), r#"{"v":1,"key":"10000001"}"#);
        assert_eq!(SyncMessage::decode(m.to_json().as_bytes()).unwrap(), m);
        let err = SyncMessage::decode(br#"{"v":2,"key":"1"}"#).unwrap_err();
        assert!(err.to_string().contains("version 2"));
        assert!(SyncMessage::decode(b"not json").is_err());
        assert!(SyncMessage::decode(br#"{"v":1,"key":" "}"#).is_err());
        assert!(SyncMessage::decode(br#"{"v":1,"key":"1","x":1}"#).is_err());
    }

    #[test]
    fn topics_give_the_direction() {
        assert_eq!(
            Direction::from_topic("projects/p/topics/casesync-google-case-updates"),
            Some(Direction::GoogleToCompany)
        );
        assert_eq!(
            Direction::from_topic("casesync-company-case-updates"),
            Some(Direction::CompanyToGoogle)
        );
        assert_eq!(Direction::from_topic("other"), None);
    }
}
