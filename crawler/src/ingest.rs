//! Ingest: follows every archive's log and writes its files into the index.
//!
//! One thread owns the tantivy writer. Archives with new entries are queued (by `Log::subscribe`
//! watchers, or when added); the thread takes them round-robin and indexes at most
//! [`IngestConfig::batch_entries`] entries or [`IngestConfig::turn_time`] of one archive per
//! turn before moving on, so one huge or hostile archive never stalls the others. Every entry is
//! read verified from the log, decoded and validated by the model; an invalid entry is skipped
//! and counted, with its reason, in the archive's checkpoint.
//!
//! Commits happen [`IngestConfig::commit_interval_ms`] after the first uncommitted change (or
//! sooner when many are pending), each carrying every checkpoint in its payload, then the reader
//! is reloaded: a new status is searchable well within a second. While it catches up on a
//! backlog the ingester commits every [`IngestConfig::catch_up_commit_interval_ms`] instead.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fritter_common::crypto::{self, PublicKey};
use fritter_common::log::Log;
use fritter_common::model::{ArchiveKey, Entry, File, FilePath};
use parking_lot::{Condvar, Mutex, RwLock};
use serde::Deserialize;
use tantivy::{IndexWriter, TantivyDocument, Term};

use crate::index::{author_id, Checkpoint, Index, Payload, SkippedEntry};

/// Reasons kept per archive for skipped entries (the count keeps going).
const MAX_REASONS: usize = 5;

/// Tuning of the ingest loop; the defaults suit a small machine.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// Most entries of one archive indexed per turn.
    pub batch_entries: u64,
    /// Most time spent on one archive per turn, in milliseconds.
    pub turn_time_ms: u64,
    /// Longest wait between a change and its commit, in milliseconds, while the ingester keeps
    /// up.
    pub commit_interval_ms: u64,
    /// The same while it catches up (an archive had more new entries than one turn takes, or
    /// 5,000 documents wait uncommitted, with archives still queued), in milliseconds. Fewer
    /// commits make fewer, larger segments, and merges wait until the backlog is done; a status
    /// written meanwhile waits behind the backlog anyway.
    pub catch_up_commit_interval_ms: u64,
    /// Commit at once when this many documents (and archive turns) are pending.
    pub max_pending: u64,
    /// tantivy indexing threads.
    pub writer_threads: usize,
    /// tantivy indexing memory, in bytes (split among the threads).
    pub writer_memory: usize,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            batch_entries: 2000,
            turn_time_ms: 50,
            commit_interval_ms: 200,
            catch_up_commit_interval_ms: 10_000,
            max_pending: 500_000,
            writer_threads: std::thread::available_parallelism()
                .map_or(1, |n| n.get() / 2)
                .clamp(1, 4),
            writer_memory: 256 * 1024 * 1024,
        }
    }
}

#[derive(Default)]
struct Queue {
    order: VecDeque<PublicKey>,
    queued: HashSet<PublicKey>,
    stop: bool,
    /// The worker has nothing queued and nothing uncommitted.
    idle: bool,
}

struct Shared {
    index: Arc<Index>,
    sources: Mutex<HashMap<PublicKey, Arc<Log>>>,
    queue: Mutex<Queue>,
    wake: Condvar,
    idle: Condvar,
    committed: RwLock<Payload>,
    commits: tokio::sync::watch::Sender<u64>,
    errors: Mutex<HashMap<PublicKey, String>>,
    discovered: Option<tokio::sync::mpsc::Sender<PublicKey>>,
    statuses_indexed: AtomicU64,
}

/// The ingest loop and what it reports.
pub struct Ingester {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Ingester {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingester").finish_non_exhaustive()
    }
}

impl Ingester {
    /// Starts the ingest thread over `index`, resuming from `payload` (the last commit's).
    /// Archive keys seen in follows, mentions and replies go to `discovered`.
    pub fn start(
        index: Arc<Index>,
        payload: Payload,
        config: IngestConfig,
        discovered: Option<tokio::sync::mpsc::Sender<PublicKey>>,
    ) -> Result<Arc<Ingester>, tantivy::TantivyError> {
        let writer: IndexWriter = index
            .index
            .writer_with_num_threads(config.writer_threads.max(1), config.writer_memory)?;
        let catching_up = Arc::new(AtomicBool::new(false));
        writer.set_merge_policy(Box::new(CatchUpMergePolicy {
            inner: tantivy::indexer::LogMergePolicy::default(),
            catching_up: catching_up.clone(),
        }));
        let (commits, _) = tokio::sync::watch::channel(payload.next_iseq);
        let shared = Arc::new(Shared {
            index,
            sources: Mutex::new(HashMap::new()),
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            idle: Condvar::new(),
            committed: RwLock::new(payload.clone()),
            commits,
            errors: Mutex::new(HashMap::new()),
            discovered,
            statuses_indexed: AtomicU64::new(0),
        });
        let worker = Worker {
            shared: shared.clone(),
            writer,
            payload,
            pending: 0,
            first_pending: None,
            config,
            seen: HashSet::new(),
            fresh: HashMap::new(),
            fresh_paths: 0,
            catching_up,
        };
        let thread = std::thread::Builder::new()
            .name("ingest".into())
            .spawn(move || worker.run())
            .map_err(|e| tantivy::TantivyError::SystemError(e.to_string()))?;
        Ok(Arc::new(Ingester {
            shared,
            thread: Mutex::new(Some(thread)),
        }))
    }

    /// Follows a log from now on (indexing it from its checkpoint).
    pub fn add_source(&self, log: Arc<Log>) {
        let key = log.key();
        self.shared.sources.lock().insert(key, log);
        self.mark_dirty(key);
    }

    /// Stops following a log.
    pub fn remove_source(&self, key: &PublicKey) {
        self.shared.sources.lock().remove(key);
    }

    /// The log of a followed archive.
    pub fn source(&self, key: &PublicKey) -> Option<Arc<Log>> {
        self.shared.sources.lock().get(key).cloned()
    }

    /// Every followed archive.
    pub fn sources(&self) -> Vec<(PublicKey, Arc<Log>)> {
        self.shared
            .sources
            .lock()
            .iter()
            .map(|(k, l)| (*k, l.clone()))
            .collect()
    }

    /// Queues an archive whose log changed.
    pub fn mark_dirty(&self, key: PublicKey) {
        let mut q = self.shared.queue.lock();
        if q.queued.insert(key) {
            q.order.push_back(key);
        }
        q.idle = false;
        self.shared.wake.notify_one();
    }

    /// Follows `log` and queues it on every change, until the log is dropped everywhere else.
    pub fn watch(self: &Arc<Self>, log: &Arc<Log>) -> tokio::task::JoinHandle<()> {
        let key = log.key();
        let mut rx = log.subscribe();
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            while rx.changed().await.is_ok() {
                match me.upgrade() {
                    Some(me) => me.mark_dirty(key),
                    None => break,
                }
            }
        })
    }

    /// The index this ingests into.
    pub fn index(&self) -> &Arc<Index> {
        &self.shared.index
    }

    /// Reads the state of the last commit.
    pub fn committed<T>(&self, f: impl FnOnce(&Payload) -> T) -> T {
        f(&self.shared.committed.read())
    }

    /// The committed checkpoint of one archive.
    pub fn checkpoint(&self, key: &PublicKey) -> Option<Checkpoint> {
        self.shared
            .committed
            .read()
            .archives
            .get(&key.to_hex())
            .cloned()
    }

    /// Sees the next ingest sequence after every commit (the stream's wake-up call).
    pub fn subscribe_commits(&self) -> tokio::sync::watch::Receiver<u64> {
        self.shared.commits.subscribe()
    }

    /// Archives whose log failed to read, with the error.
    pub fn errors(&self) -> HashMap<PublicKey, String> {
        self.shared.errors.lock().clone()
    }

    /// Statuses written to the index by this process.
    pub fn statuses_indexed(&self) -> u64 {
        self.shared.statuses_indexed.load(Ordering::Relaxed)
    }

    /// Waits until everything queued is indexed and committed, or `timeout` passes; true if idle.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut q = self.shared.queue.lock();
        while !(q.idle && q.order.is_empty()) {
            if self.shared.idle.wait_until(&mut q, deadline).timed_out() {
                return q.idle && q.order.is_empty();
            }
        }
        true
    }

    /// Commits what is pending, lets running merges finish and stops the thread.
    pub fn shutdown(&self) {
        self.shared.queue.lock().stop = true;
        self.shared.wake.notify_all();
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }
}

impl Drop for Ingester {
    fn drop(&mut self) {
        self.shutdown();
    }
}

struct Worker {
    shared: Arc<Shared>,
    writer: IndexWriter,
    payload: Payload,
    pending: u64,
    first_pending: Option<Instant>,
    config: IngestConfig,
    /// Keys already reported as discovered.
    seen: HashSet<PublicKey>,
    /// Archives being indexed from their first entry, with the hashes of the paths written so
    /// far: a file not among them has no document to replace, so its write needs no delete
    /// (tantivy looks every delete up in every segment). Dropped when the archive catches up.
    /// (`None` once past [`MAX_FRESH_PATHS`]: the pass then deletes like any other.)
    fresh: HashMap<PublicKey, Option<HashSet<u64>>>,
    /// Paths remembered in `fresh`.
    fresh_paths: usize,
    /// Seen by the merge policy: merges wait while the ingester catches up.
    catching_up: Arc<AtomicBool>,
}

impl Worker {
    fn run(mut self) {
        let live_interval = Duration::from_millis(self.config.commit_interval_ms);
        let catch_up_interval = Duration::from_millis(
            self.config
                .catch_up_commit_interval_ms
                .max(self.config.commit_interval_ms),
        );
        // Catching up: since the queue was last empty, an archive had more than one turn of
        // entries, or [`BULK_PENDING`] documents piled up. Live traffic (a few entries per
        // archive) keeps the live interval.
        let mut catching_up = false;
        // Summarize the index opened at start for trending now, not in the first request.
        if let Err(e) = self
            .shared
            .index
            .trends
            .warm(&self.shared.index.reader.searcher())
        {
            tracing::warn!("trending summaries: {e}");
        }
        loop {
            let next = {
                let mut q = self.shared.queue.lock();
                loop {
                    if q.stop {
                        break None;
                    }
                    if let Some(key) = q.order.pop_front() {
                        q.queued.remove(&key);
                        break Some(key);
                    }
                    // Nothing queued: whatever is pending is due at the live interval.
                    catching_up = false;
                    match self.first_pending {
                        Some(at) => {
                            let due = at + live_interval;
                            if Instant::now() >= due {
                                break None;
                            }
                            self.shared.wake.wait_until(&mut q, due);
                        }
                        None => {
                            q.idle = true;
                            self.shared.idle.notify_all();
                            self.shared.wake.wait(&mut q);
                        }
                    }
                }
            };
            if let Some(key) = next {
                let log = self.shared.sources.lock().get(&key).cloned();
                if let Some(log) = log {
                    match self.index_archive(&log) {
                        Ok(true) => {
                            catching_up = true;
                            // More to do: back of the line, after the others.
                            let mut q = self.shared.queue.lock();
                            if q.queued.insert(key) {
                                q.order.push_back(key);
                            }
                        }
                        Ok(false) => {
                            self.shared.errors.lock().remove(&key);
                        }
                        Err(e) => {
                            tracing::warn!("archive {key}: {e}");
                            self.shared.errors.lock().insert(key, e.to_string());
                        }
                    }
                }
            }
            if next.is_some() && self.pending >= BULK_PENDING {
                catching_up = true;
            }
            self.catching_up.store(catching_up, Ordering::Relaxed);
            let interval = if catching_up {
                catch_up_interval
            } else {
                live_interval
            };
            let due = self
                .first_pending
                .is_some_and(|at| at.elapsed() >= interval)
                || self.pending >= self.config.max_pending;
            let stopping = self.shared.queue.lock().stop;
            if (due || stopping) && self.first_pending.is_some() {
                if let Err(e) = self.commit() {
                    tracing::error!("index commit failed: {e}");
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
            if stopping {
                break;
            }
        }
        // Merges still running write into the index directory: let them finish, so a stopped
        // ingester leaves the directory alone (a kill loses only the merge, never documents).
        if let Err(e) = self.writer.wait_merging_threads() {
            tracing::warn!("index merges at shutdown: {e}");
        }
    }

    fn touch(&mut self) {
        self.pending += 1;
        if self.first_pending.is_none() {
            self.first_pending = Some(Instant::now());
        }
    }

    fn commit(&mut self) -> Result<(), tantivy::TantivyError> {
        let payload = serde_json::to_string(&self.payload)
            .map_err(|e| tantivy::TantivyError::InternalError(e.to_string()))?;
        let mut prepared = self.writer.prepare_commit()?;
        prepared.set_payload(&payload);
        prepared.commit()?;
        self.shared.index.reader.reload()?;
        let searcher = self.shared.index.reader.searcher();
        if let Err(e) = self.shared.index.trends.warm(&searcher) {
            tracing::warn!("trending summaries: {e}");
        }
        self.shared.index.columns.retain(&searcher);
        // Archives no longer followed (released by hosting, say) end their fresh pass.
        let gone: Vec<PublicKey> = {
            let sources = self.shared.sources.lock();
            self.fresh
                .keys()
                .filter(|k| !sources.contains_key(k))
                .copied()
                .collect()
        };
        for key in gone {
            self.end_fresh_pass(&key);
        }
        *self.shared.committed.write() = self.payload.clone();
        self.pending = 0;
        self.first_pending = None;
        self.shared.commits.send_replace(self.payload.next_iseq);
        Ok(())
    }

    /// Indexes the next entries of one archive; true if more are waiting.
    fn index_archive(&mut self, log: &Log) -> Result<bool, fritter_common::log::LogError> {
        let info = log.info();
        let key = log.key();
        let hex = key.to_hex();
        let f = self.shared.index.f;
        let mut cp = self.payload.archives.get(&hex).cloned().unwrap_or_default();
        if cp.fork != info.fork || cp.next > info.contiguous {
            // Another fork (or a shorter log): what was indexed may be gone. Start over.
            self.writer
                .delete_term(Term::from_field_text(f.archive, &hex));
            cp = Checkpoint {
                fork: info.fork,
                ..Checkpoint::default()
            };
            self.payload.archives.insert(hex.clone(), cp.clone());
            self.touch();
            // Its documents are deleted before anything this pass adds: a fresh pass.
            self.end_fresh_pass(&key);
            self.fresh.insert(key, Some(HashSet::new()));
        }
        if cp.next == 0 {
            // Nothing of this archive is in the index: a fresh pass, unless one already began
            // (a turn that failed part way keeps its documents, and its record of them).
            self.fresh
                .entry(key)
                .or_insert_with(|| Some(HashSet::new()));
        }
        let end = info
            .contiguous
            .min(cp.next.saturating_add(self.config.batch_entries));
        let deadline = Instant::now() + Duration::from_millis(self.config.turn_time_ms);
        let mut found = HashSet::new();
        let mut changed = false;
        let mut chunk = Vec::new();
        while cp.next < end && Instant::now() < deadline {
            let chunk_end = end.min(cp.next + CHUNK_ENTRIES);
            let start = cp.next;
            chunk.clear();
            let mut chunk_bytes = 0;
            log.for_each(start, chunk_end, |seq, block| {
                match Entry::decode(block).and_then(|e| Ok((e.validate()?, e))) {
                    Ok((file, entry)) => {
                        chunk.push(Decoded {
                            seq,
                            key: doc_key(&hex, entry.path()),
                            path: entry.path().clone(),
                            file,
                            hash: crypto::leaf_hash(block),
                        });
                        // Entries may be up to 1 MiB each: bound what a chunk holds decoded.
                        chunk_bytes += block.len();
                        if chunk_bytes >= CHUNK_BYTES {
                            self.index_chunk(&key, &hex, &mut chunk, &mut found);
                            chunk_bytes = 0;
                        }
                    }
                    Err(e) => {
                        cp.skipped += 1;
                        if cp.reasons.len() < MAX_REASONS {
                            cp.reasons.push(SkippedEntry {
                                seq,
                                reason: e.to_string(),
                            });
                        }
                    }
                }
                cp.next = seq + 1;
                Ok(())
            })?;
            self.index_chunk(&key, &hex, &mut chunk, &mut found);
            changed = true;
        }
        if changed || !self.payload.archives.contains_key(&hex) {
            self.payload.archives.insert(hex, cp.clone());
            self.touch();
        }
        if let Some(tx) = &self.shared.discovered {
            for k in found {
                if k != key && self.seen.len() < 1_000_000 && self.seen.insert(k) {
                    let _ = tx.try_send(k);
                }
            }
        }
        let more = cp.next < info.contiguous;
        if !more {
            self.end_fresh_pass(&key);
            // Caught up: the verified nodes read on the way are not needed until the next
            // append (about 100 KB per archive, times every archive held).
            log.release_cache();
        }
        Ok(more)
    }

    fn end_fresh_pass(&mut self, key: &PublicKey) {
        if let Some(Some(written)) = self.fresh.remove(key) {
            self.fresh_paths = self.fresh_paths.saturating_sub(written.len());
        }
    }

    /// Writes one chunk of valid entries: for each file the chunk touches, the document of its
    /// last version replaces any earlier one (a rewrite within the chunk is one delete and one
    /// document, not two of each). tantivy builds a query for every delete, so this halves the
    /// deletes of a log that rewrites its profile or follow list often.
    fn index_chunk(
        &mut self,
        key: &PublicKey,
        hex: &str,
        chunk: &mut Vec<Decoded>,
        found: &mut HashSet<PublicKey>,
    ) {
        let f = self.shared.index.f;
        let mut last: HashMap<&str, u64> = HashMap::with_capacity(chunk.len());
        for d in chunk.iter() {
            last.insert(&d.key, d.seq);
        }
        let keep: HashSet<u64> = last.into_values().collect();
        // `Some(None)`: a fresh pass no longer tracked, which deletes like any other.
        let mut pass = self.fresh.remove(key);
        for d in chunk.drain(..) {
            // Every version names archives to crawl, even one the chunk rewrites.
            if let Some(file) = &d.file {
                named_archives(file, found);
            }
            if !keep.contains(&d.seq) {
                continue;
            }
            // A fresh pass deletes only what it wrote itself (a hash collision costs one
            // needless delete, never a missed one).
            let replaces = match &mut pass {
                Some(Some(written)) => {
                    let new = written.insert(path_hash(&d.path));
                    self.fresh_paths += usize::from(new);
                    !new
                }
                _ => true,
            };
            if replaces {
                self.writer
                    .delete_term(Term::from_field_text(f.key, &d.key));
            }
            self.index_file(hex, d);
        }
        if let Some(written) = pass {
            self.fresh.insert(*key, written);
        }
        if self.fresh_paths >= MAX_FRESH_PATHS {
            // Past the bound (giant archives, or a huge first crawl): every pass under way
            // deletes before every write from now on.
            for written in self.fresh.values_mut() {
                *written = None;
            }
            self.fresh_paths = 0;
        }
    }

    fn index_file(&mut self, hex: &str, d: Decoded) {
        let f = self.shared.index.f;
        let mut doc = TantivyDocument::new();
        doc.add_text(f.key, &d.key);
        doc.add_text(f.archive, hex);
        doc.add_u64(f.author_id, author_id(hex));
        let iseq = self.payload.next_iseq;
        let hash = crypto::to_hex(&d.hash);
        let uri = || {
            let mut uri = String::with_capacity(8 + d.key.len());
            uri.push_str("hyper://");
            uri.push_str(&d.key);
            uri
        };
        let prov = Provenance {
            archive: hex,
            path: d.path.as_str(),
            seq: d.seq,
            hash: &hash,
            cursor: iseq,
        };
        let json = match &d.file {
            Some(File::Status { status, .. }) => {
                let uri = uri();
                doc.add_text(f.kind, "status");
                doc.add_text(f.text, &status.text);
                doc.add_i64(f.created, status.created_at.unix_millis());
                for t in &status.tags {
                    doc.add_text(f.tags, t);
                }
                for m in &status.mentions {
                    doc.add_text(f.mentions, m.url.key().to_string());
                }
                if let Some(reply) = &status.reply {
                    doc.add_text(f.root, reply.root.url.to_string());
                }
                if let Some(lang) = &status.lang {
                    doc.add_text(f.lang, lang.to_ascii_lowercase());
                }
                self.shared.statuses_indexed.fetch_add(1, Ordering::Relaxed);
                to_json(&Served {
                    uri: Some(&uri),
                    prov: &prov,
                    file: Some(("status", status)),
                })
            }
            Some(file @ File::Profile(p)) => {
                doc.add_text(f.kind, "profile");
                doc.add_text(f.name, &p.name);
                doc.add_text(f.name, &p.bio);
                to_json(&Served {
                    uri: None,
                    prov: &prov,
                    file: Some(("profile", &file.to_value())),
                })
            }
            Some(File::Follows(fl)) => {
                doc.add_text(f.kind, "follows");
                let keys: Vec<String> = fl.urls.iter().map(|u| u.key().to_string()).collect();
                for k in &keys {
                    doc.add_text(f.follows, k);
                }
                to_json(&Served {
                    uri: None,
                    prov: &prov,
                    file: Some(("follows", &keys)),
                })
            }
            // A deleted status leaves a tombstone, so the stream can tell its readers; the
            // views only ever look at `status` documents.
            None if d.path.as_str().starts_with("/statuses/") => {
                doc.add_text(f.kind, DELETED);
                to_json(&Served::<()> {
                    uri: Some(&uri()),
                    prov: &prov,
                    file: None,
                })
            }
            // Likes, proofs and hosting requests are not part of the crawler's views.
            _ => return,
        };
        doc.add_u64(f.iseq, iseq);
        doc.add_bytes(f.json, &crate::index::packed::pack(&json));
        self.payload.next_iseq += 1;
        self.pending += 1;
        if let Err(e) = self.writer.add_document(doc) {
            tracing::error!("indexing {}: {e}", d.key);
        }
    }
}

/// Uncommitted documents that mean a backlog: at the live commit interval (200 ms) that would be
/// 25,000 new statuses a second.
const BULK_PENDING: u64 = 5_000;

/// tantivy's log merge policy, held back while the ingester catches up on a backlog (up to
/// [`MAX_DEFERRED_SEGMENTS`]): merging the segments of a bulk load while it runs takes the CPU
/// the load needs, and merges them again as they grow. The first commit after the backlog lets
/// the merges run.
#[derive(Debug)]
struct CatchUpMergePolicy {
    inner: tantivy::indexer::LogMergePolicy,
    catching_up: Arc<AtomicBool>,
}

/// Segments past which merges run even while catching up (queries get slower with each).
const MAX_DEFERRED_SEGMENTS: usize = 24;

impl tantivy::indexer::MergePolicy for CatchUpMergePolicy {
    fn compute_merge_candidates(
        &self,
        segments: &[tantivy::index::SegmentMeta],
    ) -> Vec<tantivy::indexer::MergeCandidate> {
        if self.catching_up.load(Ordering::Relaxed) && segments.len() < MAX_DEFERRED_SEGMENTS {
            return Vec::new();
        }
        self.inner.compute_merge_candidates(segments)
    }
}

/// Adds the archives a file names (mentions, thread references, follows) to `found`, up to
/// [`MAX_FOUND_PER_TURN`] (an archive rewriting a long follow list must not fill memory; what
/// is left out is found again when the crawler reads the list's current version).
fn named_archives(file: &File, found: &mut HashSet<PublicKey>) {
    let mut add = |key: ArchiveKey| {
        if found.len() < MAX_FOUND_PER_TURN {
            found.insert(PublicKey::from(key));
        }
    };
    match file {
        File::Status { status, .. } => {
            status.mentions.iter().for_each(|m| add(m.url.key()));
            if let Some(reply) = &status.reply {
                add(reply.root.url.key());
                add(reply.parent.url.key());
            }
        }
        File::Follows(fl) => fl.urls.iter().for_each(|u| add(u.key())),
        _ => {}
    }
}

/// Archive keys one turn of one archive reports as discovered, at most.
const MAX_FOUND_PER_TURN: usize = 100_000;

/// The `kind` of a deleted status's tombstone.
pub const DELETED: &str = "deleted";

/// Entry bytes decoded before they are indexed, at most (a chunk ends early past it).
const CHUNK_BYTES: usize = 4 << 20;

/// Paths remembered over all fresh passes (about 24 bytes each in their sets).
const MAX_FRESH_PATHS: usize = 2_000_000;

fn path_hash(path: &FilePath) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault};
    BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
        .hash_one(path.as_str())
}

/// Entries decoded per step.
const CHUNK_ENTRIES: u64 = 256;

/// A valid entry waiting to be indexed.
struct Decoded {
    seq: u64,
    key: String,
    path: FilePath,
    /// `None` for a delete.
    file: Option<File>,
    hash: crypto::Hash,
}

/// A hit as stored and served: the file (or, without one, the fact it was deleted) with its
/// provenance.
struct Served<'a, T> {
    uri: Option<&'a str>,
    prov: &'a Provenance<'a>,
    /// The file's kind and body.
    file: Option<(&'a str, &'a T)>,
}

/// Where a stored hit comes from: the entry that wrote it, and its place in the index.
struct Provenance<'a> {
    archive: &'a str,
    path: &'a str,
    seq: u64,
    hash: &'a str,
    cursor: u64,
}

impl<T: serde::Serialize> serde::Serialize for Served<'_, T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        if let Some(uri) = self.uri {
            m.serialize_entry("uri", uri)?;
        }
        m.serialize_entry("archive", self.prov.archive)?;
        m.serialize_entry("path", self.prov.path)?;
        m.serialize_entry("seq", &self.prov.seq)?;
        m.serialize_entry("hash", self.prov.hash)?;
        m.serialize_entry("cursor", &self.prov.cursor)?;
        match self.file {
            Some((name, value)) => m.serialize_entry(name, value)?,
            None => m.serialize_entry("deleted", &true)?,
        }
        m.end()
    }
}

fn to_json<T: serde::Serialize>(v: &Served<'_, T>) -> String {
    // Serializing strings and numbers into a String cannot fail.
    serde_json::to_string(v).unwrap_or_default()
}

/// The document key of a file: archive hex key then path.
pub fn doc_key(hex: &str, path: &FilePath) -> String {
    let mut key = String::with_capacity(hex.len() + path.as_str().len());
    key.push_str(hex);
    key.push_str(path.as_str());
    key
}
