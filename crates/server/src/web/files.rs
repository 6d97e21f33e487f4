//! `GET /files/{path}` (with `Range` and `ETag`), `PUT /files/{path}` (same rules as the native
//! upload: path checks, BLAKE3, group commit, overwrite policy), `DELETE /files/{path}` (through
//! the same pipeline as the native `Delete`), and `GET /thumbs/{path}`.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use framewire_proto::{ErrorCode, RemotePath, StoredStatus};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::json;

use super::{content_type, AppError};
use crate::store::Refusal;
use crate::upload::{Admitted, Request, Uploader};
use crate::HubHandle;

/// Download buffers: large enough that throughput is not capped by the copy.
const READ_BUFFER: usize = 256 * 1024;

/// The peer's address when the server was started with connect info, over plain HTTP or HTTPS
/// (absent in `oneshot` tests).
pub(crate) struct Peer(pub(crate) Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let ext = &parts.extensions;
        Ok(Peer(ext.get::<ConnectInfo<SocketAddr>>().map(|c| c.0)))
    }
}

fn parse_path(path: &str) -> Result<RemotePath, AppError> {
    RemotePath::parse(path)
        .map_err(|e| AppError::new(StatusCode::BAD_REQUEST, format!("{path:?}: {e}")))
}

/// A single `bytes=` range, resolved against `size`: `Ok(None)` means "send everything".
fn parse_range(h: &str, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = h.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        // Several ranges: answering with the whole file is allowed and simpler.
        return Ok(None);
    }
    let (a, b) = spec.split_once('-').ok_or(())?;
    let (a, b) = (a.trim(), b.trim());
    let (start, end) = if a.is_empty() {
        let n: u64 = b.parse().map_err(|_| ())?;
        if n == 0 {
            return Err(());
        }
        (size.saturating_sub(n), size.checked_sub(1).ok_or(())?)
    } else {
        let start: u64 = a.parse().map_err(|_| ())?;
        let end = if b.is_empty() {
            size.saturating_sub(1)
        } else {
            b.parse::<u64>()
                .map_err(|_| ())?
                .min(size.saturating_sub(1))
        };
        (start, end)
    };
    if start >= size || start > end {
        return Err(());
    }
    Ok(Some((start, end)))
}

/// `GET /files/{path}`
pub(crate) async fn download(
    State(hub): State<HubHandle>,
    Path(path): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let rp = parse_path(&path)?;
    let store = std::sync::Arc::clone(hub.store());
    let p = rp.clone();
    let rec = hub
        .hub()
        .gate
        .work
        .disk(move || store.record(p.as_str()))
        .await??
        .ok_or_else(|| {
            AppError::from(Refusal::new(
                ErrorCode::NotFound,
                format!("no file stored at {rp}"),
            ))
        })?;
    let etag = format!("\"{}\"", hex::encode(rec.hash));
    let (ctype, inline) = content_type(&rec.path);
    let mut res = Response::builder()
        .header(header::ETAG, &etag)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CACHE_CONTROL, "no-cache")
        .header("x-content-type-options", "nosniff")
        .header("x-blake3", hex::encode(rec.hash));
    if let Some(inm) = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    {
        if inm.split(',').any(|t| t.trim() == etag || t.trim() == "*") {
            return Ok(res
                .status(StatusCode::NOT_MODIFIED)
                .body(Body::empty())
                .expect("valid response"));
        }
    }
    res = res.header(header::CONTENT_TYPE, ctype);
    if !inline {
        let name = rec
            .path
            .rsplit('/')
            .next()
            .unwrap_or("file")
            .replace(['"', '\\'], "_");
        res = res.header(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        );
    }
    let if_range_ok = headers
        .get(header::IF_RANGE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.trim() == etag);
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(h) if if_range_ok => match parse_range(h, rec.size) {
            Ok(r) => r,
            Err(()) => {
                return Ok(res
                    .status(StatusCode::RANGE_NOT_SATISFIABLE)
                    .header(header::CONTENT_RANGE, format!("bytes */{}", rec.size))
                    .body(Body::empty())
                    .expect("valid response"))
            }
        },
        _ => None,
    };
    let (status, start, len) = match range {
        Some((a, b)) => {
            res = res.header(header::CONTENT_RANGE, format!("bytes {a}-{b}/{}", rec.size));
            (StatusCode::PARTIAL_CONTENT, a, b - a + 1)
        }
        None => (StatusCode::OK, 0, rec.size),
    };
    let store = std::sync::Arc::clone(hub.store());
    let (reader, _) = hub
        .hub()
        .gate
        .work
        .disk(move || store.open_read(&rp, start))
        .await??;
    let body = Body::from_stream(read_stream(hub, reader, len));
    Ok(res
        .status(status)
        .header(header::CONTENT_LENGTH, len)
        .body(body)
        .expect("valid response"))
}

/// `len` bytes of `reader` as a body stream, read in [`READ_BUFFER`] pieces on the blocking pool
/// within the hub's disk budget.
fn read_stream(
    hub: HubHandle,
    reader: Box<dyn std::io::Read + Send>,
    len: u64,
) -> impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> {
    futures_util::stream::unfold(Some((reader, len)), move |state| {
        let hub = hub.clone();
        async move {
            let (mut reader, left) = state?;
            if left == 0 {
                return None;
            }
            let n = (left as usize).min(READ_BUFFER);
            let read = hub
                .hub()
                .gate
                .work
                .disk(move || {
                    let mut buf = vec![0u8; n];
                    std::io::Read::read_exact(&mut reader, &mut buf).map(|_| (reader, buf))
                })
                .await;
            match read {
                Ok(Ok((reader, buf))) => {
                    Some((Ok(bytes::Bytes::from(buf)), Some((reader, left - n as u64))))
                }
                Ok(Err(e)) => Some((Err(e), None)),
                Err(r) => Some((Err(std::io::Error::other(r.reason)), None)),
            }
        }
    })
}

#[derive(Deserialize, Default)]
pub(crate) struct PutQuery {
    #[serde(default)]
    overwrite: Option<String>,
}

fn truthy(v: Option<&str>) -> bool {
    matches!(
        v.map(str::to_ascii_lowercase).as_deref(),
        Some("1" | "true" | "yes" | "")
    )
}

fn status_name(s: StoredStatus) -> &'static str {
    match s {
        StoredStatus::New => "new",
        StoredStatus::Replaced => "replaced",
        StoredStatus::Unchanged => "unchanged",
    }
}

/// `PUT /files/{path}[?overwrite=1]`: stores the body (`curl -T file URL`) through the hub's
/// upload pipeline, like every other door. An `X-Blake3` header, if given, must match the body.
/// The answer carries the stored size and hash. With a `Content-Length`, the bytes received are
/// kept as a resumable partial if the hub shuts down before the body ends (the 503 says so, and
/// `framewire send` of the same file resumes from them).
pub(crate) async fn upload(
    State(hub): State<HubHandle>,
    Path(path): Path<String>,
    Query(q): Query<PutQuery>,
    Peer(peer): Peer,
    axum::Extension(who): axum::Extension<crate::auth::Identity>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, AppError> {
    let rp = parse_path(&path)?;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let expected = match headers.get("x-blake3").and_then(|v| v.to_str().ok()) {
        None => None,
        Some(h) => {
            let mut out = [0u8; 32];
            hex::decode_to_slice(h.trim(), &mut out).map_err(|_| {
                AppError::new(StatusCode::BAD_REQUEST, "X-Blake3 must be 64 hex digits")
            })?;
            Some(out)
        }
    };
    let overwrite = q.overwrite.is_some() && truthy(q.overwrite.as_deref())
        || truthy(headers.get("x-overwrite").and_then(|v| v.to_str().ok()));
    let uploader = http_uploader(peer, &who);
    let req = Request {
        path: rp.clone(),
        size: declared,
        overwrite,
        resume: false,
        identical_ok: true,
    };
    let pipeline = &hub.hub().pipeline;
    let mut upload = match pipeline.admit(&uploader, req, None).await? {
        Admitted::Upload(u) => u,
        Admitted::Existing(_) => unreachable!("resume is off"),
    };
    let abort = hub.hub().gate.abort.clone();
    let mut stream = body.into_data_stream();
    loop {
        let chunk = tokio::select! {
            c = stream.next() => c,
            _ = abort.cancelled() => {
                let kept = upload.received();
                upload.park().await;
                let what = if declared.is_some() && kept > 0 {
                    format!("{kept} bytes of {rp} are kept: send the file again with `framewire send` to resume")
                } else {
                    "nothing was kept".to_owned()
                };
                return Err(AppError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("the hub is shutting down; {what}"),
                ));
            }
        };
        match chunk {
            None => break,
            Some(Ok(c)) => upload.write(c).await?,
            Some(Err(e)) => {
                upload.park().await;
                return Err(AppError::new(
                    StatusCode::BAD_REQUEST,
                    format!("upload interrupted: {e}"),
                ));
            }
        }
    }
    let verified = upload.finish(expected).await.map_err(|r| match r.code {
        ErrorCode::HashMismatch => AppError::new(
            StatusCode::BAD_REQUEST,
            "body does not match its X-Blake3 hash; nothing was stored",
        ),
        ErrorCode::SizeMismatch => AppError::new(
            StatusCode::BAD_REQUEST,
            "body shorter than its Content-Length",
        ),
        _ => r.into(),
    })?;
    let hash = verified.hash();
    let stored = verified.commit_and_wait().await?;
    let code = if stored.status == StoredStatus::New {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut res = (
        code,
        Json(json!({ "path": rp.as_str(), "size": stored.size, "blake3": hex::encode(hash), "status": status_name(stored.status) })),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", hex::encode(hash))) {
        res.headers_mut().insert(header::ETAG, v);
    }
    Ok(res)
}

/// Who an HTTP request acts as: `NAME@IP` (NAME: the token's, or `http`) and its permissions.
fn http_uploader(peer: Option<SocketAddr>, who: &crate::auth::Identity) -> Uploader {
    let ip = peer
        .map(|p| p.ip().to_string())
        .unwrap_or_else(|| "local".into());
    let sender = if who.name.is_empty() {
        format!("http@{ip}")
    } else {
        format!("{}@{ip}", who.name)
    };
    Uploader {
        sender,
        perms: who.perms,
    }
}

/// `DELETE /files/{path}`: 200 with `{"path", "size"}` once the file is durably gone from disk
/// and listing; 404 if nothing is stored there, 409 while an upload to it is in progress.
pub(crate) async fn delete(
    State(hub): State<HubHandle>,
    Path(path): Path<String>,
    Peer(peer): Peer,
    axum::Extension(who): axum::Extension<crate::auth::Identity>,
) -> Result<Response, AppError> {
    let rp = parse_path(&path)?;
    let size = hub
        .hub()
        .pipeline
        .delete(&http_uploader(peer, &who), rp.clone())
        .await?;
    Ok(Json(json!({ "path": rp.as_str(), "size": size, "status": "deleted" })).into_response())
}

/// `GET /thumbs/{path}`: a small JPEG of a stored JPEG/PNG, made once and cached by content hash.
pub(crate) async fn thumbnail(
    State(hub): State<HubHandle>,
    Path(path): Path<String>,
) -> Result<Response, AppError> {
    let rp = parse_path(&path)?;
    if !super::is_image(rp.as_str()) {
        return Err(AppError::not_found(format!("thumbnail of {rp}")));
    }
    let store = std::sync::Arc::clone(hub.store());
    let memory = hub.hub().gate.memory.clone();
    let jpeg = hub
        .hub()
        .gate
        .work
        .image(move || crate::store::thumbnail(&*store, &rp, &memory))
        .await?
        .map_err(|r| match r.code {
            // Only the memory budget answers Busy here: come back later.
            framewire_proto::ErrorCode::Busy => {
                AppError::new(axum::http::StatusCode::SERVICE_UNAVAILABLE, r.reason)
            }
            _ => AppError::from(r),
        })?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/jpeg"),
            (header::CACHE_CONTROL, "max-age=60"),
        ],
        jpeg,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Ok(Some((0, 9))));
        assert_eq!(parse_range("bytes=90-", 100), Ok(Some((90, 99))));
        assert_eq!(parse_range("bytes=-10", 100), Ok(Some((90, 99))));
        assert_eq!(parse_range("bytes=50-500", 100), Ok(Some((50, 99))));
        assert_eq!(parse_range("bytes=0-0,5-6", 100), Ok(None));
        assert_eq!(parse_range("items=1-2", 100), Ok(None));
        assert_eq!(parse_range("bytes=100-", 100), Err(()));
        assert_eq!(parse_range("bytes=9-3", 100), Err(()));
        assert_eq!(parse_range("bytes=-0", 100), Err(()));
        assert_eq!(parse_range("bytes=x-3", 100), Err(()));
    }
}
