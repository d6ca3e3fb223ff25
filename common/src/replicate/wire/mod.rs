//! The guard between the Noise stream and `hypercore-protocol`: every decrypted frame is parsed
//! here with Holepunch's own rules (protomux batches with per-message lengths, control messages
//! inside batches, optional trailing fields) and with a bound on every size, then re-encoded in
//! the one form `hypercore-protocol` 0.7 decodes correctly.
//!
//! `hypercore-protocol` alone would mis-parse what JS sends (it ignores the length of each message
//! in a batch, so a JS `noData` with its reason byte derails the rest of the frame), refuses
//! protomux rejects by dropping the connection, and allocates whatever a peer's length prefixes
//! claim (`Vec::with_capacity` from a wire count, `resize` to a wire channel id). Nothing reaches
//! it that was not checked here.
//!
//! By concern: [`guard`](Guard) splits frames into messages and re-encodes them, the cipher
//! ([`GuardedCipher`]) puts the guard on the read side of the Noise stream, and the `data`
//! codec ([`decode_data`], [`encode_data`]) is the one parser of a peer's proofs: the guard
//! runs it on every `data` message, and the JS vectors and the `proof_verify` fuzz target check
//! it, so the bytes the wire accepts are the bytes those check. The log keeps only the proof
//! types.

mod cipher;
mod data;
mod guard;
mod reader;

pub use cipher::GuardedCipher;
pub use data::{
    approx_size, data_to_proof, decode_data, encode_data, proof_to_data, request_to_log,
};
pub use guard::{encode_frames, Guard, Parsed};

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
