//! Our own addresses, so that a lookup never hands the node its own listen address (the DHT and
//! mDNS both report us back to ourselves).

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};

/// A snapshot of the addresses that reach this node.
#[derive(Debug, Clone)]
pub(crate) struct OwnAddrs {
    listen: SocketAddr,
    ips: HashSet<IpAddr>,
}

impl OwnAddrs {
    /// Reads the interface addresses now (they change: a laptop moves between networks), plus
    /// an address others see us at (the DHT's idea of our public address), if known.
    pub(super) fn snapshot(listen: SocketAddr, public: Option<IpAddr>) -> Self {
        let mut ips: HashSet<IpAddr> = if_addrs::get_if_addrs()
            .map(|list| list.into_iter().map(|i| i.ip().to_canonical()).collect())
            .unwrap_or_default();
        ips.insert(listen.ip().to_canonical());
        ips.extend(public.map(|ip| ip.to_canonical()));
        OwnAddrs { listen, ips }
    }

    /// True for our listen address in any of its forms: the exact address, or our port on a
    /// loopback, unspecified or local interface address.
    pub(super) fn contains(&self, addr: &SocketAddr) -> bool {
        if *addr == self.listen {
            return true;
        }
        if addr.port() != self.listen.port() {
            return false;
        }
        let ip = addr.ip().to_canonical();
        ip.is_loopback() || ip.is_unspecified() || self.ips.contains(&ip)
    }
}

/// Addresses no peer can be reached at (a hostile DHT node can claim anything).
pub(crate) fn unusable(addr: &SocketAddr) -> bool {
    let ip = addr.ip().to_canonical();
    addr.port() == 0
        || ip.is_unspecified()
        || ip.is_multicast()
        || matches!(ip, IpAddr::V4(v4) if v4.is_broadcast())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_listen_address_in_its_forms() {
        let own = OwnAddrs::snapshot(
            "0.0.0.0:7000".parse().unwrap(),
            Some("203.0.113.9".parse().unwrap()),
        );
        for addr in [
            "127.0.0.1:7000",
            "127.0.0.2:7000",
            "0.0.0.0:7000",
            "[::1]:7000",
            "[::ffff:127.0.0.1]:7000",
            "203.0.113.9:7000",
        ] {
            assert!(
                own.contains(&addr.parse().unwrap()),
                "{addr} should be ours"
            );
        }
        for addr in ["127.0.0.1:7001", "203.0.113.10:7000", "198.51.100.1:7000"] {
            assert!(
                !own.contains(&addr.parse().unwrap()),
                "{addr} should not be ours"
            );
        }
    }

    #[test]
    fn unusable_addresses() {
        for addr in [
            "0.0.0.0:1",
            "1.2.3.4:0",
            "224.0.0.251:5353",
            "255.255.255.255:1",
            "[::]:1",
            "[ff02::fb]:1",
        ] {
            assert!(unusable(&addr.parse().unwrap()), "{addr}");
        }
        assert!(!unusable(&"127.0.0.1:7000".parse().unwrap()));
    }
}
