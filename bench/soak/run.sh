#!/usr/bin/env bash
# Soak test (issue 5): hundreds of clients against the real hub binary for a few minutes.
#
#   bench/soak/run.sh [SECONDS=120] [CLIENTS=200]
#
# Starts `framewire serve` on a fresh data folder and runs `soak_client` (one process, one tokio
# task per client: publishers and subscribers of 4 live streams, uploaders, device commands, text
# messages, connect/ping churn, random polite and abrupt disconnects; see its doc comment). Every
# 2 s it samples the hub's resident memory (VmRSS), threads and open file descriptors from /proc.
# At the end: every acknowledged file is checked in a listing and on disk (zero lost), the hub's
# descriptors are counted again once all clients are gone, and the hub must stop on SIGTERM with
# exit status 0.
#
# Prints the client's figures (operations and errors by kind) and the memory figures: peak, final,
# and the mean of the middle and last thirds of the run. "grew" is reported when the last third's
# mean exceeds the middle third's by more than 10% (and 8 MiB). Exits non-zero if a file was lost,
# the hub died or did not stop cleanly, or memory grew.
# Environment: SOAK_WORK=DIR (default a temp dir, removed unless KEEP=1), SKIP_BUILD=1.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
seconds="${1:-120}"
clients="${2:-200}"
bin="$root/target/release/framewire"
client="$root/target/release/examples/soak_client"

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    (cd "$root" && cargo build --release -q -p framewire && cargo build --release -q -p framewire-client --example soak_client)
fi

work="${SOAK_WORK:-$(mktemp -d /tmp/framewire-soak.XXXXXX)}"
mkdir -p "$work/upload"
data="$work/data"
hub_pid=""
hub_wrapper=""
client_pid=""
cleanup() {
    for p in $client_pid $hub_pid $hub_wrapper; do
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    if [ "${KEEP:-0}" != 1 ]; then rm -rf "$work"; else echo "work folder kept: $work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The hub runs inside a subshell that records its exit status, so this shell can both signal it
# and learn how it ended.
(
    # Room for hundreds of connections plus the spool and index.
    ulimit -n 8192 2>/dev/null || true
    "$bin" serve --listen 127.0.0.1:0 --http off --data "$data" >/dev/null 2>"$work/hub.log" &
    echo $! >"$work/hub.pid"
    status=0
    wait $! || status=$?
    echo "$status" >"$work/hub.rc"
) 2>/dev/null &
hub_wrapper=$!
addr=""
for _ in $(seq 1 200); do
    hub_pid=$(cat "$work/hub.pid" 2>/dev/null || true)
    addr=$(grep -o 'listening on [0-9.:]*' "$work/hub.log" 2>/dev/null | awk '{print $3}' || true)
    [ -n "$addr" ] && [ -n "$hub_pid" ] && break
    sleep 0.1
done
[ -n "$addr" ] || { echo "hub did not start" >&2; cat "$work/hub.log" >&2; exit 1; }

sample() { # prints "rss_kib threads fds" of the hub
    local rss threads fds
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$hub_pid/status" 2>/dev/null || echo 0)
    threads=$(awk '/^Threads:/ {print $2}' "/proc/$hub_pid/status" 2>/dev/null || echo 0)
    fds=$(ls "/proc/$hub_pid/fd" 2>/dev/null | wc -l)
    echo "${rss:-0} ${threads:-0} $fds"
}
read -r idle_rss idle_threads idle_fds <<<"$(sample)"
echo "soak: ${seconds}s, $clients clients, hub $addr (pid $hub_pid); idle: rss ${idle_rss} KiB, $idle_threads threads, $idle_fds fds"

"$client" --hub "$addr" --work "$work/upload" --seconds "$seconds" --clients "$clients" \
    --data "$data" >"$work/client.out" 2>"$work/client.err" &
client_pid=$!

# Sample every 2 s until the client is done (bounded: the run, its drain and the final checks).
: >"$work/samples"
start=$(date +%s)
limit=$((seconds + 120))
while kill -0 "$client_pid" 2>/dev/null; do
    now=$(date +%s)
    if ! kill -0 "$hub_pid" 2>/dev/null; then
        echo "the hub died during the soak" >&2
        tail -20 "$work/hub.log" >&2
        exit 1
    fi
    if [ $((now - start)) -gt "$limit" ]; then
        echo "soak client still running after ${limit}s; stopping it" >&2
        kill -KILL "$client_pid" 2>/dev/null || true
        break
    fi
    echo "$((now - start)) $(sample)" >>"$work/samples"
    sleep 2
done
client_rc=0
wait "$client_pid" 2>/dev/null || client_rc=$?
client_pid=""

# All clients are gone: give the hub a moment to close their sockets, then count descriptors.
sleep 2
read -r end_rss end_threads end_fds <<<"$(sample)"

kill -TERM "$hub_pid"
t0=$(date +%s%N)
for _ in $(seq 1 300); do
    kill -0 "$hub_wrapper" 2>/dev/null || break
    sleep 0.05
done
stop_ms=$((($(date +%s%N) - t0) / 1000000))
hub_rc=timeout
if ! kill -0 "$hub_wrapper" 2>/dev/null; then
    wait "$hub_wrapper" 2>/dev/null || true
    hub_rc=$(cat "$work/hub.rc" 2>/dev/null || echo unknown)
fi
hub_pid=""
hub_wrapper=""

cat "$work/client.out"
if [ -s "$work/client.err" ]; then
    grep -v '^soak:' "$work/client.err" | head -20 >&2 || true
fi

# Memory over the run (samples while the load ran: t <= seconds).
mem=$(awk -v dur="$seconds" '
    $1 <= dur { n++; t[n] = $1; r[n] = $2; if ($2 > peak) peak = $2; if ($3 > thr) thr = $3; if ($4 > fd) fd = $4 }
    END {
        a = int(n / 3); b = int(2 * n / 3);
        for (i = a + 1; i <= b; i++) { ms += r[i]; mc++ }
        for (i = b + 1; i <= n; i++) { ls += r[i]; lc++ }
        mid = mc ? ms / mc : 0; last = lc ? ls / lc : 0;
        grew = (last > mid * 1.10 && last - mid > 8192) ? "yes" : "no";
        printf "samples=%d peak_rss_mib=%.1f middle_third_mean_rss_mib=%.1f last_third_mean_rss_mib=%.1f grew=%s peak_threads=%d peak_fds=%d\n",
            n, peak / 1024, mid / 1024, last / 1024, grew, thr, fd
    }' "$work/samples")
echo "$mem"
echo "idle_rss_mib=$(awk -v r="$idle_rss" 'BEGIN{printf "%.1f", r/1024}') final_rss_mib=$(awk -v r="$end_rss" 'BEGIN{printf "%.1f", r/1024}') fds_idle_before=$idle_fds fds_after_clients_left=$end_fds threads_after=$end_threads"
echo "hub_stop_ms=$stop_ms hub_exit=$hub_rc client_exit=$client_rc"
cp "$work/samples" "${SOAK_SAMPLES_OUT:-/dev/null}" 2>/dev/null || true

ok=1
[ "$client_rc" = 0 ] || { echo "FAILED: soak client exit $client_rc (lost files or final check failed)"; ok=0; }
[ "$hub_rc" = 0 ] || { echo "FAILED: hub exit status $hub_rc on SIGTERM"; ok=0; }
grep -q 'grew=no' <<<"$mem" || { echo "FAILED: hub memory grew over the run"; ok=0; }
[ "$ok" = 1 ] && echo "ok"
[ "$ok" = 1 ]
