//! Named devices and the commands routed to them.
//!
//! A connection that sends `RegisterDevice{name}` becomes device `name`. A `Command` from any
//! client (or the HTTP API) is forwarded to that connection under a hub-chosen id; the device's
//! `Reply` is matched back by that id (and must come from the same connection). A command that gets
//! no answer in time, or whose device leaves, is answered by the hub.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use framewire_proto::{Command, Message, Reply, ReplyStatus};
use tokio::sync::oneshot;

use crate::auth::Claimant;
use crate::conn::{NotSent, Out, Outbox};

/// The outcome of a routed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutcome {
    /// As in [`Reply`].
    pub status: ReplyStatus,
    /// The device's output or the hub's explanation.
    pub body: Bytes,
}

struct Device {
    holder: Claimant,
    out: Outbox,
    since_us: i64,
    peer: String,
}

struct Waiting {
    conn: u64,
    reply: oneshot::Sender<CommandOutcome>,
}

/// A connected device, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Device name.
    pub name: String,
    /// Connected since, µs since the Unix epoch.
    pub since_us: i64,
    /// Client name and address.
    pub peer: String,
}

/// Devices by name, and commands waiting for their replies.
#[derive(Default)]
pub struct DeviceRegistry {
    devices: Mutex<HashMap<String, Device>>,
    waiting: Mutex<HashMap<u32, Waiting>>,
    next_id: AtomicU32,
}

impl DeviceRegistry {
    /// Makes connection `who` (which writes through `out`) device `name`, then calls `announce`
    /// while still holding the registry: a message it queues on `out` goes out before any command
    /// routed to the new registration. A name held by another connection is taken over only by the
    /// same token (a camera that rebooted reconnects before the hub notices its old connection is
    /// dead: the newest wins) or an admin token; the old connection then loses the name.
    ///
    /// # Errors
    /// Why the name may not be claimed (it belongs to another connection).
    pub(crate) fn register(
        &self,
        name: &str,
        who: &Claimant,
        out: Outbox,
        since_us: i64,
        peer: String,
        announce: impl FnOnce(),
    ) -> Result<(), String> {
        let mut devices = self.devices.lock().unwrap();
        if let Some(old) = devices.get(name) {
            if !who.may_take_from(&old.holder) {
                return Err(format!(
                    "device name {name:?} belongs to another connection; only the same token or an admin token may take it over"
                ));
            }
        }
        let old = devices.insert(
            name.to_owned(),
            Device {
                holder: who.clone(),
                out,
                since_us,
                peer,
            },
        );
        announce();
        drop(devices);
        if let Some(old) = old {
            if old.holder.conn != who.conn {
                tracing::info!(device = name, "device re-registered from a new connection");
            }
        }
        Ok(())
    }

    /// Forgets every device of connection `conn` and fails its waiting commands. Returns the
    /// names it held.
    pub(crate) fn unregister_conn(&self, conn: u64) -> Vec<String> {
        let mut gone_names = Vec::new();
        self.devices.lock().unwrap().retain(|n, d| {
            let keep = d.holder.conn != conn;
            if !keep {
                gone_names.push(n.clone());
            }
            keep
        });
        let mut waiting = self.waiting.lock().unwrap();
        let gone: Vec<u32> = waiting
            .iter()
            .filter(|(_, w)| w.conn == conn)
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            if let Some(w) = waiting.remove(&id) {
                let _ = w.reply.send(CommandOutcome {
                    status: ReplyStatus::Failed,
                    body: Bytes::from_static(b"the device disconnected before answering"),
                });
            }
        }
        gone_names
    }

    /// The outgoing queue of the connection holding device `name`.
    pub(crate) fn outbox(&self, name: &str) -> Option<Outbox> {
        self.devices
            .lock()
            .unwrap()
            .get(name)
            .map(|d| d.out.clone())
    }

    /// Connected devices, by name.
    pub fn list(&self) -> Vec<DeviceInfo> {
        let mut v: Vec<_> = self
            .devices
            .lock()
            .unwrap()
            .iter()
            .map(|(n, d)| DeviceInfo {
                name: n.clone(),
                since_us: d.since_us,
                peer: d.peer.clone(),
            })
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Sends `command args` to device `target` and waits up to `timeout` for its reply. The
    /// caller never waits longer than `timeout`, whatever the device's socket does: a device whose
    /// outgoing queue stays full is answered `Timeout` too.
    pub async fn call(
        &self,
        target: &str,
        command: &str,
        args: Vec<String>,
        timeout: Duration,
    ) -> CommandOutcome {
        let deadline = tokio::time::Instant::now() + timeout;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        let (tx, rx) = oneshot::channel();
        let (out, conn) = {
            let devices = self.devices.lock().unwrap();
            match devices.get(target) {
                Some(d) => (d.out.clone(), d.holder.conn),
                None => {
                    return CommandOutcome {
                        status: ReplyStatus::UnknownDevice,
                        body: Bytes::from(format!("no device named {target:?} is connected")),
                    }
                }
            }
        };
        self.waiting
            .lock()
            .unwrap()
            .insert(id, Waiting { conn, reply: tx });
        let msg = Message::Command(Command {
            id,
            target: target.to_owned(),
            command: command.to_owned(),
            args,
        });
        let timed_out = || CommandOutcome {
            status: ReplyStatus::Timeout,
            body: Bytes::from(format!(
                "device {target:?} did not answer within {} ms",
                timeout.as_millis()
            )),
        };
        let sent = match msg.to_bytes() {
            Ok(b) => match out.send_timeout(Out::Msg(b), timeout).await {
                Ok(()) => Ok(()),
                Err(NotSent::Timeout) => Err(CommandOutcome {
                    status: ReplyStatus::Timeout,
                    body: Bytes::from(format!(
                        "device {target:?} is not reading: its queue stayed full for {} ms",
                        timeout.as_millis()
                    )),
                }),
                Err(NotSent::Closed) => Err(CommandOutcome {
                    status: ReplyStatus::Failed,
                    body: Bytes::from_static(b"the device disconnected"),
                }),
            },
            // Not the device's fault: say what is wrong with the command (an argument over
            // 65,535 bytes was once reported as "the device disconnected").
            Err(e) => Err(CommandOutcome {
                status: ReplyStatus::Failed,
                body: Bytes::from(format!("the command cannot be sent: {e}")),
            }),
        };
        let outcome = if let Err(o) = sent {
            o
        } else {
            match tokio::time::timeout_at(deadline, rx).await {
                Ok(Ok(o)) => o,
                Ok(Err(_)) => CommandOutcome {
                    status: ReplyStatus::Failed,
                    body: Bytes::from_static(b"the device disconnected before answering"),
                },
                Err(_) => timed_out(),
            }
        };
        self.waiting.lock().unwrap().remove(&id);
        outcome
    }

    /// A device's reply arrived on connection `conn`. Returns `false` if no command of that
    /// connection waits for it (late, or not ours).
    pub(crate) fn reply(&self, conn: u64, r: Reply) -> bool {
        let mut waiting = self.waiting.lock().unwrap();
        match waiting.get(&r.id) {
            Some(w) if w.conn == conn => {
                let w = waiting.remove(&r.id).expect("present");
                let _ = w.reply.send(CommandOutcome {
                    status: r.status,
                    body: r.body,
                });
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use framewire_proto::decode;

    fn claimant(conn: u64, token: &str) -> Claimant {
        Claimant {
            conn,
            token: token.into(),
            admin: false,
        }
    }

    #[test]
    fn a_name_belongs_to_its_holder() {
        let reg = DeviceRegistry::default();
        let (tx, _rx) = Outbox::new(crate::gate::Memory::new(1 << 20));
        reg.register("cam", &claimant(1, "a"), tx.clone(), 0, "t".into(), || {})
            .unwrap();
        assert!(reg
            .register("cam", &claimant(2, "b"), tx.clone(), 0, "t".into(), || {})
            .is_err());
        // The same token reconnecting takes it back; so does an admin.
        reg.register("cam", &claimant(3, "a"), tx.clone(), 0, "t".into(), || {})
            .unwrap();
        let admin = Claimant {
            admin: true,
            ..claimant(4, "ops")
        };
        reg.register("cam", &admin, tx.clone(), 0, "t".into(), || {})
            .unwrap();
        // Without tokens, the first holder keeps it.
        reg.register("open", &claimant(5, ""), tx.clone(), 0, "t".into(), || {})
            .unwrap();
        assert!(reg
            .register("open", &claimant(6, ""), tx, 0, "t".into(), || {})
            .is_err());
    }

    #[tokio::test]
    async fn routes_command_and_reply() {
        let reg = std::sync::Arc::new(DeviceRegistry::default());
        let (tx, mut rx) = Outbox::new(crate::gate::Memory::new(1 << 20));
        reg.register("cam", &claimant(7, "a"), tx, 0, "t".into(), || {})
            .unwrap();
        let r2 = std::sync::Arc::clone(&reg);
        let device = tokio::spawn(async move {
            let Out::Msg(b) = rx.recv().await.unwrap().out else {
                panic!()
            };
            let mut buf = bytes::BytesMut::from(&b[..]);
            let Some(Message::Command(c)) = decode(&mut buf, 1 << 20).unwrap() else {
                panic!()
            };
            assert_eq!(
                (c.command.as_str(), c.args.as_slice()),
                ("set", &["fps".to_string(), "5".to_string()][..])
            );
            // A reply from another connection is not accepted.
            assert!(!r2.reply(
                8,
                Reply {
                    id: c.id,
                    status: ReplyStatus::Ok,
                    body: Bytes::new()
                }
            ));
            assert!(r2.reply(
                7,
                Reply {
                    id: c.id,
                    status: ReplyStatus::Ok,
                    body: Bytes::from_static(b"fps=5")
                }
            ));
        });
        let o = reg
            .call(
                "cam",
                "set",
                vec!["fps".into(), "5".into()],
                Duration::from_secs(5),
            )
            .await;
        assert_eq!(
            o,
            CommandOutcome {
                status: ReplyStatus::Ok,
                body: Bytes::from_static(b"fps=5")
            }
        );
        device.await.unwrap();
    }

    #[tokio::test]
    async fn unknown_silent_and_vanishing_devices() {
        let reg = DeviceRegistry::default();
        assert_eq!(
            reg.call("nope", "x", vec![], Duration::from_secs(1))
                .await
                .status,
            ReplyStatus::UnknownDevice
        );
        let (tx, _rx) = Outbox::new(crate::gate::Memory::new(1 << 20));
        reg.register("mute", &claimant(1, ""), tx, 0, "t".into(), || {})
            .unwrap();
        let o = reg
            .call("mute", "x", vec![], Duration::from_millis(50))
            .await;
        assert_eq!(o.status, ReplyStatus::Timeout);
        reg.unregister_conn(1);
        assert!(reg.list().is_empty());
    }

    #[tokio::test]
    async fn a_command_too_long_to_send_says_so() {
        let reg = DeviceRegistry::default();
        let (tx, _rx) = Outbox::new(crate::gate::Memory::new(1 << 20));
        reg.register("cam", &claimant(1, ""), tx, 0, "t".into(), || {})
            .unwrap();
        let o = reg
            .call(
                "cam",
                "set",
                vec!["x".repeat(70_000)],
                Duration::from_secs(1),
            )
            .await;
        assert_eq!(o.status, ReplyStatus::Failed);
        let body = String::from_utf8_lossy(&o.body).into_owned();
        assert!(body.starts_with("the command cannot be sent"), "{body}");
        assert!(!body.contains("disconnected"), "{body}");
    }
}
