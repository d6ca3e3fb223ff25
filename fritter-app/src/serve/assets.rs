//! The web app, embedded in the binary (`web/app/`), so `fritter` stays one file to ship.
//!
//! The page is a shell plus one script and one stylesheet from this server only; the Content
//! Security Policy forbids everything else (no inline script, no other origin), so the app makes
//! no external request and a status text can never run as code.

/// The page shell; `{{TOKEN}}` becomes the write token (readable only by same-origin pages).
pub const INDEX_HTML: &str = include_str!("../../../web/app/index.html");
pub const APP_JS: &str = include_str!("../../../web/app/app.js");
pub const STYLE_CSS: &str = include_str!("../../../web/app/style.css");
pub const ICON_SVG: &str = include_str!("../../../web/app/icon.svg");

/// Sent with every response.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
style-src 'self'; img-src 'self'; connect-src 'self'; manifest-src 'self'; base-uri 'none'; \
form-action 'self'; frame-ancestors 'none'";

/// The page with its token.
pub fn index_html(token: &str) -> String {
    INDEX_HTML.replace("{{TOKEN}}", token)
}
