#!/usr/bin/env bash
# The M:N experiments: installs what is missing, builds (Release) and runs
# bench/mn_bench (fiber against kernel-thread handoffs; a request/response
# loop over Unix sockets with 1 to 10,000 connections, one kernel thread per
# connection against fibers with synchronous syscalls and fibers on every
# flexsc backend that starts here).  3 repetitions, medians.
#   bash bench/mn-bench.sh [extra Google Benchmark or --mn_* flags]
# Results go to results/: mn_bench.json, mn_bench.md (the table), mn_bench.svg (the plot).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/common.sh
. bench/common.sh
bash scripts/deps.sh

build=build/release
release_build mn_bench

mkdir -p results
"$build/bench/mn_bench" \
  --benchmark_repetitions="${FLEXSC_BENCH_REPETITIONS:-3}" \
  --benchmark_report_aggregates_only=true \
  --benchmark_out=results/mn_bench.json --benchmark_out_format=json \
  --mn_table=results/mn_bench.md --mn_plot=results/mn_bench.svg "$@"
