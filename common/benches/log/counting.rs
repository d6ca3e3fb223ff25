//! An instrumented storage for the log benchmark: counts and times writes and syncs, so the
//! table can show commits and time spent in fsync.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use fritter_common::log::{DiskStorage, Storage, StorageFile};

#[derive(Default)]
pub(crate) struct IoStats {
    pub(crate) writes: AtomicU64,
    pub(crate) write_ns: AtomicU64,
    pub(crate) syncs: AtomicU64,
    pub(crate) sync_ns: AtomicU64,
}

impl IoStats {
    pub(crate) fn snapshot(&self) -> (u64, u64, u64, u64) {
        (
            self.writes.load(Ordering::Relaxed),
            self.write_ns.load(Ordering::Relaxed),
            self.syncs.load(Ordering::Relaxed),
            self.sync_ns.load(Ordering::Relaxed),
        )
    }
}

pub(crate) struct CountingStorage {
    pub(crate) inner: DiskStorage,
    pub(crate) stats: Arc<IoStats>,
}

pub(crate) struct CountingFile {
    inner: Arc<dyn StorageFile>,
    stats: Arc<IoStats>,
}

impl Storage for CountingStorage {
    fn open(&self, name: &str, create: bool) -> io::Result<Arc<dyn StorageFile>> {
        Ok(Arc::new(CountingFile {
            inner: self.inner.open(name, create)?,
            stats: self.stats.clone(),
        }))
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

impl StorageFile for CountingFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.inner.read_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let t = Instant::now();
        let r = self.inner.write_all_at(buf, offset);
        self.stats
            .write_ns
            .fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
        self.stats.writes.fetch_add(1, Ordering::Relaxed);
        r
    }
    fn sync(&self) -> io::Result<()> {
        let t = Instant::now();
        let r = self.inner.sync();
        self.stats
            .sync_ns
            .fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
        self.stats.syncs.fetch_add(1, Ordering::Relaxed);
        r
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
}
