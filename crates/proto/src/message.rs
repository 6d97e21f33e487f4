//! Every framewire message, and how each one is laid out after the 8-byte header.
//!
//! Layouts are documented byte by byte in `docs/PROTOCOL.md`; `docs/protocol-vectors.json` holds
//! one encoded example of each, which the tests of every client check.

use bytes::{BufMut, Bytes};

use crate::wire::{check_str16, put_str16, str16_len, Reader};
use crate::{DecodeError, EncodeError, Header, HEADER_LEN, MAGIC};

/// Message type numbers, as they appear in the header's `type` field.
pub mod kind {
    /// Client → hub: first message of every connection.
    pub const HELLO: u16 = 0x0001;
    /// Hub → client: handshake accepted; the hub's limits and clock.
    pub const WELCOME: u16 = 0x0002;
    /// Either way: an error about the connection (id 0) or about one request.
    pub const ERROR: u16 = 0x0003;
    /// Either way: liveness and clock probe.
    pub const PING: u16 = 0x0004;
    /// Either way: answer to [`PING`].
    pub const PONG: u16 = 0x0005;
    /// Either way: a short text message; the hub answers with a text of the same id.
    pub const TEXT: u16 = 0x0010;
    /// Client → hub → device: run a command on a named device.
    pub const COMMAND: u16 = 0x0020;
    /// Device → hub → client: a command's outcome.
    pub const REPLY: u16 = 0x0021;
    /// Client → hub: this connection answers commands for a device name.
    pub const REGISTER_DEVICE: u16 = 0x0022;
    /// Client → hub: I want to store a file at this path.
    pub const OFFER: u16 = 0x0030;
    /// Hub → client: send the file's bytes from this offset.
    pub const ACCEPT: u16 = 0x0031;
    /// Either way: a chunk of a file's bytes.
    pub const DATA: u16 = 0x0032;
    /// Either way: the file's bytes are complete; here is its BLAKE3 hash.
    pub const END: u16 = 0x0033;
    /// Hub → client: the file is durably stored.
    pub const STORED: u16 = 0x0034;
    /// Hub → client: the file was not stored, and why.
    pub const REJECTED: u16 = 0x0035;
    /// Client → hub: abandon an upload (its partial bytes are discarded).
    pub const CANCEL: u16 = 0x0036;
    /// Client → hub: send me a stored file.
    pub const GET: u16 = 0x0038;
    /// Hub → client: size and hash of the file about to be sent.
    pub const FILE_INFO: u16 = 0x0039;
    /// Client → hub: list stored files.
    pub const LIST: u16 = 0x003A;
    /// Hub → client: one page of a listing.
    pub const LIST_PAGE: u16 = 0x003B;
    /// Either way: one live video frame.
    pub const FRAME: u16 = 0x0040;
    /// Client → hub: send me the frames of a stream, newest first.
    pub const SUBSCRIBE: u16 = 0x0041;
    /// Client → hub: stop sending a stream.
    pub const UNSUBSCRIBE: u16 = 0x0042;
    /// Either way: a frame was consumed (returns one unit of the window).
    pub const FRAME_ACK: u16 = 0x0043;
    /// Client → hub: this connection publishes a stream, with its settings.
    pub const PUBLISH: u16 = 0x0044;
}

/// Flags of an [`Offer`].
pub mod offer_flags {
    /// Replace a different file already stored at the path (atomically).
    pub const OVERWRITE: u8 = 0x01;
    /// Ignore any partial upload of this path and start from byte 0.
    pub const NO_RESUME: u8 = 0x02;
}

/// Image formats carried by a [`Frame`].
pub mod frame_format {
    /// JPEG (baseline or progressive).
    pub const JPEG: u8 = 1;
    /// PNG.
    pub const PNG: u8 = 2;
    /// Raw 8-bit RGB, `width * height * 3` bytes, rows top to bottom.
    pub const RGB8: u8 = 3;
    /// Raw 8-bit grey, `width * height` bytes.
    pub const GRAY8: u8 = 4;
}

/// Status byte of a [`Stored`] message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredStatus {
    /// The path did not exist before; the file is new.
    New = 0,
    /// The path held a different file, which was replaced atomically (overwrite was asked for).
    Replaced = 1,
    /// The path already held exactly these bytes; nothing was transferred or written.
    Unchanged = 2,
}

impl StoredStatus {
    fn from_u8(v: u8) -> Result<Self, DecodeError> {
        Ok(match v {
            0 => StoredStatus::New,
            1 => StoredStatus::Replaced,
            2 => StoredStatus::Unchanged,
            _ => {
                return Err(DecodeError::BadField {
                    message: "Stored",
                    field: "status",
                })
            }
        })
    }
}

/// Status byte of a [`Reply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyStatus {
    /// The command ran; the body is its output.
    Ok = 0,
    /// The device ran the command and it failed; the body says why.
    Failed = 1,
    /// No device of that name is connected.
    UnknownDevice = 2,
    /// The device does not know the command.
    UnknownCommand = 3,
    /// The device did not answer in time.
    Timeout = 4,
}

impl ReplyStatus {
    fn from_u8(v: u8) -> Result<Self, DecodeError> {
        Ok(match v {
            0 => ReplyStatus::Ok,
            1 => ReplyStatus::Failed,
            2 => ReplyStatus::UnknownDevice,
            3 => ReplyStatus::UnknownCommand,
            4 => ReplyStatus::Timeout,
            _ => {
                return Err(DecodeError::BadField {
                    message: "Reply",
                    field: "status",
                })
            }
        })
    }
}

/// Error codes carried by [`ErrorMsg`] and [`Rejected`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The peer is not speaking framewire (wrong magic, or an HTTP request on the native port).
    NotFramewire,
    /// The client's protocol version is not supported by the hub.
    UnsupportedVersion,
    /// A message could not be decoded.
    Malformed,
    /// A message or file exceeds a limit.
    TooLarge,
    /// The remote path is not allowed (absolute, `..`, control characters, ...).
    BadPath,
    /// A different file is already stored at the path and overwrite was not asked for.
    Exists,
    /// The received bytes do not hash to what the sender announced.
    HashMismatch,
    /// The hub's storage is full.
    StorageFull,
    /// The path or object does not exist.
    NotFound,
    /// Another upload to the same path is in progress.
    Busy,
    /// The token is missing or wrong.
    Unauthorized,
    /// The token lacks the permission for this request.
    Forbidden,
    /// The peer took too long.
    Timeout,
    /// The request breaks the protocol's sequence (e.g. data for a file that was never accepted).
    ProtocolViolation,
    /// The sender sent more or fewer bytes than it offered.
    SizeMismatch,
    /// The upload was cancelled by the client.
    Cancelled,
    /// The hub is shutting down.
    ShuttingDown,
    /// Something went wrong inside the hub.
    Internal,
    /// A code this library does not know (from a newer peer).
    Other(u16),
}

impl ErrorCode {
    /// The code's number on the wire.
    pub fn to_u16(self) -> u16 {
        match self {
            ErrorCode::NotFramewire => 1,
            ErrorCode::UnsupportedVersion => 2,
            ErrorCode::Malformed => 3,
            ErrorCode::TooLarge => 4,
            ErrorCode::BadPath => 5,
            ErrorCode::Exists => 6,
            ErrorCode::HashMismatch => 7,
            ErrorCode::StorageFull => 8,
            ErrorCode::NotFound => 9,
            ErrorCode::Busy => 10,
            ErrorCode::Unauthorized => 11,
            ErrorCode::Forbidden => 12,
            ErrorCode::Timeout => 13,
            ErrorCode::ProtocolViolation => 14,
            ErrorCode::SizeMismatch => 15,
            ErrorCode::Cancelled => 16,
            ErrorCode::ShuttingDown => 17,
            ErrorCode::Internal => 18,
            ErrorCode::Other(v) => v,
        }
    }

    /// The code for a number on the wire; unknown numbers become [`ErrorCode::Other`].
    pub fn from_u16(v: u16) -> Self {
        match v {
            1 => ErrorCode::NotFramewire,
            2 => ErrorCode::UnsupportedVersion,
            3 => ErrorCode::Malformed,
            4 => ErrorCode::TooLarge,
            5 => ErrorCode::BadPath,
            6 => ErrorCode::Exists,
            7 => ErrorCode::HashMismatch,
            8 => ErrorCode::StorageFull,
            9 => ErrorCode::NotFound,
            10 => ErrorCode::Busy,
            11 => ErrorCode::Unauthorized,
            12 => ErrorCode::Forbidden,
            13 => ErrorCode::Timeout,
            14 => ErrorCode::ProtocolViolation,
            15 => ErrorCode::SizeMismatch,
            16 => ErrorCode::Cancelled,
            17 => ErrorCode::ShuttingDown,
            18 => ErrorCode::Internal,
            other => ErrorCode::Other(other),
        }
    }

    /// A short lowercase name, for logs and metrics labels.
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::NotFramewire => "not_framewire",
            ErrorCode::UnsupportedVersion => "unsupported_version",
            ErrorCode::Malformed => "malformed",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::BadPath => "bad_path",
            ErrorCode::Exists => "exists",
            ErrorCode::HashMismatch => "hash_mismatch",
            ErrorCode::StorageFull => "storage_full",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Busy => "busy",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::Timeout => "timeout",
            ErrorCode::ProtocolViolation => "protocol_violation",
            ErrorCode::SizeMismatch => "size_mismatch",
            ErrorCode::Cancelled => "cancelled",
            ErrorCode::ShuttingDown => "shutting_down",
            ErrorCode::Internal => "internal",
            ErrorCode::Other(_) => "other",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Client → hub, first message: who I am and which protocol version I speak.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// Highest protocol version the client speaks.
    pub version: u16,
    /// A name for logs and the index's `sender` column (e.g. `cam-kitchen`).
    pub name: String,
    /// Access token; empty when the hub needs none.
    pub token: String,
}

/// Hub → client: the handshake succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Welcome {
    /// The protocol version used on this connection.
    pub version: u16,
    /// The hub's wall clock, microseconds since the Unix epoch, when it sent this.
    pub hub_time_us: i64,
    /// Largest payload the hub accepts in one message.
    pub max_payload: u32,
    /// Largest file the hub stores.
    pub max_file_size: u64,
    /// The chunk size the hub suggests for [`Data`].
    pub chunk_size: u32,
    /// How many offers a client may have outstanding (offered, no `Stored`/`Rejected` yet).
    pub max_inflight: u16,
    /// The hub's name.
    pub hub_name: String,
}

/// An error about the connection (`id` 0, after which the sender closes) or about request `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorMsg {
    /// What went wrong.
    pub code: ErrorCode,
    /// The request, file or command id the error is about; 0 for the connection.
    pub id: u32,
    /// A human-readable explanation.
    pub message: String,
}

/// Liveness and clock probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ping {
    /// Echoed in the [`Pong`].
    pub nonce: u64,
    /// Sender's wall clock (µs since the Unix epoch) when sent.
    pub time_us: i64,
}

/// Answer to a [`Ping`]: with the ping's time and the answerer's clock, the pinger can estimate the
/// round trip and the offset between the two clocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pong {
    /// The ping's nonce.
    pub nonce: u64,
    /// The ping's `time_us`, echoed.
    pub ping_time_us: i64,
    /// The answerer's wall clock (µs since the Unix epoch) when it answered.
    pub time_us: i64,
}

/// A short text message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    /// Chosen by the sender; the hub's answer carries the same id.
    pub id: u32,
    /// The text (UTF-8), the rest of the payload.
    pub text: String,
}

/// Run `command` on the device named `target`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// Chosen by the sender; the [`Reply`] carries the same id. Several may be in flight.
    pub id: u32,
    /// Device name.
    pub target: String,
    /// Command verb, e.g. `capture`.
    pub command: String,
    /// Arguments.
    pub args: Vec<String>,
}

/// A command's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The command's id.
    pub id: u32,
    /// Outcome.
    pub status: ReplyStatus,
    /// Output or explanation (usually UTF-8 text), the rest of the payload.
    pub body: Bytes,
}

/// This connection answers [`Command`]s for device `name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterDevice {
    /// Device name.
    pub name: String,
}

/// I want to store `size` bytes at `path` (relative, `/`-separated, see [`crate::RemotePath`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// Chosen by the client, unique among its outstanding offers.
    pub id: u32,
    /// [`offer_flags`].
    pub flags: u8,
    /// Exact size of the file.
    pub size: u64,
    /// Where to store it.
    pub path: String,
}

/// Send the file from `offset`. When `offset > 0`, the hub already holds bytes `[0, offset)`
/// (a partial upload, or the whole stored file when `offset == size`) and `prefix_hash` is their
/// BLAKE3 hash, so the client can check they match its own before going on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accept {
    /// The offer's id.
    pub id: u32,
    /// First byte the hub wants.
    pub offset: u64,
    /// BLAKE3 of the hub's bytes `[0, offset)`.
    pub prefix_hash: [u8; 32],
}

/// A chunk of a file, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Data {
    /// The offer's (or get's) id.
    pub id: u32,
    /// The bytes, the rest of the payload.
    pub bytes: Bytes,
}

/// All bytes are sent; `hash` is the BLAKE3 of the whole file (from byte 0), if the sender computed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct End {
    /// The offer's (or get's) id.
    pub id: u32,
    /// BLAKE3 of the whole file; `None` for senders too small to hash (the hub then reports its hash
    /// in [`Stored`] and checks the size only).
    pub hash: Option<[u8; 32]>,
}

/// The file is stored and durable (fsynced and renamed into place).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The offer's id.
    pub id: u32,
    /// New, replaced or unchanged.
    pub status: StoredStatus,
    /// Size stored.
    pub size: u64,
    /// BLAKE3 of the stored bytes, computed by the hub.
    pub hash: [u8; 32],
}

/// The file was not stored; nothing of it is visible on the hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// The offer's id.
    pub id: u32,
    /// Why, as a code.
    pub code: ErrorCode,
    /// Why, for people.
    pub reason: String,
}

/// Abandon upload `id`; the hub answers with [`Rejected`] (code `Cancelled`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cancel {
    /// The offer's id.
    pub id: u32,
}

/// Send me the file at `path`, starting at `offset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Get {
    /// Chosen by the client.
    pub id: u32,
    /// First byte wanted.
    pub offset: u64,
    /// Stored path.
    pub path: String,
}

/// The file about to be sent for a [`Get`]: [`Data`] chunks and an [`End`] with the same id follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    /// The get's id.
    pub id: u32,
    /// Whole size of the stored file.
    pub size: u64,
    /// BLAKE3 of the whole stored file.
    pub hash: [u8; 32],
}

/// List stored files whose path starts with `prefix`, in path order, after `after`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct List {
    /// Chosen by the client.
    pub id: u32,
    /// Most entries wanted in this page (the hub may send fewer).
    pub limit: u32,
    /// Path prefix filter; empty for all.
    pub prefix: String,
    /// Resume after this path (the last path of the previous page); empty to start.
    pub after: String,
}

/// One stored file, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    /// Stored path.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// BLAKE3 of the content.
    pub hash: [u8; 32],
    /// When it was stored, µs since the Unix epoch.
    pub stored_us: i64,
    /// The name of the client that stored it.
    pub sender: String,
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPage {
    /// The list request's id.
    pub id: u32,
    /// Whether more entries follow (ask again with `after` = last path).
    pub more: bool,
    /// The entries.
    pub entries: Vec<ListEntry>,
}

/// One live video frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Stream name.
    pub stream: String,
    /// Publisher's frame number (gaps mean skipped frames).
    pub seq: u64,
    /// Capture time on the **hub's** clock, µs since the Unix epoch: the publisher converts its
    /// capture time with the clock offset it measured by Ping/Pong, so ages compare across machines.
    pub capture_us: i64,
    /// [`frame_format`].
    pub format: u8,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Encoded image, the rest of the payload.
    pub payload: Bytes,
}

/// Send me stream `stream`'s frames, newest first, with at most `window` frames unacknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    /// Stream name.
    pub stream: String,
    /// Frames the hub may send before a [`FrameAck`]; 0 means the hub's default (1).
    pub window: u16,
}

/// Stop sending stream `stream`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    /// Stream name.
    pub stream: String,
}

/// This connection publishes `stream`: the hub drops frames older than `max_latency_ms` on arrival
/// (0: no limit). Sending [`Frame`]s without it publishes with no limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    /// Stream name.
    pub stream: String,
    /// Frames whose age (hub clock minus `capture_us`) exceeds this on arrival are dropped.
    pub max_latency_ms: u32,
}

/// Frame `seq` of `stream` was consumed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameAck {
    /// Stream name.
    pub stream: String,
    /// The frame's sequence number.
    pub seq: u64,
}

/// Any framewire message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Message {
    Hello(Hello),
    Welcome(Welcome),
    Error(ErrorMsg),
    Ping(Ping),
    Pong(Pong),
    Text(Text),
    Command(Command),
    Reply(Reply),
    RegisterDevice(RegisterDevice),
    Offer(Offer),
    Accept(Accept),
    Data(Data),
    End(End),
    Stored(Stored),
    Rejected(Rejected),
    Cancel(Cancel),
    Get(Get),
    FileInfo(FileInfo),
    List(List),
    ListPage(ListPage),
    Frame(Frame),
    Subscribe(Subscribe),
    Unsubscribe(Unsubscribe),
    FrameAck(FrameAck),
    Publish(Publish),
}

/// Encoded size of one [`ListEntry`].
pub fn list_entry_len(e: &ListEntry) -> usize {
    str16_len(&e.path) + 8 + 32 + 8 + str16_len(&e.sender)
}

/// Encoded payload size of a [`Data`] header part (the id), before the bytes.
pub const DATA_PREFIX_LEN: usize = 4;

impl Message {
    /// The header `type` of this message.
    pub fn kind(&self) -> u16 {
        match self {
            Message::Hello(_) => kind::HELLO,
            Message::Welcome(_) => kind::WELCOME,
            Message::Error(_) => kind::ERROR,
            Message::Ping(_) => kind::PING,
            Message::Pong(_) => kind::PONG,
            Message::Text(_) => kind::TEXT,
            Message::Command(_) => kind::COMMAND,
            Message::Reply(_) => kind::REPLY,
            Message::RegisterDevice(_) => kind::REGISTER_DEVICE,
            Message::Offer(_) => kind::OFFER,
            Message::Accept(_) => kind::ACCEPT,
            Message::Data(_) => kind::DATA,
            Message::End(_) => kind::END,
            Message::Stored(_) => kind::STORED,
            Message::Rejected(_) => kind::REJECTED,
            Message::Cancel(_) => kind::CANCEL,
            Message::Get(_) => kind::GET,
            Message::FileInfo(_) => kind::FILE_INFO,
            Message::List(_) => kind::LIST,
            Message::ListPage(_) => kind::LIST_PAGE,
            Message::Frame(_) => kind::FRAME,
            Message::Subscribe(_) => kind::SUBSCRIBE,
            Message::Unsubscribe(_) => kind::UNSUBSCRIBE,
            Message::FrameAck(_) => kind::FRAME_ACK,
            Message::Publish(_) => kind::PUBLISH,
        }
    }

    /// The message's name, for logs and errors.
    pub fn name(&self) -> &'static str {
        kind_name(self.kind()).unwrap_or("Unknown")
    }

    /// Size of the payload (everything after the header) when encoded.
    pub fn payload_len(&self) -> usize {
        match self {
            Message::Hello(m) => 4 + 2 + str16_len(&m.name) + str16_len(&m.token),
            Message::Welcome(m) => 2 + 8 + 4 + 8 + 4 + 2 + str16_len(&m.hub_name),
            Message::Error(m) => 2 + 4 + m.message.len(),
            Message::Ping(_) => 16,
            Message::Pong(_) => 24,
            Message::Text(m) => 4 + m.text.len(),
            Message::Command(m) => {
                4 + str16_len(&m.target)
                    + str16_len(&m.command)
                    + 2
                    + m.args.iter().map(|a| str16_len(a)).sum::<usize>()
            }
            Message::Reply(m) => 4 + 1 + m.body.len(),
            Message::RegisterDevice(m) => str16_len(&m.name),
            Message::Offer(m) => 4 + 1 + 8 + str16_len(&m.path),
            Message::Accept(_) => 4 + 8 + 32,
            Message::Data(m) => DATA_PREFIX_LEN + m.bytes.len(),
            Message::End(_) => 4 + 1 + 32,
            Message::Stored(_) => 4 + 1 + 8 + 32,
            Message::Rejected(m) => 4 + 2 + m.reason.len(),
            Message::Cancel(_) => 4,
            Message::Get(m) => 4 + 8 + str16_len(&m.path),
            Message::FileInfo(_) => 4 + 8 + 32,
            Message::List(m) => 4 + 4 + str16_len(&m.prefix) + str16_len(&m.after),
            Message::ListPage(m) => 4 + 1 + 4 + m.entries.iter().map(list_entry_len).sum::<usize>(),
            Message::Frame(m) => str16_len(&m.stream) + 8 + 8 + 1 + 4 + 4 + m.payload.len(),
            Message::Subscribe(m) => str16_len(&m.stream) + 2,
            Message::Unsubscribe(m) => str16_len(&m.stream),
            Message::FrameAck(m) => str16_len(&m.stream) + 8,
            Message::Publish(m) => str16_len(&m.stream) + 4,
        }
    }

    /// Checks every string field fits its length prefix and the payload fits a `u32`.
    fn check(&self) -> Result<(), EncodeError> {
        match self {
            Message::Hello(m) => {
                check_str16("name", &m.name)?;
                check_str16("token", &m.token)?;
            }
            Message::Welcome(m) => check_str16("hub_name", &m.hub_name)?,
            Message::Command(m) => {
                check_str16("target", &m.target)?;
                check_str16("command", &m.command)?;
                if m.args.len() > u16::MAX as usize {
                    return Err(EncodeError::TooManyItems { field: "args" });
                }
                for a in &m.args {
                    check_str16("args", a)?;
                }
            }
            Message::RegisterDevice(m) => check_str16("name", &m.name)?,
            Message::Offer(m) => check_str16("path", &m.path)?,
            Message::Get(m) => check_str16("path", &m.path)?,
            Message::List(m) => {
                check_str16("prefix", &m.prefix)?;
                check_str16("after", &m.after)?;
            }
            Message::ListPage(m) => {
                for e in &m.entries {
                    check_str16("path", &e.path)?;
                    check_str16("sender", &e.sender)?;
                }
            }
            Message::Frame(m) => check_str16("stream", &m.stream)?,
            Message::Subscribe(m) => check_str16("stream", &m.stream)?,
            Message::Unsubscribe(m) => check_str16("stream", &m.stream)?,
            Message::FrameAck(m) => check_str16("stream", &m.stream)?,
            Message::Publish(m) => check_str16("stream", &m.stream)?,
            _ => {}
        }
        if self.payload_len() > u32::MAX as usize {
            return Err(EncodeError::PayloadTooLarge {
                len: self.payload_len(),
            });
        }
        Ok(())
    }

    /// Appends the encoded message (header and payload) to `dst`.
    ///
    /// # Errors
    /// [`EncodeError`] if a string is longer than its `u16` length prefix allows or the payload
    /// is longer than 4 GiB. Nothing is written in that case.
    pub fn encode(&self, dst: &mut impl BufMut) -> Result<(), EncodeError> {
        self.check()?;
        Header {
            kind: self.kind(),
            flags: 0,
            len: self.payload_len() as u32,
        }
        .encode(dst);
        match self {
            Message::Hello(m) => {
                dst.put_slice(&MAGIC);
                dst.put_u16_le(m.version);
                put_str16(dst, &m.name);
                put_str16(dst, &m.token);
            }
            Message::Welcome(m) => {
                dst.put_u16_le(m.version);
                dst.put_i64_le(m.hub_time_us);
                dst.put_u32_le(m.max_payload);
                dst.put_u64_le(m.max_file_size);
                dst.put_u32_le(m.chunk_size);
                dst.put_u16_le(m.max_inflight);
                put_str16(dst, &m.hub_name);
            }
            Message::Error(m) => {
                dst.put_u16_le(m.code.to_u16());
                dst.put_u32_le(m.id);
                dst.put_slice(m.message.as_bytes());
            }
            Message::Ping(m) => {
                dst.put_u64_le(m.nonce);
                dst.put_i64_le(m.time_us);
            }
            Message::Pong(m) => {
                dst.put_u64_le(m.nonce);
                dst.put_i64_le(m.ping_time_us);
                dst.put_i64_le(m.time_us);
            }
            Message::Text(m) => {
                dst.put_u32_le(m.id);
                dst.put_slice(m.text.as_bytes());
            }
            Message::Command(m) => {
                dst.put_u32_le(m.id);
                put_str16(dst, &m.target);
                put_str16(dst, &m.command);
                dst.put_u16_le(m.args.len() as u16);
                for a in &m.args {
                    put_str16(dst, a);
                }
            }
            Message::Reply(m) => {
                dst.put_u32_le(m.id);
                dst.put_u8(m.status as u8);
                dst.put_slice(&m.body);
            }
            Message::RegisterDevice(m) => put_str16(dst, &m.name),
            Message::Offer(m) => {
                dst.put_u32_le(m.id);
                dst.put_u8(m.flags);
                dst.put_u64_le(m.size);
                put_str16(dst, &m.path);
            }
            Message::Accept(m) => {
                dst.put_u32_le(m.id);
                dst.put_u64_le(m.offset);
                dst.put_slice(&m.prefix_hash);
            }
            Message::Data(m) => {
                dst.put_u32_le(m.id);
                dst.put_slice(&m.bytes);
            }
            Message::End(m) => {
                dst.put_u32_le(m.id);
                match &m.hash {
                    Some(h) => {
                        dst.put_u8(1);
                        dst.put_slice(h);
                    }
                    None => {
                        dst.put_u8(0);
                        dst.put_bytes(0, 32);
                    }
                }
            }
            Message::Stored(m) => {
                dst.put_u32_le(m.id);
                dst.put_u8(m.status as u8);
                dst.put_u64_le(m.size);
                dst.put_slice(&m.hash);
            }
            Message::Rejected(m) => {
                dst.put_u32_le(m.id);
                dst.put_u16_le(m.code.to_u16());
                dst.put_slice(m.reason.as_bytes());
            }
            Message::Cancel(m) => dst.put_u32_le(m.id),
            Message::Get(m) => {
                dst.put_u32_le(m.id);
                dst.put_u64_le(m.offset);
                put_str16(dst, &m.path);
            }
            Message::FileInfo(m) => {
                dst.put_u32_le(m.id);
                dst.put_u64_le(m.size);
                dst.put_slice(&m.hash);
            }
            Message::List(m) => {
                dst.put_u32_le(m.id);
                dst.put_u32_le(m.limit);
                put_str16(dst, &m.prefix);
                put_str16(dst, &m.after);
            }
            Message::ListPage(m) => {
                dst.put_u32_le(m.id);
                dst.put_u8(m.more as u8);
                dst.put_u32_le(m.entries.len() as u32);
                for e in &m.entries {
                    put_str16(dst, &e.path);
                    dst.put_u64_le(e.size);
                    dst.put_slice(&e.hash);
                    dst.put_i64_le(e.stored_us);
                    put_str16(dst, &e.sender);
                }
            }
            Message::Frame(m) => {
                put_frame_fields(dst, m);
                dst.put_slice(&m.payload);
            }
            Message::Subscribe(m) => {
                put_str16(dst, &m.stream);
                dst.put_u16_le(m.window);
            }
            Message::Unsubscribe(m) => put_str16(dst, &m.stream),
            Message::FrameAck(m) => {
                put_str16(dst, &m.stream);
                dst.put_u64_le(m.seq);
            }
            Message::Publish(m) => {
                put_str16(dst, &m.stream);
                dst.put_u32_le(m.max_latency_ms);
            }
        }
        Ok(())
    }

    /// Encodes into a fresh buffer.
    ///
    /// # Errors
    /// As [`Message::encode`].
    pub fn to_bytes(&self) -> Result<Bytes, EncodeError> {
        let mut v = Vec::with_capacity(HEADER_LEN + self.payload_len());
        self.encode(&mut v)?;
        Ok(Bytes::from(v))
    }

    /// Decodes one message's payload, given its already-checked header.
    ///
    /// # Errors
    /// [`DecodeError`] if the type is unknown or the payload does not match the type's layout.
    pub fn decode_payload(kind: u16, payload: Bytes) -> Result<Message, DecodeError> {
        let name = kind_name(kind).ok_or(DecodeError::UnknownType { kind })?;
        let mut r = Reader::new(payload, name);
        let msg = match kind {
            kind::HELLO => {
                let magic = r.bytes(4)?;
                if magic[..] != MAGIC {
                    return Err(DecodeError::BadMagic);
                }
                Message::Hello(Hello {
                    version: r.u16()?,
                    name: r.str16()?,
                    token: r.str16()?,
                })
            }
            kind::WELCOME => Message::Welcome(Welcome {
                version: r.u16()?,
                hub_time_us: r.i64()?,
                max_payload: r.u32()?,
                max_file_size: r.u64()?,
                chunk_size: r.u32()?,
                max_inflight: r.u16()?,
                hub_name: r.str16()?,
            }),
            kind::ERROR => Message::Error(ErrorMsg {
                code: ErrorCode::from_u16(r.u16()?),
                id: r.u32()?,
                message: r.rest_str()?,
            }),
            kind::PING => Message::Ping(Ping {
                nonce: r.u64()?,
                time_us: r.i64()?,
            }),
            kind::PONG => Message::Pong(Pong {
                nonce: r.u64()?,
                ping_time_us: r.i64()?,
                time_us: r.i64()?,
            }),
            kind::TEXT => Message::Text(Text {
                id: r.u32()?,
                text: r.rest_str()?,
            }),
            kind::COMMAND => {
                let id = r.u32()?;
                let target = r.str16()?;
                let command = r.str16()?;
                let n = r.u16()?;
                // Each argument takes at least its 2-byte prefix, so a lying count fails on the
                // bytes actually present, before `Vec` grows past them.
                let mut args = Vec::new();
                for _ in 0..n {
                    args.push(r.str16()?);
                }
                Message::Command(Command {
                    id,
                    target,
                    command,
                    args,
                })
            }
            kind::REPLY => Message::Reply(Reply {
                id: r.u32()?,
                status: ReplyStatus::from_u8(r.u8()?)?,
                body: r.rest(),
            }),
            kind::REGISTER_DEVICE => Message::RegisterDevice(RegisterDevice { name: r.str16()? }),
            kind::OFFER => Message::Offer(Offer {
                id: r.u32()?,
                flags: r.u8()?,
                size: r.u64()?,
                path: r.str16()?,
            }),
            kind::ACCEPT => Message::Accept(Accept {
                id: r.u32()?,
                offset: r.u64()?,
                prefix_hash: r.hash()?,
            }),
            kind::DATA => Message::Data(Data {
                id: r.u32()?,
                bytes: r.rest(),
            }),
            kind::END => {
                let id = r.u32()?;
                let has = r.u8()?;
                let hash = r.hash()?;
                let hash = match has {
                    0 => None,
                    1 => Some(hash),
                    _ => {
                        return Err(DecodeError::BadField {
                            message: "End",
                            field: "has_hash",
                        })
                    }
                };
                Message::End(End { id, hash })
            }
            kind::STORED => Message::Stored(Stored {
                id: r.u32()?,
                status: StoredStatus::from_u8(r.u8()?)?,
                size: r.u64()?,
                hash: r.hash()?,
            }),
            kind::REJECTED => Message::Rejected(Rejected {
                id: r.u32()?,
                code: ErrorCode::from_u16(r.u16()?),
                reason: r.rest_str()?,
            }),
            kind::CANCEL => Message::Cancel(Cancel { id: r.u32()? }),
            kind::GET => Message::Get(Get {
                id: r.u32()?,
                offset: r.u64()?,
                path: r.str16()?,
            }),
            kind::FILE_INFO => Message::FileInfo(FileInfo {
                id: r.u32()?,
                size: r.u64()?,
                hash: r.hash()?,
            }),
            kind::LIST => Message::List(List {
                id: r.u32()?,
                limit: r.u32()?,
                prefix: r.str16()?,
                after: r.str16()?,
            }),
            kind::LIST_PAGE => {
                let id = r.u32()?;
                let more = match r.u8()? {
                    0 => false,
                    1 => true,
                    _ => {
                        return Err(DecodeError::BadField {
                            message: "ListPage",
                            field: "more",
                        })
                    }
                };
                let n = r.u32()?;
                let mut entries = Vec::new();
                for _ in 0..n {
                    entries.push(ListEntry {
                        path: r.str16()?,
                        size: r.u64()?,
                        hash: r.hash()?,
                        stored_us: r.i64()?,
                        sender: r.str16()?,
                    });
                }
                Message::ListPage(ListPage { id, more, entries })
            }
            kind::FRAME => Message::Frame(Frame {
                stream: r.str16()?,
                seq: r.u64()?,
                capture_us: r.i64()?,
                format: r.u8()?,
                width: r.u32()?,
                height: r.u32()?,
                payload: r.rest(),
            }),
            kind::SUBSCRIBE => Message::Subscribe(Subscribe {
                stream: r.str16()?,
                window: r.u16()?,
            }),
            kind::UNSUBSCRIBE => Message::Unsubscribe(Unsubscribe { stream: r.str16()? }),
            kind::FRAME_ACK => Message::FrameAck(FrameAck {
                stream: r.str16()?,
                seq: r.u64()?,
            }),
            kind::PUBLISH => Message::Publish(Publish {
                stream: r.str16()?,
                max_latency_ms: r.u32()?,
            }),
            _ => return Err(DecodeError::UnknownType { kind }),
        };
        r.finish()?;
        Ok(msg)
    }
}

fn put_frame_fields(dst: &mut impl BufMut, m: &Frame) {
    put_str16(dst, &m.stream);
    dst.put_u64_le(m.seq);
    dst.put_i64_le(m.capture_us);
    dst.put_u8(m.format);
    dst.put_u32_le(m.width);
    dst.put_u32_le(m.height);
}

/// Writes the header and the fields of a [`Frame`] but not its payload, so a sender can hand the
/// (shared, reference-counted) payload to the socket separately instead of copying it.
///
/// # Errors
/// [`EncodeError`] if the stream name is too long.
pub fn encode_frame_head(frame: &Frame, dst: &mut impl BufMut) -> Result<(), EncodeError> {
    let msg_len = Message::Frame(Frame {
        payload: Bytes::new(),
        ..frame.clone()
    });
    msg_len.check()?;
    let len = msg_len.payload_len() + frame.payload.len();
    if len > u32::MAX as usize {
        return Err(EncodeError::PayloadTooLarge { len });
    }
    Header {
        kind: kind::FRAME,
        flags: 0,
        len: len as u32,
    }
    .encode(dst);
    put_frame_fields(dst, frame);
    Ok(())
}

/// Writes the header and id of a [`Data`] message whose `len` bytes the caller writes right after,
/// e.g. read straight from a file into the same buffer.
pub fn encode_data_head(id: u32, len: u32, dst: &mut impl BufMut) {
    Header {
        kind: kind::DATA,
        flags: 0,
        len: DATA_PREFIX_LEN as u32 + len,
    }
    .encode(dst);
    dst.put_u32_le(id);
}

/// The name of a message type, or `None` if the number is not a known type.
pub fn kind_name(k: u16) -> Option<&'static str> {
    Some(match k {
        kind::HELLO => "Hello",
        kind::WELCOME => "Welcome",
        kind::ERROR => "Error",
        kind::PING => "Ping",
        kind::PONG => "Pong",
        kind::TEXT => "Text",
        kind::COMMAND => "Command",
        kind::REPLY => "Reply",
        kind::REGISTER_DEVICE => "RegisterDevice",
        kind::OFFER => "Offer",
        kind::ACCEPT => "Accept",
        kind::DATA => "Data",
        kind::END => "End",
        kind::STORED => "Stored",
        kind::REJECTED => "Rejected",
        kind::CANCEL => "Cancel",
        kind::GET => "Get",
        kind::FILE_INFO => "FileInfo",
        kind::LIST => "List",
        kind::LIST_PAGE => "ListPage",
        kind::FRAME => "Frame",
        kind::SUBSCRIBE => "Subscribe",
        kind::UNSUBSCRIBE => "Unsubscribe",
        kind::FRAME_ACK => "FrameAck",
        kind::PUBLISH => "Publish",
        _ => return None,
    })
}
