//! `fritter serve` end to end: real servers on 127.0.0.1, each with its own data directory,
//! replicating with each other over TCP. The CLI acting through a running server, the write
//! protection (token, Origin, Host), live updates over server-sent events, and followed archives
//! full of hostile entries.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fritter_common::crypto::PublicKey;
use fritter_common::store::Store;
use fritter_tests::{fritter_bin, holding_locks, spawn, Fritter};
use serde_json::{json, Value};

/// A running `fritter serve`, stopped on drop; its stderr is shown if the test fails.
pub(crate) struct Serve {
    child: Child,
    pub url: String,
    pub token: String,
    /// Where it accepts peers.
    pub peer_addr: String,
    log: tempfile::NamedTempFile,
}

/// A port free right now on 127.0.0.1.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Serve {
    /// Starts `fritter serve` on `f`'s data directory (DHT and mDNS off), replicating with
    /// `peers`, and waits until it serves.
    pub(crate) fn start(f: &Fritter, peers: &[&str], extra: &[&str]) -> Serve {
        let mut serve = Serve::launch(f, peers, extra);
        serve.read_token(f);
        // It serves at once and opens the archives behind: wait for that too.
        serve.wait_for("/api/me", "the node to start", |me| me["starting"] != true);
        serve
    }

    /// The write token from `serve.json`.
    pub(crate) fn read_token(&mut self, f: &Fritter) {
        let info: Value = serde_json::from_str(
            &std::fs::read_to_string(f.data_dir().join("serve.json")).expect("serve.json"),
        )
        .expect("serve.json is JSON");
        self.token = info["token"].as_str().expect("a token").to_owned();
    }

    /// Starts `fritter serve` and returns once it printed where it serves (its node may not be
    /// live yet, and its token is not read).
    pub(crate) fn launch(f: &Fritter, peers: &[&str], extra: &[&str]) -> Serve {
        let log = tempfile::NamedTempFile::new().expect("a log file");
        let peer_addr = format!("127.0.0.1:{}", free_port());
        let mut cmd = Command::new(fritter_bin());
        cmd.arg("--data-dir")
            .arg(f.data_dir())
            .args([
                "--json",
                "serve",
                "--http",
                "127.0.0.1:0",
                "--no-dht",
                "--no-mdns",
            ])
            .args(["--listen", &peer_addr])
            .args(peers.iter().flat_map(|p| ["--peer", p]))
            .args(extra)
            .env_remove("FRITTER_DATA_DIR")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log.reopen().expect("reopen the log"));
        let mut child = spawn(&mut cmd).expect("start fritter serve");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let mut serve = Serve {
            child,
            url: String::new(),
            token: String::new(),
            peer_addr,
            log,
        };
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| serve.fail("fritter serve did not start within 60 s"));
        let started: Value = serde_json::from_str(&line)
            .unwrap_or_else(|_| serve.fail(&format!("unexpected first line {line:?}")));
        serve.url = started["url"].as_str().expect("a url").to_owned();
        serve
    }

    #[track_caller]
    pub(crate) fn fail(&self, why: &str) -> ! {
        let log = std::fs::read_to_string(self.log.path()).unwrap_or_default();
        panic!("{why}\n--- fritter serve stderr:\n{log}");
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    fn agent() -> ureq::Agent {
        ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(30)))
            .http_status_as_error(false)
            .build()
            .into()
    }

    fn answer(res: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> (u16, Value) {
        let mut res = res.expect("the server answers");
        let status = res.status().as_u16();
        let text = res.body_mut().read_to_string().expect("a body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// `GET path`: status and JSON.
    pub(crate) fn get(&self, path: &str) -> (u16, Value) {
        Serve::answer(
            Serve::agent()
                .get(format!("{}{}", self.url, path.trim_start_matches('/')))
                .call(),
        )
    }

    /// `POST path` with the token, as the app page does.
    pub(crate) fn post(&self, path: &str, body: Value) -> Value {
        let (status, value) = self.post_with(path, body, &[("x-fritter-token", &self.token)]);
        if status != 200 {
            self.fail(&format!("POST {path} answered {status}: {value}"));
        }
        value
    }

    /// `POST path` with exactly the given headers.
    pub(crate) fn post_with(
        &self,
        path: &str,
        body: Value,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut req = Serve::agent().post(format!("{}{}", self.url, path.trim_start_matches('/')));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        Serve::answer(req.send_json(body))
    }

    /// Waits until `f` holds for the answer of `GET path`.
    pub(crate) fn wait_for(&self, path: &str, what: &str, f: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (status, value) = self.get(path);
            if status == 200 && f(&value) {
                return value;
            }
            if Instant::now() > deadline {
                self.fail(&format!(
                    "timed out waiting for {what}; last answer {status}: {value}"
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops with SIGTERM and waits for the exit (graceful shutdown).
    pub(crate) fn stop(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() > deadline {
                self.fail("fritter serve did not stop within 20 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.log.path()).unwrap_or_default();
            eprintln!("--- fritter serve ({}) stderr:\n{log}", self.url);
        }
    }
}

fn texts(feed: &Value) -> Vec<String> {
    feed["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["text"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn commands_act_through_a_running_serve() {
    let f = Fritter::new();
    let url = f.init("Ada");
    let serve = Serve::start(&f, &[], &[]);
    let mode = std::fs::metadata(f.data_dir().join("serve.json"))
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
        .expect("serve.json exists");
    assert_eq!(mode, 0o600, "serve.json holds the token: owner only");

    // Writes go through the server (the archive lock is the server's), printed as usual.
    f.run(["post", "Hello #fritter"])
        .success()
        .stdout_has("Posted hyper://");
    let posted = f.json(["post", "Second"]);
    assert_eq!(posted["status"]["text"], "Second");
    let status_url = posted["url"].as_str().expect("a url").to_owned();
    let liked = f.json(["like", &status_url]);
    assert_eq!(liked["alreadyLiked"], false);
    f.run(["profile", "--bio", "poet of science"])
        .success()
        .stdout_has("Bio:  poet of science");
    // Mistakes come back as the server's error, with the usual exit code.
    f.run(["follow", &url]).fails(1, "is your own archive");
    // Reads work as before.
    f.run(["show", "/profile.json"])
        .success()
        .stdout_has("poet of science");

    // `fritter feed` prints what the API shows.
    let feed = f.json(["feed", "--limit", "10"]);
    assert_eq!(texts(&feed), ["Second", "Hello #fritter"]);
    assert_eq!(feed["items"][0]["liked"], true);
    assert_eq!(feed["items"][0]["likes"], 1);
    let (_, api) = serve.get("/api/feed?limit=10");
    assert_eq!(feed["items"], api["items"]);
    // Paging with the cursor.
    let first = f.json(["feed", "--limit", "1"]);
    let next = first["next"].as_str().expect("a next cursor").to_owned();
    let second = f.json(["feed", "--limit", "1", "--cursor", &next]);
    assert_eq!(texts(&second), ["Hello #fritter"]);

    // Delete through the server: gone from the feed.
    f.json(["delete", &status_url]);
    assert_eq!(texts(&f.json(["feed"])), ["Hello #fritter"]);

    // Graceful stop removes serve.json; then the commands work on their own again.
    let status = serve.stop();
    assert!(status.success(), "{status}");
    assert!(!f.data_dir().join("serve.json").exists());
    f.run(["post", "Offline again"]).success();
    let local = f.json(["feed"]);
    assert_eq!(texts(&local), ["Offline again", "Hello #fritter"]);
}

#[test]
fn writes_need_the_token_and_this_origin() {
    let f = Fritter::new();
    f.init("Ada");
    let serve = Serve::start(&f, &[], &[]);
    let origin = serve.url.trim_end_matches('/').to_owned();
    let body = json!({"text": "forged"});
    for (headers, why) in [
        (vec![], "no token"),
        (vec![("x-fritter-token", "0".repeat(64))], "wrong token"),
        (
            vec![
                ("x-fritter-token", serve.token.clone()),
                ("origin", "https://evil.example".to_owned()),
            ],
            "another origin",
        ),
        (
            vec![
                ("x-fritter-token", serve.token.clone()),
                ("sec-fetch-site", "cross-site".to_owned()),
            ],
            "cross-site fetch",
        ),
        (
            vec![
                ("x-fritter-token", serve.token.clone()),
                ("host", "evil.example:80".to_owned()),
            ],
            "DNS rebinding",
        ),
    ] {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, value) = serve.post_with("/api/post", body.clone(), &headers);
        assert_eq!(status, 403, "{why}: {value}");
    }
    // A form post (no JSON) is refused even with the token.
    let (status, _) = {
        let res = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .new_agent()
            .post(format!("{}api/post", serve.url))
            .header("x-fritter-token", &serve.token)
            .content_type("application/x-www-form-urlencoded")
            .send("text=forged");
        let mut res = res.expect("an answer");
        (res.status().as_u16(), res.body_mut().read_to_string())
    };
    assert_eq!(status, 415);
    assert!(
        texts(&serve.get("/api/feed").1).is_empty(),
        "nothing was posted"
    );

    // The app's own page may write: its origin and the token it carries.
    let (status, page) = {
        let mut res = ureq::get(&serve.url).call().expect("the page");
        let csp = res
            .headers()
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(
            csp.contains("script-src 'self'") && csp.contains("default-src 'none'"),
            "{csp}"
        );
        (
            res.status().as_u16(),
            res.body_mut().read_to_string().expect("html"),
        )
    };
    assert_eq!(status, 200);
    assert!(page.contains(&format!("content=\"{}\"", serve.token)));
    let ok = serve.post_with(
        "/api/post",
        json!({"text": "<b>bold</b> & co"}),
        &[
            ("x-fritter-token", &serve.token),
            ("origin", &origin),
            ("sec-fetch-site", "same-origin"),
        ],
    );
    assert_eq!(ok.0, 200, "{}", ok.1);
    assert_eq!(texts(&serve.get("/api/feed").1), ["<b>bold</b> & co"]);
    // A DNS-rebinding page cannot even read.
    let res = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent()
        .get(format!("{}api/feed", serve.url))
        .header("host", "attacker.example")
        .call()
        .expect("an answer");
    assert_eq!(res.status().as_u16(), 403);
}

#[test]
fn first_run_asks_for_a_name() {
    let f = Fritter::new();
    let serve = Serve::start(&f, &[], &[]);
    let (_, me) = serve.get("/api/me");
    assert_eq!(me["setup"], true);
    let (status, _) = serve.get("/api/feed");
    assert_eq!(status, 409);
    let created = serve.post(
        "/api/identity",
        json!({"name": "  Grace ", "bio": "admiral"}),
    );
    assert_eq!(created["result"]["profile"]["name"], "Grace");
    let me = serve.wait_for("/api/me", "live", |v| v["setup"] == false);
    assert_eq!(me["name"], "Grace");
    let url = me["url"].as_str().expect("url").to_owned();
    // The CLI sees the same identity, and writes through the server.
    assert_eq!(f.json(["url"])["url"], url.as_str());
    f.run(["post", "from the terminal"]).success();
    assert_eq!(texts(&serve.get("/api/feed").1), ["from the terminal"]);
    let (status, again) = serve.post_with(
        "/api/identity",
        json!({"name": "Other"}),
        &[("x-fritter-token", &serve.token)],
    );
    assert_eq!(status, 409, "{again}");
}

/// Reads server-sent events from `url` until `done` holds for one (`event` name and data).
fn wait_event(url: &str, start: impl FnOnce(), done: impl Fn(&str, &Value) -> bool) -> Duration {
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let mut stream = TcpStream::connect(&addr).expect("connect for events");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    write!(
        stream,
        "GET /api/events HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n"
    )
    .expect("request");
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut event = String::new();
    let mut started = None;
    let mut start = Some(start);
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line).expect("events keep coming");
        assert!(n > 0, "the event stream ended");
        let l = line.trim_end();
        if let Some(name) = l.strip_prefix("event: ") {
            event = name.to_owned();
            if event == "hello" {
                if let Some(start) = start.take() {
                    start();
                    started = Some(Instant::now());
                }
            }
        } else if let Some(data) = l.strip_prefix("data: ") {
            let value: Value = serde_json::from_str(data).unwrap_or(Value::Null);
            if started.is_some() && done(&event, &value) {
                return started.map(|s| s.elapsed()).unwrap_or_default();
            }
        }
    }
}

#[test]
fn a_followed_post_arrives_live_and_replies_notify() {
    let (a, b) = (Fritter::new(), Fritter::new());
    let a_url = a.init("Ada");
    let b_url = b.init("Bob");
    let sa = Serve::start(&a, &[], &[]);
    let sb = Serve::start(&b, &[&sa.peer_addr], &[]);
    b.run(["follow", &a_url]).success();
    a.run(["follow", &b_url]).success();

    // B's open page is told of A's new status as soon as it replicates.
    let mut post_url = String::new();
    let elapsed = wait_event(
        &sb.url,
        || {
            let posted = a.json(["post", "Live from Ada"]);
            post_url = posted["url"].as_str().expect("url").to_owned();
        },
        |event, data| {
            event == "feed"
                && data["statuses"].as_array().is_some_and(|s| {
                    s.iter()
                        .any(|u| u.as_str().is_some_and(|u| u.starts_with(&a_url)))
                })
        },
    );
    eprintln!("post to event: {elapsed:?}");
    let feed = sb.wait_for("/api/feed", "A's post in B's feed", |f| {
        texts(f).contains(&"Live from Ada".to_owned())
    });
    assert_eq!(feed["items"][0]["author"]["name"], "Ada");
    assert_eq!(feed["items"][0]["author"]["followed"], true);

    // B replies (through its server); A is notified and sees the reply with its parent.
    let reply = b.json(["reply", &post_url, "Welcome, @Ada!"]);
    let reply_url = reply["url"].as_str().expect("url").to_owned();
    let notes = sa.wait_for("/api/notifications", "the reply notification", |n| {
        n["unread"].as_u64() >= Some(1)
    });
    assert_eq!(notes["items"][0]["reason"], "reply");
    assert_eq!(notes["items"][0]["from"]["name"], "Bob");
    assert_eq!(notes["items"][0]["status"]["url"], reply_url.as_str());
    assert_eq!(notes["items"][0]["subject"], post_url.as_str());
    let (_, me) = sa.get("/api/me");
    assert_eq!(me["unread"], 1);
    let feed_a = sa.wait_for("/api/feed", "the reply in A's feed", |f| {
        f["items"][0]["url"] == reply_url.as_str()
    });
    assert_eq!(
        feed_a["items"][0]["replyTo"]["item"]["text"],
        "Live from Ada"
    );
    assert_eq!(feed_a["items"][1]["replies"], 1);
    // The thread, from either end.
    let (_, thread) = sa.get(&format!("/api/thread?url={reply_url}"));
    let urls: Vec<&str> = thread["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|n| n["url"].as_str())
        .collect();
    assert_eq!(urls, [post_url.as_str(), reply_url.as_str()]);
    assert_eq!(thread["items"][1]["depth"], 1);
    assert_eq!(thread["items"][1]["focus"], true);
    // Mark read.
    let read = sa.post("/api/notifications/read", json!({}));
    assert_eq!(read["unread"], 0);
    // A like is a notification too; unliking takes it back.
    b.run(["like", &post_url]).success();
    sa.wait_for("/api/notifications", "the like", |n| {
        n["items"][0]["reason"] == "like" && n["unread"] == 1
    });
    b.run(["unlike", &post_url]).success();
    sa.wait_for("/api/notifications", "the like gone", |n| n["unread"] == 0);
    // Deleting a status removes it from the follower's feed.
    a.run(["delete", &post_url]).success();
    sb.wait_for("/api/feed", "the deletion", |f| {
        !texts(f).contains(&"Live from Ada".to_owned())
    });
    // Suggestions: Carol, followed by Bob, is suggested to Ada.
    let c = Fritter::new();
    let c_url = c.init("Carol");
    b.run(["follow", &c_url]).success();
    let s = sa.wait_for("/api/suggestions", "a suggestion", |s| {
        s["items"].as_array().is_some_and(|i| !i.is_empty())
    });
    assert_eq!(s["items"][0]["author"]["url"], c_url.as_str());
    assert_eq!(s["items"][0]["followedBy"], 1);
    assert_eq!(s["items"][0]["via"][0]["name"], "Bob");
}

#[test]
fn posting_works_offline_and_syncs_later() {
    let (a, b) = (Fritter::new(), Fritter::new());
    let a_url = a.init("Ada");
    b.init("Bob");
    // B follows A while no peer is reachable: nothing fails.
    let sb_alone = Serve::start(&b, &[], &[]);
    b.run(["follow", &a_url]).success();
    b.run(["post", "Bob offline"]).success();
    drop(sb_alone);
    // A posts with no peer at all.
    let sa = Serve::start(&a, &[], &[]);
    a.run(["post", "Ada offline"]).success();
    // B comes back, with A reachable: A's status arrives.
    let sb = Serve::start(&b, &[&sa.peer_addr], &[]);
    sb.wait_for("/api/feed", "A's offline post", |f| {
        texts(f) == ["Ada offline", "Bob offline"]
    });
}

/// Appends raw entries (valid or not) to a fresh writer's archive, as a hostile peer would.
fn hostile_archive(f: &Fritter, entries: &[Vec<u8>]) -> PublicKey {
    holding_locks(|| {
        let store = Store::new(f.data_dir());
        let own = store.open_own().expect("open the writer");
        for e in entries {
            own.log().append(e).expect("append");
        }
        own.key()
    })
}

fn put(path: &str, value: Value) -> Vec<u8> {
    json!({"op": "put", "path": path, "v": 1, "value": value})
        .to_string()
        .into_bytes()
}

#[test]
fn hostile_statuses_are_skipped_and_counted() {
    let (a, h) = (Fritter::new(), Fritter::new());
    a.init("Ada");
    h.init("Mallory");
    let now = "2024-05-01T12:00:00.000Z";
    let mention = |n: usize| json!({"url": format!("hyper://{}/", fritter_common::crypto::KeyPair::from_seed(&[(n % 250) as u8 + 1; 32]).public().to_hex()), "name": "x"});
    let entries = vec![
        put(
            "/statuses/3kq2nzxh4vk22.json",
            json!({"text": "<script>alert(1)</script><img src=x onerror=alert(2)>", "createdAt": now}),
        ),
        put(
            "/statuses/3kq2nzxh4vk23.json",
            json!({"text": "bell\u{7}\u{1b}[2J", "createdAt": now}),
        ),
        put(
            "/statuses/3kq2nzxh4vk24.json",
            json!({"text": "\u{202e}".repeat(3) + &"ﷺ".repeat(2000), "createdAt": now}),
        ),
        put(
            "/statuses/3kq2nzxh4vk25.json",
            json!({"text": "many", "createdAt": now, "mentions": (0..10_000).map(mention).collect::<Vec<_>>()}),
        ),
        put(
            "/statuses/3kq2nzxh4vk26.json",
            json!({"text": "x".repeat(1_100_000), "createdAt": now}),
        ),
        b"{\"op\":\"put\"".to_vec(),
        vec![0xff; 100],
        put(
            "/statuses/not-an-id.json",
            json!({"text": "bad name", "createdAt": now}),
        ),
        put(
            "/statuses/3kq2nzxh4vk27.json",
            json!({"text": "Still fine", "createdAt": now}),
        ),
    ];
    let key = hostile_archive(&h, &entries);
    a.hold_copy_of(&h);
    let serve = Serve::start(&a, &[], &[]);
    a.run(["follow", &key.to_hex()]).success();
    let feed = serve.wait_for("/api/feed", "the valid statuses", |f| texts(f).len() == 2);
    assert_eq!(
        texts(&feed),
        [
            "Still fine",
            "<script>alert(1)</script><img src=x onerror=alert(2)>"
        ]
    );
    let (_, profile) = serve.get(&format!("/api/profile?url=hyper://{}/", key.to_hex()));
    assert_eq!(profile["skipped"], 7, "{profile}");
    assert_eq!(
        profile["statuses"]["items"].as_array().map(Vec::len),
        Some(2)
    );
    let (_, me) = serve.get("/api/me");
    assert_eq!(me["index"]["skipped"], 7);
    // The CLI's feed shows the same, the script as plain text.
    a.run(["feed"])
        .success()
        .stdout_has("| <script>alert(1)</script>");
}

/// A `hold_lock` process holding `f`'s archive, as a CLI write or `fritter sync` would; it lets
/// go when dropped or [`HeldLock::release`]d.
struct HeldLock {
    child: Child,
}

impl HeldLock {
    fn take(f: &Fritter) -> HeldLock {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hold_lock"));
        cmd.arg(f.data_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        let mut child = spawn(&mut cmd).expect("start hold_lock");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped stdout"))
            .read_line(&mut line)
            .expect("read from hold_lock");
        assert_eq!(line.trim(), format!("locked {}", child.id()));
        HeldLock { child }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn release(mut self) {
        drop(self.child.stdin.take());
        assert!(self.child.wait().expect("hold_lock exits").success());
    }
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve_info(f: &Fritter) -> Value {
    let text = std::fs::read_to_string(f.data_dir().join("serve.json")).expect("serve.json");
    serde_json::from_str(&text).expect("serve.json is JSON")
}

#[test]
fn serve_waits_for_a_held_archive_and_takes_it_once_free() {
    let f = Fritter::new();
    f.init("Ada");
    let held = HeldLock::take(&f);
    let mut serve = Serve::launch(&f, &[], &[]);

    // It serves, says what it waits for, and has not announced itself for writes.
    let waiting = format!("waiting for process {} (hold_lock)", held.pid());
    let (status, feed) = serve.get("/api/feed");
    assert_eq!(status, 503, "{feed}");
    assert!(
        feed["error"].as_str().unwrap_or("").contains(&waiting),
        "{feed}"
    );
    let (_, me) = serve.get("/api/me");
    assert_eq!(me["starting"], true, "{me}");
    assert!(
        me["error"].as_str().unwrap_or("").contains(&waiting),
        "{me}"
    );
    assert!(!f.data_dir().join("serve.json").exists());
    // A write meanwhile is refused (after looking for a server for a while); serve still waits.
    f.run(["post", "too early"])
        .fails(1, "is in use by another process")
        .stderr_has(&format!("pid {}", held.pid()));
    let (status, feed) = serve.get("/api/feed");
    assert_eq!(status, 503, "{feed}");
    assert!(
        feed["error"].as_str().unwrap_or("").contains(&waiting),
        "{feed}"
    );

    // Released: serve takes the archive without a restart and goes live.
    held.release();
    serve.wait_for("/api/me", "serve to take the archive", |me| {
        me["starting"] != true && me["error"].is_null()
    });
    assert_eq!(serve_info(&f)["pid"], serve.pid());
    serve.read_token(&f);
    f.run(["post", "after the wait"]).success();
    let (_, feed) = serve.get("/api/feed");
    assert_eq!(texts(&feed), ["after the wait"]);
}

#[test]
fn a_second_serve_refuses_and_leaves_the_first_alone() {
    let f = Fritter::new();
    f.init("Ada");
    let first = Serve::start(&f, &[], &[]);
    let before = std::fs::read(f.data_dir().join("serve.json")).expect("serve.json");

    let mut second = f.start([
        "serve",
        "--http",
        "127.0.0.1:0",
        "--listen",
        "127.0.0.1:0",
        "--no-dht",
        "--no-mdns",
    ]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(exit) = second.exited() {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "the second serve still runs after 30 s:\n{}",
            second.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(exit.code(), Some(1), "{}", second.stderr());
    let err = second.stderr();
    assert!(
        err.contains(&format!("already running on {}", first.url))
            && err.contains(&format!("pid {}", first.pid())),
        "{err}"
    );
    assert!(!second.stdout().contains("serving"), "{}", second.stdout());

    // The first one is untouched: its serve.json, and commands through it.
    assert_eq!(
        std::fs::read(f.data_dir().join("serve.json")).expect("serve.json"),
        before
    );
    f.run(["post", "still through the first"]).success();
    let (_, feed) = first.get("/api/feed");
    assert_eq!(texts(&feed), ["still through the first"]);
}

#[test]
fn export_works_while_serve_runs() {
    let f = Fritter::new();
    let url = f.init("Ada");
    let serve = Serve::start(&f, &[], &[]);
    f.run(["post", "in the backup"]).success();
    let out = tempfile::tempdir().expect("a temp dir");
    let file = out.path().join("ada.fritter");
    let exported = f.json(["export", file.to_str().expect("utf-8")]);
    assert_eq!(exported["archive"], url.as_str(), "{exported}");
    drop(serve);
    let copy = Fritter::new();
    copy.run(["import", file.to_str().expect("utf-8")])
        .success();
    assert_eq!(texts(&copy.json(["feed"])), ["in the backup"]);
}

/// `POST /api/post` with the token and an idempotency key.
fn post_keyed(serve: &Serve, key: &str, text: &str) -> (u16, Value) {
    serve.post_with(
        "/api/post",
        json!({ "text": text }),
        &[("x-fritter-token", &serve.token), ("idempotency-key", key)],
    )
}

#[test]
fn a_repeated_idempotency_key_gets_the_first_answer_also_after_a_crash() {
    let f = Fritter::new();
    f.init("Ada");
    let mut serve = Serve::start(&f, &[], &[]);
    let key = "6f1c0a5e3b2d4c7a9e8f1b2c3d4e5f60";
    let first = post_keyed(&serve, key, "only once");
    assert_eq!(first.0, 200, "{}", first.1);
    assert_eq!(post_keyed(&serve, key, "only once"), first);
    // The same key for another request is the caller's mistake.
    let (status, other) = post_keyed(&serve, key, "something else");
    assert_eq!(status, 422, "{other}");
    // A malformed key is refused before anything is written.
    let (status, bad) = post_keyed(&serve, "../../identity/secret_key", "x");
    assert_eq!(status, 400, "{bad}");

    // kill -9, start again: the key is still remembered.
    serve.child.kill().expect("kill -9");
    let _ = serve.child.wait();
    let serve = Serve::start(&f, &[], &[]);
    assert_eq!(post_keyed(&serve, key, "only once"), first);
    let (_, feed) = serve.get("/api/feed");
    assert_eq!(texts(&feed), ["only once"]);
}
