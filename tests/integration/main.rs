//! casesync integration tests: one binary (it links once), one module per area.

mod csapi_contract;
mod jira_contract;
