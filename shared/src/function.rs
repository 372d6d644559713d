//! What every Cloud Run function does before its task runs: read the environment it is
//! documented to read (`deploy::required_env`), load the configuration, and build only the
//! adapters its task needs — a function gets no client, and so no credentials, for a
//! system it does not talk to. The binaries under `functions/` call these and the shim.

use crate::adapters::csapi::{CsapiClient, CsapiConfig};
use crate::adapters::firestore_store::{FirestoreConfig, FirestoreStore};
use crate::adapters::jira::{JiraConfig, JiraCrm};
use crate::adapters::pubsub::{
    PubSubConfig, PubSubDeadLetterReader, PubSubQueue, PubSubRest, dead_letter_attributes,
};
use crate::adapters::rt::{RtConfig, RtCrm};
use crate::clock::SystemClock;
use crate::config::{Config, ConfigError};
use crate::deploy::{self, FunctionSpec};
use crate::domain::{
    AttachmentUpload, CrmAttachment, CrmCase, CrmComment, Direction, GoogleAttachment, GoogleCase,
    GoogleCaseKey, GoogleComment, NewCrmCase, NewGoogleCase, Priority, SyncMessage,
};
use crate::error::{ErrorClass, PortError, PortResult};
use crate::ports::{ByteStream, Crm, SupportApi, SyncQueue};
use crate::shim::{
    DeadLetterSink, HandlerError, HandlerOutcome, Invocation, PushMessage, ShimConfig,
};
use crate::tasks::{Engine, TaskError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Arc;

/// Installs the process's one rustls crypto provider before any TLS client is built
/// (docs/ARCHITECTURE.md#build-rules): with more than one compiled in, rustls would refuse to choose.
pub fn install_crypto_provider() {
    // Fails only when one is installed already, which is what we want.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// Why a function could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Port(#[from] PortError),
    #[error("`{0}` is not a casesync function")]
    UnknownFunction(String),
}

/// A started function: its spec, configuration and environment.
pub struct Function {
    pub spec: &'static FunctionSpec,
    pub config: Config,
    pub env: HashMap<String, String>,
}

impl Function {
    /// Checks the environment `name` reads and loads the configuration from it (plus the
    /// file named by `CASESYNC_CONFIG`, if any).
    pub fn load(name: &str, env: HashMap<String, String>) -> Result<Function, StartError> {
        let spec =
            deploy::spec(name).ok_or_else(|| StartError::UnknownFunction(name.to_string()))?;
        deploy::check_env(name, &env)?;
        let path = env.get("CASESYNC_CONFIG").map(std::path::PathBuf::from);
        let config = Config::load(path.as_deref(), env.clone())?;
        Ok(Function { spec, config, env })
    }

    pub fn shim_config(&self) -> Result<ShimConfig, ConfigError> {
        ShimConfig::from_env(self.spec.name, &self.env)
    }

    pub fn pubsub_config(&self) -> Result<PubSubConfig, ConfigError> {
        let section = self.config.pubsub.as_ref().ok_or_else(|| ConfigError {
            key: "pubsub".into(),
            problem: "the [pubsub] section (CASESYNC_PUBSUB__PROJECT) is required".into(),
        })?;
        let mut c = PubSubConfig::new(&section.project);
        if let Some(host) = &section.emulator_host {
            c = c.with_emulator_host(host);
        }
        Ok(c)
    }

    /// The engine with the adapters this function needs; the others refuse every call.
    pub async fn engine(&self) -> Result<Engine, StartError> {
        let needs = self.spec.needs;
        // The CRM adapter's keys are checked before anything connects, so a bad one is
        // named even where Firestore or the API cannot be reached.
        let crm_config = if needs.crm {
            Some(self.crm_config()?)
        } else {
            None
        };
        let firestore = self.config.firestore.as_ref().ok_or_else(|| ConfigError {
            key: "firestore".into(),
            problem: "the [firestore] section (CASESYNC_FIRESTORE__*) is required".into(),
        })?;
        let mut store_config = FirestoreConfig::new(&firestore.project, &firestore.database);
        if let Some(host) = &firestore.emulator_host {
            store_config = store_config.with_emulator_host(host);
        }
        let store = Arc::new(FirestoreStore::connect(&store_config).await?);

        let support: Arc<dyn SupportApi> = if needs.support_api {
            let g = self.config.require_google()?;
            let mut c = CsapiConfig::default();
            if let Some(endpoint) = &g.endpoint {
                c.endpoint = Some(endpoint.clone());
                c.anonymous = g.anonymous;
            }
            let client = CsapiClient::connect(c).await?;
            if !client.classification_exists(&g.classification_id).await? {
                return Err(ConfigError {
                    key: "google.classification_id".into(),
                    problem: format!(
                        "`{}` is not a case classification the API knows",
                        g.classification_id
                    ),
                }
                .into());
            }
            Arc::new(client)
        } else {
            Arc::new(NotConnected::google(self.spec.name))
        };

        let crm: Arc<dyn Crm> = if let Some(crm_config) = crm_config {
            match crm_config {
                CrmSettings::Rt(c) => Arc::new(RtCrm::connect(*c).await?),
                CrmSettings::Jira(c) => Arc::new(JiraCrm::connect(*c).await?),
            }
        } else {
            let kind = self
                .config
                .crm
                .as_ref()
                .map(|c| c.kind.clone())
                .unwrap_or_default();
            Arc::new(NotConnected::crm(self.spec.name, kind))
        };

        let queue: Arc<dyn SyncQueue> = if needs.queue {
            Arc::new(PubSubQueue::connect(&self.pubsub_config()?).await?)
        } else {
            Arc::new(NotConnected::google(self.spec.name))
        };

        Ok(Engine {
            support,
            crm,
            store,
            queue,
            clock: Arc::new(SystemClock),
            settings: Arc::new(self.config.sync_settings()),
        })
    }

    /// The CRM adapter's settings, read and checked (no connection yet).
    fn crm_config(&self) -> Result<CrmSettings, StartError> {
        let crm = self.config.require_crm()?;
        let (key, table) = match crm.kind.as_str() {
            "rt" => ("crm.rt", crm.rt.clone()),
            _ => ("crm.jira", crm.jira.clone()),
        };
        let table = table.ok_or_else(|| ConfigError {
            key: key.into(),
            problem: format!(
                "the [{key}] section is required when crm.kind is `{}`",
                crm.kind
            ),
        })?;
        Ok(if crm.kind == "rt" {
            let mut rt = RtConfig::from_toml(table)?;
            rt.max_attachment_bytes = self.config.sync.max_attachment_bytes;
            CrmSettings::Rt(Box::new(rt))
        } else {
            CrmSettings::Jira(Box::new(JiraConfig::from_toml(table)?))
        })
    }

    /// The dead-letter subscriptions cleanup-case-mappings reads, with a REST client for
    /// them; `None` when `cleanup.dead_letter_subscriptions` is empty.
    #[allow(clippy::type_complexity)]
    pub fn cleanup_dead_letters(
        &self,
    ) -> Result<Option<Arc<(PubSubRest, Vec<String>)>>, StartError> {
        let subscriptions = &self.config.cleanup.dead_letter_subscriptions;
        if self.spec.name != "cleanup-case-mappings" || subscriptions.is_empty() {
            return Ok(None);
        }
        let rest = PubSubRest::new(&self.pubsub_config()?)?;
        Ok(Some(Arc::new((rest, subscriptions.clone()))))
    }

    /// Where a push function's shim dead-letters a message itself.
    pub async fn dead_letter_sink(&self) -> Result<Option<Arc<dyn DeadLetterSink>>, StartError> {
        let Some(topic) = self.env.get("CASESYNC_SHIM__DEAD_LETTER_TOPIC").cloned() else {
            return Ok(None);
        };
        let source_topic = match self.spec.trigger {
            deploy::Trigger::Push { topic } => topic.to_string(),
            _ => String::new(),
        };
        let queue = PubSubQueue::connect(&self.pubsub_config()?).await?;
        Ok(Some(Arc::new(PubSubDeadLetters {
            queue,
            topic,
            source_topic,
        })))
    }
}

/// The settings of the CRM adapter a function connects to.
enum CrmSettings {
    Jira(Box<JiraConfig>),
    Rt(Box<RtConfig>),
}

/// Dead-letters through Pub/Sub with the reason in the attributes (docs/ARCHITECTURE.md#sync-messages).
struct PubSubDeadLetters {
    queue: PubSubQueue,
    topic: String,
    source_topic: String,
}

#[async_trait]
impl DeadLetterSink for PubSubDeadLetters {
    async fn dead_letter(
        &self,
        message: &PushMessage,
        class: ErrorClass,
        reason: &str,
    ) -> PortResult<()> {
        let original: HashMap<String, String> = message.attributes.clone().into_iter().collect();
        let attributes = dead_letter_attributes(&original, class, reason, &self.source_topic);
        self.queue
            .publish_raw(&self.topic, message.data.clone(), attributes)
            .await
            .map(|_| ())
    }
}

/// The whole life of a scheduled function: load, wire, serve until SIGTERM.
pub async fn serve_scheduled(name: &'static str) -> Result<(), ServeError> {
    install_crypto_provider();
    crate::logging::init(true);
    let function = Function::load(name, crate::config::process_env()?.into_iter().collect())?;
    let shim = function.shim_config()?;
    let engine = function.engine().await?;
    let dead_letters = function.cleanup_dead_letters()?;
    crate::shim::run(shim, None, move |_scheduled| {
        let engine = engine.clone();
        let dead_letters = dead_letters.clone();
        async move {
            match (name, dead_letters) {
                ("cleanup-case-mappings", Some(subscriptions)) => {
                    // A reader per run: each run walks the dead letters once.
                    let reader = PubSubDeadLetterReader::new(
                        subscriptions.0.clone(),
                        subscriptions.1.clone(),
                    );
                    report(engine.cleanup_with_dead_letters(&reader).await)
                }
                _ => run_scheduled(&engine, name).await,
            }
        }
    })
    .await?;
    Ok(())
}

/// The whole life of a push-triggered sync function: load, wire, serve until SIGTERM.
pub async fn serve_push(name: &'static str, direction: Direction) -> Result<(), ServeError> {
    install_crypto_provider();
    crate::logging::init(true);
    let function = Function::load(name, crate::config::process_env()?.into_iter().collect())?;
    let shim = function.shim_config()?;
    let engine = function.engine().await?;
    let dead_letters = function.dead_letter_sink().await?;
    crate::shim::run(shim, dead_letters, move |invocation| {
        let engine = engine.clone();
        async move { run_push(&engine, direction, invocation).await }
    })
    .await?;
    Ok(())
}

/// Why a function stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Start(#[from] StartError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("serving HTTP: {0}")]
    Http(#[from] std::io::Error),
}

fn handler_error(e: TaskError) -> HandlerError {
    HandlerError {
        class: e.class(),
        message: e.to_string(),
    }
}

fn report<T: serde::Serialize>(r: Result<T, TaskError>) -> HandlerOutcome {
    r.map(|v| serde_json::to_value(v).unwrap_or_default())
        .map_err(handler_error)
}

/// Runs a scheduled task body for one invocation.
pub async fn run_scheduled(engine: &Engine, function: &str) -> HandlerOutcome {
    match function {
        "poll-google" => report(engine.poll_google().await),
        "poll-company" => report(engine.poll_company().await),
        "detect-outages" => report(engine.detect_outages().await),
        "cleanup-case-mappings" => report(engine.cleanup_case_mappings().await),
        other => Err(HandlerError {
            class: ErrorClass::Systemic,
            message: format!("`{other}` is not a scheduled function"),
        }),
    }
}

/// Runs a sync for one push delivery; a message that does not decode is permanent.
pub async fn run_push(
    engine: &Engine,
    direction: Direction,
    invocation: Invocation,
) -> HandlerOutcome {
    let Invocation::Push(message) = invocation else {
        return Err(HandlerError {
            class: ErrorClass::Permanent,
            message: "a sync function was called without a Pub/Sub message".into(),
        });
    };
    let decoded = SyncMessage::decode(&message.data).map_err(|e| HandlerError {
        class: ErrorClass::Permanent,
        message: e.to_string(),
    })?;
    report(engine.sync(direction, &decoded.key).await)
}

/// A port this function has no business calling: every call is a configuration error.
struct NotConnected {
    function: &'static str,
    what: &'static str,
    kind: String,
}

impl NotConnected {
    fn google(function: &'static str) -> Self {
        NotConnected {
            function,
            what: "this system",
            kind: String::new(),
        }
    }

    fn crm(function: &'static str, kind: String) -> Self {
        NotConnected {
            function,
            what: "the CRM",
            kind,
        }
    }

    fn refuse<T>(&self) -> PortResult<T> {
        Err(PortError::Config(format!(
            "{} is not connected to {}",
            self.function, self.what
        )))
    }
}

#[async_trait]
impl SupportApi for NotConnected {
    async fn get_case(&self, _: &str) -> PortResult<GoogleCase> {
        self.refuse()
    }
    async fn search_cases_updated_since(
        &self,
        _: &str,
        _: DateTime<Utc>,
    ) -> PortResult<Vec<GoogleCase>> {
        self.refuse()
    }
    async fn find_cases_by_creator_and_text(
        &self,
        _: &str,
        _: &str,
        _: &str,
    ) -> PortResult<Vec<GoogleCase>> {
        self.refuse()
    }
    async fn create_case(&self, _: &str, _: &NewGoogleCase) -> PortResult<GoogleCase> {
        self.refuse()
    }
    async fn update_priority(&self, _: &str, _: Priority) -> PortResult<GoogleCase> {
        self.refuse()
    }
    async fn close_case(&self, _: &str) -> PortResult<GoogleCase> {
        self.refuse()
    }
    async fn list_comments(&self, _: &str) -> PortResult<Vec<GoogleComment>> {
        self.refuse()
    }
    async fn create_comment(&self, _: &str, _: &str) -> PortResult<GoogleComment> {
        self.refuse()
    }
    async fn list_attachments(&self, _: &str) -> PortResult<Vec<GoogleAttachment>> {
        self.refuse()
    }
    async fn download_attachment(&self, _: &GoogleAttachment) -> PortResult<ByteStream> {
        self.refuse()
    }
    async fn upload_attachment(
        &self,
        _: &str,
        _: AttachmentUpload,
    ) -> PortResult<GoogleAttachment> {
        self.refuse()
    }
    async fn classification_exists(&self, _: &str) -> PortResult<bool> {
        self.refuse()
    }
}

#[async_trait]
impl Crm for NotConnected {
    fn kind(&self) -> &str {
        &self.kind
    }
    async fn get_case(&self, _: &str) -> PortResult<CrmCase> {
        self.refuse()
    }
    async fn search_updated_since(&self, _: DateTime<Utc>) -> PortResult<Vec<CrmCase>> {
        self.refuse()
    }
    async fn find_by_google_case(&self, _: &GoogleCaseKey) -> PortResult<Option<CrmCase>> {
        self.refuse()
    }
    async fn create_case(&self, _: &NewCrmCase) -> PortResult<CrmCase> {
        self.refuse()
    }
    async fn set_google_case_name(&self, _: &str, _: &str) -> PortResult<()> {
        self.refuse()
    }
    async fn set_priority(&self, _: &str, _: Priority) -> PortResult<()> {
        self.refuse()
    }
    async fn close_case(&self, _: &str) -> PortResult<()> {
        self.refuse()
    }
    async fn list_comments(
        &self,
        _: &str,
        _: Option<DateTime<Utc>>,
    ) -> PortResult<Vec<CrmComment>> {
        self.refuse()
    }
    async fn add_comment(&self, _: &str, _: &str) -> PortResult<CrmComment> {
        self.refuse()
    }
    async fn list_attachments(&self, _: &str) -> PortResult<Vec<CrmAttachment>> {
        self.refuse()
    }
    async fn download_attachment(&self, _: &str, _: &CrmAttachment) -> PortResult<ByteStream> {
        self.refuse()
    }
    async fn upload_attachment(&self, _: &str, _: AttachmentUpload) -> PortResult<CrmAttachment> {
        self.refuse()
    }
}

#[async_trait]
impl SyncQueue for NotConnected {
    async fn publish(&self, _: Direction, _: &str) -> PortResult<()> {
        self.refuse()
    }
}
