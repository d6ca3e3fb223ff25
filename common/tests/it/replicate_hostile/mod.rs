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

mod attacks;
mod connection;
mod lies;
mod memory;
mod scenarios;
mod truncate;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::replicate_support::*;
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
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use attacks::*;
use scenarios::*;

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
