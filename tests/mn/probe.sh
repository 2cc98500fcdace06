#!/usr/bin/env bash
# No quiet 1:1: 200 live threads share the mode's carriers (at most one
# kernel task each) under --threads mn, asked with the raw syscall
# instruction, where natively they are 200 tasks (which shows the probe
# can tell).
#   probe.sh <flexsc-run> <probe_program>
set -uo pipefail
run=${1:?usage: probe.sh <flexsc-run> <probe_program>}
program=${2:?usage: probe.sh <flexsc-run> <probe_program>}
if [ "${FLEXSC_TEST_SANITIZER:-}" = thread ]; then
  echo "SKIP: --threads mn is not supported under ThreadSanitizer (docs/mn.md)"
  exit 77
fi
status=0
native=$("$program") || { echo "FAIL: the probe fails natively"; exit 1; }
[ "$native" = "kernel tasks: 200" ] || { echo "FAIL: natively '$native', expected 200 tasks"; status=1; }
for route in all none; do
  stats=$(mktemp "${TMPDIR:-/tmp}/flexsc-probe.XXXXXX")
  out=$("$run" --threads mn --route "$route" --stats-file "$stats" -- "$program") ||
    { echo "FAIL: --route $route: the probe failed"; status=1; rm -f "$stats"; continue; }
  carriers=$(sed -n 's/.* \([0-9]*\) carriers,.*/\1/p' "$stats" | tail -n 1)
  rm -f "$stats"
  tasks=${out#kernel tasks: }
  if ! [ "${carriers:-0}" -ge 1 ] 2>/dev/null; then
    echo "FAIL: --route $route: the statistics name no carriers"; status=1
  elif ! [ "$tasks" -ge 1 ] 2>/dev/null || [ "$tasks" -gt "$carriers" ]; then
    echo "FAIL: --route $route: '$out': 200 threads should share the $carriers carrier(s)"; status=1
  else
    echo "--route $route: 200 threads on $tasks kernel task(s), $carriers carrier(s); natively on 200"
  fi
done
exit "$status"
