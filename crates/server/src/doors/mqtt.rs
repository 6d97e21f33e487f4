//! The MQTT door: the hub as a client of an MQTT broker (Home Assistant, Node-RED and cameras
//! speak it). It publishes every event as JSON on `PREFIX/events/KIND`, keeps `PREFIX/status`
//! `online` (retained; the broker publishes `offline` as the last will when the hub vanishes), and
//! turns a message on `PREFIX/devices/NAME/command` into a command to device NAME, publishing the
//! outcome on `PREFIX/devices/NAME/reply`.
//!
//! Like raw TCP and UDP, MQTT cannot present a framewire token: its commands act as the token
//! named by `--mqtt-as` (required on a hub with tokens) and need its `command` permission. When
//! the broker goes away the door logs it and reconnects by itself, once a second.

use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, Event as MqttEvent, LastWill, MqttOptions, Packet, QoS};
use serde_json::{json, Value};
use tokio::sync::broadcast;

use crate::auth::Perms;
use crate::gate::DoorAccess;
use crate::gate::DoorPolicy;
use crate::untrusted::shown;
use crate::Hub;

/// Where the MQTT door connects and what it does there.
#[derive(Debug, Clone)]
pub struct MqttSettings {
    /// The broker: `mqtt://HOST:PORT` (port 1883 if left out).
    pub url: String,
    /// Topic prefix (`framewire`).
    pub prefix: String,
    /// The token its commands act as.
    pub policy: DoorPolicy,
}

impl MqttSettings {
    /// Host and port of the broker.
    ///
    /// # Errors
    /// The URL is not `mqtt://HOST[:PORT]`.
    pub fn broker(&self) -> Result<(String, u16), String> {
        let rest = self
            .url
            .strip_prefix("mqtt://")
            .ok_or_else(|| format!("--mqtt {}: expected mqtt://HOST:PORT", self.url))?;
        let rest = rest.trim_end_matches('/');
        match rest.rsplit_once(':') {
            Some((h, p)) => p
                .parse()
                .map(|p| (h.trim_matches(['[', ']']).to_owned(), p))
                .map_err(|_| format!("--mqtt {}: bad port", self.url)),
            None => Ok((rest.to_owned(), 1883)),
        }
    }
}

/// Runs the door until the hub's `stop`.
pub(crate) async fn run(settings: MqttSettings, access: DoorAccess, hub: Arc<Hub>) {
    let Ok((host, port)) = settings.broker() else {
        return;
    };
    let prefix = settings.prefix.trim_end_matches('/').to_owned();
    let status = format!("{prefix}/status");
    let id = format!("framewire-{}-{}", hub.config.hub_name, std::process::id());
    let mut opts = MqttOptions::new(id, host, port);
    opts.set_keep_alive(Duration::from_secs(10));
    opts.set_last_will(LastWill::new(&status, "offline", QoS::AtLeastOnce, true));
    let (client, mut eventloop) = AsyncClient::new(opts, 256);
    let stop = hub.gate.stop.clone();
    let forwarding = tokio::spawn(publish_events(
        client.clone(),
        hub.events.follow(),
        prefix.clone(),
    ));
    let access = Arc::new(access);
    let mut connected = false;
    loop {
        let ev = tokio::select! {
            _ = stop.cancelled() => break,
            ev = eventloop.poll() => ev,
        };
        match ev {
            Ok(MqttEvent::Incoming(Packet::ConnAck(_))) => {
                tracing::info!(broker = %settings.url, "MQTT: connected");
                connected = true;
                let _ = client
                    .publish(&status, QoS::AtLeastOnce, true, "online")
                    .await;
                let _ = client
                    .subscribe(format!("{prefix}/devices/+/command"), QoS::AtLeastOnce)
                    .await;
            }
            Ok(MqttEvent::Incoming(Packet::Publish(p))) => {
                let Some(device) = p
                    .topic
                    .strip_prefix(&format!("{prefix}/devices/"))
                    .and_then(|t| t.strip_suffix("/command"))
                    .map(str::to_owned)
                else {
                    continue;
                };
                tokio::spawn(command(
                    Arc::clone(&hub),
                    Arc::clone(&access),
                    client.clone(),
                    prefix.clone(),
                    device,
                    p.payload,
                ));
            }
            Ok(_) => {}
            Err(e) => {
                if connected {
                    tracing::warn!(broker = %settings.url, error = %e, "MQTT: lost the broker; reconnecting");
                } else {
                    tracing::debug!(broker = %settings.url, error = %e, "MQTT: broker unreachable; retrying");
                }
                connected = false;
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
    forwarding.abort();
    if connected {
        // Say goodbye ourselves: a clean disconnect does not trigger the last will.
        let _ = client
            .publish(&status, QoS::AtLeastOnce, true, "offline")
            .await;
        let _ = client.disconnect().await;
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while eventloop.poll().await.is_ok() {}
        })
        .await;
    }
}

/// Publishes every event as JSON on `PREFIX/events/KIND`.
async fn publish_events(
    client: AsyncClient,
    mut rx: broadcast::Receiver<crate::events::Event>,
    prefix: String,
) {
    let mut dropped = 0u64;
    loop {
        match rx.recv().await {
            Ok(e) => {
                let mut v = json!({ "time_us": e.time_us, "kind": e.kind, "dropped": dropped });
                if let (Value::Object(m), Value::Object(f)) =
                    (&mut v, crate::events::fields_json(&e))
                {
                    m.extend(f);
                }
                dropped = 0;
                let topic = format!("{prefix}/events/{}", e.kind);
                if client
                    .publish(topic, QoS::AtMostOnce, false, v.to_string())
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Err(broadcast::error::RecvError::Lagged(n)) => dropped += n,
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// One command from MQTT: the payload is `VERB ARG...` as text, or JSON
/// `{"command": VERB, "args": [..]}`. The reply is JSON `{"status", "body"}`.
async fn command(
    hub: Arc<Hub>,
    access: Arc<DoorAccess>,
    client: AsyncClient,
    prefix: String,
    device: String,
    payload: bytes::Bytes,
) {
    let text = String::from_utf8_lossy(&payload).into_owned();
    let (verb, args) = match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(m)) => (
            m.get("command")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            m.get("args")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|x| {
                            x.as_str()
                                .map(str::to_owned)
                                .unwrap_or_else(|| x.to_string())
                        })
                        .collect()
                })
                .unwrap_or_default(),
        ),
        _ => {
            let mut words = text.split_whitespace().map(str::to_owned);
            (words.next().unwrap_or_default(), words.collect::<Vec<_>>())
        }
    };
    let sender = if access.identity.name.is_empty() {
        "mqtt".to_owned()
    } else {
        format!("{}@mqtt", access.identity.name)
    };
    let reply = if !access.identity.perms.allows(Perms::COMMAND) {
        json!({ "status": "Forbidden", "body": "the MQTT door's token may not command devices" })
    } else if verb.is_empty() {
        json!({ "status": "Failed", "body": "an empty command" })
    } else {
        tracing::info!(device = %shown(&device), command = %shown(&verb), "MQTT command");
        let o = hub
            .devices
            .call(&device, &verb, args.clone(), hub.config.command_timeout)
            .await;
        hub.events.command(&sender, &device, &verb, &args, &o);
        json!({ "status": format!("{:?}", o.status), "body": String::from_utf8_lossy(&o.body) })
    };
    let _ = client
        .publish(
            format!("{prefix}/devices/{device}/reply"),
            QoS::AtLeastOnce,
            false,
            reply.to_string(),
        )
        .await;
}
