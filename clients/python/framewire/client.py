"""The file and command side of a hub: :class:`Client`."""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from typing import List, NamedTuple, Optional

from . import blake3
from . import protocol as p
from .connection import Address, Connection
from .errors import (
    CommandFailed,
    CommandTimeout,
    ConnectionLost,
    HubError,
    IntegrityError,
    ProtocolError,
    Timeout,
    UnknownCommand,
    UnknownDevice,
    UploadError,
)
from .upload import Source, Stored, Uploader, collect_dir

#: Entries asked for per List page.
LIST_PAGE = 1000
#: How much longer than the client's timeout a command may take: the hub answers Timeout itself
#: when its own limit (10 s by default) passes, and that answer should win the race.
COMMAND_MARGIN = 3.0


@dataclass(frozen=True)
class RemoteFile:
    """A file stored on the hub, as listed by :meth:`Client.list`."""

    path: str
    size: int
    hash: bytes
    stored_us: int
    sender: str

    @property
    def hash_hex(self) -> str:
        return self.hash.hex()

    @property
    def stored_time(self) -> float:
        """When the hub stored it: seconds since the Unix epoch, the hub's clock."""
        return self.stored_us / 1e6


@dataclass(frozen=True)
class Downloaded:
    """A file fetched by :meth:`Client.get`, verified against its BLAKE3."""

    remote: str
    local: str
    size: int
    hash: bytes


class PingResult(NamedTuple):
    """``rtt``: round trip, seconds. ``offset``: the hub's clock minus ours, seconds (best estimate
    so far on this connection)."""

    rtt: float
    offset: float


class Client:
    """A connection to a framewire hub for files, messages and device commands.

    ``Client("host:port", token=None, name=None, timeout=10.0)`` connects at once (so a wrong
    address or token is an immediate, clear error). ``name`` is recorded by the hub as the sender
    of uploaded files (default: this machine's host name). ``timeout`` bounds every wait on the
    network, in seconds. Use it as a context manager, or call :meth:`close`.

    If the connection is lost, the call that noticed raises ConnectionLost and the next call
    connects again. A Client is meant for one thread at a time.
    """

    def __init__(
        self, address: Address, token: Optional[str] = None, name: Optional[str] = None, timeout: float = 10.0
    ):
        self.address = address
        self.token = token
        self.name = name
        self.timeout = timeout
        self._conn: Optional[Connection] = None
        self._connect()

    # -----------------------------------------------------------------------------------------

    def _connect(self) -> Connection:
        conn = self._conn
        if conn is not None and not conn.closed:
            # Whatever arrived since the last call: stray answers are dropped; an end of stream
            # or Error{id 0} (the hub closes connections idle for 5 minutes) means connect again.
            try:
                while conn.poll() is not None:
                    pass
            except (ConnectionLost, HubError, ProtocolError):
                conn.close()
        if conn is None or conn.closed:
            self._conn = Connection.open(self.address, self.token, self.name, self.timeout)
        return self._conn

    @property
    def connection(self) -> Connection:
        """The underlying connection (reconnected if it was lost)."""
        return self._connect()

    @property
    def hub_name(self) -> str:
        return self._connect().welcome.hub_name

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -----------------------------------------------------------------------------------------
    # Files
    # -----------------------------------------------------------------------------------------

    def send_file(self, local: str, remote: Optional[str] = None, overwrite: bool = False) -> Stored:
        """Stores the file ``local`` on the hub at ``remote`` (default: its file name).

        Returns a :class:`~framewire.upload.Stored` whose ``status`` is ``"new"``, ``"replaced"`` or
        ``"unchanged"`` (the hub already had these exact bytes; nothing was sent again).

        Raises HubError (e.g. ``Exists`` when a different file is stored there and ``overwrite``
        is False), ValueError (a remote path the hub would refuse), OSError (cannot read the
        file), ConnectionLost, Timeout."""
        if not os.path.isfile(local):
            raise FileNotFoundError("no such file: %s" % local)
        if remote is None:
            remote = os.path.basename(local)
        return self._send_one(Source(remote, path=local), overwrite)

    def send_bytes(self, data: bytes, remote: str, overwrite: bool = False) -> Stored:
        """Stores ``data`` on the hub at ``remote`` (a JPEG just captured, say), like
        :meth:`send_file`."""
        return self._send_one(Source(remote, data=bytes(data)), overwrite)

    def _send_one(self, source: Source, overwrite: bool) -> Stored:
        problem = p.remote_path_problem(source.remote)
        if problem:
            raise ValueError("cannot store at %r: %s" % (source.remote, problem))
        results, failures = Uploader(self._connect(), overwrite).run([source])
        if failures:
            raise failures[0][2]
        return results[0]

    def send_dir(
        self, local_dir: str, remote_dir: Optional[str] = None, overwrite: bool = False
    ) -> List[Stored]:
        """Stores every file under ``local_dir``, named like ``scp -r``: folder ``photos`` becomes
        ``photos/...`` on the hub (or ``REMOTE_DIR/...``). Offers are pipelined: several files are
        in flight at once, with no round trip per file.

        Returns the :class:`~framewire.upload.Stored` of every file, in path order. Raises
        UploadError if any file was not stored (``.failures`` says which and why; the others
        were stored), or ConnectionLost / Timeout if the connection failed."""
        sources = collect_dir(local_dir, remote_dir)
        results, failures = Uploader(self._connect(), overwrite).run(sources)
        if failures:
            raise UploadError(failures, results)
        order = {s.remote: i for i, s in enumerate(sources)}
        return sorted(results, key=lambda r: order.get(r.remote, 0))

    def get(self, remote: str, local: str) -> Downloaded:
        """Downloads ``remote`` to ``local`` (a file path, or an existing folder to put it in),
        verified against the hub's BLAKE3 before it appears under its name.

        Raises HubError (``NotFound``, ``BadPath``), IntegrityError (the bytes do not hash to what
        the hub announced; nothing is written), ConnectionLost, Timeout."""
        if os.path.isdir(local):
            local = os.path.join(local, remote.rsplit("/", 1)[-1])
        conn = self._connect()
        rid = conn.next_id()
        conn.send(p.Get(id=rid, offset=0, path=remote))
        info = self._answer(rid, (p.FileInfo,), remote)
        folder = os.path.dirname(os.path.abspath(local))
        fd, tmp = tempfile.mkstemp(prefix=".framewire-", suffix=".part", dir=folder)
        try:
            h = blake3.new()
            got = 0
            with os.fdopen(fd, "wb") as f:
                while True:
                    msg = self._answer(rid, (p.Data, p.End), remote)
                    if isinstance(msg, p.End):
                        break
                    h.update(msg.bytes)
                    f.write(msg.bytes)
                    got += len(msg.bytes)
                    if got > info.size:
                        raise IntegrityError(
                            "%s: the hub sent more than the %d bytes it announced" % (remote, info.size)
                        )
            digest = h.digest()
            if got != info.size:
                raise IntegrityError("%s: received %d bytes, the hub announced %d" % (remote, got, info.size))
            if digest != info.hash or (msg.has_hash and msg.hash != digest):
                raise IntegrityError(
                    "%s: the received bytes hash to %s, the hub announced %s"
                    % (remote, digest.hex(), info.hash.hex())
                )
            os.replace(tmp, local)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        return Downloaded(remote, local, info.size, digest)

    def list(self, prefix: str = "") -> List[RemoteFile]:
        """Every stored file whose path starts with ``prefix`` (a plain string prefix, e.g.
        ``"photos/"``), in path order.

        Raises HubError (``Forbidden``), ConnectionLost, Timeout."""
        conn = self._connect()
        files: List[RemoteFile] = []
        after = ""
        while True:
            rid = conn.next_id()
            conn.send(p.List(id=rid, limit=LIST_PAGE, prefix=prefix, after=after))
            page = self._answer(rid, (p.ListPage,), prefix)
            files.extend(RemoteFile(e.path, e.size, e.hash, e.stored_us, e.sender) for e in page.entries)
            if not page.more or not page.entries:
                return files
            after = page.entries[-1].path

    def delete(self, remote: str) -> int:
        """Deletes the stored file ``remote``; returns its size. Once this returns, the file is
        gone from the hub's disk and listing, even if the hub crashes right after.

        Raises HubError (``NotFound``, ``Forbidden``, ``Busy`` while an upload to it is in
        progress), ConnectionLost, Timeout."""
        conn = self._connect()
        rid = conn.next_id()
        conn.send(p.Delete(id=rid, path=remote))
        return self._answer(rid, (p.Deleted,), remote).size

    # -----------------------------------------------------------------------------------------
    # Messages, commands, clock
    # -----------------------------------------------------------------------------------------

    def message(self, text: str) -> str:
        """Sends a text message; the hub logs it and echoes it. Returns the echo."""
        conn = self._connect()
        rid = conn.next_id()
        conn.send(p.Text(id=rid, text=text))
        return self._answer(rid, (p.Text,), None).text

    def send_text(self, to: str, text: str) -> bool:
        """Delivers ``text`` to whichever client holds the name ``to`` (a device, or a program
        following events under that name). True if delivered, False if nobody holds the name or
        the receiver is not reading."""
        conn = self._connect()
        rid = conn.next_id()
        conn.send(p.TextTo(id=rid, to=to, text=text))
        return self._answer(rid, (p.Delivery,), None).status == p.DELIVERED

    def events(self, kinds=(), prefix: str = "", name: str = ""):
        """Follows the hub's events from now on: returns an iterator of ``protocol.Event``
        (``.kind``, ``.field("path")``...), and, with ``name``, of ``protocol.TextFrom`` for texts
        addressed to that name. The follow is in effect when this returns. Use a Client of its
        own for it (other requests on it would see the events).

        Raises HubError (Forbidden) if the token may not follow events."""
        conn = self._connect()
        conn.send(p.Follow(name=name, prefix=prefix, kinds=tuple(kinds)))
        conn.expect(p.Following, timeout=self.timeout)
        return self._follow(conn)

    def _follow(self, conn):
        while True:
            try:
                msg = conn.recv(30.0)
            except Timeout:
                conn.ping()  # keeps the hub's idle timeout away
                continue
            if isinstance(msg, (p.Event, p.TextFrom)):
                yield msg

    def command(self, device: str, verb: str, *args: str, timeout: Optional[float] = None) -> str:
        """Runs ``verb args`` on the device named ``device`` (through the hub) and returns its
        answer as text.

        Raises UnknownDevice (no such device connected), UnknownCommand (the device does not know
        ``verb``), CommandFailed (it ran and failed), CommandTimeout (the device did not answer
        in the hub's time), all CommandError; Timeout if not even the hub answered within
        ``timeout`` (default: the client's timeout + 3 s)."""
        conn = self._connect()
        rid = conn.next_id()
        conn.send(p.Command(id=rid, target=device, command=verb, args=tuple(str(a) for a in args)))
        wait = self.timeout + COMMAND_MARGIN if timeout is None else timeout
        reply = self._answer(rid, (p.Reply,), None, wait)
        text = reply.body.decode("utf-8", errors="replace")
        line = " ".join((verb,) + tuple(str(a) for a in args))
        if reply.status == p.REPLY_OK:
            return text
        exc = {
            p.REPLY_FAILED: CommandFailed,
            p.REPLY_UNKNOWN_DEVICE: UnknownDevice,
            p.REPLY_UNKNOWN_COMMAND: UnknownCommand,
            p.REPLY_TIMEOUT: CommandTimeout,
        }[reply.status]
        raise exc(device, line, text)

    def ping(self) -> PingResult:
        """Measures the round trip to the hub and refines the clock offset estimate."""
        conn = self._connect()
        t0 = time.monotonic()
        conn.sync_clock(pings=1, timeout=self.timeout)
        rtt = time.monotonic() - t0
        return PingResult(rtt, conn.clock.offset_us / 1e6)

    @property
    def clock_offset(self) -> float:
        """The hub's clock minus ours, seconds (best estimate so far)."""
        return self._connect().clock.offset_us / 1e6

    # -----------------------------------------------------------------------------------------

    def _answer(self, rid: int, kinds: tuple, path: Optional[str], timeout: Optional[float] = None):
        """The next message for request ``rid`` of one of ``kinds``; an Error for ``rid`` is
        raised as HubError. Messages for nothing we asked are skipped."""
        conn = self._conn  # the request went out on it: never a new one here
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Timeout(
                    "no answer from the hub within %.1f s" % (self.timeout if timeout is None else timeout)
                )
            try:
                msg = conn.recv(left)
            except (ConnectionLost, ProtocolError, HubError):
                conn.close()
                raise
            if isinstance(msg, p.Error) and msg.id == rid:
                raise HubError(msg.code, msg.message, rid, path=path)
            if isinstance(msg, kinds) and getattr(msg, "id", rid) == rid:
                return msg
