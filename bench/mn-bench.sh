#!/usr/bin/env bash
# The M:N experiments: installs what is missing, builds (Release) and runs
# bench/mn_bench (fiber against kernel-thread handoffs; a request/response
# loop over Unix sockets with 1 to 10,000 connections, one kernel thread per
# connection against fibers with synchronous syscalls and fibers on every
# flexsc backend that starts here; 3 repetitions, medians) and writes the
# run to docs/results/mn-bench-<date>/ (see bench/common.sh): the table, the
# JSON, and requests/s against connections per build.
#   bash bench/mn-bench.sh [extra Google Benchmark or --mn_* flags]
# FLEXSC_BENCH_QUICK=1: 1 and 50 connections, once, briefly (build/results-quick/).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/common.sh
. bench/common.sh
results_begin mn-bench "mn_bench: fibers against kernel threads, request/response over Unix sockets, per build and connection count" "$@"
bash scripts/deps.sh
release_build mn_bench

repetitions=3 args=()
[ -z "$quick" ] || repetitions=1 args=('--mn_conns=1,50' --benchmark_min_time=0.01)
results_gbench "$build/bench/mn_bench" --mn_table "$repetitions" "${args[@]}" "$@"
# Where each build's threads ran, as mn_bench labels its rows.
results_note "Cores, per build:
$(jq -r '[.benchmarks[] | select(.run_name | startswith("RR/")) | select(.label)
  | "  - \(.run_name | split("/")[1]): \(.label)"] | unique[]' "$results/results.json")"
results_publish mn
