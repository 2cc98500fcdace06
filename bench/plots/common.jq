# What the bench/plots/*.jq filters share (include "common";).

# The distinct values of an array, in the order they first appear.
def distinct: reduce .[] as $x ([]; if any(.[]; . == $x) then . else . + [$x] end);

# Cells {row, column, value} as gnuplot's data: a header line ($corner,
# then the columns), then a line per row, strings quoted; rows and
# columns in the order they first appear, "-" where a cell is missing.
def matrix($corner):
  def line: map(if . == null then "-" elif type == "string" then @json else tostring end) | join(" ");
  . as $cells
  | (map(.column) | distinct) as $columns
  | ([$corner] + $columns | line),
    (map(.row) | distinct[] as $row
     | [$row] + ($columns | map(. as $c | [$cells[] | select(.row == $row and .column == $c) | .value][0]))
     | line);
