//! The mDNS source: each node registers one `_fritter._tcp.local.` instance with its TCP port and
//! browses for the others.
//!
//! A LAN node is a candidate for every archive, not only the ones it serves: mDNS carries no
//! discovery keys (publishing them would tell the whole LAN which archives we follow), and it does
//! not need to, because the Hypercore channel handshake only opens a channel for a discovery key
//! both sides already know. Connecting to a LAN node that has none of our archives costs one
//! handshake; the replication node decides whether to keep the connection.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::sync::Arc;
use std::time::Duration;

use mdns_sd::{IfKind, ScopedIp, ServiceDaemon, ServiceEvent, ServiceInfo};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::config::MdnsConfig;
use super::DiscoveryError;

/// At most this many addresses are kept per LAN node.
const MAX_ADDRESSES_PER_NODE: usize = 8;
/// Delay before browsing again when the daemon dropped our subscription.
const REBROWSE_DELAY: Duration = Duration::from_secs(5);
/// How long shutdown waits for the goodbye packets and the daemon thread.
const STOP_TIMEOUT: Duration = Duration::from_secs(2);

/// The LAN nodes currently known, by mDNS instance name.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct LanPeers {
    nodes: BTreeMap<String, Vec<SocketAddr>>,
}

impl LanPeers {
    pub(super) fn addrs(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.nodes.values().flatten().copied()
    }

    pub(super) fn len(&self) -> usize {
        self.nodes.len()
    }
}

/// The running mDNS registration and browser.
pub(crate) struct Mdns {
    daemon: ServiceDaemon,
    fullname: String,
    peers: watch::Receiver<Arc<LanPeers>>,
}

/// What the browse task needs; run it with [`Browser::run`] in an owned task.
pub(crate) struct Browser {
    daemon: ServiceDaemon,
    service_type: String,
    own_fullname: String,
    max_peers: usize,
    peers: watch::Sender<Arc<LanPeers>>,
}

impl Mdns {
    /// Starts the daemon, registers this node (its TCP `port`) and starts browsing.
    pub(super) fn start(config: &MdnsConfig, port: u16) -> Result<(Mdns, Browser), DiscoveryError> {
        let daemon = ServiceDaemon::new_with_port(config.port).map_err(mdns_error)?;
        match Self::register(&daemon, config, port) {
            Ok(fullname) => {
                let (tx, rx) = watch::channel(Arc::new(LanPeers::default()));
                let browser = Browser {
                    daemon: daemon.clone(),
                    service_type: config.service_type.clone(),
                    own_fullname: fullname.clone(),
                    max_peers: config.max_peers,
                    peers: tx,
                };
                Ok((
                    Mdns {
                        daemon,
                        fullname,
                        peers: rx,
                    },
                    browser,
                ))
            }
            Err(error) => {
                let _ = daemon.shutdown();
                Err(error)
            }
        }
    }

    fn register(
        daemon: &ServiceDaemon,
        config: &MdnsConfig,
        port: u16,
    ) -> Result<String, DiscoveryError> {
        let interfaces: Vec<IfKind> = config
            .interfaces
            .iter()
            .map(|name| IfKind::Name(name.clone()))
            .collect();
        if !interfaces.is_empty() {
            // Selections apply in order, the last match wins: everything off, then the named ones.
            daemon.disable_interface(IfKind::All).map_err(mdns_error)?;
            daemon
                .enable_interface(interfaces.clone())
                .map_err(mdns_error)?;
        }
        let instance = format!("fritter-{:016x}", rand::random::<u64>());
        let host = format!("{instance}.local.");
        let no_properties: Option<std::collections::HashMap<String, String>> = None;
        let mut info = ServiceInfo::new(
            &config.service_type,
            &instance,
            &host,
            "",
            port,
            no_properties,
        )
        .map_err(mdns_error)?
        .enable_addr_auto();
        if !interfaces.is_empty() {
            info.set_interfaces(interfaces);
        }
        let fullname = info.get_fullname().to_string();
        daemon.register(info).map_err(mdns_error)?;
        info!(instance = %fullname, port, "mdns service registered");
        Ok(fullname)
    }

    pub(super) fn subscribe(&self) -> watch::Receiver<Arc<LanPeers>> {
        self.peers.clone()
    }

    pub(super) fn instance(&self) -> &str {
        &self.fullname
    }

    pub(super) fn peer_count(&self) -> usize {
        self.peers.borrow().len()
    }

    /// Says goodbye on the LAN (so other nodes drop us at once) and stops the daemon thread.
    pub(super) async fn stop(&self) {
        if let Ok(status) = self.daemon.unregister(&self.fullname) {
            let _ = tokio::time::timeout(STOP_TIMEOUT, status.recv_async()).await;
        }
        if let Ok(status) = self.daemon.shutdown() {
            let _ = tokio::time::timeout(STOP_TIMEOUT, status.recv_async()).await;
        }
        debug!(instance = %self.fullname, "mdns stopped");
    }
}

impl Drop for Mdns {
    fn drop(&mut self) {
        // The daemon thread outlives its handles unless told to stop; an error means it already did.
        let _ = self.daemon.shutdown();
    }
}

impl Browser {
    /// Follows the browse events until cancelled, keeping the set of LAN nodes current.
    pub(super) async fn run(self, cancel: CancellationToken) {
        loop {
            let events = match self.daemon.browse(&self.service_type) {
                Ok(events) => events,
                Err(error) => {
                    warn!(%error, "mdns browse failed; mdns stays off");
                    return;
                }
            };
            loop {
                let event = tokio::select! {
                    _ = cancel.cancelled() => return,
                    event = events.recv_async() => event,
                };
                match event {
                    Ok(event) => self.handle(event),
                    Err(_) => break,
                }
            }
            // The daemon drops a subscription whose channel fills up; browse again.
            warn!(
                retry_in_secs = REBROWSE_DELAY.as_secs(),
                "mdns browse ended; browsing again"
            );
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(REBROWSE_DELAY) => {}
            }
        }
    }

    fn handle(&self, event: ServiceEvent) {
        match event {
            ServiceEvent::ServiceResolved(service) => {
                let name = service.get_fullname().to_ascii_lowercase();
                if name == self.own_fullname.to_ascii_lowercase() {
                    return;
                }
                let addrs = socket_addrs(service.get_addresses().iter(), service.get_port());
                if addrs.is_empty() {
                    return;
                }
                let mut updated = false;
                self.peers.send_if_modified(|peers| {
                    let known = peers.nodes.get(&name);
                    if known == Some(&addrs) {
                        return false;
                    }
                    if known.is_none() && peers.nodes.len() >= self.max_peers {
                        return false;
                    }
                    Arc::make_mut(peers)
                        .nodes
                        .insert(name.clone(), addrs.clone());
                    updated = true;
                    true
                });
                if updated {
                    info!(instance = %name, addrs = ?addrs, "mdns peer found");
                } else if !self.peers.borrow().nodes.contains_key(&name) {
                    warn!(instance = %name, limit = self.max_peers, "mdns peer ignored: too many lan peers");
                }
            }
            ServiceEvent::ServiceRemoved(_, name) => {
                let name = name.to_ascii_lowercase();
                let removed = self.peers.send_if_modified(|peers| {
                    if peers.nodes.contains_key(&name) {
                        Arc::make_mut(peers).nodes.remove(&name);
                        true
                    } else {
                        false
                    }
                });
                if removed {
                    info!(instance = %name, "mdns peer gone");
                }
            }
            _ => {}
        }
    }
}

/// The usable socket addresses of a resolved service, best first (routable IPv4, other IPv6,
/// link-local IPv6 with its interface as scope, loopback last), bounded.
fn socket_addrs<'a>(ips: impl Iterator<Item = &'a ScopedIp>, port: u16) -> Vec<SocketAddr> {
    if port == 0 {
        return Vec::new();
    }
    let mut out: Vec<SocketAddr> = ips
        .filter_map(|ip| match ip {
            ScopedIp::V4(v4) => Some(SocketAddr::new(IpAddr::V4(*v4.addr()), port)),
            ScopedIp::V6(v6) => {
                let addr = *v6.addr();
                let scope = if is_link_local_v6(&addr) {
                    v6.scope_id().index
                } else {
                    0
                };
                Some(SocketAddr::V6(SocketAddrV6::new(addr, port, 0, scope)))
            }
            _ => None,
        })
        .filter(|addr| !addr.ip().is_unspecified() && !addr.ip().is_multicast())
        .collect();
    out.sort_by_key(|addr| (rank(addr), *addr));
    out.dedup();
    out.truncate(MAX_ADDRESSES_PER_NODE);
    out
}

fn rank(addr: &SocketAddr) -> u8 {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_loopback() => 4,
        IpAddr::V4(_) => 0,
        IpAddr::V6(ip) if ip.is_loopback() => 4,
        IpAddr::V6(ip) if is_link_local_v6(&ip) => 2,
        IpAddr::V6(_) => 1,
    }
}

fn is_link_local_v6(ip: &std::net::Ipv6Addr) -> bool {
    (ip.segments()[0] & 0xffc0) == 0xfe80
}

fn mdns_error(error: mdns_sd::Error) -> DiscoveryError {
    DiscoveryError::Mdns(error.to_string())
}
