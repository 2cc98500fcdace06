#!/usr/bin/env bash
# Installs what is missing, then builds and runs every test: a plain build
# (library, tests, examples, benchmarks), an ASan+UBSan build and a TSan
# build (library and tests only, with smaller counts).
#   bash scripts/test.sh
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh tests || exit 1

jobs=$(nproc)
passed=0
failed=0
status=0
start_all=$SECONDS

# phase <name> <FLEXSC_TEST_SCALE> <cmake args...>
phase() {
  local name=$1 scale=$2
  shift 2
  local dir=build/test-$name t0=$SECONDS
  echo "=== phase $name: configure and build"
  mkdir -p "$dir"
  if ! cmake -S . -B "$dir" -DFLEXSC_TEST_SCALE="$scale" "$@" >"$dir/configure.log" 2>&1; then
    cat "$dir/configure.log"; echo "=== phase $name: configure FAILED"; status=1; failed=$((failed + 1)); return
  fi
  if ! cmake --build "$dir" -j "$jobs" >"$dir/build.log" 2>&1; then
    tail -n 60 "$dir/build.log"; echo "=== phase $name: build FAILED"; status=1; failed=$((failed + 1)); return
  fi
  if grep -q "warning:" "$dir/build.log"; then
    grep -A3 "warning:" "$dir/build.log"
    echo "=== phase $name: the build must be warning-free (-Wall -Wextra)"; status=1; failed=$((failed + 1))
  fi
  echo "=== phase $name: built in $((SECONDS - t0)) s; running tests"
  local log=$dir/ctest.log
  (cd "$dir" && ctest --output-on-failure --timeout 300 -j "$jobs") 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  local total fails
  total=$(sed -n 's/.*tests passed, \([0-9]*\) tests\{0,1\} failed out of \([0-9]*\).*/\2/p' "$log")
  fails=$(sed -n 's/.*tests passed, \([0-9]*\) tests\{0,1\} failed out of \([0-9]*\).*/\1/p' "$log")
  passed=$((passed + ${total:-0} - ${fails:-0}))
  failed=$((failed + ${fails:-0}))
  [ "$rc" -eq 0 ] || status=1
  echo "=== phase $name: done in $((SECONDS - t0)) s (exit $rc)"
}

phase plain 1 -DCMAKE_BUILD_TYPE=RelWithDebInfo
# LeakSanitizer cannot follow Boost.Lockfree's tagged pointers (tests/lsan.supp).
export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp"
phase asan 0.1 -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFLEXSC_SANITIZE=address -DFLEXSC_BENCH=OFF -DFLEXSC_EXAMPLES=OFF
# Boost.Lockfree's benign races are suppressed (tests/tsan.supp); flexsc's are not.
export TSAN_OPTIONS="suppressions=$PWD/tests/tsan.supp halt_on_error=1"
phase tsan 0.05 -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFLEXSC_SANITIZE=thread -DFLEXSC_BENCH=OFF -DFLEXSC_EXAMPLES=OFF

echo "=== all phases: $((SECONDS - start_all)) s"
echo "flexsc tests: $passed passed, $failed failed"
exit $status
