//! The one reconnecting link every live handle rides on: connect, keep the clock offset fresh
//! with pings, and when the hub goes away, connect again with backoff and start over.
//!
//! What a link does on each connection is its [`Role`]'s business (publishing, subscribing): the
//! role opens the session, reacts to the hub's messages and to its own events, and the link does
//! everything else (pings and pongs, stop, connection loss).

use std::collections::HashMap;
use std::future::Future;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use framewire_proto::{ClockEstimate, ClockSample, Message, Ping};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::client::{now_us, Client, ConnectOptions};
use crate::error::Result;

/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// First wait between reconnection attempts; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// How often a live connection re-measures the clock offset.
const PING_EVERY: Duration = Duration::from_secs(5);
/// Pings sent right after connecting, to get a tight clock estimate quickly.
const INITIAL_PINGS: u64 = 5;
/// How long closing waits for the link's task to finish its last words.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// What a live handle does on each connection its link gets.
///
/// The futures are `Send` so that the link can run on tokio's pool.
pub(super) trait Role: Send + 'static {
    /// Something besides the hub's messages that the session waits for.
    type Event: Send;

    /// Starts the session on a fresh connection (`Publish`, `Subscribe`...). Whatever the role
    /// kept about the previous connection is stale now.
    fn open(&mut self, c: &mut Client) -> impl Future<Output = Result<()>> + Send;

    /// Waits for the role's next event. Must be cancel-safe: it is raced against the hub.
    fn event(&mut self) -> impl Future<Output = Self::Event> + Send;

    /// Acts on one of the role's events.
    fn on_event(
        &mut self,
        c: &mut Client,
        event: Self::Event,
    ) -> impl Future<Output = Result<ControlFlow<()>>> + Send;

    /// Acts on a message from the hub (pings, pongs and connection errors are handled by the
    /// link). `offset_us` is the hub's clock minus ours, 0 until the first pong.
    fn on_message(
        &mut self,
        c: &mut Client,
        m: Message,
        offset_us: i64,
    ) -> impl Future<Output = Result<ControlFlow<()>>> + Send;

    /// Writes whatever may go out now; called before every wait. Nothing, unless the role says.
    fn flush(
        &mut self,
        _c: &mut Client,
        _offset_us: i64,
    ) -> impl Future<Output = Result<()>> + Send {
        async { Ok(()) }
    }

    /// The handle asked to stop: last words on the connection. None, unless the role says.
    fn close(&mut self, _c: &mut Client) -> impl Future<Output = Result<()>> + Send {
        async { Ok(()) }
    }
}

/// Connection state shared between a link's task and its handle.
#[derive(Debug, Default)]
pub(super) struct LinkState {
    connected: AtomicBool,
    reconnects: AtomicU64,
    offset_us: AtomicI64,
    rtt_us: AtomicI64,
    last_error: Mutex<Option<String>>,
    stop: Notify,
    stopped: AtomicBool,
}

/// A live connection's state, as seen from its handle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkSnapshot {
    /// Whether the connection is up now.
    pub connected: bool,
    /// Connections re-established after a loss.
    pub reconnects: u64,
    /// The hub's clock minus ours, µs (best estimate).
    pub clock_offset_us: i64,
    /// Round trip of the ping that estimate comes from, µs.
    pub rtt_us: i64,
    /// Why the connection was last lost, if it was.
    pub last_error: Option<String>,
}

impl LinkState {
    pub(super) fn snapshot(&self) -> LinkSnapshot {
        LinkSnapshot {
            connected: self.connected.load(Relaxed),
            reconnects: self.reconnects.load(Relaxed),
            clock_offset_us: self.offset_us.load(Relaxed),
            rtt_us: self.rtt_us.load(Relaxed),
            last_error: self.last_error.lock().unwrap().clone(),
        }
    }

    fn lost(&self, why: String) {
        self.connected.store(false, Relaxed);
        *self.last_error.lock().unwrap() = Some(why);
    }
}

/// The handle's end of a running link. Dropping it ends the link at once.
pub(super) struct Link {
    state: Arc<LinkState>,
    task: JoinHandle<()>,
}

impl Link {
    /// Connects (the first connection must succeed, so a wrong address is a clear error) and runs
    /// `role` on that connection and, after each loss, on a new one made with backoff.
    ///
    /// # Errors
    /// As [`Client::connect`].
    pub(super) async fn start<R: Role>(
        addr: &str,
        opts: ConnectOptions,
        what: String,
        role: R,
    ) -> Result<Link> {
        let first = Client::connect(addr, opts.clone()).await?;
        let state = Arc::new(LinkState::default());
        let task = tokio::spawn(keep_connected(
            addr.to_owned(),
            opts,
            first,
            Arc::clone(&state),
            what,
            role,
        ));
        Ok(Link { state, task })
    }

    /// The connection's state, shared with the task.
    pub(super) fn state(&self) -> &Arc<LinkState> {
        &self.state
    }

    /// Asks the role for its last words, then stops (waiting boundedly for the task).
    pub(super) async fn close(mut self) {
        self.state.stopped.store(true, Relaxed);
        // `notify_waiters` for a task waiting now, `notify_one` (a stored permit) for one about
        // to wait.
        self.state.stop.notify_waiters();
        self.state.stop.notify_one();
        let _ = tokio::time::timeout(CLOSE_WAIT, &mut self.task).await;
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Runs `role` on `first`, then on a new connection each time a session fails, until a session
/// ends normally or the handle asks to stop.
async fn keep_connected<R: Role>(
    addr: String,
    opts: ConnectOptions,
    first: Client,
    state: Arc<LinkState>,
    what: String,
    mut role: R,
) {
    let mut client = Some(first);
    loop {
        let mut c = match client.take() {
            Some(c) => c,
            None => {
                if state.stopped.load(Relaxed) {
                    return;
                }
                match connect_with_backoff(&addr, &opts, &state).await {
                    Some(c) => {
                        state.reconnects.fetch_add(1, Relaxed);
                        c
                    }
                    None => return,
                }
            }
        };
        state.connected.store(true, Relaxed);
        match session(&mut c, &state, &mut role).await {
            Ok(()) => return,
            Err(e) => {
                tracing::info!(%what, error = %e, "connection to the hub lost; reconnecting");
                state.lost(e.to_string());
            }
        }
    }
}

/// Connects, retrying with exponential backoff until it works or the handle asks to stop.
async fn connect_with_backoff(
    addr: &str,
    opts: &ConnectOptions,
    state: &LinkState,
) -> Option<Client> {
    let mut wait = FIRST_BACKOFF;
    loop {
        match Client::connect(addr, opts.clone()).await {
            Ok(c) => return Some(c),
            Err(e) => {
                tracing::debug!(addr, error = %e, "reconnect failed");
                *state.last_error.lock().unwrap() = Some(e.to_string());
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = state.stop.notified() => return None,
        }
        wait = next_backoff(wait);
    }
}

/// The wait after `wait`: twice as long, at most [`MAX_BACKOFF`].
fn next_backoff(wait: Duration) -> Duration {
    (wait * 2).min(MAX_BACKOFF)
}

/// One connection's worth of `role`. `Ok` means stop was asked for (or the handle is gone).
async fn session<R: Role>(c: &mut Client, state: &LinkState, role: &mut R) -> Result<()> {
    let mut clock = Clock::default();
    role.open(c).await?;
    for _ in 0..INITIAL_PINGS {
        clock.ping(c).await?;
    }
    let mut ping_tick = tokio::time::interval(PING_EVERY);
    ping_tick.tick().await;
    loop {
        role.flush(c, clock.offset_us()).await?;
        let flow = tokio::select! {
            _ = state.stop.notified() => {
                role.close(c).await?;
                return Ok(());
            }
            e = role.event() => role.on_event(c, e).await?,
            _ = ping_tick.tick() => {
                clock.ping(c).await?;
                ControlFlow::Continue(())
            }
            m = c.incoming.recv() => match c.accept_incoming(m)? {
                None => ControlFlow::Continue(()),
                Some(Message::Pong(p)) => {
                    clock.pong(p.nonce, p.time_us, now_us(), state);
                    ControlFlow::Continue(())
                }
                Some(Message::Ping(p)) => {
                    c.answer_ping(p).await?;
                    ControlFlow::Continue(())
                }
                Some(m) => role.on_message(c, m, clock.offset_us()).await?,
            },
        };
        if flow.is_break() {
            return Ok(());
        }
    }
}

/// Pings sent on one connection, to turn pongs into clock samples.
#[derive(Default)]
struct Clock {
    estimate: ClockEstimate,
    sent: HashMap<u64, i64>,
    next_nonce: u64,
}

impl Clock {
    /// The hub's clock minus ours; 0 until the first pong (frames then go out on our clock).
    fn offset_us(&self) -> i64 {
        self.estimate.offset_us().unwrap_or(0)
    }

    async fn ping(&mut self, c: &mut Client) -> Result<()> {
        self.next_nonce += 1;
        let sent_us = now_us();
        self.sent.insert(self.next_nonce, sent_us);
        c.send(&Message::Ping(Ping {
            nonce: self.next_nonce,
            time_us: sent_us,
        }))
        .await
    }

    /// A pong for `nonce`, stamped `remote_us` by the hub, arrived at `received_us`.
    fn pong(&mut self, nonce: u64, remote_us: i64, received_us: i64, state: &LinkState) {
        if let Some(sent_us) = self.sent.remove(&nonce) {
            self.estimate.add(ClockSample {
                sent_us,
                remote_us,
                received_us,
            });
            state.offset_us.store(self.offset_us(), Relaxed);
            state
                .rtt_us
                .store(self.estimate.rtt_us().unwrap_or(0), Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let mut wait = FIRST_BACKOFF;
        let mut seen = vec![wait];
        for _ in 0..8 {
            wait = next_backoff(wait);
            seen.push(wait);
        }
        assert_eq!(seen[1], Duration::from_millis(200));
        assert_eq!(seen[5], Duration::from_millis(3200));
        assert!(seen[6..].iter().all(|w| *w == MAX_BACKOFF));
    }

    #[test]
    fn pongs_feed_the_offset_and_unknown_ones_are_ignored() {
        let state = LinkState::default();
        let mut clock = Clock::default();
        assert_eq!(clock.offset_us(), 0, "no pong yet: our own clock");
        clock.sent.insert(1, 1_000);
        // The hub's clock is 10 ms ahead; 200 µs round trip.
        clock.pong(1, 1_100 + 10_000, 1_200, &state);
        assert_eq!(clock.offset_us(), 10_000);
        assert_eq!(state.snapshot().clock_offset_us, 10_000);
        assert_eq!(state.snapshot().rtt_us, 200);
        // A pong nobody sent (or a duplicate) changes nothing.
        clock.pong(1, 99_999_999, 1_300, &state);
        clock.pong(7, 99_999_999, 1_300, &state);
        assert_eq!(clock.offset_us(), 10_000);
    }

    #[test]
    fn a_loss_is_remembered_until_the_next_one() {
        let state = LinkState::default();
        state.connected.store(true, Relaxed);
        state.lost("the hub closed the connection".into());
        let s = state.snapshot();
        assert!(!s.connected);
        assert_eq!(
            s.last_error.as_deref(),
            Some("the hub closed the connection")
        );
    }
}
