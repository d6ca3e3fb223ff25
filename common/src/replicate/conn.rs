//! One connection: TCP, frames, the Noise XX handshake, the guard, then `hypercore-protocol`
//! channels, one per archive both sides know, each served by its own replicator task owned by
//! the connection.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use futures::{FutureExt, StreamExt};
use hypercore_handshake::state_machine::{hc_specific::generate_keypair, SecStream};
use hypercore_handshake::Cipher;
use hypercore_protocol::{Event, Protocol};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::replicate::frame::{ConnState, FrameIo};
use crate::replicate::node::Shared;
use crate::replicate::peer::{Replicator, Stop};
use crate::replicate::wire::GuardedCipher;
use crate::replicate::ReplicateError;

/// How a connection ended.
pub(crate) enum End {
    /// This node closed it (shutdown, disconnect).
    Local,
    /// The peer went away or the transport failed.
    Remote(String),
    /// The peer broke the protocol or sent data that failed verification.
    Fault(String),
}

/// The protocol stack over a TCP stream, as Holepunch's `@hyperswarm/secret-stream` builds it.
/// The returned state reports when the connection ends and why; it is cancelled with `parent`.
pub fn protocol_over(
    stream: TcpStream,
    initiator: bool,
    parent: &CancellationToken,
) -> Result<(Protocol, Arc<ConnState>), ReplicateError> {
    let _ = stream.set_nodelay(true);
    let state = ConnState::new(parent);
    let protocol = protocol_with_state(stream, initiator, state.clone())?;
    Ok((protocol, state))
}

fn protocol_with_state(
    stream: TcpStream,
    initiator: bool,
    state: Arc<ConnState>,
) -> Result<Protocol, ReplicateError> {
    let io = Box::new(FrameIo::new(stream, state.clone()));
    let noise = |e: hypercore_handshake::Error| ReplicateError::Noise(e.to_string());
    let cipher = if initiator {
        Cipher::new(
            Some(io),
            SecStream::new_initiator_xx(&[]).map_err(noise)?.into(),
        )
    } else {
        let keypair = generate_keypair().map_err(noise)?;
        Cipher::new(
            Some(io),
            SecStream::new_responder_xx(&keypair, &[])
                .map_err(noise)?
                .into(),
        )
    };
    Ok(Protocol::new(Box::new(GuardedCipher::new(cipher, state))))
}

pub(crate) async fn run(
    shared: Arc<Shared>,
    stream: TcpStream,
    initiator: bool,
    state: Arc<ConnState>,
    channels: Arc<AtomicUsize>,
) -> End {
    let _ = stream.set_nodelay(true);
    let protocol = match protocol_with_state(stream, initiator, state.clone()) {
        Ok(p) => p,
        Err(e) => return End::Remote(e.to_string()),
    };
    let end = drive(&shared, protocol, &state, &channels).await;
    // Stops the replicators' waits and the frame layer, whatever ended the loop.
    state.fail("connection closed");
    end
}

/// Why the event loop stopped, before it is told apart into an [`End`].
async fn drive(
    shared: &Arc<Shared>,
    mut protocol: Protocol,
    state: &Arc<ConnState>,
    channels: &Arc<AtomicUsize>,
) -> End {
    let commands = protocol.commands();
    let mut replicators: JoinSet<([u8; 32], Result<(), Stop>)> = JoinSet::new();
    // Discovery keys we sent an open for, and those with a live replicator.
    let mut opened: HashSet<[u8; 32]> = HashSet::new();
    let mut active: HashSet<[u8; 32]> = HashSet::new();
    let mut to_open = OpenQueue::default();
    let mut archives_rx = shared.archives_changed.subscribe();
    let mut handshaken = false;
    let handshake = tokio::time::sleep(shared.config.handshake_timeout);
    tokio::pin!(handshake);
    let keepalive = KEEPALIVE.min(shared.config.idle_timeout / 4);
    let mut tick = tokio::time::interval(keepalive / 2);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let conn_span = tracing::Span::current();

    loop {
        // Opens go through the protocol's bounded command queue; never wait on it here, since
        // this loop is what drains it.
        while let Some(dk) = to_open.front() {
            let Some(entry) = shared.archive(&dk) else {
                to_open.pop();
                continue;
            };
            match commands.open(*entry.key.as_bytes()).now_or_never() {
                Some(Ok(())) => {
                    opened.insert(dk);
                    to_open.pop();
                }
                Some(Err(_)) => return End::Local,
                None => break,
            }
        }

        tokio::select! {
            biased;
            _ = shared.cancel.cancelled() => return End::Local,
            _ = state.closed() => return classify(state.reason().unwrap_or_default()),
            _ = &mut handshake, if !handshaken => return End::Fault("no handshake within the time limit".into()),
            ev = protocol.next() => match ev {
                None => return End::Remote("protocol stream ended".into()),
                Some(Err(e)) => {
                    // `hypercore-protocol` fails on what the guard let through but it refuses
                    // (a wrong channel capability, for one): the peer's fault.
                    return match state.reason() {
                        Some(r) => classify(r),
                        None => End::Fault(format!("protocol error: {e}")),
                    };
                }
                Some(Ok(Event::Handshake(_))) => {
                    handshaken = true;
                    // Offer every archive; a channel opens for those the peer also offers.
                    for dk in shared.archive_keys().into_keys() {
                        if !opened.contains(&dk) {
                            to_open.push(dk);
                        }
                    }
                }
                Some(Ok(Event::DiscoveryKey(dk))) => {
                    if shared.archive(&dk).is_some() && !opened.contains(&dk) {
                        to_open.push(dk);
                    }
                }
                Some(Ok(Event::Channel(channel))) => {
                    let dk = *channel.discovery_key();
                    match shared.archive(&dk) {
                        Some(entry) if !active.contains(&dk) => {
                            active.insert(dk);
                            channels.fetch_add(1, Ordering::Relaxed);
                            let span = tracing::info_span!(parent: &conn_span, "archive", key = %short(&entry.key.to_hex()));
                            let r = Replicator::new(entry, state.clone(), channel, shared.config.window, shared.config.request_timeout);
                            replicators.spawn(async move { (dk, r.run().await) }.instrument(span));
                        }
                        _ => {
                            let _ = channel.close().await;
                        }
                    }
                }
                Some(Ok(Event::Close(dk))) => {
                    opened.remove(&dk);
                }
                Some(Ok(_)) => {}
            },
            _ = tick.tick(), if handshaken => {
                if state.read_idle() > shared.config.idle_timeout {
                    return End::Remote(format!("peer silent for {} s", shared.config.idle_timeout.as_secs()));
                }
                // The protocol is polled right after this, which sends it.
                if state.write_idle() >= keepalive {
                    state.request_keepalive();
                }
            }
            changed = archives_rx.changed(), if handshaken => {
                if changed.is_err() {
                    return End::Local;
                }
                let keys = shared.archive_keys();
                for dk in keys.keys() {
                    if !opened.contains(dk) {
                        to_open.push(*dk);
                    }
                }
                // Removed archives close their own channels (their replicators watch for it).
                opened.retain(|dk| keys.contains_key(dk));
            }
            Some(done) = replicators.join_next() => {
                match done {
                    Ok((dk, result)) => {
                        active.remove(&dk);
                        channels.fetch_sub(1, Ordering::Relaxed);
                        match result {
                            Ok(()) | Err(Stop::Closed) => {}
                            Err(Stop::Peer(reason)) => {
                                state.fail(format!("peer misbehaved: {reason}"));
                                return End::Fault(reason);
                            }
                            Err(Stop::Local(reason)) => {
                                tracing::error!(%reason, "replication of an archive stopped");
                            }
                        }
                    }
                    Err(e) if e.is_panic() => {
                        tracing::error!(error = %e, "a replicator panicked");
                        return End::Remote(format!("replicator panicked: {e}"));
                    }
                    Err(_) => {}
                }
            }
        }
    }
}

/// Archives waiting for their open to be sent, each once.
#[derive(Default)]
struct OpenQueue {
    order: VecDeque<[u8; 32]>,
    queued: HashSet<[u8; 32]>,
}

impl OpenQueue {
    fn push(&mut self, dk: [u8; 32]) {
        if self.queued.insert(dk) {
            self.order.push_back(dk);
        }
    }

    fn front(&self) -> Option<[u8; 32]> {
        self.order.front().copied()
    }

    fn pop(&mut self) {
        if let Some(dk) = self.order.pop_front() {
            self.queued.remove(&dk);
        }
    }
}

fn classify(reason: String) -> End {
    if reason == LOCAL_CLOSE {
        End::Local
    } else if reason.starts_with("malformed")
        || reason.starts_with("frame of")
        || reason.starts_with("encryption failed")
    {
        // A frame that does not parse or decrypt: the peer sent it (TCP checksums the rest).
        End::Fault(reason)
    } else {
        End::Remote(reason)
    }
}

/// Quiet time after which an empty message goes out (less if the idle timeout is short).
const KEEPALIVE: std::time::Duration = std::time::Duration::from_secs(5);

/// The reason recorded when this node closes a connection itself.
pub(crate) const LOCAL_CLOSE: &str = "disconnected locally";

/// First 8 hex digits of a key, for log lines.
fn short(hex: &str) -> &str {
    &hex[..hex.len().min(8)]
}
