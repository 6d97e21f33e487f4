//! Following the hub's events ([`Client::events`]) and texts addressed to names
//! ([`Client::text_to`]).

use std::time::Duration;

use framewire_proto::{Delivery, DeliveryStatus, Event, Follow, Message, Ping, TextFrom, TextTo};
use tokio::time::timeout;

use crate::client::{hub_error, now_us, Client};
use crate::error::Result;

/// While following, a ping this often keeps the hub's idle timeout away.
const KEEPALIVE: Duration = Duration::from_secs(30);

/// What to follow: event kinds (empty: all), a path prefix, and the name texts are received under
/// (empty: none).
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Kinds wanted (`stored`, `message`, `device`, `stream`, `command`, ...); empty for all.
    pub kinds: Vec<String>,
    /// Only events whose path starts with this (events without a path pass).
    pub prefix: String,
    /// Receive texts addressed to this name; empty for none.
    pub name: String,
}

/// One item of an [`Events`] stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Followed {
    /// Something happened at the hub (its fields: see docs/PROTOCOL.md, "Events").
    Event(Event),
    /// A text addressed to the name this follower holds.
    Text(TextFrom),
}

/// A connection following the hub's events; [`Events::next`] gives them one by one.
#[derive(Debug)]
pub struct Events {
    client: Client,
}

impl Client {
    /// Follows the hub's events that pass `filter` from now on (the hub has confirmed when this
    /// returns), and, with a name, receives texts addressed to it.
    ///
    /// # Errors
    /// [`ClientError::Hub`] if the token may not follow events (`Forbidden`) or the name belongs
    /// to another connection; any connection error.
    pub async fn events(mut self, filter: EventFilter) -> Result<Events> {
        self.send(&Message::Follow(Follow {
            name: filter.name,
            prefix: filter.prefix,
            kinds: filter.kinds,
        }))
        .await?;
        loop {
            match self.recv("Following").await? {
                Message::Following(_) => return Ok(Events { client: self }),
                other => self.stray(other),
            }
        }
    }

    /// Delivers `text` to whichever client holds the name `to` (a device, or a program following
    /// events under that name); says whether it got there.
    ///
    /// # Errors
    /// Any connection error, or no answer within the I/O timeout.
    pub async fn text_to(&mut self, to: &str, text: &str) -> Result<DeliveryStatus> {
        let id = self.alloc_id();
        self.send(&Message::TextTo(TextTo {
            id,
            to: to.to_owned(),
            text: text.to_owned(),
        }))
        .await?;
        loop {
            match self.recv("the Delivery").await? {
                Message::Delivery(Delivery { id: got, status }) if got == id => return Ok(status),
                Message::Error(e) if e.id == id => return Err(hub_error(e)),
                other => self.stray(other),
            }
        }
    }
}

impl Events {
    /// The next event or text, waiting as long as it takes (pinging the hub meanwhile).
    ///
    /// # Errors
    /// The connection was lost.
    pub async fn next(&mut self) -> Result<Followed> {
        loop {
            let c = &mut self.client;
            c.check_alive()?;
            let next = match timeout(KEEPALIVE, c.incoming.recv()).await {
                Err(_) => {
                    c.send(&Message::Ping(Ping {
                        nonce: 0,
                        time_us: now_us(),
                    }))
                    .await?;
                    continue;
                }
                Ok(n) => n,
            };
            match c.accept_incoming(next)? {
                Some(Message::Ping(p)) => c.answer_ping(p).await?,
                Some(Message::Event(e)) => return Ok(Followed::Event(e)),
                Some(Message::TextFrom(t)) => return Ok(Followed::Text(t)),
                Some(other) => c.stray(other),
                None => {}
            }
        }
    }

    /// Sends a text to the holder of `to` while following (to answer a text, say).
    ///
    /// # Errors
    /// As [`Client::text_to`]; events that arrive meanwhile are not lost only if the answer comes
    /// first, so use it between [`Events::next`] calls.
    pub async fn text_to(&mut self, to: &str, text: &str) -> Result<DeliveryStatus> {
        self.client.text_to(to, text).await
    }

    /// The connection, back (it keeps following).
    pub fn into_client(self) -> Client {
        self.client
    }
}
