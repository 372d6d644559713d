//! The replay loop, apart from the command line so it can be tested against the emulator.

use shared::adapters::pubsub::{
    CASE_KEY_ATTRIBUTE, ERROR_ATTRIBUTE, ERROR_CLASS_ATTRIBUTE,
    PUBSUB_DEAD_LETTER_ATTRIBUTE_PREFIX, PubSubQueue, PubSubRest, PulledMessage,
    SOURCE_TOPIC_ATTRIBUTE,
};
use shared::deploy::{FUNCTIONS, Trigger};
use shared::domain::SyncMessage;
use shared::error::PortResult;
use std::collections::HashMap;
use tracing::info;

/// Empty pulls in a row, a second apart, after which a subscription counts as drained.
const EMPTY_PULLS_BEFORE_DONE: u32 = 3;

#[derive(Debug, Clone, Default)]
pub struct Options {
    pub target_topic: Option<String>,
    pub case_key: Option<String>,
    pub limit: Option<usize>,
    pub dry_run: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    pub replayed: usize,
    pub skipped: usize,
    pub unroutable: usize,
}

impl Totals {
    pub fn add(&mut self, other: &Totals) {
        self.replayed += other.replayed;
        self.skipped += other.skipped;
        self.unroutable += other.unroutable;
    }
}

/// The topic a dead letter came from: the shim's own attribute, or the function whose
/// push subscription Pub/Sub dead-lettered it from (subscriptions are named after their
/// function), or the operator's choice.
pub fn source_topic(
    attributes: &HashMap<String, String>,
    fallback: Option<&str>,
) -> Option<String> {
    if let Some(t) = attributes
        .get(SOURCE_TOPIC_ATTRIBUTE)
        .filter(|t| !t.is_empty())
    {
        return Some(t.clone());
    }
    let subscription = attributes.get(&format!(
        "{PUBSUB_DEAD_LETTER_ATTRIBUTE_PREFIX}Subscription"
    ));
    if let Some(sub) = subscription {
        let id = sub.rsplit('/').next().unwrap_or(sub);
        for f in FUNCTIONS {
            if let Trigger::Push { topic } = f.trigger
                && id == f.name
            {
                return Some(topic.to_string());
            }
        }
    }
    fallback.map(str::to_string)
}

/// The attributes a replayed message carries: the original ones, without the dead-letter
/// bookkeeping, so a second failure records fresh reasons.
pub fn replay_attributes(attributes: &HashMap<String, String>) -> HashMap<String, String> {
    attributes
        .iter()
        .filter(|(k, _)| {
            !k.starts_with(PUBSUB_DEAD_LETTER_ATTRIBUTE_PREFIX)
                && k.as_str() != ERROR_ATTRIBUTE
                && k.as_str() != ERROR_CLASS_ATTRIBUTE
                && k.as_str() != SOURCE_TOPIC_ATTRIBUTE
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn case_key_of(message: &PulledMessage) -> Option<String> {
    message
        .attributes
        .get(CASE_KEY_ATTRIBUTE)
        .cloned()
        .or_else(|| SyncMessage::decode(&message.data).ok().map(|m| m.key))
}

/// Drains one dead-letter subscription.
pub async fn drain(
    puller: &PubSubRest,
    publisher: &PubSubQueue,
    subscription: &str,
    options: &Options,
    mut progress: impl FnMut(&Totals),
) -> PortResult<Totals> {
    let mut totals = Totals::default();
    loop {
        if options.limit.is_some_and(|l| totals.replayed >= l) {
            break;
        }
        // An immediate pull may come back empty while messages wait; only a few empty
        // answers in a row end the drain. (A long-held pull is avoided: if it were dropped,
        // the messages it was handed would stay hidden until their ack deadline.)
        let mut batch = Vec::new();
        for attempt in 0..EMPTY_PULLS_BEFORE_DONE {
            batch = puller.pull(subscription, 50).await?;
            if !batch.is_empty() {
                break;
            }
            if attempt + 1 < EMPTY_PULLS_BEFORE_DONE {
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
        if batch.is_empty() {
            break;
        }
        for message in batch {
            if options.limit.is_some_and(|l| totals.replayed >= l) {
                break;
            }
            let key = case_key_of(&message);
            if options
                .case_key
                .as_ref()
                .is_some_and(|want| key.as_ref() != Some(want))
            {
                // Not acked: it stays in the dead-letter subscription.
                totals.skipped += 1;
                progress(&totals);
                continue;
            }
            let Some(topic) = source_topic(&message.attributes, options.target_topic.as_deref())
            else {
                totals.unroutable += 1;
                progress(&totals);
                continue;
            };
            if !options.dry_run {
                publisher
                    .publish_raw(
                        &topic,
                        message.data.clone(),
                        replay_attributes(&message.attributes),
                    )
                    .await?;
                // Only now: a crash before this line republishes it again, never loses it.
                puller
                    .acknowledge(subscription, std::slice::from_ref(&message.ack_id))
                    .await?;
            }
            info!(case_key = key.as_deref().unwrap_or(""), topic = %topic, dry_run = options.dry_run, "replayed a dead letter");
            totals.replayed += 1;
            progress(&totals);
        }
        if options.dry_run {
            // Nothing was acked: pulling again would only show the same messages.
            break;
        }
    }
    Ok(totals)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_source_topic_comes_from_the_shim_or_from_the_dead_lettering_subscription() {
        let mut a = HashMap::new();
        assert_eq!(source_topic(&a, None), None);
        assert_eq!(source_topic(&a, Some("fallback")), Some("fallback".into()));
        a.insert(
            format!("{PUBSUB_DEAD_LETTER_ATTRIBUTE_PREFIX}Subscription"),
            "projects/p/subscriptions/sync-company-to-google".into(),
        );
        assert_eq!(
            source_topic(&a, Some("fallback")),
            Some("casesync-company-case-updates".into())
        );
        a.insert(
            SOURCE_TOPIC_ATTRIBUTE.into(),
            "casesync-google-case-updates".into(),
        );
        assert_eq!(
            source_topic(&a, None),
            Some("casesync-google-case-updates".into())
        );
    }

    #[test]
    fn replayed_messages_drop_the_dead_letter_bookkeeping_but_keep_the_case_key() {
        let mut a = HashMap::new();
        a.insert(CASE_KEY_ATTRIBUTE.to_string(), "42".to_string());
        a.insert(ERROR_ATTRIBUTE.to_string(), "boom".to_string());
        a.insert(
            format!("{PUBSUB_DEAD_LETTER_ATTRIBUTE_PREFIX}DeliveryCount"),
            "5".into(),
        );
        let r = replay_attributes(&a);
        assert_eq!(r.len(), 1);
        assert_eq!(r.get(CASE_KEY_ATTRIBUTE).map(String::as_str), Some("42"));
    }
}
