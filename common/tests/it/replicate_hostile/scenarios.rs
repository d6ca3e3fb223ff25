//! The fake peers that carry out an attack of the table, the node under attack with an honest
//! peer beside it, the checks after every seed, and one test per scenario.

use super::*;

/// Answers from `from` as the fake writer sees a request. The lag log cannot prove from its
/// start beyond its own length; it answers with its whole head instead.
pub(super) fn answer(w: &World, from: Src, r: &Request) -> Option<Data> {
    let log = src(w, from);
    let mut req = request_to_log(r);
    let len = log.info().length;
    if let Some(u) = req.upgrade.as_mut() {
        if u.start + u.length > len {
            if u.start >= len {
                u.start = 0;
            }
            u.length = len - u.start;
        }
    }
    if req.block.is_some_and(|b| b.index >= len) {
        req.block = None;
    }
    let p = log.proof(&req).ok()?;
    Some(proof_to_data(r.id, p))
}

/// Runs the fake writer until the node hangs up; returns the address it dialed from.
pub(super) async fn fake_writer(
    addr: SocketAddr,
    w: Arc<World>,
    attack: (u64, u64, Src, Mutate, Option<Flood>),
    mut rng: Rng,
) -> SocketAddr {
    let (fork, length, from, mutate, flood) = attack;
    let stream = TcpStream::connect(addr).await.expect("dial");
    let local = stream.local_addr().expect("local addr");
    let cancel = CancellationToken::new();
    let (mut protocol, state) = protocol_over(stream, true, &cancel).expect("protocol");
    let key = *w.kp.public().as_bytes();
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = state.closed() => break,
            ev = protocol.next() => match ev {
                None | Some(Err(_)) => break,
                Some(Ok(Event::Handshake(_))) => {
                    if protocol.open(key).await.is_err() {
                        break;
                    }
                }
                Some(Ok(Event::Channel(mut channel))) => {
                    let w = w.clone();
                    let mut rng = Rng(rng.next());
                    tasks.spawn(async move {
                        let Some(rx) = channel.take_receiver() else { return };
                        let mut hello = vec![
                            Message::Synchronize(Synchronize {
                                fork,
                                length,
                                remote_length: 0,
                                can_upgrade: true,
                                uploading: true,
                                downloading: false,
                            }),
                            Message::Range(Range { drop: false, start: 0, length }),
                        ];
                        if let Some(f) = flood {
                            hello.extend(f(&mut rng));
                        }
                        if channel.send_batch(&hello).await.is_err() {
                            return;
                        }
                        while let Ok(m) = rx.recv().await {
                            if let Message::Request(r) = m {
                                let Some(mut d) = answer(&w, from, &r) else { continue };
                                mutate(&mut d, &mut rng, &w);
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
    local
}

/// Handshakes over raw Noise, sends `frames` in plaintext, waits for the node to hang up.
pub(super) async fn fake_raw(addr: SocketAddr, frames: Vec<Vec<u8>>) -> SocketAddr {
    let stream = TcpStream::connect(addr).await.expect("dial");
    let local = stream.local_addr().expect("local addr");
    let cancel = CancellationToken::new();
    let (mut cipher, state) = raw_noise_over(stream, true, &cancel).expect("noise");
    // Drive the handshake: the initiator's first message goes out on the first poll.
    let _ = cipher.flush().await;
    loop {
        if cipher.handshake_hash().is_some() {
            break;
        }
        tokio::select! {
            _ = state.closed() => return local,
            ev = cipher.next() => match ev {
                None | Some(CipherEvent::ErrStuff(_)) => return local,
                Some(_) => {}
            },
        }
    }
    for f in frames {
        if cipher.send(f).await.is_err() {
            return local;
        }
    }
    loop {
        tokio::select! {
            _ = state.closed() => return local,
            ev = cipher.next() => if ev.is_none() { return local },
        }
    }
}

/// Writes raw bytes and reads until the node closes the socket.
pub(super) async fn fake_tcp(addr: SocketAddr, bytes: Vec<u8>) -> SocketAddr {
    let s = TcpStream::connect(addr).await.expect("dial");
    let local = s.local_addr().expect("local addr");
    let mut sent = 0;
    while sent < bytes.len() {
        if s.writable().await.is_err() {
            return local;
        }
        match s.try_write(&bytes[sent..]) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return local,
        }
    }
    let mut buf = [0u8; 1024];
    loop {
        if s.readable().await.is_err() {
            return local;
        }
        match s.try_read(&mut buf) {
            Ok(0) => return local,
            Err(e) if e.kind() != std::io::ErrorKind::WouldBlock => return local,
            _ => {}
        }
    }
}

pub(super) fn seeds() -> u64 {
    std::env::var("FRITTER_HOSTILE_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8)
}

/// The node under attack: holds the replica and an archive of its own that an honest peer
/// replicates during every attack.
pub(super) async fn run(name: &str) {
    trace();
    let w = Arc::new(tokio::task::block_in_place(build_world));
    let dir = tempfile::tempdir().expect("tempdir");
    let bkp = KeyPair::from_seed(&[9; 32]);
    let b = writer(&dir.path().join("b"), &bkp);
    fill(&b, 0, 10);
    let node = Node::start(NodeConfig {
        listen: Some("127.0.0.1:0".parse().expect("addr")),
        handshake_timeout: Duration::from_millis(400),
        ..NodeConfig::default()
    })
    .await
    .expect("node");
    node.add(w.replica.clone());
    node.add(b.clone());
    let addr = node.local_addr().expect("addr");

    let honest = dialing_node().await;
    let hb = replica(&dir.path().join("hb"), &bkp);
    honest.add(hb.clone());
    honest.connect(addr).await.expect("connect");
    wait_status(&hb, 20, "the honest peer's first entries", |s| {
        s.contiguous == 10
    })
    .await;

    let before = snapshot(&w.replica, &w.replica_dir);
    let (_, expect) = attack(name);
    for seed in 0..seeds() {
        let mut rng = Rng(seed ^ 0x5eed_0000 ^ name.len() as u64);
        let faults_before = node.disconnects().iter().filter(|d| d.fault).count();
        // The honest peer gets new entries while the attack runs.
        let more = 10 * (seed + 2);
        let appended = {
            let b = b.clone();
            tokio::task::spawn_blocking(move || fill(&b, more - 10, more))
        };
        let hostile = match attack(name).0 {
            Attack::Writer {
                fork,
                length,
                from,
                mutate,
                flood,
            } => {
                let r = Rng(rng.next());
                within(
                    20,
                    "the node to drop the fake writer",
                    fake_writer(addr, w.clone(), (fork, length, from, mutate, flood), r),
                )
                .await
            }
            Attack::Raw(frames) => {
                within(
                    20,
                    "the node to drop the raw peer",
                    fake_raw(addr, frames(&mut rng)),
                )
                .await
            }
            Attack::Tcp(bytes) => {
                within(
                    20,
                    "the node to close the socket",
                    fake_tcp(addr, bytes(&mut rng)),
                )
                .await
            }
        };
        appended.await.expect("append");
        wait_until(10, "the disconnect to be recorded", || {
            node.disconnects().iter().any(|d| d.addr == hostile)
        })
        .await;
        let d = node
            .disconnects()
            .into_iter()
            .find(|d| d.addr == hostile)
            .expect("recorded");
        assert!(
            d.fault,
            "{name} seed {seed}: not recorded as the peer's fault: {d:?}"
        );
        assert_eq!(
            node.disconnects().iter().filter(|d| d.fault).count(),
            faults_before + 1,
            "{name} seed {seed}: {:?}",
            node.disconnects()
        );
        if seed == 0 {
            eprintln!("{name}: {}", d.reason);
        }
        // Nothing from the hostile peer was kept, except what the honest writer signed: a peer
        // that relays the honest history may answer a request for the newest head alone (no
        // block to tamper with) before it answers one with a block, depending on which the
        // node asks first. Taking that head is right; no block it tampered may be stored.
        let after = snapshot(&w.replica, &w.replica_dir);
        let head = w.a.info();
        let honest_head_only = matches!(
            attack(name).0,
            Attack::Writer {
                from: Src::Honest,
                ..
            }
        ) && after.info.fork == head.fork
            && after.info.length == head.length
            && after.info.tree_hash == head.tree_hash
            && after.info.contiguous == before.info.contiguous
            && after.files[1..] == before.files[1..];
        assert!(
            after == before || honest_head_only,
            "{name} seed {seed}: the replica changed from {:?} to {:?}",
            before.info,
            after.info
        );
        for seq in 0..20 {
            let want = if seq < 15 { entry(seq) } else { entry1(seq) };
            assert_eq!(w.replica.get(seq).expect("stored blocks verify"), want);
        }
        match expect {
            Expect::Refused => assert!(
                !w.replica.is_forked(),
                "{name} seed {seed}: fork evidence from a lie: {:?}",
                w.replica.fork_evidence()
            ),
            Expect::Evidence => {
                let ev = w.replica.fork_evidence();
                assert_eq!(ev.len(), 1, "{name} seed {seed}: one record, kept once");
                let other = ev[0].verify(&w.kp.public()).expect("evidence verifies");
                assert_eq!(ev[0].local.hash(), before.info.tree_hash);
                assert_ne!(other.hash(), w.a.info().tree_hash);
            }
        }
        // The honest peer kept replicating meanwhile, over the same connection.
        wait_status(&hb, 20, "the honest peer to catch up", |s| {
            s.contiguous == more
        })
        .await;
        assert!(
            honest.disconnects().is_empty() && honest.peers().len() == 1,
            "{name} seed {seed}: the honest peer was dropped: {:?}",
            honest.disconnects()
        );
    }
    if expect == Expect::Evidence {
        // The flag survives a reopen (the evidence is in the `forks` file).
        let again = Log::open(
            &DiskStorage::new(&w.replica_dir),
            w.kp.public(),
            Access::View,
        )
        .expect("reopen");
        assert!(again.is_forked());
    }
    honest.shutdown().await;
    node.shutdown().await;
}

macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        const SCENARIOS: &[&str] = &[$(stringify!($name)),*];
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                run(stringify!($name)).await;
            }
        )*
    };
}

scenarios! {
    forged_signature,
    zeroed_signature,
    identity_point_signature,
    small_order_point_signature,
    non_canonical_s_signature,
    missing_signature,
    signature_by_another_key,
    upgrade_length_2pow40,
    upgrade_wrong_start,
    upgrade_additional_junk,
    fork_id_out_of_range,
    tampered_block,
    truncated_block_value,
    extended_block_value,
    answer_for_another_block,
    block_index_2pow40,
    node_hash_flipped,
    node_size_changed,
    node_index_changed,
    node_dropped,
    node_duplicated,
    node_index_2pow40,
    oversized_proof,
    unsolicited_hash_proof,
    announced_length_2pow40,
    request_flood,
    range_flood,
    truncated_message,
    nested_batch,
    channel_id_out_of_range,
    non_utf8_protocol_name,
    short_discovery_key,
    bitfield_claims_2pow32_words,
    node_count_2pow40,
    block_value_over_limit,
    short_signature,
    seek_request,
    oversized_frame,
    garbage_handshake,
    stalled_handshake,
    fork_same_length_equivocation,
    fork_longer_head_not_extending,
    fork_replayed_older_fork,
    fork_replayed_shorter_head,
    fork_forged_truncate,
    fork_truncate_by_another_key,
}

#[test]
fn the_table_has_at_least_30_scenarios_each_known() {
    assert!(SCENARIOS.len() >= 30, "{}", SCENARIOS.len());
    for s in SCENARIOS {
        let _ = attack(s);
    }
}
