//! Replication over TCP on loopback, two processes: full replication throughput and live
//! append-to-visible latency, with JS Hypercore (11.37.1) measured in the same run.
//!
//!     cargo bench -p fritter-common --bench replicate
//!     cargo bench -p fritter-common --bench replicate -- --entries 20000 --live 50 --no-js
//!
//! Options (flag or environment variable):
//!   --entries N   FRITTER_BENCH_ENTRIES=N   entries to replicate (default 100,000)
//!   --size B      FRITTER_BENCH_SIZE=B      bytes per entry (default 300)
//!   --live K      FRITTER_BENCH_LIVE=K      live appends timed one by one (default 200)
//!   --no-js       FRITTER_BENCH_NO_JS=1     skip the JS figures
//!   --only P,..   FRITTER_BENCH_ONLY=P,..   phases: rust (Rust to Rust, then live), js (JS to
//!                                           JS), js-rust (JS writer, Rust reader), rust-js
//!   --dir D       FRITTER_BENCH_DIR=D       where temp dirs go (default <target>/bench-tmp)
//!   --window W    FRITTER_BENCH_WINDOW=W    the reader's requests in flight (default: the node's)
//!   --rounds R    FRITTER_BENCH_ROUNDS=R    Rust-to-Rust rounds; the median is shown (default 3)
//!
//! The writer runs in a child process (this binary with `--serve`), the reader here, each with
//! its own runtime. Throughput is timed from the dial to the last entry stored and verified;
//! live latency from just before the writer's `append` call (which returns once durable) to the
//! entry being readable on the replica (clock shared: same machine).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fritter_common::crypto::KeyPair;
use fritter_common::log::{Access, DiskStorage, Log};
use fritter_common::replicate::{Node, NodeConfig};

const SEED: [u8; 32] = [42; 32];

struct Cfg {
    entries: u64,
    size: usize,
    live: usize,
    js: bool,
    only: Option<Vec<String>>,
    dir: PathBuf,
    window: usize,
    rounds: usize,
}

impl Cfg {
    fn runs(&self, phase: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|o| o.iter().any(|p| p == phase))
    }
}

fn env<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn parse_cfg(args: &[String]) -> Cfg {
    let mut cfg = Cfg {
        entries: env("FRITTER_BENCH_ENTRIES").unwrap_or(100_000),
        size: env("FRITTER_BENCH_SIZE").unwrap_or(300),
        live: env("FRITTER_BENCH_LIVE").unwrap_or(200),
        js: std::env::var("FRITTER_BENCH_NO_JS")
            .map(|v| v.is_empty() || v == "0")
            .unwrap_or(true),
        only: std::env::var("FRITTER_BENCH_ONLY")
            .ok()
            .filter(|s| !s.is_empty())
            .map(|s| s.split(',').map(str::to_owned).collect()),
        rounds: env("FRITTER_BENCH_ROUNDS").unwrap_or(3),
        window: env("FRITTER_BENCH_WINDOW").unwrap_or(NodeConfig::default().window),
        dir: std::env::var_os("FRITTER_BENCH_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                std::env::var_os("CARGO_TARGET_DIR")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| workspace_root().join("target"))
                    .join("bench-tmp")
            }),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .unwrap_or_else(|| panic!("{a} needs a value"))
        };
        match a.as_str() {
            "--entries" => cfg.entries = value().parse().expect("--entries"),
            "--size" => cfg.size = value().parse().expect("--size"),
            "--live" => cfg.live = value().parse().expect("--live"),
            "--no-js" => cfg.js = false,
            "--only" => cfg.only = Some(value().split(',').map(str::to_owned).collect()),
            "--dir" => cfg.dir = PathBuf::from(value()),
            "--window" => cfg.window = value().parse().expect("--window"),
            "--rounds" => cfg.rounds = value().parse::<usize>().expect("--rounds").max(1),
            _ => {}
        }
    }
    cfg
}

/// Entry `i`: `entry {i} ` padded to `size` bytes (the same bytes as `tests/js/peer.js --size`).
fn entry(i: u64, size: usize) -> Vec<u8> {
    let mut b = format!("entry {i} ").into_bytes();
    b.resize(size, b'a' + (i % 26) as u8);
    b
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

// ---- the writer process -------------------------------------------------------------------

fn serve(args: &[String]) {
    let dir = PathBuf::from(&args[0]);
    let entries: u64 = args[1].parse().expect("entries");
    let size: usize = args[2].parse().expect("size");
    let kp = KeyPair::from_seed(&SEED);
    let log = Arc::new(
        Log::open(
            &DiskStorage::new(&dir),
            kp.public(),
            Access::Writer(kp.clone()),
        )
        .expect("open writer"),
    );
    let mut i = log.len();
    while i < entries {
        let end = (i + 1000).min(entries);
        let blocks: Vec<Vec<u8>> = (i..end).map(|j| entry(j, size)).collect();
        let refs: Vec<&[u8]> = blocks.iter().map(Vec::as_slice).collect();
        log.append_batch(&refs).expect("append");
        i = end;
    }
    let rt = runtime();
    rt.block_on(async {
        let node = Node::start(NodeConfig {
            listen: Some("127.0.0.1:0".parse().expect("addr")),
            ..NodeConfig::default()
        })
        .await
        .expect("node");
        node.add(log.clone());
        let port = node.local_addr().expect("addr").port();
        println!("READY {port} {}", hex::encode(log.info().tree_hash));
        // Commands arrive one line at a time on stdin.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        while let Some(line) = rx.recv().await {
            if line.trim() != "append" {
                break;
            }
            let log = log.clone();
            let (t0, t1) = tokio::task::spawn_blocking(move || {
                let t0 = now_ns();
                let seq = log.len();
                log.append(&entry(seq, size)).expect("append");
                (t0, now_ns())
            })
            .await
            .expect("join");
            println!("APPENDED {t0} {t1}");
            let _ = std::io::stdout().flush();
        }
        node.shutdown().await;
    });
}

struct Proc {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Proc {
    fn line(&mut self) -> String {
        let mut s = String::new();
        self.stdout.read_line(&mut s).expect("read child");
        s
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(cmd: &mut Command) -> Proc {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn");
    let stdin = child.stdin.take().expect("stdin");
    let stdout = BufReader::new(child.stdout.take().expect("stdout"));
    Proc {
        child,
        stdin,
        stdout,
    }
}

fn rust_writer(cfg: &Cfg, dir: &Path) -> (Proc, u16, String) {
    let exe = std::env::current_exe().expect("exe");
    let mut w = spawn(
        Command::new(exe)
            .arg("--serve")
            .arg(dir)
            .arg(cfg.entries.to_string())
            .arg(cfg.size.to_string()),
    );
    let ready = w.line();
    let mut parts = ready.split_whitespace();
    assert_eq!(parts.next(), Some("READY"), "writer said {ready:?}");
    let port = parts.next().expect("port").parse().expect("port");
    let hash = parts.next().expect("hash").to_owned();
    (w, port, hash)
}

fn js_peer(args: &[&str]) -> Command {
    let mut c = Command::new("node");
    c.arg(workspace_root().join("tests/js/peer.js")).args(args);
    c
}

fn js_json(child: &mut Proc, event: &str) -> serde_json::Value {
    loop {
        let line = child.line();
        assert!(!line.is_empty(), "JS peer exited before {event}");
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
            if v["event"] == event {
                return v;
            }
            if v["event"] == "error" {
                panic!("JS peer failed: {}", v["error"]);
            }
        }
    }
}

fn fresh(cfg: &Cfg, name: &str) -> PathBuf {
    let d = cfg
        .dir
        .join(format!("replicate-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("bench dir");
    d
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

struct Row {
    name: String,
    value: String,
    goal: String,
}

/// Where full replication spends its time, without the network: answering the block requests a
/// replica makes (the run rule's node counts) from the writer's log, then storing those proofs in
/// a fresh replica in batches as the replicator does.
fn parts(cfg: &Cfg, rows: &mut Vec<Row>) {
    use fritter_common::log::{ProofRequest, RequestBlock, RequestUpgrade};
    let wdir = fresh(cfg, "parts-writer");
    let rdir = fresh(cfg, "parts-reader");
    let kp = KeyPair::from_seed(&SEED);
    let w = Log::open(
        &DiskStorage::new(&wdir),
        kp.public(),
        Access::Writer(kp.clone()),
    )
    .expect("writer");
    let n = cfg.entries;
    let mut i = 0;
    while i < n {
        let end = (i + 1000).min(n);
        let blocks: Vec<Vec<u8>> = (i..end).map(|j| entry(j, cfg.size)).collect();
        let refs: Vec<&[u8]> = blocks.iter().map(Vec::as_slice).collect();
        w.append_batch(&refs).expect("append");
        i = end;
    }
    let r = Log::open(&DiskStorage::new(&rdir), kp.public(), Access::Replica).expect("replica");
    let up = w
        .proof(&ProofRequest {
            upgrade: Some(RequestUpgrade {
                start: 0,
                length: n,
            }),
            ..Default::default()
        })
        .expect("upgrade");
    r.apply_proof(&up).expect("apply upgrade");
    let roots = w.head().roots.clone();
    let started = Instant::now();
    let mut reqs = Vec::with_capacity(n as usize);
    for seq in 0..n {
        let levels = roots
            .iter()
            .find(|x| {
                fritter_common::log::flat::left_span(x.index) <= 2 * seq
                    && 2 * seq <= fritter_common::log::flat::right_span(x.index)
            })
            .map(|x| fritter_common::log::flat::depth(x.index))
            .unwrap_or(0);
        let tz = seq.trailing_zeros();
        let nodes = if seq == 0 || tz >= levels {
            r.missing_nodes(seq).expect("missing")
        } else {
            tz as u64
        };
        reqs.push(ProofRequest {
            block: Some(RequestBlock { index: seq, nodes }),
            ..Default::default()
        });
    }
    // Answered in batches, as the replicator answers what arrived in one round.
    let mut proofs = Vec::with_capacity(n as usize);
    for chunk in reqs.chunks(1024) {
        proofs.extend(w.proofs(chunk).into_iter().map(|p| p.expect("proof")));
    }
    let serve = started.elapsed().as_secs_f64();
    let started = Instant::now();
    for chunk in proofs.chunks(1024) {
        for res in r.apply_proofs(chunk).expect("apply") {
            res.expect("verifies");
        }
    }
    let apply = started.elapsed().as_secs_f64();
    assert_eq!(r.info().contiguous, n);
    rows.push(Row {
        name: "answering block requests (one core)".into(),
        value: format!("{:.0} proofs/s", n as f64 / serve),
        goal: String::new(),
    });
    rows.push(Row {
        name: "storing proofs, batches of 1,024 (one core + fsync)".into(),
        value: format!("{:.0} proofs/s", n as f64 / apply),
        goal: String::new(),
    });
    let _ = std::fs::remove_dir_all(&wdir);
    let _ = std::fs::remove_dir_all(&rdir);
}

/// One Rust-to-Rust round: a writer process with `cfg.entries` entries, a fresh replica here;
/// returns entries/s and, for `live` appends, (append to visible, writer's append) in ms.
fn rust_round(cfg: &Cfg, live: usize) -> (f64, Vec<(f64, f64)>) {
    let wdir = fresh(cfg, "writer");
    let (mut w, port, hash) = rust_writer(cfg, &wdir);
    let rdir = fresh(cfg, "reader");
    let kp = KeyPair::from_seed(&SEED);
    let result = runtime().block_on(async {
        let log = Arc::new(
            Log::open(&DiskStorage::new(&rdir), kp.public(), Access::Replica).expect("replica"),
        );
        let node = Node::start(NodeConfig {
            window: cfg.window,
            ..NodeConfig::default()
        })
        .await
        .expect("node");
        node.add(log.clone());
        let mut status = log.subscribe();
        let start = Instant::now();
        node.connect(format!("127.0.0.1:{port}").parse().expect("addr"))
            .await
            .expect("connect");
        let n = cfg.entries;
        tokio::time::timeout(
            Duration::from_secs(600),
            status.wait_for(|s| s.contiguous >= n),
        )
        .await
        .expect("replication timed out")
        .expect("watch");
        let secs = start.elapsed().as_secs_f64();
        assert_eq!(
            hex::encode(log.info().tree_hash),
            hash,
            "replica matches the writer"
        );
        let mut latencies = Vec::new();
        for k in 0..live {
            writeln!(w.stdin, "append").expect("to writer");
            w.stdin.flush().expect("flush");
            let target = n + k as u64 + 1;
            tokio::time::timeout(
                Duration::from_secs(10),
                status.wait_for(|s| s.contiguous >= target),
            )
            .await
            .expect("live append timed out")
            .expect("watch");
            let visible = now_ns();
            let line = w.line();
            let mut p = line
                .split_whitespace()
                .skip(1)
                .map(|x| x.parse::<u128>().expect("ns"));
            let (t0, t1) = (p.next().expect("t0"), p.next().expect("t1"));
            latencies.push((
                visible.saturating_sub(t0) as f64 / 1e6,
                t1.saturating_sub(t0) as f64 / 1e6,
            ));
        }
        node.shutdown().await;
        (n as f64 / secs, latencies)
    });
    let _ = writeln!(w.stdin, "quit");
    drop(w);
    let _ = std::fs::remove_dir_all(&wdir);
    let _ = std::fs::remove_dir_all(&rdir);
    result
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--serve") {
        return serve(&args[1..]);
    }
    let cfg = parse_cfg(&args);
    let node_ok = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
        && workspace_root()
            .join("tests/js/node_modules/hypercore")
            .exists();
    let js = cfg.js && node_ok;
    if cfg.js && !node_ok {
        eprintln!("note: node or tests/js/node_modules missing; JS figures skipped");
    }
    eprintln!(
        "replication bench: {} entries of {} bytes, {} live appends",
        cfg.entries, cfg.size, cfg.live
    );
    let mut rows: Vec<Row> = Vec::new();
    let size = cfg.size.to_string();
    let entries = cfg.entries.to_string();
    let mut js_rate = None;

    if cfg.runs("parts") {
        parts(&cfg, &mut rows);
    }

    if js && cfg.runs("js") {
        let mut w = spawn(&mut js_peer(&[
            "writer",
            "--seed",
            &hex::encode(SEED),
            "--entries",
            &entries,
            "--size",
            &size,
        ]));
        let ready = js_json(&mut w, "ready");
        let key = ready["key"].as_str().expect("key").to_owned();
        let port = ready["port"].as_u64().expect("port");
        let mut r = spawn(&mut js_peer(&[
            "reader",
            "--key",
            &key,
            "--connect",
            &format!("127.0.0.1:{port}"),
            "--expect",
            &entries,
            "--size",
            &size,
        ]));
        let synced = js_json(&mut r, "synced");
        assert_eq!(synced["bad"], 0);
        let ms = synced["ms"].as_f64().expect("ms");
        let rate = cfg.entries as f64 / (ms / 1000.0);
        js_rate = Some(rate);
        rows.push(Row {
            name: "full replication, JS to JS".into(),
            value: format!("{rate:.0} entries/s ({ms:.0} ms)"),
            goal: "reference".into(),
        });
    }

    if cfg.runs("rust") {
        let mut rates = Vec::new();
        let mut latencies = Vec::new();
        for round in 0..cfg.rounds {
            // Live appends are timed in the last round.
            let live = if round + 1 == cfg.rounds { cfg.live } else { 0 };
            let (rate, lat) = rust_round(&cfg, live);
            eprintln!("round {}: {rate:.0} entries/s", round + 1);
            rates.push(rate);
            latencies = lat;
        }
        rates.sort_by(f64::total_cmp);
        let rate = percentile(&rates, 0.5);
        let goal = match js_rate {
            Some(j) => format!(
                ">= 70,000/s and >= 10x JS ({:.0}): {}",
                10.0 * j,
                if rate >= 70_000.0 && rate >= 10.0 * j {
                    "PASS"
                } else {
                    "MISS"
                }
            ),
            None => format!(
                ">= 70,000/s: {}",
                if rate >= 70_000.0 { "PASS" } else { "MISS" }
            ),
        };
        let spread = if rates.len() > 1 {
            format!(
                ", {} rounds {:.0} to {:.0}",
                rates.len(),
                rates[0],
                rates[rates.len() - 1]
            )
        } else {
            String::new()
        };
        rows.push(Row {
            name: "full replication, Rust to Rust (median)".into(),
            value: format!("{rate:.0} entries/s{spread}"),
            goal,
        });
        if !latencies.is_empty() {
            let mut total: Vec<f64> = latencies.iter().map(|l| l.0).collect();
            let mut append: Vec<f64> = latencies.iter().map(|l| l.1).collect();
            total.sort_by(f64::total_cmp);
            append.sort_by(f64::total_cmp);
            let p99 = percentile(&total, 0.99);
            rows.push(Row {
                name: format!("live append to visible ({} appends)", total.len()),
                value: format!(
                    "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                    percentile(&total, 0.5),
                    p99,
                    total[total.len() - 1]
                ),
                goal: format!("p99 < 20 ms: {}", if p99 < 20.0 { "PASS" } else { "MISS" }),
            });
            rows.push(Row {
                name: "  of which the writer's durable append".into(),
                value: format!(
                    "p50 {:.1} ms, p99 {:.1} ms",
                    percentile(&append, 0.5),
                    percentile(&append, 0.99)
                ),
                goal: String::new(),
            });
        }
    }

    if js && cfg.runs("js-rust") {
        let mut w = spawn(&mut js_peer(&[
            "writer",
            "--seed",
            &hex::encode(SEED),
            "--entries",
            &entries,
            "--size",
            &size,
        ]));
        let ready = js_json(&mut w, "ready");
        let port = ready["port"].as_u64().expect("port");
        let rdir = fresh(&cfg, "js-reader");
        let kp = KeyPair::from_seed(&SEED);
        let (rate, secs) = runtime().block_on(async {
            let log = Arc::new(
                Log::open(&DiskStorage::new(&rdir), kp.public(), Access::Replica).expect("replica"),
            );
            let node = Node::start(NodeConfig::default()).await.expect("node");
            node.add(log.clone());
            let mut status = log.subscribe();
            let start = Instant::now();
            node.connect(format!("127.0.0.1:{port}").parse().expect("addr"))
                .await
                .expect("connect");
            let n = cfg.entries;
            tokio::time::timeout(
                Duration::from_secs(600),
                status.wait_for(|s| s.contiguous >= n),
            )
            .await
            .expect("timed out")
            .expect("watch");
            let secs = start.elapsed().as_secs_f64();
            node.shutdown().await;
            (n as f64 / secs, secs)
        });
        rows.push(Row {
            name: "full replication, JS writer to Rust".into(),
            value: format!("{rate:.0} entries/s ({secs:.2} s)"),
            goal: "(bound by the JS uploader)".into(),
        });
        let _ = std::fs::remove_dir_all(&rdir);
    }

    if js && cfg.runs("rust-js") {
        let wdir = fresh(&cfg, "writer-js");
        let (_w, port, _) = rust_writer(&cfg, &wdir);
        let kp = KeyPair::from_seed(&SEED);
        let mut r = spawn(&mut js_peer(&[
            "reader",
            "--key",
            &kp.public().to_hex(),
            "--connect",
            &format!("127.0.0.1:{port}"),
            "--expect",
            &entries,
            "--size",
            &size,
        ]));
        let synced = js_json(&mut r, "synced");
        assert_eq!(synced["bad"], 0);
        let ms = synced["ms"].as_f64().expect("ms");
        rows.push(Row {
            name: "full replication, Rust writer to JS".into(),
            value: format!(
                "{:.0} entries/s ({ms:.0} ms)",
                cfg.entries as f64 / (ms / 1000.0)
            ),
            goal: "(bound by the JS downloader)".into(),
        });
        let _ = std::fs::remove_dir_all(&wdir);
    }

    println!();
    println!("| figure | value | goal |");
    println!("|---|---|---|");
    for r in rows {
        println!("| {} | {} | {} |", r.name, r.value, r.goal);
    }
}
