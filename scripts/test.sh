#!/usr/bin/env bash
# Runs every test: the Deno suite (unit, process, stand-in and chart tests), then the core suite
# against the built npm package under Node. Ends with one line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."

log_dir="${TMPDIR:-/tmp}/piggy-test-$$"
mkdir -p "$log_dir"
deno="node_modules/.bin/deno"
[ -x "$deno" ] || { echo "node_modules/.bin/deno is missing: run 'npm ci' first" >&2; exit 2; }

status=0
bash scripts/fetch_helm.sh || status=1

echo "== bundle (piggy-env's standalone source, imported by the launcher tests)"
"$deno" task bundle || status=1

echo "== deno test"
"$deno" test --allow-all --parallel 2>&1 | tee "$log_dir/deno.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
summary=$(sed 's/\x1b\[[0-9;]*m//g' "$log_dir/deno.txt" | grep -E '^(ok|FAILED) \|' | tail -n 1)
deno_passed=$(sed -nE 's/.* ([0-9]+) passed.*/\1/p' <<<"$summary")
deno_failed=$(sed -nE 's/.* ([0-9]+) failed.*/\1/p' <<<"$summary")
if [ -z "$deno_passed" ]; then deno_passed=0; deno_failed=1; status=1; fi

echo "== node --test (built npm package)"
node_passed=0
node_failed=0
if npm run --silent build >"$log_dir/build.txt" 2>&1; then
  mapfile -t node_tests < <(find dist -name '*_test.js' | sort)
  node --test "${node_tests[@]}" 2>&1 | tee "$log_dir/node.txt"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
  node_passed=$(sed -nE 's/^# pass ([0-9]+)$/\1/p' "$log_dir/node.txt" | tail -n 1)
  node_failed=$(sed -nE 's/^# fail ([0-9]+)$/\1/p' "$log_dir/node.txt" | tail -n 1)
  [ -n "$node_passed" ] || { node_passed=0; node_failed=1; status=1; }
else
  cat "$log_dir/build.txt"
  echo "npm build failed" >&2
  node_failed=1
  status=1
fi

passed=$((deno_passed + node_passed))
failed=$((deno_failed + node_failed))
[ "$failed" -eq 0 ] || status=1
echo "deno: ${deno_passed} passed, ${deno_failed} failed; node: ${node_passed} passed, ${node_failed} failed"
echo "${passed} passed, ${failed} failed" | tee "$log_dir/summary.txt"
cp "$log_dir/summary.txt" "${PIGGY_TEST_SUMMARY:-/dev/null}" 2>/dev/null || true
exit "$status"
