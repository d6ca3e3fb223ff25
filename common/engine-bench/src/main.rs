//! Measures the log storage choice of `fritter_common::log` (append-only files per log with
//! group commit) against two embedded transactional stores, redb and fjall, on the same
//! workload. See `docs/storage-engine.md` for the question, the results and the decision.
//!
//! Every engine does the same CPU work per commit: the real merkle tree (`TreeHead::append_block`,
//! BLAKE2b leaf and parent hashes) and one ed25519 signature per log per commit. redb and fjall
//! store byte-equivalent records: the block, its tree nodes (40 bytes each: the leaf and the
//! parents it completes, one per entry on average) and a per-log head record (generation, key,
//! fork, length, byte length, signature, roots) rewritten on every commit. Concurrent appenders
//! are merged into one durable write transaction / one journal sync by a leader-follower group
//! commit, the same scheme `Log::append_batch` uses.
//!
//! Run: `cargo run --release --manifest-path common/engine-bench/Cargo.toml`
//! Env: `ENGINE_BENCH_QUICK=1` (smoke run), `ENGINE_BENCH_DIR=path` (where the stores go; must be
//! a real disk), `ENGINE_BENCH_ENGINES=ours,redb,fjall`, `ENGINE_BENCH_WORKLOADS=1,2,3,3b,4,5`.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier, Condvar, Mutex};
use std::time::{Duration, Instant};

use fritter_common::crypto::{KeyPair, PublicKey};
use fritter_common::log::{Access, DiskStorage, Log, Node, TreeHead};
use rand::{Rng, RngCore, SeedableRng};

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

const BLOCK: usize = 300;

mod kv;

use kv::*;

// ---------------------------------------------------------------------------------------------
// Parameters

#[derive(Clone)]
struct Params {
    quick: bool,
    w1_threads: usize,
    w1_per_thread: usize,
    w2_commits: usize,
    w2_batch: usize,
    w3_logs: usize,
    w3_entries: usize,
    w3b_threads: usize,
    w4_samples: usize,
    engines: Vec<String>,
    workloads: Vec<String>,
}

impl Params {
    fn from_env() -> Params {
        let quick = std::env::var("ENGINE_BENCH_QUICK").map(|v| !v.is_empty() && v != "0").unwrap_or(false);
        let list = |var: &str, default: &str| -> Vec<String> {
            std::env::var(var)
                .unwrap_or_else(|_| default.to_owned())
                .split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        };
        Params {
            quick,
            w1_threads: 64,
            w1_per_thread: if quick { 10 } else { 200 },
            w2_commits: if quick { 20 } else { 1000 },
            w2_batch: 1000,
            w3_logs: if quick { 300 } else { 10_000 },
            w3_entries: 100,
            w3b_threads: 8,
            w4_samples: if quick { 20 } else { 200 },
            engines: list("ENGINE_BENCH_ENGINES", "ours,redb,fjall"),
            workloads: list("ENGINE_BENCH_WORKLOADS", "1,2,3,3b,4,5"),
        }
    }
    fn wants(&self, w: &str) -> bool {
        self.workloads.iter().any(|x| x == w)
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// Deterministic key pair for log `id`, so a child process can recreate it.
fn keypair(id: u64) -> KeyPair {
    let mut seed = [0x42u8; 32];
    seed[..8].copy_from_slice(&id.to_le_bytes());
    KeyPair::from_seed(&seed)
}

/// A pool of random bytes; blocks are windows into it (distinct, incompressible, free to make).
struct Payload {
    pool: Vec<u8>,
}

impl Payload {
    fn new() -> Payload {
        let mut pool = vec![0u8; 4 << 20];
        rand::rngs::StdRng::seed_from_u64(7).fill_bytes(&mut pool);
        Payload { pool }
    }
    fn block(&self, n: u64) -> &[u8] {
        let off = ((n.wrapping_mul(2_654_435_761)) % (self.pool.len() - BLOCK) as u64) as usize;
        &self.pool[off..off + BLOCK]
    }
    fn blocks(&self, start: u64, count: usize) -> Vec<&[u8]> {
        (0..count as u64).map(|i| self.block(start + i)).collect()
    }
}

#[derive(Default, Clone, Copy)]
struct Usage {
    files: u64,
    dirs: u64,
    apparent: u64,
    allocated: u64,
}

/// Sum of file sizes and of allocated blocks (what `du` reports, directories included).
fn usage(path: &Path) -> Usage {
    use std::os::unix::fs::MetadataExt;
    let mut u = Usage::default();
    let mut stack = vec![path.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(m) = std::fs::symlink_metadata(&p) else { continue };
        u.allocated += m.blocks() * 512;
        if m.is_dir() {
            u.dirs += 1;
            if let Ok(rd) = std::fs::read_dir(&p) {
                for e in rd.flatten() {
                    stack.push(e.path());
                }
            }
        } else {
            u.files += 1;
            u.apparent += m.len();
        }
    }
    u
}

/// Drops the page cache for every file under `path` (only our files: nothing global).
fn evict(path: &Path) {
    use std::os::unix::io::AsRawFd;
    let mut stack = vec![path.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(m) = std::fs::symlink_metadata(&p) else { continue };
        if m.is_dir() {
            if let Ok(rd) = std::fs::read_dir(&p) {
                for e in rd.flatten() {
                    stack.push(e.path());
                }
            }
        } else if let Ok(f) = std::fs::File::open(&p) {
            unsafe {
                libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
            }
        }
    }
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> String {
    let v = d.as_secs_f64() * 1000.0;
    if v >= 100.0 {
        format!("{v:.0} ms")
    } else if v >= 10.0 {
        format!("{v:.1} ms")
    } else {
        format!("{v:.2} ms")
    }
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0))
}

fn rate(n: f64) -> String {
    if n >= 10_000.0 {
        format!("{:.0}k", n / 1000.0)
    } else {
        format!("{n:.0}")
    }
}

/// What one sync costs on this disk: after a 4 KiB append, after a 4 KiB overwrite, and on a
/// directory (what `DiskStorage::open(create = true)` does on every open).
fn fsync_costs(dir: &Path) -> Res<String> {
    use std::os::unix::fs::FileExt;
    let d = dir.join("fsync-probe");
    std::fs::create_dir_all(&d)?;
    let f = std::fs::OpenOptions::new().create(true).truncate(true).read(true).write(true).open(d.join("f"))?;
    let buf = [7u8; 4096];
    let n = 200;
    let t0 = Instant::now();
    for i in 0..n {
        f.write_all_at(&buf, i * 4096)?;
        f.sync_data()?;
    }
    let append = t0.elapsed() / n as u32;
    let t0 = Instant::now();
    for _ in 0..n {
        f.write_all_at(&buf, 0)?;
        f.sync_data()?;
    }
    let overwrite = t0.elapsed() / n as u32;
    let t0 = Instant::now();
    for _ in 0..n {
        std::fs::File::open(&d)?.sync_all()?;
    }
    let dirsync = t0.elapsed() / n as u32;
    std::fs::remove_dir_all(&d)?;
    Ok(format!(
        "fdatasync after a 4 KiB append {}, after a 4 KiB overwrite {}, fsync of a clean directory {}",
        ms(append),
        ms(overwrite),
        ms(dirsync)
    ))
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}


// ---- ours ----

fn our_dir(root: &Path, id: u64) -> PathBuf {
    root.join("archives").join(keypair(id).public().to_hex())
}

fn open_ours(root: &Path, id: u64) -> Res<Log> {
    let kp = keypair(id);
    Ok(Log::open(&DiskStorage::new(our_dir(root, id)), kp.public(), Access::Writer(kp))?)
}

/// Commits so far, read from the two header slots (generation sits after the 8-byte magic).
fn our_commits(root: &Path, id: u64) -> u64 {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(our_dir(root, id).join("tree")).unwrap();
    (0..2)
        .map(|i| {
            let mut b = [0u8; 8];
            f.read_exact_at(&mut b, i * 4096 + 8).map(|_| u64::from_le_bytes(b)).unwrap_or(0)
        })
        .max()
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Results

#[derive(Default)]
struct Table {
    rows: Vec<(String, HashMap<String, String>)>,
}

impl Table {
    fn set(&mut self, row: &str, engine: &str, value: String) {
        println!("  [{engine}] {row}: {value}");
        if let Some((_, m)) = self.rows.iter_mut().find(|(r, _)| r == row) {
            m.insert(engine.to_owned(), value);
        } else {
            let mut m = HashMap::new();
            m.insert(engine.to_owned(), value);
            self.rows.push((row.to_owned(), m));
        }
    }
    fn print(&self, engines: &[String]) {
        println!("\n| workload | {} |", engines.join(" | "));
        println!("|---|{}", "---|".repeat(engines.len()));
        for (row, m) in &self.rows {
            let cells: Vec<String> = engines.iter().map(|e| m.get(e).cloned().unwrap_or_else(|| "–".into())).collect();
            println!("| {row} | {} |", cells.join(" | "));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Workloads

/// 1: durable single appends from many threads on one log.
fn w1(p: &Params, engine: &str, dir: &Path, pay: &Arc<Payload>, t: &mut Table) -> Res<()> {
    let threads = p.w1_threads;
    let per = p.w1_per_thread;
    let barrier = Arc::new(Barrier::new(threads + 1));
    let total = (threads * per) as f64;
    enum Target {
        Ours(Arc<Log>),
        Kv(Arc<KvStore>),
    }
    let target = if engine == "ours" {
        Target::Ours(Arc::new(open_ours(dir, 1)?))
    } else {
        let s = Arc::new(KvStore::new(open_kv(engine, dir)?));
        s.open_log(1, keypair(1))?;
        Target::Kv(s)
    };
    let mut handles = Vec::new();
    for th in 0..threads {
        let barrier = barrier.clone();
        let pay = pay.clone();
        let target = match &target {
            Target::Ours(l) => Target::Ours(l.clone()),
            Target::Kv(s) => Target::Kv(s.clone()),
        };
        handles.push(std::thread::spawn(move || -> Vec<Duration> {
            let mut lat = Vec::with_capacity(per);
            barrier.wait();
            for i in 0..per {
                let b = pay.block((th * per + i) as u64);
                let t0 = Instant::now();
                match &target {
                    Target::Ours(l) => {
                        l.append(b).expect("append");
                    }
                    Target::Kv(s) => {
                        s.append(1, &[b]).expect("append");
                    }
                }
                lat.push(t0.elapsed());
            }
            lat
        }));
    }
    barrier.wait();
    let t0 = Instant::now();
    let mut lat: Vec<Duration> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    let el = t0.elapsed();
    lat.sort();
    let (len, commits) = match &target {
        Target::Ours(l) => (l.len(), our_commits(dir, 1)),
        Target::Kv(s) => (s.len(1), s.commits()),
    };
    assert_eq!(len as usize, threads * per);
    if let Target::Kv(s) = &target {
        s.check_block(1, len - 1)?;
    } else if let Target::Ours(l) = &target {
        l.get(len - 1)?;
    }
    t.set(
        "1. 64 threads × durable single append, one log: appends/s",
        engine,
        format!("{} /s", rate(total / el.as_secs_f64())),
    );
    t.set(
        "1. … latency p50 / p99",
        engine,
        format!("{} / {}", ms(pct(&lat, 0.5)), ms(pct(&lat, 0.99))),
    );
    t.set("1. … commits (mean appends per commit)", engine, format!("{commits} ({:.1})", total / commits as f64));
    Ok(())
}

/// 2 and 5: batched durable appends on one log, then its size at rest.
fn w2(p: &Params, engine: &str, dir: &Path, pay: &Payload, t: &mut Table) -> Res<()> {
    let n = p.w2_commits;
    let batch = p.w2_batch;
    let entries = (n * batch) as u64;
    let mut lat = Vec::with_capacity(n);
    let el;
    if engine == "ours" {
        let log = open_ours(dir, 2)?;
        let t0 = Instant::now();
        for c in 0..n {
            let blocks = pay.blocks((c * batch) as u64, batch);
            let t1 = Instant::now();
            log.append_batch(&blocks)?;
            lat.push(t1.elapsed());
        }
        el = t0.elapsed();
        assert_eq!(log.len(), entries);
        log.get(entries / 2)?;
    } else {
        let s = KvStore::new(open_kv(engine, dir)?);
        s.open_log(2, keypair(2))?;
        let t0 = Instant::now();
        for c in 0..n {
            let blocks = pay.blocks((c * batch) as u64, batch);
            let t1 = Instant::now();
            s.append(2, &blocks)?;
            lat.push(t1.elapsed());
        }
        el = t0.elapsed();
        assert_eq!(s.len(2), entries);
        s.check_block(2, entries / 2)?;
        let t1 = Instant::now();
        s.kv.settle()?;
        if engine == "fjall" {
            println!("  [fjall] memtable flush after the run: {}", ms(t1.elapsed()));
        }
    }
    lat.sort();
    t.set(
        "2. batched appends (1000 × 300 B per durable commit), one log: entries/s",
        engine,
        format!("{} /s", rate(entries as f64 / el.as_secs_f64())),
    );
    t.set("2. … commit latency p50 / p99", engine, format!("{} / {}", ms(pct(&lat, 0.5)), ms(pct(&lat, 0.99))));
    if p.wants("5") {
        let u = usage(dir);
        let payload = entries * BLOCK as u64;
        t.set(
            &format!("5. size at rest, {} entries × 300 B in one log (du / ratio to payload)", entries),
            engine,
            format!("{} / {:.2}×", mib(u.allocated), u.allocated as f64 / payload as f64),
        );
        t.set("5. … sum of file sizes (files)", engine, format!("{} ({})", mib(u.apparent), u.files));
    }
    Ok(())
}

/// 3: many logs, each written in one batch; `threads` writers. Returns the ids written.
fn w3(p: &Params, engine: &str, dir: &Path, pay: &Payload, threads: usize, t: &mut Table) -> Res<()> {
    let logs = p.w3_logs as u64;
    let per = p.w3_entries;
    let base = 1_000_000u64; // log ids of this workload
    let payload = logs * (per * BLOCK) as u64;
    let kps: Vec<KeyPair> = (0..logs).map(|i| keypair(base + i)).collect();
    let el;
    if engine == "ours" {
        let t0 = Instant::now();
        std::thread::scope(|sc| {
            for th in 0..threads as u64 {
                let kps = &kps;
                sc.spawn(move || {
                    let mut i = th;
                    while i < logs {
                        let kp = kps[i as usize].clone();
                        let log = Log::open(&DiskStorage::new(our_dir(dir, base + i)), kp.public(), Access::Writer(kp)).unwrap();
                        log.append_batch(&pay.blocks(i * per as u64, per)).unwrap();
                        i += threads as u64;
                    }
                });
            }
        });
        el = t0.elapsed();
        open_ours(dir, base + logs - 1)?.get(per as u64 - 1)?;
    } else {
        let s = KvStore::new(open_kv(engine, dir)?);
        let t0 = Instant::now();
        std::thread::scope(|sc| {
            for th in 0..threads as u64 {
                let (kps, s) = (&kps, &s);
                sc.spawn(move || {
                    let mut i = th;
                    while i < logs {
                        s.open_log(base + i, kps[i as usize].clone()).unwrap();
                        s.append(base + i, &pay.blocks(i * per as u64, per)).unwrap();
                        i += threads as u64;
                    }
                });
            }
        });
        el = t0.elapsed();
        s.check_block(base + logs - 1, per as u64 - 1)?;
        println!("  [{engine}] commits: {}", s.commits());
        s.kv.settle()?;
    }
    let label = if threads == 1 { "3." } else { "3b." };
    t.set(
        &format!("{label} {logs} logs × {per} entries, one durable commit per log, {threads} writer thread(s): total time (logs/s)"),
        engine,
        format!("{:.1} s ({})", el.as_secs_f64(), rate(logs as f64 / el.as_secs_f64())),
    );
    if threads == 1 {
        let u = usage(dir);
        t.set(
            "3. … disk usage: du / ratio to payload",
            engine,
            format!("{} / {:.2}×", mib(u.allocated), u.allocated as f64 / payload as f64),
        );
        t.set(
            "3. … sum of file sizes / files + dirs",
            engine,
            format!("{} / {} + {}", mib(u.apparent), u.files, u.dirs),
        );
    }
    Ok(())
}

/// 4: reopen costs on the stores of workloads 3 (`many`) and 2 (`big`), cold (page cache of the
/// store's files dropped) and warm; then the open after an unclean exit.
fn w4(p: &Params, engine: &str, many: &Path, big: &Path, t: &mut Table) -> Res<()> {
    let logs = p.w3_logs as u64;
    let base = 1_000_000u64;
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let samples: Vec<u64> = (0..p.w4_samples).map(|_| base + rng.gen_range(0..logs)).collect();
    if engine == "ours" {
        // No store to open; the closest thing is listing the archives.
        let t0 = Instant::now();
        let n = std::fs::read_dir(many.join("archives"))?.count();
        let list = t0.elapsed();
        assert_eq!(n as u64, logs);
        let mut cold = Vec::new();
        let mut warm = Vec::new();
        let mut view = Vec::new();
        for &id in &samples {
            evict(&our_dir(many, id));
            let t0 = Instant::now();
            let log = open_ours(many, id)?;
            let _ = log.info();
            cold.push(t0.elapsed());
            drop(log);
            let t0 = Instant::now();
            let log = open_ours(many, id)?;
            let _ = log.info();
            warm.push(t0.elapsed());
            drop(log);
            let kp = keypair(id);
            let t0 = Instant::now();
            let log = Log::open(&DiskStorage::new(our_dir(many, id)), kp.public(), Access::View)?;
            let _ = log.info();
            view.push(t0.elapsed());
        }
        cold.sort();
        warm.sort();
        view.sort();
        t.set(&format!("4. open store ({logs} logs)"), engine, format!("none (listing {logs} archive dirs: {})", ms(list)));
        t.set(
            &format!("4. open one log among {logs} + read its verified head: cold / warm (median)"),
            engine,
            format!("{} / {}", ms(pct(&cold, 0.5)), ms(pct(&warm, 0.5))),
        );
        println!("  [ours] read-only (Access::View, no directory fsyncs) warm open median: {}", ms(pct(&view, 0.5)));
        // The 1,000,000-entry log.
        let mut cold = Vec::new();
        let mut warm = Vec::new();
        for _ in 0..5 {
            evict(big);
            let t0 = Instant::now();
            let log = open_ours(big, 2)?;
            let _ = log.info();
            cold.push(t0.elapsed());
            drop(log);
            let t0 = Instant::now();
            let log = open_ours(big, 2)?;
            let _ = log.info();
            warm.push(t0.elapsed());
        }
        cold.sort();
        warm.sort();
        t.set(
            &format!("4. open the {}-entry log + read its head: cold / warm", p.w2_commits * p.w2_batch),
            engine,
            format!("{} / {}", ms(pct(&cold, 0.5)), ms(pct(&warm, 0.5))),
        );
    } else {
        // Store open, then the first head read (cold), then more head reads.
        let mut opens = Vec::new();
        let mut firsts = Vec::new();
        let mut warm = Vec::new();
        for round in 0..3 {
            evict(many);
            let t0 = Instant::now();
            let kv = open_kv(engine, many)?;
            opens.push(t0.elapsed());
            let t0 = Instant::now();
            let (_, _, h) = decode_head(&kv.head(samples[round])?.ok_or("no head")?)?;
            firsts.push(t0.elapsed());
            assert_eq!(h.length, p.w3_entries as u64);
            if round == 0 {
                for &id in &samples[1..] {
                    let t0 = Instant::now();
                    decode_head(&kv.head(id)?.ok_or("no head")?)?;
                    warm.push(t0.elapsed());
                }
            }
        }
        opens.sort();
        firsts.sort();
        warm.sort();
        t.set(&format!("4. open store ({logs} logs)"), engine, format!("{} (cold)", ms(pct(&opens, 0.5))));
        t.set(
            &format!("4. open one log among {logs} + read its verified head: cold / warm (median)"),
            engine,
            format!("{} / {}", ms(pct(&firsts, 0.5)), ms(pct(&warm, 0.5))),
        );
        let mut cold = Vec::new();
        for _ in 0..3 {
            evict(big);
            let t0 = Instant::now();
            let kv = open_kv(engine, big)?;
            decode_head(&kv.head(2)?.ok_or("no head")?)?;
            cold.push(t0.elapsed());
        }
        cold.sort();
        let t0 = Instant::now();
        let kv = open_kv(engine, big)?;
        decode_head(&kv.head(2)?.ok_or("no head")?)?;
        let warm = t0.elapsed();
        drop(kv);
        t.set(
            &format!("4. open the {}-entry log + read its head: cold / warm", p.w2_commits * p.w2_batch),
            engine,
            format!("{} / {}", ms(pct(&cold, 0.5)), ms(warm)),
        );
    }
    // Unclean exit: a child process opens the big store, appends one durable batch, aborts.
    let exe = std::env::current_exe()?;
    let status = std::process::Command::new(exe).args(["crash-child", engine, big.to_str().unwrap()]).status()?;
    assert!(!status.success(), "the child should have aborted");
    evict(big);
    let t0 = Instant::now();
    let len = if engine == "ours" {
        open_ours(big, 2)?.len()
    } else {
        let kv = open_kv(engine, big)?;
        let (_, _, h) = decode_head(&kv.head(2)?.ok_or("no head")?)?;
        h.length
    };
    let el = t0.elapsed();
    assert_eq!(len, (p.w2_commits * p.w2_batch + 1000) as u64, "the acknowledged batch must survive");
    t.set(
        &format!("4. open the {}-entry log after a crash (process abort) + read its head", p.w2_commits * p.w2_batch),
        engine,
        ms(el),
    );
    Ok(())
}

/// Run in a child process: append one durable batch to the big log, then abort.
fn crash_child(engine: &str, dir: &Path) -> Res<()> {
    let pay = Payload::new();
    let blocks = pay.blocks(7_000_000, 1000);
    // Abort while the store is still open: no destructor, no clean shutdown.
    if engine == "ours" {
        let log = open_ours(dir, 2)?;
        log.append_batch(&blocks)?;
        std::process::abort();
    } else {
        let s = KvStore::new(open_kv(engine, dir)?);
        s.open_log(2, keypair(2))?;
        s.append(2, &blocks)?;
        std::process::abort();
    }
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("crash-child") {
        return crash_child(&args[2], Path::new(&args[3]));
    }
    let p = Params::from_env();
    let root = match std::env::var("ENGINE_BENCH_DIR") {
        Ok(d) => {
            std::fs::create_dir_all(&d)?;
            tempfile::tempdir_in(d)?
        }
        Err(_) => tempfile::tempdir_in(Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))?,
    };
    println!("engine-bench: quick={} dir={}", p.quick, root.path().display());
    let df = std::process::Command::new("df").arg("-T").arg(root.path()).output()?;
    print!("{}", String::from_utf8_lossy(&df.stdout));
    println!(
        "cpus={} load={} redb=2.x fjall=2.x",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        loadavg()
    );
    println!("{}", fsync_costs(root.path())?);
    let pay = Arc::new(Payload::new());
    let mut t = Table::default();
    let dir = |e: &str, w: &str| root.path().join(format!("{e}-{w}"));
    let engines = p.engines.clone();
    let started = Instant::now();

    if p.wants("1") {
        println!("\n== 1: {} threads × {} durable single appends, one log", p.w1_threads, p.w1_per_thread);
        for e in &engines {
            w1(&p, e, &dir(e, "w1"), &pay, &mut t)?;
            std::fs::remove_dir_all(dir(e, "w1"))?;
        }
    }
    if p.wants("2") || p.wants("5") || p.wants("4") {
        println!("\n== 2/5: {} durable commits × {} entries of 300 B, one log", p.w2_commits, p.w2_batch);
        for e in &engines {
            w2(&p, e, &dir(e, "big"), &pay, &mut t)?;
        }
    }
    if p.wants("3") || p.wants("4") {
        println!("\n== 3: {} logs × {} entries, one commit per log, 1 thread", p.w3_logs, p.w3_entries);
        for e in &engines {
            w3(&p, e, &dir(e, "many"), &pay, 1, &mut t)?;
        }
    }
    if p.wants("3b") {
        println!("\n== 3b: {} logs × {} entries, one commit per log, {} threads", p.w3_logs, p.w3_entries, p.w3b_threads);
        for e in &engines {
            w3(&p, e, &dir(e, "many-mt"), &pay, p.w3b_threads, &mut t)?;
            std::fs::remove_dir_all(dir(e, "many-mt"))?;
        }
    }
    if p.wants("4") {
        println!("\n== 4: reopen");
        for e in &engines {
            w4(&p, e, &dir(e, "many"), &dir(e, "big"), &mut t)?;
        }
    }
    println!("\nload at end: {}; total {:.0} s", loadavg(), started.elapsed().as_secs_f64());
    t.print(&engines);
    if std::env::var_os("ENGINE_BENCH_KEEP").is_some() {
        println!("kept {}", root.keep().display());
    }
    Ok(())
}
