#!/usr/bin/env python3
"""Live-video benchmark (issue 3), ImageZMQ's side: one scenario per invocation, one JSON object
on stdout. `bench/live.sh` runs it next to framewire's `live_bench`; see docs/BENCHMARKS.md,
"Live video (issue 3)".

    imagezmq_bench.py throughput --frames DIR [--seconds 5]
    imagezmq_bench.py latency    --frames DIR [--seconds 10] [--fps 30]
    imagezmq_bench.py slow       --frames DIR [--seconds 6] [--fps 60] [--sleep-ms 100]

- throughput: REQ/REP, ImageZMQ's default. This process is the `ImageSender` and sends the frames
  of DIR in a loop with `send_jpg` (each call waits for the hub's reply); a child process is the
  `ImageHub` (`recv_jpg` + `send_reply(b'OK')`). Frames/s and MB/s arriving at the hub: one hop.
- latency: the same pair, one frame every 1/fps s; the age of every frame when `recv_jpg` returns.
- slow: PUB/SUB. This process is the publishing `ImageSender(REQ_REP=False)` at `fps`, bound to
  127.0.0.1 only; one child `ImageHub(REQ_REP=False)` sleeps `sleep-ms` per frame (a detector)
  and records (time since the first frame was sent, age) per frame; a second child consumes as
  fast as it can.

Capture times travel in the message name (`"SEQ CAPTURE_NS START_NS"`, wall clock): every process
runs on this machine and reads the same clock. Every loop is bounded in count and time; children
are killed on the way out, also on SIGTERM.
"""

import argparse
import bisect
import json
import math
import os
import select
import signal
import socket
import subprocess
import sys
import time

import imagezmq
import zmq

# Frames received before the throughput clock starts (connections warm).
THROUGHPUT_WARMUP_S = 0.5
# Latency: frames sent before the measured ones, left out of the figures.
LATENCY_WARMUP_FRAMES = 15
# Longest wait for any one message (a reply, a frame) before giving up.
RECV_TIMEOUT_MS = 5000
# Longest any child may live, beyond the scenario's own length.
CHILD_GRACE_S = 20
# Bound on records kept by any loop.
MAX_RECORDS = 2_000_000


def load_frames(folder):
    names = sorted(n for n in os.listdir(folder) if n.lower().endswith((".jpg", ".jpeg")))
    if not names:
        sys.exit(f"no .jpg files in {folder}")
    frames = []
    for n in names:
        with open(os.path.join(folder, n), "rb") as f:
            frames.append(f.read())
    return frames


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bounded(sock):
    """No endless wait on a receive, no endless linger on close."""
    sock.setsockopt(zmq.RCVTIMEO, RECV_TIMEOUT_MS)
    sock.setsockopt(zmq.LINGER, 0)


def percentiles_us(ages_ns):
    """Same figures as the Rust side's histogram: nearest rank."""
    if not ages_ns:
        return {"count": 0}
    v = sorted(ages_ns)
    n = len(v)

    def at(q):
        return round(v[max(0, math.ceil(q * n) - 1)] / 1e3)

    return {
        "count": n,
        "min_us": round(v[0] / 1e3),
        "mean_us": round(sum(v) / n / 1e3, 1),
        "p50_us": at(0.50),
        "p90_us": at(0.90),
        "p99_us": at(0.99),
        "max_us": round(v[-1] / 1e3),
    }


# --------------------------------------------------------------------------------------------
# Children
# --------------------------------------------------------------------------------------------


def role_rep_hub(a):
    """REQ/REP hub: receive, reply OK, record (arrival ns, bytes, age ns, seq) per frame."""
    hub = imagezmq.ImageHub(open_port=f"tcp://127.0.0.1:{a.port}")
    bounded(hub.zmq_socket)
    print("ready", flush=True)
    records = []
    deadline = time.monotonic() + a.seconds + CHILD_GRACE_S
    try:
        while time.monotonic() < deadline and len(records) < MAX_RECORDS:
            name, buf = hub.recv_jpg()
            now = time.time_ns()
            hub.send_reply(b"OK")
            if name == "stop":
                break
            seq, capture_ns, _ = name.split()
            records.append((now, len(buf), now - int(capture_ns), int(seq), time.process_time()))
    except zmq.Again:
        print("rep hub: no frame within the timeout", file=sys.stderr)
    finally:
        hub.close()
    if a.mode == "throughput":
        if not records:
            sys.exit("rep hub: no frames")
        start = records[0][0] + int(THROUGHPUT_WARMUP_S * 1e9)
        end = start + int(a.seconds * 1e9)
        window = [r for r in records if start <= r[0] < end]
        if not window or records[-1][0] < end:
            sys.exit("rep hub: the sender stopped before the window was over")
        frames = len(window)
        nbytes = sum(r[1] for r in window)
        out = {
            "window_ns": [window[0][0], window[-1][0]],
            "hub_cpu_s": round(window[-1][4] - window[0][4], 3),
            "seconds": a.seconds,
            "frames": frames,
            "bytes": nbytes,
            "fps": round(frames / a.seconds, 1),
            "mb_per_s": round(nbytes / a.seconds / 1e6, 1),
        }
    else:
        ages = [r[2] for r in records if r[3] >= LATENCY_WARMUP_FRAMES]
        out = {"received": len(ages), "age": percentiles_us(ages)}
    print(json.dumps(out), flush=True)


def role_sub(a):
    """PUB/SUB subscriber: record (time since start, age) per frame, sleeping sleep_ms after each."""
    hub = imagezmq.ImageHub(open_port=f"tcp://127.0.0.1:{a.port}", REQ_REP=False)
    bounded(hub.zmq_socket)
    print("ready", flush=True)
    window_ns = int(a.seconds * 1e9)
    samples = []
    end_ns = None
    deadline = time.monotonic() + a.seconds + CHILD_GRACE_S
    try:
        while time.monotonic() < deadline and len(samples) < MAX_RECORDS:
            name, _buf = hub.recv_jpg()
            now = time.time_ns()
            _seq, capture_ns, start_ns = map(int, name.split())
            samples.append((now - start_ns, now - capture_ns))
            if a.sleep_ms:
                time.sleep(a.sleep_ms / 1e3)
            end_ns = time.time_ns() - start_ns
            if end_ns >= window_ns:
                break
    except zmq.Again:
        print("subscriber: no frame within the timeout", file=sys.stderr)
    finally:
        hub.close()
    if not samples:
        sys.exit("subscriber: no frames")
    secs = end_ns / 1e9
    out = {
        "frames": len(samples),
        "seconds": round(secs, 3),
        "fps": round(len(samples) / secs, 2),
        "age": percentiles_us([s[1] for s in samples]),
    }
    if a.sleep_ms:
        out["samples_ms"] = [[round(t / 1e6, 1), round(age / 1e6, 2)] for t, age in samples]
    print(json.dumps(out), flush=True)


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------


class Children:
    """Child processes of this script, killed on the way out."""

    def __init__(self):
        self.procs = []

    def start(self, *args):
        p = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), *map(str, args)],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.procs.append(p)
        return p

    @staticmethod
    def wait_ready(p, timeout_s=10):
        """The child prints "ready" once its socket exists."""
        ready, _, _ = select.select([p.stdout], [], [], timeout_s)
        if not ready or p.stdout.readline().strip() != "ready":
            raise RuntimeError("a child did not start")

    @staticmethod
    def result(p, timeout_s):
        out, _ = p.communicate(timeout=timeout_s)
        if p.returncode != 0:
            raise RuntimeError(f"a child failed (exit {p.returncode})")
        return json.loads(out.strip().splitlines()[-1])

    def kill_all(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=5)


def send_stop(sender):
    try:
        sender.send_jpg("stop", b"")
    except zmq.Again:
        pass


def throughput(a, frames, kids):
    port = free_port()
    hub = kids.start("_rep-hub", "--port", port, "--seconds", a.seconds, "--mode", "throughput")
    kids.wait_ready(hub)
    sender = imagezmq.ImageSender(connect_to=f"tcp://127.0.0.1:{port}")
    bounded(sender.zmq_socket)
    # Send past the hub's window (warm-up + seconds from its first frame) with some margin.
    end = time.monotonic() + THROUGHPUT_WARMUP_S + a.seconds + 0.5
    n = 0
    cpu_at = []  # (wall ns, this process's CPU s) after every send, to bill the hub's window
    while time.monotonic() < end and n < MAX_RECORDS:
        sender.send_jpg(f"{n} {time.time_ns()} 0", frames[n % len(frames)])
        cpu_at.append((time.time_ns(), time.process_time()))
        n += 1
    send_stop(sender)
    sender.close()
    r = kids.result(hub, CHILD_GRACE_S)
    w0, w1 = r.pop("window_ns")
    times = [t for t, _ in cpu_at]
    i0 = min(bisect.bisect_left(times, w0), len(times) - 1)
    i1 = min(bisect.bisect_left(times, w1), len(times) - 1)
    sender_cpu = cpu_at[i1][1] - cpu_at[i0][1]
    hub_cpu = r.pop("hub_cpu_s")
    cpu = {
        "sender_s": round(sender_cpu, 3),
        "hub_s": hub_cpu,
        "us_per_frame": round((sender_cpu + hub_cpu) * 1e6 / r["frames"], 1),
    }
    return {"pattern": "REQ/REP", "hops": 1, **r, "sent": n, "cpu": cpu,
            "mean_frame_bytes": round(sum(map(len, frames)) / len(frames))}


def latency(a, frames, kids):
    port = free_port()
    hub = kids.start("_rep-hub", "--port", port, "--seconds", a.seconds, "--mode", "latency")
    kids.wait_ready(hub)
    sender = imagezmq.ImageSender(connect_to=f"tcp://127.0.0.1:{port}")
    bounded(sender.zmq_socket)
    measured = round(a.seconds * a.fps)
    period = 1.0 / a.fps
    due = time.monotonic()
    lateness_ns = []  # how late the sleep wakes us: the machine's scheduling noise
    for i in range(LATENCY_WARMUP_FRAMES + measured):
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        if i >= LATENCY_WARMUP_FRAMES:
            lateness_ns.append(max(0, int((time.monotonic() - due) * 1e9)))
        sender.send_jpg(f"{i} {time.time_ns()} 0", frames[i % len(frames)])
        due += period
    send_stop(sender)
    sender.close()
    r = kids.result(hub, CHILD_GRACE_S)
    return {"pattern": "REQ/REP", "hops": 1, "fps": a.fps, "published": measured, **r,
            "timer_lateness": percentiles_us(lateness_ns)}


def slow(a, frames, kids):
    port = free_port()
    # ImageZMQ's PUB binds; 127.0.0.1 instead of the usual tcp://*, so only loopback is open.
    sender = imagezmq.ImageSender(connect_to=f"tcp://127.0.0.1:{port}", REQ_REP=False)
    bounded(sender.zmq_socket)
    endpoint = sender.zmq_socket.getsockopt(zmq.LAST_ENDPOINT).decode()
    common = ["--port", port, "--seconds", a.seconds]
    slow_sub = kids.start("_sub", *common, "--sleep-ms", a.sleep_ms)
    fast_sub = kids.start("_sub", *common, "--sleep-ms", 0)
    kids.wait_ready(slow_sub)
    kids.wait_ready(fast_sub)
    # PUB/SUB drops whatever is sent before a subscriber's connection is up ("slow joiner").
    time.sleep(0.5)
    total = round((a.seconds + 0.5) * a.fps)
    period = 1.0 / a.fps
    start_ns = time.time_ns()
    due = time.monotonic()
    for i in range(total):
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        sender.send_jpg(f"{i} {time.time_ns()} {start_ns}", frames[i % len(frames)])
        due += period
    slow_r = kids.result(slow_sub, CHILD_GRACE_S)
    fast_r = kids.result(fast_sub, CHILD_GRACE_S)
    sender.close()
    return {
        "pattern": "PUB/SUB",
        "hops": 1,
        "pub_endpoint": endpoint,
        "fps": a.fps,
        "sleep_ms": a.sleep_ms,
        "seconds": slow_r["seconds"],
        "slow_frames": slow_r["frames"],
        "slow_fps": slow_r["fps"],
        "samples_ms": slow_r["samples_ms"],
        "fast_frames": fast_r["frames"],
        "fast_fps": fast_r["fps"],
        "fast_age": fast_r["age"],
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("scenario", choices=["throughput", "latency", "slow", "_rep-hub", "_sub"])
    p.add_argument("--frames")
    p.add_argument("--seconds", type=float)
    p.add_argument("--fps", type=float)
    p.add_argument("--sleep-ms", type=int, default=100)
    p.add_argument("--port", type=int)
    p.add_argument("--mode")
    a = p.parse_args()
    defaults = {"throughput": (5, 0), "latency": (10, 30), "slow": (6, 60)}
    if a.scenario in defaults:
        seconds, fps = defaults[a.scenario]
        a.seconds = a.seconds if a.seconds is not None else seconds
        a.fps = a.fps if a.fps is not None else fps
        if not a.frames:
            p.error("--frames is required")
    if not 0.5 <= a.seconds <= 120:
        p.error("--seconds must be within 0.5..120")

    if a.scenario == "_rep-hub":
        return role_rep_hub(a)
    if a.scenario == "_sub":
        return role_sub(a)

    # SIGTERM (the shell script's trap, `timeout`) must still reach the `finally` below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    frames = load_frames(a.frames)
    kids = Children()
    try:
        run = {"throughput": throughput, "latency": latency, "slow": slow}[a.scenario]
        r = run(a, frames, kids)
    finally:
        kids.kill_all()
    print(json.dumps({"system": "imagezmq", "scenario": a.scenario, **r}))


if __name__ == "__main__":
    main()
