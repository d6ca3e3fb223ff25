//! With an empty DHT bootstrap list, mDNS off and no direct peers, discovery does no network I/O
//! at all: it opens no socket and starts no DHT or mDNS thread, while announce and lookup still
//! work (and find nothing). Alone in its binary so that no other test's sockets are counted.

use std::time::Duration;

use fritter_common::discovery::{Config, DhtStatus, Discovery};
use tokio_stream::StreamExt;
use tokio_util::sync::CancellationToken;

fn socket_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy().starts_with("socket:"))
        .count()
}

fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("comm")).ok())
        .map(|s| s.trim().to_string())
        .collect()
}

#[tokio::test]
async fn dht_off_does_no_network_io() {
    // Counts the process's sockets and threads: other tests of this binary must not run beside it.
    if !crate::alone::in_own_process(module_path!(), "dht_off_does_no_network_io") {
        return;
    }
    // Parsed as a binary's config file would be: an explicitly empty bootstrap list.
    let config: Config =
        serde_json::from_str(r#"{"dht": {"bootstrap": []}, "mdns": {"enabled": false}}"#).unwrap();
    assert_eq!(config.peers, Vec::<String>::new());
    let sockets_before = socket_fds();
    let cancel = CancellationToken::new();
    let discovery = Discovery::start(config, "127.0.0.1:7000".parse().unwrap(), &cancel)
        .await
        .unwrap();
    let key = [7u8; 32];
    discovery.announce(key).unwrap();
    let found: Vec<_> =
        tokio::time::timeout(Duration::from_secs(5), discovery.lookup(key).collect())
            .await
            .unwrap();
    assert!(found.is_empty());
    let status = discovery.status().await;
    assert_eq!(status.dht, DhtStatus::Off);
    assert_eq!(status.mdns, None);
    assert_eq!((status.announced, status.announced_ok), (1, 0));

    assert_eq!(
        socket_fds(),
        sockets_before,
        "a socket was opened with the dht off"
    );
    let names = thread_names();
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with("Mainline") || n.starts_with("mDNS")),
        "a dht or mdns thread runs: {names:?}"
    );
    discovery.shutdown().await;
}
