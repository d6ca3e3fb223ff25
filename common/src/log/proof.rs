//! Proof requests and proofs, the same shapes Hypercore exchanges, and their wire encoding
//! (the `data` message of `lib/messages.js`, compact-encoded) so they can be compared byte for byte.

use crate::crypto::{Hash, Signature};
use crate::log::{LogError, Node};

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

impl Proof {
    /// Encodes as Hypercore's wire `data` message (request id first, no manifest).
    pub fn encode_wire(&self, request: u64) -> Vec<u8> {
        let mut e = Encoder::default();
        let flags = (self.block.is_some() as u64)
            | (self.hash.is_some() as u64) << 1
            | (self.seek.is_some() as u64) << 2
            | (self.upgrade.is_some() as u64) << 3;
        e.uint(flags);
        e.uint(request);
        e.uint(self.fork);
        if let Some(b) = &self.block {
            e.uint(b.index);
            e.buffer(&b.value);
            e.nodes(&b.nodes);
        }
        if let Some(h) = &self.hash {
            e.uint(h.index);
            e.nodes(&h.nodes);
        }
        if let Some(s) = &self.seek {
            e.uint(s.bytes);
            e.nodes(&s.nodes);
        }
        if let Some(u) = &self.upgrade {
            e.uint(u.start);
            e.uint(u.length);
            e.nodes(&u.nodes);
            e.nodes(&u.additional_nodes);
            match &u.signature {
                Some(sig) => e.buffer(sig),
                None => e.uint(0),
            }
        }
        e.out
    }

    /// Decodes an untrusted wire `data` message; returns the request id and the proof.
    /// Sizes are bounded before anything is allocated; a manifest (flag 16) is refused since
    /// compat-mode cores have none.
    pub fn decode_wire(bytes: &[u8]) -> Result<(u64, Proof), LogError> {
        let mut d = Decoder { buf: bytes, pos: 0 };
        let flags = d.uint()?;
        if flags & !0b1111 != 0 {
            return Err(LogError::malformed(format!(
                "unsupported data flags {flags:#x}"
            )));
        }
        let request = d.uint()?;
        let fork = d.uint()?;
        let block = if flags & 1 != 0 {
            let index = d.uint()?;
            let value = d.buffer(MAX_BLOCK_BYTES)?.to_vec();
            let nodes = d.nodes()?;
            Some(DataBlock {
                index,
                value,
                nodes,
            })
        } else {
            None
        };
        let hash = if flags & 2 != 0 {
            Some(DataHash {
                index: d.uint()?,
                nodes: d.nodes()?,
            })
        } else {
            None
        };
        let seek = if flags & 4 != 0 {
            Some(DataSeek {
                bytes: d.uint()?,
                nodes: d.nodes()?,
            })
        } else {
            None
        };
        let upgrade = if flags & 8 != 0 {
            let start = d.uint()?;
            let length = d.uint()?;
            let nodes = d.nodes()?;
            let additional_nodes = d.nodes()?;
            let sig = d.buffer(64)?;
            let signature = match sig.len() {
                0 => None,
                64 => {
                    let mut s = [0u8; 64];
                    s.copy_from_slice(sig);
                    Some(s)
                }
                n => {
                    return Err(LogError::malformed(format!(
                        "signature is {n} bytes, expected 64"
                    )))
                }
            };
            Some(DataUpgrade {
                start,
                length,
                nodes,
                additional_nodes,
                signature,
            })
        } else {
            None
        };
        if d.pos != bytes.len() {
            return Err(LogError::malformed(format!(
                "{} trailing bytes after the data message",
                bytes.len() - d.pos
            )));
        }
        Ok((
            request,
            Proof {
                fork,
                block,
                hash,
                seek,
                upgrade,
            },
        ))
    }
}

#[derive(Default)]
struct Encoder {
    out: Vec<u8>,
}

impl Encoder {
    fn uint(&mut self, n: u64) {
        if n <= 0xfc {
            self.out.push(n as u8);
        } else if n <= 0xffff {
            self.out.push(0xfd);
            self.out.extend_from_slice(&(n as u16).to_le_bytes());
        } else if n <= 0xffff_ffff {
            self.out.push(0xfe);
            self.out.extend_from_slice(&(n as u32).to_le_bytes());
        } else {
            self.out.push(0xff);
            self.out.extend_from_slice(&n.to_le_bytes());
        }
    }

    fn buffer(&mut self, b: &[u8]) {
        self.uint(b.len() as u64);
        self.out.extend_from_slice(b);
    }

    fn nodes(&mut self, nodes: &[Node]) {
        self.uint(nodes.len() as u64);
        for n in nodes {
            self.uint(n.index);
            self.uint(n.size);
            self.out.extend_from_slice(&n.hash);
        }
    }
}

struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], LogError> {
        if self.buf.len() - self.pos < n {
            return Err(LogError::malformed(format!(
                "message ends after {} bytes, {} more expected",
                self.buf.len(),
                n - (self.buf.len() - self.pos)
            )));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn uint(&mut self) -> Result<u64, LogError> {
        let a = self.take(1)?[0];
        Ok(match a {
            0..=0xfc => a as u64,
            0xfd => u16::from_le_bytes(self.fixed::<2>()?) as u64,
            0xfe => u32::from_le_bytes(self.fixed::<4>()?) as u64,
            0xff => u64::from_le_bytes(self.fixed::<8>()?),
        })
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], LogError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn buffer(&mut self, max: usize) -> Result<&'a [u8], LogError> {
        let len = self.uint()?;
        if len > max as u64 {
            return Err(LogError::malformed(format!(
                "buffer of {len} bytes exceeds the limit of {max}"
            )));
        }
        self.take(len as usize)
    }

    fn nodes(&mut self) -> Result<Vec<Node>, LogError> {
        let count = self.uint()?;
        if count > MAX_PROOF_NODES as u64 {
            return Err(LogError::malformed(format!(
                "{count} nodes in one proof list exceeds the limit of {MAX_PROOF_NODES}"
            )));
        }
        let mut nodes = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let index = self.uint()?;
            let size = self.uint()?;
            let hash: Hash = self.fixed::<32>()?;
            nodes.push(Node { index, size, hash });
        }
        Ok(nodes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn node() -> impl Strategy<Value = Node> {
        (any::<u64>(), any::<u64>(), any::<[u8; 32]>()).prop_map(|(index, size, hash)| Node {
            index,
            size,
            hash,
        })
    }

    fn proof() -> impl Strategy<Value = Proof> {
        let nodes = || prop::collection::vec(node(), 0..5);
        (
            any::<u64>(),
            prop::option::of((
                any::<u64>(),
                prop::collection::vec(any::<u8>(), 0..300),
                nodes(),
            )),
            prop::option::of((any::<u64>(), nodes())),
            prop::option::of((any::<u64>(), nodes())),
            prop::option::of((
                any::<u64>(),
                any::<u64>(),
                nodes(),
                nodes(),
                prop::option::of(any::<[u8; 32]>()),
            )),
        )
            .prop_map(|(fork, block, hash, seek, upgrade)| Proof {
                fork,
                block: block.map(|(index, value, nodes)| DataBlock {
                    index,
                    value,
                    nodes,
                }),
                hash: hash.map(|(index, nodes)| DataHash { index, nodes }),
                seek: seek.map(|(bytes, nodes)| DataSeek { bytes, nodes }),
                upgrade: upgrade.map(
                    |(start, length, nodes, additional_nodes, sig)| DataUpgrade {
                        start,
                        length,
                        nodes,
                        additional_nodes,
                        signature: sig.map(|h| {
                            let mut s = [0u8; 64];
                            s[..32].copy_from_slice(&h);
                            s[32..].copy_from_slice(&h);
                            s
                        }),
                    },
                ),
            })
    }

    proptest! {
        #[test]
        fn wire_round_trip(p in proof(), req in any::<u64>()) {
            let bytes = p.encode_wire(req);
            let (r, back) = Proof::decode_wire(&bytes).unwrap();
            prop_assert_eq!(r, req);
            prop_assert_eq!(back, p);
        }

        #[test]
        fn decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = Proof::decode_wire(&bytes);
        }
    }
}
