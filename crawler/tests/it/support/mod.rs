//! What the crawler's integration tests share.

use std::path::Path;
use std::sync::Arc;

use fritter_crawler::index::Index;
use fritter_crawler::ingest::{IngestConfig, Ingester};

/// A fresh index in `dir/index` with an ingester that commits every 20 ms (tests wait for
/// commits, not for the 200 ms a real crawler allows itself).
pub(crate) fn fast_ingest(dir: &Path) -> Arc<Ingester> {
    let (index, payload) = Index::open(&dir.join("index")).unwrap();
    Ingester::start(
        Arc::new(index),
        payload,
        IngestConfig {
            commit_interval_ms: 20,
            ..IngestConfig::default()
        },
        None,
    )
    .unwrap()
}
