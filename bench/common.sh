# Helpers the benchmark scripts share (sourced, not run).

# Configures a Release build without tests and examples (build/release, or
# FLEXSC_BUILD_DIR) and builds the given targets.
release_build() {
  local build=${FLEXSC_BUILD_DIR:-build/release}
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DFLEXSC_TESTS=OFF -DFLEXSC_EXAMPLES=OFF >/dev/null
  cmake --build "$build" -j "$(nproc)" --target "$@"
}

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
