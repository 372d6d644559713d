//! cleanup-case-mappings (docs/ARCHITECTURE.md#cleanup-case-mappings): mappings of cases closed for 30 days are deleted, so the
//! store does not grow forever; and the dead letter of a case that has synced successfully
//! since is acknowledged (docs/FAILURES.md#dead-letters), so a dead-letter queue that is not empty means a
//! person is needed, not that a fault came and went.

use super::{Engine, TaskError};
use crate::domain::{CaseMapping, CompanyCaseKey, Direction, GoogleCaseKey};
use crate::error::PortResult;
use crate::ports::{DeadLetterMessage, DeadLetterQueue};
use tracing::info;

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CleanupReport {
    pub deleted: Vec<String>,
    /// Dead letters of cases that have synced since: acknowledged.
    pub dead_letters_acked: usize,
    /// Dead letters that still need a person (or a replay).
    pub dead_letters_kept: usize,
}

/// How many dead letters one cleanup run reads at most.
const MAX_DEAD_LETTERS_PER_RUN: usize = 1000;
const DEAD_LETTER_BATCH: usize = 100;

impl Engine {
    pub async fn cleanup_case_mappings(&self) -> Result<CleanupReport, TaskError> {
        let cutoff = self.clock.now() - self.settings.cleanup_after;
        let deleted = self.store.delete_resolved_before(cutoff).await?;
        for id in &deleted {
            info!(mapping = %id, "deleted the mapping of a case resolved more than the cleanup age ago");
        }
        Ok(CleanupReport {
            deleted,
            ..CleanupReport::default()
        })
    }

    /// Cleanup with the dead letters: acknowledges each whose case has had a successful
    /// sync of the same direction since it was dead-lettered, and is not parked.
    pub async fn cleanup_with_dead_letters(
        &self,
        dead_letters: &dyn DeadLetterQueue,
    ) -> Result<CleanupReport, TaskError> {
        let mut report = self.cleanup_case_mappings().await?;
        let mut read = 0;
        while read < MAX_DEAD_LETTERS_PER_RUN {
            let batch = dead_letters.read_dead_letters(DEAD_LETTER_BATCH).await?;
            if batch.is_empty() {
                break;
            }
            read += batch.len();
            let mut acks = Vec::new();
            for letter in &batch {
                if self.synced_since(letter).await? {
                    info!(case_key = %crate::logging::capped(&letter.case_key), dead_lettered_at = %letter.dead_lettered_at, "dead letter of a case that has synced since: acknowledged");
                    acks.push(letter.handle.clone());
                } else {
                    report.dead_letters_kept += 1;
                }
            }
            report.dead_letters_acked += acks.len();
            dead_letters.ack_dead_letters(&acks).await?;
        }
        Ok(report)
    }

    async fn synced_since(&self, letter: &DeadLetterMessage) -> PortResult<bool> {
        let Some(direction) = letter.direction else {
            return Ok(false);
        };
        let mapping: Option<CaseMapping> = match direction {
            Direction::GoogleToCompany => match GoogleCaseKey::from_case_name(&letter.case_key) {
                Ok(k) => self.store.find_by_google(&k).await?,
                Err(_) => None,
            },
            Direction::CompanyToGoogle => match CompanyCaseKey::new(&letter.case_key) {
                Ok(k) => self.store.find_by_company(&k).await?,
                Err(_) => None,
            },
        };
        let source = direction.source();
        Ok(mapping.is_some_and(|m| {
            m.parked.as_ref().is_none_or(|p| p.side != source)
                && m.synced_at(source)
                    .is_some_and(|synced| synced > letter.dead_lettered_at)
        }))
    }
}
