#!/usr/bin/env bash
# Real-browser test of the dashboard: starts a demo hub, runs dashboard.test.mjs against it in
# headless Debian chromium (playwright-core, no browser download), stops the hub.
#
#   tests/browser/run.sh
#
# Environment:
#   FRAMEWIRE_BIN   the framewire binary (default: target/debug/framewire, built if missing)
#   HUB_CMD         hub command instead of `$FRAMEWIRE_BIN demo ...`; run by bash with $DATA set
#                   to a fresh data folder, e.g.
#                   HUB_CMD='cargo run -q -p framewire-server --example dev_hub -- "$DATA"'
#   ARTIFACTS       where screenshots go (default: a fresh temporary folder, printed)
#   HUB_START_TIMEOUT  seconds to wait for the hub's addresses (default 300: HUB_CMD may compile)
#   TLS=1       the demo hub serves TLS (`--tls-self-signed`): the dashboard is https://, the browser
#               accepts the self-signed certificate, node's fetch trusts $DATA/tls/cert.pem, and
#               the framewire client pins the printed fingerprint
# The hub must print a line containing `listening on 127.0.0.1:PORT` (native port) and one
# containing `http://127.0.0.1:PORT/` or `https://127.0.0.1:PORT/` (dashboard).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)

if [[ ! -x /usr/bin/chromium ]]; then
    if [[ $(id -u) -ne 0 ]]; then
        echo "run.sh: /usr/bin/chromium is missing; install Debian's chromium (apt-get install chromium) or run as root" >&2
        exit 1
    fi
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium
fi

(cd "$here" && npm ci --no-audit --no-fund --loglevel=error)

work=$(mktemp -d "${TMPDIR:-/tmp}/framewire-browser.XXXXXX")
export DATA="$work/data"
export ARTIFACTS="${ARTIFACTS:-$work/artifacts}"
mkdir -p "$ARTIFACTS"
log="$work/hub.log"

if [[ -z ${HUB_CMD:-} ]]; then
    if [[ -z ${FRAMEWIRE_BIN:-} ]]; then
        FRAMEWIRE_BIN="$root/target/debug/framewire"
        (cd "$root" && cargo build -q -p framewire)
    fi
    HUB_CMD='"$FRAMEWIRE_BIN" demo --listen 127.0.0.1:0 --http 127.0.0.1:0 --data "$DATA"'
    if [[ ${TLS:-0} == 1 ]]; then
        HUB_CMD+=' --tls-self-signed'
    fi
fi
if [[ ${FRAMEWIRE_BIN:-} == */* ]]; then
    FRAMEWIRE_BIN=$(cd "$(dirname "$FRAMEWIRE_BIN")" && pwd)/$(basename "$FRAMEWIRE_BIN")
fi
export FRAMEWIRE_BIN="${FRAMEWIRE_BIN:-}"

hub_pid=""
stop_hub() {
    [[ -n $hub_pid ]] || return 0
    # The hub runs in its own process group (setsid): stop the group, so that a `cargo run`
    # wrapper and the hub it started both go.
    kill -TERM -- "-$hub_pid" 2>/dev/null || true
    for _ in $(seq 50); do
        kill -0 "$hub_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL -- "-$hub_pid" 2>/dev/null || true
    wait "$hub_pid" 2>/dev/null || true
    hub_pid=""
}
trap stop_hub EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "hub: $HUB_CMD (data: $DATA)"
(cd "$root" && exec setsid bash -c "exec $HUB_CMD") >"$log" 2>&1 &
hub_pid=$!

native=""
http=""
deadline=$((SECONDS + ${HUB_START_TIMEOUT:-300}))
while [[ -z $native || -z $http ]]; do
    native=$(grep -oE 'listening on 127\.0\.0\.1:[0-9]+' "$log" | head -n1 | sed 's/^listening on //' || true)
    http=$(grep -oE 'https?://127\.0\.0\.1:[0-9]+/' "$log" | head -n1 || true)
    if ! kill -0 "$hub_pid" 2>/dev/null; then
        echo "run.sh: the hub exited before printing its addresses:" >&2
        cat "$log" >&2
        exit 1
    fi
    if ((SECONDS > deadline)); then
        echo "run.sh: no addresses from the hub in ${HUB_START_TIMEOUT:-300} s:" >&2
        cat "$log" >&2
        exit 1
    fi
    sleep 0.1
done
echo "hub: native $native, dashboard $http"
if [[ $http == https://* ]]; then
    fingerprint=$(grep -oE 'TLS certificate SHA-256: [0-9A-F:]+' "$log" | head -n1 | sed 's/.*: //' || true)
    [[ -n $fingerprint ]] || { echo "run.sh: an https dashboard but no fingerprint:" >&2; cat "$log" >&2; exit 1; }
    echo "hub: TLS certificate SHA-256 $fingerprint"
    export FRAMEWIRE_TLS_FINGERPRINT="$fingerprint"
    export NODE_EXTRA_CA_CERTS="$DATA/tls/cert.pem"
fi

status=0
FRAMEWIRE_HTTP="${http%/}" FRAMEWIRE_SERVER="$native" \
    timeout 300 node "$here/dashboard.test.mjs" || status=$?
if ((status != 0)); then
    echo "--- hub log (last 40 lines) ---"
    tail -n 40 "$log"
fi
stop_hub
echo "screenshots: $ARTIFACTS"
exit "$status"
