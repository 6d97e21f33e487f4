#!/usr/bin/env bash
# Interop with real clients, as users run them: curl -T upload and download (byte-identical,
# Range), ffprobe on the MJPEG endpoint, nc -q0 raw ingest, a UDP message in the event log and in
# the hub's log output, and the Prometheus text read back. Starts its own hub on 127.0.0.1:0.
set -euo pipefail
cd "$(dirname "$0")/../.."
need() { command -v "$1" >/dev/null 2>&1; }
if ! need curl || ! need ffprobe || ! need nc; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq curl ffmpeg netcat-openbsd >/dev/null
  else
    echo "interop: needs curl, ffprobe (ffmpeg) and nc (netcat-openbsd)"; exit 1
  fi
fi
bin=${FRAMEWIRE_BIN:-target/release/framewire}
[ -x "$bin" ] || cargo build --release -q -p framewire
frames=${FRAMES_DIR:-tests/data/frames-1080p}
[ -f "$frames/f0001.jpg" ] || { echo "interop: test frames missing at $frames"; exit 1; }
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
fail() { echo "interop FAILED: $*"; echo "--- hub log"; tail -30 "$work/hub.log" || true; exit 1; }

"$bin" serve --listen 127.0.0.1:0 --http 127.0.0.1:0 --raw-listen 127.0.0.1:0 --udp 127.0.0.1:0 \
  --data "$work/data" 2>"$work/hub.log" &
pids+=($!)
for _ in $(seq 100); do grep -q "^udp: " "$work/hub.log" 2>/dev/null && break; sleep 0.1; done
native=$(grep -o 'listening on [0-9.:]*' "$work/hub.log" | awk '{print $3}')
http=$(grep -o 'http://[0-9.:]*' "$work/hub.log" | head -1)
raw=$(sed -n 's/^raw uploads: //p' "$work/hub.log")
udp=$(sed -n 's/^udp: //p' "$work/hub.log")
[ -n "$native" ] && [ -n "$http" ] && [ -n "$raw" ] && [ -n "$udp" ] || fail "hub did not print its addresses"
pass=0

# curl -T upload, then download byte-identical; a Range request; the stored hash in the answer.
curl -sS -f -T "$frames/f0001.jpg" "$http/files/interop/curl%20upload.jpg" > "$work/put.json" || fail "curl -T"
want=$(python3 -c "import hashlib,sys; print(len(open(sys.argv[1],'rb').read()))" "$frames/f0001.jpg")
grep -q "\"size\":$want" "$work/put.json" || fail "PUT answer: $(cat "$work/put.json")"
curl -sS -f "$http/files/interop/curl%20upload.jpg" -o "$work/back.jpg" || fail "curl download"
cmp -s "$frames/f0001.jpg" "$work/back.jpg" || fail "download differs from upload"
curl -sS -f -r 100-199 "$http/files/interop/curl%20upload.jpg" -o "$work/range.bin" || fail "range"
cmp -s <(tail -c +101 "$frames/f0001.jpg" | head -c 100) "$work/range.bin" || fail "range bytes"
code=$(curl -s -o /dev/null -w '%{http_code}' -T "$frames/f0002.jpg" "$http/files/interop/curl%20upload.jpg")
[ "$code" = 409 ] || fail "refused overwrite gave $code"
code=$(curl -s -o /dev/null -w '%{http_code}' "$http/files/%2e%2e%2fescape")
[ "$code" = 400 ] || fail "URL-encoded escape gave $code"
echo "ok: curl -T upload, download byte-identical, Range, 409 refused overwrite, 400 escape"; pass=$((pass+1))

# ffprobe recognizes the MJPEG endpoint of a live stream.
"$bin" --server "$native" stream --name cam --size 320x240 --fps 10 --frames 300 -q &
pids+=($!)
for _ in $(seq 50); do curl -sf -o /dev/null "$http/streams/cam/latest.jpg" && break; sleep 0.1; done
timeout 30 ffprobe -v error -f mjpeg -show_entries stream=codec_name,width,height -of default=nw=1 \
  "$http/streams/cam.mjpeg" > "$work/probe.txt" 2>&1 || true
grep -q "codec_name=mjpeg" "$work/probe.txt" || fail "ffprobe: $(cat "$work/probe.txt")"
grep -q "width=320" "$work/probe.txt" || fail "ffprobe size: $(cat "$work/probe.txt")"
echo "ok: ffprobe reads $http/streams/cam.mjpeg as mjpeg 320x240"; pass=$((pass+1))

# nc -q0 raw ingest stores the JPEG byte-identical.
host=${raw%:*}; port=${raw##*:}
timeout 10 nc -q0 "$host" "$port" < "$frames/f0004.jpg" || true
for _ in $(seq 50); do "$bin" --server "$native" ls raw/ 2>/dev/null | grep -q jpg && break; sleep 0.1; done
stored=$("$bin" --server "$native" ls raw/ | grep '\.jpg$' | head -1)
[ -n "$stored" ] || fail "nc upload not stored"
"$bin" --server "$native" get "$stored" -o "$work/raw.jpg" || fail "get $stored"
cmp -s "$frames/f0004.jpg" "$work/raw.jpg" || fail "raw upload differs"
echo "ok: nc -q0 stored $stored byte-identical"; pass=$((pass+1))

# A UDP message reaches the event log and the hub's log output.
"$bin" msg --udp "$udp" "interop hello over udp" || fail "msg --udp"
for _ in $(seq 50); do curl -sf "$http/api/events" | grep -q "interop hello over udp" && break; sleep 0.1; done
curl -sf "$http/api/events" | grep -q "interop hello over udp" || fail "UDP message not in the event log"
grep -q "interop hello over udp" "$work/hub.log" || fail "UDP message not in the hub's log output"
echo "ok: UDP message in the event log and the log output"; pass=$((pass+1))

# Prometheus text: every sample line is NAME{labels} VALUE after its # TYPE.
curl -sf "$http/metrics" > "$work/metrics.txt" || fail "metrics"
python3 - "$work/metrics.txt" <<'PY' || fail "metrics do not parse"
import re, sys
types = {}
sample = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*",?)*\})? (-?[0-9.eE+-]+|NaN|\+Inf|-Inf)$')
n = 0
for line in open(sys.argv[1]):
    line = line.rstrip("\n")
    if line.startswith("# TYPE "):
        _, _, name, kind = line.split(" ", 3); types[name] = kind; continue
    if line.startswith("# HELP "): continue
    m = sample.match(line)
    assert m, f"bad line: {line!r}"
    name = m.group(1)
    base = re.sub(r'_(bucket|sum|count)$', '', name)
    assert name in types or base in types, f"no TYPE for {name}"
    n += 1
assert n > 20, n
print(f"{n} samples parse")
PY
if need promtool; then promtool check metrics < "$work/metrics.txt" || fail "promtool"; fi
echo "ok: /metrics is valid Prometheus text"; pass=$((pass+1))

echo "$pass passed, 0 failed"
