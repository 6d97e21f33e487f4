#!/usr/bin/env bash
# Writes the seed corpora of the fuzz targets from docs/protocol-vectors.json: one file per
# vector (its bytes), plus a few handshake and path seeds. Idempotent; existing corpus files stay.
#   fuzz/seed_corpus.sh [CORPUS_DIR=fuzz/corpus]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
corpus="${1:-$here/corpus}"
vectors="$here/../docs/protocol-vectors.json"
mkdir -p "$corpus/decode" "$corpus/handshake"

python3 - "$vectors" "$corpus" <<'PY'
import json, sys, pathlib
vectors, corpus = sys.argv[1], pathlib.Path(sys.argv[2])
vs = json.load(open(vectors))["vectors"]
every = b""
for v in vs:
    raw = bytes.fromhex(v["hex"])
    every += raw
    (corpus / "decode" / f"vector-{v['name']}").write_bytes(raw)
    if v["name"] == "hello":
        (corpus / "handshake" / "vector-hello").write_bytes(raw)
        # a pipelining client: Hello and the next messages in one write
        (corpus / "handshake" / "hello-then-more").write_bytes(raw + every)
# every vector back to back: one stream with every message type
(corpus / "decode" / "all-vectors").write_bytes(every)
seeds = {
    "http-get": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    "http2-preface": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    "tls-hello": bytes.fromhex("16030100a5010000a10303"),
    "hello-huge-len": bytes.fromhex("0100000000000010"),
    "path-ok": "photos/2024/img 001.jpg".encode(),
    "path-dotdot": b"a/../../etc/passwd",
    "path-unicode": "données/写真/猫.jpg".encode(),
    "path-backslash": b"..\\..\\x",
}
for name, b in seeds.items():
    (corpus / "handshake" / name).write_bytes(b)
PY
echo "seed corpus: $(ls "$corpus/decode" | wc -l) decode, $(ls "$corpus/handshake" | wc -l) handshake files in $corpus"
