# The output of every plot in bench/plots/: `load` it after setting width
# and height (pixels); format ('svg' or 'png') and out (the file) come from
# the command line (bench/common.sh, results_plot).  Names such as
# uring_sqpoll are shown as written, not as subscripts (noenhanced).
if (format eq 'svg') {
  set terminal svg size width, height dynamic noenhanced font 'sans,11' background rgb 'white'
} else {
  set terminal pngcairo size width, height noenhanced font 'sans,10' background rgb 'white'
}
set output out
set title heading
