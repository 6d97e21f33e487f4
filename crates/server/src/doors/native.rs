//! The native door: accepts framewire clients on a plain TCP or TLS listener; each admitted
//! connection runs its session (`conn`) in a task of the gate's tracker.

use std::sync::Arc;

use crate::builder::Listener;
use crate::{conn, Hub};

/// Accepts on one native listener until the hub stops.
pub(crate) async fn accept(listener: Listener, hub: Arc<Hub>) {
    let (listener, tls) = match listener {
        Listener::Plain(l) => (l, None),
        Listener::Tls(l, acceptor) => (l, Some(acceptor)),
    };
    loop {
        let (stream, peer) = tokio::select! {
            _ = hub.gate.stop.cancelled() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    super::accept_failed("native", e).await;
                    continue;
                }
            },
        };
        // Over a limit: say so and close, rather than leave the client hanging in a queue.
        let admission = match hub.gate.admit(peer) {
            Ok(a) => a,
            Err(why) => {
                tracing::warn!(%peer, reason = %why, "connection refused");
                tokio::spawn(conn::refuse(stream, tls.clone(), why));
                continue;
            }
        };
        let hub = Arc::clone(&hub);
        let tls = tls.clone();
        hub.clone().gate.tracker.spawn(async move {
            let _admission = admission;
            let stats = &hub.stats;
            stats.connection_opened();
            match tls {
                None => conn::serve_tcp(stream, peer, Arc::clone(&hub)).await,
                Some(acceptor) => conn::serve_tls(stream, peer, acceptor, Arc::clone(&hub)).await,
            }
            hub.stats.connection_closed();
        });
    }
}
