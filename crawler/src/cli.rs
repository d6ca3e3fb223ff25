//! The command line of `fritter-crawler`: its flags (clap derive), how they override the
//! config file, and the two things it does: serve ([`crate::serve::Server`]) or `check`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::serve::Server;

#[derive(Debug, Parser)]
#[command(
    name = "fritter-crawler",
    version,
    about = "Replicates, validates and indexes public Fritter archives, and answers mentions, \
             threads, trending tags and search over HTTP",
    after_help = "Run without a subcommand to serve. Settings come from --config (TOML, or JSON \
                  if the name ends in .json), then the flags. RUST_LOG=info shows progress."
)]
pub struct Cli {
    /// Data directory holding the archives and the index [default: ./fritter-crawler-data]
    #[arg(long, env = "FRITTER_CRAWLER_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Config file (TOML, or JSON if it ends in .json)
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Address of the HTTP API [default: 127.0.0.1:8080]
    #[arg(long, value_name = "HOST:PORT")]
    pub http: Option<SocketAddr>,
    /// Address to accept replication connections on [default: 0.0.0.0:0, a free port]
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<SocketAddr>,
    /// A peer to replicate with, kept connected (repeatable)
    #[arg(long, value_name = "HOST:PORT")]
    pub peer: Vec<String>,
    /// Do not use the BitTorrent DHT
    #[arg(long)]
    pub no_dht: bool,
    /// DHT bootstrap node instead of the public ones (repeatable)
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "no_dht")]
    pub bootstrap: Vec<String>,
    /// Do not look for peers on the local network (mDNS)
    #[arg(long)]
    pub no_mdns: bool,
    /// An archive to crawl, hyper://<key>/ or a bare key (repeatable)
    #[arg(long, value_name = "URL")]
    pub seed: Vec<String>,
    /// Print machine-readable JSON (check)
    #[arg(long)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Verify every archive held in the data directory: signatures, merkle tree, every entry
    /// against the schema. Exits 1 if any log fails to verify.
    Check,
}

impl Cli {
    /// The config file (if any) with the flags on top.
    pub fn config(&self) -> anyhow::Result<Config> {
        let mut config = match &self.config {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        if let Some(d) = &self.data_dir {
            config.data_dir = d.clone();
        }
        if let Some(h) = self.http {
            config.http = h;
        }
        if let Some(l) = self.listen {
            config.listen = Some(l);
        }
        config.peers.extend(self.peer.iter().cloned());
        if self.no_dht {
            config.discovery.dht.bootstrap.clear();
        } else if !self.bootstrap.is_empty() {
            config.discovery.dht.bootstrap = self.bootstrap.clone();
        }
        if self.no_mdns {
            config.discovery.mdns.enabled = false;
        }
        config.seeds.extend(self.seed.iter().cloned());
        Ok(config)
    }
}

/// Runs what `cli` asks for.
pub fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    let config = cli.config()?;
    match cli.command {
        Some(Command::Check) => check(cli, &config),
        None => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            rt.block_on(serve(config))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Serves until ctrl-c or SIGTERM, telling the operator where on stdout.
async fn serve(config: Config) -> anyhow::Result<()> {
    use std::io::Write;
    let server = Server::bind(config).await?;
    for line in server.banner() {
        println!("fritter-crawler: {line}");
    }
    let _ = std::io::stdout().flush();
    fritter_common::http::shutdown_signal().await;
    eprintln!("fritter-crawler: shutting down, committing the index");
    server.shutdown().await
}

fn check(cli: &Cli, config: &Config) -> anyhow::Result<ExitCode> {
    let store = fritter_common::store::Store::new(&config.data_dir);
    let reports = crate::validate::check_all(&store)?;
    let failed = reports.iter().filter(|r| r.error.is_some()).count();
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    } else {
        if reports.is_empty() {
            println!("no archives in {}", config.data_dir.display());
        }
        for r in &reports {
            let status = match &r.error {
                Some(e) => format!("FAILED: {e}"),
                None => "ok".to_owned(),
            };
            println!(
                "hyper://{}/  length {} (fork {}), {} stored, {} files, {} invalid entries: {status}",
                r.archive, r.length, r.fork, r.stored, r.files, r.skipped
            );
            for s in &r.skipped_examples {
                println!("    entry {}: {}", s.seq, s.reason);
            }
        }
    }
    Ok(if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
