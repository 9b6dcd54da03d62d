#!/usr/bin/env bash
# Builds every cargo-fuzz target of fuzz/ (libFuzzer) and runs each for SECONDS (default 60),
# then prints executions and findings per target. Exits 1 when any target found something.
#
#   scripts/fuzz.sh [SECONDS]
#
# Runs on the stable toolchain: cargo-fuzz needs nightly compiler flags, which
# RUSTC_BOOTSTRAP=1 unlocks (no nightly toolchain is needed). Installs cargo-fuzz from
# crates.io when it is missing.
#
# Environment:
#   FUZZ_JOBS=N           targets fuzzed at once (default 1; each uses one core)
#   FUZZ_TARGETS="a b"    only these targets (default: every file of fuzz/fuzz_targets)
#   FUZZ_SANITIZER=name   none (default: the code is forbid(unsafe_code), and it is ~2x faster)
#                         or address, memory, thread, leak
#   FUZZ_DEBUG_ASSERTIONS=1  build with debug assertions and overflow checks (a full rebuild)
#   FUZZ_UPDATE_CORPUS=1  afterwards, merge what the run found into fuzz/corpus/<target> and
#                         minimise it (libFuzzer -merge=1): the corpora in the repository
#
# Each target fuzzes a scratch copy of fuzz/corpus/<target> plus fuzz/regressions/<target>
# (fuzz/artifacts/work/<target>); a finding is written to fuzz/artifacts/<target>/ (crash-*,
# timeout-*, oom-*, leak-*). Keep a fixed finding as fuzz/regressions/<target>/<name>:
# `cargo test -p esignsp-fuzzing` replays every corpus file and regression on stable.
set -euo pipefail

SECONDS_PER_TARGET="${1:-60}"
if ! [[ "$SECONDS_PER_TARGET" =~ ^[0-9]+$ ]] || [ "$SECONDS_PER_TARGET" -lt 1 ]; then
    echo "usage: scripts/fuzz.sh [SECONDS]  (seconds per target, a positive integer)" >&2
    exit 2
fi
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
FUZZ="$ROOT/fuzz"
JOBS="${FUZZ_JOBS:-1}"
SANITIZER="${FUZZ_SANITIZER:-none}"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz (crates.io)"
    cargo install cargo-fuzz --locked
fi

TARGETS="${FUZZ_TARGETS:-$(cd "$FUZZ/fuzz_targets" && ls -- *.rs | sed 's/\.rs$//' | tr '\n' ' ')}"
BUILD_FLAGS=(--sanitizer "$SANITIZER")
if [ "${FUZZ_DEBUG_ASSERTIONS:-0}" = 1 ]; then BUILD_FLAGS+=(--debug-assertions); fi
echo "== building ${TARGETS}(${BUILD_FLAGS[*]})"
(cd "$FUZZ" && cargo fuzz build "${BUILD_FLAGS[@]}")
TRIPLE="$(rustc -vV | sed -n 's/^host: //p')"
BIN="$FUZZ/target/$TRIPLE/release"

ART="$FUZZ/artifacts"
mkdir -p "$ART/work" "$ART/logs"

run_target() {
    local t="$1"
    local work="$ART/work/$t"
    rm -rf "$work" "$ART/previous/$t" && mkdir -p "$work" "$ART/previous"
    # Findings of an earlier run move aside, so that the table counts this run's only.
    if [ -d "$ART/$t" ]; then mv "$ART/$t" "$ART/previous/$t"; fi
    mkdir -p "$ART/$t"
    cp -- "$FUZZ/corpus/$t"/* "$work"/ 2>/dev/null || true
    cp -- "$FUZZ/regressions/$t"/* "$work"/ 2>/dev/null || true
    # A finding ends the target's run (libFuzzer's default); its exit status is reported below.
    "$BIN/$t" "$work" -max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1 -timeout=10 \
        -rss_limit_mb=2048 -max_len=65536 -artifact_prefix="$ART/$t/" >"$ART/logs/$t.log" 2>&1 || true
}

started=$(date +%s)
running=0
for t in $TARGETS; do
    echo "== fuzzing $t for ${SECONDS_PER_TARGET}s"
    run_target "$t" &
    running=$((running + 1))
    if [ "$running" -ge "$JOBS" ]; then
        wait -n || true
        running=$((running - 1))
    fi
done
wait || true
elapsed=$(( $(date +%s) - started ))

if [ "${FUZZ_UPDATE_CORPUS:-0}" = 1 ]; then
    for t in $TARGETS; do
        merged="$ART/merged/$t"
        rm -rf "$merged" && mkdir -p "$merged"
        "$BIN/$t" -merge=1 -max_len=65536 "$merged" "$FUZZ/corpus/$t" "$ART/work/$t" >"$ART/logs/$t.merge.log" 2>&1
        rm -rf "$FUZZ/corpus/$t" && mv "$merged" "$FUZZ/corpus/$t"
    done
fi

total=0
found=0
printf '\n%-22s %14s %10s %8s %9s\n' target executions "exec/s" corpus findings
for t in $TARGETS; do
    log="$ART/logs/$t.log"
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    findings=$(find "$ART/$t" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' \
        -o -name 'leak-*' -o -name 'slow-unit-*' \) | wc -l)
    if [ -z "$execs" ]; then
        # No final stats: the target died before libFuzzer could print them; show why.
        echo "!! $t did not report statistics; last lines of $log:" >&2
        tail -n 20 "$log" >&2
        execs=0 rate=0 findings=$((findings + 1))
    fi
    corpus=$(find "$FUZZ/corpus/$t" -type f | wc -l)
    printf '%-22s %14s %10s %8s %9s\n' "$t" "$execs" "$rate" "$corpus" "$findings"
    total=$((total + execs))
    found=$((found + findings))
done
printf '%-22s %14s %10s %8s %9s\n' total "$total" "" "" "$found"
echo "wall time ${elapsed}s, ${JOBS} job(s), ${SECONDS_PER_TARGET}s per target; logs in fuzz/artifacts/logs/"
if [ "$found" -gt 0 ]; then
    echo "findings are in fuzz/artifacts/<target>/: reproduce with fuzz/target/$TRIPLE/release/<target> <file>" >&2
    exit 1
fi
