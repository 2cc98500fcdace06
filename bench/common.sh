# shellcheck shell=bash
# Helpers the benchmark launchers share.  Sourced from the repository's
# root (every launcher goes there first), not run.
#
# One run of a launcher becomes one folder, docs/results/<name>-<date>/
# (date in UTC; a second run the same day replaces the first):
#   results.md    the header (command, source, date, machine), the plot, the table
#   results.json  Google Benchmark's JSON, or the launcher's own
#   results.svg, results.png   drawn by gnuplot from results.json
# and docs/results/README.md, the index, is written again.  A launcher calls
#   results_begin <name> <what it measures, one line> "$@"
#   ... writes $results/results.json and $results/table.md ...
#   results_publish <plot>     (bench/plots/<plot>.jq and .gp)
#
# FLEXSC_BENCH_QUICK=1 asks each launcher for a short run that proves the
# machinery and measures nothing; it is written to build/results-quick/,
# never to docs/.  FLEXSC_RESULTS_DIR puts the runs elsewhere either way.
# FLEXSC_BUILD_DIR is the build to measure (default build/release).

build=${FLEXSC_BUILD_DIR:-build/release}
quick=""
[ "${FLEXSC_BENCH_QUICK:-0}" = 0 ] || quick=1

# Configures a Release build without tests and examples, unless $build
# holds a build already (the header names its type), and builds the targets.
release_build() {
  [ -f "$build/CMakeCache.txt" ] ||
    cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DFLEXSC_TESTS=OFF -DFLEXSC_EXAMPLES=OFF >/dev/null
  cmake --build "$build" -j "$(nproc)" --target "$@"
}

# The median of the numbers on stdin (separated by spaces or lines).
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

# The numbers on stdin (separated by spaces or lines) as a JSON array.
json_numbers() { tr ' ' '\n' | grep -v '^$' | jq -cs .; }

# The machine a run was measured on: CPU model, CPU count, kernel.
machine() {
  echo "$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n 1), $(grep -c '^processor' /proc/cpuinfo) vCPUs, $(uname -sr)"
}

# The drop-in wrapper's decisions in a FLEXSC_STATS file: "routed passed",
# summed over every process that reported there; fails when none did.
decisions() {
  awk '/^flexsc: preload: [0-9]+ calls routed/ {
         found = 1; routed += $3
         if (match($0, /, [0-9]+ passed through/)) passed += substr($0, RSTART + 2) + 0
       }
       END { if (!found) exit 1; print routed + 0, passed + 0 }' "$1"
}

# Arguments as one shell command line, quoted only where they need it.
shell_words() {
  local a words=()
  for a in "$@"; do
    if [[ $a =~ ^[A-Za-z0-9_./:=,+@%-]+$ ]]; then words+=("$a"); else words+=("'${a//"'"/"'\\''"}'"); fi
  done
  echo "${words[*]}"
}

# Starts a run: $results is the folder it writes into (renamed into place
# by results_publish, so a run that fails replaces nothing); $results_where,
# the machine in the plot's heading, may be changed.
results_begin() {
  results_name=$1 results_what=$2
  shift 2
  local settings
  mapfile -t settings < <(env | grep -E '^FLEXSC_' | sort)
  results_command=$(shell_words "${settings[@]}" bash "bench/$results_name.sh" "$@")
  results_root=${FLEXSC_RESULTS_DIR:-docs/results}
  [ -z "$quick" ] || results_root=${FLEXSC_RESULTS_DIR:-build/results-quick}
  results_date=$(date -u +%F)
  results_started=$(date -u '+%F %H:%M UTC') results_t0=$SECONDS
  results_load=$(cut -d' ' -f1-3 /proc/loadavg)
  results_program="" results_notes=() results_where=$(machine)
  results=$results_root/.$results_name-$results_date.partial
  rm -rf "$results" && mkdir -p "$results"
}

# Runs a program in the run's folder, and puts its command line in the
# header.  (A launcher that runs it otherwise sets $results_program, in
# Markdown, itself.)
results_run() {
  local program
  program=$(realpath "$1")
  results_program="\`$(shell_words "$@")\`, run in the run's folder"
  (cd "$results" && "$program" "${@:2}")
}

# The flags that make one of this repository's Google Benchmark programs
# write a run into <dir> ("" for the current folder): results.json and its
# table, table.md (written by <table flag>=<path>); <repetitions> unless
# FLEXSC_BENCH_REPETITIONS.  Into the array gbench_flags.
gbench_flags() {
  local table_flag=$1 repetitions=$2 dir=$3
  gbench_flags=(--benchmark_repetitions="${FLEXSC_BENCH_REPETITIONS:-$repetitions}"
    --benchmark_report_aggregates_only=true --benchmark_out="${dir}results.json" --benchmark_out_format=json
    "$table_flag=${dir}table.md")
}

# Runs such a program into the run's folder:
#   results_gbench <program> <table flag> <repetitions> [its arguments...]
results_gbench() {
  gbench_flags "$2" "$3" ""
  results_run "$1" "${gbench_flags[@]}" "${@:4}"
}

# A line for the header, after the machine.  (The cores, when the JSON's
# context names them, come after these.)
results_note() { results_notes+=("$1"); }

results_header() {
  local source build_type cores note
  source="commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  [ -z "$(git status --porcelain -- . ':!docs/results' 2>/dev/null)" ] || source+=" with uncommitted changes"
  build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build/CMakeCache.txt" 2>/dev/null)
  cores=$(jq -r '.context // {} | select(.user_cpus) | "user CPUs \(.user_cpus), syscall CPUs \(.syscall_cpus)"' \
    "$results/results.json")
  echo "# $results_name, $results_date"
  echo
  echo "> $results_what"
  echo
  echo "Written by \`bench/$results_name.sh\`; a new run replaces this folder, and nothing here is edited by hand."
  echo
  echo "- Command: \`$results_command\`"
  [ -z "$results_program" ] || echo "- Program: $results_program"
  echo "- Source: $source; ${build_type:-unknown} build in \`$build\`"
  local took=$((SECONDS - results_t0))
  if ((took < 120)); then took="$took s"; else took="$(((took + 30) / 60)) min"; fi
  echo "- Started: $results_started; took $took; load average at the start $results_load"
  echo "- Machine: $(machine)"
  for note in "${results_notes[@]}"; do echo "- $note"; done
  [ -z "$cores" ] || echo "- Cores: $cores"
  [ -z "$quick" ] || echo "- A quick run (FLEXSC_BENCH_QUICK=1): it proves the scripts and measures nothing."
  echo
  echo "![$results_name](results.svg)"
  echo
  echo "Files: [results.json](results.json), [results.svg](results.svg), [results.png](results.png)."
}

# The plot: bench/plots/<plot>.jq turns results.json into gnuplot's data,
# bench/plots/<plot>.gp draws it, as SVG and as PNG.
results_plot() {
  local plot=$1 format
  jq -L bench/plots -r -f "bench/plots/$plot.jq" "$results/results.json" >"$results/plot.dat"
  for format in svg png; do
    gnuplot -e "format = '$format'; out = '$results/results.$format'; data = '$results/plot.dat'" \
      -e "heading = '$results_name, $results_date: ${results_where//\'/\'\'}'" "bench/plots/$plot.gp"
  done
  rm "$results/plot.dat"
}

# Ends a run: results.md, the plot, the folder in place, the index.
results_publish() {
  local final=$results_root/$results_name-$results_date
  { results_header && cat "$results/table.md"; } >"$results/results.md"
  rm "$results/table.md"
  results_plot "$1"
  rm -rf "$final" && mv "$results" "$final"
  results_index
  echo
  cat "$final/results.md"
  echo
  echo "Written to $final/ (index: $results_root/README.md)."
}

# The index of every run under $results_root: the latest of each benchmark
# first, then the earlier ones.
results_index() {
  local names name dirs dir latest what earlier
  names=$(find "$results_root" -mindepth 1 -maxdepth 1 -type d -name '*-[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]' \
    -printf '%f\n' | sed 's/-[0-9-]*$//' | sort -u)
  {
    echo "# Benchmark results"
    echo
    echo "Each run of a launcher, \`bash bench/<benchmark>.sh\`, writes a folder"
    echo "\`<benchmark>-<date>\` here (the command, the machine, the table, the JSON and"
    echo "the plot) and then this index; nothing here is edited by hand."
    echo
    if [ -z "$names" ]; then
      echo "No run yet."
    else
      echo "| benchmark | what it measures | latest run | earlier runs |"
      echo "| --- | --- | --- | --- |"
    fi
    for name in $names; do
      mapfile -t dirs < <(find "$results_root" -mindepth 1 -maxdepth 1 -type d -name "$name-[0-9]*" -printf '%f\n' |
        grep -E "^$name-[0-9]{4}-[0-9]{2}-[0-9]{2}$" | sort -r)
      latest=${dirs[0]}
      what=$(sed -n 's/^> //p' "$results_root/$latest/results.md" | head -n 1)
      earlier=""
      for dir in "${dirs[@]:1}"; do earlier+="${earlier:+, }[${dir#"$name-"}]($dir/results.md)"; done
      echo "| \`$name\` | $what | [${latest#"$name-"}]($latest/results.md) | ${earlier:--} |"
    done
  } >"$results_root/README.md"
}
