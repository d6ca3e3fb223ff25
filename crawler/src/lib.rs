//! The crawler: holds replicas of public archives, validates every entry, indexes statuses,
//! profiles and follow lists in tantivy, and answers the views pure P2P cannot (mentions, whole
//! threads, trending tags, search) over an HTTP API.
//!
//! - [`crawl`]: which archives are held and how more are learned; replication through the node.
//! - [`ingest`]: the ingest thread, from logs to index, with per-archive checkpoints.
//! - [`index`]: schema, tokenizer, query grammar and the queries behind each view.
//! - [`api`]: the axum router, its limits and its OpenAPI document.
//! - [`serve`]: [`serve::Server`], the whole crawler assembled, on the shared HTTP server loop
//!   ([`fritter_common::http`]); [`cli`]: the command line that runs it; [`config`]: its settings.
//! - [`pages`]: the read-only web pages (`web/crawler/`), served by the same router.
//! - [`validate`]: the `check` command.
//! - [`hosting`]: the hosting service (signup by proof of ownership, re-hosting with quotas).
//!
//! ```no_run
//! use fritter_crawler::config::Config;
//! use fritter_crawler::serve::Server;
//!
//! # async fn run() -> anyhow::Result<()> {
//! let config = Config {
//!     data_dir: "/tmp/crawler-example".into(),
//!     http: "127.0.0.1:0".parse()?,
//!     ..Config::default()
//! };
//! let server = Server::bind(config).await?;
//! println!("API on http://{}/", server.http_addr());
//! server.shutdown().await
//! # }
//! ```
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod api;
pub mod cli;
pub mod config;
pub mod crawl;
pub mod hosting;
pub mod index;
pub mod ingest;
pub mod pages;
pub mod serve;
pub mod validate;

/// Tunes glibc's malloc for the ingest thread: it allocates a few small JSON trees per entry,
/// and with the default thresholds its arena kept growing (`mprotect`) and trimming around
/// them, ~15% of the thread's time. A larger top pad and trim threshold keep the arena's
/// memory mapped between entries. Call once, first thing in `main`.
pub fn tune_allocator() {
    // SAFETY: `mallopt` only sets two of glibc's malloc parameters; it is called before any
    // other thread exists.
    unsafe {
        libc::mallopt(libc::M_TOP_PAD, 16 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
    }
}
