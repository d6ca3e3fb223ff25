//! The swarm: a replication [`Node`] joined to [`Discovery`], with the connection management
//! both binaries need: who to dial, when to give up on an address and when to try it again.
//!
//! Candidates come from the discovery sources (one `watch` per archive: DHT rounds, LAN nodes
//! as they appear, direct peers every round) and from the configured direct peers, which are
//! kept connected: when such a connection ends it is dialed again after a backoff. Every address
//! is dialed at most once at a time, never while a connection to it is open, never while it is
//! backed off, and never beyond the node's connection cap. A failed dial backs the address off
//! exponentially (1 s doubling to 5 min); a peer that broke the protocol or sent data that failed
//! verification is backed off for 10 minutes, doubling to 6 hours.
//!
//! ```no_run
//! use std::sync::Arc;
//! use fritter_common::discovery;
//! use fritter_common::log::{Access, DiskStorage, Log};
//! use fritter_common::replicate::NodeConfig;
//! use fritter_common::swarm::{Swarm, SwarmConfig};
//!
//! # async fn run(key: fritter_common::crypto::PublicKey) -> Result<(), Box<dyn std::error::Error>> {
//! let mut discovery = discovery::Config::offline();
//! discovery.peers.push("127.0.0.1:7000".into());
//! let swarm = Swarm::start(SwarmConfig {
//!     node: NodeConfig { listen: Some("127.0.0.1:0".parse()?), ..NodeConfig::default() },
//!     discovery,
//! })
//! .await?;
//! let log = Arc::new(Log::open(&DiskStorage::new("/tmp/replica"), key, Access::Replica)?);
//! swarm.add(log.clone());
//! swarm.caught_up(std::time::Duration::from_secs(30)).await;
//! swarm.shutdown().await;
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::crypto::PublicKey;
use crate::discovery::{self, Discovery, DiscoveryError, PeerAddr, Source};
use crate::log::Log;
use crate::replicate::{ArchiveProgress, Disconnect, Node, NodeConfig, ReplicateError};

/// Dials running at once.
const MAX_CONCURRENT_DIALS: usize = 8;
/// Candidates waiting for the dialer; beyond this new ones are dropped (the next round repeats them).
const CANDIDATE_QUEUE: usize = 256;
/// Addresses remembered; the oldest idle ones are forgotten beyond this.
const MAX_KNOWN_ADDRS: usize = 4096;
/// How often the dialer looks at direct peers that are not connected.
const TICK: Duration = Duration::from_secs(1);
/// How often direct peers' names are resolved again.
const RESOLVE_EVERY: Duration = Duration::from_secs(60);

const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(5 * 60);
const FAULT_BACKOFF_FIRST: Duration = Duration::from_secs(10 * 60);
const FAULT_BACKOFF_MAX: Duration = Duration::from_secs(6 * 60 * 60);

/// Settings of a [`Swarm`].
#[derive(Debug, Clone, Default)]
pub struct SwarmConfig {
    /// The replication node; its `listen` address is also what discovery announces. A node that
    /// does not listen only dials out and announces nothing.
    pub node: NodeConfig,
    /// DHT, mDNS and direct peers (`peers`, `HOST:PORT`).
    pub discovery: discovery::Config,
}

/// Errors starting a [`Swarm`].
#[derive(Debug, thiserror::Error)]
pub enum SwarmError {
    #[error(transparent)]
    Replicate(#[from] ReplicateError),
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
}

/// What the swarm knows of one address.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddrStatus {
    pub addr: SocketAddr,
    /// `direct`, `dht` or `mdns`.
    pub source: String,
    pub connected: bool,
    /// Dial failures and faults in a row.
    pub failures: u32,
    /// Seconds until the address may be dialed again (0 when it may be now).
    pub retry_in_secs: u64,
    pub last_error: Option<String>,
}

/// A snapshot of the swarm for `fritter peers`, `/v1/status` and logs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SwarmStatus {
    pub listen: Option<SocketAddr>,
    pub connections: Vec<PeerStatus>,
    pub max_connections: usize,
    pub addresses: Vec<AddrStatus>,
    pub archives: Vec<ProgressStatus>,
    pub dht: String,
    pub mdns: Option<String>,
    pub announced: usize,
    pub blocks_downloaded: u64,
    pub blocks_uploaded: u64,
}

/// One open connection.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerStatus {
    pub addr: SocketAddr,
    pub initiator: bool,
    pub channels: usize,
}

/// One archive against its peers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProgressStatus {
    /// The archive's key, hex.
    pub key: String,
    pub fork: u64,
    pub length: u64,
    pub contiguous: u64,
    pub peers: usize,
    pub remote_length: u64,
}

impl From<ArchiveProgress> for ProgressStatus {
    fn from(p: ArchiveProgress) -> Self {
        ProgressStatus {
            key: p.key.to_hex(),
            fork: p.fork,
            length: p.length,
            contiguous: p.contiguous,
            peers: p.peers,
            remote_length: p.remote_length,
        }
    }
}

struct AddrState {
    source: Source,
    /// Direct peers are kept connected; others are dialed when discovery reports them.
    persistent: bool,
    dialing: bool,
    failures: u32,
    retry_at: Instant,
    last_error: Option<String>,
    last_seen: Instant,
}

impl AddrState {
    fn new(source: Source, persistent: bool) -> Self {
        let now = Instant::now();
        AddrState {
            source,
            persistent,
            dialing: false,
            failures: 0,
            retry_at: now,
            last_error: None,
            last_seen: now,
        }
    }

    fn back_off(&mut self, fault: bool, error: String) {
        self.failures = self.failures.saturating_add(1);
        let (first, max) = if fault {
            (FAULT_BACKOFF_FIRST, FAULT_BACKOFF_MAX)
        } else {
            (BACKOFF_FIRST, BACKOFF_MAX)
        };
        let exp = self.failures.saturating_sub(1).min(16);
        let delay = first.saturating_mul(1 << exp).min(max);
        // Up to a quarter of jitter, so peers that failed together do not retry together.
        let jitter = delay.mul_f64(rand::random::<f64>() * 0.25);
        self.retry_at = Instant::now() + delay + jitter;
        self.last_error = Some(error);
    }
}

fn source_name(s: Source) -> &'static str {
    match s {
        Source::Direct => "direct",
        Source::Dht => "dht",
        Source::Mdns => "mdns",
    }
}

struct Shared {
    node: Node,
    discovery: Option<Discovery>,
    addrs: Mutex<HashMap<SocketAddr, AddrState>>,
    candidates: mpsc::Sender<PeerAddr>,
    dial_permits: Arc<Semaphore>,
    cancel: CancellationToken,
    /// Own listen addresses, never dialed.
    own: Vec<SocketAddr>,
}

impl Shared {
    /// Whether `addr` may be dialed now; marks it as being dialed if so.
    fn take_for_dial(&self, addr: SocketAddr) -> bool {
        if self.own.contains(&addr) || self.node.is_connected(addr) {
            return false;
        }
        let mut addrs = self.addrs.lock();
        let Some(st) = addrs.get_mut(&addr) else {
            return false;
        };
        if st.dialing || st.retry_at > Instant::now() {
            return false;
        }
        st.dialing = true;
        true
    }

    fn note_candidate(&self, peer: PeerAddr, persistent: bool) {
        let mut addrs = self.addrs.lock();
        if !addrs.contains_key(&peer.addr) && addrs.len() >= MAX_KNOWN_ADDRS {
            // Forget the idle address seen longest ago (never a direct peer).
            let oldest = addrs
                .iter()
                .filter(|(_, s)| !s.persistent && !s.dialing)
                .min_by_key(|(_, s)| s.last_seen)
                .map(|(a, _)| *a);
            match oldest {
                Some(a) => {
                    addrs.remove(&a);
                }
                None => return,
            }
        }
        let st = addrs
            .entry(peer.addr)
            .or_insert_with(|| AddrState::new(peer.source, persistent));
        st.last_seen = Instant::now();
        st.persistent |= persistent;
    }

    fn dial_result(&self, addr: SocketAddr, result: Result<(), ReplicateError>) {
        let mut addrs = self.addrs.lock();
        let Some(st) = addrs.get_mut(&addr) else {
            return;
        };
        st.dialing = false;
        match result {
            Ok(()) => {}
            Err(ReplicateError::TooManyConnections { .. }) => {
                // Not the address's fault: try again later without counting it.
                st.retry_at = Instant::now() + BACKOFF_FIRST;
            }
            Err(e) => {
                tracing::debug!(peer = %addr, error = %e, failures = st.failures + 1, "dial failed");
                st.back_off(false, e.to_string());
            }
        }
    }

    fn disconnected(&self, d: &Disconnect) {
        let mut addrs = self.addrs.lock();
        if !d.initiator {
            // An inbound peer's port is not where it listens: nothing to back off by address.
            return;
        }
        let Some(st) = addrs.get_mut(&d.addr) else {
            return;
        };
        if d.fault {
            tracing::warn!(peer = %d.addr, reason = %d.reason, "backing off a misbehaving peer");
            st.back_off(true, d.reason.clone());
        } else if !d.local {
            // The connection had worked: start the backoff over, short.
            st.failures = 0;
            st.back_off(false, d.reason.clone());
        }
    }
}

/// A replication node plus discovery and connection management. See the module docs.
pub struct Swarm {
    shared: Arc<Shared>,
    watches: Mutex<HashMap<PublicKey, JoinHandle<()>>>,
    tasks: Mutex<JoinSet<()>>,
}

impl Swarm {
    /// Starts the node (listening if configured), discovery and the dialer. Needs a tokio runtime.
    pub async fn start(config: SwarmConfig) -> Result<Swarm, SwarmError> {
        config.discovery.validate()?;
        let node = Node::start(config.node.clone()).await?;
        let cancel = CancellationToken::new();
        let discovery = match node.local_addr() {
            Some(listen) => {
                Some(Discovery::start(config.discovery.clone(), listen, &cancel).await?)
            }
            None => None,
        };
        let own = node.local_addr().into_iter().collect();
        let (tx, rx) = mpsc::channel(CANDIDATE_QUEUE);
        let shared = Arc::new(Shared {
            node,
            discovery,
            addrs: Mutex::new(HashMap::new()),
            candidates: tx,
            dial_permits: Arc::new(Semaphore::new(MAX_CONCURRENT_DIALS)),
            cancel,
            own,
        });
        let mut tasks = JoinSet::new();
        tasks.spawn(
            dial_loop(shared.clone(), rx, config.discovery.peers.clone())
                .instrument(tracing::info_span!("dialer")),
        );
        tasks.spawn(watch_disconnects(
            shared.clone(),
            shared.node.disconnect_events(),
        ));
        tracing::info!(
            listen = ?shared.node.local_addr(),
            direct_peers = config.discovery.peers.len(),
            dht = !config.discovery.dht.bootstrap.is_empty(),
            mdns = config.discovery.mdns.enabled,
            "swarm started"
        );
        Ok(Swarm {
            shared,
            watches: Mutex::new(HashMap::new()),
            tasks: Mutex::new(tasks),
        })
    }

    /// Replicates `log` with every peer that has it: announces it and looks for peers. Returns
    /// false if it was already there.
    pub fn add(&self, log: Arc<Log>) -> bool {
        let key = log.key();
        if !self.shared.node.add(log) {
            return false;
        }
        if let Some(discovery) = &self.shared.discovery {
            let dk = key.discovery_key();
            if let Err(e) = discovery.announce(dk) {
                tracing::warn!(archive = %key, error = %e, "not announced");
            }
            let mut lookup = discovery.watch(dk);
            let shared = self.shared.clone();
            let task = tokio::spawn(async move {
                while let Some(peer) = lookup.next().await {
                    // Full queue: drop it, the next round repeats it.
                    let _ = shared.candidates.try_send(peer);
                }
            });
            if let Some(old) = self.watches.lock().insert(key, task) {
                old.abort();
            }
        }
        true
    }

    /// Stops replicating an archive and looking for its peers; hands its log back.
    pub fn remove(&self, key: &PublicKey) -> Option<Arc<Log>> {
        if let Some(task) = self.watches.lock().remove(key) {
            task.abort();
        }
        if let Some(discovery) = &self.shared.discovery {
            discovery.unannounce(&key.discovery_key());
        }
        self.shared.node.remove(key)
    }

    /// The replication node (peers, stats, progress, direct `connect`).
    pub fn node(&self) -> &Node {
        &self.shared.node
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.shared.node.local_addr()
    }

    /// Where each archive stands against its peers.
    pub fn progress(&self) -> Vec<ArchiveProgress> {
        self.shared.node.progress()
    }

    /// Waits until every archive this node does not write has a peer and holds every block up
    /// to the longest length a peer announced, with nothing new for half a second; or until
    /// `timeout`. Returns whether it caught up.
    pub async fn caught_up(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut settled_since: Option<Instant> = None;
        let mut last = Vec::new();
        loop {
            let progress = self.progress();
            let done = progress
                .iter()
                .all(|p| p.writable || (p.peers > 0 && p.caught_up()));
            let now = Instant::now();
            if done && progress == last {
                let since = *settled_since.get_or_insert(now);
                if now - since >= Duration::from_millis(500) {
                    return true;
                }
            } else {
                settled_since = None;
            }
            last = progress;
            if now >= deadline {
                return false;
            }
            tokio::select! {
                _ = self.shared.cancel.cancelled() => return false,
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
    }

    /// A snapshot for status displays.
    pub async fn status(&self) -> SwarmStatus {
        let node = &self.shared.node;
        let connections = node
            .peers()
            .into_iter()
            .map(|p| PeerStatus {
                addr: p.addr,
                initiator: p.initiator,
                channels: p.channels,
            })
            .collect();
        let now = Instant::now();
        let mut addresses: Vec<AddrStatus> = self
            .shared
            .addrs
            .lock()
            .iter()
            .map(|(addr, st)| AddrStatus {
                addr: *addr,
                source: source_name(st.source).to_owned(),
                connected: false,
                failures: st.failures,
                retry_in_secs: st.retry_at.saturating_duration_since(now).as_secs(),
                last_error: st.last_error.clone(),
            })
            .collect();
        for a in &mut addresses {
            a.connected = node.is_connected(a.addr);
        }
        addresses.sort_by_key(|a| a.addr);
        let (dht, mdns, announced) = match &self.shared.discovery {
            None => ("off (not listening)".to_owned(), None, 0),
            Some(d) => {
                let s = d.status().await;
                let dht = match s.dht {
                    discovery::DhtStatus::Off => "off".to_owned(),
                    discovery::DhtStatus::Starting => "starting".to_owned(),
                    discovery::DhtStatus::Running {
                        local_addr,
                        firewalled,
                        ..
                    } => format!(
                        "running on {local_addr}{}",
                        if firewalled { " (firewalled)" } else { "" }
                    ),
                };
                let mdns = s
                    .mdns
                    .map(|m| format!("{} LAN peer(s), instance {}", m.lan_peers, m.instance));
                (dht, mdns, s.announced)
            }
        };
        let stats = node.stats();
        SwarmStatus {
            listen: node.local_addr(),
            connections,
            max_connections: node.max_connections(),
            addresses,
            archives: self.progress().into_iter().map(Into::into).collect(),
            dht,
            mdns,
            announced,
            blocks_downloaded: stats.blocks_downloaded,
            blocks_uploaded: stats.blocks_uploaded,
        }
    }

    /// Stops dialing and discovery, closes every connection and waits for the tasks.
    pub async fn shutdown(&self) {
        self.shared.cancel.cancel();
        for (_, task) in self.watches.lock().drain() {
            task.abort();
        }
        let mut tasks = std::mem::take(&mut *self.tasks.lock());
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        if let Some(d) = &self.shared.discovery {
            d.shutdown().await;
        }
        self.shared.node.shutdown().await;
        tracing::info!("swarm stopped");
    }
}

impl Drop for Swarm {
    fn drop(&mut self) {
        self.shared.cancel.cancel();
        for (_, task) in self.watches.lock().drain() {
            task.abort();
        }
    }
}

impl std::fmt::Debug for Swarm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Swarm")
            .field("listen", &self.shared.node.local_addr())
            .field("archives", &self.watches.lock().len())
            .finish()
    }
}

/// Takes candidates from discovery and keeps direct peers connected.
async fn dial_loop(shared: Arc<Shared>, mut rx: mpsc::Receiver<PeerAddr>, direct: Vec<String>) {
    let mut dials = JoinSet::new();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next_resolve = Instant::now();
    loop {
        tokio::select! {
            _ = shared.cancel.cancelled() => break,
            Some(peer) = rx.recv() => {
                shared.note_candidate(peer, false);
                start_dial(&shared, &mut dials, peer.addr);
            }
            _ = tick.tick() => {
                if Instant::now() >= next_resolve && !direct.is_empty() {
                    next_resolve = Instant::now() + RESOLVE_EVERY;
                    for name in &direct {
                        match discovery::resolve_peer(name).await {
                            Ok(addrs) => {
                                for addr in addrs {
                                    shared.note_candidate(PeerAddr { addr, source: Source::Direct }, true);
                                }
                            }
                            Err(e) => tracing::warn!(peer = %name, error = %e, "could not resolve a direct peer"),
                        }
                    }
                }
                let due: Vec<SocketAddr> = shared
                    .addrs
                    .lock()
                    .iter()
                    .filter(|(_, s)| s.persistent && !s.dialing)
                    .map(|(a, _)| *a)
                    .collect();
                for addr in due {
                    start_dial(&shared, &mut dials, addr);
                }
            }
            Some(_) = dials.join_next(), if !dials.is_empty() => {}
        }
    }
    dials.abort_all();
}

fn start_dial(shared: &Arc<Shared>, dials: &mut JoinSet<()>, addr: SocketAddr) {
    if !shared.take_for_dial(addr) {
        return;
    }
    let shared = shared.clone();
    dials.spawn(async move {
        let Ok(_permit) = shared.dial_permits.clone().acquire_owned().await else {
            return;
        };
        tracing::debug!(peer = %addr, "dialing");
        let result = shared.node.connect(addr).await;
        if result.is_ok() {
            tracing::info!(peer = %addr, "connected");
        }
        shared.dial_result(addr, result);
    });
}

async fn watch_disconnects(shared: Arc<Shared>, mut events: broadcast::Receiver<Disconnect>) {
    loop {
        let event = tokio::select! {
            _ = shared.cancel.cancelled() => return,
            e = events.recv() => e,
        };
        match event {
            Ok(d) => shared.disconnected(&d),
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "missed disconnect events")
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}
