//! Which handler a message goes to, after checking what the connection's token allows.
//!
//! | permission | messages |
//! |---|---|
//! | (none) | Ping, Pong, Text, TextTo, Cancel, Unsubscribe, FrameAck, Error |
//! | upload | Offer (checked by the upload pipeline), Data, End |
//! | download | Get, List |
//! | delete | Delete (checked by the upload pipeline, which owns path leases) |
//! | publish | RegisterDevice, Publish, Frame, Reply |
//! | subscribe | Subscribe |
//! | command | Command |
//! | events | Follow |
//!
//! A refused request that has an id is answered for that id (`Rejected` for an Offer, `Error`
//! otherwise) and the connection stays open; a refused live role closes the connection. So does a
//! device or stream name that belongs to another connection, or that the token may not claim
//! (`Error{Forbidden}`).

use framewire_proto::{ErrorCode, ErrorMsg, Message, Pong, Text};

use super::session::Session;
use super::{now_us, Fatal};
use crate::auth::Perms;
use crate::clients::role;
use crate::untrusted::shown;

impl Session {
    /// Refuses what this connection's token does not allow: requests with an id get an answer
    /// for that id, live roles end the connection.
    pub(super) async fn permitted(&self, msg: &Message) -> Result<bool, Fatal> {
        let (need, id) = match msg {
            // Offers: the upload pipeline checks the permission, like every door's.
            Message::Get(g) => (Perms::DOWNLOAD, Some(g.id)),
            Message::List(l) => (Perms::DOWNLOAD, Some(l.id)),
            Message::Command(c) => (Perms::COMMAND, Some(c.id)),
            Message::RegisterDevice(_)
            | Message::Publish(_)
            | Message::Frame(_)
            | Message::Reply(_) => (Perms::PUBLISH, None),
            Message::Subscribe(_) => (Perms::SUBSCRIBE, None),
            Message::Follow(_) => (Perms::EVENTS, None),
            _ => return Ok(true),
        };
        if self.perms.allows(need) {
            return Ok(true);
        }
        let why = format!("this token may not {}", need.name());
        match id {
            Some(id) => {
                self.send(Message::Error(ErrorMsg {
                    code: ErrorCode::Forbidden,
                    id,
                    message: why,
                }))
                .await;
                Ok(false)
            }
            None => Err(Fatal::new(ErrorCode::Forbidden, why)),
        }
    }

    pub(super) async fn handle(&mut self, msg: Message) -> Result<(), Fatal> {
        if !self.permitted(&msg).await? {
            return Ok(());
        }
        match msg {
            Message::Ping(p) => {
                self.send(Message::Pong(Pong {
                    nonce: p.nonce,
                    ping_time_us: p.time_us,
                    time_us: now_us(),
                }))
                .await
            }
            Message::Pong(_) => {}
            Message::Text(t) => {
                tracing::info!(from = %self.sender, text = %shown(&t.text), "message");
                self.client.add_role(role::CONTROL);
                let from = self.text_sender().to_owned();
                self.hub.events.message(&self.sender, &from, "", &t.text);
                self.send(Message::Text(Text {
                    id: t.id,
                    text: t.text,
                }))
                .await;
            }
            Message::Offer(o) => self.offer(o).await,
            Message::Data(d) => self.data(d.id, d.bytes).await?,
            Message::End(e) => self.end(e.id, e.hash).await?,
            Message::Cancel(c) => self.cancel(c.id).await,
            Message::Get(g) => self.get(g).await,
            Message::List(l) => self.list(l).await,
            Message::TextTo(t) => self.text_to(t).await,
            Message::Follow(f) => self.follow(f).await?,
            Message::Delete(d) => self.delete(d).await,
            Message::Command(c) => self.command(c),
            Message::RegisterDevice(d) => self.register_device(d).await?,
            Message::Reply(r) => {
                if !self.hub.devices.reply(self.conn_id, r) {
                    tracing::debug!(from = %self.sender, "late or unexpected reply ignored");
                }
            }
            Message::Publish(p) => self.publish(p)?,
            Message::Frame(f) => self.frame(f).await?,
            Message::Subscribe(s) => self.subscribe(s).await?,
            Message::Unsubscribe(u) => {
                if let Some(sub) = self.subscriptions.remove(&u.stream) {
                    sub.end();
                }
            }
            Message::FrameAck(a) => {
                if let Some(sub) = self.subscriptions.get(&a.stream) {
                    sub.ack();
                }
            }
            Message::Error(e) => {
                tracing::debug!(from = %self.sender, code = %e.code, message = %shown(&e.message), "client reported an error");
            }
            other => {
                return Err(Fatal::new(
                    ErrorCode::ProtocolViolation,
                    format!("a client may not send {}", other.name()),
                ))
            }
        }
        Ok(())
    }
}
