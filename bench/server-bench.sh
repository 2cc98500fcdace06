#!/usr/bin/env bash
# A real server with and without the drop-in wrapper, under the same load,
# in one run: nginx (one worker) serving a 4 KiB file on loopback, wrk
# (one thread, 32 connections, keep-alive) for 5 s; native, under
# flexsc-run with the default policy (auto), and with FLEXSC_ROUTE=all.
# Three rounds, the modes interleaved; medians.  Reports requests/s, the
# ratio to native, latency percentiles and the share of calls routed.
#
# Writes the run to docs/results/server-bench-<date>/ (see bench/common.sh),
# with requests/s and the latency percentiles as bars.
#
#   bash bench/server-bench.sh
# FLEXSC_BENCH_QUICK=1: one round of 1 s (build/results-quick/).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/common.sh
. bench/common.sh
results_begin server-bench "nginx under the drop-in wrapper against native, under wrk's load" "$@"
bash scripts/deps.sh server
release_build flexsc_preload >/dev/null
run=$build/tools/flexsc-run
# shellcheck source=tests/preload/nginx-lib.sh
. tests/preload/nginx-lib.sh

# wrk's latency percentile, in microseconds (it prints 812.00us, 1.23ms, 2.01s).
latency_us() {
  awk -v p="$1" '$1 == p {
    v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v)
    print (u == "s" ? v * 1e6 : u == "ms" ? v * 1e3 : v)
  }'
}

rounds=${FLEXSC_SERVER_ROUNDS:-3}
duration=${FLEXSC_SERVER_SECONDS:-5}
[ -z "$quick" ] || rounds=1 duration=1
modes=(native auto all)
declare -A rps lat50 lat90 lat99 routed passed
for round in $(seq 1 "$rounds"); do
  for mode in "${modes[@]}"; do
    stats=$tmp/stats-$mode-$round.txt
    if [ "$mode" = native ]; then start_server "" "" "$stats"; else start_server "$run" "$mode" "$stats"; fi
    out=$(wrk -t1 -c32 -d"${duration}s" --latency "http://127.0.0.1:$port/page.bin")
    stop_server || { echo "nginx did not stop" >&2; exit 1; }
    rps[$mode]+="$(awk '/^Requests\/sec/ {print $2}' <<<"$out") "
    lat50[$mode]+="$(latency_us 50% <<<"$out") "
    lat90[$mode]+="$(latency_us 90% <<<"$out") "
    lat99[$mode]+="$(latency_us 99% <<<"$out") "
    if [ -f "$stats" ] && read -r ro pa < <(decisions "$stats"); then
      routed[$mode]+="$ro "
      passed[$mode]+="$pa "
    fi
    echo "round $round, $mode: $(awk '/^Requests\/sec/ {print $2}' <<<"$out") requests/s" >&2
  done
done

# Medians per mode: a JSON row each (results.json) and a line each in the table.
native=$(median <<<"${rps[native]}")
rows=()
{
  echo
  echo "nginx $("$nginx" -v 2>&1 | sed 's/.*\///'), one worker; wrk -t1 -c32 -d${duration}s, /page.bin (4 KiB); $rounds rounds, medians; backend: ${FLEXSC_BACKEND:-auto}."
  echo
  echo "| run | requests/s | ratio to native | latency p50 (µs) | p90 (µs) | p99 (µs) | calls routed |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
  for mode in "${modes[@]}"; do
    r=$(median <<<"${rps[$mode]}")
    share="-" ro=null pa=null  # the wrapper's decisions: none natively
    if [ "$mode" != native ]; then
      ro=$(median <<<"${routed[$mode]}")
      pa=$(median <<<"${passed[$mode]}")
      share=$(awk -v r="$ro" -v p="$pa" 'BEGIN {printf "%.1f%% (%d of %d)", (r + p) ? 100 * r / (r + p) : 0, r, r + p}')
    fi
    label=$mode
    [ "$mode" = native ] || label="flexsc-run --route $mode"
    p50=$(median <<<"${lat50[$mode]}") p90=$(median <<<"${lat90[$mode]}") p99=$(median <<<"${lat99[$mode]}")
    printf '| %s | %.0f | %.2f | %.0f | %.0f | %.0f | %s |\n' "$label" "$r" "$(awk -v a="$r" -v b="$native" 'BEGIN {print a / b}')" \
      "$p50" "$p90" "$p99" "$share"
    rows+=("$(jq -cn --arg run "$label" --argjson r "$r" --argjson native "$native" \
      --argjson p50 "$p50" --argjson p90 "$p90" --argjson p99 "$p99" --argjson routed "$ro" --argjson passed "$pa" \
      --argjson rounds "$(json_numbers <<<"${rps[$mode]}")" \
      '{run: $run, requests_per_s: $r, ratio_to_native: ($r / $native), latency_us: {p50: $p50, p90: $p90, p99: $p99},
        routed: $routed, passed: $passed, requests_per_s_each_round: $rounds}')")
  done
  # The policy's decisions and measurements in the last round, for the
  # process that made the most calls (the worker).
  echo
  echo "The auto policy in round $rounds, the worker's report (FLEXSC_STATS):"
  echo
  echo '```'
  awk '/^flexsc: preload: [0-9]+ calls routed/ {
         block++; n = $3
         if (match($0, /, [0-9]+ passed through/)) n += substr($0, RSTART + 2) + 0
         calls[block] = n
       }
       /^flexsc: preload:/ { text[block] = text[block] $0 "\n" }
       END { best = 1; for (b in calls) if (calls[b] > calls[best]) best = b; printf "%s", text[best] }' \
    "$tmp/stats-auto-$rounds.txt"
  echo '```'
} >"$results/table.md"
printf '%s\n' "${rows[@]}" | jq -s --arg nginx "$("$nginx" -v 2>&1 | sed 's/.*\///')" --argjson rounds "$rounds" \
  --argjson seconds "$duration" --arg backend "${FLEXSC_BACKEND:-auto}" \
  '{benchmark: "server-bench", nginx: $nginx, wrk: "-t1 -c32 --latency, /page.bin (4 KiB)", backend: $backend,
    rounds: $rounds, seconds_each: $seconds, rows: .}' >"$results/results.json"
results_publish server
