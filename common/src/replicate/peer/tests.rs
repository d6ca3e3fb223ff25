//! Unit tests of the replicator, and replication races made repeatable with the archive's test
//! hooks ([`crate::replicate::node::Hooks`]): real nodes over loopback TCP, held at chosen points.

use std::sync::{Condvar, Mutex};

use super::*;
use crate::crypto::KeyPair;
use crate::log::{Access, DiskStorage};
use crate::replicate::{Node, NodeConfig};

#[test]
fn remote_ranges_merge_and_drop() {
    let mut r = Remote {
        length: 1000,
        ..Remote::default()
    };
    r.add_range(10, 20);
    r.add_range(30, 40);
    assert!(r.has(10) && r.has(19) && !r.has(20) && !r.has(5));
    r.add_range(20, 30);
    assert_eq!(r.ranges.len(), 1);
    r.add_range(0, 10);
    assert_eq!(r.contiguous, 40);
    assert!(r.ranges.is_empty());
    r.drop_range(15, 17);
    assert_eq!(r.contiguous, 15);
    assert!(!r.has(15) && !r.has(16) && r.has(17) && r.has(39) && !r.has(40));
    assert!(!r.has(1000));
}

#[test]
fn ancestors() {
    assert_eq!(ancestor(5, 0), 10);
    assert_eq!(ancestor(5, 1), flat::parent(10));
    assert_eq!(ancestor(5, 2), flat::parent(flat::parent(10)));
}

/// What the hooks saw, shared between the replicators' threads and the test.
#[derive(Debug, Default)]
struct Probe {
    /// (our length, the length the peer acknowledged) each time a replicator found the upgrade
    /// claim taken.
    busy: Vec<(u64, u64)>,
    /// The log after that upgrade was stored: (length, contiguous).
    stored_at: Option<(u64, u64)>,
    /// The held job was let go because its condition never came.
    gave_up: bool,
}

async fn node(listen: bool) -> Node {
    Node::start(NodeConfig {
        listen: listen.then(|| "127.0.0.1:0".parse().expect("addr")),
        ..NodeConfig::default()
    })
    .await
    .expect("start node")
}

async fn wait_status(log: &Log, secs: u64, cond: impl Fn(&LogStatus) -> bool) -> bool {
    let mut rx = log.subscribe();
    let reached = tokio::time::timeout(Duration::from_secs(secs), rx.wait_for(|s| cond(s)))
        .await
        .is_ok_and(|r| r.is_ok());
    reached
}

async fn wait_until(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {secs} s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A stale peer's upgrade is stored and the log's change wakes the replicator of a peer with
/// more, which finds the claim still held (its owner gives it back only when the blocking job's
/// result reaches it) and, once the full peer has said all it will say, has nothing left to wake
/// it. The hook holds the stale peer's job until then; the replica must still reach the full
/// peer's length.
#[tokio::test]
async fn a_replicator_that_found_the_upgrade_claimed_asks_once_it_is_given_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kp = KeyPair::from_seed(&[9; 32]);
    let open = |name: &str, access: Access| {
        Arc::new(
            Log::open(
                &DiskStorage::new(dir.path().join(name)),
                kp.public(),
                access,
            )
            .expect("open log"),
        )
    };
    let writer = open("writer", Access::Writer(kp.clone()));
    writer.append(b"entry 0").expect("append");

    // The stale peer: a replica that copied the first entry, then lost touch with the writer.
    let full = node(true).await;
    full.add(writer.clone());
    let full_addr = full.local_addr().expect("listening");
    let stale_log = open("stale", Access::Replica);
    let stale = node(true).await;
    stale.add(stale_log.clone());
    stale.connect(full_addr).await.expect("connect");
    assert!(
        wait_status(&stale_log, 10, |s| s.contiguous == 1).await,
        "the stale peer never got its first entry"
    );
    assert_eq!(stale.disconnect(full_addr), 1);
    wait_until(10, "the stale peer to leave", || full.peers().is_empty()).await;
    let more: Vec<Vec<u8>> = (1..10).map(|i| format!("entry {i}").into_bytes()).collect();
    let refs: Vec<&[u8]> = more.iter().map(Vec::as_slice).collect();
    writer.append_batch(&refs).expect("append");

    let replica = open("replica", Access::Replica);
    let here = node(false).await;
    here.add(replica.clone());
    let entry = here.archive_entry(&kp.public()).expect("archive added");
    let probe = Arc::new((Mutex::new(Probe::default()), Condvar::new()));
    {
        let mut hooks = entry.hooks.lock();
        let p = probe.clone();
        hooks.upgrade_busy = Some(Arc::new(move |ours, acknowledged| {
            let (lock, cvar) = &*p;
            lock.lock().expect("probe").busy.push((ours, acknowledged));
            cvar.notify_all();
        }));
        let (p, log) = (probe.clone(), replica.clone());
        hooks.upgrade_stored = Some(Arc::new(move || {
            let (lock, cvar) = &*p;
            let mut seen = lock.lock().expect("probe");
            if seen.stored_at.is_some() {
                return;
            }
            let status = *log.subscribe().borrow();
            seen.stored_at = Some((status.length, status.contiguous));
            cvar.notify_all();
            // Hold until the full peer's replicator found the claim taken after the full peer
            // acknowledged our new length: after that the full peer has nothing more to say.
            let (seen, timeout) = cvar
                .wait_timeout_while(seen, Duration::from_secs(20), |s| {
                    !s.busy.contains(&(status.length, status.length))
                })
                .expect("probe");
            let mut seen = seen;
            seen.gave_up = timeout.timed_out();
        }));
    }

    here.connect(stale.local_addr().expect("listening"))
        .await
        .expect("connect to the stale peer");
    wait_until(10, "the stale peer's upgrade to be stored", || {
        probe.0.lock().expect("probe").stored_at.is_some()
    })
    .await;
    here.connect(full_addr)
        .await
        .expect("connect to the full peer");

    let caught_up = wait_status(&replica, 10, |s| s.contiguous == 10).await;
    let seen = probe.0.lock().expect("probe");
    assert_eq!(
        seen.stored_at,
        Some((1, 1)),
        "the stale peer's upgrade came without its block, so the race was not set up"
    );
    assert!(
        !seen.gave_up,
        "the full peer's replicator never found the claim taken after the change: {seen:?}"
    );
    assert!(
        caught_up,
        "the replica stayed at {:?} while a connected peer has 10 entries: {seen:?}",
        replica.info().length
    );
}
