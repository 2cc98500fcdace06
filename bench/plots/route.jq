# route-bench's rows as gnuplot's data: a line per call and thread count
# ("fstat x4"), a column per route through the wrapper, each route's
# calls/s over the native run's.
include "common";
[.rows[] | select(.route != "native") | {row: "\(.call) x\(.threads)", column: .route, value: .ratio_to_native}]
| matrix("call")
