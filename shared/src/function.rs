//! What every Cloud Run function does before its task runs: read the environment it is
//! documented to read (`deploy::required_env`, for the CRM kind it names), load the
//! configuration, and build only the adapters its task needs through the one composition
//! root (`compose`) — a function gets no client, and so no credentials, for a system it
//! does not talk to. Each binary under `functions/` hands its task body to
//! [`serve_scheduled`], [`serve_scheduled_with`] or [`serve_push`]; nothing here picks a
//! body by the function's name.

use crate::adapters::firestore_store::{FirestoreConfig, FirestoreStore};
use crate::adapters::pubsub::{
    PubSubConfig, PubSubDeadLetterReader, PubSubQueue, PubSubRest, dead_letter_attributes,
};
use crate::clock::SystemClock;
use crate::compose::Plan;
use crate::config::{Config, ConfigError};
use crate::deploy::{self, FunctionSpec};
use crate::domain::SyncMessage;
use crate::error::{ErrorClass, PortResult};
use crate::ports::SyncQueue;
use crate::shim::{
    DeadLetterSink, HandlerError, HandlerOutcome, Invocation, PushMessage, ShimConfig,
};
use crate::tasks::{Engine, TaskError};
use async_trait::async_trait;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

pub use crate::compose::StartError;

/// Installs the process's one rustls crypto provider before any TLS client is built
/// (docs/ARCHITECTURE.md#build-rules): with more than one compiled in, rustls would refuse to choose.
pub fn install_crypto_provider() {
    // Fails only when one is installed already, which is what we want.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
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
    /// The ports come from the one composition root (`compose`), the local runner's too.
    pub async fn engine(&self) -> Result<Engine, StartError> {
        let needs = self.spec.needs;
        let plan = Plan::new(&self.config, self.spec.name, needs)?;
        let firestore = self.config.firestore.as_ref().ok_or_else(|| ConfigError {
            key: "firestore".into(),
            problem: "the [firestore] section (CASESYNC_FIRESTORE__*) is required".into(),
        })?;
        let mut store_config = FirestoreConfig::new(&firestore.project, &firestore.database);
        if let Some(host) = &firestore.emulator_host {
            store_config = store_config.with_emulator_host(host);
        }
        let store = Arc::new(FirestoreStore::connect(&store_config).await?);
        let queue: Option<Arc<dyn SyncQueue>> = if needs.queue {
            Some(Arc::new(
                PubSubQueue::connect(&self.pubsub_config()?).await?,
            ))
        } else {
            None
        };
        plan.engine(&self.config, store, queue, Arc::new(SystemClock))
            .await
    }

    /// The dead-letter subscriptions `cleanup.dead_letter_subscriptions` names, with a REST
    /// client for them; `None` when it is empty. Read by cleanup-case-mappings' handler.
    #[allow(clippy::type_complexity)]
    pub fn cleanup_dead_letters(
        &self,
    ) -> Result<Option<Arc<(PubSubRest, Vec<String>)>>, StartError> {
        let subscriptions = &self.config.cleanup.dead_letter_subscriptions;
        if subscriptions.is_empty() {
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

/// The whole life of a scheduled function whose task body needs the engine only: load,
/// wire, serve until SIGTERM, running `task` once per Cloud Scheduler call. The `main` of
/// the function hands its task over (`|engine| async move { engine.poll_google().await }`),
/// so nothing here chooses a body by the function's name.
pub async fn serve_scheduled<F, Fut, T>(name: &'static str, task: F) -> Result<(), ServeError>
where
    F: Fn(Engine) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<T, TaskError>> + Send + 'static,
    T: serde::Serialize,
{
    serve_scheduled_with(name, move |_| Ok(task)).await
}

/// As [`serve_scheduled`], for a task that needs more of the started function than the
/// engine: `handler` builds the task from it once, before the function serves (so its
/// configuration errors stop start-up, like the engine's).
pub async fn serve_scheduled_with<H, F, Fut, T>(
    name: &'static str,
    handler: H,
) -> Result<(), ServeError>
where
    H: FnOnce(&Function) -> Result<F, StartError>,
    F: Fn(Engine) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<T, TaskError>> + Send + 'static,
    T: serde::Serialize,
{
    install_crypto_provider();
    crate::logging::init(true);
    let function = Function::load(name, crate::config::process_env()?.into_iter().collect())?;
    let shim = function.shim_config()?;
    let engine = function.engine().await?;
    let task = Arc::new(handler(&function)?);
    crate::shim::run(shim, None, move |_scheduled| {
        let (engine, task) = (engine.clone(), task.clone());
        async move { report(task(engine).await) }
    })
    .await?;
    Ok(())
}

/// A scheduled task body built at start-up, boxed so that a handler can name its type.
pub type ScheduledTask<T> =
    Box<dyn Fn(Engine) -> futures::future::BoxFuture<'static, Result<T, TaskError>> + Send + Sync>;

/// cleanup-case-mappings' task: with `cleanup.dead_letter_subscriptions` set, each run also
/// acknowledges the dead letters of cases that synced since; without, it only deletes old
/// mappings.
pub fn cleanup_task(
    function: &Function,
) -> Result<ScheduledTask<crate::tasks::CleanupReport>, StartError> {
    let dead_letters = function.cleanup_dead_letters()?;
    Ok(Box::new(move |engine: Engine| {
        let dead_letters = dead_letters.clone();
        Box::pin(async move {
            match dead_letters {
                Some(subscriptions) => {
                    // A reader per run: each run walks the dead letters once.
                    let reader = PubSubDeadLetterReader::new(
                        subscriptions.0.clone(),
                        subscriptions.1.clone(),
                    );
                    engine.cleanup_with_dead_letters(&reader).await
                }
                None => engine.cleanup_case_mappings().await,
            }
        })
    }))
}

/// The whole life of a push-triggered sync function: load, wire, serve until SIGTERM,
/// running `task` on the case key of each Pub/Sub delivery (a message that does not decode
/// is permanent and never reaches it).
pub async fn serve_push<F, Fut, T>(name: &'static str, task: F) -> Result<(), ServeError>
where
    F: Fn(Engine, String) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<T, TaskError>> + Send + 'static,
    T: serde::Serialize,
{
    install_crypto_provider();
    crate::logging::init(true);
    let function = Function::load(name, crate::config::process_env()?.into_iter().collect())?;
    let shim = function.shim_config()?;
    let engine = function.engine().await?;
    let dead_letters = function.dead_letter_sink().await?;
    let task = Arc::new(task);
    crate::shim::run(shim, dead_letters, move |invocation| {
        let (engine, task) = (engine.clone(), task.clone());
        async move {
            let key = push_key(invocation)?;
            report(task(engine, key).await)
        }
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

/// The case key of one push delivery; a message that does not decode is permanent.
fn push_key(invocation: Invocation) -> Result<String, HandlerError> {
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
    Ok(decoded.key)
}
