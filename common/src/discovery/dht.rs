//! The mainline DHT source: one `mainline` node per `Discovery`, announcing and looking up the
//! first 20 bytes of each discovery key as a BitTorrent info-hash.
//!
//! `mainline` runs its own actor thread and resolves bootstrap names with blocking DNS, so
//! names are resolved here (tokio, with a timeout) and only addresses are handed to it. If none
//! resolves (a laptop offline at start), the node is built later by a retry task: the list is
//! never replaced by anything else, so an empty or dead list can never reach the public nodes.

use std::net::{SocketAddr, SocketAddrV4};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use mainline::async_dht::AsyncDht;
use mainline::{Dht, Id};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::config::DhtConfig;
use super::{DiscoveryError, DiscoveryKey};

/// At most this many addresses are kept per bootstrap name.
const MAX_ADDRESSES_PER_NAME: usize = 4;
/// Retry delays while no bootstrap name resolves.
const RETRY_MIN: Duration = Duration::from_secs(5);
const RETRY_MAX: Duration = Duration::from_secs(5 * 60);

/// The BitTorrent info-hash a discovery key is announced under: its first 20 bytes.
pub fn info_hash(key: &DiscoveryKey) -> [u8; 20] {
    let mut bytes = [0u8; 20];
    bytes.copy_from_slice(&key[..20]);
    bytes
}

/// The same, as mainline's target id.
pub(crate) fn target(key: &DiscoveryKey) -> Id {
    Id::from(info_hash(key))
}

/// A handle to the DHT node, which may come up after `Discovery` starts (see the module docs).
#[derive(Clone, Default)]
pub(crate) struct DhtHandle {
    node: Arc<OnceLock<AsyncDht>>,
}

impl DhtHandle {
    pub(super) fn get(&self) -> Option<&AsyncDht> {
        self.node.get()
    }

    /// Resolves the bootstrap list and builds the node. `Ok(true)` when the node runs,
    /// `Ok(false)` when no bootstrap name resolved (call again later), `Err` when the node
    /// cannot be built (a bind error: a config problem, not worth retrying).
    pub(super) async fn try_start(&self, config: &DhtConfig) -> Result<bool, DiscoveryError> {
        if self.node.get().is_some() {
            return Ok(true);
        }
        let bootstrap = resolve_bootstrap(&config.bootstrap).await;
        if bootstrap.is_empty() {
            return Ok(false);
        }
        let mut builder = Dht::builder();
        builder.bootstrap(&bootstrap);
        if let Some(ip) = config.bind_address {
            builder.bind_address(ip);
        }
        if let Some(port) = config.port {
            builder.port(port);
        }
        let bind = format!(
            "{}:{}",
            config
                .bind_address
                .map(|ip| ip.to_string())
                .unwrap_or_else(|| "0.0.0.0".into()),
            config.port.unwrap_or(0)
        );
        // `build` waits on the actor thread binding its socket: keep it off the async workers.
        let dht = tokio::task::spawn_blocking(move || builder.build())
            .await
            .map_err(|e| DiscoveryError::DhtStart {
                bind: bind.clone(),
                cause: std::io::Error::other(e.to_string()),
            })?
            .map_err(|cause| DiscoveryError::DhtStart { bind, cause })?
            .as_async();
        let local = dht.info().await.local_addr();
        info!(local = %local, bootstrap = bootstrap.len(), "dht node started");
        // Only the start task and the retry task call this, one after the other.
        let _ = self.node.set(dht);
        Ok(true)
    }

    /// Keeps trying to resolve the bootstrap list, with backoff, until the node runs or the
    /// token is cancelled.
    pub(super) async fn retry_start(self, config: DhtConfig, cancel: CancellationToken) {
        let mut delay = RETRY_MIN;
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(delay) => {}
            }
            match self.try_start(&config).await {
                Ok(true) => return,
                Ok(false) => {
                    warn!(
                        retry_in_secs = delay.as_secs(),
                        "no dht bootstrap node resolved; dht stays off until one does"
                    );
                    delay = (delay * 2).min(RETRY_MAX);
                }
                Err(error) => {
                    warn!(%error, "dht cannot start; dht stays off");
                    return;
                }
            }
        }
    }
}

/// Resolves every `HOST:PORT`, keeping IPv4 addresses only (mainline is IPv4-only).
async fn resolve_bootstrap(entries: &[String]) -> Vec<SocketAddrV4> {
    let mut out = Vec::new();
    for (entry, result) in super::direct::resolve_many(entries).await {
        match result {
            Ok(addrs) => {
                let before = out.len();
                for addr in addrs {
                    if let SocketAddr::V4(v4) = addr {
                        if !out.contains(&v4) && out.len() - before < MAX_ADDRESSES_PER_NAME {
                            out.push(v4);
                        }
                    }
                }
                if out.len() == before {
                    warn!(bootstrap = %entry, "dht bootstrap node has no IPv4 address");
                } else {
                    debug!(bootstrap = %entry, addresses = out.len() - before, "dht bootstrap node resolved");
                }
            }
            Err(error) => warn!(bootstrap = %entry, %error, "cannot resolve dht bootstrap node"),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_hash_is_the_first_20_bytes() {
        let mut key = [0u8; 32];
        for (i, b) in key.iter_mut().enumerate() {
            *b = i as u8;
        }
        assert_eq!(info_hash(&key)[..], key[..20]);
        assert_eq!(target(&key).as_bytes()[..], key[..20]);
    }
}
