//! `fritter-crawler-load`: an open-loop HTTP load generator for the crawler's API.
//!
//! wrk is closed-loop: a connection sends its next request only when the last one is answered,
//! so when the server stalls, wrk stops sending and the stall shows as one slow request rather
//! than the hundreds a real population of clients would have queued behind it ("coordinated
//! omission"). This tool sends request `i` at `start + i / rate` whatever happened before, on
//! as many connections as that needs (up to `--connections`), and measures each latency from
//! that scheduled time: queueing in the server, waiting for a free connection, or the
//! generator itself falling behind all count against the figure, never for it.
//!
//! Each `--urls` file is one view, named after the file (`mentions.txt` → `mentions`), holding
//! request paths one a line; `fritter-crawler-bench --serve` writes them. Each request picks a
//! view by `--mix` (equal shares by default), then a path of that view at random.
//!
//! ```sh
//! fritter-crawler-load --target http://127.0.0.1:8099 --rate 1000 --duration 60 \
//!     --urls D/urls/mentions.txt --urls D/urls/thread.txt --urls D/urls/search.txt --urls D/urls/trending.txt
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::body::Body;
use axum::http::{header, Request, Uri};
use clap::Parser;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use rand::{Rng, SeedableRng};
use tokio::sync::Semaphore;

#[derive(Parser)]
#[command(
    name = "fritter-crawler-load",
    version,
    about = "Open-loop HTTP load generator: a fixed request rate, latency measured from each \
             request's scheduled send time, success rate and p50/p99/max per view",
    after_help = "Exits 0 if every request got a 2xx answer in time, 1 if any failed, 2 on a \
                  usage or setup error."
)]
struct Args {
    /// Base URL of the server (plain HTTP)
    #[arg(long, default_value = "http://127.0.0.1:8080", value_name = "URL")]
    target: String,
    /// A file of request paths, one a line; one view, named after the file (repeatable)
    #[arg(long = "urls", value_name = "FILE", required = true)]
    urls: Vec<PathBuf>,
    /// Share of each view, as NAME=WEIGHT,... naming every view [default: equal shares]
    #[arg(long, value_delimiter = ',', value_name = "NAME=WEIGHT")]
    mix: Vec<String>,
    /// Requests per second, all views together
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    /// Seconds measured
    #[arg(long, default_value_t = 60.0)]
    duration: f64,
    /// Seconds at the same rate before measuring (sent, not counted)
    #[arg(long, default_value_t = 0.0)]
    warmup: f64,
    /// Open connections at most; when all are busy a request waits for one (the wait counts
    /// in its latency)
    #[arg(long, default_value_t = 256)]
    connections: usize,
    /// A request not answered within this many milliseconds of its scheduled time fails
    #[arg(long, default_value_t = 5000, value_name = "MS")]
    timeout_ms: u64,
    /// Threads running the requests (one more thread keeps the schedule); one is enough for
    /// thousands of requests per second and lighter on a machine shared with the server
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Seed of the request choice
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Also print, per second of the run, requests, failures, p99 and max (to tell a steady
    /// queue from a few bad seconds, e.g. when other work takes the CPU)
    #[arg(long)]
    timeline: bool,
}

/// Largest answer read, in bytes (the API's largest pages are far smaller).
const MAX_BODY: usize = 16 * 1024 * 1024;

struct View {
    name: String,
    paths: Vec<String>,
    weight: f64,
}

/// How one request ended.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Ok,
    Status(u16),
    Timeout,
    Connect(String),
    Http(String),
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Ok => f.write_str("ok"),
            Outcome::Status(s) => write!(f, "HTTP {s}"),
            Outcome::Timeout => f.write_str("timeout"),
            Outcome::Connect(e) => write!(f, "connect: {e}"),
            Outcome::Http(e) => write!(f, "http: {e}"),
        }
    }
}

struct Record {
    view: usize,
    /// Scheduled send time, from the start of the measured part.
    at: Duration,
    latency: Duration,
    /// How late the generator dispatched the request after its scheduled time.
    lag: Duration,
    outcome: Outcome,
}

/// HTTP/1 connections to one server, reused; at most `slots` requests (so connections) at once.
struct Pool {
    addr: SocketAddr,
    host: String,
    idle: Mutex<Vec<SendRequest<Body>>>,
    slots: Semaphore,
    opened: AtomicUsize,
}

impl Pool {
    /// GETs `path`; the status code, once the whole body is read.
    async fn get(&self, path: &str) -> Result<u16, Outcome> {
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| Outcome::Http("pool closed".into()))?;
        let mut sender = loop {
            let idle = self.idle.lock().pop();
            match idle {
                // A connection the server closed while idle fails `ready`: drop it, take
                // another (nothing was sent on it, so this is no retry of a request).
                Some(mut s) => {
                    if s.ready().await.is_ok() {
                        break s;
                    }
                }
                None => break self.connect().await?,
            }
        };
        let req = Request::get(path)
            .header(header::HOST, &self.host)
            .body(Body::empty())
            .map_err(|e| Outcome::Http(format!("bad request path {path:?}: {e}")))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| Outcome::Http(e.to_string()))?;
        let status = resp.status().as_u16();
        axum::body::to_bytes(Body::new(resp.into_body()), MAX_BODY)
            .await
            .map_err(|e| Outcome::Http(format!("reading the body: {e}")))?;
        self.idle.lock().push(sender);
        Ok(status)
    }

    async fn connect(&self) -> Result<SendRequest<Body>, Outcome> {
        let stream = tokio::net::TcpStream::connect(self.addr)
            .await
            .map_err(|e| Outcome::Connect(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| Outcome::Connect(e.to_string()))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        self.opened.fetch_add(1, Ordering::Relaxed);
        Ok(sender)
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let run = match run(&args) {
        Ok(run) => run,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    if args.timeline {
        timeline(&run);
    }
    if report(&run) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn views(args: &Args) -> anyhow::Result<Vec<View>> {
    let mut views: Vec<View> = Vec::new();
    for path in &args.urls {
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .with_context(|| format!("{}: no file name to name the view", path.display()))?
            .to_owned();
        anyhow::ensure!(
            views.iter().all(|v| v.name != name),
            "two --urls files name the view {name}: rename one"
        );
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "reading {} (fritter-crawler-bench --serve writes DIR/urls/*.txt)",
                path.display()
            )
        })?;
        let paths: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        anyhow::ensure!(!paths.is_empty(), "{} has no paths", path.display());
        if let Some(bad) = paths.iter().find(|p| !p.starts_with('/')) {
            anyhow::bail!("{}: {bad:?} is not a path (/...)", path.display());
        }
        views.push(View {
            name,
            paths,
            weight: 1.0,
        });
    }
    if !args.mix.is_empty() {
        let mut given = BTreeMap::new();
        for m in &args.mix {
            let (name, w) = m
                .split_once('=')
                .with_context(|| format!("--mix {m:?}: write NAME=WEIGHT"))?;
            let w: f64 = w
                .parse()
                .ok()
                .filter(|w: &f64| w.is_finite() && *w >= 0.0)
                .with_context(|| format!("--mix {m:?}: the weight is a number ≥ 0"))?;
            anyhow::ensure!(
                views.iter().any(|v| v.name == name),
                "--mix names {name}, which no --urls file is"
            );
            given.insert(name.to_owned(), w);
        }
        for v in &mut views {
            v.weight = *given
                .get(&v.name)
                .with_context(|| format!("--mix gives no weight for {}", v.name))?;
        }
    }
    anyhow::ensure!(
        views.iter().map(|v| v.weight).sum::<f64>() > 0.0,
        "--mix: every weight is 0"
    );
    Ok(views)
}

/// The socket address and Host header of `--target`.
async fn target(t: &str) -> anyhow::Result<(SocketAddr, String)> {
    let uri: Uri = t
        .parse()
        .with_context(|| format!("--target {t:?} is not a URL"))?;
    anyhow::ensure!(
        uri.scheme_str() == Some("http"),
        "--target {t}: only http:// is supported"
    );
    anyhow::ensure!(
        matches!(uri.path(), "" | "/") && uri.query().is_none(),
        "--target {t}: give the server's base URL; paths come from --urls"
    );
    let host = uri
        .host()
        .with_context(|| format!("--target {t}: no host"))?;
    let port = uri.port_u16().unwrap_or(80);
    let addr = tokio::net::lookup_host((host.trim_matches(['[', ']']), port))
        .await
        .with_context(|| format!("resolving {host}"))?
        .next()
        .with_context(|| format!("{host} has no address"))?;
    let authority = uri.authority().map_or(host, |a| a.as_str()).to_owned();
    Ok((addr, authority))
}

/// What a run measured.
struct Run {
    views: Arc<Vec<View>>,
    records: Vec<Record>,
    /// From the first measured request's scheduled time to the last one's dispatch.
    sending: Duration,
    connections: usize,
}

fn run(args: &Args) -> anyhow::Result<Run> {
    anyhow::ensure!(
        args.rate.is_finite() && args.rate > 0.0,
        "--rate must be > 0"
    );
    anyhow::ensure!(
        args.duration.is_finite() && args.duration > 0.0,
        "--duration must be > 0"
    );
    anyhow::ensure!(
        args.warmup.is_finite() && args.warmup >= 0.0,
        "--warmup must be ≥ 0"
    );
    anyhow::ensure!(args.connections >= 1, "--connections must be ≥ 1");
    let views = views(args)?;
    // The requests run on the runtime's worker(s); this thread only keeps the schedule, with
    // the OS's sleep (tens of microseconds late) rather than tokio's millisecond timer.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()?;
    let (addr, host) = rt.block_on(target(&args.target))?;
    let pool = Arc::new(Pool {
        addr,
        host,
        idle: Mutex::new(Vec::new()),
        slots: Semaphore::new(args.connections),
        opened: AtomicUsize::new(0),
    });
    // Fail fast, before the clock starts, if the server is down or a list is wrong.
    for v in &views {
        let path = &v.paths[0];
        match rt.block_on(pool.get(path)) {
            Ok(s) if (200..300).contains(&s) => {}
            Ok(s) => anyhow::bail!(
                "{}{path} answered HTTP {s} before the run: is this the right server and list?",
                args.target.trim_end_matches('/')
            ),
            Err(e) => anyhow::bail!(
                "{}{path}: {e} (is the server running? fritter-crawler-bench --dir D --serve HOST:PORT)",
                args.target.trim_end_matches('/')
            ),
        }
    }
    let total_w: f64 = views.iter().map(|v| v.weight).sum();
    let mix: Vec<String> = views
        .iter()
        .map(|v| format!("{} {:.0}%", v.name, 100.0 * v.weight / total_w))
        .collect();
    println!(
        "fritter-crawler-load: {} requests/s for {} s (+{} s warm-up), open loop, against {}; mix {}",
        args.rate,
        args.duration,
        args.warmup,
        args.target,
        mix.join(", ")
    );
    let mut cumulative = Vec::with_capacity(views.len());
    let mut acc = 0.0;
    for v in &views {
        acc += v.weight / total_w;
        cumulative.push(acc);
    }
    let views = Arc::new(views);
    let warm = (args.warmup * args.rate).round() as u64;
    let total = warm + (args.duration * args.rate).round() as u64;
    let timeout = Duration::from_millis(args.timeout_ms);
    let records = Arc::new(Mutex::new(Vec::with_capacity(total as usize)));
    let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed);
    let mut tasks = Vec::with_capacity(total as usize);
    let start = Instant::now() + Duration::from_millis(10);
    let mut measure_start = start;
    for i in 0..total {
        let at = start + Duration::from_secs_f64(i as f64 / args.rate);
        if i == warm {
            measure_start = at;
        }
        let now = Instant::now();
        if at > now {
            std::thread::sleep(at - now);
        }
        let lag = Instant::now().saturating_duration_since(at);
        let x: f64 = rng.gen();
        let view = cumulative
            .iter()
            .position(|c| x < *c)
            .unwrap_or(views.len() - 1);
        let path = rng.gen_range(0..views[view].paths.len());
        let (pool, views, records) = (pool.clone(), views.clone(), records.clone());
        tasks.push(rt.spawn(async move {
            let path = &views[view].paths[path];
            let outcome = match tokio::time::timeout_at((at + timeout).into(), pool.get(path)).await
            {
                Err(_) => Outcome::Timeout,
                Ok(Err(o)) => o,
                Ok(Ok(s)) if (200..300).contains(&s) => Outcome::Ok,
                Ok(Ok(s)) => Outcome::Status(s),
            };
            if i >= warm {
                records.lock().push(Record {
                    view,
                    at: at.saturating_duration_since(measure_start),
                    latency: at.elapsed(),
                    lag,
                    outcome,
                });
            }
        }));
    }
    let sending = measure_start.elapsed();
    rt.block_on(async {
        for t in tasks {
            let _ = t.await;
        }
    });
    let records = std::mem::take(&mut *records.lock());
    Ok(Run {
        views,
        records,
        sending,
        connections: pool.opened.load(Ordering::Relaxed),
    })
}

/// Nearest-rank percentile of sorted `v`.
fn pct(v: &[Duration], p: f64) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// Prints requests, failures, p99 and max per second of scheduled time.
fn timeline(run: &Run) {
    let mut secs: BTreeMap<u64, Vec<&Record>> = BTreeMap::new();
    for r in &run.records {
        secs.entry(r.at.as_secs()).or_default().push(r);
    }
    println!(
        "{:>6} {:>8} {:>8} {:>10} {:>10}",
        "second", "requests", "failed", "p99", "max"
    );
    for (s, rs) in secs {
        let mut lat: Vec<Duration> = rs.iter().map(|r| r.latency).collect();
        lat.sort();
        println!(
            "{:>6} {:>8} {:>8} {:>10} {:>10}",
            s,
            rs.len(),
            rs.iter().filter(|r| r.outcome != Outcome::Ok).count(),
            ms(pct(&lat, 0.99)),
            ms(lat.last().copied().unwrap_or_default())
        );
    }
}

/// Prints the table; true if every request succeeded.
fn report(run: &Run) -> bool {
    let (views, records) = (&run.views, &run.records);
    println!(
        "{:<10} {:>8} {:>8} {:>9} {:>10} {:>10} {:>10}",
        "view", "requests", "ok", "success", "p50", "p99", "max"
    );
    let row = |name: &str, rs: &[&Record]| {
        let mut lat: Vec<Duration> = rs.iter().map(|r| r.latency).collect();
        lat.sort();
        let ok = rs.iter().filter(|r| r.outcome == Outcome::Ok).count();
        println!(
            "{:<10} {:>8} {:>8} {:>8.2}% {:>10} {:>10} {:>10}",
            name,
            rs.len(),
            ok,
            100.0 * ok as f64 / rs.len().max(1) as f64,
            ms(pct(&lat, 0.5)),
            ms(pct(&lat, 0.99)),
            ms(lat.last().copied().unwrap_or_default())
        );
    };
    for (i, v) in views.iter().enumerate() {
        let rs: Vec<&Record> = records.iter().filter(|r| r.view == i).collect();
        row(&v.name, &rs);
    }
    let all: Vec<&Record> = records.iter().collect();
    row("all", &all);
    let mut failures: BTreeMap<(&str, &Outcome), usize> = BTreeMap::new();
    for r in records.iter().filter(|r| r.outcome != Outcome::Ok) {
        *failures
            .entry((views[r.view].name.as_str(), &r.outcome))
            .or_default() += 1;
    }
    for ((view, outcome), n) in &failures {
        println!("failed: {view}: {outcome} × {n}");
    }
    let mut lag: Vec<Duration> = records.iter().map(|r| r.lag).collect();
    lag.sort();
    println!(
        "sent {} requests in {:.2} s ({:.0}/s); generator dispatch lag p99 {}, max {}; {} connections opened",
        records.len(),
        run.sending.as_secs_f64(),
        records.len() as f64 / run.sending.as_secs_f64().max(1e-9),
        ms(pct(&lag, 0.99)),
        ms(lag.last().copied().unwrap_or_default()),
        run.connections
    );
    failures.is_empty()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::atomic::AtomicU64;

    /// A server on a free port: `/ok` answers at once, `/slow` after 30 ms, `/flaky` 500 on
    /// every second call (its first call succeeds), anything else 404.
    fn server() -> String {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let calls = Arc::new(AtomicU64::new(0));
                let app = axum::Router::new()
                    .route("/ok", axum::routing::get(|| async { "ok" }))
                    .route(
                        "/slow",
                        axum::routing::get(|| async {
                            tokio::time::sleep(Duration::from_millis(30)).await;
                            "slow"
                        }),
                    )
                    .route(
                        "/flaky",
                        axum::routing::get(move || {
                            let n = calls.fetch_add(1, Ordering::Relaxed);
                            async move {
                                if n % 2 == 1 {
                                    axum::http::StatusCode::INTERNAL_SERVER_ERROR
                                } else {
                                    axum::http::StatusCode::OK
                                }
                            }
                        }),
                    );
                let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(l.local_addr().unwrap()).unwrap();
                axum::serve(l, app).await.unwrap();
            });
        });
        format!("http://{}", rx.recv().unwrap())
    }

    fn list(dir: &std::path::Path, name: &str, lines: &str) -> String {
        let p = dir.join(name);
        std::fs::write(&p, lines).unwrap();
        p.to_string_lossy().into_owned()
    }

    #[test]
    fn sends_at_the_rate_and_counts_every_outcome() {
        let target = server();
        let dir = tempfile::tempdir().unwrap();
        let ok = list(dir.path(), "ok.txt", "/ok\n");
        let slow = list(dir.path(), "slow.txt", "/slow\n");
        let flaky = list(dir.path(), "flaky.txt", "/flaky\n");
        let args = Args::parse_from([
            "load",
            "--target",
            &target,
            "--urls",
            &ok,
            "--urls",
            &slow,
            "--urls",
            &flaky,
            "--mix",
            "ok=2,slow=1,flaky=1",
            "--rate",
            "400",
            "--duration",
            "1",
        ]);
        let run = run(&args).unwrap();
        assert_eq!(run.records.len(), 400);
        let count = |v: usize| run.records.iter().filter(|r| r.view == v).count();
        // 400 draws at 1/2, 1/4, 1/4: far outside these bounds only if the mix is ignored.
        assert!((150..250).contains(&count(0)), "{}", count(0));
        assert!((60..140).contains(&count(1)) && (60..140).contains(&count(2)));
        let failed: Vec<&Record> = run
            .records
            .iter()
            .filter(|r| r.outcome != Outcome::Ok)
            .collect();
        assert!(!failed.is_empty());
        assert!(failed
            .iter()
            .all(|r| r.view == 2 && r.outcome == Outcome::Status(500)));
        assert!(run
            .records
            .iter()
            .filter(|r| r.view == 1)
            .all(|r| r.latency >= Duration::from_millis(30)));
        assert!(!report(&run));
        // Open loop: the whole schedule took about a second, whatever the slow answers did.
        assert!(
            run.sending < Duration::from_millis(1500),
            "{:?}",
            run.sending
        );
    }

    #[test]
    fn refuses_a_list_the_server_rejects() {
        let target = server();
        let dir = tempfile::tempdir().unwrap();
        let bad = list(dir.path(), "bad.txt", "/missing\n");
        let args = Args::parse_from(["load", "--target", &target, "--urls", &bad]);
        let e = run(&args).err().unwrap().to_string();
        assert!(e.contains("HTTP 404"), "{e}");
    }

    #[test]
    fn mix_must_name_every_view() {
        let dir = tempfile::tempdir().unwrap();
        let a = list(dir.path(), "a.txt", "/a\n");
        let b = list(dir.path(), "b.txt", "/b\n");
        let args = Args::parse_from(["load", "--urls", &a, "--urls", &b, "--mix", "a=1"]);
        let e = views(&args).err().unwrap().to_string();
        assert!(e.contains("no weight for b"), "{e}");
        let args = Args::parse_from(["load", "--urls", &a, "--mix", "c=1"]);
        assert!(views(&args).is_err());
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(pct(&v, 0.5), Duration::from_millis(50));
        assert_eq!(pct(&v, 0.99), Duration::from_millis(99));
        assert_eq!(pct(&v, 1.0), Duration::from_millis(100));
        assert_eq!(pct(&[], 0.5), Duration::ZERO);
    }
}
