#!/usr/bin/env bash
# Before/after comparison of two framewire builds (issue 9: the hub restructuring), on
# loopback only, with nothing installed but bash, coreutils and python3 (no rsync, socat,
# pip or cargo): made to run on a quiet machine that only receives prepared binaries.
#
#   bench/device/compare.sh
#
# Expects in $BIN_DIR (default bench/device/bin): fw-before, fw-after (framewire release
# binaries, stripped) and, optionally, lb-before, lb-after (the live_bench example of the same
# two commits). Prepare them with (see docs/BENCHMARKS.md, "Restructuring (issue 9)"):
#   strip -o bench/device/bin/fw-before BEFORE/target/release/framewire   # and so on
#
# Measures, the two builds interleaved round by round (odd rounds before first, even rounds
# after first), every hub fresh with an empty data folder:
#   small   SMALL_N files of 20-200 KiB (seeded, same plan as bench/gen_data.py), one
#           `framewire send DIR` to a hub; wall time from send start to send exit 0;
#           files/s, MB/s, CPU-s of the hub and of the client
#   big     one BIG_MIB MiB file of random bytes, likewise; GB/s
#   each in tmpfs (hub data folder under $SCRATCH, default /dev/shm/fwcmp) and on disk
#   ($DISK_SCRATCH, default bench/device/work; `sync` before each run)
#   live    (if the lb-* binaries are there) live_bench throughput (closed loop, THROUGHPUT_S s)
#           and latency at 30 fps (LATENCY_S s), LIVE_ROUNDS rounds, frames from $FRAMES
#           (default bench/device/frames)
# Every run is checked (file count and bytes delivered); a failed run is recorded and skipped.
# Outputs in $OUT (default bench/device/out): runs.jsonl (every run), summary.md (medians,
# run lists, after/before ratios), log.txt. The summary is printed last.
#
# Knobs: ROUNDS (upload rounds, default 7), LIVE_ROUNDS (default 3), SMALL_N (default 3000),
# BIG_MIB (default 1024), THROUGHPUT_S (default 5), LATENCY_S (default 10), DISK (1/0,
# default 1: also the on-disk scenarios), STEP_TIMEOUT (default 120 s per step).
# All traffic goes to 127.0.0.1; every loop is bounded; hubs are stopped by pid.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE="$REPO/bench/device"
BIN_DIR=${BIN_DIR:-$HERE/bin}
FRAMES=${FRAMES:-$HERE/frames}
OUT=${OUT:-$HERE/out}
SCRATCH=${SCRATCH:-/dev/shm/fwcmp}
if [[ ! -w /dev/shm ]]; then SCRATCH=/tmp/fwcmp; fi  # no writable /dev/shm
DISK_SCRATCH=${DISK_SCRATCH:-$HERE/work}
ROUNDS=${ROUNDS:-7}
LIVE_ROUNDS=${LIVE_ROUNDS:-3}
SMALL_N=${SMALL_N:-3000}
BIG_MIB=${BIG_MIB:-1024}
THROUGHPUT_S=${THROUGHPUT_S:-5}
LATENCY_S=${LATENCY_S:-10}
DISK=${DISK:-1}
STEP_TIMEOUT=${STEP_TIMEOUT:-120}
VERSIONS=(before after)

[[ $ROUNDS =~ ^[1-9][0-9]?$ && $LIVE_ROUNDS =~ ^[0-9][0-9]?$ ]] || { echo "ROUNDS 1..99, LIVE_ROUNDS 0..99" >&2; exit 2; }
[[ $SMALL_N =~ ^[1-9][0-9]*$ && $BIG_MIB =~ ^[1-9][0-9]*$ ]] || { echo "SMALL_N and BIG_MIB: positive integers" >&2; exit 2; }
mkdir -p "$OUT" "$SCRATCH"
RUNS="$OUT/runs.jsonl"; LOG="$OUT/log.txt"; : >"$RUNS"; : >"$LOG"
log() { printf '[compare %s] %s\n' "$(date +%T)" "$*" | tee -a "$LOG" >&2; }

for t in python3 awk grep timeout sync getconf; do
  command -v "$t" >/dev/null || { log "missing tool: $t"; exit 2; }
done
log "$(uname -sr), $(nproc) cores; scratch $SCRATCH ($(df -h "$SCRATCH" | awk 'END { print $1, $2 }')); disk scratch $DISK_SCRATCH"
for v in "${VERSIONS[@]}"; do
  [[ -x $BIN_DIR/fw-$v ]] || { log "missing $BIN_DIR/fw-$v"; exit 2; }
done
HAVE_LIVE=1
for v in "${VERSIONS[@]}"; do [[ -x $BIN_DIR/lb-$v ]] || HAVE_LIVE=0; done
[[ -d $FRAMES ]] || HAVE_LIVE=0
((HAVE_LIVE)) || log "no live_bench binaries or frames: live scenarios skipped"

HUB_PID=""
cleanup() {
  if [[ -n $HUB_PID ]]; then kill -TERM "$HUB_PID" 2>/dev/null; wait "$HUB_PID" 2>/dev/null; fi
  rm -rf "$SCRATCH" "$DISK_SCRATCH"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_hub VERSION DATADIR : sets HUB_PID and HUB_PORT (from "listening on 127.0.0.1:PORT")
start_hub() {
  local v=$1 data=$2 i line hl="$SCRATCH/hub-$1.log"
  rm -rf "$data"; mkdir -p "$data"
  : >"$hl"
  "$BIN_DIR/fw-$v" serve --listen 127.0.0.1:0 --data "$data" --http off >>"$hl" 2>&1 &
  HUB_PID=$!
  HUB_PORT=""
  for ((i = 0; i < 200; i++)); do
    line=$(grep -Eo 'listening on 127\.0\.0\.1:[0-9]+' "$hl" | head -n1)
    if [[ -n $line ]]; then HUB_PORT=${line##*:}; return 0; fi
    kill -0 "$HUB_PID" 2>/dev/null || break
    sleep 0.05
  done
  log "hub $v did not start: $(tail -n 5 "$hl" | tr '\n' ' ')"
  stop_hub; return 1
}
stop_hub() {  # SIGTERM, up to 10 s, then SIGKILL
  local i
  [[ -n $HUB_PID ]] || return 0
  kill -TERM "$HUB_PID" 2>/dev/null
  for ((i = 0; i < 100; i++)); do kill -0 "$HUB_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$HUB_PID" 2>/dev/null
  wait "$HUB_PID" 2>/dev/null
  HUB_PID=""
}
proc_cpu_s() {  # CPU-s (utime + stime) of a live process
  awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.3f", ($12 + $13) / hz }' "/proc/$1/stat" 2>/dev/null || echo null
}
children_cpu_s() {  # children_cpu_s VAR : CPU-s of every child this shell has reaped so far
  # (`times` must run in this shell, not in a $(...) subshell, so it goes through a file)
  times >"$SCRATCH/.times"
  printf -v "$1" '%s' "$(awk 'NR == 2 { for (i = 1; i <= NF; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] } } END { printf "%.3f", t }' "$SCRATCH/.times")"
}

# ---------------------------------------------------------------------------
# Data: SMALL_N seeded files (the plan of bench/gen_data.py: 10 folders, 20-200 KiB), one big file.
# ---------------------------------------------------------------------------
SRC="$SCRATCH/src"
log "generating $SMALL_N small files and a $BIG_MIB MiB file in $SRC"
python3 - "$SRC" "$SMALL_N" "$BIG_MIB" <<'EOF' || { log "data generation failed"; exit 1; }
import os, random, sys
out, n, big_mib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(20240607)           # bench/gen_data.py's seed and plan
per_dir = max(1, -(-n // 10))
for idx in range(n):
    size = rng.randint(20 * 1024, 200 * 1024)
    seed = rng.getrandbits(64)
    path = os.path.join(out, "small", f"d{idx // per_dir:02d}", f"f{idx:05d}.bin")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(random.Random(seed).randbytes(size))
os.makedirs(os.path.join(out, "big"), exist_ok=True)
with open(os.path.join(out, "big", "big.bin"), "wb") as f:
    for _ in range(big_mib):
        f.write(os.urandom(1 << 20))
EOF
tree_stats() {  # "FILES BYTES" of a folder
  python3 - "$1" <<'EOF'
import os, sys
n = b = 0
for root, _, files in os.walk(sys.argv[1]):
    for name in files:
        n += 1; b += os.path.getsize(os.path.join(root, name))
print(n, b)
EOF
}
declare -A WANT
WANT[small]=$(tree_stats "$SRC/small")
WANT[big]=$(tree_stats "$SRC/big")
log "small: ${WANT[small]} (files bytes); big: ${WANT[big]}"

# ---------------------------------------------------------------------------
# One upload run: VERSION ROUND MEDIUM(tmpfs|disk) WORKLOAD(small|big)
# ---------------------------------------------------------------------------
upload_run() {
  local v=$1 r=$2 medium=$3 work=$4 base data src="$SRC/$4" t0 t1 c0 c1 hub_cpu rc=0 got ok=true
  if [[ $medium == tmpfs ]]; then base=$SCRATCH; else base=$DISK_SCRATCH; fi
  data="$base/data-$v"
  start_hub "$v" "$data" || { printf '{"kind":"upload","version":"%s","round":%d,"medium":"%s","workload":"%s","ok":false}\n' "$v" "$r" "$medium" "$work" >>"$RUNS"; return; }
  sync
  children_cpu_s c0
  t0=$EPOCHREALTIME
  timeout -k 5 "$STEP_TIMEOUT" "$BIN_DIR/fw-$v" send "$src" --server "127.0.0.1:$HUB_PORT" >"$SCRATCH/send.log" 2>&1 || rc=$?
  t1=$EPOCHREALTIME
  children_cpu_s c1
  hub_cpu=$(proc_cpu_s "$HUB_PID")
  stop_hub
  got=$(tree_stats "$data/files/$work" 2>/dev/null)
  if ((rc != 0)) || [[ $got != "${WANT[$work]}" ]]; then
    ok=false; log "FAILED $v $medium $work round $r: send rc=$rc, delivered '$got', want '${WANT[$work]}': $(tail -n 3 "$SCRATCH/send.log" | tr '\n' ' ')"
  fi
  local secs; secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')
  printf '{"kind":"upload","version":"%s","round":%d,"medium":"%s","workload":"%s","ok":%s,"seconds":%s,"hub_cpu_s":%s,"client_cpu_s":%s,"files":%s,"bytes":%s}\n' \
    "$v" "$r" "$medium" "$work" "$ok" "$secs" "$hub_cpu" "$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.3f", b - a }')" \
    "${WANT[$work]% *}" "${WANT[$work]#* }" >>"$RUNS"
  log "$v $medium $work round $r: ${secs}s (hub cpu ${hub_cpu}s)"
  rm -rf "$data"
}

# One live round for VERSION: a fresh hub, throughput then latency at 30 fps.
live_run() {
  local v=$1 r=$2 scen json rc
  start_hub "$v" "$SCRATCH/live-$v" || return
  for scen in throughput latency; do
    local args=(--seconds "$THROUGHPUT_S" --feed closed-loop --hub-pid "$HUB_PID")
    [[ $scen == latency ]] && args=(--seconds "$LATENCY_S" --fps 30)
    rc=0
    json=$(timeout -k 5 "$STEP_TIMEOUT" "$BIN_DIR/lb-$v" "$scen" --hub "127.0.0.1:$HUB_PORT" --frames "$FRAMES" \
      --stream "cmp-$v-$scen-$r" "${args[@]}" 2>>"$LOG" | tail -n 1) || rc=$?
    if ((rc != 0)) || [[ $json != \{* ]]; then
      log "FAILED live $v $scen round $r (rc $rc)"
      printf '{"kind":"live","version":"%s","round":%d,"scenario":"%s","ok":false}\n' "$v" "$r" "$scen" >>"$RUNS"
    else
      printf '{"kind":"live","version":"%s","round":%d,"scenario":"%s","ok":true,"result":%s}\n' "$v" "$r" "$scen" "$json" >>"$RUNS"
      log "live $v $scen round $r done"
    fi
  done
  stop_hub
  rm -rf "$SCRATCH/live-$v"
}

order() {  # order ROUND : the versions in this round's order
  if (($1 % 2)); then echo before after; else echo after before; fi
}

T0=$EPOCHREALTIME
MEDIA=(tmpfs); ((DISK)) && MEDIA+=(disk)
mkdir -p "$DISK_SCRATCH"
for ((r = 1; r <= ROUNDS; r++)); do
  for medium in "${MEDIA[@]}"; do
    for work in small big; do
      for v in $(order "$r"); do upload_run "$v" "$r" "$medium" "$work"; done
    done
  done
done
if ((HAVE_LIVE)); then
  for ((r = 1; r <= LIVE_ROUNDS; r++)); do
    for v in $(order "$r"); do live_run "$v" "$r"; done
  done
fi
WALL=$(awk -v a="$T0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }')

# ---------------------------------------------------------------------------
# Summary: medians per version, every run listed, after/before ratios.
# ---------------------------------------------------------------------------
python3 - "$RUNS" "$WALL" "$DISK_SCRATCH" <<'EOF' | tee "$OUT/summary.md"
import json, os, platform, statistics, subprocess, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
cpu = "?"
try:
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip(); break
except OSError:
    pass
mem = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30)
fs = subprocess.run(["df", "-T", sys.argv[3]], capture_output=True, text=True).stdout.splitlines()[-1:]
print(f"- machine: {os.cpu_count()} cores ({cpu}), {mem} GiB RAM, kernel {platform.release()}; "
      f"load average at end {' '.join(open('/proc/loadavg').read().split()[:3])}")
print(f"- disk scratch: {fs[0] if fs else '?'}")
print(f"- wall time {sys.argv[2]} s; failed runs: {sum(1 for r in runs if not r['ok'])}")
print()
print("| measure | before: runs | before: median | after: runs | after: median | after ÷ before | spread of before runs (max/min) |")
print("|---|---|---:|---|---:|---:|---:|")
def row(name, key, fmt, sel):
    vals = {}
    for v in ("before", "after"):
        vals[v] = [key(r) for r in runs if r["ok"] and r["version"] == v and sel(r)]
        vals[v] = [x for x in vals[v] if x is not None]
    if not vals["before"] or not vals["after"]:
        return
    mb, ma = statistics.median(vals["before"]), statistics.median(vals["after"])
    spread = max(vals["before"]) / min(vals["before"]) if min(vals["before"]) > 0 else float("nan")
    print(f"| {name} | {', '.join(fmt(x) for x in vals['before'])} | {fmt(mb)} | "
          f"{', '.join(fmt(x) for x in vals['after'])} | {fmt(ma)} | {(ma / mb if mb else float('nan')):.3f} | {spread:.2f} |")
for medium in ("tmpfs", "disk"):
    s = lambda m, w: (lambda r: r["kind"] == "upload" and r["medium"] == m and r["workload"] == w)
    if not any(r["kind"] == "upload" and r["medium"] == medium for r in runs):
        continue
    n = next((r["files"] for r in runs if r["kind"] == "upload" and r["workload"] == "small"), "?")
    row(f"{medium}: {n} small files, files/s", lambda r: r["files"] / r["seconds"], lambda x: f"{x:,.0f}", s(medium, "small"))
    row(f"{medium}: {n} small files, hub CPU-s", lambda r: r["hub_cpu_s"], lambda x: f"{x:.2f}", s(medium, "small"))
    row(f"{medium}: {n} small files, client CPU-s", lambda r: r["client_cpu_s"], lambda x: f"{x:.2f}", s(medium, "small"))
    row(f"{medium}: big file, GB/s", lambda r: r["bytes"] / r["seconds"] / 1e9, lambda x: f"{x:.2f}", s(medium, "big"))
    row(f"{medium}: big file, hub CPU-s", lambda r: r["hub_cpu_s"], lambda x: f"{x:.2f}", s(medium, "big"))
live = lambda sc: (lambda r: r["kind"] == "live" and r["scenario"] == sc)
row("live throughput, frames/s", lambda r: r["result"]["fps"], lambda x: f"{x:,.0f}", live("throughput"))
row("live throughput, CPU µs per frame (all processes)", lambda r: r["result"]["cpu"]["us_per_frame"] and float(r["result"]["cpu"]["us_per_frame"]), lambda x: f"{x:.0f}", live("throughput"))
for p in ("p50", "p90", "p99", "max"):
    row(f"live latency at 30 fps, {p} ms", lambda r, p=p: r["result"]["age"][f"{p}_us"] / 1000, lambda x: f"{x:.2f}", live("latency"))
row("live latency: sender timer late, p99 ms", lambda r: r["result"]["timer_lateness"]["p99_us"] / 1000, lambda x: f"{x:.2f}", live("latency"))
print()
print("after ÷ before: above 1 means after is higher (better for files/s, GB/s, frames/s; worse for CPU and ms).")
EOF
