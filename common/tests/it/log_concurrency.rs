//! Many threads on one log: group commit must hand out every sequence number exactly once and
//! put each block at the number its writer was told, while readers and truncates run alongside.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};

use fritter_common::crypto::KeyPair;
use fritter_common::log::sim::SimDisk;
use fritter_common::log::{Access, DiskStorage, Log, LogError, LogInfo, Storage};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn keypair() -> KeyPair {
    KeyPair::from_seed(&[9; 32])
}

fn block(t: usize, i: usize) -> Vec<u8> {
    format!(
        "thread {t} append {i} {}",
        "z".repeat((t * 31 + i * 7) % 90)
    )
    .into_bytes()
}

/// `threads` writers append `per_thread` blocks each (with `batches`, every fifth call is a
/// batch of three); checks the seqs are distinct and dense and each reads back as its thread
/// wrote it.
fn many_writers(storage: &dyn Storage, threads: usize, per_thread: usize, batches: bool) {
    let kp = keypair();
    let log = Log::open(storage, kp.public(), Access::Writer(kp.clone())).unwrap();
    let written: Vec<Vec<(u64, Vec<u8>)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let log = &log;
                s.spawn(move || {
                    let mut out = Vec::with_capacity(per_thread);
                    let mut i = 0;
                    while i < per_thread {
                        if batches && i % 5 == 4 && i + 3 <= per_thread {
                            let blocks: Vec<Vec<u8>> = (i..i + 3).map(|j| block(t, j)).collect();
                            let refs: Vec<&[u8]> = blocks.iter().map(Vec::as_slice).collect();
                            let first = log.append_batch(&refs).unwrap();
                            out.extend(
                                blocks
                                    .into_iter()
                                    .enumerate()
                                    .map(|(k, b)| (first + k as u64, b)),
                            );
                            i += 3;
                        } else {
                            let b = block(t, i);
                            out.push((log.append(&b).unwrap(), b));
                            i += 1;
                        }
                    }
                    out
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let total = (threads * per_thread) as u64;
    assert_eq!(log.len(), total);
    let mut seqs = HashSet::new();
    for (t, list) in written.iter().enumerate() {
        let mut last = None;
        for (seq, b) in list {
            assert!(seqs.insert(*seq), "seq {seq} handed out twice");
            assert!(*seq < total, "seq {seq} past the length {total}");
            // One thread's appends are ordered: each returns after the previous is durable.
            assert!(last < Some(*seq), "thread {t}: seq {seq} after {last:?}");
            last = Some(*seq);
            assert_eq!(&log.get(*seq).unwrap(), b, "thread {t}: seq {seq}");
        }
    }
    assert_eq!(seqs.len() as u64, total, "seqs are not dense");
    let all = log.read_range(0, total).unwrap();
    drop(log);
    let reopened = Log::open(storage, kp.public(), Access::View).unwrap();
    assert_eq!(reopened.read_range(0, total).unwrap(), all);
}

#[test]
fn sixteen_threads_of_200_appends_get_distinct_dense_seqs() {
    many_writers(&SimDisk::new(), 16, 200, false);
}

#[test]
fn sixteen_threads_mixing_appends_and_batches() {
    many_writers(&SimDisk::new(), 16, 100, true);
}

#[test]
fn eight_threads_on_the_real_disk() {
    let dir = tempfile::tempdir().unwrap();
    many_writers(&DiskStorage::new(dir.path()), 8, 40, true);
}

#[test]
fn readers_and_truncates_alongside_appends_never_see_corruption() {
    // Truncates cut the files and clear caches while other threads commit and verify; none of
    // that may make a committed entry unreadable, before or after a reopen.
    for round in 0..8u64 {
        let disk = SimDisk::new();
        let kp = keypair();
        let log = Log::open(&disk, kp.public(), Access::Writer(kp.clone())).unwrap();
        for i in 0..40 {
            log.append(&block(99, i)).unwrap();
        }
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            let log = &log;
            let stop = &stop;
            let writers: Vec<_> = (0..3)
                .map(|t| {
                    s.spawn(move || {
                        for i in 0..150 {
                            log.append(&block(t, i)).unwrap();
                        }
                    })
                })
                .collect();
            let cutter = s.spawn(move || {
                let mut rng = StdRng::seed_from_u64(round);
                for _ in 0..60 {
                    let len = log.len();
                    let to = len.saturating_sub(rng.gen_range(0..4));
                    log.truncate(to).unwrap();
                    std::thread::yield_now();
                }
            });
            let readers: Vec<_> = (0..2)
                .map(|r| {
                    s.spawn(move || {
                        let mut rng = StdRng::seed_from_u64(round * 10 + r);
                        while !stop.load(Ordering::Relaxed) {
                            let len = log.len();
                            if len == 0 {
                                continue;
                            }
                            let seq = rng.gen_range(0..len);
                            match log.get(seq) {
                                Ok(_) | Err(LogError::OutOfRange { .. }) => {}
                                Err(e) => panic!("round {round}: get({seq}) while writing: {e}"),
                            }
                            let start = rng.gen_range(0..len);
                            match log.read_range(start, (start + 20).min(len)) {
                                Ok(_) | Err(LogError::OutOfRange { .. }) => {}
                                Err(e) => panic!(
                                    "round {round}: read_range({start}..) while writing: {e}"
                                ),
                            }
                        }
                    })
                })
                .collect();
            for w in writers {
                w.join().unwrap();
            }
            cutter.join().unwrap();
            stop.store(true, Ordering::Relaxed);
            for r in readers {
                r.join().unwrap();
            }
        });
        let info = log.info();
        let all = log
            .read_range(0, info.length)
            .unwrap_or_else(|e| panic!("round {round}: read after the run: {e}"));
        drop(log);
        let reopened = Log::open(&disk, kp.public(), Access::View).unwrap();
        assert_eq!(
            LogInfo {
                writable: true,
                ..reopened.info()
            },
            info,
            "round {round}: reopen found another head"
        );
        assert_eq!(
            reopened.read_range(0, info.length).unwrap(),
            all,
            "round {round}"
        );
    }
}
