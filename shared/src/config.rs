//! Configuration: placeholder, filled in below.
