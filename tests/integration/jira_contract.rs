//! The CRM contract suite run against the Jira adapter and the Jira emulator.
