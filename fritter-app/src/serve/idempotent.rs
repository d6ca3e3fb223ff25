//! Writes through the API run one at a time, and a write sent with an `Idempotency-Key` that
//! was already answered gets that first answer (same status, same body) instead of being done
//! again: the CLI retries with the same key when an answer is lost ([`crate::idempotency`]).

use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::node::Node;
use crate::idempotency::{check_key, request_digest, Begin, KeyError, HEADER};

/// Largest answer recorded (a write's report).
const MAX_ANSWER: usize = 1024 * 1024;

fn refuse(err: KeyError, data_dir: &std::path::Path) -> Response {
    let status = match &err {
        KeyError::Malformed(_) => StatusCode::BAD_REQUEST,
        KeyError::Reused(_) => StatusCode::UNPROCESSABLE_ENTITY,
        KeyError::Interrupted { .. } => StatusCode::CONFLICT,
        // A full disk is said as every other write says it (507, where to free space).
        KeyError::Io { cause, .. } if cause.kind() == std::io::ErrorKind::StorageFull => {
            tracing::error!(error = %err, "request failed: the disk is full");
            return ApiError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                crate::storage_full_message(Some(data_dir)),
            )
            .into_response();
        }
        KeyError::Io { .. } => {
            return ApiError::from(anyhow::Error::new(err)).into_response();
        }
    };
    ApiError::new(status, err.to_string()).into_response()
}

/// The middleware over every write route.
pub(crate) async fn writes(State(node): State<Arc<Node>>, req: Request, next: Next) -> Response {
    let _one_at_a_time = node.writes.lock().await;
    let Some(key) = req.headers().get(HEADER) else {
        return next.run(req).await;
    };
    let key = match key.to_str() {
        Ok(key) => key.to_owned(),
        Err(_) => {
            return refuse(
                KeyError::Malformed("(not text)".into()),
                node.app.store.root(),
            )
        }
    };
    if let Err(err) = check_key(&key) {
        return refuse(err, node.app.store.root());
    }
    // Not live: nothing can be written, and the route answers why.
    let Some(live) = node.live() else {
        return next.run(req).await;
    };
    let (parts, body) = req.into_parts();
    let bytes = match to_bytes(body, super::api::MAX_BODY).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "the request is over the limit of {} bytes",
                    super::api::MAX_BODY
                ),
            )
            .into_response()
        }
    };
    let request = request_digest(parts.uri.path(), &bytes);
    let length = live.own.log().len();
    let keys = node.keys.clone();
    let (k, r) = (key.clone(), request.clone());
    let begun = tokio::task::spawn_blocking(move || keys.begin(&k, &r, length)).await;
    match begun {
        Ok(Ok(Begin::Fresh)) => {}
        Ok(Ok(Begin::Replay { status, body })) => {
            tracing::info!(
                key,
                status,
                "repeated idempotency key: answering as the first time"
            );
            return replay(status, body);
        }
        Ok(Err(err)) => return refuse(err, node.app.store.root()),
        Err(err) => return ApiError::from(anyhow::anyhow!("task failed: {err}")).into_response(),
    }
    let res = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    if !res.status().is_success() {
        // Refused or failed: the pending record stays, so a retry redoes the write only if
        // the archive did not grow meanwhile.
        return res;
    }
    let (parts, body) = res.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_ANSWER).await else {
        return ApiError::from(anyhow::anyhow!("cannot read the answer of a write"))
            .into_response();
    };
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let status = parts.status.as_u16();
    let keys = node.keys.clone();
    let recorded =
        tokio::task::spawn_blocking(move || keys.finish(&key, &request, status, &text)).await;
    match recorded {
        Ok(Ok(())) => Response::from_parts(parts, Body::from(bytes)),
        // Written but not recorded: say so rather than answer as if a retry were safe.
        Ok(Err(err)) => {
            tracing::error!(error = %err, "a write was done but its answer not recorded");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("your write was done, but its answer could not be recorded ({err}): do not send it again; check with `fritter log`"),
            )
            .into_response()
        }
        Err(err) => ApiError::from(anyhow::anyhow!("task failed: {err}")).into_response(),
    }
}

fn replay(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}
