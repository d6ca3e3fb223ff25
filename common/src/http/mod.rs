//! The HTTP server loop both binaries run (the crawler's API, the app's `fritter serve`):
//! hyper's HTTP/1 connection builder driven by hand, because `axum::serve` has no header-read
//! timeout (200 slowloris connections stayed open a minute) and no connection cap (20,100 idle
//! connections used every file descriptor).
//!
//! Bounds, all in [`Limits`]:
//! - each connection must send its request head within `header_timeout`; this also closes
//!   connections that send nothing at all, and keep-alive connections idle between requests, so
//!   idle sockets cannot hold the connection cap. What comes after the head (a slow body, a slow
//!   handler) is the router's business (its request timeout);
//! - at most `max_connections` are open (more wait in the kernel's accept queue until one
//!   closes), and at most `max_per_client` from one address (more are closed at once), except
//!   from `trusted_proxies`, which carry many clients;
//! - each buffers at most [`MAX_HEAD_BYTES`] of request head.
//!
//! Every request carries the connection's peer as `ConnectInfo<SocketAddr>` and the client it
//! is for as [`ClientAddr`] (the same address, unless the peer is a trusted proxy: see
//! [`TrustedProxies::client`]). Per-client limits inside the router must use [`ClientAddr`].
//!
//! Shutdown stops accepting, lets requests in flight finish (up to [`DRAIN`]) and returns.

mod proxy;

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::connect_info::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

pub use proxy::{BadProxy, IpBlock, TrustedProxies};

/// How long shutdown waits for open connections (streams never end on their own).
pub const DRAIN: Duration = Duration::from_secs(3);

/// Largest request head (request line and headers) a connection may buffer. hyper's default
/// is about 400 KiB, which times the connection cap is a lot of memory for headers; every
/// request of either API fits in far less. A longer head is refused by hyper (431 or 414).
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// The connection limits of [`serve`].
///
/// The [`Default`] suits a personal app on 127.0.0.1 (`fritter serve`): every client (the
/// browser, the CLI) shares the loopback address, so the per-address cap is the whole cap, and
/// the cap stays far below the descriptor limit so replication keeps its sockets. A public
/// service sets a per-address cap well below the whole (the crawler's `[api]` settings).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Time a connection has to send its request head.
    pub header_timeout: Duration,
    /// Open connections at most; more wait in the accept queue.
    pub max_connections: usize,
    /// Open connections from one IP address at most; more are closed at once, so one client
    /// cannot hold every slot (idle ones only go at the header timeout). Trusted proxies are
    /// not held to it.
    pub max_per_client: usize,
    /// Reverse proxies whose `X-Forwarded-For` names the client; none by default.
    pub trusted_proxies: TrustedProxies,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_timeout: Duration::from_secs(5),
            max_connections: 256,
            max_per_client: 256,
            trusted_proxies: TrustedProxies::default(),
        }
    }
}

/// The address a request is for: the connection's peer, or the client a trusted proxy named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl ClientAddr {
    /// The client of a request served by [`serve`]; `0.0.0.0` for one that did not come
    /// through it (a router driven in-process by a test).
    pub fn of(extensions: &axum::http::Extensions) -> IpAddr {
        extensions
            .get::<ClientAddr>()
            .map(|c| c.0)
            .or_else(|| {
                extensions
                    .get::<ConnectInfo<SocketAddr>>()
                    .map(|c| c.0.ip())
            })
            .unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }
}

/// Open connections per client address.
#[derive(Default)]
struct PerClient(parking_lot::Mutex<HashMap<IpAddr, usize>>);

/// One connection counted in [`PerClient`]; uncounted when dropped.
struct Counted(Arc<PerClient>, IpAddr);

impl PerClient {
    fn admit(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<Counted> {
        let mut open = self.0.lock();
        let n = open.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Counted(self.clone(), ip))
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        let mut open = (self.0).0.lock();
        if let Some(n) = open.get_mut(&self.1) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.1);
            }
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then drains (see the module docs).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let per_client = Arc::new(PerClient::default());
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = &mut shutdown => break,
        };
        let (stream, addr) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let proxy = limits.trusted_proxies.trusts(addr.ip());
        let counted = if proxy {
            None
        } else {
            match per_client.admit(addr.ip(), limits.max_per_client.max(1)) {
                Some(c) => Some(c),
                None => {
                    tracing::debug!(client = %addr, "closing: too many connections from this address");
                    continue;
                }
            }
        };
        let trusted = limits.trusted_proxies.clone();
        let svc = app
            .clone()
            .map_request(move |mut req: hyper::Request<Incoming>| {
                let client = if proxy {
                    trusted.client(addr.ip(), req.headers())
                } else {
                    addr.ip()
                };
                req.extensions_mut().insert(ConnectInfo::<SocketAddr>(addr));
                req.extensions_mut().insert(ClientAddr(client));
                req
            });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .max_buf_size(MAX_HEAD_BYTES)
            .keep_alive(true);
        let conn = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(svc));
        let conn = graceful.watch(conn);
        let span = tracing::debug_span!("http", client = %addr);
        tokio::spawn(tracing::Instrument::instrument(
            async move {
                if let Err(e) = conn.await {
                    tracing::debug!("connection closed: {e}");
                }
                drop(counted);
                drop(permit);
            },
            span,
        ));
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(DRAIN) => tracing::info!("closing connections still open after {DRAIN:?}"),
    }
}

/// Completes on ctrl-c or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!("cannot listen for ctrl-c: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
