"""Answering commands as a device (PROTOCOL.md §4.5): :class:`Device`."""

from __future__ import annotations

import threading
import time
from typing import Callable, Dict, Optional

from . import protocol as p
from .connection import Address, Backoff, Connection
from .errors import FramewireError, Timeout, Unauthorized
from .live import PING_EVERY

Handler = Callable[..., object]


class Device:
    """A device that answers commands sent through the hub (``Client.command`` or
    ``framewire cmd NAME VERB ARGS``).

    ::

        dev = framewire.Device("hub:7878", "cam-1")

        @dev.command("capture")
        def capture():
            path = "snapshots/%d.jpg" % time.time()
            uploads.send_bytes(grab_jpeg(), path)     # a framewire.Client of its own
            return path                               # the reply text

        dev.serve()            # or dev.start() for a background thread

    A handler gets the command's arguments as strings and returns the reply text (or bytes, or
    None for an empty reply). An exception it raises becomes a ``Failed`` reply carrying its
    message; a verb without a handler is answered ``UnknownCommand``. Handlers run one at a time
    on the serving thread. The device reconnects with backoff when the hub goes away.

    Connecting (and each reconnection) returns once the hub confirmed the registration
    (``Registered``, protocol version 2): from then on commands for ``name`` reach this device.
    ``registered`` says whether the current connection is confirmed (a hub that speaks only
    version 1 never confirms; the device still works).
    """

    def __init__(self, address: Address, name: str, token: Optional[str] = None, timeout: float = 10.0):
        if not name:
            raise ValueError("a device needs a name")
        self.address = address
        self.name = name
        self.token = token
        self.timeout = timeout
        self.handlers: Dict[str, Handler] = {}
        #: Called as ``on_text(from_, text)`` for each text addressed to this device's name.
        self.on_text = None
        self.reconnects = 0
        self.answered = 0
        self.registered = False
        self.last_error: Optional[str] = None
        self._closing = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._conn: Optional[Connection] = self._open()

    def command(self, verb: str, handler: Optional[Handler] = None):
        """Registers ``handler`` for ``verb``; without ``handler``, a decorator."""
        if handler is not None:
            self.handlers[verb] = handler
            return handler

        def register(fn: Handler) -> Handler:
            self.handlers[verb] = fn
            return fn

        return register

    def _open(self) -> Connection:
        self.registered = False
        conn = Connection.open(self.address, self.token, self.name, self.timeout)
        try:
            conn.send(p.RegisterDevice(name=self.name))
            if conn.welcome.version >= 2:
                # The hub sends Registered before any command routed to the registration.
                conn.expect(p.Registered, lambda m: m.name == self.name)
                self.registered = True
        except BaseException:
            conn.close()
            raise
        return conn

    def serve(self, duration: Optional[float] = None) -> None:
        """Answers commands until :meth:`close` (or for ``duration`` seconds)."""
        listening_since = time.monotonic()
        end = None if duration is None else listening_since + duration
        backoff = Backoff()
        while not self._closing.is_set():
            left = None if end is None else end - time.monotonic()
            if left is not None and left <= 0:
                return
            conn = self._conn
            if conn is None:
                try:
                    self._conn = self._open()
                except Unauthorized:
                    raise
                except (FramewireError, OSError) as e:
                    self.last_error = str(e)
                    self._closing.wait(backoff.next() if left is None else min(backoff.next(), left))
                    continue
                backoff.reset()
                self.reconnects += 1
                continue
            try:
                msg = conn.recv(1.0 if left is None else min(1.0, left))
                if isinstance(msg, p.Command):
                    conn.send(self._answer(msg))
                    self.answered += 1
                    listening_since = time.monotonic()
                elif isinstance(msg, p.TextFrom) and self.on_text is not None:
                    self.on_text(msg.from_, msg.text)
            except Timeout:
                self._keepalive(conn, listening_since)
            except (FramewireError, OSError) as e:
                if self._closing.is_set():
                    return
                self.last_error = str(e)
                self.registered = False
                conn.close()
                self._conn = None

    def _answer(self, cmd: p.Command) -> p.Reply:
        handler = self.handlers.get(cmd.command)
        if handler is None:
            known = ", ".join(sorted(self.handlers)) or "none"
            return p.Reply(
                id=cmd.id, status=p.REPLY_UNKNOWN_COMMAND, body=("known commands: %s" % known).encode()
            )
        try:
            out = handler(*cmd.args)
        except Exception as e:  # the device's failure, reported to the caller
            return p.Reply(
                id=cmd.id, status=p.REPLY_FAILED, body=(str(e) or type(e).__name__).encode("utf-8")
            )
        if out is None:
            body = b""
        elif isinstance(out, (bytes, bytearray)):
            body = bytes(out)
        else:
            body = str(out).encode("utf-8")
        return p.Reply(id=cmd.id, status=p.REPLY_OK, body=body)

    def _keepalive(self, conn: Connection, listening_since: float) -> None:
        """Pings the hub after a quiet spell (the hub closes idle connections); silence past the
        timeout means the connection is dead. Time spent in a handler is not silence."""
        silent = time.monotonic() - max(conn.last_received, listening_since)
        try:
            if silent > self.timeout:
                raise Timeout("the hub has been silent for %.1f s" % silent)
            if silent > min(PING_EVERY, self.timeout / 2):
                conn.ping()
        except (FramewireError, OSError) as e:
            self.last_error = str(e)
            self.registered = False
            conn.close()
            self._conn = None

    def start(self) -> "Device":
        """Serves in a background (daemon) thread."""
        self._thread = threading.Thread(
            target=self.serve, name="framewire-device-%s" % self.name, daemon=True
        )
        self._thread.start()
        return self

    def close(self, timeout: float = 2.0) -> None:
        self._closing.set()
        conn = self._conn
        if conn is not None:
            conn.abort()
        if self._thread is not None:
            self._thread.join(timeout)
        if conn is not None:
            conn.close()

    def __enter__(self) -> "Device":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
