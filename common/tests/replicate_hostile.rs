//! Hostile writers: a fake peer that speaks the real protocol (same stack as the node) and serves
//! an honest writer's proofs with one thing wrong. The replica must drop the connection and keep
//! nothing from the bad answer: its head stays where it was and what it holds still verifies.

mod replicate_support;

use std::sync::Arc;
use std::time::Duration;

use fritter_common::crypto::KeyPair;
use fritter_common::log::Log;
use fritter_common::replicate::wire::{proof_to_data, request_to_log};
use fritter_common::replicate::{protocol_over, Node, NodeConfig};
use futures::StreamExt;
use hypercore_protocol::schema::{Data, Range, Synchronize};
use hypercore_protocol::{Event, Message};
use hypercore_schema::Node as WireNode;
use replicate_support::*;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// How the fake writer lies.
#[derive(Clone, Copy, Debug)]
enum Lie {
    /// Flips a bit of the signature on every upgrade.
    ForgedSignature,
    /// Flips a byte of block 5's value.
    TamperedBlock,
    /// Answers the request for block 7 with block 8's proof.
    WrongBlock,
    /// Pads block 3's proof with 200 nodes (the wire allows 128 per list).
    OversizedProof,
    /// Changes a node in block 8's proof to another hash.
    WrongNode,
}

fn lie(how: Lie, d: &mut Data, writer: &Log) {
    match how {
        Lie::ForgedSignature => {
            if let Some(u) = d.upgrade.as_mut() {
                u.signature[10] ^= 1;
            }
        }
        Lie::TamperedBlock => {
            if let Some(b) = d.block.as_mut().filter(|b| b.index == 5) {
                b.value[0] ^= 0x20;
            }
        }
        Lie::WrongBlock => {
            if d.block.as_ref().is_some_and(|b| b.index == 7) {
                let req = fritter_common::log::ProofRequest {
                    block: Some(fritter_common::log::RequestBlock { index: 8, nodes: 3 }),
                    ..Default::default()
                };
                let other = proof_to_data(d.request, writer.proof(&req).expect("proof"));
                d.block = other.block;
            }
        }
        Lie::OversizedProof => {
            if let Some(b) = d.block.as_mut().filter(|b| b.index == 3) {
                b.nodes
                    .extend((0..200).map(|i| WireNode::new(i, vec![0; 32], 1)));
            }
        }
        Lie::WrongNode => {
            if let Some(b) = d
                .block
                .as_mut()
                .filter(|b| b.index == 8 && !b.nodes.is_empty())
            {
                b.nodes[0].hash[0] ^= 1;
            }
        }
    }
}

/// Dials the node as a writer of `writer`'s archive that lies as told; returns once the node
/// hangs up, with the reason the fake side saw.
async fn fake_writer(addr: std::net::SocketAddr, writer: Arc<Log>, how: Lie) -> String {
    let stream = TcpStream::connect(addr).await.expect("dial");
    let cancel = CancellationToken::new();
    let (mut protocol, state) = protocol_over(stream, true, &cancel).expect("protocol");
    let key = *writer.key().as_bytes();
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = state.closed() => return state.reason().unwrap_or_default(),
            ev = protocol.next() => match ev {
                None | Some(Err(_)) => return state.reason().unwrap_or_else(|| "protocol ended".into()),
                Some(Ok(Event::Handshake(_))) => protocol.open(key).await.expect("open"),
                Some(Ok(Event::Channel(mut channel))) => {
                    let writer = writer.clone();
                    let info = writer.info();
                    tasks.spawn(async move {
                        let rx = channel.take_receiver().expect("receiver");
                        let hello = [
                            Message::Synchronize(Synchronize {
                                fork: 0,
                                length: info.length,
                                remote_length: 0,
                                can_upgrade: true,
                                uploading: true,
                                downloading: false,
                            }),
                            Message::Range(Range { drop: false, start: 0, length: info.length }),
                        ];
                        if channel.send_batch(&hello).await.is_err() {
                            return;
                        }
                        while let Ok(m) = rx.recv().await {
                            if let Message::Request(r) = m {
                                let Ok(p) = writer.proof(&request_to_log(&r)) else { continue };
                                let mut d = proof_to_data(r.id, p);
                                lie(how, &mut d, &writer);
                                if channel.send(Message::Data(d)).await.is_err() {
                                    return;
                                }
                            }
                        }
                    });
                }
                Some(Ok(_)) => {}
            },
        }
    }
}

async fn scenario(how: Lie) {
    trace();
    let dir = tempfile::tempdir().expect("tempdir");
    let kp = KeyPair::from_seed(&[3; 32]);
    let w = writer(&dir.path().join("w"), &kp);
    fill(&w, 0, 40);
    let r = replica(&dir.path().join("r"), &kp);
    let node = listening_node().await;
    node.add(r.clone());
    let addr = node.local_addr().expect("listening");

    let seen = within(
        20,
        "the node to hang up on the fake writer",
        fake_writer(addr, w.clone(), how),
    )
    .await;
    // The fake sees an end of stream or a reset, depending on what was in flight.
    assert!(!seen.is_empty(), "{how:?}");
    wait_until(10, "the node to record the disconnect", || {
        !node.disconnects().is_empty()
    })
    .await;
    assert!(node.peers().is_empty());
    let d = node.disconnects();
    assert!(
        d.len() == 1 && d[0].fault,
        "{how:?}: dropped as a misbehaving peer: {d:?}"
    );
    eprintln!("{how:?}: {}", d[0].reason);

    let info = r.info();
    match how {
        Lie::ForgedSignature => assert_eq!(info.length, 0, "nothing from a forged head is kept"),
        Lie::TamperedBlock => assert!(!r.has(5).expect("has"), "the tampered block is not stored"),
        Lie::WrongBlock => assert!(!r.has(7).expect("has") || r.get(7).expect("get") == entry(7)),
        Lie::OversizedProof => assert!(!r.has(3).expect("has")),
        Lie::WrongNode => assert!(!r.has(8).expect("has")),
    }
    // Whatever was stored is the writer's and verifies.
    if info.length > 0 {
        assert_eq!(info.tree_hash, w.info().tree_hash);
    }
    for seq in 0..info.length {
        if r.has(seq).expect("has") {
            assert_eq!(r.get(seq).expect("stored blocks verify"), entry(seq));
        }
    }
    // The node still serves honest peers after the hostile one: a real writer node completes it.
    let honest = listening_node().await;
    honest.add(w.clone());
    node.connect(honest.local_addr().expect("addr"))
        .await
        .expect("connect");
    wait_status(&r, 20, "the honest writer's entries", |s| {
        s.contiguous == 40
    })
    .await;
    assert_same(&r, &w);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_signature_is_refused_and_the_peer_dropped() {
    scenario(Lie::ForgedSignature).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_block_is_refused_and_the_peer_dropped() {
    scenario(Lie::TamperedBlock).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_for_another_block_is_refused_and_the_peer_dropped() {
    scenario(Lie::WrongBlock).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_proof_is_refused_and_the_peer_dropped() {
    scenario(Lie::OversizedProof).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_tree_node_is_refused_and_the_peer_dropped() {
    scenario(Lie::WrongNode).await;
}

fn node_config(f: impl FnOnce(&mut NodeConfig)) -> NodeConfig {
    let mut c = NodeConfig {
        listen: Some("127.0.0.1:0".parse().expect("addr")),
        ..NodeConfig::default()
    };
    f(&mut c);
    c
}

/// Reads until the node closes the socket; fails if it stays open `secs` seconds.
async fn expect_hangup(s: TcpStream, secs: u64) {
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
