#!/usr/bin/env bash
# A/B of kernel-shim builds in one QEMU guest boot: each round loads each
# build in turn and runs Sync/getppid and ExLess/shim/getppid/batch:64
# with its flexsc_bench; prints the median of the per-round ratios.
#   ab_host.sh <rounds> <module.ko>:<flexsc_bench> ...
# Run from the repository root.  Builds of different ABIs need the
# flexsc_bench of their ABI.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
rounds=$1; shift
work=$(mktemp -d)
args=() pairs=()
declare -A copied
for pair in "$@"; do
  ko=${pair%%:*} bench=${pair#*:}
  name=$(basename "$ko" .ko) bname=$(basename "$bench")
  cp "$ko" "$work/$name.ko" && args+=("$work/$name.ko")
  # The guest copies programs in (with their libraries); a bench is run once here to get it copied.
  if [ -z "${copied[$bname]:-}" ]; then args+=("$bench::--benchmark_list_tests=true --benchmark_filter=none"); copied[$bname]=1; fi
  pairs+=("$name:$bname")
done
# A hang prints every CPU's stack (one such hang, at a module switch, is unexplained).
FLEXSC_GUEST_APPEND=${FLEXSC_GUEST_APPEND:-"loglevel=7 softlockup_all_cpu_backtrace=1"} \
  FLEXSC_GUEST_TIMEOUT=${AB_TIMEOUT:-600} bash tests/shim/guest.sh "$work/guest" kernel-shim "${args[@]}" \
  "$here/ab_guest.sh::$rounds ${pairs[*]}" >"$work/guest.log" 2>&1
grep -a "^AB" "$work/guest/serial.log" | python3 -c '
import collections, statistics as st, sys
res = collections.defaultdict(list)
for line in sys.stdin:
    f = line.split()
    if f[1] == "insmod": print(line.strip()); continue
    res[(f[1], f[4])].append(float(f[6]))
for m in dict.fromkeys(k[0] for k in res):
    s, e = res[(m, "Sync/getppid")], res[(m, "ExLess/shim/getppid/batch:64")]
    r = [b / a for a, b in zip(s, e)]
    print(f"{m:12s} sync {st.median(s):.3f} M/s  exless {st.median(e):.3f} M/s  ratio median {st.median(r):.2f}  rounds " + " ".join(f"{x:.2f}" for x in r))
'
echo "(guest output in $work)"
