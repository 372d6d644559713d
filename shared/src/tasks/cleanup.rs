//! cleanup-case-mappings (§6): mappings of cases closed for 30 days are deleted, so the
//! store does not grow forever.

use super::{Engine, TaskError};
use tracing::info;

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CleanupReport {
    pub deleted: Vec<String>,
}

impl Engine {
    pub async fn cleanup_case_mappings(&self) -> Result<CleanupReport, TaskError> {
        let cutoff = self.clock.now() - self.settings.cleanup_after;
        let deleted = self.store.delete_resolved_before(cutoff).await?;
        for id in &deleted {
            info!(mapping = %id, "deleted the mapping of a case resolved more than the cleanup age ago");
        }
        Ok(CleanupReport { deleted })
    }
}
