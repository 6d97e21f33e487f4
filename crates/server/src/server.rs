//! Accepting connections and shutting down gracefully.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::stats::Stats;
use crate::store::{ReconcileReport, Store};
use crate::{conn, Config, Hub, ServerError};

/// One connection's claim on its IP address's share of connections; released on drop.
struct IpSlot {
    ip: IpAddr,
    table: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl IpSlot {
    fn take(table: &Arc<Mutex<HashMap<IpAddr, usize>>>, ip: IpAddr, max: usize) -> Option<IpSlot> {
        let mut t = table.lock().unwrap();
        let n = t.entry(ip).or_default();
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(IpSlot {
            ip,
            table: Arc::clone(table),
        })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut t = self.table.lock().unwrap();
        if let Some(n) = t.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                t.remove(&self.ip);
            }
        }
    }
}

/// A hub with its data folder open, ready to serve.
pub struct Server {
    hub: Arc<Hub>,
    reconcile: ReconcileReport,
}

impl Server {
    /// Opens (creating if needed) the data folder and repairs the index from the disk.
    ///
    /// # Errors
    /// If the data folder or the index cannot be opened.
    pub async fn open(config: Config) -> Result<Server, ServerError> {
        let stats = Arc::new(Stats::default());
        let dir = config.data_dir.clone();
        let s = Arc::clone(&stats);
        let (store, reconcile) = tokio::task::spawn_blocking(move || Store::open(&dir, s))
            .await
            .map_err(|e| ServerError::Task(e.to_string()))??;
        Ok(Server {
            hub: Arc::new(Hub {
                config,
                store,
                stats,
                streams: Default::default(),
                devices: Default::default(),
                clients: Default::default(),
                events: Default::default(),
                web_closing: Default::default(),
                udp: Default::default(),
                next_conn: Default::default(),
            }),
            reconcile,
        })
    }

    /// What start-up repair found.
    pub fn reconcile_report(&self) -> &ReconcileReport {
        &self.reconcile
    }

    /// A handle to the hub's live state, usable while it serves.
    pub fn handle(&self) -> crate::HubHandle {
        crate::HubHandle(Arc::clone(&self.hub))
    }

    /// The hub's counters.
    pub fn stats(&self) -> Arc<Stats> {
        Arc::clone(&self.hub.stats)
    }

    /// The data folder.
    pub fn data_dir(&self) -> &Path {
        &self.hub.config.data_dir
    }

    /// Serves clients on `listener` until `shutdown` resolves, then stops accepting, lets
    /// connections finish what they committed to (within `Config::shutdown_grace`), drains the
    /// committer and returns.
    ///
    /// # Errors
    /// Only for failures of the hub as a whole; a misbehaving client never ends it.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        let limit = Arc::new(Semaphore::new(self.hub.config.max_connections));
        let per_ip: Arc<Mutex<HashMap<IpAddr, usize>>> = Arc::default();
        tokio::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                _ = &mut shutdown => break,
                r = listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            // Over a limit: say so and close, rather than leave the client hanging in a queue.
            let refusal = match Arc::clone(&limit).try_acquire_owned() {
                Err(_) => Err(format!(
                    "the hub is serving its limit of {} connections",
                    self.hub.config.max_connections
                )),
                Ok(permit) => {
                    match IpSlot::take(&per_ip, peer.ip(), self.hub.config.max_connections_per_ip) {
                        Some(slot) => Ok((permit, slot)),
                        None => Err(format!(
                            "{} already has {} connections, the most one address may have",
                            peer.ip(),
                            self.hub.config.max_connections_per_ip
                        )),
                    }
                }
            };
            let (permit, slot) = match refusal {
                Ok(x) => x,
                Err(why) => {
                    tracing::warn!(%peer, reason = %why, "connection refused");
                    tokio::spawn(conn::refuse(stream, why));
                    continue;
                }
            };
            let hub = Arc::clone(&self.hub);
            let cancel = cancel.clone();
            tracker.spawn(async move {
                hub.stats
                    .connections_open
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                hub.stats
                    .connections_total
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                conn::serve_connection(stream, peer, Arc::clone(&hub), cancel).await;
                hub.stats
                    .connections_open
                    .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                drop((permit, slot));
            });
        }
        drop(listener);
        tracing::info!("shutting down");
        cancel.cancel();
        tracker.close();
        let grace = self.hub.config.shutdown_grace + Duration::from_secs(1);
        if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
            tracing::warn!("some connections did not finish in time; closing them");
        }
        let store = Arc::clone(&self.hub.store);
        let _ = tokio::task::spawn_blocking(move || store.close()).await;
        Ok(())
    }
}
