//! Settings of `fritter-crawler`: a TOML or JSON file (by extension; `.json` is JSON, anything
//! else TOML), every field optional, then command-line flags on top. The defaults run on a fresh
//! machine: data in `./fritter-crawler-data`, the API on `127.0.0.1:8080`, replication on a
//! free port.
//!
//! Every key, its default and why it is so: `crawler/config.example.toml` (a test below keeps
//! it parsing and equal to the defaults).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

use crate::api::ApiConfig;
use crate::ingest::IngestConfig;

/// Largest config file read, in bytes.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// Everything the crawler can be told.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where archives and the index live.
    pub data_dir: PathBuf,
    /// Address of the HTTP API.
    pub http: SocketAddr,
    /// Where to accept replication connections; absent only dials out.
    pub listen: Option<SocketAddr>,
    /// Peers to keep connected (`HOST:PORT`), reconnected with backoff when dropped.
    pub peers: Vec<String>,
    /// How peers are found: the mainline DHT (`[discovery.dht] bootstrap = [...]`, empty turns
    /// it off), mDNS (`[discovery.mdns] enabled = false`), lookup intervals and caps.
    pub discovery: fritter_common::discovery::Config,
    /// Archive URLs to crawl from the start (`hyper://<key>/` or a bare key).
    pub seeds: Vec<String>,
    /// Most archives held; newly learned ones beyond it are refused.
    pub max_archives: usize,
    /// How archives heard of (in mentions, replies, untrusted follow lists) get in:
    /// `max_heard`, `heard_per_sec`, `max_pending_heard`, `max_vouched_per_list`.
    pub crawl: crate::crawl::CrawlLimits,
    pub ingest: IngestConfig,
    pub api: ApiConfig,
    /// The hosting service (`[hosting] enabled = true`, `host`, `max_bytes`, `max_archives`,
    /// `nonce_ttl_ms`, `signup_per_minute`, ...); off by default.
    pub hosting: crate::hosting::HostingConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("fritter-crawler-data"),
            http: SocketAddr::from(([127, 0, 0, 1], 8080)),
            listen: Some(SocketAddr::from(([0, 0, 0, 0], 0))),
            peers: Vec::new(),
            discovery: crawler_discovery(),
            seeds: Vec::new(),
            max_archives: 100_000,
            crawl: crate::crawl::CrawlLimits::default(),
            ingest: IngestConfig::default(),
            api: ApiConfig::default(),
            hosting: crate::hosting::HostingConfig::default(),
        }
    }
}

/// The discovery defaults, with room to announce as many archives as a crawler holds.
fn crawler_discovery() -> fritter_common::discovery::Config {
    fritter_common::discovery::Config {
        max_announced: 100_000,
        ..fritter_common::discovery::Config::default()
    }
}

impl Config {
    /// Reads a config file: JSON if it ends in `.json`, TOML otherwise.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        use std::io::Read;
        let mut text = String::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_CONFIG_BYTES + 1).read_to_string(&mut text))
            .with_context(|| format!("reading the config file {}", path.display()))?;
        anyhow::ensure!(
            text.len() as u64 <= MAX_CONFIG_BYTES,
            "the config file {} is over 1 MiB",
            path.display()
        );
        if path.extension().is_some_and(|e| e == "json") {
            serde_json::from_str(&text)
                .with_context(|| format!("the config file {} is not valid", path.display()))
        } else {
            toml::from_str(&text)
                .with_context(|| format!("the config file {} is not valid", path.display()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_and_json_with_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("c.toml");
        std::fs::write(
            &t,
            "http = \"127.0.0.1:9000\"\npeers = [\"127.0.0.1:1\"]\n[api]\nrate_per_sec = 5\n",
        )
        .unwrap();
        let c = Config::load(&t).unwrap();
        assert_eq!(c.http.port(), 9000);
        assert_eq!(c.peers.len(), 1);
        assert_eq!(c.api.rate_per_sec, 5.0);
        assert_eq!(c.max_archives, 100_000);
        let j = dir.path().join("c.json");
        std::fs::write(&j, r#"{"seeds": ["abc"], "ingest": {"batch_entries": 10}}"#).unwrap();
        let c = Config::load(&j).unwrap();
        assert_eq!(c.seeds, ["abc"]);
        assert_eq!(c.ingest.batch_entries, 10);
        std::fs::write(&j, r#"{"unknown": 1}"#).unwrap();
        assert!(Config::load(&j).is_err());
    }

    /// The example config holds every default: parsed, it is the default config; with its
    /// commented-out settings switched on, it still parses and they take effect.
    #[test]
    fn the_example_config_is_the_defaults_and_its_comments_are_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml");
        let example = Config::load(&path).unwrap();
        assert_eq!(format!("{example:#?}"), format!("{:#?}", Config::default()));

        let text = std::fs::read_to_string(&path).unwrap();
        let on = uncomment_settings(&text);
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("on.toml");
        std::fs::write(&t, &on).unwrap();
        let c = Config::load(&t).unwrap_or_else(|e| panic!("{e:#}\n{on}"));
        assert_eq!(c.hosting.host.as_deref(), Some("fritter.example.org"));
        assert_eq!(c.api.trusted_proxies.len(), 3);
        assert!(c.discovery.dht.port.is_some() && c.discovery.dht.bind_address.is_some());
        assert_eq!(c.ingest.writer_threads, 1);
    }

    /// `text` with every `# key = value` line made a setting, replacing an earlier setting of
    /// the same key in the same section.
    fn uncomment_settings(text: &str) -> String {
        let mut out: Vec<String> = Vec::new();
        let mut section_start = 0;
        for line in text.lines() {
            if line.starts_with('[') {
                section_start = out.len();
            }
            let setting = line.strip_prefix("# ").filter(|rest| {
                rest.split_once(" = ").is_some_and(|(k, _)| {
                    !k.is_empty() && k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                })
            });
            match setting {
                Some(rest) => {
                    let key = format!("{} = ", rest.split_once(" = ").unwrap().0);
                    let section: Vec<String> = out
                        .drain(section_start..)
                        .filter(|l| !l.starts_with(&key))
                        .collect();
                    out.extend(section);
                    out.push(rest.to_owned());
                }
                None => out.push(line.to_owned()),
            }
        }
        out.join("\n")
    }

    #[test]
    fn hosting_section() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("c.toml");
        assert!(!Config::default().hosting.enabled);
        std::fs::write(&t, "[hosting]\nenabled = true\nmax_archives = 3\n").unwrap();
        let c = Config::load(&t).unwrap();
        assert!(c.hosting.enabled);
        assert_eq!(c.hosting.max_archives, 3);
        assert_eq!(c.hosting.max_bytes, 100_000_000);
        std::fs::write(&t, "[hosting]\nenabled = true\nmax_acounts = 3\n").unwrap();
        assert!(Config::load(&t).is_err());
    }
}
