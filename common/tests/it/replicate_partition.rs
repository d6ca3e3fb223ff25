//! A partition and heal with three nodes: a writer A, a replica B connected to it directly, and a
//! replica C that reaches both through TCP proxies. The proxies black-hole C (traffic held, not
//! forwarded) while A keeps appending; long enough that the idle timeout drops C's connections.
//! After the heal C dials again; all three converge to the same length and root, and nobody is
//! blamed for the partition.
//!
//! The proxies stand in for network namespaces with nft rules: they need no root and run the
//! same on every CI machine.

use std::time::Duration;

use crate::replicate_support::*;
use fritter_common::crypto::KeyPair;
use fritter_common::replicate::{Node, NodeConfig};

fn config() -> NodeConfig {
    NodeConfig {
        listen: Some("127.0.0.1:0".parse().expect("addr")),
        idle_timeout: Duration::from_secs(2),
        ..NodeConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_converge_after_a_partition_heals() {
    trace();
    let dir = tempfile::tempdir().expect("tempdir");
    let kp = KeyPair::from_seed(&[12; 32]);
    let w = writer(&dir.path().join("a"), &kp);
    fill(&w, 0, 100);
    let rb = replica(&dir.path().join("b"), &kp);
    let rc = replica(&dir.path().join("c"), &kp);
    let a = Node::start(config()).await.expect("a");
    a.add(w.clone());
    let b = Node::start(config()).await.expect("b");
    b.add(rb.clone());
    let c = Node::start(config()).await.expect("c");
    c.add(rc.clone());
    let to_a = proxy::Proxy::start(a.local_addr().expect("addr"));
    let to_b = proxy::Proxy::start(b.local_addr().expect("addr"));

    b.connect(a.local_addr().expect("addr")).await.expect("b-a");
    c.connect(to_a.addr).await.expect("c-a");
    c.connect(to_b.addr).await.expect("c-b");
    for r in [&rb, &rc] {
        wait_status(r, 20, "the first 100 entries", |s| s.contiguous == 100).await;
    }

    // Partition C off; A keeps appending and B keeps following.
    to_a.block();
    to_b.block();
    let writing = {
        let w = w.clone();
        tokio::task::spawn_blocking(move || {
            for i in 0..30 {
                fill(&w, 100 + 10 * i, 110 + 10 * i);
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    wait_status(&rb, 20, "B to follow A during the partition", |s| {
        s.contiguous >= 200
    })
    .await;
    // C hears nothing: its connections go silent and are dropped.
    wait_until(20, "C to drop its silent connections", || {
        c.peers().is_empty()
    })
    .await;
    assert!(rc.info().length < 200, "C was cut off: {:?}", rc.info());
    writing.await.expect("writer");

    // Heal: C dials again, through the same paths.
    to_a.heal();
    to_b.heal();
    to_a.reset();
    to_b.reset();
    c.connect(to_a.addr).await.expect("c-a again");
    c.connect(to_b.addr).await.expect("c-b again");
    for r in [&rb, &rc] {
        wait_status(r, 30, "convergence", |s| s.contiguous == 400).await;
    }
    assert_same(&rb, &w);
    assert_same(&rc, &w);
    assert_eq!(rb.info().tree_hash, rc.info().tree_hash);
    for n in [&a, &b, &c] {
        assert!(
            n.disconnects().iter().all(|d| !d.fault),
            "a partition is nobody's fault: {:?}",
            n.disconnects()
        );
    }
}
