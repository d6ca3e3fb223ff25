//! Helpers shared by the replication tests: logs in temp dirs, waiting on a log's status with a
//! deadline (never a bare sleep), and entries whose content is checkable.

pub(crate) mod proxy;

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use fritter_common::crypto::KeyPair;
use fritter_common::log::{Access, DiskStorage, Log, LogStatus};
use fritter_common::replicate::{Node, NodeConfig};

/// Entry `i` of a test archive: distinct, 300 bytes at most, checkable.
pub(crate) fn entry(i: u64) -> Vec<u8> {
    let mut b = format!("entry {i} ").into_bytes();
    b.resize(20 + (i % 7) as usize * 40, b'a' + (i % 26) as u8);
    b
}

pub(crate) fn writer(dir: &Path, kp: &KeyPair) -> Arc<Log> {
    Arc::new(
        Log::open(
            &DiskStorage::new(dir),
            kp.public(),
            Access::Writer(kp.clone()),
        )
        .expect("open writer"),
    )
}

pub(crate) fn replica(dir: &Path, kp: &KeyPair) -> Arc<Log> {
    Arc::new(Log::open(&DiskStorage::new(dir), kp.public(), Access::Replica).expect("open replica"))
}

/// Appends entries `from..to` in batches of 1,000.
pub(crate) fn fill(log: &Log, from: u64, to: u64) {
    let mut i = from;
    while i < to {
        let end = (i + 1000).min(to);
        let blocks: Vec<Vec<u8>> = (i..end).map(entry).collect();
        let refs: Vec<&[u8]> = blocks.iter().map(Vec::as_slice).collect();
        assert_eq!(log.append_batch(&refs).expect("append"), i);
        i = end;
    }
}

/// Waits until the log's status satisfies `cond`, or panics after `secs` seconds.
pub(crate) async fn wait_status(
    log: &Log,
    secs: u64,
    what: &str,
    cond: impl Fn(&LogStatus) -> bool,
) -> LogStatus {
    let mut rx = log.subscribe();
    let got = match tokio::time::timeout(Duration::from_secs(secs), rx.wait_for(|s| cond(s))).await
    {
        Ok(Ok(s)) => Some(*s),
        _ => None,
    };
    got.unwrap_or_else(|| {
        panic!(
            "timed out after {secs} s waiting for {what}; log is at {:?}",
            log.info()
        )
    })
}

/// Polls `cond` every 10 ms until it holds, or panics after `secs` seconds.
pub(crate) async fn wait_until(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !cond() {
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {secs} s waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Runs a future with a deadline.
pub(crate) async fn within<T>(secs: u64, what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .unwrap_or_else(|_| panic!("timed out after {secs} s: {what}"))
}

pub(crate) async fn listening_node() -> Node {
    Node::start(NodeConfig {
        listen: Some("127.0.0.1:0".parse().expect("addr")),
        ..NodeConfig::default()
    })
    .await
    .expect("start node")
}

pub(crate) async fn dialing_node() -> Node {
    Node::start(NodeConfig::default())
        .await
        .expect("start node")
}

/// Asserts two logs hold the same signed head and the same entries.
pub(crate) fn assert_same(a: &Log, b: &Log) {
    let (ia, ib) = (a.info(), b.info());
    assert_eq!(
        (
            ia.fork,
            ia.length,
            ia.byte_length,
            ia.tree_hash,
            ia.signature
        ),
        (
            ib.fork,
            ib.length,
            ib.byte_length,
            ib.tree_hash,
            ib.signature
        )
    );
    assert_eq!(ia.contiguous, ia.length);
    assert_eq!(
        a.read_range(0, ia.length).expect("read a"),
        b.read_range(0, ib.length).expect("read b")
    );
}

/// Installs a tracing subscriber once when `RUST_LOG` is set.
pub(crate) fn trace() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

/// The Noise stream alone over a TCP stream: frames and the handshake, without the guard or
/// `hypercore-protocol`. Tests use it to send what the protocol layer would never encode
/// (truncated or malformed messages) through a real encrypted connection.
pub(crate) fn raw_noise_over(
    stream: tokio::net::TcpStream,
    initiator: bool,
    parent: &tokio_util::sync::CancellationToken,
) -> Result<
    (
        hypercore_handshake::Cipher,
        Arc<fritter_common::replicate::frame::ConnState>,
    ),
    hypercore_handshake::Error,
> {
    use fritter_common::replicate::frame::{ConnState, FrameIo};
    use hypercore_handshake::state_machine::{hc_specific::generate_keypair, SecStream};
    use hypercore_handshake::Cipher;
    let state = ConnState::new(parent);
    let io = Box::new(FrameIo::new(stream, state.clone()));
    let cipher = if initiator {
        Cipher::new(Some(io), SecStream::new_initiator_xx(&[])?.into())
    } else {
        let keypair = generate_keypair()?;
        Cipher::new(Some(io), SecStream::new_responder_xx(&keypair, &[])?.into())
    };
    Ok((cipher, state))
}
