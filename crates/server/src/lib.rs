//! The framewire hub as a library: [`Server::open`] a data folder, then [`Server::serve`] a
//! listener (or [`Server::serve_listeners`] several, plain TCP or [`tls`]) until a shutdown future
//! resolves. The `framewire serve` command is a thin wrapper.
//!
//! Inside: one task per connection ([`conn`]), a durable [`store`] with a group committer, and
//! shared counters ([`stats`]).

pub mod auth;
pub mod clients;
mod config;
mod conn;
pub mod devices;
mod error;
pub mod events;
pub mod ingest;
mod server;
pub mod stats;
pub mod store;
pub mod streams;
pub mod tls;
pub mod web;

use std::sync::Arc;

pub use config::Config;
pub use error::ServerError;
pub use server::{Listener, Server};

/// State shared by every connection.
pub(crate) struct Hub {
    pub(crate) config: Config,
    pub(crate) store: Arc<store::Store>,
    pub(crate) stats: Arc<stats::Stats>,
    pub(crate) streams: streams::StreamHub,
    pub(crate) devices: devices::DeviceRegistry,
    pub(crate) clients: clients::ClientRegistry,
    pub(crate) events: events::EventLog,
    /// Cancelled when the HTTP side shuts down: ends live MJPEG and WebSocket responses, which
    /// would otherwise hold graceful shutdown open forever.
    pub(crate) web_closing: tokio_util::sync::CancellationToken,
    pub(crate) udp: ingest::UdpStats,
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
    pub fn store(&self) -> &Arc<store::Store> {
        &self.0.store
    }

    /// Counters of the UDP door.
    pub fn udp_stats(&self) -> &ingest::UdpStats {
        &self.0.udp
    }

    /// Cancelled when the HTTP side shuts down.
    pub fn web_closing(&self) -> &tokio_util::sync::CancellationToken {
        &self.0.web_closing
    }

    /// The settings the hub runs with.
    pub fn config(&self) -> &Config {
        &self.0.config
    }
}
