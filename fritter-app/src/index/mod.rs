//! The in-memory index behind the feed, threads, notifications and suggestions: what the app
//! knows about its own archive and every followed archive it holds, folded from their logs.
//!
//! Each archive's log is folded once, from where the last fold stopped (the whole log again only
//! after a fork), so a new entry costs one decode, never a rescan. Per archive the index keeps
//! its statuses as a vector of `(id, seq)` sorted by id: 16 bytes a status, so a million fit in
//! 16 MB, and a feed page is a k-way merge of those vectors with a heap, `O(k log n + page)`.
//! Status texts are not kept: a page reads its few entries back from the logs (verified).
//!
//! Entries that do not decode or validate are skipped and counted per archive; a hostile archive
//! can make its own statuses disappear, never break the index.
//!
//! This file holds the state and the queries; how an entry folds into the shared maps is in
//! `fold.rs`.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::Arc;

use fritter_common::archive::{Archive, Skipped};
use fritter_common::crypto::PublicKey;
use fritter_common::log::LogError;
use fritter_common::model::StatusId;
use parking_lot::{Mutex, RwLock};

mod fold;

use fold::decode;

/// A status anywhere: its archive and id.
pub type StatusKey = (PublicKey, StatusId);

/// Most entries folded between two updates of the shared index, so readers never wait long and
/// a huge log never sits in memory as decoded entries.
const FOLD_CHUNK: u64 = 4096;

/// Most notifications kept; the oldest go first.
pub const MAX_NOTIFICATIONS: usize = 10_000;

/// A status as the index knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Indexed {
    pub key: PublicKey,
    pub id: StatusId,
    /// The log entry that wrote its current version.
    pub seq: u64,
}

/// Why the user is notified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Reason {
    Reply,
    Mention,
    Like,
}

/// Something another archive did that concerns the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub reason: Reason,
    /// Who did it.
    pub from: PublicKey,
    /// The reply or mentioning status (`from`'s), for replies and mentions.
    pub status: Option<StatusId>,
    /// The like file's slug, for likes.
    pub like: Option<String>,
    /// The user's status concerned (replied to or liked), if any.
    pub subject: Option<StatusKey>,
    /// When it happened as its author claims, in Unix milliseconds, clamped to when it was
    /// indexed so a future date cannot keep a notification unread forever.
    pub time_ms: i64,
}

/// A profile as shown.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProfileInfo {
    pub name: String,
    pub bio: String,
}

/// What one refresh of an archive changed, for live updates.
#[derive(Debug, Default, Clone)]
pub struct Changes {
    /// Statuses written (new or rewritten).
    pub statuses: Vec<StatusKey>,
    /// Statuses deleted.
    pub deleted: Vec<StatusKey>,
    /// New notifications.
    pub notifications: usize,
    /// Entries folded.
    pub entries: u64,
    /// Whether the archive forked, so its index was rebuilt.
    pub rebuilt: bool,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.entries == 0 && !self.rebuilt
    }
}

/// One archive's part of the index.
struct ArchiveState {
    archive: Arc<Archive>,
    /// Held while folding, so two threads never fold the same archive at once.
    fold: Arc<Mutex<()>>,
    folded: u64,
    fork: u64,
    /// Sorted by id, each id once.
    statuses: Vec<(StatusId, u64)>,
    /// For each reply: its parent and its thread root.
    replies: HashMap<StatusId, (StatusKey, StatusKey)>,
    /// For each like file: the liked status.
    likes: HashMap<String, StatusKey>,
    profile: Option<ProfileInfo>,
    follows: Vec<PublicKey>,
    skipped: u64,
    skipped_first: Vec<Skipped>,
}

impl ArchiveState {
    fn new(archive: Arc<Archive>) -> ArchiveState {
        ArchiveState {
            archive,
            fold: Arc::default(),
            folded: 0,
            fork: 0,
            statuses: Vec::new(),
            replies: HashMap::new(),
            likes: HashMap::new(),
            profile: None,
            follows: Vec::new(),
            skipped: 0,
            skipped_first: Vec::new(),
        }
    }

    fn find(&self, id: StatusId) -> Option<u64> {
        self.statuses
            .binary_search_by_key(&id, |(i, _)| *i)
            .ok()
            .map(|pos| self.statuses[pos].1)
    }
}

#[derive(Default)]
struct Inner {
    archives: HashMap<PublicKey, ArchiveState>,
    /// Replies by the status they answer.
    children: HashMap<StatusKey, Vec<StatusKey>>,
    /// How many indexed archives like each status.
    like_counts: HashMap<StatusKey, u32>,
    /// Oldest first.
    notifications: Vec<Notification>,
}

/// The index over the own archive and the followed archives held.
pub struct Index {
    own: PublicKey,
    inner: RwLock<Inner>,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index")
            .field("own", &self.own)
            .finish_non_exhaustive()
    }
}

/// Where a feed page starts: statuses strictly older than `(id, key)` (newest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub id: StatusId,
    pub key: [u8; 32],
}

impl Cursor {
    /// `<id>.<key hex>`, as the API shows it.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.id, hex::encode(self.key))
    }

    pub fn parse(s: &str) -> Option<Cursor> {
        let (id, key) = s.split_once('.')?;
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(key, &mut bytes).ok()?;
        Some(Cursor {
            id: id.parse().ok()?,
            key: bytes,
        })
    }

    /// The first page: nothing dated more than five minutes ahead, so a status claiming a
    /// future date cannot sit on top of the feed.
    pub fn now() -> Cursor {
        let micros = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
            .unwrap_or(0)
            .saturating_add(5 * 60 * 1_000_000)
            .min(StatusId::MAX_MICROS);
        let id = StatusId::from_parts(micros, StatusId::MAX_CLOCK)
            .unwrap_or_else(|_| StatusId::from_parts(0, 0).unwrap_or_else(|_| StatusId::now()));
        Cursor {
            id,
            key: [0xff; 32],
        }
    }
}

/// One archive's position in the feed merge.
#[derive(PartialEq, Eq)]
struct Head {
    id: StatusId,
    key: PublicKey,
    seq: u64,
    /// Index in the archive's status vector.
    pos: usize,
}

impl Ord for Head {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.id, self.key.as_bytes()).cmp(&(other.id, other.key.as_bytes()))
    }
}

impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Counts of what the index holds.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    pub archives: usize,
    pub statuses: usize,
    pub skipped: u64,
}

impl Index {
    /// An index of `own` (always indexed) and nothing else yet.
    pub fn new(own: Arc<Archive>) -> Index {
        let key = own.key();
        let mut inner = Inner::default();
        inner.archives.insert(key, ArchiveState::new(own));
        Index {
            own: key,
            inner: RwLock::new(inner),
        }
    }

    pub fn own(&self) -> PublicKey {
        self.own
    }

    /// Makes the indexed archives the own one plus `archives`: new ones are added (unfolded; call
    /// [`Index::refresh`]), missing ones are forgotten. Returns the keys added.
    pub fn set_archives(&self, archives: Vec<Arc<Archive>>) -> Vec<PublicKey> {
        let mut inner = self.inner.write();
        let wanted: HashSet<PublicKey> = archives.iter().map(|a| a.key()).collect();
        let gone: Vec<PublicKey> = inner
            .archives
            .keys()
            .filter(|k| **k != self.own && !wanted.contains(k))
            .copied()
            .collect();
        for key in gone {
            inner.forget(&key);
            inner.archives.remove(&key);
        }
        let mut added = Vec::new();
        for archive in archives {
            let key = archive.key();
            if key == self.own {
                continue;
            }
            match inner.archives.get(&key) {
                // The same log object: nothing to do.
                Some(state) if Arc::ptr_eq(state.archive.log(), archive.log()) => {}
                _ => {
                    inner.forget(&key);
                    inner.archives.insert(key, ArchiveState::new(archive));
                    added.push(key);
                }
            }
        }
        added
    }

    /// Keys of every indexed archive, own first.
    pub fn keys(&self) -> Vec<PublicKey> {
        let inner = self.inner.read();
        let mut keys: Vec<PublicKey> = inner
            .archives
            .keys()
            .filter(|k| **k != self.own)
            .copied()
            .collect();
        keys.sort();
        keys.insert(0, self.own);
        keys
    }

    /// The archive object of an indexed archive, to read entries from.
    pub fn archive(&self, key: &PublicKey) -> Option<Arc<Archive>> {
        self.inner
            .read()
            .archives
            .get(key)
            .map(|s| s.archive.clone())
    }

    /// Folds whatever `key`'s log gained since the last fold (or all of it after a fork).
    pub fn refresh(&self, key: &PublicKey) -> Result<Changes, LogError> {
        let (archive, fold) = {
            let inner = self.inner.read();
            let Some(state) = inner.archives.get(key) else {
                return Ok(Changes::default());
            };
            (state.archive.clone(), state.fold.clone())
        };
        let _folding = fold.lock();
        let mut changes = Changes::default();
        loop {
            let info = archive.info();
            let (start, rebuild) = {
                let inner = self.inner.read();
                let Some(state) = inner.archives.get(key) else {
                    return Ok(changes);
                };
                if !Arc::ptr_eq(state.archive.log(), archive.log()) {
                    return Ok(changes);
                }
                let rebuild = state.fork != info.fork || state.folded > info.contiguous;
                (if rebuild { 0 } else { state.folded }, rebuild)
            };
            if rebuild {
                let mut inner = self.inner.write();
                inner.forget(key);
                if let Some(state) = inner.archives.get_mut(key) {
                    let archive = state.archive.clone();
                    *state = ArchiveState::new(archive);
                    state.fork = info.fork;
                    state.fold = fold.clone();
                }
                changes.rebuilt = true;
                continue;
            }
            if start >= info.contiguous {
                return Ok(changes);
            }
            let end = info.contiguous.min(start + FOLD_CHUNK);
            let mut ops = Vec::with_capacity((end - start) as usize);
            let mut skipped = Vec::new();
            archive.log().for_each(start, end, |seq, block| {
                match decode(seq, block) {
                    Ok(op) => ops.push(op),
                    Err(reason) => skipped.push(Skipped { seq, reason }),
                }
                Ok(())
            })?;
            if end == info.contiguous {
                // Read through: the log's node cache is not needed until the next append.
                archive.log().release_cache();
            }
            let mut inner = self.inner.write();
            let own = self.own;
            inner.apply(key, own, ops, skipped, end, &mut changes);
            changes.entries += end - start;
        }
    }

    /// Refreshes every indexed archive, `threads` at a time; returns the total entries folded.
    pub fn refresh_all(&self, threads: usize) -> u64 {
        let keys = self.keys();
        let next = std::sync::atomic::AtomicUsize::new(0);
        let total = std::sync::atomic::AtomicU64::new(0);
        std::thread::scope(|scope| {
            for _ in 0..threads.max(1) {
                scope.spawn(|| loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(key) = keys.get(i) else { break };
                    match self.refresh(key) {
                        Ok(c) => {
                            total.fetch_add(c.entries, std::sync::atomic::Ordering::Relaxed);
                        }
                        Err(err) => {
                            tracing::warn!(archive = %key, error = %err, "cannot index archive")
                        }
                    }
                });
            }
        });
        total.into_inner()
    }

    /// Up to `limit` statuses older than `cursor`, newest first, from every indexed archive.
    pub fn page(&self, cursor: Cursor, limit: usize) -> Vec<Indexed> {
        let inner = self.inner.read();
        let mut heap = BinaryHeap::with_capacity(inner.archives.len());
        for (key, state) in &inner.archives {
            let pos = state
                .statuses
                .partition_point(|(id, _)| (*id, key.as_bytes()) < (cursor.id, &cursor.key));
            if let Some(pos) = pos.checked_sub(1) {
                let (id, seq) = state.statuses[pos];
                heap.push(Head {
                    id,
                    key: *key,
                    seq,
                    pos,
                });
            }
        }
        let mut out = Vec::with_capacity(limit);
        while out.len() < limit {
            let Some(head) = heap.pop() else { break };
            out.push(Indexed {
                key: head.key,
                id: head.id,
                seq: head.seq,
            });
            if let Some(pos) = head.pos.checked_sub(1) {
                if let Some(state) = inner.archives.get(&head.key) {
                    let (id, seq) = state.statuses[pos];
                    heap.push(Head {
                        id,
                        key: head.key,
                        seq,
                        pos,
                    });
                }
            }
        }
        out
    }

    /// One archive's statuses older than `cursor`, newest first.
    pub fn archive_page(&self, key: &PublicKey, cursor: Cursor, limit: usize) -> Vec<Indexed> {
        let inner = self.inner.read();
        let Some(state) = inner.archives.get(key) else {
            return Vec::new();
        };
        let pos = state
            .statuses
            .partition_point(|(id, _)| (*id, key.as_bytes()) < (cursor.id, &cursor.key));
        state.statuses[..pos]
            .iter()
            .rev()
            .take(limit)
            .map(|&(id, seq)| Indexed { key: *key, id, seq })
            .collect()
    }

    /// The entry holding a status, if indexed.
    pub fn find(&self, key: &PublicKey, id: StatusId) -> Option<Indexed> {
        let inner = self.inner.read();
        let seq = inner.archives.get(key)?.find(id)?;
        Some(Indexed { key: *key, id, seq })
    }

    /// The parent and root of a reply, if `status` is an indexed reply.
    pub fn thread_refs(&self, status: StatusKey) -> Option<(StatusKey, StatusKey)> {
        let inner = self.inner.read();
        inner
            .archives
            .get(&status.0)?
            .replies
            .get(&status.1)
            .copied()
    }

    /// The indexed replies to `status`, oldest first.
    pub fn children(&self, status: StatusKey) -> Vec<StatusKey> {
        let inner = self.inner.read();
        let mut kids = inner.children.get(&status).cloned().unwrap_or_default();
        kids.sort_by_key(|(k, id)| (*id, *k));
        kids
    }

    /// How many indexed archives replied to and liked `status`.
    pub fn counts(&self, status: StatusKey) -> (usize, u32) {
        let inner = self.inner.read();
        (
            inner.children.get(&status).map_or(0, Vec::len),
            inner.like_counts.get(&status).copied().unwrap_or(0),
        )
    }

    /// Whether the own archive likes `status` (by the like file's slug).
    pub fn liked_by_own(&self, slug: &str) -> bool {
        let inner = self.inner.read();
        inner
            .archives
            .get(&self.own)
            .is_some_and(|s| s.likes.contains_key(slug))
    }

    pub fn profile(&self, key: &PublicKey) -> Option<ProfileInfo> {
        self.inner.read().archives.get(key)?.profile.clone()
    }

    /// The archives `key` follows, as its `/follows.json` says (own or followed archives only).
    pub fn follows_of(&self, key: &PublicKey) -> Option<Vec<PublicKey>> {
        Some(self.inner.read().archives.get(key)?.follows.clone())
    }

    /// Entries of `key` the index skipped: the count and the first reasons.
    pub fn skipped(&self, key: &PublicKey) -> (u64, Vec<Skipped>) {
        let inner = self.inner.read();
        inner
            .archives
            .get(key)
            .map(|s| (s.skipped, s.skipped_first.clone()))
            .unwrap_or_default()
    }

    pub fn stats(&self) -> Stats {
        let inner = self.inner.read();
        Stats {
            archives: inner.archives.len(),
            statuses: inner.archives.values().map(|s| s.statuses.len()).sum(),
            skipped: inner.archives.values().map(|s| s.skipped).sum(),
        }
    }

    /// The notifications, newest first.
    pub fn notifications(&self, limit: usize) -> Vec<Notification> {
        let inner = self.inner.read();
        inner
            .notifications
            .iter()
            .rev()
            .take(limit)
            .cloned()
            .collect()
    }

    /// How many notifications are newer than `read_up_to_ms`.
    pub fn unread(&self, read_up_to_ms: i64) -> usize {
        let inner = self.inner.read();
        inner
            .notifications
            .iter()
            .filter(|n| n.time_ms > read_up_to_ms)
            .count()
    }

    /// The newest notification time, to mark everything read.
    pub fn latest_notification_ms(&self) -> Option<i64> {
        let inner = self.inner.read();
        inner.notifications.iter().map(|n| n.time_ms).max()
    }

    /// Archives followed by the archives the own archive follows, not followed yet: each with
    /// the followed archives that follow it, most followed first.
    pub fn suggestions(&self, limit: usize) -> Vec<(PublicKey, Vec<PublicKey>)> {
        let inner = self.inner.read();
        let Some(own) = inner.archives.get(&self.own) else {
            return Vec::new();
        };
        let followed: HashSet<PublicKey> = own.follows.iter().copied().collect();
        let mut by: HashMap<PublicKey, Vec<PublicKey>> = HashMap::new();
        for key in &own.follows {
            let Some(state) = inner.archives.get(key) else {
                continue;
            };
            for candidate in &state.follows {
                if *candidate != self.own && !followed.contains(candidate) {
                    by.entry(*candidate).or_default().push(*key);
                }
            }
        }
        let mut ranked: Vec<(PublicKey, Vec<PublicKey>)> = by.into_iter().collect();
        ranked.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
        ranked.truncate(limit);
        ranked
    }
}

/// The status a URL names, as an index key.
pub fn status_key(url: &fritter_common::model::ArchiveUrl) -> Option<StatusKey> {
    Some((url.key().into(), url.status_id()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use fritter_common::crypto::KeyPair;
    use fritter_common::log::{Access, DiskStorage, Log};
    use fritter_common::model::{ArchiveUrl, File, Follows, Reply, Status, ThreadRef, Timestamp};

    fn archive(dir: &std::path::Path, seed: u8) -> Arc<Archive> {
        let kp = KeyPair::from_seed(&[seed; 32]);
        let log = Log::open(
            &DiskStorage::new(dir.join(seed.to_string())),
            kp.public(),
            Access::Writer(kp),
        )
        .unwrap();
        Arc::new(Archive::new(Arc::new(log)))
    }

    fn id(micros: u64) -> StatusId {
        StatusId::from_parts(1_700_000_000_000_000 + micros, 0).unwrap()
    }

    fn post(a: &Archive, micros: u64, reply_to: Option<(PublicKey, StatusId)>) -> StatusId {
        let mut status = Status::new(
            "hi",
            Timestamp::from_unix_millis(1_700_000_000_000).unwrap(),
        );
        if let Some((k, p)) = reply_to {
            let r = ThreadRef {
                url: ArchiveUrl::status(k.into(), p),
                seq: 0,
                hash: [0; 32],
            };
            status.reply = Some(Reply {
                root: r.clone(),
                parent: r,
            });
        }
        let id = id(micros);
        a.put_file(&File::Status { id, status }).unwrap();
        id
    }

    fn ids(page: &[Indexed]) -> Vec<(u8, u64)> {
        page.iter()
            .map(|ix| {
                (
                    ix.key.as_bytes()[0],
                    ix.id.timestamp_micros() - 1_700_000_000_000_000,
                )
            })
            .collect()
    }

    #[test]
    fn feed_merges_pages_and_follows_changes() {
        let dir = tempfile::tempdir().unwrap();
        let (own, bob) = (archive(dir.path(), 1), archive(dir.path(), 2));
        let index = Index::new(own.clone());
        index.set_archives(vec![bob.clone()]);
        for m in [1, 3, 5] {
            post(&own, m, None);
        }
        for m in [2, 4, 6] {
            post(&bob, m, None);
        }
        index.refresh_all(2);
        let (o, b) = (own.key().as_bytes()[0], bob.key().as_bytes()[0]);
        let first = index.page(Cursor::now(), 4);
        assert_eq!(ids(&first), [(b, 6), (o, 5), (b, 4), (o, 3)]);
        let last = first.last().unwrap();
        let cursor = Cursor {
            id: last.id,
            key: *last.key.as_bytes(),
        };
        assert_eq!(ids(&index.page(cursor, 4)), [(b, 2), (o, 1)]);

        // A reply from Bob to an own status: linked, counted, notified.
        let parent = id(5);
        let reply = post(&bob, 7, Some((own.key(), parent)));
        let changes = index.refresh(&bob.key()).unwrap();
        assert_eq!(changes.statuses, [(bob.key(), reply)]);
        assert_eq!(changes.notifications, 1);
        assert_eq!(index.children((own.key(), parent)), [(bob.key(), reply)]);
        assert_eq!(index.notifications(10)[0].reason, Reason::Reply);
        assert_eq!(index.unread(0), 1);

        // Deleted: gone from the feed, the links and the notifications.
        bob.delete(&reply.path()).unwrap();
        let changes = index.refresh(&bob.key()).unwrap();
        assert_eq!(changes.deleted, [(bob.key(), reply)]);
        assert_eq!(ids(&index.page(Cursor::now(), 1)), [(b, 6)]);
        assert!(index.children((own.key(), parent)).is_empty());
        assert_eq!(index.unread(0), 0);

        // A like of an own status notifies; taking it back removes it.
        let subject = ArchiveUrl::status(own.key().into(), parent);
        let like = fritter_common::model::Like {
            subject: subject.clone(),
            created_at: Timestamp::now(),
        };
        bob.put_file(&File::Like(like.clone())).unwrap();
        index.refresh(&bob.key()).unwrap();
        assert_eq!(index.counts((own.key(), parent)), (0, 1));
        assert_eq!(index.notifications(1)[0].reason, Reason::Like);
        bob.delete(&like.path()).unwrap();
        index.refresh(&bob.key()).unwrap();
        assert_eq!(index.counts((own.key(), parent)), (0, 0));
        assert!(index.notifications(1).is_empty());

        // Unfollowed: Bob's statuses leave the feed.
        index.set_archives(vec![]);
        assert_eq!(
            ids(&index.page(Cursor::now(), 10)),
            [(o, 5), (o, 3), (o, 1)]
        );
    }

    #[test]
    fn suggestions_rank_follows_of_follows() {
        let dir = tempfile::tempdir().unwrap();
        let own = archive(dir.path(), 1);
        let (b, c) = (archive(dir.path(), 2), archive(dir.path(), 3));
        let x = KeyPair::from_seed(&[9; 32]).public();
        let y = KeyPair::from_seed(&[8; 32]).public();
        let follows = |keys: &[PublicKey]| {
            File::Follows(Follows {
                urls: keys.iter().map(|k| ArchiveUrl::root((*k).into())).collect(),
            })
        };
        own.put_file(&follows(&[b.key(), c.key()])).unwrap();
        b.put_file(&follows(&[x, y, own.key(), c.key()])).unwrap();
        c.put_file(&follows(&[x])).unwrap();
        let index = Index::new(own.clone());
        index.set_archives(vec![b.clone(), c.clone()]);
        index.refresh_all(1);
        let s = index.suggestions(10);
        assert_eq!(
            s.len(),
            2,
            "neither the own archive nor one already followed"
        );
        assert_eq!(s[0].0, x);
        assert_eq!(s[0].1.len(), 2);
        assert_eq!(s[1].0, y);
    }

    #[test]
    fn cursor_round_trip_and_refusals() {
        let c = Cursor {
            id: id(42),
            key: [7; 32],
        };
        assert_eq!(Cursor::parse(&c.encode()), Some(c));
        assert_eq!(Cursor::parse("nope"), None);
        assert_eq!(Cursor::parse(&format!("{}.zz", id(1))), None);
    }
}
