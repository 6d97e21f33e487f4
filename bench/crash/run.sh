#!/usr/bin/env bash
# Crash-safety harness (issue 5): the real hub binary is killed in the middle of concurrent uploads,
# restarted on the same data folder, and checked.
#
#   bench/crash/run.sh [ITERATIONS=30] [TERM_ITERATIONS=10]
#
# Each iteration writes a fresh source tree (4 clients x 40 small files of 0..64 KiB, one just over
# the hub's 1 MiB in-memory limit and one of 3..6 MiB; content unique to the iteration), starts
# `framewire serve`, runs `crash_client upload` (4 connections at once, one line per acknowledged
# file in a log it fsyncs), and after a random delay sends the hub SIGKILL (first ITERATIONS) or
# SIGTERM (then TERM_ITERATIONS). The delays are spread over the time a whole upload takes
# (measured once at the start), so kills land early, mid-file and after the end. Then:
#   - every acknowledged file is under DATA/files, byte-identical (BLAKE3) to what was sent;
#   - no partial file is visible: every file under DATA/files is identical to its source;
#   - SIGTERM only: the hub exits 0, within 10 s (time recorded);
#   - restarted on the same folder, `framewire ls` lists exactly the files on disk;
#   - `framewire send` of the same tree exits 0 (resuming what was cut off), after which every file
#     of the iteration is stored and the index still agrees with the disk.
# The data folder is kept across iterations (the store grows, start-up repair runs on it each
# time); files of iterations older than the previous two are deleted while the hub is down, so
# start-up repair also has to drop their index rows.
#
# Prints one line per iteration and a summary; exits non-zero if any check failed.
# Environment: CRASH_WORK=DIR (work folder, default a temp dir, removed unless KEEP=1),
# SKIP_BUILD=1 (use the binaries in target/release as they are), SEED=N.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
iterations="${1:-30}"
term_iterations="${2:-10}"
seed="${SEED:-$(date +%s)}"
bin="$root/target/release/framewire"
client="$root/target/release/examples/crash_client"

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    (cd "$root" && cargo build --release -q -p framewire && cargo build --release -q -p framewire-client --example crash_client)
fi

work="${CRASH_WORK:-$(mktemp -d /tmp/framewire-crash.XXXXXX)}"
mkdir -p "$work"
data="$work/data"
src="$work/src"
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

# Starts the hub on $data; sets hub_pid, hub_wrapper and addr. The hub runs inside a subshell
# that records its exit status in $work/hub.rc, so this shell never reports "Killed" for it.
start_hub() {
    local log="$1"
    rm -f "$work/hub.pid" "$work/hub.rc"
    (
        "$bin" serve --listen 127.0.0.1:0 --http off --data "$data" >/dev/null 2>"$log" &
        echo $! >"$work/hub.pid"
        status=0
        wait $! || status=$?
        echo "$status" >"$work/hub.rc"
    ) 2>/dev/null &
    hub_wrapper=$!
    addr=""
    for _ in $(seq 1 200); do
        hub_pid=$(cat "$work/hub.pid" 2>/dev/null || true)
        addr=$(grep -o 'listening on [0-9.:]*' "$log" 2>/dev/null | awk '{print $3}' || true)
        [ -n "$addr" ] && [ -n "$hub_pid" ] && return 0
        kill -0 "$hub_wrapper" 2>/dev/null || break
        sleep 0.1
    done
    echo "hub did not start; log:" >&2
    cat "$log" >&2
    exit 1
}

# Waits up to $2 seconds for the hub to exit and sets rc to its exit status ("timeout" after
# killing it).
wait_hub() {
    wait_for "$hub_wrapper" "$1"
    if [ "$rc" = timeout ]; then
        kill -KILL "$hub_pid" 2>/dev/null || true
    else
        rc=$(cat "$work/hub.rc" 2>/dev/null || echo unknown)
    fi
    hub_pid=""
    hub_wrapper=""
}

# Waits up to $2 seconds for child $1 and sets rc to its exit status (or "timeout", after killing
# it). Not in a subshell: only this shell can collect its children's status.
wait_for() {
    local pid="$1" limit="$2" i
    for i in $(seq 1 $((limit * 20))); do
        if ! kill -0 "$pid" 2>/dev/null; then
            rc=0
            wait "$pid" 2>/dev/null || rc=$?
            return 0
        fi
        sleep 0.05
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rc=timeout
}

# Index against disk: number of paths listed but not on disk or on disk but not listed.
index_mismatches() {
    local listed="$work/listed" disk="$work/disk"
    "$bin" ls --server "$addr" | LC_ALL=C sort >"$listed"
    (cd "$data/files" 2>/dev/null && find . -type f -printf '%P\n' | LC_ALL=C sort) >"$disk" || : >"$disk"
    LC_ALL=C comm -3 "$listed" "$disk" | wc -l
}

# Field NAME=VALUE from a line of key=value pairs.
field() {
    local v
    v=$({ grep -o "$1=[0-9]*" <<<"$2" || true; } | head -1 | cut -d= -f2)
    echo "${v:-0}"
}

# Calibration: how long one whole upload takes here (the faster of two, caches warm), so kill
# delays spread over it.
mkdir -p "$src"
upload_ms=""
for c in 1 2; do
    "$client" gen --out "$src/calib$c" --seed "$((seed - c))" >/dev/null
    start_hub "$work/hub-calib$c.log"
    t0=$(date +%s%N)
    "$client" upload --hub "$addr" --src "$src/calib$c" --to "calib$c" --log "$work/calib.log" >/dev/null
    ms=$((($(date +%s%N) - t0) / 1000000))
    [ -z "$upload_ms" ] || [ "$ms" -lt "$upload_ms" ] && upload_ms=$ms
    kill -TERM "$hub_pid"
    wait_hub 15
    [ "$rc" = 0 ] || { echo "calibration hub did not stop cleanly ($rc)" >&2; exit 1; }
done
rm -rf "$data" "$src"/calib*
max_delay_ms=$((upload_ms + 20))
echo "crash harness: $iterations x SIGKILL, $term_iterations x SIGTERM; one upload of 168 files (~22 MB) takes ${upload_ms} ms here; kill delays 0..${max_delay_ms} ms; seed $seed; work $work"

total=$((iterations + term_iterations))
acked_total=0 found_total=0 partial_total=0 mismatch_total=0 missing_total=0
resend_failures=0 resumed_total=0 term_all_acked=0 mid_upload=0 spool_partials=0 term_bad_exit=0 term_max_ms=0 failures=0
for i in $(seq 0 $((total - 1))); do
    it=$(printf 'it%03d' "$i")
    mode=KILL
    [ "$i" -ge "$iterations" ] && mode=TERM
    # Keep the store from growing without bound: drop iterations older than the previous two.
    old=$(printf 'it%03d' $((i - 3)))
    rm -rf "${data:?}/files/$old" "${src:?}/$old"
    "$client" gen --out "$src/$it" --seed $((seed + i)) >/dev/null
    nfiles=$(find "$src/$it" -type f | wc -l)

    start_hub "$work/hub-$it.log"
    log="$work/acked-$it.log"
    : >"$log"
    "$client" upload --hub "$addr" --src "$src/$it" --to "$it" --log "$log" \
        >"$work/client-$it.out" 2>&1 &
    client_pid=$!
    delay_ms=$((RANDOM * 32768 + RANDOM))
    delay_ms=$((delay_ms % (max_delay_ms + 1)))
    sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
    t0=$(date +%s%N)
    kill -"$mode" "$hub_pid" 2>/dev/null || true
    wait_hub 15
    hub_rc=$rc
    stop_ms=$((($(date +%s%N) - t0) / 1000000))
    wait_for "$client_pid" 60
    client_rc=$rc
    client_pid=""
    [ "$client_rc" != 0 ] && mid_upload=$((mid_upload + 1))
    parts=$(find "$data/spool" -name '*.part' 2>/dev/null | wc -l)
    spool_partials=$((spool_partials + parts))
    problems=""
    if [ "$mode" = TERM ]; then
        [ "$stop_ms" -gt "$term_max_ms" ] && term_max_ms=$stop_ms
        [ "$(wc -l <"$log")" = "$nfiles" ] && term_all_acked=$((term_all_acked + 1))
        if [ "$hub_rc" != 0 ] || [ "$stop_ms" -gt 10000 ]; then
            term_bad_exit=$((term_bad_exit + 1))
            problems+=" hub-exit=$hub_rc/${stop_ms}ms"
        fi
    fi

    # With the hub down: what was acknowledged is there, and nothing partial is visible.
    v=$("$client" verify --data "$data" --src "$src" --log "$log" 2>>"$work/verify-$it.err") || problems+=" verify-after-crash"
    acked=$(field acked "$v"); found=$(field found "$v"); partial=$(field partial "$v")
    missing=$(($(field missing "$v") + $(field corrupt "$v")))
    acked_total=$((acked_total + acked)); found_total=$((found_total + found))
    partial_total=$((partial_total + partial)); missing_total=$((missing_total + missing))

    # Restarted: the index agrees with the disk, and re-sending completes.
    start_hub "$work/hub-$it-restart.log"
    mm=$(index_mismatches)
    send_rc=0
    timeout 120 "$bin" send --server "$addr" --to "$it" "$src/$it"/c* >"$work/send-$it.out" 2>&1 || send_rc=$?
    resumed=$({ grep -o '[0-9]* resumed' "$work/send-$it.out" || true; } | head -1 | awk '{print $1}')
    resumed=${resumed:-0}
    resumed_total=$((resumed_total + resumed))
    [ "$send_rc" != 0 ] && { resend_failures=$((resend_failures + 1)); problems+=" resend-exit=$send_rc"; }
    stored_now=$(find "$data/files/$it" -type f 2>/dev/null | wc -l)
    [ "$stored_now" != "$nfiles" ] && problems+=" stored=$stored_now/$nfiles"
    v2=$("$client" verify --data "$data" --src "$src" --log "$log" 2>>"$work/verify-$it.err") || problems+=" verify-after-resend"
    partial=$(field partial "$v2"); partial_total=$((partial_total + partial))
    mm=$((mm + $(index_mismatches)))
    mismatch_total=$((mismatch_total + mm))
    left=$(find "$data/spool" -name '*.part' 2>/dev/null | wc -l)
    [ "$left" != 0 ] && problems+=" spool-left=$left"
    kill -TERM "$hub_pid"
    wait_hub 15
    [ "$rc" != 0 ] && problems+=" restart-hub-exit=$rc"
    [ "$mm" != 0 ] && problems+=" index-mismatches=$mm"

    [ -n "$problems" ] && failures=$((failures + 1))
    printf '%s %s delay=%4dms stop=%4dms hub_exit=%s client_exit=%s acked=%3d found=%3d spool_partials=%d resend=%s resumed=%d%s\n' \
        "$it" "$mode" "$delay_ms" "$stop_ms" "$hub_rc" "$client_rc" "$acked" "$found" "$parts" \
        "$([ $send_rc = 0 ] && echo ok || echo FAILED)" "$resumed" "${problems:+  PROBLEMS:$problems}"
done

echo "== crash summary"
echo "iterations=$total kill=$iterations term=$term_iterations interrupted_mid_upload=$mid_upload"
echo "files_acknowledged=$acked_total files_found=$found_total missing_or_corrupt=$missing_total"
echo "partial_files_visible=$partial_total index_mismatches=$mismatch_total resend_failures=$resend_failures"
echo "spool_partials_after_crash=$spool_partials files_resumed_on_resend=$resumed_total"
echo "term_max_stop_ms=$term_max_ms term_bad_exits=$term_bad_exit term_iterations_all_acknowledged=$term_all_acked"
if [ "$failures" -ne 0 ] || [ "$acked_total" -ne "$found_total" ]; then
    echo "FAILED: $failures iteration(s) with problems (logs: KEEP=1 keeps $work)"
    exit 1
fi
echo "ok"
