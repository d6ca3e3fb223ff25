//! Discovery settings: a serde `Config` that the binaries embed in their config files, with
//! defaults that work on a fresh machine and a `validate` that names the bad value.

use std::net::Ipv4Addr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::DiscoveryError;

/// The public mainline DHT bootstrap nodes (those `mainline` uses by default).
pub const PUBLIC_BOOTSTRAP: [&str; 4] = mainline::DEFAULT_BOOTSTRAP_NODES;

/// The mDNS service type every Fritter node registers (one instance per node).
pub const MDNS_SERVICE_TYPE: &str = "_fritter._tcp.local.";

/// The standard mDNS UDP port.
pub const MDNS_PORT: u16 = mdns_sd::MDNS_PORT;

/// At most this many `--peer` entries and bootstrap entries each.
pub(super) const MAX_CONFIGURED_ADDRESSES: usize = 64;

/// Upper bounds for the tunable limits, so a typo in a config file cannot ask for the absurd.
const MAX_PEERS_PER_LOOKUP_CAP: usize = 10_000;
const MAX_ANNOUNCED_CAP: usize = 100_000;
const MAX_CONCURRENT_QUERIES_CAP: usize = 256;
const MAX_LAN_PEERS_CAP: usize = 10_000;
const MAX_INTERVAL_SECS: u64 = 24 * 60 * 60;

/// How a node finds peers for its archives. Every source can be turned off:
/// the DHT with an empty `dht.bootstrap`, mDNS with `mdns.enabled = false`, direct peers by
/// listing none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The BitTorrent mainline DHT.
    pub dht: DhtConfig,
    /// Multicast DNS on the local network.
    pub mdns: MdnsConfig,
    /// Always-on peers (`HOST:PORT`, as given with `--peer`): candidates for every archive,
    /// resolved again at every lookup round.
    pub peers: Vec<String>,
    /// Seconds between two lookup rounds of a [`watch`](super::Discovery::watch).
    pub lookup_interval_secs: u64,
    /// Seconds after which one DHT lookup (or announce) is abandoned.
    pub query_timeout_secs: u64,
    /// At most this many addresses are reported by one lookup round.
    pub max_peers_per_lookup: usize,
    /// At most this many discovery keys can be announced at once.
    pub max_announced: usize,
    /// At most this many DHT lookups, and separately this many DHT announces, run at once.
    pub max_concurrent_queries: usize,
}

/// The mainline DHT source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DhtConfig {
    /// Bootstrap nodes, `HOST:PORT`. An empty list turns the DHT off: no socket is opened and
    /// nothing falls back to the public nodes.
    pub bootstrap: Vec<String>,
    /// The IPv4 address the DHT's UDP socket binds to (all interfaces when absent).
    pub bind_address: Option<Ipv4Addr>,
    /// The DHT's UDP port (any free port when absent).
    pub port: Option<u16>,
    /// Seconds between two announces of the same key (DHT nodes forget peers after about 30 min).
    pub reannounce_interval_secs: u64,
}

/// The mDNS source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MdnsConfig {
    pub enabled: bool,
    /// The service type registered and browsed, e.g. `_fritter._tcp.local.`.
    pub service_type: String,
    /// The UDP port of mDNS (5353; another port only finds nodes configured alike).
    pub port: u16,
    /// Interface names to use; empty means every interface.
    pub interfaces: Vec<String>,
    /// At most this many LAN nodes are remembered.
    pub max_peers: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            dht: DhtConfig::default(),
            mdns: MdnsConfig::default(),
            peers: Vec::new(),
            lookup_interval_secs: 5 * 60,
            query_timeout_secs: 30,
            max_peers_per_lookup: 64,
            max_announced: 1024,
            max_concurrent_queries: 8,
        }
    }
}

impl Default for DhtConfig {
    fn default() -> Self {
        DhtConfig {
            bootstrap: PUBLIC_BOOTSTRAP.iter().map(|s| s.to_string()).collect(),
            bind_address: None,
            port: None,
            reannounce_interval_secs: 15 * 60,
        }
    }
}

impl Default for MdnsConfig {
    fn default() -> Self {
        MdnsConfig {
            enabled: true,
            service_type: MDNS_SERVICE_TYPE.to_string(),
            port: MDNS_PORT,
            interfaces: Vec::new(),
            max_peers: 256,
        }
    }
}

impl Config {
    /// Every source off: no DHT, no mDNS, no direct peers. A starting point for tests and for
    /// nodes that turn on exactly what they need.
    pub fn offline() -> Self {
        Config {
            dht: DhtConfig {
                bootstrap: Vec::new(),
                ..DhtConfig::default()
            },
            mdns: MdnsConfig {
                enabled: false,
                ..MdnsConfig::default()
            },
            ..Config::default()
        }
    }

    /// Checks every value, so a bad config fails at start and not at the first lookup.
    pub fn validate(&self) -> Result<(), DiscoveryError> {
        check_list("peers", &self.peers)?;
        check_list("dht.bootstrap", &self.dht.bootstrap)?;
        check_range(
            "lookup_interval_secs",
            self.lookup_interval_secs,
            1,
            MAX_INTERVAL_SECS,
        )?;
        check_range("query_timeout_secs", self.query_timeout_secs, 1, 600)?;
        check_range(
            "dht.reannounce_interval_secs",
            self.dht.reannounce_interval_secs,
            1,
            MAX_INTERVAL_SECS,
        )?;
        check_range(
            "max_peers_per_lookup",
            self.max_peers_per_lookup as u64,
            1,
            MAX_PEERS_PER_LOOKUP_CAP as u64,
        )?;
        check_range(
            "max_announced",
            self.max_announced as u64,
            1,
            MAX_ANNOUNCED_CAP as u64,
        )?;
        check_range(
            "max_concurrent_queries",
            self.max_concurrent_queries as u64,
            1,
            MAX_CONCURRENT_QUERIES_CAP as u64,
        )?;
        check_range(
            "mdns.max_peers",
            self.mdns.max_peers as u64,
            1,
            MAX_LAN_PEERS_CAP as u64,
        )?;
        if self.mdns.enabled {
            check_service_type(&self.mdns.service_type)?;
            if self.mdns.port == 0 {
                return Err(invalid(
                    "mdns.port",
                    "0".into(),
                    "must be a port number from 1 to 65535",
                ));
            }
            if self
                .mdns
                .interfaces
                .iter()
                .any(|name| name.is_empty() || name.len() > 64)
            {
                return Err(invalid(
                    "mdns.interfaces",
                    format!("{:?}", self.mdns.interfaces),
                    "interface names must be 1 to 64 characters",
                ));
            }
        }
        Ok(())
    }

    pub fn lookup_interval(&self) -> Duration {
        Duration::from_secs(self.lookup_interval_secs)
    }

    pub fn query_timeout(&self) -> Duration {
        Duration::from_secs(self.query_timeout_secs)
    }

    pub fn reannounce_interval(&self) -> Duration {
        Duration::from_secs(self.dht.reannounce_interval_secs)
    }
}

fn invalid(field: &'static str, value: String, reason: &'static str) -> DiscoveryError {
    DiscoveryError::InvalidConfig {
        field,
        value,
        reason,
    }
}

fn check_range(field: &'static str, value: u64, min: u64, max: u64) -> Result<(), DiscoveryError> {
    if value < min || value > max {
        return Err(DiscoveryError::OutOfRange {
            field,
            value,
            min,
            max,
        });
    }
    Ok(())
}

fn check_list(field: &'static str, list: &[String]) -> Result<(), DiscoveryError> {
    if list.len() > MAX_CONFIGURED_ADDRESSES {
        return Err(DiscoveryError::OutOfRange {
            field,
            value: list.len() as u64,
            min: 0,
            max: MAX_CONFIGURED_ADDRESSES as u64,
        });
    }
    for entry in list {
        split_host_port(entry).map_err(|reason| DiscoveryError::InvalidAddress {
            field,
            value: entry.clone(),
            reason,
        })?;
    }
    Ok(())
}

/// Splits `HOST:PORT` (`[v6]:PORT` for IPv6 literals) without resolving anything.
pub(crate) fn split_host_port(s: &str) -> Result<(&str, u16), &'static str> {
    if s.len() > 261 {
        return Err("longer than a host name and port can be");
    }
    let (host, port) = s.rsplit_once(':').ok_or("expected HOST:PORT")?;
    let port: u16 = port
        .parse()
        .map_err(|_| "the port is not a number from 1 to 65535")?;
    if port == 0 {
        return Err("the port is not a number from 1 to 65535");
    }
    let host = if let Some(inner) = host.strip_prefix('[') {
        let inner = inner
            .strip_suffix(']')
            .ok_or("an IPv6 address needs brackets: [ADDR]:PORT")?;
        inner
            .parse::<std::net::Ipv6Addr>()
            .map_err(|_| "not an IPv6 address inside the brackets")?;
        host
    } else {
        if host.contains(':') {
            return Err("an IPv6 address needs brackets: [ADDR]:PORT");
        }
        host
    };
    if host.is_empty() {
        return Err("expected HOST:PORT");
    }
    if host
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '/')
    {
        return Err("the host contains spaces, slashes or control characters");
    }
    Ok((host, port))
}

fn check_service_type(ty: &str) -> Result<(), DiscoveryError> {
    let name = ty.strip_suffix("._tcp.local.").ok_or_else(|| {
        invalid(
            "mdns.service_type",
            ty.to_string(),
            "must end with ._tcp.local.",
        )
    })?;
    let label = name.strip_prefix('_').ok_or_else(|| {
        invalid(
            "mdns.service_type",
            ty.to_string(),
            "must start with an underscore",
        )
    })?;
    // RFC 6335: service names are 1 to 15 characters of letters, digits and hyphens.
    if label.is_empty()
        || label.len() > 15
        || !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(invalid(
            "mdns.service_type",
            ty.to_string(),
            "the service name must be 1 to 15 letters, digits or hyphens",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_split(input: &str, expected: Result<(&str, u16), &str>) {
        assert_eq!(split_host_port(input), expected, "input {input:?}");
    }

    #[test]
    fn host_port_forms() {
        check_split("example.org:7000", Ok(("example.org", 7000)));
        check_split("127.0.0.1:1", Ok(("127.0.0.1", 1)));
        check_split("[::1]:7000", Ok(("[::1]", 7000)));
        check_split("example.org", Err("expected HOST:PORT"));
        check_split(":7000", Err("expected HOST:PORT"));
        check_split(
            "example.org:0",
            Err("the port is not a number from 1 to 65535"),
        );
        check_split(
            "example.org:70000",
            Err("the port is not a number from 1 to 65535"),
        );
        check_split(
            "::1:7000",
            Err("an IPv6 address needs brackets: [ADDR]:PORT"),
        );
        check_split(
            "[nope]:7000",
            Err("not an IPv6 address inside the brackets"),
        );
        check_split(
            "a b:1",
            Err("the host contains spaces, slashes or control characters"),
        );
    }

    #[test]
    fn defaults_use_public_bootstrap_and_validate() {
        let config = Config::default();
        assert_eq!(config.dht.bootstrap, PUBLIC_BOOTSTRAP.to_vec());
        assert!(config.mdns.enabled);
        assert_eq!(config.mdns.service_type, "_fritter._tcp.local.");
        assert_eq!(config.dht.reannounce_interval_secs, 900);
        config.validate().unwrap();
        Config::offline().validate().unwrap();
        assert!(Config::offline().dht.bootstrap.is_empty());
    }

    #[test]
    fn serde_round_trip_and_explicit_empty_bootstrap() {
        // A missing field takes its default; an explicitly empty bootstrap list turns the DHT off.
        let config: Config = serde_json::from_str(r#"{"dht": {"bootstrap": []}}"#).unwrap();
        assert!(config.dht.bootstrap.is_empty());
        assert!(config.mdns.enabled);
        let config: Config = serde_json::from_str("{}").unwrap();
        assert_eq!(config, Config::default());
        let text = serde_json::to_string(&Config::default()).unwrap();
        assert_eq!(
            serde_json::from_str::<Config>(&text).unwrap(),
            Config::default()
        );
        assert!(serde_json::from_str::<Config>(r#"{"dht": {"bootstap": []}}"#).is_err());
    }

    #[test]
    fn validation_names_the_bad_value() {
        let mut config = Config::offline();
        config.peers = vec!["crawler.example".into()];
        assert_eq!(
            config.validate().unwrap_err().to_string(),
            "invalid peers entry \"crawler.example\": expected HOST:PORT"
        );
        let mut config = Config::offline();
        config.max_peers_per_lookup = 0;
        assert_eq!(
            config.validate().unwrap_err().to_string(),
            "max_peers_per_lookup is 0 but must be from 1 to 10000"
        );
        let mut config = Config::default();
        config.mdns.service_type = "_fritter._udp.local.".into();
        assert_eq!(
            config.validate().unwrap_err().to_string(),
            "invalid mdns.service_type \"_fritter._udp.local.\": must end with ._tcp.local."
        );
    }
}
