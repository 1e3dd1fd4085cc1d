#!/bin/sh
# bench/run.sh -- run the lmdbjournal benchmark and draw its plots.
#
#   sh bench/run.sh quick [bench options]   ~1 minute on 2 cores, small sizes
#   sh bench/run.sh full  [bench options]   N=2M, A=100, P=100, B=1000, 10M replay store
#
# Normally reached through "make bench-quick" / "make bench", which build
# build/bench first.  Extra options go to build/bench (see bench/README.md),
# e.g.  sh bench/run.sh full --only durable --clients 16
#
# Environment: BENCH_DIR  where the stores are written (default /var/tmp;
#              use a disk-backed filesystem, not tmpfs, for the fsync figures)
#              BENCH_OUT  where results go (default bench/results)
set -eu

cd "$(dirname "$0")/.."
mode=${1:-quick}
[ $# -gt 0 ] && shift
out=${BENCH_OUT:-bench/results}
bin=build/bench

case $mode in
  quick) set -- --quick "$@" ;;
  full)  set -- --n 2000000 --actors 100 --payload 100 --batch 1000 --big 10000000 "$@" ;;
  *) echo "usage: sh bench/run.sh quick|full [bench options]" >&2; exit 1 ;;
esac

if [ ! -x "$bin" ]; then
  echo "run.sh: $bin is missing; build it with 'make $bin'" >&2
  exit 1
fi
mkdir -p "$out"

start=$(date +%s)
"$bin" --out "$out" "$@"
echo "bench: $mode run took $(( $(date +%s) - start )) s; results in $out/latest.md and $out/latest.csv"

if command -v gnuplot >/dev/null 2>&1; then
  gnuplot -e "dir='$out'" bench/plot.gp && echo "bench: plots in $out/*.png"
else
  echo "bench: gnuplot not found, no plots (install gnuplot-nox)"
fi
