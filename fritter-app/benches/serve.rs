//! The figures of `fritter serve` (issue 4), measured on the real binary over HTTP:
//!
//!     cargo bench -p fritter-app --bench serve
//!     FRITTER_BENCH_ARCHIVES=100 cargo bench -p fritter-app --bench serve     # smaller smoke run
//!
//! Builds (once, cached under `<target>/bench-data/serve-<archives>x<statuses>`) a data directory
//! whose owner follows `FRITTER_BENCH_ARCHIVES` archives (default 1,000) of
//! `FRITTER_BENCH_STATUSES` statuses each (default 1,000), all held on disk, then:
//! - starts `fritter serve` on it and times start → first HTTP answer, and → index built;
//! - reads its RSS once the index is built (`VmRSS`);
//! - times `GET /api/feed?limit=20` (the first feed page, statuses read back and verified) 1,000
//!   times: p50 / p99;
//! - starts a second `fritter serve` (a writer the owner also follows, replicating over
//!   127.0.0.1) and times 100 times `POST /api/post` on the writer → the status first in the
//!   owner's `GET /api/feed?limit=1`: p50 / p99.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fritter_common::crypto::KeyPair;
use fritter_common::log::{Access, DiskStorage, Log};
use fritter_common::model::{ArchiveUrl, File, Follows, Profile, Status, StatusId, Timestamp};
use fritter_common::store::Store;
use serde_json::{json, Value};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("bench path");
    exe.ancestors()
        .find(|p| p.file_name().is_some_and(|n| n == "target"))
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("target"))
}

/// The owner's data directory with `archives` followed archives of `statuses` statuses each.
fn dataset(archives: usize, statuses: usize, writer: &KeyPair) -> PathBuf {
    let dir = target_dir()
        .join("bench-data")
        .join(format!("serve-{archives}x{statuses}"));
    let done = dir.join("READY");
    if done.exists() {
        // The writer of the live figure changes each run: rewrite the follows with it.
        set_follows(&dir, writer);
        return dir;
    }
    let _ = std::fs::remove_dir_all(&dir);
    let started = Instant::now();
    let store = Store::new(&dir);
    store.save_identity(&KeyPair::generate()).expect("identity");
    let keys: Vec<KeyPair> = (0..archives).map(|_| KeyPair::generate()).collect();
    let next = AtomicUsize::new(0);
    let base_micros = 1_700_000_000_000_000u64;
    std::thread::scope(|s| {
        for _ in 0..std::thread::available_parallelism().map_or(2, |n| n.get()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(kp) = keys.get(i) else { break };
                let log = Log::open(
                    &DiskStorage::new(store.archive_dir(&kp.public())),
                    kp.public(),
                    Access::Writer(kp.clone()),
                )
                .expect("open");
                let mut blocks: Vec<Vec<u8>> = Vec::with_capacity(statuses + 1);
                let profile = File::Profile(Profile {
                    name: format!("Archive {i}"),
                    bio: String::new(),
                    avatar: None,
                });
                blocks.push(profile.to_entry().expect("entry").encode_checked().expect("encode"));
                for n in 0..statuses {
                    // Interleaved times across archives, as real feeds are.
                    let micros = base_micros + ((n * archives + i) as u64) * 1_000_000;
                    let id = StatusId::from_parts(micros, (i % 1024) as u16).expect("id");
                    let created = Timestamp::from_unix_millis((micros / 1000) as i64).expect("time");
                    let text = format!("Status {n} of archive {i}: a typical line of text about #fritter and the day it is, long enough to be realistic.");
                    let file = File::Status {
                        id,
                        status: Status {
                            tags: vec!["fritter".into()],
                            ..Status::new(text, created)
                        },
                    };
                    blocks.push(file.to_entry().expect("entry").encode_checked().expect("encode"));
                }
                for chunk in blocks.chunks(1000) {
                    let refs: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
                    log.append_batch(&refs).expect("append");
                }
            });
        }
    });
    let own = store.open_own().expect("own");
    own.put_file(&File::Profile(Profile {
        name: "Owner".into(),
        bio: String::new(),
        avatar: None,
    }))
    .expect("profile");
    drop(own);
    let list: Vec<String> = keys.iter().map(|k| k.public().to_hex()).collect();
    std::fs::write(dir.join("FOLLOWED"), list.join("\n")).expect("list");
    set_follows(&dir, writer);
    std::fs::write(&done, "").expect("ready");
    eprintln!(
        "built the data set: {archives} archives x {statuses} statuses in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    dir
}

fn set_follows(dir: &Path, writer: &KeyPair) {
    let store = Store::new(dir);
    let list = std::fs::read_to_string(dir.join("FOLLOWED")).unwrap_or_default();
    let mut urls: Vec<ArchiveUrl> = list
        .lines()
        .filter(|l| !l.is_empty())
        .map(|k| ArchiveUrl::parse_lenient(k).expect("key"))
        .collect();
    urls.push(ArchiveUrl::root(writer.public().into()));
    let own = store.open_own().expect("own");
    own.put_file(&File::Follows(Follows { urls }))
        .expect("follows");
}

struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// Starts `fritter serve`; returns it, the time to its first HTTP answer and the time until it
/// has opened every archive (its API answers 503 "starting" until then).
fn serve(dir: &Path, extra: &[&str]) -> (Server, Duration, Duration) {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_fritter"))
        .arg("--data-dir")
        .arg(dir)
        .args([
            "--json",
            "serve",
            "--http",
            "127.0.0.1:0",
            "--no-dht",
            "--no-mdns",
        ])
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start fritter serve");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().expect("stdout")),
        &mut line,
    )
    .expect("first line");
    let url = serde_json::from_str::<Value>(&line).expect("json")["url"]
        .as_str()
        .expect("url")
        .to_owned();
    let server = Server { child, url };
    let agent = agent();
    while agent.get(format!("{}api/me", server.url)).call().is_err() {
        std::thread::sleep(Duration::from_millis(1));
    }
    let serving = started.elapsed();
    // Then wait until it has opened the archives (the API answers 503 until then).
    while get(&agent, &format!("{}api/me", server.url))["starting"] == true {
        std::thread::sleep(Duration::from_millis(2));
    }
    (server, serving, started.elapsed())
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

fn get(agent: &ureq::Agent, url: &str) -> Value {
    let text = agent
        .get(url)
        .call()
        .expect("get")
        .body_mut()
        .read_to_string()
        .expect("body");
    serde_json::from_str(&text).expect("json")
}

fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let archives = env_usize("FRITTER_BENCH_ARCHIVES", 1000);
    let statuses = env_usize("FRITTER_BENCH_STATUSES", 1000);
    let writer_dir = tempfile::tempdir().expect("temp dir");
    let writer_store = Store::new(writer_dir.path());
    let writer_key = KeyPair::generate();
    writer_store
        .save_identity(&writer_key)
        .expect("writer identity");
    let dir = dataset(archives, statuses, &writer_key);
    let _ = std::fs::remove_file(dir.join("serve.json"));

    let (node, to_serving, to_feed) = serve(&dir, &["--listen", "127.0.0.1:0"]);
    let agent = agent();
    let started = Instant::now();
    let me = loop {
        let me = get(&agent, &format!("{}api/me", node.url));
        if me["indexing"] == false {
            break me;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let indexed = started.elapsed() + to_feed;
    std::thread::sleep(Duration::from_millis(500));
    let rss = rss_mb(node.child.id());

    let mut times = Vec::new();
    let feed_url = format!("{}api/feed?limit=20", node.url);
    for _ in 0..50 {
        get(&agent, &feed_url);
    }
    for _ in 0..1000 {
        let t = Instant::now();
        let page = get(&agent, &feed_url);
        times.push(t.elapsed());
        assert_eq!(
            page["items"].as_array().map(Vec::len),
            Some(20.min(archives * statuses))
        );
    }
    times.sort();

    // The live figure: a writer replicating with the node.
    let sync_json: Value = loop {
        if let Ok(text) = std::fs::read_to_string(dir.join("sync.json")) {
            if let Ok(v) = serde_json::from_str::<Value>(&text) {
                break v;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let node_port = sync_json
        .pointer("/status/listen")
        .and_then(Value::as_str)
        .and_then(|s| s.rsplit(':').next())
        .and_then(|p| p.parse::<u16>().ok());
    let mut live = Vec::new();
    if let Some(port) = node_port {
        let peer = format!("127.0.0.1:{port}");
        {
            let own = writer_store.open_own().expect("writer");
            own.put_file(&File::Profile(Profile {
                name: "Writer".into(),
                bio: String::new(),
                avatar: None,
            }))
            .expect("profile");
        }
        let (writer, _, _) = serve(writer_dir.path(), &["--peer", &peer]);
        let token = get(&agent, &format!("{}api/me", writer.url));
        let _ = token;
        let info: Value = serde_json::from_str(
            &std::fs::read_to_string(writer_dir.path().join("serve.json")).expect("serve.json"),
        )
        .expect("json");
        let token = info["token"].as_str().expect("token").to_owned();
        let first = format!("{}api/feed?limit=1", node.url);
        for n in 0..101 {
            let t = Instant::now();
            let text = agent
                .post(format!("{}api/post", writer.url))
                .header("x-fritter-token", &token)
                .send_json(json!({ "text": format!("live {n}") }))
                .expect("post")
                .body_mut()
                .read_to_string()
                .expect("body");
            let posted: Value = serde_json::from_str(&text).expect("json");
            let url = posted["result"]["url"].as_str().expect("url").to_owned();
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let page = get(&agent, &first);
                if page["items"][0]["url"] == url.as_str() {
                    break;
                }
                assert!(Instant::now() < deadline, "status {n} never arrived");
                std::thread::sleep(Duration::from_millis(2));
            }
            if n > 0 {
                // The first one also waits for the connection to open.
                live.push(t.elapsed());
            }
        }
        live.sort();
    } else {
        eprintln!("sync.json has no listen address; skipping the live figure: {sync_json}");
    }

    println!();
    println!(
        "fritter serve, {archives} followed archives x {statuses} statuses ({} statuses on disk)",
        archives * statuses
    );
    println!("index: {}", me["index"]);
    println!("| figure | value | goal | |");
    println!("|---|---|---|---|");
    let row = |name: &str, value: String, goal: &str, ok: bool| {
        println!(
            "| {name} | {value} | {goal} | {} |",
            if ok { "PASS" } else { "MISS" }
        );
    };
    let p99 = pct(&times, 0.99);
    row(
        "first feed page (`GET /api/feed?limit=20`), p50 / p99",
        format!("{:.2} ms / {:.2} ms", pct(&times, 0.5), p99),
        "p99 < 50 ms",
        p99 < 50.0,
    );
    if !live.is_empty() {
        let p99 = pct(&live, 0.99);
        row(
            "post on a followed node → first in the feed API, p50 / p99",
            format!("{:.1} ms / {:.1} ms", pct(&live, 0.5), p99),
            "p99 < 1 s",
            p99 < 1000.0,
        );
    }
    row(
        "RSS after indexing",
        format!("{rss:.0} MB"),
        "< 200 MB",
        rss < 200.0,
    );
    row(
        "start → serving HTTP",
        format!("{:.0} ms", to_serving.as_secs_f64() * 1000.0),
        "< 1 s",
        to_serving < Duration::from_secs(1),
    );
    row(
        "start → first feed page answered (own archive open, replication started)",
        format!("{:.0} ms", to_feed.as_secs_f64() * 1000.0),
        "–",
        true,
    );
    row(
        "start → index of every archive built",
        format!("{:.2} s", indexed.as_secs_f64()),
        "–",
        true,
    );
}
