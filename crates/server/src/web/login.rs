//! HTTP authentication: `Authorization: Bearer TOKEN` for scripts, curl and ffmpeg, and a login
//! form that puts the token in an `HttpOnly`, `SameSite=Strict` cookie for the dashboard (browsers
//! cannot set headers on `<img>` tags or WebSockets, but they send cookies).

use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use serde::Deserialize;

use super::AppError;
use super::ServedOverHttps;
use crate::auth::{Identity, Perms};
use crate::HubHandle;

/// Name of the dashboard's cookie.
pub(crate) const COOKIE: &str = "framewire_token";

fn presented_token(req: &Request) -> Option<String> {
    let h = req.headers();
    if let Some(t) = h
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return Some(t.trim().to_owned());
    }
    h.get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| {
            kv.trim()
                .strip_prefix(COOKIE)
                .and_then(|rest| rest.strip_prefix('='))
        })
        .map(str::to_owned)
}

/// The permission a request needs (`None`: any valid token).
fn needed(method: &Method, path: &str) -> Option<Perms> {
    if path.starts_with("/files/") {
        return Some(if method == Method::PUT {
            Perms::UPLOAD
        } else {
            Perms::DOWNLOAD
        });
    }
    if path.starts_with("/thumbs/") || path == "/api/files" || path == "/api/events" {
        return Some(Perms::DOWNLOAD);
    }
    if path.starts_with("/streams/") || path == "/ws" {
        return Some(Perms::SUBSCRIBE);
    }
    if path.starts_with("/api/devices/") && method == Method::POST {
        return Some(Perms::COMMAND);
    }
    if path == "/metrics" {
        return Some(Perms::ADMIN);
    }
    None
}

/// Lets a request through if tokens are off, or it carries a valid token allowing it.
pub(crate) async fn require_token(
    State(hub): State<HubHandle>,
    mut req: Request,
    next: Next,
) -> Response {
    let tokens = &hub.config().tokens;
    if !tokens.enabled() || req.uri().path() == "/login" {
        req.extensions_mut().insert(Identity::open());
        return next.run(req).await;
    }
    let who = presented_token(&req).and_then(|t| tokens.check(&t));
    let Some(who) = who else {
        // A person at the dashboard goes to the login form; a program gets a 401 it can read.
        let wants_html = req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html"));
        if req.method() == Method::GET && wants_html {
            return Redirect::to("/login").into_response();
        }
        let mut res = AppError::new(
            StatusCode::UNAUTHORIZED,
            "missing or wrong token: send Authorization: Bearer TOKEN",
        )
        .into_response();
        res.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        return res;
    };
    if let Some(p) = needed(req.method(), req.uri().path()) {
        if !who.perms.allows(p) {
            return AppError::new(
                StatusCode::FORBIDDEN,
                format!("this token may not {}", p.name()),
            )
            .into_response();
        }
    }
    req.extensions_mut().insert(who);
    next.run(req).await
}

const FORM: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>framewire: sign in</title><link rel="stylesheet" href="/assets/app.css"></head>
<body><main class="login"><h1>framewire</h1>
<form method="post" action="/login"><label>Token <input type="password" name="token" autocomplete="current-password" autofocus required></label>
<button type="submit">Sign in</button></form>{ERROR}</main></body></html>"#;

/// `GET /login`
pub(crate) async fn form() -> Html<String> {
    Html(FORM.replace("{ERROR}", ""))
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    token: String,
}

/// `POST /login`: a valid token sets the cookie and goes to the dashboard.
pub(crate) async fn login(
    State(hub): State<HubHandle>,
    https: Option<Extension<ServedOverHttps>>,
    Form(f): Form<LoginForm>,
) -> Response {
    let tokens = &hub.config().tokens;
    if tokens.enabled() && tokens.check(&f.token).is_none() {
        return (
            StatusCode::UNAUTHORIZED,
            Html(FORM.replace("{ERROR}", r#"<p class="error">Wrong token.</p>"#)),
        )
            .into_response();
    }
    // The cookie holds the token itself: the hub keeps no session state, and HttpOnly keeps it
    // away from scripts. Tokens are long random strings, so this is no weaker than the header.
    let value = f.token.replace([';', ',', ' ', '"', '\\'], "");
    // Over HTTPS the browser must never send it in the clear (to a plain HTTP port, say).
    let secure = if https.is_some() { "; Secure" } else { "" };
    let cookie =
        format!("{COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age=2592000{secure}");
    let mut res = Redirect::to("/").into_response();
    if let Ok(v) = header::HeaderValue::from_str(&cookie) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res
}

/// `POST /logout`: forgets the cookie.
pub(crate) async fn logout() -> Response {
    let mut res = Redirect::to("/login").into_response();
    res.headers_mut().insert(
        header::SET_COOKIE,
        header::HeaderValue::from_static(
            "framewire_token=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0",
        ),
    );
    res
}
