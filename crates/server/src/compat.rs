//! `Server::open` + `serve`: the shape of the hub's API before [`HubBuilder`], kept while the
//! tests move to the builder. To be removed.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::{Config, HubBuilder, HubHandle, Listener, RunningHub, ServerError};

/// A hub with its data folder open, ready to serve.
pub struct Server {
    hub: RunningHub,
    data: std::path::PathBuf,
}

impl Server {
    /// Opens (creating if needed) the data folder and repairs the index from the disk.
    ///
    /// # Errors
    /// If the data folder or the index cannot be opened.
    pub async fn open(config: Config) -> Result<Server, ServerError> {
        let data = config.data_dir.clone();
        Ok(Server {
            hub: HubBuilder::new(config).start().await?,
            data,
        })
    }

    /// What start-up repair found.
    pub fn reconcile_report(&self) -> &crate::store::ReconcileReport {
        self.hub.reconcile_report()
    }

    /// A handle to the hub's live state, usable while it serves.
    pub fn handle(&self) -> HubHandle {
        self.hub.handle()
    }

    /// The hub's counters.
    pub fn stats(&self) -> Arc<crate::stats::Stats> {
        Arc::clone(&self.hub.handle().hub().stats)
    }

    /// The data folder.
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// Serves native clients on `listener` until `shutdown` resolves, then shuts down.
    ///
    /// # Errors
    /// Only for failures of the hub as a whole.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        self.serve_listeners(vec![Listener::Plain(listener)], shutdown)
            .await
    }

    /// As [`Server::serve`], on several listeners.
    ///
    /// # Errors
    /// Only for failures of the hub as a whole.
    pub async fn serve_listeners(
        mut self,
        listeners: Vec<Listener>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        for l in listeners {
            self.hub.add_native(l);
        }
        shutdown.await;
        self.hub.shutdown().await
    }
}
