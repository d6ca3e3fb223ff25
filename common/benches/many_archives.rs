//! Many small archives from one peer over one connection: the crawler's and the app's common
//! case (1,000 follows). A writer process holds `--archives` logs of `--entries` entries each;
//! this process holds empty replicas of all of them, dials the writer once, and times until
//! every replica holds every entry, verified.
//!
//!     cargo bench -p fritter-common --bench many_archives
//!     cargo bench -p fritter-common --bench many_archives -- --archives 200 --entries 50
//!
//! Options: `--archives N` (default 1,000), `--entries M` (default 100), `--size B` (bytes per
//! entry, default 300), `--rounds R` (default 3; the median is shown). Temp dirs go under
//! `<target>/bench-tmp`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fritter_common::crypto::KeyPair;
use fritter_common::log::{Access, DiskStorage, Log};
use fritter_common::replicate::{Node, NodeConfig};

fn seed(i: usize) -> [u8; 32] {
    let mut s = [0u8; 32];
    s[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
    s[8] = 0xa5;
    s
}

fn entry(i: u64, size: usize) -> Vec<u8> {
    let mut v = format!("{{\"i\":{i}}}").into_bytes();
    v.resize(size, b' ');
    v
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The writer process: builds the archives (once per dir), serves them, prints the port.
fn serve(dir: &Path, archives: usize, entries: u64, size: usize) {
    let logs: Vec<Arc<Log>> = (0..archives)
        .map(|i| {
            let kp = KeyPair::from_seed(&seed(i));
            let log = Log::open(
                &DiskStorage::new(dir.join(i.to_string())),
                kp.public(),
                Access::Writer(kp),
            )
            .expect("open writer");
            if log.len() < entries {
                let blocks: Vec<Vec<u8>> = (log.len()..entries).map(|j| entry(j, size)).collect();
                let refs: Vec<&[u8]> = blocks.iter().map(Vec::as_slice).collect();
                log.append_batch(&refs).expect("append");
            }
            Arc::new(log)
        })
        .collect();
    runtime().block_on(async {
        let node = Node::start(NodeConfig {
            listen: Some("127.0.0.1:0".parse().expect("addr")),
            ..NodeConfig::default()
        })
        .await
        .expect("node");
        for log in &logs {
            node.add(log.clone());
        }
        println!("READY {}", node.local_addr().expect("addr").port());
        // Until the parent closes our stdin.
        let _ = tokio::task::spawn_blocking(|| {
            let mut s = String::new();
            let _ = std::io::stdin().read_line(&mut s);
        })
        .await;
        node.shutdown().await;
    });
}

fn round(tmp: &Path, port: u16, archives: usize, entries: u64) -> Duration {
    let dir = tmp.join("replicas");
    let _ = std::fs::remove_dir_all(&dir);
    let replicas: Vec<Arc<Log>> = (0..archives)
        .map(|i| {
            let kp = KeyPair::from_seed(&seed(i));
            Arc::new(
                Log::open(
                    &DiskStorage::new(dir.join(i.to_string())),
                    kp.public(),
                    Access::Replica,
                )
                .expect("open replica"),
            )
        })
        .collect();
    runtime().block_on(async {
        let node = Node::start(NodeConfig::default()).await.expect("node");
        for r in &replicas {
            node.add(r.clone());
        }
        let start = Instant::now();
        node.connect(([127, 0, 0, 1], port).into())
            .await
            .expect("connect");
        for (i, r) in replicas.iter().enumerate() {
            let mut rx = r.subscribe();
            let done =
                tokio::time::timeout(Duration::from_secs(60), rx.wait_for(|s| s.contiguous >= entries))
                    .await;
            if done.is_err() {
                let complete = replicas.iter().filter(|r| r.info().contiguous >= entries).count();
                let progress = node.progress();
                let with_peer = progress.iter().filter(|p| p.peers > 0).count();
                panic!(
                    "replica {i} stalled at {:?}: {complete}/{archives} complete, {with_peer} with a peer, peers {:?}, ended {:?}",
                    r.info().contiguous,
                    node.peers(),
                    node.disconnects()
                );
            }
        }
        let took = start.elapsed();
        assert_eq!(node.peers().len(), 1, "one connection");
        // No block travels twice (the first block of an archive may come with its upgrade
        // proof, which is not counted as a block request).
        assert!(node.stats().blocks_downloaded <= archives as u64 * entries);
        node.shutdown().await;
        took
    })
}

fn main() {
    raise_fd_limit();
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--serve") {
        let dir = PathBuf::from(&args[i + 1]);
        serve(
            &dir,
            args[i + 2].parse().expect("archives"),
            args[i + 3].parse().expect("entries"),
            args[i + 4].parse().expect("size"),
        );
        return;
    }
    let archives: usize = arg(&args, "--archives", 1000);
    let entries: u64 = arg(&args, "--entries", 100);
    let size: usize = arg(&args, "--size", 300);
    let rounds: usize = arg(&args, "--rounds", 3);
    let tmp = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .join("target")
        .join("bench-tmp")
        .join(format!("many-{archives}-{entries}-{size}"));
    std::fs::create_dir_all(&tmp).expect("tmp");

    let built = Instant::now();
    let mut writer = Command::new(std::env::current_exe().expect("exe"))
        .arg("--serve")
        .arg(tmp.join("writers"))
        .arg(archives.to_string())
        .arg(entries.to_string())
        .arg(size.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn writer");
    let mut line = String::new();
    BufReader::new(writer.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read");
    let port: u16 = line
        .strip_prefix("READY ")
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("writer said {line:?}"));
    eprintln!(
        "writer ready with {archives} archives of {entries} entries in {:.1} s",
        built.elapsed().as_secs_f64()
    );

    let mut times: Vec<f64> = (0..rounds)
        .map(|r| {
            let t = round(&tmp, port, archives, entries).as_secs_f64();
            eprintln!("round {}: {t:.2} s", r + 1);
            t
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let total = archives as f64 * entries as f64;
    println!(
        "{archives} archives x {entries} entries x {size} B over one connection: median {median:.2} s \
         ({:.0} entries/s; rounds {:?} s); goal < 10 s: {}",
        total / median,
        times.iter().map(|t| format!("{t:.2}")).collect::<Vec<_>>(),
        if median < 10.0 { "PASS" } else { "MISS" }
    );
    drop(writer.stdin.take());
    let _ = writer.wait();
}
