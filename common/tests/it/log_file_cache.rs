//! Logs opened through a `FileCache`: more logs than descriptors, every write kept, and the
//! descriptors the process holds stay bounded.

use std::sync::Arc;

use fritter_common::crypto::KeyPair;
use fritter_common::log::{Access, DiskStorage, FileCache, Log};

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

#[test]
fn many_logs_through_a_small_cache_keep_every_entry() {
    // Counts the process's open descriptors: other tests of this binary must not run beside it.
    if !crate::alone::in_own_process(
        module_path!(),
        "many_logs_through_a_small_cache_keep_every_entry",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cache = FileCache::new(16);
    let before = open_fds();
    let logs: Vec<(KeyPair, Arc<Log>)> = (0..60)
        .map(|i| {
            let kp = KeyPair::generate();
            let log = Log::open(
                &DiskStorage::with_file_cache(dir.path().join(i.to_string()), cache.clone()),
                kp.public(),
                Access::Writer(kp.clone()),
            )
            .unwrap();
            (kp, Arc::new(log))
        })
        .collect();
    // Round-robin appends and reads: every log's files are closed and reopened many times.
    for round in 0..20u32 {
        for (i, (_, log)) in logs.iter().enumerate() {
            let seq = log
                .append(format!("log {i} entry {round}").as_bytes())
                .unwrap();
            assert_eq!(seq, u64::from(round));
            if round > 0 {
                let back = log.get(u64::from(round - 1)).unwrap();
                assert_eq!(back, format!("log {i} entry {}", round - 1).as_bytes());
            }
        }
        assert!(cache.open() <= 16, "{} descriptors cached", cache.open());
        // 60 logs of 3+ files each would hold 180+ descriptors without the cache.
        let held = open_fds().saturating_sub(before);
        assert!(held <= 40, "{held} descriptors held by 60 logs");
    }
    // Everything is on disk: the same logs reopened without a cache read back every entry.
    let keys: Vec<_> = logs.iter().map(|(kp, _)| kp.public()).collect();
    drop(logs);
    for (i, key) in keys.into_iter().enumerate() {
        let log = Log::open(
            &DiskStorage::new(dir.path().join(i.to_string())),
            key,
            Access::View,
        )
        .unwrap();
        assert_eq!(log.info().length, 20);
        for round in 0..20u64 {
            assert_eq!(
                log.get(round).unwrap(),
                format!("log {i} entry {round}").as_bytes()
            );
        }
    }
}

#[test]
fn a_file_removed_while_closed_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let cache = FileCache::new(16);
    let kp = KeyPair::generate();
    let victim = Log::open(
        &DiskStorage::with_file_cache(dir.path().join("victim"), cache.clone()),
        kp.public(),
        Access::Writer(kp.clone()),
    )
    .unwrap();
    victim.append(b"first").unwrap();
    // Push the victim's files out of the cache, then remove its directory.
    let others: Vec<Log> = (0..20)
        .map(|i| {
            let kp = KeyPair::generate();
            let log = Log::open(
                &DiskStorage::with_file_cache(dir.path().join(i.to_string()), cache.clone()),
                kp.public(),
                Access::Writer(kp),
            )
            .unwrap();
            log.append(b"x").unwrap();
            log
        })
        .collect();
    for log in &others {
        log.get(0).unwrap();
    }
    std::fs::remove_dir_all(dir.path().join("victim")).unwrap();
    // Its files were closed by the cache: reopening them fails, and the append reports it.
    let err = victim.append(b"second").unwrap_err();
    assert!(err.to_string().contains("No such file"), "{err}");
}
