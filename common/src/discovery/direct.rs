//! Direct peers: addresses the user gave (`--peer HOST:PORT`), such as the crawler or a hosting
//! service. They are candidates for every archive and resolved again at every lookup round, so a
//! changed DNS record is picked up without a restart.

use std::net::SocketAddr;
use std::time::Duration;

use tracing::warn;

use super::config::split_host_port;
use super::DiscoveryError;

/// How long one name may take to resolve.
pub(super) const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);
/// At most this many addresses are used per name.
pub(super) const MAX_ADDRESSES_PER_PEER: usize = 8;

/// Resolves one `HOST:PORT` with tokio's `lookup_host`, bounded in time and in addresses.
pub async fn resolve(peer: &str) -> Result<Vec<SocketAddr>, DiscoveryError> {
    split_host_port(peer).map_err(|reason| DiscoveryError::InvalidAddress {
        field: "peers",
        value: peer.to_string(),
        reason,
    })?;
    let addrs = tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host(peer))
        .await
        .map_err(|_| DiscoveryError::ResolveTimeout {
            peer: peer.to_string(),
            secs: RESOLVE_TIMEOUT.as_secs(),
        })?
        .map_err(|cause| DiscoveryError::Resolve {
            peer: peer.to_string(),
            cause,
        })?;
    let mut out: Vec<SocketAddr> = Vec::new();
    for addr in addrs {
        if !out.contains(&addr) {
            out.push(addr);
        }
        if out.len() == MAX_ADDRESSES_PER_PEER {
            break;
        }
    }
    if out.is_empty() {
        return Err(DiscoveryError::NoAddress {
            peer: peer.to_string(),
        });
    }
    Ok(out)
}

/// Resolves every entry at once (a slow name does not hold up the others), results in the
/// order of `entries`.
pub(crate) async fn resolve_many(
    entries: &[String],
) -> Vec<(String, Result<Vec<SocketAddr>, DiscoveryError>)> {
    let mut set = tokio::task::JoinSet::new();
    for (i, entry) in entries.iter().enumerate() {
        let entry = entry.clone();
        set.spawn(async move { (i, resolve(&entry).await) });
    }
    let mut results: Vec<Option<Result<Vec<SocketAddr>, DiscoveryError>>> =
        entries.iter().map(|_| None).collect();
    while let Some(joined) = set.join_next().await {
        if let Ok((i, result)) = joined {
            results[i] = Some(result);
        }
    }
    entries
        .iter()
        .cloned()
        .zip(results)
        .map(|(entry, result)| {
            let result = result.unwrap_or_else(|| {
                Err(DiscoveryError::NoAddress {
                    peer: entry.clone(),
                })
            });
            (entry, result)
        })
        .collect()
}

/// Resolves every configured peer; a failure is logged and skipped.
pub(crate) async fn resolve_all(peers: &[String]) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for (peer, result) in resolve_many(peers).await {
        match result {
            Ok(addrs) => out.extend(addrs),
            Err(error) => warn!(peer = %peer, %error, "direct peer skipped"),
        }
    }
    out
}
