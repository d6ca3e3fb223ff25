//! Replication for the app: your archive and every archive in your `/follows.json`, live, with
//! whichever peers have them. `fritter sync` runs it in the foreground and `fritter serve` in the
//! background; both write a status file (`sync.json` in the data directory) that `fritter peers`
//! reads, so a second process can show who is connected without touching the archives.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use fritter_common::archive::Archive;
use fritter_common::crypto::PublicKey;
use fritter_common::discovery;
use fritter_common::http::shutdown_signal;
use fritter_common::log::{Log, LogStatus};
use fritter_common::model::ArchiveUrl;
use fritter_common::replicate::NodeConfig;
use fritter_common::store::{OpenArchive, Store};
use fritter_common::swarm::{AddrStatus, Swarm, SwarmConfig, SwarmStatus};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::follows::read_follows;
use crate::output::Report;
use crate::App;

/// The status file a running sync keeps up to date.
pub const STATUS_FILE: &str = "sync.json";
/// How often the status file is rewritten.
const STATUS_EVERY: Duration = Duration::from_secs(1);
/// Capacity of [`Sync::changes`]; a slow receiver loses the oldest notifications.
const CHANGES: usize = 1024;

/// How to find and reach peers.
#[derive(Debug, Clone, Default)]
pub struct SyncOptions {
    /// Where to accept connections; `None` picks a free port on every interface.
    pub listen: Option<SocketAddr>,
    /// Always-on peers, `HOST:PORT`.
    pub peers: Vec<String>,
    /// DHT and mDNS settings (its `peers` are merged with `peers`).
    pub discovery: discovery::Config,
}

/// The archives this process replicates, and the swarm that replicates them.
pub struct Sync {
    store: Store,
    own: Arc<Log>,
    swarm: Arc<Swarm>,
    followed: Mutex<HashMap<PublicKey, Held>>,
    changes: broadcast::Sender<PublicKey>,
    cancel: CancellationToken,
    tasks: Mutex<JoinSet<()>>,
}

impl std::fmt::Debug for Sync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sync").finish_non_exhaustive()
    }
}

/// A followed archive held open: the replica's lock, and a view over its log.
struct Held {
    archive: Arc<Archive>,
    _open: OpenArchive,
    watcher: tokio::task::AbortHandle,
}

impl Sync {
    /// Replicates `own` (the writer log this process holds) and every archive in its
    /// `/follows.json`, live.
    pub async fn start(store: &Store, own: Arc<Log>, opts: SyncOptions) -> anyhow::Result<Sync> {
        // One open file per archive file of a thousand followed archives.
        fritter_common::store::raise_fd_limit();
        let mut discovery = opts.discovery;
        discovery.peers.extend(opts.peers);
        let listen = opts
            .listen
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
        let swarm = Swarm::start(SwarmConfig {
            node: NodeConfig {
                listen: Some(listen),
                ..NodeConfig::default()
            },
            discovery,
        })
        .await
        .with_context(|| format!("could not start replication on {listen}; is another `fritter sync` or `fritter serve` using that address? Pick another with --listen"))?;
        let (changes, _) = broadcast::channel(CHANGES);
        let sync = Sync {
            store: store.clone(),
            own: own.clone(),
            swarm: Arc::new(swarm),
            followed: Mutex::new(HashMap::new()),
            changes,
            cancel: CancellationToken::new(),
            tasks: Mutex::new(JoinSet::new()),
        };
        // Our own log is watched for as long as the sync runs.
        sync.watch(own.clone());
        sync.swarm.add(own);
        sync.refresh_follows()?;
        sync.tasks.lock().spawn(write_status_loop(
            store.root().join(STATUS_FILE),
            sync.swarm.clone(),
            sync.cancel.clone(),
        ));
        Ok(sync)
    }

    /// Re-reads `/follows.json` and starts or stops replicating archives to match.
    pub fn refresh_follows(&self) -> anyhow::Result<()> {
        let own = Archive::new(self.own.clone());
        let (follows, _) = read_follows(&own)?;
        let own_key = self.own.key();
        let wanted: Vec<PublicKey> = follows
            .urls
            .iter()
            .map(|u: &ArchiveUrl| PublicKey::from(u.key()))
            .filter(|k| *k != own_key)
            .collect();
        let mut followed = self.followed.lock();
        for key in &wanted {
            if followed.contains_key(key) {
                continue;
            }
            let open = match self.store.open_replica(key) {
                Ok(open) => open,
                Err(e) => {
                    tracing::warn!(archive = %key, error = %e, "cannot replicate a followed archive");
                    continue;
                }
            };
            let log = open.log().clone();
            let watcher = self.watch(log.clone());
            self.swarm.add(log.clone());
            tracing::info!(archive = %key, length = log.info().length, "following");
            followed.insert(
                *key,
                Held {
                    archive: Arc::new(Archive::new(log)),
                    _open: open,
                    watcher,
                },
            );
        }
        let gone: Vec<PublicKey> = followed
            .keys()
            .filter(|k| !wanted.contains(k))
            .copied()
            .collect();
        for key in gone {
            if let Some(held) = followed.remove(&key) {
                held.watcher.abort();
                self.swarm.remove(&key);
                tracing::info!(archive = %key, "unfollowed: stopped replicating");
            }
        }
        Ok(())
    }

    /// Read handles of the followed archives held.
    pub fn archives(&self) -> Vec<Arc<Archive>> {
        self.followed
            .lock()
            .values()
            .map(|h| h.archive.clone())
            .collect()
    }

    /// Notified with an archive's key whenever its log grows or forks (own archive included).
    pub fn changes(&self) -> broadcast::Receiver<PublicKey> {
        self.changes.subscribe()
    }

    pub fn swarm(&self) -> &Swarm {
        &self.swarm
    }

    /// Stops replicating and removes the status file.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        let mut tasks = std::mem::take(&mut *self.tasks.lock());
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        for (_, held) in self.followed.lock().drain() {
            held.watcher.abort();
        }
        self.swarm.shutdown().await;
        let _ = std::fs::remove_file(self.store.root().join(STATUS_FILE));
    }

    /// Sends the log's key on `changes` each time it grows or forks.
    fn watch(&self, log: Arc<Log>) -> tokio::task::AbortHandle {
        let key = log.key();
        let tx = self.changes.clone();
        let mut rx = log.subscribe();
        self.tasks.lock().spawn(async move {
            let mut last: LogStatus = *rx.borrow_and_update();
            while rx.changed().await.is_ok() {
                let now = *rx.borrow_and_update();
                if now.length != last.length || now.fork != last.fork {
                    let _ = tx.send(key);
                }
                last = now;
            }
        })
    }
}

/// What `fritter peers` reads.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusFile {
    pub pid: u32,
    /// Milliseconds since the epoch when this was written.
    pub written_at: u64,
    /// A [`SwarmStatus`].
    pub status: serde_json::Value,
}

fn millis_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Rewrites the status file every second (atomically: a reader never sees half of it).
async fn write_status_loop(path: PathBuf, swarm: Arc<Swarm>, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(STATUS_EVERY);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let status = swarm.status().await;
        if let Err(e) = write_status(&path, &status) {
            tracing::debug!(path = %path.display(), error = %e, "could not write the status file");
        }
    }
}

fn write_status(path: &Path, status: &SwarmStatus) -> anyhow::Result<()> {
    let file = StatusFile {
        pid: std::process::id(),
        written_at: millis_now(),
        status: serde_json::to_value(status)?,
    };
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&file)?)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// `fritter sync`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Synced {
    /// Whether every archive caught up with its peers (`--once`).
    pub caught_up: bool,
    pub archives: Vec<SyncedArchive>,
    pub blocks_downloaded: u64,
    pub blocks_uploaded: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncedArchive {
    pub url: String,
    pub length: u64,
    pub contiguous: u64,
    pub peers: usize,
}

impl fmt::Display for Synced {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for a in &self.archives {
            writeln!(
                f,
                "{}  {} entries{}  {} peer(s)",
                a.url,
                a.length,
                if a.contiguous < a.length {
                    format!(" ({} held)", a.contiguous)
                } else {
                    String::new()
                },
                a.peers
            )?;
        }
        write!(
            f,
            "{} block(s) downloaded, {} uploaded",
            self.blocks_downloaded, self.blocks_uploaded
        )
    }
}

impl Report for Synced {
    fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if !self.caught_up {
            let lonely = self.archives.iter().filter(|a| a.peers == 0).count();
            w.push(format!(
                "not caught up: {lonely} archive(s) found no peer; check the peers with `fritter peers`, or give one with --peer HOST:PORT"
            ));
        }
        w
    }
}

/// The flags of `fritter sync` and `fritter serve` that reach peers.
#[derive(Debug, Clone, Default)]
pub struct NetFlags {
    pub listen: Option<SocketAddr>,
    pub peers: Vec<String>,
    pub no_dht: bool,
    pub no_mdns: bool,
    pub bootstrap: Vec<String>,
}

impl NetFlags {
    pub fn options(&self) -> SyncOptions {
        let mut discovery = discovery::Config::default();
        if self.no_dht {
            discovery.dht.bootstrap.clear();
        } else if !self.bootstrap.is_empty() {
            discovery.dht.bootstrap = self.bootstrap.clone();
        }
        if self.no_mdns {
            discovery.mdns.enabled = false;
        }
        SyncOptions {
            listen: self.listen,
            peers: self.peers.clone(),
            discovery,
        }
    }
}

/// Runs `fritter sync`: until ctrl-c, or with `once` until caught up (or `timeout`).
///
/// It serves the same local API as `fritter serve` (on 127.0.0.1, a free port, announced in
/// `serve.json`), so every command works while it runs: they go through it, as through serve.
pub fn run(
    app: &App,
    net: &NetFlags,
    once: bool,
    timeout: Duration,
    progress: bool,
) -> anyhow::Result<Synced> {
    app.store.require_identity()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    runtime.block_on(async {
        let options = crate::serve::ServeOptions {
            http: SocketAddr::from(([127, 0, 0, 1], 0)),
            net: net.clone(),
            crawler: None,
        };
        let server = crate::serve::Server::start(app, options).await?;
        let claimed = server.claim().await;
        if let Err(err) = claimed {
            let running = crate::remote::Remote::find(app).map(|r| r.url().to_owned());
            return match running {
                Some(url) if crate::remote::is_locked(&err) => Err(anyhow::anyhow!(
                    "your archives are already replicated by the `fritter serve` or `fritter sync` at {url}; `fritter peers` shows its connections"
                )),
                _ => Err(err),
            };
        }
        let result = replicate(&server, once, timeout, progress).await;
        server.stop().await?;
        result
    })
}

/// The foreground part of `fritter sync`, on the server's live node.
async fn replicate(
    server: &crate::serve::Server,
    once: bool,
    timeout: Duration,
    progress: bool,
) -> anyhow::Result<Synced> {
    server.node.go_live().await?;
    let live = server
        .node
        .live()
        .context("your archive has no identity; run `fritter init --name NAME` first")?;
    let swarm = live.sync.swarm();
    if let Some(addr) = swarm.local_addr() {
        eprintln!(
            "replicating {} archive(s); listening on {addr}",
            swarm.progress().len()
        );
    }
    let caught_up = if once {
        let wait = swarm.caught_up(timeout);
        tokio::pin!(wait);
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                done = &mut wait => break done,
                _ = ticker.tick(), if progress => print_progress(swarm),
                _ = shutdown_signal() => break false,
            }
        }
    } else {
        let mut ticker = tokio::time::interval(Duration::from_secs(2));
        loop {
            tokio::select! {
                _ = ticker.tick(), if progress => print_progress(swarm),
                _ = shutdown_signal() => break,
            }
        }
        eprintln!("stopping");
        true
    };
    let stats = swarm.node().stats();
    let archives = swarm
        .progress()
        .into_iter()
        .map(|p| SyncedArchive {
            url: ArchiveUrl::root(p.key.into()).to_string(),
            length: p.length,
            contiguous: p.contiguous,
            peers: p.peers,
        })
        .collect();
    Ok(Synced {
        caught_up,
        archives,
        blocks_downloaded: stats.blocks_downloaded,
        blocks_uploaded: stats.blocks_uploaded,
    })
}

/// One line per archive still downloading, on stderr.
fn print_progress(swarm: &Swarm) {
    for p in swarm.progress() {
        let target = p.remote_length.max(p.length);
        if p.contiguous < target {
            let pct = (p.contiguous * 100).checked_div(target).unwrap_or(100);
            eprintln!(
                "downloading {}: {}/{} entries ({pct}%) from {} peer(s)",
                ArchiveUrl::root(p.key.into()),
                p.contiguous,
                target,
                p.peers
            );
        }
    }
}

/// `fritter peers`: what the running sync last wrote.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Peers {
    pub pid: u32,
    /// Seconds since the running sync wrote its status.
    pub age_secs: u64,
    #[serde(flatten)]
    pub status: SwarmStatus,
}

impl fmt::Display for Peers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.status;
        match s.listen {
            Some(addr) => writeln!(f, "listening on {addr} (pid {})", self.pid)?,
            None => writeln!(f, "not listening (pid {})", self.pid)?,
        }
        writeln!(f, "dht: {}", s.dht)?;
        if let Some(m) = &s.mdns {
            writeln!(f, "mdns: {m}")?;
        }
        writeln!(
            f,
            "{} connection(s) of at most {}:",
            s.connections.len(),
            s.max_connections
        )?;
        for c in &s.connections {
            writeln!(
                f,
                "  {} {}  {} archive(s)",
                if c.initiator { "->" } else { "<-" },
                c.addr,
                c.channels
            )?;
        }
        let waiting: Vec<&AddrStatus> = s
            .addresses
            .iter()
            .filter(|a| !a.connected && a.failures > 0)
            .collect();
        if !waiting.is_empty() {
            writeln!(f, "backing off:")?;
            for a in waiting {
                writeln!(
                    f,
                    "  {} ({}): {} failure(s), retry in {} s{}",
                    a.addr,
                    a.source,
                    a.failures,
                    a.retry_in_secs,
                    a.last_error
                        .as_deref()
                        .map(|e| format!(": {e}"))
                        .unwrap_or_default()
                )?;
            }
        }
        writeln!(f, "archives:")?;
        for a in &s.archives {
            writeln!(
                f,
                "  hyper://{}/  {}/{} entries, {} peer(s)",
                a.key,
                a.contiguous,
                a.length.max(a.remote_length),
                a.peers
            )?;
        }
        write!(
            f,
            "{} block(s) downloaded, {} uploaded",
            s.blocks_downloaded, s.blocks_uploaded
        )
    }
}

impl Report for Peers {}

/// Reads the status file of the sync running on this data directory.
pub fn peers(app: &App) -> anyhow::Result<Peers> {
    let path = app.store.root().join(STATUS_FILE);
    let not_running = || {
        anyhow::anyhow!(
            "no `fritter sync` or `fritter serve` is running on {}; start one with `fritter sync`",
            app.config.data_dir.display()
        )
    };
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(not_running()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let file: StatusFile = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is damaged; restart `fritter sync`", path.display()))?;
    // SAFETY: signal 0 only checks that the process exists.
    let alive = unsafe { libc::kill(file.pid as libc::pid_t, 0) } == 0;
    if !alive {
        return Err(not_running());
    }
    let status: SwarmStatus = serde_json::from_value(file.status)
        .with_context(|| format!("{} is damaged; restart `fritter sync`", path.display()))?;
    if status.archives.is_empty() && status.listen.is_none() {
        bail!("the running sync reports nothing yet; try again in a second");
    }
    Ok(Peers {
        pid: file.pid,
        age_secs: millis_now().saturating_sub(file.written_at) / 1000,
        status,
    })
}
