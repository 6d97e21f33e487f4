"""One framewire connection: TCP, the handshake, and messages in and out.

Every socket operation has a time limit. :class:`Connection` is used by one thread at a time
(:class:`~framewire.client.Client`, the I/O thread of a
:class:`~framewire.live.Publisher`, ...); :meth:`Connection.abort` may be called from any thread to
make a blocked call return.
"""

from __future__ import annotations

import collections
import itertools
import select
import socket
import time
from typing import Deque, Dict, Optional, Tuple, Union

from . import protocol as p
from .clock import ClockEstimate, ClockSample, now_us
from .errors import ConnectionLost, HubError, ProtocolError, Timeout, Unauthorized

DEFAULT_PORT = 7878
_CAN_WRITE_NOWAIT = hasattr(socket.socket, "sendmsg") and hasattr(socket, "MSG_DONTWAIT")
#: Bytes asked of the kernel per receive call.
RECV_SIZE = 256 * 1024

Address = Union[str, Tuple[str, int]]


def parse_address(address: Address) -> Tuple[str, int]:
    """``"host:port"``, ``"[::1]:7878"``, ``"host"`` (port 7878) or a ``(host, port)`` tuple."""
    if isinstance(address, tuple):
        host, port = address
        return str(host), int(port)
    text = address.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        host, port = text, ""
    if not host:
        raise ValueError("no host in the hub address %r (expected host:port)" % address)
    try:
        number = int(port) if port else DEFAULT_PORT
    except ValueError:
        raise ValueError("bad port in the hub address %r (expected host:port)" % address) from None
    if not 0 < number < 65536:
        raise ValueError("port out of range in the hub address %r" % address)
    return host, number


class Backoff:
    """Waits between reconnection attempts: 0.1 s, doubling up to ``limit``."""

    def __init__(self, first: float = 0.1, limit: float = 5.0):
        self.first = first
        self.limit = limit
        self.delay = first

    def next(self) -> float:
        d = self.delay
        self.delay = min(self.delay * 2, self.limit)
        return d

    def reset(self) -> None:
        self.delay = self.first


class Connection:
    """A connected, handshaken framewire connection.

    Open one with :meth:`open`. ``welcome`` holds the hub's limits; ``clock`` the clock offset
    measured so far (see :meth:`sync_clock`).
    """

    def __init__(
        self,
        sock: socket.socket,
        welcome: p.Welcome,
        decoder: p.Decoder,
        address: Tuple[str, int],
        timeout: float,
    ):
        self.sock = sock
        self.welcome = welcome
        self.address = address
        self.timeout = timeout
        self.clock = ClockEstimate()
        self._decoder = decoder
        self._early: Deque[object] = collections.deque()  # messages read while waiting for others
        self._ids = itertools.count(1)
        self._pings: Dict[int, int] = {}  # nonce -> our clock when sent
        self._nonces = itertools.count(1)
        self.closed = False
        #: time.monotonic() when bytes last arrived (liveness checks).
        self.last_received = time.monotonic()
        #: Set by a writer that uses :meth:`write_nowait`: answers to the hub's Pings are then
        #: left in :attr:`deferred` for it to send, so they never land inside a half-written
        #: message.
        self.defer_replies = False
        self.deferred: list = []

    # -----------------------------------------------------------------------------------------
    # Opening
    # -----------------------------------------------------------------------------------------

    @classmethod
    def open(
        cls, address: Address, token: Optional[str] = None, name: Optional[str] = None, timeout: float = 10.0
    ) -> "Connection":
        """Connects to the hub and does the handshake.

        Raises Unauthorized (wrong token), HubError (any other refusal), ConnectionLost (no hub
        there), Timeout, ProtocolError (not a framewire hub)."""
        host, port = parse_address(address)
        where = "%s:%d" % (host, port)
        try:
            sock = socket.create_connection((host, port), timeout=timeout)
        except socket.timeout:
            raise Timeout("no answer from %s within %.1f s" % (where, timeout)) from None
        except OSError as e:
            raise ConnectionLost("cannot connect to the hub at %s: %s" % (where, e.strerror or e)) from None
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            hello = p.Hello(
                version=p.VERSION, name=name if name is not None else socket.gethostname(), token=token or ""
            )
            raw = p.encode(hello)
            if len(raw) - p.HEADER_LEN > p.MAX_HELLO_PAYLOAD:
                raise ValueError("name and token are too long (the Hello is limited to 4096 bytes)")
            sent_us = now_us()
            sock.settimeout(timeout)
            sock.sendall(raw)
            decoder = p.Decoder(p.DEFAULT_MAX_PAYLOAD)
            welcome = cls._read_welcome(sock, decoder, where, time.monotonic() + timeout)
            decoder.max_payload = max(p.DEFAULT_MAX_PAYLOAD, welcome.max_payload)
            conn = cls(sock, welcome, decoder, (host, port), timeout)
            # Welcome carries the hub's clock: a first, coarse sample.
            conn.clock.add(ClockSample(sent_us, welcome.hub_time_us, now_us()))
            return conn
        except BaseException:
            sock.close()
            raise

    @staticmethod
    def _read_welcome(sock: socket.socket, decoder: p.Decoder, where: str, deadline: float) -> p.Welcome:
        first = True
        while True:
            try:
                msg = decoder.next()
            except ProtocolError as e:
                raise ProtocolError(
                    "%s did not answer like a framewire hub (%s)" % (where, e), e.code
                ) from None
            if msg is not None:
                break
            data = _recv_until(sock, deadline, "the hub's Welcome from %s" % where)
            if first and data.startswith(b"HTTP/"):
                raise ProtocolError(
                    "%s is an HTTP server, not a framewire hub port "
                    "(the dashboard and the native port are different)" % where,
                    p.NOT_FRAMEWIRE,
                )
            first = False
            decoder.feed(data)
        if isinstance(msg, p.Error):
            cls_ = Unauthorized if msg.code == p.UNAUTHORIZED else HubError
            raise cls_(msg.code, msg.message)
        if not isinstance(msg, p.Welcome):
            raise ProtocolError(
                "%s answered Hello with %s, not Welcome" % (where, type(msg).__name__), p.PROTOCOL_VIOLATION
            )
        if not p.MIN_VERSION <= msg.version <= p.VERSION:
            raise ProtocolError(
                "%s chose protocol version %d; this client speaks %d to %d"
                % (where, msg.version, p.MIN_VERSION, p.VERSION),
                p.PROTOCOL_VIOLATION,
            )
        return msg

    # -----------------------------------------------------------------------------------------
    # Sending
    # -----------------------------------------------------------------------------------------

    def next_id(self) -> int:
        """A fresh request id (one counter per connection; never 0)."""
        i = next(self._ids)
        if i > 0xFFFFFFFF:
            self._ids = itertools.count(1)
            i = next(self._ids)
        return i

    def send(self, msg) -> None:
        """Sends one message. Raises ConnectionLost or Timeout (the connection is then closed)."""
        self.send_parts((p.encode(msg),))

    def send_parts(self, parts) -> None:
        """Sends byte strings back to back (a message head and its bulk bytes), without joining
        them. Raises ConnectionLost or Timeout (the connection is then closed)."""
        if self.closed:
            raise ConnectionLost("the connection to the hub is closed")
        try:
            self.sock.settimeout(self.timeout)
            if hasattr(self.sock, "sendmsg"):
                views = [memoryview(x).cast("B") for x in parts if len(x)]
                while views:
                    n = self.sock.sendmsg(views)
                    while views and n >= len(views[0]):
                        n -= len(views[0])
                        views.pop(0)
                    if n:
                        views[0] = views[0][n:]
            else:  # pragma: no cover - Windows
                self.sock.sendall(b"".join(parts))
        except socket.timeout:
            self.close()
            raise Timeout("the hub did not take our bytes within %.1f s" % self.timeout) from None
        except OSError as e:
            self.close()
            raise ConnectionLost("connection to the hub lost while sending: %s" % (e.strerror or e)) from None

    def write_nowait(self, views: list) -> list:
        """Writes as much of ``views`` (memoryviews, sent back to back) as the kernel takes now,
        without waiting. Returns what is left (an empty list when all went out). For writers that
        must never block, like a camera loop; see :class:`~framewire.live.Publisher`.

        Raises ConnectionLost (the connection is then closed)."""
        if self.closed:
            raise ConnectionLost("the connection to the hub is closed")
        if not _CAN_WRITE_NOWAIT:  # pragma: no cover - Windows: no sendmsg, a bounded blocking write
            self.send_parts(views)
            return []
        try:
            n = self.sock.sendmsg(views, [], socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return views
        except OSError as e:
            self.close()
            raise ConnectionLost("connection to the hub lost while sending: %s" % (e.strerror or e)) from None
        while views and n >= len(views[0]):
            n -= len(views[0])
            views.pop(0)
        if n:
            views[0] = views[0][n:]
        return views

    def ping_bytes(self) -> bytes:
        """An encoded Ping, registered so that its Pong becomes a clock sample; the caller sends
        it (at once: the round trip counts from now)."""
        return self._make_ping()[1]

    def _make_ping(self) -> Tuple[int, bytes]:
        nonce = next(self._nonces)
        t = now_us()
        self._pings[nonce] = t
        return nonce, p.encode(p.Ping(nonce=nonce, time_us=t))

    def ping(self) -> None:
        """Sends a Ping; its Pong is turned into a clock sample when it arrives."""
        self.send_parts((self.ping_bytes(),))

    # -----------------------------------------------------------------------------------------
    # Receiving
    # -----------------------------------------------------------------------------------------

    def recv(self, timeout: Optional[float] = None):
        """The next message from the hub, waiting at most ``timeout`` seconds (default: the
        connection's timeout). Pings are answered and Pongs recorded here, not returned.

        Raises Timeout (the connection stays usable), ConnectionLost, HubError (the hub closed the
        connection with Error{id 0}), ProtocolError."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            if self._early:
                return self._early.popleft()
            msg = self._read(deadline)
            if not isinstance(msg, p.Pong):
                return msg

    def poll(self):
        """A message that has already arrived, or None: never waits."""
        if self._early:
            return self._early.popleft()
        while True:
            msg = self._next_buffered()
            if msg is None:
                if not self._readable():
                    return None
                self._fill(time.monotonic() + self.timeout)
                continue
            if not isinstance(msg, p.Pong):
                return msg

    def sync_clock(self, pings: int = 5, timeout: Optional[float] = None) -> None:
        """Sends ``pings`` Pings and waits for their Pongs (at most ``timeout``), keeping the
        sample with the smallest round trip. Other messages that arrive meanwhile are kept for
        :meth:`recv`."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        for _ in range(pings):
            # One at a time: back-to-back pings would queue behind each other and inflate the rtt.
            nonce, raw = self._make_ping()
            self.send_parts((raw,))
            while nonce in self._pings:
                msg = self._read(deadline)
                if not isinstance(msg, p.Pong):
                    self._early.append(msg)

    def expect(self, cls, accept=lambda msg: True, timeout: Optional[float] = None):
        """Waits (at most ``timeout``, default: the connection's timeout) for the next message of
        type ``cls`` that ``accept`` takes; other messages that arrive meanwhile are kept for
        :meth:`recv`. Raises Timeout, ConnectionLost, HubError."""
        for i, msg in enumerate(self._early):
            if isinstance(msg, cls) and accept(msg):
                del self._early[i]
                return msg
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            msg = self._read(deadline)
            if isinstance(msg, cls) and accept(msg):
                return msg
            if not isinstance(msg, p.Pong):
                self._early.append(msg)

    def _read(self, deadline: float):
        """The next message, Pongs included; answers Pings."""
        while True:
            msg = self._next_buffered()
            if msg is None:
                self._fill(deadline)
                continue
            return msg

    def _next_buffered(self):
        try:
            msg = self._decoder.next()
        except ProtocolError as e:
            self._refuse(e)
            raise
        if msg is None:
            return None
        if isinstance(msg, p.Ping):
            pong = p.encode(p.Pong(nonce=msg.nonce, ping_time_us=msg.time_us, time_us=now_us()))
            if self.defer_replies:
                self.deferred.append(pong)
            else:
                self.send_parts((pong,))
            return self._next_buffered()
        if isinstance(msg, p.Pong):
            sent = self._pings.pop(msg.nonce, None)
            if sent is not None:
                self.clock.add(ClockSample(sent, msg.time_us, now_us()))
        elif isinstance(msg, p.Error) and msg.id == 0:
            self.close()
            cls_ = Unauthorized if msg.code == p.UNAUTHORIZED else HubError
            raise cls_(msg.code, msg.message)
        return msg

    def _refuse(self, e: ProtocolError) -> None:
        """A decode error leaves the stream out of sync: say why, if we can, and close."""
        try:
            self.sock.settimeout(1.0)
            self.sock.sendall(p.encode(p.Error(code=e.code, id=0, message=str(e)[:500])))
        except OSError:
            pass
        self.close()

    def _readable(self) -> bool:
        try:
            r, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(r)

    def _fill(self, deadline: float) -> None:
        if self.closed:
            raise ConnectionLost("the connection to the hub is closed")
        try:
            data = _recv_until(self.sock, deadline, "a message from the hub")
        except ConnectionLost:
            self.close()
            raise
        self.last_received = time.monotonic()
        self._decoder.feed(data)

    # -----------------------------------------------------------------------------------------
    # Closing
    # -----------------------------------------------------------------------------------------

    def abort(self) -> None:
        """Makes any blocked send or receive on this connection return at once (from any thread)."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                self.sock.close()
            except OSError:
                pass


def _recv_until(sock: socket.socket, deadline: float, what: str) -> bytes:
    left = deadline - time.monotonic()
    if left <= 0:
        raise Timeout("timed out waiting for %s" % what)
    try:
        sock.settimeout(left)
        data = sock.recv(RECV_SIZE)
    except socket.timeout:
        raise Timeout("timed out waiting for %s" % what) from None
    except OSError as e:
        raise ConnectionLost("connection to the hub lost: %s" % (e.strerror or e)) from None
    if not data:
        raise ConnectionLost("the hub closed the connection")
    return data
