//! The owner's writes: appends from many threads committed together (one signature, one round
//! of syncs per group), and truncation to a new fork.

use std::io;
use std::sync::Arc;

use crate::crypto::KeyPair;
use crate::log::header::Header;
use crate::log::{
    flat, write_nodes, DiskNodes, Log, LogError, NodeSource, State, TreeHead, MAX_BLOCK_BYTES,
};

/// Largest commit (blocks, bytes) synced in a single round, which open re-checks in full; larger
/// commits sync their header in a second round instead, so open time stays bounded.
const SINGLE_ROUND_MAX_BLOCKS: usize = 1024;
const SINGLE_ROUND_MAX_BYTES: usize = 1 << 20;

impl Log {
    /// Appends one block; returns its sequence number once it is durable.
    pub fn append(&self, block: &[u8]) -> Result<u64, LogError> {
        self.append_batch(&[block])
    }

    /// Appends blocks atomically; returns the sequence number of the first once all are durable.
    /// Concurrent callers are committed together (one signature and one round of syncs).
    pub fn append_batch(&self, blocks: &[&[u8]]) -> Result<u64, LogError> {
        let kp = self.keypair.as_ref().ok_or_else(|| LogError::ReadOnly {
            archive: self.name.clone(),
        })?;
        if let Some(b) = blocks.iter().find(|b| b.len() > MAX_BLOCK_BYTES) {
            return Err(LogError::TooLarge {
                size: b.len(),
                max: MAX_BLOCK_BYTES,
            });
        }
        if blocks.is_empty() {
            return Ok(self.len());
        }
        let mut st = self.state.lock();
        if let Some(p) = &st.poisoned {
            return Err(LogError::Poisoned(p.clone()));
        }
        let batch = st.open_batch;
        let offset = st.pending.len() as u64;
        st.pending.extend(blocks.iter().map(|b| b.to_vec()));
        loop {
            if st.done_batch > batch {
                let result = st
                    .results
                    .iter()
                    .find(|(b, _)| *b == batch)
                    .map(|(_, r)| r.clone());
                return match result {
                    Some(Ok(start)) => Ok(start + offset),
                    Some(Err(e)) => Err(e),
                    None => Err(LogError::Poisoned("commit result was lost".into())),
                };
            }
            if !st.committing && st.open_batch == batch {
                // Lead this batch: take everything queued so far.
                st.committing = true;
                st.open_batch += 1;
                let blocks = std::mem::take(&mut st.pending);
                let base = st.head.clone();
                let generation = st.generation;
                drop(st);
                let result = self.commit_append(kp, &base, generation, blocks);
                st = self.state.lock();
                let outcome = match result {
                    Ok(head) => {
                        let start = base.length;
                        st.head = Arc::new(head);
                        st.contiguous = st.head.length;
                        st.generation += 1;
                        Ok(start)
                    }
                    Err((e, poison)) => {
                        if poison {
                            st.poisoned = Some(e.to_string());
                        }
                        Err(e)
                    }
                };
                let status = outcome.is_ok().then(|| self.status_locked(&mut st));
                st.results.push_back((batch, outcome));
                while st.results.len() > 1024 {
                    st.results.pop_front();
                }
                st.done_batch = batch + 1;
                st.committing = false;
                self.cond.notify_all();
                if let Some(status) = status {
                    drop(st);
                    self.publish(status);
                    st = self.state.lock();
                }
                continue;
            }
            self.cond.wait(&mut st);
        }
    }

    /// Writes one batch: blocks and nodes, sync, then the header, sync. The error flag says
    /// whether the log must be poisoned (a failed sync leaves the page cache in doubt).
    fn commit_append(
        &self,
        kp: &KeyPair,
        base: &TreeHead,
        generation: u64,
        blocks: Vec<Vec<u8>>,
    ) -> Result<TreeHead, (LogError, bool)> {
        let mut head = base.clone();
        let mut nodes = Vec::with_capacity(blocks.len() * 2);
        let total: usize = blocks.iter().map(Vec::len).sum();
        let mut data = Vec::with_capacity(total);
        for b in &blocks {
            head.append_block(b, &mut nodes).map_err(|e| (e, false))?;
            data.extend_from_slice(b);
        }
        head.signature = Some(kp.sign(&head.signable()));
        let single_round =
            blocks.len() <= SINGLE_ROUND_MAX_BLOCKS && total <= SINGLE_ROUND_MAX_BYTES;
        let h = Header {
            generation: generation + 1,
            key: *self.key.as_bytes(),
            fork: head.fork,
            length: head.length,
            contiguous: head.length,
            byte_length: head.byte_length,
            // A small commit is re-checked at open (see below); a large one is not, so open
            // stays fast whatever the batch size.
            prev_length: if single_round {
                base.length
            } else {
                head.length
            },
            signature: head.signature,
        };
        self.data
            .write_all_at(&data, base.byte_length)
            .map_err(|e| (self.io_err("data", e), false))?;
        write_nodes(&*self.tree, &mut nodes).map_err(|e| (self.io_err("tree", e), false))?;
        if single_round {
            // One round of syncs: blocks, nodes and the new header slot are written, then
            // synced together. A crash mid-round can leave the header durable without some of
            // the bytes it covers; open re-checks blocks `prev_length..length` against it and
            // falls back to the other slot (this commit was never acknowledged) if they differ.
            self.tree
                .write_all_at(&h.encode(), h.slot_offset())
                .map_err(|e| (self.io_err("tree", e), false))?;
            self.sync_data_and_tree()?;
        } else {
            // Two rounds: blocks and nodes are durable before the header that references them.
            self.sync_data_and_tree()?;
            self.write_header(&h).map_err(|e| (e, true))?;
        }
        Ok(head)
    }

    /// Syncs `data` and `tree` at the same time, so their latencies overlap.
    pub(super) fn sync_data_and_tree(&self) -> Result<(), (LogError, bool)> {
        let (data, tree) = std::thread::scope(|s| {
            let data = s.spawn(|| self.data.sync());
            let tree = self.tree.sync();
            (data.join(), tree)
        });
        let data = data.unwrap_or_else(|_| Err(io::Error::other("data sync thread panicked")));
        data.map_err(|e| (self.io_err("data", e), true))?;
        tree.map_err(|e| (self.io_err("tree", e), true))
    }

    pub(super) fn write_header(&self, h: &Header) -> Result<(), LogError> {
        self.tree
            .write_all_at(&h.encode(), h.slot_offset())
            .map_err(|e| self.io_err("tree", e))?;
        self.tree.sync().map_err(|e| self.io_err("tree", e))
    }

    /// Waits until no commit runs and claims the log for an exclusive change.
    pub(super) fn exclusive(&self) -> Result<parking_lot::MutexGuard<'_, State>, LogError> {
        let mut st = self.state.lock();
        while st.committing {
            self.cond.wait(&mut st);
        }
        if let Some(p) = &st.poisoned {
            return Err(LogError::Poisoned(p.clone()));
        }
        Ok(st)
    }

    /// Owner-only: cuts the log to `length` entries and starts a new fork.
    pub fn truncate(&self, length: u64) -> Result<(), LogError> {
        let kp = self.keypair.as_ref().ok_or_else(|| LogError::ReadOnly {
            archive: self.name.clone(),
        })?;
        let mut st = self.exclusive()?;
        let old = st.head.clone();
        if length > old.length {
            return Err(LogError::BadTruncate {
                requested: length,
                length: old.length,
            });
        }
        st.committing = true;
        let (generation, contiguous) = (st.generation, st.contiguous.min(length));
        drop(st);
        let result = self.commit_truncate(kp, &old, length, generation, contiguous);
        let mut st = self.state.lock();
        st.committing = false;
        let out = match result {
            Ok(head) => {
                st.generation += 1;
                st.contiguous = contiguous;
                st.head = Arc::new(head);
                self.verified.lock().clear();
                // Nodes and bytes past the cut are garbage now. Dropping them is best effort:
                // nothing outside the signed tree is ever read. Cut only once the new head is
                // published, so a read that fails on the cut sees the fork change and reads
                // again, and before the lock is released, so no append has written past the
                // new end yet.
                let head = st.head.clone();
                if let Err(e) = self.repair_tail(&head, contiguous) {
                    tracing::warn!(archive = %self.name, error = %e, "could not trim the log after truncating");
                }
                Ok(self.status_locked(&mut st))
            }
            Err((e, poison)) => {
                if poison {
                    st.poisoned = Some(e.to_string());
                }
                Err(e)
            }
        };
        self.cond.notify_all();
        drop(st);
        out.map(|status| self.publish(status))
    }

    fn commit_truncate(
        &self,
        kp: &KeyPair,
        old: &TreeHead,
        length: u64,
        generation: u64,
        contiguous: u64,
    ) -> Result<TreeHead, (LogError, bool)> {
        let src = DiskNodes {
            tree: &*self.tree,
            length: old.length,
            name: &self.name,
        };
        let mut roots = Vec::new();
        for index in flat::full_roots(2 * length) {
            let node = src.node(index).map_err(|e| (e, false))?;
            let node =
                node.ok_or_else(|| (self.corrupt(None, format!("node {index} missing")), false))?;
            // The new fork is signed over these nodes: a corrupt one must not get a signature.
            self.verify_path(&src, old, node, None)
                .map_err(|e| (e, false))?;
            roots.push(node);
        }
        let mut head = TreeHead {
            fork: old.fork + 1,
            length,
            byte_length: roots.iter().map(|r| r.size).sum(),
            roots,
            signature: None,
        };
        head.signature = Some(kp.sign(&head.signable()));
        let h = Header {
            generation: generation + 1,
            key: *self.key.as_bytes(),
            fork: head.fork,
            length,
            contiguous,
            byte_length: head.byte_length,
            prev_length: length,
            signature: head.signature,
        };
        self.write_header(&h).map_err(|e| (e, true))?;
        Ok(head)
    }
}
