# server-bench as bars, side by side: requests/s per run, and each run's
# latency percentiles (bench/plots/server.jq).
width = 1000
height = 460
load 'bench/plots/output.gp'
set encoding utf8
unset title
set multiplot layout 1, 2 title heading
set datafile missing '-'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set xtics scale 0 nomirror
set ytics nomirror
set grid ytics
set yrange [0:*]
set title 'requests/s (thousands)'
plot data index 0 using 2:xtic(1) notitle
set title 'latency (µs, log scale)'
set logscale y
set yrange [*:*]
set key top left autotitle columnheader
plot for [i = 2:4] data index 1 using i:xtic(1)
unset multiplot
