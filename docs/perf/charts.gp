# connreg-bench charts: gnuplot docs/perf/charts.gp
set terminal pngcairo size 1100,600 noenhanced
set datafile missing 'NaN'

set output 'docs/perf/ns_by_scenario_n10000.png'
set title 'ns per lookup, by scenario and contender (lower is better), n = 10000 (1 reader; median of reps)'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set xtics rotate by -25
set key top left
set grid ytics
unset xrange
set logscale y
set ylabel 'ns per lookup (log)'
set yrange [*:*]
plot for [i=2:7] 'docs/perf/ns_by_scenario_n10000.dat' using i:xtic(1) title columnheader(i)
unset logscale y
set xtics norotate

set output 'docs/perf/writer_n10000.png'
set title 'writer ops/s (M), by scenario and contender, n = 10000 (1 reader; median of reps)'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set xtics rotate by -25
set key top left
set grid ytics
unset xrange
unset logscale y
set ylabel 'M ops/s'
set yrange [0:*]
set key top right
plot for [i=2:7] 'docs/perf/writer_n10000.dat' using i:xtic(1) title columnheader(i)
unset logscale y
set xtics norotate

set output 'docs/perf/latency_lookup_hit_n10000.png'
set title 'sampled lookup latency, lookup_hit, n = 10000, 1 reader'
set style data linespoints
set logscale y
set ylabel 'ns (log)'
set xlabel 'percentile'
set xrange [0.2:5.2]
set yrange [*:*]
set xtics ('p50' 0.301, 'p90' 1, 'p99' 2, 'p99.9' 3, 'p99.99' 4, 'max' 5)
set key top left
set grid
plot for [i=2:7] 'docs/perf/latency_lookup_hit_n10000.dat' using 1:i with linespoints title columnheader(i)
unset logscale y
unset xlabel
unset xrange
set xtics autofreq

set output 'docs/perf/latency_lookup_hit_with_updater_n10000.png'
set title 'sampled lookup latency, lookup_hit_with_updater, n = 10000, 1 reader'
set style data linespoints
set logscale y
set ylabel 'ns (log)'
set xlabel 'percentile'
set xrange [0.2:5.2]
set yrange [*:*]
set xtics ('p50' 0.301, 'p90' 1, 'p99' 2, 'p99.9' 3, 'p99.99' 4, 'max' 5)
set key top left
set grid
plot for [i=2:7] 'docs/perf/latency_lookup_hit_with_updater_n10000.dat' using 1:i with linespoints title columnheader(i)
unset logscale y
unset xlabel
unset xrange
set xtics autofreq

set output 'docs/perf/scaling_n10000.png'
set title 'reader scaling, lookup_hit, n = 10000: all readers together'
set style data linespoints
set logscale y
set ylabel 'M lookups/s (log)'
set xlabel 'readers (processes or threads, one per CPU)'
set xrange [0.8:2.2]
set xtics 1
set yrange [*:*]
set key top left
set grid
plot for [i=2:7] 'docs/perf/scaling_n10000.dat' using 1:i with linespoints title columnheader(i)
unset logscale y
unset xlabel
unset xrange
set xtics autofreq

set output 'docs/perf/ns_by_scenario_n1000000.png'
set title 'ns per lookup, by scenario and contender (lower is better), n = 1000000 (1 reader; median of reps)'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set xtics rotate by -25
set key top left
set grid ytics
unset xrange
set logscale y
set ylabel 'ns per lookup (log)'
set yrange [*:*]
plot for [i=2:7] 'docs/perf/ns_by_scenario_n1000000.dat' using i:xtic(1) title columnheader(i)
unset logscale y
set xtics norotate

set output 'docs/perf/writer_n1000000.png'
set title 'writer ops/s (M), by scenario and contender, n = 1000000 (1 reader; median of reps)'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set xtics rotate by -25
set key top left
set grid ytics
unset xrange
unset logscale y
set ylabel 'M ops/s'
set yrange [0:*]
set key top right
plot for [i=2:7] 'docs/perf/writer_n1000000.dat' using i:xtic(1) title columnheader(i)
unset logscale y
set xtics norotate

set output 'docs/perf/latency_lookup_hit_n1000000.png'
set title 'sampled lookup latency, lookup_hit, n = 1000000, 1 reader'
set style data linespoints
set logscale y
set ylabel 'ns (log)'
set xlabel 'percentile'
set xrange [0.2:5.2]
set yrange [*:*]
set xtics ('p50' 0.301, 'p90' 1, 'p99' 2, 'p99.9' 3, 'p99.99' 4, 'max' 5)
set key top left
set grid
plot for [i=2:7] 'docs/perf/latency_lookup_hit_n1000000.dat' using 1:i with linespoints title columnheader(i)
unset logscale y
unset xlabel
unset xrange
set xtics autofreq

set output 'docs/perf/latency_lookup_hit_with_updater_n1000000.png'
set title 'sampled lookup latency, lookup_hit_with_updater, n = 1000000, 1 reader'
set style data linespoints
set logscale y
set ylabel 'ns (log)'
set xlabel 'percentile'
set xrange [0.2:5.2]
set yrange [*:*]
set xtics ('p50' 0.301, 'p90' 1, 'p99' 2, 'p99.9' 3, 'p99.99' 4, 'max' 5)
set key top left
set grid
plot for [i=2:7] 'docs/perf/latency_lookup_hit_with_updater_n1000000.dat' using 1:i with linespoints title columnheader(i)
unset logscale y
unset xlabel
unset xrange
set xtics autofreq

set output 'docs/perf/scaling_n1000000.png'
set title 'reader scaling, lookup_hit, n = 1000000: all readers together'
set style data linespoints
set logscale y
set ylabel 'M lookups/s (log)'
set xlabel 'readers (processes or threads, one per CPU)'
set xrange [0.8:2.2]
set xtics 1
set yrange [*:*]
set key top left
set grid
plot for [i=2:7] 'docs/perf/scaling_n1000000.dat' using 1:i with linespoints title columnheader(i)
unset logscale y
unset xlabel
unset xrange
set xtics autofreq
