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
    #[serde(default, alias = "message_id")]
    message_id: String,
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
        message_id: message.message_id,
        data,
        attributes: message.attributes,
        subscription: envelope.subscription,
        delivery_attempt: envelope.delivery_attempt,
    })
}
