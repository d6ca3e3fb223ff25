//! A legitimate truncate: replicas follow a writer that truncates its log.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_follow_a_writer_that_truncates() {
    trace();
    let dir = tempfile::tempdir().expect("tempdir");
    let kp = KeyPair::from_seed(&[5; 32]);
    let w = writer(&dir.path().join("w"), &kp);
    fill(&w, 0, 40);
    let r = replica(&dir.path().join("r"), &kp);
    let wn = listening_node().await;
    wn.add(w.clone());
    let rn = dialing_node().await;
    rn.add(r.clone());
    rn.connect(wn.local_addr().expect("addr"))
        .await
        .expect("connect");
    wait_status(&r, 20, "the first 40 entries", |s| s.contiguous == 40).await;

    // The writer cuts to 25 and writes 15 other entries: fork 1, same length, other content.
    tokio::task::block_in_place(|| {
        w.truncate(25).expect("truncate");
        let blocks: Vec<Vec<u8>> = (25..40).map(entry1).collect();
        let refs: Vec<&[u8]> = blocks.iter().map(Vec::as_slice).collect();
        w.append_batch(&refs).expect("append");
    });
    wait_status(&r, 20, "the replica to follow the new fork", |s| {
        s.fork == 1 && s.contiguous == 40
    })
    .await;
    assert_same(&r, &w);
    assert_eq!(r.get(30).expect("get"), entry1(30));
    assert!(!r.is_forked(), "a truncate is not an equivocation");
    assert!(
        rn.disconnects().iter().all(|d| !d.fault),
        "{:?}",
        rn.disconnects()
    );

    // A replica that only knew fork 0 catches up too, and one that starts empty.
    let late = replica(&dir.path().join("late"), &kp);
    let ln = dialing_node().await;
    ln.add(late.clone());
    ln.connect(wn.local_addr().expect("addr"))
        .await
        .expect("connect");
    wait_status(&late, 20, "a new replica", |s| {
        s.fork == 1 && s.contiguous == 40
    })
    .await;
    assert_same(&late, &w);

    // The replica reopens on the new fork.
    rn.shutdown().await;
    let info = r.info();
    drop(r);
    let again = Log::open(
        &DiskStorage::new(dir.path().join("r")),
        kp.public(),
        Access::View,
    )
    .expect("reopen");
    assert_eq!(again.info().tree_hash, info.tree_hash);
    assert_eq!(
        again.read_range(0, 40).expect("read"),
        w.read_range(0, 40).expect("read")
    );
}
