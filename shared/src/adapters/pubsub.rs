//! Pub/Sub, as casesync uses it in production (docs/ARCHITECTURE.md#production-topology): the polls publish one
//! sync message per case ([`PubSubQueue`], the `SyncQueue` port), the HTTP shim
//! dead-letters a message it cannot process itself ([`PubSubQueue::publish_raw`] with
//! [`dead_letter_attributes`]), and the replay tool pulls dead letters and acks each only
//! after it was republished ([`PubSubRest::pull`] or [`PubSubRest::pull_waiting`], then
//! [`PubSubRest::acknowledge`]). The admin calls ([`PubSubRest::create_topic`],
//! [`PubSubRest::create_push_subscription`], …) let tests and the end-to-end stack build
//! the same topology Terraform builds, from the same numbers (`retry_policy`).
//!
//! Publishing goes through `google-cloud-pubsub` (gRPC). Its subscriber only streams, with
//! no pull-by-count and ack-by-id, so pull, ack and the admin calls use the REST API with a
//! token from `google-cloud-auth`. Neither reads `PUBSUB_EMULATOR_HOST`: an emulator is
//! named in [`PubSubConfig::emulator_host`], and then both talk to it with anonymous
//! credentials (the emulator serves gRPC and REST on one port).

use crate::adapters::google_errors;
use crate::domain::{Direction, SyncMessage};
use crate::error::{ErrorClass, PortError, PortResult};
use crate::ports::{DeadLetterMessage, DeadLetterQueue, SyncQueue};
use crate::retry_policy::QueuePolicy;
use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use google_cloud_auth::credentials::{CacheableResource, Credentials};
use google_cloud_gax::error::rpc::Code;
use google_cloud_gax::retry_policy::RetryPolicyExt as _;
use google_cloud_pubsub::client::{BasePublisher, Publisher};
use google_cloud_pubsub::error::PublishError;
use google_cloud_pubsub::model::Message;
use google_cloud_pubsub::retry_policy::RetryableErrors;
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// The attribute every sync message carries (docs/ARCHITECTURE.md#sync-messages).
pub const CASE_KEY_ATTRIBUTE: &str = "case_key";
/// Attributes of a message the shim dead-lettered itself (docs/ARCHITECTURE.md#sync-messages).
pub const ERROR_CLASS_ATTRIBUTE: &str = "casesync_error_class";
pub const ERROR_ATTRIBUTE: &str = "casesync_error";
pub const SOURCE_TOPIC_ATTRIBUTE: &str = "casesync_source_topic";
/// The prefix of the attributes Pub/Sub's own dead-lettering adds.
pub const PUBSUB_DEAD_LETTER_ATTRIBUTE_PREFIX: &str = "CloudPubSubDeadLetterSource";

const PRODUCTION_ENDPOINT: &str = "https://pubsub.googleapis.com";

/// Pub/Sub caps an attribute value at 1024 bytes.
const MAX_ATTRIBUTE_BYTES: usize = 1024;

/// How long one publish may keep retrying transient errors. The crate's default (600 s)
/// outlasts a poll's attempt deadline; failing sooner lets the caller's own retry act.
const PUBLISH_RETRY_LIMIT: Duration = Duration::from_secs(30);

/// The longest one REST call may take.
const REST_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the topics live.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PubSubConfig {
    /// The project of casesync's topics and subscriptions.
    pub project_id: String,
    /// `host:port` (or a URL) of a Pub/Sub emulator; unset for production, which uses
    /// Application Default Credentials.
    #[serde(default)]
    pub emulator_host: Option<String>,
}

impl PubSubConfig {
    pub fn new(project_id: &str) -> Self {
        PubSubConfig {
            project_id: project_id.to_string(),
            emulator_host: None,
        }
    }

    pub fn with_emulator_host(mut self, host: &str) -> Self {
        self.emulator_host = Some(host.to_string());
        self
    }

    fn validate(&self) -> PortResult<()> {
        let p = &self.project_id;
        // Domain-scoped projects (`example.com:project`) are legal too.
        if p.is_empty()
            || !p
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-.:".contains(c))
        {
            return Err(PortError::Config(format!(
                "pubsub.project_id: `{p}` is not a project id"
            )));
        }
        if self
            .emulator_host
            .as_deref()
            .is_some_and(|h| h.trim().is_empty())
        {
            return Err(PortError::Config(
                "pubsub.emulator_host: empty (leave it unset for production)".into(),
            ));
        }
        Ok(())
    }

    fn endpoint(&self) -> String {
        match &self.emulator_host {
            Some(h) if h.contains("://") => h.trim_end_matches('/').to_string(),
            Some(h) => format!("http://{h}"),
            None => PRODUCTION_ENDPOINT.to_string(),
        }
    }

    fn credentials(&self) -> PortResult<Credentials> {
        if self.emulator_host.is_some() {
            return Ok(google_cloud_auth::credentials::anonymous::Builder::new().build());
        }
        google_cloud_auth::credentials::Builder::default()
            .build()
            .map_err(|e| {
                PortError::Config(format!(
                    "pubsub: no Google credentials (Application Default Credentials): {e}"
                ))
            })
    }

    /// `projects/{project}/topics/{topic}`; a full topic name is kept as is.
    pub fn topic_name(&self, topic: &str) -> String {
        full_name(&self.project_id, "topics", topic)
    }

    /// `projects/{project}/subscriptions/{subscription}`; a full name is kept as is.
    pub fn subscription_name(&self, subscription: &str) -> String {
        full_name(&self.project_id, "subscriptions", subscription)
    }
}

fn full_name(project: &str, kind: &str, id: &str) -> String {
    if id.starts_with("projects/") {
        id.to_string()
    } else {
        format!("projects/{project}/{kind}/{id}")
    }
}

/// The attributes of a message the shim dead-letters itself: the original ones (so
/// `case_key` survives) plus the reason and where it came from, so replay can send it back.
pub fn dead_letter_attributes(
    original: &HashMap<String, String>,
    class: ErrorClass,
    error: &str,
    source_topic: &str,
) -> HashMap<String, String> {
    // Pub/Sub refuses attribute values over its limit, and a refused dead-letter publish
    // would leave the message unanswered: an oversized original value is cut too.
    let mut attributes: HashMap<String, String> = original
        .iter()
        .map(|(k, v)| (k.clone(), truncate_bytes(v, MAX_ATTRIBUTE_BYTES)))
        .collect();
    attributes.insert(ERROR_CLASS_ATTRIBUTE.into(), class.as_str().into());
    attributes.insert(
        ERROR_ATTRIBUTE.into(),
        truncate_bytes(error, MAX_ATTRIBUTE_BYTES),
    );
    attributes.insert(SOURCE_TOPIC_ATTRIBUTE.into(), source_topic.into());
    attributes
}

fn truncate_bytes(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let marker = "…";
    let mut end = max - marker.len();
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{marker}", &s[..end])
}

// ---------------------------------------------------------------------------------------
// Publishing

/// The `SyncQueue` on Pub/Sub: a sync message goes to its direction's topic under the
/// configured project, with its case key as attribute.
pub struct PubSubQueue {
    config: PubSubConfig,
    base: BasePublisher,
    /// One publisher per topic: each runs a background batching task, so they are built
    /// once and reused.
    publishers: Mutex<HashMap<String, Publisher>>,
}

impl std::fmt::Debug for PubSubQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PubSubQueue")
            .field("project_id", &self.config.project_id)
            .field("endpoint", &self.config.endpoint())
            .finish()
    }
}

impl PubSubQueue {
    /// Builds the gRPC client. Must run inside a Tokio runtime.
    pub async fn connect(config: &PubSubConfig) -> PortResult<Self> {
        config.validate()?;
        let base = BasePublisher::builder()
            .with_endpoint(config.endpoint())
            .with_credentials(config.credentials()?)
            .with_retry_policy(RetryableErrors.with_time_limit(PUBLISH_RETRY_LIMIT))
            .build()
            .await
            .map_err(|e| PortError::Config(format!("pubsub: cannot build the publisher: {e}")))?;
        Ok(PubSubQueue {
            config: config.clone(),
            base,
            publishers: Mutex::new(HashMap::new()),
        })
    }

    pub fn config(&self) -> &PubSubConfig {
        &self.config
    }

    fn publisher(&self, topic_name: &str) -> Publisher {
        let mut publishers = self.publishers.lock().unwrap_or_else(|e| e.into_inner());
        publishers
            .entry(topic_name.to_string())
            .or_insert_with(|| {
                // Each publish is awaited by its caller; waiting for a batch to fill would
                // only add latency.
                self.base
                    .publisher(topic_name.to_string())
                    .set_message_count_threshold(1)
                    .build()
            })
            .clone()
    }

    /// Publishes any message to `topic` (an id under the configured project, or a full
    /// name) and returns its message id. The shim dead-letters through this.
    pub async fn publish_raw(
        &self,
        topic: &str,
        data: impl Into<Bytes>,
        attributes: HashMap<String, String>,
    ) -> PortResult<String> {
        let topic_name = self.config.topic_name(topic);
        let message = Message::new()
            .set_data(data.into())
            .set_attributes(attributes);
        self.publisher(&topic_name)
            .publish(message)
            .await
            .map_err(|e| from_publish(&format!("publish to {topic_name}"), &e))
    }
}

#[async_trait]
impl SyncQueue for PubSubQueue {
    async fn publish(&self, direction: Direction, key: &str) -> PortResult<()> {
        let attributes = HashMap::from([(CASE_KEY_ATTRIBUTE.to_string(), key.to_string())]);
        self.publish_raw(
            direction.topic(),
            SyncMessage::new(key).to_json(),
            attributes,
        )
        .await
        .map(|_| ())
    }
}

fn from_publish(operation: &str, e: &PublishError) -> PortError {
    match e {
        PublishError::Rpc(inner) => from_gax(operation, inner),
        // The background task is gone or paused: a later attempt gets a fresh chance.
        other => PortError::retryable(operation, other.to_string()),
    }
}

/// A failure of a publish through the crate, classified by the shared Google mapping
/// ([`google_errors::class_of_gax`]) with one exception.
fn from_gax(operation: &str, e: &google_cloud_gax::error::Error) -> PortError {
    let http_status = e.http_status_code();
    let code = e.status().map(|s| s.code);
    // Exception: NOT_FOUND (or 404) is systemic, not `NotFound`: the only thing a publish
    // addresses is the topic, named by configuration, so a missing one is a deployment
    // problem, not a missing counterpart and not the message's fault.
    if google_errors::is_not_found(http_status, code) {
        return PortError::Failed {
            operation: operation.to_string(),
            class: ErrorClass::Systemic,
            status: http_status,
            message: e.to_string(),
            retry_after: None,
        };
    }
    PortError::Failed {
        operation: operation.to_string(),
        class: google_errors::class_of_gax(e),
        status: http_status,
        message: e.to_string(),
        retry_after: None,
    }
}

// ---------------------------------------------------------------------------------------
// REST: pull, ack and admin

/// One message pulled from a subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PulledMessage {
    /// What [`PubSubRest::acknowledge`] takes.
    pub ack_id: String,
    pub message_id: String,
    /// The decoded payload.
    pub data: Bytes,
    pub attributes: HashMap<String, String>,
    /// RFC 3339, as Pub/Sub sent it.
    pub publish_time: Option<String>,
    /// Set on subscriptions with a dead-letter policy.
    pub delivery_attempt: Option<u32>,
}

/// A push subscription, as casesync's sync functions get them (docs/ARCHITECTURE.md#exact-numbers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushSubscription {
    /// An id under the configured project, or a full name.
    pub name: String,
    pub topic: String,
    pub push_endpoint: String,
    pub ack_deadline: Duration,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    pub message_retention: Duration,
    /// Where a message goes after `max_delivery_attempts`; `None`: retried until retention
    /// runs out.
    pub dead_letter_topic: Option<String>,
    pub max_delivery_attempts: u32,
    /// The invoker account whose OIDC token Pub/Sub attaches; `None` sends no token (the
    /// emulator sends none anyway, docs/ARCHITECTURE.md#testing).
    pub oidc_service_account: Option<String>,
}

impl PushSubscription {
    /// The subscription `policy` describes: production's numbers or the tests' fast ones.
    pub fn from_policy(
        name: &str,
        topic: &str,
        push_endpoint: &str,
        dead_letter_topic: Option<&str>,
        policy: &QueuePolicy,
    ) -> Self {
        PushSubscription {
            name: name.to_string(),
            topic: topic.to_string(),
            push_endpoint: push_endpoint.to_string(),
            ack_deadline: policy.ack_deadline,
            min_backoff: policy.min_backoff,
            max_backoff: policy.max_backoff,
            message_retention: policy.message_retention,
            dead_letter_topic: dead_letter_topic.map(str::to_string),
            max_delivery_attempts: policy.max_delivery_attempts,
            oidc_service_account: None,
        }
    }
}

fn duration_json(d: Duration) -> String {
    format!("{}s", d.as_secs())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PullResponse {
    #[serde(default)]
    received_messages: Vec<ReceivedMessage>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReceivedMessage {
    ack_id: String,
    message: WireMessage,
    #[serde(default)]
    delivery_attempt: Option<u32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireMessage {
    #[serde(default)]
    data: Option<String>,
    #[serde(default)]
    attributes: HashMap<String, String>,
    #[serde(default)]
    message_id: String,
    #[serde(default)]
    publish_time: Option<String>,
}

/// Pub/Sub's REST API: pull and ack for the replay tool, topic and subscription admin for
/// tests and the end-to-end stack.
#[derive(Debug, Clone)]
pub struct PubSubRest {
    config: PubSubConfig,
    endpoint: String,
    http: reqwest::Client,
    credentials: Credentials,
}

impl PubSubRest {
    pub fn new(config: &PubSubConfig) -> PortResult<Self> {
        config.validate()?;
        let http = reqwest::Client::builder()
            .timeout(REST_TIMEOUT)
            .build()
            .map_err(|e| PortError::Config(format!("pubsub: cannot build an HTTP client: {e}")))?;
        Ok(PubSubRest {
            endpoint: config.endpoint(),
            config: config.clone(),
            http,
            credentials: config.credentials()?,
        })
    }

    pub fn config(&self) -> &PubSubConfig {
        &self.config
    }

    async fn call(
        &self,
        operation: &str,
        method: reqwest::Method,
        path: &str,
        body: serde_json::Value,
        accept_conflict: bool,
    ) -> PortResult<(u16, Bytes)> {
        let headers = match self.credentials.headers(Default::default()).await {
            Ok(CacheableResource::New { data, .. }) => data,
            // Only answered to a caller that sent an entity tag, which this one never does.
            Ok(CacheableResource::NotModified) => Default::default(),
            Err(e) => {
                return Err(PortError::Failed {
                    operation: operation.to_string(),
                    class: google_errors::class_of_credentials(&e),
                    status: None,
                    message: format!("no access token: {e}"),
                    retry_after: None,
                });
            }
        };
        let response = self
            .http
            .request(method, format!("{}/v1/{path}", self.endpoint))
            .headers(headers)
            .json(&body)
            .send()
            .await
            .map_err(|e| PortError::retryable(operation, e.to_string()))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let bytes = crate::adapters::body_cap::read_capped(
            response,
            crate::adapters::body_cap::MAX_JSON_REPLY,
        )
        .await
        .map_err(|e| PortError::retryable(operation, e.to_string()))?;
        if (200..300).contains(&status) || (accept_conflict && status == 409) {
            return Ok((status, bytes));
        }
        Err(from_rest(operation, status, &bytes, retry_after))
    }

    /// A create: `true` if it made the resource, `false` if it already existed.
    async fn create(
        &self,
        operation: &str,
        path: &str,
        body: serde_json::Value,
    ) -> PortResult<bool> {
        let (status, bytes) = self
            .call(operation, reqwest::Method::PUT, path, body, true)
            .await?;
        match status {
            409 if error_status(&bytes).as_deref() == Some("ALREADY_EXISTS") => Ok(false),
            409 => Err(from_rest(operation, 409, &bytes, None)),
            _ => Ok(true),
        }
    }

    pub async fn create_topic(&self, topic: &str) -> PortResult<bool> {
        let name = self.config.topic_name(topic);
        self.create(&format!("create topic {name}"), &name, json!({}))
            .await
    }

    /// A pull subscription, such as the one kept on each dead-letter topic (docs/ARCHITECTURE.md#exact-numbers).
    pub async fn create_pull_subscription(
        &self,
        subscription: &str,
        topic: &str,
        ack_deadline: Duration,
        message_retention: Duration,
    ) -> PortResult<bool> {
        let name = self.config.subscription_name(subscription);
        let body = json!({
            "topic": self.config.topic_name(topic),
            "ackDeadlineSeconds": ack_deadline.as_secs(),
            "messageRetentionDuration": duration_json(message_retention),
        });
        self.create(&format!("create subscription {name}"), &name, body)
            .await
    }

    pub async fn create_push_subscription(&self, spec: &PushSubscription) -> PortResult<bool> {
        let name = self.config.subscription_name(&spec.name);
        let mut push_config = json!({ "pushEndpoint": spec.push_endpoint });
        if let Some(account) = &spec.oidc_service_account {
            push_config["oidcToken"] = json!({ "serviceAccountEmail": account });
        }
        let mut body = json!({
            "topic": self.config.topic_name(&spec.topic),
            "pushConfig": push_config,
            "ackDeadlineSeconds": spec.ack_deadline.as_secs(),
            "messageRetentionDuration": duration_json(spec.message_retention),
            "retryPolicy": {
                "minimumBackoff": duration_json(spec.min_backoff),
                "maximumBackoff": duration_json(spec.max_backoff),
            },
        });
        if let Some(dlq) = &spec.dead_letter_topic {
            body["deadLetterPolicy"] = json!({
                "deadLetterTopic": self.config.topic_name(dlq),
                "maxDeliveryAttempts": spec.max_delivery_attempts,
            });
        }
        self.create(&format!("create subscription {name}"), &name, body)
            .await
    }

    pub async fn delete_subscription(&self, subscription: &str) -> PortResult<()> {
        let name = self.config.subscription_name(subscription);
        self.call(
            &format!("delete subscription {name}"),
            reqwest::Method::DELETE,
            &name,
            json!({}),
            false,
        )
        .await
        .map(|_| ())
    }

    /// Up to `max_messages` messages, answered at once (`returnImmediately`). Pub/Sub may
    /// answer with fewer than are waiting, even none: a caller that wants them all pulls
    /// until a few pulls in a row come back empty, or uses [`pull_waiting`](Self::pull_waiting).
    pub async fn pull(
        &self,
        subscription: &str,
        max_messages: u32,
    ) -> PortResult<Vec<PulledMessage>> {
        self.pull_request(subscription, max_messages).await
    }

    /// Up to `max_messages` messages, waiting up to `wait` for the first to arrive; none
    /// after `wait`.
    pub async fn pull_waiting(
        &self,
        subscription: &str,
        max_messages: u32,
        wait: Duration,
    ) -> PortResult<Vec<PulledMessage>> {
        // Immediate pulls, repeated, rather than one long-held pull: a long pull given up by
        // the client stays open at the server, which may hand it the next messages, and
        // those would then stay hidden until their ack deadline.
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let batch = self.pull_request(subscription, max_messages).await?;
            if !batch.is_empty() || tokio::time::Instant::now() >= deadline {
                return Ok(batch);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn pull_request(
        &self,
        subscription: &str,
        max_messages: u32,
    ) -> PortResult<Vec<PulledMessage>> {
        let name = self.config.subscription_name(subscription);
        let operation = format!("pull from {name}");
        // `returnImmediately` is deprecated for throughput, but it is the only way to learn
        // "nothing waiting" without holding a request open; the emulator otherwise waits
        // without bound.
        let body = json!({ "maxMessages": max_messages, "returnImmediately": true });
        let (_, bytes) = self
            .call(
                &operation,
                reqwest::Method::POST,
                &format!("{name}:pull"),
                body,
                false,
            )
            .await?;
        let response: PullResponse = serde_json::from_slice(&bytes)
            .map_err(|e| PortError::permanent(&operation, format!("undecodable answer: {e}")))?;
        response
            .received_messages
            .into_iter()
            .map(|r| {
                let data = match r.message.data {
                    Some(d) => BASE64.decode(d).map_err(|e| {
                        PortError::permanent(&operation, format!("message data is not base64: {e}"))
                    })?,
                    None => Vec::new(),
                };
                Ok(PulledMessage {
                    ack_id: r.ack_id,
                    message_id: r.message.message_id,
                    data: Bytes::from(data),
                    attributes: r.message.attributes,
                    publish_time: r.message.publish_time,
                    delivery_attempt: r.delivery_attempt,
                })
            })
            .collect()
    }

    /// Acknowledges pulled messages by their ack ids; an empty list is no call.
    pub async fn acknowledge(&self, subscription: &str, ack_ids: &[String]) -> PortResult<()> {
        if ack_ids.is_empty() {
            return Ok(());
        }
        let name = self.config.subscription_name(subscription);
        self.call(
            &format!("acknowledge on {name}"),
            reqwest::Method::POST,
            &format!("{name}:acknowledge"),
            json!({ "ackIds": ack_ids }),
            false,
        )
        .await
        .map(|_| ())
    }
}

/// A non-success REST answer, classified by the shared Google mapping on its status and the
/// body's `status` code ([`google_errors::failure`]: 404 is `NotFound`, 409 with
/// ALREADY_EXISTS permanent). No exception: a create that meets ALREADY_EXISTS is answered
/// `false` before this, not as a failure.
fn from_rest(
    operation: &str,
    status: u16,
    bytes: &[u8],
    retry_after: Option<Duration>,
) -> PortError {
    let code = error_status(bytes).and_then(|s| Code::try_from(s.as_str()).ok());
    google_errors::failure(
        operation,
        Some(status),
        code,
        error_message(bytes),
        retry_after,
    )
}

fn error_json(bytes: &[u8]) -> Option<serde_json::Value> {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|v| v.get("error").cloned())
}

fn error_status(bytes: &[u8]) -> Option<String> {
    error_json(bytes)?
        .get("status")?
        .as_str()
        .map(str::to_string)
}

/// Google's error message, else the start of the body: it names resources, never message
/// content.
fn error_message(bytes: &[u8]) -> String {
    error_json(bytes)
        .and_then(|e| e.get("message")?.as_str().map(str::to_string))
        .unwrap_or_else(|| truncate_bytes(&String::from_utf8_lossy(bytes), 300))
}

/// The dead-letter pull subscriptions as cleanup reads them (docs/FAILURES.md#dead-letters). A message read
/// and not acknowledged comes back after its ack deadline, for the replay job or a person;
/// within one run each message is handed out once.
pub struct PubSubDeadLetterReader {
    rest: PubSubRest,
    subscriptions: Vec<String>,
    seen: Mutex<std::collections::HashSet<String>>,
    /// Subscriptions that answered empty (or only repeats) in this run.
    drained: Mutex<std::collections::HashSet<String>>,
}

impl PubSubDeadLetterReader {
    pub fn new(rest: PubSubRest, subscriptions: Vec<String>) -> Self {
        PubSubDeadLetterReader {
            rest,
            subscriptions,
            seen: Mutex::new(Default::default()),
            drained: Mutex::new(Default::default()),
        }
    }
}

/// The direction a dead letter asked for: from the shim's own attribute, from Pub/Sub's
/// dead-letter source subscription (named after its sync function), or from the
/// dead-letter subscription's name.
pub fn dead_letter_direction(
    attributes: &HashMap<String, String>,
    subscription: &str,
) -> Option<Direction> {
    if let Some(d) = attributes
        .get(SOURCE_TOPIC_ATTRIBUTE)
        .and_then(|t| Direction::from_topic(t.rsplit('/').next().unwrap_or(t)))
    {
        return Some(d);
    }
    let by_name = |name: &str| {
        if name.contains("sync-google-to-company") || name.contains("google-case-updates") {
            Some(Direction::GoogleToCompany)
        } else if name.contains("sync-company-to-google") || name.contains("company-case-updates") {
            Some(Direction::CompanyToGoogle)
        } else {
            None
        }
    };
    attributes
        .get("CloudPubSubDeadLetterSourceSubscription")
        .and_then(|s| by_name(s))
        .or_else(|| by_name(subscription))
}

#[async_trait]
impl DeadLetterQueue for PubSubDeadLetterReader {
    async fn read_dead_letters(&self, max: usize) -> PortResult<Vec<DeadLetterMessage>> {
        let max = u32::try_from(max.clamp(1, 1000)).unwrap_or(1000);
        for subscription in &self.subscriptions {
            if self
                .drained
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(subscription)
            {
                continue;
            }
            let pulled = self.rest.pull(subscription, max).await?;
            let mut out = Vec::new();
            {
                let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
                for m in pulled {
                    if !seen.insert(m.message_id.clone()) {
                        continue;
                    }
                    let key = SyncMessage::decode(&m.data)
                        .map(|msg| msg.key)
                        .ok()
                        .or_else(|| m.attributes.get("case_key").cloned())
                        .unwrap_or_default();
                    let at = m
                        .publish_time
                        .as_deref()
                        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                        .map(|t| t.with_timezone(&chrono::Utc));
                    let Some(at) = at else { continue };
                    out.push(DeadLetterMessage {
                        handle: format!("{subscription}\n{}", m.ack_id),
                        direction: dead_letter_direction(&m.attributes, subscription),
                        case_key: key,
                        dead_lettered_at: at,
                    });
                }
            }
            if out.is_empty() {
                self.drained
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(subscription.clone());
                continue;
            }
            return Ok(out);
        }
        Ok(Vec::new())
    }

    async fn ack_dead_letters(&self, handles: &[String]) -> PortResult<()> {
        let mut by_subscription: HashMap<&str, Vec<String>> = HashMap::new();
        for h in handles {
            if let Some((subscription, ack_id)) = h.split_once('\n') {
                by_subscription
                    .entry(subscription)
                    .or_default()
                    .push(ack_id.to_string());
            }
        }
        for (subscription, ack_ids) in by_subscription {
            self.rest.acknowledge(subscription, &ack_ids).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_completed_under_the_project_and_full_names_kept() {
        let c = PubSubConfig::new("p");
        assert_eq!(c.topic_name("t"), "projects/p/topics/t");
        assert_eq!(c.topic_name("projects/q/topics/t"), "projects/q/topics/t");
        assert_eq!(c.subscription_name("s"), "projects/p/subscriptions/s");
    }

    #[test]
    fn the_emulator_host_becomes_an_http_endpoint() {
        let c = PubSubConfig::new("p").with_emulator_host("127.0.0.1:8085");
        assert_eq!(c.endpoint(), "http://127.0.0.1:8085");
        let c = PubSubConfig::new("p").with_emulator_host("http://h:1/");
        assert_eq!(c.endpoint(), "http://h:1");
        assert_eq!(PubSubConfig::new("p").endpoint(), PRODUCTION_ENDPOINT);
    }

    #[test]
    fn bad_configuration_names_the_key() {
        let e = PubSubConfig::new("a/b").validate().unwrap_err();
        assert!(e.to_string().contains("pubsub.project_id"), "{e}");
        let e = PubSubConfig::new("p")
            .with_emulator_host(" ")
            .validate()
            .unwrap_err();
        assert!(e.to_string().contains("pubsub.emulator_host"), "{e}");
    }

    #[test]
    fn dead_letter_attributes_keep_the_original_and_add_the_reason() {
        let original = HashMap::from([(CASE_KEY_ATTRIBUTE.to_string(), "42".to_string())]);
        let long = "é".repeat(2000);
        let a = dead_letter_attributes(
            &original,
            ErrorClass::Permanent,
            &long,
            "casesync-google-case-updates",
        );
        assert_eq!(a[CASE_KEY_ATTRIBUTE], "42");
        assert_eq!(a[ERROR_CLASS_ATTRIBUTE], "permanent");
        assert_eq!(a[SOURCE_TOPIC_ATTRIBUTE], "casesync-google-case-updates");
        assert!(a[ERROR_ATTRIBUTE].len() <= MAX_ATTRIBUTE_BYTES);
        assert!(a[ERROR_ATTRIBUTE].ends_with('…'));
        // An oversized original attribute (a pushed case_key of a megabyte) is cut too.
        let huge = HashMap::from([(CASE_KEY_ATTRIBUTE.to_string(), "9".repeat(1 << 20))]);
        let a = dead_letter_attributes(&huge, ErrorClass::Permanent, "bad", "t");
        assert!(a[CASE_KEY_ATTRIBUTE].len() <= MAX_ATTRIBUTE_BYTES);
    }

    #[test]
    fn push_subscriptions_take_the_policy_numbers() {
        let s = PushSubscription::from_policy(
            "sub",
            "topic",
            "http://x/",
            Some("dlq"),
            &crate::retry_policy::PRODUCTION_QUEUE,
        );
        assert_eq!(s.max_delivery_attempts, 100);
        assert_eq!(s.ack_deadline, Duration::from_secs(600));
        assert_eq!(duration_json(s.max_backoff), "600s");
    }

    #[test]
    fn rpc_codes_follow_the_shared_mapping_but_not_found() {
        use google_cloud_gax::error::rpc::Status;
        for number in 0..=16 {
            let code = Code::from(number);
            let e = google_cloud_gax::error::Error::service(
                Status::default().set_code(code).set_message("m"),
            );
            let expected = match code {
                // The exception: a missing topic is a deployment problem.
                Code::NotFound => ErrorClass::Systemic,
                _ => google_errors::class_of_code(code),
            };
            let got = from_gax("publish", &e);
            assert_eq!(got.class(), expected, "{code}");
            assert!(!got.is_not_found(), "{code}");
        }
        let e = google_cloud_gax::error::Error::service(
            Status::default()
                .set_code(Code::ResourceExhausted)
                .set_message("quota"),
        );
        assert_eq!(from_gax("publish", &e).class(), ErrorClass::Retryable);
        let e = google_cloud_gax::error::Error::http(404, Default::default(), Bytes::new());
        assert_eq!(from_gax("publish", &e).class(), ErrorClass::Systemic);
        let e = google_cloud_gax::error::Error::timeout("deadline");
        assert_eq!(from_gax("publish", &e).class(), ErrorClass::Retryable);
    }

    #[test]
    fn rest_answers_follow_the_shared_mapping() {
        let body = |status: &str| {
            format!(r#"{{"error":{{"code":409,"message":"m","status":"{status}"}}}}"#)
        };
        let e = from_rest("op", 409, body("ALREADY_EXISTS").as_bytes(), None);
        assert_eq!(e.class(), ErrorClass::Permanent);
        let e = from_rest("op", 409, body("ABORTED").as_bytes(), None);
        assert_eq!(e.class(), ErrorClass::Retryable);
        assert!(from_rest("op", 404, b"", None).is_not_found());
        assert_eq!(
            from_rest("op", 403, b"", None).class(),
            ErrorClass::Systemic
        );
        assert_eq!(
            from_rest("op", 400, b"", None).class(),
            ErrorClass::Permanent
        );
        assert_eq!(
            from_rest("op", 501, b"", None).class(),
            ErrorClass::Systemic
        );
        let wait = Some(Duration::from_secs(2));
        let e = from_rest("op", 429, b"", wait);
        assert_eq!((e.class(), e.retry_after()), (ErrorClass::Retryable, wait));
    }

    #[test]
    fn google_error_bodies_are_read() {
        let body = br#"{"error":{"code":409,"message":"Resource already exists","status":"ALREADY_EXISTS"}}"#;
        assert_eq!(error_status(body).as_deref(), Some("ALREADY_EXISTS"));
        assert_eq!(error_message(body), "Resource already exists");
        assert_eq!(error_message(b"plain"), "plain");
    }
}
