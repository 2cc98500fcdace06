# server-bench's rows as gnuplot's data, two blocks: requests/s
# (thousands) per run, then the latency percentiles (µs) per run.
include "common";
[.rows[] | .label = (.run | sub("^flexsc-run "; ""))] as $rows
| ([$rows[] | {row: .label, column: "requests/s", value: (.requests_per_s / 1000)}] | matrix("run")),
  "", "",
  ([$rows[] | .label as $l | .latency_us | to_entries[] | {row: $l, column: .key, value}] | matrix("run"))
