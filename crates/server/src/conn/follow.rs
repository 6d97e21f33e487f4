//! A connection that follows the hub's events (`Follow`) and sends or receives texts addressed to
//! names (`TextTo`, `TextFrom`).

use framewire_proto::{Delivery, DeliveryStatus, Follow, Following, Message, TextTo};
use tokio::sync::broadcast;

use super::session::Session;
use super::{Fatal, Out, Outbox};
use crate::clients::role;
use crate::events::{Event, EventFilter};
use crate::untrusted::shown;

impl Session {
    /// The name this connection's texts come from: its device or follower name, else the name it
    /// gave in `Hello`.
    pub(super) fn text_sender(&self) -> &str {
        self.own_name.as_deref().unwrap_or(&self.client.name)
    }

    /// Delivers a text to the holder of `t.to` and tells the sender what became of it.
    pub(super) async fn text_to(&mut self, t: TextTo) {
        self.client.add_role(role::CONTROL);
        let from = self.text_sender().to_owned();
        let status = self
            .hub
            .receivers
            .deliver(&self.hub.devices, &from, &t.to, &t.text);
        tracing::info!(from = %self.sender, to = %shown(&t.to), text = %shown(&t.text), ?status, "message");
        if status == DeliveryStatus::Delivered {
            self.hub.events.message(&self.sender, &from, &t.to, &t.text);
        }
        self.send(Message::Delivery(Delivery { id: t.id, status }))
            .await;
    }

    /// Starts (or replaces) forwarding the hub's events, and takes the name texts are received
    /// under. `Following` goes out before the first event.
    ///
    /// # Errors
    /// `Forbidden` (fatal) when the name belongs to another connection or the token may not claim
    /// it.
    pub(super) async fn follow(&mut self, f: Follow) -> Result<(), Fatal> {
        if !f.name.is_empty() {
            if !self.who.may_claim(&f.name) {
                return Err(Fatal::new(
                    framewire_proto::ErrorCode::Forbidden,
                    format!("this token may not claim the name {:?}", f.name),
                ));
            }
            self.hub
                .receivers
                .claim(&f.name, &self.claimant, self.out.clone())
                .map_err(|why| Fatal::new(framewire_proto::ErrorCode::Forbidden, why))?;
            self.own_name = Some(f.name.clone());
        }
        if let Some(old) = self.following.take() {
            old.abort();
        }
        // Subscribed before `Following` is queued: no event after the answer is missed.
        let rx = self.hub.events.follow();
        self.send(Message::Following(Following {
            name: f.name.clone(),
        }))
        .await;
        tracing::info!(from = %self.sender, name = %shown(&f.name), kinds = %shown(&f.kinds.join(",")), prefix = %shown(&f.prefix), "follower joined");
        let filter = EventFilter {
            kinds: f.kinds,
            prefix: f.prefix,
        };
        let task = tokio::spawn(forward(rx, filter, self.out.clone()));
        self.following = Some(task.abort_handle());
        Ok(())
    }
}

/// The native form of an event.
pub(crate) fn to_message(e: &Event, dropped: u64) -> Message {
    Message::Event(framewire_proto::Event {
        time_us: e.time_us,
        dropped: dropped.min(u32::MAX as u64) as u32,
        kind: e.kind.to_owned(),
        fields: e
            .fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
    })
}

/// Sends the events that pass `filter` until the connection closes. Waiting for room in the
/// connection's queue only holds this task: the hub's ring goes on, and what this follower missed
/// meanwhile is counted in the next event's `dropped`.
async fn forward(mut rx: broadcast::Receiver<Event>, filter: EventFilter, out: Outbox) {
    let mut dropped: u64 = 0;
    loop {
        match rx.recv().await {
            Ok(e) => {
                if !filter.passes(&e) {
                    continue;
                }
                let Ok(b) = to_message(&e, dropped).to_bytes() else {
                    continue;
                };
                dropped = 0;
                if out.send(Out::Msg(b)).await.is_err() {
                    return;
                }
            }
            Err(broadcast::error::RecvError::Lagged(n)) => dropped += n,
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}
