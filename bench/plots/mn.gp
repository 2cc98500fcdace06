# mn_bench's request/response loop: requests/s against concurrent
# connections (log scale), one line per build (bench/plots/mn.jq).
width = 820
height = 460
load 'bench/plots/output.gp'
set datafile missing '-'
set logscale x 10
set key outside right top autotitle columnheader
set grid
set yrange [0:*]
set xlabel 'concurrent connections'
set ylabel 'requests/s (thousands)'
plot for [i = 2:*] data using 1:i with linespoints linewidth 2 pointtype 7 pointsize 0.8
