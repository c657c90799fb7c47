#!/usr/bin/env bash
# Runs every test; prints "N passed, N failed" as its last line.
set -uo pipefail
cd "$(dirname "$0")"
results=$(mktemp -d)
dotnet test Portcullis.slnx -c Release --logger "trx" --results-directory "$results" "$@"
rc=$?
passed=0; failed=0
for f in "$results"/*.trx; do
  [ -f "$f" ] || continue
  p=$(grep -o 'passed="[0-9]*"' "$f" | head -1 | grep -o '[0-9]*'); passed=$((passed + ${p:-0}))
  x=$(grep -o 'failed="[0-9]*"' "$f" | head -1 | grep -o '[0-9]*'); failed=$((failed + ${x:-0}))
done
rm -rf "$results"
echo "$passed passed, $failed failed"
if [ "$passed" -eq 0 ]; then exit 1; fi
exit $rc
