//! Read-only views of a directory another `Log` is writing (the crawler and the app's web server
//! read archives the sync task appends to): each view sees what was committed when it opened,
//! keeps reading it while the writer goes on, and never touches the files.

use std::fs;
use std::path::Path;

use fritter_common::crypto::KeyPair;
use fritter_common::log::{Access, DiskStorage, Log};

fn keypair() -> KeyPair {
    KeyPair::from_seed(&[21; 32])
}

fn block(i: u64) -> Vec<u8> {
    format!("view test {i} {}", "v".repeat((i % 33) as usize)).into_bytes()
}

fn snapshot(dir: &Path) -> Vec<Vec<u8>> {
    ["tree", "data", "bitfield"]
        .iter()
        .map(|f| fs::read(dir.join(f)).unwrap())
        .collect()
}

fn check(log: &Log, n: u64) {
    assert_eq!(log.len(), n);
    for seq in 0..n {
        assert_eq!(log.get(seq).unwrap(), block(seq), "get({seq})");
    }
    assert_eq!(
        log.read_range(0, n).unwrap(),
        (0..n).map(block).collect::<Vec<_>>()
    );
}

#[test]
fn views_open_beside_a_writer_and_see_committed_entries() {
    let dir = tempfile::tempdir().unwrap();
    let storage = DiskStorage::new(dir.path());
    let kp = keypair();
    let writer = Log::open(&storage, kp.public(), Access::Writer(kp.clone())).unwrap();
    for i in 0..10 {
        writer.append(&block(i)).unwrap();
    }

    let before = snapshot(dir.path());
    let first = Log::open(&storage, kp.public(), Access::View).unwrap();
    let second = Log::open(&DiskStorage::new(dir.path()), kp.public(), Access::View).unwrap();
    assert_eq!(
        snapshot(dir.path()),
        before,
        "opening views changed the files"
    );
    for view in [&first, &second] {
        assert_eq!(view.info().tree_hash, writer.info().tree_hash);
        assert!(!view.writable());
        check(view, 10);
    }

    // The writer goes on; the open views keep their snapshot and still read it verified.
    let blocks: Vec<Vec<u8>> = (10..25).map(block).collect();
    let refs: Vec<&[u8]> = blocks.iter().map(Vec::as_slice).collect();
    writer.append_batch(&refs).unwrap();
    check(&first, 10);
    check(&second, 10);

    // A view opened now sees the new entries, and agrees with the writer on the signed head.
    let third = Log::open(&storage, kp.public(), Access::View).unwrap();
    assert_eq!(third.head(), writer.head());
    check(&third, 25);
    let mut writer_info = writer.info();
    writer_info.writable = false;
    assert_eq!(third.info(), writer_info);

    // The writer is unaffected by its readers.
    writer.append(&block(25)).unwrap();
    check(&writer, 26);
    drop((first, second, third));
    drop(writer);
    check(&Log::open(&storage, kp.public(), Access::View).unwrap(), 26);
}

#[test]
fn views_opened_while_the_writer_appends_always_open() {
    // Views opened in a loop while another thread appends: each open succeeds and the view reads
    // every entry up to the length it saw.
    let dir = tempfile::tempdir().unwrap();
    let storage = DiskStorage::new(dir.path());
    let kp = keypair();
    let writer = Log::open(&storage, kp.public(), Access::Writer(kp.clone())).unwrap();
    writer.append(&block(0)).unwrap();
    std::thread::scope(|s| {
        let w = s.spawn(|| {
            for i in 1..60 {
                writer.append(&block(i)).unwrap();
            }
        });
        let mut last = 0;
        while !w.is_finished() || last < 60 {
            let view = Log::open(&storage, kp.public(), Access::View).unwrap();
            let n = view.len();
            assert!(n >= last, "a later view saw fewer entries ({n} < {last})");
            check(&view, n);
            last = n;
        }
        w.join().unwrap();
    });
}
