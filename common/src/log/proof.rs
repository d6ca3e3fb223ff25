//! Proof requests and proofs, the same shapes Hypercore exchanges. Their one wire codec (the
//! `data` message of `lib/messages.js`) is `replicate::wire`; the log only builds and checks them.

use crate::crypto::Signature;
use crate::log::Node;

/// At most this many nodes in one list of a proof: a path in a tree of 2^40 leaves has 40 nodes,
/// an upgrade at most two per level.
pub const MAX_PROOF_NODES: usize = 128;

/// At most this many bytes in one block value carried by a proof.
pub const MAX_BLOCK_BYTES: usize = 8 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProofRequest {
    pub block: Option<RequestBlock>,
    pub hash: Option<RequestBlock>,
    pub seek: Option<RequestSeek>,
    pub upgrade: Option<RequestUpgrade>,
}

/// A block (or, for `hash`, a tree node) and how many nodes above it the requester lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestBlock {
    pub index: u64,
    pub nodes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestSeek {
    pub bytes: u64,
    pub padding: u64,
}

/// Asks to move the requester from length `start` to `start + length`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestUpgrade {
    pub start: u64,
    pub length: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Proof {
    pub fork: u64,
    pub block: Option<DataBlock>,
    pub hash: Option<DataHash>,
    pub seek: Option<DataSeek>,
    pub upgrade: Option<DataUpgrade>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataBlock {
    pub index: u64,
    pub value: Vec<u8>,
    pub nodes: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataHash {
    pub index: u64,
    pub nodes: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataSeek {
    pub bytes: u64,
    pub nodes: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataUpgrade {
    pub start: u64,
    pub length: u64,
    pub nodes: Vec<Node>,
    pub additional_nodes: Vec<Node>,
    pub signature: Option<Signature>,
}
