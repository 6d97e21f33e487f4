//! The framewire hub as a library: [`Server::open`] a data folder, then [`Server::serve`] a
//! listener until a shutdown future resolves. The `framewire serve` command is a thin wrapper.
//!
//! Inside: one task per connection ([`conn`]), a durable [`store`] with a group committer, and
//! shared counters ([`stats`]).

mod config;
mod conn;
mod error;
mod server;
pub mod stats;
pub mod store;

use std::sync::Arc;

pub use config::Config;
pub use error::ServerError;
pub use server::Server;

/// State shared by every connection.
pub(crate) struct Hub {
    pub(crate) config: Config,
    pub(crate) store: Arc<store::Store>,
    pub(crate) stats: Arc<stats::Stats>,
}
