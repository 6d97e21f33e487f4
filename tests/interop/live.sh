#!/usr/bin/env bash
# ffmpeg interop of the live-video commands, against a hub of its own on 127.0.0.1:0:
#   1. framewire watch cam --mjpeg - | ffprobe -f mjpeg -i -      (ffprobe decodes every frame)
#   2. ffmpeg ... -f mjpeg - | framewire stream --name x --source mjpeg:-   (as fast as ffmpeg goes)
#   3. the same paced by ffmpeg (-re), watched frame by frame
#
#   tests/interop/live.sh
#
# Environment:
#   FRAMEWIRE_BIN   the framewire binary (default: target/debug/framewire, built if missing)
# Installs ffmpeg with apt-get if it is missing (as root). Every step is bounded with `timeout`.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)

if ! command -v ffmpeg >/dev/null || ! command -v ffprobe >/dev/null; then
    if [[ $(id -u) -ne 0 ]]; then
        echo "live.sh: ffmpeg is missing; install it (apt-get install ffmpeg) or run as root" >&2
        exit 1
    fi
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y ffmpeg
fi

if [[ -z ${FRAMEWIRE_BIN:-} ]]; then
    FRAMEWIRE_BIN="$root/target/debug/framewire"
    (cd "$root" && cargo build -q -p framewire)
fi
bin=$FRAMEWIRE_BIN

work=$(mktemp -d "${TMPDIR:-/tmp}/framewire-interop.XXXXXX")
pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() {
    echo "FAIL: $*" >&2
    for log in "$work"/*.log; do
        echo "--- $(basename "$log")" >&2
        tail -n 20 "$log" >&2
    done
    exit 1
}

# Waits (at most $2 seconds) until file $1 contains $3.
wait_for() {
    local file=$1 secs=$2 what=$3
    for _ in $(seq $((secs * 10))); do
        grep -q -- "$what" "$file" 2>/dev/null && return 0
        sleep 0.1
    done
    fail "no '$what' in $file within $secs s"
}

# --- the hub
"$bin" serve --listen 127.0.0.1:0 --http off --data "$work/data" 2>"$work/hub.log" &
pids+=($!)
wait_for "$work/hub.log" 10 "listening on 127.0.0.1:"
addr=$(grep -oE 'listening on 127\.0\.0\.1:[0-9]+' "$work/hub.log" | head -n1 | sed 's/^listening on //')
export FRAMEWIRE_SERVER=$addr
echo "hub on $addr"

# --- 1. watch → ffprobe: a player reads our MJPEG stream, every frame decodes
"$bin" --name cam stream --size 320x240 --fps 20 2>"$work/cam.log" &
pids+=($!)
for _ in $(seq 100); do
    timeout 5 "$bin" cmd cam status >/dev/null 2>&1 && break
    sleep 0.1
done
timeout 60 "$bin" watch cam --mjpeg - --frames 20 2>"$work/watch-pipe.log" |
    timeout 60 ffprobe -v error -f mjpeg -i - -count_frames \
        -show_entries stream=codec_name,width,height,nb_read_frames -of default=noprint_wrappers=1 \
        >"$work/probe.txt" || fail "watch | ffprobe failed"
cat "$work/probe.txt"
grep -qx 'codec_name=mjpeg' "$work/probe.txt" || fail "ffprobe does not see mjpeg"
grep -qx 'width=320' "$work/probe.txt" || fail "ffprobe: wrong width"
grep -qx 'height=240' "$work/probe.txt" || fail "ffprobe: wrong height"
grep -qx 'nb_read_frames=20' "$work/probe.txt" || fail "ffprobe did not decode 20 frames"
echo "ok 1: watch --mjpeg - | ffprobe: 20 mjpeg frames, 320x240"

# A player that stops reading early ends the watcher quietly (EPIPE → exit 0).
timeout 30 "$bin" watch cam --mjpeg - 2>"$work/watch-epipe.log" | head -c 1000 >/dev/null ||
    fail "watch did not end quietly when its reader went away"
echo "ok 1b: watch ends with exit 0 when the player closes the pipe"

# --- 2. ffmpeg → stream mjpeg:-, as fast as ffmpeg writes
mkdir -p "$work/x"
timeout 60 "$bin" watch x --out "$work/x" --stats >"$work/watch-x.log" 2>&1 &
pids+=($!)
wait_for "$work/watch-x.log" 10 "waiting for frames"
timeout 60 ffmpeg -v error -f lavfi -i testsrc2=size=320x240:rate=10 -frames:v 20 -f mjpeg - |
    timeout 60 "$bin" stream --name x --source mjpeg:- 2>"$work/stream-x.log" ||
    fail "ffmpeg | framewire stream failed"
grep -q 'published 20 frames' "$work/stream-x.log" || fail "the stream did not publish 20 frames"
for _ in $(seq 100); do
    [[ -n $(ls "$work/x") ]] && break
    sleep 0.1
done
first=$(ls "$work/x" | head -n1)
[[ -n $first ]] || fail "the watcher received no frame of x"
ffprobe -v error -show_entries stream=codec_name,width,height -of default=noprint_wrappers=1 \
    "$work/x/$first" >"$work/probe-x.txt"
grep -qx 'width=320' "$work/probe-x.txt" || fail "received frame is not 320 wide"
grep -qx 'codec_name=mjpeg' "$work/probe-x.txt" || fail "received frame is not a JPEG"
echo "ok 2: ffmpeg | stream --source mjpeg:-: 20 frames published, $(ls "$work/x" | wc -l) received"

# --- 3. the same, paced in real time by ffmpeg: the watcher sees nearly every frame
timeout 60 "$bin" watch y --out "$work/y" --frames 15 --stats >"$work/watch-y.log" 2>&1 &
watch_y=$!
pids+=("$watch_y")
wait_for "$work/watch-y.log" 10 "waiting for frames"
timeout 60 ffmpeg -v error -re -f lavfi -i testsrc2=size=320x240:rate=10 -frames:v 20 -f mjpeg - |
    timeout 60 "$bin" stream --name y --source mjpeg:- 2>"$work/stream-y.log" ||
    fail "ffmpeg -re | framewire stream failed"
wait "$watch_y" || fail "the watcher of y did not get 15 of 20 frames"
[[ $(ls "$work/y" | wc -l) -eq 15 ]] || fail "expected 15 saved frames of y"
echo "ok 3: ffmpeg -re | stream --source mjpeg:-: watcher got 15 of 20 frames"

echo "interop: all passed"
