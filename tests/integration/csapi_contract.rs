//! Contract tests of the Cloud Support API adapter against the CSAPI emulator.
