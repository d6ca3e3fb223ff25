//! The swarm: discovery wired to the replication node. Direct peers are kept connected and
//! redialed after a restart, dead addresses are backed off, and two swarms that share only a
//! local DHT testnet find each other and replicate.

use std::time::Duration;

use crate::replicate_support::*;
use fritter_common::crypto::KeyPair;
use fritter_common::discovery;
use fritter_common::replicate::NodeConfig;
use fritter_common::swarm::{Swarm, SwarmConfig};

fn config(listen: &str, discovery: discovery::Config) -> SwarmConfig {
    SwarmConfig {
        node: NodeConfig {
            listen: Some(listen.parse().expect("address")),
            ..NodeConfig::default()
        },
        discovery,
    }
}

fn direct(peers: &[String]) -> discovery::Config {
    let mut d = discovery::Config::offline();
    d.peers = peers.to_vec();
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_peer_is_kept_connected_live_and_redialed_after_a_restart() {
    trace();
    let dir = tempfile::tempdir().expect("tempdir");
    let kp = KeyPair::from_seed(&[7; 32]);
    let w = writer(&dir.path().join("w"), &kp);
    fill(&w, 0, 500);
    let r = replica(&dir.path().join("r"), &kp);

    let server = Swarm::start(config("127.0.0.1:0", direct(&[])))
        .await
        .expect("server");
    let addr = server.local_addr().expect("listening");
    server.add(w.clone());
    let client = Swarm::start(config("127.0.0.1:0", direct(&[addr.to_string()])))
        .await
        .expect("client");
    client.add(r.clone());

    assert!(
        within(30, "catching up", client.caught_up(Duration::from_secs(30))).await,
        "caught up"
    );
    assert_same(&r, &w);
    let progress = client.progress();
    assert_eq!(progress.len(), 1);
    assert_eq!(progress[0].peers, 1);
    assert_eq!(progress[0].remote_length, 500);

    // Live.
    let w2 = w.clone();
    tokio::task::spawn_blocking(move || fill(&w2, 500, 510))
        .await
        .expect("join");
    wait_status(&r, 10, "the live appends", |s| s.contiguous == 510).await;

    // The peer goes away: the address is backed off and shown so.
    server.shutdown().await;
    drop(server);
    within(15, "a failed redial", async {
        loop {
            let status = client.status().await;
            let backed_off = status.addresses.iter().any(|a| {
                a.addr == addr && !a.connected && a.failures > 0 && a.last_error.is_some()
            });
            if backed_off {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;

    // It comes back on the same address with more entries: redialed, caught up.
    fill(&w, 510, 600);
    let server = Swarm::start(config(&addr.to_string(), direct(&[])))
        .await
        .expect("server again");
    server.add(w.clone());
    wait_status(&r, 30, "the entries written while apart", |s| {
        s.contiguous == 600
    })
    .await;
    assert_same(&r, &w);
    let status = client.status().await;
    assert_eq!(status.connections.len(), 1, "one connection: {status:?}");
    client.shutdown().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_address_is_backed_off_not_hammered() {
    trace();
    // A port nobody listens on.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let kp = KeyPair::from_seed(&[8; 32]);
    let r = replica(&dir.path().join("r"), &kp);
    let client = Swarm::start(config("127.0.0.1:0", direct(&[dead.to_string()])))
        .await
        .expect("client");
    client.add(r);
    tokio::time::sleep(Duration::from_secs(4)).await;
    let status = client.status().await;
    let a = status
        .addresses
        .iter()
        .find(|a| a.addr == dead)
        .expect("the direct peer is known");
    // Retries at 1 s then 2 s (plus jitter): at most three dials in four seconds, not hundreds.
    assert!(
        (1..=3).contains(&a.failures),
        "failures after 4 s: {}",
        a.failures
    );
    assert!(a.last_error.as_deref().unwrap_or("").contains("connect"));
    assert!(!client.caught_up(Duration::from_millis(200)).await);
    client.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_swarms_find_each_other_through_a_local_dht() {
    trace();
    let testnet = mainline::Testnet::builder(10).build().expect("testnet");
    let dht = |d: &mut discovery::Config| {
        d.dht.bootstrap = testnet.bootstrap.clone();
        d.dht.bind_address = Some(std::net::Ipv4Addr::LOCALHOST);
        d.lookup_interval_secs = 1;
        d.query_timeout_secs = 5;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let kp = KeyPair::from_seed(&[9; 32]);
    let w = writer(&dir.path().join("w"), &kp);
    fill(&w, 0, 200);
    let r = replica(&dir.path().join("r"), &kp);

    let mut d = discovery::Config::offline();
    dht(&mut d);
    let server = Swarm::start(config("127.0.0.1:0", d.clone()))
        .await
        .expect("server");
    server.add(w.clone());
    let client = Swarm::start(config("127.0.0.1:0", d))
        .await
        .expect("client");
    client.add(r.clone());
    wait_status(&r, 60, "replication through the DHT", |s| {
        s.contiguous == 200
    })
    .await;
    assert_same(&r, &w);
    let status = client.status().await;
    assert!(
        status
            .addresses
            .iter()
            .any(|a| a.source == "dht" && a.connected),
        "{status:?}"
    );
    client.shutdown().await;
    server.shutdown().await;
}
