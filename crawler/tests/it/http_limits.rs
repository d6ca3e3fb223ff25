//! The HTTP limits over real TCP: the real router served by the real server loop
//! (`fritter_common::http::serve`) on 127.0.0.1, in front of a real crawler with a real
//! on-disk index, spoken to by hand-written HTTP/1.1 clients that misbehave on purpose
//! (slowloris, idle sockets, oversized and stalled bodies, floods, hostile queries).
//!
//! Limits are set small (a 1 s header timeout, a handful of connections) so the tests run in
//! seconds; the waits are deadlines, never fixed sleeps, and generous so they never flake.

use crate::support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fritter_common::archive::Archive;
use fritter_common::crypto::{KeyPair, PublicKey};
use fritter_common::model::{extract_tags, File, Profile, Status, StatusId, Timestamp};
use fritter_common::store::Store;
use fritter_crawler::api::{router, router_with, ApiConfig, AppState};
use fritter_crawler::crawl::Crawler;
use fritter_crawler::hosting::{self, Hosting, HostingConfig};
use serde_json::Value;
use tempfile::TempDir;
use tokio::net::TcpStream;

/// The longest any single request may take in these tests (the target is far lower; this
/// bound only catches a hang).
const BOUND: Duration = Duration::from_secs(5);

struct Server {
    addr: SocketAddr,
    crawler: Arc<Crawler>,
    _dir: TempDir,
    _writers: Vec<TempDir>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// Limits for tests: permissive unless a test narrows one.
fn config() -> ApiConfig {
    ApiConfig {
        rate_per_sec: 1e6,
        burst: 1e6,
        header_timeout_ms: 1000,
        ..ApiConfig::default()
    }
}

async fn start(api: ApiConfig, hosting: bool) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let ingest = support::fast_ingest(dir.path());
    let crawler = Crawler::new(Store::new(dir.path()), ingest, None, 1000);
    let limits = api.limits();
    let state = AppState::new(crawler.clone(), api);
    let app = if hosting {
        let h = Hosting::open(
            crawler.clone(),
            HostingConfig {
                enabled: true,
                ..HostingConfig::default()
            },
            dir.path(),
            "hosting.test",
        )
        .unwrap();
        router_with(state, hosting::api::router(h))
    } else {
        router(state)
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(fritter_common::http::serve(
        listener,
        app,
        limits,
        async move {
            let _ = stopped.await;
        },
    ));
    Server {
        addr,
        crawler,
        _dir: dir,
        _writers: Vec::new(),
        _stop: stop,
    }
}

impl Server {
    /// A writer with a profile and `posts` statuses, indexed before this returns.
    fn writer(&mut self, posts: &[&str]) -> PublicKey {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        store.save_identity(&KeyPair::generate()).unwrap();
        let open = store.open_own().unwrap();
        let archive = Archive::new(open.log().clone());
        archive
            .put_file(&File::Profile(Profile {
                name: "Alice".into(),
                bio: String::new(),
                avatar: None,
            }))
            .unwrap();
        for text in posts {
            let mut status = Status::new(*text, Timestamp::now());
            status.tags = extract_tags(text);
            archive
                .put_file(&File::Status {
                    id: StatusId::now(),
                    status,
                })
                .unwrap();
            std::thread::sleep(Duration::from_millis(2));
        }
        let key = archive.key();
        assert!(self.crawler.follow(open));
        self._writers.push(dir);
        for (k, _) in self.crawler.ingest().sources() {
            self.crawler.ingest().mark_dirty(k);
        }
        assert!(self.crawler.ingest().wait_idle(Duration::from_secs(30)));
        key
    }

    /// Sends `raw` on a new connection and reads the answer until the server closes.
    async fn raw(&self, raw: &[u8]) -> Answer {
        let mut s = TcpStream::connect(self.addr).await.unwrap();
        // The server may answer (and close) before it has read everything, e.g. a 413.
        let _ = write_all(&s, raw).await;
        read_answer(&mut s).await
    }

    async fn get(&self, target: &str) -> Answer {
        self.raw(
            format!("GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
    }
}

// The crate's tokio has no `io-util`; these two are all the tests need.
async fn write_all(s: &TcpStream, mut data: &[u8]) -> std::io::Result<()> {
    while !data.is_empty() {
        s.writable().await?;
        match s.try_write(data) {
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

async fn read_some(s: &TcpStream, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        s.readable().await?;
        match s.try_read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
}

/// An HTTP answer, parsed by hand.
struct Answer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let body = String::from_utf8_lossy(&self.body);
        write!(
            f,
            "{}\n\n{}",
            self.head,
            body.chars().take(2000).collect::<String>()
        )
    }
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// Reads until EOF (every request here says `Connection: close`, or is cut off) within
/// [`BOUND`]; status 0 means the server closed without answering.
async fn read_answer(s: &mut TcpStream) -> Answer {
    let mut buf = Vec::new();
    let read = tokio::time::timeout(BOUND, async {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match read_some(s, &mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no answer within {BOUND:?}");
    parse(&buf)
}

fn parse(buf: &[u8]) -> Answer {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Answer {
            status: 0,
            head: String::from_utf8_lossy(buf).into_owned(),
            body: Vec::new(),
        };
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut body = buf[end + 4..].to_vec();
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    if chunked {
        let mut out = Vec::new();
        let mut rest = &body[..];
        while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
            let size = usize::from_str_radix(std::str::from_utf8(&rest[..eol]).unwrap().trim(), 16)
                .unwrap();
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[eol + 2..eol + 2 + size]);
            rest = &rest[eol + 2 + size + 2..];
        }
        body = out;
    }
    Answer { status, head, body }
}

/// Asserts `a` is the API's JSON error with `code` (and names `param`, if given).
#[track_caller]
fn assert_error(a: &Answer, status: u16, code: &str) -> Value {
    assert_eq!(a.status, status, "{a:?}");
    assert!(
        a.header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "{a:?}"
    );
    let v = a.json();
    assert_eq!(v["error"]["code"], code, "{v}");
    assert!(v["error"]["message"].is_string(), "{v}");
    v
}

/// Whether the server has closed `s`: EOF, a reset, or an error answer followed by EOF.
/// Keeps writing one byte every 100 ms (a slowloris trickle) while it waits.
async fn closed_while_trickling(s: &mut TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 1024];
    loop {
        tokio::select! {
            r = read_some(s, &mut buf) => match r {
                Ok(0) | Err(_) => return true,
                // hyper may answer 408 before closing; keep reading to the EOF.
                Ok(_) => continue,
            },
            _ = tokio::time::sleep(Duration::from_millis(100)) => {
                if Instant::now() > deadline {
                    return false;
                }
                if write_all(s, b"a").await.is_err() {
                    return true;
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn slowloris_clients_are_cut_off_at_the_header_timeout_while_others_are_served() {
    let mut server = start(config(), false).await;
    server.writer(&["hello #world"]);
    let header_timeout = Duration::from_millis(config().header_timeout_ms);
    let started = Instant::now();
    // 50 clients each send part of a request line or of the headers, then trickle bytes.
    let mut slow = Vec::new();
    for i in 0..50 {
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        let partial: &[u8] = match i % 3 {
            0 => b"GET /v1/sta",
            1 => b"GET /v1/status HTTP/1.1\r\nHost: t\r\nX-Slow: ",
            _ => b"GET /v1/search?q=hello HTTP/1.1\r\n",
        };
        write_all(&s, partial).await.unwrap();
        slow.push(tokio::spawn(async move {
            let closed = closed_while_trickling(&mut s, header_timeout + BOUND).await;
            (closed, started.elapsed())
        }));
    }
    // Meanwhile a normal client is served, several times over.
    for _ in 0..5 {
        let t = Instant::now();
        let a = server.get("/v1/search?tag=world").await;
        assert_eq!(a.status, 200, "{a:?}");
        assert_eq!(a.json()["hits"].as_array().unwrap().len(), 1);
        println!("normal request during slowloris: {:?}", t.elapsed());
    }
    let mut latest = Duration::ZERO;
    for task in slow {
        let (closed, at) = task.await.unwrap();
        assert!(
            closed,
            "a trickling client was still connected after {at:?}"
        );
        // Trickling does not extend the deadline: cut at the header timeout, not later.
        assert!(at < header_timeout + BOUND, "{at:?}");
        latest = latest.max(at);
    }
    println!(
        "50 trickling clients all disconnected {latest:?} after they started (header timeout {header_timeout:?})"
    );
    assert!(
        latest >= header_timeout / 2,
        "cut off too early: {latest:?}"
    );
    // And the server still answers.
    assert_eq!(server.get("/v1/status").await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn one_address_cannot_hold_more_than_its_share_of_connections() {
    let server = start(
        ApiConfig {
            max_connections: 64,
            max_connections_per_client: 4,
            header_timeout_ms: 10_000,
            ..config()
        },
        false,
    )
    .await;
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(TcpStream::connect(server.addr).await.unwrap());
    }
    // The fifth from the same address is closed at once, long before the header timeout.
    let fifth = TcpStream::connect(server.addr).await.unwrap();
    let mut buf = [0u8; 64];
    let r = tokio::time::timeout(Duration::from_secs(5), read_some(&fifth, &mut buf)).await;
    assert!(
        r.is_ok(),
        "the connection over the per-client cap was left open"
    );
    // One idle connection goes away: its place is free again at once.
    drop(idle.pop());
    let t = Instant::now();
    let a = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let a = server.get("/v1/status").await;
            if a.status == 200 {
                return a;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("a place freed by a closed connection is given to the next one");
    assert_eq!(a.status, 200);
    println!("served {:?} after an idle connection closed", t.elapsed());
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_connections_at_the_cap_do_not_lock_out_new_clients() {
    let cap = 8;
    let server = start(
        ApiConfig {
            max_connections: cap,
            ..config()
        },
        false,
    )
    .await;
    // Three times the cap of sockets that connect and never send a byte.
    let mut idle = Vec::new();
    for _ in 0..3 * cap {
        idle.push(TcpStream::connect(server.addr).await.unwrap());
    }
    let t = Instant::now();
    let a = tokio::time::timeout(Duration::from_secs(30), server.get("/v1/status"))
        .await
        .expect("a new client is served once the idle ones time out");
    assert_eq!(a.status, 200, "{a:?}");
    let waited = t.elapsed();
    println!(
        "a new client behind {} idle connections (cap {cap}) was served after {waited:?}",
        3 * cap
    );
    // It was queued behind the cap, so the idle ones did hold it until they timed out.
    assert!(waited >= Duration::from_millis(500), "{waited:?}");
    // Every idle socket has been closed by the server.
    for s in idle {
        let mut buf = [0u8; 64];
        let r = tokio::time::timeout(BOUND, read_some(&s, &mut buf)).await;
        // EOF or a reset (or hyper's last words before either), not a timeout.
        assert!(r.is_ok(), "an idle connection is still open");
    }
    // With the idle ones gone, requests are served at once again.
    for _ in 0..20 {
        assert_eq!(server.get("/v1/status").await.status, 200);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bodies_over_the_limit_get_413_with_a_json_error() {
    let server = start(config(), true).await;
    let limit = config().body_limit;
    // Declared too large: refused before the body is read.
    let body = format!(r#"{{"url": "{}"}}"#, "a".repeat(limit + 10));
    let a = server
        .raw(
            format!(
                "POST /v1/crawl HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .await;
    let v = assert_error(&a, 413, "too_large");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&limit.to_string()),
        "{v}"
    );
    // A declared 10 GB that never comes is refused at once too.
    let a = server
        .raw(b"POST /v1/crawl HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 10000000000\r\nConnection: close\r\n\r\n{")
        .await;
    assert_error(&a, 413, "too_large");
    // Chunked, so no length is declared: refused once the limit is crossed.
    let mut chunked = String::new();
    for part in [r#"{"url": ""#, &"a".repeat(limit), r#""}"#] {
        chunked.push_str(&format!("{:x}\r\n{part}\r\n", part.len()));
    }
    chunked.push_str("0\r\n\r\n");
    let a = server
        .raw(format!("POST /v1/crawl HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{chunked}").as_bytes())
        .await;
    assert_error(&a, 413, "too_large");
    // The hosting signup has its own, smaller limit (4 KiB), under the global one.
    let body = format!(r#"{{"archive": "{}"}}"#, "a".repeat(8 * 1024));
    let a = server
        .raw(
            format!(
                "POST /v1/hosting/signup HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .await;
    assert_error(&a, 413, "too_large");
    // A body within the limit is still fine.
    let body = format!(r#"{{"url": "hyper://{}/"}}"#, KeyPair::generate().public());
    let a = server
        .raw(
            format!(
                "POST /v1/crawl HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .await;
    assert_eq!(a.status, 202, "{a:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_rate_limit_answers_429_with_retry_after_then_serves_again() {
    let server = start(
        ApiConfig {
            rate_per_sec: 2.0,
            burst: 5.0,
            ..config()
        },
        false,
    )
    .await;
    for i in 0..5 {
        let a = server.get("/v1/status").await;
        assert_eq!(a.status, 200, "request {i} of the burst: {a:?}");
    }
    let a = server.get("/v1/status").await;
    let v = assert_error(&a, 429, "rate_limited");
    let retry: u64 = a
        .header("retry-after")
        .expect("a Retry-After header")
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "Retry-After: {retry}");
    println!("429 after the burst: Retry-After {retry}; {v}");
    // Errors are limited too: a flood of bad requests does not get around it.
    assert_eq!(server.get("/v1/nothing").await.status, 429);
    // After Retry-After the client is served again.
    let deadline = Instant::now() + Duration::from_secs(retry) + BOUND;
    tokio::time::sleep(Duration::from_secs(retry)).await;
    loop {
        let a = server.get("/v1/status").await;
        if a.status == 200 {
            break;
        }
        assert_eq!(a.status, 429, "{a:?}");
        assert!(Instant::now() < deadline, "never served again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_that_runs_too_long_gets_the_timeout_answer() {
    let server = start(
        ApiConfig {
            request_timeout_ms: 1000,
            ..config()
        },
        false,
    )
    .await;
    // The head arrives at once (so the header timeout is no help), the body never completes.
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    write_all(&s, b"POST /v1/crawl HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{\"url\": ")
        .await
        .unwrap();
    let t = Instant::now();
    // Others are served meanwhile.
    assert_eq!(server.get("/v1/status").await.status, 200);
    let a = read_answer(&mut s).await;
    let took = t.elapsed();
    let v = assert_error(&a, 503, "timeout");
    println!("a stalled request was answered after {took:?}: {v}");
    assert!(took >= Duration::from_millis(900), "{took:?}");
}

/// A connection to `to` from the loopback address `from` (all of 127.0.0.0/8 is this machine),
/// so one test can be both a reverse proxy and a client that is not one.
async fn connect_from(from: [u8; 4], to: SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((from, 0))).unwrap();
    socket.connect(to).await.unwrap()
}

/// `GET /v1/status` from `from`, with an `X-Forwarded-For` header if `xff` is not empty.
async fn status_from(server: &Server, from: [u8; 4], xff: &str) -> u16 {
    let mut s = connect_from(from, server.addr).await;
    let xff = if xff.is_empty() {
        String::new()
    } else {
        format!("X-Forwarded-For: {xff}\r\n")
    };
    let req = format!("GET /v1/status HTTP/1.1\r\nHost: t\r\n{xff}Connection: close\r\n\r\n");
    write_all(&s, req.as_bytes()).await.unwrap();
    read_answer(&mut s).await.status
}

#[tokio::test(flavor = "multi_thread")]
async fn behind_a_trusted_proxy_clients_are_limited_one_by_one_and_others_cannot_forge() {
    const PROXY: [u8; 4] = [127, 0, 0, 2];
    const DIRECT: [u8; 4] = [127, 0, 0, 1];
    let proxied = |api: ApiConfig| ApiConfig {
        trusted_proxies: vec!["127.0.0.2".parse().unwrap()],
        ..api
    };
    let server = start(
        proxied(ApiConfig {
            rate_per_sec: 0.0,
            burst: 2.0,
            ..config()
        }),
        false,
    )
    .await;
    // Through the proxy, each client has its own bucket: A's burst is spent, B's is not.
    assert_eq!(status_from(&server, PROXY, "198.51.100.1").await, 200);
    assert_eq!(status_from(&server, PROXY, "198.51.100.1").await, 200);
    assert_eq!(status_from(&server, PROXY, "198.51.100.1").await, 429);
    // Entries a client wrote itself (left of what the proxy appended) change nothing.
    assert_eq!(
        status_from(&server, PROXY, "198.51.100.2, 198.51.100.1").await,
        429
    );
    assert_eq!(
        status_from(&server, PROXY, "198.51.100.1, 198.51.100.2").await,
        200
    );
    // The proxy itself is no client: its own requests count apart from its clients'.
    assert_eq!(status_from(&server, PROXY, "").await, 200);
    // Anyone else's header is ignored: a new address per request does not get around the limit.
    assert_eq!(status_from(&server, DIRECT, "203.0.113.1").await, 200);
    assert_eq!(status_from(&server, DIRECT, "203.0.113.2").await, 200);
    assert_eq!(status_from(&server, DIRECT, "203.0.113.3").await, 429);

    // The per-address connection cap (2) holds for the direct client: a third is closed at once.
    // (A server of its own: a connection just answered may still count for a moment.)
    let server = start(
        proxied(ApiConfig {
            max_connections_per_client: 2,
            header_timeout_ms: 10_000,
            ..config()
        }),
        false,
    )
    .await;
    let mut idle = vec![
        connect_from(DIRECT, server.addr).await,
        connect_from(DIRECT, server.addr).await,
    ];
    let third = connect_from(DIRECT, server.addr).await;
    let mut buf = [0u8; 64];
    let r = tokio::time::timeout(BOUND, read_some(&third, &mut buf)).await;
    assert!(r.is_ok(), "a third direct connection was left open");
    // The proxy carries many clients: it holds more than the cap, and is still served.
    for _ in 0..6 {
        idle.push(connect_from(PROXY, server.addr).await);
    }
    // (Were it held to the cap, this connection would be closed unanswered: status 0.)
    assert_eq!(status_from(&server, PROXY, "198.51.100.3").await, 200);
    drop(idle);
}

/// What a hostile request must get.
enum Expect {
    /// 200 with JSON.
    Answer,
    /// 200 with no hits.
    Empty,
    /// A 4xx JSON error naming this parameter.
    Param(&'static str),
    /// A 4xx JSON error with this code.
    Code(u16, &'static str),
    /// A 4xx from hyper itself, before the router (no body): the head is over the limit.
    Refused,
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_queries_get_a_4xx_naming_the_parameter_or_an_answer_in_bounded_time() {
    let mut server = start(config(), false).await;
    let alice = server.writer(&["hello #world", "second post #world"]);
    let weak = format!("01{}", "00".repeat(31));
    let key = alice.to_hex();
    let deep_parens = "(".repeat(3000) + "a" + &")".repeat(3000);
    let deep_short = "(".repeat(100) + "a" + &")".repeat(100);
    let quotes = "\"(".repeat(200);
    let terms_long = "a ".repeat(5000);
    let terms_short = "a ".repeat(100);
    let many_params: String = (0..5000).map(|i| format!("p{i}=1&")).collect();
    let forty_params: String = (0..40).map(|i| format!("p{i}=1&")).collect();
    let cases: Vec<(String, Expect)> = vec![
        // The query text: size, nesting, terms, bytes.
        (
            format!("/v1/search?q={}", "a".repeat(60_000)),
            Expect::Param("q"),
        ),
        (
            format!("/v1/search?q={}", enc(&deep_parens)),
            Expect::Param("q"),
        ),
        (
            format!("/v1/search?q={}", enc(&deep_short)),
            Expect::Param("q"),
        ),
        (format!("/v1/search?q={}", enc(&quotes)), Expect::Param("q")),
        (
            format!("/v1/search?q={}", enc(&terms_long)),
            Expect::Param("q"),
        ),
        (
            format!("/v1/search?q={}", enc(&terms_short)),
            Expect::Param("q"),
        ),
        ("/v1/search?q=%00%01%02%1F%7F".into(), Expect::Param("q")),
        ("/v1/search?q=hello%00world".into(), Expect::Param("q")),
        ("/v1/search?q=%FF%FE%C0%AF".into(), Expect::Answer),
        ("/v1/search?q=%E2%82".into(), Expect::Answer),
        ("/v1/search?q=%ZZ%".into(), Expect::Answer),
        ("/v1/search?q=*:*%20title:x^10~2".into(), Expect::Answer),
        ("/v1/search?q=%22unclosed".into(), Expect::Param("q")),
        // Numbers: page size, cursors, times.
        (
            "/v1/search?limit=99999999999999999999999999".into(),
            Expect::Param("limit"),
        ),
        ("/v1/search?limit=-1".into(), Expect::Param("limit")),
        ("/v1/search?limit=0".into(), Expect::Param("limit")),
        ("/v1/search?limit=1e3".into(), Expect::Param("limit")),
        (
            "/v1/search?cursor=99999999999999999999999.99999999999999999999999".into(),
            Expect::Param("cursor"),
        ),
        (
            "/v1/search?cursor=-9223372036854775808.0".into(),
            Expect::Answer,
        ),
        (
            "/v1/search?cursor=9223372036854775807.18446744073709551615".into(),
            Expect::Answer,
        ),
        (
            "/v1/search?sort=top&cursor=18446744073709551615".into(),
            Expect::Param("cursor"),
        ),
        (
            "/v1/search?sort=top&cursor=-1".into(),
            Expect::Param("cursor"),
        ),
        ("/v1/search?since=-1".into(), Expect::Param("since")),
        (
            "/v1/search?since=-9223372036854775808".into(),
            Expect::Param("since"),
        ),
        (
            "/v1/search?until=99999999999999999999999".into(),
            Expect::Param("until"),
        ),
        (
            "/v1/search?until=9223372036854775807".into(),
            Expect::Param("until"),
        ),
        (
            "/v1/search?since=0000-01-01T00:00:00Z".into(),
            Expect::Answer,
        ),
        (
            "/v1/search?until=9999-12-31T23:59:59.999999999Z".into(),
            Expect::Answer,
        ),
        (
            "/v1/search?since=2024-01-02T00:00:00Z&until=2024-01-01T00:00:00Z".into(),
            Expect::Empty,
        ),
        ("/v1/search?since=1&until=1".into(), Expect::Empty),
        (
            format!("/v1/archives/{key}/followers?cursor=18446744073709551616"),
            Expect::Param("cursor"),
        ),
        // Parameters: unknown, repeated, too many.
        ("/v1/search?nonsense=1".into(), Expect::Param("nonsense")),
        ("/v1/search?limit=1&limit=2".into(), Expect::Param("limit")),
        ("/v1/search?q=a&q=b".into(), Expect::Param("q")),
        (format!("/v1/search?{forty_params}"), Expect::Param("query")),
        (format!("/v1/search?{many_params}"), Expect::Param("query")),
        (
            format!("/v1/status?x={}", "y".repeat(2000)),
            Expect::Param("x"),
        ),
        // Keys.
        ("/v1/mentions/zz".into(), Expect::Param("key")),
        ("/v1/mentions/%FF%FE".into(), Expect::Param("key")),
        (format!("/v1/mentions/{weak}"), Expect::Param("key")),
        (
            format!("/v1/mentions/{}", "a".repeat(5000)),
            Expect::Param("key"),
        ),
        (
            "/v1/archives/..%2F..%2Fetc%2Fpasswd".into(),
            Expect::Param("key"),
        ),
        (format!("/v1/search?author={weak}"), Expect::Param("author")),
        (
            "/v1/search?mention=hyper://nope/".into(),
            Expect::Param("mention"),
        ),
        (format!("/v1/mentions/{key}"), Expect::Answer),
        // Tags and languages.
        ("/v1/search?tag=%23".into(), Expect::Param("tag")),
        (
            format!("/v1/search?tag={}", "a".repeat(100)),
            Expect::Param("tag"),
        ),
        ("/v1/search?tag=a%00b".into(), Expect::Param("tag")),
        (
            format!("/v1/search?lang={}", "x".repeat(40)),
            Expect::Param("lang"),
        ),
        // Windows, scopes and viewers.
        ("/v1/trending?window=0h".into(), Expect::Param("window")),
        ("/v1/trending?window=".into(), Expect::Param("window")),
        ("/v1/search?scope=everyone".into(), Expect::Param("scope")),
        ("/v1/search?scope=follows".into(), Expect::Param("viewer")),
        (
            "/v1/trending?scope=hops2&viewer=xyz".into(),
            Expect::Param("viewer"),
        ),
        (
            format!("/v1/mentions/{key}?scope=follows&viewer={weak}"),
            Expect::Param("viewer"),
        ),
        (
            format!("/v1/search?scope=hops2&viewer={key}"),
            Expect::Answer,
        ),
        (format!("/v1/search?viewer={key}"), Expect::Answer),
        ("/v1/search?viewer=xyz".into(), Expect::Param("viewer")),
        (
            "/v1/search?scope=all&viewer=".into(),
            Expect::Param("viewer"),
        ),
        // Threads and streams.
        (
            "/v1/thread?uri=hyper://%00/statuses/x.json".into(),
            Expect::Param("uri"),
        ),
        (
            format!("/v1/thread?uri={}", "h".repeat(900)),
            Expect::Param("uri"),
        ),
        (
            "/v1/stream?cursor=18446744073709551616".into(),
            Expect::Param("cursor"),
        ),
        ("/v1/stream?cursor=-1".into(), Expect::Param("cursor")),
        // The rest of the request: methods, paths, heads.
        ("/v1/nothing".into(), Expect::Code(404, "not_found")),
        (
            format!("/{}", "a/".repeat(20_000)),
            Expect::Code(404, "not_found"),
        ),
        (
            format!("/v1/search?q={}", "a".repeat(70_000)),
            Expect::Refused,
        ),
    ];
    let mut times = Vec::new();
    for (target, expect) in &cases {
        let t = Instant::now();
        let a = server.get(target).await;
        let took = t.elapsed();
        check(target, expect, &a);
        times.push((took, target.chars().take(70).collect::<String>()));
    }
    // Requests whose hostility is in the head or the method rather than the target.
    let big_id = "9".repeat(10_000);
    let heads: Vec<(String, Expect)> = vec![
        (
            format!("GET /v1/stream HTTP/1.1\r\nHost: t\r\nLast-Event-ID: {big_id}\r\nConnection: close\r\n\r\n"),
            Expect::Param("Last-Event-ID"),
        ),
        (
            "GET /v1/stream HTTP/1.1\r\nHost: t\r\nLast-Event-ID: 18446744073709551616\r\nConnection: close\r\n\r\n".into(),
            Expect::Param("Last-Event-ID"),
        ),
        (
            // A control byte in a header value: hyper refuses the head itself.
            "GET /v1/stream HTTP/1.1\r\nHost: t\r\nLast-Event-ID: \u{1}abc\r\nConnection: close\r\n\r\n".into(),
            Expect::Refused,
        ),
        (
            format!("GET /v1/stream HTTP/1.1\r\nHost: t\r\nLast-Event-ID: {}\r\nConnection: close\r\n\r\n", "9".repeat(100_000)),
            Expect::Refused,
        ),
        (
            format!("GET /v1/status HTTP/1.1\r\nHost: t\r\n{}Connection: close\r\n\r\n", "X-A: b\r\n".repeat(200)),
            Expect::Refused,
        ),
        (
            "DELETE /v1/search HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".into(),
            Expect::Code(405, "method_not_allowed"),
        ),
        (
            "POST /v1/crawl HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 5\r\nConnection: close\r\n\r\n[[[[[".into(),
            Expect::Param("body"),
        ),
        (
            format!("POST /v1/crawl HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 4000\r\nConnection: close\r\n\r\n{}", "[".repeat(4000)),
            Expect::Param("body"),
        ),
        (
            "POST /v1/crawl HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}".into(),
            Expect::Param("body"),
        ),
    ];
    for (i, (raw, expect)) in heads.iter().enumerate() {
        let t = Instant::now();
        let a = server.raw(raw.as_bytes()).await;
        let took = t.elapsed();
        let first = raw.lines().next().unwrap_or_default();
        let name = format!("head case {i}: {first}");
        check(&name, expect, &a);
        times.push((took, format!("{name} [{} byte request]", raw.len())));
    }
    let total = times.len();
    assert!(total >= 20);
    times.sort();
    println!("{total} hostile requests, slowest first:");
    for (took, what) in times.iter().rev().take(10) {
        println!("  {took:>12.3?}  {what}");
    }
    let (max, what) = times.last().unwrap();
    println!("max time per hostile request: {max:?} ({what})");
    assert!(*max < BOUND, "{what} took {max:?}");
    // The server is unharmed.
    let a = server.get("/v1/search?tag=world").await;
    assert_eq!(a.json()["hits"].as_array().unwrap().len(), 2, "{a:?}");
}

#[track_caller]
fn check(what: &str, expect: &Expect, a: &Answer) {
    let v = a.json();
    match expect {
        Expect::Answer => {
            assert_eq!(a.status, 200, "{what}: {a:?}");
            assert!(v.is_object(), "{what}: {a:?}");
        }
        Expect::Empty => {
            assert_eq!(a.status, 200, "{what}: {a:?}");
            assert_eq!(v["hits"].as_array().map(Vec::len), Some(0), "{what}: {a:?}");
        }
        Expect::Param(p) => {
            assert!((400..500).contains(&a.status), "{what}: {a:?}");
            assert_eq!(v["error"]["param"], *p, "{what}: {a:?}");
            assert!(v["error"]["message"].is_string(), "{what}: {v}");
        }
        Expect::Code(status, code) => {
            assert_eq!(a.status, *status, "{what}: {a:?}");
            assert_eq!(v["error"]["code"], *code, "{what}: {v}");
        }
        Expect::Refused => {
            assert!(
                [400, 414, 431].contains(&a.status),
                "{what}: expected hyper to refuse the head, got {a:?}"
            );
        }
    }
}

/// Percent-encodes everything but ASCII letters and digits.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
