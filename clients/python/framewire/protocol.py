"""framewire's wire protocol, versions 1 and 2 (docs/PROTOCOL.md): messages, encoding, decoding.

No sockets here: :func:`encode` turns a message into bytes, :func:`decode` turns one whole
message back into an object, and :class:`Decoder` cuts a byte stream that arrives in arbitrary
pieces into messages. The tests check both directions against every vector in
``docs/protocol-vectors.json``.

Every message is an 8-byte little-endian header ``type:u16 flags:u16 len:u32`` followed by ``len``
payload bytes laid out as its class's ``LAYOUT`` says. The two messages that carry bulk bytes,
``Data`` and ``Frame``, also have head encoders (:func:`data_head`, :func:`frame_head`) so a
sender can write the short head and then the bytes it already has, without joining them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import ClassVar, Dict, Optional, Tuple

from .errors import ProtocolError

#: The newest protocol version this client speaks (sent in Hello). Version 2 adds the hub's
#: answers Registered and Subscribed.
VERSION = 2
#: The oldest version it still accepts in Welcome (a hub that never sends those answers).
MIN_VERSION = 1
MAGIC = b"FWIR"
HEADER = struct.Struct("<HHI")
HEADER_LEN = 8
HASH_LEN = 32
ZERO_HASH = bytes(HASH_LEN)
#: The hub reads at most this many payload bytes before the handshake (a Hello).
MAX_HELLO_PAYLOAD = 4096
#: The limit this client applies to incoming messages until Welcome announces the hub's.
DEFAULT_MAX_PAYLOAD = 16 * 1024 * 1024

# Error codes this client acts on (the full table is in errors.py).
NOT_FRAMEWIRE = 1
MALFORMED = 3
TOO_LARGE = 4
BAD_PATH = 5
EXISTS = 6
UNAUTHORIZED = 11
PROTOCOL_VIOLATION = 14
CANCELLED = 16

# Offer flags.
OVERWRITE = 0x01
NO_RESUME = 0x02

# Stored status.
STORED_NEW = 0
STORED_REPLACED = 1
STORED_UNCHANGED = 2
STORED_STATUS_NAMES = {STORED_NEW: "new", STORED_REPLACED: "replaced", STORED_UNCHANGED: "unchanged"}

# Reply status.
REPLY_OK = 0
REPLY_FAILED = 1
REPLY_UNKNOWN_DEVICE = 2
REPLY_UNKNOWN_COMMAND = 3
REPLY_TIMEOUT = 4

# Frame formats.
FORMAT_JPEG = 1
FORMAT_PNG = 2
FORMAT_RGB8 = 3
FORMAT_GRAY8 = 4


# ---------------------------------------------------------------------------------------------
# Field codecs. Each turns one field into bytes (appended to a bytearray) and back (from a
# memoryview at an offset, returning the value and the next offset).
# ---------------------------------------------------------------------------------------------


class _Int:
    def __init__(self, fmt: str):
        self.s = struct.Struct("<" + fmt)

    def put(self, out: bytearray, v) -> None:
        try:
            out += self.s.pack(v)
        except struct.error as e:
            raise ValueError("%r does not fit the field (%s)" % (v, e)) from None

    def get(self, b: memoryview, off: int):
        end = off + self.s.size
        if end > len(b):
            raise ProtocolError("message ends inside a fixed-size field")
        return self.s.unpack_from(b, off)[0], end


class _Enum8(_Int):
    """A u8 whose values above ``top`` are decode errors (Stored.status, Reply.status, End.has_hash,
    ListPage.more)."""

    def __init__(self, top: int):
        super().__init__("B")
        self.top = top

    def get(self, b: memoryview, off: int):
        v, off = super().get(b, off)
        if v > self.top:
            raise ProtocolError("enum value %d out of range (at most %d)" % (v, self.top))
        return v, off


def _utf8(raw, what: str) -> str:
    try:
        return bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("%s is not valid UTF-8" % what) from None


class _Str16:
    """u16 byte length, then UTF-8."""

    def put(self, out: bytearray, v: str) -> None:
        raw = v.encode("utf-8")
        if len(raw) > 0xFFFF:
            raise ValueError("string of %d bytes is longer than a str16 allows (65535)" % len(raw))
        out += struct.pack("<H", len(raw))
        out += raw

    def get(self, b: memoryview, off: int):
        n, off = U16.get(b, off)
        end = off + n
        if end > len(b):
            raise ProtocolError("message ends inside a string")
        return _utf8(b[off:end], "a string"), end


class _Hash:
    def put(self, out: bytearray, v: bytes) -> None:
        if len(v) != HASH_LEN:
            raise ValueError("a hash is %d bytes, not %d" % (HASH_LEN, len(v)))
        out += v

    def get(self, b: memoryview, off: int):
        end = off + HASH_LEN
        if end > len(b):
            raise ProtocolError("message ends inside a hash")
        return bytes(b[off:end]), end


class _RestBytes:
    """Every byte left in the payload (binary)."""

    def put(self, out: bytearray, v: bytes) -> None:
        out += v

    def get(self, b: memoryview, off: int):
        return bytes(b[off:]), len(b)


class _RestText(_RestBytes):
    """Every byte left in the payload, which must be UTF-8."""

    def put(self, out: bytearray, v: str) -> None:
        out += v.encode("utf-8")

    def get(self, b: memoryview, off: int):
        return _utf8(b[off:], "the text"), len(b)


class _Str16List:
    """u16 count, then that many str16 (Command.args)."""

    def put(self, out: bytearray, v) -> None:
        U16.put(out, len(v))
        for s in v:
            STR16.put(out, s)

    def get(self, b: memoryview, off: int):
        n, off = U16.get(b, off)
        items = []
        for _ in range(n):
            s, off = STR16.get(b, off)
            items.append(s)
        return tuple(items), off


U8 = _Int("B")
U16 = _Int("H")
U32 = _Int("I")
U64 = _Int("Q")
I64 = _Int("q")
STR16 = _Str16()
HASH = _Hash()
BYTES = _RestBytes()
TEXT = _RestText()
STR16_LIST = _Str16List()


class _PairList:
    """u16 count, then that many (str16 name, str16 value) (Event.fields)."""

    def put(self, out: bytearray, v) -> None:
        U16.put(out, len(v))
        for k, val in v:
            STR16.put(out, k)
            STR16.put(out, val)

    def get(self, b: memoryview, off: int):
        n, off = U16.get(b, off)
        items = []
        for _ in range(n):
            k, off = STR16.get(b, off)
            val, off = STR16.get(b, off)
            items.append((k, val))
        return tuple(items), off


PAIRS = _PairList()


@dataclass(frozen=True)
class ListEntry:
    """One stored file in a ListPage."""

    path: str
    size: int
    hash: bytes
    stored_us: int
    sender: str

    LAYOUT: ClassVar[tuple] = (
        ("path", STR16),
        ("size", U64),
        ("hash", HASH),
        ("stored_us", I64),
        ("sender", STR16),
    )


class _Entries:
    """u32 count, then that many ListEntry."""

    def put(self, out: bytearray, v) -> None:
        U32.put(out, len(v))
        for e in v:
            for name, codec in ListEntry.LAYOUT:
                codec.put(out, getattr(e, name))

    def get(self, b: memoryview, off: int):
        n, off = U32.get(b, off)
        entries = []
        for _ in range(n):
            values = {}
            for name, codec in ListEntry.LAYOUT:
                values[name], off = codec.get(b, off)
            entries.append(ListEntry(**values))
        return tuple(entries), off


ENTRIES = _Entries()


# ---------------------------------------------------------------------------------------------
# Messages. TYPE is the header's type; LAYOUT lists the payload's fields in order.
# ---------------------------------------------------------------------------------------------


@dataclass
class Hello:
    """C→H, the first message: ``FWIR`` magic, highest version spoken, client name, token."""

    version: int
    name: str
    token: str
    TYPE: ClassVar[int] = 0x0001
    LAYOUT: ClassVar[tuple] = (("version", U16), ("name", STR16), ("token", STR16))


@dataclass
class Welcome:
    """H→C: the handshake succeeded; the limits every later message respects."""

    version: int
    hub_time_us: int
    max_payload: int
    max_file_size: int
    chunk_size: int
    max_inflight: int
    hub_name: str
    TYPE: ClassVar[int] = 0x0002
    LAYOUT: ClassVar[tuple] = (
        ("version", U16),
        ("hub_time_us", I64),
        ("max_payload", U32),
        ("max_file_size", U64),
        ("chunk_size", U32),
        ("max_inflight", U16),
        ("hub_name", STR16),
    )


@dataclass
class Error:
    """Both ways: ``id`` 0 is about the connection (the sender then closes), else it answers
    request ``id``."""

    code: int
    id: int
    message: str
    TYPE: ClassVar[int] = 0x0003
    LAYOUT: ClassVar[tuple] = (("code", U16), ("id", U32), ("message", TEXT))


@dataclass
class Ping:
    """Both ways: asks for a Pong (clock sample, liveness)."""

    nonce: int
    time_us: int
    TYPE: ClassVar[int] = 0x0004
    LAYOUT: ClassVar[tuple] = (("nonce", U64), ("time_us", I64))


@dataclass
class Pong:
    """The answer to a Ping: echoes nonce and time, adds the answerer's clock."""

    nonce: int
    ping_time_us: int
    time_us: int
    TYPE: ClassVar[int] = 0x0005
    LAYOUT: ClassVar[tuple] = (("nonce", U64), ("ping_time_us", I64), ("time_us", I64))


@dataclass
class Text:
    """A text message; the hub echoes it with the same id."""

    id: int
    text: str
    TYPE: ClassVar[int] = 0x0010
    LAYOUT: ClassVar[tuple] = (("id", U32), ("text", TEXT))


@dataclass
class Command:
    """C→H (and H→D with the hub's id): run ``command args`` on device ``target``."""

    id: int
    target: str
    command: str
    args: Tuple[str, ...] = ()
    TYPE: ClassVar[int] = 0x0020
    LAYOUT: ClassVar[tuple] = (("id", U32), ("target", STR16), ("command", STR16), ("args", STR16_LIST))

    def __post_init__(self):
        self.args = tuple(self.args)


@dataclass
class Reply:
    """A device's answer to a Command (status: Ok, Failed, UnknownDevice, UnknownCommand, Timeout)."""

    id: int
    status: int
    body: bytes
    TYPE: ClassVar[int] = 0x0021
    LAYOUT: ClassVar[tuple] = (("id", U32), ("status", _Enum8(4)), ("body", BYTES))


@dataclass
class RegisterDevice:
    """C→H: this connection answers Commands for device ``name``."""

    name: str
    TYPE: ClassVar[int] = 0x0022
    LAYOUT: ClassVar[tuple] = (("name", STR16),)


@dataclass
class Registered:
    """H→C (version 2): the RegisterDevice took effect; commands for ``name`` come here now."""

    name: str
    TYPE: ClassVar[int] = 0x0023
    LAYOUT: ClassVar[tuple] = (("name", STR16),)


@dataclass
class Offer:
    """C→H: I want to store ``size`` bytes at ``path`` (flags: OVERWRITE, NO_RESUME)."""

    id: int
    flags: int
    size: int
    path: str
    TYPE: ClassVar[int] = 0x0030
    LAYOUT: ClassVar[tuple] = (("id", U32), ("flags", U8), ("size", U64), ("path", STR16))


@dataclass
class Accept:
    """H→C: send from ``offset``; the hub holds ``[0, offset)``, whose BLAKE3 is ``prefix_hash``."""

    id: int
    offset: int
    prefix_hash: bytes
    TYPE: ClassVar[int] = 0x0031
    LAYOUT: ClassVar[tuple] = (("id", U32), ("offset", U64), ("prefix_hash", HASH))


@dataclass
class Data:
    """The next bytes of an upload (C→H) or a download (H→C)."""

    id: int
    bytes: bytes
    TYPE: ClassVar[int] = 0x0032
    LAYOUT: ClassVar[tuple] = (("id", U32), ("bytes", BYTES))


@dataclass
class End:
    """All bytes sent; ``hash`` is BLAKE3 of the whole file when ``has_hash`` is 1."""

    id: int
    has_hash: int
    hash: bytes
    TYPE: ClassVar[int] = 0x0033
    LAYOUT: ClassVar[tuple] = (("id", U32), ("has_hash", _Enum8(1)), ("hash", HASH))


@dataclass
class Stored:
    """H→C: the upload is durable (status: New, Replaced, Unchanged)."""

    id: int
    status: int
    size: int
    hash: bytes
    TYPE: ClassVar[int] = 0x0034
    LAYOUT: ClassVar[tuple] = (("id", U32), ("status", _Enum8(2)), ("size", U64), ("hash", HASH))


@dataclass
class Rejected:
    """H→C: the offer ended without storing anything."""

    id: int
    code: int
    reason: str
    TYPE: ClassVar[int] = 0x0035
    LAYOUT: ClassVar[tuple] = (("id", U32), ("code", U16), ("reason", TEXT))


@dataclass
class Cancel:
    """C→H: abandon upload ``id``; the hub answers Rejected{Cancelled}."""

    id: int
    TYPE: ClassVar[int] = 0x0036
    LAYOUT: ClassVar[tuple] = (("id", U32),)


@dataclass
class Get:
    """C→H: send me ``path`` from ``offset``."""

    id: int
    offset: int
    path: str
    TYPE: ClassVar[int] = 0x0038
    LAYOUT: ClassVar[tuple] = (("id", U32), ("offset", U64), ("path", STR16))


@dataclass
class FileInfo:
    """H→C: the file a Get is about to receive (whole size, whole-file BLAKE3)."""

    id: int
    size: int
    hash: bytes
    TYPE: ClassVar[int] = 0x0039
    LAYOUT: ClassVar[tuple] = (("id", U32), ("size", U64), ("hash", HASH))


@dataclass
class Delete:
    """C→H: remove the file stored at ``path``."""

    id: int
    path: str
    TYPE: ClassVar[int] = 0x003C
    LAYOUT: ClassVar[tuple] = (("id", U32), ("path", STR16))


@dataclass
class Deleted:
    """H→C: the file is durably gone from the hub's disk and listing; ``size`` it had."""

    id: int
    size: int
    TYPE: ClassVar[int] = 0x003D
    LAYOUT: ClassVar[tuple] = (("id", U32), ("size", U64))


@dataclass
class List:
    """C→H: stored files whose path starts with ``prefix``, strictly after ``after``."""

    id: int
    limit: int
    prefix: str
    after: str
    TYPE: ClassVar[int] = 0x003A
    LAYOUT: ClassVar[tuple] = (("id", U32), ("limit", U32), ("prefix", STR16), ("after", STR16))


@dataclass
class ListPage:
    """H→C: one page of a listing; ``more`` 1 means ask again after the last path."""

    id: int
    more: int
    entries: Tuple[ListEntry, ...] = ()
    TYPE: ClassVar[int] = 0x003B
    LAYOUT: ClassVar[tuple] = (("id", U32), ("more", _Enum8(1)), ("entries", ENTRIES))

    def __post_init__(self):
        self.entries = tuple(self.entries)


@dataclass
class Frame:
    """One live frame; ``capture_us`` is on the hub's clock."""

    stream: str
    seq: int
    capture_us: int
    format: int
    width: int
    height: int
    payload: bytes = field(repr=False)
    TYPE: ClassVar[int] = 0x0040
    LAYOUT: ClassVar[tuple] = (
        ("stream", STR16),
        ("seq", U64),
        ("capture_us", I64),
        ("format", U8),
        ("width", U32),
        ("height", U32),
        ("payload", BYTES),
    )


@dataclass
class Subscribe:
    """C→H: send me ``stream`` newest-first, at most ``window`` frames unacknowledged (0 means 1)."""

    stream: str
    window: int
    TYPE: ClassVar[int] = 0x0041
    LAYOUT: ClassVar[tuple] = (("stream", STR16), ("window", U16))


@dataclass
class Unsubscribe:
    """C→H: stop sending ``stream``."""

    stream: str
    TYPE: ClassVar[int] = 0x0042
    LAYOUT: ClassVar[tuple] = (("stream", STR16),)


@dataclass
class FrameAck:
    """Frame ``seq`` handled: hub→publisher, and subscriber→hub."""

    stream: str
    seq: int
    TYPE: ClassVar[int] = 0x0043
    LAYOUT: ClassVar[tuple] = (("stream", STR16), ("seq", U64))


@dataclass
class Publish:
    """C→H: this connection publishes ``stream``; frames older than ``max_latency_ms`` (0: no
    limit) on arrival are dropped."""

    stream: str
    max_latency_ms: int
    TYPE: ClassVar[int] = 0x0044
    LAYOUT: ClassVar[tuple] = (("stream", STR16), ("max_latency_ms", U32))


@dataclass
class Subscribed:
    """H→C (version 2): the Subscribe took effect with the ``window`` the hub grants (at least 1);
    it comes before the stream's first Frame."""

    stream: str
    window: int
    TYPE: ClassVar[int] = 0x0045
    LAYOUT: ClassVar[tuple] = (("stream", STR16), ("window", U16))


@dataclass
class TextTo:
    """C→H: deliver ``text`` to whichever client holds the name ``to``; answered with Delivery."""

    id: int
    to: str
    text: str
    TYPE: ClassVar[int] = 0x0011
    LAYOUT: ClassVar[tuple] = (("id", U32), ("to", STR16), ("text", TEXT))


#: Delivery.status values.
DELIVERED, NO_RECEIVER, RECEIVER_BUSY = 0, 1, 2


@dataclass
class Delivery:
    """H→C: what became of a TextTo (0 delivered, 1 no such receiver, 2 receiver busy)."""

    id: int
    status: int
    TYPE: ClassVar[int] = 0x0012
    LAYOUT: ClassVar[tuple] = (("id", U32), ("status", _Enum8(2)))


@dataclass
class TextFrom:
    """H→receiver: a text addressed to a name this connection holds."""

    from_: str
    to: str
    text: str
    TYPE: ClassVar[int] = 0x0013
    LAYOUT: ClassVar[tuple] = (("from_", STR16), ("to", STR16), ("text", TEXT))


@dataclass
class Follow:
    """C→H: send me the hub's events (``kinds``, ``prefix`` filter), and texts addressed to ``name``."""

    name: str
    prefix: str
    kinds: Tuple[str, ...] = ()
    TYPE: ClassVar[int] = 0x0050
    LAYOUT: ClassVar[tuple] = (("name", STR16), ("prefix", STR16), ("kinds", STR16_LIST))

    def __post_init__(self):
        self.kinds = tuple(self.kinds)


@dataclass
class Following:
    """H→C: the Follow is in effect."""

    name: str
    TYPE: ClassVar[int] = 0x0051
    LAYOUT: ClassVar[tuple] = (("name", STR16),)


@dataclass
class Event:
    """H→follower: one thing that happened (``kind``, named text ``fields``); ``dropped``: events
    missed just before it."""

    time_us: int
    dropped: int
    kind: str
    fields: Tuple[Tuple[str, str], ...] = ()
    TYPE: ClassVar[int] = 0x0052
    LAYOUT: ClassVar[tuple] = (("time_us", I64), ("dropped", U32), ("kind", STR16), ("fields", PAIRS))

    def __post_init__(self):
        self.fields = tuple(tuple(f) for f in self.fields)

    def field(self, name: str, default: Optional[str] = None) -> Optional[str]:
        for k, v in self.fields:
            if k == name:
                return v
        return default


MESSAGE_CLASSES = (
    TextTo, Delivery, TextFrom, Follow, Following, Event,
    Hello, Welcome, Error, Ping, Pong, Text, Command, Reply, RegisterDevice, Registered, Offer,
    Accept, Data, End, Stored, Rejected, Cancel, Get, FileInfo, List, ListPage, Frame, Subscribe,
    Unsubscribe, FrameAck, Publish, Subscribed, Delete, Deleted,
)  # fmt: skip
#: Message class by header type. Every other type number is unknown, hence a decode error.
BY_TYPE: Dict[int, type] = {cls.TYPE: cls for cls in MESSAGE_CLASSES}


# ---------------------------------------------------------------------------------------------
# Whole messages
# ---------------------------------------------------------------------------------------------


def encode_payload(msg) -> bytearray:
    """The payload bytes of ``msg`` (without the header).

    Raises ValueError if a field does not fit its type (a number out of range, a string over
    65535 bytes, a hash that is not 32 bytes)."""
    out = bytearray()
    if isinstance(msg, Hello):
        out += MAGIC
    for name, codec in msg.LAYOUT:
        codec.put(out, getattr(msg, name))
    return out


def encode(msg) -> bytes:
    """``msg`` as bytes on the wire: header and payload."""
    payload = encode_payload(msg)
    if len(payload) > 0xFFFFFFFF:
        raise ValueError("payload too large for one message")
    return HEADER.pack(msg.TYPE, 0, len(payload)) + payload


def check_header(header, max_payload: int) -> Tuple[int, int]:
    """Checks the 8 header bytes in the order the hub does (flags, type, length) before anything
    is read for the payload. Returns ``(type, len)``.

    Raises ProtocolError (code Malformed or TooLarge)."""
    kind, flags, n = HEADER.unpack_from(header, 0)
    if flags != 0:
        raise ProtocolError("header flags are 0x%04x, must be 0" % flags, MALFORMED)
    if kind not in BY_TYPE:
        raise ProtocolError("unknown message type 0x%04x" % kind, MALFORMED)
    if n > max_payload:
        raise ProtocolError("message of %d bytes is over the limit of %d" % (n, max_payload), TOO_LARGE)
    return kind, n


def decode_payload(kind: int, payload) -> object:
    """Decodes the payload of a message of type ``kind``. The payload must hold exactly the fields
    of the layout: missing and trailing bytes are both errors.

    Raises ProtocolError."""
    cls = BY_TYPE.get(kind)
    if cls is None:
        raise ProtocolError("unknown message type 0x%04x" % kind, MALFORMED)
    b = memoryview(payload)
    off = 0
    if cls is Hello:
        if bytes(b[:4]) != MAGIC:
            raise ProtocolError("Hello without the FWIR magic", NOT_FRAMEWIRE)
        off = 4
    values = {}
    for name, codec in cls.LAYOUT:
        values[name], off = codec.get(b, off)
    if off != len(b):
        raise ProtocolError("%d trailing bytes after %s" % (len(b) - off, cls.__name__))
    return cls(**values)


def decode(data, max_payload: int = 0xFFFFFFFF) -> object:
    """Decodes exactly one whole message (header and payload).

    Raises ProtocolError if the bytes are not exactly one valid message."""
    if len(data) < HEADER_LEN:
        raise ProtocolError("fewer than 8 bytes: no whole header")
    kind, n = check_header(data, max_payload)
    if len(data) != HEADER_LEN + n:
        raise ProtocolError("header says %d payload bytes, got %d" % (n, len(data) - HEADER_LEN))
    return decode_payload(kind, memoryview(data)[HEADER_LEN:])


class Decoder:
    """Cuts a byte stream into messages, whatever pieces it arrives in.

    ``feed()`` the bytes as they come; ``next()`` returns a whole message or None ("read more").
    The header is checked as soon as its 8 bytes are in, before the payload is waited for, so an
    oversized length is refused at once (``max_payload`` may be raised later, e.g. after Welcome).
    """

    def __init__(self, max_payload: int = DEFAULT_MAX_PAYLOAD):
        self.max_payload = max_payload
        self._buf = bytearray()
        self._head: Optional[Tuple[int, int]] = None

    def feed(self, data) -> None:
        self._buf += data

    def buffered(self) -> int:
        """Bytes received and not yet returned as messages."""
        return len(self._buf)

    def ready(self) -> bool:
        """Whether a whole message is buffered (``next()`` will not return None)."""
        if len(self._buf) < HEADER_LEN:
            return False
        return len(self._buf) >= HEADER_LEN + HEADER.unpack_from(self._buf, 0)[2]

    def next(self):
        """The next whole message, or None if more bytes are needed.

        Raises ProtocolError on a bad header or payload; the stream is then out of sync."""
        if self._head is None:
            if len(self._buf) < HEADER_LEN:
                return None
            self._head = check_header(self._buf, self.max_payload)
        kind, n = self._head
        end = HEADER_LEN + n
        if len(self._buf) < end:
            return None
        view = memoryview(self._buf)
        try:
            msg = decode_payload(kind, view[HEADER_LEN:end])
        finally:
            view.release()
        del self._buf[:end]
        self._head = None
        return msg


# ---------------------------------------------------------------------------------------------
# Heads of the bulk messages: the caller writes the head, then the bytes it already has.
# ---------------------------------------------------------------------------------------------

_DATA_HEAD = struct.Struct("<HHII")
_FRAME_FIXED = struct.Struct("<QqBII")


def data_head(request_id: int, n: int) -> bytes:
    """The 12-byte head of a Data message carrying ``n`` bytes; send the bytes right after it."""
    return _DATA_HEAD.pack(Data.TYPE, 0, 4 + n, request_id)


def frame_head(stream: str, seq: int, capture_us: int, format: int, width: int, height: int, n: int) -> bytes:
    """The head of a Frame message whose payload is ``n`` bytes; send the payload right after it."""
    name = stream.encode("utf-8")
    if len(name) > 0xFFFF:
        raise ValueError("stream name too long")
    return (
        HEADER.pack(Frame.TYPE, 0, 2 + len(name) + _FRAME_FIXED.size + n)
        + struct.pack("<H", len(name))
        + name
        + _FRAME_FIXED.pack(seq, capture_us, format, width, height)
    )


# ---------------------------------------------------------------------------------------------
# Remote paths (PROTOCOL.md §5)
# ---------------------------------------------------------------------------------------------


def remote_path_problem(path: str) -> Optional[str]:
    """Why the hub would refuse ``path`` (the first broken rule of §5), or None if it is fine."""
    if not path:
        return "the path is empty"
    if len(path.encode("utf-8")) > 1024:
        return "the path is longer than 1024 bytes"
    if path.startswith("/"):
        return "the path starts with '/' (remote paths are relative)"
    if "\\" in path:
        return "the path contains '\\'"
    if ":" in path:
        return "the path contains ':'"
    for ch in path:
        o = ord(ch)
        if o <= 0x1F or 0x7F <= o <= 0x9F:
            return "the path contains the control character U+%04X" % o
    for segment in path.split("/"):
        if segment == "":
            return "the path has an empty segment ('//' or a trailing '/')"
        if segment in (".", ".."):
            return "the path has a %r segment" % segment
        if len(segment.encode("utf-8")) > 255:
            return "a path segment is longer than 255 bytes"
    return None
