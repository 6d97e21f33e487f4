"""Live frames: publish a camera (:class:`Publisher`) and receive it newest-first
(:class:`Subscriber`).

Freshness comes from never queueing (PROTOCOL.md §4.6):

* A :class:`Publisher` keeps at most ``window`` (2) frames unacknowledged by the hub and one
  pending frame. A frame given while the window is full replaces the pending one (the older one is
  skipped and counted), so ``send_jpg`` never blocks the camera loop and never builds a backlog.
* A :class:`Subscriber` subscribes with a window of 1 and acknowledges a frame only when the next
  one is asked for; the hub then sends the newest frame it has. A slow loop therefore always gets
  a fresh frame, and frames it had no time for are skipped (gaps in ``seq``).

Both reconnect by themselves with backoff (0.1 s doubling to 5 s) when the hub goes away.
"""

from __future__ import annotations

import select
import socket
import threading
import time
from typing import NamedTuple, Optional

from . import images
from . import protocol as p
from .clock import now_us
from .connection import Address, Backoff, Connection
from .errors import FramewireError, HubError, Timeout, Unauthorized

#: Pings sent right after connecting to measure the clock offset (the tightest one is kept).
INITIAL_PINGS = 5
#: How often a live connection pings the hub again (clock refresh and liveness).
PING_EVERY = 5.0


class _Pending(NamedTuple):
    seq: int
    capture_us: int  # our clock
    format: int
    width: int
    height: int
    payload: bytes


class PublisherStats(NamedTuple):
    """A publisher's figures since it was created.

    ``published``: frames given to send_*; ``sent``: frames written to the hub; ``acked``: frames
    the hub acknowledged (received); ``skipped``: frames replaced by a newer one before they could
    be sent; ``reconnects``: connections re-established after a loss."""

    published: int
    sent: int
    acked: int
    skipped: int
    reconnects: int
    connected: bool
    last_acked_seq: int
    clock_offset_us: int
    rtt_us: Optional[int]
    last_error: Optional[str]


class Publisher:
    """Publishes a live stream of frames to a hub.

    ``Publisher("host:port", "cam", token=None, max_latency_ms=0)`` connects at once (a wrong
    address or token is an immediate error), announces the stream and measures the clock offset
    to the hub.

    * :meth:`send_jpg` never waits for the network. At most ``window`` (default 2) frames are
      unacknowledged by the hub; while the window is full, a new frame **replaces** the one waiting
      to be sent (counted in ``stats.skipped``). Nothing queues up, so the hub always gets the
      newest frame. When the window has room, the frame is written at once from the calling
      thread, with a non-blocking write; whatever the kernel does not take at once, and frames
      waiting for an acknowledgement, are sent by a background thread.
    * If the hub goes away, ``send_jpg`` does not raise: the newest frame waits and the background
      thread reconnects with backoff (0.1 s doubling to 5 s) as long as frames are being
      published (``stats.reconnects`` counts the reconnections).
    * ``capture_us`` is sent on the hub's clock (offset from Ping/Pong at connect, the tightest of
      5 samples, refreshed every 5 s), so frame ages are right across machines.
    * ``max_latency_ms``: the hub drops frames older than this on arrival (0: no limit).
    * ``send_jpg(..., wait=True)`` is the exception to the rule: it waits until its frame is on
      its way, so nothing is skipped (replaying recorded frames, benchmarks).
    """

    def __init__(
        self,
        address: Address,
        stream: str,
        token: Optional[str] = None,
        max_latency_ms: int = 0,
        name: Optional[str] = None,
        timeout: float = 10.0,
        window: int = 2,
    ):
        if not stream:
            raise ValueError("a stream needs a name")
        self.address = address
        self.stream = stream
        self.token = token
        self.name = name if name is not None else stream
        self.max_latency_ms = max_latency_ms
        self.timeout = timeout
        self.window = max(1, window)
        # Lock order: _io (whoever does socket work) before _lock (the counters and the pending
        # frame, also the condition flush() waits on).
        self._io = threading.Lock()
        self._lock = threading.Condition()
        self._pending: Optional[_Pending] = None
        self._out: list = []  # bytes the kernel has not taken yet (at most one frame, and pings)
        self._seq = 0
        self._published = 0
        self._sent = 0
        self._acked = 0
        self._skipped = 0
        self._reconnects = 0
        self._in_flight = 0
        self._last_acked_seq = 0
        self._last_progress = time.monotonic()
        self._next_ping = self._last_progress + PING_EVERY
        self._last_error: Optional[str] = None
        self._stopping = False
        self._closed = False
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        try:
            self._conn: Optional[Connection] = self._open()
        except BaseException:
            self._wake_r.close()
            self._wake_w.close()
            raise
        self._thread = threading.Thread(target=self._run, name="framewire-publisher-%s" % stream, daemon=True)
        self._thread.start()

    # -----------------------------------------------------------------------------------------
    # The camera side
    # -----------------------------------------------------------------------------------------

    def send_jpg(
        self,
        jpg: bytes,
        width: int = 0,
        height: int = 0,
        capture_time: Optional[float] = None,
        wait: bool = False,
    ) -> int:
        """Publishes a JPEG captured now (or at ``capture_time``, seconds since the epoch on this
        machine's clock, e.g. ``time.time()`` at capture). ``width``/``height`` are read from the
        JPEG header when 0. Returns the frame's sequence number. Never raises because of the
        network.

        By default it never waits: if the window is full, this frame waits in place of the
        previous one, which is skipped. ``wait=True`` instead waits (at most ``timeout``) until
        this frame is on its way, so no frame is skipped and the caller is paced by the hub: for
        replaying recorded frames, not for a live camera."""
        if not width or not height:
            width, height = images.jpeg_size(jpg)
        return self.send_frame(jpg, p.FORMAT_JPEG, width, height, capture_time, wait)

    def send_image(
        self, image, quality: int = 90, capture_time: Optional[float] = None, wait: bool = False
    ) -> int:
        """Encodes an OpenCV image (numpy array, BGR) as JPEG with ``cv2.imencode`` and publishes
        it. Raises MissingDependency if OpenCV is not installed (encode it yourself and use
        :meth:`send_jpg`)."""
        t = time.time() if capture_time is None else capture_time
        jpg, width, height = images.encode_jpeg(image, quality)
        return self.send_frame(jpg, p.FORMAT_JPEG, width, height, t, wait)

    def send_frame(
        self,
        payload: bytes,
        format: int,
        width: int,
        height: int,
        capture_time: Optional[float] = None,
        wait: bool = False,
    ) -> int:
        """Publishes an encoded frame of any format (``protocol.FORMAT_*``). See :meth:`send_jpg`."""
        if self._closed:
            raise FramewireError("the publisher of %r is closed" % self.stream)
        t = now_us() if capture_time is None else int(capture_time * 1e6)
        with self._lock:
            self._seq += 1
            seq = self._seq
            if self._pending is not None:
                self._skipped += 1
            self._pending = _Pending(seq, t, format, width, height, bytes(payload))
            self._published += 1
        # Send it from here if nobody else is doing socket work; else the I/O thread will. The
        # I/O thread is woken only when it has something to do that it is not already watching
        # for: it waits for acks on its own.
        if self._io.acquire(blocking=False):
            try:
                self._pump()
                wake = bool(self._out) or self._conn is None
            finally:
                self._io.release()
        else:
            wake = True
        if wake:
            self._wake()
        if wait:
            with self._lock:
                self._lock.wait_for(lambda: self._pending is None or self._pending.seq != seq, self.timeout)
        return seq

    @property
    def stats(self) -> PublisherStats:
        conn = self._conn
        clock = conn.clock if conn is not None else None
        return PublisherStats(
            published=self._published,
            sent=self._sent,
            acked=self._acked,
            skipped=self._skipped,
            reconnects=self._reconnects,
            connected=conn is not None and not conn.closed,
            last_acked_seq=self._last_acked_seq,
            clock_offset_us=clock.offset_us if clock else 0,
            rtt_us=clock.rtt_us if clock else None,
            last_error=self._last_error,
        )

    @property
    def reconnects(self) -> int:
        """Connections re-established after the hub went away."""
        return self._reconnects

    def flush(self, timeout: float = 2.0) -> bool:
        """Waits (at most ``timeout`` s) until the pending frame is sent and every sent frame is
        acknowledged. Returns whether that happened."""
        with self._lock:
            return self._lock.wait_for(lambda: self._pending is None and self._in_flight == 0, timeout)

    def close(self, timeout: float = 2.0) -> None:
        """Sends what is pending (waiting at most ``timeout`` s for the hub's acknowledgements),
        then stops the background thread and closes the connection."""
        if self._closed:
            return
        self.flush(timeout)
        self._closed = True
        self._stopping = True
        self._wake()
        self._thread.join(timeout)
        conn = self._conn
        if self._thread.is_alive() and conn is not None:
            conn.abort()
            self._thread.join(1.0)
        if conn is not None:
            conn.close()
        self._wake_r.close()
        self._wake_w.close()

    def __enter__(self) -> "Publisher":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -----------------------------------------------------------------------------------------
    # The network side
    # -----------------------------------------------------------------------------------------

    def _open(self) -> Connection:
        conn = Connection.open(self.address, self.token, self.name, self.timeout)
        try:
            conn.send(p.Publish(stream=self.stream, max_latency_ms=self.max_latency_ms))
            conn.sync_clock(INITIAL_PINGS, timeout=self.timeout)
        except BaseException:
            conn.close()
            raise
        conn.defer_replies = True  # from now on every write goes through _out
        return conn

    def _pump(self) -> None:
        """Socket work that never waits (call with ``_io`` held): read what has arrived (acks,
        pongs), write what the kernel takes, start the pending frame if the window has room, ping
        when due. A lost connection is recorded here; the I/O thread reconnects."""
        conn = self._conn
        if conn is None:
            return
        try:
            msg = conn.poll()
            while msg is not None:
                self._received(msg)
                msg = conn.poll()
            if conn.deferred:  # Pongs for the hub, after whatever is half written
                self._out.extend(memoryview(b) for b in conn.deferred)
                conn.deferred.clear()
            progressed = False
            while True:
                if self._out:
                    before = sum(len(v) for v in self._out)
                    self._out = conn.write_nowait(self._out)
                    if sum(len(v) for v in self._out) != before:
                        progressed = True
                    if self._out:
                        break
                frame = self._take_pending()
                if frame is None:
                    break
                head = p.frame_head(
                    self.stream,
                    frame.seq,
                    conn.clock.to_hub(frame.capture_us),
                    frame.format,
                    frame.width,
                    frame.height,
                    len(frame.payload),
                )
                self._out = [memoryview(head), memoryview(frame.payload)]
                self._sent += 1
            now = time.monotonic()
            if progressed:
                self._last_progress = now
            if now >= self._next_ping and not self._out:
                self._next_ping = now + PING_EVERY
                self._out = conn.write_nowait([memoryview(conn.ping_bytes())])
        except (FramewireError, OSError) as e:
            self._lost(conn, e)

    def _take_pending(self) -> Optional[_Pending]:
        with self._lock:
            if self._pending is None or self._in_flight >= self.window:
                return None
            frame, self._pending = self._pending, None
            if self._in_flight == 0:
                self._last_progress = time.monotonic()
            self._in_flight += 1
            self._lock.notify_all()
            return frame

    def _received(self, msg) -> None:
        if isinstance(msg, p.FrameAck) and msg.stream == self.stream:
            self._last_progress = time.monotonic()
            with self._lock:
                self._in_flight = max(0, self._in_flight - 1)
                self._acked += 1
                self._last_acked_seq = max(self._last_acked_seq, msg.seq)
                self._lock.notify_all()
        elif isinstance(msg, p.Error):
            self._last_error = str(HubError(msg.code, msg.message, msg.id))

    def _check_alive(self, conn: Connection) -> None:
        """A hub that stops answering without closing the connection counts as gone."""
        now = time.monotonic()
        try:
            if (self._in_flight or self._out) and now - self._last_progress > self.timeout:
                raise Timeout("the hub took no frame of %r for %.1f s" % (self.stream, self.timeout))
            if now - conn.last_received > self.timeout + PING_EVERY:
                raise Timeout("the hub has been silent for %.1f s" % (now - conn.last_received))
        except Timeout as e:
            self._lost(conn, e)

    def _lost(self, conn: Connection, e: Exception) -> None:
        self._last_error = str(e)
        conn.close()
        self._out = []
        with self._lock:
            if self._conn is conn:
                self._conn = None
            self._in_flight = 0
            self._lock.notify_all()

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except OSError:
            pass  # full (a wake-up is already waiting) or closed

    def _wait(self, conn: Optional[Connection], seconds: float) -> None:
        """Waits until the socket can be read (or written, while bytes wait to go out), a frame is
        published, or ``seconds`` pass."""
        readers = [self._wake_r]
        writers = []
        if conn is not None and not conn.closed:
            readers.append(conn.sock)
            if self._out:
                writers.append(conn.sock)
        try:
            select.select(readers, writers, [], max(0.0, seconds))
        except (OSError, ValueError):
            pass  # the connection was closed meanwhile: the loop notices
        try:
            while self._wake_r.recv(4096):
                pass
        except OSError:
            pass

    def _run(self) -> None:
        backoff = Backoff()
        retry_at = 0.0
        while not self._stopping:
            conn = self._conn
            if conn is None:
                now = time.monotonic()
                # Reconnect on publish: only while there is a frame to send, with backoff.
                if self._pending is None or now < retry_at:
                    self._wait(None, 1.0 if self._pending is None else retry_at - now)
                    continue
                try:
                    conn = self._open()
                except (FramewireError, OSError) as e:
                    self._last_error = str(e)
                    retry_at = time.monotonic() + backoff.next()
                    continue
                if self._stopping:  # closed while connecting
                    conn.close()
                    return
                backoff.reset()
                with self._io:
                    self._out = []
                    self._last_progress = time.monotonic()
                    self._next_ping = self._last_progress + PING_EVERY
                    self._reconnects += 1
                    self._conn = conn
            if not self._io.acquire(blocking=False):
                # The camera thread is doing the socket work right now, acks included: leave it
                # to it and look again shortly (waiting for the lock would only add thread
                # switches to a busy publishing loop).
                self._wait(None, 0.0005)
                continue
            try:
                self._pump()
                if self._conn is conn:
                    self._check_alive(conn)
            finally:
                self._io.release()
            if self._conn is conn:
                self._wait(conn, min(1.0, max(0.0, self._next_ping - time.monotonic())))


class Frame:
    """A received live frame.

    ``jpg`` (alias ``payload``): the encoded bytes. ``seq``: the publisher's number (gaps are
    frames skipped for freshness). ``capture_time``: when it was captured, seconds since the epoch
    on **this** machine's clock (converted through both clock offsets). ``received_time``: when it
    arrived here. ``age``: ``received_time - capture_time``, seconds. :meth:`image` decodes it.
    """

    __slots__ = (
        "stream",
        "seq",
        "capture_us",
        "format",
        "width",
        "height",
        "payload",
        "capture_time",
        "received_time",
    )

    def __init__(self, msg: p.Frame, offset_us: int, received_time: float):
        self.stream = msg.stream
        self.seq = msg.seq
        self.capture_us = msg.capture_us  # hub clock
        self.format = msg.format
        self.width = msg.width
        self.height = msg.height
        self.payload = msg.payload
        self.capture_time = (msg.capture_us - offset_us) / 1e6
        self.received_time = received_time

    @property
    def jpg(self) -> bytes:
        return self.payload

    @property
    def age(self) -> float:
        """Capture to arrival here, seconds."""
        return self.received_time - self.capture_time

    def image(self):
        """The frame as a numpy array (OpenCV's BGR for JPEG and PNG). Raises MissingDependency
        without OpenCV."""
        return images.decode(self.payload, self.format, self.width, self.height)

    def __repr__(self) -> str:
        return "Frame(stream=%r, seq=%d, %dx%d, %d bytes, age=%.1f ms)" % (
            self.stream, self.seq, self.width, self.height, len(self.payload), self.age * 1e3,
        )  # fmt: skip


class Subscriber:
    """Receives a stream's frames newest-first.

    ``Subscriber("host:port", "cam", token=None)`` connects at once (wrong address or token: an
    immediate error) and subscribes. Iterate over it::

        for frame in sub:          # waits for frames; reconnects by itself if the hub goes away
            process(frame.image())

    Asking for the next frame acknowledges the previous one (window 1), and the hub then sends the
    newest frame it has: however slow the loop, each frame is fresh, and the frames it had no time
    for are skipped. ``frame_timeout`` (seconds, default None: wait for ever) makes iteration raise
    Timeout when no frame comes that long; :meth:`next` takes its own timeout and returns None.
    ``close()`` (from any thread) ends the iteration.

    Connecting (and each reconnection) returns once the hub confirmed the subscription
    (``Subscribed``, protocol version 2); ``granted_window`` is then the window it granted, or None
    with a hub that speaks only version 1 (or while reconnecting).
    """

    def __init__(
        self,
        address: Address,
        stream: str,
        token: Optional[str] = None,
        name: Optional[str] = None,
        timeout: float = 10.0,
        frame_timeout: Optional[float] = None,
    ):
        self.address = address
        self.stream = stream
        self.token = token
        self.name = name
        self.timeout = timeout
        self.frame_timeout = frame_timeout
        self.reconnects = 0
        self.last_error: Optional[str] = None
        self.granted_window: Optional[int] = None
        self._unacked: Optional[int] = None
        self._closed = False
        self._closing = threading.Event()
        self._backoff = Backoff()
        self._conn: Optional[Connection] = self._open()

    def _open(self) -> Connection:
        self.granted_window = None
        conn = Connection.open(self.address, self.token, self.name, self.timeout)
        try:
            conn.sync_clock(INITIAL_PINGS, timeout=self.timeout)
            conn.send(p.Subscribe(stream=self.stream, window=1))
            if conn.welcome.version >= 2:
                # It comes before the stream's first frame.
                granted = conn.expect(p.Subscribed, lambda m: m.stream == self.stream)
                self.granted_window = granted.window
        except BaseException:
            conn.close()
            raise
        self._unacked = None
        return conn

    def next(self, timeout: Optional[float] = None) -> Optional[Frame]:
        """The next (newest) frame, waiting at most ``timeout`` seconds (None: until one comes or
        the subscriber is closed). Returns None on timeout or when closed. Acknowledges the
        previous frame first."""
        listening_since = time.monotonic()
        deadline = None if timeout is None else listening_since + timeout
        while not self._closed:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return None
            conn = self._conn
            if conn is None:
                self._reconnect(left)
                continue
            try:
                if self._unacked is not None:
                    conn.send(p.FrameAck(stream=self.stream, seq=self._unacked))
                    self._unacked = None
                msg = conn.recv(1.0 if left is None else min(1.0, left))
            except Timeout:
                self._keepalive(conn, listening_since)
                continue
            except (FramewireError, OSError) as e:
                if self._closed:
                    break
                self._lost(conn, e)
                continue
            if isinstance(msg, p.Frame) and msg.stream == self.stream:
                self._unacked = msg.seq
                return Frame(msg, conn.clock.offset_us, time.time())
            if isinstance(msg, p.Error):
                self.last_error = str(HubError(msg.code, msg.message, msg.id))
        return None

    def _keepalive(self, conn: Connection, listening_since: float) -> None:
        """No frame for a while (normal when the camera is idle): make sure the hub is still
        there with a Ping; silence past the timeout means the connection is dead. Time spent
        away from :meth:`next` (processing a frame) is not silence."""
        silent = time.monotonic() - max(conn.last_received, listening_since)
        try:
            if silent > self.timeout:
                raise Timeout("the hub has been silent for %.1f s" % silent)
            if silent > min(PING_EVERY, self.timeout / 2):
                conn.ping()
        except (FramewireError, OSError) as e:
            self._lost(conn, e)

    def _lost(self, conn: Connection, e: Exception) -> None:
        self.last_error = str(e)
        self.granted_window = None
        conn.close()
        self._conn = None

    def _reconnect(self, left: Optional[float]) -> None:
        try:
            self._conn = self._open()
        except Unauthorized:
            raise
        except (FramewireError, OSError) as e:
            self.last_error = str(e)
            pause = self._backoff.next()
            self._closing.wait(pause if left is None else max(0.0, min(pause, left)))
            return
        self._backoff.reset()
        self.reconnects += 1

    def __iter__(self) -> "Subscriber":
        return self

    def __next__(self) -> Frame:
        frame = self.next(self.frame_timeout)
        if frame is None:
            if self._closed:
                raise StopIteration
            raise Timeout("no frame of %r within %.1f s" % (self.stream, self.frame_timeout))
        return frame

    def close(self) -> None:
        """Stops receiving; a loop over the subscriber (in any thread) ends."""
        self._closed = True
        self._closing.set()
        conn = self._conn
        if conn is not None:
            conn.abort()
            conn.close()

    def __enter__(self) -> "Subscriber":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
