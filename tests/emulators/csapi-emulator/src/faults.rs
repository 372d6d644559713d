//! Injected faults: failures, lost replies, latency and search lag.
//!
//! casesync's correctness claims (exactly-once mirroring under retries, convergence
//! after an outage, tolerance of a lagging search index) can only be tested if the
//! fake Google misbehaves on demand, deterministically and per method.

use std::time::Duration;

use serde::Serialize;

/// Method ids as in the discovery document (without the `cloudsupport.` prefix).
pub const METHOD_IDS: &[&str] = &[
    "cases.get",
    "cases.list",
    "cases.search",
    "cases.create",
    "cases.patch",
    "cases.close",
    "cases.escalate",
    "cases.comments.list",
    "cases.comments.create",
    "cases.comments.get",
    "cases.attachments.list",
    "cases.attachments.get",
    "media.upload",
    "media.download",
    "caseClassifications.search",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum FaultKind {
    /// Answer with this HTTP status without doing anything.
    Fail { status: u16 },
    /// Do the work, then answer 503 as if the reply had been lost.
    LostReply,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultRule {
    pub method: String,
    pub kind: FaultKind,
    pub remaining: u32,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Faults {
    pub rules: Vec<FaultRule>,
    #[serde(serialize_with = "as_millis")]
    pub latency: Duration,
    #[serde(serialize_with = "as_millis")]
    pub search_lag: Duration,
}

fn as_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u128(d.as_millis())
}

impl Faults {
    pub fn add(&mut self, method: &str, kind: FaultKind, count: u32) {
        if count == 0 {
            return;
        }
        self.rules.push(FaultRule {
            method: method.to_string(),
            kind,
            remaining: count,
        });
    }

    /// Consumes one occurrence of the first rule for `method`, in the order added.
    pub fn take(&mut self, method: &str) -> Option<FaultKind> {
        let idx = self
            .rules
            .iter()
            .position(|r| r.method == method && r.remaining > 0)?;
        let rule = &mut self.rules[idx];
        rule.remaining -= 1;
        let kind = rule.kind;
        if rule.remaining == 0 {
            self.rules.remove(idx);
        }
        Some(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_consumed_in_order() {
        let mut f = Faults::default();
        f.add("cases.get", FaultKind::Fail { status: 503 }, 2);
        f.add("cases.get", FaultKind::LostReply, 1);
        assert_eq!(f.take("cases.search"), None);
        assert_eq!(f.take("cases.get"), Some(FaultKind::Fail { status: 503 }));
        assert_eq!(f.take("cases.get"), Some(FaultKind::Fail { status: 503 }));
        assert_eq!(f.take("cases.get"), Some(FaultKind::LostReply));
        assert_eq!(f.take("cases.get"), None);
        assert!(f.rules.is_empty());
    }
}
