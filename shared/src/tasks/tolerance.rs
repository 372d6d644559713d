//! The latency tolerance (docs/ARCHITECTURE.md#the-tolerance-table): how long a case may go unsynced before casesync says so,
//! by priority and by how fresh its content is.

use crate::domain::Priority;
use chrono::Duration;

/// How fresh a case's content is (buckets: [0, 1 h), [1 h, 24 h), [24 h, ∞)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    Fresh,
    Recent,
    Stale,
}

impl Freshness {
    pub fn of_age(age: Duration) -> Freshness {
        if age < Duration::hours(1) {
            Freshness::Fresh
        } else if age < Duration::hours(24) {
            Freshness::Recent
        } else {
            Freshness::Stale
        }
    }
}

/// The table of docs/ARCHITECTURE.md#the-tolerance-table, in minutes.
pub fn tolerance(priority: Priority, freshness: Freshness) -> Duration {
    let minutes = match (priority, freshness) {
        (_, Freshness::Fresh) => 10,
        (Priority::P0, Freshness::Recent) => 10,
        (Priority::P0, Freshness::Stale) => 15,
        (Priority::P1, Freshness::Recent) => 15,
        (Priority::P1, Freshness::Stale) => 60,
        (Priority::P2, Freshness::Recent) => 20,
        (Priority::P2, Freshness::Stale) => 120,
        (Priority::P3, Freshness::Recent) => 20,
        (Priority::P3, Freshness::Stale) => 240,
        (Priority::P4, Freshness::Recent) => 30,
        (Priority::P4, Freshness::Stale) => 240,
    };
    Duration::minutes(minutes)
}
