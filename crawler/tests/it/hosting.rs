//! The hosting service in process: a real crawler (replicas on disk, a real ingester and
//! index) with a real swarm listening on 127.0.0.1, real writers whose signed archives reach it
//! over TCP through their own swarm, and the real router driven with `oneshot`. Each attack of
//! issue 6 is a test here.

use crate::support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use fritter_common::crypto::{KeyPair, PublicKey};
use fritter_common::discovery;
use fritter_common::model::{
    ArchiveUrl, File, FilePath, HostingRequest, OwnershipProof, Status, StatusId, Timestamp,
};
use fritter_common::replicate::NodeConfig;
use fritter_common::store::{OpenArchive, Store};
use fritter_common::swarm::{Swarm, SwarmConfig};
use fritter_crawler::api::{router_with, ApiConfig, AppState};
use fritter_crawler::crawl::Crawler;
use fritter_crawler::hosting::{self, Hosting, HostingConfig, HostingError};
use serde_json::{json, Value};
use tempfile::TempDir;
use tower::ServiceExt;

const HOST: &str = "hosting.test";

struct Env {
    dir: TempDir,
    crawler: Arc<Crawler>,
    hosting: Arc<Hosting>,
    app: Router,
    writers: Swarm,
    _writer_dirs: Vec<TempDir>,
}

struct Writer {
    open: OpenArchive,
    key: PublicKey,
}

fn config() -> HostingConfig {
    HostingConfig {
        enabled: true,
        check_interval_ms: 50,
        signup_per_minute: 1e6,
        ..HostingConfig::default()
    }
}

async fn env(cfg: HostingConfig, checker: bool) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let ingest = support::fast_ingest(dir.path());
    let swarm = Swarm::start(SwarmConfig {
        node: NodeConfig {
            listen: Some("127.0.0.1:0".parse().unwrap()),
            ..NodeConfig::default()
        },
        discovery: discovery::Config::offline(),
    })
    .await
    .unwrap();
    let addr = swarm.local_addr().unwrap();
    let crawler = Crawler::new(Store::new(dir.path()), ingest, Some(swarm), 1000);
    let hosting = Hosting::open(crawler.clone(), cfg, dir.path(), HOST).unwrap();
    if checker {
        hosting.spawn_checker();
    }
    let state = AppState::new(
        crawler.clone(),
        ApiConfig {
            rate_per_sec: 1e6,
            burst: 1e6,
            ..ApiConfig::default()
        },
    );
    let app = router_with(state, hosting::api::router(hosting.clone()));
    let mut d = discovery::Config::offline();
    d.peers.push(addr.to_string());
    let writers = Swarm::start(SwarmConfig {
        node: NodeConfig {
            listen: Some("127.0.0.1:0".parse().unwrap()),
            ..NodeConfig::default()
        },
        discovery: d,
    })
    .await
    .unwrap();
    Env {
        dir,
        crawler,
        hosting,
        app,
        writers,
        _writer_dirs: Vec::new(),
    }
}

impl Env {
    /// A user with a signed archive (a profile and a status), replicated by the writers' swarm.
    fn writer(&mut self) -> Writer {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        store.save_identity(&KeyPair::generate()).unwrap();
        let open = store.open_own().unwrap();
        let key = open.key();
        post(&open, "hello");
        self.writers.add(open.log().clone());
        self._writer_dirs.push(dir);
        Writer { open, key }
    }

    async fn request(&self, req: Request<Body>) -> (StatusCode, Value) {
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 24)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn get(&self, uri: &str) -> (StatusCode, Value) {
        self.request(Request::get(uri).body(Body::empty()).unwrap())
            .await
    }

    async fn post_signup(&self, archive: &str) -> (StatusCode, Value) {
        self.request(
            Request::post("/v1/hosting/signup")
                .header("content-type", "application/json")
                .body(Body::from(json!({ "archive": archive }).to_string()))
                .unwrap(),
        )
        .await
    }

    /// Signs up and returns the nonce.
    async fn signup(&self, key: &PublicKey) -> [u8; 16] {
        let (s, v) = self.post_signup(&key.to_hex()).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["service"], format!("https://{HOST}/"));
        assert_eq!(v["proofPath"], format!("/proofs/{HOST}.json"));
        let mut nonce = [0u8; 16];
        hex::decode_to_slice(v["nonce"].as_str().unwrap(), &mut nonce).unwrap();
        nonce
    }

    /// Waits until the crawler's replica of `w` has everything `w` wrote.
    async fn replicated(&self, w: &Writer) {
        let want = w.open.log().len();
        wait(&format!("replication of {}", w.key), || {
            self.crawler
                .log(&w.key)
                .is_some_and(|l| l.info().contiguous >= want)
        })
        .await;
    }

    async fn status(&self, key: &PublicKey) -> Value {
        let (s, v) = self.get(&format!("/v1/hosting/{}", key.to_hex())).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v
    }

    async fn wait_status(
        &self,
        key: &PublicKey,
        what: &str,
        cond: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (s, v) = self.get(&format!("/v1/hosting/{}", key.to_hex())).await;
            if s == StatusCode::OK && cond(&v) {
                return v;
            }
            assert!(Instant::now() < deadline, "{what} never happened: {s} {v}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A full account for `w`: signup, proof, account.
    async fn account(&self, w: &Writer) {
        let nonce = self.signup(&w.key).await;
        write_proof(w, HOST, nonce);
        self.wait_status(&w.key, "the account", |v| v["account"] == true)
            .await;
    }
}

async fn wait(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "{what} never happened");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn post(open: &OpenArchive, text: &str) {
    open.put_file(&File::Status {
        id: StatusId::now(),
        status: Status::new(text, Timestamp::now()),
    })
    .unwrap();
}

fn write_proof(w: &Writer, host: &str, nonce: [u8; 16]) {
    w.open
        .put_file(&File::Proof(OwnershipProof {
            service: format!("https://{host}/").parse().unwrap(),
            nonce,
            created_at: Timestamp::now(),
        }))
        .unwrap();
}

fn request_hosting(w: &Writer, name: &str, of: &PublicKey) {
    w.open
        .put_file(&File::Hosting {
            name: name.into(),
            request: HostingRequest {
                url: ArchiveUrl::root((*of).into()),
            },
        })
        .unwrap();
}

fn proof_path() -> FilePath {
    format!("/proofs/{HOST}.json").parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signup_by_proof_creates_a_persistent_public_account() {
    let mut env = env(config(), true).await;
    let a = env.writer();
    // Before any signup the service knows nothing of the archive.
    let (s, _) = env.get(&format!("/v1/hosting/{}", a.key.to_hex())).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let nonce = env.signup(&a.key).await;
    let pending = env
        .wait_status(&a.key, "the missing proof reported", |v| {
            v["problem"]
                .as_str()
                .is_some_and(|p| p.contains("no proof"))
        })
        .await;
    assert_eq!(pending["account"], false);
    write_proof(&a, HOST, nonce);
    let v = env
        .wait_status(&a.key, "the account", |v| v["account"] == true)
        .await;
    let proof_entry = a.open.get(&proof_path()).unwrap().unwrap();
    assert_eq!(v["proof"]["seq"], proof_entry.entry.seq);
    assert_eq!(v["proof"]["hash"], hex::encode(proof_entry.entry.hash));
    // The account's own archive is hosted and counts toward the quota.
    let v = env
        .wait_status(&a.key, "the own archive hosted", |v| v["usedArchives"] == 1)
        .await;
    assert_eq!(v["archives"][0]["state"], "hosted", "{v}");
    assert_eq!(v["usedBytes"], a.open.info().byte_length);

    let (s, list) = env.get("/v1/hosting/accounts").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list["count"], 1);
    assert_eq!(list["accounts"][0]["archive"], a.key.to_hex());
    // A second signup of the same archive is refused.
    let (s, v) = env.post_signup(&a.key.to_hex()).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");

    // The accounts survive a restart of the service.
    let again = Hosting::open(env.crawler.clone(), config(), env.dir.path(), HOST).unwrap();
    assert_eq!(again.accounts(), env.hosting.accounts());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_nonce_is_refused() {
    let mut env = env(config(), true).await;
    let a = env.writer();
    let b = env.writer();
    let nonce = env.signup(&a.key).await;
    write_proof(&a, HOST, nonce);
    env.wait_status(&a.key, "A's account", |v| v["account"] == true)
        .await;
    // B asks too, but writes A's (spent) nonce.
    env.signup(&b.key).await;
    write_proof(&b, HOST, nonce);
    let v = env
        .wait_status(&b.key, "B's replay refused", |v| {
            v["problem"].as_str().is_some_and(|p| p.contains("unknown"))
        })
        .await;
    assert_eq!(v["account"], false);
    assert_eq!(env.hosting.accounts().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nonce_issued_for_another_archive_is_refused() {
    let mut env = env(config(), true).await;
    let a = env.writer();
    let b = env.writer();
    let c = env.writer();
    let nonce_a = env.signup(&a.key).await;
    env.signup(&b.key).await;
    // B writes the nonce issued to A.
    write_proof(&b, HOST, nonce_a);
    env.wait_status(&b.key, "B refused", |v| {
        v["problem"]
            .as_str()
            .is_some_and(|p| p.contains("another archive"))
    })
    .await;
    // C never asked: a proof in its archive creates nothing, even once the service holds it.
    write_proof(&c, HOST, nonce_a);
    env.crawler.learn(c.key).unwrap();
    env.replicated(&c).await;
    let h = env.hosting.clone();
    let ck = c.key;
    let r = tokio::task::spawn_blocking(move || h.claim(&ck))
        .await
        .unwrap();
    assert_eq!(r.unwrap_err(), HostingError::OtherArchive);
    let (s, _) = env.get(&format!("/v1/hosting/{}", c.key.to_hex())).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(env.hosting.accounts().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nonce_issued_by_another_service_is_refused() {
    let mut env = env(config(), true).await;
    let other = Hosting::open(
        env.crawler.clone(),
        config(),
        &env.dir.path().join("other"),
        "other.test",
    )
    .unwrap();
    let a = env.writer();
    let (foreign, _) = other.signup(a.key).unwrap();
    let mut foreign_nonce = [0u8; 16];
    hex::decode_to_slice(&foreign, &mut foreign_nonce).unwrap();
    env.signup(&a.key).await;
    // The other service's proof, at its own path: not ours.
    write_proof(&a, "other.test", foreign_nonce);
    env.wait_status(&a.key, "no proof for us", |v| {
        v["problem"]
            .as_str()
            .is_some_and(|p| p.contains("no proof"))
    })
    .await;
    // The other service's nonce in a proof naming us: unknown here.
    write_proof(&a, HOST, foreign_nonce);
    let v = env
        .wait_status(&a.key, "the foreign nonce refused", |v| {
            v["problem"].as_str().is_some_and(|p| p.contains("unknown"))
        })
        .await;
    assert_eq!(v["account"], false);
    assert!(env.hosting.accounts().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_nonce_is_refused() {
    let cfg = HostingConfig {
        nonce_ttl_ms: 300,
        ..config()
    };
    // No checker: the test runs the claim itself, right after the expiry.
    let mut env = env(cfg, false).await;
    let a = env.writer();
    let nonce = env.signup(&a.key).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    write_proof(&a, HOST, nonce);
    env.replicated(&a).await;
    let h = env.hosting.clone();
    let k = a.key;
    let r = tokio::task::spawn_blocking(move || h.claim(&k))
        .await
        .unwrap();
    assert_eq!(r.unwrap_err(), HostingError::Expired);
    // Expired nonces are dropped: a later check finds nothing pending.
    let h = env.hosting.clone();
    tokio::task::spawn_blocking(move || h.check())
        .await
        .unwrap();
    assert!(env.hosting.accounts().is_empty());
    let (s, _) = env.get(&format!("/v1/hosting/{}", a.key.to_hex())).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proof_deleted_before_the_check_creates_nothing() {
    let mut env = env(config(), false).await;
    let a = env.writer();
    let nonce = env.signup(&a.key).await;
    write_proof(&a, HOST, nonce);
    a.open.delete(&proof_path()).unwrap();
    env.replicated(&a).await;
    let h = env.hosting.clone();
    tokio::task::spawn_blocking(move || h.check())
        .await
        .unwrap();
    assert!(env.hosting.accounts().is_empty());
    let v = env.status(&a.key).await;
    assert!(v["problem"].as_str().unwrap().contains("no proof"), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weak_keys_and_bad_requests_are_refused() {
    let env = env(config(), true).await;
    let mut weak = [0u8; 32];
    weak[0] = 1;
    let (s, v) = env.post_signup(&hex::encode(weak)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("weak"),
        "{v}"
    );
    let (s, _) = env.get(&format!("/v1/hosting/{}", hex::encode(weak))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    for body in ["", "{}", "[1]", "{\"archive\": 5}", "{\"archive\": \"zz\"}"] {
        let (s, v) = env
            .request(
                Request::post("/v1/hosting/signup")
                    .body(Body::from(body))
                    .unwrap(),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {v}");
    }
    let (s, _) = env
        .request(
            Request::post("/v1/hosting/signup")
                .body(Body::from(vec![b' '; 100_000]))
                .unwrap(),
        )
        .await;
    assert!(s.is_client_error(), "{s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_signups_is_rate_limited() {
    let cfg = HostingConfig {
        signup_per_minute: 5.0,
        ..config()
    };
    let env = env(cfg, true).await;
    let mut codes = Vec::new();
    for _ in 0..8 {
        let key = KeyPair::generate().public();
        codes.push(env.post_signup(&key.to_hex()).await.0);
    }
    assert_eq!(&codes[..5], &[StatusCode::OK; 5]);
    assert_eq!(&codes[5..], &[StatusCode::TOO_MANY_REQUESTS; 3]);
    // Other endpoints are not affected.
    assert_eq!(env.get("/v1/hosting/accounts").await.0, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_claims_make_one_account() {
    let cfg = HostingConfig {
        max_nonces_per_archive: 1000,
        ..config()
    };
    let mut env = env(cfg, false).await;
    let a = env.writer();
    let env = Arc::new(env);
    let mut signups = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let env = env.clone();
        let key = a.key;
        signups.spawn(async move { env.signup(&key).await });
    }
    let nonces = signups.join_all().await;
    assert_eq!(nonces.len(), 100);
    write_proof(&a, HOST, nonces[37]);
    env.replicated(&a).await;
    let mut claims = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let h = env.hosting.clone();
        let k = a.key;
        claims.spawn_blocking(move || h.claim(&k));
    }
    let results = claims.join_all().await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .all(|e| *e == HostingError::AccountExists(a.key)));
    assert_eq!(env.hosting.accounts().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_small_archives_cannot_bypass_the_archive_quota() {
    let cfg = HostingConfig {
        max_archives: 3,
        ..config()
    };
    let mut env = env(cfg, true).await;
    let a = env.writer();
    let others: Vec<Writer> = (0..4).map(|_| env.writer()).collect();
    env.account(&a).await;
    for (i, o) in others.iter().enumerate() {
        request_hosting(&a, &format!("site-{i}"), &o.key);
    }
    let v = env
        .wait_status(&a.key, "all requests seen", |v| {
            v["archives"].as_array().is_some_and(|l| l.len() == 5)
        })
        .await;
    let states: Vec<&str> = v["archives"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        ["hosted", "hosted", "hosted", "refused", "refused"],
        "{v}"
    );
    assert!(v["archives"][3]["reason"]
        .as_str()
        .unwrap()
        .contains("quota of 3 archives"));
    assert_eq!(v["usedArchives"], 3);
    // Refused archives are not held and take no disk space.
    for o in &others[2..] {
        assert!(!env.crawler.holds(&o.key));
        assert!(!env.crawler.store().archive_dir(&o.key).exists());
    }
    // The hosted ones replicate.
    for o in &others[..2] {
        env.replicated(o).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archive_that_grows_past_the_quota_stops_updating_and_deleting_the_request_frees_it() {
    let cfg = HostingConfig {
        max_bytes: 2000,
        ..config()
    };
    let mut env = env(cfg, true).await;
    let a = env.writer();
    let b = env.writer();
    env.account(&a).await;
    request_hosting(&a, "blog", &b.key);
    let v = env
        .wait_status(&a.key, "B hosted", |v| {
            v["archives"][1]["state"] == "hosted"
        })
        .await;
    assert!(v["usedBytes"].as_u64().unwrap() < 2000, "{v}");
    env.replicated(&b).await;
    // B keeps growing past the quota.
    for i in 0..20 {
        post(&b.open, &format!("growing {i} {}", "x".repeat(100)));
    }
    let v = env
        .wait_status(&a.key, "B frozen", |v| {
            v["archives"][1]["state"] == "frozen"
        })
        .await;
    assert!(
        v["archives"][1]["reason"]
            .as_str()
            .unwrap()
            .contains("no longer updated"),
        "{v}"
    );
    assert_eq!(v["archives"][0]["state"], "hosted", "{v}");
    let frozen_at = env.crawler.log(&b.key).unwrap().len();
    // A restarted service remembers that B was accepted once: still frozen, not refused.
    let cfg = HostingConfig {
        max_bytes: 2000,
        ..config()
    };
    let again = Hosting::open(env.crawler.clone(), cfg, env.dir.path(), HOST).unwrap();
    let h = again.clone();
    tokio::task::spawn_blocking(move || h.check())
        .await
        .unwrap();
    let v = again.status(&a.key).unwrap();
    assert_eq!(v["archives"][1]["state"], "frozen", "{v}");
    drop(again);
    // Frozen: further appends do not reach the service.
    for i in 0..5 {
        post(&b.open, &format!("more {i}"));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(env.crawler.log(&b.key).unwrap().len(), frozen_at);
    assert!(frozen_at < b.open.log().len());
    // Deleting the request stops the hosting and frees the disk space.
    a.open
        .delete(&"/hosting/blog.json".parse().unwrap())
        .unwrap();
    env.wait_status(&a.key, "B released", |v| {
        v["archives"].as_array().is_some_and(|l| l.len() == 1)
    })
    .await;
    wait("B's replica deleted", || {
        !env.crawler.holds(&b.key) && !env.crawler.store().archive_dir(&b.key).exists()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_hosting_names_are_ignored() {
    let mut env = env(config(), true).await;
    let a = env.writer();
    let b = env.writer();
    env.account(&a).await;
    let url = format!("hyper://{}/", b.key.to_hex());
    // Raw entries no honest client would write: `..`, a control character, a bad name.
    for path in [
        "/hosting/../evil.json",
        "/hosting/a\u{7}b.json",
        "/hosting/x/../../y.json",
        "/hosting/Bad Name.json",
        "/hosting/.json",
    ] {
        let raw = json!({"op": "put", "path": path, "v": 1, "value": {"url": url}});
        a.open.log().append(raw.to_string().as_bytes()).unwrap();
    }
    request_hosting(&a, "ok", &a.key);
    env.replicated(&a).await;
    let v = env
        .wait_status(&a.key, "the account re-checked", |v| {
            v["usedBytes"] == a.open.info().byte_length
        })
        .await;
    // Only the own archive (also named by /hosting/ok.json, counted once) is hosted.
    assert_eq!(v["archives"].as_array().unwrap().len(), 1, "{v}");
    assert!(!env.crawler.holds(&b.key));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archive_already_over_the_quota_is_refused() {
    let cfg = HostingConfig {
        max_bytes: 2000,
        ..config()
    };
    let mut env = env(cfg, true).await;
    let a = env.writer();
    let big = env.writer();
    for i in 0..20 {
        post(&big.open, &format!("big {i} {}", "x".repeat(100)));
    }
    env.account(&a).await;
    // The crawler already holds the big archive in full when A asks for it.
    env.crawler.learn(big.key).unwrap();
    env.replicated(&big).await;
    request_hosting(&a, "big", &big.key);
    let v = env
        .wait_status(&a.key, "the big archive refused", |v| {
            v["archives"][1]["state"] == "refused"
        })
        .await;
    assert!(
        v["archives"][1]["reason"]
            .as_str()
            .unwrap()
            .contains("past its quota of 2000 bytes"),
        "{v}"
    );
    assert_eq!(v["usedArchives"], 1);
    // The crawler held it before hosting asked (it crawls it), so hosting leaves it there.
    assert!(env.crawler.holds(&big.key));
    // Later checks keep refusing it.
    for _ in 0..3 {
        let h = env.hosting.clone();
        tokio::task::spawn_blocking(move || h.check())
            .await
            .unwrap();
    }
    assert_eq!(env.status(&a.key).await["archives"][1]["state"], "refused");
}
