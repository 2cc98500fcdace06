# Helpers the benchmark scripts share (sourced, not run).

# The median of the numbers on stdin (separated by spaces or lines).
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

# The machine a table was measured on: CPU model, CPU count, kernel.
machine() { echo "$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n 1), nproc $(nproc), $(uname -sr)"; }

# The drop-in wrapper's decisions in a FLEXSC_STATS file: "routed passed",
# summed over every process that reported there; fails when none did.
decisions() {
  awk '/^flexsc: preload: [0-9]+ calls routed/ {
         found = 1; routed += $3
         if (match($0, /, [0-9]+ passed through/)) passed += substr($0, RSTART + 2) + 0
       }
       END { if (!found) exit 1; print routed + 0, passed + 0 }' "$1"
}
