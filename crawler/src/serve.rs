//! The crawler as one value: [`Server::bind`] assembles the node a `fritter-crawler` process
//! runs (the store, the index and its ingest thread, replication, the crawler, the hosting
//! service if configured, the HTTP API on the shared server loop of
//! [`fritter_common::http`]) and [`Server::shutdown`] takes it apart in order, committing the
//! index. `main` only prints what `bind` reports and waits for a signal; tests drive the same
//! thing in-process.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use fritter_common::replicate::NodeConfig;
use fritter_common::store::Store;
use fritter_common::swarm::{Swarm, SwarmConfig};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::api::{router, router_with, AppState};
use crate::config::Config;
use crate::crawl::{CrawlLimits, Crawler};
use crate::hosting::Hosting;
use crate::index::Index;
use crate::ingest::Ingester;

/// A running crawler. Dropping it without [`Server::shutdown`] stops the HTTP server but does
/// not wait for the index to be committed.
pub struct Server {
    http: SocketAddr,
    replication: Option<SocketAddr>,
    stored: usize,
    resumed: usize,
    /// The host proofs must name and the accounts loaded, when hosting is on.
    hosting: Option<(String, usize)>,
    crawler: Arc<Crawler>,
    ingest: Arc<Ingester>,
    stop: Option<oneshot::Sender<()>>,
    http_task: Option<JoinHandle<()>>,
}

impl Server {
    /// Opens the data directory, starts replication, ingest and (if configured) hosting, and
    /// serves the HTTP API on `config.http`. Call within a multi-threaded tokio runtime.
    pub async fn bind(config: Config) -> anyhow::Result<Server> {
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!(
                "creating the data directory {} (pick another with --data-dir)",
                config.data_dir.display()
            )
        })?;
        // Half the descriptors for the archives' files, the rest for peers, clients and the
        // index.
        let fds = fritter_common::store::raise_fd_limit().unwrap_or(1024);
        let max_files = (fds / 2).max(64) as usize;
        let store = Store::exclusive(&config.data_dir, max_files)?;
        tracing::info!(max_files, "archive files open at once");
        let (index, payload) = Index::open(&config.data_dir.join("index"))?;
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
            CrawlLimits {
                max_archives: config.max_archives,
                ..config.crawl.clone()
            },
        );
        crawler.spawn_discovery(found_rx);
        let stored = crawler.learn_stored()?;
        for seed in &config.seeds {
            if let Err(e) = crawler.learn_seed(seed) {
                tracing::warn!("seed {seed}: {e:#}");
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
        let state = AppState::new(crawler.clone(), config.api.clone());
        let (app, hosting) = if config.hosting.enabled {
            if let Some(warning) = host_warning(&config, http) {
                tracing::warn!("{warning}");
            }
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
            let accounts = hosting.accounts().len();
            let app = router_with(state, crate::hosting::api::router(hosting));
            (app, Some((host, accounts)))
        } else {
            (router(state), None)
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let http_task = tokio::spawn(fritter_common::http::serve(
            listener,
            app,
            config.api.limits(),
            async move {
                let _ = stopped.await;
            },
        ));
        Ok(Server {
            http,
            replication,
            stored,
            resumed,
            hosting,
            crawler,
            ingest,
            stop: Some(stop),
            http_task: Some(http_task),
        })
    }

    /// The address the HTTP API listens on (the port chosen, if `:0` was asked for).
    pub fn http_addr(&self) -> SocketAddr {
        self.http
    }

    /// The address replication connections are accepted on; `None` only dials out.
    pub fn replication_addr(&self) -> Option<SocketAddr> {
        self.replication
    }

    pub fn crawler(&self) -> &Arc<Crawler> {
        &self.crawler
    }

    /// What the operator is told at start, one line each: where the API and replication are,
    /// what was found on disk, and the hosting service.
    pub fn banner(&self) -> Vec<String> {
        let http = self.http;
        let mut lines = vec![
            format!("HTTP API on http://{http}/ (OpenAPI at http://{http}/openapi.json)"),
            format!(
                "replication on {}, {} archives on disk, index resumed for {}",
                self.replication
                    .map_or("(dial-out only)".to_owned(), |a| a.to_string()),
                self.stored,
                self.resumed
            ),
        ];
        if let Some((host, accounts)) = &self.hosting {
            lines.push(format!(
                "hosting service for https://{host}/ ({accounts} accounts)"
            ));
        }
        lines
    }

    /// Stops accepting HTTP connections (requests in flight get a few seconds), stops
    /// replicating, and commits the index.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.http_task.take() {
            task.await.context("the HTTP server failed")?;
        }
        self.crawler.shutdown().await;
        let ingest = self.ingest.clone();
        tokio::task::spawn_blocking(move || ingest.shutdown())
            .await
            .context("committing the index failed")?;
        Ok(())
    }
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("http", &self.http)
            .field("replication", &self.replication)
            .finish_non_exhaustive()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(task) = &self.http_task {
            task.abort();
        }
    }
}

/// Why signups cannot work as configured, if they cannot: with no `[hosting] host`, proofs
/// must name the HTTP address, and an unspecified one (`0.0.0.0`, `::`) is no one's name.
fn host_warning(config: &Config, http: SocketAddr) -> Option<String> {
    let unnamed = config.hosting.enabled && config.hosting.host.is_none();
    (unnamed && http.ip().is_unspecified()).then(|| {
        format!(
            "hosting is on but [hosting] host is not set, so proofs must name the HTTP address \
             {http}, which no client can reach: every signup will be refused (\"asked for a \
             proof for {http}\"). Set [hosting] host to the name clients reach this service by, \
             such as host = \"fritter.example.org\""
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warns_when_proofs_would_name_an_unspecified_address() {
        let mut config = Config::default();
        let any: SocketAddr = "0.0.0.0:8082".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:8082".parse().unwrap();
        assert_eq!(host_warning(&config, any), None, "hosting off");
        config.hosting.enabled = true;
        let w = host_warning(&config, any).unwrap();
        assert!(
            w.contains("0.0.0.0:8082") && w.contains("[hosting] host"),
            "{w}"
        );
        assert!(host_warning(&config, "[::]:80".parse().unwrap()).is_some());
        assert_eq!(host_warning(&config, local), None);
        config.hosting.host = Some("fritter.example.org".into());
        assert_eq!(host_warning(&config, any), None);
    }
}
