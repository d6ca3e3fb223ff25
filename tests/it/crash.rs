//! The crash loop: a writer appending from several threads is killed with SIGKILL at random
//! moments, over and over; after each kill the archive must open, every entry the writer
//! acknowledged must be there with the same hash, and the whole log must verify.
//!
//! `FRITTER_CRASH_ITERATIONS` sets the number of kills (default 1000), `FRITTER_CRASH_SEED` the
//! seed of the random delays (default: random, printed so a failure can be replayed).

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fritter_common::crypto::{self, Hash, KeyPair};
use fritter_common::store::Store;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Independent data directories killed in parallel, to keep the run short on two cores.
const LANES: u64 = 2;
/// Longest wait before a kill, in milliseconds.
const MAX_DELAY_MS: u64 = 40;
/// Kills per archive before a lane starts a new one: each check reads the whole log, so this
/// bounds the log (to a few thousand entries) and keeps the loop linear in time.
const ROUNDS_PER_ARCHIVE: u64 = 100;
/// How long a writer may take to open its archive before the kill goes ahead anyway.
const READY_DEADLINE: Duration = Duration::from_secs(10);

/// What one lane saw.
#[derive(Debug, Default)]
struct Tally {
    kills: u64,
    acked: usize,
    length: u64,
    /// Kills that landed after the writer acknowledged something.
    kills_mid_write: u64,
    failures: Vec<Failure>,
}

/// Something the crash loop must never see.
#[derive(Debug)]
struct Failure {
    kind: Kind,
    /// Entries concerned (acknowledged entries lost), else 1.
    count: usize,
    message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The archive did not open, in the writer or in the check.
    FailedOpen,
    /// Acknowledged entries missing from the log.
    Lost,
    /// An entry whose hash or proof does not verify, or an acknowledged entry that changed.
    Unverified,
    /// The harness itself failed (could not start or kill the writer, unreadable output).
    Other,
}

impl Failure {
    fn new(kind: Kind, message: impl Into<String>) -> Failure {
        Failure {
            kind,
            count: 1,
            message: message.into(),
        }
    }
}

#[test]
fn kill_9_loses_no_acknowledged_entry() {
    let iterations: u64 = std::env::var("FRITTER_CRASH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let seed: u64 = std::env::var("FRITTER_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(rand::random);
    println!("crash loop: {iterations} kills, seed {seed} (FRITTER_CRASH_SEED={seed} replays the delays)");
    let started = Instant::now();
    let tallies: Vec<Tally> = std::thread::scope(|s| {
        let lanes: Vec<_> = (0..LANES)
            .map(|lane| {
                let kills = iterations / LANES + u64::from(lane < iterations % LANES);
                s.spawn(move || run_lane(seed.wrapping_add(lane), kills))
            })
            .collect();
        lanes
            .into_iter()
            .map(|lane| lane.join().expect("a lane does not panic"))
            .collect()
    });
    let kills: u64 = tallies.iter().map(|t| t.kills).sum();
    let acked: usize = tallies.iter().map(|t| t.acked).sum();
    let mid: u64 = tallies.iter().map(|t| t.kills_mid_write).sum();
    let length: u64 = tallies.iter().map(|t| t.length).sum();
    let failures: Vec<&Failure> = tallies.iter().flat_map(|t| &t.failures).collect();
    let count = |kind| {
        failures
            .iter()
            .filter(|f| f.kind == kind)
            .map(|f| f.count)
            .sum::<usize>()
    };
    println!(
        "crash loop: {kills} kills ({mid} after the first ack) in {:.1?}: {acked} acknowledged entries, {length} entries in the logs; \
         {} acknowledged entries lost, {} failed opens, {} entries failing verification, {} other failures",
        started.elapsed(),
        count(Kind::Lost),
        count(Kind::FailedOpen),
        count(Kind::Unverified),
        count(Kind::Other),
    );
    let shown: Vec<String> = failures
        .iter()
        .take(20)
        .map(|f| format!("{:?}: {}", f.kind, f.message))
        .collect();
    assert!(
        failures.is_empty(),
        "seed {seed}: {} failures:\n{}",
        failures.len(),
        shown.join("\n")
    );
    assert_eq!(kills, iterations);
    if iterations >= 100 {
        assert!(
            mid > 0,
            "no kill landed while the writer was writing; the test proves nothing"
        );
    }
}

/// Kills a writer `kills` times on one data directory and checks the archive after each kill.
fn run_lane(seed: u64, kills: u64) -> Tally {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut tally = Tally::default();
    let mut archive = Lane::new();
    for round in 0..kills {
        if round > 0 && round % ROUNDS_PER_ARCHIVE == 0 {
            tally.acked += archive.acked.len();
            tally.length += archive.length;
            archive = Lane::new();
        }
        let delay = Duration::from_millis(rng.gen_range(0..=MAX_DELAY_MS));
        let from = if rng.gen_bool(0.25) {
            Origin::Spawn
        } else {
            Origin::Ready
        };
        tally.kills += 1;
        let new = match kill_writer(archive.dir.path(), from, delay) {
            Ok(acks) => acks,
            Err(mut failure) => {
                failure.message = format!(
                    "round {round} ({delay:?} after {from:?}): {}",
                    failure.message
                );
                tally.failures.push(failure);
                continue;
            }
        };
        if !new.is_empty() {
            tally.kills_mid_write += 1;
        }
        for (seq, hash) in new {
            if let Some(before) = archive.acked.insert(seq, hash) {
                if before != hash {
                    let message = format!(
                        "round {round}: entry {seq} was acknowledged twice with different hashes"
                    );
                    tally.failures.push(Failure::new(Kind::Unverified, message));
                }
            }
        }
        match check_archive(&archive.store, &archive.acked) {
            Ok(length) => archive.length = length,
            Err(mut failure) => {
                failure.message = format!(
                    "round {round} ({delay:?} after {from:?}): {}",
                    failure.message
                );
                tally.failures.push(failure);
            }
        }
    }
    tally.acked += archive.acked.len();
    tally.length += archive.length;
    tally
}

/// One archive under test, with everything its writers acknowledged.
struct Lane {
    dir: tempfile::TempDir,
    store: Store,
    /// Every entry ever acknowledged, which must never change or disappear.
    acked: BTreeMap<u64, Hash>,
    /// The log's length at the last check.
    length: u64,
}

impl Lane {
    fn new() -> Lane {
        let dir = tempfile::tempdir().expect("a temp dir");
        let store = Store::new(dir.path());
        store
            .save_identity(&KeyPair::generate())
            .expect("save an identity");
        Lane {
            dir,
            store,
            acked: BTreeMap::new(),
            length: 0,
        }
    }
}

/// Where a kill's delay is measured from.
#[derive(Debug, Clone, Copy)]
enum Origin {
    /// The start of the process: kills land during start-up and recovery of the last crash.
    Spawn,
    /// The writer's `ready`: kills land among appends and group commits.
    Ready,
}

/// Starts the writer, kills it with SIGKILL `delay` after `from`, and returns what it
/// acknowledged.
fn kill_writer(dir: &Path, from: Origin, delay: Duration) -> Result<Vec<(u64, Hash)>, Failure> {
    let other = |message: String| Failure::new(Kind::Other, message);
    let errors = dir.join("errors.txt");
    let stderr = fs::File::create(&errors)
        .map_err(|e| other(format!("creating {}: {e}", errors.display())))?;
    let mut writer = Command::new(env!("CARGO_BIN_EXE_crash_writer"));
    writer
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr);
    let mut child = fritter_tests::spawn(&mut writer)
        .map_err(|e| other(format!("starting the writer: {e}")))?;
    // A thread drains stdout so the writer never blocks on a full pipe, and reports `ready`.
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| other("no stdout".into()))?;
    let (ready_tx, ready_rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stdout).lines() {
            // A read error is the kill cutting the pipe: what came before stands.
            let Ok(line) = line else { break };
            if line.starts_with("ready") {
                let _ = ready_tx.send(());
            }
            lines.push(line);
        }
        lines
    });
    if let Origin::Ready = from {
        // The writer's death closes the channel; a hang hits the deadline.
        let _ = ready_rx.recv_timeout(READY_DEADLINE);
    }
    std::thread::sleep(delay);
    // `Child::kill` sends SIGKILL on Unix: no destructor, no flush, no chance to finish a commit.
    child
        .kill()
        .map_err(|e| other(format!("killing the writer: {e}")))?;
    let status = child
        .wait()
        .map_err(|e| other(format!("waiting for the writer: {e}")))?;
    let lines = reader
        .join()
        .map_err(|_| other("the reader thread panicked".into()))?;
    if let Some(code) = status.code() {
        // It exited on its own before the kill: it could not open the archive (exit code 3)
        // or could not write.
        let kind = if code == 3 {
            Kind::FailedOpen
        } else {
            Kind::Other
        };
        let stderr = fs::read_to_string(&errors).unwrap_or_default();
        return Err(Failure::new(
            kind,
            format!("the writer stopped by itself ({status}): {}", stderr.trim()),
        ));
    }
    let mut acked = Vec::new();
    for line in lines.iter().filter(|l| !l.starts_with("ready")) {
        // `lines()` also returns a last line cut short by the kill; it was never acknowledged.
        let parsed = line.strip_prefix("acked ").and_then(|rest| {
            let (seq, hash) = rest.split_once(' ')?;
            let mut bytes = [0u8; 32];
            hex::decode_to_slice(hash, &mut bytes).ok()?;
            Some((seq.parse().ok()?, bytes))
        });
        match parsed {
            Some(ack) => acked.push(ack),
            None if Some(line) == lines.last() => {}
            None => return Err(other(format!("unreadable line from the writer: {line:?}"))),
        }
    }
    Ok(acked)
}

/// Opens the archive as the next writer would (taking its lock) and checks every acknowledged
/// entry and the whole log.
fn check_archive(store: &Store, acked: &BTreeMap<u64, Hash>) -> Result<u64, Failure> {
    fritter_tests::holding_locks(|| {
        let own = store
            .open_own()
            .map_err(|e| Failure::new(Kind::FailedOpen, e.to_string()))?;
        let length = own.info().length;
        let lost = acked.range(length..).count();
        if lost > 0 {
            let last = acked.keys().next_back().copied().unwrap_or_default();
            let message =
                format!("the log has {length} entries, but entry {last} was acknowledged");
            return Err(Failure {
                kind: Kind::Lost,
                count: lost,
                message,
            });
        }
        own.log()
            .for_each(0, length, |seq, block| {
                if let Some(expected) = acked.get(&seq) {
                    let hash = crypto::leaf_hash(block);
                    if hash != *expected {
                        return Err(fritter_common::log::LogError::Corrupt {
                            archive: own.key().to_hex(),
                            seq: Some(seq),
                            reason: format!(
                                "hash {} differs from the acknowledged {}",
                                hex::encode(hash),
                                hex::encode(expected)
                            ),
                        });
                    }
                }
                Ok(())
            })
            .map_err(|e| Failure::new(Kind::Unverified, e.to_string()))?;
        Ok(length)
    })
}
