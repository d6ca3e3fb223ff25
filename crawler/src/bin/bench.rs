//! `fritter-crawler-bench`: generates a corpus of signed archives (profiles, follow lists,
//! statuses with realistic tags, mentions and reply chains), ingests it into a fresh index with
//! the real ingest loop, then measures the API's server-side latency per view through the real
//! router (in process, no network) and the index size.
//!
//! ```sh
//! cargo run --release -p fritter-crawler --bin fritter-crawler-bench -- --archives 1000 --statuses 100000
//! ```
//!
//! With `--dir D` the corpus is kept, and a later run on the same `D` skips generation and
//! ingest. With `--serve HOST:PORT` it then serves the API over HTTP for load tools (see
//! `bench/serve.rs`).

#[path = "bench/serve.rs"]
mod serve;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::body::Body;
use axum::http::Request;
use clap::Parser;
use fritter_common::crypto::{self, KeyPair};
use fritter_common::log::{Access, DiskStorage, FileCache, Log};
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
    /// Corpus directory, kept afterwards (default: a fresh temporary one, removed afterwards).
    /// If it holds a finished corpus (bench-corpus.json), generation and ingest are skipped
    /// and its index is opened; --archives and --statuses are then ignored
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
    /// Requests measured per view (0: skip the in-process measurements)
    #[arg(long, default_value_t = 500)]
    requests: usize,
    /// Then serve the API over HTTP on this address until ctrl-c (the crawler's own router and
    /// server loop), for wrk and fritter-crawler-load; their URL lists are in DIR/urls/
    #[arg(long, value_name = "HOST:PORT")]
    serve: Option<SocketAddr>,
    /// The API's rate limit per client address while measuring and serving, requests/s (also
    /// the burst). The crawler's default (50/s) would refuse a load test from one machine
    #[arg(long, default_value_t = 1e9, value_name = "PER_SEC")]
    rate_limit: f64,
    /// With a finished corpus in --dir: delete its index and ingest every archive again from
    /// the logs on disk, as the crawler does when it starts on a data directory
    #[arg(long, requires = "dir")]
    reingest: bool,
}

const WORDS: &[&str] = &[
    "the", "a", "coffee", "morning", "code", "rust", "music", "today", "weather", "train", "book",
    "garden", "cat", "dog", "project", "release", "bug", "fix", "great", "idea", "meeting",
    "lunch", "walk", "photo", "sunset", "city", "river", "bike", "run", "game", "movie", "news",
    "think", "really", "love", "hate", "new", "old", "small", "big", "peer", "network", "hello",
    "world",
];

/// The words of the corpus text and how often each is used: Zipf's law (the r-th most common
/// word is used in proportion to 1/r), the common words of `WORDS` first, then synthetic content
/// words. With 20,000 content words the most common word is in about 8 of 10 statuses and the
/// 1,000th in about 1 in 700, as in real text; a vocabulary of 44 equally common words (this
/// benchmark's first) put every word in a third of all statuses.
struct Vocabulary {
    words: Vec<String>,
    /// Cumulative weights, for sampling by binary search.
    cumulative: Vec<f64>,
}

impl Vocabulary {
    fn new(content_words: usize) -> Vocabulary {
        const ONSETS: &[&str] = &[
            "b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z",
        ];
        const VOWELS: &[&str] = &["a", "e", "i", "o", "u"];
        let syllables = ONSETS.len() * VOWELS.len();
        let synthetic = (0..content_words).map(|mut i| {
            // Three or four syllables: distinct words that look like words.
            let mut w = String::new();
            for _ in 0..3 {
                w.push_str(ONSETS[(i % syllables) / VOWELS.len()]);
                w.push_str(VOWELS[i % VOWELS.len()]);
                i /= syllables;
            }
            if i > 0 {
                w.push_str(ONSETS[i % ONSETS.len()]);
                w.push('a');
            }
            w
        });
        let words: Vec<String> = WORDS
            .iter()
            .map(|w| (*w).to_owned())
            .chain(synthetic)
            .collect();
        let mut total = 0.0;
        let cumulative = (0..words.len())
            .map(|r| {
                total += 1.0 / (r as f64 + 1.0);
                total
            })
            .collect();
        Vocabulary { words, cumulative }
    }

    fn sample_rank(&self, rng: &mut impl Rng) -> usize {
        let x = rng.gen::<f64>() * self.cumulative.last().copied().unwrap_or(0.0);
        self.cumulative
            .partition_point(|c| *c < x)
            .min(self.words.len() - 1)
    }

    fn sample(&self, rng: &mut impl Rng) -> &str {
        &self.words[self.sample_rank(rng)]
    }

    /// Words people search for: content words, drawn by how often they are used (the common
    /// words of `WORDS`, like "the", are what search boxes drop). Repeats stand for frequency.
    fn query_words(&self, n: usize, rng: &mut impl Rng) -> Vec<&str> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let r = self.sample_rank(rng);
            if r >= WORDS.len() {
                out.push(self.words[r].as_str());
            }
        }
        out
    }
}

fn main() -> anyhow::Result<()> {
    fritter_crawler::tune_allocator();
    let args = Args::parse();
    let tmp = tempfile::tempdir()?;
    let dir = args.dir.clone().unwrap_or_else(|| tmp.path().to_owned());
    if let serve::DirState::Corpus(info) = serve::dir_state(&dir)? {
        return reuse(&args, &dir, info);
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let tags: Vec<String> = (0..500).map(|i| format!("tag{i}")).collect();
    let vocabulary = Vocabulary::new(20_000);

    // ---- corpus ----
    let t0 = Instant::now();
    // Ten thousand archives hold more files than a process may keep open: the logs open them
    // through a cache, as the crawler does (`Store::exclusive`).
    let fds = fritter_common::store::raise_fd_limit().unwrap_or(1024);
    let files = FileCache::new((fds / 2) as usize);
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
            &DiskStorage::with_file_cache(store.archive_dir(&key), files.clone()),
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
                .map(|_| vocabulary.sample(&mut rng).to_owned())
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
    let ingest = start_ingest(&dir)?;
    let statuses = ingest_measured(&ingest, 2 * args.archives, || {
        for log in &logs {
            ingest.add_source(log.clone());
        }
        Ok(())
    })?;
    let bytes = ingest.index().disk_bytes();
    println!(
        "index: {bytes} bytes on disk = {:.0} bytes/status (before merges settle)",
        bytes as f64 / statuses.max(1) as f64
    );

    // ---- queries ----
    serve::write_marker(&dir, args.archives, statuses)?;
    let threads: Vec<String> = recent.iter().map(|(s, _)| s.url.to_string()).collect();
    let query_words = vocabulary.query_words(4000, &mut rng);
    let lists = serve::UrlLists::generate(
        keys.iter().map(|k| k.public().to_string()),
        &threads,
        &query_words,
        &mut rng,
    );
    let urls = lists.write(&dir)?;
    let crawler = Crawler::new(store, ingest.clone(), None, usize::MAX);
    let state = AppState::new(crawler, api_config(&args));
    measure(&rt, &state, &lists, args.requests, &mut rng)?;
    if let Some(addr) = args.serve {
        serve::serve(&rt, state, addr, &urls)?;
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

/// The API's limits for the bench: the crawler's defaults but for the rate limit and the
/// connections per client (the load tools run from one address).
fn api_config(args: &Args) -> ApiConfig {
    let defaults = ApiConfig::default();
    ApiConfig {
        rate_per_sec: args.rate_limit,
        burst: args.rate_limit,
        max_connections_per_client: defaults.max_connections,
        ..defaults
    }
}

/// Times `requests` requests per view (a fifth of them for trending) drawn from `lists`
/// through the real router in process, and prints p50/p99/max per view.
fn measure(
    rt: &tokio::runtime::Runtime,
    state: &AppState,
    lists: &serve::UrlLists,
    requests: usize,
    rng: &mut impl Rng,
) -> anyhow::Result<()> {
    if requests == 0 {
        return Ok(());
    }
    let app = router(state.clone());
    for (name, list) in lists.views() {
        let n = if name == "trending" {
            requests / 5
        } else {
            requests
        }
        .max(10);
        let mut times = Vec::with_capacity(n);
        for _ in 0..n {
            let uri = list.choose(rng).context("empty URL list")?;
            let req = Request::get(uri).body(Body::empty())?;
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
    Ok(())
}

/// `--dir` on a finished corpus: opens its archives and index (finishing any ingest left
/// over), measures and serves like a fresh run.
fn reuse(args: &Args, dir: &std::path::Path, info: serve::CorpusInfo) -> anyhow::Result<()> {
    println!(
        "corpus: reusing {} ({} archives, {} statuses, ingested {}); --archives and --statuses ignored",
        dir.display(),
        info.archives,
        info.statuses,
        info.created
    );
    let lists = serve::UrlLists::read(dir)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let _guard = rt.enter();
    let t0 = Instant::now();
    let fds = fritter_common::store::raise_fd_limit().unwrap_or(1024);
    let crawler = if args.reingest {
        let index = dir.join("index");
        if index.exists() {
            std::fs::remove_dir_all(&index).context("removing the old index")?;
        }
        let ingest = start_ingest(dir)?;
        let store = Store::exclusive(dir, (fds / 2) as usize)?;
        let crawler = Crawler::new(store, ingest.clone(), None, usize::MAX);
        ingest_measured(&ingest, 2 * info.archives, || {
            crawler.learn_stored().map(|_| ())
        })?;
        println!(
            "index: {} bytes on disk = {:.0} bytes/status (before merges settle)",
            ingest.index().disk_bytes(),
            ingest.index().disk_bytes() as f64 / ingest.statuses_indexed().max(1) as f64
        );
        crawler
    } else {
        let ingest = start_ingest(dir)?;
        let store = Store::exclusive(dir, (fds / 2) as usize)?;
        let crawler = Crawler::new(store, ingest.clone(), None, usize::MAX);
        let archives = crawler.learn_stored()?;
        anyhow::ensure!(
            ingest.wait_idle(Duration::from_secs(3600)),
            "ingest of what the index lacked did not finish"
        );
        println!(
            "opened {archives} archives and the index in {:.2} s ({} statuses the index lacked ingested, {} index bytes on disk)",
            t0.elapsed().as_secs_f64(),
            ingest.statuses_indexed(),
            ingest.index().disk_bytes()
        );
        crawler
    };
    let ingest = crawler.ingest().clone();
    let state = AppState::new(crawler.clone(), api_config(args));
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    measure(&rt, &state, &lists, args.requests, &mut rng)?;
    if let Some(addr) = args.serve {
        serve::serve(&rt, state, addr, &dir.join("urls"))?;
    }
    rt.block_on(crawler.shutdown());
    ingest.shutdown();
    let bytes = ingest.index().disk_bytes();
    println!(
        "index after shutdown (merges finished): {bytes} bytes = {:.0} bytes/status",
        bytes as f64 / info.statuses.max(1) as f64
    );
    Ok(())
}

/// The ingester with the crawler's own settings.
fn start_ingest(dir: &std::path::Path) -> anyhow::Result<Arc<Ingester>> {
    let (index, payload) = Index::open(&dir.join("index"))?;
    Ok(Ingester::start(
        Arc::new(index),
        payload,
        IngestConfig::default(),
        None,
    )?)
}

/// Runs `add` (which hands the ingester its archives), waits until everything is indexed and
/// committed, and prints the rate and the CPU spent per status, by thread. `others` is the
/// number of documents that are not statuses (profiles, follow lists). Returns the statuses
/// indexed.
fn ingest_measured(
    ingest: &Ingester,
    others: usize,
    add: impl FnOnce() -> anyhow::Result<()>,
) -> anyhow::Result<u64> {
    let t1 = Instant::now();
    let cpu1 = cpu_seconds();
    let threads1 = thread_cpu();
    add()?;
    anyhow::ensure!(
        ingest.wait_idle(Duration::from_secs(3600)),
        "ingest did not finish"
    );
    let took = t1.elapsed();
    let cpu = cpu_seconds() - cpu1;
    let statuses = ingest.statuses_indexed();
    println!(
        "ingest CPU: {cpu:.2} s over all threads = {:.1} µs per status (the rate a machine can \
         reach is its cores / this, when ingest has them to itself)",
        cpu * 1e6 / statuses.max(1) as f64
    );
    let mut by_thread: std::collections::BTreeMap<String, f64> = Default::default();
    for (name, t) in thread_cpu() {
        *by_thread.entry(name).or_default() += t;
    }
    for (name, t) in threads1 {
        *by_thread.entry(name).or_default() -= t;
    }
    let by_thread: Vec<String> = by_thread
        .iter()
        .filter(|(_, t)| **t >= 0.05)
        .map(|(n, t)| format!("{n} {:.1} µs", t * 1e6 / statuses.max(1) as f64))
        .collect();
    println!("ingest CPU per status by thread: {}", by_thread.join(", "));
    println!(
        "ingest: {statuses} statuses (+{others} profiles and follow lists) in {:.2} s = {:.0} statuses/s",
        took.as_secs_f64(),
        statuses as f64 / took.as_secs_f64()
    );
    Ok(statuses)
}

/// CPU seconds of each live thread of this process, by thread name.
fn thread_cpu() -> Vec<(String, f64)> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| {
            let stat = std::fs::read_to_string(t.path().join("stat")).ok()?;
            let (head, rest) = stat.rsplit_once(')')?;
            let name = head.split_once('(')?.1.to_owned();
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
            Some((name, (ticks(11) + ticks(12)) / 100.0))
        })
        .collect()
}

/// User plus system CPU time of this process so far, in seconds (Linux `/proc/self/stat`).
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the parenthesized command name; utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}
