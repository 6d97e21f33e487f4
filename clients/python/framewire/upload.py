"""Pipelined uploads (PROTOCOL.md §4.1).

Several Offers are kept in flight (up to the hub's ``max_inflight``), so a folder of small files
costs no round trip per file: while the hub commits one file, the next one's bytes are already on
the wire. One file's Data…End is always sent whole before the next file's Data starts.

At each Accept the client does what the table in §4.1 says:

* ``offset == 0``: send the whole file, then End with its BLAKE3;
* ``0 < offset < size`` (the hub kept a partial upload): hash our own first ``offset`` bytes; if
  they match ``prefix_hash`` send the rest, else Cancel and offer again with NO_RESUME;
* ``offset == size`` (the same-size file is already stored): hash the whole file; if it matches,
  End without data (the hub answers Stored Unchanged), else Cancel and offer again with NO_RESUME.
"""

from __future__ import annotations

import collections
import io
import os
from dataclasses import dataclass
from typing import BinaryIO, Deque, Dict, List, Optional, Tuple

from . import blake3
from . import protocol as p
from .connection import Connection
from .errors import HubError, IntegrityError, ProtocolError, Timeout

#: Offers kept in flight at most, whatever the hub allows.
MAX_WINDOW = 64


@dataclass(frozen=True)
class Stored:
    """A file the hub has stored durably.

    ``status`` is ``"new"``, ``"replaced"`` (a different file was replaced, overwrite=True) or
    ``"unchanged"`` (the hub already held exactly these bytes: nothing was sent)."""

    local: str
    remote: str
    status: str
    size: int
    hash: bytes

    @property
    def hash_hex(self) -> str:
        return self.hash.hex()


class Source:
    """What to upload: a local file (``path``) or bytes in memory (``data``)."""

    def __init__(self, remote: str, path: Optional[str] = None, data: Optional[bytes] = None):
        self.remote = remote
        self.path = path
        self.data = data
        self.label = path if path is not None else "<%d bytes>" % len(data or b"")

    def size(self) -> int:
        if self.data is not None:
            return len(self.data)
        return os.stat(self.path).st_size

    def open(self) -> BinaryIO:
        if self.data is not None:
            return io.BytesIO(self.data)
        return open(self.path, "rb")


class _Upload:
    """One file being uploaded, possibly across several offer ids (after a Cancel)."""

    def __init__(self, source: Source, size: int):
        self.source = source
        self.size = size
        self.hash: Optional[bytes] = None  # whole-file BLAKE3, once known
        self.hasher = None  # BLAKE3 state after the prefix the hub already holds
        self.no_resume = False

    def whole_hash(self) -> bytes:
        if self.hash is None:
            self.hash = _hash_prefix(self.source, self.size).digest()
        return self.hash


def _hash_prefix(source: Source, n: int):
    """BLAKE3 state after the first ``n`` bytes of ``source``."""
    h = blake3.new()
    left = n
    with source.open() as f:
        while left:
            block = f.read(min(left, 1 << 20))
            if not block:
                raise IntegrityError(
                    "%s is shorter than %d bytes (did it change while being sent?)" % (source.label, n)
                )
            h.update(block)
            left -= len(block)
    return h


class Uploader:
    """Sends a batch of files over one connection, pipelined. Use :meth:`run`."""

    def __init__(self, conn: Connection, overwrite: bool = False, timeout: Optional[float] = None):
        self.conn = conn
        self.flags = p.OVERWRITE if overwrite else 0
        self.timeout = conn.timeout if timeout is None else timeout
        w = conn.welcome
        self.window = max(1, min(w.max_inflight, MAX_WINDOW))
        self.chunk = max(1, min(w.chunk_size or (1 << 20), w.max_payload - 4))
        self.outstanding: Dict[int, _Upload] = {}  # offer id -> upload, until Stored/Rejected
        self.cancelled: set = set()  # ids we cancelled; their Rejected{Cancelled} is expected
        self.ready: Deque[Tuple[int, _Upload, int]] = collections.deque()  # (id, upload, offset)
        self.retry: Deque[_Upload] = collections.deque()  # to offer again with NO_RESUME
        self.results: List[Stored] = []
        self.failures: List[Tuple[str, str, Exception]] = []

    def run(self, sources) -> Tuple[List[Stored], List[Tuple[str, str, Exception]]]:
        """Uploads every source. Returns ``(stored, failures)``; a failure is
        ``(local, remote, exception)``.

        Raises ConnectionLost, Timeout or ProtocolError if the connection itself fails."""
        todo: Deque[Source] = collections.deque(sources)
        while todo or self.retry or self.outstanding or self.ready:
            self._offer_more(todo)
            if self.ready:
                self._send_body(*self.ready.popleft())
                continue
            if self.outstanding:
                try:
                    msg = self.conn.recv(self.timeout)
                except Timeout:
                    raise Timeout(
                        "the hub answered none of %d outstanding offers within %.1f s"
                        % (len(self.outstanding), self.timeout)
                    ) from None
                self._handle(msg)
        return self.results, self.failures

    # -----------------------------------------------------------------------------------------

    def _offer_more(self, todo: Deque[Source]) -> None:
        batch = []
        while len(self.outstanding) < self.window and (self.retry or todo):
            if self.retry:
                u = self.retry.popleft()
            else:
                src = todo.popleft()
                problem = p.remote_path_problem(src.remote)
                if problem:
                    self._fail(src, ValueError("cannot store at %r: %s" % (src.remote, problem)))
                    continue
                try:
                    size = src.size()
                except OSError as e:
                    self._fail(src, e)
                    continue
                if size > self.conn.welcome.max_file_size:
                    self._fail(
                        src,
                        HubError(
                            p.TOO_LARGE,
                            "%d bytes is over the hub's limit of %d"
                            % (size, self.conn.welcome.max_file_size),
                            path=src.remote,
                        ),
                    )
                    continue
                u = _Upload(src, size)
            oid = self.conn.next_id()
            self.outstanding[oid] = u
            flags = self.flags | (p.NO_RESUME if u.no_resume else 0)
            batch.append(p.encode(p.Offer(id=oid, flags=flags, size=u.size, path=u.source.remote)))
        if batch:
            self.conn.send_parts(batch)

    def _handle(self, msg) -> None:
        if isinstance(msg, p.Accept):
            self._accepted(msg)
        elif isinstance(msg, p.Stored):
            u = self.outstanding.pop(msg.id, None)
            if u is None:
                raise ProtocolError("Stored for unknown offer id %d" % msg.id, p.PROTOCOL_VIOLATION)
            if msg.size != u.size or (u.hash is not None and msg.hash != u.hash):
                self._fail(
                    u.source,
                    IntegrityError(
                        "the hub stored %d bytes hashing to %s; we sent %d bytes hashing to %s"
                        % (msg.size, msg.hash.hex(), u.size, (u.hash or b"").hex())
                    ),
                )
                return
            self.results.append(
                Stored(u.source.label, u.source.remote, p.STORED_STATUS_NAMES[msg.status], msg.size, msg.hash)
            )
        elif isinstance(msg, p.Rejected):
            u = self.outstanding.pop(msg.id, None)
            if u is None:
                raise ProtocolError("Rejected for unknown offer id %d" % msg.id, p.PROTOCOL_VIOLATION)
            if msg.id in self.cancelled:
                self.cancelled.discard(msg.id)  # our own Cancel; the new offer carries on
            else:
                self._fail(u.source, HubError(msg.code, msg.reason, msg.id, path=u.source.remote))
        elif isinstance(msg, p.Error) and msg.id in self.outstanding:
            u = self.outstanding.pop(msg.id)
            self._fail(u.source, HubError(msg.code, msg.message, msg.id, path=u.source.remote))
        # Anything else (a Text echo, a stray frame) is not ours: ignore it.

    def _accepted(self, a: p.Accept) -> None:
        u = self.outstanding.get(a.id)
        if u is None or a.id in self.cancelled:
            raise ProtocolError("Accept for unknown offer id %d" % a.id, p.PROTOCOL_VIOLATION)
        try:
            if a.offset == 0:
                self.ready.append((a.id, u, 0))
                return
            if a.offset > u.size or u.no_resume:
                raise ProtocolError(
                    "the hub accepted %s at offset %d of %d" % (u.source.remote, a.offset, u.size),
                    p.PROTOCOL_VIOLATION,
                )
            if a.offset == u.size:
                same = u.whole_hash() == a.prefix_hash
            else:
                u.hasher = _hash_prefix(u.source, a.offset)
                same = u.hasher.digest() == a.prefix_hash
        except (OSError, IntegrityError) as e:
            # The id stays outstanding until the hub's Rejected{Cancelled}, which is then ignored.
            self._cancel(a.id)
            self._fail(u.source, e)
            return
        if same:
            self.ready.append((a.id, u, a.offset))
        else:
            # The hub's bytes are not ours: start again from 0, without resuming.
            self._cancel(a.id)
            u.no_resume = True
            u.hasher = None
            self.retry.append(u)

    def _cancel(self, oid: int) -> None:
        self.cancelled.add(oid)
        self.conn.send(p.Cancel(id=oid))

    def _send_body(self, oid: int, u: _Upload, offset: int) -> None:
        if offset == u.size:
            self.conn.send(p.End(id=oid, has_hash=1, hash=u.whole_hash()))
            return
        h = u.hasher if offset else blake3.new()
        left = u.size - offset
        try:
            with u.source.open() as f:
                if offset:
                    f.seek(offset)
                while left:
                    block = f.read(min(self.chunk, left))
                    if not block:
                        raise IntegrityError("%s shrank while it was being sent" % u.source.label)
                    h.update(block)
                    self.conn.send_parts((p.data_head(oid, len(block)), block))
                    left -= len(block)
                    # Answers for other files (Stored, Accept) are handled as they come.
                    msg = self.conn.poll()
                    while msg is not None:
                        self._handle(msg)
                        msg = self.conn.poll()
        except (OSError, IntegrityError) as e:
            self._cancel(oid)
            self._fail(u.source, e)
            return
        u.hash = h.digest()
        self.conn.send(p.End(id=oid, has_hash=1, hash=u.hash))

    def _fail(self, src: Source, error: Exception) -> None:
        self.failures.append((src.label, src.remote, error))


def collect_dir(local_dir: str, remote_dir: Optional[str] = None) -> List[Source]:
    """The files under ``local_dir`` as sources named like ``scp -r``: folder ``photos`` becomes
    ``photos/...`` (or ``REMOTE_DIR/...``). Sorted by path; only regular files (symlinks to files
    are followed, symlinked folders are not entered)."""
    root = os.path.abspath(local_dir)
    if not os.path.isdir(root):
        raise NotADirectoryError("%s is not a folder" % local_dir)
    if remote_dir is None:
        base = os.path.basename(os.path.normpath(root))
    else:
        base = remote_dir.strip("/")
    sources = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            if not os.path.isfile(full):
                continue
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            sources.append(Source(base + "/" + rel if base else rel, path=full))
    return sources
