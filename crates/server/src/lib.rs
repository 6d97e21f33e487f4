//! The framewire hub as a library. [`HubBuilder`] takes a [`Config`] and the doors wanted (the
//! native port, plain or TLS; HTTP/HTTPS; raw TCP; UDP) and starts a [`RunningHub`] that owns every
//! listener and task until [`RunningHub::shutdown`]. The `framewire serve` command only turns
//! flags into a builder.
//!
//! ```no_run
//! # async fn run() -> Result<(), framewire_server::ServerError> {
//! use framewire_server::{Config, HubBuilder};
//!
//! let hub = HubBuilder::new(Config::new("./framewire-data"))
//!     .listen("127.0.0.1:7878")
//!     .http("127.0.0.1:7879")
//!     .start()
//!     .await?;
//! println!("native port {}", hub.addr());
//! hub.shutdown().await?;
//! # Ok(()) }
//! ```
//!
//! Inside: every connection passes one [`gate`] (connection budgets, deadlines, blocking-work
//! budgets, door identities); every upload passes one pipeline (`upload`) over a [`store::Storage`];
//! each door ([`doors`]) only translates its wire format.

pub mod auth;
mod builder;
pub mod clients;
mod config;
mod conn;
pub mod devices;
pub mod doors;
mod error;
pub mod events;
pub mod gate;
pub mod hooks;
pub mod receivers;
pub mod stats;
pub mod store;
pub mod streams;
pub mod tls;
mod untrusted;
mod upload;
pub mod web;

use std::sync::Arc;

pub use builder::{HubBuilder, Listener, RunningHub};
pub use config::Config;
pub use doors::legacy::{parse_legacy_flag, LegacyDoor, Profile as LegacyProfile};
pub use error::ServerError;
pub use gate::{Cidr, DoorPolicy};

/// State shared by every door and connection.
pub(crate) struct Hub {
    pub(crate) config: Config,
    pub(crate) storage: Arc<dyn store::Storage>,
    pub(crate) pipeline: Arc<upload::Pipeline>,
    pub(crate) gate: gate::Gate,
    pub(crate) stats: Arc<stats::Stats>,
    pub(crate) streams: streams::StreamHub,
    pub(crate) devices: devices::DeviceRegistry,
    pub(crate) clients: clients::ClientRegistry,
    pub(crate) events: Arc<events::EventLog>,
    pub(crate) receivers: receivers::Receivers,
    pub(crate) udp: doors::udp::UdpStats,
    next_conn: std::sync::atomic::AtomicU64,
}

impl Hub {
    pub(crate) fn next_conn_id(&self) -> u64 {
        self.next_conn
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1
    }
}

/// A cheap handle to a running hub's live state, for the HTTP side, the demo and tests.
#[derive(Clone)]
pub struct HubHandle(Arc<Hub>);

impl HubHandle {
    /// Hub-wide counters.
    pub fn stats(&self) -> &stats::Stats {
        &self.0.stats
    }

    /// Live streams.
    pub fn streams(&self) -> &streams::StreamHub {
        &self.0.streams
    }

    /// Connected devices and command routing.
    pub fn devices(&self) -> &devices::DeviceRegistry {
        &self.0.devices
    }

    /// Connected clients.
    pub fn clients(&self) -> &clients::ClientRegistry {
        &self.0.clients
    }

    /// The event log.
    pub fn events(&self) -> &events::EventLog {
        &self.0.events
    }

    /// The stored files.
    pub fn store(&self) -> &Arc<dyn store::Storage> {
        &self.0.storage
    }

    /// Counters of the UDP door.
    pub fn udp_stats(&self) -> &doors::udp::UdpStats {
        &self.0.udp
    }

    /// Cancelled when the hub begins to shut down: ends live MJPEG and WebSocket responses, which
    /// would otherwise hold graceful shutdown open forever.
    pub fn web_closing(&self) -> &tokio_util::sync::CancellationToken {
        &self.0.gate.stop
    }

    /// The settings the hub runs with.
    pub fn config(&self) -> &Config {
        &self.0.config
    }

    /// Connections admitted by the gate now, all doors together.
    pub fn open_connections(&self) -> usize {
        self.0.gate.open_connections()
    }

    pub(crate) fn hub(&self) -> &Arc<Hub> {
        &self.0
    }
}
