//! Live video over HTTP: `GET /streams/{name}.mjpeg`, `GET /streams/{name}/latest.jpg`, and the
//! `GET /ws` event socket.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use framewire_proto::frame_format;
use futures_util::{stream, SinkExt, StreamExt};
use serde_json::{json, Value};

use super::api::stream_json;
use super::AppError;
use crate::conn::now_us;
use crate::streams::Stream;
use crate::HubHandle;

/// Multipart boundary of MJPEG responses.
const BOUNDARY: &str = "framewireframe";

/// Keeps a stream's subscriber count right for as long as an HTTP viewer watches.
struct Viewer {
    stream: Arc<Stream>,
    last_seq: Option<u64>,
    closing: tokio_util::sync::CancellationToken,
}

/// Whether a frame may be served as `image/jpeg`: it says it is one and starts like one (SOI and
/// the next marker). A publisher's other bytes (HTML, say) must never reach a browser under an
/// image type.
fn is_jpeg(format: u8, payload: &[u8]) -> bool {
    format == frame_format::JPEG && payload.starts_with(&[0xff, 0xd8, 0xff])
}

/// How long an MJPEG response may go without a frame before the last one is sent again.
const MJPEG_KEEPALIVE: Duration = Duration::from_secs(5);

impl Drop for Viewer {
    fn drop(&mut self) {
        self.stream.subscribers.fetch_sub(1, Relaxed);
    }
}

/// `GET /streams/{name}.mjpeg`: `multipart/x-mixed-replace`, newest frame first for each viewer.
/// The next frame is taken only when the previous one has been handed to the socket, so a slow
/// viewer skips frames instead of queueing them.
pub(crate) async fn mjpeg(
    State(hub): State<HubHandle>,
    Path(file): Path<String>,
) -> Result<Response, AppError> {
    let Some(name) = file.strip_suffix(".mjpeg") else {
        return Err(AppError::not_found(format!("/streams/{file}")));
    };
    let stream = hub
        .streams()
        .get(name)
        .ok_or_else(|| AppError::not_found(format!("stream {name:?}")))?;
    let limit = hub.config().max_subscribers_per_stream;
    if stream.subscribers.load(Relaxed) as usize >= limit {
        return Err(AppError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            format!("stream {name:?} already has {limit} viewers, the most it may have"),
        ));
    }
    stream.subscribers.fetch_add(1, Relaxed);
    let mut rx = stream.watch();
    if rx.borrow().is_some() {
        rx.mark_changed();
    }
    let viewer = Viewer {
        stream,
        last_seq: None,
        closing: hub.web_closing().clone(),
    };
    let parts = stream::unfold((rx, viewer), |(mut rx, mut viewer)| async move {
        loop {
            // A quiet stream repeats its last frame now and then: a viewer that went away is only
            // noticed when writing to it, and proxies drop silent responses.
            let repeat = tokio::select! {
                r = rx.changed() => {
                    r.ok()?;
                    false
                }
                _ = tokio::time::sleep(MJPEG_KEEPALIVE) => true,
                _ = viewer.closing.cancelled() => return None,
            };
            let Some(f) = rx.borrow_and_update().clone() else { continue };
            if !is_jpeg(f.frame.format, &f.frame.payload) || (repeat && viewer.last_seq.is_none()) {
                continue;
            }
            if !repeat {
                let skipped = match viewer.last_seq {
                    Some(p) if f.frame.seq > p => f.frame.seq - p - 1,
                    _ => 0,
                };
                viewer.last_seq = Some(f.frame.seq);
                viewer.stream.delivered(&f, now_us(), skipped);
            }
            let head = format!(
                "--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\nX-Frame-Seq: {}\r\n\r\n",
                f.frame.payload.len(),
                f.frame.seq
            );
            let chunks = [Bytes::from(head), f.frame.payload.clone(), Bytes::from_static(b"\r\n")];
            return Some((chunks, (rx, viewer)));
        }
    })
    .flat_map(|chunks| stream::iter(chunks.into_iter().map(Ok::<_, std::convert::Infallible>)));
    Ok((
        [
            (
                header::CONTENT_TYPE,
                format!("multipart/x-mixed-replace; boundary={BOUNDARY}"),
            ),
            (header::CACHE_CONTROL, "no-cache, no-store".to_owned()),
            (header::PRAGMA, "no-cache".to_owned()),
            (
                header::HeaderName::from_static("x-accel-buffering"),
                "no".to_owned(),
            ),
        ],
        Body::from_stream(parts),
    )
        .into_response())
}

/// `GET /streams/{name}/latest.jpg`: the newest frame, as is, if it is a JPEG (415 if not).
pub(crate) async fn latest(
    State(hub): State<HubHandle>,
    Path(name): Path<String>,
) -> Result<Response, AppError> {
    let stream = hub
        .streams()
        .get(&name)
        .ok_or_else(|| AppError::not_found(format!("stream {name:?}")))?;
    let f = stream.latest().ok_or_else(|| {
        AppError::new(
            StatusCode::NOT_FOUND,
            format!("stream {name:?} has no frame yet"),
        )
    })?;
    if !is_jpeg(f.frame.format, &f.frame.payload) {
        return Err(AppError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("the newest frame of stream {name:?} is not a JPEG"),
        ));
    }
    Ok((
        [
            (header::CONTENT_TYPE, "image/jpeg".to_owned()),
            (header::CACHE_CONTROL, "no-store".to_owned()),
            (
                header::HeaderName::from_static("x-frame-seq"),
                f.frame.seq.to_string(),
            ),
            (
                header::HeaderName::from_static("x-capture-us"),
                f.frame.capture_us.to_string(),
            ),
        ],
        f.frame.payload.clone(),
    )
        .into_response())
}

/// Largest WebSocket message (and frame) the hub reads from a browser.
const MAX_WS_MESSAGE: usize = 64 * 1024;

/// `GET /ws`: JSON messages: `{"type":"event",...}` (the recent history first, then live) and,
/// once a second, `{"type":"stats","streams":[...],"clients":[...],"devices":[...]}`.
/// `GET /ws`: the event log (history, then live) and a stats message every second. Events go
/// only to a token that may read `/api/events` too (download); stats to any subscriber.
pub(crate) async fn websocket(
    State(hub): State<HubHandle>,
    axum::Extension(who): axum::Extension<crate::auth::Identity>,
    ws: WebSocketUpgrade,
) -> Response {
    // The dashboard sends nothing but small control messages: a large one is refused before it
    // is buffered.
    ws.max_message_size(MAX_WS_MESSAGE)
        .max_frame_size(MAX_WS_MESSAGE)
        .on_upgrade(move |socket| events_socket(hub, who, socket))
}

fn event_json(e: &crate::events::Event) -> Value {
    json!({ "type": "event", "time_us": e.time_us, "kind": e.kind, "client": e.client, "text": e.text, "fields": crate::events::fields_json(e) })
}

fn stats_json(hub: &HubHandle, who: &crate::auth::Identity) -> Value {
    let clients = super::api::clients_json(hub, who);
    let devices: Vec<Value> = hub
        .devices()
        .list()
        .into_iter()
        .map(|d| json!({ "name": d.name, "since_us": d.since_us, "peer": d.peer }))
        .collect();
    let s = hub.stats();
    json!({
        "type": "stats",
        "time_us": now_us(),
        "streams": hub.streams().snapshots(now_us()).iter().map(stream_json).collect::<Vec<_>>(),
        "clients": clients,
        "devices": devices,
        "files_stored": s.files_stored.load(Relaxed),
        "bytes_stored": s.bytes_stored.load(Relaxed),
    })
}

async fn events_socket(hub: HubHandle, who: crate::auth::Identity, socket: WebSocket) {
    let (mut tx, mut rx) = socket.split();
    let events_allowed = who.perms.allows(crate::auth::Perms::DOWNLOAD);
    let (history, mut live) = hub.events().subscribe();
    let history = if events_allowed { history } else { Vec::new() };
    for e in &history {
        if tx
            .send(WsMessage::Text(event_json(e).to_string().into()))
            .await
            .is_err()
        {
            return;
        }
    }
    if tx
        .send(WsMessage::Text(stats_json(&hub, &who).to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let closing = hub.web_closing().clone();
    loop {
        let msg = tokio::select! {
            _ = closing.cancelled() => {
                let _ = tx.send(WsMessage::Close(None)).await;
                return;
            }
            e = live.recv(), if events_allowed => match e {
                Ok(e) => event_json(&e),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    json!({ "type": "event", "time_us": now_us(), "kind": "lagged", "client": "hub", "text": format!("{n} events skipped") })
                }
                Err(_) => return,
            },
            _ = tick.tick() => stats_json(&hub, &who),
            m = rx.next() => match m {
                Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => continue,
            },
        };
        if tx
            .send(WsMessage::Text(msg.to_string().into()))
            .await
            .is_err()
        {
            return;
        }
    }
}
