#!/usr/bin/env python3
"""Attacks of issue 10 against a running hub, one after another, with a well-behaved client
pinging and uploading throughout. Loopback only; every attack stops by itself.

    attack.py --pid PID --native HOST:PORT --http HOST:PORT --udp HOST:PORT [--seconds 12]
              [--budget-mib 256]

For each attack it prints the hub's peak resident memory (VmRSS, sampled every 20 ms), the good
client's ping round trip p50/p99 and its uploads (done / failed), and what the attack itself saw.
Exit status 1 if an attack broke a goal: peak RSS above budget + 64 MiB, or good p99 >= 50 ms.
Uses only the standard library and the repository's Python client (clients/python).
"""

import argparse
import json
import os
import socket
import struct
import sys
import threading
import time
import urllib.request
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "clients", "python"))
from framewire import protocol as p  # noqa: E402
from framewire.client import Client  # noqa: E402

MIB = 1 << 20


def addr(s):
    host, port = s.rsplit(":", 1)
    return host, int(port)


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class Sampler(threading.Thread):
    """Peak RSS of the hub since the last reset."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0.0, False

    def run(self):
        while not self.stop:
            try:
                self.peak = max(self.peak, rss_mib(self.pid))
            except OSError:
                return
            time.sleep(0.02)


class Good(threading.Thread):
    """Pings ten times a second and uploads a 64 KiB file every half second."""

    def __init__(self, native):
        super().__init__(daemon=True)
        self.native = native
        self.rtts, self.uploads, self.failures, self.stop = [], 0, 0, False
        self.n = 0

    def run(self):
        c = None
        while not self.stop:
            try:
                if c is None:
                    c = Client(self.native, name="good", timeout=5.0)
                t = time.perf_counter()
                c.ping()
                self.rtts.append(time.perf_counter() - t)
                self.n += 1
                if self.n % 5 == 0:
                    c.send_bytes(os.urandom(64 * 1024), f"good/{self.n}.bin")
                    self.uploads += 1
            except Exception:  # noqa: BLE001 - any failure counts, then reconnect
                self.failures += 1
                c = None
            time.sleep(0.1)

    def take(self):
        r, self.rtts = self.rtts, []
        u, f = self.uploads, self.failures
        self.uploads = self.failures = 0
        return r, u, f


def hello(native, name="attacker"):
    s = socket.create_connection(native, timeout=10)
    s.sendall(p.encode(p.Hello(version=p.VERSION, name=name, token="")))
    d = p.Decoder()
    while True:
        m = next(iter_msgs(s, d))
        if isinstance(m, p.Welcome):
            return s, d


def iter_msgs(s, d):
    while True:
        m = d.next()
        if m is not None:
            yield m
            continue
        data = s.recv(65536)
        if not data:
            raise ConnectionError("closed")
        d.feed(data)


def until(deadline):
    return time.monotonic() < deadline


# ---------------------------------------------------------------------------------------------
# The attacks. Each runs for `seconds` and returns a short description of what it saw.


def partial_messages(a, seconds):
    """240 connections each send 8 MiB of a 16 MiB message and hold it."""
    socks, refused = [], 0
    head = p.HEADER.pack(p.Text.TYPE, 0, 16 * MIB)
    body = b"x" * (8 * MIB)
    for _ in range(240):
        try:
            s, _ = hello(a.native)
            s.setblocking(False)
            s.send(head)
            socks.append([s, 0])
        except OSError:
            refused += 1
    end = time.monotonic() + seconds
    while until(end):
        for entry in socks:
            s, sent = entry
            if sent < len(body):
                try:
                    entry[1] += s.send(body[sent : sent + 256 * 1024])
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    entry[1] = len(body)
        time.sleep(0.05)
    closed = 0
    for s, _ in socks:
        try:
            if s.recv(1) == b"":
                closed += 1
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
        s.close()
    return f"{len(socks)} holders, {closed} told Busy and closed by the hub, {refused} refused at connect"


def text_echoes(a, seconds):
    """20 connections send 16 MiB texts and never read the echoes."""
    msg = p.encode(p.Text(id=1, text="x" * (16 * MIB - 8)))
    socks, sent = [], 0
    for _ in range(20):
        s, _ = hello(a.native)
        s.settimeout(0.2)
        socks.append(s)
    end = time.monotonic() + seconds
    while until(end):
        for s in socks:
            try:
                s.sendall(msg)
                sent += 1
            except OSError:
                pass
    for s in socks:
        s.close()
    return f"{sent} texts of 16 MiB sent, none read back"


def stalled_subscribers(a, seconds):
    """A publisher of 16 MiB frames; 20 subscribers with window 65,535 that never read."""
    subs = []
    for i in range(20):
        s, _ = hello(a.native)
        s.sendall(p.encode(p.Subscribe(stream="big", window=65535)))
        subs.append(s)
    pub, d = hello(a.native, "publisher")
    payload = os.urandom(16 * MIB - 64)
    end, seq = time.monotonic() + seconds, 0
    pub.settimeout(5)
    acks = 0
    while until(end):
        seq += 1
        pub.sendall(p.encode(p.Frame(stream="big", seq=seq, capture_us=0, format=p.FORMAT_JPEG, width=1, height=1, payload=payload)))
        for m in iter_msgs(pub, d):
            if isinstance(m, p.FrameAck):
                acks += 1
                break
    for s in subs + [pub]:
        s.close()
    return f"{seq} frames of 16 MiB published ({acks} acknowledged), 20 subscribers never read"


def png_8192():
    raw = b"".join(b"\x00" + bytes(8192 * 3) for _ in range(8192))
    ihdr = struct.pack(">IIBBBBB", 8192, 8192, 8, 2, 0, 0, 0)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def thumbnails(a, seconds):
    """A 8192x8192 PNG (about 200 KiB), its thumbnail asked for by 8 clients in a loop."""
    png = png_8192()
    Client(a.native, name="attacker").send_bytes(png, "attack/huge.png", overwrite=True)
    counts = {}
    end = time.monotonic() + seconds

    def hammer():
        while until(end):
            try:
                r = urllib.request.urlopen(f"http://{a.http[0]}:{a.http[1]}/thumbs/attack/huge.png", timeout=10)
                code = r.status
            except urllib.error.HTTPError as e:
                code = e.code
            except OSError:
                code = "error"
            counts[code] = counts.get(code, 0) + 1

    ts = [threading.Thread(target=hammer) for _ in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return f"PNG of {len(png) // 1024} KiB; answers {counts}"


def websocket_messages(a, seconds):
    """20 WebSockets each start a 60 MiB message and send it slowly."""
    socks = []
    for _ in range(20):
        s = socket.create_connection(a.http, timeout=5)
        s.sendall(
            b"GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        s.sendall(bytes([0x81, 0xFF]) + struct.pack(">Q", 60 * MIB) + b"\x01\x02\x03\x04")
        s.setblocking(False)
        socks.append(s)
    chunk = b"x" * (1 * MIB)
    end, closed = time.monotonic() + seconds, set()
    while until(end):
        for i, s in enumerate(socks):
            if i in closed:
                continue
            try:
                s.send(chunk)
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                closed.add(i)
        time.sleep(0.05)
    for s in socks:
        s.close()
    return f"20 WebSockets, {len(closed)} closed by the hub"


def stalled_device(a, seconds):
    """A device that stops reading; 110 HTTP commands of 180 KB with timeout_ms 2000 to it."""
    dev, d = hello(a.native, "stalled")
    dev.sendall(p.encode(p.RegisterDevice(name="stall")))
    time.sleep(0.2)
    answered, late = [], 0

    def call():
        body = json.dumps({"command": "x", "args": ["y" * 60000] * 3, "timeout_ms": 2000}).encode()
        req = urllib.request.Request(
            f"http://{a.http[0]}:{a.http[1]}/api/devices/stall/commands", data=body, headers={"Content-Type": "application/json"}
        )
        t = time.monotonic()
        try:
            urllib.request.urlopen(req, timeout=40).read()
        except urllib.error.HTTPError as e:
            e.read()
        except OSError:
            pass
        answered.append(time.monotonic() - t)

    ts = [threading.Thread(target=call) for _ in range(110)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=seconds + 40)
    dev.close()
    late = sum(1 for x in answered if x > 3.0)
    slowest = max(answered) if answered else 0
    return f"{len(answered)} of 110 commands answered, {late} after 3 s, slowest {slowest:.2f} s"


def stream_flood(a, seconds):
    """100,000 stream names over UDP, about 593 bytes a datagram."""
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sent, end = 0, time.monotonic() + seconds
    payload = os.urandom(540)
    while sent < 100_000 and until(end):
        name = f"flood-{sent:06d}"
        u.sendto(p.encode(p.Frame(stream=name, seq=1, capture_us=0, format=p.FORMAT_JPEG, width=1, height=1, payload=payload)), a.udp)
        sent += 1
        if sent % 200 == 0:
            time.sleep(0.002)
    sizes = {}
    for path in ("/metrics", "/api/streams"):
        with urllib.request.urlopen(f"http://{a.http[0]}:{a.http[1]}{path}", timeout=10) as r:
            sizes[path] = len(r.read())
    return f"{sent} datagrams; /metrics {sizes['/metrics'] // 1024} KiB, /api/streams {sizes['/api/streams'] // 1024} KiB"


ATTACKS = [
    ("4a partial 16 MiB messages x240", partial_messages),
    ("4b 16 MiB texts, echoes never read", text_echoes),
    ("4c/5 subscribers never read, 16 MiB frames", stalled_subscribers),
    ("4d thumbnails of an 8192x8192 PNG", thumbnails),
    ("4e 60 MiB WebSocket messages", websocket_messages),
    ("5 device stops reading, 110 commands", stalled_device),
    ("6 stream flood over UDP", stream_flood),
]


def pct(xs, q):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] * 1000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--native", type=addr, required=True)
    ap.add_argument("--http", type=addr, required=True)
    ap.add_argument("--udp", type=addr, required=True)
    ap.add_argument("--seconds", type=float, default=12)
    ap.add_argument("--budget-mib", type=float, default=256)
    ap.add_argument("--only", default="")
    a = ap.parse_args()
    good = Good(a.native)
    good.start()
    time.sleep(1)
    good.take()
    print(f"hub pid {a.pid}, idle RSS {rss_mib(a.pid):.0f} MiB, budget {a.budget_mib:.0f} MiB")
    print(f"{'attack':44} {'peak RSS':>9} {'good p50':>9} {'good p99':>9} {'uploads':>8}  what the attack saw")
    ok = True
    for name, attack in ATTACKS:
        if a.only and a.only not in name:
            continue
        sampler = Sampler(a.pid)
        sampler.start()
        try:
            saw = attack(a, a.seconds)
        except Exception as e:  # noqa: BLE001 - report and go on to the next attack
            saw = f"attack failed: {e!r}"
        time.sleep(1)
        sampler.stop = True
        sampler.join()
        rtts, ups, fails = good.take()
        p50, p99 = pct(rtts, 0.5), pct(rtts, 0.99)
        good_ok = p99 < 50 and fails == 0
        mem_ok = sampler.peak <= a.budget_mib + 64
        ok = ok and good_ok and mem_ok
        flag = "" if good_ok and mem_ok else "  <-- goal missed"
        print(
            f"{name:44} {sampler.peak:6.0f} MiB {p50:6.1f} ms {p99:6.1f} ms {ups:4d}/{fails:<3d}  {saw}{flag}",
            flush=True,
        )
        # Let the hub close what the attack left (the write timeout is 10 s) before the next one.
        time.sleep(12)
    good.stop = True
    print("all goals met" if ok else "some goals missed")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
