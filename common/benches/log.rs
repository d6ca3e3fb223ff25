//! Throughput of the signed log, measured in the same run as the JS reference (hypercore 11).
//!
//!     cargo bench -p fritter-common --bench log
//!     FRITTER_BENCH_QUICK=1 cargo bench -p fritter-common --bench log      # smoke run, ~15 s once built
//!     cargo bench -p fritter-common --bench log -- --seconds 5 --no-js
//!
//! Options (flag or environment variable):
//!   --quick            FRITTER_BENCH_QUICK=1      short phases, 100,000-entry big log
//!   --seconds S        FRITTER_BENCH_SECONDS=S    length of each timed phase (default 3)
//!   --entries N        FRITTER_BENCH_ENTRIES=N    entries in the big log (default 1,000,000)
//!   --opens K          FRITTER_BENCH_OPENS=K      repeated opens to time (default 200)
//!   --no-js            FRITTER_BENCH_NO_JS=1      skip the JS reference
//!   --dir D            FRITTER_BENCH_DIR=D        where temp dirs go (default <target>/bench-tmp)
//!   --rounds R         FRITTER_BENCH_ROUNDS=R     rounds of the append phases (default 3, quick 1);
//!                                                 each round runs JS then ours; the median is shown
//!   --wait-idle S      FRITTER_BENCH_WAIT_IDLE=S  before each round wait up to S seconds for an idle
//!                                                 machine (useful on a shared box)
//!   --only P[,P..]     FRITTER_BENCH_ONLY=P,..    run only some phases (for profiling): js, single,
//!                                                 batch, read (build, scans, gets, opens), storage
//!
//! Prints a table with each figure, its goal, the JS figure from this run where there is one, and
//! PASS/MISS. Append phases run on a thin `Storage` wrapper that counts and times `write_all_at`
//! and `sync` calls (two clock reads per call) so the table can show commits and time in fsync.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use fritter_common::crypto::KeyPair;
use fritter_common::log::{Access, DiskStorage, Log, Storage};
use rand::{Rng, RngCore, SeedableRng};

const BLOCK: usize = 300;

// ---------------------------------------------------------------------------------------------
// configuration

struct Cfg {
    quick: bool,
    seconds: f64,
    entries: u64,
    opens: usize,
    js: bool,
    dir: PathBuf,
    only: Option<Vec<String>>,
    rounds: usize,
    wait_idle: f64,
}

impl Cfg {
    fn runs(&self, phase: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|o| o.iter().any(|p| p == phase))
    }
}

fn env_flag(name: &str) -> bool {
    std::env::var(name)
        .map(|v| !v.is_empty() && v != "0")
        .unwrap_or(false)
}

fn env_parse<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn parse_cfg() -> Cfg {
    let mut quick = env_flag("FRITTER_BENCH_QUICK");
    let mut seconds: Option<f64> = env_parse("FRITTER_BENCH_SECONDS");
    let mut entries: Option<u64> = env_parse("FRITTER_BENCH_ENTRIES");
    let mut opens: Option<usize> = env_parse("FRITTER_BENCH_OPENS");
    let mut js = !env_flag("FRITTER_BENCH_NO_JS");
    let mut dir: Option<PathBuf> = std::env::var_os("FRITTER_BENCH_DIR").map(PathBuf::from);
    let mut rounds: Option<usize> = env_parse("FRITTER_BENCH_ROUNDS");
    let mut wait_idle: f64 = env_parse("FRITTER_BENCH_WAIT_IDLE").unwrap_or(0.0);
    let mut only: Option<String> = std::env::var("FRITTER_BENCH_ONLY")
        .ok()
        .filter(|s| !s.is_empty());
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |what: &str| args.next().unwrap_or_else(|| panic!("{a} needs {what}"));
        match a.as_str() {
            "--bench" => {} // passed by `cargo bench`
            "--quick" => quick = true,
            "--no-js" => js = false,
            "--seconds" => seconds = Some(value("a number").parse().expect("--seconds")),
            "--entries" => entries = Some(value("a number").parse().expect("--entries")),
            "--opens" => opens = Some(value("a number").parse().expect("--opens")),
            "--dir" => dir = Some(PathBuf::from(value("a path"))),
            "--only" => only = Some(value("a list of phases")),
            "--rounds" => rounds = Some(value("a number").parse().expect("--rounds")),
            "--wait-idle" => wait_idle = value("seconds").parse().expect("--wait-idle"),
            other if other.starts_with("--") => eprintln!("ignoring unknown option {other}"),
            _ => {} // a libtest-style filter: ignored
        }
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    Cfg {
        quick,
        seconds: seconds.unwrap_or(if quick { 0.5 } else { 3.0 }),
        entries: entries.unwrap_or(if quick { 100_000 } else { 1_000_000 }),
        opens: opens.unwrap_or(if quick { 50 } else { 200 }),
        js,
        dir: dir.unwrap_or_else(|| target.join("bench-tmp")),
        only: only.map(|o| o.split(',').map(|p| p.trim().to_owned()).collect()),
        rounds: rounds.unwrap_or(if quick { 1 } else { 3 }).max(1),
        wait_idle,
    }
}

#[path = "log/counting.rs"]
mod counting;
#[path = "log/machine.rs"]
mod machine;

use counting::{CountingStorage, IoStats};
use machine::{evict, fs_type, fsync_probe, loadavg, wait_idle};

/// Commits of an append phase: every append commit syncs `data`, `tree`, then `tree` again
/// after the header write.
const SYNCS_PER_COMMIT: u64 = 3;

// ---------------------------------------------------------------------------------------------
// helpers

fn blocks(n: usize, size: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let mut b = vec![0u8; size];
            rng.fill_bytes(&mut b);
            b
        })
        .collect()
}

fn fresh_dir(cfg: &Cfg, name: &str) -> tempfile::TempDir {
    fs::create_dir_all(&cfg.dir).expect("create bench dir");
    tempfile::Builder::new()
        .prefix(&format!("fritter-bench-{name}-"))
        .tempdir_in(&cfg.dir)
        .expect("temp dir")
}

fn open_writer(storage: &dyn Storage, kp: &KeyPair) -> Log {
    Log::open(storage, kp.public(), Access::Writer(kp.clone())).expect("open log")
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn file_sizes(dir: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let mut apparent = 0;
    let mut allocated = 0;
    for f in ["tree", "data", "bitfield"] {
        if let Ok(m) = fs::metadata(dir.join(f)) {
            apparent += m.len();
            allocated += m.blocks() * 512;
        }
    }
    (apparent, allocated)
}

fn rate(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn human(r: f64) -> String {
    if r >= 1e6 {
        format!("{:.2}M", r / 1e6)
    } else if r >= 1e3 {
        format!("{:.1}k", r / 1e3)
    } else {
        format!("{r:.0}")
    }
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    Some(v[v.len() / 2])
}

fn median_result(v: &[AppendResult]) -> Option<&AppendResult> {
    let mut refs: Vec<&AppendResult> = v.iter().collect();
    refs.sort_by(|a, b| a.per_sec().partial_cmp(&b.per_sec()).expect("no NaN"));
    refs.get(refs.len() / 2).copied()
}

#[derive(Default)]
struct Js {
    single: Option<f64>,
    single_p50_us: Option<f64>,
    concurrent_64: Option<f64>,
    batch_100: Option<f64>,
    batch_1000: Option<f64>,
    note: String,
}

fn run_js(cfg: &Cfg) -> Js {
    if !cfg.js || !cfg.runs("js") {
        return Js {
            note: "skipped (--no-js or --only)".into(),
            ..Js::default()
        };
    }
    let root = workspace_root();
    let script = root.join("tests/js/bench-append.js");
    if !root
        .join("tests/js/node_modules/hypercore/package.json")
        .exists()
    {
        return Js {
            note: "skipped: tests/js/node_modules missing (run `npm ci` in tests/js)".into(),
            ..Js::default()
        };
    }
    let dir = fresh_dir(cfg, "js");
    eprintln!(
        "[js] node {} --seconds {} --dir {}",
        script.display(),
        cfg.seconds,
        dir.path().display()
    );
    let out = Command::new("node")
        .arg(&script)
        .arg("--seconds")
        .arg(cfg.seconds.to_string())
        .arg("--dir")
        .arg(dir.path())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output();
    let out = match out {
        Ok(o) if o.status.success() => o,
        Ok(o) => {
            return Js {
                note: format!("skipped: node exited with {}", o.status),
                ..Js::default()
            }
        }
        Err(e) => {
            return Js {
                note: format!("skipped: cannot run node ({e})"),
                ..Js::default()
            }
        }
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = match text
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
    {
        Some(v) => v,
        None => {
            return Js {
                note: format!("skipped: unreadable output {text:?}"),
                ..Js::default()
            }
        }
    };
    println!("JS reference output: {}", text.trim());
    let f = |a: &str, b: &str| v.get(a).and_then(|x| x.get(b)).and_then(|x| x.as_f64());
    Js {
        single: f("single", "per_sec"),
        single_p50_us: f("single", "p50_us"),
        concurrent_64: f("concurrent_64", "per_sec"),
        batch_100: f("batch_100", "per_sec"),
        batch_1000: f("batch_1000", "per_sec"),
        note: format!(
            "hypercore {} on node {}",
            v.get("version").and_then(|x| x.as_str()).unwrap_or("?"),
            v.get("node").and_then(|x| x.as_str()).unwrap_or("?")
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// our measurements

struct AppendResult {
    entries: u64,
    elapsed: Duration,
    commits: u64,
    sync_share: f64,
    p50_us: f64,
    p99_us: f64,
}

impl AppendResult {
    fn per_sec(&self) -> f64 {
        rate(self.entries, self.elapsed)
    }
    fn detail(&self) -> String {
        format!(
            "{} entries in {:.2}s; {} commits ({:.1} entries/commit); time in sync calls {:.0}% of wall (summed over files); latency p50 {:.0}us p99 {:.0}us",
            self.entries,
            self.elapsed.as_secs_f64(),
            self.commits,
            self.entries as f64 / self.commits.max(1) as f64,
            self.sync_share * 100.0,
            self.p50_us,
            self.p99_us
        )
    }
}

/// `threads` writers each calling `append(block)` in a loop for `seconds`.
fn bench_single(cfg: &Cfg, threads: usize) -> AppendResult {
    let dir = fresh_dir(cfg, &format!("single{threads}"));
    let stats = Arc::new(IoStats::default());
    let storage = CountingStorage {
        inner: DiskStorage::new(dir.path()),
        stats: stats.clone(),
    };
    let kp = KeyPair::generate();
    let log = open_writer(&storage, &kp);
    let pool = blocks(1024, BLOCK, threads as u64);
    // Warm-up: a few commits so files exist and have some length.
    for b in pool.iter().take(32) {
        log.append(b).expect("append");
    }
    let before = log.len();
    let stop = AtomicBool::new(false);
    let barrier = Barrier::new(threads + 1);
    let (lat, elapsed, (_, _, syncs0, sync_ns0), (_, _, syncs1, sync_ns1)) =
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let (log, pool, stop, barrier) = (&log, &pool, &stop, &barrier);
                    s.spawn(move || {
                        let mut lat = Vec::with_capacity(1 << 14);
                        let mut i = t * 7;
                        barrier.wait();
                        while !stop.load(Ordering::Relaxed) {
                            let t0 = Instant::now();
                            log.append(&pool[i % pool.len()]).expect("append");
                            lat.push(t0.elapsed().as_secs_f64() * 1e6);
                            i += 1;
                        }
                        lat
                    })
                })
                .collect();
            let s0 = stats.snapshot();
            barrier.wait();
            let start = Instant::now();
            std::thread::sleep(Duration::from_secs_f64(cfg.seconds));
            stop.store(true, Ordering::Relaxed);
            let mut lat: Vec<f64> = Vec::new();
            for h in handles {
                lat.extend(h.join().expect("writer thread"));
            }
            let elapsed = start.elapsed();
            (lat, elapsed, s0, stats.snapshot())
        });
    let entries = log.len() - before;
    assert_eq!(entries, lat.len() as u64, "every append is in the log");
    let mut lat = lat;
    lat.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    AppendResult {
        entries,
        elapsed,
        commits: (syncs1 - syncs0) / SYNCS_PER_COMMIT,
        sync_share: (sync_ns1 - sync_ns0) as f64 / 1e9 / elapsed.as_secs_f64(),
        p50_us: pct(&lat, 0.5),
        p99_us: pct(&lat, 0.99),
    }
}

/// One writer calling `append_batch` with `batch` blocks for `seconds`.
fn bench_batch(cfg: &Cfg, batch: usize) -> AppendResult {
    let dir = fresh_dir(cfg, &format!("batch{batch}"));
    let stats = Arc::new(IoStats::default());
    let storage = CountingStorage {
        inner: DiskStorage::new(dir.path()),
        stats: stats.clone(),
    };
    let kp = KeyPair::generate();
    let log = open_writer(&storage, &kp);
    let pool = blocks(batch.max(4096), BLOCK, batch as u64);
    let slices: Vec<&[u8]> = pool.iter().map(|b| b.as_slice()).collect();
    let batches: Vec<&[&[u8]]> = slices.chunks(batch).filter(|c| c.len() == batch).collect();
    log.append_batch(batches[0]).expect("warm-up batch");
    let (_, _, syncs0, sync_ns0) = stats.snapshot();
    let mut lat = Vec::new();
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(cfg.seconds);
    let mut n = 0u64;
    let mut i = 0;
    loop {
        let t0 = Instant::now();
        log.append_batch(batches[i % batches.len()])
            .expect("append_batch");
        let t1 = Instant::now();
        lat.push((t1 - t0).as_secs_f64() * 1e6);
        n += batch as u64;
        i += 1;
        if t1 >= deadline {
            break;
        }
    }
    let elapsed = start.elapsed();
    let (_, _, syncs1, sync_ns1) = stats.snapshot();
    assert_eq!(log.len(), n + batch as u64);
    lat.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    AppendResult {
        entries: n,
        elapsed,
        commits: (syncs1 - syncs0) / SYNCS_PER_COMMIT,
        sync_share: (sync_ns1 - sync_ns0) as f64 / 1e9 / elapsed.as_secs_f64(),
        p50_us: pct(&lat, 0.5),
        p99_us: pct(&lat, 0.99),
    }
}

struct Built {
    dir: tempfile::TempDir,
    kp: KeyPair,
    build: Duration,
    apparent: u64,
    allocated: u64,
    payload: u64,
}

/// Builds a log of `entries` blocks of `size` bytes with batches of 10,000.
fn build_log(cfg: &Cfg, entries: u64, size: usize) -> Built {
    let dir = fresh_dir(cfg, &format!("big{size}"));
    let kp = KeyPair::generate();
    let storage = DiskStorage::new(dir.path());
    let log = open_writer(&storage, &kp);
    let pool = blocks(10_000, size, size as u64);
    let slices: Vec<&[u8]> = pool.iter().map(|b| b.as_slice()).collect();
    let start = Instant::now();
    let mut n = 0u64;
    while n < entries {
        let k = ((entries - n) as usize).min(slices.len());
        log.append_batch(&slices[..k]).expect("append_batch");
        n += k as u64;
    }
    let build = start.elapsed();
    let info = log.info();
    assert_eq!(info.length, entries);
    drop(log);
    let (apparent, allocated) = file_sizes(dir.path());
    Built {
        dir,
        kp,
        build,
        apparent,
        allocated,
        payload: info.byte_length,
    }
}

struct OpenResult {
    cold_ms: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    view_p50_ms: f64,
    view_p99_ms: f64,
}

fn bench_open(cfg: &Cfg, big: &Built) -> OpenResult {
    let storage = DiskStorage::new(big.dir.path());
    evict(big.dir.path());
    let t = Instant::now();
    let log = open_writer(&storage, &big.kp);
    let cold_ms = t.elapsed().as_secs_f64() * 1e3;
    assert_eq!(log.len(), cfg.entries);
    drop(log);
    let mut times = Vec::with_capacity(cfg.opens);
    for _ in 0..cfg.opens {
        let t = Instant::now();
        let log = open_writer(&storage, &big.kp);
        times.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(log.len(), cfg.entries);
    }
    times.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    let mut view = Vec::with_capacity(cfg.opens);
    for _ in 0..cfg.opens {
        let t = Instant::now();
        let log = Log::open(&storage, big.kp.public(), Access::View).expect("open view");
        view.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(log.len(), cfg.entries);
    }
    view.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    OpenResult {
        cold_ms,
        p50_ms: pct(&times, 0.5),
        p99_ms: pct(&times, 0.99),
        max_ms: *times.last().unwrap_or(&f64::NAN),
        view_p50_ms: pct(&view, 0.5),
        view_p99_ms: pct(&view, 0.99),
    }
}

/// Sequential verified scan of the whole log with `for_each`, on a freshly opened log.
fn bench_scan(big: &Built, cold: bool) -> (u64, Duration) {
    if cold {
        evict(big.dir.path());
    }
    let storage = DiskStorage::new(big.dir.path());
    let log = open_writer(&storage, &big.kp);
    let len = log.len();
    let mut sum = 0u64;
    let mut n = 0u64;
    let t = Instant::now();
    log.for_each(0, len, |_, b| {
        sum = sum.wrapping_add(b[0] as u64);
        n += 1;
        Ok(())
    })
    .expect("for_each");
    let d = t.elapsed();
    std::hint::black_box(sum);
    assert_eq!(n, len);
    (n, d)
}

/// Random verified `get`s for `seconds`, on a freshly opened log (empty verified-node cache).
fn bench_random_get(cfg: &Cfg, big: &Built) -> (u64, Duration, f64, f64) {
    let storage = DiskStorage::new(big.dir.path());
    let log = open_writer(&storage, &big.kp);
    let len = log.len();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut lat = Vec::new();
    let mut sum = 0u64;
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(cfg.seconds);
    loop {
        let seq = rng.gen_range(0..len);
        let t0 = Instant::now();
        let b = log.get(seq).expect("get");
        let t1 = Instant::now();
        sum = sum.wrapping_add(b[0] as u64);
        lat.push((t1 - t0).as_secs_f64() * 1e6);
        if t1 >= deadline {
            break;
        }
    }
    let d = start.elapsed();
    std::hint::black_box(sum);
    lat.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    (lat.len() as u64, d, pct(&lat, 0.5), pct(&lat, 0.99))
}

// ---------------------------------------------------------------------------------------------
// the table

struct Row {
    figure: String,
    ours: String,
    goal: String,
    js: String,
    ratio: String,
    result: &'static str,
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "MISS"
    }
}

fn print_table(rows: &[Row]) {
    let headers = [
        "Figure",
        "Fritter",
        "Goal",
        "JS hypercore 11",
        "Fritter/JS",
        "Result",
    ];
    let cells: Vec<[&str; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.figure.as_str(),
                r.ours.as_str(),
                r.goal.as_str(),
                r.js.as_str(),
                r.ratio.as_str(),
                r.result,
            ]
        })
        .collect();
    let mut w = headers.map(str::len);
    for c in &cells {
        for i in 0..6 {
            w[i] = w[i].max(c[i].len());
        }
    }
    let line = |c: [&str; 6]| {
        let parts: Vec<String> = (0..6)
            .map(|i| format!("{:<width$}", c[i], width = w[i]))
            .collect();
        println!("| {} |", parts.join(" | "));
    };
    line(headers);
    let dashes: Vec<String> = w.iter().map(|n| "-".repeat(*n)).collect();
    println!("|-{}-|", dashes.join("-|-"));
    for c in cells {
        line(c);
    }
}

fn main() {
    let cfg = parse_cfg();
    fs::create_dir_all(&cfg.dir).expect("bench dir");
    println!(
        "fritter log bench: {} mode, {:.1}s per timed phase, big log {} entries, temp dir {} ({})",
        if cfg.quick { "QUICK" } else { "full" },
        cfg.seconds,
        cfg.entries,
        cfg.dir.display(),
        fs_type(&cfg.dir)
    );
    println!("load average at start: {}", loadavg());
    if cfg!(debug_assertions) {
        println!("WARNING: debug build; run with `cargo bench` for release figures");
    }

    // (1) + (2): the append figures, in rounds. Each round runs the JS reference and then ours
    // back to back, so both see the same disk; the table shows the median round.
    let single_threads = [1usize, 8, 64, 256];
    let batch_sizes = [100usize, 1000];
    let mut js_rounds: Vec<Js> = Vec::new();
    let mut fsync_rounds: Vec<f64> = Vec::new();
    let mut single_rounds: Vec<Vec<AppendResult>> =
        single_threads.iter().map(|_| Vec::new()).collect();
    let mut batch_rounds: Vec<Vec<AppendResult>> = batch_sizes.iter().map(|_| Vec::new()).collect();
    let appends = cfg.runs("js") || cfg.runs("single") || cfg.runs("batch");
    for round in 1..=cfg.rounds {
        if !appends {
            break;
        }
        wait_idle(&cfg);
        let probe = fsync_probe(&cfg);
        println!(
            "round {round}/{}: load {}; raw 4 KiB write+fdatasync p50 {probe:.0}us",
            cfg.rounds,
            loadavg()
        );
        fsync_rounds.push(probe);
        let js = run_js(&cfg);
        println!("  JS reference: {}", js.note);
        if let Some(s) = js.single {
            println!(
                "  JS: single {}/s (p50 {:.0}us), 64 in flight {}/s, batch 100 {}/s, batch 1000 {}/s",
                human(s),
                js.single_p50_us.unwrap_or(f64::NAN),
                js.concurrent_64.map(human).unwrap_or_default(),
                js.batch_100.map(human).unwrap_or_default(),
                js.batch_1000.map(human).unwrap_or_default()
            );
        }
        if cfg.runs("single") {
            for (i, threads) in single_threads.iter().enumerate() {
                eprintln!("[fritter] round {round}: single appends, {threads} writer threads");
                let r = bench_single(&cfg, *threads);
                println!(
                    "  single appends x{threads}: {}/s: {}",
                    human(r.per_sec()),
                    r.detail()
                );
                single_rounds[i].push(r);
            }
        }
        if cfg.runs("batch") {
            for (i, batch) in batch_sizes.iter().enumerate() {
                eprintln!("[fritter] round {round}: batched appends of {batch}");
                let r = bench_batch(&cfg, *batch);
                println!(
                    "  batches of {batch}: {}/s: {}",
                    human(r.per_sec()),
                    r.detail()
                );
                batch_rounds[i].push(r);
            }
        }
        js_rounds.push(js);
    }

    let js_med = |f: fn(&Js) -> Option<f64>| median(js_rounds.iter().filter_map(f).collect());
    let js_single = js_med(|j| j.single);
    let js_note = js_rounds
        .first()
        .map(|j| j.note.clone())
        .unwrap_or_else(|| "not run".into());
    let ratio_to = |ours: f64, js: Option<f64>| {
        js.map(|j| format!("{:.1}x", ours / j))
            .unwrap_or_else(|| "-".into())
    };
    let js_str = |js: Option<f64>| {
        js.map(|j| format!("{}/s", human(j)))
            .unwrap_or_else(|| "-".into())
    };
    let spread = |v: &[AppendResult]| {
        let r: Vec<f64> = v.iter().map(AppendResult::per_sec).collect();
        if r.len() < 2 {
            String::new()
        } else {
            let lo = r.iter().cloned().fold(f64::INFINITY, f64::min);
            let hi = r.iter().cloned().fold(0.0, f64::max);
            format!(" ({}-{})", human(lo), human(hi))
        }
    };
    let mut rows = Vec::new();
    if let Some(p) = median(fsync_rounds.clone()) {
        rows.push(Row {
            figure: "raw disk: 4 KiB pwrite + fdatasync, p50".into(),
            ours: format!("{p:.0} us"),
            goal: "(info)".into(),
            js: "-".into(),
            ratio: "-".into(),
            result: "info",
        });
    }
    let single_goal = js_single.map(|j| 5.0 * j);
    for (i, threads) in single_threads.iter().enumerate() {
        let Some(r) = median_result(&single_rounds[i]) else {
            continue;
        };
        let concurrent = *threads > 1;
        rows.push(Row {
            figure: format!(
                "durable single appends, {threads} writer{} ({:.0}/commit)",
                if *threads == 1 { "" } else { "s" },
                r.entries as f64 / r.commits.max(1) as f64
            ),
            ours: format!("{}/s{}", human(r.per_sec()), spread(&single_rounds[i])),
            goal: match (concurrent, single_goal) {
                (false, _) => "(info)".into(),
                (true, Some(g)) => format!(">= 5x JS = {}/s", human(g)),
                (true, None) => ">= 5x JS".into(),
            },
            js: js_str(js_single),
            ratio: ratio_to(r.per_sec(), js_single),
            result: match (concurrent, single_goal) {
                (false, _) => "info",
                (true, Some(g)) => verdict(r.per_sec() >= g),
                (true, None) => "no ref",
            },
        });
    }
    if let Some(c) = js_med(|j| j.concurrent_64) {
        rows.push(Row {
            figure: "JS: 64 appends in flight from one event loop".into(),
            ours: "-".into(),
            goal: "(info)".into(),
            js: js_str(Some(c)),
            ratio: "-".into(),
            result: "info",
        });
    }
    for (i, batch) in batch_sizes.iter().enumerate() {
        let Some(r) = median_result(&batch_rounds[i]) else {
            continue;
        };
        let j = if *batch == 100 {
            js_med(|j| j.batch_100)
        } else {
            js_med(|j| j.batch_1000)
        };
        rows.push(Row {
            figure: format!("batched appends, batch {batch}"),
            ours: format!("{}/s{}", human(r.per_sec()), spread(&batch_rounds[i])),
            goal: ">= 500k/s".into(),
            js: js_str(j),
            ratio: ratio_to(r.per_sec(), j),
            result: verdict(r.per_sec() >= 500_000.0),
        });
    }

    if cfg.runs("read") || cfg.runs("storage") {
        let m = format!("{}M", cfg.entries as f64 / 1e6);
        eprintln!(
            "[fritter] building a {}-entry log of {BLOCK}-byte entries",
            cfg.entries
        );
        let big = build_log(&cfg, cfg.entries, BLOCK);
        println!(
            "  built {} entries in batches of 10,000 in {:.2}s ({}/s)",
            cfg.entries,
            big.build.as_secs_f64(),
            human(rate(cfg.entries, big.build))
        );
        rows.push(Row {
            figure: "batched appends, batch 10000 (building the big log)".into(),
            ours: format!("{}/s", human(rate(cfg.entries, big.build))),
            goal: "(info)".into(),
            js: "-".into(),
            ratio: "-".into(),
            result: "info",
        });

        if cfg.runs("read") {
            eprintln!("[fritter] sequential verified scans");
            let (n, d) = bench_scan(&big, true);
            println!(
                "  for_each, files evicted from page cache first: {n} entries in {:.3}s",
                d.as_secs_f64()
            );
            rows.push(Row {
                figure: "sequential verified read (for_each), cold-ish".into(),
                ours: format!("{}/s", human(rate(n, d))),
                goal: ">= 100k/s".into(),
                js: "-".into(),
                ratio: "-".into(),
                result: verdict(rate(n, d) >= 100_000.0),
            });
            let (n, d) = bench_scan(&big, false);
            println!(
                "  for_each, page cache warm: {n} entries in {:.3}s",
                d.as_secs_f64()
            );
            rows.push(Row {
                figure: "sequential verified read (for_each), warm".into(),
                ours: format!("{}/s", human(rate(n, d))),
                goal: ">= 100k/s".into(),
                js: "-".into(),
                ratio: "-".into(),
                result: verdict(rate(n, d) >= 100_000.0),
            });

            eprintln!("[fritter] random verified gets");
            let (n, d, p50, p99) = bench_random_get(&cfg, &big);
            println!(
                "  random get: {n} gets in {:.2}s, latency p50 {p50:.1}us p99 {p99:.1}us",
                d.as_secs_f64()
            );
            rows.push(Row {
                figure: "random verified get, warm page cache".into(),
                ours: format!("{}/s", human(rate(n, d))),
                goal: ">= 100k/s".into(),
                js: "-".into(),
                ratio: "-".into(),
                result: verdict(rate(n, d) >= 100_000.0),
            });

            eprintln!("[fritter] opening the big log");
            let o = bench_open(&cfg, &big);
            println!(
                "  open (writer): cold-ish {:.2}ms; {} opens p50 {:.2}ms p99 {:.2}ms max {:.2}ms; view open p50 {:.2}ms p99 {:.2}ms",
                o.cold_ms, cfg.opens, o.p50_ms, o.p99_ms, o.max_ms, o.view_p50_ms, o.view_p99_ms
            );
            rows.push(Row {
                figure: format!("open {m}-entry log, first open after evicting its files"),
                ours: format!("{:.2} ms", o.cold_ms),
                goal: "< 50 ms".into(),
                js: "-".into(),
                ratio: "-".into(),
                result: verdict(o.cold_ms < 50.0),
            });
            rows.push(Row {
                figure: format!("open {m}-entry log, p50 / p99 of {}", cfg.opens),
                ours: format!("{:.2} / {:.2} ms", o.p50_ms, o.p99_ms),
                goal: "< 50 ms".into(),
                js: "-".into(),
                ratio: "-".into(),
                result: verdict(o.p99_ms < 50.0),
            });
        }

        let ratio300 = big.apparent as f64 / big.payload as f64;
        println!(
            "  storage, {BLOCK}-byte entries: payload {} B, files {} B (allocated {} B): {:.3}x",
            big.payload, big.apparent, big.allocated, ratio300
        );
        rows.push(Row {
            figure: format!("storage / payload, {m} x 300 B"),
            ours: format!("{ratio300:.3}x"),
            goal: "<= 1.3x".into(),
            js: "-".into(),
            ratio: "-".into(),
            result: verdict(ratio300 <= 1.3),
        });
        drop(big);

        eprintln!(
            "[fritter] building a {}-entry log of 200-byte entries",
            cfg.entries
        );
        let small = build_log(&cfg, cfg.entries, 200);
        let ratio200 = small.apparent as f64 / small.payload as f64;
        println!(
            "  storage, 200-byte entries: payload {} B, files {} B (allocated {} B): {:.3}x",
            small.payload, small.apparent, small.allocated, ratio200
        );
        rows.push(Row {
            figure: format!("storage / payload, {m} x 200 B"),
            ours: format!("{ratio200:.3}x"),
            goal: "<= 1.3x".into(),
            js: "-".into(),
            ratio: "-".into(),
            result: verdict(ratio200 <= 1.3),
        });
        drop(small);
    }

    println!("load average at end: {}", loadavg());
    println!();
    print_table(&rows);
    println!();
    println!(
        "JS reference: {js_note}; JS appends are NOT fsync'd (RocksDB default write options), ours are. \
         Append figures: median of {} round(s), range in brackets.",
        js_rounds.len().max(single_rounds[0].len())
    );
}
