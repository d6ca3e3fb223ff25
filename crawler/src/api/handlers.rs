//! The API's endpoints (except the stream): each parses its parameters, runs its index work
//! off the async workers, and answers JSON with the coverage it was computed at.

use std::time::{Duration, Instant};

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use fritter_common::crypto::PublicKey;
use fritter_common::model::ArchiveUrl;
use serde::Deserialize;
use serde_json::{json, Value};

use super::params::{
    archive_key, cursor_latest, limit, opt_key, params, path_key, scope, tag, time_ms, Params,
};
use super::state::now_ms;
use super::{ApiError, AppState, MAX_PARAM_BYTES};
use crate::index::query;
use crate::index::search::{self, Filter, Sort};

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

pub(super) async fn status(
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

pub(super) async fn mentions(
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

pub(super) async fn thread(
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

pub(super) async fn trending(
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

pub(super) async fn search_handler(
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

pub(super) async fn archive(
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

pub(super) async fn followers(
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
pub(super) struct CrawlRequest {
    url: String,
}

pub(super) async fn crawl(
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
