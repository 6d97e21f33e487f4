"""End-to-end: the Python client against a real hub (``framewire serve`` on 127.0.0.1).

Each test class starts its own hub and kills it afterwards. The hub binary comes from
$FRAMEWIRE_BIN or ``cargo build -p framewire`` (see harness.py).
"""

import glob
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
import unittest

import harness
from harness import Hub, wait_until

import framewire
from framewire import client as client_module
from framewire import protocol as p
from framewire.blake3 import Blake3
from framewire.connection import Connection

try:
    import cv2  # noqa: F401

    HAVE_OPENCV = True
except ImportError:
    HAVE_OPENCV = False


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def read(path):
    with open(path, "rb") as f:
        return f.read()


class DataCounter:
    """Wraps a connection's send_parts to count the file bytes sent in Data messages."""

    def __init__(self, conn):
        self.conn = conn
        self.bytes = 0
        self._orig = conn.send_parts

        def counting(parts):
            parts = list(parts)
            if len(parts) == 2 and bytes(parts[0][:2]) == b"\x32\x00":
                self.bytes += len(parts[1])
            return self._orig(parts)

        conn.send_parts = counting


class FileTests(unittest.TestCase):
    """Uploads, downloads, listings, messages (one hub for the class)."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="framewire-py-files-")
        cls.hub = Hub()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.hub.cleanup()
        finally:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def client(self, **kw):
        return framewire.Client(self.hub.address, name="pytest", **kw)

    def test_send_file_5mb_byte_identical_then_unchanged_then_get(self):
        data = os.urandom(5 * 1000 * 1000)
        local = os.path.join(self.tmp, "five.bin")
        write(local, data)
        with self.client() as c:
            counter = DataCounter(c.connection)
            stored = c.send_file(local, "big/five.bin")
            self.assertEqual(stored.status, "new")
            self.assertEqual(stored.size, len(data))
            self.assertEqual(counter.bytes, len(data))
            self.assertEqual(read(os.path.join(self.hub.files, "big", "five.bin")), data)
            self.assertEqual(stored.hash, framewire.blake3.new(data).digest())

            # Same bytes again: Accept{offset = size}, End without Data, Stored Unchanged.
            counter.bytes = 0
            again = c.send_file(local, "big/five.bin")
            self.assertEqual(again.status, "unchanged")
            self.assertEqual(counter.bytes, 0)

            out = os.path.join(self.tmp, "five.back")
            got = c.get("big/five.bin", out)
            self.assertEqual(read(out), data)
            self.assertEqual(got.hash, stored.hash)
            self.assertEqual(got.size, len(data))

    def test_send_dir_scp_naming_list_and_get(self):
        root = os.path.join(self.tmp, "photos")
        tree = {
            "a.jpg": os.urandom(1234),
            "2024/img 001.jpg": os.urandom(70000),
            "2024/jan/empty.txt": b"",
            "été/猫.png": os.urandom(3000),
            ".hidden": b"dot",
        }
        for rel, data in tree.items():
            write(os.path.join(root, rel), data)
        with self.client() as c:
            results = c.send_dir(root + os.sep)  # a trailing slash names it the same
            self.assertEqual(sorted(r.remote for r in results), sorted("photos/" + k for k in tree))
            self.assertEqual({r.status for r in results}, {"new"})
            for rel, data in tree.items():
                self.assertEqual(read(os.path.join(self.hub.files, "photos", *rel.split("/"))), data, rel)

            again = c.send_dir(root)
            self.assertEqual({r.status for r in again}, {"unchanged"})

            listed = c.list("photos/")
            self.assertEqual([f.path for f in listed], sorted("photos/" + k for k in tree))
            by_path = {f.path: f for f in listed}
            for rel, data in tree.items():
                entry = by_path["photos/" + rel]
                self.assertEqual(entry.size, len(data))
                self.assertEqual(entry.hash, Blake3(data, vectorize=False).digest())
                self.assertTrue(entry.sender.startswith("pytest"), entry.sender)
                self.assertLess(abs(entry.stored_time - time.time()), 120)

            out = os.path.join(self.tmp, "cat.png")
            c.get("photos/été/猫.png", out)
            self.assertEqual(read(out), tree["été/猫.png"])

            renamed = c.send_dir(root, "backup/cam1")
            self.assertEqual(sorted(r.remote for r in renamed), sorted("backup/cam1/" + k for k in tree))

    def test_list_pages(self):
        root = os.path.join(self.tmp, "paged")
        for i in range(7):
            write(os.path.join(root, "f%d" % i), b"x" * i)
        saved = client_module.LIST_PAGE
        client_module.LIST_PAGE = 3
        try:
            with self.client() as c:
                c.send_dir(root)
                self.assertEqual([f.path for f in c.list("paged/")], ["paged/f%d" % i for i in range(7)])
        finally:
            client_module.LIST_PAGE = saved

    def test_overwrite_policy(self):
        local = os.path.join(self.tmp, "policy.txt")
        write(local, b"first version")
        with self.client() as c:
            self.assertEqual(c.send_file(local).status, "new")
            write(local, b"second version, longer")
            with self.assertRaises(framewire.HubError) as ctx:
                c.send_file(local)
            self.assertEqual(ctx.exception.name, "Exists")
            self.assertIn("policy.txt", str(ctx.exception))
            # Same size, different bytes: Accept{offset = size} with another hash, Cancel,
            # offer again with NO_RESUME, refused without OVERWRITE.
            write(local, b"first VERSION")
            with self.assertRaises(framewire.HubError) as ctx:
                c.send_file(local)
            self.assertEqual(ctx.exception.name, "Exists")
            self.assertEqual(c.send_file(local, overwrite=True).status, "replaced")
            self.assertEqual(read(os.path.join(self.hub.files, "policy.txt")), b"first VERSION")

    def test_send_dir_reports_failures_and_stores_the_rest(self):
        root = os.path.join(self.tmp, "mixed")
        write(os.path.join(root, "ok.txt"), b"fine")
        write(os.path.join(root, "clash.txt"), b"new content")
        with self.client() as c:
            c.send_bytes(b"old", "mixed/clash.txt")
            with self.assertRaises(framewire.UploadError) as ctx:
                c.send_dir(root)
            err = ctx.exception
            self.assertEqual([f[1] for f in err.failures], ["mixed/clash.txt"])
            self.assertEqual([r.remote for r in err.results], ["mixed/ok.txt"])
            self.assertIn("Exists", str(err))

    def test_resume_a_partial_upload(self):
        data = os.urandom(3 * 1000 * 1000)
        local = os.path.join(self.tmp, "resume.bin")
        write(local, data)
        self.leave_partial("resume.bin", data, 1_200_000)
        with self.client() as c:
            counter = DataCounter(c.connection)
            stored = self.send_past_busy(c, local, "resume.bin")
            self.assertEqual(stored.status, "new")
            self.assertEqual(counter.bytes, len(data) - 1_200_000, "only the missing bytes are sent")
        self.assertEqual(read(os.path.join(self.hub.files, "resume.bin")), data)

    def test_partial_of_other_bytes_is_cancelled_and_sent_whole(self):
        theirs = os.urandom(2 * 1000 * 1000)
        ours = os.urandom(len(theirs))
        local = os.path.join(self.tmp, "mismatch.bin")
        write(local, ours)
        self.leave_partial("mismatch.bin", theirs, 900_000)
        with self.client() as c:
            counter = DataCounter(c.connection)
            stored = self.send_past_busy(c, local, "mismatch.bin")
            self.assertEqual(stored.status, "new")
            self.assertEqual(counter.bytes, len(ours), "prefix mismatch: Cancel, then everything")
        self.assertEqual(read(os.path.join(self.hub.files, "mismatch.bin")), ours)

    def leave_partial(self, remote, data, n):
        """A client that sends ``n`` of ``len(data)`` bytes and drops the connection."""
        spool = os.path.join(self.hub.data, "spool")
        before = set(glob.glob(os.path.join(spool, "*.part")))
        conn = Connection.open(self.hub.address, name="dropper", timeout=10)
        try:
            conn.send(p.Offer(id=1, flags=0, size=len(data), path=remote))
            accept = conn.recv(10)
            self.assertIsInstance(accept, p.Accept)
            self.assertEqual(accept.offset, 0)
            for i in range(0, n, 100_000):
                conn.send_parts((p.data_head(1, min(100_000, n - i)), data[i : min(i + 100_000, n)]))
            conn.ping()  # the hub handles messages in order: after the Pong it holds every Data
            conn.sync_clock(1)
        finally:
            conn.close()
        wait_until(
            lambda: set(glob.glob(os.path.join(spool, "*.part"))) - before,
            10,
            "the hub to keep the partial upload",
        )

    def send_past_busy(self, c, local, remote):
        # The hub may still be releasing the dropped connection's lease on the path.
        deadline = time.monotonic() + 10
        while True:
            try:
                return c.send_file(local, remote)
            except framewire.HubError as e:
                if e.name != "Busy" or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def test_get_refusals_and_bad_paths(self):
        with self.client() as c:
            with self.assertRaises(framewire.HubError) as ctx:
                c.get("no/such/file", os.path.join(self.tmp, "nothing"))
            self.assertEqual(ctx.exception.name, "NotFound")
            self.assertFalse(os.path.exists(os.path.join(self.tmp, "nothing")))
            with self.assertRaises(ValueError):
                c.send_bytes(b"x", "../escape")
            with self.assertRaises(framewire.HubError) as ctx:
                c.get("../escape", os.path.join(self.tmp, "nothing"))
            self.assertEqual(ctx.exception.name, "BadPath")

    def test_delete(self):
        with self.client() as c:
            c.send_bytes(b"gone soon", "del/a.txt")
            self.assertEqual(c.delete("del/a.txt"), 9)
            self.assertFalse(os.path.exists(os.path.join(self.hub.files, "del", "a.txt")))
            self.assertEqual(c.list("del/"), [])
            with self.assertRaises(framewire.HubError) as ctx:
                c.delete("del/a.txt")
            self.assertEqual(ctx.exception.name, "NotFound")

    def test_message_echo_and_ping(self):
        with self.client() as c:
            self.assertEqual(c.message("hello hub ✓"), "hello hub ✓")
            r = c.ping()
            self.assertGreater(r.rtt, 0)
            self.assertLess(r.rtt, 5)
            self.assertLess(abs(r.offset), 1.0)  # same machine, same clock
            self.assertTrue(c.hub_name)

    def test_no_hub_there(self):
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with self.assertRaises(framewire.ConnectionLost) as ctx:
            framewire.Client("127.0.0.1:%d" % port, timeout=5)
        self.assertIn("cannot connect", str(ctx.exception))


class TokenTests(unittest.TestCase):
    def test_wrong_or_missing_token_is_refused(self):
        with Hub("--token", "s3cret-s3cret-s3cret") as hub:
            with self.assertRaises(framewire.Unauthorized):
                framewire.Client(hub.address, timeout=5)
            with self.assertRaises(framewire.Unauthorized):
                framewire.Publisher(hub.address, "cam", token="wrong", timeout=5)
            with framewire.Client(hub.address, token="s3cret-s3cret-s3cret", timeout=5) as c:
                self.assertEqual(c.message("in"), "in")


class LiveTests(unittest.TestCase):
    """Publisher and Subscriber with the committed 1080p frames (tests/data/frames-1080p)."""

    @classmethod
    def setUpClass(cls):
        cls.frames = harness.load_frames()
        cls.hub = Hub()

    @classmethod
    def tearDownClass(cls):
        cls.hub.cleanup()

    def test_publish_100_jpegs_subscriber_gets_them_in_order_and_fresh(self):
        frames = self.frames
        with framewire.Subscriber(self.hub.address, "cam100", timeout=5) as sub:
            got = []

            def receive():
                while True:
                    f = sub.next(timeout=10)
                    if f is None:
                        return
                    got.append(f)
                    if f.seq == 100:
                        return

            rx = threading.Thread(target=receive, daemon=True)
            rx.start()
            with framewire.Publisher(self.hub.address, "cam100", timeout=5) as pub:
                for i in range(100):
                    pub.send_jpg(frames[i % len(frames)])
                    time.sleep(0.01)
                self.assertTrue(pub.flush(10))
                stats = pub.stats
            rx.join(20)
            self.assertFalse(rx.is_alive(), "the subscriber never saw frame 100")

        self.assertEqual(stats.published, 100)
        self.assertEqual(stats.sent + stats.skipped, 100)
        self.assertEqual(stats.acked, stats.sent)
        seqs = [f.seq for f in got]
        self.assertEqual(seqs, sorted(set(seqs)), "strictly increasing: newest-first never goes back")
        self.assertEqual(seqs[-1], 100)
        self.assertGreaterEqual(len(got), 50, "paced at 100 fps, a fast subscriber sees most frames")
        for f in got:
            self.assertEqual(f.jpg, frames[(f.seq - 1) % len(frames)])
            self.assertEqual((f.width, f.height, f.format), (1920, 1080, p.FORMAT_JPEG))
            self.assertLess(f.age, 1.0)
            self.assertGreater(f.age, -0.05)
        self.assertLess(statistics.median(f.age for f in got), 0.25)

    def test_slow_subscriber_always_gets_a_fresh_frame(self):
        frames = self.frames
        stop = threading.Event()
        with framewire.Publisher(self.hub.address, "fast", timeout=5) as pub:

            def camera():  # 60 fps
                i = 0
                while not stop.is_set() and i < 2000:
                    pub.send_jpg(frames[i % len(frames)], 1920, 1080)
                    i += 1
                    time.sleep(1 / 60)

            cam = threading.Thread(target=camera, daemon=True)
            cam.start()
            try:
                with framewire.Subscriber(self.hub.address, "fast", timeout=5) as sub:
                    got = []
                    behind = []
                    while len(got) < 12:
                        f = sub.next(timeout=10)
                        self.assertIsNotNone(f, "no frame within 10 s")
                        got.append(f)
                        behind.append(pub.stats.published - f.seq)
                        time.sleep(0.1)  # a slow detector
            finally:
                stop.set()
                cam.join(5)
        seqs = [f.seq for f in got]
        gaps = [b - a for a, b in zip(seqs, seqs[1:])]
        self.assertTrue(all(g >= 1 for g in gaps))
        self.assertGreaterEqual(statistics.median(gaps), 3, "frames it had no time for are skipped")
        self.assertLessEqual(statistics.median(behind), 3, "each frame is one of the newest")
        self.assertLess(statistics.median(f.age for f in got), 0.1)

    def test_publisher_replaces_the_pending_frame_when_the_window_is_full(self):
        jpg = self.frames[0]
        with framewire.Publisher(self.hub.address, "burst", timeout=5) as pub:
            t0 = time.monotonic()
            for _ in range(500):
                pub.send_jpg(jpg, 1920, 1080)
            elapsed = time.monotonic() - t0
            self.assertTrue(pub.flush(10))
            s = pub.stats
        self.assertLess(elapsed, 2.0, "send_jpg does not wait for the network")
        self.assertEqual(s.published, 500)
        self.assertEqual(s.sent + s.skipped, 500)
        self.assertGreater(s.skipped, 0)
        self.assertEqual(s.acked, s.sent)
        self.assertEqual(s.last_acked_seq, 500, "the newest frame always goes out")

    def test_wait_true_delivers_every_frame(self):
        jpg = self.frames[1]
        with framewire.Publisher(self.hub.address, "replay", timeout=5) as pub:
            for _ in range(200):
                pub.send_jpg(jpg, wait=True)
            self.assertTrue(pub.flush(10))
            s = pub.stats
        self.assertEqual((s.published, s.sent, s.acked, s.skipped), (200, 200, 200, 0))

    def test_capture_time_travels_on_the_hub_clock_and_max_latency_drops_old_frames(self):
        jpg = self.frames[5]
        with framewire.Subscriber(self.hub.address, "late", timeout=5) as sub, framewire.Publisher(
            self.hub.address, "late", max_latency_ms=200, timeout=5
        ) as pub:
            self.assertIsNotNone(pub.stats.rtt_us, "the clock was measured at connect")
            pub.send_jpg(jpg, capture_time=time.time() - 2.0)  # 2 s old on arrival: dropped
            self.assertTrue(pub.flush(5), "the hub acknowledges dropped frames too")
            self.assertIsNone(sub.next(timeout=0.5))
            t = time.time() - 0.05
            seq = pub.send_jpg(jpg, capture_time=t)
            f = sub.next(timeout=10)
            self.assertIsNotNone(f)
            self.assertEqual(f.seq, seq)
            # One machine, one clock: the capture time comes back as it left, within the
            # round trips of the two clock estimates.
            self.assertAlmostEqual(f.capture_time, t, delta=0.01)
            self.assertGreaterEqual(f.age, 0.04)

    def test_frame_image_and_send_image(self):
        with framewire.Publisher(self.hub.address, "img", timeout=5) as pub, framewire.Subscriber(
            self.hub.address, "img", timeout=5
        ) as sub:
            pub.send_jpg(self.frames[3])
            f = sub.next(timeout=10)
            self.assertIsNotNone(f)
            if HAVE_OPENCV:
                img = f.image()
                self.assertEqual(img.shape, (1080, 1920, 3))
                pub.send_image(img)
                again = sub.next(timeout=10)
                self.assertEqual((again.width, again.height), (1920, 1080))
            else:
                with self.assertRaises(framewire.MissingDependency) as ctx:
                    f.image()
                self.assertIn("OpenCV", str(ctx.exception))
                with self.assertRaises(framewire.MissingDependency):
                    pub.send_image(object())

    def test_raw_frames_decode_with_numpy(self):
        try:
            import numpy
        except ImportError:
            numpy = None
        with framewire.Publisher(self.hub.address, "gray", timeout=5) as pub, framewire.Subscriber(
            self.hub.address, "gray", timeout=5
        ) as sub:
            pub.send_frame(bytes(range(256)) * 4, p.FORMAT_GRAY8, 32, 32)
            f = sub.next(timeout=10)
            if numpy is not None:
                self.assertEqual(f.image().shape, (32, 32))
                self.assertEqual(int(f.image()[0, 5]), 5)
            else:
                with self.assertRaises(framewire.MissingDependency):
                    f.image()


class ReconnectTests(unittest.TestCase):
    def test_publisher_and_subscriber_survive_a_hub_restart(self):
        frames = harness.load_frames()
        with Hub() as hub:
            pub = framewire.Publisher(hub.address, "cam", timeout=3)
            sub = framewire.Subscriber(hub.address, "cam", timeout=3)
            try:
                pub.send_jpg(frames[0])
                first = sub.next(timeout=10)
                self.assertIsNotNone(first)

                hub.kill()
                for i in range(10):  # the camera keeps going; nothing raises
                    pub.send_jpg(frames[i % len(frames)])
                    time.sleep(0.05)
                self.assertIsNone(sub.next(timeout=0.5))

                hub.restart()
                i = 0

                def delivered():
                    nonlocal i
                    i += 1
                    pub.send_jpg(frames[i % len(frames)])
                    return pub.stats.reconnects >= 1 and pub.stats.acked >= 2

                wait_until(delivered, 30, "the publisher to reconnect", step=0.05)
                after = sub.next(timeout=20)
                self.assertIsNotNone(after, "the subscriber did not come back")
                self.assertGreater(after.seq, first.seq)
                self.assertGreaterEqual(sub.reconnects, 1)
                self.assertGreaterEqual(pub.reconnects, 1)
            finally:
                sub.close()
                pub.close(timeout=1)

    def test_client_connects_again_after_a_hub_restart(self):
        with Hub() as hub, framewire.Client(hub.address, timeout=5) as c:
            self.assertEqual(c.message("before"), "before")
            hub.kill()
            hub.restart()
            self.assertEqual(c.message("after"), "after")


class LiveAnswerTests(unittest.TestCase):
    """The hub's answers to Subscribe and RegisterDevice (protocol version 2), without the shared
    frames: tiny JPEG stand-ins (the hub passes frames through without decoding them)."""

    @classmethod
    def setUpClass(cls):
        cls.hub = Hub()

    @classmethod
    def tearDownClass(cls):
        cls.hub.cleanup()

    def test_subscriber_knows_its_granted_window_before_the_first_frame(self):
        with framewire.Subscriber(self.hub.address, "answers", timeout=5) as sub:
            self.assertEqual(sub.granted_window, 1)
            with framewire.Publisher(self.hub.address, "answers", timeout=5) as pub:
                pub.send_jpg(b"\xff\xd8jpeg\xff\xd9", 4, 4)
                frame = sub.next(timeout=10)
            self.assertIsNotNone(frame)
            self.assertEqual(frame.seq, 1)

    def test_raw_subscribe_is_answered_with_the_window_and_registration_with_the_name(self):
        conn = Connection.open(self.hub.address, name="raw", timeout=5)
        try:
            self.assertEqual(conn.welcome.version, p.VERSION)
            conn.send(p.Subscribe(stream="raw", window=0))
            self.assertEqual(conn.recv(), p.Subscribed(stream="raw", window=1))
            conn.send(p.RegisterDevice(name="rawdev"))
            self.assertEqual(conn.recv(), p.Registered(name="rawdev"))
        finally:
            conn.close()

    def test_device_is_registered_when_constructed(self):
        dev = framewire.Device(self.hub.address, "confirmed", timeout=5)
        dev.command("echo", lambda *args: " ".join(args))
        try:
            self.assertTrue(dev.registered)
            dev.start()
            with framewire.Client(self.hub.address, timeout=5) as c:
                # No wait for the registration: it already took effect.
                self.assertEqual(c.command("confirmed", "echo", "now"), "now")
        finally:
            dev.close()


class DeviceTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.jpeg = harness.load_frames()[0]  # before the hub: a failure here leaves nothing running
        cls.hub = Hub("--command-timeout", "2")

    @classmethod
    def tearDownClass(cls):
        cls.hub.cleanup()

    def test_raw_device_answers_capture_from_the_cli(self):
        """A device on a raw connection: RegisterDevice, answer `capture` by uploading a JPEG and
        replying with its path; `framewire cmd pycam capture` prints that path."""
        registered = threading.Event()
        errors = []

        def device():
            try:
                conn = Connection.open(self.hub.address, name="pycam", timeout=10)
                try:
                    conn.send(p.RegisterDevice(name="pycam"))
                    conn.expect(p.Registered)  # the registration took effect
                    registered.set()
                    cmd = conn.recv(30)
                    if not isinstance(cmd, p.Command) or cmd.command != "capture":
                        conn.send(
                            p.Reply(id=getattr(cmd, "id", 0), status=p.REPLY_UNKNOWN_COMMAND, body=b"?")
                        )
                        return
                    with framewire.Client(self.hub.address, name="pycam") as up:
                        stored = up.send_bytes(self.jpeg, "captures/pycam-%d.jpg" % cmd.id)
                    conn.send(p.Reply(id=cmd.id, status=p.REPLY_OK, body=stored.remote.encode()))
                    conn.sync_clock(1)  # the reply is out before the connection closes
                finally:
                    conn.close()
            except Exception as e:  # reported by the test thread
                errors.append(e)
                registered.set()

        t = threading.Thread(target=device, daemon=True)
        t.start()
        self.assertTrue(registered.wait(15))
        self.assertEqual(errors, [])
        out = subprocess.run(
            [
                harness.hub_binary(),
                "cmd",
                "--server",
                self.hub.address,
                "--timeout",
                "10",
                "pycam",
                "capture",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            timeout=30,
        )
        t.join(15)
        self.assertEqual(errors, [])
        self.assertEqual(out.returncode, 0, out.stderr.decode(errors="replace"))
        path = out.stdout.decode().strip()
        self.assertRegex(path, r"^captures/pycam-\d+\.jpg$")
        self.assertEqual(read(os.path.join(self.hub.files, *path.split("/"))), self.jpeg)

    def test_device_class_and_command_errors(self):
        dev = framewire.Device(self.hub.address, "helper", timeout=5)
        dev.command("echo", lambda *args: " ".join(args))

        @dev.command("capture")
        def capture():
            with framewire.Client(self.hub.address, name="helper") as up:
                return up.send_bytes(self.jpeg, "captures/helper.jpg", overwrite=True).remote

        @dev.command("fail")
        def fail():
            raise RuntimeError("lens cap is on")

        @dev.command("slow")
        def slow():
            time.sleep(3)  # longer than the hub's --command-timeout 2
            return "late"

        dev.start()
        try:
            with framewire.Client(self.hub.address, timeout=5) as c:
                wait_until(lambda: self.answers(c), 10, "the device to register")
                self.assertEqual(c.command("helper", "echo", "a", "b c", 3), "a b c 3")
                path = c.command("helper", "capture")
                self.assertEqual(read(os.path.join(self.hub.files, *path.split("/"))), self.jpeg)
                with self.assertRaises(framewire.CommandFailed) as ctx:
                    c.command("helper", "fail")
                self.assertIn("lens cap is on", str(ctx.exception))
                with self.assertRaises(framewire.UnknownCommand) as ctx:
                    c.command("helper", "selfdestruct")
                self.assertIn("selfdestruct", str(ctx.exception))
                with self.assertRaises(framewire.UnknownDevice):
                    c.command("nobody", "capture")
                with self.assertRaises(framewire.CommandTimeout):
                    c.command("helper", "slow")
                self.assertIsInstance(framewire.CommandTimeout("d", "c", ""), TimeoutError)
        finally:
            dev.close()

    @staticmethod
    def answers(c):
        try:
            return c.command("helper", "echo", "up") == "up"
        except framewire.UnknownDevice:
            return False


if __name__ == "__main__":
    unittest.main()
