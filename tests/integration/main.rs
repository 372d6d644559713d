//! casesync integration tests: one binary (it links once), one module per area.

mod bad_config;
mod csapi_contract;
mod e2e;
mod firestore_pubsub;
mod jira_contract;
mod local_runner;
mod queue_crash;
mod rt_contract;
mod rt_scenario;
mod scenario;
mod shim_hardening;
mod terraform;
