#!/usr/bin/env bash
# Where a cross-node ringlink node spends its CPU: the pubsub_cross.sh workload
# (2 ringlink-echo --pubsub --broker nodes and redis-server on core 0,
# ringlink-load --pubsub --pub-nodes 1 on core 1), with each node thread's
# user and system ticks, run time (schedstat) and context switches over a
# window of WINDOW_S seconds in the middle of the publishing.
#
#   bench/scripts/pubsub_threads.sh BUILD_DIR [SUBS] [RATE] [TOPICS] [PUBS] [WINDOW_S]
set -euo pipefail
build=${1:?usage: pubsub_threads.sh BUILD_DIR [SUBS] [RATE] [TOPICS] [PUBS] [WINDOW_S]}
subs=${2:-1000} rate=${3:-1000} topics=${4:-100} pubs=${5:-10} window=${6:-5}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/children.sh"
port=$(free_port)
echo "# $(date -u +%FT%TZ) $(uname -r) $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) (shared with other work); commit $(git -C "$here" rev-parse --short HEAD)"
echo "# command: bench/scripts/pubsub_threads.sh $*"
echo "# subs=$subs rate=$rate/s topics=$topics pubs=$pubs window=${window}s; redis + 2 nodes on core 0, load on core 1"
start_redis "$port" 0
nodes=()
for node in a b; do
  taskset -c 0 "$build/tools/ringlink-echo" --port 0 --port-file "$work/$node.port" --reactors 1 --ping-interval 0 \
    --pubsub --broker "redis://127.0.0.1:$port" 2>"$work/$node.err" &
  pids+=($!) nodes+=($!)
done
for node in a b; do for _ in $(seq 100); do [ -s "$work/$node.port" ] && break; sleep 0.05; done; done
snap() {
  for i in 0 1; do
    for t in /proc/${nodes[$i]}/task/*; do
      echo "$i $(basename "$t") $(awk '{print $14, $15}' "$t/stat") $(cut -d' ' -f1 "$t/schedstat") $(awk '/^voluntary_ctxt/ {v=$2} /^nonvoluntary_ctxt/ {n=$2} END {print v, n}' "$t/status")"
    done
  done
}
taskset -c 1 "$build/tools/ringlink-load" --pubsub "ws://127.0.0.1:$(cat "$work/a.port")/" "ws://127.0.0.1:$(cat "$work/b.port")/" \
  --pub-nodes 1 --subs "$subs" --pubs "$pubs" --topics "$topics" --rate "$rate" --duration "$((window + 3))s" >"$work/load.txt" 2>&1 &
lp=$!
sleep 2
snap >"$work/s1"
sleep "$window"
snap >"$work/s2"
wait "$lp" || true
grep -v 'ringlink info' "$work/load.txt"
echo "per thread over ${window}s (node A: subscribers, node B: publishers; threads in start order: main, the reactor, the broker bridge):"
paste "$work/s1" "$work/s2" | awk -v w="$window" -v rate="$rate" '{
  node = $1 ? "B" : "A"; u = $10 - $3; s = $11 - $4; ns = $12 - $5
  printf "  node %s thread %s: user %d ticks, system %d ticks, run %.1f ms (%.1f us per publication), %d voluntary / %d involuntary switches\n",
    node, $2, u, s, ns / 1e6, ns / 1e3 / (w * rate), $13 - $6, $14 - $7 }'
