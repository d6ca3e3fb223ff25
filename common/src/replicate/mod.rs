//! Replication of archives over the Hypercore wire protocol, with JS Hypercore as a peer.
//!
//! The stack is the one `@hyperswarm/secret-stream` and `hypercore.replicate()` use: TCP, frames
//! with a 24-bit length ([`frame`]), a Noise XX handshake and secretstream encryption
//! (`hypercore_handshake`), a guard that parses every frame with JS's rules and bounds
//! ([`wire`]), then `hypercore-protocol` channels, one per archive. A [`Node`] holds the archives
//! and the connections; per archive and peer a replicator (`peer.rs`) exchanges state, requests
//! upgrades and blocks with many requests in flight, stores answers in batches through
//! [`Log::apply_proofs`](crate::log::Log::apply_proofs), answers the peer's requests, and
//! follows new appends live through [`Log::subscribe`](crate::log::Log::subscribe).
//!
//! ```no_run
//! use std::sync::Arc;
//! use fritter_common::crypto::PublicKey;
//! use fritter_common::log::{Access, DiskStorage, Log};
//! use fritter_common::replicate::{Node, NodeConfig};
//!
//! # async fn example(key: PublicKey) -> Result<(), Box<dyn std::error::Error>> {
//! let log = Arc::new(Log::open(&DiskStorage::new("/tmp/replica"), key, Access::Replica)?);
//! let node = Node::start(NodeConfig { listen: Some("127.0.0.1:0".parse()?), ..NodeConfig::default() }).await?;
//! node.add(log.clone());
//! node.connect("127.0.0.1:7000".parse()?).await?;
//! // Wait until the replica holds 100 entries.
//! log.subscribe().wait_for(|s| s.contiguous >= 100).await?;
//! node.shutdown().await;
//! # Ok(()) }
//! ```

mod conn;
pub mod frame;
mod node;
mod peer;
pub mod wire;

use std::io;
use std::net::SocketAddr;

pub use conn::protocol_over;
pub use node::{ArchiveProgress, Disconnect, Node, NodeConfig, NodeStats, PeerInfo};

/// Errors of the replication node.
#[derive(Debug, thiserror::Error)]
pub enum ReplicateError {
    #[error("could not listen on {addr}: {cause}")]
    Listen { addr: SocketAddr, cause: io::Error },
    #[error("could not connect to {addr}: {cause}")]
    Connect { addr: SocketAddr, cause: io::Error },
    #[error("connecting to {addr} timed out after {secs} s")]
    ConnectTimeout { addr: SocketAddr, secs: u64 },
    #[error("already at the limit of {max} connections")]
    TooManyConnections { max: usize },
    #[error("noise handshake setup failed: {0}")]
    Noise(String),
    #[error("the replication node has shut down")]
    Shutdown,
}
