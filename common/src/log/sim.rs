//! A simulated disk for crash testing: writes stay volatile until `sync`, and a simulated power
//! loss keeps an arbitrary subset of them, possibly torn at sector boundaries. It can also fill
//! up. Deterministic for a given seed, so a failing seed replays exactly.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::log::storage::{Storage, StorageFile};

const SECTOR: usize = 512;

#[derive(Debug, Clone)]
enum Op {
    Write { offset: u64, data: Vec<u8> },
    SetLen(u64),
}

#[derive(Debug, Default, Clone)]
struct SimFileState {
    durable: Vec<u8>,
    current: Vec<u8>,
    pending: Vec<Op>,
}

#[derive(Debug, Default)]
struct Disk {
    files: BTreeMap<String, SimFileState>,
    /// Writes fail with "no space" once the sum of file lengths would exceed this.
    capacity: Option<u64>,
    /// Test hook: `sync` on this file name does nothing (a deliberately broken build).
    skip_sync: Option<String>,
}

/// An in-memory disk shared by every handle opened from it.
#[derive(Debug, Clone, Default)]
pub struct SimDisk {
    disk: Arc<Mutex<Disk>>,
}

fn apply(buf: &mut Vec<u8>, op: &Op) {
    match op {
        Op::Write { offset, data } => {
            let end = *offset as usize + data.len();
            if buf.len() < end {
                buf.resize(end, 0);
            }
            buf[*offset as usize..end].copy_from_slice(data);
        }
        Op::SetLen(len) => buf.resize(*len as usize, 0),
    }
}

impl SimDisk {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Disk> {
        self.disk.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Limits the total bytes the disk holds; `None` removes the limit.
    pub fn set_capacity(&self, capacity: Option<u64>) {
        self.lock().capacity = capacity;
    }

    /// Makes `sync` of the named file a no-op, to prove the tests notice a missing sync.
    pub fn skip_sync_of(&self, name: Option<&str>) {
        self.lock().skip_sync = name.map(str::to_owned);
    }

    /// Simulates power loss: every unsynced write is kept or dropped at random, and a kept
    /// write may be torn (only some of its sectors reach the disk).
    pub fn crash(&self, seed: u64) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut disk = self.lock();
        for file in disk.files.values_mut() {
            let mut state = file.durable.clone();
            for op in std::mem::take(&mut file.pending) {
                match rng.gen_range(0..4) {
                    0 => {} // lost
                    1 => {
                        // torn: a random subset of its sectors lands
                        if let Op::Write { offset, data } = &op {
                            for (i, chunk) in data.chunks(SECTOR).enumerate() {
                                if rng.gen_bool(0.5) {
                                    let o = *offset + (i * SECTOR) as u64;
                                    apply(
                                        &mut state,
                                        &Op::Write {
                                            offset: o,
                                            data: chunk.to_vec(),
                                        },
                                    );
                                }
                            }
                        }
                    }
                    _ => apply(&mut state, &op),
                }
            }
            file.durable = state.clone();
            file.current = state;
        }
    }

    /// Flips one bit of a durable file (for corruption tests).
    pub fn flip_bit(&self, name: &str, offset: u64, bit: u8) {
        let mut disk = self.lock();
        if let Some(f) = disk.files.get_mut(name) {
            if let Some(b) = f.durable.get_mut(offset as usize) {
                *b ^= 1 << (bit % 8);
            }
            f.current = f.durable.clone();
        }
    }

    pub fn file_len(&self, name: &str) -> Option<u64> {
        self.lock().files.get(name).map(|f| f.current.len() as u64)
    }
}

struct SimFile {
    disk: SimDisk,
    name: String,
}

impl Storage for SimDisk {
    fn open(&self, name: &str, create: bool) -> io::Result<Arc<dyn StorageFile>> {
        let mut disk = self.lock();
        if !disk.files.contains_key(name) {
            if !create {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("no file {name}"),
                ));
            }
            // A created file exists durably at once (as after a directory fsync).
            disk.files.insert(name.to_owned(), SimFileState::default());
        }
        Ok(Arc::new(SimFile {
            disk: self.clone(),
            name: name.to_owned(),
        }))
    }

    fn describe(&self) -> String {
        "simulated disk".to_owned()
    }
}

impl SimFile {
    fn with<R>(&self, f: impl FnOnce(&mut Disk, &str) -> io::Result<R>) -> io::Result<R> {
        let mut disk = self.disk.lock();
        f(&mut disk, &self.name)
    }
}

fn file<'a>(disk: &'a mut Disk, name: &str) -> io::Result<&'a mut SimFileState> {
    disk.files
        .get_mut(name)
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no file {name}")))
}

impl StorageFile for SimFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.with(|d, n| {
            let f = file(d, n)?;
            let start = (offset as usize).min(f.current.len());
            let end = (start + buf.len()).min(f.current.len());
            buf[..end - start].copy_from_slice(&f.current[start..end]);
            Ok(end - start)
        })
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.with(|d, n| {
            if let Some(cap) = d.capacity {
                let others: u64 = d
                    .files
                    .iter()
                    .filter(|(k, _)| *k != n)
                    .map(|(_, f)| f.current.len() as u64)
                    .sum();
                let this = file(d, n)?.current.len() as u64;
                let needed = (offset + buf.len() as u64).max(this);
                if others + needed > cap {
                    return Err(io::Error::new(
                        io::ErrorKind::StorageFull,
                        "no space left on device (simulated)",
                    ));
                }
            }
            let f = file(d, n)?;
            let op = Op::Write {
                offset,
                data: buf.to_vec(),
            };
            apply(&mut f.current, &op);
            f.pending.push(op);
            Ok(())
        })
    }

    fn sync(&self) -> io::Result<()> {
        self.with(|d, n| {
            if d.skip_sync.as_deref() == Some(n) {
                return Ok(());
            }
            let f = file(d, n)?;
            f.durable = f.current.clone();
            f.pending.clear();
            Ok(())
        })
    }

    fn len(&self) -> io::Result<u64> {
        self.with(|d, n| Ok(file(d, n)?.current.len() as u64))
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.with(|d, n| {
            let f = file(d, n)?;
            let op = Op::SetLen(len);
            apply(&mut f.current, &op);
            f.pending.push(op);
            Ok(())
        })
    }
}
