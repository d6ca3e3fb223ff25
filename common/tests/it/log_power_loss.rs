//! Simulated power loss: a writer appends, batches and truncates on a `SimDisk`, the power fails
//! at a random write or sync, and the log is reopened. No acknowledged append or truncate may be
//! lost, open must never fail and every entry must read back verified. The same harness, run on a
//! disk whose `data` or `tree` syncs do nothing, must notice within 200 seeds (Jepsen's no-lost-ack
//! rule; FoundationDB-style deterministic simulation). A replica taking upgrades and blocks
//! gets the same treatment on a fifth as many seeds.
//!
//!     FRITTER_SIM_SEEDS=100000 cargo test -p fritter-common --test log_power_loss
//!
//! Each seed runs two rounds (write, lose power, reopen and check, write on, lose power again).
//! Every fifth seed has several writer threads, every third of the others truncates. A failure
//! names its seed; `FRITTER_SIM_SEED=<n>` replays just that one (exactly, except for the thread
//! interleaving of the threaded seeds).

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use fritter_common::crypto::KeyPair;
use fritter_common::log::sim::SimDisk;
use fritter_common::log::{
    Access, Log, ProofRequest, RequestBlock, RequestUpgrade, Storage, StorageFile,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const DEFAULT_SEEDS: u64 = 10_000;

/// Where the power fails: at the `crash_at`-th write, sync or resize, or at the end of the round.
struct Power {
    ops: u64,
    crash_at: u64,
    crash_seed: u64,
    off: bool,
}

/// A `SimDisk` behind a power switch. Every mutating call counts; the chosen one cuts the power
/// (`SimDisk::crash`) instead of running, and every call after it fails like a dead disk.
#[derive(Clone)]
struct PowerDisk {
    disk: SimDisk,
    power: Arc<Mutex<Power>>,
}

fn lock(p: &Mutex<Power>) -> MutexGuard<'_, Power> {
    p.lock().unwrap_or_else(|e| e.into_inner())
}

fn power_lost() -> io::Error {
    io::Error::other("simulated power loss")
}

impl PowerDisk {
    fn new(disk: &SimDisk, crash_at: u64, crash_seed: u64) -> Self {
        PowerDisk {
            disk: disk.clone(),
            power: Arc::new(Mutex::new(Power {
                ops: 0,
                crash_at,
                crash_seed,
                off: false,
            })),
        }
    }

    /// Cuts the power if it is still on; unsynced writes are kept, torn or lost at random.
    fn cut(&self) {
        let mut p = lock(&self.power);
        if !p.off {
            p.off = true;
            self.disk.crash(p.crash_seed);
        }
    }

    fn is_off(&self) -> bool {
        lock(&self.power).off
    }
}

impl Storage for PowerDisk {
    fn open(&self, name: &str, create: bool) -> io::Result<Arc<dyn StorageFile>> {
        if self.is_off() {
            return Err(power_lost());
        }
        let file = self.disk.open(name, create)?;
        Ok(Arc::new(PowerFile {
            file,
            disk: self.disk.clone(),
            power: self.power.clone(),
        }))
    }

    fn describe(&self) -> String {
        "simulated disk with a power switch".into()
    }
}

struct PowerFile {
    file: Arc<dyn StorageFile>,
    disk: SimDisk,
    power: Arc<Mutex<Power>>,
}

impl PowerFile {
    fn mutate(&self, op: impl FnOnce(&dyn StorageFile) -> io::Result<()>) -> io::Result<()> {
        let mut p = lock(&self.power);
        if p.off {
            return Err(power_lost());
        }
        p.ops += 1;
        if p.ops == p.crash_at {
            p.off = true;
            self.disk.crash(p.crash_seed);
            return Err(power_lost());
        }
        // Still holding the switch, so the power cannot fail halfway through this call.
        op(&*self.file)
    }

    fn read<R>(&self, op: impl FnOnce(&dyn StorageFile) -> io::Result<R>) -> io::Result<R> {
        let p = lock(&self.power);
        if p.off {
            return Err(power_lost());
        }
        op(&*self.file)
    }
}

impl StorageFile for PowerFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.read(|f| f.read_at(buf, offset))
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.mutate(|f| f.write_all_at(buf, offset))
    }
    fn sync(&self) -> io::Result<()> {
        self.mutate(|f| f.sync())
    }
    fn len(&self) -> io::Result<u64> {
        self.read(|f| f.len())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.mutate(|f| f.set_len(len))
    }
}

/// What the log must hold: the fork and every entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Model {
    fork: u64,
    entries: Vec<Vec<u8>>,
}

impl Model {
    fn describe(&self) -> String {
        format!("fork {} length {}", self.fork, self.entries.len())
    }
}

#[derive(Debug, Clone, Copy)]
struct Options {
    /// Make `sync` of this file a no-op (a deliberately broken build).
    skip_sync: Option<&'static str>,
}

fn keypair() -> KeyPair {
    KeyPair::from_seed(&[42; 32])
}

/// A block unique to its seed, round, writer and position, sometimes long enough to span
/// several 512-byte sectors (so it can be torn).
fn make_block(rng: &mut StdRng, tag: &str) -> Vec<u8> {
    let mut b = tag.as_bytes().to_vec();
    let len = match rng.gen_range(0..10) {
        0 => 0,
        1 => rng.gen_range(600..1500),
        _ => rng.gen_range(0..120),
    };
    b.extend((0..len).map(|i| b'a' + ((i * 7 + tag.len()) % 26) as u8));
    b
}

/// Opens the log on the raw disk (power back on) and reads it all back, verified three ways.
fn read_back(disk: &SimDisk, kp: &KeyPair, access: Access) -> Result<Model, String> {
    let log = Log::open(disk, kp.public(), access)
        .map_err(|e| format!("open after the crash failed: {e}"))?;
    let info = log.info();
    let entries = log
        .read_range(0, info.length)
        .map_err(|e| format!("read_range after the crash failed: {e}"))?;
    let mut scanned = 0u64;
    log.for_each(0, info.length, |seq, b| {
        if b != entries[seq as usize] {
            return Err(fritter_common::log::LogError::Malformed(format!(
                "for_each({seq}) differs from read_range"
            )));
        }
        scanned += 1;
        Ok(())
    })
    .map_err(|e| format!("for_each after the crash failed: {e}"))?;
    if scanned != info.length {
        return Err(format!("for_each saw {scanned} of {} entries", info.length));
    }
    for (seq, want) in entries.iter().enumerate() {
        let got = log
            .get(seq as u64)
            .map_err(|e| format!("get({seq}) after the crash failed: {e}"))?;
        if &got != want {
            return Err(format!("get({seq}) differs from read_range"));
        }
    }
    Ok(Model {
        fork: info.fork,
        entries,
    })
}

/// One writer, one operation at a time. Returns the state the failed operation would have
/// produced, if one failed (it may or may not have become durable), and how many were acknowledged.
fn sequential_round(
    log: &Log,
    rng: &mut StdRng,
    tag: &str,
    truncates: bool,
    model: &mut Model,
) -> Result<(Option<Model>, u64), String> {
    let ops: u64 = rng.gen_range(1..=6);
    for op in 0..ops {
        let choice = rng.gen_range(0..10);
        if truncates && choice < 2 {
            let to = rng.gen_range(0..=model.entries.len());
            let mut next = model.clone();
            next.entries.truncate(to);
            next.fork += 1;
            match log.truncate(to as u64) {
                Ok(()) => *model = next,
                Err(_) => return Ok((Some(next), op)),
            }
            continue;
        }
        let n = if choice < 5 { rng.gen_range(2..=5) } else { 1 };
        let blocks: Vec<Vec<u8>> = (0..n)
            .map(|j| make_block(rng, &format!("{tag} op{op} b{j};")))
            .collect();
        let mut next = model.clone();
        next.entries.extend(blocks.iter().cloned());
        let result = if n == 1 {
            log.append(&blocks[0])
        } else {
            let refs: Vec<&[u8]> = blocks.iter().map(Vec::as_slice).collect();
            log.append_batch(&refs)
        };
        match result {
            Ok(seq) if seq == model.entries.len() as u64 => *model = next,
            Ok(seq) => {
                return Err(format!(
                    "append returned seq {seq}, expected {}",
                    model.entries.len()
                ))
            }
            Err(_) => return Ok((Some(next), op)),
        }
    }
    Ok((None, ops))
}

/// Several writers on one log. Returns every batch tried, with the seq of those acknowledged.
fn concurrent_round(log: &Log, rng: &mut StdRng, tag: &str) -> Vec<(Vec<Vec<u8>>, Option<u64>)> {
    let threads = rng.gen_range(2..=4);
    let plans: Vec<Vec<Vec<Vec<u8>>>> = (0..threads)
        .map(|t| {
            (0..rng.gen_range(1..=3))
                .map(|op| {
                    let n = if rng.gen_bool(0.3) {
                        rng.gen_range(2..=4)
                    } else {
                        1
                    };
                    (0..n)
                        .map(|j| make_block(rng, &format!("{tag} t{t} op{op} b{j};")))
                        .collect()
                })
                .collect()
        })
        .collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = plans
            .into_iter()
            .map(|plan| {
                s.spawn(move || {
                    let mut out = Vec::new();
                    let mut failed = false;
                    for blocks in plan {
                        if failed {
                            out.push((blocks, None));
                            continue;
                        }
                        let refs: Vec<&[u8]> = blocks.iter().map(Vec::as_slice).collect();
                        let r = if refs.len() == 1 {
                            log.append(refs[0])
                        } else {
                            log.append_batch(&refs)
                        };
                        failed = r.is_err();
                        out.push((blocks, r.ok()));
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("writer thread panicked"))
            .collect()
    })
}

/// After a concurrent round: the old entries are intact, every acknowledged batch is where its
/// seq says, and everything else is whole batches that were tried, each at most once.
fn check_concurrent(
    base: &Model,
    got: &Model,
    tried: &[(Vec<Vec<u8>>, Option<u64>)],
) -> Result<(), String> {
    if got.fork != base.fork {
        return Err(format!("fork changed from {} to {}", base.fork, got.fork));
    }
    if got.entries.len() < base.entries.len()
        || got.entries[..base.entries.len()] != base.entries[..]
    {
        return Err(format!(
            "entries acknowledged in an earlier round were lost ({} -> {})",
            base.describe(),
            got.describe()
        ));
    }
    for (blocks, seq) in tried {
        if let Some(seq) = *seq {
            let s = seq as usize;
            if got.entries.get(s..s + blocks.len()) != Some(&blocks[..]) {
                return Err(format!(
                    "acknowledged batch at seq {seq} ({} blocks) is missing or wrong; log is {}",
                    blocks.len(),
                    got.describe()
                ));
            }
        }
    }
    let index: HashMap<&[u8], (usize, usize)> = tried
        .iter()
        .enumerate()
        .flat_map(|(b, (blocks, _))| {
            blocks
                .iter()
                .enumerate()
                .map(move |(j, x)| (x.as_slice(), (b, j)))
        })
        .collect();
    let mut seen = vec![false; tried.len()];
    let mut seq = base.entries.len();
    while seq < got.entries.len() {
        let Some(&(b, j)) = index.get(got.entries[seq].as_slice()) else {
            return Err(format!("entry {seq} is no block any writer tried"));
        };
        let blocks = &tried[b].0;
        if j != 0 || seen[b] || got.entries.get(seq..seq + blocks.len()) != Some(&blocks[..]) {
            return Err(format!(
                "entry {seq} is part of a torn, reordered or repeated batch"
            ));
        }
        seen[b] = true;
        seq += blocks.len();
    }
    Ok(())
}

/// How the rounds of a seed went, to show the harness exercises what it claims to.
#[derive(Debug, Default, Clone, Copy)]
struct Stats {
    rounds: u64,
    /// The power failed during a call, not at the end of the round.
    mid_operation: u64,
    /// An operation that failed (never acknowledged) was nevertheless durable.
    unacknowledged_durable: u64,
    /// Acknowledged operations checked after a crash.
    acknowledged: u64,
}

impl std::ops::AddAssign for Stats {
    fn add_assign(&mut self, o: Stats) {
        self.rounds += o.rounds;
        self.mid_operation += o.mid_operation;
        self.unacknowledged_durable += o.unacknowledged_durable;
        self.acknowledged += o.acknowledged;
    }
}

/// Runs one seed: two rounds of writes, each ended by a power failure and checked after reopen.
fn run_seed(seed: u64, opts: Options) -> Result<Stats, String> {
    let mut stats = Stats::default();
    let mut rng = StdRng::seed_from_u64(seed);
    let kp = keypair();
    let disk = SimDisk::new();
    disk.skip_sync_of(opts.skip_sync);
    let threaded = seed % 5 == 1;
    let truncates = !threaded && seed.is_multiple_of(3);
    let mut model = Model::default();
    for round in 0..2u64 {
        let tag = format!("s{seed} r{round}");
        // About six mutating calls per commit; sometimes the power only fails at the end.
        let crash_at = rng.gen_range(1..=45);
        let power = PowerDisk::new(&disk, crash_at, seed.wrapping_mul(31).wrapping_add(round));
        let mut in_flight = None;
        let mut tried = Vec::new();
        match Log::open(&power, kp.public(), Access::Writer(kp.clone())) {
            Err(_) if power.is_off() => {}
            Err(e) => return Err(format!("round {round}: open before the crash failed: {e}")),
            Ok(log) => {
                if threaded {
                    tried = concurrent_round(&log, &mut rng, &tag);
                } else {
                    let (failed, acked) =
                        sequential_round(&log, &mut rng, &tag, truncates, &mut model)
                            .map_err(|e| format!("round {round}: {e}"))?;
                    in_flight = failed;
                    stats.acknowledged += acked;
                }
            }
        }
        stats.rounds += 1;
        stats.mid_operation += power.is_off() as u64;
        power.cut();

        let got = read_back(&disk, &kp, Access::View).map_err(|e| format!("round {round}: {e}"))?;
        if threaded {
            check_concurrent(&model, &got, &tried)
                .map_err(|e| format!("round {round} (threads): {e}"))?;
            stats.acknowledged += tried.iter().filter(|(_, seq)| seq.is_some()).count() as u64;
            let acked: usize = tried
                .iter()
                .filter(|(_, seq)| seq.is_some())
                .map(|(b, _)| b.len())
                .sum();
            stats.unacknowledged_durable +=
                (got.entries.len() > model.entries.len() + acked) as u64;
        } else if got != model && Some(&got) != in_flight.as_ref() {
            return Err(format!(
                "round {round}: recovered {} but acknowledged {}{}",
                got.describe(),
                model.describe(),
                in_flight
                    .map(|m| format!(" (in flight: {})", m.describe()))
                    .unwrap_or_default()
            ));
        }
        // The writer's own open repairs the tail and must agree with the view.
        let repaired = read_back(&disk, &kp, Access::Writer(kp.clone()))
            .map_err(|e| format!("round {round}: writer {e}"))?;
        if repaired != got {
            return Err(format!(
                "round {round}: the writer sees {} but the view saw {}",
                repaired.describe(),
                got.describe()
            ));
        }
        if !threaded {
            stats.unacknowledged_durable += (in_flight.is_some() && got != model) as u64;
        }
        model = got;
    }
    Ok(stats)
}

fn seeds() -> std::ops::Range<u64> {
    if let Some(one) = std::env::var("FRITTER_SIM_SEED")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        return one..one + 1;
    }
    let n = std::env::var("FRITTER_SIM_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_SEEDS);
    0..n
}

#[test]
fn power_loss_never_loses_an_acknowledged_write() {
    let opts = Options { skip_sync: None };
    let range = seeds();
    let count = range.end - range.start;
    // Two workers: the seeds are independent and the machine has cores to spare for them.
    let results: Vec<(Stats, Vec<String>)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..2u64)
            .map(|w| {
                let range = range.clone();
                s.spawn(move || {
                    let mut stats = Stats::default();
                    let mut failures = Vec::new();
                    for seed in range.filter(|seed| seed % 2 == w) {
                        match run_seed(seed, opts) {
                            Ok(s) => stats += s,
                            Err(e) => failures.push(format!("seed {seed}: {e}")),
                        }
                    }
                    (stats, failures)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|h| h.join().expect("worker panicked"))
            .collect()
    });
    let mut stats = Stats::default();
    let mut failures = Vec::new();
    for (s, f) in results {
        stats += s;
        failures.extend(f);
    }
    eprintln!("{count} seeds: {stats:?}");
    assert!(
        failures.is_empty(),
        "{} of {count} seeds failed; first ones:\n{}",
        failures.len(),
        failures
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    // Many rounds must lose power in the middle of a call, or the harness tests little. (A
    // commit is one round of syncs, so a good share of crash points land between calls.)
    if count >= 100 {
        assert!(
            stats.mid_operation * 3 > stats.rounds,
            "only {} of {} rounds crashed mid-operation",
            stats.mid_operation,
            stats.rounds
        );
        assert!(stats.unacknowledged_durable > 0, "no unacknowledged write ever survived: crashes never hit between sync and acknowledgement");
    }
}

/// The harness is only worth something if a broken build fails it.
fn broken_build_is_caught(file: &'static str) {
    let opts = Options {
        skip_sync: Some(file),
    };
    let first = (0..200).find_map(|seed| run_seed(seed, opts).err().map(|e| (seed, e)));
    let Some((seed, why)) = first else {
        panic!("with sync of `{file}` removed, 200 seeds found nothing");
    };
    eprintln!("sync of `{file}` removed: caught at seed {seed}: {why}");
}

#[test]
fn removing_the_data_sync_is_caught_within_200_seeds() {
    broken_build_is_caught("data");
}

#[test]
fn removing_the_tree_sync_is_caught_within_200_seeds() {
    broken_build_is_caught("tree");
}

// ---- replicas ----

/// Lengths the writer's head is captured at: a replica upgrades through these.
const SNAPSHOTS: [u64; 3] = [8, 21, 40];

fn replica_block(i: u64) -> Vec<u8> {
    format!("replicated {i} {}", "q".repeat((i * 97 % 700) as usize)).into_bytes()
}

/// One writer per snapshot length, all with the same blocks (so the same tree): a proof from
/// the writer at length L upgrades a replica to exactly L.
fn snapshot_writers() -> &'static Vec<Log> {
    static W: OnceLock<Vec<Log>> = OnceLock::new();
    W.get_or_init(|| {
        let kp = keypair();
        SNAPSHOTS
            .iter()
            .map(|&len| {
                let log =
                    Log::open(&SimDisk::new(), kp.public(), Access::Writer(kp.clone())).unwrap();
                for i in 0..len {
                    log.append(&replica_block(i)).unwrap();
                }
                log
            })
            .collect()
    })
}

/// A replica takes upgrades and blocks in random order through a power switch; after each power
/// failure every acknowledged upgrade and block must still be there and verify.
fn run_replica_seed(seed: u64) -> Result<Stats, String> {
    let writers = snapshot_writers();
    let full = writers.last().expect("writers");
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
    let kp = keypair();
    let disk = SimDisk::new();
    let mut stats = Stats::default();
    let mut acked_len = 0u64;
    let mut acked_blocks: Vec<u64> = Vec::new();
    for round in 0..2u64 {
        let power = PowerDisk::new(
            &disk,
            rng.gen_range(1..=60),
            seed.wrapping_mul(131).wrapping_add(round),
        );
        let mut in_flight_len = None;
        match Log::open(&power, kp.public(), Access::Replica) {
            Err(_) if power.is_off() => {}
            Err(e) => return Err(format!("round {round}: open before the crash failed: {e}")),
            Ok(replica) => {
                for _ in 0..rng.gen_range(1..=8) {
                    let len = replica.len();
                    let upgrade_to = SNAPSHOTS
                        .iter()
                        .position(|&l| l > len)
                        .filter(|_| len == 0 || rng.gen_bool(0.3));
                    let result = if let Some(w) = upgrade_to {
                        let target = SNAPSHOTS[w];
                        let with_block = rng.gen_bool(0.5);
                        let seq = rng.gen_range(len..target);
                        let req = ProofRequest {
                            block: with_block.then_some(RequestBlock {
                                index: seq,
                                nodes: 0,
                            }),
                            upgrade: Some(RequestUpgrade {
                                start: len,
                                length: target - len,
                            }),
                            ..Default::default()
                        };
                        let proof = writers[w]
                            .proof(&req)
                            .map_err(|e| format!("writer refused {req:?}: {e}"))?;
                        in_flight_len = Some(target);
                        replica.apply_proof(&proof).map(|_| {
                            acked_len = target;
                            if with_block {
                                acked_blocks.push(seq);
                            }
                        })
                    } else {
                        let seq = rng.gen_range(0..len);
                        let nodes = match replica.missing_nodes(seq) {
                            Ok(n) => n,
                            Err(_) => break,
                        };
                        let proof = full
                            .proof(&ProofRequest {
                                block: Some(RequestBlock { index: seq, nodes }),
                                ..Default::default()
                            })
                            .map_err(|e| {
                                format!("writer refused block {seq} nodes {nodes}: {e}")
                            })?;
                        replica.apply_proof(&proof).map(|_| acked_blocks.push(seq))
                    };
                    if let Err(e) = result {
                        if !power.is_off() {
                            return Err(format!("round {round}: a good proof was refused: {e}"));
                        }
                        break;
                    }
                    in_flight_len = None;
                }
            }
        }
        stats.rounds += 1;
        stats.mid_operation += power.is_off() as u64;
        power.cut();

        let replica = Log::open(&disk, kp.public(), Access::Replica)
            .map_err(|e| format!("round {round}: open after the crash failed: {e}"))?;
        let info = replica.info();
        if info.length != acked_len && Some(info.length) != in_flight_len {
            return Err(format!(
                "round {round}: recovered length {} but acknowledged {acked_len}",
                info.length
            ));
        }
        if info.length > 0 {
            let w = SNAPSHOTS
                .iter()
                .position(|&l| l == info.length)
                .ok_or_else(|| format!("length {} was never signed", info.length))?;
            if info.tree_hash != writers[w].info().tree_hash {
                return Err(format!(
                    "round {round}: tree at length {} differs from the writer's",
                    info.length
                ));
            }
        }
        stats.unacknowledged_durable += (info.length != acked_len) as u64;
        acked_len = info.length;
        for seq in 0..info.length {
            let acked = acked_blocks.contains(&seq);
            let has = replica.has(seq).map_err(|e| format!("has({seq}): {e}"))?;
            if acked && !has {
                return Err(format!("round {round}: acknowledged block {seq} was lost"));
            }
            if has {
                let got = replica
                    .get(seq)
                    .map_err(|e| format!("round {round}: get({seq}) after the crash: {e}"))?;
                if got != replica_block(seq) {
                    return Err(format!("round {round}: block {seq} reads back wrong"));
                }
            }
        }
        let contiguous = info.contiguous;
        if (0..contiguous).any(|s| !replica.has(s).unwrap_or(false))
            || (contiguous < info.length && replica.has(contiguous).unwrap_or(false))
        {
            return Err(format!(
                "round {round}: contiguous {contiguous} does not match the stored blocks"
            ));
        }
        replica
            .for_each(0, contiguous, |_, _| Ok(()))
            .map_err(|e| format!("round {round}: scan of the contiguous blocks: {e}"))?;
        stats.acknowledged += acked_blocks.len() as u64;
        acked_blocks.retain(|s| *s < info.length);
    }
    Ok(stats)
}

#[test]
fn power_loss_never_loses_an_acknowledged_proof_on_a_replica() {
    let range = seeds();
    let count = (range.end - range.start).div_ceil(5);
    let mut stats = Stats::default();
    let mut failures = Vec::new();
    for seed in range.start..range.start + count {
        match run_replica_seed(seed) {
            Ok(s) => stats += s,
            Err(e) => failures.push(format!("seed {seed}: {e}")),
        }
    }
    eprintln!("{count} replica seeds: {stats:?}");
    assert!(
        failures.is_empty(),
        "{} of {count} replica seeds failed; first ones:\n{}",
        failures.len(),
        failures
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    if count >= 100 {
        assert!(
            stats.mid_operation * 2 > stats.rounds,
            "only {} of {} rounds crashed mid-operation",
            stats.mid_operation,
            stats.rounds
        );
    }
}
