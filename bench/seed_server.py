#!/usr/bin/env python3
"""Seed-article upload server, ported to Python 3 (benchmark peer, not product code).

Source: shared/seeds/003_7659987252374488.txt, section "2.TCP编程示例".
Wire format per connection (exactly one file per TCP connection):

    16 ASCII digits, zero-padded  = length of BODY in bytes
    BODY = file name, fixed to 32 characters + base64(file bytes)

Kept from the article, on purpose (this is the design framewire must beat):
  * one sequential accept loop, one connection per file, no threads;
  * recv() in 4096-byte chunks collected in a list and joined;
  * base64 on the wire; no acknowledgement to the client;
  * no fsync (the article never syncs), so this peer is only used in the
    tmpfs scenario.

Fixed, because they are outright bugs in the article:
  * the header is read with one recv(16), which may return fewer bytes;
    here it is read until all 16 bytes are in;
  * the body loop subtracted the buffer size (4096) instead of the bytes
    actually received, so it stopped early and truncated files; here it counts
    real bytes and never asks for more than is left;
  * a peer closing early made the loop spin forever on empty recv(); here it
    is an error;
  * the article saved the raw body (name + base64) under a counter name; the
    article's stated intent is the image, so the body is split into name and
    base64, decoded, and written under its name (sub-folders allowed), giving
    byte-identical files;
  * eval() on the header is replaced by int().
Dropped: the per-chunk debug print of the received data (it prints every
4 KiB of payload to the terminal; it is logging, not protocol).
Added for the harness: --port 0 picks a free port and the line
"listening on 127.0.0.1:PORT" is printed; --count N exits after N files so the
harness can time "all files stored"; SO_REUSEADDR for quick restarts;
--backlog (default 5, the article's value). The harness passes 4096: with 5
(or even 128) the client outruns the server on loopback, the accept queue
overflows and the kernel's 1 s SYN retries dominate the timing.
"""

import argparse
import base64
import os
import socket
import sys

LEN_HEADER = 16   # m_len_header in the article
LEN_BUF = 4096    # m_len_buf in the article
LEN_NAME = 32     # "图片名称（32位字符串）"


def recv_exact(conn, n):
    """Receive exactly n bytes in chunks of at most LEN_BUF (the article's buffer)."""
    chunks = []
    left = n
    while left > 0:
        data = conn.recv(min(LEN_BUF, left))
        if not data:
            raise ConnectionError(f"peer closed with {left} of {n} bytes missing")
        chunks.append(data)
        left -= len(data)
    return b"".join(chunks)


def read_header(header):
    content = header[:LEN_HEADER].decode("ascii")
    if len(content) != LEN_HEADER or not content.isdigit():
        raise ValueError(f"bad header {content!r}")
    return int(content)


def safe_path(save_dir, name):
    """Map the 32-char name field to a path under save_dir, refusing escapes."""
    rel = name.rstrip(" \0")
    if not rel or os.path.isabs(rel) or ".." in rel.split("/"):
        raise ValueError(f"bad name {name!r}")
    return os.path.join(save_dir, rel)


def server(host, port, save_dir, count, backlog):
    sk = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 0)  # TCP
    sk.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sk.bind((host, port))
    sk.listen(backlog)
    print(f"seed_server: listening on {host}:{sk.getsockname()[1]}", flush=True)
    os.makedirs(save_dir, exist_ok=True)

    cnt = 0
    while count == 0 or cnt < count:
        conn, _addr = sk.accept()
        try:
            len_data = read_header(recv_exact(conn, LEN_HEADER))
            body = recv_exact(conn, len_data)
        finally:
            conn.close()
        name = body[:LEN_NAME].decode("ascii")
        save_path = safe_path(save_dir, name)
        os.makedirs(os.path.dirname(save_path), exist_ok=True)
        with open(save_path, "wb") as f:
            f.write(base64.b64decode(body[LEN_NAME:], validate=True))
        cnt += 1
    sk.close()
    print(f"seed_server: stored {cnt} files", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9999, help="0 = pick a free port")
    ap.add_argument("--save-dir", default="b64")
    ap.add_argument("--count", type=int, default=0, help="exit after N files (0 = never)")
    ap.add_argument("--backlog", type=int, default=5, help="listen() backlog; the article uses 5")
    a = ap.parse_args()
    try:
        server(a.host, a.port, a.save_dir, a.count, a.backlog)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
