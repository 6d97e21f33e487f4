//! The hub's event log: files stored, texts, devices and streams coming and going, commands and
//! their replies, connections. Each event is structured where it happens (named fields for
//! programs, a line for people) and the same event feeds the dashboard's log and WebSocket,
//! native followers (`Follow`), the `--on-upload`/`--on-message` hooks and MQTT.
//!
//! Delivery never waits for a listener: events go into a bounded broadcast ring; a listener that
//! falls behind loses the oldest and is told how many it lost.

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::broadcast;

use crate::devices::CommandOutcome;

/// How many past events a new listener of the dashboard gets.
const HISTORY: usize = 200;
/// Events a listener may fall behind before it loses the oldest.
const RING: usize = 1024;
/// Longest text (bytes) carried in an event's fields for programs: whole texts up to this, so an
/// event always fits a `str16` whatever the hub's payload limit.
pub const FIELD_BYTES: usize = 60_000;

/// One thing that happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// When, µs since the Unix epoch.
    pub time_us: i64,
    /// What kind: `stored`, `reject`, `delete`, `expire`, `message`, `command`, `device`,
    /// `stream`, `connect`, `disconnect`.
    pub kind: &'static str,
    /// Who (client name and address).
    pub client: String,
    /// Details for people (bounded, for the dashboard).
    pub text: String,
    /// Details for programs, in a fixed order per kind (see docs/PROTOCOL.md, "Events").
    pub fields: Vec<(&'static str, String)>,
}

impl Event {
    /// The value of field `name`, if present.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Cuts `s` to at most [`FIELD_BYTES`] bytes, at a character boundary.
fn field_text(s: &str) -> String {
    if s.len() <= FIELD_BYTES {
        return s.to_owned();
    }
    let mut end = FIELD_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

/// Broadcast of events plus a short history.
pub struct EventLog {
    tx: broadcast::Sender<Event>,
    history: Mutex<VecDeque<Event>>,
}

impl Default for EventLog {
    fn default() -> Self {
        EventLog {
            tx: broadcast::channel(RING).0,
            history: Mutex::new(VecDeque::with_capacity(HISTORY)),
        }
    }
}

impl EventLog {
    /// Records an event of `kind` with a line for people and no fields beyond `text`.
    pub fn emit(&self, kind: &'static str, client: &str, text: impl Into<String>) {
        let text = text.into();
        let fields = match kind {
            // A text from a tokenless door (UDP): a message to nobody in particular.
            "message" => vec![
                ("from", client.to_owned()),
                ("to", String::new()),
                ("text", field_text(&text)),
            ],
            _ => vec![("text", field_text(&text))],
        };
        self.record(kind, client, &text, fields);
    }

    /// Records an event: `text` for people (bounded and escaped for the dashboard), `fields` for
    /// programs.
    pub fn record(
        &self,
        kind: &'static str,
        client: &str,
        text: &str,
        fields: Vec<(&'static str, String)>,
    ) {
        let e = Event {
            time_us: crate::conn::now_us(),
            kind,
            client: client.to_owned(),
            text: crate::untrusted::bounded(text, crate::untrusted::EVENT_CHARS),
            fields,
        };
        {
            let mut h = self.history.lock().unwrap();
            if h.len() == HISTORY {
                h.pop_front();
            }
            h.push_back(e.clone());
        }
        let _ = self.tx.send(e);
    }

    /// A file was stored (new or replaced).
    pub fn stored(&self, sender: &str, path: &str, size: u64, hash: &[u8; 32]) {
        self.record(
            "stored",
            sender,
            &format!("stored {path} ({size} bytes)"),
            vec![
                ("path", path.to_owned()),
                ("size", size.to_string()),
                ("hash", hex(hash)),
                ("sender", sender.to_owned()),
            ],
        );
    }

    /// A text from `from`, to the receiver `to` (empty: to the hub).
    pub fn message(&self, client: &str, from: &str, to: &str, text: &str) {
        let line = if to.is_empty() {
            text.to_owned()
        } else {
            format!("to {to}: {text}")
        };
        self.record(
            "message",
            client,
            &line,
            vec![
                ("from", from.to_owned()),
                ("to", to.to_owned()),
                ("text", field_text(text)),
            ],
        );
    }

    /// Device `name` came online or went offline.
    pub fn device(&self, client: &str, name: &str, online: bool) {
        let state = if online { "online" } else { "offline" };
        let line = if online {
            format!("registered as device {name}")
        } else {
            format!("device {name} offline")
        };
        self.record(
            "device",
            client,
            &line,
            vec![("name", name.to_owned()), ("state", state.into())],
        );
    }

    /// Stream `name` got a publisher, or lost it.
    pub fn stream(&self, client: &str, name: &str, started: bool) {
        let state = if started { "started" } else { "stopped" };
        let line = if started {
            format!("publishing {name}")
        } else {
            format!("stopped publishing {name}")
        };
        self.record(
            "stream",
            client,
            &line,
            vec![("name", name.to_owned()), ("state", state.into())],
        );
    }

    /// A command and its outcome.
    pub fn command(
        &self,
        from: &str,
        device: &str,
        command: &str,
        args: &[String],
        o: &CommandOutcome,
    ) {
        let line = std::iter::once(command)
            .chain(args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ");
        let reply = String::from_utf8_lossy(&o.body);
        self.record(
            "command",
            from,
            &format!("{device} {line} → {:?}: {reply}", o.status),
            vec![
                ("from", from.to_owned()),
                ("device", device.to_owned()),
                ("command", field_text(&line)),
                ("status", format!("{:?}", o.status)),
                ("reply", field_text(&reply)),
            ],
        );
    }

    /// Past events (oldest first) and a receiver for the ones to come.
    pub fn subscribe(&self) -> (Vec<Event>, broadcast::Receiver<Event>) {
        let h = self.history.lock().unwrap();
        (h.iter().cloned().collect(), self.tx.subscribe())
    }

    /// A receiver for the events to come (no history): a follower, a hook runner, MQTT.
    pub fn follow(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}

/// An event's fields as one JSON object (the dashboard's API, `framewire events --json`, MQTT).
pub fn fields_json(e: &Event) -> serde_json::Value {
    serde_json::Value::Object(
        e.fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), serde_json::Value::String(v.clone())))
            .collect(),
    )
}

/// Lower-case hex of a hash.
pub(crate) fn hex(h: &[u8; 32]) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

/// What a follower asked for: event kinds (empty: all) and a path prefix (events with a `path`
/// field must start with it).
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Kinds wanted; empty for all.
    pub kinds: Vec<String>,
    /// Path prefix; empty for all.
    pub prefix: String,
}

impl EventFilter {
    /// Whether `e` passes.
    pub fn passes(&self, e: &Event) -> bool {
        if !self.kinds.is_empty() && !self.kinds.iter().any(|k| k == e.kind) {
            return false;
        }
        match e.field("path") {
            Some(p) => p.starts_with(&self.prefix),
            None => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slow_listener_loses_the_oldest_and_is_told_how_many() {
        let log = EventLog::default();
        let mut rx = log.follow();
        for i in 0..RING + 5 {
            log.emit("connect", "c", format!("{i}"));
        }
        match rx.try_recv() {
            Err(broadcast::error::TryRecvError::Lagged(n)) => assert_eq!(n, 5),
            other => panic!("expected Lagged, got {other:?}"),
        }
        assert_eq!(rx.try_recv().unwrap().text, "5");
    }

    #[test]
    fn filter_by_kind_and_path_prefix() {
        let log = EventLog::default();
        let mut rx = log.follow();
        log.stored("cam@1.2.3.4", "photos/a.jpg", 5, &[0xab; 32]);
        log.stored("cam@1.2.3.4", "logs/b.txt", 1, &[0; 32]);
        log.message("x", "x", "", "hi");
        let f = EventFilter {
            kinds: vec!["stored".into()],
            prefix: "photos/".into(),
        };
        let passed: Vec<Event> = std::iter::from_fn(|| rx.try_recv().ok())
            .filter(|e| f.passes(e))
            .collect();
        assert_eq!(passed.len(), 1);
        assert_eq!(passed[0].field("path"), Some("photos/a.jpg"));
        assert_eq!(passed[0].field("hash"), Some("ab".repeat(32).as_str()));
        assert_eq!(passed[0].field("size"), Some("5"));
    }

    #[test]
    fn long_texts_are_cut_for_programs_and_more_for_people() {
        let log = EventLog::default();
        let mut rx = log.follow();
        let long = "é".repeat(40_000);
        log.message("x", "x", "y", &long);
        let e = rx.try_recv().unwrap();
        assert!(e.field("text").unwrap().len() <= FIELD_BYTES);
        assert!(e.text.chars().count() < 1100);
    }
}
