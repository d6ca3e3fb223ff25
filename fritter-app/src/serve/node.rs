//! The running node behind `fritter serve`: the own archive held open for writing, the followed
//! archives, the index over them, and the events that tell open pages what changed.
//!
//! Replication ([`crate::sync::Sync`]) holds the followed archives; the node watches each log
//! for new verified blocks, folds them into the index and sends the new statuses to open pages
//! as server-sent events.
//!
//! Before an identity exists the node is in setup: only the identity endpoint works, and the
//! node goes live once a name is given (in the UI, or by `fritter init` in a terminal).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use fritter_common::archive::Archive;
use fritter_common::crypto::PublicKey;
use fritter_common::store::OpenArchive;
use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use tokio::sync::{broadcast, mpsc};

use crate::follows::{read_follows, KnownNames};
use crate::index::{Changes, Index};
use crate::serve::crawler::Crawler;
use crate::serve::ServeOptions;
use crate::sync::Sync;
use crate::App;

/// What open pages are told, as server-sent events (`event: <type>`, `data: <json>`).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Event {
    /// Statuses appeared in (or left) the feed.
    Feed {
        statuses: Vec<String>,
        deleted: Vec<String>,
    },
    /// The unread notification count changed.
    Notifications { unread: usize },
    /// The node went live (an identity was created) or finished its first index.
    Ready { indexing: bool },
}

impl Event {
    pub fn name(&self) -> &'static str {
        match self {
            Event::Feed { .. } => "feed",
            Event::Notifications { .. } => "notifications",
            Event::Ready { .. } => "ready",
        }
    }
}

/// The node once an identity exists.
pub struct Live {
    /// The own archive, its write lock held for as long as the node runs.
    pub own: OpenArchive,
    pub index: Arc<Index>,
    /// Replication of the own archive and the followed ones.
    pub sync: Sync,
    /// True until the first full index build is done.
    pub indexing: AtomicBool,
    /// One task per indexed archive, watching its log: any growth of what is held (new
    /// verified blocks, not only a longer signed length) or a fork is sent to `changed`.
    watchers: Mutex<HashMap<PublicKey, tokio::task::AbortHandle>>,
    changed: mpsc::UnboundedSender<PublicKey>,
    /// The task folding what the watchers report.
    folder: Mutex<Option<tokio::task::AbortHandle>>,
    runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live").finish_non_exhaustive()
    }
}

impl Live {
    /// Starts watching the logs of newly indexed archives, stops watching those gone.
    fn watch_archives(&self) {
        let keys = self.index.keys();
        let mut watchers = self.watchers.lock();
        watchers.retain(|k, task| {
            let keep = keys.contains(k);
            if !keep {
                task.abort();
            }
            keep
        });
        for key in keys {
            if watchers.contains_key(&key) {
                continue;
            }
            let Some(archive) = self.index.archive(&key) else {
                continue;
            };
            let mut rx = archive.log().subscribe();
            let tx = self.changed.clone();
            let task = self.runtime.spawn(async move {
                let mut last = *rx.borrow_and_update();
                // Whatever happened before the watch started is folded by the caller.
                while rx.changed().await.is_ok() {
                    let now = *rx.borrow_and_update();
                    if (now.contiguous != last.contiguous || now.fork != last.fork)
                        && tx.send(key).is_err()
                    {
                        return;
                    }
                    last = now;
                }
            });
            watchers.insert(key, task.abort_handle());
        }
    }

    /// The names `@mentions` resolve against: the followed archives' profile names, from the
    /// index (no log is opened).
    pub fn known_names(&self) -> anyhow::Result<KnownNames> {
        let (follows, _) = read_follows(&self.own)?;
        let mut known = KnownNames::default();
        for url in follows.urls {
            let key: PublicKey = url.key().into();
            match self.index.profile(&key) {
                Some(profile) => known.names.push((profile.name, url)),
                None => known.not_held.push(url),
            }
        }
        Ok(known)
    }
}

/// Shared state of the server.
pub struct Node {
    pub app: App,
    /// The per-install secret every write request carries.
    pub token: String,
    /// `http://127.0.0.1:<port>` (and the `localhost` spelling): the only origins allowed to write.
    pub origins: Vec<String>,
    /// `Host` headers accepted, against DNS rebinding.
    pub hosts: Vec<String>,
    pub events: broadcast::Sender<Event>,
    pub crawler: Option<Crawler>,
    pub options: ServeOptions,
    live: RwLock<Option<Arc<Live>>>,
    /// Held while going live, so it happens once.
    going_live: tokio::sync::Mutex<()>,
    /// Why the node is not live (waiting for another process to release the archive, say).
    failure: Mutex<Option<String>>,
    /// The own archive, taken as soon as it was free and kept until the node goes live.
    claimed: Mutex<Option<OpenArchive>>,
    /// Held by every write request for its whole length: writes through the API run one at a
    /// time, so an idempotency key's record and an export see one writer.
    pub writes: tokio::sync::Mutex<()>,
    /// The answers of writes sent with an idempotency key.
    pub keys: crate::idempotency::Keys,
    /// Notifications up to this time (Unix ms) are read.
    read_up_to: Mutex<i64>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node").finish_non_exhaustive()
    }
}

impl Node {
    pub fn new(app: App, token: String, port: u16, options: ServeOptions) -> anyhow::Result<Node> {
        let crawler = options.crawler.as_deref().map(Crawler::new).transpose()?;
        let mut hosts = vec![format!("127.0.0.1:{port}"), format!("localhost:{port}")];
        let bound = options.http.ip();
        if !bound.is_loopback() && !bound.is_unspecified() {
            hosts.push(format!("{bound}:{port}"));
        }
        if bound.is_ipv6() {
            hosts.push(format!("[::1]:{port}"));
        }
        let origins = hosts.iter().map(|h| format!("http://{h}")).collect();
        let read_up_to = read_marker(&app).unwrap_or(0);
        let app_keys = app.clone();
        Ok(Node {
            app,
            token,
            origins,
            hosts,
            events: broadcast::channel(1024).0,
            crawler,
            options,
            live: RwLock::new(None),
            going_live: tokio::sync::Mutex::new(()),
            failure: Mutex::default(),
            claimed: Mutex::default(),
            writes: tokio::sync::Mutex::new(()),
            keys: crate::idempotency::Keys::new(&app_keys),
            read_up_to: Mutex::new(read_up_to),
        })
    }

    pub fn live(&self) -> Option<Arc<Live>> {
        self.live.read().clone()
    }

    /// Whether an identity exists but the node is not live yet (still opening the archives).
    pub fn starting(&self) -> bool {
        self.live().is_none() && self.app.store.identity().ok().flatten().is_some()
    }

    pub fn failed(&self, why: String) {
        *self.failure.lock() = Some(why);
    }

    pub fn failure(&self) -> Option<String> {
        self.failure.lock().clone()
    }

    /// Takes the own archive's write lock if it is free (blocking: the log is opened).
    /// `Ok(false)` when there is no identity yet; the lock error when another process holds it.
    pub fn claim(&self) -> anyhow::Result<bool> {
        if self.live().is_some() || self.claimed.lock().is_some() {
            return Ok(true);
        }
        if self.app.store.identity()?.is_none() {
            return Ok(false);
        }
        let own = self
            .app
            .store
            .open_own()
            .context("cannot open your archive")?;
        *self.claimed.lock() = Some(own);
        *self.failure.lock() = None;
        Ok(true)
    }

    /// Opens the own archive, starts replicating it and the followed ones, and indexes them (in
    /// the background). Returns `Ok(false)` when there is no identity yet.
    pub async fn go_live(self: &Arc<Self>) -> anyhow::Result<bool> {
        let _once = self.going_live.lock().await;
        self.go_live_locked().await
    }

    /// Creates the identity and archive (`fritter init`), then goes live.
    pub async fn create_identity(
        self: &Arc<Self>,
        name: String,
        bio: String,
    ) -> anyhow::Result<crate::identity::Created> {
        let _once = self.going_live.lock().await;
        if self.live().is_some() || self.app.store.identity()?.is_some() {
            anyhow::bail!("an identity already exists here");
        }
        let app = self.app.clone();
        let created = tokio::task::spawn_blocking(move || crate::identity::init(&app, &name, &bio))
            .await
            .context("identity task failed")??;
        self.go_live_locked().await?;
        Ok(created)
    }

    async fn go_live_locked(self: &Arc<Self>) -> anyhow::Result<bool> {
        if self.live().is_some() {
            return Ok(true);
        }
        if self.app.store.identity()?.is_none() {
            return Ok(false);
        }
        let claimed = self.claimed.lock().take();
        let own = match claimed {
            Some(own) => own,
            None => self
                .app
                .store
                .open_own()
                .context("cannot open your archive")?,
        };
        let sync = Sync::start(
            &self.app.store,
            own.log().clone(),
            self.options.net.options(),
        )
        .await
        .context("cannot start replication")?;
        let own_view = Arc::new(Archive::new(own.log().clone()));
        let index = Arc::new(Index::new(own_view));
        let (changed, changes) = mpsc::unbounded_channel();
        let live = Arc::new(Live {
            own,
            index,
            sync,
            indexing: AtomicBool::new(true),
            watchers: Mutex::default(),
            changed,
            folder: Mutex::default(),
            runtime: tokio::runtime::Handle::current(),
        });
        // Own statuses first, so the own page works at once; everything else in the background.
        if let Err(err) = live.index.refresh(&live.index.own()) {
            tracing::warn!(error = %err, "cannot index your archive");
        }
        live.watch_archives();
        if let Some(crawler) = &self.crawler {
            crawler.announce_in_background(live.own.key());
        }
        *self.live.write() = Some(live.clone());
        *self.failure.lock() = None;
        let node = self.clone();
        let builder = live.clone();
        std::thread::Builder::new()
            .name("fritter-index".into())
            .spawn(move || {
                let started = std::time::Instant::now();
                builder.index.set_archives(builder.sync.archives());
                builder.watch_archives();
                let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
                let entries = builder.index.refresh_all(threads);
                builder.indexing.store(false, Ordering::SeqCst);
                release_memory();
                let stats = builder.index.stats();
                tracing::info!(
                    archives = stats.archives,
                    statuses = stats.statuses,
                    skipped = stats.skipped,
                    entries,
                    ms = started.elapsed().as_millis() as u64,
                    "index built"
                );
                let _ = node.events.send(Event::Ready { indexing: false });
                node.notify_unread();
            })
            .context("cannot start the indexing thread")?;
        let folder = tokio::spawn(follow_changes(self.clone(), live.clone(), changes));
        *live.folder.lock() = Some(folder.abort_handle());
        Ok(true)
    }

    /// Stops replication (after the web server stopped).
    pub async fn shutdown(&self) {
        let Some(mut live) = self.live.write().take() else {
            return;
        };
        for (_, task) in live.watchers.lock().drain() {
            task.abort();
        }
        if let Some(task) = live.folder.lock().take() {
            task.abort();
        }
        // Background work may still hold the node for a moment (the first index build).
        for _ in 0..50 {
            match Arc::try_unwrap(live) {
                Ok(live) => {
                    live.sync.shutdown().await;
                    return;
                }
                Err(again) => live = again,
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        tracing::warn!("replication still busy at shutdown; stopping anyway");
    }

    /// After a follow or unfollow: hold the archives followed now and index the new ones.
    pub fn follows_changed(&self, live: &Live) -> anyhow::Result<()> {
        live.sync.refresh_follows()?;
        let added = live.index.set_archives(live.sync.archives());
        live.watch_archives();
        for key in added {
            let changes = live.index.refresh(&key)?;
            self.publish(&changes);
        }
        Ok(())
    }

    /// Folds what an archive gained and tells open pages.
    pub fn refresh(&self, live: &Live, key: &PublicKey) -> anyhow::Result<Changes> {
        let changes = live.index.refresh(key)?;
        self.publish(&changes);
        Ok(changes)
    }

    /// Sends the events for `changes`.
    pub fn publish(&self, changes: &Changes) {
        if changes.is_empty() {
            return;
        }
        let url = |(k, id): &(PublicKey, fritter_common::model::StatusId)| {
            fritter_common::model::ArchiveUrl::status((*k).into(), *id).to_string()
        };
        let _ = self.events.send(Event::Feed {
            statuses: changes.statuses.iter().map(url).collect(),
            deleted: changes.deleted.iter().map(url).collect(),
        });
        if changes.notifications > 0 || changes.rebuilt || !changes.deleted.is_empty() {
            self.notify_unread();
        }
    }

    pub fn notify_unread(&self) {
        if let Some(live) = self.live() {
            let unread = live.index.unread(self.read_up_to());
            let _ = self.events.send(Event::Notifications { unread });
        }
    }

    pub fn read_up_to(&self) -> i64 {
        *self.read_up_to.lock()
    }

    /// Marks every notification up to `up_to_ms` read, and remembers it across restarts.
    pub fn mark_read(&self, up_to_ms: i64) -> anyhow::Result<()> {
        let mut marker = self.read_up_to.lock();
        if up_to_ms > *marker {
            *marker = up_to_ms;
            write_private(
                &marker_path(&self.app),
                format!("{{\"readUpTo\":{up_to_ms}}}\n").as_bytes(),
            )?;
        }
        drop(marker);
        self.notify_unread();
        Ok(())
    }
}

/// Folds every archive replication reports grown, and tells open pages: the path of a new
/// status in a followed archive to the feed. Bursts are coalesced, one fold per archive.
async fn follow_changes(
    node: Arc<Node>,
    live: Arc<Live>,
    mut changes: mpsc::UnboundedReceiver<PublicKey>,
) {
    while let Some(key) = changes.recv().await {
        let mut keys = HashSet::from([key]);
        while let Ok(key) = changes.try_recv() {
            keys.insert(key);
        }
        let (n, l) = (node.clone(), live.clone());
        let done = tokio::task::spawn_blocking(move || {
            for key in keys {
                if let Err(err) = n.refresh(&l, &key) {
                    tracing::warn!(archive = %key, error = %format!("{err:#}"), "cannot index archive");
                }
            }
        })
        .await;
        if done.is_err() {
            return;
        }
    }
}

/// Gives the heap the index build freed back to the system (glibc keeps it otherwise).
fn release_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory of the allocator's arenas.
    unsafe {
        libc::malloc_trim(0);
    }
}

fn marker_path(app: &App) -> PathBuf {
    app.store.root().join("app").join("notifications.json")
}

fn read_marker(app: &App) -> Option<i64> {
    let text = std::fs::read_to_string(marker_path(app)).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    value.get("readUpTo")?.as_i64()
}

/// Writes a file readable by its owner only, replacing it atomically. Directories it creates
/// are the owner's only too (the data directory itself, on a first `fritter serve`).
///
/// The temporary file is created fresh (`O_EXCL`) and never through a symlink (`O_NOFOLLOW`):
/// whoever could plant a link at its predictable name would otherwise have the token written
/// wherever it points. A leftover from a crash is removed (the link, not its target) and the
/// creation tried once more.
pub fn write_private(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = path
        .parent()
        .context("a private file needs a parent directory")?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    fritter_common::store::write_private_atomic(path, bytes)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::write_private;

    fn mode(path: &std::path::Path) -> u32 {
        std::fs::symlink_metadata(path)
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    }

    #[test]
    fn private_files_and_their_new_directories_are_the_owners_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data").join("app").join("token");
        write_private(&path, b"secret").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"secret");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        assert_eq!(mode(&dir.path().join("data")), 0o700);
        write_private(&path, b"again").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"again");
    }

    #[test]
    fn a_symlink_planted_at_the_temporary_path_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "untouched").unwrap();
        let path = dir.path().join("serve.json");
        let tmp = dir.path().join("serve.json.tmp");
        std::os::unix::fs::symlink(&victim, &tmp).unwrap();
        write_private(&path, b"token").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");
        assert_eq!(std::fs::read(&path).unwrap(), b"token");
        assert_eq!(mode(&path), 0o600);
        assert!(!tmp.exists());
        // A dangling link (to where a file would be created) is not followed either.
        let target = dir.path().join("created-through-link");
        std::os::unix::fs::symlink(&target, &tmp).unwrap();
        write_private(&path, b"token 2").unwrap();
        assert!(!target.exists(), "the link was followed");
        assert_eq!(std::fs::read(&path).unwrap(), b"token 2");
    }
}
