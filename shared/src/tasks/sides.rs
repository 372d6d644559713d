//! Both sides of a sync seen through one shape, so that mirroring comments and attachments
//! is written once and runs the same in both directions.

use crate::domain::{AttachmentUpload, CrmAttachment, GoogleAttachment, Side};
use crate::error::PortResult;
use crate::ports::{ByteStream, Crm, SupportApi};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// A comment of either side.
#[derive(Debug, Clone)]
pub(crate) struct CommentView {
    /// The id a marker names: a Google comment's last name segment, a CRM comment id.
    pub id: String,
    pub author: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
    pub by_connector: bool,
}

#[derive(Debug, Clone)]
pub(crate) enum AttachmentRef {
    Google(GoogleAttachment),
    Crm(CrmAttachment),
}

/// An attachment of either side.
#[derive(Debug, Clone)]
pub(crate) struct AttachmentView {
    pub id: String,
    pub filename: String,
    pub mime_type: String,
    pub size_bytes: u64,
    pub author: String,
    pub created_at: DateTime<Utc>,
    pub by_connector: bool,
    pub raw: AttachmentRef,
}

#[async_trait]
pub(crate) trait CaseSide: Send + Sync {
    fn side(&self) -> Side;
    /// Comments created at or after `since` at least; may return more.
    async fn comments(&self, since: Option<DateTime<Utc>>) -> PortResult<Vec<CommentView>>;
    /// Returns the e-mail the side reports as the new comment's author, where it reports one.
    async fn add_comment(&self, body: &str) -> PortResult<Option<String>>;
    async fn attachments(&self) -> PortResult<Vec<AttachmentView>>;
    async fn download(&self, attachment: &AttachmentView) -> PortResult<ByteStream>;
    /// Returns the new attachment's id and the e-mail reported as its author, if any.
    async fn upload(&self, upload: AttachmentUpload) -> PortResult<(String, Option<String>)>;
}

fn last_segment(name: &str) -> String {
    name.rsplit('/').next().unwrap_or(name).to_string()
}

pub(crate) struct GoogleSide<'a> {
    pub support: &'a dyn SupportApi,
    pub case_name: &'a str,
    pub own_identities: &'a [String],
    /// The case's comments as listed once in this sync, with casesync's own posts since
    /// added: the API has no `since` filter, so a second listing would read every page again.
    pub listed: std::sync::Mutex<Option<Vec<CommentView>>>,
}

impl<'a> GoogleSide<'a> {
    pub fn new(
        support: &'a dyn SupportApi,
        case_name: &'a str,
        own_identities: &'a [String],
    ) -> Self {
        GoogleSide {
            support,
            case_name,
            own_identities,
            listed: std::sync::Mutex::new(None),
        }
    }

    fn view(&self, c: crate::domain::GoogleComment) -> CommentView {
        CommentView {
            id: last_segment(&c.name),
            author: c.creator.display_name.clone(),
            by_connector: self.is_own(c.creator.email.as_deref()),
            body: c.body,
            created_at: c.create_time,
        }
    }
}

impl GoogleSide<'_> {
    fn is_own(&self, email: Option<&str>) -> bool {
        email.is_some_and(|e| {
            self.own_identities
                .iter()
                .any(|o| o.eq_ignore_ascii_case(e))
        })
    }
}

#[async_trait]
impl CaseSide for GoogleSide<'_> {
    fn side(&self) -> Side {
        Side::Google
    }

    async fn comments(&self, _since: Option<DateTime<Utc>>) -> PortResult<Vec<CommentView>> {
        if let Some(listed) = self
            .listed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            return Ok(listed.clone());
        }
        // The CSAPI's comment order is undocumented: always read every page (docs/INVARIANTS.md#what-counts-as-mirrored).
        let comments = self.support.list_comments(self.case_name).await?;
        let views: Vec<CommentView> = comments.into_iter().map(|c| self.view(c)).collect();
        *self.listed.lock().unwrap_or_else(|e| e.into_inner()) = Some(views.clone());
        Ok(views)
    }

    async fn add_comment(&self, body: &str) -> PortResult<Option<String>> {
        let created = self.support.create_comment(self.case_name, body).await?;
        let email = created.creator.email.clone();
        let view = self.view(created);
        if let Some(listed) = self
            .listed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            listed.push(view);
        }
        Ok(email)
    }

    async fn attachments(&self) -> PortResult<Vec<AttachmentView>> {
        let attachments = self.support.list_attachments(self.case_name).await?;
        Ok(attachments
            .into_iter()
            .map(|a| AttachmentView {
                id: last_segment(&a.name),
                filename: a.filename.clone(),
                mime_type: a.mime_type.clone(),
                size_bytes: a.size_bytes,
                author: a.creator.display_name.clone(),
                created_at: a.create_time,
                by_connector: self.is_own(a.creator.email.as_deref()),
                raw: AttachmentRef::Google(a),
            })
            .collect())
    }

    async fn download(&self, attachment: &AttachmentView) -> PortResult<ByteStream> {
        match &attachment.raw {
            AttachmentRef::Google(a) => self.support.download_attachment(a).await,
            AttachmentRef::Crm(_) => Err(crate::error::PortError::Invalid(
                "a CRM attachment cannot be downloaded from Google".into(),
            )),
        }
    }

    async fn upload(&self, upload: AttachmentUpload) -> PortResult<(String, Option<String>)> {
        let a = self
            .support
            .upload_attachment(self.case_name, upload)
            .await?;
        Ok((last_segment(&a.name), a.creator.email))
    }
}

pub(crate) struct CompanySide<'a> {
    pub crm: &'a dyn Crm,
    pub case_id: &'a str,
}

#[async_trait]
impl CaseSide for CompanySide<'_> {
    fn side(&self) -> Side {
        Side::Company
    }

    async fn comments(&self, since: Option<DateTime<Utc>>) -> PortResult<Vec<CommentView>> {
        let comments = self.crm.list_comments(self.case_id, since).await?;
        Ok(comments
            .into_iter()
            .map(|c| CommentView {
                id: c.id,
                author: c.author_name,
                body: c.body,
                created_at: c.created_at,
                by_connector: c.by_connector,
            })
            .collect())
    }

    async fn add_comment(&self, body: &str) -> PortResult<Option<String>> {
        self.crm.add_comment(self.case_id, body).await.map(|_| None)
    }

    async fn attachments(&self) -> PortResult<Vec<AttachmentView>> {
        let attachments = self.crm.list_attachments(self.case_id).await?;
        Ok(attachments
            .into_iter()
            .map(|a| AttachmentView {
                id: a.id.clone(),
                filename: a.filename.clone(),
                mime_type: a.mime_type.clone(),
                size_bytes: a.size_bytes,
                author: a.author_name.clone(),
                created_at: a.created_at,
                by_connector: a.by_connector,
                raw: AttachmentRef::Crm(a),
            })
            .collect())
    }

    async fn download(&self, attachment: &AttachmentView) -> PortResult<ByteStream> {
        match &attachment.raw {
            AttachmentRef::Crm(a) => self.crm.download_attachment(self.case_id, a).await,
            AttachmentRef::Google(_) => Err(crate::error::PortError::Invalid(
                "a Google attachment cannot be downloaded from the CRM".into(),
            )),
        }
    }

    async fn upload(&self, upload: AttachmentUpload) -> PortResult<(String, Option<String>)> {
        Ok((
            self.crm.upload_attachment(self.case_id, upload).await?.id,
            None,
        ))
    }
}
