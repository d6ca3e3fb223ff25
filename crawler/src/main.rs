//! `fritter-crawler`: the public aggregator over Fritter archives.
//!
//! With no subcommand it serves: opens (or builds) the index in the data directory, holds and
//! replicates every archive it learns of, indexes them, and answers the HTTP API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use fritter_common::replicate::NodeConfig;
use fritter_common::store::Store;
use fritter_common::swarm::{Swarm, SwarmConfig};
use fritter_crawler::api::{router, router_with, AppState};
use fritter_crawler::config::Config;
use fritter_crawler::crawl::Crawler;
use fritter_crawler::hosting::Hosting;
use fritter_crawler::index::Index;
use fritter_crawler::ingest::Ingester;

#[derive(Parser)]
#[command(
    name = "fritter-crawler",
    version,
    about = "Replicates, validates and indexes public Fritter archives, and answers mentions, \
             threads, trending tags and search over HTTP",
    after_help = "Run without a subcommand to serve. Settings come from --config (TOML, or JSON \
                  if the name ends in .json), then the flags. RUST_LOG=info shows progress."
)]
struct Cli {
    /// Data directory holding the archives and the index [default: ./fritter-crawler-data]
    #[arg(long, env = "FRITTER_CRAWLER_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Config file (TOML, or JSON if it ends in .json)
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address of the HTTP API [default: 127.0.0.1:8080]
    #[arg(long, value_name = "HOST:PORT")]
    http: Option<SocketAddr>,
    /// Address to accept replication connections on [default: 0.0.0.0:0, a free port]
    #[arg(long, value_name = "HOST:PORT")]
    listen: Option<SocketAddr>,
    /// A peer to replicate with, kept connected (repeatable)
    #[arg(long, value_name = "HOST:PORT")]
    peer: Vec<String>,
    /// Do not use the BitTorrent DHT
    #[arg(long)]
    no_dht: bool,
    /// DHT bootstrap node instead of the public ones (repeatable)
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "no_dht")]
    bootstrap: Vec<String>,
    /// Do not look for peers on the local network (mDNS)
    #[arg(long)]
    no_mdns: bool,
    /// An archive to crawl, hyper://<key>/ or a bare key (repeatable)
    #[arg(long, value_name = "URL")]
    seed: Vec<String>,
    /// Print machine-readable JSON (check)
    #[arg(long)]
    json: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Verify every archive held in the data directory: signatures, merkle tree, every entry
    /// against the schema. Exits 1 if any log fails to verify.
    Check,
}

fn main() -> ExitCode {
    fritter_crawler::tune_allocator();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn config(cli: &Cli) -> anyhow::Result<Config> {
    let mut config = match &cli.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(d) = &cli.data_dir {
        config.data_dir = d.clone();
    }
    if let Some(h) = cli.http {
        config.http = h;
    }
    if let Some(l) = cli.listen {
        config.listen = Some(l);
    }
    config.peers.extend(cli.peer.iter().cloned());
    if cli.no_dht {
        config.discovery.dht.bootstrap.clear();
    } else if !cli.bootstrap.is_empty() {
        config.discovery.dht.bootstrap = cli.bootstrap.clone();
    }
    if cli.no_mdns {
        config.discovery.mdns.enabled = false;
    }
    config.seeds.extend(cli.seed.iter().cloned());
    Ok(config)
}

fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    let config = config(cli)?;
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

async fn serve(config: Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!(
            "creating the data directory {} (pick another with --data-dir)",
            config.data_dir.display()
        )
    })?;
    // Half the descriptors for the archives' files, the rest for peers, clients and the index.
    let fds = fritter_common::store::raise_fd_limit().unwrap_or(1024);
    let max_files = (fds / 2).max(64) as usize;
    let store = Store::exclusive(&config.data_dir, max_files)?;
    tracing::info!(max_files, "archive files open at once");
    let index_dir = config.data_dir.join("index");
    let (index, payload) = Index::open(&index_dir)?;
    let resumed = payload.archives.len();
    let (found_tx, found_rx) = tokio::sync::mpsc::channel(65_536);
    let ingest = Ingester::start(
        Arc::new(index),
        payload,
        config.ingest.clone(),
        Some(found_tx),
    )?;
    let mut discovery = config.discovery.clone();
    discovery.peers.extend(config.peers.iter().cloned());
    let swarm = Swarm::start(SwarmConfig {
        node: NodeConfig {
            listen: config.listen,
            ..NodeConfig::default()
        },
        discovery,
    })
    .await
    .context("starting replication (pick another address with --listen)")?;
    let replication = swarm.local_addr();
    let crawler = Crawler::with_limits(
        store,
        ingest.clone(),
        Some(swarm),
        fritter_crawler::crawl::CrawlLimits {
            max_archives: config.max_archives,
            ..config.crawl.clone()
        },
    );
    crawler.spawn_discovery(found_rx);
    let stored = crawler.learn_stored()?;
    for seed in &config.seeds {
        if let Err(e) = crawler.learn_seed(seed) {
            eprintln!("warning: seed {seed}: {e:#}");
        }
    }
    let listener = tokio::net::TcpListener::bind(config.http)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} for HTTP: pick another address with --http",
                config.http
            )
        })?;
    let http = listener.local_addr()?;
    println!("fritter-crawler: HTTP API on http://{http}/ (OpenAPI at http://{http}/openapi.json)");
    println!(
        "fritter-crawler: replication on {}, {stored} archives on disk, index resumed for {resumed}",
        replication.map_or("(dial-out only)".to_owned(), |a| a.to_string())
    );
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let state = AppState::new(crawler.clone(), config.api.clone());
    let app = if config.hosting.enabled {
        let host = config
            .hosting
            .host
            .clone()
            .unwrap_or_else(|| http.to_string());
        let hosting = Hosting::open(
            crawler.clone(),
            config.hosting.clone(),
            &config.data_dir,
            &host,
        )?;
        hosting.spawn_checker();
        println!(
            "fritter-crawler: hosting service for https://{host}/ ({} accounts)",
            hosting.accounts().len()
        );
        let _ = std::io::stdout().flush();
        router_with(state, fritter_crawler::hosting::api::router(hosting))
    } else {
        router(state)
    };
    fritter_crawler::serve::serve(
        listener,
        app,
        fritter_crawler::serve::Limits::of(&config.api),
        fritter_crawler::serve::shutdown_signal(),
    )
    .await;
    eprintln!("fritter-crawler: shutting down, committing the index");
    crawler.shutdown().await;
    tokio::task::spawn_blocking(move || ingest.shutdown()).await?;
    Ok(())
}

fn check(cli: &Cli, config: &Config) -> anyhow::Result<ExitCode> {
    let store = Store::new(&config.data_dir);
    let reports = fritter_crawler::validate::check_all(&store)?;
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
