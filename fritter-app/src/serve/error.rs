//! The API's one error type and the extractors and layer that make every rejection it, so each
//! answer that is not a success is `{"error": "..."}` with a fitting status: the caller's
//! mistakes in their own words and limits, a full disk said plainly, our other failures generic.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use fritter_common::model::limits::MAX_STATUS_CHARS;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::api::MAX_BODY;
use super::node::Node;

/// An API error: 4xx with the message for the caller's mistakes, 500 with a generic message
/// (the cause logged) for ours.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub(super) fn bad(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub(super) fn not_live(node: &Node) -> ApiError {
        if let Some(why) = node.failure() {
            return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, why);
        }
        if node.starting() {
            return ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "starting: opening your archives, try again in a moment",
            );
        }
        ApiError::new(
            StatusCode::CONFLICT,
            "no identity yet: choose a name first (POST /api/identity)",
        )
    }
}

impl ApiError {
    /// A request that failed: the error's own words for the caller's mistakes (400); for ours a
    /// full disk (507) or broken storage (503) said plainly, as the CLI would say it without
    /// `fritter serve`, and anything else a generic 500 with the cause logged. `data_dir` is
    /// where space must be freed.
    pub(super) fn failure(err: anyhow::Error, data_dir: Option<&std::path::Path>) -> ApiError {
        use fritter_common::archive::ArchiveError;
        use fritter_common::log::LogError;
        use fritter_common::store::StoreError;
        // The server's own files (the read marker) are in the data directory too.
        let io_full = err.chain().any(|e| {
            e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::StorageFull)
        });
        if crate::is_storage_full(&err) || io_full {
            tracing::error!(error = %format!("{err:#}"), "request failed: the disk is full");
            return ApiError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                crate::storage_full_message(data_dir),
            );
        }
        let poisoned = err.chain().find_map(|e| {
            let log = match (
                e.downcast_ref::<LogError>(),
                e.downcast_ref::<ArchiveError>(),
                e.downcast_ref::<StoreError>(),
            ) {
                (Some(log), _, _)
                | (_, Some(ArchiveError::Log(log)), _)
                | (_, _, Some(StoreError::Log(log))) => Some(log),
                _ => None,
            };
            log.filter(|l| matches!(l, LogError::Poisoned(_)))
        });
        if let Some(poisoned) = poisoned {
            tracing::error!(error = %format!("{err:#}"), "request failed");
            return ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{poisoned}: restart `fritter serve`"),
            );
        }
        let ours = err.chain().any(|e| {
            e.downcast_ref::<LogError>().is_some()
                || matches!(e.downcast_ref::<ArchiveError>(), Some(ArchiveError::Log(_)))
                || matches!(
                    e.downcast_ref::<StoreError>(),
                    Some(StoreError::Io { .. } | StoreError::Log(_))
                )
                || e.downcast_ref::<std::io::Error>().is_some()
        });
        if ours {
            tracing::error!(error = %format!("{err:#}"), "request failed");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error; see the server's log (RUST_LOG=debug for details)",
            )
        } else {
            ApiError::bad(format!("{err:#}"))
        }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(err: anyhow::Error) -> ApiError {
        ApiError::failure(err, None)
    }
}

/// axum's answer to a body it could not read as JSON, in the API's words: the limit for a body
/// too large, the fix for a missing content type, serde's reason for malformed JSON.
impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> ApiError {
        let status = rejection.status();
        let message = match &rejection {
            JsonRejection::MissingJsonContentType(_) => {
                "the body must be JSON, sent with `Content-Type: application/json`".to_owned()
            }
            _ if status == StatusCode::PAYLOAD_TOO_LARGE => format!(
                "the request body is larger than the limit of {MAX_BODY} bytes (a status is at most {MAX_STATUS_CHARS} characters)"
            ),
            JsonRejection::JsonSyntaxError(e) => format!("the body is not valid JSON: {}", e.body_text()),
            JsonRejection::JsonDataError(e) => {
                format!("the body does not fit this endpoint: {}", e.body_text())
            }
            other => format!("cannot read the request body: {}", other.body_text()),
        };
        ApiError::new(status, message)
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> ApiError {
        ApiError::new(
            rejection.status(),
            format!("bad query parameters: {}", rejection.body_text()),
        )
    }
}

/// `Json<T>` whose rejections are [`ApiError`]s, so a bad body gets the API's JSON error.
pub(super) struct Body<T>(pub(super) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let Json(value) = Json::<T>::from_request(req, state).await?;
        Ok(Body(value))
    }
}

/// `Query<T>` whose rejections are [`ApiError`]s.
pub(super) struct Params<T>(pub(super) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        let axum::extract::Query(value) =
            axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(Params(value))
    }
}

/// Any error answer that is not JSON yet (one a layer or axum itself made) becomes the API's
/// JSON error, keeping its status and its words, so every client reads one shape.
pub(super) async fn json_errors(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    let status = res.status();
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return res;
    }
    let (parts, body) = res.into_parts();
    // Such bodies are a line of text; a longer one is not a message worth passing on.
    let text = axum::body::to_bytes(body, 1024)
        .await
        .ok()
        .and_then(|b| String::from_utf8(b.to_vec()).ok())
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty() && !status.is_server_error());
    let message = text.unwrap_or_else(|| {
        status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_lowercase()
    });
    let mut fresh = ApiError::new(status, message).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            fresh.headers_mut().append(name, value.clone());
        }
    }
    fresh
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

pub(super) type ApiResult<T> = Result<T, ApiError>;
