"""BLAKE3, the hash framewire uses to check every stored and downloaded byte.

:func:`new` returns the fastest hasher available:

1. the ``blake3`` package (Rust, SIMD; ``pip install blake3``), if it is installed;
2. otherwise :class:`Blake3`, the pure-Python implementation below. It is correct (checked against
   the official test vectors) but slow. With numpy installed it hashes whole batches of 1 KiB
   chunks at once (numpy arrays as SIMD lanes) and reaches a few tens of MB/s; without numpy it does
   about 1-2 MB/s, which is fine for photos and small files but means several seconds per 10 MB.
   Install ``blake3`` for big files.

:data:`BACKEND` names the choice. The API follows ``hashlib`` and the ``blake3`` package:
``update()``, ``digest(length=32)``, ``hexdigest()``.

The implementation follows the BLAKE3 paper and its reference implementation: 1 KiB chunks hashed
with a counter, then a binary tree of parent nodes whose left subtrees are complete powers of two;
the root node's compression is extendable output.
"""

from __future__ import annotations

import os
from typing import List, Optional, Sequence, Tuple

try:  # pragma: no cover - depends on the environment
    import numpy as _np
except ImportError:  # pragma: no cover
    _np = None

IV = (0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19)
BLOCK_LEN = 64
CHUNK_LEN = 1024
KEY_LEN = 32
OUT_LEN = 32

CHUNK_START = 1 << 0
CHUNK_END = 1 << 1
PARENT = 1 << 2
ROOT = 1 << 3
KEYED_HASH = 1 << 4
DERIVE_KEY_CONTEXT = 1 << 5
DERIVE_KEY_MATERIAL = 1 << 6

_M32 = 0xFFFFFFFF
_PERMUTATION = (2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8)


def _schedules() -> Tuple[Tuple[int, ...], ...]:
    """Message word order for each of the 7 rounds (the permutation applied r times)."""
    order = tuple(range(16))
    out = []
    for _ in range(7):
        out.append(order)
        order = tuple(order[p] for p in _PERMUTATION)
    return tuple(out)


_SCHEDULES = _schedules()

# Fewer full chunks than this in one batch are hashed one at a time: numpy's per-call cost
# (thousands of array operations per batch) only pays off over many lanes.
_NUMPY_MIN_CHUNKS = 16
# With numpy, input is gathered up to this much before it is hashed: numpy's cost is per array
# operation, so more lanes per operation is faster (4 MiB: 4096 lanes, about 3x the speed of 1 MiB).
# It also bounds the working memory.
_BATCH = 4 << 20


def _compress(cv: Sequence, m: Sequence, counter_lo, counter_hi, block_len, flags) -> list:
    """The BLAKE3 compression function: 7 rounds over a 16-word state. Returns all 16 output words
    (the first 8 are the next chaining value).

    Works on Python ints, or on numpy uint32 arrays where each element is an independent lane (one
    chunk or parent node each). The ``& _M32`` masks keep Python ints to 32 bits; numpy's uint32
    arithmetic wraps by itself. No in-place operators: they would write into the caller's arrays."""
    # fmt: off
    v0, v1, v2, v3, v4, v5, v6, v7 = cv
    v8, v9, v10, v11 = IV[0], IV[1], IV[2], IV[3]
    v12, v13, v14, v15 = counter_lo, counter_hi, block_len, flags
    M = _M32
    for s in _SCHEDULES:
        # Columns.
        v0 = (v0 + v4 + m[s[0]]) & M; v12 = v12 ^ v0; v12 = ((v12 >> 16) | (v12 << 16)) & M
        v8 = (v8 + v12) & M; v4 = v4 ^ v8; v4 = ((v4 >> 12) | (v4 << 20)) & M
        v0 = (v0 + v4 + m[s[1]]) & M; v12 = v12 ^ v0; v12 = ((v12 >> 8) | (v12 << 24)) & M
        v8 = (v8 + v12) & M; v4 = v4 ^ v8; v4 = ((v4 >> 7) | (v4 << 25)) & M

        v1 = (v1 + v5 + m[s[2]]) & M; v13 = v13 ^ v1; v13 = ((v13 >> 16) | (v13 << 16)) & M
        v9 = (v9 + v13) & M; v5 = v5 ^ v9; v5 = ((v5 >> 12) | (v5 << 20)) & M
        v1 = (v1 + v5 + m[s[3]]) & M; v13 = v13 ^ v1; v13 = ((v13 >> 8) | (v13 << 24)) & M
        v9 = (v9 + v13) & M; v5 = v5 ^ v9; v5 = ((v5 >> 7) | (v5 << 25)) & M

        v2 = (v2 + v6 + m[s[4]]) & M; v14 = v14 ^ v2; v14 = ((v14 >> 16) | (v14 << 16)) & M
        v10 = (v10 + v14) & M; v6 = v6 ^ v10; v6 = ((v6 >> 12) | (v6 << 20)) & M
        v2 = (v2 + v6 + m[s[5]]) & M; v14 = v14 ^ v2; v14 = ((v14 >> 8) | (v14 << 24)) & M
        v10 = (v10 + v14) & M; v6 = v6 ^ v10; v6 = ((v6 >> 7) | (v6 << 25)) & M

        v3 = (v3 + v7 + m[s[6]]) & M; v15 = v15 ^ v3; v15 = ((v15 >> 16) | (v15 << 16)) & M
        v11 = (v11 + v15) & M; v7 = v7 ^ v11; v7 = ((v7 >> 12) | (v7 << 20)) & M
        v3 = (v3 + v7 + m[s[7]]) & M; v15 = v15 ^ v3; v15 = ((v15 >> 8) | (v15 << 24)) & M
        v11 = (v11 + v15) & M; v7 = v7 ^ v11; v7 = ((v7 >> 7) | (v7 << 25)) & M

        # Diagonals.
        v0 = (v0 + v5 + m[s[8]]) & M; v15 = v15 ^ v0; v15 = ((v15 >> 16) | (v15 << 16)) & M
        v10 = (v10 + v15) & M; v5 = v5 ^ v10; v5 = ((v5 >> 12) | (v5 << 20)) & M
        v0 = (v0 + v5 + m[s[9]]) & M; v15 = v15 ^ v0; v15 = ((v15 >> 8) | (v15 << 24)) & M
        v10 = (v10 + v15) & M; v5 = v5 ^ v10; v5 = ((v5 >> 7) | (v5 << 25)) & M

        v1 = (v1 + v6 + m[s[10]]) & M; v12 = v12 ^ v1; v12 = ((v12 >> 16) | (v12 << 16)) & M
        v11 = (v11 + v12) & M; v6 = v6 ^ v11; v6 = ((v6 >> 12) | (v6 << 20)) & M
        v1 = (v1 + v6 + m[s[11]]) & M; v12 = v12 ^ v1; v12 = ((v12 >> 8) | (v12 << 24)) & M
        v11 = (v11 + v12) & M; v6 = v6 ^ v11; v6 = ((v6 >> 7) | (v6 << 25)) & M

        v2 = (v2 + v7 + m[s[12]]) & M; v13 = v13 ^ v2; v13 = ((v13 >> 16) | (v13 << 16)) & M
        v8 = (v8 + v13) & M; v7 = v7 ^ v8; v7 = ((v7 >> 12) | (v7 << 20)) & M
        v2 = (v2 + v7 + m[s[13]]) & M; v13 = v13 ^ v2; v13 = ((v13 >> 8) | (v13 << 24)) & M
        v8 = (v8 + v13) & M; v7 = v7 ^ v8; v7 = ((v7 >> 7) | (v7 << 25)) & M

        v3 = (v3 + v4 + m[s[14]]) & M; v14 = v14 ^ v3; v14 = ((v14 >> 16) | (v14 << 16)) & M
        v9 = (v9 + v14) & M; v4 = v4 ^ v9; v4 = ((v4 >> 12) | (v4 << 20)) & M
        v3 = (v3 + v4 + m[s[15]]) & M; v14 = v14 ^ v3; v14 = ((v14 >> 8) | (v14 << 24)) & M
        v9 = (v9 + v14) & M; v4 = v4 ^ v9; v4 = ((v4 >> 7) | (v4 << 25)) & M
    return [
        v0 ^ v8, v1 ^ v9, v2 ^ v10, v3 ^ v11, v4 ^ v12, v5 ^ v13, v6 ^ v14, v7 ^ v15,
        v8 ^ cv[0], v9 ^ cv[1], v10 ^ cv[2], v11 ^ cv[3], v12 ^ cv[4], v13 ^ cv[5], v14 ^ cv[6], v15 ^ cv[7],
    ]
    # fmt: on


def _words(block: bytes) -> List[int]:
    """A block of at most 64 bytes as 16 little-endian words, zero-padded."""
    if len(block) < BLOCK_LEN:
        block = bytes(block) + bytes(BLOCK_LEN - len(block))
    return [int.from_bytes(block[i : i + 4], "little") for i in range(0, BLOCK_LEN, 4)]


class _Output:
    """The inputs of a node's last compression, kept so the caller decides whether it is the root
    (extendable output) or an inner node (a chaining value)."""

    __slots__ = ("cv", "block", "counter", "block_len", "flags")

    def __init__(self, cv, block, counter, block_len, flags):
        self.cv, self.block, self.counter, self.block_len, self.flags = cv, block, counter, block_len, flags

    def chaining_value(self) -> Tuple[int, ...]:
        c = self.counter
        return tuple(_compress(self.cv, self.block, c & _M32, c >> 32, self.block_len, self.flags)[:8])

    def root_bytes(self, length: int) -> bytes:
        out = bytearray()
        block_counter = 0
        while len(out) < length:
            words = _compress(
                self.cv,
                self.block,
                block_counter & _M32,
                block_counter >> 32,
                self.block_len,
                self.flags | ROOT,
            )
            out += b"".join(w.to_bytes(4, "little") for w in words)
            block_counter += 1
        return bytes(out[:length])


def _chunk_output(key: Tuple[int, ...], data, counter: int, flags: int) -> _Output:
    """Hashes one chunk (0..1024 bytes) up to its last block, which is left for the caller."""
    cv = key
    lo, hi = counter & _M32, counter >> 32
    n_blocks = max(1, (len(data) + BLOCK_LEN - 1) // BLOCK_LEN)
    start = CHUNK_START
    for i in range(n_blocks - 1):
        cv = _compress(
            cv, _words(data[i * BLOCK_LEN : (i + 1) * BLOCK_LEN]), lo, hi, BLOCK_LEN, flags | start
        )[:8]
        start = 0
    last = data[(n_blocks - 1) * BLOCK_LEN :]
    return _Output(tuple(cv), _words(last), counter, len(last), flags | start | CHUNK_END)


def _parent_cv(key, left, right, flags) -> Tuple[int, ...]:
    return tuple(_compress(key, tuple(left) + tuple(right), 0, 0, BLOCK_LEN, flags | PARENT)[:8])


def _subtree_cv_scalar(key, data, first_chunk: int, n: int, flags: int) -> Tuple[int, ...]:
    """Chaining value of the complete subtree of ``n`` (a power of two) full chunks starting at
    chunk number ``first_chunk``, one compression at a time."""
    level = [
        _chunk_output(key, data[i * CHUNK_LEN : (i + 1) * CHUNK_LEN], first_chunk + i, flags).chaining_value()
        for i in range(n)
    ]
    while len(level) > 1:
        level = [_parent_cv(key, level[i], level[i + 1], flags) for i in range(0, len(level), 2)]
    return level[0]


def _subtree_cv_numpy(key, data, first_chunk: int, n: int, flags: int) -> Tuple[int, ...]:
    """As :func:`_subtree_cv_scalar`, with all ``n`` chunks (then all parents of a level) hashed at
    once: word ``i`` of every lane lives in one numpy array."""
    np = _np
    words = np.frombuffer(data, dtype="<u4", count=n * 256).reshape(n, 16, 16)
    # blocks[b][i] = word i of block b of every chunk: contiguous rows, one lane per chunk.
    blocks = np.ascontiguousarray(words.transpose(1, 2, 0)).astype(np.uint32)
    counters = np.arange(first_chunk, first_chunk + n, dtype=np.uint64)
    lo = (counters & _M32).astype(np.uint32)
    hi = (counters >> np.uint64(32)).astype(np.uint32)
    block_len = np.full(n, BLOCK_LEN, dtype=np.uint32)
    cv = [np.full(n, k, dtype=np.uint32) for k in key]
    for b in range(16):
        f = flags | (CHUNK_START if b == 0 else 0) | (CHUNK_END if b == 15 else 0)
        cv = _compress(cv, blocks[b], lo, hi, block_len, np.full(n, f, dtype=np.uint32))[:8]
    while n > 1:
        n //= 2
        m = [w[0::2] for w in cv] + [w[1::2] for w in cv]
        zeros = np.zeros(n, dtype=np.uint32)
        cv = _compress(
            [np.full(n, k, dtype=np.uint32) for k in key],
            m,
            zeros,
            zeros,
            np.full(n, BLOCK_LEN, dtype=np.uint32),
            np.full(n, flags | PARENT, dtype=np.uint32),
        )[:8]
    return tuple(int(w[0]) for w in cv)


class Blake3:
    """Pure-Python BLAKE3 hasher (hash, keyed hash and key derivation; extendable output).

    ``Blake3(data)`` for the default hash, ``Blake3(key=32 bytes)`` for the keyed hash,
    :meth:`derive_key` for key derivation. ``vectorize`` chooses whether numpy hashes batches of
    chunks (default: when numpy is importable)."""

    name = "blake3"
    digest_size = OUT_LEN
    block_size = BLOCK_LEN

    def __init__(
        self,
        data=b"",
        key: Optional[bytes] = None,
        vectorize: Optional[bool] = None,
        _flags: int = 0,
        _key_words=None,
    ):
        if key is not None:
            if len(key) != KEY_LEN:
                raise ValueError("a BLAKE3 key is 32 bytes")
            self._key = tuple(int.from_bytes(key[i : i + 4], "little") for i in range(0, KEY_LEN, 4))
            self._flags = KEYED_HASH
        else:
            self._key = tuple(_key_words) if _key_words is not None else IV
            self._flags = _flags
        if vectorize and _np is None:
            raise ValueError("vectorize=True needs numpy")
        self._vectorize = (_np is not None) if vectorize is None else vectorize
        self._buf = bytearray()  # bytes not yet hashed; always holds the last chunk until digest
        self._chunks = 0  # chunks hashed into the tree so far
        self._stack: List[Tuple[Tuple[int, ...], int]] = []  # (chaining value, chunks it covers)
        if data:
            self.update(data)

    @classmethod
    def derive_key(cls, context: str, vectorize: Optional[bool] = None) -> "Blake3":
        """A hasher for BLAKE3's key derivation mode: update it with the key material."""
        ctx = cls(vectorize=vectorize, _flags=DERIVE_KEY_CONTEXT)
        ctx.update(context.encode("utf-8"))
        context_key = ctx.digest(KEY_LEN)
        words = [int.from_bytes(context_key[i : i + 4], "little") for i in range(0, KEY_LEN, 4)]
        return cls(vectorize=vectorize, _flags=DERIVE_KEY_MATERIAL, _key_words=words)

    def update(self, data) -> "Blake3":
        view = memoryview(data).cast("B")
        gather = _BATCH if self._vectorize else CHUNK_LEN
        for start in range(0, len(view), _BATCH):
            self._buf += view[start : start + _BATCH]
            if len(self._buf) > gather:
                self._add_chunks()
        return self

    def _add_chunks(self) -> None:
        # Every full chunk but the last is an inner leaf: more input follows it.
        n = (len(self._buf) - 1) // CHUNK_LEN
        i = 0
        while i < n:
            c = self._chunks + i
            # The largest complete subtree that starts here: aligned on its own size.
            size = c & -c if c else 1 << 62
            while size > n - i:
                size >>= 1
            piece = bytes(self._buf[i * CHUNK_LEN : (i + size) * CHUNK_LEN])
            if self._vectorize and size >= _NUMPY_MIN_CHUNKS:
                cv = _subtree_cv_numpy(self._key, piece, c, size, self._flags)
            else:
                cv = _subtree_cv_scalar(self._key, piece, c, size, self._flags)
            self._push(cv, size)
            i += size
        del self._buf[: n * CHUNK_LEN]
        self._chunks += n

    def _push(self, cv: Tuple[int, ...], size: int) -> None:
        # Two neighbouring subtrees of the same size are siblings: merge them (more input follows,
        # so their parent is not the root).
        while self._stack and self._stack[-1][1] == size:
            left, _ = self._stack.pop()
            cv = _parent_cv(self._key, left, cv, self._flags)
            size *= 2
        self._stack.append((cv, size))

    def digest(self, length: int = OUT_LEN) -> bytes:
        """The hash of everything so far (``length`` bytes of extendable output). The hasher can
        keep being updated afterwards."""
        if len(self._buf) > CHUNK_LEN:
            self._add_chunks()
        out = _chunk_output(self._key, bytes(self._buf), self._chunks, self._flags)
        for cv, _ in reversed(self._stack):
            out = _Output(
                self._key, list(cv) + list(out.chaining_value()), 0, BLOCK_LEN, self._flags | PARENT
            )
        return out.root_bytes(length)

    def hexdigest(self, length: int = OUT_LEN) -> str:
        return self.digest(length).hex()

    def copy(self) -> "Blake3":
        c = Blake3.__new__(Blake3)
        c._key, c._flags, c._vectorize = self._key, self._flags, self._vectorize
        c._buf, c._chunks, c._stack = bytearray(self._buf), self._chunks, list(self._stack)
        return c


def _choose_backend():
    forced = os.environ.get("FRAMEWIRE_BLAKE3", "").strip().lower()
    if forced not in ("", "package", "numpy", "pure"):
        raise ValueError("FRAMEWIRE_BLAKE3 must be package, numpy or pure, not %r" % forced)
    if forced in ("", "package"):
        try:
            import blake3 as package  # the Rust implementation, if installed

            return "blake3 package", lambda data=b"": package.blake3(data)
        except ImportError:
            if forced == "package":
                raise
    if forced in ("", "numpy") and _np is not None:
        return "pure Python + numpy", lambda data=b"": Blake3(data, vectorize=True)
    if forced == "numpy":
        raise ImportError("FRAMEWIRE_BLAKE3=numpy but numpy is not installed")
    return "pure Python", lambda data=b"": Blake3(data, vectorize=False)


#: Which implementation :func:`new` uses: "blake3 package", "pure Python + numpy" or "pure Python".
#: Set the environment variable FRAMEWIRE_BLAKE3 to package, numpy or pure to force one.
BACKEND, _factory = _choose_backend()


def new(data=b""):
    """A BLAKE3 hasher from the fastest backend available (see :data:`BACKEND`)."""
    return _factory(data)


def hash_file(path: str, length: Optional[int] = None, read_size: int = 1 << 20) -> bytes:
    """BLAKE3 of the first ``length`` bytes of the file at ``path`` (all of it when None).

    Raises OSError, or IntegrityError-worthy ValueError if the file is shorter than ``length``."""
    h = new()
    done = 0
    with open(path, "rb") as f:
        while length is None or done < length:
            want = read_size if length is None else min(read_size, length - done)
            block = f.read(want)
            if not block:
                break
            h.update(block)
            done += len(block)
    if length is not None and done < length:
        raise ValueError("%s has %d bytes, expected at least %d" % (path, done, length))
    return h.digest()
