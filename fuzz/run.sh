#!/usr/bin/env bash
# Runs every fuzz target for a bounded time and prints executions and corpus size per target.
#   fuzz/run.sh [SECONDS=60] [TARGET...]
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`; installed here if missing). libFuzzer needs
# -Z flags, so RUSTC_BOOTSTRAP=1 lets the stable toolchain build it. No sanitizer by default (the
# code under test is safe Rust; plain builds run ~3x more inputs): FUZZ_SANITIZER=address for ASan.
# Debug assertions (and so integer-overflow checks) are on. Exits non-zero if a target crashed;
# the input that did it is in fuzz/artifacts/TARGET/.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
secs="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(decode handshake)
sanitizer="${FUZZ_SANITIZER:-none}"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked >&2
fi
./seed_corpus.sh >/dev/null
cargo fuzz build -s "$sanitizer" -a >&2

failed=0
summary=()
for t in "${targets[@]}"; do
    log="$here/target/fuzz-$t.log"
    mkdir -p "$here/target"
    echo "== fuzz $t for ${secs}s" >&2
    set +e
    # Hard stop well after libFuzzer's own limit, in case a single input hangs.
    timeout --kill-after=10 $((secs + 120)) \
        cargo fuzz run -s "$sanitizer" -a "$t" "corpus/$t" -- \
        -max_total_time="$secs" -print_final_stats=1 -timeout=10 -rss_limit_mb=1024 \
        >"$log" 2>&1
    rc=$?
    set -e
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)
    if [ -z "$execs" ]; then
        execs=$(grep -o '^#[0-9]*' "$log" | tail -1 | tr -d '#' || true)
    fi
    corp=$(grep -o 'DONE .*corp: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)
    cov=$(grep -o 'DONE *cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)
    files=$(find "corpus/$t" -type f | wc -l)
    rate=$(grep -o 'exec/s: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)
    if [ $rc -ne 0 ]; then
        failed=1
        echo "!! $t failed (exit $rc); last lines of $log:" >&2
        tail -40 "$log" >&2
        ls -1 "artifacts/$t" 2>/dev/null | sed 's/^/   artifact: /' >&2 || true
    fi
    summary+=("$(printf '%-10s seconds=%s executions=%s exec_per_s=%s coverage=%s corpus_units=%s corpus_files=%s result=%s' \
        "$t" "$secs" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${corp:-?}" "$files" "$([ $rc -eq 0 ] && echo ok || echo CRASH)")")
done
echo "== fuzz summary"
printf '%s\n' "${summary[@]}"
exit $failed
