//! What the handlers share: the crawler, the API's limits and limiters, and the coverage
//! figures every answer carries (measured at most once a second).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::Semaphore;

use super::{ApiConfig, ApiError, RateLimiter};
use crate::crawl::Crawler;

/// What the handlers share. Clone is cheap.
#[derive(Clone)]
pub struct AppState {
    pub(super) inner: Arc<Inner>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

pub(super) struct Inner {
    pub(super) crawler: Arc<Crawler>,
    pub(super) config: ApiConfig,
    pub(super) limiter: RateLimiter,
    pub(super) crawl_limiter: RateLimiter,
    pub(super) queries: Semaphore,
    pub(super) streams: Arc<Semaphore>,
    pub(super) coverage: parking_lot::RwLock<(Instant, Coverage)>,
    /// Trending answers of the whole index by (window, limit), with the index generation and
    /// time they were computed at: reused while the index has not changed, for up to a second
    /// (the window moves with the clock). At most 3 windows × 100 limits.
    pub(super) trends: parking_lot::Mutex<HashMap<(String, usize), CachedTrends>>,
}

/// A trending answer with the index generation and time it was computed at.
pub(super) type CachedTrends = (u64, Instant, Value);

/// How much of the network the index covers, measured at most once a second.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Coverage {
    /// Archives the crawler holds.
    pub archives: usize,
    /// Archives indexed up to the length their log knows.
    pub synced: usize,
    /// Archives with entries known but not yet indexed (or not yet replicated).
    pub lagging: usize,
    /// Archives whose log could not be read or opened.
    pub errors: usize,
    /// The stream cursor: documents up to this ingest sequence are searchable.
    pub index_cursor: u64,
    /// When this was measured (RFC 3339).
    pub as_of: String,
}

impl AppState {
    pub fn new(crawler: Arc<Crawler>, config: ApiConfig) -> AppState {
        AppState {
            inner: Arc::new(Inner {
                crawler,
                limiter: RateLimiter::new(config.rate_per_sec, config.burst),
                crawl_limiter: RateLimiter::new(
                    config.crawl_per_minute / 60.0,
                    config.crawl_per_minute.max(1.0),
                ),
                queries: Semaphore::new(config.max_concurrent_queries.max(1)),
                streams: Arc::new(Semaphore::new(config.max_streams)),
                coverage: parking_lot::RwLock::new((
                    Instant::now() - Duration::from_secs(3600),
                    Coverage::default(),
                )),
                trends: parking_lot::Mutex::new(HashMap::new()),
                config,
            }),
        }
    }

    pub fn crawler(&self) -> &Arc<Crawler> {
        &self.inner.crawler
    }

    pub fn config(&self) -> &ApiConfig {
        &self.inner.config
    }

    /// Runs index work on a blocking thread, bounded in concurrency and time.
    pub(super) async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&crate::index::Index) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let deadline = Duration::from_millis(self.inner.config.request_timeout_ms);
        let _permit = tokio::time::timeout(deadline, self.inner.queries.acquire())
            .await
            .map_err(|_| ApiError::Busy)?
            .map_err(|_| ApiError::Busy)?;
        let index = self.inner.crawler.ingest().index().clone();
        let task = tokio::task::spawn_blocking(move || f(&index));
        match tokio::time::timeout(deadline, task).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => Err(ApiError::Internal(format!("query task failed: {e}"))),
            Err(_) => Err(ApiError::Timeout),
        }
    }

    /// The coverage figures, refreshed when older than a second.
    pub fn coverage(&self) -> Coverage {
        {
            let c = self.inner.coverage.read();
            if c.0.elapsed() < Duration::from_secs(1) {
                return c.1.clone();
            }
        }
        let cov = self.measure().0;
        *self.inner.coverage.write() = (Instant::now(), cov.clone());
        cov
    }

    /// Coverage plus the lagging and failing archives (a few of each).
    pub(super) fn measure(&self) -> (Coverage, Vec<Value>, Vec<Value>) {
        let crawler = &self.inner.crawler;
        let ingest = crawler.ingest();
        let sources = ingest.sources();
        let errors = ingest.errors();
        let failures = crawler.failures();
        let mut lagging_list = Vec::new();
        let (synced, lagging, cursor) = ingest.committed(|p| {
            let mut synced = 0;
            let mut lagging = 0;
            for (key, log) in &sources {
                let info = log.info();
                let cp = p.archives.get(&key.to_hex());
                let done = cp.map_or(0, |c| if c.fork == info.fork { c.next } else { 0 });
                if done >= info.length {
                    synced += 1;
                } else {
                    lagging += 1;
                    if lagging_list.len() < 10 {
                        lagging_list.push(json!({"archive": key.to_hex(), "indexed": done,
                            "stored": info.contiguous, "length": info.length}));
                    }
                }
            }
            (synced, lagging, p.next_iseq)
        });
        let error_list: Vec<Value> = errors
            .iter()
            .chain(failures.iter())
            .take(10)
            .map(|(k, e)| json!({"archive": k.to_hex(), "error": e}))
            .collect();
        (
            Coverage {
                archives: sources.len(),
                synced,
                lagging,
                errors: errors.len() + failures.len(),
                index_cursor: cursor,
                as_of: now_rfc3339(),
            },
            lagging_list,
            error_list,
        )
    }
}

pub(super) fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

pub(super) fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}
