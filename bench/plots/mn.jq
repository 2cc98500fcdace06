# mn_bench's request/response rows (RR/<build>/conns:<n>) as gnuplot's
# data: one line per connection count, one column per build (in the order
# they ran), requests/s in thousands; the median over repetitions when there
# were several; "-" where a build has no figure.
[.benchmarks[] | select(.run_name | startswith("RR/")) | select(.error_occurred | not)]
| group_by(.run_name) | map((map(select(.aggregate_name == "median")) | first) // .[0])
| map((.run_name | split("/")) as $p
      | {build: $p[1], conns: ($p[2] | ltrimstr("conns:") | tonumber), rps: .["req/s"], order: .family_index})
| (sort_by(.order) | reduce .[].build as $b ([]; if any(.[]; . == $b) then . else . + [$b] end)) as $builds
| (["connections"] + $builds | map(@json) | join(" ")),
  (group_by(.conns)[] | . as $rows
   | [.[0].conns | tostring] + ($builds | map(. as $b | ($rows[] | select(.build == $b) | .rps / 1000 | tostring) // "-"))
   | join(" "))
