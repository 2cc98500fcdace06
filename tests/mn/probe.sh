#!/usr/bin/env bash
# No quiet 1:1: 200 live threads share at most 8 kernel tasks under
# --threads mn (asked with the raw syscall instruction), where natively
# they are 200 (which shows the probe can tell).
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
  out=$("$run" --threads mn --route "$route" -- "$program") || { echo "FAIL: --route $route: the probe failed"; status=1; continue; }
  tasks=${out#kernel tasks: }
  if ! [ "$tasks" -ge 1 ] 2>/dev/null || [ "$tasks" -gt 8 ]; then
    echo "FAIL: --route $route: '$out': 200 threads should share at most 8 kernel tasks"; status=1
  else
    echo "--route $route: 200 threads on $tasks kernel task(s); natively on 200"
  fi
done
exit "$status"
