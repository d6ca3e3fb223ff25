//! Crawling: which archives the crawler holds, and how it learns of more.
//!
//! Every archive is a replica in the data directory (`archives/<hex>`), opened with the store's
//! lock, added to the replication node (so peers that have it fill it in) and followed by the
//! ingester. How an archive was learned decides how fast it gets in and what it may bring in
//! ([`Origin`]), so a flood of junk keys from one source never crowds out the archives people
//! follow:
//!
//! - **Trusted**: seeds, and every archive in the current `/follows.json` of a trusted archive
//!   (read from the index after each commit). Held at once, up to `max_archives`; their follow
//!   lists are trusted in turn, so the follow graph reachable from the seeds gets in hop by hop
//!   without waiting behind anything.
//! - **Requested**: `POST /v1/crawl` (rate-limited per client by the API), the hosting service
//!   and the data directory at start. Held at once, up to `max_archives`; their follow lists are
//!   not trusted.
//! - **Heard**: every other key the ingester reports (mentions, replies, follow lists of
//!   untrusted archives, old follow lists). They wait in a bounded queue and are admitted one by
//!   one at `heard_per_sec` while fewer than `max_heard` heard archives are held. A heard
//!   archive that a trusted one follows is promoted to trusted.
//!
//! So a spam archive naming 10,000 keys, or 10,000 junk archives naming each other, can take at
//! most `max_heard` places (and their descriptors and memory), never a trusted one's.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use fritter_common::crypto::PublicKey;
use fritter_common::model::ArchiveUrl;
use fritter_common::replicate::Node;
use fritter_common::store::{OpenArchive, Store, StoreError};
use fritter_common::swarm::Swarm;
use parking_lot::Mutex;

use crate::index::search;
use crate::ingest::Ingester;

/// Why an archive could not be added.
#[derive(Debug, thiserror::Error)]
pub enum CrawlError {
    #[error("the crawler holds its maximum of {0} archives")]
    Full(usize),
    #[error("the crawler holds its maximum of {0} archives heard of in mentions, replies and untrusted follow lists")]
    HeardFull(usize),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How an archive came to be held. See the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A seed, or followed by a trusted archive: its follow list is trusted in turn.
    Trusted,
    /// Asked for (`POST /v1/crawl`, hosting, the data directory at start).
    Requested,
    /// Named in a mention, a reply or an untrusted follow list; admitted through a bounded lane.
    Heard,
}

/// Bounds on what the crawler holds and how fast it takes in keys nobody trusted vouched for
/// (`[crawl]` in the config file; `max_archives` is the top-level setting).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CrawlLimits {
    /// Most archives held in all.
    #[serde(skip)]
    pub max_archives: usize,
    /// Most heard archives held at once.
    pub max_heard: usize,
    /// Heard archives admitted per second at most.
    pub heard_per_sec: f64,
    /// Heard keys waiting for a place; more are dropped.
    pub max_pending_heard: usize,
    /// Keys taken from one trusted follow list at most.
    pub max_vouched_per_list: usize,
}

impl Default for CrawlLimits {
    fn default() -> Self {
        CrawlLimits {
            max_archives: 100_000,
            max_heard: 1000,
            heard_per_sec: 50.0,
            max_pending_heard: 100_000,
            max_vouched_per_list: 10_000,
        }
    }
}

/// How often trusted follow lists that failed to be taken in are tried again.
const RETRY: Duration = Duration::from_secs(2);

struct Held {
    open: OpenArchive,
    watcher: tokio::task::JoinHandle<()>,
    origin: Origin,
}

/// Where the follow list of a trusted archive was last read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scan {
    /// Never read.
    New,
    /// Read at this committed checkpoint (fork, next).
    At(u64, u64),
    /// Some keys could not be taken in; read again from then.
    RetryAt(Instant),
}

#[derive(Default)]
struct HeldSet {
    map: HashMap<PublicKey, Held>,
    heard: usize,
    /// Trusted archives and where their follow lists were read; hex keys kept for the index.
    scans: HashMap<PublicKey, (String, Scan)>,
}

impl HeldSet {
    /// Promotes a held archive to trusted; true if it was not.
    fn trust(&mut self, key: &PublicKey) -> bool {
        let Some(h) = self.map.get_mut(key) else {
            return false;
        };
        if h.origin == Origin::Trusted {
            return false;
        }
        if h.origin == Origin::Heard {
            self.heard -= 1;
        }
        h.origin = Origin::Trusted;
        self.scans.insert(*key, (key.to_hex(), Scan::New));
        true
    }

    fn remove(&mut self, key: &PublicKey) -> Option<Held> {
        let h = self.map.remove(key)?;
        if h.origin == Origin::Heard {
            self.heard -= 1;
        }
        self.scans.remove(key);
        Some(h)
    }
}

/// Held archives by origin, and heard keys waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CrawlCounts {
    pub trusted: usize,
    pub requested: usize,
    pub heard: usize,
    pub pending_heard: usize,
}

/// Heard keys waiting for a place, each once, oldest first.
#[derive(Default)]
struct Pending {
    order: VecDeque<PublicKey>,
    queued: HashSet<PublicKey>,
}

/// The set of archives the crawler holds.
pub struct Crawler {
    store: Store,
    ingest: Arc<Ingester>,
    swarm: Option<Swarm>,
    held: Mutex<HeldSet>,
    failed: Mutex<HashMap<PublicKey, String>>,
    pending: Mutex<Pending>,
    /// Serializes opening, so two callers learning one key never both try to open it.
    opening: Mutex<()>,
    limits: CrawlLimits,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for Crawler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Crawler").finish_non_exhaustive()
    }
}

impl Crawler {
    /// A crawler over `store`, replicating through `swarm` (if any), with the default limits
    /// but for `max_archives`.
    pub fn new(
        store: Store,
        ingest: Arc<Ingester>,
        swarm: Option<Swarm>,
        max_archives: usize,
    ) -> Arc<Crawler> {
        Crawler::with_limits(
            store,
            ingest,
            swarm,
            CrawlLimits {
                max_archives,
                ..CrawlLimits::default()
            },
        )
    }

    /// A crawler with every limit given.
    pub fn with_limits(
        store: Store,
        ingest: Arc<Ingester>,
        swarm: Option<Swarm>,
        limits: CrawlLimits,
    ) -> Arc<Crawler> {
        Arc::new(Crawler {
            store,
            ingest,
            swarm,
            held: Mutex::new(HeldSet::default()),
            failed: Mutex::new(HashMap::new()),
            pending: Mutex::new(Pending::default()),
            opening: Mutex::new(()),
            limits,
            tasks: Mutex::new(Vec::new()),
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

    pub fn limits(&self) -> &CrawlLimits {
        &self.limits
    }

    /// Holds, replicates and indexes the archive `key` as requested (`POST /v1/crawl`, hosting);
    /// false if it was held already. Must run inside a tokio runtime.
    pub fn learn(&self, key: PublicKey) -> Result<bool, CrawlError> {
        self.admit(key, Origin::Requested)
    }

    /// Holds `key` as a seed: trusted, so the archives it follows are held too.
    pub fn learn_seed(&self, url: &str) -> Result<(PublicKey, bool), anyhow::Error> {
        let url = ArchiveUrl::parse_lenient(url)?;
        let key: PublicKey = url.key().into();
        let new = self.admit(key, Origin::Trusted)?;
        Ok((key, new))
    }

    /// Holds `key` with the given origin; false if it was held already (a trusted origin then
    /// promotes it). Must run inside a tokio runtime.
    pub fn admit(&self, key: PublicKey, origin: Origin) -> Result<bool, CrawlError> {
        let check = |held: &mut HeldSet| -> Option<Result<bool, CrawlError>> {
            if held.map.contains_key(&key) {
                if origin == Origin::Trusted {
                    held.trust(&key);
                }
                return Some(Ok(false));
            }
            if held.map.len() >= self.limits.max_archives {
                return Some(Err(CrawlError::Full(self.limits.max_archives)));
            }
            if origin == Origin::Heard && held.heard >= self.limits.max_heard {
                return Some(Err(CrawlError::HeardFull(self.limits.max_heard)));
            }
            None
        };
        if let Some(r) = check(&mut self.held.lock()) {
            return r;
        }
        let _opening = self.opening.lock();
        if let Some(r) = check(&mut self.held.lock()) {
            return r;
        }
        match self.store.open_replica(&key) {
            Ok(open) => {
                self.failed.lock().remove(&key);
                Ok(self.follow_as(open, origin))
            }
            Err(e) => {
                self.failed.lock().insert(key, e.to_string());
                Err(e.into())
            }
        }
    }

    /// Follows an archive already open (a replica, or in tests a writer's own archive), as
    /// requested.
    pub fn follow(&self, open: OpenArchive) -> bool {
        self.follow_as(open, Origin::Requested)
    }

    /// Follows an archive already open with the given origin.
    pub fn follow_as(&self, open: OpenArchive, origin: Origin) -> bool {
        let log = open.log().clone();
        let key = log.key();
        let mut held = self.held.lock();
        if held.map.contains_key(&key) {
            if origin == Origin::Trusted {
                held.trust(&key);
            }
            return false;
        }
        if let Some(swarm) = &self.swarm {
            swarm.add(log.clone());
        }
        let watcher = self.ingest.watch(&log);
        self.ingest.add_source(log);
        match origin {
            Origin::Trusted => {
                held.scans.insert(key, (key.to_hex(), Scan::New));
            }
            Origin::Heard => held.heard += 1,
            Origin::Requested => {}
        }
        held.map.insert(
            key,
            Held {
                open,
                watcher,
                origin,
            },
        );
        tracing::debug!(?origin, "following archive {key}");
        true
    }

    /// Learns an archive from a URL (`hyper://<key>/...` or a bare key), as requested.
    pub fn learn_url(&self, url: &str) -> Result<(PublicKey, bool), anyhow::Error> {
        let url = ArchiveUrl::parse_lenient(url)?;
        let key: PublicKey = url.key().into();
        let new = self.learn(key)?;
        Ok((key, new))
    }

    /// Every archive stored in the data directory (as requested: seeds and the follow lists
    /// of trusted archives make the trusted ones trusted again).
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
        self.held.lock().map.get(key).map(|h| h.open.log().clone())
    }

    /// How a held archive came to be held.
    pub fn origin(&self, key: &PublicKey) -> Option<Origin> {
        self.held.lock().map.get(key).map(|h| h.origin)
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
        self.held.lock().map.contains_key(key)
    }

    /// Number of archives held.
    pub fn held_count(&self) -> usize {
        self.held.lock().map.len()
    }

    /// Held archives by origin, and heard keys waiting for a place.
    pub fn counts(&self) -> CrawlCounts {
        let held = self.held.lock();
        let trusted = held.scans.len();
        CrawlCounts {
            trusted,
            requested: held.map.len() - trusted - held.heard,
            heard: held.heard,
            pending_heard: self.pending.lock().order.len(),
        }
    }

    /// Archives that could not be opened, with the error.
    pub fn failures(&self) -> HashMap<PublicKey, String> {
        self.failed.lock().clone()
    }

    /// Starts learning: keys the ingester reports (until the channel closes) go to the heard
    /// lane, and trusted follow lists are read after every index commit.
    pub fn spawn_discovery(
        self: &Arc<Self>,
        rx: tokio::sync::mpsc::Receiver<PublicKey>,
    ) -> tokio::task::JoinHandle<()> {
        let vouching = tokio::spawn(vouch_loop(
            Arc::downgrade(self),
            self.ingest.subscribe_commits(),
        ));
        self.tasks.lock().push(vouching);
        tokio::spawn(heard_lane(Arc::downgrade(self), rx))
    }

    /// Queues a heard key; false if it is held, queued already, or the queue is full.
    fn hear(&self, key: PublicKey) -> bool {
        if self.holds(&key) {
            return false;
        }
        let mut p = self.pending.lock();
        if p.order.len() >= self.limits.max_pending_heard || !p.queued.insert(key) {
            return false;
        }
        p.order.push_back(key);
        true
    }

    /// The next heard key to admit, if there is room for one.
    fn next_heard(&self) -> Option<PublicKey> {
        if self.held.lock().heard >= self.limits.max_heard {
            return None;
        }
        let mut p = self.pending.lock();
        let key = p.order.pop_front()?;
        p.queued.remove(&key);
        Some(key)
    }

    /// Reads the follow list of every trusted archive whose committed checkpoint moved, and
    /// holds what it names as trusted.
    fn vouch_pass(&self) {
        let now = Instant::now();
        let trusted: Vec<(PublicKey, String, Scan)> = self
            .held
            .lock()
            .scans
            .iter()
            .filter(|(_, (_, s))| !matches!(s, Scan::RetryAt(at) if *at > now))
            .map(|(k, (hex, s))| (*k, hex.clone(), *s))
            .collect();
        let due: Vec<(PublicKey, String, Scan)> = self.ingest.committed(|p| {
            trusted
                .into_iter()
                .filter_map(|(k, hex, s)| {
                    let cp = p.archives.get(&hex)?;
                    let at = Scan::At(cp.fork, cp.next);
                    (at != s).then_some((k, hex, at))
                })
                .collect()
        });
        let index = self.ingest.index().clone();
        for (key, hex, at) in due {
            let follows = match search::follows_of(&index, &hex) {
                Ok(f) => f,
                Err(e) => {
                    tracing::warn!("reading the follow list of {hex}: {e}");
                    self.set_scan(&key, Scan::RetryAt(now + RETRY));
                    continue;
                }
            };
            let keys: Vec<PublicKey> = follows
                .as_ref()
                .and_then(|f| f.get("follows"))
                .and_then(|f| f.as_array())
                .map(|list| {
                    list.iter()
                        .filter_map(|v| v.as_str())
                        .filter_map(|h| PublicKey::from_hex(h).ok())
                        .take(self.limits.max_vouched_per_list)
                        .collect()
                })
                .unwrap_or_default();
            let mut complete = true;
            for k in keys {
                if k == key {
                    continue;
                }
                if let Err(e) = self.admit(k, Origin::Trusted) {
                    tracing::debug!("not crawling {k}, followed by trusted {hex}: {e}");
                    complete = false;
                }
            }
            self.set_scan(
                &key,
                if complete {
                    at
                } else {
                    Scan::RetryAt(now + RETRY)
                },
            );
        }
    }

    fn set_scan(&self, key: &PublicKey, scan: Scan) {
        if let Some(s) = self.held.lock().scans.get_mut(key) {
            s.1 = scan;
        }
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
        for t in self.tasks.lock().drain(..) {
            t.abort();
        }
        let held: Vec<(PublicKey, Held)> = {
            let mut h = self.held.lock();
            h.heard = 0;
            h.scans.clear();
            h.map.drain().collect()
        };
        for (key, h) in held {
            h.watcher.abort();
            self.ingest.remove_source(&key);
            if let Some(swarm) = &self.swarm {
                swarm.remove(&key);
            }
        }
    }
}

/// Takes the ingester's reports into the heard queue and admits them one by one while there
/// is room, at most `heard_per_sec`.
async fn heard_lane(me: Weak<Crawler>, mut rx: tokio::sync::mpsc::Receiver<PublicKey>) {
    let Some(rate) = me.upgrade().map(|c| c.limits.heard_per_sec) else {
        return;
    };
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(0.001)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut full_logged = false;
    loop {
        tokio::select! {
            key = rx.recv() => {
                let Some(key) = key else { break };
                let Some(me) = me.upgrade() else { break };
                me.hear(key);
            }
            _ = tick.tick() => {
                let Some(me) = me.upgrade() else { break };
                let Some(key) = me.next_heard() else {
                    let c = me.counts();
                    if c.heard >= me.limits.max_heard && c.pending_heard > 0 && !full_logged {
                        full_logged = true;
                        tracing::warn!(
                            held = c.heard,
                            waiting = c.pending_heard,
                            "heard-of archives at their cap; the rest wait (trusted follows and requests still get in)"
                        );
                    }
                    continue;
                };
                let admitted = tokio::task::spawn_blocking(move || me.admit(key, Origin::Heard)).await;
                if let Ok(Err(e)) = admitted {
                    tracing::debug!("not crawling {key}: {e}");
                }
            }
        }
    }
}

/// Reads trusted follow lists after every commit (and every [`RETRY`] for lists not fully
/// taken in).
async fn vouch_loop(me: Weak<Crawler>, mut commits: tokio::sync::watch::Receiver<u64>) {
    let mut tick = tokio::time::interval(RETRY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            changed = commits.changed() => if changed.is_err() { break },
            _ = tick.tick() => {}
        }
        let Some(me) = me.upgrade() else { break };
        if tokio::task::spawn_blocking(move || me.vouch_pass())
            .await
            .is_err()
        {
            break;
        }
    }
}
