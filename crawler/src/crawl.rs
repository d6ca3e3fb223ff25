//! Crawling: which archives the crawler holds, and how it learns of more.
//!
//! Every archive is a replica in the data directory (`archives/<hex>`), opened with the store's
//! lock, added to the replication node (so peers that have it fill it in) and followed by the
//! ingester. Archives are learned from the data directory at start, from seed URLs, from the
//! follow lists, mentions and reply references of indexed statuses, and from `POST /v1/crawl`.

use std::collections::HashMap;
use std::sync::Arc;

use fritter_common::crypto::PublicKey;
use fritter_common::model::ArchiveUrl;
use fritter_common::replicate::Node;
use fritter_common::store::{OpenArchive, Store, StoreError};
use fritter_common::swarm::Swarm;
use parking_lot::Mutex;

use crate::ingest::Ingester;

/// Why an archive could not be added.
#[derive(Debug, thiserror::Error)]
pub enum CrawlError {
    #[error("the crawler holds its maximum of {0} archives")]
    Full(usize),
    #[error(transparent)]
    Store(#[from] StoreError),
}

struct Held {
    _open: OpenArchive,
    watcher: tokio::task::JoinHandle<()>,
}

/// The set of archives the crawler holds.
pub struct Crawler {
    store: Store,
    ingest: Arc<Ingester>,
    swarm: Option<Swarm>,
    held: Mutex<HashMap<PublicKey, Held>>,
    failed: Mutex<HashMap<PublicKey, String>>,
    /// Serializes `learn`, so two callers learning one key never both try to open it.
    opening: Mutex<()>,
    max_archives: usize,
}

impl Crawler {
    /// A crawler over `store`, replicating through `swarm` (if any).
    pub fn new(
        store: Store,
        ingest: Arc<Ingester>,
        swarm: Option<Swarm>,
        max_archives: usize,
    ) -> Arc<Crawler> {
        Arc::new(Crawler {
            store,
            ingest,
            swarm,
            held: Mutex::new(HashMap::new()),
            failed: Mutex::new(HashMap::new()),
            opening: Mutex::new(()),
            max_archives,
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn ingest(&self) -> &Arc<Ingester> {
        &self.ingest
    }

    pub fn node(&self) -> Option<&Node> {
        self.swarm.as_ref().map(Swarm::node)
    }

    /// The swarm replicating the archives: DHT, mDNS, direct peers.
    pub fn swarm(&self) -> Option<&Swarm> {
        self.swarm.as_ref()
    }

    /// Holds, replicates and indexes the archive `key`; false if it was held already. Must run
    /// inside a tokio runtime.
    pub fn learn(&self, key: PublicKey) -> Result<bool, CrawlError> {
        if self.held.lock().contains_key(&key) {
            return Ok(false);
        }
        let _opening = self.opening.lock();
        if self.held.lock().contains_key(&key) {
            return Ok(false);
        }
        if self.held.lock().len() >= self.max_archives {
            return Err(CrawlError::Full(self.max_archives));
        }
        match self.store.open_replica(&key) {
            Ok(open) => {
                self.failed.lock().remove(&key);
                Ok(self.follow(open))
            }
            Err(e) => {
                self.failed.lock().insert(key, e.to_string());
                Err(e.into())
            }
        }
    }

    /// Follows an archive already open (a replica, or in tests a writer's own archive).
    pub fn follow(&self, open: OpenArchive) -> bool {
        let log = open.log().clone();
        let key = log.key();
        let mut held = self.held.lock();
        if held.contains_key(&key) {
            return false;
        }
        if let Some(swarm) = &self.swarm {
            swarm.add(log.clone());
        }
        let watcher = self.ingest.watch(&log);
        self.ingest.add_source(log);
        held.insert(
            key,
            Held {
                _open: open,
                watcher,
            },
        );
        tracing::debug!("following archive {key}");
        true
    }

    /// Learns an archive from a URL (`hyper://<key>/...` or a bare key).
    pub fn learn_url(&self, url: &str) -> Result<(PublicKey, bool), anyhow::Error> {
        let url = ArchiveUrl::parse_lenient(url)?;
        let key: PublicKey = url.key().into();
        let new = self.learn(key)?;
        Ok((key, new))
    }

    /// Every archive stored in the data directory.
    pub fn learn_stored(&self) -> anyhow::Result<usize> {
        let mut n = 0;
        for key in self.store.archives()? {
            match self.learn(key) {
                Ok(true) => n += 1,
                Ok(false) => {}
                Err(e) => tracing::warn!("archive {key}: {e}"),
            }
        }
        Ok(n)
    }

    /// The log of a held archive.
    pub fn log(&self, key: &PublicKey) -> Option<Arc<fritter_common::log::Log>> {
        self.held.lock().get(key).map(|h| h._open.log().clone())
    }

    /// Stops holding an archive and deletes its replica from the data directory (the hosting
    /// service frees the space of archives it no longer hosts). True if it was held. The
    /// ingester keeps the documents it committed.
    pub fn forget(&self, key: &PublicKey) -> std::io::Result<bool> {
        let Some(held) = self.held.lock().remove(key) else {
            return Ok(false);
        };
        held.watcher.abort();
        self.ingest.remove_source(key);
        if let Some(swarm) = &self.swarm {
            swarm.remove(key);
        }
        // Releases the store's lock before the files go.
        drop(held);
        match std::fs::remove_dir_all(self.store.archive_dir(key)) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// Whether the archive is held.
    pub fn holds(&self, key: &PublicKey) -> bool {
        self.held.lock().contains_key(key)
    }

    /// Number of archives held.
    pub fn held_count(&self) -> usize {
        self.held.lock().len()
    }

    /// Archives that could not be opened, with the error.
    pub fn failures(&self) -> HashMap<PublicKey, String> {
        self.failed.lock().clone()
    }

    /// Learns every key the ingester reports, until the channel closes.
    pub fn spawn_discovery(
        self: &Arc<Self>,
        mut rx: tokio::sync::mpsc::Receiver<PublicKey>,
    ) -> tokio::task::JoinHandle<()> {
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            while let Some(key) = rx.recv().await {
                let Some(me) = me.upgrade() else { break };
                if let Err(e) = me.learn(key) {
                    tracing::debug!("not crawling {key}: {e}");
                }
            }
        })
    }

    /// Stops following every archive (the ingester keeps what it committed) and stops
    /// replicating.
    pub async fn shutdown(&self) {
        self.close();
        if let Some(swarm) = &self.swarm {
            swarm.shutdown().await;
        }
    }

    /// Stops following every archive (the ingester keeps what it committed).
    pub fn close(&self) {
        let held: Vec<(PublicKey, Held)> = self.held.lock().drain().collect();
        for (key, h) in held {
            h.watcher.abort();
            self.ingest.remove_source(&key);
            if let Some(swarm) = &self.swarm {
                swarm.remove(&key);
            }
        }
    }
}
