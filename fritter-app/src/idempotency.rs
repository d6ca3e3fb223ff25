//! Idempotency keys, so a write retried after its answer was lost is not done twice: the CLI
//! sends one random key with every attempt of a command, and whoever writes (`fritter serve`,
//! `fritter sync`, or the CLI itself when the archive is free) answers a key it has seen with
//! the first answer.
//!
//! Each key is one small file, `<data-dir>/app/idempotency/<key>.json`, synced before the write
//! it guards is answered: "pending" (with the archive's length) before the write, then the
//! answer once it is done. A repeat that finds a key pending (the writer died in between) and
//! the archive longer than it was is refused instead of written again. At most [`MAX_KEYS`]
//! records are kept, none older than [`KEEP`].

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::App;

/// The HTTP header that carries the key.
pub const HEADER: &str = "idempotency-key";
/// Records kept at most; the oldest go first.
pub const MAX_KEYS: usize = 1000;
/// How long a key is remembered.
pub const KEEP: Duration = Duration::from_secs(24 * 60 * 60);
/// Longest key accepted.
const MAX_KEY_LEN: usize = 64;
/// Largest record read back (an answer is a report of one write: a few kilobytes).
const MAX_RECORD: u64 = 1024 * 1024;

/// Why a keyed write is refused.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("idempotency key {0:?} is malformed: expected 1 to 64 letters, digits, '-' or '_'")]
    Malformed(String),
    #[error("idempotency key {0} was already used for a different request; send a new key")]
    Reused(String),
    #[error("an earlier attempt with idempotency key {key} was interrupted after your archive grew from {before} to {now} entries, so it may have been written; it is not written again: check with `fritter log`")]
    Interrupted { key: String, before: u64, now: u64 },
    // The cause is in the message, not the source chain, so it is said once.
    #[error("cannot record idempotency key {key} in {}: {cause}", path.display())]
    Io {
        key: String,
        path: PathBuf,
        cause: std::io::Error,
    },
}

/// What a keyed write should do.
#[derive(Debug, PartialEq, Eq)]
pub enum Begin {
    /// The key is new (or its earlier attempt wrote nothing): do the write, then [`Keys::finish`].
    Fresh,
    /// Done before: answer this instead.
    Replay { status: u16, body: String },
}

/// The records of one data directory.
#[derive(Debug, Clone)]
pub struct Keys {
    dir: PathBuf,
    /// Records kept at most ([`MAX_KEYS`]; fewer in tests).
    max: usize,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    /// Digest of the request's path and body: the same key with another request is refused.
    request: String,
    /// When the key was first seen, in ms since the epoch.
    at_ms: u64,
    #[serde(flatten)]
    state: State,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "camelCase")]
enum State {
    #[serde(rename_all = "camelCase")]
    Pending {
        length_before: u64,
    },
    Done {
        status: u16,
        body: String,
    },
}

/// A fresh key: 128 random bits, hex.
pub fn new_key() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// Checks a key received from a client (it becomes a file name).
pub fn check_key(key: &str) -> Result<(), KeyError> {
    let ok = !key.is_empty()
        && key.len() <= MAX_KEY_LEN
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        let shown: String = key.chars().take(MAX_KEY_LEN + 1).collect();
        Err(KeyError::Malformed(shown))
    }
}

/// The digest that ties a key to its request: the path and the JSON body (parsed and written
/// back, so the CLI's body and the bytes the server received compare equal).
pub fn request_digest(path: &str, body: &[u8]) -> String {
    let canonical = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| serde_json::to_vec(&v).ok())
        .unwrap_or_else(|| body.to_vec());
    let mut state = blake2b_simd::Params::new().hash_length(16).to_state();
    state.update(path.as_bytes());
    state.update(&[0]);
    state.update(&canonical);
    state.finalize().to_hex().to_string()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Keys {
    pub fn new(app: &App) -> Keys {
        Keys::at(app.store.root().join("app").join("idempotency"))
    }

    /// Records kept in `dir`.
    pub fn at(dir: PathBuf) -> Keys {
        Keys { dir, max: MAX_KEYS }
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }

    fn io(&self, key: &str, path: &Path) -> impl FnOnce(std::io::Error) -> KeyError {
        let (key, path) = (key.to_owned(), path.to_owned());
        move |cause| KeyError::Io { key, path, cause }
    }

    /// Starts a keyed write of `request` (a [`request_digest`]) while the archive holds `length`
    /// entries. The caller must be the archive's only writer until [`Keys::finish`].
    pub fn begin(&self, key: &str, request: &str, length: u64) -> Result<Begin, KeyError> {
        check_key(key)?;
        if let Some(record) = self.read(key) {
            if record.request != request {
                return Err(KeyError::Reused(key.to_owned()));
            }
            match record.state {
                State::Done { status, body } => return Ok(Begin::Replay { status, body }),
                State::Pending { length_before } if length > length_before => {
                    return Err(KeyError::Interrupted {
                        key: key.to_owned(),
                        before: length_before,
                        now: length,
                    })
                }
                // The earlier attempt stopped before writing anything: do it now.
                State::Pending { .. } => {}
            }
        } else {
            self.prune();
        }
        self.write(
            key,
            &Record {
                request: request.to_owned(),
                at_ms: now_ms(),
                state: State::Pending {
                    length_before: length,
                },
            },
        )?;
        Ok(Begin::Fresh)
    }

    /// Records the answer of a write begun with `key`, durably, before it is sent. Only
    /// successes are recorded: a refused write wrote nothing, and a retry may succeed.
    pub fn finish(
        &self,
        key: &str,
        request: &str,
        status: u16,
        body: &str,
    ) -> Result<(), KeyError> {
        self.write(
            key,
            &Record {
                request: request.to_owned(),
                at_ms: now_ms(),
                state: State::Done {
                    status,
                    body: body.to_owned(),
                },
            },
        )
    }

    /// The record of `key`, unless missing, expired or unreadable (then the key counts as new).
    fn read(&self, key: &str) -> Option<Record> {
        let mut text = String::new();
        File::open(self.path(key))
            .ok()?
            .take(MAX_RECORD)
            .read_to_string(&mut text)
            .ok()?;
        let record: Record = serde_json::from_str(&text).ok()?;
        let age = now_ms().saturating_sub(record.at_ms);
        (u128::from(age) < KEEP.as_millis()).then_some(record)
    }

    /// Writes a record atomically and durably (temp file, sync, rename, sync the directory).
    fn write(&self, key: &str, record: &Record) -> Result<(), KeyError> {
        fs::create_dir_all(&self.dir).map_err(self.io(key, &self.dir))?;
        let path = self.path(key);
        let bytes = serde_json::to_vec(record).map_err(|e| self.io(key, &path)(e.into()))?;
        fritter_common::store::write_private_atomic(&path, &bytes).map_err(self.io(key, &path))
    }

    /// Removes expired records, and the oldest beyond the bound - 1 to make room for one.
    fn prune(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        let now = SystemTime::now();
        let mut kept: Vec<(SystemTime, PathBuf)> = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            let modified = entry
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            let expired = now.duration_since(modified).is_ok_and(|age| age > KEEP);
            let ours = path.extension().is_some_and(|e| e == "json" || e == "tmp");
            if ours && (expired || path.extension().is_some_and(|e| e == "tmp")) {
                let _ = fs::remove_file(&path);
            } else if ours {
                kept.push((modified, path));
            }
        }
        if kept.len() >= self.max {
            kept.sort();
            for (_, path) in &kept[..=kept.len() - self.max] {
                let _ = fs::remove_file(path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> (tempfile::TempDir, Keys) {
        let dir = tempfile::tempdir().unwrap();
        let keys = Keys::at(dir.path().join("idempotency"));
        (dir, keys)
    }

    #[test]
    fn a_done_key_replays_its_answer() {
        let (_dir, keys) = keys();
        let req = request_digest("/api/post", br#"{"text":"hi"}"#);
        assert_eq!(keys.begin("k1", &req, 3).unwrap(), Begin::Fresh);
        keys.finish("k1", &req, 200, r#"{"result":1}"#).unwrap();
        assert_eq!(
            keys.begin("k1", &req, 4).unwrap(),
            Begin::Replay {
                status: 200,
                body: r#"{"result":1}"#.into()
            }
        );
    }

    #[test]
    fn a_pending_key_is_redone_only_if_nothing_was_written() {
        let (_dir, keys) = keys();
        let req = request_digest("/api/post", b"{}");
        assert_eq!(keys.begin("k", &req, 3).unwrap(), Begin::Fresh);
        // The writer died before writing: the archive did not grow, so it is done now.
        assert_eq!(keys.begin("k", &req, 3).unwrap(), Begin::Fresh);
        // It died after writing: refused, not written twice.
        assert!(matches!(
            keys.begin("k", &req, 4),
            Err(KeyError::Interrupted {
                before: 3,
                now: 4,
                ..
            })
        ));
    }

    #[test]
    fn a_key_is_bound_to_its_request() {
        let (_dir, keys) = keys();
        let a = request_digest("/api/post", br#"{"text":"a"}"#);
        let b = request_digest("/api/post", br#"{"text":"b"}"#);
        keys.begin("k", &a, 0).unwrap();
        assert!(matches!(keys.begin("k", &b, 0), Err(KeyError::Reused(_))));
        // Key order and spacing of the JSON do not matter.
        assert_eq!(
            request_digest("/x", br#"{"a":1, "b":2}"#),
            request_digest("/x", br#"{"b":2,"a":1}"#)
        );
    }

    #[test]
    fn hostile_keys_are_refused() {
        let (_dir, keys) = keys();
        for key in ["", "../secret", "a/b", "a.json", &"x".repeat(65), "k\0"] {
            assert!(
                matches!(keys.begin(key, "r", 0), Err(KeyError::Malformed(_))),
                "{key:?}"
            );
        }
    }

    #[test]
    fn records_are_bounded() {
        let (_dir, mut keys) = keys();
        keys.max = 10;
        for i in 0..25 {
            keys.begin(&format!("k{i}"), "r", 0).unwrap();
        }
        let n = fs::read_dir(&keys.dir).unwrap().count();
        assert_eq!(n, 10, "records kept");
    }
}
