//! The signed append-only log: a Hypercore-compatible merkle tree over blocks, kept durably on a
//! [`Storage`]. Appends from many threads share fsyncs (group commit); every read is verified up
//! to the signed roots; a read-only replica grows only through verified proofs.
//!
//! On disk, per log: `tree` (two header slots, then 40-byte nodes at their flat-tree index),
//! `data` (blocks at their byte offsets) and `bitfield` (blocks held by a sparse replica).
//! A commit writes data and nodes, syncs them, then writes the other header slot and syncs it,
//! so a durable header only ever points at durable bytes.

pub mod bitfield;
pub mod flat;
pub mod fork;
pub mod header;
pub mod proof;
pub mod sim;
pub mod storage;
pub mod tree;

use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};
use tokio::sync::watch;

use crate::crypto::{self, Hash, KeyError, KeyPair, PublicKey};
use bitfield::Bitfield;
pub use fork::ForkEvidence;
use header::{Header, Slot, NODES_OFFSET, NODE_BYTES, SLOT_BYTES};
pub use proof::{
    DataBlock, DataHash, DataSeek, DataUpgrade, Proof, ProofRequest, RequestBlock, RequestSeek,
    RequestUpgrade,
};
pub use storage::{DiskStorage, FileCache, Storage, StorageFile};
pub use tree::{Node, NodeSource, TreeHead, VerifiedProof, MAX_LENGTH};

/// Largest block the log accepts from its owner or a peer.
pub const MAX_BLOCK_BYTES: usize = proof::MAX_BLOCK_BYTES;

/// Largest commit (blocks, bytes) synced in a single round, which open re-checks in full; larger
/// commits sync their header in a second round instead, so open time stays bounded.
const SINGLE_ROUND_MAX_BLOCKS: usize = 1024;
const SINGLE_ROUND_MAX_BYTES: usize = 1 << 20;

/// Verified-node cache size; cleared wholesale when full.
const VERIFIED_CACHE: usize = 1 << 16;

/// Errors of the log. Cloneable so one failed group commit can be reported to every waiter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogError {
    #[error("i/o error on {what}: {message}")]
    Io {
        what: String,
        message: String,
        kind: io::ErrorKind,
    },
    #[error("archive {archive} is corrupt{}: {reason}", seq.map(|s| format!(" at entry {s}")).unwrap_or_default())]
    Corrupt {
        archive: String,
        seq: Option<u64>,
        reason: String,
    },
    #[error("tree node {index} is not stored")]
    MissingNode { index: u64 },
    #[error("entry {seq} is not stored locally yet")]
    NotAvailable { seq: u64 },
    #[error("entry {seq} does not exist: the log has {length} entries")]
    OutOfRange { seq: u64, length: u64 },
    #[error("archive {archive} is read-only here: its secret key is not in this data directory")]
    ReadOnly { archive: String },
    #[error("invalid proof: {0}")]
    InvalidProof(String),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("signature does not verify for length {length} at fork {fork}")]
    InvalidSignature { length: u64, fork: u64 },
    #[error("proof is for fork {remote} but the local log is at fork {local}")]
    ForkMismatch { local: u64, remote: u64 },
    #[error("a different signed head exists for length {length}: the writer forked the log")]
    Conflict { length: u64 },
    #[error("block of {size} bytes exceeds the limit of {max} bytes")]
    TooLarge { size: usize, max: usize },
    #[error("truncating to {requested} is not possible: the log has {length} entries")]
    BadTruncate { requested: u64, length: u64 },
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("log storage failed earlier ({0}); reopen the archive")]
    Poisoned(String),
}

impl LogError {
    pub(crate) fn malformed(msg: impl Into<String>) -> Self {
        LogError::Malformed(msg.into())
    }
    pub(crate) fn invalid_proof(msg: impl Into<String>) -> Self {
        LogError::InvalidProof(msg.into())
    }
    pub(crate) fn invalid_request(msg: impl Into<String>) -> Self {
        LogError::InvalidRequest(msg.into())
    }
    fn io(what: impl Into<String>, e: io::Error) -> Self {
        LogError::Io {
            what: what.into(),
            message: e.to_string(),
            kind: e.kind(),
        }
    }
    /// True when the error means the disk is full.
    pub fn is_storage_full(&self) -> bool {
        matches!(
            self,
            LogError::Io {
                kind: io::ErrorKind::StorageFull,
                ..
            }
        )
    }
}

/// A snapshot of a log's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogInfo {
    pub key: PublicKey,
    pub fork: u64,
    pub length: u64,
    /// Blocks `0..contiguous` are all stored locally.
    pub contiguous: u64,
    pub byte_length: u64,
    pub tree_hash: Hash,
    pub signature: Option<crypto::Signature>,
    pub writable: bool,
}

/// What changes when a log grows, forks or gains blocks; published after every commit through
/// [`Log::subscribe`], so replication learns of a new append without polling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogStatus {
    pub fork: u64,
    pub length: u64,
    pub contiguous: u64,
    /// Increases with every published change; orders publications made outside the state lock.
    pub version: u64,
}

/// How a log is opened.
#[derive(Clone)]
#[allow(clippy::large_enum_variant)] // one per open log; boxing the key pair buys nothing
pub enum Access {
    /// The owner: may append and truncate.
    Writer(KeyPair),
    /// A replica kept by this node: grows through verified proofs.
    Replica,
    /// A view that never writes (another process owns the files).
    View,
}

struct State {
    head: Arc<TreeHead>,
    contiguous: u64,
    generation: u64,
    bits: Bitfield,
    pending: Vec<Vec<u8>>,
    /// Generation of the batch `pending` will be committed as.
    open_batch: u64,
    /// Every batch below this has finished (ok or not).
    done_batch: u64,
    committing: bool,
    results: VecDeque<(u64, Result<u64, LogError>)>,
    poisoned: Option<String>,
    /// Bumped on every change of head or contiguous length (see [`LogStatus::version`]).
    version: u64,
}

/// One signed append-only log.
pub struct Log {
    key: PublicKey,
    keypair: Option<KeyPair>,
    writes: bool,
    name: String,
    tree: Arc<dyn StorageFile>,
    data: Arc<dyn StorageFile>,
    bitfield: Arc<dyn StorageFile>,
    /// Fork evidence (`forks`), present for replicas; see [`fork`].
    forks: Option<Arc<dyn StorageFile>>,
    /// The evidence recorded so far, verified.
    evidence: Mutex<Vec<ForkEvidence>>,
    state: Mutex<State>,
    cond: Condvar,
    /// Node index -> (fork, hash) of nodes already checked against the signed roots. The fork
    /// keeps a read that raced a truncate from vouching for old nodes in the new tree.
    verified: Mutex<HashMap<u64, (u64, Hash)>>,
    /// Latest published status; receivers must not hold a borrow while calling into the log.
    changes: watch::Sender<LogStatus>,
}

/// Reads nodes from the `tree` file, hiding any node outside the tree of `length`.
struct DiskNodes<'a> {
    tree: &'a dyn StorageFile,
    length: u64,
    name: &'a str,
}

fn read_node(tree: &dyn StorageFile, index: u64, name: &str) -> Result<Option<Node>, LogError> {
    let mut buf = [0u8; NODE_BYTES as usize];
    let off = NODES_OFFSET + index * NODE_BYTES;
    match tree.read_exact_at(&mut buf, off) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(LogError::io(format!("{name}/tree"), e)),
    }
    if buf.iter().all(|b| *b == 0) {
        return Ok(None);
    }
    let mut hash = [0u8; 32];
    hash.copy_from_slice(&buf[..32]);
    let mut size = [0u8; 8];
    size.copy_from_slice(&buf[32..]);
    Ok(Some(Node {
        index,
        size: u64::from_le_bytes(size),
        hash,
    }))
}

impl NodeSource for DiskNodes<'_> {
    fn node(&self, index: u64) -> Result<Option<Node>, LogError> {
        if index >= 2 * MAX_LENGTH || flat::right_span(index) >= 2 * self.length {
            return Ok(None);
        }
        read_node(self.tree, index, self.name)
    }
}

/// New nodes layered over the stored ones (used while a commit is being prepared).
struct Overlay<'a> {
    nodes: &'a HashMap<u64, Node>,
    disk: DiskNodes<'a>,
}

impl NodeSource for Overlay<'_> {
    fn node(&self, index: u64) -> Result<Option<Node>, LogError> {
        match self.nodes.get(&index) {
            Some(n) => Ok(Some(*n)),
            None => self.disk.node(index),
        }
    }
}

fn encode_node(n: &Node) -> [u8; NODE_BYTES as usize] {
    let mut out = [0u8; NODE_BYTES as usize];
    out[..32].copy_from_slice(&n.hash);
    out[32..].copy_from_slice(&n.size.to_le_bytes());
    out
}

/// Writes nodes sorted by index, coalescing runs of neighbours into one write each.
fn write_nodes(tree: &dyn StorageFile, nodes: &mut [Node]) -> io::Result<()> {
    nodes.sort_unstable_by_key(|n| n.index);
    let mut i = 0;
    let mut buf = Vec::new();
    while i < nodes.len() {
        let start = nodes[i].index;
        buf.clear();
        let mut next = start;
        while i < nodes.len() && nodes[i].index <= next {
            if nodes[i].index == next {
                buf.extend_from_slice(&encode_node(&nodes[i]));
                next += 1;
            }
            i += 1;
        }
        tree.write_all_at(&buf, NODES_OFFSET + start * NODE_BYTES)?;
    }
    Ok(())
}

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

    // ---- forks ----

    /// Evidence that the writer signed two different heads on one fork, as recorded by
    /// [`Log::check_conflict`]. Empty for an archive whose writer never equivocated.
    pub fn fork_evidence(&self) -> Vec<ForkEvidence> {
        self.evidence.lock().clone()
    }

    /// True once evidence of two conflicting signed heads is recorded: the archive is flagged,
    /// it keeps its own head and never merges the other.
    pub fn is_forked(&self) -> bool {
        !self.evidence.lock().is_empty()
    }

    /// Checks a peer's head, given as an upgrade proof from length 0 to this log's length on this
    /// log's fork (what a replica asks for when an upgrade does not fit its head, as JS
    /// `_checkIfConflict` does), against the local signed head. If both verify and differ at the
    /// local length, the writer equivocated: the evidence is stored in the `forks` file (up to
    /// [`fork::MAX_RECORDS`]) and returned. `Ok(None)` means the peer's head extends ours. An
    /// error means the proof itself is bad (the peer's fault).
    pub fn check_conflict(&self, proof: &Proof) -> Result<Option<ForkEvidence>, LogError> {
        let local = self.head();
        let upgrade = proof
            .upgrade
            .as_ref()
            .ok_or_else(|| LogError::invalid_proof("conflict check without an upgrade"))?;
        if proof.block.is_some() || proof.hash.is_some() || proof.seek.is_some() {
            return Err(LogError::invalid_proof(
                "conflict check carries more than an upgrade",
            ));
        }
        if proof.fork != local.fork {
            return Err(LogError::ForkMismatch {
                local: local.fork,
                remote: proof.fork,
            });
        }
        if local.length == 0 {
            return Ok(None);
        }
        fork::remote_head(proof.fork, upgrade, local.length, &self.key)?;
        if crypto::tree_hash(&upgrade.nodes) == local.hash() {
            return Ok(None);
        }
        let evidence = ForkEvidence {
            local: (*local).clone(),
            fork: proof.fork,
            remote: upgrade.clone(),
        };
        // Checked again as a whole, so only what a third party could verify is kept.
        evidence.verify(&self.key)?;
        tracing::warn!(archive = %self.name, fork = local.fork, length = local.length, "the writer signed two different heads: archive flagged");
        let mut kept = self.evidence.lock();
        if kept.len() < fork::MAX_RECORDS && !kept.contains(&evidence) {
            if let Some(f) = &self.forks {
                let record = fork::encode_record(&evidence);
                let end = f.len().map_err(|e| self.io_err("forks", e))?;
                f.write_all_at(&record, end)
                    .and_then(|()| f.sync())
                    .map_err(|e| self.io_err("forks", e))?;
            }
            kept.push(evidence.clone());
        }
        Ok(Some(evidence))
    }

    /// Follows a writer's truncate: `proof` is an upgrade from length 0 to the peer's head on a
    /// higher fork (JS `_requestForkProof`). Once it verifies, the blocks both forks share (the
    /// leading roots of the new head that equal stored nodes) are kept, everything after them is
    /// dropped, and the new head is adopted. Returns how many blocks were kept.
    ///
    /// Crash safety: an empty header goes first (it needs no signature), then the tree, bitfield
    /// and data are cut and the new roots written and synced, then the new head. A crash in
    /// between leaves an empty replica that downloads again, never a head over foreign nodes.
    pub fn apply_fork(&self, proof: &Proof) -> Result<u64, LogError> {
        if !self.writes || self.keypair.is_some() {
            return Err(LogError::ReadOnly {
                archive: self.name.clone(),
            });
        }
        let upgrade = proof
            .upgrade
            .as_ref()
            .ok_or_else(|| LogError::invalid_proof("fork proof without an upgrade"))?;
        if proof.block.is_some() || proof.hash.is_some() || proof.seek.is_some() {
            return Err(LogError::invalid_proof(
                "fork proof carries more than an upgrade",
            ));
        }
        let length = upgrade.length;
        // Verified before anything is claimed or written.
        let new_head = fork::remote_head(proof.fork, upgrade, length, &self.key)?;
        let mut st = self.exclusive()?;
        let old = st.head.clone();
        if proof.fork <= old.fork && old.length > 0 {
            return Err(LogError::invalid_proof(format!(
                "fork {} is not newer than the local fork {}",
                proof.fork, old.fork
            )));
        }
        st.committing = true;
        let (generation, contiguous) = (st.generation, st.contiguous);
        drop(st);
        let result = self.commit_fork(&old, &new_head, generation, contiguous);
        let mut st = self.state.lock();
        st.committing = false;
        st.bits.reset();
        let out = match result {
            Ok(kept) => {
                st.generation = generation + 2;
                st.contiguous = contiguous.min(kept);
                st.head = Arc::new(new_head);
                self.verified.lock().clear();
                Ok((kept, self.status_locked(&mut st)))
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
        let (kept, status) = out?;
        tracing::info!(archive = %self.name, fork = proof.fork, length, kept, "followed the writer to a new fork");
        self.publish(status);
        Ok(kept)
    }

    fn commit_fork(
        &self,
        old: &TreeHead,
        new: &TreeHead,
        generation: u64,
        contiguous: u64,
    ) -> Result<u64, (LogError, bool)> {
        let src = DiskNodes {
            tree: &*self.tree,
            length: old.length,
            name: &self.name,
        };
        // Blocks shared with the new fork: its leading roots that we hold with the same hash.
        let mut kept = 0u64;
        let mut kept_bytes = 0u64;
        for root in &new.roots {
            match src.node(root.index).map_err(|e| (e, false))? {
                Some(n) if n.hash == root.hash && n.size == root.size => {
                    kept += flat::count_leaves(root.index);
                    kept_bytes += root.size;
                }
                _ => break,
            }
        }
        let kept = kept.min(old.length);
        let empty = Header {
            generation: generation + 1,
            key: *self.key.as_bytes(),
            fork: old.fork,
            length: 0,
            contiguous: 0,
            byte_length: 0,
            prev_length: 0,
            signature: None,
        };
        self.write_header(&empty).map_err(|e| (e, true))?;

        // Every node whose span reaches block `kept` or beyond belongs to the old fork.
        let cut = NODES_OFFSET + 2 * kept * NODE_BYTES;
        let tree_len = self
            .tree
            .len()
            .map_err(|e| (self.io_err("tree", e), true))?;
        if tree_len > cut {
            self.tree
                .set_len(cut)
                .map_err(|e| (self.io_err("tree", e), true))?;
        }
        let mut index = 2 * kept;
        // Heights up to 40 cover any tree of `MAX_LENGTH` entries.
        for _ in 0..40 {
            index = flat::parent(index);
            if index < 2 * kept {
                self.tree
                    .write_all_at(
                        &[0u8; NODE_BYTES as usize],
                        NODES_OFFSET + index * NODE_BYTES,
                    )
                    .map_err(|e| (self.io_err("tree", e), true))?;
            }
        }
        let mut roots = new.roots.clone();
        write_nodes(&*self.tree, &mut roots).map_err(|e| (self.io_err("tree", e), true))?;
        let data_len = self
            .data
            .len()
            .map_err(|e| (self.io_err("data", e), true))?;
        if data_len > kept_bytes {
            self.data
                .set_len(kept_bytes)
                .map_err(|e| (self.io_err("data", e), true))?;
        }
        // Bits of blocks from `kept` on are cleared: cut the file after the byte holding bit
        // `kept`, and clear that byte's high bits.
        let byte = kept / 8;
        let bits_len = self
            .bitfield
            .len()
            .map_err(|e| (self.io_err("bitfield", e), true))?;
        if bits_len > byte {
            let mut b = [0u8; 1];
            self.bitfield
                .read_exact_at(&mut b, byte)
                .map_err(|e| (self.io_err("bitfield", e), true))?;
            b[0] &= ((1u16 << (kept % 8)) - 1) as u8;
            self.bitfield
                .write_all_at(&b, byte)
                .map_err(|e| (self.io_err("bitfield", e), true))?;
            self.bitfield
                .set_len(byte + 1)
                .map_err(|e| (self.io_err("bitfield", e), true))?;
        }
        self.sync_data_and_tree()?;
        self.bitfield
            .sync()
            .map_err(|e| (self.io_err("bitfield", e), true))?;
        let h = Header {
            generation: generation + 2,
            key: *self.key.as_bytes(),
            fork: new.fork,
            length: new.length,
            contiguous: contiguous.min(kept),
            byte_length: new.byte_length,
            prev_length: new.length,
            signature: new.signature,
        };
        self.write_header(&h).map_err(|e| (e, true))?;
        Ok(kept)
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
    fn repair_tail(&self, head: &TreeHead, contiguous: u64) -> Result<(), LogError> {
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

    fn io_err(&self, file: &str, e: io::Error) -> LogError {
        LogError::io(format!("{}/{file}", self.name), e)
    }

    fn corrupt(&self, seq: Option<u64>, reason: impl Into<String>) -> LogError {
        LogError::Corrupt {
            archive: self.name.clone(),
            seq,
            reason: reason.into(),
        }
    }

    pub fn key(&self) -> PublicKey {
        self.key
    }

    pub fn writable(&self) -> bool {
        self.keypair.is_some()
    }

    pub fn info(&self) -> LogInfo {
        let st = self.state.lock();
        LogInfo {
            key: self.key,
            fork: st.head.fork,
            length: st.head.length,
            contiguous: st.contiguous,
            byte_length: st.head.byte_length,
            tree_hash: st.head.hash(),
            signature: st.head.signature,
            writable: self.keypair.is_some(),
        }
    }

    /// A receiver that sees the log's fork, length and contiguous length after every commit,
    /// append, verified proof or truncate. Copy the value out of `borrow()` before calling into
    /// the log again.
    pub fn subscribe(&self) -> watch::Receiver<LogStatus> {
        self.changes.subscribe()
    }

    /// Takes a new status version under the state lock; publish it after the lock is released.
    fn status_locked(&self, st: &mut State) -> LogStatus {
        st.version += 1;
        LogStatus {
            fork: st.head.fork,
            length: st.head.length,
            contiguous: st.contiguous,
            version: st.version,
        }
    }

    /// Publishes a status unless a newer one was published already (publishers race once they
    /// have released the state lock).
    fn publish(&self, status: LogStatus) {
        self.changes.send_if_modified(|cur| {
            if status.version > cur.version {
                *cur = status;
                true
            } else {
                false
            }
        });
    }

    /// The current signed head.
    pub fn head(&self) -> Arc<TreeHead> {
        self.state.lock().head.clone()
    }

    pub fn len(&self) -> u64 {
        self.state.lock().head.length
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A stored node of the current tree.
    pub fn node(&self, index: u64) -> Result<Option<Node>, LogError> {
        let head = self.head();
        DiskNodes {
            tree: &*self.tree,
            length: head.length,
            name: &self.name,
        }
        .node(index)
    }

    // ---- appends ----

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
    fn sync_data_and_tree(&self) -> Result<(), (LogError, bool)> {
        let (data, tree) = std::thread::scope(|s| {
            let data = s.spawn(|| self.data.sync());
            let tree = self.tree.sync();
            (data.join(), tree)
        });
        let data = data.unwrap_or_else(|_| Err(io::Error::other("data sync thread panicked")));
        data.map_err(|e| (self.io_err("data", e), true))?;
        tree.map_err(|e| (self.io_err("tree", e), true))
    }

    fn write_header(&self, h: &Header) -> Result<(), LogError> {
        self.tree
            .write_all_at(&h.encode(), h.slot_offset())
            .map_err(|e| self.io_err("tree", e))?;
        self.tree.sync().map_err(|e| self.io_err("tree", e))
    }

    /// Waits until no commit runs and claims the log for an exclusive change.
    fn exclusive(&self) -> Result<parking_lot::MutexGuard<'_, State>, LogError> {
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

    // ---- reads ----

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
    fn verify_path(
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

    fn remember(&self, checked: Vec<(u64, Hash)>, fork: u64) {
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

    // ---- proofs ----

    /// Answers a proof request from the stored tree; block values are read verified.
    pub fn proof(&self, req: &ProofRequest) -> Result<Proof, LogError> {
        let head = self.head();
        let src = DiskNodes {
            tree: &*self.tree,
            length: head.length,
            name: &self.name,
        };
        let mut proof = tree::generate_proof(&src, &head, req)?;
        if let Some(b) = proof.block.as_mut() {
            b.value = self.get(b.index)?;
        }
        Ok(proof)
    }

    /// Answers many proof requests, as [`Log::proof`] answers one. Block values are read
    /// verified in runs of consecutive blocks (one byte-offset walk and two reads per run rather
    /// than a walk per block), which is what makes serving a full download fast.
    pub fn proofs(&self, reqs: &[ProofRequest]) -> Vec<Result<Proof, LogError>> {
        let head = self.head();
        let src = DiskNodes {
            tree: &*self.tree,
            length: head.length,
            name: &self.name,
        };
        let mut out: Vec<Result<Proof, LogError>> = reqs
            .iter()
            .map(|r| tree::generate_proof(&src, &head, r))
            .collect();
        let mut want: Vec<(u64, usize)> = out
            .iter()
            .enumerate()
            .filter_map(|(i, p)| Some((p.as_ref().ok()?.block.as_ref()?.index, i)))
            .collect();
        want.sort_unstable();
        let mut k = 0;
        while k < want.len() {
            let start = want[k].0;
            let mut end = start + 1;
            let mut j = k + 1;
            while j < want.len() && want[j].0 <= end {
                end = end.max(want[j].0 + 1);
                j += 1;
            }
            let mut values: Vec<Vec<u8>> = Vec::with_capacity((end - start) as usize);
            let run = self.for_each(start, end, |_, b| {
                values.push(b.to_vec());
                Ok(())
            });
            for &(seq, i) in &want[k..j] {
                // A run that could not be read whole (a block missing here, say) is read block
                // by block, so one failure fails only its own request.
                let value = match (&run, values.get((seq - start) as usize)) {
                    (Ok(()), Some(v)) => Ok(v.clone()),
                    _ => self.get(seq),
                };
                if let Ok(p) = &mut out[i] {
                    match value {
                        Ok(v) => {
                            if let Some(b) = p.block.as_mut() {
                                b.value = v;
                            }
                        }
                        Err(e) => out[i] = Err(e),
                    }
                }
            }
            k = j;
        }
        out
    }

    /// Verifies a proof from a peer and stores what it proves: new nodes, the block, and the
    /// new signed head if it upgrades. Nothing is stored unless everything verifies.
    pub fn apply_proof(&self, proof: &Proof) -> Result<VerifiedProof, LogError> {
        self.apply_proofs(std::slice::from_ref(proof))?
            .pop()
            .unwrap_or_else(|| Err(LogError::invalid_proof("no result for the proof")))
    }

    /// Verifies proofs in order and stores every one that verifies with one round of syncs (data
    /// and nodes, then the bitfield, then the header that references them). Each proof is checked
    /// against the head and nodes left by the proofs before it in the batch, so an upgrade and
    /// blocks under it can arrive together. Returns one result per proof; nothing from a proof
    /// that fails is stored. The outer error means storage failed and nothing is acknowledged.
    pub fn apply_proofs(
        &self,
        proofs: &[Proof],
    ) -> Result<Vec<Result<VerifiedProof, LogError>>, LogError> {
        if !self.writes {
            return Err(LogError::ReadOnly {
                archive: self.name.clone(),
            });
        }
        let mut st = self.exclusive()?;
        st.committing = true;
        let base = st.head.clone();
        let contiguous = st.contiguous;
        drop(st);
        let result = self.apply_batch(proofs, &base, contiguous);
        let mut st = self.state.lock();
        st.committing = false;
        let out = match result {
            Ok(applied) => {
                let changed = applied.head.is_some() || applied.contiguous != contiguous;
                if let Some(h) = applied.head {
                    st.head = Arc::new(h);
                }
                st.contiguous = applied.contiguous;
                if let Some(g) = applied.generation {
                    st.generation = g;
                }
                let status = changed.then(|| self.status_locked(&mut st));
                Ok((applied.results, status))
            }
            Err((e, poison)) => {
                st.bits.reset();
                if poison {
                    st.poisoned = Some(e.to_string());
                }
                Err(e)
            }
        };
        self.cond.notify_all();
        drop(st);
        let (results, status) = out?;
        if let Some(status) = status {
            self.publish(status);
        }
        Ok(results)
    }

    /// Checks one proof against `head` and the nodes verified earlier in the batch. Returns what
    /// it proved, its new head if it upgrades, and where its block goes.
    #[allow(clippy::type_complexity)]
    fn verify_in_batch(
        &self,
        proof: &Proof,
        head: &TreeHead,
        batch: &HashMap<u64, Node>,
        prev_block: Option<(u64, u64)>,
    ) -> Result<(VerifiedProof, Option<TreeHead>, Option<(u64, u64)>), LogError> {
        let v = tree::verify_proof(proof, head, &self.key)?;
        let over = Overlay {
            nodes: batch,
            disk: DiskNodes {
                tree: &*self.tree,
                length: head.length,
                name: &self.name,
            },
        };
        if let Some(root) = v.unverified_root {
            match over.node(root.index)? {
                // Verified earlier in this batch.
                Some(n)
                    if batch.contains_key(&root.index)
                        && n.hash == root.hash
                        && n.size == root.size => {}
                Some(stored) if stored.hash == root.hash && stored.size == root.size => {
                    // A proof that failed or was cut off by a crash can leave some nodes of its
                    // path stored without their siblings. Such a node cannot vouch for this
                    // proof: blocks under it would be stored yet never verify.
                    self.verify_path(&over, head, stored, None)
                        .map_err(|e| match e {
                            LogError::Corrupt { reason, .. } => LogError::invalid_proof(format!(
                                "stored node {} does not reach the signed roots ({reason})",
                                root.index
                            )),
                            e => e,
                        })?;
                }
                Some(_) => {
                    return Err(LogError::invalid_proof(format!(
                        "node {} does not match the stored tree",
                        root.index
                    )))
                }
                None => {
                    return Err(LogError::invalid_proof(format!(
                        "proof does not connect to a stored node (node {})",
                        root.index
                    )))
                }
            }
        }
        let new_head = match &v.upgrade {
            Some(h) if h.length > head.length => Some(h.clone()),
            Some(h) if h.length == head.length && h.hash() == head.hash() => None,
            Some(h) if h.length == head.length => {
                return Err(LogError::Conflict { length: h.length })
            }
            Some(_) => {
                return Err(LogError::invalid_proof(
                    "upgrade is older than the local head",
                ))
            }
            None => None,
        };
        let mut block = None;
        if let Some((seq, _)) = &v.block {
            let target = new_head.as_ref().unwrap_or(head);
            if *seq >= target.length {
                return Err(LogError::invalid_proof(format!(
                    "block {seq} is past the signed length {}",
                    target.length
                )));
            }
            let offset = match prev_block {
                // Block seq - 1, verified earlier in this batch, ends where this one starts.
                Some((prev, end)) if prev + 1 == *seq => end,
                _ => {
                    let own: HashMap<u64, Node> = v.nodes.iter().map(|n| (n.index, *n)).collect();
                    let src = Layered {
                        own: &own,
                        batch,
                        disk: DiskNodes {
                            tree: &*self.tree,
                            length: target.length,
                            name: &self.name,
                        },
                    };
                    tree::byte_offset(&src, target, 2 * seq)?
                }
            };
            block = Some((*seq, offset));
        }
        Ok((v, new_head, block))
    }

    fn apply_batch(
        &self,
        proofs: &[Proof],
        base: &TreeHead,
        contiguous: u64,
    ) -> Result<Applied, (LogError, bool)> {
        let mut head: Option<TreeHead> = None;
        let mut nodes: HashMap<u64, Node> = HashMap::new();
        let mut writes: Vec<(u64, u64, usize)> = Vec::new();
        let mut results = Vec::with_capacity(proofs.len());
        // The last block verified in this batch and the byte offset where it ends.
        let mut prev_block: Option<(u64, u64)> = None;
        for proof in proofs {
            match self.verify_in_batch(proof, head.as_ref().unwrap_or(base), &nodes, prev_block) {
                Ok((v, new_head, block)) => {
                    nodes.extend(v.nodes.iter().map(|n| (n.index, *n)));
                    if let Some(h) = new_head {
                        head = Some(h);
                    }
                    if let Some((seq, offset)) = block {
                        let len = v
                            .block
                            .as_ref()
                            .map(|(_, value)| value.len() as u64)
                            .unwrap_or(0);
                        prev_block = Some((seq, offset + len));
                        writes.push((seq, offset, results.len()));
                    }
                    results.push(Ok(v));
                }
                Err(e) => results.push(Err(e)),
            }
        }
        if nodes.is_empty() && head.is_none() && writes.is_empty() {
            return Ok(Applied {
                results,
                head: None,
                contiguous,
                generation: None,
            });
        }
        let target = head.as_ref().unwrap_or(base);

        // Blocks in offset order, neighbours joined into one write.
        writes.sort_unstable_by_key(|w| w.1);
        let value = |i: usize| match &results[i] {
            Ok(VerifiedProof {
                block: Some((_, v)),
                ..
            }) => v.as_slice(),
            _ => &[],
        };
        let mut i = 0;
        let mut buf = Vec::new();
        while i < writes.len() {
            let start = writes[i].1;
            let mut end = start;
            buf.clear();
            while i < writes.len() && writes[i].1 <= end {
                let (_, offset, r) = writes[i];
                if offset == end {
                    buf.extend_from_slice(value(r));
                    end += value(r).len() as u64;
                }
                i += 1;
            }
            self.data
                .write_all_at(&buf, start)
                .map_err(|e| (self.io_err("data", e), false))?;
        }
        let mut list: Vec<Node> = nodes.into_values().collect();
        write_nodes(&*self.tree, &mut list).map_err(|e| (self.io_err("tree", e), false))?;
        if writes.is_empty() {
            self.tree
                .sync()
                .map_err(|e| (self.io_err("tree", e), true))?;
        } else {
            self.sync_data_and_tree()?;
        }

        let mut st_contig = contiguous;
        let mut st = self.state.lock();
        let mut bits_written = false;
        if !writes.is_empty() {
            for &(seq, _, _) in &writes {
                if seq >= contiguous {
                    st.bits
                        .set(&*self.bitfield, seq, true)
                        .map_err(|e| (self.io_err("bitfield", e), false))?;
                }
            }
            while st_contig < target.length
                && st
                    .bits
                    .get(&*self.bitfield, st_contig)
                    .map_err(|e| (self.io_err("bitfield", e), false))?
            {
                st_contig += 1;
            }
            bits_written = st
                .bits
                .flush(&*self.bitfield)
                .map_err(|e| (self.io_err("bitfield", e), false))?;
        }
        let generation = st.generation;
        drop(st);
        if bits_written {
            self.bitfield
                .sync()
                .map_err(|e| (self.io_err("bitfield", e), true))?;
        }
        let mut new_generation = None;
        if head.is_some() || st_contig != contiguous {
            let h = Header {
                generation: generation + 1,
                key: *self.key.as_bytes(),
                fork: target.fork,
                length: target.length,
                contiguous: st_contig,
                byte_length: target.byte_length,
                prev_length: target.length,
                signature: target.signature,
            };
            self.write_header(&h).map_err(|e| (e, true))?;
            new_generation = Some(generation + 1);
        }
        Ok(Applied {
            results,
            head,
            contiguous: st_contig,
            generation: new_generation,
        })
    }
}

/// What one batch of proofs changed.
struct Applied {
    results: Vec<Result<VerifiedProof, LogError>>,
    head: Option<TreeHead>,
    contiguous: u64,
    generation: Option<u64>,
}

/// A proof's own nodes, then the nodes verified earlier in its batch, then the stored ones.
struct Layered<'a> {
    own: &'a HashMap<u64, Node>,
    batch: &'a HashMap<u64, Node>,
    disk: DiskNodes<'a>,
}

impl NodeSource for Layered<'_> {
    fn node(&self, index: u64) -> Result<Option<Node>, LogError> {
        match self.own.get(&index).or_else(|| self.batch.get(&index)) {
            Some(n) => Ok(Some(*n)),
            None => self.disk.node(index),
        }
    }
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log")
            .field("key", &self.key)
            .field("info", &self.info())
            .finish()
    }
}

#[cfg(test)]
mod tests;
