//! `fritter serve`: runs the node (own archive plus followed archives, live) and serves the web
//! app and its JSON API on 127.0.0.1.
//!
//! While it runs it holds the own archive's write lock, so it writes `serve.json` (port and
//! token, mode 0600) into the data directory: the other `fritter` commands find it there and
//! act through the API instead of failing on the lock ([`crate::remote`]).
//!
//! Modules: [`node`] (state and live updates), [`api`] (routes, write protection, SSE),
//! `idempotent` (writes one at a time, repeated idempotency keys answered as the first time),
//! [`assets`] (the embedded web app), [`crawler`] (the optional crawler client).

pub mod api;
pub mod assets;
pub mod crawler;
mod error;
mod idempotent;
pub mod node;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use fritter_common::http::{self, shutdown_signal};
use fritter_common::store::StoreError;

use crate::output::{Output, Report};
use crate::{remote, App};
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

/// The lock file only the one `fritter serve` of a data directory holds.
const SERVE_LOCK: &str = "app/serve.lock";

/// A node's web app and API, listening: what `fritter serve` and `fritter sync` both run, so
/// commands reach either the same way (through `serve.json`).
pub struct Server {
    pub node: Arc<Node>,
    pub url: String,
    info: ServeInfo,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Listens on `options.http` and serves the node of `app` (not live yet: see
    /// [`Node::claim`] and [`Node::go_live`]).
    pub async fn start(app: &App, options: ServeOptions) -> anyhow::Result<Server> {
        let token = load_or_create_token(app)?;
        let listener = tokio::net::TcpListener::bind(options.http)
            .await
            .with_context(|| {
                format!(
                    "cannot listen on {}; is another program using it? Pass --http 127.0.0.1:PORT to use another port",
                    options.http
                )
            })?;
        let addr = listener.local_addr()?;
        if !addr.ip().is_loopback() {
            tracing::warn!(%addr, "serving beyond this machine: anyone who can reach it can read your feed");
        }
        let node = Arc::new(Node::new(app.clone(), token.clone(), addr.port(), options)?);
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
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let router = api::router(node.clone(), stop_rx.clone());
        let mut stopped = stop_rx;
        // The loop the crawler serves with: a header-read timeout and connection caps, so
        // dribbling or idle clients cannot use up descriptors that replication needs.
        let task = tokio::spawn(http::serve(
            listener,
            router,
            http::Limits::default(),
            async move {
                let _ = stopped.wait_for(|s| *s).await;
            },
        ));
        let info = ServeInfo {
            url: url.clone(),
            token,
            pid: std::process::id(),
        };
        Ok(Server {
            node,
            url,
            info,
            stop,
            task,
        })
    }

    /// Writes `serve.json`, so commands find this server. Only the holder of the archive's lock
    /// (or a server with no identity yet) does: one process at a time.
    pub fn announce(&self) -> anyhow::Result<()> {
        announce(&self.node.app, &self.info)
    }

    /// Takes the own archive if it is free and announces the server; says whether an identity
    /// exists. The error is the lock's when another process holds the archive.
    pub async fn claim(&self) -> anyhow::Result<bool> {
        let node = self.node.clone();
        let claimed = tokio::task::spawn_blocking(move || node.claim())
            .await
            .context("the task opening your archive failed")??;
        self.announce()?;
        Ok(claimed)
    }

    /// Stops serving, then the node; removes `serve.json` if it is still ours.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        let served = self.task.await;
        self.node.shutdown().await;
        if ServeInfo::read(&self.node.app).is_some_and(|i| i.pid == std::process::id()) {
            let _ = std::fs::remove_file(ServeInfo::path(&self.node.app));
        }
        served.context("the web server task failed")
    }
}

async fn serve(app: App, options: ServeOptions, out: &mut Output<'_>) -> anyhow::Result<()> {
    // One `fritter serve` per data directory: a second one would answer for archives it cannot
    // write and, on exit, remove the first one's `serve.json`.
    let _serving = app
        .store
        .lock_file(SERVE_LOCK)
        .map_err(|err| already_serving(&app, err))?;
    let server = Server::start(&app, options).await?;
    // Take the archive now if it is free, so `serve.json` exists once "serving" is printed;
    // otherwise wait for it in the background (the API answers 503 with what it waits for).
    let first = server.claim().await;
    if let Err(err) = &first {
        server.node.failed(waiting_message(err));
    }
    let own = app.store.identity()?.map(|kp| kp.public());
    out.emit(&Serving {
        url: server.url.clone(),
        archive: own.map(|k| format!("hyper://{}/", k.to_hex())),
    })?;
    let starting = tokio::spawn(bring_up(
        server.node.clone(),
        server.info.clone(),
        first.ok(),
    ));
    shutdown_signal().await;
    tracing::info!("shutting down");
    starting.abort();
    let _ = starting.await;
    let result = server.stop().await;
    let _ = std::io::stdout().flush();
    result
}

/// The error a second `fritter serve` stops with: which one runs, and where.
fn already_serving(app: &App, err: StoreError) -> anyhow::Error {
    let StoreError::FileLocked { pid, .. } = &err else {
        return anyhow::Error::new(err).context("cannot tell whether `fritter serve` already runs");
    };
    let running = ServeInfo::read(app).filter(|info| Some(info.pid) == *pid);
    match (running, pid) {
        (Some(info), _) => anyhow::anyhow!(
            "`fritter serve` is already running on {} (pid {}) for this data directory; use it, or stop it first",
            info.url,
            info.pid
        ),
        (None, Some(pid)) => anyhow::anyhow!(
            "`fritter serve` (pid {pid}) is already running for this data directory; use it, or stop it first"
        ),
        (None, None) => anyhow::anyhow!(
            "another `fritter serve` is already running for this data directory; stop it first"
        ),
    }
}

/// What the API and page say while the archive is not ours yet.
fn waiting_message(err: &anyhow::Error) -> String {
    let pid = err
        .chain()
        .find_map(|e| match e.downcast_ref::<StoreError>() {
            Some(StoreError::Locked { pid, .. }) => Some(*pid),
            _ => None,
        });
    match pid {
        Some(Some(pid)) => format!(
            "waiting for process {pid} ({}) to release the archive; serving starts as soon as it does",
            process_name(pid)
        ),
        Some(None) => "waiting for another process to release the archive; serving starts as soon as it does".to_owned(),
        None => format!("cannot open your archive, retrying: {err:#}"),
    }
}

/// A process's command, as `ps` would name it (`fritter sync`), from `/proc`.
fn process_name(pid: u32) -> String {
    let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return "no longer running".to_owned();
    };
    let args: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let Some(program) = args.first() else {
        return "unknown command".to_owned();
    };
    let program = std::path::Path::new(program)
        .file_name()
        .map_or_else(|| program.clone(), |n| n.to_string_lossy().into_owned());
    // The subcommand is the first word that is neither a flag nor a flag's value.
    let mut words = args.iter().skip(1);
    let mut command = None;
    while let Some(word) = words.next() {
        if word == "--data-dir" {
            words.next();
        } else if !word.starts_with('-') {
            command = Some(word);
            break;
        }
    }
    match command {
        Some(command) if program == "fritter" => format!("fritter {command}"),
        _ => program,
    }
}

/// Takes the archive as soon as it is free (unless `first` already did), then goes live; with
/// no identity yet, waits for one.
async fn bring_up(node: Arc<Node>, info: ServeInfo, first: Option<bool>) {
    let mut claimed = first;
    let mut pause = CLAIM_EVERY;
    while claimed.is_none() {
        tokio::time::sleep(pause).await;
        let n = node.clone();
        let attempt = tokio::task::spawn_blocking(move || n.claim()).await;
        match attempt {
            Ok(Ok(identity)) => {
                if let Err(err) = announce(&node.app, &info) {
                    tracing::error!(error = %format!("{err:#}"), "cannot write serve.json");
                }
                tracing::info!("took the archive");
                claimed = Some(identity);
            }
            Ok(Err(err)) => {
                let why = waiting_message(&err);
                // A lock held elsewhere is routine; anything else backs off.
                pause = if remote::is_locked(&err) {
                    CLAIM_EVERY
                } else {
                    tracing::warn!(error = %format!("{err:#}"), "cannot open the archive");
                    (pause * 2).min(Duration::from_secs(5))
                };
                node.failed(why);
            }
            Err(err) => {
                tracing::error!(error = %err, "the task opening the archive failed");
                return;
            }
        }
    }
    loop {
        match node.go_live().await {
            Ok(true) => return,
            Ok(false) => return wait_for_identity(node).await,
            Err(err) => {
                tracing::error!(error = %format!("{err:#}"), "cannot start the node; retrying");
                node.failed(format!("{err:#}"));
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
    }
}

fn announce(app: &App, info: &ServeInfo) -> anyhow::Result<()> {
    write_private(&ServeInfo::path(app), &serde_json::to_vec(info)?)
}

/// How often a waiting `fritter serve` tries the archive's lock again.
const CLAIM_EVERY: Duration = Duration::from_millis(200);

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
