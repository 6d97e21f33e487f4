#!/usr/bin/env bash
# The seeds' own clients (tests/seeds/*.py, Python 3 ports) against a real hub ($FRAMEWIRE_BIN)
# with the legacy doors: what each sent must be found where README.md's table says.
set -euo pipefail
BIN=${FRAMEWIRE_BIN:?set FRAMEWIRE_BIN to the framewire binary}
here=$(cd "$(dirname "$0")" && pwd)
frames=$here/../data/frames-1080p
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; echo "--- hub log"; cat "$work/hub.log"; exit 1; }
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
P=$(port); P0=$(port); P1=$(port); P2=$(port); P3=$(port); P4=$(port); PU=$(port)
export SEED_HOST=127.0.0.1
"$BIN" serve --data "$work/data" --listen 127.0.0.1:$P --http off --udp 127.0.0.1:$PU \
  --legacy seed000-image=127.0.0.1:$P0 \
  --legacy seed001-stream:stream=cam1=127.0.0.1:$P1 \
  --legacy seed002-control:device=cam=127.0.0.1:$P2 \
  --legacy seed003-batch=127.0.0.1:$P3 \
  --legacy seed004-stm32=127.0.0.1:$P4 >"$work/hub.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q "legacy seed004" "$work/hub.log" && break; sleep 0.1; done
grep -q "legacy seed004" "$work/hub.log" || fail "the hub did not start"
files=$work/data/files

echo "== seed 000: image + timestamp"
SEED_PORT=$P0 SEED_IMAGE=$frames/f0001.jpg timeout 30 python3 "$here/seed000_client.py"
for _ in $(seq 100); do ls "$files"/seed000/127.0.0.1/*.jpg >/dev/null 2>&1 && break; sleep 0.1; done
cmp "$files"/seed000/127.0.0.1/*.jpg "$frames/f0001.jpg" || fail "seed 000: stored bytes differ"
ls "$files"/seed000/127.0.0.1/ | grep -qE "^[0-9]{8}-[0-9]{6}\.[0-9]{6}-[0-9]+\.jpg$" || fail "seed 000: name"

echo "== seed 003: batch upload, names kept"
mkdir "$work/batch"
for i in 2 3 4; do cp "$frames/f000$i.jpg" "$work/batch/$(printf '%032d' $i).jpg"; done
SEED_PORT=$P3 SEED_DIR=$work/batch timeout 60 python3 "$here/seed003_batch.py"
for i in 2 3 4; do
  f=$files/seed003/$(printf '%032d' $i).jpg
  for _ in $(seq 100); do [ -f "$f" ] && break; sleep 0.1; done
  cmp "$f" "$frames/f000$i.jpg" || fail "seed 003: $f differs"
done

echo "== seed 003: UDP text"
printf 'door opened\nexit\n' | SEED_PORT=$PU timeout 10 python3 "$here/seed003_udp.py" >/dev/null
for _ in $(seq 50); do grep -q "from=udp@127.0.0.1 text=door opened" "$work/hub.log" && break; sleep 0.1; done
grep -q "from=udp@127.0.0.1 text=door opened" "$work/hub.log" || fail "seed 003 UDP: no message"

echo "== seed 004: STM32 command and file"
SEED_PORT=$P4 SEED_IMAGE=$frames/f0005.jpg timeout 30 python3 "$here/seed004_stm32.py"
for _ in $(seq 100); do ls "$files"/seed004/127.0.0.1/*.jpg >/dev/null 2>&1 && break; sleep 0.1; done
cmp "$files"/seed004/127.0.0.1/*.jpg "$frames/f0005.jpg" || fail "seed 004: stored bytes differ"
grep -q "from=seed004-stm32@127.0.0.1 text=weeding" "$work/hub.log" || fail "seed 004: the c text"

echo "== seed 001: camera frames, watched"
timeout 60 "$BIN" watch cam1 --server 127.0.0.1:$P --frames 3 --out "$work/watch" -q &
watch=$!
PYTHONPATH=$here/standins SEED_PORT=$P1 SEED_FRAMES=$frames python3 "$here/seed001_client.py" >"$work/seed001.log" 2>&1 &
pids+=($!)
wait $watch || fail "seed 001: watch did not get 3 frames"
n=0
for f in "$work"/watch/*.jpg; do
  for s in "$frames"/*.jpg; do cmp -s "$f" "$s" && { n=$((n+1)); break; }; done
done
[ "$n" -ge 3 ] || fail "seed 001: $n of the watched frames are the camera's"
grep -q "^1$" "$work/seed001.log" || fail "seed 001: the client was never answered 1"

echo "== seed 002: control process, a real framewire stream device"
"$BIN" stream --server 127.0.0.1:$P --name cam --fps 5 --size 320x240 -q >"$work/cam.log" 2>&1 &
cam=$!
pids+=($cam)
sleep 2 # the camera connects and registers as device cam
printf 'c\nexit\n' | SEED_PORT=$P2 timeout 30 python3 "$here/seed002_control.py" >"$work/control.out"
grep -q "Received" "$work/control.out" || { cat "$work/control.out"; fail "seed 002: c not answered Received"; }
ls -R "$files" | grep -vE "seed00|^$|:$" | grep -qE "\.jpg$" || fail "seed 002: no picture stored"
for _ in $(seq 50); do kill -0 $cam 2>/dev/null || break; sleep 0.1; done
kill -0 $cam 2>/dev/null && fail "seed 002: exit did not stop the camera"
echo "seeds: all passed"
