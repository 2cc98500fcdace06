#!/usr/bin/env bash
# flexsc_bench on the kernel shim, in the QEMU guest that boots Debian's
# kernel with the module loaded (tests/shim/guest.sh), against the
# synchronous syscall and the thread backend in the same run (5
# repetitions, medians), written to docs/results/shim-bench-<date>/ (see
# bench/common.sh) with the ratios as bars.  The guest's CPU is emulated
# (TCG): see kernel-shim/README.md on what these figures are.
#   bash bench/shim-bench.sh [extra Google Benchmark flags, without spaces]
# FLEXSC_BENCH_QUICK=1: getppid at batch:64, once, briefly (build/results-quick/).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/common.sh
. bench/common.sh
results_begin shim-bench "flexsc_bench in a QEMU guest (TCG): the kernel shim and the thread backend against the synchronous call" "$@"
bash scripts/deps.sh shim
release_build flexsc_bench

work=$build/shim-bench
filter='^(Sync/(getppid|read|write)|SyncLibc/getppid|ExLess/(shim|thread)/(nop|getppid|read|write)/batch:(1|8|64|256))'
repetitions=5 min_time=0.3
[ -z "$quick" ] || filter='^(Sync/getppid|ExLess/(shim|thread)/getppid/batch:64)' repetitions=1 min_time=0.05
gbench_flags --flexsc_table "$repetitions" /tmp/
# Repetitions interleaved at random: a host that slows down for a while
# (this VM's does) then spoils one repetition of many rows, not a row.
program="$build/bench/flexsc_bench::${gbench_flags[*]} --benchmark_enable_random_interleaving=true --benchmark_min_time=$min_time --flexsc_backends=shim,thread --benchmark_filter=$filter${*:+ $*}"
results_program="\`$(shell_words bash tests/shim/guest.sh "$work" kernel-shim "$program" FETCH=/tmp/results.json FETCH=/tmp/table.md)\`"
rm -f "$work/results.json" "$work/table.md"
FLEXSC_GUEST_TIMEOUT=${FLEXSC_GUEST_TIMEOUT:-1500} bash tests/shim/guest.sh "$work" kernel-shim "$program" \
  FETCH=/tmp/results.json FETCH=/tmp/table.md
cp "$work/results.json" "$work/table.md" "$results/"
results_note "$(jq -r '.context | "Guest (QEMU, TCG): \(.cpu_model), \(.nproc) vCPUs, \(.kernel); the cores below are the guest'"'"'s"' \
  "$results/results.json")"
results_where="a QEMU guest (TCG) on $results_where"
results_publish ratio
