//! The crawler under a junk-archive flood, at a scale CI runs in seconds: one source (a
//! replication node on 127.0.0.1) serves 10 real archives that follow each other next to 1,000
//! junk archives (empty, garbage entries, floods of spam statuses, follow lists naming hundreds
//! of junk keys). The crawler is seeded with one real archive and dials the source; an attacker
//! asks it (`POST /v1/crawl`, one client) for a spam archive whose follow lists name every junk
//! key, and for a burst of junk keys.
//!
//! Behaviour checked (no timing): every real archive ends up held as trusted and fully indexed;
//! the junk never becomes trusted; heard-of junk stays within `max_heard`, requests within the
//! per-client rate limit, and the rest waits in the heard queue.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use fritter_common::crypto::{KeyPair, PublicKey};
use fritter_common::discovery;
use fritter_common::log::{Access, DiskStorage, Log};
use fritter_common::model::{
    ArchiveUrl, File, Follows, Mention, Profile, Status, StatusId, Timestamp,
};
use fritter_common::replicate::{Node, NodeConfig};
use fritter_common::store::Store;
use fritter_common::swarm::{Swarm, SwarmConfig};
use fritter_crawler::api::{router, ApiConfig, AppState};
use fritter_crawler::crawl::{CrawlLimits, Crawler, Origin};
use fritter_crawler::index::Index;
use fritter_crawler::ingest::{IngestConfig, Ingester};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use tower::ServiceExt;

const REAL: usize = 10;
const STATUSES: usize = 20;
const JUNK: usize = 1000;
const FLOODS: usize = 10;
const LINKERS: usize = 20;
const MAX_HEARD: usize = 50;
const BURST: usize = 100;

fn entry(file: File) -> Vec<u8> {
    file.to_entry().unwrap().encode_checked().unwrap()
}

fn follows(keys: &[PublicKey]) -> Vec<u8> {
    entry(File::Follows(Follows {
        urls: keys.iter().map(|k| ArchiveUrl::root((*k).into())).collect(),
    }))
}

fn status(text: String, clock: u16, mentions: Vec<Mention>) -> Vec<u8> {
    let created = Timestamp::now().unix_millis() - i64::from(clock) * 1000;
    let mut s = Status::new(text, Timestamp::from_unix_millis(created).unwrap());
    s.mentions = mentions;
    let id = StatusId::from_parts(created as u64 * 1000, clock).unwrap();
    entry(File::Status { id, status: s })
}

fn write(dir: &std::path::Path, kp: &KeyPair, blocks: &[Vec<u8>]) -> Arc<Log> {
    let log = Log::open(
        &DiskStorage::new(dir.join(kp.public().to_hex())),
        kp.public(),
        Access::Writer(kp.clone()),
    )
    .unwrap();
    for chunk in blocks.chunks(1000) {
        let refs: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
        log.append_batch(&refs).unwrap();
    }
    Arc::new(log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_archives_get_in_and_junk_stays_capped() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);

    // ---- the source: real and junk archives on one node ----
    let src = tmp.path().join("source");
    let real: Vec<KeyPair> = (0..REAL).map(|_| KeyPair::generate()).collect();
    let real_keys: Vec<PublicKey> = real.iter().map(KeyPair::public).collect();
    let junk: Vec<KeyPair> = (0..JUNK).map(|_| KeyPair::generate()).collect();
    let junk_keys: Vec<PublicKey> = junk.iter().map(KeyPair::public).collect();
    let mut logs = Vec::new();
    let mut lengths = Vec::new();
    for (i, kp) in real.iter().enumerate() {
        let mut f: BTreeSet<PublicKey> = BTreeSet::new();
        f.insert(real_keys[(i + 1) % REAL]);
        f.insert(real_keys[rng.gen_range(0..REAL)]);
        f.remove(&kp.public());
        let f: Vec<PublicKey> = f.into_iter().collect();
        let mut blocks = vec![
            entry(File::Profile(Profile {
                name: format!("Real {i}"),
                bio: String::new(),
                avatar: None,
            })),
            follows(&f),
        ];
        for j in 0..STATUSES {
            blocks.push(status(
                format!("real status {j} #real"),
                j as u16,
                Vec::new(),
            ));
        }
        lengths.push(blocks.len() as u64);
        logs.push(write(&src, kp, &blocks));
    }
    for (j, kp) in junk.iter().enumerate() {
        let mut blocks = Vec::new();
        if j == 0 {
            // The spam root names every junk key, over several rewrites of its follow list.
            for chunk in junk_keys[1..].chunks(300) {
                blocks.push(follows(chunk));
            }
        } else if j <= FLOODS {
            for s in 0..300 {
                let m = Mention {
                    url: ArchiveUrl::root(real_keys[s % REAL].into()),
                    name: "you".into(),
                };
                blocks.push(status(format!("BUY NOW {s} #deal @you"), s as u16, vec![m]));
            }
        } else if j <= FLOODS + LINKERS {
            for _ in 0..2 {
                let keys: Vec<PublicKey> =
                    junk_keys.choose_multiple(&mut rng, 200).copied().collect();
                blocks.push(follows(&keys));
            }
        } else if j % 2 == 0 {
            for _ in 0..rng.gen_range(1..10) {
                let mut b = br#"{"op":"put","path":"/statuses/x.json","v":1,"value":{}}"#.to_vec();
                if rng.gen_bool(0.5) {
                    b = (0..rng.gen_range(1..500)).map(|_| rng.gen()).collect();
                }
                blocks.push(b);
            }
        }
        logs.push(write(&src, kp, &blocks));
    }
    let source = Node::start(NodeConfig {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        ..NodeConfig::default()
    })
    .await
    .unwrap();
    for log in &logs {
        source.add(log.clone());
    }

    // ---- the crawler, dialing the source over 127.0.0.1 ----
    let dir = tmp.path().join("crawler");
    let (index, payload) = Index::open(&dir.join("index")).unwrap();
    let (found_tx, found_rx) = tokio::sync::mpsc::channel(65_536);
    let ingest = Ingester::start(
        Arc::new(index),
        payload,
        IngestConfig {
            commit_interval_ms: 50,
            ..IngestConfig::default()
        },
        Some(found_tx),
    )
    .unwrap();
    let mut d = discovery::Config::offline();
    d.peers.push(source.local_addr().unwrap().to_string());
    let swarm = Swarm::start(SwarmConfig {
        node: NodeConfig {
            listen: Some("127.0.0.1:0".parse().unwrap()),
            ..NodeConfig::default()
        },
        discovery: d,
    })
    .await
    .unwrap();
    let crawler = Crawler::with_limits(
        Store::new(&dir),
        ingest.clone(),
        Some(swarm),
        CrawlLimits {
            max_heard: MAX_HEARD,
            heard_per_sec: 500.0,
            ..CrawlLimits::default()
        },
    );
    crawler.spawn_discovery(found_rx);
    crawler
        .learn_seed(&format!("hyper://{}/", real_keys[0].to_hex()))
        .unwrap();

    // ---- the attacker: one client asks for the spam root and a burst of junk ----
    let app = router(AppState::new(crawler.clone(), ApiConfig::default()));
    let mut accepted = 0;
    let mut limited = 0;
    let burst = std::iter::once(junk_keys[0])
        .chain(junk_keys[1..].choose_multiple(&mut rng, BURST - 1).copied());
    for key in burst {
        let req = Request::post("/v1/crawl")
            .header("content-type", "application/json")
            .body(Body::from(format!(
                r#"{{"url":"hyper://{}/"}}"#,
                key.to_hex()
            )))
            .unwrap();
        match app.clone().oneshot(req).await.unwrap().status() {
            StatusCode::ACCEPTED => accepted += 1,
            StatusCode::TOO_MANY_REQUESTS => limited += 1,
            other => panic!("unexpected answer to POST /v1/crawl: {other}"),
        }
    }
    assert!(crawler.holds(&junk_keys[0]), "the first request gets in");
    assert!(
        limited > 0,
        "one client cannot request {BURST} archives at once"
    );

    // ---- every real archive fully indexed; the heard lane filled to its cap ----
    let fully_indexed = |i: usize| {
        ingest
            .checkpoint(&real_keys[i])
            .is_some_and(|cp| cp.next >= lengths[i])
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let c = crawler.counts();
        let real_done = (0..REAL).all(fully_indexed);
        if real_done && c.heard >= MAX_HEARD {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not there within 60 s: {} of {REAL} real archives indexed, {c:?}, failures {:?}",
            (0..REAL).filter(|&i| fully_indexed(i)).count(),
            crawler.failures()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ingest.wait_idle(Duration::from_secs(10));

    let c = crawler.counts();
    for (i, k) in real_keys.iter().enumerate() {
        assert_eq!(crawler.origin(k), Some(Origin::Trusted), "real archive {i}");
        let cp = ingest.checkpoint(k).unwrap();
        assert_eq!(cp.skipped, 0, "real archive {i}");
    }
    let held_junk: Vec<&PublicKey> = junk_keys.iter().filter(|k| crawler.holds(k)).collect();
    assert!(
        held_junk
            .iter()
            .all(|k| crawler.origin(k) != Some(Origin::Trusted)),
        "no junk archive is trusted"
    );
    assert_eq!(c.trusted, REAL, "{c:?}");
    assert_eq!(c.heard, MAX_HEARD, "{c:?}");
    assert_eq!(c.requested, accepted, "{c:?}");
    assert_eq!(held_junk.len(), MAX_HEARD + accepted, "{c:?}");
    assert!(
        c.pending_heard > JUNK / 2,
        "the rest of the junk waits in the heard queue: {c:?}"
    );
    assert_eq!(crawler.held_count(), REAL + MAX_HEARD + accepted);
    crawler.shutdown().await;
    ingest.shutdown();
    source.shutdown().await;
}
