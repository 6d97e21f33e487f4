//! Connected clients, for the dashboard and the API.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

/// Roles a client has taken so far (bit flags).
pub mod role {
    /// Uploaded or downloaded files.
    pub const FILES: u8 = 1;
    /// Published a stream.
    pub const PUBLISHER: u8 = 2;
    /// Subscribed to a stream.
    pub const SUBSCRIBER: u8 = 4;
    /// Registered as a device.
    pub const DEVICE: u8 = 8;
    /// Sent commands or messages.
    pub const CONTROL: u8 = 16;
}

/// One connected client's live figures.
#[derive(Debug)]
pub struct ClientEntry {
    /// Connection number.
    pub id: u64,
    /// The name it gave in `Hello`.
    pub name: String,
    /// Its address.
    pub addr: String,
    /// Connected since, µs since the Unix epoch.
    pub since_us: i64,
    /// Bytes read from it.
    pub bytes_in: AtomicU64,
    /// Bytes written to it.
    pub bytes_out: AtomicU64,
    roles: AtomicU8,
}

impl ClientEntry {
    /// Adds a role.
    pub fn add_role(&self, r: u8) {
        self.roles.fetch_or(r, Relaxed);
    }

    /// Role names, e.g. `["publisher", "device"]`.
    pub fn roles(&self) -> Vec<&'static str> {
        let r = self.roles.load(Relaxed);
        [
            (role::FILES, "files"),
            (role::PUBLISHER, "publisher"),
            (role::SUBSCRIBER, "subscriber"),
            (role::DEVICE, "device"),
            (role::CONTROL, "control"),
        ]
        .into_iter()
        .filter(|(bit, _)| r & bit != 0)
        .map(|(_, n)| n)
        .collect()
    }
}

/// Every connected client.
#[derive(Default)]
pub struct ClientRegistry {
    clients: Mutex<HashMap<u64, Arc<ClientEntry>>>,
}

impl ClientRegistry {
    /// Adds a client; it stays listed until [`ClientRegistry::remove`].
    pub fn add(&self, id: u64, name: &str, addr: String, since_us: i64) -> Arc<ClientEntry> {
        let e = Arc::new(ClientEntry {
            id,
            name: name.to_owned(),
            addr,
            since_us,
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            roles: AtomicU8::new(0),
        });
        self.clients.lock().unwrap().insert(id, Arc::clone(&e));
        e
    }

    /// Removes a client.
    pub fn remove(&self, id: u64) {
        self.clients.lock().unwrap().remove(&id);
    }

    /// Connected clients, oldest first.
    pub fn list(&self) -> Vec<Arc<ClientEntry>> {
        let mut v: Vec<_> = self.clients.lock().unwrap().values().cloned().collect();
        v.sort_by_key(|c| (c.since_us, c.id));
        v
    }
}
