//! The `data` message (a proof, `lib/messages.js` `wire.data`) in one codec: the guard parses
//! every proof a peer sends with [`decode_data`], the JS vectors compare [`encode_data`] with
//! what JS Hypercore writes, and the `proof_verify` fuzz target feeds `decode_data` hostile
//! bytes. Also here: conversions between the wire's proof types (`hypercore_schema`, which
//! `hypercore-protocol` encodes) and the log's.

use compact_encoding::CompactEncoding;
use hypercore_protocol::schema::{Data, Request};
use hypercore_protocol::Message;
use hypercore_schema::{DataBlock, DataHash, DataSeek, DataUpgrade, Node as WireNode};

use super::reader::Reader;
use super::{bad, WireError};
use crate::log::{self, Proof, ProofRequest, MAX_BLOCK_BYTES};

/// The `data` flags this codec knows: block, hash, seek, upgrade. JS also defines 16, a
/// manifest, sent only to a peer that asks for it; compat cores have none and we never ask, so
/// it is refused like any flag JS does not define.
const KNOWN_FLAGS: u64 = 0b1111;

/// Decodes an untrusted `data` message body (after its type byte); returns the request id and
/// the proof. Every count and length is bounded before anything is allocated, node indexes stay
/// inside the largest tree the log accepts, and bytes after the message are refused.
pub fn decode_data(bytes: &[u8]) -> Result<(u64, Proof), WireError> {
    let mut r = Reader::new(bytes);
    let flags = r.uint()?;
    if flags & !KNOWN_FLAGS != 0 {
        return Err(bad(format!("unsupported data flags {flags:#x}")));
    }
    let request = r.uint()?;
    let fork = r.uint()?;
    let block = if flags & 1 != 0 {
        let index = r.uint()?;
        let value = r.buffer(MAX_BLOCK_BYTES)?.to_vec();
        Some(log::DataBlock {
            index,
            value,
            nodes: r.nodes()?,
        })
    } else {
        None
    };
    let hash = if flags & 2 != 0 {
        Some(log::DataHash {
            index: r.uint()?,
            nodes: r.nodes()?,
        })
    } else {
        None
    };
    let seek = if flags & 4 != 0 {
        Some(log::DataSeek {
            bytes: r.uint()?,
            nodes: r.nodes()?,
        })
    } else {
        None
    };
    let upgrade = if flags & 8 != 0 {
        let start = r.uint()?;
        let length = r.uint()?;
        let nodes = r.nodes()?;
        let additional_nodes = r.nodes()?;
        Some(log::DataUpgrade {
            start,
            length,
            nodes,
            additional_nodes,
            signature: signature(r.buffer(64)?)?,
        })
    } else {
        None
    };
    if !r.is_empty() {
        return Err(bad(format!(
            "{} trailing bytes after the data message",
            r.remaining()
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

/// Encodes a proof as the `data` answer to request `request`, with the encoder
/// `hypercore-protocol` sends it with.
pub fn encode_data(request: u64, proof: &Proof) -> Result<Vec<u8>, WireError> {
    let data = proof_to_data(request, proof.clone());
    let size = data
        .encoded_size()
        .map_err(|e| bad(format!("cannot encode: {e}")))?;
    let mut out = vec![0u8; size];
    data.encode(&mut out)
        .map_err(|e| bad(format!("cannot encode: {e}")))?;
    Ok(out)
}

/// An upgrade's signature: none, or exactly 64 bytes.
fn signature(bytes: &[u8]) -> Result<Option<crate::crypto::Signature>, WireError> {
    match bytes.len() {
        0 => Ok(None),
        64 => {
            let mut s = [0u8; 64];
            s.copy_from_slice(bytes);
            Ok(Some(s))
        }
        n => Err(bad(format!("signature of {n} bytes"))),
    }
}

pub fn request_to_log(r: &Request) -> ProofRequest {
    ProofRequest {
        block: r.block.as_ref().map(|b| log::RequestBlock {
            index: b.index,
            nodes: b.nodes,
        }),
        hash: r.hash.as_ref().map(|b| log::RequestBlock {
            index: b.index,
            nodes: b.nodes,
        }),
        seek: r.seek.as_ref().map(|s| log::RequestSeek {
            bytes: s.bytes,
            padding: 0,
        }),
        upgrade: r.upgrade.as_ref().map(|u| log::RequestUpgrade {
            start: u.start,
            length: u.length,
        }),
    }
}

fn node_to_wire(n: &log::Node) -> WireNode {
    WireNode::new(n.index, n.hash.to_vec(), n.size)
}

fn nodes_to_wire(nodes: &[log::Node]) -> Vec<WireNode> {
    nodes.iter().map(node_to_wire).collect()
}

fn node_from_wire(n: &WireNode) -> Result<log::Node, WireError> {
    let hash: [u8; 32] = n
        .hash
        .as_slice()
        .try_into()
        .map_err(|_| bad(format!("node hash of {} bytes", n.hash.len())))?;
    Ok(log::Node {
        index: n.index,
        size: n.length,
        hash,
    })
}

fn nodes_from_wire(nodes: &[WireNode]) -> Result<Vec<log::Node>, WireError> {
    nodes.iter().map(node_from_wire).collect()
}

/// A proof as the `data` answer to request `request`.
pub fn proof_to_data(request: u64, p: Proof) -> Data {
    Data {
        request,
        fork: p.fork,
        block: p.block.map(|b| DataBlock {
            index: b.index,
            nodes: nodes_to_wire(&b.nodes),
            value: b.value,
        }),
        hash: p.hash.map(|h| DataHash {
            index: h.index,
            nodes: nodes_to_wire(&h.nodes),
        }),
        seek: p.seek.map(|s| DataSeek {
            bytes: s.bytes,
            nodes: nodes_to_wire(&s.nodes),
        }),
        upgrade: p.upgrade.map(|u| DataUpgrade {
            start: u.start,
            length: u.length,
            nodes: nodes_to_wire(&u.nodes),
            additional_nodes: nodes_to_wire(&u.additional_nodes),
            signature: u.signature.map(|s| s.to_vec()).unwrap_or_default(),
        }),
    }
}

/// The proof carried by a `data` message.
pub fn data_to_proof(d: Data) -> Result<Proof, WireError> {
    Ok(Proof {
        fork: d.fork,
        block: match d.block {
            Some(b) => Some(log::DataBlock {
                index: b.index,
                nodes: nodes_from_wire(&b.nodes)?,
                value: b.value,
            }),
            None => None,
        },
        hash: match d.hash {
            Some(h) => Some(log::DataHash {
                index: h.index,
                nodes: nodes_from_wire(&h.nodes)?,
            }),
            None => None,
        },
        seek: match d.seek {
            Some(s) => Some(log::DataSeek {
                bytes: s.bytes,
                nodes: nodes_from_wire(&s.nodes)?,
            }),
            None => None,
        },
        upgrade: match d.upgrade {
            Some(u) => Some(log::DataUpgrade {
                start: u.start,
                length: u.length,
                nodes: nodes_from_wire(&u.nodes)?,
                additional_nodes: nodes_from_wire(&u.additional_nodes)?,
                signature: signature(&u.signature)?,
            }),
            None => None,
        },
    })
}

/// Rough encoded size of a message, for keeping frames small.
pub fn approx_size(m: &Message) -> usize {
    match m {
        Message::Data(d) => {
            let nodes = |n: &[WireNode]| n.len() * 42;
            64 + d
                .block
                .as_ref()
                .map(|b| b.value.len() + nodes(&b.nodes))
                .unwrap_or(0)
                + d.hash.as_ref().map(|h| nodes(&h.nodes)).unwrap_or(0)
                + d.seek.as_ref().map(|s| nodes(&s.nodes)).unwrap_or(0)
                + d.upgrade
                    .as_ref()
                    .map(|u| 80 + nodes(&u.nodes) + nodes(&u.additional_nodes))
                    .unwrap_or(0)
        }
        Message::Bitfield(b) => 16 + 4 * b.bitfield.len(),
        _ => 32,
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn node() -> impl Strategy<Value = log::Node> {
        (0..2 * log::MAX_LENGTH, any::<u64>(), any::<[u8; 32]>())
            .prop_map(|(index, size, hash)| log::Node { index, size, hash })
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
                block: block.map(|(index, value, nodes)| log::DataBlock {
                    index,
                    value,
                    nodes,
                }),
                hash: hash.map(|(index, nodes)| log::DataHash { index, nodes }),
                seek: seek.map(|(bytes, nodes)| log::DataSeek { bytes, nodes }),
                upgrade: upgrade.map(|(start, length, nodes, additional_nodes, sig)| {
                    log::DataUpgrade {
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
                    }
                }),
            })
    }

    proptest! {
        #[test]
        fn any_proof_round_trips(p in proof(), req in any::<u64>()) {
            let bytes = encode_data(req, &p).unwrap();
            let (r, back) = decode_data(&bytes).unwrap();
            prop_assert_eq!(r, req);
            prop_assert_eq!(&back, &p);
            // What hypercore-protocol decodes from these bytes is the same proof.
            let (d, rest) = Data::decode(&bytes).unwrap();
            prop_assert!(rest.is_empty());
            prop_assert_eq!(data_to_proof(d).unwrap(), p);
        }

        #[test]
        fn decoding_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_data(&bytes);
        }
    }

    /// A block with one node, then an upgrade with no nodes and no signature.
    fn small() -> Vec<u8> {
        let p = Proof {
            fork: 0,
            block: Some(log::DataBlock {
                index: 1,
                value: b"abc".to_vec(),
                nodes: vec![log::Node {
                    index: 2,
                    size: 3,
                    hash: [4; 32],
                }],
            }),
            upgrade: Some(log::DataUpgrade {
                start: 0,
                length: 2,
                nodes: vec![],
                additional_nodes: vec![],
                signature: None,
            }),
            ..Proof::default()
        };
        encode_data(7, &p).unwrap()
    }

    #[test]
    fn a_manifest_or_unknown_flag_is_refused() {
        let mut b = small();
        assert!(decode_data(&b).is_ok());
        for flag in [16u8, 32, 128] {
            b[0] |= flag;
            let e = decode_data(&b).unwrap_err();
            assert!(e.0.contains("unsupported data flags"), "{e}");
            b[0] &= !flag;
        }
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut b = small();
        b.push(0);
        let e = decode_data(&b).unwrap_err();
        assert!(e.0.contains("1 trailing bytes"), "{e}");
    }

    #[test]
    fn a_node_past_the_largest_tree_is_refused() {
        let mut b = small();
        // flags, request, fork, index, value (4 bytes), count: the node's index follows.
        let at = 1 + 1 + 1 + 1 + 4 + 1;
        assert_eq!(b[at], 2);
        let mut far = b[..at].to_vec();
        super::super::reader::push_uint(&mut far, 2 * log::MAX_LENGTH);
        far.extend_from_slice(&b[at + 1..]);
        b = far;
        let e = decode_data(&b).unwrap_err();
        assert!(e.0.contains("out of range"), "{e}");
    }

    #[test]
    fn a_short_signature_is_refused() {
        let mut b = small();
        let last = b.len() - 1;
        assert_eq!(b[last], 0, "no signature");
        b[last] = 3;
        b.extend([1, 2, 3]);
        let e = decode_data(&b).unwrap_err();
        assert!(e.0.contains("signature of 3 bytes"), "{e}");
    }

    #[test]
    fn proof_round_trips_through_the_wire_types() {
        let node = log::Node {
            index: 3,
            size: 9,
            hash: [5; 32],
        };
        let p = Proof {
            fork: 2,
            block: Some(log::DataBlock {
                index: 1,
                value: b"abc".to_vec(),
                nodes: vec![node],
            }),
            hash: None,
            seek: None,
            upgrade: Some(log::DataUpgrade {
                start: 0,
                length: 4,
                nodes: vec![node],
                additional_nodes: vec![],
                signature: Some([1; 64]),
            }),
        };
        let d = proof_to_data(11, p.clone());
        assert_eq!(d.request, 11);
        assert_eq!(data_to_proof(d).unwrap(), p);
    }
}
