//! Helpers shared by the integration tests.

pub mod emulators;
pub mod scenario;
