//! Direct peers (`--peer HOST:PORT`): resolved with tokio's `lookup_host`, reported for every
//! key, deduplicated, never our own listen address, bounded per round, and validated at start.
//! Only loopback literals and `localhost` from /etc/hosts are resolved: no DNS query is sent.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use fritter_common::discovery::{
    resolve_peer, Config, Discovery, DiscoveryError, PeerAddr, Source,
};
use tokio::time::timeout;
use tokio_stream::StreamExt;
use tokio_util::sync::CancellationToken;

/// `localhost` is resolved only when /etc/hosts names it, so the resolver never asks DNS.
fn hosts_has_localhost() -> bool {
    std::fs::read_to_string("/etc/hosts")
        .map(|hosts| {
            hosts.lines().any(|line| {
                let line = line.split('#').next().unwrap_or("");
                line.split_whitespace()
                    .skip(1)
                    .any(|name| name == "localhost")
            })
        })
        .unwrap_or(false)
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

async fn collect(discovery: &Discovery, key: [u8; 32]) -> Vec<PeerAddr> {
    timeout(Duration::from_secs(10), discovery.lookup(key).collect())
        .await
        .unwrap()
}

#[tokio::test]
async fn direct_peers_resolved_deduplicated_and_own_address_dropped() {
    let with_name = hosts_has_localhost();
    if !with_name {
        eprintln!("NOTE: /etc/hosts has no localhost entry; name resolution part skipped");
    }
    let mut config = Config::offline();
    config.peers = vec![
        "127.0.0.1:7001".into(),
        "[::1]:7003".into(),
        "127.0.0.1:7001".into(), // duplicate
        "127.0.0.1:7000".into(), // our own listen address
        "127.0.0.2:7000".into(), // our port on another loopback address: also us
    ];
    if with_name {
        config.peers.push("localhost:7002".into());
        config.peers.push("localhost:7000".into()); // us, by name
    }
    let cancel = CancellationToken::new();
    let discovery = Discovery::start(config, addr("127.0.0.1:7000"), &cancel)
        .await
        .unwrap();

    for key in [[1u8; 32], [2u8; 32]] {
        let found = collect(&discovery, key).await;
        assert!(
            found.iter().all(|p| p.source == Source::Direct),
            "{found:?}"
        );
        let addrs: Vec<SocketAddr> = found.iter().map(|p| p.addr).collect();
        assert_eq!(
            addrs.len(),
            addrs.iter().collect::<HashSet<_>>().len(),
            "duplicates: {addrs:?}"
        );
        assert_eq!(
            &addrs[..2],
            &[addr("127.0.0.1:7001"), addr("[::1]:7003")],
            "{addrs:?}"
        );
        if with_name {
            assert!(addrs.contains(&addr("127.0.0.1:7002")), "{addrs:?}");
            // /etc/hosts may also map localhost to ::1.
            assert!(
                addrs[2..]
                    .iter()
                    .all(|a| a.port() == 7002 && a.ip().is_loopback()),
                "{addrs:?}"
            );
        } else {
            assert_eq!(addrs.len(), 2, "{addrs:?}");
        }
    }

    // A watch reports the same peers again each round (here every second).
    drop(discovery);
    let mut config = Config::offline();
    config.peers = vec!["127.0.0.1:7001".into()];
    config.lookup_interval_secs = 1;
    let discovery = Discovery::start(config, addr("127.0.0.1:7000"), &cancel)
        .await
        .unwrap();
    let mut watch = discovery.watch([3u8; 32]);
    for _round in 0..2 {
        let peer = timeout(Duration::from_secs(5), watch.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            peer,
            PeerAddr {
                addr: addr("127.0.0.1:7001"),
                source: Source::Direct
            }
        );
    }
    // Cancelling the parent token stops discovery and its lookups.
    cancel.cancel();
    assert_eq!(
        timeout(Duration::from_secs(5), watch.next()).await.unwrap(),
        None
    );
    assert!(matches!(
        discovery.announce([3u8; 32]),
        Err(DiscoveryError::Shutdown)
    ));
}

#[tokio::test]
async fn limits_and_bad_input() {
    // A round stops at max_peers_per_lookup.
    let mut config = Config::offline();
    config.peers = (1..=5).map(|i| format!("127.0.0.1:{}", 7100 + i)).collect();
    config.max_peers_per_lookup = 2;
    config.max_announced = 1;
    let cancel = CancellationToken::new();
    let discovery = Discovery::start(config, addr("127.0.0.1:7000"), &cancel)
        .await
        .unwrap();
    assert_eq!(collect(&discovery, [1u8; 32]).await.len(), 2);
    discovery.announce([1u8; 32]).unwrap();
    assert_eq!(
        discovery.announce([2u8; 32]).unwrap_err().to_string(),
        "cannot announce another archive: 1 are announced already (max_announced)"
    );
    discovery.shutdown().await;

    // Bad config is refused at start, naming the value.
    let mut config = Config::offline();
    config.peers = vec!["crawler.example.org".into()];
    let error = Discovery::start(config, addr("127.0.0.1:7000"), &cancel)
        .await
        .err()
        .unwrap();
    assert_eq!(
        error.to_string(),
        "invalid peers entry \"crawler.example.org\": expected HOST:PORT"
    );
    let error = Discovery::start(Config::offline(), addr("127.0.0.1:0"), &cancel)
        .await
        .err()
        .unwrap();
    assert_eq!(
        error.to_string(),
        "invalid listen address \"127.0.0.1:0\": needs the port the node listens on, not 0"
    );

    // resolve_peer: literals need no resolver; malformed input never reaches one.
    assert_eq!(
        resolve_peer("127.0.0.1:9").await.unwrap(),
        vec![addr("127.0.0.1:9")]
    );
    assert_eq!(
        resolve_peer("[::1]:9").await.unwrap(),
        vec![addr("[::1]:9")]
    );
    for (input, reason) in [
        ("::1:9", "an IPv6 address needs brackets: [ADDR]:PORT"),
        ("host:0", "the port is not a number from 1 to 65535"),
        ("host", "expected HOST:PORT"),
    ] {
        let error = resolve_peer(input).await.unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("invalid peers entry {input:?}: {reason}")
        );
    }
}
