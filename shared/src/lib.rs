//! casesync's shared crate: everything the function binaries and the local runner have in
//! common. Dependencies run one way (docs/ARCHITECTURE.md#layers): binaries → `config` → `adapters` and `tasks`
//! (side by side) → `ports` → `domain`, `error`, `clock` and `retry_policy`.

pub mod adapters;
pub mod clock;
#[cfg(feature = "csapi")]
pub mod compose;
pub mod config;
pub mod deploy;
pub mod domain;
pub mod echo;
pub mod error;
#[cfg(feature = "functions")]
pub mod function;
pub mod logging;
pub mod ports;
pub mod retry_policy;
#[cfg(feature = "shim")]
pub mod shim;
pub mod tasks;
pub mod worker;

#[cfg(any(test, feature = "test-support"))]
pub mod crm_contract;
#[cfg(any(test, feature = "test-support"))]
pub mod store_contract;
#[cfg(any(test, feature = "test-support"))]
pub mod support_contract;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;

pub use error::{ErrorClass, PortError};
