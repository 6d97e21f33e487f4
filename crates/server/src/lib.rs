//! The framewire hub as a library: [`Server::open`] a data folder, then [`Server::serve`] a
//! listener until a shutdown future resolves. The `framewire serve` command is a thin wrapper.
//!
//! Inside: one task per connection ([`conn`]), a durable [`store`] with a group committer, and
//! shared counters ([`stats`]).

mod config;
mod conn;
pub mod devices;
mod error;
mod live;
mod server;
pub mod stats;
pub mod store;
pub mod streams;

use std::sync::Arc;

pub use config::Config;
pub use error::ServerError;
pub use server::Server;

/// State shared by every connection.
pub(crate) struct Hub {
    pub(crate) config: Config,
    pub(crate) store: Arc<store::Store>,
    pub(crate) stats: Arc<stats::Stats>,
    pub(crate) streams: streams::StreamHub,
    pub(crate) devices: devices::DeviceRegistry,
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

    /// The stored files.
    pub fn store(&self) -> &Arc<store::Store> {
        &self.0.store
    }

    /// The settings the hub runs with.
    pub fn config(&self) -> &Config {
        &self.0.config
    }
}
