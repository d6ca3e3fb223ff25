//! The HTTP API (axum, JSON): mentions, threads, trending tags, search, archives and their
//! followers, a resumable stream, crawl requests and the crawler's status, described by the
//! OpenAPI document at `/openapi.json`.
//!
//! Every hit names its archive, entry seq and entry hash; every answer carries `coverage` (how
//! many archives are known and fully indexed, the index cursor, when that was measured) so an
//! empty answer can be told from "not crawled". Parameters are parsed by hand: unknown or bad
//! ones are a 400 naming the parameter. Index work runs on blocking threads behind a semaphore
//! with a deadline. [`router`] returns a `Router` that other routers (pages, hosting) can merge.

//!
//! By concern: [`state`](AppState) (what handlers share, coverage), `params` (parsing and
//! refusing parameters), `handlers` (the endpoints), `stream` (server-sent events), `error`
//! (the JSON error shape), `ratelimit` (per-client token buckets), [`openapi`].

mod error;
mod handlers;
pub mod openapi;
mod params;
mod ratelimit;
mod state;
mod stream;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use fritter_common::http::{ClientAddr, IpBlock, Limits, TrustedProxies};
use serde::Deserialize;
use serde_json::Value;
use tower_http::catch_panic::CatchPanicLayer;

pub use error::ApiError;
pub(crate) use ratelimit::RateLimiter;
pub use state::{AppState, Coverage};

use handlers::{archive, crawl, followers, mentions, search_handler, status, thread, trending};
use stream::stream;

/// Limits of the API; the defaults suit a public service on a small machine.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Whole-request deadline (until the response head), in milliseconds.
    pub request_timeout_ms: u64,
    /// A connection must send its request headers within this, in milliseconds (slowloris).
    pub header_timeout_ms: u64,
    /// Largest request body, in bytes.
    pub body_limit: usize,
    /// Requests per second per client address, and the burst allowed above it.
    pub rate_per_sec: f64,
    pub burst: f64,
    /// `POST /v1/crawl` per minute per client address.
    pub crawl_per_minute: f64,
    /// Open connections at most; more wait in the accept queue.
    pub max_connections: usize,
    /// Open connections from one IP address at most; more are closed at once.
    pub max_connections_per_client: usize,
    /// Index queries running at once.
    pub max_concurrent_queries: usize,
    /// Open `/v1/stream` connections at most.
    pub max_streams: usize,
    /// Distinct authors a tag needs to trend.
    pub min_trend_authors: u64,
    /// Reverse proxies (IP addresses or CIDR blocks) whose `X-Forwarded-For` names the client.
    /// Requests through them are limited per client, not per proxy, and their connections are
    /// not held to `max_connections_per_client`. Everyone else's header is ignored.
    pub trusted_proxies: Vec<IpBlock>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            request_timeout_ms: 10_000,
            header_timeout_ms: 5_000,
            body_limit: 16 * 1024,
            rate_per_sec: 50.0,
            burst: 100.0,
            crawl_per_minute: 10.0,
            max_connections: 1024,
            max_connections_per_client: 64,
            max_concurrent_queries: 8,
            max_streams: 256,
            min_trend_authors: 2,
            trusted_proxies: Vec::new(),
        }
    }
}

impl ApiConfig {
    /// The connection limits of the server loop these settings ask for.
    pub fn limits(&self) -> Limits {
        Limits {
            header_timeout: Duration::from_millis(self.header_timeout_ms),
            max_connections: self.max_connections,
            max_per_client: self.max_connections_per_client,
            trusted_proxies: TrustedProxies::new(self.trusted_proxies.iter().copied()),
        }
    }
}

/// Largest page size.
pub const MAX_LIMIT: usize = 100;
/// Largest parameter value, in bytes (URLs, keys, tags and queries are all far shorter).
const MAX_PARAM_BYTES: usize = 1024;

/// The API's routes with every limit applied; merge other routers into it as needed.
pub fn router(state: AppState) -> Router {
    router_with(state, Router::new())
}

/// [`router`] plus `extra` routes (the hosting service), under the same limits: rate limit,
/// body limit, timeout, catch-panic. The only extra routes are the hosting service's, so
/// `/openapi.json` documents those when `extra` has any.
pub fn router_with(state: AppState, extra: Router<AppState>) -> Router {
    let config = state.inner.config.clone();
    let doc = Arc::new(openapi::document(extra.has_routes()));
    Router::new()
        .merge(extra)
        .route(
            "/openapi.json",
            get(move || async move { Json(Value::clone(&doc)) }),
        )
        .route("/v1/status", get(status))
        .route("/v1/mentions/{key}", get(mentions))
        .route("/v1/thread", get(thread))
        .route("/v1/trending", get(trending))
        .route("/v1/search", get(search_handler))
        .route("/v1/archives/{key}", get(archive))
        .route("/v1/archives/{key}/followers", get(followers))
        .route("/v1/stream", get(stream))
        .route("/v1/crawl", post(crawl))
        .merge(crate::pages::router())
        .fallback(|| async { ApiError::NotFound("no such endpoint: see /openapi.json".into()) })
        .layer(middleware::from_fn_with_state(state.clone(), rate_limit))
        .layer(DefaultBodyLimit::max(config.body_limit))
        .layer(middleware::from_fn_with_state(state.clone(), limits))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::Internal("the request failed unexpectedly".into()).into_response()
        }))
        .with_state(state)
}

/// The client a request is for, as the server loop resolved it (through trusted proxies);
/// "unknown" (`0.0.0.0`) for a router driven in-process by a test.
pub(crate) fn client_ip(req: &Request) -> IpAddr {
    ClientAddr::of(req.extensions())
}

async fn rate_limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let ip = client_ip(&req);
    if let Err(retry_after) = state.inner.limiter.check(ip) {
        return ApiError::RateLimited { retry_after }.into_response();
    }
    if req.method() == axum::http::Method::POST && req.uri().path() == "/v1/crawl" {
        if let Err(retry_after) = state.inner.crawl_limiter.check(ip) {
            return ApiError::RateLimited { retry_after }.into_response();
        }
    }
    next.run(req).await
}

/// The limits every request is under, answered in the API's JSON error shape: a declared
/// body over the limit is refused before it is read (413), the whole request (until the
/// response head; streams then run on) has a deadline (503 `timeout`), and axum's bare 405
/// becomes a JSON error that keeps its `Allow` header.
async fn limits(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let max = state.inner.config.body_limit;
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return ApiError::TooLarge(max).into_response();
    }
    let method = req.method().clone();
    let deadline = Duration::from_millis(state.inner.config.request_timeout_ms);
    let resp = match tokio::time::timeout(deadline, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => {
            tracing::debug!("request stopped after {deadline:?}");
            return ApiError::Timeout.into_response();
        }
    };
    if resp.status() == StatusCode::METHOD_NOT_ALLOWED
        && !resp
            .headers()
            .contains_key(axum::http::header::CONTENT_TYPE)
    {
        let allow = resp.headers().get(axum::http::header::ALLOW).cloned();
        let mut json = ApiError::MethodNotAllowed(method.to_string()).into_response();
        if let Some(allow) = allow {
            json.headers_mut().insert(axum::http::header::ALLOW, allow);
        }
        return json;
    }
    resp
}
