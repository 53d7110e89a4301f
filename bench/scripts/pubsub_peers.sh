#!/usr/bin/env bash
# Cross-node pub/sub over one Redis: ringlink against Node `ws` + `ioredis` and
# socket.io + @socket.io/redis-adapter (bench/peers/node), the workload of
# pubsub_cross.sh: 2 nodes, SUBS subscribers on node A, PUBS publishers on
# node B (every delivery crosses Redis), RATE publications/s over TOPICS
# topics. ringlink and ws+ioredis speak the ringlink-echo --pubsub protocol and
# are driven by ringlink-load --pubsub; socket.io frames its own protocol, so
# bench/peers/node/pubsub_socketio_load.js drives it with the same workload.
# The three alternate, RUNS times each, each run with fresh nodes; then Redis's
# own PUB/SUB round trip (redis_pubsub_rtt.py) RUNS times.
#
# Server CPU: utime+stime of the two node processes (/proc/PID/stat, all
# threads; 10 ms ticks) and, as a finer cross-check, the sum of their threads'
# /proc/PID/task/*/schedstat run time (ns), sampled every 50 ms on the load
# core; the window is the publishing time plus the drain, ending when the load
# tool exits, divided by the deliveries the tool counted. Redis's own CPU is
# not included (it carries the same publications for all three). Nodes and
# redis-server on core 0, load tools on core 1.
#
#   bench/scripts/pubsub_peers.sh BUILD_DIR [RUNS] [SUBS] [RATE] [TOPICS] [PUBS] [DURATION_S]
set -euo pipefail
build=${1:?usage: pubsub_peers.sh BUILD_DIR [RUNS] [SUBS] [RATE] [TOPICS] [PUBS] [DURATION_S]}
runs=${2:-3} subs=${3:-1000} rate=${4:-1000} topics=${5:-100} pubs=${6:-10} duration=${7:-10}
here=$(cd "$(dirname "$0")" && pwd)
peers=$(cd "$here/../peers/node" && pwd)
. "$here/lib/children.sh"
# Install the pinned npm packages once, before anything is timed.
[ -d "$peers/node_modules/socket.io" ] || (cd "$peers" && npm ci --prefer-offline --no-audit --no-fund >/dev/null)

wait_port() { for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }
wait_file() { for _ in $(seq 200); do [ -s "$1" ] && return 0; sleep 0.05; done; return 1; }

rport=$(free_port)
echo "# $(date -u +%FT%TZ) $(uname -r) $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) (shared with other work); commit $(git -C "$here" rev-parse --short HEAD); redis-server $(redis-server --version | grep -o 'v=[0-9.]*'), node $(node --version)"
echo "# command: bench/scripts/pubsub_peers.sh $*"
echo "# runs=$runs subs=$subs rate=$rate/s topics=$topics pubs=$pubs duration=${duration}s; redis + 2 nodes on core 0, load on core 1"
start_redis "$rport" 0

# start_nodes PEER: two nodes of PEER on core 0; sets node_pids and urls.
start_nodes() {
  node_pids=() urls=()
  for n in a b; do
    rm -f "$work/$n.port"
    case $1 in
      ringlink) taskset -c 0 "$build/tools/ringlink-echo" --port 0 --port-file "$work/$n.port" --reactors 1 --ping-interval 0 \
                  --pubsub --broker "redis://127.0.0.1:$rport" 2>"$work/$n.err" & ;;
      ws) taskset -c 0 node "$peers/pubsub_ws_ioredis.js" "$work/$n.port" "$rport" 2>"$work/$n.err" & ;;
      socketio) taskset -c 0 node "$peers/pubsub_socketio.js" "$work/$n.port" "$rport" 2>"$work/$n.err" & ;;
    esac
    node_pids+=($!) pids+=($!)
  done
  for n in a b; do wait_file "$work/$n.port"; done
  local scheme=ws; [ "$1" = socketio ] && scheme=http
  urls=("$scheme://127.0.0.1:$(cat "$work/a.port")/" "$scheme://127.0.0.1:$(cat "$work/b.port")/")
}
stop_nodes() { for p in "${node_pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; }

# Samples "monotonic_s stat_ticks schedstat_ns" of the given processes until killed.
sampler() {
  exec taskset -c 1 python3 -c '
import glob, os, sys, time
pids = sys.argv[1:]
while True:
    ticks = ns = 0
    for p in pids:
        f = open("/proc/%s/stat" % p).read().rsplit(")", 1)[1].split()
        ticks += int(f[11]) + int(f[12])
        for t in glob.glob("/proc/%s/task/*/schedstat" % p):
            try: ns += int(open(t).read().split()[0])
            except OSError: pass
    print("%.6f %d %d" % (time.monotonic(), ticks, ns), flush=True)
    time.sleep(0.05)
' "$@"
}

for run in $(seq "$runs"); do
  for peer in ringlink ws socketio; do
    start_nodes "$peer"
    sleep 0.5  # let the nodes finish starting (Node's module loading) outside the window
    sampler "${node_pids[@]}" >"$work/cpu.txt" &
    spid=$!; pids+=($spid)
    json="$work/$peer.$run.json"
    if [ "$peer" = socketio ]; then
      echo "## run $run socketio: node pubsub_socketio_load.js --subs $subs --pubs $pubs --topics $topics --rate $rate --duration $duration --pub-nodes 1 ${urls[*]}"
      taskset -c 1 node "$peers/pubsub_socketio_load.js" --subs "$subs" --pubs "$pubs" --topics "$topics" --rate "$rate" \
        --duration "$duration" --pub-nodes 1 --json "$json" "${urls[@]}" || true
    else
      echo "## run $run $peer: ringlink-load --pubsub ${urls[*]} --pub-nodes 1 --subs $subs --pubs $pubs --topics $topics --rate $rate --duration ${duration}s"
      taskset -c 1 "$build/tools/ringlink-load" --pubsub "${urls[@]}" --pub-nodes 1 --subs "$subs" --pubs "$pubs" \
        --topics "$topics" --rate "$rate" --duration "${duration}s" --json "$json" || true
    fi
    kill "$spid"; wait "$spid" 2>/dev/null || true
    cp "$work/cpu.txt" "$work/$peer.$run.cpu"
    stop_nodes
  done
done
for run in $(seq "$runs"); do
  echo "## run $run redis alone: redis_pubsub_rtt.py --rate $rate --channels $topics --duration $duration"
  taskset -c 1 python3 "$here/redis_pubsub_rtt.py" --port "$rport" --rate "$rate" --channels "$topics" \
    --duration "$duration" | tee "$work/redis.$run.txt"
done

python3 - "$work" "$runs" <<'PY'
import json, re, statistics, sys
work, runs = sys.argv[1], int(sys.argv[2])

def cpu(path, window_s):
    rows = [tuple(map(float, l.split())) for l in open(path) if len(l.split()) == 3]
    end = rows[-1]
    start = next((r for r in reversed(rows) if r[0] <= end[0] - window_s), rows[0])
    return end[0] - start[0], (end[1] - start[1]) / 100.0, (end[2] - start[2]) / 1e9

names = {"ringlink": "ringlink", "ws": "ws+ioredis", "socketio": "socket.io"}
med = {}
print("summary, per run: p50/p99 us, deliveries/s, lost, server CPU s over the window (stat ticks | schedstat), ns per delivery (stat | schedstat)")
for peer in ("ringlink", "ws", "socketio"):
    vals = {"p50": [], "p99": [], "dps": [], "ns_stat": [], "ns_sched": []}
    for run in range(1, runs + 1):
        try:
            j = json.load(open("%s/%s.%d.json" % (work, peer, run)))
        except (OSError, ValueError):
            print("  %-10s run %d: no result" % (names[peer], run)); continue
        win, cs, cn = cpu("%s/%s.%d.cpu" % (work, peer, run), j["publish_s"] + j["drain_s"])
        d = max(j["delivered"], 1)
        lat = j["latency"]
        row = (lat["p50_us"], lat["p99_us"], j["deliveries_per_s"], cs * 1e9 / d, cn * 1e9 / d)
        for k, v in zip(vals, row): vals[k].append(v)
        print("  %-10s run %d: p50 %.1f p99 %.1f  %.1f deliveries/s  lost %d dup %d reord %d  CPU %.2f | %.3f s in %.1f s  %.0f | %.0f ns/delivery"
              % (names[peer], run, row[0], row[1], row[2], j["lost"], j["duplicates"], j["reordered"], cs, cn, win, row[3], row[4]))
    med[peer] = {k: statistics.median(v) for k, v in vals.items() if v}
rp99 = []
for run in range(1, runs + 1):
    m = re.search(r"p99 ([0-9.]+)", open("%s/redis.%d.txt" % (work, run)).read())
    if m: rp99.append(float(m.group(1)))
redis = statistics.median(rp99) if rp99 else float("nan")
print("summary, medians of %d runs: redis alone p99 %.1f us" % (runs, redis))
for peer, m in med.items():
    if not m: continue
    print("  %-10s p50 %.1f us  p99 %.1f us (%.2fx redis p99)  %.1f deliveries/s  %.0f ns CPU/delivery (schedstat %.0f)  = %.0f deliveries per server core-second"
          % (names[peer], m["p50"], m["p99"], m["p99"] / redis, m["dps"], m["ns_stat"], m["ns_sched"], 1e9 / m["ns_stat"]))
if med.get("ringlink") and med.get("socketio"):
    r, s = med["ringlink"], med["socketio"]
    w = med.get("ws") or {}
    print("summary: deliveries per server core, ringlink vs socket.io %.1fx (schedstat %.1fx), vs ws+ioredis %s; ringlink p99 vs redis alone %.2fx"
          % (s["ns_stat"] / r["ns_stat"], s["ns_sched"] / r["ns_sched"],
             "%.1fx" % (w["ns_stat"] / r["ns_stat"]) if w else "n/a", r["p99"] / redis))
PY
