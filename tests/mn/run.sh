#!/usr/bin/env bash
# Runs a program natively and under flexsc-run --threads mn (each route:
# all and none), and checks that it answers the same (stdout, exit
# status) and that every thread it made ran as a fiber: the program's
# last line says "threads created: N", and the mode's statistics must say
# "N threads created, N run as fibers".
#   run.sh <flexsc-run> <program> [args...]
# FLEXSC_BACKEND is the backend; FLEXSC_TEST_SANITIZER the build's
# sanitizer ("" for none).
set -uo pipefail
run=${1:?usage: run.sh <flexsc-run> <program> [args...]}
shift
if [ "${FLEXSC_TEST_SANITIZER:-}" = thread ]; then
  # TSan intercepts pthread_create and expects the start routine on the
  # new kernel thread; its fiber API is not verified with borrowed TCBs.
  echo "SKIP: --threads mn is not supported under ThreadSanitizer (docs/mn.md)"
  exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/flexsc-mn.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
status=0

"$@" >"$tmp/native.out" 2>"$tmp/native.err"
native_rc=$?
if [ "$native_rc" -ne 0 ]; then
  echo "FAIL: the program fails natively (exit $native_rc):"; cat "$tmp/native.err"; exit 1
fi
made=$(sed -n 's/^threads created: \([0-9]*\)$/\1/p' "$tmp/native.out")
[ -n "$made" ] || { echo "FAIL: the program did not say how many threads it made"; exit 1; }

for route in all none; do
  stats=$tmp/stats-$route.txt
  "$run" --threads mn --route "$route" --stats-file "$stats" -- "$@" >"$tmp/$route.out" 2>"$tmp/$route.err"
  rc=$?
  if [ "$rc" -ne "$native_rc" ]; then
    echo "FAIL: --route $route: exit status $rc, natively $native_rc"; cat "$tmp/$route.err"; status=1
  fi
  if ! cmp -s "$tmp/native.out" "$tmp/$route.out"; then
    echo "FAIL: --route $route: the output differs"; diff "$tmp/native.out" "$tmp/$route.out" | head -n 20; status=1
  fi
  line=$(grep -o 'flexsc: mn: [0-9]* threads created, [0-9]* run as fibers' "$stats" 2>/dev/null | tail -n 1)
  if [ "$line" != "flexsc: mn: $made threads created, $made run as fibers" ]; then
    echo "FAIL: --route $route: the statistics say '${line:-nothing}', the program made $made threads"; status=1
  fi
  echo "--route $route (${FLEXSC_BACKEND:-auto}): $(grep -o 'flexsc: mn: .*' "$stats" | tail -n 1)"
done
[ "$status" -ne 0 ] || echo "PASS: $(basename "$1"): the same answers natively and M:N, $made threads as fibers"
exit "$status"
