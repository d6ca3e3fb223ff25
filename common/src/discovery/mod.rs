//! Discovery: finding the addresses of peers that may hold an archive, from three sources merged
//! into one stream: the BitTorrent mainline DHT (by discovery key), mDNS on the local network
//! (every LAN node, for every archive) and direct peers given by the user (always candidates).
//!
//! Discovery only finds candidate addresses. Whether a peer really has an archive is settled by
//! the replication node's channel handshake, which opens only for discovery keys both sides
//! know; so a candidate that has nothing for us costs one handshake, and a peer cannot learn an
//! archive from us without its key.
//!
//! ```no_run
//! use fritter_common::discovery::{Config, Discovery};
//! use tokio_util::sync::CancellationToken;
//!
//! # async fn run(key: [u8; 32]) -> Result<(), Box<dyn std::error::Error>> {
//! let cancel = CancellationToken::new();
//! let mut config = Config::default(); // public DHT bootstrap, mDNS on
//! config.peers.push("crawler.example.org:7000".into());
//! let discovery = Discovery::start(config, "0.0.0.0:7000".parse()?, &cancel).await?;
//! discovery.announce(key)?; // now, then every 15 min
//! let mut peers = discovery.watch(key); // rounds every 5 min, LAN peers as they appear
//! while let Some(peer) = peers.next().await {
//!     println!("{} via {:?}", peer.addr, peer.source);
//! }
//! discovery.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Bounds: `max_announced` keys, `max_peers_per_lookup` addresses per round, one DHT query per
//! round with `query_timeout_secs`, `max_concurrent_queries` DHT lookups and as many announces
//! at once, `mdns.max_peers` LAN nodes, 64 direct peers of at most 8 addresses each, and a
//! bounded channel between each lookup and its consumer (backpressure, nothing buffered without
//! limit).

mod config;
mod dht;
mod direct;
mod error;
mod mdns;
mod own;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{mpsc, watch, Notify, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use tokio_stream::StreamExt;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, trace, warn, Instrument};

pub use config::{Config, DhtConfig, MdnsConfig, MDNS_PORT, MDNS_SERVICE_TYPE, PUBLIC_BOOTSTRAP};
pub use dht::info_hash;
pub use direct::resolve as resolve_peer;
pub use error::DiscoveryError;

use dht::DhtHandle;
use mdns::{LanPeers, Mdns};
use own::OwnAddrs;

/// The 32-byte Hypercore discovery key of an archive (`PublicKey::discovery_key()`).
pub type DiscoveryKey = crate::crypto::Hash;

/// Capacity of the channel between a lookup task and its consumer.
const LOOKUP_CHANNEL: usize = 32;
/// Delay before retrying a failed announce (capped by the reannounce interval).
const ANNOUNCE_RETRY: Duration = Duration::from_secs(60);
/// How often the announcer looks again when nothing is due (it also wakes on every change).
const ANNOUNCER_IDLE: Duration = Duration::from_secs(60);
/// How long `shutdown` waits for the tasks before aborting them.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Where an address came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// Given by the user (`--peer`).
    Direct,
    /// A node on the local network.
    Mdns,
    /// Announced in the mainline DHT for this discovery key.
    Dht,
}

/// A candidate peer address for an archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerAddr {
    pub addr: SocketAddr,
    pub source: Source,
}

/// A snapshot of what discovery is doing, for `fritter peers` and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub dht: DhtStatus,
    /// Our mDNS instance name and how many LAN nodes are known; `None` when mDNS is off.
    pub mdns: Option<MdnsStatus>,
    /// Configured direct peers.
    pub direct_peers: usize,
    /// Keys announced, and how many of them the DHT has accepted at least once.
    pub announced: usize,
    pub announced_ok: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DhtStatus {
    /// Empty bootstrap list: no DHT node, no socket.
    Off,
    /// No bootstrap name has resolved yet; retried with backoff.
    Starting,
    Running {
        local_addr: SocketAddr,
        public_addr: Option<SocketAddr>,
        firewalled: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MdnsStatus {
    pub instance: String,
    pub lan_peers: usize,
}

/// The discovery service of one node. Cheap to share behind an `Arc`; every method takes `&self`.
///
/// Owns its tasks (announcer, mDNS browser, DHT start retry): they stop on [`shutdown`](Self::shutdown),
/// when the token given to [`start`](Self::start) is cancelled, or when this is dropped.
pub struct Discovery {
    inner: Arc<Inner>,
    tasks: Mutex<JoinSet<()>>,
}

impl std::fmt::Debug for Discovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discovery").finish_non_exhaustive()
    }
}

struct Inner {
    config: Config,
    listen: SocketAddr,
    cancel: CancellationToken,
    /// `None` when the DHT is off (empty bootstrap list).
    dht: Option<DhtHandle>,
    mdns: Option<Mdns>,
    announced: Mutex<HashMap<DiscoveryKey, Announce>>,
    announce_wake: Notify,
    /// Woken whenever an announce finishes.
    announce_done: Notify,
    lookup_permits: Semaphore,
}

struct Announce {
    next_due: Instant,
    in_flight: bool,
    ok_once: bool,
}

impl Discovery {
    /// Starts the configured sources for a node listening on `listen` (its TCP port is what the
    /// DHT and mDNS advertise; the address is never reported back by a lookup).
    ///
    /// Fails on an invalid config, a DHT socket that cannot bind, or an mDNS daemon that cannot
    /// start. Bootstrap names that do not resolve are not an error: the DHT starts when they do.
    pub async fn start(
        config: Config,
        listen: SocketAddr,
        cancel: &CancellationToken,
    ) -> Result<Discovery, DiscoveryError> {
        config.validate()?;
        if listen.port() == 0 {
            return Err(DiscoveryError::InvalidConfig {
                field: "listen address",
                value: listen.to_string(),
                reason: "needs the port the node listens on, not 0",
            });
        }
        let cancel = cancel.child_token();
        let mut tasks = JoinSet::new();

        let dht = if config.dht.bootstrap.is_empty() {
            info!("dht off: empty bootstrap list");
            None
        } else {
            let handle = DhtHandle::default();
            if !handle.try_start(&config.dht).await? {
                warn!("no dht bootstrap node resolved; retrying in the background");
                tasks.spawn(
                    handle
                        .clone()
                        .retry_start(config.dht.clone(), cancel.clone())
                        .in_current_span(),
                );
            }
            Some(handle)
        };

        let mdns = if config.mdns.enabled {
            let (mdns, browser) = Mdns::start(&config.mdns, listen.port())?;
            tasks.spawn(browser.run(cancel.clone()).in_current_span());
            Some(mdns)
        } else {
            info!("mdns off");
            None
        };

        let inner = Arc::new(Inner {
            lookup_permits: Semaphore::new(config.max_concurrent_queries),
            config,
            listen,
            cancel,
            dht,
            mdns,
            announced: Mutex::new(HashMap::new()),
            announce_wake: Notify::new(),
            announce_done: Notify::new(),
        });
        if inner.dht.is_some() {
            tasks.spawn(announcer(inner.clone()).in_current_span());
        }
        info!(
            listen = %listen,
            dht = inner.dht.is_some(),
            mdns = inner.mdns.is_some(),
            direct_peers = inner.config.peers.len(),
            "discovery started"
        );
        Ok(Discovery {
            inner,
            tasks: Mutex::new(tasks),
        })
    }

    /// Announces `key` in the DHT under our listen port, now and then every
    /// `dht.reannounce_interval_secs` (failures are retried after a minute). Idempotent. With the
    /// DHT off it only records the key. mDNS needs no per-key announce (see the `mdns` module).
    pub fn announce(&self, key: DiscoveryKey) -> Result<(), DiscoveryError> {
        if self.inner.cancel.is_cancelled() {
            return Err(DiscoveryError::Shutdown);
        }
        let mut announced = self.inner.announced.lock();
        if announced.contains_key(&key) {
            return Ok(());
        }
        if announced.len() >= self.inner.config.max_announced {
            return Err(DiscoveryError::TooManyAnnounced {
                limit: self.inner.config.max_announced,
            });
        }
        announced.insert(
            key,
            Announce {
                next_due: Instant::now(),
                in_flight: false,
                ok_once: false,
            },
        );
        drop(announced);
        debug!(key = %short(&key), "announce requested");
        self.inner.announce_wake.notify_one();
        Ok(())
    }

    /// Stops re-announcing `key`; returns whether it was announced. The DHT has no withdrawal:
    /// nodes that stored us forget us when their entry expires (about 30 minutes).
    pub fn unannounce(&self, key: &DiscoveryKey) -> bool {
        let removed = self.inner.announced.lock().remove(key).is_some();
        if removed {
            debug!(key = %short(key), "unannounced");
        }
        removed
    }

    /// One lookup round: direct peers, the LAN nodes known now, then the DHT as its answers stream
    /// in. Ends when the DHT query is done (or after `query_timeout_secs`), after
    /// `max_peers_per_lookup` addresses, or at shutdown. Each address is reported once.
    pub fn lookup(&self, key: DiscoveryKey) -> Lookup {
        self.spawn_lookup(key, false)
    }

    /// Lookup rounds every `lookup_interval_secs` until the `Lookup` is dropped or discovery
    /// shuts down; LAN nodes are reported as soon as they appear. Each address is reported at
    /// most once per round; a later round reports it again, so a node that dropped a connection
    /// learns the peer is still there.
    pub fn watch(&self, key: DiscoveryKey) -> Lookup {
        self.spawn_lookup(key, true)
    }

    fn spawn_lookup(&self, key: DiscoveryKey, continuous: bool) -> Lookup {
        let (tx, rx) = mpsc::channel(LOOKUP_CHANNEL);
        let span = tracing::info_span!("lookup", key = %short(&key), continuous);
        let task =
            tokio::spawn(run_lookup(self.inner.clone(), key, continuous, tx).instrument(span));
        Lookup { rx, task }
    }

    /// What each source is doing.
    pub async fn status(&self) -> Status {
        let dht = match &self.inner.dht {
            None => DhtStatus::Off,
            Some(handle) => match handle.get() {
                None => DhtStatus::Starting,
                Some(node) => {
                    let info = node.info().await;
                    DhtStatus::Running {
                        local_addr: SocketAddr::V4(info.local_addr()),
                        public_addr: info.public_address().map(SocketAddr::V4),
                        firewalled: info.firewalled(),
                    }
                }
            },
        };
        let (announced, announced_ok) = {
            let map = self.inner.announced.lock();
            (map.len(), map.values().filter(|a| a.ok_once).count())
        };
        Status {
            dht,
            mdns: self.inner.mdns.as_ref().map(|m| MdnsStatus {
                instance: m.instance().to_string(),
                lan_peers: m.peer_count(),
            }),
            direct_peers: self.inner.config.peers.len(),
            announced,
            announced_ok,
        }
    }

    /// The address this node was started with.
    pub fn listen_addr(&self) -> SocketAddr {
        self.inner.listen
    }

    /// Stops every task and lookup, says goodbye on the LAN, and closes the DHT node once the
    /// last lookup has let go of it.
    pub async fn shutdown(&self) {
        self.inner.cancel.cancel();
        let mut tasks = std::mem::take(&mut *self.tasks.lock());
        let drained = tokio::time::timeout(SHUTDOWN_TIMEOUT, async {
            while let Some(result) = tasks.join_next().await {
                if let Err(error) = result {
                    if error.is_panic() {
                        warn!(%error, "discovery task panicked");
                    }
                }
            }
        })
        .await;
        if drained.is_err() {
            warn!(
                timeout_secs = SHUTDOWN_TIMEOUT.as_secs(),
                "discovery tasks did not stop in time; aborted"
            );
            tasks.abort_all();
        }
        if let Some(mdns) = &self.inner.mdns {
            mdns.stop().await;
        }
        info!("discovery stopped");
    }
}

impl Drop for Discovery {
    fn drop(&mut self) {
        // The JoinSet aborts the tasks; lookups end on the token.
        self.inner.cancel.cancel();
    }
}

/// A stream of candidate peers for one discovery key. Dropping it stops its task.
pub struct Lookup {
    rx: mpsc::Receiver<PeerAddr>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for Lookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lookup").finish_non_exhaustive()
    }
}

impl Lookup {
    /// The next address, or `None` when the lookup is over.
    pub async fn next(&mut self) -> Option<PeerAddr> {
        self.rx.recv().await
    }
}

impl tokio_stream::Stream for Lookup {
    type Item = PeerAddr;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<PeerAddr>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for Lookup {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One round's bookkeeping: dedup, own-address filter, limit, delivery.
struct Round<'a> {
    seen: HashSet<SocketAddr>,
    limit: usize,
    listen: SocketAddr,
    /// Our DHT public address, if known.
    public: Option<std::net::IpAddr>,
    /// Read from the interfaces at the first address of the round, so a round with no
    /// candidates touches nothing.
    own: Option<OwnAddrs>,
    tx: &'a mpsc::Sender<PeerAddr>,
    cancel: &'a CancellationToken,
}

#[derive(PartialEq, Eq)]
enum Emit {
    More,
    /// The round reached `max_peers_per_lookup`.
    Full,
    /// The consumer is gone or discovery shuts down.
    Stop,
}

impl Round<'_> {
    async fn emit(&mut self, addr: SocketAddr, source: Source) -> Emit {
        if self.seen.len() >= self.limit {
            return Emit::Full;
        }
        if own::unusable(&addr) {
            trace!(addr = %addr, ?source, "unusable address skipped");
            return Emit::More;
        }
        let own = self
            .own
            .get_or_insert_with(|| OwnAddrs::snapshot(self.listen, self.public));
        if own.contains(&addr) {
            trace!(addr = %addr, ?source, "own address skipped");
            return Emit::More;
        }
        if !self.seen.insert(addr) {
            return Emit::More;
        }
        debug!(addr = %addr, ?source, "peer found");
        tokio::select! {
            sent = self.tx.send(PeerAddr { addr, source }) => if sent.is_err() { return Emit::Stop },
            _ = self.cancel.cancelled() => return Emit::Stop,
        }
        if self.seen.len() >= self.limit {
            debug!(
                limit = self.limit,
                "lookup round reached max_peers_per_lookup"
            );
            return Emit::Full;
        }
        Emit::More
    }

    async fn emit_all(
        &mut self,
        addrs: impl IntoIterator<Item = SocketAddr>,
        source: Source,
    ) -> Emit {
        for addr in addrs {
            let result = self.emit(addr, source).await;
            if result != Emit::More {
                return result;
            }
        }
        Emit::More
    }
}

/// Waits for the LAN peer set to change; pending forever when mDNS is off or has stopped.
async fn lan_changed(lan: &mut Option<watch::Receiver<Arc<LanPeers>>>) -> Option<Arc<LanPeers>> {
    match lan {
        Some(rx) => match rx.changed().await {
            Ok(()) => Some(rx.borrow_and_update().clone()),
            Err(_) => {
                *lan = None;
                None
            }
        },
        None => std::future::pending().await,
    }
}

async fn run_lookup(
    inner: Arc<Inner>,
    key: DiscoveryKey,
    continuous: bool,
    tx: mpsc::Sender<PeerAddr>,
) {
    let cancel = inner.cancel.clone();
    let mut lan = inner.mdns.as_ref().map(|m| m.subscribe());
    let mut round_number = 0u64;
    loop {
        if cancel.is_cancelled() {
            return;
        }
        round_number += 1;
        let dht = inner.dht.as_ref().and_then(|h| h.get()).cloned();
        let public = match &dht {
            Some(node) => node
                .info()
                .await
                .public_address()
                .map(|a| std::net::IpAddr::V4(*a.ip())),
            None => None,
        };
        let mut round = Round {
            seen: HashSet::new(),
            limit: inner.config.max_peers_per_lookup,
            listen: inner.listen,
            public,
            own: None,
            tx: &tx,
            cancel: &cancel,
        };
        let outcome = lookup_round(&inner, &key, dht.as_ref(), &mut lan, &mut round).await;
        debug!(
            round = round_number,
            found = round.seen.len(),
            "lookup round done"
        );
        if outcome == Emit::Stop || !continuous {
            return;
        }
        // Between rounds, report LAN nodes as they appear (unless the round is full).
        let next_round = tokio::time::sleep(inner.config.lookup_interval());
        tokio::pin!(next_round);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = &mut next_round => break,
                peers = lan_changed(&mut lan), if outcome != Emit::Full => {
                    if let Some(peers) = peers {
                        if round.emit_all(peers.addrs().collect::<Vec<_>>(), Source::Mdns).await == Emit::Stop {
                            return;
                        }
                    }
                }
            }
        }
    }
}

async fn lookup_round(
    inner: &Inner,
    key: &DiscoveryKey,
    dht: Option<&mainline::async_dht::AsyncDht>,
    lan: &mut Option<watch::Receiver<Arc<LanPeers>>>,
    round: &mut Round<'_>,
) -> Emit {
    let direct = direct::resolve_all(&inner.config.peers).await;
    let outcome = round.emit_all(direct, Source::Direct).await;
    if outcome != Emit::More {
        return outcome;
    }
    if let Some(rx) = lan.as_mut() {
        let snapshot = rx.borrow_and_update().clone();
        let outcome = round
            .emit_all(snapshot.addrs().collect::<Vec<_>>(), Source::Mdns)
            .await;
        if outcome != Emit::More {
            return outcome;
        }
    }
    let Some(dht) = dht else {
        return Emit::More;
    };
    let _permit = tokio::select! {
        _ = round.cancel.cancelled() => return Emit::Stop,
        permit = inner.lookup_permits.acquire() => match permit {
            Ok(permit) => permit,
            Err(_) => return Emit::Stop,
        },
    };
    let deadline = tokio::time::sleep(inner.config.query_timeout());
    tokio::pin!(deadline);
    // mainline folds a get_peers into a running query for the same target, and an announce of
    // this key runs a get_value query for it first: a lookup started then hears nothing. So wait
    // for our own announce of this key to finish; the check and the request happen under the
    // lock the announcer takes to start one, so the two cannot cross.
    let mut answers = loop {
        let announce_done = inner.announce_done.notified();
        tokio::pin!(announce_done);
        announce_done.as_mut().enable();
        {
            let announced = inner.announced.lock();
            if !announced.get(key).is_some_and(|a| a.in_flight) {
                break dht.get_peers(dht::target(key));
            }
        }
        trace!("waiting for our announce of this key before looking it up");
        tokio::select! {
            _ = round.cancel.cancelled() => return Emit::Stop,
            _ = &mut deadline => return Emit::More,
            _ = announce_done => {}
        }
    };
    let mut responses = 0u32;
    loop {
        tokio::select! {
            _ = round.cancel.cancelled() => return Emit::Stop,
            _ = &mut deadline => {
                debug!(responses, timeout_secs = inner.config.query_timeout_secs, "dht lookup timed out");
                return Emit::More;
            }
            peers = lan_changed(lan) => {
                if let Some(peers) = peers {
                    let outcome = round.emit_all(peers.addrs().collect::<Vec<_>>(), Source::Mdns).await;
                    if outcome != Emit::More {
                        return outcome;
                    }
                }
            }
            answer = answers.next() => match answer {
                Some(batch) => {
                    responses += 1;
                    let outcome = round.emit_all(batch.into_iter().map(SocketAddr::V4), Source::Dht).await;
                    if outcome != Emit::More {
                        return outcome;
                    }
                }
                None => {
                    debug!(responses, "dht lookup done");
                    return Emit::More;
                }
            }
        }
    }
}

/// Announces due keys with at most `max_concurrent_queries` in flight, forever.
async fn announcer(inner: Arc<Inner>) {
    let permits = Arc::new(Semaphore::new(inner.config.max_concurrent_queries));
    let mut running: JoinSet<(DiscoveryKey, bool)> = JoinSet::new();
    // Which key each running announce is for, so a panicked one does not stay in flight forever.
    let mut running_keys: HashMap<tokio::task::Id, DiscoveryKey> = HashMap::new();
    let port = inner.listen.port();
    loop {
        let now = Instant::now();
        let mut next_wake = now + ANNOUNCER_IDLE;
        if let Some(node) = inner.dht.as_ref().and_then(|h| h.get()) {
            let mut announced = inner.announced.lock();
            for (key, entry) in announced.iter_mut() {
                if entry.in_flight {
                    continue;
                }
                if entry.next_due > now {
                    next_wake = next_wake.min(entry.next_due);
                    continue;
                }
                // No permit: a running announce will finish and wake this loop.
                let Ok(permit) = permits.clone().try_acquire_owned() else {
                    break;
                };
                entry.in_flight = true;
                let (node, key, timeout) = (node.clone(), *key, inner.config.query_timeout());
                let span = tracing::info_span!("announce", key = %short(&key), port);
                let handle = running.spawn(
                    async move {
                        let _permit = permit;
                        let started = std::time::Instant::now();
                        let result = tokio::time::timeout(
                            timeout,
                            node.announce_peer(dht::target(&key), Some(port)),
                        )
                        .await;
                        let ok = match result {
                            Ok(Ok(_)) => {
                                info!(
                                    elapsed_ms = started.elapsed().as_millis() as u64,
                                    "announced in the dht"
                                );
                                true
                            }
                            Ok(Err(error)) => {
                                warn!(%error, "dht announce failed");
                                false
                            }
                            Err(_) => {
                                warn!(timeout_secs = timeout.as_secs(), "dht announce timed out");
                                false
                            }
                        };
                        (key, ok)
                    }
                    .instrument(span),
                );
                running_keys.insert(handle.id(), key);
            }
        }
        tokio::select! {
            _ = inner.cancel.cancelled() => return,
            _ = inner.announce_wake.notified() => {}
            _ = tokio::time::sleep_until(next_wake) => {}
            Some(done) = running.join_next_with_id(), if !running.is_empty() => {
                let (id, ok) = match done {
                    Ok((id, (_, ok))) => (id, ok),
                    Err(error) => {
                        warn!(%error, "dht announce task failed");
                        (error.id(), false)
                    }
                };
                let Some(key) = running_keys.remove(&id) else { continue };
                let reannounce = inner.config.reannounce_interval();
                if let Some(entry) = inner.announced.lock().get_mut(&key) {
                    entry.in_flight = false;
                    entry.ok_once |= ok;
                    entry.next_due = Instant::now() + if ok {
                        // Spread re-announces over the last tenth of the interval.
                        reannounce.mul_f64(0.9 + rand::random::<f64>() * 0.1)
                    } else {
                        ANNOUNCE_RETRY.min(reannounce)
                    };
                }
                inner.announce_done.notify_waiters();
            }
        }
    }
}

/// The first 8 bytes of a key in hex: enough to tell keys apart in logs.
fn short(key: &DiscoveryKey) -> String {
    hex::encode(&key[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_can_be_shared_across_tasks() {
        fn shared<T: Send + Sync>() {}
        shared::<Discovery>();
        shared::<Lookup>();
        shared::<PeerAddr>();
    }

    #[test]
    fn short_key_is_16_hex_digits() {
        assert_eq!(short(&[0xab; 32]), "abababababababab");
    }
}
