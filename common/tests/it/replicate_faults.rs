//! Connections cut at random byte offsets during a download. A replica downloads through a TCP
//! proxy that cuts the connection after a seeded number of bytes (`FRITTER_FAULT_SEEDS` seeds,
//! default 8); then it finishes from another peer serving the same archive. Checks, per seed:
//! every block stored after the cut verifies (nothing partial or unverified was kept), the
//! download completes from the other peer, and once the replica's node shuts down its tasks are
//! gone and no file descriptor leaked.

use std::time::Duration;

use crate::replicate_support::*;
use fritter_common::crypto::KeyPair;
use fritter_common::replicate::{Node, NodeConfig};

const ENTRIES: u64 = 3000;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

fn fd_targets() -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .map(|p| p.display().to_string())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn seeds() -> u64 {
    std::env::var("FRITTER_FAULT_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_cut_at_any_byte_finishes_from_another_peer() {
    // Counts the process's open descriptors: other tests of this binary must not run beside it.
    if !crate::alone::in_own_process(
        module_path!(),
        "a_download_cut_at_any_byte_finishes_from_another_peer",
    ) {
        return;
    }
    trace();
    let dir = tempfile::tempdir().expect("tempdir");
    let kp = KeyPair::from_seed(&[11; 32]);
    let w = writer(&dir.path().join("w"), &kp);
    tokio::task::block_in_place(|| fill(&w, 0, ENTRIES));
    // Two nodes serve the same log: the first through the cutting proxy, the second directly.
    let first = listening_node().await;
    first.add(w.clone());
    let second = listening_node().await;
    second.add(w.clone());
    let total = w.info().byte_length;

    let first_seed = std::env::var("FRITTER_FAULT_FIRST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    for seed in first_seed..first_seed + seeds() {
        let proxy = proxy::Proxy::start(first.local_addr().expect("addr"));
        // splitmix64 of the seed: anywhere from the first handshake byte to late in the download.
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        let cut = (z ^ (z >> 31)) % (total + 2000);
        proxy.cut_after(cut);

        let fds_before = open_fds();
        let targets_before = fd_targets();
        let tasks_before = tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks();
        let r = replica(&dir.path().join(format!("r{seed}")), &kp);
        let node = Node::start(NodeConfig::default()).await.expect("node");
        node.add(r.clone());
        node.connect(proxy.addr).await.expect("connect via proxy");
        wait_until(20, "the proxy to cut the connection", || proxy.cuts() > 0).await;
        wait_until(20, "the node to notice the cut", || node.peers().is_empty()).await;
        // Whatever was stored before the cut verifies.
        let info = r.info();
        let mut held = 0;
        for seq in 0..info.length {
            if r.has(seq).expect("has") {
                assert_eq!(
                    r.get(seq).expect("a stored block verifies"),
                    entry(seq),
                    "seed {seed}"
                );
                held += 1;
            }
        }
        eprintln!(
            "seed {seed}: cut after {cut} of ~{total} bytes; {held} blocks kept, head {}",
            info.length
        );

        node.connect(second.local_addr().expect("addr"))
            .await
            .expect("connect");
        wait_status(&r, 30, "the download to finish from the other peer", |s| {
            s.contiguous == ENTRIES
        })
        .await;
        assert_same(&r, &w);
        assert!(
            node.disconnects().iter().all(|d| !d.fault),
            "a cut is not the peer's fault: {:?}",
            node.disconnects()
        );

        node.shutdown().await;
        drop(node);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while std::sync::Arc::strong_count(&r) > 1 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            std::sync::Arc::strong_count(&r),
            1,
            "seed {seed}: the node still holds the replica"
        );
        drop(r);
        drop(proxy);
        wait_until(10, "the node's tasks to end", || {
            tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks()
                <= tasks_before
        })
        .await;
        // The serving node closes its side of the dropped connection a moment later.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while open_fds() > fds_before && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            open_fds() <= fds_before,
            "seed {seed}: {} fds open, {fds_before} before: now {:?}, before {:?}",
            open_fds(),
            fd_targets(),
            targets_before
        );
    }
}
