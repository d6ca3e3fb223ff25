//! The hosting routes, merged into the crawler's router (and so under its rate limit, body
//! limit and timeout), with a stricter per-address limit on signups:
//! - `POST /v1/hosting/signup {"archive": "<key or hyper:// URL>"}`: a nonce and what to write;
//! - `GET /v1/hosting/accounts`: every account with its proof entry, for anyone to re-check;
//! - `GET /v1/hosting/{key}`: an account's archives, quota use and reasons; or the pending
//!   signup and what it waits for.

use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use fritter_common::crypto::PublicKey;
use fritter_common::model::ArchiveUrl;
use serde_json::{json, Value};

use super::{Hosting, HostingError};
use crate::api::{ApiError, AppState};

/// Largest signup body.
const MAX_SIGNUP_BODY: usize = 4096;

impl IntoResponse for HostingError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            HostingError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_param"),
            HostingError::RateLimited => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            HostingError::Busy => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            HostingError::AccountExists(_) => (StatusCode::CONFLICT, "account_exists"),
            HostingError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            _ => (StatusCode::UNPROCESSABLE_ENTITY, "bad_proof"),
        };
        let mut err = json!({"code": code, "message": self.to_string()});
        if matches!(self, HostingError::BadRequest(_)) {
            err["param"] = "archive".into();
        }
        let mut resp = (status, Json(json!({ "error": err }))).into_response();
        if matches!(self, HostingError::RateLimited | HostingError::Busy) {
            resp.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("60"),
            );
        }
        resp
    }
}

/// The hosting routes, to pass to [`crate::api::router_with`].
pub fn router(hosting: Arc<Hosting>) -> Router<AppState> {
    Router::new()
        .route("/v1/hosting/signup", post(signup))
        .route("/v1/hosting/accounts", get(accounts))
        .route("/v1/hosting/{key}", get(account))
        .with_state(hosting)
}

fn parse_key(value: &str) -> Result<PublicKey, String> {
    let url = ArchiveUrl::parse_lenient(value).map_err(|e| e.to_string())?;
    if !url.is_root() {
        return Err("give the archive's key or root URL, hyper://<key>/".into());
    }
    Ok(url.key().into())
}

async fn signup(State(h): State<Arc<Hosting>>, req: Request) -> Response {
    let ip = crate::api::client_ip(&req);
    if !h.signup_limiter.allow(ip) {
        return HostingError::RateLimited.into_response();
    }
    // Reading stops at the limit; a body that cannot be read whole within it is too large
    // (or its client went away, which no answer reaches).
    let Ok(bytes) = axum::body::to_bytes(req.into_body(), MAX_SIGNUP_BODY).await else {
        return ApiError::TooLarge(MAX_SIGNUP_BODY).into_response();
    };
    match start_signup(&h, &bytes) {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

fn start_signup(h: &Hosting, bytes: &[u8]) -> Result<Value, HostingError> {
    let body: Value = serde_json::from_slice(bytes).map_err(|e| {
        HostingError::BadRequest(format!(
            "the body must be JSON {{\"archive\": \"<key>\"}}: {e}"
        ))
    })?;
    let archive = body.get("archive").and_then(Value::as_str).ok_or_else(|| {
        HostingError::BadRequest("archive: missing; give {\"archive\": \"<key>\"}".into())
    })?;
    let key = parse_key(archive).map_err(|e| HostingError::BadRequest(format!("archive: {e}")))?;
    let (nonce, ttl) = h.signup(key)?;
    let expires = time::OffsetDateTime::now_utc() + ttl;
    Ok(json!({
        "archive": key.to_hex(),
        "service": h.service().as_str(),
        "host": h.service().host(),
        "nonce": nonce,
        "proofPath": h.proof_path(),
        "expiresAt": expires
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        "expiresInSecs": ttl.as_secs(),
        "next": format!("write {} with {{service, nonce, createdAt}} into the archive, then poll GET /v1/hosting/{}", h.proof_path(), key.to_hex()),
    }))
}

async fn accounts(State(h): State<Arc<Hosting>>) -> Json<Value> {
    let accounts = h.accounts();
    Json(json!({
        "service": h.service().as_str(),
        "quota": {"maxBytes": h.config().max_bytes, "maxArchives": h.config().max_archives},
        "count": accounts.len(),
        "accounts": accounts,
    }))
}

async fn account(
    State(h): State<Arc<Hosting>>,
    key: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(key) = key.map_err(|e| ApiError::param("key", e.body_text()))?;
    if key.len() > 1024 {
        return Err(ApiError::param("key", "too long"));
    }
    let key = parse_key(&key).map_err(|e| ApiError::param("key", e))?;
    h.status(&key).map(Json).ok_or_else(|| {
        ApiError::NotFound(format!(
            "archive {key} has no account and no signup under way here; POST /v1/hosting/signup first"
        ))
    })
}
