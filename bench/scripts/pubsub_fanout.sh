#!/usr/bin/env bash
# One publication to many local subscribers, against plain broadcast:
# ringlink-echo (one reactor, pinned to core 0) holds LINKS links that
# bench/pubsub_fanout (core 1) opens, subscribed to one topic (--pubsub) or
# plain (--broadcast, where every message goes to every link); one more link
# sends PUBLICATIONS messages of SIZE bytes. Prints, per mode, deliveries per
# second and the server's CPU per delivery. Each run takes a few seconds.
#
#   bench/scripts/pubsub_fanout.sh BUILD_DIR [LINKS] [PUBLICATIONS] [SIZE] [RUNS]
set -euo pipefail
build=${1:?usage: pubsub_fanout.sh BUILD_DIR [LINKS] [PUBLICATIONS] [SIZE] [RUNS]}
links=${2:-10000} pubs=${3:-50} size=${4:-64} runs=${5:-3}
ulimit -n 20000 2>/dev/null || true
echo "# $(date -u +%FT%TZ) $(uname -r) $(nproc) cores; ringlink-echo --reactors 1; links=$links publications=$pubs size=$size"
for run in $(seq "$runs"); do
  for mode in pubsub broadcast; do
    work=$(mktemp -d)
    taskset -c 0 "$build/tools/ringlink-echo" --port 0 --port-file "$work/port" --reactors 1 --ping-interval 0 \
      "--$mode" 2>/dev/null &
    spid=$!
    for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
    line=$(taskset -c 1 "$build/bench/pubsub_fanout" --port "$(cat "$work/port")" --server-pid $spid --mode $mode \
             --links "$links" --publications "$pubs" --size "$size" || true)
    kill $spid; wait $spid 2>/dev/null || true
    rm -rf "$work"
    echo "run=$run $line"
  done
done
