//! An archive: the files a user publishes, written as JSON file operations into their signed log.
//! The view (each path's latest version and the entry that wrote it) is folded from the log;
//! entries that fail to decode or validate are skipped and counted, never fatal.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::RwLock;
use serde::Serialize;
use serde_json::Value;

use crate::crypto::{self, Hash, PublicKey};
use crate::log::{Log, LogError, LogInfo};
use crate::model::{self, ArchiveUrl, Entry, File, FilePath, ModelError};

/// Errors of archive operations.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ArchiveError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("{path} does not exist in archive {archive}")]
    NotFound { archive: String, path: String },
}

/// Identifies one log entry: where it is and what it hashes to, so others can pin it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct EntryRef {
    pub seq: u64,
    #[serde(serialize_with = "hex_hash")]
    pub hash: Hash,
}

fn hex_hash<S: serde::Serializer>(h: &Hash, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(h))
}

/// The current version of a file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileVersion {
    pub path: FilePath,
    #[serde(flatten)]
    pub entry: EntryRef,
    pub value: Value,
}

/// One step in the history of the archive.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryItem {
    #[serde(flatten)]
    pub entry: EntryRef,
    pub op: &'static str,
    pub path: String,
}

/// An entry the view ignored, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Skipped {
    pub seq: u64,
    pub reason: String,
}

#[derive(Default)]
struct View {
    /// Entries `0..folded` are reflected in `files`.
    folded: u64,
    fork: u64,
    files: BTreeMap<FilePath, EntryRef>,
    skipped: Vec<Skipped>,
}

/// Most skipped entries remembered per archive (the count keeps going).
const MAX_SKIPPED_KEPT: usize = 100;

/// A user's archive on top of its log.
pub struct Archive {
    log: Arc<Log>,
    view: RwLock<View>,
    skipped_total: std::sync::atomic::AtomicU64,
}

impl Archive {
    pub fn new(log: Arc<Log>) -> Self {
        Archive {
            log,
            view: RwLock::new(View::default()),
            skipped_total: Default::default(),
        }
    }

    pub fn key(&self) -> PublicKey {
        self.log.key()
    }

    pub fn url(&self) -> ArchiveUrl {
        ArchiveUrl::root(self.key().into())
    }

    pub fn log(&self) -> &Arc<Log> {
        &self.log
    }

    pub fn info(&self) -> LogInfo {
        self.log.info()
    }

    pub fn writable(&self) -> bool {
        self.log.writable()
    }

    /// Brings the view up to date with the log (new entries, or a rebuild after a fork).
    pub fn refresh(&self) -> Result<(), ArchiveError> {
        let info = self.log.info();
        {
            let v = self.view.read();
            if v.fork == info.fork && v.folded == info.contiguous {
                return Ok(());
            }
        }
        let mut v = self.view.write();
        if v.fork != info.fork || v.folded > info.contiguous {
            *v = View {
                fork: info.fork,
                ..View::default()
            };
        }
        let start = v.folded;
        let mut skipped = 0u64;
        self.log.for_each(start, info.contiguous, |seq, block| {
            match decode(block) {
                Ok(entry) => {
                    let r = EntryRef {
                        seq,
                        hash: crypto::leaf_hash(block),
                    };
                    match entry {
                        Entry::Put { path, .. } => {
                            v.files.insert(path, r);
                        }
                        Entry::Del { path } => {
                            v.files.remove(&path);
                        }
                    }
                }
                Err(e) => {
                    skipped += 1;
                    if v.skipped.len() < MAX_SKIPPED_KEPT {
                        v.skipped.push(Skipped {
                            seq,
                            reason: e.to_string(),
                        });
                    }
                }
            }
            v.folded = seq + 1;
            Ok(())
        })?;
        self.skipped_total
            .fetch_add(skipped, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Entries the view ignored: the total and the first few with reasons.
    pub fn skipped(&self) -> (u64, Vec<Skipped>) {
        (
            self.skipped_total
                .load(std::sync::atomic::Ordering::Relaxed),
            self.view.read().skipped.clone(),
        )
    }

    fn write(&self, entry: &Entry) -> Result<EntryRef, ArchiveError> {
        let bytes = entry.encode_checked()?;
        let hash = crypto::leaf_hash(&bytes);
        let seq = self.log.append(&bytes)?;
        // Fold the new entry (and any others) so reads see it at once.
        self.refresh()?;
        Ok(EntryRef { seq, hash })
    }

    /// Validates and writes a file.
    pub fn put(&self, path: &FilePath, value: Value) -> Result<EntryRef, ArchiveError> {
        let file = model::validate_file(path, &value)?;
        self.put_file(&file)
    }

    /// Writes a validated file.
    pub fn put_file(&self, file: &File) -> Result<EntryRef, ArchiveError> {
        self.write(&file.to_entry()?)
    }

    /// Deletes a file; the history keeps that it existed.
    pub fn delete(&self, path: &FilePath) -> Result<EntryRef, ArchiveError> {
        self.refresh()?;
        if !self.view.read().files.contains_key(path) {
            return Err(ArchiveError::NotFound {
                archive: self.key().to_hex(),
                path: path.to_string(),
            });
        }
        self.write(&Entry::Del { path: path.clone() })
    }

    /// The current version of a file, read and verified from the log.
    pub fn get(&self, path: &FilePath) -> Result<Option<FileVersion>, ArchiveError> {
        self.refresh()?;
        let Some(r) = self.view.read().files.get(path).copied() else {
            return Ok(None);
        };
        let block = self.log.get(r.seq)?;
        match decode(&block)? {
            Entry::Put { path, value } => Ok(Some(FileVersion {
                path,
                entry: r,
                value: Value::Object(value),
            })),
            Entry::Del { .. } => Ok(None),
        }
    }

    /// Files under `dir` (recursively), in path order.
    pub fn list(&self, dir: &FilePath) -> Result<Vec<(FilePath, EntryRef)>, ArchiveError> {
        self.refresh()?;
        let v = self.view.read();
        Ok(v.files
            .range(dir.clone()..)
            .take_while(|(p, _)| p.starts_with(dir))
            .map(|(p, r)| (p.clone(), *r))
            .collect())
    }

    /// Every entry of the log in order (optionally only those touching `path`); entries that do
    /// not decode are listed with op `invalid`.
    pub fn history(&self, path: Option<&FilePath>) -> Result<Vec<HistoryItem>, ArchiveError> {
        let info = self.log.info();
        let mut out = Vec::new();
        self.log.for_each(0, info.contiguous, |seq, block| {
            let entry = EntryRef {
                seq,
                hash: crypto::leaf_hash(block),
            };
            let (op, p) = match decode(block) {
                Ok(Entry::Put { path, .. }) => ("put", path.to_string()),
                Ok(Entry::Del { path }) => ("del", path.to_string()),
                Err(_) => ("invalid", String::new()),
            };
            if path.is_none_or(|want| want.as_str() == p) {
                out.push(HistoryItem { entry, op, path: p });
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// Reads and decodes entry `seq` (for references that pin an exact entry).
    pub fn entry(&self, seq: u64) -> Result<(EntryRef, Entry), ArchiveError> {
        let block = self.log.get(seq)?;
        let r = EntryRef {
            seq,
            hash: crypto::leaf_hash(&block),
        };
        Ok((r, decode(&block)?))
    }
}

/// Decodes and validates one entry from the log: a put must hold a valid file.
fn decode(block: &[u8]) -> Result<Entry, ModelError> {
    let entry = Entry::decode(block)?;
    entry.validate()?;
    Ok(entry)
}

impl std::fmt::Debug for Archive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Archive").field("key", &self.key()).finish()
    }
}
