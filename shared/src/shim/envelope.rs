//! The Pub/Sub push envelope: `{"message":{"data": base64, "attributes": {…},
//! "messageId": …, "publishTime": …}, "subscription": …, "deliveryAttempt": n}`.
//! `deliveryAttempt` is present only with a dead-letter policy, and the emulator omits it.

use base64::Engine as _;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushMessage {
    pub message_id: String,
    pub data: Vec<u8>,
    pub attributes: BTreeMap<String, String>,
    pub subscription: String,
    pub delivery_attempt: Option<u32>,
}

impl PushMessage {
    /// A body that is not a push envelope at all, kept whole so it can be dead-lettered.
    pub fn undecodable(body: &[u8]) -> PushMessage {
        PushMessage {
            message_id: String::new(),
            data: body.to_vec(),
            attributes: BTreeMap::new(),
            subscription: String::new(),
            delivery_attempt: None,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    message: Option<WireMessage>,
    #[serde(default)]
    subscription: String,
    delivery_attempt: Option<u32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireMessage {
    #[serde(default)]
    data: String,
    #[serde(default)]
    attributes: BTreeMap<String, String>,
    // Pub/Sub sends both spellings (`messageId` and `message_id`), so they are two fields,
    // not an alias: an alias would make the pair a "duplicate field".
    #[serde(default)]
    message_id: String,
    #[serde(default, rename = "message_id")]
    message_id_snake: String,
}

/// Decodes an envelope; the error says what is wrong with it.
pub fn decode_push(body: &[u8]) -> Result<PushMessage, String> {
    let envelope: Envelope = serde_json::from_slice(body)
        .map_err(|e| format!("push body is not a Pub/Sub push envelope: {e}"))?;
    let message = envelope.message.ok_or("push envelope has no `message`")?;
    let data = base64::engine::general_purpose::STANDARD
        .decode(message.data.as_bytes())
        .map_err(|e| format!("push message data is not base64: {e}"))?;
    Ok(PushMessage {
        message_id: if message.message_id.is_empty() {
            message.message_id_snake
        } else {
            message.message_id
        },
        data,
        attributes: message.attributes,
        subscription: envelope.subscription,
        delivery_attempt: envelope.delivery_attempt,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_real_push_body_with_both_spellings_decodes() {
        // As the Pub/Sub emulator and the service send it.
        let body = br#"{"message":{"attributes":{"case_key":"42"},"data":"eyJ2IjoxLCJrZXkiOiI0MiJ9","messageId":"7","message_id":"7","publishTime":"2026-11-29T21:17:53.000Z","publish_time":"2026-11-29T21:17:53.000Z"},"subscription":"projects/p/subscriptions/s","deliveryAttempt":2}"#;
        let m = decode_push(body).unwrap();
        assert_eq!(m.message_id, "7");
        assert_eq!(m.data, br#"{"v":1,"key":"42"}"#);
        assert_eq!(m.attributes.get("case_key").map(String::as_str), Some("42"));
        assert_eq!(m.delivery_attempt, Some(2));
    }
}
