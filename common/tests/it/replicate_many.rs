//! Many archives over one connection: 600 small archives from one node to another, all through
//! the single connection the reader dials. With this many channels, `hypercore-protocol` sends
//! batches that switch channel mid-frame (it queues messages from every channel while the socket
//! is busy), the shape its own decoder mis-reads; the guard must hand it only frames it decodes
//! exactly. Before that was fixed, this connection broke with "Invalid message type to decode"
//! or "received invalid message length" within the first second.

use std::sync::Arc;

use crate::replicate_support::*;
use fritter_common::crypto::KeyPair;
use fritter_common::log::Log;

const ARCHIVES: usize = 600;
const ENTRIES: u64 = 12;

fn seed(i: usize) -> [u8; 32] {
    let mut s = [0u8; 32];
    s[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
    s[8] = 0x6d;
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_hundred_archives_replicate_over_one_connection() {
    trace();
    let dir = tempfile::tempdir().expect("tempdir");
    let base = dir.path().to_path_buf();
    // Building 1,200 logs is blocking disk work.
    let (writers, replicas): (Vec<Arc<Log>>, Vec<Arc<Log>>) =
        tokio::task::spawn_blocking(move || {
            (0..ARCHIVES)
                .map(|i| {
                    let kp = KeyPair::from_seed(&seed(i));
                    let w = writer(&base.join(format!("w{i}")), &kp);
                    fill(&w, 0, ENTRIES);
                    (w, replica(&base.join(format!("r{i}")), &kp))
                })
                .unzip()
        })
        .await
        .expect("join");

    let server = listening_node().await;
    let addr = server.local_addr().expect("listening");
    for w in &writers {
        server.add(w.clone());
    }
    let client = dialing_node().await;
    for r in &replicas {
        client.add(r.clone());
    }
    client.connect(addr).await.expect("connect");

    // Until every replica is complete or the connection ends (which should fail at once, not
    // after the deadline).
    let complete = || {
        replicas
            .iter()
            .filter(|r| r.info().contiguous >= ENTRIES)
            .count()
    };
    wait_until(45, "every replica to complete", || {
        complete() == ARCHIVES || !client.disconnects().is_empty()
    })
    .await;
    assert!(
        client.disconnects().is_empty(),
        "the connection ended with {}/{ARCHIVES} replicas complete: {:?}",
        complete(),
        client.disconnects()
    );
    for (r, w) in replicas.iter().zip(&writers) {
        assert_same(r, w);
    }
    let peers = client.peers();
    assert_eq!(peers.len(), 1, "one connection: {peers:?}");
    wait_until(10, "a channel per archive", || {
        client
            .peers()
            .first()
            .is_some_and(|p| p.channels == ARCHIVES)
    })
    .await;
    // No block travelled twice (an archive's first block may come with its upgrade proof,
    // which is not counted as a block request).
    assert!(client.stats().blocks_downloaded <= ARCHIVES as u64 * ENTRIES);

    client.shutdown().await;
    server.shutdown().await;
}
