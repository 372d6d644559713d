//! The domain model: what a case, a comment, an attachment and a mapping are, independent
//! of any API. Adapters translate their wire formats into these types.

pub mod case;
pub mod keys;
pub mod mapping;
pub mod markers;
pub mod priority;
#[cfg(test)]
mod proptests;

pub use case::*;
pub use keys::{CompanyCaseKey, Direction, GoogleCaseKey, Side, SyncMessage};
pub use mapping::{
    CaseMapping, Global, Lease, LedgerEntry, LedgerOutcome, Parked, RefusedItem, SyncState,
};
pub use priority::Priority;
