//! Verified reads: every block returned hashes up to the signed roots, with a cache of tree
//! nodes already checked.

use std::collections::HashMap;

use crate::crypto::{self, Hash};
use crate::log::header::{NODES_OFFSET, NODE_BYTES};
use crate::log::{
    flat, tree, DiskNodes, Log, LogError, Node, NodeSource, TreeHead, MAX_BLOCK_BYTES,
};

/// Verified-node cache size; cleared wholesale when full.
const VERIFIED_CACHE: usize = 1 << 16;

impl Log {
    /// Reads block `seq`, verified up to the signed roots.
    pub fn get(&self, seq: u64) -> Result<Vec<u8>, LogError> {
        loop {
            let fork = self.head().fork;
            match self.get_once(seq) {
                // A truncate cut or rewrote the files under this read: read again under the new head.
                Err(_) if self.head().fork != fork => continue,
                r => return r,
            }
        }
    }

    fn get_once(&self, seq: u64) -> Result<Vec<u8>, LogError> {
        let (head, has) = {
            let mut st = self.state.lock();
            let head = st.head.clone();
            if seq >= head.length {
                return Err(LogError::OutOfRange {
                    seq,
                    length: head.length,
                });
            }
            let has = seq < st.contiguous
                || st
                    .bits
                    .get(&*self.bitfield, seq)
                    .map_err(|e| self.io_err("bitfield", e))?;
            (head, has)
        };
        if !has {
            return Err(LogError::NotAvailable { seq });
        }
        let src = DiskNodes {
            tree: &*self.tree,
            length: head.length,
            name: &self.name,
        };
        let leaf = src
            .node(2 * seq)?
            .ok_or_else(|| self.corrupt(Some(seq), "its tree node is missing"))?;
        let offset = tree::byte_offset(&src, &head, 2 * seq)
            .map_err(|e| self.corrupt(Some(seq), e.to_string()))?;
        if leaf.size > MAX_BLOCK_BYTES as u64 {
            return Err(self.corrupt(Some(seq), format!("stored size {} is too large", leaf.size)));
        }
        let mut buf = vec![0u8; leaf.size as usize];
        self.data
            .read_exact_at(&mut buf, offset)
            .map_err(|e| self.corrupt(Some(seq), e.to_string()))?;
        if crypto::leaf_hash(&buf) != leaf.hash {
            return Err(self.corrupt(Some(seq), "block bytes do not match their hash"));
        }
        self.verify_path(&src, &head, leaf, Some(seq))?;
        Ok(buf)
    }

    /// Reads blocks `start..end` in order, verified, with one pass over the tree and data.
    pub fn read_range(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, LogError> {
        let mut out = Vec::with_capacity(end.saturating_sub(start) as usize);
        self.for_each(start, end, |_, b| {
            out.push(b.to_vec());
            Ok(())
        })?;
        Ok(out)
    }

    /// Calls `f(seq, block)` for blocks `start..end` in order, each verified. Reads the leaf
    /// nodes and the data in large chunks, so this is the fast path for scans.
    pub fn for_each(
        &self,
        start: u64,
        end: u64,
        mut f: impl FnMut(u64, &[u8]) -> Result<(), LogError>,
    ) -> Result<(), LogError> {
        let mut next = start;
        loop {
            let fork = self.head().fork;
            let mut caller_stopped = false;
            let result = self.for_each_once(next, end, |seq, block| {
                f(seq, block).inspect_err(|_| caller_stopped = true)?;
                next = seq + 1;
                Ok(())
            });
            match result {
                // A truncate cut or rewrote the files under this scan: go on from the first
                // entry not yet delivered, under the new head.
                Err(_) if !caller_stopped && self.head().fork != fork => continue,
                r => return r,
            }
        }
    }

    fn for_each_once(
        &self,
        start: u64,
        end: u64,
        mut f: impl FnMut(u64, &[u8]) -> Result<(), LogError>,
    ) -> Result<(), LogError> {
        let (head, contiguous) = {
            let st = self.state.lock();
            (st.head.clone(), st.contiguous)
        };
        let end = end.min(head.length);
        if start >= end {
            return Ok(());
        }
        if end > contiguous {
            // Sparse: fall back to single reads, which check availability.
            for seq in start..end {
                f(seq, &self.get(seq)?)?;
            }
            return Ok(());
        }
        let src = DiskNodes {
            tree: &*self.tree,
            length: head.length,
            name: &self.name,
        };
        let mut offset = tree::byte_offset(&src, &head, 2 * start)
            .map_err(|e| self.corrupt(Some(start), e.to_string()))?;
        const CHUNK: u64 = 4096;
        let mut seq = start;
        let mut leaves_buf = Vec::new();
        let mut data_buf = Vec::new();
        while seq < end {
            let n = (end - seq).min(CHUNK);
            // Leaves sit at even indexes: read the span covering them and pick every other node.
            let span = (2 * n - 1) * NODE_BYTES;
            leaves_buf.resize(span as usize, 0);
            self.tree
                .read_exact_at(&mut leaves_buf, NODES_OFFSET + 2 * seq * NODE_BYTES)
                .map_err(|e| self.corrupt(Some(seq), format!("tree file: {e}")))?;
            let mut leaves = Vec::with_capacity(n as usize);
            let mut bytes = 0u64;
            for i in 0..n {
                let o = (2 * i * NODE_BYTES) as usize;
                let raw = &leaves_buf[o..o + NODE_BYTES as usize];
                let mut hash = [0u8; 32];
                hash.copy_from_slice(&raw[..32]);
                let mut size = [0u8; 8];
                size.copy_from_slice(&raw[32..]);
                let size = u64::from_le_bytes(size);
                if size > MAX_BLOCK_BYTES as u64 {
                    return Err(
                        self.corrupt(Some(seq + i), format!("stored size {size} is too large"))
                    );
                }
                bytes += size;
                leaves.push(Node {
                    index: 2 * (seq + i),
                    size,
                    hash,
                });
            }
            data_buf.resize(bytes as usize, 0);
            self.data
                .read_exact_at(&mut data_buf, offset)
                .map_err(|e| self.corrupt(Some(seq), format!("data file: {e}")))?;
            let mut pos = 0usize;
            for leaf in leaves {
                let s = seq;
                let block = &data_buf[pos..pos + leaf.size as usize];
                if crypto::leaf_hash(block) != leaf.hash {
                    return Err(self.corrupt(Some(s), "block bytes do not match their hash"));
                }
                self.verify_path(&src, &head, leaf, Some(s))?;
                f(s, block)?;
                pos += leaf.size as usize;
                seq += 1;
            }
            offset += bytes;
        }
        Ok(())
    }

    /// Checks that `node` hashes up to one of the signed roots, using and filling the cache of
    /// nodes already checked.
    pub(super) fn verify_path(
        &self,
        src: &dyn NodeSource,
        head: &TreeHead,
        node: Node,
        seq: Option<u64>,
    ) -> Result<(), LogError> {
        let mut cur = node;
        let mut checked: Vec<(u64, Hash)> = Vec::new();
        for _ in 0..70 {
            if let Some(root) = head.roots.iter().find(|r| r.index == cur.index) {
                if root.hash != cur.hash || root.size != cur.size {
                    return Err(self.corrupt(
                        seq,
                        format!("tree node {} does not match the signed root", cur.index),
                    ));
                }
                self.remember(checked, head.fork);
                return Ok(());
            }
            {
                let cache = self.verified.lock();
                if let Some(&(fork, h)) = cache.get(&cur.index) {
                    if fork == head.fork {
                        if h != cur.hash {
                            return Err(self.corrupt(
                                seq,
                                format!("tree node {} does not match its verified hash", cur.index),
                            ));
                        }
                        drop(cache);
                        self.remember(checked, head.fork);
                        return Ok(());
                    }
                }
            }
            let sib_index = flat::sibling(cur.index);
            let sib = src
                .node(sib_index)?
                .ok_or_else(|| self.corrupt(seq, format!("tree node {sib_index} is missing")))?;
            let parent_index = flat::parent(cur.index);
            let parent = Node::parent(parent_index, &cur, &sib)
                .map_err(|e| self.corrupt(seq, e.to_string()))?;
            if let Some(stored) = src.node(parent_index)? {
                if stored.hash != parent.hash {
                    return Err(self.corrupt(
                        seq,
                        format!("tree node {parent_index} does not match its children"),
                    ));
                }
            }
            checked.push((cur.index, cur.hash));
            checked.push((sib.index, sib.hash));
            cur = parent;
        }
        Err(self.corrupt(seq, "tree path does not reach a root"))
    }

    pub(super) fn remember(&self, checked: Vec<(u64, Hash)>, fork: u64) {
        if checked.is_empty() {
            return;
        }
        let mut cache = self.verified.lock();
        if cache.len() + checked.len() > VERIFIED_CACHE {
            cache.clear();
        }
        cache.extend(
            checked
                .into_iter()
                .map(|(index, hash)| (index, (fork, hash))),
        );
    }

    /// Frees the cache of verified tree nodes. A process that holds many logs and has finished
    /// reading one through (an index build) calls this so the log costs little memory until it
    /// is read again; later reads verify against the signed roots and fill the cache anew.
    pub fn release_cache(&self) {
        *self.verified.lock() = HashMap::new();
    }

    /// Whether block `seq` is stored locally.
    pub fn has(&self, seq: u64) -> Result<bool, LogError> {
        let mut st = self.state.lock();
        if seq >= st.head.length {
            return Ok(false);
        }
        if seq < st.contiguous {
            return Ok(true);
        }
        st.bits
            .get(&*self.bitfield, seq)
            .map_err(|e| self.io_err("bitfield", e))
    }

    /// How many nodes above block `seq` a request must ask for (`nodes` of a [`RequestBlock`],
    /// `missingNodes` in merkle-tree.js), except that the walk stops only at a stored node whose
    /// own path to the signed roots is stored: nodes left by a failed or interrupted proof do not
    /// count, so asking again brings what they lack.
    pub fn missing_nodes(&self, seq: u64) -> Result<u64, LogError> {
        let head = self.head();
        if seq >= head.length {
            return Ok(0);
        }
        let src = DiskNodes {
            tree: &*self.tree,
            length: head.length,
            name: &self.name,
        };
        let mut index = 2 * seq;
        let mut count = 0;
        while flat::right_span(index) < 2 * head.length && count < 64 {
            if let Some(node) = src.node(index)? {
                match self.verify_path(&src, &head, node, None) {
                    Ok(()) => return Ok(count),
                    Err(LogError::Corrupt { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            count += 1;
            index = flat::parent(index);
        }
        Ok(count)
    }
}
