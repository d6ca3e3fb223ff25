//! The HTTP API (axum, JSON): mentions, threads, trending tags, search, archives and their
//! followers, a resumable stream, crawl requests and the crawler's status, described by the
//! OpenAPI document at `/openapi.json`.
//!
//! Every hit names its archive, entry seq and entry hash; every answer carries `coverage` (how
//! many archives are known and fully indexed, the index cursor, when that was measured) so an
//! empty answer can be told from "not crawled". Parameters are parsed by hand: unknown or bad
//! ones are a 400 naming the parameter. Index work runs on blocking threads behind a semaphore
//! with a deadline. [`router`] returns a `Router` that other routers (pages, hosting) can merge.

mod error;
pub mod openapi;
mod ratelimit;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::connect_info::ConnectInfo;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use fritter_common::crypto::PublicKey;
use fritter_common::model::ArchiveUrl;
use futures::Stream;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::Semaphore;
use tower_http::catch_panic::CatchPanicLayer;

pub use error::ApiError;
pub(crate) use ratelimit::RateLimiter;

use crate::crawl::Crawler;
use crate::index::query;
use crate::index::search::{self, Filter, Sort};

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
        }
    }
}

/// Largest page size.
pub const MAX_LIMIT: usize = 100;
/// Largest parameter value, in bytes (URLs, keys, tags and queries are all far shorter).
const MAX_PARAM_BYTES: usize = 1024;

/// What the handlers share. Clone is cheap.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    crawler: Arc<Crawler>,
    config: ApiConfig,
    limiter: RateLimiter,
    crawl_limiter: RateLimiter,
    queries: Semaphore,
    streams: Arc<Semaphore>,
    coverage: parking_lot::RwLock<(Instant, Coverage)>,
    /// Trending answers of the whole index by (window, limit), with the index generation and
    /// time they were computed at: reused while the index has not changed, for up to a second
    /// (the window moves with the clock). At most 3 windows × 100 limits.
    trends: parking_lot::Mutex<HashMap<(String, usize), CachedTrends>>,
}

/// A trending answer with the index generation and time it was computed at.
type CachedTrends = (u64, Instant, Value);

/// How much of the network the index covers, measured at most once a second.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Coverage {
    /// Archives the crawler holds.
    pub archives: usize,
    /// Archives indexed up to the length their log knows.
    pub synced: usize,
    /// Archives with entries known but not yet indexed (or not yet replicated).
    pub lagging: usize,
    /// Archives whose log could not be read or opened.
    pub errors: usize,
    /// The stream cursor: documents up to this ingest sequence are searchable.
    pub index_cursor: u64,
    /// When this was measured (RFC 3339).
    pub as_of: String,
}

impl AppState {
    pub fn new(crawler: Arc<Crawler>, config: ApiConfig) -> AppState {
        AppState {
            inner: Arc::new(Inner {
                crawler,
                limiter: RateLimiter::new(config.rate_per_sec, config.burst),
                crawl_limiter: RateLimiter::new(
                    config.crawl_per_minute / 60.0,
                    config.crawl_per_minute.max(1.0),
                ),
                queries: Semaphore::new(config.max_concurrent_queries.max(1)),
                streams: Arc::new(Semaphore::new(config.max_streams)),
                coverage: parking_lot::RwLock::new((
                    Instant::now() - Duration::from_secs(3600),
                    Coverage::default(),
                )),
                trends: parking_lot::Mutex::new(HashMap::new()),
                config,
            }),
        }
    }

    pub fn crawler(&self) -> &Arc<Crawler> {
        &self.inner.crawler
    }

    pub fn config(&self) -> &ApiConfig {
        &self.inner.config
    }

    /// Runs index work on a blocking thread, bounded in concurrency and time.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&crate::index::Index) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let deadline = Duration::from_millis(self.inner.config.request_timeout_ms);
        let _permit = tokio::time::timeout(deadline, self.inner.queries.acquire())
            .await
            .map_err(|_| ApiError::Busy)?
            .map_err(|_| ApiError::Busy)?;
        let index = self.inner.crawler.ingest().index().clone();
        let task = tokio::task::spawn_blocking(move || f(&index));
        match tokio::time::timeout(deadline, task).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => Err(ApiError::Internal(format!("query task failed: {e}"))),
            Err(_) => Err(ApiError::Timeout),
        }
    }

    /// The coverage figures, refreshed when older than a second.
    pub fn coverage(&self) -> Coverage {
        {
            let c = self.inner.coverage.read();
            if c.0.elapsed() < Duration::from_secs(1) {
                return c.1.clone();
            }
        }
        let cov = self.measure().0;
        *self.inner.coverage.write() = (Instant::now(), cov.clone());
        cov
    }

    /// Coverage plus the lagging and failing archives (a few of each).
    fn measure(&self) -> (Coverage, Vec<Value>, Vec<Value>) {
        let crawler = &self.inner.crawler;
        let ingest = crawler.ingest();
        let sources = ingest.sources();
        let errors = ingest.errors();
        let failures = crawler.failures();
        let mut lagging_list = Vec::new();
        let (synced, lagging, cursor) = ingest.committed(|p| {
            let mut synced = 0;
            let mut lagging = 0;
            for (key, log) in &sources {
                let info = log.info();
                let cp = p.archives.get(&key.to_hex());
                let done = cp.map_or(0, |c| if c.fork == info.fork { c.next } else { 0 });
                if done >= info.length {
                    synced += 1;
                } else {
                    lagging += 1;
                    if lagging_list.len() < 10 {
                        lagging_list.push(json!({"archive": key.to_hex(), "indexed": done,
                            "stored": info.contiguous, "length": info.length}));
                    }
                }
            }
            (synced, lagging, p.next_iseq)
        });
        let error_list: Vec<Value> = errors
            .iter()
            .chain(failures.iter())
            .take(10)
            .map(|(k, e)| json!({"archive": k.to_hex(), "error": e}))
            .collect();
        (
            Coverage {
                archives: sources.len(),
                synced,
                lagging,
                errors: errors.len() + failures.len(),
                index_cursor: cursor,
                as_of: now_rfc3339(),
            },
            lagging_list,
            error_list,
        )
    }
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

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

/// The client address: the peer of the connection (set by the server), else "unknown" (tests).
fn client_ip(req: &Request) -> IpAddr {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip())
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

// ---- parameters ----

/// Most distinct query parameters kept (no endpoint takes more than 12).
const MAX_PARAMS: usize = 32;

/// A request's query parameters. A name given twice is remembered, not silently overwritten,
/// so [`params`] can refuse it by name.
#[derive(Default)]
struct Params {
    map: HashMap<String, String>,
    repeated: Option<String>,
    too_many: bool,
}

impl std::ops::Deref for Params {
    type Target = HashMap<String, String>;
    fn deref(&self) -> &Self::Target {
        &self.map
    }
}

impl<'de> Deserialize<'de> for Params {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Params;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("query parameters")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Params, A::Error> {
                let mut p = Params::default();
                while let Some((k, v)) = a.next_entry::<String, String>()? {
                    if p.map.contains_key(&k) {
                        p.repeated.get_or_insert(k);
                    } else if p.map.len() >= MAX_PARAMS {
                        p.too_many = true;
                    } else {
                        p.map.insert(k, v);
                    }
                }
                Ok(p)
            }
        }
        d.deserialize_map(Visitor)
    }
}

fn params(q: Result<Query<Params>, QueryRejection>, allowed: &[&str]) -> Result<Params, ApiError> {
    let Query(map) = q.map_err(|e| ApiError::param("query", e.body_text()))?;
    if map.too_many {
        return Err(ApiError::param(
            "query",
            format!(
                "too many parameters: this endpoint takes {}",
                allowed.join(", ")
            ),
        ));
    }
    if let Some(k) = &map.repeated {
        return Err(ApiError::param(k, "given more than once: give it once"));
    }
    for (k, v) in map.iter() {
        if !allowed.contains(&k.as_str()) {
            return Err(ApiError::param(
                k,
                if allowed.is_empty() {
                    "unknown parameter; this endpoint takes none".to_owned()
                } else {
                    format!(
                        "unknown parameter; this endpoint takes {}",
                        allowed.join(", ")
                    )
                },
            ));
        }
        if v.len() > MAX_PARAM_BYTES {
            return Err(ApiError::param(
                k,
                format!("too long: at most {MAX_PARAM_BYTES} bytes"),
            ));
        }
    }
    Ok(map)
}

/// The `{key}` of a path; a path that does not decode (invalid UTF-8) is a bad `key`.
fn path_key(p: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(key) = p.map_err(|e| ApiError::param("key", e.body_text()))?;
    if key.len() > MAX_PARAM_BYTES {
        return Err(ApiError::param(
            "key",
            format!("too long: at most {MAX_PARAM_BYTES} bytes"),
        ));
    }
    Ok(key)
}

fn archive_key(name: &str, value: &str) -> Result<String, ApiError> {
    let url = ArchiveUrl::parse_lenient(value)
        .map_err(|e| ApiError::param(name, format!("not an archive key or URL: {e}")))?;
    Ok(url.key().to_string())
}

fn opt_key(p: &Params, name: &str) -> Result<Option<String>, ApiError> {
    p.get(name).map(|v| archive_key(name, v)).transpose()
}

fn limit(p: &Params, default: usize) -> Result<usize, ApiError> {
    match p.get("limit") {
        None => Ok(default),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            _ => Err(ApiError::param(
                "limit",
                format!("a whole number from 1 to {MAX_LIMIT}"),
            )),
        },
    }
}

/// A time: RFC 3339 or Unix milliseconds.
fn time_ms(p: &Params, name: &str) -> Result<Option<i64>, ApiError> {
    let Some(v) = p.get(name) else {
        return Ok(None);
    };
    if let Ok(ms) = v.parse::<i64>() {
        if (0..=253_402_300_799_999).contains(&ms) {
            return Ok(Some(ms));
        }
    }
    time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339)
        .map(|t| Some((t.unix_timestamp_nanos() / 1_000_000) as i64))
        .map_err(|_| {
            ApiError::param(
                name,
                "an RFC 3339 time (2024-05-01T12:00:00Z) or Unix milliseconds",
            )
        })
}

fn tag(p: &Params) -> Result<Option<String>, ApiError> {
    let Some(t) = p.get("tag") else {
        return Ok(None);
    };
    let t = t.strip_prefix('#').unwrap_or(t);
    let tags = fritter_common::model::extract_tags(&format!("#{t}"));
    match tags.as_slice() {
        [one] if one.chars().count() == t.chars().count() => Ok(Some(one.clone())),
        _ => Err(ApiError::param(
            "tag",
            "a tag is 1 to 64 letters, digits and _, with at least one letter",
        )),
    }
}

/// `scope` and `viewer`: the archives a view is limited to, if any.
async fn scope(state: &AppState, p: &Params) -> Result<(Option<Vec<String>>, Value), ApiError> {
    let scope = p.get("scope").map_or("all", String::as_str);
    // A viewer is checked even where the scope does not use it, so a typo is not ignored.
    let viewer = opt_key(p, "viewer")?;
    let hops = match scope {
        "all" => return Ok((None, json!({"scope": "all"}))),
        "follows" => 1,
        "hops2" => 2,
        _ => return Err(ApiError::param("scope", "one of all, follows, hops2")),
    };
    let viewer = viewer.ok_or_else(|| {
        ApiError::param("viewer", "scope=follows and scope=hops2 need a viewer key")
    })?;
    let v = viewer.clone();
    let set = state
        .blocking(move |idx| Ok(search::scope(idx, &v, hops)?))
        .await?;
    let crawler = state.crawler().clone();
    let crawled = set
        .iter()
        .filter(|k| {
            PublicKey::from_hex(k)
                .map(|k| crawler.holds(&k))
                .unwrap_or(false)
        })
        .count();
    let viewer_known = PublicKey::from_hex(&viewer).is_ok_and(|k| crawler.holds(&k));
    let info = json!({"scope": scope, "viewer": viewer, "viewerCrawled": viewer_known,
                      "archivesInScope": set.len(), "crawledInScope": crawled});
    Ok((Some(set), info))
}

fn answer(state: &AppState, scope: Value, body: Value) -> Json<Value> {
    let mut body = body;
    body["coverage"] = coverage(state, scope);
    Json(body)
}

/// The coverage an answer states: the index's, plus the scope it was computed in.
fn coverage(state: &AppState, scope: Value) -> Value {
    let mut cov = serde_json::to_value(state.coverage()).unwrap_or(Value::Null);
    if let (Value::Object(c), Value::Object(s)) = (&mut cov, scope) {
        c.extend(s);
    }
    cov
}

/// [`answer`] for a page of hits: the stored hits go out as stored, without being parsed and
/// written again (most of the work of a mentions or search answer otherwise).
fn answer_page(
    state: &AppState,
    scope: Value,
    archive: Option<String>,
    page: search::Page,
) -> Response {
    #[derive(serde::Serialize)]
    struct Body {
        #[serde(skip_serializing_if = "Option::is_none")]
        archive: Option<String>,
        hits: Vec<Box<serde_json::value::RawValue>>,
        cursor: Option<String>,
        coverage: Value,
    }
    let coverage = coverage(state, scope);
    let size = page.hits.iter().map(|h| h.get().len() + 1).sum::<usize>() + 1024;
    let body = Body {
        archive,
        hits: page.hits,
        cursor: page.cursor,
        coverage,
    };
    // Sized once: a page is tens of kilobytes, and growing a buffer to that copies it often.
    let mut out = Vec::with_capacity(size);
    match serde_json::to_writer(&mut out, &body) {
        Ok(()) => (
            [(
                axum::http::header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("application/json"),
            )],
            out,
        )
            .into_response(),
        Err(e) => ApiError::Internal(e.to_string()).into_response(),
    }
}

// ---- handlers ----

async fn status(
    State(state): State<AppState>,
    q: Result<Query<Params>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    params(q, &[])?;
    let s = state.clone();
    let (cov, lagging, errors) = tokio::task::spawn_blocking(move || s.measure())
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let crawler = state.crawler();
    let peers = crawler.node().map(
        |n| json!({"connected": n.peers().len(), "listen": n.local_addr().map(|a| a.to_string())}),
    );
    let docs = state.blocking(|idx| Ok(search::doc_count(idx))).await?;
    Ok(Json(json!({
        "archives": cov.archives,
        "synced": cov.synced,
        "lagging": cov.lagging,
        "errors": cov.errors,
        "laggingArchives": lagging,
        "errorArchives": errors,
        "index": {"cursor": cov.index_cursor, "documents": docs,
                   "statusesIndexedSinceStart": crawler.ingest().statuses_indexed(),
                   "schemaVersion": crate::index::SCHEMA_VERSION},
        "peers": peers,
        "asOf": cov.as_of,
    })))
}

async fn mentions(
    State(state): State<AppState>,
    key: Result<Path<String>, PathRejection>,
    q: Result<Query<Params>, QueryRejection>,
) -> Result<Response, ApiError> {
    let p = params(q, &["limit", "cursor", "scope", "viewer"])?;
    let key = archive_key("key", &path_key(key)?)?;
    let limit = limit(&p, 20)?;
    let cursor = cursor_latest(&p)?;
    let (authors, info) = scope(&state, &p).await?;
    let filter = Filter {
        mention: Some(key.clone()),
        authors,
        ..Filter::default()
    };
    let page = state
        .blocking(move |idx| {
            Ok(search::statuses(
                idx,
                &filter,
                Sort::Latest,
                limit,
                cursor.as_deref(),
            )?)
        })
        .await?;
    Ok(answer_page(&state, info, Some(key), page))
}

fn cursor_latest(p: &Params) -> Result<Option<String>, ApiError> {
    match p.get("cursor") {
        None => Ok(None),
        Some(c) if search::parse_cursor(c).is_some() => Ok(Some(c.clone())),
        Some(_) => Err(ApiError::param(
            "cursor",
            "pass back the cursor of the previous page unchanged",
        )),
    }
}

async fn thread(
    State(state): State<AppState>,
    q: Result<Query<Params>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let p = params(q, &["uri", "scope", "viewer"])?;
    let uri = p
        .get("uri")
        .ok_or_else(|| ApiError::param("uri", "required: hyper://<key>/statuses/<id>.json"))?;
    let url = ArchiveUrl::parse_lenient(uri)
        .ok()
        .filter(|u| u.status_id().is_some())
        .ok_or_else(|| {
            ApiError::param("uri", "not a status URL, hyper://<key>/statuses/<id>.json")
        })?;
    let uri = url.to_string();
    let (authors, info) = scope(&state, &p).await?;
    let body = state
        .blocking(move |idx| Ok(search::thread(idx, &uri, authors.as_deref())?))
        .await?;
    Ok(answer(&state, info, body))
}

async fn trending(
    State(state): State<AppState>,
    q: Result<Query<Params>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let p = params(q, &["window", "limit", "scope", "viewer"])?;
    let window = p.get("window").map_or("24h", String::as_str);
    // The window and its chart buckets: 12 of 5 minutes, 24 of an hour, 28 of 6 hours.
    let (span, width): (i64, i64) = match window {
        "1h" => (3_600_000, 300_000),
        "24h" => (86_400_000, 3_600_000),
        "7d" => (7 * 86_400_000, 6 * 3_600_000),
        _ => return Err(ApiError::param("window", "one of 1h, 24h, 7d")),
    };
    let limit = limit(&p, 10)?;
    let (authors, info) = scope(&state, &p).await?;
    let generation = state
        .crawler()
        .ingest()
        .index()
        .reader
        .searcher()
        .generation()
        .generation_id();
    let cache_key = (window.to_owned(), limit);
    if authors.is_none() {
        let cached = state.inner.trends.lock().get(&cache_key).cloned();
        if let Some((g, at, body)) = cached {
            if g == generation && at.elapsed() < Duration::from_secs(1) {
                return Ok(answer(&state, info, body));
            }
        }
    }
    let now = now_ms();
    // Statuses dated a little in the future count (clock skew); further out they do not.
    let (from, to) = (now - span, now + 300_000);
    let min = state.config().min_trend_authors;
    let buckets = search::Buckets {
        start_ms: from,
        width_ms: width,
        count: (span / width) as usize,
    };
    let q = search::TrendQuery {
        from,
        to,
        authors,
        min_authors: min,
        limit,
        samples: 3,
        buckets,
    };
    let whole_index = q.authors.is_none();
    let trends = state
        .blocking(move |idx| Ok(search::trending(idx, q)?))
        .await?;
    let body = json!({"window": window, "minAuthors": min, "buckets": buckets, "trends": trends});
    if whole_index {
        state
            .inner
            .trends
            .lock()
            .insert(cache_key, (generation, Instant::now(), body.clone()));
    }
    Ok(answer(&state, info, body))
}

async fn search_handler(
    State(state): State<AppState>,
    q: Result<Query<Params>, QueryRejection>,
) -> Result<Response, ApiError> {
    let p = params(
        q,
        &[
            "q", "author", "tag", "mention", "lang", "since", "until", "sort", "limit", "cursor",
            "scope", "viewer",
        ],
    )?;
    let text = query::parse(p.get("q").map_or("", String::as_str))
        .map_err(|e| ApiError::param("q", e.0))?;
    let sort = match p.get("sort").map(String::as_str) {
        None | Some("latest") => Sort::Latest,
        Some("top") => Sort::Top,
        Some(_) => return Err(ApiError::param("sort", "latest or top")),
    };
    let cursor = match sort {
        Sort::Latest => cursor_latest(&p)?,
        Sort::Top => match p.get("cursor") {
            None => None,
            Some(c) if c.parse::<usize>().is_ok_and(|n| n <= search::MAX_OFFSET) => Some(c.clone()),
            Some(_) => {
                return Err(ApiError::param(
                    "cursor",
                    "pass back the cursor of the previous page unchanged",
                ))
            }
        },
    };
    let lang = match p.get("lang") {
        Some(l)
            if !l.is_empty()
                && l.len() <= 35
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') =>
        {
            Some(l.to_ascii_lowercase())
        }
        Some(_) => {
            return Err(ApiError::param(
                "lang",
                "a language tag such as en or pt-BR",
            ))
        }
        None => None,
    };
    // An end not after the start is an empty range: it matches nothing (no error, so a
    // client sliding a window never trips over an empty one).
    let since = time_ms(&p, "since")?;
    let until = time_ms(&p, "until")?;
    let (mut authors, info) = scope(&state, &p).await?;
    if let Some(a) = opt_key(&p, "author")? {
        authors = Some(match authors {
            Some(set) if !set.contains(&a) => Vec::new(),
            _ => vec![a],
        });
    }
    let filter = Filter {
        text,
        authors,
        tag: tag(&p)?,
        mention: opt_key(&p, "mention")?,
        lang,
        since,
        until,
        ..Filter::default()
    };
    let limit = limit(&p, 20)?;
    let page = state
        .blocking(move |idx| {
            Ok(search::statuses(
                idx,
                &filter,
                sort,
                limit,
                cursor.as_deref(),
            )?)
        })
        .await?;
    Ok(answer_page(&state, info, None, page))
}

async fn archive(
    State(state): State<AppState>,
    key: Result<Path<String>, PathRejection>,
    q: Result<Query<Params>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    params(q, &[])?;
    let hex = archive_key("key", &path_key(key)?)?;
    let pk = PublicKey::from_hex(&hex).map_err(|e| ApiError::param("key", e.to_string()))?;
    let crawler = state.crawler().clone();
    let log = crawler.ingest().source(&pk);
    let checkpoint = crawler.ingest().checkpoint(&pk);
    let h = hex.clone();
    let (profile, follows, statuses, followers) = state
        .blocking(move |idx| {
            Ok((
                search::profile_of(idx, &h)?,
                search::follows_of(idx, &h)?,
                search::status_count(idx, &h)?,
                search::followers(idx, &h, 1, 0)?.1,
            ))
        })
        .await?;
    let Some(log) = log else {
        return Err(ApiError::NotFound(format!(
            "archive {hex} is not crawled: POST /v1/crawl {{\"url\": \"hyper://{hex}/\"}} to add it"
        )));
    };
    let info = log.info();
    let following = follows
        .as_ref()
        .and_then(|f| f.get("follows"))
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    Ok(answer(
        &state,
        json!({"scope": "all"}),
        json!({
            "archive": hex,
            "profile": profile,
            "statuses": statuses,
            "following": following,
            "followers": followers,
            "log": {"length": info.length, "stored": info.contiguous, "fork": info.fork},
            "checkpoint": checkpoint,
            "error": crawler.ingest().errors().get(&pk),
        }),
    ))
}

async fn followers(
    State(state): State<AppState>,
    key: Result<Path<String>, PathRejection>,
    q: Result<Query<Params>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let p = params(q, &["limit", "cursor"])?;
    let hex = archive_key("key", &path_key(key)?)?;
    let limit = limit(&p, 50)?;
    let offset = match p.get("cursor") {
        None => 0,
        Some(c) => c
            .parse::<usize>()
            .ok()
            .filter(|n| *n <= search::MAX_SCOPE)
            .ok_or_else(|| {
                ApiError::param("cursor", "pass back the cursor of the previous page")
            })?,
    };
    let h = hex.clone();
    let (list, total) = state
        .blocking(move |idx| Ok(search::followers(idx, &h, limit, offset)?))
        .await?;
    let next = (offset + list.len() < total && !list.is_empty())
        .then(|| (offset + list.len()).to_string());
    Ok(answer(
        &state,
        json!({"scope": "all"}),
        json!({"archive": hex, "total": total, "followers": list, "cursor": next}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CrawlRequest {
    url: String,
}

async fn crawl(
    State(state): State<AppState>,
    body: Result<Json<CrawlRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(state.config().body_limit)
        } else {
            ApiError::param("body", e.body_text())
        }
    })?;
    if req.url.len() > MAX_PARAM_BYTES {
        return Err(ApiError::param("url", "too long"));
    }
    let url = ArchiveUrl::parse_lenient(&req.url)
        .map_err(|e| ApiError::param("url", format!("not an archive URL: {e}")))?;
    let key: PublicKey = url.key().into();
    let crawler = state.crawler().clone();
    let new = crawler.learn(key).map_err(|e| match e {
        crate::crawl::CrawlError::Full(_) => ApiError::Busy,
        other => ApiError::Internal(other.to_string()),
    })?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"archive": key.to_hex(), "new": new})),
    )
        .into_response())
}

/// `GET /v1/stream`: server-sent events, one `status` event per status indexed (new or
/// rewritten), in ingest order; the event id is the cursor. A client reconnecting with
/// `Last-Event-ID` (or `?cursor=`) gets everything indexed after it.
async fn stream(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<Params>, QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let p = params(q, &["tag", "mention", "author", "cursor"])?;
    let last = headers
        .get("last-event-id")
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| {
                    ApiError::param("Last-Event-ID", "the id of the last event received")
                })
        })
        .transpose()?;
    let cursor = match p.get("cursor") {
        None => None,
        Some(c) => Some(
            c.parse::<u64>()
                .map_err(|_| ApiError::param("cursor", "the id of the last event received"))?,
        ),
    };
    let filter = Filter {
        tag: tag(&p)?,
        mention: opt_key(&p, "mention")?,
        authors: opt_key(&p, "author")?.map(|a| vec![a]),
        ..Filter::default()
    };
    let permit = state
        .inner
        .streams
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError::Busy)?;
    let ingest = state.crawler().ingest().clone();
    let commits = ingest.subscribe_commits();
    let after = last.or(cursor).or_else(|| commits.borrow().checked_sub(1));
    struct St {
        state: AppState,
        filter: Filter,
        after: Option<u64>,
        buf: std::collections::VecDeque<(u64, Value)>,
        commits: tokio::sync::watch::Receiver<u64>,
        _permit: tokio::sync::OwnedSemaphorePermit,
    }
    let st = St {
        state,
        filter,
        after,
        buf: Default::default(),
        commits,
        _permit: permit,
    };
    let events = futures::stream::unfold(st, |mut st| async move {
        loop {
            if let Some((i, v)) = st.buf.pop_front() {
                let kind = if v.get("deleted").is_some() {
                    "delete"
                } else {
                    "status"
                };
                let ev = Event::default()
                    .id(i.to_string())
                    .event(kind)
                    .data(v.to_string());
                return Some((Ok(ev), st));
            }
            st.commits.borrow_and_update();
            let (filter, after) = (st.filter.clone(), st.after);
            match st
                .state
                .blocking(move |idx| Ok(search::since_iseq(idx, &filter, after, 100)?))
                .await
            {
                Ok(batch) if !batch.is_empty() => {
                    st.after = batch.last().map(|b| b.0);
                    st.buf.extend(batch);
                    continue;
                }
                Ok(_) => {}
                Err(e) => tracing::debug!("stream query: {e}"),
            }
            if st.commits.changed().await.is_err() {
                return None;
            }
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}
