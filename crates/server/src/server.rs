//! Accepting connections (plain TCP and TLS listeners, sharing the limits) and shutting down
//! gracefully.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
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

    /// Serves clients on `listener` (plain TCP) until `shutdown` resolves, then stops accepting,
    /// lets connections finish what they committed to (within `Config::shutdown_grace`), drains
    /// the committer and returns.
    ///
    /// # Errors
    /// Only for failures of the hub as a whole; a misbehaving client never ends it.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        self.serve_listeners(vec![Listener::Plain(listener)], shutdown)
            .await
    }

    /// As [`Server::serve`], on several listeners at once (a TLS port for clients and a plain one
    /// for microcontrollers, say). They share the connection limits.
    ///
    /// # Errors
    /// Only for failures of the hub as a whole; a misbehaving client never ends it.
    pub async fn serve_listeners(
        self,
        listeners: Vec<Listener>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let gate = Arc::new(Gate {
            hub: Arc::clone(&self.hub),
            limit: Arc::new(Semaphore::new(self.hub.config.max_connections)),
            per_ip: Arc::default(),
            cancel: CancellationToken::new(),
            tracker: TaskTracker::new(),
        });
        let stop_accepting = CancellationToken::new();
        // A JoinSet aborts its tasks when dropped: if this future is dropped, the ports close.
        let mut accepting = JoinSet::new();
        for l in listeners {
            accepting.spawn(accept_loop(l, Arc::clone(&gate), stop_accepting.clone()));
        }
        shutdown.await;
        stop_accepting.cancel();
        while accepting.join_next().await.is_some() {}
        tracing::info!("shutting down");
        gate.cancel.cancel();
        gate.tracker.close();
        let grace = self.hub.config.shutdown_grace + Duration::from_secs(1);
        if tokio::time::timeout(grace, gate.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("some connections did not finish in time; closing them");
        }
        let store = Arc::clone(&self.hub.store);
        let _ = tokio::task::spawn_blocking(move || store.close()).await;
        Ok(())
    }
}

/// A socket the hub accepts native clients on.
pub enum Listener {
    /// Plain TCP.
    Plain(TcpListener),
    /// TLS: each connection's handshake runs in the connection's own task and counts against
    /// `Config::handshake_timeout`. A plaintext client is told, in plaintext, to use TLS.
    Tls(TcpListener, TlsAcceptor),
}

impl Listener {
    /// The address it listens on.
    ///
    /// # Errors
    /// As [`TcpListener::local_addr`].
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        match self {
            Listener::Plain(l) | Listener::Tls(l, _) => l.local_addr(),
        }
    }
}

/// What every accept loop shares: the hub, the connection limits, and the connection tasks.
struct Gate {
    hub: Arc<Hub>,
    limit: Arc<Semaphore>,
    per_ip: Arc<Mutex<HashMap<IpAddr, usize>>>,
    /// Tells connections to stop reading (shutdown).
    cancel: CancellationToken,
    tracker: TaskTracker,
}

impl Gate {
    /// A connection's claims on the global and per-address limits, or why it is refused.
    fn admit(&self, peer: SocketAddr) -> Result<(OwnedSemaphorePermit, IpSlot), String> {
        let config = &self.hub.config;
        let Ok(permit) = Arc::clone(&self.limit).try_acquire_owned() else {
            return Err(format!(
                "the hub is serving its limit of {} connections",
                config.max_connections
            ));
        };
        match IpSlot::take(&self.per_ip, peer.ip(), config.max_connections_per_ip) {
            Some(slot) => Ok((permit, slot)),
            None => Err(format!(
                "{} already has {} connections, the most one address may have",
                peer.ip(),
                config.max_connections_per_ip
            )),
        }
    }
}

/// Accepts on one listener until `stop` is cancelled; each connection runs in its own task.
async fn accept_loop(listener: Listener, gate: Arc<Gate>, stop: CancellationToken) {
    let (listener, tls) = match listener {
        Listener::Plain(l) => (l, None),
        Listener::Tls(l, acceptor) => (l, Some(acceptor)),
    };
    loop {
        let (stream, peer) = tokio::select! {
            _ = stop.cancelled() => return,
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
        let (permit, slot) = match gate.admit(peer) {
            Ok(x) => x,
            Err(why) => {
                tracing::warn!(%peer, reason = %why, "connection refused");
                tokio::spawn(conn::refuse(stream, tls.clone(), why));
                continue;
            }
        };
        let hub = Arc::clone(&gate.hub);
        let cancel = gate.cancel.clone();
        let tls = tls.clone();
        gate.tracker.spawn(async move {
            hub.stats
                .connections_open
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            hub.stats
                .connections_total
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            match tls {
                None => conn::serve_tcp(stream, peer, Arc::clone(&hub), cancel).await,
                Some(acceptor) => {
                    conn::serve_tls(stream, peer, acceptor, Arc::clone(&hub), cancel).await
                }
            }
            hub.stats
                .connections_open
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            drop((permit, slot));
        });
    }
}
