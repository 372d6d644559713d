//! casesync integration tests: one binary (it links once), one module per area.

mod csapi_contract;
mod firestore_pubsub;
mod jira_contract;
mod scenario;
mod terraform;
