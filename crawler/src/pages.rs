//! The crawler's read-only web pages (`web/crawler/`): search at `/`, `/tag/{tag}`,
//! `/thread?uri=`, `/profile/{key}` and `/trending` (with a chart of tag counts over time).
//!
//! Every page is the same static shell plus one script and one stylesheet, embedded in the
//! binary so the crawler stays one file to ship; the script reads the address and calls the
//! JSON API of this same server. The Content Security Policy allows only this server's own
//! script, style, images and API (no inline script, no other origin), and the script puts text
//! from archives on the page with `textContent` only, so a status can never become markup or code.

use axum::http::header::{self, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

const INDEX_HTML: &str = include_str!("../../web/crawler/index.html");
const CRAWLER_JS: &str = include_str!("../../web/crawler/crawler.js");
const CRAWLER_CSS: &str = include_str!("../../web/crawler/crawler.css");
const ICON_SVG: &str = include_str!("../../web/crawler/icon.svg");

/// Sent with every page and asset.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; \
frame-ancestors 'none'";

/// The page routes and their assets. No state and no fallback, so it merges into any router.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(page))
        .route("/tag/{tag}", get(page))
        .route("/thread", get(page))
        .route("/profile/{key}", get(page))
        .route("/trending", get(page))
        .route("/assets/crawler.js", get(script))
        .route("/assets/crawler.css", get(style))
        .route("/assets/icon.svg", get(icon))
}

fn asset(content_type: &'static str, body: &'static str, cache: &'static str) -> Response {
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    resp
}

/// Every page is the shell; the script renders the view the address names (so a query
/// parameter the page does not know is simply ignored, and the API names bad ones).
async fn page() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML, "no-cache")
}

async fn script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        CRAWLER_JS,
        "public, max-age=300",
    )
}

async fn style() -> Response {
    asset(
        "text/css; charset=utf-8",
        CRAWLER_CSS,
        "public, max-age=300",
    )
}

async fn icon() -> Response {
    asset("image/svg+xml", ICON_SVG, "public, max-age=86400")
}
