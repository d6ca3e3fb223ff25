//! `fritter-crawler-flood`: the crawler under a junk-archive flood. One peer (a replication node
//! in this process, on 127.0.0.1) serves 100 real archives (profiles, follow lists, statuses,
//! following each other) next to 10,000 junk archives (empty ones, garbage entries that fail
//! validation, floods of valid spam statuses, follow lists naming thousands of other junk keys).
//! The real `fritter-crawler` binary is started with one real archive as its seed and the
//! source as its peer; an attacker introduces the junk as an attacker would: one spam archive
//! whose follow lists name every junk key, plus a burst of `POST /v1/crawl` from one client.
//!
//! Measured: the time until every real archive is fully indexed (its checkpoint at the length
//! written and every status in the index), the crawler's peak RSS (`VmHWM`), its open files, and
//! how many junk archives it held and indexed.
//!
//! ```sh
//! cargo build --release -p fritter-crawler
//! target/release/fritter-crawler-flood                 # 100 real, 10,000 junk, 90 s
//! ```

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use fritter_common::crypto::{self, KeyPair, PublicKey};
use fritter_common::log::{Access, Log, Storage, StorageFile};
use fritter_common::model::{
    ArchiveUrl, File, Follows, Mention, Profile, Reply, Status, StatusId, ThreadRef, Timestamp,
};
use fritter_common::replicate::{Node, NodeConfig};
use parking_lot::Mutex;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::Value;

#[derive(Parser)]
#[command(
    about = "Crawler flood benchmark: real archives next to a junk flood from one source, \
             against the real fritter-crawler binary"
)]
struct Args {
    /// Real archives (each follows about ten others)
    #[arg(long, default_value_t = 100)]
    real: usize,
    /// Statuses per real archive
    #[arg(long, default_value_t = 50)]
    statuses: usize,
    /// Junk archives, all named by the spam archive's follow lists
    #[arg(long, default_value_t = 10_000)]
    junk: usize,
    /// Junk archives that flood valid spam statuses
    #[arg(long, default_value_t = 100)]
    floods: usize,
    /// Spam statuses per flooding archive
    #[arg(long, default_value_t = 3000)]
    flood_statuses: usize,
    /// Junk archives whose follow lists (rewritten three times) name 800 other junk keys each
    #[arg(long, default_value_t = 300)]
    linkers: usize,
    /// `POST /v1/crawl` requests in the attacker's burst (one client)
    #[arg(long, default_value_t = 1000)]
    crawl_burst: usize,
    /// How long the crawler runs (the flood keeps going after the real archives are in)
    #[arg(long, default_value_t = 90)]
    duration: u64,
    /// The crawler binary [default: fritter-crawler next to this binary]
    #[arg(long)]
    crawler: Option<PathBuf>,
    /// Working directory (default: a fresh temporary one, removed afterwards)
    #[arg(long)]
    dir: Option<PathBuf>,
}

const WORDS: &[&str] = &[
    "the", "a", "coffee", "morning", "code", "rust", "music", "today", "weather", "train", "book",
    "garden", "cat", "dog", "project", "release", "bug", "fix", "great", "idea", "meeting",
    "lunch", "walk", "photo", "sunset", "city", "river", "bike", "run", "game", "movie", "news",
];

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let tmp = tempfile::tempdir()?;
    let dir = args.dir.clone().unwrap_or_else(|| tmp.path().to_owned());
    std::fs::create_dir_all(&dir)?;
    let crawler_bin = match &args.crawler {
        Some(p) => p.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("no directory of this binary")?
            .join("fritter-crawler"),
    };
    if !crawler_bin.exists() {
        bail!(
            "{} not found: build it first (cargo build --release -p fritter-crawler) or pass --crawler",
            crawler_bin.display()
        );
    }

    // ---- corpus, in memory, served by one node ----
    let t0 = Instant::now();
    let corpus = Corpus::generate(&args)?;
    println!(
        "corpus: {} real archives ({} statuses), {} junk archives ({} entries: {} spam statuses, \
         {} invalid entries, {} follow-list entries naming {} keys) in {:.1} s",
        corpus.real.len(),
        corpus.real_statuses,
        args.junk,
        corpus.junk_entries,
        corpus.spam_statuses,
        corpus.invalid_entries,
        corpus.follow_entries,
        corpus.follow_urls,
        t0.elapsed().as_secs_f64()
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let node = rt.block_on(Node::start(NodeConfig {
        listen: Some("127.0.0.1:0".parse()?),
        ..NodeConfig::default()
    }))?;
    let source = node.local_addr().context("source node not listening")?;
    {
        let _guard = rt.enter();
        for log in corpus.logs.iter() {
            node.add(log.clone());
        }
    }
    println!(
        "source: one node on {source} serving {} archives",
        corpus.logs.len()
    );

    // ---- the crawler ----
    let data = dir.join("crawler");
    let config = dir.join("crawler.json");
    // The general API rate limit is raised so this benchmark can poll every real archive
    // several times a second; `POST /v1/crawl` keeps its default per-client limit.
    std::fs::write(&config, r#"{"api": {"rate_per_sec": 2000, "burst": 2000}}"#)?;
    let log_path = dir.join("crawler.log");
    let started = Instant::now();
    let mut child = Command::new(&crawler_bin)
        .arg("--data-dir")
        .arg(&data)
        .args([
            "--http",
            "127.0.0.1:0",
            "--listen",
            "127.0.0.1:0",
            "--no-dht",
            "--no-mdns",
        ])
        .arg("--peer")
        .arg(source.to_string())
        .arg("--seed")
        .arg(format!("hyper://{}/", corpus.real[0].key.to_hex()))
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log_path)?)
        .spawn()
        .with_context(|| format!("starting {}", crawler_bin.display()))?;
    let guard = KillOnDrop(&mut child);
    let pid = guard.0.id();
    let http = wait_http(guard.0)?;
    println!(
        "crawler: pid {pid}, HTTP on {http}, up in {:.2} s",
        started.elapsed().as_secs_f64()
    );

    // ---- the attacker: a burst of crawl requests from one client ----
    let burst: Vec<String> = std::iter::once(corpus.spam_root.to_hex())
        .chain(
            corpus
                .junk_keys
                .choose_multiple(&mut rand::thread_rng(), args.crawl_burst.saturating_sub(1))
                .map(|k| k.to_hex()),
        )
        .collect();
    let attacker = std::thread::spawn(move || {
        let mut codes: HashMap<u16, usize> = HashMap::new();
        for hex in burst {
            let body = format!(r#"{{"url": "hyper://{hex}/"}}"#);
            let code = request(http, "POST", "/v1/crawl", Some(&body)).map_or(0, |(c, _)| c);
            *codes.entry(code).or_default() += 1;
        }
        codes
    });

    // ---- measure ----
    let deadline = started + Duration::from_secs(args.duration);
    let mut pending: Vec<usize> = (0..corpus.real.len()).collect();
    let mut done_at: Vec<Option<f64>> = vec![None; corpus.real.len()];
    let mut all_done: Option<f64> = None;
    let mut peak_fds = 0usize;
    let mut last_print = Instant::now();
    let mut last_status = Value::Null;
    while Instant::now() < deadline {
        let t = started.elapsed().as_secs_f64();
        peak_fds = peak_fds.max(open_fds(pid));
        pending.retain(|&i| {
            let r = &corpus.real[i];
            match indexed(http, r) {
                Ok(true) => {
                    done_at[i] = Some(t);
                    false
                }
                _ => true,
            }
        });
        if pending.is_empty() && all_done.is_none() {
            all_done = Some(t);
            println!(
                "all {} real archives fully indexed at {t:.2} s",
                corpus.real.len()
            );
        }
        if let Ok((200, body)) = request(http, "GET", "/v1/status", None) {
            last_status = serde_json::from_str(&body).unwrap_or(Value::Null);
        }
        if last_print.elapsed() >= Duration::from_secs(5) {
            last_print = Instant::now();
            let (hwm, rss) = memory(pid);
            println!(
                "  t={t:5.1} s  real indexed {:3}/{}  held {}  synced {}  documents {}  \
                 rss {} MiB (peak {} MiB)  fds {}",
                corpus.real.len() - pending.len(),
                corpus.real.len(),
                last_status["archives"],
                last_status["synced"],
                last_status["index"]["documents"],
                rss / 1024,
                hwm / 1024,
                open_fds(pid)
            );
        }
        if guard.0.try_wait()?.is_some() {
            bail!(
                "the crawler exited early; see {} (pass --dir to keep it)",
                log_path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let (hwm, rss) = memory(pid);
    let codes = attacker.join().unwrap_or_default();

    // Still indexed at the end (nothing the flood did pushed a real archive out).
    let still = corpus
        .real
        .iter()
        .filter(|r| indexed(http, r).unwrap_or(false))
        .count();
    let held_real = corpus
        .real
        .iter()
        .filter(|r| {
            matches!(
                request(
                    http,
                    "GET",
                    &format!("/v1/archives/{}", r.key.to_hex()),
                    None
                ),
                Ok((200, _))
            )
        })
        .count();
    let held = last_status["archives"].as_u64().unwrap_or(0) as usize;
    let junk_indexed = junk_with_documents(http, &corpus);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    drop(guard);

    println!("---- results ----");
    match all_done {
        Some(t) => println!(
            "real archives fully indexed: all {} at {t:.2} s (goal: within 60 s)",
            corpus.real.len()
        ),
        None => println!(
            "real archives fully indexed: {}/{} after {} s (goal: all within 60 s) MISSED",
            corpus.real.len() - pending.len(),
            corpus.real.len(),
            args.duration
        ),
    }
    let mut times: Vec<f64> = done_at.iter().flatten().copied().collect();
    times.sort_by(f64::total_cmp);
    if let (Some(first), Some(median)) = (times.first(), times.get(times.len() / 2)) {
        println!("  first at {first:.2} s, median at {median:.2} s");
    }
    println!(
        "real archives still fully indexed at the end: {still}/{}",
        corpus.real.len()
    );
    println!(
        "crawler peak RSS (VmHWM): {} MiB, at the end {} MiB (goal: under 1024 MiB); peak open files: {peak_fds}",
        hwm / 1024,
        rss / 1024
    );
    println!(
        "held: {held} archives ({held_real} real, {} junk of {}); junk archives with documents \
         in the index: {junk_indexed}; synced {}, lagging {}, errors {}; documents {}, statuses \
         indexed {}",
        held.saturating_sub(held_real),
        args.junk,
        last_status["synced"],
        last_status["lagging"],
        last_status["errors"],
        last_status["index"]["documents"],
        last_status["index"]["statusesIndexedSinceStart"],
    );
    let mut codes: Vec<(u16, usize)> = codes.into_iter().collect();
    codes.sort();
    println!("attacker's POST /v1/crawl burst: {codes:?} (status code, count; 0 = no answer)");
    println!("load average at the end: {}", load.trim());
    Ok(())
}

/// Kills the crawler when the benchmark ends, however it ends.
struct KillOnDrop<'a>(&'a mut Child);

impl Drop for KillOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits for the crawler's "HTTP API on http://ADDR/" line.
fn wait_http(child: &mut Child) -> anyhow::Result<SocketAddr> {
    let stdout = child.stdout.take().context("no stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.split("HTTP API on http://").nth(1) {
                let addr = rest.split('/').next().unwrap_or_default().to_owned();
                let _ = tx.send(addr);
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .context("the crawler did not report its HTTP address within 60 s")?;
    addr.parse().context("crawler HTTP address")
}

/// One HTTP/1.1 request on a fresh connection: (status, body).
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> anyhow::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let body = body.unwrap_or("");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    let text = String::from_utf8_lossy(&out);
    let code = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .context("no HTTP status")?;
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    Ok((code, body))
}

/// Whether a real archive is fully indexed: its committed checkpoint is at the length written
/// and the index holds every one of its statuses.
fn indexed(http: SocketAddr, r: &RealArchive) -> anyhow::Result<bool> {
    let (code, body) = request(
        http,
        "GET",
        &format!("/v1/archives/{}", r.key.to_hex()),
        None,
    )?;
    if code != 200 {
        return Ok(false);
    }
    let v: Value = serde_json::from_str(&body)?;
    let next = v["checkpoint"]["next"].as_u64().unwrap_or(0);
    let statuses = v["statuses"].as_u64().unwrap_or(0);
    Ok(next >= r.length && statuses == r.statuses as u64)
}

/// Junk archives the index holds documents of (profiles, statuses or follow lists), by asking
/// for a sample of them and scaling up.
fn junk_with_documents(http: SocketAddr, corpus: &Corpus) -> String {
    let sample: Vec<&PublicKey> = corpus.junk_keys.iter().step_by(20).collect();
    let mut held = 0;
    let mut with_docs = 0;
    for k in &sample {
        if let Ok((200, body)) = request(http, "GET", &format!("/v1/archives/{}", k.to_hex()), None)
        {
            held += 1;
            let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            if !v["profile"].is_null()
                || v["statuses"].as_u64().unwrap_or(0) > 0
                || v["following"].as_u64().unwrap_or(0) > 0
            {
                with_docs += 1;
            }
        }
    }
    format!(
        "{with_docs} of a sample of {} junk keys ({held} of the sample held)",
        sample.len()
    )
}

/// (VmHWM, VmRSS) of a process, in KiB.
fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

struct RealArchive {
    key: PublicKey,
    /// Entries written.
    length: u64,
    statuses: usize,
}

struct Corpus {
    real: Vec<RealArchive>,
    real_statuses: usize,
    spam_root: PublicKey,
    junk_keys: Vec<PublicKey>,
    logs: Vec<Arc<Log>>,
    junk_entries: usize,
    spam_statuses: usize,
    invalid_entries: usize,
    follow_entries: usize,
    follow_urls: usize,
}

fn append(log: &Log, blocks: &[Vec<u8>]) -> anyhow::Result<()> {
    for chunk in blocks.chunks(1000) {
        let refs: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
        log.append_batch(&refs)?;
    }
    Ok(())
}

fn writer(kp: &KeyPair) -> anyhow::Result<Arc<Log>> {
    Ok(Arc::new(Log::open(
        &MemStorage::default(),
        kp.public(),
        Access::Writer(kp.clone()),
    )?))
}

/// Follow-list entries naming `keys`, split so that each entry fits the entry size limit.
fn follows_entries(keys: &[PublicKey], out: &mut Vec<Vec<u8>>) -> anyhow::Result<()> {
    let urls: Vec<ArchiveUrl> = keys.iter().map(|k| ArchiveUrl::root((*k).into())).collect();
    match File::Follows(Follows { urls }).to_entry()?.encode_checked() {
        Ok(bytes) => out.push(bytes),
        Err(_) if keys.len() > 1 => {
            let (a, b) = keys.split_at(keys.len() / 2);
            follows_entries(a, out)?;
            follows_entries(b, out)?;
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

fn status_entry(
    text: String,
    created: i64,
    clock: u16,
    tags: Vec<String>,
    mentions: Vec<Mention>,
    reply: Option<Reply>,
) -> anyhow::Result<(StatusId, Vec<u8>)> {
    let mut status = Status::new(text, Timestamp::from_unix_millis(created)?);
    status.tags = tags;
    status.mentions = mentions;
    status.reply = reply;
    let id = StatusId::from_parts(created as u64 * 1000 + u64::from(clock % 1000), clock)?;
    Ok((
        id,
        File::Status { id, status }.to_entry()?.encode_checked()?,
    ))
}

impl Corpus {
    fn generate(args: &Args) -> anyhow::Result<Corpus> {
        anyhow::ensure!(args.real >= 2, "--real must be at least 2");
        anyhow::ensure!(
            args.junk > args.floods + args.linkers,
            "--junk must exceed --floods + --linkers"
        );
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let now = Timestamp::now().unix_millis();
        let mut logs = Vec::new();

        // Real archives: a ring plus about nine random follows each, ~50 statuses with tags,
        // mentions of and replies to each other.
        let real_kps: Vec<KeyPair> = (0..args.real).map(|_| KeyPair::generate()).collect();
        let real_keys: Vec<PublicKey> = real_kps.iter().map(KeyPair::public).collect();
        let mut real = Vec::new();
        let mut recent: Vec<(ThreadRef, ThreadRef)> = Vec::new();
        let mut real_statuses = 0;
        for (i, kp) in real_kps.iter().enumerate() {
            let key = kp.public();
            let log = writer(kp)?;
            let mut blocks = vec![File::Profile(Profile {
                name: format!("Real {i}"),
                bio: "a real user".into(),
                avatar: None,
            })
            .to_entry()?
            .encode_checked()?];
            let mut follows = BTreeSet::new();
            follows.insert(real_keys[(i + 1) % args.real]);
            for _ in 0..9 {
                let k = real_keys[rng.gen_range(0..args.real)];
                if k != key {
                    follows.insert(k);
                }
            }
            let follows: Vec<PublicKey> = follows.into_iter().collect();
            follows_entries(&follows, &mut blocks)?;
            let mut mine = Vec::new();
            for j in 0..args.statuses {
                let mut text: Vec<String> = (0..rng.gen_range(5..20))
                    .map(|_| WORDS[rng.gen_range(0..WORDS.len())].to_owned())
                    .collect();
                let tag = format!("topic{}", rng.gen_range(0..20));
                text.push(format!("#{tag}"));
                let mut mentions = Vec::new();
                if rng.gen_bool(0.2) {
                    let m = real_keys[rng.gen_range(0..args.real)];
                    if m != key {
                        text.push("@friend".into());
                        mentions.push(Mention {
                            url: ArchiveUrl::root(m.into()),
                            name: "friend".into(),
                        });
                    }
                }
                let reply = if !recent.is_empty() && rng.gen_bool(0.25) {
                    let (parent, root) = recent[rng.gen_range(0..recent.len())].clone();
                    Some(Reply { root, parent })
                } else {
                    None
                };
                let created = now - rng.gen_range(0..86_400_000);
                let (id, bytes) = status_entry(
                    text.join(" "),
                    created,
                    (j % 1000) as u16,
                    vec![tag],
                    mentions,
                    reply.clone(),
                )?;
                let me = ThreadRef {
                    url: ArchiveUrl::status(key.into(), id),
                    seq: blocks.len() as u64,
                    hash: crypto::leaf_hash(&bytes),
                };
                let root = reply.map_or(me.clone(), |r| r.root);
                mine.push((me, root));
                blocks.push(bytes);
            }
            recent.extend(mine);
            append(&log, &blocks)?;
            real_statuses += args.statuses;
            real.push(RealArchive {
                key,
                length: blocks.len() as u64,
                statuses: args.statuses,
            });
            logs.push(log);
        }

        // Junk: index 0 is the spam root, then floods, linkers, garbage, and empty ones.
        let junk_kps: Vec<KeyPair> = (0..args.junk).map(|_| KeyPair::generate()).collect();
        let junk_keys: Vec<PublicKey> = junk_kps.iter().map(KeyPair::public).collect();
        let (mut junk_entries, mut spam_statuses, mut invalid_entries) = (0, 0, 0);
        let (mut follow_entries, mut follow_urls) = (0, 0);
        let garbage_end =
            args.floods + args.linkers + 1 + (args.junk - args.floods - args.linkers) / 2;
        for (j, kp) in junk_kps.iter().enumerate() {
            let log = writer(kp)?;
            let mut blocks = Vec::new();
            if j == 0 {
                blocks.push(
                    File::Profile(Profile {
                        name: "Free followers".into(),
                        bio: "follow back!".into(),
                        avatar: None,
                    })
                    .to_entry()?
                    .encode_checked()?,
                );
                let before = blocks.len();
                follows_entries(&junk_keys[1..], &mut blocks)?;
                follow_entries += blocks.len() - before;
                follow_urls += args.junk - 1;
            } else if j <= args.floods {
                blocks.push(
                    File::Profile(Profile {
                        name: format!("Deals {j}"),
                        bio: "best deals".into(),
                        avatar: None,
                    })
                    .to_entry()?
                    .encode_checked()?,
                );
                for s in 0..args.flood_statuses {
                    let mut mentions = Vec::new();
                    let mut text = format!("BUY NOW {s} #deal #free #win cheap cheap cheap");
                    if rng.gen_bool(0.3) {
                        let m = real_keys[rng.gen_range(0..args.real)];
                        text.push_str(" @you");
                        mentions.push(Mention {
                            url: ArchiveUrl::root(m.into()),
                            name: "you".into(),
                        });
                    }
                    let (_, bytes) = status_entry(
                        text,
                        now - rng.gen_range(0..3_600_000),
                        (s % 1000) as u16,
                        vec!["deal".into(), "free".into(), "win".into()],
                        mentions,
                        None,
                    )?;
                    blocks.push(bytes);
                }
                spam_statuses += args.flood_statuses;
            } else if j <= args.floods + args.linkers {
                for _ in 0..3 {
                    let keys: Vec<PublicKey> = junk_keys
                        .choose_multiple(&mut rng, 800.min(args.junk))
                        .copied()
                        .collect();
                    let before = blocks.len();
                    follows_entries(&keys, &mut blocks)?;
                    follow_entries += blocks.len() - before;
                    follow_urls += keys.len();
                }
            } else if j < garbage_end {
                for _ in 0..rng.gen_range(1..=20) {
                    blocks.push(garbage(&mut rng));
                    invalid_entries += 1;
                }
            }
            junk_entries += blocks.len();
            append(&log, &blocks)?;
            logs.push(log);
        }
        Ok(Corpus {
            real,
            real_statuses,
            spam_root: junk_keys[0],
            junk_keys,
            logs,
            junk_entries,
            spam_statuses,
            invalid_entries,
            follow_entries,
            follow_urls,
        })
    }
}

/// One entry that fails decoding or validation, of the kinds a hostile writer sends.
fn garbage(rng: &mut impl Rng) -> Vec<u8> {
    match rng.gen_range(0..6) {
        // Random bytes.
        0 => (0..rng.gen_range(1..2000)).map(|_| rng.gen()).collect(),
        // Truncated JSON.
        1 => br#"{"op":"put","path":"/statuses/"#.to_vec(),
        // A status without text.
        2 => format!(
            r#"{{"op":"put","path":"/statuses/{}.json","v":1,"value":{{"createdAt":"2024-01-01T00:00:00.000Z"}}}}"#,
            StatusId::now()
        )
        .into_bytes(),
        // A status over the text limit.
        3 => format!(
            r#"{{"op":"put","path":"/statuses/{}.json","v":1,"value":{{"text":"{}","createdAt":"2024-01-01T00:00:00.000Z"}}}}"#,
            StatusId::now(),
            "x".repeat(5000)
        )
        .into_bytes(),
        // A path outside the schema.
        4 => br#"{"op":"put","path":"/../../etc/passwd","v":1,"value":{}}"#.to_vec(),
        // Deeply nested JSON, near the entry size limit.
        _ => {
            let depth = 400;
            let mut s = String::from(r#"{"op":"put","path":"/profile.json","v":1,"value":"#);
            s.push_str(&"[".repeat(depth));
            s.push_str(&"]".repeat(depth));
            s.push('}');
            s.push_str(&" ".repeat(rng.gen_range(0..200_000)));
            s.into_bytes()
        }
    }
}

/// Files kept in memory: the source serves 10,000 archives without a descriptor each.
#[derive(Default)]
struct MemStorage {
    files: Mutex<HashMap<String, Arc<MemFile>>>,
}

#[derive(Default)]
struct MemFile {
    bytes: Mutex<Vec<u8>>,
}

impl Storage for MemStorage {
    fn open(&self, name: &str, create: bool) -> std::io::Result<Arc<dyn StorageFile>> {
        let mut files = self.files.lock();
        if let Some(f) = files.get(name) {
            return Ok(f.clone());
        }
        if !create {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("no file {name}"),
            ));
        }
        let f = Arc::new(MemFile::default());
        files.insert(name.to_owned(), f.clone());
        Ok(f)
    }

    fn describe(&self) -> String {
        "memory".into()
    }
}

impl StorageFile for MemFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        let bytes = self.bytes.lock();
        let start = (offset as usize).min(bytes.len());
        let n = buf.len().min(bytes.len() - start);
        buf[..n].copy_from_slice(&bytes[start..start + n]);
        Ok(n)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> std::io::Result<()> {
        let mut bytes = self.bytes.lock();
        let end = offset as usize + buf.len();
        if bytes.len() < end {
            bytes.resize(end, 0);
        }
        bytes[offset as usize..end].copy_from_slice(buf);
        Ok(())
    }

    fn sync(&self) -> std::io::Result<()> {
        Ok(())
    }

    fn len(&self) -> std::io::Result<u64> {
        Ok(self.bytes.lock().len() as u64)
    }

    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.bytes.lock().resize(len as usize, 0);
        Ok(())
    }
}
