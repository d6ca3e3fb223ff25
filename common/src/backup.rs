//! Export and import of an identity: the secret key and the archive's log files in one file,
//! for backups and for moving to another machine. An import is verified in full (signature,
//! tree, every entry) before it replaces anything.
//!
//! Format: one JSON line describing the contents, then the raw bytes of each file in order.
//! ```text
//! {"format":"fritter-backup","version":1,"archive":"<hex>","secretKey":"<hex>",
//!  "files":[{"name":"tree","bytes":N,"blake2b":"<hex>"}, ...]}\n<tree bytes><data bytes>...
//! ```

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::crypto::{KeyPair, PublicKey};
use crate::log::{Access, DiskStorage, Log, LogError};
use crate::store::{Store, StoreError};

const FORMAT: &str = "fritter-backup";
const VERSION: u32 = 1;
const FILES: [&str; 3] = ["tree", "data", "bitfield"];
/// The description line is small; refuse anything longer before parsing it.
const MAX_HEADER: u64 = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The cause is in the message and deliberately not `source()`, as in `StoreError::Io`.
    #[error("{what} {}: {cause}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        cause: io::Error,
    },
    #[error("{0} is not a fritter backup: {1}")]
    NotABackup(PathBuf, String),
    #[error("backup {0} is damaged: {1}")]
    Damaged(PathBuf, String),
    /// Its reason is in the message, so it is not also the `source()`.
    #[error("the backup's archive does not verify: {0}")]
    Invalid(LogError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<LogError> for BackupError {
    fn from(err: LogError) -> BackupError {
        BackupError::Invalid(err)
    }
}

#[derive(Serialize, Deserialize)]
struct Manifest {
    format: String,
    version: u32,
    archive: String,
    #[serde(rename = "secretKey")]
    secret_key: String,
    files: Vec<FileEntry>,
}

#[derive(Serialize, Deserialize)]
struct FileEntry {
    name: String,
    bytes: u64,
    blake2b: String,
}

fn digest_file(path: &Path) -> io::Result<(u64, String)> {
    let mut f = File::open(path)?;
    let mut state = blake2b_simd::Params::new().hash_length(32).to_state();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        state.update(&buf[..n]);
        total += n as u64;
    }
    Ok((total, state.finalize().to_hex().to_string()))
}

/// What an export or import covered.
#[derive(Debug, Clone, Serialize)]
pub struct BackupSummary {
    pub archive: PublicKey,
    pub entries: u64,
    pub bytes: u64,
}

/// Writes the identity and its archive to `out`. The caller holds the archive's lock, so the
/// files do not change underneath.
pub fn export(store: &Store, out: &Path) -> Result<BackupSummary, BackupError> {
    let kp = store.require_identity()?;
    let key = kp.public();
    let dir = store.archive_dir(&key);
    let log = Log::open(&DiskStorage::new(&dir), key, Access::View)?;
    let entries = log.len();
    drop(log);
    let mut files = Vec::new();
    for name in FILES {
        let path = dir.join(name);
        let (bytes, blake2b) = digest_file(&path).map_err(|cause| BackupError::Io {
            what: "reading",
            path,
            cause,
        })?;
        files.push(FileEntry {
            name: name.to_owned(),
            bytes,
            blake2b,
        });
    }
    let manifest = Manifest {
        format: FORMAT.to_owned(),
        version: VERSION,
        archive: key.to_hex(),
        secret_key: hex::encode(kp.secret_key()),
        files,
    };
    let tmp = out.with_extension("partial");
    let io = |what| {
        let tmp = tmp.clone();
        move |cause| BackupError::Io {
            what,
            path: tmp,
            cause,
        }
    };
    let mut w = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode_0600()
        .open(&tmp)
        .map_err(io("creating"))?;
    let line = serde_json::to_string(&manifest)
        .map_err(|e| BackupError::Damaged(tmp.clone(), e.to_string()))?;
    w.write_all(line.as_bytes()).map_err(io("writing"))?;
    w.write_all(b"\n").map_err(io("writing"))?;
    let mut total = 0;
    for f in &manifest.files {
        let path = dir.join(&f.name);
        let mut src = File::open(&path).map_err(|cause| BackupError::Io {
            what: "reading",
            path: path.clone(),
            cause,
        })?;
        // Copy exactly the digested length even if the file grew meanwhile.
        let copied = io::copy(&mut (&mut src).take(f.bytes), &mut w).map_err(io("writing"))?;
        if copied != f.bytes {
            return Err(BackupError::Damaged(
                path,
                "file shrank while exporting".into(),
            ));
        }
        total += copied;
    }
    w.sync_all().map_err(io("syncing"))?;
    drop(w);
    fs::rename(&tmp, out).map_err(|cause| BackupError::Io {
        what: "renaming",
        path: out.to_owned(),
        cause,
    })?;
    Ok(BackupSummary {
        archive: key,
        entries,
        bytes: total,
    })
}

trait Mode0600 {
    fn mode_0600(&mut self) -> &mut Self;
}

impl Mode0600 for fs::OpenOptions {
    fn mode_0600(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.mode(0o600)
    }
}

/// Restores an identity and its archive from a backup into `store`, which must not have an
/// identity yet. Everything is verified in a staging directory first.
pub fn import(store: &Store, input: &Path) -> Result<BackupSummary, BackupError> {
    let not = |why: &str| BackupError::NotABackup(input.to_owned(), why.to_owned());
    let damaged = |why: String| BackupError::Damaged(input.to_owned(), why);
    let file = File::open(input).map_err(|cause| BackupError::Io {
        what: "opening",
        path: input.to_owned(),
        cause,
    })?;
    let mut r = BufReader::new(file);
    let mut line = Vec::new();
    (&mut r)
        .take(MAX_HEADER)
        .read_until(b'\n', &mut line)
        .map_err(|cause| BackupError::Io {
            what: "reading",
            path: input.to_owned(),
            cause,
        })?;
    if line.last() != Some(&b'\n') {
        return Err(not("no description line"));
    }
    let manifest: Manifest = serde_json::from_slice(&line).map_err(|e| not(&e.to_string()))?;
    if manifest.format != FORMAT || manifest.version != VERSION {
        return Err(not(&format!(
            "format {} version {}",
            manifest.format, manifest.version
        )));
    }
    let key = PublicKey::from_hex(&manifest.archive).map_err(|e| damaged(e.to_string()))?;
    let mut secret = [0u8; 64];
    hex::decode_to_slice(&manifest.secret_key, &mut secret)
        .map_err(|e| damaged(format!("secret key: {e}")))?;
    let kp = KeyPair::from_secret_key(&secret).map_err(|e| damaged(e.to_string()))?;
    if kp.public() != key {
        return Err(damaged("secret key does not belong to the archive".into()));
    }
    if let Some(existing) = store.identity()? {
        return Err(StoreError::IdentityExists(store.root().to_owned(), existing.public()).into());
    }
    if manifest.files.len() != FILES.len()
        || manifest.files.iter().zip(FILES).any(|(f, n)| f.name != n)
    {
        return Err(damaged("unexpected file list".into()));
    }

    let final_dir = store.archive_dir(&key);
    let staging = final_dir.with_extension("import");
    let _ = fs::remove_dir_all(&staging);
    store.create_root()?;
    fs::create_dir_all(&staging).map_err(|cause| BackupError::Io {
        what: "creating",
        path: staging.clone(),
        cause,
    })?;
    let mut total = 0;
    for f in &manifest.files {
        let path = staging.join(&f.name);
        let mut out = File::create(&path).map_err(|cause| BackupError::Io {
            what: "creating",
            path: path.clone(),
            cause,
        })?;
        let copied =
            io::copy(&mut (&mut r).take(f.bytes), &mut out).map_err(|cause| BackupError::Io {
                what: "writing",
                path: path.clone(),
                cause,
            })?;
        if copied != f.bytes {
            return Err(damaged(format!(
                "{} is cut short ({copied} of {} bytes)",
                f.name, f.bytes
            )));
        }
        out.sync_all().map_err(|cause| BackupError::Io {
            what: "syncing",
            path: path.clone(),
            cause,
        })?;
        let (_, digest) = digest_file(&path).map_err(|cause| BackupError::Io {
            what: "reading",
            path: path.clone(),
            cause,
        })?;
        if digest != f.blake2b {
            return Err(damaged(format!("{} does not match its checksum", f.name)));
        }
        total += copied;
    }
    let entries = {
        let log = Log::open(&DiskStorage::new(&staging), key, Access::View)?;
        let len = log.len();
        log.for_each(0, len, |_, _| Ok(()))?;
        len
    };
    if final_dir.exists() {
        // A replica of the same archive may be stored already; the verified backup replaces it.
        fs::remove_dir_all(&final_dir).map_err(|cause| BackupError::Io {
            what: "replacing",
            path: final_dir.clone(),
            cause,
        })?;
    }
    fs::rename(&staging, &final_dir).map_err(|cause| BackupError::Io {
        what: "moving",
        path: final_dir.clone(),
        cause,
    })?;
    store.save_identity(&kp)?;
    Ok(BackupSummary {
        archive: key,
        entries,
        bytes: total,
    })
}
