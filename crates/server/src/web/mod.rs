//! The hub's HTTP side: dashboard, JSON API, file download/upload, MJPEG, WebSocket, metrics.
//!
//! It runs in the same process and runtime as the native listener and reads the same state
//! through a [`HubHandle`]: frames are the hub's shared `Bytes`, never copied per viewer.
//! [`router`] builds the whole app, so tests call it with `oneshot` and no socket.
//!
//! No compression layer (it would buffer `multipart/x-mixed-replace`) and no timeout layer (it
//! would cut live streams); the layers here only look at headers.
//!
//! Every request passes, outermost first: security headers on the answer, the status counter,
//! the `Host` check (DNS rebinding), the `Origin` check (cross-site forms), the token check
//! (with its throttle).

mod api;
mod assets;
mod files;
mod live;
mod login;
mod metrics;
mod origin;
mod throttle;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use framewire_proto::ErrorCode;

use crate::store::Refusal;
use crate::HubHandle;

/// Marks requests that came over HTTPS (so the login cookie can be `Secure`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ServedOverHttps;

/// An error answered as JSON `{"error": message}` with its status code.
#[derive(Debug)]
pub struct AppError {
    status: StatusCode,
    message: String,
}

impl AppError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        AppError {
            status,
            message: message.into(),
        }
    }

    pub(crate) fn not_found(what: impl std::fmt::Display) -> Self {
        AppError::new(StatusCode::NOT_FOUND, format!("{what} not found"))
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(serde_json::json!({ "error": self.message })),
        )
            .into_response()
    }
}

impl From<Refusal> for AppError {
    fn from(r: Refusal) -> Self {
        let status = match r.code {
            ErrorCode::BadPath => StatusCode::BAD_REQUEST,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::Exists | ErrorCode::Busy => StatusCode::CONFLICT,
            ErrorCode::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::StorageFull => StatusCode::INSUFFICIENT_STORAGE,
            ErrorCode::HashMismatch | ErrorCode::SizeMismatch => StatusCode::BAD_REQUEST,
            ErrorCode::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Malformed => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        AppError::new(status, r.reason)
    }
}

/// The whole HTTP app over a running hub.
pub fn router(hub: HubHandle) -> Router {
    Router::new()
        .route("/", get(assets::index))
        .route("/login", get(login::form).post(login::login))
        .route("/logout", post(login::logout))
        .route("/assets/{file}", get(assets::asset))
        .route("/api/clients", get(api::clients))
        .route("/api/streams", get(api::streams))
        .route("/api/files", get(api::files))
        .route("/api/devices", get(api::devices))
        .route("/api/events", get(api::events))
        // A command is a few words: its JSON body is refused (413) past 256 KiB before it is
        // buffered.
        .route(
            "/api/devices/{name}/commands",
            post(api::command).layer(axum::extract::DefaultBodyLimit::max(256 * 1024)),
        )
        .route(
            "/files/{*path}",
            get(files::download)
                .put(files::upload)
                .delete(files::delete),
        )
        .route("/thumbs/{*path}", get(files::thumbnail))
        .route("/streams/{file}", get(live::mjpeg))
        .route("/streams/{name}/latest.jpg", get(live::latest))
        .route("/ws", get(live::websocket))
        .route("/metrics", get(metrics::metrics))
        .fallback(|| async { AppError::new(StatusCode::NOT_FOUND, "no such page") })
        .layer(middleware::from_fn_with_state(
            hub.clone(),
            login::require_token,
        ))
        .layer(Extension(Arc::new(throttle::LoginThrottle::default())))
        .layer(middleware::from_fn(origin::check_origin))
        .layer(middleware::from_fn_with_state(
            hub.clone(),
            origin::check_host,
        ))
        .layer(middleware::from_fn_with_state(hub.clone(), count_status))
        .layer(middleware::map_response(security_headers))
        .with_state(hub)
}

/// The dashboard loads only its own scripts, styles and images (no inline code), may not be
/// framed, and no answer is sniffed into another type: an uploaded or published file can never
/// run as a page of the hub.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' blob: data:; \
     style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'";

/// Adds the security headers to every answer, touching headers only (live streams pass as they
/// are). The referrer policy is `same-origin`, not `no-referrer`: under `no-referrer` browsers send
/// `Origin: null` on the dashboard's own POSTs, which the origin check must refuse (a hostile page
/// can send `null` too).
async fn security_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
    ] {
        h.entry(name).or_insert(HeaderValue::from_static(value));
    }
    res
}

/// Counts responses by status for `/metrics`.
async fn count_status(State(hub): State<HubHandle>, req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    hub.stats().http_response(res.status().as_u16());
    res
}

/// Content type for a stored file's name. Only images and plain text get their own type; anything
/// else is served as a download, so an uploaded HTML file can never run in the dashboard's origin.
pub(crate) fn content_type(path: &str) -> (&'static str, bool) {
    let ext = path
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "jpg" | "jpeg" => ("image/jpeg", true),
        "png" => ("image/png", true),
        "gif" => ("image/gif", true),
        "bmp" => ("image/bmp", true),
        "webp" => ("image/webp", true),
        "txt" | "log" | "csv" => ("text/plain; charset=utf-8", true),
        "json" => ("application/json", true),
        _ => ("application/octet-stream", false),
    }
}

/// Whether the hub can make a thumbnail of a file with this name.
pub(crate) fn is_image(path: &str) -> bool {
    let ext = path
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    matches!(ext.as_str(), "jpg" | "jpeg" | "png")
}
