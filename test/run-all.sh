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

echo "== integration tests"
python3 test/integration/run.py --counts "$tmp/it.counts" "${IT_PATTERN:-test_*.py}"
it_rc=$?
if [ -s "$tmp/it.counts" ]; then
    read -r it_passed it_failed it_skipped < "$tmp/it.counts"
else
    echo "integration tests produced no counts (exit $it_rc)"
    it_passed=0 it_failed=1 it_skipped=0
fi

passed=$((unit_passed + it_passed))
failed=$((unit_failed + it_failed))
skipped=$((${unit_skipped:-0} + it_skipped))
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
