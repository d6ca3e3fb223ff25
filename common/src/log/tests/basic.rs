//! The owner's side: append, batches, scans, reopen, truncate.

use super::*;

#[test]
fn append_then_get_round_trips() {
    let disk = SimDisk::new();
    let kp = keypair(1);
    let log = writer(&disk, &kp);
    assert!(log.is_empty());
    assert_eq!(log.get(0), Err(LogError::OutOfRange { seq: 0, length: 0 }));
    let mut expected = Vec::new();
    for i in 0..60 {
        assert_eq!(log.append(&block(i)).unwrap(), i);
        expected.push(block(i));
    }
    // An empty block is a valid entry too.
    assert_eq!(log.append(b"").unwrap(), 60);
    expected.push(Vec::new());
    check(&log, &expected);
    let info = log.info();
    assert_eq!((info.fork, info.length, info.contiguous), (0, 61, 61));
    assert!(info.writable && info.signature.is_some());
    assert!(log.has(60).unwrap() && !log.has(61).unwrap());
}

#[test]
fn too_large_block_is_refused_and_nothing_changes() {
    let disk = SimDisk::new();
    let kp = keypair(1);
    let log = filled(&disk, &kp, 3);
    let before = log.info();
    let big = vec![7u8; MAX_BLOCK_BYTES + 1];
    assert_eq!(
        log.append(&big),
        Err(LogError::TooLarge {
            size: MAX_BLOCK_BYTES + 1,
            max: MAX_BLOCK_BYTES
        })
    );
    assert_eq!(
        log.append_batch(&[b"ok", &big]),
        Err(LogError::TooLarge {
            size: MAX_BLOCK_BYTES + 1,
            max: MAX_BLOCK_BYTES
        })
    );
    assert_eq!(log.info(), before);
    assert_eq!(log.append(b"after").unwrap(), 3);
}

#[test]
fn append_batch_returns_first_seq_and_commits_all() {
    let disk = SimDisk::new();
    let kp = keypair(2);
    let log = writer(&disk, &kp);
    let mut expected: Vec<Vec<u8>> = Vec::new();
    for size in [3u64, 1, 0, 7, 2, 16] {
        let start = expected.len() as u64;
        let blocks: Vec<Vec<u8>> = (start..start + size).map(block).collect();
        let refs: Vec<&[u8]> = blocks.iter().map(Vec::as_slice).collect();
        let before = log.info();
        // An empty batch reports the current length and commits nothing.
        assert_eq!(log.append_batch(&refs).unwrap(), start);
        if size == 0 {
            assert_eq!(log.info(), before);
        }
        expected.extend(blocks);
    }
    check(&log, &expected);
}

#[test]
fn for_each_and_read_range_cover_ranges_and_chunks() {
    let disk = SimDisk::new();
    let kp = keypair(3);
    let log = writer(&disk, &kp);
    // More than one 4096-leaf chunk of `for_each`.
    let n = 5000u64;
    let expected: Vec<Vec<u8>> = (0..n).map(|i| format!("e{i}").into_bytes()).collect();
    for chunk in expected.chunks(1000) {
        let refs: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
        log.append_batch(&refs).unwrap();
    }
    check(&log, &expected);
    for (start, end) in [
        (0, 1),
        (17, 18),
        (4095, 4097),
        (100, 4300),
        (4999, 5000),
        (3, 3),
        (9, 2),
        (4990, 99_999),
    ] {
        let want: Vec<Vec<u8>> = (start..end.min(n))
            .map(|s| expected[s as usize].clone())
            .collect();
        assert_eq!(
            log.read_range(start, end).unwrap(),
            want,
            "read_range({start}, {end})"
        );
        let mut got = Vec::new();
        log.for_each(start, end, |seq, b| {
            got.push((seq, b.to_vec()));
            Ok(())
        })
        .unwrap();
        let want_seq: Vec<(u64, Vec<u8>)> = want
            .into_iter()
            .enumerate()
            .map(|(i, b)| (start + i as u64, b))
            .collect();
        assert_eq!(got, want_seq, "for_each({start}, {end})");
    }
    // The callback's error stops the scan and comes back unchanged.
    let mut calls = 0;
    let err = log
        .for_each(0, n, |seq, _| {
            calls += 1;
            if seq == 10 {
                return Err(LogError::NotAvailable { seq: 4242 });
            }
            Ok(())
        })
        .unwrap_err();
    assert_eq!(err, LogError::NotAvailable { seq: 4242 });
    assert_eq!(calls, 11);
}

#[test]
fn reopen_keeps_everything() {
    let disk = SimDisk::new();
    let kp = keypair(4);
    let expected: Vec<Vec<u8>> = (0..40).map(block).collect();
    let info = {
        let log = filled(&disk, &kp, 40);
        log.info()
    };
    let log = writer(&disk, &kp);
    assert_eq!(log.info(), info);
    check(&log, &expected);
    // A reopened writer keeps appending where it left off, and the result survives a reopen too.
    assert_eq!(log.append(b"more").unwrap(), 40);
    drop(log);
    let mut expected = expected;
    expected.push(b"more".to_vec());
    let view = Log::open(&disk, kp.public(), Access::View).unwrap();
    check(&view, &expected);
    assert!(!view.writable());
    assert_eq!(
        view.append(b"x"),
        Err(LogError::ReadOnly {
            archive: kp.public().to_hex()
        })
    );
    assert_eq!(
        view.truncate(1),
        Err(LogError::ReadOnly {
            archive: kp.public().to_hex()
        })
    );
    let replica_view = Log::open(&disk, kp.public(), Access::Replica).unwrap();
    check(&replica_view, &expected);
}

#[test]
fn open_refuses_a_key_pair_for_another_key() {
    let disk = SimDisk::new();
    let err = Log::open(&disk, keypair(1).public(), Access::Writer(keypair(2))).unwrap_err();
    assert!(
        matches!(err, LogError::Key(KeyError::Mismatch(_))),
        "{err:?}"
    );
}

#[test]
fn open_refuses_files_of_another_archive() {
    let disk = SimDisk::new();
    filled(&disk, &keypair(1), 3);
    let err = Log::open(&disk, keypair(2).public(), Access::View).unwrap_err();
    assert!(
        matches!(err, LogError::Corrupt { seq: None, .. }),
        "{err:?}"
    );
}

#[test]
fn a_view_of_missing_files_is_an_io_error() {
    let err = Log::open(&SimDisk::new(), keypair(1).public(), Access::View).unwrap_err();
    assert!(
        matches!(
            err,
            LogError::Io {
                kind: io::ErrorKind::NotFound,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn truncate_bumps_fork_and_later_appends_replace_the_cut_entries() {
    let disk = SimDisk::new();
    let kp = keypair(5);
    let log = filled(&disk, &kp, 30);
    let mut expected: Vec<Vec<u8>> = (0..30).map(block).collect();
    let before = log.info();

    assert_eq!(
        log.truncate(31),
        Err(LogError::BadTruncate {
            requested: 31,
            length: 30
        })
    );
    assert_eq!(log.info(), before);

    log.truncate(13).unwrap();
    expected.truncate(13);
    let info = log.info();
    assert_eq!((info.fork, info.length, info.contiguous), (1, 13, 13));
    assert_ne!(info.signature, before.signature);
    check(&log, &expected);

    for i in 0..20 {
        let b = format!("fork one {i}").into_bytes();
        assert_eq!(log.append(&b).unwrap(), 13 + i);
        expected.push(b);
    }
    check(&log, &expected);

    // Truncating to the current length still starts a new fork.
    log.truncate(33).unwrap();
    assert_eq!((log.info().fork, log.len()), (2, 33));
    drop(log);

    let log = writer(&disk, &kp);
    assert_eq!(log.info().fork, 2);
    check(&log, &expected);

    log.truncate(0).unwrap();
    assert_eq!(
        (log.info().fork, log.len(), log.info().byte_length),
        (3, 0, 0)
    );
    check(&log, &[]);
    assert_eq!(log.append(b"fresh").unwrap(), 0);
    drop(log);
    let log = writer(&disk, &kp);
    assert_eq!(log.info().fork, 3);
    check(&log, &[b"fresh".to_vec()]);
}

#[test]
fn truncate_then_reads_use_the_new_tree_not_the_verified_cache() {
    // Every block is read (filling the verified-node cache) before the cut, then the same
    // indexes get new nodes; a stale cache would call them corrupt.
    let disk = SimDisk::new();
    let kp = keypair(6);
    let log = filled(&disk, &kp, 64);
    log.read_range(0, 64).unwrap();
    log.truncate(5).unwrap();
    let mut expected: Vec<Vec<u8>> = (0..5).map(block).collect();
    for i in 5..64 {
        let b = format!("new {i}").into_bytes();
        log.append(&b).unwrap();
        expected.push(b);
    }
    check(&log, &expected);
}

#[test]
fn writer_files_stop_at_the_signed_tree_after_reopen() {
    // Bytes past the last commit (an interrupted append) are cut on open.
    let disk = SimDisk::new();
    let kp = keypair(7);
    let info = filled(&disk, &kp, 9).info();
    let tree = disk.open("tree", false).unwrap();
    let data = disk.open("data", false).unwrap();
    let tree_len = tree.len().unwrap();
    tree.write_all_at(&[0xAB; 200], tree_len).unwrap();
    data.write_all_at(&[0xCD; 300], info.byte_length).unwrap();
    let log = writer(&disk, &kp);
    assert_eq!(log.info(), info);
    assert_eq!(disk.file_len("tree"), Some(tree_len));
    assert_eq!(disk.file_len("data"), Some(info.byte_length));
    assert_eq!(log.append(b"next").unwrap(), 9);
}

#[test]
fn a_read_that_raced_a_truncate_cannot_vouch_for_old_nodes() {
    // A reader that verified nodes under the old head may record them after the truncate has
    // cleared the cache (it does not hold the state lock). Those entries must not count for the
    // new fork, whose nodes at the same indexes differ.
    let disk = SimDisk::new();
    let kp = keypair(8);
    let log = filled(&disk, &kp, 64);
    let old_fork = log.info().fork;
    let old: Vec<(u64, Hash)> = (0..127)
        .filter_map(|i| log.node(i).unwrap())
        .map(|n| (n.index, n.hash))
        .collect();
    log.truncate(5).unwrap();
    let mut expected: Vec<Vec<u8>> = (0..5).map(block).collect();
    for i in 5..64 {
        let b = format!("new {i}").into_bytes();
        log.append(&b).unwrap();
        expected.push(b);
    }
    log.remember(old, old_fork);
    check(&log, &expected);
}

/// Overwrites stored node `index` of the log on `disk`.
fn poke_node(disk: &SimDisk, index: u64, edit: impl FnOnce(&mut Node)) {
    let tree = disk.open("tree", false).unwrap();
    let mut node = read_node(&*tree, index, "test").unwrap().unwrap();
    edit(&mut node);
    tree.write_all_at(&encode_node(&node), NODES_OFFSET + index * NODE_BYTES)
        .unwrap();
}

#[test]
fn open_survives_root_sizes_that_overflow() {
    // Found by the `storage_open` fuzz target: two roots whose sizes sum past u64::MAX.
    let disk = SimDisk::new();
    let kp = keypair(9);
    filled(&disk, &kp, 3);
    // Length 3 has roots 1 (blocks 0 and 1) and 4 (block 2).
    poke_node(&disk, 1, |n| n.size = u64::MAX);
    poke_node(&disk, 4, |n| n.size = 7);
    // The older header (length 1, commits were 1 and 3) does not use node 1: open falls back.
    let log = Log::open(&disk, kp.public(), Access::View).unwrap();
    check(&log, &[block(0)]);
    drop(log);
    let log = writer(&disk, &kp);
    check(&log, &[block(0)]);
}

#[test]
fn truncate_refuses_to_sign_a_corrupt_node() {
    // After truncating to 6, nodes 3 and 9 become the signed roots; a flipped bit in node 9
    // must stop the truncate instead of being signed into the new fork.
    let disk = SimDisk::new();
    let kp = keypair(10);
    let log = filled(&disk, &kp, 20);
    let info = log.info();
    poke_node(&disk, 9, |n| n.hash[0] ^= 1);
    let err = log.truncate(6).unwrap_err();
    assert!(matches!(err, LogError::Corrupt { .. }), "{err:?}");
    assert_eq!(log.info(), info);
    drop(log);
    let log = writer(&disk, &kp);
    assert_eq!(log.info(), info);
    poke_node(&disk, 9, |n| n.hash[0] ^= 1);
    log.truncate(6).unwrap();
    check(&log, &(0..6).map(block).collect::<Vec<_>>());
}

#[test]
fn reads_survive_node_sizes_that_overflow() {
    // Sizes of inner nodes come from disk unverified while the byte offset is computed; two
    // huge ones must give a corruption error, not an overflow.
    let disk = SimDisk::new();
    let kp = keypair(11);
    let log = filled(&disk, &kp, 16);
    // Reading block 15 adds the sizes of nodes 7 and 19 (left children on its path).
    poke_node(&disk, 7, |n| n.size = u64::MAX - 5);
    poke_node(&disk, 19, |n| n.size = u64::MAX - 5);
    for seq in [15, 13, 11] {
        let err = log.get(seq).unwrap_err();
        assert!(
            matches!(err, LogError::Corrupt { seq: Some(s), .. } if s == seq),
            "{err:?}"
        );
    }
    let err = log.read_range(12, 16).unwrap_err();
    assert!(
        matches!(err, LogError::Corrupt { seq: Some(12), .. }),
        "{err:?}"
    );
    assert_eq!(log.get(3).unwrap(), block(3));
}
