//! The merkle tree over flat-tree indexes: appending roots, byte offsets, and producing and
//! verifying proofs exactly as `lib/merkle-tree.js` does. Pure logic over a [`NodeSource`];
//! storage lives elsewhere.

use crate::crypto::{self, Hash, PublicKey, Signature};
use crate::log::flat::{self, Iter};
use crate::log::proof::{
    DataBlock, DataHash, DataSeek, DataUpgrade, Proof, ProofRequest, RequestBlock, MAX_PROOF_NODES,
};
use crate::log::LogError;

/// Longest log we accept: 2^32 entries. A signed head that claims more is refused, so a lying
/// peer cannot make us address absurd offsets.
pub const MAX_LENGTH: u64 = 1 << 32;

/// Highest flat-tree index of a node in a log of `MAX_LENGTH` entries, plus one.
const MAX_INDEX: u64 = 2 * MAX_LENGTH;

/// Upper bound on the iterations of any walk up or down the tree.
const MAX_WALK: usize = 128;

pub use crate::crypto::Node;

// The type lives in `crypto`, which hashes it; building parents belongs to the tree, since only
// hostile input makes it fail and the failure is the log's.
impl Node {
    /// The parent `index` of `a` and `b`; fails if their sizes overflow (only hostile input does that).
    pub fn parent(index: u64, a: &Node, b: &Node) -> Result<Node, LogError> {
        let size = a.size.checked_add(b.size).ok_or_else(|| {
            LogError::invalid_proof(format!("node sizes overflow at node {index}"))
        })?;
        Ok(Node {
            index,
            size,
            hash: crypto::parent_hash(a, b),
        })
    }
}

/// Looks up stored tree nodes. `Ok(None)` means the node is not stored.
pub trait NodeSource {
    fn node(&self, index: u64) -> Result<Option<Node>, LogError>;
}

/// The signed state of a tree: what a signature covers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TreeHead {
    pub fork: u64,
    pub length: u64,
    pub byte_length: u64,
    pub roots: Vec<Node>,
    pub signature: Option<Signature>,
}

impl TreeHead {
    pub fn hash(&self) -> Hash {
        crypto::tree_hash(&self.roots)
    }

    pub fn signable(&self) -> [u8; 80] {
        crypto::signable(&self.hash(), self.length, self.fork)
    }

    /// Appends a complete subtree root at the iterator position, merging equal-sized roots,
    /// the way `MerkleTreeBatch.appendRoot` does. New parents are pushed to `added`.
    pub fn append_root(
        &mut self,
        node: Node,
        ite: &mut Iter,
        added: &mut Vec<Node>,
    ) -> Result<(), LogError> {
        self.length = self
            .length
            .checked_add(ite.factor / 2)
            .filter(|l| *l <= MAX_LENGTH)
            .ok_or_else(|| LogError::invalid_proof("tree length exceeds the supported maximum"))?;
        self.byte_length = self
            .byte_length
            .checked_add(node.size)
            .ok_or_else(|| LogError::invalid_proof("byte length overflows"))?;
        self.roots.push(node);
        added.push(node);
        while self.roots.len() > 1 {
            let a = self.roots[self.roots.len() - 1];
            let b = self.roots[self.roots.len() - 2];
            if ite.sibling() != b.index {
                ite.sibling();
                break;
            }
            let parent = Node::parent(ite.parent(), &a, &b)?;
            added.push(parent);
            self.roots.pop();
            self.roots.pop();
            self.roots.push(parent);
        }
        Ok(())
    }

    /// Appends one block as a leaf; returns the nodes to store.
    pub fn append_block(&mut self, data: &[u8], added: &mut Vec<Node>) -> Result<(), LogError> {
        let leaf = Node::leaf(self.length, data);
        let mut ite = Iter::new(leaf.index);
        self.append_root(leaf, &mut ite, added)
    }
}

fn need(src: &dyn NodeSource, index: u64) -> Result<Node, LogError> {
    src.node(index)?.ok_or(LogError::MissingNode { index })
}

/// Byte offset of the first block under `index` (`MerkleTree.byteOffset`).
pub fn byte_offset(src: &dyn NodeSource, head: &TreeHead, index: u64) -> Result<u64, LogError> {
    if index == 2 * head.length {
        return Ok(head.byte_length);
    }
    let index = if index & 1 == 1 {
        flat::left_span(index)
    } else {
        index
    };
    let mut span_end = 0u64;
    // Checked sums: inner node sizes come from disk or a peer before anything verified them.
    let overflow = || LogError::invalid_request(format!("byte offset of node {index} overflows"));
    let mut offset = 0u64;
    for root in &head.roots {
        span_end += 2 * (root.index - span_end + 1);
        if index >= span_end {
            offset = offset.checked_add(root.size).ok_or_else(overflow)?;
            continue;
        }
        let mut ite = Iter::new(root.index);
        let mut steps = 0;
        while ite.index != index {
            steps += 1;
            if steps > MAX_WALK {
                return Err(LogError::invalid_request(format!(
                    "cannot find byte offset of node {index}"
                )));
            }
            if index < ite.index {
                ite.left_child();
            } else {
                offset = offset
                    .checked_add(need(src, ite.left_child())?.size)
                    .ok_or_else(overflow)?;
                ite.sibling();
            }
        }
        return Ok(offset);
    }
    Err(LogError::invalid_request(format!(
        "node {index} is outside the tree of length {}",
        head.length
    )))
}

struct Indexed {
    value: bool,
    index: u64,
    nodes: u64,
    last_index: u64,
}

#[derive(Default)]
struct Pending {
    node: Option<Vec<Node>>,
    seek: Option<Vec<Node>>,
    upgrade: Option<Vec<Node>>,
    additional: Option<Vec<Node>>,
}

/// Builds the proof answering `req` from a tree at `head` (`generateProof` in merkle-tree.js).
/// The block value, if any, is left empty for the caller to fill.
pub fn generate_proof(
    src: &dyn NodeSource,
    head: &TreeHead,
    req: &ProofRequest,
) -> Result<Proof, LogError> {
    let head2 = 2 * head.length;
    if head2 == 0 {
        return Ok(Proof {
            fork: head.fork,
            ..Proof::default()
        });
    }
    let (from, to) = match req.upgrade {
        Some(u) => {
            let from = u.start.checked_mul(2);
            let to = u
                .length
                .checked_mul(2)
                .and_then(|l| from.and_then(|f| f.checked_add(l)));
            match (from, to) {
                (Some(f), Some(t)) if f < t && t <= head2 => (f, t),
                _ => return Err(LogError::invalid_request("invalid upgrade")),
            }
        }
        None => (0, head2),
    };
    let node = match (req.block, req.hash) {
        (Some(b), _) => Some(Indexed {
            value: true,
            index: checked_leaf(b)?,
            nodes: b.nodes,
            last_index: b.index,
        }),
        (None, Some(h)) => {
            if h.index >= MAX_INDEX {
                return Err(LogError::invalid_request(format!(
                    "node {} is out of range",
                    h.index
                )));
            }
            Some(Indexed {
                value: false,
                index: h.index,
                nodes: h.nodes,
                last_index: flat::right_span(h.index) / 2,
            })
        }
        (None, None) => None,
    };
    if let (Some(_), Some(_), Some(n)) = (req.seek, req.upgrade, &node) {
        if n.index >= from {
            return Err(LogError::invalid_request(
                "cannot both do a seek and block/hash request when upgrading",
            ));
        }
    }

    let mut sub_tree = head2;
    let mut p = Pending::default();
    let seek = req.seek.is_some();

    match (&node, req.upgrade) {
        (Some(n), up) if up.is_none_or(|u| n.last_index < u.start) => {
            sub_tree = nodes_to_root(n.index, n.nodes, to)?;
            let seek_root = match req.seek {
                Some(s) => seek_untrusted_tree(src, head, sub_tree, s.bytes, s.padding)?,
                None => head2,
            };
            block_and_seek_proof(src, node.as_ref(), seek, seek_root, sub_tree, &mut p)?;
        }
        (_, Some(_)) if node.is_some() || seek => {
            sub_tree = match (req.seek, &node) {
                (Some(s), _) => seek_from_head(src, to, s.bytes, s.padding)?,
                (None, Some(n)) => n.index,
                (None, None) => head2,
            };
        }
        _ => {}
    }

    if req.upgrade.is_some() {
        upgrade_proof(src, node.as_ref(), seek, from, to, sub_tree, &mut p)?;
        if head2 > to {
            additional_upgrade_proof(src, to, head2, &mut p)?;
        }
    }

    let mut proof = Proof {
        fork: head.fork,
        ..Proof::default()
    };
    if let Some(b) = req.block {
        let nodes = p
            .node
            .take()
            .ok_or_else(|| LogError::invalid_request("invalid block request"))?;
        proof.block = Some(DataBlock {
            index: b.index,
            value: Vec::new(),
            nodes,
        });
    } else if let Some(h) = req.hash {
        let nodes = p
            .node
            .take()
            .ok_or_else(|| LogError::invalid_request("invalid hash request"))?;
        proof.hash = Some(DataHash {
            index: h.index,
            nodes,
        });
    }
    if let (Some(s), Some(nodes)) = (req.seek, p.seek.take()) {
        proof.seek = Some(DataSeek {
            bytes: s.bytes,
            nodes,
        });
    }
    if let Some(u) = req.upgrade {
        proof.upgrade = Some(DataUpgrade {
            start: u.start,
            length: u.length,
            nodes: p.upgrade.take().unwrap_or_default(),
            additional_nodes: p.additional.take().unwrap_or_default(),
            signature: head.signature,
        });
    }
    Ok(proof)
}

fn checked_leaf(b: RequestBlock) -> Result<u64, LogError> {
    if b.index >= MAX_LENGTH {
        return Err(LogError::invalid_request(format!(
            "block {} is out of range",
            b.index
        )));
    }
    Ok(2 * b.index)
}

fn nodes_to_root(index: u64, nodes: u64, head: u64) -> Result<u64, LogError> {
    if nodes > 64 {
        return Err(LogError::invalid_request("nodes is out of bounds"));
    }
    let mut ite = Iter::new(index);
    for _ in 0..nodes {
        ite.parent();
        if ite.contains(head) || ite.index >= MAX_INDEX {
            return Err(LogError::invalid_request("nodes is out of bounds"));
        }
    }
    Ok(ite.index)
}

fn walk_guard(steps: &mut usize) -> Result<(), LogError> {
    *steps += 1;
    if *steps > MAX_WALK {
        return Err(LogError::invalid_request("request does not fit the tree"));
    }
    Ok(())
}

fn seek_proof(
    src: &dyn NodeSource,
    seek_root: u64,
    root: u64,
    p: &mut Pending,
) -> Result<(), LogError> {
    let mut ite = Iter::new(seek_root);
    let mut nodes = vec![need(src, ite.index)?];
    let mut steps = 0;
    while ite.index != root {
        walk_guard(&mut steps)?;
        ite.sibling();
        nodes.push(need(src, ite.index)?);
        ite.parent();
    }
    p.seek = Some(nodes);
    Ok(())
}

fn block_and_seek_proof(
    src: &dyn NodeSource,
    node: Option<&Indexed>,
    seek: bool,
    seek_root: u64,
    root: u64,
    p: &mut Pending,
) -> Result<(), LogError> {
    let Some(node) = node else {
        return seek_proof(src, seek_root, root, p);
    };
    let mut ite = Iter::new(node.index);
    let mut nodes = Vec::new();
    if !node.value {
        nodes.push(need(src, ite.index)?);
    }
    let mut steps = 0;
    while ite.index != root {
        walk_guard(&mut steps)?;
        ite.sibling();
        if seek && ite.contains(seek_root) && ite.index != seek_root {
            seek_proof(src, seek_root, ite.index, p)?;
        } else {
            nodes.push(need(src, ite.index)?);
        }
        ite.parent();
    }
    p.node = Some(nodes);
    Ok(())
}

fn upgrade_proof(
    src: &dyn NodeSource,
    node: Option<&Indexed>,
    seek: bool,
    from: u64,
    to: u64,
    sub_tree: u64,
    p: &mut Pending,
) -> Result<(), LogError> {
    if from == 0 {
        p.upgrade = Some(Vec::new());
    }
    let mut ite = Iter::new(0);
    while ite.full_root(to) {
        if ite.index + ite.factor / 2 < from {
            ite.next_tree();
            continue;
        }
        if p.upgrade.is_none() && ite.contains(from - 2) {
            p.upgrade = Some(Vec::new());
            let root = ite.index;
            let target = from - 2;
            ite.seek(target);
            let mut steps = 0;
            while ite.index != root {
                walk_guard(&mut steps)?;
                ite.sibling();
                if ite.index > target {
                    if p.node.is_none() && p.seek.is_none() && ite.contains(sub_tree) {
                        block_and_seek_proof(src, node, seek, sub_tree, ite.index, p)?;
                    } else {
                        let n = need(src, ite.index)?;
                        p.upgrade.get_or_insert_with(Vec::new).push(n);
                    }
                }
                ite.parent();
            }
            ite.next_tree();
            continue;
        }
        if p.upgrade.is_none() {
            p.upgrade = Some(Vec::new());
        }
        if p.node.is_none() && p.seek.is_none() && ite.contains(sub_tree) {
            block_and_seek_proof(src, node, seek, sub_tree, ite.index, p)?;
            ite.next_tree();
            continue;
        }
        let n = need(src, ite.index)?;
        p.upgrade.get_or_insert_with(Vec::new).push(n);
        ite.next_tree();
    }
    Ok(())
}

fn additional_upgrade_proof(
    src: &dyn NodeSource,
    from: u64,
    to: u64,
    p: &mut Pending,
) -> Result<(), LogError> {
    let mut out: Option<Vec<Node>> = if from == 0 { Some(Vec::new()) } else { None };
    let mut ite = Iter::new(0);
    while ite.full_root(to) {
        if ite.index + ite.factor / 2 < from {
            ite.next_tree();
            continue;
        }
        if out.is_none() && ite.contains(from - 2) {
            let mut list = Vec::new();
            let root = ite.index;
            let target = from - 2;
            ite.seek(target);
            let mut steps = 0;
            while ite.index != root {
                walk_guard(&mut steps)?;
                ite.sibling();
                if ite.index > target {
                    list.push(need(src, ite.index)?);
                }
                ite.parent();
            }
            out = Some(list);
            ite.next_tree();
            continue;
        }
        out.get_or_insert_with(Vec::new).push(need(src, ite.index)?);
        ite.next_tree();
    }
    p.additional = out;
    Ok(())
}

fn unpadded(size: u64, padding: u64, leaves: u64) -> u64 {
    if padding == 0 {
        size
    } else {
        size.saturating_sub(padding.saturating_mul(leaves))
    }
}

fn seek_from_head(
    src: &dyn NodeSource,
    head: u64,
    mut bytes: u64,
    padding: u64,
) -> Result<u64, LogError> {
    for root in flat::full_roots(head) {
        let node = need(src, root)?;
        let size = unpadded(node.size, padding, flat::count_leaves(root));
        if bytes == size {
            return Ok(root);
        }
        if bytes > size {
            bytes -= size;
            continue;
        }
        return seek_trusted_tree(src, root, bytes, padding);
    }
    Ok(head)
}

fn seek_trusted_tree(
    src: &dyn NodeSource,
    root: u64,
    mut bytes: u64,
    padding: u64,
) -> Result<u64, LogError> {
    if bytes == 0 {
        return Ok(root);
    }
    let mut ite = Iter::new(root);
    let mut steps = 0;
    while ite.index & 1 != 0 {
        walk_guard(&mut steps)?;
        let left = src.node(ite.left_child())?;
        match left {
            Some(l) => {
                let size = unpadded(l.size, padding, ite.count_leaves());
                if size == bytes {
                    return Ok(ite.index);
                }
                if size > bytes {
                    continue;
                }
                bytes -= size;
                ite.sibling();
            }
            None => {
                ite.parent();
                return Ok(ite.index);
            }
        }
    }
    Ok(ite.index)
}

fn seek_untrusted_tree(
    src: &dyn NodeSource,
    head: &TreeHead,
    root: u64,
    bytes: u64,
    padding: u64,
) -> Result<u64, LogError> {
    let offset = byte_offset(src, head, root)?
        .saturating_sub(padding.saturating_mul(flat::left_span(root) / 2));
    if offset > bytes {
        return Err(LogError::invalid_request("invalid seek"));
    }
    if offset == bytes {
        return Ok(root);
    }
    let bytes = bytes - offset;
    let node = need(src, root)?;
    if unpadded(node.size, padding, flat::count_leaves(root)) <= bytes {
        return Err(LogError::invalid_request("invalid seek"));
    }
    seek_trusted_tree(src, root, bytes, padding)
}

/// What a proof established once its hashes (and signature, if it upgrades) checked out.
#[derive(Debug, Clone)]
pub struct VerifiedProof {
    /// Every node the proof carried or implied, to be stored.
    pub nodes: Vec<Node>,
    /// The new signed head, when the proof upgrades.
    pub upgrade: Option<TreeHead>,
    /// A subtree root the proof did not anchor to a signature: it must equal the stored node
    /// at its index before anything from this proof is kept.
    pub unverified_root: Option<Node>,
    /// The verified block, if the proof carried one.
    pub block: Option<(u64, Vec<u8>)>,
}

struct NodeQueue<'a> {
    nodes: &'a [Node],
    i: usize,
    extra: Option<Node>,
}

impl NodeQueue<'_> {
    fn remaining(&self) -> usize {
        self.nodes.len() - self.i + self.extra.is_some() as usize
    }

    fn shift(&mut self, index: u64) -> Result<Node, LogError> {
        if let Some(e) = self.extra {
            if e.index == index {
                self.extra = None;
                return Ok(e);
            }
        }
        let Some(node) = self.nodes.get(self.i) else {
            return Err(LogError::invalid_proof(format!(
                "expected node {index}, got none"
            )));
        };
        if node.index != index {
            return Err(LogError::invalid_proof(format!(
                "expected node {index}, got node {}",
                node.index
            )));
        }
        self.i += 1;
        Ok(*node)
    }
}

fn check_nodes(nodes: &[Node]) -> Result<(), LogError> {
    if nodes.len() > MAX_PROOF_NODES {
        return Err(LogError::invalid_proof(format!(
            "{} nodes in one list",
            nodes.len()
        )));
    }
    if let Some(n) = nodes.iter().find(|n| n.index >= MAX_INDEX) {
        return Err(LogError::invalid_proof(format!(
            "node index {} is out of range",
            n.index
        )));
    }
    // A node can hold no more than its leaves' worth of maximum-size blocks; anything larger
    // would make us address absurd byte offsets.
    let max_block = crate::log::MAX_BLOCK_BYTES as u64;
    if let Some(n) = nodes
        .iter()
        .find(|n| n.size > flat::count_leaves(n.index) * max_block)
    {
        return Err(LogError::invalid_proof(format!(
            "node {} claims {} bytes, more than its blocks can hold",
            n.index, n.size
        )));
    }
    Ok(())
}

fn climb(ite: &mut Iter) -> Result<u64, LogError> {
    if ite.factor >= MAX_INDEX {
        return Err(LogError::invalid_proof(
            "proof path climbs above the largest supported tree",
        ));
    }
    Ok(ite.parent())
}

/// `verifyTree`: hashes the block or node and the seek path up to one subtree root.
fn verify_tree(proof: &Proof, nodes: &mut Vec<Node>) -> Result<Option<Node>, LogError> {
    // (flat index, block value if any, path nodes)
    type Untrusted<'a> = (u64, Option<&'a [u8]>, &'a [Node]);
    let untrusted: Option<Untrusted<'_>> = match (&proof.block, &proof.hash) {
        (Some(b), _) => {
            if b.index >= MAX_LENGTH {
                return Err(LogError::invalid_proof(format!(
                    "block {} is out of range",
                    b.index
                )));
            }
            Some((2 * b.index, Some(&b.value), &b.nodes))
        }
        (None, Some(h)) => {
            if h.index >= MAX_INDEX {
                return Err(LogError::invalid_proof(format!(
                    "node {} is out of range",
                    h.index
                )));
            }
            Some((h.index, None, &h.nodes))
        }
        (None, None) => None,
    };
    let seek_nodes = proof
        .seek
        .as_ref()
        .map(|s| s.nodes.as_slice())
        .unwrap_or(&[]);
    check_nodes(seek_nodes)?;
    if untrusted.is_none() && seek_nodes.is_empty() {
        return Ok(None);
    }

    let mut root: Option<Node> = None;
    if let Some(first) = seek_nodes.first() {
        let mut ite = Iter::new(first.index);
        let mut q = NodeQueue {
            nodes: seek_nodes,
            i: 0,
            extra: None,
        };
        let mut r = q.shift(ite.index)?;
        nodes.push(r);
        while q.remaining() > 0 {
            let sib = q.shift(ite.sibling())?;
            r = Node::parent(climb(&mut ite)?, &r, &sib)?;
            nodes.push(sib);
            nodes.push(r);
        }
        root = Some(r);
    }

    let Some((index, value, path)) = untrusted else {
        return Ok(root);
    };
    check_nodes(path)?;
    let mut ite = Iter::new(index);
    let mut q = NodeQueue {
        nodes: path,
        i: 0,
        extra: root,
    };
    let mut r = match value {
        Some(v) => Node::leaf(index / 2, v),
        None => q.shift(ite.index)?,
    };
    nodes.push(r);
    while q.remaining() > 0 {
        let sib = q.shift(ite.sibling())?;
        r = Node::parent(climb(&mut ite)?, &r, &sib)?;
        nodes.push(sib);
        nodes.push(r);
    }
    Ok(Some(r))
}

/// `verifyUpgrade`: grows `batch` (a copy of the local head) with the upgrade's roots.
/// Returns true when the block/seek root was consumed (anchored by the signature).
fn verify_upgrade(
    fork: u64,
    upgrade: &DataUpgrade,
    block_root: Option<Node>,
    batch: &mut TreeHead,
    added: &mut Vec<Node>,
) -> Result<bool, LogError> {
    check_nodes(&upgrade.nodes)?;
    check_nodes(&upgrade.additional_nodes)?;
    let to = upgrade
        .start
        .checked_add(upgrade.length)
        .filter(|l| *l <= MAX_LENGTH && *l > 0)
        .ok_or_else(|| LogError::invalid_proof("upgrade length is out of range"))?
        * 2;
    let mut q = NodeQueue {
        nodes: &upgrade.nodes,
        i: 0,
        extra: block_root,
    };
    let mut grow = !batch.roots.is_empty();
    let mut i = 0;
    let mut ite = Iter::new(0);
    while ite.full_root(to) {
        if i < batch.roots.len() && batch.roots[i].index == ite.index {
            i += 1;
            ite.next_tree();
            continue;
        }
        if grow {
            grow = false;
            let root = ite.index;
            if i < batch.roots.len() {
                let last = batch.roots[batch.roots.len() - 1].index;
                ite.seek(last);
                let mut steps = 0;
                while ite.index != root {
                    walk_guard(&mut steps)?;
                    let n = q.shift(ite.sibling())?;
                    batch.append_root(n, &mut ite, added)?;
                }
                ite.next_tree();
                continue;
            }
        }
        let n = q.shift(ite.index)?;
        batch.append_root(n, &mut ite, added)?;
        ite.next_tree();
    }

    let extra = &upgrade.additional_nodes;
    let last = batch
        .roots
        .last()
        .ok_or_else(|| LogError::invalid_proof("upgrade produced no roots"))?
        .index;
    ite.seek(last);
    let mut i = 0;
    while i < extra.len() && extra[i].index == ite.sibling() {
        batch.append_root(extra[i], &mut ite, added)?;
        i += 1;
    }
    while i < extra.len() {
        let node = extra[i];
        i += 1;
        let mut steps = 0;
        while node.index != ite.index {
            walk_guard(&mut steps)?;
            if ite.factor == 2 {
                return Err(LogError::invalid_proof(format!(
                    "unexpected node {}",
                    node.index
                )));
            }
            ite.left_child();
        }
        batch.append_root(node, &mut ite, added)?;
        ite.sibling();
    }
    batch.signature = upgrade.signature;
    batch.fork = fork;
    Ok(q.extra.is_none())
}

/// Verifies a proof against the local signed head (`MerkleTree.verify` plus the signature check
/// of `core.js`). Nothing is stored here; the caller stores what comes back.
pub fn verify_proof(
    proof: &Proof,
    local: &TreeHead,
    key: &PublicKey,
) -> Result<VerifiedProof, LogError> {
    if proof.fork >= 1 << 62 {
        // Forks grow by one per truncate; the header refuses larger values, so do proofs.
        return Err(LogError::invalid_proof(format!(
            "fork {} is out of range",
            proof.fork
        )));
    }
    let mut nodes = Vec::new();
    let mut unverified = verify_tree(proof, &mut nodes)?;
    let mut upgrade = None;
    if let Some(u) = &proof.upgrade {
        if proof.fork != local.fork && local.length > 0 {
            return Err(LogError::ForkMismatch {
                local: local.fork,
                remote: proof.fork,
            });
        }
        let mut batch = TreeHead {
            fork: proof.fork,
            ..local.clone()
        };
        if verify_upgrade(proof.fork, u, unverified, &mut batch, &mut nodes)? {
            unverified = None;
        }
        let signature = batch
            .signature
            .ok_or_else(|| LogError::invalid_proof("upgrade carries no signature"))?;
        if !key.verify(&batch.signable(), &signature) {
            return Err(LogError::InvalidSignature {
                length: batch.length,
                fork: batch.fork,
            });
        }
        upgrade = Some(batch);
    } else if proof.fork != local.fork {
        return Err(LogError::ForkMismatch {
            local: local.fork,
            remote: proof.fork,
        });
    }
    let block = proof.block.as_ref().map(|b| (b.index, b.value.clone()));
    Ok(VerifiedProof {
        nodes,
        upgrade,
        unverified_root: unverified,
        block,
    })
}
