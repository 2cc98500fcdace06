#!/usr/bin/env bash
# The drop-in wrapper's routing policy, measured: route_load (a plain
# program) makes one kind of call from 1 and 4 threads, natively and under
# flexsc-run with FLEXSC_ROUTE=none, auto (the policy) and all, in one run.
# Three rounds, the runs interleaved; medians.  Reports calls/s, the ratio
# to native and the share of calls each route sent through flexsc.  The
# policy has done its job when auto is close to the better of none and all.
#
#   bash bench/route-bench.sh [build dir] [--smoke]    (default build/release)
# Writes results/route_bench.md (not with --smoke: one short round, no file).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/common.sh
. "$root/bench/common.sh"
build=${1:-$root/build/release}
smoke=${2:-}
cd "$root"
if [ -z "$smoke" ]; then
  FLEXSC_BUILD_DIR=$build release_build route_load flexsc_preload >/dev/null
fi
run=$build/tools/flexsc-run
load=$build/bench/route_load
tmp=$(mktemp -d "${TMPDIR:-/tmp}/flexsc-route.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

rounds=3 seconds=2
[ -z "$smoke" ] || { rounds=1; seconds=0.2; }
kinds=(fstat stat pread)
threads=(1 4)
routes=(native none auto all)
declare -A rate routed passed

# Calls/s of one run; the wrapper's statistics go to $tmp/stats.
one_run() {
  local route=$1 kind=$2 n=$3
  rm -f "$tmp/stats"
  if [ "$route" = native ]; then
    "$load" "$kind" "$n" "$seconds" "$tmp"
  else
    "$run" --route "$route" --stats-file "$tmp/stats" -- "$load" "$kind" "$n" "$seconds" "$tmp"
  fi | awk '/calls\/s/ {print $1}'
}

for round in $(seq 1 "$rounds"); do
  for kind in "${kinds[@]}"; do
    for n in "${threads[@]}"; do
      for route in "${routes[@]}"; do
        key=$kind/$n/$route
        r=$(one_run "$route" "$kind" "$n") || { echo "FAIL: route_load $kind $n under $route" >&2; exit 1; }
        [ -n "$r" ] || { echo "FAIL: route_load $kind $n under $route printed no rate" >&2; exit 1; }
        rate[$key]+="$r "
        if [ "$route" != native ]; then
          read -r ro pa < <(decisions "$tmp/stats") ||
            { echo "FAIL: no statistics from flexsc-run --route $route" >&2; exit 1; }
          routed[$key]+="$ro "
          passed[$key]+="$pa "
        fi
      done
      echo "round $round, $kind x$n: $(for route in "${routes[@]}"; do printf '%s %s  ' "$route" \
        "$(awk '{print $NF}' <<<"${rate[$kind/$n/$route]}")"; done)" >&2
    done
  done
done

{
  echo
  echo "Machine: $(machine); backend: ${FLEXSC_BACKEND:-auto}; $rounds rounds of ${seconds} s, medians; calls/s in thousands, and the ratio to native."
  echo
  echo "| call | threads | native | none | auto | all | auto routed |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
  for kind in "${kinds[@]}"; do
    for n in "${threads[@]}"; do
      base=$(median <<<"${rate[$kind/$n/native]}")
      row="| $kind | $n | $(awk -v r="$base" 'BEGIN {printf "%.0f", r / 1000}')"
      for route in none auto all; do
        r=$(median <<<"${rate[$kind/$n/$route]}")
        row+=" | $(awk -v r="$r" -v b="$base" 'BEGIN {printf "%.0f (%.2fx)", r / 1000, r / b}')"
      done
      ro=$(median <<<"${routed[$kind/$n/auto]}")
      pa=$(median <<<"${passed[$kind/$n/auto]}")
      row+=" | $(awk -v r="$ro" -v p="$pa" 'BEGIN {printf "%.2f%%", (r + p) ? 100 * r / (r + p) : 0}') |"
      echo "$row"
    done
  done
} >"$tmp/table.md"
cat "$tmp/table.md"
if [ -z "$smoke" ]; then
  mkdir -p results
  cp "$tmp/table.md" results/route_bench.md
fi
