//! Every framewire message, and how each one is laid out after the 8-byte header.
//!
//! Each message is a struct that implements [`Body`] in the file of its family: its type number,
//! its name, its encoder and its decoder sit together, as in quinn's frame codec. The `messages!`
//! list below names each message once and generates the [`Message`] enum, the [`kind`] numbers
//! and the dispatch from one to the other.
//!
//! A message's header `len` is never written by hand: [`Message::encode`] first runs the message's
//! encoder against a [`Measure`], which only counts, then writes the header with that count and
//! runs the same encoder against the buffer.
//!
//! Layouts are documented byte by byte in `docs/PROTOCOL.md`; `docs/protocol-vectors.json` holds
//! one encoded example of each, which the tests of every client check.

mod commands;
mod deletion;
mod error_code;
mod events;
mod files;
mod listing;
mod live;
mod session;

use bytes::{BufMut, Bytes};

pub use commands::{Command, RegisterDevice, Registered, Reply, ReplyStatus, Text};
pub use deletion::{Delete, Deleted};
pub use error_code::ErrorCode;
pub use events::{Delivery, DeliveryStatus, Event, Follow, Following, TextFrom, TextTo};
pub use files::{
    encode_data_head, offer_flags, Accept, Cancel, Data, End, FileInfo, Get, Offer, Rejected,
    Stored, StoredStatus, DATA_PREFIX_LEN,
};
pub use listing::{list_entry_len, List, ListEntry, ListPage};
pub use live::{
    encode_frame_head, frame_format, Frame, FrameAck, Publish, Subscribe, Subscribed, Unsubscribe,
};
pub use session::{ErrorMsg, Hello, Ping, Pong, Welcome};

use crate::wire::{Measure, Reader, Writer};
use crate::{DecodeError, EncodeError, Header, HEADER_LEN};

/// One message's type number, name and payload codec.
pub(crate) trait Body: Sized {
    /// The header `type` of this message.
    const KIND: u16;
    /// The message's name, for logs and errors.
    const NAME: &'static str;

    /// Writes the payload (everything after the header). The header's length is measured by
    /// running this same function against a [`Measure`].
    fn encode(&self, w: &mut impl Writer);

    /// Reads the payload. [`decode_body`] checks that nothing is left afterwards.
    ///
    /// # Errors
    /// [`DecodeError`] if the payload does not match the layout.
    fn decode(r: &mut Reader) -> Result<Self, DecodeError>;
}

/// Decodes a whole payload as `B`, refusing bytes after its last field.
fn decode_body<B: Body>(payload: Bytes) -> Result<B, DecodeError> {
    let mut r = Reader::new(payload, B::NAME);
    let body = B::decode(&mut r)?;
    r.finish()?;
    Ok(body)
}

/// Lists every message once: its doc line (direction and purpose), its [`Message`] variant, its
/// struct and the name of its [`kind`] constant. Generates the enum and its dispatch.
macro_rules! messages {
    ($($(#[$doc:meta])* $variant:ident($body:ident) = $kind:ident,)*) => {
        /// Message type numbers, as they appear in the header's `type` field.
        pub mod kind {
            #[allow(unused_imports)]
            use super::*;
            $(
                $(#[$doc])*
                pub const $kind: u16 = <$body as Body>::KIND;
            )*
        }

        /// Any framewire message.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Message {
            $(
                $(#[$doc])*
                $variant($body),
            )*
        }

        $(
            impl From<$body> for Message {
                fn from(m: $body) -> Message {
                    Message::$variant(m)
                }
            }
        )*

        impl Message {
            /// The header `type` of this message.
            pub fn kind(&self) -> u16 {
                match self {
                    $(Message::$variant(_) => <$body as Body>::KIND,)*
                }
            }

            /// The message's name, for logs and errors.
            pub fn name(&self) -> &'static str {
                match self {
                    $(Message::$variant(_) => <$body as Body>::NAME,)*
                }
            }

            fn encode_body(&self, w: &mut impl Writer) {
                match self {
                    $(Message::$variant(m) => m.encode(w),)*
                }
            }

            /// Decodes one message's payload, given its already-checked header.
            ///
            /// # Errors
            /// [`DecodeError`] if the type is unknown or the payload does not match the type's
            /// layout.
            pub fn decode_payload(kind: u16, payload: Bytes) -> Result<Message, DecodeError> {
                match kind {
                    $(kind::$kind => decode_body::<$body>(payload).map(Message::$variant),)*
                    _ => Err(DecodeError::UnknownType { kind }),
                }
            }
        }

        /// The name of a message type, or `None` if the number is not a known type.
        pub fn kind_name(k: u16) -> Option<&'static str> {
            match k {
                $(kind::$kind => Some(<$body as Body>::NAME),)*
                _ => None,
            }
        }

        /// Every message as (variant, type number, name), to test the list against itself.
        #[cfg(test)]
        const LISTED: &[(&str, u16, &str)] = &[
            $((stringify!($variant), <$body as Body>::KIND, <$body as Body>::NAME),)*
        ];
    };
}

messages! {
    /// Client → hub: first message of every connection.
    Hello(Hello) = HELLO,
    /// Hub → client: handshake accepted; the hub's limits and clock.
    Welcome(Welcome) = WELCOME,
    /// Either way: an error about the connection (id 0) or about one request.
    Error(ErrorMsg) = ERROR,
    /// Either way: liveness and clock probe.
    Ping(Ping) = PING,
    /// Either way: answer to [`PING`](kind::PING).
    Pong(Pong) = PONG,
    /// Either way: a short text message; the hub answers with a text of the same id.
    Text(Text) = TEXT,
    /// Client → hub: a text for the client holding a name; answered with `Delivery`.
    TextTo(TextTo) = TEXT_TO,
    /// Hub → client: what became of a `TextTo`.
    Delivery(Delivery) = DELIVERY,
    /// Hub → receiver: a text addressed to a name this connection holds.
    TextFrom(TextFrom) = TEXT_FROM,
    /// Client → hub → device: run a command on a named device.
    Command(Command) = COMMAND,
    /// Device → hub → client: a command's outcome.
    Reply(Reply) = REPLY,
    /// Client → hub: this connection answers commands for a device name.
    RegisterDevice(RegisterDevice) = REGISTER_DEVICE,
    /// Hub → client (version 2): the registration is in effect.
    Registered(Registered) = REGISTERED,
    /// Client → hub: I want to store a file at this path.
    Offer(Offer) = OFFER,
    /// Hub → client: send the file's bytes from this offset.
    Accept(Accept) = ACCEPT,
    /// Either way: a chunk of a file's bytes.
    Data(Data) = DATA,
    /// Either way: the file's bytes are complete; here is its BLAKE3 hash.
    End(End) = END,
    /// Hub → client: the file is durably stored.
    Stored(Stored) = STORED,
    /// Hub → client: the file was not stored, and why.
    Rejected(Rejected) = REJECTED,
    /// Client → hub: abandon an upload (its partial bytes are discarded).
    Cancel(Cancel) = CANCEL,
    /// Client → hub: send me a stored file.
    Get(Get) = GET,
    /// Hub → client: size and hash of the file about to be sent.
    FileInfo(FileInfo) = FILE_INFO,
    /// Client → hub: list stored files.
    List(List) = LIST,
    /// Hub → client: one page of a listing.
    ListPage(ListPage) = LIST_PAGE,
    /// Client → hub: remove a stored file.
    Delete(Delete) = DELETE,
    /// Hub → client: the file is durably removed.
    Deleted(Deleted) = DELETED,
    /// Either way: one live video frame.
    Frame(Frame) = FRAME,
    /// Client → hub: send me the frames of a stream, newest first.
    Subscribe(Subscribe) = SUBSCRIBE,
    /// Client → hub: stop sending a stream.
    Unsubscribe(Unsubscribe) = UNSUBSCRIBE,
    /// Either way: a frame was consumed (returns one unit of the window).
    FrameAck(FrameAck) = FRAME_ACK,
    /// Client → hub: this connection publishes a stream, with its settings.
    Publish(Publish) = PUBLISH,
    /// Hub → client (version 2): the subscription is in effect, with the window granted.
    Subscribed(Subscribed) = SUBSCRIBED,
    /// Client → hub: send me the hub's events (filtered), and texts addressed to a name.
    Follow(Follow) = FOLLOW,
    /// Hub → client: the `Follow` is in effect.
    Following(Following) = FOLLOWING,
    /// Hub → follower: one thing that happened.
    Event(Event) = EVENT,
}

impl Message {
    /// Size of the payload (everything after the header) when encoded, measured by running the
    /// encoder without writing.
    pub fn payload_len(&self) -> usize {
        Measure::of(|w| self.encode_body(w)).len()
    }

    /// The payload length for the header, checking every field can be encoded.
    fn checked_len(&self) -> Result<u32, EncodeError> {
        Measure::of(|w| self.encode_body(w)).checked_len()
    }

    fn header(&self, len: u32) -> Header {
        Header {
            kind: self.kind(),
            flags: 0,
            len,
        }
    }

    /// Appends the encoded message (header and payload) to `dst`.
    ///
    /// # Errors
    /// [`EncodeError`] if a string is longer than its `u16` length prefix allows, a list has more
    /// items than its count can say, or the payload is longer than 4 GiB. Nothing is written in
    /// that case.
    pub fn encode(&self, dst: &mut impl BufMut) -> Result<(), EncodeError> {
        let len = self.checked_len()?;
        self.header(len).encode(dst);
        self.encode_body(dst);
        Ok(())
    }

    /// Encodes into a fresh buffer.
    ///
    /// # Errors
    /// As [`Message::encode`].
    pub fn to_bytes(&self) -> Result<Bytes, EncodeError> {
        let len = self.checked_len()?;
        let mut v = Vec::with_capacity(HEADER_LEN + len as usize);
        self.header(len).encode(&mut v);
        self.encode_body(&mut v);
        debug_assert_eq!(v.len(), HEADER_LEN + len as usize);
        Ok(Bytes::from(v))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_listed_message_has_its_own_kind_and_its_variant_name() {
        let mut kinds = HashSet::new();
        for &(variant, k, name) in LISTED {
            assert!(kinds.insert(k), "type 0x{k:04x} listed twice");
            assert_eq!(name, variant, "NAME of 0x{k:04x}");
            assert_eq!(kind_name(k), Some(name));
        }
        let known = (0..=u16::MAX).filter(|&k| kind_name(k).is_some()).count();
        assert_eq!(known, LISTED.len());
    }

    #[test]
    fn header_length_is_what_the_encoder_writes() {
        let m = Message::from(Command {
            id: 1,
            target: "cam".into(),
            command: "capture".into(),
            args: vec!["a".into(), String::new()],
        });
        let mut v = Vec::new();
        m.encode(&mut v).unwrap();
        let h = Header::peek(&v).unwrap();
        assert_eq!(h.len as usize, v.len() - HEADER_LEN);
        assert_eq!(h.len as usize, m.payload_len());
    }

    #[test]
    fn too_many_items_is_refused_before_anything_is_written() {
        let m = Message::from(Command {
            id: 1,
            target: String::new(),
            command: String::new(),
            args: vec![String::new(); u16::MAX as usize + 1],
        });
        let mut v = Vec::new();
        assert_eq!(
            m.encode(&mut v),
            Err(EncodeError::TooManyItems { field: "args" })
        );
        assert!(v.is_empty());
        assert_eq!(
            m.to_bytes(),
            Err(EncodeError::TooManyItems { field: "args" })
        );
    }
}
