//! `fritter-crawler` end to end: real `fritter` processes write and serve archives
//! (`fritter sync`), the real crawler replicates them over TCP, indexes them, and answers over
//! HTTP on 127.0.0.1; and a crawler killed with SIGKILL while ingesting loses and duplicates
//! nothing when it restarts.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::time::{Duration, Instant};

use fritter_common::crypto::KeyPair;
use fritter_common::model::{File, Status, StatusId, Timestamp};
use fritter_common::store::Store;
use fritter_tests::{CrawlerProcess, Fritter};
use serde_json::Value;

const OFFLINE: [&str; 2] = ["--no-dht", "--no-mdns"];

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(30)))
        .http_status_as_error(false)
        .build()
        .into()
}

pub(crate) fn get(c: &CrawlerProcess, path: &str) -> (u16, Value) {
    let mut res = agent()
        .get(format!("{}{path}", c.base))
        .call()
        .expect("the crawler answers");
    let status = res.status().as_u16();
    let text = res.body_mut().read_to_string().expect("a body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

pub(crate) fn ok(c: &CrawlerProcess, path: &str) -> Value {
    let (s, v) = get(c, path);
    assert_eq!(s, 200, "{path}: {v}");
    v
}

/// Polls `path` until `cond` holds on the answer.
#[track_caller]
pub(crate) fn wait_for(
    c: &CrawlerProcess,
    path: &str,
    secs: u64,
    cond: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let v = ok(c, path);
        if cond(&v) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{path} never satisfied the test: {v}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn hits(v: &Value) -> usize {
    v["hits"].as_array().map_or(0, Vec::len)
}

pub(crate) fn listening_addr(stderr: &str) -> Option<String> {
    let line = stderr.lines().find(|l| l.contains("listening on "))?;
    Some(line.rsplit("listening on ").next()?.trim().to_owned())
}

#[test]
fn crawler_replicates_real_archives_and_answers_over_http() {
    let alice = Fritter::new();
    let alice_url = alice.init("Alice");
    let bob = Fritter::new();
    bob.init("Bob");
    // Alice follows Bob (so @Bob resolves); Bob holds Alice's archive to reply to her.
    alice.hold_copy_of(&bob);
    alice.json(["follow", &bob.key()]);
    let root = alice.json(["post", "Hello #fritter, this is @Bob"])["url"]
        .as_str()
        .expect("url")
        .to_owned();
    bob.hold_copy_of(&alice);
    let reply = bob.json(["reply", &root, "Welcome to #fritter"])["url"]
        .as_str()
        .expect("url")
        .to_owned();

    // Alice runs `fritter serve` (so she can keep posting through it), Bob `fritter sync`.
    let alice_addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        l.local_addr().expect("address").to_string()
    };
    let mut alice_node = alice.start([
        "serve",
        "--http",
        "127.0.0.1:0",
        "--listen",
        &alice_addr,
        OFFLINE[0],
        OFFLINE[1],
    ]);
    alice_node.wait_until(60, "fritter serve to start", |_| {
        alice.data_dir().join("serve.json").exists()
    });
    let mut bob_node = bob.start(["sync", "--listen", "127.0.0.1:0", OFFLINE[0], OFFLINE[1]]);
    bob_node.wait_until(30, "the node to listen", |d| {
        listening_addr(&d.stderr()).is_some()
    });
    let peers = [
        alice_addr,
        listening_addr(&bob_node.stderr()).expect("address"),
    ];
    let nodes = (alice_node, bob_node);

    // The crawler is told of Alice only; Bob is found through her follows and mention.
    let data = tempfile::tempdir().expect("temp dir");
    let mut crawler = CrawlerProcess::start(
        data.path(),
        [
            "--peer", &peers[0], "--peer", &peers[1], "--seed", &alice_url,
        ],
    );
    let found = wait_for(&crawler, "/v1/search?tag=fritter", 90, |v| hits(v) == 2);
    for h in found["hits"].as_array().expect("hits") {
        assert!(h["seq"].is_u64() && h["hash"].as_str().is_some_and(|s| s.len() == 64));
    }
    assert!(found["coverage"]["asOf"].is_string(), "{found}");

    let mentions = ok(&crawler, &format!("/v1/mentions/{}", bob.key()));
    assert_eq!(mentions["hits"][0]["uri"], root.as_str(), "{mentions}");

    let thread = ok(&crawler, &format!("/v1/thread?uri={reply}"));
    assert_eq!(thread["thread"]["uri"], root.as_str());
    assert_eq!(
        thread["thread"]["replies"][0]["uri"],
        reply.as_str(),
        "{thread}"
    );

    let trending = ok(&crawler, "/v1/trending?window=1h");
    assert_eq!(trending["trends"][0]["tag"], "fritter", "{trending}");
    assert_eq!(trending["trends"][0]["authors"], 2);

    let archive = ok(&crawler, &format!("/v1/archives/{}", alice.key()));
    assert_eq!(archive["profile"]["profile"]["name"], "Alice");
    let followers = ok(&crawler, &format!("/v1/archives/{}/followers", bob.key()));
    assert_eq!(followers["followers"][0], alice.key().as_str());

    // A live subscriber, then a new post while everything runs.
    let addr = crawler.base.trim_start_matches("http://").to_owned();
    let mut sse = std::net::TcpStream::connect(&addr).expect("connect");
    sse.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    write!(
        sse,
        "GET /v1/stream?tag=live HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n"
    )
    .expect("request");
    let mut lines = BufReader::new(sse.try_clone().expect("clone"));
    let mut head = String::new();
    lines.read_line(&mut head).expect("status line");
    assert!(head.contains("200"), "{head}");

    let posted = alice.run(["post", "Breaking #live news"]).success();
    drop(posted);
    let mut line = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        line.clear();
        lines.read_line(&mut line).expect("an event");
        if line.starts_with("data:") && line.contains("Breaking #live news") {
            break;
        }
        assert!(Instant::now() < deadline, "the live post never streamed");
    }
    wait_for(&crawler, "/v1/search?q=breaking", 30, |v| hits(v) == 1);

    // The status endpoint accounts for both archives; a clean stop exits 0.
    let status = ok(&crawler, "/v1/status");
    assert_eq!(status["archives"], 2, "{status}");
    assert_eq!(crawler.stop(), Some(0));
    drop(nodes);
}

/// Writes an archive of `n` statuses tagged `#bulk` straight into `data/archives/<key>`.
fn bulk_archive(data: &std::path::Path, n: usize) -> String {
    let writer = tempfile::tempdir().expect("temp dir");
    let store = Store::new(writer.path());
    store.save_identity(&KeyPair::generate()).expect("identity");
    let key = fritter_tests::holding_locks(|| {
        let own = store.open_own().expect("open");
        for i in 0..n {
            let mut status = Status::new(format!("bulk post {i} #bulk"), Timestamp::now());
            status.tags = vec!["bulk".into()];
            own.put_file(&File::Status {
                id: StatusId::from_parts(1_700_000_000_000_000 + i as u64, 0).expect("id"),
                status,
            })
            .expect("put");
        }
        own.key().to_hex()
    });
    let from = writer.path().join("archives").join(&key);
    let to = data.join("archives").join(&key);
    std::fs::create_dir_all(&to).expect("mkdir");
    for name in ["tree", "data", "bitfield"] {
        if from.join(name).exists() {
            std::fs::copy(from.join(name), to.join(name)).expect("copy");
        }
    }
    key
}

#[test]
fn kill_9_during_ingest_then_restart_loses_and_duplicates_nothing() {
    let data = tempfile::tempdir().expect("temp dir");
    let keys = [
        bulk_archive(data.path(), 1500),
        bulk_archive(data.path(), 700),
    ];
    // Tiny turns and frequent commits, so that kills land mid-ingest.
    let config = data.path().join("crawler.json");
    std::fs::write(
        &config,
        r#"{"ingest": {"batch_entries": 10, "turn_time_ms": 2, "commit_interval_ms": 5}}"#,
    )
    .expect("config");
    let config = config.to_str().expect("utf-8").to_owned();
    let mut cursors = Vec::new();
    for round in 0..4 {
        let mut c = CrawlerProcess::start(data.path(), ["--config", &config]);
        // Wait for some progress past the previous round's, then crash.
        let before = cursors.last().copied().unwrap_or(0);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let s = ok(&c, "/v1/status");
            let cur = s["index"]["cursor"].as_u64().unwrap_or(0);
            if cur > before || s["lagging"] == 0 {
                cursors.push(cur);
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no progress in round {round}: {s}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(20 * round));
        c.kill9();
    }
    let c = CrawlerProcess::start(data.path(), ["--config", &config]);
    wait_for(&c, "/v1/status", 120, |s| {
        s["archives"] == 2 && s["synced"] == 2
    });
    let mut seen = HashSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(cur) => format!("/v1/search?tag=bulk&limit=100&cursor={cur}"),
            None => "/v1/search?tag=bulk&limit=100".to_owned(),
        };
        let page = ok(&c, &path);
        for h in page["hits"].as_array().expect("hits") {
            let uri = h["uri"].as_str().expect("uri").to_owned();
            assert!(seen.insert(uri.clone()), "{uri} came twice");
        }
        match page["cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 2200, "every status exactly once");
    for (key, n) in keys.iter().zip([1500, 700]) {
        let a = ok(&c, &format!("/v1/archives/{key}"));
        assert_eq!(a["statuses"], n, "{a}");
        assert_eq!(a["checkpoint"]["next"], n as u64, "{a}");
    }
    // The round that made progress saw more each time: the checkpoints survived the kills.
    assert!(cursors.windows(2).all(|w| w[0] <= w[1]), "{cursors:?}");
}

/// With `RUST_LOG=info` (what `--help` suggests, and what [`Daemon`] sets) the crawler shows
/// its own progress but not a line per replication protocol message: those stay at debug.
#[test]
fn info_logs_show_progress_without_a_line_per_protocol_message() {
    let alice = Fritter::new();
    let alice_url = alice.init("Alice");
    for i in 0..20 {
        alice.run(["post", &format!("post {i} #logs")]).success();
    }
    let mut node = alice.start(["sync", "--listen", "127.0.0.1:0", OFFLINE[0], OFFLINE[1]]);
    node.wait_until(30, "the node to listen", |d| {
        listening_addr(&d.stderr()).is_some()
    });
    let peer = listening_addr(&node.stderr()).expect("address");
    let data = tempfile::tempdir().expect("temp dir");
    let crawler = CrawlerProcess::start(data.path(), ["--peer", &peer, "--seed", &alice_url]);
    wait_for(&crawler, "/v1/search?tag=logs&limit=50", 90, |v| {
        hits(v) == 20
    });
    let log = crawler.stderr();
    // The crawler's own progress is there...
    assert!(log.contains("archive files open at once"), "{log}");
    // ...and 20 statuses replicated without one protocol line.
    let protocol: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("hypercore_protocol"))
        .take(5)
        .collect();
    assert!(
        protocol.is_empty(),
        "per-message lines at info: {protocol:#?}"
    );
    drop(node);
}

/// Hosting with no `[hosting] host` while HTTP binds every interface: proofs would have to name
/// `0.0.0.0:PORT`, so every signup would be refused. The operator is told at start.
#[test]
fn hosting_without_a_host_name_on_a_wildcard_address_warns_at_start() {
    let data = tempfile::tempdir().expect("temp dir");
    let start = |name: &str, config: &str| {
        let path = data.path().join(format!("{name}.toml"));
        std::fs::write(&path, config).expect("config");
        let mut cmd = std::process::Command::new(fritter_tests::crawler_bin());
        cmd.arg("--data-dir")
            .arg(data.path().join(name))
            .arg("--config")
            .arg(&path)
            .args(["--http", "0.0.0.0:0", "--listen", "127.0.0.1:0"])
            .args(OFFLINE)
            .env_remove("FRITTER_CRAWLER_DATA_DIR");
        let mut d = fritter_tests::Daemon::start(cmd);
        d.wait_until(60, "the crawler to serve", |d| {
            d.stdout().contains("hosting service for")
        });
        d
    };
    let unnamed = start("unnamed", "[hosting]\nenabled = true\n");
    let log = unnamed.stderr();
    let warning = log
        .lines()
        .find(|l| l.contains("WARN") && l.contains("[hosting] host is not set"))
        .unwrap_or_else(|| panic!("no warning on stderr:\n{log}"));
    assert!(
        warning.contains("0.0.0.0:") && warning.contains("signup will be refused"),
        "{warning}"
    );
    let named = start(
        "named",
        "[hosting]\nenabled = true\nhost = \"fritter.example.org\"\n",
    );
    assert!(
        !named.stderr().contains("[hosting] host"),
        "{}",
        named.stderr()
    );
}
