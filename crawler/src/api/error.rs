//! The one error type of the API: every failure is JSON,
//! `{"error": {"code": "...", "message": "...", "param": "..."}}`, with a fitting status.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// What went wrong with a request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("parameter {param}: {reason}")]
    BadParam { param: String, reason: String },
    #[error("{0}")]
    NotFound(String),
    #[error("too many requests from this address: slow down and retry in {retry_after} s")]
    RateLimited { retry_after: u64 },
    #[error("the server is busy: retry shortly")]
    Busy,
    #[error("the request took too long and was stopped: narrow it down")]
    Timeout,
    #[error("the request body is too large: at most {0} bytes")]
    TooLarge(usize),
    #[error("method {0} is not allowed here: see /openapi.json")]
    MethodNotAllowed(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// A bad value of a named parameter.
    pub fn param(param: &str, reason: impl Into<String>) -> ApiError {
        ApiError::BadParam {
            param: param.to_owned(),
            reason: reason.into(),
        }
    }

    fn status_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadParam { .. } => (StatusCode::BAD_REQUEST, "bad_param"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::Busy => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            ApiError::Timeout => (StatusCode::SERVICE_UNAVAILABLE, "timeout"),
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            ApiError::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<crate::index::IndexError> for ApiError {
    fn from(e: crate::index::IndexError) -> Self {
        tracing::error!("index: {e}");
        ApiError::Internal(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_code();
        let mut err = json!({"code": code, "message": self.to_string()});
        if let ApiError::BadParam { param, .. } = &self {
            err["param"] = param.clone().into();
        }
        let mut resp = (status, Json(json!({ "error": err }))).into_response();
        let retry_after = match self {
            ApiError::RateLimited { retry_after } => Some(retry_after.max(1)),
            ApiError::Busy => Some(1),
            _ => None,
        };
        if let Some(secs) = retry_after {
            resp.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(secs),
            );
        }
        resp
    }
}
