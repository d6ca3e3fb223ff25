//! The replica's side: growing through proofs from the writer, sparse blocks, and every proof a
//! replica must refuse without changing a byte of its storage.

use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::*;
use crate::log::header::{Header, SLOT_BYTES};

fn upgrade(start: u64, length: u64) -> ProofRequest {
    ProofRequest {
        upgrade: Some(RequestUpgrade { start, length }),
        ..Default::default()
    }
}

/// The proof the replica would ask `writer` for to get block `seq`, upgrading it to the
/// writer's length on the way if `upgrade_to_writer`.
fn block_proof(writer: &Log, replica: &Log, seq: u64, upgrade_to_writer: bool) -> Proof {
    let local = replica.len();
    let req = ProofRequest {
        block: Some(RequestBlock {
            index: seq,
            nodes: missing_nodes(replica, seq),
        }),
        upgrade: (upgrade_to_writer && writer.len() > local).then(|| RequestUpgrade {
            start: local,
            length: writer.len() - local,
        }),
        ..Default::default()
    };
    writer.proof(&req).unwrap()
}

fn new_replica(kp: &KeyPair) -> (SimDisk, Log) {
    let disk = SimDisk::new();
    let log = Log::open(&disk, kp.public(), Access::Replica).unwrap();
    (disk, log)
}

fn assert_same_head(replica: &Log, writer: &Log) {
    let (r, w) = (replica.info(), writer.info());
    assert_eq!(
        (r.fork, r.length, r.byte_length, r.tree_hash, r.signature),
        (w.fork, w.length, w.byte_length, w.tree_hash, w.signature)
    );
    assert!(!r.writable);
}

#[test]
fn upgrade_only_proofs_grow_the_replica_without_blocks() {
    let kp = keypair(10);
    let wdisk = SimDisk::new();
    let writer = filled(&wdisk, &kp, 20);
    let (rdisk, replica) = new_replica(&kp);
    assert_eq!(replica.info().length, 0);

    replica
        .apply_proof(&writer.proof(&upgrade(0, 20)).unwrap())
        .unwrap();
    assert_same_head(&replica, &writer);
    assert_eq!(replica.info().contiguous, 0);
    assert!(!replica.has(0).unwrap() && !replica.has(19).unwrap() && !replica.has(20).unwrap());
    assert_eq!(replica.get(0), Err(LogError::NotAvailable { seq: 0 }));
    assert_eq!(
        replica.get(20),
        Err(LogError::OutOfRange {
            seq: 20,
            length: 20
        })
    );
    assert_eq!(
        replica.read_range(0, 20),
        Err(LogError::NotAvailable { seq: 0 })
    );

    for i in 20..33 {
        writer.append(&block(i)).unwrap();
    }
    replica
        .apply_proof(&writer.proof(&upgrade(20, 13)).unwrap())
        .unwrap();
    assert_same_head(&replica, &writer);

    // The same proof again changes nothing.
    let again = writer.proof(&upgrade(20, 13)).unwrap();
    let before = files(&rdisk);
    replica.apply_proof(&again).unwrap();
    assert_eq!(files(&rdisk), before);

    drop(replica);
    let reopened = Log::open(&rdisk, kp.public(), Access::Replica).unwrap();
    assert_same_head(&reopened, &writer);
}

#[test]
fn a_block_with_an_upgrade_lands_in_a_fresh_replica() {
    let kp = keypair(11);
    let writer = filled(&SimDisk::new(), &kp, 20);
    let (_disk, replica) = new_replica(&kp);
    replica
        .apply_proof(&block_proof(&writer, &replica, 7, true))
        .unwrap();
    assert_same_head(&replica, &writer);
    assert!(replica.has(7).unwrap() && !replica.has(6).unwrap());
    assert_eq!(replica.get(7).unwrap(), block(7));
    assert_eq!(replica.info().contiguous, 0);

    replica
        .apply_proof(&block_proof(&writer, &replica, 0, false))
        .unwrap();
    assert_eq!(replica.info().contiguous, 1);
    assert_eq!(replica.get(0).unwrap(), block(0));
}

#[test]
fn blocks_after_an_upgrade_advance_contiguous() {
    let kp = keypair(12);
    let writer = filled(&SimDisk::new(), &kp, 21);
    let (_disk, replica) = new_replica(&kp);
    replica
        .apply_proof(&writer.proof(&upgrade(0, 21)).unwrap())
        .unwrap();
    for seq in 0..21 {
        replica
            .apply_proof(&block_proof(&writer, &replica, seq, false))
            .unwrap();
        assert_eq!(replica.info().contiguous, seq + 1);
    }
    check(&replica, &(0..21).map(block).collect::<Vec<_>>());

    // A full replica serves proofs of its own that a second replica accepts.
    let (_disk2, second) = new_replica(&kp);
    second
        .apply_proof(&block_proof(&replica, &second, 9, true))
        .unwrap();
    assert_eq!(second.get(9).unwrap(), block(9));
    assert_same_head(&second, &writer);
}

#[test]
fn sparse_blocks_out_of_order_then_reopen() {
    let kp = keypair(13);
    let n = 37;
    let writer = filled(&SimDisk::new(), &kp, n);
    let (rdisk, mut replica) = new_replica(&kp);
    replica
        .apply_proof(&writer.proof(&upgrade(0, n)).unwrap())
        .unwrap();
    let mut order: Vec<u64> = (0..n).collect();
    order.shuffle(&mut rand::rngs::StdRng::seed_from_u64(13));
    let mut held = std::collections::BTreeSet::new();
    for (step, &seq) in order.iter().enumerate() {
        replica
            .apply_proof(&block_proof(&writer, &replica, seq, false))
            .unwrap();
        held.insert(seq);
        let contiguous = (0..n).find(|s| !held.contains(s)).unwrap_or(n);
        assert_eq!(replica.info().contiguous, contiguous, "after block {seq}");
        for s in 0..n {
            assert_eq!(replica.has(s).unwrap(), held.contains(&s), "has({s})");
            match replica.get(s) {
                Ok(b) => assert!(held.contains(&s) && b == block(s), "get({s})"),
                Err(e) => assert!(
                    !held.contains(&s) && e == LogError::NotAvailable { seq: s },
                    "get({s}): {e:?}"
                ),
            }
        }
        if step == n as usize / 2 {
            // The bitfield and header survive a reopen halfway.
            let info = replica.info();
            drop(replica);
            replica = Log::open(&rdisk, kp.public(), Access::Replica).unwrap();
            assert_eq!(replica.info(), info);
        }
    }
    check(&replica, &(0..n).map(block).collect::<Vec<_>>());
}

#[test]
fn replica_follows_a_growing_writer_one_block_at_a_time() {
    let kp = keypair(14);
    let writer = writer(&SimDisk::new(), &kp);
    let (_disk, replica) = new_replica(&kp);
    for seq in 0..40 {
        writer.append(&block(seq)).unwrap();
        replica
            .apply_proof(&block_proof(&writer, &replica, seq, true))
            .unwrap();
        assert_same_head(&replica, &writer);
        assert_eq!(replica.info().contiguous, seq + 1);
    }
    check(&replica, &(0..40).map(block).collect::<Vec<_>>());
}

#[test]
fn a_view_and_a_writer_do_not_take_proofs_as_a_replica() {
    let kp = keypair(15);
    let wdisk = SimDisk::new();
    let writer = filled(&wdisk, &kp, 3);
    let proof = writer.proof(&upgrade(0, 3)).unwrap();
    let view = Log::open(&wdisk, kp.public(), Access::View).unwrap();
    assert_eq!(
        view.apply_proof(&proof).unwrap_err(),
        LogError::ReadOnly {
            archive: kp.public().to_hex()
        }
    );
}

#[test]
fn weak_keys_are_refused() {
    let mut identity = [0u8; 32];
    identity[0] = 1;
    assert!(matches!(
        crypto::PublicKey::from_bytes(&identity),
        Err(KeyError::Weak(_))
    ));
    assert!(matches!(
        crypto::PublicKey::from_hex(&hex::encode(identity)),
        Err(KeyError::Weak(_))
    ));
    // The other small-order points are refused too (weak or not a valid point at all).
    for small in [
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000080",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    ] {
        assert!(
            crypto::PublicKey::from_hex(small).is_err(),
            "{small} accepted"
        );
    }
    // Even if a weak key got in, the identity signature (R = identity, s = 0) that loose
    // verification accepts for every message is refused.
    let weak = crypto::PublicKey::from_validated(identity);
    let mut sig = [0u8; 64];
    sig[0] = 1;
    assert!(!weak.verify(b"one message", &sig));
    assert!(!weak.verify(b"another message", &sig));
}

// ---- refusals ----

/// The writer the hostile proofs are cut from: 20 blocks on fork 0, plus the upgrade proof it
/// gave at length 10.
struct Source {
    kp: KeyPair,
    writer: Log,
    at_ten: Proof,
}

fn source() -> Source {
    let kp = keypair(20);
    let writer = filled(&SimDisk::new(), &kp, 10);
    let at_ten = writer.proof(&upgrade(0, 10)).unwrap();
    for i in 10..20 {
        writer.append(&block(i)).unwrap();
    }
    Source { kp, writer, at_ten }
}

/// A replica at length 10 holding blocks 0..4 and 7.
fn target(src: &Source) -> (SimDisk, Log) {
    let (disk, log) = new_replica(&src.kp);
    log.apply_proof(&src.at_ten).unwrap();
    for seq in [0, 1, 2, 3, 7] {
        let p = src
            .writer
            .proof(&ProofRequest {
                block: Some(RequestBlock {
                    index: seq,
                    nodes: missing_nodes(&log, seq),
                }),
                ..Default::default()
            })
            .unwrap();
        log.apply_proof(&p).unwrap();
    }
    assert_eq!((log.len(), log.info().contiguous), (10, 4));
    (disk, log)
}

/// Applies `bad` to a fresh target: it must fail as `expected` says, leave every byte of storage
/// and the info as they were, and the replica must still take good proofs afterwards.
fn refuses(src: &Source, name: &str, bad: &Proof, expected: impl Fn(&LogError) -> bool) {
    let (disk, replica) = target(src);
    let info = replica.info();
    let before = files(&disk);
    let err = replica.apply_proof(bad).expect_err(name);
    assert!(expected(&err), "{name}: unexpected error {err:?}");
    assert_eq!(replica.info(), info, "{name}: info changed");
    assert_eq!(files(&disk), before, "{name}: storage changed");
    assert!(!replica.has(5).unwrap() && replica.has(7).unwrap());

    replica
        .apply_proof(&block_proof(&src.writer, &replica, 5, false))
        .unwrap_or_else(|e| panic!("{name}: good block proof refused: {e}"));
    assert_eq!(replica.get(5).unwrap(), block(5));
    replica
        .apply_proof(&block_proof(&src.writer, &replica, 15, true))
        .unwrap_or_else(|e| panic!("{name}: good upgrade refused: {e}"));
    assert_same_head(&replica, &src.writer);
    assert_eq!(replica.get(15).unwrap(), block(15));
    assert_eq!(replica.get(7).unwrap(), block(7));
}

fn is_invalid_proof(e: &LogError) -> bool {
    matches!(e, LogError::InvalidProof(_))
}

fn is_bad_signature(e: &LogError) -> bool {
    matches!(e, LogError::InvalidSignature { .. })
}

fn plain_block(src: &Source, seq: u64) -> Proof {
    let (_d, t) = target(src);
    block_proof(&src.writer, &t, seq, false)
}

fn upgrading_block(src: &Source, seq: u64) -> Proof {
    let (_d, t) = target(src);
    block_proof(&src.writer, &t, seq, true)
}

#[test]
fn refuses_a_tampered_block_value() {
    let src = source();
    let mut p = plain_block(&src, 5);
    p.block.as_mut().unwrap().value[0] ^= 1;
    refuses(&src, "tampered value", &p, is_invalid_proof);

    let mut p = plain_block(&src, 5);
    p.block.as_mut().unwrap().value.push(0);
    refuses(&src, "longer value", &p, is_invalid_proof);

    let mut p = upgrading_block(&src, 15);
    p.block.as_mut().unwrap().value[0] ^= 0x80;
    refuses(
        &src,
        "tampered value under an upgrade",
        &p,
        is_bad_signature,
    );

    // The right bytes claimed for another index.
    let mut p = plain_block(&src, 5);
    p.block.as_mut().unwrap().index = 6;
    refuses(&src, "value at the wrong index", &p, |e| {
        matches!(e, LogError::InvalidProof(_))
    });
}

#[test]
fn refuses_a_tampered_node() {
    let src = source();
    let p = plain_block(&src, 5);
    for i in 0..p.block.as_ref().unwrap().nodes.len() {
        let mut bad = p.clone();
        bad.block.as_mut().unwrap().nodes[i].hash[3] ^= 4;
        refuses(
            &src,
            &format!("block node {i} hash"),
            &bad,
            is_invalid_proof,
        );
        let mut bad = p.clone();
        bad.block.as_mut().unwrap().nodes[i].size += 1;
        refuses(
            &src,
            &format!("block node {i} size"),
            &bad,
            is_invalid_proof,
        );
        let mut bad = p.clone();
        bad.block.as_mut().unwrap().nodes.remove(i);
        refuses(
            &src,
            &format!("block node {i} missing"),
            &bad,
            is_invalid_proof,
        );
    }
    let p = src.writer.proof(&upgrade(10, 10)).unwrap();
    let u = p.upgrade.as_ref().unwrap();
    assert!(!u.nodes.is_empty());
    for i in 0..u.nodes.len() {
        let mut bad = p.clone();
        bad.upgrade.as_mut().unwrap().nodes[i].hash[0] ^= 1;
        refuses(
            &src,
            &format!("upgrade node {i} hash"),
            &bad,
            is_bad_signature,
        );
        let mut bad = p.clone();
        bad.upgrade.as_mut().unwrap().nodes[i].size ^= 1;
        refuses(
            &src,
            &format!("upgrade node {i} size"),
            &bad,
            is_bad_signature,
        );
    }
    // A trailing node the upgrade does not use is ignored, as in merkle-tree.js, and not stored.
    let mut extra = p.clone();
    extra.upgrade.as_mut().unwrap().nodes.push(Node {
        index: 37,
        size: 1,
        hash: [1; 32],
    });
    let (disk, t) = target(&src);
    t.apply_proof(&extra).unwrap();
    assert_same_head(&t, &src.writer);
    let tree = &files(&disk)[0];
    let at = (NODES_OFFSET + 37 * NODE_BYTES) as usize;
    assert!(tree.len() <= at || tree[at..at + 32] != [1; 32]);
    let mut bad = p;
    bad.upgrade.as_mut().unwrap().nodes = vec![
        Node {
            index: 0,
            size: 0,
            hash: [0; 32]
        };
        proof::MAX_PROOF_NODES + 1
    ];
    refuses(&src, "too many nodes", &bad, is_invalid_proof);
}

#[test]
fn refuses_a_wrong_signature() {
    let src = source();
    let good = src.writer.proof(&upgrade(10, 10)).unwrap();

    let mut bad = good.clone();
    bad.upgrade.as_mut().unwrap().signature.as_mut().unwrap()[10] ^= 1;
    refuses(&src, "flipped signature bit", &bad, is_bad_signature);

    let mut bad = good.clone();
    bad.upgrade.as_mut().unwrap().signature = None;
    refuses(&src, "no signature", &bad, is_invalid_proof);

    // The same tree signed by another key.
    let other = filled(&SimDisk::new(), &keypair(21), 20);
    let mut bad = good.clone();
    bad.upgrade.as_mut().unwrap().signature = other.info().signature;
    refuses(&src, "signed by another key", &bad, is_bad_signature);

    // A signature of the writer, but over another length (replayed from an older head).
    let mut bad = good.clone();
    bad.upgrade.as_mut().unwrap().signature = src.at_ten.upgrade.as_ref().unwrap().signature;
    refuses(&src, "signature of another head", &bad, is_bad_signature);

    // The scalar half pushed out of range (strict verification refuses a non-canonical s).
    let mut bad = good;
    bad.upgrade.as_mut().unwrap().signature.as_mut().unwrap()[63] |= 0xe0;
    refuses(&src, "non-canonical s", &bad, is_bad_signature);
}

#[test]
fn refuses_a_block_past_the_length() {
    let src = source();
    // Block 12 exists at the writer but not below the replica's signed length 10.
    let p = src
        .writer
        .proof(&ProofRequest {
            block: Some(RequestBlock {
                index: 12,
                nodes: 0,
            }),
            ..Default::default()
        })
        .unwrap();
    refuses(&src, "block past the length", &p, is_invalid_proof);
    let p = src
        .writer
        .proof(&ProofRequest {
            block: Some(RequestBlock {
                index: 12,
                nodes: 2,
            }),
            ..Default::default()
        })
        .unwrap();
    refuses(
        &src,
        "block past the length with its path",
        &p,
        is_invalid_proof,
    );
    for index in [10, 1 << 32, (1 << 40) + 3, u64::MAX / 2, u64::MAX] {
        let p = Proof {
            fork: 0,
            block: Some(DataBlock {
                index,
                value: b"x".to_vec(),
                nodes: vec![],
            }),
            ..Default::default()
        };
        refuses(&src, &format!("block {index}"), &p, is_invalid_proof);
    }
}

#[test]
fn refuses_a_proof_from_another_fork() {
    let src = source();
    // The same key, truncated and grown again: fork 1 at length 20.
    let forked = filled(&SimDisk::new(), &src.kp, 20);
    forked.truncate(8).unwrap();
    for i in 8..20 {
        forked
            .append(format!("fork 1 entry {i}").as_bytes())
            .unwrap();
    }
    assert_eq!(forked.info().fork, 1);
    let forks = |e: &LogError| {
        *e == LogError::ForkMismatch {
            local: 0,
            remote: 1,
        }
    };
    refuses(
        &src,
        "upgrade from fork 1",
        &forked.proof(&upgrade(10, 10)).unwrap(),
        forks,
    );
    let p = forked
        .proof(&ProofRequest {
            block: Some(RequestBlock { index: 5, nodes: 2 }),
            ..Default::default()
        })
        .unwrap();
    refuses(&src, "block from fork 1", &p, forks);

    // A good proof with only the fork number changed.
    let mut bad = plain_block(&src, 5);
    bad.fork = 7;
    refuses(&src, "block claiming fork 7", &bad, |e| {
        *e == LogError::ForkMismatch {
            local: 0,
            remote: 7,
        }
    });
}

#[test]
fn refuses_a_second_head_for_a_length() {
    // The writer's key signs two different trees (two devices, or a restored backup): the
    // replica keeps the head it has and refuses the other.
    let src = source();
    let twin = filled(&SimDisk::new(), &src.kp, 10);
    for i in 10..20 {
        twin.append(format!("twin {i}").as_bytes()).unwrap();
    }
    assert_ne!(twin.info().tree_hash, src.writer.info().tree_hash);
    let (_disk, replica) = target(&src);
    replica
        .apply_proof(&src.writer.proof(&upgrade(10, 10)).unwrap())
        .unwrap();
    let info = replica.info();
    for p in [
        twin.proof(&upgrade(10, 10)).unwrap(),
        twin.proof(&upgrade(0, 20)).unwrap(),
    ] {
        let err = replica.apply_proof(&p).unwrap_err();
        assert!(
            matches!(
                err,
                LogError::Conflict { length: 20 }
                    | LogError::InvalidSignature { .. }
                    | LogError::InvalidProof(_)
            ),
            "{err:?}"
        );
        assert_eq!(replica.info(), info);
    }
    // And a twin that differs from the first block on.
    let other = writer(&SimDisk::new(), &src.kp);
    for i in 0..15 {
        other.append(format!("other {i}").as_bytes()).unwrap();
    }
    refuses(
        &src,
        "diverging tree",
        &other.proof(&upgrade(10, 5)).unwrap(),
        |e| {
            matches!(
                e,
                LogError::InvalidSignature { .. } | LogError::InvalidProof(_)
            )
        },
    );
}

#[test]
fn refuses_an_older_or_absurd_upgrade_without_allocating() {
    let src = source();
    let (_d, t) = target(&src);
    // Applying the proof the replica already took is fine and changes nothing...
    let info = t.info();
    t.apply_proof(&src.at_ten).unwrap();
    assert_eq!(t.info(), info);
    // ...but once it has grown, the older head is refused.
    t.apply_proof(&src.writer.proof(&upgrade(10, 10)).unwrap())
        .unwrap();
    let info = t.info();
    let err = t.apply_proof(&src.at_ten).unwrap_err();
    assert!(
        matches!(
            err,
            LogError::InvalidProof(_) | LogError::InvalidSignature { .. }
        ),
        "{err:?}"
    );
    assert_eq!(t.info(), info);

    let good = src.writer.proof(&upgrade(10, 10)).unwrap();
    for (start, length) in [
        (10, (1u64 << 40) - 10),
        (0, 1 << 40),
        (10, u64::MAX - 5),
        (u64::MAX, 2),
        (10, 0),
        (10, (1u64 << 32) - 9),
    ] {
        let mut bad = good.clone();
        let u = bad.upgrade.as_mut().unwrap();
        u.start = start;
        u.length = length;
        let t0 = Instant::now();
        refuses(&src, &format!("upgrade {start}+{length}"), &bad, |e| {
            matches!(
                e,
                LogError::InvalidProof(_) | LogError::InvalidSignature { .. }
            )
        });
        assert!(
            t0.elapsed() < Duration::from_secs(2),
            "upgrade {start}+{length} took {:?}",
            t0.elapsed()
        );
    }
}

// ---- interrupted proofs ----

#[test]
fn nodes_left_by_an_interrupted_proof_cannot_vouch_for_a_later_one() {
    // A proof whose tree write failed halfway (or was cut by a crash) leaves some nodes of its
    // path stored without their siblings. A later proof anchored on such a node would store a
    // block that never verifies: it must be refused, and `missing_nodes` must ask past it.
    let src = source();
    let (disk, replica) = target(&src);
    replica
        .apply_proof(&src.writer.proof(&upgrade(10, 10)).unwrap())
        .unwrap();
    let seq = 12;
    let full = block_proof(&src.writer, &replica, seq, false);
    let needed = replica.missing_nodes(seq).unwrap();
    assert!(needed >= 2, "{needed}");
    // Store what the interrupted proof got to disk: the leaf and its first parent, not the
    // sibling of that parent.
    let leaf = Node::leaf(seq, &block(seq));
    let sibling = full.block.as_ref().unwrap().nodes[0];
    let parent = Node::parent(flat::parent(leaf.index), &leaf, &sibling).unwrap();
    let tree = disk.open("tree", false).unwrap();
    write_nodes(&*tree, &mut [leaf, sibling, parent]).unwrap();
    drop(tree);

    let info = replica.info();
    let naive = src
        .writer
        .proof(&ProofRequest {
            block: Some(RequestBlock {
                index: seq,
                nodes: 0,
            }),
            ..Default::default()
        })
        .unwrap();
    let err = replica.apply_proof(&naive).unwrap_err();
    assert!(matches!(err, LogError::InvalidProof(_)), "{err:?}");
    assert_eq!(replica.info(), info);
    assert!(!replica.has(seq).unwrap());

    assert_eq!(replica.missing_nodes(seq).unwrap(), needed);
    let healing = src
        .writer
        .proof(&ProofRequest {
            block: Some(RequestBlock {
                index: seq,
                nodes: needed,
            }),
            ..Default::default()
        })
        .unwrap();
    replica.apply_proof(&healing).unwrap();
    assert_eq!(replica.get(seq).unwrap(), block(seq));
    assert_eq!(replica.missing_nodes(seq).unwrap(), 0);
}

#[test]
fn blocks_marked_before_a_lost_header_count_as_contiguous_after_reopen() {
    // The bitfield is synced before the header that advances `contiguous`; if that header is
    // lost, the reopened replica must still count the marked blocks.
    let src = source();
    let (disk, replica) = target(&src);
    replica
        .apply_proof(&block_proof(&src.writer, &replica, 4, false))
        .unwrap();
    replica
        .apply_proof(&block_proof(&src.writer, &replica, 5, false))
        .unwrap();
    assert_eq!(replica.info().contiguous, 6);
    let info = replica.info();
    drop(replica);
    // Put back a newest header that still says contiguous 4, as if the last two were lost.
    let tree = disk.open("tree", false).unwrap();
    let mut newest = None;
    for slot in 0..2u64 {
        let mut buf = vec![0u8; 512];
        tree.read_exact_at(&mut buf, slot * SLOT_BYTES).unwrap();
        if let header::Slot::Valid(h) = Header::decode(&buf) {
            if newest
                .as_ref()
                .is_none_or(|n: &Header| h.generation > n.generation)
            {
                newest = Some(h);
            }
        }
    }
    let mut h = newest.unwrap();
    h.generation += 1;
    h.contiguous = 4;
    tree.write_all_at(&h.encode(), h.slot_offset()).unwrap();
    drop(tree);

    let reopened = Log::open(&disk, src.kp.public(), Access::Replica).unwrap();
    assert_eq!(reopened.info(), info);
    check_prefix(&reopened, 6);
    let view = Log::open(&disk, src.kp.public(), Access::View).unwrap();
    assert_eq!(view.info().contiguous, 6);
}

fn check_prefix(log: &Log, n: u64) {
    let mut seen = 0;
    log.for_each(0, n, |seq, b| {
        assert_eq!(b, &block(seq)[..]);
        seen += 1;
        Ok(())
    })
    .unwrap();
    assert_eq!(seen, n);
}

#[test]
fn blocks_past_a_lost_upgrade_survive_the_reopen_and_the_next_upgrade() {
    // A block arrives with an upgrade; data, nodes and bitfield are synced but the header is
    // lost. Reopening must not cut the block's bytes as a torn tail: its bit is set, and once
    // the upgrade arrives again it is read.
    let src = source();
    let (disk, replica) = target(&src);
    for seq in [4, 5, 6, 8, 9] {
        replica
            .apply_proof(&block_proof(&src.writer, &replica, seq, false))
            .unwrap();
    }
    assert_eq!(replica.info().contiguous, 10);
    let tree = disk.open("tree", false).unwrap();
    let mut headers = vec![0u8; NODES_OFFSET as usize];
    tree.read_exact_at(&mut headers, 0).unwrap();

    replica
        .apply_proof(&block_proof(&src.writer, &replica, 15, true))
        .unwrap();
    assert!(replica.has(15).unwrap());
    drop(replica);
    tree.write_all_at(&headers, 0).unwrap();
    drop(tree);

    let replica = Log::open(&disk, src.kp.public(), Access::Replica).unwrap();
    assert_eq!((replica.len(), replica.info().contiguous), (10, 10));
    replica
        .apply_proof(&src.writer.proof(&upgrade(10, 10)).unwrap())
        .unwrap();
    assert!(replica.has(15).unwrap());
    assert_eq!(replica.get(15).unwrap(), block(15));
}
