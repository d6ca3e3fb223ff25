//! The API in-process: real archives (signed logs on disk) followed live by a real ingester
//! into a real on-disk tantivy index, queried through `router(state).oneshot(..)`.

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use fritter_common::archive::Archive;
use fritter_common::crypto::{KeyPair, PublicKey};
use fritter_common::model::{
    extract_tags, ArchiveUrl, Entry, File, Follows, Mention, Profile, Reply, Status, StatusId,
    ThreadRef, Timestamp,
};
use fritter_common::store::Store;
use fritter_crawler::api::{router, router_with, ApiConfig, AppState};
use fritter_crawler::crawl::Crawler;
use serde_json::Value;
use tempfile::TempDir;
use tower::ServiceExt;

struct Env {
    dir: TempDir,
    crawler: Arc<Crawler>,
    state: AppState,
    writers: Vec<TempDir>,
}

struct Writer {
    archive: Archive,
    key: PublicKey,
}

impl Writer {
    /// Replaces the writer's follow list with `others`.
    fn follow(&self, others: &[&Writer]) {
        let urls = others
            .iter()
            .map(|w| ArchiveUrl::root(w.key.into()))
            .collect();
        self.archive
            .put_file(&File::Follows(Follows { urls }))
            .unwrap();
    }
}

fn start(dir: TempDir) -> Env {
    let ingest = support::fast_ingest(dir.path());
    let crawler = Crawler::new(Store::new(dir.path()), ingest, None, 1000);
    let state = AppState::new(
        crawler.clone(),
        ApiConfig {
            rate_per_sec: 1e6,
            burst: 1e6,
            ..ApiConfig::default()
        },
    );
    Env {
        dir,
        crawler,
        state,
        writers: Vec::new(),
    }
}

fn env() -> Env {
    start(tempfile::tempdir().unwrap())
}

impl Env {
    fn writer(&mut self, name: &str) -> Writer {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        store.save_identity(&KeyPair::generate()).unwrap();
        let open = store.open_own().unwrap();
        let archive = Archive::new(open.log().clone());
        let key = archive.key();
        archive
            .put_file(&File::Profile(Profile {
                name: name.into(),
                bio: String::new(),
                avatar: None,
            }))
            .unwrap();
        assert!(self.crawler.follow(open));
        self.writers.push(dir);
        Writer { archive, key }
    }

    /// Waits until every archive is indexed and committed.
    fn settle(&self) {
        for (k, _) in self.crawler.ingest().sources() {
            self.crawler.ingest().mark_dirty(k);
        }
        assert!(self.crawler.ingest().wait_idle(Duration::from_secs(30)));
    }

    async fn get(&self, uri: &str) -> (StatusCode, Value) {
        self.request(Request::get(uri).body(Body::empty()).unwrap())
            .await
    }

    async fn request(&self, req: Request<Body>) -> (StatusCode, Value) {
        call(router(self.state.clone()), req).await
    }

    async fn ok(&self, uri: &str) -> Value {
        let (s, v) = self.get(uri).await;
        assert_eq!(s, StatusCode::OK, "{uri}: {v}");
        v
    }
}

async fn call(app: axum::Router, req: Request<Body>) -> (StatusCode, Value) {
    let resp = app.oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 24)
        .await
        .unwrap();
    let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, v)
}

/// Posts a status; returns its URL and the reference a reply pins.
fn post(
    w: &Writer,
    text: &str,
    mentions: &[&Writer],
    reply_to: Option<(&ThreadRef, &ThreadRef)>,
) -> ThreadRef {
    let mut status = Status::new(text, Timestamp::now());
    status.tags = extract_tags(text);
    status.mentions = mentions
        .iter()
        .map(|m| Mention {
            url: ArchiveUrl::root(m.key.into()),
            name: "someone".into(),
        })
        .collect();
    status.reply = reply_to.map(|(root, parent)| Reply {
        root: root.clone(),
        parent: parent.clone(),
    });
    let id = StatusId::now();
    let r = w.archive.put_file(&File::Status { id, status }).unwrap();
    std::thread::sleep(Duration::from_millis(2));
    ThreadRef {
        url: ArchiveUrl::status(w.key.into(), id),
        seq: r.seq,
        hash: r.hash,
    }
}

fn uris(hits: &Value) -> Vec<String> {
    hits.as_array()
        .unwrap()
        .iter()
        .map(|h| h["uri"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn mentions_newest_first_with_cursor_paging_and_provenance() {
    let mut e = env();
    let alice = e.writer("Alice");
    let bob = e.writer("Bob");
    let mut posted = Vec::new();
    for i in 0..5 {
        posted.push(
            post(&bob, &format!("hi @alice number {i}"), &[&alice], None)
                .url
                .to_string(),
        );
    }
    post(&bob, "no mention here", &[], None);
    e.settle();
    let first = e.ok(&format!("/v1/mentions/{}?limit=2", alice.key)).await;
    assert_eq!(uris(&first["hits"]), [posted[4].clone(), posted[3].clone()]);
    let hit = &first["hits"][0];
    assert_eq!(hit["archive"], bob.key.to_hex());
    assert!(hit["seq"].as_u64().is_some());
    assert_eq!(hit["hash"].as_str().unwrap().len(), 64);
    assert_eq!(first["coverage"]["archives"], 2);
    let cursor = first["cursor"].as_str().unwrap();
    let second = e
        .ok(&format!(
            "/v1/mentions/hyper%3A%2F%2F{}%2F?limit=2&cursor={cursor}",
            alice.key
        ))
        .await;
    assert_eq!(
        uris(&second["hits"]),
        [posted[2].clone(), posted[1].clone()]
    );
    let third = e
        .ok(&format!(
            "/v1/mentions/{}?limit=2&cursor={}",
            alice.key,
            second["cursor"].as_str().unwrap()
        ))
        .await;
    assert_eq!(uris(&third["hits"]), [posted[0].clone()]);
    assert!(third["cursor"].is_null());
    // Bob is not mentioned by anyone.
    let none = e.ok(&format!("/v1/mentions/{}", bob.key)).await;
    assert_eq!(none["hits"].as_array().unwrap().len(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn thread_gathers_replies_by_anyone_with_placeholders() {
    let mut e = env();
    let alice = e.writer("Alice");
    let bob = e.writer("Bob");
    let carol = e.writer("Carol");
    let root = post(&alice, "What do you think of #rust?", &[], None);
    let r1 = post(&bob, "Love it", &[], Some((&root, &root)));
    let r2 = post(&carol, "Agreed with Bob", &[], Some((&root, &r1)));
    // A reply to a status of an archive never crawled.
    let ghost = ThreadRef {
        url: ArchiveUrl::status(KeyPair::generate().public().into(), StatusId::now()),
        seq: 3,
        hash: [7; 32],
    };
    let r3 = post(&carol, "Replying to a ghost", &[], Some((&root, &ghost)));
    e.settle();
    let t = e.ok(&format!("/v1/thread?uri={}", r2.url)).await;
    assert_eq!(t["root"], root.url.to_string());
    let th = &t["thread"];
    assert_eq!(th["uri"], root.url.to_string());
    assert_eq!(th["post"]["archive"], alice.key.to_hex());
    let replies = th["replies"].as_array().unwrap();
    assert_eq!(replies.len(), 2, "{th}");
    assert_eq!(replies[0]["uri"], r1.url.to_string());
    assert_eq!(replies[0]["replies"][0]["uri"], r2.url.to_string());
    assert_eq!(replies[1]["uri"], ghost.url.to_string());
    assert_eq!(replies[1]["notFound"], true);
    assert_eq!(replies[1]["replies"][0]["uri"], r3.url.to_string());
    assert_eq!(t["truncated"], false);

    // Root not crawled: the root itself is a placeholder.
    let mut e2 = env();
    let dave = e2.writer("Dave");
    let orphan = post(&dave, "answering", &[], Some((&ghost, &ghost)));
    e2.settle();
    let t = e2.ok(&format!("/v1/thread?uri={}", orphan.url)).await;
    assert_eq!(t["thread"]["notFound"], true);
    assert_eq!(t["thread"]["replies"][0]["uri"], orphan.url.to_string());
}

#[tokio::test(flavor = "multi_thread")]
async fn trending_needs_several_authors() {
    let mut e = env();
    let spammer = e.writer("Spam");
    let a = e.writer("A");
    let b = e.writer("B");
    let c = e.writer("C");
    for i in 0..20 {
        post(&spammer, &format!("buy #spamcoin now {i}"), &[], None);
    }
    post(&a, "#fritter is nice", &[], None);
    post(&b, "trying #fritter and #rust", &[], None);
    post(&c, "#fritter #rust", &[], None);
    post(&c, "more #fritter", &[], None);
    e.settle();
    let t = e.ok("/v1/trending?window=1h").await;
    let trends = t["trends"].as_array().unwrap();
    let tags: Vec<&str> = trends.iter().map(|t| t["tag"].as_str().unwrap()).collect();
    assert_eq!(tags, ["fritter", "rust"], "{t}");
    assert_eq!(trends[0]["posts"], 4);
    assert_eq!(trends[0]["authors"], 3);
    assert_eq!(trends[0]["samples"].as_array().unwrap().len(), 3);
    assert_eq!(trends[1]["authors"], 2);
    // The chart series: 12 buckets of 5 minutes; every post counted once, all of them recent.
    assert_eq!(t["buckets"]["count"], 12, "{t}");
    assert_eq!(t["buckets"]["widthMs"], 300_000);
    let series: Vec<u64> = trends[0]["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_u64().unwrap())
        .collect();
    assert_eq!(series.len(), 12, "{t}");
    assert_eq!(series.iter().sum::<u64>(), 4, "{series:?}");
    assert!(series[10] + series[11] == 4, "{series:?}");
    for (w, n) in [("24h", 24), ("7d", 28)] {
        let t = e.ok(&format!("/v1/trending?window={w}")).await;
        assert_eq!(t["buckets"]["count"], n);
        assert_eq!(t["trends"][0]["series"].as_array().unwrap().len(), n);
        assert_eq!(t["trends"][0]["series"][n - 1], 4, "{t}");
    }
    let (s, v) = e.get("/v1/trending?window=2h").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"]["param"], "window");
}

#[tokio::test(flavor = "multi_thread")]
async fn search_filters_sorts_and_scopes() {
    let mut e = env();
    let alice = e.writer("Alice");
    let bob = e.writer("Bob");
    let carol = e.writer("Carol");
    let dave = e.writer("Dave");
    alice.follow(&[&bob]);
    bob.follow(&[&carol]);
    let b1 = post(&bob, "The quick brown fox #animals", &[], None);
    let c1 = post(&carol, "A lazy dog #animals @alice", &[&alice], None);
    let d1 = post(&dave, "quick quick quick thinking", &[], None);
    post(&dave, "rust is a fungus, not #rust", &[], None);
    e.settle();
    let s = |q: &str| {
        let q = q.to_owned();
        let e = &e;
        async move { uris(&e.ok(&format!("/v1/search?{q}")).await["hits"]) }
    };
    assert_eq!(s("q=quick").await, [d1.url.to_string(), b1.url.to_string()]);
    assert_eq!(s("q=quick&sort=top").await[0], d1.url.to_string());
    assert_eq!(s("q=%22brown%20fox%22").await, [b1.url.to_string()]);
    assert_eq!(s("q=%22fox%20brown%22").await.len(), 0);
    assert_eq!(s("q=quick%20-thinking").await, [b1.url.to_string()]);
    assert_eq!(s("q=lazy%20OR%20brown").await.len(), 2);
    assert_eq!(s("q=%23animals").await.len(), 2);
    assert_eq!(s("tag=animals").await.len(), 2);
    assert_eq!(s("q=%23rust").await.len(), 1);
    assert_eq!(s("q=rust").await.len(), 1);
    assert_eq!(
        s(&format!("q=quick&author={}", bob.key)).await,
        [b1.url.to_string()]
    );
    assert_eq!(
        s(&format!("mention={}", alice.key)).await,
        [c1.url.to_string()]
    );
    assert_eq!(
        s("since=2000-01-01T00:00:00Z&until=2001-01-01T00:00:00Z")
            .await
            .len(),
        0
    );
    assert_eq!(s("since=2000-01-01T00:00:00Z").await.len(), 4);
    // Scopes from the public follow graph.
    let follows = e
        .ok(&format!(
            "/v1/search?tag=animals&scope=follows&viewer={}",
            alice.key
        ))
        .await;
    assert_eq!(uris(&follows["hits"]), [b1.url.to_string()]);
    assert_eq!(follows["coverage"]["archivesInScope"], 2);
    let hops2 = e
        .ok(&format!(
            "/v1/search?tag=animals&scope=hops2&viewer={}",
            alice.key
        ))
        .await;
    assert_eq!(uris(&hops2["hits"]).len(), 2);
    let (st, v) = e.get("/v1/search?scope=follows").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"]["param"], "viewer");

    // Followers come from follow lists.
    let f = e.ok(&format!("/v1/archives/{}/followers", carol.key)).await;
    assert_eq!(f["followers"], serde_json::json!([bob.key.to_hex()]));
    let a = e.ok(&format!("/v1/archives/{}", bob.key)).await;
    assert_eq!(a["profile"]["profile"]["name"], "Bob");
    assert_eq!(a["followers"], 1);
    assert_eq!(a["following"], 1);
    assert_eq!(a["statuses"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn deletes_and_rewrites_reach_the_index_and_invalid_entries_are_counted() {
    let mut e = env();
    let alice = e.writer("Alice");
    let gone = post(&alice, "regrettable #oops", &[], None);
    post(&alice, "fine #ok", &[], None);
    e.settle();
    assert_eq!(
        e.ok("/v1/search?q=regrettable").await["hits"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    alice.archive.delete(gone.url.path().unwrap()).unwrap();
    // Hostile entries in the log are skipped and counted, never fatal.
    alice.archive.log().append(b"<not json>").unwrap();
    alice
        .archive
        .log()
        .append(br#"{"op":"put","path":"/../etc/passwd","v":1,"value":{}}"#)
        .unwrap();
    alice
        .archive
        .put_file(&File::Profile(Profile {
            name: "Alice Renamed".into(),
            bio: String::new(),
            avatar: None,
        }))
        .unwrap();
    e.settle();
    assert_eq!(
        e.ok("/v1/search?q=regrettable").await["hits"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let a = e.ok(&format!("/v1/archives/{}", alice.key)).await;
    assert_eq!(a["profile"]["profile"]["name"], "Alice Renamed");
    assert_eq!(a["statuses"], 1);
    assert_eq!(a["checkpoint"]["skipped"], 2);
    assert_eq!(a["checkpoint"]["reasons"].as_array().unwrap().len(), 2);
    assert_eq!(a["checkpoint"]["next"], a["log"]["length"]);
    let status = e.ok("/v1/status").await;
    assert_eq!(status["archives"], 1);
    assert_eq!(status["synced"], 1);
    assert_eq!(status["lagging"], 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn new_status_is_searchable_without_being_asked() {
    let mut e = env();
    let alice = e.writer("Alice");
    e.settle();
    post(&alice, "live #update", &[], None);
    // Only the log's own change notification drives the ingest here.
    for _ in 0..200 {
        let v = e.ok("/v1/search?tag=update").await;
        if v["hits"].as_array().unwrap().len() == 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the new status never became searchable");
}

#[tokio::test(flavor = "multi_thread")]
async fn restart_and_schema_change_reindex_without_loss_or_duplicates() {
    let mut e = env();
    let alice = e.writer("Alice");
    for i in 0..30 {
        post(&alice, &format!("post {i} #count"), &[], None);
    }
    e.settle();
    assert_eq!(
        e.ok("/v1/search?tag=count&limit=100").await["hits"]
            .as_array()
            .unwrap()
            .len(),
        30
    );
    let Env {
        dir,
        crawler,
        writers,
        ..
    } = e;
    // Keep Alice's log for the next crawler, then drop this one.
    let log = crawler.ingest().source(&alice.key).unwrap();
    crawler.close();
    crawler.ingest().shutdown();
    drop(crawler);

    // Pretend the index was written by another schema version: it must be rebuilt.
    let meta = dir.path().join("index/meta.json");
    let text = std::fs::read_to_string(&meta).unwrap();
    let bumped = text.replace(
        &format!("\\\"schema\\\":{}", fritter_crawler::index::SCHEMA_VERSION),
        "\\\"schema\\\":999",
    );
    assert_ne!(text, bumped, "the payload holds the schema version");
    std::fs::write(&meta, bumped).unwrap();

    let mut e = start(dir);
    e.writers = writers;
    let store = Store::new(e.writers[0].path());
    drop(store);
    let archive = Archive::new(log.clone());
    let (index, _) = (e.crawler.ingest().index().clone(), ());
    assert_eq!(fritter_crawler::index::search::doc_count(&index), 0);
    e.crawler.ingest().add_source(log);
    e.settle();
    assert_eq!(
        e.ok("/v1/search?tag=count&limit=100").await["hits"]
            .as_array()
            .unwrap()
            .len(),
        30
    );
    drop(archive);
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_requests_get_a_4xx_or_an_answer() {
    let mut e = env();
    let alice = e.writer("Alice");
    post(&alice, "hello #world", &[], None);
    e.settle();
    let deep = "(".repeat(3000) + "a" + &")".repeat(3000);
    let many = "a ".repeat(10_000);
    let cases: Vec<String> = vec![
        format!("/v1/search?q={}", urlencode(&deep)),
        format!("/v1/search?q={}", urlencode(&many)),
        "/v1/search?q=%22unclosed".into(),
        "/v1/search?q=)))".into(),
        "/v1/search?q=OR%20OR".into(),
        "/v1/search?q=-".into(),
        "/v1/search?q=*:*".into(),
        "/v1/search?q=title:foo^10~2".into(),
        "/v1/search?q=%00%01".into(),
        "/v1/search?limit=0".into(),
        "/v1/search?limit=100000000000000000000".into(),
        "/v1/search?limit=-1".into(),
        "/v1/search?cursor=garbage".into(),
        "/v1/search?sort=top&cursor=99999999".into(),
        "/v1/search?since=yesterday".into(),
        "/v1/search?since=2024-01-02T00:00:00Z&until=2024-01-01T00:00:00Z".into(),
        "/v1/search?author=not-a-key".into(),
        format!("/v1/search?author={}", "00".repeat(32)),
        "/v1/search?tag=%23%23%23".into(),
        "/v1/search?unknown=1".into(),
        "/v1/search?q=%ZZ".into(),
        "/v1/mentions/zzzz".into(),
        "/v1/mentions/0100000000000000000000000000000000000000000000000000000000000000".into(),
        "/v1/thread".into(),
        "/v1/thread?uri=hyper://x/".into(),
        format!("/v1/thread?uri=hyper://{}/profile.json", alice.key),
        "/v1/trending?window=1y".into(),
        "/v1/archives/../../etc/passwd".into(),
        "/v1/archives/abc/followers?cursor=-5".into(),
        "/v1/stream?cursor=abc".into(),
        format!("/v1/search?q={}", "x".repeat(5000)),
        "/v1/nothing".into(),
    ];
    assert!(cases.len() >= 20);
    for uri in &cases {
        let (s, v) = e.get(uri).await;
        assert!(s.is_client_error() || s == StatusCode::OK, "{uri}: {s} {v}");
        if s.is_client_error() {
            assert!(v["error"]["message"].is_string(), "{uri}: {v}");
        }
    }
    // Bad bodies for POST /v1/crawl.
    for body in [
        "",
        "{",
        "[]",
        r#"{"url": 5}"#,
        r#"{"url": "hyper://nope/"}"#,
        r#"{"url":"x","more":1}"#,
    ] {
        let (s, v) = e
            .request(
                Request::post("/v1/crawl")
                    .header("content-type", "application/json")
                    .body(Body::from(body))
                    .unwrap(),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {v}");
    }
    let huge = format!(r#"{{"url": "{}"}}"#, "a".repeat(100_000));
    let (s, _) = e
        .request(
            Request::post("/v1/crawl")
                .header("content-type", "application/json")
                .body(Body::from(huge))
                .unwrap(),
        )
        .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    // Still healthy afterwards.
    assert_eq!(
        e.ok("/v1/search?tag=world").await["hits"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

pub(crate) fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

mod contract;
mod views;
