//! Who may talk to the HTTP side from a browser: the `Host` a request names (against DNS
//! rebinding) and the `Origin` of requests that change something (against cross-site forms,
//! login CSRF included).

use std::net::IpAddr;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::HubHandle;

/// The host part of a `Host` header or URL authority, lower case, without port or trailing dot.
/// IPv6 literals keep their brackets.
fn host_name(authority: &str) -> String {
    let a = authority.trim();
    let host = if a.starts_with('[') {
        match a.find(']') {
            Some(end) => &a[..=end],
            None => a,
        }
    } else {
        a.rsplit_once(':').map_or(a, |(h, _)| h)
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// Whether the hub answers to `host` (from [`host_name`]): `localhost`, any IP literal (DNS
/// rebinding needs a name), or one of the configured names.
fn answers_to(host: &str, allowed: &[String]) -> bool {
    if host == "localhost" || host.parse::<IpAddr>().is_ok() {
        return true;
    }
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        if v6.parse::<std::net::Ipv6Addr>().is_ok() {
            return true;
        }
    }
    allowed.iter().any(|a| host_name(a) == host)
}

fn refusal(status: StatusCode, text: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text,
    )
        .into_response()
}

/// Refuses a request whose `Host` is a name the hub does not answer to (421). A request without
/// `Host` (HTTP/1.0 tools, in-process tests) is let through: browsers always send one.
pub(crate) async fn check_host(State(hub): State<HubHandle>, req: Request, next: Next) -> Response {
    let Some(raw) = req.headers().get(header::HOST) else {
        return next.run(req).await;
    };
    let host = raw.to_str().map(host_name).unwrap_or_default();
    if !answers_to(&host, &hub.config().allowed_hosts) {
        return refusal(
            StatusCode::MISDIRECTED_REQUEST,
            format!(
                "this hub does not answer to the name {host:?}: it answers to localhost, IP \
                 addresses and the names given with `framewire serve --allowed-host NAME` (a hub \
                 reached as http://{host}:7879 needs --allowed-host {host})\n"
            ),
        );
    }
    next.run(req).await
}

/// The `host[:port]` of an `Origin` or `Referer` value (`None`: not a URL with a host; an
/// `Origin: null` from a sandboxed page is one).
fn url_authority(url: &str) -> Option<String> {
    let (scheme, rest) = url.trim().split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    if authority.is_empty() {
        return None;
    }
    Some(without_default_port(
        &authority.to_ascii_lowercase(),
        &scheme.to_ascii_lowercase(),
    ))
}

fn without_default_port(authority: &str, scheme: &str) -> String {
    let default = match scheme {
        "https" | "wss" => ":443",
        _ => ":80",
    };
    authority
        .strip_suffix(default)
        .unwrap_or(authority)
        .to_owned()
}

/// Whether a request comes from a page of another origin than the hub itself: its `Origin` (or,
/// lacking it, its `Referer`) names another `host:port` than its `Host`. Requests that carry
/// neither (curl, scripts, devices) are not cross-site.
fn cross_site(headers: &HeaderMap, https: bool) -> bool {
    let from = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER));
    let Some(from) = from else { return false };
    let Some(from) = from.to_str().ok().and_then(url_authority) else {
        return true;
    };
    let scheme = if https { "https" } else { "http" };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| without_default_port(&h.trim().to_ascii_lowercase(), scheme));
    host.is_none_or(|h| h != from)
}

/// Whether a request can change something (or, for `/ws`, read the live event log across sites,
/// which CORS does not stop for WebSockets).
fn guarded(method: &Method, path: &str) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) || path == "/ws"
}

/// Refuses state-changing requests sent by another site's page (403): a cross-site form could
/// otherwise log the browser in with the attacker's token, send device commands or upload files.
pub(crate) async fn check_origin(req: Request, next: Next) -> Response {
    let https = req.extensions().get::<super::ServedOverHttps>().is_some();
    if guarded(req.method(), req.uri().path()) && cross_site(req.headers(), https) {
        return refusal(
            StatusCode::FORBIDDEN,
            "cross-site request refused: its Origin (or Referer) is not this hub; open the \
             dashboard at the hub's own address\n"
                .into(),
        );
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names() {
        let allowed = vec!["Hub.Local".to_owned()];
        for ok in [
            "localhost",
            "localhost:7879",
            "127.0.0.1:7879",
            "[::1]:7879",
            "[::1]",
            "10.1.2.3",
            "hub.local:80",
            "HUB.LOCAL.",
        ] {
            assert!(answers_to(&host_name(ok), &allowed), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:7879",
            "localhost.evil",
            "[nope]",
            "",
        ] {
            assert!(!answers_to(&host_name(bad), &allowed), "{bad}");
        }
    }

    #[test]
    fn origins() {
        let h = |pairs: &[(header::HeaderName, &str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.insert(k.clone(), v.parse().unwrap());
            }
            m
        };
        let host = (header::HOST, "127.0.0.1:7879");
        assert!(!cross_site(&h(std::slice::from_ref(&host)), false));
        assert!(!cross_site(
            &h(&[host.clone(), (header::ORIGIN, "http://127.0.0.1:7879")]),
            false
        ));
        assert!(!cross_site(
            &h(&[
                host.clone(),
                (header::REFERER, "http://127.0.0.1:7879/login?x")
            ]),
            false
        ));
        assert!(cross_site(
            &h(&[host.clone(), (header::ORIGIN, "https://evil.example")]),
            false
        ));
        assert!(cross_site(
            &h(&[host.clone(), (header::ORIGIN, "http://127.0.0.1:8000")]),
            false
        ));
        assert!(cross_site(&h(&[host, (header::ORIGIN, "null")]), false));
        assert!(!cross_site(
            &h(&[(header::HOST, "hub:443"), (header::ORIGIN, "https://hub")]),
            true
        ));
        assert!(cross_site(&h(&[(header::ORIGIN, "http://hub")]), false));
    }
}
