#!/usr/bin/env python3
"""Python client benchmark (issue 6): framewire's ``Publisher.send_jpg`` against ImageZMQ's
``ImageSender.send_jpg``, same frames, same process, interleaved run by run.

    python_client.py --hub 127.0.0.1:PORT --frames DIR [--runs 5] [--seconds 3] [--json F] [--md F]

``bench/python_client.sh`` starts the hub and calls this; see docs/BENCHMARKS.md,
"Python client (issue 6)".

Each run, for each system, sends the frames of DIR in a loop, as fast as the loop goes, for
``--seconds`` (after a short warm-up outside the clock):

- framewire: ``Publisher(hub, stream).send_jpg(jpg)`` to a running ``framewire serve``. The call
  never waits: with 2 frames unacknowledged, a newer frame replaces the pending one. So two
  figures: ``send_jpg`` calls/s, and frames **delivered**/s = frames the hub acknowledged
  (``FrameAck``: it received them) during the window. Skipped frames are not counted as delivered.
- framewire, ``send_jpg(jpg, wait=True)``: the same, but each call waits until its frame is on
  its way (window of 2 unacknowledged frames), so nothing is skipped: calls = frames delivered.
  The closed-loop counterpart of ImageZMQ's REQ/REP, pipelined.
- ImageZMQ: ``ImageSender(connect_to=tcp://127.0.0.1:P).send_jpg(name, jpg)``, REQ/REP, to an
  ``ImageHub(open_port=tcp://127.0.0.1:P)`` in a child process that answers ``send_reply(b"OK")``
  at once. Each call waits for that reply, so calls = frames delivered; the child's own count is
  checked against it.

Everything listens on 127.0.0.1 only. Every wait is bounded (socket timeouts, child timeouts); the
child is killed on the way out.
"""

import argparse
import json
import multiprocessing as mp
import os
import platform
import socket
import statistics
import sys
import time

import framewire

# Frames sent before the clock starts (connections warm, caches filled).
WARMUP_S = 0.3
# Longest wait for any one reply, ack or child.
WAIT_S = 10.0


def load_frames(folder):
    names = sorted(n for n in os.listdir(folder) if n.lower().endswith((".jpg", ".jpeg")))
    if not names:
        sys.exit("no .jpg files in %s" % folder)
    frames = []
    for n in names:
        with open(os.path.join(folder, n), "rb") as f:
            frames.append(f.read())
    return frames


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------------------------------
# framewire
# ------------------------------------------------------------------------------------------------


def run_framewire(hub, stream, frames, seconds, wait=False):
    pub = framewire.Publisher(hub, stream, timeout=WAIT_S)
    try:
        n = 0
        warm_end = time.perf_counter() + WARMUP_S
        while time.perf_counter() < warm_end:
            pub.send_jpg(frames[n % len(frames)])
            n += 1
        if not pub.flush(WAIT_S):
            raise RuntimeError("framewire: warm-up frames not acknowledged")
        before = pub.stats
        calls = 0
        t0 = time.perf_counter()
        end = t0 + seconds
        while True:
            pub.send_jpg(frames[n % len(frames)], wait=wait)
            n += 1
            calls += 1
            if calls % 64 == 0 and time.perf_counter() >= end:
                break
        t1 = time.perf_counter()
        during = pub.stats
        if not pub.flush(WAIT_S):
            raise RuntimeError("framewire: frames still unacknowledged after %.0f s" % WAIT_S)
        after = pub.stats
    finally:
        pub.close(timeout=2)
    elapsed = t1 - t0
    delivered = during.acked - before.acked
    if after.acked != after.sent:
        raise RuntimeError("framewire: %d frames sent, %d acknowledged" % (after.sent, after.acked))
    return {
        "system": "framewire-wait" if wait else "framewire",
        "seconds": round(elapsed, 3),
        "calls": calls,
        "calls_per_s": round(calls / elapsed, 1),
        "delivered": delivered,
        "delivered_per_s": round(delivered / elapsed, 1),
        "skipped": (during.skipped - before.skipped),
        "reconnects": after.reconnects,
    }


# ------------------------------------------------------------------------------------------------
# ImageZMQ
# ------------------------------------------------------------------------------------------------


def imagezmq_hub(port, ready, result):
    """Child process: REP hub that answers every frame at once; reports how many it got."""
    import imagezmq
    import zmq

    hub = imagezmq.ImageHub(open_port="tcp://127.0.0.1:%d" % port)
    hub.zmq_socket.setsockopt(zmq.RCVTIMEO, int(WAIT_S * 1000))
    hub.zmq_socket.setsockopt(zmq.LINGER, 0)
    ready.set()
    counts = {}
    try:
        while True:
            name, _jpg = hub.recv_jpg()
            hub.send_reply(b"OK")
            if name == "stop":
                break
            counts[name] = counts.get(name, 0) + 1
    except zmq.Again:
        pass
    finally:
        hub.close()
    result.put(counts)


def run_imagezmq(frames, seconds):
    import imagezmq
    import zmq

    port = free_port()
    ctx = mp.get_context("spawn")
    ready, result = ctx.Event(), ctx.Queue()
    child = ctx.Process(target=imagezmq_hub, args=(port, ready, result), daemon=True)
    child.start()
    try:
        if not ready.wait(WAIT_S):
            raise RuntimeError("imagezmq: the hub process did not start")
        sender = imagezmq.ImageSender(connect_to="tcp://127.0.0.1:%d" % port)
        sender.zmq_socket.setsockopt(zmq.RCVTIMEO, int(WAIT_S * 1000))
        sender.zmq_socket.setsockopt(zmq.LINGER, 0)
        try:
            n = 0
            warm_end = time.perf_counter() + WARMUP_S
            while time.perf_counter() < warm_end:
                sender.send_jpg("warm", frames[n % len(frames)])
                n += 1
            calls = 0
            t0 = time.perf_counter()
            end = t0 + seconds
            while True:
                sender.send_jpg("bench", frames[n % len(frames)])
                n += 1
                calls += 1
                if calls % 64 == 0 and time.perf_counter() >= end:
                    break
            t1 = time.perf_counter()
            sender.send_jpg("stop", b"")
        finally:
            sender.close()
        counts = result.get(timeout=WAIT_S)
        child.join(WAIT_S)
    finally:
        if child.is_alive():
            child.kill()
            child.join(5)
    if counts.get("bench") != calls:
        raise RuntimeError("imagezmq: sent %d, the hub counted %s" % (calls, counts.get("bench")))
    elapsed = t1 - t0
    return {
        "system": "imagezmq",
        "seconds": round(elapsed, 3),
        "calls": calls,
        "calls_per_s": round(calls / elapsed, 1),
        "delivered": calls,
        "delivered_per_s": round(calls / elapsed, 1),
    }


# ------------------------------------------------------------------------------------------------


def busy_cpu_s():
    """CPU seconds the whole machine has been busy (user + nice + system), or None off Linux."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
        return (int(fields[1]) + int(fields[2]) + int(fields[3])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def process_cpu_s(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def own_cpu_s():
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def median(runs, key):
    return statistics.median(r[key] for r in runs)


def table(fw, fww, iz, frames, seconds):
    mb = sum(map(len, frames)) / len(frames) / 1e6

    def row(label, runs):
        calls, delivered = median(runs, "calls_per_s"), median(runs, "delivered_per_s")
        every = ", ".join(format(round(r["delivered_per_s"]), ",") for r in runs)
        return "| %s | %s | **%s** | %.0f | %s |" % (
            label,
            format(round(calls), ","),
            format(round(delivered), ","),
            delivered * mb,
            every,
        )

    iz_fps = median(iz, "delivered_per_s")

    def paired(runs):
        # Each framewire run against the ImageZMQ run made right after it: drift on a shared
        # machine hits both alike, so the median of these ratios is steadier than a ratio of medians.
        return statistics.median(f["delivered_per_s"] / z["delivered_per_s"] for f, z in zip(runs, iz))

    lines = [
        "| runner | `send_jpg` calls/s (median) | frames delivered/s (median) | MB/s delivered "
        "| every run (delivered/s) |",
        "|---|---:|---:|---:|---|",
        row("framewire `Publisher.send_jpg(jpg)` → hub (acks counted)", fw),
        row("framewire `Publisher.send_jpg(jpg, wait=True)` → hub", fww),
        row("ImageZMQ `ImageSender.send_jpg` → `ImageHub` (REQ/REP)", iz),
        "",
        "framewire ÷ ImageZMQ, frames delivered/s: **%.2f×** with `send_jpg(jpg)`, "
        "**%.2f×** with `wait=True` (ratio of the medians); median of the run-by-run ratios: "
        "%.2f× and %.2f× (%d runs of %.0f s each, %d frames of %.0f KB average)"
        % (
            median(fw, "delivered_per_s") / iz_fps,
            median(fww, "delivered_per_s") / iz_fps,
            paired(fw),
            paired(fww),
            len(fw),
            seconds,
            len(frames),
            mb * 1e3,
        ),
    ]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hub", required=True, help="framewire hub, 127.0.0.1:PORT")
    ap.add_argument("--frames", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--json", help="write every run and the medians here")
    ap.add_argument("--md", help="write the markdown table here")
    ap.add_argument("--hub-pid", type=int, help="the hub's pid, to tell its CPU time from other processes'")
    a = ap.parse_args()
    if not a.hub.startswith("127.0.0.1:"):
        ap.error("--hub must be on 127.0.0.1")
    if not 1 <= a.runs <= 20 or not 0.5 <= a.seconds <= 60:
        ap.error("--runs 1..20, --seconds 0.5..60")
    frames = load_frames(a.frames)
    fw, fww, iz = [], [], []
    wall0, busy0, own0 = time.monotonic(), busy_cpu_s(), own_cpu_s()
    hub0 = process_cpu_s(a.hub_pid) if a.hub_pid else 0.0
    for i in range(a.runs):
        # Interleaved, so slow drift on the machine hits every runner alike.
        fw.append(run_framewire(a.hub, "pybench-%d-%d" % (os.getpid(), i), frames, a.seconds))
        print(json.dumps(fw[-1]), file=sys.stderr, flush=True)
        fww.append(
            run_framewire(a.hub, "pybench-wait-%d-%d" % (os.getpid(), i), frames, a.seconds, wait=True)
        )
        print(json.dumps(fww[-1]), file=sys.stderr, flush=True)
        iz.append(run_imagezmq(frames, a.seconds))
        print(json.dumps(iz[-1]), file=sys.stderr, flush=True)
    md = table(fw, fww, iz, frames, a.seconds)
    if busy0 is not None:
        wall = time.monotonic() - wall0
        hub_cpu = (process_cpu_s(a.hub_pid) - hub0) if a.hub_pid else 0.0
        others = busy_cpu_s() - busy0 - (own_cpu_s() - own0) - hub_cpu
        md += (
            "\n\nOther processes on the machine used %.0f%% of one core during the %.0f s of "
            "measurement (above ~10%%, the figures are disturbed)." % (max(0.0, others) / wall * 100, wall)
        )
    print(md)
    import imagezmq
    import zmq

    summary = {
        "framewire": fw,
        "framewire_wait": fww,
        "imagezmq": iz,
        "median": {
            "framewire_calls_per_s": median(fw, "calls_per_s"),
            "framewire_delivered_per_s": median(fw, "delivered_per_s"),
            "framewire_wait_per_s": median(fww, "delivered_per_s"),
            "imagezmq_per_s": median(iz, "delivered_per_s"),
            "paired_ratio_framewire": statistics.median(
                f["delivered_per_s"] / z["delivered_per_s"] for f, z in zip(fw, iz)
            ),
            "paired_ratio_framewire_wait": statistics.median(
                f["delivered_per_s"] / z["delivered_per_s"] for f, z in zip(fww, iz)
            ),
        },
        "frames": len(frames),
        "seconds": a.seconds,
        "python": platform.python_version(),
        "framewire_blake3": framewire.blake3.BACKEND,
        "imagezmq_version": getattr(imagezmq, "__version__", "?"),
        "pyzmq": zmq.__version__,
        "cores": os.cpu_count(),
    }
    if a.json:
        with open(a.json, "w") as f:
            json.dump(summary, f, indent=1)
    if a.md:
        with open(a.md, "w") as f:
            f.write(md + "\n")


if __name__ == "__main__":
    main()
