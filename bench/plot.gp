# bench/plot.gp -- plots of the lmdbjournal benchmark.
#   gnuplot -e "dir='bench/results'" bench/plot.gp
# Reads the .dat files build/bench writes into dir; writes PNGs beside them.
if (!exists("dir")) dir = 'bench/results'

set terminal pngcairo size 900,560 noenhanced font ",10"
set key top right
set grid
set style data linespoints

# 1. Async throughput against the number of actors.
set output dir.'/throughput_vs_actors.png'
set title 'Async appends/s against actors (P=100 B, B=1000)'
set logscale x 10
set xlabel 'actors (A)'
set ylabel 'messages per second'
set format y '%.1s%c'
set yrange [0:*]
plot dir.'/scaling_actors.dat' using 1:2 title 'lmdbjournal' lw 2 pt 7, \
     ''                        using 1:3 title 'raw LMDB'    lw 2 pt 5, \
     ''                        using 1:4 title 'SQLite table' lw 2 pt 9

# 2. Async throughput against N.
set output dir.'/throughput_vs_n.png'
set title 'Async appends/s against messages written (A=100)'
set xlabel 'messages (N)'
plot dir.'/scaling_n.dat' using 1:2 title 'lmdbjournal' lw 2 pt 7, \
     ''                   using 1:3 title 'raw LMDB'    lw 2 pt 5, \
     ''                   using 1:4 title 'SQLite table' lw 2 pt 9
unset logscale x
set yrange [*:*]
set format y '%g'

# 3. Latency CDFs: x = latency (log), y = fraction of calls at or below it.
set key bottom right
set logscale x 10
set xlabel 'latency (µs)'
set ylabel 'fraction of calls'
set yrange [0:1]
set output dir.'/latency_async_cdf.png'
set title 'Async append: latency of one call (CDF)'
plot dir.'/latency_async.dat' using 2:1 with lines title 'lmdbjournal journal_append' lw 2, \
     ''                       using 3:1 with lines title 'raw LMDB put (+commit every B)' lw 2, \
     ''                       using 4:1 with lines title 'SQLite INSERT (+COMMIT every B)' lw 2

set output dir.'/latency_durable_cdf.png'
set title 'Durable append: latency of append + sync (CDF)'
plot dir.'/latency_durable.dat' using 2:1 with lines title 'lmdbjournal append + journal_sync' lw 2, \
     ''                         using 3:1 with lines title 'raw LMDB put + commit (fsync)' lw 2, \
     ''                         using 4:1 with lines title 'SQLite INSERT autocommit (FULL)' lw 2

# 4. The same as complementary CDFs (log y): the tail, p99 at 1e-2, p999 at 1e-3.
set ylabel 'fraction of calls slower'
set logscale y 10
set yrange [1e-5:1]
set key top right
set output dir.'/latency_async_tail.png'
set title 'Async append: latency tail (1 - CDF)'
plot dir.'/latency_async.dat' using 2:(1-$1) with lines title 'lmdbjournal journal_append' lw 2, \
     ''                       using 3:(1-$1) with lines title 'raw LMDB put (+commit every B)' lw 2, \
     ''                       using 4:(1-$1) with lines title 'SQLite INSERT (+COMMIT every B)' lw 2
set output dir.'/latency_durable_tail.png'
set title 'Durable append + sync: latency tail (1 - CDF)'
plot dir.'/latency_durable.dat' using 2:(1-$1) with lines title 'lmdbjournal append + journal_sync' lw 2, \
     ''                         using 3:(1-$1) with lines title 'raw LMDB put + commit (fsync)' lw 2, \
     ''                         using 4:(1-$1) with lines title 'SQLite INSERT autocommit (FULL)' lw 2
