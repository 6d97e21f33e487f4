#!/usr/bin/env bash
# Live-video benchmark (issue 3): framewire vs ImageZMQ, on loopback only.
#
#   bench/live.sh [--runs N] [--no-build] [--wait-idle SECONDS] [--rt]
#
# Scenarios (see docs/BENCHMARKS.md, "Live video (issue 3)"), each run N times
# (default 3), the two systems interleaved run by run:
#   throughput  the 39 1080p JPEGs in a loop, as fast as the pipeline goes:
#               framewire publisher -> hub -> subscriber (two hops; the
#               publisher is handed a new frame each time the subscriber gets
#               one, two in flight), vs ImageZMQ REQ/REP ImageSender ->
#               ImageHub (one hop; each send waits for the reply)
#   latency     30 fps, one fast receiver, age of every frame (~300 frames)
#   slow        60 fps, a receiver sleeping 100 ms per frame, (time, age) per
#               frame for 6 s, a fast receiver alongside; ImageZMQ in PUB/SUB
# Raw results and the summary go to bench/results/live-latest.json, the table
# to stdout and bench/results/live-latest.md, the chart to
# docs/live-frame-age.svg. Logs: bench/work/live/.
#
# --wait-idle S: first wait (at most S seconds) for 5 quiet seconds, in which
# everything together used under 10% of one core. On a shared 2-core machine a
# build next door moves every figure here (see "Noise" in docs/BENCHMARKS.md).
#
# --rt: also run the latency scenario with every process involved (hub,
# publisher, subscribers, ImageZMQ's sender and hub) under SCHED_FIFO priority
# 1 (`chrt -f 1`, needs root), so neighbours cannot delay a wake-up: what the
# tail looks like on a quiet machine. A diagnostic, not a goal; adds ~22 s/run.
#
# Environment knobs:
#   LIVE_FRAMES   folder of JPEG frames (default <repo>/../shared/data/frames-1080p)
#   FW_BIN        framewire binary (default target/release/framewire)
#   BENCH_BIN     live_bench example binary (default target/release/examples/live_bench)
#                 Setting either skips the cargo build.
#   STEP_TIMEOUT  seconds any one measurement may take before it is killed (default 60)
#
# All traffic goes to 127.0.0.1 (ImageZMQ's PUB is bound to 127.0.0.1 rather
# than its usual tcp://*). Every loop is bounded; every background process runs
# under `timeout`, is tracked by pid and stopped by the EXIT trap.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$REPO/bench"

RUNS=3
BUILD=1
WAIT_IDLE=0
RT=0
while (($#)); do
  case "$1" in
    --runs) RUNS=${2:?--runs needs a number}; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --wait-idle) WAIT_IDLE=${2:?--wait-idle needs seconds}; shift 2 ;;
    --rt) RT=1; shift ;;
    -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "unknown argument: $1 (try --help)" >&2; exit 2 ;;
  esac
done
[[ $RUNS =~ ^[1-9]$ ]] || { echo "--runs must be 1..9" >&2; exit 2; }
[[ $WAIT_IDLE =~ ^[0-9]+$ ]] || { echo "--wait-idle needs whole seconds" >&2; exit 2; }

FRAMES=${LIVE_FRAMES:-$REPO/../shared/data/frames-1080p}
STEP_TIMEOUT=${STEP_TIMEOUT:-60}
WORK="$BENCH/work/live"
RESULTS_JSON="$BENCH/results/live-latest.json"
RESULTS_MD="$BENCH/results/live-latest.md"
SVG="$REPO/docs/live-frame-age.svg"
RAW="$WORK/raw.jsonl"

# Scenario lengths, seconds (the same for both systems).
THROUGHPUT_S=5
LATENCY_S=10
SLOW_S=6

log() { printf '[live.sh %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# The frames first: without them nothing else is worth setting up.
frames_help="the benchmark replays 1920x1080 camera JPEGs: those of shared/data/frames-1080p \
beside the repository checkout (the project's shared data), or of the folder in LIVE_FRAMES. \
Without them, make a synthetic stand-in (figures will differ from camera frames) with: \
cargo run -p framewire-testkit --example write_frames -- --sample DIR; then LIVE_FRAMES=DIR"
[[ -d $FRAMES ]] || die "no frames folder at $FRAMES: $frames_help"
N_FRAMES=$(find "$FRAMES" -maxdepth 1 -iname '*.jpg' | wc -l)
((N_FRAMES > 0)) || die "no .jpg files in $FRAMES: $frames_help"

# ---------------------------------------------------------------------------
# Background processes: started under `timeout` (a backstop if this script is
# killed without running its trap), tracked by pid, stopped by pid.
# ---------------------------------------------------------------------------
BG_PIDS=()
HUB_DATA=""

forget_pid() {
  local p keep=()
  for p in "${BG_PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
  BG_PIDS=("${keep[@]}")
}

stop_bg() {  # stop_bg PID : SIGTERM, wait up to 10 s, then SIGKILL
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  forget_pid "$pid"
}

cleanup() {
  local pid
  for pid in "${BG_PIDS[@]}"; do stop_bg "$pid"; done
  [[ -n $HUB_DATA ]] && rm -rf "$HUB_DATA"
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# run_step LOG CMD... : one measurement, bounded by STEP_TIMEOUT; its stdout
# (one JSON object) goes to LOG.out, its stderr to LOG.err. Run in the
# background and waited for, so a signal reaches the trap at once.
run_step() {
  local lg=$1 rc=0; shift
  timeout -k 5 "$STEP_TIMEOUT" "$@" >"$lg.out" 2>"$lg.err" &
  local pid=$!
  BG_PIDS+=("$pid")
  wait "$pid" || rc=$?
  forget_pid "$pid"
  if ((rc != 0)); then
    tail -n 20 "$lg.err" >&2
    die "step failed (exit $rc): $* — see $lg.err"
  fi
}

# ---------------------------------------------------------------------------
# Setup
# ---------------------------------------------------------------------------
for t in python3 timeout awk; do command -v "$t" >/dev/null || die "missing tool: $t"; done
if ! python3 -c 'import imagezmq, zmq, numpy' 2>/dev/null; then
  log "installing the ImageZMQ peer: pip install imagezmq pyzmq numpy"
  python3 -m pip install --quiet imagezmq pyzmq numpy >&2 || die "pip install failed"
fi
if ((RT)) && ! { command -v chrt >/dev/null && chrt -f 1 true 2>/dev/null; }; then
  log "WARNING: chrt -f 1 is not permitted here (root needed); --rt ignored"
  RT=0
fi

FW_BIN=${FW_BIN:-}
BENCH_BIN=${BENCH_BIN:-}
if [[ -z $FW_BIN && -z $BENCH_BIN && $BUILD == 1 ]]; then
  log "building framewire and the live_bench example (release)"
  (cd "$REPO" && cargo build --release -p framewire && cargo build --release -p framewire-client --example live_bench) >&2 ||
    die "cargo build failed"
fi
FW_BIN=${FW_BIN:-$REPO/target/release/framewire}
BENCH_BIN=${BENCH_BIN:-$REPO/target/release/examples/live_bench}
[[ -x $FW_BIN ]] || die "framewire binary not found at $FW_BIN"
[[ -x $BENCH_BIN ]] || die "live_bench not found at $BENCH_BIN"

mkdir -p "$WORK" "$(dirname "$RESULTS_JSON")"
: >"$RAW"

# Machine-wide busy CPU (user+nice+system) and this script's own (bash `times`
# includes every reaped child): the difference is what OTHER processes used.
busy_cpu_s() { awk -v hz="$(getconf CLK_TCK)" '/^cpu / { printf "%.2f", ($2 + $3 + $4) / hz }' /proc/stat; }
own_cpu_s() { times | awk '{ for (i = 1; i <= NF; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] } } END { printf "%.2f", t }'; }

# The hub: one for every framewire run (each run uses its own stream name).
HUB_DATA=$(mktemp -d "$WORK/hub-data.XXXXXX")
: >"$WORK/hub.log"
timeout -k 5 1800 "$FW_BIN" serve --listen 127.0.0.1:0 --data "$HUB_DATA" --http off >>"$WORK/hub.log" 2>&1 &
HUB_PID=$!
BG_PIDS+=("$HUB_PID")
PORT=""
for ((i = 0; i < 100; i++)); do
  line=$(grep -Eo 'listening on 127\.0\.0\.1:[0-9]+' "$WORK/hub.log" | head -n1 || true)
  if [[ -n $line ]]; then PORT=${line##*:}; break; fi
  kill -0 "$HUB_PID" 2>/dev/null || { cat "$WORK/hub.log" >&2; die "the hub exited before listening"; }
  sleep 0.1
done
[[ -n $PORT ]] || die "the hub did not say 'listening on 127.0.0.1:PORT' within 10 s ($WORK/hub.log)"
HUB="127.0.0.1:$PORT"
# The hub process itself (the child of `timeout`), whose CPU time live_bench reads.
FW_PID=$(pgrep -P "$HUB_PID" | head -n1 || true)
[[ -n $FW_PID ]] || die "cannot find the hub's pid"
log "hub on $HUB; frames: $N_FRAMES from $FRAMES; $RUNS runs"

if ((WAIT_IDLE > 0)); then
  log "waiting up to ${WAIT_IDLE}s for an idle machine"
  idle=0 deadline=$((SECONDS + WAIT_IDLE))
  while ((SECONDS < deadline)); do
    b0=$(busy_cpu_s); sleep 5; b1=$(busy_cpu_s)
    if awk -v a="$b0" -v b="$b1" 'BEGIN { exit !((b - a) / 5 < 0.10) }'; then idle=1; break; fi
  done
  if ((idle)); then log "machine idle, starting"; else log "WARNING: machine still busy after ${WAIT_IDLE}s, starting anyway"; fi
fi

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
BUSY_START=$(busy_cpu_s); OWN_START=$(own_cpu_s)
T_START=$EPOCHREALTIME

# measure RUN SYSTEM NAME CMD... : one step, its JSON appended to RAW as {"run":..,"result":..}
measure() {
  local run=$1 system=$2 name=$3; shift 3
  local lg="$WORK/run$run-$name"
  log "run $run of $RUNS: $name"
  run_step "$lg" "$@"
  local json
  json=$(tail -n 1 "$lg.out")
  [[ $json == \{* ]] || die "$name printed no JSON ($lg.out)"
  printf '{"run":%d,"system":"%s","name":"%s","result":%s}\n' "$run" "$system" "$name" "$json" >>"$RAW"
}

# Words put before every measured command (`chrt -f 1` for the --rt steps).
PREFIX=()
fw() {  # fw RUN NAME SCENARIO ARGS...
  local run=$1 name=$2 scen=$3; shift 3
  measure "$run" framewire "$name" "${PREFIX[@]}" "$BENCH_BIN" "$scen" --hub "$HUB" --frames "$FRAMES" \
    --stream "bench-$name-$run" "$@"
}
izmq() {  # izmq RUN NAME SCENARIO ARGS...
  local run=$1 name=$2 scen=$3; shift 3
  measure "$run" imagezmq "$name" "${PREFIX[@]}" python3 "$BENCH/live/imagezmq_bench.py" "$scen" --frames "$FRAMES" "$@"
}

for ((r = 1; r <= RUNS; r++)); do
  # Alternate who goes first, so slow drift does not always favour the same one.
  if ((r % 2)); then order=(fw izmq); else order=(izmq fw); fi
  for who in "${order[@]}"; do
    if [[ $who == fw ]]; then
      fw "$r" fw-throughput throughput --seconds "$THROUGHPUT_S" --feed closed-loop --hub-pid "$FW_PID"
    else
      izmq "$r" izmq-throughput throughput --seconds "$THROUGHPUT_S"
    fi
  done
  for who in "${order[@]}"; do
    if [[ $who == fw ]]; then fw "$r" fw-latency latency --seconds "$LATENCY_S" --fps 30
    else izmq "$r" izmq-latency latency --seconds "$LATENCY_S" --fps 30; fi
  done
  if ((RT)); then
    chrt -a -f -p 1 "$FW_PID" >/dev/null   # every hub thread; back to normal below
    PREFIX=(chrt -f 1)
    for who in "${order[@]}"; do
      if [[ $who == fw ]]; then fw "$r" fw-latency-rt latency --seconds "$LATENCY_S" --fps 30
      else izmq "$r" izmq-latency-rt latency --seconds "$LATENCY_S" --fps 30; fi
    done
    PREFIX=()
    chrt -a -o -p 0 "$FW_PID" >/dev/null
  fi
  for who in "${order[@]}"; do
    if [[ $who == fw ]]; then fw "$r" fw-slow slow --seconds "$SLOW_S" --fps 60 --sleep-ms 100
    else izmq "$r" izmq-slow slow --seconds "$SLOW_S" --fps 60 --sleep-ms 100; fi
  done
done

T_END=$EPOCHREALTIME
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
stop_bg "$HUB_PID"   # first, so its CPU time counts as ours below
WALL=$(awk -v a="$T_START" -v b="$T_END" 'BEGIN { printf "%.1f", b - a }')
OTHER_CPU=$(awk -v b0="$BUSY_START" -v b1="$(busy_cpu_s)" -v o0="$OWN_START" -v o1="$(own_cpu_s)" \
  -v t="$WALL" 'BEGIN { o = (b1 - b0) - (o1 - o0); if (o < 0) o = 0; printf "%.1f CPU-s (%.0f%% of one core on average)", o, 100 * o / t }')

# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------
META="$WORK/meta.json"
python3 - "$META" <<EOF
import json, os, platform, subprocess, sys
import imagezmq, zmq
def sh(*a):
    try: return subprocess.run(a, capture_output=True, text=True, cwd="$REPO").stdout.strip()
    except OSError: return "?"
mem_gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30)
json.dump({
    "date_utc": sh("date", "-u", "+%Y-%m-%d %H:%M UTC"),
    "machine": f"{os.cpu_count()} cores, {mem_gib} GiB RAM, kernel {platform.release()}",
    "load_start": "$LOAD_START", "load_end": "$LOAD_END",
    "other_cpu": "$OTHER_CPU",
    "wall_s": float("$WALL"),
    "runs": $RUNS,
    "rt": bool($RT),
    "frames": os.path.relpath("$FRAMES", "$REPO"),
    "frame_count": $N_FRAMES,
    "framewire": "git " + (sh("git", "describe", "--always", "--dirty") or "?"),
    "python": platform.python_version(),
    "imagezmq": imagezmq.__version__, "pyzmq": zmq.__version__, "libzmq": zmq.zmq_version(),
    "seconds": {"throughput": $THROUGHPUT_S, "latency": $LATENCY_S, "slow": $SLOW_S},
}, open(sys.argv[1], "w"), indent=1)
EOF
python3 "$BENCH/live/report.py" --raw "$RAW" --meta "$META" --json "$RESULTS_JSON" --svg "$SVG" | tee "$RESULTS_MD"
log "raw results and summary in $RESULTS_JSON, table in $RESULTS_MD, chart in $SVG; logs in $WORK"
