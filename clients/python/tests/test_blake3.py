"""The bundled pure-Python BLAKE3 against the official test vectors (hash, keyed hash and key
derivation, 131 bytes of extendable output each), with and without numpy lanes, and the backend
that ``framewire.blake3.new()`` picks against it."""

import json
import os
import random
import unittest

import harness  # noqa: F401  (puts the in-tree package first on sys.path)
from framewire import blake3
from framewire.blake3 import Blake3

try:
    import numpy  # noqa: F401

    HAVE_NUMPY = True
except ImportError:
    HAVE_NUMPY = False


def official():
    with open(harness.BLAKE3_VECTORS, encoding="utf-8") as f:
        return json.load(f)


def pattern(n):
    """The vectors' input: 0, 1, ..., 250, 0, 1, ..."""
    return bytes(i % 251 for i in range(n))


class OfficialVectorTests(unittest.TestCase):
    def setUp(self):
        self.doc = official()
        self.assertEqual(len(self.doc["cases"]), 22)

    def check(self, vectorize):
        key = self.doc["key"].encode("ascii")
        context = self.doc["context_string"]
        for case in self.doc["cases"]:
            data = pattern(case["input_len"])
            with self.subTest(input_len=case["input_len"], vectorize=vectorize):
                expected = bytes.fromhex(case["hash"])
                h = Blake3(data, vectorize=vectorize)
                self.assertEqual(h.digest(len(expected)), expected)
                self.assertEqual(h.digest(), expected[:32])  # default length is the prefix
                self.assertEqual(h.hexdigest(), case["hash"][:64])
                keyed = bytes.fromhex(case["keyed_hash"])
                self.assertEqual(Blake3(data, key=key, vectorize=vectorize).digest(len(keyed)), keyed)
                derived = bytes.fromhex(case["derive_key"])
                self.assertEqual(
                    Blake3.derive_key(context, vectorize=vectorize).update(data).digest(len(derived)), derived
                )

    def test_pure_python(self):
        self.check(vectorize=False)

    def test_numpy_lanes(self):
        if HAVE_NUMPY:
            self.check(vectorize=True)
        else:
            with self.assertRaises(ValueError):
                Blake3(vectorize=True)


class IncrementalTests(unittest.TestCase):
    def test_any_split_gives_the_same_hash(self):
        data = pattern(31744)  # 31 chunks: every tree shape below 32
        expected = bytes.fromhex(next(c for c in official()["cases"] if c["input_len"] == 31744)["hash"])[:32]
        rng = random.Random(6)
        for vectorize in [False, True] if HAVE_NUMPY else [False]:
            for piece in (1, 63, 64, 65, 1023, 1024, 1025, 4096, 30000):
                h = Blake3(vectorize=vectorize)
                for i in range(0, len(data), piece):
                    h.update(data[i : i + piece])
                self.assertEqual(h.digest(), expected, "pieces of %d" % piece)
            h = Blake3(vectorize=vectorize)
            i = 0
            while i < len(data):
                n = rng.randint(0, 3000)
                h.update(data[i : i + n])
                i += n
            self.assertEqual(h.digest(), expected, "random pieces")

    def test_digest_does_not_end_the_hasher(self):
        h = Blake3(b"abc", vectorize=False)
        first = h.digest()
        self.assertEqual(h.digest(), first)
        h.update(b"def")
        self.assertEqual(h.digest(), Blake3(b"abcdef", vectorize=False).digest())
        c = h.copy()
        c.update(b"g")
        self.assertEqual(h.digest(), Blake3(b"abcdef", vectorize=False).digest())
        self.assertEqual(c.digest(), Blake3(b"abcdefg", vectorize=False).digest())

    def test_lanes_agree_with_scalar_beyond_the_vectors(self):
        # 300 KiB + 1 byte: subtrees of 256, 32, 8, 4 chunks, more than the official inputs have.
        data = os.urandom(300 * 1024 + 1)
        scalar = Blake3(data, vectorize=False).digest()
        if HAVE_NUMPY:
            self.assertEqual(Blake3(data, vectorize=True).digest(), scalar)
        self.assertEqual(blake3.new(data).digest(), scalar, "backend %s" % blake3.BACKEND)


class BackendTests(unittest.TestCase):
    def test_backend_is_named(self):
        self.assertIn(blake3.BACKEND, ("blake3 package", "pure Python + numpy", "pure Python"))

    def test_hash_file(self):
        import tempfile

        data = os.urandom(5000)
        with tempfile.NamedTemporaryFile(delete=False) as f:
            f.write(data)
        try:
            self.assertEqual(blake3.hash_file(f.name), Blake3(data, vectorize=False).digest())
            self.assertEqual(blake3.hash_file(f.name, 1000), Blake3(data[:1000], vectorize=False).digest())
            with self.assertRaises(ValueError):
                blake3.hash_file(f.name, 6000)
        finally:
            os.unlink(f.name)


if __name__ == "__main__":
    unittest.main()
