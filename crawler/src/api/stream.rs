//! `GET /v1/stream`: statuses as they are indexed, as server-sent events a client can resume.

use std::convert::Infallible;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde_json::Value;

use super::params::{opt_key, params, tag, Params};
use super::{ApiError, AppState};
use crate::index::search::{self, Filter};

/// `GET /v1/stream`: server-sent events, one `status` event per status indexed (new or
/// rewritten), in ingest order; the event id is the cursor. A client reconnecting with
/// `Last-Event-ID` (or `?cursor=`) gets everything indexed after it.
pub(super) async fn stream(
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
