//! `fritter-crawler-bench`: generates a corpus of signed archives (profiles, follow lists,
//! statuses with realistic tags, mentions and reply chains), ingests it into a fresh index with
//! the real ingest loop, then measures the API's server-side latency per view through the real
//! router (in process, no network) and the index size.
//!
//! ```sh
//! cargo run --release -p fritter-crawler --bin fritter-crawler-bench -- --archives 1000 --statuses 100000
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::body::Body;
use axum::http::Request;
use clap::Parser;
use fritter_common::crypto::{self, KeyPair};
use fritter_common::log::{Access, DiskStorage, Log};
use fritter_common::model::{
    ArchiveUrl, File, Follows, Mention, Profile, Reply, Status, StatusId, ThreadRef, Timestamp,
};
use fritter_common::store::Store;
use fritter_crawler::api::{router, ApiConfig, AppState};
use fritter_crawler::crawl::Crawler;
use fritter_crawler::index::Index;
use fritter_crawler::ingest::{IngestConfig, Ingester};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use tower::ServiceExt;

#[derive(Parser)]
#[command(about = "Crawler benchmark: corpus generation, ingest rate, API latency, index size")]
struct Args {
    /// Archives in the corpus
    #[arg(long, default_value_t = 1000)]
    archives: usize,
    /// Statuses in the corpus (spread over the archives, some write far more than others)
    #[arg(long, default_value_t = 100_000)]
    statuses: usize,
    /// Working directory (default: a fresh temporary one, removed afterwards)
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
    /// Requests measured per view
    #[arg(long, default_value_t = 500)]
    requests: usize,
}

const WORDS: &[&str] = &[
    "the", "a", "coffee", "morning", "code", "rust", "music", "today", "weather", "train", "book",
    "garden", "cat", "dog", "project", "release", "bug", "fix", "great", "idea", "meeting",
    "lunch", "walk", "photo", "sunset", "city", "river", "bike", "run", "game", "movie", "news",
    "think", "really", "love", "hate", "new", "old", "small", "big", "peer", "network", "hello",
    "world",
];

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let tmp = tempfile::tempdir()?;
    let dir = args.dir.clone().unwrap_or_else(|| tmp.path().to_owned());
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let tags: Vec<String> = (0..500).map(|i| format!("tag{i}")).collect();

    // ---- corpus ----
    let t0 = Instant::now();
    let store = Store::new(&dir);
    let keys: Vec<KeyPair> = (0..args.archives).map(|_| KeyPair::generate()).collect();
    let mut logs = Vec::with_capacity(args.archives);
    let mut recent: Vec<(ThreadRef, ThreadRef)> = Vec::new(); // (status, its root)
    let now = Timestamp::now().unix_millis();
    // Zipf-like sizes: archive i writes in proportion to 1 / (1 + i % 50).
    let weights: Vec<f64> = (0..args.archives)
        .map(|i| 1.0 / (1.0 + (i % 50) as f64))
        .collect();
    let total_w: f64 = weights.iter().sum();
    let mut written = 0usize;
    for (i, kp) in keys.iter().enumerate() {
        let key = kp.public();
        let log = Log::open(
            &DiskStorage::new(store.archive_dir(&key)),
            key,
            Access::Writer(kp.clone()),
        )?;
        let mut blocks: Vec<Vec<u8>> = Vec::new();
        blocks.push(
            File::Profile(Profile {
                name: format!("User {i}"),
                bio: "benchmark".into(),
                avatar: None,
            })
            .to_entry()?
            .encode_checked()?,
        );
        let follows: Vec<ArchiveUrl> = (0..rng.gen_range(5..40))
            .map(|_| keys[rng.gen_range(0..keys.len())].public())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .map(|k| ArchiveUrl::root(k.into()))
            .collect();
        blocks.push(
            File::Follows(Follows { urls: follows })
                .to_entry()?
                .encode_checked()?,
        );
        let n = if i + 1 == args.archives {
            args.statuses - written
        } else {
            ((args.statuses as f64) * weights[i] / total_w) as usize
        }
        .min(args.statuses - written);
        let base_seq = blocks.len() as u64;
        let mut mine = Vec::new();
        for j in 0..n {
            let mut text: Vec<String> = (0..rng.gen_range(5..25))
                .map(|_| WORDS[rng.gen_range(0..WORDS.len())].to_owned())
                .collect();
            let mut status_tags = Vec::new();
            for _ in 0..rng.gen_range(0..3) {
                // Skewed: low-numbered tags are much more popular.
                let t = &tags[(rng.gen::<f64>().powi(3) * tags.len() as f64) as usize];
                if !status_tags.contains(t) {
                    status_tags.push(t.clone());
                    text.push(format!("#{t}"));
                }
            }
            let mut mentions = Vec::new();
            if rng.gen_bool(0.2) {
                let m = keys[rng.gen_range(0..keys.len())].public();
                if m != key {
                    text.push("@friend".into());
                    mentions.push(Mention {
                        url: ArchiveUrl::root(m.into()),
                        name: "friend".into(),
                    });
                }
            }
            let created = now - rng.gen_range(0..7 * 86_400_000);
            let mut status = Status::new(text.join(" "), Timestamp::from_unix_millis(created)?);
            status.tags = status_tags;
            status.mentions = mentions;
            if !recent.is_empty() && rng.gen_bool(0.3) {
                let (parent, root) = recent[rng.gen_range(0..recent.len())].clone();
                status.reply = Some(Reply { root, parent });
            }
            let id = StatusId::from_parts(
                (created as u64) * 1000 + (j as u64 % 1000),
                (i % 1024) as u16,
            )?;
            let bytes = File::Status {
                id,
                status: status.clone(),
            }
            .to_entry()?
            .encode_checked()?;
            let me = ThreadRef {
                url: ArchiveUrl::status(key.into(), id),
                seq: base_seq + j as u64,
                hash: crypto::leaf_hash(&bytes),
            };
            let root = status.reply.map_or(me.clone(), |r| r.root);
            mine.push((me, root));
            blocks.push(bytes);
        }
        written += n;
        for chunk in blocks.chunks(1000) {
            let refs: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
            log.append_batch(&refs)?;
        }
        for m in mine {
            if recent.len() < 20_000 {
                recent.push(m);
            } else {
                let k = rng.gen_range(0..recent.len());
                recent[k] = m;
            }
        }
        logs.push(Arc::new(log));
    }
    let gen = t0.elapsed();
    println!(
        "corpus: {} archives, {written} statuses generated in {:.1} s",
        args.archives,
        gen.as_secs_f64()
    );

    // ---- ingest ----
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let _guard = rt.enter();
    let (index, payload) = Index::open(&dir.join("index"))?;
    let ingest = Ingester::start(
        Arc::new(index),
        payload,
        IngestConfig {
            batch_entries: 5000,
            turn_time_ms: 200,
            commit_interval_ms: 2000,
            writer_threads: 2,
            writer_memory: 256 * 1024 * 1024,
            ..IngestConfig::default()
        },
        None,
    )?;
    let t1 = Instant::now();
    for log in &logs {
        ingest.add_source(log.clone());
    }
    anyhow::ensure!(
        ingest.wait_idle(Duration::from_secs(3600)),
        "ingest did not finish"
    );
    let took = t1.elapsed();
    let statuses = ingest.statuses_indexed();
    println!(
        "ingest: {statuses} statuses (+{} profiles and follow lists) in {:.2} s = {:.0} statuses/s",
        2 * args.archives,
        took.as_secs_f64(),
        statuses as f64 / took.as_secs_f64()
    );
    let bytes = ingest.index().disk_bytes();
    println!(
        "index: {bytes} bytes on disk = {:.0} bytes/status (before merges settle)",
        bytes as f64 / statuses.max(1) as f64
    );

    // ---- queries ----
    let crawler = Crawler::new(store, ingest.clone(), None, usize::MAX);
    let state = AppState::new(
        crawler,
        ApiConfig {
            rate_per_sec: 1e9,
            burst: 1e9,
            ..ApiConfig::default()
        },
    );
    let app = router(state);
    let replies: Vec<String> = recent.iter().map(|(s, _)| s.url.to_string()).collect();
    type MakeUri<'a> = Box<dyn Fn(&mut rand::rngs::StdRng) -> String + 'a>;
    let views: Vec<(&str, MakeUri)> = vec![
        (
            "mentions",
            Box::new(|r: &mut rand::rngs::StdRng| {
                format!("/v1/mentions/{}", keys[r.gen_range(0..keys.len())].public())
            }),
        ),
        (
            "thread",
            Box::new(|r: &mut rand::rngs::StdRng| {
                format!(
                    "/v1/thread?uri={}",
                    replies.choose(r).map_or("", String::as_str)
                )
            }),
        ),
        (
            "search",
            Box::new(|r: &mut rand::rngs::StdRng| {
                let w1 = WORDS[r.gen_range(0..WORDS.len())];
                let w2 = WORDS[r.gen_range(0..WORDS.len())];
                match r.gen_range(0..4) {
                    0 => format!("/v1/search?q={w1}%20{w2}"),
                    1 => format!("/v1/search?q={w1}&sort=top"),
                    2 => format!("/v1/search?q=%23tag{}", r.gen_range(0..50)),
                    _ => format!("/v1/search?q=%22{w1}%20{w2}%22%20OR%20{w1}"),
                }
            }),
        ),
        (
            "trending",
            Box::new(|r: &mut rand::rngs::StdRng| {
                format!(
                    "/v1/trending?window={}",
                    ["1h", "24h", "7d"][r.gen_range(0..3)]
                )
            }),
        ),
    ];
    for (name, make) in &views {
        let n = if *name == "trending" {
            args.requests / 5
        } else {
            args.requests
        }
        .max(10);
        let mut times = Vec::with_capacity(n);
        for _ in 0..n {
            let uri = make(&mut rng);
            let req = Request::get(&uri).body(Body::empty())?;
            let t = Instant::now();
            let resp = rt.block_on(app.clone().oneshot(req))?;
            let status = resp.status();
            rt.block_on(axum::body::to_bytes(resp.into_body(), usize::MAX))?;
            times.push(t.elapsed());
            anyhow::ensure!(status.is_success(), "{uri}: {status}");
        }
        times.sort();
        let pct = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
        println!(
            "{name}: {n} requests, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            pct(0.5).as_secs_f64() * 1e3,
            pct(0.99).as_secs_f64() * 1e3,
            times[times.len() - 1].as_secs_f64() * 1e3
        );
    }
    ingest.shutdown();
    let bytes = std::fs::read_dir(dir.join("index"))
        .context("index dir")?
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum::<u64>();
    println!(
        "index after shutdown: {bytes} bytes = {:.0} bytes/status",
        bytes as f64 / statuses.max(1) as f64
    );
    Ok(())
}
