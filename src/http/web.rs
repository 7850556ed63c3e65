//! The browser consoles (web/), served from the binary: embedded in release builds, read from
//! the folder in debug builds (rust-embed), so the server is one file to deploy.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rust_embed::RustEmbed;

use super::AppState;
use crate::problem::Problem;

#[derive(RustEmbed)]
#[folder = "web/"]
struct Assets;

/// Pages at their addresses; everything else of web/ under /assets/.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { page("index.html") }))
        .route("/join", get(|| async { page("join.html") }))
        .route("/assets/{file}", get(asset))
}

async fn asset(Path(file): Path<String>) -> Response {
    page(&file)
}

fn page(name: &str) -> Response {
    let Some(file) = Assets::get(name) else {
        return Problem::not_found("not_found", "no such page").into_response();
    };
    let mime = file.metadata.mimetype().to_string();
    let mut res = (StatusCode::OK, file.data.into_owned()).into_response();
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&mime) {
        h.insert(header::CONTENT_TYPE, v);
    }
    // Only our own scripts and styles; the WebSocket and API on this origin. Invite tokens are
    // in page addresses, so no Referer leaves the page.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; connect-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; frame-ancestors 'none'",
        ),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}
