#!/usr/bin/env bash
# Two builds of ringlink-echo, A and B, under the same load in turns (A B A B
# ...), so that drift of this shared machine falls on both alike. Each run is
# one echo_bench.sh run (server on core 0, load on core 1); prints every run,
# each side's median, and the B/A ratios of the medians. The load tool is A's
# unless LOAD= names another.
#
#   bench/scripts/ab_echo.sh BUILD_A BUILD_B [CONNS] [SIZE] [INFLIGHT] [DURATION] [RUNS]
set -euo pipefail
a=${1:?usage: ab_echo.sh BUILD_A BUILD_B [CONNS] [SIZE] [INFLIGHT] [DURATION] [RUNS]}
b=${2:?usage: ab_echo.sh BUILD_A BUILD_B [CONNS] [SIZE] [INFLIGHT] [DURATION] [RUNS]}
conns=${3:-100} size=${4:-64} inflight=${5:-1} duration=${6:-10} runs=${7:-3}
export LOAD=${LOAD:-$a/tools/ringlink-load}
here=$(dirname "$0")
ra=() rb=()
for run in $(seq "$runs"); do
  for side in a b; do
    build=$a; [ $side = b ] && build=$b
    line=$(bash "$here/echo_bench.sh" "$build" "$conns" "$size" "$inflight" "$duration" 1 | sed -n 's/^median: .* = //p')
    echo "run $run $side: msgs/s p50_us p99_us server_cpu% load_cpu% errors = $line"
    if [ $side = a ]; then ra+=("$line"); else rb+=("$line"); fi
  done
done
median() { printf '%s\n' "$@" | sort -n -k1 | awk -v n=$# 'NR==int((n+1)/2)'; }
ma=$(median "${ra[@]}"); mb=$(median "${rb[@]}")
echo "A $a conns=$conns size=$size inflight=$inflight median: $ma"
echo "B $b conns=$conns size=$size inflight=$inflight median: $mb"
echo "$ma $mb" | awk '{printf "B/A: msgs/s %.3f  p50 %.3f  p99 %.3f  server_cpu%% %.3f\n", $7/$1, $8/$2, $9/$3, ($10>0&&$4>0)?$10/$4:0}'
