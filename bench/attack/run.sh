#!/usr/bin/env bash
# Issue 10's attacks against a release hub, one after another, with a well-behaved client pinging
# and uploading throughout (bench/attack/attack.py). Loopback only; stops by itself (about two
# minutes with the default 12 s per attack).
#
#   bench/attack/run.sh [SECONDS_PER_ATTACK=12] [--only NAME]
#
# The hub runs with its defaults (memory budget 256 MiB) except a 10 s write timeout (default 30),
# so that stalled readers are closed within an attack. Prints, per attack, the hub's peak RSS and
# the good client's ping p50/p99; exits non-zero if peak RSS exceeded the budget + 64 MiB or the
# good client's p99 reached 50 ms. Environment: SKIP_BUILD=1 (use target/release/framewire),
# FRAMEWIRE_BIN=PATH.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
seconds="${1:-12}"
shift || true
bin="${FRAMEWIRE_BIN:-$root/target/release/framewire}"
if [ "${SKIP_BUILD:-0}" != 1 ] && [ -z "${FRAMEWIRE_BIN:-}" ]; then
    (cd "$root" && cargo build --release -q -p framewire)
fi
work="$(mktemp -d /tmp/framewire-attack.XXXXXX)"
hub_pid=""
cleanup() {
    [ -z "$hub_pid" ] || { kill -TERM "$hub_pid" 2>/dev/null || true; wait "$hub_pid" 2>/dev/null || true; }
    rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
native=127.0.0.1:$(free_port)
http=127.0.0.1:$(free_port)
udp=127.0.0.1:$(free_port)
ulimit -n 65536 2>/dev/null || true
"$bin" serve --data "$work/data" --listen "$native" --http "$http" --udp "$udp" \
    --write-timeout 10 >"$work/hub.log" 2>&1 &
hub_pid=$!
for _ in $(seq 100); do
    grep -q "listening on" "$work/hub.log" 2>/dev/null && break
    sleep 0.1
done
grep -q "listening on" "$work/hub.log" || { cat "$work/hub.log"; exit 1; }
python3 "$root/bench/attack/attack.py" --pid "$hub_pid" --native "$native" --http "$http" \
    --udp "$udp" --seconds "$seconds" --budget-mib 256 "$@"
