# flexsc_bench's rows measured on a backend, with the ratio to their
# synchronous baseline that its table shows (the counter ratio_to_sync), as
# gnuplot's data: one line per call ("getppid/batch:64", "Mix pread4k/batch:8"),
# one column per backend, "-" where a backend has no figure.
(.context.flexsc_backends | split(",")) as $backends
| [.benchmarks[] | select(.ratio_to_sync != null)
   | (.run_name | split("/") | map(select(test("^(real_time|min_time:|threads:)") | not))) as $p
   | select(any($backends[]; . == $p[1]))
   | {call: ((if $p[0] == "ExLess" then "" else $p[0] + " " end) + ($p[2:] | join("/"))),
      backend: $p[1], ratio: .ratio_to_sync, order: .family_index}]
| group_by(.call) | sort_by(map(.order) | min)
| (["call"] + $backends | map(@json) | join(" ")),
  (.[] | . as $rows
   | [.[0].call | @json] + ($backends | map(. as $b | ($rows[] | select(.backend == $b) | .ratio | tostring) // "-"))
   | join(" "))
