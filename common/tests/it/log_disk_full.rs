//! A full disk: writes fail with a clear storage-full error and change nothing, reads keep
//! working, and once space is back the same log (not only a reopened one) writes again and
//! everything verifies.

use fritter_common::crypto::KeyPair;
use fritter_common::log::sim::SimDisk;
use fritter_common::log::{Access, Log, LogError, ProofRequest, RequestBlock, RequestUpgrade};

fn keypair() -> KeyPair {
    KeyPair::from_seed(&[5; 32])
}

fn block(i: u64) -> Vec<u8> {
    format!("entry {i} {}", "f".repeat(60 + (i % 40) as usize)).into_bytes()
}

fn used(disk: &SimDisk) -> u64 {
    ["tree", "data", "bitfield"]
        .iter()
        .filter_map(|f| disk.file_len(f))
        .sum()
}

fn check(log: &Log, expected: &[Vec<u8>]) {
    assert_eq!(log.len(), expected.len() as u64);
    for (seq, want) in expected.iter().enumerate() {
        assert_eq!(&log.get(seq as u64).unwrap(), want, "get({seq})");
    }
    assert_eq!(log.read_range(0, expected.len() as u64).unwrap(), expected);
}

fn assert_full(e: &LogError, what: &str) {
    assert!(
        e.is_storage_full(),
        "{what}: expected a storage-full error, got {e:?}"
    );
    assert!(
        e.to_string().contains("no space"),
        "{what}: unclear message {e}"
    );
}

#[test]
fn a_full_disk_fails_appends_cleanly_and_recovers_when_space_returns() {
    for headroom in [0u64, 1, 100, 700, 2000, 5000] {
        let disk = SimDisk::new();
        let kp = keypair();
        let log = Log::open(&disk, kp.public(), Access::Writer(kp.clone())).unwrap();
        let mut expected: Vec<Vec<u8>> = Vec::new();
        for i in 0..20 {
            log.append(&block(i)).unwrap();
            expected.push(block(i));
        }
        disk.set_capacity(Some(used(&disk) + headroom));

        let mut failures = 0;
        for i in 20..120 {
            let before = log.info();
            let result = if i % 3 == 0 {
                let batch: Vec<Vec<u8>> = (0..3).map(|j| block(i * 10 + j)).collect();
                let refs: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
                log.append_batch(&refs).map(|seq| (seq, batch))
            } else {
                log.append(&block(i)).map(|seq| (seq, vec![block(i)]))
            };
            match result {
                Ok((seq, blocks)) => {
                    assert_eq!(seq, expected.len() as u64, "headroom {headroom}");
                    expected.extend(blocks);
                }
                Err(e) => {
                    assert_full(&e, &format!("headroom {headroom}, append {i}"));
                    assert_eq!(
                        log.info(),
                        before,
                        "headroom {headroom}: a failed append changed the head"
                    );
                    failures += 1;
                }
            }
        }
        assert!(
            failures > 50,
            "headroom {headroom}: the disk never filled up ({failures} failures)"
        );
        // Reads, scans and proofs keep working on a full disk.
        check(&log, &expected);
        let proof = log.proof(&ProofRequest {
            block: Some(RequestBlock { index: 3, nodes: 0 }),
            upgrade: Some(RequestUpgrade {
                start: 0,
                length: expected.len() as u64,
            }),
            ..Default::default()
        });
        assert!(
            proof.is_ok(),
            "headroom {headroom}: proof on a full disk: {proof:?}"
        );
        // Truncating only rewrites a header slot in place: it needs no new space.
        let cut = expected.len() - 2;
        log.truncate(cut as u64).unwrap();
        expected.truncate(cut);

        disk.set_capacity(None);
        for i in 0..5 {
            let b = format!("after space came back {i}").into_bytes();
            let seq = log.append(&b).unwrap_or_else(|e| {
                panic!("headroom {headroom}: append after space came back: {e}")
            });
            assert_eq!(seq, expected.len() as u64);
            expected.push(b);
        }
        check(&log, &expected);
        let info = log.info();
        drop(log);
        let reopened = Log::open(&disk, kp.public(), Access::Writer(kp.clone())).unwrap();
        assert_eq!(reopened.info(), info, "headroom {headroom}");
        check(&reopened, &expected);
    }
}

#[test]
fn a_replica_on_a_full_disk_refuses_proofs_cleanly_and_takes_them_later() {
    let kp = keypair();
    let wdisk = SimDisk::new();
    let writer = Log::open(&wdisk, kp.public(), Access::Writer(kp.clone())).unwrap();
    for i in 0..10 {
        writer.append(&block(i)).unwrap();
    }
    let at_ten = writer
        .proof(&ProofRequest {
            upgrade: Some(RequestUpgrade {
                start: 0,
                length: 10,
            }),
            ..Default::default()
        })
        .unwrap();
    for i in 10..30 {
        writer.append(&block(i)).unwrap();
    }
    let rdisk = SimDisk::new();
    let replica = Log::open(&rdisk, kp.public(), Access::Replica).unwrap();
    replica.apply_proof(&at_ten).unwrap();
    assert_eq!(replica.len(), 10);
    let block_proof = |seq: u64, nodes: u64| {
        writer
            .proof(&ProofRequest {
                block: Some(RequestBlock { index: seq, nodes }),
                ..Default::default()
            })
            .unwrap()
    };
    replica.apply_proof(&block_proof(0, 3)).unwrap();
    let info = replica.info();

    rdisk.set_capacity(Some(used(&rdisk)));
    for (seq, nodes) in [(1u64, 0u64), (5, 2), (16, 0)] {
        let err = replica.apply_proof(&block_proof(seq, nodes)).unwrap_err();
        if seq == 16 {
            // Past the replica's length: refused as a proof before any write.
            assert!(matches!(err, LogError::InvalidProof(_)), "{err:?}");
        } else {
            assert_full(&err, &format!("block {seq}"));
        }
        assert_eq!(replica.info(), info);
        assert!(!replica.has(seq).unwrap());
    }
    let upgrade = writer
        .proof(&ProofRequest {
            upgrade: Some(RequestUpgrade {
                start: 10,
                length: 20,
            }),
            ..Default::default()
        })
        .unwrap();
    let err = replica.apply_proof(&upgrade).unwrap_err();
    assert_full(&err, "upgrade");
    assert_eq!(replica.info(), info);
    assert_eq!(replica.get(0).unwrap(), block(0));

    rdisk.set_capacity(None);
    replica.apply_proof(&block_proof(1, 0)).unwrap();
    replica.apply_proof(&upgrade).unwrap();
    assert_eq!(replica.len(), 30);
    assert_eq!(replica.get(1).unwrap(), block(1));
    assert_eq!(replica.info().contiguous, 2);
    drop(replica);
    let reopened = Log::open(&rdisk, kp.public(), Access::Replica).unwrap();
    assert_eq!((reopened.len(), reopened.info().contiguous), (30, 2));
    assert_eq!(reopened.get(1).unwrap(), block(1));
}
