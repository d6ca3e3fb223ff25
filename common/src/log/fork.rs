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

use crate::crypto::{self, PublicKey};
use crate::log::proof::{DataUpgrade, Proof, MAX_PROOF_NODES};
use crate::log::tree::{verify_proof, Node, TreeHead};
use crate::log::{flat, LogError};

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
