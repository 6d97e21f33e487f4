//! Texts addressed to a name (`TextTo`): the names programs follow events under, and the delivery
//! to whichever connection holds a name, a registered device first.
//!
//! Delivery never waits: the text goes into the receiver's outgoing queue if there is room, else
//! the sender is told the receiver is busy.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::conn::{NotSent, Outbox};
use framewire_proto::{DeliveryStatus, Message, TextFrom};

use crate::auth::Claimant;
use crate::conn::Out;
use crate::devices::DeviceRegistry;

struct Holder {
    who: Claimant,
    out: Outbox,
}

/// Names held by followers (programs that receive texts).
#[derive(Default)]
pub struct Receivers {
    names: Mutex<HashMap<String, Holder>>,
}

impl Receivers {
    /// Makes connection `who` the receiver of texts for `name`, under the same rules as a device
    /// name (the holder keeps it; the same token or an admin may take it over).
    ///
    /// # Errors
    /// Why the name may not be claimed.
    pub(crate) fn claim(&self, name: &str, who: &Claimant, out: Outbox) -> Result<(), String> {
        let mut names = self.names.lock().unwrap();
        if let Some(old) = names.get(name) {
            if old.who.conn != who.conn && !who.may_take_from(&old.who) {
                return Err(format!(
                    "the name {name:?} belongs to another connection; only the same token or an admin token may take it over"
                ));
            }
        }
        names.insert(
            name.to_owned(),
            Holder {
                who: who.clone(),
                out,
            },
        );
        Ok(())
    }

    /// Forgets every name of connection `conn`.
    pub(crate) fn release_conn(&self, conn: u64) {
        self.names.lock().unwrap().retain(|_, h| h.who.conn != conn);
    }

    fn outbox(&self, name: &str) -> Option<Outbox> {
        self.names.lock().unwrap().get(name).map(|h| h.out.clone())
    }

    /// Whether some follower holds `name`.
    pub fn holds(&self, name: &str) -> bool {
        self.names.lock().unwrap().contains_key(name)
    }

    /// Delivers `text` from `from` to the holder of `to`: a registered device, else a follower.
    pub(crate) fn deliver(
        &self,
        devices: &DeviceRegistry,
        from: &str,
        to: &str,
        text: &str,
    ) -> DeliveryStatus {
        let Some(out) = devices.outbox(to).or_else(|| self.outbox(to)) else {
            return DeliveryStatus::NoReceiver;
        };
        let msg = Message::TextFrom(TextFrom {
            from: from.to_owned(),
            to: to.to_owned(),
            text: text.to_owned(),
        });
        let Ok(b) = msg.to_bytes() else {
            return DeliveryStatus::NoReceiver;
        };
        match out.try_send(Out::Msg(b)) {
            Ok(()) => DeliveryStatus::Delivered,
            Err(NotSent::Timeout) => DeliveryStatus::ReceiverBusy,
            Err(NotSent::Closed) => DeliveryStatus::NoReceiver,
        }
    }
}
