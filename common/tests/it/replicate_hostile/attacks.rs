//! The scenarios of the hostile-peer table: which log a fake writer answers from, how it
//! mutates each answer or what it floods, and what the node must do about it.

use super::*;

// ---------------------------------------------------------------------------------------------
// The scenarios.

/// Which log a fake writer answers from.
#[derive(Clone, Copy)]
pub(super) enum Src {
    Honest,
    Old,
    Lag,
    Eq,
    Eq20,
    Stranger,
}

pub(super) fn src(w: &World, s: Src) -> &Arc<Log> {
    match s {
        Src::Honest => &w.a,
        Src::Old => &w.old,
        Src::Lag => &w.lag,
        Src::Eq => &w.eq,
        Src::Eq20 => &w.eq20,
        Src::Stranger => &w.stranger,
    }
}

pub(super) type Mutate = fn(&mut Data, &mut Rng, &World);

/// Messages a fake writer sends right after its announcement.
pub(super) type Flood = fn(&mut Rng) -> Vec<Message>;

pub(super) enum Attack {
    /// A fake writer that announces (fork, length), answers requests from a log and mutates
    /// each answer; `flood` messages are sent right after the announcement.
    Writer {
        fork: u64,
        length: u64,
        from: Src,
        mutate: Mutate,
        flood: Option<Flood>,
    },
    /// Noise handshake, then these plaintext frames.
    Raw(fn(&mut Rng) -> Vec<Vec<u8>>),
    /// Bytes on the TCP stream, no handshake (empty: send nothing, stall).
    Tcp(fn(&mut Rng) -> Vec<u8>),
}

/// What a scenario expects besides the common checks.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Expect {
    Refused,
    /// Refused, and evidence of two signed heads is kept.
    Evidence,
}

pub(super) fn keep(_: &mut Data, _: &mut Rng, _: &World) {}

pub(super) fn upgrade_of(d: &mut Data) -> Option<&mut hypercore_schema::DataUpgrade> {
    d.upgrade.as_mut()
}

/// Sets the upgrade signature (every upgrade, including answers to conflict checks).
pub(super) fn with_sig(d: &mut Data, f: impl FnOnce(&mut Vec<u8>)) {
    if let Some(u) = upgrade_of(d) {
        f(&mut u.signature);
    }
}

/// The order of the ed25519 group, little-endian.
pub(super) const ED25519_L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// Every node list of an answer that is not empty.
pub(super) fn node_lists(d: &mut Data) -> Vec<&mut Vec<WireNode>> {
    let mut out = Vec::new();
    if let Some(b) = d.block.as_mut() {
        out.push(&mut b.nodes);
    }
    if let Some(u) = d.upgrade.as_mut() {
        out.push(&mut u.nodes);
        out.push(&mut u.additional_nodes);
    }
    out.retain(|l| !l.is_empty());
    out
}

pub(super) fn with_node(d: &mut Data, rng: &mut Rng, f: impl FnOnce(&mut Vec<WireNode>, usize)) {
    let mut lists = node_lists(d);
    if lists.is_empty() {
        return;
    }
    let n = lists.len();
    let list = &mut lists[rng.below(n)];
    let i = rng.below(list.len());
    f(list, i);
}

pub(super) fn writer_attack(mutate: Mutate) -> Attack {
    Attack::Writer {
        fork: 1,
        length: 40,
        from: Src::Honest,
        mutate,
        flood: None,
    }
}

pub(super) fn requests_flood(rng: &mut Rng) -> Vec<Message> {
    (0..100_000u64)
        .map(|i| {
            Message::Request(Request {
                id: 1_000_000 + i,
                fork: 1,
                block: Some(WireRequestBlock {
                    index: rng.next() % 20,
                    nodes: 0,
                }),
                hash: None,
                seek: None,
                upgrade: None,
                manifest: false,
                priority: 0,
            })
        })
        .collect()
}

pub(super) fn ranges_flood(rng: &mut Rng) -> Vec<Message> {
    (0..100_000u64)
        .map(|_| {
            Message::Range(Range {
                drop: rng.next().is_multiple_of(2),
                start: rng.next() % 40,
                length: 1,
            })
        })
        .collect()
}

/// `[channel 1, data]` frame of a block answer, as the guard would re-encode it.
pub(super) fn data_frame(d: Data) -> Vec<u8> {
    encode_frames(&[Parsed {
        channel: 1,
        message: Message::Data(d),
    }])
    .expect("encode")
    .remove(0)
}

pub(super) fn sample_data(rng: &mut Rng) -> Data {
    Data {
        request: 1,
        fork: 1,
        block: Some(hypercore_schema::DataBlock {
            index: 3,
            value: {
                let n = 40 + rng.below(200);
                rng.bytes(n)
            },
            nodes: (0..3)
                .map(|i| WireNode::new(i * 2, rng.bytes(32), 40))
                .collect(),
        }),
        hash: None,
        seek: None,
        upgrade: Some(hypercore_schema::DataUpgrade {
            start: 0,
            length: 4,
            nodes: vec![WireNode::new(3, rng.bytes(32), 160)],
            additional_nodes: vec![],
            signature: rng.bytes(64),
        }),
    }
}

/// Appends `n` as a compact-encoding uint.
pub(super) fn uint(out: &mut Vec<u8>, n: u64) {
    let at = out.len();
    out.resize(at + compact_encoding::encoded_size_var_u64(n), 0);
    compact_encoding::encode_var_u64(n, &mut out[at..]).expect("room was made");
}

/// A protomux open of channel `id` for `protocol`.
pub(super) fn open_frame(id: u64, protocol: &[u8], dk_len: usize, rng: &mut Rng) -> Vec<u8> {
    let mut f = vec![0, 1];
    uint(&mut f, id);
    uint(&mut f, protocol.len() as u64);
    f.extend_from_slice(protocol);
    uint(&mut f, dk_len as u64);
    f.extend(rng.bytes(dk_len));
    f.push(0);
    f.extend(rng.bytes(32));
    f
}

pub(super) fn attack(name: &str) -> (Attack, Expect) {
    use Expect::*;
    let a = match name {
        // -- signatures and heads --
        "forged_signature" => writer_attack(|d, r, _| {
            with_sig(d, |s| {
                let i = r.below(s.len());
                s[i] ^= 1 << r.below(8);
            })
        }),
        "zeroed_signature" => writer_attack(|d, _, _| with_sig(d, |s| s.fill(0))),
        "identity_point_signature" => writer_attack(|d, _, _| {
            // R = the identity (y = 1), s = 0: verifies under a small-order key unless checked.
            with_sig(d, |s| {
                s.fill(0);
                s[0] = 1;
            })
        }),
        "small_order_point_signature" => writer_attack(|d, r, _| {
            // R = a point of order 4 (y = 0) or 8 (y = -1), s = 0.
            with_sig(d, |s| {
                s.fill(0);
                if r.next() % 2 == 1 {
                    s[..32].copy_from_slice(&[
                        0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
                    ]);
                }
            })
        }),
        "non_canonical_s_signature" => writer_attack(|d, _, _| {
            // The writer's own signature with s + L: valid under lax verification.
            with_sig(d, |s| {
                let mut carry = 0u16;
                for i in 0..32 {
                    let v = s[32 + i] as u16 + ED25519_L[i] as u16 + carry;
                    s[32 + i] = v as u8;
                    carry = v >> 8;
                }
            })
        }),
        "missing_signature" => writer_attack(|d, _, _| with_sig(d, |s| s.clear())),
        "signature_by_another_key" => Attack::Writer {
            fork: 1,
            length: 40,
            from: Src::Stranger,
            mutate: keep,
            flood: None,
        },
        "upgrade_length_2pow40" => writer_attack(|d, _, _| {
            if let Some(u) = upgrade_of(d) {
                u.length = (1 << 40) - u.start;
            }
        }),
        "upgrade_wrong_start" => writer_attack(|d, r, _| {
            if let Some(u) = upgrade_of(d) {
                u.start = (u.start + 1 + r.next() % 5) % 40;
            }
        }),
        "upgrade_additional_junk" => writer_attack(|d, r, _| {
            if let Some(u) = upgrade_of(d) {
                u.additional_nodes.push(WireNode::new(
                    r.next() % 200,
                    r.bytes(32),
                    r.next() % 1000,
                ));
            }
        }),
        "fork_id_out_of_range" => writer_attack(|d, r, _| d.fork = (1 << 62) + r.next() % 1000),
        // -- blocks --
        "tampered_block" => writer_attack(|d, r, _| {
            if let Some(b) = d.block.as_mut().filter(|b| !b.value.is_empty()) {
                let i = r.below(b.value.len());
                b.value[i] ^= 1 << r.below(8);
            }
        }),
        "truncated_block_value" => writer_attack(|d, r, _| {
            if let Some(b) = d.block.as_mut().filter(|b| !b.value.is_empty()) {
                let n = r.below(b.value.len());
                b.value.truncate(n);
            }
        }),
        "extended_block_value" => writer_attack(|d, r, _| {
            if let Some(b) = d.block.as_mut() {
                let n = 1 + r.below(64);
                b.value.extend(r.bytes(n));
            }
        }),
        "answer_for_another_block" => writer_attack(|d, r, w| {
            if let Some(b) = d.block.as_mut() {
                let other = (b.index + 1 + r.next() % 19) % 40;
                let req = ProofRequest {
                    block: Some(RequestBlock {
                        index: other,
                        nodes: 0,
                    }),
                    ..Default::default()
                };
                d.block = proof_to_data(d.request, w.a.proof(&req).expect("proof")).block;
            }
        }),
        "block_index_2pow40" => writer_attack(|d, _, _| {
            if let Some(b) = d.block.as_mut() {
                b.index = 1 << 40;
            }
        }),
        // -- tree nodes --
        "node_hash_flipped" => writer_attack(|d, r, _| {
            let (i, bit) = (r.below(32), r.below(8));
            with_node(d, r, |l, k| {
                let n = &l[k];
                let mut h = n.hash.clone();
                h[i] ^= 1 << bit;
                l[k] = WireNode::new(n.index, h, n.length);
            })
        }),
        "node_size_changed" => writer_attack(|d, r, _| {
            let delta = 1 + r.next() % 1000;
            with_node(d, r, |l, k| {
                let n = &l[k];
                l[k] = WireNode::new(n.index, n.hash.clone(), n.length.wrapping_add(delta));
            })
        }),
        "node_index_changed" => writer_attack(|d, r, _| {
            let delta = 1 + r.next() % 7;
            with_node(d, r, |l, k| {
                let n = &l[k];
                l[k] = WireNode::new(n.index + delta, n.hash.clone(), n.length);
            })
        }),
        "node_dropped" => writer_attack(|d, r, _| with_node(d, r, |l, k| drop(l.remove(k)))),
        "node_duplicated" => writer_attack(|d, r, _| {
            // Sent twice inside a list that is read to its end (a trailing upgrade node nobody
            // uses is ignored, as in merkle-tree.js).
            let mut lists: Vec<&mut Vec<WireNode>> = Vec::new();
            let mut spare = None;
            if let Some(b) = d.block.as_mut() {
                lists.push(&mut b.nodes);
            }
            if let Some(u) = d.upgrade.as_mut() {
                spare = u.nodes.first().cloned();
                lists.push(&mut u.additional_nodes);
            }
            lists.retain(|l| !l.is_empty());
            if lists.is_empty() {
                if let (Some(u), Some(n)) = (d.upgrade.as_mut(), spare) {
                    u.additional_nodes.insert(0, n);
                }
                return;
            }
            let n = lists.len();
            let list = &mut lists[r.below(n)];
            let k = r.below(list.len());
            let node = list[k].clone();
            list.insert(k, node);
        }),
        "node_index_2pow40" => writer_attack(|d, r, _| {
            with_node(d, r, |l, k| {
                let n = &l[k];
                l[k] = WireNode::new(1 << 40, n.hash.clone(), n.length);
            })
        }),
        "oversized_proof" => writer_attack(|d, r, _| {
            if let Some(b) = d.block.as_mut() {
                let n = 129 + r.below(200);
                b.nodes
                    .extend((0..n as u64).map(|i| WireNode::new(i, vec![0; 32], 1)));
            }
        }),
        "unsolicited_hash_proof" => writer_attack(|d, r, _| {
            d.hash = Some(DataHash {
                index: r.next() % 80,
                nodes: vec![],
            })
        }),
        // -- lying lengths --
        "announced_length_2pow40" => Attack::Writer {
            fork: 1,
            length: 1 << 40,
            from: Src::Honest,
            mutate: |d, _, _| {
                // Claims the upgrade reaches the announced length.
                if let Some(u) = upgrade_of(d) {
                    u.length = (1 << 40) - u.start;
                }
            },
            flood: None,
        },
        // -- floods --
        "request_flood" => Attack::Writer {
            fork: 1,
            length: 20,
            from: Src::Honest,
            mutate: keep,
            flood: Some(requests_flood),
        },
        "range_flood" => Attack::Writer {
            fork: 1,
            length: 20,
            from: Src::Honest,
            mutate: keep,
            flood: Some(ranges_flood),
        },
        // -- malformed frames after the handshake --
        "truncated_message" => Attack::Raw(|r| {
            let f = data_frame(sample_data(r));
            let cut = 2 + r.below(f.len() - 2);
            vec![f[..cut].to_vec()]
        }),
        "nested_batch" => Attack::Raw(|r| {
            let inner = [0u8, 0, 1, 2, 8, 2, r.next() as u8 & 0x7f];
            let mut f = vec![0, 0, 0, inner.len() as u8];
            f.extend(inner);
            vec![f]
        }),
        "channel_id_out_of_range" => Attack::Raw(|r| {
            let id = (1 << 16) + 1 + r.next() % (1 << 40);
            vec![open_frame(id, PROTOCOL.as_bytes(), 32, r)]
        }),
        "non_utf8_protocol_name" => {
            Attack::Raw(|r| vec![open_frame(1, &[0xff, 0xfe, 0x80], 32, r)])
        }
        "short_discovery_key" => {
            Attack::Raw(|r| vec![open_frame(1, PROTOCOL.as_bytes(), 1 + r.below(31), r)])
        }
        "bitfield_claims_2pow32_words" => Attack::Raw(|r| {
            let mut f = vec![1u8, 7, 0, 0xfe];
            f.extend(((1u32 << 31) + r.next() as u32 % 1000).to_le_bytes());
            f.extend(r.bytes(64));
            vec![f]
        }),
        "node_count_2pow40" => Attack::Raw(|r| {
            // data{flags: block, request, fork, index, value, nodes: 2^40 ...}
            let mut f = vec![1u8, 3, 1, 1, 1, 0, 4];
            f.extend(r.bytes(4));
            f.push(0xff);
            f.extend((1u64 << 40).to_le_bytes());
            f.extend(r.bytes(100));
            vec![f]
        }),
        "block_value_over_limit" => Attack::Raw(|r| {
            let mut f = vec![1u8, 3, 1, 1, 1, 0, 0xfe];
            f.extend((8 * 1024 * 1024 + 1 + r.next() as u32 % 1000).to_le_bytes());
            f.extend(r.bytes(1000));
            vec![f]
        }),
        "short_signature" => Attack::Raw(|r| {
            let mut d = sample_data(r);
            if let Some(u) = d.upgrade.as_mut() {
                u.signature.truncate(1 + r.below(63));
            }
            vec![data_frame(d)]
        }),
        "seek_request" => Attack::Raw(|r| {
            let mut f = vec![1u8, 1, 4, 1, 1];
            uint(&mut f, r.next() % 10_000);
            vec![f]
        }),
        // -- transport --
        "oversized_frame" => Attack::Tcp(|r| {
            let len = (crate_max_frame() + 1 + r.below(1 << 20)).min(0xff_ffff) as u32;
            let mut b = len.to_le_bytes()[..3].to_vec();
            b.extend(r.bytes(100));
            b
        }),
        "garbage_handshake" => Attack::Tcp(|r| {
            let n = 32 + r.below(200);
            let body = r.bytes(n);
            let mut b = (body.len() as u32).to_le_bytes()[..3].to_vec();
            b.extend(body);
            b
        }),
        "stalled_handshake" => Attack::Tcp(|_| Vec::new()),
        // -- forks --
        "fork_same_length_equivocation" => Attack::Writer {
            fork: 1,
            length: 21,
            from: Src::Eq20,
            mutate: |d, _, _| {
                // Its head at our length, offered as the upgrade we asked for.
                if let Some(u) = d.upgrade.as_mut() {
                    if u.start != 0 {
                        u.start = 0;
                        u.length = 20;
                    }
                }
            },
            flood: None,
        },
        "fork_longer_head_not_extending" => Attack::Writer {
            fork: 1,
            length: 40,
            from: Src::Eq,
            mutate: keep,
            flood: None,
        },
        "fork_replayed_older_fork" => Attack::Writer {
            fork: 1,
            length: 40,
            from: Src::Old,
            mutate: keep,
            flood: None,
        },
        "fork_replayed_shorter_head" => Attack::Writer {
            fork: 1,
            length: 40,
            from: Src::Lag,
            mutate: keep,
            flood: None,
        },
        "fork_forged_truncate" => Attack::Writer {
            fork: 2,
            length: 30,
            from: Src::Honest,
            mutate: |d, r, _| {
                d.fork = 2;
                with_sig(d, |s| {
                    let i = r.below(s.len());
                    s[i] ^= 1;
                })
            },
            flood: None,
        },
        "fork_truncate_by_another_key" => Attack::Writer {
            fork: 2,
            length: 40,
            from: Src::Stranger,
            mutate: |d, _, _| d.fork = 2,
            flood: None,
        },
        other => panic!("unknown scenario {other}"),
    };
    let expect = if name.starts_with("fork_same_length") || name.starts_with("fork_longer") {
        Evidence
    } else {
        Refused
    };
    (a, expect)
}

pub(super) fn crate_max_frame() -> usize {
    fritter_common::replicate::frame::MAX_FRAME
}
