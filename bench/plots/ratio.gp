# flexsc_bench's table as bars: per call, each backend's items/s over the
# synchronous call's (bench/plots/ratio.jq); above the dashed line at 1 the
# exception-less call is the faster.
rows = int(system("grep -c . '" . data . "'")) - 1
width = 640 + 50 * rows
height = 560
load 'bench/plots/output.gp'
set datafile missing '-'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set key above autotitle columnheader
set xtics rotate by 45 right scale 0 nomirror
set ytics nomirror
set grid ytics
set yrange [0:*]
set ylabel 'items/s over the synchronous call'
set bmargin 8
set arrow 1 from graph 0, first 1 to graph 1, first 1 nohead dashtype 2 linecolor 'black'
plot for [i = 2:*] data using i:xtic(1)
