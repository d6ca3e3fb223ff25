//! The seam between the log and the disk: a directory of files with positional reads and
//! writes and an explicit `sync`. The real implementation is `std::fs`; tests swap in a
//! simulated disk that can lose unsynced writes, tear them, or fill up.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A directory holding the files of one log.
pub trait Storage: Send + Sync {
    /// Opens (creating if asked) the named file.
    fn open(&self, name: &str, create: bool) -> io::Result<Arc<dyn StorageFile>>;
    /// A human-readable location for error messages.
    fn describe(&self) -> String;
}

/// One file: positional I/O, length, durability.
#[allow(clippy::len_without_is_empty)] // a file's length, not a collection
pub trait StorageFile: Send + Sync {
    /// Reads up to `buf.len()` bytes at `offset`; fewer only at end of file.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Makes every completed write durable.
    fn sync(&self) -> io::Result<()>;
    fn len(&self) -> io::Result<u64>;
    fn set_len(&self, len: u64) -> io::Result<()>;

    /// Reads exactly `buf.len()` bytes or reports how many were there.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let mut done = 0;
        while done < buf.len() {
            let n = self.read_at(&mut buf[done..], offset + done as u64)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "file ends {} bytes into a {}-byte read at offset {offset}",
                        done,
                        buf.len()
                    ),
                ));
            }
            done += n;
        }
        Ok(())
    }
}

/// Files in a directory on the real disk.
#[derive(Debug, Clone)]
pub struct DiskStorage {
    dir: PathBuf,
    files: Option<FileCache>,
}

impl DiskStorage {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        DiskStorage {
            dir: dir.into(),
            files: None,
        }
    }

    /// Files whose descriptors `files` may close while they are idle (and reopen on next use),
    /// so a process can hold more logs than it may have descriptors.
    pub fn with_file_cache(dir: impl Into<PathBuf>, files: FileCache) -> Self {
        DiskStorage {
            dir: dir.into(),
            files: Some(files),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Storage for DiskStorage {
    fn open(&self, name: &str, create: bool) -> io::Result<Arc<dyn StorageFile>> {
        let path = self.dir.join(name);
        match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(file) => return Ok(self.wrap(path, file)),
            Err(e) if e.kind() == io::ErrorKind::NotFound && create => {}
            Err(e) => return Err(e),
        }
        if !self.dir.exists() {
            std::fs::create_dir_all(&self.dir)?;
            if let Some(parent) = self.dir.parent() {
                File::open(parent)?.sync_all()?;
            }
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        // Make the new directory entry durable, or a crash could lose the file.
        File::open(&self.dir)?.sync_all()?;
        Ok(self.wrap(path, file))
    }

    fn describe(&self) -> String {
        self.dir.display().to_string()
    }
}

impl DiskStorage {
    fn wrap(&self, path: PathBuf, file: File) -> Arc<dyn StorageFile> {
        match &self.files {
            None => Arc::new(DiskFile { file }),
            Some(cache) => cache.admit(path, file),
        }
    }
}

struct DiskFile {
    file: File,
}

impl StorageFile for DiskFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        loop {
            match self.file.read_at(buf, offset) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r,
            }
        }
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.file.write_all_at(buf, offset)
    }

    fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }
}

/// A bound on the descriptors the files of many logs keep open.
///
/// A log keeps three or four files; a crawler holding ten thousand archives would need more
/// descriptors than a process may have (20,000 here). Files opened through a cache
/// ([`DiskStorage::with_file_cache`]) close when the cache is over its bound and they were not
/// used since the clock hand last passed (the CLOCK approximation of least-recently-used), and
/// reopen on their next use. Closing loses nothing: a write is in the page cache once
/// `write_all_at` returns, and `sync` on a reopened descriptor flushes the inode's data whichever
/// descriptor wrote it (an `fsync` error not yet seen by anyone is reported to the next one).
#[derive(Clone)]
pub struct FileCache {
    inner: Arc<CacheInner>,
}

impl std::fmt::Debug for FileCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileCache")
            .field("max_open", &self.inner.max_open)
            .field("open", &self.open())
            .finish()
    }
}

struct CacheInner {
    max_open: usize,
    clock: parking_lot::Mutex<Clock>,
}

#[derive(Default)]
struct Clock {
    /// The files with an open descriptor.
    open: Vec<std::sync::Weak<CachedFile>>,
    hand: usize,
}

impl FileCache {
    /// A cache keeping at most `max_open` descriptors open (at least 16), but for the moments a
    /// file is in use.
    pub fn new(max_open: usize) -> FileCache {
        FileCache {
            inner: Arc::new(CacheInner {
                max_open: max_open.max(16),
                clock: parking_lot::Mutex::new(Clock::default()),
            }),
        }
    }

    /// Descriptors the cache holds open now.
    pub fn open(&self) -> usize {
        self.inner.clock.lock().open.len()
    }

    fn admit(&self, path: PathBuf, file: File) -> Arc<dyn StorageFile> {
        let cached = Arc::new(CachedFile {
            path,
            file: parking_lot::Mutex::new(Some(Arc::new(file))),
            referenced: std::sync::atomic::AtomicBool::new(true),
            cache: self.clone(),
        });
        self.opened(&cached);
        Arc::new(cached)
    }

    /// Records that `file` holds a descriptor, closing idle ones while over the bound.
    fn opened(&self, file: &Arc<CachedFile>) {
        use std::sync::atomic::Ordering::Relaxed;
        let mut clock = self.inner.clock.lock();
        clock.open.push(Arc::downgrade(file));
        // Each file gets at most one second chance per pass, so this ends within two passes.
        let mut budget = 2 * clock.open.len() + 1;
        while clock.open.len() > self.inner.max_open && budget > 0 {
            budget -= 1;
            if clock.hand >= clock.open.len() {
                clock.hand = 0;
            }
            let hand = clock.hand;
            match clock.open[hand].upgrade() {
                None => {
                    clock.open.swap_remove(hand);
                }
                Some(f) if f.referenced.swap(false, Relaxed) => clock.hand += 1,
                Some(f) => {
                    // Lock order: the clock, then a file's slot (never the other way round).
                    f.file.lock().take();
                    clock.open.swap_remove(hand);
                }
            }
        }
    }
}

/// A file of a [`FileCache`]: its descriptor may be closed while idle.
struct CachedFile {
    path: PathBuf,
    file: parking_lot::Mutex<Option<Arc<File>>>,
    referenced: std::sync::atomic::AtomicBool,
    cache: FileCache,
}

impl CachedFile {
    /// The open descriptor, reopening the file if the cache closed it. The caller's `Arc`
    /// keeps it open for the length of one operation even if the cache closes it meanwhile.
    fn file(self: &Arc<Self>) -> io::Result<Arc<File>> {
        self.referenced
            .store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(f) = self.file.lock().as_ref() {
            return Ok(f.clone());
        }
        let reopened = Arc::new(OpenOptions::new().read(true).write(true).open(&self.path)?);
        {
            let mut slot = self.file.lock();
            if let Some(f) = slot.as_ref() {
                return Ok(f.clone());
            }
            *slot = Some(reopened.clone());
        }
        self.cache.opened(self);
        Ok(reopened)
    }
}

impl StorageFile for Arc<CachedFile> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let file = self.file()?;
        loop {
            match file.read_at(buf, offset) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r,
            }
        }
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.file()?.write_all_at(buf, offset)
    }

    fn sync(&self) -> io::Result<()> {
        self.file()?.sync_data()
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.file()?.metadata()?.len())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file()?.set_len(len)
    }
}
