//! Which blocks a sparse replica holds: one bit per block in the `bitfield` file, loaded page by
//! page on demand so a huge claimed length costs nothing until blocks actually arrive.

use std::collections::{BTreeSet, HashMap};
use std::io;

use crate::log::storage::StorageFile;

const PAGE_BYTES: usize = 4096;
const PAGE_BITS: u64 = (PAGE_BYTES * 8) as u64;

#[derive(Default)]
pub struct Bitfield {
    pages: HashMap<u64, Box<[u8; PAGE_BYTES]>>,
    dirty: BTreeSet<u64>,
}

impl std::fmt::Debug for Bitfield {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bitfield").finish_non_exhaustive()
    }
}

impl Bitfield {
    fn page(&mut self, file: &dyn StorageFile, page: u64) -> io::Result<&mut [u8; PAGE_BYTES]> {
        match self.pages.entry(page) {
            std::collections::hash_map::Entry::Occupied(e) => Ok(&mut **e.into_mut()),
            std::collections::hash_map::Entry::Vacant(e) => {
                let mut buf = Box::new([0u8; PAGE_BYTES]);
                let mut done = 0;
                while done < PAGE_BYTES {
                    let n =
                        file.read_at(&mut buf[done..], page * PAGE_BYTES as u64 + done as u64)?;
                    if n == 0 {
                        break;
                    }
                    done += n;
                }
                Ok(&mut **e.insert(buf))
            }
        }
    }

    pub fn get(&mut self, file: &dyn StorageFile, bit: u64) -> io::Result<bool> {
        let page = self.page(file, bit / PAGE_BITS)?;
        let i = (bit % PAGE_BITS) as usize;
        Ok(page[i / 8] & (1 << (i % 8)) != 0)
    }

    pub fn set(&mut self, file: &dyn StorageFile, bit: u64, value: bool) -> io::Result<()> {
        let p = bit / PAGE_BITS;
        let page = self.page(file, p)?;
        let i = (bit % PAGE_BITS) as usize;
        if value {
            page[i / 8] |= 1 << (i % 8);
        } else {
            page[i / 8] &= !(1 << (i % 8));
        }
        self.dirty.insert(p);
        Ok(())
    }

    /// Writes dirty pages; the caller syncs. Returns whether anything was written.
    pub fn flush(&mut self, file: &dyn StorageFile) -> io::Result<bool> {
        let dirty = std::mem::take(&mut self.dirty);
        for p in &dirty {
            if let Some(page) = self.pages.get(p) {
                file.write_all_at(&page[..], p * PAGE_BYTES as u64)?;
            }
        }
        Ok(!dirty.is_empty())
    }

    /// Drops cached pages (after a failed commit, so memory matches disk again).
    pub fn reset(&mut self) {
        self.pages.clear();
        self.dirty.clear();
    }
}
