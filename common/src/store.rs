//! The data directory: the owner's secret key, and the logs of every archive this node keeps,
//! with a lock so only one process writes an archive at a time.
//!
//! ```text
//! <data-dir>/identity/secret_key      owner's ed25519 secret key, hex, mode 0600
//! <data-dir>/archives/<key>/          tree, data, bitfield, LOCK
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::archive::Archive;
use crate::crypto::{KeyError, KeyPair, PublicKey};
use crate::log::{Access, DiskStorage, Log, LogError};

/// Errors of the data directory.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The cause is part of the message and deliberately not the error's `source()`: a chain
    /// printed whole (`{:#}`) would otherwise say it twice.
    #[error("{what} {}: {cause}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        cause: io::Error,
    },
    #[error("no identity in {}: run `fritter init --name NAME` first (or `fritter import FILE`)", .0.display())]
    NoIdentity(PathBuf),
    #[error("an identity already exists in {}: its archive is hyper://{}/", .0.display(), .1)]
    IdentityExists(PathBuf, PublicKey),
    #[error("{}: {reason}", path.display())]
    BadKeyFile { path: PathBuf, reason: String },
    #[error("archive {key} is in use by another process ({holder}); stop it, or run the command while `fritter serve` is running so it goes through it")]
    Locked {
        key: PublicKey,
        holder: String,
        /// The holder's pid, as it wrote it into the lock file.
        pid: Option<u32>,
    },
    #[error("{} is held by another process ({holder})", path.display())]
    FileLocked {
        path: PathBuf,
        holder: String,
        pid: Option<u32>,
    },
    #[error("data directory {} is in use by another process ({holder}); stop it, or pass another data directory", dir.display())]
    DirLocked { dir: PathBuf, holder: String },
    #[error("archive {0} is not stored in this data directory")]
    UnknownArchive(PublicKey),
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    Key(#[from] KeyError),
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StoreError {
    let path = path.to_owned();
    move |cause| StoreError::Io { what, path, cause }
}

/// A node's data directory.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    /// Set by [`Store::exclusive`]: the lock on the whole directory, which stands in for the
    /// per-archive locks, and the cache the logs' files are opened through.
    exclusive: Option<Exclusive>,
}

#[derive(Debug, Clone)]
struct Exclusive {
    _lock: Arc<File>,
    files: crate::log::FileCache,
}

/// An open archive plus the lock that makes this process its only writer.
pub struct OpenArchive {
    pub archive: Archive,
    _lock: Option<File>,
}

impl std::fmt::Debug for OpenArchive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenArchive").finish_non_exhaustive()
    }
}

impl std::ops::Deref for OpenArchive {
    type Target = Archive;
    fn deref(&self) -> &Archive {
        &self.archive
    }
}

impl Store {
    /// Uses `root` as the data directory (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Store {
            root: root.into(),
            exclusive: None,
        }
    }

    /// Uses `root` as a data directory this process holds alone (a service's, like the
    /// crawler's): one lock on the whole directory instead of a lock file per archive, and the
    /// logs' files opened through a cache of at most `max_open_files` descriptors, so it can hold
    /// many more archives than a process may have descriptors.
    pub fn exclusive(root: impl Into<PathBuf>, max_open_files: usize) -> Result<Self, StoreError> {
        let store = Store::new(root);
        store.create_root()?;
        let root = store.root;
        let lock = take_lock(&root.join("LOCK")).map_err(|e| e.for_dir(&root))?;
        Ok(Store {
            root,
            exclusive: Some(Exclusive {
                _lock: Arc::new(lock),
                files: crate::log::FileCache::new(max_open_files),
            }),
        })
    }

    /// The storage of the archive `key`.
    fn storage(&self, key: &PublicKey) -> DiskStorage {
        match &self.exclusive {
            Some(x) => DiskStorage::with_file_cache(self.archive_dir(key), x.files.clone()),
            None => DiskStorage::new(self.archive_dir(key)),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates the data directory if it is missing, readable by its owner only: it holds the
    /// secret key, the write token and everything followed. A directory that exists keeps the
    /// mode its owner gave it; missing parents are created as usual.
    pub fn create_root(&self) -> Result<(), StoreError> {
        use std::os::unix::fs::DirBuilderExt;
        if let Some(parent) = self.root.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent).map_err(io_err("creating", parent))?;
        }
        match fs::DirBuilder::new().mode(0o700).create(&self.root) {
            Err(e) if !(e.kind() == io::ErrorKind::AlreadyExists && self.root.is_dir()) => {
                Err(io_err("creating", &self.root)(e))
            }
            _ => Ok(()),
        }
    }

    fn key_path(&self) -> PathBuf {
        self.root.join("identity").join("secret_key")
    }

    pub fn archive_dir(&self, key: &PublicKey) -> PathBuf {
        self.root.join("archives").join(key.to_hex())
    }

    /// The owner's key pair, if an identity was created or imported.
    pub fn identity(&self) -> Result<Option<KeyPair>, StoreError> {
        let path = self.key_path();
        let mut text = String::new();
        match File::open(&path) {
            Ok(f) => {
                f.take(1024)
                    .read_to_string(&mut text)
                    .map_err(io_err("reading", &path))?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(StoreError::Io {
                    what: "reading",
                    path,
                    cause: e,
                })
            }
        }
        let mut secret = [0u8; 64];
        hex::decode_to_slice(text.trim(), &mut secret).map_err(|e| StoreError::BadKeyFile {
            path: path.clone(),
            reason: format!("expected 128 hex characters: {e}"),
        })?;
        Ok(Some(KeyPair::from_secret_key(&secret)?))
    }

    /// The owner's key pair, or an error that says how to create one.
    pub fn require_identity(&self) -> Result<KeyPair, StoreError> {
        self.identity()?
            .ok_or_else(|| StoreError::NoIdentity(self.root.clone()))
    }

    /// Saves a key pair as this node's identity; refuses to replace an existing one.
    pub fn save_identity(&self, kp: &KeyPair) -> Result<(), StoreError> {
        if let Some(existing) = self.identity()? {
            return Err(StoreError::IdentityExists(
                self.root.clone(),
                existing.public(),
            ));
        }
        let path = self.key_path();
        let dir = path.parent().unwrap_or(&self.root).to_owned();
        self.create_root()?;
        fs::create_dir_all(&dir).map_err(io_err("creating", &dir))?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
            .map_err(io_err("securing", &dir))?;
        let tmp = dir.join("secret_key.tmp");
        {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(io_err("writing", &tmp))?;
            f.write_all(hex::encode(kp.secret_key()).as_bytes())
                .map_err(io_err("writing", &tmp))?;
            f.sync_all().map_err(io_err("syncing", &tmp))?;
        }
        fs::rename(&tmp, &path).map_err(io_err("renaming", &path))?;
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err("syncing", &dir))?;
        Ok(())
    }

    /// Takes the archive's write lock, or says who holds it (nothing to take in an exclusive
    /// store: its directory lock covers every archive).
    fn lock(&self, key: &PublicKey) -> Result<Option<File>, StoreError> {
        if self.exclusive.is_some() {
            return Ok(None);
        }
        let dir = self.archive_dir(key);
        self.create_root()?;
        fs::create_dir_all(&dir).map_err(io_err("creating", &dir))?;
        take_lock(&dir.join("LOCK"))
            .map(Some)
            .map_err(|e| e.for_archive(*key))
    }

    /// Takes the lock file `name` (a path inside the data directory, created if missing), so
    /// one process at a time plays a role (`app/serve.lock`: the one `fritter serve`), or says
    /// which process holds it.
    pub fn lock_file(&self, name: &str) -> Result<FileLock, StoreError> {
        let path = self.root.join(name);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(io_err("creating", dir))?;
        }
        let file = take_lock(&path).map_err(|e| e.for_file(&path))?;
        Ok(FileLock { _file: file })
    }

    /// Opens the owner's archive for writing (creating its log on first use).
    pub fn open_own(&self) -> Result<OpenArchive, StoreError> {
        let kp = self.require_identity()?;
        let key = kp.public();
        let lock = self.lock(&key)?;
        let log = Log::open(&self.storage(&key), key, Access::Writer(kp))?;
        Ok(OpenArchive {
            archive: Archive::new(Arc::new(log)),
            _lock: lock,
        })
    }

    /// Opens a replica of another archive, creating it if asked (this process becomes the one
    /// that stores it).
    pub fn open_replica(&self, key: &PublicKey) -> Result<OpenArchive, StoreError> {
        let lock = self.lock(key)?;
        let log = Log::open(&self.storage(key), *key, Access::Replica)?;
        Ok(OpenArchive {
            archive: Archive::new(Arc::new(log)),
            _lock: lock,
        })
    }

    /// Opens any stored archive for reading only, without taking its lock.
    pub fn open_view(&self, key: &PublicKey) -> Result<OpenArchive, StoreError> {
        let dir = self.archive_dir(key);
        if !dir.join("tree").exists() {
            return Err(StoreError::UnknownArchive(*key));
        }
        let log = Log::open(&self.storage(key), *key, Access::View)?;
        Ok(OpenArchive {
            archive: Archive::new(Arc::new(log)),
            _lock: None,
        })
    }

    /// Keys of every archive stored here.
    pub fn archives(&self) -> Result<Vec<PublicKey>, StoreError> {
        let dir = self.root.join("archives");
        let mut keys = Vec::new();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(keys),
            Err(e) => {
                return Err(StoreError::Io {
                    what: "listing",
                    path: dir,
                    cause: e,
                })
            }
        };
        for entry in entries.flatten() {
            if let Some(k) = entry
                .file_name()
                .to_str()
                .and_then(|n| PublicKey::from_hex(n).ok())
            {
                keys.push(k);
            }
        }
        keys.sort();
        Ok(keys)
    }
}

/// Why a lock file could not be taken.
enum LockError {
    Io(StoreError),
    /// Held by another process: its pid, when it wrote one.
    Held(Option<u32>),
}

/// Replaces `path` with `bytes` atomically and durably, readable by the owner alone: a temporary
/// file beside it (created new, never through a planted link: `O_EXCL | O_NOFOLLOW`; a leftover
/// one is removed first), synced, renamed over `path`, then the directory synced. The parent
/// directory must exist.
pub fn write_private_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp_name = path.file_name().unwrap_or_default().to_owned();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    let create = || {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .mode(0o600)
            .open(&tmp)
    };
    let mut f = match create() {
        // A crash left it, or someone planted it: remove the name itself (not a link's target).
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            fs::remove_file(&tmp).and_then(|()| create())?
        }
        opened => opened?,
    };
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, path)?;
    File::open(dir)?.sync_all()
}

fn describe_holder(pid: Option<u32>) -> String {
    match pid {
        Some(pid) => format!("pid {pid}"),
        None => "unknown process".to_owned(),
    }
}

impl LockError {
    fn for_archive(self, key: PublicKey) -> StoreError {
        match self {
            LockError::Io(e) => e,
            LockError::Held(pid) => StoreError::Locked {
                key,
                holder: describe_holder(pid),
                pid,
            },
        }
    }

    fn for_dir(self, dir: &Path) -> StoreError {
        match self {
            LockError::Io(e) => e,
            LockError::Held(pid) => StoreError::DirLocked {
                dir: dir.to_owned(),
                holder: describe_holder(pid),
            },
        }
    }

    fn for_file(self, path: &Path) -> StoreError {
        match self {
            LockError::Io(e) => e,
            LockError::Held(pid) => StoreError::FileLocked {
                path: path.to_owned(),
                holder: describe_holder(pid),
                pid,
            },
        }
    }
}

/// A lock on one file of the data directory, held until dropped (or the process ends).
#[derive(Debug)]
pub struct FileLock {
    _file: File,
}

/// Takes an exclusive `flock` on `path` (created if missing) and writes our pid into it.
fn take_lock(path: &Path) -> Result<File, LockError> {
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| LockError::Io(io_err("opening", path)(e)))?;
    // SAFETY: flock on a descriptor we own; no memory is shared.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        // The holder wrote its pid; anything else (empty, junk, huge) names no one.
        let mut holder = String::new();
        let _ = (&mut f).take(32).read_to_string(&mut holder);
        return Err(LockError::Held(holder.trim().parse().ok()));
    }
    f.set_len(0)
        .map_err(|e| LockError::Io(io_err("writing", path)(e)))?;
    let _ = write!(f, "{}", std::process::id());
    Ok(f)
}

/// Raises this process's soft limit on open files to its hard limit; returns the limit now in
/// force (`None` if it cannot be read). A node holding many archives needs several descriptors
/// per archive, and the soft limit is often a small default.
pub fn raise_fd_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return None;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim = raised;
            }
        }
    }
    Some(lim.rlim_cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_new_data_directory_is_the_owners_only() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(tmp.path().join("parent").join("data"));
        store.save_identity(&KeyPair::from_seed(&[7; 32])).unwrap();
        assert_eq!(mode(store.root()), 0o700);
        drop(store.open_own().unwrap());

        let service = tmp.path().join("crawler");
        drop(Store::exclusive(&service, 16).unwrap());
        assert_eq!(mode(&service), 0o700);

        // One that exists keeps its owner's choice.
        let shared = tmp.path().join("shared");
        fs::create_dir(&shared).unwrap();
        fs::set_permissions(&shared, fs::Permissions::from_mode(0o750)).unwrap();
        Store::new(&shared).create_root().unwrap();
        assert_eq!(mode(&shared), 0o750);
    }
}
