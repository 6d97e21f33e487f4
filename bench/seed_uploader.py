#!/usr/bin/env python3
"""Seed-article upload client, ported to Python 3 (benchmark peer, not product code).

    python3 bench/seed_uploader.py SRC_DIR --server 127.0.0.1:PORT

Source: shared/seeds/003_7659987252374488.txt, section "2.TCP编程示例".
For every file, sequentially, exactly as the article does:
  read the whole file -> base64 -> open a NEW TCP connection -> send the
  16-digit zero-padded length header, then the 32-character name, then the
  base64 text (three sendall() calls, as in send_socket) -> close.
No threads, no pipelining, no connection reuse: that is the design under test.

Differences from the article, all needed to make it correct or usable here:
  * it walks SRC_DIR recursively (sorted) instead of listing one folder of
    *.jpg files, and the name field carries the path relative to SRC_DIR,
    padded with spaces to exactly 32 characters (the article assumed names
    were already 32 characters and used rstrip('.jpg'), which strips
    characters, not a suffix); names longer than 32 are refused;
  * the batching wrapper (batch_size / max_batch) is dropped: it only split
    the same sequential loop into chunks;
  * the per-file progress print is off unless --verbose;
  * time.clock() (removed in Python 3.8) is replaced by time.perf_counter().
"""

import argparse
import base64
import os
import socket
import sys
import time

LEN_HEADER = 16
LEN_NAME = 32


def init_socket(serv_ip, serv_port):
    sk = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 0)  # TCP
    sk.connect((serv_ip, serv_port))
    sk.settimeout(50)  # as in the article
    return sk


def send_socket(sk, b64, name):
    len_content = len(b64) + len(name)
    sk.sendall(bytes(str(len_content).zfill(LEN_HEADER), encoding="utf-8"))  # header
    sk.sendall(bytes(name, encoding="utf-8"))
    sk.sendall(b64)  # content
    sk.close()


def img_to_b64(img_path):
    with open(img_path, "rb") as f:
        img = f.read()
    return base64.b64encode(img)


def get_names(src_dir):
    names = []
    for root, dirs, files in os.walk(src_dir):
        dirs.sort()
        for fn in sorted(files):
            names.append(os.path.relpath(os.path.join(root, fn), src_dir))
    return names


def fixed_name(rel):
    rel = rel.replace(os.sep, "/")
    if len(rel.encode("ascii")) > LEN_NAME:
        raise ValueError(f"name longer than {LEN_NAME} characters: {rel!r}")
    return rel.ljust(LEN_NAME)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src_dir")
    ap.add_argument("--server", default="127.0.0.1:9999", help="HOST:PORT")
    ap.add_argument("--verbose", action="store_true", help="per-file progress, as the article prints")
    a = ap.parse_args()
    host, port = a.server.rsplit(":", 1)
    port = int(port)

    t0 = time.perf_counter()
    names = get_names(a.src_dir)
    t1 = t0
    for cnt, rel in enumerate(names):
        b64 = img_to_b64(os.path.join(a.src_dir, rel))
        sk = init_socket(host, port)
        send_socket(sk, b64, fixed_name(rel))
        if a.verbose:
            t2 = time.perf_counter()
            print(f"cnt {cnt} finish, time elapsed: {t2 - t1}, total elapsed: {t2 - t0}")
            t1 = t2
    print(f"seed_uploader: sent {len(names)} files in {time.perf_counter() - t0:.3f}s",
          file=sys.stderr)


if __name__ == "__main__":
    main()
