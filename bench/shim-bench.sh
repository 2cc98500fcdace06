#!/usr/bin/env bash
# flexsc_bench on the kernel shim, in the QEMU guest that boots Debian's
# kernel with the module loaded (tests/shim/guest.sh), against the
# synchronous syscall and the thread backend in the same run.  The guest's
# CPU is emulated (TCG): see the README on what these figures are.
#   bash bench/shim-bench.sh [extra Google Benchmark flags]
# Results: results/shim_bench.md and results/shim_bench.json.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/common.sh
. bench/common.sh
bash scripts/deps.sh shim

build=build/release
release_build flexsc_bench

mkdir -p results
work=$build/shim-bench
# Repetitions interleaved at random: a host that slows down for a while
# (this VM's does) then spoils one repetition of many rows, not a row.
filter='^(Sync/(getppid|read|write)|SyncLibc/getppid|ExLess/(shim|thread)/(nop|getppid|read|write)/batch:(1|8|64|256))'
FLEXSC_GUEST_TIMEOUT=${FLEXSC_GUEST_TIMEOUT:-1500} bash tests/shim/guest.sh "$work" kernel-shim \
  "$build/bench/flexsc_bench::--benchmark_repetitions=${FLEXSC_BENCH_REPETITIONS:-5} --benchmark_enable_random_interleaving=true --benchmark_report_aggregates_only=true --benchmark_min_time=0.3 --flexsc_backends=shim,thread --benchmark_filter=$filter --benchmark_out=/tmp/shim_bench.json --flexsc_table=/tmp/shim_bench.md $*" \
  FETCH=/tmp/shim_bench.md FETCH=/tmp/shim_bench.json
cp "$work/shim_bench.md" "$work/shim_bench.json" results/
echo
cat results/shim_bench.md
