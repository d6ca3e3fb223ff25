//! Evidence that a writer signed two heads that cannot both be true: the proof a replica keeps
//! when a peer shows it a head, on the same fork, whose tree at the replica's length differs from
//! the replica's own signed head. A single-writer log must never do that (a truncate starts a new
//! fork), so such a pair means the key signed two histories; the replica keeps its own, flags the
//! archive and never merges the other.
//!
//! Each record holds both signed heads in a form anyone with the public key can re-verify: the
//! local head (its roots and signature) and the other as an upgrade proof from length 0 (the
//! roots at the local length, the nodes that grow them to the other head, and its signature).
//! Records live in the archive's small `forks` file, each `u32le length || body || u32le CRC32C`,
//! at most [`MAX_RECORDS`] of them.
//!
//! Also here, the log's side of forks: following a writer's truncate to a new fork
//! ([`Log::apply_fork`]) and recording evidence of equivocation ([`Log::check_conflict`]).

use std::sync::Arc;

use crate::crypto::{self, PublicKey};
use crate::log::header::{Header, NODES_OFFSET, NODE_BYTES};
use crate::log::proof::{DataUpgrade, Proof, MAX_PROOF_NODES};
use crate::log::tree::{verify_proof, Node, NodeSource, TreeHead};
use crate::log::{flat, write_nodes, DiskNodes, Log, LogError};

/// Records kept per archive: the first ones prove the fork; more add nothing.
pub const MAX_RECORDS: usize = 4;

/// Largest encoded record: two heads of at most 64 roots plus two node lists.
pub const MAX_RECORD_BYTES: usize = 64 * 1024;

const MAGIC: &[u8; 4] = b"FKv1";

/// Two signed heads of one archive, on one fork, that disagree at the local length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForkEvidence {
    /// The head this replica held when the other one arrived (signature included).
    pub local: TreeHead,
    /// The fork both heads claim.
    pub fork: u64,
    /// The other head as a proof from length 0: `nodes` are its roots at `local.length`,
    /// `additional_nodes` grow them to its own length, `signature` signs that head.
    pub remote: DataUpgrade,
}

impl ForkEvidence {
    /// The other head, once both signatures and the disagreement are checked against `key`.
    pub fn verify(&self, key: &PublicKey) -> Result<TreeHead, LogError> {
        let local = &self.local;
        if local.fork != self.fork || local.length == 0 {
            return Err(LogError::invalid_proof(
                "evidence heads are not on one fork",
            ));
        }
        let want: Vec<u64> = flat::full_roots(2 * local.length);
        if local.roots.iter().map(|r| r.index).ne(want.iter().copied()) {
            return Err(LogError::invalid_proof(
                "local head's roots do not fit its length",
            ));
        }
        let sig = local
            .signature
            .ok_or_else(|| LogError::invalid_proof("local head is unsigned"))?;
        if !key.verify(&local.signable(), &sig) {
            return Err(LogError::InvalidSignature {
                length: local.length,
                fork: local.fork,
            });
        }
        let remote = remote_head(self.fork, &self.remote, local.length, key)?;
        if crypto::tree_hash(&self.remote.nodes) == local.hash() {
            return Err(LogError::invalid_proof(
                "the other head extends the local one: no fork",
            ));
        }
        Ok(remote)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1024);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.fork.to_le_bytes());
        out.extend_from_slice(&self.local.length.to_le_bytes());
        out.extend_from_slice(&self.local.signature.unwrap_or([0; 64]));
        put_nodes(&mut out, &self.local.roots);
        out.extend_from_slice(&self.remote.length.to_le_bytes());
        out.extend_from_slice(&self.remote.signature.unwrap_or([0; 64]));
        put_nodes(&mut out, &self.remote.nodes);
        put_nodes(&mut out, &self.remote.additional_nodes);
        out
    }

    /// Decodes a record; bounds every count before allocating.
    pub fn decode(buf: &[u8]) -> Result<ForkEvidence, LogError> {
        let mut r = Cursor { buf, pos: 0 };
        if r.take(4)? != MAGIC {
            return Err(LogError::malformed("fork evidence has an unknown format"));
        }
        let fork = r.u64()?;
        let length = r.u64()?;
        let signature = r.sig()?;
        let roots = r.nodes()?;
        let remote_length = r.u64()?;
        let remote_sig = r.sig()?;
        let nodes = r.nodes()?;
        let additional_nodes = r.nodes()?;
        if r.pos != buf.len() {
            return Err(LogError::malformed("fork evidence has trailing bytes"));
        }
        let byte_length = roots
            .iter()
            .try_fold(0u64, |a, n| a.checked_add(n.size))
            .ok_or_else(|| LogError::malformed("fork evidence sizes overflow"))?;
        Ok(ForkEvidence {
            local: TreeHead {
                fork,
                length,
                byte_length,
                roots,
                signature: Some(signature),
            },
            fork,
            remote: DataUpgrade {
                start: 0,
                length: remote_length,
                nodes,
                additional_nodes,
                signature: Some(remote_sig),
            },
        })
    }
}

/// Verifies an upgrade proof from length 0 to `length` (plus its additional nodes) on its own,
/// without any local state, and returns the head it proves.
pub(crate) fn remote_head(
    fork: u64,
    upgrade: &DataUpgrade,
    length: u64,
    key: &PublicKey,
) -> Result<TreeHead, LogError> {
    if upgrade.start != 0 || upgrade.length != length {
        return Err(LogError::invalid_proof(format!(
            "fork proof covers {}..{}, not 0..{length}",
            upgrade.start,
            upgrade.start.saturating_add(upgrade.length)
        )));
    }
    let want = flat::full_roots(2 * length);
    if upgrade
        .nodes
        .iter()
        .map(|r| r.index)
        .ne(want.iter().copied())
    {
        return Err(LogError::invalid_proof(
            "fork proof's nodes are not the roots of its length",
        ));
    }
    let proof = Proof {
        fork,
        upgrade: Some(upgrade.clone()),
        ..Proof::default()
    };
    let empty = TreeHead {
        fork,
        ..TreeHead::default()
    };
    let v = verify_proof(&proof, &empty, key)?;
    v.upgrade
        .ok_or_else(|| LogError::invalid_proof("fork proof carries no head"))
}

fn put_nodes(out: &mut Vec<u8>, nodes: &[Node]) {
    out.extend_from_slice(&(nodes.len() as u32).to_le_bytes());
    for n in nodes {
        out.extend_from_slice(&n.index.to_le_bytes());
        out.extend_from_slice(&n.size.to_le_bytes());
        out.extend_from_slice(&n.hash);
    }
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], LogError> {
        if self.buf.len() - self.pos < n {
            return Err(LogError::malformed("fork evidence is cut short"));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u64(&mut self) -> Result<u64, LogError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }

    fn sig(&mut self) -> Result<crypto::Signature, LogError> {
        let mut s = [0u8; 64];
        s.copy_from_slice(self.take(64)?);
        Ok(s)
    }

    fn nodes(&mut self) -> Result<Vec<Node>, LogError> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.take(4)?);
        let n = u32::from_le_bytes(a) as usize;
        if n > MAX_PROOF_NODES || n * 48 > self.buf.len() - self.pos {
            return Err(LogError::malformed(format!(
                "fork evidence claims {n} nodes"
            )));
        }
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let index = self.u64()?;
            let size = self.u64()?;
            let mut hash = [0u8; 32];
            hash.copy_from_slice(self.take(32)?);
            out.push(Node { index, size, hash });
        }
        Ok(out)
    }
}

/// Splits the `forks` file into its records, skipping any that is torn or fails its CRC.
pub(crate) fn decode_file(buf: &[u8]) -> Vec<ForkEvidence> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while buf.len() - pos >= 8 && out.len() < MAX_RECORDS {
        let mut a = [0u8; 4];
        a.copy_from_slice(&buf[pos..pos + 4]);
        let len = u32::from_le_bytes(a) as usize;
        if len > MAX_RECORD_BYTES || buf.len() - pos - 4 < len + 4 {
            break;
        }
        let body = &buf[pos + 4..pos + 4 + len];
        a.copy_from_slice(&buf[pos + 4 + len..pos + 8 + len]);
        pos += 8 + len;
        if crc32c::crc32c(body) != u32::from_le_bytes(a) {
            continue;
        }
        if let Ok(e) = ForkEvidence::decode(body) {
            out.push(e);
        }
    }
    out
}

/// One record as stored in the `forks` file.
pub(crate) fn encode_record(e: &ForkEvidence) -> Vec<u8> {
    let body = e.encode();
    let mut out = Vec::with_capacity(body.len() + 8);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
    out
}

impl Log {
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
    /// [`MAX_RECORDS`]) and returned. `Ok(None)` means the peer's head extends ours. An
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
        remote_head(proof.fork, upgrade, local.length, &self.key)?;
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
        if kept.len() < MAX_RECORDS && !kept.contains(&evidence) {
            if let Some(f) = &self.forks {
                let record = encode_record(&evidence);
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
        let new_head = remote_head(proof.fork, upgrade, length, &self.key)?;
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
}
