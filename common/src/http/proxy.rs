//! Who a request is from when it came through a reverse proxy. Behind a proxy every request
//! arrives from the proxy's address, so per-address limits would put all clients in one bucket;
//! a proxy the operator trusts says who its client was in `X-Forwarded-For`. The header is read
//! only on connections from a trusted proxy (anyone else could write anything in it), and only
//! its right-most entries, the ones trusted hops appended, are believed.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use axum::http::HeaderMap;
use serde::{Deserialize, Deserializer};

/// Most `X-Forwarded-For` entries looked at, from the right: a chain of trusted proxies is a
/// handful of hops, and a client can make the header as long as the head limit allows.
const MAX_HOPS: usize = 32;

/// A trusted proxy given in the configuration is not an address or a CIDR block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("trusted proxy {0:?} is not an IP address or a CIDR block such as 10.0.0.0/8 or fd00::/8")]
pub struct BadProxy(pub String);

/// An IP address or a block of them (`10.0.0.0/8`, `::1`, `fd00::/8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpBlock {
    addr: IpAddr,
    prefix: u8,
}

impl IpBlock {
    /// Whether `ip` is in the block. An IPv4 address seen as IPv6 (`::ffff:10.0.0.1`, what a
    /// dual-stack socket reports) counts as the IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for IpBlock {
    type Err = BadProxy;
    fn from_str(s: &str) -> Result<IpBlock, BadProxy> {
        let bad = || BadProxy(s.to_owned());
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let addr = IpAddr::from_str(addr).map_err(|_| bad())?.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
        };
        Ok(IpBlock { addr, prefix })
    }
}

impl fmt::Display for IpBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl<'de> Deserialize<'de> for IpBlock {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<IpBlock, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The proxies whose `X-Forwarded-For` is believed. Empty (the default) believes no one.
/// Clone is cheap.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Arc<[IpBlock]>);

impl TrustedProxies {
    pub fn new(blocks: impl IntoIterator<Item = IpBlock>) -> TrustedProxies {
        TrustedProxies(blocks.into_iter().collect())
    }

    /// Parses each of `blocks` (`"10.0.0.0/8"`, `"::1"`).
    pub fn parse<S: AsRef<str>>(blocks: &[S]) -> Result<TrustedProxies, BadProxy> {
        let parsed = blocks
            .iter()
            .map(|b| b.as_ref().parse())
            .collect::<Result<Vec<IpBlock>, _>>()?;
        Ok(TrustedProxies::new(parsed))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `ip` is a trusted proxy.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|b| b.contains(ip))
    }

    /// The client of a request that came over a connection from `peer`: `peer` itself unless
    /// it is a trusted proxy; else the right-most `X-Forwarded-For` entry that is not a trusted
    /// proxy. When every entry is trusted the left-most one is the client; an entry that is not
    /// an address stops the walk at the last trusted hop (which wrote it, or passed it on).
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        // Several header lines are one list, in order.
        let lines: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let mut client = peer;
        let hops = lines.iter().rev().flat_map(|l| l.rsplit(','));
        for hop in hops.take(MAX_HOPS) {
            let Some(ip) = parse_hop(hop) else {
                return client;
            };
            client = ip;
            if !self.trusts(ip) {
                return ip;
            }
        }
        client
    }
}

/// An `X-Forwarded-For` entry: an address, perhaps with a port (`1.2.3.4:80`, `[::1]:80`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    IpAddr::from_str(hop)
        .or_else(|_| SocketAddr::from_str(hop).map(|s| s.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[track_caller]
    fn check(trusted: &[&str], peer: &str, xff: &[&str], expected: &str) {
        let t = TrustedProxies::parse(trusted).unwrap();
        let mut h = HeaderMap::new();
        for line in xff {
            h.append("x-forwarded-for", line.parse().unwrap());
        }
        assert_eq!(
            t.client(ip(peer), &h),
            ip(expected),
            "{trusted:?} {peer} {xff:?}"
        );
    }

    #[test]
    fn blocks() {
        let b: IpBlock = "10.0.0.0/8".parse().unwrap();
        assert!(b.contains(ip("10.200.3.4")));
        assert!(b.contains(ip("::ffff:10.1.1.1")));
        assert!(!b.contains(ip("11.0.0.1")));
        assert!(!b.contains(ip("::1")));
        let one: IpBlock = "192.168.1.7".parse().unwrap();
        assert!(one.contains(ip("192.168.1.7")) && !one.contains(ip("192.168.1.8")));
        let all: IpBlock = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("8.8.8.8")));
        let v6: IpBlock = "fd00::/8".parse().unwrap();
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")));
        assert_eq!("::1".parse::<IpBlock>().unwrap().to_string(), "::1/128");
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "10.0.0/8",
            "example.org",
            "10.0.0.0/x",
        ] {
            assert_eq!(
                bad.parse::<IpBlock>(),
                Err(BadProxy(bad.to_owned())),
                "{bad}"
            );
        }
        let e = TrustedProxies::parse(&["10.0.0.1", "nope"]).unwrap_err();
        assert!(e.to_string().contains("\"nope\""), "{e}");
    }

    #[test]
    fn the_header_is_believed_only_from_trusted_proxies() {
        // No proxies trusted: the header is ignored.
        check(&[], "203.0.113.9", &["198.51.100.1"], "203.0.113.9");
        // From an untrusted peer: ignored, whatever it says.
        check(&["10.0.0.1"], "203.0.113.9", &["10.0.0.1"], "203.0.113.9");
        // From the proxy: the client it appended.
        check(&["10.0.0.1"], "10.0.0.1", &["198.51.100.1"], "198.51.100.1");
        // A client's forged entries are left of what the proxy appended: not believed.
        check(
            &["10.0.0.1"],
            "10.0.0.1",
            &["1.1.1.1, 2.2.2.2, 198.51.100.1"],
            "198.51.100.1",
        );
        // A chain of trusted proxies is walked back to the first untrusted hop.
        check(
            &["10.0.0.0/8"],
            "10.0.0.1",
            &["1.1.1.1, 198.51.100.1, 10.0.0.3", "10.0.0.2"],
            "198.51.100.1",
        );
        // Ports, IPv6 and IPv4 seen as IPv6.
        check(&["::1"], "::1", &["198.51.100.1:4711"], "198.51.100.1");
        check(
            &["127.0.0.1"],
            "::ffff:127.0.0.1",
            &["[2001:db8::1]:80"],
            "2001:db8::1",
        );
        // No header from the proxy: the proxy is the client.
        check(&["10.0.0.1"], "10.0.0.1", &[], "10.0.0.1");
        // Every hop trusted: the left-most.
        check(
            &["10.0.0.0/8"],
            "10.0.0.1",
            &["10.0.0.5, 10.0.0.2"],
            "10.0.0.5",
        );
        // Junk stops the walk at the last trusted hop.
        check(
            &["10.0.0.0/8"],
            "10.0.0.1",
            &["1.1.1.1, unknown, 10.0.0.2"],
            "10.0.0.2",
        );
        check(&["10.0.0.1"], "10.0.0.1", &["x"], "10.0.0.1");
    }

    #[test]
    fn a_long_header_is_walked_only_so_far() {
        let mut xff = vec!["198.51.100.1".to_owned()];
        xff.extend((0..MAX_HOPS).map(|_| "10.0.0.2".to_owned()));
        let line = xff.join(", ");
        check(&["10.0.0.0/8"], "10.0.0.1", &[&line], "10.0.0.2");
    }
}
