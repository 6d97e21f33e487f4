"""Test harness: makes the in-tree ``framewire`` package importable, finds (or builds) the hub
binary and runs hubs on 127.0.0.1 for the end-to-end tests.

The hub binary is ``$FRAMEWIRE_BIN`` if set, else ``cargo build -p framewire`` is run once and
``target/debug/framewire`` is used. Every hub is started with ``--listen 127.0.0.1:0`` (or a port
given back to it after a restart), ``--http off`` and a temporary data folder, and is stopped by
pid when the test is done.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

TESTS = os.path.dirname(os.path.abspath(__file__))
PACKAGE_ROOT = os.path.dirname(TESTS)
REPO = os.path.dirname(os.path.dirname(PACKAGE_ROOT))

# The package under test is this source tree, even if another version is installed.
if sys.path[:1] != [PACKAGE_ROOT]:
    sys.path.insert(0, PACKAGE_ROOT)

PROTOCOL_VECTORS = os.path.join(REPO, "docs", "protocol-vectors.json")
BLAKE3_VECTORS = os.path.join(TESTS, "blake3_test_vectors.json")
#: Eight small 1920x1080 JPEGs committed with the repository (made by the Rust test kit:
#: ``cargo run -p framewire-testkit --example write_frames``).
FRAMES_DIR = os.path.join(REPO, "tests", "data", "frames-1080p")

#: Longest wait for anything a hub does in a test (start, answer, stop).
HUB_WAIT = 30.0
#: Longest a cargo build may take.
BUILD_WAIT = 1800

_binary = None
_binary_lock = threading.Lock()


def hub_binary() -> str:
    """The framewire binary: $FRAMEWIRE_BIN, or built here once with cargo."""
    global _binary
    with _binary_lock:
        if _binary:
            return _binary
        env_bin = os.environ.get("FRAMEWIRE_BIN")
        if env_bin:
            if not os.access(env_bin, os.X_OK):
                raise RuntimeError("FRAMEWIRE_BIN=%s is not an executable file" % env_bin)
            _binary = env_bin
            return _binary
        cargo = shutil.which("cargo")
        if cargo is None:
            raise RuntimeError(
                "the end-to-end tests need the hub: install Rust (cargo) "
                "or set FRAMEWIRE_BIN to a framewire binary"
            )
        try:
            done = subprocess.run(
                [cargo, "build", "-p", "framewire", "--quiet"],
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                timeout=BUILD_WAIT,
            )
        except subprocess.TimeoutExpired:
            raise RuntimeError("cargo build -p framewire took longer than %d s" % BUILD_WAIT) from None
        if done.returncode != 0:
            raise RuntimeError(
                "cargo build -p framewire failed:\n" + done.stdout.decode(errors="replace")[-4000:]
            )
        target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(REPO, "target")
        if not os.path.isabs(target):
            target = os.path.join(REPO, target)
        path = os.path.join(target, "debug", "framewire")
        if not os.access(path, os.X_OK):
            raise RuntimeError("cargo built, but %s is not there" % path)
        _binary = path
        return _binary


def frame_files():
    """The committed 1080p JPEG frames, sorted; a clear failure if the folder is missing."""
    folder = os.path.normpath(FRAMES_DIR)
    if not os.path.isdir(folder):
        raise AssertionError(
            "the frames folder %s is missing: it is part of the repository "
            "(tests/data/frames-1080p)" % folder
        )
    names = sorted(n for n in os.listdir(folder) if n.lower().endswith(".jpg"))
    if not names:
        raise AssertionError("no .jpg files in %s" % folder)
    return [os.path.join(folder, n) for n in names]


def load_frames():
    frames = []
    for path in frame_files():
        with open(path, "rb") as f:
            frames.append(f.read())
    return frames


class Hub:
    """One ``framewire serve`` process on 127.0.0.1. Use as a context manager or call
    :meth:`stop`; its data folder is removed by :meth:`cleanup`."""

    def __init__(self, *extra_args, port=0, data=None):
        self.extra = list(extra_args)
        self.data = data or tempfile.mkdtemp(prefix="framewire-test-hub-")
        self.port = port
        self.proc = None
        self.log = []
        self.start()

    @property
    def address(self) -> str:
        return "127.0.0.1:%d" % self.port

    @property
    def files(self) -> str:
        return os.path.join(self.data, "files")

    def start(self) -> None:
        cmd = [
            hub_binary(),
            "serve",
            "--listen",
            "127.0.0.1:%d" % self.port,
            "--data",
            self.data,
            "--http",
            "off",
        ] + self.extra
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        ready = threading.Event()
        found = {}

        def drain(stream):
            for raw in stream:
                line = raw.decode(errors="replace").rstrip()
                self.log.append(line)
                m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
                if m and not ready.is_set():
                    found["port"] = int(m.group(1))
                    ready.set()
            ready.set()

        self._drain = threading.Thread(target=drain, args=(self.proc.stderr,), daemon=True)
        self._drain.start()
        if not ready.wait(HUB_WAIT) or "port" not in found:
            self.stop()
            raise RuntimeError("the hub did not start:\n" + "\n".join(self.log[-30:]))
        self.port = found["port"]

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not exited within 10 s."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._reap()

    def _reap(self) -> None:
        self._drain.join(5)  # the log pipe reaches its end once the hub is gone
        self.proc.stderr.close()
        self.proc = None

    def kill(self) -> None:
        """SIGKILL: the hub vanishes without a goodbye."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self._reap()

    def restart(self) -> None:
        """Starts again on the same port and data folder."""
        self.stop()
        deadline = time.monotonic() + HUB_WAIT
        while True:
            try:
                self.start()
                return
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.data, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()


def wait_until(predicate, timeout: float, what: str, step: float = 0.02):
    """Polls ``predicate`` until it is true; fails the test with ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, what))
        time.sleep(step)
