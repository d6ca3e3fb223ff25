//! The replication node: the archives this process replicates, a TCP listener, outgoing
//! connections, and the tasks that serve them. Every task belongs to one `JoinSet` owned by the
//! node; dropping the node (or [`Node::shutdown`]) cancels and aborts them all.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::crypto::PublicKey;
use crate::log::Log;
use crate::replicate::conn;
use crate::replicate::frame::ConnState;
use crate::replicate::ReplicateError;

/// Settings of a [`Node`]; the defaults suit a personal app on a fresh machine.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Where to accept connections (`127.0.0.1:0` picks a free port); `None` only dials out.
    pub listen: Option<SocketAddr>,
    /// Connections (both directions) beyond this are refused.
    pub max_connections: usize,
    /// Block requests in flight per peer and archive.
    pub window: usize,
    /// A peer that has not finished the Noise handshake by then is dropped.
    pub handshake_timeout: Duration,
    /// Dialing gives up after this long.
    pub connect_timeout: Duration,
    /// A peer that leaves a request unanswered this long is dropped.
    pub request_timeout: Duration,
    /// A peer that sends nothing for this long is dropped. Both sides send an empty keepalive
    /// message after five seconds of quiet, as `@hyperswarm/secret-stream` does.
    pub idle_timeout: Duration,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            listen: None,
            max_connections: 128,
            window: 2048,
            handshake_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// A connected peer, as [`Node::peers`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    pub addr: SocketAddr,
    /// True when this node dialed the peer.
    pub initiator: bool,
    /// Archives currently replicating with this peer.
    pub channels: usize,
}

/// Counts of what a node moved, over its lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NodeStats {
    /// Blocks received from peers, verified and stored.
    pub blocks_downloaded: u64,
    /// Blocks sent to peers in answer to their requests.
    pub blocks_uploaded: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub downloaded: AtomicU64,
    pub uploaded: AtomicU64,
}

/// A connection that ended, as [`Node::disconnects`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disconnect {
    pub addr: SocketAddr,
    /// True when this node dialed the peer (so `addr` is where it listens).
    pub initiator: bool,
    pub reason: String,
    /// True when the peer broke the protocol or sent data that failed verification.
    pub fault: bool,
    /// True when this node closed it (shutdown, [`Node::disconnect`], archive removed).
    pub local: bool,
}

/// Ended connections remembered for status and tests.
const DISCONNECTS_KEPT: usize = 64;
/// Capacity of [`Node::disconnect_events`]; a receiver that lags loses the oldest.
const DISCONNECT_EVENTS: usize = 256;

/// How far one archive is, next to what its connected peers said they hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveProgress {
    pub key: PublicKey,
    /// This node writes the archive: it is the source, never behind.
    pub writable: bool,
    pub fork: u64,
    pub length: u64,
    /// Blocks `0..contiguous` are stored here.
    pub contiguous: u64,
    /// Peers replicating this archive with us that have told us their length.
    pub peers: usize,
    /// The longest length a peer on our fork (or a newer one) announced.
    pub remote_length: u64,
}

impl ArchiveProgress {
    /// True when every block up to the longest length any peer announced is stored here.
    pub fn caught_up(&self) -> bool {
        self.contiguous >= self.length && self.length >= self.remote_length
    }
}

/// One archive the node replicates, with what its replicators share across peers.
pub(crate) struct ArchiveEntry {
    pub log: Arc<Log>,
    pub key: PublicKey,
    /// Cancelled when the archive is removed from the node.
    pub removed: CancellationToken,
    /// Blocks some peer was asked for and that are not stored yet.
    inflight: Mutex<HashSet<u64>>,
    /// Whether an upgrade request is out to some peer.
    upgrading: Mutex<bool>,
    /// Bumped when a replicator gives the upgrade claim back. One that found the claim taken
    /// waits for this: the log's own change comes first (the proof is stored before its
    /// replicator hears back from the blocking job and lets go of the claim), so a replicator
    /// woken by the change alone can find the claim still held and nothing else would wake it.
    upgrade_freed: watch::Sender<u64>,
    /// What each replicating peer last announced: replicator id -> (fork, length).
    remotes: Mutex<HashMap<usize, (u64, u64)>>,
    pub counters: Arc<Counters>,
    /// Points where a test holds or watches replication, to make races repeatable.
    #[cfg(test)]
    pub hooks: Mutex<Hooks>,
}

/// Test hooks of one archive (see [`ArchiveEntry::hooks`]).
#[cfg(test)]
#[derive(Default)]
pub(crate) struct Hooks {
    /// Runs on the blocking thread right after a batch with an upgrade was stored (the log has
    /// changed), before the replicator that asked hears of it and gives the claim back.
    pub upgrade_stored: Option<Arc<dyn Fn() + Send + Sync>>,
    /// Runs when a replicator wanted to ask for an upgrade and found the claim taken, with our
    /// length and the length the peer last said it knows of ours.
    pub upgrade_busy: Option<Arc<dyn Fn(u64, u64) + Send + Sync>>,
}

impl ArchiveEntry {
    /// Claims block `seq` for one peer's request; false if another peer has it.
    pub(super) fn claim(&self, seq: u64) -> bool {
        self.inflight.lock().insert(seq)
    }

    pub(super) fn release(&self, seq: u64) {
        self.inflight.lock().remove(&seq);
    }

    pub(super) fn claim_upgrade(&self) -> bool {
        let mut u = self.upgrading.lock();
        !std::mem::replace(&mut *u, true)
    }

    pub(super) fn release_upgrade(&self) {
        if std::mem::replace(&mut *self.upgrading.lock(), false) {
            self.upgrade_freed.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// Wakes when the upgrade claim is given back after the receiver last looked.
    pub(super) fn upgrade_freed(&self) -> watch::Receiver<u64> {
        self.upgrade_freed.subscribe()
    }

    /// Records a peer's announced head (`id` names the replicator).
    pub(super) fn note_remote(&self, id: usize, fork: u64, length: u64) {
        self.remotes.lock().insert(id, (fork, length));
    }

    pub(super) fn forget_remote(&self, id: usize) {
        self.remotes.lock().remove(&id);
    }

    fn progress(&self) -> ArchiveProgress {
        let info = self.log.info();
        let remotes = self.remotes.lock();
        let remote_length = remotes
            .values()
            .filter(|(fork, _)| *fork >= info.fork)
            .map(|(_, length)| *length)
            .max()
            .unwrap_or(0);
        ArchiveProgress {
            key: self.key,
            writable: info.writable,
            fork: info.fork,
            length: info.length,
            contiguous: info.contiguous,
            peers: remotes.len(),
            remote_length,
        }
    }
}

pub(crate) struct ConnEntry {
    addr: SocketAddr,
    initiator: bool,
    state: Arc<ConnState>,
    pub channels: Arc<AtomicUsize>,
}

pub(crate) struct Shared {
    pub config: NodeConfig,
    pub cancel: CancellationToken,
    archives: RwLock<HashMap<[u8; 32], Arc<ArchiveEntry>>>,
    /// Bumped whenever an archive is added or removed; connections open and close channels.
    pub archives_changed: watch::Sender<u64>,
    conns: Mutex<HashMap<u64, ConnEntry>>,
    tasks: Mutex<JoinSet<()>>,
    next_id: AtomicU64,
    permits: Arc<Semaphore>,
    counters: Arc<Counters>,
    disconnects: Mutex<std::collections::VecDeque<Disconnect>>,
    disconnect_events: broadcast::Sender<Disconnect>,
}

impl Shared {
    pub(super) fn archive(&self, discovery_key: &[u8; 32]) -> Option<Arc<ArchiveEntry>> {
        self.archives.read().get(discovery_key).cloned()
    }

    /// Keys of every archive, by discovery key.
    pub(super) fn archive_keys(&self) -> HashMap<[u8; 32], PublicKey> {
        self.archives
            .read()
            .iter()
            .map(|(dk, e)| (*dk, e.key))
            .collect()
    }

    /// Spawns a task owned by the node, reaping the ones that finished.
    fn spawn(&self, fut: impl std::future::Future<Output = ()> + Send + 'static) {
        let mut tasks = self.tasks.lock();
        while let Some(done) = tasks.try_join_next() {
            if let Err(e) = done {
                if e.is_panic() {
                    tracing::error!(error = %e, "a replication task panicked");
                }
            }
        }
        tasks.spawn(fut);
    }

    /// Runs a connection to its end in a task of the node.
    fn start_connection(
        self: &Arc<Self>,
        stream: TcpStream,
        addr: SocketAddr,
        initiator: bool,
        permit: OwnedSemaphorePermit,
    ) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let state = ConnState::new(&self.cancel);
        let channels = Arc::new(AtomicUsize::new(0));
        self.conns.lock().insert(
            id,
            ConnEntry {
                addr,
                initiator,
                state: state.clone(),
                channels: channels.clone(),
            },
        );
        let shared = self.clone();
        let span = tracing::info_span!("conn", peer = %addr, id, initiator);
        self.spawn(
            async move {
                let started = Instant::now();
                tracing::debug!("connected");
                let end = conn::run(shared.clone(), stream, initiator, state.clone(), channels).await;
                let local = matches!(end, conn::End::Local);
                let (reason, fault) = match end {
                    conn::End::Local => {
                        tracing::debug!("connection closed");
                        (conn::LOCAL_CLOSE.to_owned(), false)
                    }
                    conn::End::Remote(reason) => {
                        tracing::info!(%reason, secs = started.elapsed().as_secs_f64(), "connection ended");
                        (reason, false)
                    }
                    conn::End::Fault(reason) => {
                        tracing::warn!(%reason, "disconnected a misbehaving peer");
                        (reason, true)
                    }
                };
                {
                    let ended = Disconnect {
                        addr,
                        initiator,
                        reason,
                        fault,
                        local,
                    };
                    let mut d = shared.disconnects.lock();
                    if d.len() == DISCONNECTS_KEPT {
                        d.pop_front();
                    }
                    d.push_back(ended.clone());
                    // Nobody listening is fine.
                    let _ = shared.disconnect_events.send(ended);
                }
                shared.conns.lock().remove(&id);
                drop(permit);
            }
            .instrument(span),
        );
    }
}

/// Replicates a set of archives with every peer it is connected to.
///
/// Archives are added and removed at runtime ([`Node::add`], [`Node::remove`]); each connected
/// peer that also knows an archive's key gets one protocol channel for it, over the one
/// connection to that peer. Owned archives are served; replicas also download, verifying every
/// proof before anything is stored, and keep following the writer live.
pub struct Node {
    shared: Arc<Shared>,
    local_addr: Option<SocketAddr>,
}

impl Node {
    /// Starts a node; listens if `config.listen` is set. Needs a tokio runtime.
    pub async fn start(config: NodeConfig) -> Result<Node, ReplicateError> {
        let shared = Arc::new(Shared {
            permits: Arc::new(Semaphore::new(config.max_connections)),
            config,
            cancel: CancellationToken::new(),
            archives: RwLock::new(HashMap::new()),
            archives_changed: watch::channel(0).0,
            conns: Mutex::new(HashMap::new()),
            tasks: Mutex::new(JoinSet::new()),
            next_id: AtomicU64::new(1),
            counters: Arc::new(Counters::default()),
            disconnects: Mutex::new(std::collections::VecDeque::new()),
            disconnect_events: broadcast::channel(DISCONNECT_EVENTS).0,
        });
        let mut local_addr = None;
        if let Some(addr) = shared.config.listen {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|cause| ReplicateError::Listen { addr, cause })?;
            let bound = listener
                .local_addr()
                .map_err(|cause| ReplicateError::Listen { addr, cause })?;
            local_addr = Some(bound);
            let s = shared.clone();
            shared.spawn(
                accept_loop(s, listener).instrument(tracing::info_span!("listen", addr = %bound)),
            );
        }
        Ok(Node { shared, local_addr })
    }

    /// The address the node listens on.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// Starts replicating `log` with every connected peer that has it. Returns false if the
    /// archive was already there.
    pub fn add(&self, log: Arc<Log>) -> bool {
        let key = log.key();
        let dk = key.discovery_key();
        {
            let mut archives = self.shared.archives.write();
            if archives.contains_key(&dk) {
                return false;
            }
            archives.insert(
                dk,
                Arc::new(ArchiveEntry {
                    log,
                    key,
                    removed: self.shared.cancel.child_token(),
                    inflight: Mutex::new(HashSet::new()),
                    upgrading: Mutex::new(false),
                    upgrade_freed: watch::Sender::new(0),
                    remotes: Mutex::new(HashMap::new()),
                    counters: self.shared.counters.clone(),
                    #[cfg(test)]
                    hooks: Mutex::new(Hooks::default()),
                }),
            );
        }
        self.shared.archives_changed.send_modify(|v| *v += 1);
        true
    }

    /// The shared state of one archive, for tests that install hooks.
    #[cfg(test)]
    pub(crate) fn archive_entry(&self, key: &PublicKey) -> Option<Arc<ArchiveEntry>> {
        self.shared.archive(&key.discovery_key())
    }

    /// Stops replicating an archive: its channels close, its log is handed back.
    pub fn remove(&self, key: &PublicKey) -> Option<Arc<Log>> {
        let entry = self.shared.archives.write().remove(&key.discovery_key())?;
        entry.removed.cancel();
        self.shared.archives_changed.send_modify(|v| *v += 1);
        Some(entry.log.clone())
    }

    /// Keys of the archives being replicated.
    pub fn archives(&self) -> Vec<PublicKey> {
        let mut keys: Vec<PublicKey> = self
            .shared
            .archives
            .read()
            .values()
            .map(|e| e.key)
            .collect();
        keys.sort();
        keys
    }

    /// Dials a peer and keeps the connection running in the background. Does nothing if a
    /// connection dialed to `addr` is already open.
    pub async fn connect(&self, addr: SocketAddr) -> Result<(), ReplicateError> {
        if self.shared.cancel.is_cancelled() {
            return Err(ReplicateError::Shutdown);
        }
        let dialed = self
            .shared
            .conns
            .lock()
            .values()
            .any(|c| c.initiator && c.addr == addr && !c.state.is_closed());
        if dialed {
            return Ok(());
        }
        let permit = self
            .shared
            .permits
            .clone()
            .try_acquire_owned()
            .map_err(|_| ReplicateError::TooManyConnections {
                max: self.shared.config.max_connections,
            })?;
        let timeout = self.shared.config.connect_timeout;
        let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(cause)) => return Err(ReplicateError::Connect { addr, cause }),
            Err(_) => {
                return Err(ReplicateError::ConnectTimeout {
                    addr,
                    secs: timeout.as_secs(),
                })
            }
        };
        self.shared.start_connection(stream, addr, true, permit);
        Ok(())
    }

    /// Closes every connection to `addr`; returns how many there were.
    pub fn disconnect(&self, addr: SocketAddr) -> usize {
        let conns = self.shared.conns.lock();
        let mut n = 0;
        for c in conns.values().filter(|c| c.addr == addr) {
            c.state.fail(conn::LOCAL_CLOSE);
            n += 1;
        }
        n
    }

    /// The connected peers.
    pub fn peers(&self) -> Vec<PeerInfo> {
        let conns = self.shared.conns.lock();
        let mut out: Vec<PeerInfo> = conns
            .values()
            .filter(|c| !c.state.is_closed())
            .map(|c| PeerInfo {
                addr: c.addr,
                initiator: c.initiator,
                channels: c.channels.load(Ordering::Relaxed),
            })
            .collect();
        out.sort_by_key(|p| (p.addr, p.initiator));
        out
    }

    /// Whether a connection to or from `addr` is open.
    pub fn is_connected(&self, addr: SocketAddr) -> bool {
        self.shared
            .conns
            .lock()
            .values()
            .any(|c| c.addr == addr && !c.state.is_closed())
    }

    /// Every connection that ends from now on, as it ends.
    pub fn disconnect_events(&self) -> broadcast::Receiver<Disconnect> {
        self.shared.disconnect_events.subscribe()
    }

    /// Where each archive stands against its peers, sorted by key.
    pub fn progress(&self) -> Vec<ArchiveProgress> {
        let entries: Vec<Arc<ArchiveEntry>> =
            self.shared.archives.read().values().cloned().collect();
        let mut out: Vec<ArchiveProgress> = entries.iter().map(|e| e.progress()).collect();
        out.sort_by_key(|p| p.key);
        out
    }

    /// The most recent connections that ended (up to 64), oldest first.
    pub fn disconnects(&self) -> Vec<Disconnect> {
        self.shared.disconnects.lock().iter().cloned().collect()
    }

    /// What this node has moved so far.
    pub fn stats(&self) -> NodeStats {
        NodeStats {
            blocks_downloaded: self.shared.counters.downloaded.load(Ordering::Relaxed),
            blocks_uploaded: self.shared.counters.uploaded.load(Ordering::Relaxed),
        }
    }

    /// The cap on connections, both directions.
    pub fn max_connections(&self) -> usize {
        self.shared.config.max_connections
    }

    /// Closes every connection and waits (up to five seconds) for the tasks to finish.
    pub async fn shutdown(&self) {
        self.shared.cancel.cancel();
        let mut tasks = std::mem::take(&mut *self.shared.tasks.lock());
        let drained = tokio::time::timeout(Duration::from_secs(5), async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!("replication tasks did not stop within 5 s; aborting them");
            tasks.abort_all();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.shared.cancel.cancel();
        self.shared.tasks.lock().abort_all();
    }
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("local_addr", &self.local_addr)
            .field("archives", &self.archives().len())
            .finish()
    }
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        let accepted = tokio::select! {
            _ = shared.cancel.cancelled() => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, addr)) => match shared.permits.clone().try_acquire_owned() {
                Ok(permit) => shared.start_connection(stream, addr, false, permit),
                Err(_) => {
                    tracing::warn!(peer = %addr, max = shared.config.max_connections, "refused a connection: too many connections")
                }
            },
            Err(e) => {
                // Out of descriptors and the like: wait a little rather than spin.
                tracing::warn!(error = %e, "accept failed");
                tokio::select! {
                    _ = shared.cancel.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
        }
    }
}
