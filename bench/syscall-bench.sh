#!/usr/bin/env bash
# The headline: installs what is missing, builds (Release), runs
# flexsc_bench (synchronous against exception-less system calls, every
# backend that starts here; 5 repetitions, medians) and writes the run to
# docs/results/syscall-bench-<date>/ (see bench/common.sh): the table of
# ratios, the JSON, and the ratios as bars.
#   bash bench/syscall-bench.sh [extra Google Benchmark or --flexsc_* flags]
# FLEXSC_BENCH_QUICK=1: a few rows, once, briefly (build/results-quick/).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/common.sh
. bench/common.sh
results_begin syscall-bench "flexsc_bench: exception-less system calls on each backend against the synchronous call" "$@"
bash scripts/deps.sh
release_build flexsc_bench

repetitions=5 args=()
[ -z "$quick" ] || repetitions=1 args=(--benchmark_filter='^(Sync/getppid|ExLess/[^/]*/getppid/batch:(1|64))(/|$)'
  --benchmark_min_time=0.02)
results_gbench "$build/bench/flexsc_bench" --flexsc_table "$repetitions" "${args[@]}" "$@"
results_publish ratio
