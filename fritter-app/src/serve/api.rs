//! The HTTP side of `fritter serve`: the web app, the JSON API (everything the app does), and
//! server-sent events for live updates.
//!
//! Protection against other web pages in the same browser:
//! - every request must carry a `Host` of this server (127.0.0.1 / localhost and its port), so a
//!   DNS-rebinding page cannot read the API under its own name;
//! - every write is a `POST` of JSON that carries the per-install token in `X-Fritter-Token`
//!   (only same-origin pages can read it from the page shell) and, when the browser sends them,
//!   an `Origin` of this server and `Sec-Fetch-Site: same-origin`; a custom header and a JSON
//!   body also force a CORS preflight, which this server never approves;
//! - the Content Security Policy forbids inline and foreign scripts, and the app shows status
//!   text with `textContent` only.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use fritter_common::crypto::PublicKey;
use fritter_common::model::{ArchiveUrl, File, Timestamp};
use futures::{Stream, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio_stream::wrappers::BroadcastStream;

use super::assets;
use super::error::{ApiError, ApiResult, Body, Params};
use super::node::{Event, Live, Node};
use crate::compose::Parent;
use crate::index::{status_key, Cursor};
use crate::output::Report;
use crate::views::{Author, Item, NotificationShown, Views};
use crate::{follows, host, identity, publish};

/// Largest request body: a status is at most 4000 bytes of text.
pub(crate) const MAX_BODY: usize = 64 * 1024;

/// The header that carries the write token.
pub const TOKEN_HEADER: &str = "x-fritter-token";

#[derive(Clone)]
struct AppState {
    node: Arc<Node>,
    stop: watch::Receiver<bool>,
}

/// The whole app: pages, API, events. `stop` ends open event streams at shutdown.
pub fn router(node: Arc<Node>, stop: watch::Receiver<bool>) -> Router {
    let state = AppState {
        node: node.clone(),
        stop,
    };
    let writes = Router::new()
        .route("/api/identity", post(create_identity))
        .route("/api/post", post(post_status))
        .route("/api/reply", post(reply))
        .route("/api/like", post(like))
        .route("/api/unlike", post(unlike))
        .route("/api/delete", post(delete))
        .route("/api/follow", post(follow))
        .route("/api/unfollow", post(unfollow))
        .route("/api/profile", post(edit_profile))
        .route("/api/notifications/read", post(mark_read))
        .route("/api/file", post(put_file))
        .route("/api/export", post(export))
        .route_layer(middleware::from_fn_with_state(
            node.clone(),
            super::idempotent::writes,
        ))
        .route_layer(middleware::from_fn_with_state(node.clone(), guard_write));
    Router::new()
        .route("/", get(page))
        .route("/app.js", get(script))
        .route("/style.css", get(style))
        .route("/icon.svg", get(icon))
        .route("/api/me", get(me))
        .route("/api/feed", get(feed))
        .route("/api/thread", get(thread))
        .route("/api/profile", get(profile))
        .route("/api/notifications", get(notifications))
        .route("/api/suggestions", get(suggestions))
        .route("/api/events", get(events))
        .merge(writes)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(node, guard_host))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn(super::error::json_errors))
        // Failures are logged where they happen (`ApiError`); 4xx/5xx answers are routine here.
        .layer(
            tower_http::trace::TraceLayer::new_for_http().on_failure(
                tower_http::trace::DefaultOnFailure::new().level(tracing::Level::DEBUG),
            ),
        )
        .with_state(state)
}

/// Runs blocking work (log reads and writes) off the async threads, on the live node.
async fn with_live<T: Send + 'static>(
    node: &Arc<Node>,
    f: impl FnOnce(&Node, &Live) -> anyhow::Result<T> + Send + 'static,
) -> ApiResult<T> {
    let live = node.live().ok_or_else(|| ApiError::not_live(node))?;
    let node = node.clone();
    let data_dir = node.app.store.root().to_owned();
    tokio::task::spawn_blocking(move || f(&node, &live))
        .await
        .map_err(|e| ApiError::from(anyhow::anyhow!("task failed: {e}")))?
        .map_err(|err| ApiError::failure(err, Some(&data_dir)))
}

/// A write's answer: its report as JSON, as text and its warnings (what the CLI prints).
fn done<R: Report>(report: &R) -> anyhow::Result<Json<Value>> {
    Ok(Json(crate::remote::answer_of(report)?))
}

// ---- guards ----

async fn guard_host(State(node): State<Arc<Node>>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if !node.hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            format!("unexpected Host header; open {}", node.origins[0]),
        )
        .into_response();
    }
    let api = req.uri().path().starts_with("/api/");
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(assets::CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    if api {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

async fn guard_write(State(node): State<Arc<Node>>, req: Request, next: Next) -> Response {
    if let Err(why) = write_allowed(&node, req.method(), req.headers()) {
        tracing::warn!(path = %req.uri().path(), why, "write refused");
        return ApiError::new(StatusCode::FORBIDDEN, why).into_response();
    }
    next.run(req).await
}

/// Whether a request may write: POST, the token, and (when sent) this server's origin.
pub fn write_allowed(node: &Node, method: &Method, headers: &HeaderMap) -> Result<(), String> {
    if method != Method::POST {
        return Err("writes are POST requests".into());
    }
    let token = headers
        .get(TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !constant_time_eq(token.as_bytes(), node.token.as_bytes()) {
        return Err(format!(
            "missing or wrong {TOKEN_HEADER}; the app page carries it, the CLI reads it from serve.json"
        ));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        if !node.origins.iter().any(|o| o.eq_ignore_ascii_case(origin)) {
            return Err(format!("origin {origin} may not write here"));
        }
    }
    if let Some(site) = headers.get("sec-fetch-site") {
        if !matches!(site.to_str().unwrap_or(""), "same-origin" | "none") {
            return Err("cross-site writes are refused".into());
        }
    }
    Ok(())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

// ---- pages ----

async fn page(State(state): State<AppState>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        assets::index_html(&state.node.token),
    )
        .into_response()
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", assets::APP_JS)
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", assets::STYLE_CSS)
}

async fn icon() -> Response {
    asset("image/svg+xml", assets::ICON_SVG)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such page or endpoint")
}

async fn method_not_allowed(method: Method) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("method {method} is not allowed here: pages and reads are GET, writes are POST"),
    )
}

// ---- reads ----

async fn me(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let node = state.node.clone();
    let Some(live) = node.live() else {
        if node.starting() || node.failure().is_some() {
            return Ok(Json(
                json!({ "setup": false, "starting": true, "error": node.failure() }),
            ));
        }
        return Ok(Json(json!({ "setup": true })));
    };
    let read_up_to = node.read_up_to();
    let crawler = node.crawler.as_ref().map(|c| c.base().to_owned());
    let value = tokio::task::spawn_blocking(move || {
        let key = live.index.own();
        let profile = live.index.profile(&key).unwrap_or_default();
        let (skipped, _) = live.index.skipped(&key);
        json!({
            "setup": false,
            "url": format!("hyper://{}/", key.to_hex()),
            "key": key.to_hex(),
            "name": profile.name,
            "bio": profile.bio,
            "unread": live.index.unread(read_up_to),
            "indexing": live.indexing.load(std::sync::atomic::Ordering::SeqCst),
            "index": live.index.stats(),
            "following": live.index.follows_of(&key).map_or(0, |f| f.len()),
            "skipped": skipped,
            "crawler": crawler,
        })
    })
    .await
    .map_err(|e| ApiError::from(anyhow::anyhow!("task failed: {e}")))?;
    Ok(Json(value))
}

#[derive(Deserialize)]
struct PageQuery {
    cursor: Option<String>,
    limit: Option<usize>,
}

fn cursor(q: &Option<String>) -> ApiResult<Option<Cursor>> {
    match q.as_deref() {
        None | Some("") => Ok(None),
        Some(c) => Cursor::parse(c)
            .map(Some)
            .ok_or_else(|| ApiError::bad("malformed cursor; pass back the `next` of a page")),
    }
}

async fn feed(
    State(state): State<AppState>,
    Params(q): Params<PageQuery>,
) -> ApiResult<Json<Value>> {
    let cursor = cursor(&q.cursor)?;
    let limit = q.limit.unwrap_or(20);
    with_live(&state.node, move |_, live| {
        let page = Views::new(&live.index).feed(cursor, limit);
        let mut value = serde_json::to_value(page)?;
        value["indexing"] = live
            .indexing
            .load(std::sync::atomic::Ordering::SeqCst)
            .into();
        Ok(Json(value))
    })
    .await
}

#[derive(Deserialize)]
struct UrlQuery {
    url: String,
    cursor: Option<String>,
    limit: Option<usize>,
}

async fn thread(
    State(state): State<AppState>,
    Params(q): Params<UrlQuery>,
) -> ApiResult<Json<Value>> {
    let url: ArchiveUrl = q
        .url
        .trim()
        .parse()
        .map_err(|e| ApiError::bad(format!("{e}")))?;
    let focus = status_key(&url).ok_or_else(|| {
        ApiError::bad(format!(
            "{url} is not a status; expected hyper://<key>/statuses/<id>.json"
        ))
    })?;
    with_live(&state.node, move |node, live| {
        let views = Views::new(&live.index);
        let (root, nodes) = views.local_thread(focus);
        let mut root_url = ArchiveUrl::status(root.0.into(), root.1).to_string();
        let mut known: HashMap<String, (Option<String>, Option<Item>, bool)> = HashMap::new();
        for (sk, parent) in nodes {
            let item = live
                .index
                .find(&sk.0, sk.1)
                .and_then(|ix| views.item(ix, false));
            known.insert(
                ArchiveUrl::status(sk.0.into(), sk.1).to_string(),
                (
                    parent.map(|(k, id)| ArchiveUrl::status(k.into(), id).to_string()),
                    item,
                    false,
                ),
            );
        }
        let mut crawler_error = None;
        if let Some(crawler) = &node.crawler {
            match crawler.thread(&url) {
                Ok(found) => {
                    for c in found {
                        let u = ArchiveUrl::status(c.key.into(), c.id).to_string();
                        if known.get(&u).is_some_and(|(_, item, _)| item.is_some()) {
                            continue;
                        }
                        if u == url.to_string() {
                            if let Some(reply) = &c.status.reply {
                                root_url = reply.root.url.to_string();
                            }
                        }
                        let parent = c.status.reply.as_ref().map(|r| r.parent.url.to_string());
                        let item = views.item_of(c.key, c.id, c.seq, &c.hash, &c.status, false);
                        known.insert(u, (parent, Some(item), true));
                    }
                }
                Err(err) => crawler_error = Some(format!("{err:#}")),
            }
        }
        let thread = Views::layout(&root_url, &url.to_string(), &known);
        let mut value = serde_json::to_value(thread)?;
        if let Some(err) = crawler_error {
            value["crawlerError"] = err.into();
        }
        Ok(Json(value))
    })
    .await
}

async fn profile(
    State(state): State<AppState>,
    Params(q): Params<UrlQuery>,
) -> ApiResult<Json<Value>> {
    let url = ArchiveUrl::parse_lenient(&q.url).map_err(|e| ApiError::bad(format!("{e}")))?;
    let key: PublicKey = url.key().into();
    let cursor = cursor(&q.cursor)?;
    let limit = q.limit.unwrap_or(20);
    with_live(&state.node, move |_, live| {
        let views = Views::new(&live.index);
        let author = views.author(key);
        let held = live.index.archive(&key).is_some();
        if !held {
            return Ok(Json(json!({
                "author": author,
                "held": false,
                "statuses": {"items": []},
                "follows": [],
            })));
        }
        let profile = live.index.profile(&key).unwrap_or_default();
        let statuses = views.archive_statuses(&key, cursor, limit);
        let follows: Vec<Author> = live
            .index
            .follows_of(&key)
            .unwrap_or_default()
            .into_iter()
            .map(|k| views.author(k))
            .collect();
        let (skipped, reasons) = live.index.skipped(&key);
        Ok(Json(json!({
            "author": author,
            "held": true,
            "bio": profile.bio,
            "statuses": statuses,
            "follows": follows,
            "skipped": skipped,
            "skippedReasons": reasons,
        })))
    })
    .await
}

#[derive(Deserialize)]
struct LimitQuery {
    limit: Option<usize>,
}

async fn notifications(
    State(state): State<AppState>,
    Params(q): Params<LimitQuery>,
) -> ApiResult<Json<Value>> {
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    with_live(&state.node, move |node, live| {
        let views = Views::new(&live.index);
        let read = node.read_up_to();
        let mut shown: Vec<NotificationShown> = live
            .index
            .notifications(limit)
            .iter()
            .map(|n| views.notification(n, read))
            .collect();
        let mut crawler_error = None;
        if let Some(crawler) = &node.crawler {
            let own = live.index.own();
            match crawler.mentions(&own) {
                Ok(found) => {
                    for c in found {
                        if c.key == own || live.index.find(&c.key, c.id).is_some() {
                            continue;
                        }
                        let parent = c.status.reply.as_ref().map(|r| r.parent.url.clone());
                        let reason = if parent
                            .as_ref()
                            .is_some_and(|p| PublicKey::from(p.key()) == own)
                        {
                            crate::index::Reason::Reply
                        } else {
                            crate::index::Reason::Mention
                        };
                        let time = c.status.created_at.min(Timestamp::now());
                        shown.push(NotificationShown {
                            reason,
                            from: views.author(c.key),
                            status: Some(
                                views.item_of(c.key, c.id, c.seq, &c.hash, &c.status, true),
                            ),
                            subject: parent.map(|p| p.to_string()),
                            time: time.to_string(),
                            unread: time.unix_millis() > read,
                            from_crawler: true,
                        });
                    }
                }
                Err(err) => crawler_error = Some(format!("{err:#}")),
            }
        }
        shown.sort_by(|a, b| b.time.cmp(&a.time));
        shown.truncate(limit);
        let unread =
            live.index.unread(read) + shown.iter().filter(|n| n.from_crawler && n.unread).count();
        let mut value = json!({ "items": shown, "unread": unread });
        if let Some(err) = crawler_error {
            value["crawlerError"] = err.into();
        }
        Ok(Json(value))
    })
    .await
}

async fn suggestions(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    with_live(&state.node, move |_, live| {
        let views = Views::new(&live.index);
        let items: Vec<Value> = live
            .index
            .suggestions(20)
            .into_iter()
            .map(|(key, via)| {
                json!({
                    "author": views.author(key),
                    "followedBy": via.len(),
                    "via": via.into_iter().map(|k| views.author(k)).collect::<Vec<_>>(),
                })
            })
            .collect();
        Ok(Json(json!({ "items": items })))
    })
    .await
}

async fn events(
    State(state): State<AppState>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let rx = state.node.events.subscribe();
    let mut stop = state.stop.clone();
    let hello = futures::stream::once(async { Ok(SseEvent::default().event("hello").data("{}")) });
    let updates = BroadcastStream::new(rx).map(|msg| {
        Ok(match msg {
            Ok(event) => SseEvent::default()
                .event(event.name())
                .json_data(&event)
                .unwrap_or_else(|_| SseEvent::default().event("feed").data("{}")),
            // Fell behind: tell the page to reload what it shows.
            Err(_) => SseEvent::default().event("feed").data("{}"),
        })
    });
    let stream = hello.chain(updates).take_until(async move {
        let _ = stop.wait_for(|s| *s).await;
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

// ---- writes ----

#[derive(Deserialize)]
struct IdentityBody {
    name: String,
    #[serde(default)]
    bio: String,
}

async fn create_identity(
    State(state): State<AppState>,
    Body(body): Body<IdentityBody>,
) -> ApiResult<Json<Value>> {
    let node = state.node.clone();
    if node.live().is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "an identity already exists here",
        ));
    }
    let created = node
        .create_identity(body.name, body.bio)
        .await
        .map_err(|err| ApiError::failure(err, Some(node.app.store.root())))?;
    let _ = node.events.send(Event::Ready { indexing: true });
    Ok(done(&created)?)
}

#[derive(Deserialize)]
struct TextBody {
    text: String,
}

async fn post_status(
    State(state): State<AppState>,
    Body(body): Body<TextBody>,
) -> ApiResult<Json<Value>> {
    with_live(&state.node, move |node, live| {
        let known = live.known_names()?;
        let posted = publish::post_in(&live.own, &known, &body.text)?;
        node.refresh(live, &live.own.key())?;
        done(&posted)
    })
    .await
}

#[derive(Deserialize)]
struct ReplyBody {
    url: String,
    text: String,
}

async fn reply(
    State(state): State<AppState>,
    Body(body): Body<ReplyBody>,
) -> ApiResult<Json<Value>> {
    with_live(&state.node, move |node, live| {
        let url = publish::status_url(&node.app, &body.url)?;
        let parent = parent_of(live, url)?;
        let known = live.known_names()?;
        let posted = publish::reply_in(&live.own, &known, &parent, &body.text)?;
        node.refresh(live, &live.own.key())?;
        done(&posted)
    })
    .await
}

/// The status answered, read through the index (own or followed archives).
fn parent_of(live: &Live, url: ArchiveUrl) -> anyhow::Result<Parent> {
    let key: PublicKey = url.key().into();
    let not_here = || {
        anyhow::anyhow!(
            "{url} is not held here, so your reply cannot pin it; follow hyper://{}/ first",
            key.to_hex()
        )
    };
    let (k, id) = status_key(&url).ok_or_else(not_here)?;
    let ix = live.index.find(&k, id).ok_or_else(not_here)?;
    let archive = live.index.archive(&k).ok_or_else(not_here)?;
    let (entry, decoded) = archive.entry(ix.seq)?;
    let Some(File::Status { status, .. }) = decoded.validate()? else {
        anyhow::bail!("{url} is not a status");
    };
    Ok(Parent {
        url,
        entry,
        status,
        author_name: live.index.profile(&k).map(|p| p.name),
    })
}

#[derive(Deserialize)]
struct UrlBody {
    url: String,
}

async fn like(State(state): State<AppState>, Body(body): Body<UrlBody>) -> ApiResult<Json<Value>> {
    with_live(&state.node, move |node, live| {
        let liked = publish::like_in(&live.own, publish::status_url(&node.app, &body.url)?)?;
        node.refresh(live, &live.own.key())?;
        done(&liked)
    })
    .await
}

async fn unlike(
    State(state): State<AppState>,
    Body(body): Body<UrlBody>,
) -> ApiResult<Json<Value>> {
    with_live(&state.node, move |node, live| {
        let unliked = publish::unlike_in(&live.own, publish::status_url(&node.app, &body.url)?)?;
        node.refresh(live, &live.own.key())?;
        done(&unliked)
    })
    .await
}

async fn delete(
    State(state): State<AppState>,
    Body(body): Body<UrlBody>,
) -> ApiResult<Json<Value>> {
    with_live(&state.node, move |node, live| {
        let deleted = publish::delete_in(&live.own, &body.url)?;
        node.refresh(live, &live.own.key())?;
        done(&deleted)
    })
    .await
}

async fn follow(
    State(state): State<AppState>,
    Body(body): Body<UrlBody>,
) -> ApiResult<Json<Value>> {
    with_live(&state.node, move |node, live| {
        let followed = follows::follow_in(&node.app, &live.own, &body.url)?;
        node.refresh(live, &live.own.key())?;
        node.follows_changed(live)?;
        done(&followed)
    })
    .await
}

async fn unfollow(
    State(state): State<AppState>,
    Body(body): Body<UrlBody>,
) -> ApiResult<Json<Value>> {
    with_live(&state.node, move |node, live| {
        let unfollowed = follows::unfollow_in(&node.app, &live.own, &body.url)?;
        node.refresh(live, &live.own.key())?;
        node.follows_changed(live)?;
        done(&unfollowed)
    })
    .await
}

#[derive(Deserialize)]
struct ProfileBody {
    name: Option<String>,
    bio: Option<String>,
}

async fn edit_profile(
    State(state): State<AppState>,
    Body(body): Body<ProfileBody>,
) -> ApiResult<Json<Value>> {
    if body.name.is_none() && body.bio.is_none() {
        return Err(ApiError::bad("give a name, a bio, or both"));
    }
    with_live(&state.node, move |node, live| {
        let shown = identity::profile_in(&live.own, body.name, body.bio)?;
        node.refresh(live, &live.own.key())?;
        done(&shown)
    })
    .await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReadBody {
    up_to: Option<String>,
}

async fn mark_read(
    State(state): State<AppState>,
    Body(body): Body<ReadBody>,
) -> ApiResult<Json<Value>> {
    let up_to = match body.up_to.as_deref() {
        Some(t) => Some(
            t.parse::<Timestamp>()
                .map_err(|e| ApiError::bad(format!("{e}")))?
                .unix_millis(),
        ),
        None => None,
    };
    with_live(&state.node, move |node, live| {
        let now = Timestamp::now().unix_millis();
        node.mark_read(up_to.unwrap_or(now).min(now))?;
        let read = node.read_up_to();
        Ok(Json(
            json!({ "unread": live.index.unread(read), "readUpTo": read }),
        ))
    })
    .await
}

#[derive(Deserialize)]
struct FileBody {
    path: String,
    value: Value,
}

/// Writes a `/proofs/` or `/hosting/` file (`fritter host` through serve), validated.
async fn put_file(
    State(state): State<AppState>,
    Body(body): Body<FileBody>,
) -> ApiResult<Json<Value>> {
    with_live(&state.node, move |node, live| {
        let written = host::put_in(&live.own, &body.path, body.value)?;
        node.refresh(live, &live.own.key())?;
        done(&written)
    })
    .await
}

#[derive(Deserialize)]
struct ExportBody {
    /// An absolute path: the CLI resolves it in its own working directory.
    file: std::path::PathBuf,
    #[serde(default)]
    force: bool,
}

/// `fritter export` through the server, which holds the archive (writes are paused meanwhile,
/// so the copy is of one state).
async fn export(
    State(state): State<AppState>,
    Body(body): Body<ExportBody>,
) -> ApiResult<Json<Value>> {
    if !body.file.is_absolute() {
        return Err(ApiError::bad(format!(
            "{} is not an absolute path",
            body.file.display()
        )));
    }
    with_live(&state.node, move |node, _| {
        done(&crate::backup::export_held(
            &node.app, &body.file, body.force,
        )?)
    })
    .await
}
