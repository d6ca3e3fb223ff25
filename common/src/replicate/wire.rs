//! The guard between the Noise stream and `hypercore-protocol`: every decrypted frame is parsed
//! here with Holepunch's own rules (protomux batches with per-message lengths, control messages
//! inside batches, optional trailing fields) and with a bound on every size, then re-encoded in
//! the one form `hypercore-protocol` 0.7 decodes correctly.
//!
//! `hypercore-protocol` alone would mis-parse what JS sends (it ignores the length of each message
//! in a batch, so a JS `noData` with its reason byte derails the rest of the frame), refuses
//! protomux rejects by dropping the connection, and allocates whatever a peer's length prefixes
//! claim (`Vec::with_capacity` from a wire count, `resize` to a wire channel id). Nothing reaches
//! it that was not checked here. Also here: conversions between the wire's proof types
//! (`hypercore_schema`) and the log's.

use std::collections::{HashSet, VecDeque};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use compact_encoding::CompactEncoding;
use futures::{Sink, Stream};
use hypercore_handshake::{Cipher, CipherEvent, CipherTrait};
use hypercore_protocol::schema::{
    Cancel, Close, Data, NoData, Open, Range, Request, Synchronize, Unwant, Want,
};
use hypercore_protocol::Message;
use hypercore_schema::{
    DataBlock, DataHash, DataSeek, DataUpgrade, Node as WireNode, RequestBlock as WireRequestBlock,
    RequestUpgrade as WireRequestUpgrade,
};

use crate::log::{self, proof::MAX_PROOF_NODES, Proof, ProofRequest, MAX_BLOCK_BYTES};
use crate::replicate::frame::ConnState;

/// The protocol name hypercore channels are opened with.
pub const PROTOCOL: &str = "hypercore/alpha";

/// Highest channel id a peer may use. Protomux allocates ids densely from 1; this bounds the
/// table `hypercore-protocol` sizes by the largest id it has seen.
pub const MAX_CHANNEL_ID: u64 = 1 << 16;

/// At most this many channels opened by the peer and not closed yet.
pub const MAX_REMOTE_CHANNELS: usize = 16 * 1024;

/// Longest bitfield message accepted, in 32-bit words (JS sends pages of 1,024 words).
pub const MAX_BITFIELD_WORDS: usize = 1 << 16;

/// Why a frame was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed message from peer: {0}")]
pub struct WireError(pub String);

fn bad(msg: impl Into<String>) -> WireError {
    WireError(msg.into())
}

/// Compact-encoding reader with bounds on everything it allocates.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.remaining() < n {
            return Err(bad(format!(
                "message ends {} bytes early",
                n - self.remaining()
            )));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn uint(&mut self) -> Result<u64, WireError> {
        let a = self.take(1)?[0];
        Ok(match a {
            0..=0xfc => a as u64,
            0xfd => u16::from_le_bytes([self.take(1)?[0], self.take(1)?[0]]) as u64,
            0xfe => {
                let b = self.take(4)?;
                u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u64
            }
            0xff => {
                let b = self.take(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                u64::from_le_bytes(a)
            }
        })
    }

    fn len(&mut self, max: usize, unit: usize) -> Result<usize, WireError> {
        let n = self.uint()?;
        if n > max as u64 || (n as usize).saturating_mul(unit) > self.remaining() {
            return Err(bad(format!("length {n} exceeds the limit or the message")));
        }
        Ok(n as usize)
    }

    fn buffer(&mut self, max: usize) -> Result<&'a [u8], WireError> {
        let n = self.len(max, 1)?;
        self.take(n)
    }

    fn string(&mut self, max: usize) -> Result<String, WireError> {
        let b = self.buffer(max)?;
        String::from_utf8(b.to_vec()).map_err(|_| bad("string is not UTF-8"))
    }

    fn nodes(&mut self) -> Result<Vec<WireNode>, WireError> {
        // A node is at least 34 bytes (two one-byte uints and a hash).
        let n = self.len(MAX_PROOF_NODES, 34)?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let index = self.uint()?;
            // `WireNode::new` computes the parent with `flat-tree`, which overflows (a panic in
            // debug builds) near 2^64; no tree we accept has nodes past 2 * MAX_LENGTH (found by
            // the wire_decode fuzz target, see common/fuzz/regressions/wire_decode).
            if index >= 2 * log::MAX_LENGTH {
                return Err(bad(format!("tree node index {index} is out of range")));
            }
            let size = self.uint()?;
            let hash = self.take(32)?.to_vec();
            out.push(WireNode::new(index, hash, size));
        }
        Ok(out)
    }
}

/// One decoded message and the channel it travels on (0 for control messages).
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub channel: u64,
    pub message: Message,
}

/// Per-connection state of the guard: which channels the peer has open.
#[derive(Debug, Default)]
pub struct Guard {
    remote_channels: HashSet<u64>,
}

impl Guard {
    /// Parses one decrypted frame into the messages `hypercore-protocol` should see. Messages it
    /// has no use for (extensions, rejects, unknown types, other protocols) are dropped.
    pub fn parse_frame(&mut self, frame: &[u8]) -> Result<Vec<Parsed>, WireError> {
        let mut out = Vec::new();
        if frame.is_empty() {
            return Ok(out);
        }
        let mut r = Reader::new(frame);
        let channel = r.uint()?;
        if channel == 0 {
            let kind = r.uint()?;
            if kind == 0 {
                self.batch(&mut r, &mut out)?;
            } else {
                self.control(kind, &mut r, &mut out)?;
            }
        } else {
            self.channel_message(channel, &mut r, &mut out)?;
        }
        Ok(out)
    }

    fn batch(&mut self, r: &mut Reader<'_>, out: &mut Vec<Parsed>) -> Result<(), WireError> {
        let mut channel = r.uint()?;
        while !r.is_empty() {
            let len = r.len(usize::MAX, 1)?;
            if len == 0 {
                channel = r.uint()?;
                continue;
            }
            let mut m = Reader::new(r.take(len)?);
            if channel == 0 {
                let kind = m.uint()?;
                if kind == 0 {
                    return Err(bad("batch nested in a batch"));
                }
                self.control(kind, &mut m, out)?;
            } else {
                self.channel_message(channel, &mut m, out)?;
            }
        }
        Ok(())
    }

    fn control(
        &mut self,
        kind: u64,
        r: &mut Reader<'_>,
        out: &mut Vec<Parsed>,
    ) -> Result<(), WireError> {
        match kind {
            1 => {
                let channel = r.uint()?;
                let protocol = r.string(64)?;
                let id = r.buffer(64)?;
                if channel == 0 || channel > MAX_CHANNEL_ID {
                    return Err(bad(format!("channel id {channel} is out of range")));
                }
                if protocol != PROTOCOL {
                    // Another protocol on the same stream: not ours to answer.
                    return Ok(());
                }
                if id.len() != 32 {
                    return Err(bad(format!("discovery key of {} bytes", id.len())));
                }
                let _flags = r.uint()?;
                let capability = r.take(32)?.to_vec();
                // Protomux reuses the ids of closed channels; a second open replaces the first,
                // as it does in `hypercore-protocol`.
                self.remote_channels.insert(channel);
                if self.remote_channels.len() > MAX_REMOTE_CHANNELS {
                    return Err(bad("too many open channels"));
                }
                out.push(Parsed {
                    channel: 0,
                    message: Message::Open(Open {
                        channel,
                        protocol,
                        discovery_key: id.to_vec(),
                        capability: Some(capability),
                    }),
                });
            }
            // A reject of one of our opens: the peer does not have that archive.
            2 => {
                r.uint()?;
            }
            3 => {
                let channel = r.uint()?;
                if self.remote_channels.remove(&channel) {
                    out.push(Parsed {
                        channel: 0,
                        message: Message::Close(Close { channel }),
                    });
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn channel_message(
        &mut self,
        channel: u64,
        r: &mut Reader<'_>,
        out: &mut Vec<Parsed>,
    ) -> Result<(), WireError> {
        let kind = r.uint()?;
        let message = match kind {
            0 => {
                let flags = r.uint()?;
                Message::Synchronize(Synchronize {
                    fork: r.uint()?,
                    length: r.uint()?,
                    remote_length: r.uint()?,
                    can_upgrade: flags & 1 != 0,
                    uploading: flags & 2 != 0,
                    downloading: flags & 4 != 0,
                })
            }
            1 => {
                let flags = r.uint()?;
                let id = r.uint()?;
                let fork = r.uint()?;
                let block = if flags & 1 != 0 {
                    Some(WireRequestBlock {
                        index: r.uint()?,
                        nodes: r.uint()?,
                    })
                } else {
                    None
                };
                let hash = if flags & 2 != 0 {
                    Some(WireRequestBlock {
                        index: r.uint()?,
                        nodes: r.uint()?,
                    })
                } else {
                    None
                };
                if flags & 4 != 0 {
                    // Seeks are asked only of peers that announce support in their open message,
                    // which we do not.
                    return Err(bad("seek request to a peer that does not offer seeks"));
                }
                let upgrade = if flags & 8 != 0 {
                    Some(WireRequestUpgrade {
                        start: r.uint()?,
                        length: r.uint()?,
                    })
                } else {
                    None
                };
                let priority = if flags & 32 != 0 { r.uint()? } else { 0 };
                Message::Request(Request {
                    id,
                    fork,
                    block,
                    hash,
                    seek: None,
                    upgrade,
                    manifest: flags & 16 != 0,
                    priority,
                })
            }
            2 => Message::Cancel(Cancel { request: r.uint()? }),
            3 => {
                let flags = r.uint()?;
                let request = r.uint()?;
                let fork = r.uint()?;
                let block = if flags & 1 != 0 {
                    let index = r.uint()?;
                    let value = r.buffer(MAX_BLOCK_BYTES)?.to_vec();
                    Some(DataBlock {
                        index,
                        value,
                        nodes: r.nodes()?,
                    })
                } else {
                    None
                };
                let hash = if flags & 2 != 0 {
                    Some(DataHash {
                        index: r.uint()?,
                        nodes: r.nodes()?,
                    })
                } else {
                    None
                };
                let seek = if flags & 4 != 0 {
                    Some(DataSeek {
                        bytes: r.uint()?,
                        nodes: r.nodes()?,
                    })
                } else {
                    None
                };
                let upgrade = if flags & 8 != 0 {
                    let start = r.uint()?;
                    let length = r.uint()?;
                    let nodes = r.nodes()?;
                    let additional_nodes = r.nodes()?;
                    let signature = r.buffer(64)?.to_vec();
                    if !signature.is_empty() && signature.len() != 64 {
                        return Err(bad(format!("signature of {} bytes", signature.len())));
                    }
                    Some(DataUpgrade {
                        start,
                        length,
                        nodes,
                        additional_nodes,
                        signature,
                    })
                } else {
                    None
                };
                // A manifest (flag 16) is only sent when asked for; compat cores have none and we
                // never ask, so it is dropped with the rest of the message.
                Message::Data(Data {
                    request,
                    fork,
                    block,
                    hash,
                    seek,
                    upgrade,
                })
            }
            4 => Message::NoData(NoData { request: r.uint()? }),
            5 => Message::Want(Want {
                start: r.uint()?,
                length: r.uint()?,
            }),
            6 => Message::Unwant(Unwant {
                start: r.uint()?,
                length: r.uint()?,
            }),
            7 => {
                let start = r.uint()?;
                let n = r.len(MAX_BITFIELD_WORDS, 4)?;
                let mut bitfield = Vec::with_capacity(n);
                for _ in 0..n {
                    let b = r.take(4)?;
                    bitfield.push(u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
                }
                Message::Bitfield(hypercore_protocol::schema::Bitfield { start, bitfield })
            }
            8 => {
                let flags = r.uint()?;
                let start = r.uint()?;
                let length = if flags & 2 != 0 { 1 } else { r.uint()? };
                Message::Range(Range {
                    drop: flags & 1 != 0,
                    start,
                    length,
                })
            }
            // Extensions, reorg hints and types added later: not used here.
            _ => return Ok(()),
        };
        out.push(Parsed { channel, message });
        Ok(())
    }
}

/// Encodes parsed messages as the frames `hypercore-protocol` 0.7 decodes: each open or close
/// alone, and each run of messages on one channel as one batch (or alone when single).
///
/// A batch never switches channel: 0.7.2's decoder reads the `0` that announces a switch as the
/// new channel id (channel 0, whose messages it drops) and then the real id as the next
/// message's length, so everything after the switch is lost or fails to decode ("Invalid
/// message type", "invalid message length"). Its own encoder and JS protomux both send such
/// batches, as soon as messages for several channels queue up at once.
pub fn encode_frames(messages: &[Parsed]) -> Result<Vec<Vec<u8>>, WireError> {
    let mut frames = Vec::new();
    let mut run: Vec<&Parsed> = Vec::new();
    for p in messages {
        match &p.message {
            Message::Open(_) | Message::Close(_) => {
                flush_run(&mut run, &mut frames)?;
                let prefix: [u8; 2] = if matches!(p.message, Message::Open(_)) {
                    [0, 1]
                } else {
                    [0, 3]
                };
                let mut f = prefix.to_vec();
                f.extend(encode_message(&p.message)?);
                frames.push(f);
            }
            _ => {
                if run.last().is_some_and(|last| last.channel != p.channel) {
                    flush_run(&mut run, &mut frames)?;
                }
                run.push(p);
            }
        }
    }
    flush_run(&mut run, &mut frames)?;
    Ok(frames)
}

fn encode_message(m: &Message) -> Result<Vec<u8>, WireError> {
    let size = m
        .encoded_size()
        .map_err(|e| bad(format!("cannot encode: {e}")))?;
    let mut buf = vec![0u8; size];
    m.encode(&mut buf)
        .map_err(|e| bad(format!("cannot encode: {e}")))?;
    Ok(buf)
}

fn push_uint(out: &mut Vec<u8>, n: u64) {
    if n <= 0xfc {
        out.push(n as u8);
    } else if n <= 0xffff {
        out.push(0xfd);
        out.extend_from_slice(&(n as u16).to_le_bytes());
    } else if n <= 0xffff_ffff {
        out.push(0xfe);
        out.extend_from_slice(&(n as u32).to_le_bytes());
    } else {
        out.push(0xff);
        out.extend_from_slice(&n.to_le_bytes());
    }
}

/// Sends `run`, messages all on one channel, as one frame.
fn flush_run(run: &mut Vec<&Parsed>, frames: &mut Vec<Vec<u8>>) -> Result<(), WireError> {
    match run.len() {
        0 => {}
        1 => {
            let mut f = Vec::new();
            push_uint(&mut f, run[0].channel);
            f.extend(encode_message(&run[0].message)?);
            frames.push(f);
        }
        _ => {
            let mut f = vec![0, 0];
            push_uint(&mut f, run[0].channel);
            for p in run.iter() {
                debug_assert_eq!(p.channel, run[0].channel, "a batch is on one channel");
                let body = encode_message(&p.message)?;
                push_uint(&mut f, body.len() as u64);
                f.extend(body);
            }
            frames.push(f);
        }
    }
    run.clear();
    Ok(())
}

/// The Noise stream with the guard on its read side; what `hypercore-protocol` is built on.
pub struct GuardedCipher {
    inner: Cipher,
    guard: Guard,
    ready: VecDeque<Vec<u8>>,
    conn: Arc<ConnState>,
    handshake_done: bool,
}

impl GuardedCipher {
    pub fn new(inner: Cipher, conn: Arc<ConnState>) -> Self {
        GuardedCipher {
            inner,
            guard: Guard::default(),
            ready: VecDeque::new(),
            conn,
            handshake_done: false,
        }
    }
}

impl Stream for GuardedCipher {
    type Item = CipherEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<CipherEvent>> {
        let this = &mut *self;
        if this.conn.take_keepalive() {
            let mut inner = Pin::new(&mut this.inner);
            if let Poll::Ready(Ok(())) = inner.as_mut().poll_ready(cx) {
                let _ = inner.as_mut().start_send(Vec::new());
                let _ = inner.poll_flush(cx);
            }
        }
        loop {
            if let Some(frame) = this.ready.pop_front() {
                return Poll::Ready(Some(CipherEvent::Message(frame)));
            }
            match Pin::new(&mut this.inner).poll_next(cx) {
                Poll::Ready(Some(CipherEvent::Message(frame))) => {
                    match this
                        .guard
                        .parse_frame(&frame)
                        .and_then(|m| encode_frames(&m))
                    {
                        Ok(frames) => this.ready.extend(frames),
                        Err(e) => {
                            this.conn.fail(e.to_string());
                            return Poll::Ready(Some(CipherEvent::ErrStuff(io::Error::new(
                                io::ErrorKind::InvalidData,
                                e,
                            ))));
                        }
                    }
                }
                Poll::Ready(Some(CipherEvent::ErrStuff(e))) => {
                    this.conn.fail(format!("encryption failed: {e}"));
                    return Poll::Ready(Some(CipherEvent::ErrStuff(e)));
                }
                Poll::Pending => {
                    // `hypercore-protocol` checks for a finished handshake before it reads, so
                    // the read that finishes it (the responder's last handshake message) would
                    // leave the handshake event unsent until the peer sent more. Poll again.
                    if !this.handshake_done && CipherTrait::handshake_hash(&this.inner).is_some() {
                        this.handshake_done = true;
                        cx.waker().wake_by_ref();
                    }
                    return Poll::Pending;
                }
                other => return other,
            }
        }
    }
}

impl Sink<Vec<u8>> for GuardedCipher {
    type Error = io::Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), io::Error>> {
        Pin::new(&mut self.inner).poll_ready(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, item: Vec<u8>) -> Result<(), io::Error> {
        Pin::new(&mut self.inner).start_send(item)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), io::Error>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), io::Error>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

impl CipherTrait for GuardedCipher {
    fn remote_public_key(&self) -> Option<[u8; 32]> {
        self.inner.remote_public_key()
    }

    fn local_public_key(&self) -> [u8; 32] {
        CipherTrait::local_public_key(&self.inner)
    }

    fn handshake_hash(&self) -> Option<Vec<u8>> {
        CipherTrait::handshake_hash(&self.inner)
    }

    fn is_initiator(&self) -> bool {
        CipherTrait::is_initiator(&self.inner)
    }
}

/// The Noise stream alone over a TCP stream: frames and the handshake, without the guard or
/// `hypercore-protocol`. Tests use it to send what the protocol layer would never encode
/// (truncated or malformed messages) through a real encrypted connection.
pub fn raw_noise_over(
    stream: tokio::net::TcpStream,
    initiator: bool,
    parent: &tokio_util::sync::CancellationToken,
) -> Result<(Cipher, Arc<ConnState>), crate::replicate::ReplicateError> {
    use hypercore_handshake::state_machine::{hc_specific::generate_keypair, SecStream};
    let noise =
        |e: hypercore_handshake::Error| crate::replicate::ReplicateError::Noise(e.to_string());
    let state = ConnState::new(parent);
    let io = Box::new(crate::replicate::frame::FrameIo::new(stream, state.clone()));
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
    Ok((cipher, state))
}

// ---- conversions between the wire's proof types and the log's ----

pub fn request_to_log(r: &Request) -> ProofRequest {
    ProofRequest {
        block: r.block.as_ref().map(|b| log::RequestBlock {
            index: b.index,
            nodes: b.nodes,
        }),
        hash: r.hash.as_ref().map(|b| log::RequestBlock {
            index: b.index,
            nodes: b.nodes,
        }),
        seek: r.seek.as_ref().map(|s| log::RequestSeek {
            bytes: s.bytes,
            padding: 0,
        }),
        upgrade: r.upgrade.as_ref().map(|u| log::RequestUpgrade {
            start: u.start,
            length: u.length,
        }),
    }
}

fn node_to_wire(n: &log::Node) -> WireNode {
    WireNode::new(n.index, n.hash.to_vec(), n.size)
}

fn nodes_to_wire(nodes: &[log::Node]) -> Vec<WireNode> {
    nodes.iter().map(node_to_wire).collect()
}

fn node_from_wire(n: &WireNode) -> Result<log::Node, WireError> {
    let hash: [u8; 32] = n
        .hash
        .as_slice()
        .try_into()
        .map_err(|_| bad(format!("node hash of {} bytes", n.hash.len())))?;
    Ok(log::Node {
        index: n.index,
        size: n.length,
        hash,
    })
}

fn nodes_from_wire(nodes: &[WireNode]) -> Result<Vec<log::Node>, WireError> {
    nodes.iter().map(node_from_wire).collect()
}

/// A proof as the `data` answer to request `request`.
pub fn proof_to_data(request: u64, p: Proof) -> Data {
    Data {
        request,
        fork: p.fork,
        block: p.block.map(|b| DataBlock {
            index: b.index,
            nodes: nodes_to_wire(&b.nodes),
            value: b.value,
        }),
        hash: p.hash.map(|h| DataHash {
            index: h.index,
            nodes: nodes_to_wire(&h.nodes),
        }),
        seek: p.seek.map(|s| DataSeek {
            bytes: s.bytes,
            nodes: nodes_to_wire(&s.nodes),
        }),
        upgrade: p.upgrade.map(|u| DataUpgrade {
            start: u.start,
            length: u.length,
            nodes: nodes_to_wire(&u.nodes),
            additional_nodes: nodes_to_wire(&u.additional_nodes),
            signature: u.signature.map(|s| s.to_vec()).unwrap_or_default(),
        }),
    }
}

/// The proof carried by a `data` message.
pub fn data_to_proof(d: Data) -> Result<Proof, WireError> {
    Ok(Proof {
        fork: d.fork,
        block: match d.block {
            Some(b) => Some(log::DataBlock {
                index: b.index,
                nodes: nodes_from_wire(&b.nodes)?,
                value: b.value,
            }),
            None => None,
        },
        hash: match d.hash {
            Some(h) => Some(log::DataHash {
                index: h.index,
                nodes: nodes_from_wire(&h.nodes)?,
            }),
            None => None,
        },
        seek: match d.seek {
            Some(s) => Some(log::DataSeek {
                bytes: s.bytes,
                nodes: nodes_from_wire(&s.nodes)?,
            }),
            None => None,
        },
        upgrade: match d.upgrade {
            Some(u) => Some(log::DataUpgrade {
                start: u.start,
                length: u.length,
                nodes: nodes_from_wire(&u.nodes)?,
                additional_nodes: nodes_from_wire(&u.additional_nodes)?,
                signature: match u.signature.len() {
                    0 => None,
                    64 => {
                        let mut s = [0u8; 64];
                        s.copy_from_slice(&u.signature);
                        Some(s)
                    }
                    n => return Err(bad(format!("signature of {n} bytes"))),
                },
            }),
            None => None,
        },
    })
}

/// Rough encoded size of a message, for keeping frames small.
pub fn approx_size(m: &Message) -> usize {
    match m {
        Message::Data(d) => {
            let nodes = |n: &[WireNode]| n.len() * 42;
            64 + d
                .block
                .as_ref()
                .map(|b| b.value.len() + nodes(&b.nodes))
                .unwrap_or(0)
                + d.hash.as_ref().map(|h| nodes(&h.nodes)).unwrap_or(0)
                + d.seek.as_ref().map(|s| nodes(&s.nodes)).unwrap_or(0)
                + d.upgrade
                    .as_ref()
                    .map(|u| 80 + nodes(&u.nodes) + nodes(&u.additional_nodes))
                    .unwrap_or(0)
        }
        Message::Bitfield(b) => 16 + 4 * b.bitfield.len(),
        _ => 32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    #[test]
    fn js_batch_with_nodata_reason_and_single_range() {
        // [0,0] batch, channel 1: noData{request 7, reason 1}, range{length 1 flag, start 9},
        // then channel 2: sync.
        let nodata: &[u8] = &[4, 7, 1, 1];
        let range: &[u8] = &[8, 2, 9];
        let sync: &[u8] = &[0, 7, 0, 5, 3];
        let f = frame(&[
            &[0, 0, 1],
            &[nodata.len() as u8],
            nodata,
            &[range.len() as u8],
            range,
            &[0, 2],
            &[sync.len() as u8],
            sync,
        ]);
        let got = Guard::default().parse_frame(&f).unwrap();
        assert_eq!(
            got,
            vec![
                Parsed {
                    channel: 1,
                    message: Message::NoData(NoData { request: 7 })
                },
                Parsed {
                    channel: 1,
                    message: Message::Range(Range {
                        drop: false,
                        start: 9,
                        length: 1
                    })
                },
                Parsed {
                    channel: 2,
                    message: Message::Synchronize(Synchronize {
                        fork: 0,
                        length: 5,
                        remote_length: 3,
                        can_upgrade: true,
                        uploading: true,
                        downloading: true
                    })
                },
            ]
        );
        // Re-encoded as one batch per channel, which hypercore-protocol's decoder splits
        // correctly.
        let frames = encode_frames(&got).unwrap();
        assert_eq!(frames.len(), 2);
        assert_eq!(decode_as_hypercore_protocol(&frames).unwrap(), got);
    }

    /// `hypercore-protocol` 0.7.2's frame decoder (`message.rs`,
    /// `decode_unframed_channel_messages` under `vec_decode`), ported step for step onto its
    /// public `Message::decode`, since the original is crate-private. The version is pinned
    /// (`=0.7.2`), so this is what the guard feeds.
    fn decode_as_hypercore_protocol(frames: &[Vec<u8>]) -> Result<Vec<Parsed>, String> {
        use compact_encoding::decode_usize;
        let e = |e: compact_encoding::EncodingError| e.to_string();
        let mut out = Vec::new();
        for frame in frames {
            let mut buf = frame.as_slice();
            while !buf.is_empty() {
                if buf.len() >= 3 && buf[0] == 0 && buf[1] == 0 {
                    buf = &buf[2..];
                    let mut channel;
                    (channel, buf) = u64::decode(buf).map_err(e)?;
                    while !buf.is_empty() {
                        let len;
                        (len, buf) = decode_usize(buf).map_err(e)?;
                        if len > buf.len() {
                            return Err(format!(
                                "received invalid message length: [{len}] but we have [{}] remaining bytes",
                                buf.len()
                            ));
                        }
                        if buf.len() <= 1 {
                            return Err(format!("received empty message [{buf:?}]"));
                        }
                        // The length is not used to delimit the message.
                        let message;
                        (message, buf) = Message::decode(buf).map_err(e)?;
                        out.push(Parsed { channel, message });
                        // The channel switch: note that the `0` itself is decoded as the id.
                        if !buf.is_empty() && buf[0] == 0 {
                            (channel, buf) = u64::decode(buf).map_err(e)?;
                        }
                    }
                } else if buf.len() >= 3 && buf[0] == 0 && buf[1] == 1 {
                    let open;
                    (open, buf) = Open::decode(&buf[2..]).map_err(e)?;
                    out.push(Parsed {
                        channel: 0,
                        message: Message::Open(open),
                    });
                } else if buf.len() >= 3 && buf[0] == 0 && buf[1] == 3 {
                    let close;
                    (close, buf) = Close::decode(&buf[2..]).map_err(e)?;
                    out.push(Parsed {
                        channel: 0,
                        message: Message::Close(close),
                    });
                } else if buf.len() >= 3 && buf[0] == 0 {
                    return Err("received invalid special message".into());
                } else if buf.len() >= 2 {
                    let (channel, rest) = u64::decode(buf).map_err(e)?;
                    let message;
                    (message, buf) = Message::decode(rest).map_err(e)?;
                    out.push(Parsed { channel, message });
                } else {
                    return Err(format!("received too short message, {buf:?}"));
                }
            }
        }
        Ok(out)
    }

    /// Channel messages as one batch that switches channel where the channel changes: what
    /// `hypercore-protocol`'s encoder and JS protomux send when several channels have queued
    /// messages.
    fn mixed_batch(messages: &[Parsed]) -> Vec<u8> {
        let mut f = vec![0, 0];
        let mut channel = messages[0].channel;
        push_uint(&mut f, channel);
        for p in messages {
            if p.channel != channel {
                f.push(0);
                channel = p.channel;
                push_uint(&mut f, channel);
            }
            let body = encode_message(&p.message).unwrap();
            push_uint(&mut f, body.len() as u64);
            f.extend(body);
        }
        f
    }

    /// Regression: with about 500 archives on one connection, batches like this one (the start
    /// of one captured in the many_archives bench: sync and range on channels 216, 170 and 255,
    /// the last written `fd ff 00`) reached `hypercore-protocol` unchanged; it read the `0` of
    /// the switch as channel 0 and the next channel id as a length, failing with "Invalid
    /// message type to decode" or "received invalid message length" and dropping the connection.
    #[test]
    fn batch_switching_channels_reaches_hypercore_protocol_intact() {
        let sync: &[u8] = &[5, 0, 3, 0, 10, 0];
        let range: &[u8] = &[4, 8, 0, 0, 10];
        let input = frame(&[
            &[0, 0, 0xd8],
            sync,
            range,
            &[0, 0xaa],
            sync,
            range,
            &[0, 0xfd, 0xff, 0x00],
            sync,
            range,
        ]);
        let got = Guard::default().parse_frame(&input).unwrap();
        let on = |channel| {
            [
                Parsed {
                    channel,
                    message: Message::Synchronize(Synchronize {
                        fork: 0,
                        length: 10,
                        remote_length: 0,
                        can_upgrade: true,
                        uploading: true,
                        downloading: false,
                    }),
                },
                Parsed {
                    channel,
                    message: Message::Range(Range {
                        drop: false,
                        start: 0,
                        length: 10,
                    }),
                },
            ]
        };
        let want: Vec<Parsed> = [on(0xd8), on(0xaa), on(0xff)].concat();
        assert_eq!(got, want);
        // The batch as it came is mis-read by hypercore-protocol's decoder (channel 170 taken
        // for a length)...
        let as_is = decode_as_hypercore_protocol(std::slice::from_ref(&input));
        assert!(
            as_is
                .as_ref()
                .is_err_and(|e| e.contains("invalid message length: [170]")),
            "{as_is:?}"
        );
        // ... so it gets one batch per channel, which it decodes exactly.
        let frames = encode_frames(&got).unwrap();
        assert_eq!(frames.len(), 3);
        assert_eq!(decode_as_hypercore_protocol(&frames).unwrap(), want);
    }

    #[test]
    fn open_inside_a_batch_becomes_its_own_frame() {
        let mut open = vec![1u8, 1];
        open.push(PROTOCOL.len() as u8);
        open.extend(PROTOCOL.as_bytes());
        open.push(32);
        open.extend([7u8; 32]);
        open.push(0);
        open.extend([9u8; 32]);
        let sync: &[u8] = &[0, 6, 0, 5, 0];
        let f = frame(&[
            &[0, 0, 0],
            &[open.len() as u8],
            &open,
            &[0, 1],
            &[sync.len() as u8],
            sync,
        ]);
        let mut g = Guard::default();
        let got = g.parse_frame(&f).unwrap();
        assert!(
            matches!(got[0].message, Message::Open(ref o) if o.channel == 1 && o.discovery_key == vec![7u8; 32])
        );
        let frames = encode_frames(&got).unwrap();
        assert_eq!(frames.len(), 2);
        assert_eq!(&frames[0][..2], &[0, 1]);
    }

    #[test]
    fn lying_counts_are_refused_before_allocating() {
        let mut g = Guard::default();
        // data with a block claiming 2^40 nodes
        let f = [1u8, 3, 1, 1, 0, 0, 0, 0xff, 0, 0, 0, 0, 0, 1, 0, 0];
        assert!(g.parse_frame(&f).is_err());
        // bitfield claiming 2^32 words
        let f = [1u8, 7, 0, 0xfe, 0, 0, 0, 0x80];
        assert!(g.parse_frame(&f).is_err());
        // open with a huge channel id
        let mut f = vec![0u8, 1, 0xff];
        f.extend(u64::MAX.to_le_bytes());
        assert!(g.parse_frame(&f).is_err());
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics_and_reencoding_is_stable(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            let mut g = Guard::default();
            if let Ok(parsed) = g.parse_frame(&bytes) {
                let frames = encode_frames(&parsed).unwrap();
                let mut again = Vec::new();
                let mut g2 = Guard::default();
                for f in &frames {
                    again.extend(g2.parse_frame(f).unwrap());
                }
                proptest::prop_assert_eq!(&again, &parsed);
                proptest::prop_assert_eq!(&decode_as_hypercore_protocol(&frames).unwrap(), &parsed);
                // What hypercore-protocol decodes from our encoding is what we parsed.
                for p in parsed.iter().filter(|p| !matches!(p.message, Message::Open(_) | Message::Close(_))) {
                    let body = encode_message(&p.message).unwrap();
                    let (m, rest) = Message::decode(&body).unwrap();
                    proptest::prop_assert!(rest.is_empty());
                    proptest::prop_assert_eq!(&m, &p.message);
                }
            }
        }

        #[test]
        fn any_messages_round_trip_and_mutations_never_panic(
            msgs in proptest::collection::vec((1u64..300, message()), 1..12),
            flips in proptest::collection::vec((proptest::prelude::any::<usize>(), proptest::prelude::any::<u8>()), 0..4),
        ) {
            let parsed: Vec<Parsed> = msgs.into_iter().map(|(channel, message)| Parsed { channel, message }).collect();
            let input = mixed_batch(&parsed);
            proptest::prop_assert_eq!(&Guard::default().parse_frame(&input).unwrap(), &parsed);
            let frames = encode_frames(&parsed).unwrap();
            proptest::prop_assert_eq!(&decode_as_hypercore_protocol(&frames).unwrap(), &parsed);
            let mut bad = input;
            for (at, x) in flips {
                let i = at % bad.len();
                bad[i] ^= x;
            }
            let _ = Guard::default().parse_frame(&bad);
        }

        #[test]
        fn batches_of_valid_messages_survive_any_split(ranges in proptest::collection::vec((0u64..1 << 40, 1u64..1 << 20, 1u64..4), 1..20)) {
            let parsed: Vec<Parsed> = ranges
                .iter()
                .map(|&(start, length, channel)| Parsed { channel, message: Message::Range(Range { drop: false, start, length }) })
                .collect();
            proptest::prop_assert_eq!(&Guard::default().parse_frame(&mixed_batch(&parsed)).unwrap(), &parsed);
            // One frame per run of one channel's messages.
            let runs = 1 + parsed.windows(2).filter(|w| w[0].channel != w[1].channel).count();
            let frames = encode_frames(&parsed).unwrap();
            proptest::prop_assert_eq!(frames.len(), runs);
            proptest::prop_assert_eq!(decode_as_hypercore_protocol(&frames).unwrap(), parsed);
        }
    }

    fn node() -> impl proptest::strategy::Strategy<Value = WireNode> {
        use proptest::prelude::*;
        (0..2 * log::MAX_LENGTH, any::<u64>(), any::<[u8; 32]>())
            .prop_map(|(i, s, h)| WireNode::new(i, h.to_vec(), s))
    }

    fn message() -> impl proptest::strategy::Strategy<Value = Message> {
        use proptest::prelude::*;
        let nodes = || proptest::collection::vec(node(), 0..4);
        prop_oneof![
            (any::<u64>(), any::<u64>(), any::<u64>(), any::<[bool; 3]>()).prop_map(
                |(fork, length, remote_length, f)| Message::Synchronize(Synchronize {
                    fork,
                    length,
                    remote_length,
                    can_upgrade: f[0],
                    uploading: f[1],
                    downloading: f[2]
                })
            ),
            (
                any::<u64>(),
                any::<u64>(),
                proptest::option::of((any::<u64>(), any::<u64>())),
                proptest::option::of((any::<u64>(), any::<u64>()))
            )
                .prop_map(|(id, fork, block, upgrade)| Message::Request(Request {
                    id,
                    fork,
                    block: block.map(|(index, nodes)| WireRequestBlock { index, nodes }),
                    hash: None,
                    seek: None,
                    upgrade: upgrade.map(|(start, length)| WireRequestUpgrade { start, length }),
                    manifest: false,
                    priority: 0,
                })),
            (
                any::<u64>(),
                any::<u64>(),
                proptest::option::of((
                    any::<u64>(),
                    proptest::collection::vec(any::<u8>(), 0..64),
                    nodes()
                )),
                proptest::option::of((any::<u64>(), any::<u64>(), nodes(), nodes(), any::<bool>()))
            )
                .prop_map(|(request, fork, block, upgrade)| Message::Data(Data {
                    request,
                    fork,
                    block: block.map(|(index, value, nodes)| DataBlock {
                        index,
                        value,
                        nodes
                    }),
                    hash: None,
                    seek: None,
                    upgrade: upgrade.map(|(start, length, nodes, additional_nodes, signed)| {
                        DataUpgrade {
                            start,
                            length,
                            nodes,
                            additional_nodes,
                            signature: if signed { vec![7; 64] } else { vec![] },
                        }
                    }),
                })),
            any::<u64>().prop_map(|request| Message::NoData(NoData { request })),
            any::<u64>().prop_map(|request| Message::Cancel(Cancel { request })),
            (any::<u64>(), 1u64..u64::MAX, any::<bool>()).prop_map(|(start, length, drop)| {
                Message::Range(Range {
                    drop,
                    start,
                    length,
                })
            }),
            (any::<u64>(), proptest::collection::vec(any::<u32>(), 0..8)).prop_map(
                |(start, bitfield)| Message::Bitfield(hypercore_protocol::schema::Bitfield {
                    start,
                    bitfield
                })
            ),
            (any::<u64>(), any::<u64>())
                .prop_map(|(start, length)| Message::Want(Want { start, length })),
        ]
    }

    #[test]
    fn proof_round_trips_through_the_wire_types() {
        let node = log::Node {
            index: 3,
            size: 9,
            hash: [5; 32],
        };
        let p = Proof {
            fork: 2,
            block: Some(log::DataBlock {
                index: 1,
                value: b"abc".to_vec(),
                nodes: vec![node],
            }),
            hash: None,
            seek: None,
            upgrade: Some(log::DataUpgrade {
                start: 0,
                length: 4,
                nodes: vec![node],
                additional_nodes: vec![],
                signature: Some([1; 64]),
            }),
        };
        let d = proof_to_data(11, p.clone());
        assert_eq!(d.request, 11);
        assert_eq!(data_to_proof(d).unwrap(), p);
    }
}
