//! The HTTP server: hyper's HTTP/1 connection builder driven by hand, because `axum::serve`
//! has no header-read timeout (a slowloris client could hold connections forever). Each
//! connection must send its request headers within the configured time; connections are
//! capped (more wait in the kernel's accept queue until one closes); each buffers at most
//! [`MAX_HEAD_BYTES`] of request head; shutdown stops accepting, lets requests in flight
//! finish (up to a few seconds) and returns.
//!
//! The header timeout also closes connections that send nothing at all, and keep-alive
//! connections idle between requests, so idle sockets cannot hold the connection cap. What
//! comes after the head (a slow body, a slow handler) is under the router's request timeout.

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

/// How long shutdown waits for open connections (streams never end on their own).
const DRAIN: Duration = Duration::from_secs(3);

/// Largest request head (request line and headers) a connection may buffer. hyper's default
/// is about 400 KiB, which times the connection cap is a lot of memory for headers; every
/// request of the API fits in far less. A longer head is refused by hyper (431 or 414).
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// The connection limits of [`serve`].
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Time a connection has to send its request head.
    pub header_timeout: Duration,
    /// Open connections at most; more wait in the accept queue.
    pub max_connections: usize,
    /// Open connections from one IP address at most; more are closed at once, so one client
    /// cannot hold every slot (idle ones only go at the header timeout).
    pub max_per_client: usize,
}

impl Limits {
    /// The limits an [`ApiConfig`](crate::api::ApiConfig) sets.
    pub fn of(config: &crate::api::ApiConfig) -> Limits {
        Limits {
            header_timeout: Duration::from_millis(config.header_timeout_ms),
            max_connections: config.max_connections,
            max_per_client: config.max_connections_per_client,
        }
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

/// Serves `app` on `listener` until `shutdown` completes.
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
        let Some(counted) = per_client.admit(addr.ip(), limits.max_per_client.max(1)) else {
            tracing::debug!(client = %addr, "closing: too many connections from this address");
            continue;
        };
        let svc = app
            .clone()
            .map_request(move |mut req: hyper::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo::<SocketAddr>(addr));
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
