//! A replica's side of proofs: answering a peer's requests from the stored tree, and verifying
//! and storing a peer's proofs in batches that share one round of syncs.

use std::collections::HashMap;
use std::sync::Arc;

use crate::log::header::Header;
use crate::log::{
    tree, write_nodes, DiskNodes, Log, LogError, Node, NodeSource, Overlay, Proof, ProofRequest,
    TreeHead, VerifiedProof,
};

impl Log {
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
