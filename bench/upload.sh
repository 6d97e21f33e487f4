#!/usr/bin/env bash
# Upload benchmark: framewire vs its peers, on loopback only.
#
#   bench/upload.sh [--runs N] [--only tmpfs|durable] [--peers-only] [--no-build]
#                   [--wait-idle SECONDS]
#
# Scenarios (see docs/BENCHMARKS.md, "Upload (issue 2)"):
#   tmpfs    destinations under /dev/shm, so the network/protocol path is what
#            is measured, not the disk:
#              3,000 small files: framewire vs seed-article Python vs rsync daemon
#              1 GiB file:        framewire vs socat raw TCP copy
#   durable  destinations on a disk folder (default bench/work/, gitignored):
#              3,000 small files: framewire vs cp -r + one `sync -f` (ceiling)
#                                 vs rsync daemon with --fsync
#              1 GiB file:        framewire vs cp + one `sync -f` (ceiling)
# Every measurement runs N times (default 3) and the median is reported.
# The table goes to stdout and to bench/results/upload-latest.md.
#
# Environment knobs:
#   FW_BIN          framewire binary (default target/release/framewire; setting
#                   it skips the cargo build)
#   FW_SERVE_EXTRA  extra words for `framewire serve` (e.g. "--http off")
#   BENCH_DATA      input data folder        (default /dev/shm/framewire-bench/src)
#   BENCH_SHM       tmpfs scratch folder     (default /dev/shm/framewire-bench/work)
#   BENCH_DISK      disk scratch folder      (default <repo>/bench/work)
#   STEP_TIMEOUT    seconds any one step may take before it is killed (default 300)
#
# All traffic goes to 127.0.0.1. Every wait loop is bounded, every background
# process runs under `timeout` and is stopped by the EXIT trap.
set -euo pipefail
# wait -n -p (bounded waits without polling) needs bash 5.1 (Debian 12 has 5.2).
if ((BASH_VERSINFO[0] < 5 || (BASH_VERSINFO[0] == 5 && BASH_VERSINFO[1] < 1))); then
  echo "bench/upload.sh needs bash >= 5.1 (this is $BASH_VERSION)" >&2; exit 2
fi

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$REPO/bench"

RUNS=3
ONLY=all
PEERS_ONLY=0
BUILD=1
WAIT_IDLE=0
while (($#)); do
  case "$1" in
    --runs) RUNS=${2:?--runs needs a number}; shift 2 ;;
    --only) ONLY=${2:?--only needs tmpfs or durable}; shift 2 ;;
    --peers-only) PEERS_ONLY=1; shift ;;
    --no-build) BUILD=0; shift ;;
    --wait-idle) WAIT_IDLE=${2:?--wait-idle needs seconds}; shift 2 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "unknown argument: $1 (try --help)" >&2; exit 2 ;;
  esac
done
[[ $RUNS =~ ^[1-9][0-9]?$ ]] || { echo "--runs must be 1..99" >&2; exit 2; }
[[ $WAIT_IDLE =~ ^[0-9]+$ ]] || { echo "--wait-idle needs whole seconds" >&2; exit 2; }
[[ $ONLY =~ ^(all|tmpfs|durable)$ ]] || { echo "--only must be tmpfs or durable" >&2; exit 2; }

DATA=${BENCH_DATA:-/dev/shm/framewire-bench/src}
SHM_WORK=${BENCH_SHM:-/dev/shm/framewire-bench/work}
DISK_WORK=${BENCH_DISK:-$BENCH/work}
STEP_TIMEOUT=${STEP_TIMEOUT:-300}
RESULTS="$BENCH/results/upload-latest.md"
LOGS="$DISK_WORK/logs"          # per-step logs, kept for post-mortems

# ---------------------------------------------------------------------------
# framewire's command line, in ONE place: adjust here when the CLI changes.
# ---------------------------------------------------------------------------
FW_BIN_DEFAULT="$REPO/target/release/framewire"
FW_BIN=${FW_BIN:-}
read -ra FW_SERVE_EXTRA_ARR <<<"${FW_SERVE_EXTRA:-}"   # word-split on purpose
# fw_serve_cmd DATADIR      -> CMD=(hub command); it must print "listening on 127.0.0.1:PORT"
fw_serve_cmd() { CMD=("$FW_BIN" serve --listen 127.0.0.1:0 --data "$1" "${FW_SERVE_EXTRA_ARR[@]}"); }
# fw_send_cmd SRC_DIR PORT  -> CMD=(client command); exits 0 once every file is stored and durable
fw_send_cmd() { CMD=("$FW_BIN" send "$1" --server "127.0.0.1:$2"); }
# fw_stored_dir DATADIR SRC_DIR -> where the hub puts the uploaded tree
fw_stored_dir() { echo "$1/files/$(basename "$2")"; }
FW_LISTEN_RE='listening on 127\.0\.0\.1:[0-9]+'

# The article's listen(5) backlog overflows on loopback: with no reply to wait
# for, the client runs ahead of the sequential server, the accept queue fills,
# the kernel drops SYNs and the client retries after 1 s. Measured here: with
# 5, a ~1 s stall every few files (505 files in 60 s); with 128 still ~11
# stalls, 13.8 s instead of 3.9 s for the 3,000 files. That would measure a
# kernel timer, not the design, and flatter framewire, so the seed server gets
# a queue longer than the file count. See docs/BENCHMARKS.md.
SEED_BACKLOG=4096

log() { printf '[upload.sh %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------------------
# Background processes: started under `timeout` (a backstop if this script is
# killed without running its trap), tracked by pid, stopped by pid.
# ---------------------------------------------------------------------------
BG_PIDS=()
TMPDIRS=()
start_bg_log() {  # start_bg_log LOGFILE CMD... : run CMD in the background, set BG_PID
  local logf=$1; shift
  # Truncate here, synchronously: the redirection of a background job happens
  # later, in the child, and a reader polling the log for "listening on" could
  # otherwise still see the previous run's port.
  : >"$logf"
  timeout -k 5 "$((STEP_TIMEOUT * 2))" "$@" >>"$logf" 2>&1 &
  BG_PID=$!
  BG_PIDS+=("$BG_PID")
}

# Forget a reaped pid, so cleanup can never signal a recycled pid.
forget_pid() {
  local p keep=()
  for p in "${BG_PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
  BG_PIDS=("${keep[@]}")
}

# run_fg LOGFILE CMD... : a "foreground" step, bounded by STEP_TIMEOUT. It runs
# in the background and is waited for, because bash delays traps until a real
# foreground child exits; `wait` lets Ctrl-C / SIGTERM stop everything at once.
run_fg() {
  local logf=$1 rc=0; shift
  timeout "$STEP_TIMEOUT" "$@" >"$logf" 2>&1 &
  local pid=$!
  BG_PIDS+=("$pid")
  wait "$pid" || rc=$?
  forget_pid "$pid"
  return "$rc"
}

stop_bg() {  # stop_bg PID : SIGTERM, wait up to 10 s, then SIGKILL
  local pid=$1 i
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; forget_pid "$pid"; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "pid $pid ignored SIGTERM for 10 s, killing it"
    local c
    for c in $(pgrep -P "$pid" || true); do kill -KILL "$c" 2>/dev/null || true; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  forget_pid "$pid"
}

# wait_bg PID [SECONDS] : wait for a server that should exit by itself (it has
# received everything); returns its status. A `sleep` watchdog bounds the wait
# (default 60 s) without polling, so the clock stops the moment PID exits.
wait_bg() {
  local pid=$1 limit=${2:-60} rc=0 done_pid=""
  sleep "$limit" &
  local dog=$!
  BG_PIDS+=("$dog")
  wait -n -p done_pid "$pid" "$dog" || rc=$?
  if [[ $done_pid == "$dog" ]]; then
    forget_pid "$dog"
    log "pid $pid still running ${limit}s after its client finished, stopping it"
    stop_bg "$pid"
    return 124
  fi
  forget_pid "$pid"
  stop_bg "$dog"
  return "$rc"
}

cleanup() {
  local pid d
  for pid in "${BG_PIDS[@]}"; do stop_bg "$pid"; done
  for d in "${TMPDIRS[@]}"; do rm -rf "$d"; done
  # Free the tmpfs RAM and disk taken by destinations; the input data (reused
  # by the next run) and the logs stay. Only our own sub-folders are removed.
  rm -rf "$SHM_WORK/tmpfs" "$DISK_WORK/durable"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------
now() { echo "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

free_port() {  # a currently free loopback port (tiny race, fine on an idle box)
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_tcp_listen() {  # wait_tcp_listen PORT : up to 10 s, without connecting
  # (connecting would eat socat's single accept, so read the kernel's table)
  local hex i
  hex=$(printf '%04X' "$1")
  for ((i = 0; i < 200; i++)); do
    grep -q "0100007F:$hex 00000000:0000 0A" /proc/net/tcp && return 0
    sleep 0.05
  done
  die "nothing listening on 127.0.0.1:$1 after 10 s"
}

wait_listen_line() {  # wait_listen_line LOGFILE PID : print the port from "listening on 127.0.0.1:PORT"
  local logf=$1 pid=$2 i line
  for ((i = 0; i < 100; i++)); do
    line=$(grep -Eo "$FW_LISTEN_RE" "$logf" 2>/dev/null | head -n1 || true)
    if [[ -n $line ]]; then echo "${line##*:}"; return 0; fi
    kill -0 "$pid" 2>/dev/null || { tail -n 20 "$logf" >&2; die "server exited before listening ($logf)"; }
    sleep 0.1
  done
  tail -n 20 "$logf" >&2
  die "no 'listening on 127.0.0.1:PORT' line within 10 s ($logf)"
}

fresh_dir() {  # fresh_dir DIR : empty DIR, then flush so old dirty data doesn't bill the next run
  rm -rf "$1"
  mkdir -p "$1"
  sync
}

count_files() { find "$1" -type f | wc -l; }
sum_bytes() { find "$1" -type f -printf '%s\n' | awk '{ s += $1 } END { printf "%d", s }'; }

verify() {  # verify DEST_DIR SRC(dir or file) FIRST_RUN(0/1) LABEL
  local dest=$1 src=$2 deep=$3 label=$4 want_n want_b got_n got_b
  want_n=$(count_files "$src"); want_b=$(sum_bytes "$src")
  [[ -d $dest ]] || die "$label: destination $dest missing"
  got_n=$(count_files "$dest"); got_b=$(sum_bytes "$dest")
  [[ $got_n == "$want_n" && $got_b == "$want_b" ]] ||
    die "$label: delivered $got_n files / $got_b bytes, expected $want_n / $want_b (run not counted)"
  # Byte-for-byte check once per runner and workload (outside the timed window).
  if [[ $deep == 1 ]]; then
    if [[ -d $src ]]; then diff -rq "$src" "$dest" >/dev/null || die "$label: content differs from $src"
    else cmp -s "$src" "$dest/$(basename "$src")" || die "$label: content differs from $src"; fi
  fi
}

# ---------------------------------------------------------------------------
# Runners. Each does ONE timed run and stores the elapsed seconds in RUN_T.
# They run in this shell (not in $(...)) so the servers they start are in
# BG_PIDS and the EXIT trap can stop them if anything fails.
#   $1 = source (dir for small files, big/ dir or big.bin per runner)
#   $2 = scratch base for this scenario
#   $3 = 1 for the first run (deep content check)
# Untimed: clearing the destination, `sync`, starting servers, verification.
# ---------------------------------------------------------------------------
run_framewire() {
  local src=$1 base=$2 deep=$3 data="$2/fw-data" lg="$LOGS/framewire" port t0 t1 rc=0
  fresh_dir "$data"
  fw_serve_cmd "$data"
  start_bg_log "$lg-serve.log" "${CMD[@]}"; local hub=$BG_PID
  port=$(wait_listen_line "$lg-serve.log" "$hub")
  fw_send_cmd "$src" "$port"
  t0=$(now)
  run_fg "$lg-send.log" "${CMD[@]}" || rc=$?
  t1=$(now)
  stop_bg "$hub"
  ((rc == 0)) || { tail -n 20 "$lg-send.log" >&2; die "framewire send exited $rc ($lg-send.log)"; }
  verify "$(fw_stored_dir "$data" "$src")" "$src" "$deep" framewire
  RUN_T=$(elapsed "$t0" "$t1")
}

run_seed() {  # seed-article protocol: one TCP connection per file, base64, sequential
  local src=$1 dest="$2/dest" deep=$3 lg="$LOGS/seed" port n t0 t1 rc=0
  fresh_dir "$dest"
  n=$(count_files "$src")
  start_bg_log "$lg-server.log" python3 "$BENCH/seed_server.py" --port 0 --save-dir "$dest" \
    --count "$n" --backlog "$SEED_BACKLOG"
  local srv=$BG_PID
  port=$(wait_listen_line "$lg-server.log" "$srv")
  t0=$(now)
  run_fg "$lg-client.log" python3 "$BENCH/seed_uploader.py" "$src" --server "127.0.0.1:$port" || rc=$?
  # The client has no acknowledgement: the clock stops when the server has
  # written all N files and exited.
  ((rc == 0)) && { wait_bg "$srv" || rc=$?; }
  t1=$(now)
  ((rc == 0)) || { stop_bg "$srv"; die "seed upload failed ($lg-client.log, $lg-server.log)"; }
  verify "$dest" "$src" "$deep" seed-style
  RUN_T=$(elapsed "$t0" "$t1")
}

run_rsync() {  # run_rsync SRC BASE DEEP [extra rsync client args...]: rsync daemon on loopback
  local src=$1 base=$2 deep=$3; shift 3
  local dest="$base/dest" lg="$LOGS/rsync" conf port t0 t1 rc=0
  fresh_dir "$dest"
  conf=$(mktemp -d /tmp/fw-bench-rsyncd.XXXXXX); TMPDIRS+=("$conf")
  # uid/gid 0: a root-started daemon otherwise drops to "nobody" and cannot
  # write the destination; chroot off so no extra setup is needed.
  cat >"$conf/rsyncd.conf" <<EOF
pid file = $conf/rsyncd.pid
lock file = $conf/rsyncd.lock
log file = $conf/rsyncd.log
use chroot = no
[bench]
    path = $dest
    read only = no
    uid = 0
    gid = 0
EOF
  port=$(free_port)
  start_bg_log "$lg-daemon.log" rsync --daemon --no-detach --config="$conf/rsyncd.conf" \
    --port="$port" --address=127.0.0.1
  local daemon=$BG_PID
  wait_tcp_listen "$port"
  t0=$(now)
  run_fg "$lg-client.log" rsync -a "$@" "${src%/}/" "rsync://127.0.0.1:$port/bench/" || rc=$?
  # Substitute for rsync without --fsync: one group sync, timed (see RSYNC_DURABLE_ARGS).
  if ((rc == 0)) && [[ ${RSYNC_SYNC_AFTER:-0} == 1 && " $* " != *" --fsync "* ]]; then sync -f "$dest"; fi
  t1=$(now)
  stop_bg "$daemon"
  ((rc == 0)) || die "rsync exited $rc ($lg-client.log)"
  rm -rf "$conf"
  verify "$dest" "$src" "$deep" rsync
  RUN_T=$(elapsed "$t0" "$t1")
}

run_socat() {  # raw TCP byte pipe of one file: the loopback ceiling for a single stream
  local src=$1 base=$2 deep=$3 dest="$2/dest" lg="$LOGS/socat" port t0 t1 rc=0
  fresh_dir "$dest"
  port=$(free_port)
  start_bg_log "$lg-recv.log" socat -b 1048576 -u \
    "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr" "OPEN:$dest/$(basename "$src"),creat,trunc"
  local recv=$BG_PID
  wait_tcp_listen "$port"
  t0=$(now)
  run_fg "$lg-send.log" socat -b 1048576 -u "OPEN:$src" "TCP:127.0.0.1:$port" || rc=$?
  ((rc == 0)) && { wait_bg "$recv" || rc=$?; }   # stop when the receiver has written everything
  t1=$(now)
  ((rc == 0)) || { stop_bg "$recv"; die "socat failed ($lg-send.log, $lg-recv.log)"; }
  verify "$dest" "$src" "$deep" socat
  RUN_T=$(elapsed "$t0" "$t1")
}

run_ceiling() {  # local copy + ONE group sync (syncfs): what the disk can do at best
  local src=$1 base=$2 deep=$3 dest="$2/dest" t0 t1
  fresh_dir "$dest"
  t0=$(now)
  run_fg "$LOGS/ceiling-cp.log" cp -r "$src" "$dest/" || die "cp failed ($LOGS/ceiling-cp.log)"
  run_fg "$LOGS/ceiling-sync.log" sync -f "$dest" || die "sync failed ($LOGS/ceiling-sync.log)"
  t1=$(now)
  if [[ -d $src ]]; then verify "$dest/$(basename "$src")" "$src" "$deep" ceiling
  else verify "$dest" "$src" "$deep" ceiling; fi
  RUN_T=$(elapsed "$t0" "$t1")
}

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# ---------------------------------------------------------------------------
# Setup
# ---------------------------------------------------------------------------
ensure_tools() {
  local need=() t sudo=()
  for t in rsync socat; do command -v "$t" >/dev/null || need+=("$t"); done
  if ((${#need[@]})); then
    log "installing missing tools: ${need[*]}"
    ((EUID == 0)) || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
  for t in python3 rsync socat timeout diff cmp awk find sync; do
    command -v "$t" >/dev/null || die "missing tool: $t"
  done
}

ensure_tools
mkdir -p "$LOGS" "$(dirname "$RESULTS")" "$SHM_WORK"

# rsync >= 3.2.4 has --fsync (fsync every written file, in the receiver: the
# daemon). Older ones: substitute plain rsync followed by one timed `sync -f`.
# (help text captured first: `rsync --help | grep -q` under pipefail fails with
# SIGPIPE exactly when grep finds the option early)
RSYNC_HELP=$(rsync --help 2>&1 || true)
if [[ $RSYNC_HELP == *--fsync* ]]; then
  RSYNC_DURABLE_ARGS=(--fsync); RSYNC_DURABLE_LABEL="rsync daemon --fsync"; RSYNC_SYNC_AFTER=0
else
  RSYNC_DURABLE_ARGS=(); RSYNC_DURABLE_LABEL="rsync daemon + sync -f (no --fsync in this rsync)"; RSYNC_SYNC_AFTER=1
  log "this rsync lacks --fsync: durable rsync row uses plain rsync + one timed sync -f instead"
fi

HAVE_FW=0
if ((PEERS_ONLY == 0)); then
  if [[ -z $FW_BIN ]]; then
    FW_BIN=$FW_BIN_DEFAULT
    if ((BUILD)); then
      log "building framewire (release)"
      (cd "$REPO" && cargo build --release -p framewire) >&2 || die "cargo build failed (use --peers-only to benchmark only the peers)"
    fi
  fi
  [[ -x $FW_BIN ]] || die "framewire binary not found at $FW_BIN (build it, set FW_BIN, or use --peers-only)"
  HAVE_FW=1
fi

log "preparing input data in $DATA"
run_fg "$LOGS/gen_data.log" python3 "$BENCH/gen_data.py" "$DATA" || die "gen_data failed ($LOGS/gen_data.log)"
SMALL="$DATA/small"; BIGDIR="$DATA/big"; BIGFILE="$DATA/big.bin"
SMALL_N=$(count_files "$SMALL"); SMALL_B=$(sum_bytes "$SMALL")
BIG_B=$(stat -c %s "$BIGFILE")

# Machine-wide busy CPU time in seconds (user+nice+system; irq/softirq time is
# left out because loopback TCP work is billed there, not to our processes).
# At the end, subtracting this script's own CPU (bash `times`, which includes
# every reaped child) leaves what OTHER processes used during the benchmark:
# a build running next door shows up there and explains noisy figures.
busy_cpu_s() { awk -v hz="$(getconf CLK_TCK)" '/^cpu / { printf "%.2f", ($2 + $3 + $4) / hz }' /proc/stat; }
# Kernel threads' CPU (children of kthreadd: writeback, ksoftirqd, ...): part
# of "everything else", but mostly work done on behalf of the benchmark itself
# (flushing its writes, deferred loopback packet processing), so reported apart.
kthread_snapshot() {  # kthread_snapshot FILE : "pid ticks" for every kernel thread
  # (cat, not awk, opens the files: a process may vanish between glob and open)
  { cat /proc/[0-9]*/stat 2>/dev/null || true; } |
    awk '{ pid = $1; sub(/^.*\) /, ""); if ($2 == 2) print pid, $12 + $13 }' >"$1"
}
kthread_delta_s() {  # kthread_delta_s START END : CPU-s kernel threads used in between, per pid
  awk -v hz="$(getconf CLK_TCK)" 'NR == FNR { t0[$1] = $2; next }
       { d = $2 - t0[$1]; if (d > 0) t += d } END { printf "%.2f", t / hz }' "$1" "$2"
}
# own_cpu_s VAR: `times` must run in THIS shell (in a $(...) subshell it would
# report the fresh subshell's zero), so it goes through a file.
own_cpu_s() {
  times >"$LOGS/.times"
  printf -v "$1" '%s' "$(awk '{ for (i = 1; i <= NF; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] } } END { printf "%.2f", t }' "$LOGS/.times")"
}
# --wait-idle: on a shared machine, wait (bounded) for a quiet moment: 5 s in
# which everything together used under 10% of one core.
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
BUSY_START=$(busy_cpu_s); kthread_snapshot "$LOGS/.kthreads-start"; own_cpu_s OWN_START
T_START=$(now)

# ---------------------------------------------------------------------------
# Measurements. A spec is "KEY|RUNNER|SOURCE|EXTRA ARGS". Within a workload
# the runners are interleaved run by run, so slow drift (background
# writeback, other load) spreads over all of them instead of hitting one.
# ---------------------------------------------------------------------------
declare -A TIMES=() LABEL=() TARGET=()
ROWS=()
RUN_T=""

add_row() {  # add_row KEY LABEL TARGET-RATIO ("" for framewire itself)
  ROWS+=("$1"); LABEL[$1]=$2; TARGET[$1]=$3; TIMES[$1]=""
}

measure_workload() {  # measure_workload SCENARIO WORKLOAD BASE SPEC...
  local scen=$1 work=$2 base=$3; shift 3
  local r spec key runner src extra
  local -a extra_args
  for ((r = 1; r <= RUNS; r++)); do
    for spec in "$@"; do
      IFS='|' read -r key runner src extra <<<"$spec"
      extra_args=()
      [[ -n $extra ]] && read -ra extra_args <<<"$extra"
      log "$scen / $work / ${LABEL[$key]}: run $r of $RUNS"
      RUN_T=""
      "$runner" "$src" "$base" "$((r == 1))" "${extra_args[@]}"
      log "  -> ${RUN_T}s"
      TIMES[$key]+=" $RUN_T"
    done
  done
}

if [[ $ONLY == all || $ONLY == tmpfs ]]; then
  base="$SHM_WORK/tmpfs"
  specs=()
  if ((HAVE_FW)); then add_row tmpfs-small-fw "framewire" ""; specs+=("tmpfs-small-fw|run_framewire|$SMALL|"); fi
  add_row tmpfs-small-seed "seed-style Python (1 conn/file, base64)" 10
  add_row tmpfs-small-rsync "rsync daemon" 3
  specs+=("tmpfs-small-seed|run_seed|$SMALL|" "tmpfs-small-rsync|run_rsync|$SMALL|")
  measure_workload tmpfs "3,000 files" "$base" "${specs[@]}"

  specs=()
  if ((HAVE_FW)); then add_row tmpfs-big-fw "framewire" ""; specs+=("tmpfs-big-fw|run_framewire|$BIGDIR|"); fi
  add_row tmpfs-big-socat "socat raw TCP copy" 0.7
  specs+=("tmpfs-big-socat|run_socat|$BIGFILE|")
  measure_workload tmpfs "1 GiB file" "$base" "${specs[@]}"
  rm -rf "$base"
fi

if [[ $ONLY == all || $ONLY == durable ]]; then
  base="$DISK_WORK/durable"
  specs=()
  if ((HAVE_FW)); then add_row durable-small-fw "framewire" ""; specs+=("durable-small-fw|run_framewire|$SMALL|"); fi
  add_row durable-small-ceiling "ceiling: cp -r + one sync -f" 0.8
  add_row durable-small-rsync "$RSYNC_DURABLE_LABEL" 1.2
  specs+=("durable-small-ceiling|run_ceiling|$SMALL|"
          "durable-small-rsync|run_rsync|$SMALL|${RSYNC_DURABLE_ARGS[*]}")
  measure_workload durable "3,000 files" "$base" "${specs[@]}"

  specs=()
  if ((HAVE_FW)); then add_row durable-big-fw "framewire" ""; specs+=("durable-big-fw|run_framewire|$BIGDIR|"); fi
  add_row durable-big-ceiling "ceiling: cp + one sync -f" 0.8
  specs+=("durable-big-ceiling|run_ceiling|$BIGFILE|")
  measure_workload durable "1 GiB file" "$base" "${specs[@]}"
  rm -rf "$base"; sync
fi

T_END=$(now)
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
own_cpu_s OWN_END
kthread_snapshot "$LOGS/.kthreads-end"
OTHER_CPU=$(awk -v b0="$BUSY_START" -v b1="$(busy_cpu_s)" -v o0="$OWN_START" -v o1="$OWN_END" \
  -v k="$(kthread_delta_s "$LOGS/.kthreads-start" "$LOGS/.kthreads-end")" \
  -v t="$(elapsed "$T_START" "$T_END")" 'BEGIN {
    o = (b1 - b0) - (o1 - o0) - k; if (o < 0) o = 0
    printf "other processes %.1f CPU-s (%.0f%% of one core on average); kernel threads %.1f CPU-s", o, 100 * o / t, k }')

# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------
fstype() { { findmnt -no FSTYPE -T "$1" 2>/dev/null || stat -f -c %T "$1"; } | awk 'NR == 1'; }

report() {
  local key scen work files bytes med fps mbps fwkey fwmed ratio target met runs
  echo "## Upload benchmark — $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "- machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM, kernel $(uname -r)"
  echo "- load average at start: $LOAD_START; at end: $LOAD_END"
  echo "- CPU used by everything else during the run: $OTHER_CPU. Other processes well above ~10% of one core mean the figures are disturbed."
  echo "- tmpfs: $(fstype /dev/shm) (/dev/shm); disk: $(fstype "$DISK_WORK") ($DISK_WORK, device $({ findmnt -no SOURCE -T "$DISK_WORK" 2>/dev/null || echo '?'; } | awk 'NR == 1'))"
  echo "- tools: $(rsync --version | head -n1 | awk '{ print $1, $2, $3 }'), socat $(socat -V 2>/dev/null | awk '/socat version/ { print $3; exit }'), $(python3 --version)"
  echo "- framewire: $( ((HAVE_FW)) && echo "$FW_BIN (git $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo 'no commit'))" || echo 'not run (--peers-only)')"
  echo "- data: $SMALL_N files / $SMALL_B bytes (20–200 KiB each); big file $BIG_B bytes"
  echo "- runs per measurement: $RUNS (median reported); wall time $(elapsed "$T_START" "$T_END") s"
  echo "- MB = 10^6 bytes. Ratio = framewire throughput ÷ that runner's throughput (same data, so = runner time ÷ framewire time)."
  echo
  echo "| scenario | workload | runner | runs (s) | median (s) | files/s | MB/s | framewire ÷ runner | target | met |"
  echo "|---|---|---|---|---|---|---:|---:|---|---|"
  for key in "${ROWS[@]}"; do
    scen=${key%%-*}
    case $key in
      *-small-*) work="3,000 files"; files=$SMALL_N; bytes=$SMALL_B; fwkey="$scen-small-fw" ;;
      *) work="1 GiB file"; files=1; bytes=$BIG_B; fwkey="$scen-big-fw" ;;
    esac
    med=$(median <<<"${TIMES[$key]}")
    # files/s only means something for the many-files workload
    fps=$(awk -v n="$files" -v t="$med" 'BEGIN { if (n > 1) printf "%.0f", n / t; else printf "—" }')
    mbps=$(awk -v b="$bytes" -v t="$med" 'BEGIN { printf "%.1f", b / t / 1e6 }')
    runs=$(echo "${TIMES[$key]}" | xargs | sed 's/ /, /g')
    target=${TARGET[$key]}
    if [[ $key == *-fw ]]; then
      ratio="—"; target="—"; met="—"
    elif [[ -n ${TIMES[$fwkey]+x} ]]; then
      fwmed=$(median <<<"${TIMES[$fwkey]}")
      ratio=$(awk -v p="$med" -v f="$fwmed" 'BEGIN { printf "%.2f", p / f }')
      met=$(awk -v r="$ratio" -v t="$target" 'BEGIN { print (r >= t) ? "yes" : "**no**" }')
      target="≥ ${target}×"; ratio="${ratio}×"
    else
      ratio="to be filled"; met="—"; target="≥ ${target}×"
    fi
    echo "| $scen | $work | ${LABEL[$key]} | $runs | $med | $fps | $mbps | $ratio | $target | $met |"
  done
}

report | tee "$RESULTS"
log "table written to $RESULTS; step logs in $LOGS"
