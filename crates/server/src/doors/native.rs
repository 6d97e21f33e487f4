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
    let refuse = |stream, why| conn::refuse(stream, tls.clone(), why);
    while let Some((stream, peer, admission)) =
        super::admitted(&listener, &hub, "native", refuse).await
    {
        let hub = Arc::clone(&hub);
        let tls = tls.clone();
        hub.clone().gate.tracker.spawn(async move {
            let _admission = admission;
            hub.stats.connection_opened();
            match tls {
                None => conn::serve_tcp(stream, peer, Arc::clone(&hub)).await,
                Some(acceptor) => conn::serve_tls(stream, peer, acceptor, Arc::clone(&hub)).await,
            }
            hub.stats.connection_closed();
        });
    }
}
