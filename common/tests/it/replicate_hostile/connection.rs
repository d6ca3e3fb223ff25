//! Connection-level hostility: a handshake never completed, a frame over the limit, and silent
//! peers (keepalives hold a quiet connection, a silent one is dropped).

use super::*;

pub(super) fn node_config(f: impl FnOnce(&mut NodeConfig)) -> NodeConfig {
    let mut c = NodeConfig {
        listen: Some("127.0.0.1:0".parse().expect("addr")),
        ..NodeConfig::default()
    };
    f(&mut c);
    c
}

/// Reads until the node closes the socket; fails if it stays open `secs` seconds.
pub(super) async fn expect_hangup(s: TcpStream, secs: u64) {
    let mut buf = [0u8; 1024];
    within(secs, "the node to close the socket", async {
        loop {
            if s.readable().await.is_err() {
                return;
            }
            match s.try_read(&mut buf) {
                Ok(0) => return,
                Err(e) if e.kind() != std::io::ErrorKind::WouldBlock => return,
                _ => {}
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_completes_the_handshake_is_dropped() {
    trace();
    let node = Node::start(node_config(|c| {
        c.handshake_timeout = Duration::from_millis(300)
    }))
    .await
    .expect("node");
    let s = TcpStream::connect(node.local_addr().expect("addr"))
        .await
        .expect("dial");
    expect_hangup(s, 10).await;
    wait_until(10, "the disconnect to be recorded", || {
        !node.disconnects().is_empty()
    })
    .await;
    let d = &node.disconnects()[0];
    assert!(d.fault && d.reason.contains("handshake"), "{d:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_frame_is_refused_before_it_is_read() {
    trace();
    let node = listening_node().await;
    let s = TcpStream::connect(node.local_addr().expect("addr"))
        .await
        .expect("dial");
    // A frame header announcing 16 MiB - 1 bytes, more than any block and its proof.
    s.writable().await.expect("writable");
    assert_eq!(s.try_write(&[0xff, 0xff, 0xff, 1, 2, 3]).expect("write"), 6);
    expect_hangup(s, 10).await;
    wait_until(10, "the disconnect to be recorded", || {
        !node.disconnects().is_empty()
    })
    .await;
    let d = &node.disconnects()[0];
    assert!(d.fault && d.reason.contains("exceeds the limit"), "{d:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalives_hold_a_quiet_connection_and_a_silent_peer_is_dropped() {
    trace();
    let config = node_config(|c| c.idle_timeout = Duration::from_millis(800));
    let a = Node::start(config.clone()).await.expect("node a");
    let b = Node::start(config).await.expect("node b");
    b.connect(a.local_addr().expect("addr"))
        .await
        .expect("connect");
    wait_until(10, "the connection", || {
        a.peers().len() == 1 && b.peers().len() == 1
    })
    .await;
    // Quiet for twice the idle timeout: keepalives hold it open.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(
        (a.peers().len(), b.peers().len()),
        (1, 1),
        "{:?} {:?}",
        a.disconnects(),
        b.disconnects()
    );

    // A peer that finishes the handshake, then reads but never sends (the bare protocol sends
    // no keepalives), is dropped.
    let stream = TcpStream::connect(a.local_addr().expect("addr"))
        .await
        .expect("dial");
    let cancel = CancellationToken::new();
    let (mut protocol, state) = protocol_over(stream, true, &cancel).expect("protocol");
    let reader = tokio::spawn(async move { while let Some(Ok(_)) = protocol.next().await {} });
    within(10, "the node to drop the silent peer", state.closed()).await;
    reader.abort();
    wait_until(10, "the disconnect to be recorded", || {
        a.disconnects().iter().any(|d| d.reason.contains("silent"))
    })
    .await;
}
