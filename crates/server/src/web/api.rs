//! JSON endpoints: clients, streams, files, devices, commands.

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use bytes::Bytes;
use framewire_proto::ReplyStatus;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{is_image, AppError};
use crate::conn::now_us;
use crate::streams::StreamSnapshot;
use crate::HubHandle;

/// `GET /api/clients`
pub(crate) async fn clients(
    State(hub): State<HubHandle>,
    axum::Extension(who): axum::Extension<crate::auth::Identity>,
) -> Json<Value> {
    Json(Value::Array(clients_json(&hub, &who)))
}

/// The connected clients; their addresses only for a token that may administer the hub.
pub(crate) fn clients_json(hub: &HubHandle, who: &crate::auth::Identity) -> Vec<Value> {
    use std::sync::atomic::Ordering::Relaxed;
    let admin = who.perms.allows(crate::auth::Perms::ADMIN);
    hub.clients()
        .list()
        .iter()
        .map(|c| {
            let mut v = json!({
                "id": c.id,
                "name": c.name,
                "roles": c.roles(),
                "since_us": c.since_us,
                "bytes_in": c.bytes_in.load(Relaxed),
                "bytes_out": c.bytes_out.load(Relaxed),
            });
            if admin {
                v["addr"] = json!(c.addr);
            }
            v
        })
        .collect()
}

fn ms_pair(p: Option<(u64, u64)>) -> Value {
    match p {
        Some((p50, p99)) => json!({ "p50": p50 as f64 / 1000.0, "p99": p99 as f64 / 1000.0 }),
        None => Value::Null,
    }
}

pub(crate) fn stream_json(s: &StreamSnapshot) -> Value {
    let (seq, width, height, format) = s.last.unwrap_or((0, 0, 0, 0));
    json!({
        "name": s.name,
        "fps_in": (s.fps_in * 10.0).round() / 10.0,
        "fps_out": (s.fps_out * 10.0).round() / 10.0,
        "frames_in": s.frames_in,
        "frames_out": s.frames_out,
        "bytes_in": s.bytes_in,
        "bytes_out": s.bytes_out,
        "dropped_late": s.dropped_late,
        "skipped": s.skipped,
        "publisher_skipped": s.publisher_skipped,
        "publishers": s.publishers,
        "subscribers": s.subscribers,
        "latency_to_hub_ms": ms_pair(s.latency_to_hub_us),
        "latency_to_subscriber_ms": ms_pair(s.latency_to_subscriber_us),
        "seq": seq,
        "width": width,
        "height": height,
        "format": format,
    })
}

/// `GET /api/streams`
pub(crate) async fn streams(State(hub): State<HubHandle>) -> Json<Value> {
    Json(Value::Array(
        hub.streams()
            .snapshots(now_us())
            .iter()
            .map(stream_json)
            .collect(),
    ))
}

#[derive(Deserialize)]
pub(crate) struct FilesQuery {
    #[serde(default)]
    prefix: String,
    #[serde(default)]
    sender: String,
    #[serde(default)]
    after: String,
    limit: Option<usize>,
}

/// `GET /api/files?prefix=&sender=&limit=&after=`: one page, and the `after` of the next.
pub(crate) async fn files(
    State(hub): State<HubHandle>,
    Query(q): Query<FilesQuery>,
) -> Result<Json<Value>, AppError> {
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let store = std::sync::Arc::clone(hub.store());
    let (records, more) = hub
        .hub()
        .gate
        .work
        .disk(move || store.list(&q.prefix, &q.after, &q.sender, limit))
        .await??;
    let next = if more {
        records.last().map(|r| r.path.clone())
    } else {
        None
    };
    let files: Vec<Value> = records
        .iter()
        .map(|r| {
            json!({
                "path": r.path,
                "size": r.size,
                "blake3": hex::encode(r.hash),
                "sender": r.sender,
                "stored_us": r.stored_us,
                "image": is_image(&r.path),
            })
        })
        .collect();
    Ok(Json(json!({ "files": files, "next_after": next })))
}

/// `GET /api/devices`
pub(crate) async fn devices(State(hub): State<HubHandle>) -> Json<Value> {
    let list: Vec<Value> = hub
        .devices()
        .list()
        .into_iter()
        .map(|d| json!({ "name": d.name, "since_us": d.since_us, "peer": d.peer }))
        .collect();
    Json(Value::Array(list))
}

#[derive(Deserialize)]
pub(crate) struct CommandBody {
    command: String,
    #[serde(default)]
    args: Vec<String>,
    /// Overrides the hub's command timeout (milliseconds), capped at 60 s.
    timeout_ms: Option<u64>,
}

pub(crate) fn status_name(s: ReplyStatus) -> &'static str {
    match s {
        ReplyStatus::Ok => "ok",
        ReplyStatus::Failed => "failed",
        ReplyStatus::UnknownDevice => "unknown_device",
        ReplyStatus::UnknownCommand => "unknown_command",
        ReplyStatus::Timeout => "timeout",
    }
}

/// `POST /api/devices/{name}/commands` with `{"command": "...", "args": [...]}`: the device's reply.
pub(crate) async fn command(
    State(hub): State<HubHandle>,
    Path(name): Path<String>,
    Json(body): Json<CommandBody>,
) -> (StatusCode, Json<Value>) {
    let timeout = body
        .timeout_ms
        .map(|ms| Duration::from_millis(ms.min(60_000)))
        .unwrap_or(hub.config().command_timeout);
    let args = body.args.clone();
    let o = hub
        .devices()
        .call(&name, &body.command, body.args, timeout)
        .await;
    hub.events()
        .command("http", &name, &body.command, &args, &o);
    let status = match o.status {
        ReplyStatus::Ok => StatusCode::OK,
        ReplyStatus::Failed => StatusCode::BAD_GATEWAY,
        ReplyStatus::UnknownDevice => StatusCode::NOT_FOUND,
        ReplyStatus::UnknownCommand => StatusCode::BAD_REQUEST,
        ReplyStatus::Timeout => StatusCode::GATEWAY_TIMEOUT,
    };
    (
        status,
        Json(
            json!({ "device": name, "status": status_name(o.status), "reply": reply_text(&o.body) }),
        ),
    )
}

fn reply_text(b: &Bytes) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `GET /api/events`: the recent event log (oldest first), as the dashboard's log shows it.
pub(crate) async fn events(State(hub): State<HubHandle>) -> Json<Value> {
    let (history, _) = hub.events().subscribe();
    Json(Value::Array(
        history
            .iter()
            .map(|e| json!({ "time_us": e.time_us, "kind": e.kind, "client": e.client, "text": e.text, "fields": crate::events::fields_json(e) }))
            .collect(),
    ))
}
