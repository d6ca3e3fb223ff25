//! Opening a log and recovering from a crash: pick the newest header whose commit is fully on
//! disk, count a replica's blocks, cut what an interrupted commit left past the head.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};
use tokio::sync::watch;

use crate::crypto::{KeyError, PublicKey};
use crate::log::bitfield::Bitfield;
use crate::log::header::{Header, Slot, NODES_OFFSET, NODE_BYTES, SLOT_BYTES};
use crate::log::{
    flat, fork, Access, DiskNodes, ForkEvidence, Log, LogError, LogStatus, NodeSource, State,
    Storage, StorageFile, TreeHead, MAX_BLOCK_BYTES,
};

impl Log {
    /// Creates or opens the log in `storage` for `key`.
    pub fn open(storage: &dyn Storage, key: PublicKey, access: Access) -> Result<Log, LogError> {
        let name = key.to_hex();
        let create = !matches!(access, Access::View);
        let open = |file: &str| {
            storage
                .open(file, create)
                .map_err(|e| LogError::io(format!("{}/{file}", storage.describe()), e))
        };
        // `tree` last: a crash while creating a log never leaves a `tree` without the others,
        // and `tree` existing is what marks a stored log.
        let data = open("data")?;
        let bitfield = open("bitfield")?;
        let tree = open("tree")?;
        // Only replicas learn of forks from peers; a missing file means no evidence.
        let forks = match storage.open("forks", matches!(access, Access::Replica)) {
            Ok(f) => Some(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(LogError::io(format!("{}/forks", storage.describe()), e)),
        };
        let evidence = match &forks {
            Some(f) => Self::load_evidence(&**f, &key, &name)?,
            None => Vec::new(),
        };
        let (keypair, writes) = match &access {
            Access::Writer(kp) => {
                if kp.public() != key {
                    return Err(KeyError::Mismatch(key.to_hex()).into());
                }
                (Some(kp.clone()), true)
            }
            Access::Replica => (None, true),
            Access::View => (None, false),
        };

        let (header, head, fell_back) = Self::load_head(&*tree, &*data, &key, &name)?;
        if fell_back {
            tracing::warn!(archive = %name, length = head.length, "newest log header was unreadable; using the previous commit");
        }
        let (generation, contiguous) = header
            .as_ref()
            .map(|h| (h.generation, h.contiguous))
            .unwrap_or((0, 0));

        let log = Log {
            key,
            keypair,
            writes,
            name,
            tree,
            data,
            bitfield,
            forks,
            evidence: Mutex::new(evidence),
            state: Mutex::new(State {
                head: Arc::new(head),
                contiguous,
                generation,
                bits: Bitfield::default(),
                pending: Vec::new(),
                open_batch: 1,
                done_batch: 1,
                committing: false,
                results: VecDeque::new(),
                poisoned: None,
                version: 0,
            }),
            cond: Condvar::new(),
            verified: Mutex::new(HashMap::new()),
            changes: watch::channel(LogStatus::default()).0,
        };
        {
            // A replica syncs the bitfield before the header that counts the blocks into
            // `contiguous`; after a crash or a failed header write those blocks are marked but
            // not counted, and contiguous scans would skip them until another block arrived.
            let mut st = log.state.lock();
            let st = &mut *st;
            while st.contiguous < st.head.length
                && st
                    .bits
                    .get(&*log.bitfield, st.contiguous)
                    .map_err(|e| log.io_err("bitfield", e))?
            {
                st.contiguous += 1;
            }
        }
        // Only the owner's tail is cut. A replica's bytes past its head are blocks of a proof
        // whose header a crash lost; their bitfield bits are set, and they become readable
        // once an upgrade reaches them, so cutting them would leave marked blocks without data.
        if log.keypair.is_some() {
            let st = log.state.lock();
            let (head, contiguous) = (st.head.clone(), st.contiguous);
            drop(st);
            log.repair_tail(&head, contiguous)?;
        }
        let status = log.status_locked(&mut log.state.lock());
        log.publish(status);
        Ok(log)
    }

    /// Reads the `forks` file; records that are torn or do not verify are ignored.
    fn load_evidence(
        file: &dyn StorageFile,
        key: &PublicKey,
        name: &str,
    ) -> Result<Vec<ForkEvidence>, LogError> {
        let len = file
            .len()
            .map_err(|e| LogError::io(format!("{name}/forks"), e))?;
        let cap = (fork::MAX_RECORDS * (fork::MAX_RECORD_BYTES + 8)) as u64;
        let mut buf = vec![0u8; len.min(cap) as usize];
        file.read_exact_at(&mut buf, 0)
            .map_err(|e| LogError::io(format!("{name}/forks"), e))?;
        let mut out = fork::decode_file(&buf);
        out.retain(|e| e.verify(key).is_ok());
        Ok(out)
    }

    /// Picks the newest header slot whose roots are stored and whose signature verifies.
    fn load_head(
        tree: &dyn StorageFile,
        data: &dyn StorageFile,
        key: &PublicKey,
        name: &str,
    ) -> Result<(Option<Header>, TreeHead, bool), LogError> {
        let mut slots = Vec::new();
        for i in 0..2 {
            let mut buf = vec![0u8; 512];
            let n = tree
                .read_at(&mut buf, i * SLOT_BYTES)
                .map_err(|e| LogError::io(format!("{name}/tree"), e))?;
            buf.truncate(n);
            slots.push(Header::decode(&buf));
        }
        let mut valid: Vec<Header> = Vec::new();
        let mut problems = Vec::new();
        for s in slots {
            match s {
                Slot::Empty => {}
                Slot::Invalid(why) => problems.push(why),
                Slot::Valid(h) if &h.key != key.as_bytes() => {
                    return Err(LogError::Corrupt {
                        archive: name.to_owned(),
                        seq: None,
                        reason: format!("header belongs to archive {}", hex::encode(h.key)),
                    })
                }
                Slot::Valid(h) => valid.push(h),
            }
        }
        if valid.is_empty() {
            if problems.is_empty() {
                return Ok((None, TreeHead::default(), false));
            }
            return Err(LogError::Corrupt {
                archive: name.to_owned(),
                seq: None,
                reason: problems.join("; "),
            });
        }
        valid.sort_by_key(|h| std::cmp::Reverse(h.generation));
        let slot_problems = problems.len();
        let mut fell_back = !problems.is_empty();
        for (i, h) in valid.iter().enumerate() {
            match Self::head_from(tree, key, name, h)
                .and_then(|head| Self::check_last_commit(tree, data, name, h, head))
            {
                Ok(head) => return Ok((Some(h.clone()), head, fell_back || i > 0)),
                Err(e) => {
                    // Keep only the reason: the final error names the archive once.
                    problems.push(match e {
                        LogError::Corrupt { reason, .. } => {
                            format!("header {}: {reason}", h.generation)
                        }
                        e => e.to_string(),
                    });
                    fell_back = true;
                }
            }
        }
        // The very first commit was cut short: its header landed but not all of its bytes.
        // Nothing was acknowledged before it, so the log is empty.
        if slot_problems == 0
            && valid.len() == 1
            && valid[0].generation == 1
            && valid[0].prev_length == 0
        {
            return Ok((None, TreeHead::default(), true));
        }
        Err(LogError::Corrupt {
            archive: name.to_owned(),
            seq: None,
            reason: problems.join("; "),
        })
    }

    fn head_from(
        tree: &dyn StorageFile,
        key: &PublicKey,
        name: &str,
        h: &Header,
    ) -> Result<TreeHead, LogError> {
        let src = DiskNodes {
            tree,
            length: h.length,
            name,
        };
        let mut roots = Vec::new();
        for index in flat::full_roots(2 * h.length) {
            let node = src.node(index)?.ok_or_else(|| LogError::Corrupt {
                archive: name.to_owned(),
                seq: None,
                reason: format!("root node {index} of length {} is missing", h.length),
            })?;
            roots.push(node);
        }
        // Checked: the sizes come from disk, and a corrupt pair must not overflow (a fuzzed
        // `tree` file did, see common/fuzz/regressions/storage_open).
        let byte_length = roots
            .iter()
            .try_fold(0u64, |sum, r| sum.checked_add(r.size))
            .ok_or_else(|| LogError::Corrupt {
                archive: name.to_owned(),
                seq: None,
                reason: format!("root sizes of length {} overflow", h.length),
            })?;
        let head = TreeHead {
            fork: h.fork,
            length: h.length,
            byte_length,
            roots,
            signature: h.signature,
        };
        if byte_length != h.byte_length {
            return Err(LogError::Corrupt {
                archive: name.to_owned(),
                seq: None,
                reason: format!(
                    "roots cover {byte_length} bytes but the header says {}",
                    h.byte_length
                ),
            });
        }
        if h.length > 0 {
            let sig = h.signature.ok_or_else(|| LogError::Corrupt {
                archive: name.to_owned(),
                seq: None,
                reason: "header has no signature".into(),
            })?;
            if !key.verify(&head.signable(), &sig) {
                return Err(LogError::Corrupt {
                    archive: name.to_owned(),
                    seq: None,
                    reason: format!("signature over length {} does not verify", h.length),
                });
            }
        }
        Ok(head)
    }

    /// Checks that the blocks and nodes of the commit that wrote `h` (`prev_length..length`)
    /// are on disk as the header says: each block hashes to its leaf, and rebuilding the tree
    /// from the previous roots gives every stored node and the signed roots. Data, nodes and
    /// header are synced in one round, so after a crash the header may be durable while some
    /// of its bytes are not; that commit was never acknowledged and the older slot is used.
    fn check_last_commit(
        tree: &dyn StorageFile,
        data: &dyn StorageFile,
        name: &str,
        h: &Header,
        head: TreeHead,
    ) -> Result<TreeHead, LogError> {
        if h.prev_length >= h.length || h.contiguous < h.length {
            return Ok(head);
        }
        let bad = |reason: String| LogError::Corrupt {
            archive: name.to_owned(),
            seq: None,
            reason,
        };
        let old = DiskNodes {
            tree,
            length: h.prev_length,
            name,
        };
        let mut rebuilt = TreeHead {
            fork: h.fork,
            length: h.prev_length,
            ..TreeHead::default()
        };
        for index in flat::full_roots(2 * h.prev_length) {
            rebuilt.roots.push(
                old.node(index)?.ok_or_else(|| {
                    bad(format!("root {index} of the previous commit is missing"))
                })?,
            );
        }
        rebuilt.byte_length = rebuilt
            .roots
            .iter()
            .try_fold(0u64, |a, r| a.checked_add(r.size))
            .ok_or_else(|| bad("root sizes overflow".into()))?;
        let new = DiskNodes {
            tree,
            length: h.length,
            name,
        };
        let mut offset = rebuilt.byte_length;
        let mut added = Vec::new();
        for seq in h.prev_length..h.length {
            let leaf = new
                .node(2 * seq)?
                .ok_or_else(|| bad(format!("leaf of entry {seq} is missing")))?;
            if leaf.size > MAX_BLOCK_BYTES as u64 {
                return Err(bad(format!("entry {seq} claims {} bytes", leaf.size)));
            }
            let mut block = vec![0u8; leaf.size as usize];
            data.read_exact_at(&mut block, offset)
                .map_err(|e| bad(format!("entry {seq}: {e}")))?;
            offset += leaf.size;
            added.clear();
            rebuilt.append_block(&block, &mut added)?;
            for n in &added {
                if new.node(n.index)? != Some(*n) {
                    return Err(bad(format!(
                        "node {} of the last commit does not match its blocks",
                        n.index
                    )));
                }
            }
        }
        if rebuilt.roots != head.roots {
            return Err(bad(
                "the last commit's blocks do not rebuild the signed roots".into(),
            ));
        }
        Ok(head)
    }

    /// Cuts bytes a crash (or a truncate) left after the durable head of a fully stored log.
    /// Only called when no commit is in flight: at open, or under an exclusive claim.
    pub(super) fn repair_tail(&self, head: &TreeHead, contiguous: u64) -> Result<(), LogError> {
        if contiguous != head.length {
            return Ok(());
        }
        let tree_end = NODES_OFFSET + (2 * head.length).saturating_sub(1) * NODE_BYTES;
        let tree_len = self.tree.len().map_err(|e| self.io_err("tree", e))?;
        let data_len = self.data.len().map_err(|e| self.io_err("data", e))?;
        if tree_len > tree_end {
            self.tree
                .set_len(tree_end)
                .map_err(|e| self.io_err("tree", e))?;
        }
        if data_len > head.byte_length {
            self.data
                .set_len(head.byte_length)
                .map_err(|e| self.io_err("data", e))?;
        }
        if tree_len > tree_end || data_len > head.byte_length {
            tracing::info!(archive = %self.name, length = head.length, "removed bytes past the durable head");
        }
        Ok(())
    }
}
