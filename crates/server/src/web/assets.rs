//! The dashboard: plain HTML, CSS and JavaScript embedded in the binary (works offline, no build).

use axum::extract::Path;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};

use super::AppError;

const INDEX: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// `GET /`
pub(crate) async fn index() -> Html<&'static str> {
    Html(INDEX)
}

/// `GET /assets/{file}`
pub(crate) async fn asset(Path(file): Path<String>) -> Result<Response, AppError> {
    let (ctype, body) = match file.as_str() {
        "app.js" => ("text/javascript; charset=utf-8", APP_JS),
        "app.css" => ("text/css; charset=utf-8", APP_CSS),
        _ => return Err(AppError::not_found(format!("/assets/{file}"))),
    };
    Ok((
        [
            (header::CONTENT_TYPE, ctype),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response())
}
