//! Unit tests of the log: round trips, reopen, truncate, replication through proofs and the
//! proofs a replica must refuse, plus property tests. Power loss, torn files, a full disk and
//! many writers are tested from outside the crate, in `common/tests/it/log_*.rs`.

use super::sim::SimDisk;
use super::*;

mod basic;
mod props;
mod replica;

/// A fixed key pair, so every run signs the same bytes.
fn keypair(seed: u8) -> KeyPair {
    KeyPair::from_seed(&[seed; 32])
}

/// Block `i`: distinct per index, of varying length (empty for multiples of 50).
fn block(i: u64) -> Vec<u8> {
    let mut b = format!("block {i} ").into_bytes();
    b.resize((i % 50) as usize * 7, b'a' + (i % 26) as u8);
    b
}

fn writer(disk: &SimDisk, kp: &KeyPair) -> Log {
    Log::open(disk, kp.public(), Access::Writer(kp.clone())).unwrap()
}

/// A writer holding blocks `0..n`, appended in batches of varying size (several commits).
fn filled(disk: &SimDisk, kp: &KeyPair, n: u64) -> Log {
    let log = writer(disk, kp);
    let mut next = 0;
    while next < n {
        let end = (next + 1 + next % 4).min(n);
        let blocks: Vec<Vec<u8>> = (next..end).map(block).collect();
        let refs: Vec<&[u8]> = blocks.iter().map(Vec::as_slice).collect();
        assert_eq!(log.append_batch(&refs).unwrap(), next);
        next = end;
    }
    log
}

/// Asserts that `log` holds exactly `expected`, through every read path.
fn check(log: &Log, expected: &[Vec<u8>]) {
    let n = expected.len() as u64;
    assert_eq!(log.len(), n, "length");
    for (seq, want) in expected.iter().enumerate() {
        assert_eq!(&log.get(seq as u64).unwrap(), want, "get({seq})");
    }
    assert_eq!(log.read_range(0, n).unwrap(), expected, "read_range");
    let mut seen = 0u64;
    log.for_each(0, n, |seq, b| {
        assert_eq!(seq, seen);
        assert_eq!(b, &expected[seq as usize][..], "for_each({seq})");
        seen += 1;
        Ok(())
    })
    .unwrap();
    assert_eq!(seen, n);
    assert_eq!(log.get(n), Err(LogError::OutOfRange { seq: n, length: n }));
    let byte_length: u64 = expected.iter().map(|b| b.len() as u64).sum();
    assert_eq!(log.info().byte_length, byte_length, "byte length");
}

/// How many nodes above block `seq` the replica lacks (`missingNodes` in merkle-tree.js).
fn missing_nodes(replica: &Log, seq: u64) -> u64 {
    let head = 2 * replica.len();
    if 2 * seq >= head {
        return 0;
    }
    let mut ite = flat::Iter::new(2 * seq);
    let mut count = 0;
    while !ite.contains(head) && replica.node(ite.index).unwrap().is_none() {
        count += 1;
        ite.parent();
        assert!(count < 64, "no stored root above block {seq}");
    }
    count
}

/// Every byte of every file of the log on `disk`.
fn files(disk: &SimDisk) -> Vec<Vec<u8>> {
    ["tree", "data", "bitfield"]
        .iter()
        .map(|name| {
            let f = disk.open(name, false).unwrap();
            let mut buf = vec![0u8; f.len().unwrap() as usize];
            f.read_exact_at(&mut buf, 0).unwrap();
            buf
        })
        .collect()
}
