//! HTTP authentication: `Authorization: Bearer TOKEN` for scripts, curl and ffmpeg, and a login
//! form that puts the token in an `HttpOnly`, `SameSite=Strict` cookie for the dashboard (browsers
//! cannot set headers on `<img>` tags or WebSockets, but they send cookies).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use serde::Deserialize;

use super::throttle::{retry_after_secs, LoginThrottle};
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

/// The client's IP, the key of [`LoginThrottle`] (unspecified when not served over a socket).
fn client_ip(req: &Request) -> IpAddr {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip())
}

/// The answer to an IP locked out for guessing tokens: 429 with `Retry-After`.
fn too_many(wait: Duration, body: Response) -> Response {
    let mut res = body;
    *res.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    if let Ok(v) = header::HeaderValue::from_str(&retry_after_secs(wait).to_string()) {
        res.headers_mut().insert(header::RETRY_AFTER, v);
    }
    res
}

fn too_many_text(wait: Duration) -> String {
    format!(
        "too many wrong tokens from this address: try again in {} s",
        retry_after_secs(wait)
    )
}

/// Clears the dashboard's cookie (a wrong one would otherwise count against the throttle on
/// every request the page makes).
const CLEAR_COOKIE: &str = "framewire_token=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0";

/// The permission a request needs (`None`: any valid token).
fn needed(method: &Method, path: &str) -> Option<Perms> {
    if path.starts_with("/files/") {
        return Some(match *method {
            Method::PUT => Perms::UPLOAD,
            Method::DELETE => Perms::DELETE,
            _ => Perms::DOWNLOAD,
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

/// Lets a request through if tokens are off, or it carries a valid token allowing it. Wrong
/// tokens count against the client's IP in [`LoginThrottle`]; a locked-out IP gets 429.
pub(crate) async fn require_token(
    State(hub): State<HubHandle>,
    Extension(throttle): Extension<Arc<LoginThrottle>>,
    mut req: Request,
    next: Next,
) -> Response {
    let tokens = &hub.config().tokens;
    if !tokens.enabled() || req.uri().path() == "/login" {
        req.extensions_mut().insert(Identity::open());
        return next.run(req).await;
    }
    let presented = presented_token(&req);
    let ip = client_ip(&req);
    if presented.is_some() {
        if let Err(wait) = throttle.check(ip, Instant::now()) {
            let body = AppError::new(StatusCode::TOO_MANY_REQUESTS, too_many_text(wait));
            return too_many(wait, body.into_response());
        }
    }
    let who = presented.as_deref().and_then(|t| tokens.check(t));
    match (&who, &presented) {
        (Some(_), _) => throttle.succeeded(ip),
        (None, Some(_)) => {
            throttle.failed(ip, Instant::now());
        }
        (None, None) => {}
    }
    let Some(who) = who else {
        // A person at the dashboard goes to the login form; a program gets a 401 it can read.
        let wants_html = req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html"));
        if req.method() == Method::GET && wants_html {
            let mut res = Redirect::to("/login").into_response();
            if presented.is_some() {
                res.headers_mut().insert(
                    header::SET_COOKIE,
                    header::HeaderValue::from_static(CLEAR_COOKIE),
                );
            }
            return res;
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

fn form_with_error(status: StatusCode, error: &str) -> Response {
    let error = format!(r#"<p class="error">{error}</p>"#);
    (status, Html(FORM.replace("{ERROR}", &error))).into_response()
}

/// `POST /login`: a valid token sets the cookie and goes to the dashboard. Wrong tokens count
/// against the client's IP in [`LoginThrottle`], like wrong `Bearer` tokens.
pub(crate) async fn login(
    State(hub): State<HubHandle>,
    Extension(throttle): Extension<Arc<LoginThrottle>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    https: Option<Extension<ServedOverHttps>>,
    Form(f): Form<LoginForm>,
) -> Response {
    let tokens = &hub.config().tokens;
    if tokens.enabled() {
        let ip = peer.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0 .0.ip());
        let now = Instant::now();
        if let Err(wait) = throttle.check(ip, now) {
            let text = format!(
                "Too many wrong tokens: try again in {} s.",
                retry_after_secs(wait)
            );
            return too_many(wait, form_with_error(StatusCode::TOO_MANY_REQUESTS, &text));
        }
        if tokens.check(&f.token).is_none() {
            throttle.failed(ip, now);
            return form_with_error(StatusCode::UNAUTHORIZED, "Wrong token.");
        }
        throttle.succeeded(ip);
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
        header::HeaderValue::from_static(CLEAR_COOKIE),
    );
    res
}
