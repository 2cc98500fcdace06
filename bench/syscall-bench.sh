#!/usr/bin/env bash
# The main job: install what is missing, build (Release), run flexsc_bench
# and print synchronous against exception-less as a table of ratios.
#   bash bench/syscall-bench.sh [extra Google Benchmark flags]
# Results go to results/ (JSON and the Markdown table).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=common.sh
. bench/common.sh
bash scripts/deps.sh

build=build/release
release_build flexsc_bench

mkdir -p results
"$build/bench/flexsc_bench" \
  --benchmark_repetitions="${FLEXSC_BENCH_REPETITIONS:-5}" \
  --benchmark_report_aggregates_only=true \
  --benchmark_out=results/flexsc_bench.json --benchmark_out_format=json \
  --flexsc_table=results/flexsc_bench.md "$@"
echo
cat results/flexsc_bench.md
