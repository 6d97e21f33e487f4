"""The Publisher's non-blocking writes, against a scripted stand-in hub on 127.0.0.1 that reads
slowly through a small receive buffer: frames are written in many partial pieces, partly from the
caller's thread and partly from the background thread, and the stand-in pings the publisher
meanwhile. Every byte must arrive in order, whole, with each Pong between messages, never inside
a frame."""

import socket
import threading
import time
import unittest

import harness  # noqa: F401  (puts the in-tree package first on sys.path)
import framewire
from framewire import protocol as p
from framewire.clock import now_us

FRAME_BYTES = 200_000
FRAMES = 60


def payload(seq):
    return bytes([seq % 251]) * FRAME_BYTES


class SlowHub:
    """Accepts one connection, handshakes, answers Pings, acknowledges Frames after checking them,
    and sends a Ping of its own after every 5th frame. Reads 4 KiB at a time with a pause."""

    def __init__(self):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.address = "127.0.0.1:%d" % self.listener.getsockname()[1]
        self.frames = []
        self.pongs = 0
        self.pings_sent = 0
        self.errors = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        sock = None
        try:
            self.listener.settimeout(10)
            sock, _ = self.listener.accept()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            sock.settimeout(10)
            dec = p.Decoder()
            deadline = time.monotonic() + 30
            handshaken = False
            while not self.stop.is_set() and time.monotonic() < deadline:
                msg = dec.next()
                if msg is None:
                    data = sock.recv(4096)
                    if not data:
                        return
                    dec.feed(data)
                    if handshaken:
                        time.sleep(0.0003)
                    continue
                if isinstance(msg, p.Hello):
                    handshaken = True
                    sock.sendall(p.encode(p.Welcome(1, now_us(), 16 << 20, 1 << 40, 1 << 20, 64, "slow")))
                elif isinstance(msg, p.Ping):
                    sock.sendall(p.encode(p.Pong(msg.nonce, msg.time_us, now_us())))
                elif isinstance(msg, p.Pong):
                    self.pongs += 1
                elif isinstance(msg, p.Frame):
                    if msg.payload != payload(msg.seq) or (msg.width, msg.height) != (640, 480):
                        self.errors.append("frame %d arrived damaged" % msg.seq)
                    self.frames.append(msg.seq)
                    out = p.encode(p.FrameAck(msg.stream, msg.seq))
                    if len(self.frames) % 5 == 0:
                        out += p.encode(p.Ping(len(self.frames), now_us()))
                        self.pings_sent += 1
                    sock.sendall(out)
                elif not isinstance(msg, p.Publish):
                    self.errors.append("unexpected %s" % type(msg).__name__)
        except Exception as e:  # reported by the test
            self.errors.append(repr(e))
        finally:
            self.listener.close()
            if sock is not None:
                sock.close()


class PartialWriteTests(unittest.TestCase):
    def test_frames_arrive_whole_and_pongs_never_split_them(self):
        hub = SlowHub()
        pub = framewire.Publisher(hub.address, "slow", timeout=10)
        try:
            conn = pub._conn
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
            partial = []
            write_nowait = conn.write_nowait

            def counting(views):
                left = write_nowait(views)
                if left:
                    partial.append(sum(len(v) for v in left))
                return left

            conn.write_nowait = counting
            for seq in range(1, FRAMES + 1):
                self.assertEqual(pub.send_jpg(payload(seq), 640, 480), seq)
                time.sleep(0.003)  # faster than the stand-in reads: some frames must be skipped
            self.assertTrue(pub.flush(30), "not every frame was acknowledged: %s" % (pub.stats,))
            stats = pub.stats
            harness.wait_until(lambda: hub.pongs >= hub.pings_sent, 10, "the publisher to answer every Ping")
        finally:
            pub.close(timeout=2)
            hub.stop.set()
            hub.thread.join(10)
        self.assertEqual(hub.errors, [])
        self.assertEqual(hub.frames, sorted(hub.frames))
        self.assertEqual(hub.frames[-1], FRAMES, "the newest frame always goes out")
        self.assertEqual(len(hub.frames), stats.sent)
        self.assertEqual(stats.sent + stats.skipped, FRAMES)
        self.assertGreater(stats.skipped, 0, "a slow hub makes the publisher skip, not queue")
        self.assertGreater(len(partial), 10, "the kernel took frames in pieces")
        self.assertGreater(hub.pings_sent, 0, "frames received: %s" % hub.frames)
        self.assertEqual(hub.pongs, hub.pings_sent)


if __name__ == "__main__":
    unittest.main()
