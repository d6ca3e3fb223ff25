//! Shared pieces of the fuzz targets and of the seed generator (`examples/seed_corpus.rs`).
//!
//! Every log the fuzz targets see belongs to one fixed key ([`keypair`]), and every block that key
//! ever signed is known in advance ([`truth`]): the writer of this module's [`World`] appends
//! [`TRUTH_LEN`] blocks at fork 0, and a second writer with the same key forks at [`FORK_AT`] and
//! appends different blocks at fork 1. So whatever bytes a fuzz input holds, a log that opens or
//! a proof that verifies can only show those blocks; [`check_reads`] asserts that every verified
//! read returns exactly them. A read that returns anything else would be a forgery.

pub mod seeds;

use std::sync::{Arc, OnceLock};

use fritter_common::crypto::{Hash, KeyPair, PublicKey};
use fritter_common::log::sim::SimDisk;
use fritter_common::log::{
    Access, Log, Proof, ProofRequest, RequestBlock, RequestSeek, RequestUpgrade, Storage,
    StorageFile, TreeHead,
};
use fritter_common::model::{Entry, File};

/// Seed of the one key pair every fuzzed log belongs to.
pub const KEY_SEED: [u8; 32] = [7; 32];
/// Blocks the writer appends at fork 0 (and the forked writer holds at fork 1).
pub const TRUTH_LEN: u64 = 40;
/// Length the main writer has when the "mid" proofs and the mid replica are made.
pub const MID_LEN: u64 = 20;
/// The forked writer appends this many fork-0 blocks, then truncates to [`FORK_AT`].
pub const FORK_APPENDED: u64 = 30;
/// Length the forked writer truncates to before it appends fork-1 blocks.
pub const FORK_AT: u64 = 25;
/// Blocks the mid replica holds (sparse).
pub const MID_BLOCKS: [u64; 5] = [0, 3, 7, 13, 19];

pub fn keypair() -> KeyPair {
    KeyPair::from_seed(&KEY_SEED)
}

/// Block `seq` as first written at `fork`: varied sizes (one of them empty), so byte offsets and
/// seeks have something to get wrong.
pub fn block(fork: u64, seq: u64) -> Vec<u8> {
    if seq == 13 {
        return Vec::new();
    }
    let filler = "x".repeat(((seq * 7 + fork * 11) % 53) as usize);
    format!("fritter fuzz block {fork}:{seq} {filler}").into_bytes()
}

/// The block at `seq` of the log at `fork` that the key's owner signed, or `None` when the owner
/// never signed a log of that fork reaching `seq`.
pub fn truth(fork: u64, seq: u64) -> Option<Vec<u8>> {
    match fork {
        0 if seq < TRUTH_LEN => Some(block(0, seq)),
        1 if seq < FORK_AT => Some(block(0, seq)),
        1 if seq < TRUTH_LEN => Some(block(1, seq)),
        _ => None,
    }
}

/// The tree hash of the first `length` blocks of `fork`, as the owner computed it.
pub fn truth_tree_hash(fork: u64, length: u64) -> Option<Hash> {
    static HASHES: OnceLock<[Vec<Hash>; 2]> = OnceLock::new();
    let hashes = HASHES.get_or_init(|| {
        [0, 1].map(|f| {
            let mut head = TreeHead::default();
            let mut out = vec![head.hash()];
            let mut nodes = Vec::new();
            for seq in 0..TRUTH_LEN {
                head.append_block(&block_of(f, seq), &mut nodes)
                    .expect("append to an in-memory tree");
                out.push(head.hash());
            }
            out
        })
    });
    hashes
        .get(usize::try_from(fork).ok()?)?
        .get(usize::try_from(length).ok()?)
        .copied()
}

fn block_of(fork: u64, seq: u64) -> Vec<u8> {
    truth(fork, seq).expect("seq below TRUTH_LEN")
}

/// Asserts what any log of this key may show, whatever its storage held or whatever proofs it
/// took: a signed head is one the owner signed, and every verified read returns the owner's
/// bytes. Errors are fine; wrong data is not. Reads are bounded so no input can make this slow.
pub fn check_reads(log: &Log, what: &str) {
    let head = log.head();
    if head.length == 0 {
        return;
    }
    let want = truth_tree_hash(head.fork, head.length);
    assert!(
        want == Some(head.hash()),
        "{what}: log opened at fork {} length {} with a tree the owner never signed",
        head.fork,
        head.length
    );
    let fork = head.fork;
    for seq in 0..head.length.min(64) {
        if let Ok(got) = log.get(seq) {
            assert!(
                truth(fork, seq).as_deref() == Some(&got[..]),
                "{what}: get({seq}) returned bytes the owner never wrote: {got:?}"
            );
        }
    }
    let _ = log.for_each(0, head.length.min(1000), |seq, got| {
        assert!(
            truth(fork, seq).as_deref() == Some(got),
            "{what}: for_each({seq}) returned bytes the owner never wrote: {got:?}"
        );
        Ok(())
    });
}

/// The logs and proofs the proof target checks against, built once per process.
pub struct World {
    pub key: PublicKey,
    /// Fork 0, [`TRUTH_LEN`] blocks.
    pub main: Log,
    pub main_disk: SimDisk,
    /// The main writer's files when it had [`MID_LEN`] blocks.
    pub main_mid_disk: SimDisk,
    pub main_head: TreeHead,
    pub mid_head: TreeHead,
    /// Fork 1, [`TRUTH_LEN`] blocks, sharing the first [`FORK_AT`] with `main`.
    pub forked: Log,
    pub forked_disk: SimDisk,
    pub forked_head: TreeHead,
    /// A replica at [`MID_LEN`] holding only [`MID_BLOCKS`], to copy for each input.
    pub mid_replica: SimDisk,
    /// Proofs the writers answered: at [`MID_LEN`], at [`TRUTH_LEN`], and from the fork.
    pub mid_proofs: Vec<Proof>,
    pub main_proofs: Vec<Proof>,
    pub forked_proofs: Vec<Proof>,
}

pub fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(World::build)
}

fn append_truth(log: &Log, fork: u64, upto: u64) {
    while log.len() < upto {
        let seq = log.len();
        let b = truth(fork, seq).expect("truth block");
        assert_eq!(log.append(&b).expect("append"), seq);
    }
}

impl World {
    fn build() -> World {
        let kp = keypair();
        let key = kp.public();

        let main_disk = SimDisk::new();
        let main = Log::open(&main_disk, key, Access::Writer(kp.clone())).expect("open writer");
        append_truth(&main, 0, MID_LEN);
        let mid_head = (*main.head()).clone();
        let main_mid_disk = copy_disk(&main_disk);
        let mid_proofs = answer_all(&main);

        // The mid replica: an upgrade to MID_LEN, then a few blocks with the fewest nodes that
        // connect to what it already holds.
        let mid_replica = SimDisk::new();
        {
            let replica = Log::open(&mid_replica, key, Access::Replica).expect("open replica");
            let up = main
                .proof(&ProofRequest {
                    upgrade: Some(RequestUpgrade {
                        start: 0,
                        length: MID_LEN,
                    }),
                    ..Default::default()
                })
                .expect("upgrade proof");
            replica.apply_proof(&up).expect("apply upgrade");
            for seq in MID_BLOCKS {
                let applied = (0..=8).any(|nodes| {
                    let req = ProofRequest {
                        block: Some(RequestBlock { index: seq, nodes }),
                        ..Default::default()
                    };
                    main.proof(&req)
                        .is_ok_and(|p| replica.apply_proof(&p).is_ok())
                });
                assert!(
                    applied,
                    "no block proof for {seq} applies to the mid replica"
                );
            }
            assert_eq!(replica.len(), MID_LEN);
            check_reads(&replica, "mid replica");
        }

        append_truth(&main, 0, TRUTH_LEN);
        let main_head = (*main.head()).clone();
        let main_proofs = answer_all(&main);

        let forked_disk = SimDisk::new();
        let forked = Log::open(&forked_disk, key, Access::Writer(kp)).expect("open fork writer");
        append_truth(&forked, 0, FORK_APPENDED);
        forked.truncate(FORK_AT).expect("truncate");
        append_truth(&forked, 1, TRUTH_LEN);
        let forked_head = (*forked.head()).clone();
        assert_eq!(forked_head.fork, 1);
        let forked_proofs = answer_all(&forked);

        check_reads(&main, "main writer");
        check_reads(&forked, "forked writer");
        World {
            key,
            main,
            main_disk,
            main_mid_disk,
            main_head,
            mid_head,
            forked,
            forked_disk,
            forked_head,
            mid_replica,
            mid_proofs,
            main_proofs,
            forked_proofs,
        }
    }
}

/// Requests of every shape (upgrades from several starts, blocks and hashes with several node
/// counts, seeks, and their combinations) and the proofs `log` answers; refused requests are
/// skipped. Deterministic, so the seed corpus and the fuzz targets agree byte for byte.
pub fn answer_all(log: &Log) -> Vec<Proof> {
    let len = log.len();
    let byte_len = log.head().byte_length;
    let mut reqs = Vec::new();
    let starts = [0, 1, 5, MID_LEN, len.saturating_sub(1)];
    for &s in &starts {
        if s < len {
            reqs.push(ProofRequest {
                upgrade: Some(RequestUpgrade {
                    start: s,
                    length: len - s,
                }),
                ..Default::default()
            });
            reqs.push(ProofRequest {
                upgrade: Some(RequestUpgrade {
                    start: s,
                    length: 1,
                }),
                ..Default::default()
            });
        }
    }
    for index in [0, 1, 2, 3, 7, 12, 13, 19, 24, 25, 31, 39] {
        if index >= len {
            continue;
        }
        for nodes in 0..=6 {
            let block = Some(RequestBlock { index, nodes });
            reqs.push(ProofRequest {
                block,
                ..Default::default()
            });
            reqs.push(ProofRequest {
                hash: block,
                ..Default::default()
            });
            reqs.push(ProofRequest {
                block,
                upgrade: Some(RequestUpgrade {
                    start: 0,
                    length: len,
                }),
                ..Default::default()
            });
            if index + 1 < len {
                let start = index + 1;
                reqs.push(ProofRequest {
                    block,
                    upgrade: Some(RequestUpgrade {
                        start,
                        length: len - start,
                    }),
                    ..Default::default()
                });
            }
        }
    }
    for index in [1, 3, 5, 7, 11, 15, 23, 31, 47, 63] {
        for nodes in 0..=3 {
            reqs.push(ProofRequest {
                hash: Some(RequestBlock { index, nodes }),
                ..Default::default()
            });
        }
    }
    for bytes in [0, 1, 10, 100, 500, byte_len / 2, byte_len.saturating_sub(1)] {
        let seek = Some(RequestSeek { bytes, padding: 0 });
        reqs.push(ProofRequest {
            seek,
            ..Default::default()
        });
        reqs.push(ProofRequest {
            seek,
            upgrade: Some(RequestUpgrade {
                start: 0,
                length: len,
            }),
            ..Default::default()
        });
        reqs.push(ProofRequest {
            seek,
            block: Some(RequestBlock { index: 2, nodes: 2 }),
            ..Default::default()
        });
    }
    let mut out: Vec<Proof> = Vec::new();
    for req in reqs {
        if let Ok(p) = log.proof(&req) {
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    out
}

/// The names of a log's files.
pub const FILES: [&str; 3] = ["tree", "data", "bitfield"];

/// The current contents of a file of a simulated disk (empty if it does not exist).
pub fn read_file(disk: &SimDisk, name: &str) -> Vec<u8> {
    let Ok(file) = disk.open(name, false) else {
        return Vec::new();
    };
    let len = file.len().expect("sim len");
    let mut buf = vec![0u8; usize::try_from(len).expect("small file")];
    file.read_exact_at(&mut buf, 0).expect("sim read");
    buf
}

fn write_file(disk: &SimDisk, name: &str, bytes: &[u8]) -> Arc<dyn StorageFile> {
    let file = disk.open(name, true).expect("sim open");
    if !bytes.is_empty() {
        file.write_all_at(bytes, 0).expect("sim write");
    }
    file.sync().expect("sim sync");
    file
}

/// A new simulated disk holding durable copies of `disk`'s log files.
pub fn copy_disk(disk: &SimDisk) -> SimDisk {
    let copy = SimDisk::new();
    for name in FILES {
        write_file(&copy, name, &read_file(disk, name));
    }
    copy
}

/// Size of one header slot at the start of the `tree` file; nodes follow the two slots.
pub const SLOT_BYTES: usize = 4096;
/// Bytes of an encoded header; its last four are a CRC32C of the rest.
pub const HEADER_BYTES: usize = fritter_common::log::header::ENCODED_LEN;

/// The `storage_open` target's input: a log's three files, in a compact form.
///
/// ```text
/// byte 0      flags: 1 = fix slot 0's CRC, 2 = fix slot 1's CRC, 4 = also open as a replica
///             (which repairs), 8 = also open as the writer and append
/// bytes 1..9  four u16 LE lengths: slot 0, slot 1, nodes, data (each cut to what is left)
/// then        slot 0 bytes, slot 1 bytes, node bytes, data bytes; the rest is the bitfield
/// ```
///
/// The `tree` file is slot 0 at offset 0, slot 1 at [`SLOT_BYTES`] and the nodes at twice that,
/// each written only when non-empty (gaps read as zeros, as on a real sparse file). Mostly-zero
/// slots thus cost the fuzzer nothing, and the CRC flags let mutated headers get past the checksum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageInput {
    pub flags: u8,
    pub slot0: Vec<u8>,
    pub slot1: Vec<u8>,
    pub nodes: Vec<u8>,
    pub data: Vec<u8>,
    pub bitfield: Vec<u8>,
}

impl StorageInput {
    pub const FIX_CRC0: u8 = 1;
    pub const FIX_CRC1: u8 = 2;
    pub const REPLICA: u8 = 4;
    pub const WRITER: u8 = 8;

    pub fn decode(input: &[u8]) -> Option<StorageInput> {
        let (&flags, rest) = input.split_first()?;
        if rest.len() < 8 {
            return None;
        }
        let (lens, mut rest) = rest.split_at(8);
        let mut take = |i: usize, max: usize| {
            let n = usize::from(u16::from_le_bytes([lens[2 * i], lens[2 * i + 1]]))
                .min(max)
                .min(rest.len());
            let (part, tail) = rest.split_at(n);
            rest = tail;
            part.to_vec()
        };
        let slot0 = take(0, SLOT_BYTES);
        let slot1 = take(1, SLOT_BYTES);
        let nodes = take(2, usize::MAX);
        let data = take(3, usize::MAX);
        Some(StorageInput {
            flags,
            slot0,
            slot1,
            nodes,
            data,
            bitfield: rest.to_vec(),
        })
    }

    /// The input for a disk's files, trailing zeros of the slots and bitfield dropped. `None`
    /// when a part does not fit the u16 lengths.
    pub fn from_disk(disk: &SimDisk, flags: u8) -> Option<StorageInput> {
        let tree = read_file(disk, "tree");
        let part = |from: usize, to: usize| {
            tree.get(from.min(tree.len())..to.min(tree.len()))
                .unwrap_or_default()
                .to_vec()
        };
        let trim = |mut v: Vec<u8>| {
            while v.last() == Some(&0) {
                v.pop();
            }
            v
        };
        let input = StorageInput {
            flags,
            slot0: trim(part(0, SLOT_BYTES)),
            slot1: trim(part(SLOT_BYTES, 2 * SLOT_BYTES)),
            nodes: part(2 * SLOT_BYTES, tree.len()),
            data: read_file(disk, "data"),
            bitfield: trim(read_file(disk, "bitfield")),
        };
        let fits = [&input.slot0, &input.slot1, &input.nodes, &input.data]
            .iter()
            .all(|p| p.len() <= usize::from(u16::MAX));
        fits.then_some(input)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.flags];
        for part in [&self.slot0, &self.slot1, &self.nodes, &self.data] {
            out.extend_from_slice(
                &u16::try_from(part.len())
                    .expect("part fits u16")
                    .to_le_bytes(),
            );
        }
        for part in [
            &self.slot0,
            &self.slot1,
            &self.nodes,
            &self.data,
            &self.bitfield,
        ] {
            out.extend_from_slice(part);
        }
        out
    }

    /// A simulated disk holding these files, durably.
    pub fn to_disk(&self) -> SimDisk {
        let mut tree = Vec::new();
        let mut put = |offset: usize, bytes: &[u8]| {
            if !bytes.is_empty() {
                if tree.len() < offset + bytes.len() {
                    tree.resize(offset + bytes.len(), 0);
                }
                tree[offset..offset + bytes.len()].copy_from_slice(bytes);
            }
        };
        put(0, &fix_crc(&self.slot0, self.flags & Self::FIX_CRC0 != 0));
        put(
            SLOT_BYTES,
            &fix_crc(&self.slot1, self.flags & Self::FIX_CRC1 != 0),
        );
        put(2 * SLOT_BYTES, &self.nodes);
        let disk = SimDisk::new();
        write_file(&disk, "tree", &tree);
        write_file(&disk, "data", &self.data);
        write_file(&disk, "bitfield", &self.bitfield);
        disk
    }
}

fn fix_crc(slot: &[u8], fix: bool) -> Vec<u8> {
    let mut slot = slot.to_vec();
    if fix && slot.len() >= HEADER_BYTES {
        let crc = crc32c::crc32c(&slot[..HEADER_BYTES - 4]);
        slot[HEADER_BYTES - 4..HEADER_BYTES].copy_from_slice(&crc.to_le_bytes());
    }
    slot
}

/// Asserts that a file a reader accepted can be written back: its normalized entry passes the
/// writer's checks, lives at the same path, and reads back as the same file. (The model promises
/// that a writer never publishes what readers refuse and that normalizing is stable.)
pub fn check_file_round_trip(path: &fritter_common::model::FilePath, file: &File, what: &str) {
    let entry = file
        .to_entry()
        .unwrap_or_else(|e| panic!("{what}: accepted file {file:?} does not make an entry: {e}"));
    assert_eq!(
        entry.path(),
        path,
        "{what}: {file:?} accepted at a path it would not be written to"
    );
    let bytes = entry
        .encode_checked()
        .unwrap_or_else(|e| panic!("{what}: normalized {file:?} fails the writer's checks: {e}"));
    let back = Entry::decode(&bytes)
        .unwrap_or_else(|e| panic!("{what}: checked bytes do not decode: {e}"))
        .validate()
        .unwrap_or_else(|e| panic!("{what}: normalized {file:?} is refused on read: {e}"));
    assert_eq!(
        back.as_ref(),
        Some(file),
        "{what}: normalizing is not stable"
    );
}
