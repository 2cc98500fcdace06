#!/usr/bin/env bash
# The benchmark launchers' results machinery (bench/common.sh and
# bench/plots/), on short runs of flexsc_bench and mn_bench from a build:
# a run's folder holds the header, the table, the JSON and both plots; the
# plot's data are the table's figures; the index links the run; a second
# run the same day replaces the first, and a run that fails replaces
# nothing.  No speed is judged.
#   bench_results.sh <build dir>
set -euo pipefail
build_dir=$(cd "$1" && pwd)
cd "$(dirname "$0")/.."
for tool in jq gnuplot; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed (bash scripts/deps.sh)"; exit 77; }
done
tmp=$(mktemp -d "${TMPDIR:-/tmp}/flexsc-results.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
results_dir=$tmp/results
export FLEXSC_RESULTS_DIR=$results_dir FLEXSC_BUILD_DIR=$build_dir FLEXSC_BENCH_QUICK=1
# shellcheck source=bench/common.sh
. bench/common.sh
fail() { echo "FAIL: $*"; exit 1; }
# The folders under the results, the index aside.
folders() { find "$results_dir" -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort; }

filter='--benchmark_filter=^(Sync/getppid|ExLess/thread/(nop|getppid)/batch:(1|8))(/|$)'
# A run as a launcher makes it: in a shell of its own, so that errexit
# holds (it does not inside `if` or `||`).
syscall_run() {
  bash -euo pipefail -c '. bench/common.sh
    results_begin syscall-bench "flexsc_bench, briefly" "$@"
    results_gbench "$build/bench/flexsc_bench" --flexsc_table 1 --flexsc_backends=thread --benchmark_min_time=0.01 "$@"
    results_publish ratio' syscall-run "$@"
}
syscall_run "$filter" >"$tmp/log" 2>&1 || { cat "$tmp/log"; fail "the flexsc_bench run"; }
run=$results_dir/syscall-bench-$(date -u +%F)
for f in results.md results.json results.svg results.png; do [ -s "$run/$f" ] || fail "no $f in $run"; done
[ "$(folders)" = "${run##*/}" ] || fail "other folders beside the run: $(folders)"
md=$run/results.md
for line in "# syscall-bench, " "bash bench/syscall-bench.sh '--benchmark_filter=" "- Program: \`$build/bench/flexsc_bench" "- Machine: " \
  "- Cores: user CPUs " "| benchmark | items/s (M/s) |" "![syscall-bench](results.svg)"; do
  grep -qF -- "$line" "$md" || fail "results.md has no line with '$line'"
done
grep -q '<svg' "$run/results.svg" || fail "results.svg is no SVG"
[ "$(head -c 4 "$run/results.png" | od -An -c | tr -d ' ')" = '211PNG' ] || fail "results.png is no PNG"

# The plot's bars are the table's ratios: every ExLess row, to two places.
plot=$(jq -L bench/plots -r -f bench/plots/ratio.jq "$run/results.json")
[ "$(head -n 1 <<<"$plot")" = '"call" "thread"' ] || fail "the plot's columns: $(head -n 1 <<<"$plot")"
rows=0
while read -r name value; do
  rows=$((rows + 1))
  call=${name#ExLess/thread/}
  bar=$(awk -v c="\"$call\"" '$1 == c {printf "%.2f", $2}' <<<"$plot")
  [ "$bar" = "$value" ] || fail "$name: the table says $value, the plot ${bar:-nothing}"
done < <(awk -F' \\| ' '$1 ~ /^\| ExLess\// {sub(/^\| /, "", $1); sub(/ \|$/, "", $3); print $1, $3}' "$md")
[ "$rows" = 4 ] || fail "$rows ExLess rows in the table, not 4"

grep -qF "[$(date -u +%F)](syscall-bench-$(date -u +%F)/results.md)" "$results_dir/README.md" || fail "the index does not link the run"

# Again the same day: the folder is replaced, not joined by another.
echo stale >"$run/stale"
syscall_run "$filter" >"$tmp/log" 2>&1 || { cat "$tmp/log"; fail "the second flexsc_bench run"; }
[ ! -e "$run/stale" ] || fail "the second run did not replace the first"
[ "$(folders)" = "${run##*/}" ] || fail "the second run left another folder: $(folders)"
# A run whose program fails leaves the last one as it was.
cp "$md" "$tmp/last.md"
if syscall_run --benchmark_no_such_flag >"$tmp/log" 2>&1; then fail "a run with a bad flag succeeded"; fi
cmp -s "$md" "$tmp/last.md" || fail "a failed run changed the last one"

# mn_bench: a line per connection count, a column per build, in thousands.
bash -euo pipefail -c '. bench/common.sh
  results_begin mn-bench "mn_bench, briefly"
  results_gbench "$build/bench/mn_bench" --mn_table 1 --mn_conns=1,20 --mn_builds=threads-sync,fibers-thread \
    --benchmark_min_time=0.01
  results_publish mn' >"$tmp/log" 2>&1 || { cat "$tmp/log"; fail "the mn_bench run"; }
run=$results_dir/mn-bench-$(date -u +%F)
plot=$(jq -L bench/plots -r -f bench/plots/mn.jq "$run/results.json")
[ "$(head -n 1 <<<"$plot")" = '"connections" "threads-sync" "fibers-thread"' ] || fail "mn plot columns: $(head -n 1 <<<"$plot")"
[ "$(tail -n +2 <<<"$plot" | cut -d' ' -f1 | tr '\n' ' ')" = "1 20 " ] || fail "mn plot rows: $plot"
while read -r conns sync fibers; do
  want=$(awk -F' \\| ' -v n="| $conns" '$1 == n {print $2, $3}' "$run/results.md" | sed 's/ (.*//')
  got=$(awk -v s="$sync" -v f="$fibers" 'BEGIN {printf "%.1f %.1f", s, f}')
  [ "$got" = "$want" ] || fail "mn_bench at $conns connections: the table says $want, the plot $got"
done < <(tail -n +2 <<<"$plot")
for name in mn-bench syscall-bench; do
  grep -qF "]($name-$(date -u +%F)/results.md)" "$results_dir/README.md" || fail "the index does not link $name"
done
echo "bench results: folders, header, plots and index as expected"
