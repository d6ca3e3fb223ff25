//! Discovery over the mainline DHT, on a local `mainline::Testnet` of 10 nodes bound to
//! 127.0.0.1: nothing leaves the machine and no public bootstrap node is contacted (every
//! `Discovery` here gets the testnet's loopback addresses as its bootstrap list).

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::time::Duration;

use fritter_common::crypto::KeyPair;
use fritter_common::discovery::{Config, DhtStatus, Discovery, PeerAddr, Source};
use mainline::Testnet;
use tokio::time::{timeout, timeout_at, Instant};
use tokio_stream::StreamExt;
use tokio_util::sync::CancellationToken;

/// A port that is really ours: the listener stays open for the test's lifetime.
fn listener() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

fn config(bootstrap: &[String]) -> Config {
    let mut config = Config::offline();
    config.dht.bootstrap = bootstrap.to_vec();
    config.dht.bind_address = Some(Ipv4Addr::LOCALHOST);
    config.lookup_interval_secs = 1;
    config.query_timeout_secs = 15;
    config
}

async fn wait_announced(discovery: &Discovery, deadline: Instant) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tick.tick().await;
        if discovery.status().await.announced_ok == 1 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "announce not accepted by the testnet in time"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dht_announce_lookup_and_unknown_key() {
    let testnet = Testnet::builder(10).build().unwrap();
    assert!(
        testnet
            .bootstrap
            .iter()
            .all(|a| a.starts_with("127.0.0.1:")),
        "{:?}",
        testnet.bootstrap
    );
    let cancel = CancellationToken::new();
    let (_a_listener, a_addr) = listener();
    let (_b_listener, b_addr) = listener();
    let a = Discovery::start(config(&testnet.bootstrap), a_addr, &cancel)
        .await
        .unwrap();
    let b = Discovery::start(config(&testnet.bootstrap), b_addr, &cancel)
        .await
        .unwrap();
    match a.status().await.dht {
        DhtStatus::Running { local_addr, .. } => {
            assert!(local_addr.ip().is_loopback(), "{local_addr}")
        }
        other => panic!("dht should run, is {other:?}"),
    }

    let key = KeyPair::generate().public().discovery_key();
    a.announce(key).unwrap();
    a.announce(key).unwrap(); // idempotent
    b.announce(key).unwrap(); // B's own address must never come back to B

    // B watches the key (a round per second) until A's address streams in.
    let deadline = Instant::now() + Duration::from_secs(25);
    let mut watch = b.watch(key);
    loop {
        match timeout_at(deadline, watch.next()).await {
            Ok(Some(PeerAddr { addr, source })) => {
                assert_eq!(source, Source::Dht);
                assert_ne!(addr, b_addr, "a lookup returned our own address");
                if addr == a_addr {
                    break;
                }
            }
            Ok(None) => panic!("watch ended"),
            Err(_) => panic!("A's address {a_addr} not found by B within 25 s"),
        }
    }
    drop(watch);

    // Once both announces are accepted, one full lookup round by A finds B and never A itself.
    wait_announced(&a, deadline).await;
    wait_announced(&b, deadline).await;
    let found: Vec<PeerAddr> = timeout(Duration::from_secs(20), a.lookup(key).collect())
        .await
        .unwrap();
    let addrs: Vec<SocketAddr> = found.iter().map(|p| p.addr).collect();
    assert!(
        addrs.contains(&b_addr),
        "A's lookup {addrs:?} lacks B {b_addr}"
    );
    assert!(
        !addrs.contains(&a_addr),
        "A's lookup {addrs:?} returned A itself"
    );
    assert_eq!(
        addrs.len(),
        found
            .iter()
            .map(|p| p.addr)
            .collect::<std::collections::HashSet<_>>()
            .len(),
        "duplicates in {addrs:?}"
    );

    // A node that announces the key and looks it up at once still hears the others (mainline
    // folds a lookup into a running announce query of the same key; discovery orders the two).
    let (_c_listener, c_addr) = listener();
    let c = Discovery::start(config(&testnet.bootstrap), c_addr, &cancel)
        .await
        .unwrap();
    c.announce(key).unwrap();
    let found: Vec<SocketAddr> =
        timeout(Duration::from_secs(30), c.lookup(key).collect::<Vec<_>>())
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.addr)
            .collect();
    assert!(
        found.contains(&a_addr) && found.contains(&b_addr),
        "C found {found:?}"
    );
    assert!(!found.contains(&c_addr), "C found itself: {found:?}");
    assert_eq!(c.status().await.announced_ok, 1);
    c.shutdown().await;

    // A key nobody announced: the lookup round runs to its end and finds nothing.
    let unknown = KeyPair::generate().public().discovery_key();
    let started = std::time::Instant::now();
    let found: Vec<PeerAddr> = timeout(Duration::from_secs(20), b.lookup(unknown).collect())
        .await
        .unwrap();
    assert!(found.is_empty(), "unannounced key found {found:?}");
    eprintln!("unknown-key lookup ended after {:?}", started.elapsed());

    assert!(b.unannounce(&key));
    assert!(!b.unannounce(&key));
    assert_eq!(b.status().await.announced, 0);

    // Shutdown ends open lookups.
    let mut open = b.watch(unknown);
    a.shutdown().await;
    b.shutdown().await;
    assert_eq!(
        timeout(Duration::from_secs(5), open.next()).await.unwrap(),
        None
    );
}
