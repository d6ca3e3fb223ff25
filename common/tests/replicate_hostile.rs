//! Hostile peers. A fake peer that controls every field of the wire (it speaks the real stack:
//! TCP, frames, Noise, the protocol, or raw bytes at any of those layers) attacks a node that
//! holds a replica at fork 1, while an honest peer replicates another archive from the same node.
//! Every scenario of the table runs over several seeds (`FRITTER_HOSTILE_SEEDS`, default 8) that
//! pick which bit, node, offset or value is wrong. For each seed it checks:
//!
//! - the node drops the hostile peer and records the disconnect as its fault;
//! - the replica's head and the bytes of its `tree`, `data` and `bitfield` files are unchanged,
//!   and what it holds still verifies;
//! - the honest peer stays connected and keeps receiving new entries meanwhile;
//! - fork scenarios: evidence of two signed heads is kept (and verifies against the key) exactly
//!   when the writer equivocated, never for a lie or a replay.
//!
//! Also here: the original five lies against an empty replica (which then completes from an
//! honest writer), a legitimate truncate that replicas must follow, keepalives, and the memory a
//! hostile peer costs the node, measured with a counting allocator.

// Tests unwrap freely: a panic is a failed test with its cause.
#![allow(clippy::unwrap_used)]

mod replicate_support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fritter_common::crypto::KeyPair;
use fritter_common::log::{Access, DiskStorage, Log, ProofRequest, RequestBlock, RequestUpgrade};
use fritter_common::replicate::wire::{
    encode_frames, proof_to_data, request_to_log, Parsed, PROTOCOL,
};
use fritter_common::replicate::{protocol_over, Node, NodeConfig};
use futures::{SinkExt, StreamExt};
use hypercore_handshake::CipherEvent;
use hypercore_protocol::schema::{Data, Range, Request, Synchronize};
use hypercore_protocol::{Event, Message};
use hypercore_schema::{DataHash, Node as WireNode, RequestBlock as WireRequestBlock};
use replicate_support::*;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

// ---------------------------------------------------------------------------------------------
// A counting allocator: live bytes allocated by threads that opted in (the node's runtime in the
// memory test), and their peak. Other threads pass straight through.

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);
static COUNTED_THREADS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}

fn counted() -> bool {
    COUNTED_THREADS.load(Ordering::Relaxed) > 0 && COUNTED.try_with(Cell::get).unwrap_or(false)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() && counted() {
            let live =
                LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed) + layout.size() as isize;
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if counted() {
            LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        }
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() && counted() {
            let d = new_size as isize - layout.size() as isize;
            let live = LIVE.fetch_add(d, Ordering::Relaxed) + d;
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

// ---------------------------------------------------------------------------------------------
// The world: one key's histories, built once per scenario.

/// Entry `i` of the fork-1 history that the writer wrote after truncating to 15.
fn entry1(i: u64) -> Vec<u8> {
    format!("fork 1 entry {i}").into_bytes()
}

/// Entry `i` of a second fork-1 history the same key signed (equivocation from entry 17).
fn entry_eq(i: u64) -> Vec<u8> {
    format!("equivocated entry {i}").into_bytes()
}

/// A writer at fork 1: entries 0..30, truncated to 15, then `next(15..len)`.
fn fork1_writer(dir: &Path, kp: &KeyPair, len: u64, next: fn(u64) -> Vec<u8>) -> Arc<Log> {
    let w = writer(dir, kp);
    fill(&w, 0, 30);
    w.truncate(15).expect("truncate");
    let blocks: Vec<Vec<u8>> = (15..len).map(next).collect();
    let refs: Vec<&[u8]> = blocks.iter().map(Vec::as_slice).collect();
    w.append_batch(&refs).expect("append");
    assert_eq!(w.info().fork, 1);
    w
}

fn eq_entry(i: u64) -> Vec<u8> {
    if i < 17 {
        entry1(i)
    } else {
        entry_eq(i)
    }
}

struct World {
    _dir: tempfile::TempDir,
    kp: KeyPair,
    /// The honest writer: fork 1, length 40.
    a: Arc<Log>,
    /// The writer's first history: fork 0, length 40 (signed before the truncate).
    old: Arc<Log>,
    /// The honest history at fork 1, length 18 (an older head of the current fork).
    lag: Arc<Log>,
    /// A second fork-1 history, signed by the same key: differs from entry 17, lengths 40 and 20.
    eq: Arc<Log>,
    eq20: Arc<Log>,
    /// The honest history signed by another key.
    stranger: Arc<Log>,
    /// The node's replica: the honest history at fork 1, length 20, every block held.
    replica: Arc<Log>,
    replica_dir: std::path::PathBuf,
}

/// The writers' logs, built once per test binary (in cargo's scratch directory for tests) and
/// only read afterwards; each scenario gets its own copy of the replica.
struct Writers {
    _dir: tempfile::TempDir,
    kp: KeyPair,
    a: Arc<Log>,
    old: Arc<Log>,
    lag: Arc<Log>,
    eq: Arc<Log>,
    eq20: Arc<Log>,
    stranger: Arc<Log>,
    template: std::path::PathBuf,
}

fn writers() -> &'static Writers {
    static W: std::sync::OnceLock<Writers> = std::sync::OnceLock::new();
    W.get_or_init(|| {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
        let kp = KeyPair::from_seed(&[3; 32]);
        let p = dir.path();
        let a = fork1_writer(&p.join("a"), &kp, 40, entry1);
        let a20 = fork1_writer(&p.join("a20"), &kp, 20, entry1);
        let lag = fork1_writer(&p.join("lag"), &kp, 18, entry1);
        let eq = fork1_writer(&p.join("eq"), &kp, 40, eq_entry);
        let eq20 = fork1_writer(&p.join("eq20"), &kp, 20, eq_entry);
        let old = writer(&p.join("old"), &kp);
        fill(&old, 0, 40);
        let skp = KeyPair::from_seed(&[4; 32]);
        let stranger = fork1_writer(&p.join("stranger"), &skp, 40, entry1);
        let template = p.join("template");
        {
            let r = replica(&template, &kp);
            copy_into(&a20, &r, 20);
            assert_eq!(r.info().tree_hash, a20.info().tree_hash);
        }
        Writers {
            _dir: dir,
            kp,
            a,
            old,
            lag,
            eq,
            eq20,
            stranger,
            template,
        }
    })
}

fn build_world() -> World {
    let w = writers();
    let dir = tempfile::tempdir().expect("tempdir");
    let replica_dir = dir.path().join("replica");
    std::fs::create_dir_all(&replica_dir).expect("mkdir");
    for f in ["tree", "data", "bitfield"] {
        std::fs::copy(w.template.join(f), replica_dir.join(f)).expect("copy replica");
    }
    let replica = self::replica(&replica_dir, &w.kp);
    World {
        _dir: dir,
        kp: w.kp.clone(),
        a: w.a.clone(),
        old: w.old.clone(),
        lag: w.lag.clone(),
        eq: w.eq.clone(),
        eq20: w.eq20.clone(),
        stranger: w.stranger.clone(),
        replica,
        replica_dir,
    }
}

/// Copies `from`'s head and blocks `0..len` into the replica `to`, through verified proofs.
fn copy_into(from: &Log, to: &Log, len: u64) {
    let up = ProofRequest {
        block: Some(RequestBlock { index: 0, nodes: 0 }),
        upgrade: Some(RequestUpgrade {
            start: 0,
            length: len,
        }),
        ..Default::default()
    };
    to.apply_proof(&from.proof(&up).expect("proof"))
        .expect("apply");
    for seq in 1..len {
        let nodes = to.missing_nodes(seq).expect("missing");
        let req = ProofRequest {
            block: Some(RequestBlock { index: seq, nodes }),
            ..Default::default()
        };
        to.apply_proof(&from.proof(&req).expect("proof"))
            .expect("apply");
    }
}

/// What must not change: the head, and every byte of the log files.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    info: fritter_common::log::LogInfo,
    files: Vec<Vec<u8>>,
}

fn snapshot(log: &Log, dir: &Path) -> Snapshot {
    Snapshot {
        info: log.info(),
        files: ["tree", "data", "bitfield"]
            .iter()
            .map(|f| std::fs::read(dir.join(f)).expect("read log file"))
            .collect(),
    }
}

// ---------------------------------------------------------------------------------------------
// Seeded choices.

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

// ---------------------------------------------------------------------------------------------
// The scenarios.

/// Which log a fake writer answers from.
#[derive(Clone, Copy)]
enum Src {
    Honest,
    Old,
    Lag,
    Eq,
    Eq20,
    Stranger,
}

fn src(w: &World, s: Src) -> &Arc<Log> {
    match s {
        Src::Honest => &w.a,
        Src::Old => &w.old,
        Src::Lag => &w.lag,
        Src::Eq => &w.eq,
        Src::Eq20 => &w.eq20,
        Src::Stranger => &w.stranger,
    }
}

type Mutate = fn(&mut Data, &mut Rng, &World);

/// Messages a fake writer sends right after its announcement.
type Flood = fn(&mut Rng) -> Vec<Message>;

enum Attack {
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
enum Expect {
    Refused,
    /// Refused, and evidence of two signed heads is kept.
    Evidence,
}

fn keep(_: &mut Data, _: &mut Rng, _: &World) {}

fn upgrade_of(d: &mut Data) -> Option<&mut hypercore_schema::DataUpgrade> {
    d.upgrade.as_mut()
}

/// Sets the upgrade signature (every upgrade, including answers to conflict checks).
fn with_sig(d: &mut Data, f: impl FnOnce(&mut Vec<u8>)) {
    if let Some(u) = upgrade_of(d) {
        f(&mut u.signature);
    }
}

/// The order of the ed25519 group, little-endian.
const ED25519_L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// Every node list of an answer that is not empty.
fn node_lists(d: &mut Data) -> Vec<&mut Vec<WireNode>> {
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

fn with_node(d: &mut Data, rng: &mut Rng, f: impl FnOnce(&mut Vec<WireNode>, usize)) {
    let mut lists = node_lists(d);
    if lists.is_empty() {
        return;
    }
    let n = lists.len();
    let list = &mut lists[rng.below(n)];
    let i = rng.below(list.len());
    f(list, i);
}

fn writer_attack(mutate: Mutate) -> Attack {
    Attack::Writer {
        fork: 1,
        length: 40,
        from: Src::Honest,
        mutate,
        flood: None,
    }
}

fn requests_flood(rng: &mut Rng) -> Vec<Message> {
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

fn ranges_flood(rng: &mut Rng) -> Vec<Message> {
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
fn data_frame(d: Data) -> Vec<u8> {
    encode_frames(&[Parsed {
        channel: 1,
        message: Message::Data(d),
    }])
    .expect("encode")
    .remove(0)
}

fn sample_data(rng: &mut Rng) -> Data {
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
fn uint(out: &mut Vec<u8>, n: u64) {
    let at = out.len();
    out.resize(at + compact_encoding::encoded_size_var_u64(n), 0);
    compact_encoding::encode_var_u64(n, &mut out[at..]).expect("room was made");
}

/// A protomux open of channel `id` for `protocol`.
fn open_frame(id: u64, protocol: &[u8], dk_len: usize, rng: &mut Rng) -> Vec<u8> {
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

fn attack(name: &str) -> (Attack, Expect) {
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

fn crate_max_frame() -> usize {
    fritter_common::replicate::frame::MAX_FRAME
}

/// Answers from `from` as the fake writer sees a request. The lag log cannot prove from its
/// start beyond its own length; it answers with its whole head instead.
fn answer(w: &World, from: Src, r: &Request) -> Option<Data> {
    let log = src(w, from);
    let mut req = request_to_log(r);
    let len = log.info().length;
    if let Some(u) = req.upgrade.as_mut() {
        if u.start + u.length > len {
            if u.start >= len {
                u.start = 0;
            }
            u.length = len - u.start;
        }
    }
    if req.block.is_some_and(|b| b.index >= len) {
        req.block = None;
    }
    let p = log.proof(&req).ok()?;
    Some(proof_to_data(r.id, p))
}

/// Runs the fake writer until the node hangs up; returns the address it dialed from.
async fn fake_writer(
    addr: SocketAddr,
    w: Arc<World>,
    attack: (u64, u64, Src, Mutate, Option<Flood>),
    mut rng: Rng,
) -> SocketAddr {
    let (fork, length, from, mutate, flood) = attack;
    let stream = TcpStream::connect(addr).await.expect("dial");
    let local = stream.local_addr().expect("local addr");
    let cancel = CancellationToken::new();
    let (mut protocol, state) = protocol_over(stream, true, &cancel).expect("protocol");
    let key = *w.kp.public().as_bytes();
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = state.closed() => break,
            ev = protocol.next() => match ev {
                None | Some(Err(_)) => break,
                Some(Ok(Event::Handshake(_))) => {
                    if protocol.open(key).await.is_err() {
                        break;
                    }
                }
                Some(Ok(Event::Channel(mut channel))) => {
                    let w = w.clone();
                    let mut rng = Rng(rng.next());
                    tasks.spawn(async move {
                        let Some(rx) = channel.take_receiver() else { return };
                        let mut hello = vec![
                            Message::Synchronize(Synchronize {
                                fork,
                                length,
                                remote_length: 0,
                                can_upgrade: true,
                                uploading: true,
                                downloading: false,
                            }),
                            Message::Range(Range { drop: false, start: 0, length }),
                        ];
                        if let Some(f) = flood {
                            hello.extend(f(&mut rng));
                        }
                        if channel.send_batch(&hello).await.is_err() {
                            return;
                        }
                        while let Ok(m) = rx.recv().await {
                            if let Message::Request(r) = m {
                                let Some(mut d) = answer(&w, from, &r) else { continue };
                                mutate(&mut d, &mut rng, &w);
                                if channel.send(Message::Data(d)).await.is_err() {
                                    return;
                                }
                            }
                        }
                    });
                }
                Some(Ok(_)) => {}
            },
        }
    }
    local
}

/// Handshakes over raw Noise, sends `frames` in plaintext, waits for the node to hang up.
async fn fake_raw(addr: SocketAddr, frames: Vec<Vec<u8>>) -> SocketAddr {
    let stream = TcpStream::connect(addr).await.expect("dial");
    let local = stream.local_addr().expect("local addr");
    let cancel = CancellationToken::new();
    let (mut cipher, state) = raw_noise_over(stream, true, &cancel).expect("noise");
    // Drive the handshake: the initiator's first message goes out on the first poll.
    let _ = cipher.flush().await;
    loop {
        if cipher.handshake_hash().is_some() {
            break;
        }
        tokio::select! {
            _ = state.closed() => return local,
            ev = cipher.next() => match ev {
                None | Some(CipherEvent::ErrStuff(_)) => return local,
                Some(_) => {}
            },
        }
    }
    for f in frames {
        if cipher.send(f).await.is_err() {
            return local;
        }
    }
    loop {
        tokio::select! {
            _ = state.closed() => return local,
            ev = cipher.next() => if ev.is_none() { return local },
        }
    }
}

/// Writes raw bytes and reads until the node closes the socket.
async fn fake_tcp(addr: SocketAddr, bytes: Vec<u8>) -> SocketAddr {
    let s = TcpStream::connect(addr).await.expect("dial");
    let local = s.local_addr().expect("local addr");
    let mut sent = 0;
    while sent < bytes.len() {
        if s.writable().await.is_err() {
            return local;
        }
        match s.try_write(&bytes[sent..]) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return local,
        }
    }
    let mut buf = [0u8; 1024];
    loop {
        if s.readable().await.is_err() {
            return local;
        }
        match s.try_read(&mut buf) {
            Ok(0) => return local,
            Err(e) if e.kind() != std::io::ErrorKind::WouldBlock => return local,
            _ => {}
        }
    }
}

fn seeds() -> u64 {
    std::env::var("FRITTER_HOSTILE_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8)
}

/// The node under attack: holds the replica and an archive of its own that an honest peer
/// replicates during every attack.
async fn run(name: &str) {
    trace();
    let w = Arc::new(tokio::task::block_in_place(build_world));
    let dir = tempfile::tempdir().expect("tempdir");
    let bkp = KeyPair::from_seed(&[9; 32]);
    let b = writer(&dir.path().join("b"), &bkp);
    fill(&b, 0, 10);
    let node = Node::start(NodeConfig {
        listen: Some("127.0.0.1:0".parse().expect("addr")),
        handshake_timeout: Duration::from_millis(400),
        ..NodeConfig::default()
    })
    .await
    .expect("node");
    node.add(w.replica.clone());
    node.add(b.clone());
    let addr = node.local_addr().expect("addr");

    let honest = dialing_node().await;
    let hb = replica(&dir.path().join("hb"), &bkp);
    honest.add(hb.clone());
    honest.connect(addr).await.expect("connect");
    wait_status(&hb, 20, "the honest peer's first entries", |s| {
        s.contiguous == 10
    })
    .await;

    let before = snapshot(&w.replica, &w.replica_dir);
    let (_, expect) = attack(name);
    for seed in 0..seeds() {
        let mut rng = Rng(seed ^ 0x5eed_0000 ^ name.len() as u64);
        let faults_before = node.disconnects().iter().filter(|d| d.fault).count();
        // The honest peer gets new entries while the attack runs.
        let more = 10 * (seed + 2);
        let appended = {
            let b = b.clone();
            tokio::task::spawn_blocking(move || fill(&b, more - 10, more))
        };
        let hostile = match attack(name).0 {
            Attack::Writer {
                fork,
                length,
                from,
                mutate,
                flood,
            } => {
                let r = Rng(rng.next());
                within(
                    20,
                    "the node to drop the fake writer",
                    fake_writer(addr, w.clone(), (fork, length, from, mutate, flood), r),
                )
                .await
            }
            Attack::Raw(frames) => {
                within(
                    20,
                    "the node to drop the raw peer",
                    fake_raw(addr, frames(&mut rng)),
                )
                .await
            }
            Attack::Tcp(bytes) => {
                within(
                    20,
                    "the node to close the socket",
                    fake_tcp(addr, bytes(&mut rng)),
                )
                .await
            }
        };
        appended.await.expect("append");
        wait_until(10, "the disconnect to be recorded", || {
            node.disconnects().iter().any(|d| d.addr == hostile)
        })
        .await;
        let d = node
            .disconnects()
            .into_iter()
            .find(|d| d.addr == hostile)
            .expect("recorded");
        assert!(
            d.fault,
            "{name} seed {seed}: not recorded as the peer's fault: {d:?}"
        );
        assert_eq!(
            node.disconnects().iter().filter(|d| d.fault).count(),
            faults_before + 1,
            "{name} seed {seed}: {:?}",
            node.disconnects()
        );
        if seed == 0 {
            eprintln!("{name}: {}", d.reason);
        }
        // Nothing from the hostile peer was kept, except what the honest writer signed: a peer
        // that relays the honest history may answer a request for the newest head alone (no
        // block to tamper with) before it answers one with a block, depending on which the
        // node asks first. Taking that head is right; no block it tampered may be stored.
        let after = snapshot(&w.replica, &w.replica_dir);
        let head = w.a.info();
        let honest_head_only = matches!(
            attack(name).0,
            Attack::Writer {
                from: Src::Honest,
                ..
            }
        ) && after.info.fork == head.fork
            && after.info.length == head.length
            && after.info.tree_hash == head.tree_hash
            && after.info.contiguous == before.info.contiguous
            && after.files[1..] == before.files[1..];
        assert!(
            after == before || honest_head_only,
            "{name} seed {seed}: the replica changed from {:?} to {:?}",
            before.info,
            after.info
        );
        for seq in 0..20 {
            let want = if seq < 15 { entry(seq) } else { entry1(seq) };
            assert_eq!(w.replica.get(seq).expect("stored blocks verify"), want);
        }
        match expect {
            Expect::Refused => assert!(
                !w.replica.is_forked(),
                "{name} seed {seed}: fork evidence from a lie: {:?}",
                w.replica.fork_evidence()
            ),
            Expect::Evidence => {
                let ev = w.replica.fork_evidence();
                assert_eq!(ev.len(), 1, "{name} seed {seed}: one record, kept once");
                let other = ev[0].verify(&w.kp.public()).expect("evidence verifies");
                assert_eq!(ev[0].local.hash(), before.info.tree_hash);
                assert_ne!(other.hash(), w.a.info().tree_hash);
            }
        }
        // The honest peer kept replicating meanwhile, over the same connection.
        wait_status(&hb, 20, "the honest peer to catch up", |s| {
            s.contiguous == more
        })
        .await;
        assert!(
            honest.disconnects().is_empty() && honest.peers().len() == 1,
            "{name} seed {seed}: the honest peer was dropped: {:?}",
            honest.disconnects()
        );
    }
    if expect == Expect::Evidence {
        // The flag survives a reopen (the evidence is in the `forks` file).
        let again = Log::open(
            &DiskStorage::new(&w.replica_dir),
            w.kp.public(),
            Access::View,
        )
        .expect("reopen");
        assert!(again.is_forked());
    }
    honest.shutdown().await;
    node.shutdown().await;
}

macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        const SCENARIOS: &[&str] = &[$(stringify!($name)),*];
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                run(stringify!($name)).await;
            }
        )*
    };
}

scenarios! {
    forged_signature,
    zeroed_signature,
    identity_point_signature,
    small_order_point_signature,
    non_canonical_s_signature,
    missing_signature,
    signature_by_another_key,
    upgrade_length_2pow40,
    upgrade_wrong_start,
    upgrade_additional_junk,
    fork_id_out_of_range,
    tampered_block,
    truncated_block_value,
    extended_block_value,
    answer_for_another_block,
    block_index_2pow40,
    node_hash_flipped,
    node_size_changed,
    node_index_changed,
    node_dropped,
    node_duplicated,
    node_index_2pow40,
    oversized_proof,
    unsolicited_hash_proof,
    announced_length_2pow40,
    request_flood,
    range_flood,
    truncated_message,
    nested_batch,
    channel_id_out_of_range,
    non_utf8_protocol_name,
    short_discovery_key,
    bitfield_claims_2pow32_words,
    node_count_2pow40,
    block_value_over_limit,
    short_signature,
    seek_request,
    oversized_frame,
    garbage_handshake,
    stalled_handshake,
    fork_same_length_equivocation,
    fork_longer_head_not_extending,
    fork_replayed_older_fork,
    fork_replayed_shorter_head,
    fork_forged_truncate,
    fork_truncate_by_another_key,
}

#[test]
fn the_table_has_at_least_30_scenarios_each_known() {
    assert!(SCENARIOS.len() >= 30, "{}", SCENARIOS.len());
    for s in SCENARIOS {
        let _ = attack(s);
    }
}

// ---------------------------------------------------------------------------------------------
// The first five lies, against an empty replica that then completes from an honest writer.

/// How the fake writer lies.
#[derive(Clone, Copy, Debug)]
enum Lie {
    /// Flips a bit of the signature on every upgrade.
    ForgedSignature,
    /// Flips a byte of block 5's value.
    TamperedBlock,
    /// Answers the request for block 7 with block 8's proof.
    WrongBlock,
    /// Pads block 3's proof with 200 nodes (the wire allows 128 per list).
    OversizedProof,
    /// Changes a node in block 8's proof to another hash.
    WrongNode,
}

fn lie(how: Lie, d: &mut Data, writer: &Log) {
    match how {
        Lie::ForgedSignature => {
            if let Some(u) = d.upgrade.as_mut() {
                u.signature[10] ^= 1;
            }
        }
        Lie::TamperedBlock => {
            if let Some(b) = d.block.as_mut().filter(|b| b.index == 5) {
                b.value[0] ^= 0x20;
            }
        }
        Lie::WrongBlock => {
            if d.block.as_ref().is_some_and(|b| b.index == 7) {
                let req = fritter_common::log::ProofRequest {
                    block: Some(fritter_common::log::RequestBlock { index: 8, nodes: 3 }),
                    ..Default::default()
                };
                let other = proof_to_data(d.request, writer.proof(&req).expect("proof"));
                d.block = other.block;
            }
        }
        Lie::OversizedProof => {
            if let Some(b) = d.block.as_mut().filter(|b| b.index == 3) {
                b.nodes
                    .extend((0..200).map(|i| WireNode::new(i, vec![0; 32], 1)));
            }
        }
        Lie::WrongNode => {
            if let Some(b) = d
                .block
                .as_mut()
                .filter(|b| b.index == 8 && !b.nodes.is_empty())
            {
                b.nodes[0].hash[0] ^= 1;
            }
        }
    }
}

/// Dials the node as a writer of `writer`'s archive that lies as told; returns once the node
/// hangs up, with the reason the fake side saw.
async fn lying_writer(addr: std::net::SocketAddr, writer: Arc<Log>, how: Lie) -> String {
    let stream = TcpStream::connect(addr).await.expect("dial");
    let cancel = CancellationToken::new();
    let (mut protocol, state) = protocol_over(stream, true, &cancel).expect("protocol");
    let key = *writer.key().as_bytes();
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = state.closed() => return state.reason().unwrap_or_default(),
            ev = protocol.next() => match ev {
                None | Some(Err(_)) => return state.reason().unwrap_or_else(|| "protocol ended".into()),
                Some(Ok(Event::Handshake(_))) => protocol.open(key).await.expect("open"),
                Some(Ok(Event::Channel(mut channel))) => {
                    let writer = writer.clone();
                    let info = writer.info();
                    tasks.spawn(async move {
                        let rx = channel.take_receiver().expect("receiver");
                        let hello = [
                            Message::Synchronize(Synchronize {
                                fork: 0,
                                length: info.length,
                                remote_length: 0,
                                can_upgrade: true,
                                uploading: true,
                                downloading: false,
                            }),
                            Message::Range(Range { drop: false, start: 0, length: info.length }),
                        ];
                        if channel.send_batch(&hello).await.is_err() {
                            return;
                        }
                        while let Ok(m) = rx.recv().await {
                            if let Message::Request(r) = m {
                                let Ok(p) = writer.proof(&request_to_log(&r)) else { continue };
                                let mut d = proof_to_data(r.id, p);
                                lie(how, &mut d, &writer);
                                if channel.send(Message::Data(d)).await.is_err() {
                                    return;
                                }
                            }
                        }
                    });
                }
                Some(Ok(_)) => {}
            },
        }
    }
}

async fn empty_replica_scenario(how: Lie) {
    trace();
    let dir = tempfile::tempdir().expect("tempdir");
    let kp = KeyPair::from_seed(&[3; 32]);
    let w = writer(&dir.path().join("w"), &kp);
    fill(&w, 0, 40);
    let r = replica(&dir.path().join("r"), &kp);
    let node = listening_node().await;
    node.add(r.clone());
    let addr = node.local_addr().expect("listening");

    let seen = within(
        20,
        "the node to hang up on the fake writer",
        lying_writer(addr, w.clone(), how),
    )
    .await;
    // The fake sees an end of stream or a reset, depending on what was in flight.
    assert!(!seen.is_empty(), "{how:?}");
    wait_until(10, "the node to record the disconnect", || {
        !node.disconnects().is_empty()
    })
    .await;
    assert!(node.peers().is_empty());
    let d = node.disconnects();
    assert!(
        d.len() == 1 && d[0].fault,
        "{how:?}: dropped as a misbehaving peer: {d:?}"
    );
    eprintln!("{how:?}: {}", d[0].reason);

    let info = r.info();
    match how {
        Lie::ForgedSignature => assert_eq!(info.length, 0, "nothing from a forged head is kept"),
        Lie::TamperedBlock => assert!(!r.has(5).expect("has"), "the tampered block is not stored"),
        Lie::WrongBlock => assert!(!r.has(7).expect("has") || r.get(7).expect("get") == entry(7)),
        Lie::OversizedProof => assert!(!r.has(3).expect("has")),
        Lie::WrongNode => assert!(!r.has(8).expect("has")),
    }
    // Whatever was stored is the writer's and verifies.
    if info.length > 0 {
        assert_eq!(info.tree_hash, w.info().tree_hash);
    }
    for seq in 0..info.length {
        if r.has(seq).expect("has") {
            assert_eq!(r.get(seq).expect("stored blocks verify"), entry(seq));
        }
    }
    // The node still serves honest peers after the hostile one: a real writer node completes it.
    let honest = listening_node().await;
    honest.add(w.clone());
    node.connect(honest.local_addr().expect("addr"))
        .await
        .expect("connect");
    wait_status(&r, 20, "the honest writer's entries", |s| {
        s.contiguous == 40
    })
    .await;
    assert_same(&r, &w);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_signature_is_refused_and_the_peer_dropped() {
    empty_replica_scenario(Lie::ForgedSignature).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_block_is_refused_and_the_peer_dropped() {
    empty_replica_scenario(Lie::TamperedBlock).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_for_another_block_is_refused_and_the_peer_dropped() {
    empty_replica_scenario(Lie::WrongBlock).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_proof_is_refused_and_the_peer_dropped() {
    empty_replica_scenario(Lie::OversizedProof).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_tree_node_is_refused_and_the_peer_dropped() {
    empty_replica_scenario(Lie::WrongNode).await;
}

fn node_config(f: impl FnOnce(&mut NodeConfig)) -> NodeConfig {
    let mut c = NodeConfig {
        listen: Some("127.0.0.1:0".parse().expect("addr")),
        ..NodeConfig::default()
    };
    f(&mut c);
    c
}

/// Reads until the node closes the socket; fails if it stays open `secs` seconds.
async fn expect_hangup(s: TcpStream, secs: u64) {
    let mut buf = [0u8; 1024];
    within(secs, "the node to close the socket", async {
        loop {
            if s.readable().await.is_err() {
                return;
            }
            match s.try_read(&mut buf) {
                Ok(0) => return,
                Err(e) if e.kind() != std::io::ErrorKind::WouldBlock => return,
                _ => {}
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_completes_the_handshake_is_dropped() {
    trace();
    let node = Node::start(node_config(|c| {
        c.handshake_timeout = Duration::from_millis(300)
    }))
    .await
    .expect("node");
    let s = TcpStream::connect(node.local_addr().expect("addr"))
        .await
        .expect("dial");
    expect_hangup(s, 10).await;
    wait_until(10, "the disconnect to be recorded", || {
        !node.disconnects().is_empty()
    })
    .await;
    let d = &node.disconnects()[0];
    assert!(d.fault && d.reason.contains("handshake"), "{d:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_frame_is_refused_before_it_is_read() {
    trace();
    let node = listening_node().await;
    let s = TcpStream::connect(node.local_addr().expect("addr"))
        .await
        .expect("dial");
    // A frame header announcing 16 MiB - 1 bytes, more than any block and its proof.
    s.writable().await.expect("writable");
    assert_eq!(s.try_write(&[0xff, 0xff, 0xff, 1, 2, 3]).expect("write"), 6);
    expect_hangup(s, 10).await;
    wait_until(10, "the disconnect to be recorded", || {
        !node.disconnects().is_empty()
    })
    .await;
    let d = &node.disconnects()[0];
    assert!(d.fault && d.reason.contains("exceeds the limit"), "{d:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalives_hold_a_quiet_connection_and_a_silent_peer_is_dropped() {
    trace();
    let config = node_config(|c| c.idle_timeout = Duration::from_millis(800));
    let a = Node::start(config.clone()).await.expect("node a");
    let b = Node::start(config).await.expect("node b");
    b.connect(a.local_addr().expect("addr"))
        .await
        .expect("connect");
    wait_until(10, "the connection", || {
        a.peers().len() == 1 && b.peers().len() == 1
    })
    .await;
    // Quiet for twice the idle timeout: keepalives hold it open.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(
        (a.peers().len(), b.peers().len()),
        (1, 1),
        "{:?} {:?}",
        a.disconnects(),
        b.disconnects()
    );

    // A peer that finishes the handshake, then reads but never sends (the bare protocol sends
    // no keepalives), is dropped.
    let stream = TcpStream::connect(a.local_addr().expect("addr"))
        .await
        .expect("dial");
    let cancel = CancellationToken::new();
    let (mut protocol, state) = protocol_over(stream, true, &cancel).expect("protocol");
    let reader = tokio::spawn(async move { while let Some(Ok(_)) = protocol.next().await {} });
    within(10, "the node to drop the silent peer", state.closed()).await;
    reader.abort();
    wait_until(10, "the disconnect to be recorded", || {
        a.disconnects().iter().any(|d| d.reason.contains("silent"))
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// A legitimate truncate is followed.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_follow_a_writer_that_truncates() {
    trace();
    let dir = tempfile::tempdir().expect("tempdir");
    let kp = KeyPair::from_seed(&[5; 32]);
    let w = writer(&dir.path().join("w"), &kp);
    fill(&w, 0, 40);
    let r = replica(&dir.path().join("r"), &kp);
    let wn = listening_node().await;
    wn.add(w.clone());
    let rn = dialing_node().await;
    rn.add(r.clone());
    rn.connect(wn.local_addr().expect("addr"))
        .await
        .expect("connect");
    wait_status(&r, 20, "the first 40 entries", |s| s.contiguous == 40).await;

    // The writer cuts to 25 and writes 15 other entries: fork 1, same length, other content.
    tokio::task::block_in_place(|| {
        w.truncate(25).expect("truncate");
        let blocks: Vec<Vec<u8>> = (25..40).map(entry1).collect();
        let refs: Vec<&[u8]> = blocks.iter().map(Vec::as_slice).collect();
        w.append_batch(&refs).expect("append");
    });
    wait_status(&r, 20, "the replica to follow the new fork", |s| {
        s.fork == 1 && s.contiguous == 40
    })
    .await;
    assert_same(&r, &w);
    assert_eq!(r.get(30).expect("get"), entry1(30));
    assert!(!r.is_forked(), "a truncate is not an equivocation");
    assert!(
        rn.disconnects().iter().all(|d| !d.fault),
        "{:?}",
        rn.disconnects()
    );

    // A replica that only knew fork 0 catches up too, and one that starts empty.
    let late = replica(&dir.path().join("late"), &kp);
    let ln = dialing_node().await;
    ln.add(late.clone());
    ln.connect(wn.local_addr().expect("addr"))
        .await
        .expect("connect");
    wait_status(&late, 20, "a new replica", |s| {
        s.fork == 1 && s.contiguous == 40
    })
    .await;
    assert_same(&late, &w);

    // The replica reopens on the new fork.
    rn.shutdown().await;
    let info = r.info();
    drop(r);
    let again = Log::open(
        &DiskStorage::new(dir.path().join("r")),
        kp.public(),
        Access::View,
    )
    .expect("reopen");
    assert_eq!(again.info().tree_hash, info.tree_hash);
    assert_eq!(
        again.read_range(0, 40).expect("read"),
        w.read_range(0, 40).expect("read")
    );
}

// ---------------------------------------------------------------------------------------------
// Memory per hostile peer.

/// Peers that attack at once in the memory test.
const MEMORY_PEERS: usize = 18;

/// A data message with a block value of `len` bytes, as large as a frame may be, whose node
/// count then lies (2^40): the guard reads the whole frame before it refuses it.
fn big_data_frame(len: usize, rng: &mut Rng) -> Vec<u8> {
    let mut f = vec![1u8, 3, 1, 1, 1, 3];
    uint(&mut f, len as u64);
    f.extend(std::iter::repeat_n(rng.next() as u8, len));
    f.push(0xff);
    f.extend((1u64 << 40).to_le_bytes());
    f
}

/// The node runs on its own runtime whose threads are counted; the hostile peers run on another.
/// Each peer floods requests, floods ranges, or sends the largest frames the node accepts.
#[test]
fn memory_per_hostile_peer_is_bounded() {
    let world = Arc::new(build_world());
    let node_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .on_thread_start(|| COUNTED.with(|c| c.set(true)))
        .on_thread_stop(|| COUNTED.with(|c| c.set(false)))
        .build()
        .expect("runtime");
    let peer_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    COUNTED_THREADS.fetch_add(1, Ordering::SeqCst);
    let node = node_rt.block_on(async {
        let node = listening_node().await;
        node.add(world.replica.clone());
        node
    });
    let addr = node.local_addr().expect("addr");
    // Let the runtime settle, then measure from here.
    std::thread::sleep(Duration::from_millis(200));
    let base = LIVE.load(Ordering::SeqCst);
    PEAK.store(base, Ordering::SeqCst);
    let frame_len = std::env::var("FRITTER_MEMORY_FRAME")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(fritter_common::replicate::frame::MAX_FRAME - 64 * 1024);

    peer_rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for i in 0..MEMORY_PEERS {
            let world = world.clone();
            let mut rng = Rng(i as u64);
            set.spawn(async move {
                let kinds = std::env::var("FRITTER_MEMORY_KINDS").unwrap_or_else(|_| "012".into());
                let kinds = kinds.as_bytes();
                match kinds[i % kinds.len()] - b'0' {
                    0 => {
                        fake_writer(
                            addr,
                            world,
                            (1, 20, Src::Honest, keep, Some(requests_flood)),
                            rng,
                        )
                        .await
                    }
                    1 => {
                        fake_writer(
                            addr,
                            world,
                            (1, 20, Src::Honest, keep, Some(ranges_flood)),
                            rng,
                        )
                        .await
                    }
                    _ => {
                        let frames = vec![big_data_frame(frame_len, &mut rng)];
                        fake_raw(addr, frames).await
                    }
                }
            });
        }
        within(60, "every hostile peer to be dropped", async {
            while set.join_next().await.is_some() {}
        })
        .await;
    });
    let peak = PEAK.load(Ordering::SeqCst) - base;
    // The fakes see the socket close a moment before the node records why.
    peer_rt.block_on(async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while node.disconnects().len() < MEMORY_PEERS && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    let faults = node.disconnects().iter().filter(|d| d.fault).count();
    COUNTED_THREADS.fetch_sub(1, Ordering::SeqCst);
    let per_peer = peak as f64 / MEMORY_PEERS as f64 / (1024.0 * 1024.0);
    eprintln!(
        "peak {:.1} MiB above the idle node with {MEMORY_PEERS} hostile peers: {per_peer:.2} MiB per peer ({faults} dropped as faulty)",
        peak as f64 / (1024.0 * 1024.0)
    );
    assert_eq!(
        faults,
        MEMORY_PEERS,
        "every hostile peer dropped as faulty: {:?}",
        node.disconnects()
    );
    assert!(per_peer < 16.0, "{per_peer:.2} MiB per hostile peer");
    node_rt.block_on(node.shutdown());
}
