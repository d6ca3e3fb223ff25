//! The log additions replication relies on: `Log::apply_proofs` (many proofs, one round of
//! syncs, per-proof results, nothing kept from a bad proof), `Log::proofs` (answers in runs) and
//! `Log::subscribe` (status after every change).

use fritter_common::crypto::KeyPair;
use fritter_common::log::sim::SimDisk;
use fritter_common::log::{
    flat, Access, Log, LogError, Proof, ProofRequest, RequestBlock, RequestUpgrade,
};

fn entry(i: u64) -> Vec<u8> {
    format!("entry {i} {}", "x".repeat((i % 40) as usize)).into_bytes()
}

fn writer(n: u64) -> (SimDisk, KeyPair, Log) {
    let disk = SimDisk::new();
    let kp = KeyPair::from_seed(&[5; 32]);
    let log = Log::open(&disk, kp.public(), Access::Writer(kp.clone())).unwrap();
    let blocks: Vec<Vec<u8>> = (0..n).map(entry).collect();
    let refs: Vec<&[u8]> = blocks.iter().map(Vec::as_slice).collect();
    log.append_batch(&refs).unwrap();
    (disk, kp, log)
}

/// Node counts as the replicator asks them for a run of blocks `from..to` right after an
/// upgrade: exact for the first block of the run and of each root, the run rule otherwise.
fn run_requests(w: &Log, r: &Log, from: u64, to: u64) -> Vec<ProofRequest> {
    let roots = w.head().roots.clone();
    (from..to)
        .map(|seq| {
            let levels = roots
                .iter()
                .find(|x| {
                    flat::left_span(x.index) <= 2 * seq && 2 * seq <= flat::right_span(x.index)
                })
                .map(|x| flat::depth(x.index))
                .unwrap();
            let tz = seq.trailing_zeros();
            let nodes = if seq == from || tz >= levels {
                r.missing_nodes(seq).unwrap()
            } else {
                tz as u64
            };
            ProofRequest {
                block: Some(RequestBlock { index: seq, nodes }),
                ..Default::default()
            }
        })
        .collect()
}

#[test]
fn a_batch_keeps_every_good_proof_and_nothing_of_a_bad_one() {
    let (_wd, kp, w) = writer(100);
    let rdisk = SimDisk::new();
    let r = Log::open(&rdisk, kp.public(), Access::Replica).unwrap();
    let mut status = r.subscribe();

    // The upgrade (with block 0) and blocks 1..60 in one batch; block 30 tampered.
    let up = w
        .proof(&ProofRequest {
            block: Some(RequestBlock { index: 0, nodes: 0 }),
            upgrade: Some(RequestUpgrade {
                start: 0,
                length: 100,
            }),
            ..Default::default()
        })
        .unwrap();
    // Node counts as if the upgrade were stored, which it will be by the time they are checked.
    let staging = Log::open(&SimDisk::new(), kp.public(), Access::Replica).unwrap();
    staging.apply_proof(&up).unwrap();
    let mut batch: Vec<Proof> = vec![up];
    let answers = w.proofs(&run_requests(&w, &staging, 1, 60));
    for (i, p) in answers.into_iter().enumerate() {
        let mut p = p.unwrap();
        if i + 1 == 30 {
            p.block.as_mut().unwrap().value[0] ^= 1;
        }
        batch.push(p);
    }
    let results = r.apply_proofs(&batch).unwrap();
    assert_eq!(results.len(), 60);
    for (i, res) in results.iter().enumerate() {
        match i {
            30 => assert!(
                matches!(res, Err(LogError::InvalidProof(_))),
                "the tampered block is refused: {res:?}"
            ),
            // Block 31 leans on block 30's proof (the run rule) and does not connect without it.
            31 => assert!(
                res.is_err(),
                "block 31 cannot connect without block 30: {res:?}"
            ),
            _ => assert!(res.is_ok(), "proof {i}: {res:?}"),
        }
    }
    let info = r.info();
    assert_eq!(
        (info.length, info.contiguous, info.tree_hash),
        (100, 30, w.info().tree_hash)
    );
    assert!(!r.has(30).unwrap() && !r.has(31).unwrap() && r.has(32).unwrap());
    for seq in (0..60).filter(|s| *s != 30 && *s != 31) {
        assert_eq!(r.get(seq).unwrap(), entry(seq));
    }
    let s = *status.borrow_and_update();
    assert_eq!(
        (s.length, s.contiguous),
        (100, 30),
        "the change was published"
    );

    // The rest, with exact node counts, completes the replica; it survives a reopen.
    let rest: Vec<ProofRequest> = [30, 31]
        .into_iter()
        .chain(60..100)
        .map(|seq| ProofRequest {
            block: Some(RequestBlock {
                index: seq,
                nodes: r.missing_nodes(seq).unwrap(),
            }),
            ..Default::default()
        })
        .collect();
    let proofs: Vec<Proof> = w.proofs(&rest).into_iter().map(Result::unwrap).collect();
    assert!(r.apply_proofs(&proofs).unwrap().iter().all(Result::is_ok));
    assert_eq!(r.info().contiguous, 100);
    assert_eq!(status.borrow_and_update().contiguous, 100);
    drop(r);
    let r = Log::open(&rdisk, kp.public(), Access::Replica).unwrap();
    assert_eq!(
        r.read_range(0, 100).unwrap(),
        (0..100).map(entry).collect::<Vec<_>>()
    );
}

#[test]
fn a_batch_of_only_bad_proofs_writes_nothing() {
    let (_wd, kp, w) = writer(20);
    let rdisk = SimDisk::new();
    let r = Log::open(&rdisk, kp.public(), Access::Replica).unwrap();
    let mut up = w
        .proof(&ProofRequest {
            upgrade: Some(RequestUpgrade {
                start: 0,
                length: 20,
            }),
            ..Default::default()
        })
        .unwrap();
    up.upgrade.as_mut().unwrap().signature.as_mut().unwrap()[0] ^= 1;
    let len_before = rdisk.file_len("tree");
    let results = r.apply_proofs(&[up.clone(), up]).unwrap();
    assert!(results
        .iter()
        .all(|r| matches!(r, Err(LogError::InvalidSignature { .. }))));
    assert_eq!(r.info().length, 0);
    assert_eq!(rdisk.file_len("tree"), len_before, "nothing written");
}

#[test]
fn proofs_in_runs_match_single_proofs() {
    let (_wd, _kp, w) = writer(300);
    let mut reqs: Vec<ProofRequest> = (0..300)
        .map(|i| ProofRequest {
            block: Some(RequestBlock {
                index: i,
                nodes: i % 5,
            }),
            ..Default::default()
        })
        .collect();
    // Out of order, a duplicate, a hash-only request, an upgrade and one out of range.
    reqs.swap(10, 200);
    reqs.push(reqs[3]);
    reqs.push(ProofRequest {
        upgrade: Some(RequestUpgrade {
            start: 100,
            length: 200,
        }),
        ..Default::default()
    });
    reqs.push(ProofRequest {
        block: Some(RequestBlock {
            index: 300,
            nodes: 0,
        }),
        ..Default::default()
    });
    let many = w.proofs(&reqs);
    for (req, got) in reqs.iter().zip(many) {
        assert_eq!(got, w.proof(req), "{req:?}");
    }
}

#[test]
fn status_is_published_after_appends_and_truncates() {
    let (_disk, _kp, w) = writer(10);
    let mut rx = w.subscribe();
    let s0 = *rx.borrow_and_update();
    assert_eq!((s0.fork, s0.length, s0.contiguous), (0, 10, 10));
    w.append(b"more").unwrap();
    assert!(rx.has_changed().unwrap());
    let s1 = *rx.borrow_and_update();
    assert_eq!((s1.length, s1.contiguous), (11, 11));
    assert!(s1.version > s0.version);
    w.truncate(5).unwrap();
    let s2 = *rx.borrow_and_update();
    assert_eq!((s2.fork, s2.length, s2.contiguous), (1, 5, 5));
    // A refused append publishes nothing.
    let big = vec![0u8; fritter_common::log::MAX_BLOCK_BYTES + 1];
    assert!(w.append(&big).is_err());
    assert!(!rx.has_changed().unwrap());
}
