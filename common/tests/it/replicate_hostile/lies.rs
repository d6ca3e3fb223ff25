//! The first five lies, against an empty replica that then completes from an honest writer.

use super::*;

/// How the fake writer lies.
#[derive(Clone, Copy, Debug)]
pub(super) enum Lie {
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

pub(super) fn lie(how: Lie, d: &mut Data, writer: &Log) {
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
pub(super) async fn lying_writer(addr: std::net::SocketAddr, writer: Arc<Log>, how: Lie) -> String {
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

pub(super) async fn empty_replica_scenario(how: Lie) {
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
        lying_writer(addr, w.clone(), how),
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
    empty_replica_scenario(Lie::ForgedSignature).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_block_is_refused_and_the_peer_dropped() {
    empty_replica_scenario(Lie::TamperedBlock).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_for_another_block_is_refused_and_the_peer_dropped() {
    empty_replica_scenario(Lie::WrongBlock).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_proof_is_refused_and_the_peer_dropped() {
    empty_replica_scenario(Lie::OversizedProof).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_tree_node_is_refused_and_the_peer_dropped() {
    empty_replica_scenario(Lie::WrongNode).await;
}
