#!/usr/bin/env bash
# Cross-node publish-to-receive over Redis, against Redis's own PUB/SUB round
# trip. One redis-server and two ringlink-echo --pubsub --broker nodes (one
# reactor each) share core 0; ringlink-load --pubsub (core 1) puts SUBS
# subscribers on node A and PUBS publishers on node B (--pub-nodes 1: every
# delivery crosses the broker), RATE publications/s in total over TOPICS
# topics, one topic per subscriber. Then bench/scripts/redis_pubsub_rtt.py
# (core 1) measures the same path without ringlink: a publisher and one
# subscriber connection (as a node's bridge) on the same Redis, RATE/s over
# TOPICS channels, send time in the payload. Prints both p50/p99 and the ratio.
#
#   bench/scripts/pubsub_cross.sh BUILD_DIR [SUBS] [RATE] [TOPICS] [PUBS] [DURATION_S]
set -euo pipefail
build=${1:?usage: pubsub_cross.sh BUILD_DIR [SUBS] [RATE] [TOPICS] [PUBS] [DURATION_S]}
subs=${2:-1000} rate=${3:-1000} topics=${4:-100} pubs=${5:-10} duration=${6:-10}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/children.sh"

port=$(free_port)
echo "# $(date -u +%FT%TZ) $(uname -r) $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) (shared with other work); redis-server $(redis-server --version | grep -o 'v=[0-9.]*')"
echo "# subs=$subs rate=$rate/s topics=$topics pubs=$pubs duration=${duration}s; redis + 2 nodes on core 0, clients on core 1"
start_redis "$port" 0
for node in a b; do
  taskset -c 0 "$build/tools/ringlink-echo" --port 0 --port-file "$work/$node.port" --reactors 1 --ping-interval 0 \
    --pubsub --broker "redis://127.0.0.1:$port" 2>"$work/$node.err" &
  pids+=($!)
done
for node in a b; do
  for _ in $(seq 100); do [ -s "$work/$node.port" ] && break; sleep 0.05; done
done
url_a="ws://127.0.0.1:$(cat "$work/a.port")/" url_b="ws://127.0.0.1:$(cat "$work/b.port")/"

echo "## ringlink: ringlink-load --pubsub $url_a $url_b --pub-nodes 1 --subs $subs --pubs $pubs --topics $topics --rate $rate --duration ${duration}s"
taskset -c 1 "$build/tools/ringlink-load" --pubsub "$url_a" "$url_b" --pub-nodes 1 --subs "$subs" --pubs "$pubs" \
  --topics "$topics" --rate "$rate" --duration "${duration}s" --json "$work/load.json" || true
echo "## redis alone: redis_pubsub_rtt.py --rate $rate --channels $topics --duration $duration"
redis_line=$(taskset -c 1 python3 "$here/redis_pubsub_rtt.py" --port "$port" --rate "$rate" --channels "$topics" \
  --duration "$duration")
echo "$redis_line"
python3 - "$work/load.json" "$redis_line" <<'PY'
import json, re, sys
lat = json.load(open(sys.argv[1]))["latency"]
r = dict(re.findall(r"(p50|p99) ([0-9.]+)", sys.argv[2]))
p50, p99 = lat["p50_us"], lat["p99_us"]
print("summary: cross-node p50 %.1f us p99 %.1f us; redis alone p50 %s us p99 %s us; p99 ratio %.2f"
      % (p50, p99, r["p50"], r["p99"], p99 / float(r["p99"])))
PY
