//! `fritter serve`: runs the node (own archive plus followed archives, live) and serves the web
//! app and its JSON API on 127.0.0.1.
//!
//! While it runs it holds the own archive's write lock, so it writes `serve.json` (port and
//! token, mode 0600) into the data directory: the other `fritter` commands find it there and
//! act through the API instead of failing on the lock ([`crate::remote`]).
//!
//! Modules: [`node`] (state and live updates), [`api`] (routes, write protection, SSE),
//! [`assets`] (the embedded web app), [`crawler`] (the optional crawler client).

pub mod api;
pub mod assets;
pub mod crawler;
mod error;
pub mod node;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::output::{Output, Report};
use crate::App;
use node::{write_private, Event, Node};

/// The HTTP address `fritter serve` uses unless told otherwise.
pub const DEFAULT_HTTP: &str = "127.0.0.1:8473";

/// How `fritter serve` runs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Where the web app and API listen.
    pub http: SocketAddr,
    /// How replication finds and reaches peers.
    pub net: crate::sync::NetFlags,
    /// The crawler's base URL.
    pub crawler: Option<String>,
}

/// What `serve.json` holds: how to reach the running server.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ServeInfo {
    /// `http://127.0.0.1:<port>/`.
    pub url: String,
    /// The write token.
    pub token: String,
    pub pid: u32,
}

impl ServeInfo {
    pub fn path(app: &App) -> std::path::PathBuf {
        app.store.root().join("serve.json")
    }

    /// The running server's info, if `serve.json` exists and parses.
    pub fn read(app: &App) -> Option<ServeInfo> {
        let text = std::fs::read_to_string(ServeInfo::path(app)).ok()?;
        serde_json::from_str(&text).ok()
    }
}

/// The per-install write token: created once (random, 256 bits), kept in `<data-dir>/app/token`.
pub fn load_or_create_token(app: &App) -> anyhow::Result<String> {
    let path = app.store.root().join("app").join("token");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let token = text.trim();
        if token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(token.to_owned());
        }
        tracing::warn!(path = %path.display(), "the token file is malformed; making a new token");
    }
    let token = hex::encode(rand::random::<[u8; 32]>());
    write_private(&path, token.as_bytes())?;
    Ok(token)
}

/// What `fritter serve` prints once it is serving.
#[derive(Debug, Serialize)]
pub struct Serving {
    pub url: String,
    /// The own archive, once an identity exists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archive: Option<String>,
}

impl std::fmt::Display for Serving {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "Fritter is serving on {}", self.url)?;
        match &self.archive {
            Some(archive) => write!(f, "Your archive: {archive}")?,
            None => write!(f, "No identity yet: open the page to choose your name")?,
        }
        write!(f, "\nPress ctrl-c to stop.")
    }
}

impl Report for Serving {}

/// Runs `fritter serve` until ctrl-c or SIGTERM.
pub fn run(app: App, options: ServeOptions, out: &mut Output<'_>) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("fritter-serve")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(app, options, out))
}

async fn serve(app: App, options: ServeOptions, out: &mut Output<'_>) -> anyhow::Result<()> {
    let token = load_or_create_token(&app)?;
    let listener = tokio::net::TcpListener::bind(options.http)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}; is another `fritter serve` running? Pass --http 127.0.0.1:PORT to use another port",
                options.http
            )
        })?;
    let addr = listener.local_addr()?;
    if !addr.ip().is_loopback() {
        tracing::warn!(%addr, "serving beyond this machine: anyone who can reach it can read your feed");
    }
    let node = Arc::new(Node::new(app.clone(), token.clone(), addr.port(), options)?);
    let own = app.store.identity()?.map(|kp| kp.public());
    let host = if addr.ip().is_unspecified() {
        "127.0.0.1".to_owned()
    } else {
        addr.ip().to_string()
    };
    let url = if addr.is_ipv6() {
        format!("http://[{host}]:{}/", addr.port())
    } else {
        format!("http://{host}:{}/", addr.port())
    };
    let info = ServeInfo {
        url: url.clone(),
        token,
        pid: std::process::id(),
    };
    write_private(&ServeInfo::path(&app), &serde_json::to_vec(&info)?)?;
    // Serve at once; opening and replicating every followed archive happens behind it (the
    // API answers 503 "starting" meanwhile, and the CLI waits).
    let starting = node.clone();
    tokio::spawn(async move {
        match starting.go_live().await {
            Ok(true) => {}
            Ok(false) => wait_for_identity(starting).await,
            Err(err) => {
                tracing::error!(error = %format!("{err:#}"), "cannot start the node");
                starting.failed(format!("{err:#}"));
            }
        }
    });
    out.emit(&Serving {
        url,
        archive: own.map(|k| format!("hyper://{}/", k.to_hex())),
    })?;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let router = api::router(node.clone(), stop_rx);
    let result = axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            tracing::info!("shutting down");
            let _ = stop_tx.send(true);
        })
        .await
        .context("the web server failed");
    node.shutdown().await;
    // Only remove serve.json if it is still ours (another serve may have started since).
    if ServeInfo::read(&app).is_some_and(|i| i.pid == std::process::id()) {
        let _ = std::fs::remove_file(ServeInfo::path(&app));
    }
    let _ = std::io::stdout().flush();
    result
}

/// Setup mode: goes live as soon as an identity appears (created in a terminal with `fritter
/// init`; the UI's own path goes live directly).
async fn wait_for_identity(node: Arc<Node>) {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if node.live().is_some() {
            return;
        }
        match node.go_live().await {
            Ok(true) => {
                let _ = node.events.send(Event::Ready { indexing: true });
                return;
            }
            Ok(false) => {}
            Err(err) => tracing::debug!(error = %format!("{err:#}"), "not live yet"),
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
