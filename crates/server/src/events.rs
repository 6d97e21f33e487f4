//! The hub's event log: connections, uploads, messages, commands. Kept as a short history for
//! newcomers (the dashboard's log) and broadcast live to whoever listens (the WebSocket).

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::broadcast;

/// How many past events a new listener gets.
const HISTORY: usize = 200;

/// One thing that happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// When, µs since the Unix epoch.
    pub time_us: i64,
    /// What kind: `connect`, `disconnect`, `upload`, `reject`, `delete`, `expire`, `message`,
    /// `command`, `device`, `stream`.
    pub kind: &'static str,
    /// Who (client name and address).
    pub client: String,
    /// Details for people.
    pub text: String,
}

/// Broadcast of events plus a short history.
pub struct EventLog {
    tx: broadcast::Sender<Event>,
    history: Mutex<VecDeque<Event>>,
}

impl Default for EventLog {
    fn default() -> Self {
        EventLog {
            tx: broadcast::channel(1024).0,
            history: Mutex::new(VecDeque::with_capacity(HISTORY)),
        }
    }
}

impl EventLog {
    /// Records an event (and logs it).
    pub fn emit(&self, kind: &'static str, client: &str, text: impl Into<String>) {
        let e = Event {
            time_us: crate::conn::now_us(),
            kind,
            client: client.to_owned(),
            text: crate::untrusted::bounded(&text.into(), crate::untrusted::EVENT_CHARS),
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

    /// Past events (oldest first) and a receiver for the ones to come.
    pub fn subscribe(&self) -> (Vec<Event>, broadcast::Receiver<Event>) {
        let h = self.history.lock().unwrap();
        (h.iter().cloned().collect(), self.tx.subscribe())
    }
}
