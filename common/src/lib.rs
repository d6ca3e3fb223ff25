//! Shared core of Fritter: the Hypercore-compatible signed log, its durable storage, the archive
//! (files written as log entries) and the Fritter data model.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod crypto;
pub mod log;
pub mod model;
