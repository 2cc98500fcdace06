# flexsc_bench's rows measured on a backend, with the ratio to their
# synchronous baseline that its table shows (the counter ratio_to_sync), as
# gnuplot's data: a line per call ("getppid/batch:64", "Mix pread4k/batch:8")
# in the order they were registered, a column per backend.
include "common";
(.context.flexsc_backends | split(",")) as $backends
| [.benchmarks[] | select(.ratio_to_sync != null)
   | (.run_name | split("/") | map(select(test("^(real_time|min_time:|threads:)") | not))) as $p
   | select(any($backends[]; . == $p[1]))
   | {row: ((if $p[0] == "ExLess" then "" else $p[0] + " " end) + ($p[2:] | join("/"))),
      column: $p[1], value: .ratio_to_sync, order: .family_index}]
| sort_by(.order) | matrix("call")
