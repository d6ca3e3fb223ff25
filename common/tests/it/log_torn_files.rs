//! Torn and corrupt files on the real disk. A pristine log of 50 entries, written in a few
//! commits, is damaged one way at a time: cut at every byte offset near the end of `data`, over
//! the last nodes of `tree` and over both header slots, or with one bit flipped in every byte
//! of those regions. Every time, open must finish within 5 s with Ok or a typed corruption error,
//! and an opened log must never return bytes other than the ones written: each read gives the
//! original entry or says which entry is corrupt (upstream Rust hypercore hangs or refuses to
//! open on such files; see docs/notes/reliability.md).

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use fritter_common::crypto::KeyPair;
use fritter_common::log::header::{NODES_OFFSET, NODE_BYTES, SLOT_BYTES};
use fritter_common::log::{Access, DiskStorage, Log, LogError};

const ENTRIES: u64 = 50;
const HEADER_BYTES: u64 = 149;
const OPEN_DEADLINE: Duration = Duration::from_secs(5);

fn keypair() -> KeyPair {
    KeyPair::from_seed(&[77; 32])
}

fn block(i: u64) -> Vec<u8> {
    format!("entry {i}: {}", "t".repeat((i * 13 % 90) as usize)).into_bytes()
}

struct Pristine {
    files: Vec<(&'static str, Vec<u8>)>,
    entries: Vec<Vec<u8>>,
    /// Lengths the log was committed at, in order.
    commits: Vec<u64>,
}

/// 50 entries: three batches, then single appends, so the last records are separate commits
/// and an older header always points at a shorter, intact tree.
fn pristine(dir: &Path) -> Pristine {
    let kp = keypair();
    let log = Log::open(
        &DiskStorage::new(dir),
        kp.public(),
        Access::Writer(kp.clone()),
    )
    .unwrap();
    let mut commits = Vec::new();
    let mut next = 0;
    for size in [20u64, 15, 10] {
        let blocks: Vec<Vec<u8>> = (next..next + size).map(block).collect();
        let refs: Vec<&[u8]> = blocks.iter().map(Vec::as_slice).collect();
        log.append_batch(&refs).unwrap();
        next += size;
        commits.push(next);
    }
    while next < ENTRIES {
        log.append(&block(next)).unwrap();
        next += 1;
        commits.push(next);
    }
    drop(log);
    let files = ["tree", "data", "bitfield"]
        .into_iter()
        .map(|f| (f, fs::read(dir.join(f)).unwrap()))
        .collect();
    Pristine {
        files,
        entries: (0..ENTRIES).map(block).collect(),
        commits,
    }
}

/// One damaged copy of the pristine files.
struct Case {
    what: String,
    file: &'static str,
    bytes: Vec<u8>,
}

/// Checks one open of a damaged log; returns the length it opened at, if it opened.
fn check_open(dir: &Path, p: &Pristine, case: &Case, access: Access) -> Option<u64> {
    let started = Instant::now();
    let opened = Log::open(&DiskStorage::new(dir), keypair().public(), access);
    let took = started.elapsed();
    assert!(took < OPEN_DEADLINE, "{}: open took {took:?}", case.what);
    let log = match opened {
        Ok(log) => log,
        Err(LogError::Corrupt { seq: None, .. }) => return None,
        Err(e) => panic!("{}: open failed with an untyped error: {e:?}", case.what),
    };
    let info = log.info();
    assert_eq!(info.fork, 0, "{}", case.what);
    assert!(
        info.length == 0 || p.commits.contains(&info.length),
        "{}: opened at length {}, which was never committed",
        case.what,
        info.length
    );
    for seq in 0..info.length {
        match log.get(seq) {
            Ok(b) => assert_eq!(
                b, p.entries[seq as usize],
                "{}: get({seq}) returned wrong bytes",
                case.what
            ),
            Err(LogError::Corrupt { seq: Some(s), .. }) => {
                assert_eq!(s, seq, "{}: get({seq}) blamed entry {s}", case.what)
            }
            Err(LogError::NotAvailable { .. }) => {}
            Err(e) => panic!("{}: get({seq}): {e:?}", case.what),
        }
    }
    let mut next = 0;
    let scan = log.for_each(0, info.length, |seq, b| {
        assert_eq!(seq, next);
        assert_eq!(
            b,
            &p.entries[seq as usize][..],
            "{}: for_each({seq}) returned wrong bytes",
            case.what
        );
        next += 1;
        Ok(())
    });
    match scan {
        Ok(()) => assert_eq!(next, info.length, "{}", case.what),
        Err(LogError::Corrupt { seq: Some(s), .. }) => assert!(
            s >= next,
            "{}: scan blamed entry {s} after passing it",
            case.what
        ),
        Err(LogError::NotAvailable { .. }) => {}
        Err(e) => panic!("{}: for_each: {e:?}", case.what),
    }
    Some(info.length)
}

/// Runs one case; returns the length the writer opened it at, if it opened.
fn run_case(dir: &Path, p: &Pristine, case: &Case, append: bool) -> Option<u64> {
    for (name, bytes) in &p.files {
        fs::write(
            dir.join(name),
            if *name == case.file {
                &case.bytes
            } else {
                bytes
            },
        )
        .unwrap();
    }
    // A view reads without repairing; the writer's open then repairs what it can, and whatever it
    // left must open again the same way.
    let viewed = check_open(dir, p, case, Access::View);
    let kp = keypair();
    let opened = check_open(dir, p, case, Access::Writer(kp.clone()));
    assert_eq!(
        viewed.is_some(),
        opened.is_some(),
        "{}: the view and the writer disagree on whether it opens",
        case.what
    );
    if opened.is_some() {
        assert_eq!(
            check_open(dir, p, case, Access::View),
            opened,
            "{}: reopening after the repair",
            case.what
        );
        if append {
            // The repaired log takes new entries, and they survive a reopen.
            let log = Log::open(&DiskStorage::new(dir), kp.public(), Access::Writer(kp)).unwrap();
            let seq = log
                .append(b"after repair")
                .unwrap_or_else(|e| panic!("{}: append after repair: {e}", case.what));
            drop(log);
            let log = Log::open(&DiskStorage::new(dir), keypair().public(), Access::View).unwrap();
            assert_eq!(log.get(seq).unwrap(), b"after repair", "{}", case.what);
        }
    }
    opened
}

/// A temp dir, in memory when the machine has `/dev/shm`: these cases test what open and read
/// make of damaged bytes through `DiskStorage`, not durability, and a tmpfs keeps the 1,500
/// opens (each fsyncing the directory) from waiting on the disk.
fn temp_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::tempdir_in(shm) {
            return dir;
        }
    }
    tempfile::tempdir().unwrap()
}

fn file<'a>(p: &'a Pristine, name: &str) -> &'a [u8] {
    &p.files.iter().find(|(n, _)| *n == name).unwrap().1
}

/// Byte ranges to damage: the last three records of `data`, the last six nodes of `tree`, and
/// the encoded part of each header slot.
fn regions(p: &Pristine) -> Vec<(&'static str, std::ops::Range<u64>, &'static str)> {
    let data_len = file(p, "data").len() as u64;
    let last3: u64 = p.entries[(ENTRIES - 3) as usize..]
        .iter()
        .map(|b| b.len() as u64)
        .sum();
    let tree_len = file(p, "tree").len() as u64;
    assert_eq!(tree_len, NODES_OFFSET + (2 * ENTRIES - 1) * NODE_BYTES);
    vec![
        ("data", data_len - last3..data_len, "data tail"),
        ("tree", tree_len - 6 * NODE_BYTES..tree_len, "tree tail"),
        ("tree", 0..HEADER_BYTES, "header slot 0"),
        (
            "tree",
            SLOT_BYTES..SLOT_BYTES + HEADER_BYTES,
            "header slot 1",
        ),
    ]
}

#[test]
fn every_cut_near_the_end_opens_or_reports_corruption() {
    let dir = temp_dir();
    let p = pristine(&dir.path().join("pristine"));
    let work = dir.path().join("case");
    fs::create_dir_all(&work).unwrap();
    let mut cases = 0;
    let (mut refused, mut fell_back) = (0, 0);
    for (name, range, label) in regions(&p) {
        // Cut at every offset of the region and at its end (the whole region gone or kept).
        for len in range.start..=range.end {
            let bytes = file(&p, name)[..len as usize].to_vec();
            let case = Case {
                what: format!("{label}: {name} cut to {len} bytes"),
                file: name,
                bytes,
            };
            match run_case(&work, &p, &case, len % 17 == 0) {
                None => refused += 1,
                Some(n) if n < ENTRIES => fell_back += 1,
                Some(_) => {}
            }
            cases += 1;
        }
    }
    // A cut root falls back to the previous commit; a cut header area cannot open.
    assert!(
        refused > 0 && fell_back > 0,
        "refused {refused}, fell back {fell_back}"
    );
    // Cuts anywhere in the header area (every 61st byte), the nodes area gone entirely, and
    // files emptied.
    let mut more: Vec<(&str, u64)> = (0..NODES_OFFSET)
        .step_by(61)
        .map(|len| ("tree", len))
        .collect();
    more.extend([
        ("tree", NODES_OFFSET),
        ("tree", NODES_OFFSET - 1),
        ("tree", SLOT_BYTES),
        ("data", 0),
        ("bitfield", 0),
    ]);
    for (name, len) in more {
        let bytes = file(&p, name)[..len as usize].to_vec();
        run_case(
            &work,
            &p,
            &Case {
                what: format!("{name} cut to {len} bytes"),
                file: name,
                bytes,
            },
            true,
        );
        cases += 1;
    }
    assert!(cases > 800, "only {cases} cases");
}

#[test]
fn every_flipped_byte_near_the_end_opens_or_reports_corruption() {
    let dir = temp_dir();
    let p = pristine(&dir.path().join("pristine"));
    let work = dir.path().join("case");
    fs::create_dir_all(&work).unwrap();
    let mut fell_back = 0;
    for (name, range, label) in regions(&p) {
        for at in range {
            let mut bytes = file(&p, name).to_vec();
            let bit = (at % 8) as u8;
            bytes[at as usize] ^= 1 << bit;
            let case = Case {
                what: format!("{label}: {name} byte {at} bit {bit} flipped"),
                file: name,
                bytes,
            };
            let opened = run_case(&work, &p, &case, at % 13 == 0);
            fell_back += opened.is_some_and(|n| n < ENTRIES) as u32;
        }
    }
    // A flipped newest header or root is survived by falling back to the previous commit.
    assert!(fell_back > 0);
}
