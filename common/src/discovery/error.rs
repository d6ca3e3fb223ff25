//! `DiscoveryError`: everything that can go wrong while configuring or starting discovery.
//! Failures of a single lookup or announce are logged and retried, not returned.

/// Errors of the discovery layer. Messages name the bad value and the field it came from.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("invalid {field} entry {value:?}: {reason}")]
    InvalidAddress {
        field: &'static str,
        value: String,
        reason: &'static str,
    },

    #[error("invalid {field} {value:?}: {reason}")]
    InvalidConfig {
        field: &'static str,
        value: String,
        reason: &'static str,
    },

    #[error("{field} is {value} but must be from {min} to {max}")]
    OutOfRange {
        field: &'static str,
        value: u64,
        min: u64,
        max: u64,
    },

    #[error("cannot resolve peer {peer:?}: {cause}")]
    Resolve { peer: String, cause: std::io::Error },

    #[error("resolving peer {peer:?} timed out after {secs} s")]
    ResolveTimeout { peer: String, secs: u64 },

    #[error("peer {peer:?} resolved to no address")]
    NoAddress { peer: String },

    #[error("cannot start the dht node on {bind}: {cause}")]
    DhtStart { bind: String, cause: std::io::Error },

    #[error("cannot start mdns: {0}")]
    Mdns(String),

    #[error("cannot announce another archive: {limit} are announced already (max_announced)")]
    TooManyAnnounced { limit: usize },

    #[error("discovery is shut down")]
    Shutdown,
}
