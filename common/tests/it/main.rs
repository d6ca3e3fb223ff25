//! The integration tests of `fritter-common`, linked as one test binary: one module per concern
//! (log storage under faults, replication, discovery, the Hypercore vectors), so CI compiles and
//! links the crate's tests once instead of once per file.
//!
//! They share one process and run in parallel. A test that measures the whole process (open
//! descriptors, threads) runs itself in a child process of this binary through
//! [`alone::in_own_process`], so what other tests do at the same time cannot change its result.

// Tests unwrap freely: a panic is a failed test with its cause.
#![allow(clippy::unwrap_used)]

mod alone;
mod replicate_support;

mod discovery_dht;
mod discovery_direct;
mod discovery_mdns;
mod discovery_offline;
mod hypercore_vectors;
mod log_concurrency;
mod log_disk_full;
mod log_file_cache;
mod log_io_errors;
mod log_power_loss;
mod log_torn_files;
mod log_views;
mod replicate_faults;
mod replicate_hostile;
mod replicate_js;
mod replicate_log_batch;
mod replicate_many;
mod replicate_partition;
mod replicate_rust;
mod swarm;
