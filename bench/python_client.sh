#!/usr/bin/env bash
# Python client benchmark (issue 6): framewire Publisher.send_jpg vs ImageZMQ ImageSender.send_jpg,
# on loopback only.
#
#   bench/python_client.sh [--runs N] [--seconds S] [--no-build] [--wait-idle SECONDS]
#
# Sends the 1080p JPEGs of shared/data/frames-1080p in a loop, as fast as the loop goes, for S
# seconds (default 3) per measurement, N runs (default 5), the two systems interleaved run by run
# in one Python process (bench/python_client.py). Reports medians: framewire's send_jpg calls/s
# and frames delivered/s (acknowledged by the hub), ImageZMQ's frames/s (REQ/REP to an ImageHub
# bound to 127.0.0.1 that replies at once). See docs/BENCHMARKS.md, "Python client (issue 6)".
# --wait-idle waits (at most SECONDS) until the machine is quiet (other processes below 15% of a
# core over 2 s) before measuring; the table says how busy other processes were meanwhile.
#
# Installs what is missing: `pip install imagezmq pyzmq numpy`, and the framewire package
# (`pip install ./clients/python`). The measurement itself imports this tree's clients/python
# (PYTHONPATH), so an older installed copy is never what gets measured.
#
# Environment knobs:
#   LIVE_FRAMES   folder of JPEG frames (default <repo>/../shared/data/frames-1080p)
#   FW_BIN        framewire binary (default target/release/framewire; setting it skips the build)
#   STEP_TIMEOUT  seconds the whole measurement may take before it is killed (default 600)
#
# Results: the table on stdout and in bench/results/python-client-latest.md, every run in
# bench/results/python-client-latest.json, logs in bench/work/python-client/.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$REPO/bench"

RUNS=5
SECONDS_PER_RUN=3
BUILD=1
WAIT_IDLE=0
while (($#)); do
  case "$1" in
    --runs) RUNS=${2:?--runs needs a number}; shift 2 ;;
    --seconds) SECONDS_PER_RUN=${2:?--seconds needs a number}; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --wait-idle) WAIT_IDLE=${2:?--wait-idle needs seconds}; shift 2 ;;
    -h|--help) sed -n '2,28p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "unknown argument: $1 (try --help)" >&2; exit 2 ;;
  esac
done
[[ $RUNS =~ ^[1-9][0-9]?$ ]] || { echo "--runs must be 1..20" >&2; exit 2; }
[[ $WAIT_IDLE =~ ^[0-9]+$ ]] || { echo "--wait-idle takes whole seconds" >&2; exit 2; }

FRAMES=${LIVE_FRAMES:-$REPO/../shared/data/frames-1080p}
STEP_TIMEOUT=${STEP_TIMEOUT:-600}
WORK="$BENCH/work/python-client"
RESULTS_MD="$BENCH/results/python-client-latest.md"
RESULTS_JSON="$BENCH/results/python-client-latest.json"

log() { printf '[python_client.sh %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# The frames first: without them nothing else is worth setting up.
frames_help="the benchmark replays 1920x1080 camera JPEGs: those of shared/data/frames-1080p \
beside the repository checkout (the project's shared data), or of the folder in LIVE_FRAMES. \
Without them, make a synthetic stand-in (figures will differ from camera frames) with: \
cargo run -p framewire-testkit --example write_frames -- --sample DIR; then LIVE_FRAMES=DIR"
[[ -d $FRAMES ]] || die "no frames folder at $FRAMES: $frames_help"
N_FRAMES=$(find "$FRAMES" -maxdepth 1 -iname '*.jpg' | wc -l)
((N_FRAMES > 0)) || die "no .jpg files in $FRAMES: $frames_help"

# Background processes: tracked by pid, stopped by pid (SIGTERM, then SIGKILL after 10 s).
BG_PIDS=()
HUB_DATA=""
stop_bg() {
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local pid
  for pid in "${BG_PIDS[@]}"; do stop_bg "$pid"; done
  [[ -n $HUB_DATA ]] && rm -rf "$HUB_DATA"
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------------
# Setup
# ---------------------------------------------------------------------------------------------
for t in python3 timeout; do command -v "$t" >/dev/null || die "missing tool: $t"; done
if ! python3 -c 'import imagezmq, zmq, numpy' 2>/dev/null; then
  log "installing the ImageZMQ peer: pip install imagezmq pyzmq numpy"
  python3 -m pip install --quiet imagezmq pyzmq numpy >&2 || die "pip install imagezmq pyzmq numpy failed"
fi
if ! python3 -c 'import framewire' 2>/dev/null; then
  log "installing the framewire Python package: pip install ./clients/python"
  # From a copy: setuptools leaves build/ and *.egg-info next to the sources it builds.
  PKG_COPY=$(mktemp -d)
  cp -r "$REPO/clients/python/." "$PKG_COPY/"
  python3 -m pip install --quiet "$PKG_COPY" >&2 || { rm -rf "$PKG_COPY"; die "pip install ./clients/python failed"; }
  rm -rf "$PKG_COPY"
fi

FW_BIN=${FW_BIN:-}
if [[ -z $FW_BIN && $BUILD == 1 ]]; then
  log "building framewire (release)"
  (cd "$REPO" && cargo build --release -p framewire) >&2 || die "cargo build failed"
fi
FW_BIN=${FW_BIN:-$REPO/target/release/framewire}
[[ -x $FW_BIN ]] || die "framewire binary not found at $FW_BIN (build it, or set FW_BIN)"

mkdir -p "$WORK" "$(dirname "$RESULTS_MD")"

# The hub, on 127.0.0.1 with a free port.
HUB_DATA=$(mktemp -d "$WORK/hub-data.XXXXXX")
HUB_LOG="$WORK/hub.log"
: >"$HUB_LOG"
# Under `timeout`: a backstop should this script be killed without running its trap.
timeout -k 5 $((STEP_TIMEOUT + 60)) "$FW_BIN" serve --listen 127.0.0.1:0 --data "$HUB_DATA" --http off >>"$HUB_LOG" 2>&1 &
BG_PIDS+=("$!")
TIMEOUT_PID=$!
PORT=""
for _ in $(seq 1 100); do
  PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$HUB_LOG" | head -n 1)
  [[ -n $PORT ]] && break
  sleep 0.1
done
[[ -n $PORT ]] || { tail -n 20 "$HUB_LOG" >&2; die "the hub did not start (log: $HUB_LOG)"; }
# The hub's own pid (the child of `timeout`), so its CPU time is not counted as other processes'.
HUB_PID=$(ps -o pid= --ppid "$TIMEOUT_PID" 2>/dev/null | head -n 1 | tr -d ' ' || true)
log "hub on 127.0.0.1:$PORT; $N_FRAMES frames from $FRAMES; $RUNS runs of ${SECONDS_PER_RUN} s per system"

# ---------------------------------------------------------------------------------------------
# Measure
# ---------------------------------------------------------------------------------------------
busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 }' /proc/stat; }
if ((WAIT_IDLE > 0)) && [[ -r /proc/stat ]]; then
  hz=$(getconf CLK_TCK)
  deadline=$((SECONDS + WAIT_IDLE))
  while :; do
    b0=$(busy_ticks); sleep 2; b1=$(busy_ticks)
    pct=$(((b1 - b0) * 100 / (2 * hz)))
    ((pct < 15)) && { log "machine quiet (${pct}% of a core busy)"; break; }
    ((SECONDS >= deadline)) && { log "still busy after ${WAIT_IDLE} s (${pct}% of a core): measuring anyway"; break; }
  done
fi
rc=0
PYTHONPATH="$REPO/clients/python${PYTHONPATH:+:$PYTHONPATH}" \
  timeout -k 5 "$STEP_TIMEOUT" python3 "$BENCH/python_client.py" \
  --hub "127.0.0.1:$PORT" --frames "$FRAMES" --runs "$RUNS" --seconds "$SECONDS_PER_RUN" \
  --json "$RESULTS_JSON" --md "$RESULTS_MD" ${HUB_PID:+--hub-pid "$HUB_PID"} 2>"$WORK/runs.log" || rc=$?
if ((rc != 0)); then
  tail -n 30 "$WORK/runs.log" >&2
  die "the measurement failed (exit $rc); see $WORK/runs.log"
fi
log "every run: $RESULTS_JSON; table: $RESULTS_MD"
