# mn_bench's request/response rows (RR/<build>/conns:<n>) as gnuplot's
# data: a line per connection count, a column per build (in the order they
# ran), requests/s in thousands, the median over repetitions when there
# were several.
include "common";
[.benchmarks[] | select(.run_name | startswith("RR/")) | select(.error_occurred | not)]
| group_by(.run_name) | map((map(select(.aggregate_name == "median")) | first) // .[0])
| map((.run_name | split("/")) as $p
      | {row: ($p[2] | ltrimstr("conns:") | tonumber), column: $p[1], value: (.["req/s"] / 1000), order: .family_index})
| sort_by(.order) | sort_by(.row) | matrix("connections")
