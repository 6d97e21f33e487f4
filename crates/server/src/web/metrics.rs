//! `GET /metrics`: Prometheus text exposition format (version 0.0.4).

use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::streams::{LatencyHistogram, LATENCY_BUCKETS_US};
use crate::HubHandle;

/// Escapes a label value: backslash, double quote and newline.
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn histogram(out: &mut String, name: &str, stream: &str, h: &LatencyHistogram) {
    let mut cumulative = 0;
    for (i, bound) in LATENCY_BUCKETS_US.iter().enumerate() {
        cumulative += h.buckets[i].load(Relaxed);
        let _ = writeln!(
            out,
            "{name}_bucket{{stream=\"{}\",le=\"{}\"}} {cumulative}",
            esc(stream),
            *bound as f64 / 1e6
        );
    }
    let count = h.count.load(Relaxed);
    let _ = writeln!(
        out,
        "{name}_bucket{{stream=\"{}\",le=\"+Inf\"}} {count}",
        esc(stream)
    );
    let _ = writeln!(
        out,
        "{name}_sum{{stream=\"{}\"}} {}",
        esc(stream),
        h.sum_us.load(Relaxed) as f64 / 1e6
    );
    let _ = writeln!(out, "{name}_count{{stream=\"{}\"}} {count}", esc(stream));
}

/// A per-stream metric: name, help, and how to read it.
type PerStream = (
    &'static str,
    &'static str,
    fn(&crate::streams::Stream) -> u64,
);

/// Renders every metric.
pub(crate) fn render(hub: &HubHandle) -> String {
    let s = hub.stats();
    let mut o = String::new();
    let simple = [
        (
            "framewire_connections",
            "gauge",
            "Native protocol connections open now.",
            s.connections_open.load(Relaxed),
        ),
        (
            "framewire_connections_total",
            "counter",
            "Native protocol connections accepted.",
            s.connections_total.load(Relaxed),
        ),
        (
            "framewire_received_bytes_total",
            "counter",
            "Bytes read from native clients.",
            s.bytes_in.load(Relaxed),
        ),
        (
            "framewire_sent_bytes_total",
            "counter",
            "Bytes written to native clients.",
            s.bytes_out.load(Relaxed),
        ),
        (
            "framewire_files_stored",
            "gauge",
            "Files in the store.",
            s.files_stored.load(Relaxed),
        ),
        (
            "framewire_stored_bytes",
            "gauge",
            "Bytes in the store.",
            s.bytes_stored.load(Relaxed),
        ),
        (
            "framewire_uploads_total",
            "counter",
            "Uploads committed (new or replaced).",
            s.uploads_committed.load(Relaxed),
        ),
        (
            "framewire_uploads_unchanged_total",
            "counter",
            "Uploads of files already stored.",
            s.uploads_unchanged.load(Relaxed),
        ),
        (
            "framewire_memory_buffered_bytes",
            "gauge",
            "Payload bytes held against the memory budget now (bodies being read, queued messages, live frames, image decodes).",
            hub.hub().gate.memory.used() as u64,
        ),
        (
            "framewire_memory_budget_bytes",
            "gauge",
            "The memory budget for buffered payload (--max-memory).",
            hub.hub().gate.memory.total() as u64,
        ),
        (
            "framewire_files_deleted_total",
            "counter",
            "Stored files deleted by clients.",
            s.files_deleted.load(Relaxed),
        ),
        (
            "framewire_files_expired_total",
            "counter",
            "Stored files removed by the retention rules (--keep, --keep-size).",
            s.files_expired.load(Relaxed),
        ),
    ];
    for (name, kind, help, v) in simple {
        family(&mut o, name, kind, help);
        let _ = writeln!(o, "{name} {v}");
    }
    family(
        &mut o,
        "framewire_upload_failures_total",
        "counter",
        "Uploads refused, by reason.",
    );
    for (reason, n) in s.upload_failures() {
        let _ = writeln!(
            o,
            "framewire_upload_failures_total{{reason=\"{}\"}} {n}",
            esc(reason)
        );
    }
    let streams = hub.streams().all();
    let per_stream: [PerStream; 6] = [
        (
            "framewire_stream_frames_in_total",
            "Frames accepted from publishers.",
            |s| s.frames_in.load(Relaxed),
        ),
        (
            "framewire_stream_frames_out_total",
            "Frames sent to subscribers.",
            |s| s.frames_out.load(Relaxed),
        ),
        (
            "framewire_stream_bytes_in_total",
            "Frame bytes accepted from publishers.",
            |s| s.bytes_in.load(Relaxed),
        ),
        (
            "framewire_stream_bytes_out_total",
            "Frame bytes sent to subscribers.",
            |s| s.bytes_out.load(Relaxed),
        ),
        (
            "framewire_stream_frames_skipped_total",
            "Frames superseded before a subscriber was ready.",
            |s| s.skipped.load(Relaxed),
        ),
        ("framewire_stream_subscribers", "Subscribers now.", |s| {
            s.subscribers.load(Relaxed)
        }),
    ];
    for (name, help, get) in per_stream {
        family(
            &mut o,
            name,
            if name.ends_with("_total") {
                "counter"
            } else {
                "gauge"
            },
            help,
        );
        for st in &streams {
            let _ = writeln!(o, "{name}{{stream=\"{}\"}} {}", esc(st.name()), get(st));
        }
    }
    family(
        &mut o,
        "framewire_stream_frames_dropped_total",
        "counter",
        "Frames dropped, by reason.",
    );
    for st in &streams {
        let _ = writeln!(
            o,
            "framewire_stream_frames_dropped_total{{stream=\"{}\",reason=\"late\"}} {}",
            esc(st.name()),
            st.dropped_late.load(Relaxed)
        );
        let _ = writeln!(o, "framewire_stream_frames_dropped_total{{stream=\"{}\",reason=\"publisher_skipped\"}} {}", esc(st.name()), st.publisher_skipped.load(Relaxed));
    }
    family(
        &mut o,
        "framewire_stream_capture_to_hub_seconds",
        "histogram",
        "Capture to arrival at the hub.",
    );
    for st in &streams {
        histogram(
            &mut o,
            "framewire_stream_capture_to_hub_seconds",
            st.name(),
            &st.hist_to_hub,
        );
    }
    family(
        &mut o,
        "framewire_stream_capture_to_subscriber_seconds",
        "histogram",
        "Capture to sending to a subscriber.",
    );
    for st in &streams {
        histogram(
            &mut o,
            "framewire_stream_capture_to_subscriber_seconds",
            st.name(),
            &st.hist_to_subscriber,
        );
    }
    family(
        &mut o,
        "framewire_http_requests_total",
        "counter",
        "HTTP responses, by status code.",
    );
    for (code, n) in s.http_responses() {
        let _ = writeln!(o, "framewire_http_requests_total{{status=\"{code}\"}} {n}");
    }
    family(
        &mut o,
        "framewire_udp_datagrams_total",
        "counter",
        "UDP datagrams, by outcome: accepted (text or frame), ignored (malformed, oversized, or a type UDP does not carry), refused (address or permission), invalid_utf8 (plain text that is not UTF-8).",
    );
    let udp = hub.udp_stats();
    for (outcome, n) in [
        ("accepted", &udp.accepted),
        ("ignored", &udp.ignored),
        ("refused", &udp.refused),
        ("invalid_utf8", &udp.invalid_utf8),
    ] {
        let _ = writeln!(
            o,
            "framewire_udp_datagrams_total{{outcome=\"{outcome}\"}} {}",
            n.load(Relaxed)
        );
    }
    o
}

/// `GET /metrics`
pub(crate) async fn metrics(State(hub): State<HubHandle>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        render(&hub),
    )
}
