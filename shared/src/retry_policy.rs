//! The one place that holds every retry, backoff, schedule and dead-letter number
//! (docs/ARCHITECTURE.md#exact-numbers). The embedded queue uses them locally, the Pub/Sub subscriptions
//! and Scheduler jobs in `terraform/` must equal them (a test parses Terraform and compares),
//! and tests use the fast profile of the same shape.

use std::time::Duration;

/// Retry settings of a Cloud Scheduler job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedulerRetry {
    pub function: &'static str,
    /// Cron expression, in UTC.
    pub schedule: &'static str,
    pub retry_count: u32,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    pub max_retry_duration: Duration,
    pub attempt_deadline: Duration,
}

pub const POLL_GOOGLE_JOB: SchedulerRetry = SchedulerRetry {
    function: "poll-google",
    schedule: "* * * * *",
    retry_count: 3,
    min_backoff: Duration::from_secs(5),
    max_backoff: Duration::from_secs(20),
    max_retry_duration: Duration::from_secs(60),
    attempt_deadline: Duration::from_secs(120),
};

pub const POLL_COMPANY_JOB: SchedulerRetry = SchedulerRetry {
    function: "poll-company",
    ..POLL_GOOGLE_JOB
};

pub const DETECT_OUTAGES_JOB: SchedulerRetry = SchedulerRetry {
    function: "detect-outages",
    schedule: "*/5 * * * *",
    retry_count: 3,
    min_backoff: Duration::from_secs(30),
    max_backoff: Duration::from_secs(120),
    max_retry_duration: Duration::from_secs(300),
    attempt_deadline: Duration::from_secs(180),
};

pub const CLEANUP_JOB: SchedulerRetry = SchedulerRetry {
    function: "cleanup-case-mappings",
    schedule: "0 3 * * *",
    retry_count: 5,
    min_backoff: Duration::from_secs(60),
    max_backoff: Duration::from_secs(3600),
    max_retry_duration: Duration::from_secs(24 * 3600),
    attempt_deadline: Duration::from_secs(1800),
};

pub const SCHEDULER_JOBS: [SchedulerRetry; 4] = [
    POLL_GOOGLE_JOB,
    POLL_COMPANY_JOB,
    DETECT_OUTAGES_JOB,
    CLEANUP_JOB,
];

/// Topic names; the topic gives a sync message its direction (docs/ARCHITECTURE.md#sync-messages). The original design calls them
/// `google-case-updates` and `company-case-updates`, but Pub/Sub refuses topic names that
/// start with `goog`, so both carry the `casesync-` prefix.
pub const GOOGLE_UPDATES_TOPIC: &str = "casesync-google-case-updates";
pub const COMPANY_UPDATES_TOPIC: &str = "casesync-company-case-updates";

/// Retry and dead-letter settings of the sync queues: a Pub/Sub push subscription in
/// production, the embedded SQLite queue locally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueuePolicy {
    pub ack_deadline: Duration,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// Deliveries before a message goes to the dead-letter topic.
    pub max_delivery_attempts: u32,
    pub message_retention: Duration,
    /// Cloud Run request timeout of the sync services; also the lease a sync takes.
    pub request_timeout: Duration,
    pub dead_letter_topic_retention: Duration,
    pub dead_letter_subscription_retention: Duration,
}

pub const PRODUCTION_QUEUE: QueuePolicy = QueuePolicy {
    ack_deadline: Duration::from_secs(600),
    min_backoff: Duration::from_secs(10),
    max_backoff: Duration::from_secs(600),
    max_delivery_attempts: 100,
    message_retention: Duration::from_secs(7 * 24 * 3600),
    request_timeout: Duration::from_secs(540),
    dead_letter_topic_retention: Duration::from_secs(31 * 24 * 3600),
    dead_letter_subscription_retention: Duration::from_secs(7 * 24 * 3600),
};

/// The fast profile tests use: same shape, small numbers (docs/ARCHITECTURE.md#exact-numbers).
pub const FAST_QUEUE: QueuePolicy = QueuePolicy {
    ack_deadline: Duration::from_secs(30),
    min_backoff: Duration::from_secs(1),
    max_backoff: Duration::from_secs(2),
    max_delivery_attempts: 5,
    message_retention: Duration::from_secs(3600),
    request_timeout: Duration::from_secs(30),
    dead_letter_topic_retention: Duration::from_secs(3600),
    dead_letter_subscription_retention: Duration::from_secs(3600),
};

impl QueuePolicy {
    /// The delay before delivery attempt `attempt + 1`, after `attempt` failures (1-based):
    /// exponential from `min_backoff`, capped at `max_backoff`, as Pub/Sub's retry policy.
    pub fn backoff_after(&self, failed_attempts: u32) -> Duration {
        let exponent = failed_attempts.saturating_sub(1).min(20);
        let delay = self.min_backoff.saturating_mul(1u32 << exponent);
        delay.min(self.max_backoff)
    }

    pub fn by_name(name: &str) -> Option<QueuePolicy> {
        match name {
            "production" => Some(PRODUCTION_QUEUE),
            "fast" => Some(FAST_QUEUE),
            _ => None,
        }
    }
}

/// `Retry-After` up to this long is waited out in process; a longer one answers retryable
/// (docs/FAILURES.md#failure-classes).
pub const MAX_IN_PROCESS_RETRY_AFTER: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_exponentially_and_is_capped() {
        let p = PRODUCTION_QUEUE;
        assert_eq!(p.backoff_after(1), Duration::from_secs(10));
        assert_eq!(p.backoff_after(2), Duration::from_secs(20));
        assert_eq!(p.backoff_after(3), Duration::from_secs(40));
        assert_eq!(p.backoff_after(7), Duration::from_secs(600));
        assert_eq!(p.backoff_after(100), Duration::from_secs(600));
        assert_eq!(FAST_QUEUE.backoff_after(1), Duration::from_secs(1));
        assert_eq!(FAST_QUEUE.backoff_after(5), Duration::from_secs(2));
    }

    #[test]
    fn poll_jobs_share_their_retry_settings() {
        assert_eq!(POLL_COMPANY_JOB.retry_count, POLL_GOOGLE_JOB.retry_count);
        assert_eq!(POLL_COMPANY_JOB.function, "poll-company");
    }
}
