//! Ingest: follows every archive's log and writes its files into the index.
//!
//! One thread owns the tantivy writer. Archives with new entries are queued (by `Log::subscribe`
//! watchers, or when added); the thread takes them round-robin and indexes at most
//! [`IngestConfig::batch_entries`] entries or [`IngestConfig::turn_time`] of one archive per
//! turn before moving on, so one huge or hostile archive never stalls the others. Every entry is
//! read verified from the log, decoded and validated by the model; an invalid entry is skipped
//! and counted, with its reason, in the archive's checkpoint.
//!
//! Commits happen [`IngestConfig::commit_interval`] after the first uncommitted change (or
//! sooner when many are pending), each carrying every checkpoint in its payload, then the reader
//! is reloaded: a new status is searchable well within a second.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fritter_common::crypto::{self, PublicKey};
use fritter_common::log::Log;
use fritter_common::model::{Entry, File, FilePath};
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
    /// Longest wait between a change and its commit, in milliseconds.
    pub commit_interval_ms: u64,
    /// Commit at once when this many documents are pending.
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
            max_pending: 200_000,
            writer_threads: 1,
            writer_memory: 64 * 1024 * 1024,
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

    /// Commits what is pending and stops the thread.
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
}

impl Worker {
    fn run(mut self) {
        let interval = Duration::from_millis(self.config.commit_interval_ms);
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
                    match self.first_pending {
                        Some(at) => {
                            let due = at + interval;
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
                return;
            }
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
        }
        let end = info
            .contiguous
            .min(cp.next.saturating_add(self.config.batch_entries));
        let deadline = Instant::now() + Duration::from_millis(self.config.turn_time_ms);
        let mut found = Vec::new();
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
                            self.index_chunk(&hex, &mut chunk, &mut found);
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
            self.index_chunk(&hex, &mut chunk, &mut found);
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
            // Caught up: the verified nodes read on the way are not needed until the next
            // append (about 100 KB per archive, times every archive held).
            log.release_cache();
        }
        Ok(more)
    }

    /// Writes one chunk of valid entries: for each file the chunk touches, the document of its
    /// last version replaces any earlier one (a rewrite within the chunk is one delete and one
    /// document, not two of each). tantivy builds a query for every delete, so this halves the
    /// deletes of a log that rewrites its profile or follow list often.
    fn index_chunk(&mut self, hex: &str, chunk: &mut Vec<Decoded>, found: &mut Vec<PublicKey>) {
        let f = self.shared.index.f;
        let mut last: HashMap<&str, u64> = HashMap::with_capacity(chunk.len());
        for d in chunk.iter() {
            last.insert(&d.key, d.seq);
        }
        let keep: HashSet<u64> = last.into_values().collect();
        for d in chunk.drain(..) {
            if keep.contains(&d.seq) {
                self.writer
                    .delete_term(Term::from_field_text(f.key, &d.key));
                self.index_file(hex, d, found);
            }
        }
    }

    fn index_file(&mut self, hex: &str, d: Decoded, found: &mut Vec<PublicKey>) {
        let f = self.shared.index.f;
        let mut doc = TantivyDocument::new();
        doc.add_text(f.key, &d.key);
        doc.add_text(f.archive, hex);
        doc.add_u64(f.author_id, author_id(hex));
        let iseq = self.payload.next_iseq;
        let hash = hex::encode(d.hash);
        let served = |uri: Option<&str>, file: Option<(&str, &serde_json::Value)>| {
            to_json(&Served {
                uri,
                archive: hex,
                path: d.path.as_str(),
                seq: d.seq,
                hash: &hash,
                cursor: iseq,
                file,
                deleted: file.is_none(),
            })
        };
        let json = match &d.file {
            Some(file @ File::Status { status, .. }) => {
                let uri = format!("hyper://{}", d.key);
                doc.add_text(f.kind, "status");
                doc.add_text(f.text, &status.text);
                doc.add_i64(f.created, status.created_at.unix_millis());
                for t in &status.tags {
                    doc.add_text(f.tags, t);
                }
                for m in &status.mentions {
                    doc.add_text(f.mentions, m.url.key().to_string());
                    found.push(m.url.key().into());
                }
                if let Some(reply) = &status.reply {
                    doc.add_text(f.root, reply.root.url.to_string());
                    found.push(reply.root.url.key().into());
                    found.push(reply.parent.url.key().into());
                }
                if let Some(lang) = &status.lang {
                    doc.add_text(f.lang, lang.to_ascii_lowercase());
                }
                self.shared.statuses_indexed.fetch_add(1, Ordering::Relaxed);
                served(Some(&uri), Some(("status", &file.to_value())))
            }
            Some(file @ File::Profile(p)) => {
                doc.add_text(f.kind, "profile");
                doc.add_text(f.name, &p.name);
                doc.add_text(f.name, &p.bio);
                served(None, Some(("profile", &file.to_value())))
            }
            Some(File::Follows(fl)) => {
                doc.add_text(f.kind, "follows");
                let keys: Vec<String> = fl.urls.iter().map(|u| u.key().to_string()).collect();
                for (u, k) in fl.urls.iter().zip(&keys) {
                    doc.add_text(f.follows, k);
                    found.push(u.key().into());
                }
                served(None, Some(("follows", &serde_json::json!(keys))))
            }
            // A deleted status leaves a tombstone, so the stream can tell its readers; the
            // views only ever look at `status` documents.
            None if d.path.as_str().starts_with("/statuses/") => {
                doc.add_text(f.kind, DELETED);
                served(Some(&format!("hyper://{}", d.key)), None)
            }
            // Likes, proofs and hosting requests are not part of the crawler's views.
            _ => return,
        };
        doc.add_u64(f.iseq, iseq);
        doc.add_text(f.json, json);
        self.payload.next_iseq += 1;
        if let Err(e) = self.writer.add_document(doc) {
            tracing::error!("indexing {}: {e}", d.key);
        }
    }
}

/// The `kind` of a deleted status's tombstone.
pub const DELETED: &str = "deleted";

/// Entry bytes decoded before they are indexed, at most (a chunk ends early past it).
const CHUNK_BYTES: usize = 4 << 20;

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

/// A hit as stored and served: the file (or the fact it was deleted) with its provenance.
struct Served<'a> {
    uri: Option<&'a str>,
    archive: &'a str,
    path: &'a str,
    seq: u64,
    hash: &'a str,
    cursor: u64,
    file: Option<(&'a str, &'a serde_json::Value)>,
    deleted: bool,
}

impl serde::Serialize for Served<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        if let Some(uri) = self.uri {
            m.serialize_entry("uri", uri)?;
        }
        m.serialize_entry("archive", self.archive)?;
        m.serialize_entry("path", self.path)?;
        m.serialize_entry("seq", &self.seq)?;
        m.serialize_entry("hash", self.hash)?;
        m.serialize_entry("cursor", &self.cursor)?;
        if let Some((name, value)) = self.file {
            m.serialize_entry(name, value)?;
        }
        if self.deleted {
            m.serialize_entry("deleted", &true)?;
        }
        m.end()
    }
}

fn to_json(v: &Served<'_>) -> String {
    // Serializing strings and numbers into a String cannot fail.
    serde_json::to_string(v).unwrap_or_default()
}

/// The document key of a file: archive hex key then path.
pub fn doc_key(hex: &str, path: &FilePath) -> String {
    format!("{hex}{path}")
}
