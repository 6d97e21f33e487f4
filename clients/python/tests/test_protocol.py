"""The codec against docs/protocol-vectors.json (every message, both directions), the decoder on
every split of a stream, the header and payload checks of PROTOCOL.md §1.1, remote-path rules
(§5), and the clock maths (§2.4)."""

import json
import struct
import unittest

import harness  # noqa: F401  (puts the in-tree package first on sys.path)
from framewire import images
from framewire import protocol as p
from framewire.clock import ClockEstimate, ClockSample
from framewire.errors import ProtocolError


def load_vectors():
    with open(harness.PROTOCOL_VECTORS, encoding="utf-8") as f:
        doc = json.load(f)
    return doc["vectors"]


def message_from_fields(cls, fields):
    """Builds a message from a vector's ``fields``: ``x_hex`` keys are the bytes field ``x``,
    hash fields are hex too, list entries are ListEntry."""
    layout = dict(cls.LAYOUT)
    values = {}
    for key, value in fields.items():
        if key.endswith("_hex"):
            values[key[: -len("_hex")]] = bytes.fromhex(value)
        elif layout.get(key) is p.HASH:
            values[key] = bytes.fromhex(value)
        elif key == "from":
            values["from_"] = value
        elif key == "entries":
            values[key] = [p.ListEntry(**dict(e, hash=bytes.fromhex(e["hash"]))) for e in value]
        else:
            values[key] = value
    return cls(**values)


class VectorTests(unittest.TestCase):
    def setUp(self):
        self.vectors = load_vectors()

    def test_every_message_type_has_a_vector(self):
        covered = {v["type"] for v in self.vectors}
        self.assertEqual(covered, set(p.BY_TYPE), "vectors and message classes must cover the same types")

    def test_encode_every_vector(self):
        for v in self.vectors:
            with self.subTest(vector=v["name"]):
                msg = message_from_fields(p.BY_TYPE[v["type"]], v["fields"])
                self.assertEqual(p.encode(msg).hex(), v["hex"])

    def test_decode_every_vector(self):
        for v in self.vectors:
            with self.subTest(vector=v["name"]):
                decoded = p.decode(bytes.fromhex(v["hex"]))
                expected = message_from_fields(p.BY_TYPE[v["type"]], v["fields"])
                self.assertIsInstance(decoded, p.BY_TYPE[v["type"]])
                self.assertEqual(decoded, expected)

    def test_bulk_heads_match_whole_messages(self):
        by_name = {v["name"]: v for v in self.vectors}
        data = p.decode(bytes.fromhex(by_name["data"]["hex"]))
        self.assertEqual((p.data_head(data.id, len(data.bytes)) + data.bytes).hex(), by_name["data"]["hex"])
        f = p.decode(bytes.fromhex(by_name["frame"]["hex"]))
        head = p.frame_head(f.stream, f.seq, f.capture_us, f.format, f.width, f.height, len(f.payload))
        self.assertEqual((head + f.payload).hex(), by_name["frame"]["hex"])

    def test_protocol_md_python_example(self):
        # The Hello built by hand in PROTOCOL.md §6 is the vector `hello`.
        def str16(s):
            b = s.encode("utf-8")
            return struct.pack("<H", len(b)) + b

        payload = b"FWIR" + struct.pack("<H", 2) + str16("cam-1") + str16("s3cret")
        raw = struct.pack("<HHI", 0x0001, 0, len(payload)) + payload
        self.assertEqual(raw, p.encode(p.Hello(version=2, name="cam-1", token="s3cret")))
        by_name = {v["name"]: v for v in self.vectors}
        self.assertEqual(raw.hex(), by_name["hello"]["hex"])

    def test_vectors_are_this_version(self):
        with open(harness.PROTOCOL_VECTORS, encoding="utf-8") as f:
            self.assertEqual(json.load(f)["version"], p.VERSION)


class DecoderTests(unittest.TestCase):
    def setUp(self):
        self.vectors = load_vectors()
        self.stream = b"".join(bytes.fromhex(v["hex"]) for v in self.vectors)
        self.expected = [p.decode(bytes.fromhex(v["hex"])) for v in self.vectors]

    def drain(self, d):
        out = []
        while True:
            m = d.next()
            if m is None:
                return out
            out.append(m)

    def test_one_byte_at_a_time(self):
        d = p.Decoder()
        got = []
        for i in range(len(self.stream)):
            d.feed(self.stream[i : i + 1])
            got += self.drain(d)
        self.assertEqual(got, self.expected)
        self.assertEqual(d.buffered(), 0)

    def test_every_split_point(self):
        for cut in range(len(self.stream) + 1):
            d = p.Decoder()
            d.feed(self.stream[:cut])
            got = self.drain(d)
            d.feed(self.stream[cut:])
            got += self.drain(d)
            self.assertEqual(got, self.expected, "split at %d" % cut)

    def test_ready(self):
        d = p.Decoder()
        raw = p.encode(p.Cancel(id=1))
        d.feed(raw[:-1])
        self.assertFalse(d.ready())
        d.feed(raw[-1:])
        self.assertTrue(d.ready())


class RefusalTests(unittest.TestCase):
    def assertRefused(self, raw, code=p.MALFORMED, max_payload=p.DEFAULT_MAX_PAYLOAD):
        with self.assertRaises(ProtocolError) as ctx:
            d = p.Decoder(max_payload)
            d.feed(raw)
            d.next()
        self.assertEqual(ctx.exception.code, code, str(ctx.exception))

    def test_header_checks_before_payload(self):
        # Only 8 bytes: the header alone is enough to refuse.
        self.assertRefused(bytes.fromhex("3600010004000000"))  # flags != 0
        self.assertRefused(bytes.fromhex("3700000004000000"))  # 0x0037 is unassigned
        self.assertRefused(bytes.fromhex("3200000000000010"), p.TOO_LARGE)  # 256 MiB > 16 MiB
        self.assertRefused(bytes.fromhex("3200000005000000"), p.TOO_LARGE, max_payload=4)

    def test_payload_must_match_layout_exactly(self):
        cancel = p.encode(p.Cancel(id=1))
        self.assertRefused(struct.pack("<HHI", 0x36, 0, 5) + cancel[8:] + b"\0")  # trailing byte
        self.assertRefused(struct.pack("<HHI", 0x36, 0, 3) + cancel[8:11])  # missing byte

    def test_bad_utf8_and_enums(self):
        self.assertRefused(struct.pack("<HHI", 0x10, 0, 5) + struct.pack("<I", 1) + b"\xff")  # Text
        self.assertRefused(struct.pack("<HHI", 0x42, 0, 3) + b"\x01\x00\xc3")  # Unsubscribe str16
        stored = bytearray(p.encode(p.Stored(id=1, status=0, size=5, hash=bytes(32))))
        stored[12] = 3  # status 3 does not exist
        self.assertRefused(bytes(stored))
        end = bytearray(p.encode(p.End(id=1, has_hash=1, hash=bytes(32))))
        end[12] = 2
        self.assertRefused(bytes(end))
        reply = bytearray(p.encode(p.Reply(id=1, status=0, body=b"")))
        reply[12] = 5
        self.assertRefused(bytes(reply))
        page = bytearray(p.encode(p.ListPage(id=1, more=0, entries=())))
        page[12] = 2
        self.assertRefused(bytes(page))

    def test_hello_without_magic(self):
        raw = bytearray(p.encode(p.Hello(version=1, name="a", token="")))
        raw[8:12] = b"XXXX"
        self.assertRefused(bytes(raw), p.NOT_FRAMEWIRE)

    def test_frame_format_is_not_checked(self):
        # Decoders accept any frame format (values other than 1-4 are reserved, not errors).
        f = p.Frame(stream="s", seq=1, capture_us=0, format=99, width=0, height=0, payload=b"x")
        self.assertEqual(p.decode(p.encode(f)), f)

    def test_encoder_refuses_what_cannot_be_encoded(self):
        with self.assertRaises(ValueError):
            p.encode(p.Cancel(id=-1))
        with self.assertRaises(ValueError):
            p.encode(p.RegisterDevice(name="x" * 70000))
        with self.assertRaises(ValueError):
            p.encode(p.End(id=1, has_hash=1, hash=b"short"))


class RemotePathTests(unittest.TestCase):
    def test_refused(self):
        for path in [
            "",
            "a" * 1025,
            "/etc/passwd",
            "a\\b",
            "..\\..\\x",
            "C:/x",
            "c:x",
            "a\0b",
            "a\nb",
            "a\x7fb",
            "a\x85b",
            "a//b",
            "a/",
            "..",
            "../x",
            "a/./b",
            "a/../../x",
            "a" * 256,
        ]:
            with self.subTest(path=path[:20]):
                self.assertIsNotNone(p.remote_path_problem(path))

    def test_accepted(self):
        for path in [
            "a.jpg",
            "photos/2024/img 001.jpg",
            "données/été.png",
            "写真/猫.jpg",
            ".hidden",
            "a..b",
            "...",
            "a" * 255,
        ]:
            with self.subTest(path=path):
                self.assertIsNone(p.remote_path_problem(path))

    def test_length_counts_utf8_bytes(self):
        self.assertIsNone(p.remote_path_problem("é" * 127))  # 254 bytes in one segment
        self.assertIsNotNone(p.remote_path_problem("é" * 128))  # 256 bytes


class ClockTests(unittest.TestCase):
    def test_offset_from_symmetric_exchange(self):
        s = ClockSample(sent_us=1_000_000, remote_us=6_001_000, received_us=1_002_000)
        self.assertEqual(s.rtt_us, 2_000)
        self.assertEqual(s.offset_us, 5_000_000)

    def test_keeps_tightest_sample(self):
        e = ClockEstimate()
        e.add(ClockSample(0, 100, 1000))
        e.add(ClockSample(2000, 2060, 2100))
        e.add(ClockSample(3000, 9999, 9000))
        self.assertEqual(e.rtt_us, 100)
        self.assertEqual(e.offset_us, 10)
        self.assertEqual(e.to_hub(50), 60)
        self.assertEqual(e.to_local(60), 50)

    def test_tie_prefers_newer(self):
        e = ClockEstimate()
        e.add(ClockSample(0, 50, 100))
        e.add(ClockSample(1000, 1070, 1100))
        self.assertEqual(e.offset_us, 20)


class JpegSizeTests(unittest.TestCase):
    def test_reads_size_from_a_real_frame(self):
        with open(harness.frame_files()[0], "rb") as f:
            self.assertEqual(images.jpeg_size(f.read()), (1920, 1080))

    def test_not_a_jpeg(self):
        self.assertEqual(images.jpeg_size(b"\x89PNG...."), (0, 0))
        self.assertEqual(images.jpeg_size(b""), (0, 0))
        self.assertEqual(images.jpeg_size(bytes.fromhex("ffd8ffd9")), (0, 0))


if __name__ == "__main__":
    unittest.main()
