//! The one composition root (docs/ARCHITECTURE.md#layers): builds the engine's ports from
//! the configuration, for the Cloud Run functions (`function`) and the local runner alike,
//! so the two cannot choose a CRM or a Google client differently. The caller brings the
//! store and the queue, the two ports its topology decides (Firestore and Pub/Sub, or the
//! embedded SQLite ones); everything a function does not need refuses every call, so it
//! gets no client, and no credentials, for a system it does not talk to.

use crate::adapters::csapi::{CsapiClient, CsapiConfig};
use crate::adapters::registry::{CrmError, CrmSettings};
use crate::clock::Clock;
use crate::config::{Config, ConfigError};
use crate::deploy::Needs;
use crate::domain::{
    AttachmentUpload, CrmAttachment, CrmCase, CrmComment, Direction, GoogleAttachment, GoogleCase,
    GoogleCaseKey, GoogleComment, NewCrmCase, NewGoogleCase, Priority,
};
use crate::error::{PortError, PortResult};
use crate::ports::{ByteStream, Crm, MappingStore, SupportApi, SyncQueue};
use crate::tasks::Engine;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::Arc;

/// Why the engine could not be built.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Port(#[from] PortError),
    #[error("`{0}` is not a casesync function")]
    UnknownFunction(String),
}

impl From<CrmError> for StartError {
    fn from(e: CrmError) -> Self {
        match e {
            CrmError::Config(e) => StartError::Config(e),
            CrmError::Port(e) => StartError::Port(e),
        }
    }
}

/// The ports a configuration calls for, checked but not yet connected.
pub struct Plan {
    /// Who runs the engine, for the refusals of the ports it does not get.
    who: &'static str,
    needs: Needs,
    crm: Option<CrmSettings>,
}

impl Plan {
    /// Reads and checks what `needs` calls for, connecting nothing: the CRM adapter's keys
    /// are checked before anything connects, so a bad one is named even where Firestore or
    /// the API cannot be reached.
    pub fn new(config: &Config, who: &'static str, needs: Needs) -> Result<Plan, StartError> {
        let crm = if needs.crm {
            Some(CrmSettings::read(config)?)
        } else {
            None
        };
        Ok(Plan { who, needs, crm })
    }

    /// Connects the Cloud Support API and the CRM where needed and builds the engine on the
    /// caller's store and queue (`None`: the queue refuses every call).
    pub async fn engine(
        self,
        config: &Config,
        store: Arc<dyn MappingStore>,
        queue: Option<Arc<dyn SyncQueue>>,
        clock: Arc<dyn Clock>,
    ) -> Result<Engine, StartError> {
        let support: Arc<dyn SupportApi> = if self.needs.support_api {
            Arc::new(connect_support_api(config).await?)
        } else {
            Arc::new(NotConnected::google(self.who))
        };
        let crm: Arc<dyn Crm> = match self.crm {
            Some(settings) => settings.connect().await?,
            None => {
                let kind = config
                    .crm
                    .as_ref()
                    .map(|c| c.kind.clone())
                    .unwrap_or_default();
                Arc::new(NotConnected::crm(self.who, kind))
            }
        };
        let queue = queue.unwrap_or_else(|| Arc::new(NotConnected::google(self.who)));
        Ok(Engine {
            support,
            crm,
            store,
            queue,
            clock,
            settings: Arc::new(config.sync_settings()),
        })
    }
}

/// The Cloud Support API client of `[google]`, with its classification checked: a case
/// created under one the API does not know would fail at the first sync instead of here.
async fn connect_support_api(config: &Config) -> Result<CsapiClient, StartError> {
    let g = config.require_google()?;
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
    Ok(client)
}

/// A port this function has no business calling: every call is a configuration error.
pub(crate) struct NotConnected {
    function: &'static str,
    what: &'static str,
    kind: String,
}

impl NotConnected {
    pub(crate) fn google(function: &'static str) -> Self {
        NotConnected {
            function,
            what: "this system",
            kind: String::new(),
        }
    }

    pub(crate) fn crm(function: &'static str, kind: String) -> Self {
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
