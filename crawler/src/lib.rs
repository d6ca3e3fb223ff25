//! The crawler: for now, validation of every archive held in a data directory (the first step
//! of crawling: verify the log, then check every entry against the schema). Replication,
//! indexing and the HTTP API build on this.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod validate;
