# route-bench as bars: per call and thread count, each route's calls/s
# over the native run's (bench/plots/route.jq); the dashed line at 1 is
# native speed.
width = 820
height = 480
load 'bench/plots/output.gp'
set datafile missing '-'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set key above autotitle columnheader
set xtics scale 0 nomirror
set ytics nomirror
set grid ytics
set yrange [0:*]
set ylabel 'calls/s over native'
set arrow 1 from graph 0, first 1 to graph 1, first 1 nohead dashtype 2 linecolor 'black'
plot for [i = 2:*] data using i:xtic(1)
