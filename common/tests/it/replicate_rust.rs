//! Rust to Rust replication over real TCP on loopback: a full download, live appends, resuming
//! after a reconnect without downloading again, and two archives over one connection.

use crate::replicate_support::*;
use fritter_common::crypto::KeyPair;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_live_resume_and_two_archives_over_one_connection() {
    trace();
    let dir = tempfile::tempdir().expect("tempdir");
    let kp = KeyPair::from_seed(&[1; 32]);
    let w = writer(&dir.path().join("w"), &kp);
    fill(&w, 0, 10_000);
    let r = replica(&dir.path().join("r"), &kp);

    let server = listening_node().await;
    let addr = server.local_addr().expect("listening");
    server.add(w.clone());
    let client = dialing_node().await;
    client.add(r.clone());
    client.connect(addr).await.expect("connect");

    // Full replication.
    wait_status(&r, 30, "10,000 entries", |s| s.contiguous == 10_000).await;
    assert_same(&r, &w);
    assert_eq!(client.stats().blocks_downloaded, 10_000);

    // Live: a new append reaches the connected replica without polling.
    let w2 = w.clone();
    tokio::task::spawn_blocking(move || w2.append(&entry(10_000)))
        .await
        .expect("join")
        .expect("append");
    wait_status(&r, 10, "the live append", |s| s.contiguous == 10_001).await;
    assert_same(&r, &w);

    // Disconnect, append while apart, reconnect: only the new entries travel.
    assert_eq!(client.disconnect(addr), 1);
    wait_until(10, "the connection to close", || {
        client.peers().is_empty() && server.peers().is_empty()
    })
    .await;
    let w2 = w.clone();
    tokio::task::spawn_blocking(move || fill(&w2, 10_001, 10_101))
        .await
        .expect("join");
    let before = client.stats().blocks_downloaded;
    client.connect(addr).await.expect("reconnect");
    wait_status(&r, 10, "the entries appended while apart", |s| {
        s.contiguous == 10_101
    })
    .await;
    assert_same(&r, &w);
    assert_eq!(
        client.stats().blocks_downloaded - before,
        100,
        "resumed without downloading again"
    );

    // A second archive, added at runtime on both sides, shares the connection.
    let kp2 = KeyPair::from_seed(&[2; 32]);
    let w_b = writer(&dir.path().join("w2"), &kp2);
    fill(&w_b, 0, 500);
    let r_b = replica(&dir.path().join("r2"), &kp2);
    server.add(w_b.clone());
    client.add(r_b.clone());
    wait_status(&r_b, 10, "the second archive", |s| s.contiguous == 500).await;
    assert_same(&r_b, &w_b);
    let peers = client.peers();
    assert_eq!(peers.len(), 1, "one connection: {peers:?}");
    wait_until(10, "two channels on the connection", || {
        client.peers().first().is_some_and(|p| p.channels == 2)
    })
    .await;

    // Both archives stay live over that connection.
    let (wa, wb) = (w.clone(), w_b.clone());
    tokio::task::spawn_blocking(move || {
        wa.append(&entry(10_101)).expect("append a");
        wb.append(&entry(500)).expect("append b");
    })
    .await
    .expect("join");
    wait_status(&r, 10, "live append on the first archive", |s| {
        s.contiguous == 10_102
    })
    .await;
    wait_status(&r_b, 10, "live append on the second archive", |s| {
        s.contiguous == 501
    })
    .await;

    // Removing an archive closes its channel only.
    assert!(client.remove(&kp2.public()).is_some());
    // Generous: under a loaded CI machine a blocking apply job may finish first.
    wait_until(30, "the channel to close", || {
        client.peers().first().is_some_and(|p| p.channels == 1)
    })
    .await;

    within(10, "shutdown", client.shutdown()).await;
    within(10, "shutdown", server.shutdown()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_downloads_from_two_peers_at_once_without_duplicates() {
    trace();
    let dir = tempfile::tempdir().expect("tempdir");
    let kp = KeyPair::from_seed(&[4; 32]);
    let w = writer(&dir.path().join("w"), &kp);
    fill(&w, 0, 20_000);
    // A first replica, complete, serves as a second source.
    let r1 = replica(&dir.path().join("r1"), &kp);
    let wn = listening_node().await;
    wn.add(w.clone());
    let r1n = listening_node().await;
    r1n.add(r1.clone());
    r1n.connect(wn.local_addr().expect("addr"))
        .await
        .expect("connect");
    wait_status(&r1, 30, "the first replica", |s| s.contiguous == 20_000).await;

    let r2 = replica(&dir.path().join("r2"), &kp);
    let r2n = dialing_node().await;
    r2n.add(r2.clone());
    r2n.connect(wn.local_addr().expect("addr"))
        .await
        .expect("connect");
    r2n.connect(r1n.local_addr().expect("addr"))
        .await
        .expect("connect");
    wait_status(&r2, 30, "the second replica", |s| s.contiguous == 20_000).await;
    assert_same(&r2, &w);
    let from_writer = wn.stats().blocks_uploaded - 20_000;
    let from_replica = r1n.stats().blocks_uploaded;
    eprintln!("second replica: {from_writer} blocks from the writer, {from_replica} from the first replica");
    assert_eq!(
        r2n.stats().blocks_downloaded,
        20_000,
        "every block stored once"
    );
    assert!(from_writer + from_replica >= 20_000);

    // Live appends reach it whichever peer serves them.
    let w2 = w.clone();
    tokio::task::spawn_blocking(move || fill(&w2, 20_000, 20_010))
        .await
        .expect("join");
    wait_status(&r2, 10, "live appends through two peers", |s| {
        s.contiguous == 20_010
    })
    .await;
    assert_same(&r2, &w);
}
