#!/usr/bin/env bash
# Echo throughput and latency of a WebSocket server under ringlink-load, the
# server pinned to core 0 and the load to core 1, RUNS times; prints one line
# per run and the median. Server and load CPU come from /proc/PID/stat over
# the measured run.
#
#   bench/scripts/echo_bench.sh BUILD_DIR [CONNS] [SIZE] [INFLIGHT] [DURATION] [RUNS]
#   SERVER="cmd with {port}" overrides the server (default: ringlink-echo);
#   LOAD=path overrides the load tool (default: BUILD_DIR/tools/ringlink-load).
set -euo pipefail
build=${1:?usage: echo_bench.sh BUILD_DIR [CONNS] [SIZE] [INFLIGHT] [DURATION] [RUNS]}
conns=${2:-100} size=${3:-64} inflight=${4:-1} duration=${5:-10} runs=${6:-3}
load=${LOAD:-$build/tools/ringlink-load}   # LOAD=path: the same client for every server
tck=$(getconf CLK_TCK)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

results=()
for run in $(seq "$runs"); do
  port=$(free_port)
  if [ -n "${SERVER:-}" ]; then
    taskset -c 0 bash -c "exec ${SERVER//\{port\}/$port}" 2>/dev/null &
  else
    taskset -c 0 "$build/tools/ringlink-echo" --port "$port" --reactors 1 2>/dev/null &
  fi
  spid=$!
  for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.05; done
  json=$(mktemp)
  taskset -c 1 "$load" "ws://127.0.0.1:$port/" --conns "$conns" --size "$size" --inflight "$inflight" \
    --duration "$duration" --warmup 1 --json "$json" >/dev/null 2>&1 &
  lpid=$!
  sleep 1.5   # connections up and warm-up under way
  s0=$(cpu_ticks $spid); l0=$(cpu_ticks $lpid); t0=$(date +%s.%N)
  sleep "$((duration - 1))"
  s1=$(cpu_ticks $spid); l1=$(cpu_ticks $lpid); t1=$(date +%s.%N)
  wait $lpid || echo "load exited with errors (run $run)" >&2
  kill $spid 2>/dev/null; wait $spid 2>/dev/null || true
  line=$(/usr/bin/python3 - "$json" "$s0" "$s1" "$l0" "$l1" "$t0" "$t1" "$tck" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
s0, s1, l0, l1 = map(float, sys.argv[2:6]); t0, t1 = float(sys.argv[6]), float(sys.argv[7]); tck = float(sys.argv[8])
wall = t1 - t0
mps = j["throughput"]["msgs_per_s"]
p50 = j["latency"]["p50_us"]; p99 = j["latency"]["p99_us"]
errs = j["errors"]
print(f"{mps:.0f} {p50} {p99} {100*(s1-s0)/tck/wall:.0f} {100*(l1-l0)/tck/wall:.0f} {errs}")
PY
)
  rm -f "$json"
  echo "run $run: msgs/s p50_us p99_us server_cpu% load_cpu% errors = $line"
  results+=("$line")
done
printf '%s\n' "${results[@]}" | sort -n -k1 | awk -v n="$runs" 'NR==int((n+1)/2){print "median: msgs/s p50_us p99_us server_cpu% load_cpu% errors = " $0}'
