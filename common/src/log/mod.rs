//! The signed append-only log: a Hypercore-compatible merkle tree over blocks, kept durably on a
//! [`Storage`]. Appends from many threads share fsyncs (group commit); every read is verified up
//! to the signed roots; a read-only replica grows only through verified proofs.
//!
//! On disk, per log: `tree` (two header slots, then 40-byte nodes at their flat-tree index),
//! `data` (blocks at their byte offsets) and `bitfield` (blocks held by a sparse replica).
//! A commit writes data and nodes, syncs them, then writes the other header slot and syncs it,
//! so a durable header only ever points at durable bytes.
//!
//! The type and its state are here; its methods are split by concern: [`open`](Log::open) and
//! crash recovery (`open.rs`), appends with group commit and truncation (`append.rs`), verified
//! reads (`read.rs`), a replica's proofs (`replica.rs`) and forks (`fork.rs`, with the evidence
//! format).

mod append;
pub mod bitfield;
pub mod flat;
pub mod fork;
pub mod header;
mod open;
pub mod proof;
mod read;
mod replica;
// Test support: built for this crate's tests and with the `test-utils` feature.
#[cfg(any(test, feature = "test-utils"))]
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
use header::{NODES_OFFSET, NODE_BYTES};
pub use proof::{
    DataBlock, DataHash, DataSeek, DataUpgrade, Proof, ProofRequest, RequestBlock, RequestSeek,
    RequestUpgrade,
};
pub use storage::{DiskStorage, FileCache, Storage, StorageFile};
pub use tree::{Node, NodeSource, TreeHead, VerifiedProof, MAX_LENGTH};

/// Largest block the log accepts from its owner or a peer.
pub const MAX_BLOCK_BYTES: usize = proof::MAX_BLOCK_BYTES;

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

// By hand, so a writer's secret key never reaches a log line.
impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Access::Writer(kp) => f.debug_tuple("Writer").field(&kp.public()).finish(),
            Access::Replica => f.write_str("Replica"),
            Access::View => f.write_str("View"),
        }
    }
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
    /// An i/o error on one of this log's files.
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
