#!/usr/bin/env bash
# The drop-in wrapper's routing policy, measured: route_load (a plain
# program) makes one kind of call from 1 and 4 threads, natively and under
# flexsc-run with FLEXSC_ROUTE=none, auto (the policy) and all, in one run.
# Three rounds, the runs interleaved; medians.  Reports calls/s, the ratio
# to native and the share of calls each route sent through flexsc.  The
# policy has done its job when auto is close to the better of none and all.
# Writes the run to docs/results/route-bench-<date>/ (see bench/common.sh),
# with each route's ratio to native as bars.
#
#   bash bench/route-bench.sh [--smoke]
# --smoke: one short round of the build in FLEXSC_BUILD_DIR as it is,
# the table only, nothing written (the test route_bench_smoke).
# FLEXSC_BENCH_QUICK=1: the same short round, written to build/results-quick/.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/common.sh
. bench/common.sh
smoke=${1:-}
if [ -z "$smoke" ]; then
  results_begin route-bench "The drop-in wrapper's routing policy: route_load natively and under each FLEXSC_ROUTE" "$@"
  bash scripts/deps.sh
  release_build route_load flexsc_preload >/dev/null
fi
run=$build/tools/flexsc-run
load=$build/bench/route_load
tmp=$(mktemp -d "${TMPDIR:-/tmp}/flexsc-route.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

rounds=3 seconds=2
[ -z "$smoke$quick" ] || { rounds=1; seconds=0.2; }
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

# Medians per call, threads and route: a JSON row each (results.json) and
# a line each in the table.
rows=()
table=$tmp/table.md
{
  echo
  echo "Backend: ${FLEXSC_BACKEND:-auto}; $rounds rounds of ${seconds} s, medians; calls/s in thousands, and the ratio to native."
  echo
  echo "| call | threads | native | none | auto | all | auto routed |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
} >"$table"
for kind in "${kinds[@]}"; do
  for n in "${threads[@]}"; do
    base=$(median <<<"${rate[$kind/$n/native]}")
    line="| $kind | $n | $(awk -v r="$base" 'BEGIN {printf "%.0f", r / 1000}')"
    for route in "${routes[@]}"; do
      key=$kind/$n/$route
      r=$(median <<<"${rate[$key]}") ro=null pa=null  # the wrapper's decisions: none natively
      if [ "$route" != native ]; then
        ro=$(median <<<"${routed[$key]}") pa=$(median <<<"${passed[$key]}")
        line+=" | $(awk -v r="$r" -v b="$base" 'BEGIN {printf "%.0f (%.2fx)", r / 1000, r / b}')"
        [ "$route" != auto ] || share=$(awk -v r="$ro" -v p="$pa" 'BEGIN {printf "%.2f%%", (r + p) ? 100 * r / (r + p) : 0}')
      fi
      rows+=("$(jq -cn --arg call "$kind" --argjson threads "$n" --arg route "$route" --argjson rate "$r" \
        --argjson base "$base" --argjson routed "$ro" --argjson passed "$pa" \
        --argjson rounds "$(json_numbers <<<"${rate[$key]}")" \
        '{call: $call, threads: $threads, route: $route, calls_per_s: $rate, ratio_to_native: ($rate / $base),
          routed: $routed, passed: $passed, calls_per_s_each_round: $rounds}')")
    done
    line+=" | $share |"
    echo "$line" >>"$table"
  done
done
printf '%s\n' "${rows[@]}" | jq -s --argjson rounds "$rounds" --argjson seconds "$seconds" \
  --arg backend "${FLEXSC_BACKEND:-auto}" \
  '{benchmark: "route-bench", backend: $backend, rounds: $rounds, seconds_each: $seconds, rows: .}' >"$tmp/results.json"
if [ -n "$smoke" ]; then
  cat "$table"
else
  cp "$table" "$tmp/results.json" "$results/"
  results_publish route
fi
