#!/bin/bash
# make check: unit tests (Boost.Test) and integration tests (real Postfix MSA, real clients),
# then one summary line "N passed, N failed, N skipped" for CI.
set -uo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "== unit tests"
test/unit/unit_tests --color_output=no --log_level=test_suite --report_level=short --report_format=XML \
    --report_sink="$tmp/unit.xml"
unit_rc=$?
read -r unit_passed unit_failed < <(sed -n \
    's/.*test_cases_passed="\([0-9]*\)".*test_cases_failed="\([0-9]*\)".*/\1 \2/p' "$tmp/unit.xml" | head -1)
unit_skipped=$(sed -n 's/.*test_cases_skipped="\([0-9]*\)".*/\1/p' "$tmp/unit.xml" | head -1)
if [ -z "${unit_passed:-}" ]; then
    echo "unit tests produced no report (exit $unit_rc)"
    unit_passed=0 unit_failed=1
fi
[ "$unit_rc" -ne 0 ] && [ "$unit_failed" -eq 0 ] && unit_failed=1
echo "unit: $unit_passed passed, $unit_failed failed"

# The slow scenarios (test_slow*.py: minutes of idle customers, slow uploads, a slow MSA) mostly
# wait; they run in a second process next to the rest so that the suite takes as long as the
# longer of the two, not their sum.  IT_PATTERN=... runs just the files it names, in one process.
counts() {  # counts NAME FILE RC: "passed failed skipped" from a run's counts file
    if [ -s "$2" ]; then
        cat "$2"
    else
        echo "$1 produced no counts (exit $3)" >&2
        echo "0 1 0"
    fi
}
slow_pid=
it_args=("${IT_PATTERN:-test_*.py}")
if [ -z "${IT_PATTERN:-}" ]; then
    echo "== slow integration tests (in the background: test_slow*.py)"
    python3 test/integration/run.py --counts "$tmp/slow.counts" "test_slow*.py" > "$tmp/slow.log" 2>&1 &
    slow_pid=$!
    it_args+=(--exclude "test_slow*.py")
fi
echo "== integration tests"
python3 test/integration/run.py --counts "$tmp/it.counts" "${it_args[@]}"
it_rc=$?
read -r it_passed it_failed it_skipped < <(counts "integration tests" "$tmp/it.counts" $it_rc)
if [ -n "$slow_pid" ]; then
    wait "$slow_pid"
    slow_rc=$?
    echo "== slow integration tests (output)"
    cat "$tmp/slow.log"
    read -r slow_passed slow_failed slow_skipped < <(counts "slow integration tests" "$tmp/slow.counts" $slow_rc)
    it_passed=$((it_passed + slow_passed)) it_failed=$((it_failed + slow_failed)) it_skipped=$((it_skipped + slow_skipped))
fi

# The libFuzzer targets, a few seconds each (CHECK_FUZZ_SECONDS), so that a crash or a broken
# invariant in the pure protocol code cannot land; each target counts as one test.  They need
# clang >= 16 (make deps installs clang-16); without it they are counted as skipped.
fuzz_passed=0 fuzz_failed=0 fuzz_skipped=0
fuzz_targets=$(ls test/fuzz/fuzz_*.cpp | sed 's#.*/\(fuzz_[a-z_0-9]*\)\.cpp#\1#')
if [ -z "${IT_PATTERN:-}" ] && [ -n "$(make -s --no-print-directory fuzz-compiler 2>/dev/null)" ]; then
    echo "== fuzz targets (${CHECK_FUZZ_SECONDS:-5} s each)"
    if make -s -j2 fuzz > "$tmp/fuzz-build.log" 2>&1; then
        for t in $fuzz_targets; do
            if make -s --no-print-directory "fuzz-run-$t" FUZZ_SECONDS="${CHECK_FUZZ_SECONDS:-5}"; then
                fuzz_passed=$((fuzz_passed + 1))
            else
                echo "fuzz target $t FAILED (test/fuzz/build/$t.log, artifacts in test/fuzz/build/artifacts/)"
                fuzz_failed=$((fuzz_failed + 1))
            fi
        done
    else
        tail -n 20 "$tmp/fuzz-build.log"
        echo "fuzz targets did not build"
        fuzz_failed=$(echo "$fuzz_targets" | wc -w)
    fi
elif [ -z "${IT_PATTERN:-}" ]; then
    fuzz_skipped=$(echo "$fuzz_targets" | wc -w)
    echo "skipped: $fuzz_skipped fuzz targets: no clang >= 16 (make deps installs clang-16)"
fi

passed=$((unit_passed + it_passed + fuzz_passed))
failed=$((unit_failed + it_failed + fuzz_failed))
skipped=$((${unit_skipped:-0} + it_skipped + fuzz_skipped))
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
