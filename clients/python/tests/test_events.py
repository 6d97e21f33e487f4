"""End-to-end (issue 11): a Python program that reacts to what arrives at a real hub, through
``hub.events()``, and that receives and answers texts addressed to its name."""

import queue
import subprocess
import tempfile
import threading
import unittest

from harness import Hub, hub_binary

import framewire
from framewire import protocol as p
from framewire.blake3 import Blake3


def run_cli(hub, *args):
    return subprocess.run(
        [hub_binary(), "--server", hub.address] + list(args),
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30,
    )


class EventTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.hub = Hub()

    @classmethod
    def tearDownClass(cls):
        cls.hub.cleanup()
        cls.tmp.cleanup()

    def client(self, name):
        return framewire.Client(self.hub.address, name=name, timeout=10)

    def test_a_program_reacts_to_an_upload(self):
        follower = self.client("reactor")
        events = follower.events(kinds=["stored"], prefix="shots/")
        seen = queue.Queue()

        def react():
            for e in events:
                # React: fetch what was stored and check it against the event's hash.
                seen.put(e)
                return

        t = threading.Thread(target=react, daemon=True)
        t.start()
        data = b"a picture, say" * 100
        with self.client("camera") as cam:
            cam.send_bytes(b"not this one", "elsewhere/x.bin")
            cam.send_bytes(data, "shots/one.jpg")
        e = seen.get(timeout=10)
        self.assertEqual(e.kind, "stored")
        self.assertEqual(e.field("path"), "shots/one.jpg")
        self.assertEqual(e.field("size"), str(len(data)))
        h = Blake3()
        h.update(data)
        self.assertEqual(e.field("hash"), h.hexdigest())
        self.assertTrue(e.field("sender").startswith("camera@"))
        follower.close()

    def test_msg_to_a_python_program_which_answers(self):
        program = self.client("program")
        events = program.events(kinds=["none"], name="sorter")
        received = queue.Queue()

        def serve():
            # The program: every text addressed to "sorter" is answered to its sender.
            try:
                with self.client("sorter") as answerer:
                    for m in events:
                        if isinstance(m, p.TextFrom):
                            received.put((m.from_, m.text))
                            answerer.send_text(m.from_, "sorted: " + m.text)
            except framewire.ConnectionLost:
                pass  # the test closed the program's connection

        threading.Thread(target=serve, daemon=True).start()
        out = run_cli(self.hub, "--name", "asker-cli", "msg", "--to", "sorter", "sort this")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("delivered to sorter", out.stdout)
        self.assertEqual(received.get(timeout=10), ("asker-cli", "sort this"))
        # A program that holds a name gets the answer.
        asker = self.client("asker-follower")
        replies = asker.events(kinds=["none"], name="asker")
        with self.client("asker") as c:
            self.assertTrue(c.send_text("sorter", "and this"))
        got = next(replies)
        self.assertIsInstance(got, p.TextFrom)
        self.assertEqual((got.from_, got.to, got.text), ("sorter", "asker", "sorted: and this"))
        nobody = run_cli(self.hub, "msg", "--to", "nobody", "hello?")
        self.assertNotEqual(nobody.returncode, 0)
        self.assertIn("no such receiver", nobody.stderr)
        asker.close()
        program.close()


if __name__ == "__main__":
    unittest.main()
